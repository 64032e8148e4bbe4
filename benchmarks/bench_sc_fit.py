"""Synthetic control pre-period fit: zoneimpact's nested V beside diff-diff and pysyncon.

Same factor-model panels and the same predictors for every tool; each tool's donor
weights are applied to the raw outcomes and the pre-period RMSPE (the nested criterion,
ADH 2010 Section 2.3) is computed here the same way for all, with wall time (one thread).

* ``adh``: 1 treated x 38 donors x 31 years (1970-2000, treatment 1989), the ADH (2010,
  eq. 5) factor model ``Y_it = delta_t + theta_t Z_i + lambda_t mu_i + e_it`` with two
  observed covariates; predictors as ADH's Table 1: both covariates averaged over
  1980-1988 and the outcome in 1975, 1980 and 1988; criterion over 1970-1988.
* ``large``: 1 treated x 1,000 donors x 40 periods (treatment at 30), three factors,
  predictors the 30 pre-period outcomes (diff-diff's and zoneimpact's default).

After the tools, the floor (``_floor.wide_floor``: the outcome read into the units x
periods matrix, then column means, row sums and one matrix-vector product) is timed on
the same frame; per seed, one ratio line per zoneimpact variant gives zoneimpact / fastest
peer and zoneimpact / floor.

Run:  python benchmarks/bench_sc_fit.py [--case adh large] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _floor import ratio_line, time_floor, wide_floor  # noqa: E402

# ADH (2010) Table 1's layout on the simulated panel: both covariates averaged over
# 1980-1988 and the outcome in 1975, 1980 and 1988
ADH_PREDICTORS = [
    {"variable": "x1", "window": [1980, 1988]},
    {"variable": "x2", "window": [1980, 1988]},
    {"variable": "y", "years": [1975]},
    {"variable": "y", "years": [1980]},
    {"variable": "y", "years": [1988]},
]


def adh_panel(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, years = 39, np.arange(1970, 2001)
    T = len(years)
    mu = rng.normal(0, 1, (N, 2))
    Z = rng.normal(0, 1, (N, 2))
    # the treated unit (row 0) is a mix of a few donors, as a synthetic control assumes
    mix = rng.dirichlet(np.ones(4))
    pick = rng.choice(np.arange(1, N), 4, replace=False)
    mu[0], Z[0] = mix @ mu[pick], mix @ Z[pick]
    lam = np.cumsum(rng.normal(0, 1, (T, 2)), axis=0)
    theta = 2 + 0.05 * np.arange(T)[:, None] * np.ones((1, 2))
    delta = 100 - 1.5 * np.arange(T)
    Y = delta[None] + Z @ theta.T + 5 * mu @ lam.T + rng.normal(0, 1.5, (N, T))
    X = Z[:, None, :] + rng.normal(0, 0.3, (N, T, 2))
    units = [f"s{i:02d}" for i in range(N)]
    return pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(years, N),
            "y": Y.ravel(),
            "x1": X[:, :, 0].ravel(),
            "x2": X[:, :, 1].ravel(),
            "first": np.repeat(np.r_[1989, np.zeros(N - 1)], T).astype(int),
        }
    )


def large_panel(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, T, T0 = 1001, 40, 30
    L = rng.uniform(0, 1, (N, 3))
    F = np.cumsum(rng.normal(0, 1, (T, 3)), axis=0)
    Y = L @ F.T + rng.normal(0, 0.5, (N, T))
    units = [f"u{i:04d}" for i in range(N)]
    return pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(np.arange(T), N),
            "y": Y.ravel(),
            "first": np.repeat(np.r_[T0, np.zeros(N - 1)], T).astype(int),
        }
    )


def pre_rmspe(df: pd.DataFrame, weights: pd.Series, g: int, window: tuple[int, int]) -> float:
    Y = df.pivot(index="unit", columns="year", values="y")
    cols = [c for c in Y.columns if window[0] <= c <= window[1] and c < g]
    tr = df.loc[df["first"] > 0, "unit"].iloc[0]
    w = weights.reindex(Y.index.drop(tr)).fillna(0.0)
    gap = Y.loc[tr, cols] - w @ Y.loc[w.index, cols]
    return float(np.sqrt(np.mean(gap.to_numpy() ** 2)))


def run_zoneimpact(df, case):
    from zoneimpact.estimators import synthetic_control as sc
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    cov = ["x1", "x2"] if case == "adh" else []
    p = Panel.from_frame(df, unit="unit", time="year", outcomes="y", cohort="first", covariates=cov)
    kw = {}
    if case == "adh":
        kw = dict(
            predictors=ADH_PREDICTORS,
            fit_window=[1970, 1988],
        )
    r = sc.fit(p, outcome="y", placebos=False, rng=np.random.default_rng(1), **kw)
    return r.donor_weights


def run_optimistic(df, case):
    """zoneimpact with ``v="optimistic"`` (adh case only; same predictors)."""
    from zoneimpact.estimators import synthetic_control as sc
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    p = Panel.from_frame(
        df, unit="unit", time="year", outcomes="y", cohort="first", covariates=["x1", "x2"]
    )
    r = sc.fit(
        p,
        outcome="y",
        placebos=False,
        rng=np.random.default_rng(1),
        v="optimistic",
        predictors=ADH_PREDICTORS,
        fit_window=[1970, 1988],
    )
    return r.donor_weights


def run_diffdiff(df, case):
    from diff_diff import SyntheticControl

    d = df.assign(treat=((df["first"] > 0) & (df["year"] >= df["first"])).astype(int))
    kw = {}
    if case == "adh":
        kw = dict(
            predictors=["x1", "x2"],
            predictor_window=list(range(1980, 1989)),
            special_predictors=[
                ("y", [1975], "mean"),
                ("y", [1980], "mean"),
                ("y", [1988], "mean"),
            ],
        )
    r = SyntheticControl(seed=1).fit(
        d, outcome="y", treatment="treat", unit="unit", time="year", **kw
    )
    return pd.Series(r.donor_weights, dtype=float)


def run_pysyncon(df, case):
    from pysyncon import Dataprep, Synth

    tr = df.loc[df["first"] > 0, "unit"].iloc[0]
    controls = sorted(set(df["unit"]) - {tr})
    if case == "adh":
        dp = Dataprep(
            foo=df,
            predictors=["x1", "x2"],
            predictors_op="mean",
            time_predictors_prior=range(1980, 1989),
            special_predictors=[
                ("y", [1975], "mean"),
                ("y", [1980], "mean"),
                ("y", [1988], "mean"),
            ],
            dependent="y",
            unit_variable="unit",
            time_variable="year",
            treatment_identifier=tr,
            controls_identifier=controls,
            time_optimize_ssr=range(1970, 1989),
        )
    else:
        pre = range(0, 30)
        dp = Dataprep(
            foo=df,
            predictors=[],
            predictors_op="mean",
            time_predictors_prior=pre,
            special_predictors=[("y", [t], "mean") for t in pre],
            dependent="y",
            unit_variable="unit",
            time_variable="year",
            treatment_identifier=tr,
            controls_identifier=controls,
            time_optimize_ssr=pre,
        )
    s = Synth()
    s.fit(dataprep=dp, optim_method="Nelder-Mead", optim_initial="equal")
    return pd.Series(s.W, index=controls)


TOOLS = {
    "zoneimpact": run_zoneimpact,
    "zi-optimistic": run_optimistic,
    "diff-diff": run_diffdiff,
    "pysyncon": run_pysyncon,
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--case", nargs="+", default=["adh", "large"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    # pysyncon takes about 7 minutes per adh panel here: ask for it explicitly
    ap.add_argument("--tools", nargs="+", default=["zoneimpact", "zi-optimistic", "diff-diff"])
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    for case in a.case:
        make, g, window = (
            (adh_panel, 1989, (1970, 1988)) if case == "adh" else (large_panel, 30, (0, 29))
        )
        print(f"== {case}")
        for seed in a.seeds:
            df = make(seed)
            line = [f"seed {seed}:"]
            secs: dict[str, float] = {}
            for tool in a.tools:
                if case == "large" and tool in ("pysyncon", "zi-optimistic"):
                    continue  # pysyncon's Nelder-Mead on 30 x 1,000 does not finish
                t0 = time.perf_counter()
                try:
                    w = TOOLS[tool](df, case)
                except ImportError:
                    line.append(f"{tool} not installed")
                    continue
                dt = time.perf_counter() - t0
                secs[tool] = dt
                line.append(f"{tool} RMSPE {pre_rmspe(df, w, g, window):.3f} ({dt:.1f} s)")
            floor_s = time_floor(wide_floor(df, "unit", "year", "y"))
            line.append(f"floor ({floor_s:.4f} s)")
            print("  ".join(line), flush=True)
            peers = {k: v for k, v in secs.items() if k in ("diff-diff", "pysyncon")}
            for tool in ("zoneimpact", "zi-optimistic"):
                if tool in secs:
                    task = f"SC fit {case} seed {seed}" + (
                        " (v=optimistic)" if "opt" in tool else ""
                    )
                    print("  " + ratio_line(task, secs[tool], peers, floor_s), flush=True)


if __name__ == "__main__":
    main()
