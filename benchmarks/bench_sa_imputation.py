"""Sun-Abraham, imputation (BJS) and Goodman-Bacon: Monte Carlo and timing against peers.

Part 1 (Monte Carlo): simulated staggered zone panels (zoneimpact.simulate, no spillover)
with cohort-heterogeneous, growing effects; prints bias, bias/SD and 95% CI coverage of
the event-time effects e = 0..2 (and the imputation ATT) against the simulated truth.

Part 2 (timing): a 20,000 x 10 staggered panel; wall time of zoneimpact's Sun-Abraham vs
pyfixest's saturated event study and diff-diff's SunAbraham, and of the imputation
estimator vs diff-diff's ImputationDiD, with the ratio and the max abs difference of the
event-time estimates. Peers that are not installed are skipped.

Run:  python benchmarks/bench_sa_imputation.py [--reps 500] [--units 20000] [--skip-mc]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def mc(reps: int) -> None:
    from zoneimpact.estimators import imputation, sun_abraham
    from zoneimpact.parallel import replicate, set_progress
    from zoneimpact.simulate import simulate

    set_progress(False)
    es = [0, 1, 2]

    def one(item: int, rng: np.random.Generator) -> np.ndarray:
        sim = simulate(
            rng=rng,
            n_units=150,
            n_regions=10,
            first_year=2004,
            last_year=2013,
            waves={2007: 0.4, 2009: 0.3, 2011: 0.3},
            displacement_share=0.0,
            agglomeration=0.0,
            zero_share=0.0,
        )
        truth = sim.truth.event.query("outcome == 'fdi'").set_index("event_time")["att"]
        tv = np.array([truth[e] for e in es])
        rows = []
        for est in (sun_abraham, imputation):
            r = est.fit(sim.panel, outcome="fdi")
            names = [f"event:{e}" for e in es]
            b = r.terms.set_index("term").loc[names, "estimate"].to_numpy()
            ci = r.conf_int().loc[names]
            cov = (ci["lower"].to_numpy() <= tv) & (tv <= ci["upper"].to_numpy())
            rows.append(np.r_[b - tv, cov])
        return np.array(rows)

    out = np.array(replicate(one, reps, rng=np.random.default_rng(20261122)))
    for k, name in enumerate(["sun_abraham", "imputation"]):
        err, cov = out[:, k, : len(es)], out[:, k, len(es) :]
        sd = err.std(axis=0, ddof=1)
        print(f"{name}: reps={reps}")
        for j, e in enumerate(es):
            print(
                f"  e={e}: bias={err[:, j].mean():+.4f} sd={sd[j]:.4f} "
                f"bias/sd={err[:, j].mean() / sd[j]:+.3f} (MC se {1 / np.sqrt(reps):.3f}) "
                f"coverage={cov[:, j].mean():.3f}"
            )


def make_panel(n_units: int, n_periods: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_periods)
    cohorts = np.r_[0, years[3:]]
    probs = np.r_[0.3, np.full(len(cohorts) - 1, 0.7 / (len(cohorts) - 1))]
    g = rng.choice(cohorts, size=n_units, p=probs)
    e = years[None, :] - g[:, None]
    eff = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.1 * e, 0.0)
    y = rng.normal(0, 1, n_units)[:, None] + np.linspace(0, 1, n_periods) + eff
    y = y + rng.normal(0, 1, y.shape)
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_periods),
            "year": np.tile(years, n_units),
            "ft": np.repeat(g, n_periods),
            "y": y.ravel(),
        }
    )


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def timing(n_units: int) -> None:
    from zoneimpact.estimators import imputation, sun_abraham
    from zoneimpact.panel import Panel

    warnings.filterwarnings("ignore")
    df = make_panel(n_units, 10)
    panel = Panel.from_frame(df, unit="unit", time="year", outcomes=["y"], cohort="ft")

    def ev(res) -> pd.Series:
        t = res.terms[res.terms["term"].str.startswith("event:")]
        return pd.Series(t["estimate"].to_numpy(), index=[int(s[6:]) for s in t["term"]])

    from bench_ratios import floor

    t_floor, _ = timed(lambda: floor(df))
    print(f"floor (read + 3 passes): {t_floor:.2f}s")
    t_sa, r_sa = timed(lambda: sun_abraham.fit(panel, outcome="y"))
    print(f"zoneimpact sun_abraham: {t_sa:.2f}s  ratio ours/floor {t_sa / t_floor:.1f}")
    try:
        import pyfixest as pf

        t_pf, r_pf = timed(
            lambda: pf.event_study(
                df, yname="y", idname="unit", tname="year", gname="ft", estimator="saturated"
            ).aggregate()
        )
        diff = np.abs(
            ev(r_sa).loc[r_pf.index.astype(float).astype(int)].to_numpy()
            - r_pf["Estimate"].to_numpy(float)
        ).max()
        print(
            f"pyfixest saturated:     {t_pf:.2f}s  ratio ours/peer {t_sa / t_pf:.2f}  max|diff| {diff:.2e}"
        )
    except ImportError:
        print("pyfixest not installed")
    try:
        import diff_diff as dd

        t_dd, r_dd = timed(
            lambda: dd.SunAbraham().fit(df, outcome="y", unit="unit", time="year", first_treat="ft")
        )
        ref = pd.Series({int(k): v["effect"] for k, v in r_dd.event_study_effects.items()})
        print(
            f"diff-diff SunAbraham:   {t_dd:.2f}s  ratio ours/peer {t_sa / t_dd:.2f}  "
            f"max|diff| {np.abs(ev(r_sa).loc[ref.index] - ref).max():.2e}"
        )
        t_im, r_im = timed(lambda: imputation.fit(panel, outcome="y"))
        t_di, r_di = timed(
            lambda: dd.ImputationDiD().fit(
                df, outcome="y", unit="unit", time="year", first_treat="ft", aggregate="event_study"
            )
        )
        ref = pd.Series(
            {int(k): v["effect"] for k, v in r_di.event_study_effects.items() if k >= 0}
        )
        print(f"zoneimpact imputation:  {t_im:.2f}s  ratio ours/floor {t_im / t_floor:.1f}")
        print(
            f"diff-diff ImputationDiD:{t_di:.2f}s  ratio ours/peer {t_im / t_di:.2f}  "
            f"max|diff| {np.abs(ev(r_im).loc[ref.index] - ref).max():.2e}"
        )
    except ImportError:
        print("diff-diff not installed")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--units", type=int, default=20_000)
    ap.add_argument("--skip-mc", action="store_true")
    a = ap.parse_args()
    if not a.skip_mc:
        mc(a.reps)
    timing(a.units)
