r"""Interactive fixed effects counterfactual estimator (generalized synthetic control).

Xu, Y. (2017), "Generalized Synthetic Control Method: Causal Inference with Interactive
Fixed Effects Models", *Political Analysis* 25(1), 57-76; Liu, L., Wang, Y. and Xu, Y.
(2024), "A Practical Guide to Counterfactual Estimators for Causal Inference with
Time-Series Cross-Sectional Data", *American Journal of Political Science* 68(1), 160-176
(R ``gsynth`` and ``fect``, method ``"ife"``).

Model (Xu 2017, eq. 1; Bai 2009) for the untreated outcome of unit ``i`` in period ``t``:

.. math::  Y_{it}(0) = \mu + \alpha_i + \xi_t + X_{it}'\beta + \lambda_i' f_t + \varepsilon_{it},

with ``r`` latent factors ``f_t`` and loadings ``lambda_i``; the treatment effect of a
treated cell is :math:`\tau_{it} = Y_{it} - \hat Y_{it}(0)`.

Estimation (``factors_from="not_yet_treated"``, fect's IFEct, the default): the model is
fitted by least squares on *every untreated observed cell* (never-treated units and the
not-yet-treated periods of eventually treated units), i.e.

.. math::  \min \sum_{(i,t): D_{it}=0} \big(Y_{it} - \mu - \alpha_i - \xi_t - X_{it}'\beta
           - \lambda_i'f_t\big)^2,

and the treated cells are imputed from the fitted parameters (staggered adoption is
handled cell by cell). fect solves it by EM: fill the treated (and missing) cells with the
current fit, then solve the complete-data problem -- the fixed effects are the two-way
means, ``beta`` the OLS of the double-centred outcome net of the factor part on the
double-centred covariates, and ``Lambda F'`` the rank-``r`` truncated SVD of the
double-centred outcome net of ``X beta`` (Bai 2009's iterative estimator; Liu, Wang & Xu
2024, the IFEct algorithm). The objective and the fixed point here are fect's; three
things make the iteration faster: (1) each iteration re-solves the loadings and unit
effect of every incomplete unit exactly given the current factors before filling its
cells (an ECM step), which converges in a handful of iterations instead of dozens
(measured on 1,000 x 30 panels: 5-6 iterations against 24 for the same accuracy);
(2) the complete-data step only needs column means and ``T x T`` cross-products, whose
complete units' share is computed once (:class:`Gram`); (3) ``beta`` and the factor space
are alternated to convergence on those small matrices within each iteration, so their
slow coupling costs no pass over the units. ``factors_from="never_treated"`` is Xu's
(2017) original estimator (its Section 3, three steps): factors, time effects and
``beta`` from the never-treated units only, then each treated unit's ``alpha_i`` and
``lambda_i`` by OLS on its pre-treatment cells, then imputation.

Number of factors ``r`` (when not given): cross-validation over ``r = 0..r_max``.
``not_yet_treated``: fect's leave-block-out rule -- ``k`` folds, each masking a share
``cv_prop`` of the untreated cells (of treated units only with ``cv_method=
"treated_units"``, fect's ``cv.treat``; of all units with ``"all_units"``) in blocks of
``cv_nobs`` consecutive periods, refitting and scoring the mean squared prediction error
(MSPE) on the masked cells. ``never_treated``: Xu (2017) Algorithm 1, leave one
pre-treatment period of the treated units out at a time (the exact OLS leave-one-out
errors of the loadings' regression). The chosen ``r`` follows ``cv_rule``: ``"1pct"``
(fect's classic rule, the smallest ``r`` whose MSPE is within 1% of the minimum; default),
``"min"`` or ``"1se"`` (within one fold standard error of the minimum). fect's donut
(unscored cells around a block) is not implemented. Candidates stop at ``r_max`` (5), at
one less than the fewest untreated periods of a unit (fect's ``T0.min - 1``) and, with
blocks held out, so that a unit keeps ``r + 1`` periods after losing one block. As fect's
"two-tier tolerance", the cross-validation fits stop at a looser tolerance (``1e-4``,
at most 200 iterations) than the final fit. Units with fewer than ``min_T0`` untreated
observed periods are dropped with a warning naming them, as fect does.

Estimands (terms): ``att`` -- the mean of ``tau_it`` over all treated observed cells (fect
``att.avg``); ``event:E`` for ``E = t - g >= 0`` (time units, ``g`` the adoption
period); ``calendar:T``; and ``event:E`` for ``E < 0``, the *out-of-sample* pre-treatment
prediction errors (fect ``loo = TRUE``: the treated cells at event time ``E`` are left out
of the fit in turn and predicted).

Inference (``se_method``), on every term: ``"bootstrap"`` -- units resampled with
replacement, the model refitted with ``r`` fixed (fect's nonparametric bootstrap;
reliable with many treated units); ``"jackknife"`` -- leave one unit out,
``se = sqrt((n-1)/n sum (theta_i - mean)^2)``; ``"parametric"`` -- Xu (2017) Algorithm 2
for few treated units: prediction errors of the counterfactual are simulated by
pretending never-treated units are treated (with a treated unit's adoption date, in the
never-treated sample), then bootstrap panels ``Y* = Yhat(0) + e*`` (control rows get
resampled control residual rows, treated rows simulated prediction errors) are
re-estimated; their spread around zero is the standard error. Normal intervals. The
covariance of the replications is the result's ``vcov``. Refits inside resampling loops
stop at a tolerance of ``1e-5`` (a small fraction of a standard error).
``result.with_inference(method, n_reps=, rng=)`` redoes only this step on the fitted
problem the result keeps (``r`` or ``lambda`` fixed): with the seed given to
``fit(se_method=method)`` it returns that fit's standard errors and diagnostics.

Diagnostics computed at estimation time (fect's ``diagtest``), in ``info`` and the
``diagnostics`` table:

* pre-trend F test on the out-of-sample pre-treatment errors (``event:E``, ``E < 0``, the
  event times with at least ``pretrend_min_share`` of the largest count of treated cells;
  the earliest is dropped when all are used):
  :math:`F = \frac{N - P}{(N - 1)P}\, \bar e' S^{-1} \bar e` with ``S`` the resampling
  covariance, ``N`` the largest number of treated units in the window and ``P`` the
  number of periods, against ``F(P, N - P)``; the equivalence version uses the
  non-central ``F(P, N - P, N * f_threshold)`` (fect's ``f.equiv.p``);
* equivalence (TOST) of every pre-treatment error within ``+-equivalence_margin``
  (default ``0.36 sigma``, ``sigma`` the residual SD of the untreated fit; fect and Hartman
  & Hidalgo 2018); the largest p-value is reported;
* placebo test: the last ``placebo_periods`` pre-treatment periods of the treated units
  are left out of the fit and their mean prediction error is tested against 0 (and for
  equivalence); a unit enters a left-out diagnostic only if it keeps ``min_T0`` untreated
  periods without the cells left out;
* carryover test: not applicable -- zoneimpact panels hold absorbing treatments
  (``Panel.from_frame`` refuses a treatment that switches off), so no period follows the
  end of a treatment;
* leave-one-out: the ATT without each treated unit in turn (panels with at most 200
  treated units).

Why by hand: no maintained Python library implements IFE/GSC with fect's
cross-validation, imputation and diagnostics (``pysyncon`` and ``diff-diff`` have synthetic
control and SDID only; the ``gsynth`` Python port on GitHub is unreleased). The linear
algebra is numpy's (eigendecomposition of the small ``T x T`` Gram matrix).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from scipy import stats

from ..errors import EstimationError, SpecError
from ..inference.equivalence import equivalence_test
from ..panel import RESERVED, Panel, _v
from ..parallel import as_generator, replicate, snapshot
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
    check_number,
    terms_frame,
)
from ._scale import scale_equivariant

__all__ = ["CounterfactualResult", "fit"]

SeMethod = Literal["bootstrap", "jackknife", "parametric"]
CvRule = Literal["1pct", "min", "1se"]

CARRYOVER_NOTE = (
    "not applicable: zoneimpact panels hold absorbing treatments (Panel.from_frame refuses "
    "a treatment that switches off), so no period follows the end of a treatment"
)


# ============================================================================ result
@dataclass(frozen=True)
class CounterfactualResult(EstimationResult):
    """Result of the counterfactual estimators (:mod:`.ife`, :mod:`.matrix_completion`).

    Attributes
    ----------
    effects : DataFrame
        One row per treated observed cell: ``unit``, ``time``, ``cohort``, ``event``,
        ``y``, ``y0_hat`` (imputed untreated outcome) and ``tau``.
    pretrend : DataFrame
        One row per pre-treatment event time: ``event``, ``n_cells``, ``in_sample`` (mean
        residual of the fit), ``estimate`` and ``se`` (out-of-sample error), ``p_tost``.
    cv : DataFrame
        Cross-validation table: the candidate (``r`` or ``lambda``), ``mspe``, ``mspe_se``
        and ``chosen`` (empty when the hyper-parameter was given).
    diagnostics : DataFrame
        One row per test: ``test``, ``statistic``, ``p_value``, ``equiv_p``, ``note``.
    leave_one_out : DataFrame
        ``unit``, ``cohort`` and ``att`` without that treated unit.
    factors, loadings : DataFrame
        ``f_t`` (periods x r, ``F'F / T = I``) and ``lambda_i`` (units x r); empty for
        matrix completion.
    unit_effects, time_effects, beta : Series
        ``mu + alpha_i`` by unit, ``xi_t`` by period, covariate coefficients.
    replicates : ndarray
        Resampling estimates behind the standard errors (replications x terms).
    fitted : FittedCounterfactual or None
        The fitted problem :meth:`with_inference` resamples (not part of comparisons).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "effects": {"y": 1, "y0_hat": 1, "tau": 1},
        "pretrend": {"in_sample": 1, "estimate": 1, "se": 1},
        "cv": {"mspe": 2, "mspe_se": 2, "lambda": 1},
        "leave_one_out": {"att": 1},
        "loadings": 1,
        "unit_effects": 1,
        "time_effects": 1,
        "beta": 1,
        "replicates": 1,
        "fitted": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {
        "sigma": 1,
        "lambda": 1,
        "equivalence_margin": 1,
        "placebo_att": 1,
        "placebo_se": 1,
    }

    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    pretrend: pd.DataFrame = field(default_factory=pd.DataFrame)
    cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    leave_one_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    factors: pd.DataFrame = field(default_factory=pd.DataFrame)
    loadings: pd.DataFrame = field(default_factory=pd.DataFrame)
    unit_effects: pd.Series = field(default_factory=pd.Series)
    time_effects: pd.Series = field(default_factory=pd.Series)
    beta: pd.Series = field(default_factory=pd.Series)
    replicates: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    fitted: FittedCounterfactual | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: SeMethod,
        *,
        n_reps: int | None = None,
        rng: np.random.Generator | int | None = None,
        n_jobs: int = 1,
    ) -> CounterfactualResult:
        """The same estimates with another resampling variance, without refitting (fect's
        ``vartype``; Xu 2017, Algorithm 2 for ``"parametric"``).

        Parameters
        ----------
        method : {"bootstrap", "jackknife", "parametric"}
            Unit bootstrap, leave-one-unit-out jackknife or Xu's parametric bootstrap, as
            ``fit(se_method=method)`` (module docstring). The number of factors or the
            penalty stays the fit's.
        n_reps : int, optional
            Bootstrap replications (default: the fit's ``n_reps``).
        rng : numpy.random.Generator or int, optional
            The generator or seed as ``fit`` takes it: with the seed given to
            ``fit(se_method=method)`` the standard errors are that fit's. Default: replays
            the fit's own generator.
        n_jobs : int
            Workers (the result does not depend on it).

        Returns
        -------
        CounterfactualResult
            A new result: standard errors, ``vcov``, ``replicates``, the pre-trend table's
            ``se``/``p_tost``, the diagnostics that use them and ``info["se_method"]``,
            ``info["n_reps"]`` replaced; estimates unchanged.
        """
        data = self.fitted
        if data is None:
            raise EstimationError(
                f"This {self.estimator} result keeps no fitted problem (it was not made by "
                "ife.fit or matrix_completion.fit); refit with se_method= to change its "
                "inference."
            )
        allowed = ["bootstrap", "jackknife", "parametric"]
        if not any(type(method) is str and method == m for m in allowed):
            raise SpecError(
                f"with_inference: method {method!r} is not available for {self.estimator}; "
                f"allowed: {', '.join(repr(m) for m in allowed)}."
            )
        n_reps = data.settings.n_reps if n_reps is None else n_reps
        n_reps = check_int(n_reps, "n_reps", minimum=2 if method != "jackknife" else 0)
        if check_int(n_jobs, "n_jobs") == 0:
            raise SpecError("n_jobs must be a whole number >= 1, or -1 for every core; received 0.")
        # fit spawns (cross-validation, inference) children from its generator
        gen = snapshot(data.rng) if rng is None else as_generator(rng).spawn(2)[1]
        s = replace(data.settings, se_method=method, n_reps=n_reps)
        draws, n_failed = _draws(
            data.prob, data.model, data.spec, data.sol, s, gen, n_jobs, stacklevel=3
        )
        parts = inference_parts(data, draws, method == "jackknife")
        work = self if data.scale == 1.0 else self.rescaled(1.0 / data.scale)
        new = replace(
            work,
            terms=terms_frame(data.spec.names, data.full[:-1], parts.se[: data.spec.n_terms]),
            vcov=parts.vcov,
            pretrend=parts.pretrend,
            diagnostics=parts.table,
            replicates=draws,
            info={
                **work.info,
                **parts.info,
                "se_method": method,
                "n_reps": int(len(draws)),
                "n_reps_not_converged": n_failed,
            },
            fitted=replace(data, scale=1.0, settings=s),
        )
        return new if data.scale == 1.0 else new.rescaled(data.scale)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {
            "effects": self.effects,
            "pretrend": self.pretrend,
            "diagnostics": self.diagnostics,
        }
        if not self.cv.empty:
            out["cv"] = self.cv
        if not self.leave_one_out.empty:
            out["leave_one_out"] = self.leave_one_out
        if not self.factors.empty:
            out["factors"] = self.factors.rename_axis("time").reset_index()
        return out


# ============================================================================ data
@dataclass(frozen=True)
class Problem:
    """A panel as matrices (units x periods), units in the panel's canonical order.

    ``Y`` holds NaN where the outcome is missing; ``D`` is the treatment status
    (``t >= g``), ``X`` the covariates (``N x T x p``, zero where the outcome is missing),
    ``event`` the event time ``t - g`` (NaN for never-treated units).
    """

    Y: np.ndarray
    obs: np.ndarray
    D: np.ndarray
    X: np.ndarray
    event: np.ndarray
    cohort: np.ndarray
    periods: np.ndarray

    @property
    def fit_mask(self) -> np.ndarray:
        """Untreated observed cells: the cells the model is fitted on."""
        return self.obs & ~self.D

    @property
    def treated_cells(self) -> np.ndarray:
        return self.obs & self.D

    @property
    def ctrl(self) -> np.ndarray:
        """Never-treated rows."""
        return np.isinf(self.cohort)

    def take(self, rows: np.ndarray) -> Problem:
        return Problem(
            self.Y[rows],
            self.obs[rows],
            self.D[rows],
            self.X[rows],
            self.event[rows],
            self.cohort[rows],
            self.periods,
        )

    def with_y(self, Y: np.ndarray) -> Problem:
        return replace(self, Y=np.where(self.obs, Y, np.nan))


def covariate_list(panel: Panel, covariates: Any) -> list[str]:
    """Covariate names checked to be numeric panel columns."""
    covs = check_names(covariates, "covariates")
    bad = [c for c in covs if not isinstance(c, str) or c not in panel.data.columns]
    bad += [c for c in covs if c in RESERVED]
    if bad:
        raise SpecError(
            f"covariates: {bad} are not covariate columns of the panel; its covariates are "
            f"{list(panel.covariates)} (declare them in Panel.from_frame(covariates=...))."
        )
    return covs


def build_problem(
    panel: Panel, outcome: str, covariates: list[str], *, min_T0: int, estimator: str
) -> tuple[Problem, list[Any], list[Any]]:
    """Matrices of ``panel`` (see :class:`Problem`), checked for what the model needs, the
    units kept and the units dropped for having fewer than ``min_T0`` untreated observed
    periods (fect drops such units too; a ``UserWarning`` names them)."""
    units = panel.canonical_order(list(panel.units), outcome)
    periods = np.asarray(panel.periods, dtype=float)
    data = panel.data
    wide = data.pivot(index="unit", columns="time", values=outcome)
    Y = wide.reindex(index=units, columns=panel.periods).to_numpy(float)
    obs = np.isfinite(Y)
    cohort = panel.unit_cohort.reindex(units).to_numpy(float)
    D = periods[None, :] >= cohort[:, None]
    event = np.where(np.isfinite(cohort)[:, None], periods[None, :] - cohort[:, None], np.nan)
    X = np.zeros((len(units), len(periods), len(covariates)))
    for j, c in enumerate(covariates):
        xw = data.pivot(index="unit", columns="time", values=c)
        xj = xw.reindex(index=units, columns=panel.periods).to_numpy(float)
        bad = obs & ~np.isfinite(xj)
        if bad.any():
            i, t = np.argwhere(bad)[0]
            raise EstimationError(
                f"{estimator}: covariate {c!r} is missing for unit {_v(units[i])!r} in period "
                f"{_v(panel.periods[t])!r}, where outcome {outcome!r} is observed "
                f"({int(bad.sum())} such cell(s)). Impute the covariate or drop those rows."
            )
        X[:, :, j] = np.where(obs, xj, 0.0)
    prob = Problem(np.where(obs, Y, np.nan), obs, D, X, event, cohort, periods)
    prob, kept, dropped = _drop_short(prob, units, min_T0, estimator)
    _check_problem(prob, kept, panel, estimator)
    return prob, kept, dropped


def _drop_short(
    prob: Problem, units: list[Any], min_T0: int, estimator: str
) -> tuple[Problem, list[Any], list[Any]]:
    n_fit = prob.fit_mask.sum(axis=1)
    few = np.flatnonzero(n_fit < min_T0)
    if not few.size:
        return prob, units, []
    shown = ", ".join(f"{_v(units[i])!r} ({int(n_fit[i])})" for i in few[:5])
    more = f" and {few.size - 5} more" if few.size > 5 else ""
    keep = np.flatnonzero(n_fit >= min_T0)
    if not np.isfinite(prob.cohort[keep]).any():
        raise EstimationError(
            f"{estimator} needs at least min_T0={min_T0} untreated observed periods per unit; "
            f"no treated unit has that many ({few.size} unit(s) have fewer: {shown}{more}). "
            "Lower min_T0 (it must exceed the number of factors) or add earlier periods."
        )
    warnings.warn(
        f"{estimator}: dropped {few.size} unit(s) with fewer than min_T0={min_T0} untreated "
        f"observed periods (as fect does): {shown}{more}. Lower min_T0 to keep them.",
        UserWarning,
        stacklevel=4,
    )
    return prob.take(keep), [units[i] for i in keep], [units[i] for i in few]


def _check_problem(prob: Problem, units: list[Any], panel: Panel, estimator: str) -> None:
    if not prob.D.any():
        raise EstimationError(f"{estimator}: no treated unit in the panel (every cohort is never).")
    if not (prob.treated_cells).any():
        raise EstimationError(
            f"{estimator}: no treated cell has an observed outcome; nothing to estimate."
        )
    col = prob.fit_mask.sum(axis=0)
    empty = np.flatnonzero(col == 0)
    if empty.size:
        raise EstimationError(
            f"{estimator}: period {_v(panel.periods[empty[0]])!r} has no untreated observed "
            "unit, so its time effect cannot be estimated (every unit is treated or missing "
            "then). Drop the periods after the last never-treated observation or add "
            "never-treated units."
        )


# ============================================================================ solvers
@dataclass(frozen=True)
class Solution:
    """A fitted untreated-outcome model on one panel."""

    yhat: np.ndarray  # N x T fitted Y(0) in every cell
    rowpart: np.ndarray  # mu + alpha_i
    colpart: np.ndarray  # xi_t
    beta: np.ndarray
    basis: np.ndarray  # T x r orthonormal factor basis (IFE) or empty
    loadings: np.ndarray  # N x r, on ``basis``
    n_iter: int
    converged: bool
    rank: int
    last_change: float = float("nan")  # relative change of the last iteration
    drifting: bool = False  # the changes grew over the second half of the iterations


@dataclass(frozen=True)
class Start:
    """Warm start of a solver: fitted values (every cell) and covariate coefficients."""

    yhat: np.ndarray
    beta: np.ndarray

    def rows(self, ind: np.ndarray) -> Start:
        return Start(self.yhat[ind], self.beta)


def start_of(sol: Solution) -> Start:
    return Start(sol.yhat, sol.beta)


class Model(Protocol):
    """A model of the untreated outcome fitted on the cells ``M`` of ``Y``."""

    def solve(
        self, Y: np.ndarray, M: np.ndarray, X: np.ndarray, ctrl: np.ndarray, warm: Any
    ) -> Solution: ...

    def relaxed(self) -> Model:
        """The same model stopped at :data:`REPLICATE_TOL` (resampling replications)."""
        ...


#: Stopping tolerance of the fits inside resampling loops (bootstrap, jackknife,
#: leave-one-out): a replication's estimate is needed to a small fraction of its standard
#: error, not to the point estimate's precision, and warm-started refits of slowly
#: converging models (soft-impute) would otherwise dominate the run time.
REPLICATE_TOL = 1e-5


class Gram:
    """Sufficient statistics of the complete-data step, updated cheaply.

    Only the cells outside ``M`` change between iterations, and they sit in the
    *incomplete* units. The statistics the complete-data step needs -- the column means
    and the ``T x T`` cross-products of the row-centred outcome and covariates -- are
    sums over units: the complete units' share is computed once, the incomplete units'
    share at every iteration (``O(N_inc T^2)`` instead of ``O(N T^2)`` per iteration).
    Variables are indexed ``0`` (outcome) and ``1..p`` (covariates).
    """

    def __init__(self, Y: np.ndarray, M: np.ndarray, X: np.ndarray) -> None:
        self.N, self.T = Y.shape
        self.p = X.shape[2]
        full = M.all(axis=1)
        self.comp = np.flatnonzero(full)
        self.inc = np.flatnonzero(~full)
        stack = np.concatenate([Y[self.comp][None], np.moveaxis(X[self.comp], -1, 0)])
        self.row_c = stack.mean(axis=2)  # (p+1) x n_comp row means
        cen = stack - self.row_c[:, :, None]
        self.cen_c = cen
        self.S_c = cen.sum(axis=1)
        self.G_c = _cross(cen, cen)
        xi = np.moveaxis(X[self.inc], -1, 0)
        self.x_inc_row = xi.mean(axis=2)
        self.x_inc_cen = xi - self.x_inc_row[:, :, None]
        self.S_xi = self.x_inc_cen.sum(axis=1)
        self.G_xi = _cross(self.x_inc_cen, self.x_inc_cen)

    def centred(self, Z_inc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column means ``c`` ((p+1) x T) and centred cross-products ``C``
        ((p+1) x (p+1) x T x T, ``C[a, b] = R_a' R_b`` for the double-centred variables)
        with the incomplete units' outcomes set to ``Z_inc``."""
        z = Z_inc - Z_inc.mean(axis=1, keepdims=True)
        q = self.p + 1
        S = self.S_c.copy()
        G = self.G_c.copy()
        S[0] += z.sum(axis=0)
        G[0, 0] += z.T @ z
        if self.p:
            S[1:] += self.S_xi
            G[1:, 1:] += self.G_xi
            zx = _cross(z[None], self.x_inc_cen)[0]
            G[0, 1:] += zx
            G[1:, 0] += np.swapaxes(zx, 1, 2)
        c = S / self.N
        C = G - self.N * c[:, None, :, None] * c[None, :, None, :]
        return c, C.reshape(q, q, self.T, self.T)


def _cross(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``out[a, b] = A[a]' B[b]`` for stacks of ``n x T`` matrices."""
    return np.einsum("ant,bns->abts", A, B, optimize=True)


def _combine(c: np.ndarray, C: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and Gram matrix of ``U = Z - X beta`` from those of the variables."""
    w = np.concatenate([[1.0], -beta])
    return w @ c, np.einsum("a,b,abts->ts", w, w, C)


def eig_desc(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors of a symmetric matrix."""
    w, V = np.linalg.eigh(G)
    return np.clip(w[::-1], 0.0, None), V[:, ::-1]


def beta_given_space(C: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``beta`` minimising ``||R_Z - sum_j beta_j R_Xj - Lambda V'||`` over ``beta`` and the
    loadings for the factor space ``V``: the loadings profiled out with
    ``Q = I - V V'`` (Bai 2009's ``beta`` step), from the centred cross-products."""
    p = C.shape[0] - 1
    Q = np.eye(C.shape[2]) - V @ V.T
    A = np.einsum("jkts,ts->jk", C[1:, 1:], Q)
    b = np.einsum("jts,ts->j", C[1:, 0], Q)
    if np.linalg.matrix_rank(A) < p:
        raise EstimationError(
            "The covariates are collinear with the unit and time effects (or the factors, or "
            "each other) on this panel; drop the time-invariant or redundant ones."
        )
    return np.linalg.solve(A, b)


def _scale_of(Y: np.ndarray, M: np.ndarray) -> float:
    """Translation-invariant size of the data for the stopping rule."""
    v = Y[M]
    s = float(np.std(v)) if v.size else 0.0
    return max(s, 1e-300) * np.sqrt(M.size)


def _initial_fill(Y: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Two-way additive start: unit means plus period means of the observed cells."""
    cnt_r = np.maximum(M.sum(axis=1), 1)
    cnt_c = np.maximum(M.sum(axis=0), 1)
    Z = np.where(M, Y, 0.0)
    m = Z.sum() / max(M.sum(), 1)
    return (Z.sum(axis=1) / cnt_r)[:, None] + (Z.sum(axis=0) / cnt_c)[None, :] - m


def _row_update(
    Y: np.ndarray,
    M: np.ndarray,
    basis: np.ndarray,
    offset: np.ndarray,
    patterns: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit effect and loadings of the rows of ``Y`` by OLS of ``Y - offset`` on
    ``[1, basis]`` over their cells ``M``; fits and coefficients. Rows sharing a pattern
    of cells (``patterns``: the distinct rows of ``M`` and each row's pattern) share one
    factorisation; otherwise the normal equations are solved in a batch."""
    T = Y.shape[1]
    B = np.column_stack([np.ones(T), basis])
    target = np.where(M, Y - offset, 0.0)
    # a tiny ridge (B is unitless: ones and orthonormal columns) keeps the solve defined
    # for a unit whose cells are collinear in B
    ridge = 1e-12 * np.eye(B.shape[1])
    if patterns is not None:
        keys, which = patterns
        coef = np.empty((Y.shape[0], B.shape[1]))
        for k, key in enumerate(keys):
            rows = which == k
            Bk = B[key]
            G = Bk.T @ Bk
            coef[rows] = np.linalg.solve(
                G + (np.trace(G) + 1) * ridge, Bk.T @ target[rows][:, key].T
            ).T
    else:
        G = np.swapaxes(M.astype(float)[:, :, None] * B[None], 1, 2) @ B
        G += (np.trace(G, axis1=1, axis2=2) + 1)[:, None, None] * ridge
        coef = np.linalg.solve(G, (target @ B)[..., None])[..., 0]
    return coef @ B.T + offset, coef


def row_patterns(M: np.ndarray, limit: int = 16) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct rows of ``M`` and each row's index among them (None beyond ``limit``)."""
    if not M.shape[0]:
        return None
    keys, which = np.unique(M, axis=0, return_inverse=True)
    return (keys, which.ravel()) if len(keys) <= limit else None


def _materialise(
    gram: Gram,
    Y: np.ndarray,
    X: np.ndarray,
    fill: np.ndarray,
    beta: np.ndarray,
    cu: np.ndarray,
    W: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted values of every cell and the unit parts, given the incomplete units' fits
    ``fill``: complete unit ``i`` gets ``rowmean(u_i) + c + (u~_i - c) W + x_i beta``."""
    fit = np.empty_like(Y)
    row = np.empty(Y.shape[0])
    w = np.concatenate([[1.0], -beta])
    ut = np.einsum("a,ant->nt", w, gram.cen_c) if gram.comp.size else np.zeros((0, gram.T))
    xb = X[gram.comp] @ beta if gram.p else 0.0
    row[gram.comp] = w @ gram.row_c
    fit[gram.comp] = row[gram.comp][:, None] + cu[None, :] + (ut - cu) @ W + xb
    fit[gram.inc] = fill
    xbi = X[gram.inc] @ beta if gram.p else 0.0
    row[gram.inc] = (fill - xbi).mean(axis=1) if gram.inc.size else 0.0
    return fit, row


def _complete_step(
    c: np.ndarray,
    C: np.ndarray,
    beta: np.ndarray,
    V: np.ndarray,
    r: int,
    A0: np.ndarray,
    eps: float,
    inner: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete-data step: ``beta`` and the factor space alternated to convergence on the
    ``T x T`` statistics (cheap), so that the slow coupling of ``beta`` with the factors
    (Bai 2009's iteration) costs no pass over the units. Returns ``beta``, the factor
    basis and the time effects."""
    for _ in range(inner if len(beta) else 1):
        new = beta_given_space(C, V) if len(beta) else beta
        cu, G = _combine(c, C, new)
        V = eig_desc(G)[1][:, :r]
        db = new - beta
        beta = new
        if np.sqrt(float(np.sum(A0 * db * db))) <= 0.1 * eps:
            break
    return beta, V, cu


def ife_solve(
    Y: np.ndarray,
    M: np.ndarray,
    X: np.ndarray,
    r: int,
    warm: Start | None = None,
    tol: float = 1e-7,
    max_iter: int = 1000,
) -> Solution:
    """Least-squares IFE fit on the cells ``M`` (module docstring): EM with an exact update
    of the incomplete units' loadings before each fill, on :class:`Gram` statistics."""
    gram = Gram(Y, M, X)
    inc, p = gram.inc, gram.p
    scale = _scale_of(Y, M)
    Yi, Mi, Xi = Y[inc], M[inc], X[inc]
    if warm is None:
        fill, beta = _initial_fill(Y, M)[inc], np.zeros(p)
    else:
        fill, beta = warm.yhat[inc], warm.beta
    c, C = gram.centred(np.where(Mi, Yi, fill))
    V = eig_desc(_combine(c, C, beta)[1])[1][:, :r]
    A0 = np.einsum("jjtt->j", C[1:, 1:]) if p else np.zeros(0)
    pats = row_patterns(Mi)
    converged, it = False, 0
    changes = np.full(max_iter, np.nan)
    for it in range(1, max_iter + 1):  # noqa: B007 (it is reported)
        new_beta, V, cu = _complete_step(c, C, beta, V, r, A0, scale * tol)
        offset = cu[None, :] + (Xi @ new_beta if p else 0.0)
        new_fill = _row_update(Yi, Mi, V, offset, pats)[0] if inc.size else fill
        db = new_beta - beta
        delta = np.sqrt(np.sum((new_fill - fill) ** 2) + float(np.sum(A0 * db * db))) / scale
        changes[it - 1] = delta
        fill, beta = new_fill, new_beta
        c, C = gram.centred(np.where(Mi, Yi, fill))
        if delta < tol:
            converged = True
            break
    cu, G = _combine(c, C, beta)
    V = eig_desc(G)[1][:, :r]
    fit, row = _materialise(gram, Y, X, fill, beta, cu, V @ V.T)
    xb = X @ beta if p else 0.0
    load = (fit - xb - cu[None, :] - row[:, None]) @ V
    # a fit moving along a direction the fitted cells do not pin down (too many factors
    # for them) takes steps that do not shrink, or that over the second half of the
    # iterations add up to more than the outcome's scale; a slow but converging one's do
    # neither
    last, mid = float(changes[it - 1]), (it - 1) // 2
    drifting = not converged and (
        last >= float(changes[mid]) or float(np.sum(changes[mid:it])) > 1.0
    )
    return Solution(fit, row, cu, beta, V, load, it, converged, r, last, drifting)


def ife_never_treated(
    Y: np.ndarray,
    M: np.ndarray,
    X: np.ndarray,
    ctrl: np.ndarray,
    r: int,
    warm: Start | None = None,
    tol: float = 1e-7,
    max_iter: int = 1000,
) -> Solution:
    """Xu's (2017) three-step estimator: factors, time effects and ``beta`` from the
    never-treated rows, then each treated unit's ``alpha_i, lambda_i`` by OLS on its
    untreated cells (the imputation follows from them)."""
    c = np.flatnonzero(ctrl)
    t = np.flatnonzero(~ctrl)
    if c.size < 2:
        raise EstimationError(
            "factors_from='never_treated' needs at least 2 never-treated units; use "
            "factors_from='not_yet_treated'."
        )
    sc = ife_solve(Y[c], M[c], X[c], r, None if warm is None else warm.rows(c), tol, max_iter)
    fit = np.empty_like(Y)
    fit[c] = sc.yhat
    Xb = X @ sc.beta if X.shape[2] else np.zeros_like(Y)
    offset = sc.colpart[None, :] + Xb
    load = np.zeros((Y.shape[0], r))
    row = np.zeros(Y.shape[0])
    row[c] = sc.rowpart
    load[c] = sc.loadings
    if t.size:
        fit[t], coef = _row_update(Y[t], M[t], sc.basis, offset[t])
        row[t] = coef[:, 0]
        load[t] = coef[:, 1:]
    return Solution(
        fit,
        row,
        sc.colpart,
        sc.beta,
        sc.basis,
        load,
        sc.n_iter,
        sc.converged,
        r,
        sc.last_change,
        sc.drifting,
    )


@dataclass(frozen=True)
class IFEModel:
    """IFE with ``r`` factors, fitted on all untreated cells or on never-treated units."""

    r: int
    factors_from: str = "not_yet_treated"
    tol: float = 1e-7
    max_iter: int = 1000

    def solve(
        self, Y: np.ndarray, M: np.ndarray, X: np.ndarray, ctrl: np.ndarray, warm: Any
    ) -> Solution:
        if self.factors_from == "never_treated":
            return ife_never_treated(Y, M, X, ctrl, self.r, warm, self.tol, self.max_iter)
        return ife_solve(Y, M, X, self.r, warm, self.tol, self.max_iter)

    def relaxed(self) -> IFEModel:
        return replace(self, tol=max(self.tol, REPLICATE_TOL))


# ============================================================================ cross-validation
def cv_masks(
    M: np.ndarray,
    eligible_rows: np.ndarray,
    *,
    k: int,
    cv_prop: float,
    cv_nobs: int,
    keep: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``k`` held-out masks of fitted cells in blocks of ``cv_nobs`` consecutive periods
    (fect's ``cv.sample``): each fold removes ``floor(cv_prop * n)`` of the ``n`` eligible
    cells, keeping at least ``keep`` fitted cells per unit and one per period."""
    N, T = M.shape
    elig = M & eligible_rows[:, None]
    n_remove = int(np.floor(cv_prop * elig.sum()))
    if n_remove < 1:
        raise EstimationError(
            f"Cross-validation has no cell to hold out: {int(elig.sum())} eligible cells "
            f"times cv_prop={cv_prop} is below one. Raise cv_prop, use cv_method='all_units', "
            "or give r (or lambda_) explicitly."
        )
    cells = np.argwhere(elig)
    masks = []
    for _ in range(k):
        hold = np.zeros_like(M)
        left_r = M.sum(axis=1)
        left_c = M.sum(axis=0)
        removed = 0
        for idx in rng.permutation(len(cells)):
            if removed >= n_remove:
                break
            i, t = cells[idx]
            block = [s for s in range(t, min(t + cv_nobs, T)) if elig[i, s] and not hold[i, s]]
            block = block[: n_remove - removed]
            if not block or left_r[i] - len(block) < keep or (left_c[block] <= 1).any():
                continue
            hold[i, block] = True
            left_r[i] -= len(block)
            left_c[block] -= 1
            removed += len(block)
        if removed == 0:
            raise EstimationError(
                "Cross-validation could not hold out any cell without leaving a unit with "
                f"fewer than {keep} fitted periods; give r (or lambda_) explicitly."
            )
        masks.append(hold)
    return masks


#: Cross-validation fits stop earlier than the final fit, as fect's "two-tier tolerance"
#: does: a candidate only needs its prediction error, and over-fitted candidates (more
#: factors than the data carry, with covariates especially) converge very slowly.
CV_TOL = 1e-4
CV_MAX_ITER = 200


def cv_limits(tol: float, max_iter: int) -> tuple[float, int]:
    """Stopping rule of the cross-validation fits."""
    return max(tol, CV_TOL), min(max_iter, CV_MAX_ITER)


def choose(means: np.ndarray, ses: np.ndarray, rule: str) -> int:
    """Index chosen by fect's rules (candidates ordered from the most parsimonious)."""
    valid = np.isfinite(means)
    if not valid.any():
        raise EstimationError("Cross-validation failed: no candidate has a finite MSPE.")
    m_min = float(np.min(means[valid]))
    if rule == "min":
        thr = m_min
    elif rule == "1pct":
        thr = m_min * 1.01
    else:
        i_min = int(np.flatnonzero(valid & (means == m_min))[0])
        thr = m_min + (float(ses[i_min]) if np.isfinite(ses[i_min]) else 0.0)
    return int(np.flatnonzero(valid & (means <= thr))[0])


def cv_blocks(
    prob: Problem,
    models: Sequence[Model],
    masks: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """MSPE (mean over folds) and its fold SE for each model, warm-started along the list."""
    scores = np.full((len(models), len(masks)), np.nan)
    M = prob.fit_mask
    for f, hold in enumerate(masks):
        warm = None
        Mf = M & ~hold
        for j, model in enumerate(models):
            sol = model.solve(prob.Y, Mf, prob.X, prob.ctrl, warm)
            warm = start_of(sol)
            err = (prob.Y - sol.yhat)[hold]
            scores[j, f] = float(np.mean(err**2))
    return _fold_summary(scores)


def _fold_summary(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = scores.shape[1]
    mean = scores.mean(axis=1)
    se = scores.std(axis=1, ddof=1) / np.sqrt(k) if k > 1 else np.zeros(len(scores))
    return mean, se


def cv_never_treated(prob: Problem, rs: Sequence[int], tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Xu (2017) Algorithm 1: leave one pre-treatment period of the treated units out at
    a time; the factors come from the never-treated units, so the prediction errors are
    the exact leave-one-out OLS errors ``e_t / (1 - h_tt)`` of each unit's loadings."""
    M = prob.fit_mask
    tr = np.flatnonzero(~prob.ctrl)
    T = prob.Y.shape[1]
    pre_cols = np.flatnonzero(M[tr].any(axis=0))
    scores = np.full((len(rs), len(pre_cols)), np.nan)
    for j, r in enumerate(rs):
        sol = ife_never_treated(prob.Y, M, prob.X, prob.ctrl, r, None, tol)
        B = np.column_stack([np.ones(T), sol.basis])
        Xb = prob.X @ sol.beta if prob.X.shape[2] else np.zeros_like(prob.Y)
        err2 = np.full((tr.size, T), np.nan)
        for n, i in enumerate(tr):
            cols = np.flatnonzero(M[i])
            Bi = B[cols]
            yi = prob.Y[i, cols] - sol.colpart[cols] - Xb[i, cols]
            H = Bi @ np.linalg.pinv(Bi)
            e = yi - H @ yi
            lev = np.clip(1 - np.diag(H), 1e-12, None)
            err2[n, cols] = (e / lev) ** 2
        with np.errstate(invalid="ignore"):
            scores[j] = np.nanmean(err2[:, pre_cols], axis=0)
    return _fold_summary(scores)


# ============================================================================ statistics
@dataclass(frozen=True)
class TermSpec:
    """The terms of one estimate, fixed from the original panel for every replication."""

    post_events: np.ndarray
    calendar: np.ndarray
    pre_events: np.ndarray
    placebo_events: np.ndarray
    #: a unit enters a left-out diagnostic only if it keeps this many fitted cells
    keep: int = 1

    @property
    def names(self) -> list[str]:
        return [
            "att",
            *[
                f"event:{_num_label(e)}"
                for e in np.sort(np.concatenate([self.pre_events, self.post_events]))
            ],
            *[f"calendar:{_num_label(t)}" for t in self.calendar],
        ]

    @property
    def n_terms(self) -> int:
        return len(self.names)


def _num_label(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def term_spec(
    prob: Problem, *, diagnostics: bool, min_share: float, placebo_periods: int, keep: int
) -> TermSpec:
    """Event times and calendar periods of the treated cells; the pre-treatment window
    of the out-of-sample errors (event times whose treated-cell count is at least
    ``min_share`` of the largest, fect's ``proportion``) and the placebo periods."""
    tc = prob.treated_cells
    post = np.unique(prob.event[tc])
    cal = prob.periods[tc.any(axis=0)]
    pre = np.empty(0)
    placebo = np.empty(0)
    if diagnostics:
        pre_cells = prob.fit_mask & np.isfinite(prob.event)
        ev, cnt = np.unique(prob.event[pre_cells], return_counts=True)
        ev_post, cnt_post = np.unique(prob.event[tc], return_counts=True)
        top = max(cnt.max(initial=0), cnt_post.max(initial=0))
        pre = ev[cnt >= min_share * top]
        placebo = np.sort(ev)[::-1][:placebo_periods] if placebo_periods else np.empty(0)
    return TermSpec(post, cal, pre, placebo, keep)


def _mean_at(values: np.ndarray, cells: np.ndarray) -> float:
    return float(values[cells].mean()) if cells.any() else np.nan


def _held_out(M: np.ndarray, cells: np.ndarray, keep: int) -> np.ndarray:
    """``cells`` of the units that keep at least ``keep`` fitted cells without them."""
    ok = (M.sum(axis=1) - cells.sum(axis=1)) >= keep
    return cells & ok[:, None]


def statistics(
    prob: Problem, model: Model, spec: TermSpec, warm: Any
) -> tuple[np.ndarray, Solution, np.ndarray]:
    """Every term of ``spec`` on ``prob`` (NaN for terms it cannot estimate), the main
    fit, and the placebo estimate (NaN without placebo periods)."""
    M = prob.fit_mask
    sol = model.solve(prob.Y, M, prob.X, prob.ctrl, warm)
    tau = prob.Y - sol.yhat
    tc = prob.treated_cells
    out: dict[float, float] = {}
    for e in spec.post_events:
        out[float(e)] = _mean_at(tau, tc & (prob.event == e))
    for e in spec.pre_events:
        cells = _held_out(M, M & (prob.event == e), spec.keep)
        if cells.any():
            alt = model.solve(prob.Y, M & ~cells, prob.X, prob.ctrl, start_of(sol))
            out[float(e)] = _mean_at(prob.Y - alt.yhat, cells)
        else:
            out[float(e)] = np.nan
    cal = [_mean_at(tau[:, j], tc[:, j]) for j in np.searchsorted(prob.periods, spec.calendar)]
    vec = [_mean_at(tau, tc), *[out[float(e)] for e in sorted(out)], *cal]
    placebo = np.nan
    if spec.placebo_events.size:
        cells = _held_out(M, M & np.isin(prob.event, spec.placebo_events), spec.keep)
        if cells.any():
            alt = model.solve(prob.Y, M & ~cells, prob.X, prob.ctrl, start_of(sol))
            placebo = _mean_at(prob.Y - alt.yhat, cells)
    return np.asarray(vec, float), sol, np.array([placebo])


def _feasible(prob: Problem) -> bool:
    M = prob.fit_mask
    return bool(prob.treated_cells.any() and M.any(axis=0).all() and M.any(axis=1).all())


# ============================================================================ inference
def _chunked(
    func: Callable[[Any], np.ndarray], tasks: list[Any], n_jobs: int, desc: str
) -> np.ndarray:
    """``func`` over ``tasks`` through :func:`replicate`, in chunks so that the data
    ``func`` carries are sent to each worker a few times only. Every task is computed
    from its own inputs (random draws are made before), so the results do not depend on
    the chunking or on ``n_jobs``."""
    workers = effective_n_jobs(n_jobs)
    size = 8 if workers == 1 else max(1, -(-len(tasks) // (4 * workers)))
    chunks = [tasks[s : s + size] for s in range(0, len(tasks), size)]

    def one(chunk: list[Any], _g: np.random.Generator) -> list[np.ndarray]:
        return [func(t) for t in chunk]

    out = replicate(one, chunks, rng=0, n_jobs=n_jobs, desc=desc)
    return np.vstack([row for part in out for row in part])


def _stat_row(prob: Problem, model: Model, spec: TermSpec, warm: Any) -> np.ndarray:
    """The terms and the placebo estimate of one replication, then whether its fit
    converged (1, 0; NaN when the draw cannot be estimated)."""
    if not _feasible(prob):
        return np.full(spec.n_terms + 2, np.nan)
    vec, sol, pl = statistics(prob, model, spec, warm)
    return np.concatenate([vec, pl, [float(sol.converged)]])


def bootstrap_draws(
    prob: Problem,
    model: Model,
    spec: TermSpec,
    fit0: Start,
    n_reps: int,
    rng: Any,
    n_jobs: int,
) -> np.ndarray:
    """The nonparametric bootstrap of fect: units resampled with replacement (draws without a
    treated cell or leaving a period without untreated cells are redrawn)."""
    N = prob.Y.shape[0]

    def draw(_i: int, g: np.random.Generator) -> np.ndarray:
        for _ in range(1000):
            ind = np.sort(g.integers(0, N, size=N))
            if _feasible(prob.take(ind)):
                return ind
        raise EstimationError(
            "The unit bootstrap keeps drawing samples without a treated unit or with a "
            "period lacking untreated units; use se_method='parametric' or 'jackknife'."
        )

    inds = replicate(draw, n_reps, rng=rng, progress=False)
    return _chunked(
        lambda ind: _stat_row(prob.take(ind), model, spec, fit0.rows(ind)),
        inds,
        n_jobs,
        "bootstrap",
    )


def jackknife_draws(
    prob: Problem, model: Model, spec: TermSpec, fit0: Start, n_jobs: int
) -> np.ndarray:
    """Leave one unit out (fect ``vartype = "jackknife"``)."""
    N = prob.Y.shape[0]
    tasks = [np.delete(np.arange(N), i) for i in range(N)]
    return _chunked(
        lambda ind: _stat_row(prob.take(ind), model, spec, fit0.rows(ind)),
        tasks,
        n_jobs,
        "jackknife",
    )


def parametric_draws(
    prob: Problem,
    model: Model,
    spec: TermSpec,
    sol: Solution,
    n_reps: int,
    rng: Any,
    n_jobs: int,
) -> np.ndarray:
    """Xu (2017) Algorithm 2 (see the module docstring)."""
    ctrl = np.flatnonzero(prob.ctrl)
    if ctrl.size < 3:
        raise EstimationError(
            f"The parametric bootstrap needs at least 3 never-treated units to simulate "
            f"prediction errors; the panel has {ctrl.size}. Use se_method='bootstrap' or "
            "'jackknife'."
        )
    rng = as_generator(rng)
    g_pool, g_boot = rng.spawn(2)
    pool_cohorts = np.unique(prob.cohort[~prob.ctrl])
    errors = _prediction_errors(prob, model, sol, pool_cohorts, n_reps, g_pool, n_jobs)
    resid = np.where(prob.fit_mask, prob.Y - sol.yhat, 0.0)[ctrl]

    def draw(_i: int, g: np.random.Generator) -> np.ndarray:
        E = np.zeros_like(prob.Y)
        E[ctrl] = resid[g.integers(0, ctrl.size, size=ctrl.size)]
        for c, errs in errors.items():
            rows = np.flatnonzero(prob.cohort == c)
            E[rows] = errs[g.integers(0, len(errs), size=rows.size)]
        return E

    Es = replicate(draw, n_reps, rng=g_boot, progress=False)
    return _chunked(
        lambda E: _stat_row(prob.with_y(sol.yhat + E), model, spec, start_of(sol)),
        Es,
        n_jobs,
        "parametric bootstrap",
    )


def _prediction_errors(
    prob: Problem,
    model: Model,
    sol: Solution,
    cohorts: np.ndarray,
    n: int,
    rng: np.random.Generator,
    n_jobs: int,
) -> dict[float, np.ndarray]:
    """Step 1 of Xu's Algorithm 2: a never-treated unit, given a treated cohort's
    adoption date, is predicted from the other never-treated units; its errors (residuals
    before the date, prediction errors after) form the pool of that cohort."""
    ctrl = np.flatnonzero(prob.ctrl)
    sub = prob.take(ctrl)
    per = max(int(np.ceil(n / len(cohorts))), 20)
    tasks = [(float(c), int(j)) for c in cohorts for j in rng.integers(0, ctrl.size, size=per)]

    def one(task: tuple[float, int]) -> np.ndarray:
        c, j = task
        fake = sub.D.copy()
        fake[j] = sub.periods >= c
        p = replace(sub, D=fake)
        s = model.solve(p.Y, p.fit_mask, p.X, np.arange(ctrl.size) != j, start_of(sol).rows(ctrl))
        return np.where(p.obs[j], p.Y[j] - s.yhat[j], 0.0)

    errs = _chunked(one, tasks, n_jobs, "prediction errors")
    keys = np.array([c for c, _ in tasks])
    return {float(c): errs[keys == c] for c in cohorts}


def resampling_se(draws: np.ndarray, jackknife: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard errors (per column, over finite draws) and the covariance of the columns
    (draws where every column is finite; None when fewer than 2)."""
    se = np.full(draws.shape[1], np.nan)
    for j in range(draws.shape[1]):
        v = draws[:, j]
        v = v[np.isfinite(v)]
        if v.size > 1:
            n = v.size
            se[j] = (
                np.sqrt((n - 1) / n * np.sum((v - v.mean()) ** 2))
                if jackknife
                else np.std(v, ddof=1)
            )
    full = draws[np.isfinite(draws).all(axis=1)]
    if len(full) < 2:
        return se, None
    cov = np.cov(full, rowvar=False, ddof=1)
    if jackknife:
        n = len(full)
        cov = cov * (n - 1) ** 2 / n
    return se, np.atleast_2d(cov)


# ============================================================================ diagnostics
def f_test(
    est: np.ndarray, draws: np.ndarray, n_bar: int, f_threshold: float, jackknife: bool
) -> dict[str, float | str]:
    """The pre-trend F test of fect and its equivalence version (module docstring)."""
    P = est.size
    out: dict[str, float | str] = {"statistic": np.nan, "p_value": np.nan, "equiv_p": np.nan}
    out.update(df1=float(P), df2=float(n_bar - P), note="")
    full = draws[np.isfinite(draws).all(axis=1)]
    if P == 0 or len(full) <= P:
        out["note"] = "too few pre-treatment periods or resampling draws for the F test"
        return out
    S = np.atleast_2d(np.cov(full, rowvar=False, ddof=1))
    if jackknife:
        S = S * (len(full) - 1) ** 2 / len(full)
    try:
        psi = float(est @ np.linalg.solve(S, est))
    except np.linalg.LinAlgError:
        out["note"] = "the covariance of the pre-treatment errors is singular"
        return out
    scale = (n_bar - P) / ((n_bar - 1) * P) if n_bar > 1 else -1.0
    if scale <= 0:
        out["note"] = (
            f"F test needs more treated units ({n_bar}) than pre-treatment periods tested "
            f"({P}); restrict pretrend_min_share or read the TOST"
        )
        return out
    F = psi * scale
    out.update(
        statistic=F,
        p_value=float(stats.f.sf(F, P, n_bar - P)),
        equiv_p=float(stats.ncf.cdf(F, P, n_bar - P, n_bar * f_threshold)),
    )
    return out


def _tost_p(est: float, se: float, margin: float) -> float:
    if not (np.isfinite(est) and np.isfinite(se) and se > 0 and margin > 0):
        return np.nan
    return equivalence_test(est, se, margin).p_value


def diagnostics_table(
    prob: Problem,
    spec: TermSpec,
    vec: np.ndarray,
    se: np.ndarray,
    draws: np.ndarray,
    *,
    margin: float,
    f_threshold: float,
    jackknife: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Pre-trend table, the test table and the ``info`` entries of the diagnostics."""
    names = spec.names
    pos = {n: i for i, n in enumerate(names)}
    sol_in = prob.fit_mask & np.isfinite(prob.event)
    all_pre = np.unique(prob.event[sol_in])
    rows = []
    for e in all_pre:
        j = pos.get(f"event:{_num_label(e)}")
        est = vec[j] if j is not None else np.nan
        s = se[j] if j is not None else np.nan
        rows.append({"event": e, "estimate": est, "se": s, "p_tost": _tost_p(est, s, margin)})
    pre = pd.DataFrame(rows, columns=["event", "estimate", "se", "p_tost"])
    window = np.sort(spec.pre_events)
    if window.size and window.size == all_pre.size:
        window = window[1:]  # fect drops the earliest when every pre-period is tested
    cols = [pos[f"event:{_num_label(e)}"] for e in window]
    # fect's N_bar: the largest number of treated units observed at a tested event time
    counts = [int((prob.obs & (prob.event == e)).any(axis=1).sum()) for e in window]
    n_bar = max(counts, default=0)
    ft = f_test(vec[cols], draws[:, cols] if draws.size else draws, n_bar, f_threshold, jackknife)
    tost = [_tost_p(vec[c], se[c], margin) for c in cols]
    tost_p = float(np.nanmax(tost)) if np.isfinite(tost).any() else np.nan
    pl, pl_se = vec[-1], se[-1]
    pl_p = float(2 * stats.norm.sf(abs(pl / pl_se))) if np.isfinite(pl_se) and pl_se > 0 else np.nan
    table = pd.DataFrame(
        [
            ["pretrend_f", ft["statistic"], ft["p_value"], ft["equiv_p"], str(ft["note"])],
            ["pretrend_tost", np.nan, np.nan, tost_p, f"max TOST p over {len(cols)} periods"],
            ["placebo", pl, pl_p, _tost_p(pl, pl_se, margin), _placebo_note(spec)],
            ["carryover", np.nan, np.nan, np.nan, CARRYOVER_NOTE],
        ],
        columns=["test", "statistic", "p_value", "equiv_p", "note"],
    )
    info = {
        "pretrend_f": ft["statistic"],
        "pretrend_p": ft["p_value"],
        "pretrend_f_equiv_p": ft["equiv_p"],
        "pretrend_df1": ft["df1"],
        "pretrend_df2": ft["df2"],
        "pretrend_tost_p": tost_p,
        "equivalence_margin": margin,
        "placebo_att": pl,
        "placebo_se": pl_se,
        "placebo_p": pl_p,
        "placebo_equiv_p": _tost_p(pl, pl_se, margin),
        "carryover_test": CARRYOVER_NOTE,
    }
    return pre, table, info


def _placebo_note(spec: TermSpec) -> str:
    if not spec.placebo_events.size:
        return "no placebo periods"
    ev = ", ".join(_num_label(e) for e in np.sort(spec.placebo_events))
    return f"treated units' cells at event times {ev} left out and predicted"


def leave_one_out(
    prob: Problem, units: list[Any], model: Model, fit0: Start, n_jobs: int, cap: int = 200
) -> pd.DataFrame:
    """ATT without each treated unit (refitted, warm-started)."""
    tr = np.flatnonzero(~prob.ctrl)
    if tr.size > cap or tr.size < 2:
        return pd.DataFrame(columns=["unit", "cohort", "att"])
    bare = TermSpec(np.empty(0), np.empty(0), np.empty(0), np.empty(0))
    N = prob.Y.shape[0]
    tasks = [np.delete(np.arange(N), i) for i in tr]
    atts = _chunked(
        lambda ind: _stat_row(prob.take(ind), model, bare, fit0.rows(ind))[:1],
        tasks,
        n_jobs,
        "leave-one-out",
    )[:, 0]
    return pd.DataFrame({"unit": [units[i] for i in tr], "cohort": prob.cohort[tr], "att": atts})


# ============================================================================ assembly
@dataclass(frozen=True)
class Settings:
    """Options shared by the counterfactual estimators (checked by :func:`check_settings`)."""

    se_method: str | None
    n_reps: int
    diagnostics: bool
    pretrend_min_share: float
    placebo_periods: int
    equivalence_margin: float | None
    f_threshold: float
    min_T0: int


@dataclass(frozen=True)
class CvSettings:
    """Cross-validation and iteration options (checked by :func:`check_cv_settings`)."""

    cv_method: str
    cv_rule: str
    k: int
    cv_prop: float
    cv_nobs: int
    tol: float
    max_iter: int

    def eligible(self, prob: Problem) -> np.ndarray:
        """Units whose cells may be held out."""
        return ~prob.ctrl if self.cv_method == "treated_units" else np.ones(len(prob.ctrl), bool)


def check_cv_settings(
    cv_method: Any, cv_rule: Any, k: Any, cv_prop: Any, cv_nobs: Any, tol: Any, max_iter: Any
) -> CvSettings:
    check_choice(cv_method, "cv_method", ["treated_units", "all_units"])
    check_choice(cv_rule, "cv_rule", ["1pct", "min", "1se"])
    cv_prop = check_number(cv_prop, "cv_prop", positive=True)
    if cv_prop >= 1:
        raise SpecError(f"cv_prop must lie in (0, 1); received {cv_prop!r}.")
    return CvSettings(
        cv_method,
        cv_rule,
        check_int(k, "k", minimum=2),
        cv_prop,
        check_int(cv_nobs, "cv_nobs", minimum=1),
        check_number(tol, "tol", positive=True),
        check_int(max_iter, "max_iter", minimum=1),
    )


def check_settings(
    se_method: Any,
    n_reps: Any,
    diagnostics: Any,
    pretrend_min_share: Any,
    placebo_periods: Any,
    equivalence_margin: Any,
    f_threshold: Any,
    min_T0: Any,
) -> Settings:
    if se_method is not None:
        check_choice(se_method, "se_method", ["bootstrap", "jackknife", "parametric"])
    n_reps = check_int(
        n_reps, "n_reps", minimum=2 if se_method in ("bootstrap", "parametric") else 0
    )
    share = check_number(pretrend_min_share, "pretrend_min_share", minimum=0)
    if share > 1:
        raise SpecError(f"pretrend_min_share must lie in [0, 1]; received {pretrend_min_share!r}.")
    return Settings(
        se_method,
        n_reps,
        check_bool(diagnostics, "diagnostics"),
        share,
        check_int(placebo_periods, "placebo_periods", minimum=0),
        check_number(equivalence_margin, "equivalence_margin", positive=True, none=True),
        check_number(f_threshold, "f_threshold", positive=True),
        check_int(min_T0, "min_T0", minimum=1),
    )


def dropped_info(dropped: list[Any]) -> dict[str, Any]:
    """``info`` entries naming the units dropped by the ``min_T0`` rule."""
    return {"n_dropped": len(dropped), "dropped_units": ",".join(str(_v(u)) for u in dropped)}


#: Largest share of replications whose fit may fail to converge before the resampling
#: standard errors are reported as NaN rather than computed from the others.
MAX_NOT_CONVERGED_SHARE = 0.1


def _draws(
    prob: Problem,
    model: Model,
    spec: TermSpec,
    sol: Solution,
    s: Settings,
    rng: Any,
    n_jobs: int,
    stacklevel: int,
) -> tuple[np.ndarray, int]:
    """The resampling draws (terms, then the placebo estimate) and how many replications'
    fits did not converge. Those draws are NaN: a fit stopped at ``max_iter`` while
    drifting gives an arbitrary estimate (one such replication took a bootstrap SE from
    0.66 to 7.47), so they are left out of the standard errors with a warning, and every
    draw is NaN when more than ``MAX_NOT_CONVERGED_SHARE`` of them failed.
    ``stacklevel`` points the warning at the caller of ``fit`` or ``with_inference``."""
    model = model.relaxed()
    if s.se_method == "bootstrap":
        raw = bootstrap_draws(prob, model, spec, start_of(sol), s.n_reps, rng, n_jobs)
    elif s.se_method == "jackknife":
        raw = jackknife_draws(prob, model, spec, start_of(sol), n_jobs)
    elif s.se_method == "parametric":
        raw = parametric_draws(prob, model, spec, sol, s.n_reps, rng, n_jobs)
    else:
        return np.empty((0, spec.n_terms + 1)), 0
    draws, conv = raw[:, :-1].copy(), raw[:, -1]
    failed = conv == 0.0
    n_failed = int(failed.sum())
    if n_failed:
        n_fitted = int(np.isfinite(conv).sum())
        too_many = n_failed > MAX_NOT_CONVERGED_SHARE * n_fitted
        draws[np.ones(len(draws), bool) if too_many else failed] = np.nan
        what = (
            f"more than {MAX_NOT_CONVERGED_SHARE:.0%}: the standard errors are NaN"
            if too_many
            else "they are left out of the standard errors"
        )
        warnings.warn(
            f"{n_failed} of {n_fitted} {s.se_method} replications did not converge within "
            f"max_iter={_max_iter(model)} iterations; {what} "
            "(info['n_reps_not_converged']). Use a smaller r (or a larger lambda_) or "
            "raise max_iter.",
            stacklevel=stacklevel,
        )
    return draws, n_failed


def _max_iter(model: Model) -> Any:
    return getattr(model, "max_iter", "?")


def _warn_not_converged(estimator: str, model: Model, sol: Solution) -> None:
    """Warn that the point fit stopped at ``max_iter``: its estimates are those of an
    unfinished iteration (a drifting IFE fit with too many factors gave an ATT of 33 at
    1000 iterations and 162 at 5000 for a true 0)."""
    change = (
        f" (last relative change {sol.last_change:.3g} against tol={getattr(model, 'tol', '?')})"
        if np.isfinite(sol.last_change)
        else ""
    )
    drift = (
        "; the iterates keep moving without settling: the fit drifts along a direction "
        "the untreated cells do not pin down and the estimates are arbitrary"
        if sol.drifting
        else ""
    )
    advice = (
        "use a smaller r (or cross-validate it with r=None)"
        if estimator == "ife"
        else "use a larger lambda_"
    )
    warnings.warn(
        f"{estimator}: the fit did not converge within max_iter={_max_iter(model)} "
        f"iterations{change}{drift}. Do not use these estimates as they are: {advice}, or "
        "raise max_iter (info['converged'] is False).",
        stacklevel=5,  # estimate, fit, its scale wrapper: the caller of fit
    )


@dataclass(frozen=True)
class FittedCounterfactual:
    """What :meth:`CounterfactualResult.with_inference` resamples without refitting: the
    problem's matrices (not the caller's frame), the fitted model (its ``r`` or ``lambda``
    fixed), the terms, the main fit, the point estimates (with the placebo estimate last),
    the equivalence margin, the settings and a snapshot of the fit's inference generator
    before any draw. All in the units the fit worked in; ``scale`` converts them to the
    reported units (not 1 when the outcome was rescaled, see :mod:`._scale`).
    """

    prob: Problem
    model: Model
    spec: TermSpec
    sol: Solution
    full: np.ndarray
    margin: float
    settings: Settings
    rng: np.random.Generator
    scale: float = 1.0

    def rescaled(self, factor: float) -> FittedCounterfactual:
        """Resampling estimates of this fit are reported times ``factor``."""
        return replace(self, scale=self.scale * factor)


@dataclass(frozen=True)
class InferenceParts:
    """Standard errors (every term and the placebo), covariance, pre-trend and test tables
    and their ``info`` entries, from one set of resampling draws."""

    se: np.ndarray
    vcov: np.ndarray | None
    pretrend: pd.DataFrame
    table: pd.DataFrame
    info: dict[str, Any]


def inference_parts(data: FittedCounterfactual, draws: np.ndarray, jk: bool) -> InferenceParts:
    """Standard errors and the diagnostics that use them (fit and ``with_inference``)."""
    prob, s, full, sol = data.prob, data.settings, data.full, data.sol
    if draws.size:
        se_all, _ = resampling_se(draws, jk)
        _, vcov = resampling_se(draws[:, :-1], jk)
    else:
        se_all, vcov = np.full(full.size, np.nan), None
    pre, table, diag_info = diagnostics_table(
        prob, data.spec, full, se_all, draws, margin=data.margin, f_threshold=s.f_threshold,
        jackknife=jk,
    )  # fmt: skip
    M = prob.fit_mask
    in_sample = [
        _mean_at(prob.Y - sol.yhat, M & (prob.event == e)) for e in pre["event"].to_numpy()
    ]
    pre.insert(1, "n_cells", [int((M & (prob.event == e)).sum()) for e in pre["event"]])
    pre.insert(2, "in_sample", in_sample)
    if not s.diagnostics:
        table = table.iloc[0:0]
        diag_info = {"carryover_test": CARRYOVER_NOTE}
    return InferenceParts(se_all, vcov, pre, table, diag_info)


def estimate(
    *,
    estimator: str,
    outcome: str,
    prob: Problem,
    units: list[Any],
    covariates: list[str],
    model: Model,
    settings: Settings,
    cv: pd.DataFrame,
    rng: Any,
    n_jobs: int,
    alpha: float,
    info: dict[str, Any],
) -> CounterfactualResult:
    """Point estimates, resampling inference and diagnostics for a fitted ``model``."""
    s = settings
    spec = term_spec(
        prob,
        diagnostics=s.diagnostics,
        min_share=s.pretrend_min_share,
        placebo_periods=s.placebo_periods,
        keep=s.min_T0,
    )
    vec, sol, pl = statistics(prob, model, spec, None)
    full = np.concatenate([vec, pl])
    generator = as_generator(rng)
    replay = snapshot(generator)
    if not sol.converged:
        _warn_not_converged(estimator, model, sol)
    draws, n_failed = _draws(prob, model, spec, sol, s, generator, n_jobs, stacklevel=5)
    jk = s.se_method == "jackknife"
    M = prob.fit_mask
    resid = (prob.Y - sol.yhat)[M]
    sigma = float(np.sqrt(np.mean(resid**2)))
    margin = s.equivalence_margin if s.equivalence_margin is not None else 0.36 * sigma
    data = FittedCounterfactual(prob, model, spec, sol, full, margin, s, replay)
    parts = inference_parts(data, draws, jk)
    loo = (
        leave_one_out(prob, units, model.relaxed(), start_of(sol), n_jobs)
        if s.diagnostics
        else pd.DataFrame()
    )
    names = spec.names
    info = {
        **info,
        "se_method": s.se_method,
        "n_reps": int(len(draws)),
        "n_reps_not_converged": n_failed,
        "n_treated": int((~prob.ctrl).sum()),
        "n_never_treated": int(prob.ctrl.sum()),
        "n_treated_cells": int(prob.treated_cells.sum()),
        "covariates": ",".join(covariates),
        "sigma": sigma,
        "converged": bool(sol.converged),
        "n_iter": int(sol.n_iter),
        **parts.info,
    }
    if not loo.empty:
        info.update(loo_att_min=float(loo["att"].min()), loo_att_max=float(loo["att"].max()))
    return CounterfactualResult(
        estimator=estimator,
        outcome=outcome,
        terms=terms_frame(names, vec, parts.se[: len(names)]),
        n_units=int(prob.Y.shape[0]),
        n_obs=int(prob.obs.sum()),
        vcov=parts.vcov,
        info=info,
        alpha=alpha,
        effects=_effects_table(prob, units, sol),
        pretrend=parts.pretrend,
        cv=cv,
        diagnostics=parts.table,
        leave_one_out=loo,
        factors=_factors(prob, sol),
        loadings=_loadings(units, sol),
        unit_effects=pd.Series(sol.rowpart, index=pd.Index(units, name="unit"), name="unit_effect"),
        time_effects=pd.Series(
            sol.colpart, index=pd.Index(prob.periods, name="time"), name="time_effect"
        ),
        beta=pd.Series(sol.beta, index=pd.Index(covariates, name="covariate"), name="beta"),
        replicates=draws,
        fitted=data,
    )


def _effects_table(prob: Problem, units: list[Any], sol: Solution) -> pd.DataFrame:
    i, t = np.nonzero(prob.treated_cells)
    return pd.DataFrame(
        {
            "unit": [units[k] for k in i],
            "time": prob.periods[t],
            "cohort": prob.cohort[i],
            "event": prob.event[i, t],
            "y": prob.Y[i, t],
            "y0_hat": sol.yhat[i, t],
            "tau": prob.Y[i, t] - sol.yhat[i, t],
        }
    )


def _factors(prob: Problem, sol: Solution) -> pd.DataFrame:
    T = prob.Y.shape[1]
    if not sol.basis.size:
        return pd.DataFrame()
    cols = [f"f{j + 1}" for j in range(sol.basis.shape[1])]
    return pd.DataFrame(
        sol.basis * np.sqrt(T), index=pd.Index(prob.periods, name="time"), columns=cols
    )


def _loadings(units: list[Any], sol: Solution) -> pd.DataFrame:
    if not sol.basis.size:
        return pd.DataFrame()
    T = sol.basis.shape[0]
    cols = [f"f{j + 1}" for j in range(sol.basis.shape[1])]
    return pd.DataFrame(sol.loadings / np.sqrt(T), index=pd.Index(units, name="unit"), columns=cols)


# ============================================================================ public API
@scale_equivariant(scaled_options={"equivalence_margin": 1})
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: str | Sequence[str] | None = None,
    r: int | None = None,
    r_max: int = 5,
    factors_from: Literal["not_yet_treated", "never_treated"] = "not_yet_treated",
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
    max_iter: int = 1000,
) -> CounterfactualResult:
    """Interactive fixed effects counterfactual estimator (Xu 2017; fect ``"ife"``).

    Parameters
    ----------
    panel : Panel
        Staggered adoption, balanced or not (missing outcomes are left out of the fit).
    outcome : str
        Outcome column.
    rng, alpha, n_jobs
        Generator of the CV folds and resampling draws; level of the normal intervals;
        workers of the resampling loops (results identical for any value).
    covariates : str or list of str, optional
        Time-varying covariates ``X_it`` of the model (panel covariate columns).
    r, r_max : int
        Number of factors (default: cross-validated over ``0..r_max``, module docstring).
    factors_from : {"not_yet_treated", "never_treated"}
        Fit on every untreated cell (fect IFEct, EM) or Xu's (2017) estimator with
        factors from the never-treated units.
    cv_method, cv_rule, k, cv_prop, cv_nobs
        Cells held out (``"treated_units"``: the treated units' pre-treatment cells, fect
        ``cv.treat``; ``"all_units"``), the rule (``"1pct"``, ``"min"``, ``"1se"``), folds,
        share held out per fold and block length (fect's 10, 0.1, 3).
    se_method : {"bootstrap", "jackknife", "parametric"} or None
        Unit bootstrap, leave-one-unit-out jackknife, or Xu's parametric bootstrap
        (few treated units); None skips standard errors and the tests that need them.
    n_reps : int
        Bootstrap replications (and simulated prediction errors for "parametric").
    diagnostics, pretrend_min_share, placebo_periods, equivalence_margin, f_threshold
        Out-of-sample pre-treatment errors (``event:E``, ``E < 0``, at event times with at
        least ``pretrend_min_share`` of the largest count of treated cells), their F and
        equivalence tests (margin in outcome units, default ``0.36 sigma``; non-centrality
        ``f_threshold`` per treated unit), the placebo test over the last
        ``placebo_periods`` pre-treatment periods, leave-one-out ATTs (module docstring).
    min_T0 : int
        Units with fewer untreated observed periods are dropped with a warning (fect 5).
    tol, max_iter : float, int
        Stopping rule of the iterations (change of the fit relative to the outcome's SD).
        A point fit that stops at ``max_iter`` warns (``info["converged"]`` False; too many
        factors let the fit drift and its ATT explode); resampling replications that do
        not converge are left out of the standard errors with a warning
        (``info["n_reps_not_converged"]``), and the standard errors are NaN when more
        than 10% of them failed.

    Returns
    -------
    CounterfactualResult
        Terms ``att``, ``event:E`` and ``calendar:T``.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="ife")
    covs = covariate_list(panel, covariates)
    r = check_int(r, "r", minimum=0, none=True)
    r_max = check_int(r_max, "r_max", minimum=0)
    check_choice(factors_from, "factors_from", ["not_yet_treated", "never_treated"])
    cvs = check_cv_settings(cv_method, cv_rule, k, cv_prop, cv_nobs, tol, max_iter)
    s = check_settings(
        se_method, n_reps, diagnostics, pretrend_min_share, placebo_periods,
        equivalence_margin, f_threshold, min_T0,
    )  # fmt: skip
    if r is not None and r >= s.min_T0:
        raise SpecError(
            f"r={r} factors need min_T0 > r untreated periods per unit; received min_T0="
            f"{s.min_T0}. Raise min_T0 or lower r."
        )
    prob, units, dropped = build_problem(panel, outcome, covs, min_T0=s.min_T0, estimator="IFE")
    g_cv, g_se = as_generator(rng).spawn(2)
    cv = pd.DataFrame()
    if r is None:
        r, cv = _choose_r(prob, r_max, factors_from, cvs, g_cv)
    info = {"r": r, "factors_from": factors_from, "cv_rule": cv_rule if not cv.empty else "given"}
    return estimate(
        estimator="ife",
        outcome=outcome,
        prob=prob,
        units=units,
        covariates=covs,
        model=IFEModel(r, factors_from, cvs.tol, cvs.max_iter),
        settings=s,
        cv=cv,
        rng=g_se,
        n_jobs=n_jobs,
        alpha=alpha,
        info={**info, **dropped_info(dropped)},
    )


def _choose_r(
    prob: Problem, r_max: int, factors_from: str, cvs: CvSettings, rng: np.random.Generator
) -> tuple[int, pd.DataFrame]:
    """Cross-validated number of factors and the CV table. Candidates stop at ``r_max``,
    at one less than the fewest fitted periods of a unit (fect's ``T0.min - 1``) and, with
    blocks held out, at the number a unit keeps after losing one block, less one."""
    n_fit = prob.fit_mask.sum(axis=1)
    top = int(min(r_max, n_fit.min() - 1, prob.Y.shape[1] - 2))
    rows = cvs.eligible(prob)
    tol, max_iter = cv_limits(cvs.tol, cvs.max_iter)
    if factors_from == "not_yet_treated":
        top = min(top, int(n_fit[rows].min()) - cvs.cv_nobs - 1)
        if top < 0:
            raise EstimationError(
                f"Cross-validation of r cannot hold out a block of cv_nobs={cvs.cv_nobs} "
                f"periods: a unit it may hold out has only {int(n_fit[rows].min())} untreated "
                "periods. Lower cv_nobs, use cv_method='all_units', or give r explicitly."
            )
    rs = list(range(0, max(top, 0) + 1))
    if factors_from == "never_treated":
        means, ses = cv_never_treated(prob, rs, tol)
    else:
        masks = cv_masks(
            prob.fit_mask,
            rows,
            k=cvs.k,
            cv_prop=cvs.cv_prop,
            cv_nobs=cvs.cv_nobs,
            keep=top + 1,
            rng=rng,
        )
        models = [IFEModel(r, factors_from, tol, max_iter) for r in rs]
        means, ses = cv_blocks(prob, models, masks)
    j = choose(means, ses, cvs.cv_rule)
    table = pd.DataFrame(
        {"r": rs, "mspe": means, "mspe_se": ses, "chosen": np.arange(len(rs)) == j}
    )
    return rs[j], table
