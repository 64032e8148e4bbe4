"""Monte Carlo of TWFE's Conley SEs (``with_inference("conley")``) with few regional shocks.

World: G regions (8 or 12) on a grid of centres 400 km apart around (30N, 110E), 200 units
scattered around the centres (SD 70 km), years 2001-2016. Region-year AR(1) shocks (rho
0.5, stationary SD 3), unit noise SD 3, unit effects N(20, 5), a common trend; 40 zones
drawn at random (not on any covariate, so the static TWFE is unbiased) into the waves
2005, 2009 and 2013. No zone effect (the null), so every rejection is a false one.

Each replication fits the static TWFE clustered by region (CR1, t(G - 1)) and re-does its
inference with Conley SEs (uniform kernel, the default; cutoffs ``--conley-km``). It
reports SE/SD, the rejection rate at 5% under the reported reference distribution (Conley:
the normal) and under t(G - 1), and the median df. This measures the normal reference that
TWFE's Conley SEs keep (the spillover decomposition's Conley SEs take Satterthwaite df).

Run:  python benchmarks/mc_twfe_conley.py [--reps 400] [--regions 8 12]
      [--conley-km 300 600] [--seed 7000]
"""

from __future__ import annotations

import os

# one BLAS thread per process, like the other Monte Carlo scripts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from zoneimpact.estimators import twfe
from zoneimpact.panel import Panel

YEARS = np.arange(2001, 2017)
KM_LAT = 111.2


def draw_panel(rng: np.random.Generator, n_regions: int, n_units: int = 200) -> Panel:
    """One null world (module docstring) as a Panel with lat/lon and region."""
    ncol = int(np.ceil(np.sqrt(n_regions)))
    km_lon = KM_LAT * np.cos(np.radians(30))
    centres = np.array(
        [
            (30 + (g // ncol) * 400 / KM_LAT, 110 + (g % ncol) * 400 / km_lon)
            for g in range(n_regions)
        ]
    )
    region = rng.integers(0, n_regions, n_units)
    region[:n_regions] = np.arange(n_regions)  # every region present
    lat = centres[region, 0] + rng.normal(0, 70, n_units) / KM_LAT
    lon = centres[region, 1] + rng.normal(0, 70, n_units) / km_lon
    n_t, rho, sd = len(YEARS), 0.5, 3.0
    shock = np.zeros((n_regions, n_t))
    shock[:, 0] = rng.normal(0, sd, n_regions)
    for t in range(1, n_t):
        shock[:, t] = rho * shock[:, t - 1] + rng.normal(0, sd * np.sqrt(1 - rho**2), n_regions)
    cohort = np.full(n_units, np.nan)
    zones = rng.choice(n_units, 40, replace=False)
    cohort[zones] = rng.choice([2005, 2009, 2013], len(zones))
    y = (
        rng.normal(20, 5, n_units)[:, None]
        + 0.3 * np.arange(n_t)[None, :]
        + shock[region]
        + rng.normal(0, 3.0, (n_units, n_t))
    )
    frame = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_t),
            "year": np.tile(YEARS, n_units),
            "y": y.ravel(),
            "cohort": np.repeat(cohort, n_t),
        }
    )
    geo = pd.DataFrame({"unit": np.arange(n_units), "lat": lat, "lon": lon, "region": region})
    return Panel.from_frame(
        frame, unit="unit", time="year", cohort="cohort", outcomes=["y"], geography=geo
    )


def one(seed: int, n_regions: int, cutoffs: list[float]) -> dict[str, float]:
    """Estimate, SE and df of the clustered fit and of each Conley cutoff."""
    panel = draw_panel(np.random.default_rng(seed), n_regions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = twfe.fit(panel, outcome="y", cluster="region")
        out = {"estimate": res.terms["estimate"].iloc[0]}
        out |= {"se_cluster": res.terms["se"].iloc[0], "df_cluster": res.terms["df"].iloc[0]}
        for km in cutoffs:
            con = res.with_inference("conley", conley_km=km)
            out[f"se_conley{km:g}"] = con.terms["se"].iloc[0]
            out[f"df_conley{km:g}"] = con.terms["df"].iloc[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--regions", type=int, nargs="+", default=[8, 12])
    ap.add_argument("--conley-km", type=float, nargs="+", default=[300.0, 600.0])
    ap.add_argument("--seed", type=int, default=7000, help="replication i has seed + i")
    args = ap.parse_args()
    recs = []
    for g in args.regions:
        t0 = time.time()
        rows = pd.DataFrame([one(args.seed + i, g, args.conley_km) for i in range(args.reps)])
        sd = rows["estimate"].std(ddof=1)  # the truth is 0
        for name in ["cluster"] + [f"conley{km:g}" for km in args.conley_km]:
            t = rows["estimate"].abs() / rows[f"se_{name}"]
            df = rows[f"df_{name}"]
            recs.append(
                {
                    "regions": g,
                    "SE": name,
                    "SE/SD": rows[f"se_{name}"].mean() / sd,
                    "reject (reported df)": (t > stats.t.ppf(0.975, df)).mean(),
                    "reject t(G-1)": (t > stats.t.ppf(0.975, g - 1)).mean(),
                    "median df": df.median(),
                }
            )
        print(f"{g} regions: {args.reps} replications in {time.time() - t0:.0f} s", flush=True)
    print(pd.DataFrame(recs).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
