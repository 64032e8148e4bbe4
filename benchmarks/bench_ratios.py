"""zoneimpact beside the fastest peer and the floor, for the tasks of issue 19.

Each run is a fresh process with one BLAS/Rayon thread (so peak memory is that run's
alone); the tools alternate (zoneimpact, peer, floor, zoneimpact, ...) on the same data,
so a change in the shared machine's load hits both. Printed per run: wall and CPU
seconds of the timed step, the process's peak resident memory (``ru_maxrss``) and the
memory the step added; then the ratios zoneimpact / peer and zoneimpact / floor (median
over the repetitions).

Cases (what is timed):

* ``imp500k``: imputation (BJS 2024) event study with its Theorem 3 standard errors on
  500,000 units x 10 periods, from the in-memory DataFrame (zoneimpact's validated
  ``Panel`` included) -- vs diff-diff ``ImputationDiD(aggregate="event_study")``.
* ``sdid1000``: SDID with 200 placebo replications (the standard error included) on 1
  treated x 1,000 donors x 40 periods -- vs diff-diff ``SyntheticDiD(variance_method=
  "placebo", n_bootstrap=200)``.
* ``panel5m``: ``Panel.from_frame`` on the 5,000,000-row panel of ``imp500k``, in
  (unit, period) order and shuffled.
* ``prop99``: SDID fit + 200 placebo replications (the standard error included) on Prop 99
  (California vs 38 states, 1970-2000, ``../shared/data/canonical``) -- vs diff-diff
  ``SyntheticDiD(variance_method="placebo", n_bootstrap=200)``. A half-second task: each
  process runs it once untimed first (imports, caches), then times the median of five
  runs.

The floor reads the same columns into numpy and makes three passes over them (unit
codes and two grouped sums, the work of one two-way demeaning sweep): no estimator can
do less. It is what the ratio to the floor divides by.

Run:  python benchmarks/bench_ratios.py [--cases imp500k sdid1000 panel5m] [--reps 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _floor import ratio_line  # noqa: E402


def sdid_data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    N, T, T0 = 1001, 40, 30
    L = rng.uniform(0, 1, (N, 3))
    F = np.cumsum(rng.normal(0, 1, (T, 3)), axis=0)
    Y = L @ F.T + rng.normal(0, 0.5, (N, T))
    g = np.zeros(N)
    g[0] = T0
    return pd.DataFrame(
        {
            "unit": np.repeat([f"u{i:04d}" for i in range(N)], T),
            "year": np.tile(np.arange(T), N),
            "y": Y.ravel(),
            "first_treat": np.repeat(g, T).astype(int),
        }
    )


def prop99_data() -> pd.DataFrame:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "..", "shared", "data", "canonical", "california_prop99.csv")
    return pd.read_csv(path, sep=";")


def zi_prop99(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import synthetic_did as sdid
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    p = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    r = sdid.fit(
        p, outcome="PacksPerCapita", rng=np.random.default_rng(1), se_method="placebo", n_reps=200
    )
    return r.se


def dd_prop99(df: pd.DataFrame) -> float:
    from diff_diff import SyntheticDiD

    d = df.assign(treat=(df["State"] == "California").astype(int))
    r = SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
        d,
        outcome="PacksPerCapita",
        treatment="treat",
        unit="State",
        time="Year",
        post_periods=list(range(1989, 2001)),
    )
    return float(r.se)


def did500k() -> pd.DataFrame:
    from bench_scale import did_data

    return did_data(500_000)


def floor(df: pd.DataFrame) -> float:
    code, _ = pd.factorize(df["unit"])
    y = df["y"].to_numpy(float)
    t = pd.factorize(df["year"])[0]
    by_unit = np.bincount(code, weights=y)[code]
    by_time = np.bincount(t, weights=y - by_unit)
    return float(by_time.sum())


def zi_imp(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import imputation
    from zoneimpact.panel import Panel

    p = Panel.from_frame(df, unit="unit", time="year", outcomes="y", cohort="first_treat")
    return imputation.fit(p, outcome="y").estimate


def dd_imp(df: pd.DataFrame) -> float:
    from diff_diff import ImputationDiD

    r = ImputationDiD().fit(
        df,
        outcome="y",
        unit="unit",
        time="year",
        first_treat="first_treat",
        aggregate="event_study",
    )
    return float(r.overall_att)


def zi_sdid(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import synthetic_did as sdid
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    p = Panel.from_frame(df, unit="unit", time="year", outcomes="y", cohort="first_treat")
    r = sdid.fit(p, outcome="y", rng=np.random.default_rng(1), se_method="placebo", n_reps=200)
    return r.se


def dd_sdid(df: pd.DataFrame) -> float:
    from diff_diff import SyntheticDiD

    d = df.assign(treat=(df["first_treat"] > 0).astype(int))
    r = SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
        d,
        outcome="y",
        treatment="treat",
        unit="unit",
        time="year",
        post_periods=list(range(30, 40)),
    )
    return float(r.se)


def zi_panel(df: pd.DataFrame) -> float:
    from zoneimpact.panel import Panel

    return Panel.from_frame(
        df, unit="unit", time="year", outcomes="y", cohort="first_treat"
    ).n_units


def shuffled(make):
    return lambda: make().sample(frac=1.0, random_state=0)


CASES = {
    "imp500k": (
        "Imputation event study + SEs, 500,000 x 10",
        did500k,
        {"zoneimpact": zi_imp, "diff-diff": dd_imp},
    ),
    "sdid1000": (
        "SDID + 200 placebo SE, 1 x 1,000 x 40",
        sdid_data,
        {"zoneimpact": zi_sdid, "diff-diff": dd_sdid},
    ),
    "panel5m": ("Panel.from_frame, 5,000,000 rows (sorted)", did500k, {"zoneimpact": zi_panel}),
    "prop99": (
        "SDID + 200 placebo SE, Prop 99 (1 x 38 x 31)",
        prop99_data,
        {"zoneimpact": zi_prop99, "diff-diff": dd_prop99},
    ),
    "panel5m_shuffled": (
        "Panel.from_frame, 5,000,000 rows (shuffled)",
        shuffled(did500k),
        {"zoneimpact": zi_panel},
    ),
}


#: Cases short enough to be timed warm: one untimed run, then the median of this many.
WARM_RUNS = {"prop99": 5}
#: The (unit, period, outcome) columns the floor reads where they are not unit/year/y.
FLOOR_COLUMNS = {"prop99": ("State", "Year", "PacksPerCapita")}


def run_one(case: str, tool: str) -> None:
    _, make, tools = CASES[case]
    df = make()
    if tool == "floor":
        cols = FLOOR_COLUMNS.get(case, ("unit", "year", "y"))
        frame = df[list(cols)].set_axis(["unit", "year", "y"], axis=1)
        step = lambda: floor(frame)  # noqa: E731
    else:
        step = lambda: tools[tool](df)  # noqa: E731
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case in WARM_RUNS:
            step()
        times = []
        for _ in range(WARM_RUNS.get(case, 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            val = step()
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, cpu = (float(v) for v in np.median(np.array(times), axis=0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"wall": wall, "cpu": cpu, "peak_MB": peak, "step_MB": peak - base, "value": val}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        run_one(*a.one)
        return
    for case in a.cases:
        title, _, tools = CASES[case]
        recs: dict[str, list[dict]] = {}
        for _ in range(a.reps):
            for tool in [*tools, "floor"]:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", case, tool], capture_output=True, text=True
                )
                if out.returncode != 0:
                    print(
                        f"  {tool}: failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:100]}"
                    )
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                recs.setdefault(tool, []).append(r)
                print(
                    f"  {case} {tool:<11} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  "
                    f"peak {r['peak_MB']:6.0f} MB  step +{r['step_MB']:6.0f} MB  value {r['value']:.6g}",
                    flush=True,
                )
        med = {
            t: {
                k: float(np.median([r[k] for r in rs]))
                for k in ("wall", "cpu", "peak_MB", "step_MB")
            }
            for t, rs in recs.items()
        }
        print(title)
        z = med.get("zoneimpact")
        for t, m in med.items():
            line = f"  {t:<11} wall {m['wall']:7.2f} s  cpu {m['cpu']:7.2f} s  peak {m['peak_MB']:6.0f} MB"
            if z is not None and t != "zoneimpact":
                line += (
                    f"   zoneimpact/{t}: wall {z['wall'] / m['wall']:.2f}x, cpu {z['cpu'] / m['cpu']:.2f}x, "
                    f"peak {z['peak_MB'] / m['peak_MB']:.2f}x"
                )
            print(line, flush=True)
        if z is not None and "floor" in med:
            peers = {t: m["wall"] for t, m in med.items() if t not in ("zoneimpact", "floor")}
            print(ratio_line(title, z["wall"], peers, med["floor"]["wall"], note="wall, medians"))


if __name__ == "__main__":
    main()
