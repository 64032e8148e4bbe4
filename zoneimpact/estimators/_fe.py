"""Absorbing fixed effects without dummy matrices (private helpers for the DiD estimators).

:func:`demean` applies the within transformation for one or several sets of fixed effects
(unit, period, ...) by the method of alternating projections (Guimarães & Portugal 2010;
Gaure 2013, "OLS with multiple high dimensional category variables", *CSDA* 66, the
algorithm of R ``lfe`` and ``fixest``): subtract the (weighted) group means of each fixed
effect in turn until nothing changes. Group sums use ``np.bincount``, so memory stays
O(n x k) whatever the number of levels and unbalanced panels need no special care. By the
Frisch-Waugh-Lovell theorem, OLS of demeaned ``y`` on demeaned ``X`` gives the coefficients
and residuals of the regression with the full set of dummies.

Why by hand: statsmodels and linearmodels absorb one-way effects only (``PanelOLS`` handles
two but needs a balanced MultiIndex frame and exposes no reusable demeaning routine), and
pyfixest is a peer package we compare against, not a runtime dependency.

:class:`TwoWayWithin` is the exact two-way (unit + period) version without iterations,
which also projects one-hot blocks of columns (saturated event-study dummies) from
tables of counts, never forming them.

:func:`fe_dof` counts the parameters a set of fixed effects uses (levels minus redundancies;
the redundancy between two effects is counted exactly from the connected components of
their bipartite graph), and :func:`cluster_ssc_k` turns it into the ``K`` of fixest's
default small-sample correction for clustered standard errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ..errors import EstimationError

__all__ = [
    "factorize",
    "demean",
    "fe_dof",
    "cluster_ssc_k",
    "cluster_scores",
    "cluster_codes",
    "check_cluster",
    "absorb",
    "drop_nested",
    "TwoWayWithin",
]


def factorize(values: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    """Integer codes ``0..G-1`` for arbitrary labels (NaN not allowed)."""
    codes, _ = pd.factorize(np.asarray(values), sort=True)
    if (codes < 0).any():
        raise EstimationError("Fixed-effect or cluster identifiers contain missing values.")
    return codes.astype(np.intp)


def _as_codes(fe: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    out = []
    for k, f in enumerate(fe):
        f = np.asarray(f)
        if f.shape != (n,):
            raise EstimationError(
                f"Fixed effect {k} has shape {f.shape}; expected ({n},) to match the data."
            )
        if np.issubdtype(f.dtype, np.integer) and f.size and f.min() >= 0:
            f = f.astype(np.intp, copy=False)
            # Codes with gaps (levels absent from these rows, e.g. after subsetting) would
            # leave empty groups: 0/0 group means in the sweeps and phantom levels in the
            # degree-of-freedom counts. Compact them to 0..G-1.
            out.append(f if np.bincount(f).all() else factorize(f))
        else:
            out.append(factorize(f))
    return out


def demean(
    X: np.ndarray,
    fe: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    tol: float = 1e-12,
    maxiter: int = 100_000,
) -> np.ndarray:
    """Residuals of ``X`` after absorbing fixed effects (weighted within transformation).

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n,)`` or ``(n, k)``; each column is demeaned separately. Not modified.
    fe : list of numpy.ndarray
        One array of length ``n`` per fixed effect: integer codes ``0..G-1`` or any
        labels (factorized here). Panels may be unbalanced: groups of any size work.
    weights : numpy.ndarray, optional
        Positive observation weights (weighted least squares); ``None`` = equal weights.
    tol : float
        Stop when a full sweep changes no entry by more than ``tol * max|x - mean(x)|``
        for the column (the error left is about that change over one minus the
        convergence rate, negligible at the default for any connected panel). Relative
        to the centred column, so that neither an offset (a covariate in levels such as
        1e9 + x) nor the column's units loosen it: measured against ``max(1, max|x|)``,
        an offset of 1e9 moved an unbalanced imputation ATT from 86.81 to 94.46 (a
        breaker's check, ``benchmarks/RESULTS.md`` session 19).
    maxiter : int
        Maximum number of sweeps over the fixed effects.

    Returns
    -------
    numpy.ndarray
        Same shape as ``X``: ``X`` minus its weighted projection on the dummy space, i.e.
        the residuals of the weighted regression of each column on all fixed-effect dummies.

    Notes
    -----
    Method of alternating projections (Gaure 2013, Algorithm 3.1): each sweep replaces
    ``x`` by ``x - mean_w(x | group)`` for every fixed effect in turn; the iterates converge
    to the projection on the orthogonal complement of the span of all dummies. With one
    fixed effect a single sweep is exact; with two on a balanced panel, one sweep too.

    Raises
    ------
    EstimationError
        If the sweeps do not converge within ``maxiter``.
    """
    X = np.asarray(X, dtype=float)
    one_d = X.ndim == 1
    Z = X.reshape(len(X), -1).copy() if one_d else X.copy()
    n = Z.shape[0]
    codes = _as_codes(fe, n)
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or (w <= 0).any():
            raise EstimationError("Weights must be finite, positive, one per observation.")
    if not codes or Z.shape[1] == 0:
        return Z.ravel() if one_d else Z
    sizes = [int(c.max()) + 1 if c.size else 0 for c in codes]
    # Group-sum operators: sparse (levels x n) indicator matrices weighted by w, so one
    # sparse product gives the weighted group sums of every column at once.
    ops = [
        sparse.csr_matrix((w, (c, np.arange(n))), shape=(g, n))
        for c, g in zip(codes, sizes, strict=True)
    ]
    wsum = [np.asarray(op.sum(axis=1)).ravel() for op in ops]
    # the constant lies in every fixed effect's span: removing the weighted mean first
    # changes no residual and keeps the sweeps' arithmetic at the column's variation
    Z -= (w @ Z) / w.sum()
    scale = np.abs(Z).max(axis=0, initial=0.0) * tol

    def sweep(block: np.ndarray) -> np.ndarray:
        change = np.zeros(block.shape[1])
        for c, op, ws in zip(codes, ops, wsum, strict=True):
            means = (op @ block) / ws[:, None]
            block -= means[c]
            change = np.maximum(change, np.abs(means).max(axis=0, initial=0.0))
        return change

    if len(codes) == 1:
        sweep(Z)
        return Z.ravel() if one_d else Z
    active = np.flatnonzero(scale > 0)  # a column now all zero is done
    for _ in range(maxiter):
        if active.size == 0:
            break
        if active.size == Z.shape[1]:
            change = sweep(Z)  # in place: no copy while every column is still moving
        else:
            block = Z[:, active]
            change = sweep(block)
            Z[:, active] = block
        active = active[change > scale[active]]
        if active.size == 0:
            break
    else:
        raise EstimationError(
            f"Fixed-effect demeaning did not converge in {maxiter} sweeps ({active.size} "
            "column(s) left); the fixed effects may be poorly connected. Raise maxiter or "
            "loosen tol."
        )
    return Z.ravel() if one_d else Z


def collinear_given_effects(schur: np.ndarray) -> bool:
    """Whether the covariates' Schur complement given the fixed effects is singular:
    judged on the unit-diagonal scaling, so that the covariates' units do not matter, by
    an eigenvalue at or below 1e-12 of the largest (or a non-finite one)."""
    schur = 0.5 * (schur + schur.T)
    dg = np.sqrt(np.clip(np.diag(schur), 1e-300, None))
    lam = np.linalg.eigvalsh(schur / np.outer(dg, dg))
    return bool(not np.all(np.isfinite(lam)) or lam[0] <= 1e-12 * max(lam[-1], 1.0))


def fe_dof(fe: Sequence[np.ndarray]) -> int:
    """Number of free parameters of a set of fixed effects.

    Sum of the levels minus the redundancies: for two effects the redundancy is exactly
    the number of connected components of their bipartite graph (Abowd, Creecy & Kramarz
    2002); each further effect is counted with one redundancy, as fixest does.
    """
    if not fe:
        return 0
    n = len(np.asarray(fe[0]))
    codes = _as_codes(fe, n)
    sizes = [int(c.max()) + 1 for c in codes]
    if len(codes) == 1:
        return sizes[0]
    g1, g2 = sizes[0], sizes[1]
    graph = sparse.coo_matrix(
        (np.ones(n), (codes[0], g1 + codes[1])), shape=(g1 + g2, g1 + g2)
    ).tocsr()
    ncomp, _ = connected_components(graph, directed=False)
    return sum(sizes) - ncomp - (len(codes) - 2)


def _nested(fe_codes: np.ndarray, cluster: np.ndarray) -> bool:
    """True if every level of the fixed effect lies within a single cluster."""
    # write one cluster per level (any of them), then every row must agree with it: O(n)
    cluster = np.asarray(cluster)
    ref = np.empty(int(fe_codes.max()) + 1 if fe_codes.size else 0, dtype=cluster.dtype)
    ref[fe_codes] = cluster
    return bool(np.array_equal(ref[fe_codes], cluster))


def cluster_ssc_k(n_coef: int, fe: Sequence[np.ndarray], cluster: np.ndarray) -> int:
    """``K`` of fixest's default clustered small-sample correction.

    fixest's default ``ssc(adj = TRUE, fixef.K = "nested", cluster.adj = TRUE)`` scales the
    cluster-robust sandwich by ``G/(G-1) * (n-1)/(n-K)`` with
    ``K = n_coef + sum(levels) - (n_fe - 1) - sum(levels of FE nested in the cluster)
    + (number of nested FE)`` (see fixest issue #554 and pyfixest ``get_ssc``). For unit
    and period effects clustered by unit this gives ``K = n_coef + T``.
    """
    if not fe:
        return n_coef
    n = len(cluster)
    codes = _as_codes(fe, n)
    sizes = [int(c.max()) + 1 for c in codes]
    k_fe = sum(sizes) - (len(codes) - 1)
    nested = [s for c, s in zip(codes, sizes, strict=True) if _nested(c, cluster)]
    return n_coef + k_fe - sum(nested) + len(nested)


def cluster_scores(scores: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Sum the rows of ``scores`` (n x k) within clusters (integer codes) -> (G x k)."""
    scores = np.asarray(scores, dtype=float)
    s2 = scores.reshape(len(scores), -1)
    g = int(cluster.max()) + 1
    out = np.empty((g, s2.shape[1]))
    for j in range(s2.shape[1]):
        out[:, j] = np.bincount(cluster, weights=s2[:, j], minlength=g)
    return out


def check_cluster(cluster: object) -> None:
    """A cluster option is a column name (or None for units); anything else is an error."""
    if cluster is not None and (not isinstance(cluster, str | int) or isinstance(cluster, bool)):
        raise EstimationError(
            f"cluster must be a column name (e.g. 'region') or None for units; received "
            f"{cluster!r} ({type(cluster).__name__})."
        )


def cluster_codes(panel: object, data: pd.DataFrame, cluster: str | None) -> tuple[np.ndarray, str]:
    """Integer cluster codes aligned with ``data`` (rows of ``panel.data``).

    ``cluster`` names a column of ``panel.data`` or of ``panel.geography`` (mapped through the
    unit); ``None`` clusters by unit. Returns the codes and the name used.
    """
    check_cluster(cluster)
    resolve = getattr(panel, "column_for", None)
    cluster = resolve(cluster) if resolve is not None else cluster
    if cluster is None or cluster == "unit":
        return factorize(data["unit"].to_numpy()), "unit"
    if cluster in data.columns:
        values = data[cluster]
    else:
        geo = getattr(panel, "geography", None)
        if geo is None or cluster not in geo.columns:
            geo_cols = [] if geo is None else list(geo.columns)
            raise EstimationError(
                f"Cluster variable {cluster!r} is neither a panel column nor a geography "
                f"column (panel columns: {list(data.columns)}; geography: {geo_cols}). Pass "
                "cluster=None to cluster by unit."
            )
        values = data["unit"].map(geo[cluster])
    if values.isna().any():
        u = data.loc[values.isna().to_numpy(), "unit"].iloc[0]
        u = u.item() if isinstance(u, np.generic) else u
        raise EstimationError(
            f"Cluster variable {cluster!r} is missing for unit {u!r}; fill it or choose "
            "another cluster variable."
        )
    return factorize(values.to_numpy()), cluster


# ---------------------------------------------------------------------- direct absorption
def drop_nested(fe: Sequence[np.ndarray]) -> list[int]:
    """Indices of the fixed effects to keep after dropping those nested in another.

    A fixed effect whose every level of a finer effect falls in a single one of its own
    levels (``time`` within ``region x time``; ``region`` within ``unit``) spans a subspace
    of the finer effect's dummies, so it adds no parameter and can be left out of the
    absorption. Of two identical partitions the first is kept.
    """
    n = len(np.asarray(fe[0])) if fe else 0
    codes = _as_codes(fe, n)
    sizes = [int(c.max()) + 1 if c.size else 0 for c in codes]
    keep = list(range(len(codes)))
    for a in range(len(codes)):
        for b in range(len(codes)):
            if a == b or a not in keep or b not in keep or sizes[b] < sizes[a]:
                continue
            if sizes[a] == sizes[b] and b > a:
                continue  # of two equal partitions, drop the later one (handled at a > b)
            # a is nested in b when each level of b meets exactly one level of a: write
            # any one a-value per b-level, then every row must agree with it (O(n)).
            ref = np.zeros(sizes[b], dtype=np.intp)
            ref[codes[b]] = codes[a]
            if np.array_equal(ref[codes[b]], codes[a]):
                keep.remove(a)
    return keep


def absorb(
    X: np.ndarray,
    fe: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    max_dense: int = 4000,
    max_block: int = 800,
) -> tuple[np.ndarray, int]:
    """Residuals of ``X`` after absorbing fixed effects, exactly, and the rank of the FE.

    Same projection as :func:`demean` but without iterations when all fixed effects but
    the largest have few levels in total (unit + year, + region x year, + city x year):
    the largest effect (``p``, e.g. firms) is swept out by group means and the others
    (dummies ``D`` with ``L <= max_dense`` columns) are partialled out of the result by
    Frisch-Waugh-Lovell (Frisch & Waugh 1933; Lovell 1963; the ``areg`` strategy)::

        M x = M_p x - M_p D (D' W M_p D)^+ D' W M_p x

    where ``M_p`` is the W-weighted within-``p`` transformation. ``D' W M_p D`` is the
    ``L x L`` matrix ``D'WD - C' diag(1/w_p) C`` with ``C`` the (sparse) ``p x level`` table
    of weights, built from sparse products in O(n) (:func:`_secondary_gram`); its
    pseudo-inverse comes from an eigendecomposition whose rank is the exact number of
    parameters the secondary effects add beyond ``p`` (:func:`_secondary_coefficients`;
    Abowd, Creecy & Kramarz 2002 count it for two effects; here it is exact for any
    number). With larger ``L`` or blocks it falls back to :func:`demean` (alternating
    projections) and :func:`fe_dof` (exact for two effects once nested ones are dropped,
    one redundancy per further effect as fixest counts).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n,)`` or ``(n, k)``; not modified.
    fe : list of numpy.ndarray
        One code/label array of length ``n`` per fixed effect.
    weights : numpy.ndarray, optional
        Positive observation weights.
    max_dense : int
        Largest total number of secondary levels handled by the direct solve.
    max_block : int
        Largest connected block of secondary levels pseudo-inverted directly (the
        ``L x L`` matrix is block diagonal over groups of levels linked through the main
        effect, e.g. one ``T x T`` block per city for unit + city x year).

    Returns
    -------
    Z : numpy.ndarray
        Same shape as ``X``: the residuals of the weighted regression on all dummies.
    rank : int
        Number of linearly independent fixed-effect dummies (the FE's share of ``K`` in
        the small-sample factor of statsmodels with dummy variables).
    """
    X = np.asarray(X, dtype=float)
    one_d = X.ndim == 1
    X2 = X.reshape(len(X), -1)
    n = X2.shape[0]
    codes = _as_codes(fe, n)
    if not codes:
        return X.copy(), 0
    w = _check_weights(weights, n)
    codes = [codes[i] for i in drop_nested(codes)]
    # compact codes: levels absent from these rows would add empty dummies
    codes = [c if np.bincount(c).all() else factorize(c) for c in codes]
    sizes = [int(c.max()) + 1 for c in codes]
    main = int(np.argmax(sizes))
    p, gp = codes[main], sizes[main]
    rest = [(c, g) for i, (c, g) in enumerate(zip(codes, sizes, strict=True)) if i != main]
    if sum(g for _, g in rest) > max_dense:
        Z = demean(X2, codes, weights=weights)
        return (Z.ravel() if one_d else Z), fe_dof(codes)
    gw = None if weights is None else w
    wp = np.bincount(p, weights=w, minlength=gp)
    # columns as contiguous rows (k, n): bincount on strided columns would copy each time
    Zt = np.array(X2.T, dtype=float, order="C")
    for col in Zt:
        col -= (_gsum(p, gp, col, gw) / wp)[p]
    if not rest:
        Z = Zt.T
        return (Z.ravel() if one_d else Z), gp
    A, floor = _secondary_gram(p, gp, rest, w, wp)
    # D' W M_p X (M_p is W-symmetric)
    b = np.stack(
        [np.concatenate([_gsum(c, g, col, gw) for c, g in rest]) for col in Zt],
        axis=1,
    )
    solved = _secondary_coefficients(A, b, floor, max_block)
    if solved is None:
        Z = demean(X2, codes, weights=weights)
        return (Z.ravel() if one_d else Z), fe_dof(codes)
    lam, rank_sec = solved
    offsets = np.cumsum([0] + [g for _, g in rest])
    for j, col in enumerate(Zt):
        fitted = np.zeros(n)
        for (c, _), o in zip(rest, offsets[:-1], strict=True):
            fitted += lam[o:, j][c]
        fitted -= (_gsum(p, gp, fitted, gw) / wp)[p]
        col -= fitted
    Z = Zt.T
    return (Z.ravel() if one_d else Z), gp + rank_sec


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """The observation weights (ones when None), checked finite and positive."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w <= 0).any():
        raise EstimationError("Weights must be finite, positive, one per observation.")
    return w


def _gsum(c: np.ndarray, g: int, col: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Group sums of ``col`` (weighted by ``w`` unless None) over the ``g`` levels ``c``."""
    return np.bincount(c, weights=col if w is None else w * col, minlength=g)


def _secondary_gram(
    p: np.ndarray,
    gp: int,
    rest: list[tuple[np.ndarray, int]],
    w: np.ndarray,
    wp: np.ndarray,
) -> tuple[sparse.csr_matrix, float]:
    """``A = D' W M_p D = D'WD - C' diag(1/w_p) C`` of the secondary dummies ``D``
    (:func:`absorb`), kept sparse (O(nnz) memory), and the eigenvalue floor of its
    pseudo-inverse. ``D'WD`` has the level weights on its diagonal and
    cross-tabulations of pairs of effects off it; ``C`` is the table of weights of
    (main level, secondary level)."""
    n_sec = sum(g for _, g in rest)
    offsets = np.cumsum([0] + [g for _, g in rest])
    cols = np.concatenate([c + o for (c, _), o in zip(rest, offsets[:-1], strict=True)])
    wt = np.tile(w, len(rest))
    DtD = sparse.coo_matrix((wt, (cols, cols)), shape=(n_sec, n_sec)).tocsr()
    for a in range(len(rest)):
        for b2 in range(a + 1, len(rest)):
            ca, cb = rest[a][0] + offsets[a], rest[b2][0] + offsets[b2]
            cross = sparse.coo_matrix((w, (ca, cb)), shape=(n_sec, n_sec)).tocsr()
            DtD = DtD + cross + cross.T
    C = sparse.coo_matrix((wt, (np.tile(p, len(rest)), cols)), shape=(gp, n_sec)).tocsr()
    Cs = sparse.diags(1.0 / np.sqrt(wp)) @ C
    A = (DtD - Cs.T @ Cs).tocsr()
    # one absolute threshold (the largest level weight): a block that is redundant as a
    # whole (a city x year met by a single unit) has only rounding-noise eigenvalues
    return (A + A.T) / 2, float(DtD.diagonal().max()) * 1e-10


def _secondary_coefficients(
    A: sparse.csr_matrix, b: np.ndarray, floor: float, max_block: int
) -> tuple[np.ndarray, int] | None:
    """``lambda = A^+ b`` and the rank of ``A``, block by block: ``A`` is block diagonal
    over the connected groups of secondary levels (e.g. one block of T levels per city for
    unit + city x year). None when a block exceeds ``max_block`` levels."""
    n_blocks, label = connected_components(A, directed=False)
    blocks = [np.flatnonzero(label == c) for c in range(n_blocks)]
    if max(len(idx) for idx in blocks) > max_block:
        return None
    lam = np.zeros_like(b)
    rank_sec = 0
    for idx in blocks:
        ev, V = np.linalg.eigh(A[idx][:, idx].toarray())
        keep = ev > floor
        lam[idx] = V[:, keep] @ ((V[:, keep].T @ b[idx]) / ev[keep][:, None])
        rank_sec += int(keep.sum())
    return lam, rank_sec


# ---------------------------------------------------------------------- two-way, exact
class TwoWayWithin:
    r"""Exact within transformation for two crossed fixed effects (unit and period).

    With ``p`` the larger effect (units) and ``s`` the smaller (periods, ``L`` levels),
    Frisch-Waugh-Lovell gives the residual maker of both sets of dummies as

    .. math:: M = M_p - M_p S (S' M_p S)^{+} S' M_p ,

    where ``M_p`` subtracts unit means and ``S`` holds the period dummies (the strategy of
    :func:`absorb`; Gaure 2013, Section 3). ``A = S' M_p S = diag(n_t) - N' diag(1/n_i) N``
    (``N`` the unit x period table of counts) is only ``L x L`` and is pseudo-inverted once,
    so every projection below is exact (no iterations) on balanced and unbalanced panels,
    and the rank deficiency of disconnected panels is handled by the pseudo-inverse.

    Besides dense columns, it projects **one-hot** blocks (indicator columns with at most
    one 1 per row, such as the saturated cohort x event-time dummies of Sun & Abraham 2021,
    eq. 27) without forming them: every product they enter reduces to unit x cell,
    period x cell and cluster x cell tables of counts and sums, so memory is O(n) instead
    of O(n x columns).

    Parameters
    ----------
    unit, period : numpy.ndarray
        Codes or labels of the two fixed effects, one per observation (unweighted).
    """

    def __init__(self, unit: np.ndarray, period: np.ndarray) -> None:
        n = len(np.asarray(unit))
        a, b = _as_codes([unit, period], n)
        ga, gb = int(a.max()) + 1, int(b.max()) + 1
        # the larger effect is swept by group means, the smaller inverted densely
        self.p, self.s = (a, b) if ga >= gb else (b, a)
        self.gp, self.gs = max(ga, gb), min(ga, gb)
        if self.gs > 20_000:
            raise EstimationError(
                f"Both fixed effects have many levels ({ga} and {gb}); the exact two-way "
                "projection inverts a dense matrix of the smaller one. Use demean()."
            )
        self.n = n
        self.wp = np.bincount(self.p, minlength=self.gp).astype(float)
        self.ws = np.bincount(self.s, minlength=self.gs).astype(float)
        ones = np.ones(n)
        # N: unit x period counts; Nw = diag(1/n_i) N
        self.N = sparse.csr_matrix((ones, (self.p, self.s)), shape=(self.gp, self.gs))
        self.Nw = sparse.diags(1.0 / self.wp) @ self.N
        A = np.diag(self.ws) - (self.N.T @ self.Nw).toarray()
        ev, V = np.linalg.eigh((A + A.T) / 2)
        # absolute floor from the largest level count, as in absorb(): the null space of A
        # (one direction per connected component) has rounding-noise eigenvalues only
        keep = ev > self.ws.max() * 1e-10
        self.Ainv = (V[:, keep] / ev[keep]) @ V[:, keep].T
        self.rank = self.gp + int(keep.sum())

    # ------------------------------------------------------------------ dense columns
    def _coef(self, Sp: np.ndarray, Ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-effect coefficients (alpha by unit, gamma by period) from group sums."""
        b = Ss - self.Nw.T @ Sp  # S' M_p x
        gamma = self.Ainv @ b
        alpha = (Sp - self.N @ gamma) / self.wp[:, None]
        return alpha, gamma

    def residualize(self, X: np.ndarray) -> np.ndarray:
        """``M X``: residuals of each column on both sets of dummies (new array)."""
        X = np.asarray(X, dtype=float)
        one_d = X.ndim == 1
        Xt = np.array(X.reshape(self.n, -1).T, order="C")  # columns as contiguous rows
        Sp = np.stack([np.bincount(self.p, col, self.gp) for col in Xt], axis=1)
        Ss = np.stack([np.bincount(self.s, col, self.gs) for col in Xt], axis=1)
        alpha, gamma = self._coef(Sp, Ss)
        for j, col in enumerate(Xt):
            col -= alpha[self.p, j]
            col -= gamma[self.s, j]
        return Xt[0] if one_d else Xt.T

    # ------------------------------------------------------------------ one-hot block
    def onehot(self, col: np.ndarray, k: int) -> OneHotBlock:
        """Gram matrix ``D'MD`` of the one-hot block ``D[r, col[r]] = 1`` (``col = -1``:
        no 1 in row ``r``) and what its cross-products and scores need.
        """
        col = np.asarray(col, dtype=np.intp)
        rows = np.flatnonzero(col >= 0)
        c = col[rows]
        counts = np.bincount(c, minlength=k).astype(float)
        # unit x cell counts (sparse) and period x cell counts (dense, L x k)
        SD = sparse.csr_matrix((np.ones(rows.size), (self.p[rows], c)), shape=(self.gp, k))
        TD = np.bincount(self.s[rows] * k + c, minlength=self.gs * k).reshape(self.gs, k)
        b = TD - (self.Nw.T @ SD).toarray()  # S' M_p D
        gamma = self.Ainv @ b
        # D'M_p D = diag(counts) - SD' diag(1/n_i) SD; then subtract the period part
        dpd = np.diag(counts) - (SD.T @ sparse.diags(1.0 / self.wp) @ SD).toarray()
        gram = dpd - b.T @ gamma
        return OneHotBlock(
            col=col, rows=rows, k=k, counts=counts, SD=SD, gamma=gamma, gram=(gram + gram.T) / 2
        )

    def expand(self, block: OneHotBlock, coef: np.ndarray) -> np.ndarray:
        """``D @ coef`` as a length-n vector (0 where the row has no 1)."""
        out = np.zeros(self.n)
        out[block.rows] = coef[block.col[block.rows]]
        return out

    def cluster_meat(
        self,
        block: OneHotBlock,
        resid: np.ndarray,
        cluster: np.ndarray,
        dense: np.ndarray | None = None,
    ) -> np.ndarray:
        r"""Clustered meat ``sum_g s_g s_g'`` of the scores ``s_g = sum_{r in g} z_r u_r``
        with ``z = M [D, X]`` (``X = dense``, already residualized) and ``u = resid``.

        ``M D^c = D^c - alpha^c_i - gamma^c_t`` with ``alpha^c = diag(1/n_i)(SD - N
        gamma)^c``, so the one-hot scores are ``E - F + B Gamma``: ``E`` the cluster x cell
        sums of ``u``, ``F = U diag(1/n_i) SD`` and ``B = U diag(1/n_i) N - U_t`` with ``U``
        (cluster x unit) and ``U_t`` (cluster x period) sums of ``u``. All are sparse or
        ``G x L``; the ``G x k`` score matrix is never formed.
        """
        u = np.asarray(resid, dtype=float)
        cl = np.asarray(cluster, dtype=np.intp)
        G = int(cl.max()) + 1
        r, c = block.rows, block.col[block.rows]
        E = sparse.csr_matrix((u[r], (cl[r], c)), shape=(G, block.k))
        U = sparse.csr_matrix((u, (cl, self.p)), shape=(G, self.gp))
        Uw = U @ sparse.diags(1.0 / self.wp)
        Ut = sparse.csr_matrix((u, (cl, self.s)), shape=(G, self.gs))
        Sp = (E - Uw @ block.SD).tocsr()
        B = (Uw @ self.N - Ut).tocsr()
        Gm = block.gamma
        SpB = (Sp.T @ B).toarray() @ Gm  # k x k
        meat_dd = (Sp.T @ Sp).toarray() + SpB + SpB.T + Gm.T @ (B.T @ B).toarray() @ Gm
        if dense is None or dense.shape[1] == 0:
            return (meat_dd + meat_dd.T) / 2
        Xt = np.asarray(dense, dtype=float).T
        Sx = np.stack([np.bincount(cl, xj * u, G) for xj in Xt], axis=1)  # G x q
        meat_dx = Sp.T @ Sx + Gm.T @ (B.T @ Sx)
        meat = np.block([[meat_dd, meat_dx], [meat_dx.T, Sx.T @ Sx]])
        return (meat + meat.T) / 2


@dataclass(frozen=True)
class OneHotBlock:
    """A one-hot block of columns as :meth:`TwoWayWithin.onehot` sees it.

    ``col`` (cell of each row, -1 for none), ``rows`` (rows with a 1), ``k`` columns,
    ``counts`` (column sums), ``SD`` (unit x cell counts), ``gamma`` (period effects of
    each column, ``L x k``) and ``gram`` (``D'MD``).
    """

    col: np.ndarray
    rows: np.ndarray
    k: int
    counts: np.ndarray
    SD: sparse.csr_matrix
    gamma: np.ndarray
    gram: np.ndarray
