"""Independent referee world for zoneimpact spillover.fit with unit (population) weights.

Written from the public docstrings only. Design fixed by `design_seed` (geography, x, pop,
zones, sources); each replication redraws unit/year effects, AR(1) region shocks, city
noise and the missing-at-random pattern.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

YEARS = np.arange(2001, 2021)
REGION_SIZES = [40, 35, 30, 28, 25, 22, 20, 17, 14, 11, 8, 6, 4]  # 260 cities, 13 regions
WAVES = {2005: 6.0, 2009: 8.0, 2012: 10.0, 2016: 12.0}  # wave -> per-capita direct effect
WAVE_SIZES = [9, 9, 9, 8]  # 35 zones
SOURCE_COHORTS = [2007, 2010, 2012, 2015, 2018]  # 5 zones outside the panel
G_SOURCE = 8.0
K = 4
DECAY_KM = 40.0


def haversine(lat1, lon1, lat2, lon2):
    r = 6371.0
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


def make_design(design_seed=12345):
    rng = np.random.default_rng(design_seed)
    n = sum(REGION_SIZES)
    region = np.repeat(np.arange(len(REGION_SIZES)), REGION_SIZES)
    # region centres on a jittered 4x4 grid, ~1.6 deg apart
    centres = []
    for g in range(len(REGION_SIZES)):
        r, c = divmod(g, 4)
        centres.append((41.0 + 1.6 * r + rng.normal(0, 0.2), 2.0 + 2.0 * c + rng.normal(0, 0.2)))
    centres = np.array(centres)
    lat = centres[region, 0] + rng.normal(0, 0.35, n)
    lon = centres[region, 1] + rng.normal(0, 0.45, n)
    x = rng.normal(0, 1, n)
    pop = np.exp(rng.normal(np.log(50_000), 0.8, n))
    # zones: selection probability rising with x
    p = np.exp(1.0 * x)
    p /= p.sum()
    zones = rng.choice(n, size=sum(WAVE_SIZES), replace=False, p=p)
    cohort = np.full(n, np.inf)
    waves = np.repeat(list(WAVES), WAVE_SIZES)
    cohort[zones] = rng.permutation(waves)
    gain = np.zeros(n)
    gain[zones] = [WAVES[c] for c in cohort[zones]]
    # sources: near random non-zone cities, outside the panel
    nonzone = np.setdiff1d(np.arange(n), zones)
    host = rng.choice(nonzone, size=len(SOURCE_COHORTS), replace=False)
    s_lat = lat[host] + rng.normal(0, 0.15, len(host))
    s_lon = lon[host] + rng.normal(0, 0.2, len(host))
    s_pop = np.exp(rng.normal(np.log(50_000), 0.8, len(host)))
    units = pd.DataFrame(
        {
            "city": np.arange(n),
            "region": [f"R{g:02d}" for g in region],
            "lat": lat,
            "lon": lon,
            "x": x,
            "pop": pop,
            "cohort": cohort,
            "gain": gain,
        }
    )
    sources = pd.DataFrame(
        {
            "city": np.arange(10_000, 10_000 + len(host)),
            "cohort": SOURCE_COHORTS,
            "region": units["region"].to_numpy()[host],
            "lat": s_lat,
            "lon": s_lon,
            "pop": s_pop,
            "gain": G_SOURCE,
        }
    )
    # k nearest PANEL units of every zone (sample zones exclude themselves; sources take no slot)
    links = []  # (zone_id, is_source, unit_index, distance)
    for z in zones:
        d = haversine(lat[z], lon[z], lat, lon)
        d[z] = np.inf
        for j in np.argsort(d)[:K]:
            links.append((int(z), False, int(j), float(d[j])))
    for si in range(len(host)):
        d = haversine(s_lat[si], s_lon[si], lat, lon)
        for j in np.argsort(d)[:K]:
            links.append((int(sources["city"].iloc[si]), True, int(j), float(d[j])))
    links = pd.DataFrame(links, columns=["zone", "is_source", "unit", "dist"])
    return {"units": units, "sources": sources, "links": links}


def true_effects(design, s):
    """Per-capita effect tau_it (n x T) of zones: own gain and distance-decayed losses.

    Each open zone z (sample or source) draws s * pop_z * G_z from those of its K nearest
    panel units that are not zones at t, per-capita losses proportional to exp(-d/40km).
    Also returns loss_by[(unit, zone)] -> per-period per-capita loss array.
    """
    u, src, links = design["units"], design["sources"], design["links"]
    n, T = len(u), len(YEARS)
    cohort = u["cohort"].to_numpy()
    pop = u["pop"].to_numpy()
    tau = np.zeros((n, T))
    own = cohort[:, None] <= YEARS[None, :]
    tau += own * u["gain"].to_numpy()[:, None]
    zinfo = {}
    for z in u.index[np.isfinite(cohort)]:
        zinfo[int(z)] = (cohort[z], pop[z], u["gain"].iat[z])
    for _, r in src.iterrows():
        zinfo[int(r["city"])] = (r["cohort"], r["pop"], r["gain"])
    loss_by = {}
    for z, grp in links.groupby("zone"):
        cz, pz, gz = zinfo[z]
        js = grp["unit"].to_numpy()
        kern = np.exp(-grp["dist"].to_numpy() / DECAY_KM)
        for ti, t in enumerate(YEARS):
            if t < cz:
                continue
            active = cohort[js] > t  # not (yet) a zone at t
            if not active.any():
                continue
            denom = np.sum(pop[js][active] * kern[active])
            for j, a, kk in zip(js, active, kern, strict=True):
                if a:
                    loss = s * pz * gz * kk / denom
                    tau[j, ti] -= loss
                    loss_by.setdefault((int(j), z), np.zeros(T))[ti] += loss
    return tau


def draw_panel(design, s, seed, noiseless=False, miss=0.04, effects=True):
    rng = np.random.default_rng(seed)
    u = design["units"]
    n, T = len(u), len(YEARS)
    x = u["x"].to_numpy()
    reg = pd.factorize(u["region"])[0]
    G = reg.max() + 1
    alpha_i = 20 + 3 * x + rng.normal(0, 5, n)
    beta_t = np.cumsum(rng.normal(0.5, 1.0, T))
    gamma_t = 0.4 * (YEARS - YEARS[0])
    y0 = alpha_i[:, None] + beta_t[None, :] + x[:, None] * gamma_t[None, :]
    if not noiseless:
        rho, sd = 0.7, 0.8
        sh = np.zeros((G, T))
        sh[:, 0] = rng.normal(0, sd / np.sqrt(1 - rho**2), G)
        for t in range(1, T):
            sh[:, t] = rho * sh[:, t - 1] + rng.normal(0, sd, G)
        y0 = y0 + sh[reg] + rng.normal(0, 1.0, (n, T))
    tau = true_effects(design, s) if effects else np.zeros((n, T))
    y = y0 + tau
    obs = rng.random((n, T)) >= miss
    cohort = u["cohort"].to_numpy()
    frame = pd.DataFrame(
        {
            "city": np.repeat(u["city"].to_numpy(), T),
            "year": np.tile(YEARS, n),
            "y": y.ravel(),
            "tau": tau.ravel(),
            "obs": obs.ravel(),
            "x": np.repeat(x, T),
            "pop": np.repeat(u["pop"].to_numpy(), T),
            "cohort": np.repeat(np.where(np.isfinite(cohort), cohort, 0), T).astype(int),
        }
    )
    return frame


def observed(frame):
    return frame.loc[frame["obs"]].drop(columns=["tau", "obs"]).reset_index(drop=True)


def make_panel(design, df, unit_str=False, pop_scale=1.0):
    from zoneimpact.panel import Panel

    geo = design["units"][["city", "region", "lat", "lon"]].copy()
    src = design["sources"][["city", "cohort", "region", "lat", "lon"]].copy()
    df = df.copy()
    df["pop"] = df["pop"] * pop_scale
    if unit_str:
        df["city"] = "c" + df["city"].astype(str)
        geo["city"] = "c" + geo["city"].astype(str)
        src["city"] = "c" + src["city"].astype(str)
    return Panel.from_frame(
        df,
        unit="city",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x", "pop"],
        geography=geo,
        sources=src,
    )


FIT_KW = dict(exposure="knn", k_nearest=4, knn_among="panel", covariates=["x"], weights="pop")


def fit(panel, **kw):
    from zoneimpact.estimators.spillover import fit as _fit

    args = dict(FIT_KW)
    args.update(kw)
    return _fit(panel, outcome="y", **args)


def truths(design, frame):
    """Population-weighted truths by the docstring's definitions, on the observed rows."""
    u, src, links = design["units"], design["sources"], design["links"]
    n, T = len(u), len(YEARS)
    cohort = u["cohort"].to_numpy()
    pop = u["pop"].to_numpy()
    tau = frame["tau"].to_numpy().reshape(n, T)
    obs = frame["obs"].to_numpy().reshape(n, T)
    zcoh = {int(z): cohort[z] for z in np.where(np.isfinite(cohort))[0]}
    for _, r in src.iterrows():
        zcoh[int(r["city"])] = r["cohort"]
    src_ids = set(src["city"].astype(int))
    linked = {i: [] for i in range(n)}
    for _, r in links.iterrows():
        linked[int(r["unit"])].append(int(r["zone"]))
    # exposure onset over all zones (sources included)
    onset = np.full(n, np.inf)
    for i in range(n):
        cs = [zcoh[z] for z in linked[i] if z != i]
        if cs:
            onset[i] = min(cs)
    # zone has an estimated gain at t: observed then and an untreated row of its own
    # (observed before min(own cohort, exposure onset): drop_rows)
    has_untreated = np.zeros(n, bool)
    for i in zcoh:
        if i in src_ids:
            continue
        pre = YEARS < min(cohort[i], onset[i])
        has_untreated[i] = bool((obs[i] & pre).any())

    def counted(z, ti):
        if z in src_ids:
            return False
        return YEARS[ti] >= zcoh[z] and obs[z, ti] and has_untreated[z]

    pieces = {k: [] for k in ["direct", "spill", "soz", "from_src_nonzone", "from_src_zone"]}
    for i in range(n):
        for ti, t in enumerate(YEARS):
            if not obs[i, ti]:
                continue
            isz = np.isfinite(cohort[i])
            if isz and t >= cohort[i]:
                if has_untreated[i]:
                    pieces["direct"].append((pop[i], tau[i, ti]))
                continue
            if t < onset[i]:
                continue
            open_z = [z for z in linked[i] if z != i and zcoh[z] <= t]
            if any(counted(z, ti) for z in open_z):
                pieces["soz" if isz else "spill"].append((pop[i], tau[i, ti]))
            else:
                pieces["from_src_zone" if isz else "from_src_nonzone"].append((pop[i], tau[i, ti]))
    out = {}

    def mt(lst):
        if not lst:
            return np.nan, 0.0, 0
        a = np.array(lst)
        return np.sum(a[:, 0] * a[:, 1]) / a[:, 0].sum(), np.sum(a[:, 0] * a[:, 1]), len(a)

    for k, nm in [("direct", "direct"), ("spill", "spillover"), ("soz", "spillover_on_zones")]:
        out[nm], out[nm + "_total"], out["n_" + nm] = mt(pieces[k])
    fs = pieces["from_src_nonzone"] + pieces["from_src_zone"]
    out["spillover_from_sources"], out["spillover_from_sources_total"], out["n_from_sources"] = mt(
        fs
    )
    out["n_from_src_zone"] = len(pieces["from_src_zone"])
    out["net"] = out["direct_total"] + out["spillover_total"] + out["spillover_on_zones_total"]
    out["displacement_share"] = (
        1 - out["net"] / out["direct_total"] if out["direct_total"] != 0 else np.nan
    )
    # joint-exposure count (a source and a counted sample zone open and linked)
    nj = 0
    for i in range(n):
        for ti, t in enumerate(YEARS):
            if not obs[i, ti] or (np.isfinite(cohort[i]) and t >= cohort[i]):
                continue
            oz = [z for z in linked[i] if z != i and zcoh[z] <= t]
            if any(z in src_ids for z in oz) and any(counted(z, ti) for z in oz):
                nj += 1
    out["n_joint"] = nj
    return out
