"""A3: noiseless s=0.5 world under other documented options."""

import warnings

import numpy as np
import world as w

from zoneimpact.estimators import spillover as sp

geo = w.geography()
df, tau = w.simulate(geo, 0.5, 7, noise=False)
tr = w.truths(geo, tau)
P = w.panel_of(df, geo)
KW = dict(outcome="y", exposure="rings", rings_km=w.RINGS, covariates=["x"], weights="pop", rng=1)
for label, kw in [
    (
        "CS not_yet_treated",
        dict(base_estimator="callaway_santanna", base_options={"control_group": "not_yet_treated"}),
    ),
    ("CS never_exposed", dict(base_estimator="callaway_santanna", controls="never_exposed")),
    ("imputation pre_exposed=drop_units", dict(pre_exposed="drop_units")),
    ("imputation pre_exposed=keep", dict(pre_exposed="keep")),
    ("imputation n_boot=0", dict(n_boot=0)),
]:
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            r = sp.fit(P, **kw, **KW)
        except Exception as e:
            print(label, "RAISED", type(e).__name__, str(e)[:300])
            continue
    T = r.terms.set_index("term")["estimate"]
    errs = {
        k: abs(T.get(k, np.nan) - tr[k])
        / max(abs(tr[k]), abs(tr["direct_total"]) if "total" in k or k == "net" else 1)
        for k in [
            "direct",
            "spillover",
            "direct_total",
            "spillover_total",
            "net",
            "displacement_share",
        ]
    }
    print(
        f"{label:36s}",
        {k: f"{v:.1e}" for k, v in errs.items()},
        "| direct est",
        round(T["direct"], 6),
        "truth",
        round(tr["direct"], 6),
    )
    for x in ws:
        print("    WARN:", str(x.message)[:250])
    if "net_note" in r.info:
        print("    net_note:", str(r.info["net_note"])[:250])
