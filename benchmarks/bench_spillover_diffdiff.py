"""Side by side with diff-diff's ``SpilloverDiD`` (Butts 2021 rings, Gardner two-stage).

Both estimate the direct effect on zone unit-periods and one spillover effect per distance
ring, against units beyond the last ring, under parallel trends; both impute ``Y(0)`` from
a two-way model on untreated, unexposed rows. The estimands coincide; the fitted rows do
not quite: diff-diff fits one stage-1 model on every untreated-and-unexposed row and reads
all effects off one stage-2 regression, zoneimpact fits each piece on its own clean rows
(the direct piece also uses the zone units' pre-zone rows, a ring piece its units'
pre-exposure rows; see ``zoneimpact.estimators.spillover``). With one adoption date and
never-exposed controls (``controls="never_exposed"``) the two coincide: measured here, the
direct and both ring estimates agree to every printed decimal in all three worlds. The
script prints both, the truth, and the time of each (diff-diff with Conley SEs as its docs
recommend, zoneimpact with its joint region-clustered inference and 999 bootstrap draws),
then after both tools the floor on the same frame (``bench_ratios.floor``: the unit, year
and outcome columns read into numpy and three passes, see ``benchmarks/_floor.py``), and
one ratio line per world and one for the medians: zoneimpact / diff-diff and zoneimpact /
floor.

Run (needs the ``compare`` extra):  python benchmarks/bench_spillover_diffdiff.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from _floor import long_floor, ratio_line, time_floor

from zoneimpact.estimators import spillover
from zoneimpact.simulate import simulate

RINGS_KM = [0.0, 50.0, 100.0]


def world(seed: int):
    return simulate(
        rng=seed,
        n_units=600,
        n_regions=30,
        first_year=2000,
        last_year=2015,
        waves={2008: 1.0},
        radius_km=100.0,
        displacement_share=0.5,
    )


def run_zoneimpact(sim) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = spillover.fit(
            sim.panel,
            outcome="fdi",
            exposure="rings",
            rings_km=list(zip(RINGS_KM[:-1], RINGS_KM[1:], strict=True)),
            controls="never_exposed",
            n_boot=999,
            rng=1,
        )
    dt = time.perf_counter() - t0
    t = r.terms.set_index("term")
    out = {"direct": t.loc["direct", "estimate"], "direct_se": t.loc["direct", "se"]}
    for lo, hi in zip(RINGS_KM[:-1], RINGS_KM[1:], strict=True):
        k = f"spillover:{lo:g}-{hi:g}km"
        out[f"ring {lo:g}-{hi:g}"] = t.loc[k, "estimate"] if k in t.index else np.nan
    return out, dt


def run_diffdiff(sim) -> tuple[dict[str, float], float]:
    from diff_diff import SpilloverDiD

    df = sim.frame.merge(sim.geography[["unit", "lat", "lon"]], on="unit")
    df = df.assign(first_treat=df["cohort"])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SpilloverDiD(
            rings=RINGS_KM,
            vcov_type="conley",
            conley_coords=("lat", "lon"),
            conley_cutoff_km=100.0,
            conley_lag_cutoff=0,
        )
        res = est.fit(df, outcome="fdi", unit="unit", time="year", first_treat="first_treat")
    dt = time.perf_counter() - t0
    out = {"direct": float(res.att), "direct_se": float(res.se)}
    spill = res.spillover_effects
    for k, (lo, hi) in enumerate(zip(RINGS_KM[:-1], RINGS_KM[1:], strict=True)):
        out[f"ring {lo:g}-{hi:g}"] = float(spill.iloc[k]["coef"]) if len(spill) > k else np.nan
    return out, dt


def main() -> None:
    rows, times = [], {"zoneimpact": [], "diff-diff": [], "floor": []}
    lines = []
    for seed in range(3):
        sim = world(seed)
        z, tz = run_zoneimpact(sim)
        d, td = run_diffdiff(sim)
        tf = time_floor(long_floor(sim.frame, "unit", "year", "fdi"))
        times["zoneimpact"].append(tz)
        times["diff-diff"].append(td)
        times["floor"].append(tf)
        lines.append(ratio_line(f"spillover rings, world {seed}", tz, {"diff-diff": td}, tf))
        truth = {"direct": sim.truth.overall["fdi"]}
        rows += [
            {"seed": seed, "tool": "truth", **truth},
            {"seed": seed, "tool": "zoneimpact", **z},
            {"seed": seed, "tool": "diff-diff", **d},
        ]
    pd.set_option("display.width", 160)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    tz, td = np.median(times["zoneimpact"]), np.median(times["diff-diff"])
    tf = float(np.median(times["floor"]))
    print(f"median time: zoneimpact {tz:.3f} s, diff-diff {td:.3f} s, ratio {tz / td:.2f}")
    print("\n".join(lines))
    print(ratio_line("spillover rings, median of 3 worlds", tz, {"diff-diff": td}, tf))


if __name__ == "__main__":
    main()
