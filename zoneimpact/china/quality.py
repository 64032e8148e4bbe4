"""Data-quality flags for the China city files: reporting breaks, spikes, boundary changes.

Four kinds of problem make a city series say something other than what happened:

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
* **Endpoint jumps** (``endpoint``, one row per city-year): the first or last reported
  year of a city, which has one neighbouring year only, so the spike rule cannot see it,
  more than :data:`ENDPOINT_FACTOR` times above or below that neighbour (e.g. 长治 FDI
  481 in 2021, 0.11 in 2022, the last year of the file). At the end of a series a
  one-year error and a change of basis look alike, and either way the single year
  disagrees with the rest of the series: it is blanked like a spike.
* **Boundary changes** (``boundary_change``, one row per city-year): the successors of a
  prefecture that merged or dissolved (莱芜 -> 济南 2019, 巢湖 -> 合肥/芜湖/马鞍山 2011,
  from :func:`zoneimpact.china.cities._boundary_changes`), and any resident-population
  jump beyond :data:`POPULATION_JUMP` that does not revert the next year (a county moved
  between prefectures, e.g. 枞阳 from 安庆 to 铜陵 in 2015, or a census re-basing). A
  population jump that reverts the next year is a ``reporting_break`` of that city (with
  ``city`` set, so it is not a province-year).

What the rules do not see. A province or municipality with fewer than
:data:`MIN_CITIES_FOR_BREAK` cities (北京, 天津, 上海, 重庆) gets no province break: its
"median" is a single city's ratio. No city-level persistent-break rule replaces it: on
the shared FDI file the largest one-year moves of the four municipalities are falls to
0.42-0.43 (北京 and 天津 2003; 天津 2016 and 2018: 0.48 and 0.46, 21,134 in 2015 -> 4,851
in 2018 in two steps) and a rise of 2.4 (重庆 2008), far from :data:`BREAK_LOW` and
:data:`BREAK_HIGH`; a rule "median of the next three years below 1/5 of the previous
three's" raises no municipal flag (天津's lowest such ratio is 0.26, at 2017), while the
same rule run on every city outside the flagged provinces flags 89 cities, mostly the
volatility of small cities' FDI. A value whose neighbour on one side is missing inside
the series (a gap) is not flagged either: the two values around a gap can disagree
without telling which one is off.

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
#: The endpoint rule sees one year-on-year change where the spike rule sees two, so it asks
#: that change for the same total evidence: SPIKE_FACTOR squared (the spike rule's two
#: log-changes each exceed log 10, together log 100). Measured on the shared FDI file
#: (298 cities, 1996-2022): a one-sided comparison of an interior value that the spike
#: rule does not flag exceeds 100x in about 25 of 12,300 comparisons (0.2 %; 10x: about
#: 270, 2.2 %; 30x: about 105, 0.9 %; two independent counts differed by one or two, by
#: how values next to a gap were paired), so at 100x the endpoint rule rarely flags a
#: value that is merely volatile. It flags 6 FDI endpoints: 长治 2022 (4,400x below 2021), 陇南 2019 (670x)
#: and four 河南 cities in 河南's 2022 break year; 30x would add e.g. 襄阳 and 盘锦 2022.
ENDPOINT_FACTOR = SPIKE_FACTOR**2
#: Resident population changes by a few percent a year; a change beyond 25 % in one year
#: is a territorial change or a re-basing of the series (census years).
POPULATION_JUMP = 0.25
#: A population jump "reverts" if the next year moves back by more than 10 %; otherwise the
#: new level persists (a territorial change), even if the series keeps drifting.
PERSIST_TOLERANCE = 0.10

FLAG_COLUMNS = [
    "series", "province", "city", "city_code", "year", "flag", "detail", "value", "ratio",
]  # fmt: skip
SERIES = {"fdi": "fdi", "gdp": "gdp_real", "population": "population"}
FLAGS = ("reporting_break", "isolated_spike", "endpoint", "boundary_change")
#: Flags of one city-year (an error or a basis change confined to that year): blanked in
#: that year only, while a province's ``reporting_break`` persists (see :func:`drop_flagged`).
SINGLE_YEAR_FLAGS = ("isolated_spike", "endpoint")


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
                "ratio": float(r.median),
            }
        )
    return rows


def _spike_masks(wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """City x year: above both neighbours by :data:`SPIKE_FACTOR`, and below both."""
    prev = wide.shift(1, axis=1)
    nxt = wide.shift(-1, axis=1)
    k = SPIKE_FACTOR
    return (wide > k * prev) & (wide > k * nxt), (wide < prev / k) & (wide < nxt / k)


def _city_flag(
    series: str,
    cities: pd.DataFrame,
    code: str,
    year: int,
    flag: str,
    detail: str,
    value: float,
    ratio: float,
) -> dict[str, Any]:
    """One row of the flags table for a city-year (the columns of :data:`FLAG_COLUMNS`)."""
    return {
        "series": series,
        "province": cities.at[code, "province"],
        "city": cities.at[code, "city"],
        "city_code": code,
        "year": year,
        "flag": flag,
        "detail": detail,
        "value": value,
        "ratio": ratio,
    }


def _isolated_spikes(wide: pd.DataFrame, cities: pd.DataFrame, series: str) -> list[dict[str, Any]]:
    """City-years more than :data:`SPIKE_FACTOR` times above or below both neighbours."""
    prev = wide.shift(1, axis=1)
    nxt = wide.shift(-1, axis=1)
    k = SPIKE_FACTOR
    up, down = _spike_masks(wide)
    hit = (up | down).stack()
    hit = hit[hit.to_numpy()]
    rows = []
    for code, year in hit.index:
        y = int(year)
        p, v, n = prev.at[code, year], wide.at[code, year], nxt.at[code, year]
        is_up = bool(up.at[code, year])
        # the flag's own ratio: the factor by which the value clears the nearer neighbour
        # (above both: v / the larger; below both: v / the smaller; 0 for a zero value)
        near = max(p, n) if is_up else min(p, n)
        with np.errstate(divide="ignore"):
            ratio = float(np.float64(v) / np.float64(near))
        detail = (
            f"{cities.at[code, 'city']} {y - 1}-{y}-{y + 1}: {p:,.4g} -> {v:,.4g} -> "
            f"{n:,.4g} ({'above' if is_up else 'below'} both neighbours by more than {k:g}x)"
        )
        rows.append(_city_flag(series, cities, code, y, "isolated_spike", detail, float(v), ratio))
    return rows


def _endpoint_jumps(wide: pd.DataFrame, cities: pd.DataFrame, series: str) -> list[dict[str, Any]]:
    """First or last reported city-years more than :data:`ENDPOINT_FACTOR` times off their
    one neighbouring year (the spike rule needs two neighbours, so it never sees them)."""
    k = ENDPOINT_FACTOR
    up, down = _spike_masks(wide)
    spike = up | down
    rows = []
    for code, s in wide.iterrows():
        seen = s.index[s.notna().to_numpy()]
        if len(seen) < 3:
            continue  # with two values there is no telling which one is off
        for y, nb, side in ((int(seen[0]), int(seen[0]) + 1, "first"),
                            (int(seen[-1]), int(seen[-1]) - 1, "last")):  # fmt: skip
            if nb not in s.index or not np.isfinite(s[nb]) or s[nb] <= 0 or spike.at[code, nb]:
                continue  # no consecutive neighbour, or a zero or spiking one (the suspect)
            v, n = float(s[y]), float(s[nb])
            ratio = v / n
            if 1 / k <= ratio <= k:
                continue
            a, b = (n, v) if side == "last" else (v, n)
            detail = (
                f"{cities.at[code, 'city']} {min(y, nb)}-{max(y, nb)}: {a:,.4g} -> {b:,.4g} "
                f"({y}, the {side} reported year, {'above' if ratio > 1 else 'below'} its "
                f"only neighbour by more than {k:g}x)"
            )
            rows.append(_city_flag(series, cities, code, y, "endpoint", detail, v, ratio))
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
            detail = f"{r.note}; {series} {text}"
            rows.append(
                _city_flag(series, cities, code, year, "boundary_change", detail, ratio, ratio)
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
        flag = "boundary_change" if persists else "reporting_break"
        detail = f"population {text}; " + (
            "new level persists: a territorial change or re-basing not in the name tables"
            if persists
            else f"reverts the next year (ratio {nxt:.2f}): a one-year re-basing"
        )
        rows.append(_city_flag("population", cities, code, y, flag, detail, rv, rv))
    return rows


def data_quality_flags(
    data_dir: str | Path, *, city_panel: CityPanel | None = None
) -> pd.DataFrame:
    """Flags for reporting-basis breaks, isolated spikes, endpoint jumps and boundary changes.

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
        ``year``, ``flag`` (``reporting_break``, ``isolated_spike``, ``endpoint``,
        ``boundary_change``), ``detail`` (the numbers behind the flag), ``value`` (the
        ratio that triggered it; for ``isolated_spike`` and ``endpoint`` the value
        itself), ``ratio`` (the flag's own ratio: the province median ratio, the
        boundary or population ratio, a spike's value over its nearer neighbour, an
        endpoint's value over its one neighbour; 0 for a zero value), ``near_break``
        (an isolated spike or endpoint jump within a year of a reporting break of its
        province and series). Sorted by series, flag, province, year. Rules and
        thresholds: module docstring.
    """
    cp = city_panel if city_panel is not None else build_city_panel(data_dir)
    cities = cp.cities.set_index("city_code")[["city", "province"]]
    province = cities["province"]
    wides = {s: _wide(cp.frame, c) for s, c in SERIES.items()}
    rows: list[dict[str, Any]] = []
    for series, wide in wides.items():
        rows += _reporting_breaks(wide, province, series)
        rows += _isolated_spikes(wide, cities, series)
        rows += _endpoint_jumps(wide, cities, series)
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
        f in SINGLE_YEAR_FLAGS and any((s, p, y + d) in breaks for d in (-1, 0, 1))
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


def flagged_cells(
    flags: pd.DataFrame, *, series: str | None = None
) -> tuple[dict[str, int], set[tuple[str, int]]]:
    """The first reporting-break year of each broken province, and the single-year flags.

    A province's reporting-basis break persists: its cities stay on the new basis after the
    break year (on the shared FDI file 辽宁's cities stay at 0.02-0.12 of their 2014 level
    from 2015 to 2022), so a sample without it drops the province from the first break
    year on. An ``isolated_spike`` or ``endpoint`` flag is one city-year.

    Parameters
    ----------
    flags : DataFrame
        From :func:`data_quality_flags`.
    series : str, optional
        Only flags of this series; all by default.

    Returns
    -------
    (dict, set)
        ``{province: first break year}`` and ``{(city_code as str, year)}``.
    """
    first: dict[str, int] = {}
    for p, y in flagged_province_years(flags, series=series):
        first[p] = min(y, first.get(p, y))
    sel = flags["flag"].isin(SINGLE_YEAR_FLAGS)
    if series is not None:
        sel &= flags["series"] == series
    sp = flags[sel]
    codes = sp["city_code"] if "city_code" in sp.columns else sp["city"]
    cells = set(zip(codes.astype(str), sp["year"].astype(int), strict=True))
    return first, cells


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
        Also drop the city-years flagged ``isolated_spike`` or ``endpoint`` (default):
        they are single-observation errors of the same order as the breaks.
    onwards : bool
        Drop a broken province from its break year to the end, not only the break year
        (the later years stay on the new basis; the stricter sample).
    unit, time : str, optional
        Column names; inferred from ``city_code``/``year`` or ``unit``/``time``.

    Returns
    -------
    DataFrame
        The kept rows (index reset); ``attrs["dropped"]`` counts the rows dropped by rule
        (``reporting_break``, ``isolated_spike``, ``endpoint``, ``after_until``).
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
    first, _ = flagged_cells(flags)
    if onwards:
        hit_break = prov.map(first).le(years) & prov.isin(list(first))
    else:
        keys = pd.Series(list(zip(prov, years, strict=True)), index=frame.index)
        hit_break = keys.isin(breaks)
    skeys = pd.Series(list(zip(frame[unit].astype(str), years, strict=True)), index=frame.index)
    hits = {}
    for kind in SINGLE_YEAR_FLAGS:
        hit = pd.Series(False, index=frame.index)
        if drop_spikes:
            _, cells = flagged_cells(flags[flags["flag"] == kind])
            hit = skeys.isin(cells) & ~hit_break
        hits[kind] = hit
    late = (years > until) if until is not None else pd.Series(False, index=frame.index)
    drop = hit_break | hits["isolated_spike"] | hits["endpoint"] | late
    out = frame.loc[~drop.to_numpy()].copy().reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    out.attrs["dropped"] = {
        "reporting_break": int((hit_break & ~late).sum()),
        "isolated_spike": int((hits["isolated_spike"] & ~late).sum()),
        "endpoint": int((hits["endpoint"] & ~late).sum()),
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
        ``example`` (the detail of the most extreme flag: the largest ``|log ratio|`` of
        the flag's own ratio, a zero or infinite ratio first; from ``value`` when the
        flags carry no ``ratio`` column).
    """
    _check_flags(flags)
    cols = ["series", "flag", "province", "n_flags", "n_cities", "years", "example"]
    if flags.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (s, f, p), g in flags.groupby(["series", "flag", "province"], sort=False):
        col = "ratio" if "ratio" in g.columns else "value"
        v = pd.to_numeric(g[col], errors="coerce").abs() if col in g.columns else None
        pick = g.index[0]
        if v is not None and v.notna().any():
            # the spike and endpoint rows' ``value`` is the level, not the ratio: rank
            # by the ratio, and a zero (log = -inf) or infinite ratio as the most extreme
            with np.errstate(divide="ignore"):
                extremity = np.abs(np.log(v))
            pick = extremity.idxmax()
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
