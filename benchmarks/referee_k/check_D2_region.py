"""D2: why net_region_did is absent with wide rings; why net_region_sdid has no SE."""

import warnings

import world as w

from zoneimpact.estimators import spillover as sp

warnings.simplefilter("ignore")
geo = w.geography()
df, tau = w.simulate(geo, 1.0, 4242, noise=True)
P = w.panel_of(df, geo)
r = sp.fit(P, outcome="y", exposure="rings", covariates=["x"], rng=1, weights="pop")
print("terms:", list(r.terms.term))
for k, v in r.info.items():
    if "region" in k:
        print("INFO", k, ":", v)
r2 = sp.fit(
    P,
    outcome="y",
    exposure="rings",
    rings_km=w.RINGS,
    covariates=["x"],
    rng=1,
    weights="pop",
    region_sdid=True,
)
for k, v in r2.info.items():
    if "sdid" in k or "region" in k:
        print("INFO2", k, ":", str(v)[:500])
print(r2.pieces[["piece", "estimate", "total", "n_target_unit_periods"]])
