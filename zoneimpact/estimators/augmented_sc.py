"""Augmented synthetic control with a ridge outcome model (Ben-Michael, Feller & Rothstein
2021, JASA, "The Augmented Synthetic Control Method").

Ridge ASC (Section 4, eq. 11-12): start from SC weights ``gamma_scm`` fitted on the
pre-period outcomes (simplex QP, see :mod:`zoneimpact.estimators._simplex`), then correct
the remaining pre-period imbalance with a ridge regression of the post-period outcomes on
the pre-period outcomes among controls. In weight form (eq. 12, Lemma 2):

    gamma_aug = gamma_scm + (X1 - X0' gamma_scm)' (X0c' X0c + lambda I)^{-1} X0c'

with ``X0`` the controls' pre-period outcomes (``X0c`` centred by their control means, as
R ``augsynth`` does) and ``X1`` the treated unit's. The ATT is the mean post-period gap
``Y1_t - gamma_aug' Y0_t``; the weights may be negative (extrapolation, controlled by
``lambda``).

``lambda_`` is chosen, when not given, by the paper's cross-validation over pre-periods
(Section 4.3; R ``augsynth``'s ``cv_ridge(how = "time", holdout_length = 1)``): each
pre-period ``t = 1, ..., T0 - 1`` is held out in turn, SC and ridge are refitted on the
other pre-periods, and the squared prediction error at ``t`` is recorded. Over the grid
``lambda_max * (1e-8)^(k/20)``, ``k = 0..20``, with ``lambda_max`` the squared largest
singular value of the centred control pre-period outcomes, the largest lambda whose mean
CV error is within one standard error (``sd / sqrt(T0 - 1)``) of the minimum is taken
(``min_1se = TRUE``, the package default). The grid and errors are kept in ``cv``.

Standard error: R ``augsynth``'s ``jackknife_se_single``: every control whose augmented
weight is non-zero at three decimals (and, with several treated units, every treated unit)
is left out in turn, the SC weights are refitted at the chosen lambda, and
``se = sqrt((n-1)/n * sum_i (theta_(i) - mean)^2)`` with ``n`` the number of units in the
panel (treated included, as in the R code); ``result.with_inference("jackknife")`` adds it
to a fit made with ``se=False``. ``result.with_inference("jackknife+")`` gives R
``augsynth``'s jackknife+ intervals over pre-periods (:func:`time_jackknife_plus`).
Conformal inference (Section 5) is :func:`zoneimpact.inference.conformal.conformal_inference`.

Written by hand: no maintained Python package implements ridge ASCM (``pysyncon`` has
ADH synthetic control only), and the simplex QP is shared with the other SC estimators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel
from ..results import (
    EstimationResult,
    check_alpha,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_number,
    terms_frame,
)
from ._sc_common import (
    check_pool_size,
    never_treated,
    outcome_matrix,
    require_donors,
    unit_list,
)
from ._scale import scale_equivariant
from ._simplex import simplex_qp


@dataclass(frozen=True)
class AugmentedSCResult(EstimationResult):
    """Ridge-augmented SC result: ``donor_weights`` (augmented, may be negative),
    ``sc_weights`` (the simplex SC weights), ``gaps`` by period, ``lambda_``, the
    cross-validation table ``cv`` (lambda, mean error, its SE; empty when lambda was
    given), the leave-one-out ATTs behind the jackknife SE, and with
    ``with_inference("jackknife+")`` the ``prediction_intervals`` (``term``,
    ``estimate``, ``low``, ``high``, ``method``; one row per post period and ``att``).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "gaps": 1,
        "lambda_": 2,
        "cv": {"lambda": 2, "cv_error": 2, "cv_se": 2},
        "jackknife_estimates": 1,
        "prediction_intervals": 1,
        "fitted": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {"lambda": 2, "pre_rmspe": 1}

    donor_weights: pd.Series = field(default_factory=pd.Series)
    sc_weights: pd.Series = field(default_factory=pd.Series)
    gaps: pd.Series = field(default_factory=pd.Series)
    lambda_: float = np.nan
    cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    jackknife_estimates: np.ndarray = field(default_factory=lambda: np.array([]))
    prediction_intervals: pd.DataFrame | None = None
    fitted: ASCData | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: str = "jackknife",
        *,
        alpha: float | None = None,
        rng: Any = None,
        n_jobs: int = 1,
    ) -> AugmentedSCResult:
        """The same estimate with another inference, without refitting.

        Parameters
        ----------
        method : {"jackknife", "jackknife+"}
            ``"jackknife"``: R ``augsynth``'s leave-one-unit-out jackknife standard error
            (``fit(se=True)``; module docstring). ``"jackknife+"``: R ``augsynth``'s
            ``time_jackknife_plus`` (``inf_type = "jackknife+"``; the jackknife+ of Barber,
            Candes, Ramdas & Tibshirani 2021 over pre-periods): intervals, no standard
            error (module docstring). The conformal inference of Ben-Michael, Feller &
            Rothstein (2021, Section 5) is
            :func:`zoneimpact.inference.conformal.conformal_inference`
            (``conformal_inference(result, panel)``); it is not offered here because that
            module builds on this one.
        alpha : float, optional
            Level of the jackknife+ intervals, or of the intervals ``conf_int`` and
            ``tidy`` give from the jackknife SE (default: the result's).
        rng, n_jobs
            Unused (both methods are deterministic); accepted for the common interface.

        Returns
        -------
        AugmentedSCResult
            A new result. Jackknife: the ``att`` standard error, ``jackknife_estimates``
            and ``info["n_jackknife"]`` replaced. Jackknife+: ``att`` with se NaN and its
            interval in ``ci_low``/``ci_high`` (read by ``conf_int`` and ``tidy``), and
            ``prediction_intervals`` for every post period and ``att``.
        """
        data = self.fitted
        if data is None:
            raise EstimationError(
                "This result keeps no fitted data (it was not made by augmented_sc.fit); "
                "refit with se=True for the jackknife."
            )
        if method == "conformal":
            raise EstimationError(
                "with_inference('conformal') is not available for augmented SC: call "
                "zoneimpact.inference.conformal.conformal_inference(result, panel)."
            )
        check_choice(method, "method", ("jackknife", "jackknife+"))
        level = check_alpha(self.alpha if alpha is None else alpha)
        terms = self.terms[["term", "estimate", "se"]].copy()
        if method == "jackknife+":
            table = time_jackknife_plus(data, level)
            for col in ("estimate", "low", "high"):
                table[col] = table[col] * data.scale
            if data.scale < 0:  # rescaled by c < 0: the ends swap
                table[["low", "high"]] = table[["high", "low"]].to_numpy()
            att = table.loc[table["term"] == "att"].iloc[0]
            terms = terms.assign(se=np.nan, ci_low=att["low"], ci_high=att["high"])
            return replace(
                self,
                terms=terms,
                alpha=level,
                jackknife_estimates=np.array([]),
                prediction_intervals=table,
                info={
                    **self.info,
                    "se_method": "jackknife+",
                    "n_jackknife": 0,
                    "ci_alpha": level,
                    "intervals_alpha": level,
                },
            )
        jack, se = jackknife(data)
        terms.loc[terms["term"] == "att", "se"] = se * abs(data.scale)
        return replace(
            self,
            terms=terms,
            alpha=level,
            jackknife_estimates=jack * data.scale,
            prediction_intervals=None,
            info={
                **{k: v for k, v in self.info.items() if k not in ("ci_alpha", "intervals_alpha")},
                "se_method": "jackknife",
                "n_jackknife": int(jack.size),
            },
        )

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {
            "donor_weights": pd.DataFrame({"augmented": self.donor_weights, "sc": self.sc_weights})
            .rename_axis("unit")
            .reset_index(),
            "gaps": self.gaps.rename("gap").rename_axis("time").reset_index(),
            "lambda_cv": self.cv,
        }
        if self.prediction_intervals is not None:
            out["prediction_intervals"] = self.prediction_intervals
        return out


def _weights(
    X1: np.ndarray, X0: np.ndarray, lam: float, w_sc: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(gamma_aug, gamma_scm) for pre-period outcomes X1 (T0,), X0 (N0, T0); ``w_sc``, the
    simplex SC weights of the same X1 and X0 (they do not depend on ``lam``), when known."""
    if w_sc is None:
        w_sc, _ = simplex_qp(X0.T, X1)
    mu = X0.mean(axis=0)
    X0c = X0 - mu
    imbalance = (X1 - mu) - X0c.T @ w_sc
    # (X0c' X0c + lam I)^{-1} in T0 x T0 form: gamma adj = X0c (X0c'X0c + lam I)^{-1} imbalance
    T0 = X0.shape[1]
    if lam > 0:
        adj = X0c @ np.linalg.solve(X0c.T @ X0c + lam * np.eye(T0), imbalance)
    else:
        # lambda = 0 is the limit of the ridge: the minimum-norm least-squares adjustment
        # (X0c'X0c is singular once the centred donors span fewer than T0 directions, where
        # a plain solve returned noise: ATT -787.5 for a true 0, a breaker's check)
        adj = X0c @ np.linalg.lstsq(X0c.T @ X0c, imbalance, rcond=None)[0]
    return w_sc + adj, w_sc


#: Largest jackknife, in refits x donors^2 x pre-periods (the size of the Gram matrices of
#: its QPs): 3e10 is some 25 s on one core (524 refits of 3,000 donors took 52 s).
_MAX_JACKKNIFE_WORK = 3e10

#: R augsynth's lambda grid: ``create_lambda_list(lambda_max, 1e-8, 20)``.
LAMBDA_MIN_RATIO = 1e-8
N_LAMBDA = 20


def lambda_grid(X0: np.ndarray) -> np.ndarray:
    """``lambda_max * ratio^(k / n)``, ``k = 0..n``, descending (R ``create_lambda_list``)."""
    X0c = X0 - X0.mean(axis=0)
    s = np.linalg.svd(X0c, compute_uv=False)
    top = float(s[0] ** 2) if s.size and s[0] > 0 else 1.0
    return top * LAMBDA_MIN_RATIO ** (np.arange(N_LAMBDA + 1) / N_LAMBDA)


def cv_errors(X1: np.ndarray, X0: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Squared held-out errors, one row per lambda, one column per held-out pre-period
    ``t = 0, ..., T0 - 2`` (R ``cv_internal``: the last pre-period is never held out).
    """
    T0 = X0.shape[1]
    errs = np.empty((grid.size, T0 - 1))
    for t in range(T0 - 1):
        keep = np.delete(np.arange(T0), t)
        w_sc, _ = simplex_qp(X0[:, keep].T, X1[keep])  # the same for every lambda
        for i, lam in enumerate(grid):
            g, _ = _weights(X1[keep], X0[:, keep], float(lam), w_sc)
            errs[i, t] = (X1[t] - X0[:, t] @ g) ** 2
    return errs


def choose_lambda(grid: np.ndarray, errs: np.ndarray) -> float:
    """The largest lambda whose mean CV error is within one SE of the minimum
    (R ``choose_lambda(min_1se = TRUE)``)."""
    mean = errs.mean(axis=1)
    se = errs.std(axis=1, ddof=1) / np.sqrt(errs.shape[1]) if errs.shape[1] > 1 else 0 * mean
    i0 = int(np.argmin(mean))
    return float(grid[mean <= mean[i0] + se[i0]].max())


def jackknife_values(
    Y: np.ndarray, n_treated: int, pre: np.ndarray, post: np.ndarray, lam: float, w_aug: np.ndarray
) -> np.ndarray:
    """Leave-one-unit-out ATTs of R ``jackknife_se_single`` (rows of ``Y``: treated first)."""
    n = Y.shape[0]
    drop = list(range(n_treated)) if n_treated > 1 else []
    drop += [n_treated + j for j in np.flatnonzero(np.round(w_aug, 3) != 0).tolist()]
    vals = np.empty(len(drop))
    for k, i in enumerate(drop):
        keep = np.delete(np.arange(n), i)
        tr = keep[keep < n_treated]
        co = keep[keep >= n_treated]
        yt = Y[tr].mean(axis=0)
        wi, _ = _weights(yt[pre], Y[co][:, pre], lam)
        vals[k] = float((yt[post] - wi @ Y[co][:, post]).mean())
    return vals


def jackknife_se(vals: np.ndarray, n_units: int) -> float:
    """``sqrt((n-1)/n * sum (v - mean)^2)`` with ``n`` the panel's units (R augsynth)."""
    return float(np.sqrt((n_units - 1) / n_units * np.sum((vals - vals.mean()) ** 2)))


@dataclass(frozen=True)
class ASCData:
    """What :meth:`AugmentedSCResult.with_inference` needs without refitting: the outcome
    matrix (treated rows first), the number of treated units, the period masks, the
    ridge penalty, the augmented weights and the periods, in the units the fit worked in (``scale``: the
    factor to the reported units, see :mod:`zoneimpact.estimators._scale`)."""

    Y: np.ndarray
    n_treated: int
    pre: np.ndarray
    post: np.ndarray
    lam: float
    w_aug: np.ndarray
    periods: np.ndarray
    scale: float = 1.0

    def rescaled(self, factor: float) -> ASCData:
        return replace(self, scale=self.scale * factor)


def _treated_and_start(
    panel: Panel, treated_unit: Any, treatment_start: int | None
) -> tuple[list[Any], int]:
    """The treated unit(s) and their one first treated period."""
    coh = panel.unit_cohort
    if treated_unit is None:
        tr = coh.index[np.isfinite(coh.to_numpy())].tolist()
    else:
        tr = unit_list(panel, treated_unit, "treated_unit", error=EstimationError)
    if not tr:
        raise EstimationError("No treated unit in the panel; pass treated_unit=.")
    if treatment_start is not None:
        return tr, treatment_start
    gs = {float(coh.loc[u]) for u in tr if np.isfinite(coh.loc[u])}
    if len(gs) != 1:
        raise EstimationError(
            f"Treated units {tr} need one common treatment start (found {sorted(gs)}); "
            "pass treatment_start= or choose one cohort."
        )
    return tr, int(gs.pop())


def _donor_pool(panel: Panel, donors: Any, tr: list[Any]) -> list[Any]:
    """The donors (default the never-treated units), the treated ones left out."""
    chosen = (
        never_treated(panel)
        if donors is None
        else unit_list(panel, donors, "donors", error=EstimationError)
    )
    pool = [u for u in chosen if u not in tr]
    require_donors(pool)
    check_pool_size(pool, "Augmented SC")
    return pool


def _require_jackknife_donors(n_donors: int) -> None:
    if n_donors < 3:
        raise EstimationError(
            f"The jackknife standard error of augmented SC needs at least 3 donors; there "
            f"are {n_donors}. Pass se=False for the point estimate alone, or add donors."
        )


def cross_validated_lambda(Xt: np.ndarray, X0: np.ndarray, g: int) -> tuple[float, pd.DataFrame]:
    """The ridge penalty by leave-one-pre-period-out CV with the 1-SE rule (Section 4.3; R
    ``augsynth``'s defaults) and the CV table (lambda, mean error, its SE)."""
    if X0.shape[1] < 3:
        raise EstimationError(
            f"Cross-validating lambda_ needs at least 3 pre-treatment periods before "
            f"{g}; received {int(X0.shape[1])}. Pass lambda_= explicitly."
        )
    grid = lambda_grid(X0)
    errs = cv_errors(Xt, X0, grid)
    cv = pd.DataFrame(
        {
            "lambda": grid,
            "cv_error": errs.mean(axis=1),
            "cv_se": errs.std(axis=1, ddof=1) / np.sqrt(errs.shape[1]),
        }
    )
    return choose_lambda(grid, errs), cv


def jackknife(data: ASCData) -> tuple[np.ndarray, float]:
    """Leave-one-out ATTs and the jackknife SE of R ``augsynth``'s
    ``jackknife_se_single`` (module docstring), with its feasibility checks."""
    n_tr, n_pool, w_aug = data.n_treated, data.Y.shape[0] - data.n_treated, data.w_aug
    _require_jackknife_donors(n_pool)
    refits = int((np.round(w_aug, 3) != 0).sum()) + (n_tr if n_tr > 1 else 0)
    work = float(refits) * n_pool**2 * int(data.pre.sum())
    if work > _MAX_JACKKNIFE_WORK:
        raise EstimationError(
            f"The jackknife standard error refits augmented SC once per donor with a "
            f"non-zero weight: {refits:,} refits of a {n_pool:,}-donor problem, too "
            "long to run here. Pass se=False for the point estimate alone, or restrict "
            "the donor pool."
        )
    jack = jackknife_values(data.Y, n_tr, data.pre, data.post, data.lam, w_aug)
    if jack.size < 2:
        raise EstimationError(
            f"The jackknife standard error of augmented SC leaves out each donor with a "
            f"non-zero weight (and each treated unit), but only {jack.size} such unit(s) "
            "exist here (the weight sits on one donor), so it is undefined. Pass "
            "se=False for the point estimate alone."
        )
    return jack, jackknife_se(jack, n_tr + n_pool)


def time_jackknife_plus(data: ASCData, alpha: float) -> pd.DataFrame:
    """Jackknife+ over pre-periods, as R ``augsynth``'s ``time_jackknife_plus``
    (``conservative = FALSE``; Barber, Candes, Ramdas & Tibshirani 2021, Ann. Statist.).

    Each pre-period ``s`` is held out in turn and the augmented SC refitted on the others
    at the fit's lambda (augsynth pins it); ``e_s`` is the treated outcome at ``s`` minus
    that refit's prediction, and ``m_s(t)`` its counterfactual prediction for each post
    period ``t`` (and their mean, for ``att``). The counterfactual interval is
    ``[q_{alpha/2}(m_s - |e_s|), q_{1-alpha/2}(m_s + |e_s|)]`` over ``s`` (R's default
    sample quantile, numpy's ``linear``), and the effect interval is the treated outcome
    minus it.
    """
    pre_idx, post_idx = np.flatnonzero(data.pre), np.flatnonzero(data.post)
    if pre_idx.size < 2:
        raise EstimationError(
            f"The jackknife+ holds out one pre-treatment period at a time and refits on the "
            f"others: it needs at least 2 pre-treatment periods; there are {pre_idx.size}."
        )
    yt = data.Y[: data.n_treated].mean(axis=0)
    Y0 = data.Y[data.n_treated :]
    preds = np.empty((pre_idx.size, post_idx.size + 1))
    errs = np.empty(pre_idx.size)
    for k, s in enumerate(pre_idx):
        keep = np.delete(pre_idx, k)
        w, _ = _weights(yt[keep], Y0[:, keep], data.lam)
        path = w @ Y0
        preds[k] = np.r_[path[post_idx], path[post_idx].mean()]
        errs[k] = yt[s] - path[s]
    width = np.abs(errs)[:, None]
    cf_low = np.quantile(preds - width, alpha / 2, axis=0)
    cf_high = np.quantile(preds + width, 1 - alpha / 2, axis=0)
    y1 = np.r_[yt[post_idx], yt[post_idx].mean()]
    gaps = yt - data.w_aug @ Y0
    periods = [f"calendar:{t}" for t in data.periods[post_idx]]
    return pd.DataFrame(
        {
            "term": [*periods, "att"],
            "estimate": np.r_[gaps[post_idx], gaps[post_idx].mean()],
            "low": y1 - cf_high,
            "high": y1 - cf_low,
            "method": "jackknife+",
        }
    )


@scale_equivariant(scaled_options={"lambda_": 2})
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    treated_unit: Any = None,
    treatment_start: int | None = None,
    lambda_: float | None = None,
    se: bool = True,
    donors: Sequence[Any] | None = None,
) -> AugmentedSCResult:
    """Ridge augmented synthetic control (Ben-Michael, Feller & Rothstein 2021, eq. 11-12).

    Parameters
    ----------
    panel : Panel
        Balanced over the treated unit(s) and the never-treated donors.
    outcome : str
        Outcome column.
    rng, n_jobs
        Unused (deterministic); accepted for the common interface.
    alpha : float
        Level of the normal confidence interval.
    treated_unit : unit id or list, optional
        Default: the panel's treated units (one cohort; several are averaged).
    treatment_start : int, optional
        First treated period when ``treated_unit`` is not marked in the panel.
    lambda_ : float, optional
        Ridge penalty; default chosen by cross-validation (module docstring).
    se : bool
        Leave-one-control-out jackknife standard error (later, without refitting:
        :meth:`AugmentedSCResult.with_inference`).
    donors : list, optional
        Donor pool; default the never-treated units.

    Returns
    -------
    AugmentedSCResult
        Term ``att``.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="augmented_sc"
    )
    treatment_start = check_int(treatment_start, "treatment_start", none=True)
    lambda_ = check_number(lambda_, "lambda_", minimum=0, none=True)
    se = check_bool(se, "se")
    tr, g = _treated_and_start(panel, treated_unit, treatment_start)
    pool = _donor_pool(panel, donors, tr)
    if se:
        _require_jackknife_donors(len(pool))
    periods = np.asarray(panel.periods)
    pre, post = periods < g, periods >= g
    if pre.sum() < 1 or post.sum() < 1:
        raise EstimationError(f"Need pre- and post-treatment periods around {g}.")
    Y = outcome_matrix(panel, outcome, [*tr, *pool], periods, estimator="Augmented SC")
    # every gap is the treated outcome less a combination of donors with weights summing
    # to one, so a constant leaves it unchanged; subtracting the treated pre-period mean
    # keeps the weights' rounding (their sum is one to ~1e-15) off the outcome's level
    # (Prop 99 + 1e8 moved the ATT by 0.18 with lambda fixed, a breaker's check)
    Y = Y - float(Y.loc[tr].to_numpy(float)[:, pre].mean())
    Yt = Y.loc[tr].to_numpy(float).mean(axis=0)
    Y0 = Y.loc[pool].to_numpy(float)
    cv = pd.DataFrame()
    if lambda_ is None:
        lam, cv = cross_validated_lambda(Yt[pre], Y0[:, pre], g)
    else:
        lam = float(lambda_)
    w_aug, w_sc = _weights(Yt[pre], Y0[:, pre], lam)
    gaps = Yt - w_aug @ Y0
    data = ASCData(Y.loc[[*tr, *pool]].to_numpy(float), len(tr), pre, post, lam, w_aug, periods)
    jack, se_val = jackknife(data) if se else (np.array([]), np.nan)
    idx = pd.Index(pool, name="unit")
    return AugmentedSCResult(
        estimator="augmented_sc",
        outcome=outcome,
        terms=terms_frame(["att"], [float(gaps[post].mean())], [se_val]),
        n_units=len(tr) + len(pool),
        n_obs=int(Y.size),
        info={
            "lambda": lam,
            "treatment_start": g,
            "n_donors": len(pool),
            "pre_rmspe": float(np.sqrt(np.mean(gaps[pre] ** 2))),
            "se_method": "jackknife",
            "n_jackknife": int(jack.size),
        },
        alpha=alpha,
        donor_weights=pd.Series(w_aug, index=idx, name="weight"),
        sc_weights=pd.Series(w_sc, index=idx, name="weight"),
        gaps=pd.Series(gaps, index=pd.Index(periods, name="time"), name="gap"),
        lambda_=lam,
        cv=cv,
        jackknife_estimates=jack,
        fitted=data,
    )
