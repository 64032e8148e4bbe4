"""Equivalence tests for null claims ("zones did not raise X beyond the counterfactual").

A null claim cannot be supported by a non-significant difference; it is supported when the
effect is shown to be *small*: inside a stated margin ``[-margin, +margin]``. This module
implements the two one-sided tests procedure (TOST) and a three-way verdict.

TOST (Schuirmann 1987; Lakens 2017, eq. 1-2): with estimate ``b``, standard error ``s``
and margin ``D > 0``, test ``H0: theta <= -D`` with ``t_L = (b + D) / s`` (p-value
``p_L = 1 - F(t_L)``) and ``H0: theta >= D`` with ``t_U = (b - D) / s`` (``p_U = F(t_U)``),
where ``F`` is the standard normal cdf or Student's t with ``df`` degrees of freedom. The
TOST p-value is ``max(p_L, p_U)``; equivalence is declared when it is below ``alpha``,
which is the same as the ``1 - 2 alpha`` confidence interval lying inside ``(-D, D)``
(Schuirmann 1987; Hartman and Hidalgo 2018, Section 3).

Verdict of :func:`judge_null_claim` (the rule used by the claims layer):

* ``"supported"``: TOST rejects non-equivalence, i.e. the ``1 - 2 alpha`` CI lies inside
  ``(-D, D)``;
* ``"contradicted"``: the effect is significantly beyond the margin, i.e. the one-sided
  test of ``H0: |theta| <= D`` in the direction of the estimate rejects at level
  ``alpha`` (a minimal-effect test, Lakens, Scheel and Isager 2018): ``(b - D)/s`` above
  the ``1 - alpha`` quantile when ``b > 0``, or ``(b + D)/s`` below the ``alpha``
  quantile when ``b < 0``; equivalently the ``1 - 2 alpha`` CI lies entirely above ``+D``
  or entirely below ``-D``;
* ``"inconclusive"``: neither (the CI overlaps a margin boundary).

Asymmetric bands. ``margin_lower`` (default: ``margin``) sets the lower bound of the band
``(-margin_lower, margin)``, e.g. ``[log(1 - m), log(1 + m)]`` for a relative margin ``m``
on a log scale. The tests are the same with ``-D`` replaced by ``-margin_lower``:
``t_L = (b + margin_lower) / s``; "contradicted" when the CI lies entirely above
``margin`` or entirely below ``-margin_lower`` (the minimal-effect test is taken toward
the side of the band's midpoint ``(margin - margin_lower) / 2`` on which the
estimate lies, which is 0 for a symmetric band, so symmetric results are unchanged).

Written by hand because it is a few lines of scipy.stats; statsmodels' ``ttost_ind`` works
on raw samples, not on an estimate with a standard error.

References
----------
Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power
approach for assessing the equivalence of average bioavailability. *Journal of
Pharmacokinetics and Biopharmaceutics* 15(6), 657-680.
Lakens, D. (2017). Equivalence tests: A practical primer for t tests, correlations, and
meta-analyses. *Social Psychological and Personality Science* 8(4), 355-362.
Lakens, D., Scheel, A. M. and Isager, P. M. (2018). Equivalence testing for psychological
research: A tutorial. *Advances in Methods and Practices in Psychological Science* 1(2).
Hartman, E. and Hidalgo, F. D. (2018). An equivalence approach to balance and placebo
tests. *American Journal of Political Science* 62(4), 1000-1013.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from ..errors import ZoneImpactError

__all__ = [
    "EquivalenceError",
    "EquivalenceResult",
    "equivalence_from_ci",
    "equivalence_test",
    "judge_null_claim",
]

Verdict = Literal["supported", "contradicted", "inconclusive"]


class EquivalenceError(ZoneImpactError, ValueError):
    """Bad input to an equivalence test."""


@dataclass(frozen=True)
class EquivalenceResult:
    """Outcome of a TOST equivalence test.

    Attributes
    ----------
    estimate, se, margin, alpha : float
        Inputs.
    df : float or None
        Degrees of freedom (``None``: normal reference distribution).
    p_value : float
        TOST p-value ``max(p_lower, p_upper)``.
    p_lower, p_upper : float
        p-values of ``H0: theta <= -margin`` and ``H0: theta >= margin``.
    ci_90 : tuple of float
        The ``1 - 2 alpha`` confidence interval (90% when ``alpha = 0.05``).
    equivalent : bool
        ``p_value < alpha``: the effect is within ``(-margin, margin)``.
    p_beyond : float
        p-value of the minimal-effect test that ``|theta| > margin`` (in the direction of
        the estimate).
    verdict : str
        ``"supported"``, ``"contradicted"`` or ``"inconclusive"`` for the null claim.
    margin_lower : float
        Lower bound ``D_L`` of the band ``(-D_L, margin)`` (equal to ``margin`` when
        symmetric).
    """

    estimate: float
    se: float
    margin: float
    alpha: float
    df: float | None
    p_value: float
    p_lower: float
    p_upper: float
    ci_90: tuple[float, float]
    equivalent: bool
    p_beyond: float
    verdict: Verdict
    margin_lower: float = math.nan


def check_margin(margin: float) -> None:
    """Refuse an equivalence margin that is not a positive finite number."""
    if not (math.isfinite(float(margin)) and margin > 0):
        raise EquivalenceError(
            f"margin must be a positive finite number (the equivalence bound D in [-D, D]); "
            f"received margin={margin!r}."
        )


def _validate(
    estimate: float,
    se: float,
    margin: float,
    alpha: float,
    df: float | None,
    margin_lower: float | None = None,
) -> None:
    if not math.isfinite(float(estimate)):
        raise EquivalenceError(f"estimate must be a finite number; received {estimate!r}.")
    if not (math.isfinite(float(se)) and se > 0):
        raise EquivalenceError(f"se must be a positive finite number; received se={se!r}.")
    check_margin(margin)
    if margin_lower is not None:
        check_margin(margin_lower)
    if not 0 < alpha < 0.5:
        raise EquivalenceError(f"alpha must lie in (0, 0.5); received alpha={alpha!r}.")
    if df is not None and not (math.isfinite(float(df)) and df > 0):
        raise EquivalenceError(
            f"df must be positive (or None for a normal test); received df={df!r}."
        )


def equivalence_test(
    estimate: float,
    se: float,
    margin: float,
    alpha: float = 0.05,
    df: float | None = None,
    margin_lower: float | None = None,
) -> EquivalenceResult:
    """TOST equivalence test of ``|theta| < margin`` (Schuirmann 1987; Lakens 2017).

    Parameters
    ----------
    estimate, se : float
        Point estimate and its standard error.
    margin : float
        Equivalence bound ``D > 0``: effects in ``(-D, D)`` count as negligible.
    alpha : float
        Size of each one-sided test; the matching interval is the ``1 - 2 alpha`` CI.
    df : float, optional
        Degrees of freedom for Student-t reference distributions (``None``: normal).
    margin_lower : float, optional
        Lower bound ``D_L > 0`` of an asymmetric band ``(-D_L, margin)`` (default
        ``margin``; module docstring).

    Returns
    -------
    EquivalenceResult
    """
    _validate(estimate, se, margin, alpha, df, margin_lower)
    lower = margin if margin_lower is None else margin_lower
    dist = stats.norm if df is None else stats.t(df)
    t_lower = (estimate + lower) / se
    t_upper = (estimate - margin) / se
    p_lower = float(dist.sf(t_lower))  # H0: theta <= -lower
    p_upper = float(dist.cdf(t_upper))  # H0: theta >= margin
    p_value = max(p_lower, p_upper)
    crit = float(dist.ppf(1 - alpha))
    ci = (estimate - crit * se, estimate + crit * se)
    # minimal-effect test on the estimate's side of the band's midpoint (0 when symmetric):
    # H0 theta <= margin (above) or H0 theta >= -lower (below)
    mid = (margin - lower) / 2
    p_beyond = float(dist.sf(t_upper)) if estimate >= mid else float(dist.cdf(t_lower))
    equivalent = p_value < alpha
    if equivalent:
        verdict: Verdict = "supported"
    elif p_beyond < alpha:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    return EquivalenceResult(
        estimate=float(estimate),
        se=float(se),
        margin=float(margin),
        alpha=float(alpha),
        df=None if df is None else float(df),
        p_value=p_value,
        p_lower=p_lower,
        p_upper=p_upper,
        ci_90=(float(ci[0]), float(ci[1])),
        equivalent=bool(equivalent),
        p_beyond=p_beyond,
        verdict=verdict,
        margin_lower=float(lower),
    )


def equivalence_from_ci(
    lower: float,
    upper: float,
    margin: float,
    alpha: float = 0.05,
    level: float = 0.95,
    df: float | None = None,
) -> EquivalenceResult:
    """TOST from a symmetric confidence interval ``[lower, upper]`` at ``level``.

    The estimate is the midpoint and the standard error is backed out as
    ``(upper - lower) / (2 q)`` with ``q`` the ``(1 + level)/2`` quantile of the reference
    distribution (normal, or t with ``df``).
    """
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        raise EquivalenceError(
            f"Need finite lower < upper; received lower={lower!r}, upper={upper!r}."
        )
    if not 0 < level < 1:
        raise EquivalenceError(f"level must lie in (0, 1); received level={level!r}.")
    dist = stats.norm if df is None else stats.t(df)
    q = float(dist.ppf((1 + level) / 2))
    return equivalence_test((lower + upper) / 2, (upper - lower) / (2 * q), margin, alpha, df)


def judge_null_claim(
    estimate: float,
    se: float,
    margin: float,
    alpha: float = 0.05,
    df: float | None = None,
    margin_lower: float | None = None,
) -> Verdict:
    """Verdict on a null claim ("no effect beyond ``margin``").

    ``"supported"`` when the ``1 - 2 alpha`` CI lies inside ``(-margin, margin)`` (TOST
    rejects non-equivalence); ``"contradicted"`` when it lies entirely above ``+margin`` or
    below ``-margin`` (the one-sided minimal-effect test rejects ``|theta| <= margin``);
    ``"inconclusive"`` otherwise. ``margin_lower`` replaces ``margin`` on the lower side
    (an asymmetric band). See the module docstring for the references. A standard error
    that is not a positive finite number raises :class:`EquivalenceError`.
    """
    return equivalence_test(estimate, se, margin, alpha, df, margin_lower).verdict
