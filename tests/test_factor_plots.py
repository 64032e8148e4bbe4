"""Gap plots and fect-style equivalence event plots (issue 15)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from zoneimpact.estimators import ife, synthetic_control, synthetic_did, twfe
from zoneimpact.inference.scpi import scpi_intervals
from zoneimpact.parallel import set_progress
from zoneimpact.report import style
from zoneimpact.report.plots import (
    PlotError,
    counterfactual_figures,
    counterfactual_gap_plot,
    equivalence_event_plot,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_ife import factor_world  # noqa: E402
from test_scpi import factor_world as sc_world  # noqa: E402

set_progress(False)


def _legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _bands(ax) -> list[np.ndarray]:
    """Vertices of the shaded regions (fill_between) on ``ax``."""
    return [p.get_paths()[0].vertices for p in ax.collections if isinstance(p, PolyCollection)]


@pytest.fixture(scope="module")
def ife_result():
    # half the units treated and the pre-periods held by half of them, so the pre-trend F
    # test is defined; a stopping tolerance of 1e-5 keeps the diagnostics' refits cheap
    panel, _ = factor_world(
        np.random.default_rng(11), n_units=40, n_periods=18, cohorts=(12, 14), treated_share=0.5
    )
    res = ife.fit(
        panel, outcome="y", r=2, rng=np.random.default_rng(1), n_reps=20,
        pretrend_min_share=0.5, tol=1e-5,
    )  # fmt: skip
    assert np.isfinite(res.info["pretrend_p"])
    return panel, res


def test_equivalence_plot_draws_the_band_over_pre_periods_only(ife_result) -> None:
    _, res = ife_result
    fig = equivalence_event_plot(res)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    m = res.info["equivalence_margin"]
    (band,) = _bands(ax)
    # the band spans [-margin, margin] and ends at the treatment onset (-0.5)
    assert band[:, 1].min() == pytest.approx(-m) and band[:, 1].max() == pytest.approx(m)
    assert band[:, 0].max() == pytest.approx(-0.5)
    pre = [float(t.split(":")[1]) for t in res.terms["term"] if t.startswith("event:-")]
    assert band[:, 0].min() == pytest.approx(min(pre) - 0.5)
    texts = _legend_texts(fig)
    assert "95% pointwise CI" in texts and any(t.startswith("Equivalence bounds") for t in texts)
    note = " ".join(t.get_text() for t in ax.texts)
    assert f"F test p = {res.info['pretrend_p']:.3f}" in note
    assert f"Equivalence test p = {res.info['pretrend_tost_p']:.3f}" in note
    # points: every event term drawn (pre in the "pre" colour)
    pre_line = [ln for ln in ax.lines if ln.get_label() == "Pre-treatment"][0]
    assert len(pre_line.get_xdata()) == len(pre)
    assert mcolors.same_color(pre_line.get_color(), style.PRE_COLOR)
    # a level stated in the legend follows alpha
    assert "90% pointwise CI" in _legend_texts(equivalence_event_plot(res, alpha=0.1))


def test_equivalence_plot_needs_a_margin() -> None:
    panel, _ = factor_world(np.random.default_rng(2), n_units=30, n_periods=12, cohorts=(8,))
    es = twfe.fit_event_study(panel, outcome="y")
    with pytest.raises(PlotError, match="margin"):
        equivalence_event_plot(es)
    fig = equivalence_event_plot(es, margin=0.5)
    (band,) = _bands(fig.axes[0])
    assert band[:, 1].max() == pytest.approx(0.5)


def test_gap_plot_for_counterfactual_estimators_by_event_time(ife_result) -> None:
    panel, res = ife_result
    fig = counterfactual_gap_plot(res, panel=panel)
    top, bottom = fig.axes[:2]
    gap = [ln for ln in bottom.lines if ln.get_label() == "Gap"][0]
    x, y = np.asarray(gap.get_xdata(), float), np.asarray(gap.get_ydata(), float)
    t = res.terms.set_index("term")["estimate"]
    # the gap after adoption is the ATT by event time; before, the out-of-sample errors
    for e in (0, 3):
        assert y[x == e][0] == pytest.approx(t[f"event:{e}"], rel=1e-9)
    assert y[x == -2][0] == pytest.approx(t["event:-2"], rel=1e-9)
    assert len(_bands(bottom)) == 1 and "95% pointwise CI" in _legend_texts(fig)
    assert top.get_ylabel() == "y" and bottom.get_xlabel() == "Periods relative to treatment"
    # without the panel the treated means before adoption are unknown: drawn as gaps
    treated = [
        ln for ln in counterfactual_gap_plot(res).axes[0].lines if ln.get_label() == "Treated"
    ]
    assert np.isnan(np.asarray(treated[0].get_ydata(), float)[:3]).all()


def test_gap_plot_for_sc_with_scpi_band_and_sdid() -> None:
    panel, _ = sc_world(np.random.default_rng(4), J=8, T0=15, T1=3)
    sc = synthetic_control.fit(panel, outcome="y", placebos=False)
    # the result's own intervals (fit(intervals="scpi")) are drawn by default; the run test
    # covers that path, here they are passed (30 draws keep the test fast)
    scpi = scpi_intervals(sc, panel, sims=30, rng=1)
    pi = scpi.table.rename(columns={"effect_low": "low", "effect_high": "high"}).set_index("term")
    fig = counterfactual_gap_plot(sc, intervals=scpi)
    top, bottom = fig.axes[:2]
    texts = _legend_texts(fig)
    # SCPI's level: each of its two error bounds at 95%, jointly at least 90% (CFT 2021)
    assert ">=90% SCPI prediction interval" in texts and ">=90% SCPI interval of Y(0)" in texts
    (band,) = _bands(bottom)
    assert band[:, 1].min() == pytest.approx(pi["low"].iloc[:-1].min())
    assert band[:, 1].max() == pytest.approx(pi["high"].iloc[:-1].max())
    assert [ln.get_label() for ln in top.lines][:2] == ["Treated (treated)", "Counterfactual"]
    assert any(t.startswith("First treated period (15") for t in texts)
    # SDID: the post-period mean gap is the SDID estimate (Arkhangelsky et al. 2021, eq. 1.1)
    sd = synthetic_did.fit(panel, outcome="y", se_method=None)
    gfig = counterfactual_gap_plot(sd, panel=panel)
    gap = [ln for ln in gfig.axes[1].lines if ln.get_label() == "Gap"][0]
    x, y = np.asarray(gap.get_xdata(), float), np.asarray(gap.get_ydata(), float)
    assert y[x >= 15].mean() == pytest.approx(sd.estimate, rel=1e-9)
    with pytest.raises(PlotError, match="panel"):
        counterfactual_gap_plot(sd)
    # a panel without the result's outcome (a claims run mixing specs) is a PlotError, so
    # the run skips that figure instead of failing
    other = panel.with_outcome("z", panel.data["y"].to_numpy())
    other = other.replace(
        data=other.data.drop(columns="y"), outcomes=tuple(o for o in other.outcomes if o != "y")
    )
    with pytest.raises(PlotError, match="no outcome 'y'"):
        counterfactual_gap_plot(sd, panel=other)
    assert "counterfactual_gap" not in counterfactual_figures(sd, panel=other)
    with pytest.raises(PlotError, match="draws synthetic control"):
        counterfactual_gap_plot(twfe.fit(panel, outcome="y"))


def test_gap_plot_names_the_level_its_intervals_were_computed_at() -> None:
    # session 46 left this: after with_terms(alpha=0.1) the result's own 95% conformal
    # intervals were labelled 90%; their level is on record (info["intervals_alpha"])
    # 40 pre-periods: conformal p-values step by 1/(T0 + 1), so the 95% set is bounded
    panel, _ = sc_world(np.random.default_rng(4), J=8, T0=40, T1=3)
    sc = synthetic_control.fit(panel, outcome="y", placebos=False, intervals="conformal")
    assert sc.info["intervals_alpha"] == 0.05
    at90 = sc.with_terms(sc.terms, alpha=0.10)
    assert at90.info["intervals_alpha"] == 0.05
    texts = _legend_texts(counterfactual_gap_plot(at90))
    assert "95% conformal interval" in texts and "90% conformal interval" not in texts
