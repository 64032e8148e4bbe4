"""What a run spec with ``[data] engine = "dask"`` needs: the panel read from the Parquet
glob of ``path``, and the data-parallel estimator of each ``[[estimate]]`` block.

:mod:`zoneimpact.datasets` and :mod:`zoneimpact.run` call these two functions; everything
else of a run (results, tables, report) is the same as with the in-memory engine.
"""

from __future__ import annotations

import glob as globbing
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataNotFoundError, SpecError
from ._frame import DaskPanel, read_panel

if TYPE_CHECKING:
    from ..spec import DataSpec, RunSpec

__all__ = ["estimator", "read_spec_panel"]


def _fits() -> dict[str, Callable[..., Any]]:
    from .callaway_santanna import fit as cs_fit
    from .imputation import fit as bjs_fit
    from .twfe import fit as twfe_fit

    return {"callaway_santanna": cs_fit, "imputation": bjs_fit, "twfe": twfe_fit}


def read_spec_panel(spec: RunSpec, d: DataSpec) -> tuple[DaskPanel, tuple[Path, ...]]:
    """The :class:`DaskPanel` of a ``[data]`` table with ``engine = "dask"`` and the local
    files it read (for the manifest's checksums; none for object stores). The cluster and
    weight columns are those the estimate blocks name (one of each at most)."""
    where = d.path or ""
    if "://" in where:
        path: str = where
        files: tuple[Path, ...] = ()
    else:
        path = str(spec.resolve_path(where))
        files = tuple(Path(f) for f in sorted(globbing.glob(path))) or (
            (Path(path),) if Path(path).is_dir() else ()
        )
        if not files:
            raise DataNotFoundError(f"[data] path = {where!r} matches no Parquet file ({path}).")
    named = {
        key: sorted(
            {
                str(b.options[key])
                for b in spec.estimates
                if isinstance(b.options.get(key), str) and b.options[key] != "unit"
            }
        )
        for key in ("cluster", "weights")
    }
    for key, names in named.items():
        if len(names) > 1:
            raise SpecError(
                f'[data] engine = "dask" reads one {key} column; the estimate blocks name '
                f"{names}. Use one of them in every block."
            )
    dpanel = read_panel(
        path,
        unit=d.unit,
        time=d.time,
        outcomes=list(d.outcomes),
        cohort=d.cohort,
        treatment=d.treatment,
        covariates=list(d.covariates),
        weights=named["weights"][0] if named["weights"] else None,
        cluster=named["cluster"][0] if named["cluster"] else None,
        outside_window=d.outside_window,
    )
    return dpanel, files


def estimator(name: str, options: dict[str, Any]) -> Callable[..., Any]:
    """The data-parallel ``fit`` of estimator ``name``; a :class:`SpecError` naming what the
    Dask engine supports when it has no such estimator or option."""
    fits = _fits()
    if name not in fits:
        raise SpecError(
            f'Estimator {name!r} has no data-parallel version: with [data] engine = "dask" use '
            f'{sorted(fits)} (or engine = "pandas").'
        )
    fit = fits[name]
    accepted = set(inspect.signature(fit).parameters)
    extra = sorted(set(options) - accepted)
    if extra:
        raise SpecError(
            f'Option(s) {extra} of {name!r} are not supported with [data] engine = "dask"; '
            f"supported: {sorted(accepted - {'dpanel', 'outcome', 'rng', 'alpha', 'n_jobs'})}."
        )
    return fit
