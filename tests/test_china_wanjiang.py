"""The Wanjiang descriptive growth table (zoneimpact.china.wanjiang).

Hand-made GDP series with constant growth rates give the table's values exactly; on the
shared real files the aggregate growth is recomputed straight from the raw GDP CSV.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CHINA_FILES, SHARED_DATA, require_data

from zoneimpact.china.study import WANJIANG_FULL
from zoneimpact.china.wanjiang import wanjiang_growth_table
from zoneimpact.errors import PanelError

FIX = Path(__file__).parent / "fixtures" / "china"
#: (province, city, growth % 2001-2003, growth % 2004-2006)
GROWTH = [
    ("安徽省", "合肥市", 10.0, 12.0),  # Wanjiang member
    ("安徽省", "淮北市", 8.0, 9.0),  # rest of Anhui
    ("安徽省", "六安市", 50.0, 50.0),  # partly inside: left out
    ("北京市", "北京市", 5.0, 5.0),  # other provinces
    ("江苏省", "苏州市", 7.0, 3.0),  # other provinces
]


def _write(root: Path) -> Path:
    china = root / "china"
    china.mkdir(parents=True)
    for f in ("city_fdi_1996_2023.csv", "city_population_1998_2024.csv"):
        shutil.copy(FIX / f, china / f)
    rows = []
    for prov, city, g1, g2 in GROWTH:
        y = 100.0
        for t in range(2000, 2007):
            if t > 2000:
                y *= 1 + (g1 if t <= 2003 else g2) / 100
            rows.append([prov, city, float(t), y, np.nan, y, 1.0])
    cols = ["省份", "城市", "年份", "名义GDP", "GDP指数", "实际GDP", "GDP平减指数"]
    pd.DataFrame(rows, columns=cols).to_csv(china / "city_gdp_2000_2023.csv", index=False)
    return root


PERIODS = {"early": (2001, 2003), "late": (2004, 2006)}


def test_growth_table_by_hand(tmp_path):
    tab = wanjiang_growth_table(_write(tmp_path), periods=PERIODS).set_index(["group", "period"])
    assert tab.loc[("Wanjiang", "early"), "mean_city_growth"] == pytest.approx(10.0)
    assert tab.loc[("Wanjiang", "late"), "aggregate_growth"] == pytest.approx(12.0)
    assert tab.loc[("rest of Anhui", "late"), "n_cities"] == 1  # 六安 left out
    # other provinces: 北京 5 and 苏州 7 -> mean 6; summed GDP grows between 5 and 7
    assert tab.loc[("other provinces", "early"), "mean_city_growth"] == pytest.approx(6.0)
    agg = tab.loc[("other provinces", "early"), "aggregate_growth"]
    s0, s1 = 200.0, 100 * 1.05**3 + 100 * 1.07**3
    assert agg == pytest.approx(100 * ((s1 / s0) ** (1 / 3) - 1))
    assert tab.loc[("Wanjiang - rest of Anhui", "late"), "mean_city_growth"] == pytest.approx(3.0)
    did = tab.loc[("diff_in_diff: Wanjiang - rest of Anhui", "late vs early"), "mean_city_growth"]
    assert did == pytest.approx((12 - 9) - (10 - 8))


def test_periods_outside_the_data_are_named(tmp_path):
    root = _write(tmp_path)
    with pytest.raises(PanelError, match="2009"):
        wanjiang_growth_table(root, periods={"x": (2001, 2009)})
    with pytest.raises(PanelError, match="first <= last"):
        wanjiang_growth_table(root, periods={"x": (2005, 2001)})


def test_real_data_aggregate_growth_from_the_raw_file():
    require_data(*CHINA_FILES)
    tab = wanjiang_growth_table(SHARED_DATA).set_index(["group", "period"])
    raw = pd.read_csv(SHARED_DATA / "china" / "city_gdp_2000_2023.csv", encoding="utf-8-sig")
    members = raw[raw["城市"].str.rstrip("市").isin(WANJIANG_FULL) & (raw["省份"] == "安徽省")]
    by_year = members.groupby("年份")["实际GDP"].sum()
    assert members["城市"].nunique() == 8
    want = 100 * ((by_year[2020.0] / by_year[2009.0]) ** (1 / 11) - 1)
    assert tab.loc[("Wanjiang", "2010-2020"), "aggregate_growth"] == pytest.approx(want, rel=1e-9)
    # the seed's 9.2 % and +0.4 points (NDRC review, 2010-2020): the files give 9.9 % and
    # +1.0 against the rest of Anhui, whose gap was larger before 2010 (+3.2)
    assert 9.5 < want < 10.0
