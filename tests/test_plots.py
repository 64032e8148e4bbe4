"""Standard figures: every plot returns a Figure, draws on the given axes, never calls
plt.show, labels its axes, and keeps tick labels and legends readable at column width."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from zoneimpact.report import plots, style  # noqa: E402
from zoneimpact.report.plots import PlotError  # noqa: E402
from zoneimpact.results import EstimationResult, terms_frame  # noqa: E402

# ----------------------------------------------------------------------------- stand-ins


@dataclass(frozen=True)
class CSResult(EstimationResult):
    att_gt: pd.DataFrame | None = None


@dataclass(frozen=True)
class SCResult(EstimationResult):
    donor_weights: pd.Series | None = None
    treated_path: pd.Series | None = None
    synthetic_path: pd.Series | None = None
    gaps: pd.Series | None = None
    placebo_gaps: pd.DataFrame | None = None
    rmspe: pd.DataFrame | None = None
    treatment_period: int | None = None
    treated_unit: str | None = None


@dataclass(frozen=True)
class SDIDResult(EstimationResult):
    unit_weights: pd.Series | None = None
    time_weights: pd.Series | None = None


@dataclass(frozen=True)
class BaconResult(EstimationResult):
    comparisons: pd.DataFrame | None = None


def make_event(
    estimator: str = "callaway_santanna", *, seed: int = 0, band: bool = True
) -> CSResult:
    rng = np.random.default_rng(seed)
    ev = np.arange(-5, 6)
    est = np.where(ev >= 0, 0.1 * (ev + 1), 0.0) + rng.normal(0, 0.02, ev.size)
    se = np.full(ev.size, 0.04)
    extra = {"band_low": est - 2.8 * se, "band_high": est + 2.8 * se} if band else {}
    terms = terms_frame(
        ["att", *[f"event:{e}" for e in ev]],
        [0.3, *est],
        [0.05, *se],
        **({k: [np.nan, *v] for k, v in extra.items()}),
    )
    rows = []
    for g in (2004, 2006, 2007):
        for t in range(2003, 2008):
            if t == g - 1:
                continue
            rows.append(
                {
                    "cohort": g,
                    "time": t,
                    "event_time": t - g,
                    "estimate": 0.05 * max(t - g + 1, 0) + rng.normal(0, 0.01),
                    "se": 0.02,
                }
            )
    return CSResult(estimator, "lemp", terms, n_units=500, n_obs=2500, att_gt=pd.DataFrame(rows))


def make_twfe_event() -> EstimationResult:
    ev = [-4, -3, -2, 0, 1, 2, 3]  # E = -1 omitted: regression reference period
    est = [0.01, -0.02, 0.0, 0.1, 0.15, 0.2, 0.22]
    return EstimationResult(
        "event_study",
        "lemp",
        terms_frame([f"event:{e}" for e in ev], est, [0.03] * 7),
        n_units=500,
        n_obs=2500,
    )


def make_sc(seed: int = 1) -> SCResult:
    rng = np.random.default_rng(seed)
    years = np.arange(1970, 2001)
    units = [f"state_{i}" for i in range(38)]
    treated = pd.Series(120 - 1.5 * (years - 1970), index=years, dtype=float)
    synth = treated + rng.normal(0, 1.0, years.size)
    synth[years >= 1989] += np.linspace(2, 25, (years >= 1989).sum())
    gaps = treated - synth
    placebo = pd.DataFrame(
        rng.normal(0, 3, (years.size, len(units))).cumsum(0) * 0.3, index=years, columns=units
    )
    placebo["California"] = gaps
    pre = np.r_[rng.uniform(1, 6, len(units)), 1.7]
    post = np.r_[rng.uniform(1, 12, len(units)), 19.5]
    rmspe = pd.DataFrame(
        {"pre_rmspe": pre, "post_rmspe": post, "ratio": post / pre}, index=[*units, "California"]
    )
    w = pd.Series(0.0, index=units)
    w.iloc[[2, 5, 9, 20, 30]] = [0.33, 0.23, 0.2, 0.16, 0.08]
    terms = terms_frame(
        ["att", *[f"weight:{u}" for u in units]], [-19.5, *w], [np.nan] * (1 + len(units))
    )
    return SCResult(
        "synthetic_control",
        "cigsale",
        terms,
        n_units=39,
        n_obs=39 * 31,
        info={"treatment_period": 1989},
        donor_weights=w,
        treated_path=treated,
        synthetic_path=synth,
        gaps=gaps,
        placebo_gaps=placebo,
        rmspe=rmspe,
        treatment_period=1989,
        treated_unit="California",
    )


def make_sdid() -> SDIDResult:
    units = [f"state_{i}" for i in range(38)]
    uw = pd.Series(np.r_[np.linspace(0.06, 0.01, 30), np.zeros(8)], index=units)
    uw = uw / uw.sum()
    tw = pd.Series(0.0, index=np.arange(1970, 1989))
    tw.iloc[-3:] = [0.2, 0.3, 0.5]
    return SDIDResult(
        "synthetic_did",
        "cigsale",
        terms_frame(["att"], [-15.6], [8.4]),
        n_units=39,
        n_obs=39 * 31,
        unit_weights=uw,
        time_weights=tw,
    )


def make_bacon() -> BaconResult:
    comp = pd.DataFrame(
        {
            "type": ["Earlier vs later treated"] * 3
            + ["Later vs earlier treated"] * 3
            + ["Treated vs never treated"] * 3,
            "treated_cohort": [1, 1, 2, 2, 3, 3, 1, 2, 3],
            "control_cohort": [2, 3, 3, 1, 1, 2, 0, 0, 0],
            "estimate": [0.1, 0.2, 0.15, -0.3, -0.2, -0.1, 0.3, 0.25, 0.2],
            "weight": [0.05, 0.08, 0.07, 0.1, 0.06, 0.04, 0.3, 0.2, 0.1],
        }
    )
    return BaconResult(
        "bacon",
        "lemp",
        terms_frame(["att"], [0.1], [np.nan]),
        n_units=50,
        n_obs=500,
        comparisons=comp,
    )


def make_spill(outcome: str, scale: float = 1.0) -> EstimationResult:
    names = [
        "direct",
        "spillover",
        "spillover:0-50km",
        "spillover:50-100km",
        "spillover:100-200km",
        "net",
        "displacement_share",
    ]
    est = np.array([10.0, -4.0, -3.0, -0.8, -0.2, 6.0, 0.4]) * np.r_[[scale] * 6, 1]
    se = np.array([2.0, 1.5, 1.2, 0.9, 0.5, 2.5, 0.15]) * np.r_[[scale] * 6, 1]
    return EstimationResult(
        "spillover", outcome, terms_frame(names, est, se), n_units=300, n_obs=6000
    )


def make_geo() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    units = [f"c{i}" for i in range(120)]
    geo = pd.DataFrame(
        {"lon": rng.uniform(100, 122, 120), "lat": rng.uniform(22, 42, 120)}, index=units
    )
    coh = pd.Series(rng.choice([1992.0, 2000.0, 2006.0, np.inf], 120), index=units)
    return geo, coh


CASES = {
    "event_study_plot": lambda ax: plots.event_study_plot([make_event(), make_twfe_event()], ax=ax),
    "sc_paths_plot": lambda ax: plots.sc_paths_plot(make_sc(), ax=ax),
    "sc_gap_plot": lambda ax: plots.sc_gap_plot(make_sc(), ax=ax),
    "placebo_gaps_plot": lambda ax: plots.placebo_gaps_plot(make_sc(), ax=ax),
    "rmspe_ratio_hist": lambda ax: plots.rmspe_ratio_hist(make_sc(), ax=ax),
    "donor_weights_plot": lambda ax: plots.donor_weights_plot(make_sc(), ax=ax),
    "bacon_plot": lambda ax: plots.bacon_plot(make_bacon(), ax=ax),
    "decomposition_plot": lambda ax: plots.decomposition_plot(
        {"GDP": make_spill("gdp"), "Employment": make_spill("emp", 0.5)}, ax=ax
    ),
    "spillover_by_ring_plot": lambda ax: plots.spillover_by_ring_plot(make_spill("gdp"), ax=ax),
    "unit_map_plot": lambda ax: plots.unit_map_plot(*make_geo(), ax=ax),
}
MULTI = {
    "group_time_plot": (3, lambda ax: plots.group_time_plot(make_event(), ax=ax)),
    "sdid_weights_plot": (2, lambda ax: plots.sdid_weights_plot(make_sdid(), ax=ax)),
}


# ----------------------------------------------------------------------------- helpers
def _text_boxes(fig: Figure):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [
                t.get_window_extent(renderer)
                for t in axis.get_ticklabels()
                if t.get_visible() and t.get_text()
            ]
            # Only ticks within the view are drawn.
            out.append((ax, axis, boxes))
    return out


def assert_no_tick_overlap(fig: Figure) -> None:
    for ax, axis, boxes in _text_boxes(fig):
        for a, b in combinations(boxes, 2):
            assert not a.overlaps(b), (
                f"overlapping tick labels on {axis.axis_name}-axis of {ax.get_title()!r}"
            )


def assert_labelled(fig: Figure) -> None:
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        has_x = bool(ax.get_xlabel()) or any(bool(a.get_xlabel()) for a in fig.axes if a is not ax)
        has_y = bool(ax.get_ylabel()) or bool(fig._supylabel.get_text() if fig._supylabel else "")
        assert has_x and has_y, f"unlabelled axes in {ax.get_title()!r}"


def assert_legend_clear(fig: Figure) -> None:
    """Legends sit outside the plotting area, inside the figure, and their entries and the
    panel titles do not run into each other."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    fb = fig.bbox
    titles = [
        t.get_window_extent(r)
        for a in fig.axes
        if a.get_visible()
        for t in (a.title, a._left_title, a._right_title)
        if t.get_text()
    ]
    legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None] + list(fig.legends)
    for leg in legends:
        lb = leg.get_window_extent(r)
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            ab = ax.get_window_extent(r)
            inter_w = min(lb.x1, ab.x1) - max(lb.x0, ab.x0)
            inter_h = min(lb.y1, ab.y1) - max(lb.y0, ab.y0)
            # 1 px of slack for antialiasing at the shared edge.
            assert min(inter_w, inter_h) <= 1.0, "legend overlaps a plotting area"
        assert lb.x0 >= fb.x0 - 1 and lb.x1 <= fb.x1 + 1 and lb.y1 <= fb.y1 + 1, (
            "legend outside the figure"
        )
        texts = [t.get_window_extent(r) for t in leg.get_texts()]
        for a, b in combinations(texts, 2):
            assert not a.overlaps(b), "legend entries overlap"
        for tb in titles:
            assert not lb.overlaps(tb), "legend overlaps a panel title"


# ----------------------------------------------------------------------------- tests
@pytest.fixture(autouse=True)
def _no_show(monkeypatch):
    """The library must never call plt.show (CausalPy enforces the same)."""
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(Figure, "show", lambda *a, **k: calls.append(1))
    yield
    assert not calls, "plt.show() was called by the library"
    plt.close("all")


@pytest.mark.parametrize("name", sorted(CASES))
def test_single_axes_plots_new_figure(name):
    fig = CASES[name](None)
    assert isinstance(fig, Figure)
    # Column width, as promised by the style.
    assert fig.get_figwidth() == pytest.approx(style.COLUMN_WIDTH)
    assert_labelled(fig)
    assert_no_tick_overlap(fig)
    assert_legend_clear(fig)
    # Not registered with pyplot: a run writing many figures leaks nothing.
    assert plt.get_fignums() == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_single_axes_plots_use_given_ax(name):
    fig, ax = plt.subplots(figsize=(3.5, 2.6), layout="constrained")
    out = CASES[name](ax)
    assert out is fig
    assert ax.has_data()


@pytest.mark.parametrize("name", sorted(MULTI))
def test_multi_panel_plots(name):
    n, make = MULTI[name]
    fig = make(None)
    assert isinstance(fig, Figure)
    assert_labelled(fig)
    assert_no_tick_overlap(fig)
    assert_legend_clear(fig)
    fig2, axes = plt.subplots(n, 1, figsize=(3.5, 5), layout="constrained")
    assert make(axes) is fig2
    assert all(a.has_data() for a in axes)
    with pytest.raises(PlotError, match="sequence"):
        make(plt.subplots()[1])


def test_event_study_content():
    res = make_event()
    fig = plots.event_study_plot(res)
    ax = fig.axes[0]
    # Plotted points equal the event-time estimates (one series, no offset).
    pts = [line for line in ax.get_lines() if line.get_marker() == "o"][0]
    t = res.terms[res.terms["term"].str.startswith("event:")]
    np.testing.assert_allclose(pts.get_xdata(), np.arange(-5, 6))
    np.testing.assert_allclose(pts.get_ydata(), t["estimate"].to_numpy(), rtol=0, atol=1e-12)
    assert ax.get_xlabel() == "Periods relative to treatment"
    assert ax.get_ylabel() == "Effect on lemp"
    leg = ax.get_legend()
    labels = [t.get_text() for t in leg.get_texts()]
    # The confidence level is stated in the legend, for the intervals and the band.
    assert "95% pointwise CI" in labels and "95% uniform band" in labels
    # The band's swatch has the colour of the band drawn (not a grey stand-in).
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    swatch = [h for h in leg.legend_handles if isinstance(h, Patch)][0]
    band = [c for c in ax.collections if c.get_linewidth()[0] == pytest.approx(4.0)][0]
    assert to_rgb(swatch.get_facecolor()) == pytest.approx(to_rgb(band.get_color()[0]))
    assert swatch.get_alpha() == pytest.approx(band.get_alpha())
    # A result at alpha = 0.1 says 90%.
    from dataclasses import replace

    fig = plots.event_study_plot(replace(res, alpha=0.1))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "90% pointwise CI" in labels


def test_event_study_notes_mixed_pre_period_definitions():
    cs = make_event()  # estimator callaway_santanna, varying base by default
    twfe = make_twfe_event()
    ax = plots.event_study_plot({"CS": cs, "TWFE": twfe}).axes[0]
    label = ax.get_xlabel()
    assert label.startswith("Periods relative to treatment\nPre-periods:")
    flat = label.replace("\n", " ")
    assert "CS vs. the period before (varying base)" in flat
    assert "TWFE vs. E = -1 (reference period)" in flat
    # One definition only: no note.
    ax = plots.event_study_plot({"A": twfe, "B": twfe}).axes[0]
    assert ax.get_xlabel() == "Periods relative to treatment"


def test_event_study_overlay_offsets():
    fig = plots.event_study_plot({"CS": make_event(), "TWFE": make_twfe_event()}, offset=0.2)
    ax = fig.axes[0]
    cs = [ln for ln in ax.get_lines() if ln.get_label() == "CS"][0]
    tw = [ln for ln in ax.get_lines() if ln.get_label() == "TWFE"][0]
    np.testing.assert_allclose(cs.get_xdata(), np.arange(-5, 6) - 0.1)
    np.testing.assert_allclose(tw.get_xdata(), np.array([-4, -3, -2, 0, 1, 2, 3]) + 0.1)
    # TWFE omits E = -1: a hollow reference marker at (-1 + 0.1, 0).
    hollow = [
        ln for ln in ax.get_lines() if ln.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))
    ]
    assert len(hollow) == 1 and hollow[0].get_xdata()[0] == pytest.approx(-0.9)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["CS", "TWFE"]


def test_event_study_without_event_terms_errors():
    res = EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.1]))
    with pytest.raises(PlotError, match="event"):
        plots.event_study_plot(res)


def test_group_time_one_panel_per_cohort():
    fig = plots.group_time_plot(make_event())
    titles = [a.get_title(loc="left") for a in fig.axes if a.get_visible()]
    assert titles == ["Cohort 2004", "Cohort 2006", "Cohort 2007"]


def test_sc_paths_and_placebos_content():
    res = make_sc()
    ax = plots.sc_paths_plot(res).axes[0]
    ys = [ln.get_ydata() for ln in ax.get_lines() if ln.get_label().startswith("Treated")]
    np.testing.assert_allclose(ys[0], res.treated_path.to_numpy())
    assert any(
        ln.get_xdata()[0] == 1989 for ln in ax.get_lines() if "First treated" in ln.get_label()
    )
    ax = plots.placebo_gaps_plot(res).axes[0]
    grey = [ln for ln in ax.get_lines() if ln.get_color() == style.PLACEBO_COLOR]
    assert len(grey) == 38  # every placebo, the treated column excluded
    treated = [ln for ln in ax.get_lines() if ln.get_label() == "Treated (California)"][0]
    assert treated.get_linewidth() > grey[0].get_linewidth()
    # ADH's cap: keep placebos with pre-MSPE <= 2x California's (pre RMSPE 1.7).
    ax = plots.placebo_gaps_plot(res, pre_mspe_cap=2.0).axes[0]
    kept = sum(ln.get_color() == style.PLACEBO_COLOR for ln in ax.get_lines())
    expected = int((res.rmspe["pre_rmspe"].drop("California") ** 2 <= 2 * 1.7**2).sum())
    assert kept == expected


def test_rmspe_hist_p_value():
    res = make_sc()
    ax = plots.rmspe_ratio_hist(res).axes[0]
    r = res.rmspe["ratio"]
    p = (r >= r["California"]).mean()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"Treated (California); p = {p:.3g}" in labels


def test_bacon_twfe_line_is_weighted_mean():
    res = make_bacon()
    ax = plots.bacon_plot(res).axes[0]
    c = res.comparisons
    twfe = (c["estimate"] * c["weight"]).sum() / c["weight"].sum()
    line = [ln for ln in ax.get_lines() if ln.get_label().startswith("TWFE")][0]
    assert line.get_ydata()[0] == pytest.approx(twfe, abs=1e-12)
    assert sum(ln.get_linestyle() == "None" for ln in ax.get_lines()) == 3  # one series per type


def test_decomposition_and_rings_content():
    ax = plots.decomposition_plot({"GDP": make_spill("gdp")}).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([10.0, -4.0, 6.0])  # direct, total spillover, net
    assert "displ. 0.40" in ax.get_xticklabels()[0].get_text()
    ax = plots.spillover_by_ring_plot(make_spill("gdp")).axes[0]
    # Distance bands on a km axis: points at the band midpoints, joined, with CI shading.
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "50", "100", "200"]
    assert ax.get_xlabel() == "Distance from the nearest zone (km)"
    pts = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][0]
    np.testing.assert_allclose(pts.get_xdata(), [25.0, 75.0, 150.0])
    assert len(ax.collections) >= 2  # the CI band and the interval lines
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["95% pointwise CI"]
    # Rings that are not distance bands stay categories.
    res = make_spill("gdp")
    t = res.terms.assign(term=res.terms["term"].str.replace("km", " ring", regex=False))
    t["term"] = t["term"].str.replace("0-50 ring", "adjacent", regex=False)
    ax = plots.spillover_by_ring_plot(res.with_terms(t)).axes[0]
    ticks = [x.get_text() for x in ax.get_xticklabels()]
    assert ticks == ["50-100 ring", "100-200 ring", "adjacent"]
    # default_figures: the by-distance figure needs two rings or more.
    assert "spillover_by_ring" in plots.default_figures(make_spill("gdp"))
    one = res.terms.loc[~res.terms["term"].str.match(r"spillover:(50|100)")]
    assert "spillover_by_ring" not in plots.default_figures(res.with_terms(one))


def test_unit_map_many_cohorts_uses_colorbar():
    geo, _ = make_geo()
    coh = pd.Series(
        np.r_[np.arange(1984, 2004, dtype=float).repeat(5), [np.inf] * 20], index=geo.index
    )
    fig = plots.unit_map_plot(geo, coh)
    assert len(fig.axes) == 2  # map + colour bar
    assert_no_tick_overlap(fig)
    with pytest.raises(PlotError, match="lon"):
        plots.unit_map_plot(geo.rename(columns={"lon": "x"}), coh)


def test_default_figures_by_result_type():
    assert set(plots.default_figures(make_event())) == {
        "event_study",
        "group_time",
        "cohort_event_study",
    }
    assert set(plots.default_figures(make_sc())) == {
        "sc_paths",
        "sc_gap",
        "placebo_gaps",
        "rmspe_ratio",
        "donor_weights",
    }
    assert set(plots.default_figures(make_sdid())) == {"sdid_weights"}
    assert set(plots.default_figures(make_bacon())) == {"bacon"}
    assert set(plots.default_figures(make_spill("gdp"))) == {"decomposition", "spillover_by_ring"}
    assert (
        plots.default_figures(EstimationResult("twfe", "y", terms_frame(["att"], [1.0], [0.1])))
        == {}
    )
    assert plt.get_fignums() == []


def test_style_does_not_leak_rcparams():
    before = matplotlib.rcParams["font.size"]
    plots.event_study_plot(make_event())
    assert matplotlib.rcParams["font.size"] == before


def test_group_time_by_event_time_is_each_cohorts_event_study():
    res = make_event()
    cal = plots.group_time_plot(res)
    ev = plots.group_time_plot(res, event_time=True)
    cohorts = sorted(res.att_gt["cohort"].unique())
    for k, g in enumerate(cohorts):
        xs_cal = np.concatenate(
            [ln.get_xdata() for ln in cal.axes[k].get_lines() if ln.get_marker() in "os"]
        )
        xs_ev = np.concatenate(
            [ln.get_xdata() for ln in ev.axes[k].get_lines() if ln.get_marker() in "os"]
        )
        # The same cells, shifted by the cohort's first treated period: x = t - g.
        np.testing.assert_allclose(np.sort(xs_ev), np.sort(xs_cal) - g)
        post = [ln for ln in ev.axes[k].get_lines() if ln.get_label() == "Post-treatment"][0]
        assert post.get_xdata().min() == 0  # treatment onset at e = 0 in every panel
    assert ev.axes[len(cohorts) - 1].get_xlabel() == "Periods relative to treatment"
    assert "cohort_event_study" in plots.default_figures(res)


def test_group_time_legend_has_both_phases():
    fig = plots.group_time_plot(make_event())
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "Pre-treatment",
        "Post-treatment",
        "95% pointwise CI",
    ]


def test_unit_map_discrete_cohorts_legend():
    geo, coh = make_geo()
    ax = plots.unit_map_plot(geo, coh).axes[0]
    leg = ax.get_legend()
    assert leg.get_title().get_text() == "Cohort"
    assert sorted(t.get_text() for t in leg.get_texts()) == [
        "1992",
        "2000",
        "2006",
        "Never treated",
    ]
    # Equirectangular aspect: 1 / cos(mean latitude).
    assert ax.get_aspect() == pytest.approx(1 / np.cos(np.radians(geo["lat"].mean())))


def test_sc_reads_treatment_from_info():
    # The synthetic-control estimator stores the date and unit in info (treatment_start).
    base = make_sc()
    res = SCResult(
        "synthetic_control",
        "cigsale",
        base.terms,
        info={"treatment_start": 1989, "treated_unit": "California"},
        treated_path=base.treated_path,
        synthetic_path=base.synthetic_path,
        gaps=base.gaps,
        placebo_gaps=base.placebo_gaps,
        rmspe=base.rmspe,
    )
    ax = plots.sc_paths_plot(res).axes[0]
    assert any("1989" in ln.get_label() for ln in ax.get_lines())
    ax = plots.rmspe_ratio_hist(res).axes[0]
    assert any(t.get_text().startswith("Treated (California)") for t in ax.get_legend().get_texts())


def test_sdid_weights_by_cohort():
    base = make_sdid()
    uw = pd.DataFrame(
        {2004: base.unit_weights, 2006: base.unit_weights[::-1].to_numpy()},
        index=base.unit_weights.index,
    )
    tw = pd.DataFrame(
        {2004: base.time_weights, 2006: base.time_weights[::-1].to_numpy()},
        index=base.time_weights.index,
    )
    fig = plots.sdid_weights_plot(
        SDIDResult("synthetic_did", "y", base.terms, unit_weights=uw, time_weights=tw), top=10
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Cohort 2004", "Cohort 2006"]
    assert len(fig.axes[0].get_yticklabels()) == 10
    assert_no_tick_overlap(fig)


def test_decomposition_uses_totals_when_present():
    names = [
        "att",
        "direct",
        "spillover",
        "direct_total",
        "spillover_total",
        "net",
        "displacement_share",
    ]
    res = EstimationResult(
        "spillover",
        "gdp",
        terms_frame(
            names,
            [2.0, 2.0, -0.5, 200.0, -80.0, 120.0, 0.4],
            [0.5, 0.5, 0.2, 50.0, 30.0, 60.0, 0.1],
        ),
    )
    ax = plots.decomposition_plot(res).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([200.0, -80.0, 120.0])
    assert ax.get_ylabel().startswith("Total effect")
    # zone units' losses before their own zone are part of net: a fourth bar between
    t = terms_frame(
        [*names, "spillover_on_zones_total"],
        [2.0, 2.0, -0.5, 200.0, -80.0, 100.0, 0.5, -20.0],
        [0.5, 0.5, 0.2, 50.0, 30.0, 60.0, 0.1, 9.0],
    )
    ax = plots.decomposition_plot(res.with_terms(t)).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([200.0, -80.0, -20.0, 100.0])
    labels = [x.get_text() for x in ax.get_legend().get_texts()]
    assert labels == ["Direct", "Spillover", "Spillover on zones", "Net"]
    with pytest.raises(PlotError, match="separately"):
        plots.decomposition_plot([res, make_spill("emp")])


def test_default_figures_on_real_estimators(canonical):
    """Integration with the estimators built alongside."""
    from zoneimpact.estimators import get_estimator
    from zoneimpact.panel import Panel

    cs_fit = get_estimator("callaway_santanna")
    sc_fit = get_estimator("synthetic_control")
    m = pd.read_csv(canonical / "mpdta.csv")
    pm = Panel.from_frame(m, unit="countyreal", time="year", outcomes="lemp", cohort="first.treat")
    cs = cs_fit(pm, outcome="lemp", rng=np.random.default_rng(0), bootstrap=False)
    figs = plots.default_figures(cs)
    assert {"event_study", "group_time"} <= set(figs)
    p = pd.read_csv(canonical / "california_prop99.csv", sep=";")
    pp = Panel.from_frame(
        p, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    sc = sc_fit(pp, outcome="PacksPerCapita", rng=np.random.default_rng(0), n_starts=1)
    figs = plots.default_figures(sc)
    assert {"sc_paths", "sc_gap", "placebo_gaps", "rmspe_ratio", "donor_weights"} <= set(figs)
    ax = figs["sc_paths"].axes[0]
    assert any("1989" in ln.get_label() for ln in ax.get_lines())
    for fig in figs.values():
        assert_no_tick_overlap(fig)
        assert_legend_clear(fig)


def test_power_curve_plot_house_style():
    from types import SimpleNamespace

    rows = []
    for target, grid in (("direct", [0, 10, 20, 30]), ("displacement", [0, 0.5, 1.0])):
        for k, e in enumerate(grid):
            rows.append((target, e, [0.05, 0.4, 0.85, 0.99][k], 0.01))
    res = SimpleNamespace(
        curves=pd.DataFrame(rows, columns=["target", "effect", "power", "mc_se"]),
        mde={"direct": 20.0, "displacement": float("nan")},
        info={"alpha": 0.05, "power": 0.8},
        design=SimpleNamespace(outcome="fdi"),
    )
    fig = plots.power_curve_plot(res, outcome_label="FDI (USD million)")
    assert fig.get_figwidth() <= 7.0  # never wider than a page
    a, b = fig.axes[:2]
    assert a.get_title(loc="left") == "Direct effect" and a.get_ylabel() == "Power"
    assert a.get_xlabel() == "True effect on FDI (USD million)"
    assert b.get_xlabel() == "True displacement share"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [
        "95% Monte Carlo band",
        "Simulated power",
        "Target power 80%",
        "Test level 5%",
        "MDE",
    ]
    mde = [ln for ln in a.get_lines() if ln.get_label() == "MDE"][0]
    assert mde.get_xdata()[0] == 20.0
    assert not [ln for ln in b.get_lines() if ln.get_label() == "MDE"]  # NaN: not drawn
