"""Ring exposure of grid cells to point zones, at the scale of national 1 km grids.

Gridded outcomes (night lights, land use, population rasters) put millions of cells
around a few thousand zones. :func:`grid_exposure` measures, for every cell, its distance
to the nearest zone and, for every distance band ("ring") around the zones, how many zones
lie in it and when the first of them opened — the exposure of Butts (2021), "Difference-in-
differences estimation with spatial spillovers", arXiv:2105.03737, Section 3.2 (the ring
estimator, eq. 3.3) and Clarke (2017), MPRA 81604, Section 2. :func:`exposure_from_points`
turns it into an :class:`~zoneimpact.exposure.ExposureMap` for
:func:`zoneimpact.estimators.spillover.fit`, and :func:`ring_cs_from_parquet`
(:mod:`zoneimpact._grid_cs`) estimates the ring-spillover Callaway-Sant'Anna effects out
of core from a partitioned Parquet panel.

Rules (documented choices, the same as :func:`zoneimpact.exposure.exposure_from_rings`)
------------------------------------------------------------------------------------
* Rings are given by their outer radii ``rings_km = (r1, r2, ..., rK)``, inner first:
  band ``k`` holds the zones at distance ``r_{k-1} <= d < r_k`` (``r_0 = 0``). A zone at
  exactly ``r_k`` belongs to the next band out (or to none beyond ``rK``).
* Bands within ``treated_km`` (an outer radius, default the first one; ``0`` for none) are
  *treatment*: a cell with a zone there is a ``direct`` cell whose ``cohort`` is the first
  opening among those zones. The other bands are the *spillover rings*.
* ``exposure_onset`` is the first opening among the zones in the spillover rings; ``ring``
  is the spillover ring of the closest of those zones and ``distance_km`` its distance (NaN
  and ``""`` when there is none). For a direct cell these describe the zones other than its
  own treatment zones (exposure before its own zone opened, as
  :class:`~zoneimpact.exposure.ExposureMap` records for zone units).
* ``nearest_km`` is the distance to the nearest zone at any distance.

Distances: with ``coords="latlon"`` (degrees) the great-circle distance of
:func:`zoneimpact.geo.haversine_km`; with ``coords="xy"`` projected coordinates in metres
and the Euclidean distance in km. The index is a :class:`scipy.spatial.cKDTree` on the
zones (3-D unit-sphere coordinates for latitude/longitude, where the chord is a monotone
function of the great-circle distance, so a ball of chord ``2 sin(d / 2R)`` holds exactly
the zones within ``d``). Cells are processed in chunks of ``chunk_size``: each chunk asks
the tree for the (zone, cell) pairs within the outermost radius (slightly widened against
rounding), whose exact distances are then recomputed with the formula above and binned, so
peak memory grows with the chunk and the number of nearby pairs, never with cells x zones.
The result does not depend on the chunk size or on the order of the cells.

Why by hand: the spatial join itself is scipy's; what is left is binning the few nearby
pairs, a handful of vectorised numpy reductions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ._grid_cs import ring_cs_from_parquet, ring_pieces
from .errors import GeographyError
from .exposure import ExposureMap
from .geo import EARTH_RADIUS_KM, haversine_km
from .panel import _is_dates, _v

__all__ = ["exposure_from_points", "grid_exposure", "ring_cs_from_parquet", "ring_pieces"]

Coords = Literal["latlon", "xy"]
_MAP_COLUMNS = ["role", "cohort", "exposure_onset", "ring", "distance_km"]
# relative widening of the tree's search radius: the exact distances decide membership,
# the tree only has to return every candidate despite rounding of the chord / squares
_WIDEN = 1e-7


def _ring_label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}km"


def _check_rings(rings_km: Any, treated_km: Any) -> tuple[np.ndarray, int]:
    """Outer radii as an increasing array and the number of treatment bands."""
    try:
        radii = np.asarray([float(r) for r in rings_km], dtype=float)
    except (TypeError, ValueError):
        raise GeographyError(
            f"rings_km must be a list of outer radii in km, inner first, e.g. [1, 5, 10]; "
            f"received {rings_km!r}."
        ) from None
    if radii.size == 0:
        raise GeographyError("rings_km is empty; give at least one outer radius in km.")
    for k, r in enumerate(radii):
        if not np.isfinite(r) or r <= 0:
            raise GeographyError(
                f"rings_km[{k}] = {r:g} km is not allowed; every radius must be a positive, "
                "finite number of km."
            )
        if k and r <= radii[k - 1]:
            raise GeographyError(
                f"rings_km must increase (inner ring first): rings_km[{k - 1}] = "
                f"{radii[k - 1]:g} km is followed by rings_km[{k}] = {r:g} km."
            )
    if treated_km is None:
        return radii, 1
    try:
        tk = float(treated_km)
    except (TypeError, ValueError):
        raise GeographyError(
            f"treated_km must be 0 or one of rings_km {radii.tolist()}; received {treated_km!r}."
        ) from None
    if tk == 0:
        return radii, 0
    hit = np.flatnonzero(radii == tk)
    if hit.size == 0:
        raise GeographyError(
            f"treated_km = {tk:g} km is not one of the ring radii {radii.tolist()} (nor 0 for "
            "no treatment band); the treatment radius must be a ring edge."
        )
    return radii, int(hit[0]) + 1


def _points(frame: Any, what: str, id_col: str, coords: Coords) -> tuple[np.ndarray, ...]:
    """Ids and coordinates of cells or zones, checked (named errors, no NaN)."""
    if not isinstance(frame, pd.DataFrame):
        raise GeographyError(f"{what} must be a pandas DataFrame; received {type(frame).__name__}.")
    cols = ["lat", "lon"] if coords == "latlon" else ["x", "y"]
    missing = [c for c in [id_col, *cols] if c not in frame.columns]
    if missing:
        raise GeographyError(
            f"The {what} table lacks column(s) {missing}; it needs {[id_col, *cols]} "
            f"(coords={coords!r}). Its columns are {list(frame.columns)}."
        )
    ids = frame[id_col].to_numpy()
    if pd.isna(ids).any():
        raise GeographyError(f"Column {id_col!r} of the {what} table has a missing id.")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise GeographyError(
            f"Column {id_col!r} of the {what} table lists {_v(ids[dup][0])!r} more than once."
        )
    out = []
    for c in cols:
        try:
            v = frame[c].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise GeographyError(
                f"Column {c!r} of the {what} table must be numeric; its dtype is {frame[c].dtype}."
            ) from None
        bad = ~np.isfinite(v)
        limit = {"lat": 90.0, "lon": 180.0}.get(c)
        if limit is not None:
            bad |= np.abs(v) > limit
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            allowed = f"within [-{limit:g}, {limit:g}] degrees" if limit else "a finite number"
            raise GeographyError(
                f"Column {c!r} of the {what} table is {v[i]!r} for {id_col} {_v(ids[i])!r} "
                f"({int(bad.sum())} such row(s)); it must be {allowed}."
            )
        out.append(v)
    return ids, out[0], out[1]


def _sphere(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """3-D unit-sphere coordinates (chord length is monotone in great-circle distance)."""
    p, lam = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)])


def _search_radius(km: float, coords: Coords) -> float:
    """The tree-space radius that holds every point within ``km``, widened for rounding."""
    if coords == "latlon":
        chord = 2.0 * np.sin(min(km / (2.0 * EARTH_RADIUS_KM), np.pi / 2))
        return float(chord * (1 + _WIDEN) + 1e-12)
    return float(km * 1000.0 * (1 + _WIDEN) + 1e-6)


def _distance_km(
    coords: Coords, a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray
) -> np.ndarray:
    """Exact distance in km (haversine on degrees, Euclidean on metres)."""
    if coords == "latlon":
        return haversine_km(a1, a2, b1, b2)
    return np.hypot(a1 - b1, a2 - b2) / 1000.0


def grid_exposure(
    cells: pd.DataFrame,
    zones: pd.DataFrame,
    *,
    rings_km: Sequence[float] = (1.0, 5.0, 10.0),
    treated_km: float | None = None,
    coords: Coords = "latlon",
    cell: str = "cell",
    zone: str = "zone",
    opening: str = "opening",
    chunk_size: int = 500_000,
) -> pd.DataFrame:
    """Ring exposure of every grid cell to point zones (Butts 2021, Section 3.2, eq. 3.3).

    Parameters
    ----------
    cells : DataFrame
        One row per cell: id column ``cell`` and coordinates (``lat``/``lon`` in degrees
        with ``coords="latlon"``; ``x``/``y`` in metres with ``coords="xy"``).
    zones : DataFrame
        One row per zone: id column ``zone``, the same coordinates and ``opening`` (the
        first period the zone operates; a finite number on the panel's period scale, e.g.
        the year; dates are refused). Zones may lie outside the grid.
    rings_km : sequence of float
        Outer radii of the bands in km, inner first, strictly increasing and positive;
        band ``k`` is ``r_{k-1} <= d < r_k`` (module notes).
    treated_km : float, optional
        Outer radius of the treatment bands (a value of ``rings_km``; default the first;
        ``0`` when no cell counts as treated).
    coords : {"latlon", "xy"}
        Coordinate system (module notes).
    cell, zone, opening : str
        Column names.
    chunk_size : int
        Cells per spatial query; bounds peak memory, does not change the result.

    Returns
    -------
    DataFrame
        Indexed by cell id in the order of ``cells``: ``role`` (``direct``/``exposed``/
        ``clean``), ``cohort``, ``exposure_onset`` (``inf`` = never), ``ring`` (categorical;
        ``""`` for none), ``distance_km`` (ExposureMap's columns, module notes),
        ``nearest_km``, and per band ``opening:<band>`` (first opening, ``inf`` = no zone)
        and ``n_zones:<band>`` (number of zones).

    Raises
    ------
    GeographyError
        Missing columns, NaN or out-of-range coordinates, duplicated ids, a missing opening
        year or one given as a date, non-positive or unsorted radii, a treatment radius
        that is not a ring edge.
    """
    if coords not in ("latlon", "xy"):
        raise GeographyError(f"coords={coords!r} is not allowed; use 'latlon' or 'xy'.")
    radii, n_treat = _check_rings(rings_km, treated_km)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise GeographyError(f"chunk_size must be a whole number >= 1; received {chunk_size!r}.")
    if chunk_size < 1:
        raise GeographyError(f"chunk_size must be a whole number >= 1; received {chunk_size}.")
    cid, c1, c2 = _points(cells, "cells", cell, coords)
    zid, z1, z2 = _points(zones, "zones", zone, coords)
    if opening not in zones.columns:
        raise GeographyError(
            f"The zones table lacks the opening column {opening!r}; its columns are "
            f"{list(zones.columns)}."
        )
    if _is_dates(zones[opening]):
        col = zones[opening]
        shown = f", first value {col.iloc[0]!r}" if len(col) else ""
        raise GeographyError(
            f"Column {opening!r} of the zones table holds dates (dtype {col.dtype}{shown}); "
            "give the opening period as a number on the panel's time scale, e.g. the year "
            f"(zones[{opening!r}].dt.year), as the panel's time column holds it. Read as "
            "numbers, dates would be nanoseconds since 1970 (or missing)."
        )
    zopen = pd.to_numeric(zones[opening], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(zopen)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GeographyError(
            f"Column {opening!r} of the zones table is {zones[opening].iloc[i]!r} for zone "
            f"{_v(zid[i])!r} ({int(bad.sum())} such zone(s)); every zone needs a finite "
            "opening period."
        )
    labels = [_ring_label(lo, hi) for lo, hi in zip(np.r_[0.0, radii[:-1]], radii, strict=True)]
    n, n_bands = len(cid), len(radii)
    first = np.full((n_bands, n), np.inf)
    count = np.zeros((n_bands, n), dtype=np.int32)
    spill_d = np.full(n, np.inf)
    spill_band = np.full(n, -1, dtype=np.int64)
    nearest = np.full(n, np.nan)
    if len(zid):
        zpts = _sphere(z1, z2) if coords == "latlon" else np.column_stack([z1, z2])
        tree = cKDTree(zpts)
        r_search = _search_radius(float(radii[-1]), coords)
        for lo in range(0, n, chunk_size):
            sl = slice(lo, min(lo + chunk_size, n))
            _chunk(
                tree,
                coords,
                c1[sl],
                c2[sl],
                (z1, z2, zopen),
                radii,
                n_treat,
                r_search,
                (first[:, sl], count[:, sl], spill_d[sl], spill_band[sl], nearest[sl]),
            )
    return _table(cid, cell, labels, n_treat, first, count, spill_d, spill_band, nearest)


def _chunk(
    tree: cKDTree,
    coords: Coords,
    a1: np.ndarray,
    a2: np.ndarray,
    zone_data: tuple[np.ndarray, np.ndarray, np.ndarray],
    radii: np.ndarray,
    n_treat: int,
    r_search: float,
    out: tuple[np.ndarray, ...],
) -> None:
    """Bin the (zone, cell) pairs of one chunk of cells into the output views ``out``."""
    z1, z2, zopen = zone_data
    first, count, spill_d, spill_band, nearest = out
    pts = _sphere(a1, a2) if coords == "latlon" else np.column_stack([a1, a2])
    # nearest zone at any distance: the tree's nearest, its distance recomputed exactly
    _, near = tree.query(pts, k=1)
    nearest[:] = _distance_km(coords, a1, a2, z1[near], z2[near])
    pairs = tree.sparse_distance_matrix(cKDTree(pts), r_search, output_type="ndarray")
    iz = pairs["i"].astype(np.int64)
    ic = pairs["j"].astype(np.int64)
    d = _distance_km(coords, a1[ic], a2[ic], z1[iz], z2[iz])
    # band k: r_{k-1} <= d < r_k ("right" puts a zone at exactly r_k in the next band)
    band = np.searchsorted(radii, d, side="right")
    keep = band < len(radii)
    iz, ic, d, band = iz[keep], ic[keep], d[keep], band[keep]
    opened = zopen[iz]
    for k in range(len(radii)):
        m = band == k
        np.minimum.at(first[k], ic[m], opened[m])
        count[k] += np.bincount(ic[m], minlength=len(a1)).astype(np.int32)
    spill = band >= n_treat
    if spill.any():
        isp, dsp, bsp = ic[spill], d[spill], band[spill]
        np.minimum.at(spill_d, isp, dsp)
        # band of the closest spillover zone (equal distances lie in the same band)
        hit = dsp == spill_d[isp]
        spill_band[isp[hit]] = bsp[hit]


def _table(
    cid: np.ndarray,
    cell: str,
    labels: list[str],
    n_treat: int,
    first: np.ndarray,
    count: np.ndarray,
    spill_d: np.ndarray,
    spill_band: np.ndarray,
    nearest: np.ndarray,
) -> pd.DataFrame:
    """Assemble the per-cell table (ExposureMap's columns first)."""
    cohort = first[:n_treat].min(axis=0) if n_treat else np.full(len(cid), np.inf)
    onset = first[n_treat:].min(axis=0) if n_treat < len(labels) else np.full(len(cid), np.inf)
    direct = np.isfinite(cohort)
    exposed = ~direct & np.isfinite(onset)
    role = np.select([direct, exposed], [1, 2], 0).astype(np.int8)
    ring_labels = ["", *labels[n_treat:]]
    ring_code = np.where(spill_band >= 0, spill_band - n_treat + 1, 0)
    cols: dict[str, Any] = {
        "role": pd.Categorical.from_codes(role, categories=["clean", "direct", "exposed"]),
        "cohort": cohort,
        "exposure_onset": onset,
        "ring": pd.Categorical.from_codes(ring_code, categories=ring_labels),
        "distance_km": np.where(np.isfinite(spill_d), spill_d, np.nan),
        "nearest_km": nearest,
    }
    for k, lab in enumerate(labels):
        cols[f"opening:{lab}"] = first[k]
        cols[f"n_zones:{lab}"] = count[k]
    return pd.DataFrame(cols, index=pd.Index(cid, name=cell))


def exposure_from_points(
    cells: pd.DataFrame,
    zones: pd.DataFrame,
    *,
    rings_km: Sequence[float] = (1.0, 5.0, 10.0),
    treated_km: float | None = None,
    coords: Coords = "latlon",
    cell: str = "cell",
    zone: str = "zone",
    opening: str = "opening",
    chunk_size: int = 500_000,
) -> ExposureMap:
    """An :class:`~zoneimpact.exposure.ExposureMap` of grid cells around point zones.

    The map of :func:`grid_exposure` (same arguments) in the form
    :meth:`ExposureMap.panels` and :func:`zoneimpact.estimators.spillover.fit` read: the
    treatment bands make the ``direct`` cells (their ``cohort``), the spillover rings the
    ``exposed`` cells (Butts 2021, Section 3.2). The panel's cohort column must hold the
    map's ``cohort`` for every cell (``inf`` for the others).
    """
    tab = grid_exposure(
        cells,
        zones,
        rings_km=rings_km,
        treated_km=treated_km,
        coords=coords,
        cell=cell,
        zone=zone,
        opening=opening,
        chunk_size=chunk_size,
    )
    out = tab[_MAP_COLUMNS].copy()
    out["role"] = out["role"].astype(str).astype(object)
    out["ring"] = out["ring"].astype(str).astype(object)
    out.index.name = "unit"
    rings = tuple(str(c) for c in tab["ring"].cat.categories if c != "")
    settings = {
        "rings_km": [float(r) for r in rings_km],
        "treated_km": treated_km,
        "coords": coords,
    }
    return ExposureMap(kind="rings", table=out, rings=rings, settings=settings)
