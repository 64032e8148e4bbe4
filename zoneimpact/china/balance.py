"""Who is compared with whom: city roles, control-group counts and baseline balance.

A staggered DiD is only as good as its comparison units. For the China study this module
says, for each comparison design the estimators use, how many zone cities are treated and
how many cities serve as controls (in total and year by year), and how the groups compare
at baseline.

Roles (:func:`city_roles`), from the estimation panel and its exposure map
(:mod:`zoneimpact.exposure`; by default shared borders, with the early zones dropped by
``outside_window="adjust"`` still counted as exposure sources):

* ``zone``: a city whose first national zone opened inside the window, in a cohort group
  (:data:`COHORT_GROUPS`);
* ``exposed``: a city without a zone that borders a zone city (or an early zone);
* ``clean``: neither a zone nor exposed — the controls of the spillover ("ring") design
  (Butts 2021, Section 3.2; Clarke 2017, eq. 3);
* ``dropped_early``: a zone city treated in or before the first year of the window (no
  untreated year; R ``did`` drops such units too).

Designs (:func:`control_counts`):

* ``never_treated``: zone cities against every city that never gets a zone (TWFE, PPML,
  CS with ``control_group="never_treated"``);
* ``not_yet_treated``: against never-zone cities and zone cities before their cohort (CS
  ``control_group="not_yet_treated"``, imputation);
* ``clean_controls``: against clean cities only (spillover design with
  ``controls="never_exposed"``);
* ``not_yet_exposed``: against clean cities and exposed cities before their exposure onset
  (spillover design, default ``controls="not_yet_exposed"``).

Balance (:func:`balance_table`): baseline means and medians of GDP, population, FDI and
coastal location by group, and the normalised difference against the clean controls,
``(mean_g - mean_c) / sqrt((s_g^2 + s_c^2) / 2)`` (Imbens & Rubin 2015, *Causal Inference
for Statistics, Social, and Biomedical Sciences*, eq. 14.2; Imbens & Wooldridge 2009,
JEL 47(1), p. 24: above about 0.25 in absolute value linear adjustment is unreliable).

Counting is a few pandas group-bys; nothing here needs a library beyond pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PanelError
from ..exposure import ExposureMap, build_exposure
from ..panel import Panel

#: Cohort groups of the zone cities (year of first national zone). The window starts in
#: 1996, so the 1990s wave is mostly dropped (63 cities by 1996); what remains is the
#: late-1990s/2000s approvals, the 2009-2013 wave of upgrades of provincial zones, and the
#: later upgrades.
COHORT_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("1997-2008", 1997, 2008),
    ("2009-2013", 2009, 2013),
    ("2014-2022", 2014, 2022),
)

#: Provincial-level units of mainland China with a sea coast (沿海地区): the 11 coastal
#: provinces and municipalities of the China Marine Statistical Yearbook (中国海洋统计年鉴,
#: State Oceanic Administration) and of the NBS coastal/inland split. Province-level, so
#: inland prefectures of a coastal province (e.g. 南平 in Fujian) count as coastal: the
#: data carry no city coastline, and the seed's "hinterland" claim is about provinces.
COASTAL_PROVINCES: tuple[str, ...] = (
    "辽宁省", "河北省", "天津市", "山东省", "江苏省", "上海市", "浙江省", "福建省",
    "广东省", "广西壮族自治区", "海南省",
)  # fmt: skip

#: A control city needs at least two non-missing outcome years to inform a comparison
#: beyond its own fixed effect; a single observation is absorbed by it.
MIN_USABLE_YEARS = 2

ROLES = ("zone", "exposed", "clean", "dropped_early")
DESIGNS = ("never_treated", "not_yet_treated", "clean_controls", "not_yet_exposed")


def cohort_group(cohort: float) -> str:
    """The :data:`COHORT_GROUPS` label of a cohort year ('' for never, '<=1996' early)."""
    if not np.isfinite(cohort):
        return ""
    for label, lo, hi in COHORT_GROUPS:
        if lo <= cohort <= hi:
            return label
    return (
        f"<{COHORT_GROUPS[0][1]:g}"
        if cohort < COHORT_GROUPS[0][1]
        else f">{COHORT_GROUPS[-1][2]:g}"
    )


def coastal(province: pd.Series) -> pd.Series:
    """1.0 for a city in a coastal province (:data:`COASTAL_PROVINCES`), 0.0 otherwise."""
    return province.isin(COASTAL_PROVINCES).astype(float)


def _exposure(panel: Panel, exposure: str | ExposureMap | None) -> ExposureMap | None:
    if exposure is None:
        if panel.adjacency is None and panel.source_links is None:
            return None
        exposure = "adjacency"
    return build_exposure(panel, exposure)


def city_roles(panel: Panel, *, exposure: str | ExposureMap | None = None) -> pd.DataFrame:
    """Role of every city of the panel and of the early zones it dropped.

    Parameters
    ----------
    panel : Panel
        The estimation panel (``Panel.from_frame(..., outside_window="adjust")``).
    exposure : str, ExposureMap or None
        Exposure definition (see :func:`zoneimpact.exposure.build_exposure`); None uses
        shared borders when the panel has an adjacency list, else no city is exposed.

    Returns
    -------
    DataFrame
        Indexed by unit: ``role`` (:data:`ROLES`), ``cohort`` (``inf`` = never; NaN for a
        dropped early zone whose year the panel does not keep), ``cohort_group``,
        ``exposure_onset`` (``inf`` = never; NaN for dropped units).
    """
    if not isinstance(panel, Panel):
        raise PanelError(f"panel must be a zoneimpact Panel; received {type(panel).__name__}.")
    emap = _exposure(panel, exposure)
    uc = panel.unit_cohort.astype(float)
    tab = pd.DataFrame({"cohort": uc})
    if emap is not None:
        t = emap.table.reindex(uc.index)
        tab["role"] = t["role"].map({"direct": "zone", "exposed": "exposed", "clean": "clean"})
        tab["exposure_onset"] = t["exposure_onset"].astype(float)
    else:
        tab["role"] = np.where(np.isfinite(uc.to_numpy()), "zone", "clean")
        tab["exposure_onset"] = np.inf
    dropped = list(panel.report.get("dropped_always_treated", []))
    if dropped:
        src = panel.sources
        coh = (
            src["cohort"].reindex(dropped).astype(float)
            if src is not None and "cohort" in src.columns
            else pd.Series(np.nan, index=dropped)
        )
        early = pd.DataFrame(
            {"cohort": coh.to_numpy(), "role": "dropped_early", "exposure_onset": np.nan},
            index=pd.Index(dropped),
        )
        tab = pd.concat([tab, early])
    tab["cohort_group"] = [
        cohort_group(c) if r == "zone" else ("<=first year" if r == "dropped_early" else "")
        for c, r in zip(tab["cohort"], tab["role"], strict=True)
    ]
    tab.index.name = "unit"
    return tab[["role", "cohort", "cohort_group", "exposure_onset"]]


def controls_by_year(
    panel: Panel,
    *,
    exposure: str | ExposureMap | None = None,
    outcome: str | None = None,
) -> pd.DataFrame:
    """Number of treated and control cities with the outcome observed, year by year.

    Returns
    -------
    DataFrame
        One row per year: ``treated`` (zone cities with cohort <= year), and the controls of
        each design (:data:`DESIGNS`) observed that year, plus ``not_yet_treated_zones``
        (zone cities before their cohort).
    """
    roles = city_roles(panel, exposure=exposure)
    outcome = _outcome(panel, outcome)
    d = panel.data[["unit", "time", outcome]].copy()
    d = d[d[outcome].notna()]
    r = roles.reindex(d["unit"])
    role = r["role"].to_numpy()
    g = r["cohort"].to_numpy(float)
    onset = r["exposure_onset"].to_numpy(float)
    t = d["time"].to_numpy(float)
    zone = role == "zone"
    never = ~zone
    clean = role == "clean"
    pre_exp = (role == "exposed") & (t < onset)
    flags = pd.DataFrame(
        {
            "time": t.astype(int),
            "treated": zone & (t >= g),
            "not_yet_treated_zones": zone & (t < g),
            "never_treated": never,
            "not_yet_treated": never | (zone & (t < g)),
            "clean_controls": clean,
            "not_yet_exposed": clean | pre_exp,
        }
    )
    out = flags.groupby("time").sum().astype(int)
    out.index.name = "year"
    return out.reset_index()


def _outcome(panel: Panel, outcome: str | None) -> str:
    if outcome is None:
        return panel.outcomes[0]
    if outcome not in panel.outcomes:
        raise PanelError(f"outcome {outcome!r} is not in the panel; it has {list(panel.outcomes)}.")
    return outcome


def control_counts(
    panel: Panel,
    *,
    exposure: str | ExposureMap | None = None,
    outcome: str | None = None,
) -> pd.DataFrame:
    """Treated, control, exposed and dropped cities of each comparison design.

    Parameters
    ----------
    panel : Panel
        The estimation panel.
    exposure : str, ExposureMap or None
        As in :func:`city_roles`.
    outcome : str, optional
        Outcome whose non-missing values decide "usable" and the yearly counts (default:
        the panel's first outcome).

    Returns
    -------
    DataFrame
        One row per design (:data:`DESIGNS`): ``design``, ``outcome``, ``n_treated`` (zone
        cities), ``n_controls`` (cities that are a control in some panel year: for
        ``not_yet_exposed`` an exposed city only with a year before its exposure onset, for
        ``not_yet_treated`` a zone city only with a year before its zone),
        ``n_controls_usable`` (of those, with at least :data:`MIN_USABLE_YEARS` outcome
        years in which they are a control), ``min_controls`` and ``min_controls_year`` (fewest controls with the outcome
        observed in a year from the first cohort on), ``last_year_controls``; and, the same on
        every row, ``n_zone``, ``n_clean``, ``n_clean_usable``, ``n_clean_no_data``,
        ``n_clean_one_year``, ``n_exposed``, ``n_dropped_early``.
        ``attrs["by_year"]`` is :func:`controls_by_year`; ``attrs["clean_units"]`` the
        clean cities.
    """
    outcome = _outcome(panel, outcome)
    roles = city_roles(panel, exposure=exposure)
    by_year = controls_by_year(panel, exposure=exposure, outcome=outcome)
    nobs = panel.data.groupby("unit")[outcome].count().reindex(roles.index).fillna(0)
    role = roles["role"]
    zone = role == "zone"
    clean = role == "clean"
    exposed = role == "exposed"
    usable = nobs >= MIN_USABLE_YEARS
    # every panel row's role: a city is a control of a design in the years it is one
    d = panel.data[["unit", "time", outcome]]
    r = roles.reindex(d["unit"])
    t = d["time"].to_numpy(float)
    row_role = r["role"].to_numpy()
    row_clean = row_role == "clean"
    row_exposed = row_role == "exposed"
    row_zone = row_role == "zone"
    control_rows = {
        "never_treated": row_clean | row_exposed,
        "not_yet_treated": row_clean | row_exposed | (row_zone & (t < r["cohort"].to_numpy(float))),
        "clean_controls": row_clean,
        "not_yet_exposed": row_clean | (row_exposed & (t < r["exposure_onset"].to_numpy(float))),
    }
    observed = d[outcome].notna().to_numpy()
    units = d["unit"].to_numpy()
    cohorts = roles.loc[zone, "cohort"]
    first = float(cohorts.min()) if len(cohorts) else np.inf
    post = by_year[by_year["year"] >= first]
    common = {
        "n_zone": int(zone.sum()),
        "n_clean": int(clean.sum()),
        "n_clean_usable": int((clean & usable).sum()),
        "n_clean_no_data": int((clean & (nobs == 0)).sum()),
        "n_clean_one_year": int((clean & (nobs == 1)).sum()),
        "n_exposed": int(exposed.sum()),
        "n_dropped_early": int((role == "dropped_early").sum()),
    }
    rows = []
    for design in DESIGNS:
        rows_c = control_rows[design]
        members = roles.index.isin(pd.unique(units[rows_c]))
        years = pd.Series(units[rows_c & observed]).value_counts()
        members_usable = years.reindex(roles.index).fillna(0).to_numpy() >= MIN_USABLE_YEARS
        col = post[design] if len(post) else pd.Series(dtype=int)
        k = int(col.to_numpy().argmin()) if len(col) else -1
        rows.append(
            {
                "design": design,
                "outcome": outcome,
                "n_treated": int(zone.sum()),
                "n_controls": int(members.sum()),
                "n_controls_usable": int((members & members_usable).sum()),
                "min_controls": int(col.iloc[k]) if k >= 0 else 0,
                "min_controls_year": int(post["year"].iloc[k]) if k >= 0 else np.nan,
                "last_year_controls": int(by_year[design].iloc[-1]) if len(by_year) else 0,
                **common,
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["by_year"] = by_year
    out.attrs["clean_units"] = roles.index[clean.to_numpy()].tolist()
    return out


def control_note(counts: pd.DataFrame) -> str:
    """One sentence of :func:`control_counts` to print beside an estimate.

    Example: "137 zone cities; 7 clean controls (5 with 2+ outcome years), 91 exposed,
    63 early zones dropped; fewest controls in a year from the first cohort on:
    never-treated 56 (2022), not-yet-treated 56 (2022), clean 4 (2020), not-yet-exposed 4
    (2020)."
    """
    need = {"design", "n_zone", "n_clean", "n_clean_usable", "min_controls"}
    if not isinstance(counts, pd.DataFrame) or not need <= set(counts.columns):
        raise PanelError("control_note takes the DataFrame returned by control_counts().")
    r = counts.iloc[0]
    names = {
        "never_treated": "never-treated",
        "not_yet_treated": "not-yet-treated",
        "clean_controls": "clean",
        "not_yet_exposed": "not-yet-exposed",
    }
    mins = ", ".join(
        f"{names.get(d, d)} {int(m)} ({int(y)})"
        for d, m, y in zip(
            counts["design"], counts["min_controls"], counts["min_controls_year"], strict=True
        )
        if pd.notna(y)
    )
    return (
        f"{int(r['n_zone'])} zone cities; {int(r['n_clean'])} clean controls "
        f"({int(r['n_clean_usable'])} with {MIN_USABLE_YEARS}+ outcome years), "
        f"{int(r['n_exposed'])} exposed, {int(r['n_dropped_early'])} early zones dropped; "
        f"fewest controls in a year from the first cohort on: {mins}."
    )


# --------------------------------------------------------------------------- balance
def _baseline_values(
    frame: pd.DataFrame,
    column: str,
    unit: str,
    time: str,
    baseline: tuple[int, int],
) -> tuple[pd.Series, pd.Series]:
    """Mean over the baseline years, or over the first available years of the same number.

    Returns the value by unit and whether the fallback (first available years) was used.
    """
    d = frame[[unit, time, column]].dropna(subset=[column])
    lo, hi = baseline
    inside = d[(d[time] >= lo) & (d[time] <= hi)].groupby(unit)[column].mean()
    width = hi - lo + 1
    first = d.sort_values([unit, time]).groupby(unit).head(width).groupby(unit)[column].mean()
    value = inside.reindex(first.index.union(inside.index))
    fallback = value.isna() & value.index.isin(first.index)
    value = value.fillna(first.reindex(value.index))
    return value, fallback


def _norm_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Imbens-Rubin normalised difference of means (eq. 14.2)."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return np.nan
    s = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return float((a.mean() - b.mean()) / s) if s > 0 else np.nan


def balance_table(
    frame: pd.DataFrame,
    panel: Panel | None = None,
    *,
    roles: pd.DataFrame | None = None,
    exposure: str | ExposureMap | None = None,
    baseline: tuple[int, int] = (1998, 2000),
    variables: Sequence[str] = ("gdp_real", "population", "fdi", "coastal"),
    unit: str = "city_code",
    time: str = "year",
) -> pd.DataFrame:
    """Baseline balance of zone cities (by cohort group), clean controls and exposed cities.

    Parameters
    ----------
    frame : DataFrame
        The study frame of :func:`zoneimpact.china.build_study_panel` (every city, all
        years; columns ``city_code``, ``year``, ``province`` and the variables). Not
        modified.
    panel : Panel, optional
        The estimation panel; roles come from :func:`city_roles` (unless ``roles``).
    roles : DataFrame, optional
        A :func:`city_roles` table to use instead.
    exposure : str, ExposureMap or None
        As in :func:`city_roles`.
    baseline : (int, int)
        Baseline years (inclusive). A city without a value in them (GDP starts in 2000)
        takes the mean of its first available years, as many as the window is long;
        ``n_fallback`` counts such cities. The window is the same for every city, so for
        a zone city of a cohort inside it (1997-2000 with the default) it includes its
        first zone years: its "baseline" is then partly post-zone (compare the
        ``zone: 1997-2008`` group with care, or pass an earlier window).
    variables : sequence of str
        Frame columns; ``"coastal"`` is derived from ``province``
        (:data:`COASTAL_PROVINCES`).
    unit, time : str
        Column names in ``frame``.

    Returns
    -------
    DataFrame
        One row per group x variable: ``group`` (``zone: all``, ``zone: <cohort group>``,
        ``exposed``, ``clean``, ``dropped_early``), ``variable``, ``n``, ``mean``,
        ``median``, ``sd``, ``median_ratio_to_clean`` (group median over the clean
        controls' median), ``norm_diff`` (Imbens-Rubin, against clean) and ``n_fallback``.
        ``attrs["baseline"]`` records the window and ``attrs["coastal_provinces"]`` the list.
    """
    if roles is None:
        if panel is None:
            raise PanelError("balance_table needs panel= (the estimation panel) or roles=.")
        roles = city_roles(panel, exposure=exposure)
    need = {unit, time} | ({"province"} if "coastal" in variables else set())
    need |= {v for v in variables if v != "coastal"}
    miss = sorted(need - set(frame.columns))
    if miss:
        raise PanelError(
            f"balance_table: frame lacks column(s) {miss}; pass the study frame of "
            "build_study_panel()."
        )
    f = frame.copy()
    f[unit] = f[unit].astype(str)
    if "coastal" in variables:
        f["coastal"] = coastal(f["province"])
    roles = roles.copy()
    roles.index = roles.index.astype(str)
    groups: dict[str, pd.Index] = {}
    zone = roles["role"] == "zone"
    groups["zone: all"] = roles.index[zone.to_numpy()]
    for label, _, _ in COHORT_GROUPS:
        sel = zone & (roles["cohort_group"] == label)
        if sel.any():
            groups[f"zone: {label}"] = roles.index[sel.to_numpy()]
    for r in ("exposed", "clean", "dropped_early"):
        groups[r] = roles.index[(roles["role"] == r).to_numpy()]
    rows = []
    for var in variables:
        value, fallback = _baseline_values(f, var, unit, time, baseline)
        binary = set(np.unique(value.dropna().to_numpy())) <= {0.0, 1.0}
        clean_v = value.reindex(groups["clean"]).to_numpy(float)
        clean_med = float(np.nanmedian(clean_v)) if np.isfinite(clean_v).any() else np.nan
        for name, members in groups.items():
            v = value.reindex(members).to_numpy(float)
            ok = np.isfinite(v)
            med = float(np.median(v[ok])) if ok.any() else np.nan
            rows.append(
                {
                    "group": name,
                    "variable": var,
                    "n": int(ok.sum()),
                    "mean": float(v[ok].mean()) if ok.any() else np.nan,
                    "median": med,
                    "sd": float(v[ok].std(ddof=1)) if ok.sum() > 1 else np.nan,
                    # a ratio of medians means nothing for a 0/1 variable: compare means
                    "median_ratio_to_clean": med / clean_med
                    if not binary and clean_med and np.isfinite(clean_med)
                    else np.nan,
                    "norm_diff": _norm_diff(v, clean_v) if name != "clean" else 0.0,
                    "n_fallback": int(fallback.reindex(members).fillna(False).sum()),
                }
            )
    out = pd.DataFrame(rows)
    out.attrs["baseline"] = baseline
    out.attrs["coastal_provinces"] = list(COASTAL_PROVINCES)
    return out


def baseline_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Medians of zone cities relative to the clean controls, for a README sentence."""
    z = table[table["group"] == "zone: all"].set_index("variable")
    return {v: float(z.at[v, "median_ratio_to_clean"]) for v in z.index}
