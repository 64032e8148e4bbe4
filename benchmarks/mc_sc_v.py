"""Synthetic control's V rule on the ADH-style factor panels: nested against optimistic.

The panels are ``bench_sc_fit.adh_panel(seed)``: 1 treated x 38 donors x 31 years
(treatment 1989), the ADH (2010, eq. 5) factor model with two observed covariates, the
treated unit a mix of four donors, and **no treatment effect**, so the post-period mean gap
(``att``) is pure error. Predictors as ADH's Table 1 (both covariates averaged over
1980-1988, the outcome in 1975, 1980 and 1988), fit window 1970-1988. For each seed it fits
``v="nested"`` (the default: V bounded away from zero, R Synth's ADH replication) and
``v="optimistic"`` (Malo et al. 2024: the best-fitting tied W where V sits on the simplex
boundary), and prints per seed the pre-period RMSPE and att of each, then the mean
pre-RMSPE, the RMSE and mean |att| (truth 0) and the share of seeds where each is closer
to the truth. zoneimpact only (the peers' fits on seeds 0-4 are in ``bench_sc_fit.py``).

Run:  python benchmarks/mc_sc_v.py [--seeds 30]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_sc_fit import ADH_PREDICTORS, adh_panel  # noqa: E402

from zoneimpact.estimators import synthetic_control as sc  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.parallel import set_progress  # noqa: E402


def one(seed: int) -> list[dict]:
    df = adh_panel(seed)
    p = Panel.from_frame(
        df, unit="unit", time="year", outcomes="y", cohort="first", covariates=["x1", "x2"]
    )
    rows = []
    for v in ("nested", "optimistic"):
        r = sc.fit(
            p,
            outcome="y",
            placebos=False,
            predictors=ADH_PREDICTORS,
            fit_window=[1970, 1988],
            v=v,
            rng=np.random.default_rng(1),
        )
        rows.append({"seed": seed, "v": v, "pre_rmspe": r.info["pre_rmspe"], "att": r.estimate})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    set_progress(False)
    t0 = time.perf_counter()
    rows = [r for s in range(args.seeds) for r in one(s)]
    wide = pd.DataFrame(rows).pivot(index="seed", columns="v")
    pd.set_option("display.width", 120)
    print(wide.round(3).to_string())
    att = wide["att"]
    print("mean pre-RMSPE:", wide["pre_rmspe"].mean().round(3).to_dict())
    print("RMSE of att (truth 0):", np.sqrt((att**2).mean()).round(3).to_dict())
    print("mean |att|:", att.abs().mean().round(3).to_dict())
    closer = (att["optimistic"].abs() < att["nested"].abs()).mean()
    better = (wide["pre_rmspe"]["optimistic"] <= wide["pre_rmspe"]["nested"] + 1e-9).mean()
    print(
        f"optimistic closer to the truth in {closer:.0%} of seeds; fits at least as well in {better:.0%}"
    )
    print(f"{args.seeds} seeds: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
