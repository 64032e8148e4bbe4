"""Continuous-dose DiD (Callaway, Goodman-Bacon & Sant'Anna 2024): ATT(d), ACRT(d), bands."""

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
