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
  ``t`` for pre-treatment cells (short differences) and the last period before
  ``g - anticipation`` for post-treatment cells and for the anticipation window
  ``g - anticipation <= t < g`` (R ``did`` PR #276); ``"universal"`` uses that period
  throughout and reports the base cell as 0. ``anticipation`` is counted in units of the
  time column.
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
  cohort indicators, so the bootstrap is one chunked matrix product. ``vcov`` is the
  analytic influence-function covariance (clustered when asked), except after
  ``result.with_inference("jackknife")``: the delete-one-cluster CV3 covariance of CS
  refitted without each cluster (:mod:`zoneimpact.inference.jackknife`), which carries
  what the influence function linearises away (estimated propensity scores, heavy-tailed
  clusters; ``benchmarks/RESULTS.md``, session 29).

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
logit (Newton-Raphson) and the control-group OLS are a few lines of numpy each. The logit
is remembered by a digest of its inputs (``_LOGIT_MEMO``; ``functools.lru_cache`` cannot
key on arrays): other outcomes and scales repeat most propensity fits exactly. The
delete-one-cluster jackknife estimates each ATT(g,t) for every deletion at once
(:func:`_batched_cells`: the logits, regressions and weighted means of all deletions as
one stack of arrays, the deleted units given weight zero): a refit per deletion spent
most of its time in numpy's per-call overhead on small arrays, and no library batches
DRDID's 2x2 over subsamples.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import EstimationError, PanelError, SpecError, ZoneImpactError
from ..inference.bootstrap import (
    bootstrap_se,
    cluster_sums,
    min_clusters,
    multiplier_draws,
    sup_t_critical,
)
from ..inference.covariance import warn_few_treated
from ..inference.jackknife import cluster_jackknife_vcov
from ..inference.pretrends import pretrend_wald
from ..panel import RESERVED, Panel, _v
from ..parallel import as_generator, replicate, snapshot
from ..results import (
    EstimationResult,
    check_alpha,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
    without_level_records,
)
from ._gt_aggregate import variance_se, warn_negative_two_way
from ._scale import outcome_scale, scale_equivariant
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
    group_time : GroupTime
        The building blocks :meth:`aggregate` and :meth:`with_inference` work from.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "att_gt": {"estimate": 1, "se": 1, "band_low": 1, "band_high": 1},
        "influence": 1,
        "term_influence": 1,
        "group_time": 1,
    }

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None
    term_influence: np.ndarray | None = None
    units: np.ndarray | None = None
    group_time: GroupTime | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"att_gt": self.att_gt}

    def _panel(self) -> Panel:
        if self.panel is None:
            raise EstimationError("This result keeps no panel; refit in memory.")
        return self.panel

    def _blocks(self) -> GroupTime:
        if self.group_time is None:
            raise EstimationError(
                "This result keeps no group-time building blocks (it was not made by "
                "callaway_santanna.fit); refit to aggregate or change the inference."
            )
        return self.group_time

    def aggregate(
        self,
        type: str = "dynamic",
        *,
        min_e: float | None = None,
        max_e: float | None = None,
        balance_e: int | None = None,
        bins: Sequence[Sequence[int]] | None = None,
    ) -> CallawaySantAnnaResult:
        """Another aggregation of the same ATT(g,t), without re-estimating them (R
        ``did::aggte``; CS 2021 Section 3).

        Parameters
        ----------
        type : {"simple", "dynamic", "group", "calendar"}
            The aggregation; ``att`` (simple) is always included.
        min_e, max_e : float, optional
            Event-time window (dynamic; ``max_e`` also caps simple and group), in units
            of the time column (R ``aggte`` counts recoded periods: the same only on
            regularly spaced periods).
        balance_e : int, optional
            Cohorts observed for at least ``balance_e`` periods after treatment.
        bins : list of [first, last], optional
            User-defined event-time bins, reported as ``event_bin:first..last`` (the
            average of the dynamic effects in the bin).

        Returns
        -------
        CallawaySantAnnaResult
            A new result with the same inference method (the same multiplier draws when
            the fit bootstrapped, so shared terms keep their SEs).
        """
        gt = self._blocks()
        check_choice(type, "type", _AGGREGATIONS)
        lo, hi, bal = _check_window(min_e, max_e, balance_e)
        settings = {
            **self.settings,
            "aggregations": [] if type == "simple" else [type],
            "min_e": lo,
            "max_e": hi,
            "balance_e": bal,
            "bins": _check_bins(bins),
        }
        return self._rebuilt(gt, settings)

    def with_inference(
        self,
        method: str = "analytic",
        *,
        cluster: Any = None,
        n_boot: int | None = None,
        rng: np.random.Generator | int | None = None,
        boot_weights: str | None = None,
        uniform_bands: bool | None = None,
        alpha: float | None = None,
    ) -> CallawaySantAnnaResult:
        """The same estimates with another variance, without re-estimating (the
        influence functions are kept).

        Parameters
        ----------
        method : {"analytic", "bootstrap", "jackknife"}
            Influence-function (CS Theorem 2) or multiplier-bootstrap (Algorithm 1)
            standard errors, or the delete-one-cluster jackknife (CV3; MacKinnon, Nielsen
            & Webb 2023; :mod:`zoneimpact.inference.jackknife`): CS re-estimated without
            each cluster, propensity scores and outcome models included, for every term
            and ATT(g,t); t(G - 1) in verdicts. With covariates each ATT(g,t) is
            estimated for every deletion at once (the same numbers as refitting CS once
            per deletion, to rounding; 2-5x faster on the China curve's designs,
            ``benchmarks/bench_cs_jackknife.py``). The analytic SEs of the doubly robust
            estimator ran short with heavy tails and poor overlap in the package's Monte
            Carlo (SE/SD 0.55-0.85 on China's structure, 27 provinces; the jackknife
            0.97-1.22; ``benchmarks/RESULTS.md``, session 29). A term some deletion leaves
            undefined gets a NaN SE (``info["jackknife_undefined"]``); a deletion that
            removes every unit of a cohort is the jackknife of the procedure, so terms
            averaging that cohort with others use a replicate without it
            (``info["jackknife_cohorts_lost"]``, ``info["jackknife_terms_reweighted"]``).
            A failed refit leaves every SE NaN with a warning (``info["jackknife_failed"]``).
            The pre-trend Wald test reads the jackknife covariance (CR1 scale).
            ``aggregate`` on a jackknife result refits again.
        cluster : str, pandas.Series, or a list of two of them, optional
            Column names of the panel or its geography, or labels as a Series indexed by
            unit (any column of the user's data); two entries cluster two ways
            (``analytic`` only). None: by unit (the jackknife then refits once per unit).
        n_boot, boot_weights, uniform_bands : optional
            Bootstrap settings (default: the fit's).
        rng : numpy.random.Generator or int, optional
            Bootstrap draws; default replays the fit's draws.
        alpha : float, optional
            Level of the bands (default: the fit's).
        """
        gt = self._blocks()
        check_choice(method, "method", ("analytic", "bootstrap", "jackknife"))
        boot = method == "bootstrap"
        if method == "jackknife":
            _check_jackknife(self, cluster)
        s = self.settings
        settings = {
            **s,
            "method": method,
            "bootstrap": boot,
            "labels": _unit_labels(self.panel, cluster, gt.units),
            "cluster": cluster,
            "n_boot": check_int(
                s.get("n_boot", 999) if n_boot is None else n_boot, "n_boot", minimum=2
            ),
            "boot_weights": s.get("boot_weights", "rademacher")
            if boot_weights is None
            else boot_weights,
            "uniform_bands": check_bool(
                s.get("uniform_bands", True) if uniform_bands is None else uniform_bands,
                "uniform_bands",
            ),
        }
        check_choice(settings["boot_weights"], "boot_weights", ("rademacher", "mammen"))
        # the bands and critical values are computed at the new level (a fit at ``alpha``
        # on the same draws), not relabelled
        base = self if alpha is None else replace(self, alpha=check_alpha(alpha))
        if rng is not None:
            settings["rng"] = snapshot(as_generator(rng))
        elif boot and settings.get("rng") is None:
            settings["rng"] = np.random.default_rng()
        return base._rebuilt(gt, settings)

    def _rebuilt(self, gt: GroupTime, settings: dict[str, Any]) -> CallawaySantAnnaResult:
        # an outcome near the float limits (the fit worked on a rescaled copy) is
        # aggregated on that scale again, so squares in the variance cannot overflow
        c = outcome_scale(gt.basis[:, : gt.k])
        if c != 1.0:
            return self._rebuilt_at(gt.rescaled(1 / c), settings).rescaled(c)
        return self._rebuilt_at(gt, settings)

    def _rebuilt_at(self, gt: GroupTime, settings: dict[str, Any]) -> CallawaySantAnnaResult:
        agg = _aggregate_as(gt, settings)
        jack = settings.get("method") == "jackknife"
        extra: dict[str, Any] = {}
        if jack:
            inf, extra = _jackknife_infer(self, gt, agg, settings)
        else:
            inf = _infer(
                gt,
                agg,
                labels=settings["labels"],
                bootstrap=settings["bootstrap"],
                n_boot=settings["n_boot"],
                rng=None if settings.get("rng") is None else snapshot(settings["rng"]),
                chunk_size=settings.get("chunk_size"),
                n_jobs=settings.get("n_jobs", 1),
                boot_weights=settings["boot_weights"],
                uniform_bands=settings["uniform_bands"],
                alpha=self.alpha,
            )
        terms, cells = _terms_and_cells(gt, agg, inf)
        info = {
            **{
                k: v
                for k, v in without_level_records(self.info).items()
                if not k.startswith("jackknife_")
            },
            **_inference_info(
                inf,
                terms,
                bootstrap=settings["bootstrap"],
                n_boot=settings["n_boot"],
                boot_weights=settings["boot_weights"],
                cluster=settings["cluster"],
                n_units=len(gt.units),
                anticipation=int(self.info.get("anticipation", 0)),
                se_type="cluster jackknife (CV3)" if jack else None,
                # CV3 carries CR1's (G - 1)/G scale already (a cluster mean: CV3 = CR1)
                vcov_type="CR1" if jack else "CR0",
            ),
            **extra,
        }
        return replace(
            self,
            terms=terms,
            att_gt=cells,
            vcov=inf.vcov,
            info=info,
            term_influence=gt.basis @ agg.amat,
            settings=settings,
        )


# ---------------------------------------------------------------------------- 2x2 DiD
#: Propensity fits already done in this process, by a digest of their exact inputs (most
#: recently used last). The logit does not see the outcome, so the same cells under
#: another outcome or scale of the outcome (and a jackknife refit's cells that keep all
#: their units) repeat a fit byte for byte: on the China curve about two thirds of a
#: doubly robust CS fit is spent in these logits. A pure function of its inputs, so reuse
#: cannot change a number; bounded by the floats it holds (32 MB), so memory stays small.
_LOGIT_MEMO: OrderedDict[bytes, tuple[np.ndarray, np.ndarray] | str] = OrderedDict()
_LOGIT_MEMO_FLOATS = 4_000_000
_LOGIT_MEMO_HELD = [0]
_LOGIT_MEMO_LOCK = threading.Lock()


def _clear_logit_memo() -> None:
    """Forget every remembered propensity fit."""
    with _LOGIT_MEMO_LOCK:
        _LOGIT_MEMO.clear()
        _LOGIT_MEMO_HELD[0] = 0


def _memo_size(entry: tuple[np.ndarray, np.ndarray] | str) -> int:
    return 1 if isinstance(entry, str) else entry[0].size + entry[1].size


def _logit(x: np.ndarray, d: np.ndarray, iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Weighted) logit MLE by Newton-Raphson; fitted probabilities and ``(X'WX)^{-1}``
    (:func:`_logit_fit`), reused when the same inputs were fitted before."""
    h = hashlib.blake2b(digest_size=20)
    for a in (x, d, iw):
        a = np.ascontiguousarray(a, dtype=float)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    key = h.digest()
    with _LOGIT_MEMO_LOCK:
        hit = _LOGIT_MEMO.get(key)
        if hit is not None:
            _LOGIT_MEMO.move_to_end(key)
    if hit is None:
        try:
            p, hinv = _logit_fit(x, d, iw)
            hit = (p, hinv)
        except np.linalg.LinAlgError as exc:
            hit = str(exc)
        size = _memo_size(hit)
        with _LOGIT_MEMO_LOCK:
            if size <= _LOGIT_MEMO_FLOATS and key not in _LOGIT_MEMO:
                _LOGIT_MEMO[key] = hit
                _LOGIT_MEMO_HELD[0] += size
            while _LOGIT_MEMO and _LOGIT_MEMO_HELD[0] > _LOGIT_MEMO_FLOATS:
                _LOGIT_MEMO_HELD[0] -= _memo_size(_LOGIT_MEMO.popitem(last=False)[1])
    if isinstance(hit, str):
        raise np.linalg.LinAlgError(hit)
    return hit[0].copy(), hit[1].copy()


def _logit_fit(x: np.ndarray, d: np.ndarray, iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    w_t, w_c = _trimmed_weights(ps, d, iw)
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
    w_t, w_c = _trimmed_weights(ps, d, iw)
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


def _trimmed_weights(
    ps: np.ndarray, d: np.ndarray, iw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Treated and control weights after DRDID's trimming (controls with a propensity
    score >= ``_TRIM_LEVEL`` get weight 0). When every control is trimmed the control
    mean is 0/0: the cell fails, as DRDID refuses it ("Each required treatment/period
    group must have positive weight after trimming"), rather than leaving a NaN that
    would drop its cohort from the aggregations unreported."""
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    w_t = trim * iw * d
    w_c = trim * iw * ps * (1 - d) / (1 - ps)
    if not w_c.sum() > 0:
        raise _Overlap(
            f"all {int((d == 0).sum())} control unit(s) have a propensity score >= "
            f"{_TRIM_LEVEL} and are trimmed (no control weight left)"
        )
    if not w_t.sum() > 0:
        raise _Overlap("the treated units have no positive weight")
    return w_t, w_c


def _ps(d: np.ndarray, x: np.ndarray, iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ps, hinv = _logit(x, d, iw)
    if ps.max() >= _OVERLAP:
        raise _Overlap(f"propensity score reaches {ps.max():.4f} (overlap violated)")
    return np.minimum(ps, _PS_CAP), hinv


class _Overlap(ArithmeticError):
    pass


_ESTIMATORS = {"reg": _att_reg, "ipw": _att_ipw, "dr": _att_dr}


# ---------------------------------------------------------------------------- helpers
def _check_cluster_name(panel: Panel, cluster: Any, shown: Any = None) -> None:
    """A cluster must be a column name; ``time`` and ``cohort`` are not clusters of units
    (``shown``: the name as the caller wrote it, e.g. their own name of the time column)."""
    if not isinstance(cluster, str | int) or isinstance(cluster, bool):
        raise SpecError(
            f"cluster must be a column name (e.g. 'region') or None for units; received "
            f"{cluster!r} ({type(cluster).__name__})."
        )
    if cluster in ("time", "cohort"):
        what = "" if shown in (None, cluster) else f" (the panel's {cluster} column)"
        why = (
            "does not group units: clusters must be constant within each unit (a region, a "
            "province)"
            if cluster == "time"
            else "is the treatment timing itself, not a grouping of the sampled units"
        )
        raise SpecError(
            f"cluster={shown if shown is not None else cluster!r}{what} {why}. Pass a panel "
            "or geography column, or None to cluster by unit."
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
    return whole_labels(labels.to_numpy())


def whole_labels(labels: np.ndarray) -> np.ndarray:
    """Cluster labels with whole-number floats turned back into integers: the panel stores
    covariates as floats, and a state code 17 was named "17.0" in the jackknife's info and
    messages. Grouping is unchanged (equal floats give equal integers)."""
    whole = labels.size > 0 and labels.dtype.kind == "f" and np.all(labels == np.round(labels))
    if whole and np.abs(labels).max() < 2**53:
        return labels.astype(np.int64)
    return labels


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


# ---------------------------------------------------------------------------- building blocks
@dataclass(frozen=True)
class GroupTime:
    """The group-time building blocks every aggregation and variance is computed from.

    CS (2021) Section 3: an aggregation is a weighted average of the ATT(g,t) with
    cohort-share weights, and its influence function is the same average of the cells'
    influence functions plus the estimated-weights term. Both need only what is kept here,
    so :meth:`CallawaySantAnnaResult.aggregate` and
    :meth:`CallawaySantAnnaResult.with_inference` never re-estimate a cell (R ``did``'s
    ``att_gt`` then ``aggte``).

    Attributes
    ----------
    units, periods, cohorts : ndarray
        Unit ids (row order of ``basis``), sorted periods and finite cohorts.
    cell_g, cell_t, cell_e, cell_base : ndarray
        Cohort, period, event time and base period of each cell.
    att : ndarray
        ATT(g,t) (NaN for cells that could not be estimated).
    normalised : ndarray of bool
        Cells fixed at zero by a universal base period.
    n_treated, n_control : ndarray
    basis : ndarray, shape (n_units, n_cells + n_cohorts)
        Influence functions of the cells (zero for cells not estimated) followed by the
        centred cohort indicators ``w_i 1{G_i=g} - p_g``; every term's influence function is
        ``basis @ a`` for its coefficient vector ``a``.
    pg_cohort : ndarray
        Weighted cohort shares ``p_g``.
    order : ndarray of int
        Row positions of the units in the panel's label-free canonical order (the
        bootstrap draws follow it, so relabelling units cannot change them).
    n_obs : int
    """

    units: np.ndarray
    periods: np.ndarray
    cohorts: np.ndarray
    cell_g: np.ndarray
    cell_t: np.ndarray
    cell_e: np.ndarray
    cell_base: np.ndarray
    att: np.ndarray
    normalised: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    basis: np.ndarray
    pg_cohort: np.ndarray
    order: np.ndarray
    n_obs: int

    def __post_init__(self) -> None:
        # read-only views (no copies): the blocks a result keeps cannot be changed through
        # ``result.group_time``, so aggregate and with_inference see the fit's numbers
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                view = value.view()
                view.flags.writeable = False
                object.__setattr__(self, f.name, view)

    @property
    def k(self) -> int:
        return len(self.att)

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.att)

    def rescaled(self, c: float) -> GroupTime:
        """The blocks for the outcome times ``c``: cells and their influence functions
        scale, the cohort-share columns do not."""
        basis = self.basis.copy(order="F")
        basis[:, : self.k] *= c
        return replace(self, att=self.att * c, basis=basis)


@dataclass(frozen=True)
class _Aggregation:
    names: list[str]
    estimates: np.ndarray
    amat: np.ndarray  # (n_cells + n_cohorts, n_terms)
    family: list[str]


@dataclass(frozen=True)
class _Inference:
    vcov: np.ndarray
    se_terms: np.ndarray
    se_cells: np.ndarray
    band_terms: tuple[np.ndarray, np.ndarray] | None
    band_cells: tuple[np.ndarray, np.ndarray] | None
    crit: dict[str, float]
    n_clusters: int | None


@dataclass(frozen=True)
class _Options:
    cg: str
    est_method: str
    covs: list[str]
    anticipation: int
    base_period: str
    aggs: list[str]
    min_e: float
    max_e: float
    balance_e: int | None
    bootstrap: bool
    n_boot: int
    uniform_bands: bool
    boot_weights: str
    chunk_size: int | None
    weights: str | None


def _check_options(
    panel: Panel,
    *,
    control_group: Any,
    est_method: Any,
    covariates: Any,
    anticipation: Any,
    base_period: Any,
    aggregations: Any,
    min_e: Any,
    max_e: Any,
    balance_e: Any,
    bootstrap: Any,
    n_boot: Any,
    cluster: Any,
    uniform_bands: Any,
    boot_weights: Any,
    chunk_size: Any,
    weights: Any,
) -> _Options:
    """Every option checked once, before any work (named errors)."""
    cg, est_method, covs, aggs = _check_design(
        control_group, est_method, covariates, base_period, aggregations
    )
    bootstrap = check_bool(bootstrap, "bootstrap")
    check_choice(boot_weights, "boot_weights", ("rademacher", "mammen"))
    min_e, max_e, balance_e = _check_window(min_e, max_e, balance_e)
    if isinstance(cluster, list | tuple):
        if not 1 <= len(cluster) <= 2:
            raise SpecError(
                f"cluster takes one column or a list of two (two-way clustering); received "
                f"{len(cluster)} names."
            )
        if bootstrap and len(cluster) == 2:
            raise SpecError(
                "Two-way clustering needs analytic standard errors: pass bootstrap=False."
            )
        for name in cluster:
            _check_cluster_name(panel, name)
    elif cluster is not None:
        _check_cluster_name(panel, cluster)
    covs_missing = [
        c for c in covs if not isinstance(c, str) or c not in panel.data.columns or c in RESERVED
    ]
    if covs_missing:
        raise PanelError(
            f"Covariate(s) {covs_missing} not in the panel; its covariates are "
            f"{list(panel.covariates)}. Add them with Panel.from_frame(..., covariates=[...])."
        )
    return _Options(
        cg=cg,
        est_method=est_method,
        covs=covs,
        anticipation=check_int(anticipation, "anticipation", minimum=0),
        base_period=base_period,
        aggs=aggs,
        min_e=min_e,
        max_e=max_e,
        balance_e=balance_e,
        bootstrap=bootstrap,
        n_boot=check_int(n_boot, "n_boot", minimum=2 if bootstrap else 0),
        uniform_bands=check_bool(uniform_bands, "uniform_bands"),
        boot_weights=boot_weights,
        chunk_size=check_int(chunk_size, "chunk_size", minimum=1, none=True),
        weights=check_weight_name(panel, weights),
    )


def _check_design(
    control_group: Any, est_method: Any, covariates: Any, base_period: Any, aggregations: Any
) -> tuple[str, str, list[str], list[str]]:
    """Control group, estimation method (default ``dr`` with covariates), covariate names,
    base period and aggregations, checked with named errors; shared with the Dask engine
    (``zoneimpact.distributed.callaway_santanna``)."""
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
    return cg, est_method, covs, _check_aggregations(aggregations)


def _check_aggregations(aggregations: Any) -> list[str]:
    aggs = check_names(aggregations, "aggregations", none=False)
    bad = [a for a in aggs if not isinstance(a, str) or a not in _AGGREGATIONS]
    if bad:
        raise SpecError(f"Unknown aggregation(s) {bad}. Use any of {list(_AGGREGATIONS)}.")
    return aggs


def _check_window(min_e: Any, max_e: Any, balance_e: Any) -> tuple[float, float, int | None]:
    balance = check_int(balance_e, "balance_e", minimum=0, none=True)
    lo = _event_bound(min_e, "min_e", -np.inf)
    hi = _event_bound(max_e, "max_e", np.inf)
    if lo > hi:
        raise SpecError(f"min_e={lo:g} exceeds max_e={hi:g}; the event window is empty.")
    if hi < 0:
        raise SpecError(
            f"max_e={hi:g} leaves no post-treatment event time (e >= 0) for the overall "
            "effect; use max_e >= 0."
        )
    return lo, hi, balance


def _wide_arrays(
    panel: Panel, outcome: str, opts: _Options, *, standardise: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Units, periods, the units x periods outcome, cohorts by unit, covariates (as
    observed with ``standardise=False``), weights."""
    data = panel.data
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

    gvec = np.full(n, np.nan)
    gvec[ucode] = data["cohort"].to_numpy(dtype=float)
    y = wide(outcome)
    n_seen = np.isfinite(y).sum(axis=1)
    blank, single = n_seen == 0, n_seen == 1
    if blank.any() or single.any():
        # they enter no ATT(g,t) (each needs two periods) but count in the cohort shares
        # p_g, which moves att (a breaker's check: 81.70 against 81.55 without the unit;
        # session 19)
        said = [
            f"{int(m.sum())} {more}unit(s) (first {_v(units[m][0])!r}) {what}"
            for m, more, what in (
                (blank, "", f"have no observed {outcome!r}"),
                (single, "more " if blank.any() else "", f"have {outcome!r} in one period only"),
            )
            if m.any()
        ]
        warnings.warn(
            f"{' and '.join(said)}; they enter no ATT(g,t) but count in the cohort shares "
            "of the aggregations. Drop them from the panel.",
            stacklevel=5,  # past the sample steps, fit and its scale wrapper
        )
    # unit weights normalised to mean one (R did); only ratios of them enter the estimates
    uw = np.ones(n) if opts.weights is None else unit_weights(data, opts.weights, units)
    return (
        units,
        periods,
        y,
        gvec,
        [_standard(wide(c)) if standardise else wide(c) for c in opts.covs],
        uw / uw.mean(),
    )


def _standard(x: np.ndarray) -> np.ndarray:
    """A covariate centred and scaled over its observed values. Every 2x2 regression and
    propensity score has an intercept, so nothing estimated moves, but a covariate in
    extreme units (GDP in yuan, times 1e12) no longer makes each cell's design look
    singular (session 19: all 130 cells failed)."""
    shift, scale = _standardisation(x)
    return (x - shift) / scale


def _standardisation(x: np.ndarray) -> tuple[float, float]:
    """The centre and scale :func:`_standard` uses: the mean and SD of ``x``'s observed
    values, or 0 and 1 (``x`` left as it is) where they have no spread."""
    sd = float(np.nanstd(x)) if np.isfinite(x).any() else np.nan
    return (float(np.nanmean(x)), sd) if np.isfinite(sd) and sd > 0 else (0.0, 1.0)


def _make_cells(
    cohorts: np.ndarray, periods: np.ndarray, anticipation: int, base_period: str
) -> list[_Cell]:
    """The ATT(g,t) to estimate and their base periods (CS eq. 2.3 and Remark 2)."""
    cells: list[_Cell] = []
    tfac = 1 if base_period == "varying" else 0
    for g in cohorts:
        pre = np.flatnonzero(periods + anticipation < g)
        if pre.size == 0:
            warnings.warn(
                f"Cohort {g:g} has no pre-treatment period (anticipation={anticipation}); its "
                "units are dropped from the comparisons.",
                stacklevel=3,
            )
            continue
        pret_g = int(pre[-1])
        for c in range(tfac, len(periods)):
            # post-treatment and anticipation-window cells (t >= g - anticipation) compare
            # with the last period before g - anticipation under either base period (R
            # did PR #276); a short difference inside the window would difference two
            # anticipation periods
            window = periods[c] + anticipation >= g
            b = pret_g if (window or base_period == "universal") else c - 1
            cells.append(_Cell(g=float(g), t=int(periods[c]), e=int(periods[c] - g), base=b))
    if not cells:
        raise EstimationError(_NO_CELLS)
    return cells


def _cell_sample(
    cell: _Cell,
    c: int,
    *,
    y: np.ndarray,
    gvec: np.ndarray,
    never: np.ndarray,
    periods: np.ndarray,
    opts: _Options,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The treated and control units of ATT(g,t) (period ``c``), each observed in both of
    its periods, and every unit's outcome change (CS eq. 2.4-2.6: never-treated controls,
    or not yet treated by ``max(t, base) + anticipation``)."""
    b = cell.base
    treat = gvec == cell.g
    if opts.cg == "never_treated":
        ctrl = never.copy()
    else:
        cutoff = max(periods[c], periods[b]) + opts.anticipation
        ctrl = never | ((gvec > cutoff) & (gvec != cell.g))
    dy = y[:, c] - y[:, b]
    ok = np.isfinite(dy)
    return treat & ok, ctrl & ok, dy


def _estimate_cell(
    cell: _Cell,
    col: np.ndarray,
    *,
    y: np.ndarray,
    gvec: np.ndarray,
    never: np.ndarray,
    periods: np.ndarray,
    xw: list[np.ndarray],
    uw: np.ndarray,
    units: np.ndarray,
    opts: _Options,
    weighted: bool,
) -> str | None:
    """Estimate one ATT(g,t) into ``cell`` and its influence function into ``col`` (CS eq.
    2.4-2.6 with the DRDID 2x2 of the chosen method); a reason when it cannot."""
    n = len(units)
    c = int(np.searchsorted(periods, cell.t))
    b = cell.base
    if b == c:  # universal base period: normalised to zero
        cell.att, cell.normalised = 0.0, True
        return None
    treat, ctrl, dy = _cell_sample(cell, c, y=y, gvec=gvec, never=never, periods=periods,
                                   opts=opts)  # fmt: skip
    n1t, n1c = int(treat.sum()), int(ctrl.sum())
    cell.n_treated, cell.n_control = n1t, n1c
    if n1t == 0 or n1c == 0:
        col[:] = np.nan
        return f"({cell.g:g},{cell.t}) no {'treated' if n1t == 0 else 'control'} units"
    est_fn = _ESTIMATORS.get(opts.est_method) if opts.covs else None
    if est_fn is None and not weighted:
        mt = dy[treat].mean()
        mc = dy[ctrl].mean()
        cell.att = float(mt - mc)
        col[treat] = n * (dy[treat] - mt) / n1t
        col[ctrl] = -n * (dy[ctrl] - mc) / n1c
        return None
    if est_fn is None:
        # weighted difference of mean changes; influence n w_i (dy_i - mean) / W_group
        wt_, wc_ = uw[treat], uw[ctrl]
        if not (wt_.sum() > 0 and wc_.sum() > 0):
            col[:] = np.nan
            side = "treated" if not wt_.sum() > 0 else "control"
            return f"({cell.g:g},{cell.t}) the {side} units have zero total weight"
        mt = float(wt_ @ dy[treat] / wt_.sum())
        mc = float(wc_ @ dy[ctrl] / wc_.sum())
        cell.att = mt - mc
        col[treat] = n * wt_ * (dy[treat] - mt) / wt_.sum()
        col[ctrl] = -n * wc_ * (dy[ctrl] - mc) / wc_.sum()
        return None
    sub = treat | ctrl
    xc = min(b, c)
    xmat = np.column_stack([np.ones(int(sub.sum()))] + [xv[sub, xc] for xv in xw])
    if not np.all(np.isfinite(xmat)):
        bad_row = np.flatnonzero(~np.all(np.isfinite(xmat), axis=1))[0]
        bad_unit = units[np.flatnonzero(sub)[bad_row]]
        bad_cov = [
            opts.covs[i] for i in range(len(opts.covs)) if not np.isfinite(xmat[bad_row, i + 1])
        ]
        raise PanelError(
            f"Covariate {bad_cov[0]!r} is missing for unit {_v(bad_unit)!r} in period "
            f"{periods[xc]} (needed for ATT({cell.g:g},{cell.t})). Impute it or drop the unit."
        )
    try:
        att_cell, inf_sub = est_fn(dy[sub], treat[sub].astype(float), xmat, uw[sub])
    except (np.linalg.LinAlgError, _Overlap) as exc:
        col[:] = np.nan
        return f"({cell.g:g},{cell.t}) {exc}"
    if not (np.isfinite(att_cell) and np.all(np.isfinite(inf_sub))):
        # a non-finite estimate is a failure, never a success the aggregations skip
        col[:] = np.nan
        return f"({cell.g:g},{cell.t}) the estimate is not finite"
    cell.att = float(att_cell)
    col[sub] = (n / sub.sum()) * inf_sub
    return None


def _treated_cohorts(gvec: np.ndarray, opts: _Options) -> np.ndarray:
    """The sorted finite cohorts of the units ``gvec``; refuses a sample without a
    comparison (no never-treated unit under ``never_treated``) or without a cohort."""
    if opts.cg == "never_treated" and np.isfinite(gvec).all():
        raise EstimationError(
            "control_group='never_treated' but no unit is never treated (every unit has a "
            "finite cohort). Use control_group='not_yet_treated'."
        )
    cohorts = np.sort(np.unique(gvec[np.isfinite(gvec)]))
    if cohorts.size == 0:
        raise EstimationError("No treated cohort in the panel: nothing to estimate.")
    return cohorts


#: a sample whose cohorts all lack a pre-treatment period
_NO_CELLS = "No group-time cell can be formed (no cohort has a pre-period)."


def att_gt(panel: Panel, outcome: str, opts: _Options) -> tuple[GroupTime, list[str]]:
    """Estimate every ATT(g,t) and its influence function (CS 2021 Section 2; R
    ``did::att_gt``). Returns the building blocks and the cells that failed."""
    units, periods, y, gvec, xw, uw = _wide_arrays(panel, outcome, opts)
    n, n_t = len(units), len(periods)
    never = ~np.isfinite(gvec)
    cohorts = _treated_cohorts(gvec, opts)
    cells = _make_cells(cohorts, periods, opts.anticipation, opts.base_period)
    k = len(cells)
    if k > _MAX_CELLS or n * (k + len(cohorts)) * 8 > _MAX_DRAW_BYTES:
        raise EstimationError(
            f"{k} group-time cells ({len(cohorts)} cohorts x {n_t} periods) for {n} units: "
            f"beyond what this implementation holds (at most {_MAX_CELLS:,} cells and "
            f"{_MAX_DRAW_BYTES / 2**30:.0f} GiB of influence functions). Aggregate the "
            "periods (e.g. days to months) or the cohorts."
        )
    # Influence "basis": the k ATT(g,t) columns followed by the centred cohort indicators,
    # in one column-major array so that each cell writes one contiguous column in place
    # and no copy is needed to assemble it (at 500,000 units each copy is 280 MB).
    basis = np.zeros((n, k + len(cohorts)), order="F")
    failed = []
    for j, cell in enumerate(cells):
        why = _estimate_cell(
            cell,
            basis[:, j],
            y=y,
            gvec=gvec,
            never=never,
            periods=periods,
            xw=xw,
            uw=uw,
            units=units,
            opts=opts,
            weighted=opts.weights is not None,
        )
        if why is not None:
            failed.append(why)
    att = np.array([cl.att for cl in cells])
    # the centred cohort indicators 1{G=g} - p_g: influence of the estimated cohort shares
    pg_cohort = np.array([np.mean(uw * (gvec == g)) for g in cohorts])
    for i, g in enumerate(cohorts):
        basis[:, k + i] = uw * (gvec == g) - pg_cohort[i]
    basis[:, :k][:, ~np.isfinite(att)] = 0.0
    gt = GroupTime(
        units=units,
        periods=periods,
        cohorts=cohorts,
        cell_g=np.array([cl.g for cl in cells]),
        cell_t=np.array([cl.t for cl in cells]),
        cell_e=np.array([cl.e for cl in cells]),
        cell_base=periods[[cl.base for cl in cells]],
        att=att,
        normalised=np.array([cl.normalised for cl in cells], dtype=bool),
        n_treated=np.array([cl.n_treated for cl in cells]),
        n_control=np.array([cl.n_control for cl in cells]),
        basis=basis,
        pg_cohort=pg_cohort,
        order=pd.Index(units).get_indexer(panel.canonical_order(units, outcome)),
        n_obs=int(np.isfinite(y).sum()),
    )
    return gt, failed


# ---------------------------------------------------------------------------- aggregation
def _weighted(gt: GroupTime, keep: np.ndarray, wif: bool) -> tuple[float, np.ndarray]:
    """Cohort-share weighted average of the cells in ``keep`` and its coefficient vector on
    the basis (with the estimated-weights term when ``wif``; R ``compute.aggte``)."""
    k = gt.k
    idx = np.flatnonzero(keep & gt.valid)
    a = np.zeros(gt.basis.shape[1])
    if idx.size == 0:
        return np.nan, np.full(gt.basis.shape[1], np.nan)
    coh = {float(g): i for i, g in enumerate(gt.cohorts)}
    pg_cell = np.array([gt.pg_cohort[coh[g]] for g in gt.cell_g[idx]])
    s = pg_cell.sum()
    w = pg_cell / s
    est = float(w @ gt.att[idx])
    a[idx] = w
    if wif:
        for i in idx:
            a[k + coh[gt.cell_g[i]]] += (gt.att[i] - est) / s
    return est, a


def aggregate_terms(
    gt: GroupTime,
    aggs: Sequence[str],
    *,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
    bins: Sequence[tuple[int, int]] = (),
) -> _Aggregation:
    """The terms of the requested aggregations (CS 2021 Section 3, eqs. 3.3-3.8; R
    ``did::aggte``): ``att`` always; ``event:E`` and ``event_avg`` (dynamic),
    ``cohort:G`` and ``cohort_avg`` (group), ``calendar:T`` and ``calendar_avg``; and
    ``event_bin:A..B`` for user-defined event-time bins (the equal-weight average of the
    dynamic effects in the bin, as ``event_avg`` averages the post-periods)."""
    names: list[str] = []
    ests: list[float] = []
    coefs: list[np.ndarray] = []
    family: list[str] = []

    def add(name: str, est: float, a: np.ndarray, fam: str) -> None:
        names.append(name)
        ests.append(est)
        coefs.append(a)
        family.append(fam)

    post = (gt.cell_e >= 0) & (gt.cell_e <= max_e)
    est, a = _weighted(gt, post, wif=True)
    if not np.isfinite(est):
        raise EstimationError(
            f"No estimated post-treatment ATT(g,t) lies within max_e={max_e:g}: the overall "
            "effect is undefined. Raise max_e."
        )
    add("att", est, a, "")
    if "dynamic" in aggs or bins:
        ev_rows = _dynamic(gt, min_e, max_e, balance_e)
        if "dynamic" in aggs:
            for e, est, a in ev_rows:
                add(f"event:{e}", est, a, "event")
            pos = [(est, a) for e, est, a in ev_rows if e >= 0]
            if pos:
                add(
                    "event_avg",
                    float(np.mean([p[0] for p in pos])),
                    np.mean([p[1] for p in pos], axis=0),
                    "",
                )
        for lo, hi in bins:
            inside = [(est, a) for e, est, a in ev_rows if lo <= e <= hi]
            if not inside:
                raise EstimationError(
                    f"Event-time bin [{lo}, {hi}] holds no estimated event time; event times "
                    f"are {[e for e, _, _ in ev_rows]}."
                )
            add(
                f"event_bin:{lo}..{hi}",
                float(np.mean([p[0] for p in inside])),
                np.mean([p[1] for p in inside], axis=0),
                "event_bin",
            )
    if "group" in aggs:
        _group(gt, post, add)
    if "calendar" in aggs:
        _calendar(gt, add)
    return _Aggregation(names, np.array(ests), np.column_stack(coefs), family)


def _dynamic(
    gt: GroupTime, min_e: float, max_e: float, balance_e: int | None
) -> list[tuple[int, float, np.ndarray]]:
    """Event-study effects theta_es(e) (CS eq. 3.5), optionally on a balanced set of
    cohorts (eq. 3.6)."""
    include = np.ones(gt.k, bool)
    eseq = np.unique(gt.cell_e[gt.valid])
    if balance_e is not None:
        maxt, mint = gt.cell_t.max(), gt.cell_t.min()
        include = (maxt - gt.cell_g) >= balance_e
        if not (include & gt.valid).any():
            raise EstimationError(
                f"balance_e={balance_e}: no cohort is observed for {balance_e} periods "
                f"after treatment (the last period is {int(maxt)}, cohorts "
                f"{[int(g) for g in gt.cohorts]}); lower balance_e."
            )
        eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - maxt + mint)]
    eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
    rows = []
    for e in eseq:
        est, a = _weighted(gt, (gt.cell_e == e) & include, wif=True)
        if np.isfinite(est):
            rows.append((int(e), est, a))
    return rows


def _group(gt: GroupTime, post: np.ndarray, add: Any) -> None:
    """Cohort effects theta_sel(g) and their cohort-share average (CS eqs. 3.3-3.4)."""
    coh = {float(g): i for i, g in enumerate(gt.cohorts)}
    g_rows = []
    for g in gt.cohorts:
        est, a = _weighted(gt, (gt.cell_g == g) & post, wif=False)
        if np.isfinite(est):
            add(f"cohort:{int(g)}", est, a, "cohort")
            g_rows.append((g, est, a))
    if not g_rows:
        return
    pgs = np.array([gt.pg_cohort[coh[float(g)]] for g, _, _ in g_rows])
    s = pgs.sum()
    est = float(np.sum(pgs * np.array([r[1] for r in g_rows])) / s)
    a = np.array(sum((pgs[i] / s) * g_rows[i][2] for i in range(len(g_rows))), dtype=float)
    for g, eg, _ in g_rows:
        a[gt.k + coh[float(g)]] += (eg - est) / s
    add("cohort_avg", est, a, "")


def _calendar(gt: GroupTime, add: Any) -> None:
    """Calendar-time effects theta_c(t) and their average (CS eqs. 3.7-3.8)."""
    c_rows = []
    for t in np.unique(gt.cell_t):
        if t < gt.cohorts.min():
            continue
        est, a = _weighted(gt, (gt.cell_t == t) & (gt.cell_g <= t), wif=True)
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


# ---------------------------------------------------------------------------- inference
def _by_construction(gt: GroupTime, amat: np.ndarray) -> np.ndarray:
    """Terms that are zero by construction (built only from cells a universal base period
    fixes at zero): their SE is undefined (R: NA), unlike a real zero SE."""
    k = gt.k
    return ~np.any(amat[:k][~gt.normalised] != 0, axis=0) & ~np.any(amat[k:] != 0, axis=0)


def _meat_vcov(src: np.ndarray, amat: np.ndarray, n: int) -> np.ndarray:
    if src.shape[1] <= _DENSE_MEAT:
        return amat.T @ (_gram(src) / n**2) @ amat
    # many cells (long panels): the same covariance without the k x k meat matrix
    return _gram(src @ amat) / n**2


def analytic_vcov(
    gt: GroupTime, amat: np.ndarray, clusters: Sequence[np.ndarray] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the terms and variances of the cells from the influence functions
    (CS 2021 Theorem 2): ``V = A' (Psi'Psi / n^2) A`` with ``Psi`` summed within clusters
    (one label array per clustering dimension; two dimensions give Cameron, Gelbach &
    Miller's 2011 ``V_1 + V_2 - V_12``)."""
    n, k = gt.basis.shape[0], gt.k
    if not clusters:
        srcs = [(gt.basis, 1.0)]
    elif len(clusters) == 1:
        srcs = [(cluster_sums(gt.basis, clusters[0]), 1.0)]
    elif len(clusters) == 2:
        both = pd.factorize(pd.MultiIndex.from_arrays([clusters[0], clusters[1]]))[0]
        srcs = [
            (cluster_sums(gt.basis, clusters[0]), 1.0),
            (cluster_sums(gt.basis, clusters[1]), 1.0),
            (cluster_sums(gt.basis, both), -1.0),
        ]
    else:
        raise SpecError(f"At most two clustering dimensions; received {len(clusters)}.")
    vcov = sum(sign * _meat_vcov(src, amat, n) for src, sign in srcs)
    cell_var = sum(
        sign * np.einsum("ij,ij->j", src[:, :k], src[:, :k]) / n**2 for src, sign in srcs
    )
    return np.asarray(vcov), np.asarray(cell_var)


def _infer(
    gt: GroupTime,
    agg: _Aggregation,
    *,
    labels: Sequence[np.ndarray],
    bootstrap: bool,
    n_boot: int,
    rng: np.random.Generator | None,
    chunk_size: int | None,
    n_jobs: int,
    boot_weights: str,
    uniform_bands: bool,
    alpha: float,
) -> _Inference:
    """Analytic influence-function SEs, or the multiplier bootstrap with sup-t bands (CS
    2021 Algorithm 1; R ``did::mboot``), for the terms of ``agg`` and for the cells."""
    k, valid = gt.k, gt.valid
    vcov, cell_var = analytic_vcov(gt, agg.amat, labels)
    by_construction = _by_construction(gt, agg.amat)
    two_way = len(labels) > 1
    se_terms = np.where(by_construction, np.nan, variance_se(np.diag(vcov), two_way))
    se_cells = np.where(valid & ~gt.normalised, variance_se(cell_var, two_way), np.nan)
    n_clusters = min_clusters(tuple(labels))
    if not bootstrap:
        if two_way:  # past _infer, _estimate (or _rebuilt_at), fit (_rebuilt) and a wrapper
            warn_negative_two_way(agg.names, np.where(by_construction, 0, np.diag(vcov)), 5)
        return _Inference(vcov, se_terms, se_cells, None, None, {}, n_clusters)
    if len(labels) > 1:
        raise SpecError(
            "The multiplier bootstrap clusters on one dimension; use method='analytic' for "
            "two-way clustering."
        )
    need = float(n_boot) * gt.basis.shape[1] * 8
    if need > _MAX_DRAW_BYTES:
        raise SpecError(
            f"n_boot={n_boot} bootstrap draws of {gt.basis.shape[1]} influence columns need "
            f"{need / 2**30:,.0f} GiB of memory (limit {_MAX_DRAW_BYTES / 2**30:.0f} GiB); "
            "999 draws are R did's default."
        )
    # multiplier weights are drawn per unit (or cluster) in an order fixed by the data,
    # not the labels, so relabelling units cannot change the draws
    pos = gt.order
    draws = multiplier_draws(
        gt.basis[pos],
        n_boot=n_boot,
        rng=rng,
        cluster=None if not labels else pd.factorize(np.asarray(labels[0])[pos])[0],
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        weights=boot_weights,  # type: ignore[arg-type]
    )
    term_draws = draws @ agg.amat
    # every draw exactly zero (a constant outcome) is a zero SE, except where the value is
    # zero by construction (R did's NA); bootstrap_se leaves both NaN
    zero_cells = np.all(draws[:, :k] == 0, axis=0) & valid & ~gt.normalised
    zero_terms = np.all(term_draws == 0, axis=0) & ~by_construction
    se_cells = np.where(zero_cells, 0.0, np.where(valid, bootstrap_se(draws[:, :k]), np.nan))
    se_terms = np.where(zero_terms, 0.0, bootstrap_se(term_draws))
    if not uniform_bands:
        return _Inference(vcov, se_terms, se_cells, None, None, {}, n_clusters)
    z = stats.norm.ppf(1 - alpha / 2)
    crit = {"att_gt": sup_t_critical(draws[:, :k], se_cells, alpha)}
    fam = np.array(agg.family)
    cvec = np.full(len(agg.names), z)
    for f in ("event", "cohort", "calendar"):
        m = fam == f
        if m.any():
            crit[f] = sup_t_critical(term_draws[:, m], se_terms[m], alpha)
            # R did falls back to pointwise when the band would be narrower
            cvec[m] = max(crit[f], z) if np.isfinite(crit[f]) else z
    cc = max(crit["att_gt"], z) if np.isfinite(crit["att_gt"]) else z
    return _Inference(
        vcov,
        se_terms,
        se_cells,
        (agg.estimates - cvec * se_terms, agg.estimates + cvec * se_terms),
        (gt.att - cc * se_cells, gt.att + cc * se_cells),
        crit,
        n_clusters,
    )


def _check_jackknife(result: CallawaySantAnnaResult, cluster: Any) -> None:
    """Refuse a jackknife that cannot refit: a result without its panel and options (the
    Dask engine's), or two clustering dimensions."""
    if result.panel is None or "fit_options" not in result.settings:
        raise EstimationError(
            "The jackknife refits CS without each cluster, and this result keeps no panel "
            "(an out-of-core or Dask fit); fit in memory with callaway_santanna.fit first."
        )
    if isinstance(cluster, list | tuple) and len(cluster) != 1:
        raise SpecError(
            "The jackknife deletes the clusters of one dimension in turn; received "
            f"{len(cluster)} clustering dimensions. Pass one (e.g. cluster='region')."
        )


def _refit_cells(panel: Panel, outcome: str, fit_options: dict[str, Any]) -> GroupTime:
    """The cells :func:`fit` would estimate on ``panel`` with ``fit_options`` (the same
    checks and errors), without its aggregation, inference and result: a refit needs the
    cells only, and those steps took about 60% of its time. An outcome that ``fit``'s
    scale wrapper would rescale goes through ``fit`` itself."""
    options = {**_REFIT_DEFAULTS, **fit_options}
    if outcome_scale(panel.data[outcome].to_numpy(dtype=float)) != 1.0:
        return fit(panel, outcome=outcome, **options)._blocks()
    check_fit_arguments(panel, outcome, alpha=0.05, n_jobs=1, rng=None,
                        estimator="callaway_santanna")  # fmt: skip
    opts = _check_options(panel, **options)
    gt, failed = att_gt(panel, outcome, opts)
    _check_cells(gt, failed, outcome)
    return gt


def _aggregate_as(gt: GroupTime, settings: dict[str, Any]) -> _Aggregation:
    """The aggregations ``settings`` asks for (the result's, or a jackknife refit's)."""
    return aggregate_terms(
        gt,
        settings["aggregations"],
        min_e=settings["min_e"],
        max_e=settings["max_e"],
        balance_e=settings["balance_e"],
        bins=settings["bins"],
    )


def _jackknife_infer(
    result: CallawaySantAnnaResult,
    gt: GroupTime,
    agg: _Aggregation,
    settings: dict[str, Any],
) -> tuple[_Inference, dict[str, Any]]:
    """Delete-one-cluster jackknife (CV3) of every term and ATT(g,t): CS refitted without
    each cluster (:mod:`zoneimpact.inference.jackknife`)."""
    units = gt.units
    labels = np.asarray(settings["labels"][0]) if settings["labels"] else units
    groups = pd.unique(labels)
    if len(groups) < 2:
        raise SpecError(f"The jackknife needs at least 2 clusters; the fit has {len(groups)}.")
    row_label = result._panel().data["unit"].map(pd.Series(labels, index=units)).to_numpy()
    reps = _jackknife_replicates(result, settings, groups, row_label)
    # the refits run on the kept panel, whose outcome the fit divided by
    # info["outcome_rescaled_by"]; _rebuilt hands over blocks divided by their own scale
    scale = outcome_scale(result._blocks().basis[:, : result._blocks().k])
    scale /= float(result.info.get("outcome_rescaled_by", 1.0))
    cell_keys = pd.MultiIndex.from_arrays([gt.cell_g, gt.cell_t])
    term_rep = np.full((len(groups), len(agg.names)), np.nan)
    cell_rep = np.full((len(groups), gt.k), np.nan)
    failed, lost = [], []
    reweighted = np.zeros(len(agg.names), dtype=bool)
    post = set(np.unique(gt.cell_g[gt.valid & (gt.cell_e >= 0)]).tolist())
    for i, (c, rep) in enumerate(zip(groups, reps, strict=True)):
        if isinstance(rep, str):
            failed.append(f"{_v(c)}: {rep}")
            continue
        a, g = rep
        # a deletion that takes a cohort's every treated unit changes what att averages
        gone = post - set(np.unique(g.cell_g[g.valid & (g.cell_e >= 0)]).tolist())
        if gone:
            lost.append(f"{_v(c)}: cohort(s) {sorted(int(x) for x in gone)}")
            # the terms that average those cohorts' cells with others' are refitted without
            # them in this replicate: the jackknife of the procedure, named for the reader
            rows = np.isin(gt.cell_g, list(gone))
            reweighted |= np.any(agg.amat[: gt.k][rows] != 0, axis=0)
        term_rep[i] = pd.Series(a.estimates, index=a.names).reindex(agg.names).to_numpy()
        att = pd.Series(
            np.where(g.valid, g.att, np.nan), pd.MultiIndex.from_arrays([g.cell_g, g.cell_t])
        )
        cell_rep[i] = att.reindex(cell_keys).to_numpy()
    term_rep, cell_rep = term_rep / scale, cell_rep / scale
    vcov = cluster_jackknife_vcov(agg.estimates, term_rep)
    cell_var = np.diag(cluster_jackknife_vcov(np.where(gt.valid, gt.att, np.nan), cell_rep))
    by_construction = _by_construction(gt, agg.amat)
    se_terms = np.where(by_construction, np.nan, np.sqrt(np.diag(vcov)))
    se_cells = np.where(gt.valid & ~gt.normalised, np.sqrt(cell_var), np.nan)
    undefined = [n for n, se, b in zip(agg.names, se_terms, by_construction, strict=True)
                 if not np.isfinite(se) and not b]  # fmt: skip
    if failed:
        warnings.warn(
            f"{len(failed)} of {len(groups)} jackknife refits failed, so every SE is NaN "
            f"(info['jackknife_failed']): {failed[0]}",
            stacklevel=5,
        )
    info = {
        "jackknife_clusters": len(groups),
        "jackknife_undefined": [] if failed else undefined,
        "jackknife_failed": failed,
        "jackknife_cohorts_lost": lost,
        "jackknife_terms_reweighted": [
            n
            for n, r, se in zip(agg.names, reweighted, se_terms, strict=True)
            if r and np.isfinite(se)
        ],
    }
    return _Inference(vcov, se_terms, se_cells, None, None, {}, len(groups)), info


# ---------------------------------------------------------------------------- jackknife
def _jackknife_replicates(
    result: CallawaySantAnnaResult,
    settings: dict[str, Any],
    groups: np.ndarray,
    row_label: np.ndarray,
) -> list[tuple[_Aggregation, GroupTime] | str]:
    """The delete-one-cluster replicates of :func:`_jackknife_infer`, in ``groups`` order:
    each deletion's cells (:func:`cells_without`) and their aggregation."""
    found: list[GroupTime | str] = []
    # a few deletions' row masks at a time (a jackknife by unit has one per unit)
    step = 256
    for lo in range(0, len(groups), step):
        found += cells_without(
            result._panel(),
            result.outcome,
            settings["fit_options"],
            [row_label != c for c in groups[lo : lo + step]],
            n_jobs=settings.get("n_jobs", 1),
        )
    return [gt if isinstance(gt, str) else (_aggregate_as(gt, settings), gt) for gt in found]


def cells_without(
    panel: Panel,
    outcome: str,
    fit_options: dict[str, Any],
    keeps: Sequence[np.ndarray],
    n_jobs: int = 1,
) -> list[GroupTime | str]:
    """CS's cells on ``panel`` restricted to the rows ``keeps[i]`` (whole units), as
    :func:`_refit_cells` gives them on that smaller panel, for every ``i``; the error
    message where a restriction leaves nothing to estimate.

    A deletion changes which units enter each ATT(g,t), nothing else, so with covariates
    (``reg``, ``ipw``, ``dr``) each cell is estimated once for all restrictions
    (:func:`_batched_cells`) rather than CS refitted once per restriction. A restriction
    the batch cannot stand for (it removes a whole period, splits a unit's rows, or leaves
    an outcome outside the safe scale) is refitted, on ``n_jobs`` joblib workers, as is
    every restriction of a fit without covariates (cheap) or with ``_JACKKNIFE_BATCHED``
    off. The aggregations and the unit-level influence functions are not kept (the
    replicates' ``basis`` has no rows)."""
    options = {**_REFIT_DEFAULTS, **fit_options}
    out: dict[int, GroupTime | str] = {}
    batch: list[int] = []
    opts = _check_options(panel, **options)
    y_all = panel.data[outcome].to_numpy(dtype=float)
    if (
        _JACKKNIFE_BATCHED
        and outcome_scale(y_all) == 1.0
        and opts.covs
        and opts.est_method in _ESTIMATORS
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            units, periods, y, gvec, xraw, uw = _wide_arrays(
                panel, outcome, opts, standardise=False
            )
            cells = _make_cells(
                np.sort(np.unique(gvec[np.isfinite(gvec)])),
                periods,
                opts.anticipation,
                opts.base_period,
            )
        ucode = pd.Index(units).get_indexer(panel.data["unit"])
        tcode = pd.Index(periods).get_indexer(panel.data["time"])
        present = np.zeros((len(units), len(periods)), dtype=bool)
        present[ucode, tcode] = True
        unit_keep = np.zeros((len(keeps), len(units)), dtype=bool)
        n_rows = np.bincount(ucode, minlength=len(units))
        for i, rows in enumerate(keeps):
            kept = np.bincount(ucode, weights=rows, minlength=len(units))
            whole = np.all((kept == 0) | (kept == n_rows))
            unit_keep[i] = kept > 0
            if (
                whole
                and present[unit_keep[i]].any(axis=0).all()
                and outcome_scale(y[unit_keep[i]]) == 1.0
            ):
                batch.append(i)
        never = ~np.isfinite(gvec)
        found = _batched_cells(cells, unit_keep[batch], y=y, gvec=gvec, never=never,
                               periods=periods, xraw=xraw, uw=uw, opts=opts)  # fmt: skip
        for pos, i in enumerate(batch):
            out[i] = _cells_from_batch(
                cells, found, pos, unit_keep[i], gvec, uw, periods, opts, outcome
            )
    rest = [i for i in range(len(keeps)) if i not in out]
    refits = replicate(
        lambda i, _rng: _refit_or_reason(panel, outcome, fit_options, keeps[i]),
        rest,
        rng=0,
        n_jobs=n_jobs,
        desc="jackknife refits",
    )
    out.update(zip(rest, refits, strict=True))
    return [out[i] for i in range(len(keeps))]


#: False makes :func:`cells_without` refit CS once per restriction (the tests compare the
#: two paths)
_JACKKNIFE_BATCHED = True
#: the most numbers one array of a batch holds (16 MB of floats): many deletions of a
#: large panel (a jackknife by unit) are batched in chunks
_BATCH_FLOATS = 2_000_000


def _refit_or_reason(
    panel: Panel, outcome: str, fit_options: dict[str, Any], keep: np.ndarray
) -> GroupTime | str:
    """:func:`_refit_cells` on the rows ``keep``; the error message where it fails."""
    sub = panel.replace(data=panel.data.loc[keep].reset_index(drop=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _refit_cells(sub, outcome, fit_options)
    except (ZoneImpactError, np.linalg.LinAlgError) as exc:
        return str(exc)[:200]


@dataclass
class _CellsWithout:
    """Every cell's ATT for every batched deletion (rows), with what the refits record."""

    att: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    normalised: np.ndarray
    why: list[list[str | None]]


def _batched_cells(
    cells: list[_Cell],
    keep: np.ndarray,
    *,
    y: np.ndarray,
    gvec: np.ndarray,
    never: np.ndarray,
    periods: np.ndarray,
    xraw: list[np.ndarray],
    uw: np.ndarray,
    opts: _Options,
) -> _CellsWithout:
    """ATT(g,t) of every cell on the units ``keep[d]`` of each deletion ``d``, as
    :func:`_estimate_cell` would estimate it on the panel without the deleted cluster:
    its covariates standardised over the kept units (:func:`_standard`), its weights
    normalised over them, the same failures with the same reasons. A cell whose batch
    meets a singular matrix is estimated deletion by deletion with the 2x2 itself."""
    n_del, k = keep.shape[0], len(cells)
    # the refit standardises each covariate over the kept units' observed values
    shift = np.zeros((n_del, len(xraw)))
    scale = np.ones((n_del, len(xraw)))
    for i, xv in enumerate(xraw):
        for d in range(n_del):
            shift[d, i], scale[d, i] = _standardisation(xv[keep[d]])
    # each deletion's weights are normalised over its kept units (as _wide_arrays does)
    uw_scale = np.array([1.0 / uw[keep[d]].mean() for d in range(n_del)])
    est = _ESTIMATORS[opts.est_method]
    res = _CellsWithout(
        att=np.full((n_del, k), np.nan),
        n_treated=np.zeros((n_del, k), dtype=int),
        n_control=np.zeros((n_del, k), dtype=int),
        normalised=np.zeros(k, dtype=bool),
        why=[[None] * k for _ in range(n_del)],
    )
    for j, cell in enumerate(cells):
        c = int(np.searchsorted(periods, cell.t))
        b = cell.base
        if b == c:
            res.att[:, j], res.normalised[j] = 0.0, True
            continue
        treat, ctrl, dy = _cell_sample(cell, c, y=y, gvec=gvec, never=never,
                                       periods=periods, opts=opts)  # fmt: skip
        rows = np.flatnonzero(treat | ctrl)
        kk = keep[:, rows]
        n1t, n1c = (kk & treat[rows]).sum(axis=1), (kk & ctrl[rows]).sum(axis=1)
        res.n_treated[:, j], res.n_control[:, j] = n1t, n1c
        live = np.flatnonzero((n1t > 0) & (n1c > 0))
        for d in np.flatnonzero((n1t == 0) | (n1c == 0)).tolist():
            res.why[d][j] = (
                f"({cell.g:g},{cell.t}) no {'treated' if n1t[d] == 0 else 'control'} units"
            )
        if live.size == 0:
            continue
        xc = min(b, c)
        dt = treat[rows].astype(float)
        # deletions in chunks, so a stack holds at most _BATCH_FLOATS numbers per array
        per = max(1, _BATCH_FLOATS // (rows.size * (len(xraw) + 1)))
        att = np.full(live.size, np.nan)
        why: list[str | None] = [None] * live.size
        for lo in range(0, live.size, per):
            part = live[lo : lo + per]
            xmat = np.ones((part.size, rows.size, len(xraw) + 1))
            for i, xv in enumerate(xraw):
                xmat[:, :, i + 1] = (xv[rows, xc][None, :] - shift[part, i, None]) / scale[
                    part, i, None
                ]
            wmat = uw[rows][None, :] * kk[part] * uw_scale[part, None]
            att[lo : lo + part.size], why_part, redo = _att_batch(
                opts.est_method, dy[rows], dt, xmat, wmat, kk[part]
            )
            why[lo : lo + part.size] = why_part
            # a deletion whose stack met a singular matrix: the single 2x2 (its own error)
            for i in np.flatnonzero(redo).tolist():
                m = kk[part[i]]
                try:
                    a, inf = est(dy[rows][m], dt[m], xmat[i][m], wmat[i][m])
                except (np.linalg.LinAlgError, _Overlap) as exc:
                    why[lo + i] = str(exc)
                    continue
                if np.isfinite(a) and np.all(np.isfinite(inf)):
                    att[lo + i] = a
                else:
                    why[lo + i] = "the estimate is not finite"
        for i, d in enumerate(live.tolist()):
            if why[i] is None and not np.isfinite(att[i]):
                why[i] = "the estimate is not finite"
            if why[i] is None:
                res.att[d, j] = att[i]
            else:
                res.why[d][j] = f"({cell.g:g},{cell.t}) {why[i]}"
    return res


def _att_batch(
    method: str,
    dy: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    kept: np.ndarray,
) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """The 2x2 ATT of :func:`_att_reg`, :func:`_att_ipw` or :func:`_att_dr` for a stack
    of designs ``x`` (deletions x units x covariates) and weights ``w`` (zero for the
    deleted units, which then add nothing to a sum, a logit or a regression), with the
    reason where a deletion's 2x2 fails as the single one would, and ``redo``: the
    deletions whose logit or regression met a singular matrix, for the caller to run
    through the single 2x2 (which raises there, with its own message)."""
    n_del = x.shape[0]
    why: list[str | None] = [None] * n_del
    bad = np.zeros(n_del, dtype=bool)
    redo = np.zeros(n_del, dtype=bool)

    def fail(mask: np.ndarray, reason: Any) -> None:
        for i in np.flatnonzero(mask & ~bad & ~redo):
            why[i] = reason(i) if callable(reason) else reason
        bad[:] |= mask

    def gram(rows: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return np.einsum("gmk,gml->gkl", x[rows] * wt[..., None], x[rows])

    ps = None
    if method in ("ipw", "dr"):
        beta = np.zeros(x.shape[::2])
        active = np.ones(n_del, dtype=bool)
        for _ in range(100):
            a = np.flatnonzero(active & ~redo)
            if a.size == 0:
                break
            p = special.expit(np.einsum("gmk,gk->gm", x[a], beta[a]))
            grad = np.einsum("gmk,gm->gk", x[a], w[a] * (d - p))
            step = _solve_each(gram(a, w[a] * p * (1 - p)), grad, a, redo)
            beta[a] += step
            done = np.max(np.abs(step), axis=1) < 1e-12 * (1 + np.max(np.abs(beta[a]), axis=1))
            active[a[done]] = False
        p = special.expit(np.einsum("gmk,gk->gm", x, beta))
        # the single fit ends with the inverse Hessian, which fails when it is singular
        rows = np.flatnonzero(~redo)
        _solve_each(gram(rows, w[rows] * p[rows] * (1 - p[rows])),
                    np.ones((rows.size, x.shape[2])), rows, redo)  # fmt: skip
        top = np.where(kept, p, -np.inf).max(axis=1)
        fail(top >= _OVERLAP, lambda i: f"propensity score reaches {top[i]:.4f} (overlap violated)")
        ps = np.minimum(p, _PS_CAP)
    fitted = np.zeros(w.shape)
    if method in ("reg", "dr"):
        wc = w * (1 - d)
        xtx = gram(np.arange(n_del), wc)
        with np.errstate(invalid="ignore", divide="ignore"):
            fail(np.linalg.cond(xtx) > 1 / np.finfo(float).eps, "singular control-group design")
        use = np.flatnonzero(~bad & ~redo)
        coef = np.zeros(x.shape[::2])
        rhs = np.einsum("gmk,gm->gk", x[use], wc[use] * dy)
        coef[use] = _solve_each(xtx[use], rhs, use, redo)
        fitted = np.einsum("gmk,gk->gm", x, coef)
    if method == "reg":
        wt = w * d
        att = (wt @ dy - np.einsum("gm,gm->g", wt, fitted)) / wt.sum(axis=1)
    else:
        assert ps is not None
        trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
        w_t = trim * w * d
        w_c = trim * w * ps * (1 - d) / (1 - ps)
        n_ctrl = (kept & (d == 0)).sum(axis=1)
        fail(~(w_c.sum(axis=1) > 0), lambda i: (
            f"all {int(n_ctrl[i])} control unit(s) have a propensity score >= {_TRIM_LEVEL} "
            "and are trimmed (no control weight left)"))  # fmt: skip
        fail(~(w_t.sum(axis=1) > 0), "the treated units have no positive weight")
        resid = dy - fitted if method == "dr" else np.broadcast_to(dy, w.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            att = (w_t * resid).sum(axis=1) / w_t.sum(axis=1) - (w_c * resid).sum(axis=1) / w_c.sum(
                axis=1
            )
    att[bad | redo] = np.nan
    return att, why, redo


def _solve_each(mat: np.ndarray, rhs: np.ndarray, rows: np.ndarray, redo: np.ndarray) -> np.ndarray:
    """``mat[i]^{-1} rhs[i]`` for a stack; a singular ``mat[i]`` flags ``redo[rows[i]]``
    (its solution is left at zero) instead of failing the whole stack."""
    try:
        return np.asarray(np.linalg.solve(mat, rhs[..., None])[..., 0])
    except np.linalg.LinAlgError:
        out = np.zeros(rhs.shape)
        for i in range(len(mat)):
            try:
                out[i] = np.linalg.solve(mat[i], rhs[i])
            except np.linalg.LinAlgError:
                redo[rows[i]] = True
        return out


def _cells_from_batch(
    cells: list[_Cell],
    found: _CellsWithout,
    pos: int,
    keep: np.ndarray,
    gvec: np.ndarray,
    uw: np.ndarray,
    periods: np.ndarray,
    opts: _Options,
    outcome: str,
) -> GroupTime | str:
    """One restriction's cells from the batch, with the refit's checks and messages
    (:func:`att_gt`, :func:`_check_cells`)."""
    g_kept = gvec[keep]
    try:
        cohorts = _treated_cohorts(g_kept, opts)
    except EstimationError as exc:
        return str(exc)[:200]
    # the full sample's cells of the cohorts kept: _make_cells on the kept sample
    idx = np.flatnonzero(np.isin([cl.g for cl in cells], cohorts))
    if idx.size == 0:
        return _NO_CELLS
    uw_k = uw[keep] / uw[keep].mean()
    gt = GroupTime(
        units=np.empty(0),
        periods=periods,
        cohorts=cohorts,
        cell_g=np.array([cells[j].g for j in idx]),
        cell_t=np.array([cells[j].t for j in idx]),
        cell_e=np.array([cells[j].e for j in idx]),
        cell_base=periods[[cells[j].base for j in idx]],
        att=found.att[pos, idx],
        normalised=found.normalised[idx],
        n_treated=found.n_treated[pos, idx],
        n_control=found.n_control[pos, idx],
        # the aggregations read the cells and the cohort shares, not the influence
        basis=np.zeros((0, idx.size + cohorts.size)),
        pg_cohort=np.array([np.mean(uw_k * (g_kept == g)) for g in cohorts]),
        order=np.empty(0, dtype=int),
        n_obs=0,
    )
    failed = [w for w in (found.why[pos][j] for j in idx) if w is not None]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check_cells(gt, failed, outcome)
    except ZoneImpactError as exc:
        return str(exc)[:200]
    return gt


def labels_by_unit(labels: pd.Series) -> pd.Series:
    """Cluster labels given as a Series indexed by unit, one per unit. A unit may repeat
    (a column of the long panel indexed by unit) only with one label: with two, taking
    the first would cluster it silently by whichever row came first."""
    if not labels.index.has_duplicates:
        return labels
    n = labels.groupby(level=0).nunique(dropna=False)
    if (n > 1).any():
        u = n.index[(n > 1).to_numpy()][0]
        seen = pd.unique(labels.loc[[u]].to_numpy())[:3].tolist()
        raise SpecError(
            f"Cluster labels {labels.name!r} give unit {_v(u)!r} more than one label "
            f"({seen}); a unit belongs to one cluster."
        )
    return labels.groupby(level=0).first()


def _unit_labels(panel: Panel | None, cluster: Any, units: np.ndarray) -> list[np.ndarray]:
    """Cluster labels per unit for each clustering dimension: column names of the panel
    or its geography, or a pandas Series indexed by unit (any user column)."""
    if cluster is None:
        return []
    dims = list(cluster) if isinstance(cluster, list | tuple) else [cluster]
    out = []
    for dim in dims:
        if isinstance(dim, pd.Series):
            labels = labels_by_unit(dim).reindex(units)
            if labels.isna().any():
                u = labels.index[labels.isna().to_numpy()][0]
                raise SpecError(
                    f"Cluster labels {dim.name!r} have no value for unit {_v(u)!r}; the Series "
                    "must be indexed by unit and cover every unit of the estimate."
                )
            out.append(whole_labels(labels.to_numpy()))
            continue
        if panel is None:
            raise SpecError(
                f"cluster={dim!r} names a column but the result keeps no panel; pass the "
                "labels as a pandas Series indexed by unit."
            )
        name = panel.column_for(dim)
        _check_cluster_name(panel, name, shown=dim)
        out.append(_cluster_labels(panel, name, units))
    return out


# ---------------------------------------------------------------------------- result
def _terms_and_cells(
    gt: GroupTime, agg: _Aggregation, inf: _Inference
) -> tuple[pd.DataFrame, pd.DataFrame]:
    terms = pd.DataFrame({"term": agg.names, "estimate": agg.estimates, "se": inf.se_terms})
    if inf.band_terms is not None:
        terms["band_low"], terms["band_high"] = inf.band_terms
    cells = pd.DataFrame(
        {
            "cohort": gt.cell_g.astype(np.int64),
            "time": gt.cell_t,
            "event_time": gt.cell_e,
            "base_period": gt.cell_base,
            "estimate": gt.att,
            "se": inf.se_cells,
            "n_treated": gt.n_treated,
            "n_control": gt.n_control,
        }
    )
    if inf.band_cells is not None:
        cells["band_low"], cells["band_high"] = inf.band_cells
    return terms, cells


def _inference_info(
    inf: _Inference,
    terms: pd.DataFrame,
    *,
    bootstrap: bool,
    n_boot: int,
    boot_weights: str,
    cluster: Any,
    n_units: int,
    anticipation: int = 0,
    se_type: str | None = None,
    vcov_type: Literal["CR0", "CR1"] = "CR0",
) -> dict[str, Any]:
    # the anticipation-window event times -anticipation..-1 are effects, not pre-trends:
    # the test keeps only t < g - anticipation (R did PR #276); a NaN SE leaves them out
    ev = terms["term"].str.extract(r"^event:(-?\d+)$")[0].astype(float)
    window = ((ev >= -anticipation) & (ev < 0)).to_numpy()
    tested = terms.assign(se=np.where(window, np.nan, terms["se"])) if window.any() else terms
    # Hotelling's F(L, G - L) on the CR0 influence-function covariance (chi2_L rejected
    # 58% of parallel-trend worlds with 10 regions and 6 leads; session 22); with more
    # leads than clusters the p-value is None and info says why, without a warning per fit
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pretrend_wald:", category=RuntimeWarning)
        pretrend = pretrend_wald(
            tested,
            inf.vcov,
            n_clusters=inf.n_clusters if inf.n_clusters is not None else n_units,
            vcov_type=vcov_type,
        )
    name = (
        cluster
        if cluster is None or isinstance(cluster, str)
        else (
            "+".join(str(getattr(c, "name", c)) for c in cluster)
            if isinstance(cluster, list | tuple)
            else str(getattr(cluster, "name", "user labels"))
        )
    )
    return {
        "n_boot": n_boot if bootstrap else 0,
        "boot_weights": boot_weights if bootstrap else None,
        "cluster": name,
        "n_clusters": inf.n_clusters,
        "se_type": se_type
        or ("multiplier bootstrap" if bootstrap else "analytic influence function"),
        "pretrend_p": _nan_to_none(pretrend["p_value"]),
        "pretrend_stat": _nan_to_none(pretrend["statistic"]),
        "pretrend_df": int(pretrend["df"]),
        "pretrend_df2": pretrend["df2"],
        "pretrend_note": pretrend["note"],
        "crit_event": _nan_to_none(inf.crit.get("event")),
        "crit_att_gt": _nan_to_none(inf.crit.get("att_gt")),
    }


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
    cluster: str | list[str] | None = None,
    uniform_bands: bool = True,
    boot_weights: Literal["rademacher", "mammen"] = "rademacher",
    chunk_size: int | None = None,
    weights: str | None = None,
) -> CallawaySantAnnaResult:
    """Estimate Callaway & Sant'Anna (2021) group-time ATTs and their aggregations.

    Three steps, as R ``did`` splits ``att_gt`` and ``aggte``: :func:`att_gt` (the cells
    and their influence functions, CS Section 2), :func:`aggregate_terms` (Section 3) and
    :func:`_infer` (Theorem 2 / Algorithm 1). The result keeps the building blocks, so
    ``result.aggregate`` and ``result.with_inference`` need no re-estimation.

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
        Comparison units (CS eq. 2.3 / 2.4); R's ``nevertreated``/``notyettreated`` work.
    est_method : {"unconditional", "reg", "ipw", "dr"}, optional
        2x2 estimator; default ``"dr"`` with covariates, ``"unconditional"`` without.
        Without covariates ``reg``, ``ipw`` and ``dr`` equal ``unconditional``.
    covariates : sequence of str, optional
        Panel columns to condition on (value in the earlier period of each 2x2).
    anticipation : int
        Anticipation ``delta`` (CS Assumption 3), counted in units of the time column,
        not in observed periods (with biennial data, ``anticipation=2`` is one period).
        Cells with ``g - anticipation <= t < g`` are anticipation effects: they compare
        with the last period before ``g - anticipation`` under either base period,
        appear as ``event:-anticipation`` .. ``event:-1`` of the dynamic aggregation,
        stay out of the other aggregations (``t >= g`` only) and out of the pre-trend
        test (``info["pretrend_p"]`` uses ``t < g - anticipation`` only), as in R
        ``did`` since PR #276.
    base_period : {"varying", "universal"}
        Base period of pre-treatment cells (see the module docstring).
    aggregations : sequence of {"simple", "dynamic", "group", "calendar"}
        Aggregations to report; ``simple`` (term ``att``) is always computed.
    min_e, max_e : float
        Event-time window of the dynamic aggregation; ``max_e`` also caps the cells used
        by ``simple`` and ``group``. Event times are ``t - g`` in units of the time
        column: on regularly spaced periods this is R ``aggte``; on irregular periods R
        ``did`` and moderndid recode the periods to 1, 2, ... first, so a cap counted in
        periods there can keep other cells than ``max_e`` here.
    balance_e : int, optional
        Keep only cohorts observed for at least ``balance_e`` periods after treatment in
        the dynamic aggregation (R ``aggte(balance_e=)``).
    bootstrap : bool
        Multiplier-bootstrap standard errors and uniform bands (R default) instead of
        analytic influence-function standard errors.
    n_boot : int
        Bootstrap draws.
    cluster : str or list of two str, optional
        Column of ``panel.data`` (constant within unit) or of ``panel.geography``
        (e.g. ``"region"``); two names cluster two ways (analytic SEs). Any user column:
        ``result.with_inference(cluster=series)`` with a Series by unit.
    uniform_bands : bool
        Report simultaneous (sup-t) bands ``band_low``/``band_high`` (bootstrap only).
    boot_weights : {"rademacher", "mammen"}
        Multiplier weights (R ``did``: Rademacher).
    chunk_size : int, optional
        Bootstrap draws per chunk and child generator (default 100); each running chunk
        holds ``chunk_size`` x 32,768 weights whatever the number of units.
    weights : str, optional
        Column of positive sampling weights, constant within each unit (R ``did``
        ``weightsname``): every 2x2 estimator is DRDID's weighted one (``i.weights``),
        cohort shares are weighted and the influence functions carry the weights
        (module docstring, "Weights").

    Returns
    -------
    CallawaySantAnnaResult
        Terms ``att``, ``event:E``, ``event_avg``, ``cohort:G``, ``cohort_avg``,
        ``calendar:T``, ``calendar_avg``; ``att_gt`` table; influence functions; ``info``
        with ``control_group``, ``est_method``, ``base_period``, ``n_boot``, ``cluster``,
        ``pretrend_p`` (joint Wald test of the pre-period event-time effects).
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="callaway_santanna"
    )
    opts = _check_options(
        panel,
        control_group=control_group,
        est_method=est_method,
        covariates=covariates,
        anticipation=anticipation,
        base_period=base_period,
        aggregations=aggregations,
        min_e=min_e,
        max_e=max_e,
        balance_e=balance_e,
        bootstrap=bootstrap,
        n_boot=n_boot,
        cluster=cluster,
        uniform_bands=uniform_bands,
        boot_weights=boot_weights,
        chunk_size=chunk_size,
        weights=weights,
    )
    gt, failed = att_gt(panel, outcome, opts)
    _check_cells(gt, failed, outcome)
    _warn_few_treated_clusters(gt, _unit_labels(panel, cluster, gt.units), cluster)
    return _estimate(panel, outcome, gt, failed, opts, cluster, rng, alpha, n_jobs)


#: :func:`fit`'s options as a jackknife refit passes them (:func:`_refit_cells`): its
#: defaults, no bootstrap and the simple aggregation (what the refit's cells need)
_REFIT_DEFAULTS: dict[str, Any] = {
    **{
        name: param.default
        for name, param in inspect.signature(fit).parameters.items()
        if name in inspect.signature(_check_options).parameters and name != "panel"
    },
    "bootstrap": False,
    "aggregations": ("simple",),
}


def _check_cells(gt: GroupTime, failed: list[str], outcome: str) -> None:
    """Warn about the cells that could not be estimated; fail when no post-treatment
    cell is left for the aggregations."""
    if failed:
        warnings.warn(
            f"{len(failed)} ATT(g,t) cell(s) could not be estimated and are left out of the "
            f"aggregations: {'; '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}",
            stacklevel=4,
        )
    if not gt.valid[gt.cell_e >= 0].any():
        why = f": {'; '.join(failed[:3])}" if failed else ""
        raise EstimationError(
            f"No post-treatment ATT(g,t) could be estimated for {outcome!r} "
            f"({len(failed)} of {gt.k} cells failed{why})."
        )


def _warn_few_treated_clusters(
    gt: GroupTime, labels: list[np.ndarray], cluster: Any, stacklevel: int = 4
) -> None:
    """Warn when the units of the cohorts with an estimated post-treatment cell lie in
    fewer than ``FEW_TREATED_CLUSTERS`` clusters: their influence functions then carry
    the variance almost alone and the SE is far too small (MacKinnon & Webb 2017).

    ``labels``: cluster labels by unit per dimension (empty: units). Membership is read
    from the basis' cohort columns ``w_i 1{G_i = g} - p_g`` (adding ``p_g`` back is exact
    zero for non-members), so the in-memory and Dask engines count alike."""
    post = np.unique(gt.cell_g[gt.valid & (gt.cell_e >= 0)])
    cols = gt.basis[:, gt.k :] + gt.pg_cohort
    treated = (cols[:, np.isin(gt.cohorts, post)] > 0).any(axis=1)
    what = f"cluster(s) of {cluster!r}" if isinstance(cluster, str) else "cluster(s)"
    what = "unit(s)" if cluster is None else what
    n = min(len(pd.unique(lab[treated])) for lab in (labels or [gt.units]))
    warn_few_treated(n, f"{what} (cohorts with a post-treatment cell)", stacklevel=stacklevel)


def _estimate(
    panel: Panel,
    outcome: str,
    gt: GroupTime,
    failed: list[str],
    opts: _Options,
    cluster: Any,
    rng: np.random.Generator | None,
    alpha: float,
    n_jobs: int,
) -> CallawaySantAnnaResult:
    """The aggregation (CS Section 3) and inference (Theorem 2 / Algorithm 1) steps of
    :func:`fit` on estimated cells, and the result that keeps their building blocks."""
    labels = _unit_labels(panel, cluster, gt.units)
    agg = aggregate_terms(
        gt, opts.aggs, min_e=opts.min_e, max_e=opts.max_e, balance_e=opts.balance_e
    )
    generator = as_generator(rng) if opts.bootstrap else None
    settings = _settings(opts, labels, cluster, n_jobs, generator)
    inf = _infer(
        gt,
        agg,
        labels=labels,
        bootstrap=opts.bootstrap,
        n_boot=opts.n_boot,
        rng=generator,
        chunk_size=opts.chunk_size,
        n_jobs=n_jobs,
        boot_weights=opts.boot_weights,
        uniform_bands=opts.uniform_bands,
        alpha=alpha,
    )
    terms, cells = _terms_and_cells(gt, agg, inf)
    inference = _inference_info(
        inf,
        terms,
        bootstrap=opts.bootstrap,
        n_boot=opts.n_boot,
        boot_weights=opts.boot_weights,
        cluster=cluster,
        n_units=len(gt.units),
        anticipation=opts.anticipation,
    )
    return CallawaySantAnnaResult(
        estimator="callaway_santanna",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=len(gt.units),
        n_obs=gt.n_obs,
        vcov=inf.vcov,
        info=_fit_info(opts, inference, gt, failed),
        alpha=alpha,
        att_gt=cells,
        influence=_cell_influence(gt),
        term_influence=gt.basis @ agg.amat,
        units=gt.units,
        group_time=gt,
        panel=panel,
        settings=settings,
    )


def _settings(
    opts: _Options,
    labels: list[np.ndarray],
    cluster: Any,
    n_jobs: int,
    generator: np.random.Generator | None,
) -> dict[str, Any]:
    """What ``result.aggregate`` and ``result.with_inference`` redo the steps with."""
    return {
        "method": "bootstrap" if opts.bootstrap else "analytic",
        # what a jackknife refit passes to fit again
        "fit_options": {
            "control_group": opts.cg,
            "est_method": opts.est_method,
            "covariates": list(opts.covs),
            "anticipation": opts.anticipation,
            "base_period": opts.base_period,
            "weights": opts.weights,
        },
        "aggregations": list(opts.aggs),
        "min_e": opts.min_e,
        "max_e": opts.max_e,
        "balance_e": opts.balance_e,
        "bins": [],
        "labels": labels,
        "cluster": cluster,
        "bootstrap": opts.bootstrap,
        "n_boot": opts.n_boot,
        "boot_weights": opts.boot_weights,
        "uniform_bands": opts.uniform_bands,
        "chunk_size": opts.chunk_size,
        "n_jobs": n_jobs,
        # the generator as it was before the draws: a later aggregation replays them
        "rng": None if generator is None else snapshot(generator),
    }


def _fit_info(
    opts: _Options, inference: dict[str, Any], gt: GroupTime, failed: list[str]
) -> dict[str, Any]:
    """The ``info`` of a fit: the options, the inference summary and the cell counts."""
    return {
        "control_group": opts.cg,
        "est_method": opts.est_method,
        "covariates": ",".join(opts.covs) if opts.covs else None,
        "base_period": opts.base_period,
        "anticipation": int(opts.anticipation),
        **{key: inference[key] for key in ("n_boot", "boot_weights", "cluster", "n_clusters")},
        **{
            key: inference[key]
            for key in (
                "se_type",
                "pretrend_p",
                "pretrend_stat",
                "pretrend_df",
                "pretrend_df2",
                "pretrend_note",
            )
        },
        "n_cells": int(gt.k),
        "n_cells_failed": int(len(failed)),
        "unbalanced": bool(gt.n_obs < len(gt.units) * len(gt.periods)),
        "weights": opts.weights or "",
        "crit_event": inference["crit_event"],
        "crit_att_gt": inference["crit_att_gt"],
    }


def _cell_influence(gt: GroupTime) -> np.ndarray:
    """The cells' influence functions with NaN for cells that could not be estimated."""
    psi = gt.basis[:, : gt.k]
    if gt.valid.all():
        return psi
    out = psi.copy(order="F")
    out[:, ~gt.valid] = np.nan
    return out


def _check_bins(bins: Any) -> list[tuple[int, int]]:
    if bins is None:
        return []
    out = []
    for b in check_names(bins, "bins"):
        if (
            not isinstance(b, list | tuple)
            or len(b) != 2
            or not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in b)
            or b[0] > b[1]
        ):
            raise SpecError(
                f"bins must be pairs [first, last] of whole event times with first <= last, "
                f"e.g. [[-4, -2], [0, 1]]; received {b!r}."
            )
        out.append((int(b[0]), int(b[1])))
    return out
