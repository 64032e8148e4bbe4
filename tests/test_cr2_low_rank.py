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
