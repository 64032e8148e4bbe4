"""refU: independent DGP for unbalanced-panel check of zoneimpact spillover.fit."""

import numpy as np
import pandas as pd

YEARS = np.arange(2000, 2021)
WAVES = np.array([2005, 2010, 2015])
N_UNITS = 300
N_REG = 24
RING_KM = 50.0


def haversine(lat1, lon1, lat2, lon2):
    r = 6371.0
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


def simulate(seed, variant, world):
    """variant in {'a','b','c','full'}; world in {'noeffect','share'}.

    Returns (frame, geo, truth dict)."""
    rng = np.random.default_rng(seed)
    # 24 regions on a 6 x 4 grid, ~300 km apart, centred near (31N, 113E)
    gi, gj = np.meshgrid(np.arange(6), np.arange(4))
    clat0, clon0 = 27.0, 108.0
    dlat = 300 / 111.0

    def dlon_deg(lat):
        return 300 / (111.0 * np.cos(np.radians(lat)))

    c_lat = clat0 + gj.ravel() * dlat
    c_lon = clon0 + gi.ravel() * dlon_deg(31.0)
    region = rng.integers(0, N_REG, N_UNITS)
    # ensure each region has >= 3 units
    region[: N_REG * 3] = np.repeat(np.arange(N_REG), 3)
    lat = c_lat[region] + rng.normal(0, 60, N_UNITS) / 111.0
    lon = c_lon[region] + rng.normal(0, 60, N_UNITS) / (111.0 * np.cos(np.radians(c_lat[region])))
    x = rng.normal(0, 1, N_UNITS)

    # adoption: P(zone) rises in x, ~20% overall; timing earlier for higher x
    p = 1 / (1 + np.exp(-(-1.65 + 0.8 * x)))
    zone = rng.random(N_UNITS) < p
    # wave choice: softmax with scores favouring early waves for high x
    scores = np.stack([0.8 * x, np.zeros_like(x), -0.8 * x], axis=1)
    pw = np.exp(scores)
    pw /= pw.sum(1, keepdims=True)
    u = rng.random(N_UNITS)
    widx = (u[:, None] > np.cumsum(pw, 1)).sum(1)
    cohort = np.where(zone, WAVES[np.minimum(widx, 2)], np.inf)

    # exposure onset: earliest opening of another zone unit within 50 km
    d = haversine(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    near = (d <= RING_KM) & ~np.eye(N_UNITS, dtype=bool)
    onset = np.where(near, cohort[None, :], np.inf).min(1)

    T = len(YEARS)
    tt = np.tile(YEARS, N_UNITS)
    ii = np.repeat(np.arange(N_UNITS), T)
    # outcome components
    alpha = rng.normal(0, 5, N_UNITS)
    gamma = np.cumsum(rng.normal(0.5, 1.0, T))
    shocks = np.zeros((N_REG, T))
    innov_sd = 3.0 * np.sqrt(1 - 0.25)  # stationary SD 3
    shocks[:, 0] = rng.normal(0, 3.0, N_REG)
    for k in range(1, T):
        shocks[:, k] = 0.5 * shocks[:, k - 1] + rng.normal(0, innov_sd, N_REG)
    y0 = (
        50
        + alpha[ii]
        + gamma[tt - 2000]
        + 0.3 * x[ii] * (tt - 2000)
        + shocks[region[ii], tt - 2000]
        + rng.normal(0, 3.0, len(tt))
    )

    coh = cohort[ii]
    ons = onset[ii]
    is_direct = tt >= coh
    is_exposed = (tt >= ons) & ~is_direct  # non-zone or not-yet-zone
    is_spill_nonzone = is_exposed & ~np.isfinite(coh)
    is_spill_onzone = is_exposed & np.isfinite(coh)

    # unbalancedness
    present = np.ones(len(tt), bool)  # row exists
    obs = np.ones(len(tt), bool)  # outcome not NaN
    if variant == "a":
        obs = rng.random(len(tt)) >= 0.15
    elif variant == "b":
        late = rng.random(N_UNITS) < 0.25
        entry = np.where(late, rng.integers(2001, 2009, N_UNITS), 2000)
        early = rng.random(N_UNITS) < 0.10
        exit_ = np.where(early, rng.integers(2014, 2020, N_UNITS), 2020)
        present = (tt >= entry[ii]) & (tt <= exit_[ii])
    elif variant == "c":
        # high x -> miss 25% of years, low x -> 5%; smooth logistic in x
        pm = 0.05 + 0.20 / (1 + np.exp(-2.5 * x))
        obs = rng.random(len(tt)) >= pm[ii]
    elif variant == "full":
        pass
    else:
        raise ValueError(variant)
    ob = present & obs

    n_dir = int((is_direct & ob).sum())
    n_exp = int((is_exposed & ob).sum())
    n_sp = int((is_spill_nonzone & ob).sum())
    n_soz = int((is_spill_onzone & ob).sum())
    if world == "share":
        tau_d = 6.0
        s = -0.5 * tau_d * n_dir / n_exp
    else:
        tau_d, s = 0.0, 0.0
    y = y0 + tau_d * is_direct + s * is_exposed
    y = np.where(obs, y, np.nan)

    frame = pd.DataFrame(
        {
            "unit": ii,
            "year": tt,
            "y": y,
            "x": x[ii],
            "cohort": np.where(np.isfinite(coh), coh, 0).astype(int),
        }
    )[present].reset_index(drop=True)
    geo = pd.DataFrame({"unit": np.arange(N_UNITS), "region": region, "lat": lat, "lon": lon})
    truth = dict(
        tau_d=tau_d,
        s=s,
        n_dir=n_dir,
        n_exp=n_exp,
        n_sp=n_sp,
        n_soz=n_soz,
        n_zone_units=int(zone.sum()),
        n_exposed_units=int((np.isfinite(onset) & ~zone).sum()),
    )
    # masks for recomputing truths on arbitrary target sets
    truth["_frame_flags"] = pd.DataFrame(
        {
            "unit": ii,
            "year": tt,
            "direct": is_direct,
            "spill": is_spill_nonzone,
            "soz": is_spill_onzone,
            "present": present,
            "obs": obs,
        }
    )
    return frame, geo, truth
