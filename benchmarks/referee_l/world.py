"""Referee L's independent simulated world for zoneimpact.estimators.spillover.fit.

Written from the public docstrings only.

Design (fixed across Monte Carlo replications; only shocks/noise are redrawn):
  * 240 cities, 12 regions of unequal size (5..45 cities), region centres scattered over
    lat 27-41, lon 100-122; cities Gaussian around the centre with a region-specific spread
    (45-110 km).
  * years 1998-2019; baseline covariate x = region mean + within-region noise.
  * zones in 4 staggered waves (2002, 2006, 2009, 2013); P(zone) logistic in x, earlier waves
    more likely for high x.
  * y0 = 50 + a_i + g_t + beta * x_i * (t - 1998) + AR(1) region-year shock + city noise.
  * direct effect tau_it = m_z * min(5 + 1.0 * e, 11), e = t - cohort, m_z ~ U(0.5, 1.5).
  * displacement share s: each open zone's gain is drawn from its not-yet-zone neighbours
    within 80 km, inner ring (<30 km) weight 2, outer ring (30-80 km) weight 1, split in
    proportion to weights (equal per unit within ring).  s<0: agglomeration.
  * variant "knn": the gain is drawn equally from the zone's k=3 nearest panel units that are
    not yet zones (exposure map knn, k=3, among panel).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

YEARS = np.arange(1998, 2020)
WAVES = np.array([2002, 2006, 2009, 2013])
RINGS = [(0.0, 30.0), (30.0, 80.0)]
R_EARTH = 6371.0
SIZES = np.array([45, 35, 30, 26, 22, 20, 16, 14, 12, 9, 6, 5])


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R_EARTH * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def make_design(seed: int = 3, variant: str = "rings", knn_k: int = 3):
    """Fixed design: geography, x, zones, multipliers, FE, and the exact effect matrices
    per unit of share (gain matrix G and loss-per-unit-share matrix L, both units x years)."""
    rng = np.random.default_rng(seed)
    n_reg = len(SIZES)
    # region centres with a minimum separation of ~220 km
    centres = []
    while len(centres) < n_reg:
        c = (rng.uniform(27, 41), rng.uniform(100, 122))
        if all(haversine(c[0], c[1], d[0], d[1]) > 220 for d in centres):
            centres.append(c)
    spread = rng.uniform(45, 110, n_reg)  # km
    reg_mean_x = rng.normal(0, 1, n_reg)
    rows = []
    for r in range(n_reg):
        for _ in range(SIZES[r]):
            dy = rng.normal(0, spread[r]) / 111.0
            dx = rng.normal(0, spread[r]) / (111.0 * np.cos(np.radians(centres[r][0])))
            rows.append((r, centres[r][0] + dy, centres[r][1] + dx))
    n = len(rows)
    reg = np.array([r for r, _, _ in rows])
    lat = np.array([a for _, a, _ in rows])
    lon = np.array([b for _, _, b in rows])
    x = reg_mean_x[reg] + rng.normal(0, 0.7, n)
    D = haversine(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    np.fill_diagonal(D, np.inf)
    # avoid knife edges at ring borders (distance-convention robustness)
    # adoption: P(zone) increasing in x; wave earlier for higher x
    p = 1 / (1 + np.exp(-(-1.9 + 1.1 * x)))
    zone = rng.uniform(size=n) < p
    cohort = np.full(n, np.inf)
    zi = np.where(zone)[0]
    # wave choice: ordered by x + noise
    score = x[zi] + rng.normal(0, 0.8, len(zi))
    order = np.argsort(-score)
    wave_of = np.empty(len(zi), dtype=int)
    splits = np.array_split(order, 4)
    for w, idx in enumerate(splits):
        wave_of[idx] = w
    cohort[zi] = WAVES[wave_of]
    Dz = D[zone][:, np.isfinite(D[zone][0]) | True]
    Dz = Dz[np.isfinite(Dz)]
    for b in (30.0, 80.0):
        assert np.min(np.abs(Dz - b)) > 0.02, f"zone-unit pair within 20 m of {b} km; change seed"
    mult = np.where(zone, rng.uniform(0.5, 1.5, n), 0.0)
    a_i = rng.normal(0, 5, n)
    g_t = np.cumsum(rng.normal(0.5, 1.0, len(YEARS)))
    beta = 0.4
    T = len(YEARS)
    tt = YEARS[None, :]
    e = tt - cohort[:, None]
    treated = e >= 0
    G = np.where(treated, mult[:, None] * np.minimum(5 + 1.0 * np.where(treated, e, 0), 11), 0.0)
    # link weights W[z, j]: how zone z draws on unit j
    if variant == "rings":
        W = np.where(D < 30, 2.0, np.where(D < 80, 1.0, 0.0))
    elif variant == "knn":
        W = np.zeros((n, n))
        for i in range(n):
            nn = np.argsort(D[i])[:knn_k]
            W[i, nn] = 1.0
    else:
        raise ValueError(variant)
    W[~zone, :] = 0.0
    # loss per unit share: L[j, t] = - sum_z G[z,t] * W[z,j]*1{c_j>t} / sum_k W[z,k]*1{c_k>t}
    L = np.zeros((n, T))
    for ti, t in enumerate(YEARS):
        elig = (cohort > t).astype(float)  # not yet a zone
        We = W * elig[None, :]
        den = We.sum(axis=1)
        for z in zi:
            if G[z, ti] != 0 and den[z] > 0:
                L[:, ti] -= G[z, ti] * We[z] / den[z]
    # my own exposure map (docstring rules): linked zones, onset, ring of closest zone
    link = W > 0  # zone -> unit
    onset = np.full(n, np.inf)
    ring = np.array([None] * n, dtype=object)
    for j in range(n):
        zs = np.where(link[:, j])[0]
        zs = zs[zs != j]
        if len(zs):
            onset[j] = cohort[zs].min()
            if variant == "rings":
                dmin = D[zs, j].min()
                ring[j] = "0-30km" if dmin < 30 else "30-80km"
            else:
                ring[j] = f"{knn_k}-nearest"
    return dict(
        n=n,
        reg=reg,
        lat=lat,
        lon=lon,
        x=x,
        D=D,
        zone=zone,
        cohort=cohort,
        mult=mult,
        a_i=a_i,
        g_t=g_t,
        beta=beta,
        G=G,
        L=L,
        onset=onset,
        ring=ring,
        variant=variant,
        knn_k=knn_k,
        W=W,
    )


def truths(des, s: float, null: bool = False):
    """Estimands exactly as the docstring defines them, from the simulated effects."""
    if null:
        return dict(
            direct=0.0,
            spillover=0.0,
            net=0.0,
            displacement_share=np.nan,
            spillover_on_zones=0.0,
            spillover_on_zones_total=0.0,
            direct_total=0.0,
            spillover_total=0.0,
        )
    G, L = des["G"], s * des["L"]
    cohort, onset, ring, zone = des["cohort"], des["onset"], des["ring"], des["zone"]
    tt = YEARS[None, :]
    dmask = zone[:, None] & (tt >= cohort[:, None])
    smask = (~zone)[:, None] & (tt >= onset[:, None])
    zmask = zone[:, None] & (tt >= onset[:, None]) & (tt < cohort[:, None])
    out = dict(
        direct=G[dmask].mean(),
        direct_total=G[dmask].sum(),
        spillover=L[smask].mean(),
        spillover_total=L[smask].sum(),
    )
    for lab in sorted(set(r for r in ring if r is not None)):
        m = smask & (ring == lab)[:, None]
        if m.any():
            out[f"spillover:{lab}"] = L[m].mean()
    if zmask.any():
        out["spillover_on_zones"] = L[zmask].mean()
        out["spillover_on_zones_total"] = L[zmask].sum()
    else:
        out["spillover_on_zones_total"] = 0.0
    # sanity: any loss outside the map's targets?
    stray = np.abs(L[~(smask | zmask)]).sum()
    out["_stray_loss"] = stray
    out["net"] = out["direct_total"] + out["spillover_total"] + out["spillover_on_zones_total"]
    out["displacement_share"] = 1 - out["net"] / out["direct_total"]
    out["n_direct_up"] = int(dmask.sum())
    out["n_spill_up"] = int(smask.sum())
    out["n_soz_up"] = int(zmask.sum())
    return out


def simulate(
    des,
    s: float,
    rng,
    noise: bool = True,
    null: bool = False,
    rho: float = 0.6,
    sd_shock: float = 1.5,
    sd_noise: float = 2.0,
):
    n, T = des["n"], len(YEARS)
    y = (
        50
        + des["a_i"][:, None]
        + des["g_t"][None, :]
        + des["beta"] * des["x"][:, None] * (YEARS - 1998)[None, :]
    )
    if noise:
        n_reg = des["reg"].max() + 1
        sh = np.zeros((n_reg, T))
        sh[:, 0] = rng.normal(0, sd_shock / np.sqrt(1 - rho**2), n_reg)
        for t in range(1, T):
            sh[:, t] = rho * sh[:, t - 1] + rng.normal(0, sd_shock, n_reg)
        y = y + sh[des["reg"]] + rng.normal(0, sd_noise, (n, T))
    if not null:
        y = y + des["G"] + s * des["L"]
    return y


def to_frames(des, y, ids=None):
    n, T = des["n"], len(YEARS)
    ids = np.arange(1, n + 1) if ids is None else np.asarray(ids)
    coh = np.where(np.isfinite(des["cohort"]), des["cohort"], 0).astype(int)
    frame = pd.DataFrame(
        {
            "city": np.repeat(ids, T),
            "year": np.tile(YEARS, n),
            "y": y.ravel(),
            "cohort": np.repeat(coh, T),
            "x": np.repeat(des["x"], T),
        }
    )
    geo = pd.DataFrame(
        {
            "city": ids,
            "region": [f"R{r:02d}" for r in des["reg"]],
            "lat": des["lat"],
            "lon": des["lon"],
        }
    )
    return frame, geo


def fit_world(des, frame, geo, **kw):
    from zoneimpact.estimators import spillover
    from zoneimpact.panel import Panel

    panel = Panel.from_frame(
        frame,
        unit="city",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x"],
        geography=geo,
    )
    if des["variant"] == "rings":
        ex = dict(exposure="rings", rings_km=[list(r) for r in RINGS])
    else:
        ex = dict(exposure="knn", k_nearest=des["knn_k"], knn_among="panel")
    args = dict(outcome="y", covariates=["x"], rng=12345, **ex)
    args.update(kw)
    return spillover.fit(panel, **args)


def describe(des):
    z = des["zone"]
    c = des["cohort"]
    on = des["onset"]
    clean = (~z) & ~np.isfinite(on)
    print(
        f"units {des['n']}, zones {z.sum()} by wave",
        {int(w): int((c == w).sum()) for w in WAVES},
        f"exposed non-zone {((~z) & np.isfinite(on)).sum()}, clean {clean.sum()}",
        f"zones exposed before own {(z & (on < c)).sum()}",
    )
    print(
        "regions with zones",
        len(set(des["reg"][z])),
        "regions with clean units",
        len(set(des["reg"][clean])),
    )
