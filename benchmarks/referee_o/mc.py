"""Monte Carlo of the default spillover fit in referee O's world.

Run from a scratch directory (CSVs go to the current working directory):

    python /work/main/benchmarks/referee_o/mc.py WORLD NREP SUFFIX [START]

WORLD in null, s-0.5, s0, s0.5. Replication r uses ``sim.replication_rng(WORLD, r)`` and
the fit's bootstrap ``rng=r``. One row per replication and term, appended as it finishes,
to ``mc_WORLD_SUFFIX.csv``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim  # noqa: E402


def one(world: str, rep: int) -> pd.DataFrame:
    frame, truth = sim.simulate(world, rep)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res, _ = sim.fit(frame, seed=rep)
    secs = time.perf_counter() - t0
    terms = res.terms.copy()
    terms = terms[terms["term"] != "att"]
    terms["truth"] = [truth.get(t.split(":")[0], np.nan) for t in terms["term"]]
    terms["world"] = world
    terms["rep"] = rep
    terms["seconds"] = secs
    terms["n_clean_units"] = truth["_n_clean_units"]
    terms["warnings"] = " | ".join(sorted({str(w.message)[:160] for w in caught}))
    cols = ["world", "rep", "term", "estimate", "se", "df", "ci_low", "ci_high", "p_value"]
    return terms[cols + ["truth", "seconds", "n_clean_units", "warnings"]]


def main(world: str, nrep: int, suffix: str, start: int = 0) -> None:
    out = Path.cwd() / f"mc_{world}_{suffix}.csv"
    for rep in range(start, start + nrep):
        rows = one(world, rep)
        rows.to_csv(out, mode="a", header=not out.exists(), index=False)
        if rep % 20 == 0:
            print(f"{world} rep {rep} {rows['seconds'].iloc[0]:.2f}s", flush=True)


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]) if len(sys.argv) > 4 else 0,
    )
