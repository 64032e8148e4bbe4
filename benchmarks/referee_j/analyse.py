"""Summary of referee J's Monte Carlo (``mc.py``; issue 14, session 46).

Reads ``mc_s1.csv``, ``mc_s05.csv``, ``mc_s0.csv`` and ``mc_null.csv`` from the current
directory (those present) and writes ``C_summary.csv`` there: per world and term, bias,
SD, mean SE / SD, coverage, rejection at 5%, and whether the terms' intervals equal
``conf_int()``. Referee J wrote the world (``world.py``) from the public docstrings only.
"""

import numpy as np
import pandas as pd

out = []
for wn in ["s1", "s05", "s0", "null"]:
    try:
        d = pd.read_csv(f"mc_{wn}.csv")
    except FileNotFoundError:
        continue
    nerr = (d.term == "ERROR").sum()
    for term, g in d[d.term != "ERROR"].groupby("term", sort=False):
        tr = g.truth.iloc[0]
        e = g.estimate
        ok = np.isfinite(e)
        cov = ((g.ci_low <= tr) & (tr <= g.ci_high))[ok].mean() if np.isfinite(tr) else np.nan
        out.append(
            dict(
                world=wn,
                term=term,
                n=int(ok.sum()),
                errors=nerr,
                truth=tr,
                mean_est=e.mean(),
                bias=e.mean() - tr,
                bias_pct=100 * (e.mean() - tr) / abs(tr) if abs(tr) > 1e-9 else np.nan,
                sd=e.std(ddof=1),
                mean_se=g.se.mean(),
                se_sd=g.se.mean() / e.std(ddof=1),
                median_se_sd=g.se.median() / e.std(ddof=1),
                coverage=cov,
                reject_5pct=(g.p_value < 0.05)[ok].mean(),
                ci_terms_eq_conf_int=np.allclose(
                    g[["ci_low", "ci_high"]].values,
                    g[["ci_low_ci", "ci_high_ci"]].values,
                    equal_nan=True,
                ),
                sec_per_fit=g.sec.mean(),
            )
        )
o = pd.DataFrame(out)
o.to_csv("C_summary.csv", index=False)
pd.set_option("display.width", 250)
print(o.drop(columns=["errors"]).round(4).to_string())
