"""Run directories: atomic, never overwritten, reproducible byte for byte; spec errors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from zoneimpact.cli import main
from zoneimpact.errors import RunDirectoryError, SpecError
from zoneimpact.run import run_spec
from zoneimpact.spec import load_spec, parse_spec

SMALL_SPEC = """
title = "small"
seed = 7
[data]
source = "simulate"
outcomes = ["fdi"]
[data.simulate]
n_units = 60
n_regions = 6
first_year = 2000
last_year = 2012
waves = {"2004" = 0.5, "2008" = 0.5}
[[estimate]]
name = "twfe"
estimator = "twfe"
outcome = "fdi"
[[estimate]]
name = "es"
estimator = "event_study"
outcome = "fdi"
[estimate.options]
leads = 3
lags = 4
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL_SPEC)
    return p


def test_run_directory_contents_and_schema(spec_file, tmp_path):
    out = run_spec(load_spec(spec_file), tmp_path / "run")
    root = out.path
    for name in ("results.json", "manifest.json", "report.html", "data_report.json"):
        assert (root / name).is_file(), name
    assert any((root / "tables").glob("*.tex")) and any((root / "tables").glob("*.md"))
    assert any((root / "figures").glob("*.png")) and any((root / "figures").glob("*.pdf"))
    results = json.loads((root / "results.json").read_text())["results"]
    keys = {
        "name",
        "estimator",
        "outcome",
        "term",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "n_units",
    }
    assert all(keys <= set(r) for r in results)
    terms = {(r["name"], r["term"]) for r in results}
    assert ("twfe", "att") in terms and ("es", "event:0") in terms and ("es", "att") in terms
    man = json.loads((root / "manifest.json").read_text())
    assert man["seed"] == 7 and man["packages"]["numpy"]
    assert man["spec"]["estimates"][1]["options"] == {"leads": 3, "lags": 4}
    assert str(spec_file.resolve()) in man["inputs"]
    assert not list(tmp_path.glob(".run.tmp-*"))  # no half-written leftovers


def test_same_spec_gives_byte_identical_results(spec_file, tmp_path):
    a = run_spec(load_spec(spec_file), tmp_path / "a").path
    b = run_spec(load_spec(spec_file), tmp_path / "b").path
    assert (a / "results.json").read_bytes() == (b / "results.json").read_bytes()


def test_existing_directory_is_never_overwritten(spec_file, tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="exists already; nothing was written"):
        run_spec(load_spec(spec_file), target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert main(["estimate", "--spec", str(spec_file), "--out", str(target), "--quiet"]) == 2
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    # --force replaces only an earlier run (or an empty folder): a mistyped --out must not
    # delete other work
    with pytest.raises(RunDirectoryError, match="not an earlier zoneimpact run"):
        run_spec(load_spec(spec_file), target, force=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    run_dir = tmp_path / "earlier"
    run_spec(load_spec(spec_file), run_dir)
    (run_dir / "stale.txt").write_text("from the earlier run")
    run_spec(load_spec(spec_file), run_dir, force=True)
    assert (run_dir / "results.json").exists() and not (run_dir / "stale.txt").exists()


def test_cli_estimate_prints_run_dir_and_summary(spec_file, tmp_path, capsys):
    assert (
        main(["estimate", "--spec", str(spec_file), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    )
    printed = capsys.readouterr().out
    assert f"Run directory: {tmp_path / 'r'}" in printed and "twfe" in printed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("estimate"), "at least one"),
        (lambda d: d["estimate"][0].update(estimator="magic"), "unknown estimator 'magic'"),
        (lambda d: d.update(colour="red"), r"Unknown top-level key\(s\) \['colour'\]"),
        (lambda d: d["data"].update(source="ftp"), "source = 'ftp'"),
        (lambda d: d["estimate"][1].update(name="twfe"), "used twice"),
    ],
)
def test_spec_errors_name_the_problem(edit, message):
    raw = tomllib.loads(SMALL_SPEC)
    edit(raw)
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)


def test_unknown_estimator_option_is_a_spec_error(tmp_path):
    raw = SMALL_SPEC.replace("leads = 3", "leeds = 3")
    p = tmp_path / "bad.toml"
    p.write_text(raw)
    # the error names the bad option and lists the valid ones (checked against fit's
    # signature before any data are loaded, not a TypeError caught after the fact)
    with pytest.raises(SpecError, match=r"'es'.*'leeds'.*Valid options: .*leads, .*ref") as exc:
        run_spec(load_spec(p), tmp_path / "out")
    assert "TypeError" not in repr(exc.value.__cause__)
    assert not (tmp_path / "out").exists()


def test_run_arguments_cannot_be_set_as_options(tmp_path):
    raw = SMALL_SPEC.replace("leads = 3", "alpha = 0.1")
    p = tmp_path / "bad.toml"
    p.write_text(raw)
    with pytest.raises(SpecError, match=r"alpha .*\[inference\]"):
        run_spec(load_spec(p), tmp_path / "out")


def test_a_type_error_inside_an_estimator_is_not_a_spec_error(tmp_path, monkeypatch):
    # a bug inside fit must surface as itself, not be dressed up as a user's spec mistake
    from zoneimpact.estimators import twfe

    def broken(panel, *, outcome, rng=None, alpha=0.05, n_jobs=1):
        raise TypeError("internal bug")

    monkeypatch.setattr(twfe, "fit", broken)
    p = tmp_path / "ok.toml"
    p.write_text(SMALL_SPEC)
    with pytest.raises(TypeError, match="internal bug"):
        run_spec(load_spec(p), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_registered_estimator_imports():
    # a registered module that fails to import is a broken package: it must fail here
    # (get_estimator no longer turns ImportError into a SpecError)
    from zoneimpact.estimators import REGISTRY, get_estimator

    for name in REGISTRY:
        assert callable(get_estimator(name))


def test_default_spec_is_valid():
    spec = load_spec(None)
    assert spec.data.source == "simulate" and len(spec.estimates) >= 2
