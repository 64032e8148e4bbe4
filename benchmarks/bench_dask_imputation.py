"""Benchmark: the Dask imputation estimator's step 1 and implied weights solved directly
(the reduced periods x periods normal equations, one pass each) against the iterations
used before and still used for long panels (alternating projections and Gauss-Seidel, one
pass per sweep), and the in-memory estimator, on the same Parquet files.

Task: ``imputation.fit(outcome="y", cluster=<region>)`` (BJS 2024; ``att`` and every event
time, Theorem 3 variance) on a simulated staggered panel of ``--units`` x ``--periods``
with ``--drop`` of the unit-periods missing at random (an unbalanced panel, where the
iterations need many sweeps), written as ``--files`` Parquet files. No peer runs BJS on
Dask, so the comparison is with our own iterated path and the in-memory fit; the floor
(``_floor.parquet_floor``: the files read once with three passes per batch) divides each
time in the printed ratios. The runs alternate (``--repeats`` rounds) in one process with
one ``LocalCluster`` (``--workers`` workers of one thread, in the process); the estimates
of the three must agree to 1e-8 relative (the iterations stop at 1e-14 of the first
correction) or the script stops.

Run:  python benchmarks/bench_dask_imputation.py [--units 20000] [--periods 20]
      [--drop 0.2] [--files 8] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from zoneimpact import Panel  # noqa: E402
from zoneimpact.estimators import imputation  # noqa: E402


def _frame(n_units: int, n_periods: int, drop: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(2000, 2000 + n_periods), n_units)
    waves = 2000 + np.array([n_periods // 4, n_periods // 2, 3 * n_periods // 4])
    first = rng.choice(np.append(waves, 0), size=n_units)
    region = rng.integers(0, 50, size=n_units)
    treated = (first[unit] > 0) & (year >= first[unit])
    y = (
        rng.normal(size=n_units)[unit]
        + 0.1 * (year - 2000)
        + rng.normal(size=50 * n_periods).reshape(50, n_periods)[region[unit], year - 2000]
        + 2.0 * treated
        + rng.normal(size=unit.size)
    )
    frame = pd.DataFrame(
        {"id": unit, "year": year, "first": first[unit], "region": region[unit], "y": y}
    )
    keep = rng.random(len(frame)) >= drop
    return frame[keep].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", type=int, default=20_000)
    ap.add_argument("--periods", type=int, default=20)
    ap.add_argument("--drop", type=float, default=0.2)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import distributed

    import zoneimpact.distributed as zd

    # the module (the package's ``imputation`` attribute is its fit function)
    zd_imputation = importlib.import_module("zoneimpact.distributed.imputation")

    from _floor import parquet_floor

    frame = _frame(args.units, args.periods, args.drop)
    folder = Path(tempfile.mkdtemp(prefix="zi_bench_dask_imp_"))
    shuffled = frame.sample(frac=1.0, random_state=1)
    for i, idx in enumerate(np.array_split(np.arange(len(shuffled)), args.files)):
        shuffled.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    glob = str(folder / "*.parquet")
    print(
        f"{args.units} units x {args.periods} periods, {len(frame)} rows "
        f"({args.drop:.0%} dropped), {args.files} files, {args.workers} workers"
    )
    warnings.simplefilter("ignore")
    with (
        distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        direct_max = zd_imputation._DIRECT_MAX_PERIODS

        def dask_fit(direct: bool) -> tuple[float, object]:
            zd_imputation._DIRECT_MAX_PERIODS = direct_max if direct else 0
            tic = time.perf_counter()
            dp = zd.read_panel(
                glob, unit="id", time="year", outcomes=["y"], cohort="first", cluster="region"
            )
            res = zd.imputation(dp, outcome="y", cluster=True)
            return time.perf_counter() - tic, res

        def memory_fit() -> tuple[float, object]:
            tic = time.perf_counter()
            data = pd.read_parquet(folder)
            # the cluster column rides along as a covariate column (not used as one)
            panel = Panel.from_frame(
                data, unit="id", time="year", cohort="first", outcomes=["y"], covariates=["region"]
            )
            res = imputation.fit(panel, outcome="y", cluster="region")
            return time.perf_counter() - tic, res

        read_once = parquet_floor(folder, unit="id", period="year", outcome="y")

        def floor() -> tuple[float, None]:
            tic = time.perf_counter()
            read_once()
            return time.perf_counter() - tic, None

        runs = {"dask direct": lambda: dask_fit(True), "dask iterated": lambda: dask_fit(False),
                "in memory": memory_fit, "floor": floor}  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in runs}
        results: dict[str, object] = {}
        for _ in range(args.repeats):
            for name, run in runs.items():
                sec, res = run()
                times[name].append(sec)
                if res is not None:
                    results[name] = res
        zd_imputation._DIRECT_MAX_PERIODS = direct_max
    ref = results["in memory"].terms.set_index("term")  # type: ignore[attr-defined]
    for name in ("dask direct", "dask iterated"):
        got = results[name].terms.set_index("term").loc[ref.index]  # type: ignore[attr-defined]
        for col in ("estimate", "se"):
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-8)
        info = results[name].info  # type: ignore[attr-defined]
        print(f"{name}: passes step 1 {info['sweeps']}, implied weights "
              f"{info['implied_weight_sweeps']}")  # fmt: skip
    med = {k: float(np.median(v)) for k, v in times.items()}
    for name in ("dask direct", "dask iterated", "in memory"):
        print(f"{name:14s} median {med[name]:7.2f} s  ({med[name] / med['floor']:6.1f}x floor)")
    print(f"floor          median {med['floor']:7.2f} s")
    print(f"dask iterated / dask direct: {med['dask iterated'] / med['dask direct']:.2f}")


if __name__ == "__main__":
    main()
