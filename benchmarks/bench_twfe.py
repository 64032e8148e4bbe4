"""Benchmark: the TWFE engine (absorption + bincount sandwich) against linearmodels and
pyfixest across panel sizes, in one process (the timings quoted in
``zoneimpact/estimators/twfe.py``). Median wall time of repeated fits from an in-memory
DataFrame; building zoneimpact's Panel is included. Shared machine: wall times move with
the other load; compare the ratios. The floor (``bench_ratios.floor``: the same columns
read into numpy and three passes, see ``benchmarks/_floor.py``) is timed after the tools
on the same data, and one line per size and model gives zoneimpact / fastest peer and
zoneimpact / floor.

Run:  python benchmarks/bench_twfe.py [--sizes 30 1000 100000] [--years 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _floor import ratio_line
from bench_ratios import floor
from bench_scale import lm_twfe, pf_twfe, twfe_data, zi_twfe


def median_time(func, df: pd.DataFrame, reps: int) -> tuple[float, float]:
    times, est = [], np.nan
    for _ in range(reps):
        t0 = time.perf_counter()
        est = func(df)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(est)


def floor_step(df: pd.DataFrame, three: bool) -> float:
    floor(df)
    return np.nan  # the floor estimates nothing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", type=int, default=[30, 1_000, 100_000])
    ap.add_argument("--years", type=int, default=10)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    tools = {
        "zoneimpact": zi_twfe,
        "pyfixest": pf_twfe,
        "linearmodels": lm_twfe,
        "floor": floor_step,
    }
    rows = []
    for n in args.sizes:
        df = twfe_data(n_units=n, n_years=args.years)
        reps = 20 if n <= 1_000 else 3
        for three in (False, True):
            for name, func in tools.items():
                sec, est = median_time(lambda d, f=func, th=three: f(d, th), df, reps)
                rows.append(
                    {
                        "units": n,
                        "rows": len(df),
                        "fe": 3 if three else 2,
                        "tool": name,
                        "seconds": sec,
                        "estimate": est,
                    }
                )
    out = pd.DataFrame(rows)
    zi = out[out.tool == "zoneimpact"].set_index(["units", "fe"])["seconds"]
    out["ratio_to_zoneimpact"] = (
        out.seconds / zi.loc[list(zip(out.units, out.fe, strict=True))].to_numpy()
    )
    print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for (n, fe), grp in out.groupby(["units", "fe"], sort=False):
        sec = grp.set_index("tool")["seconds"]
        peers = {k: v for k, v in sec.items() if k not in ("zoneimpact", "floor")}
        print(ratio_line(f"TWFE {n} units, {fe} FE", sec["zoneimpact"], peers, sec["floor"]))


if __name__ == "__main__":
    main()
