"""Synthetic difference-in-differences, with synthetic control and DiD as special cases.

Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), "Synthetic Difference-in-
Differences", *American Economic Review* 111(12), 4088-4118.

- ``method="sdid"`` -- Algorithm 1: unit weights omega (eq. 2.2-2.3) with an intercept and
  ridge penalty ``zeta = (N_tr T_post)^{1/4} sigma_hat`` (eq. 2.3, sigma_hat the standard
  deviation of first differences of the control units' pre-period outcomes), time weights
  lambda (eq. 2.4-2.5) with an intercept and ``zeta = 1e-6 sigma_hat``; the estimate is the
  weighted double difference (eq. 1.1/2.1).
- ``method="sc"`` -- the synthetic control special case exactly as R ``synthdid``'s
  ``sc_estimate``: no intercept, ``zeta = 1e-6 sigma_hat``, zero time weights.
- ``method="did"`` -- uniform unit and time weights.

Weights are computed by the Frank-Wolfe solver of R ``synthdid`` with its sparsification
restart (see :mod:`zoneimpact.estimators._simplex`), so the numbers agree with R
``synthdid`` (Prop 99: -15.604 / -19.620 / -27.349).

Standard errors (Section 5): ``"placebo"`` (Algorithm 4; the only option with one treated
unit), ``"bootstrap"`` (Algorithm 2, weights re-estimated in each draw, warm-started), and
``"jackknife"`` (Algorithm 3, weights held fixed). As in R ``synthdid``, the tuning
constants (zeta, min_decrease) are those of the original sample in every replication.

Staggered adoption: one SDID per adoption cohort, each with that cohort's treated units
and the never-treated units over all periods, aggregated with weights proportional to the
number of treated unit-periods (the cohort-size weights of Clarke, Pailanir, Athey & Imbens
2023, Stata ``sdid``). Standard errors for the aggregate re-run the per-cohort estimates in
each replication (placebo: never-treated units given the treated units' adoption
periods; bootstrap: units resampled; jackknife: units left out, weights fixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..panel import Panel
from ..parallel import as_generator, replicate, snapshot
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_number,
    terms_frame,
)
from ._sc_common import check_pool_size, never_treated, outcome_matrix, require_donors
from ._scale import scale_equivariant
from ._simplex import fw_weights, sparsify, sum_normalize

Method = Literal["sdid", "sc", "did"]


@dataclass(frozen=True)
class SyntheticDiDResult(EstimationResult):
    """SDID / SC / DID result (Arkhangelsky et al. 2021).

    Attributes
    ----------
    unit_weights : Series
        omega by control unit (for several cohorts: columns by cohort in a DataFrame).
    time_weights : Series
        lambda by pre-period (several cohorts: DataFrame).
    placebo_estimates : ndarray
        Replication estimates behind the standard error (placebo, bootstrap draws, or
        jackknife leave-one-out values).
    cohort_estimates : DataFrame
        One row per cohort: estimate, n_treated, n_post, weight.
    covariate_coefs : Series or None
        With ``covariates``: the coefficients removed from the outcome before SDID.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "placebo_estimates": 1,
        "cohort_estimates": {"estimate": 1},
        "covariate_coefs": 1,
        "fitted": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {"noise_level": 1, "zeta_omega": 1, "zeta_lambda": 1}

    unit_weights: pd.Series | pd.DataFrame | None = None
    time_weights: pd.Series | pd.DataFrame | None = None
    placebo_estimates: np.ndarray = field(default_factory=lambda: np.empty(0))
    cohort_estimates: pd.DataFrame | None = None
    covariate_coefs: pd.Series | None = None
    fitted: SdidData | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: Literal["placebo", "bootstrap", "jackknife"],
        *,
        n_reps: int | None = None,
        rng: np.random.Generator | int | None = None,
        n_jobs: int = 1,
    ) -> SyntheticDiDResult:
        """The same estimate with another standard error, without refitting (R
        ``synthdid``'s ``vcov(estimate, method=)``; Arkhangelsky et al. 2021, Section 5).

        Parameters
        ----------
        method : {"placebo", "bootstrap", "jackknife"}
            Algorithm 4, 2 or 3. Bootstrap and jackknife are undefined with one treated
            unit, placebo needs more controls than treated units, and the jackknife fails
            when one control carries all the unit weight (where R returns NA): each is an
            :class:`~zoneimpact.errors.EstimationError`.
        n_reps : int, optional
            Placebo / bootstrap replications (default: the fit's ``n_reps``).
        rng : numpy.random.Generator or int, optional
            The generator or seed as ``fit`` would take it: with the seed given to
            ``fit(se_method=method)`` the standard error is that fit's. Default: replays
            the fit's own generator.
        n_jobs : int
            Workers (the result does not depend on it).

        Returns
        -------
        SyntheticDiDResult
            A new result: the ``att`` standard error, ``placebo_estimates`` and
            ``info["se_method"]``/``info["n_reps"]`` replaced.
        """
        data = self.fitted
        if data is None:
            raise EstimationError(
                "This result keeps no fitted data (it was not made by synthetic_did.fit); "
                "refit with se_method= to change its inference."
            )
        check_choice(method, "method", _SE_METHODS)
        n_reps = data.n_reps if n_reps is None else n_reps
        n_reps = check_int(n_reps, "n_reps", minimum=2 if method != "jackknife" else 0)
        if check_int(n_jobs, "n_jobs") == 0:
            raise SpecError("n_jobs must be a whole number >= 1, or -1 for every core; received 0.")
        gen = snapshot(data.rng) if rng is None else as_generator(rng)
        draws, se = variance(data, method, n_reps, gen, n_jobs)
        draws = draws * data.scale
        terms = self.terms.copy()
        # a size: |scale| (a result rescaled by c < 0 keeps a positive SE)
        terms.loc[terms["term"] == "att", "se"] = se * abs(data.scale)
        info = {**self.info, "se_method": method, "n_reps": len(draws)}
        return replace(self, terms=terms, placebo_estimates=draws, info=info)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        if self.covariate_coefs is not None:
            out["covariate_coefficients"] = self.covariate_coefs.reset_index()
        if self.unit_weights is not None:
            uw = self.unit_weights
            out["unit_weights"] = (
                uw.rename("weight").rename_axis("unit").reset_index()
                if isinstance(uw, pd.Series)
                else uw.rename_axis("unit").reset_index()
            )
        if self.time_weights is not None:
            tw = self.time_weights
            out["time_weights"] = (
                tw.rename("weight").rename_axis("time").reset_index()
                if isinstance(tw, pd.Series)
                else tw.rename_axis("time").reset_index()
            )
        if len(self.placebo_estimates):
            out["replication_estimates"] = pd.DataFrame(
                {
                    "replication": np.arange(len(self.placebo_estimates)),
                    "estimate": self.placebo_estimates,
                }
            )
        if self.cohort_estimates is not None:
            out["cohort_estimates"] = self.cohort_estimates.reset_index()
        return out


# ---------------------------------------------------------------------------- core (matrices)
@dataclass(frozen=True)
class SdidOptions:
    """Tuning of one SDID problem, fixed across resampling replications (R ``opts``)."""

    zeta_omega: float
    zeta_lambda: float
    omega_intercept: bool
    lambda_intercept: bool
    update_omega: bool
    update_lambda: bool
    min_decrease: float
    max_iter: int = 10_000
    max_iter_pre_sparsify: int = 100
    sparsify: bool = True


@dataclass(frozen=True)
class _Block:
    """One adoption cohort's problem: outcome block (controls first, pre-periods first),
    its tuning and the fitted weights (the start of every replication)."""

    g: float
    Y: np.ndarray
    T0: int
    opts: SdidOptions
    omega: np.ndarray
    lam: np.ndarray


@dataclass(frozen=True)
class SdidData:
    """What another variance needs, kept on the result so that
    :meth:`SyntheticDiDResult.with_inference` does not refit (R ``synthdid`` keeps the
    same on its estimate, ``attr(estimate, "setup")``, ``"opts"`` and ``"weights"``).

    ``Y`` is the ``N x T`` outcome matrix of the fit (controls first, in canonical
    order) in the units the fit worked in; ``scale`` converts replication estimates to
    the reported units (it is not 1 when the outcome was rescaled, see
    :mod:`zoneimpact.estimators._scale`). One cohort: ``block``; several: ``fixed`` maps a
    cohort to its (control rows, omega, lambda). ``rng`` is a snapshot of the fit's
    generator before any draw, and ``n_reps`` the fit's replications.
    """

    Y: np.ndarray
    n_controls: int
    donors: list[Any]
    cohort_of_row: np.ndarray
    periods: np.ndarray
    method: Method
    overrides: dict[str, Any]
    n_reps: int
    rng: np.random.Generator
    block: _Block | None = None
    fixed: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    scale: float = 1.0

    def rescaled(self, factor: float) -> SdidData:
        """Replication estimates of this data are reported times ``factor``."""
        return replace(self, scale=self.scale * factor)


def noise_level(Y: np.ndarray, N0: int, T0: int) -> float:
    """sigma_hat of eq. (2.3): sd (n-1) of first differences of control pre-period outcomes."""
    if T0 < 2:
        return 0.0
    d = np.diff(Y[:N0, :T0], axis=1).ravel()
    return float(np.std(d, ddof=1)) if d.size > 1 else 0.0


def collapsed_form(Y: np.ndarray, N0: int, T0: int) -> np.ndarray:
    """The ``(N0+1) x (T0+1)`` matrix of Section 2.2: treated rows and post columns averaged.

    ``Y`` may carry leading batch dimensions.
    """
    top = np.concatenate([Y[..., :N0, :T0], Y[..., :N0, T0:].mean(axis=-1, keepdims=True)], axis=-1)
    bot_pre = Y[..., N0:, :T0].mean(axis=-2)
    bot_post = Y[..., N0:, T0:].mean(axis=(-2, -1))[..., None]
    bottom = np.concatenate([bot_pre, bot_post], axis=-1)[..., None, :]
    return np.concatenate([top, bottom], axis=-2)


def default_options(
    Y: np.ndarray, N0: int, T0: int, method: Method, **overrides: Any
) -> SdidOptions:
    """R ``synthdid_estimate`` / ``sc_estimate`` / ``did_estimate`` defaults."""
    N1, T1 = Y.shape[0] - N0, Y.shape[1] - T0
    sigma = noise_level(Y, N0, T0)
    if method == "sdid":
        eta_omega = (N1 * T1) ** 0.25
        base = dict(
            zeta_omega=eta_omega * sigma,
            zeta_lambda=1e-6 * sigma,
            omega_intercept=True,
            lambda_intercept=True,
            update_omega=True,
            update_lambda=True,
        )
    elif method == "sc":
        base = dict(
            zeta_omega=1e-6 * sigma,
            zeta_lambda=1e-6 * sigma,
            omega_intercept=False,
            lambda_intercept=True,
            update_omega=True,
            update_lambda=False,
        )
    else:
        base = dict(
            zeta_omega=0.0,
            zeta_lambda=0.0,
            omega_intercept=False,
            lambda_intercept=False,
            update_omega=False,
            update_lambda=False,
        )
    base["min_decrease"] = 1e-5 * sigma
    base.update({k: v for k, v in overrides.items() if v is not None})
    return SdidOptions(**base)


def initial_weights(
    method: Method, N0: int, T0: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Fixed (or starting) weights of each special case: SC has lambda = 0, DID is uniform."""
    if method == "sc":
        return None, np.zeros(T0)
    if method == "did":
        return np.full(N0, 1.0 / N0), np.full(T0, 1.0 / T0)
    return None, None


def _fw_sparsified(A: np.ndarray, zeta: float, intercept: bool, init: Any, opts: Any) -> np.ndarray:
    """Frank-Wolfe weights as R synthdid fits them: a first pass, then (with sparsify) a
    second pass started from the weights with small entries zeroed."""
    pre_iter = opts.max_iter_pre_sparsify if opts.sparsify else opts.max_iter
    w, _ = fw_weights(
        A, zeta, intercept=intercept, init=init, min_decrease=opts.min_decrease, max_iter=pre_iter
    )
    if opts.sparsify:
        w, _ = fw_weights(
            A,
            zeta,
            intercept=intercept,
            init=_sparsify_rows(w),
            min_decrease=opts.min_decrease,
            max_iter=opts.max_iter,
        )
    return w


def solve_weights(
    Y: np.ndarray,
    N0: int,
    T0: int,
    opts: SdidOptions,
    omega: np.ndarray | None = None,
    lam: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit and time weights (Algorithm 1, steps 1-2), as R synthdid: Frank-Wolfe from
    ``omega``/``lam`` (uniform when None) for 100 iterations, sparsify, then to convergence.

    ``Y`` is ``N x T`` or a batch ``B x N x T`` (weights then ``B x N0`` and ``B x T0``).
    """
    Yc = None
    if opts.update_lambda:
        Yc = collapsed_form(Y, N0, T0)
        A = Yc[..., :N0, :]
        lam = _fw_sparsified(A, opts.zeta_lambda, opts.lambda_intercept, lam, opts)
    if opts.update_omega:
        Yc = collapsed_form(Y, N0, T0) if Yc is None else Yc
        Bm = np.swapaxes(Yc[..., :, :T0], -1, -2)
        omega = _fw_sparsified(Bm, opts.zeta_omega, opts.omega_intercept, omega, opts)
    if omega is None or lam is None:
        raise EstimationError("Unit or time weights are neither given nor estimated.")
    return np.asarray(omega, float), np.asarray(lam, float)


def _sparsify_rows(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, float)
    if w.ndim == 1:
        return sparsify(w)
    return np.vstack([sparsify(r) for r in w])


def did_value(Y: np.ndarray, N0: int, T0: int, omega: np.ndarray, lam: np.ndarray) -> Any:
    """The weighted double difference, eq. (1.1): ``[-omega, 1/N1]' Y [-lambda, 1/T1]``
    (batched over a leading dimension when ``Y`` is 3-d).
    """
    N1, T1 = Y.shape[-2] - N0, Y.shape[-1] - T0
    omega = np.asarray(omega, float)
    lam = np.asarray(lam, float)
    row = np.concatenate([-omega, np.broadcast_to(1.0 / N1, omega.shape[:-1] + (N1,))], axis=-1)
    col = np.concatenate([-lam, np.broadcast_to(1.0 / T1, lam.shape[:-1] + (T1,))], axis=-1)
    if Y.ndim == 2 and row.ndim == 1 and col.ndim == 1:
        return float(row @ Y @ col)
    return np.einsum("...n,...nt,...t->...", row, Y, col)


def estimate_block(
    Y: np.ndarray,
    N0: int,
    T0: int,
    opts: SdidOptions,
    omega: np.ndarray | None = None,
    lam: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Estimate on a block ``Y`` (controls first, pre-periods first; optionally batched)."""
    omega, lam = solve_weights(Y, N0, T0, opts, omega, lam)
    if Y.ndim == 3:
        omega = np.broadcast_to(omega, (Y.shape[0], N0))
        lam = np.broadcast_to(lam, (Y.shape[0], T0))
    return did_value(Y, N0, T0, omega, lam), omega, lam


def _batched(
    Ys: np.ndarray,
    n0: int,
    T0: int,
    opts: SdidOptions,
    omegas: np.ndarray,
    lam: np.ndarray,
    n_jobs: int,
    desc: str,
    chunk: int = 256,
) -> np.ndarray:
    """Estimates for a stack of same-shaped problems, in fixed-size chunks through
    :func:`~zoneimpact.parallel.replicate` (chunking does not depend on ``n_jobs``).
    """
    # a problem's Gram matrix is (controls + 1)^2 doubles: with many controls fewer
    # problems share a chunk (each is solved on its own, so the estimates do not change)
    m1 = n0 + 1
    chunk = int(max(1, min(chunk, _CHUNK_BYTES // (8 * m1 * m1))))
    starts = list(range(0, len(Ys), chunk))

    def one(s: int, _g: np.random.Generator) -> np.ndarray:
        sl = slice(s, s + chunk)
        lam0 = np.broadcast_to(lam, (len(Ys[sl]), T0)) if lam.ndim == 1 else lam[sl]
        est, _, _ = estimate_block(Ys[sl], n0, T0, opts, omegas[sl], lam0)
        return np.atleast_1d(est)

    out = replicate(one, starts, rng=0, n_jobs=n_jobs, desc=desc)
    return np.concatenate(out) if out else np.empty(0)


#: Memory of the Gram matrices of one chunk of placebo or bootstrap problems (the solver
#: briefly holds twice this): 64 MB keeps 1,000-donor problems at 8 per chunk, enough to
#: amortise the batched loop while the peak stays near that of a single fit.
_CHUNK_BYTES = 2**26


# ---------------------------------------------------------------------------- inference (one block)
def _placebo_draws(Y, N0, T0, opts, omega, lam, n_reps, rng, n_jobs) -> np.ndarray:
    """Algorithm 4: permute the controls, the last N1 become placebo treated; weights
    re-estimated from the original ones (restricted, renormalised) as starting values.
    """
    N1 = Y.shape[0] - N0
    if N0 <= N1:
        raise EstimationError(
            f"Placebo standard errors need more control units than treated units "
            f"(controls {N0}, treated {N1}); use se_method='bootstrap' or 'jackknife'."
        )
    n0 = N0 - N1
    # One child generator per replication draws its permutation (reproducible for any
    # n_jobs); the estimates are then computed in batches.
    perms = np.vstack(replicate(lambda _i, g: g.permutation(N0), n_reps, rng=rng, progress=False))
    # A replication's estimate depends on which controls become placebo treated, not on
    # the order of the others (eqs. 2.2-2.3 are symmetric in the controls): with few
    # controls many draws repeat a set (Prop 99: about 38 distinct of 200), so each set is
    # solved once, in its first draw's order, and shared by the draws that repeat it.
    sets = [tuple(np.sort(p[n0:]).tolist()) for p in perms]
    first: dict[tuple[int, ...], int] = {}
    for i, key in enumerate(sets):
        first.setdefault(key, i)
    solved = np.fromiter(first.values(), dtype=np.intp, count=len(first))
    Ys = Y[:N0][perms[solved]]
    omegas = np.vstack([sum_normalize(omega[p[:n0]]) for p in perms[solved]])
    est = _batched(Ys, n0, T0, opts, omegas, lam, n_jobs, "SDID placebo")
    slot = {key: j for j, key in enumerate(first)}
    return est[[slot[key] for key in sets]]


def _bootstrap_draws(Y, N0, T0, opts, omega, lam, n_reps, rng, n_jobs) -> np.ndarray:
    """Algorithm 2: resample units with replacement (draws with no treated or no control
    unit are redrawn), re-estimate the weights starting from the original ones.
    """
    N = Y.shape[0]
    if N0 == N - 1:
        raise EstimationError(
            "Bootstrap standard errors are undefined with a single treated unit "
            "(Arkhangelsky et al. 2021, Section 5); use se_method='placebo'."
        )

    def draw(_i: int, g: np.random.Generator) -> np.ndarray:
        while True:
            ind = np.sort(g.integers(0, N, size=N))
            n0 = int((ind < N0).sum())
            if 0 < n0 < N:
                return ind

    inds = replicate(draw, n_reps, rng=rng, progress=False)
    n0s = np.array([int((ind < N0).sum()) for ind in inds])
    out = np.empty(n_reps)
    # Same-shaped problems (same number of controls) are solved as one batch.
    for n0 in np.unique(n0s):
        which = np.flatnonzero(n0s == n0)
        Ys = np.stack([Y[inds[k]] for k in which])
        omegas = np.vstack([sum_normalize(omega[inds[k][:n0]]) for k in which])
        out[which] = _batched(Ys, int(n0), T0, opts, omegas, lam, n_jobs, "SDID bootstrap")
    return out


def _jackknife_values(Y, N0, T0, opts, omega, lam) -> np.ndarray:
    """Algorithm 3: leave one unit out, weights fixed (omega renormalised)."""
    N = Y.shape[0]
    if N0 == N - 1:
        raise EstimationError(
            "The jackknife standard error is undefined with a single treated unit "
            "(Arkhangelsky et al. 2021, Section 5); use se_method='placebo'."
        )
    if int((omega != 0).sum()) == 1:
        raise EstimationError(
            "The jackknife standard error is undefined when one control carries all the "
            "unit weight (R synthdid returns NA); use se_method='placebo' or 'bootstrap'."
        )
    vals = np.empty(N)
    for i in range(N):
        ind = np.delete(np.arange(N), i)
        n0 = int((ind < N0).sum())
        om = omega[ind[:n0]]
        om = om / om.sum()
        vals[i] = did_value(Y[ind], n0, T0, om, lam)
    return vals


def jackknife_se(vals: np.ndarray) -> float:
    n = len(vals)
    return float(np.sqrt((n - 1) / n * (n - 1) * np.var(vals, ddof=1)))


def resampling_se(draws: np.ndarray) -> float:
    """``sqrt((B-1)/B) sd(draws)`` (R synthdid)."""
    B = len(draws)
    return float(np.sqrt((B - 1) / B) * np.std(draws, ddof=1)) if B > 1 else np.nan


# ---------------------------------------------------------------------------- staggered
@dataclass(frozen=True)
class _Cohort:
    g: float
    treated: np.ndarray  # row indices into the full matrix
    T0: int


def _cohort_blocks(cohort_of_row: np.ndarray, periods: np.ndarray) -> list[_Cohort]:
    out = []
    for g in np.unique(cohort_of_row[np.isfinite(cohort_of_row)]):
        T0 = int((periods < g).sum())
        out.append(_Cohort(float(g), np.flatnonzero(cohort_of_row == g), T0))
    return out


def _staggered_point(
    Y: np.ndarray,
    cohort_of_row: np.ndarray,
    periods: np.ndarray,
    method: Method,
    overrides: dict[str, Any],
    fixed: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> tuple[float, list[dict[str, Any]]]:
    """Per-cohort SDID and the treated-unit-period weighted average. ``fixed`` maps a
    cohort to (control row ids, omega, lambda) to evaluate with fixed weights.
    """
    ctrl = np.flatnonzero(np.isinf(cohort_of_row))
    rows = []
    for c in _cohort_blocks(cohort_of_row, periods):
        if fixed is not None:
            ids, om_full, lam = fixed[c.g]
            keep = np.isin(ids, ctrl)
            om = om_full[keep]
            if om.sum() == 0:
                continue
            om = om / om.sum()
            ctrl_rows = ids[keep]
            Yb = np.vstack([Y[ctrl_rows], Y[c.treated]])
            est = did_value(Yb, len(ctrl_rows), c.T0, om, lam)
        else:
            Yb = np.vstack([Y[ctrl], Y[c.treated]])
            N0 = len(ctrl)
            opts = default_options(Yb, N0, c.T0, method, **overrides)
            om0, lam0 = initial_weights(method, N0, c.T0)
            est, om, lam = estimate_block(Yb, N0, c.T0, opts, om0, lam0)
            ctrl_rows = ctrl
        n_post = len(periods) - c.T0
        rows.append(
            dict(
                cohort=c.g,
                estimate=est,
                n_treated=len(c.treated),
                n_post=n_post,
                cells=len(c.treated) * n_post,
                omega=om,
                lam=lam,
                controls=ctrl_rows,
                T0=c.T0,
            )
        )
    if not rows:
        return np.nan, rows
    cells = np.array([r["cells"] for r in rows], float)
    est = np.array([r["estimate"] for r in rows])
    return float(cells @ est / cells.sum()), rows


def _staggered_placebo(data: SdidData, n_reps: int, rng: Any, n_jobs: int) -> np.ndarray:
    """Algorithm 4 with several cohorts (Stata ``sdid``): among the controls only, a random
    subset receives the treated units' adoption periods and the cohort estimates are
    re-run and aggregated."""
    N0 = data.n_controls
    n_tr = data.Y.shape[0] - N0
    if N0 <= n_tr:
        raise EstimationError(
            f"Placebo standard errors need more never-treated units ({N0}) than treated "
            f"units ({n_tr}); use se_method='bootstrap' or 'jackknife'."
        )
    tr_coh = data.cohort_of_row[N0:]

    def one_placebo(_i: int, g: np.random.Generator) -> float:
        perm = g.permutation(N0)
        fake = np.full(N0, np.inf)
        fake[perm[:n_tr]] = tr_coh
        return _staggered_point(data.Y[:N0], fake, data.periods, data.method, data.overrides)[0]

    return np.asarray(
        replicate(one_placebo, n_reps, rng=rng, n_jobs=n_jobs, desc="SDID placebo"), float
    )


def _staggered_bootstrap(data: SdidData, n_reps: int, rng: Any, n_jobs: int) -> np.ndarray:
    """Algorithm 2 with several cohorts: units resampled (draws without a treated or a
    control unit redrawn), the cohort estimates re-run and aggregated."""
    Y, cohort_of_row = data.Y, data.cohort_of_row
    N = Y.shape[0]

    def one_boot(_i: int, g: np.random.Generator) -> float:
        while True:
            ind = np.sort(g.integers(0, N, size=N))
            cr = cohort_of_row[ind]
            if np.isinf(cr).any() and np.isfinite(cr).any():
                break
        return _staggered_point(Y[ind], cr, data.periods, data.method, data.overrides)[0]

    return np.asarray(
        replicate(one_boot, n_reps, rng=rng, n_jobs=n_jobs, desc="SDID bootstrap"), float
    )


def _staggered_jackknife(data: SdidData) -> np.ndarray:
    """Algorithm 3 with several cohorts: each unit left out, every cohort's weights held
    at their fitted values (omega renormalised over the remaining controls)."""
    Y, cohort_of_row = data.Y, data.cohort_of_row
    N = Y.shape[0]
    vals = []
    for i in range(N):
        ind = np.delete(np.arange(N), i)
        v, _ = _staggered_point(
            Y[ind],
            cohort_of_row[ind],
            data.periods,
            data.method,
            data.overrides,
            fixed={
                k: (np.searchsorted(ind, ids[ids != i]), om[ids != i], lam)
                for k, (ids, om, lam) in data.fixed.items()
            },
        )
        vals.append(v)
    return np.asarray(vals, float)


def variance(
    data: SdidData,
    se_method: str | None,
    n_reps: int,
    rng: np.random.Generator,
    n_jobs: int = 1,
) -> tuple[np.ndarray, float]:
    """Replication estimates and the standard error of Section 5 (R ``synthdid``'s
    ``vcov(method=)``): ``"placebo"`` (Algorithm 4), ``"bootstrap"`` (Algorithm 2) or
    ``"jackknife"`` (Algorithm 3), on the fitted data (one cohort or several). In the
    fitted data's units (before any rescaling of the outcome)."""
    if se_method is None:
        return np.empty(0), np.nan
    b = data.block
    if se_method == "jackknife":
        draws = (
            _jackknife_values(b.Y, data.n_controls, b.T0, b.opts, b.omega, b.lam)
            if b is not None
            else _staggered_jackknife(data)
        )
        return draws, jackknife_se(draws)
    if b is not None:
        draw = _placebo_draws if se_method == "placebo" else _bootstrap_draws
        draws = draw(b.Y, data.n_controls, b.T0, b.opts, b.omega, b.lam, n_reps, rng, n_jobs)
    else:
        many = _staggered_placebo if se_method == "placebo" else _staggered_bootstrap
        draws = many(data, n_reps, rng, n_jobs)
    return draws, resampling_se(draws)


# ---------------------------------------------------------------------------- public API
_SE_METHODS = ("placebo", "bootstrap", "jackknife")


def _checked_options(
    method: Any,
    se_method: Any,
    n_reps: Any,
    zeta_omega: Any,
    zeta_lambda: Any,
    min_decrease: Any,
    max_iter: Any,
    sparsify: Any,
) -> tuple[int, dict[str, Any]]:
    """``n_reps`` and the tuning overrides, each option checked once (SpecError)."""
    if not isinstance(method, str) or method not in ("sdid", "sc", "did"):
        raise SpecError(f"method must be 'sdid', 'sc' or 'did'; received {method!r}.")
    if se_method is not None and (not isinstance(se_method, str) or se_method not in _SE_METHODS):
        raise SpecError(
            f"se_method must be 'placebo', 'bootstrap', 'jackknife' or None; received {se_method!r}."
        )
    resampled = se_method in ("placebo", "bootstrap")
    n_reps = check_int(n_reps, "n_reps", minimum=2 if resampled else 0)
    overrides = dict(
        zeta_omega=check_number(zeta_omega, "zeta_omega", minimum=0, none=True),
        zeta_lambda=check_number(zeta_lambda, "zeta_lambda", minimum=0, none=True),
        min_decrease=check_number(min_decrease, "min_decrease", minimum=0, none=True),
        max_iter=check_int(max_iter, "max_iter", minimum=1),
        sparsify=check_bool(sparsify, "sparsify"),
    )
    return n_reps, overrides


def _outcome_rows(
    panel: Panel, outcome: str, method: str
) -> tuple[list[Any], list[Any], np.ndarray, np.ndarray]:
    """Controls, treated units, the ``N x T`` outcome matrix (controls first) and each
    row's adoption period (``inf`` for controls)."""
    coh = panel.unit_cohort
    treated_units = coh.index[np.isfinite(coh.to_numpy())].tolist()
    if not treated_units:
        raise EstimationError("No treated unit in the panel: every unit is never treated.")
    donors = never_treated(panel)
    require_donors(donors)
    check_pool_size(donors, "Synthetic DiD")
    # placebo permutations and bootstrap draws index units by position: order them by
    # their data so that relabelling the units cannot change the draws (one sort: it
    # puts the treated cohorts before the never-treated, each group in its own order)
    ordered = panel.canonical_order(donors + treated_units, outcome)
    n_tr = len(treated_units)
    treated_units, donors = ordered[:n_tr], ordered[n_tr:]
    periods = np.asarray(panel.periods)
    W = outcome_matrix(
        panel, outcome, donors + treated_units, periods, estimator=f"{method.upper()} ({method})"
    )
    cohort_of_row = np.concatenate(
        [np.full(len(donors), np.inf), coh.loc[treated_units].to_numpy(float)]
    )
    return donors, treated_units, W.to_numpy(float), cohort_of_row


def _fit_one_cohort(
    Y: np.ndarray, N0: int, c: _Cohort, periods: np.ndarray, method: Method, overrides: dict
) -> tuple[float, _Block]:
    """Algorithm 1 on a single adoption cohort: pre-periods first, then the weights and
    the weighted double difference (eq. 1.1)."""
    cols = np.concatenate([np.flatnonzero(periods < c.g), np.flatnonzero(periods >= c.g)])
    Yb = Y[:, cols]
    opts = default_options(Yb, N0, c.T0, method, **overrides)
    om0, lam0 = initial_weights(method, N0, c.T0)
    est, omega, lam = estimate_block(Yb, N0, c.T0, opts, om0, lam0)
    return est, _Block(c.g, Yb, c.T0, opts, omega, lam)


def _single_result(
    common: dict[str, Any], data: SdidData, b: _Block, est: float, se: float, draws: np.ndarray
) -> SyntheticDiDResult:
    """The result of a one-cohort fit: ``att``, omega by control, lambda by pre-period."""
    g = b.g
    common["info"].update(
        zeta_omega=b.opts.zeta_omega,
        zeta_lambda=b.opts.zeta_lambda,
        noise_level=noise_level(b.Y, data.n_controls, b.T0),
        n_reps=len(draws),
        treatment_start=int(g),
    )
    return SyntheticDiDResult(
        **common,
        terms=terms_frame(["att"], [est], [se]),
        unit_weights=_by_unit(
            pd.Series(b.omega, index=pd.Index(data.donors, name="unit"), name="weight")
        ),
        time_weights=pd.Series(
            b.lam, index=pd.Index(data.periods[data.periods < g], name="time"), name="weight"
        ),
        placebo_estimates=draws,
    )


def _staggered_result(
    common: dict[str, Any],
    data: SdidData,
    est: float,
    rows: list[dict[str, Any]],
    se: float,
    draws: np.ndarray,
) -> SyntheticDiDResult:
    """The result of a several-cohort fit: ``att`` (cohort-size weighted) and ``cohort:G``,
    with unit and time weights by cohort."""
    periods = data.periods
    cells = np.array([r["cells"] for r in rows], float)
    ce = pd.DataFrame(
        {
            "estimate": [r["estimate"] for r in rows],
            "n_treated": [r["n_treated"] for r in rows],
            "n_post": [r["n_post"] for r in rows],
            "weight": cells / cells.sum(),
        },
        index=pd.Index([r["cohort"] for r in rows], name="cohort"),
    )
    terms = terms_frame(
        ["att", *[f"cohort:{int(g)}" for g in ce.index]],
        [est, *ce["estimate"]],
        [se, *[np.nan] * len(ce)],
    )
    uw = _by_unit(
        pd.DataFrame(
            {f"cohort:{int(r['cohort'])}": r["omega"] for r in rows},
            index=pd.Index(data.donors, name="unit"),
        )
    )
    tw = pd.DataFrame(index=pd.Index(periods, name="time"))
    for r in rows:
        lam_full = np.full(len(periods), np.nan)
        lam_full[: r["T0"]] = r["lam"]
        tw[f"cohort:{int(r['cohort'])}"] = lam_full
    common["info"].update(n_reps=len(draws))
    return SyntheticDiDResult(
        **common,
        terms=terms,
        unit_weights=uw,
        time_weights=tw,
        placebo_estimates=draws,
        cohort_estimates=ce,
    )


@scale_equivariant(scaled_options={"zeta_omega": 1, "zeta_lambda": 1, "min_decrease": 1})
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    method: Method = "sdid",
    se_method: Literal["placebo", "bootstrap", "jackknife"] | None = "placebo",
    n_reps: int = 200,
    zeta_omega: float | None = None,
    zeta_lambda: float | None = None,
    min_decrease: float | None = None,
    max_iter: int = 10_000,
    sparsify: bool = True,
    covariates: Sequence[str] | str | None = None,
) -> SyntheticDiDResult:
    """Synthetic difference-in-differences (Arkhangelsky et al. 2021, Algorithm 1).

    Parameters
    ----------
    panel : Panel
        Balanced over the units and periods used (treated cohorts and never-treated units).
    outcome : str
        Outcome column.
    rng : numpy.random.Generator, optional
        For placebo/bootstrap standard errors.
    alpha : float
        Level of the reported normal confidence intervals.
    n_jobs : int
        Workers for the replications (results identical for any value).
    method : {"sdid", "sc", "did"}
        SDID, or its synthetic-control / difference-in-differences special cases.
    se_method : {"placebo", "bootstrap", "jackknife"} or None
        Algorithm 4, 2 or 3 of the paper; None skips the standard error (another one
        later, without refitting: :meth:`SyntheticDiDResult.with_inference`).
    n_reps : int
        Placebo / bootstrap replications.
    zeta_omega, zeta_lambda, min_decrease : float, optional
        Override the paper's defaults (eq. 2.3; R synthdid's ``1e-5 sigma_hat``).
    max_iter : int
        Frank-Wolfe iteration cap (R synthdid 1e4).
    sparsify : bool
        R synthdid's sparsification restart.
    covariates : list of str, optional
        Time-varying covariates (panel covariate columns): SDID runs on the outcome net of
        ``X beta``, ``beta`` from a two-way fixed-effects regression on the untreated
        observations (Arkhangelsky et al. 2021, Section 8; see
        :mod:`zoneimpact.estimators._sdid_covariates`).

    Returns
    -------
    SyntheticDiDResult
        Terms ``att`` (and ``cohort:G`` with several adoption cohorts).
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="synthetic_did"
    )
    if covariates is not None:
        options = dict(
            method=method,
            se_method=se_method,
            n_reps=n_reps,
            zeta_omega=zeta_omega,
            zeta_lambda=zeta_lambda,
            min_decrease=min_decrease,
            max_iter=max_iter,
            sparsify=sparsify,
        )
        return _fit_on_residuals(panel, outcome, covariates, rng, alpha, n_jobs, options)
    n_reps, overrides = _checked_options(
        method, se_method, n_reps, zeta_omega, zeta_lambda, min_decrease, max_iter, sparsify
    )
    donors, treated_units, Y, cohort_of_row = _outcome_rows(panel, outcome, method)
    periods = np.asarray(panel.periods)
    rng = as_generator(rng)
    cohorts = _cohort_blocks(cohort_of_row, periods)
    for c in cohorts:
        if c.T0 < 1:
            raise EstimationError(f"Cohort {c.g:g} has no pre-treatment period in the data.")
    N0 = len(donors)
    data = SdidData(Y, N0, donors, cohort_of_row, periods, method, overrides, n_reps, snapshot(rng))
    common: dict[str, Any] = dict(
        estimator="synthetic_did",
        outcome=outcome,
        n_units=Y.shape[0],
        n_obs=int(Y.size),
        info={
            "method": method,
            "se_method": se_method,
            "n_controls": N0,
            "n_treated": len(treated_units),
            "n_cohorts": len(cohorts),
        },
        alpha=alpha,
    )
    if len(cohorts) == 1:
        est, block = _fit_one_cohort(Y, N0, cohorts[0], periods, method, overrides)
        data = replace(data, block=block)
        draws, se = variance(data, se_method, n_reps, rng, n_jobs)
        return _single_result({**common, "fitted": data}, data, block, est, se, draws)
    est, rows = _staggered_point(Y, cohort_of_row, periods, method, overrides)
    data = replace(data, fixed={r["cohort"]: (r["controls"], r["omega"], r["lam"]) for r in rows})
    draws, se = variance(data, se_method, n_reps, rng, n_jobs)
    return _staggered_result({**common, "fitted": data}, data, est, rows, se, draws)


def _fit_on_residuals(
    panel: Panel,
    outcome: str,
    covariates: Any,
    rng: np.random.Generator | None,
    alpha: float,
    n_jobs: int,
    options: dict[str, Any],
) -> SyntheticDiDResult:
    """SDID on the covariate-residualised outcome (``fit(covariates=...)``)."""
    from ._sdid_covariates import covariate_info, residualise_on_covariates
    from .ife import covariate_list

    covs = covariate_list(panel, covariates)
    if not covs:
        return fit(panel, outcome=outcome, rng=rng, alpha=alpha, n_jobs=n_jobs, **options)
    resid, coefs = residualise_on_covariates(panel, outcome, covs)
    res = fit(resid, outcome=outcome, rng=rng, alpha=alpha, n_jobs=n_jobs, **options)
    return replace(res, covariate_coefs=coefs, info={**res.info, **covariate_info(coefs)})


def _by_unit(frame: Any) -> Any:
    """Rows sorted by unit label; labels of mixed types (ints and strings), which do not
    compare, are sorted by their text (a bare TypeError before; a breaker's check)."""
    try:
        return frame.sort_index()
    except TypeError:
        return frame.sort_index(key=lambda idx: idx.map(str))
