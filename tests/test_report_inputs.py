"""Figures and reports against the numbers of the results they draw (breaker D, session 21)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from zoneimpact.china.study import build_study_panel
from zoneimpact.estimators import callaway_santanna, ife, synthetic_control, synthetic_did
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.report import style
from zoneimpact.report.narrative import run_summary
from zoneimpact.report.plots import (
    counterfactual_gap_plot,
    event_study_plot,
    group_time_plot,
    placebo_gaps_plot,
    rmspe_ratio_hist,
    unit_map_plot,
)
from zoneimpact.report.tables import event_study_table
from zoneimpact.results import EstimationResult, terms_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_scpi import factor_world as sc_world  # noqa: E402

set_progress(False)


def _sdid_covariate_panel() -> Panel:
    """Two treated units from period 2007 whose covariate jumps with treatment, so the raw
    and the covariate-adjusted outcome give different gaps."""
    rng = np.random.default_rng(3)
    units, periods = 14, range(2000, 2012)
    rows = []
    for i in range(units):
        a = rng.normal()
        for t in periods:
            treated = i < 2 and t >= 2007
            x = rng.normal() + 3.0 * treated + 0.2 * i
            y = a + 0.1 * (t - 2000) + 2.0 * x + 1.5 * treated + rng.normal(scale=0.3)
            rows.append((f"u{i:02d}", t, int(treated), x, y))
    df = pd.DataFrame(rows, columns=["unit", "year", "d", "x", "y"])
    return Panel.from_frame(
        df, unit="unit", time="year", treatment="d", outcomes="y", covariates=["x"]
    )


@pytest.mark.parametrize("covariates", [None, ["x"]])
def test_sdid_gap_plot_post_mean_is_the_estimate(covariates: list[str] | None) -> None:
    # Arkhangelsky et al. (2021, eq. 1.1 and Section 8): the estimate is the post-period
    # mean of the treated mean minus the omega-weighted controls shifted by the
    # lambda-weighted pre-period gap, all on the outcome the weights were fitted on (net
    # of X'beta with covariates). Equal up to floating point, hence 1e-8. Before the fix
    # the covariate plot used the raw outcome (Prop 99 with retprice: -15.03 for -2.33).
    panel = _sdid_covariate_panel()
    res = synthetic_did.fit(panel, outcome="y", covariates=covariates, se_method=None)
    fig = counterfactual_gap_plot(res, panel=panel)
    gap = [ln for ln in fig.axes[1].lines if ln.get_label() == "Gap"][0]
    x, y = np.asarray(gap.get_xdata(), float), np.asarray(gap.get_ydata(), float)
    assert y[x >= 2007].mean() == pytest.approx(res.estimate, abs=1e-8)
    if covariates:
        assert "net of x" in fig.axes[0].get_ylabel()


def test_unit_map_draws_zones_outside_the_panel_apart_from_never_treated() -> None:
    # two zones opened before the data are exposure sources, not panel units: before the
    # fix they had no cohort and were drawn as never treated (China: 161 "never treated"
    # points for 98 never-treated cities). Counts are the constructed ones.
    geo = pd.DataFrame(
        {"lon": [100.0, 101, 102, 103, 104, 105], "lat": [30.0, 31, 32, 33, 34, 35]},
        index=pd.Index(["a", "b", "c", "d", "s1", "s2"], name="unit"),
    )
    cohorts = pd.Series([2005.0, 2008.0, np.inf, np.inf], index=["a", "b", "c", "d"])
    sources = pd.DataFrame({"cohort": [1990.0, 1992.0]}, index=pd.Index(["s1", "s2"]))
    fig = unit_map_plot(geo, cohorts, sources=sources)
    counts = {c.get_label(): len(c.get_offsets()) for c in fig.axes[0].collections}
    assert counts["Never treated"] == 2
    assert counts["Zone outside the panel (exposure source)"] == 2
    # without the sources table they are still not never-treated units
    counts = {
        c.get_label(): len(c.get_offsets()) for c in unit_map_plot(geo, cohorts).axes[0].collections
    }
    assert counts["Never treated"] == 2 and counts["Not in the panel"] == 2


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_sc_placebo_figures_use_the_results_kept_placebos() -> None:
    # drop_ratio discards placebos with a poor pre-period fit; the permutation p-value
    # counts the kept ones only (ADH 2010, Figs. 5-8). The figures printed a p-value over
    # every unit (Prop 99, drop_ratio=2: 0.0769 = 3/39 for the result's 0.136 = 3/22) and
    # drew the discarded placebos. Reference: the result's own p_value and kept column.
    panel, _ = sc_world(np.random.default_rng(5), J=10, T0=12, T1=3)
    res = synthetic_control.fit(panel, outcome="y", n_starts=1, placebo_starts=1, drop_ratio=4.0)
    kept = res.rmspe["kept"].astype(bool)
    assert 1 < kept.sum() < len(kept)  # the check needs some placebos dropped
    texts = _legend_texts(rmspe_ratio_hist(res))
    assert f"Treated (treated); p = {res.info['p_value']:.3g}" in texts
    assert f"Kept units ({kept.sum()} of {len(kept)})" in texts
    ax = placebo_gaps_plot(res).axes[0]
    grey = [ln for ln in ax.lines if ln.get_color() == style.PLACEBO_COLOR]
    assert len(grey) == kept.sum() - 1  # the kept placebos, the treated unit apart


def test_ife_gap_plot_pre_period_means_cover_the_units_the_result_used() -> None:
    # cohort 4 has 3 untreated periods (< min_T0 = 5), so IFE drops it; its level is 3
    # higher. The plotted treated pre-period means must average the treated units the
    # result used (its effects' units; Liu, Wang & Xu 2024 Fig. 2), not every treated
    # unit (breaker: 0.763 at E = -1 for 0.108 over the units used). Reference: the same
    # means computed by hand from the frame; exact, so 1e-12.
    rng = np.random.default_rng(0)
    f = rng.normal(size=14).cumsum()
    rows = []
    for i in range(60):
        g = [4, 9, 11, 0, 0, 0][i % 6]
        a, lam = rng.normal() + (3.0 if g == 4 else 0.0), rng.normal()
        for t in range(1, 15):
            y = a + lam * f[t - 1] + rng.normal(scale=0.3) + (1.0 if g and t >= g else 0.0)
            rows.append((i, t, g, y))
    d = pd.DataFrame(rows, columns=["unit", "time", "cohort", "y"])
    panel = Panel.from_frame(d, unit="unit", time="time", cohort="cohort", outcomes="y")
    with pytest.warns(UserWarning, match="min_T0"):
        res = ife.fit(panel, outcome="y", rng=np.random.default_rng(0), r=1, se_method=None)
    used = set(res.effects["unit"])
    assert not any(u % 6 == 0 for u in used)  # cohort 4 dropped
    pre = d[(d.cohort > 0) & (d.time < d.cohort) & d.unit.isin(used)]
    want = pre.groupby(pre.time - pre.cohort)["y"].mean()
    top = counterfactual_gap_plot(res, panel=panel).axes[0]
    line = [ln for ln in top.lines if ln.get_label() == "Treated"][0]
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    got = pd.Series(y[x < 0], index=x[x < 0])
    np.testing.assert_allclose(got.to_numpy(), want.reindex(got.index).to_numpy(), atol=1e-12)


def _cs_result():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(60):
        g = [3, 4, 0][i % 3]
        a = rng.normal()
        for t in range(1, 7):
            y = a + 0.2 * t + (0.5 if g and t >= g else 0.0) + rng.normal(scale=0.5)
            rows.append((i, t, g, y))
    d = pd.DataFrame(rows, columns=["unit", "time", "cohort", "y"])
    panel = Panel.from_frame(d, unit="unit", time="time", cohort="cohort", outcomes="y")
    return callaway_santanna.fit(
        panel, outcome="y", bootstrap=True, n_boot=99, rng=np.random.default_rng(1)
    )


def test_uniform_bands_carry_the_level_they_were_computed_at() -> None:
    # The result is fitted at alpha = 0.05; its bootstrap sup-t band is a 95% band and
    # cannot be recomputed at 0.10 (the draws are not stored). Before the fix, alpha=0.10
    # labelled it "90% uniform band" (event study), drew it as 90% (group-time plot), and
    # the table printed 90% intervals next to 95% bands with no level for the bands.
    res = _cs_result()
    assert res.alpha == 0.05
    texts = _legend_texts(event_study_plot(res, alpha=0.10))
    assert "90% pointwise CI" in texts and "95% uniform band" in texts
    # group-time plot at another level: pointwise estimate +- z_{0.95} se, the only
    # interval the stored numbers give at 90% (Callaway & Sant'Anna 2021, Sec. 4.1)
    fig = group_time_plot(res, alpha=0.10)
    att = res.att_gt.sort_values(["cohort", "time"])
    first = att[att["cohort"] == att["cohort"].min()]
    z = sps.norm.ppf(0.95)
    segs = np.concatenate([c.get_segments() for c in fig.axes[0].collections if c.get_segments()])
    got = {float(s[0][0]): (float(s[0][1]), float(s[1][1])) for s in segs}
    for _, row in first.iterrows():
        lo, hi = got[float(row["time"])]
        # exact arithmetic on stored numbers, 1e-12
        assert lo == pytest.approx(row["estimate"] - z * row["se"], abs=1e-12)
        assert hi == pytest.approx(row["estimate"] + z * row["se"], abs=1e-12)
    assert "90% pointwise CI" in _legend_texts(fig)
    # at the result's own level the stored band is drawn and named as such
    assert "95% uniform band" in _legend_texts(group_time_plot(res))
    notes = event_study_table(res, alpha=0.10).notes
    assert any(n.startswith("90% pointwise") for n in notes)
    assert "95% simultaneous (uniform) confidence bands in braces." in notes


def test_summary_does_not_call_an_estimate_without_interval_a_miss() -> None:
    # an estimate with no standard error has NaN bounds: it neither covers nor misses the
    # truth (before the fix: "Synthetic DiD miss it" with the estimate equal to the truth)
    sdid = EstimationResult(
        "synthetic_did", "y", terms_frame(["att"], [1.0], [np.nan]), n_units=10, n_obs=100
    )
    tw = EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.5]), n_units=10, n_obs=100)
    spec = NS(
        inference=NS(alpha=0.05),
        estimates=[NS(name="sdid", label=None), NS(name="tw", label=None)],
        data=NS(labels={}, units={}, outcomes=["y"], simulate={}),
    )
    truth = NS(overall={"y": 1.0}, displacement_share={"y": 0.0})
    sim = NS(truth=truth, design=NS(displacement_share=None))
    out = NS(spec=spec, results={"sdid": sdid, "tw": tw}, extras={}, data=NS(simulation=sim))
    text = " ".join(run_summary(out))
    assert "Synthetic DiD miss" not in text and "[, ]" not in text
    assert "Synthetic DiD 1.00 (no interval)" in text
    assert "Synthetic DiD has no interval" in text
    assert "the intervals of TWFE cover the true 1.00; none miss it." in text


def test_china_data_report_describes_the_specs_window_and_region() -> None:
    # [data.china] region = "central", first_year = 2000: the report must count the cities
    # and the already-treated ones the panel of that sample has (before: the national 13
    # fixture cities and "first zone in or before 1996"). Reference: Panel.from_frame on
    # the same filtered frame, as zoneimpact.datasets builds it.
    fix = Path(__file__).parent / "fixtures" / "china"
    admin = pd.read_csv(fix / "admin_units.csv", dtype={"code": str})
    frame, _, _, rep = build_study_panel(
        fix, geography=False, admin_units=admin, first_year=2000, region="central"
    )
    kept = frame[(frame["region"] == "central") & (frame["year"] >= 2000)]
    p = Panel.from_frame(
        kept, unit="city_code", time="year", cohort="cohort_any", outcomes=["fdi"],
        outside_window="adjust",
    )  # fmt: skip
    dropped = p.report["dropped_always_treated"]
    assert rep["n_cities"] == p.n_units + len(dropped) == 4
    assert rep["n_always_treated"]["any"] == len(dropped) == 1
    assert rep["years"] == (2000, 2022)
    assert rep["never_treated"]["any"] == int((~np.isfinite(p.unit_cohort)).sum())
    assert int(rep["cohort_counts"]["any"].sum()) == 2  # 340100 (2000) and 420600 (2010)
    assert "First zone in or before 2000" in rep["markdown"]
    assert "4 cities of the central region" in rep["markdown"]


@pytest.mark.parametrize("last_year", [2005, 2012])
def test_china_data_report_counts_zones_after_the_window_as_never_treated(last_year) -> None:
    # With last_year the panel (outside_window="adjust") recodes cities first zoned after
    # it as never treated; the report counted them as cohorts and not as never treated
    # (last_year=2005: never 5, cohorts 2010-2015 listed; the panel has 9 never treated).
    # Reference: Panel.from_frame on the same window, exact counts.
    fix = Path(__file__).parent / "fixtures" / "china"
    admin = pd.read_csv(fix / "admin_units.csv", dtype={"code": str})
    frame, _, _, rep = build_study_panel(
        fix, geography=False, admin_units=admin, first_year=1996, last_year=last_year
    )
    kept = frame[(frame["year"] >= 1996) & (frame["year"] <= last_year)]
    p = Panel.from_frame(
        kept, unit="city_code", time="year", cohort="cohort_any", outcomes=["fdi"],
        outside_window="adjust",
    )  # fmt: skip
    assert rep["never_treated"]["any"] == int((~np.isfinite(p.unit_cohort)).sum())
    counts = rep["cohort_counts"]["any"]
    in_window = counts[(counts.index > 1996) & (counts > 0)]
    finite = p.unit_cohort[np.isfinite(p.unit_cohort)]
    assert in_window.to_dict() == pd.Series(finite).astype(int).value_counts().to_dict()
    assert counts.index.max() <= last_year
    assert int(counts[counts.index <= 1996].sum()) == rep["n_always_treated"]["any"]
    after = int((frame.groupby("city_code")["cohort_any"].first() > last_year).sum())
    assert rep["zoned_after_window"]["any"] == after > 0
    assert f"of which first zoned after {last_year}" in rep["markdown"]
