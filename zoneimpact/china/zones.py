"""Assign national development zones to prefecture cities and derive city cohorts.

Zones are assigned **by name**, never by coordinates (21 geocodes in the roster fall outside
their province). For each zone, in this order:

1. an explicit table (:data:`ZONE_OVERRIDES`) for names no rule resolves or that a rule
   would resolve wrongly (``杭州湾上虞`` starts with 杭州 but lies in 绍兴);
2. zones in a province-level municipality belong to the municipality;
3. the zone's ``city_county`` starts with a prefecture's short name (longest wins);
4. it starts with a county-level unit's short name (or vice versa): the county's parent
   prefecture (``昆山`` -> 苏州), using cpca's administrative-unit table;
5. a prefecture's short name occurs anywhere in ``city_county``.

Names of merged or renamed prefectures are rewritten first (莱芜 -> 济南), and the source
typo 湽博 is corrected to 淄博. A zone whose prefecture is not a unit of the city panel
(an autonomous prefecture such as 延边, or a county-level city directly under its province
such as 仙桃 or 石河子) stays unassigned, with that reason.

A city's cohort is the approval year of its first national zone: ``cohort_etdz``,
``cohort_htz`` and ``cohort_any`` (NaN = never). Zones upgraded from provincial status carry
their upgrade date, so the cohort is the year the city got a *national* zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PanelError
from .names import (
    MERGES,
    MUNICIPALITIES,
    PROVINCES,
    RENAMES,
    city_short_name,
    clean_text,
    county_short_name,
    province_full_name,
)

ZONE_TYPES = {"经济技术开发区": "etdz", "高新技术产业开发区": "htz"}
#: Typos in the roster (wrong character -> right one).
ZONE_TYPOS = {"湽博": "淄博"}

#: (province short name, city_county) -> (prefecture code, reason). Each entry was checked
#: against the zone's full name in the 2018 catalogue.
ZONE_OVERRIDES: dict[tuple[str, str], tuple[str, str]] = {
    ("河北", "燕郊"): ("131000", "燕郊 lies in 三河市, a county-level city of 廊坊"),
    ("黑龙江", "宾西"): ("230100", "宾西 ETDZ lies in 宾县, a county of 哈尔滨"),
    ("浙江", "杭州湾上虞"): (
        "330600",
        "杭州湾上虞 lies in 上虞区 of 绍兴 (杭州湾 is the bay, not the city 杭州)",
    ),
    ("福建", "东侨"): ("350900", "东侨 ETDZ lies in 宁德 (东侨 development area)"),
    ("山东", "明水"): ("370100", "明水 ETDZ lies in 章丘区 of 济南"),
    ("山东", "黄河三角洲农业"): (
        "370500",
        "Yellow River Delta agricultural high-tech demonstration zone lies in 东营",
    ),
    ("河南", "红旗渠"): ("410500", "红旗渠 ETDZ lies in 林州市, a county-level city of 安阳"),
    ("广西", "—东盟"): ("450100", "广西—东盟 ETDZ lies in 南宁 (武鸣区)"),
    ("广西", "中国—马来西亚钦州"): (
        "450700",
        "China-Malaysia Qinzhou industrial park lies in 钦州",
    ),
    ("海南", "洋浦"): (
        "460400",
        "洋浦 lies on the territory of 儋州 (administered directly by the province)",
    ),
    ("陕西", "航空"): (
        "610100",
        "陕西航空 ETDZ is the 阎良 aviation base of 西安 (its geocode points elsewhere)",
    ),
    ("陕西", "航天"): ("610100", "陕西航天 ETDZ is the aerospace base in 长安区 of 西安"),
    ("陕西", "杨凌农业"): ("610400", "杨凌 agricultural HTZ lies in 杨陵区 of 咸阳"),
    ("青海", "青海"): ("630100", "青海 HTZ lies in 西宁"),
    ("新疆", "准东"): ("652300", "准东 ETDZ lies in 昌吉回族自治州"),
    ("新疆", "奎屯—独山子"): (
        "650200",
        "spans 奎屯 (a county-level city of 伊犁州, not in the panel) and 独山子区 of 克拉玛依; "
        "assigned to 克拉玛依, which hosts part of it",
    ),
    ("新疆", "生产建设兵团石河子"): (
        "659001",
        "XPCC 石河子 is a county-level city under the region",
    ),
}

ZONE_COLUMNS = [
    "seq", "code", "name", "province", "city_county", "zone_type", "approval_year",
    "approval_month", "geocode_province_ok", "city_code", "city", "prefecture_code", "rule",
    "reason",
]  # fmt: skip


@dataclass(frozen=True)
class ZoneAssignment:
    """Zones with their prefecture city, and the resulting city cohorts.

    Attributes
    ----------
    zones : pandas.DataFrame
        Every zone with ``zone_type`` (``etdz``/``htz``), ``city_code`` (NaN when
        unassigned), ``city``, ``prefecture_code`` (the prefecture-level unit the zone lies
        in, also when that unit is not a panel city, e.g. an autonomous prefecture; NaN
        when no rule locates it), ``rule`` (which step assigned it) and ``reason``.
    unassigned : pandas.DataFrame
        The zones without a panel city, with the reason.
    cohorts : pandas.DataFrame
        One row per city of the panel: ``city_code``, ``cohort_etdz``, ``cohort_htz``,
        ``cohort_any`` (first approval year, NaN = never), ``n_etdz``, ``n_htz``.
    report : dict
        Counts (assigned, unassigned, by rule), ``typos_fixed``, ``bad_geocodes``.
    """

    zones: pd.DataFrame
    unassigned: pd.DataFrame
    cohorts: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)

    def always_treated(self, first_year: int, zone_type: str = "any") -> pd.DataFrame:
        """Cities whose first zone of ``zone_type`` is in or before ``first_year``.

        They have no untreated period in a panel starting in ``first_year``;
        ``Panel.from_frame(outside_window="adjust")`` drops them.
        """
        col = f"cohort_{zone_type}"
        return self.cohorts.loc[self.cohorts[col] <= first_year].reset_index(drop=True)


def _prefecture_table(cities: pd.DataFrame, admin: pd.DataFrame | None) -> pd.DataFrame:
    """Prefecture-level units with short names: panel cities plus cpca prefectures."""
    rows = [
        pd.DataFrame(
            {
                "code": cities["city_code"].astype(str).str.zfill(6),
                "short": cities["city"].map(city_short_name),
                "prov": cities["city_code"].astype(str).str.zfill(6).str[:2],
            }
        )
    ]
    if admin is not None:
        pref = admin[admin["level"] == "prefecture"]
        rows.append(
            pd.DataFrame(
                {
                    "code": pref["code"],
                    "short": pref["name"].map(city_short_name),
                    "prov": pref["code"].str[:2],
                }
            )
        )
    out = pd.concat(rows).drop_duplicates("code")
    out = out[out["short"].str.len() >= 2]
    return out.assign(n=out["short"].str.len()).sort_values("n", ascending=False)


def _county_table(admin: pd.DataFrame | None) -> pd.DataFrame:
    if admin is None:
        return pd.DataFrame(columns=["code", "short", "prov", "parent", "name", "n"])
    cty = admin[admin["level"] == "county"]
    out = pd.DataFrame(
        {
            "code": cty["code"],
            "name": cty["name"],
            "short": cty["name"].map(county_short_name),
            "prov": cty["code"].str[:2],
            "parent": cty["parent"],
        }
    )
    out = out[out["short"].str.len() >= 2]
    return out.assign(n=out["short"].str.len()).sort_values("n", ascending=False)


def _rewrite_old_names(cc: str) -> tuple[str, str | None]:
    for old, (new, year) in {**RENAMES, **MERGES}.items():
        if cc.startswith(old):
            kind = "renamed" if old in RENAMES else "merged into"
            return new + cc[len(old) :], f"{old} {kind} {new} ({year})"
    return cc, None


def _by_province(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A prefecture or county table's rows by province code (in table order), so that a
    zone's lookup does not filter the whole table again."""
    return {str(k): g for k, g in table.groupby("prov", sort=False)}


def _locate(
    prov_full: str,
    cc: str,
    prefs: dict[str, pd.DataFrame],
    counties: dict[str, pd.DataFrame],
    empty: tuple[pd.DataFrame, pd.DataFrame],
) -> tuple[str | None, str, str]:
    """(prefecture code or None, rule, reason) for one zone; ``prefs`` and ``counties``
    by province code (:func:`_by_province`), ``empty`` the two tables' columns without
    rows (for a province with none)."""
    pcode, pshort = PROVINCES[prov_full]
    key = (pshort, cc)
    if key in ZONE_OVERRIDES:
        code, why = ZONE_OVERRIDES[key]
        return code, "explicit", why
    if prov_full in MUNICIPALITIES:
        return pcode + "0000", "municipality", f"zone in the municipality {prov_full}"
    p = prefs.get(pcode, empty[0])
    hit = p.loc[np.array([cc.startswith(s) for s in p["short"]], dtype=bool)]
    if len(hit):
        return hit["code"].iloc[0], "prefecture_name", f"name starts with {hit['short'].iloc[0]}"
    c = counties.get(pcode, empty[1])
    if len(cc) >= 2 and len(c):
        m = np.array([cc.startswith(s) or s.startswith(cc) for s in c["short"]], dtype=bool)
        hit = c.loc[m]
        if len(hit):
            best = hit[hit["n"] == hit["n"].iloc[0]]
            parents = best["parent"].unique()
            if len(parents) > 1:
                return (
                    None,
                    "ambiguous",
                    f"county names {sorted(best['name'])} in different prefectures match",
                )
            return (
                parents[0],
                "county_name",
                f"county-level unit {best['name'].iloc[0]} ({best['code'].iloc[0]}) belongs to "
                f"prefecture {parents[0]}",
            )
    hit = p.loc[np.array([s in cc for s in p["short"]], dtype=bool)]
    if len(hit["code"].unique()) == 1:
        return hit["code"].iloc[0], "prefecture_in_name", f"name contains {hit['short'].iloc[0]}"
    why = "no prefecture or county name matches"
    if not counties:
        why += " (no county table: install cpca to resolve county-level zones)"
    return None, "unresolved", why


def assign_zones(
    zones_df: pd.DataFrame,
    cities: pd.DataFrame,
    *,
    admin_units: pd.DataFrame | None | str = "cpca",
) -> ZoneAssignment:
    """Assign each national zone to its prefecture city and derive city cohorts.

    Parameters
    ----------
    zones_df : pandas.DataFrame
        The zone roster (``zones_national_2018.csv``): at least ``province``,
        ``city_county``, ``type``, ``approval_year``. Never modified.
    cities : pandas.DataFrame
        The panel's cities: ``city_code`` (6-digit) and ``city`` (e.g.
        :attr:`CityPanel.cities`).
    admin_units : DataFrame, None or "cpca"
        County-level units with ``code`` and ``name`` (6-digit codes) to place county-level
        zones (昆山 -> 苏州). ``"cpca"`` (default) reads the table shipped with the ``cpca``
        package; ``None`` skips county matching (those zones stay unassigned, reported).

    Returns
    -------
    ZoneAssignment
    """
    from ._external import admin_units_from_frame, load_admin_units

    need = ["province", "city_county", "type", "approval_year"]
    miss = [c for c in need if c not in zones_df.columns]
    if miss:
        raise PanelError(f"Zone roster lacks column(s) {miss}; found {list(zones_df.columns)}.")
    if not {"city_code", "city"} <= set(cities.columns):
        raise PanelError("cities must have columns 'city_code' and 'city'.")
    if isinstance(admin_units, str):
        if admin_units != "cpca":
            raise PanelError(
                f"admin_units must be a DataFrame, None or 'cpca'; got {admin_units!r}."
            )
        admin = load_admin_units()
    elif admin_units is None:
        admin = None
    else:
        admin = admin_units_from_frame(admin_units)

    z = zones_df.copy()
    bad_type = ~z["type"].isin(list(ZONE_TYPES))
    if bad_type.any():
        raise PanelError(
            f"Zone column 'type' holds {z.loc[bad_type, 'type'].iloc[0]!r}; expected one of "
            f"{list(ZONE_TYPES)}."
        )
    z["zone_type"] = z["type"].map(ZONE_TYPES)
    for c in ("seq", "code", "name", "approval_month", "geocode_province_ok"):
        if c not in z.columns:
            z[c] = np.nan
    z["approval_year"] = pd.to_numeric(z["approval_year"], errors="coerce")
    if z["approval_year"].isna().any():
        r = z.loc[z["approval_year"].isna()].iloc[0]
        raise PanelError(f"Zone {r['name']!r}: approval_year {r['approval_year']!r} is not a year.")

    city_codes = cities["city_code"].astype(str).str.zfill(6)
    city_name = dict(zip(city_codes, cities["city"], strict=True))
    prefs = _prefecture_table(cities, admin)
    counties = _county_table(admin)
    admin_name = dict(zip(admin["code"], admin["name"], strict=True)) if admin is not None else {}

    prefs_by, counties_by = _by_province(prefs), _by_province(counties)
    empty = (prefs.iloc[:0], counties.iloc[:0])
    typos: list[dict[str, str]] = []
    out_code: list[str | None] = []
    out_pref: list[str | None] = []
    out_rule: list[str] = []
    out_reason: list[str] = []
    out_cc: list[str] = []
    for _, r in z.iterrows():
        cc = clean_text(r["city_county"])
        for wrong, right in ZONE_TYPOS.items():
            if wrong in cc:
                typos.append({"name": str(r.get("name", "")), "wrong": wrong, "right": right})
                cc = cc.replace(wrong, right)
        cc, renamed = _rewrite_old_names(cc)
        prov = province_full_name(r["province"])
        if prov is None:
            out_code.append(None)
            out_pref.append(None)
            out_rule.append("unresolved")
            out_reason.append(f"province {r['province']!r} not recognised")
            out_cc.append(cc)
            continue
        code, rule, why = _locate(prov, cc, prefs_by, counties_by, empty)
        if renamed:
            why = f"{renamed}; {why}"
        out_pref.append(code)
        if code is not None and code not in city_name:
            where = admin_name.get(code, code)
            why = (
                f"located in {where} ({code}), which is not a unit of the city panel "
                "(autonomous prefecture/league or county-level city under the province); " + why
            )
            code, rule = None, "not_in_panel"
        out_code.append(code)
        out_rule.append(rule)
        out_reason.append(why)
        out_cc.append(cc)

    z["city_county"] = out_cc
    z["city_code"] = pd.array(out_code, dtype="object")
    z["city"] = z["city_code"].map(city_name)
    z["prefecture_code"] = pd.array(out_pref, dtype="object")
    z["rule"] = out_rule
    z["reason"] = out_reason
    z = z[ZONE_COLUMNS]
    unassigned = z[z["city_code"].isna()].reset_index(drop=True)
    cohorts = city_cohorts(z, city_codes)
    report = {
        "n_zones": int(len(z)),
        "n_assigned": int(z["city_code"].notna().sum()),
        "n_unassigned": int(len(unassigned)),
        "by_rule": z["rule"].value_counts().to_dict(),
        "typos_fixed": typos,
        "bad_geocodes": int((z["geocode_province_ok"] == False).sum()),  # noqa: E712
        "n_cities_with_zone": int(cohorts["cohort_any"].notna().sum()),
    }
    return ZoneAssignment(z.reset_index(drop=True), unassigned, cohorts, report)


def city_cohorts(zones: pd.DataFrame, city_codes: pd.Series | list[str]) -> pd.DataFrame:
    """First national-zone year per city by type (NaN = never), and zone counts."""
    ok = zones.dropna(subset=["city_code"])
    out = pd.DataFrame({"city_code": pd.Series(list(city_codes), dtype=str)})
    for t in ("etdz", "htz"):
        sub = ok[ok["zone_type"] == t].groupby("city_code")
        out[f"cohort_{t}"] = out["city_code"].map(sub["approval_year"].min()).astype(float)
        out[f"n_{t}"] = out["city_code"].map(sub.size()).fillna(0).astype(int)
    out["cohort_any"] = out[["cohort_etdz", "cohort_htz"]].min(axis=1)
    return out[["city_code", "cohort_etdz", "cohort_htz", "cohort_any", "n_etdz", "n_htz"]]
