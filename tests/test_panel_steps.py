"""Panel.from_frame split into steps (issue 13): blank cohort text and the size of the steps."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.panel import Panel

ROOT = Path(__file__).resolve().parents[1]


def _frame() -> pd.DataFrame:
    years = np.arange(2001, 2006)
    df = pd.DataFrame([(u, t) for u in range(6) for t in years], columns=["id", "year"])
    df["g"] = df["id"].map({0: 2003, 1: 2003, 2: 2004}).fillna(0).astype(int)
    df["y"] = np.arange(len(df), dtype=float) % 7 + df["id"]
    return df


@pytest.mark.parametrize("blank", ["", " ", "  \t"])
def test_blank_cohort_text_means_never_treated(blank):
    # A cohort column of text where never-treated units have a blank: the documented
    # reading is "empty = never treated", the same panel as 0. Under pandas copy-on-write
    # the blank check used to write into a read-only array (a raw ValueError).
    df = _frame()
    text = df.assign(g=df["g"].astype(str).replace("0", blank).astype(object))
    got = Panel.from_frame(text, unit="id", time="year", cohort="g", outcomes="y")
    ref = Panel.from_frame(df, unit="id", time="year", cohort="g", outcomes="y")
    pd.testing.assert_frame_equal(got.data, ref.data, check_exact=True)
    assert got.report == ref.report
    assert got.report["cohort_sizes"] == {2003: 2, 2004: 1, "never": 3}
    # the caller's frame is not modified
    assert text["g"].tolist().count(blank) == 3 * 5


def _function_lengths(path: Path) -> dict[str, int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        f"{path.name}:{node.name}": node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    }


@pytest.mark.parametrize("module", ["zoneimpact/panel.py", "zoneimpact/estimators/spillover.py"])
def test_steps_stay_small(module):
    # issue 13: no function longer than 120 lines, docstring included (from_frame was 389
    # lines, spillover.fit 208)
    lengths = _function_lengths(ROOT / module)
    assert max(lengths.values()) <= 120, sorted(lengths.items(), key=lambda kv: -kv[1])[:3]
