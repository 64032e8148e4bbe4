"""The CR2 root of each cluster in low-rank form (``_bjs.cr2_parts``) equals the
pseudo-inverse square root of the dense ``I - H_gg`` (Bell & McCaffrey 2002), built here
by brute force, on clusters with many rows per column (the low-rank path) and with few
(the dense path), with a covariate, with leverage-one rows, and with weights."""

from __future__ import annotations

import numpy as np
import pytest

from zoneimpact.estimators import _bjs


def _dense_root(fit: _bjs.Imputed, rows: np.ndarray) -> np.ndarray:
    # brute force: H_gg from the full dense design, then the eigen pseudo-inverse root
    # with the rule cr2_parts documents (eigenvalues of I - H at most 1e-8 give zero)
    Z = fit.Z0.toarray()
    A = np.linalg.pinv(Z.T @ Z)
    H = Z[rows] @ A @ Z[rows].T
    lam, Q = np.linalg.eigh(np.eye(len(rows)) - (H + H.T) / 2)
    inv = np.where(lam > 1e-8, 1 / np.sqrt(np.clip(lam, 1e-8, None)), 0.0)
    return (Q * inv) @ Q.T


def _world(seed: int, n_units: int, n_periods: int, weighted: bool):
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    time = np.tile(np.arange(n_periods), n_units)
    x = rng.normal(size=n_units)[unit]
    X = (x[:, None] * (time[:, None] == np.arange(1, n_periods))).astype(float)
    cohort = np.where(rng.uniform(size=n_units) < 0.3, rng.integers(3, n_periods, n_units), 99)
    target = time >= cohort[unit]
    # one unit observed clean in a single period: its own effect has leverage one
    clean = ~target & ~((unit == 0) & (time > 0))
    y = rng.normal(size=len(unit)) + 0.1 * unit + 0.2 * time
    w = rng.uniform(0.5, 2.0, n_units)[unit] if weighted else None
    fit = _bjs.fit_untreated(unit, time, y, X[:, :2], clean, target & (unit != 0), weight=w)
    return fit, unit[fit.clean]


@pytest.mark.parametrize(
    ("units_per_cluster", "weighted"), [(10, False), (10, True), (1, False), (2, True)]
)
def test_cr2_roots_equal_the_dense_pseudo_inverse_root(units_per_cluster, weighted):
    fit, unit0 = _world(7, 40, 12, weighted)
    cluster0 = unit0 // units_per_cluster
    adjusted, roots, _ = _bjs.cr2_parts(fit, cluster0)
    for rows, U, f in roots.values():
        R = _dense_root(fit, rows)
        dense = np.eye(len(rows)) + (U * f) @ U.T
        # both are sums of a few hundred products of O(1) numbers: 1e-10 absolute is far
        # above rounding and far below any difference a wrong root gives (O(0.01) or more)
        assert dense == pytest.approx(R, abs=1e-10)
        assert adjusted[rows] == pytest.approx(R @ fit.resid0[rows], abs=1e-10)


def test_cluster_blocks_equal_scipy_slices_on_unsorted_duplicated_entries():
    # _cluster_blocks reads the CSR arrays by hand (scipy's per-cluster fancy indexing was
    # the slow part of cr2_parts): on a matrix built with duplicated (summed) entries, rows
    # in random clusters with gaps in the labels and unsorted column indices, every block
    # equals scipy's own slice exactly (same additions of duplicates), and the caller's
    # matrix is left as it was
    from scipy import sparse

    rng = np.random.default_rng(5)
    n, k = 60, 25
    counts = rng.integers(0, 9, n)  # some rows empty
    indptr = np.append(0, np.cumsum(counts))
    # columns drawn with replacement, in draw order: duplicates and unsorted indices
    indices = rng.integers(0, k, indptr[-1]).astype(np.int32)
    Z = sparse.csr_matrix((rng.normal(size=indptr[-1]), indices, indptr), shape=(n, k))
    assert not Z.has_canonical_format
    before = (Z.indptr.copy(), Z.indices.copy(), Z.data.copy())
    cluster = rng.choice([0, 3, 4, 9, 17], size=n)
    seen = []
    for g, rows, cols, Zd in _bjs._cluster_blocks(Z, cluster):
        np.testing.assert_array_equal(rows, np.flatnonzero(cluster == g))
        np.testing.assert_array_equal(cols, np.unique(Z[rows].indices))
        np.testing.assert_array_equal(Zd, Z[rows][:, cols].toarray())
        seen.append(g)
    assert seen == sorted(set(cluster.tolist()))
    for got, was in zip((Z.indptr, Z.indices, Z.data), before, strict=True):
        np.testing.assert_array_equal(got, was)
