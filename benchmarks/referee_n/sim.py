"""Referee world for zoneimpact spillover fit (independent of the package's simulate.py)."""

import warnings

import numpy as np
import pandas as pd

RINGS = [(0.0, 25.0), (25.0, 60.0)]
YEARS = np.arange(2000, 2021)
SIZES = [60, 45, 30, 25, 15, 12, 8, 5]
ZONE_QUOTA = [10, 7, 5, 3, 2, 2, 1, 0]  # 30 zones, more in big regions
WAVES = [2005, 2009, 2012, 2016]
RING_W = [2.0, 1.0]  # inner-ring units lose twice per unit


def hav(lat1, lon1, lat2, lon2):
    R = 6371.0088
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(np.minimum(1, a)))


def design(seed=20240611):
    """Fixed design: geography, x, zones, cohorts, effects per unit-period for s=1."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack([rng.uniform(38, 52, 8), rng.uniform(-5, 20, 8)])
    rows = []
    uid = 0
    for r, n in enumerate(SIZES):
        sd_km = 22 * np.sqrt(n)
        for _ in range(n):
            dy, dx = rng.normal(0, sd_km, 2)
            lat = centres[r, 0] + dy / 111.0
            lon = centres[r, 1] + dx / (111.0 * np.cos(np.radians(centres[r, 0])))
            rows.append((uid, lat, lon, f"R{r}"))
            uid += 1
    geo = pd.DataFrame(rows, columns=["unit", "lat", "lon", "region"])
    N = len(geo)
    reg_idx = geo.region.str[1:].astype(int).to_numpy()
    # covariate: region-level mean + unit noise (skewed)
    x = rng.normal(0, 0.5, 8)[reg_idx] + rng.gamma(2.0, 0.5, N) - 1.0
    geo["x"] = x
    cohort = np.full(N, np.inf)
    for r in range(8):
        idx = np.where(reg_idx == r)[0]
        q = ZONE_QUOTA[r]
        if q == 0:
            continue
        p = np.exp(1.2 * x[idx])
        p /= p.sum()
        z = rng.choice(idx, size=q, replace=False, p=p)
        cohort[z] = rng.choice(WAVES, size=q)
    geo["cohort"] = cohort
    # distances
    D = hav(
        geo.lat.values[:, None],
        geo.lon.values[:, None],
        geo.lat.values[None, :],
        geo.lon.values[None, :],
    )
    zones = np.where(np.isfinite(cohort))[0]
    nonzone = np.where(~np.isfinite(cohort))[0]
    T = len(YEARS)
    # direct effect per unit-period (level), growing with event time
    direct = np.zeros((N, T))
    for z in zones:
        e = YEARS - cohort[z]
        direct[z] = np.where(e >= 0, 3.0 + 0.4 * e, 0.0)
    # each zone draws share s of its gain from non-zone cities within 60 km, 2:1 by ring
    loss1 = np.zeros((N, T))  # loss for s=1 (negative)
    nbr_info = {}
    for z in zones:
        d = D[z, nonzone]
        m = d < RINGS[-1][1]
        js = nonzone[m]
        if len(js) == 0:
            continue
        w = np.where(D[z, js] < RINGS[0][1], RING_W[0], RING_W[1])
        w = w / w.sum()
        loss1[js] -= w[:, None] * direct[z][None, :]
        nbr_info[z] = js
    # my own exposure map (for truths)
    onset = np.full(N, np.inf)
    ring = np.array([""] * N, dtype=object)
    for i in range(N):
        others = zones[zones != i]
        d = D[i, others]
        m = d < RINGS[-1][1]
        if m.any():
            onset[i] = cohort[others[m]].min()
            dmin = d[m].min()
            ring[i] = "0-25km" if dmin < RINGS[0][1] else "25-60km"
    return dict(
        geo=geo,
        N=N,
        T=T,
        reg_idx=reg_idx,
        x=x,
        cohort=cohort,
        direct=direct,
        loss1=loss1,
        onset=onset,
        ring=ring,
        zones=zones,
        nonzone=nonzone,
        D=D,
    )


def truths(d, s):
    """Truths as the docstrings define them (drop_rows; all targets assumed estimated)."""
    Tm = YEARS[None, :]
    coh = d["cohort"][:, None]
    ons = d["onset"][:, None]
    iszone = np.isfinite(d["cohort"])
    eff_dir = d["direct"]
    eff_sp = s * d["loss1"]
    dmask = iszone[:, None] & (Tm >= coh)
    smask = (~iszone)[:, None] & (Tm >= ons)
    zmask = iszone[:, None] & (Tm >= ons) & (Tm < coh)
    out = {}
    out["direct"] = eff_dir[dmask].mean()
    out["direct_total"] = eff_dir[dmask].sum()
    out["spillover"] = eff_sp[smask].mean()
    out["spillover_total"] = eff_sp[smask].sum()
    for lab in ["0-25km", "25-60km"]:
        m = smask & (d["ring"] == lab)[:, None]
        out[f"spillover:{lab}"] = eff_sp[m].mean()
        out[f"n:{lab}"] = int(m.sum())
    # zone units are never drawn upon in this world
    out["spillover_on_zones"] = 0.0 if zmask.any() else np.nan
    out["spillover_on_zones_total"] = 0.0
    out["net"] = out["direct_total"] + out["spillover_total"] + out["spillover_on_zones_total"]
    out["displacement_share"] = (
        1 - out["net"] / out["direct_total"] if out["direct_total"] != 0 else np.nan
    )
    out["n_direct"] = int(dmask.sum())
    out["n_spill"] = int(smask.sum())
    out["n_soz"] = int(zmask.sum())
    # check total conservation: loss of all s*gain realised?
    out["check_all_loss_counted"] = eff_sp.sum() - eff_sp[smask].sum()
    return out


def draw(d, s, rep, noise=True, null=False):
    rng = np.random.default_rng(1_000_000 + rep)
    N, T = d["N"], d["T"]
    reg = d["reg_idx"]
    x = d["x"]
    dseed = np.random.default_rng(7)  # fixed FE part
    alpha_i = 50 + 10 * dseed.standard_normal(N) + 5 * x
    gamma_t = np.cumsum(dseed.normal(0.3, 0.5, T))
    g_t = 0.15 * (YEARS - 2000) + 0.5 * np.sin((YEARS - 2000) / 3.0)  # x-specific trend
    Y = alpha_i[:, None] + gamma_t[None, :] + x[:, None] * g_t[None, :]
    if noise:
        # region-year AR(1) shocks with t(4) innovations
        rho = 0.6
        innov = rng.standard_t(4, size=(8, T)) * 1.0
        sh = np.zeros((8, T))
        sh[:, 0] = innov[:, 0] / np.sqrt(1 - rho**2)
        for t in range(1, T):
            sh[:, t] = rho * sh[:, t - 1] + innov[:, t]
        Y = Y + sh[reg] + rng.normal(0, 1.0, (N, T))
    if not null:
        Y = Y + d["direct"] + s * d["loss1"]
    geo = d["geo"]
    frame = pd.DataFrame(
        {
            "unit": np.repeat(geo.unit.values, T),
            "year": np.tile(YEARS, N),
            "y": Y.ravel(),
            "x": np.repeat(x, T),
            "cohort": np.repeat(np.where(np.isfinite(d["cohort"]), d["cohort"], 0), T),
        }
    )
    return frame


def fit_one(d, frame, seed):
    from zoneimpact.estimators import spillover
    from zoneimpact.panel import Panel

    geo = d["geo"][["unit", "lat", "lon", "region"]]
    panel = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x"],
        geography=geo,
    )
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = spillover.fit(
            panel, outcome="y", exposure="rings", rings_km=RINGS, covariates=["x"], rng=seed
        )
    return res, [str(x.message)[:200] for x in w]
