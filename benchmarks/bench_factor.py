"""Counterfactual estimators at scale: IFE and matrix completion on 1,000 units x 30 periods.

The target of issue 15: interactive fixed effects with r chosen by cross-validation and
200 bootstrap draws on 1,000 units x 30 periods in under 30 seconds on this 2-core
machine; matrix completion measured on the same panel. The panel is ``factor_world``
(``tests/test_ife.py``): two factors, 100 treated units adopting in periods 20, 22 and
24, treatment selected on the trending factor's loading.

Printed for each configuration: wall time of the whole ``fit`` call (cross-validation,
point estimate, bootstrap and, unless switched off, the diagnostics: out-of-sample
pre-treatment errors refitted in every bootstrap draw, the placebo test and the
leave-one-out ATTs), the chosen ``r`` / ``lambda``, the ATT and its SE against the truth,
and the load average of the machine (other jobs share it: compare with care). No peer runs
here (no Python package fits IFE or matrix completion with this inference), so each fit's
ratio line says "no peer" and gives zoneimpact / floor; the floor (``_floor.matrix_floor``
on ``panel.wide("y")``: the outcome read into the units x periods matrix, then column
means, row sums and one matrix-vector product) is timed once before the fits.

Run: python benchmarks/bench_factor.py [--n-jobs 2] [--reps 200] [--seed 20261122]
     [--skip-mc]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import matrix_floor, ratio_line, time_floor  # noqa: E402
from test_ife import factor_world  # noqa: E402

from zoneimpact.estimators import ife  # noqa: E402
from zoneimpact.estimators import matrix_completion as mc  # noqa: E402
from zoneimpact.parallel import set_progress  # noqa: E402

warnings.filterwarnings("ignore")
set_progress(False)


def run(label: str, fit, panel, truth: float, floor_s: float, **opts) -> None:
    t = time.perf_counter()
    res = fit(panel, outcome="y", **opts)
    dt = time.perf_counter() - t
    hyper = f"r={res.info['r']}" if "r" in res.info else f"lambda={res.info['lambda']:.3g}"
    load = os.getloadavg()[0]
    print(
        f"{label:<44} {dt:7.1f} s   {hyper:<14} ATT {res.estimate:7.3f} (SE {res.se:.3f}; "
        f"truth {truth:.3f})   load {load:.1f}",
        flush=True,
    )
    print("  " + ratio_line(label, dt, {}, floor_s), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--skip-mc", action="store_true")
    a = ap.parse_args()
    panel, truth = factor_world(
        np.random.default_rng(a.seed),
        n_units=1000,
        n_periods=30,
        treated_share=0.1,
        cohorts=(20, 22, 24),
    )
    print(
        f"panel: 1,000 units x 30 periods, 100 treated; {a.reps} bootstrap draws, n_jobs={a.n_jobs}"
    )
    floor_s = time_floor(lambda: matrix_floor(panel.wide("y").to_numpy(float)))
    common = dict(rng=1, n_reps=a.reps, n_jobs=a.n_jobs)  # the same draws for every fit
    # warm the joblib workers (their start-up is not the estimator's time)
    ife.fit(panel, outcome="y", r=1, n_reps=4, n_jobs=a.n_jobs, diagnostics=False)
    run("IFE, CV over r=0..5, bootstrap, diagnostics", ife.fit, panel, truth, floor_s, **common)
    run(
        "IFE, CV over r=0..5, bootstrap, no diagnostics",
        ife.fit,
        panel,
        truth,
        floor_s,
        diagnostics=False,
        **common,
    )
    if not a.skip_mc:
        run(
            "MC, CV over 10 lambdas, bootstrap, diagnostics",
            mc.fit,
            panel,
            truth,
            floor_s,
            **common,
        )
        run(
            "MC, CV over 10 lambdas, bootstrap, no diagnostics",
            mc.fit,
            panel,
            truth,
            floor_s,
            diagnostics=False,
            **common,
        )


if __name__ == "__main__":
    main()
