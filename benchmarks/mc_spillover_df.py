"""Which t degrees of freedom do the spillover decomposition's CR2 intervals need?

Draws the worlds of ``mc_spillover.py`` (optionally another design, as its ``--design``),
fits the default (imputation base, CR2 scores) and records each term's t statistic against
the truth and its Bell-McCaffrey df. Reports coverage of 95% intervals with three critical
values on the same SEs: t(Bell-McCaffrey df) (the default), t(G - 1) and the normal, and the
share of |t| above each in the null world.

Run:  python benchmarks/mc_spillover_df.py [--reps 300] [--seed 20261204]
      [--worlds 'share 1' null] [--design n_regions=15 ...]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import warnings

import numpy as np
import pandas as pd
from mc_spillover import WORLDS, design_from, truths
from scipy import stats

from zoneimpact.estimators import spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

TERMS = ("direct", "spillover", "net")


def one(world: dict, design: dict, g: np.random.Generator) -> dict[str, float]:
    sim = simulate(rng=g, **design, **world)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = spillover.fit(sim.panel, outcome="fdi", rng=g, covariates=["x"], n_boot=0)
    t, truth = r.terms.set_index("term"), truths(sim)
    out = {"G": float(r.info["n_clusters"])}
    for q in TERMS:
        out[f"{q}_t"] = (t.loc[q, "estimate"] - truth[q]) / t.loc[q, "se"]
        out[f"{q}_df"] = t.loc[q, "df"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--worlds", nargs="+", default=["share 1", "null"], choices=list(WORLDS))
    ap.add_argument("--design", nargs="+", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args()
    design = design_from(args.design)
    set_progress(False)
    recs = []
    for name in args.worlds:
        rows = pd.DataFrame(
            replicate(lambda _i, g, w=WORLDS[name]: one(w, design, g), args.reps, rng=args.seed)
        )
        for q in TERMS:
            a = rows[f"{q}_t"].abs()
            crit = {
                "t(BM df)": stats.t.ppf(0.975, rows[f"{q}_df"]),
                "t(G-1)": stats.t.ppf(0.975, rows["G"] - 1),
                "normal": np.full(len(rows), stats.norm.ppf(0.975)),
            }
            rec = {"world": name, "term": q, "BM df (median)": rows[f"{q}_df"].median()}
            rec |= {f"cover {k}": float((a <= c).mean()) for k, c in crit.items()}
            recs.append(rec)
    pd.set_option("display.width", 160)
    print(pd.DataFrame(recs).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{args.reps} replications per world, seed {args.seed}, design changes {args.design}")


if __name__ == "__main__":
    main()
