"""Run specifications: a TOML file parsed into a typed, validated :class:`RunSpec`.

The CLI only parses TOML and arguments into this object; the Python API takes the same
object, so a spec run from the shell and from a notebook are the same computation.
:meth:`RunSpec.resolved` returns the spec with every default filled in, which the run's
``manifest.json`` records.

Every key of every table is declared once, in the schema below (:data:`SPEC`: a
:class:`Table` of :class:`Key` entries, each with its type and range, default and
meaning). :func:`parse_spec` checks a parsed TOML document against it, so a wrong type, a
value out of range or an unknown key is a :class:`~zoneimpact.errors.SpecError` that names
the table and the key; :func:`schema_markdown` renders the same schema as the key reference
of ``docs/spec.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from . import registry
from .errors import SpecError, ZoneImpactError
from .estimators import check_options
from .simulate import SimulationDesign, design_from_dict

DATA_SOURCES = ("file", "simulate", "china")
DEFAULT_SEED = 20261122
OUTSIDE_WINDOW = ("error", "adjust")
#: in-memory pandas, or Dask data-parallel estimation (zoneimpact.distributed)
DATA_ENGINES = ("pandas", "dask")
#: the China datasets (the same tuple as ``zoneimpact.datasets.CHINA_DATASETS``)
CHINA_DATASETS = ("cities", "province_patents", "wanjiang")
CHINA_ZONE_TYPES = ("any", "etdz", "htz")
CHINA_MERGES = ("report", "aggregate")
#: power targets (the same tuple as ``zoneimpact.power.TARGETS``)
POWER_TARGETS = ("direct", "spillover", "displacement")


@dataclass(frozen=True)
class DataSpec:
    """Where the panel comes from and which columns mean what."""

    source: str = "file"
    path: str | None = None
    #: CSV field separator; None: by the file's extension (a tab for .tsv, else a comma)
    sep: str | None = None
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
    #: display labels and units of columns (outcomes) for tables, figures and the report
    labels: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    #: "dask": ``path`` is a Parquet glob estimated on a Dask cluster (docs/cluster.md)
    engine: str = "pandas"


@dataclass(frozen=True)
class EstimateSpec:
    """One estimate block: a name, an estimator, an outcome and its options."""

    name: str
    estimator: str
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None
    #: display name of the estimate in tables and legends (default: the estimator's)
    label: str | None = None


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
    # SHA-256 of the spec file's bytes as read (the run's manifest records it)
    spec_sha256: str | None = None

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


# ---------------------------------------------------------------------- the schema
REQUIRED = "required"
UNSET = "—"


@dataclass(frozen=True)
class Key:
    """One key of a spec table: its type and range, default and meaning.

    Parameters
    ----------
    type : str
        The allowed type and range, as error messages and ``docs/spec.md`` show them.
    check : callable
        Predicate on the parsed TOML value: true when the value is allowed.
    default : str
        The default as written in TOML, :data:`REQUIRED`, or :data:`UNSET` (not set).
    doc : str
        What the key means, in one line.
    normalise : callable, optional
        Turns an accepted value into the stored one (e.g. one string into a 1-tuple).
    table : Table, optional
        A sub-table's schema: the value is checked against it key by key.
    array_of : Table, optional
        The schema of each table of an array of tables (``[[estimate]]``).
    """

    type: str
    check: Callable[[Any], bool]
    default: str = UNSET
    doc: str = ""
    normalise: Callable[[Any], Any] | None = None
    table: Table | None = None
    array_of: Table | None = None


@dataclass(frozen=True)
class Table:
    """The schema of one spec table.

    Parameters
    ----------
    name : str
        The table's TOML header (``"[data]"``; ``""`` for the top level).
    doc : str
        What the table is for.
    keys : mapping of str to Key
        Every key the table may hold; any other key is an error.
    check : callable, optional
        ``check(values, where)`` runs once every key passed its own check and raises
        :class:`SpecError` for an invalid combination of keys (e.g. ``source = "file"``
        without ``path``).
    same_as : str, optional
        The table with the same keys, types and defaults (the docs list them once).
    """

    name: str
    doc: str
    keys: Mapping[str, Key]
    check: Callable[[dict[str, Any], str], None] | None = None
    same_as: str | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # TOML has nan and inf; no key of the schema means them
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(_is_text(v) for v in value)


def _is_numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def _is_year_numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(
        re.fullmatch(r"-?\d+", str(k)) is not None and _is_number(v) for k, v in value.items()
    )


def _toml(value: Any) -> str:
    """A default value as written in TOML (:data:`UNSET` for none)."""
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return repr(value)


def _default(cls: Any, name: str) -> str:
    """The default of dataclass field ``name`` in TOML form (one copy: the dataclass's)."""
    f = next(f for f in fields(cls) if f.name == name)
    if f.default is not MISSING:
        return _toml(f.default)
    if f.default_factory is not MISSING:
        return _toml(f.default_factory())
    return REQUIRED


def _one_of(choices: tuple[str, ...], default: str, doc: str) -> Key:
    return Key(
        "one of " + ", ".join(f'"{c}"' for c in choices),
        lambda v: isinstance(v, str) and v in choices,
        default,
        doc,
    )


def _text(default: str, doc: str) -> Key:
    return Key("non-empty string", _is_text, default, doc)


def _texts(default: str, doc: str) -> Key:
    """An array of strings; one string is accepted as a one-element array (as before)."""
    return Key(
        "array of non-empty strings (one string = one element)",
        lambda v: _is_text(v) or _is_texts(v),
        default,
        doc,
        normalise=lambda v: (v,) if isinstance(v, str) else tuple(v),
    )


def _text_table(default: str, doc: str) -> Key:
    return Key(
        "table of column name = string",
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        default,
        doc,
        normalise=dict,
    )


def _free_table(type_: str, doc: str, default: str = "{}") -> Key:
    return Key(type_, _is_table, default, doc, normalise=dict)


def _sub(table: Table, doc: str, default: str = "{}") -> Key:
    return Key(f"table (see {table.name})", _is_table, default, doc, table=table)


def _alpha(default: str, doc: str) -> Key:
    return Key("number in (0, 1)", lambda v: _is_number(v) and 0 < v < 1, default, doc)


def _n_jobs(default: str, doc: str) -> Key:
    return Key(
        "integer >= 1, or -1 for all cores",
        lambda v: _is_int(v) and (v >= 1 or v == -1),
        default,
        doc,
    )


def _estimator(default: str, doc: str) -> Key:
    # registered names are checked by the table's check (the registry is imported lazily)
    return Key("non-empty string: a registered estimator", _is_text, default, doc)


def _simulate_key(name: str, annotation: str) -> Key:
    """A ``[data.simulate]`` key, typed by its :class:`SimulationDesign` field annotation."""
    default, doc = _default(SimulationDesign, name), f"`SimulationDesign.{name}`"
    if name in ("n_units", "n_regions"):
        return Key("integer >= 1", lambda v: _is_int(v) and v >= 1, default, doc)
    if annotation == "int":
        return Key("integer", _is_int, default, doc)
    if annotation == "float":
        return Key("number", _is_number, default, doc)
    if annotation == "bool":
        return Key("boolean", lambda v: isinstance(v, bool), default, doc)
    if annotation.startswith("dict[int, float]"):
        return Key('table of "year" = number', _is_year_numbers, default, doc)
    return Key("any value", lambda v: True, default, doc)  # tests/test_spec_schema.py forbids


def _check_simulate(values: dict[str, Any], where: str) -> None:
    try:  # the design's own range checks (shares, wave years, units per region)
        design_from_dict(values)
    except ZoneImpactError as exc:
        raise SpecError(f"{where}: {exc}") from exc


def _check_china(values: dict[str, Any], where: str) -> None:
    first, last = values.get("first_year"), values.get("last_year")
    if first is not None and last is not None and first > last:
        raise SpecError(f"{where} first_year = {first} is after last_year = {last}.")


#: the [data] keys each source reads (any other key given is an error, not ignored)
_DATA_COMMON = ("source", "outcomes", "labels", "units", "engine")
DATA_KEYS_BY_SOURCE: dict[str, tuple[str, ...]] = {
    "file": (
        *_DATA_COMMON,
        "path",
        "sep",
        "unit",
        "time",
        "cohort",
        "treatment",
        "treated_units",
        "covariates",
        "outside_window",
        "geography",
        "adjacency",
    ),
    # the simulated panel's columns are fixed; covariates must be among its covariates
    "simulate": (*_DATA_COMMON, "covariates", "simulate"),
    # the China panels fix unit, time, cohort, geography and outside_window = "adjust"
    "china": (*_DATA_COMMON, "covariates", "china"),
}


def _check_data(values: dict[str, Any], where: str) -> None:
    source = values.get("source", "file")
    allowed = DATA_KEYS_BY_SOURCE[source]
    stray = [k for k in values if k not in allowed]
    if stray:
        raise SpecError(
            f'{where} source = "{source}" does not use key(s) {stray}; remove them (or set the '
            f'source they belong to). The keys of source = "{source}" are: '
            f"{', '.join(allowed)}."
        )
    if values.get("engine", "pandas") == "dask" and (
        source != "file" or values.get("treated_units")
    ):
        raise SpecError(
            f'{where} engine = "dask" reads a Parquet glob: it needs source = "file", path and '
            "cohort or treatment (not treated_units)."
        )
    if source != "file":
        return
    if not values.get("path"):
        raise SpecError(f"{where} needs path = '...' when source = 'file'.")
    if not values.get("outcomes"):
        raise SpecError(f"{where} needs outcomes = ['...'].")
    given = [k for k in ("cohort", "treatment", "treated_units") if values.get(k)]
    if len(given) != 1:
        raise SpecError(
            f"{where} needs exactly one of cohort = '...' (column of first treated periods), "
            "treatment = '...' (0/1 column) and treated_units = {unit = first period}; "
            f"received {', '.join(given) if given else 'none'}."
        )


def _data_table(name: str, doc: str, same_as: str | None = None) -> Table:
    """``[data]``, or an estimate block's own ``[estimate.data]`` (the same keys)."""
    simulate = Table(
        name[:-1] + ".simulate]",
        'The simulated panel when source = "simulate": fields of '
        "`zoneimpact.simulate.SimulationDesign`, typed by their annotations; the design "
        "is built, and its own range checks run, when the spec is read.",
        {f.name: _simulate_key(f.name, str(f.type)) for f in fields(SimulationDesign)},
        _check_simulate,
        same_as and same_as[:-1] + ".simulate]",
    )
    china = Table(
        name[:-1] + ".china]",
        'The China zone study panels when source = "china" (see `docs/china_data.md`).',
        {
            "dataset": _one_of(CHINA_DATASETS, '"cities"', "which panel"),
            "zone_type": _one_of(CHINA_ZONE_TYPES, '"any"', "zones that define treatment"),
            "first_year": Key("integer", _is_int, UNSET, "first year of the window"),
            "last_year": Key("integer", _is_int, UNSET, "last year of the window"),
            "merges": _one_of(
                CHINA_MERGES, '"report"', "merged prefectures: report or aggregate them"
            ),
            "region": _text(UNSET, 'keep one belt ("east", "central", "west")'),
        },
        _check_china,
        same_as and same_as[:-1] + ".china]",
    )

    def default(key: str) -> str:
        return _default(DataSpec, key)

    keys = {
        "source": _one_of(DATA_SOURCES, default("source"), "where the panel comes from"),
        "path": _text(
            default("path"),
            "data file, read by extension: .csv/.tsv/.txt, .parquet, Stata .dta, .feather; "
            'needed if source = "file"',
        ),
        "sep": Key(
            "one-character string",
            lambda v: isinstance(v, str) and len(v) == 1,
            "by extension",
            'CSV field separator; by default a tab for .tsv, a comma otherwise (source = "file")',
        ),
        "unit": _text(default("unit"), 'unit column (source = "file")'),
        "time": _text(default("time"), 'period column (source = "file")'),
        "cohort": _text(
            default("cohort"), 'column of first treated periods (0/empty = never) (source = "file")'
        ),
        "treatment": _text(
            default("treatment"), '0/1 absorbing treatment column (source = "file")'
        ),
        "outcomes": _texts(default("outcomes"), 'outcome columns (needed if source = "file")'),
        "covariates": _texts(
            default("covariates"), "covariate columns (simulate: among the simulated panel's)"
        ),
        "treated_units": Key(
            "table of unit name = integer first treated period",
            lambda v: isinstance(v, dict) and all(_is_int(x) for x in v.values()),
            default("treated_units"),
            "instead of cohort/treatment: the treated units by name; units not listed are never "
            'treated, and a period 0 is a period, not never (source = "file")',
            normalise=dict,
        ),
        "outside_window": _one_of(
            OUTSIDE_WINDOW,
            default("outside_window"),
            'always-treated units, late cohorts (source = "file")',
        ),
        "geography": _text(
            default("geography"), 'file with unit, region, lat, lon (source = "file")'
        ),
        "adjacency": _text(default("adjacency"), 'file with unit, neighbour (source = "file")'),
        "simulate": _sub(simulate, 'the simulated panel (source = "simulate")'),
        "china": _sub(china, 'the China panel (source = "china")'),
        "labels": _text_table(default("labels"), 'display labels, e.g. {fdi = "FDI inflow"}'),
        "units": _text_table(default("units"), 'units, e.g. {fdi = "million USD"}'),
        "engine": _one_of(
            DATA_ENGINES,
            default("engine"),
            '"dask": path is a Parquet glob estimated on Dask (docs/cluster.md)',
        ),
    }
    return Table(name, doc, keys, _check_data, same_as)


def _check_estimate(values: dict[str, Any], where: str) -> None:
    if registry.entry(values["estimator"]) is None:
        raise SpecError(
            f"{where}: unknown estimator {values['estimator']!r}; use one of "
            f"{sorted(registry.names())}."
        )


def _check_claims(values: dict[str, Any], where: str) -> None:
    try:  # claims.py passes [claims.spillover] to spillover.fit as keywords
        check_options("spillover", values.get("spillover", {}))
    except SpecError as exc:
        raise SpecError(f"{where} spillover: {exc}") from exc
    conc = values.get("concentration", {})
    if not isinstance(conc, dict):
        raise SpecError(f"{where} concentration must be a table; received {conc!r}.")
    unknown = sorted(set(conc) - {"base_estimator", "options", "share_options"})
    if unknown:
        raise SpecError(
            f"{where} concentration has unknown key(s) {unknown}; allowed: base_estimator, "
            "options, share_options."
        )
    share = conc.get("share_options", {})
    if not isinstance(share, dict):
        raise SpecError(f"{where} concentration share_options must be a table; received {share!r}.")
    try:  # the share is a spillover fit: [claims.spillover], then these, override
        check_options("spillover", share)
    except SpecError as exc:
        raise SpecError(f"{where} concentration share_options: {exc}") from exc
    base = conc.get("base_estimator", "imputation")
    opts = conc.get("options", {})
    if not isinstance(base, str) or registry.entry(base) is None:
        raise SpecError(
            f"{where} concentration base_estimator = {base!r}: unknown estimator; use one of "
            f"{sorted(registry.names())}."
        )
    if not isinstance(opts, dict):
        raise SpecError(f"{where} concentration options must be a table; received {opts!r}.")
    try:  # the HHI fit takes these options; region_column is read by claims.run_claims
        check_options(base, {k: v for k, v in opts.items() if k != "region_column"})
    except SpecError as exc:
        raise SpecError(f"{where} concentration: {exc}") from exc


def _check_power(values: dict[str, Any], where: str) -> None:
    if "estimator" in values and registry.entry(values["estimator"]) is None:
        raise SpecError(
            f"{where} estimator = {values['estimator']!r}: unknown estimator; use one of "
            f"{sorted(registry.names())}."
        )


def _check_spec(values: dict[str, Any], where: str) -> None:
    """Checks across tables: unique estimate names, and names elsewhere that refer to them."""
    names = [b["name"] for b in values["estimate"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"Estimate name(s) {dup} used twice; names must be unique.")
    unknown = [n for n in values.get("figures", {}).get("event_study", []) if n not in names]
    if unknown:
        raise SpecError(f"[figures] event_study names {unknown}, which are not estimate names.")
    breakdown = values.get("claims", {}).get("breakdown_from")
    if breakdown is not None and breakdown not in names:
        raise SpecError(f"[claims] breakdown_from = {breakdown!r} names no estimate block.")


DATA = _data_table("[data]", "The panel: where it comes from and which columns mean what.")
ESTIMATE = Table(
    "[[estimate]]",
    "One table per estimate; each gets its own child random generator spawned from `seed`, "
    "in block order.",
    {
        "name": _text(REQUIRED, "unique name of the estimate"),
        "estimator": _estimator(REQUIRED, "twfe, event_study, callaway_santanna, ..."),
        "outcome": _text(REQUIRED, "outcome column"),
        "label": _text(UNSET, "display name in tables and legends (default: the estimator's)"),
        "options": _free_table(
            "table", "keyword arguments of the estimator's fit() (names checked by the run)"
        ),
        "data": _sub(
            _data_table(
                "[estimate.data]",
                "An estimate block's own data, instead of `[data]`: the same keys, types and "
                "defaults as `[data]`.",
                same_as="[data]",
            ),
            "this block's own data",
            "[data]",
        ),
    },
    _check_estimate,
)
INFERENCE = Table(
    "[inference]",
    "Settings shared by every estimate block.",
    {
        "alpha": _alpha(_default(InferenceSpec, "alpha"), "test level (CIs are 1 - alpha)"),
        "n_jobs": _n_jobs(
            _default(InferenceSpec, "n_jobs"),
            "joblib workers for bootstraps and placebos (identical results)",
        ),
    },
)
FIGURES = Table(
    "[figures]",
    "Figure choices of the run directory.",
    {
        "event_study": Key(
            "array of estimate names",
            _is_texts,
            "one per estimator, up to 5",
            "event studies overlaid in one figure",
        )
    },
)
CLAIMS = Table(
    "[claims]",
    "Settings of `python -m zoneimpact claims` (`zoneimpact.claims.claims_for_spec`).",
    {
        "file": _text('"seeds/claims.toml"', "claims TOML (relative to the spec file)"),
        "linked_specs": Key(
            "boolean",
            lambda v: isinstance(v, bool),
            "false",
            "also run the specs that spec-bound claims name",
        ),
        "data_name": _text('"data"', "label of the spec's data in the verdict table"),
        "breakdown_from": _text(
            UNSET, "estimate whose event study gives the Rambachan-Roth breakdown value"
        ),
        "spillover": _free_table(
            "table of `spillover.fit` options",
            "options of zoneimpact.estimators.spillover.fit; names checked against it",
        ),
        "concentration": _sub(
            Table(
                "[claims.concentration]",
                "How concentration claims are estimated (`zoneimpact.concentration`).",
                {
                    "base_estimator": _estimator('"imputation"', "estimator of the HHI panel"),
                    "options": _free_table("table", "its fit() options, and region_column"),
                    "share_options": _free_table(
                        "table of `spillover.fit` options",
                        "the share's spillover fit: over [claims.spillover] (e.g. its exposure "
                        "map), for the share only",
                    ),
                },
            ),
            "concentration claims",
        ),
        "curve": _sub(
            Table(
                "[claims.curve]",
                "The China specification curve and referee tables "
                "(`zoneimpact.china.speccurve`; issue 17).",
                {
                    "samples": _texts('["full", "no_flagged", "to2020"]', "samples of the curve"),
                    "cs_inference": _text(
                        '"jackknife"',
                        'variance of the curve\'s CS rows: "jackknife" (delete-one-province CV3) '
                        'or "analytic" (influence function; runs in a fraction of the time, '
                        "for a quick look: its SEs ran short on China's structure)",
                    ),
                    "event_studies": _texts(
                        "[]", "CS event studies (universal base) for Rambachan-Roth sensitivity"
                    ),
                    "breakdown_by_scale": _text_table(
                        "{}", "scale -> event study whose breakdown values the verdicts show"
                    ),
                },
            ),
            "the China specification curve (absent: none)",
        ),
    },
    _check_claims,
)
POWER = Table(
    "[power]",
    "Settings of `python -m zoneimpact power` (`zoneimpact.power.power_from_spec`).",
    {
        "outcome": _text("first [data] outcome", "outcome to calibrate on"),
        "estimator": _estimator('"callaway_santanna"', "direct-effect estimator"),
        "options": _free_table("table", "its fit() options"),
        "effect_grid": Key("array of numbers", _is_numbers, "0 to 2 x the MDE", "direct effects"),
        "spillover_grid": Key("array of numbers", _is_numbers, "0 to 2 x the MDE", "spillovers"),
        "displacement_grid": Key(
            "array of numbers",
            _is_numbers,
            "[0, 0.1, 0.25, 0.5, 0.75, 1]",
            "displacement shares",
        ),
        "displacement_direct": Key(
            "number", _is_number, "2 x the direct MDE", "direct effect of displacement runs"
        ),
        "targets": Key(
            "array of " + ", ".join(f'"{t}"' for t in POWER_TARGETS),
            lambda v: isinstance(v, list) and all(t in POWER_TARGETS for t in v),
            "all the design allows",
            "what is tested",
        ),
        "n_reps": Key(
            "integer >= 1", lambda v: _is_int(v) and v >= 1, "200", "replications per effect"
        ),
        "alpha": _alpha("[inference] alpha", "test level"),
        "power": _alpha("0.8", "target power of the MDE"),
        "n_jobs": _n_jobs("[inference] n_jobs", "joblib workers"),
        "exposure": Key(
            "string or boolean",
            lambda v: isinstance(v, str | bool),
            "true",
            "exposure map (true: the panel's default; false: none)",
        ),
        "spillover_options": _free_table("table", "options of spillover.fit"),
    },
    _check_power,
)
SPEC = Table(
    "",
    "Keys outside any table.",
    {
        "title": Key(
            "string", lambda v: isinstance(v, str), "the spec file's name", "title of the run"
        ),
        "seed": Key(
            "integer >= 0",
            lambda v: _is_int(v) and v >= 0,
            str(DEFAULT_SEED),
            "the one source of randomness of the run",
        ),
        "data": _sub(DATA, "the panel"),
        "estimate": Key(
            "array of [[estimate]] tables (at least one)",
            lambda v: isinstance(v, list) and bool(v) and all(isinstance(b, dict) for b in v),
            REQUIRED,
            "the estimates",
            array_of=ESTIMATE,
        ),
        "inference": _sub(INFERENCE, "settings shared by the estimates"),
        "figures": _sub(FIGURES, "figure choices"),
        "claims": _sub(CLAIMS, "claims settings"),
        "power": _sub(POWER, "power analysis settings"),
    },
    _check_spec,
)


# ---------------------------------------------------------------------- checking
_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string"}
_TOML_TYPES.update({list: "array", dict: "table"})


def _show(value: Any) -> str:
    """A received value and its TOML type, for messages."""
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


def _mismatch(label: str, key: Key, value: Any) -> SpecError:
    """The error of a value that fails its key's check: table, key, value, type, allowed."""
    hint = ""
    numeric = key.type.startswith(("integer", "number"))
    if numeric and isinstance(value, bool):
        hint = "; true/false is not a number"
    elif isinstance(value, float) and not math.isfinite(value):
        hint = "; nan and inf are not allowed"
    elif isinstance(value, list) and any(
        isinstance(v, float) and not math.isfinite(v) for v in value
    ):
        hint = "; nan and inf are not allowed"
    elif numeric and isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.eE+-]+\s*", value):
        hint = f"; write {value.strip()} without quotes"
    elif key.type.startswith("table") and not isinstance(value, dict):
        hint = "; write a table as {name = value, ...} or under its own [header]"
    elif key.type.startswith("array") and isinstance(value, str | int | float):
        hint = "; write an array as [..., ...]"
    return SpecError(f"{label} = {_show(value)}: expected {key.type}{hint}.")


def _label(where: str, key: str) -> str:
    return f"{where} {key}" if where else key


def _check_table(value: Any, table: Table, where: str, within: str = "") -> dict[str, Any]:
    """Check ``value`` against ``table``; return the checked (and normalised) values.

    Parameters
    ----------
    value : Any
        The parsed TOML table.
    table : Table
        Its schema.
    where : str
        The table as messages name it (``"[data]"``, ``"[[estimate]] number 2 ('cs')"``;
        ``""`` at the top level).
    within : str
        Put before ``where`` inside an estimate block (``"[[estimate]] number 2 ('cs') "``).

    Returns
    -------
    dict
        The keys given, checked and normalised (defaults are the dataclasses' business).
    """
    loc = within + where
    if not isinstance(value, dict):
        raise SpecError(f"{loc or 'The spec'} must be a table; received {_show(value)}.")
    valid = "; ".join(f"{k} = {key.type}" for k, key in table.keys.items())
    unknown = sorted(k for k in value if k not in table.keys)
    if unknown:
        head = (
            f"Unknown key(s) {unknown} in {loc}" if loc else f"Unknown top-level key(s) {unknown}"
        )
        near = [
            f"{m[0]!r} for {u!r}"
            for u in unknown
            if (m := difflib.get_close_matches(u, list(table.keys), n=1))
        ]
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise SpecError(f"{head}; valid keys: {valid}.{hint}")
    for name, key in table.keys.items():
        if key.default == REQUIRED and name not in value:
            raise SpecError(f"{_label(loc, name)} is required: {key.type}.")
    inner = within or (f"{where} " if where and where != table.name else "")
    out: dict[str, Any] = {}
    for name, given in value.items():
        key = table.keys[name]
        if not key.check(given):
            raise _mismatch(_label(loc, name), key, given)
        if key.table is not None:
            out[name] = _check_table(given, key.table, key.table.name, inner)
        elif key.array_of is not None:
            sub = key.array_of
            out[name] = [
                _check_table(
                    block,
                    sub,
                    f"{sub.name} number {k + 1}"
                    + (f" ({block['name']!r})" if isinstance(block.get("name"), str) else ""),
                    inner,
                )
                for k, block in enumerate(given)
            ]
        else:
            out[name] = key.normalise(given) if key.normalise is not None else given
    if table.check is not None:
        table.check(out, loc or "The spec")
    return out


def parse_spec(
    raw: dict[str, Any], *, spec_path: str | None = None, data_dir: str | None = None
) -> RunSpec:
    """Check a parsed TOML document against the schema and build a :class:`RunSpec`.

    Parameters
    ----------
    raw : dict
        The parsed TOML document (``tomllib.loads``).
    spec_path : str, optional
        The spec file (relative paths in the spec are relative to it).
    data_dir : str, optional
        The ``{data_dir}`` of the spec's paths (else ``$ZONEIMPACT_DATA`` or the default).

    Returns
    -------
    RunSpec

    Raises
    ------
    SpecError
        A key of the wrong type or out of range, an unknown or missing key, or an invalid
        combination; the message names the table and the key, the value received and its
        type, and what is allowed (see ``docs/spec.md``).
    """
    values = _check_table(raw, SPEC, "")
    estimates = tuple(
        EstimateSpec(**{**b, "data": DataSpec(**b["data"]) if "data" in b else None})
        for b in values["estimate"]
    )
    return RunSpec(
        title=values.get("title", Path(spec_path).stem if spec_path else "zoneimpact run"),
        seed=values.get("seed", DEFAULT_SEED),
        data=DataSpec(**values.get("data", {})),
        estimates=estimates,
        inference=InferenceSpec(**values.get("inference", {})),
        figures=values.get("figures", {}),
        claims=values.get("claims", {}),
        power=values.get("power", {}),
        spec_path=str(Path(spec_path).resolve()) if spec_path else None,
        data_dir=str(data_dir) if data_dir else None,
    )


def schema_tables(table: Table = SPEC) -> Iterator[Table]:
    """Every table of the schema, depth first (tables with ``same_as`` are not entered)."""
    yield table
    if table.same_as is None:
        for key in table.keys.values():
            sub = key.table or key.array_of
            if sub is not None:
                yield from schema_tables(sub)


def schema_markdown() -> str:
    """The schema as Markdown tables (the key reference in ``docs/spec.md``)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = []
    for t in schema_tables():
        out += [f"### `{t.name}`" if t.name else "### Top level", "", t.doc, ""]
        if t.same_as is not None:
            continue
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        out += [
            f"| `{k}` | {cell(key.type)} | {cell(key.default)} | {cell(key.doc)} |"
            for k, key in t.keys.items()
        ]
        out.append("")
    return "\n".join(out)


def default_spec_text() -> str:
    """The bundled default spec (a simulated China-like zone panel)."""
    return resources.files("zoneimpact").joinpath("default_spec.toml").read_text(encoding="utf-8")


def load_spec(
    path: str | os.PathLike[str] | None = None, *, data_dir: str | None = None
) -> RunSpec:
    """Load a spec file, or the bundled default when ``path`` is None."""
    digest = None
    if path is None:
        text, spec_path = default_spec_text(), None
    else:
        if not isinstance(path, str | os.PathLike):
            raise SpecError(
                f"The spec must be a path to a TOML file; received {path!r} "
                f"({type(path).__name__})."
            )
        p = Path(path)
        if str(path) == "" or "\x00" in str(path):
            raise SpecError(f"Spec file name {str(path)!r} is empty or holds a NUL character.")
        if not p.exists():
            raise SpecError(f"Spec file not found: {p}")
        if p.is_dir():
            raise SpecError(f"Spec {p} is a folder; give the path of a TOML file.")
        if not p.is_file():
            raise SpecError(
                f"Spec {p} is not a regular file (a pipe, socket or device); give the path of a "
                "TOML file."
            )
        try:
            data = p.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"Spec {p} is not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files "
                "are UTF-8. Save it as UTF-8."
            ) from None
        except OSError as exc:
            raise SpecError(f"Cannot read spec {p}: {exc.strerror or exc}.") from None
        spec_path = str(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"Spec {path or 'default'} is not valid TOML: {exc}") from exc
    spec = parse_spec(raw, spec_path=spec_path, data_dir=data_dir)
    return spec if digest is None else replace(spec, spec_sha256=digest)
