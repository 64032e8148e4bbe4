"""The statsmodels/linearmodels-style accessors of EstimationResult."""

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoneimpact.errors import ZoneImpactError
from zoneimpact.results import EstimationResult, terms_frame


@pytest.fixture
def result() -> EstimationResult:
    terms = terms_frame(["att", "event:0", "event:1"], [1.96, -2.0, 0.5], [1.0, 1.0, 0.25])
    vcov = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.0], [0.1, 0.0, 0.0625]])
    return EstimationResult("twfe", "y", terms, n_units=10, n_obs=50, vcov=vcov)


def test_params_bse_tvalues_are_labelled(result: EstimationResult) -> None:
    assert list(result.params.index) == ["att", "event:0", "event:1"]
    np.testing.assert_array_equal(result.params.to_numpy(), [1.96, -2.0, 0.5])
    np.testing.assert_array_equal(result.bse.to_numpy(), [1.0, 1.0, 0.25])
    np.testing.assert_allclose(result.tvalues.to_numpy(), [1.96, -2.0, 2.0], rtol=1e-15)
    assert result.nobs == 50


def test_pvalues_normal_and_t(result: EstimationResult) -> None:
    # z = 1.96 has two-sided normal p 0.04999579 (scipy); exact formula, so 1e-12
    assert result.pvalues["att"] == pytest.approx(2 * stats.norm.sf(1.96), rel=1e-12)
    assert result.pvalues["att"] == pytest.approx(0.0499958, abs=1e-7)
    with_df = result.with_terms(result.terms.assign(df=[9.0, 9.0, np.inf]))
    assert with_df.pvalues["event:0"] == pytest.approx(2 * stats.t.sf(2.0, 9), rel=1e-12)
    # an infinite df falls back to the normal
    assert with_df.pvalues["event:1"] == pytest.approx(2 * stats.norm.sf(2.0), rel=1e-12)
    np.testing.assert_allclose(result.tidy()["p_value"], result.pvalues.to_numpy(), rtol=0)


def test_vcov_is_labelled_and_consistent_with_se(result: EstimationResult) -> None:
    v = result.vcov
    assert isinstance(v, pd.DataFrame)
    assert list(v.index) == list(v.columns) == ["att", "event:0", "event:1"]
    assert v.loc["att", "event:1"] == 0.1
    np.testing.assert_allclose(np.sqrt(np.diag(v)), result.bse.to_numpy(), rtol=1e-15)
    pd.testing.assert_frame_equal(result.vcov_frame, v)
    # a covariance of other coefficients than the terms is refused, not mislabelled
    with pytest.raises(ZoneImpactError, match=r"vcov has shape \(2, 2\) but the result has 3"):
        EstimationResult("twfe", "y", result.terms, vcov=np.eye(2))
    assert EstimationResult("twfe", "y", result.terms).vcov is None


def test_results_are_deeply_immutable(result: EstimationResult) -> None:
    res = dataclasses.replace(result, info={"cluster": "unit", "nested": {"a": [1, 2]}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.terms = res.terms  # type: ignore[misc]
    # writing into what a field hands out does not reach the result
    handed_out, cov = res.terms, res.vcov
    handed_out.loc[0, "estimate"] = 99.0
    cov.iloc[0, 0] = 99.0
    assert res.estimate == 1.96 and res.vcov.iloc[0, 0] == 1.0
    with pytest.raises(TypeError, match="read-only"):
        res.info["cluster"] = "state"
    with pytest.raises(TypeError, match="read-only"):
        res.info["nested"]["a"] = 3
    res.info["nested"]["a"].append(3)
    assert res.info == {"cluster": "unit", "nested": {"a": [1, 2]}}
    # the caller's own frame and dict are copied at construction
    terms = result.terms
    info = {"cluster": "unit"}
    mine = EstimationResult("twfe", "y", terms, info=info)
    terms.loc[0, "se"] = -1.0
    info["cluster"] = "changed"
    assert mine.se == 1.0 and mine.info["cluster"] == "unit"
    # a plain dict comes back from pickling and from {**info}
    again = pickle.loads(pickle.dumps(res))
    assert type(again.info) is not dict and dict(again.info) == dict(res.info)
    assert type(pickle.loads(pickle.dumps(res.info))) is dict


def test_accessors_follow_rescaling(result: EstimationResult) -> None:
    scaled = result.rescaled(10.0)
    np.testing.assert_allclose(scaled.params, result.params * 10, rtol=1e-15)
    np.testing.assert_allclose(scaled.tvalues, result.tvalues, rtol=1e-12)
    np.testing.assert_allclose(scaled.vcov, result.vcov * 100, rtol=1e-15)


def test_own_statistic_column_is_read_and_follows_a_sign_flip(result: EstimationResult) -> None:
    # a term tested otherwise than estimate / SE carries its statistic in the terms; tidy
    # and tvalues show it (NaN rows keep estimate / SE), and a negative rescaling turns its
    # sign as it turns the estimate's (exact arithmetic: rtol 1e-15)
    own = result.with_terms(result.terms.assign(statistic=[np.nan, -3.0, np.nan]))
    np.testing.assert_allclose(own.tvalues.to_numpy(), [1.96, -3.0, 2.0], rtol=1e-15)
    np.testing.assert_allclose(own.tidy()["statistic"], [1.96, -3.0, 2.0], rtol=1e-15)
    flipped = own.rescaled(-2.0)
    np.testing.assert_allclose(flipped.tvalues.to_numpy(), [-1.96, 3.0, -2.0], rtol=1e-15)
