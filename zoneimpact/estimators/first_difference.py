"""First-difference DiD regression with clustered standard errors.

The first-difference (FD) estimator removes the unit effect of
``y_it = alpha_i + lambda_t + beta * D_it + x_it' gamma + e_it`` by differencing
consecutive periods (Wooldridge 2010, *Econometric Analysis of Cross Section and Panel
Data*, 2nd ed., Section 10.6, eq. 10.71):

    Delta y_it = Delta lambda_t + beta * Delta D_it + Delta x_it' gamma + Delta e_it,

estimated by OLS with one dummy per differenced period (``time_effects=True``: the
``Delta lambda_t`` are free, as in Stata ``reg D.y D.d i.year``) or without them
(linearmodels ``FirstDifferenceOLS``). ``D_it = 1[t >= G_i]``, so ``Delta D_it`` is one
in the opening period only. FD and TWFE estimate the same ``beta`` under strict
exogeneity; FD is efficient when ``e_it`` is a random walk, TWFE when it is serially
uncorrelated (Wooldridge 2010, Section 10.7.1). With effects that change after the opening
the two differ: ``Delta D_it`` is one only at the opening, so FD's ``beta`` is the jump at
the opening while TWFE averages over the treated periods (on the simulated zone panel,
whose effects build up, FD gives about half of TWFE's estimate). A difference is taken only between a
period and the one just before it in the panel's list of periods; a unit with a gap has
no difference across it (Stata's ``D.`` operator).

Standard errors are cluster-robust (by unit unless ``cluster`` names a panel or
geography column), CR1 with ``G/(G-1) * (N-1)/(N-K)`` on the differenced sample, as
statsmodels' ``cov_type="cluster"`` (``tests/test_first_difference.py`` matches it to
1e-10); t intervals with ``G - 1`` degrees of freedom. The regression is a handful of
dense columns, so it goes through the TWFE engine (:func:`.twfe._ols`) with the period
effects absorbed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel
from ..results import check_bool, check_choice, check_fit_arguments, terms_frame
from ._scale import scale_equivariant
from .twfe import TWFEResult, _ols, _prepare

__all__ = ["fit"]


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: list[str] | None = None,
    cluster: str | None = None,
    time_effects: bool = True,
    weights: str | None = None,
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
) -> TWFEResult:
    """First-difference DiD coefficient (Wooldridge 2010, eq. 10.71).

    Parameters
    ----------
    panel : Panel
        Validated panel; the treatment dummy is ``time >= cohort``.
    outcome : str
        Outcome column.
    covariates : list of str, optional
        Time-varying covariates, entered in first differences.
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"region"``.
    time_effects : bool
        One intercept per differenced period (default); False fits the differenced
        equation without any intercept (linearmodels ``FirstDifferenceOLS``).
    weights : str, optional
        Column of positive weights; a difference takes the weight of its later period.
    ssc : {"statsmodels", "fixest"}
        Small-sample ``K`` as in :func:`.twfe.fit` (identical here unless the period
        effects are nested in the clusters).

    Returns
    -------
    TWFEResult
        Term ``att`` (beta) and the covariates' coefficients; ``n_obs`` counts differences.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="first_difference"
    )
    time_effects = check_bool(time_effects, "time_effects")
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    data, covariates, w = _prepare(panel, outcome, covariates, weights)
    data = data.assign(_d=(data["time"] >= data["cohort"]).astype(float))
    if w is not None:
        data = data.assign(_w=w)
    # previous row of the same unit, kept only when it is the previous period of the panel
    pos = pd.Series(np.searchsorted(panel.periods, data["time"].to_numpy()), index=data.index)
    same_unit = data["unit"].eq(data["unit"].shift())
    adjacent = same_unit & pos.diff().eq(1)
    cols = [outcome, "_d", *covariates]
    diff = data[cols].diff().loc[adjacent]
    if diff.empty:
        raise EstimationError(
            f"No unit has {outcome!r} observed in two consecutive periods: nothing to difference."
        )
    frame = data.loc[adjacent, ["unit", "time", "cohort"]].copy()
    frame[outcome] = diff[outcome]
    reg = diff[["_d", *covariates]].rename(columns={"_d": "att"})
    if reg["att"].abs().sum() == 0:
        raise EstimationError(
            "No unit is observed both just before and at its zone's opening: the "
            "differenced treatment is zero everywhere, so the FD coefficient is undefined."
        )
    for c in covariates:
        frame[c] = reg[c]
    for c in panel.data.columns:  # cluster columns (region, province) travel along
        if c not in frame.columns and c != "_d":
            frame[c] = data.loc[adjacent, c]
    wd = None if w is None else data.loc[adjacent, "_w"].to_numpy(float)
    if time_effects:
        params, cov, n_clusters, cname = _ols(
            panel, frame, outcome, reg, cluster, ("time",), ssc, weights=wd
        )
    else:
        params, cov, n_clusters, cname = _ols_no_fe(panel, frame, outcome, reg, cluster, wd)
    se = np.sqrt(np.diag(cov.to_numpy()))
    terms = terms_frame(
        list(params.index), params.to_numpy(), se, df=np.full(len(params), n_clusters - 1)
    )
    return TWFEResult(
        estimator="first_difference",
        outcome=outcome,
        terms=terms,
        n_units=int(frame["unit"].nunique()),
        n_obs=int(len(frame)),
        vcov=cov.to_numpy(),
        info={
            "cluster": cname,
            "n_clusters": n_clusters,
            "fixed_effects": "time (differenced)" if time_effects else "none (differenced)",
            "ssc": ssc,
            "weights": weights or "",
        },
        alpha=alpha,
    )


def _ols_no_fe(
    panel: Panel,
    frame: pd.DataFrame,
    outcome: str,
    reg: pd.DataFrame,
    cluster: str | None,
    weights: np.ndarray | None,
) -> tuple[pd.Series, pd.DataFrame, int, str]:
    """OLS of the differences without intercepts: the TWFE engine with a constant
    "fixed effect" would demean, so the regression is solved here (same CR1 sandwich)."""
    from .twfe import _cluster_codes

    codes, cname = _cluster_codes(panel, frame, cluster)
    X = reg.to_numpy(float)
    y = frame[outcome].to_numpy(float)
    w = np.ones(len(y)) if weights is None else weights
    xtx = (X * w[:, None]).T @ X
    if np.linalg.matrix_rank(xtx) < X.shape[1]:
        raise EstimationError(
            f"Differenced regressors {list(reg.columns)} are collinear; drop one."
        )
    bread = np.linalg.inv(xtx)
    beta = bread @ (X.T @ (w * y))
    wresid = w * (y - X @ beta)
    g = int(codes.max()) + 1
    if g < 2:
        raise EstimationError(f"Clustered standard errors need at least two clusters of {cname!r}.")
    scores = np.stack([np.bincount(codes, weights=x * wresid, minlength=g) for x in X.T], axis=1)
    n, k = X.shape
    if n <= k:
        raise EstimationError(f"No residual degrees of freedom: {n} differences, {k} slopes.")
    cov = g / (g - 1) * (n - 1) / (n - k) * bread @ (scores.T @ scores) @ bread
    names = list(reg.columns)
    return pd.Series(beta, index=names), pd.DataFrame(cov, index=names, columns=names), g, cname
