"""The in-memory output of a run and the file namer of its directory.

This module sits below both :mod:`zoneimpact.run` (which estimates and publishes a run
directory) and :mod:`zoneimpact.report.outputs` (which writes its tables, figures and page
from results already in memory), so neither imports the other's internals: the data flow
is estimate -> :class:`RunOutput` -> report, one way.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from .datasets import LoadedData
from .files import MAX_STEM as MAX_STEM
from .files import RunFiles as RunFiles
from .files import safe_name as safe_name
from .files import sha256 as sha256
from .files import sha256_or_none
from .results import EstimationResult
from .spec import RunSpec

PACKAGES = (
    "zoneimpact",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "linearmodels",
    "matplotlib",
    "joblib",
)


@dataclass(frozen=True)
class RunOutput:
    """What a run produced, in memory (``path`` is None until written)."""

    spec: RunSpec
    data: LoadedData
    results: dict[str, EstimationResult]
    records: list[dict[str, Any]]
    wall_time: float
    path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: pre-trend and Rambachan-Roth diagnostics of the event studies, computed when the
    #: estimates were made (reporting only reads them); None when not computed
    diagnostics: pd.DataFrame | None = None
    #: the warnings raised while each block was estimated, in order, deduplicated:
    #: ``{block: [{"category": ..., "message": ...}, ...]}`` (blocks without any left out)
    warnings: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def recorded_inputs(output: RunOutput) -> dict[str, str | None]:
    """The spec file's and every data file's SHA-256 as each was read (None when the
    reader kept none), in reading order.

    Hashes are taken at read time: a file edited or removed since then would otherwise
    be recorded as what the run used, or fail the finished run.
    """
    hashes: dict[str, str | None] = {}
    if output.spec.spec_path:
        hashes[output.spec.spec_path] = output.spec.spec_sha256
    for loaded in (output.data, *output.extras.get("block_data", [])):
        for p in loaded.inputs:
            hashes.setdefault(str(p), loaded.input_hashes.get(str(p)))
    return hashes


def manifest(output: RunOutput) -> dict[str, Any]:
    """The run's provenance record."""
    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    hashes = recorded_inputs(output)
    for p, h in output.extras.get("inputs", {}).items():
        hashes.setdefault(str(p), h)
    inputs = {p: h if h is not None else sha256_or_none(Path(p)) for p, h in hashes.items()}
    return {
        "title": output.spec.title,
        "seed": output.spec.seed,
        "spec": output.spec.resolved(),
        "inputs": inputs,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
        "wall_time_seconds": round(output.wall_time, 3),
        "warnings": output.warnings,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
