r"""Matrix completion with nuclear-norm regularisation (MC-NNM) for counterfactuals.

Athey, S., Bayati, M., Doudchenko, N., Imbens, G. and Khosravi, K. (2021), "Matrix
Completion Methods for Causal Panel Data Models", *Journal of the American Statistical
Association* 116(536), 1716-1730; Liu, Wang & Xu (2024, AJPS), fect method ``"mc"``.

The untreated outcomes are modelled as (Athey et al. 2021: the estimator with unit and
time fixed effects and covariates)

.. math::  Y_{it}(0) = \mu + \alpha_i + \xi_t + X_{it}'\beta + L_{it} + \varepsilon_{it},

with ``L`` of low rank, estimated on the untreated observed cells ``O`` by

.. math::  \min_{\mu, \alpha, \xi, \beta, L}\ \tfrac12 \sum_{(i,t) \in O}
           \big(Y_{it} - \mu - \alpha_i - \xi_t - X_{it}'\beta - L_{it}\big)^2
           + \lambda \lVert L \rVert_* .

(Athey et al. write the loss as ``(1/|O|) sum (...)^2 + lambda' ||L||_*``; their
``lambda'`` is ``2 lambda / |O|`` here, so that ``lambda`` is in outcome units and is
the threshold applied to the singular values.) It is solved by the soft-impute iteration
of Mazumder, Hastie & Tibshirani (2010) that Athey et al. use: fill the
cells outside ``O`` with the current fit, then solve the complete-data problem exactly --
the fixed effects are two-way means (they absorb the mean part of ``L``, which cannot
lower the nuclear norm), ``beta`` is the OLS of the double-centred outcome net of ``L``
on the double-centred covariates, and ``L = S_lambda(R)`` is the singular-value
soft-thresholding (``sigma_k -> max(sigma_k - lambda, 0)``) of the double-centred
outcome net of ``X beta`` -- until the fit stops changing. The complete-data statistics
are updated from the incomplete units only (:class:`.ife.Gram`).

``lambda_`` (when not given) is chosen by cross-validation on the grid
``lambda_max * 10^(-3 j / (n_lambda - 1))``, ``j = 0..n_lambda-1``, with ``lambda_max``
the largest singular value of the two-way fixed-effects residual matrix (``L = 0``
there, so the first candidate is the fixed-effects counterfactual), by the same
leave-block-out folds and rules as :mod:`.ife` (candidates from the largest ``lambda``,
the most regularised, so ``"1pct"``/``"1se"`` favour shrinkage), warm-starting along
the path.

Estimands, inference (unit bootstrap -- fect's default for ``"mc"`` --, jackknife, Xu's
parametric bootstrap) and diagnostics are those of :mod:`.ife`.

Why by hand: no maintained Python library fits MC-NNM with fixed effects, covariates and
missing cells (``fancyimpute``'s ``SoftImpute`` has neither fixed effects nor covariates
and is not maintained; ``causaltensor`` has no treatment-effect inference); the algebra is
numpy's eigendecomposition of the ``T x T`` Gram matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel
from ..parallel import as_generator
from ..results import check_fit_arguments, check_int, check_number
from ._scale import scale_equivariant
from .ife import (
    REPLICATE_TOL,
    CounterfactualResult,
    CvRule,
    CvSettings,
    Gram,
    Problem,
    SeMethod,
    Solution,
    Start,
    _combine,
    _initial_fill,
    _materialise,
    _scale_of,
    build_problem,
    check_cv_settings,
    check_settings,
    choose,
    covariate_list,
    cv_blocks,
    cv_limits,
    cv_masks,
    dropped_info,
    eig_desc,
    estimate,
    ife_solve,
)

__all__ = ["fit"]


def _shrinkage(G: np.ndarray, lam: float) -> tuple[np.ndarray, int, np.ndarray]:
    """``W = V diag(max(sigma - lambda, 0) / sigma) V'`` from the Gram matrix ``R'R``, so
    that ``R W = S_lambda(R)``; the rank kept and the kept right singular vectors."""
    w, V = eig_desc(G)
    sig = np.sqrt(w)
    keep = sig > lam
    d = np.zeros_like(sig)
    d[keep] = (sig[keep] - lam) / sig[keep]
    return (V * d) @ V.T, int(keep.sum()), V[:, keep]


def _mc_beta(C: np.ndarray, W: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """OLS of ``R_Z - L`` on the double-centred covariates, ``L = R_U W`` with ``U = Z -
    X beta`` at the previous ``beta``: ``A b = tr(R_Xj' R_Z) - tr(R_Xj' R_U W)``."""
    Cxz = C[1:, 0]
    Cxx = C[1:, 1:]
    Cxu = Cxz - np.einsum("k,jkts->jts", beta, Cxx)
    A = np.einsum("jkss->jk", Cxx)
    b = np.einsum("jss->j", Cxz) - np.einsum("jts,ts->j", Cxu, W)
    if np.linalg.matrix_rank(A) < len(beta):
        raise EstimationError(
            "The covariates are collinear with the unit and time effects (or each other) on "
            "this panel; drop the time-invariant or redundant ones."
        )
    return np.linalg.solve(A, b)


def mc_solve(
    Y: np.ndarray,
    M: np.ndarray,
    X: np.ndarray,
    lam: float,
    warm: Start | None = None,
    tol: float = 1e-7,
    max_iter: int = 2000,
) -> Solution:
    """Soft-impute fit of the MC-NNM model on the cells ``M`` (module docstring)."""
    gram = Gram(Y, M, X)
    inc, p = gram.inc, gram.p
    scale = _scale_of(Y, M)
    Yi, Mi, Xi = Y[inc], M[inc], X[inc]
    if warm is None:
        fill, beta = _initial_fill(Y, M)[inc], np.zeros(p)
    else:
        fill, beta = warm.yhat[inc], warm.beta
    c, C = gram.centred(np.where(Mi, Yi, fill))
    W = _shrinkage(_combine(c, C, beta)[1], lam)[0]
    A0 = np.einsum("jjtt->j", C[1:, 1:]) if p else np.zeros(0)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is reported)
        new_beta = _mc_beta(C, W, beta) if p else beta
        cu, G = _combine(c, C, new_beta)
        W = _shrinkage(G, lam)[0]
        xb = Xi @ new_beta if p else np.zeros_like(fill)
        U = np.where(Mi, Yi, fill) - xb
        um = U.mean(axis=1, keepdims=True)
        new_fill = um + cu[None, :] + (U - um - cu[None, :]) @ W + xb
        db = new_beta - beta
        delta = np.sqrt(np.sum((new_fill - fill) ** 2) + float(np.sum(A0 * db * db))) / scale
        fill, beta = new_fill, new_beta
        c, C = gram.centred(np.where(Mi, Yi, fill))
        if delta < tol:
            converged = True
            break
    cu, G = _combine(c, C, beta)
    W, rank, V = _shrinkage(G, lam)
    fit, row = _materialise(gram, Y, X, fill, beta, cu, W)
    return Solution(
        fit,
        row,
        cu,
        beta,
        np.zeros((Y.shape[1], 0)),
        np.zeros((Y.shape[0], 0)),
        it,
        converged,
        rank,
    )


@dataclass(frozen=True)
class MCModel:
    """MC-NNM with penalty ``lam`` (in outcome units)."""

    lam: float
    tol: float = 1e-7
    max_iter: int = 2000

    def solve(
        self, Y: np.ndarray, M: np.ndarray, X: np.ndarray, ctrl: np.ndarray, warm: Any
    ) -> Solution:
        return mc_solve(Y, M, X, self.lam, warm, self.tol, self.max_iter)

    def relaxed(self) -> MCModel:
        return replace(self, tol=max(self.tol, REPLICATE_TOL))


def lambda_grid(prob: Problem, n_lambda: int, tol: float) -> np.ndarray:
    """``lambda_max 10^(-3 j / (n - 1))``: ``lambda_max`` is the largest singular value of
    the two-way fixed-effects residuals on the fitted cells (zero elsewhere)."""
    M = prob.fit_mask
    fe = ife_solve(prob.Y, M, prob.X, 0, tol=tol)
    R = np.where(M, prob.Y - fe.yhat, 0.0)
    top = float(np.sqrt(eig_desc(R.T @ R)[0][0]))
    if top <= 0:
        raise EstimationError("The outcome has no variation beyond the fixed effects.")
    return top * 10.0 ** (-3.0 * np.arange(n_lambda) / max(n_lambda - 1, 1))


@scale_equivariant(scaled_options={"lambda_": 1, "equivalence_margin": 1})
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: str | Sequence[str] | None = None,
    lambda_: float | None = None,
    n_lambda: int = 10,
    cv_method: Literal["treated_units", "all_units"] = "treated_units",
    cv_rule: CvRule = "1pct",
    k: int = 10,
    cv_prop: float = 0.1,
    cv_nobs: int = 3,
    se_method: SeMethod | None = "bootstrap",
    n_reps: int = 200,
    diagnostics: bool = True,
    pretrend_min_share: float = 0.3,
    placebo_periods: int = 3,
    equivalence_margin: float | None = None,
    f_threshold: float = 0.6,
    min_T0: int = 5,
    tol: float = 1e-7,
    max_iter: int = 2000,
) -> CounterfactualResult:
    """Matrix completion counterfactual estimator (Athey et al. 2021; fect ``"mc"``).

    Parameters
    ----------
    panel : Panel
        Staggered adoption, balanced or not.
    outcome : str
        Outcome column.
    rng : numpy.random.Generator, optional
        Cross-validation folds and resampling draws.
    alpha : float
        Level of the normal confidence intervals.
    n_jobs : int
        Workers for the resampling loops (results identical for any value).
    covariates : str or list of str, optional
        Time-varying covariates.
    lambda_ : float, optional
        Nuclear-norm penalty in outcome units; default by cross-validation.
    n_lambda : int
        Candidates of the cross-validation grid (module docstring).
    cv_method, cv_rule, k, cv_prop, cv_nobs
        Cross-validation as in :func:`.ife.fit`.
    se_method, n_reps, diagnostics, pretrend_min_share, placebo_periods,
    equivalence_margin, f_threshold, min_T0
        Inference and diagnostics as in :func:`.ife.fit`.
    tol, max_iter : float, int
        Stopping rule of the soft-impute iterations.

    Returns
    -------
    CounterfactualResult
        Terms ``att``, ``event:E`` and ``calendar:T``; ``info["lambda"]`` and
        ``info["rank"]`` (rank of the fitted ``L``).
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="matrix_completion"
    )
    covs = covariate_list(panel, covariates)
    lambda_ = check_number(lambda_, "lambda_", minimum=0, none=True)
    n_lambda = check_int(n_lambda, "n_lambda", minimum=2)
    cvs = check_cv_settings(cv_method, cv_rule, k, cv_prop, cv_nobs, tol, max_iter)
    s = check_settings(
        se_method, n_reps, diagnostics, pretrend_min_share, placebo_periods,
        equivalence_margin, f_threshold, min_T0,
    )  # fmt: skip
    prob, units, dropped = build_problem(
        panel, outcome, covs, min_T0=s.min_T0, estimator="Matrix completion"
    )
    g_cv, g_se = as_generator(rng).spawn(2)
    cv = pd.DataFrame()
    if lambda_ is None:
        lambda_, cv = _choose_lambda(prob, n_lambda, cvs, g_cv)
    model = MCModel(lambda_, cvs.tol, cvs.max_iter)
    info = {"lambda": lambda_, "cv_rule": cv_rule if not cv.empty else "given"}
    res = estimate(
        estimator="matrix_completion",
        outcome=outcome,
        prob=prob,
        units=units,
        covariates=covs,
        model=model,
        settings=s,
        cv=cv,
        rng=g_se,
        n_jobs=n_jobs,
        alpha=alpha,
        info={**info, **dropped_info(dropped)},
    )
    rank = model.solve(prob.Y, prob.fit_mask, prob.X, prob.ctrl, None).rank
    return CounterfactualResult(**{**res.__dict__, "info": {**res.info, "rank": rank}})


def _choose_lambda(
    prob: Problem, n_lambda: int, cvs: CvSettings, rng: np.random.Generator
) -> tuple[float, pd.DataFrame]:
    """Cross-validated penalty (leave-block-out MSPE, fect's rules) and the CV table."""
    grid = lambda_grid(prob, n_lambda, cvs.tol)
    masks = cv_masks(
        prob.fit_mask,
        cvs.eligible(prob),
        k=cvs.k,
        cv_prop=cvs.cv_prop,
        cv_nobs=cvs.cv_nobs,
        keep=2,
        rng=rng,
    )
    limits = cv_limits(cvs.tol, cvs.max_iter)
    means, ses = cv_blocks(prob, [MCModel(float(lam), *limits) for lam in grid], masks)
    j = choose(means, ses, cvs.cv_rule)
    table = pd.DataFrame(
        {"lambda": grid, "mspe": means, "mspe_se": ses, "chosen": np.arange(len(grid)) == j}
    )
    return float(grid[j]), table
