"""Summarise MC CSVs against the truths of each world."""

import glob

import numpy as np
import pandas as pd
import world as w

geo = w.geography()
TR = {}
for world in ["null", "1", "0.5", "0", "-0.5"]:
    s = 0.0 if world == "null" else float(world)
    _, tau = w.simulate(geo, s, 0, noise=False, G_scale=0.0 if world == "null" else 1.0)
    t = w.truths(geo, tau)
    t["spillover:0-25km"] = t["spillover:r0"]
    t["spillover:25-60km"] = t["spillover:r1"]
    t["net_region_did"] = t["net"]
    t["share_bc"] = t["displacement_share"]
    TR[world] = t
rows = []
for f in sorted([f for f in glob.glob("mc_*_*.csv") if "aux" not in f]):
    d = pd.read_csv(f)
    base, world = d.base.iloc[0], f[:-4].split("_", 2)[2].replace("santanna_", "")
    nerr = (d.term == "ERROR").sum()
    for term, g in d[d.term != "ERROR"].groupby("term", sort=False):
        tr = TR[world][term]
        if np.isfinite(tr) and abs(tr) < 1e-6:
            tr = 0.0
        e = g.estimate.values
        ok = np.isfinite(e)
        r = dict(
            base=base,
            world=world,
            term=term,
            n=int(ok.sum()),
            n_nan=int((~ok).sum()),
            truth=tr,
            mean=np.nanmean(e),
            sd=np.nanstd(e, ddof=1),
        )
        r["bias"] = r["mean"] - tr
        r["bias_pct"] = 100 * r["bias"] / abs(tr) if tr not in (0,) and np.isfinite(tr) else np.nan
        r["bias_over_sd"] = r["bias"] / r["sd"]
        r["mcse_bias"] = r["sd"] / np.sqrt(ok.sum())
        if "se" in g and g.se.notna().any():
            r["mean_se_over_sd"] = np.nanmean(g.se) / r["sd"]
            r["median_se_over_sd"] = np.nanmedian(g.se) / r["sd"]
            lo, hi = g.ci_low.values, g.ci_high.values
            cov = (lo <= tr) & (tr <= hi)
            fin = np.isfinite(lo) & np.isfinite(hi)
            r["coverage"] = np.mean(cov[ok]) if np.isfinite(tr) else np.nan
            r["n_unbounded_ci"] = int((~fin).sum())
            r["reject0_ci"] = np.mean(~((lo <= 0) & (0 <= hi)))
            r["reject0_p"] = np.nanmean(g.p_value < 0.05)
        rows.append(r)
out = pd.DataFrame(rows)
out["world"] = "w_" + out["world"].astype(str)
out.to_csv("C_mc_summary.csv", index=False)
pd.set_option("display.width", 260)
pd.set_option("display.max_rows", 500)
pd.set_option("display.max_columns", 30)
cols = [
    "base",
    "world",
    "term",
    "n",
    "n_nan",
    "truth",
    "mean",
    "bias_pct",
    "bias_over_sd",
    "mean_se_over_sd",
    "median_se_over_sd",
    "coverage",
    "reject0_p",
    "reject0_ci",
    "n_unbounded_ci",
]
print(out[cols].to_string(float_format="{:.4g}".format))
