"""SCPI prediction intervals on Prop 99 from the authors' Python package, ``scpi_pkg``.

Writes ``scpi_prop99.json`` beside this file, read by ``tests/test_scpi.py``.

Cattaneo, Feng & Titiunik (2021, JASA) prediction intervals for the synthetic control of
California (Abadie, Diamond & Hainmueller 2010; ``canonical/california_prop99.csv``,
outcome ``PacksPerCapita`` = ADH's ``cigsale``): features = the outcome in 1970-1988, no
covariates, no constant, simplex weights, ``V = I`` ("separate"), and the package
defaults for everything else (u_order = e_order = 1, u_sigma = "HC1", rho = "type-2",
rho_max = 0.2, u_alpha = e_alpha = 0.05). Two runs: ``effect = "unit-time"`` (each
post period, 1989-2000) and ``effect = "unit"`` (the average over them).

Run with scpi-pkg 4.0.0, which needs pandas < 3 (its ``scdata`` fails under pandas 3),
e.g. in its own virtual environment::

    python -m venv /tmp/scpi_venv && /tmp/scpi_venv/bin/pip install "pandas<3" scpi-pkg
    /tmp/scpi_venv/bin/python benchmarks/reference/scpi_reference.py

``sims`` is 2,000 (the package default is 200) so that the simulated in-sample bounds of
the reference carry little Monte Carlo error of their own.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("ZONEIMPACT_DATA", HERE.parents[2] / "shared" / "data"))
SIMS = 2000
SEED = 8894


def run(effect: str) -> dict:
    from scpi_pkg.scdataMulti import scdataMulti
    from scpi_pkg.scpi import scpi

    df = pd.read_csv(DATA / "canonical" / "california_prop99.csv", sep=";")
    d = scdataMulti(
        df,
        id_var="State",
        time_var="Year",
        outcome_var="PacksPerCapita",
        treatment_var="treated",
        effect=effect,
        constant=False,
        cointegrated_data=False,
        verbose=False,
    )
    # scpi draws its simulations from numpy's global generator
    np.random.seed(SEED)  # noqa: NPY002
    pi = scpi(d, w_constr={"name": "simplex"}, sims=SIMS, e_method="all", cores=1, verbose=False)
    fit = pi.Y_post_fit.to_numpy(float).ravel()
    ins = pi.CI_in_sample
    out = {
        "synthetic": fit.tolist(),
        "in_low": (ins["Lower"].to_numpy(float) - fit).tolist(),
        "in_high": (ins["Upper"].to_numpy(float) - fit).tolist(),
    }
    for name, ci in (
        ("gaussian", pi.CI_all_gaussian),
        ("ls", pi.CI_all_ls),
        ("qreg", pi.CI_all_qreg),
    ):
        out[f"e_low_{name}"] = (ci["Lower"].to_numpy(float) - ins["Lower"].to_numpy(float)).tolist()
        out[f"e_high_{name}"] = (
            ci["Upper"].to_numpy(float) - ins["Upper"].to_numpy(float)
        ).tolist()
        out[f"cf_low_{name}"] = ci["Lower"].to_numpy(float).tolist()
        out[f"cf_high_{name}"] = ci["Upper"].to_numpy(float).tolist()
    out["e_mean"] = np.asarray(pi.e_mean, float).ravel().tolist()
    out["failed_sims_percent"] = pi.failed_sims.to_numpy(float).tolist()
    if effect == "unit-time":
        w = pi.w.iloc[:, 0]
        # the index is (treated unit, donor)
        out["weights"] = {str(k[-1] if isinstance(k, tuple) else k): float(v) for k, v in w.items()}
        out["residuals"] = pi.res.to_numpy(float).ravel().tolist()
        out["rho"] = float(pi.rho["California"])
        out["sigma"] = np.asarray(pi.Sigma, float).tolist()
        out["sigma_donors"] = [str(c).split("_", 1)[-1] for c in pi.B.columns]
        out["u_params"] = int(pi.u_params)
        out["e_params"] = int(pi.e_params)
        out["periods"] = [int(t) for t in range(1989, 2001)]
    return out


def main() -> None:
    import scpi_pkg.version

    warnings.filterwarnings("ignore")
    ref = {
        "_meta": {
            "package": f"scpi-pkg {scpi_pkg.version.__version__}",
            "pandas": pd.__version__,
            "data": "canonical/california_prop99.csv",
            "sims": SIMS,
            "numpy_seed": SEED,
            "options": "simplex, V='separate', constant=False, cointegrated_data=False, defaults",
        },
        "unit_time": run("unit-time"),
        "average": run("unit"),
    }
    (HERE / "scpi_prop99.json").write_text(json.dumps(ref, indent=1) + "\n")


if __name__ == "__main__":
    main()
