"""Inputs a breaker found mishandled in session 21 (repeated cross-section CS, triple
differences, continuous DiD): each test fails on the code before the fix."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import SpecError
from zoneimpact.estimators import (
    continuous_did,
    cs_repeated_cross_section,
    first_difference,
    triple_difference,
)
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mc_designs  # noqa: E402


def _att(res) -> float:
    return float(res.terms.set_index("term").loc["att", "estimate"])


@pytest.mark.parametrize("method", ["dr", "reg"])
def test_rcs_covariate_far_from_zero_changes_nothing(
    method: str, mpdta_frame: pd.DataFrame
) -> None:
    # every regression has an intercept, so lpop + 9000 must give the lpop fit; before the
    # fix the uncentred design's condition number failed 4 of 12 cells (dr: -0.04994 for
    # -0.04175) and every cell from about 9300 on. Tolerance 1e-9: the same regressions
    # after an exact affine change of one column, solved in floating point
    df = mpdta_frame
    fits = []
    for off in (0.0, 9000.0, 1e5):
        p = Panel.from_frame(
            df.assign(z=df["lpop"] + off), unit="countyreal", time="year",
            cohort="first.treat", outcomes="lemp", covariates=["z"],
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = cs_repeated_cross_section.fit(
                p, outcome="lemp", covariates=["z"], est_method=method
            )
        fits.append(r)
    base = fits[0].terms.set_index("term")
    assert fits[0].info["n_cells_failed"] == 0
    for r in fits[1:]:
        assert r.info["n_cells_failed"] == 0
        t = r.terms.set_index("term")
        np.testing.assert_allclose(t["estimate"], base["estimate"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(t["se"], base["se"], rtol=1e-7)


@pytest.mark.parametrize("method", ["dr", "reg"])
def test_ddd_covariate_far_from_zero_changes_nothing(method: str) -> None:
    # x + 1e4 (an altitude in metres) made every cell's design "singular" before the fix;
    # the 2x2 regressions have intercepts, so the ATT is unchanged (tolerance as above)
    df = mc_designs.simulate_ddd(np.random.default_rng(11), n_units=400)

    def fit(x: pd.Series):
        p = Panel.from_frame(
            df.assign(x=x), unit="unit", time="time", cohort="g", outcomes="y",
            covariates=["q", "x"],
        )  # fmt: skip
        return triple_difference.fit(
            p, outcome="y", eligible="q", covariates=["x"], est_method=method
        )

    base, moved = fit(df["x"]), fit(df["x"] + 1e4)
    np.testing.assert_allclose(_att(moved), _att(base), rtol=0, atol=1e-9)
    se = [float(r.terms.set_index("term").loc["att", "se"]) for r in (base, moved)]
    assert se[1] == pytest.approx(se[0], rel=1e-7)


def test_continuous_did_anticipation_cells_are_not_post_treatment() -> None:
    # with anticipation=1 the cells t = g - 1 are pre-treatment: R did's aggte averages
    # t >= g only. They had entered ATT^o (0.378 against a truth of 0.543 on 3,000 units;
    # our CS gives 0.563). Check: ATT^o equals the cohort-share-weighted mean of the cells
    # t >= g computed from the result's own cell table (1e-12, the same sums), and every
    # cell in the table is post-treatment
    df = mc_designs.simulate_dose(np.random.default_rng(7), n_units=3000, n_periods=6)
    p = mc_designs.dose_panel(df)
    # cohort 2 has no period before 2 - 1 = 1: left out, and said so
    with pytest.warns(UserWarning, match="Cohort 2 has no period before 1"):
        r = continuous_did.fit(p, outcome="y", dose="dose", n_boot=0, anticipation=1)
    cells = r.cells
    assert (cells["time"] >= cells["cohort"]).all()
    assert float((cells["weight"] * cells["att"]).sum()) == pytest.approx(_att(r), abs=1e-12)
    # the truth of the design is 0.543 (mc_designs.dose_truth); 3,000 units give an SE
    # near 0.03, so the old 0.378 was 5 SEs away and the fix's value is within 1.5 SEs
    assert abs(_att(r) - mc_designs.dose_truth()["att"]) < 0.05


def _fd_panel(n_treated: int) -> Panel:
    rng = np.random.default_rng(0)
    rows = [
        (i, t, 5.0 if i < n_treated else np.inf, rng.normal())
        for i in range(40)
        for t in range(1, 9)
    ]
    df = pd.DataFrame(rows, columns=["unit", "time", "cohort", "y"])
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes="y", never_values=(np.inf,)
    )


def test_first_difference_warns_with_few_treated_clusters() -> None:
    # one treated unit: the CR1 SE averaged 0.19 against a Monte Carlo SD of 1.50 (a
    # breaker's 300 worlds); the fit now says so, at the caller's line, for both fits
    with pytest.warns(UserWarning, match=r"only 1 cluster\(s\) of 'unit'") as rec:
        first_difference.fit(_fd_panel(1), outcome="y")
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match=r"only 3 cluster\(s\)"):
        first_difference.fit_event_study(_fd_panel(3), outcome="y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first_difference.fit(_fd_panel(12), outcome="y")


def test_continuous_did_bands_do_not_depend_on_unit_labels() -> None:
    # the multiplier draws go over Panel.canonical_order, as CS's: the same seed on
    # relabelled units gives the same sup-t critical values (they were 2.584, 2.609 and
    # 2.688 for int, reversed and string labels). Equal to 1e-12: the same draws applied
    # to the same rows, summed in the same order
    df = mc_designs.simulate_dose(np.random.default_rng(2024))
    crits = []
    for unit in (df["unit"], 10000 - df["unit"], "u" + df["unit"].astype(str)):
        r = continuous_did.fit(
            mc_designs.dose_panel(df.assign(unit=unit)), outcome="y", dose="dose",
            n_boot=199, rng=np.random.default_rng(1),
        )  # fmt: skip
        crits.append([r.info["crit_att_d"], r.info["crit_acrt_d"]])
        # with_inference re-draws in the same order
        again = r.with_inference("bootstrap", n_boot=199, rng=np.random.default_rng(1))
        np.testing.assert_allclose(
            [again.info["crit_att_d"], again.info["crit_acrt_d"]], crits[-1], rtol=0, atol=1e-12
        )
    np.testing.assert_allclose(crits[1:], [crits[0]] * 2, rtol=0, atol=1e-12)


def test_continuous_did_period_spacing_and_holes() -> None:
    # the base period is the last one before g - anticipation (CS's rule), not g - 1: a
    # biennial panel is the consecutive one relabelled, so every term is equal (1e-12, the
    # same sums); before, it was refused ("No cohort has a base period")
    df = mc_designs.simulate_dose(np.random.default_rng(7), n_units=300, n_periods=5)
    a = continuous_did.fit(mc_designs.dose_panel(df), outcome="y", dose="dose", n_boot=0)
    b = continuous_did.fit(
        mc_designs.dose_panel(df.assign(time=df["time"] * 2, g=df["g"] * 2)),
        outcome="y", dose="dose", n_boot=0,
    )  # fmt: skip
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=1e-12)
    # a missing year 3: cohort 4 (54 units) compares period t with year 2, where it had
    # been dropped without a word
    hole = continuous_did.fit(
        mc_designs.dose_panel(df[df["time"] != 3]), outcome="y", dose="dose", n_boot=0
    )
    assert 4 in set(hole.cells["cohort"])
    assert set(hole.cells.loc[hole.cells["cohort"] == 4, "time"]) == {4, 5}


def test_continuous_did_warns_about_cells_left_out() -> None:
    # a cohort of 4 treated units cannot fit the default sieve (4 coefficients): its cells
    # leave every estimate, now with a warning naming them at the caller's line
    df = mc_designs.simulate_dose(np.random.default_rng(7), n_units=300, n_periods=5)
    small = df["unit"].isin(df.loc[df["g"] == 5, "unit"].unique()[4:])
    with pytest.warns(UserWarning, match=r"cells cannot fit the dose sieve.*\(5,5\)") as rec:
        continuous_did.fit(mc_designs.dose_panel(df[~small]), outcome="y", dose="dose", n_boot=0)
    assert any(w.filename == __file__ for w in rec)


def test_triple_difference_warns_with_few_treated_units() -> None:
    # one eligible unit in an enabling cohort: the influence-function SE averaged 0.54
    # against a true SD of 1.62 (coverage 43%, a breaker's 300 worlds); now a warning
    df = mc_designs.simulate_ddd(np.random.default_rng(3), n_units=200)
    treated = df.loc[(df["g"] > 0) & (df["q"] == 1), "unit"].unique()
    few = df[~df["unit"].isin(treated[1:])]
    with pytest.warns(UserWarning, match=r"only 1 unit\(s\) \(eligible") as rec:
        triple_difference.fit(mc_designs.ddd_panel(few), outcome="y", eligible="q")
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        triple_difference.fit(mc_designs.ddd_panel(df), outcome="y", eligible="q")


def test_continuous_did_refuses_what_the_sieve_cannot_estimate() -> None:
    # three distinct doses cannot fit a cubic (4 coefficients), and a dose grid outside
    # the treated doses was clamped to the boundary (ATT(0) = 0.21 where it is 0 by
    # definition); both are now refused by name
    df = mc_designs.simulate_dose(np.random.default_rng(3), n_units=600, n_periods=4)
    levels = np.array([0.2, 0.5, 1.0])
    units = df["unit"].unique()
    dose = dict(zip(units, levels[np.arange(len(units)) % 3], strict=True))
    df["dose"] = np.where(df["g"] > 0, df["unit"].map(dose), 0.0)
    p = mc_designs.dose_panel(df)
    with pytest.raises(SpecError, match="3 distinct doses"):
        continuous_did.fit(p, outcome="y", dose="dose", n_boot=0, degree=3, num_knots=0)
    with pytest.raises(SpecError, match=r"dose_grid values \[0.0, 2.0\] lie outside"):
        continuous_did.fit(
            p, outcome="y", dose="dose", n_boot=0, degree=2, num_knots=0,
            dose_grid=[0.0, 0.5, 2.0],
        )  # fmt: skip
    # within the support a quadratic is estimable: ATT(d) at the three doses is finite
    r = continuous_did.fit(
        p, outcome="y", dose="dose", n_boot=0, degree=2, num_knots=0, dose_grid=[0.2, 0.5, 1.0]
    )
    assert np.isfinite(r.dose_response["att"]).all()
