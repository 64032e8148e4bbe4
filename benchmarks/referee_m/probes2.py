"""Probes: with_inference('cluster') vs fit; conf_int vs terms; design concentration; t-crit."""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from world import draw_panel, fit, make_design, make_panel, observed

warnings.simplefilter("ignore")
d = make_design()
u = d["units"]
z = u[np.isfinite(u.cohort)]
w = z.groupby("region")["pop"].sum().sort_values(ascending=False)
print("zones per region:", z.groupby("region").size().to_dict())
print("share of zone pop weight by region (top 4):", (w / w.sum()).round(3).head(4).to_dict())
print(
    "t crit .975: df=2.19 ->",
    round(stats.t.ppf(0.975, 2.19), 3),
    " df=12 ->",
    round(stats.t.ppf(0.975, 12), 3),
)
fr = draw_panel(d, 0.5, 101)
pan = make_panel(d, observed(fr))
r = fit(pan, rng=0)
r2 = r.with_inference("cluster", cluster="region", rng=0)
a = r.terms.set_index("term")
b = r2.terms.set_index("term")
print(
    "with_inference(cluster=region) max |d est|:",
    float((a.estimate - b.estimate).abs().max()),
    " max rel d se:",
    float(((a.se - b.se).abs() / a.se).max()),
    "aux same:",
    r.info.get("aux_models") == r2.info.get("aux_models"),
)
ci = r.conf_int()
print(
    "conf_int vs terms max diff:",
    float((ci.iloc[:, 0] - a.loc[ci.index, "ci_low"]).abs().max()),
    float((ci.iloc[:, 1] - a.loc[ci.index, "ci_high"]).abs().max()),
)
# MC: correlation between |error| and se for direct
for wn in ["s05", "null"]:
    m = pd.read_csv(f"mc_{wn}.csv")
    g = m[m.term == "direct"]
    e = (g.estimate - g.truth).abs()
    print(
        wn,
        "direct corr(|err|, se) =",
        round(np.corrcoef(e, g.se)[0, 1], 3),
        "| share of |t| > t(.975, df_reported):",
        round(((e / g.se) > stats.t.ppf(0.975, g["df"])).mean(), 4),
        "| |t|>1.96:",
        round(((e / g.se) > 1.96).mean(), 4),
    )
