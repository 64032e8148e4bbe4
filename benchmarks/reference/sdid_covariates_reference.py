"""diff-diff 3.13 synthetic DiD with a time-varying covariate, for the record.

Writes ``sdid_covariates_diffdiff.json`` beside this file (the panel itself, diff-diff's
estimate and its covariate rule), read by ``tests/test_sdid_covariates.py``.

diff-diff's ``SyntheticDiD.fit(covariates=...)`` residualises the outcome by a two-way
fixed-effects OLS on *all* observations (treated post-treatment cells included, no
treatment indicator) and then runs SDID on the residuals. zoneimpact follows
Arkhangelsky et al. (2021, Section 8) / Stata ``sdid``'s "projected" method instead
(coefficients from the *untreated* observations), so the estimates differ by design; the
test checks that zoneimpact's SDID on diff-diff's residuals reproduces diff-diff's number
(same SDID, same residualisation rule), and records how far the two rules are apart here.

Run (needs the ``compare`` extra)::

    python benchmarks/reference/sdid_covariates_reference.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def covariate_panel(
    seed: int = 5, n_controls: int = 24, n_treated: int = 4, T: int = 12
) -> pd.DataFrame:
    """Unit and period effects, a covariate trending faster in treated units (beta = 2),
    an effect of 3 from period 8 on."""
    rng = np.random.default_rng(seed)
    N = n_controls + n_treated
    slope = np.concatenate([rng.uniform(0, 1, n_controls), rng.uniform(1.5, 2.0, n_treated)])
    t = np.arange(T)
    x = slope[:, None] * t[None, :] + rng.normal(0, 1, (N, T))
    y = rng.normal(0, 2, N)[:, None] + 0.5 * t[None, :] + 2.0 * x + rng.normal(0, 0.5, (N, T))
    g = np.where(np.arange(N) >= n_controls, 8, 0)
    y = y + 3.0 * ((t[None, :] >= 8) & (g[:, None] > 0))
    rows = [
        (f"u{i:02d}", int(t_), float(y[i, t_]), float(x[i, t_]), int(g[i]))
        for i in range(N)
        for t_ in t
    ]
    return pd.DataFrame(rows, columns=["unit", "time", "y", "x", "g"])


def main() -> None:
    import diff_diff
    from diff_diff import SyntheticDiD

    warnings.filterwarnings("ignore")
    df = covariate_panel()
    df["treat"] = (df["g"] > 0).astype(int)
    post = list(range(8, 12))
    est = {}
    for name, covs in (("no_covariates", None), ("covariates", ["x"])):
        r = SyntheticDiD(variance_method="placebo", n_bootstrap=50, seed=1).fit(
            df,
            outcome="y",
            treatment="treat",
            unit="unit",
            time="time",
            post_periods=post,
            covariates=covs,
        )
        est[name] = float(r.att)
    ref = {
        "_meta": {
            "package": f"diff-diff {diff_diff.__version__}",
            "rule": "TWFE OLS of y on x with unit and time dummies on ALL observations",
            "truth": 3.0,
        },
        "panel": df[["unit", "time", "y", "x", "g"]].to_dict(orient="list"),
        "att": est,
    }
    (HERE / "sdid_covariates_diffdiff.json").write_text(json.dumps(ref) + "\n")
    print(est)


if __name__ == "__main__":
    main()
