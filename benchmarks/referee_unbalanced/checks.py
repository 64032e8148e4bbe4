"""refU invariance checks (1) no mutation, (2) shuffle+relabel, (3) outcome shift."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import warnings

import numpy as np
import pandas as pd
from dgp import simulate

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

pd.set_option("display.width", 250)
warnings.simplefilter("ignore")


def fit(fr, geo, unit="unit", seed=7, **kw):
    p = Panel.from_frame(
        fr, unit=unit, time="year", outcomes="y", cohort="cohort", covariates=["x"], geography=geo
    )
    return spillover.fit(
        p,
        outcome="y",
        covariates=["x"],
        exposure="rings",
        rings_km=[(0, 50)],
        n_boot=999,
        rng=seed,
        **kw,
    )


def table(r):
    t = r.tidy().set_index("term")
    return t[["estimate", "std_error", "conf_low", "conf_high", "p_value"]]


def maxdiff(a, b):
    # relative difference |a-b| / max(1, |a|), per cell
    d = (a - b).abs() / a.abs().clip(lower=1)
    return d.max().max(), d


for variant in ["a", "b", "c"]:
    fr, geo, tr = simulate(11, variant, "share")
    # (1) no mutation of caller's frame / geography
    fr0, geo0 = fr.copy(deep=True), geo.copy(deep=True)
    r0 = fit(fr, geo)
    print(
        f"[{variant}] (1) frame unchanged: {fr.equals(fr0)}; dtypes same: "
        f"{(fr.dtypes == fr0.dtypes).all()}; geo unchanged: {geo.equals(geo0)}"
    )
    t0 = table(r0)

    # (2) shuffle row order and relabel units (string ids, random permutation)
    rng = np.random.default_rng(123)
    perm = rng.permutation(fr.unit.max() + 1)
    lab = {u: f"city_{perm[u]:04d}" for u in range(fr.unit.max() + 1)}
    fr2 = fr.sample(frac=1, random_state=5).reset_index(drop=True)
    fr2["unit"] = fr2["unit"].map(lab)
    geo2 = geo.sample(frac=1, random_state=6).reset_index(drop=True)
    geo2["unit"] = geo2["unit"].map(lab)
    r2 = fit(fr2, geo2)
    t2 = table(r2)
    m, d = maxdiff(t0, t2)
    print(f"[{variant}] (2) shuffle+relabel units: max rel |diff| over estimate/se/ci/p = {m:.3g}")
    if m > 1e-10:
        print(d[d.max(axis=1) > 1e-10])
    pc = (
        (
            r0.pieces.set_index("piece")[["estimate", "total", "n_target_unit_periods"]]
            - r2.pieces.set_index("piece")[["estimate", "total", "n_target_unit_periods"]]
        )
        .abs()
        .max()
        .max()
    )
    print(f"[{variant}] (2) pieces max diff {pc:.3g}")
    # (2b) additionally relabel regions (bootstrap draw assignment may change)
    geo3 = geo2.copy()
    geo3["region"] = geo3["region"].map({r: f"R{(r * 7) % 24:02d}" for r in range(24)})
    r3 = fit(fr2, geo3)
    t3 = table(r3)
    m3, d3 = maxdiff(t0, t3)
    print(f"[{variant}] (2b) + relabel regions: max rel |diff| = {m3:.3g}")
    if m3 > 1e-10:
        print(d3[d3.max(axis=1) > 1e-10])

    # (3) add a constant to the outcome
    for c in (100.0, 1e4):
        fr4 = fr.copy()
        fr4["y"] = fr4["y"] + c
        r4 = fit(fr4, geo)
        t4 = table(r4)
        m4, d4 = maxdiff(t0, t4)
        rel = (d4["estimate"] / t0["estimate"].abs().clip(lower=1)).max()
        print(f"[{variant}] (3) y+{c:g}: max rel |diff| = {m4:.3g}; max rel est diff {rel:.3g}")
        if m4 > 1e-8:
            print(d4[d4.max(axis=1) > 1e-8])
    print()

# (4) absent rows vs rows present with NaN outcome: should give identical results
for variant in ["a", "b", "c"]:
    fr, geo, tr = simulate(11, variant, "share")
    f = tr["_frame_flags"]
    if variant == "b":
        # rebuild the full grid, absent rows -> y NaN
        full = f[["unit", "year"]].merge(fr, on=["unit", "year"], how="left")
        full["x"] = full.groupby("unit")["x"].transform("first")
        full["cohort"] = full.groupby("unit")["cohort"].transform("first").astype(int)
        alt = full
    else:
        alt = fr[fr.y.notna()].reset_index(drop=True)  # drop NaN-outcome rows
    r0, r1 = fit(fr, geo), fit(alt, geo)
    m, d = maxdiff(table(r0), table(r1))
    print(
        f"[{variant}] (4) rows absent vs NaN outcome ({len(fr)} vs {len(alt)} rows): max rel |diff| = {m:.3g}"
    )
    if m > 1e-8:
        print(d[d.max(axis=1) > 1e-8])
        print(r0.pieces.iloc[:, :5])
        print(r1.pieces.iloc[:, :5])
