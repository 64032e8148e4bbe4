"""The China data-quality flags feed the spec curve's ``no_flagged`` sample correctly (a
breaker's findings on zoneimpact.china.quality/speccurve).

1. A province's reporting-basis break persists (its cities stay on the new basis), so
   ``no_flagged`` blanks FDI from the first break year on, not in the break year only;
   single-year flags (``isolated_spike``, ``endpoint``) are blanked in their year only.
2. The first and last reported year of a city has one neighbour, so the spike rule never
   sees it: the ``endpoint`` rule flags it beyond ENDPOINT_FACTOR (= SPIKE_FACTOR squared).
3. ``quality_table``'s example is the flag with the most extreme ratio (zero first), not the
   most extreme level.

Synthetic frames where possible (every expected number is read off the frame built in the
test); the shared files, when present, for the facts the breaker reported, quoted from
``china/city_fdi_1996_2023.csv``. Counts are exact: deterministic operations on data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from china_full_study import study
from conftest import CHINA_FILES, SHARED_DATA, require_data

import zoneimpact.china.quality as q
from zoneimpact.china.speccurve import restrict_sample, specification_curve
from zoneimpact.errors import ZoneImpactError
from zoneimpact.panel import Panel

YEARS = range(2000, 2023)


@pytest.fixture(scope="module")
def toy() -> Panel:
    # A, B, C in province P1; D, E in P2; FDI = 10 + city index + (year - 2000), never NaN
    units = {"A": "P1", "B": "P1", "C": "P1", "D": "P2", "E": "P2"}
    cohort = {"A": 2010, "B": np.nan, "C": np.nan, "D": np.nan, "E": 2015}
    rows = [
        {"unit": u, "year": y, "cohort": cohort[u], "fdi": float(10 + i + (y - 2000)),
         "log1p_fdi": 1.0}
        for i, u in enumerate(units)
        for y in YEARS
    ]  # fmt: skip
    geo = pd.DataFrame({"unit": list(units), "province": list(units.values())})
    return Panel.from_frame(
        pd.DataFrame(rows),
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi", "log1p_fdi"],
        geography=geo,
    )


def _blanked(panel: Panel) -> set[tuple[str, int]]:
    d = panel.data
    return set(zip(d.loc[d["fdi"].isna(), "unit"], d.loc[d["fdi"].isna(), "time"], strict=True))


def _flag(series, province, city, year, flag, value=np.nan, ratio=np.nan, detail=""):
    return {"series": series, "province": province, "city": city, "city_code": city,
            "year": year, "flag": flag, "detail": detail, "value": value, "ratio": ratio}  # fmt: skip


# --- 1. no_flagged: breaks persist, single-year flags stay single-year ----------------------


def test_no_flagged_blanks_a_break_from_its_year_to_the_end(toy):
    out = restrict_sample(toy, "no_flagged", [("P1", 2015)])
    # old code: only the break year, {A, B, C} x {2015} (3 cells); new: 2015-2022 of the
    # three P1 cities, 8 years x 3 = 24 cells; 2014 and P2 untouched
    assert _blanked(out) == {(u, y) for u in "ABC" for y in range(2015, 2023)}
    assert out.data["log1p_fdi"].isna().sum() == 24
    assert list(out.unit_cohort) == list(toy.unit_cohort)  # adoption years kept
    assert toy.data["fdi"].notna().all()  # the caller's panel untouched
    # two breaks of one province: blanked from the first one on
    two = restrict_sample(toy, "no_flagged", [("P1", 2017), ("P1", 2012)])
    assert _blanked(two) == {(u, y) for u in "ABC" for y in range(2012, 2023)}


def test_no_flagged_reads_the_flags_frame_fdi_only(toy):
    flags = pd.DataFrame(
        [
            _flag("fdi", "P2", np.nan, 2020, "reporting_break"),  # D, E 2020-2022
            _flag("fdi", "P1", "A", 2005, "isolated_spike"),  # A 2005 only
            _flag("fdi", "P1", "C", 2022, "endpoint"),  # C 2022 only
            _flag("fdi", "P1", "B", 2011, "boundary_change"),  # not a data error
            _flag("population", "P1", "B", 2008, "isolated_spike"),  # another series
            _flag("gdp", "P1", np.nan, 2003, "reporting_break"),  # another series
        ]
    )
    out = restrict_sample(toy, "no_flagged", flags)
    # old code: TypeError/ValueError (a DataFrame is not a list of province-year pairs)
    expect = {("D", y) for y in (2020, 2021, 2022)} | {("E", y) for y in (2020, 2021, 2022)}
    assert _blanked(out) == expect | {("A", 2005), ("C", 2022)}
    # no FDI flag at all: the curve leaves the sample out without fitting anything
    none = flags[flags["series"] != "fdi"]
    assert specification_curve(toy, flagged=none, samples=("no_flagged",)).empty


def test_no_flagged_bad_flagged_input_names_the_problem(toy):
    # old code: a bare ValueError from tuple unpacking / int()
    for bad in ([("P1",)], [("P1", "late")], [2015]):
        with pytest.raises(ZoneImpactError, match=r"\(province, year\) pairs"):
            restrict_sample(toy, "no_flagged", bad)
    with pytest.raises(ZoneImpactError, match="flag"):  # a frame without the flag column
        restrict_sample(toy, "no_flagged", pd.DataFrame({"province": ["P1"], "year": [2015]}))


def test_real_no_flagged_keeps_no_new_basis_year():
    require_data(*CHINA_FILES)
    cp, _, _, panel = study()
    flags = q.data_quality_flags(SHARED_DATA, city_panel=cp)
    breaks = q.flagged_province_years(flags, series="fdi")
    first = {p: min(y for pp, y in breaks if pp == p) for p, _ in breaks}
    # the nine FDI province-year breaks of test_china_quality (Liaoning 2015, Heilongjiang
    # 2019, Yunnan 2016, Jilin 2018, Gansu 2017 and 2020, Hunan 2021, Anhui and Henan 2022)
    assert first == {"辽宁省": 2015, "黑龙江省": 2019, "云南省": 2016, "吉林省": 2018,
                     "甘肃省": 2017, "湖南省": 2021, "安徽省": 2022, "河南省": 2022}  # fmt: skip
    prov = panel.require_geography(["province"])["province"].astype(str)
    d = panel.data
    p = d["unit"].map(prov).astype(str)
    after = (p.map(first).notna() & (d["time"] > p.map(first))).to_numpy()
    # the estimation panel has 181 FDI values after its province's first break year; the
    # old rule (break years only) blanked Gansu's second break year 2020 (7) and kept 174
    # (= 5,209 - 5,035 non-missing FDI values of specs/china.toml's panel blanking break
    # years only vs from the first break on; the breaker counted 223 on the 298-city file)
    assert d.loc[after, "fdi"].notna().sum() == 181
    # old code: all of them kept
    assert restrict_sample(panel, "no_flagged", breaks).data.loc[after, "fdi"].notna().sum() == 0
    out = restrict_sample(panel, "no_flagged", flags).data
    assert out.loc[after, "fdi"].notna().sum() == 0
    _, cells = q.flagged_cells(flags, series="fdi")
    # a single-year flag outside a broken province is blanked in its year only: 长治 2022
    # (endpoint) and 攀枝花 2017 (spike, 30.95 -> 0.03 -> 136 in the FDI file)
    code = dict(zip(cp.cities["city"], cp.cities["city_code"].astype(str), strict=True))
    for city, year in (("长治市", 2022), ("攀枝花市", 2017)):
        assert (code[city], year) in cells
        rows = out[out["unit"].astype(str) == code[city]].set_index("time")["fdi"]
        assert np.isnan(rows[year]) and rows.drop(year).notna().sum() >= 15


# --- 2. the endpoint rule ----------------------------------------------------------------


def _wide(values: dict[str, list[float]], start: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(next(iter(values.values())))
    wide = pd.DataFrame(values, index=range(start, start + n)).T
    wide.index.name, wide.columns.name = "city_code", "year"
    cities = pd.DataFrame({"city": [f"{c}市" for c in values], "province": "P"}, index=wide.index)
    return wide, cities


def test_endpoint_rule_flags_first_and_last_years_beyond_the_squared_factor():
    nan = np.nan
    wide, cities = _wide(
        {
            "last150": [50, 52, 54, 56, 0.36],  # 56 -> 0.36: 156x below, flagged
            "last50": [50, 52, 54, 56, 1.12],  # 50x below: a spike's size, not an endpoint's
            "first200": [9000, 40, 42, 44, 46],  # 9000 / 40 = 225x above, flagged
            "zero": [30, 31, 32, 33, 0.0],  # a zero after 33: ratio 0, flagged
            "zero_nb": [30, 31, 32, 0.0, 40],  # the neighbour is zero: it is the suspect
            "gap": [50, nan, 0.1, nan, 60],  # gap edges are not endpoints of the series
            "two": [nan, nan, nan, 0.01, 50],  # two values: no telling which one is off
            "interior": [50, 55, 0.2, 60, 62],  # an isolated spike, not an endpoint
            "next_to_spike": [50, 52, 54, 9000, 55],  # 55 is fine: its neighbour spikes
        }
    )
    assert q.ENDPOINT_FACTOR == pytest.approx(q.SPIKE_FACTOR**2)
    rows = pd.DataFrame(q._endpoint_jumps(wide, cities, "fdi"))
    got = sorted(zip(rows["city_code"], rows["year"], strict=True))
    # old code: no endpoint rule (AttributeError), so none of these was flagged
    assert got == [("first200", 2000), ("last150", 2004), ("zero", 2004)]
    r = rows.set_index("city_code")
    assert r.at["last150", "ratio"] == pytest.approx(0.36 / 56)  # value / only neighbour
    assert r.at["first200", "ratio"] == pytest.approx(9000 / 40)
    assert r.at["zero", "ratio"] == 0.0 and r.at["zero", "value"] == 0.0
    assert set(r["flag"]) == {"endpoint"}
    assert "last reported year" in r.at["last150", "detail"]
    assert "56 -> 0.36" in r.at["last150", "detail"]
    # the interior rule sees the interior values only: the zero between 32 and 40, and 0.2
    # between 55 and 60 (ratio: value / the nearer neighbour)
    spikes = {
        (s["city_code"], s["year"]): s["ratio"] for s in q._isolated_spikes(wide, cities, "fdi")
    }
    assert spikes == {
        ("zero_nb", 2003): 0.0,
        ("interior", 2002): pytest.approx(0.2 / 55),
        ("next_to_spike", 2003): pytest.approx(9000 / 55),
    }


def test_drop_flagged_drops_an_endpoint_year_only():
    frame = pd.DataFrame({"city_code": ["140400"] * 3, "year": [2020, 2021, 2022]})
    flags = pd.DataFrame([_flag("fdi", "山西省", "140400", 2022, "endpoint")])
    out = q.drop_flagged(frame, flags, unit_province={"140400": "山西省"}, until=None)
    # old code: endpoint flags unknown, nothing dropped (3 rows kept)
    assert out["year"].tolist() == [2020, 2021]
    assert out.attrs["dropped"]["endpoint"] == 1
    kept = q.drop_flagged(frame, flags, unit_province={"140400": "山西省"}, until=None,
                          drop_spikes=False)  # fmt: skip
    assert len(kept) == 3


def test_real_endpoint_flags():
    require_data(*CHINA_FILES)
    cp = study()[0]
    flags = q.data_quality_flags(SHARED_DATA, city_panel=cp)
    ep = flags[flags["flag"] == "endpoint"]
    # city_fdi_1996_2023.csv: 长治 2021 481.40 -> 2022 0.11 (ratio 0.00023); 陇南 2018
    # 13.32 -> 2019 0.02, its last value; 洛阳, 濮阳, 许昌, 三门峡 2022 fall 124-185x in
    # Henan's 2022 break year (near_break); nothing else passes 100x, and GDP and population
    # raise none (old code: no endpoint flags, 2022 could never be flagged)
    got = sorted(zip(ep["series"], ep["city"], ep["year"], ep["near_break"], strict=True))
    assert got == [
        ("fdi", "三门峡市", 2022, True),
        ("fdi", "洛阳市", 2022, True),
        ("fdi", "濮阳市", 2022, True),
        ("fdi", "许昌市", 2022, True),
        ("fdi", "长治市", 2022, False),
        ("fdi", "陇南市", 2019, True),
    ]
    cz = ep.set_index("city").loc["长治市"]
    # float32 values of the CSV (481.399993896484, 0.109999999403954): 6 digits suffice
    assert cz["ratio"] == pytest.approx(0.11 / 481.4, rel=1e-6)
    # the other rules are unchanged (counts of test_china_quality)
    assert (flags["flag"] == "isolated_spike").sum() == 29
    assert ((flags["flag"] == "reporting_break") & flags["city"].isna()).sum() == 9


# --- 3. quality_table's example ------------------------------------------------------------


def test_quality_table_example_is_the_most_extreme_ratio():
    # the Liaoning case: 丹东 2017 has the larger level (153.6) but the smaller ratio (11.2x
    # above the nearer neighbour 13.69); 抚顺 2016 is 163x below 26.06 (figures of the FDI file)
    flags = pd.DataFrame(
        [
            _flag("fdi", "辽宁省", "丹东市", 2017, "isolated_spike", 153.6, 153.6 / 13.69, "丹东"),
            _flag("fdi", "辽宁省", "抚顺市", 2016, "isolated_spike", 0.16, 0.16 / 26.06, "抚顺"),
            _flag("fdi", "黑龙江省", "双鸭山市", 2004, "isolated_spike", 9.26, 9.26 / 0.7, "04"),
            _flag("fdi", "黑龙江省", "双鸭山市", 2006, "isolated_spike", 0.0, 0.0, "06"),
        ]
    )
    tab = q.quality_table(flags).set_index("province")
    # old code ranked |log value| (丹东: 5.03 > 抚顺: 1.83) and dropped the zero value
    assert tab.at["辽宁省", "example"] == "抚顺"
    assert tab.at["黑龙江省", "example"] == "06"  # a zero ratio is the most extreme
    # flags without a ratio column (older frames) still get an example, from value
    assert q.quality_table(flags.drop(columns="ratio")).set_index("province").at[
        "辽宁省", "example"
    ] == "丹东"  # fmt: skip


def test_real_quality_table_examples():
    require_data(*CHINA_FILES)
    cp = study()[0]
    tab = q.quality_table(q.data_quality_flags(SHARED_DATA, city_panel=cp))
    ex = tab[tab["flag"] == "isolated_spike"].set_index("province")["example"]
    # the breaker's list of most extreme spikes per province (factor over the nearer
    # neighbour, from the FDI file): 抚顺 2016 163x, 双鸭山 2006 zero, 普洱 2014 87x,
    # 阳泉 2005 27x, 来宾 2018 102x (old code: 丹东, 双鸭山 2004, 丽江, 太原, 百色)
    assert ex["辽宁省"].startswith("抚顺市 2015-2016-2017")
    assert ex["黑龙江省"].startswith("双鸭山市 2005-2006-2007")
    assert ex["云南省"].startswith("普洱市 2013-2014-2015")
    assert ex["山西省"].startswith("阳泉市 2004-2005-2006")
    assert ex["广西壮族自治区"].startswith("来宾市 2017-2018-2019")
