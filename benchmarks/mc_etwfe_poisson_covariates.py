"""Monte Carlo: Poisson ETWFE with a covariate (Wooldridge 2023, Section 6.2) and the
imputation estimator's reclustered variance (``with_inference``), on known-truth panels.

Design A (Poisson ETWFE): counts ``y_it ~ Poisson(a_i exp(eta_it))`` with a unit
multiplier ``a_i ~ Gamma(2, 1/2)`` (mean 1, independent of cohort and covariate), cohort and
year effects, a time-varying covariate ``x`` whose level differs by cohort, year-specific
slopes on ``x``, and a multiplicative effect ``exp(0.2 + 0.15 x)`` on treated rows. Truth:
the overall ATT in levels, the mean over treated rows of ``exp(eta1) - exp(eta0)``. The
model without ``x`` is misspecified (the cohorts' ``x`` paths differ), so it is biased.

Design B (imputation, clustered by region): 40 regions of 5 units, treated by region
(cohorts drawn per region), with a region shock in every year; the unit-clustered
Theorem 3 variance understates the sampling variance, the region-clustered one
(``with_inference(cluster="region")`` on the same fit, no refit) covers.

Run:  python benchmarks/mc_etwfe_poisson_covariates.py [--reps 300]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from zoneimpact.estimators import etwfe, imputation
from zoneimpact.panel import Panel
from zoneimpact.parallel import replicate

YEARS = np.arange(2001, 2009)


def _poisson_panel(rng: np.random.Generator, n: int = 300) -> tuple[Panel, float]:
    T = len(YEARS)
    g_unit = rng.choice([2004, 2006, 0], size=n)
    cohort, year = np.repeat(g_unit, T), np.tile(YEARS, n)
    x = rng.normal(size=n * T) + 0.4 * (cohort == 2004) * (year - 2000) / 4
    d = (cohort > 0) & (year >= cohort)
    slope = np.linspace(-0.2, 0.2, T)[year - YEARS[0]]
    eta0 = 1.5 + 0.04 * (year - 2000) + 0.2 * (cohort == 2004) + slope * x
    eta1 = eta0 + (0.2 + 0.15 * x) * d
    a = np.repeat(rng.gamma(2.0, 0.5, size=n), T)
    y = rng.poisson(a * np.exp(eta1)).astype(float)
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": year, "g": cohort, "y": y, "x": x})
    truth = float(np.mean((np.exp(eta1) - np.exp(eta0))[d]))
    p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["x"])
    return p, truth


def _rep_poisson(item: int, rng: np.random.Generator) -> dict[str, float]:
    p, truth = _poisson_panel(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov = etwfe.fit(p, outcome="y", method="poisson", covariates=["x"])
        plain = etwfe.fit(p, outcome="y", method="poisson")
    return {
        "truth": truth,
        "cov": cov.estimate,
        "cov_se": cov.se,
        "plain": plain.estimate,
        "plain_se": plain.se,
    }


def _rep_cluster(item: int, rng: np.random.Generator) -> dict[str, float]:
    n_regions, per, T = 40, 5, len(YEARS)
    n = n_regions * per
    region = np.repeat(np.arange(n_regions), per)
    # treatment assigned by region, so the region x year shocks are not differenced out
    g_unit = np.repeat(rng.choice([2004, 2006, 0], size=n_regions), per)
    shock = rng.normal(size=(n_regions, T))  # region x year shock, shared by its units
    rows = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": np.tile(YEARS, n)})
    rows["g"] = g_unit[rows["u"]]
    rows["region"] = region[rows["u"]]
    d = (rows["g"] > 0) & (rows["t"] >= rows["g"])
    rows["y"] = (
        rng.normal(size=n)[rows["u"]]
        + 0.1 * (rows["t"] - 2000)
        + shock[rows["region"], rows["t"] - YEARS[0]]
        + 1.0 * d
        + 0.5 * rng.normal(size=len(rows))
    )
    p = Panel.from_frame(
        rows, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["region"]
    )
    res = imputation.fit(p, outcome="y")
    by_region = res.with_inference("cluster", cluster="region")
    return {"est": res.estimate, "se_unit": res.se, "se_region": by_region.se}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    out = pd.DataFrame(
        replicate(_rep_poisson, args.reps, rng=args.seed, n_jobs=args.n_jobs, desc="poisson")
    )
    secs = time.perf_counter() - t0
    print(f"## A. Poisson ETWFE, {args.reps} replications, {secs:.0f} s (seed {args.seed})")
    print(f"mean true overall ATT (levels): {out['truth'].mean():.4f}")
    print("| model | bias | SD | mean SE | SE/SD | 95% coverage |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("cov", "plain"):
        err = out[name] - out["truth"]
        sd = out[name].std(ddof=1)
        cover = np.mean(np.abs(err) <= 1.96 * out[f"{name}_se"])
        label = "with x (covariates=['x'])" if name == "cov" else "without x"
        print(
            f"| {label} | {err.mean():+.4f} | {sd:.4f} | {out[f'{name}_se'].mean():.4f} | "
            f"{out[f'{name}_se'].mean() / sd:.3f} | {cover:.3f} |"
        )

    t0 = time.perf_counter()
    mc = pd.DataFrame(
        replicate(_rep_cluster, args.reps, rng=args.seed + 1, n_jobs=args.n_jobs, desc="bjs")
    )
    secs = time.perf_counter() - t0
    print()
    print(f"## B. Imputation reclustered, {args.reps} replications, {secs:.0f} s (true ATT 1)")
    sd = mc["est"].std(ddof=1)
    print(f"bias {mc['est'].mean() - 1:+.4f}, SD {sd:.4f}")
    print("| variance | mean SE | SE/SD | 95% coverage |")
    print("| --- | --- | --- | --- |")
    for col, label in (("se_unit", "fit, by unit"), ("se_region", "with_inference by region")):
        cover = np.mean(np.abs(mc["est"] - 1) <= 1.96 * mc[col])
        print(f"| {label} | {mc[col].mean():.4f} | {mc[col].mean() / sd:.3f} | {cover:.3f} |")


if __name__ == "__main__":
    main()
