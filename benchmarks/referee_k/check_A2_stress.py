"""A2: noiseless stress variants: heterogeneous/dynamic gains, cross-border geography,
never_exposed controls, missing outcomes (net_region_did refusal)."""

import warnings

import numpy as np
import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp


def effects_het(geo, s, seed=0):
    """zone-specific, dynamic gain G_z(t) = G_z*(1+0.1*(t-g)); loss split as in world.effects."""
    rng = np.random.default_rng(seed)
    n = len(geo)
    years = np.arange(w.T0, w.T1 + 1)
    coh = geo.cohort.values
    pop = geo["pop"].values
    D, ring = w.links(geo)
    zones = np.where(np.isfinite(coh))[0]
    Gz = np.where(np.isfinite(coh), rng.uniform(4, 16, n), 0.0)
    tau = np.zeros((n, len(years)))
    for ti, t in enumerate(years):
        zone_now = coh <= t
        gt = np.where(zone_now, Gz * (1 + 0.1 * (t - np.where(np.isfinite(coh), coh, t))), 0.0)
        tau[:, ti] += gt
        for z in zones:
            if coh[z] > t:
                continue
            lk = (ring[:, z] >= 0) & ~zone_now
            if not lk.any():
                continue
            k = np.array([w.KR[r] for r in ring[lk, z]])
            wts = pop[lk] * k
            tau[lk, ti] -= s * pop[z] * gt[z] * (wts / wts.sum()) / pop[lk]
    return tau


def frame(geo, tau, seed=1):
    rng = np.random.default_rng(seed)
    n = len(geo)
    years = np.arange(w.T0, w.T1 + 1)
    a = rng.normal(50, 10, n)
    b = np.cumsum(rng.normal(0.5, 1, len(years)))
    y = a[:, None] + b[None, :] + 0.8 * geo.x.values[:, None] * (years - w.T0)[None, :] + tau
    df = pd.DataFrame(
        {"unit": np.repeat(geo.unit.values, len(years)), "year": np.tile(years, n), "y": y.ravel()}
    )
    return df.merge(geo[["unit", "x", "pop", "cohort"]], on="unit")


def compare(label, geo, tau, df, obs=None, **kw):
    tr = w.truths(geo, tau, obs)
    P = w.panel_of(df, geo)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        r = sp.fit(
            P,
            outcome="y",
            exposure="rings",
            rings_km=w.RINGS,
            covariates=["x"],
            weights="pop",
            rng=1,
            **kw,
        )
    est = r.terms.set_index("term")["estimate"]
    m = {
        "direct": "direct",
        "spillover": "spillover",
        "direct_total": "direct_total",
        "spillover_total": "spillover_total",
        "spillover_on_zones_total": "spillover_on_zones_total",
        "net": "net",
        "displacement_share": "displacement_share",
        "net_region_did": "net",
    }
    print(f"--- {label} {kw}")
    for term, tk in m.items():
        e = est.get(term, np.nan)
        t = tr[tk]
        den = abs(tr["direct_total"]) if ("total" in term or "net" in term) else max(abs(t), 1.0)
        print(f"   {term:26s} est={e: .8g} truth={t: .8g} relerr={abs(e - t) / den:.2e}")
    for x in ws:
        print("   WARN:", str(x.message)[:300])
    for k, v in r.info.items():
        if "note" in k:
            print("   INFO", k, ":", str(v)[:400])
    return r


geo = w.geography()
for s in [1.0, -0.5]:
    tau = effects_het(geo, s)
    df = frame(geo, tau)
    compare(f"heterogeneous dynamic gains s={s}", geo, tau, df)
    compare(
        f"heterogeneous dynamic gains s={s} CS", geo, tau, df, base_estimator="callaway_santanna"
    )
    compare(
        f"heterogeneous dynamic gains s={s} never_exposed", geo, tau, df, controls="never_exposed"
    )

# cross-border geography: regions packed closer (min separation 260 -> built with another seed, shifted centres)
geo2 = w.geography(seed=777).copy()
# pull every region's cities 45% towards the overall centre so that rings cross region borders
cl, co = geo2.lat.mean(), geo2.lon.mean()
geo2["lat"] = (
    cl
    + 0.35 * (geo2.lat - cl)
    + 0.65 * (geo2.lat - geo2.groupby("region").lat.transform("mean")) * 0
)
geo2["lon"] = co + 0.35 * (geo2.lon - co)
D, ring = w.links(geo2)
reg = geo2.region.values
coh = geo2.cohort.values
cross = sum(
    1
    for i in range(len(geo2))
    for z in np.where(np.isfinite(coh))[0]
    if ring[i, z] >= 0 and reg[i] != reg[z]
)
on, lab = w.roles(geo2)
print(
    "\ncross-border geography: cross-region links",
    cross,
    "clean units",
    int((~np.isfinite(on) & ~np.isfinite(coh)).sum()),
)
tau = effects_het(geo2, 1.0)
df = frame(geo2, tau)
compare("cross-border s=1", geo2, tau, df)

# missing outcomes: 3% of rows of non-zone units missing at random
tau = effects_het(geo, 1.0)
df = frame(geo, tau)
rng = np.random.default_rng(9)
miss = (~np.isfinite(df.cohort.values)) & (rng.uniform(size=len(df)) < 0.03)
dfm = df.copy()
dfm.loc[miss, "y"] = np.nan
taum = tau.copy()
ti = dfm.year.values - w.T0
ui = dfm.unit.values - 1
taum[ui[miss], ti[miss]] = np.nan
# truths over observed targets only: the docstring's totals cover estimated unit-periods
obs = np.ones_like(tau, bool)
obs[ui[miss], ti[miss]] = False
tm = tau
print(
    "\nmissing-outcome world: true loss in missing exposed unit-periods:",
    (geo["pop"].values[:, None] * np.where(obs, 0, tau)).sum(),
)
r = compare(
    "missing 3% non-zone rows s=1 (truth counts observed targets only)", geo, tm, dfm, obs=obs
)
print(
    "   pieces:\n",
    r.pieces[["piece", "estimate", "total", "n_target_unit_periods", "n_unidentified"]].to_string(),
)
