"""The floor of issue 19 and the ratio line every ``benchmarks/bench_*.py`` prints.

The floor is the least work any estimator must do on a benchmark's data: read the same
numbers into numpy and make three cheap passes over them. zoneimpact's time divided by
the floor's says how far an estimator is from merely touching its input; zoneimpact's
time divided by the fastest peer's says where it stands among the tools. Three floors,
by the shape of the data:

* long unit-period frames: ``bench_ratios.floor`` (unit codes and two grouped sums, the
  work of one two-way demeaning sweep); :func:`long_floor` makes it a ready-to-time step
  on any column names (renaming the three columns is done before timing).
* wide data (synthetic control, factor models): :func:`wide_floor` reads the outcome of a
  long frame into the units x periods matrix (unit and period codes, one scatter), then
  :func:`matrix_floor`'s three passes: column means, row sums and one matrix-vector
  product (the matrix times its column means). :func:`matrix_floor` alone serves data
  that already are a matrix (an event study's covariance).
* Parquet panels (gridded and out-of-core data): :func:`parquet_floor` reads the same
  columns batch by batch, once, and makes on each batch the three passes of
  ``bench_ratios.floor``: integer unit codes, sums by unit and sums by period (both
  accumulated over the batches). Unit ids must be non-negative integers (the grid's
  cells, the Dask benchmark's units).

:func:`time_floor` times a floor step (median of a few runs: the floor is short, so one
run would mostly measure the timer and the machine's other load); :func:`ratio_line`
formats the printed line.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def long_floor(
    df: pd.DataFrame, unit: str = "unit", period: str = "year", outcome: str = "y"
) -> Callable[[], float]:
    """``bench_ratios.floor`` on ``df``'s (unit, period, outcome) columns, as a step to time."""
    from bench_ratios import floor

    if (unit, period, outcome) == ("unit", "year", "y"):
        frame = df
    else:
        frame = df[[unit, period, outcome]].set_axis(["unit", "year", "y"], axis=1)
    return lambda: floor(frame)


def matrix_floor(Y: np.ndarray) -> float:
    """Three passes over a matrix: column means, row sums, one matrix-vector product."""
    col_means = Y.mean(axis=0)
    row_sums = Y.sum(axis=1)
    return float((Y @ col_means).sum() + row_sums.sum())


def wide_floor(
    df: pd.DataFrame, unit: str = "unit", period: str = "year", outcome: str = "y"
) -> Callable[[], float]:
    """Read ``outcome`` into the units x periods matrix, then :func:`matrix_floor`."""

    def step() -> float:
        i, units = pd.factorize(df[unit])
        j, periods = pd.factorize(df[period])
        Y = np.zeros((len(units), len(periods)))
        Y[i, j] = df[outcome].to_numpy(float)
        return matrix_floor(Y)

    return step


def parquet_floor(
    path: str | Path,
    unit: str = "unit",
    period: str = "year",
    outcome: str = "y",
    batch_rows: int = 2_000_000,
) -> Callable[[], float]:
    """One read of the Parquet files under ``path`` (or the file), three passes per batch."""
    import pyarrow.parquet as pq

    root = Path(path)
    files = sorted(root.glob("*.parquet")) if root.is_dir() else [root]

    def step() -> float:
        by_unit = np.zeros(0)
        by_period: dict[int, float] = {}
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(
                batch_size=batch_rows, columns=[unit, period, outcome]
            ):
                code = batch.column(unit).to_numpy().astype(np.intp)
                t = batch.column(period).to_numpy()
                y = batch.column(outcome).to_numpy().astype(float)
                s = np.bincount(code, weights=y)
                if s.size > by_unit.size:
                    by_unit = np.r_[by_unit, np.zeros(s.size - by_unit.size)]
                by_unit[: s.size] += s
                t0 = int(t.min())
                for k, v in enumerate(np.bincount(t - t0, weights=y)):
                    by_period[t0 + k] = by_period.get(t0 + k, 0.0) + v
        return float(by_unit.sum() + sum(by_period.values()))

    return step


def time_floor(step: Callable[[], float], reps: int = 3) -> float:
    """Median wall seconds of ``reps`` runs of a floor step."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def ratio_line(
    task: str, zoneimpact_s: float, peers: Mapping[str, float], floor_s: float, note: str = ""
) -> str:
    """``ratio <task>: zoneimpact/fastest peer (<name>) X; zoneimpact/floor Y`` (or no peer)."""
    ok = {k: v for k, v in peers.items() if v is not None and np.isfinite(v)}
    if ok:
        name, best = min(ok.items(), key=lambda kv: kv[1])
        r = zoneimpact_s / best
        peer = f"zoneimpact/fastest peer ({name}) " + (f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x")
    else:
        peer = "zoneimpact/peer: no peer"
    line = (
        f"ratio {task}: {peer}; zoneimpact/floor {zoneimpact_s / floor_s:.1f}x "
        f"(zoneimpact {zoneimpact_s:.3g} s, floor {floor_s:.3g} s)"
    )
    return line + (f" [{note}]" if note else "")
