"""Execute a :class:`RunSpec` into a run directory, atomically.

The run builds the panel, fits every ``[[estimate]]`` block with its own child random
generator (spawned from the spec's seed in block order, so adding n_jobs or reordering
work never changes a number), and only then writes:

``results.json``
    one record per reported number (schema in the README); byte-identical for the same
    spec and seed: records are sorted as the spec lists them and floats are rounded to 12
    significant digits, so last-bit noise from threaded BLAS cannot leak in.
``manifest.json``
    package versions, sha256 of every input file, the resolved spec, seed, git revision,
    wall time.
``tables/``, ``figures/``, ``artifacts/``, ``report.html``, ``data_report.json``.

Everything is written into a hidden temporary directory beside the target and renamed
into place when complete; an existing directory is never overwritten unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .datasets import LoadedData, load_data
from .errors import RunDirectoryError, SpecError, ZoneImpactError
from .estimators import check_options, get_estimator
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


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.12g}")
    return x


def result_records(name: str, result: EstimationResult, alpha: float) -> list[dict[str, Any]]:
    """The ``results.json`` records of one estimate block."""
    return [
        {"name": name, **{k: _round(v) for k, v in rec.items()}} for rec in result.records(alpha)
    ]


def estimate_all(spec: RunSpec, *, data: LoadedData | None = None) -> RunOutput:
    """Load the data and fit every estimate block; no files are written."""
    start = time.perf_counter()
    for block in spec.estimates:  # every misspelt option is reported before any work
        try:
            check_options(block.estimator, block.options)
        except SpecError as exc:
            raise SpecError(f"Estimate {block.name!r}: {exc}") from exc
    root = np.random.default_rng(spec.seed)
    data_rng, *block_rngs = root.spawn(1 + len(spec.estimates))
    data = load_data(spec, data_rng) if data is None else data
    results: dict[str, EstimationResult] = {}
    records: list[dict[str, Any]] = []
    block_data: dict[str, LoadedData] = {}
    for block, rng in zip(spec.estimates, block_rngs, strict=True):
        fit = get_estimator(block.estimator)
        panel = data.panel
        if block.data is not None:
            # a block with its own [estimate.data] reads that panel (loaded once per table)
            key = repr(block.data)
            if key not in block_data:
                block_data[key] = load_data(spec, rng.spawn(1)[0], block.data)
            panel = block_data[key].panel
        try:
            res = fit(
                panel,
                outcome=block.outcome,
                rng=rng,
                alpha=spec.inference.alpha,
                n_jobs=spec.inference.n_jobs,
                **block.options,
            )
        except ZoneImpactError as exc:
            raise type(exc)(f"Estimate {block.name!r} ({block.estimator}): {exc}") from exc
        results[block.name] = res
        records.extend(result_records(block.name, res, spec.inference.alpha))
    extras = {"block_data": list(block_data.values())} if block_data else {}
    return RunOutput(spec, data, results, records, time.perf_counter() - start, extras=extras)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def manifest(output: RunOutput) -> dict[str, Any]:
    """The run's provenance record."""
    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    spec_file = [Path(output.spec.spec_path)] if output.spec.spec_path else []
    inputs = list(output.data.inputs)
    for extra in output.extras.get("block_data", []):
        inputs.extend(p for p in extra.inputs if p not in inputs)
    return {
        "title": output.spec.title,
        "seed": output.spec.seed,
        "spec": output.spec.resolved(),
        "inputs": {str(p): sha256(p) for p in (*spec_file, *inputs)},
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
        "wall_time_seconds": round(output.wall_time, 3),
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def default_run_dir(spec: RunSpec, base: Path | None = None) -> Path:
    """``runs/<spec>-<timestamp>`` under the current directory (or ``base``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (base or Path.cwd() / "runs") / f"{spec.stem}-{stamp}"


def write_run(output: RunOutput, out_dir: Path, *, force: bool = False) -> Path:
    """Write ``output`` into ``out_dir`` atomically (temporary directory, then rename)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise RunDirectoryError(
            f"Run directory {out_dir} exists already; nothing was written. Choose another "
            "--out or pass --force to replace it."
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_contents(output, tmp)
        if out_dir.exists():
            trash = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.rename(out_dir, trash)
            os.rename(tmp, out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _dump(obj: Any, path: Path) -> None:
    path.write_text(
        json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=_json_default)
        + "\n",
        encoding="utf-8",
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return str(obj)


def _write_contents(output: RunOutput, root: Path) -> None:
    from .report import outputs

    root.mkdir(parents=True)
    _dump(
        {"title": output.spec.title, "seed": output.spec.seed, "results": output.records},
        root / "results.json",
    )
    report = dict(output.data.report)
    markdown = report.pop("markdown", None)
    _dump(report, root / "data_report.json")
    if markdown:
        (root / "data_report.md").write_text(markdown, encoding="utf-8")
    art = root / "artifacts"
    art.mkdir()
    panel = output.data.panel
    # the exposure maps the run used (geography and adjacency), cached with the run
    if panel.geography is not None:
        panel.geography.to_csv(art / "geography.csv")
    if panel.adjacency is not None:
        panel.adjacency.to_csv(art / "adjacency.csv", index=False)
    for name, res in output.results.items():
        res.tidy().to_csv(art / f"{name}_terms.csv", index=False)
        for key, table in res.artifacts().items():
            frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
            frame.to_csv(art / f"{name}_{key}.csv")
    verdicts = output.extras.get("verdicts")
    if verdicts is not None:
        verdicts.to_csv(root / "claims.csv", index=False)
    outputs.write_tables_and_figures(output, root)
    _dump(manifest(output), root / "manifest.json")


def run_spec(spec: RunSpec, out_dir: Path | None = None, *, force: bool = False) -> RunOutput:
    """Estimate everything in ``spec`` and write the run directory."""
    target = Path(out_dir) if out_dir is not None else default_run_dir(spec)
    if target.exists() and not force:
        raise RunDirectoryError(
            f"Run directory {target} exists already; nothing was written. Choose another "
            "--out or pass --force to replace it."
        )
    output = estimate_all(spec)
    path = write_run(output, target, force=force)
    return RunOutput(
        output.spec,
        output.data,
        output.results,
        output.records,
        output.wall_time,
        path,
        output.extras,
    )


def summary_table(output: RunOutput) -> pd.DataFrame:
    """The headline estimate of every block (for the console), plus the net effect and
    displacement share of spillover-aware blocks."""
    rows = []
    for name, res in output.results.items():
        ci = res.conf_int()
        present = set(res.terms["term"])
        for term in (res.main_term, "net_per_treated", "displacement_share"):
            if term not in present:
                continue
            row = res.terms.set_index("term").loc[term]
            rows.append(
                {
                    "name": name,
                    "estimator": res.estimator,
                    "outcome": res.outcome,
                    "term": term,
                    "estimate": float(row["estimate"]),
                    "se": float(row["se"]),
                    "ci_low": ci.loc[term, "lower"],
                    "ci_high": ci.loc[term, "upper"],
                    "n_units": res.n_units,
                }
            )
    return pd.DataFrame(rows)
