"""Referee Monte Carlo of the spillover estimator with few regions (clusters): 8 or 12.

Written by a referee independently of ``zoneimpact.simulate``: the world below was built
from the issue's words, without reading simulate.py or the other MC scripts, and its truths
are set by construction (constant effects), not taken from the package.

World: G regions (8 or 12) on a grid of centres 400 km apart around (30N, 110E), 200 units
drawn into regions (every region present) and scattered around the centres (SD 70 km),
years 2001-2016. x ~ N(0, 1); exactly 20 zones (10%) drawn with probability rising in x,
each in one of three waves (2005, 2009, 2013); x also shifts the trend (0.4 x (t - 2001)),
so parallel trends hold only given x. Region-year shocks AR(1) (rho 0.5, stationary SD 3),
unit noise iid SD 3, unit effects N(20, 5) + 2x, year effects. Direct effect 8 per zone
unit-period (t >= own cohort). Spillover: a constant s per unit-period on every exposed unit
that is not (yet) a zone, from its exposure onset: the first opening of another zone within
60 km (``rings``), or of the first zone in its region (``region``; zones then only in the
first G/2 regions). s is calibrated per replication so that total spillover (including that
on later zones before their own opening) over total direct is -0.5 (world ``share0.5``);
world ``null`` has no effect at all. Configurations: G8_rings, G12_rings, G8_region.

Each replication fits ``spillover.fit`` (covariates x, clusters: regions, n_boot 999) and
re-does its inference with the wild cluster bootstrap (``with_inference("wild")``, 299
draws) and Conley SEs (150 km cutoff). It reports, per configuration, world, quantity and
method: truth, mean and median estimate, bias, bias %, SD (of the error; of the estimate
where the truth is undefined), mean SE, SE/SD, coverage of the 95% interval, rejection of
H0: 0 at 5% (size in the null world), the share of unbounded intervals and the median df;
checks of the target counts against the pieces table; and for spillover_on_zones in the
null world the rejection rate by the number of regions holding its targets.
Replication i has seed ``--seed`` + i (the same seeds in both worlds).

Run:  python benchmarks/mc_referee_few_clusters.py [--reps 200] [--config G8_rings]
      [--worlds null share0.5] [--methods default wild conley] [--conley-km 150 300]
      [--conley-kernel bartlett uniform]
      [--seed 1000] [--out DIR]
CSV files (``raw_<config>_<world>.csv``: one row per replication x method x quantity;
``meta_<config>_<world>.csv``: counts and timings) go to --out (default: a temp dir).
"""

from __future__ import annotations

import os

# one BLAS thread per process, like the other Monte Carlo scripts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

YEARS = np.arange(2001, 2017)
WAVES = (2005, 2009, 2013)
R_EARTH = 6371.0088


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R_EARTH * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def draw_world(
    rng,
    G=8,
    n_units=200,
    radius_km=60.0,
    exposure="rings",
    tau_d=8.0,
    share=0.5,
    null=False,
    shock_sd=3.0,
    noise_sd=3.0,
    rho=0.5,
    zone_rate=0.10,
    zone_regions=None,
):
    T = len(YEARS)
    # region centres on a grid, 400 km apart, around (30N, 110E)
    ncol = int(np.ceil(np.sqrt(G)))
    km_lat = 111.2
    km_lon = 111.2 * np.cos(np.radians(30))
    centres = [(30 + (g // ncol) * 400 / km_lat, 110 + (g % ncol) * 400 / km_lon) for g in range(G)]
    region = rng.integers(0, G, n_units)
    region[:G] = np.arange(G)  # every region present
    lat = np.array([centres[r][0] for r in region]) + rng.normal(0, 70, n_units) / km_lat
    lon = np.array([centres[r][1] for r in region]) + rng.normal(0, 70, n_units) / km_lon
    x = rng.normal(0, 1, n_units)
    # zone selection depends on x; exactly round(zone_rate*n) zones, 3 waves
    p = 1 / (1 + np.exp(-(np.log(zone_rate / (1 - zone_rate)) + 1.0 * x)))
    nz = int(round(zone_rate * n_units))
    if zone_regions is not None:  # zones only in the first zone_regions regions
        p = p * (region < zone_regions)
    zones = rng.choice(n_units, nz, replace=False, p=p / p.sum())
    cohort = np.full(n_units, np.inf)
    cohort[zones] = rng.choice(WAVES, nz)
    # exposure onset: earliest opening of another zone within radius (rings) or region
    if exposure == "rings":
        D = haversine(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
        link = D < radius_km
    else:
        link = region[:, None] == region[None, :]
    np.fill_diagonal(link, False)
    zc = np.where(link, cohort[None, :], np.inf)
    onset = zc.min(axis=1)
    t = YEARS[None, :].astype(float)
    is_zone_t = t >= cohort[:, None]
    direct_mask = is_zone_t
    # spillover on units exposed and not (yet) a zone; split: non-zone units vs later zones
    exposed_t = (t >= onset[:, None]) & ~is_zone_t
    spill_nonzone = exposed_t & ~np.isfinite(cohort)[:, None]
    spill_onzones = exposed_t & np.isfinite(cohort)[:, None]
    n_dir = int(direct_mask.sum())
    n_sp = int(spill_nonzone.sum())
    n_soz = int(spill_onzones.sum())
    if null:
        td, s = 0.0, 0.0
    else:
        td = tau_d
        s = -share * td * n_dir / (n_sp + n_soz)
    # outcome
    alpha_i = rng.normal(20, 5, n_units) + 2.0 * x
    lam = 0.6 * (YEARS - YEARS[0]) + rng.normal(0, 1.0, T)
    innov_sd = shock_sd * np.sqrt(1 - rho**2)
    sh = np.zeros((G, T))
    sh[:, 0] = rng.normal(0, shock_sd, G)
    for k in range(1, T):
        sh[:, k] = rho * sh[:, k - 1] + rng.normal(0, innov_sd, G)
    trend_x = 0.4 * x[:, None] * (YEARS - YEARS[0])[None, :]
    y = (
        alpha_i[:, None]
        + lam[None, :]
        + trend_x
        + sh[region]
        + rng.normal(0, noise_sd, (n_units, T))
        + td * direct_mask
        + s * exposed_t
    )
    units = np.array([f"u{i:03d}" for i in range(n_units)])
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(YEARS, n_units),
            "y": y.ravel(),
            "x": np.repeat(x, T),
            "first_zone": np.repeat(np.where(np.isfinite(cohort), cohort, 0), T).astype(int),
        }
    )
    geo = pd.DataFrame({"unit": units, "region": [f"R{r}" for r in region], "lat": lat, "lon": lon})
    # regions holding spillover-on-zones targets (zones exposed before their own opening)
    soz_units = np.isfinite(cohort) & (onset < cohort)
    truth = {
        "direct": td,
        "spillover": s,
        "spillover_on_zones": s if n_soz else np.nan,
        "direct_total": td * n_dir,
        "spillover_total": s * n_sp,
        "spillover_on_zones_total": s * n_soz,
        "net": td * n_dir + s * (n_sp + n_soz),
        "displacement_share": (np.nan if null else share),
        "n_dir": n_dir,
        "n_sp": n_sp,
        "n_soz": n_soz,
        "n_zone_units": nz,
        "n_exposed_units": int((np.isfinite(onset) & ~np.isfinite(cohort)).sum()),
        "n_clean_units": int((~np.isfinite(onset) & ~np.isfinite(cohort)).sum()),
        "n_soz_regions": len(np.unique(region[soz_units])),
    }
    return df, geo, truth


TERMS = [
    "direct",
    "spillover",
    "spillover_on_zones",
    "direct_total",
    "spillover_total",
    "spillover_on_zones_total",
    "net",
    "displacement_share",
]
CONFIGS = {
    "G8_rings": dict(G=8, exposure="rings"),
    "G12_rings": dict(G=12, exposure="rings"),
    "G8_region": dict(G=8, exposure="region"),
}
WORLDS = ["null", "share0.5"]
METHODS = ["default", "wild", "conley"]


def one_rep(
    cfg,
    world,
    seed,
    methods=METHODS,
    conley_km=(150.0,),
    n_boot=999,
    n_boot_wild=299,
    kernels=("bartlett",),
):
    rng = np.random.default_rng(seed)
    kw = dict(G=cfg["G"], exposure=cfg["exposure"], null=(world == "null"), share=0.5)
    if cfg["exposure"] == "region":
        kw["zone_regions"] = cfg["G"] // 2
    df, geo, tr = draw_world(rng, **kw)
    p = Panel.from_frame(
        df,
        unit="unit",
        time="year",
        cohort="first_zone",
        outcomes=["y"],
        covariates=["x"],
        geography=geo,
    )
    fkw = dict(outcome="y", covariates=["x"], rng=seed)
    if cfg["exposure"] == "rings":
        fkw.update(exposure="rings", rings_km=[(0, 60)])
    else:
        fkw.update(exposure="region")
    wmsgs: Counter = Counter()
    rows = []
    t0 = time.time()
    tfit = np.nan
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = {}
        try:
            r = spillover.fit(p, n_boot=n_boot, **fkw)
            res["default"] = r
        except Exception as e:  # record crashes
            wmsgs[f"CRASH fit: {type(e).__name__}: {str(e)[:200]}"] += 1
            r = None
        tfit = time.time() - t0
        if r is not None:
            if "wild" in methods:
                try:
                    res["wild"] = r.with_inference("wild", n_boot=n_boot_wild, rng=seed + 1)
                except Exception as e:
                    wmsgs[f"CRASH wild: {type(e).__name__}: {str(e)[:200]}"] += 1
            for km in conley_km if "conley" in methods else ():
                for kernel in kernels:
                    # e.g. conley150 (Bartlett), conley300u (uniform)
                    name = f"conley{km:g}" + ("u" if kernel == "uniform" else "")
                    try:
                        res[name] = r.with_inference(
                            "conley", conley_km=km, conley_kernel=kernel, rng=seed
                        )
                    except Exception as e:
                        wmsgs[f"CRASH conley: {type(e).__name__}: {str(e)[:200]}"] += 1
        for x in w:
            wmsgs[f"{x.category.__name__}: {str(x.message)[:160]}"] += 1
    for meth, rr in res.items():
        if meth == "default" and "default" not in methods:
            continue
        t = rr.terms.set_index("term")
        ci = rr.conf_int()
        for term in TERMS:
            if term not in t.index:
                continue
            rows.append(
                dict(
                    seed=seed,
                    method=meth,
                    term=term,
                    truth=tr.get(term, np.nan),
                    estimate=t.at[term, "estimate"],
                    se=t.at[term, "se"] if "se" in t else np.nan,
                    ci_low=ci.loc[term].iloc[0],
                    ci_high=ci.loc[term].iloc[1],
                    p_value=rr.pvalues.get(term, np.nan),
                    df=t.at[term, "df"] if "df" in t.columns else np.nan,
                    n_clusters=rr.info.get("n_clusters"),
                )
            )
    pc = res["default"].pieces.set_index("piece") if "default" in res else None
    meta = dict(
        seed=seed,
        tfit=tfit,
        ttotal=time.time() - t0,
        **{k: v for k, v in tr.items() if k.startswith("n_")},
    )
    if pc is not None:
        meta["pk_n_dir"] = pc["n_target_unit_periods"].get("direct", np.nan)
        sp = [i for i in pc.index if str(i).startswith("spillover:")]
        meta["pk_n_sp"] = pc.loc[sp, "n_target_unit_periods"].sum() if sp else np.nan
        meta["pk_n_soz"] = pc["n_target_unit_periods"].get("spillover_on_zones", 0)
        meta["pk_n_unident"] = pc["n_unidentified"].sum()
        meta["share_bc"] = res["default"].params["displacement_share"] - res["default"].info.get(
            "displacement_share_ratio_bias", np.nan
        )
    return rows, meta, wmsgs


def summ(g):
    err = g.estimate - g.truth
    mt = g.truth.mean()
    defined = g.truth.notna().all()
    cov = ((g.ci_low <= g.truth) & (g.truth <= g.ci_high)).mean() if defined else np.nan
    fin = np.isfinite(g.ci_low) & np.isfinite(g.ci_high)
    sd = err.std(ddof=1) if defined else g.estimate.std(ddof=1)
    return pd.Series(
        {
            "R": len(g),
            "truth": mt,
            "mean_est": g.estimate.mean(),
            "median_est": g.estimate.median(),
            "bias": err.mean(),
            "bias%": 100 * err.mean() / mt if (np.isfinite(mt) and mt != 0) else np.nan,
            "SD": sd,
            "meanSE": g.se.mean(),
            "SE/SD": g.se.mean() / sd,
            "cover95": cov,
            "rej5%": (g.p_value < 0.05).mean(),
            "inf_CI": (~fin).mean(),
            "med_df": g.df.median(),
            "nan_est": g.estimate.isna().mean(),
        }
    )


def run_world(config, world, reps, seed0, out, methods, conley_km, n_boot, kernels=("bartlett",)):
    cfg = CONFIGS[config]
    allrows, metas, msgs = [], [], Counter()
    t0 = time.time()
    for i in range(reps):
        rows, meta, wm = one_rep(cfg, world, seed0 + i, methods, conley_km, n_boot, kernels=kernels)
        allrows += rows
        metas.append(meta)
        msgs.update(wm)
        if (i + 1) % 10 == 0 or i + 1 == reps:
            print(f"{config} {world} rep {i + 1}/{reps} {time.time() - t0:.0f}s", flush=True)
    raw, meta = pd.DataFrame(allrows), pd.DataFrame(metas)
    raw.to_csv(os.path.join(out, f"raw_{config}_{world}.csv"), index=False)
    meta.to_csv(os.path.join(out, f"meta_{config}_{world}.csv"), index=False)
    with open(os.path.join(out, f"warn_{config}_{world}.txt"), "w") as fh:
        for m, c in msgs.most_common():
            fh.write(f"{c}\t{m}\n")
    return raw, meta, msgs


def report(config, world, raw, meta, msgs):
    print(f"\n=== {config}, world {world}: {len(meta)} replications ===")
    if "pk_n_dir" in meta:
        cnt = {k: float((meta[k] == meta["pk_" + k]).mean()) for k in ("n_dir", "n_sp", "n_soz")}
        print(
            f"target counts equal to the pieces table: {cnt}; mean counts dir/sp/soz "
            f"{meta.n_dir.mean():.0f}/{meta.n_sp.mean():.0f}/{meta.n_soz.mean():.1f}; units "
            f"zone/exposed/clean {meta.n_zone_units.mean():.0f}/{meta.n_exposed_units.mean():.0f}"
            f"/{meta.n_clean_units.mean():.0f}; unidentified {meta.pk_n_unident.sum()}"
        )
    if world != "null" and "share_bc" in meta:
        print(
            f"share minus info['displacement_share_ratio_bias']: mean {meta.share_bc.mean():.3f},"
            f" median {meta.share_bc.median():.3f}"
        )
    if raw.empty:
        print("no estimates")
        return
    tab = raw.groupby(["term", "method"], sort=False).apply(summ, include_groups=False)
    tab = tab.reindex(TERMS, level=0)
    print(tab.to_string(float_format=lambda v: f"{v:.3g}"))
    if world == "null":
        s = raw[raw.term == "spillover_on_zones"].merge(meta[["seed", "n_soz_regions"]])
        if not s.empty:
            print("spillover_on_zones (null world) by the number of regions holding its targets:")
            by = s.groupby(["n_soz_regions", "method"]).agg(
                R=("p_value", "size"),
                rej5=("p_value", lambda v: (v < 0.05).mean()),
                med_df=("df", "median"),
                SD=("estimate", "std"),
                meanSE=("se", "mean"),
            )
            print(by.to_string(float_format=lambda v: f"{v:.3g}"))
    crashes = {m: c for m, c in msgs.items() if m.startswith("CRASH")}
    if crashes:
        print("crashes:", crashes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1000, help="replication i has seed SEED + i")
    ap.add_argument("--config", nargs="+", default=["G8_rings"], choices=list(CONFIGS))
    ap.add_argument("--worlds", nargs="+", default=WORLDS, choices=WORLDS)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--conley-km", type=float, nargs="+", default=[150.0])
    ap.add_argument(
        "--conley-kernel", nargs="+", default=["bartlett"], choices=["bartlett", "uniform"]
    )
    ap.add_argument("--n-boot", type=int, default=999, help="bootstrap draws of the fit")
    ap.add_argument("--out", default=None, help="directory for the CSVs (default: a temp dir)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mc_referee_few_clusters_")
    os.makedirs(out, exist_ok=True)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 300)
    t0 = time.perf_counter()
    results = []
    for config in args.config:
        for world in args.worlds:
            raw, meta, msgs = run_world(
                config,
                world,
                args.reps,
                args.seed,
                out,
                args.methods,
                args.conley_km,
                args.n_boot,
                kernels=args.conley_kernel,
            )
            results.append((config, world, raw, meta, msgs))
    for res in results:
        report(*res)
    print(
        f"\n{args.reps} replications per world, seed {args.seed}: "
        f"{time.perf_counter() - t0:.0f} s; CSVs in {out}"
    )


if __name__ == "__main__":
    main()
