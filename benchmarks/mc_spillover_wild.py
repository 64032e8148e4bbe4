"""Monte Carlo of the wild cluster restricted bootstrap for the spillover decomposition.

``SpilloverResult.with_inference("wild")`` (issue 14 item 4) against the default inference
(CR2 scores; t with Bell-McCaffrey degrees of freedom until session 48, the CR2 t's exact
law since session 49) on the same fits:

* null worlds (no zone effect) with region-by-year AR(1) shocks and 8, 12 or 30 regions:
  rejection of ``direct = 0``, ``spillover = 0`` and ``net = 0`` at 1, 5 and 10%;
* a world with displacement share 0.5 and 30 regions (the design of
  ``benchmarks/mc_spillover.py``): coverage of 95% intervals of direct, spillover, net and
  the displacement share (the wild intervals are test inversions).

The 30-region worlds use ``mc_spillover.DESIGN`` (covariate-driven adoption and trends,
estimation with ``covariates=["x"]``); the 8- and 12-region worlds are smaller (10 units
per region, 2002-2012, two waves) and have no covariate.

Run:  python benchmarks/mc_spillover_wild.py [--reps 200] [--worlds null30 share30 null8 null12]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from mc_spillover import DESIGN, truths  # noqa: E402

from zoneimpact.estimators import spillover  # noqa: E402
from zoneimpact.parallel import replicate, set_progress  # noqa: E402
from zoneimpact.simulate import simulate  # noqa: E402

SMALL = dict(first_year=2002, last_year=2012, waves={2006: 0.5, 2009: 0.5}, region_shock_sd=15.0)
WORLDS = {
    "null30": (dict(DESIGN, effect_size=0.0, displacement_share=0.0), ["x"]),
    "share30": (dict(DESIGN, displacement_share=0.5), ["x"]),
    "null8": (dict(SMALL, n_units=80, n_regions=8, effect_size=0.0, displacement_share=0.0), []),
    "null12": (
        dict(SMALL, n_units=120, n_regions=12, effect_size=0.0, displacement_share=0.0),
        [],
    ),
}
QUANTITIES = ("direct", "spillover", "net", "displacement_share")
N_WILD = 399


def one(design: dict, covs: list[str], g: np.random.Generator) -> dict[str, float]:
    sim = simulate(rng=g, **design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", rng=g, covariates=covs, n_boot=999)
        wild = res.with_inference("wild", n_boot=N_WILD, rng=g)
    truth = truths(sim)
    out: dict[str, float] = {}
    for label, r in (("default", res), ("wild", wild)):
        ci, p = r.conf_int(0.05), r.pvalues
        for q in QUANTITIES:
            lo, hi = ci.loc[q, "lower"], ci.loc[q, "upper"]
            out[f"{label}_{q}_cover"] = (
                float(lo <= truth[q] <= hi) if np.isfinite(truth[q]) else np.nan
            )
            out[f"{label}_{q}_p"] = float(p[q])
            out[f"{label}_{q}_width"] = float(hi - lo)
    return out


def summarise(rows: pd.DataFrame, world: str) -> pd.DataFrame:
    recs = []
    for q in QUANTITIES:
        for label in ("default", "wild"):
            p = rows[f"{label}_{q}_p"]
            cover = rows[f"{label}_{q}_cover"]
            recs.append(
                {
                    "world": world,
                    "quantity": q,
                    "inference": label,
                    "reject_1pct": float((p < 0.01).mean()),
                    "reject_5pct": float((p < 0.05).mean()),
                    "reject_10pct": float((p < 0.10).mean()),
                    "coverage_95": float(cover.mean()) if cover.notna().any() else np.nan,
                    "median_width": float(rows[f"{label}_{q}_width"].median()),
                    "n": int(p.notna().sum()),
                }
            )
    return pd.DataFrame(recs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    set_progress(False)
    pd.set_option("display.width", 160)
    for name in args.worlds:
        design, covs = WORLDS[name]
        t0 = time.perf_counter()
        rows = replicate(lambda _i, g, d=design, c=covs: one(d, c, g), args.reps, rng=args.seed)
        table = summarise(pd.DataFrame(rows), name)
        if name.startswith("null"):
            table = table[table["quantity"] != "displacement_share"]
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(
            f"# {name}: {args.reps} replications, {N_WILD} wild draws, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
