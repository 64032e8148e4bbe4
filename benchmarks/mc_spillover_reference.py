"""Paired Monte Carlo of the spillover terms' t reference in the main design.

Each world of ``mc_spillover.py`` (``zoneimpact.simulate``: 300 units in 30 regions, covariate
trends, region AR(1) shocks) is fitted twice with the default (``covariates=["x"]``, region
clusters, CR2, 999 joint draws, the same bootstrap seed): once with the CR2 t's exact law
(``zoneimpact.estimators._spillover_exact``, the default since session 49) and once with the
Satterthwaite df it falls back on (``_spillover_exact.MAX_COLUMNS = 0``). Estimates and SEs
are the same in both; only ``df`` and so the intervals differ. Per term it prints SE/SD,
the rejection of zero and coverage of 95% intervals under each reference and the normal's
miss rate with the same SEs (``|error / SE| > 1.96``), and the median df.

Run:  python benchmarks/mc_spillover_reference.py WORLD REPS SEED   (WORLD: a key of
      ``mc_spillover.WORLDS``, e.g. null or "share 0.5"); writes paired_<world>_<seed>.csv
      to the current directory. Session 50: null 1500 20265001, "share 0" 400 20265002,
      "share -0.5" 400 20265003, "share 1" 400 20265004, "share 0.5" 400 20265005.
"""

from __future__ import annotations

import os

# one BLAS thread per process, as mc_spillover.py (the replications use the cores)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mc_spillover as mc  # noqa: E402

from zoneimpact.estimators import _spillover_exact, spillover  # noqa: E402
from zoneimpact.parallel import replicate, set_progress  # noqa: E402
from zoneimpact.simulate import simulate  # noqa: E402

TERMS = ("direct", "spillover", "net", "displacement_share")
REFERENCES = {"exact": _spillover_exact.MAX_COLUMNS, "satterthwaite": 0}


def one(world: dict, g: np.random.Generator) -> dict[str, float]:
    sim = simulate(rng=g, **mc.DESIGN, **world)
    seed = int(g.integers(2**31))
    out: dict[str, float] = {}
    for ref, max_columns in REFERENCES.items():
        _spillover_exact.MAX_COLUMNS = max_columns
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = spillover.fit(
                    sim.panel,
                    outcome="fdi",
                    rng=np.random.default_rng(seed),
                    covariates=["x"],
                    n_boot=999,
                )
        finally:
            _spillover_exact.MAX_COLUMNS = REFERENCES["exact"]
        t = r.terms.set_index("term")
        ci = r.conf_int(0.05)
        truth = mc.truths(sim, mc.left_out_years(r.pieces))
        for q in TERMS:
            lo, hi = ci.loc[q, "lower"], ci.loc[q, "upper"]
            out[f"{ref}_{q}_reject0"] = float(not lo <= 0 <= hi)
            out[f"{ref}_{q}_cover"] = float(lo <= truth[q] <= hi)
            out[f"{ref}_{q}_df"] = float(t.loc[q, "df"])
            out[f"{q}_est"] = float(t.loc[q, "estimate"])
            out[f"{q}_se"] = float(t.loc[q, "se"])
            out[f"{q}_truth"] = float(truth[q])
    return out


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    recs = []
    for q in TERMS:
        err = rows[f"{q}_est"] - rows[f"{q}_truth"]
        ok = np.isfinite(err)
        rec = {
            "term": q,
            "truth": float(rows[f"{q}_truth"].mean()),
            "bias": float(err[ok].mean()) if ok.any() else np.nan,
            "se_sd": float(rows[f"{q}_se"][ok].mean() / err[ok].std(ddof=1))
            if ok.sum() > 1
            else np.nan,
            "normal_miss": float((np.abs(err[ok] / rows[f"{q}_se"][ok]) > 1.96).mean())
            if ok.any()
            else np.nan,
        }
        for ref in REFERENCES:
            rec[f"{ref}_reject0"] = float(rows[f"{ref}_{q}_reject0"].mean())
            rec[f"{ref}_cover"] = float(rows[f"{ref}_{q}_cover"][ok].mean()) if ok.any() else np.nan
            rec[f"{ref}_df_median"] = float(rows[f"{ref}_{q}_df"].median())
        recs.append(rec)
    return pd.DataFrame(recs)


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in mc.WORLDS:
        raise SystemExit(f"usage: WORLD REPS SEED, WORLD one of {list(mc.WORLDS)}")
    world, reps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    set_progress(False)
    t0 = time.perf_counter()
    rows = pd.DataFrame(replicate(lambda _i, g: one(mc.WORLDS[world], g), reps, rng=seed))
    rows.to_csv(f"paired_{world.replace(' ', '')}_{seed}.csv", index=False)
    pd.set_option("display.width", 200)
    print(summarise(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{world}: {reps} worlds, seed {seed}, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
