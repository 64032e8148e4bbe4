"""Monte Carlo: coverage of SCPI prediction intervals (Cattaneo, Feng & Titiunik 2021) and
SDID with time-varying covariates (Arkhangelsky et al. 2021, Section 8).

1. SCPI: factor-model panels of ``tests/test_scpi.py::factor_world`` (10 donors, 20
   pre-periods, 3 post-periods, the treated unit a convex combination of three donors'
   loadings plus noise, no effect); coverage of the true ``Y(0)`` by the 90%-guaranteed
   interval (alpha = 0.05 in-sample + 0.05 out-of-sample), per period and for the average,
   for each out-of-sample model.
2. SDID with covariates: panels of ``tests/test_sdid_covariates.py::covariate_panel`` (a
   covariate trending faster in the treated units drives the outcome); bias and SD of
   SDID without and with the covariate, truth 3.

Run: ``python benchmarks/mc_scpi.py [n_scpi] [n_sdid]`` (defaults 200 and 400); paste the
output in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_scpi import factor_world  # noqa: E402
from test_sdid_covariates import _panel, covariate_panel  # noqa: E402

from zoneimpact.estimators import synthetic_did  # noqa: E402
from zoneimpact.inference.scpi import scpi_intervals  # noqa: E402
from zoneimpact.parallel import set_progress  # noqa: E402

set_progress(False)


def scpi_coverage(n: int) -> pd.DataFrame:
    rows = []
    for k in range(n):
        panel, truth = factor_world(np.random.default_rng(10_000 + k))
        full = scpi_intervals(panel, outcome="y", sims=200, rng=k).table
        for method in ("gaussian", "ls", "qreg"):
            # the in-sample bounds do not depend on the out-of-sample model: reuse them
            e = scpi_intervals(panel, outcome="y", sims=10, rng=k, e_method=method).table
            base = full["synthetic"] + full["in_low"], full["synthetic"] + full["in_high"]
            t = pd.DataFrame(
                {
                    "term": full["term"],
                    "cf_low": base[0] + e["e_low"],
                    "cf_high": base[1] + e["e_high"],
                }
            )
            target = np.append(truth, truth.mean())
            hit = (t["cf_low"] <= target) & (target <= t["cf_high"])
            for term, h, w in zip(t["term"], hit, t["cf_high"] - t["cf_low"], strict=True):
                rows.append((method, "att" if term == "att" else "period", bool(h), float(w)))
    df = pd.DataFrame(rows, columns=["e_method", "target", "covered", "width"])
    return df.groupby(["e_method", "target"]).agg(
        coverage=("covered", "mean"), mean_width=("width", "mean"), n=("covered", "size")
    )


def sdid_bias(n: int) -> pd.DataFrame:
    est = {"without covariates": [], "with covariates": []}
    for k in range(n):
        p = _panel(covariate_panel(np.random.default_rng(50_000 + k)))
        est["without covariates"].append(synthetic_did.fit(p, outcome="y", se_method=None).estimate)
        est["with covariates"].append(
            synthetic_did.fit(p, outcome="y", se_method=None, covariates=["x"]).estimate
        )
    out = {}
    for name, v in est.items():
        v = np.asarray(v)
        out[name] = {
            "bias": v.mean() - 3.0,
            "sd": v.std(ddof=1),
            "mc_se_of_bias": v.std(ddof=1) / np.sqrt(n),
            "rmse": np.sqrt(np.mean((v - 3.0) ** 2)),
        }
    return pd.DataFrame(out).T


def main() -> None:
    n_scpi = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_sdid = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    t0 = time.perf_counter()
    print(f"SCPI coverage, {n_scpi} panels (nominal >= 90%):")
    print(scpi_coverage(n_scpi).round(3).to_string())
    t1 = time.perf_counter()
    print(f"({t1 - t0:.0f} s)\n\nSDID with a trend-driving covariate, {n_sdid} panels (truth 3):")
    print(sdid_bias(n_sdid).round(3).to_string())
    print(f"({time.perf_counter() - t1:.0f} s)")


if __name__ == "__main__":
    main()
