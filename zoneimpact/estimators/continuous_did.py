"""Continuous (dose) treatments: Callaway, Goodman-Bacon & Sant'Anna (2024).

Method
------
Callaway, B., Goodman-Bacon, A. and Sant'Anna, P. H. C. (2024), "Difference-in-differences
with a continuous treatment", NBER WP 32117 (CGBS), as implemented by R ``contdid`` (and
diff-diff's ``ContinuousDiD``).

Units adopt the treatment (a zone) in period ``G`` with a time-invariant dose ``D > 0``
(zone size, number of zones...); untreated units have ``D = 0``. For each cohort ``g`` and
post-treatment period ``t`` (base period ``g - 1 - anticipation``), with ``dY = Y_t - Y_base``:

* ``ATT_{g,t}(d) = E[dY | G=g, D=d] - E[dY | comparison]`` under strong parallel trends
  ``ATT(d|d) = ATT(d)`` (CGBS Section 3); estimated by OLS of ``dY - mean(dY_comparison)``
  on a B-spline basis ``psi(d)`` of the dose among cohort ``g`` (CGBS Section 4.1, the
  parametric sieve of ``contdid``: degree ``degree``, ``num_knots`` interior knots at dose
  quantiles, boundary knots at the smallest and largest treated dose, an intercept in
  place of the first spline);
* ``ACRT_{g,t}(d) = d ATT_{g,t}(d) / dd = psi'(d)' beta`` (average causal response);
* summary parameters ``ATT^o = E[dY | G=g, D>0] - E[dY | comparison]`` (term ``att``) and
  ``ACRT^o = E[ACRT(D) | D > 0]`` (term ``acrt``; CGBS eq. 3.4).

Cells are aggregated with ``contdid``'s weights: cohort ``g`` gets its share of treated
units, split equally among its post-treatment cells. The curves are evaluated on a dose
grid (default: the 10th to 99th percentiles of the treated doses by steps of one
percentile, as ``contdid``), reported as terms ``att_d:<k>``/``acrt_d:<k>`` and as the
``dose_response`` table (``dose``, ``att``, ``att_se``, ``acrt``, ``acrt_se`` and the
uniform bands).

Inference: unit-level influence functions (OLS linear representation of ``beta``; the
comparison mean; for ``ACRT^o`` also the average over treated doses, which diff-diff 3.13
omits), cell weights taken as fixed as diff-diff does. Pointwise SEs are analytic;
**uniform bands** over the dose grid come from the multiplier bootstrap of those
influence functions (Rademacher or Mammen weights; sup-t critical value, CGBS Section
4.3 / CS 2021 Algorithm 1), drawn with :func:`zoneimpact.inference.bootstrap.multiplier_draws`.

**Weights** (``weights``; analytic or sampling weights ``w_i``, constant within unit, as
diff-diff's ``ContinuousDiD`` with ``SurveyDesign(weights=...)``): the comparison mean
and ``ATT^o`` are weighted means, the sieve is weighted least squares
(``beta = (Psi' W Psi)^{-1} Psi' W dY~``), ``ACRT^o`` the weighted mean of ``ACRT(D_i)``,
a cohort's share (and an event-time cell's) is its weight mass, and every influence
function carries ``w_i`` over the weight mass of its group (treated or comparison) in
place of ``1/n``, so the SEs and the uniform bands are those of the weighted estimator.
diff-diff's survey SEs multiply these influence functions by ``w_i`` once more (see
``tests/test_continuous_did.py`` and ``benchmarks/mc_dose_weights.py``). Knots and the
default grid stay the unweighted dose quantiles, as in diff-diff. Multiplying every
weight by a constant changes nothing; integer weights equal duplicated units.

Input
-----
A :class:`~zoneimpact.panel.Panel` whose cohort gives each unit's first treated period and
with the dose as a covariate column (``dose``): constant within unit, ``> 0`` for units
with a cohort, ``0`` for never-treated units. The panel must be balanced in the periods
used. Why by hand: no library fits contdid's sieve with its influence functions; the
B-spline design comes from :class:`scipy.interpolate.BSpline`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.interpolate import BSpline

from ..errors import EstimationError, PanelError, SpecError
from ..inference.bootstrap import multiplier_draws, sup_t_critical
from ..panel import Panel, _v
from ..parallel import as_generator
from ..results import check_choice, check_fit_arguments, check_int
from ._gt_aggregate import variance_se, warn_negative_two_way
from ._influence_results import InfluenceBlocks, InfluenceResult, covariate_column, influence_vcov
from ._scale import scale_equivariant
from ._weights import check_weight_name, unit_weights

__all__ = ["ContinuousDiDResult", "bspline_basis", "fit"]


@dataclass(frozen=True)
class ContinuousDiDResult(InfluenceResult):
    """Result of :func:`fit`.

    ``with_inference(method, cluster=...)`` re-sums the kept unit-level influence
    functions by any column of the panel (or its geography), a Series by unit, or two
    columns (``V_1 + V_2 - V_12``), without refitting. ``"bootstrap"`` redraws the
    uniform bands of the two curves (clustered multiplier draws, CGBS Section 4.3);
    ``"analytic"`` reports pointwise bands.

    Attributes
    ----------
    dose_response : DataFrame
        ``dose``, ``att``, ``att_se``, ``att_band_low``, ``att_band_high``, ``acrt``,
        ``acrt_se``, ``acrt_band_low``, ``acrt_band_high`` on the dose grid.
    cells : DataFrame
        Per (cohort, period) cell: ``cohort``, ``time``, ``weight``, ``att``, ``acrt``,
        ``n_treated``, ``n_control``.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "dose_response": {"dose": 0, "*": 1},
        "cells": {"att": 1, "acrt": 1},
        "blocks": 1,
    }
    ARTIFACTS: ClassVar[tuple[str, ...]] = ("dose_response", "cells")
    INFERENCE_METHODS: ClassVar[tuple[str, ...]] = ("analytic", "bootstrap")

    dose_response: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def _reinferred(
        self,
        vcov: np.ndarray,
        col_var: np.ndarray,
        labels: tuple[np.ndarray, ...],
        info: dict[str, Any],
        method: str,
        boot: dict[str, Any],
    ) -> ContinuousDiDResult:
        assert self.blocks is not None and self.blocks.panel is not None
        terms, curves = self.terms, self.dose_response
        k = len(curves)
        old = terms["se"].to_numpy(float)
        # ACRT with a single dose stays undefined (NaN), whatever the clustering
        se = np.where(np.isnan(old), np.nan, variance_se(np.diag(vcov), len(labels) > 1))
        if len(labels) > 1:  # past _reinferred and with_inference
            warn_negative_two_way(terms["term"], np.where(np.isnan(old), 0, np.diag(vcov)), 3)
        single_dose = bool(np.isnan(old[1]))
        boot_on = method == "bootstrap" and not single_dose
        z, crit_att, crit_acrt = _critical_values(
            np.asarray(self.blocks.psi)[:, : 2 + 2 * k],
            se[: 2 + 2 * k],
            k,
            alpha=self.alpha,
            n_boot=check_int(boot["n_boot"], "n_boot", minimum=2) if boot_on else 0,
            rng=as_generator(boot["rng"]) if boot_on else None,
            n_jobs=boot["n_jobs"],
            boot_weights=check_choice(
                boot["boot_weights"], "boot_weights", ("rademacher", "mammen")
            ),
            order=_canonical_rows(self.blocks.panel, self.blocks.ids, self.outcome),
            cluster=labels[0] if labels else None,
        )
        crit = np.full(len(terms), z)
        crit[2 : 2 + k], crit[2 + k : 2 + 2 * k] = crit_att, crit_acrt
        est = terms["estimate"].to_numpy(float)
        terms = terms.assign(se=se, band_low=est - crit * se, band_high=est + crit * se)
        info.update(
            n_boot=int(boot["n_boot"]) if boot_on else 0,
            boot_weights=boot["boot_weights"] if boot_on else None,
            crit_att_d=float(crit_att),
            crit_acrt_d=float(crit_acrt),
            se_type="analytic influence function; "
            + ("uniform bands by multiplier bootstrap" if boot_on else "pointwise bands"),
        )
        curves = _dose_response(curves["dose"].to_numpy(), terms, curves["acrt"].to_numpy())
        return replace(self, terms=terms, vcov=vcov, info=info, dose_response=curves)


class _Doses(NamedTuple):
    """The panel as unit-level arrays (units in ``panel.units`` order)."""

    units: np.ndarray
    dose: np.ndarray  # per unit; 0 for never-treated units
    cohort: np.ndarray  # per unit; inf for never-treated units
    treated: np.ndarray
    y: np.ndarray  # units x periods
    periods: np.ndarray
    col: dict[int, int]  # period -> column of y
    w: np.ndarray | None  # unit weights normalised to mean one; None: unweighted
    order: np.ndarray  # rows in Panel.canonical_order: the bootstrap draws over it


class _Sieve(NamedTuple):
    """The B-spline sieve (CGBS Section 4.1) and its evaluation on the dose grid."""

    knots: np.ndarray
    degree: int
    num_knots: int
    grid: np.ndarray
    psi_grid: np.ndarray
    dpsi_grid: np.ndarray
    single_dose: bool


class _CellFit(NamedTuple):
    """One (g, t) cell: its estimates and the influence functions of ATT^o, ACRT^o,
    ATT(d) and ACRT(d) on the contribution scale (``se = sqrt(sum psi^2)``)."""

    row: dict[str, Any]
    if_att_o: np.ndarray
    if_acrt_o: np.ndarray
    if_att_d: np.ndarray
    if_acrt_d: np.ndarray


# ------------------------------------------------------------- weighted arithmetic
# Unweighted (w None) every helper runs the plain numpy expression, so that results
# without weights are bit-identical to the unweighted estimator.
def _mean(x: np.ndarray, w: np.ndarray | None) -> Any:
    """Mean over the first axis, weighted by ``w``."""
    return x.mean(axis=0) if w is None else np.average(x, axis=0, weights=w)


def _times(w: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """``w_i x_i`` row by row (``x`` unchanged without weights)."""
    if w is None:
        return x
    return x * (w[:, None] if x.ndim == 2 else w)


def _mass(mask: np.ndarray, w: np.ndarray | None) -> Any:
    """Number (without weights: an int) or weight mass of the units in ``mask``."""
    return int(mask.sum()) if w is None else float(w[mask].sum())


def _sub(w: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if w is None else w[mask]


def bspline_basis(x: np.ndarray, knots: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The design of R contdid (intercept + B-splines but the first) and its derivative."""
    if knots[0] == knots[-1]:  # a single dose: the intercept alone
        return np.ones((len(x), 1)), np.zeros((len(x), 1))
    x = np.clip(np.asarray(x, float), knots[degree], knots[-degree - 1])
    n_basis = len(knots) - degree - 1
    design = BSpline.design_matrix(x, knots, degree).toarray()
    deriv = np.zeros_like(design)
    if knots[0] != knots[-1] and degree > 0:
        for j in range(n_basis):
            c = np.zeros(n_basis)
            c[j] = 1.0
            deriv[:, j] = BSpline(knots, c, degree).derivative()(x)
    ones = np.ones((len(x), 1))
    return np.hstack([ones, design[:, 1:]]), np.hstack([0 * ones, deriv[:, 1:]])


def _comparison(
    gvec: np.ndarray, treated: np.ndarray, g: float, t: float, cg: str, anticipation: int
) -> np.ndarray:
    """Comparison units of cohort ``g`` in period ``t``: never treated, or also not yet
    treated by ``t + anticipation`` (CGBS Section 3, contdid's ``control_group``)."""
    if cg == "never_treated":
        return ~treated
    return ~treated | ((gvec > t + anticipation) & (gvec != g))


def _event_study(
    data: _Doses, cg: str, anticipation: int
) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Binarised ATT^o by event time with its influence function (contribution scale);
    cells weighted by their treated units (weight mass with weights)."""
    gvec, periods, col, w = data.cohort, data.periods, data.col, data.w
    n = len(gvec)
    by_e: dict[int, list[tuple[float, np.ndarray, Any]]] = {}
    for g in np.unique(gvec[data.treated]):
        for i, t in enumerate(periods):
            post = t >= g - anticipation
            base = (
                _base_period(periods, g, anticipation)
                if post
                else (periods[i - 1] if i > 0 else None)
            )
            if base is None or int(base) not in col or int(t) == int(base):
                continue
            dy = data.y[:, col[int(t)]] - data.y[:, col[int(base)]]
            ok = np.isfinite(dy)
            tr = (gvec == g) & ok
            ctrl = _comparison(gvec, data.treated, g, t, cg, anticipation) & ok
            if not tr.any() or not ctrl.any():
                continue
            n1, n0 = _mass(tr, w), _mass(ctrl, w)
            m1, m0 = _mean(dy[tr], _sub(w, tr)), _mean(dy[ctrl], _sub(w, ctrl))
            psi = np.zeros(n)
            psi[tr] = _times(_sub(w, tr), dy[tr] - m1) / n1
            psi[ctrl] = -_times(_sub(w, ctrl), dy[ctrl] - m0) / n0
            by_e.setdefault(int(t - g), []).append((float(m1 - m0), psi, n1))
    est: dict[int, float] = {}
    inf: dict[int, np.ndarray] = {}
    for e in sorted(by_e):
        share = np.array([c[2] for c in by_e[e]], dtype=float)
        share /= share.sum()
        est[e] = float(sum(wi * c[0] for wi, c in zip(share, by_e[e], strict=True)))
        inf[e] = np.sum([wi * c[1] for wi, c in zip(share, by_e[e], strict=True)], axis=0)
    return est, inf


# ------------------------------------------------------------------- the steps
def _unit_arrays(panel: Panel, outcome: str, dose: str | None, weights: str | None) -> _Doses:
    """Doses, cohorts, outcomes and weights per unit; refuses doses that vary within a
    unit, that are not > 0 for treated units or not 0 for never-treated units."""
    data = panel.data
    if dose is None:
        data = data.assign(_dose=np.isfinite(data["cohort"]).astype(float))
    dcol = dose if dose is not None else "_dose"
    per_unit = data.groupby("unit")[dcol].agg(["min", "max"])
    varies = per_unit.index[(per_unit["min"] != per_unit["max"]).to_numpy()]
    if len(varies):
        raise PanelError(
            f"Dose {dose!r} varies within unit {_v(varies[0])!r}; CGBS doses are time-invariant."
        )
    units = np.asarray(panel.units)
    dvec = per_unit["min"].reindex(units).to_numpy(float)
    gvec = panel.unit_cohort.reindex(units).to_numpy(float)
    treated = np.isfinite(gvec)
    bad = (treated & ~(dvec > 0)) | (~treated & (dvec != 0))
    if bad.any() or not np.isfinite(dvec).all():
        i = int(np.flatnonzero(bad | ~np.isfinite(dvec))[0])
        raise PanelError(
            f"Dose {dose!r} of unit {_v(units[i])!r} is {_v(dvec[i])!r} with cohort "
            f"{'never' if not treated[i] else int(gvec[i])}: treated units need a dose > 0 "
            "and never-treated units a dose of 0."
        )
    w = None
    if weights is not None:
        w = unit_weights(panel.data, weights, units)
        w = w / w.mean()
    periods = np.asarray(panel.periods)
    return _Doses(
        units=units,
        dose=dvec,
        cohort=gvec,
        treated=treated,
        y=panel.wide(outcome).reindex(units).to_numpy(float),
        periods=periods,
        col={int(p): i for i, p in enumerate(periods)},
        w=w,
        order=_canonical_rows(panel, units, outcome),
    )


def _canonical_rows(panel: Panel, units: np.ndarray, outcome: str) -> np.ndarray:
    """Positions of ``units`` in :meth:`Panel.canonical_order`: the multiplier draws go
    over this order, so relabelling units cannot change the bands (it moved the ATT(d)
    band's critical value from 2.584 to 2.688 on one seed: a breaker's check, session
    21); CS draws the same way."""
    return pd.Index(units).get_indexer(panel.canonical_order(units, outcome))


def _sieve(
    doses_t: np.ndarray, degree: int, num_knots: int, dose_grid: list[float] | None
) -> _Sieve:
    """Knots at the treated-dose quantiles, boundary knots at the extreme doses, and the
    dose grid (default: treated-dose percentiles 10..99, as contdid)."""
    single_dose = bool(doses_t.min() == doses_t.max())
    if single_dose:
        # one dose (a binary treatment): the sieve is the intercept, ACRT is not identified
        degree, num_knots = 0, 0
    inner = (
        np.quantile(doses_t, np.linspace(0, 1, num_knots + 2)[1:-1]) if num_knots else np.array([])
    )
    n_distinct = np.unique(doses_t).size
    if not single_dose and (
        n_distinct <= degree + num_knots
        or np.unique(inner).size < inner.size
        or (inner.size and (inner[0] <= doses_t.min() or inner[-1] >= doses_t.max()))
    ):
        # a discrete dose: the spline's degree + num_knots + 1 coefficients need as many
        # distinct doses, and quantile knots must not repeat or sit on the boundary (scipy
        # had raised "internal repeated knots"; a breaker's check, session 21)
        raise SpecError(
            f"The treated units have {n_distinct} distinct doses, too few for a spline of "
            f"degree {degree} with {num_knots} interior knots at dose quantiles ({inner.tolist()} "
            f"within [{doses_t.min():g}, {doses_t.max():g}]); lower degree or num_knots "
            f"(degree + num_knots must be below the number of distinct doses, here {n_distinct})."
        )
    knots = np.concatenate(
        [np.repeat(doses_t.min(), degree + 1), inner, np.repeat(doses_t.max(), degree + 1)]
    )
    if dose_grid is not None:
        grid = np.asarray(dose_grid, dtype=float)
        lo, hi = doses_t.min(), doses_t.max()
        if grid.ndim == 1 and np.any((grid < lo) | (grid > hi)):
            # outside the treated doses the sieve is held at its boundary value, so
            # ATT(0) read 0.21 where it is 0 by definition (a breaker's check, session 21)
            raise SpecError(
                f"dose_grid values {grid[(grid < lo) | (grid > hi)].tolist()} lie outside "
                f"the treated units' doses [{lo:g}, {hi:g}]; the dose-response is "
                "estimated only within them."
            )
    elif single_dose:
        grid = doses_t[:1]
    else:
        grid = np.quantile(doses_t, np.arange(0.10, 0.995, 0.01))
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise SpecError(
            f"dose_grid must be a non-empty list of finite doses; received {dose_grid!r}."
        )
    psi_grid, dpsi_grid = bspline_basis(grid, knots, degree)
    return _Sieve(knots, degree, num_knots, grid, psi_grid, dpsi_grid, single_dose)


def _post_cells(data: _Doses, anticipation: int) -> list[tuple[float, int, int]]:
    """(cohort, period, base period) of every post-treatment cell (``t >= g``) with its
    base period, the last period before ``g - anticipation`` (``g - 1 - anticipation``
    with consecutive periods; with a missing year or biennial data the last one observed,
    as CS's ``_make_cells``, where the cohort had been dropped silently or the fit
    refused: a breaker's check in session 21); a cohort without one is warned about. The anticipation periods
    ``g - anticipation <= t < g`` are not post-treatment: as R ``did``'s ``aggte`` (which
    averages ``t >= g`` only) they stay out of ``ATT^o``, ``ACRT^o`` and the curves, and
    appear in the event study at negative event times (diff-diff 3.13 averages them in,
    so its ATT^o with anticipation 1 read 0.378 where the truth was 0.543: a breaker's
    check in session 21)."""
    cells = []
    for g in np.sort(np.unique(data.cohort[data.treated])):
        base = _base_period(data.periods, g, anticipation)
        if base is None:
            warnings.warn(
                f"Cohort {g:g} has no period before {g - anticipation:g} in the data "
                f"(anticipation={anticipation}); its {int((data.cohort == g).sum())} "
                "units are left out of every estimate.",
                stacklevel=4,
            )
            continue
        for t in data.periods[data.periods >= g]:
            cells.append((float(g), int(t), int(base)))
    if not cells:
        raise EstimationError("No cohort has a base period inside the data: nothing to estimate.")
    return cells


def _base_period(periods: np.ndarray, g: float, anticipation: int) -> int | None:
    """The last period before ``g - anticipation`` (CGBS's ``g - 1`` generalised as CS
    2021 Section 3.1 does), or None when the data start later."""
    before = periods[periods + anticipation < g]
    return int(before[-1]) if before.size else None


def _cell_fit(
    data: _Doses, sieve: _Sieve, cell: tuple[float, int, int], cg: str, anticipation: int
) -> _CellFit | None:
    """ATT_{g,t}(d), ACRT_{g,t}(d), ATT^o and ACRT^o of one cell (CGBS Section 4.1) with
    their influence functions; None when the sieve is not identified in the cell."""
    g, t, b = cell
    n = len(data.cohort)
    dy = data.y[:, data.col[t]] - data.y[:, data.col[b]]
    ok = np.isfinite(dy)
    tr = (data.cohort == g) & ok
    ctrl = _comparison(data.cohort, data.treated, g, t, cg, anticipation) & ok
    n1, n0 = int(tr.sum()), int(ctrl.sum())
    psi, dpsi = bspline_basis(data.dose[tr], sieve.knots, sieve.degree)
    if n0 == 0 or n1 <= psi.shape[1]:
        return None
    w1, w0 = _sub(data.w, tr), _sub(data.w, ctrl)
    mass1, mass0 = _mass(tr, data.w), _mass(ctrl, data.w)
    mu0 = _mean(dy[ctrl], w0)
    dty = dy[tr] - mu0
    m = psi.T @ _times(w1, psi) / mass1
    if np.linalg.cond(m) > 1 / np.finfo(float).eps:
        return None
    beta = np.linalg.solve(m, psi.T @ _times(w1, dty) / mass1)
    resid = dty - psi @ beta
    acrt_i = dpsi @ beta
    att_o, acrt_o = float(_mean(dty, w1)), float(_mean(acrt_i, w1))
    # linear representation of beta: treated i -> M^{-1} psi_i w_i e_i / W1;
    # control j -> -M^{-1} psibar w_j (dY_j - mu0) / W0 (beta moves with the comparison mean)
    minv = np.linalg.inv(m)
    b_tr = (psi * _times(w1, resid)[:, None]) @ minv / mass1
    b_ct = -np.outer(_times(w0, dy[ctrl] - mu0), minv @ _mean(psi, w1)) / mass0
    k = len(sieve.grid)
    if_att_d, if_acrt_d = np.zeros((n, k)), np.zeros((n, k))
    if_att_d[tr], if_att_d[ctrl] = b_tr @ sieve.psi_grid.T, b_ct @ sieve.psi_grid.T
    if_acrt_d[tr], if_acrt_d[ctrl] = b_tr @ sieve.dpsi_grid.T, b_ct @ sieve.dpsi_grid.T
    dbar = _mean(dpsi, w1)
    if_att_o, if_acrt_o = np.zeros(n), np.zeros(n)
    if_att_o[tr] = _times(w1, dy[tr] - _mean(dy[tr], w1)) / mass1
    if_att_o[ctrl] = -_times(w0, dy[ctrl] - mu0) / mass0
    if_acrt_o[tr] = b_tr @ dbar + _times(w1, acrt_i - acrt_o) / mass1
    if_acrt_o[ctrl] = b_ct @ dbar
    row = {
        "cohort": int(g),
        "time": t,
        "att": att_o,
        "acrt": acrt_o,
        "n_treated": n1,
        "n_control": n0,
        "_mass": mass1,
        "_att_d": sieve.psi_grid @ beta,
        "_acrt_d": sieve.dpsi_grid @ beta,
    }
    return _CellFit(row, if_att_o, if_acrt_o, if_att_d, if_acrt_d)


def _aggregate(fits: list[_CellFit]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The aggregation of contdid: cohort ``g`` gets its share of treated units (weight mass
    with weights), split equally among its post-treatment cells. Returns the cells, the
    estimates (ATT^o, ACRT^o, ATT(d), ACRT(d)) and their influence functions."""
    cell_df = pd.DataFrame([f.row for f in fits])
    n_g = cell_df.groupby("cohort")["_mass"].transform("first").to_numpy(float)
    first_n = cell_df.groupby("cohort")["_mass"].first()
    n_cells_g = cell_df.groupby("cohort")["time"].transform("size").to_numpy(float)
    weight = n_g / first_n.sum() / n_cells_g
    cell_df["weight"] = weight
    att_o = float(weight @ cell_df["att"])
    acrt_o = float(weight @ cell_df["acrt"])
    att_d = np.sum([w * r for w, r in zip(weight, cell_df["_att_d"], strict=True)], axis=0)
    acrt_d = np.sum([w * r for w, r in zip(weight, cell_df["_acrt_d"], strict=True)], axis=0)
    psi_all = np.column_stack(
        [sum(w * f[j] for w, f in zip(weight, fits, strict=True)) for j in range(1, 5)]
    )
    return cell_df, np.concatenate([[att_o, acrt_o], att_d, acrt_d]), psi_all


def _critical_values(
    psi_all: np.ndarray,
    se: np.ndarray,
    k: int,
    *,
    alpha: float,
    n_boot: int,
    rng: np.random.Generator | None,
    n_jobs: int,
    boot_weights: Literal["rademacher", "mammen"],
    order: np.ndarray,
    cluster: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Pointwise ``z`` and the sup-t critical values of the ATT(d) and ACRT(d) bands by the
    multiplier bootstrap of the influence functions (CGBS Section 4.3), one weight per
    cluster when ``cluster`` labels the units; rows (and clusters, numbered as first met)
    are taken in the canonical ``order``."""
    z = stats.norm.ppf(1 - alpha / 2)
    crit_att = crit_acrt = z
    if n_boot > 0:
        psi_all = psi_all[order]
        if cluster is not None:
            cluster = pd.factorize(np.asarray(cluster)[order])[0]
        draws = multiplier_draws(
            psi_all * len(psi_all),
            n_boot=n_boot,
            rng=rng,
            cluster=cluster,
            n_jobs=n_jobs,
            weights=boot_weights,
        )
        crit_att = max(z, sup_t_critical(draws[:, 2 : 2 + k], se[2 : 2 + k], alpha))
        crit_acrt = max(z, sup_t_critical(draws[:, 2 + k :], se[2 + k :], alpha))
    return z, crit_att, crit_acrt


def _skip_draws(rng: np.random.Generator | int | None, n_boot: int) -> None:
    """Leave the caller's generator as a by-unit bootstrap of ``n_boot`` draws would:
    :func:`multiplier_draws` spawns one child of ``as_generator(rng)`` per chunk of 100
    draws (its default ``chunk_size``) and draws nothing from the parent itself. So
    ``fit(cluster=c)`` stays equal to ``fit()`` then ``with_inference("bootstrap",
    cluster=c)`` on the same generator, and so do the caller's later draws from it (a
    seed or None makes a throwaway generator: nothing to advance that anyone sees)."""
    as_generator(rng).spawn(-(-n_boot // 100))


def _terms(
    data: _Doses,
    sieve: _Sieve,
    est: np.ndarray,
    psi_all: np.ndarray,
    opt: dict[str, Any],
    *,
    alpha: float,
    rng: np.random.Generator | None,
    n_jobs: int,
) -> tuple[pd.DataFrame, np.ndarray, float, float, np.ndarray]:
    """Terms (ATT^o, ACRT^o, the curves, the event study) with SEs and bands, their
    covariance, the sup-t critical values of the two curves and the terms' influence
    functions (units x terms, kept for ``with_inference``)."""
    k = len(sieve.grid)
    est = est.copy()
    vcov, se = influence_vcov(psi_all)
    if sieve.single_dose:
        acrt_cols = np.r_[1, np.arange(2 + k, 2 + 2 * k)]
        est[acrt_cols] = np.nan
        se[acrt_cols] = np.nan
    z, crit_att, crit_acrt = _critical_values(
        psi_all,
        se,
        k,
        alpha=alpha,
        n_boot=0 if sieve.single_dose else opt["n_boot"],
        rng=rng,
        n_jobs=n_jobs,
        boot_weights=opt["boot_weights"],
        order=data.order,
    )
    names = ["att", "acrt"] + [f"att_d:{i}" for i in range(k)] + [f"acrt_d:{i}" for i in range(k)]
    crit = np.concatenate([[z, z], np.full(k, crit_att), np.full(k, crit_acrt)])
    # event study of the binarised ATT^o (contdid aggregation="eventstudy"): every (g, t)
    # cell, pre-periods against the period before, weighted by treated units per cell
    ev_est, ev_if = _event_study(data, opt["cg"], opt["anticipation"])
    basis = psi_all
    if ev_est:
        ev_psi = np.column_stack([ev_if[e] for e in ev_est])
        names += [f"event:{e}" for e in ev_est]
        est = np.concatenate([est, list(ev_est.values())])
        se = np.concatenate([se, np.sqrt(np.einsum("ij,ij->j", ev_psi, ev_psi))])
        crit = np.concatenate([crit, np.full(len(ev_est), z)])
        basis = np.column_stack([psi_all, ev_psi])
        vcov = influence_vcov(basis)[0]
    terms = pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "se": se,
            "band_low": est - crit * se,
            "band_high": est + crit * se,
        }
    )
    return terms, vcov, crit_att, crit_acrt, basis


def _dose_response(grid: np.ndarray, terms: pd.DataFrame, acrt_d: np.ndarray) -> pd.DataFrame:
    """The curves on the grid from the ``att_d:<k>``/``acrt_d:<k>`` rows of ``terms``."""
    k = len(grid)
    att, acrt = slice(2, 2 + k), slice(2 + k, 2 + 2 * k)
    se, low, high = (terms[c].to_numpy() for c in ("se", "band_low", "band_high"))
    return pd.DataFrame(
        {
            "dose": grid,
            "att": terms["estimate"].to_numpy()[att],
            "att_se": se[att],
            "att_band_low": low[att],
            "att_band_high": high[att],
            "acrt": acrt_d,
            "acrt_se": se[acrt],
            "acrt_band_low": low[acrt],
            "acrt_band_high": high[acrt],
        }
    )


def _check_options(
    panel: Panel, dose: str | None, weights: str | None, **options: Any
) -> dict[str, Any]:
    """The options of :func:`fit`, checked once."""
    covariate_column(panel, dose, "Dose", "; add it to covariates= when building the Panel")
    check_weight_name(panel, weights)
    return {
        "degree": check_int(options["degree"], "degree", minimum=1, maximum=10),
        "num_knots": check_int(options["num_knots"], "num_knots", minimum=0, maximum=50),
        "anticipation": check_int(options["anticipation"], "anticipation", minimum=0),
        "n_boot": check_int(options["n_boot"], "n_boot", minimum=0),
        "cg": check_choice(
            options["control_group"], "control_group", ("never_treated", "not_yet_treated")
        ),
        "boot_weights": check_choice(
            options["boot_weights"], "boot_weights", ("rademacher", "mammen")
        ),
    }


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    dose: str | None = None,
    degree: int = 3,
    num_knots: int = 0,
    dose_grid: list[float] | None = None,
    control_group: str = "never_treated",
    anticipation: int = 0,
    n_boot: int = 999,
    boot_weights: Literal["rademacher", "mammen"] = "rademacher",
    weights: str | None = None,
    cluster: Any = None,
) -> ContinuousDiDResult:
    """ATT(d) and ACRT(d) dose-response curves with uniform bands (CGBS 2024).

    Parameters
    ----------
    panel : Panel
        Cohort = first treated period; ``dose`` a covariate column.
    outcome : str
        Outcome column.
    dose : str, optional
        Covariate column with each unit's dose (0 for never-treated units). None: a dose
        of 1 for every treated unit (a binary treatment: ATT(d) is then the ATT, ACRT is
        not identified and reported as NaN).
    degree, num_knots : int
        B-spline degree and number of interior knots (contdid defaults 3 and 0).
    dose_grid : list of float, optional
        Doses at which to evaluate the curves (default: treated-dose percentiles 10..99).
    control_group : {"never_treated", "not_yet_treated"}
        Comparison units.
    anticipation : int
        Periods of anticipation.
    n_boot : int
        Multiplier-bootstrap draws for the uniform bands (0: pointwise only).
    boot_weights : {"rademacher", "mammen"}
        Multiplier distribution.
    weights : str, optional
        Column of analytic or sampling weights, positive and constant within unit (e.g.
        the base-year population); they weight the comparison means, the sieve
        regressions, the cohort shares and the influence functions (see the module
        docstring). A weight that varies within a unit is an error.
    cluster : str, pandas.Series or a list of two, optional
        Cluster the standard errors and the bootstrap bands: a panel or geography column
        constant within unit (the caller's own column names work) or labels as a Series
        indexed by unit; two of them cluster two ways (pointwise SEs only, no bands). None:
        by unit. The same as ``fit(...).with_inference(...)`` with that ``cluster``.

    Returns
    -------
    ContinuousDiDResult
        Terms ``att`` (ATT^o), ``acrt`` (ACRT^o), ``att_d:<k>``, ``acrt_d:<k>`` (grid
        point ``k`` of ``dose_response``) and ``event:E`` (the binarised ATT^o by event
        time, cells weighted by their treated units, pre-periods against the period
        before: contdid's ``aggregation = "eventstudy"``).
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="continuous_did"
    )
    opt = _check_options(
        panel,
        dose,
        weights,
        degree=degree,
        num_knots=num_knots,
        anticipation=anticipation,
        n_boot=n_boot,
        control_group=control_group,
        boot_weights=boot_weights,
    )
    data = _unit_arrays(panel, outcome, dose, weights)
    sieve = _sieve(data.dose[data.treated], opt["degree"], opt["num_knots"], dose_grid)
    cells = _post_cells(data, opt["anticipation"])
    fits = [
        f
        for cell in cells
        if (f := _cell_fit(data, sieve, cell, opt["cg"], opt["anticipation"])) is not None
    ]
    if not fits:
        raise EstimationError(
            f"No (cohort, period) cell has a comparison group and more treated units than the "
            f"{sieve.degree + sieve.num_knots + 1} spline coefficients; lower degree or num_knots."
        )
    if len(fits) < len(cells):
        lost = sorted(
            {(int(g), t) for g, t, _ in cells} - {(f.row["cohort"], f.row["time"]) for f in fits}
        )
        warnings.warn(
            f"{len(lost)} of {len(cells)} (cohort, period) cells cannot fit the dose sieve "
            "(no comparison units, no more treated units than its "
            f"{sieve.degree + sieve.num_knots + 1} coefficients, or too few distinct doses) "
            "and are left out of every estimate: "
            + ", ".join(f"({g:g},{t})" for g, t in lost[:10])
            + ("..." if len(lost) > 10 else "")
            + ". Lower degree or num_knots to keep them.",
            stacklevel=3,
        )
    cell_df, est, psi_all = _aggregate(fits)
    # with cluster= the bands come from with_inference below: the by-unit bootstrap would
    # be discarded, so it is skipped and only its use of the caller's generator replayed
    by_unit_boot = opt if cluster is None else {**opt, "n_boot": 0}
    terms, vcov, crit_att, crit_acrt, basis = _terms(
        data, sieve, est, psi_all, by_unit_boot, alpha=alpha, rng=rng, n_jobs=n_jobs
    )
    if cluster is not None and opt["n_boot"] and not sieve.single_dose:
        _skip_draws(rng, opt["n_boot"])
    acrt_d = np.full(len(sieve.grid), np.nan) if sieve.single_dose else est[2 + len(sieve.grid) :]
    info: dict[str, Any] = {
        "dose": dose if dose is not None else "1{treated}",
        "degree": sieve.degree,
        "num_knots": sieve.num_knots,
        "control_group": opt["cg"],
        "anticipation": int(opt["anticipation"]),
        "n_boot": opt["n_boot"],
        "boot_weights": opt["boot_weights"] if opt["n_boot"] else None,
        "crit_att_d": float(crit_att),
        "crit_acrt_d": float(crit_acrt),
        "n_cells": len(cell_df),
        "weights": weights,
        "se_type": "analytic influence function; uniform bands by multiplier bootstrap",
    }
    res = ContinuousDiDResult(
        estimator="continuous_did",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=len(data.units),
        n_obs=int(np.isfinite(data.y).sum()),
        vcov=vcov,
        info=info,
        alpha=alpha,
        dose_response=_dose_response(sieve.grid, terms, acrt_d),
        cells=cell_df[["cohort", "time", "weight", "att", "acrt", "n_treated", "n_control"]],
        blocks=InfluenceBlocks(basis, None, 1.0, data.units, panel=panel),
    )
    if cluster is None:
        return res
    two_way = isinstance(cluster, list | tuple)
    if opt["n_boot"] and not two_way:
        return res.with_inference(
            "bootstrap",
            cluster=cluster,
            n_boot=opt["n_boot"],
            rng=rng,
            boot_weights=opt["boot_weights"],
            n_jobs=n_jobs,
        )
    return res.with_inference("analytic", cluster=cluster)
