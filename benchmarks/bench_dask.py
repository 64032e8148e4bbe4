"""Benchmark (issue 19 items 2 and 4): Callaway-Sant'Anna in memory vs on Dask, and
moderndid's Dask backend on the same task.

Task: ATT(g,t) with never-treated controls, no covariates, analytic (influence-function)
standard errors, and the simple aggregation, on a simulated panel of ``--units`` x
``--periods`` (default 1,000,000 x 10 = 10 million rows; three treated cohorts and
never-treated units) written as ``--files`` Parquet files with the rows of each unit spread
over the files (as an extract from a database would be).

Each tool runs in its own fresh process (``--run NAME``); the Dask runs use a
``LocalCluster`` with ``--workers`` workers of ``--threads`` threads, in the process
(default) or as processes (``--processes``). Peak memory is the largest sampled sum of the
resident memory of the process and its children (every 50 ms), or ``ru_maxrss`` if larger.
One BLAS thread everywhere. Times include reading the Parquet files:

* ``inmemory``: ``pandas.read_parquet`` + ``Panel.from_frame`` + ``callaway_santanna.fit``;
* ``dask``: ``zoneimpact.distributed.read_panel`` (read + shuffle on unit) +
  ``zoneimpact.distributed.callaway_santanna``;
* ``moderndid``: ``dask.dataframe.read_parquet`` + ``moderndid.att_gt`` on the Dask frame
  (its ``dask_att_gt``) + ``aggte(type="simple")``; run with ``/tmp/peers/bin/python``
  (``--peer-python``) where moderndid 0.2 is installed. Its ``dask_att_gt`` sometimes
  deadlocks on a local cluster (its cohort threads wait on futures and the process stops
  using CPU); a run that gives no result within ``--timeout`` seconds is reported and
  retried (``--attempts``);
* ``floor``: ``_floor.parquet_floor``: the same three columns of the same Parquet files
  read batch by batch, once, with three passes per batch (integer unit codes, sums by unit
  and by period). Its time divides zoneimpact's in the printed ratio lines (one for the
  in-memory and one for the Dask task), next to zoneimpact / moderndid (the only peer;
  its Dask backend does the same task).

Run:  python benchmarks/bench_dask.py [--units 1000000] [--periods 10] [--files 16]
      [--workers 2] [--threads 1] [--processes] [--data /tmp/zoneimpact_bench_dask]
      [--peer-python /tmp/peers/bin/python] [--timeout 900] [--attempts 3] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def make_parquet(folder: Path, n_units: int, n_periods: int, n_files: int, seed: int = 1) -> None:
    """Write the simulated panel (unit, year, first_treat with 0 = never, y) to ``folder``."""
    if (folder / "_done").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_periods)
    cohorts = np.array([0, years[3], years[5], years[7]])
    g = rng.choice(cohorts, size=n_units, p=[0.4, 0.2, 0.2, 0.2])
    files = rng.integers(0, n_files, size=(n_units, n_periods))  # a unit's rows spread out
    for f in range(n_files):
        parts = []
        for j, year in enumerate(years):
            idx = np.flatnonzero(files[:, j] == f)
            e = year - g[idx]
            sub = np.random.default_rng([seed, f, j])
            y = (
                (idx % 997) / 997.0
                + 0.1 * j
                + np.where((g[idx] > 0) & (e >= 0), 0.5 + 0.1 * e, 0.0)
                + sub.normal(size=idx.size)
            )
            parts.append(
                pd.DataFrame(
                    {"unit": idx.astype(np.int64), "year": year, "first_treat": g[idx], "y": y}
                )
            )
        pd.concat(parts).to_parquet(folder / f"part-{f:03d}.parquet", index=False)
    (folder / "_done").write_text("ok")


class _Sampler(threading.Thread):
    """Peak resident memory of this process plus its children (worker processes), sampled
    every 50 ms (``ru_maxrss`` alone would miss the workers of a process cluster)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total / 2**20)
            self.stop.wait(0.05)


_SAMPLER = _Sampler()


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(own, _SAMPLER.peak)


def run_inmemory(folder: Path, workers: int) -> dict[str, float]:
    from zoneimpact import Panel
    from zoneimpact.estimators import callaway_santanna as cs

    t0 = time.perf_counter()
    frame = pd.read_parquet(folder)
    panel = Panel.from_frame(frame, unit="unit", time="year", outcomes="y", cohort="first_treat")
    del frame
    t1 = time.perf_counter()
    res = cs.fit(panel, outcome="y", bootstrap=False, aggregations=["simple"])
    t2 = time.perf_counter()
    return {
        "load_s": t1 - t0, "estimate_s": t2 - t1, "total_s": t2 - t0, "peak_mb": _peak_mb(),
        "att": float(res.estimate), "se": float(res.terms["se"].iloc[0]),
    }  # fmt: skip


def _cluster(workers: int):  # noqa: ANN202
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=int(os.environ.get("BENCH_THREADS", "1")),
        processes=os.environ.get("BENCH_PROCESSES") == "1",
        dashboard_address=None,
    )
    return Client(cluster), cluster


def run_dask(folder: Path, workers: int) -> dict[str, float]:
    from zoneimpact import distributed as zd

    client, cluster = _cluster(workers)
    t0 = time.perf_counter()
    dp = zd.read_panel(
        str(folder / "*.parquet"), unit="unit", time="year", outcomes=["y"], cohort="first_treat"
    )
    t1 = time.perf_counter()
    res = zd.callaway_santanna(dp, outcome="y", bootstrap=False, aggregations=["simple"])
    t2 = time.perf_counter()
    out = {
        "load_s": t1 - t0, "estimate_s": t2 - t1, "total_s": t2 - t0, "peak_mb": _peak_mb(),
        "att": float(res.estimate), "se": float(res.terms["se"].iloc[0]),
    }  # fmt: skip
    client.close()
    cluster.close()
    return out


def run_moderndid(folder: Path, workers: int) -> dict[str, float]:
    import dask.dataframe as dd
    import moderndid

    client, cluster = _cluster(workers)
    t0 = time.perf_counter()
    frame = dd.read_parquet(str(folder / "*.parquet"))
    t1 = time.perf_counter()
    gt = moderndid.att_gt(
        frame, yname="y", tname="year", idname="unit", gname="first_treat",
        control_group="nevertreated", est_method="dr", boot=False, cband=False,
    )  # fmt: skip
    agg = moderndid.aggte(gt, type="simple", boot=False, cband=False)
    t2 = time.perf_counter()
    out = {
        "load_s": t1 - t0, "estimate_s": t2 - t1, "total_s": t2 - t0, "peak_mb": _peak_mb(),
        "att": float(agg.overall_att), "se": float(agg.overall_se),
    }  # fmt: skip
    client.close()
    cluster.close()
    return out


def run_floor(folder: Path, workers: int) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _floor import parquet_floor

    step = parquet_floor(folder, "unit", "year", "y")
    t0 = time.perf_counter()
    step()
    t1 = time.perf_counter()
    nan = float("nan")  # the floor estimates nothing
    return {
        "load_s": t1 - t0, "estimate_s": 0.0, "total_s": t1 - t0, "peak_mb": _peak_mb(),
        "att": nan, "se": nan,
    }  # fmt: skip


RUNNERS = {
    "inmemory": run_inmemory,
    "dask": run_dask,
    "moderndid": run_moderndid,
    "floor": run_floor,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--periods", type=int, default=10)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
    ap.add_argument(
        "--processes", action="store_true", help="Dask workers as processes (default: threads)"
    )
    ap.add_argument("--data", default="/tmp/zoneimpact_bench_dask")
    ap.add_argument("--peer-python", default="/tmp/peers/bin/python")
    ap.add_argument("--skip", nargs="*", default=[])
    # moderndid 0.2's dask_att_gt deadlocks now and then on a small local cluster (its
    # cohort threads wait on futures; seen with 1 and 2 threads per worker): time out, retry
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--run", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = Path(args.data) / f"{args.units}x{args.periods}"
    if args.run:
        _SAMPLER.start()
        print(json.dumps(RUNNERS[args.run](folder, args.workers)))
        return
    os.environ["BENCH_PROCESSES"] = "1" if args.processes else "0"
    os.environ["BENCH_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    make_parquet(folder, args.units, args.periods, args.files)
    print(
        f"Panel: {args.units:,} units x {args.periods} periods = {args.units * args.periods:,} "
        f"rows in {args.files} Parquet files ({time.perf_counter() - t0:.1f} s to write); "
        f"{args.workers} Dask workers x {args.threads} thread(s) "
        f"{'as processes' if args.processes else 'in-process'}; one BLAS thread."
    )
    rows = {}
    for name in RUNNERS:
        if name in args.skip:
            continue
        python = args.peer_python if name == "moderndid" else sys.executable
        cmd = [python, __file__, "--run", name, "--units", str(args.units)]
        cmd += ["--periods", str(args.periods), "--workers", str(args.workers)]
        cmd += ["--data", args.data]
        for attempt in range(1, args.attempts + 1):
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, check=False, timeout=args.timeout
                )
            except subprocess.TimeoutExpired:
                print(f"{name}: attempt {attempt} hung (no result after {args.timeout} s)")
                continue
            if proc.returncode != 0:
                print(f"{name}: attempt {attempt} failed\n{proc.stderr[-2000:]}")
                continue
            rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            break
    table = pd.DataFrame(rows).T[["load_s", "estimate_s", "total_s", "peak_mb", "att", "se"]]
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 120):
        print(table.to_string())
    if {"inmemory", "dask"} <= rows.keys():
        a, b = rows["inmemory"], rows["dask"]
        print(
            f"dask vs in-memory: |ATT diff| = {abs(a['att'] - b['att']):.2e}, |SE diff| = "
            f"{abs(a['se'] - b['se']):.2e}; time ratio {b['total_s'] / a['total_s']:.2f}, "
            f"peak-memory ratio {b['peak_mb'] / a['peak_mb']:.2f}"
        )
    if {"moderndid", "dask"} <= rows.keys():
        m, b = rows["moderndid"], rows["dask"]
        print(
            f"zoneimpact dask / moderndid dask: time {b['total_s'] / m['total_s']:.2f}, peak "
            f"memory {b['peak_mb'] / m['peak_mb']:.2f}; |ATT diff| = {abs(m['att'] - b['att']):.2e}, "
            f"|SE diff| = {abs(m['se'] - b['se']):.2e}"
        )
    if "floor" in rows:
        from _floor import ratio_line

        peers = {"moderndid": rows["moderndid"]["total_s"]} if "moderndid" in rows else {}
        note = "times include reading the Parquet files"
        if not peers and "moderndid" not in args.skip:
            note += "; moderndid gave no result"
        for name, task in (("inmemory", "CS in memory"), ("dask", "CS on Dask")):
            if name in rows:
                floor_s = rows["floor"]["total_s"]
                print(ratio_line(task, rows[name]["total_s"], peers, floor_s, note=note))


if __name__ == "__main__":
    main()
