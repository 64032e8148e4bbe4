"""Labels, levels and rounding of the report layer (tables, narrative, HTML).

Each test pins a text the old report printed wrongly: the level of a claims table's
interval, the level of columns at different alphas, binned event times, p-value
precision, TWFE's controls, small numbers printed as zero, the Markdown star legend,
reference periods and fixed coefficients, a wild-bootstrap result tabulated at another
level, and the narrative's numbers.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from zoneimpact.estimators import spillover, twfe
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.report import html as zi_html
from zoneimpact.report import narrative
from zoneimpact.report.narrative import run_summary
from zoneimpact.report.tables import (
    Table,
    claims_table,
    event_study_table,
    pretrends_table,
    regression_table,
)
from zoneimpact.results import EstimationResult, terms_frame
from zoneimpact.simulate import simulate

set_progress(False)


def _res(alpha: float = 0.05, **kw) -> EstimationResult:
    """att = 1, SE 0.5 (normal reference: no df)."""
    return EstimationResult(
        "twfe", "y", terms_frame(["att", "event:0"], [1.0, 1.0], [0.5, 0.5]), alpha=alpha, **kw
    )


@pytest.fixture(scope="module")
def sim():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(
            rng=2,
            n_units=60,
            n_regions=12,
            first_year=2002,
            last_year=2012,
            waves={2006: 0.5, 2009: 0.5},
        )


# ----------------------------------------------------------------------------- 1 claims
def _verdicts() -> pd.DataFrame:
    # two rows of one claim (different outcomes) and a per-zone vs total net: the shape
    # of zoneimpact.claims.evaluate_claims' frame (numbers made up, printed as given)
    return pd.DataFrame(
        {
            "claim": ["stips", "stips", "net_zone", "net_total"],
            "data": ["data"] * 4,
            "estimator": ["", "spillover/imputation", "spillover/imputation", "spillover"],
            "outcome": ["gdp", "patents", "fdi", "fdi"],
            "estimand": ["net", "net", "net_per_treated", "net"],
            "estimate": [np.nan, 4.631, 1.5, 54.9],
            "ci_low": [np.nan, 3.173, 0.5, 39.2],
            "ci_high": [np.nan, 6.088, 2.5, 70.7],
            "margin": [np.nan, 0.594, 1.0, 28.9],
            "breakdown": [np.nan] * 4,
            "verdict": ["untestable", "supported", "inconclusive", "contradicted"],
            "note": [
                "outcome 'gdp' not in data 'data'",
                "90% CI (t, 22.3 df); margin 0.02 x pre_mean",
                "90% CI (t, 22.3 df); margin 0.1 x pre_mean",
                "90% CI (t, 22.3 df); margin 0.1 x pre_mean",
            ],
        }
    )


def test_claims_table_labels_the_verdict_level_and_tells_rows_apart() -> None:
    # before: a bare "CI" header (the verdicts' 90% interval read as the report's 95%) and
    # no outcome/estimand columns, so the two "stips" rows looked alike
    df = _verdicts()
    t = claims_table(df, alpha=0.05)
    # 1 - 2 alpha = 90%; every interval row's note says t
    assert "90% CI (t)" in t.columns
    assert {"Outcome", "Estimand"} <= set(t.columns)
    assert t.to_csv().splitlines()[0] == (
        "Claim,Data,Outcome,Estimand,Estimator,Estimate,90% CI (t),Margin,Breakdown,Verdict,Note"
    )
    cells = t.to_frame()
    assert cells["Outcome"].tolist()[:2] == ["gdp", "patents"]
    assert cells["Estimand"].tolist()[2:] == ["net_per_treated", "net"]
    assert cells["90% CI (t)"].tolist()[1] == "[3.173, 6.088]"
    # the level is stated against the estimates' 95% in the notes of md/tex/html
    assert "not the 95% intervals of the estimate tables" in t.notes[0]
    for text in (t.to_markdown(), t.to_latex(), t.to_html()):
        assert "90\\% CI (t)" in text or "90% CI (t)" in text
    # the verdict frame's notes are kept, numbered; identical notes share a number
    assert cells["Note"].tolist() == ["(1)", "(2)", "(3)", "(3)"]
    assert "(1) outcome 'gdp' not in data 'data'" in t.notes
    assert "(3) 90% CI (t, 22.3 df); margin 0.1 x pre_mean" in t.notes
    # without alpha, the level is read from the rows' notes
    assert "90% CI (t)" in claims_table(df).columns
    # at alpha = 0.10 the verdicts use 80% intervals
    assert "80% CI (t)" in claims_table(df, alpha=0.10).columns
    # the report page's raw verdict table says what ci_low/ci_high are
    assert "the (1 - 2 alpha) interval each verdict is judged with" in zi_html._verdicts_html(df)


# ----------------------------------------------------------------------------- 2 levels
def test_columns_at_different_levels_state_each_level() -> None:
    # before: "Pointwise confidence intervals in brackets." with no level anywhere, and
    # "Pointwise pointwise ..." in the event-study table
    a, b = _res(0.10), _res(0.05)
    t = regression_table({"A": a, "B": b}, ci=True)
    cells = t.to_frame().set_index("")
    # normal intervals 1 +/- z * 0.5: z_0.95 = 1.6449 -> [0.178, 1.822]; z_0.975 -> [0.020, 1.980]
    assert cells.iloc[2].tolist() == ["[0.178, 1.822]", "[0.020, 1.980]"]
    assert cells.loc["CI level"].tolist() == ["90%", "95%"]
    assert "Confidence intervals in brackets (level by column in the row CI level)." in t.notes
    notes = regression_table({"A": a, "B": b}).notes
    assert not any("Pointwise" in n for n in notes)
    es = event_study_table({"A": a, "B": b})
    assert es.to_frame().set_index("Event time").loc["CI level"].tolist() == ["90%", "95%"]
    assert not any("ointwise pointwise" in n for n in es.notes)
    # one level: no row, the level in the note as before
    one = regression_table({"A": a, "B": _res(0.10)}, ci=True)
    assert "CI level" not in one.to_frame()[""].tolist()
    assert "90% confidence intervals in brackets." in one.notes
    # the "type by column in the row Standard errors" note only when that row exists
    assert "Standard errors in parentheses." in t.notes


# ----------------------------------------------------------------------------- 3 bins
def test_binned_event_times_are_labelled_by_their_bins(sim) -> None:
    # before: "E = -2" / "E = 1" for bins that pool E <= -2 / E >= 1, and "E = -3" for
    # the bin [-4, -3] (the term is named by its event time closest to zero)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ends = twfe.fit_event_study(sim.panel, outcome="fdi", leads=2, lags=1, bin_endpoints=True)
        user = twfe.fit_event_study(sim.panel, outcome="fdi", bins=[[-4, -3], [0, 1]])
    assert ends.info["binned"] is True  # what the labels read
    stub = event_study_table(ends).to_frame()["Event time"].tolist()
    assert [s for s in stub if s.startswith("E")] == ["E <= -2", "E = 0", "E >= 1"]
    # info["bins"] = "-3=[-4..-3], 0=[0..1]"
    stub = event_study_table(user).to_frame()["Event time"].tolist()
    assert "E = -4..-3" in stub and "E = 0..1" in stub and "E = -3" not in stub
    assert "E = -2" in stub  # not binned
    rows = regression_table(ends, events=True).to_frame()[""].tolist()
    assert "Event time <= -2" in rows and "Event time >= 1" in rows
    # results that bin a term differently: the row keeps "E = -2", a note names the bins
    plain = EstimationResult(
        "imputation", "fdi", terms_frame(["event:-2", "event:0"], [0.1, 0.2], [0.1, 0.1])
    )
    both = event_study_table({"binned": ends, "plain": plain})
    assert "E = -2" in both.to_frame()["Event time"].tolist()
    assert any(
        n.startswith("binned: binned event times (E = -2 pools event times <= -2")
        for n in both.notes
    )


# ----------------------------------------------------------------------------- 4 p digits
def test_p_values_keep_three_decimals_whatever_the_digits() -> None:
    # before: a pre-trend p of 0.0647 printed "<1" at digits=0 and "<0.1" at digits=1
    res = _res(info={"pretrend_p": 0.06467774955751335})
    for d in (0, 1, 2, 5):
        assert regression_table(res, digits=d, stats=["pretrend_p"]).to_frame().iloc[-1, 1] == (
            "0.065"
        )
    small = _res(info={"pretrend_p": 3e-6})
    assert regression_table(small, digits=6, stats=["pretrend_p"]).to_frame().iloc[-1, 1] == (
        "<0.001"
    )
    diag = pd.DataFrame({"name": ["a"], "n_leads": [3], "wald_stat": [5.5], "wald_p": [0.0647]})
    cells = pretrends_table(diag, digits=1).to_frame().set_index("")
    assert cells.loc["Wald p-value", "a"] == "0.065"
    assert cells.loc["Wald stat.", "a"] == "5.5"


# ----------------------------------------------------------------------------- 5 controls
def test_twfe_records_its_covariates_for_the_controls_row(sim) -> None:
    # before: TWFE kept no info["covariates"], so the "Controls" row was blank
    data = sim.panel.data.assign(z=np.random.default_rng(0).normal(size=len(sim.panel.data)))
    panel = Panel.from_frame(
        data, unit="unit", time="time", outcomes="fdi", cohort="cohort", covariates=["z"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        static = twfe.fit(panel, outcome="fdi", covariates=["z"])
        dyn = twfe.fit_event_study(panel, outcome="fdi", covariates=["z"], leads=2, lags=2)
        bare = twfe.fit(panel, outcome="fdi")
    assert static.info["covariates"] == dyn.info["covariates"] == "z"
    cells = regression_table({"s": static, "d": dyn, "b": bare}).to_frame().set_index("")
    assert cells.loc["Controls"].tolist() == ["z", "z", "None"]
    # the covariates survive another variance
    assert static.with_inference("cluster", cluster="unit").info["covariates"] == "z"


# ----------------------------------------------------------------------------- 6 small numbers
def test_small_nonzero_numbers_keep_size_and_sign() -> None:
    # before: 2e-5 +/- 5e-6 printed "0.000***" / "(0.000)", -4e-4 "0.000" (sign lost)
    r = EstimationResult(
        "twfe",
        "y",
        terms_frame(["att", "negz", "nano"], [2e-5, -0.0004, 3e-9], [5e-6, 0.0001, 1e-9]),
        n_units=10,
        n_obs=100,
    )
    cells = regression_table(r, terms="all", stars=True).to_frame()
    col = cells.iloc[:, 1].tolist()
    # two significant digits: 2e-5 -> 0.000020, z = 4 -> p = 6e-5 < 0.01 -> ***
    assert col[:2] == ["0.000020***", "(0.0000050)"]
    assert col[2:4] == ["-0.00040***", "(0.00010)"]
    assert col[4:6] == ["3.0e-09***", "(1.0e-09)"]
    # a value printing nonzero at the digits is unchanged; exact zero stays 0.000
    r2 = EstimationResult("twfe", "y", terms_frame(["att"], [0.0], [0.25]))
    assert regression_table(r2).to_frame().iloc[:2, 1].tolist() == ["0.000", "(0.250)"]
    # SE 0.5 at digits=0 printed "(0)"
    r3 = EstimationResult("twfe", "y", terms_frame(["att"], [12.0], [0.5]))
    assert regression_table(r3, digits=0).to_frame().iloc[1, 1] == "(0.50)"


def test_extras_tables_print_counts_as_integers_and_p_values_as_p() -> None:
    # Table.from_frame (a run's extra tables, digits=4): before "12.0000", "0.0000" for a
    # p of 3e-6 and "0.0000" for -4e-5
    f = pd.DataFrame(
        {
            "estimate": [-4e-5, 2e-5],
            "se": [1e-5, 5e-6],
            "pretrend_p": [3e-6, 0.2],
            "n_clean": [12.0, np.nan],
        }
    )
    cells = Table.from_frame(f, digits=4).to_frame()
    assert cells["estimate"].tolist() == ["-0.000040", "0.000020"]
    assert cells["se"].tolist() == ["0.000010", "0.0000050"]
    assert cells["pretrend_p"].tolist() == ["<0.001", "0.200"]
    assert cells["n_clean"].tolist() == ["12", ""]
    # whole numbers in a column that is neither a count nor has a gap keep the decimals
    kept = Table.from_frame(pd.DataFrame({"y": [1.0, 2.0], "n_specs": [3.0, 4.0]}), digits=3)
    assert kept.to_frame().values.tolist() == [["1.000", "3"], ["2.000", "4"]]


# ----------------------------------------------------------------------------- 7 markdown
def test_markdown_star_legend_is_not_a_bullet() -> None:
    # before: the note "* p < 0.1, ..." started a CommonMark bullet list, dropping the "*"
    r = EstimationResult("twfe", "y", terms_frame(["att"], [0.17], [0.1]), n_units=10, n_obs=100)
    md = regression_table(r, stars=True).to_markdown()
    assert "\n\\* p < 0.1, ** p < 0.05, *** p < 0.01.  \n" in md
    assert "\n* p" not in md


# ----------------------------------------------------------------------------- 8 ref / SE 0
def test_reference_periods_and_fixed_coefficients() -> None:
    # before: "Event time -1 | 0.0000" in regression_table(events=True) and "0.300***" with
    # "[0.300, 0.300]" for an SE of exactly 0
    r = EstimationResult(
        "twfe",
        "y",
        terms_frame(
            ["att", "zerose", "event:-1", "event:0", "event:1"],
            [0.5, 0.3, 0.0, 0.5, 0.0],
            [0.1, 0.0, np.nan, 0.1, 0.0],
        ),
        n_units=10,
        n_obs=100,
    )
    cells = regression_table(r, terms="all", stars=True, ci=True).to_frame()
    rows = dict(zip(cells[""], cells.iloc[:, 1], strict=False))
    assert rows["Event time -1"] == "ref." and rows["Event time 1"] == "ref."
    lines = cells.iloc[:, 1].tolist()
    i = cells[""].tolist().index("zerose")
    assert lines[i] == "0.300"  # no stars
    assert lines[i + 1] == "(0.000)"
    assert cells[""].tolist()[i + 2] != ""  # no interval line: the next row is a term
    # z = 5 -> p < 0.01; 0.5 +/- 1.96 * 0.1 = [0.304, 0.696]
    assert rows["ATT"] == "0.500***"
    es = event_study_table(
        EstimationResult("twfe", "y", terms_frame(["event:0"], [0.3], [0.0])), stars=True
    )
    assert es.to_frame().iloc[0, 1] == "0.300"


# ----------------------------------------------------------------------------- 9 wild
def test_wild_result_at_another_level_uses_fieller_and_says_so() -> None:
    # before: at alpha = 0.05 a 90% wild result gave the displacement share the symmetric
    # estimate +/- t x SE instead of Fieller's set, silently
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = simulate(
            rng=2,
            n_units=150,
            n_regions=30,
            first_year=2002,
            last_year=2016,
            waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
            displacement_share=0.5,
        )
        r = spillover.fit(s.panel, outcome="fdi", n_boot=0, rng=1, alpha=0.10)
        w = r.with_inference("wild", n_boot=199, rng=3)
    got = w.conf_int(0.05).loc["displacement_share"]
    # Fieller's 95% set from the cluster (co)variances the wild result keeps, i.e. the
    # analytic fit's own interval at 95% (r.conf_int(0.05), spillover.own_interval)
    ref = spillover.own_interval(w, "displacement_share", 0.025)
    assert (got["lower"], got["upper"]) == pytest.approx(ref, rel=1e-12)
    assert (got["lower"], got["upper"]) == pytest.approx(
        tuple(r.conf_int(0.05).loc["displacement_share"]), rel=1e-12
    )
    row = w.terms.set_index("term").loc["displacement_share"]
    sym = row["estimate"] + sps.t.ppf(0.975, row["df"]) * row["se"]
    assert abs(got["upper"] - sym) > 1e-3  # Fieller's is not symmetric
    # other terms: estimate +/- t x SE at 95%; the wild p-values are kept
    d = w.terms.set_index("term").loc["direct"]
    assert w.conf_int(0.05).loc["direct", "upper"] == pytest.approx(
        d["estimate"] + sps.t.ppf(0.975, d["df"]) * d["se"], rel=1e-12
    )
    assert w.tidy(0.05).set_index("term").loc["direct", "p_value"] == d["p_value"]
    # at its own level the bootstrap's inverted intervals, as before
    assert w.conf_int().loc["direct", "lower"] == d["ci_low"]
    notes = regression_table({"wild": w, "analytic": r}, alpha=0.05, ci=True).notes
    assert sum("wild cluster bootstrap" in n for n in notes) == 1
    assert any(
        n.startswith("wild: p-values from the wild cluster bootstrap; its 95%") for n in notes
    )


# ----------------------------------------------------------------------------- 10 narrative etc.
def test_narrative_numbers_and_fallback_level() -> None:
    # before: "-0" for -0.0; the fallback interval used 1.96 at every level
    assert narrative._num(-0.0) == "0"
    assert narrative._num(-1e-9) == "-1e-09"
    assert narrative._num(-2.5) == "-2.50"
    res = NS(estimate=1.0, se=0.5, main_term="att")  # no conf_int: the fallback
    est, lo, hi = narrative._headline(res, 0.10)
    z = sps.norm.ppf(0.95)  # 1.6449
    assert (lo, hi) == pytest.approx((1 - z * 0.5, 1 + z * 0.5), rel=1e-12)


def test_summary_does_not_judge_an_event_study_average_against_the_overall_att() -> None:
    # before: "... TWFE event study miss it": its att averages the post-period event-time
    # coefficients with equal weights, not the overall ATT of the truth
    es = EstimationResult(
        "event_study", "y", terms_frame(["att"], [3.0], [0.5]), n_units=10, n_obs=100
    )
    tw = EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.5]), n_units=10, n_obs=100)
    spec = NS(
        inference=NS(alpha=0.05),
        estimates=[NS(name="es", label=None), NS(name="tw", label=None)],
        data=NS(labels={}, units={}, outcomes=["y"], simulate={}),
    )
    truth = NS(overall={"y": 1.0}, displacement_share={"y": 0.0})
    sim = NS(truth=truth, design=NS(displacement_share=None))
    out = NS(spec=spec, results={"es": es, "tw": tw}, extras={}, data=NS(simulation=sim))
    text = " ".join(run_summary(out))
    assert "the intervals of TWFE cover the true 1.00; none miss it." in text
    assert "TWFE event study miss" not in text
    assert "The att of TWFE event study averages its post-treatment event-time" in text


def test_html_numbers_and_missing_sample_sizes() -> None:
    # before: "4.612e+04" in the per-term tables and "0 units · 0 observations"
    assert zi_html._fmt(46123.4) == "46123"
    assert zi_html._fmt(0.012345) == "0.01235"
    r = EstimationResult("twfe", "y", terms_frame(["att"], [46123.4], [100.0]))
    page = zi_html._result_html("r", r, set())
    assert "46123" in page and "e+04" not in page
    assert "0 units" not in page and "0 observations" not in page
    # and the table footer leaves the unknown counts blank (rows dropped)
    assert "Observations" not in regression_table(r).to_frame()[""].tolist()
    assert math.isfinite(float(regression_table(r).data["estimate"].iloc[0]))


def test_year_columns_print_without_a_thousands_separator():
    # China control_counts printed min_controls_year as "1,997" (a quoted CSV field);
    # years and cohorts are labels, counts keep their separator
    df = pd.DataFrame(
        {"min_controls_year": [1997, 2022], "n_treated": [1370, 12], "cohort": [2004.0, None]}
    )
    csv = Table.from_frame(df).to_csv()
    assert csv.splitlines()[1:] == ['1997,"1,370",2004', "2022,12,"]
