"""Exposure definitions: k-nearest maps, zones outside the sample as exposure sources, the
effect-by-distance curve, the cross-validated cutoff and the sensitivity table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import GeographyError, SpecError
from zoneimpact.estimators import spillover
from zoneimpact.exposure import build_exposure, exposure_from_adjacency, exposure_from_knn
from zoneimpact.sensitivity import cv_cutoff, distance_curve, exposure_sensitivity
from zoneimpact.simulate import simulate

#: 300 units in 30 regions, four waves, spillovers within exactly 100 km, light noise
RADIUS = dict(
    n_units=300,
    n_regions=30,
    first_year=1998,
    last_year=2022,
    waves={2004: 0.3, 2008: 0.25, 2012: 0.25, 2016: 0.2},
    radius_km=100.0,
    noise_sd=5.0,
    zero_share=0.0,
)


@pytest.fixture(scope="module")
def radius_world():
    """Spillovers reach exactly 100 km (half of each zone's gain, shared by the
    never-zone units of its region within the radius); light noise."""
    return simulate(rng=2, **RADIUS)


def _line_panel(cohorts: dict[str, float], *, adjacency=None, sources=None, **kw) -> Panel:
    """Units on a line of longitude 100-106, 6 years, additive outcome."""
    rows = []
    names = list(cohorts)
    for k, u in enumerate(names):
        for t in range(2000, 2006):
            rows.append({"unit": u, "year": t, "g": cohorts[u], "y": float(k + t)})
    geo = pd.DataFrame(
        {"unit": names, "lat": 30.0, "lon": 100.0 + np.arange(len(names)), "region": "r"}
    )
    return Panel.from_frame(
        pd.DataFrame(rows),
        unit="unit",
        time="year",
        outcomes="y",
        cohort="g",
        geography=geo,
        adjacency=adjacency,
        sources=sources,
        **kw,
    )


def test_knn_exposes_each_zones_nearest_units():
    # zone a at lon 100: its 2 nearest are b (101) and c (102); d, e stay clean
    p = _line_panel({"a": 2003, "b": 0, "c": 0, "d": 0, "e": 0})
    tab = exposure_from_knn(p, k=2).table
    assert tab["role"].to_dict() == {
        "a": "direct",
        "b": "exposed",
        "c": "exposed",
        "d": "clean",
        "e": "clean",
    }
    assert tab.loc["b", "exposure_onset"] == 2003
    with pytest.raises(GeographyError, match="k must be"):
        exposure_from_knn(p, k=0)


def test_always_treated_zones_stay_exposure_sources():
    # unit z got its zone in 1998, before the data: it leaves the estimation sample but
    # still exposes its neighbour b from the first period, so b is not a clean control
    adj = pd.DataFrame({"unit": ["z", "a"], "neighbour": ["b", "c"]})
    p = _line_panel(
        {"z": 1998, "a": 2003, "b": 0, "c": 0, "d": 0},
        adjacency=adj,
        outside_window="adjust",
    )
    assert "z" not in p.units
    assert p.sources is not None and p.sources.loc["z", "cohort"] == 1998
    assert p.source_links.to_dict("records") == [{"unit": "b", "source": "z"}]
    tab = exposure_from_adjacency(p).table
    assert tab.loc["b", "role"] == "exposed" and tab.loc["b", "exposure_onset"] == 1998
    assert tab.loc["c", "role"] == "exposed" and tab.loc["c", "exposure_onset"] == 2003
    assert tab.loc["d", "role"] == "clean"


def test_zones_outside_the_panel_can_be_given_as_sources():
    # a zone in a unit outside the data (e.g. a county-level city), located by its
    # coordinates: it exposes panel units within the rings
    src = pd.DataFrame({"unit": ["x"], "cohort": [2002], "lat": [30.0], "lon": [104.2]})
    p = _line_panel({"a": 2003, "b": 0, "c": 0, "d": 0, "e": 0}, sources=src)
    emap = build_exposure(p, "rings", rings_km=[(0, 150)])
    # e (lon 104) is ~19 km from x; d (lon 103) ~115 km; b (lon 101) is 96 km from a
    assert emap.table.loc["e", "exposure_onset"] == 2002
    assert emap.table.loc["d", "exposure_onset"] == 2002
    assert emap.table.loc["b", "exposure_onset"] == 2003
    with pytest.raises(GeographyError, match="also a panel unit"):
        _line_panel({"a": 2003, "b": 0, "c": 0, "d": 0}, sources=src.assign(unit="b"))


def test_distance_curve_finds_where_spillovers_end(radius_world):
    # the truth: negative spillovers within 100 km; beyond it only the simulator's
    # fallback (a zone with no never-zone unit that close spreads its displacement over
    # its whole region), a few percent of the near effect
    curve = distance_curve(radius_world.panel, "fdi", bins_km=(0, 50, 100, 150, 200, 300), n_boot=0)
    near = curve[curve["high_km"] <= 100]
    far = curve[curve["low_km"] >= 100]
    assert (near["conf_high"] < 0).all()
    assert far["estimate"].abs().max() < 0.2 * near["estimate"].abs().min()


def test_cv_cutoff_recovers_the_true_radius(radius_world):
    best, table = cv_cutoff(radius_world.panel, "fdi", candidates_km=(50, 100, 150, 200))
    assert best == 100.0
    assert list(table["cutoff_km"]) == [50.0, 100.0, 150.0, 200.0]
    with pytest.raises(SpecError, match="n_folds"):
        cv_cutoff(radius_world.panel, "fdi", n_folds=1)


def test_sensitivity_table_one_row_per_definition(radius_world):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = exposure_sensitivity(radius_world.panel, "fdi", n_boot=99, rng=1)
    assert list(tab["definition"]) == [
        "adjacency",
        "rings 0-50 km",
        "rings 0-100 km",
        "rings 0-200 km",
        "2 nearest",
        "same region",
    ]
    truth = radius_world.truth.displacement_share["fdi"]
    # the map matching the data-generating one (rings to 100 km) recovers the share
    row = tab.set_index("definition").loc["rings 0-100 km"]
    assert row["displacement_share_low"] <= truth <= row["displacement_share_high"]
    # a panel without coordinates reports why the distance definitions cannot run
    p = radius_world.panel.replace(geography=radius_world.panel.geography[["region"]])
    tab2 = exposure_sensitivity(p, "fdi", {"rings 0-50 km": {"exposure": "rings"}}, n_boot=0)
    assert "lat" in tab2.loc[0, "note"]
    # a fit whose net is not reported says why in the row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab3 = exposure_sensitivity(
            radius_world.panel, "fdi", {"adjacency": {"pre_exposed": "drop_units"}}, n_boot=0
        )
    # (this world has zones exposed before their own, so drop_units leaves net unidentified)
    assert np.isnan(tab3.loc[0, "net"]) and "drop_units" in tab3.loc[0, "note"]


def test_sensitivity_and_distance_figures(radius_world):
    # the figures read the tables: one row per definition, the truth marked; the
    # effect-by-distance curve is the ring plot of a rings fit; nothing goes through pyplot
    import matplotlib.pyplot as plt

    from zoneimpact.report.plots import (
        PlotError,
        exposure_sensitivity_plot,
        spillover_by_ring_plot,
    )

    tab = pd.DataFrame(
        {
            "definition": ["adjacency", "rings 0-100 km", "2 nearest"],
            "displacement_share": [0.4, 0.5, np.nan],
            "displacement_share_low": [0.1, 0.3, np.nan],
            "displacement_share_high": [0.7, 0.7, np.nan],
        }
    )
    fig = exposure_sensitivity_plot(tab, truth=0.5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "adjacency",
        "rings 0-100 km",
        "2 nearest (not run)",
    ]
    assert ax.get_xlabel() == "displacement share"
    # an unbounded (Fieller) interval is an arrow to the axis edge, not a bare point
    tab.loc[1, "displacement_share_high"] = np.inf
    ax3 = exposure_sensitivity_plot(tab).axes[0]
    assert ax3.get_yticklabels()[1].get_text() == "rings 0-100 km (unbounded)"
    arrows = [c for c in ax3.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 1 and arrows[0].xy == (ax3.get_xlim()[1], 1)
    assert np.isfinite(ax3.get_xlim()).all()
    with pytest.raises(PlotError, match="exposure_sensitivity"):
        exposure_sensitivity_plot(tab.drop(columns="displacement_share_low"))
    bands = [(0.0, 50.0), (50.0, 100.0), (100.0, 200.0)]
    res = spillover.fit(
        radius_world.panel, outcome="fdi", exposure="rings", rings_km=bands, n_boot=0
    )
    fig2 = spillover_by_ring_plot(res)
    ax2 = fig2.axes[0]
    # the bands sit at their midpoints on a km axis, so unequal bands keep their distances
    assert "km" in ax2.get_xlabel()
    markers = [ln for ln in ax2.get_lines() if ln.get_linestyle() == "None"]
    np.testing.assert_allclose(markers[0].get_xdata(), [25.0, 75.0, 150.0])
    ring = res.terms.set_index("term")
    np.testing.assert_allclose(
        markers[0].get_ydata(),
        [ring.loc[t, "estimate"] for t in res.terms["term"] if str(t).startswith("spillover:")],
    )
    assert plt.get_fignums() == []


def test_cv_cutoff_takes_covariate_trends():
    # adoption and trends both depend on x (3 per unit of x per year, against noise sd 5):
    # without x its trend stays in every candidate's prediction error; with x's
    # period terms the criterion falls to the noise's scale and still picks the radius
    sim = simulate(rng=3, **RADIUS, covariate_trend=3.0)
    cands = (50, 100, 150, 200)
    best, with_x = cv_cutoff(sim.panel, "fdi", candidates_km=cands, covariates=["x"])
    _, without = cv_cutoff(sim.panel, "fdi", candidates_km=cands)
    assert best == 100.0
    # measured 123-138 with x against 682-699 without (seed 3): x's trend is most of the
    # error left by the two-way model
    assert (with_x["cv_mse"] < 0.5 * without["cv_mse"]).all()
    with pytest.raises(SpecError, match="covariates"):
        cv_cutoff(sim.panel, "fdi", candidates_km=cands, covariates=["nope"])


def test_units_without_a_baseline_covariate_are_named():
    sim = simulate(
        rng=4,
        n_units=120,
        n_regions=12,
        first_year=1998,
        last_year=2010,
        waves={2004: 0.5, 2008: 0.5},
    )
    frame = sim.frame.copy()
    first = frame["unit"].iloc[0]
    frame.loc[frame["unit"] == first, "x"] = np.nan
    p = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi"],
        covariates=["x"],
        geography=sim.geography,
        adjacency=sim.adjacency,
    )
    with pytest.raises(SpecError, match=f"{first}.*no period with every covariate"):
        spillover.fit(p, outcome="fdi", covariates=["x"], n_boot=0)
    with pytest.raises(SpecError, match=f"{first}.*no period with every covariate"):
        cv_cutoff(p, "fdi", candidates_km=(50, 100), covariates=["x"])


def test_rings_that_skip_nearby_units_warn():
    # units 1 degree of longitude apart (96.3 km at 30N); zone a opens in 2003. Rings from
    # 100 km leave b (96 km from a) in no ring of a: it would count as a clean control
    # although a zone is next door, so the map says so, at the caller's line
    p = _line_panel({"a": 2003, "b": 0, "c": 0, "d": 0})
    with pytest.warns(
        UserWarning, match=r"1 unit\(s\) lie within 300 km.*unit 'b' at 96\.3 km"
    ) as rec:
        emap = build_exposure(p, "rings", rings_km=[(100, 300)])
    assert rec[0].filename == __file__
    assert emap.table.loc["b", "role"] == "clean"
    # a gap between rings is the same case; rings from 0 without gaps are silent
    with pytest.warns(UserWarning, match=r"between rings"):
        build_exposure(p, "rings", rings_km=[(0, 50), (150, 300)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_exposure(p, "rings", rings_km=[(0, 150), (150, 300)])


def test_cv_cutoff_keeps_no_spillover_unless_a_cutoff_clearly_predicts_better(radius_world):
    # a world whose zones have growing, cohort-specific effects and no spillover at all:
    # no cutoff predicts better than no exposure term by more than its standard error,
    # so 0 km stays (the plain minimum is 100 km here, 0.016 ahead with an SE of 0.079;
    # folds drawn in the label-free unit order of `_unit_ranks`).
    # Clarke's single zone indicator let 200 km win by 4.3 in this world: its misfit of
    # the zones' effects leaked into the period effects
    sim = simulate(rng=6, **RADIUS, displacement_share=0.0, region_shock_sd=5.0)
    cands = (0, 50, 100, 200)
    best, table = cv_cutoff(sim.panel, "fdi", candidates_km=cands)
    plain, _ = cv_cutoff(sim.panel, "fdi", candidates_km=cands, rule="min")
    assert (best, plain) == (0.0, 100.0)
    for km in (100.0, 200.0):
        row = table.set_index("cutoff_km").loc[km]
        assert 0 < row["gain_vs_none"] < row["gain_se"]
    # the radius world's 100 km spillover is well outside that noise (gain 26.9, SE 5.7)
    best, table = cv_cutoff(radius_world.panel, "fdi", candidates_km=(0, 50, 100, 150, 200))
    row = table.set_index("cutoff_km").loc[100.0]
    assert best == 100.0 and row["gain_vs_none"] > 3 * row["gain_se"]
    # bad candidates and rules are refused by name
    with pytest.raises(SpecError, match="candidates_km"):
        cv_cutoff(sim.panel, "fdi", candidates_km=(-5, 50))
    with pytest.raises(SpecError, match="rule"):
        cv_cutoff(sim.panel, "fdi", rule="smallest")


def test_cv_cutoff_folds_hold_out_region_period_blocks(radius_world):
    # every (region, year) block sits in one fold, so a held-out unit-period's regional
    # shock is never in the fitted folds; without a region column each unit-period is its
    # own block
    from zoneimpact.sensitivity import _fold_blocks

    p = radius_world.panel
    wide = p.wide("fdi")
    units = wide.index.to_numpy()
    ui, ti = np.nonzero(np.isfinite(wide.to_numpy(float)))
    blocks, groups = _fold_blocks(p, units, ui, ti, None)
    region = p.geography["region"].reindex(units).to_numpy()
    frame = pd.DataFrame({"block": blocks, "region": region[ui], "t": ti, "group": groups})
    assert (frame.groupby("block")[["region", "t"]].nunique() == 1).all().all()
    assert frame.groupby(["region", "t"])["block"].nunique().eq(1).all()
    # the criterion's SE clusters by region, across periods (AR regional shocks)
    assert (frame.groupby("group")["region"].nunique() == 1).all()
    assert frame["group"].nunique() == frame["region"].nunique()
    with pytest.raises(GeographyError, match="county"):
        cv_cutoff(p, "fdi", candidates_km=(0, 100), fold_by="county")


def test_cv_cutoff_with_thin_cohorts_and_an_empty_cutoff():
    # few zones (a cohort of one zone made cohort-by-event indicators singular on the
    # China panel; the zones' treated rows now leave the criterion instead), duplicated
    # candidates counted once, and a cutoff that exposes nobody is exactly the
    # no-spillover model
    for seed in range(3):
        sim = simulate(rng=seed, n_units=60, n_regions=8, zone_share=0.1, first_year=2000,
                       last_year=2012, waves={2004: 0.5, 2008: 0.5})  # fmt: skip
        best, table = cv_cutoff(sim.panel, "fdi", candidates_km=(0, 0.001, 100, 100.0, 300))
        assert list(table["cutoff_km"]) == [0.0, 0.001, 100.0, 300.0]  # duplicates once
        assert np.isfinite(table["cv_mse"]).all()
        assert table.loc[1, "n_exposed_units"] == 0
        assert table.loc[1, "cv_mse"] == pytest.approx(table.loc[0, "cv_mse"], rel=1e-12)
        assert best in set(table["cutoff_km"])
