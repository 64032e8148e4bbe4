"""Referee Monte Carlo "design C" for the spillover decomposition (issue 14, item 4).

An independently written world (no code shared with ``zoneimpact.simulate``) to check
``zoneimpact.estimators.spillover.fit`` (imputation base, rings exposure, region clusters)
for bias and coverage of ``direct``, ``spillover``, ``spillover_on_zones``, ``net`` and
``displacement_share``, and null rejection.

World (redrawn every replication; the same seeds across worlds, so worlds differ only by
the effects):

* 300 units in 20 regions. Region centres on a 5 x 4 grid 300 km apart (around
  30N, 110E); units scattered N(0, 60 km) around their centre (lat/lon from km).
* Years 1995-2019 (25).
* x_i ~ N(0, 1). Ever-zone probability logistic(a + 0.9 x_i) with ``a`` set so ~25% of
  units become zones; zones open in 4 waves (2001, 2005, 2009, 2013), earlier waves more
  likely for high x (wave probabilities ~ softmax(-0.5 x * (0, 1, 2, 3))).
* Y_it = alpha_i + lambda_t + x_i * 0.15 (t - 1995) + u_rt + e_it + tau_it D_it + s_it,
  alpha_i = 5 + x_i + N(0, 1); lambda_t a random walk; u_rt a region-year AR(1) with
  rho = 0.6 (innovation SD 0.5, stationary start); e_it ~ N(0, 1). Parallel trends hold
  only conditional on x (x shifts trends and adoption).
* Direct effect (heterogeneous, dynamic): tau_it = tau0 (1 + 0.1 min(t - g_i, 8))
  (1 + 0.3 z_i), z_i ~ N(0, 1) independent of x, tau0 = 1, for t >= g_i.
* Spillover: every unit that is not (yet) a zone at t and lies within R = 50 km of a zone
  open at t (another unit's) gets s_it = c (1 + 0.1 min(t - o_i, 8)) m_it, with o_i its
  exposure onset (first opening of a zone within R) and m_it the number of open zones
  within R. Zone units before their own zone get it too (the estimator's
  ``spillover_on_zones``); zone units after their zone get none. ``c`` is set per world
  so that sum of s over all exposed not-yet-zone unit-periods = -share * sum of tau over
  zone unit-periods; share in {1, 0.5, 0, -0.5}; "null": tau = s = 0.

Truths follow the estimator's estimands (module docstring of
``zoneimpact/estimators/spillover.py``): ``direct`` = mean of tau_it over zone units at
t >= g_i; ``spillover`` = mean of s_it over never-zone units at t >= o_i;
``spillover_on_zones`` = mean of s_it over zone units at o_i <= t < g_i; totals are sums;
``net`` = direct_total + spillover_total + spillover_on_zones_total;
``displacement_share`` = 1 - net / direct_total (= share by construction). The script
checks its target counts against ``result.pieces``.

Diagnostics (not the design): --zsd 0 (homogeneous direct effect across units),
--spill-model intensity|flat, --aux AUX_PARTITION, --small-sample none; --tag names the
output files.

CLI: python benchmarks/mc_referee_dynamic.py --reps 200 --seed 20261203 --worlds d1,d05,d0,dm05,null --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

WORLDS = {"d1": 1.0, "d05": 0.5, "d0": 0.0, "dm05": -0.5, "null": None}
YEARS = np.arange(1995, 2020)
WAVES = np.array([2001, 2005, 2009, 2013])
N_UNITS, N_REG, R_KM = 300, 20, 50.0
TERMS = [
    "direct",
    "spillover",
    "spillover_on_zones",
    "net",
    "displacement_share",
    "direct_total",
    "spillover_total",
    "net_region_did",
]


def haversine(lat1, lon1, lat2, lon2):
    """Great-circle km, Earth radius 6371.0 as zoneimpact.geo (a 6371.0088 radius put one
    unit 3e-5 km across the 50 km ring edge in one world)."""
    p = np.pi / 180
    a = (
        np.sin((lat2 - lat1) * p / 2) ** 2
        + np.cos(lat1 * p) * np.cos(lat2 * p) * np.sin((lon2 - lon1) * p / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def draw_design(rng):
    """Geography, covariate, cohorts, unit heterogeneity (no effect sizes, no noise)."""
    reg = np.repeat(np.arange(N_REG), N_UNITS // N_REG)
    cx = (np.arange(N_REG) % 5) * 300.0
    cy = (np.arange(N_REG) // 5) * 300.0
    xkm = cx[reg] + rng.normal(0, 60, N_UNITS)
    ykm = cy[reg] + rng.normal(0, 60, N_UNITS)
    lat = 30.0 + ykm / 111.195
    lon = 110.0 + xkm / (111.195 * np.cos(np.deg2rad(lat)))
    x = rng.normal(size=N_UNITS)
    p = 1 / (1 + np.exp(-(-1.25 + 0.9 * x)))
    zone = rng.random(N_UNITS) < p
    logits = -0.5 * x[:, None] * np.arange(4)[None, :]
    pw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    wave = (rng.random(N_UNITS)[:, None] > np.cumsum(pw, 1)).sum(1)
    g = np.where(zone, WAVES[np.minimum(wave, 3)], np.inf)
    z = rng.normal(size=N_UNITS)
    return {"reg": reg, "lat": lat, "lon": lon, "x": x, "g": g, "z": z}


def effects(des, share, zsd=0.3, spill_model="count"):
    """tau (units x years), s (units x years), masks and exposure onset.

    spill_model: "count" (s grows with the number of open zones within R, the design),
    "intensity" (the estimator's equal-split intensity, sum over open zones of 1 / number
    of their not-yet-zone neighbours), "flat" (no cross-unit variation beyond time since
    onset). zsd: SD of the unit heterogeneity of the direct effect (design: 0.3)."""
    g, z = des["g"], des["z"]
    t = YEARS[None, :].astype(float)
    G = g[:, None]
    treated = t >= G
    e = np.where(treated, t - G, 0)
    tau = np.where(treated, (1 + 0.1 * np.minimum(e, 8)) * (1 + zsd * z[:, None]), 0.0)
    d = haversine(
        des["lat"][:, None],
        des["lon"][:, None],
        des["lat"][None, :],
        des["lon"][None, :],
    )
    near = (d < R_KM) & np.isfinite(g)[None, :]
    np.fill_diagonal(near, False)
    # m_it: zones within R (other than own) open at t
    open_ = YEARS[None, :] >= g[:, None]  # zones x years
    m = near.astype(float) @ open_.astype(float)
    onset = np.array([g[near[i]].min() if near[i].any() else np.inf for i in range(N_UNITS)])
    notyet = t < G
    exposed = notyet & (m > 0)
    since = np.where(exposed, t - np.where(np.isfinite(onset), onset, 0)[:, None], 0)
    if spill_model == "count":
        k = m
    elif spill_model == "intensity":
        nz = near.T.astype(float) @ notyet.astype(float)  # zones x years: not-yet-zone links
        w = np.where(open_ & (nz > 0), 1 / np.where(nz > 0, nz, 1), 0.0)
        k = (near.astype(float) @ w) * notyet
    else:
        k = (m > 0).astype(float)
    raw = np.where(exposed, (1 + 0.1 * np.minimum(since, 8)) * k, 0.0)
    zone_u = np.isfinite(g)[:, None]
    masks = {
        "direct": treated,
        "spillover": exposed & ~zone_u,
        "spillover_on_zones": exposed & zone_u,
    }
    if share is None:
        return np.zeros_like(tau), np.zeros_like(raw), masks, onset
    c = -share * tau[treated].sum() / raw.sum() if raw.sum() > 0 else 0.0
    return tau, c * raw, masks, onset


def truths(tau, s, masks):
    out = {}
    DT = tau[masks["direct"]].sum()
    ST = s[masks["spillover"]].sum()
    SZ = s[masks["spillover_on_zones"]].sum()
    out["direct"] = tau[masks["direct"]].mean()
    out["spillover"] = s[masks["spillover"]].mean()
    out["spillover_on_zones"] = (
        s[masks["spillover_on_zones"]].mean() if masks["spillover_on_zones"].any() else np.nan
    )
    out["direct_total"], out["spillover_total"] = DT, ST
    out["net"] = DT + ST + SZ
    out["net_region_did"] = out["net"]
    out["displacement_share"] = 1 - out["net"] / DT if DT != 0 else np.nan
    return out


def outcome(des, tau, s, rng):
    n, T = N_UNITS, YEARS.size
    alpha = 5 + des["x"] + rng.normal(size=n)
    lam = np.cumsum(rng.normal(0, 0.3, T))
    u = np.empty((N_REG, T))
    u[:, 0] = rng.normal(0, 0.5 / np.sqrt(1 - 0.36), N_REG)
    for k in range(1, T):
        u[:, k] = 0.6 * u[:, k - 1] + rng.normal(0, 0.5, N_REG)
    trend = des["x"][:, None] * 0.15 * (YEARS - 1995)[None, :]
    return alpha[:, None] + lam[None, :] + trend + u[des["reg"]] + rng.normal(size=(n, T)) + tau + s


def make_panel(des, Y):
    n, T = Y.shape
    units = np.array([f"u{i:03d}" for i in range(n)])
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(YEARS, n),
            "y": Y.ravel(),
            "cohort": np.repeat(np.where(np.isfinite(des["g"]), des["g"], 0), T),
            "x": np.repeat(des["x"], T),
        }
    )
    geo = pd.DataFrame(
        {
            "unit": units,
            "region": [f"r{r:02d}" for r in des["reg"]],
            "lat": des["lat"],
            "lon": des["lon"],
        }
    )
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes="y",
        covariates=["x"],
        geography=geo,
    ), units


def one(rep_seed, share, check=False, zsd=0.3, spill_model="count", fit_kw=None):
    rng_d = np.random.default_rng([rep_seed, 1])
    rng_y = np.random.default_rng([rep_seed, 2])
    des = draw_design(rng_d)
    tau, s, masks, onset = effects(des, share, zsd, spill_model)
    Y = outcome(des, tau, s, rng_y)
    panel, units = make_panel(des, Y)
    tr = truths(tau, s, masks)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = spillover.fit(
            panel,
            outcome="y",
            covariates=["x"],
            exposure="rings",
            rings_km=[(0, R_KM)],
            rng=rep_seed,
            n_boot=999,
            **(fit_kw or {}),
        )
    warns = sorted({str(x.message)[:120] for x in w})
    terms = res.terms.set_index("term")
    ci = res.conf_int()
    pv = res.pvalues
    row = {"seed": rep_seed, "warnings": warns}
    for k in TERMS:
        if k not in terms.index:
            continue
        row[f"{k}_est"] = float(terms.loc[k, "estimate"])
        row[f"{k}_se"] = float(terms.loc[k, "se"])
        row[f"{k}_lo"], row[f"{k}_hi"] = (float(v) for v in ci.loc[k].iloc[:2])
        row[f"{k}_p"] = float(pv[k])
        row[f"{k}_truth"] = float(tr.get(k, np.nan))
    pc = res.pieces.set_index("piece") if "piece" in res.pieces else res.pieces
    counts = {}
    for name, mk in masks.items():
        key = (
            name
            if name != "spillover"
            else [p for p in pc.index if str(p).startswith("spillover:")]
        )
        key = key[0] if isinstance(key, list) and key else key
        if key in pc.index:
            counts[name] = (
                int(mk.sum()),
                int(pc.loc[key, "n_target_unit_periods"]),
                int(pc.loc[key].get("n_unidentified", 0) or 0),
            )
        else:
            counts[name] = (int(mk.sum()), -1, -1)
    row["counts"] = counts
    row["count_mismatch"] = any(a != b for a, b, _ in counts.values())
    if check:
        tab = res.exposure.table.reindex(units)
        mine = onset.copy()
        theirs = tab["exposure_onset"].to_numpy(float)
        row["onset_mismatch"] = int(
            (~((mine == theirs) | (np.isinf(mine) & np.isinf(theirs)))).sum()
        )
        row["roles"] = tab["role"].value_counts().to_dict()
        row["pieces"] = res.pieces.to_string()
    return row


def summarise(df, world):
    lines = []
    for k in TERMS:
        if f"{k}_est" not in df:
            continue
        est, tru = df[f"{k}_est"], df[f"{k}_truth"]
        ok = est.notna() & tru.notna()
        if ok.sum() == 0:
            continue
        err = (est - tru)[ok]
        sd = est[ok].std(ddof=1) if world == "null" else err.std(ddof=1)
        n = ok.sum()
        cover = ((df[f"{k}_lo"] <= tru) & (tru <= df[f"{k}_hi"]))[ok]
        rej = (df[f"{k}_p"] < 0.05)[ok]
        mt = tru[ok].mean()
        lines.append(
            {
                "world": world,
                "term": k,
                "n": int(n),
                "truth": mt,
                "bias": err.mean(),
                "bias_mcse": err.std(ddof=1) / np.sqrt(n),
                "bias_pct": 100 * err.mean() / mt if abs(mt) > 1e-12 else np.nan,
                "sd": sd,
                "mean_se": df[f"{k}_se"][ok].mean(),
                "se_sd": df[f"{k}_se"][ok].mean() / sd if sd > 0 else np.nan,
                "coverage": cover.mean(),
                "cov_mcse": np.sqrt(cover.mean() * (1 - cover.mean()) / n),
                "reject": rej.mean(),
            }
        )
    return pd.DataFrame(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--worlds", default="d1,d05,d0,dm05,null")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "mc_referee_dynamic"))
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--zsd", type=float, default=0.3, help="direct-effect unit heterogeneity SD")
    ap.add_argument("--spill-model", default="count", choices=["count", "intensity", "flat"])
    ap.add_argument("--aux", default=None, help="spillover.fit aux_partition (default: fit's)")
    ap.add_argument("--small-sample", default=None, choices=["cr2", "none"])
    ap.add_argument("--tag", default="", help="suffix of the output files")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    allsum = []
    for wname in args.worlds.split(","):
        share = WORLDS[wname]
        rows, t0 = [], time.time()
        path = f"{args.out}/{wname}{args.tag}.jsonl"
        fit_kw = {}
        if args.aux:
            fit_kw["aux_partition"] = args.aux
        if args.small_sample:
            fit_kw["small_sample"] = args.small_sample
        with open(path, "a") as fh:
            for r in range(args.start, args.start + args.reps):
                try:
                    row = one(
                        args.seed + r,
                        share,
                        check=(r == args.start),
                        zsd=args.zsd,
                        spill_model=args.spill_model,
                        fit_kw=fit_kw,
                    )
                except Exception as exc:  # noqa: BLE001 - record crashes
                    row = {"seed": args.seed + r, "error": repr(exc)[:300]}
                row["world"] = wname
                fh.write(json.dumps(row, default=str) + "\n")
                fh.flush()
                rows.append(row)
        df = pd.DataFrame(rows)
        print(f"{wname}: {len(rows)} reps in {time.time() - t0:.0f}s", flush=True)
        if "error" in df:
            print("  errors:", df["error"].dropna().value_counts().head().to_dict())
        allsum.append(summarise(df, wname))
    out = pd.concat(allsum)
    pd.set_option("display.width", 200)
    print(out.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
