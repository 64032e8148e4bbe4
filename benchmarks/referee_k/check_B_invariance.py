"""B: invariances on one noisy s=0.5 world (and the imputation + CS bases)."""

import warnings

import numpy as np
import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp

warnings.simplefilter("ignore")
geo = w.geography()
df, tau = w.simulate(geo, 0.5, 2024, noise=True)


def fit(frame, g=geo, string_ids=False, weights="pop", base="imputation"):
    P = w.panel_of(frame, g, string_ids=string_ids)
    r = sp.fit(
        P,
        outcome="y",
        exposure="rings",
        rings_km=w.RINGS,
        covariates=["x"],
        weights=weights,
        rng=11,
        base_estimator=base,
    )
    return r.terms.set_index("term")[["estimate", "se", "ci_low", "ci_high", "p_value"]]


rows = []
for base in ["imputation", "callaway_santanna"]:
    ref = fit(df, base=base)
    variants = {}
    rs = np.random.default_rng(3)
    variants["shuffled_rows"] = (
        fit(df.sample(frac=1, random_state=5).reset_index(drop=True), base=base),
        1.0,
        1.0,
    )
    dfs = df.copy()
    dfs["unit"] = "c" + dfs["unit"].astype(str)
    variants["string_ids"] = (fit(dfs, string_ids=True, base=base), 1.0, 1.0)
    d2 = df.copy()
    d2["y"] = d2["y"] + 1000.0
    variants["y_plus_1000"] = (fit(d2, base=base), 1.0, 1.0)
    d3 = df.copy()
    d3["y"] = d3["y"] * 2
    variants["y_times_2"] = (fit(d3, base=base), 2.0, 1.0)
    d4 = df.copy()
    d4["pop"] = d4["pop"] * 7.0
    variants["pop_times_7"] = (fit(d4, base=base), 1.0, 7.0)
    for name, (res, sc, wsc) in variants.items():
        for term in ref.index:
            is_total = term.endswith("_total") or term in ("net", "net_region_did")
            is_share = term == "displacement_share"
            f_est = 1.0 if is_share else sc * (wsc if is_total else 1.0)
            e0, s0 = (
                ref.loc[term, "estimate"] * f_est,
                ref.loc[term, "se"] * (1.0 if is_share else f_est),
            )
            e1, s1 = res.loc[term, "estimate"], res.loc[term, "se"]
            rows.append(
                dict(
                    base=base,
                    variant=name,
                    term=term,
                    est_relerr=abs(e1 - e0) / max(abs(e0), 1e-12),
                    se_relerr=abs(s1 - s0) / max(abs(s0), 1e-12) if np.isfinite(s0) else np.nan,
                    p_diff=abs(res.loc[term, "p_value"] - ref.loc[term, "p_value"]),
                )
            )
out = pd.DataFrame(rows)
out.to_csv("B_invariance.csv", index=False)
pd.set_option("display.width", 250)
pd.set_option("display.max_rows", 500)
print(out.groupby(["base", "variant"])[["est_relerr", "se_relerr", "p_diff"]].max())
bad = out[(out.est_relerr > 1e-8) | (out.se_relerr > 1e-6) | (out.p_diff > 1e-6)]
print(bad.to_string())
