"""ETWFE and PPML variances without refitting (issue 13): ``with_inference("cluster")`` on any
column (numeric or string), a Series by unit, or two columns, from the scores and bread the
fit keeps; checked against refits and pyfixest (benchmarks/reference/
etwfe_ppml_inference_reference.py) on R did's mpdta."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import etwfe, ppml

REF = json.loads(
    (Path(__file__).parents[1] / "benchmarks/reference/etwfe_ppml_inference.json").read_text()
)


@pytest.fixture(scope="module")
def panel(mpdta_frame: pd.DataFrame) -> Panel:
    df = mpdta_frame.assign(
        state=mpdta_frame["countyreal"] // 1000,
        emp=np.exp(mpdta_frame["lemp"]),
        pop=np.exp(mpdta_frame["lpop"]),
        # the intersection of state and year, for the hand CGM combination
        state_year=(mpdta_frame["countyreal"] // 1000) * 10_000 + mpdta_frame["year"],
    )
    # the same states as string labels, carried by the geography table
    geo = (
        df.groupby("countyreal")["state"]
        .first()
        .map(lambda s: f"state {s}")
        .rename("province")
        .rename_axis("unit")
        .reset_index()
    )
    return Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        outcomes=["lemp", "emp"],
        cohort="first.treat",
        covariates=["state", "pop", "state_year"],
        geography=geo,
    )


# (estimator, fit keyword arguments) covering both ETWFE models and both ssc conventions
CASES = {
    "etwfe_linear": (etwfe, {"outcome": "lemp"}),
    "etwfe_linear_fixest_weighted": (etwfe, {"outcome": "lemp", "ssc": "fixest", "weights": "pop"}),
    "etwfe_poisson": (etwfe, {"outcome": "emp", "method": "poisson"}),
    "ppml": (ppml, {"outcome": "emp"}),
    "ppml_fixest": (ppml, {"outcome": "emp", "ssc": "fixest"}),
}


@pytest.fixture(scope="module")
def fits(panel):
    return {k: mod.fit(panel, **kw) for k, (mod, kw) in CASES.items()}


def _tol(case: str, exact: float) -> float:
    # statsmodels' GLM sandwich (ETWFE Poisson) takes its bread from the weights of the last
    # IRLS iteration, ours from the converged mu, so they differ by that last step: measured
    # 1.2e-11 (own clustering) and 1.9e-11 (state) relative on the newest releases, 1.05e-10
    # and 1.17e-10 on the floors (numpy 1.26, scipy 1.11, statsmodels 0.14.0, 2026-12-01);
    # 1e-9 still fails any SE off by more than rounding. The others are the same algebra
    # (rounding, < 1e-14)
    return 1e-9 if case == "etwfe_poisson" else exact


@pytest.mark.parametrize("case", list(CASES))
def test_own_clustering_reproduces_the_fit(fits, case) -> None:
    res = fits[case]
    again = res.with_inference("cluster")
    tol = _tol(case, 1e-12)
    np.testing.assert_allclose(again.terms["se"], res.terms["se"], rtol=tol)
    # off-diagonal covariances can be small: compare them relative to the largest entry
    scale = float(np.abs(res.vcov.to_numpy()).max())
    np.testing.assert_allclose(again.vcov, res.vcov, rtol=tol, atol=tol * scale)
    np.testing.assert_array_equal(again.terms["estimate"], res.terms["estimate"])
    if case.startswith("etwfe"):
        np.testing.assert_allclose(again.att_gt["se"], res.att_gt["se"], rtol=tol)
    assert again.info["n_clusters"] == res.info["n_clusters"] == 500


@pytest.mark.parametrize("case", list(CASES))
def test_string_column_and_series_equal_a_refit_on_the_state(panel, fits, case) -> None:
    mod, kw = CASES[case]
    refit = mod.fit(panel, **kw, cluster="state")
    res = fits[case]
    # "province": string labels from the geography table; the same partition as "state"
    by_column = res.with_inference("cluster", cluster="province")
    by_unit = panel.data.groupby("unit")["state"].first().rename("my_states")
    by_series = res.with_inference("cluster", cluster=by_unit)
    tol = _tol(case, 1e-10)
    for new in (by_column, by_series):
        np.testing.assert_allclose(new.terms["se"], refit.terms["se"], rtol=tol)
        np.testing.assert_allclose(new.terms["df"], refit.terms["df"])
        assert new.info["n_clusters"] == refit.info["n_clusters"] == 29
        if case.startswith("etwfe"):
            np.testing.assert_allclose(new.att_gt["se"], refit.att_gt["se"], rtol=tol)
    assert by_column.info["cluster"] == "province"
    assert by_series.info["cluster"] == "my_states"


def _cells(res) -> pd.Series:
    g = res.att_gt
    names = [f"cell:{c}:{t}" for c, t in zip(g["cohort"], g["time"], strict=True)]
    return pd.Series(g["se"].to_numpy(), index=names)


@pytest.mark.parametrize("key", ["state", "state+year"])
def test_etwfe_linear_matches_pyfixest(fits, key) -> None:
    res = fits["etwfe_linear"]
    cluster = "state" if key == "state" else ["state", "time"]
    ours = _cells(res.with_inference("cluster", cluster=cluster, ssc="fixest"))
    # pyfixest 0.60 feols(lemp ~ cell dummies | countyreal + year, vcov={"CRV1": key}):
    # the same regression and factor (fixest's nested K, two-way with the smallest G);
    # measured differences < 4e-14 relative, 1e-10 leaves room for BLAS
    ref = pd.Series(REF["etwfe"][key], dtype=float).reindex(ours.index)
    assert ref.notna().sum() >= 6
    np.testing.assert_allclose(ours[ref.notna()], ref[ref.notna()], rtol=1e-10)
    # where CGM's V1 + V2 - V12 has a negative diagonal pyfixest reports NaN; so do we
    assert ours[ref.isna()].isna().all()


@pytest.mark.parametrize("key", ["state", "state+year"])
def test_ppml_matches_pyfixest_fepois(fits, key) -> None:
    cluster = "state" if key == "state" else ["state", "time"]
    res = fits["ppml_fixest"].with_inference("cluster", cluster=cluster)
    ref = REF["ppml"][key]
    # pyfixest 0.60 fepois(emp ~ d | countyreal + year, vcov={"CRV1": key}): coefficient equal
    # to 6e-17; the SE differs by 2.6e-9 (state) and 2.9e-9 (state+year) relative, the two
    # IRLS stopping points (pyfixest evaluates its sandwich at its own last iterate)
    assert res.estimate == pytest.approx(ref["estimate"], abs=1e-12)
    assert res.se == pytest.approx(ref["se"], rel=1e-8)
    att_pct = res.terms.set_index("term").loc["att_pct"]
    assert att_pct["se"] == pytest.approx(np.exp(res.estimate) * res.se, rel=1e-15)
    assert res.vcov.iloc[1, 1] == pytest.approx(att_pct["se"] ** 2, rel=1e-14)


def _cr1_factor(g: int) -> float:
    return g / (g - 1)


@pytest.mark.parametrize("case", ["etwfe_poisson", "ppml"])
def test_two_way_is_the_cgm_combination_of_refits(panel, fits, case) -> None:
    """Cameron, Gelbach & Miller (2011, eq. 2.11) by hand from three one-way refits
    (state, year, state x year): ``V = f_min (V1/f1 + V2/f2 - V12/f12)`` with the CR1
    factors; the ``(N-1)/(N-K)`` part is common (ssc="statsmodels" counts every parameter)."""
    mod, kw = CASES[case]
    two = fits[case].with_inference("cluster", cluster=["state", "time"])
    parts = {c: mod.fit(panel, **kw, cluster=c) for c in ("state", "time", "state_year")}
    g = {c: r.info["n_clusters"] for c, r in parts.items()}
    assert (g["state"], g["time"], two.info["n_clusters"]) == (29, 5, 5)  # 2003-2007
    f_min = _cr1_factor(5)
    hand = f_min * (
        parts["state"].vcov.to_numpy() / _cr1_factor(g["state"])
        + parts["time"].vcov.to_numpy() / _cr1_factor(g["time"])
        - parts["state_year"].vcov.to_numpy() / _cr1_factor(g["state_year"])
    )
    # a difference of three sandwiches: rounding relative to the largest entry (measured
    # < 1e-13 for PPML; the refits' statsmodels GLM for ETWFE Poisson, see _tol)
    scale = np.abs(hand).max()
    np.testing.assert_allclose(two.vcov.to_numpy(), hand, atol=_tol(case, 1e-12) * scale)
    assert two.info["cluster"] == "state + time"


def test_the_original_result_is_unchanged(fits) -> None:
    for case, res in fits.items():
        terms, vcov, info = res.terms, res.vcov, res.info
        cells = res.att_gt if case.startswith("etwfe") else None
        new = res.with_inference("cluster", cluster="province")
        assert new is not res and type(new) is type(res)
        assert not np.allclose(new.terms["se"], res.terms["se"])
        pd.testing.assert_frame_equal(res.terms, terms)
        pd.testing.assert_frame_equal(res.vcov, vcov)
        assert dict(res.info) == dict(info) and res.info["cluster"] == "unit"
        if cells is not None:
            pd.testing.assert_frame_equal(res.att_gt, cells)


def test_rescaled_outcome_keeps_the_design_in_user_units(panel) -> None:
    # an outcome beyond 2**64 is fitted on a power-of-two rescaled copy and reported in the
    # user's units (estimators._scale); the kept design must be rescaled with it
    big = panel.with_outcome("emp", panel.data["emp"] * 2.0**70)
    res = etwfe.fit(big, outcome="emp", method="poisson")
    assert res.info["outcome_rescaled_by"] > 1
    refit = etwfe.fit(big, outcome="emp", method="poisson", cluster="state")
    new = res.with_inference("cluster", cluster="state")
    # the Poisson sandwich's last-IRLS-step gap (_tol above)
    np.testing.assert_allclose(new.terms["se"], refit.terms["se"], rtol=_tol("etwfe_poisson", 0))
    lin = etwfe.fit(big.with_outcome("lemp", big.data["lemp"] * 2.0**70), outcome="lemp")
    lin_refit = etwfe.fit(
        big.with_outcome("lemp", big.data["lemp"] * 2.0**70), outcome="lemp", cluster="state"
    )
    np.testing.assert_allclose(
        lin.with_inference("cluster", cluster="state").terms["se"],
        lin_refit.terms["se"],
        rtol=1e-12,
    )


@pytest.mark.parametrize("case", ["etwfe_linear", "etwfe_poisson", "ppml"])
def test_bad_cluster_raises_naming_it(fits, panel, case) -> None:
    res = fits[case]
    with pytest.raises(ZoneImpactError, match="'county_group'"):
        res.with_inference("cluster", cluster="county_group")
    partial = panel.data.groupby("unit")["state"].first().iloc[1:].rename("partial")
    with pytest.raises(ZoneImpactError, match="'partial'.*unit"):
        res.with_inference("cluster", cluster=partial)
    with pytest.raises(ZoneImpactError, match="method"):
        res.with_inference("wild")
    with pytest.raises(ZoneImpactError, match="ssc"):
        res.with_inference("cluster", ssc="stata")
