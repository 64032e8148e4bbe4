"""Referee Monte Carlo of ``sensitivity.cv_cutoff`` (and, with --curve, ``distance_curve``).

Written by a referee helper independently of ``zoneimpact.simulate``: the world below was
built from the issue's words, without reading simulate.py or the other MC scripts, and its
band truths come from its own spillover array and its own reading of the documented
estimand (``band_truth``), not from the package.

World: 25 regions, centres on a jittered 5x5 grid (spacing 300 km, jitter U(-40, 40) km),
units uniform in a 150 km disc around their centre, around (30N, 110E). Zones only in the
10 western regions (grid columns 0-1), so that the eastern regions are > 300 km from every
zone (clean); those have 16 units each, the others 9 or 10 (300 units). x = region part
((750 - centre_x) / 600 + N(0, 0.3), higher in the west) + unit part N(0, 1). About 60% of
the western units become zones, in four waves (years 6, 9, 12, 15 of 1..20), at random;
in the ``cov`` worlds with probability logistic(0.4 + (x - mean)) and earlier waves for
higher x, and the outcome has a trend b x t (b = 0.15; 0.3 in cov_strong), so parallel
trends hold only given x. Y = unit effect N(0, 3) + year effect (0.2 t + N(0, 0.5)) +
AR(1) region-by-year shock (rho 0.6, innovation SD 0.8) + [b x t] + direct effect
(4 + 0.2 years since opening) + spillover + noise N(0, 1). Spillover: -c on every unit-year
of a unit that is not (yet) a zone while its nearest *opened* other zone is within 75 km
(``step``), or -c (1 - d / 75) (``linear``).

Configurations (world i has seed ``base + i``; cv_cutoff and distance_curve get
``rng=seed``): null (c 0, base 10000, the step worlds' seeds), step (c 1.5, 10000), weak
(c 0.5, 40000), linear (c 3, 30000), cov (c 1.5, 20000), cov_null (c 0, 20000), cov_strong
(c 1.5, b 0.3, 50000). The true radius is 75 km.

Each world runs ``cv_cutoff(panel, "y", candidates_km=(0, 25, 50, 75, 100, 150, 200, 300),
rng=seed)``; the cov worlds also with ``covariates=["x"]``. It prints, per configuration
and covariate set, the share of worlds choosing each cutoff under the default rule
(``"one_se"``: the returned best) and under the plain minimum (the argmin of the returned
table's ``cv_mse``, i.e. ``rule="min"``). With --curve it also runs ``distance_curve`` with
bins (0, 25, 50, 75, 100, 150, 200, 300) (``covariates=["x"]`` as well in the cov worlds)
and prints per band: worlds, mean truth (the referee's ``band_truth``: a non-zone unit
within 300 km of some zone is exposed, its band is that of its closest zone ever, its
targets are its unit-periods from the first opening within 300 km), mean estimate, bias and
its Monte Carlo SE, SD of the error, mean SE, SE/SD, coverage of the 95% interval and
rejection of H0: 0 (the interval excludes 0; rows with a NaN SE are left out of both and
counted), and mismatches between the package's target counts and band roles and the
referee's.

Run:  python benchmarks/mc_referee_cv_cutoff.py [--reps 200] [--config null step ...]
      [--curve] [--out DIR]
CSV files (``cv_<config>.csv``: one row per world and covariate set with both choices and
each candidate's CV MSE; ``dc_<config>.csv`` with --curve: one row per world, covariate
set and band) go to --out (default: a new temporary directory).
"""

from __future__ import annotations

import os

# one BLAS thread per process, like the other Monte Carlo scripts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel
from zoneimpact.sensitivity import cv_cutoff, distance_curve

RE = 6371.0
LAT0, LON0 = 30.0, 110.0
KM_PER_DEG = np.pi * RE / 180.0
BINS = (0, 25, 50, 75, 100, 150, 200, 300)
CANDS = (0, 25, 50, 75, 100, 150, 200, 300)
CONFIGS = {
    "null": dict(c=0.0, shape="step", cov=False, base=10000),  # same seeds as step
    "step": dict(c=1.5, shape="step", cov=False, base=10000),
    "weak": dict(c=0.5, shape="step", cov=False, base=40000),
    "linear": dict(c=3.0, shape="linear", cov=False, base=30000),
    "cov": dict(c=1.5, shape="step", cov=True, base=20000),
    "cov_null": dict(c=0.0, shape="step", cov=True, base=20000),
    "cov_strong": dict(c=1.5, shape="step", cov=True, b=0.3, base=50000),
}


def hav(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * RE * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def make_world(
    seed,
    c=1.5,
    R=75.0,
    shape="step",
    cov=False,
    b=0.15,
    T=20,
    waves=(6, 9, 12, 15),
    tau0=4.0,
    tau_slope=0.2,
):
    rng = np.random.default_rng(seed)
    # regions
    gx, gy = np.meshgrid(np.arange(5), np.arange(5))
    gx, gy = gx.ravel(), gy.ravel()
    cx = 150 + 300 * gx + rng.uniform(-40, 40, 25)
    cy = 150 + 300 * gy + rng.uniform(-40, 40, 25)
    treated_reg = gx <= 1
    sizes = np.where(treated_reg, 16, 0)
    rest = 300 - sizes.sum()
    nt = (~treated_reg).sum()
    base = rest // nt
    s_un = np.full(nt, base)
    s_un[: rest - base * nt] += 1
    sizes[~treated_reg] = s_un
    reg = np.repeat(np.arange(25), sizes)
    n = len(reg)
    r = 150 * np.sqrt(rng.uniform(0, 1, n))
    ang = rng.uniform(0, 2 * np.pi, n)
    ux = cx[reg] + r * np.cos(ang)
    uy = cy[reg] + r * np.sin(ang)
    lat = LAT0 + uy / KM_PER_DEG
    lon = LON0 + ux / (KM_PER_DEG * np.cos(np.radians(LAT0)))
    # covariate: higher in the west (treated side) + unit noise
    a_r = (750 - cx) / 600 + rng.normal(0, 0.3, 25)
    x = a_r[reg] + rng.normal(0, 1, n)
    in_t = treated_reg[reg]
    if cov:
        p = 1 / (1 + np.exp(-(0.4 + 1.0 * (x - x[in_t].mean()))))
    else:
        p = np.full(n, 0.6)
    zone = in_t & (rng.uniform(0, 1, n) < p)
    cohort = np.full(n, np.inf)
    iz = np.flatnonzero(zone)
    if cov:  # earlier waves for higher x
        score = x[iz] + rng.normal(0, 0.7, len(iz))
        order = np.argsort(-score)
        w = np.empty(len(iz), int)
        w[order] = np.minimum((np.arange(len(iz)) * len(waves)) // len(iz), len(waves) - 1)
    else:
        w = rng.integers(0, len(waves), len(iz))
    cohort[iz] = np.asarray(waves, float)[w]
    years = np.arange(1, T + 1)
    # distances unit x zone
    D = hav(lat[:, None], lon[:, None], lat[iz][None, :], lon[iz][None, :])
    D[iz, np.arange(len(iz))] = np.inf  # own zone does not expose itself
    zc = cohort[iz]
    # true spillover per unit-year: nearest opened zone (excluding own), unit not yet a zone
    dmin_open = np.full((n, T), np.inf)
    for k, t in enumerate(years):
        op = zc <= t
        if op.any():
            dmin_open[:, k] = D[:, op].min(axis=1)
    notzone = cohort[:, None] > years[None, :]
    within = dmin_open < R
    if shape == "step":
        spill = np.where(within & notzone, -c, 0.0)
    else:
        spill = np.where(within & notzone, -c * (1 - dmin_open / R), 0.0)
    direct = np.where(
        cohort[:, None] <= years[None, :],
        tau0 + tau_slope * (years[None, :] - cohort[:, None]),
        0.0,
    )
    alpha = rng.normal(0, 3, n)
    lam = 0.2 * years + rng.normal(0, 0.5, T)
    eta = np.zeros((25, T))
    eta[:, 0] = rng.normal(0, 0.8 / np.sqrt(1 - 0.36), 25)
    for k in range(1, T):
        eta[:, k] = 0.6 * eta[:, k - 1] + rng.normal(0, 0.8, 25)
    trend = (b * x[:, None] * years[None, :]) if cov else 0.0
    eps = rng.normal(0, 1.0, (n, T))
    Y = alpha[:, None] + lam[None, :] + eta[reg] + trend + direct + spill + eps
    units = np.array([f"u{i:03d}" for i in range(n)])
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(years, n),
            "y": Y.ravel(),
            "cohort": np.repeat(np.where(np.isfinite(cohort), cohort, 0), T),
            "x": np.repeat(x, T),
        }
    )
    geo = pd.DataFrame(
        {"unit": units, "lat": lat, "lon": lon, "region": [f"r{k:02d}" for k in reg]}
    )
    truth = dict(units=units, cohort=cohort, D=D, zc=zc, spill=spill, years=years, x=x, reg=reg)
    return df, geo, truth


def band_truth(truth, bins):
    """The referee's reading of the package's documented estimand for band (lo, hi):
    exposed = non-zone unit with some zone (ever) within the outermost edge; its band is
    that of its closest zone ever; onset = earliest opening among zones within the
    outermost edge; targets: t >= onset. Truth = mean true spillover over the targets."""
    cohort, D, zc, spill, years = (
        truth["cohort"],
        truth["D"],
        truth["zc"],
        truth["spill"],
        truth["years"],
    )
    outer = bins[-1]
    nonzone = ~np.isfinite(cohort)
    inmap = D < outer
    exposed = nonzone & inmap.any(axis=1)
    onset = np.where(inmap, zc[None, :], np.inf).min(axis=1)
    dclose = D.min(axis=1)
    out = {}
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        inb = exposed & (dclose >= lo) & (dclose < hi)
        tg = inb[:, None] & (years[None, :] >= onset[:, None])
        m = tg.sum()
        out[(lo, hi)] = (spill[tg].mean() if m else np.nan, int(m), int(inb.sum()))
    clean = nonzone & ~exposed
    return out, dict(
        onset=onset,
        exposed=exposed,
        dclose=dclose,
        n_clean=int(clean.sum()),
        n_clean_regions=len(set(truth["reg"][clean])),
    )


def build_panel(df, geo):
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x"],
        geography=geo,
        never_values=(0,),
    )


def one_world(cfg, seed, curve=False):
    """cv_cutoff choices (and distance_curve bands) in world ``seed``: (cv rows, dc rows,
    warning messages)."""
    df, geo, tr = make_world(
        seed, c=cfg["c"], shape=cfg["shape"], cov=cfg["cov"], b=cfg.get("b", 0.15)
    )
    p = build_panel(df, geo)
    variants = [("none", ())] + ([("x", ("x",))] if cfg["cov"] else [])
    cv_rows, dc_rows, msgs = [], [], []
    if curve:
        bt, info = band_truth(tr, BINS)
        em = build_exposure(p, "rings", rings_km=list(zip(BINS[:-1], BINS[1:], strict=True)))
        tab = em.table.reindex(tr["units"])
        role_mismatch = int(((tab.role == "exposed").to_numpy() != info["exposed"]).sum())
        for vname, covs in variants:
            with warnings.catch_warnings(record=True) as wl:
                warnings.simplefilter("always")
                opts = {"covariates": list(covs)} if covs else {}
                dc = distance_curve(p, "y", bins_km=BINS, rng=seed, **opts)
            msgs += [f"distance_curve: {m.message}"[:200] for m in wl]
            got = set()
            for _, r in dc.iterrows():
                key = (r.low_km, r.high_km)
                got.add(key)
                dc_rows.append(
                    dict(
                        seed=seed,
                        covariates=vname,
                        low=r.low_km,
                        high=r.high_km,
                        est=r.estimate,
                        se=r.se,
                        lo=r.conf_low,
                        hi=r.conf_high,
                        n_pkg=r.n_target_unit_periods,
                        truth=bt[key][0],
                        n_mine=bt[key][1],
                        role_mismatch=role_mismatch,
                    )
                )
            for key, v in bt.items():
                if key not in got and v[1] > 0:
                    msgs.append(f"distance_curve: band {key} missing (referee: {v[1]} targets)")
    for vname, covs in variants:
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            best, ctab = cv_cutoff(p, "y", candidates_km=CANDS, covariates=covs, rng=seed)
        msgs += [f"cv_cutoff: {m.message}"[:200] for m in wl]
        row = dict(
            seed=seed,
            covariates=vname,
            one_se=best,
            min=float(ctab.loc[ctab.cv_mse.idxmin(), "cutoff_km"]),
        )
        row.update({f"mse{h:g}": m for h, m in zip(ctab.cutoff_km, ctab.cv_mse, strict=True)})
        cv_rows.append(row)
    return cv_rows, dc_rows, msgs


def run_config(name, reps, curve, out):
    cfg = CONFIGS[name]
    cv_rows, dc_rows, issues = [], [], []
    t0 = time.perf_counter()
    for i in range(reps):
        seed = cfg["base"] + i
        try:
            cv, dc, msgs = one_world(cfg, seed, curve)
        except Exception as exc:  # record crashes
            issues.append(dict(seed=seed, msg=f"error: {type(exc).__name__}: {exc}"[:300]))
            continue
        cv_rows += cv
        dc_rows += dc
        issues += [dict(seed=seed, msg=m) for m in msgs]
    secs = time.perf_counter() - t0
    cv = pd.DataFrame(cv_rows)
    dc = pd.DataFrame(dc_rows)
    iss = pd.DataFrame(issues, columns=["seed", "msg"])
    cv.to_csv(os.path.join(out, f"cv_{name}.csv"), index=False)
    if curve:
        dc.to_csv(os.path.join(out, f"dc_{name}.csv"), index=False)
    iss.to_csv(os.path.join(out, f"issues_{name}.csv"), index=False)
    print(f"{name}: {reps} worlds in {secs:.1f} s", flush=True)
    return cv, dc, iss


def choice_table(name, cv):
    """Share of worlds choosing each cutoff, by covariate set and rule."""
    rows = []
    for vname, g in cv.groupby("covariates", sort=False):
        for rule in ("one_se", "min"):
            freq = g[rule].value_counts(normalize=True).reindex(CANDS, fill_value=0.0)
            row = {"config": name, "covariates": vname, "rule": rule, "worlds": len(g)}
            row.update({f"{h:g}": v for h, v in freq.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def curve_table(name, dc):
    """Per band: truth, bias, SE/SD, coverage and rejection of 0."""
    g = dc.assign(
        err=dc.est - dc.truth,
        cover=(dc.lo <= dc.truth) & (dc.truth <= dc.hi),
        rej0=(dc.lo > 0) | (dc.hi < 0),
        nan_se=dc.se.isna(),
        n_mismatch=dc.n_pkg != dc.n_mine,
    )
    ok = g[~g.nan_se]
    by = ["covariates", "low", "high"]
    t = g.groupby(by, sort=False).agg(
        worlds=("est", "size"),
        truth=("truth", "mean"),
        mean_est=("est", "mean"),
        bias=("err", "mean"),
        sd_err=("err", "std"),
        mean_se=("se", "mean"),
        nan_se=("nan_se", "sum"),
        n_mismatch=("n_mismatch", "sum"),
    )
    t["mcse_bias"] = t.sd_err / np.sqrt(t.worlds)
    t["se_sd"] = t.mean_se / t.sd_err
    t["coverage"] = ok.groupby(by, sort=False).cover.mean()
    t["rej0"] = ok.groupby(by, sort=False).rej0.mean()
    t = t.reset_index()
    t.insert(0, "config", name)
    cols = ["config", "covariates", "low", "high", "worlds", "truth", "mean_est", "bias"]
    cols += ["mcse_bias", "sd_err", "mean_se", "se_sd", "coverage", "rej0", "nan_se"]
    return t[cols + ["n_mismatch"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--config", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--curve", action="store_true", help="also run distance_curve")
    ap.add_argument("--out", default=None, help="directory for the CSVs (default: a temp dir)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mc_referee_cv_cutoff_")
    os.makedirs(out, exist_ok=True)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 300)
    pd.set_option("display.max_colwidth", 200)
    t0 = time.perf_counter()
    results = [(name, *run_config(name, args.reps, args.curve, out)) for name in args.config]
    fmt = lambda v: f"{v:.3g}"  # noqa: E731
    print("\ncv_cutoff: share of worlds choosing each cutoff (km; true radius 75 in non-null)")
    tabs = [choice_table(name, cv) for name, cv, _, _ in results if len(cv)]
    if tabs:
        print(pd.concat(tabs).to_string(index=False, float_format=fmt))
    if args.curve:
        print("\ndistance_curve by band (rej0: interval excludes 0)")
        tabs = [curve_table(name, dc) for name, _, dc, _ in results if len(dc)]
        if tabs:
            print(pd.concat(tabs).to_string(index=False, float_format=fmt))
        mism = {name: int(dc.role_mismatch.sum()) for name, _, dc, _ in results if len(dc)}
        print("exposed-role mismatches with the referee's map (unit-worlds):", mism)
    for name, _, _, iss in results:
        if len(iss):
            print(f"\n{name}: warnings/errors (worlds with each):")
            counts = iss.drop_duplicates().groupby("msg").seed.nunique()
            for msg, k in counts.sort_values(ascending=False).items():
                print(f"  {k} x {msg}")
    print(
        f"\n{args.reps} worlds per configuration{' (with distance_curve)' if args.curve else ''}"
        f": {time.perf_counter() - t0:.0f} s; CSVs in {out}"
    )


if __name__ == "__main__":
    main()
