"""Monte Carlo: augmented SC inference after the fit (issue 13, ``with_inference``).

DGP: the two-factor model of ``tests/test_synthetic_did.py::factor_panel`` (30 donors, 30
periods, treatment from period 20, the treated unit's loadings the average of three
donors', iid N(0, 1) noise, constant true effect 5), one treated unit.

For each panel, ridge augmented SC (Ben-Michael, Feller & Rothstein 2021; lambda by
cross-validation) is fitted once with ``se=False``; then, without refitting,
``with_inference("jackknife")`` (R augsynth's unit jackknife SE, normal 95% interval) and
``with_inference("jackknife+")`` (R augsynth's ``time_jackknife_plus``: intervals for each
post period and for the average effect). Printed: bias of the ATT, its SD, the mean
jackknife SE / SD, and for each interval its coverage of the truth and mean width. The
jackknife+ over time has coverage of at least 1 - 2 alpha under exchangeable errors
(Barber et al. 2021); R augsynth's non-conservative version uses the alpha/2 and 1 - alpha/2
quantiles.

Run: nice -n 10 python benchmarks/mc_asc_jackknife_plus.py [--reps 500] [--seed 13]
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
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_synthetic_did import factor_panel  # noqa: E402

from zoneimpact.estimators import augmented_sc  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.parallel import replicate, set_progress  # noqa: E402

EFFECT = 5.0


def one(_i: int, rng: np.random.Generator) -> dict[str, float]:
    df = factor_panel(rng, n_donors=30, n_treated=1, T=30, T0=20, effect=EFFECT)
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    res = augmented_sc.fit(p, outcome="y", se=False)
    jk = res.with_inference("jackknife")
    jp = res.with_inference("jackknife+")
    ci = jk.conf_int().loc["att"]
    tab = jp.prediction_intervals
    per = tab[tab["term"] != "att"]
    att = tab[tab["term"] == "att"].iloc[0]
    return {
        "att": res.estimate,
        "se_jk": jk.se,
        "cover_jk": float(ci["lower"] <= EFFECT <= ci["upper"]),
        "width_jk": float(ci["upper"] - ci["lower"]),
        "cover_jp_att": float(att["low"] <= EFFECT <= att["high"]),
        "width_jp_att": float(att["high"] - att["low"]),
        "cover_jp_period": float(((per["low"] <= EFFECT) & (EFFECT <= per["high"])).mean()),
        "width_jp_period": float((per["high"] - per["low"]).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args()
    set_progress(False)
    t0 = time.perf_counter()
    rows = pd.DataFrame(replicate(one, args.reps, rng=args.seed, n_jobs=args.n_jobs))
    sd = rows["att"].std(ddof=1)
    print(f"{args.reps} replications, seed {args.seed}, {time.perf_counter() - t0:.0f} s")
    print(
        f"ATT: truth {EFFECT}, bias {rows['att'].mean() - EFFECT:+.4f} (MC SE {sd / np.sqrt(len(rows)):.4f}), SD {sd:.4f}"
    )
    print(
        f"jackknife SE: mean {rows['se_jk'].mean():.4f}, mean SE / SD {rows['se_jk'].mean() / sd:.3f}"
    )
    out = pd.DataFrame(
        {
            "coverage": [
                rows["cover_jk"].mean(),
                rows["cover_jp_att"].mean(),
                rows["cover_jp_period"].mean(),
            ],
            "mean width": [
                rows["width_jk"].mean(),
                rows["width_jp_att"].mean(),
                rows["width_jp_period"].mean(),
            ],
        },
        index=[
            "jackknife SE, normal 95% (att)",
            "jackknife+ 95% (att)",
            "jackknife+ 95% (each post period)",
        ],
    )
    print(out.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
