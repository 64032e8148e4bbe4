"""Referee Monte Carlo of the spillover estimator with k-nearest or adjacency exposure.

Written by a referee independently of ``zoneimpact.simulate``: the world below was built
from the issue's words, without reading simulate.py or the other MC scripts, and its
truths come from its own effect arrays and its own exposure links (k nearest by
haversine distance, or Delaunay neighbours), not from the package.

World: 25 regions on a 5x5 lattice of centres (~1 degree apart), 10 units per region
scattered around the centre (fixed geography, drawn once with seed 12345), years
2001-2020. x_i ~ N(0, 1) plus a region mean N(0, 0.5), redrawn each replication.
Zones: P(zone) = logistic(a + 1.2 x) (a = -2.2 knn, -2.6 adjacency; ~10% zones), four
waves (2005, 2009, 2012, 2016), earlier waves for higher x. Trend x_i * 0.5 * (t - 2001)
(parallel trends only given x). Extra zones: 3 panel units with cohort 1998 (before the
first year; dropped by ``outside_window="adjust"`` and kept as exposure sources) and 4
source zones outside the panel given with ``sources=`` (lat/lon; cohorts 1999, 2007, 2011,
2014). Y = a_i + l_t + x_i*0.5*(t-2001) + r_{region,t} (AR(1), rho .5, sd 2) + e_it (sd 3)
+ effects. Direct effect 10 on every zone unit-period t >= g. Spillover (equal-split
displacement): each open zone removes share*10 per period, split equally among its linked
panel units that are not zones at t (links: the zone's k=3 nearest panel units for the
knn map; its Delaunay neighbours, edges over 90 km pruned, for the adjacency map).
Optionally a share of unit-years is missing at random (``--missing``). Worlds: null (no
effect), share 1, 0.5, 0 and -0.5. Truths: the effect arrays' means/totals over the target
unit-periods that are estimable (the unit has an observed clean row before).

It reports, per world and quantity (direct, spillover, spillover_on_zones, their totals,
net, displacement_share): truth, mean estimate, bias, bias %, its Monte Carlo SE, SD of the
error, mean SE, SE/SD, coverage of the 95% interval and rejection of H0: 0 at 5% (size in
the null world and, for the spillover quantities, in share 0; power elsewhere); checks of
the package's exposure map and target counts against the referee's own; and for
spillover_on_zones the same by the number of regions (clusters) holding its targets.
Replication r of world w (0 null, ..., 4 share-0.5) has seed ``--seed`` (1_000_000) +
1_000_000 * w + 10_000 * [adjacency] + r + 500_000 * [missing > 0], the referee's own
scheme, so the same seed gives the same world and estimates.

The referee links a zone to its k nearest *panel units* (zones outside the panel take no
slot); the package's default k-nearest map counts the k nearest *places*, source zones
included (``exposure_from_knn(..., among="places")``), so the map checks disagree where a
source zone is among a zone's k nearest. ``--among panel`` fits the package with
``exposure_from_knn(panel, k, among="panel")``, the referee's convention.

Run:  python benchmarks/mc_referee_knn.py [--reps 200] [--map knn|adjacency]
      [--among places|panel] [--missing 0.03] [--worlds null share1 ...]
      [--seed 1000000] [--out DIR]
CSV files (per-replication estimates ``<map>_<full|miss>_est.csv`` and diagnostics
``..._meta.csv``) go to --out (default: a new temporary directory).
"""

from __future__ import annotations

import os

# one BLAS thread per process, like the other Monte Carlo scripts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from scipy.spatial import Delaunay

from zoneimpact.estimators import spillover
from zoneimpact.exposure import exposure_from_knn
from zoneimpact.panel import Panel

YEARS = np.arange(2001, 2021)
T = len(YEARS)
NREG, PER = 25, 10
N = NREG * PER
WAVES = np.array([2005, 2009, 2012, 2016])
TAU = 10.0
K = 3
N_PRE = 3  # panel units zoned before 2001
SRC_COH = [1999, 2007, 2011, 2014]


def haversine(lat1, lon1, lat2, lon2):
    r = 6371.0
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


def geography(seed=12345):
    g = np.random.default_rng(seed)
    cy, cx = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    clat = 30 + 1.0 * cy.ravel()
    clon = 110 + 1.0 * cx.ravel()
    region = np.repeat(np.arange(NREG), PER)
    lat = clat[region] + g.normal(0, 0.25, N)
    lon = clon[region] + g.normal(0, 0.25, N)
    # 4 source zones (outside the panel) at random spots inside the lattice
    slat = 30 + g.uniform(0.3, 3.7, 4)
    slon = 110 + g.uniform(0.3, 3.7, 4)
    sreg = (np.round(slat - 30).astype(int)) * 5 + np.round(slon - 110).astype(int)
    return dict(lat=lat, lon=lon, region=region, slat=slat, slon=slon, sreg=sreg)


GEO = geography()
UNITS = np.array([f"u{i:03d}" for i in range(N)])
SRC_IDS = np.array([f"s{j}" for j in range(4)])


def delaunay_edges():
    pts = np.column_stack([np.r_[GEO["lon"], GEO["slon"]], np.r_[GEO["lat"], GEO["slat"]]])
    tri = Delaunay(pts)
    ids = np.r_[UNITS, SRC_IDS]
    e = set()
    for s in tri.simplices:
        for a in range(3):
            for b in range(a + 1, 3):
                i, j = sorted((s[a], s[b]))
                e.add((i, j))
    e = np.array(sorted(e))
    # prune long edges on the hull (> 90 km)
    allat, allon = pts[:, 1], pts[:, 0]
    d = haversine(allat[e[:, 0]], allon[e[:, 0]], allat[e[:, 1]], allon[e[:, 1]])
    e = e[d < 90]
    return ids, e


ALL_IDS, DEL_EDGES = delaunay_edges()


def links_for(mapkind, zone_idx_all, in_panel):
    """Links zone -> panel-unit indices (0..N-1). ``zone_idx_all`` indexes ALL_IDS (0..N-1
    panel or dropped units, N.. sources); ``in_panel`` is False for dropped pre-2001 units."""
    out = {}
    lat_all = np.r_[GEO["lat"], GEO["slat"]]
    lon_all = np.r_[GEO["lon"], GEO["slon"]]
    cand = np.flatnonzero(in_panel)
    if mapkind == "knn":
        for z in zone_idx_all:
            d = haversine(lat_all[z], lon_all[z], GEO["lat"][cand], GEO["lon"][cand])
            d[cand == z] = np.inf
            out[z] = cand[np.argsort(d, kind="stable")[:K]]
    else:
        nb = {}
        for i, j in DEL_EDGES:
            nb.setdefault(i, []).append(j)
            nb.setdefault(j, []).append(i)
        for z in zone_idx_all:
            out[z] = np.array([j for j in nb.get(z, []) if j < N and in_panel[j]], dtype=int)
    return out


def draw_world(rng, share, mapkind, miss=0.0, tau=TAU):
    reg = GEO["region"]
    regmean = rng.normal(0, 0.5, NREG)
    x = rng.normal(0, 1, N) + regmean[reg]
    # zones (calibrated so ~10% of units are zones)
    a0 = -2.2 if mapkind == "knn" else -2.6
    p = 1 / (1 + np.exp(-(a0 + 1.2 * x)))
    zone = rng.uniform(size=N) < p
    # wave: higher x -> earlier
    score = -x + rng.normal(0, 1, N)
    q = np.quantile(score[zone], [0.25, 0.5, 0.75]) if zone.sum() >= 4 else [0, 0, 0]
    wave = np.searchsorted(q, score)
    cohort = np.where(zone, WAVES[np.clip(wave, 0, 3)], np.inf).astype(float)
    # pre-window zones: 3 random non-zone units get cohort 1998
    pre = rng.choice(np.flatnonzero(~zone), N_PRE, replace=False)
    cohort[pre] = 1998.0
    in_panel = np.ones(N, bool)
    in_panel[pre] = False

    # zones that act: panel zones, pre-window zones, sources
    zidx = np.r_[np.flatnonzero(np.isfinite(cohort)), N + np.arange(4)]
    zcoh = np.r_[cohort[np.isfinite(cohort)], SRC_COH].astype(float)
    lk = links_for(mapkind, zidx, in_panel)

    # spillover effect array (N x T): equal split among linked units not zones at t
    t = YEARS[None, :].astype(float)
    notzone = cohort[:, None] > t  # N x T (pre-window units are zones throughout)
    spill = np.zeros((N, T))
    for z, c in zip(zidx, zcoh, strict=True):
        L = lk[z]
        if len(L) == 0:
            continue
        for j, yr in enumerate(YEARS):
            if yr < c:
                continue
            rec = L[notzone[L, j]]
            if len(rec):
                spill[rec, j] -= share * tau / len(rec)
    direct = np.where(cohort[:, None] <= t, tau, 0.0)
    direct[~in_panel] = 0.0

    # outcome
    alpha = rng.normal(0, 5, N) + rng.normal(0, 3, NREG)[reg]
    lam = np.cumsum(rng.normal(0.5, 1, T))
    r = np.zeros((NREG, T))
    r[:, 0] = rng.normal(0, 2 / np.sqrt(1 - 0.25), NREG)
    for j in range(1, T):
        r[:, j] = 0.5 * r[:, j - 1] + rng.normal(0, 2, NREG)
    y0 = (
        alpha[:, None]
        + lam[None, :]
        + x[:, None] * 0.5 * (t - 2001)
        + r[reg]
        + rng.normal(0, 3, (N, T))
    )
    y = y0 + direct + spill
    obs = np.ones((N, T), bool)
    if miss > 0:
        obs = rng.uniform(size=(N, T)) >= miss

    # exposure onset per unit by the referee's links (first opening of a linked zone)
    onset = np.full(N, np.inf)
    # the same counting only the estimation sample's zones (panel units kept in the
    # panel): before it, a unit is exposed only by sources, whose gain no total counts
    onset_est = np.full(N, np.inf)
    for z, c in zip(zidx, zcoh, strict=True):
        sample_zone = z < N and in_panel[z]
        for u in lk[z]:
            if u != z:
                onset[u] = min(onset[u], c)
                if sample_zone:
                    onset_est[u] = min(onset_est[u], c)

    return dict(
        x=x,
        cohort=cohort,
        in_panel=in_panel,
        y=y,
        obs=obs,
        spill=spill,
        direct=direct,
        onset=onset,
        onset_est=onset_est,
        links=lk,
        zidx=zidx,
        zcoh=zcoh,
    )


def build_panel(w, mapkind):
    uu = np.repeat(UNITS, T)
    tt = np.tile(YEARS, N)
    coh = np.repeat(np.where(np.isfinite(w["cohort"]), w["cohort"], 0), T)
    df = pd.DataFrame(
        {"unit": uu, "year": tt, "first_zone": coh, "y": w["y"].ravel(), "x": np.repeat(w["x"], T)}
    )
    keep = w["obs"].ravel()
    # keep pre-window units fully (they are dropped by "adjust")
    keep = keep | np.repeat(~w["in_panel"], T)
    df = df[keep]
    geo = pd.DataFrame(
        {
            "unit": UNITS,
            "region": [f"r{k:02d}" for k in GEO["region"]],
            "lat": GEO["lat"],
            "lon": GEO["lon"],
        }
    )
    src = pd.DataFrame(
        {
            "unit": SRC_IDS,
            "cohort": SRC_COH,
            "region": [f"r{k:02d}" for k in GEO["sreg"]],
            "lat": GEO["slat"],
            "lon": GEO["slon"],
        }
    )
    kw = {}
    if mapkind == "adjacency":
        a = pd.DataFrame({"unit": ALL_IDS[DEL_EDGES[:, 0]], "neighbour": ALL_IDS[DEL_EDGES[:, 1]]})
        kw["adjacency"] = a
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        cohort="first_zone",
        outcomes=["y"],
        covariates=["x"],
        geography=geo,
        sources=src,
        outside_window="adjust",
        **kw,
    )


def by_sample(w):
    """Unit-periods (N x T) exposed then by a zone of the sample whose gain is counted then:
    observed at ``t >= cohort`` with an observed clean row before (its direct target is
    estimable). ``spillover.fit``'s rule since session 26: a unit-period exposed only by
    zones outside the sample, or by zone units without an estimated gain then, is
    ``spillover_from_sources``'s (before, any open zone of the sample counted:
    ``t >= onset_est``)."""
    coh, on, obs, inp = w["cohort"], w["onset"], w["obs"], w["in_panel"]
    t = YEARS[None, :].astype(float)
    has_pre = (obs & (t < np.minimum(coh, on)[:, None])).any(axis=1)[:, None]
    gain = obs & (np.isfinite(coh) & inp)[:, None] & (t >= coh[:, None]) & has_pre
    out = np.zeros(gain.shape, bool)
    for z in w["zidx"]:
        if z < N and inp[z]:
            for u in w["links"][z]:
                if u != z:
                    out[u] |= gain[z]
    return out


def soz_targets(w):
    """Spillover-on-zones target unit-periods (estimable ones) as an N x T mask."""
    coh, on, obs, inp = w["cohort"], w["onset"], w["obs"], w["in_panel"]
    t = YEARS[None, :].astype(float)
    zone = (np.isfinite(coh) & inp)[:, None]
    has_pre = (obs & (t < np.minimum(coh, on)[:, None])).any(axis=1)[:, None]
    # not exposed only by sources or zones without an estimated gain (truths)
    return obs & zone & (t >= on[:, None]) & (t < coh[:, None]) & has_pre & by_sample(w)


def truths(w):
    """Truth over estimable targets (imputation: unit needs an observed clean row before)."""
    coh, on, obs, inp = w["cohort"], w["onset"], w["obs"], w["in_panel"]
    t = YEARS[None, :].astype(float)
    zone = (np.isfinite(coh) & inp)[:, None]
    nonzone = (~np.isfinite(coh))[:, None] & inp[:, None]
    exposed = nonzone & np.isfinite(on)[:, None]
    first_clean = np.minimum(coh, on)[:, None]
    has_pre = (obs & (t < first_clean)).any(axis=1)[:, None]
    d_t = obs & zone & (t >= coh[:, None]) & has_pre
    # rows exposed only by zones outside the sample, or by zone units without an estimated
    # gain then (by_sample), are a term of their own, spillover_from_sources, and enter neither spillover nor net (spillover.fit's
    # module notes: the share's numerator and denominator cover the same zones)
    sample = by_sample(w)
    s_all = obs & exposed & (t >= on[:, None]) & has_pre
    z_all = obs & zone & (t >= on[:, None]) & (t < coh[:, None]) & has_pre
    s_t, z_t = s_all & sample, z_all & sample
    f_t = (s_all | z_all) & ~sample
    dt, st, zt = w["direct"][d_t].sum(), w["spill"][s_t].sum(), w["spill"][z_t].sum()
    net = dt + st + zt
    return dict(
        direct=w["direct"][d_t].mean(),
        spillover=w["spill"][s_t].mean(),
        spillover_on_zones=w["spill"][z_t].mean() if z_t.any() else np.nan,
        direct_total=dt,
        spillover_total=st,
        spillover_on_zones_total=zt,
        spillover_from_sources=w["spill"][f_t].mean() if f_t.any() else np.nan,
        spillover_from_sources_total=w["spill"][f_t].sum(),
        net=net,
        displacement_share=(1 - net / dt) if dt != 0 else np.nan,
        n_direct=int(d_t.sum()),
        n_spill=int(s_t.sum()),
        n_soz=int(z_t.sum()),
        # targets without the has_pre restriction (to see what the package leaves out)
        n_direct_all=int((obs & zone & (t >= coh[:, None])).sum()),
        n_spill_all=int((obs & exposed & (t >= on[:, None])).sum()),
        # rows with nonzero spillover not counted anywhere (leak outside the map's targets)
        spill_outside=float(w["spill"][inp][~(s_t | z_t | f_t)[inp]].sum()),
    )


TERMS = [
    "direct",
    "spillover",
    "spillover_on_zones",
    "direct_total",
    "spillover_total",
    "spillover_on_zones_total",
    "spillover_from_sources",
    "spillover_from_sources_total",
    "net",
    "displacement_share",
]


def one(seed, share, mapkind, miss, n_boot, tau=TAU, among="places"):
    rng = np.random.default_rng(seed)
    w = draw_world(rng, share, mapkind, miss, tau)
    panel = build_panel(w, mapkind)
    tr = truths(w)
    with warnings.catch_warnings(record=True) as wl:
        warnings.simplefilter("always")
        # the package's default k-nearest map (among places) by name, as before; the
        # referee's convention (among panel units) as a map built beforehand
        exposure = mapkind
        if mapkind == "knn" and among != "places":
            exposure = exposure_from_knn(panel, K, among=among)
        res = spillover.fit(
            panel,
            outcome="y",
            exposure=exposure,
            k_nearest=K if mapkind == "knn" and isinstance(exposure, str) else None,
            covariates=["x"],
            n_boot=n_boot,
            rng=seed,
        )
    tid = res.tidy().set_index("term")
    rows = []
    for term in TERMS:
        if term in tid.index:
            r = tid.loc[term]
            rows.append(
                dict(
                    term=term,
                    est=r["estimate"],
                    se=r["std_error"] if "std_error" in r else r.get("se"),
                    lo=r.get("conf_low", np.nan),
                    hi=r.get("conf_high", np.nan),
                    p=r.get("p_value", np.nan),
                    truth=tr.get(term, np.nan),
                )
            )
    extra = dict(tr)
    extra["pieces"] = res.pieces
    extra["warnings"] = sorted({str(m.message)[:160] for m in wl})
    extra["res"] = res
    extra["w"] = w
    return pd.DataFrame(rows), extra


def map_check(w, res):
    """The package's exposure map (roles, onsets) against the referee's: disagreements."""
    tab = res.exposure.table
    idx = np.flatnonzero(w["in_panel"])
    mine_on = pd.Series(w["onset"][idx], index=UNITS[idx])
    mine_coh = pd.Series(w["cohort"][idx], index=UNITS[idx])
    role = np.where(
        np.isfinite(mine_coh), "direct", np.where(np.isfinite(mine_on), "exposed", "clean")
    )
    t2 = tab.reindex(UNITS[idx])
    bad_role = t2["role"].to_numpy() != role
    pkg_on = t2["exposure_onset"].to_numpy(float)
    bad_on = ~np.isclose(pkg_on, mine_on.to_numpy(), equal_nan=True) & ~(
        np.isinf(pkg_on) & np.isinf(mine_on.to_numpy())
    )
    return int(bad_role.sum()), int(bad_on.sum())


WORLDS = {
    "null": (0.0, 0.0),
    "share1": (1.0, TAU),
    "share0.5": (0.5, TAU),
    "share0": (0.0, TAU),
    "share-0.5": (-0.5, TAU),
}


def seed_of(seed, wi, mapkind, miss, r):
    """The helper's seed scheme (seed 1_000_000 by default)."""
    return seed + 1_000_000 * wi + 10_000 * (mapkind == "adjacency") + r + (500_000 if miss else 0)


def run(nrep, mapkind, miss, out, n_boot=999, worlds=None, seed=1_000_000, among="places"):
    rows, meta = [], []
    for wi, (wname, (share, tau)) in enumerate(WORLDS.items()):
        if worlds and wname not in worlds:
            continue
        t0 = time.time()
        for r in range(nrep):
            s = seed_of(seed, wi, mapkind, miss, r)
            try:
                df, ex = one(s, share, mapkind, miss, n_boot, tau=tau, among=among)
            except Exception as e:  # record crashes
                meta.append(dict(world=wname, rep=r, seed=s, error=repr(e)[:300]))
                continue
            nb = map_check(ex["w"], ex["res"])
            pc = ex["pieces"].set_index("piece")["n_target_unit_periods"]
            spill_key = [k for k in pc.index if k.startswith("spillover:")]
            z_t = soz_targets(ex["w"])
            n_regions = len(np.unique(GEO["region"][np.flatnonzero(z_t.any(axis=1))]))
            meta.append(
                dict(
                    world=wname,
                    rep=r,
                    seed=s,
                    error="",
                    map_role_diff=nb[0],
                    map_onset_diff=nb[1],
                    n_direct=ex["n_direct"],
                    n_spill=ex["n_spill"],
                    n_soz=ex["n_soz"],
                    pk_direct=pc.get("direct", np.nan),
                    pk_spill=pc[spill_key[0]] if spill_key else np.nan,
                    pk_soz=pc.get("spillover_on_zones", 0),
                    soz_regions=n_regions,
                    warnings=" || ".join(ex["warnings"]),
                    ratio_bias=ex["res"].info.get("displacement_share_ratio_bias", np.nan),
                    direct_total_cv=ex["res"].info.get("direct_total_cv", np.nan),
                )
            )
            df["world"], df["rep"], df["seed"] = wname, r, s
            rows.append(df)
        print(f"{wname} {mapkind} missing {miss}: {time.time() - t0:.1f}s", flush=True)
    est = pd.concat(rows, ignore_index=True)
    met = pd.DataFrame(meta)
    est.to_csv(out + "_est.csv", index=False)
    met.to_csv(out + "_meta.csv", index=False)
    return est, met


def summarize(e):
    out = []
    for (wname, term), g in e.groupby(["world", "term"], sort=False):
        n_nan = int(g["est"].isna().sum())
        g = g.dropna(subset=["est"])
        tr = g["truth"]
        err = g["est"] - tr
        cover = ((g["lo"] <= tr) & (tr <= g["hi"])).mean() if tr.notna().all() else np.nan
        mt = tr.mean()
        size_world = wname == "null" or (
            wname == "share0" and (term.startswith("spillover") or term == "displacement_share")
        )
        out.append(
            dict(
                world=wname,
                term=term,
                n=len(g),
                truth=mt,
                mean_est=g["est"].mean(),
                bias=err.mean(),
                bias_pct=100 * err.mean() / mt
                if mt and np.isfinite(mt) and abs(mt) > 1e-9
                else np.nan,
                mcse_bias=err.std() / np.sqrt(len(g)),
                sd=err.std(),
                mean_se=g["se"].mean(),
                se_sd=g["se"].mean() / err.std(),
                coverage=cover,
                rej5=(g["p"] < 0.05).mean(),
                rej5_is=("size" if size_world else "power"),
                n_nan=n_nan,
            )
        )
    s = pd.DataFrame(out)
    s["world"] = pd.Categorical(s["world"], list(WORLDS))
    s["term"] = pd.Categorical(s["term"], TERMS)
    return s.sort_values(["world", "term"])


def soz_by_regions(e, m):
    """spillover_on_zones inference by the number of regions (clusters) holding its targets."""
    s = e[e.term == "spillover_on_zones"].merge(m[["world", "rep", "soz_regions"]])
    s = s.dropna(subset=["est"])
    if s.empty:
        return s
    s["cover"] = (s.lo <= s.truth) & (s.truth <= s.hi)
    s["err"] = s.est - s.truth
    s["zero"] = s.world.isin(["null", "share0"])
    s["nr"] = pd.cut(
        s.soz_regions, [0, 1, 2, 3, 5, 8, 30], labels=["1", "2", "3", "4-5", "6-8", "9+"]
    )
    g = s.groupby("nr", observed=True)
    out = pd.DataFrame(
        {"n": g.size(), "coverage": g.cover.mean(), "SD": g.err.std(), "mean SE": g.se.mean()}
    )
    out["SE/SD"] = out["mean SE"] / out["SD"]
    z = s[s.zero].groupby("nr", observed=True)
    out["rej5 (null, share0)"] = z.p.apply(lambda p: (p < 0.05).mean())
    out["n (null, share0)"] = z.size()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument(
        "--seed", type=int, default=1_000_000, help="base of the seed scheme (docstring)"
    )
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    ap.add_argument("--map", default="knn", choices=["knn", "adjacency"])
    ap.add_argument(
        "--among",
        default="places",
        choices=["places", "panel"],
        help="the package's k-nearest convention (knn map only; the referee's is 'panel')",
    )
    ap.add_argument(
        "--missing", type=float, default=0.0, help="share of unit-years missing (e.g. 0.03)"
    )
    ap.add_argument("--n-boot", type=int, default=999)
    ap.add_argument("--out", default=None, help="directory for the CSVs (default: a temp dir)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mc_referee_knn_")
    os.makedirs(out, exist_ok=True)
    among = f"_{args.among}" if args.map == "knn" and args.among != "places" else ""
    prefix = os.path.join(out, f"{args.map}{among}_{'miss' if args.missing else 'full'}")
    t0 = time.perf_counter()
    e, m = run(
        args.reps,
        args.map,
        args.missing,
        prefix,
        args.n_boot,
        args.worlds,
        seed=args.seed,
        among=args.among,
    )
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 300)
    print(summarize(e).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    ok = m[m["error"].fillna("") == ""]
    print(
        f"crashes: {len(m) - len(ok)}; exposure-map disagreements (roles/onsets): "
        f"{int(ok.map_role_diff.sum())}/{int(ok.map_onset_diff.sum())}; target-count "
        f"mismatches vs pieces (direct/spillover/spillover_on_zones): "
        f"{int((ok.n_direct != ok.pk_direct).sum())}/{int((ok.n_spill != ok.pk_spill).sum())}"
        f"/{int((ok.n_soz != ok.pk_soz).sum())}"
    )
    print("spillover_on_zones by the number of regions holding its targets:")
    print(soz_by_regions(e, ok).to_string(float_format=lambda v: f"{v:.3g}"))
    print(
        f"{args.reps} replications per world, map {args.map}"
        f"{f' (among {args.among})' if args.map == 'knn' else ''}, missing {args.missing}, "
        f"seed {args.seed}: {time.perf_counter() - t0:.0f} s; CSVs in {out}"
    )


if __name__ == "__main__":
    main()
