"""Harmonised prefecture-city x year panel from the FDI, GDP and population files.

The key is the 6-digit administrative code of the population file (``城市代码``). Names in
the other files are matched to it after normalisation (:func:`~.names.city_short_name`:
suffixes 市/地区/盟/自治州 and invisible characters removed), renames (襄樊 -> 襄阳, ...)
and merges (莱芜 -> 济南 in 2019). Prefectures dissolved into several successors (巢湖,
2011) have no share key to split their series and stay unmatched. Every name that does not
match is listed in the report with its reason; nothing is dropped silently.

Hand-written because no maintained library harmonises Chinese prefecture names over time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..datadir import require_files
from ..errors import PanelError
from .names import (
    AGGREGATES,
    DISSOLVED,
    MERGES,
    PROVINCES,
    RENAMES,
    city_short_name,
    clean_text,
    province_full_name,
    region_of,
)

FDI_FILE = "china/city_fdi_1996_2023.csv"
GDP_FILE = "china/city_gdp_2000_2023.csv"
POP_FILE = "china/city_population_1998_2024.csv"
ZONES_FILE = "china/zones_national_2018.csv"
PATENT_APPL_FILE = "china/province_patent_applications_2010_2023.csv"
PATENT_GRANT_FILE = "china/province_patent_grants_2010_2023.csv"
CITY_FILES = (FDI_FILE, GDP_FILE, POP_FILE)

FIRST_YEAR, LAST_YEAR = 1996, 2022
UNMATCHED_COLUMNS = ["file", "name", "n_rows", "n_nonmissing", "reason"]


@dataclass(frozen=True)
class CityPanel:
    """The harmonised city-year panel and what harmonisation did.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per city (``city_code``, 6-digit string) and year (1996-2022) with
        ``city``, ``province``, ``region``, ``fdi`` (USD million; NaN = not reported, 0 =
        reported zero), ``gdp_nominal`` (100 million yuan), ``gdp_real`` (2000 prices),
        ``population`` (resident, 10k, as reported), ``population_interp`` (gaps
        interpolated by the source), ``area_km2``.
    cities : pandas.DataFrame
        One row per city: ``city_code``, ``city``, ``short_name``, ``province``, ``region``.
    report : dict
        ``files`` (rows/names matched per file), ``unmatched`` (DataFrame: file, name,
        n_rows, n_nonmissing, reason), ``renamed`` and ``merged`` (DataFrames of names
        recoded), ``cleaned_names``, ``dropped_years``, ``boundary_changes`` and
        ``fdi_coverage`` (cities with FDI per year).
    """

    frame: pd.DataFrame
    cities: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def china_dir(data_dir: str | Path) -> Path:
    """The folder holding ``china/...``: ``data_dir`` itself if it is the china folder."""
    data_dir = Path(data_dir)
    if data_dir.name == "china" and not (data_dir / "china").is_dir():
        return data_dir.parent
    return data_dir


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig")


def _city_key(pop: pd.DataFrame) -> pd.DataFrame:
    """One row per city code from the population file."""
    rows = pop.dropna(subset=["城市", "城市代码"])
    key = rows.drop_duplicates("城市代码")[["城市代码", "城市", "省份"]].copy()
    key["city_code"] = key["城市代码"].astype(np.int64).astype(str).str.zfill(6)
    key["city"] = key["城市"].map(clean_text)
    key["short_name"] = key["城市"].map(city_short_name)
    key["province"] = key["省份"].map(province_full_name)
    bad = key["province"].isna()
    if bad.any():
        r = key.loc[bad].iloc[0]
        raise PanelError(
            f"Population file: province {r['省份']!r} of city {r['城市']!r} is not one of the "
            f"31 provinces {list(PROVINCES)}."
        )
    key["region"] = key["province"].map(region_of)
    dup = key["short_name"].duplicated(keep=False)
    if dup.any():
        raise PanelError(
            "Population file: short city names are ambiguous after normalisation: "
            f"{sorted(key.loc[dup, 'city'])}; add a province-aware rule."
        )
    cols = ["city_code", "city", "short_name", "province", "region"]
    return key[cols].sort_values("city_code").reset_index(drop=True)


def _resolve_names(
    names: pd.Series, key: pd.DataFrame, file: str, provinces: pd.Series | None = None
) -> tuple[pd.Series, list[dict[str, Any]], list[dict[str, Any]]]:
    """Map raw names to city codes.

    Returns the code per distinct raw name (NaN when unmatched), the recodings made
    (cleaning, renames, merges) and the unmatched names with reasons.
    """
    by_short = dict(zip(key["short_name"], key["city_code"], strict=True))
    prov_of = dict(zip(key["city_code"], key["province"], strict=True))
    codes: dict[str, Any] = {}
    recoded: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    distinct = names.drop_duplicates()
    for raw in distinct:
        if raw is None or (isinstance(raw, float) and np.isnan(raw)):
            continue
        short = city_short_name(raw)
        reason = None
        code = None
        kind = None
        if short in AGGREGATES:
            reason = AGGREGATES[short]
        elif short in DISSOLVED:
            succ, year = DISSOLVED[short]
            reason = (
                f"dissolved in {year} into {'/'.join(succ)}; no share key to split its series, "
                f"so it is not added to them (their series break in {year})"
            )
        else:
            target = short
            if short in RENAMES:
                target, year = RENAMES[short]
                kind = f"renamed {short}->{target} ({year})"
            elif short in MERGES:
                target, year = MERGES[short]
                kind = f"merged into {target} ({year})"
            code = by_short.get(target)
            if code is None:
                reason = f"no prefecture named {target!r} in the population file (the city key)"
        if code is not None and provinces is not None:
            prov = province_full_name(provinces[names == raw].iloc[0])
            if prov is not None and prov != prov_of[code]:
                reason = f"name matches {target!r} but province {prov} != {prov_of[code]}"
                code = None
        if code is None:
            unmatched.append({"file": file, "name": raw, "reason": reason})
            continue
        if kind is not None and kind.startswith("merged"):
            # Merged predecessors are reported but not folded in: the successor's own
            # series already follows its boundaries of each year (see report).
            unmatched.append({"file": file, "name": raw, "reason": kind + "; " + _MERGE_NOTE})
            continue
        codes[raw] = code
        if kind is not None or clean_text(raw) != str(raw):
            recoded.append(
                {
                    "file": file,
                    "name": raw,
                    "city_code": code,
                    "change": kind or "invisible characters removed",
                }
            )
    return names.map(codes), recoded, unmatched


_MERGE_NOTE = (
    "kept out of the successor (adding it would mix boundaries with the successor's "
    "GDP/population); pass merges='aggregate' to add its FDI to the successor before the merger"
)


def _count_unmatched(df: pd.DataFrame, name_col: str, value_col: str, rows: list[dict]) -> list:
    out = []
    for r in rows:
        sub = df[df[name_col] == r["name"]]
        out.append(
            {**r, "n_rows": int(len(sub)), "n_nonmissing": int(sub[value_col].notna().sum())}
        )
    return out


def build_city_panel(
    data_dir: str | Path, *, merges: Literal["report", "aggregate"] = "report"
) -> CityPanel:
    """Build the harmonised prefecture-city x year panel (1996-2022).

    Parameters
    ----------
    data_dir : str or Path
        Data directory holding ``china/city_fdi_1996_2023.csv``,
        ``china/city_gdp_2000_2023.csv`` and ``china/city_population_1998_2024.csv``
        (see :func:`zoneimpact.datadir.resolve_data_dir`).
    merges : {"report", "aggregate"}
        What to do with a prefecture merged into a single successor that still has its own
        rows in the FDI file (莱芜 -> 济南, 2019). ``"report"`` (default) lists it as
        unmatched and leaves the successor's series as reported (its boundary changes in the
        merger year, recorded in ``report["boundary_changes"]``); ``"aggregate"`` adds its
        FDI to the successor's in the years before the merger where both are reported,
        giving the successor's FDI on post-merger boundaries (FDI levels add up; GDP and
        population are left as reported).

    Returns
    -------
    CityPanel
    """
    if merges not in ("report", "aggregate"):
        raise PanelError(f"merges must be 'report' or 'aggregate'; received {merges!r}.")
    base = china_dir(data_dir)
    require_files(base, CITY_FILES)
    fdi = _read_csv(base / FDI_FILE)
    gdp = _read_csv(base / GDP_FILE)
    pop = _read_csv(base / POP_FILE)
    for name, df, cols in (
        (FDI_FILE, fdi, ["year", "地级市", "外商直接投资"]),
        (GDP_FILE, gdp, ["省份", "城市", "年份", "名义GDP", "实际GDP"]),
        (POP_FILE, pop, ["年份", "省份", "城市", "城市代码", "常住人口（万人）"]),
    ):
        miss = [c for c in cols if c not in df.columns]
        if miss:
            raise PanelError(f"{name}: column(s) {miss} missing; found {list(df.columns)}.")

    key = _city_key(pop)
    report: dict[str, Any] = {"files": {}, "dropped_years": {}}
    unmatched: list[dict[str, Any]] = []
    recoded: list[dict[str, Any]] = []

    # ---- population (the key): drop blank rows, report them
    pop_blank = pop["城市"].isna() | pop["城市代码"].isna()
    if pop_blank.any():
        unmatched.append(
            {
                "file": POP_FILE,
                "name": "<blank>",
                "n_rows": int(pop_blank.sum()),
                "n_nonmissing": 0,
                "reason": "blank row (no city name or code)",
            }
        )
    pop = pop.loc[~pop_blank].copy()
    pop["city_code"] = pop["城市代码"].astype(np.int64).astype(str).str.zfill(6)
    pop["year"] = pop["年份"].astype(np.int64)
    area_col = next((c for c in pop.columns if c.startswith("行政区域土地面积")), None)
    interp_col = next((c for c in pop.columns if c.startswith("插值_常住人口")), None)
    pop_out = pd.DataFrame(
        {
            "city_code": pop["city_code"],
            "year": pop["year"],
            "population": pd.to_numeric(pop["常住人口（万人）"], errors="coerce"),
            "population_interp": pd.to_numeric(pop[interp_col], errors="coerce")
            if interp_col
            else np.nan,
            "area_km2": pd.to_numeric(pop[area_col], errors="coerce") if area_col else np.nan,
        }
    )
    pop_dup = pop_out.duplicated(["city_code", "year"], keep=False)
    if pop_dup.any():
        r = pop_out.loc[pop_dup].iloc[0]
        raise PanelError(f"{POP_FILE}: duplicate rows for city {r['city_code']}, year {r['year']}.")
    report["dropped_years"][POP_FILE] = sorted(
        int(y) for y in pop_out["year"].unique() if not FIRST_YEAR <= y <= LAST_YEAR
    )
    report["files"][POP_FILE] = {
        "rows": int(len(pop) + pop_blank.sum()),
        "names": int(len(key)),
        "names_matched": int(len(key)),
        "rows_matched": int(len(pop)),
    }

    # ---- GDP: match by province + name
    gdp_blank = gdp["城市"].isna() | gdp["年份"].isna()
    for raw, sub in gdp.loc[gdp_blank].groupby(gdp["城市"].fillna("<blank>"), sort=False):
        unmatched.append(
            {
                "file": GDP_FILE,
                "name": raw,
                "n_rows": int(len(sub)),
                "n_nonmissing": 0,
                "reason": "no year: a note/footer row of the spreadsheet, not data",
            }
        )
    gdp = gdp.loc[~gdp_blank].copy()
    gdp_codes, rec, unm = _resolve_names(gdp["城市"], key, GDP_FILE, provinces=gdp["省份"])
    gdp["city_code"] = gdp_codes
    recoded += rec
    unmatched += _count_unmatched(gdp, "城市", "名义GDP", unm)
    gdp["year"] = gdp["年份"].astype(np.int64)
    gdp_ok = gdp.dropna(subset=["city_code"])
    gdp_out = pd.DataFrame(
        {
            "city_code": gdp_ok["city_code"],
            "year": gdp_ok["year"],
            "gdp_nominal": pd.to_numeric(gdp_ok["名义GDP"], errors="coerce"),
            "gdp_real": pd.to_numeric(gdp_ok["实际GDP"], errors="coerce"),
        }
    )
    gdp_out = _coalesce(gdp_out, GDP_FILE)
    report["dropped_years"][GDP_FILE] = sorted(
        int(y) for y in gdp_out["year"].unique() if not FIRST_YEAR <= y <= LAST_YEAR
    )
    report["files"][GDP_FILE] = {
        "rows": int(len(gdp) + gdp_blank.sum()),
        "names": int(gdp["城市"].nunique()),
        "names_matched": int(gdp_ok["城市"].nunique()),
        "rows_matched": int(len(gdp_ok)),
    }

    # ---- FDI: match by name only (the file has no province)
    fdi = fdi.copy()
    fdi["year"] = pd.to_numeric(fdi["year"], errors="coerce").astype("Int64")
    fdi["fdi"] = pd.to_numeric(fdi["外商直接投资"], errors="coerce")
    if "单位" in fdi.columns:
        units = set(fdi["单位"].dropna().map(clean_text))
        if units - {"百万美元"}:
            raise PanelError(
                f"{FDI_FILE}: column '单位' holds {sorted(units)}; only 百万美元 (USD million) "
                "is supported."
            )
    fdi_codes, rec, unm = _resolve_names(fdi["地级市"], key, FDI_FILE)
    fdi["city_code"] = fdi_codes
    recoded += rec
    unmatched += _count_unmatched(fdi, "地级市", "fdi", unm)

    merged_rows: list[dict[str, Any]] = []
    if merges == "aggregate":
        for r in unm:
            short = city_short_name(r["name"])
            if short not in MERGES:
                continue
            succ, year = MERGES[short]
            code = key.loc[key["short_name"] == succ, "city_code"]
            if code.empty:
                continue
            sub = fdi[(fdi["地级市"] == r["name"]) & (fdi["year"] < year)]
            merged_rows.append(
                pd.DataFrame({"code": code.iloc[0], "year": sub["year"], "add": sub["fdi"]})
            )
    fdi_ok = fdi.dropna(subset=["city_code"])
    fdi_out = fdi_ok[["city_code", "year", "fdi"]].copy()
    fdi_out["year"] = fdi_out["year"].astype(np.int64)
    fdi_out = _coalesce(fdi_out, FDI_FILE)
    if merged_rows:
        add = pd.concat(merged_rows).dropna(subset=["add"])
        for _, a in add.iterrows():
            m = (fdi_out["city_code"] == a["code"]) & (fdi_out["year"] == a["year"])
            # Add only where the successor reported a value: NaN + x stays NaN, because a
            # partial total would be mistaken for the whole.
            fdi_out.loc[m, "fdi"] = fdi_out.loc[m, "fdi"] + a["add"]
    late = fdi_out["year"] > LAST_YEAR
    report["dropped_years"][FDI_FILE] = sorted(int(y) for y in fdi_out.loc[late, "year"].unique())
    report["fdi_dropped_after_last_year"] = {
        "rows": int(late.sum()),
        "nonmissing": int(fdi_out.loc[late, "fdi"].notna().sum()),
        "reason": f"years after {LAST_YEAR} are dropped: few cities report them",
    }
    report["files"][FDI_FILE] = {
        "rows": int(len(fdi)),
        "names": int(fdi["地级市"].nunique()),
        "names_matched": int(fdi_ok["地级市"].nunique()),
        "rows_matched": int(len(fdi_ok)),
    }

    # ---- assemble the balanced city x year frame
    years = np.arange(FIRST_YEAR, LAST_YEAR + 1)
    grid = pd.MultiIndex.from_product([key["city_code"], years], names=["city_code", "year"])
    frame = pd.DataFrame(index=grid).reset_index()
    frame = frame.merge(key.drop(columns="short_name"), on="city_code", how="left")
    for part in (fdi_out, gdp_out, pop_out):
        part = part[(part["year"] >= FIRST_YEAR) & (part["year"] <= LAST_YEAR)]
        frame = frame.merge(part, on=["city_code", "year"], how="left")
    cols = [
        "city_code", "year", "city", "province", "region", "fdi", "gdp_nominal", "gdp_real",
        "population", "population_interp", "area_km2",
    ]  # fmt: skip
    frame = frame[cols].sort_values(["city_code", "year"]).reset_index(drop=True)

    report["unmatched"] = pd.DataFrame(unmatched, columns=UNMATCHED_COLUMNS)
    report["recoded"] = pd.DataFrame(recoded, columns=["file", "name", "city_code", "change"])
    report["boundary_changes"] = _boundary_changes(key, report["unmatched"], merges)
    report["fdi_coverage"] = frame.groupby("year")["fdi"].count().astype(int).to_dict()
    report["fdi_zero_vs_missing"] = {
        "zero": int((frame["fdi"] == 0).sum()),
        "missing": int(frame["fdi"].isna().sum()),
    }
    report["cities_without_fdi"] = sorted(
        frame.groupby("city")["fdi"].count().loc[lambda s: s == 0].index.tolist()
    )
    report["n_cities"] = int(len(key))
    report["years"] = (FIRST_YEAR, LAST_YEAR)
    report["merges"] = merges
    return CityPanel(frame=frame, cities=key, report=report)


def _coalesce(df: pd.DataFrame, file: str) -> pd.DataFrame:
    """Merge rows that map to the same city-year (an old and a new name of one city).

    The non-missing value wins; two different non-missing values are an error, because the
    rename table would then be joining two different places.
    """
    dup = df.duplicated(["city_code", "year"], keep=False)
    if not dup.any():
        return df
    values = [c for c in df.columns if c not in ("city_code", "year")]
    clash = df.loc[dup].groupby(["city_code", "year"])[values].nunique().gt(1).any(axis=1)
    if clash.any():
        code, year = clash.index[clash.to_numpy()][0]
        raise PanelError(
            f"{file}: two rows with different values map to city {code} in year {year} "
            "(after renames/merges); check the name table in zoneimpact/china/names.py."
        )
    return df.groupby(["city_code", "year"], as_index=False, sort=False)[values].first()


def _boundary_changes(key: pd.DataFrame, unmatched: pd.DataFrame, merges: str) -> pd.DataFrame:
    """Successor cities whose territory changed because a predecessor in the files merged."""
    rows = []
    seen = {city_short_name(n) for n in unmatched["name"]}
    for old, (succ, year) in MERGES.items():
        if old in seen:
            for s in [succ]:
                code = key.loc[key["short_name"] == s, "city_code"]
                if len(code):
                    note = (
                        f"{old} merged in; FDI before {year} includes {old}"
                        if merges == "aggregate"
                        else f"{old} merged in; series as reported (boundary break)"
                    )
                    rows.append({"city_code": code.iloc[0], "city": s, "year": year, "note": note})
    for old, (succs, year) in DISSOLVED.items():
        if old in seen:
            for s in succs:
                code = key.loc[key["short_name"] == s, "city_code"]
                if len(code):
                    rows.append(
                        {
                            "city_code": code.iloc[0],
                            "city": s,
                            "year": year,
                            "note": f"received part of {old}; series as reported (boundary break)",
                        }
                    )
    return pd.DataFrame(rows, columns=["city_code", "city", "year", "note"])
