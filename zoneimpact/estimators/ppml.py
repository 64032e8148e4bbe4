"""Poisson pseudo-maximum likelihood (PPML) with unit and time fixed effects.

For a non-negative outcome with zeros, such as city FDI, the log of the outcome drops the
zeros and log(1 + y) depends on the units; PPML (Santos Silva & Tenreyro 2006) models the
conditional mean multiplicatively,

    E[y_it | i, t, D_it] = exp(alpha_i + lambda_t + beta * D_it),

so ``exp(beta) - 1`` is the proportional change of the mean at the zone's opening, zeros
included. Units whose outcome is zero in every period carry no information on beta (their
fixed effect diverges) and are dropped, as fixest's ``fepois`` does; the count is reported.

Estimation uses statsmodels' GLM (Poisson family) with unit and time dummies and
cluster-robust standard errors. That is adequate for prefecture or province panels (a few
hundred units); pyfixest's ``fepois`` is the route for firm-level panels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from ..errors import EstimationError
from ..panel import Panel, _v
from ..results import EstimationResult, check_fit_arguments, terms_frame
from ._scale import scale_equivariant
from .twfe import _cluster_codes


@scale_equivariant(result_scales=False)
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    cluster: str | None = None,
) -> EstimationResult:
    """Static PPML difference in differences with unit and time fixed effects.

    Parameters
    ----------
    panel : Panel
        Validated panel; the treatment dummy is ``time >= cohort``.
    outcome : str
        Non-negative outcome column (zeros allowed).
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"province"``.

    Returns
    -------
    EstimationResult
        Terms ``att`` (beta, the log-point effect on the conditional mean) and
        ``att_pct`` (``exp(beta) - 1`` with a delta-method standard error).
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="ppml")
    data = panel.data.dropna(subset=[outcome])
    if data.empty:
        raise EstimationError(f"PPML: {outcome!r} is missing in every row; nothing to estimate.")
    y = data[outcome].to_numpy(float)
    if (y < 0).any():
        i = int(np.flatnonzero(y < 0)[0])
        raise EstimationError(
            f"PPML needs a non-negative outcome; {outcome!r} is {float(y[i])!r} at unit "
            f"{_v(data['unit'].iloc[i])!r}, period {_v(data['time'].iloc[i])!r}."
        )
    positive = data.groupby("unit")[outcome].transform("sum") > 0
    n_dropped = int(data.loc[~positive, "unit"].nunique())
    data = data.loc[positive]
    if data.empty:
        raise EstimationError(
            f"PPML: {outcome!r} is zero in every row of every unit ({n_dropped} unit(s)); a "
            "unit whose outcome is always zero carries no information, so nothing is left."
        )
    d = (data["time"] >= data["cohort"]).astype(float).to_numpy()
    if np.ptp(d) == 0:
        raise EstimationError("The treatment dummy does not vary: nobody is treated in the sample.")
    labels = data[["unit", "time"]].astype(str)
    if labels["unit"].nunique() != data["unit"].nunique():
        # ids that print alike (1 and "1") are different units: label them by code
        labels["unit"] = [f"u{c}" for c in pd.factorize(data["unit"], sort=False)[0]]
    dummies = pd.get_dummies(labels, drop_first=True, dtype=float)
    x = np.column_stack([d, np.ones(len(data)), dummies.to_numpy()])
    codes, cname = _cluster_codes(panel, data, cluster)
    n_clusters = int(len(np.unique(codes)))
    if n_clusters < 2:
        raise EstimationError(
            f"Clustered standard errors need at least two clusters of {cname!r}; the sample "
            "has one. Cluster on another variable or add units."
        )
    model = sm.GLM(data[outcome].to_numpy(float), x, family=sm.families.Poisson())
    res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, maxiter=200, tol=1e-12)
    beta, se = float(res.params[0]), float(res.bse[0])
    if not (np.isfinite(beta) and np.isfinite(se)):
        raise EstimationError(
            f"PPML did not give a finite coefficient and standard error (estimate {beta!r}, SE "
            f"{se!r}) on {data['unit'].nunique()} unit(s) in {n_clusters} clusters of "
            f"{cname!r}: the design is too small (or separated) for the clustered variance. "
            "Add units or use twfe."
        )
    terms = terms_frame(
        ["att", "att_pct"],
        [beta, np.expm1(beta)],
        [se, np.exp(beta) * se],
        df=[np.inf, np.inf],
    )
    return EstimationResult(
        estimator="ppml",
        outcome=outcome,
        terms=terms,
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=se**2 * np.outer([1.0, np.exp(beta)], [1.0, np.exp(beta)]),
        info={
            "cluster": cname,
            "n_clusters": n_clusters,
            "fixed_effects": "unit + time",
            "units_all_zero_dropped": n_dropped,
        },
        alpha=alpha,
    )
