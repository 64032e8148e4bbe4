"""D: edge cases of the public API on one noisy s=1 world: inference variants, weight errors."""

import warnings

import numpy as np
import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp
from zoneimpact.panel import Panel

pd.set_option("display.width", 220)
geo = w.geography()
df, tau = w.simulate(geo, 1.0, 4242, noise=True)
P = w.panel_of(df, geo)
KW = dict(outcome="y", exposure="rings", rings_km=w.RINGS, covariates=["x"], rng=1)


def run(label, f):
    print(f"\n=== {label}")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            out = f()
            if out is not None:
                print(out)
        except Exception as e:
            print("RAISED", type(e).__name__, ":", str(e)[:600])
    for x in ws:
        print("  WARN", x.category.__name__, ":", str(x.message)[:400])


r = sp.fit(P, weights="pop", **KW)


def T(res):
    return res.terms.set_index("term").loc[
        ["direct", "spillover", "net", "displacement_share", "net_region_did"],
        ["estimate", "se", "ci_low", "ci_high", "p_value"],
    ]


print(T(r))
run("with_inference wild on a weighted fit", lambda: T(r.with_inference("wild", n_boot=199)))
run("with_inference conley 100km", lambda: T(r.with_inference("conley", conley_km=100)))
run("with_inference cluster=unit", lambda: T(r.with_inference("cluster", cluster="unit")))
run("conf_int alpha=0.1", lambda: r.conf_int(alpha=0.1).loc[["direct", "displacement_share"]])
ru = sp.fit(P, **KW)
run("unweighted + wild", lambda: T(ru.with_inference("wild", n_boot=199)))
# weights column not in the panel
P2 = Panel.from_frame(
    df,
    unit="unit",
    time="year",
    outcomes="y",
    cohort="cohort",
    covariates=["x"],
    geography=geo[["unit", "region", "lat", "lon"]],
    never_values=(np.inf,),
)
run("weights column absent from the panel", lambda: T(sp.fit(P2, weights="pop", **KW)))
d3 = df.copy()
d3.loc[d3.unit == 5, "pop"] = 0.0
run("a zero weight", lambda: T(sp.fit(w.panel_of(d3, geo), weights="pop", **KW)))
d4 = df.copy()
d4.loc[d4.unit == 5, "pop"] = -3.0
run("a negative weight", lambda: T(sp.fit(w.panel_of(d4, geo), weights="pop", **KW)))
d5 = df.copy()
d5["pop"] = d5["pop"] * (1 + 0.01 * (d5.year - 2000))
run("time-varying weight", lambda: T(sp.fit(w.panel_of(d5, geo), weights="pop", **KW)))
run(
    "rings without rings_km",
    lambda: T(sp.fit(P, weights="pop", outcome="y", exposure="rings", covariates=["x"], rng=1)),
)
run(
    "CS base with weights, small_sample='none' (analytic SEs)",
    lambda: T(
        sp.fit(P, weights="pop", base_estimator="callaway_santanna", small_sample="none", **KW)
    ),
)
run(
    "region_sdid=True",
    lambda: (
        sp.fit(P, weights="pop", region_sdid=True, **KW)
        .terms.set_index("term")
        .loc[["net", "net_region_did", "net_region_sdid"], ["estimate", "se"]]
    ),
)
