"""Run directories under bad input: concurrent writers, hostile names, killed runs, OS errors.

Every test checks that nothing is written outside ``tmp_path`` and that a failed run leaves
no temporary folder or half-written run directory behind.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_run import SMALL_SPEC

from zoneimpact import run
from zoneimpact.cli import main
from zoneimpact.errors import RunDirectoryError, RunDirectoryExistsError, ZoneImpactError
from zoneimpact.report import outputs
from zoneimpact.report.tables import Table
from zoneimpact.run import RunOutput, estimate_all, write_run
from zoneimpact.spec import load_spec

# Block names that escape the run directory or collide once sanitised: "m" (Sun-Abraham,
# artifact cohort_effects) and "m_cohort" (imputation, artifact effects) both ask for
# m_cohort_effects.csv; "a b" and "a-b" both ask for a-b_terms.csv and id "res-a-b".
HOSTILE_SPEC = SMALL_SPEC.split("[[estimate]]")[0] + "".join(
    f'[[estimate]]\nname = "{name}"\nestimator = "{est}"\noutcome = "fdi"\n'
    for name, est in [
        ("../../X", "twfe"),
        ("m", "sun_abraham"),
        ("m_cohort", "imputation"),
        ("a b", "twfe"),
        ("a-b", "twfe"),
    ]
)
#: the small spec with its TWFE block only (no event study: a fast run in a subprocess)
TWFE_ONLY = "[[estimate]]".join(SMALL_SPEC.split("[[estimate]]")[:2])
COMPLETE = ("results.json", "manifest.json", "report.html", "data_report.json")


def _files(root: Path) -> set[str]:
    """Every entry under ``root`` (hidden ones included), relative, as strings."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _assert_complete(root: Path) -> None:
    for name in COMPLETE:
        assert (root / name).is_file(), name
    json.loads((root / "results.json").read_text())  # not truncated
    for folder in ("tables", "artifacts"):
        assert any((root / folder).iterdir()), folder


def _no_hidden(parent: Path) -> None:
    hidden = [p.name for p in parent.iterdir() if p.name.startswith(".")]
    assert not hidden, f"temporary leftovers in {parent}: {hidden}"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> RunOutput:
    """The small spec estimated once (writing is what these tests exercise)."""
    spec = tmp_path_factory.mktemp("spec") / "small.toml"
    spec.write_text(SMALL_SPEC)
    return estimate_all(load_spec(spec))


#: figure names as ``build_figures`` makes them (``<block>_<figure>``) for hostile blocks
FIGURE_NAMES = ("event_study", "../../X_group_time", "a b_sc_gap", "a-b_sc_gap")


@pytest.fixture
def tiny_figures(monkeypatch):
    """Tiny stand-ins for the run's figures and tables: these tests are about files, not
    plots (and the tables' pre-trend diagnostics would take most of the time)."""

    def figures(output):
        figs = {}
        for name in FIGURE_NAMES:
            figs[name] = Figure(figsize=(1, 1), dpi=20)
            figs[name].add_subplot().plot([0, 1])
        return figs

    def tables(output):
        return {"estimates": Table.from_frame(pd.DataFrame({"name": list(output.results)}))}

    monkeypatch.setattr(outputs, "build_figures", figures)
    monkeypatch.setattr(outputs, "build_tables", tables)


def test_concurrent_runs_into_one_directory_exactly_one_wins(tmp_path):
    """Two real processes race for one --out: one exits 0, the other 2; no replacement."""
    spec = tmp_path / "small.toml"
    spec.write_text(TWFE_ONLY)
    out = tmp_path / "runs" / "x"
    cmd = [sys.executable, "-m", "zoneimpact", "estimate", "--spec", str(spec)]
    cmd += ["--out", str(out), "--quiet"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    done = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        done.append((p.returncode, stdout.decode(), stderr.decode()))
    assert sorted(rc for rc, _, _ in done) == [0, 2], done
    (_, winner_out, _), (_, _, loser_err) = sorted(done)
    assert f"Run directory: {out}" in winner_out
    # the loser failed either before estimating or at the final rename; both say so
    assert "exists already" in loser_err and "Traceback" not in loser_err
    _assert_complete(out)
    assert {p.name for p in tmp_path.iterdir()} == {"small.toml", "runs"}
    assert [p.name for p in out.parent.iterdir()] == ["x"]  # no temporary folder left


def test_directory_created_while_writing_is_not_replaced(
    small, tmp_path, monkeypatch, tiny_figures
):
    """The check-then-act window: a run that lands first wins; --force replaces, also a file."""
    target = tmp_path / "run"
    winner = dataclasses.replace(small, spec=dataclasses.replace(small.spec, title="winner"))
    real = run._write_contents
    raced: list[Path] = []

    def racing(output, root):
        real(output, root)
        if not raced:  # another run finishes into the target while this one is writing
            raced.append(root)
            write_run(winner, target)

    monkeypatch.setattr(run, "_write_contents", racing)
    with pytest.raises(RunDirectoryExistsError, match="created by another run") as exc:
        write_run(small, target)
    assert isinstance(exc.value, ZoneImpactError) and isinstance(exc.value, FileExistsError)
    assert json.loads((target / "results.json").read_text())["title"] == "winner"
    assert not raced[0].exists()
    _assert_complete(target)
    _no_hidden(tmp_path)

    # --force replaces the directory; without it a file is not replaced either
    write_run(small, target, force=True)
    assert json.loads((target / "results.json").read_text())["title"] == "small"
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(RunDirectoryExistsError, match="exists already"):
        write_run(small, afile)
    assert afile.read_text() == "mine"
    # --force onto a file with content: refused (a mistyped --out must not delete a data
    # file, a breaker's case); an empty file is replaced, with no .afile.old-PID left
    with pytest.raises(RunDirectoryError, match="is a file, not an earlier zoneimpact run"):
        write_run(small, afile, force=True)
    assert afile.read_text() == "mine"
    afile.write_text("")
    write_run(small, afile, force=True)
    _assert_complete(afile)
    _no_hidden(tmp_path)

    # --force never replaces the current directory or one of its parents
    monkeypatch.chdir(target)
    with pytest.raises(RunDirectoryError, match="current directory"):
        write_run(small, target, force=True)
    _assert_complete(target)
    assert _files(tmp_path) == {"run", "afile"} | {
        f"{d}/{f}" for d in ("run", "afile") for f in _files(tmp_path / d)
    }


def test_block_names_cannot_escape_or_collide(tmp_path, tiny_figures):
    """``../../X`` stays inside; names equal after sanitising get unique files and ids."""
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC)
    root = tmp_path / "a" / "b" / "run"
    output = run.run_spec(load_spec(spec), root)
    assert output.path == root
    # nothing outside the run directory (the old code wrote tmp_path/a/X_terms.csv)
    outside = _files(tmp_path) - {"hostile.toml", "a", "a/b", "a/b/run"}
    assert all(f.startswith("a/b/run/") for f in outside), outside
    assert not list(tmp_path.parent.glob("X_*"))
    art = {p.name for p in (root / "artifacts").iterdir()}
    assert {"X_terms.csv", "m_cohort_effects.csv", "m_cohort_effects-2.csv"} <= art
    assert {"a-b_terms.csv", "a-b_terms-2.csv", "index.csv"} <= art
    figs = {p.name for p in (root / "figures").iterdir()}
    assert {"X_group_time.png", "a-b_sc_gap.pdf", "a-b_sc_gap-2.pdf"} <= figs
    safe = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    assert all(safe.match(p.name) for p in root.rglob("*")), sorted(_files(root))
    # the index says which block each file belongs to, and every file has its own data
    index = (root / "artifacts" / "index.csv").read_text().splitlines()
    assert "m,cohort_effects,artifacts/m_cohort_effects.csv" in index
    assert "m_cohort,effects,artifacts/m_cohort_effects-2.csv" in index
    assert "../../X,terms,artifacts/X_terms.csv" in index
    sa = (root / "artifacts" / "m_cohort_effects.csv").read_text()
    imp = (root / "artifacts" / "m_cohort_effects-2.csv").read_text()
    assert sa != imp
    # report.html: element ids are unique
    ids = re.findall(r'\bid="([^"]*)"', (root / "report.html").read_text())
    assert len(ids) == len(set(ids))
    assert {"res-a-b", "res-a-b-2", "res-X", "fig-a-b_sc_gap", "fig-a-b_sc_gap-2"} <= set(ids)
    # the same spec names its files the same way
    again = run.run_spec(load_spec(spec), tmp_path / "again").path
    assert again is not None and _files(again) == _files(root)

    # the guard behind the sanitising: a path that resolves outside the root is refused
    files = run.RunFiles(tmp_path / "r")
    assert files.stem("x", "../../X") == "X" and files.stem("x", "..") == "unnamed"
    assert files.stem("x", "CON") == "_CON" and files.stem("x", "x") == "x-2"  # case-blind
    with pytest.raises(RunDirectoryError, match="outside the run directory"):
        files.path("..", "escape", ".csv")


def test_stale_temporaries_of_dead_runs_are_removed(small, tmp_path, tiny_figures):
    """A killed run's ``.D.tmp-PID`` / ``.D.old-PID`` go with the next run into the parent."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = gone.pid
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            tmp_path / f".run.tmp-{dead}",  # the old naming
            tmp_path / f".other.tmp-{dead}-0123abcd",
        ]
        for d in stale:
            (d / "artifacts").mkdir(parents=True)
            (d / "results.json").write_text("{")
        (tmp_path / "afile").mkdir()
        (tmp_path / f".afile.old-{dead}").write_text("replaced by --force, then killed")
        # killed between the two renames of --force: the old run is put back
        restore = tmp_path / f".gone.old-{dead}-89abcdef"
        restore.mkdir()
        (restore / "results.json").write_text("{}")
        kept = [
            tmp_path / f".busy.tmp-{alive.pid}",  # its process is alive
            tmp_path / f".mine.tmp-{os.getpid()}",  # this process
            tmp_path / ".x.tmp-notapid",  # not our pattern
            tmp_path / ".keep",
            tmp_path / "notours",
        ]
        for d in kept:
            d.mkdir()
        (tmp_path / f".plain.tmp-{dead}").write_text("a file: we only make folders")

        write_run(small, tmp_path / "new")
        _assert_complete(tmp_path / "new")
        assert not any(d.exists() for d in stale)
        assert not (tmp_path / f".afile.old-{dead}").exists() and (tmp_path / "afile").is_dir()
        assert not restore.exists() and (tmp_path / "gone" / "results.json").read_text() == "{}"
        assert all(d.is_dir() for d in kept)
        assert (tmp_path / f".plain.tmp-{dead}").is_file()
        assert {p.name for p in tmp_path.iterdir()} == {
            "new",
            "afile",
            "gone",
            f".plain.tmp-{dead}",
            *(d.name for d in kept),
        }
    finally:
        alive.kill()
        alive.wait()


def test_os_errors_become_run_directory_errors(small, tmp_path, monkeypatch, capsys, tiny_figures):
    """Parent is a file, parent read-only, disk full: RunDirectoryError, exit 2, no debris."""
    spec = tmp_path / "small.toml"
    spec.write_text(SMALL_SPEC)
    argv = ["estimate", "--spec", str(spec), "--quiet", "--out"]

    # 1. a parent that is a regular file: refused before any estimation
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert main([*argv, str(afile / "sub" / "run")]) == 2
    assert f"{afile} is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(RunDirectoryError, match="is a file"):
        write_run(small, afile / "run", force=True)
    assert afile.read_text() == "mine"

    # 2. a read-only parent (root ignores chmod, so there the kernel's EACCES is simulated)
    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkdir = os.mkdir

    def denied(path, *args, **kwargs):
        if Path(path).parent == ro:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        if os.geteuid() != 0:
            ro.chmod(0o500)
        else:
            patch.setattr(os, "mkdir", denied)
        try:
            with pytest.raises(RunDirectoryError, match=f"No permission to write in {ro}") as exc:
                write_run(small, ro / "run")
            assert str(ro / "run") in str(exc.value)
            assert not isinstance(exc.value, FileExistsError)
            assert main([*argv, str(ro / "run")]) == 2
            assert "Permission denied" in capsys.readouterr().err
        finally:
            ro.chmod(0o700)
    assert list(ro.iterdir()) == []

    # 3. the disk fills up half-way (results and artifacts written, then a figure fails)
    def full(self, fname, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))

    monkeypatch.setattr(Figure, "savefig", full)
    target = tmp_path / "new" / "deeper" / "run"
    with pytest.raises(RunDirectoryError, match=r"disk \(or your quota\) is full") as exc:
        write_run(small, target)
    message = str(exc.value)
    assert f"{target}{os.sep}figures{os.sep}event_study.png" in message  # the path, not tmp
    assert isinstance(exc.value.__cause__, OSError)
    assert not (tmp_path / "new").exists()  # the parents this run created went too
    assert main([*argv, str(target)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert _files(tmp_path) == {"small.toml", "afile", "ro"}
