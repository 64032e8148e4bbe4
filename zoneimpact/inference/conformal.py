r"""Conformal inference for synthetic-control-type estimators.

Chernozhukov, V., Wüthrich, K. and Zhu, Y. (2021), "An Exact and Robust Conformal
Inference Method for Counterfactual and Synthetic Controls", *Journal of the American
Statistical Association* 116(536), 1849-1864 (CWZ).

Setting (CWZ): one treated series ``Y_1t`` (the mean of the treated units when
there are several with one adoption date) and donors ``Y_jt``, periods ``t = 1..T``, the
last ``T* = T - T0`` treated. The null hypothesis fixes the effect path,
``H0: theta_t = theta0_t`` for ``t > T0``. Under ``H0`` the untreated outcome is known in
every period, ``Y^N_1t = Y_1t - theta0_t 1{t > T0}``, so the counterfactual model is
fitted on **all** ``T`` periods of the adjusted data (this is what makes the procedure
exact under exchangeability), and the residuals are ``u_t = Y^N_1t - P_t``, with ``P_t`` the
model's fitted value. The test statistic is

.. math::  S_q(\hat u) = \Big(\frac{1}{\sqrt{T^*}} \sum_{t > T_0} |\hat u_t|^q\Big)^{1/q},

and the p-value ``p = |Pi|^{-1} sum_{pi in Pi} 1{S_q(u_pi) >= S_q(u)}`` over
the permutations ``Pi`` of the periods: the ``T`` cyclic shifts ("moving_block", valid
under stationary weakly dependent errors) or random permutations ("iid",
exchangeable errors; ``p = (1 + #{S_b >= S}) / (1 + B)``).

Confidence sets by test inversion (CWZ): for each post period ``t`` the
pre-treatment periods and ``t`` alone (``T* = 1``) give ``{theta: p(theta) > alpha}``; for
the ATT the constant-effect null ``theta_t = theta`` over all post periods is inverted.
Inversion scans a grid around the point estimate, widens it while its ends are accepted,
and refines the ends by bisection; the reported interval is the hull of the accepted set.

Counterfactual models refitted under the null, by estimator (read from the result; its
numbers are not changed):

* ``synthetic_control`` -- the canonical synthetic control of CWZ: simplex
  weights minimising ``sum_t (Y^N_1t - w'Y_0t)^2`` (no intercept; the result's donor
  pool);
* ``augmented_sc`` -- ridge-augmented SC (Ben-Michael, Feller & Rothstein 2021, eq. 12)
  with the result's ``lambda``;
* ``synthetic_did`` -- the unit-weight problem of SDID (Arkhangelsky et al. 2021,
  eq. 2.2): an intercept plus simplex weights with the ridge penalty ``zeta_omega^2 T
  ||w||^2`` (``method="sc"``: no intercept; ``method="did"``: equal weights and an
  intercept). The time weights of SDID give no per-period counterfactual and are not
  used.

Why by hand: the PyPI port of CWZ's own R code (``scinference``) works on arrays for
three counterfactual models (DID, SC, constrained lasso) solved with ``cvxpy``, and
``diff-diff``'s version is tied to its own synthetic-control class; neither refits the
ridge-augmented SC or SDID's unit-weight model, nor reads zoneimpact results. The
permutation test and interval inversion here give ``scinference``'s p-values exactly and
its interval ends to its grid step (``tests/test_conformal.py``, run when it is
installed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..estimators._sc_common import outcome_matrix
from ..estimators._simplex import simplex_qp
from ..estimators.augmented_sc import _weights as _ridge_asc_weights
from ..panel import Panel
from ..parallel import as_generator
from ..results import EstimationResult, check_alpha, check_choice, check_int, check_number

__all__ = ["ConformalResult", "conformal_inference", "conformal_pvalue"]

Permutation = Literal["moving_block", "iid"]
#: ``fitter(y, Y0, Y0_new)``: fit the model of ``y`` on the donors ``Y0`` (donors x
#: periods) and predict the periods of ``Y0_new``.
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ConformalResult:
    """Conformal p-values and confidence sets (CWZ 2021).

    Attributes
    ----------
    table : DataFrame
        One row per term -- ``att`` (constant effect over the post periods) and
        ``calendar:T`` (each post period) --: ``estimate`` (the result's own ATT and gaps;
        for SDID, whose time weights give no per-period gap, the gap of its unit-weight
        model fitted on the pre-treatment periods), ``p_value`` of ``theta = 0``,
        ``ci_low`` and ``ci_high`` (hull of the accepted values; infinite when the model
        can absorb any effect, e.g. a nearly unregularised augmented SC).
    p_value, statistic : float
        Joint test of ``theta0`` (the whole post-treatment path).
    theta0 : ndarray
        The hypothesised path.
    residuals : Series
        Residuals ``u_t`` under ``theta0``, by period.
    """

    estimator: str
    outcome: str
    table: pd.DataFrame
    p_value: float
    statistic: float
    theta0: np.ndarray
    residuals: pd.Series
    q: float
    permutation: str
    n_permutations: int
    alpha: float
    info: dict[str, Any] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Broom-style table: term, estimate, p_value, conf_low, conf_high."""
        t = self.table
        return pd.DataFrame(
            {
                "term": t["term"].to_numpy(),
                "estimate": t["estimate"].to_numpy(float),
                "p_value": t["p_value"].to_numpy(float),
                "conf_low": t["ci_low"].to_numpy(float),
                "conf_high": t["ci_high"].to_numpy(float),
            }
        )


# ---------------------------------------------------------------------------- fitters
def sc_fitter(y: np.ndarray, Y0: np.ndarray, Y0_new: np.ndarray) -> np.ndarray:
    """Canonical SC: simplex least squares, no intercept."""
    w, _ = simplex_qp(Y0.T, y)
    return Y0_new.T @ w


def sdid_fitter(zeta: float) -> Fitter:
    """SDID's unit-weight problem (eq. 2.2): intercept, simplex weights, ridge
    ``zeta^2 T ||w||^2`` (``T`` the periods fitted)."""

    def fit(y: np.ndarray, Y0: np.ndarray, Y0_new: np.ndarray) -> np.ndarray:
        T, J = Y0.shape[1], Y0.shape[0]
        Yc = Y0 - Y0.mean(axis=1, keepdims=True)
        A = np.vstack([Yc.T, np.sqrt(zeta**2 * T) * np.eye(J)])
        b = np.concatenate([y - y.mean(), np.zeros(J)])
        w, _ = simplex_qp(A, b)
        return Y0_new.T @ w + float(np.mean(y - Y0.T @ w))

    return fit


def did_fitter(y: np.ndarray, Y0: np.ndarray, Y0_new: np.ndarray) -> np.ndarray:
    """DID: donor mean plus an intercept."""
    return Y0_new.mean(axis=0) + float(np.mean(y - Y0.mean(axis=0)))


def ridge_asc_fitter(lam: float) -> Fitter:
    """Ridge ASC (Ben-Michael et al. 2021, eq. 12) with penalty ``lam``."""

    def fit(y: np.ndarray, Y0: np.ndarray, Y0_new: np.ndarray) -> np.ndarray:
        gamma, _ = _ridge_asc_weights(y, Y0, lam)
        return Y0_new.T @ gamma

    return fit


# ---------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class _Setup:
    y: np.ndarray  # treated (mean) path, T
    Y0: np.ndarray  # donors x T
    post: np.ndarray  # bool, T
    periods: np.ndarray
    fitter: Fitter
    att: float  # the result's own estimate
    gaps: np.ndarray | None  # the result's own gaps by period (SC, ASC)


def _setup(result: EstimationResult, panel: Panel) -> _Setup:
    """Treated path, donors and refit rule of a SC, augmented SC or SDID result."""
    if not isinstance(result, EstimationResult) or not isinstance(panel, Panel):
        raise SpecError(
            "conformal inference needs an estimation result and the Panel it was fitted on; "
            f"received {type(result).__name__} and {type(panel).__name__}."
        )
    est = result.estimator
    check_choice(est, "result.estimator", ["synthetic_control", "augmented_sc", "synthetic_did"])
    g = result.info.get("treatment_start")
    if g is None:
        raise EstimationError(
            f"This {est} result has several adoption cohorts (no single treatment_start); "
            "conformal inference needs one treatment date: fit one cohort at a time."
        )
    if est == "synthetic_did":
        return _setup_sdid(result, panel, float(g))
    donors = list(result.donor_weights.index)  # type: ignore[attr-defined]
    if est == "synthetic_control":
        path = result.treated_path  # type: ignore[attr-defined]
        periods = np.asarray(path.index)
        Y0 = outcome_matrix(panel, result.outcome, donors, periods, estimator="Conformal SC")
        gaps = result.gaps.to_numpy(float)  # type: ignore[attr-defined]
        return _make(path.to_numpy(float), Y0.to_numpy(float), periods, g, sc_fitter, result, gaps)
    gaps = result.gaps  # type: ignore[attr-defined]
    periods = np.asarray(gaps.index)
    Y0 = outcome_matrix(panel, result.outcome, donors, periods, estimator="Conformal ASC").to_numpy(
        float
    )
    weights = result.donor_weights.to_numpy(float)  # type: ignore[attr-defined]
    y = gaps.to_numpy(float) + weights @ Y0
    lam = float(result.lambda_)  # type: ignore[attr-defined]
    return _make(y, Y0, periods, g, ridge_asc_fitter(lam), result, gaps.to_numpy(float))


def _setup_sdid(result: EstimationResult, panel: Panel, g: float) -> _Setup:
    omega = result.unit_weights  # type: ignore[attr-defined]
    if not isinstance(omega, pd.Series):
        raise EstimationError(
            "This synthetic_did result has several adoption cohorts; conformal inference "
            "needs one treatment date: fit one cohort at a time."
        )
    coh = panel.unit_cohort
    treated = coh.index[np.isfinite(coh.to_numpy())].tolist()
    periods = np.asarray(panel.periods)
    units = [*treated, *omega.index]
    W = outcome_matrix(panel, result.outcome, units, periods, estimator="Conformal SDID")
    y = W.loc[treated].to_numpy(float).mean(axis=0)
    Y0 = W.loc[list(omega.index)].to_numpy(float)
    method = result.info.get("method", "sdid")
    if method == "did":
        fitter: Fitter = did_fitter
    elif method == "sc":
        fitter = sc_fitter
    else:
        fitter = sdid_fitter(float(result.info["zeta_omega"]))
    return _make(y, Y0, periods, g, fitter, result, None)


def _make(
    y: np.ndarray,
    Y0: np.ndarray,
    periods: np.ndarray,
    g: Any,
    fitter: Fitter,
    result: EstimationResult,
    gaps: np.ndarray | None,
) -> _Setup:
    post = periods >= g
    if post.sum() < 1 or (~post).sum() < 2:
        raise EstimationError(
            f"Conformal inference needs at least 2 pre-treatment and 1 post-treatment period "
            f"around {g}; the result has {(~post).sum()} and {post.sum()}."
        )
    return _Setup(y, Y0, post, periods, fitter, float(result.estimate), gaps)


# ---------------------------------------------------------------------------- core test
def statistic(u: np.ndarray, post: np.ndarray, q: float) -> np.ndarray:
    """``S_q`` of CWZ (module docstring) for residual vectors ``u`` (last axis: periods)."""
    a = np.abs(u[..., post])
    n = int(post.sum())
    if np.isinf(q):
        return a.max(axis=-1)
    return (np.sum(a**q, axis=-1) / np.sqrt(n)) ** (1.0 / q)


def permutations(T: int, kind: str, n: int | None, rng: Any) -> np.ndarray:
    """Index arrays of the permutations: all ``T`` cyclic shifts, or the identity and
    ``n`` random permutations."""
    if kind == "moving_block":
        return (np.arange(T)[None, :] + np.arange(T)[:, None]) % T
    g = as_generator(rng)
    draws = np.array([g.permutation(T) for _ in range(n or 10_000)])
    return np.vstack([np.arange(T)[None, :], draws])


def _pvalue(
    u: np.ndarray, post: np.ndarray, q: float, perms: np.ndarray, kind: str, scale: float
) -> tuple[float, float]:
    s0 = float(statistic(u, post, q))
    s = statistic(u[perms], post, q)
    # statistics equal up to rounding (relative to the outcome's size) count as ties: an
    # exact fit leaves residuals of 1e-15, whose ordering is noise
    ge = s >= s0 - 1e-10 * scale
    if kind == "moving_block":
        return float(ge.mean()), s0
    return float(ge.sum()) / len(perms), s0


def _test(
    st: _Setup, cols: np.ndarray, theta: np.ndarray, q: float, perms: np.ndarray, kind: str
) -> tuple[float, float, np.ndarray]:
    """p-value, statistic and residuals of ``H0: theta`` on the periods ``cols``."""
    post = st.post[cols]
    y = st.y[cols] - np.where(post, theta, 0.0)
    Y0 = st.Y0[:, cols]
    u = y - st.fitter(y, Y0, Y0)
    # ties relative to the outcome's spread, not its level (+ 1e8 moved a joint p-value
    # from 0.097 to 0.226; a breaker's check, session 20)
    p, s = _pvalue(u, post, q, perms, kind, float(np.ptp(st.y)))
    return p, s, u


# ---------------------------------------------------------------------------- inversion
def _invert(
    pval: Callable[[float], float], center: float, width: float, alpha: float, n_grid: int
) -> tuple[float, float]:
    """Hull of ``{theta: p(theta) > alpha}`` around ``center``: grid, widened while the
    ends are accepted, ends refined by bisection. NaN when nothing is accepted."""
    width = max(width, 1e-12)
    for _ in range(8):
        grid = center + np.linspace(-width, width, n_grid)
        ok = np.array([pval(t) > alpha for t in grid])
        if not ok.any():
            return np.nan, np.nan
        if not (ok[0] or ok[-1]):
            break
        width *= 4
    else:
        return -np.inf, np.inf
    i, j = np.flatnonzero(ok)[[0, -1]]
    lo = _bisect(pval, grid[i - 1], grid[i], alpha)
    hi = _bisect(pval, grid[j + 1], grid[j], alpha)
    return lo, hi


def _bisect(pval: Callable[[float], float], out: float, inside: float, alpha: float) -> float:
    # to 1e-9 of the grid step, in the outcome's own units (an absolute 1e-9 stopped after
    # a few halvings on outcomes of order 1e-9 and shrank the intervals)
    tol = 1e-9 * abs(out - inside)
    for _ in range(40):
        mid = 0.5 * (out + inside)
        if pval(mid) > alpha:
            inside = mid
        else:
            out = mid
        if abs(out - inside) <= tol:
            break
    return inside


# ---------------------------------------------------------------------------- public API
def _theta_path(theta0: Any, st: _Setup) -> np.ndarray:
    n_post = int(st.post.sum())
    if isinstance(theta0, pd.Series):
        post_periods = st.periods[st.post]
        missing = [p for p in post_periods if p not in theta0.index]
        if missing:
            raise SpecError(f"theta0 has no value for post-treatment period(s) {missing}.")
        arr = theta0.reindex(post_periods).to_numpy(float)
    else:
        try:
            arr = np.broadcast_to(np.asarray(theta0, dtype=float), (n_post,)).copy()
        except (TypeError, ValueError):
            arr = np.full(0, np.nan)
    if arr.shape != (n_post,) or not np.isfinite(arr).all():
        raise SpecError(
            f"theta0 must be a finite number or {n_post} finite numbers (one per post-treatment "
            f"period); received {theta0!r}."
        )
    full = np.zeros(len(st.y))
    full[st.post] = arr
    return full


def _check_common(q: Any, permutation: Any, n_permutations: Any) -> tuple[float, str, int | None]:
    q = check_number(q, "q", positive=True) if not (isinstance(q, float) and np.isinf(q)) else q
    check_choice(permutation, "permutation", ["moving_block", "iid"])
    n_perm = check_int(n_permutations, "n_permutations", minimum=1, none=True)
    return float(q), permutation, n_perm


def conformal_pvalue(
    result: EstimationResult,
    panel: Panel,
    *,
    theta0: float | Sequence[float] | pd.Series = 0.0,
    q: float = 1.0,
    permutation: Permutation = "moving_block",
    n_permutations: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> float:
    """p-value of ``H0: theta_t = theta0_t`` for every post-treatment period (CWZ).

    ``theta0`` is one number (a constant effect), one per post period, or a Series by
    period. See :func:`conformal_inference` for the other arguments.
    """
    q, kind, n_perm = _check_common(q, permutation, n_permutations)
    st = _setup(result, panel)
    T = len(st.y)
    perms = permutations(T, kind, n_perm, rng)
    return _test(st, np.arange(T), _theta_path(theta0, st), q, perms, kind)[0]


def conformal_inference(
    result: EstimationResult,
    panel: Panel,
    *,
    theta0: float | Sequence[float] | pd.Series = 0.0,
    alpha: float | None = None,
    q: float = 1.0,
    permutation: Permutation = "moving_block",
    n_permutations: int | None = None,
    rng: np.random.Generator | int | None = None,
    n_grid: int = 60,
) -> ConformalResult:
    """Conformal p-values and confidence intervals (CWZ 2021) for a SC-type result.

    Parameters
    ----------
    result : EstimationResult
        A ``synthetic_control``, ``augmented_sc`` or single-cohort ``synthetic_did``
        result.
    panel : Panel
        The panel the result was estimated on.
    theta0 : float, sequence or Series
        Hypothesised effect path for the joint test (default: no effect).
    alpha : float, optional
        Level of the confidence sets (default the result's).
    q : float
        Exponent of the statistic ``S_q`` (``numpy.inf``: the largest residual).
    permutation : {"moving_block", "iid"}
        Cyclic shifts of the periods, or random permutations.
    n_permutations : int, optional
        Random permutations for ``"iid"`` (default 10,000).
    rng : Generator or seed, optional
        For ``"iid"`` permutations.
    n_grid : int
        Points of the inversion grid.

    Returns
    -------
    ConformalResult
    """
    q, kind, n_perm = _check_common(q, permutation, n_permutations)
    alpha = check_alpha(result.alpha if alpha is None else alpha)
    n_grid = check_int(n_grid, "n_grid", minimum=5)
    st = _setup(result, panel)
    T = len(st.y)
    g = as_generator(rng)
    perms_all = permutations(T, kind, n_perm, g)
    theta = _theta_path(theta0, st)
    p_joint, s_joint, u = _test(st, np.arange(T), theta, q, perms_all, kind)
    rows = [_att_row(st, q, perms_all, kind, alpha, n_grid)]
    pre = np.flatnonzero(~st.post)
    perms_one = permutations(len(pre) + 1, kind, n_perm, g)
    for t in np.flatnonzero(st.post):
        rows.append(_period_row(st, pre, int(t), q, perms_one, kind, alpha, n_grid))
    return ConformalResult(
        estimator=result.estimator,
        outcome=result.outcome,
        table=pd.DataFrame(rows, columns=["term", "estimate", "p_value", "ci_low", "ci_high"]),
        p_value=p_joint,
        statistic=s_joint,
        theta0=theta[st.post],
        residuals=pd.Series(u, index=pd.Index(st.periods, name="time"), name="residual"),
        q=q,
        permutation=kind,
        n_permutations=len(perms_all),
        alpha=alpha,
        info={"n_pre": int(len(pre)), "n_post": int(st.post.sum()), "n_donors": st.Y0.shape[0]},
    )


def _gap(st: _Setup, pre: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, float]:
    """Gaps at ``cols`` of the model fitted on the pre-treatment periods (the point
    estimates) and the residual SD of that fit (the scale of the inversion grid)."""
    y, Y0 = st.y[pre], st.Y0[:, pre]
    gaps = st.y[cols] - st.fitter(y, Y0, st.Y0[:, cols])
    sd = float(np.std(y - st.fitter(y, Y0, Y0)))
    return gaps, sd if sd > 0 else 1.0


def _att_row(
    st: _Setup, q: float, perms: np.ndarray, kind: str, alpha: float, n_grid: int
) -> list[Any]:
    T = len(st.y)
    pre = np.flatnonzero(~st.post)
    cols = np.flatnonzero(st.post)
    gaps, sd = _gap(st, pre, cols)
    center = float(gaps.mean())

    def pval(th: float) -> float:
        return _test(st, np.arange(T), np.full(T, th), q, perms, kind)[0]

    lo, hi = _invert(pval, center, 4 * sd + abs(center), alpha, n_grid)
    return ["att", st.att if np.isfinite(st.att) else center, pval(0.0), lo, hi]


def _period_row(
    st: _Setup,
    pre: np.ndarray,
    t: int,
    q: float,
    perms: np.ndarray,
    kind: str,
    alpha: float,
    n_grid: int,
) -> list[Any]:
    cols = np.append(pre, t)
    gaps, sd = _gap(st, pre, np.array([t]))
    center = float(gaps[0])

    def pval(th: float) -> float:
        return _test(st, cols, np.full(len(cols), th), q, perms, kind)[0]

    lo, hi = _invert(pval, center, 4 * sd + abs(center), alpha, n_grid)
    label = st.periods[t]
    name = f"calendar:{int(label)}" if float(label).is_integer() else f"calendar:{label}"
    est = float(st.gaps[t]) if st.gaps is not None else center
    return [name, est, pval(0.0), lo, hi]
