"""How conservative the default spillover variance is under its own working model.

Under the Bell-McCaffrey working model (independent homoskedastic errors, effects constant
in the ``tau~`` cells) the CR2 variance of a piece has expectation ``sigma^2 tr(C'C)``
(``C`` its vectors, :func:`zoneimpact.estimators._bjs.bm_gram`) and the estimate variance
``sigma^2 ||omega||^2`` (``omega``: its weights on the outcomes), so ``kappa = tr(C'C) /
||omega||^2`` is the estimator's expected excess. For the direct and spillover pieces of
each world this prints the median kappa, SE/SD and coverage of 95% t(BM df) intervals
with the default SE and with SE / sqrt(kappa) (a variance unbiased under the working model).

Run:  python benchmarks/mc_spillover_kappa.py [--reps 300] [--seed 20261208] [--worlds null]
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
from mc_spillover import DESIGN, WORLDS, truths
from scipy import stats

from zoneimpact.estimators import _bjs, spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

PIECES = {"direct": "direct", "spillover:adjacent": "spillover"}


def kappa(res: spillover.SpilloverResult, piece: str) -> float:
    """``tr(C'C) / ||omega||^2`` of one piece under region clusters (the default)."""
    sc = res.fitted.fits[piece].rescore
    fit = _bjs.refactored(sc.fit)
    region = res.fitted.panel.geography["region"]
    cl = np.unique(region.reindex(res.fitted.units).to_numpy()[sc.unit_row], return_inverse=True)
    cluster = cl[1]
    n_cl = int(cluster.max()) + 1
    cells = sc.cells_for(cluster[fit.target])
    M = _bjs.bm_gram(fit, sc.w[:, 0], cells, cluster, n_cl, scale=sc.scale)
    v = _bjs.implied_weights(fit, sc.w)[:, 0]
    return float(np.trace(M) / (v @ v + sc.w[:, 0] @ sc.w[:, 0]))


def one(world: dict, g: np.random.Generator) -> list[dict]:
    sim = simulate(rng=g, **DESIGN, **world)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", rng=g, covariates=["x"], n_boot=0)
    t = res.terms.set_index("term")
    tr = truths(sim)
    return [
        {
            "term": term,
            "err": t.loc[term, "estimate"] - tr[term],
            "se": t.loc[term, "se"],
            "df": t.loc[term, "df"],
            "kappa": kappa(res, piece),
        }
        for piece, term in PIECES.items()
    ]


def summarise(rows: pd.DataFrame, world: str) -> pd.DataFrame:
    out = []
    for term, d in rows.groupby("term"):
        crit = stats.t.ppf(0.975, d["df"])
        se_k = d["se"] / np.sqrt(d["kappa"])
        sd = d["err"].std(ddof=1)
        out.append(
            {
                "world": world,
                "term": term,
                "kappa": d["kappa"].median(),
                "se_sd": d["se"].mean() / sd,
                "se_sd_kappa": se_k.mean() / sd,
                "coverage": np.mean(np.abs(d["err"]) <= crit * d["se"]),
                "coverage_kappa": np.mean(np.abs(d["err"]) <= crit * se_k),
                "n": len(d),
            }
        )
    return pd.DataFrame(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261208)
    ap.add_argument("--worlds", nargs="+", default=["null"], choices=list(WORLDS))
    a = ap.parse_args()
    set_progress(False)
    t0 = time.perf_counter()
    tabs = []
    for name in a.worlds:
        rows = replicate(lambda _i, g, w=WORLDS[name]: one(w, g), a.reps, rng=a.seed)
        tabs.append(summarise(pd.DataFrame([r for rep in rows for r in rep]), name))
    with pd.option_context("display.width", 160):
        print(pd.concat(tabs, ignore_index=True).to_string(index=False, float_format="%.3f"))
    print(f"{a.reps} replications per world, seed {a.seed}: {time.perf_counter() - t0:.0f} s")
