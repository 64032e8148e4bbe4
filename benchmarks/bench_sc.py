"""Synthetic-control family: zoneimpact vs pysyncon and diff-diff, same data, one process.

1. ADH (2010) SC with covariates and the full in-space placebo run (38 donors, nested V
   each) -- zoneimpact vs pysyncon (Synth + PlaceboTest), with pre-period RMSPE of each.
2. SDID with a 200-rep placebo SE on Prop 99 -- zoneimpact vs diff-diff SyntheticDiD.
3. 1 treated x 1,000 donors x 40 years (SDID point estimate + outcome-based SC).

Run: python benchmarks/bench_sc.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from zoneimpact.estimators import synthetic_control as sc
from zoneimpact.estimators import synthetic_did as sdid
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

warnings.filterwarnings("ignore")
set_progress(False)
DATA = (
    Path(sys.argv[sys.argv.index("--data-dir") + 1])
    if "--data-dir" in sys.argv
    else Path(__file__).resolve().parents[2] / "shared" / "data"
)
CAN = DATA / "canonical"
PREDICTORS = [
    {"variable": "lnincome", "window": [1980, 1988]},
    {"variable": "retprice", "window": [1980, 1988]},
    {"variable": "age15to24", "window": [1980, 1988]},
    {"variable": "beer", "window": [1984, 1988]},
    {"variable": "cigsale", "years": [1975]},
    {"variable": "cigsale", "years": [1980]},
    {"variable": "cigsale", "years": [1988]},
]


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def bench_adh() -> None:
    df = pd.read_csv(CAN / "smoking_adh_covariates.csv")
    df["first"] = np.where(df["state"] == "California", 1989, 0)
    p = Panel.from_frame(
        df,
        unit="state",
        time="year",
        outcomes="cigsale",
        cohort="first",
        covariates=["lnincome", "beer", "age15to24", "retprice"],
    )
    r, t_ours = timed(
        lambda: sc.fit(
            p,
            outcome="cigsale",
            predictors=PREDICTORS,
            fit_window=[1970, 1988],
            rng=np.random.default_rng(1),
            placebos=True,
        )
    )
    w = r.donor_weights.sort_values(ascending=False).head(6).round(3).to_dict()
    print(
        f"ADH SC + 38 placebos  zoneimpact: {t_ours:6.2f} s  pre-RMSPE {r.info['pre_rmspe']:.3f}  p={r.p_value:.4f}  W={w}"
    )
    try:
        from pysyncon import Dataprep, Synth
        from pysyncon.utils import PlaceboTest
    except ImportError:
        print("  pysyncon not installed")
        return
    dfx = df.copy()
    controls = sorted(set(dfx.state) - {"California"})
    dp = Dataprep(
        foo=dfx,
        predictors=["lnincome", "retprice", "age15to24"],
        predictors_op="mean",
        time_predictors_prior=range(1980, 1989),
        special_predictors=[
            ("beer", range(1984, 1989), "mean"),
            ("cigsale", [1975], "mean"),
            ("cigsale", [1980], "mean"),
            ("cigsale", [1988], "mean"),
        ],
        dependent="cigsale",
        unit_variable="state",
        time_variable="year",
        treatment_identifier="California",
        controls_identifier=controls,
        time_optimize_ssr=range(1970, 1989),
    )

    def peer():
        s = Synth()
        s.fit(dataprep=dp, optim_method="Nelder-Mead", optim_initial="equal")
        pt = PlaceboTest()
        pt.fit(
            dataprep=dp,
            scm=Synth(),
            scm_options={"optim_method": "Nelder-Mead", "optim_initial": "equal"},
            verbose=False,
        )
        return s

    s, t_peer = timed(peer)
    Z0, Z1 = dp.make_outcome_mats(time_period=range(1970, 1989))
    gap = Z1 - Z0 @ s.W
    pw = pd.Series(s.W, index=Z0.columns).sort_values(ascending=False).head(6).round(3).to_dict()
    print(
        f"                      pysyncon:   {t_peer:6.2f} s  pre-RMSPE {float(np.sqrt(np.mean(gap**2))):.3f}  W={pw}"
    )
    print(f"  ratio pysyncon/zoneimpact: {t_peer / t_ours:.2f}")


def bench_sdid() -> None:
    df = pd.read_csv(CAN / "california_prop99.csv", sep=";")
    p = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    r, t_ours = timed(
        lambda: sdid.fit(p, outcome="PacksPerCapita", rng=np.random.default_rng(1), n_reps=200)
    )
    print(f"SDID + 200 placebo SE zoneimpact: {t_ours:6.2f} s  est {r.estimate:.3f} se {r.se:.2f}")
    try:
        from diff_diff import SyntheticDiD
    except ImportError:
        print("  diff-diff not installed")
        return
    d = df.rename(columns={"PacksPerCapita": "y"})
    d["treat"] = (d.State == "California").astype(int)

    def peer():
        return SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
            d,
            outcome="y",
            treatment="treat",
            unit="State",
            time="Year",
            post_periods=list(range(1989, 2001)),
        )

    res, t_peer = timed(peer)
    print(f"                      diff-diff:  {t_peer:6.2f} s  est {res.att:.3f} se {res.se:.2f}")
    print(f"  ratio diff-diff/zoneimpact: {t_peer / t_ours:.2f}")


def bench_large() -> None:
    rng = np.random.default_rng(0)
    N, T, T0 = 1001, 40, 30
    L = rng.uniform(0, 1, (N, 3))
    F = np.cumsum(rng.normal(0, 1, (T, 3)), axis=0)
    Y = L @ F.T + rng.normal(0, 0.5, (N, T))
    units = [f"u{i:04d}" for i in range(N)]
    g = np.zeros(N)
    g[0] = T0
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "time": np.tile(np.arange(T), N),
            "y": Y.ravel(),
            "g": np.repeat(g, T),
        }
    )
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    _, t1 = timed(lambda: sdid.fit(p, outcome="y", se_method=None))
    _, t2 = timed(lambda: sc.fit(p, outcome="y", placebos=False))
    print(f"1 x 1000 x 40: SDID point {t1:.2f} s, outcome SC {t2:.2f} s")
    try:
        from diff_diff import SyntheticDiD

        df["treat"] = (df.unit == "u0000").astype(int)
        _, t3 = timed(
            lambda: SyntheticDiD(variance_method="placebo", n_bootstrap=2, seed=1).fit(
                df,
                outcome="y",
                treatment="treat",
                unit="unit",
                time="time",
                post_periods=list(range(T0, T)),
            )
        )
        print(f"  diff-diff SDID (2 placebo reps): {t3:.2f} s")
    except ImportError:
        pass


if __name__ == "__main__":
    bench_adh()
    bench_sdid()
    bench_large()
