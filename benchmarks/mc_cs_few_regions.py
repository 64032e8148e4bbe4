"""The spillover decomposition's CS base on referee B's few-region ring worlds: its default
inference (the delete-one-cluster jackknife, CV3) against the analytic influence functions.

Worlds: ``mc_referee_few_clusters.draw_world`` (written by a referee without reading
``zoneimpact.simulate``): 8 or 12 regions, 200 units, 20 zones in three waves driven by a
covariate that also shifts trends, regional AR(1) shocks, a constant direct effect of 8 and
a spillover calibrated to a displacement share of 0.5 on 0-60 km rings (``--world share``),
or no effect at all (``--world null``). Each replication fits ``spillover.fit(...,
base_estimator="callaway_santanna", covariates=["x"], n_boot=0)`` twice on the same panel:
``small_sample="cr2"`` (the default: CV3 with t(G - 1), analytic where a deletion leaves a
piece undefined) and ``small_sample="none"`` (analytic). Replication i has seed
``--seed + i``; the null and share worlds share seeds, so with constant effects their errors
coincide.

Prints per inference: how many fits took the jackknife (``info["small_sample"]``), SE/SD
(mean SE over the SD of the estimate) and the share of 95% intervals that miss the truth
(the null world: rejection of zero at 5%).

Run: python benchmarks/mc_cs_few_regions.py --config G8_rings G12_rings --world null [--reps 200]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from mc_referee_few_clusters import CONFIGS, draw_world

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

QUANTITIES = ("direct", "spillover", "net", "displacement_share")


def one(config: str, world: str, seed: int) -> list[dict]:
    """Both inferences on replication ``seed``'s panel."""
    null = world == "null"
    G = CONFIGS[config]["G"]
    df, geo, truth = draw_world(
        np.random.default_rng(seed), G=G, exposure="rings", null=null, share=0.5
    )
    panel = Panel.from_frame(
        df, unit="unit", time="year", cohort="first_zone", outcomes=["y"], covariates=["x"],
        geography=geo,
    )  # fmt: skip
    out = []
    for small_sample in ("cr2", "none"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = spillover.fit(
                panel, outcome="y", covariates=["x"], rng=seed, n_boot=0, exposure="rings",
                rings_km=[(0, 60)], base_estimator="callaway_santanna",
                small_sample=small_sample,
            )  # fmt: skip
        t, ci = r.terms.set_index("term"), r.conf_int(0.05)
        row: dict = {"small_sample": small_sample, "used": r.info["small_sample"]}
        for q in QUANTITIES:
            target = 0.0 if null else float(truth[q])
            row[f"{q}_est"] = float(t.loc[q, "estimate"])
            row[f"{q}_se"] = float(t.loc[q, "se"])
            row[f"{q}_miss"] = float(not ci.loc[q, "lower"] <= target <= ci.loc[q, "upper"])
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["G8_rings", "G12_rings"])
    ap.add_argument("--world", default="null", choices=["null", "share"])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=5000)
    args = ap.parse_args()
    set_progress(False)
    for config in args.config:
        t0 = time.perf_counter()
        rows = [r for i in range(args.reps) for r in one(config, args.world, args.seed + i)]
        d = pd.DataFrame(rows)
        quantities = QUANTITIES[:3] if args.world == "null" else QUANTITIES
        for small_sample, g in d.groupby("small_sample", sort=False):
            parts = []
            for q in quantities:
                ok = np.isfinite(g[f"{q}_se"])
                se_sd = g.loc[ok, f"{q}_se"].mean() / g.loc[ok, f"{q}_est"].std()
                parts.append(f"{q} {se_sd:.2f} / {g.loc[ok, f'{q}_miss'].mean():.3f}")
            used = g["used"].value_counts().to_dict()
            print(f"{config} {args.world} small_sample={small_sample} {used}: SE/SD / miss: "
                  + "; ".join(parts))  # fmt: skip
        print(f"{config}: {args.reps} replications, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
