"""Referee I's own zone-world simulator (written from the brief only).

All randomness comes from one numpy Generator.  `simulate(seed, share, null, noiseless)`
returns a dict with the long frame, the geography frame and the truth ingredients
(per unit x year matrices of the realised effect and of the population-tau effect).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

YEARS = np.arange(1996, 2021)
T = len(YEARS)
N_CITIES = 400
N_REGIONS = 20
WAVES = np.array([2000, 2003, 2006, 2010, 2014])
RING_KM = 40.0
EARTH_R = 6371.0
TAU_MEAN = 35.0
TAU_SIG = 0.3


def haversine_matrix(lat, lon):
    la = np.radians(lat)[:, None]
    lb = np.radians(lat)[None, :]
    dl = np.radians(lon)[:, None] - np.radians(lon)[None, :]
    a = np.sin((la - lb) / 2) ** 2 + np.cos(la) * np.cos(lb) * np.sin(dl / 2) ** 2
    return 2 * EARTH_R * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def region_sizes(rng):
    """20 unequal sizes summing to 400, each in [6, 40], spread roughly 6..40."""
    while True:
        p = rng.dirichlet(np.full(N_REGIONS, 1.2))
        extra = rng.multinomial(N_CITIES - 6 * N_REGIONS, p)
        sizes = 6 + extra
        if sizes.max() <= 40 and sizes.max() >= 32 and sizes.min() <= 9:
            return sizes


def region_centres(rng, min_sep_km=120.0):
    """Irregular centres in lat 25-38, lon 105-120, at least min_sep_km apart."""
    lat, lon = [], []
    while len(lat) < N_REGIONS:
        a = rng.uniform(25.5, 37.5)
        o = rng.uniform(105.5, 119.5)
        if lat:
            d = haversine_matrix(np.r_[lat, a], np.r_[lon, o])[-1, :-1]
            if d.min() < min_sep_km:
                continue
        lat.append(a)
        lon.append(o)
    return np.array(lat), np.array(lon)


def simulate(
    seed: int, share: float, null: bool = False, noiseless: bool = False, tau_sig: float = TAU_SIG
):
    rng = np.random.default_rng(seed)
    sizes = region_sizes(rng)
    clat, clon = region_centres(rng)
    region = np.repeat(np.arange(N_REGIONS), sizes)
    # cities uniformly in a disc of 70 km around the centre
    r_km = 70.0 * np.sqrt(rng.uniform(size=N_CITIES))
    ang = rng.uniform(0, 2 * np.pi, size=N_CITIES)
    lat = clat[region] + (r_km * np.sin(ang)) / 111.195
    lon = clon[region] + (r_km * np.cos(ang)) / (111.195 * np.cos(np.radians(clat[region])))
    # covariate
    x = rng.normal(0, 0.6, N_REGIONS)[region] + rng.normal(0, 1, N_CITIES)
    # zones: logistic in x, ~25%
    pz = 1 / (1 + np.exp(-(-1.45 + 1.0 * x)))
    is_zone = rng.uniform(size=N_CITIES) < pz
    cohort = np.full(N_CITIES, np.inf)
    zi = np.flatnonzero(is_zone)
    # higher x opens earlier on average: rank a noisy latent, split in 5 near-equal waves
    latent = -x[zi] + rng.normal(0, 0.8, zi.size)
    order = np.argsort(latent)
    wave_of = np.empty(zi.size, int)
    wave_of[order] = (np.arange(zi.size) * 5) // zi.size
    cohort[zi] = WAVES[wave_of]
    # per-zone tau
    tau = np.zeros(N_CITIES)
    draw = np.exp(rng.normal(0, tau_sig, N_CITIES))  # always drawn: common random numbers
    if not null:
        tau[zi] = TAU_MEAN * draw[zi] / np.exp(tau_sig**2 / 2)
    # untreated outcome
    sig_c = 0.5
    alpha = np.exp(rng.normal(np.log(100) - sig_c**2 / 2, sig_c, N_CITIES))
    year_eff = 1.5 * (YEARS - 1996) + rng.normal(0, 3, T)
    gamma = 4 * np.sqrt(YEARS - 1996)
    # AR(1) region shocks, stationary start
    u = np.zeros((N_REGIONS, T))
    u[:, 0] = rng.normal(0, 4 / np.sqrt(1 - 0.36), N_REGIONS)
    for k in range(1, T):
        u[:, k] = 0.6 * u[:, k - 1] + rng.normal(0, 4, N_REGIONS)
    eps = 4 * rng.standard_t(5, size=(N_CITIES, T))
    if noiseless:
        u[:] = 0
        eps[:] = 0
    y0 = alpha[:, None] + year_eff[None, :] + gamma[None, :] * x[:, None] + u[region] + eps

    # effects
    D = haversine_matrix(lat, lon)
    np.fill_diagonal(D, np.inf)
    within = D < RING_KM
    w_raw = np.where(within, 1.0 / (D + 5.0), 0.0)  # zone (row) -> city (col)

    def effects(tau_vec, s):
        eff = np.zeros((N_CITIES, T))
        for k, t in enumerate(YEARS):
            open_ = cohort <= t
            e = np.minimum(t - cohort, 6)
            gain = np.where(open_, tau_vec * (1 + 0.08 * np.where(open_, e, 0)), 0.0)
            eff[:, k] += gain
            if s != 0:
                nonzone = ~open_
                W = w_raw[open_][:, nonzone]  # open zones x non-zone cities
                tot = W.sum(axis=1)
                ok = tot > 0
                W = W[ok] / tot[ok, None]
                take = s * gain[open_][ok]
                eff[nonzone, k] -= take @ W
        return eff

    s_eff = 0.0 if null else share
    eff_real = effects(tau, s_eff)
    tau_pop = np.where(is_zone, 0.0 if null else TAU_MEAN, 0.0)
    eff_pop = effects(tau_pop, s_eff)
    y = y0 + eff_real
    units = np.arange(N_CITIES)
    frame = pd.DataFrame(
        {
            "city": np.repeat(units, T),
            "year": np.tile(YEARS, N_CITIES),
            "zone_year": np.repeat(np.where(np.isfinite(cohort), cohort, 0), T).astype(int),
            "y": y.ravel(),
            "x": np.repeat(x, T),
        }
    )
    geo = pd.DataFrame(
        {"city": units, "region": [f"R{r:02d}" for r in region], "lat": lat, "lon": lon}
    )
    return dict(
        frame=frame,
        geo=geo,
        cohort=cohort,
        eff_real=eff_real,
        eff_pop=eff_pop,
        region=region,
        x=x,
        tau=tau,
        sizes=sizes,
        lat=lat,
        lon=lon,
        D=D,
    )
