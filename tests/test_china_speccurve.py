"""The China specification curve's building blocks on a hand-made panel (no data needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from zoneimpact.china.speccurve import (
    SCALES,
    _counts,
    _estimators,
    _net_pretrend,
    _welch_df,
    direct_panel,
    restrict_sample,
)
from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators.spillover import zones_exposed_panel
from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel

YEARS = range(2000, 2023)


@pytest.fixture(scope="module")
def toy() -> Panel:
    # A gets a zone in 2010 and borders B (exposed from 2010); C and D are clean; E gets a
    # zone in 2015 and borders nobody. Provinces: A, B, C in P1; D, E in P2.
    cohort = {"A": 2010, "B": np.nan, "C": np.nan, "D": np.nan, "E": 2015}
    rows = [
        {"unit": u, "year": y, "cohort": g, "fdi": float(10 + i + (y - 2000)), "log1p_fdi": 1.0}
        for i, (u, g) in enumerate(cohort.items())
        for y in YEARS
    ]
    geo = pd.DataFrame({"unit": list(cohort), "province": ["P1", "P1", "P1", "P2", "P2"]})
    adj = pd.DataFrame({"unit": ["A", "B"], "neighbour": ["B", "A"]})
    return Panel.from_frame(
        pd.DataFrame(rows),
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi", "log1p_fdi"],
        geography=geo,
        adjacency=adj,
    )


def test_no_flagged_blanks_fdi_from_a_provinces_break_onward(toy):
    out = restrict_sample(toy, "no_flagged", [("P1", 2021), ("P2", 2022)])
    d = out.data.set_index(["unit", "time"])
    assert np.isnan(d.at[("A", 2021), "fdi"]) and np.isnan(d.at[("C", 2021), "log1p_fdi"])
    assert np.isnan(d.at[("E", 2022), "fdi"]) and d.at[("E", 2021), "fdi"] == 35.0
    # a reporting-basis break persists, so a province is blanked from its break to the end:
    # three P1 cities in 2021-2022, two P2 cities in 2022
    assert d["fdi"].isna().sum() == 3 * 2 + 2
    assert list(out.unit_cohort) == list(toy.unit_cohort)  # adoption years kept
    assert toy.data["fdi"].notna().all()  # the caller's panel untouched


def test_to2020_drops_later_years_and_unknown_sample_is_an_error(toy):
    assert restrict_sample(toy, "to2020", None).data["time"].max() == 2020
    assert restrict_sample(toy, "full", None) is toy
    with pytest.raises(ZoneImpactError, match="sample"):
        restrict_sample(toy, "without_2008", None)


def test_direct_panel_and_control_counts(toy):
    emap = build_exposure(toy, "adjacency")
    clean = direct_panel(toy, emap, "clean")
    assert set(clean.units) == {"A", "C", "D", "E"}  # B is exposed: never a clean control
    nyt = direct_panel(toy, emap, "not_yet")
    b_years = nyt.data.loc[nyt.data["unit"] == "B", "time"]
    assert b_years.max() == 2009 and len(b_years) == 10  # B's years before A's zone
    assert _counts(clean, "fdi", "clean", emap) == {"n_treated": 2, "n_clean": 2, "n_not_yet": 0}
    # not yet: A and E before their zones, and B before its exposure
    assert _counts(nyt, "fdi", "not_yet", emap) == {"n_treated": 2, "n_clean": 2, "n_not_yet": 3}
    # without an exposure map every non-zone city is a control (neighbours included)
    assert _counts(toy, "fdi", "clean", None)["n_clean"] == 3


def test_budget_cells():
    # PPML only without an exposure map or with rings, never on the inadmissible adjacency
    assert _estimators(SCALES["ppml"], "adjacency", "not_yet", "full") == []
    assert _estimators(SCALES["ppml"], "none", "not_yet", "to2020") == ["ppml"]
    # the factor models run once, on log1p
    assert "ife" in _estimators(SCALES["log1p"], "adjacency", "not_yet", "full")
    assert "ife" not in _estimators(SCALES["levels"], "adjacency", "not_yet", "full")
    # with no exposure map, imputation's clean and not-yet designs coincide: run once
    assert "imputation" not in _estimators(SCALES["levels"], "none", "clean", "full")


def test_zones_exposed_panel_keeps_zone_cities_between_a_neighbours_zone_and_their_own(toy):
    # E (zone 2015) now borders A (zone 2010): exposed 2010-2014 before its own zone
    adj = pd.DataFrame({"unit": ["A", "B", "A", "E"], "neighbour": ["B", "A", "E", "A"]})
    panel = Panel.from_frame(
        toy.data.rename(columns={"time": "year"}),
        unit="unit", time="year", cohort="cohort", outcomes=["fdi"],
        geography=toy.geography.reset_index(), adjacency=adj,
    )  # fmt: skip
    emap = build_exposure(panel, "adjacency")
    sub, n = zones_exposed_panel(panel, "fdi", emap, "never_exposed")
    assert sub is not None and n == 5  # E's 2010-2014
    d = sub.data
    # E until its own zone (2000-2014), treated from A's zone; A before its zone (never
    # treated here) and the clean C and D throughout; B (exposed) is no control
    assert set(d["unit"]) == {"A", "C", "D", "E"}
    e = d[d["unit"] == "E"]
    assert e["time"].max() == 2014 and len(e) == 15 and set(e["cohort"]) == {2010.0}
    assert d.loc[d["unit"] == "A", "time"].max() == 2009
    assert np.isinf(d.loc[d["unit"] != "E", "cohort"]).all()
    # not-yet-exposed controls add B's years before A's zone
    nyt, _ = zones_exposed_panel(panel, "fdi", emap, "not_yet_exposed")
    assert nyt.data.loc[nyt.data["unit"] == "B", "time"].max() == 2009
    with pytest.raises(ZoneImpactError, match="controls='clean' is not allowed"):
        zones_exposed_panel(panel, "fdi", emap, "clean")
    with pytest.raises(ZoneImpactError, match="Outcome 'gdp' is not in the panel"):
        zones_exposed_panel(panel, "gdp", emap, "never_exposed")
    # in the original toy no zone city is exposed before its zone: no piece to test
    assert zones_exposed_panel(toy, "fdi", build_exposure(toy, "adjacency"), "never_exposed") == (
        None,
        0,
    )


def test_net_pretrend_screens_every_piece():
    p, note = _net_pretrend({"direct": 0.4, "spillover": 0.2, "spillover_on_zones": 0.05})
    # the smallest p-value: a design whose spillover-on-zones piece rejects is not admitted
    # for net, though its direct and spillover tests pass
    assert p == 0.05 and "zone cities exposed before their zone 0.05" in note
    # a piece with units whose test could not run leaves net untested (inadmissible)
    assert np.isnan(_net_pretrend({"direct": 0.4, "spillover": np.nan})[0])
    assert _net_pretrend({"direct": 0.4, "spillover": 0.3})[0] == 0.3


def test_heterogeneity_contrasts_take_welch_satterthwaite_df() -> None:
    # equal variances, df 2 and infinite: (1 + 1)^2 / (1 / 2) = 8 (Welch 1947)
    assert _welch_df({"se": 1.0, "df": 2.0}, {"se": 1.0, "df": math.inf}) == pytest.approx(8.0)
    assert _welch_df({"se": 3.0, "df": math.inf}, {"se": 4.0, "df": math.inf}) == math.inf
    # China's 2009-2013 minus 1996-2008 contrast (tables/heterogeneity, session 28): SEs
    # 75.92 (df 15.63) and 180.64 (df 1.19) give df 1.647 (hand computation: 1.6466)
    d = _welch_df({"se": 180.6361, "df": 1.1921}, {"se": 75.9227, "df": 15.6289})
    assert d == pytest.approx(1.6466, abs=1e-3)
