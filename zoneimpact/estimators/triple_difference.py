"""Staggered triple differences: Ortiz-Villavicencio & Sant'Anna (2025).

Method
------
Ortiz-Villavicencio, M. and Sant'Anna, P. H. C. (2025), "Better Understanding Triple
Differences Estimators", arXiv:2505.09942 (OVS), as implemented by R ``triplediff``.

Units belong to an enabling cohort ``S = g`` (the period their area opens a zone; never:
``inf``) and to a partition ``Q`` in {0, 1} (``Q = 1``: eligible, e.g. the targeted
industries). The target is ``ATT(g,t) = E[Y_t(g) - Y_t(inf) | S=g, Q=1]``. Under DDD
conditional parallel trends (OVS Assumption 3), for a comparison cohort ``c`` not yet
enabled in ``t`` (OVS eq. 3.5, the doubly robust form, applied to each (g, t) and each
comparison cohort):

``DDD_c(g,t) = DiD(S=g,Q=1 vs S=g,Q=0) + DiD(S=g,Q=1 vs S=c,Q=1) - DiD(S=g,Q=1 vs S=c,Q=0)``

where each DiD is the panel 2x2 estimator of Sant'Anna & Zhao (2020) (``"dr"``: logit
propensity score of the treated subgroup against the comparison subgroup and OLS outcome
model on the comparison subgroup; ``"reg"``, ``"ipw"``), computed by
:mod:`zoneimpact.estimators.callaway_santanna`'s 2x2 routines. Covariates enter at their
value in period ``t`` of the cell (as moderndid's ``ddd``; with time-invariant covariates,
as ``triplediff`` intends, the period does not matter).

* ``control_group="never_treated"``: ``c = inf``.
* ``control_group="not_yet_treated"``: every cohort not enabled by ``max(t, base)`` (and
  the never-enabled) gives a ``DDD_c``; pooling them into one comparison group is not
  valid for DDD (OVS Section 4.2), so they are combined by the efficient GMM weights
  ``w = Omega^{-1} 1 / (1' Omega^{-1} 1)``, ``Omega`` the covariance of their influence
  functions (OVS Section 4; as ``triplediff``).

Sampling weights (``weights``, constant within unit) weight the logits, regressions and
means of every 2x2 DiD (normalised to mean one within each comparison, as ``triplediff``)
and the cohort shares. Base period ``"universal"`` (default, as ``triplediff``) or
``"varying"``. Aggregations
(``att``, ``event:E``, ``cohort:G``, ``calendar:T`` and averages) follow CS (2021) with
cohort shares over all units, via :mod:`zoneimpact.estimators._gt_aggregate`; analytic
influence-function SEs.

Input
-----
A :class:`~zoneimpact.panel.Panel` whose cohort is the enabling period and with the
partition as a 0/1 covariate column constant within unit (``eligible``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from ..errors import PanelError, SpecError
from ..inference.covariance import warn_few_treated
from ..panel import Panel, _v
from ..results import (
    check_choice,
    check_fit_arguments,
    check_names,
)
from . import callaway_santanna as _cs
from ._cells import (
    Cell,
    CellFit,
    aggregate_cells,
    att_gt_frame,
    check_aggregations,
    defined_se,
    estimate_cells,
    group_time_cells,
    warn_failures,
)
from ._gt_aggregate import AGGREGATIONS, terms_table, warn_negative_two_way
from ._influence_results import InfluenceBlocks, InfluenceResult
from ._scale import scale_equivariant

__all__ = ["TripleDifferenceResult", "fit"]


@dataclass(frozen=True)
class TripleDifferenceResult(InfluenceResult):
    """Result of :func:`fit`: aggregated terms plus the group-time effects ``att_gt``
    (``cohort``, ``time``, ``event_time``, ``base_period``, ``estimate``, ``se``,
    ``n_comparisons``).

    ``with_inference("analytic", cluster=...)`` re-sums the kept unit-level influence
    functions by any column of the panel (or its geography), a Series by unit, or two
    columns (``V_1 + V_2 - V_12``), without refitting.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "att_gt": {"estimate": 1, "se": 1},
        "influence": 1,
        "blocks": 1,
    }
    ARTIFACTS: ClassVar[tuple[str, ...]] = ("att_gt",)

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None

    def _reinferred(
        self,
        vcov: np.ndarray,
        col_var: np.ndarray,
        labels: tuple[np.ndarray, ...],
        info: dict[str, Any],
        method: str,
        boot: dict[str, Any],
    ) -> TripleDifferenceResult:
        assert self.blocks is not None and self.blocks.amat is not None
        se, cell_se = defined_se(
            self.att_gt, self.blocks.amat, vcov, col_var, two_way=len(labels) > 1
        )
        if len(labels) > 1:  # past _reinferred and with_inference
            warn_negative_two_way(self.terms["term"], np.diag(vcov), 3)
        return replace(
            self,
            terms=self.terms.assign(se=se),
            vcov=vcov,
            att_gt=self.att_gt.assign(se=cell_se),
            info=info,
        )


def _two_by_two(
    dy: np.ndarray, sub4: np.ndarray, x: np.ndarray, method: str, iw: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """One 2x2 DiD of the treated subgroup against a comparison subgroup (SZ 2020);
    without covariates or weights, the difference in mean changes."""
    if method == "unconditional" and iw is None:
        d = sub4.astype(float)
        m1, m0 = dy[sub4].mean(), dy[~sub4].mean()
        inf = np.where(sub4, (dy - m1) / d.mean(), -(dy - m0) / (1 - d.mean()))
        return float(m1 - m0), inf
    fn = {"dr": _cs._att_dr, "reg": _cs._att_reg, "ipw": _cs._att_ipw}.get(method, _cs._att_dr)
    # sampling weights (or ones) as the 2x2 routines' last argument
    return fn(dy, sub4.astype(float), x, np.ones(len(dy)) if iw is None else iw)


def _ddd(
    dy: np.ndarray,
    s: np.ndarray,
    q: np.ndarray,
    x: np.ndarray,
    method: str,
    n: int,
    w: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """DDD for one comparison cohort (OVS eq. 3.5): rows are the cell's units; ``s`` is
    1 for the enabled cohort, 0 for the comparison cohort; ``w`` sampling weights,
    normalised to mean one over the rows as ``triplediff``. Returns the estimate and the
    influence function on the ``n``-unit scale (zero outside the rows)."""
    iw_all = None if w is None else w / w.mean()
    sub4 = (s == 1) & (q == 1)
    total = 0.0
    psi = np.zeros(len(dy))
    for comp, sign in (((1, 0), 1.0), ((0, 1), 1.0), ((0, 0), -1.0)):
        rows = sub4 | ((s == comp[0]) & (q == comp[1]))
        if not ((s == comp[0]) & (q == comp[1])).any():
            raise np.linalg.LinAlgError(f"no units with S={'g' if comp[0] else 'c'}, Q={comp[1]}")
        iw = None if iw_all is None else iw_all[rows]
        att, inf = _two_by_two(dy[rows], sub4[rows], x[rows], method, iw)
        total += sign * att
        psi[rows] += sign * (n / rows.sum()) * inf
    return total, psi


class _Units(NamedTuple):
    """The panel as unit-level arrays (units in ``panel.units`` order)."""

    units: np.ndarray
    y: np.ndarray  # units x periods
    x: list[np.ndarray]  # covariates, units x periods each
    cohort: np.ndarray  # enabling period; inf: never
    q: np.ndarray  # eligibility partition Q
    w: np.ndarray | None  # sampling weights normalised to mean one; None: unweighted
    periods: np.ndarray


def _check_options(panel: Panel, eligible: str | None, **options: Any) -> dict[str, Any]:
    """The options of :func:`fit`, checked once."""
    opt = {
        "cg": check_choice(
            options["control_group"], "control_group", ("never_treated", "not_yet_treated")
        ),
        "est_method": check_choice(options["est_method"], "est_method", ("dr", "reg", "ipw")),
        "base_period": check_choice(
            options["base_period"], "base_period", ("universal", "varying")
        ),
        "aggs": check_aggregations(options["aggregations"]),
        "covs": check_names(options["covariates"], "covariates"),
    }
    if eligible is None or eligible not in panel.covariates:
        raise SpecError(
            f"Triple differences need the eligibility partition: eligible={eligible!r} is not "
            f"a covariate of the panel (covariates: {list(panel.covariates)})."
        )
    weights = options["weights"]
    for c in [*opt["covs"], *([weights] if weights is not None else [])]:
        if c not in panel.covariates:
            raise SpecError(
                f"Covariate {c!r} is not a covariate of the panel ({list(panel.covariates)})."
            )
    return {**opt, "eligible": eligible}


def _partition(data: pd.DataFrame, units: np.ndarray, eligible: str) -> np.ndarray:
    """The eligibility ``Q`` of each unit: 0 or 1, constant within unit."""
    per = data.groupby("unit")[eligible].agg(["min", "max"]).reindex(units)
    qv = per["min"].to_numpy(float)
    bad = (per["min"] != per["max"]).to_numpy() | ~np.isin(qv, [0.0, 1.0])
    if bad.any():
        u = units[np.flatnonzero(bad)[0]]
        vals = sorted(data.loc[data["unit"] == u, eligible].unique().tolist())
        raise PanelError(
            f"Eligibility column {eligible!r} must be 0 or 1 and constant within unit; unit "
            f"{_v(u)!r} has {vals}."
        )
    return qv


def _unit_weights(data: pd.DataFrame, units: np.ndarray, weights: str | None) -> np.ndarray | None:
    """Sampling weights per unit (finite, >= 0, constant within unit), mean one."""
    if weights is None:
        return None
    wper = data.groupby("unit")[weights].agg(["min", "max"]).reindex(units)
    wv = wper["min"].to_numpy(float)
    badw = (wper["min"] != wper["max"]).to_numpy() | ~np.isfinite(wv) | (wv < 0)
    if badw.any():
        u = units[np.flatnonzero(badw)[0]]
        raise PanelError(
            f"Sampling weight {weights!r} must be finite, >= 0 and constant within unit; "
            f"unit {_v(u)!r} has {sorted(data.loc[data['unit'] == u, weights].unique().tolist())}."
        )
    if wv.sum() <= 0:
        raise PanelError(f"Sampling weight {weights!r} is zero for every unit.")
    return wv / wv.mean()


def _unit_arrays(
    panel: Panel, outcome: str, eligible: str, covs: list[str], weights: str | None
) -> _Units:
    """Outcomes, covariates, cohorts, eligibility and weights per unit."""
    data = panel.data
    units = np.asarray(panel.units)
    q = _partition(data, units, eligible)
    w = _unit_weights(data, units, weights)
    return _Units(
        units=units,
        y=panel.wide(outcome).reindex(units).to_numpy(float),
        # centred and scaled as in CS: every 2x2 regression and propensity score has an
        # intercept, so nothing moves, but a covariate far from zero (x + 1e4) no longer
        # makes every cell's design look singular (a breaker's check, session 21)
        x=[_cs._standard(panel.wide(c).reindex(units).to_numpy(float)) for c in covs],
        cohort=panel.unit_cohort.reindex(units).to_numpy(float),
        q=q,
        w=w,
        periods=np.asarray(panel.periods),
    )


def _gmm_combine(estimates: list[float], columns: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Efficient (GMM) combination of the comparison cohorts' DDDs (OVS Section 4):
    weights ``Omega^{-1} 1 / (1' Omega^{-1} 1)``, ``Omega`` the covariance of their
    influence functions."""
    mat = np.column_stack(columns)
    used = np.any(mat != 0, axis=1)
    omega = np.cov(mat[used], rowvar=False)
    ones = np.ones(len(estimates))
    wts = np.linalg.pinv(omega) @ ones
    wts = wts / wts.sum()
    return float(wts @ np.array(estimates)), mat @ wts


def _ddd_cell(cell: Cell, data: _Units, cg: str, method: str) -> CellFit:
    """ATT(g,t): the DDD of each comparison cohort (OVS eq. 3.5), GMM-combined when
    there are several (not-yet-treated comparisons)."""
    g, c, b = cell.cohort, cell.t, cell.base
    gvec, periods = data.cohort, data.periods
    n = len(gvec)
    dy = data.y[:, c] - data.y[:, b]
    ok = np.isfinite(dy)
    if cg == "never_treated":
        comps = [np.inf] if np.isinf(gvec).any() else []
    else:
        later = periods[max(c, b)]
        comps = [h for h in np.unique(gvec) if (np.isinf(h) or h > later) and h != g]
    x_all = np.column_stack([np.ones(n)] + [xv[:, c] for xv in data.x])
    estimates, columns, failed = [], [], []
    for h in comps:
        rows = ok & ((gvec == g) | (gvec == h))
        if data.x and not np.all(np.isfinite(x_all[rows])):
            r = np.flatnonzero(rows & ~np.all(np.isfinite(x_all), axis=1))[0]
            raise PanelError(
                f"A covariate is missing for unit {_v(data.units[r])!r} in period "
                f"{_v(periods[c])!r} (needed for ATT({g:g},{periods[c]}))."
            )
        s = (gvec[rows] == g).astype(int)
        w = None if data.w is None else data.w[rows]
        try:
            est, local = _ddd(dy[rows], s, data.q[rows], x_all[rows], method, n, w)
        except (np.linalg.LinAlgError, _cs._Overlap) as exc:
            failed.append(f"({g:g},{periods[c]}) vs cohort {h:g}: {exc}")
            continue
        col = np.zeros(n)
        col[rows] = local
        estimates.append(est)
        columns.append(col)
    if not estimates:
        return CellFit(np.nan, None, 0, tuple(failed))
    if len(estimates) == 1:
        return CellFit(estimates[0], columns[0], 1, tuple(failed))
    att, psi = _gmm_combine(estimates, columns)
    return CellFit(att, psi, len(estimates), tuple(failed))


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    eligible: str | None = None,
    control_group: str = "never_treated",
    est_method: str = "dr",
    covariates: Sequence[str] | None = None,
    base_period: str = "universal",
    aggregations: Sequence[str] = AGGREGATIONS,
    weights: str | None = None,
    cluster: Any = None,
) -> TripleDifferenceResult:
    """Staggered triple differences ATT(g,t) and aggregations (OVS 2025).

    Parameters
    ----------
    panel : Panel
        Cohort = enabling period; ``eligible`` a 0/1 covariate column.
    outcome : str
        Outcome column.
    eligible : str
        Covariate column with the partition ``Q`` (1 eligible, 0 not), constant within unit.
    control_group : {"never_treated", "not_yet_treated"}
        Comparison cohorts (not-yet-treated: GMM-combined, OVS Section 4).
    est_method : {"dr", "reg", "ipw"}
        The 2x2 DiD estimator (without covariates all equal the difference in means).
    covariates : list of str, optional
        Covariate columns (value in period ``t`` of each cell).
    base_period : {"universal", "varying"}
        As R ``triplediff`` / ``did``.
    aggregations : list of str
        Among ``simple``, ``dynamic``, ``group``, ``calendar``.
    weights : str, optional
        Covariate column of sampling weights, constant within unit (``triplediff``
        ``weightsname``); they weight the 2x2 DiDs and the cohort shares.
    cluster : str, pandas.Series or a list of two, optional
        Cluster the influence-function variance: a panel or geography column constant
        within unit (the caller's own column names work), labels as a Series indexed by
        unit, or two of them for two-way clustering. None: by unit. The same as
        ``fit(...).with_inference("analytic", cluster=...)``.

    Returns
    -------
    TripleDifferenceResult
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="triple_difference"
    )
    opt = _check_options(
        panel,
        eligible,
        control_group=control_group,
        est_method=est_method,
        base_period=base_period,
        aggregations=aggregations,
        covariates=covariates,
        weights=weights,
    )
    data = _unit_arrays(panel, outcome, opt["eligible"], opt["covs"], weights)
    gvec, periods = data.cohort, data.periods
    n = len(gvec)
    cohorts = np.sort(np.unique(gvec[np.isfinite(gvec)]))
    # the treated units (enabling cohort and eligible) bound the treated clusters
    warn_few_treated(
        int((np.isfinite(gvec) & (data.q == 1)).sum()), "unit(s) (eligible, in an enabling cohort)",
        stacklevel=3,
    )  # fmt: skip
    method = opt["est_method"] if opt["covs"] else "unconditional"
    cells = group_time_cells(
        periods,
        cohorts,
        base_period=opt["base_period"],
        empty_message="No enabling cohort has a pre-period: nothing to estimate.",
    )
    att, psi, n_comp, failed = estimate_cells(
        cells, n, lambda cell: _ddd_cell(cell, data, opt["cg"], method), periods
    )
    warn_failures(failed, "DDD comparison(s)")
    agg = aggregate_cells(
        cells,
        periods,
        att,
        psi,
        group=gvec,
        weights=np.ones(n) if data.w is None else data.w,
        cohorts=cohorts,
        aggregations=opt["aggs"],
    )
    info: dict[str, Any] = {
        "eligible": eligible,
        "control_group": opt["cg"],
        "est_method": opt["est_method"],
        "covariates": ",".join(opt["covs"]) if opt["covs"] else None,
        "weights": weights,
        "base_period": opt["base_period"],
        "n_cells": len(cells),
        "n_comparisons_failed": len(failed),
        "se_type": "analytic influence function",
    }
    res = TripleDifferenceResult(
        estimator="triple_difference",
        outcome=outcome,
        terms=terms_table(agg),
        main_term="att",
        n_units=n,
        n_obs=int(np.isfinite(data.y).sum()),
        vcov=agg.vcov,
        info=info,
        alpha=alpha,
        att_gt=att_gt_frame(cells, periods, att, agg.cell_se, n_comparisons=n_comp),
        influence=psi,
        blocks=InfluenceBlocks(agg.basis, agg.amat, float(n), data.units, panel=panel),
    )
    return res if cluster is None else res.with_inference("analytic", cluster=cluster)
