"""Benchmark: Callaway-Sant'Anna with 999 multiplier-bootstrap draws on 50,000 x 10.

Times zoneimpact beside diff-diff and csdid in one process (never-treated controls, no
covariates, 999 bootstrap draws, all aggregations each tool computes by default plus
the event-study aggregation), prints wall times, ratios, the overall ATT of each tool,
and peak traced memory (tracemalloc, a second untimed run per tool). Wall and CPU times
are both printed: on a shared machine the wall time depends on the other load. After the
tools, the floor (``bench_ratios.floor``: the same columns read into numpy and three
passes, see ``benchmarks/_floor.py``) is timed on the same frame, and a ratio line gives
zoneimpact / fastest peer and zoneimpact / floor.

Run:  python benchmarks/bench_cs.py [--units 50000] [--periods 10] [--skip csdid]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from _floor import long_floor, ratio_line, time_floor


def make_panel(n_units: int, n_periods: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_periods)
    cohorts = np.r_[0, years[3:]]  # never treated + staggered from the 4th period
    probs = np.r_[0.3, np.full(len(cohorts) - 1, 0.7 / (len(cohorts) - 1))]
    g = rng.choice(cohorts, size=n_units, p=probs)
    unit_fe = rng.normal(0, 1, n_units)
    time_fe = np.linspace(0, 1, n_periods)
    e = years[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.1 * e, 0.0)
    y = unit_fe[:, None] + time_fe[None, :] + effect + rng.normal(0, 1, (n_units, n_periods))
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_periods),
            "year": np.tile(years, n_units),
            "first_treat": np.repeat(g, n_periods),
            "y": y.ravel(),
        }
    )


def run_zoneimpact(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import callaway_santanna as cs
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    panel = Panel.from_frame(df, unit="unit", time="year", outcomes="y", cohort="first_treat")
    res = cs.fit(panel, outcome="y", rng=np.random.default_rng(7), n_boot=999)
    return res.estimate


def run_diff_diff(df: pd.DataFrame) -> float:
    from diff_diff import CallawaySantAnna

    est = CallawaySantAnna(
        control_group="never_treated", estimation_method="reg", n_bootstrap=999, seed=7
    )
    res = est.fit(
        df, outcome="y", unit="unit", time="year", first_treat="first_treat", aggregate="all"
    )
    return float(res.overall_att)


def run_csdid(df: pd.DataFrame) -> float:
    from csdid.att_gt import ATTgt

    m = ATTgt(
        yname="y",
        tname="year",
        idname="unit",
        gname="first_treat",
        data=df,
        control_group=["nevertreated"],
        biters=999,
    )
    m.fit(est_method="reg", bstrap=True)
    m.aggte(typec="dynamic", bstrap=True, biters=999)
    m.aggte(typec="simple", bstrap=True, biters=999)
    return float(m.atte["overall_att"])


TOOLS = {"zoneimpact": run_zoneimpact, "diff-diff": run_diff_diff, "csdid": run_csdid}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=50_000)
    ap.add_argument("--periods", type=int, default=10)
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    # imports are done up front so that timings compare estimation, not module loading
    import csdid.att_gt  # noqa: F401
    import diff_diff  # noqa: F401

    import zoneimpact.estimators.callaway_santanna  # noqa: F401

    df = make_panel(args.units, args.periods)
    print(f"panel: {args.units} units x {args.periods} periods, 999 bootstrap draws")
    times, cpu, atts, peaks = {}, {}, {}, {}
    for name, func in TOOLS.items():
        if name in args.skip:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()
            t0 = time.perf_counter()
            c0 = time.process_time()
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # csdid prints its tables
                    atts[name] = func(df.copy())
            except Exception as exc:  # a peer failing must not stop the benchmark
                print(f"{name}: failed ({type(exc).__name__}: {exc})")
                continue
            times[name] = time.perf_counter() - t0
            cpu[name] = time.process_time() - c0
            if not args.no_memory:
                gc.collect()
                tracemalloc.start()
                with contextlib.redirect_stdout(io.StringIO()):
                    func(df.copy())
                peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        print(
            f"{name:11s} wall {times[name]:7.2f} s  cpu {cpu[name]:7.2f} s   ATT {atts[name]:.5f}"
            + (f"   peak {peaks[name]:7.0f} MiB" if name in peaks else "")
        )
    floor_s = time_floor(long_floor(df))
    print(f"{'floor':11s} wall {floor_s:7.4f} s")
    if "zoneimpact" in times:
        for name, t in times.items():
            if name != "zoneimpact":
                print(
                    f"{name} / zoneimpact: wall {t / times['zoneimpact']:.1f}x, "
                    f"cpu {cpu[name] / cpu['zoneimpact']:.1f}x"
                )
        peers = {k: v for k, v in times.items() if k != "zoneimpact"}
        print(ratio_line("CS + 999 bootstrap draws", times["zoneimpact"], peers, floor_s))


if __name__ == "__main__":
    main()
