"""Regenerate china_claims.csv, the committed verdict table of the China study.

Run from the repository root after a deliberate change of the study's results:
``python tests/expected/update_china_claims.py``; commit the file with the change.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conftest import SHARED_DATA  # noqa: E402
from test_figures import KEYS, NUMBERS  # noqa: E402

from zoneimpact.claims import claims_for_spec  # noqa: E402
from zoneimpact.spec import load_spec  # noqa: E402

if __name__ == "__main__":
    spec = load_spec(HERE.parents[1] / "specs" / "china.toml", data_dir=str(SHARED_DATA))
    table = claims_for_spec(spec).extras["verdicts"]
    table[KEYS + NUMBERS].to_csv(HERE / "china_claims.csv", index=False, float_format="%.10g")
    print(f"wrote {HERE / 'china_claims.csv'}")
