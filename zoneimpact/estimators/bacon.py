"""Goodman-Bacon (2021) decomposition of the two-way fixed-effects DiD coefficient.

Goodman-Bacon, A. (2021), "Difference-in-differences with variation in treatment timing",
*Journal of Econometrics* 225(2), 254-277.

With a balanced panel, an absorbing binary treatment switched on at cohort-specific dates
and possibly a never-treated group ``U``, the TWFE coefficient of
``Y_it = a_i + l_t + b D_it + e_it`` is (Theorem 1, eq. 10a-10g)

    b_hat = sum_k s_kU b_kU + sum_{k<l} (s^k_kl b^k_kl + s^l_kl b^l_kl),

a weighted average of every 2x2 DiD: each cohort against the never treated (eq. 10a), an
earlier cohort ``k`` against a later cohort ``l`` before ``l`` is treated (eq. 10b), and the
later cohort against the already-treated earlier one (eq. 10c, the "forbidden" comparison
that turns dynamic effects into bias). With ``n`` the group shares of units, ``D_k`` the
share of periods cohort ``k`` spends treated and ``V^D`` the variance of the two-way
demeaned treatment dummy, the weights are (eq. 10e-10g)

    s_kU   = (n_k + n_U)^2 n_kU (1 - n_kU) D_k (1 - D_k) / V^D
    s^k_kl = ((n_k + n_l)(1 - D_l))^2 n_kl (1 - n_kl) (D_k - D_l)/(1 - D_l) (1 - D_k)/(1 - D_l) / V^D
    s^l_kl = ((n_k + n_l) D_k)^2 n_kl (1 - n_kl) D_l/D_k (D_k - D_l)/D_k / V^D

with ``n_kU = n_k/(n_k + n_U)`` and ``n_kl = n_k/(n_k + n_l)``; they sum to one.

**Always-treated units** (a cohort treated in the first period or before, so ``D_k = 1``)
have no untreated period: they are never a treated group of a 2x2 (its weight,
``D_k (1 - D_k)`` or ``1 - D_k``, is zero) and serve only as the already-treated control of
each later cohort over the whole panel. Eq. 10g with ``D_k = 1`` gives that comparison the
weight ``n_k n_l D_l (1 - D_l) / V^D``. R ``bacondecomp`` reports it as its own type,
"Later vs Always Treated" (``later_vs_always`` here); diff-diff instead pools such units
with the never treated into ``U`` (Goodman-Bacon 2021, footnote 11), which is the same
decomposition with the two comparisons of each cohort merged: their weights add up and
their weighted estimates average to diff-diff's ``treated_vs_never`` (checked in
``tests/test_designs.py``).

**Weights** (analytic, constant within unit): the weighted TWFE coefficient is the TWFE
coefficient of the panel in which unit ``i`` counts ``w_i`` times, so Theorem 1 holds with
the group shares ``n_k`` the groups' shares of the total weight, the 2x2 DiDs built from
weighted cohort x period means, and ``V^D`` the weighted variance of the weighted two-way
demeaned dummy (the identity is a polynomial one in the weights, so it holds for any
positive weights, not only whole numbers; diff-diff's survey-weighted decomposition does
the same). Weights that vary within a unit are refused: the weighted two-way demeaning
then mixes the timing groups and the TWFE coefficient is no longer a weighted average of
their 2x2 DiDs.

The decomposition is descriptive: the reported ``att`` is the TWFE coefficient itself, with
a NaN standard error, because the decomposition re-expresses a point estimate and carries no
sampling distribution of its own (use ``twfe`` for the coefficient's inference).

Why by hand: no maintained Python library outside our peer packages (diff-diff) implements
the decomposition; R ``bacondecomp`` is the reference. Everything is computed from the
cohort x period means, so the cost is O(n) plus O(cohorts^2 x periods).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel, _v
from ..results import EstimationResult, check_fit_arguments, terms_frame
from ._fe import demean, factorize
from ._scale import scale_equivariant
from ._weights import check_weight_name, unit_weights, weight_values

__all__ = ["BaconResult", "fit"]

TYPES = ("treated_vs_never", "earlier_vs_later", "later_vs_earlier", "later_vs_always")

#: One comparison: (type, treated cohort, control cohort or "never", estimate, weight, first
#: and last period of the 2x2).
Row = tuple[str, int, int | str, float, float, int, int]

#: Columns of the comparisons table: (type, treated cohort, control cohort or "never",
#: estimate, weight, first and last period of the 2x2).
COLUMNS = [
    "type",
    "treated_cohort",
    "control_cohort",
    "estimate",
    "weight",
    "time_start",
    "time_end",
]


@dataclass(frozen=True)
class BaconResult(EstimationResult):
    """Result of :func:`fit`.

    Attributes
    ----------
    comparisons : pandas.DataFrame
        One row per 2x2 comparison: ``type`` (``treated_vs_never``, ``earlier_vs_later``,
        ``later_vs_earlier``, ``later_vs_always``), ``treated_cohort``, ``control_cohort``
        (``"never"`` for the never treated), ``estimate``, ``weight``, and the periods used (``time_start``,
        ``time_end``).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {"comparisons": {"estimate": 1}}
    SCALED_INFO: ClassVar[dict[str, int]] = {
        "twfe": 1,
        "decomposition_error": 1,
        "estimate_treated_vs_never": 1,
        "estimate_earlier_vs_later": 1,
        "estimate_later_vs_earlier": 1,
        "estimate_later_vs_always": 1,
    }

    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"comparisons": self.comparisons}


@dataclass(frozen=True)
class _Groups:
    """Timing groups of the balanced panel and their summaries: the periods, the treated
    cohorts, the index of the never treated (None: none), the cohort x period means
    ``ybar`` of the outcome, the group shares ``n`` and the treated shares of periods
    ``D``."""

    periods: np.ndarray
    cohorts: np.ndarray
    never: int | None
    ybar: np.ndarray
    n_share: np.ndarray
    dbar: np.ndarray
    VD: float

    def did(self, treat: int, ctrl: int, pre: np.ndarray, post: np.ndarray) -> float:
        """The 2x2 DiD of group ``treat`` against ``ctrl`` between the periods ``pre`` and
        ``post`` (Goodman-Bacon 2021, eq. 3) from the group x period means."""
        y = self.ybar
        d_t = y[treat, post].mean() - y[treat, pre].mean()
        d_c = y[ctrl, post].mean() - y[ctrl, pre].mean()
        return float(d_t - d_c)


def _check_sample(panel: Panel, outcome: str, covariates: Any) -> None:
    """A balanced panel, no missing outcome, no covariates."""
    if covariates is not None and not (
        isinstance(covariates, list | tuple | str) and len(covariates) == 0
    ):
        raise EstimationError(
            "bacon: covariates are not supported (the decomposition with controls, "
            "Goodman-Bacon 2021 Section 5, is not implemented). Remove the option."
        )
    df = panel.data
    y = df[outcome].to_numpy(float)
    if np.isnan(y).any():
        i = int(np.flatnonzero(np.isnan(y))[0])
        raise EstimationError(
            f"bacon needs a balanced panel without missing outcomes; {outcome!r} is missing "
            f"at unit {_v(df['unit'].iloc[i])!r}, period {_v(df['time'].iloc[i])!r}. Drop or "
            "impute that unit."
        )
    if not panel.balanced:
        counts = df.groupby("unit").size()
        n_periods = df["time"].nunique()
        u = counts.index[counts.to_numpy() < n_periods][0]
        raise EstimationError(
            f"bacon needs a balanced panel; unit {_v(u)!r} has {int(counts[u])} of "
            f"{n_periods} periods. Restrict the data to a balanced sub-panel."
        )


def _weights(panel: Panel, weights: Any) -> tuple[np.ndarray, pd.Series] | None:
    """Row weights and one weight per unit; the decomposition needs them constant within
    unit (with time-varying weights the weighted TWFE coefficient is no weighted average
    of 2x2 DiDs between timing groups)."""
    name = check_weight_name(panel, weights)
    if name is None:
        return None
    w = weight_values(panel.data, name)
    units = panel.unit_cohort.index.to_numpy()
    try:
        per_unit = unit_weights(panel.data, name, units)
    except EstimationError as err:
        raise EstimationError(
            f"bacon: {err} The weighted Goodman-Bacon decomposition is defined only for "
            "weights constant within unit (each unit counts as its weight's worth of "
            "identical units)."
        ) from None
    return w, pd.Series(per_unit, index=units)


def _groups(
    panel: Panel, y: np.ndarray, weights: tuple[np.ndarray, pd.Series] | None
) -> tuple[_Groups, np.ndarray]:
    """Timing groups, their (weighted) cohort x period means and unit shares ``n_k``, and
    the treated share of periods ``D_k`` (``V^D`` is filled in by :func:`fit`); also each
    row's period code."""
    df = panel.data
    periods = np.sort(df["time"].unique())
    T = len(periods)
    ucoh = _timing(panel.unit_cohort, periods)
    row_cohort = _timing(df["cohort"], periods).to_numpy(float)
    cohorts = np.sort(ucoh[np.isfinite(ucoh)].unique())
    has_never = bool(np.isinf(ucoh).any())
    if len(cohorts) == 0 or len(cohorts) + has_never < 2:
        raise EstimationError(
            "bacon needs at least two timing groups (treated cohorts and/or never treated); "
            f"found cohorts {cohorts.tolist()} and never-treated={has_never}."
        )
    groups = [*cohorts.tolist(), np.inf] if has_never else cohorts.tolist()
    gcode = np.searchsorted(np.asarray(groups), row_cohort)
    tcode = np.searchsorted(periods, df["time"].to_numpy())
    ng = len(groups)
    cell = gcode * T + tcode
    if weights is None:
        sums = np.bincount(cell, weights=y, minlength=ng * T).reshape(ng, T)
        cnt = np.bincount(cell, minlength=ng * T).reshape(ng, T)
        n_share = np.array([(ucoh == g).sum() for g in groups], float) / ucoh.size
    else:
        # weighted cell means and weighted group shares: the panel with unit i counted
        # w_i times
        w, per_unit = weights
        sums = np.bincount(cell, weights=w * y, minlength=ng * T).reshape(ng, T)
        cnt = np.bincount(cell, weights=w, minlength=ng * T).reshape(ng, T)
        mass = per_unit.reindex(ucoh.index).to_numpy()
        n_share = np.array([mass[(ucoh == g).to_numpy()].sum() for g in groups]) / mass.sum()
    groups_ = _Groups(
        periods=periods,
        cohorts=cohorts,
        never=ng - 1 if has_never else None,
        ybar=sums / cnt,
        n_share=n_share,
        dbar=np.array([np.mean(periods >= g) for g in groups]),  # 0 for never treated
        VD=np.nan,
    )
    return groups_, tcode


def _timing(cohort: pd.Series, periods: np.ndarray) -> pd.Series:
    """Each cohort as its first treated period of the panel: cohorts whose codes differ
    but that are treated in the same periods (2001 and 2002 on a biennial panel with 2000,
    2002, ...) are one timing group of Theorem 1 (Goodman-Bacon 2021 groups units by
    treatment pattern). Kept apart, the 2x2 between them has no untreated or no treated
    window, a zero weight and a NaN estimate that made the type averages NaN. Cohorts
    after the last period are left as they are."""
    g = cohort.to_numpy(float)
    j = np.searchsorted(periods, g)
    inside = np.isfinite(g) & (j < len(periods))
    out = g.copy()
    out[inside] = periods[j[inside]]
    return pd.Series(out, index=cohort.index, name=cohort.name)


def _merged(panel: Panel, groups: _Groups) -> str:
    """The cohort codes :func:`_timing` relabelled, as ``"2001->2002"`` (empty: none)."""
    codes = np.unique(panel.unit_cohort[np.isfinite(panel.unit_cohort)].to_numpy(float))
    new = _timing(pd.Series(codes), groups.periods).to_numpy()
    return ",".join(f"{a:g}->{b:g}" for a, b in zip(codes, new, strict=True) if a != b)


def _twfe(
    panel: Panel, y: np.ndarray, tcode: np.ndarray, w: np.ndarray | None
) -> tuple[float, float]:
    """The (weighted) TWFE coefficient and ``V^D``, the (weighted) variance of the two-way
    demeaned treatment dummy (Frisch-Waugh-Lovell; Goodman-Bacon 2021, eq. 2 and 10)."""
    df = panel.data
    D = (df["time"].to_numpy() >= df["cohort"].to_numpy()).astype(float)
    fe = [factorize(df["unit"].to_numpy()), tcode]
    if w is None:
        Dd = demean(D, fe)
        yd = demean(y, fe)
        return float(Dd @ yd / (Dd @ Dd)), float(Dd @ Dd) / len(D)
    Dd = demean(D, fe, weights=w)
    yd = demean(y, fe, weights=w)
    wDd = w * Dd
    return float(wDd @ yd / (wDd @ Dd)), float(wDd @ Dd) / float(w.sum())


def _treated_vs_never(g: _Groups, a: int, never: int) -> Row:
    """Cohort ``k`` (index ``a``) against the never treated (eq. 10a, weight 10e)."""
    k, periods = g.cohorts[a], g.periods
    post_k = periods >= k
    nk, nu = g.n_share[a], g.n_share[never]
    nku = nk / (nk + nu)
    s = (nk + nu) ** 2 * nku * (1 - nku) * g.dbar[a] * (1 - g.dbar[a]) / g.VD
    estimate = g.did(a, never, ~post_k, post_k)
    return ("treated_vs_never", int(k), "never", estimate, s, int(periods[0]), int(periods[-1]))


def _timing_pair(g: _Groups, a: int, b: int) -> list[Row]:
    """Earlier cohort ``k`` (index ``a``) and later ``l`` (``b``): ``k`` against ``l``
    before ``l`` is treated (eq. 10b, weight 10f; none when ``k`` is always treated) and
    ``l`` against the treated ``k`` (eq. 10c, weight 10g)."""
    periods, k, lc = g.periods, g.cohorts[a], g.cohorts[b]
    post_k, post_l = periods >= k, periods >= lc
    always = bool(post_k.all())
    nk, nl = g.n_share[a], g.n_share[b]
    nkl = nk / (nk + nl)
    dk, dl, VD = g.dbar[a], g.dbar[b], g.VD
    out: list[Row] = []
    win = ~post_l
    s_k = (
        ((nk + nl) * (1 - dl)) ** 2
        * nkl
        * (1 - nkl)
        * (dk - dl)
        / (1 - dl)
        * (1 - dk)
        / (1 - dl)
        / VD
    )
    if not always:
        estimate = g.did(a, b, win & ~post_k, win & post_k)
        span = int(periods[win][0]), int(periods[win][-1])
        out.append(("earlier_vs_later", int(k), int(lc), estimate, s_k, *span))
    win = post_k
    s_l = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * dl / dk * (dk - dl) / dk / VD
    kind = "later_vs_always" if always else "later_vs_earlier"
    estimate = g.did(b, a, win & ~post_l, win & post_l)
    out.append((kind, int(lc), int(k), estimate, s_l, int(periods[win][0]), int(periods[win][-1])))
    return out


def _comparisons(g: _Groups) -> pd.DataFrame:
    """Every 2x2 of Theorem 1 with its weight, in the order cohort by cohort."""
    rows: list[Row] = []
    cohorts = g.cohorts
    for a, k in enumerate(cohorts):
        always = bool((g.periods >= k).all())  # treated in every period: a control only
        if g.never is not None and not always:
            rows.append(_treated_vs_never(g, a, g.never))
        for b in range(a + 1, len(cohorts)):
            if (g.periods >= cohorts[b]).all():
                continue  # two always-treated cohorts: no 2x2 between them
            rows.extend(_timing_pair(g, a, b))
    return pd.DataFrame(rows, columns=COLUMNS)


def _summaries(comp: pd.DataFrame, twfe: float, weights: str | None) -> dict[str, Any]:
    """Total weight and weighted average estimate of each comparison type, and the gap
    between the weighted sum of the 2x2s and the TWFE coefficient (rounding only)."""
    total = float(comp["weight"] @ comp["estimate"])
    info: dict[str, Any] = {
        "twfe": twfe,
        "decomposition_error": total - twfe,
        "weight_sum": float(comp["weight"].sum()),
        "fixed_effects": "unit+time",
        "se_note": "decomposition of a point estimate: no standard error (see twfe)",
    }
    if weights is not None:
        info["weights"] = weights
    for t in TYPES:
        sub = comp[comp["type"] == t]
        w = float(sub["weight"].sum())
        info[f"weight_{t}"] = w
        info[f"estimate_{t}"] = float(sub["weight"] @ sub["estimate"] / w) if w > 0 else np.nan
    return info


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: Any = None,
    weights: str | None = None,
) -> BaconResult:
    """Goodman-Bacon decomposition of the static TWFE coefficient.

    Parameters
    ----------
    panel : Panel
        Balanced panel with staggered, absorbing treatment and no missing outcome.
    outcome : str
        Outcome column.
    rng, n_jobs, alpha
        Common estimator interface (the decomposition is deterministic and has no
        standard errors).
    covariates : None
        Not supported (the controlled decomposition of Goodman-Bacon 2021, Section 5, is
        not implemented); passing covariates raises an error.
    weights : str, optional
        Column of positive analytic weights, constant within unit: the decomposition of
        the weighted TWFE coefficient (module docstring, "Weights"). Time-varying weights
        are refused.

    Returns
    -------
    BaconResult
        Term ``att`` = TWFE coefficient (se NaN), ``comparisons`` table; ``info`` holds
        the total weight and weighted average estimate of each comparison type and
        ``decomposition_error`` (weighted sum minus TWFE coefficient).

    Raises
    ------
    EstimationError
        Unbalanced panel, missing outcomes, covariates, weights varying within a unit, or
        fewer than two groups.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="bacon")
    del rng, n_jobs
    _check_sample(panel, outcome, covariates)
    w = _weights(panel, weights)
    y = panel.data[outcome].to_numpy(float)
    groups, tcode = _groups(panel, y, w)
    twfe, VD = _twfe(panel, y, tcode, None if w is None else w[0])
    comp = _comparisons(replace(groups, VD=VD))
    terms = terms_frame(["att"], [twfe], [np.nan])
    return BaconResult(
        estimator="bacon",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(panel.unit_cohort.size),
        n_obs=len(panel.data),
        vcov=np.array([[np.nan]]),
        info={**_summaries(comp, twfe, weights), "cohorts_merged": _merged(panel, groups)},
        alpha=alpha,
        comparisons=comp,
    )
