"""Monte Carlo: Sun-Abraham ``with_inference`` clustered on a coarser column (issue 13).

Design: 30 regions of 12 cities, 2001-2008; each region's cities adopt the zone together
(region cohort 2004, 2006 or never, one third each), so treatment varies at the region
level. Outcomes ``y_it = a_i + 0.2 t + v_rt + c_kt + tau_e 1{t >= G_i} + e_it`` with a
region x year shock ``v_rt ~ N(0, 0.8^2)`` (correlated across the cities of a region), a
shock ``c_kt ~ N(0, 0.8^2)`` of 30 "corridors" that cut across regions (each city in one,
at random), ``e_it ~ N(0, 1)`` and ``tau_e = 1 + 0.2 e``, the same in both cohorts, so
every IW event-time effect has the known value ``tau_e`` (0 before treatment) and the ``att`` the
observation-weighted mean of ``tau_e`` over the post-treatment cells of the sample.

Each replication fits once (CR1 clustered by city, the default) and then asks the same
result, without refitting, for covariances clustered by region and two ways by region
and corridor (``with_inference``). Reported per term and clustering: bias, SD, mean
SE / SD and the coverage of the 95% t interval (``G - 1`` df). Clustering by city
ignores the region shocks and under-covers; by region (and two ways) it should cover.
(Year is no useful second dimension here: every cohort x event cell of the saturated
regression lies in one calendar year, so with year effects absorbed its year-clustered
scores vanish (the year-clustered SE of ``event:0`` is ~1e-15 on this balanced design)
and the two-way sum loses the region part; CGM's two-way estimator needs many clusters
in both dimensions, not 8 years.)

Also timed: ``with_inference(cluster="region")`` against a refit with
``cluster="region"`` on 20,000 cities x 10 years.

Run:  python benchmarks/mc_sa_inference.py [reps]   (default 1000)
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time

import numpy as np
import pandas as pd

from zoneimpact import Panel
from zoneimpact.estimators import sun_abraham
from zoneimpact.parallel import replicate, set_progress

YEARS = np.arange(2001, 2009)
TERMS = ("event:-3", "event:0", "event:2", "att")
CLUSTERINGS = ("city (fit)", "region", "region + corridor")


def region_panel(
    rng: np.random.Generator,
    n_regions: int = 30,
    per_region: int = 12,
    years: np.ndarray = YEARS,
    n_corridors: int = 30,
) -> Panel:
    """One draw of the design in the module docstring."""
    n, T = n_regions * per_region, len(years)
    region = np.repeat(np.arange(n_regions), per_region)
    cohort = rng.choice([2004, 2006, 0], size=n_regions)[region]
    unit, year = np.repeat(np.arange(n), T), np.tile(years, n)
    g, r = np.repeat(cohort, T), np.repeat(region, T)
    d = (g > 0) & (year >= g)
    tau = np.where(d, 1.0 + 0.2 * (year - g), 0.0)
    k = np.repeat(rng.integers(0, n_corridors, size=n), T)
    shock = rng.normal(scale=0.8, size=(n_regions, T))[r, year - years[0]]
    shock = shock + rng.normal(scale=0.8, size=(n_corridors, T))[k, year - years[0]]
    y = np.repeat(rng.normal(size=n), T) + 0.2 * (year - years[0]) + shock + tau
    y = y + rng.normal(size=n * T)
    df = pd.DataFrame({"city": unit, "year": year, "g": g, "y": y, "region": r, "corridor": k})
    return Panel.from_frame(
        df, unit="city", time="year", cohort="g", outcomes=["y"], covariates=["region", "corridor"]
    )


def truth(res: sun_abraham.SunAbrahamResult) -> dict[str, float]:
    """The IW estimand of each reported term in this sample (``tau_e``; ``att``: the
    observation-weighted mean of ``tau_e`` over post cells)."""
    ce = res.cohort_effects
    tau = np.where(ce["event"] >= 0, 1.0 + 0.2 * ce["event"], 0.0)
    post = (ce["event"] >= 0).to_numpy()
    att = float(tau[post] @ ce["n_obs"][post] / ce["n_obs"][post].sum())
    out = {f"event:{e}": (1.0 + 0.2 * e if e >= 0 else 0.0) for e in ce["event"].unique()}
    return {**out, "att": att}


def one(_: int, rng: np.random.Generator) -> list[float]:
    res = sun_abraham.fit(region_panel(rng), outcome="y")
    fits = (
        res,
        res.with_inference(cluster="region"),
        res.with_inference(cluster=["region", "corridor"]),
    )
    true = truth(res)
    out = []
    for r in fits:
        ci = r.conf_int()
        t = r.terms.set_index("term")
        for term in TERMS:
            lo, hi = ci.loc[term].to_numpy(float)[:2]
            out += [t.loc[term, "estimate"] - true[term], t.loc[term, "se"], lo <= true[term] <= hi]
    return out


def run(reps: int, seed: int = 13) -> pd.DataFrame:
    res = np.array(replicate(one, reps, rng=np.random.default_rng(seed), desc="SA inference MC"))
    rows = []
    k = 0
    for cl in CLUSTERINGS:
        for term in TERMS:
            err, se, cover = res[:, 3 * k], res[:, 3 * k + 1], res[:, 3 * k + 2]
            sd = err.std(ddof=1)
            rows.append(
                {
                    "clustering": cl,
                    "term": term,
                    "bias": err.mean(),
                    "sd": sd,
                    "se_sd": np.nanmean(se) / sd,
                    "coverage": cover.mean(),
                }
            )
            k += 1
    return pd.DataFrame(rows)


def timing(n_regions: int = 2_000, per_region: int = 10) -> str:
    years = np.arange(2001, 2011)
    p = region_panel(np.random.default_rng(0), n_regions, per_region, years)
    t0 = time.perf_counter()
    res = sun_abraham.fit(p, outcome="y")
    t1 = time.perf_counter()
    again = res.with_inference(cluster="region")
    t2 = time.perf_counter()
    refit = sun_abraham.fit(p, outcome="y", cluster="region")
    t3 = time.perf_counter()
    gap = np.abs(again.terms["se"] - refit.terms["se"]).max()
    return (
        f"{n_regions * per_region:,} cities x {len(years)} years: fit {t1 - t0:.2f} s, "
        f"with_inference(cluster='region') {t2 - t1:.2f} s, refit with cluster='region' "
        f"{t3 - t2:.2f} s; largest SE difference {gap:.1e}"
    )


if __name__ == "__main__":
    set_progress(False)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t0 = time.perf_counter()
    table = run(reps)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{reps} replications, {time.perf_counter() - t0:.0f} s")
    print(timing())
