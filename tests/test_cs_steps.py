"""Callaway-Sant'Anna in three steps (issue 13): one fit, then aggregations and variances
from the kept group-time building blocks, equal to refitting with those settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import SpecError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.inference.bootstrap import cluster_sums
from zoneimpact.results import verdict_df


@pytest.fixture(scope="module")
def fitted(mpdta):
    return cs.fit(mpdta, outcome="lemp", rng=np.random.default_rng(7), n_boot=199)


def _same(a, b, rtol=0.0) -> None:
    pd.testing.assert_frame_equal(
        a.terms.reset_index(drop=True), b.terms.reset_index(drop=True), rtol=rtol, atol=0
    )


@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_aggregate_equals_refit_with_that_aggregation(mpdta, fitted, kind) -> None:
    # the same generator state replays the same multiplier draws, so bootstrap SEs and
    # bands are identical too (bit for bit: same arithmetic in the same order)
    refit = cs.fit(
        mpdta,
        outcome="lemp",
        rng=np.random.default_rng(7),
        n_boot=199,
        aggregations=[] if kind == "simple" else [kind],
    )
    _same(fitted.aggregate(kind), refit)


def test_aggregate_window_and_balance(mpdta, fitted) -> None:
    refit = cs.fit(
        mpdta,
        outcome="lemp",
        rng=np.random.default_rng(7),
        n_boot=199,
        aggregations=["dynamic"],
        min_e=-2,
        max_e=2,
        balance_e=1,
    )
    _same(fitted.aggregate("dynamic", min_e=-2, max_e=2, balance_e=1), refit)


def test_event_time_bins_average_the_dynamic_effects(fitted) -> None:
    dyn = fitted.aggregate("dynamic", bins=[[-3, -2], [0, 1]])
    terms = dyn.terms.set_index("term")
    # R did 2.x dynamic effects of mpdta (moderndid reference): e=0 -0.019932, e=1 -0.050957
    assert terms.loc["event_bin:0..1", "estimate"] == pytest.approx(
        (terms.loc["event:0", "estimate"] + terms.loc["event:1", "estimate"]) / 2, rel=1e-14
    )
    assert terms.loc["event_bin:0..1", "estimate"] == pytest.approx(
        (-0.019932 - 0.050957) / 2, abs=1e-6
    )
    pre = [terms.loc[f"event:{e}", "estimate"] for e in (-3, -2)]
    assert terms.loc["event_bin:-3..-2", "estimate"] == pytest.approx(np.mean(pre), rel=1e-13)
    with pytest.raises(SpecError, match="bins must be pairs"):
        fitted.aggregate("dynamic", bins=[[1, 0]])


def test_with_inference_analytic_equals_refit(mpdta, fitted) -> None:
    refit = cs.fit(mpdta, outcome="lemp", bootstrap=False)
    _same(fitted.with_inference("analytic"), refit, rtol=1e-13)
    assert fitted.with_inference("analytic").info["se_type"] == "analytic influence function"
    # the original is untouched (results are immutable; inference returns a new one)
    assert fitted.info["se_type"] == "multiplier bootstrap"


def test_cluster_on_a_user_column_and_two_ways(mpdta, mpdta_frame, fitted) -> None:
    # a state column the panel does not carry: FIPS county code // 1000
    state = mpdta_frame.groupby("countyreal")["countyreal"].first() // 1000
    one = fitted.with_inference("analytic", cluster=state.rename("state"))
    gt = fitted.group_time
    labels = state.reindex(gt.units).to_numpy()
    term_if = fitted.term_influence
    n = len(gt.units)
    s = cluster_sums(term_if, labels)
    manual = np.sqrt(np.diag(s.T @ s) / n**2)
    np.testing.assert_allclose(one.terms["se"], manual, rtol=1e-12)
    assert one.info["n_clusters"] == len(np.unique(labels))
    # two-way (state and a second grouping): CGM V1 + V2 - V12
    other = pd.Series(gt.units % 7, index=gt.units, name="g7")
    two = fitted.with_inference("analytic", cluster=[state.rename("state"), other])
    s2 = cluster_sums(term_if, other.to_numpy())
    s12 = cluster_sums(term_if, pd.factorize(pd.MultiIndex.from_arrays([labels, other]))[0])
    v = (s.T @ s + s2.T @ s2 - s12.T @ s12) / n**2
    np.testing.assert_allclose(two.terms["se"], np.sqrt(np.clip(np.diag(v), 0, None)), rtol=1e-12)
    # a verdict's t reference reads the smaller dimension's count, as the imputation
    # estimator's two-way SEs and fixest's t(min(G) - 1) do: here the 7 groups, not the
    # 29 states (before: no count, so the normal)
    assert two.info["n_clusters"] == min(len(np.unique(labels)), 7) == 7
    assert verdict_df(two, "att") == 6.0
    with pytest.raises(SpecError, match="one dimension"):
        fitted.with_inference("bootstrap", cluster=[state, other])


def test_bootstrap_with_clusters_equals_refit(mpdta, mpdta_frame) -> None:
    frame = mpdta_frame.assign(state=mpdta_frame["countyreal"] // 1000)
    from zoneimpact import Panel

    p = Panel.from_frame(
        frame,
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
        covariates=["state"],
    )
    base = cs.fit(p, outcome="lemp", rng=np.random.default_rng(3), n_boot=99, bootstrap=False)
    redone = base.with_inference("bootstrap", cluster="state", rng=np.random.default_rng(3))
    refit = cs.fit(p, outcome="lemp", rng=np.random.default_rng(3), n_boot=99, cluster="state")
    _same(redone, refit)


def test_aggregate_survives_rescaling(mpdta, fitted) -> None:
    big = cs.fit(
        mpdta.with_outcome("y", mpdta.data["lemp"].to_numpy() * 2.0**900),
        outcome="y",
        bootstrap=False,
    )
    small = cs.fit(mpdta, outcome="lemp", bootstrap=False)
    # the fit rescales an outcome near the float limits; so does the later aggregation
    # (a power-of-two factor: estimates and SEs exact up to the last bits)
    for col in ("estimate", "se"):
        np.testing.assert_allclose(
            big.aggregate("group").terms[col],
            small.aggregate("group").terms[col] * 2.0**900,
            rtol=1e-12,
        )
