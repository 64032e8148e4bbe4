"""Chinese place names: normalisation, renames and merges, provinces and the three belts.

Names in the city files differ by suffix (``上海`` vs ``上海市``; ``毕节地区`` vs ``毕节市``),
by invisible characters left by spreadsheet exports (zero-width spaces), and by the
prefecture-level renames and mergers between 1996 and 2022. Everything here is plain data
and string functions, so it works without the optional ``china`` dependencies.
"""

from __future__ import annotations

import re
import unicodedata

# ----------------------------------------------------------------------------- provinces
#: Full province names with their two-digit administrative code and short name.
PROVINCES: dict[str, tuple[str, str]] = {
    "北京市": ("11", "北京"),
    "天津市": ("12", "天津"),
    "河北省": ("13", "河北"),
    "山西省": ("14", "山西"),
    "内蒙古自治区": ("15", "内蒙古"),
    "辽宁省": ("21", "辽宁"),
    "吉林省": ("22", "吉林"),
    "黑龙江省": ("23", "黑龙江"),
    "上海市": ("31", "上海"),
    "江苏省": ("32", "江苏"),
    "浙江省": ("33", "浙江"),
    "安徽省": ("34", "安徽"),
    "福建省": ("35", "福建"),
    "江西省": ("36", "江西"),
    "山东省": ("37", "山东"),
    "河南省": ("41", "河南"),
    "湖北省": ("42", "湖北"),
    "湖南省": ("43", "湖南"),
    "广东省": ("44", "广东"),
    "广西壮族自治区": ("45", "广西"),
    "海南省": ("46", "海南"),
    "重庆市": ("50", "重庆"),
    "四川省": ("51", "四川"),
    "贵州省": ("52", "贵州"),
    "云南省": ("53", "云南"),
    "西藏自治区": ("54", "西藏"),
    "陕西省": ("61", "陕西"),
    "甘肃省": ("62", "甘肃"),
    "青海省": ("63", "青海"),
    "宁夏回族自治区": ("64", "宁夏"),
    "新疆维吾尔自治区": ("65", "新疆"),
}
SHORT_TO_PROVINCE = {short: full for full, (_, short) in PROVINCES.items()}
CODE_TO_PROVINCE = {code: full for full, (code, _) in PROVINCES.items()}
#: Province-level municipalities: every zone in them belongs to the municipality itself.
MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")

#: NBS three-belt classification (east / central / west). The west is the 12 provinces of
#: the Western Development strategy (西部大开发, 2000), the "western region" of the seed
#: document on science parks in western China.
REGION_OF_PROVINCE: dict[str, str] = {
    **dict.fromkeys(
        ["北京", "天津", "河北", "辽宁", "上海", "江苏", "浙江", "福建", "山东", "广东", "海南"],
        "east",
    ),
    **dict.fromkeys(
        ["山西", "吉林", "黑龙江", "安徽", "江西", "河南", "湖北", "湖南"], "central"
    ),
    **dict.fromkeys(
        [
            "内蒙古", "广西", "重庆", "四川", "贵州", "云南", "西藏", "陕西", "甘肃",
            "青海", "宁夏", "新疆",
        ],
        "west",
    ),
}  # fmt: skip

#: OCR confusions in the province patent tables (两 read for 西).
PROVINCE_OCR_FIXES = {"江两": "江西", "两藏": "西藏", "山两": "山西"}

# ----------------------------------------------------------------------------- cities
#: Prefecture renames (old short name -> new short name, year of the change).
RENAMES: dict[str, tuple[str, int]] = {
    "襄樊": ("襄阳", 2010),
    "思茅": ("普洱", 2007),
    "伊克昭": ("鄂尔多斯", 2001),
    "哲里木": ("通辽", 1999),
    "荆沙": ("荆州", 1996),
    "大庸": ("张家界", 1994),
    "锦西": ("葫芦岛", 1994),
    "浑江": ("白山", 1994),
}
#: Prefectures merged into one successor (old short name -> successor, year).
MERGES: dict[str, tuple[str, int]] = {
    "莱芜": ("济南", 2019),
    "万县": ("重庆", 1997),
    "涪陵": ("重庆", 1997),
    "黔江": ("重庆", 1997),
}
#: Prefectures dissolved into several successors (old short name -> successors, year).
#: Their series cannot be split without a share key, so they stay unmatched (reported).
DISSOLVED: dict[str, tuple[tuple[str, ...], int]] = {
    "巢湖": (("合肥", "芜湖", "马鞍山"), 2011),
}
#: Rows that are aggregates, not cities.
AGGREGATES = {"中国": "national total, not a city", "全国": "national total, not a city"}

#: The 55 minority nationalities (for stripping them from autonomous-prefecture and
#: autonomous-county names: 大理白族自治州 -> 大理).
MINORITIES = (
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 "
    "塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
).split()
_MINORITY_RE = re.compile(
    "(?:"
    + "|".join(
        # single-character names only with 族 (白族, 土族), longer ones with or without
        f"{m}族" if len(m) == 1 else f"{m}族?"
        for m in sorted(MINORITIES, key=len, reverse=True)
    )
    + ")$"
)
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff\u00a0\u3000\\s]")
_PREFECTURE_SUFFIX = re.compile("(?:自治州|地区|盟|市)$")
_COUNTY_SUFFIX = re.compile("(?:自治县|自治旗|新区|特区|林区|县|区|市|旗)$")


def clean_text(name: object) -> str:
    """Strip whitespace, zero-width and full-width spaces; NFKC-normalise the dashes."""
    if name is None or (isinstance(name, float) and name != name):
        return ""
    s = unicodedata.normalize("NFKC", str(name))
    return _INVISIBLE.sub("", s)


def _strip_minorities(stem: str) -> str:
    while True:
        new = _MINORITY_RE.sub("", stem)
        if new == stem or len(new) < 2:
            return stem
        stem = new


def city_short_name(name: object) -> str:
    r"""Short name of a prefecture: no 市/地区/盟/自治州 suffix, no minority names.

    ``"毕节地区" -> "毕节"``, ``"海南藏族自治州" -> "海南"``, ``"哈密\u200b\u200b" -> "哈密"``.
    """
    s = clean_text(name)
    if len(s) <= 2:
        return s
    had_autonomy = s.endswith("自治州")
    stem = _PREFECTURE_SUFFIX.sub("", s)
    if len(stem) < 2:
        return s
    return _strip_minorities(stem) if had_autonomy else stem


def county_short_name(name: object) -> str:
    """Short name of a county-level unit: ``"昆山市" -> "昆山"``, ``"长阳土家族自治县" -> "长阳"``."""
    s = clean_text(name)
    autonomous = s.endswith(("自治县", "自治旗"))
    stem = _COUNTY_SUFFIX.sub("", s)
    if len(stem) < 2:
        return s
    return _strip_minorities(stem) if autonomous else stem


def province_full_name(name: object) -> str | None:
    """Canonical full province name from a full, short, spaced or OCR-garbled spelling."""
    s = clean_text(name)
    s = PROVINCE_OCR_FIXES.get(s, s)
    if s in PROVINCES:
        return s
    if s in SHORT_TO_PROVINCE:
        return SHORT_TO_PROVINCE[s]
    for full, (_, short) in PROVINCES.items():
        if s.startswith(short):
            return full
    return None


def region_of(province: str) -> str:
    """East / central / west belt of a province (full or short name)."""
    full = province_full_name(province)
    if full is None:
        raise KeyError(province)
    return REGION_OF_PROVINCE[PROVINCES[full][1]]
