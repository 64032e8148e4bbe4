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

Input
-----
A :class:`~zoneimpact.panel.Panel` whose cohort gives each unit's first treated period and
with the dose as a covariate column (``dose``): constant within unit, ``> 0`` for units
with a cohort, ``0`` for never-treated units. The panel must be balanced in the periods
used. Why by hand: no library fits contdid's sieve with its influence functions; the
B-spline design comes from :class:`scipy.interpolate.BSpline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.interpolate import BSpline

from ..errors import EstimationError, PanelError, SpecError
from ..inference.bootstrap import multiplier_draws, sup_t_critical
from ..panel import Panel, _v
from ..results import (
    EstimationResult,
    check_choice,
    check_fit_arguments,
    check_int,
)
from ._scale import scale_equivariant

__all__ = ["ContinuousDiDResult", "bspline_basis", "fit"]


@dataclass(frozen=True)
class ContinuousDiDResult(EstimationResult):
    """Result of :func:`fit`.

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
    }

    dose_response: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"dose_response": self.dose_response, "cells": self.cells}


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


def _event_study(
    y: np.ndarray,
    gvec: np.ndarray,
    treated: np.ndarray,
    periods: np.ndarray,
    col: dict[int, int],
    cg: str,
    anticipation: int,
) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Binarised ATT^o by event time with its influence function (contribution scale)."""
    n = len(gvec)
    by_e: dict[int, list[tuple[float, np.ndarray, int]]] = {}
    for g in np.unique(gvec[treated]):
        for i, t in enumerate(periods):
            post = t >= g - anticipation
            base = g - 1 - anticipation if post else (periods[i - 1] if i > 0 else None)
            if base is None or int(base) not in col or int(t) == int(base):
                continue
            tr = gvec == g
            ctrl = (
                ~treated
                if cg == "never_treated"
                else (~treated | ((gvec > t + anticipation) & (gvec != g)))
            )
            dy = y[:, col[int(t)]] - y[:, col[int(base)]]
            ok = np.isfinite(dy)
            tr, ctrl = tr & ok, ctrl & ok
            n1, n0 = int(tr.sum()), int(ctrl.sum())
            if n1 == 0 or n0 == 0:
                continue
            psi = np.zeros(n)
            psi[tr] = (dy[tr] - dy[tr].mean()) / n1
            psi[ctrl] = -(dy[ctrl] - dy[ctrl].mean()) / n0
            by_e.setdefault(int(t - g), []).append(
                (float(dy[tr].mean() - dy[ctrl].mean()), psi, n1)
            )
    est: dict[int, float] = {}
    inf: dict[int, np.ndarray] = {}
    for e in sorted(by_e):
        w = np.array([c[2] for c in by_e[e]], dtype=float)
        w /= w.sum()
        est[e] = float(sum(wi * c[0] for wi, c in zip(w, by_e[e], strict=True)))
        inf[e] = np.sum([wi * c[1] for wi, c in zip(w, by_e[e], strict=True)], axis=0)
    return est, inf


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
    degree = check_int(degree, "degree", minimum=1, maximum=10)
    num_knots = check_int(num_knots, "num_knots", minimum=0, maximum=50)
    anticipation = check_int(anticipation, "anticipation", minimum=0)
    n_boot = check_int(n_boot, "n_boot", minimum=0)
    cg = check_choice(control_group, "control_group", ("never_treated", "not_yet_treated"))
    boot_weights = check_choice(boot_weights, "boot_weights", ("rademacher", "mammen"))
    if dose is not None and dose not in panel.covariates:
        raise SpecError(
            f"Dose column {dose!r} is not a covariate of the panel (covariates: "
            f"{list(panel.covariates)}); add it to covariates= when building the Panel."
        )
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
    y = panel.wide(outcome).reindex(units).to_numpy(float)
    periods = np.asarray(panel.periods)
    col = {int(p): i for i, p in enumerate(periods)}
    n = len(units)
    doses_t = dvec[treated]
    single_dose = bool(doses_t.min() == doses_t.max())
    if single_dose:
        # one dose (a binary treatment): the sieve is the intercept, ACRT is not identified
        degree, num_knots = 0, 0
    inner = (
        np.quantile(doses_t, np.linspace(0, 1, num_knots + 2)[1:-1]) if num_knots else np.array([])
    )
    knots = np.concatenate(
        [np.repeat(doses_t.min(), degree + 1), inner, np.repeat(doses_t.max(), degree + 1)]
    )
    if dose_grid is not None:
        grid = np.asarray(dose_grid, dtype=float)
    elif single_dose:
        grid = doses_t[:1]
    else:
        grid = np.quantile(doses_t, np.arange(0.10, 0.995, 0.01))
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise SpecError(
            f"dose_grid must be a non-empty list of finite doses; received {dose_grid!r}."
        )
    psi_grid, dpsi_grid = bspline_basis(grid, knots, degree)
    cohorts = np.sort(np.unique(gvec[treated]))
    cells = []
    for g in cohorts:
        base = g - 1 - anticipation
        if int(base) not in col:
            continue
        for t in periods[periods >= g - anticipation]:
            cells.append((float(g), int(t), int(base)))
    if not cells:
        raise EstimationError("No cohort has a base period inside the data: nothing to estimate.")
    rows = []
    # influence functions (contribution scale: se = sqrt(sum psi^2)) of each cell's pieces
    cell_if: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for g, t, b in cells:
        tr = gvec == g
        ctrl = (
            ~treated
            if cg == "never_treated"
            else (~treated | ((gvec > t + anticipation) & (gvec != g)))
        )
        dy = y[:, col[t]] - y[:, col[b]]
        ok = np.isfinite(dy)
        tr, ctrl = tr & ok, ctrl & ok
        n1, n0 = int(tr.sum()), int(ctrl.sum())
        psi, dpsi = bspline_basis(dvec[tr], knots, degree)
        if n0 == 0 or n1 <= psi.shape[1]:
            continue
        mu0 = dy[ctrl].mean()
        dty = dy[tr] - mu0
        m = psi.T @ psi / n1
        if np.linalg.cond(m) > 1 / np.finfo(float).eps:
            continue
        beta = np.linalg.solve(m, psi.T @ dty / n1)
        resid = dty - psi @ beta
        att_d, acrt_d = psi_grid @ beta, dpsi_grid @ beta
        acrt_i = dpsi @ beta
        att_o, acrt_o = float(dty.mean()), float(acrt_i.mean())
        # linear representation of beta: treated i -> M^{-1} psi_i e_i / n1;
        # control j -> -M^{-1} psibar (dY_j - mu0) / n0 (beta moves with the comparison mean)
        minv = np.linalg.inv(m)
        b_tr = (psi * resid[:, None]) @ minv / n1
        b_ct = -np.outer(dy[ctrl] - mu0, minv @ psi.mean(axis=0)) / n0
        if_att_d = np.zeros((n, len(grid)))
        if_acrt_d = np.zeros((n, len(grid)))
        if_att_d[tr], if_att_d[ctrl] = b_tr @ psi_grid.T, b_ct @ psi_grid.T
        if_acrt_d[tr], if_acrt_d[ctrl] = b_tr @ dpsi_grid.T, b_ct @ dpsi_grid.T
        dbar = dpsi.mean(axis=0)
        if_att_o = np.zeros(n)
        if_att_o[tr] = (dy[tr] - dy[tr].mean()) / n1
        if_att_o[ctrl] = -(dy[ctrl] - mu0) / n0
        if_acrt_o = np.zeros(n)
        if_acrt_o[tr] = b_tr @ dbar + (acrt_i - acrt_o) / n1
        if_acrt_o[ctrl] = b_ct @ dbar
        rows.append(
            {
                "cohort": int(g),
                "time": t,
                "att": att_o,
                "acrt": acrt_o,
                "n_treated": n1,
                "n_control": n0,
                "_att_d": att_d,
                "_acrt_d": acrt_d,
            }
        )
        cell_if.append((if_att_o, if_acrt_o, if_att_d, if_acrt_d))
    if not rows:
        raise EstimationError(
            f"No (cohort, period) cell has a comparison group and more treated units than the "
            f"{degree + num_knots + 1} spline coefficients; lower degree or num_knots."
        )
    cell_df = pd.DataFrame(rows)
    n_g = cell_df.groupby("cohort")["n_treated"].transform("first").to_numpy(float)
    first_n = cell_df.groupby("cohort")["n_treated"].first()
    n_cells_g = cell_df.groupby("cohort")["time"].transform("size").to_numpy(float)
    weight = n_g / first_n.sum() / n_cells_g
    cell_df["weight"] = weight
    att_o = float(weight @ cell_df["att"])
    acrt_o = float(weight @ cell_df["acrt"])
    att_d = np.sum([w * r for w, r in zip(weight, cell_df["_att_d"], strict=True)], axis=0)
    acrt_d = np.sum([w * r for w, r in zip(weight, cell_df["_acrt_d"], strict=True)], axis=0)
    psi_all = np.column_stack(
        [
            sum(w * c[0] for w, c in zip(weight, cell_if, strict=True)),
            sum(w * c[1] for w, c in zip(weight, cell_if, strict=True)),
            sum(w * c[2] for w, c in zip(weight, cell_if, strict=True)),
            sum(w * c[3] for w, c in zip(weight, cell_if, strict=True)),
        ]
    )
    k = len(grid)
    est = np.concatenate([[att_o, acrt_o], att_d, acrt_d])
    vcov = psi_all.T @ psi_all
    se = np.sqrt(np.clip(np.diag(vcov), 0, None))
    if single_dose:
        acrt_cols = np.r_[1, np.arange(2 + k, 2 + 2 * k)]
        est[acrt_cols] = np.nan
        se[acrt_cols] = np.nan
        acrt_d = np.full(k, np.nan)
    z = stats.norm.ppf(1 - alpha / 2)
    crit_att = crit_acrt = z
    if n_boot > 0 and not single_dose:
        draws = multiplier_draws(
            psi_all * n, n_boot=n_boot, rng=rng, n_jobs=n_jobs, weights=boot_weights
        )
        crit_att = max(z, sup_t_critical(draws[:, 2 : 2 + k], se[2 : 2 + k], alpha))
        crit_acrt = max(z, sup_t_critical(draws[:, 2 + k :], se[2 + k :], alpha))
    names = ["att", "acrt"] + [f"att_d:{i}" for i in range(k)] + [f"acrt_d:{i}" for i in range(k)]
    crit = np.concatenate([[z, z], np.full(k, crit_att), np.full(k, crit_acrt)])
    # event study of the binarised ATT^o (contdid aggregation="eventstudy"): every (g, t)
    # cell, pre-periods against the period before, weighted by treated units per cell
    ev_est, ev_if = _event_study(y, gvec, treated, periods, col, cg, anticipation)
    if ev_est:
        ev_names = [f"event:{e}" for e in ev_est]
        ev_psi = np.column_stack([ev_if[e] for e in ev_est])
        ev_se = np.sqrt(np.einsum("ij,ij->j", ev_psi, ev_psi))
        ev_vals = np.array(list(ev_est.values()))
        names += ev_names
        est = np.concatenate([est, ev_vals])
        se = np.concatenate([se, ev_se])
        crit = np.concatenate([crit, np.full(len(ev_names), z)])
        full = np.column_stack([psi_all, ev_psi])
        vcov = full.T @ full
    terms = pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "se": se,
            "band_low": est - crit * se,
            "band_high": est + crit * se,
        }
    )
    dr = pd.DataFrame(
        {
            "dose": grid,
            "att": att_d,
            "att_se": se[2 : 2 + k],
            "att_band_low": terms["band_low"].to_numpy()[2 : 2 + k],
            "att_band_high": terms["band_high"].to_numpy()[2 : 2 + k],
            "acrt": acrt_d,
            "acrt_se": se[2 + k : 2 + 2 * k],
            "acrt_band_low": terms["band_low"].to_numpy()[2 + k : 2 + 2 * k],
            "acrt_band_high": terms["band_high"].to_numpy()[2 + k : 2 + 2 * k],
        }
    )
    info: dict[str, Any] = {
        "dose": dose if dose is not None else "1{treated}",
        "degree": degree,
        "num_knots": num_knots,
        "control_group": cg,
        "anticipation": int(anticipation),
        "n_boot": n_boot,
        "boot_weights": boot_weights if n_boot else None,
        "crit_att_d": float(crit_att),
        "crit_acrt_d": float(crit_acrt),
        "n_cells": len(cell_df),
        "se_type": "analytic influence function; uniform bands by multiplier bootstrap",
    }
    return ContinuousDiDResult(
        estimator="continuous_did",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=n,
        n_obs=int(np.isfinite(y).sum()),
        vcov=vcov,
        info=info,
        alpha=alpha,
        dose_response=dr,
        cells=cell_df[["cohort", "time", "weight", "att", "acrt", "n_treated", "n_control"]],
    )
