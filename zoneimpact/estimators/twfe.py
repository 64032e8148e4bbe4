"""Two-way fixed-effects regressions: the static DiD coefficient and the event study.

Static TWFE (the "canonical" staggered DiD regression, e.g. Goodman-Bacon 2021 eq. 2)::

    y_it = alpha_i + lambda_t + beta * D_it + x_it' gamma + e_it,   D_it = 1[t >= G_i]

Event study (Sun & Abraham 2021 eq. 4, the "dynamic" TWFE specification)::

    y_it = alpha_i + lambda_t + sum_{e != ref} mu_e * 1[t - G_i = e] + x_it' gamma + e_it

Estimation uses ``linearmodels.PanelOLS``, which absorbs both fixed effects (no dummy
matrices) and whose clustered covariance with ``debiased=True, group_debias=True`` is the
same small-sample correction as statsmodels OLS with unit and year dummies and clustered
errors, ``G/(G-1) * (N-1)/(N-K)`` with K counting the absorbed effects (checked to 1e-8 in
``tests/test_twfe.py``). Confidence intervals use the t distribution with G-1 degrees of
freedom, as fixest does for clustered errors.

Both estimators are biased under staggered adoption with heterogeneous effects; they are
here as the familiar benchmark (see ``bacon`` for the decomposition) and for comparison
with the heterogeneity-robust estimators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

from ..errors import EstimationError, SpecError
from ..panel import Panel
from ..results import EstimationResult, terms_frame


@dataclass(frozen=True, repr=False)
class TWFEResult(EstimationResult):
    """TWFE estimates; ``event_times`` lists the event-study bins (empty when static)."""

    event_times: tuple[int, ...] = ()


def _cluster_codes(panel: Panel, data: pd.DataFrame, cluster: str | None) -> tuple[np.ndarray, str]:
    """Integer cluster codes aligned with ``data`` and the cluster's name."""
    if cluster is None or cluster == "unit":
        return pd.factorize(data["unit"])[0], "unit"
    if cluster in data.columns:
        col = data[cluster]
    elif panel.geography is not None and cluster in panel.geography.columns:
        col = data["unit"].map(panel.geography[cluster])
    else:
        raise SpecError(
            f"Cluster variable {cluster!r} is neither a panel column nor a geography column."
        )
    if col.isna().any():
        u = data.loc[col.isna().to_numpy(), "unit"].iloc[0]
        raise EstimationError(f"Cluster variable {cluster!r} is missing for unit {u!r}.")
    return pd.factorize(col)[0], cluster


def _prepare(
    panel: Panel, outcome: str, covariates: list[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    panel._check_outcome(outcome)
    covariates = list(covariates or [])
    unknown = [c for c in covariates if c not in panel.covariates]
    if unknown:
        raise SpecError(
            f"Covariate(s) {unknown} not in the panel; covariates: {list(panel.covariates)}."
        )
    data = panel.data.dropna(subset=[outcome, *covariates])
    if data.empty:
        raise EstimationError(f"No observations with a non-missing {outcome!r}.")
    return data, covariates


def _ols(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    regressors: pd.DataFrame,
    cluster: str | None,
) -> tuple[pd.Series, pd.DataFrame, int, str]:
    codes, cname = _cluster_codes(panel, data, cluster)
    index = pd.MultiIndex.from_arrays([data["unit"].to_numpy(), data["time"].to_numpy()])
    y = pd.Series(data[outcome].to_numpy(float), index=index, name=outcome)
    x = regressors.set_axis(index)
    varying = x.columns[(x.groupby(level=0).transform("std").fillna(0) > 0).any().to_numpy()]
    constant = [c for c in x.columns if c not in varying]
    if constant:
        raise EstimationError(
            f"Regressor(s) {constant} do not vary within units: they are absorbed by the unit "
            "fixed effects."
        )
    clusters = pd.DataFrame({"cluster": codes}, index=index)
    fit = PanelOLS(y, x, entity_effects=True, time_effects=True, check_rank=True).fit(
        cov_type="clustered", clusters=clusters, debiased=True, group_debias=True
    )
    return fit.params, fit.cov, int(len(np.unique(codes))), cname


def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: list[str] | None = None,
    cluster: str | None = None,
) -> TWFEResult:
    """Static two-way fixed-effects DiD coefficient.

    Parameters
    ----------
    panel : Panel
        Validated panel; the treatment dummy is ``time >= cohort``.
    outcome : str
        Outcome column.
    covariates : list of str, optional
        Time-varying covariates added linearly.
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"region"``.

    Returns
    -------
    TWFEResult
        Term ``att`` is beta of the equation in the module docstring; covariate
        coefficients follow under their own names.
    """
    data, covariates = _prepare(panel, outcome, covariates)
    d = (data["time"] >= data["cohort"]).astype(float)
    if d.nunique() < 2:
        raise EstimationError("The treatment dummy does not vary: nobody is treated in the sample.")
    reg = pd.concat([d.rename("att"), data[covariates]], axis=1)
    params, cov, n_clusters, cname = _ols(panel, data, outcome, reg, cluster)
    se = np.sqrt(np.diag(cov.to_numpy()))
    terms = terms_frame(
        list(params.index), params.to_numpy(), se, df=np.full(len(params), n_clusters - 1)
    )
    return TWFEResult(
        estimator="twfe",
        outcome=outcome,
        terms=terms,
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=cov.to_numpy(),
        info={"cluster": cname, "n_clusters": n_clusters, "fixed_effects": "unit + time"},
        alpha=alpha,
    )


def fit_event_study(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    leads: int | None = None,
    lags: int | None = None,
    ref: int = -1,
    bin_endpoints: bool = False,
    covariates: list[str] | None = None,
    cluster: str | None = None,
) -> TWFEResult:
    """Dynamic TWFE event study with relative-period dummies.

    Parameters
    ----------
    leads, lags : int, optional
        Window of event times ``[-leads, lags]``; by default every observed event time.
    ref : int
        Omitted reference event time (default -1).
    bin_endpoints : bool
        If True, event times beyond the window are pooled into the endpoint bins
        ("binned" endpoints, Schmidheiny & Siegloch 2023); if False they get no dummy
        and are pooled with the reference (observations outside the window are dropped
        for treated units, so the reference stays clean).

    Returns
    -------
    TWFEResult
        Terms ``event:E`` for every event time except ``ref``, covariate coefficients, and
        ``att``, the average of the post-period (E >= 0) coefficients; the cluster-robust
        covariance of all of them in ``vcov``.
    """
    data, covariates = _prepare(panel, outcome, covariates)
    treated = np.isfinite(data["cohort"].to_numpy())
    event = np.where(
        treated, data["time"].to_numpy() - np.where(treated, data["cohort"], 0), np.nan
    )
    observed = event[treated]
    lo = int(observed.min()) if leads is None else -int(leads)
    hi = int(observed.max()) if lags is None else int(lags)
    if not lo <= ref <= hi:
        raise SpecError(f"Reference event time {ref} lies outside the window [{lo}, {hi}].")
    if bin_endpoints:
        event = np.where(treated, np.clip(event, lo, hi), np.nan)
    else:
        outside = treated & ((event < lo) | (event > hi))
        data, event = data.loc[~outside], event[~outside]
        treated = treated[~outside]
    times = [e for e in range(lo, hi + 1) if e != ref]
    if not np.isinf(data["cohort"]).any():
        # Without never-treated units the full set of relative-period dummies is collinear
        # with the unit and time effects; drop the most distant lead as a second reference.
        times = times[1:]
    cols = {f"event:{e}": (event == e).astype(float) for e in times}
    reg = pd.DataFrame(cols, index=data.index)
    reg = reg.loc[:, reg.sum() > 0]
    reg = pd.concat([reg, data[covariates]], axis=1)
    params, cov, n_clusters, cname = _ols(panel, data, outcome, reg, cluster)
    # headline: the average post-period event-time coefficient, a linear combination
    names = list(params.index)
    post = np.array([n.startswith("event:") and int(n.split(":")[1]) >= 0 for n in names], float)
    if not post.any():
        raise EstimationError("The event-study window has no post-treatment event time.")
    w = post / post.sum()
    b = np.append(params.to_numpy(), w @ params.to_numpy())
    v = cov.to_numpy()
    full = np.zeros((len(b), len(b)))
    full[:-1, :-1] = v
    full[-1, :-1] = full[:-1, -1] = v @ w
    full[-1, -1] = w @ v @ w
    se = np.sqrt(np.diag(full))
    terms = terms_frame([*names, "att"], b, se, df=np.full(len(b), n_clusters - 1))
    kept = tuple(int(t.split(":")[1]) for t in names if t.startswith("event:"))
    info: dict[str, Any] = {
        "cluster": cname,
        "n_clusters": n_clusters,
        "fixed_effects": "unit + time",
        "reference": ref,
        "binned": bool(bin_endpoints),
    }
    return TWFEResult(
        estimator="event_study",
        outcome=outcome,
        terms=terms,
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=full,
        info=info,
        alpha=alpha,
        event_times=kept,
    )
