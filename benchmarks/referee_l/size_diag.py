"""Null-world size diagnostics: reported df vs the empirical Satterthwaite df of SE^2, and
rejection if the reported SE were used with other critical values (post-hoc, for context)."""

import sys

import numpy as np
import pandas as pd
from scipy import stats

files = sys.argv[1:] or ["mc_rings.csv", "mc_knn.csv"]
for fn in files:
    d = pd.read_csv(fn, keep_default_na=False, na_values=["", "NaN", "nan"])
    d = d[d.world == "null"]
    rows = []
    for term, g in d.groupby("term"):
        if term == "displacement_share":
            continue
        V = g.se**2
        tstat = g.estimate / g.se
        rows.append(
            dict(
                term=term,
                reps=len(g),
                sd_est=g.estimate.std(),
                mean_se=g.se.mean(),
                rms_se_over_sd=np.sqrt(V.mean()) / g.estimate.std(),
                reported_df_median=g.df.median(),
                empirical_df=2 * V.mean() ** 2 / V.var(),
                reject_reported=(g.p_value < 0.05).mean(),
                reject_t11=(np.abs(tstat) > stats.t.ppf(0.975, 11)).mean(),
                reject_normal=(np.abs(tstat) > 1.96).mean(),
                mcse_at_5pct=np.sqrt(0.05 * 0.95 / len(g)),
            )
        )
    print(fn)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    # dependence between |estimate| and SE (independence is what makes est/SE ~ t_df)
    print(
        "corr(est^2, se^2):",
        {
            t: round(float(np.corrcoef(g.estimate**2, g.se**2)[0, 1]), 3)
            for t, g in d.groupby("term")
            if t != "displacement_share"
        },
    )
