"""Static checks run with the suite (CI runs only the README's two commands): ruff lint and
format on the package, tests and benchmarks, and mypy on the package (config in
pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_and_format() -> None:
    paths = ["zoneimpact", "tests", "benchmarks", "notebooks"]
    lint = _run("ruff", "check", *paths)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run("ruff", "format", "--check", *paths)
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_clean(tmp_path: Path) -> None:
    out = _run("mypy", "--cache-dir", str(tmp_path / "mypy_cache"))
    assert out.returncode == 0, out.stdout[-5000:]
    assert "Success: no issues found" in out.stdout
