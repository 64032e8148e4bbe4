"""Sun & Abraham (2021) interaction-weighted event-study estimator.

Sun, L. and Abraham, S. (2021), "Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects", *Journal of Econometrics* 225(2), 175-199.

Step 1 (Section 4.1, eq. 27 of the paper) is the saturated two-way fixed-effects regression

    Y_it = a_i + l_t + sum_{g not in C} sum_{e not in R} d_{g,e} 1{G_i = g} 1{t - G_i = e}
           (+ X_it b) + u_it

with a control cohort ``C`` (never treated, or the last-treated cohort on periods before
it is treated) and excluded relative periods ``R`` (default ``{-1}``). The cohort-specific
effects ``d_{g,e}`` are CATT_{g,e} under parallel trends and no anticipation (Prop. 3).

Step 2 (eq. 28-29) aggregates them into the interaction-weighted (IW) event-time effect
``nu_e = sum_g Pr(G = g | e observed) d_{g,e}`` with cohort shares estimated by the sample
shares of the cells. As in fixest ``sunab()``/``aggregate()`` the share of cell ``(g, e)``
is its number of observations in the estimation sample (= the cohort's size on a balanced
panel), and the shares are treated as fixed in the delta-method variance
``V(nu) = A V(d) A'`` (the paper's Prop. 6 adds a term for their estimation; fixest and
``eventstudyinteract`` without the share term are the benchmarks users compare with).

The ``att`` term is fixest's ``summary(x, agg = "ATT")``: the average of all post-treatment
cells (``e >= 0``) weighted by their observation counts, i.e. the average effect over
treated observations (equal to Callaway-Sant'Anna's "simple" aggregation on balanced
panels).

Standard errors are clustered (by unit unless ``cluster`` says otherwise) with fixest's
default small-sample correction ``G/(G-1) * (n-1)/(n-K)`` (``ssc(adj = TRUE, fixef.K =
"nested", cluster.adj = TRUE)``; ``K`` counts the slopes plus the fixed effects not nested
in the clusters, see :func:`._fe.cluster_ssc_k`), and confidence intervals use a t
distribution with ``G - 1`` degrees of freedom (fixest's ``t.df = "min"``).

Weights: with ``weights`` the saturated regression is weighted least squares (fixed effects
absorbed by the weighted within transformation, clustered scores ``sum w_i x_i u_i``, as
pyfixest ``feols(weights=)``) and the IW shares of eq. 29 are the cells' total weights
instead of their observation counts (the weighted analogue of ``Pr(G = g | e)``). The
dense path forms the cell dummies (the count tables below are unweighted).

Another variance without refitting: the result keeps the fitted regression
(:class:`SaturatedDesign`: fixed-effect codes, the cell of each row, absorbed covariates,
weighted residuals, ``(X'WX)^{-1}`` and the IW matrix ``A``).
:meth:`SunAbrahamResult.with_inference` clusters on any panel or geography column, a
Series of labels by unit, or two of them (Cameron, Gelbach & Miller 2011) through
:func:`zoneimpact.inference.covariance.crv1`, the sandwich every regression estimator
shares; for that it forms the absorbed design ``M [D, X]`` once (the one dense ``n x P``
step, refused beyond ``_MAX_DENSE`` entries, where a refit with ``cluster=`` sums the
scores from tables instead). The aggregates follow by the same ``A V A'``.

Another aggregation without refitting: the result keeps the covariance of the ``d_{g,e}``
(``cell_vcov``; the fit's or :meth:`~SunAbrahamResult.with_inference`'s), and
:meth:`SunAbrahamResult.aggregate` forms a new matrix ``A`` for R ``did::aggte``'s types
("simple", "dynamic", "group", "calendar", event-time bins; Callaway & Sant'Anna 2021
eqs. 3.3-3.8 with the CATT in place of the ATT(g,t)) from the cells' eq. 29 shares
(:func:`_aggregation_matrix`), with the same fixed-share delta method.

The steps are one function each: :func:`_options` (checks), :func:`_estimation_sample`
(control cohort and event window), :func:`_interaction_cells` (the ``(g, e)`` cells),
:func:`_saturated_ols` / :func:`_saturated_wls` (eq. 27 and its clustered covariance),
:func:`_iw_weights` (eq. 29 shares), :func:`_iw_vcov` (delta method) and :func:`_result`.

Why by hand: the estimator is a regression with absorbed fixed effects followed by a linear
aggregation; statsmodels/linearmodels cannot absorb two-way effects on unbalanced panels and
have no IW aggregation, and pyfixest/diff-diff are peer packages we test against, not
runtime dependencies. The fixed effects are absorbed exactly (Frisch-Waugh-Lovell with the
unit effects swept by group means and the period effects by a small dense solve,
:class:`._fe.TwoWayWithin`), never with dummy matrices. Neither are the saturated
interaction dummies formed: they have at most one 1 per row, so ``X'MX``, ``X'My`` and the
clustered score sums are built from unit x cell, period x cell and cluster x cell tables
(O(n) memory; at 500,000 units x 10 periods the dense n x 63 design would take 2.5 GB per
copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..inference.covariance import crv1, standard_errors_from_variance, warn_few_treated
from ..panel import RESERVED, Panel
from ..results import (
    EstimationResult,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
    terms_frame,
)
from ._fe import TwoWayWithin, absorb, check_cluster, cluster_codes, cluster_ssc_k, factorize
from ._options import renamed
from ._scale import normalised_weights, outcome_scale, scale_equivariant
from ._weights import check_weight_name, weight_values
from .callaway_santanna import _check_bins, _check_window
from .twfe import _fixest_k, _row_clusters

__all__ = ["SaturatedDesign", "SunAbrahamResult", "fit"]

#: Most interaction cells (plus covariates) of the saturated regression: its dense
#: ``P x P`` Gram matrix is inverted, which takes about a minute at 6,000.
_MAX_PARAMETERS = 5_000

#: Most entries (rows x regressors) of the absorbed dense design that ``with_inference``
#: forms to re-sum the cluster scores: 400 MB per copy, about three copies at the peak.
_MAX_DENSE = 50_000_000


@dataclass(frozen=True)
class SaturatedDesign:
    """What another variance of the saturated regression (eq. 27) needs, without refitting.

    Attributes
    ----------
    fe : list of numpy.ndarray
        Unit and period codes of the estimation rows (the absorbed fixed effects).
    fe_rank : int
        Rank of the fixed-effect dummies (``K`` of ``ssc="statsmodels"``).
    cell_of_row : numpy.ndarray
        Interaction cell (column) of every row, -1 for control and reference rows.
    covariates : numpy.ndarray
        Covariates kept, after absorbing the fixed effects (n x q).
    w : numpy.ndarray or None
        Observation weights (None: OLS).
    wresid : numpy.ndarray
        Weighted residuals ``w_i u_i`` of the fit.
    bread : numpy.ndarray
        ``(X'WX)^{-1}`` of the cells and covariates.
    iw_weights : numpy.ndarray
        The IW aggregation matrix (terms x cells; eq. 28-29), row 0 the ``att``.
    rows : pandas.DataFrame
        ``unit`` and ``time`` of the estimation rows, indexed as ``panel.data``.
    """

    fe: list[np.ndarray]
    fe_rank: int
    cell_of_row: np.ndarray
    covariates: np.ndarray
    w: np.ndarray | None
    wresid: np.ndarray
    bread: np.ndarray
    iw_weights: np.ndarray
    rows: pd.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        # results are immutable all the way down: the arrays computed by the fit cannot be
        # written to (the weights may view the caller's panel and are left as they are)
        for value in (*self.fe, self.cell_of_row, self.covariates, self.wresid, self.bread):
            value.flags.writeable = False
        self.iw_weights.flags.writeable = False

    def rescaled(self, c: float) -> SaturatedDesign:
        """The design for the outcome times ``c`` (only the residuals scale)."""
        return replace(self, wresid=self.wresid * c)

    def regressors(self) -> np.ndarray:
        """The absorbed design ``M [D, X]`` (n x (P + q)), formed on demand."""
        n, n_cells = len(self.wresid), self.iw_weights.shape[1]
        if n * (n_cells + self.covariates.shape[1]) > _MAX_DENSE:
            raise EstimationError(
                f"Another clustering of this Sun-Abraham fit needs its {n:,} x {n_cells} "
                f"absorbed design, beyond the limit of {_MAX_DENSE:,} entries; refit with "
                "cluster=... instead (the fit sums the scores without forming it)."
            )
        D = np.zeros((n, n_cells))
        rows = np.flatnonzero(self.cell_of_row >= 0)
        D[rows, self.cell_of_row[rows]] = 1.0
        if self.w is None:
            Dd = TwoWayWithin(self.fe[0], self.fe[1]).residualize(D)
        else:
            Dd = absorb(D, self.fe, weights=self.w)[0]
        return np.column_stack([Dd, self.covariates])


@dataclass(frozen=True)
class SunAbrahamResult(EstimationResult):
    """Result of :func:`fit`; adds the cohort x relative-period effects.

    Attributes
    ----------
    cohort_effects : pandas.DataFrame
        One row per interaction ``(cohort, event)``: ``estimate``, ``se``, ``n_obs`` (cell
        size) and ``weight`` (its IW share within its event time).
    design : SaturatedDesign
        The fitted regression, kept for :meth:`with_inference`.
    cell_vcov : numpy.ndarray
        Covariance of the interactions ``d_{g,e}`` in ``cohort_effects`` order (the fit's
        clustering, or the one :meth:`with_inference` chose), kept for :meth:`aggregate`.
    two_way_cluster : bool
        Whether ``cell_vcov`` is a two-way clustered sum (negative variances are NaN).
    cell_vcov_unit, cell_vcov_scale : numpy.ndarray, float
        ``cell_vcov`` as :meth:`aggregate` reads it: ``cell_vcov_scale**2 *
        cell_vcov_unit``, with ``cell_vcov_unit`` on the fit's working scale (``None``:
        ``cell_vcov`` itself, scale 1). At outcomes near the float limits ``cell_vcov``
        itself overflows or underflows (y x 1e160: inf, so aggregate's SEs were NaN;
        y x 1e-160: subnormal, 0.3% off), while the SEs ``|cell_vcov_scale| *
        sqrt(a' V_unit a)`` stay exact.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "cohort_effects": {"estimate": 1, "se": 1},
        "design": 1,
        "cell_vcov": 2,
        "cell_vcov_scale": 1,
    }

    cohort_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    design: SaturatedDesign | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)
    cell_vcov: np.ndarray | None = field(default=None, repr=False, compare=False)
    two_way_cluster: bool = field(default=False, repr=False, compare=False)
    cell_vcov_unit: np.ndarray | None = field(default=None, repr=False, compare=False)
    cell_vcov_scale: float = field(default=1.0, repr=False, compare=False)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"cohort_effects": self.cohort_effects}

    def with_inference(
        self, method: str = "cluster", *, cluster: Any = None, ssc: str | None = None
    ) -> SunAbrahamResult:
        """The same estimates with another clustered (CR1) covariance, without refitting.

        The cluster scores of the saturated regression are re-summed
        (:func:`zoneimpact.inference.covariance.crv1`; two ways by Cameron, Gelbach &
        Miller 2011) and the IW aggregates' covariance follows by the same delta method
        as in :func:`fit` (``A V(d) A'``, shares fixed).

        Parameters
        ----------
        method : {"cluster"}
            CR1 clustered covariance, one or two ways.
        cluster : str, pandas.Series, or a list of two, optional
            A panel or geography column (string or numeric labels), labels as a Series
            indexed by unit (or by (unit, time)), or two of these for two-way clustering;
            None: by unit.
        ssc : {"fixest", "statsmodels"}, optional
            ``K`` of the small-sample factor: fixest's nested count (the fit's default) or
            every absorbed effect.

        Returns
        -------
        SunAbrahamResult
            A new result: terms, ``vcov``, ``cohort_effects`` standard errors and ``info``
            (``cluster``, ``n_clusters``, ``ssc``) replaced; ``df = G - 1`` with ``G`` the
            smallest number of clusters.
        """
        if self.design is None:
            raise EstimationError(
                "This Sun-Abraham result keeps no regression design (it was not made by "
                "sun_abraham.fit); refit to change its inference."
            )
        check_choice(method, "method", ("cluster",))
        ssc = "fixest" if ssc is None else ssc
        check_choice(ssc, "ssc", ("fixest", "statsmodels"))
        # the negative-variance warning's stacklevel: the helper, _recluster, this method
        return self._recluster(cluster, ssc, stacklevel=3)

    def _recluster(self, cluster: Any, ssc: str, *, stacklevel: int) -> SunAbrahamResult:
        """:meth:`with_inference` with checked options; ``stacklevel`` of a warning counts
        from the line here that computes the standard errors."""
        d = self.design
        assert d is not None
        c = outcome_scale(d.wresid)
        if c != 1.0:
            # outcomes near the float limits: re-sum the scores on the fit's working scale,
            # so their squares cannot overflow or underflow (exact: c is a power of two;
            # y x 1e160 gave a NaN SE, y x 1e-160 one off by 0.1%), as TWFE does; the
            # covariances are recomputed, so they are not carried over (c^-2 can overflow)
            small = replace(self, vcov=None, cell_vcov=None, cell_vcov_unit=None)
            small = small.rescaled(1 / c)
            return small._recluster(cluster, ssc, stacklevel=stacklevel + 1).rescaled(c)
        codes, cname = _row_clusters(self.panel, d.rows, cluster)
        k = d.bread.shape[0]
        big_k = k + d.fe_rank if ssc == "statsmodels" else _fixest_k(k, d.fe, codes)
        V, g = crv1(d.regressors(), d.wresid, d.bread, codes, n_params=big_k)
        V_delta = V[: d.iw_weights.shape[1], : d.iw_weights.shape[1]]
        vcov = _iw_vcov(d.iw_weights, V_delta)
        negative_nan = len(codes) == 2
        terms = self.terms
        effects = self.cohort_effects
        cells = zip(effects["cohort"], effects["event"], strict=True)
        cell_names = [f"cell({g_},{e})" for g_, e in cells]
        # one warning for the terms and the cells whose two-way variance is negative
        se = standard_errors_from_variance(
            np.concatenate([np.diag(vcov), np.diag(V_delta)]),
            [*terms["term"].astype(str), *cell_names],
            two_way=negative_nan,
            stacklevel=stacklevel,
        )
        terms = terms_frame(
            terms["term"].tolist(),
            terms["estimate"],
            se[: len(terms)],
            df=np.full(len(terms), g - 1.0),
        )
        effects = effects.assign(se=se[len(terms) :])
        info = {
            **self.info,
            "cluster": cname,
            "n_clusters": g,
            "ssc": _ssc_note(ssc, big_k),
        }
        return replace(
            self,
            terms=terms,
            vcov=vcov,
            cohort_effects=effects,
            info=info,
            cell_vcov=V_delta,
            two_way_cluster=negative_nan,
            cell_vcov_unit=V_delta,
            cell_vcov_scale=1.0,
        )

    def aggregate(
        self,
        type: str = "dynamic",
        *,
        min_e: float | None = None,
        max_e: float | None = None,
        balance_e: int | None = None,
        bins: Sequence[Sequence[int]] | None = None,
    ) -> SunAbrahamResult:
        """Another aggregation of the same CATT(g,e), without refitting the regression.

        Each aggregate is a linear combination ``a' d`` of the interactions ``d_{g,e}``
        with the cells' sample shares as weights (Sun & Abraham 2021, eq. 29: the
        observation count of cell ``(g, e)``, its total weight with ``weights``; on a
        balanced panel the cohort's size), so every type mirrors R ``did::aggte``'s
        definition on Callaway-Sant'Anna's ATT(g,t) (CS 2021 eqs. 3.3-3.8), with the CATT
        in place of the ATT(g,t):

        * ``"simple"``: ``att``, the share-weighted average of the post-treatment cells
          (``0 <= e <= max_e``); with no window it is the fit's ``att`` (fixest
          ``agg = "ATT"``).
        * ``"dynamic"``: ``event:E``, the IW estimate ``nu_e`` (eq. 28-29; the fit's
          terms), and ``event_avg``, the plain average of the ``event:E`` with ``E >= 0``.
        * ``"group"``: ``cohort:G``, the plain average of the cohort's post-treatment cells
          (``e <= max_e``), and ``cohort_avg``, their average weighted by each cohort's
          mean cell share over those cells (R ``did``'s ``pg``).
        * ``"calendar"``: ``calendar:T``, the share-weighted average of the cells
          ``(g, T - g)`` treated in period ``T``, and ``calendar_avg``, their plain
          average; refused after ``window="bin"`` (a binned end point spans periods).

        ``bins`` add ``event_bin:A..B`` with any type: the IW average of the cells whose
        event time lies in the bin (shares pooled within the bin, as if the bin were one
        relative period), over the event times ``min_e``/``max_e``/``balance_e`` keep.

        Parameters
        ----------
        type : {"simple", "dynamic", "group", "calendar"}
            The aggregation; ``att`` is always included.
        min_e, max_e : float, optional
            Event-time window (dynamic and bins; ``max_e`` also caps simple and group).
        balance_e : int, optional
            Keep only cohorts observed at least ``balance_e`` periods after treatment and
            event times in ``[balance_e - (T_last - T_first), balance_e]`` (R ``aggte``).
        bins : list of [first, last], optional
            User-defined event-time bins (whole numbers, ``first <= last``).

        Returns
        -------
        SunAbrahamResult
            A new result with the same estimation and clustering: terms, ``vcov`` and
            ``info["aggregation"]`` replaced. Standard errors by the delta method
            ``A V(d) A'`` with the shares treated as fixed, as the fit, fixest, pyfixest
            and diff-diff do (R ``did`` adds a term for the estimated cohort shares to
            the aggregates that weight cohorts, as the paper's Prop. 6 does for eq. 29).

        Raises
        ------
        EstimationError
            No kept covariance, no post-treatment cell within ``max_e``, no cohort that
            ``balance_e`` keeps, an empty bin, or ``"calendar"`` after ``window="bin"``.
        SpecError
            An unknown ``type`` or a malformed window or bin.
        """
        if self.design is None or self.cell_vcov is None:
            raise EstimationError(
                "This Sun-Abraham result keeps no cohort x event covariance (it was not made "
                "by sun_abraham.fit); refit to aggregate."
            )
        check_choice(type, "type", _AGGREGATIONS)
        lo, hi, bal = _check_window(min_e, max_e, balance_e)
        if type == "calendar" and self.info.get("window") == "bin":
            raise EstimationError(
                "aggregate('calendar') needs each cell in one calendar period, but this fit "
                "binned the relative periods outside [min_e, max_e] (window='bin'); refit "
                "with window='trim' for calendar-time effects."
            )
        times = self.design.rows["time"].to_numpy()
        cells = _AggregationCells.of(self.cohort_effects, times)
        names, A = _aggregation_matrix(cells, type, lo, hi, bal, _check_bins(bins))
        # the variances on the fit's working scale, then the SEs times |scale|: formed in
        # the outcome's units, A V A' overflowed at y x 1e160 (SEs NaN) and lost digits
        # to subnormals at y x 1e-160, where fit and with_inference were exact
        if self.cell_vcov_unit is None:
            V, scale = np.asarray(self.cell_vcov), 1.0
        else:
            V, scale = np.asarray(self.cell_vcov_unit), float(self.cell_vcov_scale)
        vcov_unit = A @ V @ A.T
        se = standard_errors_from_variance(
            np.diag(vcov_unit), names, two_way=self.two_way_cluster, stacklevel=2
        )
        with np.errstate(over="ignore"):
            # squared units: not representable near 1e160, as the fit's vcov (inf)
            vcov = vcov_unit * np.float64(scale) ** 2
        df = float(self.terms["df"].iloc[0])
        terms = terms_frame(names, A @ cells.estimate, se * abs(scale), df=np.full(len(names), df))
        window = {"min_e": lo, "max_e": hi, "balance_e": bal}
        note = ", ".join(
            f"{k}={v:g}" for k, v in window.items() if v is not None and np.isfinite(v)
        )
        info = {**self.info, "aggregation": type + (f" ({note})" if note else "")}
        return replace(
            self, terms=terms, vcov=vcov, info=info, design=replace(self.design, iw_weights=A)
        )


@dataclass(frozen=True)
class _Options:
    """Checked options of :func:`fit`."""

    control_group: str
    refs: list[int]
    min_e: int | None
    max_e: int | None
    window: str
    covariates: list[str]
    cluster: str | None
    weights: str | None


@dataclass(frozen=True)
class _Sample:
    """Estimation rows: the frame, cohort, period, relative period, control flag, and the
    control cohort under ``last_cohort`` (None: never treated)."""

    df: pd.DataFrame
    cohort: np.ndarray
    time: np.ndarray
    rel: np.ndarray
    is_control: np.ndarray
    last: float | None


@dataclass(frozen=True)
class _Saturated:
    """The fitted saturated regression: cell effects ``d_{g,e}``, their clustered
    covariance and what the result reports about it."""

    delta: np.ndarray
    V_delta: np.ndarray
    kept_covs: list[str]
    dropped_covs: list[str]
    G: int
    cl_name: str
    K: int
    design: SaturatedDesign


def _covariate_list(panel: Panel, covariates: str | Sequence[str] | None) -> list[str]:
    covs = check_names(covariates, "covariates")
    missing = [
        c for c in covs if not isinstance(c, str) or c not in panel.data.columns or c in RESERVED
    ]
    if missing:
        raise EstimationError(
            f"Covariate(s) {missing} are not panel columns; the panel's covariates are "
            f"{list(panel.covariates)} (declare them in Panel.from_frame(covariates=...))."
        )
    return covs


def _ref_periods(ref_period: int | Sequence[int]) -> list[int]:
    """The excluded relative periods ``R``, sorted; at least one of them before treatment."""
    if isinstance(ref_period, str) or not (
        np.isscalar(ref_period) or isinstance(ref_period, Sequence | np.ndarray)
    ):
        raise SpecError(
            f"ref_period must be a whole number or a list of them (e.g. -1); received "
            f"{ref_period!r}."
        )
    # np.isscalar tells the int from the sequence at run time, but its TypeGuard narrows to
    # numpy's generic scalar union (no __int__) and not at all in the else branch
    refs = sorted(
        {check_int(ref_period, "ref_period")}
        if np.isscalar(ref_period)
        else {check_int(r, "ref_period") for r in cast(Sequence[int], ref_period)}
    )
    if not refs:
        raise EstimationError("ref_period is empty; exclude at least one pre-period (e.g. -1).")
    return refs


def _options(
    panel: Panel,
    control_group: Any,
    ref_period: Any,
    min_e: Any,
    max_e: Any,
    window: Any,
    cluster: Any,
    covariates: Any,
    weights: Any,
) -> _Options:
    """Check every option of :func:`fit` once, before any data are touched."""
    if not isinstance(control_group, str) or control_group not in ("never_treated", "last_cohort"):
        raise EstimationError(
            f"control_group={control_group!r} is not valid; use 'never_treated' or 'last_cohort'."
        )
    if not isinstance(window, str) or window not in ("trim", "bin"):
        raise EstimationError(f"window={window!r} is not valid; use 'trim' or 'bin'.")
    refs = _ref_periods(ref_period)
    min_e = check_int(min_e, "min_e", none=True)
    max_e = check_int(max_e, "max_e", none=True)
    if min_e is not None and max_e is not None and min_e > max_e:
        raise EstimationError(f"min_e={min_e} exceeds max_e={max_e}.")
    covs = _covariate_list(panel, covariates)
    check_cluster(cluster)
    return _Options(
        control_group=control_group,
        refs=refs,
        min_e=min_e,
        max_e=max_e,
        window=window,
        covariates=covs,
        cluster=cluster,
        weights=check_weight_name(panel, weights),
    )


def _complete_rows(panel: Panel, outcome: str, opts: _Options) -> pd.DataFrame:
    """The columns the estimate reads, on the rows with outcome and covariates; a weight
    missing on such a row is refused later (:func:`._weights.weight_values`), as CS does,
    rather than dropping the row without a word (session 19)."""
    wcol = [opts.weights] if opts.weights else []
    cols = ["unit", "time", "cohort", outcome, *opts.covariates, *wcol]
    cluster = opts.cluster
    if cluster is not None and cluster in panel.data.columns and cluster not in cols:
        cols.append(cluster)
    df = panel.data.loc[:, cols]
    complete = df[[outcome, *opts.covariates]].notna().all(axis=1).to_numpy()
    if not complete.all():  # a second copy of the frame only when rows must go
        df = df.loc[complete]
    return df


def _control_cohort(
    df: pd.DataFrame, control_group: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, float | None]:
    """The control cohort ``C`` (Sun & Abraham 2021, Section 4.1): never treated, or the
    last-treated cohort on the periods before it is treated."""
    cohort = df["cohort"].to_numpy(float)
    time = df["time"].to_numpy(np.int64)
    if control_group == "never_treated":
        if not np.isinf(cohort).any():
            raise EstimationError(
                "control_group='never_treated' but the panel has no never-treated unit (cohort "
                "column all finite). Use control_group='last_cohort' to take the last-treated "
                "cohort as the control group."
            )
        return df, cohort, time, np.isinf(cohort), None
    finite = cohort[np.isfinite(cohort)]
    if finite.size == 0:
        raise EstimationError("control_group='last_cohort' but no unit is ever treated.")
    last = float(finite.max())
    keep = time < last
    df, cohort, time = df.loc[keep], cohort[keep], time[keep]
    is_control = (cohort == last) | np.isinf(cohort)
    if (~is_control).sum() == 0:
        raise EstimationError(
            f"control_group='last_cohort': the last cohort ({last:g}) is the only treated "
            "cohort, so no cohort is left to estimate effects for. Use never-treated "
            "controls."
        )
    return df, cohort, time, is_control, last


def _estimation_sample(panel: Panel, outcome: str, opts: _Options) -> _Sample:
    """Rows of eq. 27: complete rows, the control cohort, relative periods ``t - G_i`` and
    the event window (trimmed, or binned into its end points)."""
    df, cohort, time, is_control, last = _control_cohort(
        _complete_rows(panel, outcome, opts), opts.control_group
    )
    rel = np.where(is_control, 0, time - np.where(np.isfinite(cohort), cohort, 0)).astype(np.int64)
    if opts.min_e is not None or opts.max_e is not None:
        lo = -np.inf if opts.min_e is None else opts.min_e
        hi = np.inf if opts.max_e is None else opts.max_e
        if opts.window == "trim":
            keep = is_control | ((rel >= lo) & (rel <= hi))
            df, cohort, time, rel, is_control = (
                df.loc[keep],
                cohort[keep],
                time[keep],
                rel[keep],
                is_control[keep],
            )
        else:
            rel = np.where(is_control, rel, np.clip(rel, lo, hi)).astype(np.int64)
    if not any(r < 0 for r in opts.refs):
        raise EstimationError(
            f"ref_period={opts.refs} excludes no pre-treatment period; the saturated "
            "regression is then collinear with the unit effects. Include a negative period "
            "(e.g. -1)."
        )
    _check_reference_observed(cohort[~is_control], rel[~is_control], opts.refs)
    return _Sample(df=df, cohort=cohort, time=time, rel=rel, is_control=is_control, last=last)


def _check_reference_observed(cohort: np.ndarray, rel: np.ndarray, refs: list[int]) -> None:
    """Every treated cohort needs a row at an excluded relative period: without one, its
    cohort x relative-period dummies add up to its units' fixed effects and the saturated
    regression is rank deficient. Name the cause instead: a cohort treated from its first
    observed period (always treated), or a reference period the data do not observe (e.g.
    ``ref_period=-1`` on biennial periods)."""
    seen = pd.DataFrame({"cohort": cohort, "rel": rel}).groupby("cohort")["rel"].unique()
    for g, events in seen.items():
        events = np.sort(np.asarray(events, dtype=np.int64))
        if np.isin(events, refs).any():
            continue
        if events.min() >= 0:
            raise EstimationError(
                f"Cohort {g:g} has no pre-treatment period in the estimation sample (event "
                f"times {events[:5].tolist()}{' ...' if events.size > 5 else ''}: always "
                "treated, or pre-periods trimmed by min_e), so its effects are not identified "
                "against the unit fixed effects. Drop its units (Callaway & Sant'Anna drops "
                "such cohorts with a warning)."
            )
        pre = events[events < 0][-3:].tolist()
        raise EstimationError(
            f"Cohort {g:g} is not observed at ref_period={refs} (its pre-treatment event "
            f"times end with {pre}), so its effects are not identified against the unit "
            f"fixed effects. Choose an observed reference period, e.g. ref_period={pre[-1]} "
            "(event times are in units of the time column: on biennial data -1 is never "
            "observed)."
        )


def _cells(
    cohort: np.ndarray, rel: np.ndarray, treated: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Cohort x relative-period cells of the treated rows, ordered by (event, cohort), and
    the cell (column) of every row (-1 for control and reference rows).
    """
    gc, glev = pd.factorize(cohort[treated], sort=True)
    r = rel[treated].astype(np.int64)
    rmin = int(r.min()) if r.size else 0
    # cell key ordered by event first, then cohort: the order of the output columns (the
    # keys present are sorted, not counted over the whole range of event times, which may
    # span billions of periods)
    key = (r - rmin) * max(len(glev), 1) + gc
    present, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    col_of = np.full(len(cohort), -1, dtype=np.intp)
    col_of[treated] = inverse.ravel()
    cells = pd.DataFrame(
        {
            "cohort": np.asarray(glev, dtype=float)[present % max(len(glev), 1)],
            "event": present // max(len(glev), 1) + rmin,
            "n_obs": counts.astype(np.int64),
        }
    )
    return cells, col_of


def _interaction_cells(sample: _Sample, opts: _Options) -> tuple[pd.DataFrame, np.ndarray]:
    """The saturated regression's cells ``1{G_i = g} 1{t - G_i = e}`` (g not in C, e not in
    R), within the size this implementation inverts."""
    treated_cell = ~sample.is_control & ~np.isin(sample.rel, opts.refs)
    cells, col_of = _cells(sample.cohort, sample.rel, treated_cell)
    if cells.empty:
        raise EstimationError("No treated cohort x relative-period cell to estimate.")
    P = len(cells)
    if P + len(opts.covariates) > _MAX_PARAMETERS:
        raise EstimationError(
            f"The saturated Sun-Abraham regression has {P} cohort x relative-period cells "
            f"({cells['cohort'].nunique()} cohorts, event times {int(cells['event'].min())} to "
            f"{int(cells['event'].max())}); it inverts a {P} x {P} matrix, beyond this "
            f"implementation's limit of {_MAX_PARAMETERS:,}. Trim the event window with "
            "min_e/max_e (window='bin' pools the end points) or aggregate the periods."
        )
    return cells, col_of


def _drop_collinear(
    Xd: np.ndarray, X: np.ndarray, names: list[str], tol: float = 1e-9
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop covariates absorbed by the fixed effects (demeaned column ~ 0)."""
    keep: list[int] = []
    dropped: list[int] = []
    for j in range(len(names)):
        # relative to the centred covariate: its units or an offset (1e12 + z) dropped a
        # varying covariate as absorbed before (session 19)
        scale = float(np.abs(X[:, j] - X[:, j].mean()).max(initial=0.0))
        (keep if np.abs(Xd[:, j]).max(initial=0.0) > tol * scale else dropped).append(j)
    return Xd[:, keep], [names[j] for j in keep], [names[j] for j in dropped]


def _scaled_inverse(XtX: np.ndarray, message: str) -> np.ndarray:
    """``XtX^{-1}``, refused with ``message`` where ``XtX`` is singular; both judged on the
    matrix with unit diagonal, so a covariate's units (times 1e12) cannot make a full-rank
    design look singular (session 19) while the inverse is the same."""
    d = np.sqrt(np.diag(XtX))
    d = np.where(d > 0, d, 1.0)
    S = XtX / np.outer(d, d)
    if np.linalg.matrix_rank(S) < len(S):
        raise EstimationError(message)
    out: np.ndarray = np.linalg.inv(S) / np.outer(d, d)
    return out


def _cluster_count(
    panel: Panel, df: pd.DataFrame, cluster: str | None
) -> tuple[np.ndarray, int, str]:
    """Cluster codes of the rows, their number (at least two) and the cluster's name."""
    cl, cl_name = cluster_codes(panel, df, cluster)
    G = int(cl.max()) + 1
    if G < 2:
        raise EstimationError(f"Only one cluster in {cl_name!r}; clustered SEs need >= 2.")
    return cl, G, cl_name


def _check_identified(block: Any, cells: pd.DataFrame) -> None:
    """Refuse interaction columns absorbed by the fixed effects (a singular design)."""
    # That happens only without a valid control group (e.g. every period of a cohort
    # dummied). ||M d_c||^2 = (D'MD)_cc; relative to the cell size, rounding noise is ~1e-16.
    dead = np.flatnonzero(np.diag(block.gram) <= 1e-9 * np.maximum(block.counts, 1.0))
    if dead.size:
        c = cells.iloc[int(dead[0])]
        raise EstimationError(
            f"Cohort {c['cohort']:g}, relative period {int(c['event'])} is collinear with "
            "the fixed effects; exclude more relative periods (ref_period) or trim the "
            "event window (min_e/max_e)."
        )


def _saturated_ols(
    panel: Panel,
    sample: _Sample,
    y: np.ndarray,
    cells: pd.DataFrame,
    col_of: np.ndarray,
    fe: list[np.ndarray],
    opts: _Options,
) -> _Saturated:
    """Saturated regression (eq. 27) by OLS with the cell dummies never formed.

    The P interaction dummies would be n x P (2.5 GB at 5M rows): every product they enter
    (``X'MX``, ``X'My``, the cluster scores) is built from unit x cell and period x cell
    tables (:meth:`._fe.TwoWayWithin.onehot`).
    """
    df, n, P, covs = sample.df, len(y), len(cells), opts.covariates
    tw = TwoWayWithin(fe[0], fe[1])
    block = tw.onehot(col_of, P)
    _check_identified(block, cells)
    yd = tw.residualize(y)
    rows, rcol = block.rows, col_of[block.rows]
    if covs:
        Xc = df[covs].to_numpy(float)
        Xcov, kept_covs, dropped_covs = _drop_collinear(tw.residualize(Xc), Xc, list(covs))
        Xc = Xc[:, [covs.index(c) for c in kept_covs]]
    else:
        Xc, Xcov, kept_covs, dropped_covs = np.empty((n, 0)), np.empty((n, 0)), [], []
    q = Xcov.shape[1]
    k = P + q
    # X'MX and X'My with D'M x = D'(M x) for any explicit column x
    dx = np.zeros((P, q))
    for j in range(q):
        dx[:, j] = np.bincount(rcol, Xcov[rows, j], P)
    XtX = np.block([[block.gram, dx], [dx.T, Xcov.T @ Xcov]])
    Xty = np.concatenate([np.bincount(rcol, yd[rows], P), Xcov.T @ yd])
    bread = _scaled_inverse(
        XtX,
        "The saturated Sun-Abraham design is rank deficient (collinear covariates or "
        "cells); drop covariates or trim the event window.",
    )
    beta = bread @ Xty
    # residuals M(y - D delta - X b): one projection of one column
    resid = tw.residualize(y - tw.expand(block, beta[:P]) - Xc @ beta[P:])
    cl, G, cl_name = _cluster_count(panel, df, opts.cluster)
    meat = tw.cluster_meat(block, resid, cl, Xcov)
    K = cluster_ssc_k(k, fe, cl)
    ssc = G / (G - 1) * (n - 1) / (n - K)
    V = ssc * bread @ meat @ bread
    design = _design(sample, fe, tw.rank, col_of, Xcov, None, resid, bread)
    return _Saturated(beta[:P], V[:P, :P], kept_covs, dropped_covs, G, cl_name, K, design)


def _saturated_wls(
    panel: Panel,
    sample: _Sample,
    y: np.ndarray,
    cells: pd.DataFrame,
    col_of: np.ndarray,
    fe: list[np.ndarray],
    opts: _Options,
    w: np.ndarray,
) -> _Saturated:
    """Weighted saturated regression (eq. 27 by WLS) with dense cell dummies.

    The one-hot tables of :class:`._fe.TwoWayWithin` are unweighted; with weights the P
    cell dummies are formed (P is capped by ``_MAX_PARAMETERS``) and absorbed by the
    weighted within transformation of :func:`._fe.absorb` (pyfixest ``feols(weights=)``).
    """
    df, covs = sample.df, opts.covariates
    n, P = len(y), len(cells)
    # weights near the float limits: divided by a power of two (x 1e-300 gave an SE of 0)
    w = normalised_weights(w)
    D = np.zeros((n, P))
    rows = np.flatnonzero(col_of >= 0)
    D[rows, col_of[rows]] = 1.0
    Xc = df[covs].to_numpy(float) if covs else np.empty((n, 0))
    Z, fe_rank = absorb(np.column_stack([y, D, Xc]), fe, weights=w)
    yd, Dd, Xd = Z[:, 0], Z[:, 1 : 1 + P], Z[:, 1 + P :]
    Xcov, kept_covs, dropped_covs = _drop_collinear(Xd, Xc, list(covs))
    X = np.column_stack([Dd, Xcov])
    k = X.shape[1]
    XtX = (X * w[:, None]).T @ X
    bread = _scaled_inverse(
        XtX,
        "The weighted saturated Sun-Abraham design is rank deficient (collinear "
        "covariates or cells); drop covariates or trim the event window.",
    )
    beta = bread @ (X.T @ (w * yd))
    wresid = w * (yd - X @ beta)
    cl, G, cl_name = _cluster_count(panel, df, opts.cluster)
    scores = np.stack([np.bincount(cl, x * wresid, G) for x in X.T], axis=1)
    K = cluster_ssc_k(k, fe, cl)
    V = G / (G - 1) * (n - 1) / (n - K) * bread @ (scores.T @ scores) @ bread
    design = _design(sample, fe, fe_rank, col_of, Xcov, w, wresid, bread)
    return _Saturated(beta[:P], V[:P, :P], kept_covs, dropped_covs, G, cl_name, K, design)


def _design(
    sample: _Sample,
    fe: list[np.ndarray],
    fe_rank: int,
    col_of: np.ndarray,
    Xcov: np.ndarray,
    w: np.ndarray | None,
    wresid: np.ndarray,
    bread: np.ndarray,
) -> SaturatedDesign:
    """The fitted regression as :meth:`SunAbrahamResult.with_inference` needs it (the IW
    aggregation matrix is filled in by :func:`_result`)."""
    return SaturatedDesign(
        fe=fe,
        fe_rank=int(fe_rank),
        cell_of_row=col_of,
        covariates=Xcov,
        w=w,
        wresid=wresid,
        bread=bread,
        iw_weights=np.empty((0, int(bread.shape[0] - Xcov.shape[1]))),
        rows=sample.df[["unit", "time"]],
    )


def _iw_weights(cells: pd.DataFrame, shares: str) -> tuple[np.ndarray, np.ndarray]:
    """IW aggregation matrix (eq. 28-29): row 0 fixest's ``att`` (post-treatment cells,
    ``e >= 0``), then one row per event time; entries are the cells' sample shares
    ``Pr(G = g | e)`` (observation counts, or total weights with ``weights``). Returns the
    matrix and the event times."""
    events = np.sort(cells["event"].unique())
    counts = cells[shares].to_numpy(float)
    ev = cells["event"].to_numpy()
    A = np.zeros((1 + len(events), len(cells)))
    post = ev >= 0
    if post.any():
        A[0, post] = counts[post] / counts[post].sum()
    else:
        A[0] = np.nan
    for r, e in enumerate(events, start=1):
        m = ev == e
        A[r, m] = counts[m] / counts[m].sum()
    return A, events


def _iw_vcov(A: np.ndarray, V_delta: np.ndarray) -> np.ndarray:
    """Delta-method covariance ``A V(d) A'`` of the IW aggregates with the shares treated
    as fixed (fixest ``aggregate()``; the module docstring on Prop. 6's share term); the
    ``att`` row and column are NaN when no cell is post-treatment."""
    if not np.isnan(A[0]).any():
        return A @ V_delta @ A.T
    vcov = np.full((len(A), len(A)), np.nan)
    vcov[1:, 1:] = A[1:] @ V_delta @ A[1:].T
    return vcov


def _standard_errors(V: np.ndarray) -> np.ndarray:
    """Square roots of the fit's (one-way clustered) variances, rounding below zero
    clipped (:func:`.covariance.standard_errors_from_variance`)."""
    return standard_errors_from_variance(np.diag(V), two_way=False)


def _ssc_note(ssc: str, K: int) -> str:
    if ssc == "fixest":
        return f"fixest default: G/(G-1)*(n-1)/(n-K), K={K}"
    return f"G/(G-1)*(n-1)/(n-K), K={K} (every absorbed effect counted)"


#: The aggregations of :meth:`SunAbrahamResult.aggregate` (R ``did::aggte``'s types).
_AGGREGATIONS = ("simple", "dynamic", "group", "calendar")


@dataclass(frozen=True)
class _AggregationCells:
    """The interactions as the aggregations read them: estimate, cohort, event time,
    share mass (observations or total weight) and the sample's first and last period."""

    estimate: np.ndarray
    cohort: np.ndarray
    event: np.ndarray
    mass: np.ndarray
    first: int
    last: int

    @classmethod
    def of(cls, effects: pd.DataFrame, times: np.ndarray) -> _AggregationCells:
        share = "total_weight" if "total_weight" in effects.columns else "n_obs"
        return cls(
            estimate=effects["estimate"].to_numpy(float),
            cohort=effects["cohort"].to_numpy(np.int64),
            event=effects["event"].to_numpy(np.int64),
            mass=effects[share].to_numpy(float),
            first=int(times.min()),
            last=int(times.max()),
        )


def _share_row(cells: _AggregationCells, keep: np.ndarray) -> np.ndarray:
    """Weights of the share-weighted average of the cells in ``keep`` (eq. 29)."""
    a = np.zeros(len(cells.mass))
    a[keep] = cells.mass[keep] / cells.mass[keep].sum()
    return a


def _aggregation_matrix(
    cells: _AggregationCells,
    type: str,
    lo: float,
    hi: float,
    balance_e: int | None,
    bins: Sequence[tuple[int, int]],
) -> tuple[list[str], np.ndarray]:
    """Term names and the aggregation matrix (terms x cells) of one ``aggregate`` call:
    ``att`` first, then the type's terms, then the bins."""
    ev = cells.event
    post = (ev >= 0) & (ev <= hi)
    if not post.any():
        within = f" lies within max_e={hi:g}" if np.isfinite(hi) else " was estimated"
        raise EstimationError(
            f"No post-treatment cell (event time >= 0){within}, so the overall effect is "
            f"undefined; the estimated event times are {sorted({int(e) for e in ev})}."
        )
    rows: list[tuple[str, np.ndarray]] = [("att", _share_row(cells, post))]
    events = _event_cells(cells, lo, hi, balance_e) if type == "dynamic" or bins else []
    if type == "dynamic":
        by_event = [(e, _share_row(cells, m)) for e, m in events]
        rows += [(f"event:{e}", a) for e, a in by_event]
        after = [a for e, a in by_event if e >= 0]
        if after:
            rows.append(("event_avg", np.mean(after, axis=0)))
    elif type == "group":
        rows += _group_rows(cells, post)
    elif type == "calendar":
        rows += _calendar_rows(cells)
    rows += _bin_rows(cells, events, bins)
    return [r[0] for r in rows], np.vstack([r[1] for r in rows])


def _event_cells(
    cells: _AggregationCells, lo: float, hi: float, balance_e: int | None
) -> list[tuple[int, np.ndarray]]:
    """The event times of the window and the cells of each (a mask): the cohorts observed
    at least ``balance_e`` periods after treatment when asked (R ``aggte``'s
    ``balance_e``)."""
    include = np.ones(len(cells.event), bool)
    if balance_e is not None:
        include = (cells.last - cells.cohort) >= balance_e
        if not include.any():
            raise EstimationError(
                f"balance_e={balance_e}: no cohort is observed for {balance_e} periods after "
                f"treatment (the last period is {cells.last}, cohorts "
                f"{sorted({int(g) for g in cells.cohort})}); lower balance_e."
            )
    eseq = np.unique(cells.event[include])
    if balance_e is not None:
        span = cells.last - cells.first
        eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - span)]
    eseq = eseq[(eseq >= lo) & (eseq <= hi)]
    return [(int(e), (cells.event == e) & include) for e in eseq]


def _group_rows(cells: _AggregationCells, post: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Cohort effects (the plain average of a cohort's post-treatment cells, CS eq. 3.3)
    and their average weighted by the cohorts' mean cell shares (eq. 3.4)."""
    rows: list[tuple[str, np.ndarray]] = []
    masses: list[float] = []
    for g in np.unique(cells.cohort[post]):
        m = post & (cells.cohort == g)
        a = np.zeros(len(cells.mass))
        a[m] = 1.0 / m.sum()
        rows.append((f"cohort:{int(g)}", a))
        masses.append(float(cells.mass[m].mean()))
    share = np.array(masses) / sum(masses)
    rows.append(("cohort_avg", share @ np.vstack([a for _, a in rows])))
    return rows


def _calendar_rows(cells: _AggregationCells) -> list[tuple[str, np.ndarray]]:
    """Calendar-time effects (share-weighted cells treated in period T, CS eq. 3.7) and
    their plain average (eq. 3.8)."""
    treated = cells.event >= 0
    period = cells.cohort + cells.event
    rows = [
        (f"calendar:{int(t)}", _share_row(cells, treated & (period == t)))
        for t in np.unique(period[treated])
    ]
    rows.append(("calendar_avg", np.mean([a for _, a in rows], axis=0)))
    return rows


def _bin_rows(
    cells: _AggregationCells,
    events: list[tuple[int, np.ndarray]],
    bins: Sequence[tuple[int, int]],
) -> list[tuple[str, np.ndarray]]:
    """User-defined event-time bins: the IW average of the cells whose event time is in
    the bin and kept by the window (shares pooled within the bin)."""
    rows = []
    kept = [e for e, _ in events]
    for lo, hi in bins:
        inside = [m for e, m in events if lo <= e <= hi]
        if not inside:
            raise EstimationError(
                f"Event-time bin [{lo}, {hi}] holds no estimated event time; the event "
                f"times kept are {kept}."
            )
        rows.append((f"event_bin:{lo}..{hi}", _share_row(cells, np.logical_or.reduce(inside))))
    return rows


def _cohort_effects(
    cells: pd.DataFrame, reg: _Saturated, A: np.ndarray, weights: str | None
) -> pd.DataFrame:
    """The interactions ``d_{g,e}`` with their SEs and IW shares."""
    out = cells.copy()
    out["cohort"] = out["cohort"].astype(np.int64)
    out["estimate"] = reg.delta
    out["se"] = _standard_errors(reg.V_delta)
    out["weight"] = A[1:].sum(axis=0) if len(A) > 1 else np.nan
    keep = ["cohort", "event", "estimate", "se", "n_obs", *(["total_weight"] if weights else [])]
    return out[[*keep, "weight"]]


def _info(sample: _Sample, reg: _Saturated, opts: _Options) -> dict[str, Any]:
    weights = opts.weights
    return {
        "control_group": opts.control_group,
        "control_cohort": "never" if sample.last is None else int(sample.last),
        "ref_period": ",".join(str(r) for r in opts.refs),
        "cluster": reg.cl_name,
        "n_clusters": reg.G,
        "fixed_effects": "unit+time",
        "ssc": _ssc_note("fixest", reg.K),
        "vcov_weights": "cell shares treated as fixed (fixest)",
        "att_aggregation": "fixest agg='ATT': post cells weighted by observation counts"
        + (" (total weights)" if weights else ""),
        "covariates": ",".join(reg.kept_covs),
        "dropped_covariates": ",".join(reg.dropped_covs),
        "window": opts.window if (opts.min_e is not None or opts.max_e is not None) else "none",
        "weights": weights or "",
    }


def _result(
    panel: Panel,
    outcome: str,
    alpha: float,
    sample: _Sample,
    cells: pd.DataFrame,
    reg: _Saturated,
    opts: _Options,
) -> SunAbrahamResult:
    """IW aggregation (eq. 28-29) of the cell effects into the result."""
    A, events = _iw_weights(cells, "total_weight" if opts.weights else "n_obs")
    vcov = _iw_vcov(A, reg.V_delta)
    names = ["att", *[f"event:{int(e)}" for e in events]]
    terms = terms_frame(
        names, A @ reg.delta, _standard_errors(vcov), df=np.full(len(names), reg.G - 1.0)
    )
    return SunAbrahamResult(
        estimator="sun_abraham",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(sample.df["unit"].nunique()),
        n_obs=len(sample.df),
        vcov=vcov,
        info=_info(sample, reg, opts),
        alpha=alpha,
        cohort_effects=_cohort_effects(cells, reg, A, opts.weights),
        design=replace(reg.design, iw_weights=A),
        panel=panel,
        cell_vcov=reg.V_delta,
        cell_vcov_unit=reg.V_delta,
    )


@renamed(control="control_group")
@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    control_group: Literal["never_treated", "last_cohort"] = "never_treated",
    ref_period: int | Sequence[int] = -1,
    min_e: int | None = None,
    max_e: int | None = None,
    window: Literal["trim", "bin"] = "trim",
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    weights: str | None = None,
) -> SunAbrahamResult:
    """Sun-Abraham interaction-weighted event study.

    Parameters
    ----------
    panel : Panel
        Staggered-adoption panel (balanced or not); rows with a missing outcome or
        covariate are dropped.
    outcome : str
        Outcome column.
    rng, n_jobs
        Accepted for the common estimator interface; the estimator is deterministic.
    alpha : float
        Level of the confidence intervals stored with the result.
    control_group : {"never_treated", "last_cohort"}
        Control cohort ``C`` of Sun & Abraham (2021, Assumption 1/Section 4.1).
        ``"never_treated"`` uses never-treated units (an error if there are none).
        ``"last_cohort"`` uses the last-treated cohort, restricting the sample to periods
        before it is treated; never-treated units, if any, stay in as controls too.
    ref_period : int or sequence of int
        Excluded relative period(s) ``R`` (fixest ``ref.p``), default ``-1``. At least one
        pre-period must be excluded for identification (Sun & Abraham 2021, Section 3).
    min_e, max_e : int, optional
        Event window. With ``window="trim"`` observations of treated cohorts outside
        ``[min_e, max_e]`` are dropped; with ``window="bin"`` they are pooled into the
        end-point relative periods (fixest ``bin.rel``-style binning).
    window : {"trim", "bin"}
        How to treat relative periods outside the window.
    cluster : str, optional
        Cluster variable: a column of ``panel.data`` or ``panel.geography``; default unit.
        Other clusterings (any column, a Series, two ways) without refitting:
        :meth:`SunAbrahamResult.with_inference`.
    covariates : str or list of str, optional
        Time-varying controls ``X_it`` (time-invariant ones are absorbed by the unit
        effects and dropped; see ``info["dropped_covariates"]``).
    weights : str, optional
        Column of positive observation weights: the saturated regression is weighted least
        squares (pyfixest ``feols(weights=)``: weighted within transformation, clustered
        sandwich of the weighted scores) and a cell's IW share is its total weight instead
        of its number of observations (module docstring, "Weights").

    Returns
    -------
    SunAbrahamResult
        Terms ``att`` (fixest ``agg = "ATT"``) and ``event:E`` for every relative period
        outside ``ref_period``; ``vcov`` in terms order; ``cohort_effects`` with the
        interactions ``d_{g,e}``; ``df = G - 1`` for t-based intervals.

    Raises
    ------
    EstimationError
        No never-treated units with ``control_group="never_treated"``, no treated cohort left,
        a rank-deficient design, or bad options.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="sun_abraham"
    )
    del rng, n_jobs  # deterministic; part of the common interface
    opts = _options(
        panel, control_group, ref_period, min_e, max_e, window, cluster, covariates, weights
    )
    sample = _estimation_sample(panel, outcome, opts)
    cells, col_of = _interaction_cells(sample, opts)
    codes, cname = cluster_codes(panel, sample.df, opts.cluster)
    # clusters with a row of an interaction cell: the treated cohorts' units; stacklevel
    # past renamed's and scale_equivariant's wrappers
    warn_few_treated(
        len(np.unique(codes[col_of >= 0])), f"cluster(s) of {cname!r} (with treated units)",
        stacklevel=4,
    )  # fmt: skip
    y = sample.df[outcome].to_numpy(float)
    fe = [factorize(sample.df["unit"].to_numpy()), factorize(sample.time)]
    if opts.weights is None:
        reg = _saturated_ols(panel, sample, y, cells, col_of, fe, opts)
    else:
        w = weight_values(sample.df, opts.weights)
        # the observation shares of the IW aggregation become weight shares
        treated = col_of >= 0
        cells["total_weight"] = np.bincount(
            col_of[treated], weights=w[treated], minlength=len(cells)
        )
        reg = _saturated_wls(panel, sample, y, cells, col_of, fe, opts, w)
    return _result(panel, outcome, alpha, sample, cells, reg, opts)
