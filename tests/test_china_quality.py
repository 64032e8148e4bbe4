"""Data-quality flags of the China city files (zoneimpact.china.quality).

Rules are checked on hand-made files written to a temporary data directory (every flag
below can be verified by reading the CSV rows in ``_write_quality_files``), on the shared
fixture (tests/fixtures/china), and, when present, on the shared real files against the
facts issue 17 cites. Counts are exact: these are deterministic operations on data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from china_full_study import study
from conftest import CHINA_FILES, SHARED_DATA, require_data

from zoneimpact.china.quality import (
    data_quality_flags,
    drop_flagged,
    flagged_province_years,
    quality_table,
)
from zoneimpact.errors import PanelError, ZoneImpactError

FIX = Path(__file__).parent / "fixtures" / "china"
YEARS = range(2000, 2006)


def _write_quality_files(root: Path) -> Path:
    """A data directory whose FDI and population rows hold one case each.

    * Anhui (合肥, 淮北, 六安): every city's FDI falls to 1/20 in 2003 -> one
      reporting_break (median ratio 0.05 over 3 cities).
    * Shandong (济南, 淄博): both fall to 1/20 in 2004, but two cities are fewer than
      MIN_CITIES_FOR_BREAK -> no break; neither is a spike (the new level persists).
    * 苏州 2002 = 1000 between 50 and 60 -> isolated spike (above both by > 10x).
    * 杭州 2002 = 450 between 50 and 60 -> 9x and 7.5x: not a spike.
    * 绍兴 2003 = 0.5 between 40 and 45 -> isolated spike (below both).
    * Population: 毕节 jumps by 1.5x in 2002 and stays -> boundary_change; 海东 jumps by
      1.4x in 2003 and falls back in 2004 -> city-level reporting_break; 北京 grows 2 %.
    """
    china = root / "china"
    china.mkdir(parents=True)
    for f in ("city_gdp_2000_2023.csv", "zones_national_2018.csv"):
        shutil.copy(FIX / f, china / f)
    key = pd.read_csv(FIX / "city_population_1998_2024.csv").dropna(subset=["城市"])
    key = key.drop_duplicates("城市")
    pop_rows = []
    for _, r in key.iterrows():
        for y in YEARS:
            p = 100.0 * 1.02 ** (y - 2000)
            if r["城市"] == "毕节市" and y >= 2002:
                p *= 1.5
            if r["城市"] == "海东市" and y == 2003:
                p *= 1.4
            pop_rows.append({**r.to_dict(), "年份": float(y), "常住人口（万人）": p})
    pd.DataFrame(pop_rows).to_csv(china / "city_population_1998_2024.csv", index=False)
    fdi = {c: [50.0, 55.0, 60.0, 60.0, 62.0, 64.0] for c in key["城市"].str.rstrip("市")}
    for c in ("合肥", "淮北", "六安"):
        fdi[c] = [50.0, 55.0, 60.0, 3.0, 3.1, 3.2]
    for c in ("济南", "淄博"):
        fdi[c] = [50.0, 55.0, 60.0, 60.0, 3.0, 3.1]
    fdi["苏州"] = [40.0, 50.0, 1000.0, 60.0, 62.0, 64.0]
    fdi["杭州"] = [40.0, 50.0, 450.0, 60.0, 62.0, 64.0]
    fdi["绍兴"] = [40.0, 50.0, 60.0, 0.5, 45.0, 46.0]
    rows = [
        {"year": y, "地级市": c, "外商直接投资": v[k], "单位": "百万美元", "数据来源": "x"}
        for c, v in fdi.items()
        for k, y in enumerate(YEARS)
    ]
    pd.DataFrame(rows).to_csv(china / "city_fdi_1996_2023.csv", index=False)
    return root


@pytest.fixture(scope="module")
def made_flags(tmp_path_factory):
    return data_quality_flags(_write_quality_files(tmp_path_factory.mktemp("quality")))


def test_reporting_break_needs_three_cities(made_flags):
    br = made_flags[(made_flags["flag"] == "reporting_break") & made_flags["city"].isna()]
    assert br[["series", "province", "year"]].values.tolist() == [["fdi", "安徽省", 2003]]
    assert br["value"].iloc[0] == pytest.approx(0.05)  # 3/60 for all three cities
    assert "= 0.05 over 3 cities" in br["detail"].iloc[0]
    assert flagged_province_years(made_flags) == {("安徽省", 2003)}


def test_isolated_spikes_above_and_below_both_neighbours(made_flags):
    sp = made_flags[made_flags["flag"] == "isolated_spike"]
    assert sorted(zip(sp["city"], sp["year"], strict=True)) == [("绍兴市", 2003), ("苏州市", 2002)]
    assert set(sp["series"]) == {"fdi"}
    assert "1,000" in sp.loc[sp["city"] == "苏州市", "detail"].iloc[0]


def test_population_jumps(made_flags):
    pop = made_flags[made_flags["series"] == "population"]
    got = sorted(zip(pop["city"], pop["year"], pop["flag"], strict=True))
    assert got == [("毕节市", 2002, "boundary_change"), ("海东市", 2003, "reporting_break")]
    # a city-level population break is not a province-year
    assert flagged_province_years(made_flags) == {("安徽省", 2003)}


def test_shared_fixture_has_only_the_known_boundary_changes():
    flags = data_quality_flags(FIX)
    # the fixture's years are not consecutive: no ratios, hence no breaks or spikes; the
    # successors 济南 (莱芜, 2019) and 合肥 (巢湖, 2011) are in its key, each on 3 series
    assert set(flags["flag"]) == {"boundary_change"}
    assert sorted(set(zip(flags["city"], flags["year"], strict=True))) == [
        ("合肥市", 2011),
        ("济南市", 2019),
    ]
    assert len(flags) == 6
    assert flags["detail"].str.contains("not reported").all()


def test_drop_flagged_drops_breaks_spikes_and_late_years(made_flags):
    frame = pd.DataFrame(
        {
            "city_code": ["340100"] * 4 + ["320500"] * 4,
            "year": [2002, 2003, 2004, 2021] * 2,
            "fdi": np.arange(8.0),
        }
    )
    before = frame.copy()
    prov = {"340100": "安徽省", "320500": "江苏省"}
    made = made_flags.copy()
    made.loc[made["flag"] == "isolated_spike", "year"] = 2004  # 苏州 2004 for this check
    out = drop_flagged(frame, made, unit_province=prov)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert list(zip(out["city_code"], out["year"], strict=True)) == [
        ("340100", 2002),
        ("340100", 2004),
        ("320500", 2002),
        ("320500", 2003),
    ]
    assert out.attrs["dropped"] == {
        "reporting_break": 1,
        "isolated_spike": 1,
        "endpoint": 0,
        "after_until": 2,
    }
    keep_all = drop_flagged(frame, made, unit_province=prov, until=None, drop_spikes=False)
    assert len(keep_all) == 7
    onwards = drop_flagged(frame, made, unit_province=pd.Series(prov), onwards=True)
    assert ("340100", 2004) not in set(zip(onwards["city_code"], onwards["year"], strict=True))
    # Panel.data column names are recognised too
    as_panel = frame.rename(columns={"city_code": "unit", "year": "time"})
    assert len(drop_flagged(as_panel, made, unit_province=prov)) == 4


def test_drop_flagged_bad_input_names_the_problem(made_flags):
    frame = pd.DataFrame({"city_code": ["340100"], "year": [2003]})
    with pytest.raises(PanelError, match="340100"):
        drop_flagged(frame, made_flags, unit_province={"999999": "安徽省"})
    with pytest.raises(PanelError, match="city_code"):
        drop_flagged(frame.rename(columns={"year": "yr"}), made_flags, unit_province={})
    with pytest.raises(ZoneImpactError, match="flag"):
        flagged_province_years(made_flags.drop(columns="flag"))


def test_quality_table_summarises_by_series_flag_province(made_flags):
    tab = quality_table(made_flags)
    assert tab["n_flags"].sum() == len(made_flags)
    row = tab[(tab["flag"] == "isolated_spike") & (tab["province"] == "江苏省")].iloc[0]
    assert (row["n_flags"], row["n_cities"], row["years"]) == (1, 1, "2002")
    assert quality_table(made_flags.iloc[:0]).empty


def test_real_data_flags_the_breaks_the_issue_cites():
    require_data(*CHINA_FILES)
    cp = study()[0]
    flags = data_quality_flags(SHARED_DATA, city_panel=cp)
    breaks = flags[(flags["series"] == "fdi") & (flags["flag"] == "reporting_break")]
    by = breaks.set_index(["province", "year"])["value"]
    # issue 17: median city ratios 0.04 (Hunan 2021/2020), 0.05 (Anhui and Henan 2022/2021)
    assert round(by[("湖南省", 2021)], 2) == 0.04
    assert round(by[("安徽省", 2022)], 2) == 0.05
    assert round(by[("河南省", 2022)], 2) == 0.05
    # six more province-years pass the same rule (Liaoning 2015 and Heilongjiang 2019,
    # 0.12 and 0.03, are the largest): nine in all, none in GDP or population
    assert len(breaks) == 9
    assert flagged_province_years(flags) == set(by.index)
    spikes = flags[(flags["series"] == "fdi") & (flags["flag"] == "isolated_spike")]
    # the stated rule on the harmonised 298-city panel gives 29 (27 among the 235
    # estimation cities); 24, the issue's count, are not within a year of a provincial
    # break: 5 sit next to one (丹东 and 抚顺 2016 after Liaoning's 2015 break, ...)
    assert len(spikes) == 29
    assert (~spikes["near_break"]).sum() == 24
    near = spikes[spikes["near_break"]]
    assert {("丹东市", 2016), ("抚顺市", 2016)} <= set(zip(near["city"], near["year"], strict=True))
    zz = spikes[(spikes["city"] == "株洲市")]
    assert zz.empty  # 株洲 2021 (1,789 -> 8.7) stays low in 2022: a break, not a spike
    boundary = flags[(flags["flag"] == "boundary_change") & (flags["series"] == "population")]
    chaohu = boundary[boundary["year"] == 2011]
    assert {"合肥市", "芜湖市", "马鞍山市"} <= set(chaohu["city"])
    assert chaohu.set_index("city").loc["芜湖市", "value"] == pytest.approx(356.6 / 226.3, 1e-3)
