"""Shared test fixtures: paths to the canonical data and Monte Carlo sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZONEIMPACT_DATA", REPO.parent / "shared" / "data"))
CANONICAL = SHARED_DATA / "canonical"
FULL_MC = os.environ.get("ZONEIMPACT_FULL_MC") == "1"


def mc_reps(reduced: int, full: int) -> int:
    """Replications for a Monte Carlo test: ``reduced`` in CI, ``full`` on request."""
    return full if FULL_MC else reduced


@pytest.fixture(scope="session")
def canonical() -> Path:
    if not CANONICAL.exists():
        pytest.skip(f"canonical data not found at {CANONICAL}")
    return CANONICAL


@pytest.fixture(scope="session")
def mpdta_frame(canonical: Path) -> pd.DataFrame:
    """R did's minimum-wage county panel (see canonical/mpdta.SOURCE.txt)."""
    return pd.read_csv(canonical / "mpdta.csv")


@pytest.fixture(scope="session")
def mpdta(mpdta_frame: pd.DataFrame):
    from zoneimpact import Panel

    return Panel.from_frame(
        mpdta_frame,
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
        covariates=["lpop"],
    )
