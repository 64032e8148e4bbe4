"""Tests of the pre-trend Wald and equivalence (TOST) diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.inference.pretrends import pre_period_terms, pretrend_equivalence, pretrend_wald
from zoneimpact.panel import Panel
from zoneimpact.results import EstimationResult, terms_frame


@pytest.fixture(scope="module")
def cs_result(canonical):
    df = pd.read_csv(canonical / "mpdta.csv")
    panel = Panel.from_frame(
        df, unit="countyreal", time="year", outcomes="lemp", cohort="first.treat"
    )
    return cs.fit(panel, outcome="lemp", bootstrap=False)


def hand_result(vcov: bool) -> EstimationResult:
    terms = terms_frame(
        ["event:-3", "event:-2", "event:-1", "event:0", "event:1", "att"],
        [0.02, -0.01, 0.0, 0.5, 0.6, 0.55],
        [0.01, 0.02, 0.0, 0.1, 0.1, 0.08],
    )
    v = None
    if vcov:
        v = np.diag(terms["se"].to_numpy() ** 2)
        v[0, 1] = v[1, 0] = 0.5 * 0.01 * 0.02  # correlation 0.5 between the two leads
    return EstimationResult("event_study", "y", terms, vcov=v)


def test_wald_by_hand_with_and_without_vcov():
    r = hand_result(vcov=True)
    out = pretrend_wald(r)
    # event:-1 has se 0 (the reference period of a regression event study): excluded
    assert out["terms"] == ["event:-3", "event:-2"] and out["vcov_source"] == "vcov"
    b = np.array([0.02, -0.01])
    v = np.array([[1e-4, 1e-4], [1e-4, 4e-4]])
    stat = b @ np.linalg.solve(v, b)
    assert out["statistic"] == pytest.approx(stat, rel=1e-12)
    assert out["df"] == 2
    assert out["p_value"] == pytest.approx(stats.chi2.sf(stat, 2), rel=1e-12)
    diag = pretrend_wald(hand_result(vcov=False))
    assert diag["vcov_source"] == "diagonal se"
    assert diag["statistic"] == pytest.approx(4.0 + 0.25, rel=1e-12)
    # a terms table works too
    assert pretrend_wald(r.terms)["vcov_source"] == "diagonal se"
    # no leads -> NaN, not an error
    none = EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.1]))
    assert np.isnan(pretrend_wald(none)["p_value"])


def test_wald_on_callaway_santanna(cs_result):
    out = pretrend_wald(cs_result)
    assert out["terms"] == ["event:-3", "event:-2", "event:-1"]
    v = cs_result.vcov.to_numpy()[:4, :4][1:, 1:]
    b = cs_result.terms["estimate"].to_numpy()[1:4]
    assert out["statistic"] == pytest.approx(b @ np.linalg.solve(v, b), rel=1e-10)
    assert 0 < out["p_value"] < 1
    # the fit refers the same W to Hotelling's F(L, n - L) on its CR0 covariance (n units)
    ref = pretrend_wald(cs_result, n_clusters=cs_result.n_units, vcov_type="CR0")
    assert ref["statistic"] == pytest.approx(out["statistic"], rel=1e-14)  # same W
    assert cs_result.info["pretrend_p"] == pytest.approx(ref["p_value"], rel=1e-12)
    assert len(pre_period_terms(cs_result)) == 3


def test_equivalence_tost():
    r = hand_result(vcov=False)
    z = stats.norm.ppf(0.95)
    res = pretrend_equivalence(r, margin=0.2, alpha=0.05)
    assert res["equivalent"] and res["max_abs"] == pytest.approx(0.02)
    # per-lead TOST p-values by hand
    t = res["table"].set_index("term")
    assert t.loc["event:-3", "p_tost"] == pytest.approx(stats.norm.cdf((0.02 - 0.2) / 0.01))
    assert t.loc["event:-2", "p_tost"] == pytest.approx(stats.norm.sf((-0.01 + 0.2) / 0.02))
    # smallest margin giving equivalence: max(|b| + z se) = max(0.02 + z*0.01, 0.01 + z*0.02)
    mm = max(0.02 + z * 0.01, 0.01 + z * 0.02)
    assert res["min_margin"] == pytest.approx(mm, rel=1e-12)
    assert pretrend_equivalence(r, margin=mm * 1.001)["equivalent"]
    assert not pretrend_equivalence(r, margin=mm * 0.999)["equivalent"]
    with pytest.raises(ZoneImpactError, match="margin"):
        pretrend_equivalence(r, margin=0)
    none = EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.1]))
    with pytest.raises(ZoneImpactError, match="pre-period"):
        pretrend_equivalence(none, margin=0.1)


def test_equivalence_on_mpdta(cs_result):
    # leads of mpdta reach |0.0305| with SE 0.015: 0.1 log points is equivalent, 0.03 not
    assert pretrend_equivalence(cs_result, margin=0.1)["equivalent"]
    out = pretrend_equivalence(cs_result, margin=0.03)
    assert not out["equivalent"] and out["p_value"] > 0.05
