"""Data-quality flags for the China city files: reporting breaks, spikes, boundary changes.

Three kinds of problem make a city series say something other than what happened:

* **Reporting-basis breaks** (``reporting_break``, one row per province-year): a
  province's statistics bureau changes what it counts (e.g. from the contracted or
  "foreign capital" basis to the MOFCOM actually-utilised basis, or drops the reinvested
  earnings), so *all* its cities' values move together by a large factor in one year. A
  break is flagged when the **median** over the province's cities of ``x[t] / x[t-1]`` is
  below :data:`BREAK_LOW` or above :data:`BREAK_HIGH` and at least
  :data:`MIN_CITIES_FOR_BREAK` cities report both years. The median, not the mean, so a
  single city's spike cannot make a province break.
* **Isolated spikes** (``isolated_spike``, one row per city-year): a value more than
  :data:`SPIKE_FACTOR` times above, or below, *both* neighbouring years' values (a typo in
  units, a misplaced decimal point, or a one-year change of basis).
* **Boundary changes** (``boundary_change``, one row per city-year): the successors of a
  prefecture that merged or dissolved (莱芜 -> 济南 2019, 巢湖 -> 合肥/芜湖/马鞍山 2011,
  from :func:`zoneimpact.china.cities._boundary_changes`), and any resident-population
  jump beyond :data:`POPULATION_JUMP` that does not revert the next year (a county moved
  between prefectures, e.g. 枞阳 from 安庆 to 铜陵 in 2015, or a census re-basing). A
  population jump that reverts the next year is a ``reporting_break`` of that city (with
  ``city`` set, so it is not a province-year).

The same rules run on the three series (``fdi``, ``gdp`` = real GDP at 2000 prices,
``population`` = resident population as reported); on the shared data only FDI has breaks
and spikes. Thresholds are module constants so a sensitivity run can change them.

Hand-written: the rules are a few vectorised ratios on a city x year table (pandas), and no
library implements statistical-yearbook break detection for Chinese cities.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PanelError
from .cities import CityPanel, _boundary_changes, build_city_panel

#: A province's median city ratio below 1/5 or above 5 in one year. Real FDI of a whole
#: province rarely falls by four fifths or quintuples in a year (the 2009 crisis year moved
#: the national total by -3 %); the breaks the issue cites are 0.04-0.05.
BREAK_LOW = 1 / 5
BREAK_HIGH = 5.0
#: Fewer than three cities and the median is one or two cities' own ratios, which the
#: spike rule already covers; three or more and one outlier cannot move the median.
MIN_CITIES_FOR_BREAK = 3
#: A value more than 10 times off both neighbours: an order of magnitude, the size of a
#: decimal-point or unit (10k vs million) slip; year-to-year FDI volatility of small
#: cities reaches a factor of 3-5 without being an error.
SPIKE_FACTOR = 10.0
#: Resident population changes by a few percent a year; a change beyond 25 % in one year
#: is a territorial change or a re-basing of the series (census years).
POPULATION_JUMP = 0.25
#: A population jump "reverts" if the next year moves back by more than 10 %; otherwise the
#: new level persists (a territorial change), even if the series keeps drifting.
PERSIST_TOLERANCE = 0.10

FLAG_COLUMNS = ["series", "province", "city", "city_code", "year", "flag", "detail", "value"]
SERIES = {"fdi": "fdi", "gdp": "gdp_real", "population": "population"}
FLAGS = ("reporting_break", "isolated_spike", "boundary_change")


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.pivot(index="city_code", columns="year", values=column).sort_index(axis=1)


def _reporting_breaks(wide: pd.DataFrame, province: pd.Series, series: str) -> list[dict[str, Any]]:
    """Province-years whose median city ratio to the previous year is extreme."""
    years = wide.columns.to_numpy()
    prev = wide.shift(1, axis=1)
    # consecutive calendar years only; a ratio across a gap is not a one-year change
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (wide / prev).where((wide > 0) & (prev > 0))
    long = ratio.stack().rename("ratio").reset_index()
    long["province"] = long["city_code"].map(province)
    stats = long.groupby(["province", "year"])["ratio"].agg(["median", "count"]).reset_index()
    hit = stats[
        (stats["count"] >= MIN_CITIES_FOR_BREAK)
        & ((stats["median"] < BREAK_LOW) | (stats["median"] > BREAK_HIGH))
    ]
    rows = []
    for r in hit.itertuples(index=False):
        y = int(r.year)
        if y == years[0]:
            continue
        rows.append(
            {
                "series": series,
                "province": r.province,
                "city": np.nan,
                "city_code": np.nan,
                "year": y,
                "flag": "reporting_break",
                "detail": (
                    f"median city ratio {y}/{y - 1} = {r.median:.2f} over {int(r.count)} "
                    f"cities (threshold below {BREAK_LOW:g} or above {BREAK_HIGH:g})"
                ),
                "value": float(r.median),
            }
        )
    return rows


def _isolated_spikes(wide: pd.DataFrame, cities: pd.DataFrame, series: str) -> list[dict[str, Any]]:
    """City-years more than :data:`SPIKE_FACTOR` times above or below both neighbours."""
    prev = wide.shift(1, axis=1)
    nxt = wide.shift(-1, axis=1)
    k = SPIKE_FACTOR
    up = (wide > k * prev) & (wide > k * nxt)
    down = (wide < prev / k) & (wide < nxt / k)
    hit = (up | down).stack()
    hit = hit[hit.to_numpy()]
    rows = []
    for code, year in hit.index:
        y = int(year)
        p, v, n = prev.at[code, year], wide.at[code, year], nxt.at[code, year]
        rows.append(
            {
                "series": series,
                "province": cities.at[code, "province"],
                "city": cities.at[code, "city"],
                "city_code": code,
                "year": y,
                "flag": "isolated_spike",
                "detail": (
                    f"{cities.at[code, 'city']} {y - 1}-{y}-{y + 1}: {p:,.4g} -> {v:,.4g} -> "
                    f"{n:,.4g} ({'above' if up.at[code, year] else 'below'} both neighbours "
                    f"by more than {k:g}x)"
                ),
                "value": float(v),
            }
        )
    return rows


def _ratio_text(wide: pd.DataFrame, code: str, year: int) -> tuple[str, float]:
    if code not in wide.index or year not in wide.columns or year - 1 not in wide.columns:
        return "not reported", np.nan
    a, b = wide.at[code, year - 1], wide.at[code, year]
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return "not reported", np.nan
    return f"{year}/{year - 1} = {b / a:.2f} ({a:,.4g} -> {b:,.4g})", float(b / a)


def _boundary_flags(
    cp: CityPanel, wides: dict[str, pd.DataFrame], cities: pd.DataFrame
) -> list[dict[str, Any]]:
    """Known successor cities of merged/dissolved prefectures, and population jumps."""
    rows: list[dict[str, Any]] = []
    known = _boundary_changes(cp.cities, cp.report["unmatched"], cp.report.get("merges", "report"))
    known_keys = set()
    for r in known.itertuples(index=False):
        code, year = str(r.city_code), int(r.year)
        known_keys.add((code, year))
        for series, wide in wides.items():
            text, ratio = _ratio_text(wide, code, year)
            rows.append(
                {
                    "series": series,
                    "province": cities.at[code, "province"],
                    "city": cities.at[code, "city"],
                    "city_code": code,
                    "year": year,
                    "flag": "boundary_change",
                    "detail": f"{r.note}; {series} {text}",
                    "value": ratio,
                }
            )
    pop = wides["population"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = pop / pop.shift(1, axis=1)
        after = pop.shift(-1, axis=1) / pop
    jump = (ratio > 1 + POPULATION_JUMP) | (ratio < 1 / (1 + POPULATION_JUMP))
    hit = jump.stack()
    hit = hit[hit.to_numpy()]
    reverted: set[tuple[str, int]] = set()
    for code, year in sorted(hit.index):
        y = int(year)
        if (code, y) in known_keys or (code, y - 1) in reverted:
            continue  # a known change, or the way back of last year's one-year jump
        text, rv = _ratio_text(pop, code, y)
        nxt = after.at[code, year]
        # reverts = the next year moves back, against the jump, by more than the tolerance
        reverts = bool(
            np.isfinite(nxt)
            and abs(nxt - 1) > PERSIST_TOLERANCE
            and np.sign(nxt - 1) != np.sign(ratio.at[code, year] - 1)
        )
        persists = not reverts
        if reverts:
            reverted.add((code, y))
        rows.append(
            {
                "series": "population",
                "province": cities.at[code, "province"],
                "city": cities.at[code, "city"],
                "city_code": code,
                "year": y,
                "flag": "boundary_change" if persists else "reporting_break",
                "detail": (
                    f"population {text}; "
                    + (
                        "new level persists: a territorial change or re-basing not in the "
                        "name tables"
                        if persists
                        else f"reverts the next year (ratio {nxt:.2f}): a one-year re-basing"
                    )
                ),
                "value": rv,
            }
        )
    return rows


def data_quality_flags(
    data_dir: str | Path, *, city_panel: CityPanel | None = None
) -> pd.DataFrame:
    """Flags for reporting-basis breaks, isolated spikes and boundary changes.

    Parameters
    ----------
    data_dir : str or Path
        Data directory holding ``china/city_*.csv`` (see :func:`build_city_panel`).
    city_panel : CityPanel, optional
        A panel already built from ``data_dir`` (saves re-reading the files).

    Returns
    -------
    pandas.DataFrame
        One row per flag: ``series`` (``fdi``, ``gdp``, ``population``), ``province``
        (full name, e.g. 湖南省), ``city`` (NaN for a province-year flag), ``city_code``,
        ``year``, ``flag`` (``reporting_break``, ``isolated_spike``, ``boundary_change``),
        ``detail`` (the numbers behind the flag) and ``value`` (the ratio or value that
        triggered it), ``near_break`` (an isolated spike within a year of a reporting
        break of its province and series). Sorted by series, flag, province, year. Rules
        and thresholds: module docstring.
    """
    cp = city_panel if city_panel is not None else build_city_panel(data_dir)
    cities = cp.cities.set_index("city_code")[["city", "province"]]
    province = cities["province"]
    wides = {s: _wide(cp.frame, c) for s, c in SERIES.items()}
    rows: list[dict[str, Any]] = []
    for series, wide in wides.items():
        rows += _reporting_breaks(wide, province, series)
        rows += _isolated_spikes(wide, cities, series)
    rows += _boundary_flags(cp, wides, cities)
    out = pd.DataFrame(rows, columns=FLAG_COLUMNS)
    out["year"] = out["year"].astype(int)
    # a spike within a year of its province's break of the same series may be part of it
    # (the city switched basis a year early or late) rather than an isolated error
    breaks = {
        (s, p, y)
        for s, p, y, f, c in zip(
            out["series"], out["province"], out["year"], out["flag"], out["city"], strict=True
        )
        if f == "reporting_break" and pd.isna(c)
    }
    out["near_break"] = [
        f == "isolated_spike" and any((s, p, y + d) in breaks for d in (-1, 0, 1))
        for s, p, y, f in zip(out["series"], out["province"], out["year"], out["flag"], strict=True)
    ]
    order = {s: k for k, s in enumerate(SERIES)}
    out = out.sort_values(
        ["series", "flag", "province", "year", "city_code"],
        key=lambda c: c.map(order) if c.name == "series" else c,
    )
    return out.reset_index(drop=True)


def _check_flags(flags: pd.DataFrame) -> None:
    if not isinstance(flags, pd.DataFrame):
        raise PanelError(
            f"flags must be the DataFrame of data_quality_flags(); received {type(flags).__name__}."
        )
    miss = [c for c in ("series", "province", "city", "year", "flag") if c not in flags.columns]
    if miss:
        raise PanelError(
            f"flags lack column(s) {miss}; pass the DataFrame returned by data_quality_flags()."
        )


def flagged_province_years(
    flags: pd.DataFrame, *, series: str | None = None
) -> set[tuple[str, int]]:
    """Province-years carrying a reporting-basis break.

    Parameters
    ----------
    flags : DataFrame
        From :func:`data_quality_flags`.
    series : str, optional
        Only breaks of this series (``"fdi"``, ``"gdp"``, ``"population"``); all by default.

    Returns
    -------
    set of (province, year)
    """
    _check_flags(flags)
    sel = (flags["flag"] == "reporting_break") & flags["city"].isna()
    if series is not None:
        sel &= flags["series"] == series
    return {
        (str(p), int(y))
        for p, y in zip(flags.loc[sel, "province"], flags.loc[sel, "year"], strict=True)
    }


def drop_flagged(
    frame: pd.DataFrame,
    flags: pd.DataFrame,
    *,
    unit_province: Mapping[Any, str] | pd.Series,
    until: int | None = 2020,
    drop_spikes: bool = True,
    onwards: bool = False,
    unit: str | None = None,
    time: str | None = None,
) -> pd.DataFrame:
    """A copy of a city-year frame without flagged province-years (and years after ``until``).

    Parameters
    ----------
    frame : DataFrame
        City-year rows: the study frame (``city_code``, ``year``) or ``Panel.data``
        (``unit``, ``time``); other names through ``unit``/``time``. Not modified.
    flags : DataFrame
        From :func:`data_quality_flags`.
    unit_province : Mapping or Series
        Province (full name, as in ``flags``) of every unit of ``frame``.
    until : int or None
        Drop years after this one (2020: the 2021-2022 reporting breaks and the end of the
        file's coverage); None keeps every year.
    drop_spikes : bool
        Also drop the city-years flagged ``isolated_spike`` (default): they are
        single-observation errors of the same order as the breaks.
    onwards : bool
        Drop a broken province from its break year to the end, not only the break year
        (the later years stay on the new basis; the stricter sample).
    unit, time : str, optional
        Column names; inferred from ``city_code``/``year`` or ``unit``/``time``.

    Returns
    -------
    DataFrame
        The kept rows (index reset); ``attrs["dropped"]`` counts the rows dropped by rule.
    """
    _check_flags(flags)
    if not isinstance(frame, pd.DataFrame):
        raise PanelError(f"frame must be a DataFrame; received {type(frame).__name__}.")
    if unit is None or time is None:
        for u, t in (("city_code", "year"), ("unit", "time")):
            if {u, t} <= set(frame.columns):
                unit, time = unit or u, time or t
                break
    if unit is None or time is None or not {unit, time} <= set(frame.columns):
        raise PanelError(
            "drop_flagged needs the unit and year columns: 'city_code'/'year' or "
            f"'unit'/'time' (or pass unit= and time=); frame has {list(frame.columns)}."
        )
    prov_map = pd.Series(unit_province) if isinstance(unit_province, Mapping) else unit_province
    if not isinstance(prov_map, pd.Series):
        raise PanelError(
            f"unit_province must be a Mapping or a Series; received {type(unit_province).__name__}."
        )
    prov = frame[unit].map(prov_map)
    if prov.isna().any():
        u = frame.loc[prov.isna(), unit].iloc[0]
        raise PanelError(
            f"unit_province has no province for unit {u!r} (column {unit!r}); give every "
            "unit of the frame its province."
        )
    years = frame[time].astype(int)
    breaks = flagged_province_years(flags)
    if onwards:
        first: dict[str, int] = {}
        for p, y in breaks:
            first[p] = min(y, first.get(p, y))
        hit_break = prov.map(first).le(years) & prov.isin(list(first))
    else:
        keys = pd.Series(list(zip(prov, years, strict=True)), index=frame.index)
        hit_break = keys.isin(breaks)
    hit_spike = pd.Series(False, index=frame.index)
    if drop_spikes:
        sp = flags[flags["flag"] == "isolated_spike"]
        codes = sp["city_code"] if "city_code" in sp.columns else sp["city"]
        spikes = set(zip(codes.astype(str), sp["year"].astype(int), strict=True))
        skeys = pd.Series(list(zip(frame[unit].astype(str), years, strict=True)), index=frame.index)
        hit_spike = skeys.isin(spikes) & ~hit_break
    late = (years > until) if until is not None else pd.Series(False, index=frame.index)
    drop = hit_break | hit_spike | late
    out = frame.loc[~drop.to_numpy()].copy().reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    out.attrs["dropped"] = {
        "reporting_break": int((hit_break & ~late).sum()),
        "isolated_spike": int((hit_spike & ~late).sum()),
        "after_until": int(late.sum()),
    }
    return out


def quality_table(flags: pd.DataFrame) -> pd.DataFrame:
    """Summary of the flags by series x flag x province, for the run directory.

    Returns
    -------
    DataFrame
        ``series``, ``flag``, ``province``, ``n_flags``, ``n_cities`` (distinct cities, 0
        for province-year flags), ``years`` (the flagged years, comma-separated) and
        ``example`` (the detail of the most extreme flag: smallest or largest ratio).
    """
    _check_flags(flags)
    cols = ["series", "flag", "province", "n_flags", "n_cities", "years", "example"]
    if flags.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (s, f, p), g in flags.groupby(["series", "flag", "province"], sort=False):
        v = g["value"].abs() if "value" in g.columns else pd.Series(dtype=float)
        with np.errstate(divide="ignore"):
            extremity = np.abs(np.log(v.where(v > 0))) if len(v) else v
        pick = extremity.idxmax() if extremity.notna().any() else g.index[0]
        rows.append(
            {
                "series": s,
                "flag": f,
                "province": p,
                "n_flags": int(len(g)),
                "n_cities": int(g["city"].nunique()),
                "years": ", ".join(str(y) for y in sorted(set(g["year"].astype(int)))),
                "example": str(g.at[pick, "detail"]),
            }
        )
    return pd.DataFrame(rows, columns=cols).reset_index(drop=True)
