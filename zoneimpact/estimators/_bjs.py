"""The steps of the Borusyak, Jaravel & Spiess (2024) imputation estimator, one per function.

Borusyak, K., Jaravel, X. and Spiess, J. (2024), "Revisiting event-study designs: robust
and efficient estimation", *Review of Economic Studies* 91(6), 3253-3285.

* :func:`fit_untreated` — Theorem 2, step 1: ``Y_it = a_i + l_t + X_it b`` by (weighted)
  OLS on the untreated ("clean") rows, from the sparse normal equations;
* :func:`impute` — step 2: ``tau_hat_it = Y_it - a_i - l_t - X_it b`` on the target rows
  whose unit and period both have clean rows (the others are not identified);
* :func:`implied_weights` — Section 4.1: the estimator ``sum w_it tau_hat_it`` is linear in
  ``Y``, with weights ``w`` on the targets and ``v_0 = -Z_0 (Z_0'Z_0)^{-1} Z_1'w`` on the
  clean rows;
* :func:`scores` — Theorem 3 / Section 4.3: each cluster's contribution
  ``sum_{it in c} v_it e~_it`` to the conservative variance, with ``e~`` the step-1
  residual on clean rows and ``tau_hat - tau~`` on targets (``tau~`` the cell average of
  eq. 8, :func:`tau_tilde`; with Conley SEs :func:`tau_tilde_near`, which also leaves out
  the target's kernel neighbourhood).

Several estimands (columns of ``w``) and several imputation problems on the same rows share
cluster codes, so their scores stack into one joint covariance ``S'S`` — the spillover
decomposition's joint inference. Written by hand for the reason given in
:mod:`zoneimpact.estimators.imputation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from ..errors import EstimationError
from ._fe import collinear_given_effects, fe_dof


class SingularModel(EstimationError):
    """Step 1's normal equations are singular on the clean rows (callers that know which
    rows are too few say so first, e.g.
    :func:`zoneimpact.estimators.spillover._without_thin_periods`)."""


# CR2 needs a dense inverse of the step-1 normal matrix and a root per cluster: the sizes
# beyond which the spillover pieces fall back to plain scores (noted) and
# imputation.fit(small_sample="cr2") refuses
CR2_MAX_PARAMS = 4000
CR2_MAX_CLUSTER_ROWS = 3000
# the largest Bell-McCaffrey vector matrix (long rows x clusters, 8 bytes each: 40 MB) worth
# forming; above it :func:`bm_gram` gives the Gram without the vectors, at some cost in
# rounding (its docstring)
BM_MAX_ENTRIES = 5_000_000

# :func:`cr2_parts`' output: adjusted step-1 residuals, per-cluster (rows, U, f) with
# (I - H_gg)^{-1/2} = I + U diag(f) U' (:func:`apply_root`) and (Z0'Z0)^{-1}
CR2Parts = tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Imputed:
    """Step 1 and 2 of one imputation problem on rows ``0..n-1`` of a long table.

    ``clean`` and ``target`` are row indices (targets that are not identified are
    excluded and counted in ``n_unidentified``); ``tau`` and ``resid0`` follow them.
    """

    clean: np.ndarray
    target: np.ndarray
    tau: np.ndarray
    resid0: np.ndarray
    n_unidentified: int
    lu: Any
    Z0: sparse.csr_matrix
    Z1: sparse.csr_matrix


@dataclass(frozen=True)
class LongTable:
    """Outcome, unit and period codes and regressors of the rows that several imputation
    problems share (their ``clean``/``target`` index these rows)."""

    y: np.ndarray
    unit: np.ndarray
    time: np.ndarray
    X: np.ndarray


def design(unit: np.ndarray, time: np.ndarray, X: np.ndarray, n_unit: int, n_time: int) -> Any:
    """Sparse ``[unit dummies | period dummies without the first | X]``."""
    n = len(unit)
    rows = np.arange(n)
    keep_t = time > 0
    parts = [
        sparse.csr_matrix((np.ones(n), (rows, unit)), shape=(n, n_unit)),
        sparse.csr_matrix(
            (np.ones(keep_t.sum()), (rows[keep_t], time[keep_t] - 1)), shape=(n, n_time - 1)
        ),
    ]
    if X.shape[1]:
        parts.append(sparse.csr_matrix(X))
    return sparse.hstack(parts, format="csr")


def _check_covariate_rank(A: Any, n_fe: int, what: str) -> None:
    """Refuse covariate terms that are collinear given the unit and period effects on the
    clean rows (``A``: the normal matrix ``Z0'Z0``, effects first). SuperLU factorises
    such a matrix without complaint (a covariate constant within unit, or two
    proportional ones, reach condition numbers near 1e17), and the estimates survive it,
    but the CR2 roots and Bell-McCaffrey degrees of freedom built from its inverse do not
    (a duplicated covariate moved a direct-effect df from 18.7 to 1.6). Judged as
    :mod:`~zoneimpact.estimators.imputation` judges its own
    (:func:`~zoneimpact.estimators._fe.collinear_given_effects`)."""
    if A.shape[1] <= n_fe:
        return
    fx = A[:n_fe, n_fe:].toarray()
    schur = A[n_fe:, n_fe:].toarray() - fx.T @ splu(A[:n_fe, :n_fe].tocsc()).solve(fx)
    if collinear_given_effects(schur):
        raise SingularModel(
            f"{what} is singular on its clean rows: its covariate terms are collinear given "
            "the unit and period effects (a covariate constant within unit, two proportional "
            "covariates, or a period with too few clean units for its covariate terms)."
        )


def fit_untreated(
    unit: np.ndarray,
    time: np.ndarray,
    y: np.ndarray,
    X: np.ndarray,
    clean: np.ndarray,
    target: np.ndarray,
    *,
    what: str = "the Y(0) model",
    weight: np.ndarray | None = None,
) -> Imputed:
    """Fit the two-way model (plus ``X``) on the ``clean`` rows and impute the ``target``
    rows (boolean masks over the rows; ``unit``/``time`` are any hashable codes).

    With ``weight`` (positive, one per row) step 1 is weighted least squares (BJS 2024,
    Theorem 2 with observation weights, as :func:`zoneimpact.estimators.imputation.fit`),
    solved as OLS on the clean rows scaled by ``sqrt(weight)``: ``Z0`` and ``resid0`` are
    then on that scale, so :func:`implied_weights` returns ``v_0 / sqrt(w)`` and the
    products ``v_0 e`` in :func:`scores`, and the CR2 leverages, are those of the weighted
    fit. ``Z1`` and ``tau`` are unscaled.
    """
    clean_idx = np.flatnonzero(clean)
    if clean_idx.size == 0:
        raise EstimationError(f"No untreated (clean) rows: {what} cannot be fitted.")
    uc0 = np.unique(unit[clean_idx])
    tc0 = np.unique(time[clean_idx])
    ident = target & np.isin(unit, uc0) & np.isin(time, tc0)
    target_idx = np.flatnonzero(ident)
    n_unident = int((target & ~ident).sum())
    uc = np.searchsorted(uc0, unit)
    tc = np.searchsorted(tc0, time)
    rows = np.concatenate([clean_idx, target_idx])
    u_r, t_r = uc[rows], tc[rows]
    nU, nT = len(uc0), len(tc0)
    if fe_dof([uc[clean_idx], tc[clean_idx]]) < nU + nT - 1:
        raise EstimationError(
            f"The clean rows of {what} split into disconnected groups of units and periods, "
            "so its unit and period effects are not identified."
        )
    Z = design(u_r, t_r, X[rows], nU, nT)
    n0 = clean_idx.size
    Z0, Z1 = Z[:n0], Z[n0:]
    y0 = y[clean_idx]
    if weight is not None:
        root = np.sqrt(np.asarray(weight, dtype=float)[clean_idx])
        Z0 = sparse.csr_matrix(Z0.multiply(root[:, None]))
        y0 = root * y0
    A = (Z0.T @ Z0).tocsc()
    try:
        lu = splu(A)
    except RuntimeError as exc:
        raise SingularModel(
            f"{what} is singular on its clean rows (collinear covariates?)."
        ) from exc
    _check_covariate_rank(A, nU + nT - 1, what)
    theta = lu.solve(Z0.T @ y0)
    if not np.all(np.isfinite(theta)):
        raise SingularModel(f"{what} is singular on its clean rows (collinear covariates?).")
    resid0 = y0 - Z0 @ theta
    tau = y[target_idx] - Z1 @ theta
    return Imputed(clean_idx, target_idx, tau, resid0, n_unident, lu, Z0, Z1)


def detached(fit: Imputed) -> Imputed:
    """``fit`` without its factorisation of ``Z0'Z0`` (SuperLU objects cannot be pickled),
    for keeping on a result; :func:`refactored` restores it."""
    return replace(fit, lu=None)


def refactored(fit: Imputed) -> Imputed:
    """``fit`` with the factorisation of ``Z0'Z0`` restored: the same matrix factorised the
    same way as in :func:`fit_untreated`, so the implied weights are bit-identical."""
    if fit.lu is not None:
        return fit
    return replace(fit, lu=splu((fit.Z0.T @ fit.Z0).tocsc()))


def implied_weights(fit: Imputed, Wt: np.ndarray) -> np.ndarray:
    """Weights ``v_0`` on the clean rows of the estimators ``Wt' tau_hat`` (n0 x k)."""
    rhs = np.asarray(fit.Z1.T @ Wt)
    gamma = np.column_stack([fit.lu.solve(rhs[:, j]) for j in range(rhs.shape[1])])
    return -np.asarray(fit.Z0 @ gamma)


# The leave-out drops the own cluster's terms unless the other clusters hold less than this
# share of the cell's squared weight: below it ``num - a_c b_c`` loses more than ~1e-8 of
# its digits to cancellation, and the in-sample value is kept (Stata's did_imputation
# flags such cells at 1e-5).
LEAVE_OUT_REST = 1e-8


def cell_cluster_codes(cells: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Codes ``0..`` of the (cell, cluster) pairs of the targets (:func:`tau_tilde`'s
    groups; one computation serves every estimand of a clustering)."""
    pair = np.unique(cells.astype(np.int64) * n_clusters + cluster, return_inverse=True)[1]
    return pair.ravel()


def tilde_mode(leave_out: bool, cr2: bool) -> str:
    """How eq. 8's residuals ``tau_hat - tau~`` are formed (:func:`_aux_coefs`): with
    ``leave_out`` Supplementary Appendix A.9's leave-out, else with ``cr2`` the
    Bell-McCaffrey adjustment of the in-sample average, else the in-sample average."""
    return "leave_out" if leave_out else "cr2" if cr2 else "in_sample"


def _aux_coefs(
    w: np.ndarray,
    cells: np.ndarray,
    pair: np.ndarray,
    *,
    mode: str,
    scale: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 8's weights, shared by :func:`tau_tilde`, :func:`outcome_shift` and
    :func:`_bm_target_parts`: ``a_c`` per (cell, cluster) pair (``w``, times ``scale`` if
    given, summed), each pair's cell, and per target ``r`` and ``p`` with
    ``tau~ = r sum_c a_c b_c - p a_own b_own`` (``scale`` folded in), and the rows where a
    leave-out fell back on the in-sample average.

    Eq. 8 is a least-squares fit of the pairs' ``b_c`` on ``a_c`` within the cell, with
    leverage ``h = a_own^2 / sum_c a_c^2``. A pair's in-sample residual ``e`` is shrunk like
    any OLS residual; the leave-out one (``mode="leave_out"``, A.9) is ``e / (1 - h)``, the
    jackknife's (CR3), which over-corrects; ``mode="cr2"`` gives ``e / sqrt(1 - h)``, Bell
    & McCaffrey's (2002) CR2 of this step, the weight ``lam = s / (1 + s)``, ``s = sqrt(1 -
    h)``, on the leave-out average and ``1 - lam`` on the in-sample one (the residual is
    linear in ``tau~``). Where the other clusters hold less than ``LEAVE_OUT_REST`` of the
    cell's squared weight (``h`` one) both keep the in-sample average, whose residual then
    adds nothing (CR2's Moore-Penrose convention); only the leave-out flags those rows."""
    ncell = int(cells.max()) + 1 if cells.size else 0
    npair = int(pair.max()) + 1 if pair.size else 0
    a = np.bincount(pair, weights=w if scale is None else w * scale, minlength=npair)
    cell_of_pair = np.zeros(npair, dtype=np.int64)
    cell_of_pair[pair] = cells
    den = np.bincount(cell_of_pair, weights=a * a, minlength=ncell)[cells]
    rest = den - a[pair] ** 2
    ok = rest > LEAVE_OUT_REST * den if mode != "in_sample" else np.zeros(len(w), bool)
    sc = 1.0 if scale is None else scale
    r_in = np.divide(sc, den, out=np.zeros(len(w)), where=den != 0)
    r_lo = np.divide(sc, rest, out=np.zeros(len(w)), where=ok)
    if mode == "cr2":
        s = np.sqrt(np.divide(rest, den, out=np.zeros(len(w)), where=ok))
        lam = np.where(ok, s / (1.0 + s), 0.0)
    else:
        lam = ok.astype(float)
    return a, cell_of_pair, lam * r_lo + (1.0 - lam) * r_in, lam * r_lo, ~ok & (mode == "leave_out")


def tau_tilde(
    w: np.ndarray,
    tau: np.ndarray,
    cells: np.ndarray,
    pair: np.ndarray,
    *,
    leave_out: bool,
    scale: np.ndarray | None = None,
    cr2: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``tau~`` of every target (BJS 2024, eq. 8) and the rows where the leave-out fell back.

    Within a cell ``g``, with ``a_c = sum_{it in c, g} w_it`` and ``b_c = sum_{it in c, g}
    w_it tau_hat_it`` over each cluster's targets (``pair``: the (cell, cluster) codes of
    :func:`cell_cluster_codes`), ``tau~_g = sum_c a_c b_c / sum_c a_c^2``: the constant
    that minimises the cluster scores' sum of squares ``sum_c (b_c - a_c tau~_g)^2``
    (Supplementary Appendix A.8), which is how the authors' Stata ``did_imputation`` forms
    it from its cluster-by-cell "smart weights". It equals the plain ``w``-weighted mean
    when the clusters' weight sums ``a_c`` in the cell are equal (e.g. unit clusters, one
    target per unit and cell, no unit weights). With clusters coarser than units, the
    clusters are the independent units of Theorem 3 and ``a_c``, ``b_c`` are theirs, as in
    Stata ``did_imputation`` (its cluster-by-``avgeffectsby`` sums); diff-diff 3.13 sums by
    unit whatever the clustering, so its SEs differ there and agree everywhere else. With
    ``leave_out`` (Supplementary Appendix A.9) a target's ``tau~`` drops its own cluster's
    ``a_c b_c`` and ``a_c^2``, which removes the downward bias of the in-sample average when
    cells hold few clusters; where the other clusters hold less than ``LEAVE_OUT_REST`` of
    the cell's squared weight the in-sample value is kept (a cell inside one cluster then
    adds nothing to its score), and those rows are flagged. Without ``leave_out`` but with
    ``cr2`` the in-sample residuals get Bell & McCaffrey's leverage correction instead
    (:func:`_aux_coefs`), between the two.

    With ``scale`` (one positive value per target, e.g. an exposure intensity) the cell's
    auxiliary model is ``tau~_it = beta_g * scale_it`` instead of a constant: the cluster
    scores' sum of squares ``sum_c (b_c - a_c beta_g)^2`` with ``a_c = sum w_it scale_it``
    is minimised by the same ratio, so only ``a_c`` and the final product change (Theorem
    3 is conservative for any auxiliary model; a better one is less so).
    """
    mode = tilde_mode(leave_out, cr2)
    a, cell_of_pair, r, p, fallback = _aux_coefs(w, cells, pair, mode=mode, scale=scale)
    b = np.bincount(pair, weights=w * tau, minlength=len(a))
    num = np.bincount(cell_of_pair, weights=a * b)[cells]
    return r * num - p * (a * b)[pair], fallback


def _near_sums(
    w: np.ndarray,
    cells: np.ndarray,
    cluster1: np.ndarray,
    n_clusters: int,
    near: Any,
    scale: np.ndarray | None,
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """:func:`_aux_coefs`' leave-out with a neighbourhood: ``A`` (cells x clusters, sparse) of eq. 8's
    ``a_c``, and per target whether the leave-out applies and ``sum_c a_c^2`` over its cell
    without every cluster ``near`` its own (``near``: clusters x clusters, symmetric, 1 on
    the diagonal; the identity gives :func:`_aux_coefs`' own-cluster leave-out)."""
    A = _cell_cluster_sums(w if scale is None else w * scale, cells, cluster1, n_clusters)
    A2 = A.multiply(A).tocsr()
    full = np.asarray(A2.sum(axis=1)).ravel()[cells]
    gone = _near_at(A2, near, cells, cluster1)
    ok = (full - gone) > LEAVE_OUT_REST * full
    return A, ok, np.where(ok, full - gone, full)


def _cell_cluster_sums(
    x: np.ndarray, cells: np.ndarray, cluster1: np.ndarray, n_clusters: int
) -> sparse.csr_matrix:
    """Sums of ``x`` by (cell, cluster), sparse (cells x clusters): a cell holds few of
    thousands of unit clusters, and the dense table made a neighbourhood product of 5,000
    units 20 times slower (a reviewer's timing)."""
    ncell = int(cells.max()) + 1 if cells.size else 0
    return sparse.csr_matrix((x, (cells, cluster1)), shape=(ncell, n_clusters))


def _near_at(
    M: sparse.csr_matrix, near: Any, cells: np.ndarray, cluster1: np.ndarray
) -> np.ndarray:
    """``(M near)[cell, cluster]`` of every target: what its cell's clusters near its own
    hold of ``M`` (``near`` symmetric)."""
    prod = sparse.csr_matrix(M @ sparse.csr_matrix(near))
    return _sparse_at(prod, cells, cluster1)


def _sparse_at(M: Any, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """``M[rows, cols]`` of a sparse matrix as a flat array, or without ``cols`` its rows
    ``M[rows]`` as a dense matrix (``M`` sparse or dense), indexed by owned copies: scipy's
    fancy indexing sets its index views' writeable flag from the inputs', which raises for
    a read-only array over an immutable buffer (a result's frozen arrays after pickling,
    e.g. in a joblib worker)."""
    r = np.array(rows, dtype=np.intp)
    if cols is None:
        out = M[r]
        return out.toarray() if sparse.issparse(out) else np.asarray(out, float)
    return np.asarray(M[r, np.array(cols, dtype=np.intp)]).ravel()


def tau_tilde_near(
    w: np.ndarray,
    tau: np.ndarray,
    cells: np.ndarray,
    cluster1: np.ndarray,
    n_clusters: int,
    near: Any,
    *,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """``tau~`` (eq. 8) leaving out every cluster ``near`` the target's own, not only its
    own (Supplementary Appendix A.9's leave-out, widened to the dependence a spatial kernel
    allows): with Conley SEs the clusters are units, and a cell's other units in the same
    neighbourhood share the target's spatial shock, so an average that keeps them takes
    part of that shock out of the target's residual ``tau_hat - tau~`` (measured: Conley
    SEs 20-25% short with same-region exposure and regional shocks, ``benchmarks/
    RESULTS.md``, session 18). ``near`` is symmetric with ones on the diagonal; the
    identity gives :func:`tau_tilde`'s leave-out. Where the other clusters hold less than
    ``LEAVE_OUT_REST`` of the cell's squared weight the in-sample value is kept."""
    A, ok, den = _near_sums(w, cells, cluster1, n_clusters, near, scale)
    AB = A.multiply(_cell_cluster_sums(w * tau, cells, cluster1, n_clusters)).tocsr()
    num = np.asarray(AB.sum(axis=1)).ravel()[cells]
    num = np.where(ok, num - _near_at(AB, near, cells, cluster1), num)
    tilde = np.divide(num, den, out=np.zeros(len(w)), where=den != 0)
    return tilde if scale is None else tilde * scale


def scores(
    fit: Imputed,
    Wt: np.ndarray,
    cells: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    *,
    leave_out: bool = True,
    cr2: bool | CR2Parts = False,
    scale: np.ndarray | None = None,
    near: Any = None,
) -> np.ndarray:
    """Cluster scores (G x k) of the estimators ``Wt' tau_hat`` (BJS 2024, Section 4.3).

    ``tau~`` is eq. 8's cluster-weighted cell average (:func:`tau_tilde`), with
    ``leave_out`` Supplementary Appendix A.9's version without the target's own cluster.
    With ``cr2`` the step-1 residuals of each cluster are first multiplied by
    ``(I - H_gg)^{-1/2}`` (Bell & McCaffrey 2002's bias-reduced linearisation, with the
    Moore-Penrose root of Pustejovsky & Tipton 2018 because the unit effects are nested in
    the clusters), undoing the shrinkage of residuals in high-leverage clusters. ``cr2``
    may also be :func:`cr2_parts` of the same clustering, computed once by the caller.
    Without ``leave_out``, ``cr2`` also corrects the targets' residuals ``tau_hat - tau~``
    for the leverage of their cluster in eq. 8's cell average (:func:`_aux_coefs`).

    Parameters
    ----------
    fit : Imputed
    Wt : ndarray (n_target, k)
        Estimand weights on the imputed targets.
    cells : ndarray (n_target,)
        Integer cells within which ``tau~`` averages ``tau_hat`` (e.g. cohort x event).
    cluster : ndarray (n_rows,)
        Cluster code of every row of the long table (codes ``0..n_clusters-1``).
    scale : ndarray (n_target,), optional
        ``tau~`` proportional to it within each cell (:func:`tau_tilde`).
    near : ndarray or sparse matrix (n_clusters, n_clusters), optional
        With ``leave_out``, ``tau~`` also leaves out the clusters near the target's own
        (:func:`tau_tilde_near`).
    """
    V0 = implied_weights(fit, Wt)
    if isinstance(cr2, tuple):
        resid0 = cr2[0]
    else:
        resid0 = cr2_parts(fit, cluster[fit.clean])[0] if cr2 else fit.resid0
    out = np.zeros((n_clusters, Wt.shape[1]))
    c0, c1 = cluster[fit.clean], cluster[fit.target]
    pair = cell_cluster_codes(cells, c1, n_clusters)
    for j in range(Wt.shape[1]):
        w = Wt[:, j]
        if near is not None and leave_out:
            tilde = tau_tilde_near(w, fit.tau, cells, c1, n_clusters, near, scale=scale)
        else:
            tilde = tau_tilde(
                w, fit.tau, cells, pair, leave_out=leave_out, scale=scale, cr2=cr2 is not False
            )[0]
        out[:, j] = np.bincount(c0, weights=V0[:, j] * resid0, minlength=n_clusters) + np.bincount(
            c1, weights=w * (fit.tau - tilde), minlength=n_clusters
        )
    return out


def outcome_shift(
    fit: Imputed,
    w: np.ndarray,
    cells: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    D0: np.ndarray,
    D1: np.ndarray,
    *,
    leave_out: bool = True,
    cr2: bool = False,
    roots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """How the estimate ``w' tau_hat`` and its cluster scores (:func:`scores`, same
    leave-out and CR2 rules) move when the outcomes move by ``D0`` (clean rows, n0 x B)
    and ``D1`` (targets, n_target x B), one column per move.

    Steps 1-2 and the scores are linear in the outcomes, so a shifted outcome's estimate
    and scores are the fit's plus these; many moves (the draws of a wild bootstrap) are a
    few matrix products. ``roots`` are :func:`cr2_parts`' per-cluster roots, computed
    once by the caller (needed with ``cr2``). Unweighted fits only: with step-1 weights
    ``Z0`` is on the weighted scale.

    Returns
    -------
    estimate : ndarray (B,)
    scores : ndarray (B, n_clusters)
    """
    c0, c1 = cluster[fit.clean], cluster[fit.target]
    ncell = int(cells.max()) + 1 if cells.size else 0
    dtheta = fit.lu.solve(np.asarray(fit.Z0.T @ D0))
    R0 = D0 - np.asarray(fit.Z0 @ dtheta)
    tau = D1 - np.asarray(fit.Z1 @ dtheta)
    estimate = w @ tau
    if cr2:
        if roots is None:
            roots = cr2_parts(fit, c0)[1]
        for rows, U, f in roots.values():
            R0[rows] = apply_root(U, f, R0[rows])
    # eq. 8 is linear in tau_hat given the weights: tau~ = r sum_{it in g} a_c(it) w_it
    # tau_it - p a_own b_own (_aux_coefs: the leave-out and CR2 weigh the own pair's term)
    pair = cell_cluster_codes(cells, c1, n_clusters)
    mode = tilde_mode(leave_out, cr2)
    a, _, r, p, _ = _aux_coefs(w, cells, pair, mode=mode, scale=scale)
    cell_sum = sparse.csr_matrix((a[pair] * w, (cells, np.arange(len(w)))), shape=(ncell, len(w)))
    tilde = r[:, None] * np.asarray(cell_sum @ tau)[cells]
    if p.any():
        pair_sum = sparse.csr_matrix((w, (pair, np.arange(len(w)))), shape=(len(a), len(w)))
        tilde -= p[:, None] * (a[:, None] * np.asarray(pair_sum @ tau))[pair]
    v0 = implied_weights(fit, w[:, None])[:, 0]
    by0 = sparse.csr_matrix((v0, (c0, np.arange(len(c0)))), shape=(n_clusters, len(c0)))
    by1 = sparse.csr_matrix((w, (c1, np.arange(len(c1)))), shape=(n_clusters, len(c1)))
    return estimate, np.asarray(by0 @ R0 + by1 @ (tau - tilde)).T


def cr2_parts(fit: Imputed, cluster0: np.ndarray) -> CR2Parts:
    """Step-1 residuals times ``(I - H_gg)^{-1/2}`` within each cluster (pseudo-inverse
    root: directions with leverage one, such as a unit's own effect, are left at zero).

    Also returns each cluster's root in low-rank form, ``(rows, U, f)`` with
    ``(I - H_gg)^{-1/2} = I + U diag(f) U'`` (:func:`apply_root`), and ``(Z0'Z0)^{-1}``,
    for :func:`bm_parts` and :func:`bm_gram`; a caller that needs both the scores and the
    vectors computes this once and passes it on.

    ``H_gg = Z_g A Z_g'`` (``A`` the inverse normal matrix on the cluster's own columns,
    ``k`` of them: its units, periods and covariate terms) has rank at most ``k``, usually
    far below the cluster's ``n_g`` rows. So the root comes from the thin SVD of the
    ``n_g x k`` matrix ``Z_g L`` (``A = L L'``): ``H_gg = U S^2 U'``, and
    ``(I - H_gg)^{-1/2}`` is 1 off ``U``'s span and ``(1 - s^2)^{-1/2}`` on it, hence
    ``f = (1 - s^2)^{-1/2} - 1`` (``-1`` where ``1 - s^2 <= 1e-8``: leverage one, the
    pseudo-inverse's zero). The same matrix as the eigendecomposition of the dense
    ``n_g x n_g`` ``I - H_gg`` (to rounding), at ``O(n_g k^2)`` instead of ``O(n_g^3)``;
    a cluster with at most ``2k`` rows keeps the dense eigendecomposition (``U`` its
    eigenvectors, ``f`` the inverse roots less one), which is cheaper there.
    """
    out = np.empty_like(fit.resid0)
    Z0 = fit.Z0.tocsr()
    # one dense inverse of the (units + periods + covariate terms) normal matrix serves
    # every cluster; SuperLU's many-right-hand-side solve is far slower at this size
    Ainv = np.linalg.inv((Z0.T @ Z0).toarray())
    roots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for g, rows, cols, Zd in _cluster_blocks(Z0, cluster0):
        Acc = Ainv[np.ix_(cols, cols)]
        if len(rows) > 2 * len(cols):
            U, sv, _ = np.linalg.svd(Zd @ _psd_factor(Acc), full_matrices=False)
            rest = 1.0 - sv**2
        else:
            # few rows per column (e.g. clusters of one unit): the dense eigenvectors
            # of I - H_gg are cheaper than a factor and an SVD
            H = Zd @ Acc @ Zd.T
            rest, U = np.linalg.eigh(np.eye(len(rows)) - (H + H.T) / 2)
        f = np.where(rest > 1e-8, 1.0 / np.sqrt(np.clip(rest, 1e-8, None)), 0.0) - 1.0
        out[rows] = apply_root(U, f, fit.resid0[rows])
        roots[int(g)] = (rows, U, f)
    return out, roots, Ainv


def _cluster_blocks(
    Z: sparse.csr_matrix, cluster: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Each cluster's label, rows, the columns its rows touch (sorted) and the dense
    ``rows x cols`` block of ``Z``. Read from the CSR arrays directly: scipy's fancy row
    and column indexing, once per cluster, cost more than the roots themselves."""
    Z = Z.copy()
    Z.sum_duplicates()
    order = np.argsort(cluster, kind="stable")
    labels, starts = np.unique(cluster[order], return_index=True)
    bounds = np.append(starts, len(order))
    indptr, indices, data = Z.indptr, Z.indices, Z.data
    for k, g in enumerate(labels):
        rows = order[bounds[k] : bounds[k + 1]]
        lo, hi = indptr[rows], indptr[rows + 1]
        counts = hi - lo
        # positions of every stored entry of these rows, in row order: each row's first
        # position plus the entry's rank within its row
        ranks = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pos = np.repeat(lo, counts) + ranks
        cols = np.unique(indices[pos])
        Zd = np.zeros((len(rows), len(cols)))
        local_rows = np.repeat(np.arange(len(rows)), counts)
        Zd[local_rows, np.searchsorted(cols, indices[pos])] = data[pos]
        yield int(g), rows, cols, Zd


def cr2_over_limits(n_params: int, cluster0: np.ndarray) -> list[str]:
    """What makes CR2 unaffordable for a fit with ``n_params`` step-1 parameters and clean
    rows in clusters ``cluster0`` (one phrase per exceeded limit; empty when affordable):
    :func:`cr2_parts` needs a dense inverse of the normal matrix and a root per cluster."""
    rows = int(np.bincount(cluster0).max(initial=0)) if cluster0.size else 0
    return [
        f"{n:,} {what} (at most {cap:,})"
        for n, cap, what in (
            (n_params, CR2_MAX_PARAMS, "step-1 parameters"),
            (rows, CR2_MAX_CLUSTER_ROWS, "untreated rows in the largest cluster"),
        )
        if n > cap
    ]


def _psd_factor(A: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = A`` for a symmetric positive semi-definite ``A`` (a principal
    block of an inverse normal matrix): Cholesky, or the eigen root where rounding makes
    ``A`` numerically singular."""
    A = (A + A.T) / 2
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        lam, P = np.linalg.eigh(A)
        return P * np.sqrt(np.clip(lam, 0.0, None))


def apply_root(U: np.ndarray, f: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``(I - H_gg)^{-1/2} X = X + U diag(f) U' X`` for one cluster's root
    (:func:`cr2_parts`); ``X`` is a vector or a matrix of the cluster's rows."""
    if X.ndim == 1:
        return X + U @ (f * (U.T @ X))
    return X + U @ (f[:, None] * (U.T @ X))


def _bm_target_parts(
    w: np.ndarray,
    cells: np.ndarray,
    cluster1: np.ndarray,
    n_clusters: int,
    scale: np.ndarray | None,
    leave_out: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_bm_target`'s matrix ``J = D - diag(alpha) E S`` in parts: ``alpha`` per
    target, ``S`` (cells x clusters) and ``d``, the entry of ``D`` in each target's own
    cluster column (``E`` picks each target's cell). :func:`bm_gram` uses them to form
    ``J'J`` and ``Z1'J`` without the dense targets x clusters matrix. These are the CR2
    variance's vectors, so without ``leave_out`` ``tau~`` is CR2's (:func:`_aux_coefs`)."""
    pair = cell_cluster_codes(cells, cluster1, n_clusters)
    mode = tilde_mode(leave_out, True)
    a, _, r, p, _ = _aux_coefs(w, cells, pair, mode=mode, scale=scale)
    own_a = a[pair]
    # d tau~_j / d tau_k = r_j a_k w_k (same cell) - p_j a_j w_k (same cell and cluster)
    cs = np.zeros((int(cells.max()) + 1 if cells.size else 0, n_clusters))
    np.add.at(cs, (cells, cluster1), w * r)
    ps = np.bincount(pair, weights=w * p, minlength=len(a))
    return w * own_a, cs, w * (1.0 + own_a * ps[pair])


def _bm_target(
    w: np.ndarray,
    cells: np.ndarray,
    cluster1: np.ndarray,
    n_clusters: int,
    scale: np.ndarray | None,
    leave_out: bool,
    near: Any = None,
) -> np.ndarray:
    """How each cluster's score moves with each target's ``tau_hat`` (targets x clusters):
    ``w`` on the cluster's own targets minus what its ``tau~`` (:func:`tau_tilde`, linear
    in ``tau_hat``) takes from every target of the same cell, i.e. the transpose of
    ``I - d tau~ / d tau_hat`` applied to the cluster's weights. With ``near``
    (:func:`tau_tilde_near`): ``d tau~_j / d tau_k = r_j a_k w_k`` unless ``k``'s cluster
    is near ``j``'s (and ``j``'s leave-out applies), ``r_j`` the scale over the
    denominator, so cluster ``h``'s entry for target ``k`` is ``w_k [k in h] - a_k w_k
    (cs_gh - near_hk ps_gh)`` with ``cs_gh`` the cell's sum of ``w_j r_j`` over ``h``'s
    targets and ``ps_gh`` the same over those whose leave-out applies."""
    if near is not None and leave_out:
        A, ok, den = _near_sums(w, cells, cluster1, n_clusters, near, scale)
        r = np.divide(1.0 if scale is None else scale, den, out=np.zeros(len(w)), where=den != 0)
        cs = _cell_cluster_sums(w * r, cells, cluster1, n_clusters).toarray()
        ps = _cell_cluster_sums(np.where(ok, w * r, 0.0), cells, cluster1, n_clusters).toarray()
        alpha = w * _sparse_at(A, cells, cluster1)
        rows = _sparse_at(near, cluster1)
        out = -alpha[:, None] * (cs[cells] - rows * ps[cells])
        out[np.arange(len(w)), cluster1] += w
        return out
    alpha, cs, d = _bm_target_parts(w, cells, cluster1, n_clusters, scale, leave_out)
    out = -alpha[:, None] * cs[cells]
    out[np.arange(len(w)), cluster1] += d
    return out


def _rooted_weights(
    fit: Imputed, w: np.ndarray, cluster: np.ndarray, cr2: CR2Parts | None
) -> tuple[np.ndarray, np.ndarray]:
    """The clean rows' implied weights times their cluster's ``(I - H_gg)^{-1/2}``
    (``A_g v_g``; each row's entry belongs to its own cluster's vector) and
    ``(Z0'Z0)^{-1}``, shared by :func:`bm_parts` and :func:`bm_gram`."""
    _, roots, Ainv = cr2 or cr2_parts(fit, cluster[fit.clean])
    v = implied_weights(fit, w[:, None])[:, 0]
    bv = np.zeros(len(fit.clean))
    for rows, U, f in roots.values():
        bv[rows] = apply_root(U, f, v[rows])
    return bv, Ainv


def bm_parts(
    fit: Imputed,
    w: np.ndarray,
    cells: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    *,
    scale: np.ndarray | None = None,
    row_weight: np.ndarray | None = None,
    leave_out: bool = True,
    cr2: CR2Parts | None = None,
    near: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The Bell & McCaffrey (2002) vectors ``c_g`` of the CR2 variance of ``w' tau_hat``
    as :func:`scores` computes it (with ``cr2``), one column per cluster, on the clean rows
    and on the targets (``cluster`` is per long-table row; ``cells`` and ``scale`` as in
    :func:`scores`; :func:`bm_vectors` places them on the long table).

    The scores are linear in the outcomes, ``s_g = c_g'y``. Under the working model
    (independent, homoskedastic errors ``u``; effects constant, or proportional to
    ``scale``, within the cells of ``tau~``) the systematic part of ``y`` drops out, the
    CR2 variance is ``sum_g (c_g'u)^2`` and its Satterthwaite degrees of freedom follow
    (:func:`satterthwaite_df`). ``c_g`` is the exact map: on the clean rows ``(I - H) P_g'
    A_g v_g`` (``A_g`` the cluster's ``(I - H_gg)^{-1/2}``, ``v`` the implied weights)
    through their residuals, and on the targets the cluster's weights less what ``tau~``
    takes (:func:`_bm_target`); the targets' residuals ``tau_hat - tau~`` also carry step
    1's error, which maps back onto the clean rows through ``-Z0 (Z0'Z0)^{-1} Z1'``. The
    vectors before 2026-12-01 left those two out, which moved the degrees of freedom either
    way (in a 15-region design to about half of these; ``benchmarks/RESULTS.md``, session
    10).
    Pieces fitted on the same long table add their vectors, so a combination of pieces
    gets its own degrees of freedom. With step-1 weights (``row_weight``, per long-table
    row) the working model's errors have variance proportional to ``1 / row_weight``: the
    clean part is already on the ``sqrt(row_weight)`` scale (:func:`fit_untreated`), and
    the targets' entries are put on it, divided by ``sqrt(row_weight)``, so that
    rescaling the weights leaves the degrees of freedom unchanged. ``cr2`` is
    :func:`cr2_parts` of the same clustering when the caller already has it; ``near`` as
    in :func:`scores`.
    """
    bv, Ainv = _rooted_weights(fit, w, cluster, cr2)
    Z0 = fit.Z0.tocsr()
    C0 = np.zeros((len(fit.clean), n_clusters))
    C0[np.arange(len(fit.clean)), cluster[fit.clean]] = bv
    J1 = _bm_target(w, cells, cluster[fit.target], n_clusters, scale, leave_out, near)
    # the clean rows' residuals, (I - H) A_g v_g, and step 1's error in the targets'
    # residuals, -Z0 (Z0'Z0)^{-1} Z1' J1, in one product with the inverse
    C0 -= np.asarray(Z0 @ (Ainv @ (np.asarray(Z0.T @ C0) + np.asarray(fit.Z1.T @ J1))))
    if row_weight is not None:
        J1 = J1 / np.sqrt(row_weight[fit.target])[:, None]
    return C0, J1


def bm_vectors(fit: Imputed, parts: tuple[np.ndarray, np.ndarray], n_rows: int) -> np.ndarray:
    """:func:`bm_parts` on the rows of the long table (rows x clusters), where pieces
    fitted on it add their vectors."""
    C0, C1 = parts
    C = np.zeros((n_rows, C0.shape[1]))
    C[fit.clean] = C0
    C[fit.target] = C1
    return C


def bm_gram(
    fit: Imputed,
    w: np.ndarray,
    cells: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    *,
    scale: np.ndarray | None = None,
    row_weight: np.ndarray | None = None,
    leave_out: bool = True,
    cr2: CR2Parts | None = None,
) -> np.ndarray:
    """``C'C`` (clusters x clusters) of :func:`bm_parts`' vectors without forming them.

    The dense vectors take (clean rows + targets) x clusters, gigabytes with thousands of
    unit clusters, and their Gram as many multiplications again. Writing the clean part
    as ``C0 = (I - H) B - Z0 K`` with ``B`` the block-sparse ``A_g v_g`` (one column per
    cluster, non-zero on its own rows), ``K = (Z0'Z0)^{-1} Z1'J`` and ``H`` the hat matrix
    of ``Z0``, the cross terms vanish because ``(I - H) Z0 = 0``:

    ``C0'C0 = B'B - (Z0'B)' (Z0'Z0)^{-1} (Z0'B) + (Z1'J)' (Z0'Z0)^{-1} (Z1'J)``,

    with ``B'B`` diagonal. The targets' block ``J = D - diag(alpha) E S``
    (:func:`_bm_target_parts`; ``D`` one entry per row, ``E`` the cell indicator) gives
    ``J'J`` from per-cluster and per-cell sums. Same arguments as :func:`bm_parts`.
    The first two terms nearly cancel, so rounding grows with the square of the
    covariates' conditioning where :func:`bm_parts`' grows with it: equal to 1e-10 on the
    test worlds, but off by a few percent well before the collinearity that
    :func:`fit_untreated` refuses (a reviewer's toy fit: df 3.008 against 3.217 at condition
    2e13, 3.2247 against 3.2256 at 2e11; a breaker's covariate nearly constant within units:
    0.85-2.7% at condition 4e9). Callers use :func:`bm_parts` where the vectors fit
    (``BM_MAX_ENTRIES``).
    """
    bv, Ainv = _rooted_weights(fit, w, cluster, cr2)
    c0, c1 = cluster[fit.clean], cluster[fit.target]
    n0, n1 = len(c0), len(c1)
    B = sparse.csr_matrix((bv, (np.arange(n0), c0)), shape=(n0, n_clusters))
    P = np.asarray((fit.Z0.T @ B).todense())
    alpha, cs, d = _bm_target_parts(w, cells, c1, n_clusters, scale, leave_out)
    ncell = cs.shape[0]
    D = sparse.csr_matrix((d, (np.arange(n1), c1)), shape=(n1, n_clusters))
    E = sparse.csr_matrix((alpha, (np.arange(n1), cells)), shape=(n1, ncell))
    R = np.asarray((fit.Z1.T @ D).todense()) - np.asarray((fit.Z1.T @ E) @ cs)
    M = R.T @ (Ainv @ R) - P.T @ (Ainv @ P)
    M[np.diag_indices(n_clusters)] += np.bincount(c0, weights=bv * bv, minlength=n_clusters)
    # J'J on the working model's scale: targets divided by sqrt(row_weight) (bm_parts)
    s2 = np.ones(n1) if row_weight is None else 1.0 / row_weight[fit.target]
    M[np.diag_indices(n_clusters)] += np.bincount(c1, weights=s2 * d * d, minlength=n_clusters)
    F = np.zeros((n_clusters, ncell))
    np.add.at(F, (c1, cells), s2 * d * alpha)
    X = F @ cs
    e = np.bincount(cells, weights=s2 * alpha * alpha, minlength=ncell)
    return M - X - X.T + cs.T @ (e[:, None] * cs)


def gram_df(M: np.ndarray) -> float:
    """``(tr M)^2 / ||M||_F^2``: the Satterthwaite degrees of freedom of ``sum_g (c_g'u)^2``
    from the Gram matrix ``M = C'C`` of its vectors (:func:`satterthwaite_df`)."""
    # divided by its largest entry first: the entries scale like 1 / weight, and squaring
    # them raw under- or overflowed with weights near 1e160 (a breaker; df 3.953 -> error)
    big = float(np.max(np.abs(M))) if M.size else 0.0
    if not big > 0 or not np.isfinite(big):
        return np.inf
    M = M / big
    tr = float(np.trace(M))
    return tr**2 / float(np.sum(M**2)) if tr > 0 else np.inf


def satterthwaite_df(*blocks: np.ndarray) -> float:
    """``(sum_g c_g'c_g)^2 / sum_{g,h} (c_g'c_h)^2``: the Satterthwaite degrees of freedom
    of ``sum_g (c_g'u)^2`` for independent homoskedastic ``u`` (Bell & McCaffrey 2002;
    Imbens & Kolesar 2016, Section 6, recommend them with few clusters), with the vectors
    ``c_g`` given as one or more blocks of rows (rows x clusters each)."""
    return gram_df(sum(B.T @ B for B in blocks))
