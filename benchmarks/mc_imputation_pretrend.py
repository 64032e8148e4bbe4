"""Monte Carlo: size of BJS Test 1 (imputation pre-trend test) with few clusters.

World: ``G`` regions of 9 units, 2000-2019, 40% of units get a zone in 2007, 2010, 2013 or
2016; ``y = a_i + b_t + s_rt + e_it`` with region-by-year AR(1) shocks (rho 0.5, SD 3) and
unit noise SD 3 (``--tails``: Student t with 3 df, same SD), so parallel trends hold
exactly and the shocks are regional. ``imputation.fit(pretrends=5, cluster="region")``;
the rejection rate at 5% of the default (Hotelling ``F(L, G - L)``) and of the peers'
reference (``did_imputation`` / diff-diff: ``W / L`` on ``F(L, G - 1)``).

Run:  python benchmarks/mc_imputation_pretrend.py [--G 10 20 27 40] [--reps 2000] [--tails]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from zoneimpact import Panel
from zoneimpact.estimators import imputation

LEADS = 5


def world(rng: np.random.Generator, G: int, per: int = 9, T: int = 20, tails: bool = False,
          rho: float = 0.5, shock: float = 3.0, noise: float = 3.0) -> Panel:  # fmt: skip
    """One null world (see the module docstring); ``region`` is a panel column."""
    n = G * per
    region = np.repeat(np.arange(G), per)
    zone = rng.random(n) < 0.4
    cohort = np.where(zone, rng.choice([2007, 2010, 2013, 2016], n), 0)
    a = rng.normal(0, 10, n)
    b = np.cumsum(rng.normal(1, 1, T))
    s = np.zeros((G, T))
    s[:, 0] = rng.normal(0, shock, G)
    for t in range(1, T):
        s[:, t] = rho * s[:, t - 1] + rng.normal(0, shock * np.sqrt(1 - rho**2), G)
    if tails:
        e = rng.standard_t(3, (n, T)) * noise / np.sqrt(3)
    else:
        e = rng.normal(0, noise, (n, T))
    y = a[:, None] + b[None, :] + s[region] + e
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), T),
            "year": np.tile(np.arange(2000, 2000 + T), n),
            "y": y.ravel(),
            "cohort": np.repeat(cohort, T),
            "region": np.repeat(region, T),
        }
    )
    return Panel.from_frame(
        df, unit="unit", time="year", outcomes=["y"], cohort="cohort", covariates=["region"]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--G", type=int, nargs="+", default=[10, 20, 27, 40])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--tails", action="store_true")
    args = ap.parse_args()
    print(f"# mc_imputation_pretrend  reps={args.reps}  leads={LEADS}  tails={args.tails}")
    print("   G  worlds  Hotelling F(L,G-L)  peers F(L,G-1)   (MC SE of 5%)")
    for G in args.G:
        t0, rej = time.time(), []
        for r in range(args.reps):
            panel = world(np.random.default_rng(1000 * G + r), G, tails=args.tails)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = imputation.fit(panel, outcome="y", pretrends=LEADS, cluster="region")
            p = (res.info["pretrend_p"], res.info["pretrend_p_did_imputation"])
            if np.all(np.isfinite(p)):
                rej.append(np.less(p, 0.05))
        h, peer = np.mean(rej, axis=0)
        se = np.sqrt(0.05 * 0.95 / len(rej))
        print(f"{G:4d}  {len(rej):6d}  {h:18.3f}  {peer:14.3f}   ({se:.3f})  {time.time() - t0:.0f} s",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
