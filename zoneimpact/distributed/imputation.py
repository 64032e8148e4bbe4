"""Borusyak, Jaravel & Spiess (2024) imputation estimator on a Dask DataFrame.

The estimator of :func:`zoneimpact.estimators.imputation.fit` (Borusyak, K., Jaravel, X. and
Spiess, J. 2024, "Revisiting event-study designs: robust and efficient estimation", *Review
of Economic Studies* 91(6)), computed from per-partition sums (a unit's rows sit in one
partition):

1. **Y(0) model** (Theorem 2 step 1): ``Y_it = a_i + l_t + e_it`` on the untreated rows
   ``Omega_0``. The unit effects are eliminated inside the partitions: with ``C`` the units x
   periods counts of untreated rows and ``D`` their row sums, the period effects solve the
   reduced normal equations ``(diag(n_t) - C'D^{-1}C) l = C'(y - unit means)``, a periods x
   periods system whose matrix and right-hand side each partition adds up in one pass; the
   client solves it once (the untreated unit-period graph is connected, checked first, so
   the constants are its only null vectors and one period's effect is set to 0). ``a_i``
   is the unit mean of ``Y - l_t`` over the unit's untreated rows. Panels with more than
   ``_DIRECT_MAX_PERIODS`` periods (where each unit's ``n_i^2`` pairs would cost more than
   the passes) iterate instead, by alternating projections (unit means local, period
   means a global reduction; see :mod:`.twfe`), one pass per sweep.
2. **Imputation** (step 2): ``tau_hat_it = Y_it - a_i - l_t`` on treated rows, in their
   partitions; the estimands (``att`` and ``event:E``, equal weights on treated rows) need
   only sums and counts by cohort x event time.
3. **Implied weights** (Section 4.1): ``v_0 = -Z_0 (Z_0'Z_0)^{-1} Z_1'w`` for every
   estimand at once, from the normal equations ``Z_0'Z_0 theta = Z_1'w`` with the unit
   block eliminated in the same way (the same periods x periods matrix, right-hand side
   ``b_t - C'D^{-1}b_u``; one pass), or for long panels by Gauss-Seidel (each pass solves
   the unit block in the partitions and returns the period sums, and the client solves
   the period block).
4. **Variance** (Theorem 3, eq. 8-10): per-cluster sums of ``v_it e~_it`` (step-1
   residuals on untreated rows, ``tau_hat - tau~`` on treated rows with ``tau~`` eq. 8's
   cluster-weighted cell average, from cell x cluster counts and sums), reduced over
   partitions; ``V = S'S``, no small-sample factor, as in memory.

Supported: unit and period effects, clustering by unit or the panel's cluster column, the
four ``aux_partition`` choices, ``horizons``, the leave-out refinement (``leave_out``). Not on
Dask: covariates, weights, Test 1 (``pretrends``) and CR2 (``small_sample``): use the
in-memory estimator. The spillover decomposition's pieces (:func:`fit_scores` with
``baseline``) add baseline covariate x period terms ``x_i 1{t = s}`` to step 1, as the
in-memory spillover pieces do: each row's period block is then ``e_t (x) [1, x_i]``
(:func:`_pcols`), the reduced system is ``Z_p'Z_p - C'D^{-1}C`` over those columns (``C``
their sums by unit), the first period's columns are the reference, and it is solved
directly (no iteration with covariates).
The result has no ``effects`` table (one row per treated observation would have to come
back to the client) and no building blocks for ``with_inference``.

Why by hand: see :mod:`.twfe` (no Dask library absorbs fixed effects). The direct solve
replaced the iterations for short panels because each sweep is a pass over the data (on a
cluster, a round trip): the 120-unit, 10-period test panels needed about 40 sweeps per
system to reach 1e-14, an unbalanced 20,000 x 20 panel 25
(``benchmarks/bench_dask_imputation.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse

from ..errors import EstimationError, SpecError
from ..estimators._bjs import LEAVE_OUT_REST, SingularModel
from ..estimators._fe import collinear_given_effects
from ..estimators._scale import rescale_result
from ..estimators.imputation import ImputationResult
from ..estimators.spillover import _period_label
from ..inference.covariance import warn_few_treated
from ..panel import _v
from ..results import check_alpha, check_choice, terms_frame
from ._frame import (
    DaskPanel,
    check_dask_panel,
    compute_blocks,
    midranges,
    persist_blocks,
    summed,
    uses_column,
)
from .twfe import _components, scaled_panel

__all__ = ["fit"]

_MAX_SWEEPS = 10_000
_TOL = 1e-14
#: the longest panel (periods with untreated rows) whose step 1 and implied weights are
#: solved directly from the reduced periods x periods normal equations; a unit adds its
#: untreated rows' ``n_i^2`` pairs to that matrix, so longer panels iterate instead
_DIRECT_MAX_PERIODS = 200
_PARTITIONS = {
    "cohort_event": ("cohort", "event"),
    "cohort": ("cohort",),
    "event": ("event",),
    "none": (),
}


def _block(
    df: pd.DataFrame,
    *,
    periods: np.ndarray,
    outcome: str,
    cluster: bool,
    aux: bool = False,
    scale: bool = False,
    centre: float = 0.0,
    baseline: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Rows with the outcome observed, split into untreated and treated rows; ``aux``: the
    rows' extra ``tau~`` cell codes from the column ``_aux``; ``scale``: the values that
    ``tau~`` is proportional to within a cell, from the column ``_scale``. The outcome is
    stored less ``centre`` (:func:`~zoneimpact.distributed._frame.midranges`): every
    estimate and score is a difference of outcomes, which the unit effects absorb.
    ``baseline`` (by unit): covariates whose period terms ``x_i 1{t = s}`` join the period
    effects; each row carries ``[1, x_i]`` (``x``), the values of its period's columns."""
    df = df.dropna(subset=[outcome])
    ucode, units = pd.factorize(df["unit"], sort=True)
    t = df["time"].to_numpy()
    g = df["cohort"].to_numpy(float)
    treated = t >= g
    labels = df["cluster"].to_numpy() if cluster else np.asarray(units)[ucode]
    if cluster and pd.isna(labels).any():
        bad = df["unit"].to_numpy()[pd.isna(labels)][0]
        raise EstimationError(
            f"The cluster column is missing for unit {bad!r}: every row needs a cluster "
            "label (the Theorem 3 scores are summed by cluster)."
        )
    return {
        "ucode": ucode, "n_units": len(units), "tcode": np.searchsorted(periods, t),
        "y": df[outcome].to_numpy(float) - centre, "treated": treated, "g": g, "t": t,
        "labels": labels,
        "aux": df["_aux"].to_numpy(np.int64) if aux else np.zeros(len(df), np.int64),
        "scale": df["_scale"].to_numpy(float) if scale else np.ones(len(df)),
        "x": _row_design(df["unit"], baseline),
    }  # fmt: skip


def _row_design(unit: pd.Series, baseline: pd.DataFrame | None) -> np.ndarray:
    """``[1, x_i]`` of every row (rows x (K + 1)); ``[1]`` without covariates."""
    ones = np.ones((len(unit), 1))
    if baseline is None or baseline.shape[1] == 0:
        return ones
    return np.column_stack([ones, baseline.reindex(unit.to_numpy()).to_numpy(float)])


def _pcols(tc: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The period-block columns of every row's ``[1, x_i]`` (rows x (K + 1)): column
    ``t (K + 1) + k`` holds the period effect (``k = 0``) and the ``x_k 1{t = s}`` terms of
    period ``t``."""
    k1 = x.shape[1]
    return tc[:, None] * k1 + np.arange(k1)[None, :]


def _psums(tc: np.ndarray, x: np.ndarray, w: np.ndarray, n_p: int) -> np.ndarray:
    """``Z_p' w``: the rows' ``w`` times their period-block regressors, summed by column."""
    return np.bincount(_pcols(tc, x).ravel(), weights=(x * w[:, None]).ravel(), minlength=n_p)


def _pfit(tc: np.ndarray, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``Z_p theta``: each row's period-block fit (``theta``: columns x estimands, or a
    vector); without covariates ``theta[t]``."""
    k1 = x.shape[1]
    if k1 == 1:
        return theta[tc]
    th = theta.reshape(-1, k1, *theta.shape[1:])[tc]
    return np.einsum("rk,rk...->r...", x, th)


def _untreated_periods(blk: dict[str, Any], *, n_t: int) -> dict[str, np.ndarray]:
    return {"n0_t": np.bincount(blk["tcode"][~blk["treated"]], minlength=n_t).astype(float)}


def _paired_untreated(blk: dict[str, Any], *, n_t: int, thin: np.ndarray) -> dict[str, np.ndarray]:
    """Per period outside ``thin``: untreated units with another untreated row outside
    ``thin`` (``paired``), and whether it has untreated rows at all (``has``). A unit's
    rows stay in one partition, so the per-partition counts add up."""
    u, tc = blk["ucode"], blk["tcode"]
    own = ~blk["treated"] & ~thin[tc]
    rows = np.bincount(u[own], minlength=blk["n_units"])
    paired = own & (rows[u] >= 2)
    return {
        "paired": np.bincount(tc[paired], minlength=n_t).astype(float),
        "has": np.bincount(tc[own], minlength=n_t).astype(float),
    }


def _select(
    blk: dict[str, Any], *, has_t: np.ndarray, thin: np.ndarray | None = None
) -> dict[str, Any]:
    """The rows whose ``Y(0)`` is imputable (their unit and period have untreated rows),
    as the in-memory ``_sample``; untreated rows ``0`` and treated rows ``1``. Untreated
    rows of ``thin`` periods are left out of step 1."""
    u, tc, tr = blk["ucode"], blk["tcode"], blk["treated"]
    untreated = ~tr if thin is None else ~tr & ~thin[tc]
    has_u = np.bincount(u[untreated], minlength=blk["n_units"]) > 0
    keep = untreated | (tr & has_u[u] & has_t[tc])
    i0, i1 = np.flatnonzero(keep & ~tr), np.flatnonzero(keep & tr)
    first = pd.Series(tc[i0]).groupby(u[i0]).transform("min").to_numpy()
    return {
        "n_units": blk["n_units"], "n0_u": np.bincount(u[i0], minlength=blk["n_units"]),
        "u0": u[i0], "t0": tc[i0], "y0": blk["y"][i0], "lab0": blk["labels"][i0],
        "u1": u[i1], "t1": tc[i1], "y1": blk["y"][i1], "lab1": blk["labels"][i1],
        "g1": blk["g"][i1], "e1": (blk["t"][i1] - blk["g"][i1]).astype(np.int64),
        "x0": blk["x"][i0], "x1": blk["x"][i1],
        "a1": blk["aux"][i1], "s1": blk["scale"][i1],
        "n_dropped": int((tr & ~keep).sum()), "n_used_units": int(np.count_nonzero(np.bincount(u[keep]))),
        "dropped_t": np.bincount(tc[tr & ~keep], minlength=has_t.size),
        "edges": np.unique(np.column_stack([first, tc[i0]]), axis=0) if i0.size else
        np.zeros((0, 2), dtype=np.intp),
    }  # fmt: skip


def _unit_means(blk: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Means over each unit's untreated rows (columns of ``values``, rows ``Omega_0``)."""
    n_u, cnt = blk["n_units"], np.maximum(blk["n0_u"], 1)
    two = values if values.ndim == 2 else values[:, None]
    sums = np.column_stack(
        [np.bincount(blk["u0"], weights=two[:, j], minlength=n_u) for j in range(two.shape[1])]
    )
    return sums / cnt[:, None]


def _sweep(blk: dict[str, Any], *, tau: np.ndarray) -> dict[str, np.ndarray]:
    """One sweep of the alternating projections on ``Omega_0``: period sums of the
    unit-demeaned ``Y - l_t``."""
    r = blk["y0"] - _pfit(blk["t0"], blk["x0"], tau)
    r = r - _unit_means(blk, r)[blk["u0"], 0]
    return {"sums": _psums(blk["t0"], blk["x0"], r, len(tau))}


def _reduced_gram(blk: dict[str, Any], *, n_t: int) -> dict[str, np.ndarray]:
    """The partition's ``Z_p'Z_p`` and ``C'D^{-1}C`` (period-block columns squared,
    :func:`_pcols`): ``Z_p`` holds the untreated rows' period-block regressors, ``C`` their
    sums by unit and ``D`` the units' row counts, so that ``Z_p'Z_p - C'D^{-1}C`` is
    ``Z_0'Z_0`` with the unit block eliminated (its Schur complement); without covariates
    ``Z_p'Z_p`` is ``diag(n_t)``. A unit's rows stay in one partition, so the partitions'
    matrices add up."""
    u0, t0, x0 = blk["u0"], blk["t0"], blk["x0"]
    n_p = n_t * x0.shape[1]
    if not len(u0):
        return {"zz": np.zeros((n_p, n_p)), "gram": np.zeros((n_p, n_p))}
    cols = _pcols(t0, x0).ravel()
    rows = np.repeat(np.arange(len(u0)), x0.shape[1])
    Z = sparse.csr_matrix((x0.ravel(), (rows, cols)), shape=(len(u0), n_p))
    root = (x0 / np.sqrt(np.maximum(blk["n0_u"], 1))[u0][:, None]).ravel()
    C = sparse.csr_matrix((root, (np.repeat(u0, x0.shape[1]), cols)), shape=(blk["n_units"], n_p))
    return {"zz": (Z.T @ Z).toarray(), "gram": (C.T @ C).toarray()}


def _reduced_factor(
    n0_t: np.ndarray, zz: np.ndarray, gram: np.ndarray, periods: np.ndarray | None = None
) -> tuple[np.ndarray, Any] | None:
    """Cholesky factor of ``zz - gram`` on the period-block columns of the periods with
    untreated rows but the first, with those columns. The untreated unit-period graph is
    connected there (checked in :func:`_imputable_blocks`), so the constants span the
    period effects' null space and fixing the first period's value at 0 leaves a positive
    definite system, which moves no fitted value (``a_i + l_t`` and ``v_0`` are unique);
    the first period's covariate terms go with it (their sum over periods, ``x_i``, is the
    unit effects', as in memory's reference period). Step 1 and the implied weights share
    it. None where rounding leaves it not positive definite (a nearly disconnected design):
    both then iterate (without covariates; with them :func:`_check_reduced` refuses, naming
    ``periods``)."""
    k1 = zz.shape[0] // len(n0_t)
    keep = (np.flatnonzero(n0_t > 0)[1:, None] * k1 + np.arange(k1)[None, :]).ravel()
    if not keep.size:
        return keep, None
    A = zz[np.ix_(keep, keep)] - gram[np.ix_(keep, keep)]
    if k1 > 1:
        at = np.arange(len(n0_t)) if periods is None else np.asarray(periods)
        _check_reduced(A, k1, at[keep // k1])
    try:
        return keep, linalg.cho_factor(A)
    except (np.linalg.LinAlgError, ValueError):
        if k1 > 1:
            raise SingularModel(_COLLINEAR) from None
        return None


_COLLINEAR = (
    "The Y(0) model is singular on its untreated rows: its covariate-by-period terms are "
    "collinear given the unit and period effects (a covariate constant across the untreated "
    "units of a period, two proportional covariates, or a period with too few untreated "
    "units for its covariate terms)."
)


def _check_reduced(A: np.ndarray, k1: int, periods: np.ndarray) -> None:
    """Refuse covariate terms collinear given the unit and period effects, as the in-memory
    step 1 does (:func:`zoneimpact.estimators.spillover._without_thin_periods` names the
    periods whose clean units share a covariate's value;
    :func:`zoneimpact.estimators._bjs._check_covariate_rank` judges the covariates' Schur
    complement given the effects by
    :func:`~zoneimpact.estimators._fe.collinear_given_effects`). ``A``: the reduced matrix
    on the kept columns, ``periods``: each column's period. A column the effects explain
    (a covariate constant among the period's untreated units) leaves a Schur diagonal of
    rounding size, which the unit-diagonal scaling would blow up into a healthy-looking
    column (a reviewer's world passed or refused with the number of partitions), so those
    are judged first, against the column's own diagonal."""
    own = np.arange(A.shape[0]) % k1 == 0
    fx = A[np.ix_(own, ~own)]
    try:
        schur = A[np.ix_(~own, ~own)] - fx.T @ linalg.solve(A[np.ix_(own, own)], fx, assume_a="pos")
    except (np.linalg.LinAlgError, ValueError):
        raise SingularModel(_COLLINEAR) from None
    flat = np.diag(schur) <= _EXPLAINED * np.diag(A)[~own]
    if flat.any():
        shown = ", ".join(_period_label(t) for t in pd.unique(periods[~own][flat]))
        raise SingularModel(
            f"The covariates do not vary among the untreated units of period(s) {shown} "
            "(given the unit effects), so their covariate-by-period terms are not "
            "identified. Use fewer covariates or leave those periods out."
        )
    if collinear_given_effects(schur):
        raise SingularModel(_COLLINEAR)


# a covariate term whose variation the unit and period effects leave below this share of
# its own (after the unit effects) is taken as explained by them (rounding: about 1e-15)
_EXPLAINED = 1e-10


def _solve_reduced(factor: tuple[np.ndarray, Any], rhs: np.ndarray) -> np.ndarray:
    """``x`` of the reduced system (:func:`_reduced_factor`) for ``rhs`` (period-block
    columns x estimands), 0 on the columns left out; ``rhs`` sums to 0 over the periods
    (every unit's untreated rows are demeaned), so the first period's equations hold too."""
    keep, cho = factor
    x = np.zeros(rhs.shape)
    if cho is not None:
        x[keep] = linalg.cho_solve(cho, rhs[keep])
    return x


def _imputed(blk: dict[str, Any], tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-1 residuals on untreated rows and ``tau_hat`` on treated rows (``tau``: the
    period-block coefficients)."""
    fit0 = _pfit(blk["t0"], blk["x0"], tau)
    a = _unit_means(blk, blk["y0"] - fit0)[:, 0]
    resid0 = blk["y0"] - a[blk["u0"]] - fit0
    tau_hat = blk["y1"] - a[blk["u1"]] - _pfit(blk["t1"], blk["x1"], tau)
    return resid0, tau_hat


def _cluster_cell_sums(blk: dict[str, Any], *, tau: np.ndarray) -> pd.DataFrame:
    """Counts and sums of ``tau_hat`` by cohort x event time x extra cell code x cluster
    (the estimates' cell sums, and eq. 8's cluster terms of ``tau~``), and the sums ``m``
    of the rows' scale (their count without one)."""
    _, tau_hat = _imputed(blk, tau)
    frame = pd.DataFrame(
        {
            "cohort": blk["g1"],
            "event": blk["e1"],
            "aux": blk["a1"],
            "cluster": blk["lab1"],
            "tau": tau_hat,
            "scale": blk["s1"],
        }
    )
    keys = ["cohort", "event", "aux", "cluster"]
    return frame.groupby(keys).agg(n=("tau", "size"), s=("tau", "sum"), m=("scale", "sum"))


def _estimand_matrix(blk: dict[str, Any], ctx: dict[str, Any]) -> np.ndarray:
    """Weights ``w_it`` of each estimand on the partition's treated rows (rows x
    estimands): ``1/N_1`` for ``att``, ``1/N_E`` on the rows of event time ``E``."""
    e1 = blk["e1"]
    w = np.zeros((len(e1), 1 + len(ctx["horizons"])))
    w[:, 0] = 1.0 / ctx["n1"]
    for j, (h, n_h) in enumerate(zip(ctx["horizons"], ctx["n_h"], strict=True), start=1):
        w[e1 == h, j] = 1.0 / n_h
    return w


def _unit_theta(blk: dict[str, Any], theta_t: np.ndarray, ctx: dict[str, Any]) -> np.ndarray:
    """The unit block of ``Z_0'Z_0 theta = Z_1'w`` solved given the period block."""
    w1 = _estimand_matrix(blk, ctx)
    n_u, m = blk["n_units"], w1.shape[1]
    b_u = np.column_stack(
        [np.bincount(blk["u1"], weights=w1[:, j], minlength=n_u) for j in range(m)]
    )
    fit0 = _pfit(blk["t0"], blk["x0"], theta_t)
    cross = np.column_stack(
        [np.bincount(blk["u0"], weights=fit0[:, j], minlength=n_u) for j in range(m)]
    )
    return (b_u - cross) / np.maximum(blk["n0_u"], 1)[:, None]


def _period_rhs(blk: dict[str, Any], *, ctx: dict[str, Any]) -> dict[str, np.ndarray]:
    w1 = _estimand_matrix(blk, ctx)
    n_p = ctx["n_t"] * blk["x1"].shape[1]
    return {
        "b_t": np.column_stack(
            [_psums(blk["t1"], blk["x1"], w1[:, j], n_p) for j in range(w1.shape[1])]
        )
    }


def _gauss_seidel(
    blk: dict[str, Any], *, theta_t: np.ndarray, ctx: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Period-block sums over untreated rows of the unit block's solution."""
    th_u = _unit_theta(blk, theta_t, ctx)
    n_p, m = theta_t.shape
    return {
        "s": np.column_stack(
            [_psums(blk["t0"], blk["x0"], th_u[blk["u0"], j], n_p) for j in range(m)]
        )
    }


def _weights_rhs(
    blk: dict[str, Any], *, theta_t: np.ndarray, ctx: dict[str, Any]
) -> dict[str, np.ndarray]:
    """``b_t`` (:func:`_period_rhs`) and the Gauss-Seidel period sums
    (:func:`_gauss_seidel`) in one pass."""
    return _period_rhs(blk, ctx=ctx) | _gauss_seidel(blk, theta_t=theta_t, ctx=ctx)


def _scores(
    blk: dict[str, Any], *, tau: np.ndarray, theta_t: np.ndarray, tilde: pd.DataFrame,
    ctx: dict[str, Any], scaled: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Theorem 3: each cluster's ``sum v_it e~_it`` for every estimand (``scaled``:
    ``tau~`` times the row's scale; without it, cell means)."""
    resid0, tau_hat = _imputed(blk, tau)
    th_u = _unit_theta(blk, theta_t, ctx)
    v0 = -(th_u[blk["u0"]] + _pfit(blk["t0"], blk["x0"], theta_t))
    w1 = _estimand_matrix(blk, ctx)
    src = {
        "_all": np.zeros(len(blk["g1"]), np.int64),
        "cohort": blk["g1"],
        "event": blk["e1"],
        "aux": blk["a1"],
    }
    src["cluster"] = blk["lab1"]
    key = pd.MultiIndex.from_arrays([src[c] for c in tilde.index.names])
    tt = tilde.to_numpy()[tilde.index.get_indexer(key)].reshape(len(key), w1.shape[1])
    if scaled:
        tt = tt * blk["s1"][:, None]
    part0 = pd.DataFrame(v0 * resid0[:, None])
    part0["_c"] = blk["lab0"]
    part1 = pd.DataFrame(w1 * (tau_hat[:, None] - tt))
    part1["_c"] = blk["lab1"]
    return pd.concat([part0, part1]).groupby("_c", sort=False).sum()


def _project(
    blocks: list[Any],
    step: Any,
    shape: tuple[int, int],
    rhs: Any,
    what: str,
    kw: Any,
    floor: float = 1e-300,
) -> tuple[np.ndarray, int]:
    """Iterate a period-block update ``x <- rhs(period sums)`` to its fixed point, until a
    correction is negligible next to the first one, or to ``floor`` (the column's own
    size) where that one is rounding (a noise-free outcome)."""
    x = np.zeros(shape)
    scale = None
    for sweep in range(1, _MAX_SWEEPS + 1):
        new = rhs(x, summed(compute_blocks([step], blocks, **kw(x))))
        delta = new - x
        if scale is None:
            first = np.abs(delta).max(axis=0)
            # a first correction below 1e-10 of the column's size is rounding (a noise-free
            # outcome): judged against the size instead
            scale = np.maximum(np.where(first > 1e-10 * floor, first, floor), 1e-300)
        x = new
        if np.all(np.abs(delta).max(axis=0) <= _TOL * scale):
            return x, sweep
    raise EstimationError(f"The {what} did not converge in {_MAX_SWEEPS} sweeps.")


def fit(
    dpanel: DaskPanel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    horizons: Sequence[int] | None = None,
    cluster: str | bool | None = None,
    aux_partition: str = "cohort_event",
    leave_out: bool = False,
) -> ImputationResult:
    """BJS (2024) imputation estimator with unit and period effects on a :class:`DaskPanel`.

    Parameters
    ----------
    dpanel : DaskPanel
        From :func:`zoneimpact.distributed.read_panel`.
    outcome : str
        Outcome column (rows with it missing are dropped).
    rng, n_jobs : unused
        The common estimator signature; the estimator is deterministic.
    alpha : float
        Level of the confidence intervals.
    horizons : sequence of int, optional
        Event times ``E >= 0`` reported as ``event:E`` (default: every observed one).
    cluster : str or bool, optional
        The panel's cluster column (its name as read, or True); None or ``"unit"``: by unit.
    aux_partition : {"cohort_event", "cohort", "event", "none"}
        Cells of ``tau~`` (Section 4.3).
    leave_out : bool
        ``tau~`` of a treated row averages its cell without the row's own cluster (BJS
        2024, Supplementary Appendix A.9), from cell x cluster sums; as in memory.

    Returns
    -------
    ImputationResult
        Terms ``att`` and ``event:E`` with the Theorem 3 conservative variance; equal to
        the in-memory fit to 1e-10 (``tests/test_distributed.py``).
    """
    check_dask_panel(dpanel, outcome)
    check_choice(aux_partition, "aux_partition", tuple(_PARTITIONS))
    alpha = check_alpha(alpha)
    by_cluster = uses_column(dpanel, cluster, "cluster")
    # as the in-memory scale_equivariant: the outcome divided by a power of two (exact)
    # outside [2^-64, 2^64], the result rescaled (y x 1e160 gave SE inf)
    dpanel, c = scaled_panel(dpanel, outcome)
    f = fit_scores(dpanel, outcome, horizons, by_cluster, aux_partition, leave_out)
    est, scores, ctx, n0_t, meta = f.est, f.scores.to_numpy(), f.ctx, f.n0_t, f.meta
    sweeps, gs_sweeps = f.sweeps, f.gs_sweeps
    vcov = scores.T @ scores
    names = ["att", *[f"event:{h}" for h in ctx["horizons"]]]
    n_treated = int(ctx["n1"])
    _warn_unidentified(meta, dpanel.periods)
    # as in memory: the clusters holding an imputed treated row (stacklevel 2: the
    # caller of fit)
    warn_few_treated(
        len(f.target_clusters),
        f"cluster(s) of {dpanel.cluster if by_cluster else 'unit'!r} (with an imputed "
        "treated observation)",
        stacklevel=2,
    )
    res = ImputationResult(
        estimator="imputation",
        outcome=outcome,
        terms=terms_frame(names, est, np.sqrt(np.clip(np.diag(vcov), 0, None))),
        main_term="att",
        n_units=int(sum(mm[3] for mm in meta)),
        n_obs=int(n0_t.sum()) + n_treated,
        vcov=vcov,
        info={
            "cluster": dpanel.cluster if by_cluster else "unit",
            "n_clusters": len(scores),
            "fixed_effects": "unit+time",
            "n_untreated_obs": int(n0_t.sum()),
            "n_treated_obs": n_treated,
            "n_dropped_unidentified": int(sum(mm[2] for mm in meta)),
            "aux_partition": aux_partition,
            "variance": "BJS Theorem 3 conservative, "
            + ("leave-out tau~" if leave_out else "no leave-out")
            + ", no small-sample factor",
            "engine": "dask",
            "sweeps": sweeps,
            "implied_weight_sweeps": gs_sweeps,
        },
        alpha=alpha,
    )
    return rescale_result(res, c)


def _warn_unidentified(meta: tuple[Any, ...], periods: np.ndarray) -> None:
    """As the in-memory ``_sample``: treated rows without an imputable ``Y(0)`` are left
    out of every estimate, which changes the estimand, so the caller is told."""
    lost = int(sum(m[2] for m in meta))
    if lost:
        by_period = np.sum([m[4] for m in meta], axis=0)
        first = periods[np.flatnonzero(by_period)[0]]
        warnings.warn(
            f"{lost} treated unit-period(s) have no imputable Y(0) (no untreated row of "
            f"their unit, or none in their period; first period with one: {_v(first)!r}) "
            "and are left out of every estimate (info['n_dropped_unidentified']).",
            stacklevel=3,  # past fit: the caller of fit
        )


@dataclass(frozen=True)
class ScoredFit:
    """Steps 1-4 of :func:`fit`: the estimates (``att``, then ``event:E``), their
    Theorem 3 scores summed by cluster label (rows: the labels of the panel's cluster
    column, or units), the estimands' context and the sample counts."""

    est: np.ndarray
    scores: pd.DataFrame
    ctx: dict[str, Any]
    n0_t: np.ndarray
    meta: tuple[Any, ...]
    sweeps: int
    gs_sweeps: int
    # periods left out for too few untreated units (min_untreated), with their counts
    thin: np.ndarray
    thin_units: np.ndarray
    # the cluster labels (as ``scores``' rows) holding an estimated target
    target_clusters: tuple[Any, ...] = ()
    # with ``fit_scores(also_cell_means=True)``: the scores under cell-mean ``tau~`` (the
    # same step 1), beside ``scores`` under ``tau~`` proportional to the scale
    scores_cell_means: pd.DataFrame | None = None


class NothingImputable(EstimationError):
    """No treated row can be imputed; ``thin`` and ``at_drop`` are the periods left out for
    too few untreated units (and their numbers then), which the spillover pieces report
    even when a piece has no imputable target, as in memory."""

    def __init__(self, message: str, thin: np.ndarray, at_drop: np.ndarray) -> None:
        super().__init__(message)
        self.thin = thin
        self.at_drop = at_drop


def fit_scores(
    dpanel: DaskPanel,
    outcome: str,
    horizons: Sequence[int] | None,
    by_cluster: bool,
    aux_partition: str = "cohort_event",
    leave_out: bool = False,
    aux_cells: bool = False,
    scaled: bool = False,
    min_untreated: int = 1,
    pool_lone: bool = False,
    baseline: pd.DataFrame | None = None,
    also_cell_means: bool = False,
) -> ScoredFit:
    """The estimates and their cluster scores (what :func:`fit` reports and the Dask
    spillover decomposition's imputation pieces combine). ``aux_cells``: also split the
    partition's cells of ``tau~`` by the panel's integer column ``_aux``; ``scaled``:
    ``tau~`` proportional to the panel's column ``_scale`` within a cell;
    ``min_untreated``: the untreated units a period needs for its treated rows to be
    imputed (the spillover pieces take 2, :func:`zoneimpact.estimators.spillover.
    _without_thin_periods`; 1 is BJS's and did_imputation's rule); ``pool_lone``: pool
    the cells of ``tau~`` whose targets sit in one cluster (the spillover pieces, as
    :func:`zoneimpact.estimators.spillover.pool_lone_cells`; BJS's and did_imputation's
    leave-out keeps them, with an in-sample average); ``baseline`` (covariates by unit,
    every unit of the panel): the spillover pieces' covariate-by-period terms ``x_i 1{t =
    s}`` (conditional parallel trends, as in memory), solved directly (at most
    ``_DIRECT_MAX_PERIODS`` periods with untreated rows); ``also_cell_means`` (with
    ``scaled``): also the scores under cell-mean ``tau~`` from the same step 1
    (``scores_cell_means``; the spillover pieces' adaptive choice)."""
    import dask

    k1 = 1 if baseline is None else 1 + baseline.shape[1]
    blocks, n0_t, meta, at_drop, thin = _imputable_blocks(
        dpanel, outcome=outcome, cluster=by_cluster, aux=aux_cells, scale=scaled,
        min_untreated=min_untreated, baseline=baseline,
    )  # fmt: skip
    factor = None
    if int((n0_t > 0).sum()) <= _DIRECT_MAX_PERIODS:
        red = summed(compute_blocks([_reduced_gram], blocks, n_t=len(n0_t)))
        factor = _reduced_factor(n0_t, red["zz"], red["gram"], dpanel.periods)
    elif k1 > 1:
        # a SpecError, not an EstimationError: the spillover pieces turn those into NaN
        # pieces, and this one must stop the fit, whichever piece meets it
        raise SpecError(
            f"Covariates on the Dask imputation base need at most {_DIRECT_MAX_PERIODS} "
            f"periods with untreated rows (the panel has {int((n0_t > 0).sum())}): their "
            "terms are solved directly. Use the CS base or the in-memory fit."
        )
    tau, sweeps = _fit_y0(blocks, n0_t, factor, k1)
    own = pd.concat(compute_blocks([_cluster_cell_sums], blocks, tau=tau))
    own = own.groupby(level=[0, 1, 2, 3]).sum()
    by_cell = own.groupby(level=["cohort", "event"]).sum()
    est, ctx = _estimands(by_cell, horizons=horizons, n_t=len(n0_t))
    ctx["k1"] = k1
    ctx["partition"] = _PARTITIONS[aux_partition] + (("aux",) if aux_cells else ())
    ctx["pool_lone"] = bool(pool_lone and leave_out)
    theta_t, gs_sweeps = _implied_weights(blocks, n0_t=n0_t, ctx=ctx, factor=factor)

    def cluster_scores(cell_means: bool) -> pd.DataFrame:
        # cell means: a_c proportional to the cluster's count (m = n), tau~ unscaled
        tilde = _tau_tilde(own.assign(m=own["n"]) if cell_means else own, ctx, leave_out)
        # one graph node for the table (a cell x cluster table can be large), not one
        # copy hashed per partition
        shared = dask.delayed(tilde, traverse=False)
        parts = compute_blocks(
            [_scores], blocks, tau=tau, theta_t=theta_t, tilde=shared, ctx=ctx,
            scaled=not cell_means,
        )  # fmt: skip
        # as cluster_sums, keeping the labels: a cluster's units may sit in several
        # partitions
        return pd.concat(parts).groupby(level=0, sort=False).sum()

    held = own.index.get_level_values("cluster")[own["n"].to_numpy() > 0]
    return ScoredFit(
        est, cluster_scores(False), ctx, n0_t, meta, sweeps, gs_sweeps, thin, at_drop,
        tuple(pd.unique(held)), cluster_scores(True) if also_cell_means and scaled else None,
    )  # fmt: skip


def _imputable_blocks(
    dpanel: DaskPanel,
    *,
    outcome: str,
    cluster: bool,
    aux: bool = False,
    scale: bool = False,
    min_untreated: int = 1,
    baseline: pd.DataFrame | None = None,
) -> tuple[list[Any], np.ndarray, tuple[Any, ...], np.ndarray, np.ndarray]:
    """The partitions' imputable rows (persisted), the untreated rows per period, per
    partition ``(edges, treated rows, dropped treated rows, units, dropped treated rows by
    period)``, and per period the
    untreated units counted when it was left out for having fewer than ``min_untreated``
    and whether it was; refuses a sample without
    untreated rows, without an imputable treated row, or whose untreated rows leave the
    unit and period effects unidentified (a disconnected unit-period graph)."""
    import dask

    periods = dpanel.periods
    n_t = len(periods)
    parts = dpanel.partitions()
    raw = persist_blocks(
        _block,
        parts,
        periods=periods,
        outcome=outcome,
        cluster=cluster,
        aux=aux,
        scale=scale,
        centre=float(midranges(parts, [outcome])[0][0]),
        # one graph node for the table, not a copy hashed into every partition's task
        baseline=None if baseline is None else dask.delayed(baseline, traverse=False),
    )
    n0_t = summed(compute_blocks([_untreated_periods], raw, n_t=n_t))["n0_t"]
    if not n0_t.any():
        raise EstimationError("No untreated observations: the Y(0) model cannot be fitted.")
    # spillover._without_thin_periods without covariates: a period whose untreated units
    # with another untreated row number fewer than min_untreated is fitted exactly, so its
    # untreated rows leave step 1 and its treated rows are not imputed; repeated, since
    # leaving a period out can leave a unit with one untreated row
    thin = np.zeros(n_t, dtype=bool)
    at_drop = np.zeros(n_t)
    while min_untreated > 1:
        c = summed(compute_blocks([_paired_untreated], raw, n_t=n_t, thin=thin))
        more = (c["has"] > 0) & (c["paired"] < min_untreated)
        if not more.any():
            break
        thin |= more
        at_drop[more] = c["paired"][more]
    n0_t = np.where(thin, 0.0, n0_t)
    blocks = persist_blocks(_select, raw, has_t=n0_t > 0, thin=thin)
    meta = dask.compute(
        *[
            dask.delayed(
                lambda b: (
                    b["edges"],
                    len(b["y1"]),
                    b["n_dropped"],
                    b["n_used_units"],
                    b["dropped_t"],
                )
            )(b)
            for b in blocks
        ]
    )
    if sum(m[1] for m in meta) == 0:
        raise NothingImputable(
            "No treated observation has an imputable Y(0) (every treated unit or period "
            "lacks untreated observations).",
            thin,
            at_drop,
        )
    edges = np.concatenate([m[0] for m in meta])
    if _components(edges, n_t) - int((n0_t == 0).sum()) > 1:
        raise EstimationError(
            "The untreated observations split into disconnected groups of units and "
            "periods, so the unit and period effects of the Y(0) model are not identified."
        )
    return blocks, n0_t, meta, at_drop, thin


def _fit_y0(
    blocks: list[Any], n0_t: np.ndarray, factor: tuple[np.ndarray, Any] | None = None, k1: int = 1
) -> tuple[np.ndarray, int]:
    """Step 1: the period effects ``l_t`` of the ``Y(0)`` model on ``Omega_0`` (with ``k1
    - 1`` covariates, also their period terms: :func:`_pcols`) and the passes over the
    data it took: from the reduced normal equations when their ``factor``
    (:func:`_reduced_factor`) is given, otherwise by alternating projections (no
    covariates)."""
    present = n0_t > 0
    if factor is not None:
        # one pass: Z_p'(y - unit means), the reduced system's right-hand side
        r = summed(compute_blocks([_sweep], blocks, tau=np.zeros(len(n0_t) * k1)))["sums"]
        return _solve_reduced(factor, r[:, None])[:, 0], 1

    def tau_rhs(x: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        out = x.copy()
        out[present, 0] += s["sums"][present] / n0_t[present]
        return out

    # the outcome's own scale (it is centred on its midrange in _block)
    size = max(compute_blocks([_largest_untreated], blocks), default=0.0)
    tau2, sweeps = _project(
        blocks, _sweep, (len(n0_t), 1), tau_rhs, "Y(0) model", kw=lambda x: {"tau": x[:, 0]},
        floor=size,
    )  # fmt: skip
    return tau2[:, 0], sweeps


def _largest_untreated(blk: dict[str, Any]) -> float:
    return float(np.abs(blk["y0"]).max()) if len(blk["y0"]) else 0.0


def _estimands(
    cells: pd.DataFrame, *, horizons: Sequence[int] | None, n_t: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 2: from the counts and sums of ``tau_hat`` by cohort x event time, the
    estimates (``att``, then ``event:E``) and the estimands' context (horizons, their row
    counts, ``N_1``)."""
    by_event = cells.groupby(level="event").sum()
    avail = by_event.index.to_numpy()
    hz = avail.tolist() if horizons is None else sorted({int(h) for h in horizons})
    missing = [h for h in hz if h not in set(avail.tolist())]
    if missing:
        raise EstimationError(
            f"horizons {missing} have no treated observations; observed event times are "
            f"{avail.tolist()}."
        )
    n1 = float(cells["n"].sum())
    est = np.array(
        [cells["s"].sum() / n1, *[by_event.loc[h, "s"] / by_event.loc[h, "n"] for h in hz]]
    )
    ctx = {
        "horizons": hz,
        "n_h": [float(by_event.loc[h, "n"]) for h in hz],
        "n1": n1,
        "n_t": n_t,
    }
    return est, ctx


def _implied_weights(
    blocks: list[Any],
    *,
    n0_t: np.ndarray,
    ctx: dict[str, Any],
    factor: tuple[np.ndarray, Any] | None = None,
) -> tuple[np.ndarray, int]:
    """Step 3: the period block ``theta_t`` of ``Z_0'Z_0 theta = Z_1'w`` (every estimand
    at once) and the passes it took: from the reduced normal equations when their
    ``factor`` is given, otherwise by Gauss-Seidel."""
    present = n0_t > 0
    if factor is not None:
        # one pass: b_t and C'D^{-1}b_u (the unit block's solution at theta_t = 0)
        m = 1 + len(ctx["horizons"])
        zero = np.zeros((len(n0_t) * ctx["k1"], m))
        sums = summed(compute_blocks([_weights_rhs], blocks, theta_t=zero, ctx=ctx))
        return _solve_reduced(factor, sums["b_t"] - sums["s"]), 1
    b_t = summed(compute_blocks([_period_rhs], blocks, ctx=ctx))["b_t"]

    def theta_rhs(x: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        out = np.zeros_like(x)
        out[present] = (b_t[present] - s["s"][present]) / n0_t[present, None]
        return out

    return _project(
        blocks, _gauss_seidel, (len(n0_t), 1 + len(ctx["horizons"])), theta_rhs,
        "implied weights", kw=lambda x: {"theta_t": x, "ctx": ctx},
    )  # fmt: skip


def _tau_tilde(own: pd.DataFrame, ctx: dict[str, Any], leave_out: bool) -> pd.DataFrame:
    """``tau~`` of every auxiliary cell (with ``leave_out``, of every cell x cluster) for
    every estimand (columns), from the cohort x event x cluster counts ``n`` and sums ``s``
    of ``tau_hat``, as the in-memory :func:`zoneimpact.estimators._bjs.tau_tilde`: eq. 8's
    ``sum_c a_c b_c / sum_c a_c^2`` over the cell's clusters, where an estimand's weight is
    constant on its rows, so that ``a_c`` and ``b_c`` are proportional to the cluster's
    ``m`` (its rows' scale summed: ``n`` without a scale) and ``s`` on them, and the
    partition's scores multiply ``tau~`` by the row's scale; with ``leave_out`` (BJS
    2024, Supplementary Appendix A.9) without the cluster's own term, except in a cell
    whose weight sits in that cluster. 0 where the estimand has no weight in the cell.
    Indexed by ``_all`` (one level, so that the ``"none"`` partition has a key), the
    partition's keys and, with ``leave_out``, ``cluster``: a table of cells, not of
    clusters, unless the leave-out needs them."""
    cell_keys = ["_all", *[k for k in ("cohort", "event", "aux") if k in ctx["partition"]]]
    frame = own.reset_index().assign(_all=0)
    # the rows' own keys, kept for the returned index; the grouping keys may coarsen
    own_keys = frame[cell_keys].copy()
    if "aux" in cell_keys:
        # as the in-memory cells_for: a cell stays whole where a part of it has targets
        # in one cluster only (no leave-out average there)
        coarse = ["cohort", "event"]
        parts = frame[frame["n"] > 0].groupby([*coarse, "aux"])["cluster"].nunique()
        lone = parts[parts < 2].reset_index()[coarse].drop_duplicates()
        whole = frame[coarse].merge(lone.assign(_lone=True), on=coarse, how="left")["_lone"]
        frame["aux"] = np.where(whole.notna().to_numpy(), -1, frame["aux"].to_numpy())
    if ctx.get("pool_lone"):
        frame[cell_keys] = _pooled_keys(frame, cell_keys)
    # the estimands' rows by their own event time (a pooled cell's keys are not theirs)
    event = own_keys["event"] if "event" in own_keys else frame["event"]
    masks = [
        np.ones(len(frame), bool),
        *[(event == h).to_numpy() for h in ctx["horizons"]],
    ]
    J = len(masks)
    # a_c is proportional to the cluster's sum of the rows' scale (their count unscaled)
    tot = pd.DataFrame(
        {f"a{j}": np.where(m, frame["m"], 0.0) for j, m in enumerate(masks)}
        | {f"s{j}": np.where(m, frame["s"], 0.0) for j, m in enumerate(masks)}
    )
    for k in [*cell_keys, "cluster"]:
        tot[k] = frame[k].to_numpy()
    per = tot.groupby([*cell_keys, "cluster"], sort=False).sum()
    a = per[[f"a{j}" for j in range(J)]].to_numpy(float)
    ab, aa = a * per[[f"s{j}" for j in range(J)]].to_numpy(float), a**2
    cell = [per.index.get_level_values(k) for k in cell_keys]
    num = pd.DataFrame(ab).groupby(cell, sort=False).transform("sum").to_numpy()
    den = pd.DataFrame(aa).groupby(cell, sort=False).transform("sum").to_numpy()
    if leave_out:
        ok = (den - aa) > LEAVE_OUT_REST * den
        num = np.where(ok, num - ab, num)
        den = np.where(ok, den - aa, den)
    vals = pd.DataFrame(
        np.divide(num, den, out=np.zeros_like(num), where=den != 0), index=per.index
    )
    if "aux" in cell_keys or ctx.get("pool_lone"):
        # each row's value under its own keys (its cell may have been coarsened)
        at = vals.index.get_indexer(pd.MultiIndex.from_frame(frame[[*cell_keys, "cluster"]]))
        index = pd.MultiIndex.from_frame(
            own_keys.assign(cluster=frame["cluster"].to_numpy()), names=[*cell_keys, "cluster"]
        )
        vals = pd.DataFrame(vals.to_numpy()[at], index=index)
    return vals if leave_out else vals.groupby(level=cell_keys, sort=False).first()


def _pooled_keys(frame: pd.DataFrame, cell_keys: list[str]) -> pd.DataFrame:
    """The cell keys with the cells whose targets sit in one cluster pooled, as the
    in-memory :func:`zoneimpact.estimators.spillover.pool_lone_cells`: into one cell,
    which joins the cell spanning two clusters or more with the most targets (the first
    in key order on a tie) when the pool is itself inside one cluster; unchanged when
    every target sits in one cluster."""
    keys = frame[cell_keys].copy()
    held = frame["n"].to_numpy() > 0
    span = frame[held].groupby(cell_keys)["cluster"].nunique()
    lone_cells = span[span < 2].index
    if not len(lone_cells):
        return keys
    lone = pd.MultiIndex.from_frame(keys).isin(lone_cells)
    if frame.loc[lone & held, "cluster"].nunique() >= 2:
        keys.loc[lone, cell_keys[1:]] = -1
        return keys
    if lone[held].all():
        return keys
    size = frame[held & ~lone].groupby(cell_keys)["n"].sum().sort_index()
    target = size.idxmax()
    for k, v in zip(cell_keys, target, strict=True):
        keys.loc[lone, k] = v
    return keys
