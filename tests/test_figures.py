"""``python -m zoneimpact figures`` regenerates every figure and table of the study."""

from __future__ import annotations

from pathlib import Path

from conftest import SHARED_DATA

from zoneimpact.cli import main
from zoneimpact.figures import study_specs


def test_figures_command_regenerates_everything(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["figures", "--out", str(out), "--data-dir", str(SHARED_DATA), "--quiet"]) == 0
    printed = capsys.readouterr().out
    runs = {p.name for p in out.iterdir()}
    assert {"default", "default-claims"} <= runs
    expected_runs = len(study_specs()) + 1 + int((SHARED_DATA / "china").exists())
    if (SHARED_DATA / "canonical").exists():
        assert {"mpdta", "prop99"} <= runs
    assert len(runs) == expected_runs or not (SHARED_DATA / "china").exists()
    for run in out.iterdir():
        assert any((run / "figures").glob("*.png")), run.name
        assert any((run / "tables").glob("*.tex")), run.name
        assert (run / "report.html").exists()
    listed = [
        line.split("  ", 1)
        for line in printed.splitlines()
        if "  " in line and len(line.split("  ", 1)[0]) == 64
    ]
    assert listed and all(Path(p).exists() for _, p in listed)


def test_figures_refuses_to_overwrite(tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["figures", "--out", str(out), "--quiet"]) == 2
