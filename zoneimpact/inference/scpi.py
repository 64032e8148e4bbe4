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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm

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
    res: np.ndarray,
    B: np.ndarray,
    w: np.ndarray,
    active: np.ndarray,
    u_order: int,
    *,
    outer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``Sigma`` of CFT (Section 4.1): HC1 variance of ``B'u / T0`` around the
    projection of ``u`` on the design; returns it with ``E[u|H]`` and ``df``. ``outer``
    replaces ``B`` in ``B'u`` (not in the design): the in-sample draws take it centred
    per period, the part of ``Sigma`` they use."""
    T0 = len(res)
    D = _design(B, _design_columns(B, active, u_order, T0))
    coef = np.linalg.lstsq(D, res, rcond=None)[0]
    u_mean = D @ coef
    df = int(np.sum(np.abs(w) >= 1e-6)) - 1
    if df >= T0:
        df = T0 - 1
    omega = (res - u_mean) ** 2 * T0 / (T0 - df)
    M = B if outer is None else outer
    S = (M.T * omega) @ M / T0**2
    return 0.5 * (S + S.T), u_mean, df


def _unit_design(X0: np.ndarray, X1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """With a constant column, the other columns centred and scaled on ``X0`` (and ``X1``
    alike): every regression of :func:`out_of_sample_bounds` has the constant, so its
    predictions at ``X1`` do not change, while donor outcomes in levels (a shift of 1e4
    moved the upper bound from -3.5 to 73, a breaker's check) no longer swamp the
    variation."""
    spread = X0.max(axis=0) - X0.min(axis=0)
    const = (spread == 0) & (X0[0] != 0)
    if not const.any():
        return X0, X1
    move = ~const & (spread > 0)
    m = np.where(move, X0.mean(axis=0), 0.0)
    sc = np.where(move, np.abs(X0 - m).max(axis=0), 1.0)
    return (X0 - m) / sc, (X1 - m) / sc


def quantile_regression(y: np.ndarray, X: np.ndarray, q: float) -> np.ndarray:
    """Koenker & Bassett (1978) quantile regression solved exactly as its linear
    programme (``min sum q u+ + (1 - q) u-`` s.t. ``X b + u+ - u- = y``) by scipy's HiGHS,
    as R ``quantreg::rq`` (which ``scpi`` calls) solves it by simplex. statsmodels'
    ``QuantReg`` (IRLS) stopped at fits whose check loss was 6.78 against the optimum's
    5.56 and moved with the outcome's units (a breaker's check, session 20). ``y`` is
    divided by its largest value first, so the programme is solved at unit scale."""
    from scipy.optimize import linprog

    n, k = X.shape
    c = float(np.abs(y).max()) or 1.0
    xs = np.abs(X).max(axis=0)
    xs = np.where(xs > 0, xs, 1.0)  # columns at unit scale too (outcomes x 1e-12)
    cost = np.r_[np.zeros(k), np.full(n, q), np.full(n, 1.0 - q)]
    A_eq = np.hstack([X / xs, np.eye(n), -np.eye(n)])
    bounds = [(None, None)] * k + [(0, None)] * (2 * n)
    sol = linprog(cost, A_eq=A_eq, b_eq=y / c, bounds=bounds, method="highs")
    if sol.status != 0:
        raise EstimationError(f"SCPI: the quantile regression at q={q:g} failed ({sol.message}).")
    return np.asarray(sol.x[:k]) / xs * c


#: residuals within this fraction of the outcome's scale are round-off zeros
_ZERO_RESIDUAL = 1e-10


def out_of_sample_bounds(
    res: np.ndarray,
    X0: np.ndarray,
    X1: np.ndarray,
    method: str,
    alpha: float,
    *,
    scale: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounds on ``e`` at the design rows ``X1`` (CFT Section 4.2; ``scpi``'s
    ``scpi_out``): returns lower, upper, ``E[e|H]`` and the scale ``sigma``.

    ``alpha`` is the total for both tails (each bound holds with ``1 - alpha/2``).
    ``scale`` is the outcome's magnitude: residuals within ``_ZERO_RESIDUAL`` of it are
    round-off of a perfect fit and count as zero (the log-variance model is refused).
    """
    a = alpha / 2
    X0, X1 = _unit_design(X0, X1)
    ols = sm.OLS(res, X0).fit()
    e_mean = X1 @ ols.params
    fitted = X0 @ ols.params
    r = res - fitted
    if method == "qreg":
        if X0.shape[1] == 1:
            lo = np.full(len(X1), np.quantile(res, a))
            hi = np.full(len(X1), np.quantile(res, 1 - a))
        else:
            lo = X1 @ quantile_regression(res, X0, a)
            hi = X1 @ quantile_regression(res, X0, 1 - a)
        return lo, hi, e_mean, np.full(len(X1), np.nan)
    # a perfect pre-period fit leaves residuals that are exact zeros or round-off
    # (2.8e-14 on outcomes near 200) depending on the arithmetic: both are zero, or
    # the log-variance model would be fitted to round-off noise
    tiny = np.abs(r) <= _ZERO_RESIDUAL * scale
    if tiny.any():
        k = int(np.flatnonzero(tiny)[0])
        raise EstimationError(
            f"SCPI: pre-treatment residual {k + 1} of {len(r)} of the out-of-sample model is "
            f"zero ({float(r[k]):.3g}, within {_ZERO_RESIDUAL:g} x the outcome's scale "
            f"{scale:.3g}), so its log-variance model is undefined (the synthetic control "
            "fits a period perfectly); use e_method='qreg'."
        )
    logr2 = np.log(r**2)
    var_fit = sm.OLS(logr2, X0).fit()
    var1 = X1 @ var_fit.params
    iq = np.abs(X1 @ quantile_regression(r, X0, 0.75) - X1 @ quantile_regression(r, X0, 0.25))
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
    # one tolerance per quantity in its own units (ds/dt ~ g / H, dr/dt ~ g): a single one
    # mixing them made the in-sample bounds move with the outcome's scale (Prop 99 x 1e4:
    # the lower bound -7.93 -> -24.46; a breaker's check, session 20)
    g_max = float(np.abs(g).max())
    tiny_ds = 1e-12 * g_max / max(float(np.abs(H).max()), 1e-300)
    tiny_dr = 1e-12 * g_max
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
            leave = np.where(inside & (ds < -tiny_ds), s / -ds, np.inf)
            enter = np.where(~inside & (dr < -tiny_dr), np.maximum(r, 0.0) / -dr, np.inf)
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
    # the in-sample problem is over delta = beta - w with sum(delta) = 0, so it sees B,
    # the directions and the draws only through their parts orthogonal to the donors'
    # mean: removing that mean per period (B P, P = I - 11'/J) is exact and keeps Q at the
    # donors' spread (outcomes + 1e4 moved the ATT's lower bound from -7.65 to -84.93)
    Bc = B - B.mean(axis=1, keepdims=True)
    Q = Bc.T @ Bc / T0
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
    # drawn from Sigma of the centred B (P Sigma P): the same law for the part the
    # problem uses, and draws that no longer depend on the outcome's level
    S_c = sigma_hat(res, B, w, active, u_order, outer=Bc)[0]
    zetas = (sqrt_psd(S_c) @ gen.standard_normal((J, sims))).T
    rows_c = rows - rows.mean(axis=1, keepdims=True)
    chunks = [zetas[k : k + 20] for k in range(0, sims, 20)]
    parts = replicate(
        lambda ch, _g: _simulate_chunk(geo, ch, rows_c),
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
    # the outcome's magnitude (on the divided scale): residuals of a perfect fit are its
    # round-off
    scale = float(np.abs(np.concatenate([A, B.ravel()])).max())
    e_low, e_high, e_mean, e_sig = out_of_sample_bounds(res, X0, X1, e_method, a, scale=scale)

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
        # Sigma = B' diag(u^2) B / T0^2 is in the outcome's units to the fourth (donor
        # outcomes twice, residuals squared); past 1e308 it is inf, as the true value is
        sigma = S * c * c * c * c  # c**4 of a Python float raises past 1e308
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
