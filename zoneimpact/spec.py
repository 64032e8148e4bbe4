"""Run specifications: a TOML file parsed into a typed, validated :class:`RunSpec`.

The CLI only parses TOML and arguments into this object; the Python API takes the same
object, so a spec run from the shell and from a notebook are the same computation.
:meth:`RunSpec.resolved` returns the spec with every default filled in, which the run's
``manifest.json`` records. See the README ("Spec format") for the documented keys.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import SpecError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DATA_SOURCES = ("file", "simulate", "china")
DEFAULT_SEED = 20261122


@dataclass(frozen=True)
class DataSpec:
    """Where the panel comes from and which columns mean what."""

    source: str = "file"
    path: str | None = None
    sep: str = ","
    unit: str = "unit"
    time: str = "year"
    cohort: str | None = None
    treatment: str | None = None
    outcomes: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    treated_units: dict[str, int] = field(default_factory=dict)
    outside_window: Literal["error", "adjust"] = "error"
    geography: str | None = None
    adjacency: str | None = None
    simulate: dict[str, Any] = field(default_factory=dict)
    china: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EstimateSpec:
    """One estimate block: a name, an estimator, an outcome and its options."""

    name: str
    estimator: str
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None


@dataclass(frozen=True)
class InferenceSpec:
    """Settings shared by every estimate block."""

    alpha: float = 0.05
    n_jobs: int = 1


@dataclass(frozen=True)
class RunSpec:
    """A complete, validated run specification."""

    title: str
    seed: int
    data: DataSpec
    estimates: tuple[EstimateSpec, ...]
    inference: InferenceSpec = field(default_factory=InferenceSpec)
    figures: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    power: dict[str, Any] = field(default_factory=dict)
    spec_path: str | None = None
    data_dir: str | None = None

    def resolved(self) -> dict[str, Any]:
        """The spec as a plain dict with every default filled in."""
        out = asdict(self)
        out["estimates"] = [asdict(e) for e in self.estimates]
        return out

    @property
    def stem(self) -> str:
        """A file-system-safe short name (from the spec file name or the title)."""
        base = Path(self.spec_path).stem if self.spec_path else self.title
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-") or "run"

    def resolve_path(self, value: str) -> Path:
        """Expand ``{data_dir}`` and make relative paths relative to the spec file."""
        if "{data_dir}" in value:
            from .datadir import resolve_data_dir

            value = value.replace("{data_dir}", str(resolve_data_dir(self.data_dir)))
        path = Path(value).expanduser()
        if not path.is_absolute() and self.spec_path:
            path = Path(self.spec_path).resolve().parent / path
        return path


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"[{key}] must be a table; received {type(value).__name__}.")
    return value


def _fields(cls: type[DataclassInstance], values: dict[str, Any], where: str) -> dict[str, Any]:
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecError(f"Unknown key(s) {unknown} in {where}; allowed: {sorted(known)}.")
    return values


def _data_spec(table: dict[str, Any], where: str) -> DataSpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table; received {type(table).__name__}.")
    values = dict(_fields(DataSpec, table, where))
    for key in ("outcomes", "covariates"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
        values[key] = tuple(values.get(key, ()))
    data = DataSpec(**values)
    if data.source not in DATA_SOURCES:
        raise SpecError(f"{where} source = {data.source!r}; use one of {DATA_SOURCES}.")
    if data.source == "file" and not data.path:
        raise SpecError(f"{where} needs path = '...' when source = 'file'.")
    if data.source == "file" and not data.outcomes:
        raise SpecError(f"{where} needs outcomes = ['...'].")
    if data.outside_window not in ("error", "adjust"):
        raise SpecError(
            f"{where} outside_window = {data.outside_window!r}; use 'error' or 'adjust'."
        )
    return data


def parse_spec(
    raw: dict[str, Any], *, spec_path: str | None = None, data_dir: str | None = None
) -> RunSpec:
    """Validate a parsed TOML document and build a :class:`RunSpec`."""
    top = {"title", "seed", "data", "estimate", "inference", "figures", "claims", "power"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise SpecError(f"Unknown top-level key(s) {unknown}; allowed: {sorted(top)}.")
    data_raw = dict(_fields(DataSpec, _table(raw, "data"), "[data]"))
    for key in ("outcomes", "covariates"):
        if isinstance(data_raw.get(key), str):
            data_raw[key] = [data_raw[key]]
        data_raw[key] = tuple(data_raw.get(key, ()))
    data = DataSpec(**data_raw)
    if data.source not in DATA_SOURCES:
        raise SpecError(f"[data] source = {data.source!r}; use one of {DATA_SOURCES}.")
    if data.source == "file" and not data.path:
        raise SpecError("[data] needs path = '...' when source = 'file'.")
    if data.source == "file" and not data.outcomes:
        raise SpecError("[data] needs outcomes = ['...'].")
    if data.outside_window not in ("error", "adjust"):
        raise SpecError(
            f"[data] outside_window = {data.outside_window!r}; use 'error' or 'adjust'."
        )

    blocks = raw.get("estimate", [])
    if not isinstance(blocks, list) or not blocks:
        raise SpecError("The spec needs at least one [[estimate]] block.")
    estimates = []
    for k, block in enumerate(blocks):
        where = f"[[estimate]] number {k + 1}"
        _fields(EstimateSpec, block, where)
        for key in ("name", "estimator", "outcome"):
            if key not in block:
                raise SpecError(f"{where} lacks {key} = '...'.")
        block_data = None
        if "data" in block:
            block_data = _data_spec(block["data"], f"{where} [estimate.data]")
        estimates.append(
            EstimateSpec(
                block["name"],
                block["estimator"],
                block["outcome"],
                dict(block.get("options", {})),
                block_data,
            )
        )
    names = [e.name for e in estimates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"Estimate name(s) {dup} used twice; names must be unique.")
    from .estimators import REGISTRY

    for e in estimates:
        if e.estimator not in REGISTRY:
            raise SpecError(
                f"Estimate {e.name!r}: unknown estimator {e.estimator!r}; use one of "
                f"{sorted(REGISTRY)}."
            )
    inference = InferenceSpec(**_fields(InferenceSpec, _table(raw, "inference"), "[inference]"))
    if not 0 < inference.alpha < 1:
        raise SpecError(f"[inference] alpha must be in (0, 1); received {inference.alpha}.")
    seed = raw.get("seed", DEFAULT_SEED)
    if not isinstance(seed, int) or seed < 0:
        raise SpecError(f"seed must be a non-negative integer; received {seed!r}.")
    return RunSpec(
        title=str(raw.get("title", Path(spec_path).stem if spec_path else "zoneimpact run")),
        seed=seed,
        data=data,
        estimates=tuple(estimates),
        inference=inference,
        figures=_table(raw, "figures"),
        claims=_table(raw, "claims"),
        power=_table(raw, "power"),
        spec_path=str(Path(spec_path).resolve()) if spec_path else None,
        data_dir=str(data_dir) if data_dir else None,
    )


def default_spec_text() -> str:
    """The bundled default spec (a simulated China-like zone panel)."""
    return resources.files("zoneimpact").joinpath("default_spec.toml").read_text(encoding="utf-8")


def load_spec(
    path: str | os.PathLike[str] | None = None, *, data_dir: str | None = None
) -> RunSpec:
    """Load a spec file, or the bundled default when ``path`` is None."""
    if path is None:
        text, spec_path = default_spec_text(), None
    else:
        p = Path(path)
        if not p.exists():
            raise SpecError(f"Spec file not found: {p}")
        text, spec_path = p.read_text(encoding="utf-8"), str(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"Spec {path or 'default'} is not valid TOML: {exc}") from exc
    return parse_spec(raw, spec_path=spec_path, data_dir=data_dir)
