"""Null rejection of ``imputation.fit``'s variances with few, unequal clusters.

The world of :func:`null_panels` (``tests/test_imputation_cr2.py`` draws its size test's
worlds from it): twelve clusters of 2-16
units, eight periods, zones (cohorts 4 or 6) in six clusters, cluster-by-period shocks and
unit noise, no effect. Each world is fitted four ways, all on the same outcomes:

* ``none``, ``leave_out=True``: Theorem 3 with A.9's leave-out ``tau~``, normal reference;
* ``cr2``, ``leave_out=True``: CR2 step-1 residuals, leave-out ``tau~``, Bell-McCaffrey t;
* ``cr2``, ``leave_out=False``: CR2 of both steps (``tau~``'s residuals by their cluster's
  leverage in the cell average, session 38), Bell-McCaffrey t;
* ``none``, ``leave_out=False``: plain Theorem 3 (``did_imputation``'s default), normal.

Prints the share of 95% intervals for ``att`` that exclude zero, the mean SE over the SD
of the estimate, and the median df.

Run:  python benchmarks/mc_imputation_cr2_tau.py [--reps 1000] [--seed 777]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from zoneimpact.estimators import imputation
from zoneimpact.panel import Panel

VARIANTS = (("none", True), ("cr2", True), ("cr2", False), ("none", False))


def null_panels(reps: int, seed: int) -> Iterator[Panel]:
    """``reps`` null worlds, one random stream from ``seed``: twelve clusters of 2-16
    units, zones (cohort 4 or 6) in six of them, eight periods, cluster-by-period shocks,
    unit effects and noise, no effect."""
    rng = np.random.default_rng(seed)
    sizes = np.array([2, 2, 3, 3, 4, 4, 5, 6, 8, 10, 12, 16])
    cl = np.repeat(np.arange(len(sizes)), sizes)
    n, T = len(cl), 8
    cohort = np.where(np.isin(cl, [0, 2, 4, 6, 8, 10]), rng.choice([4, 6], size=n), 0)
    grid = pd.DataFrame({"unit": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n)})
    grid["g"], grid["cl"] = cohort[grid["unit"]], cl[grid["unit"]]
    for _ in range(reps):
        shocks = rng.normal(0, 1, (len(sizes), T))[grid["cl"], grid["t"] - 1]
        y = rng.normal(0, 1, n)[grid["unit"]] + shocks + rng.normal(0, 1, len(grid))
        yield Panel.from_frame(
            grid.assign(y=y), unit="unit", time="t", outcomes=["y"], cohort="g", covariates=["cl"]
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args()
    start = time.perf_counter()
    rows = []
    for rep, panel in enumerate(null_panels(args.reps, args.seed)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few treated clusters: the point of the design
            for ss, lo in VARIANTS:
                r = imputation.fit(
                    panel, outcome="y", cluster="cl", small_sample=ss, horizons=[], leave_out=lo
                )
                t = r.terms.set_index("term").loc["att"]
                low, high = r.conf_int(0.05).loc["att"]
                rows.append((rep, f"{ss}/{'leave-out' if lo else 'no leave-out'}",
                             t["estimate"], t["se"], t.get("df", np.nan),
                             not low <= 0 <= high))  # fmt: skip
    out = pd.DataFrame(rows, columns=["rep", "variance", "estimate", "se", "df", "reject"])
    sd = out.groupby("variance")["estimate"].std(ddof=1)
    summary = out.groupby("variance", sort=False).agg(
        reject_5pct=("reject", "mean"), mean_se=("se", "mean"), median_df=("df", "median")
    )
    summary["se_sd"] = summary["mean_se"] / sd.reindex(summary.index)
    mcse = np.sqrt(0.05 * 0.95 / args.reps)
    print(summary.round(4).to_string())
    print(
        f"{args.reps} null worlds, seed {args.seed}; MC SE of a 5% rate {100 * mcse:.2f} "
        f"points; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
