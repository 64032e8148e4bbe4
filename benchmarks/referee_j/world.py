"""Referee J's own simulated world (written from scratch).

A helper (referee J, issue 14, session 46) wrote this world from the package's public
docstrings only (``spillover``'s module and ``fit``, ``Panel.from_frame``, ``exposure``): 13
biennial periods 1996-2020, 250 cities in 15 regions with lat/lon, 40 zones logistic in a
covariate ``x`` in four waves, 6 zones in cities outside the panel (``sources=``), its own
k = 3 nearest-neighbour map, zone gains ``tau0 (1 + growth e)`` of which every open zone takes
a share ``s`` from its linked non-zone units (equal split), the truths on the fit's target
unit-periods, the outcome (unit levels, an ``x``-dependent trend, AR(1) region shocks and
noise), the ``Panel`` and the ``spillover.fit`` call used by the other scripts here.
"""

import numpy as np
import pandas as pd

PERIODS = np.arange(1996, 2021, 2)  # biennial, 13 periods
WAVES = np.array([2002, 2006, 2010, 2014])
SIZES = [40, 35, 30, 25, 22, 20, 18, 15, 12, 10, 8, 6, 4, 3, 2]  # 15 regions, 250 cities
K = 3


def haversine(lat1, lon1, lat2, lon2):
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def design(seed=2026):
    r = np.random.default_rng(seed)
    R = len(SIZES)
    clat = r.uniform(22, 40, R)
    clon = r.uniform(100, 120, R)
    reg = np.repeat(np.arange(R), SIZES)
    n = len(reg)
    lat = clat[reg] + r.normal(0, 0.8, n)
    lon = clon[reg] + r.normal(0, 0.8, n)
    x = r.normal(0, 1, n)
    pz = 1 / (1 + np.exp(-(-2.0 + 1.2 * x)))
    zone = r.uniform(size=n) < pz
    cohort = np.where(zone, r.choice(WAVES, n), np.inf)
    units = pd.DataFrame(
        dict(
            unit=np.arange(1, n + 1),
            region=[f"R{g:02d}" for g in reg],
            lat=lat,
            lon=lon,
            x=x,
            cohort=cohort,
        )
    )
    # 6 source zones: cities not in the panel, located by coordinates
    sreg = r.choice(R, 6, replace=True, p=np.array(SIZES) / n)
    src = pd.DataFrame(
        dict(
            unit=np.arange(901, 907),
            region=[f"R{g:02d}" for g in sreg],
            lat=clat[sreg] + r.normal(0, 0.6, 6),
            lon=clon[sreg] + r.normal(0, 0.6, 6),
            cohort=[1998.0, 2002.0, 2006.0, 2010.0, 2010.0, 2014.0],
        )
    )
    return units, src


def links(units, src, k=K):
    """My own knn map, among 'places' (panel units + located sources)."""
    places = pd.concat(
        [
            units[["unit", "lat", "lon", "cohort"]].assign(is_src=False),
            src[["unit", "lat", "lon", "cohort"]].assign(is_src=True),
        ],
        ignore_index=True,
    )
    zones = places[np.isfinite(places.cohort)]
    L = []
    for _, z in zones.iterrows():
        d = haversine(z.lat, z.lon, places.lat.values, places.lon.values)
        d[places.unit.values == z.unit] = np.inf
        nn = np.argsort(d)[:k]
        for j in nn:
            if not places.is_src.values[j]:
                L.append((int(places.unit.values[j]), int(z.unit), z.cohort, bool(z.is_src)))
    return pd.DataFrame(L, columns=["unit", "zone", "zone_cohort", "zone_is_src"])


def effects(units, src, lk, s, tau0=30.0, growth=0.1):
    """Unit x period effect matrix + target masks (per the docstring estimands)."""
    uid = units.unit.values
    n = len(uid)
    pos = {u: i for i, u in enumerate(uid)}
    coh = units.cohort.values
    open_ = coh[:, None] <= PERIODS[None, :]  # own zone open

    def tau(g):  # a zone's gain at each period (0 before it opens)
        k = (PERIODS - g) / 2
        return np.where(PERIODS >= g, tau0 * (1 + growth * k), 0.0)

    eff = np.where(open_, 0.0, 0.0)
    for i in range(n):
        if np.isfinite(coh[i]):
            eff[i] += tau(coh[i])
    for _z, grp in lk.groupby("zone"):
        g = grp.zone_cohort.iloc[0]
        tz = tau(g)
        rows = np.array([pos[u] for u in grp.unit])
        notzone = ~open_[rows]  # linked units not (open) zones at t
        nz = notzone.sum(0)
        share = np.where(nz > 0, s * tz / np.maximum(nz, 1), 0.0)
        eff[rows] -= notzone * share[None, :]
    # exposure onsets
    e_all = np.full(n, np.inf)
    e_est = np.full(n, np.inf)
    for _, lnk in lk.iterrows():
        i = pos[lnk.unit]
        if lnk.unit == lnk.zone:
            continue
        e_all[i] = min(e_all[i], lnk.zone_cohort)
        if not lnk.zone_is_src:
            e_est[i] = min(e_est[i], lnk.zone_cohort)
    t = PERIODS[None, :]
    isz = np.isfinite(coh)[:, None]
    m = dict(
        direct=isz & (t >= coh[:, None]),
        ring=(~isz) & (t >= e_est[:, None]),
        from_src_nonzone=(~isz) & (t >= e_all[:, None]) & (t < e_est[:, None]),
        on_zones=isz & (t >= e_est[:, None]) & (t < coh[:, None]),
        on_zones_from_src=isz & (t >= e_all[:, None]) & (t < np.minimum(e_est, coh)[:, None]),
    )
    return eff, m, e_all, e_est


def truths(eff, m):
    tot = {k: eff[v].sum() for k, v in m.items()}
    cnt = {k: int(v.sum()) for k, v in m.items()}
    d_tot, sp_tot, oz_tot = tot["direct"], tot["ring"], tot["on_zones"]
    net = d_tot + sp_tot + oz_tot
    tr = dict(
        direct=d_tot / cnt["direct"],
        direct_total=d_tot,
        spillover=sp_tot / cnt["ring"] if cnt["ring"] else np.nan,
        spillover_total=sp_tot,
        spillover_on_zones=oz_tot / cnt["on_zones"] if cnt["on_zones"] else np.nan,
        spillover_on_zones_total=oz_tot,
        net=net,
        displacement_share=(1 - net / d_tot) if abs(d_tot) > 1e-9 else np.nan,
        spillover_from_sources_total=tot["from_src_nonzone"] + tot["on_zones_from_src"],
    )
    nsrc = cnt["from_src_nonzone"] + cnt["on_zones_from_src"]
    tr["spillover_from_sources"] = tr["spillover_from_sources_total"] / nsrc if nsrc else np.nan
    return tr, cnt


def outcome(units, eff, rng, noise=True, rho=0.6, sd_reg=3.0, sd_eps=3.0):
    n = len(units)
    T = len(PERIODS)
    k = (PERIODS - 1996) / 2
    alpha = 100 + 20 * np.sin(units.unit.values)  # deterministic unit levels
    base = alpha[:, None] + 2.0 * k[None, :] + 4.0 * units.x.values[:, None] * k[None, :]
    if noise:
        regs = units.region.astype("category").cat.codes.values
        R = regs.max() + 1
        sh = np.zeros((R, T))
        sh[:, 0] = rng.normal(0, sd_reg, R)
        for j in range(1, T):
            sh[:, j] = rho * sh[:, j - 1] + rng.normal(0, sd_reg * np.sqrt(1 - rho**2), R)
        base = base + sh[regs] + rng.normal(0, sd_eps, (n, T))
    return base + eff


def frame(units, Y):
    n, T = Y.shape
    return pd.DataFrame(
        dict(
            city=np.repeat(units.unit.values, T),
            year=np.tile(PERIODS, n),
            y=Y.ravel(),
            x=np.repeat(units.x.values, T),
            zone_year=np.repeat(np.where(np.isfinite(units.cohort), units.cohort, 0), T),
        )
    )


def panel(units, src, df, unit_as_str=False):
    from zoneimpact.panel import Panel

    geo = units[["unit", "region", "lat", "lon"]].copy()
    s = src[["unit", "cohort", "region", "lat", "lon"]].copy()
    if unit_as_str:
        df = df.assign(city="c" + df.city.astype(str))
        geo["unit"] = "c" + geo.unit.astype(str)
        s["unit"] = "c" + s.unit.astype(str)
    return Panel.from_frame(
        df,
        unit="city",
        time="year",
        outcomes="y",
        cohort="zone_year",
        covariates=["x"],
        geography=geo,
        sources=s,
    )


def do_fit(p, seed=0, **kw):
    from zoneimpact.estimators.spillover import fit

    return fit(p, outcome="y", exposure="knn", k_nearest=K, covariates=["x"], rng=seed, **kw)
