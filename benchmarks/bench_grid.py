"""Gridded exposure at scale and the out-of-core ring-spillover CS (issue 19 item 3).

A simulated 1 km grid (projected metres) of ``--cells`` cells observed for ``--years``
years, with ``--zones`` point zones opening in staggered years (2003-2009) anywhere over
the grid and up to 5 km beyond it. Known truth: a direct effect of 2.0 on cells within 1 km
of an open zone, spillovers of 0.5 on cells whose closest zone lies 1-5 km away and 0.2 at
5-10 km (from their exposure onset; non-zone cells only), cell effects, a common trend and N(0, 1) noise;
float32 outcomes, int32 cell ids and years.

Stages, each in its own process so that its peak memory (``ru_maxrss``) is its own:

1. ``exposure``: :func:`zoneimpact.grid.grid_exposure` (rings 0-1 treated, 1-5, 5-10 km);
   prints its wall time and peak RSS; then writes the panel chunk by chunk (``--chunk``
   cells x all years per Parquet file) under ``--out``, never all in memory.
2. ``stream``: :func:`zoneimpact.grid.ring_cs_from_parquet` for all pieces at once (one
   pass over the year column, then two over the Parquet files), CS with never-treated
   (clean) controls and no covariates, terms ``att``, ``event:E``, ``event_avg``; prints
   time, peak RSS (of the whole process, reading the exposure table included) and the
   terms; then again for the overall ATT alone (``event_study=False``).
3. ``memory`` (``--compare``): the same pieces with ``callaway_santanna.fit`` on the
   panels ``ExposureMap.panels(controls="never_exposed", pre_exposed="drop_units")``
   builds from the whole panel read into pandas; prints time, peak RSS and the largest
   differences from the streamed results.

4. ``floor`` (issue 19): the same data touched as cheaply as possible, in its own process:
   ``_floor.matrix_floor`` on the cells' x, y coordinates (the exposure stage's input:
   column means, row sums, one matrix-vector product) and ``_floor.parquet_floor`` on the
   panel's Parquet files (cell, year, y read batch by batch, once; three passes per batch:
   integer cell codes, sums by cell and by year). No peer computes gridded ring exposure or
   the streamed ring CS, so each stage's ratio line says "no peer" and gives zoneimpact /
   floor.

One thread everywhere (``OPENBLAS_NUM_THREADS=1``, pyarrow's CPU and I/O pools of one
thread); the machine is shared, so wall times move with the other load. The Parquet files
are deleted at the end unless ``--keep``.

Run:  python benchmarks/bench_grid.py --cells 10000000 --zones 3000   (100M rows)
      python benchmarks/bench_grid.py --cells 1000000 --zones 300 --compare   (10M rows)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _floor import matrix_floor, parquet_floor, ratio_line, time_floor

YEARS0 = 2001
RINGS = (1.0, 5.0, 10.0)
EFFECTS = {"direct": 2.0, "spillover:1-5km": 0.5, "spillover:5-10km": 0.2}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_thread() -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _grid_shape(n_cells: int) -> tuple[int, int]:
    nx = int(np.ceil(np.sqrt(n_cells)))
    while n_cells % nx:
        nx += 1
    return nx, n_cells // nx


def _zones(n_zones: int, nx: int, ny: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "zone": np.arange(n_zones, dtype=np.int32),
            "x": rng.uniform(-5, nx + 5, n_zones) * 1000.0,
            "y": rng.uniform(-5, ny + 5, n_zones) * 1000.0,
            "opening": rng.integers(2003, 2010, n_zones).astype(np.int32),
        }
    )


def _cells(n_cells: int) -> pd.DataFrame:
    nx, _ = _grid_shape(n_cells)
    cid = np.arange(n_cells, dtype=np.int32)
    return pd.DataFrame(
        {"cell": cid, "x": (cid % nx) * 1000.0 + 500.0, "y": (cid // nx) * 1000.0 + 500.0}
    )


def stage_exposure(a: argparse.Namespace) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from zoneimpact.grid import grid_exposure

    _one_thread()
    nx, ny = _grid_shape(a.cells)
    cells = _cells(a.cells)
    cid = cells["cell"].to_numpy()
    zones = _zones(a.zones, nx, ny, a.seed)
    rss0 = _peak_mb()
    t0 = time.perf_counter()
    tab = grid_exposure(cells, zones, rings_km=RINGS, coords="xy", chunk_size=500_000)
    t_exp = time.perf_counter() - t0
    peak_exp = _peak_mb()
    del cells
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "panel").mkdir(parents=True)
    keep = ["role", "cohort", "exposure_onset", "ring"]
    tab[keep].assign(ring=tab["ring"].astype(str), role=tab["role"].astype(str)).to_parquet(
        out / "exposure.parquet"
    )
    years = np.arange(YEARS0, YEARS0 + a.years, dtype=np.int32)
    g = tab["cohort"].to_numpy()
    e = tab["exposure_onset"].to_numpy()
    ring = tab["ring"].cat.codes.to_numpy()
    cats = list(tab["ring"].cat.categories)
    spill = np.zeros(len(cats))
    spill[cats.index("1-5km")] = EFFECTS["spillover:1-5km"]
    spill[cats.index("5-10km")] = EFFECTS["spillover:5-10km"]
    t0 = time.perf_counter()
    for k, lo in enumerate(range(0, a.cells, a.chunk)):
        hi = min(lo + a.chunk, a.cells)
        rng = np.random.default_rng([a.seed, k])
        m = hi - lo
        t = years[None, :]
        y = rng.standard_normal((m, a.years), dtype=np.float32)
        y += rng.standard_normal((m, 1), dtype=np.float32) + np.float32(0.1) * (t - 2000)
        y += EFFECTS["direct"] * (t >= g[lo:hi, None])
        # spillovers on non-zone cells only: the direct effect stays 2.0 for zone cells
        y += (spill[ring[lo:hi]] * np.isinf(g[lo:hi]))[:, None] * (t >= e[lo:hi, None])
        table = pa.table(
            {
                "cell": np.repeat(cid[lo:hi], a.years),
                "year": np.tile(years, m),
                "y": y.astype(np.float32).ravel(),
            }
        )
        pq.write_table(table, out / "panel" / f"part-{k:04d}.parquet")
    t_gen = time.perf_counter() - t0
    summary = tab.groupby(["role", "ring"], observed=True).size()
    return {
        "stage": "exposure",
        "cells": a.cells,
        "grid": f"{nx} x {ny} km",
        "zones": a.zones,
        "exposure_s": round(t_exp, 2),
        "exposure_peak_MB": round(peak_exp, 0),
        "exposure_MB_above_inputs": round(peak_exp - rss0, 0),
        "generate_s": round(t_gen, 2),
        "rows": a.cells * a.years,
        "parquet_MB": round(sum(f.stat().st_size for f in (out / "panel").iterdir()) / 2**20),
        "cells_by_role_ring": {f"{r}/{q or '-'}": int(v) for (r, q), v in summary.items()},
        "peak_MB": round(_peak_mb(), 0),
    }


def _terms(res: dict) -> dict:
    return {
        k: {
            "n_units": int(r.n_units),
            "att": float(r.estimate),
            "se": float(r.se),
            "terms": r.terms[["term", "estimate", "se"]].to_dict("list"),
        }
        for k, r in res.items()
    }


def stage_stream(a: argparse.Namespace) -> dict:
    from zoneimpact.grid import ring_cs_from_parquet, ring_pieces

    _one_thread()
    out = Path(a.out)
    tab = pd.read_parquet(out / "exposure.parquet")
    t0 = time.perf_counter()
    res = ring_cs_from_parquet(out / "panel", tab, batch_rows=a.batch)
    t_all = time.perf_counter() - t0
    peak_all = _peak_mb()
    # the overall ATT alone: one influence-function accumulator per cell and piece
    t0 = time.perf_counter()
    att_only = ring_cs_from_parquet(out / "panel", tab, batch_rows=a.batch, event_study=False)
    t_att = time.perf_counter() - t0
    same = max(
        max(abs(att_only[k].estimate - res[k].estimate), abs(att_only[k].se / res[k].se - 1))
        for k in res
    )
    return {
        "stage": "stream",
        "pieces": list(ring_pieces(tab)),
        "stream_s": round(t_all, 2),
        "peak_MB": round(peak_all, 0),
        "att_only_s": round(t_att, 2),
        "att_only_vs_full_max_diff": same,
        "results": _terms(res),
    }


def stage_memory(a: argparse.Namespace) -> dict:
    from zoneimpact.estimators import callaway_santanna
    from zoneimpact.exposure import ExposureMap
    from zoneimpact.panel import Panel

    _one_thread()
    out = Path(a.out)
    tab = pd.read_parquet(out / "exposure.parquet")
    tab.index.name = "unit"
    t0 = time.perf_counter()
    long = pd.read_parquet(out / "panel")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    cohort = tab["cohort"].to_numpy()[long["cell"].to_numpy()]  # cells are 0..n-1
    long["cohort"] = np.where(np.isfinite(cohort), cohort, 0.0)
    panel = Panel.from_frame(
        long, unit="cell", time="year", cohort="cohort", outcomes=["y"], outside_window="adjust"
    )
    del long
    tab = tab.assign(distance_km=np.nan)[
        ["role", "cohort", "exposure_onset", "ring", "distance_km"]
    ]
    rings = tuple(sorted({r for r in tab["ring"] if r}, key=lambda s: float(s.split("-")[0])))
    emap = ExposureMap(kind="rings", table=tab, rings=rings)
    direct, spill = emap.panels(panel, controls="never_exposed", pre_exposed="drop_units")
    pieces = {f"spillover:{r}": p for r, p in spill.items()} | {"direct": direct}
    del panel
    res = {
        k: callaway_santanna.fit(p, outcome="y", bootstrap=False, aggregations=["dynamic"])
        for k, p in pieces.items()
    }
    return {
        "stage": "memory",
        "read_s": round(t_read, 2),
        "fit_s": round(time.perf_counter() - t0, 2),
        "peak_MB": round(_peak_mb(), 0),
        "results": _terms(res),
    }


def stage_floor(a: argparse.Namespace) -> dict:
    _one_thread()
    cells = _cells(a.cells)
    t_cells = time_floor(lambda: matrix_floor(cells[["x", "y"]].to_numpy(float)))
    panel = parquet_floor(Path(a.out) / "panel", "cell", "year", "y", batch_rows=a.batch)
    t0 = time.perf_counter()
    panel()  # once: a second read would find the files in the page cache
    t_panel = time.perf_counter() - t0
    return {"stage": "floor", "cells_floor_s": t_cells, "panel_floor_s": t_panel}


def _run(stage: str, a: argparse.Namespace) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = [sys.executable, __file__, "--stage", stage, *sys.argv[1:]]
    t0 = time.perf_counter()
    p = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if p.returncode:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"stage {stage} failed")
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["process_s"] = round(time.perf_counter() - t0, 2)
    return rec


def _compare(stream: dict, memory: dict) -> dict:
    out = {}
    for k, s in stream["results"].items():
        m = memory["results"][k]
        ms = dict(
            zip(
                m["terms"]["term"],
                zip(m["terms"]["estimate"], m["terms"]["se"], strict=True),
                strict=True,
            )
        )
        d_est = max(
            abs(e - ms[t][0])
            for t, e in zip(s["terms"]["term"], s["terms"]["estimate"], strict=True)
        )
        d_se = max(
            abs(v / ms[t][1] - 1) for t, v in zip(s["terms"]["term"], s["terms"]["se"], strict=True)
        )
        out[k] = {"max_abs_diff_estimate": d_est, "max_rel_diff_se": d_se}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cells", type=int, default=10_000_000)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--zones", type=int, default=3000)
    ap.add_argument("--chunk", type=int, default=500_000, help="cells per Parquet file")
    ap.add_argument("--batch", type=int, default=2_000_000, help="rows per streamed batch")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", default="/tmp/zoneimpact_bench_grid")
    ap.add_argument("--compare", action="store_true", help="also the in-memory CS")
    ap.add_argument("--keep", action="store_true", help="keep the Parquet files")
    ap.add_argument(
        "--stage", choices=["exposure", "stream", "memory", "floor"], help=argparse.SUPPRESS
    )
    a = ap.parse_args()
    if a.stage:
        fn = {
            "exposure": stage_exposure,
            "stream": stage_stream,
            "memory": stage_memory,
            "floor": stage_floor,
        }
        print(json.dumps(fn[a.stage](a)))
        return
    print(
        f"grid panel: {a.cells:,} cells x {a.years} years = {a.cells * a.years:,} rows, "
        f"{a.zones:,} zones; truth {EFFECTS}"
    )
    recs = {"exposure": _run("exposure", a)}
    print(json.dumps(recs["exposure"], indent=1))
    recs["stream"] = _run("stream", a)
    _report(recs["stream"])
    if a.compare:
        recs["memory"] = _run("memory", a)
        _report(recs["memory"])
        print(
            "streamed vs in-memory:", json.dumps(_compare(recs["stream"], recs["memory"]), indent=1)
        )
    recs["floor"] = _run("floor", a)
    f_cells, f_panel = recs["floor"]["cells_floor_s"], recs["floor"]["panel_floor_s"]
    print(ratio_line("grid_exposure", recs["exposure"]["exposure_s"], {}, f_cells))
    print(ratio_line("streamed ring CS, event study", recs["stream"]["stream_s"], {}, f_panel))
    print(ratio_line("streamed ring CS, ATT only", recs["stream"]["att_only_s"], {}, f_panel))
    if "memory" in recs:
        t_mem = recs["memory"]["read_s"] + recs["memory"]["fit_s"]
        print(ratio_line("in-memory ring CS (read + fit)", t_mem, {}, f_panel))
    if not a.keep:
        shutil.rmtree(a.out, ignore_errors=True)


def _report(rec: dict) -> None:
    head = {k: v for k, v in rec.items() if k != "results"}
    print(json.dumps(head))
    for k, r in rec["results"].items():
        ev = dict(zip(r["terms"]["term"], r["terms"]["estimate"], strict=True))
        print(
            f"  {k:18s} n_cells={r['n_units']:>10,}  att={r['att']:.4f} (se {r['se']:.4f}, "
            f"truth {EFFECTS[k]})  event_avg={ev['event_avg']:.4f}  event:-2={ev.get('event:-2', np.nan):.4f}"
        )


if __name__ == "__main__":
    main()
