"""Callaway & Sant'Anna (2021) group-time average treatment effects and their aggregations.

Method
------
Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple time
periods", *Journal of Econometrics* 225(2), 200-230 (CS below).

* **ATT(g,t)** (CS eq. 2.3 never-treated / eq. 2.4 not-yet-treated comparisons; Theorem
  1): the effect in period ``t`` on the cohort first treated in ``g``, identified by a 2x2
  difference in differences between ``t`` and a base period, comparing cohort ``g`` with
  never-treated units or with units not yet treated by ``max(t, base) + anticipation``.
* **Base period** (R ``did`` ``base_period``): ``"varying"`` uses the period just before
  ``t`` for pre-treatment cells (short differences) and ``g - anticipation - 1`` for
  post-treatment cells; ``"universal"`` uses ``g - anticipation - 1`` throughout and
  reports the base cell as 0.
* **2x2 estimators** for panel data (Sant'Anna & Zhao 2020, "Doubly robust
  difference-in-differences estimators", *J. Econometrics* 219(1)):
  ``"reg"`` outcome regression (Heckman, Ichimura & Todd 1997; SZ eq. 2.2),
  ``"ipw"`` standardised (Hajek) inverse probability weighting (Abadie 2005; SZ eq. 2.3
  normalised), ``"dr"`` the improved locally efficient doubly robust estimator (SZ eq.
  3.1 with logit propensity score and OLS outcome model on controls), and
  ``"unconditional"`` the plain difference in mean changes (what all three reduce to
  without covariates). Covariates enter at their value in the earlier of the two periods
  of each 2x2 comparison, as R ``did`` does.
* **Influence functions**: each ATT(g,t) carries its influence function for every unit
  (zero for units outside the comparison), scaled as R ``did`` does (``n / n_gt`` times the
  2x2 influence function), so that ``se = sqrt(sum psi^2) / n``.
* **Aggregations** (CS Section 3, eqs. 3.3-3.11; R ``did::aggte``): ``simple`` (the
  cohort-size weighted average of post-treatment ATT(g,t), term ``att``), ``dynamic`` (event
  time ``e = t - g``, ``event:E``, and the average over ``e >= 0``, ``event_avg``), ``group``
  (``cohort:G`` and their cohort-size weighted average ``cohort_avg``), ``calendar``
  (``calendar:T`` and their mean ``calendar_avg``). Aggregations whose weights are
  estimated cohort shares include the extra influence-function term for the estimated
  weights (R ``did`` ``wif``): for an aggregate ``sum_k w_k ATT_k`` with
  ``w_k = p_{g_k} / sum_j p_{g_j}`` that term is ``sum_k (1{G=g_k} - p_{g_k})(ATT_k -
  aggregate) / sum_j p_{g_j}``.

  For the overall group aggregation (``cohort_avg``) the R ``did`` 2.x source passes the
  vector of ATT(g,t) cohorts, not the list of cohorts, to its weight-influence function
  (so it would use the first cohort's indicator for every cohort); we use each cohort's
  own indicator, as moderndid 0.2 does (our ``cohort_avg`` SE matches moderndid to 1e-12
  on mpdta). Point estimates are unaffected.
* **Inference**: analytic standard errors from the influence functions
  (``sqrt(sum_i psi_i^2)/n``; with ``cluster``, ``sqrt(sum_c (sum_{i in c} psi_i)^2)/n``), or
  the multiplier bootstrap (CS Algorithm 1; :mod:`zoneimpact.inference.bootstrap`) with
  Rademacher weights as R ``did`` uses, IQR-based standard errors and sup-t critical
  values for simultaneous bands over each family (ATT(g,t), event times, cohorts,
  calendar periods). All terms share the same bootstrap draws: every term's influence
  function is a linear combination of the ATT(g,t) influence functions and the centred
  cohort indicators, so the bootstrap is one chunked matrix product. ``vcov`` is always
  the analytic influence-function covariance (clustered when asked).

Weights
-------
``weights`` names a column of sampling weights ``w_i``, constant within unit (R ``did``
``weightsname``). As in R ``did`` (which passes them to DRDID as ``i.weights``): the 2x2
estimators are the weighted ones of Sant'Anna & Zhao (2020) (weighted means of the
changes; weighted logit and control-group OLS for ``ipw``/``reg``/``dr``) with the weights
inside their influence functions; the cohort shares of the aggregations are
``p_g = mean(w_i 1{G_i = g})`` with ``w`` normalised to mean one, and the weight-estimation
term uses ``w_i 1{G_i = g} - p_g`` (R ``compute.aggte``: ``pg <- mean(weights.ind * (G ==
g))``). Checked against moderndid 0.2 with its aggregation given the unit weights
(``benchmarks/reference/designs_reference.py``: moderndid's ``aggte`` drops them) to 1e-13.

Unbalanced panels
-----------------
Each ATT(g,t) uses the units observed (non-missing outcome) in both of its periods; a
unit's influence function is zero in the cells it cannot enter, and cohort shares use
all units. On a balanced panel this is exactly R ``did`` with ``panel = TRUE``; on an
unbalanced panel it differs from R's ``allow_unbalanced_panel = TRUE`` (which switches to
repeated cross-section estimators) and from R's default (which drops every unit with a
missing period). ``info["unbalanced"]`` says when it applied.

Why by hand: the estimator is vectorised over units (one pass of numpy per ATT(g,t) and a
single matrix product for the bootstrap); statsmodels' GLM/OLS would add per-cell
overhead and do not return the pieces of the influence function needed here, so the
logit (Newton-Raphson) and the control-group OLS are a few lines of numpy each.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import EstimationError, PanelError, SpecError
from ..inference.bootstrap import bootstrap_se, cluster_sums, multiplier_draws, sup_t_critical
from ..inference.pretrends import pretrend_wald
from ..panel import RESERVED, Panel, _v
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
)
from ._scale import scale_equivariant
from ._weights import check_weight_name, unit_weights

__all__ = ["CallawaySantAnnaResult", "fit"]

_CONTROL = {
    "never_treated": "never_treated",
    "nevertreated": "never_treated",
    "never": "never_treated",
    "not_yet_treated": "not_yet_treated",
    "notyettreated": "not_yet_treated",
    "not_yet": "not_yet_treated",
}
_METHODS = ("unconditional", "reg", "ipw", "dr")
_AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
#: Propensity-score safeguards of R DRDID (>= 1.0): controls with a score at or above
#: 0.995 get no weight, scores are capped at 1 - 1e-6, and R did declares the overlap
#: condition violated (and the cell NA) when a score reaches 0.999.
_TRIM_LEVEL = 0.995
_PS_CAP = 1 - 1e-6
_OVERLAP = 0.999
#: Largest bootstrap draw matrix (n_boot x influence columns, float64) held in memory.
_MAX_DRAW_BYTES = 8 * 2**30
#: Most group-time cells estimated (their terms' covariance is held densely).
_MAX_CELLS = 10_000
#: Up to this many influence columns the covariance goes through the columns' Gram matrix.
_DENSE_MEAT = 2_000


def _event_bound(value: Any, name: str, default: float) -> float:
    """``min_e``/``max_e``: a number (whole or infinite) or None for no bound."""
    if value is None:
        return default
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, int | float | np.integer | np.floating)
        or np.isnan(value)
        or (np.isfinite(value) and float(value) != np.round(float(value)))
    ):
        raise SpecError(
            f"{name} must be a whole number of periods (or None for no bound); received {value!r}."
        )
    return float(value)


@dataclass(frozen=True)
class CallawaySantAnnaResult(EstimationResult):
    """Result of :func:`fit`: aggregated terms plus the group-time effects.

    Attributes
    ----------
    att_gt : DataFrame
        One row per ATT(g,t): ``cohort``, ``time``, ``event_time``, ``base_period``,
        ``estimate``, ``se``, ``n_treated``, ``n_control`` (and ``band_low``/``band_high``
        with the bootstrap).
    influence : ndarray, shape (n_units, n_cells)
        Influence functions of the ATT(g,t) in ``att_gt`` order (NaN columns for cells that
        could not be estimated).
    term_influence : ndarray, shape (n_units, n_terms)
        Influence functions of the rows of ``terms`` (weight-estimation terms included).
    units : ndarray
        Unit ids in the row order of both influence matrices.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "att_gt": {"estimate": 1, "se": 1, "band_low": 1, "band_high": 1},
        "influence": 1,
        "term_influence": 1,
    }

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None
    term_influence: np.ndarray | None = None
    units: np.ndarray | None = None

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"att_gt": self.att_gt}


# ---------------------------------------------------------------------------- 2x2 DiD
def _logit(x: np.ndarray, d: np.ndarray, iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Weighted) logit MLE by Newton-Raphson; fitted probabilities and ``(X'WX)^{-1}``.

    ``iw`` are the observation weights (R ``glm(weights=)`` as DRDID passes ``i.weights``).
    """
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = special.expit(x @ beta)
        w = iw * p * (1 - p)
        hess = (x * w[:, None]).T @ x
        step = np.linalg.solve(hess, x.T @ (iw * (d - p)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12 * (1 + np.max(np.abs(beta))):
            break
    p = special.expit(x @ beta)
    w = iw * p * (1 - p)
    return p, np.linalg.inv((x * w[:, None]).T @ x)


def _ols_controls(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Weighted) OLS of ``dy`` on ``x`` among controls: fitted values for all, and its
    asymptotic linear representation."""
    wc = iw * (1 - d)
    xtx = (x * wc[:, None]).T @ x
    if np.linalg.cond(xtx) > 1 / np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular control-group design")
    coef = np.linalg.solve(xtx, x.T @ (wc * dy))
    fitted = x @ coef
    n = len(d)
    # asymptotic linear representation of the OLS coefficients (SZ 2020, Appendix)
    alr = (wc * (dy - fitted))[:, None] * x @ np.linalg.inv(xtx / n)
    return fitted, alr


def _att_reg(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD (SZ 2020 eq. 2.2; R ``DRDID::reg_did_panel``)."""
    fitted, alr = _ols_controls(dy, d, x, iw)
    wt = iw * d
    pt = wt.mean()
    eta_t = np.mean(wt * dy) / pt
    eta_c = np.mean(wt * fitted) / pt
    inf_t = (wt * dy - wt * eta_t) / pt
    m1 = (wt[:, None] * x).mean(axis=0)
    inf_c = (wt * fitted - wt * eta_c + alr @ m1) / pt
    return eta_t - eta_c, inf_t - inf_c


def _att_ipw(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Standardised IPW DiD (SZ 2020 eq. 2.3 normalised; R ``DRDID::std_ipw_did_panel``)."""
    ps, hinv = _ps(d, x, iw)
    n = len(d)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    w_t = trim * iw * d
    w_c = trim * iw * ps * (1 - d) / (1 - ps)
    eta_t = np.mean(w_t * dy) / w_t.mean()
    eta_c = np.mean(w_c * dy) / w_c.mean()
    alr_ps = ((iw * (d - ps))[:, None] * x) @ (hinv * n)
    inf_t = (w_t * dy - w_t * eta_t) / w_t.mean()
    m2 = ((w_c * (dy - eta_c))[:, None] * x).mean(axis=0)
    inf_c = (w_c * dy - w_c * eta_c + alr_ps @ m2) / w_c.mean()
    return eta_t - eta_c, inf_t - inf_c


def _att_dr(
    dy: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Improved locally efficient DR DiD (SZ 2020 eq. 3.1; R ``DRDID::drdid_panel``)."""
    ps, hinv = _ps(d, x, iw)
    n = len(d)
    fitted, alr_ols = _ols_controls(dy, d, x, iw)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    w_t = trim * iw * d
    w_c = trim * iw * ps * (1 - d) / (1 - ps)
    resid = dy - fitted
    eta_t = np.mean(w_t * resid) / w_t.mean()
    eta_c = np.mean(w_c * resid) / w_c.mean()
    alr_ps = ((iw * (d - ps))[:, None] * x) @ (hinv * n)
    m1 = (w_t[:, None] * x).mean(axis=0)
    inf_t = (w_t * resid - w_t * eta_t - alr_ols @ m1) / w_t.mean()
    m2 = ((w_c * (resid - eta_c))[:, None] * x).mean(axis=0)
    m3 = (w_c[:, None] * x).mean(axis=0)
    inf_c = (w_c * resid - w_c * eta_c + alr_ps @ m2 - alr_ols @ m3) / w_c.mean()
    return eta_t - eta_c, inf_t - inf_c


def _ps(d: np.ndarray, x: np.ndarray, iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ps, hinv = _logit(x, d, iw)
    if ps.max() >= _OVERLAP:
        raise _Overlap(f"propensity score reaches {ps.max():.4f} (overlap violated)")
    return np.minimum(ps, _PS_CAP), hinv


class _Overlap(ArithmeticError):
    pass


_ESTIMATORS = {"reg": _att_reg, "ipw": _att_ipw, "dr": _att_dr}


# ---------------------------------------------------------------------------- helpers
def _check_cluster_name(panel: Panel, cluster: Any) -> None:
    """A cluster must be a column name; ``time`` and ``cohort`` are not clusters of units."""
    if not isinstance(cluster, str | int) or isinstance(cluster, bool):
        raise SpecError(
            f"cluster must be a column name (e.g. 'region') or None for units; received "
            f"{cluster!r} ({type(cluster).__name__})."
        )
    if cluster in ("time", "cohort"):
        raise SpecError(
            f"cluster={cluster!r} does not group units: clusters must be constant within "
            "each unit (a region, a province). Pass a panel or geography column, or None to "
            "cluster by unit."
        )


def _cluster_labels(panel: Panel, cluster: str, units: np.ndarray) -> np.ndarray:
    """Per-unit cluster labels from a column of ``panel.data`` or ``panel.geography``."""
    data = panel.data
    if cluster == "unit":
        return units
    if cluster in data.columns and cluster not in ("time", "cohort"):
        per = data.groupby("unit")[cluster].nunique(dropna=False)
        if (per > 1).any():
            u = per.index[(per > 1).to_numpy()][0]
            raise SpecError(
                f"Cluster column {cluster!r} varies within unit {_v(u)!r}; clusters must be "
                "constant per unit (e.g. a region)."
            )
        labels = data.groupby("unit")[cluster].first().reindex(units)
    elif panel.geography is not None and cluster in panel.geography.columns:
        labels = panel.require_geography([cluster], units)[cluster]
    else:
        geo = [] if panel.geography is None else list(panel.geography.columns)
        raise SpecError(
            f"Cluster variable {cluster!r} is neither a panel column {list(data.columns)} nor "
            f"a geography column {geo}. Pass e.g. cluster='region'."
        )
    if labels.isna().any():
        u = labels.index[labels.isna().to_numpy()][0]
        raise SpecError(f"Cluster variable {cluster!r} is missing for unit {_v(u)!r}.")
    return labels.to_numpy()


def _gram(a: np.ndarray, block: int = 32_768) -> np.ndarray:
    """``a.T @ a`` summed over blocks of rows: OpenBLAS's ``syrk`` on a tall, thin matrix
    (500,000 x 70) is several times slower than on blocks that stay in cache."""
    out = np.zeros((a.shape[1], a.shape[1]))
    for r0 in range(0, a.shape[0], block):
        blk = a[r0 : r0 + block]
        out += blk.T @ blk
    return out


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class _Cell:
    g: float
    t: int
    e: int
    base: int
    att: float = np.nan
    n_treated: int = 0
    n_control: int = 0
    normalised: bool = False


# ---------------------------------------------------------------------------- fit
@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    control_group: str = "never_treated",
    est_method: str | None = None,
    covariates: Sequence[str] | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    aggregations: Sequence[str] = _AGGREGATIONS,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
    bootstrap: bool = True,
    n_boot: int = 999,
    cluster: str | None = None,
    uniform_bands: bool = True,
    boot_weights: Literal["rademacher", "mammen"] = "rademacher",
    chunk_size: int | None = None,
    weights: str | None = None,
) -> CallawaySantAnnaResult:
    """Estimate Callaway & Sant'Anna (2021) group-time ATTs and their aggregations.

    Parameters
    ----------
    panel : Panel
        Validated panel (cohort = first zone period; ``inf`` never treated).
    outcome : str
        Outcome column.
    rng : numpy.random.Generator, optional
        Source of the bootstrap weights (fresh entropy when None).
    alpha : float
        Level for confidence intervals and uniform bands.
    n_jobs : int
        Threads for the bootstrap chunks (results do not depend on it).
    control_group : {"never_treated", "not_yet_treated"}
        Comparison units (CS eq. 2.3 / 2.4). R spellings ``nevertreated`` and
        ``notyettreated`` are accepted.
    est_method : {"unconditional", "reg", "ipw", "dr"}, optional
        2x2 estimator; default ``"dr"`` with covariates, ``"unconditional"`` without.
        Without covariates ``reg``, ``ipw`` and ``dr`` equal ``unconditional``.
    covariates : sequence of str, optional
        Panel columns to condition on (value in the earlier period of each 2x2).
    anticipation : int
        Periods of anticipation ``delta`` (CS Assumption 3).
    base_period : {"varying", "universal"}
        Base period of pre-treatment cells (see the module docstring).
    aggregations : sequence of {"simple", "dynamic", "group", "calendar"}
        Aggregations to report; ``simple`` (term ``att``) is always computed.
    min_e, max_e : float
        Event-time window of the dynamic aggregation; ``max_e`` also caps the cells used
        by ``simple`` and ``group`` (R ``aggte``).
    balance_e : int, optional
        Keep only cohorts observed for at least ``balance_e`` periods after treatment in
        the dynamic aggregation (R ``aggte(balance_e=)``).
    bootstrap : bool
        Multiplier-bootstrap standard errors and uniform bands (R default) instead of
        analytic influence-function standard errors.
    n_boot : int
        Bootstrap draws.
    cluster : str, optional
        Column of ``panel.data`` (constant within unit) or of ``panel.geography``
        (e.g. ``"region"``) to cluster on.
    uniform_bands : bool
        Report simultaneous (sup-t) bands ``band_low``/``band_high`` (bootstrap only).
    boot_weights : {"rademacher", "mammen"}
        Multiplier weights (R ``did``: Rademacher).
    chunk_size : int, optional
        Bootstrap draws per chunk and child generator (default 100); each running chunk
        holds ``chunk_size`` x 32,768 weights whatever the number of units.
    weights : str, optional
        Column of positive sampling weights, constant within each unit (R ``did``
        ``weightsname``): every 2x2 estimator is the weighted one of DRDID
        (``i.weights``), cohort shares are weighted shares, and the influence functions
        carry the weights (module docstring, "Weights").

    Returns
    -------
    CallawaySantAnnaResult
        Terms ``att``, ``event:E``, ``event_avg``, ``cohort:G``, ``cohort_avg``,
        ``calendar:T``, ``calendar_avg``; ``att_gt`` table; influence functions; ``info``
        with ``control_group``, ``est_method``, ``base_period``, ``n_boot``, ``cluster``,
        ``pretrend_p`` (joint Wald test of the pre-period event-time effects).
    """
    # ------------------------------------------------------------------ options
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="callaway_santanna"
    )
    cg = _CONTROL.get(control_group.lower()) if isinstance(control_group, str) else None
    if cg is None:
        raise SpecError(
            f"Unknown control_group {control_group!r}. Use 'never_treated' or 'not_yet_treated'."
        )
    covs = check_names(covariates, "covariates")
    if est_method is None:
        est_method = "dr" if covs else "unconditional"
    check_choice(est_method, "est_method", _METHODS)
    if est_method == "unconditional" and covs:
        raise SpecError(
            f"est_method='unconditional' ignores covariates {covs}; choose 'dr', 'ipw' or "
            "'reg', or drop the covariates."
        )
    if not isinstance(base_period, str) or base_period not in ("varying", "universal"):
        raise SpecError(f"Unknown base_period {base_period!r}. Use 'varying' or 'universal'.")
    aggs = check_names(aggregations, "aggregations", none=False)
    bad = [a for a in aggs if not isinstance(a, str) or a not in _AGGREGATIONS]
    if bad:
        raise SpecError(f"Unknown aggregation(s) {bad}. Use any of {list(_AGGREGATIONS)}.")
    anticipation = check_int(anticipation, "anticipation", minimum=0)
    bootstrap = check_bool(bootstrap, "bootstrap")
    uniform_bands = check_bool(uniform_bands, "uniform_bands")
    n_boot = check_int(n_boot, "n_boot", minimum=2 if bootstrap else 0)
    check_choice(boot_weights, "boot_weights", ("rademacher", "mammen"))
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1, none=True)
    balance_e = check_int(balance_e, "balance_e", minimum=0, none=True)
    min_e = _event_bound(min_e, "min_e", -np.inf)
    max_e = _event_bound(max_e, "max_e", np.inf)
    if min_e > max_e:
        raise SpecError(f"min_e={min_e:g} exceeds max_e={max_e:g}; the event window is empty.")
    if max_e < 0:
        raise SpecError(
            f"max_e={max_e:g} leaves no post-treatment event time (e >= 0) for the overall "
            "effect; use max_e >= 0."
        )
    if cluster is not None:
        _check_cluster_name(panel, cluster)
    weights = check_weight_name(panel, weights)

    data = panel.data
    missing = [c for c in covs if not isinstance(c, str) or c not in data.columns or c in RESERVED]
    if missing:
        raise PanelError(
            f"Covariate(s) {missing} not in the panel; its covariates are "
            f"{list(panel.covariates)}. Add them with Panel.from_frame(..., covariates=[...])."
        )

    # ------------------------------------------------------------------ arrays
    # units x periods arrays by direct indexing (pivot is several times slower)
    ucode, units = pd.factorize(data["unit"], sort=True)
    tcode, periods = pd.factorize(data["time"], sort=True)
    units = np.asarray(units)
    periods = np.asarray(periods).astype(np.int64)
    n, n_t = len(units), len(periods)

    def wide(col: str) -> np.ndarray:
        out = np.full((n, n_t), np.nan)
        out[ucode, tcode] = data[col].to_numpy(dtype=float)
        return out

    y = wide(outcome)
    gvec = np.full(n, np.nan)
    gvec[ucode] = data["cohort"].to_numpy(dtype=float)
    xw = [wide(c) for c in covs]
    unbalanced = bool(np.isnan(y).any())
    # unit weights normalised to mean one (R did); only ratios of them enter the estimates
    uw = np.ones(n) if weights is None else unit_weights(data, weights, units)
    uw = uw / uw.mean()
    is_weighted = weights is not None

    cohorts = np.sort(np.unique(gvec[np.isfinite(gvec)]))
    never = ~np.isfinite(gvec)
    if cg == "never_treated" and not never.any():
        raise EstimationError(
            "control_group='never_treated' but no unit is never treated (every unit has a "
            "finite cohort). Use control_group='not_yet_treated'."
        )
    if cohorts.size == 0:
        raise EstimationError("No treated cohort in the panel: nothing to estimate.")

    # ------------------------------------------------------------------ cells
    cells: list[_Cell] = []
    tfac = 1 if base_period == "varying" else 0
    for g in cohorts:
        pre = np.flatnonzero(periods + anticipation < g)
        if pre.size == 0:
            warnings.warn(
                f"Cohort {g:g} has no pre-treatment period (anticipation={anticipation}); its "
                "units are dropped from the comparisons.",
                stacklevel=2,
            )
            continue
        pret_g = int(pre[-1])
        for c in range(tfac, n_t):
            post = g <= periods[c]
            b = pret_g if (post or base_period == "universal") else c - 1
            cells.append(_Cell(g=float(g), t=int(periods[c]), e=int(periods[c] - g), base=b))
    if not cells:
        raise EstimationError("No group-time cell can be formed (no cohort has a pre-period).")

    k = len(cells)
    if k > _MAX_CELLS or n * (k + len(cohorts)) * 8 > _MAX_DRAW_BYTES:
        raise EstimationError(
            f"{k} group-time cells ({len(cohorts)} cohorts x {n_t} periods) for {n} units: "
            f"beyond what this implementation holds (at most {_MAX_CELLS:,} cells and "
            f"{_MAX_DRAW_BYTES / 2**30:.0f} GiB of influence functions). Aggregate the "
            "periods (e.g. days to months) or the cohorts."
        )
    # Influence "basis": the k ATT(g,t) columns followed by the centred cohort indicators
    # (filled below), in one column-major array so that each cell writes one contiguous
    # column in place and no copy is needed to assemble the basis (at 500,000 units each
    # copy is 280 MB).
    basis = np.zeros((n, k + len(cohorts)), order="F")
    psi = basis[:, :k]
    col_of_t = {int(p): i for i, p in enumerate(periods)}
    est_fn = _ESTIMATORS.get(est_method) if covs else None
    failed: list[str] = []
    for j, cell in enumerate(cells):
        c = col_of_t[cell.t]
        b = cell.base
        if b == c:  # universal base period: normalised to zero
            cell.att, cell.normalised = 0.0, True
            continue
        treat = gvec == cell.g
        if cg == "never_treated":
            ctrl = never.copy()
        else:
            cutoff = max(periods[c], periods[b]) + anticipation
            ctrl = never | ((gvec > cutoff) & (gvec != cell.g))
        dy = y[:, c] - y[:, b]
        ok = np.isfinite(dy)
        treat &= ok
        ctrl &= ok
        n1t, n1c = int(treat.sum()), int(ctrl.sum())
        cell.n_treated, cell.n_control = n1t, n1c
        if n1t == 0 or n1c == 0:
            psi[:, j] = np.nan
            failed.append(f"({cell.g:g},{cell.t}) no {'treated' if n1t == 0 else 'control'} units")
            continue
        if est_fn is None and not is_weighted:
            mt = dy[treat].mean()
            mc = dy[ctrl].mean()
            cell.att = float(mt - mc)
            col = psi[:, j]  # contiguous view: written in place
            col[treat] = n * (dy[treat] - mt) / n1t
            col[ctrl] = -n * (dy[ctrl] - mc) / n1c
            continue
        if est_fn is None:
            # weighted difference of mean changes; influence n w_i (dy_i - mean) / W_group
            wt_, wc_ = uw[treat], uw[ctrl]
            mt = float(wt_ @ dy[treat] / wt_.sum())
            mc = float(wc_ @ dy[ctrl] / wc_.sum())
            cell.att = mt - mc
            col = psi[:, j]
            col[treat] = n * wt_ * (dy[treat] - mt) / wt_.sum()
            col[ctrl] = -n * wc_ * (dy[ctrl] - mc) / wc_.sum()
            continue
        sub = treat | ctrl
        xc = min(b, c)
        xmat = np.column_stack([np.ones(int(sub.sum()))] + [xv[sub, xc] for xv in xw])
        if not np.all(np.isfinite(xmat)):
            bad_row = np.flatnonzero(~np.all(np.isfinite(xmat), axis=1))[0]
            bad_unit = units[np.flatnonzero(sub)[bad_row]]
            bad_cov = [covs[i] for i in range(len(covs)) if not np.isfinite(xmat[bad_row, i + 1])]
            raise PanelError(
                f"Covariate {bad_cov[0]!r} is missing for unit {_v(bad_unit)!r} in period "
                f"{periods[xc]} (needed for ATT({cell.g:g},{cell.t})). Impute it or drop the unit."
            )
        d = treat[sub].astype(float)
        try:
            att_cell, inf_sub = est_fn(dy[sub], d, xmat, uw[sub])
        except (np.linalg.LinAlgError, _Overlap) as exc:
            psi[:, j] = np.nan
            failed.append(f"({cell.g:g},{cell.t}) {exc}")
            continue
        cell.att = float(att_cell)
        col = psi[:, j]
        col[sub] = (n / sub.sum()) * inf_sub
    if failed:
        warnings.warn(
            f"{len(failed)} ATT(g,t) cell(s) could not be estimated and are left out of the "
            f"aggregations: {'; '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}",
            stacklevel=2,
        )

    att = np.array([cl.att for cl in cells])
    valid = np.isfinite(att)
    if not valid[[cl.e >= 0 for cl in cells]].any():
        why = f": {'; '.join(failed[:3])}" if failed else ""
        raise EstimationError(
            f"No post-treatment ATT(g,t) could be estimated for {outcome!r} "
            f"({len(failed)} of {len(cells)} cells failed{why})."
        )
    cell_g = np.array([cl.g for cl in cells])
    cell_t = np.array([cl.t for cl in cells])
    cell_e = np.array([cl.e for cl in cells])

    # Influence "basis": the ATT(g,t) columns plus centred cohort indicators 1{G=g} - p_g
    # (the influence function of the estimated cohort shares). Every term's influence
    # function is basis @ coefficient vector.
    pg_cohort = np.array([np.mean(uw * (gvec == g)) for g in cohorts])
    for i, g in enumerate(cohorts):
        basis[:, k + i] = uw * (gvec == g) - pg_cohort[i]
    # cells that could not be estimated: NaN in the reported influence functions, zero in
    # the basis (the copy is made only when such cells exist)
    influence = psi
    if not valid.all():
        influence = psi.copy(order="F")
        psi[:, ~valid] = 0.0
    coh_idx = {float(g): i for i, g in enumerate(cohorts)}
    pg_cell = np.array([pg_cohort[coh_idx[g]] for g in cell_g])

    def weighted(keep: np.ndarray, wif: bool) -> tuple[float, np.ndarray]:
        idx = np.flatnonzero(keep & valid)
        if idx.size == 0:
            return np.nan, np.full(basis.shape[1], np.nan)
        s = pg_cell[idx].sum()
        w = pg_cell[idx] / s
        est = float(w @ att[idx])
        a = np.zeros(basis.shape[1])
        a[idx] = w
        if wif:
            for i in idx:
                a[k + coh_idx[cell_g[i]]] += (att[i] - est) / s
        return est, a

    names: list[str] = []
    ests: list[float] = []
    coefs: list[np.ndarray] = []
    family: list[str] = []

    def add(name: str, est: float, a: np.ndarray, fam: str) -> None:
        names.append(name)
        ests.append(est)
        coefs.append(a)
        family.append(fam)

    post = (cell_e >= 0) & (cell_e <= max_e)
    est, a = weighted(post, wif=True)
    if not np.isfinite(est):
        raise EstimationError(
            f"No estimated post-treatment ATT(g,t) lies within max_e={max_e:g}: the overall "
            "effect is undefined. Raise max_e."
        )
    add("att", est, a, "")

    if "dynamic" in aggs:
        include = np.ones(k, bool)
        eseq = np.unique(cell_e[valid])
        if balance_e is not None:
            maxt, mint = cell_t.max(), cell_t.min()
            include = (maxt - cell_g) >= balance_e
            if not (include & valid).any():
                raise EstimationError(
                    f"balance_e={balance_e}: no cohort is observed for {balance_e} periods "
                    f"after treatment (the last period is {int(maxt)}, cohorts "
                    f"{[int(g) for g in cohorts]}); lower balance_e."
                )
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - maxt + mint)]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        ev_rows = []
        for e in eseq:
            est, a = weighted((cell_e == e) & include, wif=True)
            if np.isfinite(est):
                add(f"event:{int(e)}", est, a, "event")
                ev_rows.append((int(e), est, a))
        pos = [(est, a) for e, est, a in ev_rows if e >= 0]
        if pos:
            add(
                "event_avg",
                float(np.mean([p[0] for p in pos])),
                np.mean([p[1] for p in pos], axis=0),
                "",
            )
    if "group" in aggs:
        g_rows = []
        for g in cohorts:
            est, a = weighted((cell_g == g) & post, wif=False)
            if np.isfinite(est):
                add(f"cohort:{int(g)}", est, a, "cohort")
                g_rows.append((g, est, a))
        if g_rows:
            pgs = np.array([pg_cohort[coh_idx[float(g)]] for g, _, _ in g_rows])
            s = pgs.sum()
            est = float(np.sum(pgs * np.array([r[1] for r in g_rows])) / s)
            a = sum((pgs[i] / s) * g_rows[i][2] for i in range(len(g_rows)))
            a = np.array(a, dtype=float)
            for g, eg, _ in g_rows:
                a[k + coh_idx[float(g)]] += (eg - est) / s
            add("cohort_avg", est, a, "")
    if "calendar" in aggs:
        c_rows = []
        for t in np.unique(cell_t):
            if t < cohorts.min():
                continue
            est, a = weighted((cell_t == t) & (cell_g <= t), wif=True)
            if np.isfinite(est):
                add(f"calendar:{int(t)}", est, a, "calendar")
                c_rows.append((est, a))
        if c_rows:
            add(
                "calendar_avg",
                float(np.mean([r[0] for r in c_rows])),
                np.mean([r[1] for r in c_rows], axis=0),
                "",
            )

    amat = np.column_stack(coefs)
    ests_arr = np.array(ests)

    # ------------------------------------------------------------------ inference
    labels = None
    if cluster is not None:
        labels = _cluster_labels(panel, cluster, units)
    meat_src = basis if labels is None else cluster_sums(basis, labels)
    if meat_src.shape[1] <= _DENSE_MEAT:
        meat = _gram(meat_src) / n**2
        vcov = amat.T @ meat @ amat
    else:
        # many cells (long panels): the same covariance without the k x k meat matrix
        scores = meat_src @ amat
        vcov = _gram(scores) / n**2
    cell_var = np.einsum("ij,ij->j", meat_src[:, :k], meat_src[:, :k]) / n**2
    se_terms = np.sqrt(np.clip(np.diag(vcov), 0, None))
    se_cells = np.sqrt(np.clip(cell_var, 0, None))
    # SE is undefined (R: NA) only for what is zero by construction: cells normalised by a
    # universal base period and terms built from them alone. A zero SE elsewhere (e.g. a
    # constant outcome) is a real zero, not a missing value.
    normalised = np.array([cl.normalised for cl in cells], dtype=bool)
    by_construction = ~np.any(amat[:k][~normalised] != 0, axis=0) & ~np.any(amat[k:] != 0, axis=0)
    se_terms = np.where(by_construction, np.nan, se_terms)
    se_cells = np.where(valid & ~normalised, se_cells, np.nan)

    band_terms = band_cells = None
    crit: dict[str, float] = {}
    if bootstrap:
        # multiplier weights are drawn per unit (or cluster) in an order fixed by the data,
        # not the labels, so relabelling units cannot change the draws
        need = float(n_boot) * basis.shape[1] * 8
        if need > _MAX_DRAW_BYTES:
            raise SpecError(
                f"n_boot={n_boot} bootstrap draws of {basis.shape[1]} influence columns need "
                f"{need / 2**30:,.0f} GiB of memory (limit {_MAX_DRAW_BYTES / 2**30:.0f} GiB); "
                "999 draws are R did's default."
            )
        pos = pd.Index(units).get_indexer(panel.canonical_order(units, outcome))
        draws = multiplier_draws(
            basis[pos],
            n_boot=n_boot,
            rng=rng,
            cluster=None if labels is None else pd.factorize(np.asarray(labels)[pos])[0],
            chunk_size=chunk_size,
            n_jobs=n_jobs,
            weights=boot_weights,
        )
        term_draws = draws @ amat
        # every draw exactly zero (a constant outcome) is a zero SE, except where the
        # value is zero by construction (R did's NA); bootstrap_se leaves both NaN
        zero_cells = np.all(draws[:, :k] == 0, axis=0) & valid & ~normalised
        zero_terms = np.all(term_draws == 0, axis=0) & ~by_construction
        se_cells = np.where(zero_cells, 0.0, np.where(valid, bootstrap_se(draws[:, :k]), np.nan))
        se_terms = np.where(zero_terms, 0.0, bootstrap_se(term_draws))
        if uniform_bands:
            z = stats.norm.ppf(1 - alpha / 2)
            crit["att_gt"] = sup_t_critical(draws[:, :k], se_cells, alpha)
            fam = np.array(family)
            cvec = np.full(len(names), z)
            for f in ("event", "cohort", "calendar"):
                m = fam == f
                if m.any():
                    crit[f] = sup_t_critical(term_draws[:, m], se_terms[m], alpha)
                    # R did falls back to pointwise when the band would be narrower
                    cvec[m] = max(crit[f], z) if np.isfinite(crit[f]) else z
            band_terms = (ests_arr - cvec * se_terms, ests_arr + cvec * se_terms)
            cc = max(crit["att_gt"], z) if np.isfinite(crit["att_gt"]) else z
            band_cells = (att - cc * se_cells, att + cc * se_cells)

    terms = pd.DataFrame({"term": names, "estimate": ests_arr, "se": se_terms})
    if band_terms is not None:
        terms["band_low"], terms["band_high"] = band_terms
    att_gt = pd.DataFrame(
        {
            "cohort": cell_g.astype(np.int64),
            "time": cell_t,
            "event_time": cell_e,
            "base_period": periods[[cl.base for cl in cells]],
            "estimate": att,
            "se": se_cells,
            "n_treated": [cl.n_treated for cl in cells],
            "n_control": [cl.n_control for cl in cells],
        }
    )
    if band_cells is not None:
        att_gt["band_low"], att_gt["band_high"] = band_cells

    pretrend = pretrend_wald(terms, vcov)
    info: dict[str, Any] = {
        "control_group": cg,
        "est_method": est_method,
        "covariates": ",".join(covs) if covs else None,
        "base_period": base_period,
        "anticipation": int(anticipation),
        "n_boot": n_boot if bootstrap else 0,
        "boot_weights": boot_weights if bootstrap else None,
        "cluster": cluster,
        "n_clusters": int(len(np.unique(labels))) if labels is not None else None,
        "se_type": "multiplier bootstrap" if bootstrap else "analytic influence function",
        "pretrend_p": _nan_to_none(pretrend["p_value"]),
        "pretrend_stat": _nan_to_none(pretrend["statistic"]),
        "pretrend_df": int(pretrend["df"]),
        "n_cells": int(k),
        "n_cells_failed": int(len(failed)),
        "unbalanced": unbalanced,
        "weights": weights or "",
        "crit_event": _nan_to_none(crit.get("event")),
        "crit_att_gt": _nan_to_none(crit.get("att_gt")),
    }
    return CallawaySantAnnaResult(
        estimator="callaway_santanna",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(n),
        n_obs=int(np.isfinite(y).sum()),
        vcov=vcov,
        info=info,
        alpha=alpha,
        att_gt=att_gt,
        influence=influence,
        term_influence=basis @ amat,
        units=units,
    )
