"""Figure labels and positions read back from the drawn figures: outcome labels of
overlaid event studies, reference periods, binned event times, confidence levels of the
specification curve, axis limits, sort orders and period formatting."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from scipy import stats  # noqa: E402

from zoneimpact.china import speccurve  # noqa: E402
from zoneimpact.estimators import get_estimator  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.power import plot_power  # noqa: E402
from zoneimpact.report import plots  # noqa: E402

DATA = "/work/shared/data/canonical/"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def mpdta() -> Panel:
    m = pd.read_csv(DATA + "mpdta.csv")
    return Panel.from_frame(
        m, unit="countyreal", time="year", outcomes=["lemp", "lpop"], cohort="first.treat"
    )


def _legend(ax) -> list[str]:
    lg = ax.get_legend() or (ax.figure.legends[0] if ax.figure.legends else None)
    return [t.get_text() for t in lg.get_texts()] if lg else []


def _hollow_points(ax) -> list[tuple[float, float]]:
    """(x, y) of the hollow markers (the reference periods drawn at 0)."""
    out = []
    for ln in ax.lines:
        if ln.get_marker() not in (None, "None", "") and ln.get_markerfacecolor() == "white":
            out.extend(map(tuple, ln.get_xydata()))
    return out


# ----------------------------------------------------------------------------- 1 outcomes
def test_overlay_of_two_outcomes_names_each_outcome(mpdta):
    a = get_estimator("event_study")(mpdta, outcome="lemp")
    b = get_estimator("sun_abraham")(mpdta, outcome="lpop")
    ax = plots.event_study_plot([a, b]).axes[0]
    legend = _legend(ax)
    # each curve's own outcome (res.outcome) in its legend entry; before: "event_study",
    # "sun_abraham" under the y label "Effect on lemp"
    assert "event_study (lemp)" in legend and "sun_abraham (lpop)" in legend
    assert "lemp" not in ax.get_ylabel() and "lpop" not in ax.get_ylabel()
    # one outcome keeps its y label
    one = plots.event_study_plot([a]).axes[0]
    assert one.get_ylabel() == "Effect on lemp"


def test_run_overlays_only_results_on_one_outcome(tmp_path):
    from zoneimpact.report.outputs import build_figures, figure_captions
    from zoneimpact.run import estimate_all
    from zoneimpact.spec import load_spec

    spec = tmp_path / "mixed.toml"
    spec.write_text(
        f"""seed = 1
title = "mixed outcomes overlay"
[data]
path = "{DATA}mpdta.csv"
sep = ","
unit = "countyreal"
time = "year"
cohort = "first.treat"
outcomes = ["lemp", "lpop"]
labels = {{lemp = "Log teen employment", lpop = "Log population"}}
[inference]
alpha = 0.05
n_jobs = 1
[[estimate]]
name = "cs_emp"
estimator = "callaway_santanna"
outcome = "lemp"
[estimate.options]
bootstrap = false
[[estimate]]
name = "cs_pop"
estimator = "callaway_santanna"
outcome = "lpop"
[estimate.options]
bootstrap = false
[[estimate]]
name = "imp_pop"
estimator = "imputation"
outcome = "lpop"
[estimate.options]
pretrends = 3
"""
    )
    out = estimate_all(load_spec(spec))
    figs = build_figures(out)
    # before: one figure "event_study" with cs_emp and imp_pop under "Effect on Log teen
    # employment" (imp_pop is on lpop)
    emp, pop = figs["event_study"].axes[0], figs["event_study_lpop"].axes[0]
    assert emp.get_ylabel() == "Effect on Log teen employment"
    assert pop.get_ylabel() == "Effect on Log population"
    n_emp = [t for t in _legend(emp) if "CI" not in t and "band" not in t]
    n_pop = [t for t in _legend(pop) if "CI" not in t and "band" not in t]
    assert len(n_emp) == 1 and len(n_pop) == 2  # cs_emp | cs_pop, imp_pop (by res.outcome)
    caps = figure_captions(out, figs)
    assert caps["event_study_lpop"] == "Event studies overlaid: effect on Log population"


# ----------------------------------------------------------------------------- 2 level
@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_speccurve_label_states_the_level_used(mpdta, alpha):
    res = get_estimator("twfe")(mpdta, outcome="lemp", cluster="unit")
    row = speccurve._row(res, "att", alpha)
    curve = pd.DataFrame([dict(row, estimand="direct", scale="levels")])
    # the interval's level read back: est +- half with half/se a t(df) quantile
    half = row["ci_high"] - row["estimate"]
    level = 1 - 2 * stats.t.sf(half / row["se"], row["df"])
    assert level == pytest.approx(1 - 2 * alpha, abs=1e-9)
    ax = speccurve.curve_figure(curve).axes[0]
    # before: always "(90% CI)"; 1 - 2 alpha = 90% / 80%
    assert ax.get_ylabel() == f"direct effect of a zone ({100 * (1 - 2 * alpha):g}% CI)"


# ----------------------------------------------------------------------------- 3 reference
def test_reference_other_than_minus_one_is_drawn_and_described(mpdta):
    r = get_estimator("event_study")(mpdta, outcome="lemp", ref_period=-2)
    assert r.info["reference"] == -2
    ax = plots.event_study_plot(r).axes[0]
    # before: hollow 0 at -1 (where event:-1 has an estimate), none at -2; no note
    assert _hollow_points(ax) == [(-2.0, 0.0)]
    assert "E = -2 (reference" in ax.get_xlabel()


def test_several_references_are_drawn(mpdta):
    r = get_estimator("event_study")(mpdta, outcome="lemp", ref_period=[-4, -1])
    assert r.info["reference"] == "-4,-1"
    ax = plots.event_study_plot(r).axes[0]
    # before: only -1 drawn (and only when a term below -1 existed)
    assert sorted(_hollow_points(ax)) == [(-4.0, 0.0), (-1.0, 0.0)]
    assert "E = -4, -1 (reference periods)" in ax.get_xlabel().replace("\n", " ")


def test_default_reference_keeps_no_note(mpdta):
    r = get_estimator("event_study")(mpdta, outcome="lemp")
    ax = plots.event_study_plot(r).axes[0]
    assert _hollow_points(ax) == [(-1.0, 0.0)]
    assert ax.get_xlabel() == "Periods relative to treatment"


# ----------------------------------------------------------------------------- 4 bins
def test_binned_event_times_show_their_extent(mpdta):
    r = get_estimator("event_study")(mpdta, outcome="lemp", bins=[[2, 3]])
    assert r.info["bins"] == "2=[2..3]"
    ax = plots.event_study_plot(r).axes[0]
    est = r.terms.set_index("term").at["event:2", "estimate"]
    # the bin as a horizontal segment from 2 to 3 at the bin's estimate (info["bins"]);
    # before: only a point at E = 2
    flat = [
        s
        for c in ax.collections
        if isinstance(c, LineCollection)
        for s in c.get_segments()
        if s[0, 1] == s[1, 1]
    ]
    assert any(np.allclose(s, [[2.0, est], [3.0, est]]) for s in flat)
    assert "2..3" in [t.get_text() for t in ax.texts]


def test_binned_endpoints_are_labelled(mpdta):
    r = get_estimator("event_study")(mpdta, outcome="lemp", bin_endpoints=True, leads=2, lags=1)
    assert r.info["binned"] is True
    ax = plots.event_study_plot(r).axes[0]
    # mpdta has never-treated units: event:-2 pools E <= -2, event:1 pools E >= 1
    assert {"<=-2", ">=1"} <= {t.get_text() for t in ax.texts}


def test_sun_abraham_binned_window_is_labelled(mpdta):
    r = get_estimator("sun_abraham")(mpdta, outcome="lemp", min_e=-2, max_e=1, window="bin")
    assert r.info["window"] == "bin"
    ax = plots.event_study_plot(r).axes[0]
    assert {"<=-2", ">=1"} <= {t.get_text() for t in ax.texts}


# ----------------------------------------------------------------------------- 5 truth
def test_exposure_plot_shows_truth_and_zero():
    tab = pd.DataFrame(
        {
            "definition": ["adjacency", "ring 50km", "knn 2"],
            "displacement_share": [0.20, 0.25, 0.30],
            "displacement_share_low": [0.10, 0.15, 0.20],
            "displacement_share_high": [0.30, 0.35, 0.40],
        }
    )
    ax = plots.exposure_sensitivity_plot(tab, truth=0.5).axes[0]
    x0, x1 = ax.get_xlim()
    # before: xlim (0.085, 0.415) hid truth = 0.5 and zero
    assert x0 < 0.0 and x1 > 0.5


# ----------------------------------------------------------------------------- 6 weights
def test_donor_weights_ranked_by_size_with_signs():
    w = pd.Series({f"d{i}": 0.06 for i in range(16)} | {"neg": -0.3, "small": 0.01})
    res = SimpleNamespace(
        estimator="synthetic_control", donor_weights=w, info={}, terms=pd.DataFrame()
    )
    ax = plots.donor_weights_plot(res, top=5).axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    widths = [b.get_width() for b in ax.patches]
    # |-0.3| is the largest weight: shown first (top bar) with its sign; before it was
    # sorted last by signed value and cut by top=5
    ys = [t.get_position()[1] for t in ax.get_yticklabels()]
    assert shown[int(np.argmax(ys))] == "neg"  # the top bar (highest y)
    assert "neg" in shown and "small" not in shown
    assert min(widths) == pytest.approx(-0.3)


# ----------------------------------------------------------------------------- 7 power
def test_power_figure_draws_along_effect():
    cur = pd.DataFrame(
        {
            "target": ["direct"] * 4,
            "effect": [0.0, 4.0, 2.0, 1.0],
            "power": [0.05, 1.0, 0.8, 0.3],
            "mc_se": [0.02, 0.0, 0.04, 0.05],
        }
    )
    res = SimpleNamespace(curves=cur, info={"power": 0.8, "alpha": 0.05}, mde={"direct": 2.0})
    line = plot_power(res).axes[0].lines[0]
    # before: drawn in grid order [0, 4, 2, 1]
    assert line.get_xdata().tolist() == [0.0, 1.0, 2.0, 4.0]
    assert line.get_ydata().tolist() == [0.05, 0.3, 0.8, 1.0]


# ----------------------------------------------------------------------------- 8 SCPI
def _sc_result():
    df = pd.read_csv(DATA + "california_prop99.csv", sep=";")
    p = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    return get_estimator("synthetic_control")(p, outcome="PacksPerCapita", placebos=False)


def test_scpi_band_off_the_gap_is_labelled_and_warned():
    r = _sc_result()
    gap = (r.treated_path - r.synthetic_path).sort_index()
    post = gap[gap.index >= 1989]
    shift = 2.0  # SCPI's own effect 2 packs off the plotted gap (as its refit can be)
    iv = pd.DataFrame(
        {
            "term": [f"calendar:{t}" for t in post.index],
            "estimate": post.to_numpy() + shift,
            "low": post.to_numpy() + shift - 5,
            "high": post.to_numpy() + shift + 5,
            "method": "scpi",
        }
    )
    with pytest.warns(UserWarning, match="centred on SCPI's own"):
        fig = plots.counterfactual_gap_plot(r, intervals=iv)
    labels = [t for ax in fig.axes for t in _legend(ax)] + [
        t.get_text() for lg in fig.legends for t in lg.get_texts()
    ]
    assert any("SCPI's own fit" in t for t in labels)
    # centred on the gap: no warning, no note
    iv0 = iv.assign(estimate=post.to_numpy(), low=post.to_numpy() - 5, high=post.to_numpy() + 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig0 = plots.counterfactual_gap_plot(r, intervals=iv0)
    labels0 = [t for ax in fig0.axes for t in _legend(ax)] + [
        t.get_text() for lg in fig0.legends for t in lg.get_texts()
    ]
    assert not any("own fit" in t for t in labels0)


# ----------------------------------------------------------------------------- 9 digits
def test_long_period_codes_print_as_integers():
    ax = plt.figure().add_subplot()
    plots._treat_line(ax, 20040101.0)
    # before: "First treated period (2.0040e+07)" via :g
    assert ax.lines[0].get_label() == "First treated period (20040101)"
    assert plots._num(2.5) == "2.5" and plots._num(1989.0) == "1989"
