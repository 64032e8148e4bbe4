r"""Time-varying covariates for synthetic DiD: residualise the outcome first.

Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021, AER), Section 8 ("covariates"):
with time-varying covariates ``X_it``, SDID is applied to the residuals

.. math::  Y^{res}_{it} = Y_{it} - X_{it}'\hat\beta,

where ``beta`` is the coefficient of a two-way fixed-effects regression
``Y_it = alpha_i + gamma_t + X_it'beta + e_it`` fitted on the *untreated* observations
only (never-treated units in every period, eventually treated units before their
adoption), so the treatment effect cannot leak into ``beta``. This is the "projected"
method of Stata ``sdid`` (Clarke, Pailanir, Athey & Imbens 2023; Kranz 2022). R
``synthdid`` instead optimises ``beta`` jointly with the unit weights, and diff-diff 3.13
(``SyntheticDiD.fit(covariates=...)``) regresses on *all* observations, treated
post-treatment cells included, without a treatment indicator -- different estimators
(``benchmarks/reference/sdid_covariates_reference.py`` records diff-diff's number and
``tests/test_sdid_covariates.py`` reproduces it from its own rule).

The fixed effects are absorbed by alternating projections
(:func:`zoneimpact.estimators._fe.demean`, exact by Frisch-Waugh-Lovell), then ``beta``
is the least-squares coefficient of the demeaned outcome on the demeaned covariates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel, _v
from ._fe import demean

__all__ = ["residualise_on_covariates"]


def residualise_on_covariates(
    panel: Panel, outcome: str, covariates: list[str], *, estimator: str = "Synthetic DiD"
) -> tuple[Panel, pd.Series]:
    """A panel whose ``outcome`` is ``Y - X beta_hat`` and ``beta_hat`` (by covariate).

    ``beta_hat`` comes from the two-way fixed-effects regression on the untreated
    observed cells (module docstring). Covariates must be observed wherever the outcome
    is; a covariate constant within units or within periods on those cells (absorbed by
    the fixed effects) is an error naming it.
    """
    data = panel.data
    y = data[outcome].to_numpy(float)
    X = data[covariates].to_numpy(float)
    obs = np.isfinite(y)
    bad = obs[:, None] & ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise EstimationError(
            f"{estimator} with covariates: covariate {covariates[j]!r} is missing for unit "
            f"{_v(data['unit'].iloc[i])!r} in period {_v(data['time'].iloc[i])!r}, where "
            f"outcome {outcome!r} is observed ({int(bad.any(axis=1).sum())} such row(s)). "
            "Impute the covariate or drop those rows."
        )
    untreated = obs & (data["time"].to_numpy(float) < data["cohort"].to_numpy(float))
    if untreated.sum() <= len(covariates):
        raise EstimationError(
            f"{estimator} with covariates: only {int(untreated.sum())} untreated observations "
            f"for {len(covariates)} covariate coefficient(s)."
        )
    fe = [data["unit"].to_numpy()[untreated], data["time"].to_numpy()[untreated]]
    Z = demean(np.column_stack([y[untreated], X[untreated]]), fe)
    yd, Xd = Z[:, 0], Z[:, 1:]
    spread = np.abs(Xd).max(axis=0)
    # relative to the covariate's own variation (a floor of 1 or its level made x * 1e-12
    # and x + 1e11 look constant; a breaker's check, session 20)
    centre = X[untreated].mean(axis=0)
    size = np.abs(X[untreated] - centre).max(axis=0)
    flat = np.flatnonzero(spread <= 1e-10 * size)
    if flat.size:
        raise EstimationError(
            f"{estimator} with covariates: covariate {covariates[int(flat[0])]!r} does not vary "
            "once unit and period effects are removed on the untreated observations (it is "
            "constant within units or within periods), so its coefficient is not identified; "
            "drop it (SDID already removes unit- and period-level differences)."
        )
    unit = np.sqrt((Xd**2).sum(axis=0))  # each column on unit norm: its units do not decide
    if np.linalg.matrix_rank(Xd / unit) < Xd.shape[1]:
        raise EstimationError(
            f"{estimator} with covariates: covariates {covariates} are collinear on the "
            "untreated observations after removing unit and period effects; drop one."
        )
    beta = np.linalg.lstsq(Xd / unit, yd, rcond=None)[0] / unit
    # centred: SDID absorbs the constant, and the outcome keeps its digits
    resid = np.where(obs, y - np.nan_to_num(X - centre) @ beta, np.nan)
    coefs = pd.Series(beta, index=pd.Index(covariates, name="covariate"), name="coefficient")
    return panel.with_outcome(outcome, resid, overwrite=True), coefs


def covariate_info(coefs: pd.Series) -> dict[str, Any]:
    """``info`` entries of a covariate-adjusted fit."""
    return {"covariates": ",".join(map(str, coefs.index)), "covariate_method": "projected"}
