import time
import warnings

import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp

geo = w.geography()
df, tau = w.simulate(geo, 1.0, 1, noise=False)
P = w.panel_of(df, geo)
t0 = time.time()
with warnings.catch_warnings(record=True) as ws:
    warnings.simplefilter("always")
    r = sp.fit(
        P, outcome="y", exposure="rings", rings_km=w.RINGS, covariates=["x"], weights="pop", rng=1
    )
print("time", time.time() - t0)
for x in ws:
    print("WARN", x.category.__name__, str(x.message)[:400])
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 20)
print(r.terms)
print(r.pieces)
for k, v in r.info.items():
    print("INFO", k, ":", str(v)[:300])
