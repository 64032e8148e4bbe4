"""Continuous-dose DiD (Callaway, Goodman-Bacon & Sant'Anna 2024): ATT(d), ACRT(d), bands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mc_reps

from zoneimpact.errors import EstimationError, PanelError, SpecError
from zoneimpact.estimators import get_estimator
from zoneimpact.estimators.continuous_did import fit
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mc_designs  # noqa: E402

# diff-diff 3.13 ContinuousDiD (port of R contdid), benchmarks/reference/cgbs_reference.py
REF = json.loads((REPO / "benchmarks" / "reference" / "cgbs_diffdiff.json").read_text())
CONFIGS = {
    "never_cubic": {"degree": 3, "num_knots": 0},
    "never_cubic_2knots": {"degree": 3, "num_knots": 2},
    "notyet_quadratic": {"degree": 2, "num_knots": 1, "control_group": "not_yet_treated"},
}


@pytest.fixture(scope="module")
def dose_panel() -> Panel:
    # the generator's seeded draw (numpy Generator streams are stable across versions)
    return mc_designs.dose_panel(mc_designs.simulate_dose(np.random.default_rng(2024)))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_diff_diff(dose_panel: Panel, name: str) -> None:
    """ATT^o, ACRT^o and the ATT(d)/ACRT(d) curves with their SEs on contdid's default
    grid equal diff-diff's to 1e-10 (same sieve; observed ~1e-14). The ACRT^o SE is ours
    4-8% larger: our influence function adds the variation of the average over treated
    doses, which diff-diff leaves out (ACRT^o = mean_i ACRT(D_i) is a sample average)."""
    res = fit(dose_panel, outcome="y", dose="dose", n_boot=0, **CONFIGS[name])
    ref = REF[name]
    t = res.terms.set_index("term")
    dr = res.dose_response
    np.testing.assert_allclose(dr["dose"], ref["dose_grid"], atol=1e-12)
    assert t.loc["att", "estimate"] == pytest.approx(ref["att"], abs=1e-10)
    assert t.loc["att", "se"] == pytest.approx(ref["att_se"], abs=1e-10)
    assert t.loc["acrt", "estimate"] == pytest.approx(ref["acrt"], abs=1e-10)
    assert 1.0 < t.loc["acrt", "se"] / ref["acrt_se"] < 1.10
    np.testing.assert_allclose(dr["att"], ref["att_d"], atol=1e-10)
    np.testing.assert_allclose(dr["att_se"], ref["att_d_se"], atol=1e-10)
    np.testing.assert_allclose(dr["acrt"], ref["acrt_d"], atol=1e-10)
    np.testing.assert_allclose(dr["acrt_se"], ref["acrt_d_se"], atol=1e-10)


@pytest.mark.parametrize("name", ["never_cubic", "notyet_quadratic"])
def test_event_study_matches_diff_diff(dose_panel: Panel, name: str) -> None:
    """The binarised ATT^o by event time (contdid aggregation="eventstudy"; pre-periods
    against the period before, cells weighted by treated units) and its SEs equal
    diff-diff's to 1e-10."""
    res = fit(dose_panel, outcome="y", dose="dose", n_boot=0, **CONFIGS[name])
    ref = REF[name]["event_study"]
    t = res.terms.set_index("term")
    labels = [f"event:{e}" for e in ref["event"]]
    np.testing.assert_allclose(t.loc[labels, "estimate"], ref["att"], atol=1e-10)
    np.testing.assert_allclose(t.loc[labels, "se"], ref["se"], atol=1e-10)


def test_uniform_bands_are_wider_and_reproducible(dose_panel: Panel) -> None:
    a = fit(dose_panel, outcome="y", dose="dose", n_boot=299, rng=np.random.default_rng(1))
    b = fit(dose_panel, outcome="y", dose="dose", n_boot=299, rng=np.random.default_rng(1))
    pd.testing.assert_frame_equal(a.dose_response, b.dose_response)
    # a sup-t band over 90 correlated grid points: critical value between 1.96 and 3.5
    assert 1.96 < a.info["crit_att_d"] < 3.5
    assert 1.96 < a.info["crit_acrt_d"] < 3.5
    dr = a.dose_response
    np.testing.assert_allclose(
        dr["att_band_high"] - dr["att"], a.info["crit_att_d"] * dr["att_se"], rtol=1e-12
    )


def test_invariances(dose_panel: Panel) -> None:
    """Relabelled and shuffled units, an affine outcome (a*y + b) scale every number by a;
    rescaling the dose by c moves the grid by c and divides ACRT by c."""
    df = mc_designs.simulate_dose(np.random.default_rng(2024))
    base = fit(dose_panel, outcome="y", dose="dose", n_boot=0)
    moved = df.sample(frac=1, random_state=2).assign(
        unit=lambda d: 10_000 - d["unit"], y=lambda d: -2 * d["y"] + 5
    )
    other = fit(mc_designs.dose_panel(moved), outcome="y", dose="dose", n_boot=0)
    np.testing.assert_allclose(
        other.terms["estimate"], -2 * base.terms["estimate"], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(other.terms["se"], 2 * base.terms["se"], rtol=1e-9)
    scaled = fit(
        mc_designs.dose_panel(df.assign(dose=3 * df["dose"])), outcome="y", dose="dose", n_boot=0
    )
    np.testing.assert_allclose(
        scaled.dose_response["dose"], 3 * base.dose_response["dose"], rtol=1e-12
    )
    np.testing.assert_allclose(
        scaled.dose_response["att"], base.dose_response["att"], rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(
        scaled.dose_response["acrt"], base.dose_response["acrt"] / 3, rtol=1e-8, atol=1e-10
    )


def test_registered_and_errors(dose_panel: Panel) -> None:
    assert get_estimator("continuous_did") is fit
    with pytest.raises(SpecError, match="'size' is not a covariate"):
        fit(dose_panel, outcome="y", dose="size")
    df = mc_designs.simulate_dose(np.random.default_rng(2024))
    treated_unit = int(df.loc[df["g"] > 0, "unit"].iloc[0])
    bad = df.assign(dose=np.where(df["unit"] == treated_unit, 0.0, df["dose"]))
    with pytest.raises(PanelError, match=f"unit {treated_unit} is 0.0 with cohort"):
        fit(mc_designs.dose_panel(bad), outcome="y", dose="dose")
    varying = df.assign(dose=df["dose"] + 0.01 * df["time"] * (df["g"] > 0))
    with pytest.raises(PanelError, match="varies within unit"):
        fit(mc_designs.dose_panel(varying), outcome="y", dose="dose")


def test_monte_carlo_known_dose_response() -> None:
    """Known truth (benchmarks/mc_designs.py, design dose): ATT(d) = 0.5 d + 0.8 d^2 under
    strong parallel trends, dose-dependent levels. ATT^o, ATT(d) and ACRT(d) are unbiased
    and the uniform bands cover (full run in RESULTS.md)."""
    reps = mc_reps(20, 500)
    tru = mc_designs.dose_truth()
    recs = [
        r
        for rng in np.random.default_rng(5).spawn(reps)
        for r in mc_designs.dose_one(0, rng, n_boot=199)
    ]
    table = mc_designs.summarise(recs).set_index("term")
    point = table.loc[list(tru)]
    # each bias within 3.5 Monte Carlo standard errors (10 targets)
    assert np.all(np.abs(point["bias"]) < 3.5 * point["sd"] / np.sqrt(reps))
    assert point["coverage"].mean() >= 0.85
    assert table.loc["att_d uniform band", "coverage"] >= 0.8


# ------------------------------------------------------------------ unit weights
sys.path.insert(0, str(REPO / "benchmarks" / "reference"))
import cgbs_weighted_reference  # noqa: E402
import mc_dose_weights  # noqa: E402

# diff-diff 3.13 ContinuousDiD with SurveyDesign(weights="w"),
# benchmarks/reference/cgbs_weighted_reference.py
REF_W = json.loads((REPO / "benchmarks" / "reference" / "cgbs_weighted_diffdiff.json").read_text())
CONFIGS_W = {
    "never_cubic_weighted": {"degree": 3, "num_knots": 0},
    "notyet_quadratic_weighted": {
        "degree": 2,
        "num_knots": 1,
        "control_group": "not_yet_treated",
    },
}


def _weighted_panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="g", outcomes="y", covariates=["dose", "w"]
    )


def _diffdiff_survey_se(panel: Panel, cfg: dict) -> np.ndarray:
    """diff-diff's survey SE, sqrt(n/(n-1) sum_i (w_i psi_i - mean)^2), applied to our
    influence functions psi (ATT^o, ACRT^o, ATT(d), ACRT(d) on the default grid)."""
    from zoneimpact.estimators import continuous_did as cd

    cg = cfg.get("control_group", "never_treated")
    data = cd._unit_arrays(panel, "y", "dose", "w")
    sieve = cd._sieve(data.dose[data.treated], cfg["degree"], cfg["num_knots"], None)
    fits = [f for c in cd._post_cells(data, 0) if (f := cd._cell_fit(data, sieve, c, cg, 0))]
    wpsi = cd._aggregate(fits)[2] * np.asarray(data.w)[:, None]
    n = len(wpsi)
    return np.sqrt(n / (n - 1) * ((wpsi - wpsi.mean(axis=0)) ** 2).sum(axis=0))


@pytest.mark.parametrize("name", list(CONFIGS_W))
def test_weighted_matches_diff_diff(name: str) -> None:
    """With unit weights, ATT^o, ACRT^o, ATT(d), ACRT(d) and the event study equal
    diff-diff's ContinuousDiD(survey_design=SurveyDesign(weights=...)) to 1e-10 (observed
    ~1e-14). diff-diff's survey SEs multiply the (already weighted) influence function by
    the weight once more, sqrt(n/(n-1) sum (w_i psi_i - mean)^2): that formula applied to
    our influence functions reproduces them to 1e-10, so the influence functions agree;
    our SE, sqrt(sum psi_i^2), is the one that covers (Monte Carlo below and in
    benchmarks/RESULTS.md) and is 10-20% smaller here."""
    panel = _weighted_panel(cgbs_weighted_reference.weighted_dose_frame())
    cfg = CONFIGS_W[name]
    res = fit(panel, outcome="y", dose="dose", weights="w", n_boot=0, **cfg)
    ref = REF_W[name]
    t = res.terms.set_index("term")
    dr = res.dose_response
    np.testing.assert_allclose(dr["dose"], ref["dose_grid"], atol=1e-12)
    assert t.loc["att", "estimate"] == pytest.approx(ref["att"], abs=1e-10)
    assert t.loc["acrt", "estimate"] == pytest.approx(ref["acrt"], abs=1e-10)
    np.testing.assert_allclose(dr["att"], ref["att_d"], atol=1e-10)
    np.testing.assert_allclose(dr["acrt"], ref["acrt_d"], atol=1e-10)
    es = ref["event_study"]
    labels = [f"event:{e}" for e in es["event"]]
    np.testing.assert_allclose(t.loc[labels, "estimate"], es["att"], atol=1e-10)
    # diff-diff's variance formula on our influence functions (ACRT^o aside: ours adds
    # the averaging term over treated doses, as in the unweighted comparison above)
    se_dd = _diffdiff_survey_se(panel, {"num_knots": 0, **cfg})
    k = len(ref["dose_grid"])
    assert se_dd[0] == pytest.approx(ref["att_se"], abs=1e-10)
    np.testing.assert_allclose(se_dd[2 : 2 + k], ref["att_d_se"], atol=1e-10)
    np.testing.assert_allclose(se_dd[2 + k :], ref["acrt_d_se"], atol=1e-10)
    assert 0.75 < t.loc["att", "se"] / ref["att_se"] < 0.95


def test_integer_weights_equal_duplicated_units() -> None:
    """Integer weights (1 or 2) give the same points as the unweighted fit on a panel
    where every weight-2 unit appears twice (same sieve: knots at the dose extremes, a
    fixed grid); exact up to rounding (1e-12). Constant weights change nothing."""
    df = cgbs_weighted_reference.weighted_dose_frame()
    small = df[df["unit"] <= 300].assign(w=lambda d: 1.0 + (d["unit"] % 2))
    twins = small[small["w"] == 2].assign(unit=lambda d: d["unit"] + 10_000)
    dup = pd.concat([small, twins])
    opts = {"dose": "dose", "dose_grid": [0.2, 0.4, 0.6, 0.8], "n_boot": 0}
    for cg in ("never_treated", "not_yet_treated"):
        weighted = fit(_weighted_panel(small), outcome="y", weights="w", control_group=cg, **opts)
        doubled = fit(_weighted_panel(dup), outcome="y", control_group=cg, **opts)
        assert weighted.terms["term"].tolist() == doubled.terms["term"].tolist()
        np.testing.assert_allclose(
            weighted.terms["estimate"], doubled.terms["estimate"], rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            weighted.cells["weight"], doubled.cells["weight"], rtol=1e-12, atol=1e-15
        )
    flat = fit(_weighted_panel(small), outcome="y", **opts)
    same = fit(_weighted_panel(small.assign(w=7.0)), outcome="y", weights="w", **opts)
    np.testing.assert_allclose(same.terms["estimate"], flat.terms["estimate"], atol=1e-12)
    np.testing.assert_allclose(same.terms["se"], flat.terms["se"], rtol=1e-10)
    assert same.info["weights"] == "w" and flat.info["weights"] is None


def test_weighted_invariances() -> None:
    """Weighted fits: rescaling every weight, shuffling rows and relabelling units change
    nothing (1e-12 relative: the same sums in another order)."""
    df = cgbs_weighted_reference.weighted_dose_frame()
    opts = {"dose": "dose", "weights": "w", "n_boot": 0}
    base = fit(_weighted_panel(df), outcome="y", **opts)
    scaled = fit(_weighted_panel(df.assign(w=1e3 * df["w"])), outcome="y", **opts)
    np.testing.assert_allclose(scaled.terms["estimate"], base.terms["estimate"], rtol=1e-12)
    np.testing.assert_allclose(scaled.terms["se"], base.terms["se"], rtol=1e-10)
    moved = df.sample(frac=1, random_state=3).assign(unit=lambda d: 10_000 - d["unit"])
    other = fit(_weighted_panel(moved), outcome="y", **opts)
    np.testing.assert_allclose(
        other.terms["estimate"], base.terms["estimate"], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(other.terms["se"], base.terms["se"], rtol=1e-9)


def test_weight_errors() -> None:
    df = cgbs_weighted_reference.weighted_dose_frame()
    with pytest.raises(SpecError, match="'pop' is not in the panel"):
        fit(_weighted_panel(df), outcome="y", dose="dose", weights="pop")
    moving = df.assign(w=df["w"] + 0.1 * df["time"])
    with pytest.raises(EstimationError, match="'w' varies within unit 1 "):
        fit(_weighted_panel(moving), outcome="y", dose="dose", weights="w")
    zero = df.assign(w=np.where(df["unit"] == 5, 0.0, df["w"]))
    with pytest.raises(EstimationError, match="unit 5, period 1 has 0.0"):
        fit(_weighted_panel(zero), outcome="y", dose="dose", weights="w")


def test_monte_carlo_weights_matter_under_heterogeneity() -> None:
    """benchmarks/mc_dose_weights.py: effects (1 + 2h) f(d), weight 1 + 3h, so the
    population-weighted ATT(d) is 2.6 f(d) and the unweighted one 2 f(d). The weighted
    estimator is unbiased for the weighted truth (each bias within 3.5 Monte Carlo SEs;
    ACRT up to a small finite-sample ratio bias) with SEs that cover; the unweighted one
    misses it by 23% (ATT^o: bias about -0.32, > 10 Monte Carlo SEs). Full run (1,000
    replications) in RESULTS.md."""
    reps = mc_reps(30, 1000)
    table = mc_dose_weights.run(reps, n_boot=0).set_index(["estimator", "term"])
    tru = mc_dose_weights.truth()
    weighted = table.loc["weighted"].loc[list(tru)]
    # ACRT targets get 2% of the truth on top: weighted least squares with weights that
    # move with the effect has an O(1/n) ratio bias, -1.6% at the largest dose in the
    # 1,000-replication run (RESULTS.md), which 3.5 Monte Carlo SEs alone would not allow
    acrt = np.asarray(weighted.index.str.startswith("acrt"))
    truths = np.array([tru[k] for k in weighted.index])
    tol = 3.5 * weighted["sd"] / np.sqrt(reps) + 0.02 * np.abs(truths) * acrt
    assert np.all(np.abs(weighted["bias"]) < tol)
    assert weighted["coverage"].mean() >= 0.88
    # our influence-function SE tracks the sampling SD: over the 10 targets the mean
    # ratio is within 15% of 1 (one ratio's Monte Carlo error at 30 replications is ~13%);
    # diff-diff's survey formula (the weight counted twice) overstates it by ~50%
    ratio = weighted["mean_se"] / weighted["sd"]
    assert abs(ratio.mean() - 1) < 0.15
    dd = table.loc["weighted, diff-diff SE"].loc[list(tru)]
    assert (dd["mean_se"] / dd["sd"]).mean() > 1.25
    flat = table.loc["unweighted"].loc["att"]
    assert flat["bias"] < -10 * flat["sd"] / np.sqrt(reps)
    # its expectation is the unweighted target 2 E[f(D)]: bias (2 / 2.6 - 1) ATT_w^o
    expected = (2 / mc_dose_weights.FACTOR_WEIGHTED - 1) * tru["att"]
    assert abs(flat["bias"] - expected) < 3.5 * flat["sd"] / np.sqrt(reps)
