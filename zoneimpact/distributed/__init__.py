"""Data-parallel estimation on Dask: panels read from partitioned Parquet, estimators
computed from per-partition sufficient statistics and per-unit influence functions.

* :func:`read_panel` -> :class:`DaskPanel` (every unit's rows in one partition);
* :func:`callaway_santanna` (Callaway & Sant'Anna 2021, with or without covariates),
  :func:`twfe` (two-way fixed effects, absorbed by alternating projections) and
  :func:`imputation` (Borusyak, Jaravel & Spiess 2024), equal to the in-memory estimators
  of :mod:`zoneimpact.estimators` to 1e-10;
* :func:`spillover` (Butts 2021 ring pieces with the CS or BJS base and their joint inference,
  from an exposure map built on the unit table), equal to the in-memory spillover fit;
* :func:`client` opens a ``distributed.Client`` on a scheduler address or a local cluster.

See ``docs/cluster.md``.
"""

from __future__ import annotations

from ._frame import DaskPanel, read_panel
from .callaway_santanna import fit as callaway_santanna
from .cluster import client
from .imputation import fit as imputation
from .spillover import fit as spillover
from .twfe import fit as twfe

__all__ = [
    "DaskPanel",
    "callaway_santanna",
    "client",
    "imputation",
    "read_panel",
    "spillover",
    "twfe",
]
