"""The China curve's samples keep the early zones as exposure sources, its rows count the
treated cities each fit used, and the not-yet-exposed design counts only cities that are a
control in some year (a breaker's findings F1-F3 on zoneimpact.china.speccurve/balance).

A seeded 26-city toy panel, 2000-2022: the early zone ``X`` (1990) is dropped as
always treated and stays an exposure source; it borders the zone city ``F`` (zone in 2012,
so exposed since before the data: no untreated year left in the direct panel) and the
non-zone city ``Y`` (exposed since before the data: never a control).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.china.balance import control_counts
from zoneimpact.china.speccurve import (
    SCALES,
    _fit_direct,
    _fit_spillover,
    direct_panel,
    restrict_sample,
)
from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel

ZONES = {"Z1": 2008, "Z2": 2010, "Z3": 2012, "Z4": 2014, "Z5": 2016, "F": 2012, "X": 1990}
ADJ = [("X", "F"), ("X", "Y"), ("Z1", "E1"), ("Z2", "E2")]


@pytest.fixture(scope="module")
def toy() -> Panel:
    rng = np.random.default_rng(17)
    units = [*ZONES, "E1", "E2", "Y"] + [f"C{i}" for i in range(17)]
    years = np.arange(2000, 2023)
    year_fe = rng.normal(0, 2, len(years)).cumsum()
    rows = []
    for i, u in enumerate(units):
        g = ZONES.get(u, np.nan)
        a, lgdp, lpop = rng.normal(50, 10), rng.normal(5, 0.5), rng.normal(6, 0.5)
        for k, t in enumerate(years):
            fdi = a + year_fe[k] + rng.normal(0, 1) + (5.0 if t >= g else 0.0)
            rows.append({"unit": u, "year": t, "g": g, "fdi": fdi, "lgdp0": lgdp,
                         "lpop0": lpop, "trend_lgdp0": lgdp * (t - 2000),
                         "trend_lpop0": lpop * (t - 2000), "province": f"P{i % 6}"})  # fmt: skip
    adj = pd.DataFrame(ADJ + [(b, a) for a, b in ADJ], columns=["unit", "neighbour"])
    geo = pd.DataFrame({"unit": units, "province": [f"P{i % 6}" for i in range(len(units))]})
    frame = pd.DataFrame(rows).drop(columns="province")
    return Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="g",
        outcomes=["fdi"],
        covariates=["lgdp0", "lpop0", "trend_lgdp0", "trend_lpop0"],
        geography=geo,
        adjacency=adj,
        outside_window="adjust",
    )


def test_to2020_keeps_the_early_zones_as_exposure_sources(toy):
    assert list(toy.sources.index) == ["X"]  # dropped as always treated, kept as a source
    t20 = restrict_sample(toy, "to2020")
    assert t20.data["time"].max() == 2020
    # old code: sources None, so X's neighbours turned clean (Y) or a clean zone city (F)
    assert t20.sources is not None and list(t20.sources.index) == ["X"]
    assert sorted(map(tuple, t20.source_links[["unit", "source"]].to_numpy())) == [
        ("F", "X"), ("Y", "X"),
    ]  # fmt: skip
    full_tab = build_exposure(toy, "adjacency").table
    tab = build_exposure(t20, "adjacency").table
    assert tab.loc["Y", "role"] == "exposed" and tab.loc["Y", "exposure_onset"] == 1990
    assert tab.loc["F", "exposure_onset"] == 1990
    pd.testing.assert_frame_equal(tab[["role", "exposure_onset"]],
                                  full_tab[["role", "exposure_onset"]])  # fmt: skip
    # so Y is no clean control of the to2020 sample either
    assert "Y" not in set(direct_panel(t20, build_exposure(t20, "adjacency"), "clean").units)


def test_rows_count_the_treated_cities_each_fit_used(toy):
    emap = build_exposure(toy, "adjacency")
    sub = direct_panel(toy, emap, "not_yet")
    # F keeps only its post-zone years (exposed by X since 1990): no fit can use it
    assert sub.data.loc[sub.data["unit"] == "F", "time"].min() == 2012
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = _fit_direct(sub, SCALES["levels"], "imputation", "not_yet", 0.05)
        cs = _fit_direct(sub, SCALES["levels"], "cs_dr", "not_yet", 0.05)
        pieces = _fit_spillover(toy, emap, SCALES["levels"], "not_yet", 0.05)
    # exact counts: Z1-Z5 have untreated years (the old rows said 6, F included)
    assert imp["n_treated"] == 5
    # CS: Z1, Z3 and Z4, the cities of cohorts with estimated post-zone cells (the doubly
    # robust cells of cohorts 2010 and 2016, one city each, are NaN in this toy), without
    # F, which its cohort 2012's cells cannot use (not observed in the base year 2011)
    assert cs["n_treated"] == 3
    # the analytic variant (CI's quick notebook): the same estimate, another SE, labelled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quick = _fit_direct(sub, SCALES["levels"], "cs_dr", "not_yet", 0.05, "analytic")
    assert quick["estimate"] == pytest.approx(cs["estimate"], rel=1e-12)
    assert quick["se"] != pytest.approx(cs["se"], rel=1e-6)
    assert "(analytic)" in quick["pretrend_test"] and "(jackknife)" in cs["pretrend_test"]
    rows = {p["estimand"]: p for p in pieces}
    # spillover: E1 and E2 have unexposed years, Y does not (the old row said 3, the map's)
    assert (rows["spillover"]["n_treated"], rows["spillover"]["n_treated_map"]) == (2, 3)
    # net and the share: the direct piece's zone cities, and the fit's note on what net adds
    assert (rows["net"]["n_treated"], rows["net"]["n_treated_map"]) == (5, 6)
    assert "estimated target unit-periods only" in rows["net"]["note"]
    assert rows["displacement_share"]["note"] == rows["net"]["note"]


def test_not_yet_exposed_controls_are_cities_with_a_pre_exposure_year(toy):
    cc = control_counts(toy, exposure="adjacency").set_index("design")
    # clean: C0-C16; not yet exposed adds E1, E2 (exposed 2008, 2010), not Y (exposed
    # since 1990, never a control); the old count had 17 + 3 = 20
    assert cc.loc["clean_controls", "n_controls"] == 17
    assert cc.loc["not_yet_exposed", "n_controls"] == 19
    assert cc.loc["not_yet_exposed", "n_controls_usable"] == 19
    # never treated counts every non-zone city, Y included
    assert cc.loc["never_treated", "n_controls"] == 20
