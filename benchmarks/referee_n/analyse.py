import sys

import numpy as np
import pandas as pd
from scipy import stats

G = 8
TERMS = [
    "direct",
    "spillover",
    "spillover:0-25km",
    "spillover:25-60km",
    "direct_total",
    "spillover_total",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "naive",
]
pd.set_option("display.width", 250)
for world in ["null", "s1", "s05"]:
    try:
        df = pd.read_csv(f"mc_{world}{sys.argv[1] if len(sys.argv) > 1 else chr(0)[:0]}.csv")
    except FileNotFoundError:
        continue
    err = df[df.term == "ERROR"]
    df = df[df.term != "ERROR"]
    nrep = df.rep.nunique()
    rows = []
    for t in TERMS:
        x = df[df.term == t]
        if x.empty:
            continue
        tr = x.truth.iloc[0]
        if t == "naive" and world == "null":
            tr = 0.0
        est, se = x.estimate, x.se
        sd = est.std(ddof=1)
        r = dict(
            term=t,
            n=len(x),
            truth=tr,
            mean=est.mean(),
            bias=est.mean() - tr if np.isfinite(tr) else np.nan,
            sd=sd,
            meanSE_SD=se.mean() / sd,
            nan_se=int(se.isna().sum()),
            cover=((x.ci_low <= tr) & (tr <= x.ci_high))[x.ci_low.notna()].mean()
            if np.isfinite(tr)
            else np.nan,
            rej_p=(x.p_value < 0.05)[x.p_value.notna()].mean(),
            med_df=x.df.median(),
        )
        r["bias_pct"] = 100 * r["bias"] / tr if (np.isfinite(tr) and tr != 0) else np.nan
        r["mcse_bias"] = sd / np.sqrt(len(x))
        if world == "null":
            tt = (est / se).abs()
            r["rej_tG1"] = (tt > stats.t.ppf(0.975, G - 1)).mean()
            r["rej_norm"] = (tt > stats.norm.ppf(0.975)).mean()
            r["rej_tdf_check"] = (tt > stats.t.ppf(0.975, x.df)).mean()
        rows.append(r)
    tab = pd.DataFrame(rows).set_index("term")
    cols = [
        "n",
        "truth",
        "bias",
        "bias_pct",
        "mcse_bias",
        "sd",
        "meanSE_SD",
        "cover",
        "rej_p",
        "med_df",
        "nan_se",
    ] + (["rej_tG1", "rej_norm", "rej_tdf_check"] if world == "null" else [])
    print(f"=== world {world}: {nrep} replications, {len(err)} errors; warnings kinds:")
    print(df.drop_duplicates("rep").warn_kinds.value_counts().to_string())
    print(tab[cols].to_string(float_format=lambda v: f"{v:.4g}"))
    print()
