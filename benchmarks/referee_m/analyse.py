"""Summarise the Monte Carlo (mc_<world>.csv)."""

import collections
import json

import numpy as np
import pandas as pd
from scipy import stats

pd.set_option("display.width", 250)
pd.set_option("display.max_colwidth", 200)
MAIN = [
    "direct",
    "spillover",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "spillover_from_sources",
]
out = []
for w in ["s1", "s05", "null"]:
    try:
        df = pd.read_csv(f"mc_{w}.csv")
    except FileNotFoundError:
        continue
    errs = df[df.term == "ERROR"]
    print(f"== {w}: reps={df.rep.nunique()} errors={len(errs)}")
    for t in MAIN:
        g = df[df.term == t]
        if g.empty:
            continue
        e = g.estimate - g.truth
        tm = g.truth.mean()
        sd = e.std(ddof=1) if g.truth.notna().all() else g.estimate.std(ddof=1)
        row = dict(
            world=w,
            term=t,
            n=len(g),
            truth_mean=tm,
            est_mean=g.estimate.mean(),
            bias=e.mean(),
            bias_pct=100 * e.mean() / tm if np.isfinite(tm) and tm != 0 else np.nan,
            mc_sd=sd,
            mean_se=g.se.mean(),
            se_sd=g.se.mean() / sd,
            median_se_sd=g.se.median() / sd,
            coverage=((g.ci_low <= g.truth) & (g.truth <= g.ci_high)).mean()
            if g.truth.notna().all()
            else np.nan,
            reject_0=(g.p_value < 0.05).mean(),
            cov_tG1=(e.abs() <= stats.t.ppf(0.975, 12) * g.se).mean()
            if g.truth.notna().all()
            else np.nan,
            rej_tG1=((g.estimate.abs() / g.se) > stats.t.ppf(0.975, 12)).mean(),
            n_nan_se=g.se.isna().sum(),
            median_df=g["df"].median(),
        )
        if t == "displacement_share" and g.truth.notna().all():
            bc = g.estimate - g.ratio_bias - g.truth
            row["bias_bc"] = bc.mean()
            row["median_err"] = e.median()
        out.append(row)
res = pd.DataFrame(out)
print(res.to_string(float_format=lambda v: f"{v:.4g}"))
res.to_csv("mc_summary.csv", index=False)
print("\n== aux_models tally (full strings) ==")
for w in ["s1", "s05", "null"]:
    try:
        df = pd.read_csv(f"mc_{w}.csv")
    except FileNotFoundError:
        continue
    a = df[df.term == "direct"].aux_models
    print(w)
    print(a.value_counts().to_string())
    per = collections.Counter()
    for s in a.dropna():
        for part in s.split("; "):
            per[part] += 1
    print("  per piece:")
    [print("   ", k, v) for k, v in sorted(per.items())]
    print("  warnings:", json.load(open(f"mc_{w}_warnings.json")))
