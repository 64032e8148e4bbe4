"""The run spec schema: every key typed and range-checked in one place (zoneimpact/spec.py).

Each bad value is a SpecError whose message names the table and the key, the value received
and its TOML type, and what is allowed; an unknown key lists the valid keys with their
types. Every committed spec, and the bundled default, still parses.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zoneimpact import datasets, power
from zoneimpact.errors import SpecError
from zoneimpact.estimators import REGISTRY
from zoneimpact.simulate import SimulationDesign
from zoneimpact.spec import (
    CHINA_DATASETS,
    POWER_TARGETS,
    SPEC,
    DataSpec,
    EstimateSpec,
    InferenceSpec,
    Table,
    load_spec,
    parse_spec,
    schema_markdown,
    schema_tables,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED_SPECS = sorted((REPO / "specs").rglob("*.toml"))

BASE = """
title = "schema test"
seed = 7

[data]
path = "panel.csv"
unit = "u"
time = "t"
cohort = "g"
outcomes = ["y"]

[inference]
alpha = 0.05
n_jobs = 1

[[estimate]]
name = "cs"
estimator = "callaway_santanna"
outcome = "y"
[estimate.options]
control_group = "never_treated"

[figures]
event_study = ["cs"]
"""

SIMULATED = {"source": "simulate", "outcomes": ["fdi"], "simulate": {"n_units": 60}}


def at(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting ``value`` at ``path`` of the raw spec (creating tables on the way)."""

    def edit(raw: dict[str, Any]) -> None:
        node: Any = raw
        for step in path[:-1]:
            node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
        node[path[-1]] = value

    return edit


def simulated(**design: Any) -> Callable[[dict[str, Any]], None]:
    """An edit making [data] a simulated panel with ``design`` in [data.simulate]."""

    def edit(raw: dict[str, Any]) -> None:
        raw["data"] = copy.deepcopy(SIMULATED)
        raw["data"]["simulate"].update(design)
        raw["estimate"][0]["outcome"] = "fdi"

    return edit


def base() -> dict[str, Any]:
    return tomllib.loads(BASE)


def parse_error(edit: Callable[[dict[str, Any]], None]) -> str:
    raw = base()
    edit(raw)
    with pytest.raises(SpecError) as exc:
        parse_spec(raw)
    return str(exc.value)


def test_base_spec_is_valid():
    spec = parse_spec(base())
    assert spec.seed == 7 and spec.inference.n_jobs == 1 and spec.data.outcomes == ("y",)


# ---------------------------------------------------------------------- one case per defect
@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        # the reported defects
        pytest.param(
            at("seed", value=True),
            ["seed = true (boolean)", "expected integer >= 0", "true/false is not a number"],
            id="seed-true-is-not-seed-1",
        ),
        pytest.param(
            at("inference", "n_jobs", value="two"),
            ["[inference] n_jobs = 'two' (string)", "expected integer >= 1, or -1 for all cores"],
            id="n_jobs-string",
        ),
        pytest.param(
            at("inference", "n_jobs", value=0),
            ["[inference] n_jobs = 0 (integer)", "expected integer >= 1, or -1 for all cores"],
            id="n_jobs-zero",
        ),
        pytest.param(
            at("inference", "alpha", value="0.05"),
            [
                "[inference] alpha = '0.05' (string)",
                "expected number in (0, 1)",
                "write 0.05 without quotes",
            ],
            id="alpha-string",
        ),
        pytest.param(
            at("data", "outcomes", value=5),
            ["[data] outcomes = 5 (integer)", "expected array of non-empty strings"],
            id="outcomes-integer",
        ),
        pytest.param(
            at("estimate", 0, "options", value="fast"),
            ["[[estimate]] number 1 ('cs') options = 'fast' (string)", "expected table"],
            id="options-string",
        ),
        # bool as a number
        pytest.param(
            at("inference", "n_jobs", value=True),
            ["[inference] n_jobs = true (boolean)", "true/false is not a number"],
            id="n_jobs-bool",
        ),
        pytest.param(
            at("inference", "alpha", value=True),
            ["[inference] alpha = true (boolean)", "expected number in (0, 1)"],
            id="alpha-bool",
        ),
        pytest.param(
            at("data", "treated_units", value={"California": True}),
            ["[data] treated_units = {'California': True} (table)", "integer first treated"],
            id="treated_units-bool",
        ),
        # strings for numbers
        pytest.param(
            at("seed", value="7"),
            ["seed = '7' (string)", "expected integer >= 0", "write 7 without quotes"],
            id="seed-string",
        ),
        pytest.param(
            at("power", "n_reps", value="200"),
            ["[power] n_reps = '200' (string)", "expected integer >= 1"],
            id="power-n_reps-string",
        ),
        # numbers of the wrong kind or out of range
        pytest.param(
            at("seed", value=-1), ["seed = -1 (integer)", "expected integer >= 0"], id="seed-neg"
        ),
        pytest.param(
            at("seed", value=7.0), ["seed = 7.0 (float)", "expected integer >= 0"], id="seed-float"
        ),
        pytest.param(
            at("inference", "n_jobs", value=-2),
            ["[inference] n_jobs = -2 (integer)", "or -1 for all cores"],
            id="n_jobs-minus-two",
        ),
        pytest.param(
            at("inference", "n_jobs", value=2.0),
            ["[inference] n_jobs = 2.0 (float)", "expected integer >= 1"],
            id="n_jobs-float",
        ),
        pytest.param(
            at("inference", "alpha", value=0),
            ["[inference] alpha = 0 (integer)", "expected number in (0, 1)"],
            id="alpha-zero",
        ),
        pytest.param(
            at("inference", "alpha", value=1.5),
            ["[inference] alpha = 1.5 (float)", "expected number in (0, 1)"],
            id="alpha-above-one",
        ),
        pytest.param(
            at("power", "alpha", value=-0.1),
            ["[power] alpha = -0.1 (float)", "expected number in (0, 1)"],
            id="power-alpha-negative",
        ),
        pytest.param(
            at("power", "n_jobs", value=0),
            ["[power] n_jobs = 0 (integer)", "or -1 for all cores"],
            id="power-n_jobs-zero",
        ),
        # outcomes / covariates not a list of strings
        pytest.param(
            at("data", "outcomes", value=["y", 3]),
            ["[data] outcomes = ['y', 3] (array)", "expected array of non-empty strings"],
            id="outcomes-mixed",
        ),
        pytest.param(
            at("data", "covariates", value={"x": 1}),
            ["[data] covariates = {'x': 1} (table)", "expected array of non-empty strings"],
            id="covariates-table",
        ),
        pytest.param(
            at("data", "outcomes", value=[""]),
            ["[data] outcomes = [''] (array)", "non-empty strings"],
            id="outcomes-empty-string",
        ),
        # options and other tables that are not tables
        pytest.param(
            at("estimate", 0, "options", value=["fast"]),
            ["[[estimate]] number 1 ('cs') options = ['fast'] (array)", "expected table"],
            id="options-array",
        ),
        pytest.param(
            at("inference", value=5),
            ["inference = 5 (integer)", "expected table (see [inference])"],
            id="inference-not-table",
        ),
        pytest.param(
            at("data", "simulate", value="default"),
            ["[data] simulate = 'default' (string)", "expected table (see [data.simulate])"],
            id="simulate-not-table",
        ),
        # strings: path, sep, choices
        pytest.param(
            at("data", "path", value=3),
            ["[data] path = 3 (integer)", "expected non-empty string"],
            id="path-integer",
        ),
        pytest.param(
            at("data", "sep", value=";;"),
            ["[data] sep = ';;' (string)", "expected one-character string"],
            id="sep-two-characters",
        ),
        pytest.param(
            at("data", "outside_window", value="drop"),
            ["[data] outside_window = 'drop' (string)", 'one of "error", "adjust"'],
            id="outside_window-choice",
        ),
        pytest.param(
            at("data", "source", value="ftp"),
            ["[data] source = 'ftp' (string)", 'one of "file", "simulate", "china"'],
            id="source-choice",
        ),
        pytest.param(
            at("data", "geography", value=["geo.csv"]),
            ["[data] geography = ['geo.csv'] (array)", "expected non-empty string"],
            id="geography-array",
        ),
        pytest.param(
            at("title", value=5), ["title = 5 (integer)", "expected string"], id="title-integer"
        ),
        # [estimate.data]
        pytest.param(
            at("estimate", 0, "data", value={"path": "x.csv", "cohort": "g", "outcomes": 5}),
            [
                "[[estimate]] number 1 ('cs') [estimate.data] outcomes = 5 (integer)",
                "expected array of non-empty strings",
            ],
            id="estimate-data-outcomes",
        ),
        # [data.simulate]: types from SimulationDesign, ranges from its own checks
        pytest.param(
            simulated(n_units="many"),
            ["[data.simulate] n_units = 'many' (string)", "expected integer >= 1"],
            id="simulate-n_units-string",
        ),
        pytest.param(
            simulated(zone_share=True),
            ["[data.simulate] zone_share = true (boolean)", "expected number"],
            id="simulate-float-bool",
        ),
        pytest.param(
            simulated(waves={"early": 1.0}),
            ["[data.simulate] waves = {'early': 1.0} (table)", 'table of "year" = number'],
            id="simulate-waves-keys",
        ),
        pytest.param(
            simulated(zone_share=2.0),
            ["[data.simulate]", "zone_share must be in (0, 1); received 2.0"],
            id="simulate-range",
        ),
        pytest.param(
            simulated(waves={"2004": 0.5, "2008": 0.4}),
            ["[data.simulate]", "Wave shares must sum to 1"],
            id="simulate-waves-sum",
        ),
        # [data.china]
        pytest.param(
            at("data", value={"source": "china", "china": {"dataset": "towns"}}),
            ["[data.china] dataset = 'towns' (string)", '"cities", "province_patents"'],
            id="china-dataset",
        ),
        pytest.param(
            at("data", value={"source": "china", "china": {"first_year": "2000"}}),
            ["[data.china] first_year = '2000' (string)", "expected integer"],
            id="china-year-string",
        ),
        # [claims]
        pytest.param(
            at("claims", "linked_specs", value="yes"),
            ["[claims] linked_specs = 'yes' (string)", "expected boolean"],
            id="claims-bool-string",
        ),
        pytest.param(
            at("claims", "data_name", value=5),
            ["[claims] data_name = 5 (integer)", "expected non-empty string"],
            id="claims-data_name-integer",
        ),
        pytest.param(
            at("claims", "spillover", value="adjacency"),
            ["[claims] spillover = 'adjacency' (string)", "expected table of `spillover.fit`"],
            id="claims-spillover-string",
        ),
        pytest.param(
            at("claims", "spillover", value={"nboot": 99}),
            ["[claims] spillover", "'nboot'", "Valid options:", "n_boot"],
            id="claims-spillover-option",
        ),
        pytest.param(
            at("claims", "concentration", "options", value=3),
            ["[claims.concentration] options = 3 (integer)", "expected table"],
            id="claims-concentration-options",
        ),
        pytest.param(
            at("claims", "breakdown_from", value="nope"),
            ["[claims] breakdown_from = 'nope' names no estimate block"],
            id="claims-breakdown-name",
        ),
        # [figures] and [power]
        pytest.param(
            at("figures", "event_study", value="cs"),
            ["[figures] event_study = 'cs' (string)", "expected array of estimate names"],
            id="figures-string",
        ),
        pytest.param(
            at("figures", "event_study", value=["cs", "twfe"]),
            ["[figures] event_study names ['twfe']"],
            id="figures-unknown-name",
        ),
        pytest.param(
            at("power", "targets", value=["direct", "indirect"]),
            ["[power] targets = ['direct', 'indirect'] (array)", '"spillover"'],
            id="power-targets",
        ),
        pytest.param(
            at("power", "estimator", value="magic"),
            ["[power] estimator = 'magic'", "unknown estimator"],
            id="power-estimator",
        ),
        # arrays of tables, required keys, combinations
        pytest.param(
            at("estimate", value=5),
            ["estimate = 5 (integer)", "array of [[estimate]] tables (at least one)"],
            id="estimate-not-array",
        ),
        pytest.param(
            at("estimate", value=[]),
            ["estimate = [] (array)", "at least one"],
            id="estimate-empty",
        ),
        pytest.param(
            lambda raw: raw["estimate"][0].pop("outcome"),
            ["[[estimate]] number 1 ('cs') outcome is required: non-empty string"],
            id="estimate-missing-outcome",
        ),
        pytest.param(
            at("data", "treatment", value="d"),
            ["[data] needs exactly one of cohort", "received cohort, treatment"],
            id="cohort-and-treatment",
        ),
    ],
)
def test_bad_value_names_table_key_value_type_and_allowed(edit, fragments):
    message = parse_error(edit)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ---------------------------------------------------------------------- unknown keys
def _path_to(table: Table) -> tuple[str | int, ...]:
    """Where each schema table lives in a raw spec (for inserting an unknown key)."""
    return {
        "": (),
        "[data]": ("data",),
        "[data.simulate]": ("data", "simulate"),
        "[data.china]": ("data", "china"),
        "[[estimate]]": ("estimate", 0),
        "[estimate.data]": ("estimate", 0, "data"),
        "[inference]": ("inference",),
        "[figures]": ("figures",),
        "[claims]": ("claims",),
        "[claims.concentration]": ("claims", "concentration"),
        "[claims.curve]": ("claims", "curve"),
        "[power]": ("power",),
    }[table.name]


@pytest.mark.parametrize("table", list(schema_tables()), ids=lambda t: t.name or "top-level")
def test_unknown_key_lists_the_valid_keys_with_their_types(table):
    path = _path_to(table)
    raw = base()
    if path[:2] == ("data", "simulate"):
        simulated()(raw)
    elif path[:1] == ("estimate",) and len(path) > 2:
        raw["estimate"][0]["data"] = {"path": "x.csv", "cohort": "g", "outcomes": ["y"]}
    at(*path, "colour", value="red")(raw)
    with pytest.raises(SpecError) as exc:
        parse_spec(raw)
    message = str(exc.value)
    assert "['colour']" in message and "valid keys:" in message
    assert (table.name or "top-level") in message
    keys = table.keys
    for name, key in keys.items():
        assert f"{name} = {key.type}" in message, (name, message)


def test_unknown_key_suggests_the_near_one():
    message = parse_error(at("inference", "njobs", value=2))
    assert message.startswith("Unknown key(s) ['njobs'] in [inference]; valid keys: alpha =")
    assert "Did you mean 'n_jobs' for 'njobs'?" in message


# ---------------------------------------------------------------------- what still works
@pytest.mark.parametrize("path", [None, *COMMITTED_SPECS], ids=lambda p: p.name if p else "default")
def test_every_committed_spec_parses(path):
    spec = load_spec(path)
    assert spec.estimates and all(e.estimator in REGISTRY for e in spec.estimates)


def test_accepted_forms_are_kept():
    raw = base()
    raw["data"]["outcomes"] = "y"  # one string: a one-element list, as before
    raw["data"]["covariates"] = "x"
    raw["inference"] = {"alpha": 0.1, "n_jobs": -1}  # -1: joblib's all cores
    raw["seed"] = 0
    spec = parse_spec(raw)
    assert spec.data.outcomes == ("y",) and spec.data.covariates == ("x",)
    assert spec.inference == InferenceSpec(alpha=0.1, n_jobs=-1) and spec.seed == 0
    raw = base()
    del raw["data"]["cohort"]
    raw["data"]["treated_units"] = {"California": 1989}
    assert parse_spec(raw).data.treated_units == {"California": 1989}


def test_defaults_when_tables_are_left_out():
    raw = base()
    for key in ("seed", "title", "inference", "figures"):
        raw.pop(key)
    spec = parse_spec(raw, spec_path="somewhere/my_spec.toml")
    assert spec.seed == 20261122 and spec.title == "my_spec"
    assert spec.inference == InferenceSpec() and spec.figures == {}


# ---------------------------------------------------------------------- schema consistency
def test_schema_keys_are_the_dataclass_fields():
    tables = {t.name: t for t in schema_tables()}
    assert set(tables["[data]"].keys) == {f.name for f in dataclasses.fields(DataSpec)}
    assert set(tables["[inference]"].keys) == {f.name for f in dataclasses.fields(InferenceSpec)}
    assert set(tables["[[estimate]]"].keys) == {f.name for f in dataclasses.fields(EstimateSpec)}
    simulate = tables["[data.simulate]"].keys
    assert set(simulate) == {f.name for f in dataclasses.fields(SimulationDesign)}
    # a new SimulationDesign field of an unmapped type must get a declared type in spec.py
    assert all(key.type != "any value" for t in tables.values() for key in t.keys.values())
    assert set(tables["[power]"].keys) == set(power.POWER_KEYS)
    assert POWER_TARGETS == power.TARGETS
    assert CHINA_DATASETS == datasets.CHINA_DATASETS
    assert set(SPEC.keys) == {"title", "seed", "data", "estimate", "inference"} | {
        "figures",
        "claims",
        "power",
    }


def test_claims_table_holds_what_claims_reads():
    # claims_for_spec pops file, linked_specs, data_name, breakdown_from and curve and passes
    # the rest to run_claims, which reads spillover and concentration (base_estimator, options)
    tables = {t.name: t for t in schema_tables()}
    assert set(tables["[claims]"].keys) == {
        "file",
        "linked_specs",
        "data_name",
        "breakdown_from",
        "spillover",
        "concentration",
        "curve",
    }
    assert set(tables["[claims.concentration]"].keys) == {
        "base_estimator",
        "options",
        "share_options",
    }
    assert set(tables["[claims.curve]"].keys) == {
        "samples",
        "cs_inference",
        "event_studies",
        "breakdown_by_scale",
    }


def test_docs_list_every_key_of_the_schema():
    doc = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    assert schema_markdown() in doc, (
        "docs/spec.md is out of date: paste the output of "
        "`python -c 'from zoneimpact.spec import schema_markdown; print(schema_markdown())'`"
    )
    for table in schema_tables():
        section = doc.split(f"### `{table.name}`" if table.name else "### Top level")[1]
        section = section.split("\n### ")[0]
        for name, key in table.keys.items():
            if table.same_as is None:
                assert f"| `{name}` | {key.type.replace('|', chr(92) + '|')} |" in section
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    spec_format = readme.split("## Spec format")[1].split("\n## ")[0]
    assert "docs/spec.md" in spec_format
