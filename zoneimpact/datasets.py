"""Build the panel a spec asks for: a simulated panel, a CSV/Parquet file, or the China data.

This is the only place where a spec's ``[data]`` table turns into a :class:`Panel`; it
also returns the input files read (for the manifest's checksums) and any data report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataNotFoundError, SpecError
from .panel import Panel
from .simulate import Simulation, design_from_dict, simulate
from .spec import RunSpec


@dataclass(frozen=True)
class LoadedData:
    """A validated panel with where it came from."""

    panel: Panel
    inputs: tuple[Path, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)
    simulation: Simulation | None = None


def _read_table(path: Path, sep: str) -> pd.DataFrame:
    if not path.exists():
        raise DataNotFoundError(f"Data file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=sep)


def load_data(spec: RunSpec, rng: np.random.Generator) -> LoadedData:
    """Build the spec's panel (``rng`` drives the simulator only)."""
    d = spec.data
    if d.source == "simulate":
        sim = simulate(design_from_dict(d.simulate), rng=rng)
        panel = sim.panel
        missing = [o for o in d.outcomes if o not in panel.outcomes]
        if missing:
            raise SpecError(
                f"Simulated panels have outcomes {list(panel.outcomes)}; not {missing}."
            )
        return LoadedData(panel, (), {"panel": panel.report}, sim)
    if d.source == "china":
        from .china.study import load_china_panel

        return load_china_panel(spec)

    path = spec.resolve_path(d.path or "")
    frame = _read_table(path, d.sep)
    inputs = [path]
    cohort, treatment = d.cohort, d.treatment
    if d.treated_units:
        if cohort or treatment:
            raise SpecError("[data] give treated_units or cohort/treatment, not both.")
        unknown = sorted(set(d.treated_units) - set(frame[d.unit].astype(str)))
        if unknown:
            raise SpecError(
                f"[data] treated_units names unit(s) {unknown} not found in column {d.unit!r}."
            )
        frame = frame.assign(_cohort=frame[d.unit].astype(str).map(d.treated_units).fillna(0))
        cohort = "_cohort"
    geography = adjacency = None
    if d.geography:
        gpath = spec.resolve_path(d.geography)
        geography = _read_table(gpath, ",")
        inputs.append(gpath)
    if d.adjacency:
        apath = spec.resolve_path(d.adjacency)
        adjacency = _read_table(apath, ",")
        inputs.append(apath)
    panel = Panel.from_frame(
        frame,
        unit=d.unit,
        time=d.time,
        cohort=cohort,
        treatment=treatment,
        outcomes=list(d.outcomes),
        covariates=list(d.covariates),
        geography=geography,
        adjacency=adjacency,
        outside_window=d.outside_window,  # type: ignore[arg-type]
    )
    return LoadedData(panel, tuple(inputs), {"panel": panel.report})
