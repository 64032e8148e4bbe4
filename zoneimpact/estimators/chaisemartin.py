"""De Chaisemartin & D'Haultfoeuille (2024) DID_l: effects of treatments that switch on and off.

Method
------
de Chaisemartin, C. and D'Haultfoeuille, X. (2024), "Difference-in-Differences Estimators
of Intertemporal Treatment Effects", *Review of Economics and Statistics* 106(6),
1723-1736 (dCDH), as implemented by R/Stata ``DIDmultiplegtDYN``.

The treatment ``D_{g,t}`` may be binary or discrete, and may switch on and off (it need
not be absorbing). For group ``g`` let ``D_{g,1}`` be its period-one ("status quo")
treatment, ``F_g`` the first period in which its treatment differs from ``D_{g,1}``
(``inf`` if never), ``S_g = sign(D_{g,F_g} - D_{g,1})`` (+1 switcher in, -1 switcher out)
and ``T_g = max{F_{g'} : D_{g',1} = D_{g,1}} - 1`` the last period in which some group
with the same status quo has not switched yet. For ``l = 1, 2, ...`` (dCDH eq. 3):

``DID_{g,l} = Y_{g,F_g-1+l} - Y_{g,F_g-1}
- mean_{g': D_{g',1}=D_{g,1}, F_{g'} > F_g-1+l} (Y_{g',F_g-1+l} - Y_{g',F_g-1})``

``DID_l = sum_{g: F_g-1+l <= T_g} S_g DID_{g,l} / N_l`` (term ``event:{l-1}``: ``l = 1`` is the
first period of the switch, event time 0). The placebo ``DID^pl_l`` (dCDH Section 3.3)
replaces the outcome change by ``Y_{g,F_g-1-l} - Y_{g,F_g-1}`` for the same groups and
controls as ``DID_l`` (term ``event:{-l-1}``; event time -1 is the reference). The
average total effect per unit of treatment (dCDH Section 3.4; term ``att``) is
``sum_l w_l DID_l / sum_l w_l delta^D_l`` with ``w_l = N_l / sum_l N_l`` and
``delta^D_l = mean_g S_g (D_{g,F_g-1+l} - D_{g,1})`` over the switchers of ``DID_l``.
``normalized=True`` divides ``DID_l`` by the switchers' mean cumulative treatment change
``sum_{k=0}^{l-1} S_g (D_{g,F_g+k} - D_{g,1})`` (dCDH's ``DID^n_l``).

Cell weights ``N_{g,t}`` (``weights``; e.g. the firms a cell aggregates) weight every
mean, count and influence function as in ``DIDmultiplegtDYN``'s ``weight``.

Sample rules follow ``DIDmultiplegtDYN`` (as ported by moderndid 0.2): groups whose
treatment moves both above and below its status quo are dropped; status-quo values whose
groups all switch at the same date are dropped; periods in which no group with that status
quo is observed and not yet switched are dropped for it (never-switchers are not needed:
the controls are the not-yet-switched groups); ``switchers="in"``/``"out"`` estimates
only those switchers (the others remain controls until they switch). A treatment missing
after the switch adds nothing to the normaliser's cumulative change (``DIDmultiplegtDYN``
sums it with ``na.rm``).

Inference: the influence function of ``DID_l`` is
``U_g = (G / N_l) sum_t w_{g,t} (1{switcher g at F_g-1+l} - N^s_{t,d}/N^c_{t,d} 1{F_g > t}) dY_{g,t}``;
its variance uses the cohort-demeaned version of ``dY`` (dCDH Web Appendix, Theorem 1's
conservative variance): switchers' changes minus their cohort mean (same status quo,
switch date and first new treatment), controls' changes minus the mean of controls with
the same status quo in that period, each scaled by ``sqrt(n/(n-1))``, falling back to
the pooled mean of both when a cohort has one member. ``se = sqrt(sum_c (sum_{g in c}
U_g)^2) / G`` with clusters ``c`` (groups by default). Written by hand: no library
computes these estimators; the package's definitions are reproduced to ~1e-12 against
moderndid (see ``tests/test_chaisemartin.py``).

Input
-----
A :class:`~zoneimpact.panel.Panel` with the treatment as a covariate column (the Panel's
own ``cohort`` is not used: build it with :func:`switching_panel`, which sets the cohort
to the first switch period ``F_g``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import pandas as pd

from ..errors import EstimationError, PanelError, SpecError
from ..panel import Panel, _v
from ..results import check_bool, check_choice, check_fit_arguments, check_int
from . import callaway_santanna as _cs
from ._influence_results import TablesResult, cluster_name, covariate_column, influence_vcov
from ._scale import outcome_scale, scale_equivariant

__all__ = ["ChaisemartinResult", "fit", "switching_panel"]


@dataclass(frozen=True)
class ChaisemartinResult(TablesResult):
    """Result of :func:`fit`.

    Attributes
    ----------
    effects : DataFrame
        One row per ``DID_l`` and placebo: ``kind`` (``effect``/``placebo``), ``horizon``
        (dCDH's ``l``), ``term``, ``estimate``, ``se``, ``n_switchers``, ``delta_d``.
    influence : ndarray (n_groups, n_terms)
        Influence functions of the terms used for the variance, groups in ``groups``
        order.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "effects": {"estimate": 1, "se": 1},
        "influence": 1,
        "kept": 1,
    }
    ARTIFACTS: ClassVar[tuple[str, ...]] = ("effects",)

    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None
    groups: np.ndarray | None = None
    kept: _Kept | None = field(default=None, repr=False, compare=False)

    def with_inference(self, method: str = "analytic", *, cluster: Any = None) -> Self:
        """The same ``DID_l`` with standard errors clustered on another column, without
        re-reading the data.

        The dCDH variance influence function itself depends on the clusters (each
        cohort's ``sqrt(n/(n-1))`` counts its distinct clusters), so it is recomputed
        from the kept group x period arrays, not merely re-summed: the result equals a
        refit with ``cluster=`` that column.

        Parameters
        ----------
        method : {"analytic"}
            The dCDH cohort-demeaned influence-function variance.
        cluster : str or pandas.Series, optional
            A column of the panel (or its geography) constant within unit, or labels as a
            Series indexed by unit. None: the group. Two-way clustering is not offered:
            the cohort corrections have no two-way form.
        """
        if self.kept is None:
            raise EstimationError(
                "This result keeps no group arrays (it was not made by chaisemartin.fit); "
                "refit with cluster= instead."
            )
        check_choice(method, "method", ("analytic",))
        if isinstance(cluster, list | tuple):
            raise SpecError(
                f"cluster={cluster_name(cluster)!r}: the dCDH variance clusters one way (its "
                "cohort corrections count clusters); pass one column."
            )
        k = self.kept
        c = outcome_scale(k.groups.Y)
        if c != 1.0:
            # outcomes near the float limits: recompute the variance on the fit's working
            # scale, so the squared influence functions cannot overflow or underflow
            # (exact: c is a power of two; y x 1e160 gave SEs of inf, x 1e-300 of 0)
            # without the covariance, which is recomputed and may not be representable
            # on the other scale (its square overflows)
            small = replace(self, vcov=None).rescaled(1 / c)
            return small.with_inference(method, cluster=cluster).rescaled(c)
        gr = k.groups
        cl = None if cluster is None else _cs._unit_labels(k.panel, cluster, k.units)[0][k.keep]
        if cl is not None:
            gi = np.repeat(np.arange(gr.Y.shape[0]), gr.Y.shape[1])
            gr = gr._replace(cl=cl, cl_rows=pd.factorize(cl[gi])[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fit already warned about missing horizons
            found, _, psi, vcov, se = _variance(gr, *k.options)
        info = {
            **self.info,
            "cluster": cluster_name(cluster),
            "n_clusters": None if cl is None else int(pd.Series(cl).nunique()),
        }
        return replace(
            self,
            terms=self.terms.assign(se=se),
            effects=self.effects.assign(se=se[1:]),
            vcov=vcov,
            info=info,
            influence=psi,
        )


@dataclass(frozen=True)
class _Kept:
    """What :meth:`ChaisemartinResult.with_inference` recomputes the variance from: the
    group x period arrays, the kept groups among the panel's units and the options."""

    groups: _Groups
    keep: np.ndarray
    units: np.ndarray
    panel: Panel
    options: tuple[int, int, bool]  # effects, placebo, normalized

    def rescaled(self, c: float) -> _Kept:
        return replace(self, groups=self.groups._replace(Y=self.groups.Y * c))


def _variance(
    gr: _Groups, effects: int, placebo: int, normalized: bool
) -> tuple[list[_Horizon], float, np.ndarray, np.ndarray, np.ndarray]:
    """The horizons, the average total effect, the influence functions of the terms and
    their covariance ``S'S / G^2`` (``S`` summed within clusters) and SEs."""
    found = _horizons(gr, effects, placebo, normalized)
    ate, u_ate = _average_total_effect([h for h in found if h.row["kind"] == "effect"])
    psi = np.column_stack([u_ate, *(h.influence / h.row["_scale"] for h in found)])
    vcov, se = influence_vcov(psi, gr.cl, n=len(gr.groups))
    return found, ate, psi, vcov, se


def switching_panel(
    frame: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcomes: str | Sequence[str],
    treatment: str,
    covariates: Sequence[str] = (),
) -> Panel:
    """A :class:`Panel` for a treatment that may switch on and off (or take several values).

    The treatment column is kept as a covariate; the Panel's cohort is each unit's first
    switch period ``F_g`` (never-switchers: never treated). ``frame`` is not modified.
    """
    if treatment not in frame.columns:
        raise PanelError(
            f"Treatment column {treatment!r} not found; columns: {list(frame.columns)}."
        )
    d = pd.to_numeric(frame[treatment], errors="coerce")
    if d.isna().any():
        i = int(np.flatnonzero(d.isna().to_numpy())[0])
        raise PanelError(
            f"Treatment column {treatment!r} must be numeric and observed; unit "
            f"{_v(frame[unit].iloc[i])!r}, period {_v(frame[time].iloc[i])!r} has "
            f"{_v(frame[treatment].iloc[i])!r}."
        )
    order = frame.sort_values([unit, time], kind="mergesort")
    first = order.groupby(unit, sort=False)[treatment].transform("first")
    switched = order[time].where(order[treatment] != first)
    fg = switched.groupby(order[unit]).transform("min").fillna(0)
    work = frame.assign(_switch_cohort=fg.reindex(frame.index))
    covs = list(dict.fromkeys([treatment, *covariates]))
    return Panel.from_frame(
        work, unit=unit, time=time, outcomes=outcomes, cohort="_switch_cohort", covariates=covs
    )


def _cohort_stats(
    codes: np.ndarray, mask: np.ndarray, wdiff: np.ndarray, w: np.ndarray, cl: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean of ``wdiff`` per unit of ``w`` within the cohort ``codes`` among rows
    in ``mask``, and the cohort's number of distinct clusters ``cl`` (NaN outside)."""
    mean = np.full(len(mask), np.nan)
    dof = np.full(len(mask), np.nan)
    if not mask.any():
        return mean, dof
    c = codes[mask]
    size = int(codes.max()) + 1
    ws = np.bincount(c, weights=w[mask], minlength=size)
    wd = np.bincount(c, weights=wdiff[mask], minlength=size)
    pairs = np.unique(np.column_stack([c, cl[mask]]), axis=0)
    n_cl = np.bincount(pairs[:, 0], minlength=size)
    mean[mask] = np.where(ws[c] > 0, wd[c] / np.where(ws[c] > 0, ws[c], 1), 0.0)
    dof[mask] = n_cl[c]
    return mean, dof


class _Groups(NamedTuple):
    """The estimation sample as group x period arrays (groups kept by the sample rules;
    periods numbered ``tt = 1..T`` as in the paper)."""

    Y: np.ndarray  # outcomes (NaN: missing, or no not-yet-switched group of the status quo)
    D: np.ndarray  # treatments (NaN where Y is blanked for want of a control)
    w: np.ndarray  # cell weights N_{g,t} (0 for a missing cell)
    d_sq: np.ndarray  # status quo D_{g,1}
    F: np.ndarray  # first switch period (inf: never)
    Fc: np.ndarray  # F, or for never-switchers the period after their last
    S: np.ndarray  # +1 switcher in, -1 switcher out, 0 never-switcher or direction not kept
    T_g: np.ndarray  # last period with a not-yet-switched group of the same status quo
    tt: np.ndarray
    groups: np.ndarray
    cl: np.ndarray | None  # cluster labels (None: the group)
    codes_s: np.ndarray  # cohort of each (group, period) cell among switchers
    codes_c: np.ndarray  # cohort of each cell among controls (period, status quo)
    cl_rows: np.ndarray  # cluster code of each cell


class _Horizon(NamedTuple):
    """``DID_l`` or its placebo for one ``l`` with its influence function."""

    row: dict[str, Any]
    estimate: float  # not normalised
    influence: np.ndarray  # not normalised
    n_s: float  # switchers' weight N_l
    delta_l: float  # switchers' mean treatment change at l


def _check_options(
    panel: Panel,
    treatment: str | None,
    weights: str | None,
    effects: int,
    placebo: int,
    switchers: str,
    normalized: bool,
) -> tuple[int, int, str, bool]:
    """The options of :func:`fit`, checked once."""
    effects = check_int(effects, "effects", minimum=1)
    placebo = check_int(placebo, "placebo", minimum=0)
    switchers = check_choice(switchers, "switchers", ("both", "in", "out"))
    normalized = check_bool(normalized, "normalized")
    covariate_column(panel, weights, "Weight")
    covariate_column(
        panel,
        treatment,
        "Treatment",
        "; build the panel with chaisemartin.switching_panel(..., treatment=...)",
    )
    return effects, placebo, switchers, normalized


def _wide(
    panel: Panel, outcome: str, treatment: str | None, cluster: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Units, periods, outcome and treatment (units x periods) and the cluster of each
    unit. A period without the treatment is a missing cell, as in DIDmultiplegtDYN."""
    data = panel.data
    periods = np.sort(data["time"].unique())
    units = np.asarray(panel.units)
    ywide = data.pivot(index="unit", columns="time", values=outcome).reindex(
        index=units, columns=periods
    )
    if treatment is None:
        dvals = (data["time"] >= data["cohort"]).astype(float)
        dwide = data.assign(_d=dvals).pivot(index="unit", columns="time", values="_d")
    else:
        dwide = data.pivot(index="unit", columns="time", values=treatment)
    dwide = dwide.reindex(index=units, columns=periods)
    clusters = None
    if cluster is not None:
        cluster = panel.column_for(cluster)
        if cluster not in data.columns or cluster in ("unit", "time"):
            raise SpecError(f"cluster={cluster!r} is not a covariate column of the panel.")
        # a group without a label would silently drop out of every cluster sum
        missing = data[cluster].isna().to_numpy()
        if missing.any():
            u = data["unit"].to_numpy()[missing][0]
            raise SpecError(
                f"Cluster variable {cluster!r} is missing for unit {_v(u)!r}; every row "
                "needs a cluster label."
            )
        per = data.groupby("unit")[cluster].nunique()
        if (per > 1).any():
            raise SpecError(
                f"Cluster column {cluster!r} varies within unit {_v(per.index[per > 1][0])!r}."
            )
        clusters = data.groupby("unit")[cluster].first().reindex(units).to_numpy()
    D = dwide.to_numpy(float)
    Y = np.where(np.isfinite(D), ywide.to_numpy(float), np.nan)
    seen = np.isfinite(D)
    if not seen.any(axis=1).all():
        u = units[~seen.any(axis=1)][0]
        raise PanelError(f"Treatment {treatment!r} is missing in every period for unit {_v(u)!r}.")
    return units, periods, Y, D, clusters


def _switches(D: np.ndarray) -> dict[str, np.ndarray]:
    """Status quo ``D_{g,1}``, first switch ``F_g``, first new treatment ``D_{g,F_g}``,
    direction ``S_g`` and the last period observed (dCDH Section 2)."""
    n_t = D.shape[1]
    seen = np.isfinite(D)
    first_seen = np.argmax(seen, axis=1)
    rows_g = np.arange(len(D))
    d_sq = D[rows_g, first_seen]
    changed = seen & (D != d_sq[:, None])
    F = np.where(changed.any(axis=1), np.argmax(changed, axis=1) + 1.0, np.inf)
    d_fg = np.where(
        np.isfinite(F), D[rows_g, np.where(np.isfinite(F), F - 1, 0).astype(int)], np.nan
    )
    return {
        "seen": seen,
        "last_seen": n_t - 1 - np.argmax(seen[:, ::-1], axis=1),
        "d_sq": d_sq,
        "F": F,
        "d_fg": d_fg,
        "S": np.where(np.isfinite(F), np.sign(d_fg - d_sq), 0.0),
    }


def _sample_rules(
    D: np.ndarray, sw: dict[str, np.ndarray], switchers: str, treatment: str | None
) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """Groups kept by DIDmultiplegtDYN's rules, the number dropped for moving both
    above and below their status quo, and ``sw`` with ``S_g = 0`` for the switchers of
    the direction not estimated (``switchers="in"``/``"out"``).

    Those switchers stay in the sample: until ``F_g`` they are not-yet-switched groups,
    hence controls of dCDH eq. 3 (DIDmultiplegtDYN keeps them, with
    ``never_change_d = 1{t < F_g}``, and selects the direction only among switchers)."""
    seen, d_sq, F, S = sw["seen"], sw["d_sq"], sw["F"], sw["S"]
    above = (seen & (D > d_sq[:, None])).any(axis=1)
    below = (seen & (D < d_sq[:, None])).any(axis=1)
    keep = np.asarray(~(above & below))
    n_bidirectional = int((~keep).sum())
    if switchers == "in":
        S = np.where(S > 0, S, 0.0)
    elif switchers == "out":
        S = np.where(S < 0, S, 0.0)
    for v in np.unique(d_sq[keep]):
        same = keep & (d_sq == v)
        fg0 = np.where(np.isfinite(F[same]), F[same], 0.0)
        if np.std(fg0) == 0:
            keep &= ~same
    if not (keep & (S != 0)).any():
        raise EstimationError(
            f"No switching group can be compared with a group of the same period-one "
            f"treatment in {treatment!r} (switchers={switchers!r})."
        )
    return keep, n_bidirectional, {**sw, "S": S}


def _cell_weights(
    panel: Panel,
    weights: str | None,
    Y: np.ndarray,
    keep: np.ndarray,
    units: np.ndarray,
    periods: np.ndarray,
) -> np.ndarray:
    """Group-period weights ``N_{g,t}`` of the kept groups (a missing cell: 0)."""
    if weights is None:
        wcell = np.ones_like(Y)
    else:
        wcell = (
            panel.data.pivot(index="unit", columns="time", values=weights)
            .reindex(index=units, columns=periods)
            .to_numpy(float)[keep]
        )
        bad_w = np.isfinite(Y) & ~(np.isfinite(wcell) & (wcell >= 0))
        if bad_w.any():
            r, c = np.argwhere(bad_w)[0]
            raise PanelError(
                f"Weight {weights!r} must be finite and >= 0; unit {_v(units[keep][r])!r}, "
                f"period {_v(periods[c])!r} has {_v(wcell[r, c])!r}."
            )
    return np.where(np.isfinite(Y), np.nan_to_num(wcell), 0.0)


def _groups(
    Y: np.ndarray,
    D: np.ndarray,
    w_of: Callable[[np.ndarray], np.ndarray],
    sw: dict[str, np.ndarray],
    keep: np.ndarray,
    units: np.ndarray,
    clusters: np.ndarray | None,
) -> _Groups:
    """The kept groups, with the cohort codes of the variance (dCDH Web Appendix);
    ``w_of`` gives the cell weights of the kept groups' outcomes."""
    Y, D = Y[keep], D[keep]
    d_sq, F, d_fg, S = (sw[k][keep] for k in ("d_sq", "F", "d_fg", "S"))
    seen, last_seen = sw["seen"][keep], sw["last_seen"][keep]
    G, n_t = Y.shape
    # periods in which no group with the same status quo is observed and not yet switched
    # are dropped (DIDmultiplegtDYN's controls_time_XX = max(never_change_d_XX) by (t,
    # D_{g,1}), never_change_d = 1{t < F_g}): dCDH eq. 3 compares with not-yet-switched
    # groups, so never-switchers are not needed
    not_yet = seen & (np.arange(1, n_t + 1)[None, :] < F[:, None])
    has_control = pd.DataFrame(not_yet).groupby(d_sq).transform("max").to_numpy()
    # DIDmultiplegtDYN drops those rows, so their treatment leaves the normaliser too
    Y = np.where(has_control, Y, np.nan)
    D = np.where(has_control, D, np.nan)
    Fc = np.where(np.isfinite(F), F, last_seen + 2.0)
    T_g = pd.Series(Fc).groupby(d_sq).transform("max").to_numpy() - 1
    w = w_of(Y)
    tt = np.arange(1, n_t + 1)  # periods as 1..T, as the paper
    gi, ti = np.meshgrid(np.arange(G), np.arange(n_t), indexing="ij")
    # cohorts of switchers (status quo, switch date, first new treatment) and of controls
    # (period, status quo), as integer codes of the (group, period) cells
    cell_keys = pd.DataFrame(
        {
            "d_sq": d_sq[gi].ravel(),
            "F": Fc[gi].ravel(),
            "d_fg": np.nan_to_num(d_fg, nan=-1e300)[gi].ravel(),
            "t": tt[ti].ravel(),
        }
    )
    cl = clusters[keep] if clusters is not None else None
    return _Groups(
        Y=Y,
        D=D,
        w=w,
        d_sq=d_sq,
        F=F,
        Fc=Fc,
        S=S,
        T_g=T_g,
        tt=tt,
        groups=units[keep],
        cl=cl,
        codes_s=cell_keys.groupby(["d_sq", "F", "d_fg"], sort=False).ngroup().to_numpy(),
        codes_c=cell_keys.groupby(["t", "d_sq"], sort=False).ngroup().to_numpy(),
        cl_rows=pd.factorize(cl[gi].ravel())[0] if cl is not None else gi.ravel(),
    )


def _long_differences(Y: np.ndarray, kind: str, ell: int) -> np.ndarray:
    """``Y_{g,t} - Y_{g,t-l}`` (effects) or the placebo's ``Y_{g,t-2l} - Y_{g,t-l}``,
    placed at the period ``t = F_g - 1 + l`` where the switcher's ``DID_l`` uses it."""
    n_t = Y.shape[1]
    diff = np.full(Y.shape, np.nan)
    if kind == "effect":
        diff[:, ell:] = Y[:, ell:] - Y[:, :-ell]
    elif 2 * ell < n_t:
        diff[:, 2 * ell :] = Y[:, : n_t - 2 * ell] - Y[:, ell : n_t - ell]
    return diff


def _variance_influence(
    gr: _Groups,
    ell: int,
    dist: np.ndarray,
    never: np.ndarray,
    target: np.ndarray,
    coef_signed: np.ndarray,
    dz: np.ndarray,
    n_s: float,
) -> np.ndarray:
    """The influence function of ``DID_l`` used for its variance: switchers' changes
    minus their cohort mean, controls' minus the mean of controls with the same status
    quo in that period, each scaled by ``sqrt(n/(n-1))``; the pooled mean when a cohort
    has one member (dCDH Web Appendix, Theorem 1's conservative variance)."""
    G, n_t = gr.Y.shape
    tt, F, w = gr.tt, gr.F, gr.w
    sw_rows = dist.ravel()
    ct_rows = never.ravel()
    wd = (dz * w).ravel()
    wr = w.ravel()
    m_s, dof_s = _cohort_stats(gr.codes_s, sw_rows, wd, wr, gr.cl_rows)
    m_c, dof_c = _cohort_stats(gr.codes_c, ct_rows, wd, wr, gr.cl_rows)
    m_u, dof_u = _cohort_stats(gr.codes_c, sw_rows | ct_rows, wd, wr, gr.cl_rows)
    at_t = target.ravel()
    before = (tt[None, :] < F[:, None]).ravel()
    s9, c9, u9 = (np.nan_to_num(x, nan=9999.0) for x in (dof_s, dof_c, dof_u))
    use_s = at_t & (s9 >= 2)
    use_c = before & (c9 >= 2)
    use_u = (u9 >= 2) & ((at_t & (s9 == 1)) | (before & (c9 == 1)))
    e_hat = np.select([use_s, use_c, use_u], [m_s, m_c, m_u], 0.0)
    e_hat = np.nan_to_num(e_hat)
    scale = np.select(
        [
            at_t & (s9 > 1),
            before & (c9 > 1),
            (at_t & (s9 == 1) | before & (c9 == 1)) & (u9 >= 2),
        ],
        [
            np.sqrt(s9 / np.maximum(s9 - 1, 1)),
            np.sqrt(c9 / np.maximum(c9 - 1, 1)),
            np.sqrt(u9 / np.maximum(u9 - 1, 1)),
        ],
        1.0,
    ).reshape(G, n_t)
    T_g = gr.T_g
    window = (tt[None, :] >= ell + 1) & (tt[None, :] <= T_g[:, None]) & ((T_g - 1) >= ell)[:, None]
    return (G / n_s) * (window * coef_signed * scale * (dz - e_hat.reshape(G, n_t))).sum(axis=1)


def _treatment_changes(gr: _Groups, dist: np.ndarray, ell: int) -> tuple[np.ndarray, float, float]:
    """Switchers of the horizon, their weighted mean cumulative treatment change
    ``sum_{k<l} S_g (D_{g,F_g+k} - D_{g,1})`` (dCDH's normaliser) and per-period change
    ``S_g (D_{g,F_g-1+l} - D_{g,1})`` (``delta^D_l``, Section 3.4).

    A period missing between ``F_g`` and ``F_g-1+l`` adds nothing to the cumulative change,
    as ``DIDmultiplegtDYN`` (``sum_treat_until_l_XX`` sums with ``na.rm = TRUE`` over
    the balanced panel, where an absent row's treatment is NA)."""
    D, F, d_sq, S, w = gr.D, gr.F, gr.d_sq, gr.S, gr.w
    G = len(D)
    sw_g = np.asarray(dist.any(axis=1))
    cum = np.array(
        [
            np.nansum(D[g, int(F[g]) - 1 : int(F[g]) - 1 + ell] - d_sq[g]) if sw_g[g] else 0.0
            for g in range(G)
        ]
    )
    wg = (w * dist).sum(axis=1)
    delta_cum = float(np.sum(wg * S * cum) / wg.sum())
    per = np.array([D[g, int(F[g]) - 2 + ell] - d_sq[g] if sw_g[g] else 0.0 for g in range(G)])
    delta_l = float(np.sum(wg * S * per) / wg.sum())
    return sw_g, delta_cum, delta_l


def _horizon(gr: _Groups, kind: str, ell: int, normalized: bool) -> _Horizon | None:
    """``DID_l`` (dCDH eq. 3-4) or the placebo ``DID^pl_l`` (Section 3.3); None when no
    switcher has a control at that horizon."""
    G = len(gr.Y)
    tt, F, S, w, d_sq = gr.tt, gr.F, gr.S, gr.w, gr.d_sq
    diff = _long_differences(gr.Y, kind, ell)
    ok = np.isfinite(diff)
    never = (gr.Fc[:, None] > tt[None, :]) & ok
    n_control = pd.DataFrame(w * never).groupby(d_sq).transform("sum").to_numpy()
    target = tt[None, :] == (F[:, None] - 1 + ell)
    dist = target & ok & (n_control > 0) & (S != 0)[:, None]
    n_s = float((w * dist).sum())
    if n_s == 0:
        return None
    dz = np.where(ok, diff, 0.0)
    # sign: switchers out enter with S_g = -1 (dCDH eq. 4)
    sgn = np.where(S != 0, S, 1.0)[:, None]
    # controls of a switcher-out cell carry that cell's sign through n_treated
    coef_signed = w * (dist * sgn - _signed_ratio(w, dist, S, never, d_sq, n_control) * never)
    u_point = (G / n_s) * (coef_signed * dz).sum(axis=1)
    est = float(u_point.sum() / G)
    u_var = _variance_influence(gr, ell, dist, never, target, coef_signed, dz, n_s)
    sw_g, delta_cum, delta_l = _treatment_changes(gr, dist, ell)
    scale_n = delta_cum if normalized and delta_cum != 0 else 1.0
    row = {
        "kind": kind,
        "horizon": ell,
        "term": f"event:{ell - 1}" if kind == "effect" else f"event:{-ell - 1}",
        "estimate": est / scale_n,
        "n_switchers": int(sw_g.sum()),
        "delta_d": delta_cum,
        "_scale": scale_n,
    }
    return _Horizon(row, est, u_var, n_s, delta_l)


def _average_total_effect(effects: list[_Horizon]) -> tuple[float, np.ndarray]:
    """``sum_l w_l DID_l / sum_l w_l delta^D_l`` with ``w_l = N_l / sum N_l`` (dCDH
    Section 3.4) and its influence function."""
    n_l = np.array([h.n_s for h in effects])
    w_l = n_l / n_l.sum()
    denom = float(np.sum(w_l * np.array([h.delta_l for h in effects])))
    if denom == 0:
        raise EstimationError(
            "The switchers' average treatment change is zero: no average total effect."
        )
    ate = float(np.sum(w_l * np.array([h.estimate for h in effects])) / denom)
    u_ate = np.sum([w_l[i] * h.influence for i, h in enumerate(effects)], axis=0) / denom
    return ate, u_ate


def _horizons(gr: _Groups, effects: int, placebo: int, normalized: bool) -> list[_Horizon]:
    """Every ``DID_l`` and placebo that can be estimated; a warning names the others."""
    found: list[_Horizon] = []
    missing: list[str] = []
    for kind, horizons in (("effect", range(1, effects + 1)), ("placebo", range(1, placebo + 1))):
        for ell in horizons:
            h = _horizon(gr, kind, ell, normalized)
            if h is None:
                missing.append(f"event:{ell - 1}" if kind == "effect" else f"event:{-ell - 1}")
            else:
                found.append(h)
    if missing:
        warnings.warn(
            f"No switcher has a control at {', '.join(missing)} (dCDH horizons beyond the "
            "data or without not-yet-switched groups): those terms are not reported.",
            stacklevel=4,
        )
    if not any(h.row["kind"] == "effect" for h in found):
        raise EstimationError("No DID_l effect could be estimated (no switcher has a control).")
    return found


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    treatment: str | None = None,
    effects: int = 1,
    placebo: int = 0,
    switchers: str = "both",
    normalized: bool = False,
    cluster: str | None = None,
    weights: str | None = None,
) -> ChaisemartinResult:
    """DID_l event-study effects and placebos for switchers in and out (dCDH 2024).

    Parameters
    ----------
    panel : Panel
        Holds the treatment as a covariate column (see :func:`switching_panel`).
    outcome : str
        Outcome column.
    treatment : str, optional
        Covariate column with the (binary or discrete, possibly non-absorbing) treatment.
        None: the panel's absorbing zone indicator ``1{t >= cohort}``.
    effects : int
        Number of horizons ``l = 1..effects``.
    placebo : int
        Number of placebos.
    switchers : {"both", "in", "out"}
        Which switchers to estimate; the others stay controls until they switch
        (dCDH eq. 3's not-yet-switched groups, as ``DIDmultiplegtDYN``).
    normalized : bool
        Report ``DID^n_l`` (per unit of cumulative treatment change).
    cluster : str, optional
        Column (constant within unit) to cluster by; default the group (unit).
    weights : str, optional
        Covariate column of (group, period) weights ``N_{g,t}`` (e.g. the number of firms
        a cell aggregates; ``DIDmultiplegtDYN``'s ``weight``); default one per cell.

    Returns
    -------
    ChaisemartinResult
        Terms ``att`` (average total effect), ``event:{l-1}`` and ``event:{-l-1}``.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="chaisemartin"
    )
    effects, placebo, switchers, normalized = _check_options(
        panel, treatment, weights, effects, placebo, switchers, normalized
    )
    units, periods, Y, D, clusters = _wide(panel, outcome, treatment, cluster)
    sw = _switches(D)
    keep, n_bidirectional, sw = _sample_rules(D, sw, switchers, treatment)
    gr = _groups(
        Y,
        D,
        lambda y: _cell_weights(panel, weights, y, keep, units, periods),
        sw,
        keep,
        units,
        clusters,
    )
    found, ate, psi, vcov, se = _variance(gr, effects, placebo, normalized)
    G = len(gr.groups)
    effects_df = pd.DataFrame([h.row for h in found])
    effects_df["se"] = se[1:]
    terms = pd.DataFrame(
        {
            "term": ["att", *effects_df["term"]],
            "estimate": [ate, *effects_df["estimate"]],
            "se": se,
        }
    )
    info: dict[str, Any] = {
        "treatment": treatment if treatment is not None else "1{t >= cohort}",
        "switchers": switchers,
        "normalized": normalized,
        "cluster": cluster,
        # as with_inference records it: the verdict df and the pre-trend F read it
        "n_clusters": None if gr.cl is None else int(pd.Series(gr.cl).nunique()),
        "weights": weights,
        "n_groups": G,
        "n_switchers": int((gr.S != 0).sum()),
        "n_dropped_bidirectional": n_bidirectional,
        "n_dropped_total": int(len(units) - G),
        "se_type": "dCDH cohort-demeaned influence function",
    }
    return ChaisemartinResult(
        estimator="chaisemartin",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=G,
        n_obs=int(np.isfinite(gr.Y).sum()),
        vcov=vcov,
        info=info,
        alpha=alpha,
        effects=effects_df[["kind", "horizon", "term", "estimate", "se", "n_switchers", "delta_d"]],
        influence=psi,
        groups=gr.groups,
        kept=_Kept(gr, keep, units, panel, (effects, placebo, normalized)),
    )


def _signed_ratio(
    w: np.ndarray,
    dist: np.ndarray,
    S: np.ndarray,
    never: np.ndarray,
    d_sq: np.ndarray,
    n_control: np.ndarray,
) -> np.ndarray:
    """``sum_{switchers at (t,d)} S_g w / N^c_{t,d}``: the weight a control in (t, d) gets."""
    signed = pd.DataFrame(w * dist * S[:, None]).groupby(d_sq).transform("sum").to_numpy()
    return np.where(n_control > 0, signed / np.where(n_control > 0, n_control, 1), 0.0)
