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
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..panel import RESERVED, Panel
from ..results import (
    EstimationResult,
    check_fit_arguments,
    check_int,
    check_names,
    terms_frame,
)
from ._fe import TwoWayWithin, absorb, check_cluster, cluster_codes, cluster_ssc_k, factorize
from ._options import renamed
from ._scale import scale_equivariant
from ._weights import check_weight_name, weight_values

__all__ = ["SunAbrahamResult", "fit"]

#: Most interaction cells (plus covariates) of the saturated regression: its dense
#: ``P x P`` Gram matrix is inverted, which takes about a minute at 6,000.
_MAX_PARAMETERS = 5_000


@dataclass(frozen=True)
class SunAbrahamResult(EstimationResult):
    """Result of :func:`fit`; adds the cohort x relative-period effects.

    Attributes
    ----------
    cohort_effects : pandas.DataFrame
        One row per interaction ``(cohort, event)``: ``estimate``, ``se``, ``n_obs`` (cell
        size) and ``weight`` (its IW share within its event time).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {"cohort_effects": {"estimate": 1, "se": 1}}

    cohort_effects: pd.DataFrame = field(default_factory=pd.DataFrame)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"cohort_effects": self.cohort_effects}


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


def _drop_collinear(
    Xd: np.ndarray, X: np.ndarray, names: list[str], tol: float = 1e-9
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop covariates absorbed by the fixed effects (demeaned column ~ 0)."""
    keep: list[int] = []
    dropped: list[int] = []
    for j in range(len(names)):
        scale = max(float(np.abs(X[:, j]).max(initial=0.0)), 1.0)
        (keep if np.abs(Xd[:, j]).max(initial=0.0) > tol * scale else dropped).append(j)
    return Xd[:, keep], [names[j] for j in keep], [names[j] for j in dropped]


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
    if not isinstance(control_group, str) or control_group not in ("never_treated", "last_cohort"):
        raise EstimationError(
            f"control_group={control_group!r} is not valid; use 'never_treated' or 'last_cohort'."
        )
    if not isinstance(window, str) or window not in ("trim", "bin"):
        raise EstimationError(f"window={window!r} is not valid; use 'trim' or 'bin'.")
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
    min_e = check_int(min_e, "min_e", none=True)
    max_e = check_int(max_e, "max_e", none=True)
    if min_e is not None and max_e is not None and min_e > max_e:
        raise EstimationError(f"min_e={min_e} exceeds max_e={max_e}.")
    covs = _covariate_list(panel, covariates)
    check_cluster(cluster)
    weights = check_weight_name(panel, weights)

    cols = ["unit", "time", "cohort", outcome, *covs, *([weights] if weights else [])]
    if cluster is not None and cluster in panel.data.columns and cluster not in cols:
        cols.append(cluster)
    df = panel.data.loc[:, cols]
    complete = df[[outcome, *covs, *([weights] if weights else [])]].notna().all(axis=1).to_numpy()
    if not complete.all():  # a second copy of the frame only when rows must go
        df = df.loc[complete]

    cohort = df["cohort"].to_numpy(float)
    time = df["time"].to_numpy(np.int64)
    if control_group == "never_treated":
        if not np.isinf(cohort).any():
            raise EstimationError(
                "control_group='never_treated' but the panel has no never-treated unit (cohort "
                "column all finite). Use control_group='last_cohort' to take the last-treated "
                "cohort as the control group."
            )
        is_control = np.isinf(cohort)
        last = None
    else:
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

    rel = np.where(is_control, 0, time - np.where(np.isfinite(cohort), cohort, 0)).astype(np.int64)
    if min_e is not None or max_e is not None:
        lo = -np.inf if min_e is None else min_e
        hi = np.inf if max_e is None else max_e
        if window == "trim":
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
    if not any(r < 0 for r in refs):
        raise EstimationError(
            f"ref_period={refs} excludes no pre-treatment period; the saturated regression "
            "is then collinear with the unit effects. Include a negative period (e.g. -1)."
        )

    y = df[outcome].to_numpy(float)
    n = len(y)
    treated_cell = ~is_control & ~np.isin(rel, refs)
    cells, col_of = _cells(cohort, rel, treated_cell)
    if cells.empty:
        raise EstimationError("No treated cohort x relative-period cell to estimate.")
    P = len(cells)
    if P + len(covs) > _MAX_PARAMETERS:
        raise EstimationError(
            f"The saturated Sun-Abraham regression has {P} cohort x relative-period cells "
            f"({cells['cohort'].nunique()} cohorts, event times {int(cells['event'].min())} to "
            f"{int(cells['event'].max())}); it inverts a {P} x {P} matrix, beyond this "
            f"implementation's limit of {_MAX_PARAMETERS:,}. Trim the event window with "
            "min_e/max_e (window='bin' pools the end points) or aggregate the periods."
        )

    unit_codes = factorize(df["unit"].to_numpy())
    time_codes = factorize(time)
    fe = [unit_codes, time_codes]
    if weights is not None:
        wobs = weight_values(df, weights)
        # the observation shares of the IW aggregation become weight shares
        cells["total_weight"] = np.bincount(
            col_of[col_of >= 0], weights=wobs[col_of >= 0], minlength=P
        )
        delta, V_delta, kept_covs, dropped_covs, G, cl_name, K = _weighted_saturated(
            panel, df, y, covs, col_of, cells, fe, wobs, cluster
        )
        return _aggregate(
            panel_args=(outcome, alpha, df, n),
            cells=cells,
            delta=delta,
            V_delta=V_delta,
            G=G,
            info_args=(
                control_group,
                last,
                refs,
                cl_name,
                K,
                kept_covs,
                dropped_covs,
                min_e,
                max_e,
                window,
                weights,
            ),
        )
    # The P interaction dummies are never materialised (n x P would be 2.5 GB at 5M rows):
    # every product they enter is built from unit x cell and period x cell tables.
    tw = TwoWayWithin(unit_codes, time_codes)
    block = tw.onehot(col_of, P)
    # Interaction columns absorbed by the fixed effects make the design singular: that
    # happens only without a valid control group (e.g. every period of a cohort dummied).
    # ||M d_c||^2 = (D'MD)_cc; relative to the cell size, rounding noise is ~1e-16.
    dead = np.flatnonzero(np.diag(block.gram) <= 1e-9 * np.maximum(block.counts, 1.0))
    if dead.size:
        c = cells.iloc[int(dead[0])]
        raise EstimationError(
            f"Cohort {c['cohort']:g}, relative period {int(c['event'])} is collinear with "
            "the fixed effects; exclude more relative periods (ref_period) or trim the "
            "event window (min_e/max_e)."
        )
    yd = tw.residualize(y)
    rows, rcol = block.rows, col_of[block.rows]
    cov_names = list(covs)
    if covs:
        Xc = df[covs].to_numpy(float)
        Xcov, kept_covs, dropped_covs = _drop_collinear(tw.residualize(Xc), Xc, cov_names)
        Xc = Xc[:, [cov_names.index(c) for c in kept_covs]]
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
    if np.linalg.matrix_rank(XtX) < k:
        raise EstimationError(
            "The saturated Sun-Abraham design is rank deficient (collinear covariates or "
            "cells); drop covariates or trim the event window."
        )
    bread = np.linalg.inv(XtX)
    beta = bread @ Xty
    # residuals M(y - D delta - X b): one projection of one column
    resid = tw.residualize(y - tw.expand(block, beta[:P]) - Xc @ beta[P:])

    cl, cl_name = cluster_codes(panel, df, cluster)
    G = int(cl.max()) + 1
    if G < 2:
        raise EstimationError(f"Only one cluster in {cl_name!r}; clustered SEs need >= 2.")
    meat = tw.cluster_meat(block, resid, cl, Xcov)
    K = cluster_ssc_k(k, fe, cl)
    ssc = G / (G - 1) * (n - 1) / (n - K)
    V = ssc * bread @ meat @ bread
    delta, V_delta = beta[:P], V[:P, :P]

    return _aggregate(
        panel_args=(outcome, alpha, df, n),
        cells=cells,
        delta=delta,
        V_delta=V_delta,
        G=G,
        info_args=(
            control_group,
            last,
            refs,
            cl_name,
            K,
            kept_covs,
            dropped_covs,
            min_e,
            max_e,
            window,
            None,
        ),
    )


def _weighted_saturated(
    panel: Panel,
    df: pd.DataFrame,
    y: np.ndarray,
    covs: list[str],
    col_of: np.ndarray,
    cells: pd.DataFrame,
    fe: list[np.ndarray],
    w: np.ndarray,
    cluster: str | None,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], int, str, int]:
    """Weighted saturated regression (eq. 27 by WLS) with dense cell dummies.

    The one-hot tables of :class:`._fe.TwoWayWithin` are unweighted; with weights the P
    cell dummies are formed (P is capped by ``_MAX_PARAMETERS``) and absorbed by the
    weighted within transformation of :func:`._fe.absorb`.
    """
    n, P = len(y), len(cells)
    D = np.zeros((n, P))
    rows = np.flatnonzero(col_of >= 0)
    D[rows, col_of[rows]] = 1.0
    Xc = df[covs].to_numpy(float) if covs else np.empty((n, 0))
    Z, _ = absorb(np.column_stack([y, D, Xc]), fe, weights=w)
    yd, Dd, Xd = Z[:, 0], Z[:, 1 : 1 + P], Z[:, 1 + P :]
    Xcov, kept_covs, dropped_covs = _drop_collinear(Xd, Xc, list(covs))
    X = np.column_stack([Dd, Xcov])
    k = X.shape[1]
    XtX = (X * w[:, None]).T @ X
    if np.linalg.matrix_rank(XtX) < k:
        raise EstimationError(
            "The weighted saturated Sun-Abraham design is rank deficient (collinear "
            "covariates or cells); drop covariates or trim the event window."
        )
    bread = np.linalg.inv(XtX)
    beta = bread @ (X.T @ (w * yd))
    wresid = w * (yd - X @ beta)
    cl, cl_name = cluster_codes(panel, df, cluster)
    G = int(cl.max()) + 1
    if G < 2:
        raise EstimationError(f"Only one cluster in {cl_name!r}; clustered SEs need >= 2.")
    scores = np.stack([np.bincount(cl, x * wresid, G) for x in X.T], axis=1)
    K = cluster_ssc_k(k, fe, cl)
    V = G / (G - 1) * (n - 1) / (n - K) * bread @ (scores.T @ scores) @ bread
    return beta[:P], V[:P, :P], kept_covs, dropped_covs, G, cl_name, K


def _aggregate(
    panel_args: tuple[str, float, pd.DataFrame, int],
    cells: pd.DataFrame,
    delta: np.ndarray,
    V_delta: np.ndarray,
    G: int,
    info_args: tuple[Any, ...],
) -> SunAbrahamResult:
    """IW aggregation (eq. 28-29) of the cell effects into the result."""
    outcome, alpha, df, n = panel_args
    (control, last, refs, cl_name, K, kept_covs, dropped_covs, min_e, max_e, window, weights) = (
        info_args
    )
    P = len(cells)
    # IW weights: observation shares of the cells within each event time (eq. 29), and
    # within the post-treatment cells for fixest's "ATT" aggregate.
    events = np.sort(cells["event"].unique())
    counts = cells["total_weight" if weights else "n_obs"].to_numpy(float)
    ev = cells["event"].to_numpy()
    A = np.zeros((1 + len(events), P))
    post = ev >= 0
    if post.any():
        A[0, post] = counts[post] / counts[post].sum()
    else:
        A[0] = np.nan
    for r, e in enumerate(events, start=1):
        m = ev == e
        A[r, m] = counts[m] / counts[m].sum()
    est = A @ delta
    vcov = A @ V_delta @ A.T if post.any() else None
    if vcov is None:
        sub = A[1:] @ V_delta @ A[1:].T
        vcov = np.full((len(events) + 1, len(events) + 1), np.nan)
        vcov[1:, 1:] = sub
    se = np.sqrt(np.clip(np.diag(vcov), 0, None))
    names = ["att", *[f"event:{int(e)}" for e in events]]
    terms = terms_frame(names, est, se, df=np.full(len(names), G - 1.0))

    cohort_effects = cells.copy()
    cohort_effects["cohort"] = cohort_effects["cohort"].astype(np.int64)
    cohort_effects["estimate"] = delta
    cohort_effects["se"] = np.sqrt(np.clip(np.diag(V_delta), 0, None))
    cohort_effects["weight"] = A[1:].sum(axis=0) if len(events) else np.nan
    keep = ["cohort", "event", "estimate", "se", "n_obs", *(["total_weight"] if weights else [])]
    cohort_effects = cohort_effects[[*keep, "weight"]]

    info = {
        "control_group": control,
        "control_cohort": "never" if last is None else int(last),
        "ref_period": ",".join(str(r) for r in refs),
        "cluster": cl_name,
        "n_clusters": G,
        "fixed_effects": "unit+time",
        "ssc": f"fixest default: G/(G-1)*(n-1)/(n-K), K={K}",
        "vcov_weights": "cell shares treated as fixed (fixest)",
        "att_aggregation": "fixest agg='ATT': post cells weighted by observation counts"
        + (" (total weights)" if weights else ""),
        "covariates": ",".join(kept_covs),
        "dropped_covariates": ",".join(dropped_covs),
        "window": window if (min_e is not None or max_e is not None) else "none",
        "weights": weights or "",
    }
    return SunAbrahamResult(
        estimator="sun_abraham",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(df["unit"].nunique()),
        n_obs=n,
        vcov=vcov,
        info=info,
        alpha=alpha,
        cohort_effects=cohort_effects,
    )
