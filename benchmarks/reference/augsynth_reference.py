"""Reference for ridge augmented SC on Prop 99, built independently from R augsynth's source.

R cannot run on this machine (CRAN is out of reach) and augsynth publishes no Prop 99
numbers, so this script is a second, deliberately separate implementation of what
augsynth 0.2.x does for ``augsynth(..., progfunc = "ridge", scm = TRUE)`` with its
defaults, written from its R source (``R/cv.R``: ``cv_ridge``, ``cv_internal``,
``drop_time_t``; ``R/ridge_lambda.R``: ``create_lambda_list``, ``choose_lambda``;
``R/ridge.R``: ``fit_ridgeaug_formatted``; ``R/inference.R``: ``jackknife_se_single``):

* SC weights: ``min ||X1 - X0'w||^2`` over the simplex, solved here with SciPy's SLSQP
  (zoneimpact uses its own active-set QP, ``estimators/_simplex.py``);
* ridge step on control-centred pre-period outcomes, in R's own T0 x T0 form
  ``(X1 - X0c'w)' (X0c'X0c + lambda I)^{-1} X0c'``;
* lambda grid ``lambda_max * (1e-8)^(k/20)``, ``k = 0..20``, ``lambda_max`` the squared
  top singular value of the centred control pre-period outcomes;
* CV: hold out pre-period ``t = 1..T0-1`` (one at a time), refit SC and ridge on the
  other pre-periods, squared error at ``t``; choose the largest lambda within one SE of
  the minimum mean error (``min_1se = TRUE``);
* jackknife: drop each control with ``round(w, 3) != 0`` (w the augmented weights), refit
  at the chosen lambda, ``se = sqrt((n-1)/n * sum (est - mean)^2)`` with ``n`` all units.

Writes ``augsynth_prop99.json`` beside this script. Run:

    python benchmarks/reference/augsynth_reference.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("ZONEIMPACT_DATA", HERE.parents[2] / "shared" / "data"))


def scm_weights(x1: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Simplex least squares by SLSQP; x0 is (T0, N0)."""
    n0 = x0.shape[1]
    h = x0.T @ x0
    c = x0.T @ x1
    res = optimize.minimize(
        lambda w: 0.5 * w @ h @ w - c @ w,
        np.full(n0, 1.0 / n0),
        jac=lambda w: h @ w - c,
        bounds=[(0.0, 1.0)] * n0,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n0)}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 10_000},
    )
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def ascm_weights(x1: np.ndarray, x0: np.ndarray, lam: float) -> np.ndarray:
    """Augmented weights; x1 (T0,), x0 (T0, N0) as in R's synth_data$X0."""
    syn = scm_weights(x1, x0)
    mu = x0.mean(axis=1)
    xc = (x0 - mu[:, None]).T  # N0 x T0, R's X_c
    x1c = x1 - mu
    ridge = (x1c - xc.T @ syn) @ np.linalg.inv(xc.T @ xc + lam * np.eye(xc.shape[1])) @ xc.T
    return syn + ridge


def main() -> None:
    df = pd.read_csv(DATA / "canonical" / "california_prop99.csv", sep=";")
    wide = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    treated = ["California"]
    controls = [u for u in wide.index if u not in treated]
    years = wide.columns.to_numpy()
    pre, post = years < 1989, years >= 1989
    y1 = wide.loc[treated].mean(axis=0).to_numpy()
    y0 = wide.loc[controls].to_numpy().T  # T x N0
    x1, x0 = y1[pre], y0[pre]
    t0 = x1.size

    xc = (x0 - x0.mean(axis=1, keepdims=True)).T
    lam_max = np.linalg.svd(xc, compute_uv=False)[0] ** 2
    scaler = 1e-8 ** (1 / 20)
    lambdas = lam_max * scaler ** np.arange(21)

    errors = np.empty((21, t0 - 1))
    for t in range(t0 - 1):
        keep = np.arange(t0) != t
        for j, lam in enumerate(lambdas):
            w = ascm_weights(x1[keep], x0[keep], lam)
            errors[j, t] = (x1[t] - x0[t] @ w) ** 2
    mean = errors.mean(axis=1)
    se = errors.std(axis=1, ddof=1) / np.sqrt(errors.shape[1])
    i = int(np.argmin(mean))
    lam = float(lambdas[mean <= mean[i] + se[i]].max())

    w = ascm_weights(x1, x0, lam)
    att = float(np.mean(y1[post] - y0[post] @ w))
    n = len(treated) + len(controls)
    ests = []
    for k in np.flatnonzero(np.round(w, 3) != 0):
        keep = np.arange(len(controls)) != k
        wk = ascm_weights(x1, x0[:, keep], lam)
        ests.append(float(np.mean(y1[post] - y0[post][:, keep] @ wk)))
    e = np.asarray(ests)
    jk_se = float(np.sqrt((n - 1) / n * np.sum((e - e.mean()) ** 2)))

    out = {
        "_meta": {
            "generator": "benchmarks/reference/augsynth_reference.py",
            "method": "independent implementation of R augsynth 0.2.x ridge ASCM defaults",
            "data": "shared/data/canonical/california_prop99.csv",
        },
        "lambdas": lambdas.tolist(),
        "cv_error": mean.tolist(),
        "cv_se": se.tolist(),
        "lambda": lam,
        "lambda_argmin": float(lambdas[i]),
        "att": att,
        "jackknife_n_dropped": int(e.size),
        "jackknife_se": jk_se,
    }
    path = HERE / "augsynth_prop99.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"lambda {lam:.6g} (argmin {lambdas[i]:.6g}); ATT {att:.6f}; jackknife SE {jk_se:.6f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
