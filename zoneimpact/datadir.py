"""Locate the external data directory and check that the files a study needs are there.

Real study data (the China zone files) are never shipped inside the package: they sit in a
data directory beside the repository, given by ``--data-dir``, by ``$ZONEIMPACT_DATA``, or
found at ``shared/data`` beside the repository root or beside the working directory or
one of its ancestors (so ``../shared/data`` from the repository, ``../../shared/data`` from
its ``notebooks/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import DataNotFoundError

ENV_VAR = "ZONEIMPACT_DATA"

# the committed specs live in the repository (an installed package looks in the working
# directory, i.e. run it from a checkout)
_BESIDE = Path(__file__).resolve().parents[1] / "specs"
REPO_SPECS = _BESIDE if _BESIDE.exists() else Path.cwd() / "specs"

#: Where each known file comes from (shown when a file is missing). Paths are relative to
#: the data directory.
ORIGINS: dict[str, str] = {
    "china/zones_national_2018.csv": (
        "China Development Zone Audit Announcement Catalogue 2018 (NDRC et al.), geocoded "
        "in github.com/kaiwulaw/china-industrial-zones-atlas data/enriched.csv (commit "
        "358d79bb); national ETDZ and HTZ rows only"
    ),
    "china/city_fdi_1996_2023.csv": (
        "city_fdi_1996_2023.xlsx in github.com/biechouwo-coder/G-P (commit 620eba99), "
        "converted to UTF-8 CSV"
    ),
    "china/city_gdp_2000_2023.csv": (
        "city_gdp_2000_2023.xlsx in github.com/biechouwo-coder/G-P (commit 620eba99), "
        "converted to UTF-8 CSV"
    ),
    "china/city_population_1998_2024.csv": (
        "city_population_1998_2024.xlsx in github.com/biechouwo-coder/G-P (commit "
        "620eba99), converted to UTF-8 CSV"
    ),
    "china/province_patent_applications_2010_2023.csv": (
        "R package huhuaping/techme (MIT, commit 9ad60a19), China Statistical Yearbook on "
        "Science and Technology, domestic patent applications by province"
    ),
    "china/province_patent_grants_2010_2023.csv": (
        "R package huhuaping/techme (MIT, commit 9ad60a19), China Statistical Yearbook on "
        "Science and Technology, domestic patent grants by province"
    ),
}


def _candidates() -> list[Path]:
    pkg_root = Path(__file__).resolve().parents[2]
    # from a subfolder of the repository (notebooks/, tests/) the data sit further up:
    # look for shared/data beside each ancestor of the working directory
    cwd = Path.cwd().resolve()
    beside = [p / "shared" / "data" for p in (cwd, *cwd.parents)]
    return list(dict.fromkeys([pkg_root / "shared" / "data", *beside]))


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """Return the data directory.

    Order: ``explicit`` (the CLI's ``--data-dir``), then ``$ZONEIMPACT_DATA``, then
    ``shared/data`` beside the repository root (``Path(zoneimpact.__file__).parents[2]``),
    then ``../shared/data`` relative to the current working directory.

    Parameters
    ----------
    explicit : str or Path, optional
        A directory given by the user; it must exist.

    Returns
    -------
    Path
        An existing directory.

    Raises
    ------
    DataNotFoundError
        If the explicit or environment directory does not exist, or no default is found.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"Data directory {str(path)!r} (from --data-dir) does not exist; pass the "
                "folder that holds the 'china/' data files."
            )
        return path.resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"Data directory {str(path)!r} (from ${ENV_VAR}) does not exist; fix or "
                f"unset ${ENV_VAR}, or pass --data-dir."
            )
        return path.resolve()
    tried = _candidates()
    for path in tried:
        if path.is_dir():
            return path
    raise DataNotFoundError(
        "No data directory found. Pass --data-dir DIR or set $"
        + ENV_VAR
        + "; looked in "
        + ", ".join(str(p) for p in tried)
        + ". See docs/china_data.md for where to obtain the files."
    )


def require_files(data_dir: str | Path, relative_paths: Iterable[str]) -> None:
    """Raise :class:`DataNotFoundError` listing every missing file and where to get it.

    Parameters
    ----------
    data_dir : str or Path
        The data directory (see :func:`resolve_data_dir`).
    relative_paths : iterable of str
        Paths relative to ``data_dir``, e.g. ``"china/city_fdi_1996_2023.csv"``.
    """
    data_dir = Path(data_dir)
    missing = [r for r in relative_paths if not (data_dir / r).is_file()]
    if not missing:
        return
    lines = [
        f"  - {r}: obtain from {ORIGINS.get(r, 'its origin (see docs/china_data.md)')}"
        for r in missing
    ]
    raise DataNotFoundError(
        f"{len(missing)} data file(s) missing under {str(data_dir)!r}:\n"
        + "\n".join(lines)
        + "\nPut them there, or point --data-dir / $"
        + ENV_VAR
        + " at the folder that holds them (docs/china_data.md)."
    )
