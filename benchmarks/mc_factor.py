"""Monte Carlo: counterfactual estimators on factor-model panels (issue 15).

Worlds (``factor_world`` of ``tests/test_ife.py``; 80 units, 30 periods, 24 treated units
adopting in periods 20, 22 and 24, a covariate ``x`` with coefficient 1 correlated with
the first loading, effect ``1 + 0.1 E`` at event time ``E``):

* ``trend`` -- treatment selects on the loading of a trending factor (``f_1t = 3t/T +
  noise``): the treated units' untreated outcomes rise faster, parallel trends fail;
* ``cycle`` -- treatment selects on the loading of a stationary AR(1) factor: parallel
  trends fail only through that factor's level differences before and after adoption;
* ``parallel`` -- no selection on loadings: parallel trends hold (a control world).

Estimators: IFE (``ife.fit``, r by fect's leave-block-out CV, covariate ``x``, unit
bootstrap), matrix completion (``matrix_completion.fit``, lambda by CV, covariate ``x``,
unit bootstrap), TWFE (``twfe.fit``, covariate ``x``, cluster-robust SE) and
Callaway-Sant'Anna (``callaway_santanna.fit``, never-treated controls, no covariates,
analytic SE). The truth is the mean effect over the treated cells (IFE and MC's ``att``,
CS's simple aggregation; TWFE's coefficient weights cells differently, which with
``slope`` = 0.1 moves it by a few hundredths at most).

Printed per world and estimator: bias, its t statistic against the Monte Carlo SE, SD,
RMSE, mean SE / SD and the coverage of the 95% normal interval.

Run: nice -n 10 python benchmarks/mc_factor.py [--world trend|cycle|parallel|all]
     [--reps 200] [--boot 100] [--n-jobs 2] [--seed 20261122]
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
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_ife import factor_world  # noqa: E402

from zoneimpact.estimators import callaway_santanna, ife, twfe  # noqa: E402
from zoneimpact.estimators import matrix_completion as mc  # noqa: E402
from zoneimpact.parallel import replicate, set_progress  # noqa: E402

WORLDS = {
    "trend": dict(selection=1.0, select_factor=0),
    "cycle": dict(selection=1.0, select_factor=1),
    "parallel": dict(selection=0.0),
}
SHAPE = dict(n_units=80, n_periods=30, cohorts=(20, 22, 24), beta=1.0)


def one(world: str, boot: int, g: np.random.Generator) -> list[dict]:
    g_dgp, g_ife, g_mc = g.spawn(3)
    panel, truth = factor_world(g_dgp, **SHAPE, **WORLDS[world])
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {
            "ife": ife.fit(
                panel, outcome="y", covariates="x", rng=g_ife, n_reps=boot, diagnostics=False
            ),
            "mc": mc.fit(
                panel, outcome="y", covariates="x", rng=g_mc, n_reps=boot, diagnostics=False
            ),
            "twfe": twfe.fit(panel, outcome="y", covariates=["x"]),
            "cs": callaway_santanna.fit(panel, outcome="y", bootstrap=False),
        }
    for name, res in fits.items():
        lo, hi = res.conf_int().loc[res.main_term]
        extra = res.info.get("r", res.info.get("rank", np.nan))
        rows.append(
            {
                "estimator": name,
                "error": res.estimate - truth,
                "se": res.se,
                "cover": bool(lo <= truth <= hi),
                "hyper": extra,
            }
        )
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for name, d in df.groupby("estimator", sort=False):
        n = len(d)
        sd = d["error"].std(ddof=1)
        out.append(
            {
                "estimator": name,
                "bias": d["error"].mean(),
                "bias_t": d["error"].mean() / (sd / np.sqrt(n)),
                "sd": sd,
                "rmse": float(np.sqrt(np.mean(d["error"] ** 2))),
                "se/sd": d["se"].mean() / sd,
                "coverage": d["cover"].mean(),
                "r_or_rank": d["hyper"].mean(),
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", default="trend", choices=[*WORLDS, "all"])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--boot", type=int, default=100)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    set_progress(False)
    worlds = list(WORLDS) if a.world == "all" else [a.world]
    for world in worlds:
        k = list(WORLDS).index(world)  # the same draws whether run alone or with "all"
        t = time.perf_counter()
        parts = replicate(
            lambda _i, g, w=world: one(w, a.boot, g),
            a.reps,
            rng=np.random.default_rng([a.seed, k]),
            n_jobs=a.n_jobs,
            desc=world,
        )
        df = pd.DataFrame([row for part in parts for row in part])
        print(
            f"\nworld {world!r}: {a.reps} replications, {a.boot} bootstrap draws "
            f"({time.perf_counter() - t:.0f} s)"
        )
        print(summarise(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
