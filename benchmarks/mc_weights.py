"""Monte Carlo: sampling weights recover the population ATT (issue 16, item 1).

Design: an infinite population of cities, 30% of "type 1" whose zone effect is 2 against
1 for the others (so the population ATT is 1.3), cohorts 2004 / 2006 / never treated
independent of type, unit effects, a common trend and i.i.d. N(0, 1) noise, 2001-2008.
Each replication draws a sample of 200 cities in which type-1 cities are over-sampled
(inclusion probability 0.8 against 0.2; about 63% of the sample), and gives each the
sampling weight 1 / probability. Unweighted estimators then estimate the sample's ATT
(about 1.63); weighted ones the population's 1.3. Reported: bias, SD, mean SE / SD and
the coverage of the 95% interval for the weighted Callaway-Sant'Anna (analytic SEs),
ETWFE and TWFE estimators.

Run:  python benchmarks/mc_weights.py [reps]   (default 500)
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
import warnings

import numpy as np
import pandas as pd

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna, etwfe, twfe
from zoneimpact.parallel import replicate, set_progress

TRUTH = 1.3


def sample_panel(rng: np.random.Generator, n: int = 200) -> Panel:
    """One weighted sample from the population described in the module docstring."""
    p1 = 0.3 * 0.8 / (0.3 * 0.8 + 0.7 * 0.2)  # share of type 1 among sampled cities
    typ = rng.random(n) < p1
    w = np.where(typ, 1 / 0.8, 1 / 0.2)
    cohort = rng.choice([2004, 2006, 0], size=n)
    years = np.arange(2001, 2009)
    T = len(years)
    unit = np.repeat(np.arange(n), T)
    year = np.tile(years, n)
    g = np.repeat(cohort, T)
    d = (g > 0) & (year >= g)
    tau = np.repeat(np.where(typ, 2.0, 1.0), T)
    y = np.repeat(rng.normal(size=n), T) + 0.2 * (year - 2000) + tau * d + rng.normal(size=n * T)
    df = pd.DataFrame({"u": unit, "t": year, "g": g, "y": y, "w": np.repeat(w, T)})
    return Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["w"])


def one(_: int, rng: np.random.Generator) -> list[float]:
    p = sample_panel(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = []
        for r in (
            callaway_santanna.fit(p, outcome="y", weights="w", bootstrap=False),
            etwfe.fit(p, outcome="y", weights="w"),
            twfe.fit(p, outcome="y", weights="w"),
            callaway_santanna.fit(p, outcome="y", bootstrap=False),
        ):
            out += [r.estimate, r.se]
    return out


def run(reps: int, seed: int = 16) -> pd.DataFrame:
    res = np.array(replicate(one, reps, rng=np.random.default_rng(seed), desc="weights MC"))
    rows = []
    for k, name in enumerate(("CS weighted", "ETWFE weighted", "TWFE weighted", "CS unweighted")):
        est, se = res[:, 2 * k], res[:, 2 * k + 1]
        sd = est.std(ddof=1)
        rows.append(
            {
                "estimator": name,
                "bias": est.mean() - TRUTH,
                "mc_se": sd / np.sqrt(reps),
                "sd": sd,
                "se_sd": se.mean() / sd,
                "coverage": np.mean(np.abs(est - TRUTH) <= 1.959964 * se),
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    set_progress(False)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    t0 = time.perf_counter()
    table = run(reps)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{reps} replications, {time.perf_counter() - t0:.0f} s")
