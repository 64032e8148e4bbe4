"""Panel validation: every malformed input gets a named error that points at the culprit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel, ZoneImpactError
from zoneimpact.errors import GeographyError, PanelError


def small_frame() -> pd.DataFrame:
    units = ["a", "b", "c", "d"]
    years = [2000, 2001, 2002, 2003]
    df = pd.DataFrame([(u, t) for u in units for t in years], columns=["city", "year"])
    df["first_zone"] = df["city"].map({"a": 2002, "b": 2003, "c": 0, "d": np.nan})
    df["fdi"] = np.arange(len(df), dtype=float)
    df["gdp"] = 1.0 + np.arange(len(df))
    return df


def build(df: pd.DataFrame, **kw) -> Panel:
    args = dict(unit="city", time="year", cohort="first_zone", outcomes=["fdi"])
    args.update(kw)
    return Panel.from_frame(df, **args)


def test_valid_panel_canonical_columns_and_report():
    p = build(small_frame(), covariates=["gdp"])
    assert list(p.data.columns) == ["unit", "time", "cohort", "fdi", "gdp"]
    assert p.unit_cohort.to_dict() == {"a": 2002, "b": 2003, "c": np.inf, "d": np.inf}
    assert p.report["balanced"] and p.report["n_missing_unit_periods"] == 0
    assert p.report["cohort_sizes"] == {2002: 1, 2003: 1, "never": 2}
    assert list(p.cohorts) == [2002, 2003]


def test_caller_frame_is_not_modified():
    df = small_frame()
    before = df.copy(deep=True)
    build(df.sample(frac=1, random_state=0))
    pd.testing.assert_frame_equal(df, before)


def test_unbalanced_panel_is_allowed_and_reported():
    df = small_frame().drop(index=[1, 6]).reset_index(drop=True)
    p = build(df)
    assert not p.balanced
    assert p.report["n_missing_unit_periods"] == 2


def test_duplicate_rows_name_unit_and_period():
    df = pd.concat([small_frame(), small_frame().iloc[[5]]])
    with pytest.raises(PanelError, match=r"Duplicate.*unit 'b', period 2001"):
        build(df)


def test_non_numeric_outcome_names_column_unit_period():
    df = small_frame().astype({"fdi": object})
    df.loc[6, "fdi"] = "n/a"
    with pytest.raises(PanelError, match=r"'fdi' is not numeric.*'n/a'.*unit 'b', period 2002"):
        build(df)


def test_infinite_outcome_names_unit_and_period():
    df = small_frame()
    df.loc[9, "fdi"] = np.inf
    with pytest.raises(PanelError, match=r"'fdi' has an infinite value at unit 'c', period 2001"):
        build(df)


def test_missing_ids_are_errors():
    df = small_frame()
    df.loc[3, "city"] = None
    with pytest.raises(PanelError, match=r"Missing ids in column 'city'.*\[3\]"):
        build(df)
    df = small_frame()
    df.loc[2, "year"] = np.nan
    with pytest.raises(PanelError, match=r"Missing ids in column 'year'"):
        build(df)


def test_missing_column_lists_available():
    with pytest.raises(PanelError, match=r"\['patents'\] not found"):
        build(small_frame(), outcomes=["patents"])


def test_treatment_that_switches_off_names_unit_and_period():
    df = small_frame().drop(columns="first_zone")
    df["zone"] = 0
    df.loc[(df.city == "a") & (df.year >= 2001), "zone"] = 1
    df.loc[(df.city == "a") & (df.year == 2003), "zone"] = 0
    with pytest.raises(PanelError, match=r"switches off for unit 'a' in period 2003"):
        build(df, cohort=None, treatment="zone")


def test_cohort_derived_from_absorbing_treatment():
    df = small_frame().drop(columns="first_zone")
    df["zone"] = ((df.city == "a") & (df.year >= 2002)).astype(int)
    p = build(df, cohort=None, treatment="zone")
    assert p.unit_cohort["a"] == 2002 and np.isinf(p.unit_cohort["b"])


def test_cohort_outside_window_is_error_or_adjusted():
    df = small_frame()
    df.loc[df.city == "a", "first_zone"] = 1995
    with pytest.raises(PanelError, match=r"unit 'a' has cohort 1995 but the data start in 2000"):
        build(df)
    p = build(df, outside_window="adjust")
    assert "a" not in p.units and p.report["dropped_always_treated"] == ["a"]
    df = small_frame()
    df.loc[df.city == "b", "first_zone"] = 2010
    with pytest.raises(PanelError, match=r"unit 'b' has cohort 2010 but the data end in 2003"):
        build(df)
    assert np.isinf(build(df, outside_window="adjust").unit_cohort["b"])


def test_cohort_varying_within_unit():
    df = small_frame()
    df.loc[0, "first_zone"] = 2001
    with pytest.raises(PanelError, match=r"varies within unit 'a'"):
        build(df)


def test_no_untreated_comparison_units():
    df = small_frame()
    df["first_zone"] = 2002
    with pytest.raises(PanelError, match="No untreated comparison units"):
        build(df)


def test_geography_missing_for_a_unit():
    geo = pd.DataFrame(
        {
            "unit": ["a", "b", "c"],
            "region": ["r1", "r1", "r2"],
            "lat": [30, 31, 32],
            "lon": [110, 111, 112],
        }
    )
    with pytest.raises(GeographyError, match=r"Geography missing for unit 'd'"):
        build(small_frame(), geography=geo)
    geo = pd.concat(
        [geo, pd.DataFrame({"unit": ["d"], "region": ["r2"], "lat": [np.nan], "lon": [113]})]
    )
    p = build(small_frame(), geography=geo)
    with pytest.raises(GeographyError, match=r"unit 'd': column 'lat'"):
        p.require_geography(["lat", "lon"])
    assert p.require_geography(["region"]).shape == (4, 1)


def test_geography_adjacency_and_sources_may_use_the_panels_unit_name():
    # the panel's units are in column "city": the side tables may say "city" too, giving
    # the same panel as tables keyed by "unit", and the caller's tables stay as they were
    geo = pd.DataFrame(
        {"city": list("abcd"), "region": ["r1", "r1", "r2", "r2"], "lat": [30, 31, 32, 33],
         "lon": [110, 111, 112, 113]}
    )  # fmt: skip
    adj = pd.DataFrame({"city": ["a", "b"], "neighbour": ["b", "z"]})
    src = pd.DataFrame({"city": ["z"], "cohort": [2001], "lat": [30.5], "lon": [110.5]})
    before = [t.copy(deep=True) for t in (geo, adj, src)]
    named = build(small_frame(), geography=geo, adjacency=adj, sources=src)
    as_unit = build(
        small_frame(),
        **{
            k: t.rename(columns={"city": "unit"})
            for k, t in (("geography", geo), ("adjacency", adj), ("sources", src))
        },
    )
    pd.testing.assert_frame_equal(named.geography, as_unit.geography)
    pd.testing.assert_frame_equal(named.adjacency, as_unit.adjacency)
    pd.testing.assert_frame_equal(named.sources, as_unit.sources)
    assert list(named.sources.index) == ["z"] and len(named.adjacency) == 2
    for t, b in zip((geo, adj, src), before, strict=True):
        pd.testing.assert_frame_equal(t, b)
    # neither name: still a clear error naming what is needed
    with pytest.raises(GeographyError, match="'unit' column"):
        build(small_frame(), geography=geo.rename(columns={"city": "town"}))


def test_adjacency_symmetrised_and_checked():
    adj = pd.DataFrame({"unit": ["a", "b"], "neighbour": ["b", "c"]})
    p = build(small_frame(), adjacency=adj)
    assert len(p.adjacency) == 4
    with pytest.raises(GeographyError, match=r"names unit 'zz'"):
        build(small_frame(), adjacency=pd.DataFrame({"unit": ["a"], "neighbour": ["zz"]}))


def test_every_error_is_a_zoneimpact_error():
    assert issubclass(PanelError, ZoneImpactError) and issubclass(GeographyError, ZoneImpactError)


def test_wide_and_with_outcome_return_new_objects():
    p = build(small_frame())
    w = p.wide("fdi")
    assert w.shape == (4, 4) and w.loc["b", 2001] == 5.0
    q = p.with_outcome("fdi2", p.data["fdi"] * 2)
    assert "fdi2" in q.outcomes and "fdi2" not in p.data.columns
