r"""Prediction intervals for synthetic control (SCPI).

Cattaneo, M. D., Feng, Y. and Titiunik, R. (2021), "Prediction Intervals for Synthetic
Control Methods", *Journal of the American Statistical Association* 116(536), 1865-1880
(CFT); Cattaneo, Feng, Palomba & Titiunik (2025), "scpi: Uncertainty Quantification for
Synthetic Control Methods", *Journal of Statistical Software* 113(1) (the ``scpi``
package, whose defaults are followed here).

Setting (CFT Section 2). The treated unit's pre-treatment outcomes ``A`` (``T0``) are
matched by the donors' ``B`` (``T0 x J``) with simplex weights

.. math::  \hat w = \arg\min_{w \ge 0,\ 1'w = 1} (A - Bw)'V(A - Bw),  \qquad V = I,

and the counterfactual of post period ``T`` is ``p_T'\hat w`` (``p_T`` the donors'
outcomes then). Its prediction error splits (CFT eq. 3.2) into

.. math::  Y_{1T}(0) - p_T'\hat w = p_T'(w_0 - \hat w) + e_T,

in-sample error from estimating ``w`` plus out-of-sample error ``e_T``. CFT bound each with
probability ``1 - alpha_1`` and ``1 - alpha_2``; the interval for ``Y_{1T}(0)`` is the sum
of the two (coverage at least ``1 - alpha_1 - alpha_2``; ``scpi`` and this module use
``alpha_1 = alpha_2 = alpha``, each split equally between the tails).

**In-sample** (CFT Section 4.1, Theorem 1). With ``Q = B'B/T0``,
``G* ~ N(0, Sigma)``, ``Sigma = B' diag(omega) B / T0^2`` and
``omega_t = (u_t - E[u_t|H])^2 T0/(T0 - df)`` (HC1; ``u`` the pre-period residuals,
``E[u|H]`` their OLS projection on the active donors' outcomes and a constant,
``df = #{w_j > 0} - 1``), the distribution of ``p'(w_0 - w)`` is approximated by
simulating

.. math::  \inf / \sup \{\, p'(\hat w - \beta) :\ \beta \in \mathcal W^*,\
           (\beta - \hat w)'Q(\beta - \hat w) - 2G^{*\prime}(\beta - \hat w) \le 0 \,\}

over draws of ``G*``; the bounds are the ``alpha/2`` quantile of the infima and the
``1 - alpha/2`` quantile of the suprema. ``W*`` is CFT's *local* geometry of the simplex
(their Section 4.1.1 and the ``scpi`` rule): weights ``w_j < rho`` are treated as at the
boundary (``beta_j >= w_j``), the others only need ``beta_j >= 0``; ``rho`` is CFT's
"type-2" rule ``rho = C sqrt(log(J) d0 log(T0) / T0)``,
``C = sigma_u max_j sd(B_j) / min_j var(B_j)``, capped at ``rho_max``.

**Out-of-sample** (CFT Section 4.2). ``e_T`` is modelled from the pre-period residuals
``u_t`` with the design ``H_t`` = (active donors' outcomes, constant) -- reduced to the
constant when ``T0 - 10`` does not exceed its columns, as ``scpi`` does:

* ``"gaussian"`` (sub-Gaussian bound, CFT eq. 4.6): ``E[e|H]`` by OLS, the conditional
  variance by an OLS of ``log u^2``, ``sigma = min(sd, IQR / 1.34)`` with the IQR from
  quantile regressions at 0.25 and 0.75; bounds ``E[e|H] -+ sigma sqrt(2 log(2/alpha))``;
* ``"ls"`` (location-scale): the same location and scale times the ``alpha/2`` and
  ``1 - alpha/2`` quantiles of the standardised residuals;
* ``"qreg"``: quantile regressions of ``u`` at ``alpha/2`` and ``1 - alpha/2`` (plain
  quantiles when the design is the constant).

The average post-treatment effect (``att``) uses the average of the post-period rows of
``p`` and of the design, as ``scpi`` does for ``effect = "unit"``.

Why by hand: ``scpi_pkg`` (the authors' Python port) needs ``cvxpy``/``ecos`` and pandas
< 3 and works on its own data objects. The simulated problem is a linear objective over the
simplex intersected with one convex quadratic constraint; it is solved here exactly by
its Lagrangian: for a multiplier ``1/(2t)`` the inner problem is a quadratic programme on
the (shifted) simplex, solved by the active-set method of
:mod:`zoneimpact.estimators._simplex`, and ``t`` is found by Brent's method (scipy) where
the quadratic constraint binds. ``tests/test_scpi.py`` compares with ``scpi_pkg`` 4.0.0 on
Prop 99 (``benchmarks/reference/scpi_prop99.json``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import IterationLimitWarning

from ..errors import EstimationError, SpecError
from ..estimators._sc_common import outcome_matrix
from ..estimators._scale import outcome_scale
from ..estimators._simplex import simplex_qp, simplex_qp_gram
from ..panel import Panel
from ..parallel import as_generator, replicate
from ..results import (
    EstimationResult,
    check_alpha,
    check_choice,
    check_int,
    check_names,
    check_number,
)

__all__ = ["ScpiResult", "scpi_intervals"]

EMethod = Literal["gaussian", "ls", "qreg"]


@dataclass(frozen=True)
class ScpiResult:
    """SCPI prediction intervals (CFT 2021) for one synthetic control.

    Attributes
    ----------
    table : DataFrame
        One row per term -- ``calendar:T`` for each post period and ``att`` (their
        average) --: ``y`` (treated outcome), ``synthetic`` (``p'w``), ``effect``
        (``y - synthetic``), ``in_low``/``in_high`` (in-sample bounds on ``p'(w_0 - w)``),
        ``e_low``/``e_high`` (out-of-sample bounds on ``e``), ``cf_low``/``cf_high``
        (prediction interval of the counterfactual ``Y(0)``) and ``effect_low``/
        ``effect_high`` (``y`` minus that interval).
    weights : Series
        The simplex weights ``w`` fitted on the pre-period outcomes (V = I).
    residuals : Series
        Pre-period residuals ``u``.
    sigma : DataFrame
        ``Sigma`` (donors x donors), the variance of ``G*``.
    draws_low, draws_high : DataFrame
        Simulated infima and suprema (simulations x terms).
    rho : float
        Regularisation of the local geometry.
    alpha : float
        ``alpha_1 = alpha_2``: each bound holds with probability ``1 - alpha``.
    e_method : str
        Out-of-sample model.
    info : dict
        ``treatment_start``, ``n_donors``, ``n_active``, ``df``, ``u_design``,
        ``e_design``, ``sims``, ``weights_source``.
    """

    outcome: str
    table: pd.DataFrame
    weights: pd.Series
    residuals: pd.Series
    sigma: pd.DataFrame
    draws_low: pd.DataFrame
    draws_high: pd.DataFrame
    rho: float
    alpha: float
    e_method: str
    info: dict[str, Any] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Broom-style table: term, estimate (effect), conf_low, conf_high (of the effect)."""
        t = self.table
        return pd.DataFrame(
            {
                "term": t["term"].to_numpy(),
                "estimate": t["effect"].to_numpy(float),
                "conf_low": t["effect_low"].to_numpy(float),
                "conf_high": t["effect_high"].to_numpy(float),
            }
        )


# ---------------------------------------------------------------------------- pieces
def regularisation(
    res: np.ndarray, B: np.ndarray, w: np.ndarray, rho: str | float, rho_max: float
) -> float:
    """``rho`` of the local geometry (CFT Section 4.1.1; ``scpi``'s type-1/type-2 rules
    and its floor: a rule value below 0.001 is replaced by the larger of the two rules,
    and by ``rho_max`` if that is still below 0.05)."""
    if not isinstance(rho, str):
        return float(rho)
    T0, J = B.shape
    d0 = int(np.sum(np.abs(w) >= 1e-6))
    sigma_u = float(np.sqrt(np.mean((res - res.mean()) ** 2)))
    sd = B.std(axis=0, ddof=1)
    var = B.var(axis=0, ddof=1)
    if sd.min() == 0:
        raise EstimationError(
            "SCPI: a donor's outcome is constant over the pre-treatment periods; its "
            "regularisation rule divides by that variance. Drop the donor."
        )

    def rule(kind: str, cap: float) -> float:
        cc = sigma_u / sd.min() if kind == "type-1" else sigma_u * sd.max() / var.min()
        return min(cc * np.sqrt(np.log(J) * d0 * np.log(T0)) / np.sqrt(T0), cap)

    value = rule(rho, rho_max)
    if value < 0.001:
        value = max(rule("type-1", 0.2), rule("type-2", 0.2))
        if value < 0.05:
            value = rho_max
    return float(value)


def _design_columns(B: np.ndarray, active: np.ndarray, order: int, n_obs: int) -> np.ndarray:
    """Donor columns of the moment models' design (with a constant): the active donors
    (``order = 1``) or none (``order = 0``, or too few observations: ``n_obs - 10`` not
    above the number of columns, as ``scpi``); columns that are all ones or all zeros in
    the pre-period are dropped, as ``scpi`` drops them before adding its constant."""
    if order == 0 or n_obs - 10 <= int(active.sum()) + 1:
        return np.empty(0, dtype=int)
    cols = np.flatnonzero(active)
    X = B[:, cols]
    flat = np.all(X == 1, axis=0) | np.all(X == 0, axis=0)
    return cols[~flat]


def _design(M: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A constant and the donor columns ``cols`` of ``M`` (rows: periods)."""
    return np.column_stack([np.ones(M.shape[0]), M[:, cols]])


def sigma_hat(
    res: np.ndarray, B: np.ndarray, w: np.ndarray, active: np.ndarray, u_order: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """``Sigma`` of CFT (Section 4.1): HC1 variance of ``B'u / T0`` around the
    projection of ``u`` on the design; returns it with ``E[u|H]`` and ``df``."""
    T0 = len(res)
    D = _design(B, _design_columns(B, active, u_order, T0))
    coef = np.linalg.lstsq(D, res, rcond=None)[0]
    u_mean = D @ coef
    df = int(np.sum(np.abs(w) >= 1e-6)) - 1
    if df >= T0:
        df = T0 - 1
    omega = (res - u_mean) ** 2 * T0 / (T0 - df)
    S = (B.T * omega) @ B / T0**2
    return 0.5 * (S + S.T), u_mean, df


def out_of_sample_bounds(
    res: np.ndarray,
    X0: np.ndarray,
    X1: np.ndarray,
    method: str,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounds on ``e`` at the design rows ``X1`` (CFT Section 4.2; ``scpi``'s
    ``scpi_out``): returns lower, upper, ``E[e|H]`` and the scale ``sigma``.

    ``alpha`` is the total for both tails (each bound holds with ``1 - alpha/2``).
    """
    a = alpha / 2
    ols = sm.OLS(res, X0).fit()
    e_mean = X1 @ ols.params
    fitted = X0 @ ols.params
    r = res - fitted
    if method == "qreg":
        if X0.shape[1] == 1:
            lo = np.full(len(X1), np.quantile(res, a))
            hi = np.full(len(X1), np.quantile(res, 1 - a))
        else:
            qr = sm.QuantReg(res, X0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", IterationLimitWarning)
                lo = X1 @ qr.fit(q=a).params
                hi = X1 @ qr.fit(q=1 - a).params
        return lo, hi, e_mean, np.full(len(X1), np.nan)
    with np.errstate(divide="ignore"):
        logr2 = np.log(r**2)
    if not np.isfinite(logr2).all():
        raise EstimationError(
            "SCPI: a pre-treatment residual of the out-of-sample model is exactly zero, so "
            "its log-variance model is undefined (the synthetic control fits a period "
            "perfectly); use e_method='qreg'."
        )
    var_fit = sm.OLS(logr2, X0).fit()
    var1 = X1 @ var_fit.params
    qr = sm.QuantReg(r, X0)
    with warnings.catch_warnings():
        # statsmodels' IRLS can cycle between solutions of equal loss on a few dozen
        # residuals and stops at its iteration limit; scpi makes the same call
        warnings.simplefilter("ignore", IterationLimitWarning)
        iq = np.abs(X1 @ qr.fit(q=0.75).params - X1 @ qr.fit(q=0.25).params)
    sig = np.minimum(np.sqrt(np.exp(var1)), iq / 1.34)
    if method == "gaussian":
        eps = np.sqrt(-2 * np.log(a)) * sig
        return e_mean - eps, e_mean + eps, e_mean, sig
    z = r / np.sqrt(np.exp(X0 @ var_fit.params))
    return e_mean + sig * np.quantile(z, a), e_mean + sig * np.quantile(z, 1 - a), e_mean, sig


@dataclass(frozen=True)
class _Geometry:
    """The simulated problem's fixed parts: ``beta = lb + m s``, ``s`` on the simplex.

    ``Q`` carries a ridge of ``1e-10`` of its mean eigenvalue: with more donors than
    pre-periods ``Q`` is singular and the inner problem's minimiser is not unique; the
    ridge makes the solution path unique and moves ``q`` by less than ``1e-9`` of its
    scale.
    """

    Q: np.ndarray
    w: np.ndarray
    lb: np.ndarray
    m: float

    @property
    def H(self) -> np.ndarray:
        return self.m * self.Q


def _start(geo: _Geometry, zeta: np.ndarray) -> np.ndarray:
    """``s`` minimising ``q(delta) = delta'Q delta - 2 zeta'delta`` (the path's start)."""
    c0 = zeta - geo.Q @ (geo.lb - geo.w)
    s, _ = simplex_qp_gram(geo.H, c0)
    return s


def _extreme(geo: _Geometry, zeta: np.ndarray, g: np.ndarray, s0: np.ndarray) -> float:
    """``max g'delta`` over ``delta = beta - w``, ``beta`` in the local simplex, and
    ``q(delta) = delta'Q delta - 2 zeta'delta <= 0``.

    The Lagrangian with multiplier ``1/(2t)`` gives the inner problem
    ``min_s 1/2 s'Hs - c(t)'s`` on the simplex with ``c(t) = c0 + t g``; its solution
    ``s(t)`` is piecewise linear in ``t`` (a parametric QP) and ``q`` is nondecreasing
    along it. The path is followed from ``t = 0`` (the minimiser of ``q``, ``s0``) from
    one change of support to the next, solving the KKT system on the support; on each
    piece ``q`` is a quadratic in ``t`` and its root, where the constraint binds, gives the
    optimum. Ends at the linear programme's vertex when ``q`` stays negative.
    """
    Q, w, lb, m = geo.Q, geo.w, geo.lb, geo.m
    H = geo.H
    J = len(w)
    c0 = zeta - Q @ (lb - w)
    j_lp = int(np.argmax(g))
    d_lp = lb - w
    d_lp[j_lp] += m
    if float(d_lp @ Q @ d_lp - 2 * zeta @ d_lp) <= 0:
        return float(g @ d_lp)
    scale = float(np.abs(H).max()) + float(np.abs(c0).max()) + float(np.abs(g).max())
    tiny = 1e-12 * scale
    s = s0.copy()
    S = [int(j) for j in np.flatnonzero(s > 0)]
    t = 0.0
    for _ in range(20 * J):
        idx = np.asarray(S)
        k = len(S)
        K = np.ones((k + 1, k + 1))
        K[:k, :k] = H[idx[:, None], idx]
        K[k, k] = 0.0
        rhs = np.zeros((k + 1, 2))
        rhs[:k, 0] = c0[idx] + t * g[idx]
        rhs[k, 0] = 1.0
        rhs[:k, 1] = g[idx]
        both = np.linalg.solve(K, rhs)
        cur, der = both[:, 0], both[:, 1]
        s[:] = 0.0
        s[idx] = np.maximum(cur[:k], 0.0)
        nu, dnu = cur[k], der[k]
        ds = np.zeros(J)
        ds[idx] = der[:k]
        r = H @ s - (c0 + t * g) + nu
        dr = H @ ds - g + dnu
        inside = np.zeros(J, dtype=bool)
        inside[idx] = True
        with np.errstate(divide="ignore", invalid="ignore"):
            leave = np.where(inside & (ds < -tiny), s / -ds, np.inf)
            enter = np.where(~inside & (dr < -tiny), np.maximum(r, 0.0) / -dr, np.inf)
        jl, je = int(np.argmin(leave)), int(np.argmin(enter))
        step = min(leave[jl], enter[je])
        delta = lb + m * s - w
        dd = m * ds
        a0 = float(delta @ Q @ delta - 2 * zeta @ delta)
        a1 = 2 * float(dd @ (Q @ delta - zeta))
        a2 = float(dd @ Q @ dd)
        if a2 > 0:
            root = (-a1 + np.sqrt(max(a1 * a1 - 4 * a2 * a0, 0.0))) / (2 * a2)
        elif a1 > 0:
            root = -a0 / a1
        else:
            root = np.inf
        root = max(root, 0.0)
        if np.isfinite(root) and root <= step:
            return float(g @ (delta + root * dd))
        if not np.isfinite(step):
            # no change of support ahead and the constraint never binds: the path has
            # reached the linear programme's optimum (dd is then zero)
            return float(g @ delta)
        t += step
        if leave[jl] <= enter[je]:
            S.remove(jl)
        else:
            S = sorted([*S, je])
        s = s + step * ds
    raise EstimationError("SCPI: the simulated problem's solution path did not terminate.")


def _simulate_chunk(
    geo: _Geometry, zetas: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Infima and suprema of ``p'(w - beta)`` for each draw (rows) and direction ``p``."""
    low = np.empty((len(zetas), len(rows)))
    high = np.empty_like(low)
    for i, z in enumerate(zetas):
        s0 = _start(geo, z)
        for k, p in enumerate(rows):
            # p'(w - beta) = -p'delta: its infimum is -max p'delta, supremum -min p'delta
            low[i, k] = -_extreme(geo, z, p, s0)
            high[i, k] = _extreme(geo, z, -p, s0)
    return low, high


def sqrt_psd(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (``scipy.linalg.sqrtm``
    for PSD input, with round-off negatives set to zero)."""
    vals, vecs = np.linalg.eigh(S)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


# ---------------------------------------------------------------------------- public API
def _inputs(
    result: Any,
    panel: Panel | None,
    outcome: str | None,
    treated_unit: Any,
    treatment_start: int | None,
    donors: Any,
) -> tuple[str, pd.Series, pd.DataFrame, int, str]:
    """Treated path, donor outcomes (donors x periods), first treated period."""
    # through the registry: synthetic_control imports this module for its intervals option
    from ..estimators import get_estimator

    fit_sc = get_estimator("synthetic_control")

    from_panel = isinstance(result, Panel)
    if from_panel:
        if panel is not None:
            raise SpecError("Pass either a synthetic-control result and its panel, or a panel.")
        if not isinstance(outcome, str):
            raise SpecError(
                f"scpi_intervals(panel, ...) needs outcome= (a column); received {outcome!r}."
            )
        panel = result
        # the fit checks and resolves the treated unit(s), date and donors; its weights are
        # not used (SCPI refits them), so one predictor and equal V keep it cheap
        if outcome not in panel.outcomes:
            raise SpecError(
                f"scpi_intervals: outcome {outcome!r} is not an outcome of the panel; its "
                f"outcomes are {list(panel.outcomes)}."
            )
        result = fit_sc(
            panel,
            outcome=outcome,
            treated_unit=treated_unit,
            treatment_start=treatment_start,
            donors=donors,
            placebos=False,
            predictors=[{"variable": outcome}],
            v="equal",
        )
    if not isinstance(result, EstimationResult) or result.estimator != "synthetic_control":
        raise SpecError(
            "scpi_intervals needs a synthetic_control result (and the Panel it was fitted "
            f"on) or a Panel; received {type(result).__name__}"
            f"{' (' + str(result.estimator) + ')' if isinstance(result, EstimationResult) else ''}."
        )
    if not isinstance(panel, Panel):
        raise SpecError(
            f"scpi_intervals(result, panel): panel must be the Panel the result was fitted on; "
            f"received {type(panel).__name__}."
        )
    path = result.treated_path  # type: ignore[attr-defined]
    pool = list(result.donor_weights.index)  # type: ignore[attr-defined]
    periods = np.asarray(path.index)
    Y0 = outcome_matrix(panel, result.outcome, pool, periods, estimator="SCPI")
    g = int(result.info["treatment_start"])
    note = "" if from_panel else str(result.info.get("v_method", ""))
    return result.outcome, path, Y0, g, note


def scpi_intervals(
    result: EstimationResult | Panel,
    panel: Panel | None = None,
    *,
    outcome: str | None = None,
    treated_unit: Any = None,
    treatment_start: int | None = None,
    donors: Any = None,
    periods: Sequence[int] | None = None,
    alpha: float | None = None,
    e_method: EMethod = "gaussian",
    sims: int = 200,
    u_order: int = 1,
    e_order: int = 1,
    rho: str | float = "type-2",
    rho_max: float = 0.2,
    rng: np.random.Generator | int | None = None,
    n_jobs: int = 1,
) -> ScpiResult:
    """SCPI prediction intervals (CFT 2021) for a synthetic control.

    Parameters
    ----------
    result : synthetic_control result or Panel
        A :func:`zoneimpact.estimators.synthetic_control.fit` result (its treated path,
        donor pool and treatment date are used; several treated units are averaged into
        one treated path, as that fit does), or a panel (then ``outcome`` and, as in that
        ``fit``, ``treated_unit``/``treatment_start``/``donors``).
    panel : Panel, optional
        The panel the result was fitted on (with a result).
    periods : list of int, optional
        Post-treatment periods to report (default all); the average effect ``att`` always
        averages every post-treatment period.
    alpha : float, optional
        ``alpha_1 = alpha_2`` of CFT (default the result's, or 0.05): the in-sample and
        out-of-sample bounds each hold with ``1 - alpha``.
    e_method : {"gaussian", "ls", "qreg"}
        Out-of-sample model (CFT Section 4.2).
    sims : int
        Draws of ``G*`` for the in-sample bounds (``scpi`` default 200).
    u_order, e_order : {0, 1}
        Design of the moment models: 0 the constant, 1 also the active donors' outcomes.
    rho : "type-1", "type-2" or float
        Local-geometry threshold (CFT Section 4.1.1).
    rho_max : float
        Cap on ``rho`` (``scpi`` 0.2).
    rng : Generator or seed
        For the draws of ``G*``.
    n_jobs : int
        Workers for the simulation (results identical for any value).

    Returns
    -------
    ScpiResult

    Notes
    -----
    The weights are the canonical synthetic control of CFT (simplex least squares on the
    pre-treatment outcomes, ``V = I``, no intercept), refitted here: the theory is for
    the estimator whose constraint set is simulated. With a result fitted on predictors
    (ADH nested ``V``) they differ from the result's weights (``info["weights_source"]``).
    """
    out, path, Y0, g, v_note = _inputs(
        result, panel, outcome, treated_unit, treatment_start, donors
    )
    if alpha is None:
        alpha = result.alpha if isinstance(result, EstimationResult) else 0.05
    a = check_alpha(alpha)
    check_choice(e_method, "e_method", ["gaussian", "ls", "qreg"])
    sims = check_int(sims, "sims", minimum=10)
    u_order = check_choice(u_order, "u_order", [0, 1])
    e_order = check_choice(e_order, "e_order", [0, 1])
    if isinstance(rho, str):
        check_choice(rho, "rho", ["type-1", "type-2"])
    else:
        rho = check_number(rho, "rho", positive=True)
    rho_max = check_number(rho_max, "rho_max", positive=True)
    n_jobs = check_int(n_jobs, "n_jobs", minimum=-1)
    gen = as_generator(rng)

    periods_all = np.asarray(path.index)
    pre = periods_all < g
    T0 = int(pre.sum())
    if T0 < 3:
        raise EstimationError(
            f"SCPI needs at least 3 pre-treatment periods before {g}; the data have {T0}."
        )
    # extreme outcomes (beyond 2^+-64) are divided by a power of two and the bounds scaled
    # back at the end (zoneimpact.estimators._scale): squares of 1e300 overflow
    c = outcome_scale(np.concatenate([path.to_numpy(float), Y0.to_numpy(float).ravel()]))
    A = path.to_numpy(float)[pre] / c
    Ymat = Y0.to_numpy(float) / c
    B = Ymat[:, pre].T
    P = Ymat[:, ~pre].T
    J = B.shape[1]
    if J < 2:
        raise EstimationError("SCPI needs at least 2 donors.")
    w, _ = simplex_qp(B, A)
    res = A - B @ w
    rho_v = regularisation(res, B, w, rho, rho_max)
    active = w > rho_v
    if not active.any():
        active[int(np.argmax(w))] = True
    lb = np.where(w < rho_v, w, 0.0)
    S, u_mean, df = sigma_hat(res, B, w, active, u_order)
    Q = B.T @ B / T0
    Q = 0.5 * (Q + Q.T) + 1e-10 * np.trace(Q) / J * np.eye(J)
    m = 1.0 - float(lb.sum())
    geo = _Geometry(Q, w, lb, m)
    post_periods = periods_all[~pre]
    if periods is None:
        keep = np.ones(len(post_periods), dtype=bool)
    else:
        wanted = [check_int(p, "periods") for p in check_names(periods, "periods")]
        missing = [p for p in wanted if p not in set(post_periods.tolist())]
        if missing:
            raise SpecError(
                f"periods {missing} are not post-treatment periods of the data "
                f"({int(post_periods[0])}-{int(post_periods[-1])})."
            )
        keep = np.isin(post_periods, wanted)
    rows = np.vstack([P[keep], P.mean(axis=0, keepdims=True)])
    y_post = path.to_numpy(float)[~pre] / c
    zetas = (sqrt_psd(S) @ gen.standard_normal((J, sims))).T
    chunks = [zetas[k : k + 20] for k in range(0, sims, 20)]
    parts = replicate(
        lambda ch, _g: _simulate_chunk(geo, ch, rows),
        chunks,
        rng=0,
        n_jobs=n_jobs,
        desc="SCPI simulations",
    )
    low = np.vstack([p[0] for p in parts])
    high = np.vstack([p[1] for p in parts])
    in_low = np.nanquantile(low, a / 2, axis=0)
    in_high = np.nanquantile(high, 1 - a / 2, axis=0)

    cols = _design_columns(B, active, e_order, T0)
    if len(cols) + 1 >= T0 - 1:
        cols = cols[:0]
    X0, X1 = _design(B, cols), _design(rows, cols)
    e_low, e_high, e_mean, e_sig = out_of_sample_bounds(res, X0, X1, e_method, a)

    names = [f"calendar:{int(t)}" for t in post_periods[keep]] + ["att"]
    y = np.append(y_post[keep], y_post.mean())
    synth = rows @ w
    cf_low, cf_high = synth + in_low + e_low, synth + in_high + e_high
    table = pd.DataFrame(
        {
            "term": names,
            "y": y,
            "synthetic": synth,
            "effect": y - synth,
            "in_low": in_low,
            "in_high": in_high,
            "e_low": e_low,
            "e_high": e_high,
            "e_mean": e_mean,
            "e_sigma": e_sig,
            "cf_low": cf_low,
            "cf_high": cf_high,
            "effect_low": y - cf_high,
            "effect_high": y - cf_low,
        }
    )
    numeric = [k for k in table.columns if k != "term"]
    table[numeric] = table[numeric] * c
    with np.errstate(over="ignore"):
        # Sigma is in squared outcome units: past 1e308 it is inf, as the true value is
        sigma = S * c * c
    pool = list(Y0.index)
    ws = pd.Series(w, index=pd.Index(pool, name="unit"), name="weight")
    return ScpiResult(
        outcome=out,
        table=table,
        weights=ws,
        residuals=pd.Series(
            res * c, index=pd.Index(periods_all[pre], name="time"), name="residual"
        ),
        sigma=pd.DataFrame(sigma, index=ws.index, columns=ws.index),
        draws_low=pd.DataFrame(low * c, columns=names),
        draws_high=pd.DataFrame(high * c, columns=names),
        rho=rho_v,
        alpha=a,
        e_method=e_method,
        info={
            "treatment_start": g,
            "n_donors": J,
            "n_active": int(active.sum()),
            "df": df,
            "u_design": "donors" if len(_design_columns(B, active, u_order, T0)) else "constant",
            "e_design": "donors" if len(cols) else "constant",
            "sims": sims,
            "u_mean_sd": float(np.std(u_mean) * c),
            "outcome_rescaled_by": c,
            "weights_source": "refitted: simplex least squares on the pre-period outcomes, V = I"
            + (f" (the synthetic-control result's own weights used v={v_note})" if v_note else ""),
        },
    )
