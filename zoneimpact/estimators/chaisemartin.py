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
treatment moves both above and below its status quo are dropped; status-quo values
without never-switchers, or whose groups all switch at the same date, are dropped;
``switchers="in"``/``"out"`` keeps only those switchers (and the never-switchers).

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import EstimationError, PanelError, SpecError
from ..panel import Panel, _v
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
)
from ._scale import scale_equivariant

__all__ = ["ChaisemartinResult", "fit", "switching_panel"]


@dataclass(frozen=True)
class ChaisemartinResult(EstimationResult):
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
    }

    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None
    groups: np.ndarray | None = None

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"effects": self.effects}


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
        Which switchers to keep.
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
    effects = check_int(effects, "effects", minimum=1)
    placebo = check_int(placebo, "placebo", minimum=0)
    switchers = check_choice(switchers, "switchers", ("both", "in", "out"))
    normalized = check_bool(normalized, "normalized")
    if weights is not None and weights not in panel.covariates:
        raise SpecError(
            f"Weight column {weights!r} is not a covariate of the panel (covariates: "
            f"{list(panel.covariates)})."
        )
    if treatment is not None and treatment not in panel.covariates:
        raise SpecError(
            f"Treatment column {treatment!r} is not a covariate of the panel "
            f"(covariates: {list(panel.covariates)}); build the panel with "
            "chaisemartin.switching_panel(..., treatment=...)."
        )
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
        if cluster not in data.columns or cluster in ("unit", "time"):
            raise SpecError(f"cluster={cluster!r} is not a covariate column of the panel.")
        per = data.groupby("unit")[cluster].nunique()
        if (per > 1).any():
            raise SpecError(
                f"Cluster column {cluster!r} varies within unit {_v(per.index[per > 1][0])!r}."
            )
        clusters = data.groupby("unit")[cluster].first().reindex(units).to_numpy()
    D = dwide.to_numpy(float)
    # a period without the treatment is a missing cell (weight 0), as in DIDmultiplegtDYN
    Y = np.where(np.isfinite(D), ywide.to_numpy(float), np.nan)
    n_t = len(periods)
    tt = np.arange(1, n_t + 1)  # periods as 1..T, as the paper
    seen = np.isfinite(D)
    if not seen.any(axis=1).all():
        u = units[~seen.any(axis=1)][0]
        raise PanelError(f"Treatment {treatment!r} is missing in every period for unit {_v(u)!r}.")
    first_seen = np.argmax(seen, axis=1)
    last_seen = n_t - 1 - np.argmax(seen[:, ::-1], axis=1)
    rows_g = np.arange(len(units))
    d_sq = D[rows_g, first_seen]
    changed = seen & (D != d_sq[:, None])
    F = np.where(changed.any(axis=1), np.argmax(changed, axis=1) + 1.0, np.inf)
    d_fg = np.where(
        np.isfinite(F), D[rows_g, np.where(np.isfinite(F), F - 1, 0).astype(int)], np.nan
    )
    S = np.where(np.isfinite(F), np.sign(d_fg - d_sq), 0.0)
    # --- sample rules of DIDmultiplegtDYN
    above = (seen & (D > d_sq[:, None])).any(axis=1)
    below = (seen & (D < d_sq[:, None])).any(axis=1)
    keep = ~(above & below)
    n_bidirectional = int((~keep).sum())
    if switchers == "in":
        keep &= S >= 0
    elif switchers == "out":
        keep &= S <= 0
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
    Y, D, d_sq, F, d_fg, S = Y[keep], D[keep], d_sq[keep], F[keep], d_fg[keep], S[keep]
    seen, last_seen = seen[keep], last_seen[keep]
    # periods in which no never-switcher with the same status quo is observed are dropped
    never_seen = pd.DataFrame(seen & np.isinf(F)[:, None]).groupby(d_sq).transform("max").to_numpy()
    Y = np.where(never_seen, Y, np.nan)
    groups = units[keep]
    cl = clusters[keep] if clusters is not None else None
    G = len(groups)
    Fc = np.where(np.isfinite(F), F, last_seen + 2.0)
    T_g = pd.Series(Fc).groupby(d_sq).transform("max").to_numpy() - 1
    if weights is None:
        wcell = np.ones_like(Y)
    else:
        wcell = (
            data.pivot(index="unit", columns="time", values=weights)
            .reindex(index=units, columns=periods)
            .to_numpy(float)[keep]
        )
        bad_w = np.isfinite(Y) & ~(np.isfinite(wcell) & (wcell >= 0))
        if bad_w.any():
            r, c = np.argwhere(bad_w)[0]
            raise PanelError(
                f"Weight {weights!r} must be finite and >= 0; unit {_v(groups[r])!r}, period "
                f"{_v(periods[c])!r} has {_v(wcell[r, c])!r}."
            )
    # group-period weights N_{g,t} (a missing outcome or treatment: 0)
    w = np.where(np.isfinite(Y), np.nan_to_num(wcell), 0.0)

    gi, ti = np.meshgrid(np.arange(G), np.arange(n_t), indexing="ij")
    flat_t = tt[ti].ravel()
    # cohorts of switchers (status quo, switch date, first new treatment) and of controls
    # (period, status quo), as integer codes of the (group, period) cells
    cell_keys = pd.DataFrame(
        {
            "d_sq": d_sq[gi].ravel(),
            "F": Fc[gi].ravel(),
            "d_fg": np.nan_to_num(d_fg, nan=-1e300)[gi].ravel(),
            "t": flat_t,
        }
    )
    codes_s = cell_keys.groupby(["d_sq", "F", "d_fg"], sort=False).ngroup().to_numpy()
    codes_c = cell_keys.groupby(["t", "d_sq"], sort=False).ngroup().to_numpy()
    cl_rows = pd.factorize(cl[gi].ravel())[0] if cl is not None else gi.ravel()

    rows: list[dict[str, Any]] = []
    infl: list[np.ndarray] = []
    names: list[str] = []
    eff_unnorm: dict[int, tuple[float, np.ndarray, float, float]] = {}
    missing: list[str] = []
    for kind, horizons in (("effect", range(1, effects + 1)), ("placebo", range(1, placebo + 1))):
        for ell in horizons:
            diff = np.full((G, n_t), np.nan)
            if kind == "effect":
                diff[:, ell:] = Y[:, ell:] - Y[:, :-ell]
            elif 2 * ell < n_t:
                diff[:, 2 * ell :] = Y[:, : n_t - 2 * ell] - Y[:, ell : n_t - ell]
            ok = np.isfinite(diff)
            never = (Fc[:, None] > tt[None, :]) & ok
            n_control = pd.DataFrame(w * never).groupby(d_sq).transform("sum").to_numpy()
            target = tt[None, :] == (F[:, None] - 1 + ell)
            dist = target & ok & (n_control > 0) & (S != 0)[:, None]
            n_treated = pd.DataFrame(w * dist).groupby(d_sq).transform("sum").to_numpy()
            n_s = float((w * dist).sum())
            term = f"event:{ell - 1}" if kind == "effect" else f"event:{-ell - 1}"
            if n_s == 0:
                missing.append(term)
                continue
            ratio = np.where(n_control > 0, n_treated / np.where(n_control > 0, n_control, 1), 0.0)
            coef = w * (dist.astype(float) - ratio * never)
            dz = np.where(ok, diff, 0.0)
            # sign: switchers out enter with S_g = -1 (dCDH eq. 4)
            sgn = np.where(S != 0, S, 1.0)[:, None]
            # controls of a switcher-out cell carry that cell's sign through n_treated
            coef_signed = w * (
                dist * sgn - _signed_ratio(w, dist, S, never, d_sq, n_control) * never
            )
            u_point = (G / n_s) * (coef_signed * dz).sum(axis=1)
            est = float(u_point.sum() / G)
            # variance: cohort-demeaned changes with degrees-of-freedom scaling
            sw_rows = dist.ravel()
            ct_rows = never.ravel()
            wd = (dz * w).ravel()
            wr = w.ravel()
            m_s, dof_s = _cohort_stats(codes_s, sw_rows, wd, wr, cl_rows)
            m_c, dof_c = _cohort_stats(codes_c, ct_rows, wd, wr, cl_rows)
            m_u, dof_u = _cohort_stats(codes_c, sw_rows | ct_rows, wd, wr, cl_rows)
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
            window = (
                (tt[None, :] >= ell + 1)
                & (tt[None, :] <= T_g[:, None])
                & ((T_g - 1) >= ell)[:, None]
            )
            u_var = (G / n_s) * (window * coef_signed * scale * (dz - e_hat.reshape(G, n_t))).sum(
                axis=1
            )
            del coef
            # cumulative and per-period treatment change of this horizon's switchers
            sw_g = dist.any(axis=1)
            cum = np.array(
                [
                    np.sum(D[g, int(F[g]) - 1 : int(F[g]) - 1 + ell] - d_sq[g]) if sw_g[g] else 0.0
                    for g in range(G)
                ]
            )
            wg = (w * dist).sum(axis=1)
            delta_cum = float(np.sum(wg * S * cum) / wg.sum())
            per = np.array(
                [D[g, int(F[g]) - 2 + ell] - d_sq[g] if sw_g[g] else 0.0 for g in range(G)]
            )
            delta_l = float(np.sum(wg * S * per) / wg.sum())
            if kind == "effect":
                eff_unnorm[ell] = (est, u_var, n_s, delta_l)
            scale_n = delta_cum if normalized and delta_cum != 0 else 1.0
            rows.append(
                {
                    "kind": kind,
                    "horizon": ell,
                    "term": term,
                    "estimate": est / scale_n,
                    "n_switchers": int(sw_g.sum()),
                    "delta_d": delta_cum,
                }
            )
            infl.append(u_var / scale_n)
            names.append(term)
    if missing:
        warnings.warn(
            f"No switcher has a control at {', '.join(missing)} (dCDH horizons beyond the "
            "data or without not-yet-switched groups): those terms are not reported.",
            stacklevel=2,
        )
    if not eff_unnorm:
        raise EstimationError("No DID_l effect could be estimated (no switcher has a control).")
    # average total effect (dCDH Section 3.4)
    n_l = np.array([v[2] for v in eff_unnorm.values()])
    w_l = n_l / n_l.sum()
    denom = float(np.sum(w_l * np.array([v[3] for v in eff_unnorm.values()])))
    if denom == 0:
        raise EstimationError(
            "The switchers' average treatment change is zero: no average total effect."
        )
    ate = float(np.sum(w_l * np.array([v[0] for v in eff_unnorm.values()])) / denom)
    u_ate = np.sum([w_l[i] * v[1] for i, v in enumerate(eff_unnorm.values())], axis=0) / denom
    psi = np.column_stack([u_ate, *infl])
    meat_src = psi if cl is None else pd.DataFrame(psi).groupby(cl).sum().to_numpy()
    vcov = meat_src.T @ meat_src / G**2
    se = np.sqrt(np.diag(vcov))
    effects_df = pd.DataFrame(rows)
    effects_df["se"] = se[1:]
    order = ["att", *names]
    terms = pd.DataFrame({"term": order, "estimate": [ate, *effects_df["estimate"]], "se": se})
    info: dict[str, Any] = {
        "treatment": treatment if treatment is not None else "1{t >= cohort}",
        "switchers": switchers,
        "normalized": normalized,
        "cluster": cluster,
        "weights": weights,
        "n_groups": G,
        "n_switchers": int((S != 0).sum()),
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
        n_obs=int(np.isfinite(Y).sum()),
        vcov=vcov,
        info=info,
        alpha=alpha,
        effects=effects_df[["kind", "horizon", "term", "estimate", "se", "n_switchers", "delta_d"]],
        influence=psi,
        groups=groups,
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
