"""Monte Carlo of the event study in first differences (issue 16 item 2; Schmidheiny &
Siegloch 2023), next to the levels (TWFE) event study on the same panels.

Design: 80 units x 10 years, cohorts 2004 / 2006 / never (equal odds), homogeneous
dynamic effects 0 before the opening, 1.0 at e = 0, 1.5 at e = 1, 2.0 from e = 2 on (so
the binned endpoints of the window [-3, 2] hold), a unit effect and a common trend. Two
error processes: a random walk (FD is efficient, Wooldridge 2010 Section 10.7.1) and iid
(levels are efficient). Both estimators use ``leads=3, lags=2, bin_endpoints=True`` and
unit-clustered CR1 standard errors. Reported per coefficient: bias, SD, mean SE / SD,
95% coverage; for the leads (true 0) the 5% rejection rate.

Run: ``python benchmarks/mc_fd_event_study.py [--reps 500] [--n-jobs 1]``; the output of
the full run is pasted in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import pandas as pd

from zoneimpact import Panel
from zoneimpact.estimators import first_difference, twfe
from zoneimpact.parallel import replicate

TRUTH = {-3: 0.0, -2: 0.0, 0: 1.0, 1: 1.5, 2: 2.0, "att": 1.5}
N_UNITS, N_YEARS = 80, 10


def _panel(rng: np.random.Generator, errors: str) -> Panel:
    unit = np.repeat(np.arange(N_UNITS), N_YEARS)
    year = np.tile(np.arange(2000, 2000 + N_YEARS), N_UNITS)
    cohort = np.repeat(rng.choice([2004, 2006, 0], size=N_UNITS), N_YEARS)
    e = np.where(cohort > 0, year - cohort, -99)
    effect = np.select([e >= 2, e == 1, e == 0], [2.0, 1.5, 1.0], 0.0)
    shocks = rng.normal(size=(N_UNITS, N_YEARS))
    noise = (shocks.cumsum(axis=1) if errors == "random_walk" else shocks).ravel()
    y = np.repeat(rng.normal(size=N_UNITS), N_YEARS) + 0.3 * (year - 2000) + effect + noise
    df = pd.DataFrame({"u": unit, "t": year, "g": cohort, "y": y})
    return Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"])


def _one(errors: str):
    def run(_: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        p = _panel(rng, errors)
        out = {}
        for name, fit in (
            ("first differences", first_difference.fit_event_study),
            ("levels (TWFE)", twfe.fit_event_study),
        ):
            t = fit(p, outcome="y", leads=3, lags=2, bin_endpoints=True).terms.set_index("term")
            keys = [f"event:{k}" if k != "att" else "att" for k in TRUTH]
            out[name] = t.loc[keys, ["estimate", "se"]].to_numpy()
        return out

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2016)
    args = ap.parse_args()
    true = np.array(list(TRUTH.values()))
    for errors in ("random_walk", "iid"):
        t0 = time.perf_counter()
        draws = replicate(_one(errors), args.reps, rng=args.seed, n_jobs=args.n_jobs, desc=errors)
        print(
            f"\n### errors: {errors}, {args.reps} replications, {time.perf_counter() - t0:.0f} s\n"
        )
        print("| estimator | term | truth | bias | SD | SE/SD | coverage 95% | reject 5% |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in ("first differences", "levels (TWFE)"):
            arr = np.stack([d[name] for d in draws])  # reps x terms x (est, se)
            est, se = arr[:, :, 0], arr[:, :, 1]
            sd = est.std(axis=0, ddof=1)
            cover = (np.abs(est - true) <= 1.96 * se).mean(axis=0)
            reject = (np.abs(est / se) > 1.96).mean(axis=0)
            for j, k in enumerate(TRUTH):
                term = "att" if k == "att" else f"event:{k}"
                rej = f"{reject[j]:.3f}" if true[j] == 0 else ""
                print(
                    f"| {name} | {term} | {true[j]:g} | {est[:, j].mean() - true[j]:+.4f} | "
                    f"{sd[j]:.4f} | {se[:, j].mean() / sd[j]:.3f} | {cover[j]:.3f} | {rej} |"
                )


if __name__ == "__main__":
    main()
