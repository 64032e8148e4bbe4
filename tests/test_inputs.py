"""Inputs: pandas and polars frames; CSV, Parquet and Stata .dta files by extension, from
``read_panel`` and from a spec's ``[data] path``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact import read_panel
from zoneimpact._frames import as_pandas
from zoneimpact.datasets import load_data
from zoneimpact.errors import PanelError
from zoneimpact.panel import Panel
from zoneimpact.spec import load_spec


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    units, years = np.arange(1, 9), np.arange(2000, 2008)
    df = pd.DataFrame([(u, t) for u in units for t in years], columns=["city", "year"]).astype(
        {"city": "int64", "year": "int64"}
    )
    df["first_zone"] = df["city"].map({1: 2003, 2: 2003, 3: 2005, 4: 2005}).fillna(0)
    df["fdi"] = rng.normal(10, 1, len(df))
    return df


KW = {"unit": "city", "time": "year", "cohort": "first_zone", "outcomes": ["fdi"]}


def _same(a: Panel, b: Panel) -> None:
    pd.testing.assert_frame_equal(
        a.data.reset_index(drop=True), b.data.reset_index(drop=True), check_dtype=False
    )


def test_polars_frames_are_accepted_and_not_modified():
    pl = pytest.importorskip("polars")  # in the `test` extra
    df = _frame()
    want = Panel.from_frame(df, **KW)
    pdf = pl.from_pandas(df)
    before = pdf.clone()
    _same(Panel.from_frame(pdf, **KW), want)
    assert pdf.equals(before)  # the caller's frame is untouched
    _same(Panel.from_frame(pdf.lazy(), **KW), want)  # a LazyFrame is collected


def test_unsupported_frame_type_is_a_named_error():
    with pytest.raises(PanelError, match=r"pandas or polars DataFrame.*builtins\.dict"):
        Panel.from_frame({"city": [1]}, **KW)
    df = _frame()
    assert as_pandas(df) is df  # pandas passes through, no copy


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".dta"])
def test_files_read_by_extension(tmp_path, ext):
    df = _frame()
    path = tmp_path / f"panel{ext}"
    if ext == ".csv":
        df.to_csv(path, index=False)
    elif ext == ".parquet":
        df.to_parquet(path)
    else:
        df.to_stata(path, write_index=False)
    want = Panel.from_frame(df, **KW)
    _same(read_panel(path, **KW), want)
    # The same file named by a spec's [data] path (relative to the spec file).
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        f"""title = "inputs"
[data]
source = "file"
path = "{path.name}"
unit = "city"
time = "year"
cohort = "first_zone"
outcomes = ["fdi"]
labels = {{fdi = "FDI inflow"}}
units = {{fdi = "million USD"}}

[[estimate]]
name = "twfe"
estimator = "twfe"
outcome = "fdi"
label = "Two-way FE"
""",
        encoding="utf-8",
    )
    spec = load_spec(spec_file)
    assert spec.data.labels == {"fdi": "FDI inflow"} and spec.estimates[0].label == "Two-way FE"
    _same(load_data(spec, np.random.default_rng(0)).panel, want)


def test_a_dta_file_is_not_read_as_csv(tmp_path):
    # A Stata file with a .csv name fails as a CSV; named .dta it reads (the reader follows
    # the extension, not a guess).
    df = _frame()
    df.to_stata(tmp_path / "p.dta", write_index=False)
    (tmp_path / "p.csv").write_bytes((tmp_path / "p.dta").read_bytes())
    with pytest.raises(PanelError):
        read_panel(tmp_path / "p.csv", **KW)
    assert read_panel(tmp_path / "p.dta", **KW).data["fdi"].notna().all()
