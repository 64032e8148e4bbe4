"""Synthetic control of Abadie, Diamond & Hainmueller (2010, JASA), with placebo inference.

A treated unit (or the average of a cohort's treated units) is compared with a convex
combination of never-treated donors, ``W`` (ADH 2010, eq. 1-3):

    W(V) = argmin_{W in simplex} (X1 - X0 W)' V (X1 - X0 W)

where ``X1``, ``X0`` are predictors (covariate averages over windows, outcome values in
chosen years), standardised as R ``Synth`` does (each predictor divided by its standard
deviation across the treated unit and the donors), and ``V`` is diagonal, non-negative,
summing to one. ``V`` is chosen by nested optimisation (ADH 2010, Section 2.3; Abadie &
Gardeazabal 2003): it minimises the mean squared prediction error of the outcome over the
pre-treatment fit window, ``MSPE(V) = |Z1 - Z0 W(V)|^2 / T_fit``.

Robustness of the nested search. ``MSPE(V)`` is piecewise smooth with several local
minima (the donor support changes with ``V``), which is why implementations disagree on
Prop 99. As R ``Synth`` does, ``V`` is parametrised as ``|v| / sum|v|`` and searched by
Nelder-Mead from several starts: equal weights, Synth's regression-based start (squared
coefficients of a regression of the fit-window outcomes on the predictors across units),
and ``n_starts`` random Dirichlet(1) starts from ``rng``; each search is restarted once
from its end point (Nelder-Mead stalls on kinks), and the start with the lowest MSPE wins.
The inner QP is solved *exactly* by an active-set method (see
:mod:`zoneimpact.estimators._simplex`) warm-started from the previous support; R Synth's
interior-point ``ipop`` stops at a 5e-4 margin, which makes ``MSPE(V)`` noisy and lets the
outer search stop early.

Inference is by permutation (ADH 2010, Section 4): in-space placebos, post/pre RMSPE ratios
and the rank p-value (:mod:`zoneimpact.inference.placebo`). The ``att`` term is the mean
post-period gap; its ``se`` is NaN (SC has no sampling-based standard error; the
permutation ``p_value`` is the inferential statement and is stored in the result and
``info``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import linprog, minimize

from ..errors import EstimationError, PanelError, SpecError
from ..inference import placebo as plc
from ..panel import RESERVED, Panel, _v
from ..parallel import as_generator, snapshot
from ..results import (
    EstimationResult,
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
from ._simplex import simplex_qp_gram


@dataclass(frozen=True)
class SyntheticControlResult(EstimationResult):
    """ADH synthetic control result.

    Attributes
    ----------
    donor_weights : Series
        W by donor.
    predictor_weights : Series
        Diagonal of V by predictor.
    treated_path, synthetic_path, gaps : Series
        Outcome of the treated unit, of its synthetic control, and their difference, by period.
    balance : DataFrame
        Predictors x (treated, synthetic, donor_mean), in original units.
    placebo_gaps : DataFrame or None
        Periods x units (treated first), when placebos were run.
    rmspe : DataFrame or None
        Unit x (pre_rmspe, post_rmspe, ratio, kept, rank).
    p_value : float
        Permutation p-value of the post/pre RMSPE ratio (NaN without placebos).
    in_time_gaps : Series or None
        Gaps of the in-time placebo (fake treatment date).
    loo_paths : DataFrame or None
        Synthetic paths without each positive-weight donor.
    prediction_intervals : DataFrame or None
        With ``intervals``: one row per post period (``calendar:T``) and ``att`` --
        ``estimate``, ``low``, ``high`` of the effect (SCPI: also ``cf_low``/``cf_high``
        of the counterfactual; conformal: ``p_value`` of no effect) and ``method``.
    """

    SCALE_FREE_TERMS: ClassVar[tuple[str, ...]] = ("weight:*",)
    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "treated_path": 1,
        "synthetic_path": 1,
        "gaps": 1,
        "placebo_gaps": 1,
        "rmspe": {"pre_rmspe": 1, "post_rmspe": 1},
        "in_time_gaps": 1,
        "loo_paths": 1,
        "prediction_intervals": {"*": 1, "p_value": 0},
        "fitted": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {"pre_rmspe": 1, "post_rmspe": 1, "fit_mspe": 2}

    donor_weights: pd.Series = field(default_factory=pd.Series)
    predictor_weights: pd.Series = field(default_factory=pd.Series)
    treated_path: pd.Series = field(default_factory=pd.Series)
    synthetic_path: pd.Series = field(default_factory=pd.Series)
    gaps: pd.Series = field(default_factory=pd.Series)
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    placebo_gaps: pd.DataFrame | None = None
    rmspe: pd.DataFrame | None = None
    p_value: float = np.nan
    in_time_gaps: pd.Series | None = None
    loo_paths: pd.DataFrame | None = None
    prediction_intervals: pd.DataFrame | None = None
    fitted: SCData | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: str,
        *,
        rng: np.random.Generator | int | None = None,
        n_jobs: int = 1,
        placebo_starts: int | None = None,
        drop_ratio: float | None = None,
    ) -> SyntheticControlResult:
        """The same synthetic control with another inference, without refitting it.

        Parameters
        ----------
        method : {"placebo", "scpi", "conformal"}
            ``"placebo"``: in-space placebos, RMSPE ratios and the permutation p-value
            (ADH 2010, Section 4; ``fit(placebos=True)``). ``"scpi"`` / ``"conformal"``:
            prediction intervals (``fit(intervals=...)``). ADH synthetic control has no
            jackknife or bootstrap variance: those are R ``synthdid``'s ``vcov`` of its
            SC estimate, :func:`zoneimpact.estimators.synthetic_did.fit` with
            ``method="sc"`` and its ``with_inference``.
        rng : numpy.random.Generator or int, optional
            The generator or seed as ``fit`` takes it (the placebos draw from the same
            child generator as ``fit``'s, so the same seed gives the same placebos).
            Default: replays the fit's generator.
        n_jobs : int
            Workers for the placebos (the result does not depend on it).
        placebo_starts, drop_ratio : optional
            Placebo search and pre-fit filter (default: the fit's).

        Returns
        -------
        SyntheticControlResult
            A new result with ``placebo_gaps``, ``rmspe`` and ``p_value`` (placebo) or
            ``prediction_intervals`` replaced.
        """
        data = self.fitted
        if data is None:
            raise EstimationError(
                "This result keeps no fitted data (it was not made by synthetic_control.fit); "
                "refit to change its inference."
            )
        if method in ("jackknife", "bootstrap"):
            raise EstimationError(
                f"ADH synthetic control has no {method} variance (ADH 2010 infer by "
                "placebos); use with_inference('placebo'), or the synthetic-control special "
                "case of synthetic_did (method='sc'), whose with_inference offers R synthdid's "
                "placebo, bootstrap and jackknife."
            )
        check_choice(method, "method", ("placebo", *_INTERVALS))
        if check_int(n_jobs, "n_jobs") == 0:
            raise SpecError("n_jobs must be a whole number >= 1, or -1 for every core; received 0.")
        child = (snapshot(data.rng) if rng is None else as_generator(rng)).spawn(5)
        # the fit worked on the outcome divided by data.scale (a power of two: exact)
        base = self if data.scale == 1.0 else self.rescaled(1.0 / data.scale)
        if method == "placebo":
            out = base._with_placebos(data, placebo_starts, drop_ratio, child[1], n_jobs)
        else:
            out = _with_intervals(base, data.panel, method, child[4])
        return out if data.scale == 1.0 else out.rescaled(data.scale)

    def _with_placebos(
        self,
        data: SCData,
        placebo_starts: int | None,
        drop_ratio: float | None,
        rng: np.random.Generator,
        n_jobs: int,
    ) -> SyntheticControlResult:
        if len(data.pool) < 2:
            raise EstimationError(
                f"In-space placebos need at least 2 donors (each placebo unit is fitted on "
                f"the others); this fit has {len(data.pool)}."
            )
        data = replace(
            data,
            placebo_starts=data.placebo_starts
            if placebo_starts is None
            else check_int(placebo_starts, "placebo_starts", minimum=0),
            drop_ratio=data.drop_ratio
            if drop_ratio is None
            else check_number(drop_ratio, "drop_ratio", positive=True),
        )
        gaps, rmspe, p_value = _in_space_placebos(data, self.gaps, rng, n_jobs)
        return replace(
            self,
            placebo_gaps=gaps,
            rmspe=rmspe,
            p_value=p_value,
            info={**self.info, "p_value": p_value},
        )

    def rescaled(self, factor: float) -> Self:
        """As :meth:`EstimationResult.rescaled`; predictors built from the outcome (named
        ``outcome[...]``) scale in ``balance``, covariate predictors do not."""
        out = super().rescaled(factor)
        bal = self.balance.copy()
        rows = bal.index.astype(str).str.startswith(f"{self.outcome}[")
        num = [c for c in bal.columns if pd.api.types.is_float_dtype(bal[c].dtype)]
        bal.loc[rows, num] = bal.loc[rows, num] * float(factor)
        return replace(out, balance=bal)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {
            "donor_weights": self.donor_weights.rename("weight").rename_axis("unit").reset_index(),
            "predictor_weights": self.predictor_weights.rename("v")
            .rename_axis("predictor")
            .reset_index(),
            "gaps": pd.DataFrame(
                {"treated": self.treated_path, "synthetic": self.synthetic_path, "gap": self.gaps}
            )
            .rename_axis("time")
            .reset_index(),
            "balance": self.balance.rename_axis("predictor").reset_index(),
        }
        if self.placebo_gaps is not None:
            out["placebo_gaps"] = self.placebo_gaps.rename_axis("time").reset_index()
        if self.rmspe is not None:
            out["rmspe"] = self.rmspe.reset_index()
        if self.in_time_gaps is not None:
            out["in_time_gaps"] = self.in_time_gaps.rename("gap").rename_axis("time").reset_index()
        if self.loo_paths is not None:
            out["leave_one_out"] = self.loo_paths.rename_axis("time").reset_index()
        if self.prediction_intervals is not None:
            out["prediction_intervals"] = self.prediction_intervals
        return out


# ---------------------------------------------------------------------------- options
_INTERVALS = ("scpi", "conformal")


def _window(value: Any, name: str) -> tuple[int, int]:
    """``[first, last]``: two whole periods with ``first <= last``."""
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray) or len(value) != 2:
        raise SpecError(f"{name} must be [first, last] (two periods); received {value!r}.")
    a, b = (check_int(x, name) for x in value)
    if a > b:
        raise SpecError(f"{name} [{a}, {b}] is reversed: first must not exceed last.")
    return a, b


# ---------------------------------------------------------------------------- predictors
def _predictor_table(
    panel: Panel,
    outcome: str,
    predictors: Sequence[dict[str, Any]] | None,
    units: Sequence[Any],
    pre_periods: np.ndarray,
) -> pd.DataFrame:
    """Predictors x units, raw values (means over the listed periods, NaN ignored as in
    R Synth's ``na.rm = TRUE``).
    """
    if predictors is None:
        # Outcome in every pre-period: W then directly fits the pre-period path.
        predictors = [{"variable": outcome, "years": [int(t)]} for t in pre_periods]
    rows, names = [], []
    for k, spec in enumerate(predictors):
        name, values = _predictor_row(panel, k, spec, units, pre_periods)
        rows.append(values)
        names.append(name)
    if not rows:
        raise SpecError(
            "predictors is empty: list at least one {variable = 'x', window = [a, b]}, or "
            "leave predictors out to match every pre-period outcome."
        )
    return pd.DataFrame(
        np.vstack(rows),
        index=pd.Index(names, name="predictor"),
        columns=pd.Index(list(units), name="unit"),
    )


def _predictor_variable(panel: Panel, k: int, spec: Any) -> str:
    """The checked variable of predictor #k (a panel outcome or covariate)."""
    if not isinstance(spec, dict) or "variable" not in spec:
        raise SpecError(
            f"Predictor #{k} must be a table like {{variable = 'x', window = [1980, 1988]}} "
            f"or {{variable = 'x', years = [1975]}}; received {spec!r}."
        )
    unknown = set(spec) - {"variable", "window", "years", "op", "name"}
    if unknown:
        raise SpecError(f"Predictor #{k} has unknown key(s) {sorted(unknown)}.")
    var = spec["variable"]
    if not isinstance(var, str) or var not in panel.data.columns or var in RESERVED:
        raise SpecError(
            f"Predictor variable {var!r} is not in the panel; outcomes {list(panel.outcomes)}, "
            f"covariates {list(panel.covariates)}. Add it to [data] covariates."
        )
    return var


def _predictor_years(
    panel: Panel, k: int, spec: dict[str, Any], var: str, pre_periods: np.ndarray
) -> tuple[list[Any], str]:
    """Periods averaged by predictor #k (its window, its years, or every pre-period) and
    its label."""
    if "window" in spec and "years" in spec:
        raise SpecError(f"Predictor #{k} ({var}): give either window or years, not both.")
    if "window" in spec:
        a, b = _window(spec["window"], f"Predictor #{k} ({var}) window")
        return [t for t in panel.periods if a <= t <= b], f"{var}[{a}-{b}]"
    if "years" not in spec:
        return list(pre_periods), f"{var}[pre]"
    ys = spec["years"]
    if isinstance(ys, str) or not isinstance(ys, Sequence | np.ndarray) or len(ys) == 0:
        raise SpecError(
            f"Predictor #{k} ({var}) years must be a non-empty list of periods; received {ys!r}."
        )
    years = [check_int(y, f"Predictor #{k} ({var}) years") for y in ys]
    return years, f"{var}[{','.join(str(y) for y in years)}]"


def _predictor_row(
    panel: Panel, k: int, spec: Any, units: Sequence[Any], pre_periods: np.ndarray
) -> tuple[str, np.ndarray]:
    """Name and values by unit of predictor #k: the mean (or median) of its variable over
    its periods."""
    var = _predictor_variable(panel, k, spec)
    years, label = _predictor_years(panel, k, spec, var, pre_periods)
    late = [_v(y) for y in years if len(pre_periods) and y > max(pre_periods)]
    if late:
        # R Synth allows it, but the effect then enters the matching and is partly absorbed
        # (a true 5 read 0.07 with years=[18] past a start of 14; a breaker's check)
        warnings.warn(
            f"Predictor {label} averages period(s) {late} from the treatment start on, so the "
            "effect enters the matching and the weights absorb part of it; use pre-treatment "
            "periods only.",
            stacklevel=6,  # _predictor_table, _problem, fit, its scale wrapper: the caller
        )
    op = spec.get("op", "mean")
    if not isinstance(op, str) or op not in ("mean", "median"):
        raise SpecError(f"Predictor {label}: op must be 'mean' or 'median'; received {op!r}.")
    data = panel.data
    sub = data.loc[data["time"].isin(years) & data["unit"].isin(units), ["unit", var]]
    agg = sub.groupby("unit")[var].agg(op).reindex(units)
    if agg.isna().any():
        u = agg.index[agg.isna().to_numpy()][0]
        raise PanelError(
            f"Predictor {label}: unit {_v(u)!r} has no non-missing value of {var!r} in "
            f"periods {years}. Change the window or drop the unit."
        )
    return spec.get("name", label), agg.to_numpy(float)


# ---------------------------------------------------------------------------- core
@dataclass
class _Fit:
    w: np.ndarray
    v: np.ndarray
    loss: float


def _standardise(X1: np.ndarray, X0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each predictor by its sd across treated and donors (R Synth ``divisor``)."""
    allx = np.column_stack([X1, X0])
    sd = allx.std(axis=1, ddof=1)
    sd = np.where(sd > 0, sd, 1.0)
    return X1 / sd, X0 / sd[:, None]


def _regression_start(X1s, X0s, Z1, Z0) -> np.ndarray | None:
    """R Synth's second start: squared coefficients of the fit-window outcomes regressed
    on the (standardised) predictors across units, normalised.
    """
    Xall = np.column_stack([X1s, X0s]).T
    Xall = np.column_stack([np.ones(len(Xall)), Xall])
    Zall = np.column_stack([Z1, Z0]).T
    try:
        beta = np.linalg.solve(Xall.T @ Xall, Xall.T @ Zall)
    except np.linalg.LinAlgError:
        return None
    beta = beta[1:]
    d = np.einsum("ij,ij->i", beta, beta)
    if not np.all(np.isfinite(d)) or d.sum() <= 0:
        return None
    return d / d.sum()


def synth_weights(
    X1: np.ndarray,
    X0: np.ndarray,
    Z1: np.ndarray,
    Z0: np.ndarray,
    *,
    v: str | Sequence[float] = "nested",
    n_starts: int = 4,
    n_screen: int = 40,
    v_min: float = 1e-4,
    n_polish: int = 2,
    rng: np.random.Generator | None = None,
) -> _Fit:
    """Donor weights W and predictor weights V (ADH 2010, eq. 2-3 and Section 2.3).

    Parameters
    ----------
    X1 : ndarray (k,)
        Treated predictors (raw; standardised here as R Synth does).
    X0 : ndarray (k, J)
        Donor predictors.
    Z1 : ndarray (T_fit,), Z0 : ndarray (T_fit, J)
        Outcomes over the fit window (for the nested V criterion).
    v : {"nested", "optimistic", "inverse_variance", "equal"} or sequence of float
        ``"nested"`` minimises the fit-window MSPE over V (V bounded away from zero by
        ``v_min``); ``"optimistic"`` also searches the boundary where V puts all its weight
        on one predictor and ``W(V)`` is not unique, taking the tied ``W`` with the best
        fit (the optimistic bilevel solution of Malo et al. 2024; it reaches lower
        pre-period MSPE but lets the predictors matter little); ``"inverse_variance"`` /
        ``"equal"`` use V = I on standardised predictors (inverse variance of the raw
        ones); a list gives V.
    n_starts : int
        Local searches, from the best screened candidates.
    n_screen : int
        Random Dirichlet candidates screened besides the equal and regression-based ones.
    v_min : float
        Lower bound of every predictor weight (V sums to one). With a zero weight, W(V) is
        not unique once the remaining predictors can be matched exactly, and MSPE(V) then
        reflects which of the tied solutions the QP solver returns (Kloessner, Kaul,
        Pfeifer & Schieler 2018, Swiss J. Econ. Stat.); the bound keeps the problem
        well posed.
    n_polish : int
        Best local-search end points polished by Nelder-Mead and BFGS again.
    rng : Generator
        For the random candidates.

    Notes
    -----
    On a fixed support P the QP solution solves the KKT system
    ``[H_PP 1; 1' 0][w_P; mu] = [c_P; 1]`` with ``H = X0' V X0`` and ``c = X0' V X1``, so
    W(V) is differentiable there and, by implicit differentiation,
    ``dMSPE/dv_k = r_k (X0_kP s_P)`` with ``r = X1 - X0 w`` and ``s`` solving the same KKT
    system with right-hand side ``[dMSPE/dw_P; 0]``. The search runs BFGS on softmax
    coordinates of V (scale-free, so weights spanning orders of magnitude are reachable)
    with this exact gradient, from the best screened candidates.
    """
    # each predictor and fit-window period less the treated unit's value: exact, since the
    # weights sum to one (and the regression start has an intercept), and it keeps the
    # Gram matrices at the donors' spread, not the level (Prop 99 + 1e7 moved ADH by 6.7;
    # lnincome + 1e5 moved it by 1.5, a breaker's check, session 20)
    X1r, X0r = np.asarray(X1, float), np.asarray(X0, float)
    X0r, X1r = X0r - X1r[:, None], np.zeros_like(X1r)
    X1s, X0s = _standardise(X1r, X0r)
    Z1 = np.asarray(Z1, float)
    Z0 = np.asarray(Z0, float)
    Z0, Z1 = Z0 - Z1[:, None], np.zeros_like(Z1)
    prob = _NestedV(X1s, X0s, Z1, Z0, v_min)
    vv = _closed_form_v(v, X1r, X0r, Z1, Z0)
    if vv is not None:
        return prob.fit(vv)
    thetas = _v_candidates(prob, n_screen, as_generator(rng))
    vv = _search_v(prob, thetas, n_starts, n_polish)
    return _tied_optimum(prob, vv, v == "optimistic")


class _NestedV:
    """The nested problem of one treated unit (ADH 2010, Section 2.3) on standardised
    predictors: ``W(V)`` by the exact simplex QP (warm-started from the last support),
    the fit-window ``MSPE(W)``, and its exact gradient in softmax coordinates of V
    (:func:`synth_weights`, Notes). V is kept ``>= floor`` on every predictor."""

    def __init__(
        self, X1s: np.ndarray, X0s: np.ndarray, Z1: np.ndarray, Z0: np.ndarray, v_min: float
    ) -> None:
        self.X1s, self.X0s, self.Z1, self.Z0 = X1s, X0s, Z1, Z0
        self.k = X0s.shape[0]
        self.T = len(Z1)
        self.support: np.ndarray | None = None
        self.ZtZ0 = Z0.T @ Z0  # J x J, reused by every gradient
        self.Z0tZ1 = Z0.T @ Z1
        self.floor = min(float(v_min), 0.5 / self.k)
        self.scale = 1.0 - self.k * self.floor

    def weights(self, vv: np.ndarray) -> np.ndarray:
        """``W(V) = argmin_simplex (X1 - X0 W)' V (X1 - X0 W)`` (ADH 2010, eq. 2)."""
        H = (self.X0s.T * vv) @ self.X0s
        c = self.X0s.T @ (vv * self.X1s)
        w, self.support = simplex_qp_gram(H, c, support=self.support)
        return w

    def mspe(self, w: np.ndarray) -> float:
        e = self.Z1 - self.Z0 @ w
        return float(e @ e) / self.T

    def fit(self, vv: np.ndarray) -> _Fit:
        w = self.weights(vv)
        return _Fit(w, vv, self.mspe(w))

    def to_v(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(theta - theta.max())
        sm = e / e.sum()
        return self.floor + self.scale * sm, sm

    def to_theta(self, vv: np.ndarray) -> np.ndarray:
        u = np.maximum((np.asarray(vv, float) / np.sum(vv) - self.floor) / self.scale, 1e-12)
        return np.log(u)

    def loss(self, theta: np.ndarray) -> float:
        return self.loss_grad(theta)[0]

    def loss_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``MSPE(W(V(theta)))`` and its gradient by implicit differentiation of the KKT
        system on the current support."""
        vv, sm = self.to_v(theta)
        w = self.weights(vv)
        P = np.flatnonzero(w > 0)
        val = self.mspe(w)
        # dMSPE/dw = -2/T Z0'(Z1 - Z0 w)
        gw = (2.0 / self.T) * (self.ZtZ0[P] @ w - self.Z0tZ1[P])
        p = len(P)
        A = self.X0s[:, P]
        Kt = np.ones((p + 1, p + 1))
        Kt[:p, :p] = (A.T * vv) @ A
        Kt[p, p] = 0.0
        rhs = np.append(gw, 0.0)
        sol = np.linalg.lstsq(Kt, rhs, rcond=None)[0]
        r = self.X1s - self.X0s @ w
        g_v = r * (A @ sol[:p])
        g_theta = self.scale * (sm * g_v - sm * float(sm @ g_v))
        return val, g_theta


def _closed_form_v(
    v: str | Sequence[float], X1: np.ndarray, X0: np.ndarray, Z1: np.ndarray, Z0: np.ndarray
) -> np.ndarray | None:
    """V when no search is needed: given, equal (inverse variance of the raw predictors),
    a single predictor, or predictors that are the fit-window outcomes themselves; None
    for the nested search."""
    k = X0.shape[0]
    if isinstance(v, str):
        if v in ("inverse_variance", "equal"):
            return np.full(k, 1.0 / k)
        if v not in ("nested", "optimistic"):
            raise SpecError(
                f"v must be 'nested', 'optimistic', 'inverse_variance', 'equal' or a list of "
                f"{k} weights; "
                f"received {v!r}."
            )
    else:
        vv = np.asarray(v, float)
        if vv.shape != (k,) or np.any(vv < 0) or vv.sum() <= 0:
            raise SpecError(f"v must list {k} non-negative predictor weights; received {list(v)}.")
        return vv / vv.sum()
    if k == 1:
        return np.ones(1)
    if X0.shape == Z0.shape and np.array_equal(X0, Z0) and np.array_equal(X1, Z1):
        # The predictors are the fit-window outcomes themselves: MSPE(W(V)) is bounded
        # below by min_W MSPE(W), and V proportional to each predictor's variance attains
        # it (undoing the standardisation makes the inner problem the outer one). The
        # nested problem is solved exactly, with no search.
        sd = np.column_stack([X1, X0]).std(axis=1, ddof=1)
        vv = np.where(sd > 0, sd, 1.0) ** 2
        return vv / vv.sum()
    return None


def _v_candidates(prob: _NestedV, n_screen: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Starting V in softmax coordinates: R Synth's deterministic starts (equal,
    regression-based) and random Dirichlet draws, half of them sparse (alpha = 0.2), since
    MSPE(V) is often smallest where few predictors carry most of the weight."""
    k = prob.k
    cands = [np.full(k, 1.0 / k)]
    reg = _regression_start(prob.X1s, prob.X0s, prob.Z1, prob.Z0)
    if reg is not None:
        cands.append(reg)
    n_screen = max(int(n_screen), 0)
    if n_screen:
        half = n_screen // 2
        cands.extend(rng.dirichlet(np.ones(k), size=n_screen - half))
        cands.extend(rng.dirichlet(np.full(k, 0.2), size=half))
    return [prob.to_theta(c_) for c_ in cands]


def _search_v(prob: _NestedV, thetas: list[np.ndarray], n_starts: int, n_polish: int) -> np.ndarray:
    """The V of the lowest MSPE: BFGS with the exact gradient from the best screened
    candidates; the best end points polished by Nelder-Mead (which steps across the kinks
    where the donor support changes and BFGS stops) and BFGS again."""
    vals = np.array([prob.loss_grad(t_)[0] for t_ in thetas])
    order = np.argsort(vals, kind="stable")
    best_theta, best_val = thetas[int(order[0])], float(vals[order[0]])
    bfgs = {"maxiter": 100, "gtol": 1e-8}
    ends = []
    for idx in order[: max(int(n_starts), 1)]:
        res = minimize(prob.loss_grad, thetas[int(idx)], jac=True, method="BFGS", options=bfgs)
        ends.append((float(res.fun), res.x))
    ends.sort(key=lambda e: e[0])
    for val0, th0 in ends[:n_polish]:
        nm = minimize(
            prob.loss,
            th0,
            method="Nelder-Mead",
            options={
                "maxfev": 40 * prob.k,
                "xatol": 1e-6,
                "fatol": 1e-10,
                "initial_simplex": np.vstack([th0, th0 + 0.5 * np.eye(prob.k)]),
            },
        )
        res = minimize(prob.loss_grad, nm.x, jac=True, method="BFGS", options=bfgs)
        for val, th in ((val0, th0), (float(nm.fun), nm.x), (float(res.fun), res.x)):
            if val < best_val:
                best_val, best_theta = val, th
    return prob.to_v(best_theta)[0]


def _tied_optimum(prob: _NestedV, vv: np.ndarray, optimistic: bool) -> _Fit:
    """``W(V)`` at the searched V, replaced by the best tied inner optimum where ``W(V)``
    is not unique: an exact predictor match (every V), or with ``optimistic`` a match of
    one predictor (V on the boundary; Malo et al. 2024)."""
    prob.support = None
    w = prob.weights(vv)
    args = (prob.X1s, prob.X0s, prob.Z1, prob.Z0)
    exact = _exact_match_weights(*args)
    if exact is not None and prob.mspe(exact) < prob.mspe(w):
        # Every V shares the inner optima {W : X0 W = X1} here, so the optimistic bilevel
        # solution is the best of them (its V is immaterial; the searched one is kept).
        w = exact
    if optimistic:
        for j, wj in _single_match_weights(*args):
            if prob.mspe(wj) < prob.mspe(w):
                w, vv = wj, np.eye(prob.k)[j]
    return _Fit(w, vv, prob.mspe(w))


def _single_match_weights(
    X1s: np.ndarray, X0s: np.ndarray, Z1: np.ndarray, Z0: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """Optimistic bilevel candidates on the boundary of the V simplex (``v="optimistic"``).

    With all of V on predictor ``j`` the inner optima are every ``W`` on the simplex with
    ``X0_j W = X1_j``; the optimistic choice among them minimises the pre-period MSPE
    (Malo et al. 2024). Any V whose support admits an exact match has a smaller optimal
    set, so these single-predictor candidates bound the optimistic problem's boundary
    from below. One candidate per predictor the donors bracket; penalised simplex QP as
    in :func:`_exact_match_weights`.
    """
    H = Z0.T @ Z0
    c = Z0.T @ Z1
    out = []
    for j in range(X0s.shape[0]):
        a = X0s[j]
        if not a.min() <= X1s[j] <= a.max() or not (a @ a) > 0:
            continue
        rho = 1e6 * max(np.trace(H), 1e-12) / float(a @ a)
        w, _ = simplex_qp_gram(H + rho * np.outer(a, a), c + rho * a * X1s[j])
        out.append((j, w))
    return out


def _exact_match_weights(
    X1s: np.ndarray, X0s: np.ndarray, Z1: np.ndarray, Z0: np.ndarray
) -> np.ndarray | None:
    """Optimistic bilevel solution when the predictors can be matched exactly.

    If ``X1`` lies in the convex hull of the donors' predictors, ``W(V)`` is not unique:
    for every ``V`` the inner optima are all ``W`` on the simplex with ``X0 W = X1``, and
    the nested criterion depends on which of them is taken. The optimistic bilevel
    problem (Malo, Eskelinen, Zhou & Kuosmanen 2024, "Computing synthetic controls using
    bilevel optimization", Computational Economics 64) takes the one with the smallest
    pre-period MSPE: ``min |Z1 - Z0 W|^2`` on the simplex subject to ``X0 W = X1``.
    Returns None when no exact match exists (then ``W(V)`` is unique in ``X0 W`` and the
    V search decides). Solved as a simplex QP with a heavy penalty on the predictor
    mismatch, then made exact on the support from the KKT system of the equality-
    constrained problem.
    """
    k, J = X0s.shape
    lp = linprog(
        np.zeros(J),
        A_eq=np.vstack([X0s, np.ones(J)]),
        b_eq=np.r_[X1s, 1.0],
        bounds=[(0, None)] * J,
        method="highs",
    )
    if lp.status != 0:
        return None
    H = Z0.T @ Z0
    c = Z0.T @ Z1
    G = X0s.T @ X0s
    rho = 1e6 * max(np.trace(H), 1e-12) / max(np.trace(G), 1e-12)
    w, _ = simplex_qp_gram(H + rho * G, c + rho * (X0s.T @ X1s))
    P = np.flatnonzero(w > 0)
    A = np.vstack([X0s[:, P], np.ones(len(P))])
    p, m = len(P), A.shape[0]
    K = np.zeros((p + m, p + m))
    K[:p, :p] = H[np.ix_(P, P)]
    K[:p, p:] = A.T
    K[p:, :p] = A
    sol = np.linalg.lstsq(K, np.r_[c[P], X1s, 1.0], rcond=None)[0]
    wp = sol[:p]
    if np.all(wp >= 0) and np.allclose(A @ wp, np.r_[X1s, 1.0], atol=1e-10):
        w = np.zeros(J)
        w[P] = wp
    return w


@dataclass
class _Problem:
    """Everything needed to fit any unit of the pool as treated (placebos reuse it)."""

    Y: pd.DataFrame  # units x periods (outcome)
    X: pd.DataFrame  # predictors x units (raw)
    fit_mask: np.ndarray  # periods in the fit window
    pre_mask: np.ndarray  # periods before treatment
    post_mask: np.ndarray
    v: Any
    n_starts: int
    n_polish: int = 2


@dataclass(frozen=True)
class SCData:
    """What :meth:`SyntheticControlResult.with_inference` needs without refitting: the
    problem (outcomes, predictors, windows, V rule), the treated unit(s) and the donor
    pool, the fit's settings, a snapshot of its generator (before any draw), and the
    panel (for SCPI and conformal intervals) with the fit's outcome, predictors, fit
    window and treatment date ``g``, in the units the fit worked in (``scale``:
    the factor to the reported units, see :mod:`zoneimpact.estimators._scale`)."""

    prob: _Problem
    treated: list[Any]
    pool: list[Any]
    placebo_starts: int
    drop_ratio: float | None
    rng: np.random.Generator
    panel: Panel
    g: int
    outcome: str = ""
    predictors: Sequence[dict[str, Any]] | None = None
    fit_window: tuple[int, int] | None = None
    scale: float = 1.0

    def rescaled(self, factor: float) -> SCData:
        return replace(self, scale=self.scale * factor)


def _fit_unit(
    prob: _Problem, treated: Any, donors: Sequence[Any], rng: np.random.Generator
) -> tuple[_Fit, pd.Series]:
    """Fit ``treated`` (a unit id, or a list of units averaged) on ``donors``."""
    tr = list(treated) if isinstance(treated, list) else [treated]
    X1 = prob.X[tr].to_numpy(float).mean(axis=1)
    X0 = prob.X[list(donors)].to_numpy(float)
    Yt = prob.Y.loc[tr].to_numpy(float).mean(axis=0)
    Y0 = prob.Y.loc[list(donors)].to_numpy(float)
    fit = synth_weights(
        X1,
        X0,
        Yt[prob.fit_mask],
        Y0[:, prob.fit_mask].T,
        v=prob.v,
        n_starts=prob.n_starts,
        n_polish=prob.n_polish,
        rng=rng,
    )
    synth = fit.w @ Y0
    return fit, pd.Series(Yt - synth, index=prob.Y.columns)


def _check_v(v: Any) -> None:
    if v is not None and not isinstance(v, str):
        if not isinstance(v, Sequence | np.ndarray) or not all(
            isinstance(x, int | float | np.number)
            and not isinstance(x, bool)
            and np.isfinite(x)
            and x >= 0
            for x in v
        ):
            raise SpecError(
                f"v must be 'nested', 'optimistic', 'inverse_variance', 'equal' or a list of finite "
                f"non-negative predictor weights; received {v!r}."
            )


def _treated_and_start(
    panel: Panel, treated_unit: Any, treatment_start: int | None
) -> tuple[list[Any], int]:
    """The treated unit(s) and their one first treated period."""
    coh = panel.unit_cohort
    if treated_unit is None:
        tr_units = coh.index[np.isfinite(coh.to_numpy())].tolist()
        if not tr_units:
            raise EstimationError(
                "No treated unit: the panel has no treated unit; pass treated_unit= (and "
                "treatment_start= if the panel does not mark it)."
            )
    else:
        tr_units = unit_list(panel, treated_unit, "treated_unit")
    if treatment_start is not None:
        return tr_units, treatment_start
    finite = {s for s in (float(coh.loc[u]) for u in tr_units) if np.isfinite(s)}
    if not finite:
        raise EstimationError(
            f"Treated unit(s) {tr_units} are never treated in the panel; pass "
            "treatment_start= (the first treated period)."
        )
    if len(finite) > 1:
        raise EstimationError(
            f"Treated units {tr_units} start treatment in different periods {sorted(finite)}; "
            "synthetic control needs one date: pick one cohort via treated_unit=."
        )
    return tr_units, int(finite.pop())


def _fit_mask(
    periods: np.ndarray, g: int, fit_window: tuple[int, int] | None, pre_periods: np.ndarray
) -> np.ndarray:
    """Periods of the MSPE criterion for V: the fit window, default every pre-period."""
    if fit_window is None:
        return periods < g
    a, b = fit_window
    if b >= g:
        raise SpecError(f"fit_window {list(fit_window)} reaches the treatment period {g}.")
    fit_mask = (periods >= a) & (periods <= b)
    if not fit_mask.any():
        raise SpecError(
            f"fit_window {list(fit_window)} holds no observed period (pre-treatment "
            f"periods: {int(pre_periods[0])}-{int(pre_periods[-1])})."
        )
    return fit_mask


def _problem(
    panel: Panel,
    outcome: str,
    predictors: Sequence[dict[str, Any]] | None,
    fit_window: tuple[int, int] | None,
    v: Any,
    n_starts: int,
    units: list[Any],
    g: int,
) -> _Problem:
    """Outcomes, predictors and windows of the treated unit(s) and donors (``units``)."""
    periods = np.asarray(panel.periods)
    pre_periods = periods[periods < g]
    if len(pre_periods) == 0:
        raise EstimationError(f"No pre-treatment period before {g} in the data.")
    if not (periods >= g).any():
        raise EstimationError(f"No post-treatment period from {g} on in the data.")
    Y = outcome_matrix(panel, outcome, units, periods, estimator="Synthetic control")
    X = _predictor_table(panel, outcome, predictors, units, pre_periods)
    fit_mask = _fit_mask(periods, g, fit_window, pre_periods)
    return _Problem(
        Y, X, fit_mask, periods < g, periods >= g, "nested" if v is None else v, n_starts
    )


def _paths(
    prob: _Problem, tr_units: list[Any], pool: list[Any], main: _Fit, gaps: pd.Series
) -> dict[str, Any]:
    """Treated and synthetic paths, gaps, W, V and the predictor balance (ADH 2010,
    Table 1) of the main fit."""
    Y, X = prob.Y, prob.X
    Yt = Y.loc[tr_units].to_numpy(float).mean(axis=0)
    treated_path = pd.Series(Yt, index=pd.Index(Y.columns, name="time"), name="treated")
    X1 = X[tr_units].to_numpy(float).mean(axis=1)
    return dict(
        treated_path=treated_path,
        synthetic_path=pd.Series(Yt - gaps.to_numpy(), index=treated_path.index, name="synthetic"),
        gaps=pd.Series(gaps.to_numpy(), index=treated_path.index, name="gap"),
        donor_weights=pd.Series(main.w, index=pd.Index(pool, name="unit"), name="weight"),
        predictor_weights=pd.Series(main.v, index=X.index, name="v"),
        balance=pd.DataFrame(
            {
                "treated": X1,
                "synthetic": X[pool].to_numpy(float) @ main.w,
                "donor_mean": X[pool].to_numpy(float).mean(axis=1),
            },
            index=X.index,
        ),
    )


def _in_space_placebos(
    data: SCData, gaps: pd.Series, rng: np.random.Generator, n_jobs: int
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, float]:
    """In-space placebos (ADH 2010, Section 4.2): every donor refitted as treated with the
    other donors as its pool (a lighter V search), then the post/pre RMSPE ratios and the
    permutation p-value (:mod:`zoneimpact.inference.placebo`)."""
    pool, prob = data.pool, data.prob
    if len(pool) < 2:
        # each placebo needs a donor pool of its own (a reviewer's note: the NaN came
        # without a reason)
        warnings.warn(
            f"In-space placebos need at least 2 donors; the pool has {len(pool)}, so there is "
            "no permutation p-value (NaN).",
            stacklevel=5,  # past _diagnostics, fit and its scale wrapper: the caller of fit
        )
        return None, None, np.nan
    prob_pl = replace(prob, n_starts=data.placebo_starts, n_polish=1)

    def one(unit: Any, g_: np.random.Generator) -> pd.Series:
        return _fit_unit(prob_pl, unit, [d for d in pool if d != unit], g_)[1]

    pg = plc.in_space(one, pool, rng=rng, n_jobs=n_jobs)
    label: Any = "treated" if len(data.treated) > 1 else data.treated[0]
    while len(data.treated) > 1 and label in set(pool):  # a donor may be called "treated"
        label = f"_{label}"

    placebo_gaps = pd.concat([gaps.rename(label), pg], axis=1)
    placebo_gaps.index.name = "time"
    table = plc.rmspe_table(placebo_gaps, prob.pre_mask, prob.post_mask)
    p_value, rmspe = plc.permutation_p(table, label, drop_ratio=data.drop_ratio)
    return placebo_gaps, rmspe, p_value


def _in_time_predictors(
    predictors: Sequence[dict[str, Any]] | None, in_time: int
) -> list[dict[str, Any]] | None:
    """The predictors cut at the fake date: windows end before it, later years dropped."""
    if predictors is None:
        return None
    out = []
    for spec in predictors:
        spec = dict(spec)
        if "window" in spec:
            a, b = spec["window"]
            if a >= in_time:
                continue
            spec["window"] = [a, min(b, in_time - 1)]
        if "years" in spec:
            ys = [y for y in spec["years"] if y < in_time]
            if not ys:
                continue
            spec["years"] = ys
        out.append(spec)
    return out


def _in_time_placebo(data: SCData, in_time: int, rng: np.random.Generator) -> pd.Series:
    """In-time placebo (ADH 2015, Section 4): the same fit with treatment at ``in_time``,
    using only the periods before the real date ``g``."""
    prob, g, fit_window = data.prob, data.g, data.fit_window
    periods = np.asarray(prob.Y.columns)
    if not periods[0] < in_time < g:
        raise SpecError(f"in_time={in_time} must lie strictly between {periods[0]} and {g}.")
    keep = periods < g
    sub_periods = periods[keep]
    preds_it = _in_time_predictors(data.predictors, in_time)
    units = [*data.treated, *data.pool]
    X_it = _predictor_table(
        data.panel, data.outcome, preds_it, units, sub_periods[sub_periods < in_time]
    )
    fm = sub_periods < in_time
    if fit_window is not None:
        fm &= sub_periods >= fit_window[0]
    prob_it = _Problem(
        prob.Y.loc[:, keep],
        X_it,
        fm,
        sub_periods < in_time,
        sub_periods >= in_time,
        prob.v,
        prob.n_starts,
    )
    _, gi = _fit_unit(prob_it, _treated_key(data.treated), data.pool, rng)
    return pd.Series(gi.to_numpy(), index=pd.Index(sub_periods, name="time"), name="gap")


def _leave_one_out(
    data: SCData, w: pd.Series, treated_path: pd.Series, rng: np.random.Generator, n_jobs: int
) -> pd.DataFrame | None:
    """Synthetic paths refitted without each positive-weight donor (ADH 2015, Section 4)."""
    pool = data.pool
    positive = w.index[w.to_numpy() > 1e-6].tolist()
    Yt = treated_path.to_numpy()

    def without(unit: Any, g_: np.random.Generator) -> pd.Series:
        rest = [d for d in pool if d != unit]
        _, gp = _fit_unit(data.prob, _treated_key(data.treated), rest, g_)
        return pd.Series(Yt - gp.to_numpy(), index=treated_path.index)

    if len(pool) < 2:
        return None
    return plc.leave_one_out(without, positive, rng=rng, n_jobs=n_jobs)


def _treated_key(tr_units: list[Any]) -> Any:
    """One unit id, or the list of treated units averaged."""
    return tr_units if len(tr_units) > 1 else tr_units[0]


def _donor_pool(panel: Panel, donors: Any, tr_units: list[Any]) -> list[Any]:
    """The donors (default every never-treated unit), the treated ones left out."""
    if donors is None:
        pool = [u for u in never_treated(panel) if u not in tr_units]
    else:
        pool = [u for u in unit_list(panel, donors, "donors") if u not in tr_units]
    require_donors(pool)
    check_pool_size(pool, "Synthetic control")
    return pool


def _result(
    outcome: str,
    alpha: float,
    data: SCData,
    main: _Fit,
    parts: dict[str, Any],
    g: int,
    placebo: tuple[pd.DataFrame | None, pd.DataFrame | None, float],
    in_time_gaps: pd.Series | None,
    loo_paths: pd.DataFrame | None,
) -> SyntheticControlResult:
    """Terms ``att`` (mean post-period gap, se NaN) and ``weight:DONOR``, with the fit
    diagnostics in ``info``."""
    prob, pool, tr_units = data.prob, data.pool, data.treated
    gaps = parts["gaps"]
    att = float(gaps[prob.post_mask].mean())
    names = [f"weight:{u}" for u in pool]
    placebo_gaps, rmspe, p_value = placebo
    info = {
        "treated_unit": ",".join(map(str, tr_units)) if len(tr_units) > 1 else str(tr_units[0]),
        "treatment_start": g,
        "n_donors": len(pool),
        "pre_rmspe": float(np.sqrt(np.mean(gaps[prob.pre_mask] ** 2))),
        "post_rmspe": float(np.sqrt(np.mean(gaps[prob.post_mask] ** 2))),
        "fit_mspe": main.loss,
        "p_value": p_value,
        "v_method": prob.v if isinstance(prob.v, str) else "given",
        "se_note": "no sampling SE for synthetic control; see permutation p_value",
    }
    return SyntheticControlResult(
        estimator="synthetic_control",
        outcome=outcome,
        terms=terms_frame(["att", *names], [att, *main.w], [np.nan] * (1 + len(pool))),
        n_units=len(tr_units) + len(pool),
        n_obs=int(prob.Y.size),
        info=info,
        alpha=alpha,
        **parts,
        placebo_gaps=placebo_gaps,
        rmspe=rmspe,
        p_value=p_value,
        in_time_gaps=in_time_gaps,
        loo_paths=loo_paths,
        fitted=data,
    )


def _diagnostics(
    data: SCData,
    parts: dict[str, Any],
    child: list[np.random.Generator],
    n_jobs: int,
    placebos: bool,
    in_time: int | None,
    leave_one_out: bool,
) -> tuple[tuple[pd.DataFrame | None, pd.DataFrame | None, float], Any, Any]:
    """The robustness checks ``fit`` asks for: in-space placebos (with the permutation
    p-value), the in-time placebo and the leave-one-out fits, each on its own generator."""
    placebo: tuple[pd.DataFrame | None, pd.DataFrame | None, float] = (None, None, np.nan)
    if placebos:
        placebo = _in_space_placebos(data, parts["gaps"], child[1], n_jobs)
    in_time_gaps = None
    if in_time is not None:
        in_time_gaps = _in_time_placebo(data, in_time, child[2])
    loo = None
    if leave_one_out:
        loo = _leave_one_out(data, parts["donor_weights"], parts["treated_path"], child[3], n_jobs)
    return placebo, in_time_gaps, loo


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    treated_unit: Any = None,
    treatment_start: int | None = None,
    predictors: Sequence[dict[str, Any]] | None = None,
    fit_window: Sequence[int] | None = None,
    v: str | Sequence[float] | None = None,
    n_starts: int = 8,
    placebo_starts: int = 3,
    donors: Sequence[Any] | None = None,
    placebos: bool = True,
    drop_ratio: float | None = None,
    in_time: int | None = None,
    leave_one_out: bool = False,
    intervals: str | None = None,
) -> SyntheticControlResult:
    """ADH (2010) synthetic control with nested V and in-space placebo inference.

    Parameters
    ----------
    panel : Panel
        Outcome balanced over the treated unit(s) and donors.
    outcome : str
        Outcome column.
    rng : Generator, optional
        Random starts of the V search (and of the placebos' searches).
    alpha : float
        Stored on the result.
    n_jobs : int
        Workers for placebos and leave-one-out fits.
    treated_unit : unit id or list, optional
        Default: the panel's treated units (one cohort; several units are averaged).
    treatment_start : int, optional
        First treated period when ``treated_unit`` is never treated in the panel.
    predictors : list of dict, optional
        Each ``{"variable": v, "window": [a, b], "op": "mean"}`` (mean over ``a..b``) or
        ``{"variable": v, "years": [...]}`` (mean over those years). Default: the outcome in
        every pre-period (the nested V then has a closed form: W minimises the pre-period
        MSPE of the raw outcomes).
    fit_window : [first, last], optional
        Periods of the MSPE criterion for V; default all pre-treatment periods.
    v : {"nested", "optimistic", "inverse_variance", "equal"} or list of float, optional
        Default ``"nested"`` (see :func:`synth_weights`): V positive definite and
        diagonal, as ADH (2010) define it and R ``Synth`` searches it; on Prop 99 it gives
        ADH's weights and California's permutation p of 1/39. ``"optimistic"`` (Malo et
        al. 2024's bilevel solution) also takes V on the boundary, where ``W(V)`` is not
        unique, and picks the tied W that fits the outcomes best: the lowest pre-period
        RMSPE of any tool on every panel of ``benchmarks/bench_sc_fit.py`` and closer to the
        truth on factor-model panels (``benchmarks/mc_sc_v.py``), but its V ignores all
        predictors but one, and on Prop 99 it moves Utah from 0.334 to 0.398 and
        California's p to 3/39 (its placebos fit better too).
    n_starts : int
        Local searches of the nested V optimisation (from the best of 40 screened
        candidates: equal, regression-based and random Dirichlet V).
    placebo_starts : int
        Local searches for each placebo unit (a lighter search: the placebos only enter
        through their RMSPE ratios).
    donors : list, optional
        Donor pool; default every never-treated unit.
    placebos : bool
        Run in-space placebos (every donor as treated, nested V each) for the RMSPE-ratio
        permutation p-value (later, without refitting:
        :meth:`SyntheticControlResult.with_inference`).
    drop_ratio : float, optional
        Drop placebos whose pre-period MSPE exceeds this multiple of the treated unit's.
    in_time : int, optional
        Fake treatment date for an in-time placebo (data after the real date unused).
    leave_one_out : bool
        Re-fit without each positive-weight donor.
    intervals : {"scpi", "conformal"}, optional
        Add prediction intervals for each post period and the average effect:
        Cattaneo, Feng & Titiunik (2021) SCPI (:func:`zoneimpact.inference.scpi.scpi_intervals`,
        200 simulations, sub-Gaussian out-of-sample bounds; it refits the canonical weights,
        simplex least squares on the raw pre-period outcomes, so its point estimates can
        differ from this result's) or Chernozhukov, Wuthrich & Zhu (2021) conformal
        intervals (:func:`zoneimpact.inference.conformal.conformal_inference`).

    Returns
    -------
    SyntheticControlResult
        Terms ``att`` (mean post-period gap; se NaN) and ``weight:DONOR``.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="synthetic_control"
    )
    treatment_start = check_int(treatment_start, "treatment_start", none=True)
    n_starts = check_int(n_starts, "n_starts", minimum=0)
    placebo_starts = check_int(placebo_starts, "placebo_starts", minimum=0)
    placebos = check_bool(placebos, "placebos")
    leave_one_out = check_bool(leave_one_out, "leave_one_out")
    drop_ratio = check_number(drop_ratio, "drop_ratio", positive=True, none=True)
    in_time = check_int(in_time, "in_time", none=True)
    if intervals is not None:
        check_choice(intervals, "intervals", _INTERVALS)
    window = None if fit_window is None else _window(fit_window, "fit_window")
    _check_v(v)
    rng = as_generator(rng)
    tr_units, g = _treated_and_start(panel, treated_unit, treatment_start)
    pool = _donor_pool(panel, donors, tr_units)
    prob = _problem(panel, outcome, predictors, window, v, n_starts, [*tr_units, *pool], g)
    data = SCData(prob, tr_units, pool, placebo_starts, drop_ratio, snapshot(rng), panel, g)
    data = replace(data, outcome=outcome, predictors=predictors, fit_window=window)
    child = rng.spawn(5)  # the first four are those of earlier versions
    main, gaps = _fit_unit(prob, _treated_key(tr_units), pool, child[0])
    parts = _paths(prob, tr_units, pool, main, gaps)
    placebo, in_time_gaps, loo = _diagnostics(
        data, parts, child, n_jobs, placebos, in_time, leave_one_out
    )
    result = _result(outcome, alpha, data, main, parts, g, placebo, in_time_gaps, loo)
    if intervals is None:
        return result
    return _with_intervals(result, panel, intervals, child[4])


def _with_intervals(
    result: SyntheticControlResult, panel: Panel, method: str, rng: np.random.Generator
) -> SyntheticControlResult:
    """The result with SCPI or conformal prediction intervals (``fit(intervals=...)``)."""
    if method == "scpi":
        from ..inference.scpi import scpi_intervals

        t = scpi_intervals(result, panel, rng=rng).table
        frame = pd.DataFrame(
            {
                "term": t["term"],
                "estimate": t["effect"],
                "low": t["effect_low"],
                "high": t["effect_high"],
                "cf_low": t["cf_low"],
                "cf_high": t["cf_high"],
            }
        )
    else:
        from ..inference.conformal import conformal_inference

        t = conformal_inference(result, panel).table
        frame = pd.DataFrame(
            {
                "term": t["term"],
                "estimate": t["estimate"],
                "low": t["ci_low"],
                "high": t["ci_high"],
                "p_value": t["p_value"],
            }
        )
    frame["method"] = method
    # SCPI refits the canonical synthetic control (V = I) its theory is for; its point
    # estimates can differ from this result's when the weights do
    info = {**result.info, "intervals": method, "intervals_alpha": result.alpha}
    return replace(result, prediction_intervals=frame, info=info)
