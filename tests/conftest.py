"""Shared test fixtures: paths to the canonical data, Monte Carlo sizes and the Dask
modules' local cluster."""

from __future__ import annotations

import inspect
import json
import os
import warnings
import weakref
from pathlib import Path

# One BLAS/OpenMP thread per process, set before numpy loads. On a busy 2-core machine
# multi-threaded OpenBLAS spin-waits for cores that other processes hold, which made the
# suite several times slower than on a quiet one; the tests' parallel paths use joblib
# processes, which are unaffected. A user's explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402  (after the thread settings)
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from zoneimpact.estimators import _bjs  # noqa: E402


def _dask_singletons_without_race() -> None:
    """dask's ``SingletonExpr.__new__`` (2026.8) asks ``name in cls._instances`` and then
    reads ``cls._instances[name]``, a weak-value dictionary. With an in-process scheduler
    (the tests' ``LocalCluster``) another thread can drop the last reference between the
    two, so the scheduler fails to deserialize a graph (``KeyError`` on the expression's
    name, the futures cancelled): seen once, in a CI dry run under heavy load
    (2026-12-02). The same rule with one atomic ``get``; a test-only shim for dask's race,
    not for anything of ours."""
    try:
        from dask._expr import SingletonExpr

        racy = "_name in cls._instances" in inspect.getsource(SingletonExpr.__new__)
    except (ImportError, OSError, TypeError):
        return
    if not racy:
        return

    def __new__(cls, *args, _determ_token=None, **kwargs):  # type: ignore[no-untyped-def]
        if not hasattr(cls, "_instances"):
            cls._instances = weakref.WeakValueDictionary()
        inst = super(SingletonExpr, cls).__new__(cls, *args, _determ_token=_determ_token, **kwargs)
        if cls.__init__ == object.__init__:
            known = cls._instances.get(inst._name)
            if known is not None:
                return known
        cls._instances[inst._name] = inst
        return inst

    SingletonExpr.__new__ = __new__  # type: ignore[method-assign]


_dask_singletons_without_race()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZONEIMPACT_DATA", REPO.parent / "shared" / "data"))
CANONICAL = SHARED_DATA / "canonical"
FULL_MC = os.environ.get("ZONEIMPACT_FULL_MC") == "1"

#: Peer-package reference numbers, written by benchmarks/reference/peer_references.py
#: (diff-diff, pyfixest; versions in its "_meta"). Checked on every run, peers or not.
PEERS = json.loads((REPO / "benchmarks" / "reference" / "peers.json").read_text())


def mc_reps(reduced: int, full: int) -> int:
    """Replications for a Monte Carlo test: ``reduced`` in CI, ``full`` on request."""
    return full if FULL_MC else reduced


#: The canonical files the tests read (see the SOURCE notes beside each).
CANONICAL_FILES = (
    "canonical/mpdta.csv",
    "canonical/california_prop99.csv",
    "canonical/smoking_adh_covariates.csv",
)
#: The China study files (see shared/data/china/SOURCE.md and docs/china_data.md).
CHINA_FILES = (
    "china/zones_national_2018.csv",
    "china/city_fdi_1996_2023.csv",
    "china/city_gdp_2000_2023.csv",
    "china/city_population_1998_2024.csv",
    "china/province_patent_applications_2010_2023.csv",
)


def missing_data(*relative: str) -> list[str]:
    """The files among ``relative`` (paths under the data directory) that are absent."""
    return [r for r in relative if not (SHARED_DATA / r).is_file()]


def skip_reason(missing: list[str]) -> str:
    return (
        f"data file(s) not found under {SHARED_DATA}: {', '.join(missing)} "
        "(set ZONEIMPACT_DATA to the data directory to run this test)"
    )


def require_data(*relative: str) -> None:
    """Skip the calling test, naming every missing file, unless all of ``relative`` exist."""
    missing = missing_data(*relative)
    if missing:
        pytest.skip(skip_reason(missing))


def needs_data(*relative: str) -> pytest.MarkDecorator:
    """A skipif marker naming the missing files (for modules and single tests)."""
    missing = missing_data(*relative)
    return pytest.mark.skipif(bool(missing), reason=skip_reason(missing))


@pytest.fixture(scope="session")
def canonical() -> Path:
    require_data(*CANONICAL_FILES)
    return CANONICAL


@pytest.fixture(scope="session")
def mpdta_frame(canonical: Path) -> pd.DataFrame:
    """R did's minimum-wage county panel (see canonical/mpdta.SOURCE.txt)."""
    return pd.read_csv(canonical / "mpdta.csv")


@pytest.fixture(scope="session")
def mpdta(mpdta_frame: pd.DataFrame):
    from zoneimpact import Panel

    return Panel.from_frame(
        mpdta_frame,
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
        covariates=["lpop"],
    )


def piece_vectors_and_scores(res, name: str):
    """One imputation piece of a spillover result with region clusters: its steps 1-2
    (``_bjs.Imputed``), re-scoring data, Bell-McCaffrey vectors (long rows x regions) and
    CR2 region scores, both from :mod:`zoneimpact.estimators._bjs`."""
    sc = res.fitted.fits[name].rescore
    fit = _bjs.refactored(sc.fit)
    region = res.fitted.panel.geography["region"]
    cluster = np.unique(
        region.reindex(res.fitted.units).to_numpy()[sc.unit_row], return_inverse=True
    )[1]
    G = int(cluster.max()) + 1
    cells = sc.cells_for(cluster[fit.target])
    parts = _bjs.bm_parts(
        fit, sc.w[:, 0], cells, cluster, G, scale=sc.scale, row_weight=sc.row_weight
    )
    C = _bjs.bm_vectors(fit, parts, len(cluster))
    s = _bjs.scores(fit, sc.w, cells, cluster, G, cr2=True, scale=sc.scale)[:, 0]
    return fit, sc, C, s, (cells, cluster, G)


#: the longest modules (the figures run with the China claims, the notebooks) are handed to
#: pytest-xdist's workers first (pyproject's addopts keep the collection order): started
#: last, either would leave one core idle at the end
SLOW_FIRST = ("test_figures.py", "test_notebooks.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in SLOW_FIRST)  # stable: order kept


@pytest.fixture(scope="module")
def client():
    """A Dask client on an in-process local cluster of two one-thread workers, one per test
    module of the Dask engine (a module that needs another size defines its own)."""
    distributed = pytest.importorskip("distributed")
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
