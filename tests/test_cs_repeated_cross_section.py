"""Callaway-Sant'Anna with repeated cross-sections (Sant'Anna & Zhao 2020 RC estimators)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mc_reps

from zoneimpact.errors import PanelError, SpecError
from zoneimpact.estimators import get_estimator
from zoneimpact.estimators.cs_repeated_cross_section import fit
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
# moderndid 0.2.0 (port of R did 2.x / DRDID) with panel=False on mpdta, and csdid 0.4.3
# for the weighted aggregation; written by benchmarks/reference/cs_rc_reference.py.
REF = json.loads((REPO / "benchmarks" / "reference" / "cs_rc_moderndid.json").read_text())

CONFIGS = {
    "never_dr": {},
    "notyet_dr": {"control_group": "not_yet_treated"},
    "never_dr_lpop": {"covariates": ["lpop"]},
    "never_ipw_lpop": {"covariates": ["lpop"], "est_method": "ipw"},
    "never_reg_lpop": {"covariates": ["lpop"], "est_method": "reg"},
    "notyet_dr_lpop": {"covariates": ["lpop"], "control_group": "not_yet_treated"},
    "never_dr_lpop_weighted": {"covariates": ["lpop"], "weights": "w"},
    "notyet_ipw_lpop_weighted": {
        "covariates": ["lpop"],
        "est_method": "ipw",
        "weights": "w",
        "control_group": "not_yet_treated",
    },
    "never_universal_weighted": {"weights": "w", "base_period": "universal"},
}
AGG = (("dynamic", "event:", "event_avg"), ("group", "cohort:", "cohort_avg"))
AGG += (("calendar", "calendar:", "calendar_avg"),)


def _weighted(df: pd.DataFrame) -> pd.DataFrame:
    # the generator's deterministic sampling weight (see cs_rc_reference.py)
    return df.assign(w=1 + (df["countyreal"] % 7) / 3 + (df["year"] - 2003) / 10)


@pytest.fixture(scope="module")
def rc_mpdta(mpdta_frame: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        _weighted(mpdta_frame),
        unit="countyreal",
        time="year",
        cohort="first.treat",
        outcomes="lemp",
        covariates=["lpop", "w"],
    )


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_moderndid_cells(rc_mpdta: Panel, name: str) -> None:
    """Every ATT(g,t) and its SE equals moderndid's RC estimators.

    Tolerance 1e-9: the same formulas in double precision agree to ~1e-13 (the logit and
    OLS solvers differ), far tighter than any substantive difference.
    """
    res = fit(rc_mpdta, outcome="lemp", **CONFIGS[name])
    ref = REF[name]["att_gt"]
    assert res.att_gt["cohort"].tolist() == [int(g) for g in ref["group"]]
    assert res.att_gt["time"].tolist() == [int(t) for t in ref["time"]]
    np.testing.assert_allclose(res.att_gt["estimate"], ref["att"], atol=1e-9)
    np.testing.assert_allclose(res.att_gt["se"], ref["se"], atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("name", [n for n in CONFIGS if not n.endswith("weighted")])
def test_matches_moderndid_aggregations(rc_mpdta: Panel, name: str) -> None:
    """Simple, dynamic, group and calendar aggregations with analytic SEs (unweighted:
    moderndid's cohort shares then equal R did's). Tolerance 1e-9 as above."""
    res = fit(rc_mpdta, outcome="lemp", **CONFIGS[name])
    t = res.terms.set_index("term")
    ref = REF[name]
    assert t.loc["att", "estimate"] == pytest.approx(ref["simple"]["att"], abs=1e-9)
    assert t.loc["att", "se"] == pytest.approx(ref["simple"]["se"], abs=1e-9)
    for typ, prefix, overall in AGG:
        labels = [f"{prefix}{int(i)}" for i in ref[typ]["index"]]
        np.testing.assert_allclose(t.loc[labels, "estimate"], ref[typ]["att"], atol=1e-9)
        np.testing.assert_allclose(t.loc[labels, "se"], ref[typ]["se"], atol=1e-9)
        assert t.loc[overall, "estimate"] == pytest.approx(ref[typ]["overall_att"], abs=1e-9)
        assert t.loc[overall, "se"] == pytest.approx(ref[typ]["overall_se"], abs=1e-9)


def test_weighted_aggregation_matches_csdid(rc_mpdta: Panel) -> None:
    """With sampling weights the cohort shares are weighted (R did's
    ``pg = mean(weights.ind * 1{G=g})``). moderndid 0.2 leaves them unweighted, so the
    reference is csdid 0.4.3: ATT -0.0428391 equal to 1e-9; its SE differs from R did's
    (moderndid's) by 3e-4 relative even unweighted, hence a 2e-3 relative tolerance."""
    for name in ("never_dr_lpop", "never_dr_lpop_weighted"):
        res = fit(rc_mpdta, outcome="lemp", **CONFIGS[name])
        assert res.estimate == pytest.approx(REF["csdid"][name]["att"], abs=1e-9)
        assert res.se == pytest.approx(REF["csdid"][name]["se"], rel=2e-3)
    # the weights move the estimate (-0.04175 unweighted): the test can fail
    assert (
        abs(REF["csdid"]["never_dr_lpop_weighted"]["att"] - REF["never_dr_lpop"]["simple"]["att"])
        > 1e-3
    )


def test_invariances(mpdta_frame: pd.DataFrame, rc_mpdta: Panel) -> None:
    """Row order and labels, a constant added to the outcome, the weights' scale and
    the outcome's scale leave the results unchanged (or scale them)."""
    opts = {"covariates": ["lpop"], "weights": "w"}
    base = fit(rc_mpdta, outcome="lemp", **opts)
    df = _weighted(mpdta_frame)
    rng = np.random.default_rng(7)
    shuffled = df.sample(frac=1, random_state=3).assign(
        countyreal=lambda d: d["countyreal"].map(
            dict(
                zip(
                    d["countyreal"].unique(),
                    rng.permutation(d["countyreal"].nunique()) + 10**6,
                    strict=True,
                )
            )
        ),
        lemp=lambda d: 3 * d["lemp"] + 100,
        w=lambda d: 7.5 * d["w"],
    )
    p2 = Panel.from_frame(
        shuffled,
        unit="countyreal",
        time="year",
        cohort="first.treat",
        outcomes="lemp",
        covariates=["lpop", "w"],
    )
    other = fit(p2, outcome="lemp", **opts)
    np.testing.assert_allclose(
        other.terms["estimate"], 3 * base.terms["estimate"], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(other.terms["se"], 3 * base.terms["se"], rtol=1e-9)


def test_bootstrap_and_clusters(mpdta_frame: pd.DataFrame) -> None:
    """Multiplier bootstrap (R did's IQR SEs, sup-t bands) is reproducible and agrees with
    the analytic SE (999 draws: within 15%); one cluster per row equals no clustering;
    clustering by state sums each county's rows (a row-level RC SE ignores that the same
    county appears every year, so it shrinks towards the panel SE)."""
    df = _weighted(mpdta_frame).assign(
        row=lambda d: np.arange(len(d)), state=lambda d: d["countyreal"] // 1000
    )
    panel = Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        cohort="first.treat",
        outcomes="lemp",
        covariates=["lpop", "w", "row", "state"],
    )
    opts = {"covariates": ["lpop"], "aggregations": ("simple", "dynamic")}
    base = fit(panel, outcome="lemp", **opts)
    b1 = fit(
        panel, outcome="lemp", bootstrap=True, n_boot=999, rng=np.random.default_rng(4), **opts
    )
    b2 = fit(
        panel, outcome="lemp", bootstrap=True, n_boot=999, rng=np.random.default_rng(4), **opts
    )
    pd.testing.assert_frame_equal(b1.terms, b2.terms)
    assert b1.se == pytest.approx(base.se, rel=0.15)
    assert b1.info["crit_event"] > 1.96
    rows = fit(panel, outcome="lemp", cluster="row", **opts)
    np.testing.assert_allclose(rows.terms["se"], base.terms["se"], rtol=1e-12)
    by_state = fit(panel, outcome="lemp", cluster="state", **opts)
    assert by_state.info["n_clusters"] == df["state"].nunique()
    assert by_state.se < base.se


def test_registered_and_errors(rc_mpdta: Panel, mpdta_frame: pd.DataFrame) -> None:
    assert get_estimator("cs_repeated_cross_section") is fit
    with pytest.raises(SpecError, match="'pop' is not a covariate"):
        fit(rc_mpdta, outcome="lemp", weights="pop")
    bad = _weighted(mpdta_frame)
    bad.loc[7, "w"] = -1.0
    p = Panel.from_frame(
        bad, unit="countyreal", time="year", cohort="first.treat", outcomes="lemp", covariates=["w"]
    )
    with pytest.raises(
        PanelError, match=r"'w' must be finite and >= 0; unit 8019, period 2005 has -1.0"
    ):
        fit(p, outcome="lemp", weights="w")
    with pytest.raises(SpecError, match="est_method"):
        fit(rc_mpdta, outcome="lemp", est_method="imp")


def test_monte_carlo_weighted_dr_unbiased_and_covers() -> None:
    """Known truth (benchmarks/mc_designs.py, design rc): conditional parallel trends,
    effects heterogeneous in x and a sample that over-represents high-x treated units.
    The weighted DR estimator is unbiased with ~95% coverage; dropping the weights is
    biased (+0.12 in the full run), which shows the weights matter."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import mc_designs

    reps = mc_reps(16, 500)
    rng = np.random.default_rng(16)
    tru = mc_designs.rc_truth()["att"]
    est_w, se_w, est_u = [], [], []
    for child in rng.spawn(reps):
        panel = mc_designs.rc_panel(mc_designs.simulate_rc(child, n_per_period=1200))
        r = fit(panel, outcome="y", covariates=["x"], weights="w", aggregations=("simple",))
        est_w.append(r.estimate)
        se_w.append(r.se)
        est_u.append(fit(panel, outcome="y", covariates=["x"], aggregations=("simple",)).estimate)
    est_w, se_w = np.array(est_w), np.array(se_w)
    # bias within 3 Monte Carlo standard errors of zero
    assert abs(est_w.mean() - tru) < 3 * est_w.std() / np.sqrt(reps)
    # the analytic SE tracks the sampling SD (full run: 0.0719 vs 0.0692; at 16 replications the SD itself is
    # uncertain by ~18%, so only a gross error, a factor of 1.6, fails)
    assert 0.6 < se_w.mean() / est_w.std() < 1.6
    cover = np.mean(np.abs(est_w - tru) <= 1.96 * se_w)
    assert cover >= 0.8
    # without the weights: biased upwards by more than 3 MC standard errors
    assert np.mean(est_u) - tru > 3 * np.std(est_u) / np.sqrt(reps)
