"""First-difference DiD regressions with clustered standard errors: the static coefficient
and the event study.

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

**Event study in first differences** (:func:`fit_event_study`). The dynamic specification
of :func:`.twfe.fit_event_study` (Sun & Abraham 2021 eq. 4, with the bins and binned
endpoints of Schmidheiny & Siegloch 2023, "On event studies and distributed-lags in
two-way fixed effects models", *J. Applied Econometrics* 38(5), Section 2)::

    y_it = alpha_i + lambda_t + sum_{b != ref} mu_b * B^b_it + x_it' gamma + e_it,

differenced as above, gives

    Delta y_it = Delta lambda_t + sum_{b != ref} mu_b * Delta B^b_it + Delta x_it' gamma
                 + Delta e_it,

the same ``mu_b`` estimated from within-unit changes. The differenced dummy of an interior
event time ``e`` is +1 at ``e`` and -1 at ``e + 1``; that of the upper binned endpoint
``1[t - G_i >= K]`` is the one-period indicator ``1[t - G_i = K]``, i.e. the treatment
change ``K`` periods earlier: in first differences the binned event study is Schmidheiny
& Siegloch's distributed-lag model in the treatment changes (their Section 3 equivalence,
"numerically identical after reparametrisation"). Options, window, references and bins
are those of the levels event study (``docs/options.md``); without binned endpoints the
treated rows outside the window are dropped before differencing, so no difference spans
them. Levels and differences estimate the same ``mu`` under strict exogeneity and differ
in efficiency as above.

Standard errors are cluster-robust (by unit unless ``cluster`` names a panel or
geography column), CR1 with ``G/(G-1) * (N-1)/(N-K)`` on the differenced sample, as
statsmodels' ``cov_type="cluster"`` (``tests/test_designs.py`` and
``tests/test_first_difference_event_study.py`` match it to 1e-10); t intervals with
``G - 1`` degrees of freedom. With fewer than 10 clusters whose
differenced treatment moves, a warning says the CR1 SE is unreliable: the identifying
clusters' own residuals nearly vanish from the sandwich (MacKinnon & Webb 2017, "Wild
bootstrap inference for wildly different cluster sizes", JAE 32(2)); with one treated
unit of iid N(0, 1) outcomes the SE averaged 0.19 against a true SD of 1.50 (coverage
17%), with three 78% (a breaker's Monte Carlo, session 21). The regression is a handful of dense columns, so it goes
through the TWFE engine (:func:`.twfe._ols_design`) with the period effects absorbed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..inference.covariance import crv1, warn_few_treated
from ..panel import Panel
from ..results import check_bool, check_choice, check_fit_arguments
from ._scale import normalised_weights, scale_equivariant
from .twfe import (
    TWFEResult,
    _cluster_codes,
    _ols_design,
    _prepare,
    _twfe_result,
    event_dummies,
    event_spec,
    event_study_result,
)

__all__ = ["fit", "fit_event_study"]


def _differences(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    levels: pd.DataFrame,
    covariates: list[str],
    w: np.ndarray | None,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """First differences between adjacent periods of the same unit (Wooldridge 2010,
    eq. 10.71): a row is differenced with the previous row only when that row is the same
    unit's previous period in the panel's list of periods (no difference spans a gap).

    ``levels`` holds the regressors in levels (indexed as ``data``); the covariates are
    appended to them. Returns the differenced rows (unit, time, cohort, the differenced
    outcome and covariates, and the other panel columns at the later period, for
    clusters), the differenced regressors and the later period's weights.
    """
    # previous row of the same unit, kept only when it is the previous period of the panel
    pos = pd.Series(np.searchsorted(panel.periods, data["time"].to_numpy()), index=data.index)
    same_unit = data["unit"].eq(data["unit"].shift())
    adjacent = same_unit & pos.diff().eq(1)
    if not adjacent.any():
        raise EstimationError(
            f"No unit has {outcome!r} observed in two consecutive periods: nothing to difference."
        )
    diff = data[[outcome, *covariates]].diff().loc[adjacent]
    reg = pd.concat([levels.diff().loc[adjacent], diff[covariates]], axis=1)
    frame = data.loc[adjacent, ["unit", "time", "cohort"]].copy()
    frame[outcome] = diff[outcome]
    for c in covariates:
        frame[c] = reg[c]
    for c in panel.data.columns:  # cluster columns (region, province) travel along
        if c not in frame.columns:
            frame[c] = data.loc[adjacent, c]
    wd = None if w is None else w[adjacent.to_numpy()].astype(float)
    return frame, reg, wd


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
    treatment = (data["time"] >= data["cohort"]).astype(float).rename("att").to_frame()
    frame, reg, wd = _differences(panel, data, outcome, treatment, covariates, w)
    if reg["att"].abs().sum() == 0:
        raise EstimationError(
            "No unit is observed both just before and at its zone's opening: the "
            "differenced treatment is zero everywhere, so the FD coefficient is undefined."
        )
    _warn_few_treated_clusters(panel, frame, reg[["att"]], cluster)
    # with period effects the design is kept: result.with_inference() reclusters it
    fields: dict[str, Any] = {}
    if time_effects:
        params, cov, n_clusters, cname, design = _ols_design(
            panel, frame, outcome, reg, cluster, ("time",), ssc, wd
        )
        fields = {"design": design, "panel": panel}
    else:
        params, cov, n_clusters, cname = _ols_no_fe(panel, frame, outcome, reg, cluster, wd)
    return _twfe_result(
        "first_difference",
        outcome,
        frame,
        list(params.index),
        params.to_numpy(),
        cov.to_numpy(),
        n_clusters=n_clusters,
        cluster=cname,
        fixed_effects="time (differenced)" if time_effects else "none (differenced)",
        ssc=ssc,
        weights=weights,
        alpha=alpha,
        **fields,
    )


def _warn_few_treated_clusters(
    panel: Panel, frame: pd.DataFrame, reg: pd.DataFrame, cluster: str | None
) -> None:
    """Warn when the differenced treatment columns move in fewer than
    ``FEW_TREATED_CLUSTERS`` clusters (the clusters that identify the coefficients)."""
    codes, cname = _cluster_codes(panel, frame, cluster)
    moves = (reg.to_numpy(float) != 0).any(axis=1)
    warn_few_treated(
        len(np.unique(codes[moves])), f"cluster(s) of {cname!r} (where it changes)", stacklevel=4
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
    "fixed effect" would demean, so the regression is solved here (the same CR1 sandwich,
    :func:`~zoneimpact.inference.covariance.crv1`)."""
    codes, cname = _cluster_codes(panel, frame, cluster)
    X = reg.to_numpy(float)
    y = frame[outcome].to_numpy(float)
    # a constant factor on the weights changes nothing but the floating-point range
    w = np.ones(len(y)) if weights is None else normalised_weights(weights)
    xtx = (X * w[:, None]).T @ X
    if np.linalg.matrix_rank(xtx) < X.shape[1]:
        raise EstimationError(
            f"Differenced regressors {list(reg.columns)} are collinear; drop one."
        )
    bread = np.linalg.inv(xtx)
    beta = bread @ (X.T @ (w * y))
    if int(codes.max()) + 1 < 2:
        raise EstimationError(f"Clustered standard errors need at least two clusters of {cname!r}.")
    cov, g = crv1(X, w * (y - X @ beta), bread, [codes], n_params=X.shape[1])
    names = list(reg.columns)
    return pd.Series(beta, index=names), pd.DataFrame(cov, index=names, columns=names), g, cname


@scale_equivariant()
def fit_event_study(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    leads: int | None = None,
    lags: int | None = None,
    ref_period: int | list[int] = -1,
    bin_endpoints: bool = False,
    bins: list[list[int]] | None = None,
    covariates: list[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
) -> TWFEResult:
    """Event study in first differences (module docstring; Schmidheiny & Siegloch 2023).

    OLS of ``Delta y_it`` on the differenced event-time (bin) dummies, one intercept per
    differenced period and the differenced covariates, with CR1 clustered standard
    errors. Steps: :func:`.twfe.event_spec` (options), :func:`.twfe.event_dummies` (the
    levels dummies of the TWFE event study), :func:`_differences`,
    :func:`.twfe._ols_design`, :func:`.twfe.event_study_result` (``att``).

    Parameters
    ----------
    leads, lags, ref_period, bin_endpoints, bins
        The event-time dummies, as in :func:`.twfe.fit_event_study`: window
        ``[-leads, lags]``, omitted reference event time(s), endpoints pooling the event
        times beyond the window (or those rows dropped), user bins ``[[first, last], ...]``.
    covariates : list of str, optional
        Time-varying covariates, entered in first differences.
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"region"``;
        ``result.with_inference(cluster=...)`` gives other clusterings without refitting.
    weights : str, optional
        Column of positive weights; a difference takes the weight of its later period.
    ssc : {"statsmodels", "fixest"}
        Small-sample ``K`` as in :func:`.twfe.fit`.

    Returns
    -------
    TWFEResult
        Terms ``event:E`` (every event time or bin except the reference), covariate
        coefficients and ``att``, the average of the post-period (E >= 0) coefficients;
        ``n_obs`` counts differences; ``info`` as the levels event study's with
        ``fixed_effects = "time (differenced)"``.
    """
    check_fit_arguments(
        panel,
        outcome,
        alpha=alpha,
        n_jobs=n_jobs,
        rng=rng,
        estimator="first_difference_event_study",
    )
    spec = event_spec(leads, lags, ref_period, bins, bin_endpoints)
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    data, covariates, w = _prepare(panel, outcome, covariates, weights)
    data, w, dummies, spec = event_dummies(
        data, w, spec, outcome=outcome, n_covariates=len(covariates)
    )
    frame, reg, wd = _differences(panel, data, outcome, dummies, covariates, w)
    # an event time whose dummy never changes between adjacent observed periods (e.g. only
    # observed after a gap) has no differenced variation: no column, as an unseen one
    moving = [c for c in dummies.columns if reg[c].abs().sum() > 0]
    reg = reg[[*moving, *covariates]]
    if not moving:
        raise EstimationError(
            "No treated unit is observed in two consecutive periods inside the event window: "
            "the differenced event-time dummies are zero everywhere."
        )
    _warn_few_treated_clusters(panel, frame, reg[moving], cluster)
    fitted = _ols_design(panel, frame, outcome, reg, cluster, ("time",), ssc, wd)
    return event_study_result(
        "first_difference_event_study",
        outcome,
        frame,
        fitted,
        spec,
        fixed_effects="time (differenced)",
        ssc=ssc,
        weights=weights,
        alpha=alpha,
        panel=panel,
    )
