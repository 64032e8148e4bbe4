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
    check_choice,
    check_fit_arguments,
    check_names,
)
from . import callaway_santanna as _cs
from ._gt_aggregate import AGGREGATIONS, aggregate_gt, terms_table
from ._scale import scale_equivariant

__all__ = ["TripleDifferenceResult", "fit"]


@dataclass(frozen=True)
class TripleDifferenceResult(EstimationResult):
    """Result of :func:`fit`: aggregated terms plus the group-time effects ``att_gt``
    (``cohort``, ``time``, ``event_time``, ``base_period``, ``estimate``, ``se``,
    ``n_comparisons``)."""

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {"att_gt": {"estimate": 1, "se": 1}, "influence": 1}

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"att_gt": self.att_gt}


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

    Returns
    -------
    TripleDifferenceResult
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="triple_difference"
    )
    cg = check_choice(control_group, "control_group", ("never_treated", "not_yet_treated"))
    est_method = check_choice(est_method, "est_method", ("dr", "reg", "ipw"))
    base_period = check_choice(base_period, "base_period", ("universal", "varying"))
    aggs = tuple(check_names(aggregations, "aggregations"))
    for a in aggs:
        check_choice(a, "aggregations", AGGREGATIONS)
    covs = check_names(covariates, "covariates")
    if eligible is None or eligible not in panel.covariates:
        raise SpecError(
            f"Triple differences need the eligibility partition: eligible={eligible!r} is not "
            f"a covariate of the panel (covariates: {list(panel.covariates)})."
        )
    for c in [*covs, *([weights] if weights is not None else [])]:
        if c not in panel.covariates:
            raise SpecError(
                f"Covariate {c!r} is not a covariate of the panel ({list(panel.covariates)})."
            )
    data = panel.data
    units = np.asarray(panel.units)
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
    wv = None
    if weights is not None:
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
        wv = wv / wv.mean()
    y = panel.wide(outcome).reindex(units).to_numpy(float)
    xw = [panel.wide(c).reindex(units).to_numpy(float) for c in covs]
    gvec = panel.unit_cohort.reindex(units).to_numpy(float)
    periods = np.asarray(panel.periods)
    n, n_t = y.shape
    cohorts = np.sort(np.unique(gvec[np.isfinite(gvec)]))
    method = est_method if covs else "unconditional"
    tfac = 1 if base_period == "varying" else 0
    cells: list[tuple[float, int, int, bool]] = []
    for g in cohorts:
        pre = np.flatnonzero(periods < g)
        if pre.size == 0:
            continue
        for c in range(tfac, n_t):
            post = g <= periods[c]
            b = int(pre[-1]) if (post or base_period == "universal") else c - 1
            cells.append((float(g), c, b, b == c))
    if not cells:
        raise EstimationError("No enabling cohort has a pre-period: nothing to estimate.")
    k = len(cells)
    psi = np.zeros((n, k))
    att = np.full(k, np.nan)
    n_comp = np.zeros(k, dtype=int)
    failed: list[str] = []
    for j, (g, c, b, normalised) in enumerate(cells):
        if normalised:
            att[j] = 0.0
            continue
        dy = y[:, c] - y[:, b]
        ok = np.isfinite(dy)
        if cg == "never_treated":
            comps = [np.inf] if np.isinf(gvec).any() else []
        else:
            later = periods[max(c, b)]
            comps = [h for h in np.unique(gvec) if (np.isinf(h) or h > later) and h != g]
        xcol = c
        x_all = np.column_stack([np.ones(n)] + [xv[:, xcol] for xv in xw])
        estimates, columns = [], []
        for h in comps:
            rows = ok & ((gvec == g) | (gvec == h))
            if covs and not np.all(np.isfinite(x_all[rows])):
                r = np.flatnonzero(rows & ~np.all(np.isfinite(x_all), axis=1))[0]
                raise PanelError(
                    f"A covariate is missing for unit {_v(units[r])!r} in period "
                    f"{_v(periods[xcol])!r} (needed for ATT({g:g},{periods[c]}))."
                )
            s = (gvec[rows] == g).astype(int)
            try:
                est, local = _ddd(
                    dy[rows], s, qv[rows], x_all[rows], method, n, None if wv is None else wv[rows]
                )
            except (np.linalg.LinAlgError, _cs._Overlap) as exc:
                failed.append(f"({g:g},{periods[c]}) vs cohort {h:g}: {exc}")
                continue
            col = np.zeros(n)
            col[rows] = local
            estimates.append(est)
            columns.append(col)
        if not estimates:
            psi[:, j] = np.nan
            continue
        if len(estimates) == 1:
            att[j], psi[:, j] = estimates[0], columns[0]
        else:
            # efficient (GMM) combination of the comparison cohorts (OVS Section 4)
            mat = np.column_stack(columns)
            used = np.any(mat != 0, axis=1)
            omega = np.cov(mat[used], rowvar=False)
            ones = np.ones(len(estimates))
            wts = np.linalg.pinv(omega) @ ones
            wts = wts / wts.sum()
            att[j] = float(wts @ np.array(estimates))
            psi[:, j] = mat @ wts
        n_comp[j] = len(estimates)
    if failed:
        warnings.warn(
            f"{len(failed)} DDD comparison(s) could not be estimated: {'; '.join(failed[:5])}",
            stacklevel=2,
        )
    cell_g = np.array([cl[0] for cl in cells])
    cell_t = periods[[cl[1] for cl in cells]]
    normalised_arr = np.array([cl[3] for cl in cells])
    agg = aggregate_gt(
        cell_g=cell_g,
        cell_t=cell_t,
        att=att,
        psi=np.nan_to_num(psi),
        group=gvec,
        weights=np.ones(n) if wv is None else wv,
        cohorts=cohorts,
        aggregations=aggs,
        normalised=normalised_arr,
    )
    att_gt = pd.DataFrame(
        {
            "cohort": cell_g.astype(np.int64),
            "time": cell_t,
            "event_time": (cell_t - cell_g).astype(np.int64),
            "base_period": periods[[cl[2] for cl in cells]],
            "estimate": att,
            "se": agg.cell_se,
            "n_comparisons": n_comp,
        }
    )
    info: dict[str, Any] = {
        "eligible": eligible,
        "control_group": cg,
        "est_method": est_method,
        "covariates": ",".join(covs) if covs else None,
        "weights": weights,
        "base_period": base_period,
        "n_cells": k,
        "n_comparisons_failed": len(failed),
        "se_type": "analytic influence function",
    }
    return TripleDifferenceResult(
        estimator="triple_difference",
        outcome=outcome,
        terms=terms_table(agg),
        main_term="att",
        n_units=n,
        n_obs=int(np.isfinite(y).sum()),
        vcov=agg.vcov,
        info=info,
        alpha=alpha,
        att_gt=att_gt,
        influence=psi,
    )
