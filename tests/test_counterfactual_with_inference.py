"""``CounterfactualResult.with_inference``: another resampling variance for IFE and matrix
completion without refitting.

The contract: ``fit(se_method=B).with_inference(A, rng=seed)`` reproduces
``fit(se_method=A, rng=seed)`` -- the same draws, so standard errors, covariance,
replications and the diagnostics built on them agree to 1e-12 (they are in fact
bit-identical: the same code runs on the same numbers) -- while the estimates and the
original result do not change.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_ife import factor_world

from zoneimpact.errors import EstimationError, ZoneImpactError
from zoneimpact.estimators import ife, matrix_completion
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)

# the same draws through the same code: only summation-order noise could differ
TOL = 1e-12


@pytest.fixture(scope="module")
def world() -> Panel:
    # 24 units (7 treated, 17 never treated: >= 3 for the parametric bootstrap), 14 periods
    panel, _ = factor_world(np.random.default_rng(11), n_units=24, n_periods=14, cohorts=(10, 12))
    return panel


def _ife(panel: Panel, se_method: str | None, *, outcome: str = "y", **kw):
    opts = dict(outcome=outcome, rng=7, r=2, n_reps=6, diagnostics=False, se_method=se_method)
    return ife.fit(panel, **{**opts, **kw})


def _same_inference(a, b, *, rel: float = 0.0) -> None:
    """``a`` and ``b`` carry the same variance: SEs, vcov, replications, tables."""
    sa, sb = a.terms["se"].to_numpy(), b.terms["se"].to_numpy()
    assert np.isfinite(sa).all()
    np.testing.assert_allclose(sb, sa, rtol=rel + TOL, atol=TOL * np.abs(sa).max())
    np.testing.assert_allclose(b.replicates, a.replicates, rtol=rel + TOL, atol=0)
    np.testing.assert_allclose(b.vcov.to_numpy(), a.vcov.to_numpy(), rtol=rel + TOL, atol=0)
    assert list(b.vcov.index) == list(a.vcov.index)
    np.testing.assert_array_equal(b.terms["estimate"], a.terms["estimate"])
    for col in ("se", "p_tost"):
        np.testing.assert_allclose(b.pretrend[col], a.pretrend[col], rtol=rel + TOL, atol=0)
    assert b.info["se_method"] == a.info["se_method"]
    assert b.info["n_reps"] == a.info["n_reps"]


@pytest.mark.parametrize(
    ("target", "fitted_with"),
    [("jackknife", "bootstrap"), ("parametric", "jackknife"), ("bootstrap", None)],
)
def test_ife_other_variance_equals_the_fit_with_it(world, target, fitted_with) -> None:
    direct = _ife(world, target)
    other = _ife(world, fitted_with)
    before = other.terms.copy()
    switched = other.with_inference(target, rng=7)
    _same_inference(direct, switched)
    # the original result keeps its own (or no) standard errors
    assert other.info["se_method"] == fitted_with
    np.testing.assert_array_equal(other.terms["se"], before["se"])
    assert switched is not other


def test_ife_diagnostics_follow_the_new_draws() -> None:
    # the pre-trend F/TOST and placebo tests use the resampling covariance: with the same
    # draws they are the fit's, and they differ from those of the other method. 12 treated
    # units and 7 tested pre-periods, so that the F test is defined (N_bar > P, draws > P)
    panel, _ = factor_world(
        np.random.default_rng(11), n_units=24, n_periods=11, treated_share=0.5, cohorts=(7, 8)
    )
    kw = dict(r=1, diagnostics=True, placebo_periods=1, pretrend_min_share=1.0, n_reps=10)
    direct = _ife(panel, "parametric", **kw)
    other = _ife(panel, "bootstrap", **kw)
    assert np.isfinite(direct.info["pretrend_p"]) and np.isfinite(other.info["pretrend_p"])
    switched = other.with_inference("parametric", rng=7)
    _same_inference(direct, switched)
    cols = ["statistic", "p_value", "equiv_p"]
    np.testing.assert_allclose(
        switched.diagnostics[cols].to_numpy(float), direct.diagnostics[cols].to_numpy(float),
        rtol=TOL, atol=0,
    )  # fmt: skip
    for key in ("pretrend_p", "placebo_se", "placebo_p", "pretrend_tost_p"):
        assert switched.info[key] == pytest.approx(direct.info[key], rel=TOL, nan_ok=True)
    assert switched.info["placebo_se"] != other.info["placebo_se"]
    # diagnostics that need no draws stay the fit's
    assert switched.leave_one_out.equals(other.leave_one_out)


def test_ife_default_rng_replays_the_fit_and_generators_work(world) -> None:
    a = _ife(world, "bootstrap", rng=np.random.default_rng(21))
    _same_inference(a, a.with_inference("bootstrap"))
    # a Generator is taken as fit takes it
    b = _ife(world, "jackknife", rng=np.random.default_rng(21))
    _same_inference(a, b.with_inference("bootstrap", rng=np.random.default_rng(21)))
    # another seed gives other draws (the seed is used, not ignored)
    c = b.with_inference("bootstrap", rng=22)
    assert not np.allclose(c.replicates, a.replicates)


def test_ife_n_reps_override_matches_a_fit_with_it(world) -> None:
    direct = _ife(world, "bootstrap", n_reps=4)
    switched = _ife(world, "jackknife").with_inference("bootstrap", n_reps=4, rng=7)
    assert switched.replicates.shape[0] == 4
    _same_inference(direct, switched)


def test_rescaled_outcome_keeps_the_contract(world) -> None:
    # outcomes near 2^80 are estimated on a copy divided by a power of two (_scale.py);
    # the resampling is redone in those units and reported in the user's
    big = world.with_outcome("big", world.data["y"].to_numpy() * 2.0**80)
    direct = _ife(big, "jackknife", outcome="big")
    switched = _ife(big, "bootstrap", outcome="big").with_inference("jackknife", rng=7)
    assert direct.info["outcome_rescaled_by"] == switched.info["outcome_rescaled_by"]
    _same_inference(direct, switched)
    # and it is the ordinary-scale result times 2^80 (powers of two scale exactly here)
    small = _ife(world, "bootstrap").with_inference("jackknife", rng=7)
    np.testing.assert_allclose(switched.terms["se"], small.terms["se"] * 2.0**80, rtol=1e-9)


def test_matrix_completion_with_cross_validated_lambda(world) -> None:
    # lambda chosen by CV (the fit's first child generator), draws from the second
    opts = dict(outcome="y", rng=5, n_lambda=3, k=2, n_reps=5, diagnostics=False)
    direct = matrix_completion.fit(world, se_method="parametric", **opts)
    other = matrix_completion.fit(world, se_method="bootstrap", **opts)
    switched = other.with_inference("parametric", rng=5)
    assert switched.info["lambda"] == direct.info["lambda"]
    assert switched.info["rank"] == direct.info["rank"]
    _same_inference(direct, switched)
    assert other.info["se_method"] == "bootstrap"


def test_unsupported_method_and_missing_fit_are_clear_errors(world) -> None:
    res = _ife(world, None, n_reps=2)
    with pytest.raises(ZoneImpactError, match=r"'placebo'.*ife.*'bootstrap', 'jackknife', "):
        res.with_inference("placebo")
    with pytest.raises(ZoneImpactError, match="n_reps"):
        res.with_inference("bootstrap", n_reps=1)
    with pytest.raises(EstimationError, match="keeps no fitted problem"):
        replace(res, fitted=None).with_inference("jackknife")
