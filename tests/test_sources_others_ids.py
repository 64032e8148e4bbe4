"""Ids of units outside the panel (``sources=``, ``others=``) checked against the data's
own units, and units never observed in the regional totals (breaker b1, session 24).

1. A ``sources=`` row for a unit the data holds as dropped always-treated replaced the
   data's opening silently (u5: cohort 1995 in the data, 2005 in sources=).
2. An id spelled as text ('105' for the panel's 105) passed the exact "is a panel unit"
   tests of ``sources=`` and ``others=``: the unit became its own exposure source, or
   was counted twice in its region's total.
3. A unit whose outcome rows are all NaN blanked every share of its region in every
   period, while the same unit without rows changed nothing.

Every expected number below is computed by hand in the comments; shares are ratios of
small whole numbers, so 1e-12 only allows for floating-point rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.concentration import region_hhi, share_of_region
from zoneimpact.errors import GeographyError, PanelError

T = range(2000, 2004)


# ----------------------------------------------------------------------------- sources=
def _line_panel(sources: pd.DataFrame | None) -> Panel:
    """u0..u7 on a line (u_i next to u_{i+1}), 2000-2007; u2 zoned 2004 and u5 in 1995,
    before the data: outside_window="adjust" drops u5 and keeps it as a source."""
    units = [f"u{i}" for i in range(8)]
    coh = {"u2": 2004, "u5": 1995}
    df = pd.DataFrame(
        [
            {"unit": u, "time": t, "cohort": coh.get(u, np.nan), "y": 1.0}
            for u in units
            for t in range(2000, 2008)
        ]
    )
    adj = pd.DataFrame({"unit": units[:-1], "neighbour": units[1:]})
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes="y", adjacency=adj,
        outside_window="adjust", sources=sources, never_values=(),
    )  # fmt: skip


def test_sources_row_for_a_unit_dropped_as_already_treated_is_refused():
    p = _line_panel(None)
    assert p.report["dropped_always_treated"] == ["u5"]
    assert p.sources.loc["u5", "cohort"] == 1995.0  # the data's own opening
    # before: accepted, u5 opening 2005 (its neighbours u4, u6 exposed from 2005, not 1995)
    with pytest.raises(GeographyError, match=r"'u5'.*cohort 1995.*opening 2005.*Drop it from"):
        _line_panel(pd.DataFrame({"unit": ["u5"], "cohort": [2005]}))
    # the same date is refused too: the data already make u5 a source, and a second row
    # would be silently redundant today and silently overriding after an edit of either
    with pytest.raises(GeographyError, match=r"'u5'.*cohort 1995.*opening 1995"):
        _line_panel(pd.DataFrame({"unit": ["u5"], "cohort": [1995]}))


def _int_panel(sources: pd.DataFrame) -> Panel:
    """Integer units 100..109 on a line 0.3 degrees apart; 102 zoned 2004."""
    units = list(range(100, 110))
    df = pd.DataFrame(
        [
            {"unit": u, "time": t, "cohort": 2004 if u == 102 else np.nan, "y": 1.0}
            for u in units
            for t in range(2000, 2008)
        ]
    )
    geo = pd.DataFrame(
        {"unit": units, "lat": 30.0, "lon": [0.3 * i for i in range(10)], "region": "R"}
    )
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes="y", geography=geo,
        sources=sources, never_values=(),
    )  # fmt: skip


def test_source_id_spelled_as_text_of_a_panel_unit_is_refused():
    twin = pd.DataFrame({"unit": ["105"], "cohort": [2003], "lat": [30.0], "lon": [1.5]})
    # before: accepted, and panel unit 105 was exposed by its own twin 0 km away
    with pytest.raises(GeographyError, match=r"mix numbers and text: 105 and '105'"):
        _int_panel(twin)
    # a text id that reads as no panel unit's number is a genuine outside zone
    p = _int_panel(twin.assign(unit=["900"]))
    assert p.sources.index.tolist() == ["900"] and p.sources.loc["900", "cohort"] == 2003.0


# ----------------------------------------------------------------------------- others=
def _conc_panel(units: list, ys: dict, cohort_unit) -> Panel:
    """``units`` in region R, ``ys`` constant over 2000-2003, ``cohort_unit`` zoned 2002;
    text ids add zone-free region S (e: 5, f: 15) as region_hhi's control."""
    if isinstance(units[0], str):
        units, ys = [*units, "e", "f"], {**ys, "e": 5.0, "f": 15.0}
    df = pd.DataFrame(
        [
            {"unit": u, "time": t, "cohort": 2002 if u == cohort_unit else np.nan, "y": ys[u]}
            for u in units
            for t in T
        ]
    )
    geo = pd.DataFrame({"unit": units, "region": ["S" if u in ("e", "f") else "R" for u in units]})
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes="y", geography=geo,
        never_values=(),
    )  # fmt: skip


def _shares(sp: Panel, t: int = 2000) -> dict:
    d = sp.data
    s = d.loc[(d["time"] == t) & ~d["unit"].isin(["e", "f"])].set_index("unit")["y_share"]
    return s.to_dict()


def test_others_id_spelled_as_text_of_a_panel_unit_is_refused():
    p = _conc_panel([100, 101, 102], {100: 10.0, 101: 20.0, 102: 30.0}, 100)
    outside = pd.DataFrame({"unit": "900", "time": list(T), "y": 40.0, "region": "R"})
    # by hand: total 10 + 20 + 30 + 40 = 100, shares 0.1, 0.2, 0.3 (text '900' is no
    # panel unit's number: kept)
    got = _shares(share_of_region(p, "y", others=outside))
    assert got == pytest.approx({100: 0.1, 101: 0.2, 102: 0.3}, abs=1e-12)
    twin = pd.DataFrame({"unit": "101", "time": list(T), "y": 20.0, "region": "R"})
    # before: 101 counted twice (total 120: shares 0.0833, 0.1667, 0.25)
    with pytest.raises(PanelError, match=r"mix numbers and text: 101 and '101'"):
        share_of_region(p, "y", others=pd.concat([outside, twin]))


def test_a_unit_never_observed_leaves_the_totals_like_a_unit_without_rows():
    p = _conc_panel(["a", "b", "c"], {"a": 10.0, "b": 20.0, "c": 30.0}, "a")
    blank = pd.DataFrame({"unit": "o", "time": list(T), "y": np.nan, "region": "R"})
    with pytest.warns(UserWarning, match=r"1 unit\(s\) have no value of 'y'.*'o'"):
        got = share_of_region(p, "y", others=blank).data
    none = share_of_region(p, "y", others=blank.iloc[:0]).data
    pd.testing.assert_frame_equal(got, none)
    # by hand: total 10 + 20 + 30 = 60 in every period: 1/6, 1/3, 1/2 (before: all NaN)
    for t in T:
        assert _shares(share_of_region(p, "y", others=blank.iloc[:0]), t) == pytest.approx(
            {"a": 1 / 6, "b": 1 / 3, "c": 1 / 2}, abs=1e-12
        )
    assert got["y_share"].notna().sum() == 20  # a, b, c, e, f in 4 periods
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h_nan = region_hhi(p, "y", others=blank).data
    h_none = region_hhi(p, "y", others=blank.iloc[:0]).data
    pd.testing.assert_frame_equal(h_nan, h_none)
    h_nan = h_nan.loc[h_nan["unit"] == "R"]
    # by hand: HHI = (1/6)^2 + (1/3)^2 + (1/2)^2 = (1 + 4 + 9) / 36 = 14/36, total 60, 3 units
    assert h_nan["y_hhi"].to_numpy() == pytest.approx([14 / 36] * 4, abs=1e-12)
    assert h_nan["y_total"].to_numpy() == pytest.approx([60.0] * 4, abs=1e-12)
    assert h_nan["n_units"].tolist() == [3.0] * 4

    # a unit observed in some periods keeps the rule: its region's other periods are blank
    part = blank.assign(y=[40.0, 40.0, np.nan, np.nan])
    s = share_of_region(p, "y", others=part)
    # by hand: 2000 total 10 + 20 + 30 + 40 = 100: 0.1, 0.2, 0.3; 2002 misses o: NaN
    assert _shares(s, 2000) == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.3}, abs=1e-12)
    assert np.isnan(list(_shares(s, 2002).values())).all()


def test_a_panel_unit_never_observed_leaves_the_totals():
    ys = {"a": 10.0, "b": 20.0, "c": 30.0, "d": np.nan}
    p = _conc_panel(["a", "b", "c", "d"], ys, "a")
    with pytest.warns(UserWarning, match=r"1 unit\(s\) have no value of 'y'.*\(1 of the panel"):
        got = share_of_region(p, "y")
    # by hand: d left out, total 60: 1/6, 1/3, 1/2; d's own share NaN (before: all NaN)
    s = _shares(got, 2003)
    assert np.isnan(s.pop("d"))
    assert s == pytest.approx({"a": 1 / 6, "b": 1 / 3, "c": 1 / 2}, abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = region_hhi(p, "y").data
    # by hand, region S: (5/20)^2 + (15/20)^2 = 10/16, total 20
    assert h.loc[h["unit"] == "S", "y_hhi"].to_numpy() == pytest.approx([10 / 16] * 4, abs=1e-12)
    h = h.loc[h["unit"] == "R"]
    # by hand: 14/36 and 60 as without d; n_units counts the 3 observed units
    assert h["y_hhi"].to_numpy() == pytest.approx([14 / 36] * 4, abs=1e-12)
    assert h["y_total"].to_numpy() == pytest.approx([60.0] * 4, abs=1e-12)
    assert h["n_units"].tolist() == [3.0] * 4


def test_the_never_observed_warning_points_at_the_callers_line():
    # estimate_concentration(kind="hhi") went through region_hhi's own stacklevel and
    # pointed at concentration.py (a reviewer's find); it, share_of_region and region_hhi
    # must all point here
    from zoneimpact.concentration import estimate_concentration

    ys = {"a": 10.0, "b": 20.0, "c": 30.0, "d": np.nan}
    p = _conc_panel(["a", "b", "c", "d"], ys, "a")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        estimate_concentration(p, "y", kind="hhi", rng=0)
        share_of_region(p, "y")
        region_hhi(p, "y")
    files = [w.filename for w in rec if "no value of 'y'" in str(w.message)]
    assert files == [__file__] * 3
