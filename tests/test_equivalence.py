"""Tests of zoneimpact.inference.equivalence (TOST; Schuirmann 1987, Lakens 2017).

Expected values are computed by hand from scipy.stats (exact formulas, so 1e-12).
"""

from __future__ import annotations

import pytest
from scipy import stats

from zoneimpact.errors import ZoneImpactError
from zoneimpact.inference.equivalence import (
    EquivalenceError,
    equivalence_from_ci,
    equivalence_test,
    judge_null_claim,
)


def test_tost_normal_hand_computed() -> None:
    r = equivalence_test(0.1, 0.2, 0.5)
    p_lower = stats.norm.sf((0.1 + 0.5) / 0.2)  # 1 - Phi(3)
    p_upper = stats.norm.cdf((0.1 - 0.5) / 0.2)  # Phi(-2)
    assert r.p_lower == pytest.approx(p_lower, rel=1e-12)
    assert r.p_upper == pytest.approx(p_upper, rel=1e-12)
    assert r.p_value == pytest.approx(max(p_lower, p_upper), rel=1e-12)
    assert r.p_value == pytest.approx(0.022750131948179, rel=1e-10)
    z = stats.norm.ppf(0.95)
    assert r.ci_90 == pytest.approx((0.1 - z * 0.2, 0.1 + z * 0.2), rel=1e-12)
    assert r.equivalent and r.verdict == "supported"


def test_tost_t_distribution() -> None:
    r = equivalence_test(-0.3, 0.25, 0.6, alpha=0.05, df=12)
    t = stats.t(12)
    assert r.p_value == pytest.approx(
        max(t.sf((-0.3 + 0.6) / 0.25), t.cdf((-0.3 - 0.6) / 0.25)), rel=1e-12
    )
    assert r.ci_90[0] == pytest.approx(-0.3 - t.ppf(0.95) * 0.25, rel=1e-12)
    # t(12) tails are heavier than the normal: p above 0.05 here, so not equivalent
    assert r.p_value > 0.05 and not r.equivalent


def test_equivalence_iff_ci_inside_margin() -> None:
    for est in (-0.45, -0.2, 0.0, 0.15, 0.33, 0.5):
        r = equivalence_test(est, 0.1, 0.5)
        inside = -0.5 < r.ci_90[0] and r.ci_90[1] < 0.5
        assert r.equivalent == inside


@pytest.mark.parametrize(
    ("estimate", "se", "verdict"),
    [
        (0.05, 0.1, "supported"),  # 90% CI [-0.114, 0.214] inside +/-0.5
        (1.2, 0.2, "contradicted"),  # 90% CI [0.871, 1.529] above +0.5
        (-1.2, 0.2, "contradicted"),  # below -0.5
        (0.5, 0.2, "inconclusive"),  # straddles +0.5
        (0.0, 0.4, "inconclusive"),  # too noisy: CI covers both margins
    ],
)
def test_judge_null_claim(estimate: float, se: float, verdict: str) -> None:
    assert judge_null_claim(estimate, se, 0.5) == verdict


def test_contradicted_matches_one_sided_test() -> None:
    r = equivalence_test(0.9, 0.2, 0.5)
    assert r.p_beyond == pytest.approx(stats.norm.sf((0.9 - 0.5) / 0.2), rel=1e-12)  # 0.02275
    assert r.verdict == "contradicted" and r.ci_90[0] > 0.5
    r2 = equivalence_test(0.8, 0.2, 0.5)  # p_beyond = 0.067: not significant beyond
    assert r2.verdict == "inconclusive"


def test_from_ci() -> None:
    z = stats.norm.ppf(0.975)
    r = equivalence_from_ci(0.1 - z * 0.2, 0.1 + z * 0.2, 0.5)
    assert r.estimate == pytest.approx(0.1) and r.se == pytest.approx(0.2)
    assert r.p_value == pytest.approx(equivalence_test(0.1, 0.2, 0.5).p_value, rel=1e-12)


@pytest.mark.parametrize("margin", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_margin(margin: float) -> None:
    with pytest.raises(EquivalenceError, match="margin"):
        equivalence_test(0.1, 0.2, margin)
    with pytest.raises(ZoneImpactError, match="margin"):
        judge_null_claim(0.1, 0.2, margin)


def test_other_bad_inputs() -> None:
    with pytest.raises(EquivalenceError, match="se"):
        equivalence_test(0.1, 0.0, 0.5)
    with pytest.raises(EquivalenceError, match="alpha"):
        equivalence_test(0.1, 0.2, 0.5, alpha=0.5)
    with pytest.raises(EquivalenceError, match="df"):
        equivalence_test(0.1, 0.2, 0.5, df=0)
    with pytest.raises(EquivalenceError, match="lower"):
        equivalence_from_ci(0.3, 0.1, 0.5)
    r = equivalence_test(0.1, 0.2, 0.5)
    with pytest.raises(AttributeError):
        r.p_value = 0.0  # type: ignore[misc]
