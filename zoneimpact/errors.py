"""Exception family of zoneimpact.

Every error the package raises on bad input derives from :class:`ZoneImpactError`, so a
caller can catch one class. Messages name the column, unit and period at fault, what was
received, and how to fix it (the convention of R ``did`` and linearmodels).
"""

from __future__ import annotations


class ZoneImpactError(Exception):
    """Base class of every error raised by zoneimpact on bad input or settings."""


class PanelError(ZoneImpactError, ValueError):
    """The panel data are malformed (duplicates, bad values, inconsistent treatment)."""


class GeographyError(ZoneImpactError, ValueError):
    """The geography table or adjacency list is missing or inconsistent."""


class SpecError(ZoneImpactError, ValueError):
    """A run specification (TOML) is invalid or names something that does not exist."""


class EstimationError(ZoneImpactError, RuntimeError):
    """An estimator cannot be computed on this panel (e.g. no valid comparison group)."""


class RunDirectoryError(ZoneImpactError, OSError):
    """A run directory cannot be created or written.

    Raised when the target exists already (see :class:`RunDirectoryExistsError`), and for
    every operating-system error while the directory is created or written (no permission,
    read-only or full disk, a parent that is a file): the message names the path, what
    happened and how to fix it, and nothing of the failed run is left behind.
    """


class RunDirectoryExistsError(RunDirectoryError, FileExistsError):
    """The run directory exists already (or another run created it meanwhile)."""


class DataNotFoundError(ZoneImpactError, FileNotFoundError):
    """External data files needed by a spec are missing."""
