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

The decomposition is descriptive: the reported ``att`` is the TWFE coefficient itself, with
a NaN standard error, because the decomposition re-expresses a point estimate and carries no
sampling distribution of its own (use ``twfe`` for the coefficient's inference).

Why by hand: no maintained Python library outside our peer packages (diff-diff) implements
the decomposition; R ``bacondecomp`` is the reference. Everything is computed from the
cohort x period means, so the cost is O(n) plus O(cohorts^2 x periods).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..panel import Panel, _v
from ..results import EstimationResult, check_fit_arguments, terms_frame
from ._fe import demean, factorize
from ._scale import scale_equivariant

__all__ = ["BaconResult", "fit"]

TYPES = ("treated_vs_never", "earlier_vs_later", "later_vs_earlier", "later_vs_always")


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


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: Any = None,
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

    Returns
    -------
    BaconResult
        Term ``att`` = TWFE coefficient (se NaN), ``comparisons`` table; ``info`` holds
        the total weight and weighted average estimate of each comparison type and
        ``decomposition_error`` (weighted sum minus TWFE coefficient).

    Raises
    ------
    EstimationError
        Unbalanced panel, missing outcomes, covariates, or fewer than two groups.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="bacon")
    del rng, n_jobs
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
    periods = np.sort(df["time"].unique())
    T = len(periods)
    ucoh = panel.unit_cohort
    cohorts = np.sort(ucoh[np.isfinite(ucoh)].unique())
    has_never = bool(np.isinf(ucoh).any())
    if len(cohorts) == 0 or len(cohorts) + has_never < 2:
        raise EstimationError(
            "bacon needs at least two timing groups (treated cohorts and/or never treated); "
            f"found cohorts {cohorts.tolist()} and never-treated={has_never}."
        )

    # Cohort x period means of the outcome (balanced panel: all cells full).
    groups = [*cohorts.tolist(), np.inf] if has_never else cohorts.tolist()
    gcode = np.searchsorted(np.asarray(groups), df["cohort"].to_numpy(float))
    tcode = np.searchsorted(periods, df["time"].to_numpy())
    ng = len(groups)
    sums = np.bincount(gcode * T + tcode, weights=y, minlength=ng * T).reshape(ng, T)
    cnt = np.bincount(gcode * T + tcode, minlength=ng * T).reshape(ng, T)
    ybar = sums / cnt
    N = ucoh.size
    n_share = np.array([(ucoh == g).sum() for g in groups], float) / N
    dbar = np.array([np.mean(periods >= g) for g in groups])  # 0 for never treated

    # TWFE coefficient and V^D from the two-way demeaned treatment dummy (FWL).
    D = (df["time"].to_numpy() >= df["cohort"].to_numpy()).astype(float)
    fe = [factorize(df["unit"].to_numpy()), tcode]
    Dd = demean(D, fe)
    yd = demean(y, fe)
    twfe = float(Dd @ yd / (Dd @ Dd))
    VD = float(Dd @ Dd) / len(D)

    def did(treat: int, ctrl: int, pre: np.ndarray, post: np.ndarray) -> float:
        d_t = ybar[treat, post].mean() - ybar[treat, pre].mean()
        d_c = ybar[ctrl, post].mean() - ybar[ctrl, pre].mean()
        return float(d_t - d_c)

    # (type, treated cohort, control cohort or "never", estimate, weight, start, end)
    rows: list[tuple[str, int, int | str, float, float, int, int]] = []
    never = ng - 1 if has_never else None
    for a, k in enumerate(cohorts):
        post_k = periods >= k
        always = bool(post_k.all())  # treated in every period: a control group only
        if never is not None and not always:
            nk, nu = n_share[a], n_share[never]
            nku = nk / (nk + nu)
            s = (nk + nu) ** 2 * nku * (1 - nku) * dbar[a] * (1 - dbar[a]) / VD
            rows.append(
                (
                    "treated_vs_never",
                    int(k),
                    "never",
                    did(a, never, ~post_k, post_k),
                    s,
                    int(periods[0]),
                    int(periods[-1]),
                )
            )
        for b in range(a + 1, len(cohorts)):
            lc = cohorts[b]
            post_l = periods >= lc
            if post_l.all():
                continue  # two always-treated cohorts: no 2x2 between them
            nk, nl = n_share[a], n_share[b]
            nkl = nk / (nk + nl)
            dk, dl = dbar[a], dbar[b]
            # Earlier k treated vs later l as control, before l is treated (eq. 10b, 10f).
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
                rows.append(
                    (
                        "earlier_vs_later",
                        int(k),
                        int(lc),
                        did(a, b, win & ~post_k, win & post_k),
                        s_k,
                        int(periods[win][0]),
                        int(periods[win][-1]),
                    )
                )
            # Later l treated vs earlier k as control after k is treated (eq. 10c, 10g).
            win = post_k
            s_l = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * dl / dk * (dk - dl) / dk / VD
            rows.append(
                (
                    "later_vs_always" if always else "later_vs_earlier",
                    int(lc),
                    int(k),
                    did(b, a, win & ~post_l, win & post_l),
                    s_l,
                    int(periods[win][0]),
                    int(periods[win][-1]),
                )
            )
    comp = pd.DataFrame(
        rows,
        columns=[
            "type",
            "treated_cohort",
            "control_cohort",
            "estimate",
            "weight",
            "time_start",
            "time_end",
        ],
    )
    total = float(comp["weight"] @ comp["estimate"])
    info: dict[str, Any] = {
        "twfe": twfe,
        "decomposition_error": total - twfe,
        "weight_sum": float(comp["weight"].sum()),
        "fixed_effects": "unit+time",
        "se_note": "decomposition of a point estimate: no standard error (see twfe)",
    }
    for t in TYPES:
        sub = comp[comp["type"] == t]
        w = float(sub["weight"].sum())
        info[f"weight_{t}"] = w
        info[f"estimate_{t}"] = float(sub["weight"] @ sub["estimate"] / w) if w > 0 else np.nan
    terms = terms_frame(["att"], [twfe], [np.nan])
    return BaconResult(
        estimator="bacon",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(N),
        n_obs=len(df),
        vcov=np.array([[np.nan]]),
        info=info,
        alpha=alpha,
        comparisons=comp,
    )
