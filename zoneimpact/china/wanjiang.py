"""The Wanjiang City Belt descriptive growth table, to sit beside the causal estimate.

The seed's claim is descriptive: over the decade after the 2010 designation, "GDP grew 9.2
percent every year, 0.4 percentage points above the rest of the province" (an NDRC review
of 2021). :func:`wanjiang_growth_table` gives that comparison from the city files: real GDP
growth (2000 prices) of the eight member cities (:data:`~.study.WANJIANG_FULL`; 六安, only
partly inside, is left out as in :func:`~.study.build_wanjiang_panel`), of the rest of
Anhui and of the cities of the other provinces, before and after 2010.

Two growth measures, because they answer different questions:

* ``aggregate_growth``: annualised growth of the group's summed real GDP,
  ``(sum Y_end / sum Y_start-1)^(1/years) - 1``, over cities reporting both end years —
  the measure of a regional review ("the belt's GDP grew 9.2 % a year");
* ``mean_city_growth``: the mean over cities of each city's mean annual growth
  ``100 (Y_t / Y_t-1 - 1)`` — each city weighted equally, as in the city-level DiD.

Neither is causal: the difference between groups after 2010 minus the difference before
(``diff_in_diff`` rows) is the naive descriptive DiD that the synthetic DiD of
``specs/china_wanjiang.toml`` refines. Plain pandas arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PanelError
from .cities import CityPanel, build_city_panel
from .study import WANJIANG_FULL, WANJIANG_PARTIAL

ANHUI = "安徽省"
#: Before the January 2010 designation (GDP starts in 2000, so growth starts in 2001), and
#: the decade the NDRC's 2021 review covers.
DEFAULT_PERIODS: Mapping[str, tuple[int, int]] = {
    "2001-2009": (2001, 2009),
    "2010-2020": (2010, 2020),
}
GROUPS = ("Wanjiang", "rest of Anhui", "other provinces")


def _groups(cp: CityPanel) -> pd.Series:
    c = cp.cities.set_index("city_code")
    group = pd.Series("other provinces", index=c.index)
    anhui = c["province"] == ANHUI
    group[anhui] = "rest of Anhui"
    group[anhui & c["short_name"].isin(WANJIANG_FULL)] = "Wanjiang"
    group[anhui & c["short_name"].isin(list(WANJIANG_PARTIAL))] = ""
    return group[group != ""]


def wanjiang_growth_table(
    data_dir: str | Path,
    *,
    periods: Mapping[str, tuple[int, int]] | None = None,
    city_panel: CityPanel | None = None,
) -> pd.DataFrame:
    """Real GDP growth of the Wanjiang cities, the rest of Anhui and the other provinces.

    Parameters
    ----------
    data_dir : str or Path
        The data directory (``china/city_*.csv``).
    periods : mapping of label to (first year, last year), optional
        Growth years (growth of year t is from t-1 to t). Default :data:`DEFAULT_PERIODS`.
    city_panel : CityPanel, optional
        A panel already built.

    Returns
    -------
    DataFrame
        One row per group x period: ``group``, ``period``, ``n_cities``,
        ``mean_city_growth`` and ``median_city_growth`` (percent a year, over cities'
        mean growth), ``aggregate_growth`` (percent a year, summed GDP) and ``n_aggregate``
        (cities in the sum). Then the rows ``Wanjiang - rest of Anhui`` and
        ``Wanjiang - other provinces`` (differences of the same columns) and, when there
        are two periods, ``diff_in_diff`` rows (later minus earlier difference).
    """
    periods = dict(periods if periods is not None else DEFAULT_PERIODS)
    for label, (a, b) in periods.items():
        if not (isinstance(a, int | np.integer) and isinstance(b, int | np.integer) and a <= b):
            raise PanelError(
                f"periods[{label!r}] must be (first year, last year) with first <= last; "
                f"received {(a, b)!r}."
            )
    cp = city_panel if city_panel is not None else build_city_panel(data_dir)
    group = _groups(cp)
    gdp = cp.frame.pivot(index="city_code", columns="year", values="gdp_real")
    gdp = gdp.reindex(group.index)
    growth = 100 * (gdp / gdp.shift(1, axis=1) - 1)
    have = [int(y) for y in gdp.columns[gdp.notna().any().to_numpy()]]
    if not have:
        raise PanelError("No real GDP (column 实际GDP) in the GDP file for these cities.")
    rows = []
    for label, (a, b) in periods.items():
        if a - 1 not in have or b not in have:
            raise PanelError(
                f"periods[{label!r}] = {(a, b)} needs real GDP in {a - 1} and {b}; the data "
                f"cover {min(have)}-{max(have)}."
            )
        g = growth.loc[:, a:b]
        city_mean = g.mean(axis=1, skipna=True)
        ends = gdp[[a - 1, b]].dropna()
        for name in GROUPS:
            members = group.index[(group == name).to_numpy()]
            cm = city_mean.reindex(members).dropna()
            e = ends.reindex(members).dropna()
            years = b - a + 1
            agg = 100 * ((e[b].sum() / e[a - 1].sum()) ** (1 / years) - 1) if len(e) else np.nan
            rows.append(
                {
                    "group": name,
                    "period": label,
                    "n_cities": int(len(cm)),
                    "mean_city_growth": float(cm.mean()) if len(cm) else np.nan,
                    "median_city_growth": float(cm.median()) if len(cm) else np.nan,
                    "aggregate_growth": float(agg),
                    "n_aggregate": int(len(e)),
                }
            )
    out = pd.DataFrame(rows)
    cols = ["mean_city_growth", "median_city_growth", "aggregate_growth"]
    extra = []
    diffs: dict[str, dict[str, pd.Series]] = {}
    for label in periods:
        t = out[out["period"] == label].set_index("group")
        for other in ("rest of Anhui", "other provinces"):
            d = t.loc["Wanjiang", cols] - t.loc[other, cols]
            name = f"Wanjiang - {other}"
            diffs.setdefault(name, {})[label] = d
            extra.append({"group": name, "period": label, **d.to_dict()})
    labels = list(periods)
    if len(labels) == 2:
        for name, by in diffs.items():
            d = by[labels[1]] - by[labels[0]]
            extra.append(
                {"group": "diff_in_diff: " + name, "period": f"{labels[1]} vs {labels[0]}"}
                | d.to_dict()
            )
    out = pd.concat([out, pd.DataFrame(extra)], ignore_index=True)
    out["n_cities"] = out["n_cities"].astype("Int64")
    out["n_aggregate"] = out["n_aggregate"].astype("Int64")
    out.attrs["members"] = list(WANJIANG_FULL)
    out.attrs["left_out"] = dict(WANJIANG_PARTIAL)
    return out
