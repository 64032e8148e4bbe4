"""C: Monte Carlo. usage: python mc.py BASE WORLD NREP SEED0  (WORLD in null,1,0.5,0,-0.5)"""

import collections
import sys
import time
import warnings

import numpy as np
import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp

base, world, nrep, seed0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
geo = w.geography()
s = 0.0 if world == "null" else float(world)
gs = 0.0 if world == "null" else 1.0
TERMS = [
    "direct",
    "spillover",
    "spillover:0-25km",
    "spillover:25-60km",
    "direct_total",
    "spillover_total",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "net",
    "net_per_treated",
    "displacement_share",
    "net_region_did",
]
rows = []
wcount = collections.Counter()
t0 = time.time()
for rep in range(nrep):
    seed = seed0 + rep
    df, tau = w.simulate(geo, s, seed, noise=True, G_scale=gs)
    P = w.panel_of(df, geo)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            r = sp.fit(
                P,
                outcome="y",
                exposure="rings",
                rings_km=w.RINGS,
                covariates=["x"],
                weights="pop",
                rng=seed,
                base_estimator=base,
            )
        except Exception as e:
            rows.append(dict(rep=rep, seed=seed, term="ERROR", estimate=np.nan, note=repr(e)[:300]))
            continue
    for x in ws:
        wcount[str(x.message)[:120]] += 1
    T = r.terms.set_index("term")
    for term in TERMS:
        if term in T.index:
            q = T.loc[term]
            rows.append(
                dict(
                    rep=rep,
                    seed=seed,
                    term=term,
                    estimate=q.estimate,
                    se=q.se,
                    ci_low=q.ci_low,
                    ci_high=q.ci_high,
                    p_value=q.p_value,
                    note="",
                )
            )
    rows.append(
        dict(
            rep=rep,
            seed=seed,
            term="share_bc",
            estimate=T.loc["displacement_share", "estimate"]
            - r.info.get("displacement_share_ratio_bias", np.nan),
            note="",
        )
    )
el = time.time() - t0
out = pd.DataFrame(rows)
out["base"] = base
out["world"] = world
out.to_csv(f"mc_{base}_{world}.csv", index=False)
print(base, world, nrep, "reps", f"{el:.1f}s total, {el / nrep:.3f}s/rep")
for k, v in wcount.most_common():
    print(f"  WARN x{v:d}: {k}")
