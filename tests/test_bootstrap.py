"""Multiplier bootstrap (zoneimpact.inference.bootstrap): draw stream, blocking, memory."""

from __future__ import annotations

import numpy as np
import pytest

from zoneimpact.errors import ZoneImpactError
from zoneimpact.inference import bootstrap
from zoneimpact.inference.bootstrap import cluster_sums, multiplier_draws
from zoneimpact.parallel import set_progress


@pytest.fixture(autouse=True)
def _quiet():
    set_progress(False)
    yield
    set_progress(True)


def _psi(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * np.array([1.0, 2.0, 3.0])


def test_single_block_draws_are_rademacher_bits_times_psi() -> None:
    # Up to one row block, chunk c's draws are V @ psi / n with V the chunk's random bits
    # in row-major order mapped to +-1 (the stream of the earlier unblocked code).
    psi = _psi(500)
    draws = multiplier_draws(psi, n_boot=250, rng=np.random.default_rng(3), chunk_size=100)
    children = np.random.default_rng(3).spawn(3)
    ref = []
    for size, child in zip((100, 100, 50), children, strict=True):
        raw = child.integers(0, 256, size=(size * 500 + 7) // 8, dtype=np.uint8)
        v = np.unpackbits(raw, count=size * 500).reshape(size, 500) * 2.0 - 1.0
        ref.append(v @ psi / 500)
    # same products; only BLAS rounding can differ
    np.testing.assert_allclose(draws, np.vstack(ref), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("weights", ["rademacher", "mammen"])
def test_row_blocks_identical_for_any_n_jobs_and_right_variance(monkeypatch, weights) -> None:
    # Force many row blocks (64 rows each) on 3,000 rows: weights are drawn block by block.
    monkeypatch.setattr(bootstrap, "_ROW_BLOCK", 64)
    psi = _psi(3000, seed=1)
    kw = dict(n_boot=1000, chunk_size=128, weights=weights)
    one = multiplier_draws(psi, rng=np.random.default_rng(9), n_jobs=1, **kw)
    two = multiplier_draws(psi, rng=np.random.default_rng(9), n_jobs=2, **kw)
    np.testing.assert_array_equal(one, two)
    again = multiplier_draws(psi, rng=np.random.default_rng(9), n_jobs=1, **kw)
    np.testing.assert_array_equal(one, again)
    # E V = 0, E V^2 = 1: the draws' SD is the analytic sqrt(sum psi^2)/n; with 1,000
    # draws the SD estimate has a Monte Carlo error of about 2.2%, so 8% is > 3 MC SEs.
    analytic = np.sqrt((psi**2).sum(axis=0)) / psi.shape[0]
    np.testing.assert_allclose(one.std(axis=0), analytic, rtol=0.08)
    assert np.abs(one.mean(axis=0) / analytic).max() < 0.15  # mean 0 within ~4.7 MC SEs
    # every block of every chunk draws fresh weights: no draw is repeated
    assert len(np.unique(one[:, 0])) > 990


def test_cluster_sums_and_cluster_draws() -> None:
    psi = _psi(600, seed=2)
    labels = np.repeat(np.array(["b", "a", "c"]), 200)
    s = cluster_sums(psi, labels)
    np.testing.assert_allclose(s[0], psi[200:400].sum(axis=0))  # "a" sorts first
    np.testing.assert_allclose(s[2], psi[400:].sum(axis=0))
    d = multiplier_draws(psi, n_boot=40, rng=1, cluster=labels)
    # three clusters: every draw is (+-s_a +- s_b +- s_c) / n
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    combos = signs @ s / 600
    hit = np.abs(d[:, None, :] - combos[None, :, :]).max(axis=2).min(axis=1)
    assert hit.max() < 1e-12


def test_errors() -> None:
    with pytest.raises(ZoneImpactError, match="weights"):
        multiplier_draws(_psi(10), n_boot=10, rng=0, weights="webb")
    with pytest.raises(ZoneImpactError, match="chunk_size"):
        multiplier_draws(_psi(10), n_boot=10, rng=0, chunk_size=0)
    with pytest.raises(ZoneImpactError, match="cluster"):
        multiplier_draws(_psi(10), n_boot=10, rng=0, cluster=np.arange(9))
