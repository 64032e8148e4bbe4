"""Control counts and baseline balance of the China study (zoneimpact.china.balance).

A hand-made eight-city panel checks every count (verifiable from the table in
``_toy_panel``); the shared real files, when present, check the counts issue 17 cites.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from china_full_study import study
from conftest import CHINA_FILES, require_data

from zoneimpact import Panel
from zoneimpact.china.balance import (
    COASTAL_PROVINCES,
    balance_table,
    city_roles,
    coastal,
    control_counts,
    control_note,
    controls_by_year,
)
from zoneimpact.errors import PanelError

YEARS = list(range(2000, 2006))


def _toy_panel(early_sources: bool = True) -> Panel:
    """Eight cities, 2000-2005.

    ======  ======  ========================================================
    city    cohort  notes
    ======  ======  ========================================================
    Z1      2002    zone; borders E
    Z2      2004    zone
    X       1995    early zone: dropped (no untreated year), borders Y
    E       never   exposed from 2002 (borders Z1)
    Y       never   exposed from 1995 through X (an exposure source)
    C1      never   clean; borders C2 (clean-clean links expose nobody)
    C2      never   clean; FDI reported in 2000 only
    C3      never   clean; no FDI at all
    ======  ======  ========================================================
    """
    cohort = {"Z1": 2002, "Z2": 2004, "X": 1995, "E": 0, "Y": 0, "C1": 0, "C2": 0, "C3": 0}
    rows = []
    for u, g in cohort.items():
        for t in YEARS:
            y = 1.0 + t - 2000
            if u == "C3" or (u == "C2" and t > 2000):
                y = np.nan
            rows.append({"city": u, "year": t, "g": g, "fdi": y})
    adj = [("Z1", "E"), ("X", "Y"), ("C1", "C2")]
    adj_df = pd.DataFrame(adj + [(b, a) for a, b in adj], columns=["unit", "neighbour"])
    if not early_sources:
        adj_df = adj_df[(adj_df["unit"] != "X") & (adj_df["neighbour"] != "X")]
    return Panel.from_frame(
        pd.DataFrame(rows),
        unit="city",
        time="year",
        cohort="g",
        outcomes=["fdi"],
        adjacency=adj_df,
        outside_window="adjust",
    )


def test_roles_of_the_toy_panel():
    roles = city_roles(_toy_panel())
    assert roles["role"].to_dict() == {
        "C1": "clean", "C2": "clean", "C3": "clean", "E": "exposed", "Y": "exposed",
        "Z1": "zone", "Z2": "zone", "X": "dropped_early",
    }  # fmt: skip
    assert roles.loc[["Z1", "Z2"], "cohort_group"].tolist() == ["1997-2008", "1997-2008"]
    assert roles.loc["X", "cohort_group"] == "<=first year"
    assert roles.loc["E", "exposure_onset"] == 2002
    assert roles.loc["Y", "exposure_onset"] == 1995  # exposed by the dropped early zone


def test_control_counts_of_the_toy_panel():
    cc = control_counts(_toy_panel()).set_index("design")
    row = cc.loc["clean_controls"]
    assert (row["n_zone"], row["n_clean"], row["n_clean_usable"]) == (2, 3, 1)
    assert (row["n_clean_no_data"], row["n_clean_one_year"]) == (1, 1)
    assert (row["n_exposed"], row["n_dropped_early"]) == (2, 1)
    assert cc["n_treated"].tolist() == [2, 2, 2, 2]
    # ever a control: never zone = E, Y, C1-C3; not-yet-treated adds Z1, Z2; clean = C1-C3;
    # not-yet-exposed: clean plus E (Y is exposed since 1995, before the panel: never a
    # control there; counted until session 22)
    assert cc["n_controls"].to_dict() == {
        "never_treated": 5, "not_yet_treated": 7, "clean_controls": 3, "not_yet_exposed": 4,
    }  # fmt: skip
    # fewest controls with FDI observed from 2002 on: not-yet-treated has E, Y, C1 and Z2
    # until 2003, then E, Y, C1 (3, first reached in 2004)
    assert (
        cc.loc["not_yet_treated", "min_controls"],
        cc.loc["not_yet_treated", "min_controls_year"],
    ) == (3, 2004)
    assert cc.loc["clean_controls", "min_controls"] == 1
    note = control_note(cc.reset_index())
    assert note.startswith("2 zone cities; 3 clean controls (1 with 2+ outcome years), 2 exposed")
    assert "not-yet-treated 3 (2004)" in note


def test_controls_by_year_of_the_toy_panel():
    by = controls_by_year(_toy_panel()).set_index("year")
    assert by["treated"].tolist() == [0, 0, 1, 1, 2, 2]
    assert by["clean_controls"].tolist() == [2, 1, 1, 1, 1, 1]  # C2 only in 2000
    # clean + E before 2002 (Y is exposed from 1995, before the window)
    assert by["not_yet_exposed"].tolist() == [3, 2, 1, 1, 1, 1]
    assert by["not_yet_treated"].tolist() == [6, 5, 4, 4, 3, 3]


def test_without_early_sources_the_neighbour_of_an_early_zone_is_clean():
    cc = control_counts(_toy_panel(early_sources=False)).iloc[0]
    assert (cc["n_clean"], cc["n_exposed"]) == (4, 1)


def test_balance_table_by_hand():
    frame = pd.DataFrame(
        {
            "city_code": ["a", "a", "b", "c", "d", "e"],
            "year": [1998, 2000, 2000, 2003, 2000, 2000],
            "province": ["江苏省", "江苏省", "四川省", "广东省", "四川省", "四川省"],
            "gdp_real": [1.0, 3.0, 6.0, 10.0, 1.0, 3.0],
        }
    )
    roles = pd.DataFrame(
        {"role": ["zone", "zone", "zone", "clean", "clean"],
         "cohort_group": ["2009-2013", "2009-2013", "2014-2022", "", ""]},
        index=["a", "b", "c", "d", "e"],
    )  # fmt: skip
    before = frame.copy()
    bt = balance_table(frame, roles=roles, variables=("gdp_real", "coastal"))
    pd.testing.assert_frame_equal(frame, before)
    z = bt[(bt["group"] == "zone: all") & (bt["variable"] == "gdp_real")].iloc[0]
    # a: mean(1, 3) = 2; b: 6; c: no baseline year, first available (2003) = 10
    assert (z["n"], z["mean"], z["median"], z["n_fallback"]) == (3, 6.0, 6.0, 1)
    # clean d, e: 1 and 3 (mean 2, var 2); zone var = 16 -> (6 - 2) / sqrt((16 + 2) / 2)
    assert z["norm_diff"] == pytest.approx(4 / 3)
    assert z["median_ratio_to_clean"] == pytest.approx(3.0)
    c = bt[(bt["group"] == "zone: all") & (bt["variable"] == "coastal")].iloc[0]
    assert c["mean"] == pytest.approx(2 / 3) and np.isnan(c["median_ratio_to_clean"])
    assert set(bt["group"]) >= {"zone: 2009-2013", "zone: 2014-2022", "clean"}


def test_bad_input_is_named():
    with pytest.raises(PanelError, match="population"):
        balance_table(pd.DataFrame({"city_code": [], "year": []}), roles=pd.DataFrame())
    with pytest.raises(PanelError, match="panel= .* or roles="):
        balance_table(pd.DataFrame())
    with pytest.raises(PanelError, match="gdp"):
        control_counts(_toy_panel(), outcome="gdp")


def test_coastal_provinces():
    assert len(COASTAL_PROVINCES) == 11
    assert coastal(pd.Series(["广西壮族自治区", "四川省"])).tolist() == [1.0, 0.0]


def test_real_data_control_counts_and_balance():
    require_data(*CHINA_FILES)
    _, frame, adj, panel = study()
    cc = control_counts(panel).set_index("design")
    row = cc.loc["clean_controls"]
    # 137 zone cities in the window, 63 early zones dropped; with the early zones counted
    # as exposure sources (the spillover issue), 7 clean controls remain: 三沙 without FDI,
    # 昌都 with one year, 5 usable
    assert (row["n_zone"], row["n_dropped_early"], row["n_exposed"]) == (137, 63, 91)
    assert (row["n_clean"], row["n_clean_usable"]) == (7, 5)
    assert (row["n_clean_no_data"], row["n_clean_one_year"]) == (1, 1)
    # issue 17's ten: the same count with the early zones not exposing their neighbours;
    # the extra three are the clean cities bordering an early zone
    early = set(panel.report["dropped_always_treated"])
    no_src = adj[~adj["unit"].isin(early) & ~adj["neighbour"].isin(early)]
    old = Panel.from_frame(
        frame, unit="city_code", time="year", cohort="cohort_any", outcomes=["fdi"],
        outside_window="adjust", adjacency=no_src[["unit", "neighbour"]],
    )  # fmt: skip
    old_cc = control_counts(old).iloc[0]
    assert (old_cc["n_clean"], old_cc["n_clean_usable"]) == (10, 8)
    new_clean = set(cc.attrs["clean_units"])
    bordering = set(control_counts(old).attrs["clean_units"]) - new_clean
    assert len(bordering) == 3
    assert bordering <= set(adj.loc[adj["neighbour"].isin(early), "unit"])

    bt = balance_table(frame, panel).set_index(["group", "variable"])
    ratio = bt["median_ratio_to_clean"]
    # zone cities' 1998-2000 medians against the 7 clean controls' (values of the files,
    # rounded to the digits shown): GDP 183.86 vs 59.135 (2000 only), population 328.83
    # vs 100.2, FDI 21.235 vs 4.362 — 3.1x, 3.3x and 4.9x
    med = bt["median"]
    assert (med[("zone: all", "gdp_real")], med[("clean", "gdp_real")]) == pytest.approx(
        (183.86, 59.135), abs=0.005
    )
    assert ratio[("zone: all", "population")] == pytest.approx(328.83 / 100.2, rel=1e-4)
    assert ratio[("zone: all", "fdi")] == pytest.approx(21.235 / 4.362, rel=1e-3)
