"""Referee K's independent world: cities in regions, staggered zones, rings, pop weights.

Truth model (one outcome y, per-capita level; weighted totals = sum_i pop_i * tau_it):
  y_it = a_i + b_t + beta * x_i * (t - T0) + r_{region(i),t} + e_it + tau_it
  zone unit i (cohort g_i) for t >= g_i:    tau_it = G_wave(i)   (no loss once a zone)
  every other unit j, at t:                 tau_jt = - sum_{z open at t, j linked to z, j not a zone at t}
                                                       s * pop_z * G_z * k_r(j,z) / sum_k pop_k k_r(k,z)
  (zone z's weighted gain pop_z*G_z is drawn, in share s, from its linked not-yet-zone units,
   proportionally to pop times ring intensity k_r: inner ring 2, outer ring 1).
Links: haversine distance d < outer edge of rings.
"""

import numpy as np
import pandas as pd

T0, T1 = 2000, 2020
RINGS = [(0.0, 25.0), (25.0, 60.0)]
KR = {0: 2.0, 1: 1.0}
WAVES = [2005, 2009, 2013, 2016]
GW = {2005: 8.0, 2009: 10.0, 2013: 12.0, 2016: 14.0}


def haversine(lat1, lon1, lat2, lon2):
    R = 6371.0088
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def geography(seed=12345, n_regions=14, n_cities=280):
    """Fixed geography / design (cities, regions, x, pop, cohorts)."""
    rng = np.random.default_rng(seed)
    # region centres: rejection sampling in a ~1600 x 1100 km box, min separation 260 km
    cent = []
    while len(cent) < n_regions:
        la, lo = rng.uniform(30, 40), rng.uniform(105, 122)
        if all(haversine(la, lo, a, b) > 260 for a, b in cent):
            cent.append((la, lo))
    cent = np.array(cent)
    # unequal sizes: Dirichlet shares, min 8 cities
    sh = rng.dirichlet(np.full(n_regions, 1.2))
    sizes = 8 + np.floor(sh * (n_cities - 8 * n_regions)).astype(int)
    sizes[np.argmax(sizes)] += n_cities - sizes.sum()
    reg = np.repeat(np.arange(n_regions), sizes)
    spread_km = 45.0
    lat = cent[reg, 0] + rng.normal(0, spread_km / 111.0, n_cities)
    lon = cent[reg, 1] + rng.normal(
        0, spread_km / (111.0 * np.cos(np.radians(cent[reg, 0]))), n_cities
    )
    xr = rng.normal(0, 0.7, n_regions)
    x = xr[reg] + rng.normal(0, 0.7, n_cities)
    pop = np.exp(rng.normal(np.log(200.0), 1.0, n_cities))  # thousands, lognormal sigma 1
    # adoption depends on x
    p = 1 / (1 + np.exp(-(-2.3 + 1.1 * x)))
    adopt = rng.uniform(size=n_cities) < p
    wave = rng.choice(WAVES, size=n_cities)
    cohort = np.where(adopt, wave, np.inf)
    units = np.arange(1, n_cities + 1)
    geo = pd.DataFrame(
        {
            "unit": units,
            "region": [f"R{r:02d}" for r in reg],
            "lat": lat,
            "lon": lon,
            "x": x,
            "pop": pop,
            "cohort": cohort,
        }
    )
    return geo


def links(geo):
    """distance matrix, link ring index (-1 none) for units x zones."""
    la, lo = geo.lat.values, geo.lon.values
    D = haversine(la[:, None], lo[:, None], la[None, :], lo[None, :])
    ring = np.full(D.shape, -1)
    for r, (lo_, hi_) in enumerate(RINGS):
        ring[(D >= lo_) & (D < hi_)] = r
    np.fill_diagonal(ring, -1)
    return D, ring


def effects(geo, s, G_scale=1.0):
    """tau (units x periods), plus roles: returns dict with tau, zone mask etc."""
    n = len(geo)
    years = np.arange(T0, T1 + 1)
    coh = geo.cohort.values
    pop = geo["pop"].values
    D, ring = links(geo)
    zones = np.where(np.isfinite(coh))[0]
    tau = np.zeros((n, len(years)))
    G = np.array([GW.get(c, 0.0) * G_scale if np.isfinite(c) else 0.0 for c in coh])
    for ti, t in enumerate(years):
        zone_now = coh <= t
        tau[zone_now, ti] += G[zone_now]
        for z in zones:
            if coh[z] > t:
                continue
            lk = (ring[:, z] >= 0) & ~zone_now
            if not lk.any():
                continue
            k = np.array([KR[r] for r in ring[lk, z]])
            wts = pop[lk] * k
            # weighted loss of unit j = s*pop_z*G_z * wts_j/sum(wts); per capita = /pop_j
            tau[lk, ti] -= s * pop[z] * G[z] * (wts / wts.sum()) / pop[lk]
    return tau


def roles(geo):
    """Exposure onset and ring label following the exposure module's documented rules."""
    coh = geo.cohort.values
    D, ring = links(geo)
    n = len(geo)
    onset = np.full(n, np.inf)
    lab = np.array([""] * n, dtype=object)
    for i in range(n):
        zl = [z for z in range(n) if np.isfinite(coh[z]) and ring[i, z] >= 0]
        if zl:
            onset[i] = min(coh[z] for z in zl)
            zc = min(zl, key=lambda z: D[i, z])
            lab[i] = ring[i, zc]
    return onset, lab


def simulate(
    geo, s, seed, noise=True, beta=0.8, sd_e=2.0, sd_r=1.5, rho=0.6, const=0.0, G_scale=1.0
):
    rng = np.random.default_rng(seed)
    n = len(geo)
    years = np.arange(T0, T1 + 1)
    nt = len(years)
    reg_codes, reg_idx = np.unique(geo.region.values, return_inverse=True)
    a = rng.normal(50, 10, n) + 3 * geo.x.values
    b = np.cumsum(rng.normal(0.5, 1.0, nt))
    trend = beta * geo.x.values[:, None] * (years[None, :] - T0)
    y = a[:, None] + b[None, :] + trend + const
    if noise:
        R = np.zeros((len(reg_codes), nt))
        R[:, 0] = rng.normal(0, sd_r / np.sqrt(1 - rho**2), len(reg_codes))
        for t in range(1, nt):
            R[:, t] = rho * R[:, t - 1] + rng.normal(0, sd_r, len(reg_codes))
        # idiosyncratic noise, smaller in big cities
        sdi = sd_e * (geo["pop"].values / 200.0) ** (-0.25)
        y = y + R[reg_idx] + rng.normal(0, 1, (n, nt)) * sdi[:, None]
    tau = effects(geo, s, G_scale)
    y = y + tau
    df = pd.DataFrame(
        {"unit": np.repeat(geo.unit.values, nt), "year": np.tile(years, n), "y": y.ravel()}
    )
    df = df.merge(geo[["unit", "x", "pop", "cohort"]], on="unit")
    return df, tau


def truths(geo, tau, obs=None):
    """Weighted estimands per the spillover docstring (obs: observed unit-periods; targets only where observed)."""
    years = np.arange(T0, T1 + 1)
    coh = geo.cohort.values
    pop = geo["pop"].values
    onset, lab = roles(geo)
    Y = years[None, :]
    W = pop[:, None] * np.ones_like(tau)
    zone = np.isfinite(coh)
    direct_m = zone[:, None] & (Y >= coh[:, None])
    soz_m = zone[:, None] & (Y >= onset[:, None]) & (Y < coh[:, None])
    exp_m = (~zone)[:, None] & (Y >= onset[:, None])
    if obs is not None:
        direct_m, soz_m, exp_m = direct_m & obs, soz_m & obs, exp_m & obs
        tau = np.where(obs, tau, 0.0)
    out = {}

    def wm(m):
        return (W[m] * tau[m]).sum() / W[m].sum() if m.any() else np.nan

    def wt(m):
        return (W[m] * tau[m]).sum()

    out["direct"] = wm(direct_m)
    out["direct_total"] = wt(direct_m)
    out["spillover"] = wm(exp_m)
    out["spillover_total"] = wt(exp_m)
    for r in range(len(RINGS)):
        m = exp_m & np.array([lb == r for lb in lab])[:, None]
        out[f"spillover:r{r}"] = wm(m)
        out[f"spillover_total:r{r}"] = wt(m)
    out["spillover_on_zones"] = wm(soz_m)
    out["spillover_on_zones_total"] = wt(soz_m)
    out["net"] = out["direct_total"] + out["spillover_total"] + out["spillover_on_zones_total"]
    out["net_per_treated"] = out["net"] / W[direct_m].sum()
    out["displacement_share"] = (
        1 - out["net"] / out["direct_total"] if out["direct_total"] != 0 else np.nan
    )
    # sanity: everything with nonzero tau is a target
    other = ~(direct_m | soz_m | exp_m)
    out["_untargeted_abs_tau"] = np.abs(tau[other]).sum()
    out["_n_direct"] = int(direct_m.sum())
    out["_n_exp"] = int(exp_m.sum())
    out["_n_soz"] = int(soz_m.sum())
    return out


def panel_of(df, geo, string_ids=False):
    from zoneimpact.panel import Panel

    g = geo[["unit", "region", "lat", "lon"]].copy()
    if string_ids:
        g["unit"] = "c" + g["unit"].astype(str)
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x", "pop"],
        geography=g,
        never_values=(np.inf,),
    )
