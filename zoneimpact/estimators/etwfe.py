"""Wooldridge's extended two-way fixed effects (ETWFE): linear and Poisson.

Linear (Wooldridge 2021, "Two-way fixed effects, the two-way Mundlak regression, and
difference-in-differences estimators", SSRN 3906345; published as Wooldridge 2025,
*Empirical Economics* 69(5); eq. 6.33 of the working paper): saturate the TWFE regression
with one dummy per treated cohort x period cell,

    y_it = a_i + l_t + sum_g sum_{s >= g} tau_gs 1[G_i = g] 1[t = s] + e_it,

so every untreated observation (never treated, not yet treated) is a control and each
``tau_gs`` is ATT(g, s). On a balanced panel Wooldridge (2021, Theorem 6.1 and Section 6.4)
shows that these OLS coefficients equal the imputation estimator's cell averages (Borusyak,
Jaravel & Spiess 2024); ``tests/test_designs.py`` checks it to 1e-10 on mpdta against
:mod:`.imputation`, weighted and not. On an unbalanced panel they differ slightly: the
treated observations' variation around their cell mean still informs the unit effects
here, not in the imputation estimator. ``control_group="never_treated"`` adds the pre-treatment cells too
(every cell but ``s = g - 1``), which leaves only the never treated as controls (the
"event-study" version of his Section 7; diff-diff ``WooldridgeDiD`` includes them the same
way with never-treated controls).

Poisson (Wooldridge 2023, "Simple approaches to nonlinear difference-in-differences with
panel data", *Econometrics Journal* 26(3), C31-C66, eq. 5.3 and Section 6.2): the pooled
Poisson quasi-MLE of

    E[y_it | G_i, t] = exp(c + d_g + l_t + sum_g sum_{s >= g} tau_gs 1[G_i = g] 1[t = s])

with cohort dummies ``d_g`` (Stata ``jwdid, method(poisson)``; on a balanced panel the tau
equal those of Poisson with unit effects, Wooldridge 2023, Section 6.2), and the effect in
levels ``ATT(g,s) = mean_{i in cell} [exp(eta_is) - exp(eta_is - tau_gs)]`` (his eq. 5.5,
the average structural function difference) with delta-method standard errors from the
clustered QMLE sandwich (statsmodels GLM, as :mod:`.ppml`).

Aggregations follow Callaway & Sant'Anna (2021, Section 3) with the cells' sizes (the
number of treated observations, or their total weight) as weights: ``att`` (all post
cells), ``event:E`` and ``event_avg``, ``cohort:G`` (equal weight to each post period of
the cohort) and ``cohort_avg`` (cohort sizes), ``calendar:T`` and ``calendar_avg``. The
weights are treated as fixed in the delta-method variance, as diff-diff and fixest do.

Standard errors are clustered (by unit unless ``cluster`` says otherwise): the linear
model uses the TWFE engine (:func:`.twfe._ols_design`, CR1 with ``ssc``), the Poisson model
the statsmodels GLM cluster sandwich. ``result.with_inference("cluster", cluster=...)``
re-clusters the kept scores and bread (:class:`CellDesign`) one or two ways without
refitting, and carries the new covariance to the cells and aggregations as :func:`fit` does. Covariates enter as Wooldridge (2021, eq. 6.33; Poisson:
2023, Section 6.2) has them: cell dummies times the centred covariates, and the covariates
times period dummies and times cohort dummies (see :func:`fit`); the centring means are
treated as known. With a time-invariant covariate this is diff-diff's
``WooldridgeDiD(exovar=)`` and Stata ``jwdid`` (linear: matched to 1e-10 in
``tests/test_designs.py``; Poisson: ``benchmarks/reference/etwfe_poisson_covariates_reference.py``);
for time-varying ones diff-diff's ``xtvar`` convention differs (it also centres the
covariate's own term at cohort x period means).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import SpecificationWarning

from ..errors import EstimationError
from ..inference.covariance import crv1
from ..panel import Panel, _v
from ..results import (
    EstimationResult,
    check_choice,
    check_fit_arguments,
    check_names,
    terms_frame,
)
from ._scale import outcome_scale, scale_equivariant, unit_scale
from .twfe import _cluster_codes, _fixest_k, _ols_design, _prepare, _row_clusters

__all__ = ["ETWFEResult", "fit"]

#: Most cohort x period cells (dense dummy columns of the regression).
_MAX_CELLS = 2_000


@dataclass(frozen=True)
class CellDesign:
    """What another clustering of an ETWFE fit needs, without refitting: the regressors
    (linear: after absorbing the unit and period effects; Poisson: the dense pooled
    design), the weighted residuals ``w_i (y_i - mu_i)`` whose products with the
    regressors are the scores, the bread (``(X' W X)^{-1}``; Poisson: the inverse Fisher
    information ``(X' W diag(mu) X)^{-1}``), the Jacobian ``J`` of the cell effects
    ATT(g,t) in the coefficients, the aggregation matrix ``A`` (terms x cells), the
    fixed-effect codes and rank (linear), and the rows (unit and time)."""

    X: np.ndarray
    wresid: np.ndarray
    bread: np.ndarray
    J: np.ndarray
    A: np.ndarray
    fe: list[np.ndarray]
    fe_rank: int
    rows: pd.DataFrame
    linear: bool

    def rescaled(self, c: float) -> CellDesign:
        """The design for the outcome times ``c``: the linear residuals scale (the
        coefficients do); the Poisson coefficients do not, the level effects' ``J`` does."""
        if self.linear:
            return replace(self, wresid=self.wresid * c)
        return replace(self, J=self.J * c)


@dataclass(frozen=True)
class ETWFEResult(EstimationResult):
    """Result of :func:`fit`; adds the cohort x period effects.

    ``with_inference("cluster", cluster=...)`` re-clusters the kept :class:`CellDesign`
    (one or two ways) without refitting, as pyfixest's ``vcov=`` switch does.

    Attributes
    ----------
    att_gt : pandas.DataFrame
        One row per cell: ``cohort``, ``time``, ``event_time``, ``estimate`` (ATT(g,t);
        levels for Poisson), ``se``, ``coef`` (the regression coefficient tau; the
        log-point effect for Poisson), ``n_obs`` and ``weight`` (its aggregation weight:
        observations or total observation weight).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "att_gt": {"estimate": 1, "se": 1},
        "design": 1,
    }

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    design: CellDesign | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"att_gt": self.att_gt}

    def with_inference(
        self, method: str = "cluster", *, cluster: Any = None, ssc: str | None = None
    ) -> ETWFEResult:
        """The same effects with the CR1 covariance clustered another way.

        Parameters
        ----------
        method : {"cluster"}
            CR1 clustered covariance of the coefficients, one way or two ways (Cameron,
            Gelbach & Miller 2011, :func:`zoneimpact.inference.covariance.crv1`), carried
            to the cells and the aggregated ATTs by the same delta method as :func:`fit`.
        cluster : str, pandas.Series, or a list of two, optional
            A panel or geography column (numeric or string), or labels as a Series indexed
            by unit (or by (unit, time)); None: by unit.
        ssc : {"statsmodels", "fixest"}, optional
            Small-sample ``K`` of the linear model (default: the fit's). The Poisson model
            has its cohort and period effects as regressors, so both conventions count
            every parameter.
        """
        if self.design is None:
            raise EstimationError(
                "This result keeps no ETWFE design (it was not made by etwfe.fit); refit "
                "to change its inference."
            )
        check_choice(method, "method", ("cluster",))
        d = self.design
        # the scale of what the covariance squares: the linear scores, the Poisson level
        # effects' Jacobian (its scores and bread are the fit's, on its working scale)
        c = outcome_scale(d.wresid if d.linear else d.J)
        if c != 1.0:
            # outcomes near the float limits: recluster on the fit's working scale, as
            # fit does, so the squares cannot overflow or underflow (exact: c is a power
            # of two; y x 1e160 gave an SE of 0 one way and NaN two ways)
            # without the covariance, which is recomputed and may not be representable
            # on the other scale (its square overflows)
            small = replace(self, vcov=None).rescaled(1 / c)
            return small.with_inference(method, cluster=cluster, ssc=ssc).rescaled(c)
        codes, cname = _row_clusters(self.panel, d.rows, cluster)
        k = d.X.shape[1]
        info: dict[str, Any] = {**self.info, "se_type": "CR1"}
        if d.linear:
            ssc = str(self.info["ssc"]) if ssc is None else ssc
            check_choice(ssc, "ssc", ("statsmodels", "fixest"))
            big_k = k + d.fe_rank if ssc == "statsmodels" else _fixest_k(k, d.fe, codes)
            info["ssc"] = ssc
        else:
            if ssc is not None:
                check_choice(ssc, "ssc", ("statsmodels", "fixest"))
            big_k = k
        cov, g = crv1(d.X, d.wresid, d.bread, codes, n_params=big_k)
        V_att = d.J @ cov @ d.J.T
        vcov = d.A @ V_att @ d.A.T
        # two-way: a negative variance gives NaN (see covariance.py); one way: rounding
        floor = np.nan if len(codes) == 2 else 0.0
        diag = np.diag(vcov)
        se = np.sqrt(np.where(diag >= 0, diag, floor))
        df_t = float(g - 1) if d.linear else np.inf
        terms = terms_frame(
            list(self.terms["term"]),
            self.terms["estimate"].to_numpy(float),
            se,
            df=np.full(len(se), df_t),
        )
        cell_var = np.diag(V_att)
        att_gt = self.att_gt.assign(se=np.sqrt(np.where(cell_var >= 0, cell_var, floor)))
        info.update(cluster=cname, n_clusters=int(g))
        return replace(self, terms=terms, vcov=vcov, info=info, att_gt=att_gt)


def _cells(data: pd.DataFrame, control_group: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Cells ``(cohort, time)`` with an interaction dummy, and each row's cell (-1: none)."""
    g = data["cohort"].to_numpy(float)
    t = data["time"].to_numpy(np.int64)
    treated = np.isfinite(g)
    if control_group == "not_yet_treated":
        in_cell = treated & (t >= g)
    else:
        in_cell = treated & (t != g - 1)
    keys = pd.DataFrame({"cohort": g[in_cell], "time": t[in_cell]})
    cells = keys.drop_duplicates().sort_values(["cohort", "time"]).reset_index(drop=True)
    code = np.full(len(data), -1, dtype=np.int64)
    idx = pd.MultiIndex.from_frame(cells).get_indexer(pd.MultiIndex.from_frame(keys))
    code[in_cell] = idx
    return cells, code


def _covariate_block(
    data: pd.DataFrame,
    covs: list[str],
    cells: pd.DataFrame,
    code: np.ndarray,
    w: np.ndarray | None,
    *,
    unit_effects: bool = True,
) -> pd.DataFrame:
    """Wooldridge's covariate terms (2021, eq. 6.33; Poisson: 2023, Section 6.2; see
    :func:`fit`'s ``covariates``): each cell dummy times the covariate centred at the
    cell's mean, the covariate times each period dummy but the first, and the covariate
    itself and times each cohort dummy. With unit effects (linear model) a covariate
    constant within units is absorbed with its cohort interactions and left out; without
    them (pooled Poisson, cohort effects) every covariate enters, and a cohort dummy the
    model leaves out (no never-treated units: the first cohort) has no interaction."""
    wobs = np.ones(len(data)) if w is None else w
    # centred at the sample mean: the period, cohort and own terms then span the same
    # space with the effects (x - m times a dummy is x times it less m times the dummy),
    # so no estimate changes, but a covariate far from zero (x + 3e5) no longer makes the
    # Poisson design look collinear or its sandwich lose digits to cancellation
    X = data[covs].to_numpy(float)
    X = X - (wobs @ X) / wobs.sum()
    g = data["cohort"].to_numpy(float)
    t = data["time"].to_numpy(np.int64)
    cols: dict[str, np.ndarray] = {}
    for k, (cg, ct) in enumerate(zip(cells["cohort"], cells["time"], strict=True)):
        m = code == k
        # centred at the cell's own (weighted) mean, so that tau_gt is the cell's average
        # effect; for a time-invariant covariate on a balanced panel that is the cohort mean
        mean = (wobs[m] @ X[m]) / wobs[m].sum()
        for j, name in enumerate(covs):
            col = np.zeros(len(data))
            col[m] = X[m, j] - mean[j]
            cols[f"cell:{int(cg)}:{int(ct)}:x:{name}"] = col
    for s in np.unique(t)[1:]:
        for j, name in enumerate(covs):
            cols[f"time:{int(s)}:x:{name}"] = np.where(t == s, X[:, j], 0.0)
    varies = data.groupby("unit")[covs].nunique().max() > 1
    cohorts = np.unique(g[np.isfinite(g)])
    if not unit_effects and np.isfinite(g).all():
        cohorts = cohorts[1:]
    for j, name in enumerate(covs):
        if unit_effects and not varies[name]:
            continue  # absorbed by the unit effects, as are its cohort interactions
        cols[name] = X[:, j]
        for c in cohorts:
            cols[f"cohort:{int(c)}:x:{name}"] = np.where(g == c, X[:, j], 0.0)
    return pd.DataFrame(cols, index=data.index)


def _aggregations(
    cells: pd.DataFrame, size: np.ndarray, cohort_size: dict[float, float]
) -> tuple[list[str], np.ndarray]:
    """Term names and the matrix ``A`` (terms x cells) of the CS-style aggregations."""
    g = cells["cohort"].to_numpy(float)
    t = cells["time"].to_numpy(np.int64)
    e = (t - g).astype(np.int64)
    post = e >= 0
    rows: list[tuple[str, np.ndarray]] = []

    def share(mask: np.ndarray) -> np.ndarray:
        a = np.where(mask, size, 0.0)
        return a / a.sum()

    rows.append(("att", share(post)))
    events = []
    for ev in np.unique(e):
        rows.append((f"event:{int(ev)}", share(e == ev)))
        if ev >= 0:
            events.append(rows[-1][1])
    rows.append(("event_avg", np.mean(events, axis=0)))
    groups, gw = [], []
    for c in np.unique(g):
        m = post & (g == c)
        if m.any():
            rows.append((f"cohort:{int(c)}", m / m.sum()))
            groups.append(rows[-1][1])
            gw.append(cohort_size[float(c)])
    gwa = np.array(gw) / np.sum(gw)
    rows.append(("cohort_avg", gwa @ np.array(groups)))
    cal = []
    for s in np.unique(t[post]):
        rows.append((f"calendar:{int(s)}", share(post & (t == s))))
        cal.append(rows[-1][1])
    rows.append(("calendar_avg", np.mean(cal, axis=0)))
    return [r[0] for r in rows], np.array([r[1] for r in rows])


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    method: Literal["linear", "poisson"] = "linear",
    control_group: Literal["not_yet_treated", "never_treated"] = "not_yet_treated",
    cluster: str | None = None,
    weights: str | None = None,
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
    covariates: Sequence[str] | None = None,
) -> ETWFEResult:
    """Extended TWFE of Wooldridge (2021; Poisson: 2023); see the module docstring.

    Parameters
    ----------
    panel : Panel
        Staggered-adoption panel (balanced or not; rows with a missing outcome dropped).
        In the linear model the rows of cells whose effect is not identified (units
        treated in every period, a period in which every unit is in a cell) are left out
        with a warning, as the imputation estimator does (``info["n_dropped_unidentified"]``);
        the Poisson model refuses such a design as collinear.
    outcome : str
        Outcome column (non-negative for ``method="poisson"``).
    method : {"linear", "poisson"}
        OLS with unit and period effects, or pooled Poisson QMLE with cohort and period
        effects (effects reported in levels).
    control_group : {"not_yet_treated", "never_treated"}
        Cells for post-treatment periods only (all untreated observations are controls;
        equal to the imputation estimator) or for every period but ``g - 1`` (only never
        treated units are controls; pre-treatment cells give placebo ``event:E``, E < 0).
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"region"``.
    weights : str, optional
        Column of positive observation weights (weighted least squares / weighted QMLE;
        cells are then aggregated by their total weight).
    ssc : {"statsmodels", "fixest"}
        Small-sample ``K`` of the linear model's CR1 factor (as :func:`.twfe.fit`).
    covariates : sequence of str, optional
        Controls, entered as Wooldridge (2021, eq. 6.33; Poisson: 2023, Section 6.2)
        does: each cell dummy times the covariate centred at the cell's mean (so the
        linear cell coefficient stays ATT(g,t); for a time-invariant covariate on a
        balanced panel this is his cohort mean), the covariate times each period dummy,
        and the covariate itself and times each cohort dummy (in the linear model only
        for a covariate that varies within units: a time-invariant one is absorbed by the
        unit effects). The Poisson ATT(g,t) switches off the whole treatment block of
        the cell (its dummy and its covariate interactions), so it does not depend on
        the centring.

    Returns
    -------
    ETWFEResult
        Terms ``att``, ``event:E``, ``event_avg``, ``cohort:G``, ``cohort_avg``,
        ``calendar:T``, ``calendar_avg``; ``att_gt`` with the cell effects; ``vcov`` of the
        terms.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="etwfe")
    check_choice(method, "method", ("linear", "poisson"))
    check_choice(control_group, "control_group", ("not_yet_treated", "never_treated"))
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    covs = check_names(covariates, "covariates")
    data, covs, w = _prepare(panel, outcome, covs, weights)
    cells, code = _checked_cells(data, control_group, outcome)
    n_dropped = 0
    if method == "linear":
        keep = _identified_rows(data, code)
        n_dropped = int((~keep).sum())
        if n_dropped:
            data = data[keep]
            w = None if w is None else w[keep]
            cells, code = _checked_cells(data, control_group, outcome)
    n_cells, size, cohort_size = _cell_sizes(data, cells, code, w)
    names = [f"cell:{int(g)}:{int(t)}" for g, t in zip(cells["cohort"], cells["time"], strict=True)]
    dummies = np.zeros((len(data), len(cells)))
    rows = np.flatnonzero(code >= 0)
    dummies[rows, code[rows]] = 1.0
    reg = pd.DataFrame(dummies, index=data.index, columns=names)
    if covs:
        block = _covariate_block(data, covs, cells, code, w, unit_effects=method == "linear")
        reg = pd.concat([reg, block], axis=1)
    P = len(cells)

    term_names, A = _aggregations(cells, size, cohort_size)
    if method == "linear":
        coef, att, V_att, n_clusters, cname, design = _linear(
            panel, data, outcome, reg, cluster, ssc, w, P
        )
        df_t = float(n_clusters - 1)
        fe_info = "unit + time"
    else:
        coef, att, V_att, n_clusters, cname, design = _poisson(
            panel, data, outcome, reg, code, cluster, w
        )
        df_t = np.inf
        fe_info = "cohort + time (pooled Poisson)"
    design = replace(design, A=A)

    est = A @ att
    vcov = A @ V_att @ A.T
    se = np.sqrt(np.clip(np.diag(vcov), 0, None))
    terms = terms_frame(term_names, est, se, df=np.full(len(term_names), df_t))
    att_gt = _att_gt(cells, att, V_att, coef, n_cells, size)
    return ETWFEResult(
        estimator="etwfe",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=vcov,
        info={
            "method": method,
            "control_group": control_group,
            "cluster": cname,
            "n_clusters": int(n_clusters),
            "fixed_effects": fe_info,
            "ssc": ssc if method == "linear" else "statsmodels GLM: G/(G-1) (N-1)/(N-K)",
            "weights": weights or "",
            "n_cells": len(cells),
            "covariates": ",".join(covs),
            "n_dropped_unidentified": n_dropped,
        },
        alpha=alpha,
        att_gt=att_gt,
        design=design,
        panel=panel,
    )


def _att_gt(
    cells: pd.DataFrame,
    att: np.ndarray,
    V_att: np.ndarray,
    coef: np.ndarray,
    n_cells: np.ndarray,
    size: np.ndarray,
) -> pd.DataFrame:
    """The cell table of the result (see :class:`ETWFEResult`)."""
    return cells.assign(
        cohort=cells["cohort"].astype(np.int64),
        event_time=(cells["time"] - cells["cohort"]).astype(np.int64),
        estimate=att,
        se=np.sqrt(np.clip(np.diag(V_att), 0, None)),
        coef=coef,
        n_obs=n_cells.astype(np.int64),
        weight=size,
    )


def _checked_cells(
    data: pd.DataFrame, control_group: str, outcome: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The cohort x period cells (:func:`_cells`), refused when there are none, too many,
    or never-treated controls are asked for and absent."""
    if control_group == "never_treated" and not np.isinf(data["cohort"]).any():
        raise EstimationError(
            "control_group='never_treated' but no unit is never treated; use "
            "control_group='not_yet_treated'."
        )
    cells, code = _cells(data, control_group)
    if cells.empty:
        raise EstimationError(f"No treated observation of {outcome!r}: no cell to estimate.")
    if len(cells) > _MAX_CELLS:
        raise EstimationError(
            f"{len(cells)} cohort x period cells: beyond this implementation's limit of "
            f"{_MAX_CELLS:,} dense interaction columns. Aggregate the periods or cohorts."
        )
    return cells, code


def _identified_rows(data: pd.DataFrame, code: np.ndarray) -> np.ndarray:
    """Rows to keep: all but those of cells whose coefficient the linear model cannot
    identify, with a warning naming the first (the imputation estimator drops the same
    observations on a balanced panel; Borusyak, Jaravel & Spiess 2024, Assumption 3).

    A cell ``(g, t)`` is not identified when period ``t`` has no untreated row (its
    period effect is the sum of its cells' dummies), or when its units and the cells they
    share form a group with no untreated row of any of them (the sum of those units'
    dummies equals the sum of those cells' dummies; e.g. units treated in every period,
    or a cohort first observed at its adoption). Units linked through a shared cell to a
    unit with an untreated row keep their cells: its row anchors them. Left in, such cells
    are rounding noise that enters every aggregate.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    in_cell = code >= 0
    t = data["time"].to_numpy()
    ucode, units = pd.factorize(data["unit"])
    bad = in_cell & ~np.isin(t, np.unique(t[~in_cell]))
    rows = np.flatnonzero(in_cell & ~bad)
    n_u, n_c = len(units), int(code.max()) + 1
    graph = coo_matrix(
        (np.ones(len(rows)), (ucode[rows], n_u + code[rows])), shape=(n_u + n_c, n_u + n_c)
    )
    _, comp = connected_components(graph, directed=False)
    anchored = np.zeros(n_u + n_c, dtype=bool)
    anchored[np.unique(comp[ucode[~in_cell]])] = True
    bad[rows] = ~anchored[comp[ucode[rows]]]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        warnings.warn(
            f"{int(bad.sum())} unit-period(s) of cohort x period cells have no untreated row of "
            "their unit "
            "(nor of a unit sharing their cohort x period cells), or none in their period; "
            f"first: unit {_v(data['unit'].iloc[i])!r}, period {_v(t[i])!r}, cohort "
            f"{int(data['cohort'].iloc[i])}. Their cells' effects are not identified and "
            "they are left out of every estimate (info['n_dropped_unidentified']).",
            stacklevel=4,  # past fit and its scale wrapper: the caller of fit
        )
    return ~bad


def _cell_sizes(
    data: pd.DataFrame, cells: pd.DataFrame, code: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, dict[float, float]]:
    """Each cell's observations and aggregation weight (observations or their total
    weight), and each cohort's size (units, or the sum of its units' mean weights)."""
    wobs = np.ones(len(data)) if w is None else w
    n_cells = np.bincount(code[code >= 0], minlength=len(cells))
    size = np.bincount(code[code >= 0], weights=wobs[code >= 0], minlength=len(cells))
    ucoh = data.groupby("unit")["cohort"].first()
    if w is None:
        cohort_size = ucoh.value_counts().to_dict()
    else:
        # a cohort's weight: its units' mean weight over their rows, summed
        uw = pd.Series(w, index=data.index).groupby(data["unit"]).mean()
        cohort_size = uw.groupby(ucoh).sum().to_dict()
    return n_cells, size, {float(k): float(v) for k, v in cohort_size.items()}


def _linear(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    reg: pd.DataFrame,
    cluster: str | None,
    ssc: str,
    w: np.ndarray | None,
    n_cells: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, str, CellDesign]:
    """OLS with unit and period effects (the TWFE engine, :func:`.twfe._ols_design`): the
    cell coefficients (= ATT(g,t)), their CR1 covariance, and the :class:`CellDesign`
    (without its aggregation matrix) that re-clusters them."""
    params, cov, n_clusters, cname, reg_design = _ols_design(
        panel, data, outcome, reg, cluster, ("unit", "time"), ssc, w
    )
    coef = params.to_numpy()[:n_cells]
    _, bread, wresid = reg_design.coefficients()
    design = CellDesign(
        X=reg_design.Xd,
        wresid=wresid,
        bread=bread,
        J=np.eye(n_cells, reg_design.Xd.shape[1]),
        A=np.empty((0, n_cells)),
        fe=reg_design.fe,
        fe_rank=reg_design.fe_rank,
        rows=reg_design.rows,
        linear=True,
    )
    return coef, coef.copy(), cov.to_numpy()[:n_cells, :n_cells], n_clusters, cname, design


def _poisson(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    reg: pd.DataFrame,
    code: np.ndarray,
    cluster: str | None,
    w: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, str, CellDesign]:
    """Pooled Poisson QMLE (Wooldridge 2023 eq. 5.3; with covariates Section 6.2) and the
    level effects with their delta-method covariance (see :func:`_level_effects`).

    ``reg`` holds the cell dummies first (``code`` gives each row's cell, -1 none), then
    any covariate terms of :func:`_covariate_block`. The :class:`CellDesign` (without
    its aggregation matrix) keeps the scores and bread of the QMLE sandwich.
    """
    y = data[outcome].to_numpy(float)
    if (y < 0).any():
        i = int(np.flatnonzero(y < 0)[0])
        raise EstimationError(
            f"etwfe with method='poisson' needs a non-negative outcome; {outcome!r} is "
            f"{float(y[i])!r} at unit {_v(data['unit'].iloc[i])!r}, period "
            f"{_v(data['time'].iloc[i])!r}."
        )
    fe = pd.DataFrame(
        {"cohort": data["cohort"].astype(str).to_numpy(), "time": data["time"].astype(str)},
        index=data.index,
    )
    dummies = pd.get_dummies(fe, drop_first=True, dtype=float)
    X = np.column_stack([reg.to_numpy(), np.ones(len(data)), dummies.to_numpy()])
    _check_full_rank(X, list(reg.columns))
    # fitted on the unit scale of the outcome and the weights (see _scale.unit_scale: the
    # GLM's convergence test is absolute); the coefficients do not depend on it, the level
    # effects and their Jacobian are multiplied back by the outcome's scale
    s_y = unit_scale(y)
    y = y / s_y
    w = None if w is None else w / unit_scale(w)
    codes, cname = _cluster_codes(panel, data, cluster)
    n_clusters = int(len(np.unique(codes)))
    if n_clusters < 2:
        raise EstimationError(
            f"Clustered standard errors need at least two clusters of {cname!r}; the sample "
            "has one."
        )
    model = sm.GLM(y, X, family=sm.families.Poisson(), var_weights=w)
    with warnings.catch_warnings():
        # with var_weights the cluster sandwich is the weighted QMLE one (see ppml.py)
        warnings.filterwarnings("ignore", "cov_type not fully supported", SpecificationWarning)
        res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, maxiter=200, tol=1e-12)
    beta = np.asarray(res.params)
    V = np.asarray(res.cov_params())
    if not np.all(np.isfinite(beta)) or not np.all(np.isfinite(np.diag(V))):
        raise EstimationError(
            "etwfe (Poisson) did not give finite coefficients and variances: some cohort x "
            "period cell is all zeros, a covariate is collinear with the effects, or the "
            "design is too small. Use method='linear', drop covariates or aggregate the "
            "periods."
        )
    wobs = np.ones(len(y)) if w is None else w
    att, J = _level_effects(X, beta, code, _treatment_blocks(reg), wobs)
    att, J = att * s_y, J * s_y
    P = len(att)
    mu = np.exp(X @ beta)
    design = CellDesign(
        X=X,
        wresid=wobs * (y - mu),
        bread=np.linalg.inv((X * (wobs * mu)[:, None]).T @ X),
        J=J,
        A=np.empty((0, P)),
        fe=[],
        fe_rank=0,
        rows=data[["unit", "time"]],
        linear=False,
    )
    return beta[:P], att, J @ V @ J.T, n_clusters, cname, design


def _check_full_rank(X: np.ndarray, names: list[str]) -> None:
    """Refuse a collinear Poisson design (statsmodels would return a pseudo-inverse
    solution with meaningless standard errors), e.g. a last period in which every unit is
    treated, so that its cells and its period effect cannot be told apart."""
    scale = np.sqrt(np.einsum("ij,ij->j", X, X))
    Xs = X / np.where(scale > 0, scale, 1.0)
    sv = np.linalg.svd(Xs.T @ Xs, compute_uv=False, hermitian=True)
    # exact collinearity leaves an eigenvalue at rounding level (~1e-16 relative); the
    # threshold keeps legitimate but ill-conditioned designs
    if sv[-1] <= 1e-13 * sv[0]:
        raise EstimationError(
            f"etwfe (Poisson): the design ({len(names)} cell and covariate columns "
            f"{names[:3]}{'...' if len(names) > 3 else ''} with cohort and period effects) is "
            "collinear, e.g. a period in which every unit is treated or a covariate constant "
            "within cohorts; drop that period or covariate, or add never-treated units."
        )


def _treatment_blocks(reg: pd.DataFrame) -> list[np.ndarray]:
    """Columns of each cell's treatment block: its dummy, then its covariate
    interactions (``cell:G:T:x:NAME``)."""
    names = list(reg.columns)
    cells = [n for n in names if n.startswith("cell:") and ":x:" not in n]
    return [
        np.array([k] + [j for j, n in enumerate(names) if n.startswith(f"{c}:x:")], dtype=int)
        for k, c in enumerate(cells)
    ]


def _level_effects(
    X: np.ndarray, beta: np.ndarray, code: np.ndarray, blocks: list[np.ndarray], wobs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ATT(g,t) in levels and its Jacobian in the coefficients (Wooldridge 2023, eq. 5.5):
    the cell's (weighted) mean of ``exp(eta_it) - exp(eta_it - delta_it)``, with
    ``delta_it`` the cell's treatment block (``tau_gt`` plus the covariate interactions
    times the centred covariates). The derivative is ``(mu1 - mu0) x`` for every
    coefficient outside the block and ``mu1 x`` inside it (it enters ``mu1`` only)."""
    eta = X @ beta
    att = np.zeros(len(blocks))
    J = np.zeros((len(blocks), X.shape[1]))
    for c, cols in enumerate(blocks):
        m = code == c
        ww = wobs[m] / wobs[m].sum()
        extra = cols[1:]
        delta = beta[c] + (X[m][:, extra] @ beta[extra] if extra.size else 0.0)
        mu1 = np.exp(eta[m])
        mu0 = np.exp(eta[m] - delta)
        att[c] = ww @ (mu1 - mu0)
        J[c] = ww @ (X[m] * (mu1 - mu0)[:, None])
        for j in cols:
            J[c, j] = ww @ (X[m, j] * mu1)
    return att, J
