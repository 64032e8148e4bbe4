"""Borusyak, Jaravel & Spiess (2024) imputation estimator for staggered adoption.

Borusyak, K., Jaravel, X. and Spiess, J. (2024), "Revisiting event-study designs: robust
and efficient estimation", *Review of Economic Studies* 91(6), 3253-3285.

Theorem 2 (the imputation estimator), for an estimand ``tau_w = sum_{it in Omega_1} w_it
tau_it`` over treated observations ``Omega_1``:

1. fit ``Y_it = a_i + l_t + X_it b + e_it`` by (weighted) OLS on the untreated observations
   ``Omega_0`` (never treated and not yet treated);
2. impute ``Y_it(0)`` for every treated observation and set
   ``tau_hat_it = Y_it - a_i - l_t - X_it b``;
3. ``tau_hat_w = sum w_it tau_hat_it``.

Being linear in ``Y``, ``tau_hat_w = sum_it v_it Y_it`` with implied weights ``v_it = w_it``
on ``Omega_1`` and ``v_0 = -Z_0 (Z_0' W Z_0)^{-1} Z_1' w_1`` (times the observation weight)
on ``Omega_0`` (Section 4.1). The variance (Theorem 3, Section 4.3) is estimated
conservatively by ``sum_c (sum_{it in c} v_it e~_it)^2`` over clusters ``c`` with
``e~_it`` the step-1 residual on ``Omega_0`` and ``tau_hat_it - tau~_it`` on ``Omega_1``,
where ``tau~_it`` is eq. 8's average of ``tau_hat`` within the observation's cohort x
event-time cell (the default ``avgeffectsby(Ei K)`` of Stata ``did_imputation``):
``sum_c a_c b_c / sum_c a_c^2`` over the clusters ``c`` with targets in the cell (``a_c``
their ``v`` sum, ``b_c`` their ``v tau_hat`` sum), as ``did_imputation`` forms it from its
cluster-by-cell weights; it is the plain ``v``-weighted mean with unit clusters and one
target per unit and cell of equal weight. No small-sample factor and, by default, no
leave-out, as ``did_imputation``'s defaults; ``leave_out=True`` applies the Supplementary
Appendix A.9 refinement (the own cluster's ``a_c b_c`` and ``a_c^2`` left out), and
``small_sample="cr2"`` (opt-in) Bell & McCaffrey's CR2 residuals with each estimand's
Satterthwaite df (:func:`_cr2_scores`): step 1's and, without the leave-out, ``tau~``'s
(eq. 8 is least squares of the clusters' ``b_c`` on ``a_c`` in a cell, so a cluster's
residual is divided by ``sqrt(1 - h)``, ``h = a_c^2 / sum a^2``, where A.9's leave-out
divides it by ``1 - h``; :func:`._bjs.tau_tilde`).

Pre-trend test (Test 1, Section 4.4): OLS on ``Omega_0`` only of ``Y`` on the fixed effects
(and controls) plus dummies ``1{K_it = -k}``, ``k = 1..pretrends``, for eventually treated
units; Wald test ``W`` of the dummies with cluster-robust covariance (fixest's CR1 factor,
see :func:`._fe.cluster_ssc_k`). ``info["pretrend_p"]`` refers it to Hotelling's ``F(L, G -
L)`` (``F = (G - L) W / (L (G - 1))``, the reference of the package's other pre-trend tests);
``did_imputation``'s ``test`` after ``reghdfe`` and diff-diff refer ``W / L`` to ``F(L, G -
1)``, kept as ``info["pretrend_p_did_imputation"]``. Under exact parallel trends with
region shocks and 5 leads, the peers' reference rejected 28% at 5% with 10 clusters,
Hotelling's 6% (``benchmarks/RESULTS.md``, session 30).

Why by hand: no maintained Python library outside our peer set implements the imputation
estimator and its Theorem 3 variance. The step-1 fixed effects are needed as values (to
impute), so they are solved exactly from the normal equations: the unit block of
``Z_0'WZ_0`` is diagonal, so eliminating the unit effects leaves a dense
``(periods - 1 + covariates)`` Schur complement (:class:`_TwoWayNormal`); one small
factorisation serves the point estimate and every estimand's implied weights, and each
solve is a few passes over the rows (no dummy matrix, sparse or dense, is formed).

The steps are one function each: :func:`_check_options`, :func:`_sample` (rows whose
``Y(0)`` is imputable), :func:`_impute` (steps 1-2, eq. 5-6), :func:`_estimand_weights`,
:func:`_implied_untreated_weights` (Section 4.1), :func:`_cluster_scores` (Theorem 3,
eq. 8-10, ``tau~`` from :func:`zoneimpact.estimators._bjs.tau_tilde`),
:func:`_pretrend_regression` (Test 1), :func:`_variance` and :func:`_terms_and_vcov`. The result keeps the implied-weight
solutions, residuals and ``tau_hat`` (:class:`ImputationBlocks`), so
:meth:`ImputationResult.with_inference` clusters the variance on any column, one or two
ways, without re-running the regression, and :meth:`ImputationResult.aggregate` forms other
estimands (R ``did::aggte``'s simple, dynamic, group and calendar types, event-time bins)
as new weights ``w_it`` on the kept ``tau_hat`` (:func:`_aggregation_weights`), with their
implied weights solved from the kept untreated rows (:func:`_with_estimands`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.linalg import splu

from ..errors import EstimationError, SpecError
from ..inference.covariance import standard_errors_from_variance, warn_few_treated
from ..panel import RESERVED, Panel, _v
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    terms_frame,
)
from ._bjs import (
    BM_MAX_ENTRIES,
    Imputed,
    bm_gram,
    bm_parts,
    bm_vectors,
    cell_cluster_codes,
    cr2_over_limits,
    cr2_parts,
    design,
    gram_df,
    satterthwaite_df,
    tau_tilde,
)
from ._fe import (
    check_cluster,
    cluster_codes,
    cluster_scores,
    cluster_ssc_k,
    collinear_given_effects,
    demean,
    fe_dof,
)
from ._scale import midrange, outcome_scale, scale_equivariant
from .callaway_santanna import _check_bins, _check_window
from .sun_abraham import _covariate_list
from .twfe import _fixest_k

__all__ = ["ImputationBlocks", "ImputationResult", "fit"]

#: Most estimands (``att`` and one per horizon): each has a column of implied weights on
#: the untreated observations and of cluster scores.
_MAX_TARGETS = 2_001

#: Small-sample rules of the estimands' variance (:func:`fit`'s ``small_sample``).
_SMALL_SAMPLE = ("none", "cr2")

#: Aggregations of :meth:`ImputationResult.aggregate` (R ``did::aggte``'s types).
_AGGREGATIONS = ("simple", "dynamic", "group", "calendar")

_PARTITIONS = {
    "cohort_event": ("cohort", "event"),
    "cohort": ("cohort",),
    "event": ("event",),
    "none": (),
}


@dataclass(frozen=True)
class ImputationBlocks:
    """What the Theorem 3 variance needs, kept so that another clustering does not re-run
    the imputation regression.

    Attributes
    ----------
    rows : ndarray
        Positions in ``panel.data`` of the rows used (untreated and treated).
    untreated, treated : ndarray
        Positions among ``rows`` of ``Omega_0`` and ``Omega_1``.
    unit0, period0, X0, w0 : ndarray
        Effect codes, covariates and observation weights of the untreated rows.
    gamma_unit, gamma_period, gamma_cov : ndarray
        Solutions ``(Z_0'WZ_0)^{-1} Z_1'w`` of each estimand (rows), split into unit,
        period and covariate parts: the implied weights ``v_0`` (Section 4.1).
    resid0, tau : ndarray
        Step-1 residuals on ``Omega_0`` and ``tau_hat`` on ``Omega_1``.
    estimand_weights : ndarray (estimands x treated rows)
        ``w_it`` of ``att`` and each ``event:E``.
    cells, n_cells, leave_out
        Auxiliary cells of ``tau~`` and the leave-out choice (Section 4.3, App. A.9).
    targets : tuple of str
        Names of the estimands.
    pre_leads, pre_estimate, pre_scores
        Test 1 leads ``k``, their coefficients and every coefficient's per-row influence
        on the untreated rows (empty when the test is off).
    unit1, period1, X1, w1, cohort1, time1 : ndarray
        Effect codes, covariates, observation weights, cohort and period of the treated
        rows: what another estimand's weights and implied weights need
        (:meth:`ImputationResult.aggregate`).
    clusters : tuple of ndarray
        Cluster codes of ``rows`` (one or two ways) of the result's current variance.
    small_sample : {"none", "cr2"}
        The fit's small-sample rule for the estimands' variance (:func:`_cr2_scores`).
    """

    rows: np.ndarray
    untreated: np.ndarray
    treated: np.ndarray
    unit0: np.ndarray
    period0: np.ndarray
    X0: np.ndarray
    w0: np.ndarray
    gamma_unit: np.ndarray
    gamma_period: np.ndarray
    gamma_cov: np.ndarray
    resid0: np.ndarray
    tau: np.ndarray
    estimand_weights: np.ndarray
    cells: np.ndarray
    n_cells: int
    leave_out: bool
    targets: tuple[str, ...]
    pre_leads: tuple[int, ...]
    pre_estimate: np.ndarray
    pre_scores: np.ndarray
    unit1: np.ndarray
    period1: np.ndarray
    X1: np.ndarray
    w1: np.ndarray
    cohort1: np.ndarray
    time1: np.ndarray
    clusters: tuple[np.ndarray, ...] = ()
    small_sample: str = "none"

    def rescaled(self, c: float) -> ImputationBlocks:
        """The blocks for the outcome times ``c`` (weights and cells unchanged)."""
        return replace(
            self,
            resid0=self.resid0 * c,
            tau=self.tau * c,
            pre_estimate=self.pre_estimate * c,
            pre_scores=self.pre_scores * c,
        )


@dataclass(frozen=True)
class ImputationResult(EstimationResult):
    """Result of :func:`fit`; adds the imputed effects and the pre-trend regression.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per treated observation used: ``unit``, ``time``, ``cohort``, ``event``
        and ``tau`` (the imputed ``tau_hat_it``).
    pretrend : pandas.DataFrame
        Test 1 coefficients (``event``, ``estimate``, ``se``), empty when off.
    blocks : ImputationBlocks
        What :meth:`with_inference` needs to recompute the variance.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "effects": {"tau": 1},
        "pretrend": {"estimate": 1, "se": 1},
        "blocks": 1,
    }

    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    pretrend: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocks: ImputationBlocks | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {"effects": self.effects}
        if not self.pretrend.empty:
            out["pretrend"] = self.pretrend
        return out

    def with_inference(self, method: str = "cluster", *, cluster: Any = None) -> ImputationResult:
        """The same estimates with the conservative variance (BJS 2024, Theorem 3)
        clustered another way, without re-running the imputation regression.

        Parameters
        ----------
        method : {"cluster"}
            The Theorem 3 variance ``sum_c (sum_{it in c} v_it e~_it)^2``; with
            ``leave_out`` fits, ``tau~`` leaves out each observation's new cluster, and
            with ``small_sample="cr2"`` fits the CR2 residuals and Bell-McCaffrey df are
            recomputed for the new clusters (one way only: two are refused).
        cluster : str, pandas.Series, or a list of two of them, optional
            A column of the panel or of its geography (numeric or string), labels as a
            Series indexed by unit (or by (unit, time)); two entries cluster two ways by
            Cameron, Gelbach & Miller's (2011) ``V_1 + V_2 - V_12`` (no small-sample
            factor, as the one-way variance; a negative variance gives a NaN standard
            error). None: by unit. Test 1 is recomputed with the same clustering.

        Returns
        -------
        ImputationResult
            A new result: ``terms`` standard errors (and ``df`` under CR2), ``vcov``,
            ``pretrend`` and ``info`` (``cluster``, ``n_clusters`` (two ways: the
            smaller), ``leave_out_fallback`` (two ways: the largest count),
            ``pretrend_*``) changed.
        """
        if self.blocks is None:
            raise EstimationError(
                "This result keeps no imputation building blocks (it was not made by "
                "imputation.fit); refit to change its inference."
            )
        check_choice(method, "method", ("cluster",))
        _check_cr2_one_way(self.blocks.small_sample, cluster)
        # the negative-variance warning's stacklevel: the helper, _recluster, this method
        return self._recluster(cluster, stacklevel=3)

    def _recluster(self, cluster: Any, *, stacklevel: int) -> ImputationResult:
        """:meth:`with_inference`; ``stacklevel`` of a warning counts from the line here
        that computes the standard errors."""
        b = self.blocks
        assert b is not None
        c = outcome_scale(np.concatenate([b.tau, b.resid0]))
        if c != 1.0:
            # outcomes near the float limits: recluster on the fit's working scale, as
            # aggregate does, so the squared scores cannot overflow or underflow (exact:
            # c is a power of two; y x 1e160 gave an SE of inf and a NaN Test 1 F)
            small = self.rescaled(1 / c)
            return small._recluster(cluster, stacklevel=stacklevel + 1).rescaled(c)
        clusters, name = _row_clusters(self.panel, b.rows, cluster)
        var = _variance(b, clusters)
        est = self.terms.set_index("term").loc[list(b.targets), "estimate"].to_numpy(float)
        terms, vcov, pre_table = _terms_and_vcov(
            list(b.targets), est, var, b, two_way=len(clusters) == 2
        )
        # an aggregated result shows only some Test 1 leads: keep its terms
        terms, vcov = _shown(terms, vcov, self.terms["term"].tolist())
        terms = _shown_se(terms, vcov, len(clusters) == 2, stacklevel)
        info = {
            **self.info,
            "cluster": name,
            "n_clusters": var.n_clusters,
            "leave_out_fallback": var.n_fallback,
            **_pretrend_info(var, b),
        }
        return replace(
            self,
            terms=terms,
            vcov=vcov,
            info=info,
            pretrend=pre_table,
            blocks=replace(b, clusters=tuple(clusters)),
        )

    def aggregate(
        self,
        type: str = "dynamic",
        *,
        min_e: float | None = None,
        max_e: float | None = None,
        balance_e: int | None = None,
        bins: Sequence[Sequence[int]] | None = None,
    ) -> ImputationResult:
        """Another set of estimands from the same imputed effects, without re-running the
        imputation regression (BJS 2024, eq. 3-4; the vocabulary of R ``did::aggte``).

        Every estimand is ``sum_{it in Omega_1} w_it tau_hat_it`` with weights
        proportional to the observation weights (equal without ``weights``) on the
        treated observations it covers; only the weights change, so the estimates are
        weighted sums of the kept ``tau_hat`` and the variance is Theorem 3 with the
        fit's auxiliary cells, leave-out choice, small-sample rule (under CR2 each new
        estimand gets its own Bell-McCaffrey df) and the result's current clustering
        (from :meth:`with_inference`, if called). The weights are fixed given the
        treatment timing, as BJS's estimands are, so no estimated-weight term enters
        (unlike CS's cohort shares).

        Parameters
        ----------
        type : {"simple", "dynamic", "group", "calendar"}
            ``att`` (every treated observation with ``e <= max_e``) is always included;
            ``"dynamic"`` adds ``event:E`` (observations at event time ``E``), the Test 1
            leads ``event:-k`` within the window, and ``event_avg`` (the mean of the
            ``event:E``); ``"group"`` adds ``cohort:G`` (cohort ``G``'s observations with
            ``e <= max_e``) and ``cohort_avg`` (their average weighted by cohort size:
            units, each counted with its mean observation weight); ``"calendar"`` adds
            ``calendar:T`` (observations in period ``T``) and ``calendar_avg`` (their
            mean).
        min_e, max_e : float, optional
            Event-time window of ``event:E`` and the bins; ``max_e`` also caps ``att`` and
            ``cohort:G``.
        balance_e : int, optional
            Keep, for ``event:E`` and the bins, only the cohorts whose treated
            observations cover every event time ``0..balance_e``, and ``E <= balance_e``.
        bins : list of [first, last], optional
            Event-time bins, reported as ``event_bin:first..last``: the equal-weight
            average of the treated observations with ``first <= e <= last`` (within the
            dynamic selection), BJS's pooled estimand.

        Returns
        -------
        ImputationResult
            A new result (this one is unchanged) with ``terms``, ``vcov``, ``blocks``
            and ``info["aggregation"]``; ``effects`` and ``pretrend`` as before.

        Raises
        ------
        ZoneImpactError
            An unknown ``type``, malformed bins or window, a bin or window holding no
            treated observation, or ``balance_e`` that no cohort reaches.
        """
        self._kept_blocks()
        check_choice(type, "type", _AGGREGATIONS)
        lo, hi, bal = _check_window(min_e, max_e, balance_e)
        pairs = _check_bins(bins)
        # the negative-variance warning's stacklevel: the helper, _aggregate, this method
        return self._aggregate(type, lo, hi, bal, pairs, stacklevel=3)

    def _aggregate(
        self,
        type: str,
        lo: float,
        hi: float,
        bal: int | None,
        pairs: list[tuple[int, int]],
        *,
        stacklevel: int,
    ) -> ImputationResult:
        """:meth:`aggregate` of checked options; ``stacklevel`` of a warning counts from
        the line here that computes the standard errors."""
        b = self._kept_blocks()
        c = outcome_scale(b.tau)
        if c != 1.0:
            # outcomes near the float limits: aggregate on the fit's working scale, so
            # the squares of the variance cannot overflow (exact: c is a power of two)
            small = self.rescaled(1 / c)
            return small._aggregate(type, lo, hi, bal, pairs, stacklevel=stacklevel + 1).rescaled(c)
        targets, W = _aggregation_weights(b, type, lo, hi, bal, pairs)
        nb = _with_estimands(b, targets, W)
        var = _variance(nb, list(b.clusters))
        two_way = len(b.clusters) == 2
        terms, vcov, _ = _terms_and_vcov(targets, W @ b.tau, var, nb, two_way)
        leads = [f"event:{-k}" for k in b.pre_leads if type == "dynamic" and -k >= lo]
        terms, vcov = _shown(terms, vcov, [*targets, *leads])
        terms = _shown_se(terms, vcov, two_way, stacklevel)
        info = {**self.info, "aggregation": type}
        return replace(self, terms=terms, vcov=vcov, info=info, blocks=nb)

    def _kept_blocks(self) -> ImputationBlocks:
        if self.blocks is None or not self.blocks.clusters:
            raise EstimationError(
                "This result keeps no imputation building blocks (it was not made by "
                "imputation.fit); refit to aggregate."
            )
        return self.blocks


class _TwoWayNormal:
    """Normal equations of ``y = a_unit + l_period + X b`` (period 0 the reference level)
    on weighted rows, solved exactly by eliminating the unit effects.

    The unit block of ``Z'WZ`` is diagonal (each unit's weight), so the Schur complement
    on the ``periods - 1 + covariates`` other parameters is a small dense matrix: every
    solve costs a few passes over the rows, with no sparse design and no sparse
    factorisation (the same solution as ``splu`` on the sparse normal equations, to
    rounding).
    """

    def __init__(
        self, u: np.ndarray, t: np.ndarray, w: np.ndarray, X: np.ndarray, nU: int, nT: int
    ) -> None:
        k = X.shape[1]
        self.nU, self.nT, self.k = nU, nT, k
        d_unit = np.bincount(u, weights=w, minlength=nU)
        self.d_inv = 1.0 / d_unit
        # unit x (period, covariate) cross products: the off-diagonal block of Z'WZ
        Ct = np.bincount(u * nT + t, weights=w, minlength=nU * nT).reshape(nU, nT)[:, 1:]
        self.C = np.hstack(
            [Ct, *[np.bincount(u, weights=w * X[:, j], minlength=nU)[:, None] for j in range(k)]]
        )
        p = nT - 1 + k
        RR = np.zeros((p, p))
        RR[: nT - 1, : nT - 1] = np.diag(np.bincount(t, weights=w, minlength=nT)[1:])
        if k:
            TX = np.column_stack(
                [np.bincount(t, weights=w * X[:, j], minlength=nT)[1:] for j in range(k)]
            )
            RR[: nT - 1, nT - 1 :] = TX
            RR[nT - 1 :, : nT - 1] = TX.T
            RR[nT - 1 :, nT - 1 :] = (X * w[:, None]).T @ X
        self.Ct = np.ascontiguousarray(self.C.T)
        schur = RR - self.Ct @ (self.C * self.d_inv[:, None])
        schur = 0.5 * (schur + schur.T)
        if p:
            if collinear_given_effects(schur):
                raise EstimationError(
                    "The Y(0) model on untreated observations is singular (collinear covariates?)."
                )
        self.schur = schur

    def cross(
        self, u: np.ndarray, t: np.ndarray, X: np.ndarray, V: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``V Z`` for rows with codes ``u``, ``t`` and covariates ``X``, each of the ``r``
        rows of ``V`` (r x rows) one right-hand side: (unit part r x nU, rest r x p)."""
        ru = np.vstack([np.bincount(u, weights=v, minlength=self.nU) for v in V])
        rt = np.vstack([np.bincount(t, weights=v, minlength=self.nT)[1:] for v in V])
        return ru, np.hstack([rt, V @ X])

    def solve(self, ru: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit effects (r x nU), period effects with the reference's zero (r x nT) and
        covariate coefficients (r x k) solving the normal equations for each row."""
        scaled = ru * self.d_inv
        rest = np.linalg.solve(self.schur, (rr - scaled @ self.C).T).T if rr.shape[1] else rr
        unit = scaled - (rest @ self.Ct) * self.d_inv
        period = np.hstack([np.zeros((len(rr), 1)), rest[:, : self.nT - 1]])
        return unit, period, rest[:, self.nT - 1 :]


@dataclass(frozen=True)
class _Options:
    """The checked options of :func:`fit`."""

    n_pre: int
    horizons: list[int] | None
    covariates: list[str]
    cluster: str | None
    weights: str | None
    aux_partition: str
    leave_out: bool
    small_sample: str = "none"


@dataclass(frozen=True)
class _Sample:
    """The rows of one fit: ``rows`` are positions in ``panel.data``; every other array
    follows them. Unit and period codes ``uc``/``tc`` number the units and periods that
    have untreated rows (every kept treated row maps into them)."""

    rows: np.ndarray
    unit_ids: pd.Index
    unit_code: np.ndarray
    time: np.ndarray
    cohort: np.ndarray
    treated: np.ndarray
    y: np.ndarray
    wobs: np.ndarray
    uc: np.ndarray
    tc: np.ndarray
    n_unit: int
    n_period: int
    n_unidentified: int


@dataclass(frozen=True)
class _Variance:
    """Theorem 3 variance of the estimands, and Test 1 under the same clustering."""

    vcov: np.ndarray
    cross: np.ndarray | None
    pre_vcov: np.ndarray | None
    pre_F: float
    pre_p: float
    n_clusters: int
    n_fallback: int
    df: np.ndarray | None = None
    # Test 1 as did_imputation reports it, F on (leads, G - 1) (pre_F and pre_p: Hotelling)
    pre_F_peer: float = np.nan
    pre_p_peer: float = np.nan
    # the number of clusters of Test 1's reference (the smaller one with two ways; -1: the
    # two-way covariance is not positive definite)
    pre_clusters: int = 0


def _check_options(
    panel: Panel,
    *,
    horizons: Any,
    pretrends: Any,
    covariates: Any,
    cluster: Any,
    weights: Any,
    aux_partition: Any,
    leave_out: Any,
    small_sample: Any = "none",
) -> _Options:
    """Check every option of :func:`fit` once, before any work."""
    if not isinstance(aux_partition, str) or aux_partition not in _PARTITIONS:
        raise EstimationError(
            f"aux_partition={aux_partition!r} is not valid; use one of {list(_PARTITIONS)}."
        )
    if pretrends is not None and (
        isinstance(pretrends, bool) or not isinstance(pretrends, int | float | np.number)
    ):
        raise EstimationError(f"pretrends={pretrends!r} must be a non-negative integer.")
    n_pre = 0 if pretrends is None else check_int(pretrends, "pretrends")
    if n_pre < 0:
        raise EstimationError(f"pretrends={pretrends!r} must be a non-negative integer.")
    if horizons is not None:
        if isinstance(horizons, int | np.integer) and not isinstance(horizons, bool):
            horizons = [int(horizons)]
        elif isinstance(horizons, str) or not isinstance(horizons, Sequence | np.ndarray):
            raise SpecError(
                f"horizons must be a list of event times >= 0 (e.g. [0, 1, 2]); received "
                f"{horizons!r}."
            )
        horizons = [check_int(h, "horizons", minimum=0) for h in horizons]
    leave_out = check_bool(leave_out, "leave_out")
    check_choice(small_sample, "small_sample", _SMALL_SAMPLE)
    covs = _covariate_list(panel, covariates)
    check_cluster(cluster)
    if weights is not None and (
        not isinstance(weights, str) or weights not in panel.data.columns or weights in RESERVED
    ):
        raise EstimationError(
            f"Weight column {weights!r} is not in the panel; available: "
            f"{[c for c in panel.data.columns if c not in RESERVED]}."
        )
    return _Options(n_pre, horizons, covs, cluster, weights, aux_partition, leave_out, small_sample)


def _check_cr2_one_way(small_sample: str, cluster: Any) -> None:
    """CR2 is defined for one clustering: refuse two ways with it, naming the way out."""
    if small_sample == "cr2" and isinstance(cluster, list | tuple) and len(cluster) == 2:
        names = [d if isinstance(d, str) else type(d).__name__ for d in cluster]
        raise SpecError(
            f"small_sample='cr2' adjusts a one-way clustered variance; received two ways "
            f"({', '.join(names)}). Cluster one way, or refit with small_sample='none' for "
            "Cameron, Gelbach & Miller's two-way variance."
        )


def _check_positive_weights(data: pd.DataFrame, weights: str, rows: np.ndarray) -> None:
    """Observation weights must be positive; name the first unit and period that is not."""
    bad = data[weights].to_numpy(float)[rows] <= 0
    if bad.any():
        r = int(rows[np.flatnonzero(bad)[0]])
        raise EstimationError(
            f"Weight column {weights!r} must be positive; unit "
            f"{_v(data['unit'].iloc[r])!r}, period {_v(data['time'].iloc[r])!r} has "
            f"{_v(data[weights].iloc[r])!r}."
        )


def _sample(panel: Panel, outcome: str, opts: _Options) -> _Sample:
    """Rows with outcome, covariates and weight observed whose ``Y(0)`` is imputable.

    Treated rows whose unit or period has no untreated row have no imputable ``Y(0)``
    (BJS Section 3: both effects are needed); they are dropped, as ``did_imputation``'s
    autosample does, and counted.
    """
    data = panel.data
    needed = list(
        dict.fromkeys([outcome, *opts.covariates] + ([opts.weights] if opts.weights else []))
    )
    rows = np.flatnonzero(data[needed].notna().all(axis=1).to_numpy())
    # panel.data is sorted by unit, so first-appearance codes follow the sorted unit ids
    unit_code_all, unit_ids = pd.factorize(data["unit"])
    unit_code = unit_code_all[rows]
    time = data["time"].to_numpy(np.int64)[rows]
    if opts.weights is not None:
        _check_positive_weights(data, opts.weights, rows)
    cohort = data["cohort"].to_numpy(float)[rows]
    treated = time >= cohort
    if not (~treated).any():
        raise EstimationError("No untreated observations: the Y(0) model cannot be fitted.")
    time_code = np.searchsorted(panel.periods, time)
    has_u = np.bincount(unit_code[~treated], minlength=len(unit_ids)) > 0
    has_t = np.bincount(time_code[~treated], minlength=len(panel.periods)) > 0
    ident = ~treated | (has_u[unit_code] & has_t[time_code])
    sel = np.flatnonzero(ident)
    rows = rows[sel]
    if not treated[sel].any():
        raise EstimationError(
            "No treated observation has an imputable Y(0) (every treated unit or period "
            "lacks untreated observations)."
        )
    lost = np.flatnonzero(~ident)
    if lost.size:
        u, t = unit_ids[unit_code[lost[0]]], time[lost[0]]
        warnings.warn(
            f"{lost.size} treated unit-period(s) have no imputable Y(0) (no untreated row of "
            f"their unit, or none in their period; first: unit {_v(u)!r}, period {_v(t)!r}) "
            "and are left out of every estimate (info['n_dropped_unidentified']).",
            stacklevel=4,  # past fit and its scale wrapper: the caller of fit
        )
    y = data[outcome].to_numpy(float)[rows]
    return _Sample(
        rows=rows,
        unit_ids=unit_ids,
        unit_code=unit_code[sel],
        time=time[sel],
        cohort=cohort[sel],
        treated=treated[sel],
        y=y,
        wobs=data[opts.weights].to_numpy(float)[rows] if opts.weights else np.ones(len(y)),
        uc=(np.cumsum(has_u) - 1)[unit_code[sel]],
        tc=(np.cumsum(has_t) - 1)[time_code[sel]],
        n_unit=int(has_u.sum()),
        n_period=int(has_t.sum()),
        n_unidentified=int((~ident).sum()),
    )


def _check_connected(s: _Sample, i0: np.ndarray) -> None:
    """The unit and period effects of the ``Y(0)`` model are identified only when the
    untreated rows connect every unit and period (a period observed untreated by every
    unit does so: the usual case, and a cheap check)."""
    nU, nT = s.n_unit, s.n_period
    if (
        np.bincount(s.tc[i0], minlength=nT).max() < nU
        and fe_dof([s.uc[i0], s.tc[i0]]) < nU + nT - 1
    ):
        raise EstimationError(
            "The untreated observations split into disconnected groups of units and "
            "periods, so the unit and period effects of the Y(0) model are not identified."
        )


def _varying_covariates(
    X: np.ndarray, covs: list[str], s: _Sample, i0: np.ndarray
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop covariates absorbed by the unit (or period) effects on the untreated rows:
    ``(X kept, names kept, names dropped)``."""
    if not covs:
        return X, covs, []
    Xd0 = demean(X[i0], [s.uc[i0], s.tc[i0]], weights=s.wobs[i0])
    keep, dropped = [], []
    for j, c in enumerate(covs):
        # relative to the centred covariate: neither its units nor an offset decide
        x = X[i0, j]
        scale = float(np.abs(x - x.mean()).max(initial=0.0))
        if np.abs(Xd0[:, j]).max(initial=0.0) > 1e-9 * scale:
            keep.append(j)
        else:
            dropped.append(c)
    return X[:, keep], [covs[j] for j in keep], dropped


def _impute(
    s: _Sample, X: np.ndarray, i0: np.ndarray, i1: np.ndarray
) -> tuple[_TwoWayNormal, np.ndarray, np.ndarray]:
    """Theorem 2, steps 1-2 (BJS 2024, eq. 5-6): fit ``Y = a_i + l_t + X b`` by weighted
    OLS on the untreated rows and impute ``tau_hat_it = Y_it - a_i - l_t - X_it b`` on the
    treated ones. Returns the factorised normal equations, the step-1 residuals on
    ``Omega_0`` and ``tau_hat`` on ``Omega_1``.

    The outcome is centred on the untreated rows' midrange first (the unit effects absorb
    a constant, so nothing estimable changes): solved at the outcome's level, the normal
    equations lost digits to it (y + 1e9 moved the estimates by 4e-7 relative, y + 1e10
    by 2e-6; a breaker's check), as the Dask engine's centring does not."""
    u0, t0, w0, X0 = s.uc[i0], s.tc[i0], s.wobs[i0], X[i0]
    y = s.y - midrange(s.y[i0])
    normal = _TwoWayNormal(u0, t0, w0, X0, s.n_unit, s.n_period)
    th_u, th_t, th_x = normal.solve(*normal.cross(u0, t0, X0, (w0 * y[i0])[None]))
    fitted = th_u[0][s.uc] + th_t[0][s.tc]
    if X.shape[1]:
        fitted += X @ th_x[0]
    return normal, y[i0] - fitted[i0], y[i1] - fitted[i1]


def _estimand_weights(
    ev1: np.ndarray, w1obs: np.ndarray, horizons: list[int] | None
) -> tuple[list[str], np.ndarray]:
    """Weights ``w_it`` on the treated rows of each estimand (rows of the matrix): the
    overall ATT and each event time, proportional to the observation weights."""
    avail = np.unique(ev1)
    if horizons is None:
        hz = avail.tolist()
    else:
        hz = sorted({int(h) for h in horizons})
        missing = [h for h in hz if h not in set(avail.tolist())]
        if missing:
            raise EstimationError(
                f"horizons {missing} have no treated observations; observed event times "
                f"are {avail.tolist()}."
            )
    targets = ["att", *[f"event:{h}" for h in hz]]
    if len(targets) > _MAX_TARGETS:
        raise EstimationError(
            f"{len(hz)} event-time horizons ({hz[0]} to {hz[-1]}) to estimate, beyond this "
            f"implementation's limit of {_MAX_TARGETS - 1:,} (each needs its own implied "
            "weights on every untreated observation). Pass horizons=[...] with the event "
            "times you need, or aggregate the periods."
        )
    Wt = np.zeros((len(targets), len(ev1)))
    Wt[0] = w1obs / w1obs.sum()
    for j, h in enumerate(hz, start=1):
        m = ev1 == h
        Wt[j, m] = w1obs[m] / w1obs[m].sum()
    return targets, Wt


def _aux_cells(coh1: np.ndarray, ev1: np.ndarray, aux_partition: str) -> tuple[np.ndarray, int]:
    """Cells within which ``tau~`` averages ``tau_hat`` (Section 4.3), numbered
    ``0..ncell-1`` in the lexicographic order of their keys."""
    cell = np.zeros(len(ev1), dtype=np.intp)
    for key in _PARTITIONS[aux_partition]:
        codes, levels = pd.factorize({"cohort": coh1, "event": ev1}[key], sort=True)
        cell = cell * len(levels) + codes
    occupied = np.bincount(cell) > 0
    return (np.cumsum(occupied) - 1)[cell], int(occupied.sum())


def _implied_untreated_weights(b: ImputationBlocks, j: int) -> np.ndarray:
    """Implied weights ``v_0`` of estimand ``j`` on the untreated rows (BJS Section 4.1,
    eq. 6 in matrix form: ``v_0 = -W Z_0 (Z_0' W Z_0)^{-1} Z_1' w``)."""
    v0 = b.gamma_unit[j][b.unit0]
    v0 += b.gamma_period[j][b.period0]
    if b.X0.shape[1]:
        v0 += b.X0 @ b.gamma_cov[j]
    v0 *= -b.w0
    return v0


def _cluster_scores(
    b: ImputationBlocks, cl: np.ndarray, resid0: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Theorem 3 (BJS 2024, eq. 8-10): each cluster's ``sum_{it in c} v_it e~_it`` for
    every estimand (G x estimands), with ``e~`` the step-1 residual on untreated rows and
    ``tau_hat - tau~`` on treated ones (``tau~``: eq. 8's cluster-weighted cell average,
    :func:`zoneimpact.estimators._bjs.tau_tilde`, leaving out the own cluster with
    ``leave_out``); and the leave-out fallback count (treated observations with weight
    whose cell's weight sits in their own cluster). ``resid0`` replaces the step-1
    residuals (the CR2-adjusted ones of :func:`_cr2_scores`), and then without
    ``leave_out`` the targets' residuals get CR2's leverage correction too."""
    resid0_given = resid0 is not None
    resid0 = b.resid0 if resid0 is None else resid0
    G = int(cl.max()) + 1
    cl0, cl1 = cl[b.untreated], cl[b.treated]
    pair = cell_cluster_codes(b.cells, cl1, G)
    S = np.empty((G, len(b.estimand_weights)))
    n_fallback = 0
    for j, wj in enumerate(b.estimand_weights):
        tt, fallback = tau_tilde(wj, b.tau, b.cells, pair, leave_out=b.leave_out, cr2=resid0_given)
        n_fallback += int((fallback & (wj != 0)).sum())
        v0 = _implied_untreated_weights(b, j)
        S[:, j] = np.bincount(cl0, weights=v0 * resid0, minlength=G) + np.bincount(
            cl1, weights=wj * (b.tau - tt), minlength=G
        )
    return S, n_fallback


def _cr2_scores(b: ImputationBlocks, cl: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`_cluster_scores` with CR2-adjusted step-1 residuals, and each estimand's
    Bell-McCaffrey degrees of freedom.

    Bell & McCaffrey (2002) and Pustejovsky & Tipton (2018): each cluster's step-1
    residuals are multiplied by ``(I - H_gg)^{-1/2}`` (Moore-Penrose root: the unit
    effects nested in a cluster have leverage one), which undoes the shrinkage of the
    residuals of high-leverage clusters that makes the Theorem 3 variance short with few
    or unequal clusters; the t reference takes the Satterthwaite df of the adjusted
    variance under independent homoskedastic errors. The spillover decomposition applies
    the same rule to each of its pieces (:func:`._bjs.cr2_parts`, :func:`._bjs.bm_gram`);
    here the step-1 design is rebuilt from the kept blocks as a sparse
    ``[unit | period | covariate]`` matrix on the ``sqrt(weight)`` scale, so both share
    one implementation.
    """
    n0, n1 = len(b.untreated), len(b.treated)
    n_unit, n_period = b.gamma_unit.shape[1], b.gamma_period.shape[1]
    _check_cr2_size(n_unit + n_period - 1 + b.X0.shape[1], cl[b.untreated])
    root = np.sqrt(b.w0)
    Z0 = sparse.csr_matrix(
        design(b.unit0, b.period0, b.X0, n_unit, n_period).multiply(root[:, None])
    )
    Z1 = design(b.unit1, b.period1, b.X1, n_unit, n_period)
    fit = Imputed(
        clean=np.arange(n0),
        target=n0 + np.arange(n1),
        tau=b.tau,
        resid0=root * b.resid0,
        n_unidentified=0,
        lu=splu((Z0.T @ Z0).tocsc()),
        Z0=Z0,
        Z1=Z1,
    )
    # the long table of the _bjs steps: untreated rows, then treated rows
    cluster = np.concatenate([cl[b.untreated], cl[b.treated]])
    G = int(cl.max()) + 1
    parts = cr2_parts(fit, cluster[:n0])
    S, n_fallback = _cluster_scores(b, cl, parts[0] / root)
    row_weight = np.concatenate([b.w0, b.w1])
    # the vectors where they fit: bm_gram's Gram without them loses digits to
    # cancellation with ill-conditioned covariates (a breaker: df 1.880 for 1.830)
    vectors = len(cluster) * G <= BM_MAX_ENTRIES
    df = np.empty(len(b.estimand_weights))
    for j, w in enumerate(b.estimand_weights):
        args = (fit, w, b.cells, cluster, G)
        if vectors:
            C0C1 = bm_parts(*args, row_weight=row_weight, leave_out=b.leave_out, cr2=parts)
            df[j] = satterthwaite_df(bm_vectors(fit, C0C1, len(cluster)))
        else:
            M = bm_gram(*args, row_weight=row_weight, leave_out=b.leave_out, cr2=parts)
            df[j] = gram_df(M)
    return S, n_fallback, df


def _check_cr2_size(n_params: int, cl0: np.ndarray) -> None:
    """Refuse, by size, designs whose CR2 would not fit in memory or time."""
    over = cr2_over_limits(n_params, cl0)
    if over:
        raise EstimationError(
            f"small_sample='cr2' is too large here: {' and '.join(over)}; refit with "
            "small_sample='none'."
        )


def _pretrend_regression(
    y0: np.ndarray,
    event0: np.ndarray,
    fe: list[np.ndarray],
    X0: np.ndarray,
    w0: np.ndarray,
    n_pre: int,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """BJS (2024) Test 1 regression: OLS on the untreated rows of ``Y`` on the effects
    ``fe``, the controls and leads ``1{K_it = -k}``, ``k = 1..n_pre``.

    Returns the coefficients (leads first), the per-row influence ``psi`` (``n0 x p``,
    summing within clusters to each cluster's contribution) and the leads ``k`` used
    (leads with no observation are skipped).
    """
    ks = [k for k in range(1, n_pre + 1) if np.any(event0 == -k)]
    if not ks:
        raise EstimationError(
            f"pretrends={n_pre}: no untreated observation lies 1..{n_pre} periods before treatment."
        )
    D = np.column_stack([(event0 == -k).astype(float) for k in ks])
    R = np.hstack([D, X0])
    sw = np.sqrt(w0)
    Rd = demean(R, fe, weights=w0) * sw[:, None]
    yd = demean(y0, fe, weights=w0) * sw
    XtX = Rd.T @ Rd
    if np.linalg.matrix_rank(XtX) < Rd.shape[1]:
        raise EstimationError(
            "Pre-trend regression is rank deficient: reduce pretrends (too few "
            "never-treated or early observations to separate leads from period effects)."
        )
    bread = np.linalg.inv(XtX)
    coef = bread @ (Rd.T @ yd)
    e = yd - Rd @ coef
    return coef, (Rd * e[:, None]) @ bread, ks


def _pretrend_one_way(b: ImputationBlocks, cl0: np.ndarray) -> tuple[np.ndarray, int]:
    """Test 1's covariance of every coefficient clustered one way, with fixest's CR1
    factor ``G/(G-1) (n-1)/(n-K)`` (:func:`._fe.cluster_ssc_k`), and ``G``."""
    n0 = len(b.untreated)
    Gp = int(cl0.max()) + 1
    K = cluster_ssc_k(b.pre_scores.shape[1], [b.unit0, b.period0], cl0)
    # one cluster: no CR1 factor and no test (ZeroDivisionError here before); the leads'
    # SEs go NaN and _pretrend_wald reports L >= G
    ssc = Gp / (Gp - 1) * (n0 - 1) / (n0 - K) if Gp > 1 else np.nan
    Sc = cluster_scores(b.pre_scores, cl0)
    return ssc * Sc.T @ Sc, Gp


def _pretrend_wald(
    b: ImputationBlocks, V: np.ndarray, G: int
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Test 1's Wald statistic ``W`` on the ``L`` leads with ``G`` clusters: Hotelling's
    ``F = (G - L) / (L (G - 1)) W`` on ``(L, G - L)`` degrees of freedom (the reference of
    :func:`zoneimpact.inference.pretrends.pretrend_wald` and the CS pre-trend test; ``W``
    on the CR1 covariance is Hotelling's ``T^2``; NaN when ``G <= L``), and the peers'
    ``W / L`` on ``(L, G - 1)``, as ``did_imputation``'s ``test`` after ``reghdfe`` and
    diff-diff report it. The peers' reference over-rejects with few clusters: 28% at 5%
    with ``G = 10`` and 5 leads under exact parallel trends, Hotelling's 6%
    (``benchmarks/RESULTS.md``, session 30)."""
    q = len(b.pre_leads)
    bk, Vk = b.pre_estimate, V[:q, :q]
    if G <= q:
        # G cluster scores span at most G - 1 directions: the covariance of L >= G leads
        # is singular (np.linalg.solve raised here before), so neither test exists
        return Vk, (np.nan, np.nan), (np.nan, np.nan)
    W = float(bk @ np.linalg.solve(Vk, bk))
    peer = (W / q, float(stats.f.sf(W / q, q, G - 1)))
    F = (G - q) / (q * (G - 1)) * W
    return Vk, (F, float(stats.f.sf(F, q, G - q))), peer


def _variance(b: ImputationBlocks, clusters: list[np.ndarray]) -> _Variance:
    """The conservative variance (Theorem 3) clustered one way, or two ways by Cameron,
    Gelbach & Miller's (2011) inclusion-exclusion ``V_1 + V_2 - V_12`` (as
    :mod:`zoneimpact.inference.covariance`; the BJS variance has no small-sample factor,
    so neither has the combination), with Test 1 and its cross-covariance with the
    estimands under the same clustering (Test 1 keeps fixest's CR1 factor with the
    smallest number of clusters). Each of the three clusterings forms its own eq. 8
    ``tau~`` (the clusters are its independent units), so the three score sets differ in
    their treated residuals as well as in their grouping."""
    if len(clusters) == 2:
        both = pd.factorize(pd.MultiIndex.from_arrays([clusters[0], clusters[1]]))[0]
        dims = [(clusters[0], 1.0), (clusters[1], 1.0), (both.astype(np.intp), -1.0)]
    else:
        dims = [(clusters[0], 1.0)]
    df = None
    if b.small_sample == "cr2":
        # fit and with_inference refuse two ways under CR2 before reaching here
        assert len(clusters) == 1
        S, nf, df = _cr2_scores(b, clusters[0])
        parts = [((S, nf), 1.0)]
    else:
        parts = [(_cluster_scores(b, cl), sign) for cl, sign in dims]
    vcov = sum(sign * (S.T @ S) for (S, _), sign in parts)
    n_fallback = max(nf for (_, nf), _ in parts)
    G = min(int(cl.max()) + 1 for cl, _ in dims[:2])
    if not b.pre_leads:
        return _Variance(np.asarray(vcov), None, None, np.nan, np.nan, G, n_fallback, df)
    q = len(b.pre_leads)
    cl0s = [cl[b.untreated] for cl, _ in dims]
    if len(clusters) == 1:
        V, Gp = _pretrend_one_way(b, cl0s[0])
    else:
        V, Gp = _pretrend_two_way(b, cl0s[:2], cl0s[2])
    cross = 0.0
    for ((S, _), sign), cl0 in zip(parts, cl0s, strict=True):
        Spre = cluster_scores(b.pre_scores[:, :q], cl0)
        Spre = np.vstack([Spre, np.zeros((S.shape[0] - Spre.shape[0], q))])
        cross = cross + sign * (S.T @ Spre)
    Vk, (F, p), (F_peer, p_peer) = _pretrend_wald(b, V, Gp)
    if len(clusters) == 2 and Gp > q and np.linalg.eigvalsh(Vk)[0] <= 0:
        # the two-way sum is not positive definite: no Wald test (-1 clusters: the note)
        F = p = F_peer = p_peer = np.nan
        Gp = -1
    return _Variance(
        np.asarray(vcov), np.asarray(cross), Vk, F, p, G, n_fallback, df, F_peer, p_peer, Gp
    )


def _pretrend_two_way(
    b: ImputationBlocks, cl0s: list[np.ndarray], both0: np.ndarray
) -> tuple[np.ndarray, int]:
    """Test 1's covariance clustered two ways (Cameron, Gelbach & Miller 2011, eq. 2.11),
    scaled by the CR1 factor of the smallest number of clusters (fixest's default, as
    :func:`zoneimpact.inference.covariance.crv1`)."""
    S1, S2, S12 = (cluster_scores(b.pre_scores, c) for c in (*cl0s, both0))
    Gp = min(S1.shape[0], S2.shape[0])
    n0 = len(b.untreated)
    K = _fixest_k(b.pre_scores.shape[1], [b.unit0, b.period0], cl0s)
    meat = S1.T @ S1 + S2.T @ S2 - S12.T @ S12
    ssc = Gp / (Gp - 1) * (n0 - 1) / (n0 - K) if Gp > 1 else np.nan
    return ssc * meat, Gp


def _terms_and_vcov(
    targets: list[str], est: np.ndarray, var: _Variance, b: ImputationBlocks, two_way: bool
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Terms in reporting order (``att``, leads ``event:-k`` with the earliest first,
    ``event:E``), their covariance (the cross block between a lead and an estimand is the
    cross-product of their cluster scores) and the Test 1 table."""
    vcov = var.vcov
    names, estimates = list(targets), list(est)
    pre_table = pd.DataFrame(columns=["event", "estimate", "se"])
    if var.pre_vcov is not None and var.cross is not None:
        ks, pre_est = b.pre_leads, b.pre_estimate
        m, q = len(targets), len(ks)
        full = np.zeros((m + q, m + q))
        full[:m, :m] = vcov
        full[m:, m:] = var.pre_vcov
        full[:m, m:] = var.cross
        full[m:, :m] = var.cross.T
        order = [0, *range(m, m + q)[::-1], *range(1, m)]
        vcov = full[np.ix_(order, order)]
        names = [targets[0], *[f"event:{-k}" for k in ks][::-1], *targets[1:]]
        estimates = [est[0], *list(pre_est)[::-1], *est[1:]]
        pre_table = pd.DataFrame(
            {"event": [-k for k in ks], "estimate": pre_est, "se": _se(var.pre_vcov, two_way)}
        )
    terms = terms_frame(names, estimates, _se(vcov, two_way))
    if var.df is not None:
        # Bell-McCaffrey df of each estimand; Test 1's leads have none of their own (NaN:
        # normal intervals in conf_int, G - 1 in verdict_df, as without CR2)
        df = dict(zip(targets, var.df, strict=True))
        terms["df"] = [df.get(n, np.nan) for n in names]
    return terms, vcov, pre_table


def _se(vcov: np.ndarray, two_way: bool) -> np.ndarray:
    """Standard errors; a two-way variance that came out negative gives NaN (nothing is
    changed to make the sum positive semi-definite, as fixest and pyfixest by default;
    :func:`.covariance.standard_errors_from_variance`). No warning: :func:`_shown_se`
    warns once for the terms a result shows."""
    return standard_errors_from_variance(np.diag(vcov), two_way=two_way)


def _shown_se(
    terms: pd.DataFrame, vcov: np.ndarray, two_way: bool, stacklevel: int
) -> pd.DataFrame:
    """``terms`` with the standard errors of ``vcov`` (the shown terms' covariance; the
    same numbers as :func:`_se`), warning once, by name, of the terms whose two-way
    variance is negative; ``stacklevel`` counts from the caller's line."""
    se = standard_errors_from_variance(
        np.diag(vcov), terms["term"].tolist(), two_way=two_way, stacklevel=stacklevel + 1
    )
    return terms.assign(se=se)


def _row_clusters(
    panel: Panel | None, rows: np.ndarray, cluster: Any
) -> tuple[list[np.ndarray], str]:
    """Integer cluster codes of the rows used (positions in ``panel.data``) for each
    clustering dimension (one or two), and a name.

    A dimension is ``None``/``"unit"``, a column of ``panel.data`` or of its geography, or
    labels as a pandas Series indexed by unit (or by (unit, time)).
    """
    dims = list(cluster) if isinstance(cluster, list | tuple) else [cluster]
    if not 1 <= len(dims) <= 2:
        raise SpecError(
            f"Cluster one or two ways: pass a column name or a list of two; received "
            f"{len(dims)} dimensions ({cluster!r})."
        )
    if panel is None:
        raise EstimationError(
            "This result keeps no panel (it was not made by imputation.fit); refit to "
            "change its clustering."
        )
    data = panel.data.iloc[rows]
    out, names = [], []
    for dim in dims:
        if isinstance(dim, pd.Series):
            out.append(_series_codes(dim, data))
            names.append(str(dim.name))
            continue
        check_cluster(dim)
        codes, name = cluster_codes(panel, data, dim)
        out.append(codes)
        names.append(str(name))
    for codes, name in zip(out, names, strict=True):
        if codes.size and int(codes.max()) < 1:
            # one cluster's scores sum to zero by construction: the "SE" read 1e-14 (a
            # reviewer's check) and Test 1 divided by G - 1 = 0
            raise EstimationError(
                f"Clustering on {name!r} gives a single cluster among the rows estimated; "
                "cluster-robust standard errors need at least 2. Cluster on a finer "
                "variable (e.g. cluster='unit')."
            )
    return out, " + ".join(names)


def _series_codes(labels: pd.Series, data: pd.DataFrame) -> np.ndarray:
    """Codes of cluster labels given as a Series indexed by unit or by (unit, time)."""
    if isinstance(labels.index, pd.MultiIndex):
        mapped = labels.reindex(pd.MultiIndex.from_frame(data[["unit", "time"]]))
    else:
        mapped = data["unit"].map(labels)
    if mapped.isna().any():
        i = int(np.flatnonzero(mapped.isna().to_numpy())[0])
        raise SpecError(
            f"Cluster labels {labels.name!r} have no value for unit "
            f"{_v(data['unit'].iloc[i])!r}, period {_v(data['time'].iloc[i])!r}; index the "
            "Series by unit (or by (unit, time)) and cover every row of the estimate."
        )
    return pd.factorize(mapped.to_numpy())[0].astype(np.intp)


def _shown(
    terms: pd.DataFrame, vcov: np.ndarray, names: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``terms`` named in ``names`` (in ``terms`` order) and their covariance."""
    keep = terms["term"].isin(list(names)).to_numpy()
    if keep.all():
        return terms, vcov
    idx = np.flatnonzero(keep)
    return terms.iloc[idx].reset_index(drop=True), vcov[np.ix_(idx, idx)]


def _equal_weights(w1: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``w_it`` of the estimand averaging the treated rows ``covered``, proportionally
    to their observation weights (BJS eq. 3), as :func:`_estimand_weights` does."""
    row = np.zeros(len(w1))
    row[covered] = w1[covered] / w1[covered].sum()
    return row


def _dynamic_rows(
    b: ImputationBlocks, lo: float, hi: float, balance_e: int | None
) -> list[tuple[int, np.ndarray]]:
    """Event times ``E`` within ``[lo, hi]`` and the treated rows each covers, on the
    cohorts observed at every ``e = 0..balance_e`` when ``balance_e`` is given (the
    balanced event study of CS eq. 3.6, here over observations)."""
    ev = b.time1 - b.cohort1
    keep = (ev >= lo) & (ev <= hi)
    if balance_e is not None:
        need = set(range(balance_e + 1))
        cohorts = np.unique(b.cohort1)
        full = [g for g in cohorts if need <= set(ev[b.cohort1 == g].tolist())]
        if not full:
            reach = {int(g): int(ev[b.cohort1 == g].max()) for g in cohorts}
            raise EstimationError(
                f"balance_e={balance_e}: no cohort has treated observations at every event "
                f"time 0..{balance_e} (latest event time by cohort: {reach}); lower balance_e."
            )
        keep &= np.isin(b.cohort1, full) & (ev <= balance_e)
    events = np.unique(ev[keep])
    if events.size == 0:
        raise EstimationError(
            f"The event window [min_e={lo:g}, max_e={hi:g}] holds no treated observation; "
            f"observed event times are {np.unique(ev).tolist()}."
        )
    return [(int(e), keep & (ev == e)) for e in events]


def _bin_rows(
    b: ImputationBlocks, dyn: list[tuple[int, np.ndarray]], bins: Sequence[tuple[int, int]]
) -> list[tuple[str, np.ndarray]]:
    """``event_bin:A..B``: the treated rows of the dynamic selection with ``A <= e <= B``,
    equally weighted (one pooled estimand)."""
    out = []
    for lo, hi in bins:
        covered = np.zeros(len(b.w1), bool)
        for e, rows in dyn:
            if lo <= e <= hi:
                covered |= rows
        if not covered.any():
            raise EstimationError(
                f"Event-time bin [{lo}, {hi}] holds no treated observation; the event times "
                f"available are {[e for e, _ in dyn]} (the imputation estimator has no "
                "pre-treatment effects: leads are Test 1's coefficients)."
            )
        out.append((f"event_bin:{lo}..{hi}", _equal_weights(b.w1, covered)))
    return out


def _group_rows(b: ImputationBlocks, post: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``cohort:G`` over cohort ``G``'s treated rows in ``post`` and ``cohort_avg``, their
    average weighted by cohort size (CS eq. 3.4's ``P(G = g | G <= T)``: units, each
    counted with its mean observation weight over its treated rows)."""
    n_obs = np.bincount(b.unit1)
    unit_w = np.bincount(b.unit1, weights=b.w1) / np.maximum(n_obs, 1)
    unit_cohort = np.zeros(len(n_obs), dtype=np.int64)
    unit_cohort[b.unit1] = b.cohort1
    rows, sizes = [], []
    for g in np.unique(b.cohort1):
        covered = (b.cohort1 == g) & post
        if covered.any():
            rows.append((f"cohort:{int(g)}", _equal_weights(b.w1, covered)))
            sizes.append(unit_w[(unit_cohort == g) & (n_obs > 0)].sum())
    share = np.asarray(sizes) / np.sum(sizes)
    avg = share @ np.vstack([r for _, r in rows])
    return [*rows, ("cohort_avg", avg)]


def _calendar_rows(b: ImputationBlocks) -> list[tuple[str, np.ndarray]]:
    """``calendar:T`` over the treated rows of period ``T`` and ``calendar_avg``, the mean
    over periods (CS eqs. 3.7-3.8)."""
    rows = [(f"calendar:{int(t)}", _equal_weights(b.w1, b.time1 == t)) for t in np.unique(b.time1)]
    return [*rows, ("calendar_avg", np.mean([r for _, r in rows], axis=0))]


def _aggregation_weights(
    b: ImputationBlocks,
    type: str,
    lo: float,
    hi: float,
    balance_e: int | None,
    bins: Sequence[tuple[int, int]],
) -> tuple[list[str], np.ndarray]:
    """Names and estimand weights ``w_it`` (estimands x treated rows) of an aggregation:
    ``att`` first, then the type's terms and the bins."""
    post = (b.time1 - b.cohort1) <= hi
    if not post.any():
        raise EstimationError(
            f"max_e={hi:g}: no treated observation has an event time <= max_e; observed "
            f"event times are {np.unique(b.time1 - b.cohort1).tolist()}."
        )
    rows = [("att", _equal_weights(b.w1, post))]
    if type == "dynamic" or bins:
        dyn = _dynamic_rows(b, lo, hi, balance_e)
        if type == "dynamic":
            events = [(f"event:{e}", _equal_weights(b.w1, m)) for e, m in dyn]
            rows += [*events, ("event_avg", np.mean([r for _, r in events], axis=0))]
        rows += _bin_rows(b, dyn, bins)
    if type == "group":
        rows += _group_rows(b, post)
    elif type == "calendar":
        rows += _calendar_rows(b)
    if len(rows) > _MAX_TARGETS:
        raise EstimationError(
            f"The {type} aggregation has {len(rows)} estimands, beyond this "
            f"implementation's limit of {_MAX_TARGETS:,} (each needs its own implied "
            "weights on every untreated observation); narrow it with min_e/max_e or bins."
        )
    return [n for n, _ in rows], np.vstack([r for _, r in rows])


def _with_estimands(b: ImputationBlocks, targets: list[str], W: np.ndarray) -> ImputationBlocks:
    """The blocks for other estimands: their weights and the implied-weight solutions
    ``(Z_0'WZ_0)^{-1} Z_1'w`` (Section 4.1). The normal equations are rebuilt from the
    kept untreated rows (no outcome enters them); ``tau_hat`` and the residuals are
    the fit's."""
    normal = _TwoWayNormal(
        b.unit0, b.period0, b.w0, b.X0, b.gamma_unit.shape[1], b.gamma_period.shape[1]
    )
    gamma_u, gamma_t, gamma_x = normal.solve(*normal.cross(b.unit1, b.period1, b.X1, W))
    return replace(
        b,
        estimand_weights=W,
        gamma_unit=gamma_u,
        gamma_period=gamma_t,
        gamma_cov=gamma_x,
        targets=tuple(targets),
    )


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    horizons: Sequence[int] | None = None,
    pretrends: int | None = None,
    covariates: str | Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    aux_partition: Literal["cohort_event", "cohort", "event", "none"] = "cohort_event",
    leave_out: bool = False,
    small_sample: Literal["none", "cr2"] = "none",
) -> ImputationResult:
    """Imputation estimator of Borusyak, Jaravel & Spiess (2024).

    Parameters
    ----------
    panel : Panel
        Staggered-adoption panel (balanced or not); rows with a missing outcome,
        covariate or weight are dropped.
    outcome : str
        Outcome column.
    rng, n_jobs
        Accepted for the common estimator interface; the estimator is deterministic.
    alpha : float
        Level of the confidence intervals stored with the result.
    horizons : sequence of int, optional
        Event times ``E >= 0`` reported as ``event:E`` (default: every observed one).
    pretrends : int, optional
        Number of pre-periods in Test 1 (0/None = off). Adds ``event:-k`` terms and
        ``info["pretrend_p"]`` (Hotelling's ``F(L, G - L)``; NaN with
        ``info["pretrend_note"]`` when the clusters do not outnumber the leads) and
        ``info["pretrend_p_did_imputation"]`` (the peers' ``F(L, G - 1)``).
    covariates : str or list of str, optional
        Time-varying controls in the ``Y(0)`` model (time-invariant ones are absorbed by
        the unit effects and dropped, see ``info["dropped_covariates"]``).
    cluster : str, optional
        Cluster variable (panel or geography column); default unit. The clusters are the
        independent units of Theorem 3, so eq. 8's ``tau~`` weighs them (Stata
        ``did_imputation``'s reading; diff-diff weighs units whatever the clustering, so
        coarser clusterings differ from it slightly). Other clusterings
        (any column, a Series, two ways) without refitting: :meth:`ImputationResult.with_inference`.
    weights : str, optional
        Column of positive observation weights: the step-1 regression is weighted and
        the estimands weight treated observations proportionally (``did_imputation``'s
        ``aweight``).
    aux_partition : {"cohort_event", "cohort", "event", "none"}
        Cells within which ``tau~`` averages ``tau_hat`` for the conservative variance
        (Section 4.3); the default is ``did_imputation``'s ``avgeffectsby(Ei K)``.
    leave_out : bool
        Leave-out refinement of the conservative variance (BJS 2024, Supplementary
        Appendix A.9; ``did_imputation``'s ``leaveout``): ``tau~`` of an observation
        averages its cell without the observation's own cluster. Off by default, as in
        R ``didimputation``; ``info["leave_out_fallback"]`` counts treated observations
        whose cell lies in a single cluster (plain average kept).
    small_sample : {"none", "cr2"}
        ``"none"`` (default): Theorem 3's variance as ``did_imputation`` computes it,
        with normal intervals. ``"cr2"``: the step-1 residuals of each cluster are
        multiplied by ``(I - H_gg)^{-1/2}`` (Bell & McCaffrey 2002; Pustejovsky & Tipton
        2018), and each estimand's t reference takes its Bell-McCaffrey degrees of
        freedom (``terms["df"]``), the rule of the spillover decomposition's pieces. With
        few or unequal clusters the plain variance is short (on China's structure, 27
        province clusters and a 3-nearest exposure map, SE/SD 0.87-0.89;
        ``benchmarks/RESULTS.md``). Without ``leave_out`` CR2 also corrects ``tau~``'s
        residuals for their cluster's leverage in the cell average, between the in-sample
        average (short when a cell holds few treated clusters) and A.9's leave-out
        (conservative there): with 12 clusters of 2-16 units it rejects a true null in
        5.3% at 5% (1,000 worlds; with the leave-out 2.6%; plain Theorem 3 with the
        normal 9.1% with the leave-out, 15.7% without; session 38). With
        ``leave_out=True`` the leave-out is kept, as in the specification curve's direct
        fits (5.2-5.8% on China's structure, session 28) and the spillover pieces.
        One-way clustering only; Test 1 keeps its F.

    Returns
    -------
    ImputationResult
        Terms ``att`` (all treated observations, equally weighted), ``event:-k`` (Test 1
        coefficients, if requested) and ``event:E``; ``vcov`` in terms order;
        ``info["pretrend_p"]``.

    Raises
    ------
    EstimationError
        No untreated observations, no treated observation whose effect is identified, a
        requested horizon without treated observations, or bad options.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="imputation")
    del rng, n_jobs
    opts = _check_options(
        panel,
        horizons=horizons,
        pretrends=pretrends,
        covariates=covariates,
        cluster=cluster,
        weights=weights,
        aux_partition=aux_partition,
        leave_out=leave_out,
        small_sample=small_sample,
    )
    s = _sample(panel, outcome, opts)
    blocks, covs, dropped = _building_blocks(panel, s, opts)
    i1 = blocks.treated
    clusters, cl_name = _row_clusters(panel, s.rows, opts.cluster)
    warn_few_treated(
        min(len(np.unique(c[i1])) for c in clusters),
        f"cluster(s) of {cl_name!r} (with an imputed treated observation)",
        stacklevel=3,
    )
    blocks = replace(blocks, clusters=tuple(clusters))
    var = _variance(blocks, clusters)
    est = blocks.estimand_weights @ blocks.tau
    terms, vcov, pre_table = _terms_and_vcov(list(blocks.targets), est, var, blocks, False)
    info = _fit_info(s, opts, blocks, var, cl_name, covs, dropped)
    effects = pd.DataFrame(
        {
            "unit": s.unit_ids[s.unit_code[i1]],
            "time": s.time[i1],
            "cohort": s.cohort[i1].astype(np.int64),
            "event": (s.time[i1] - s.cohort[i1]).astype(np.int64),
            "tau": blocks.tau,
        }
    )
    return ImputationResult(
        estimator="imputation",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(np.count_nonzero(np.bincount(s.unit_code))),
        n_obs=len(s.y),
        vcov=vcov,
        info=info,
        alpha=alpha,
        effects=effects,
        pretrend=pre_table,
        blocks=blocks,
        panel=panel,
    )


def _pretrend_info(var: _Variance, b: ImputationBlocks) -> dict[str, object]:
    """Test 1's ``info`` entries (none when the test is off)."""
    if not b.pre_leads:
        return {}
    q, G = len(b.pre_leads), var.pre_clusters
    if G < 0:
        note = (
            "the two-way Test 1 covariance (V_1 + V_2 - V_12) is not positive definite: "
            "no Wald test"
        )
    elif G <= q:
        note = (
            f"{q} leads and {G} clusters: the leads cannot be tested jointly (their "
            f"cluster-robust covariance has rank below {q}; more clusters than leads needed)"
        )
    else:
        note = ""
    ok = not note
    out: dict[str, object] = {
        "pretrend_F": var.pre_F,
        "pretrend_p": var.pre_p,
        "pretrend_df": f"({q}, {G - q})" if ok else "",
        "pretrend_reference": "Hotelling F(L, G - L)",
        "pretrend_F_did_imputation": var.pre_F_peer,
        "pretrend_p_did_imputation": var.pre_p_peer,
        "pretrend_df_did_imputation": f"({q}, {G - 1})" if ok else "",
        # always set, so that reclustering to more clusters clears an earlier note
        "pretrend_note": note,
    }
    return out


def _building_blocks(
    panel: Panel, s: _Sample, opts: _Options
) -> tuple[ImputationBlocks, list[str], list[str]]:
    """Steps 1-2 (eq. 5-6), the estimand weights, their implied weights on the untreated
    rows (Section 4.1), the auxiliary cells (Section 4.3) and the Test 1 regression: all
    the variance needs, and the covariates kept and dropped."""
    i0, i1 = np.flatnonzero(~s.treated), np.flatnonzero(s.treated)
    _check_connected(s, i0)
    covs = opts.covariates
    X = (
        np.column_stack([panel.data[c].to_numpy(float)[s.rows] for c in covs])
        if covs
        else np.zeros((len(s.y), 0))
    )
    X, covs, dropped = _varying_covariates(X, covs, s, i0)
    if X.shape[1]:
        # with the unit effects, centred and scaled covariates span the same space, so
        # tau_hat is unchanged; in levels (1e9 + x) the step-1 normal equations were
        # ill-conditioned and an unbalanced ATT moved from 86.81 to 94.46 (session 19)
        sd = X[i0].std(axis=0)
        X = (X - X[i0].mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    # the estimands first: too many horizons is refused before step 1's normal equations,
    # which on 12,000 periods took minutes of dense algebra to reach the refusal
    ev1 = (s.time[i1] - s.cohort[i1]).astype(np.int64)
    targets, Wt = _estimand_weights(ev1, s.wobs[i1], opts.horizons)
    normal, resid0, tau = _impute(s, X, i0, i1)
    gamma_u, gamma_t, gamma_x = normal.solve(*normal.cross(s.uc[i1], s.tc[i1], X[i1], Wt))
    cells, n_cells = _aux_cells(s.cohort[i1], ev1, opts.aux_partition)
    pre: tuple[np.ndarray, np.ndarray, list[int]] = (np.zeros(0), np.zeros((len(i0), 0)), [])
    if opts.n_pre > 0:
        pre = _pretrend_regression(
            # event time of untreated rows (-inf for never-treated units)
            s.y[i0],
            s.time[i0] - s.cohort[i0],
            [s.uc[i0], s.tc[i0]],
            X[i0],
            s.wobs[i0],
            opts.n_pre,
        )
    blocks = ImputationBlocks(
        rows=s.rows,
        untreated=i0,
        treated=i1,
        unit0=s.uc[i0],
        period0=s.tc[i0],
        X0=X[i0],
        w0=s.wobs[i0],
        gamma_unit=gamma_u,
        gamma_period=gamma_t,
        gamma_cov=gamma_x,
        resid0=resid0,
        tau=tau,
        estimand_weights=Wt,
        cells=cells,
        n_cells=n_cells,
        leave_out=opts.leave_out,
        targets=tuple(targets),
        pre_leads=tuple(pre[2]),
        pre_estimate=pre[0][: len(pre[2])],
        pre_scores=pre[1],
        unit1=s.uc[i1],
        period1=s.tc[i1],
        X1=X[i1],
        w1=s.wobs[i1],
        cohort1=s.cohort[i1].astype(np.int64),
        time1=s.time[i1],
        small_sample=opts.small_sample,
    )
    return blocks, covs, dropped


def _fit_info(
    s: _Sample,
    opts: _Options,
    b: ImputationBlocks,
    var: _Variance,
    cl_name: str,
    covs: list[str],
    dropped: list[str],
) -> dict[str, object]:
    """The fit's ``info``: sample sizes, options and the variance used."""
    return {
        "cluster": cl_name,
        "n_clusters": var.n_clusters,
        "fixed_effects": "unit+time",
        "n_untreated_obs": len(b.untreated),
        "n_treated_obs": len(b.treated),
        "n_dropped_unidentified": s.n_unidentified,
        "aux_partition": opts.aux_partition,
        "variance": "BJS Theorem 3 conservative"
        + (", leave-out (App. A.9)" if opts.leave_out else ", no leave-out")
        + (
            ", CR2 residuals with Bell-McCaffrey df"
            + ("" if opts.leave_out else " (tau~'s by their cluster's leverage)")
            if opts.small_sample == "cr2"
            else ", no small-sample factor"
        ),
        "small_sample": opts.small_sample,
        "leave_out_fallback": var.n_fallback,
        "covariates": ",".join(covs),
        "dropped_covariates": ",".join(dropped),
        "weights": opts.weights or "",
        "pretrend_p": np.nan,
        **_pretrend_info(var, b),
    }
