"""Reproducible parallel loops: serial, 2 joblib workers and a 2-worker dask cluster agree.

Every repeated computation spawns one child generator per replication before scheduling
(``zoneimpact.parallel.replicate``), so the numbers cannot depend on the number of workers
or on the backend. These tests check *bitwise* equality (``np.array_equal``), not a
tolerance: the same floating-point operations run on the same draws wherever they run.
"""

from __future__ import annotations

import contextlib

import joblib
import numpy as np
import pytest

from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import synthetic_did as sdid
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    set_progress(False)
    yield
    set_progress(True)


@pytest.fixture(scope="module")
def dask_client():
    """A local dask cluster of 2 single-threaded worker processes (the test extra installs
    ``distributed``; a missing one is a failure, not a silent drop of the dask mode)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def modes(dask_client) -> list[tuple[str, int, contextlib.AbstractContextManager]]:
    """(name, n_jobs, context) for serial, 2 loky workers and a 2-worker dask cluster."""
    return [
        ("serial", 1, contextlib.nullcontext()),
        ("loky", 2, contextlib.nullcontext()),
        ("dask", 2, joblib.parallel_config(backend="dask")),
    ]


def _draw(i: int, rng: np.random.Generator) -> np.ndarray:
    # a replication: a few draws from its own stream, tagged with its index
    return np.r_[i, rng.normal(size=3), rng.integers(0, 10**9)]


def test_replicate_identical_across_workers_and_backends(modes):
    results = {}
    for name, n_jobs, ctx in modes:
        with ctx:
            results[name] = np.vstack(
                replicate(_draw, 40, rng=np.random.default_rng(5), n_jobs=n_jobs)
            )
    ref = results["serial"]
    assert ref[:, 0].tolist() == list(range(40))  # task order kept
    for name, out in results.items():
        assert np.array_equal(out, ref), name
    # one stream per replication: no draw is repeated across replications (the pyfixest
    # 0.60 failure mode, where workers share one generator)
    assert len(np.unique(ref[:, 1])) == 40
    assert set(results) == {"serial", "loky", "dask"}


def test_replicate_over_task_sequence_and_seed(modes):
    tasks = ["a", "bb", "ccc"]
    out = {
        name: replicate(lambda t, g: (t, float(g.uniform())), tasks, rng=11, n_jobs=n_jobs)
        for name, n_jobs, _ in modes[:2]
    }
    assert out["serial"] == out["loky"]
    assert [t for t, _ in out["serial"]] == tasks


@pytest.fixture(scope="module")
def small_sim():
    return simulate(
        rng=3,
        n_units=80,
        n_regions=8,
        first_year=2005,
        last_year=2012,
        waves={2008: 0.5, 2010: 0.5},
    )


def test_callaway_santanna_bootstrap_identical(modes, small_sim):
    out = {}
    for name, n_jobs, ctx in modes:
        with ctx:
            res = cs.fit(
                small_sim.panel,
                outcome="fdi",
                rng=np.random.default_rng(9),
                bootstrap=True,
                n_boot=199,
                chunk_size=50,
                n_jobs=n_jobs,
            )
        out[name] = res.terms
    ref = out["serial"]
    assert np.isfinite(ref["se"]).any()
    for name, terms in out.items():
        cols = [c for c in ("estimate", "se", "band_low", "band_high") if c in terms]
        for c in cols:
            assert np.array_equal(terms[c].to_numpy(), ref[c].to_numpy(), equal_nan=True), (name, c)


def test_synthetic_did_placebo_se_identical(modes, small_sim):
    out = {}
    for name, n_jobs, ctx in modes:
        with ctx:
            res = sdid.fit(
                small_sim.panel,
                outcome="fdi",
                rng=np.random.default_rng(4),
                se_method="placebo",
                n_reps=40,
                n_jobs=n_jobs,
            )
        out[name] = (res.estimate, res.se)
    assert np.isfinite(out["serial"][1])
    for name, val in out.items():
        assert val == out["serial"], name


def test_snapshot_replays_draws_and_children() -> None:
    # a replayed bootstrap needs the same spawned children; deepcopy gives that only on
    # numpy >= 2 (on 1.26 the copy's seed sequence restarts)
    from zoneimpact.parallel import snapshot

    g = np.random.default_rng(7)
    g.spawn(3)  # the spawn counter is part of the state to keep
    twin = snapshot(g)
    assert [c.integers(0, 10**9) for c in g.spawn(2)] == [
        c.integers(0, 10**9) for c in twin.spawn(2)
    ]
    assert g.integers(0, 10**9) == twin.integers(0, 10**9)


def test_progress_bar_waits_before_it_appears(capsys) -> None:
    """A loop shorter than ``PROGRESS_DELAY_S`` (0.5 s) prints no bar; a longer one does.

    Three trivial tasks take microseconds, far below 0.5 s on any machine; three tasks of
    0.3 s take at least 0.9 s, so the bar must have appeared (a slow machine only widens
    both margins)."""
    import time

    from zoneimpact.parallel import PROGRESS_DELAY_S

    assert PROGRESS_DELAY_S == 0.5
    fast = replicate(lambda i, rng: i, 3, rng=0, progress=True, desc="fast loop")
    assert fast == [0, 1, 2]
    assert "fast loop" not in capsys.readouterr().err

    def slow(i: int, rng: np.random.Generator) -> int:
        time.sleep(0.3)
        return i

    assert replicate(slow, 3, rng=0, progress=True, desc="slow loop") == [0, 1, 2]
    assert "slow loop" in capsys.readouterr().err
