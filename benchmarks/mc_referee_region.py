"""Referee Monte Carlo of the region check ``net_region_did`` of the spillover estimator.

Written by a referee helper independently of ``zoneimpact.simulate``: the world below was
built from the issue's words, without reading simulate.py or the other MC scripts, and its
truth is summed from its own effect arrays, not taken from the package.

World: R regions (30 or 12) of 5-15 units (sizes drawn at random), years 2001-2020.
x = region part N(0, 0.8) + unit part N(0, 0.6), time invariant. Regions are ranked by mean
x plus noise N(0, 0.5); the top round(p R) get zones (p = 0.65 by default), the higher
ranked opening earlier in waves 2006/09/12/15 (equal shares by rank). Each zone region gets
1-3 zone units, drawn with weights exp(x); the first opens in the region's wave, each
further one in the same wave (probability 0.3, or when no wave is left) or a later one.
Y0 = unit effect N(0, 2) + x + random-walk year effect (steps N(0.2, 0.5)) + 0.3 x (t - 2001)
+ AR(1) region-by-year shock (rho 0.7, innovation SD 1) + unit noise (SD 1), so parallel
trends hold only given x. Direct effect delta (1 + N(0, 0.3)) (1 + 0.1 years since
opening) per zone unit-period (delta = 4, as the referee ran it; 0 in the null worlds).
Half of each zone's gain is taken in equal shares from its region's other units (later
zone units included).
Truth: the sum of Y1 - Y0 over the zone regions' units from the region's first zone year
(half the direct total; the effect before it is checked to be 0).

Configurations (tags as in the referee's report; seeds ``base + i`` for world i):
R30_disp (R 30, p 0.65, delta 4; base 10000), R30_null (delta 0; 20000), R12_disp (R 12;
30000), R12_null (40000), R30_p90 (27 of 30 regions with zones, 3 never-treated; 50000),
R30_p90null (55000); and designs the check refuses (too few untreated regions): R30_p97
(29/30; 60000), R30_p100 (70000), R12_p83 (10/12; 85000), R12_p92 (11/12; 80000),
R12_p100 (90000). Each world fits ``spillover.fit(exposure="region", covariates=["x"],
n_boot=0, rng=seed, small_sample=...)``; the interval is ``result.conf_int()`` and the
p-value 2 t_df.sf(|est / se|) with the term's df.

It prints per configuration: the share of worlds where ``net_region_did`` is identified,
crashes, mean truth, bias with its Monte Carlo SE, bias %, SD of the error, mean SE, SE/SD,
coverage of the 95% interval, rejection of H0: 0 at 5% (size in the null worlds), the df
range (and median); then, for worlds where it is not identified, the counts of the refusal
notes (``info["net_region_did_note"]``).

Run:  python benchmarks/mc_referee_region.py [--reps 300] [--config R30_disp R12_null ...]
      [--small-sample cr2|none] [--out DIR]
A CSV per configuration (``<tag>_<small_sample>.csv``, one row per world) goes to --out
(default: a new temporary directory).
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
from scipy import stats

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

YEARS = np.arange(2001, 2021)  # 20 years
WAVES = np.array([2006, 2009, 2012, 2015])


def make_world(
    seed, R=30, p_zone=0.65, delta=4.0, disp=0.5, b=0.3, rho=0.7, sd_reg=1.0, sd_unit=1.0
):
    rng = np.random.default_rng(seed)
    T = len(YEARS)
    sizes = rng.integers(5, 16, size=R)  # unequal sizes, mean ~10
    region = np.repeat(np.arange(R), sizes)
    N = len(region)
    a_r = rng.normal(0, 0.8, R)  # region part of x
    x = a_r[region] + rng.normal(0, 0.6, N)  # unit-level, time invariant
    xbar = np.bincount(region, x) / sizes
    # which regions get zones, and when: driven by region mean x
    score = xbar + rng.normal(0, 0.5, R)
    n_zone_reg = int(round(p_zone * R))
    order = np.argsort(-score)  # high x -> zones, earlier
    zreg = order[:n_zone_reg]
    cohort_of_reg = np.full(R, np.inf)
    # waves assigned by rank among zone regions, 4 waves roughly equal
    wave_idx = np.floor(np.arange(n_zone_reg) * len(WAVES) / n_zone_reg).astype(int)
    cohort_of_reg[zreg] = WAVES[wave_idx]
    cohort = np.full(N, np.inf)
    for r in zreg:
        members = np.flatnonzero(region == r)
        nz = min(rng.integers(1, 4), len(members) - 1)  # 1-3 zones
        # zone units: higher x more likely
        pw = np.exp(x[members])
        pw /= pw.sum()
        zu = rng.choice(members, nz, replace=False, p=pw)
        c0 = cohort_of_reg[r]
        later = WAVES[WAVES > c0]
        cohort[zu[0]] = c0
        for u in zu[1:]:
            cohort[u] = c0 if (len(later) == 0 or rng.random() < 0.3) else rng.choice(later)
    # untreated outcomes
    alpha = rng.normal(0, 2, N) + 1.0 * x
    gamma = np.cumsum(rng.normal(0.2, 0.5, T))
    u = np.zeros((R, T))
    u[:, 0] = rng.normal(0, sd_reg / np.sqrt(1 - rho**2), R)
    for t in range(1, T):
        u[:, t] = rho * u[:, t - 1] + rng.normal(0, sd_reg, R)
    tt = np.arange(T)
    Y0 = (
        alpha[:, None]
        + gamma[None, :]
        + b * x[:, None] * tt[None, :]
        + u[region]
        + rng.normal(0, sd_unit, (N, T))
    )
    # effects: heterogeneous direct effect growing with years since opening
    on = YEARS[None, :] >= cohort[:, None]
    cfin = np.where(np.isfinite(cohort), cohort, 0.0)
    tau_unit = delta * (1 + rng.normal(0, 0.3, N))
    tau = np.where(on, tau_unit[:, None] * (1 + 0.1 * (YEARS[None, :] - cfin[:, None])), 0.0)
    eff = tau.copy()
    for r in zreg:
        members = np.flatnonzero(region == r)
        loss = disp * tau[members].sum(0)  # per year, taken from others
        for i in members:
            own = disp * tau[i]
            eff[i] -= (loss - own) / (len(members) - 1)  # from the region's other units
    Y = Y0 + eff
    reg_first = cohort_of_reg[region]
    truth = float(eff[YEARS[None, :] >= reg_first[:, None]].sum())
    # sanity: total effect outside t >= first zone is zero
    assert abs(eff[YEARS[None, :] < reg_first[:, None]].sum()) < 1e-8
    df = pd.DataFrame(
        {
            "id": np.repeat(np.arange(N), T),
            "year": np.tile(YEARS, N),
            "y": Y.ravel(),
            "x": np.repeat(x, T),
            "cohort": np.repeat(np.where(np.isfinite(cohort), cohort, 0), T),
        }
    )
    geo = pd.DataFrame({"id": np.arange(N), "region": [f"r{r:02d}" for r in region]})
    meta = dict(N=N, n_zone_reg=n_zone_reg, n_zones=int(np.isfinite(cohort).sum()))
    return df, geo, truth, meta


# tag: (R, p_zone, delta, seed base); p_zone matters only through round(p_zone * R)
CONFIGS = {
    "R30_disp": (30, 0.65, 4.0, 10000),
    "R30_null": (30, 0.65, 0.0, 20000),
    "R12_disp": (12, 0.65, 4.0, 30000),
    "R12_null": (12, 0.65, 0.0, 40000),
    "R30_p90": (30, 0.90, 4.0, 50000),
    "R30_p90null": (30, 0.90, 0.0, 55000),
    "R30_p97": (30, 0.97, 4.0, 60000),
    "R30_p100": (30, 1.00, 4.0, 70000),
    "R12_p83": (12, 0.83, 4.0, 85000),
    "R12_p92": (12, 0.92, 4.0, 80000),
    "R12_p100": (12, 1.00, 4.0, 90000),
}


def one_world(seed, R, p_zone, delta, small_sample="cr2"):
    df, geo, truth, meta = make_world(seed, R=R, p_zone=p_zone, delta=delta)
    rec = dict(seed=seed, truth=truth, **meta)
    try:
        p = Panel.from_frame(
            df,
            unit="id",
            time="year",
            outcomes="y",
            cohort="cohort",
            covariates=["x"],
            geography=geo,
        )
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            res = spillover.fit(
                p,
                outcome="y",
                exposure="region",
                covariates=["x"],
                n_boot=0,
                rng=seed,
                small_sample=small_sample,
            )
        tm = res.terms.set_index("term")
        if "net_region_did" in tm.index:
            r = tm.loc["net_region_did"]
            ci = res.conf_int().loc["net_region_did"]
            pval = 2 * stats.t.sf(abs(r.estimate / r.se), r.df) if np.isfinite(r.df) else np.nan
            rec.update(ident=1, est=r.estimate, se=r.se, df=r.df, lo=ci.lower, hi=ci.upper, p=pval)
        else:
            rec.update(ident=0, note=res.info.get("net_region_did_note", "<no note>"))
        rec["warns"] = " | ".join(sorted({str(m.message)[:80] for m in wl}))
    except Exception as exc:  # record crashes
        rec.update(ident=-1, err=f"{type(exc).__name__}: {exc}"[:300])
    return rec


def run_config(tag, reps, small_sample, out):
    R, pz, delta, base = CONFIGS[tag]
    t0 = time.perf_counter()
    rows = [one_world(base + i, R, pz, delta, small_sample) for i in range(reps)]
    d = pd.DataFrame(rows)
    secs = time.perf_counter() - t0
    d.to_csv(os.path.join(out, f"{tag}_{small_sample}.csv"), index=False)
    print(f"{tag} ({small_sample}): {reps} worlds in {secs:.1f} s", flush=True)
    return d


def summarize(tag, d):
    n = len(d)
    idf = d[d.ident == 1]
    line = dict(
        config=tag,
        worlds=n,
        identified=len(idf) / n,
        crashes=int((d.ident == -1).sum()),
        mean_truth=d.truth.mean(),
    )
    if len(idf):
        e = idf.est - idf.truth
        mt = idf.truth.mean()
        line.update(
            mean_truth=mt,
            bias=e.mean(),
            mcse_bias=e.std() / np.sqrt(len(idf)),
            bias_pct=100 * e.mean() / mt if abs(mt) > 1e-9 else np.nan,
            sd_err=e.std(),
            mean_se=idf.se.mean(),
            se_sd=idf.se.mean() / e.std(),
            coverage=((idf.lo <= idf.truth) & (idf.truth <= idf.hi)).mean(),
            rej0=(idf.p < 0.05).mean(),
            rej0_is="size" if abs(mt) < 1e-9 else "power",
            df_min=idf.df.min(),
            df_median=idf.df.median(),
            df_max=idf.df.max(),
            nan_est_se=int(idf.est.isna().sum() + idf.se.isna().sum()),
        )
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--config", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--small-sample", default="cr2", choices=["cr2", "none"])
    ap.add_argument("--out", default=None, help="directory for the CSVs (default: a temp dir)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mc_referee_region_")
    os.makedirs(out, exist_ok=True)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 400)
    t0 = time.perf_counter()
    results = [(tag, run_config(tag, args.reps, args.small_sample, out)) for tag in args.config]
    summ = pd.DataFrame([summarize(tag, d) for tag, d in results])
    print(f"\nnet_region_did, small_sample={args.small_sample!r}:")
    print(summ.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for tag, d in results:
        if (d.ident == 0).any():
            notes = d[d.ident == 0].note.value_counts()
            print(f"\n{tag}: not identified in {int((d.ident == 0).sum())} of {len(d)} worlds:")
            for note, k in notes.items():
                print(f"  {k} x {note}")
        if (d.ident == -1).any():
            print(f"\n{tag}: crashes:")
            for err, k in d[d.ident == -1].err.value_counts().items():
                print(f"  {k} x {err}")
    print(
        f"\n{args.reps} worlds per configuration, small_sample={args.small_sample!r}: "
        f"{time.perf_counter() - t0:.0f} s; CSVs in {out}"
    )


if __name__ == "__main__":
    main()
