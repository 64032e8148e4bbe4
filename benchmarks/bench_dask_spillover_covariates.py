"""Benchmark (session 44): the spillover decomposition's imputation base with a covariate,
on the Dask engine and in memory.

Task: ``simulate``'s main design (``--units`` units, default 300, in 30 regions,
1996-2022: 27 years, five zone waves whose timing and trends depend on the covariate
``x``), adjacency exposure, imputation base with ``covariates=["x"]``, clusters by
region, 999 joint multiplier-bootstrap draws. The rows are written to four Parquet files
(each unit's rows spread over them) once, before timing.

Timed, alternating, ``--repeats`` times each (the minimum and median printed), one BLAS
thread:

* ``dask``: ``zoneimpact.distributed.read_panel`` (read + shuffle on unit) and
  ``zoneimpact.distributed.spillover(..., base_estimator="imputation",
  covariates=["x"])`` on a ``LocalCluster`` of two in-process workers with one thread;
* ``dask_plain``: the same without the covariate (what the engine did before);
* ``memory``: ``spillover.fit(panel, base_estimator="imputation", covariates=["x"],
  small_sample="none")`` on the in-memory panel (the Dask fit's estimand and SEs; the
  in-memory default adds CR2), without reading.

No peer decomposes net effects on Dask; the ratio printed is Dask with the covariate over
Dask without it (what the covariate terms cost) and over memory (what distribution costs
on a panel that fits in memory).

Run:  python benchmarks/bench_dask_spillover_covariates.py [--units 300] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import distributed

    import zoneimpact.distributed as zd
    from zoneimpact.estimators import spillover
    from zoneimpact.exposure import build_exposure
    from zoneimpact.simulate import simulate

    sim = simulate(rng=44, n_units=args.units, n_regions=30)
    panel = sim.panel
    emap = build_exposure(panel, "adjacency")
    regions = sim.geography.set_index("unit")["region"].astype(str)
    folder = Path(tempfile.mkdtemp(prefix="zoneimpact_bench_dsc_"))
    rows = panel.data[["unit", "time", "cohort", "fdi", "x"]].sample(frac=1.0, random_state=0)
    rows = rows.assign(region=regions.reindex(rows["unit"]).to_numpy())
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), 4)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    print(f"{panel.data['unit'].nunique()} units x {panel.data['time'].nunique()} periods")

    def on_dask(covs: list[str] | None) -> float:
        dp = zd.read_panel(
            str(folder / "*.parquet"), unit="unit", time="time", outcomes=["fdi"],
            cohort="cohort", covariates=["x"], never_values=(), cluster="region",
            npartitions=2,
        )  # fmt: skip
        res = zd.spillover(dp, outcome="fdi", exposure=emap, base_estimator="imputation",
                           covariates=covs, n_boot=999, rng=1)  # fmt: skip
        return float(res.terms.set_index("term").loc["net", "estimate"])

    def in_memory() -> float:
        res = spillover.fit(panel, outcome="fdi", exposure=emap, base_estimator="imputation",
                            covariates=["x"], small_sample="none", n_boot=999, rng=1,
                            cluster=regions.rename("region"))  # fmt: skip
        return float(res.terms.set_index("term").loc["net", "estimate"])

    tasks = {
        "dask": lambda: on_dask(["x"]),
        "dask_plain": lambda: on_dask(None),
        "memory": in_memory,
    }
    times: dict[str, list[float]] = {k: [] for k in tasks}
    nets: dict[str, float] = {}
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        warnings.simplefilter("ignore")
        for k, f in tasks.items():  # warm-up (imports, the cluster's first tasks)
            nets[k] = f()
        for _ in range(args.repeats):
            for k, f in tasks.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    for k in tasks:
        print(f"{k:>11}: min {min(times[k]):.3f} s, median {np.median(times[k]):.3f} s, "
              f"net {nets[k]:.6f}")  # fmt: skip
    print(f"dask with x / dask without: {min(times['dask']) / min(times['dask_plain']):.2f}")
    print(f"dask with x / memory with x: {min(times['dask']) / min(times['memory']):.2f}")
    print(f"net, dask - memory (same estimand): {nets['dask'] - nets['memory']:.3e}")


if __name__ == "__main__":
    main()
