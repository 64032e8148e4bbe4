"""Tables: layout, number formatting, stars, the four output formats and save() by extension."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import ZoneImpactError
from zoneimpact.report.tables import (
    Table,
    TableError,
    claims_table,
    event_study_table,
    regression_table,
)
from zoneimpact.results import EstimationResult, terms_frame


def twfe() -> EstimationResult:
    # p-values (normal): att z = 4 -> 6.3e-5 (***); event:0 z = 2.1 -> 0.036 (**);
    # event:1 z = 1.7 -> 0.089 (*); event:-2 z = 0.5 -> 0.62 (none).
    return EstimationResult(
        "twfe",
        "log_gdp",
        terms_frame(
            ["att", "event:-2", "event:-1", "event:0", "event:1"],
            [1.2, 0.1, 0.0, 0.42, -0.34],
            [0.3, 0.2, np.nan, 0.2, 0.2],
        ),
        n_units=1234,
        n_obs=24680,
        info={
            "cluster": "unit",
            "fixed_effects": ("unit", "year"),
            "pretrend_p": 0.43215,
            "control_group": "not_yet_treated",
        },
    )


def cs() -> EstimationResult:
    return EstimationResult(
        "callaway_santanna",
        "log_gdp",
        terms_frame(
            ["att", "event:-2", "event:0", "event:1"],
            [-0.5, 0.05, 0.6, 0.7],
            [0.4, 0.1, 0.25, 0.3],
            band_low=[np.nan, -0.2, 0.1, 0.1],
            band_high=[np.nan, 0.3, 1.1, 1.3],
        ),
        n_units=1234,
        n_obs=24680,
        info={"control_group": "never_treated"},
    )


def sc_with_weights() -> EstimationResult:
    return EstimationResult(
        "synthetic_control",
        "cig_sales",
        terms_frame(
            ["att", "weight:Utah", "weight:Nevada"], [-19.5, 0.4, 0.6], [np.nan, np.nan, np.nan]
        ),
        n_units=39,
        n_obs=1209,
    )


# ----------------------------------------------------------------------------- layout
def test_regression_table_layout_and_numbers():
    tab = regression_table([twfe(), cs()], terms=["att", "event:0"])
    df = tab.to_frame()
    assert list(df.columns) == ["", "twfe", "callaway_santanna"]
    assert df.iloc[0].tolist() == ["att", "1.200", "-0.500"]
    # Standard error in parentheses on the line under its estimate, with an empty stub.
    assert df.iloc[1].tolist() == ["", "(0.300)", "(0.400)"]
    assert df.iloc[2].tolist() == ["event:0", "0.420", "0.600"]
    foot = dict(zip(df.iloc[:, 0], df["twfe"], strict=False))
    assert foot["Units"] == "1,234" and foot["Observations"] == "24,680"
    assert foot["Clusters"] == "unit"
    assert foot["Fixed effects"] == "unit, year"
    assert foot["Pre-trend p-value"] == "0.432"
    assert foot["Control group"] == "not_yet_treated"
    assert (
        dict(zip(df.iloc[:, 0], df["callaway_santanna"], strict=False))["Pre-trend p-value"] == ""
    )
    # The rule separates the estimates (4 rows) from the footer.
    assert tab.midrules == (4,)
    # Long-form numbers kept for machines.
    assert tab.data.set_index(["model", "term"]).loc[("twfe", "att"), "se"] == 0.3


def test_missing_term_cells_are_empty_and_weights_left_out():
    tab = regression_table({"A": twfe(), "B": sc_with_weights()})
    labels = tab.to_frame().iloc[:, 0].tolist()
    assert not any(str(x).startswith("weight:") for x in labels)
    row = tab.to_frame().set_index("").loc["event:1"]
    assert row["A"] == "-0.340" and row["B"] == ""
    # NaN SE (synthetic control without inference): no parentheses line for that column.
    att_se = tab.to_frame().iloc[1]
    assert att_se["A"] == "(0.300)" and att_se["B"] == ""
    # Explicit request shows them.
    tab = regression_table(sc_with_weights(), terms=["weight:*"])
    assert tab.to_frame().iloc[:, 0].tolist()[:2] == ["weight:Utah", "weight:Nevada"]


def test_terms_mapping_relabels_and_unknown_term_errors():
    tab = regression_table(twfe(), terms={"att": "ATT", "event:0": "Year of opening"})
    assert tab.to_frame().iloc[[0, 2], 0].tolist() == ["ATT", "Year of opening"]
    with pytest.raises(TableError, match="nonexistent"):
        regression_table(twfe(), terms=["nonexistent"])
    with pytest.raises(ZoneImpactError, match="terms"):
        regression_table([object()])


def test_column_names_from_outcomes_when_estimators_repeat():
    a = twfe()
    b = EstimationResult("twfe", "log_emp", a.terms, n_units=10, n_obs=100)
    tab = regression_table([a, b], stats=())
    assert tab.columns == ["", "log_gdp", "log_emp"]
    c = EstimationResult("twfe", "log_emp", a.terms)
    assert regression_table([a, b, c], stats=()).columns == ["", "(1)", "(2)", "(3)"]


def test_stars_thresholds():
    tab = regression_table(twfe(), stars=True, stats=())
    est = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["twfe"], strict=False))
    assert est["att"] == "1.200***"
    assert est["event:0"] == "0.420**"
    assert est["event:1"] == "-0.340*"
    assert est["event:-2"] == "0.100"
    assert "* p < 0.1, ** p < 0.05, *** p < 0.01." in tab.notes
    # Custom thresholds (modelsummary style).
    tab = regression_table(twfe(), stars={"+": 0.1, "*": 0.05}, stats=())
    est = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["twfe"], strict=False))
    assert est["att"] == "1.200*" and est["event:1"] == "-0.340+"


def test_ci_rows():
    tab = regression_table(twfe(), terms=["att"], ci=True, stats=())
    rows = tab.to_frame()["twfe"].tolist()
    # 1.2 -/+ 1.959964 * 0.3 = [0.612, 1.788]
    # The outcome row stays (columns are named by estimator), as fixest's "Dependent Var.".
    assert rows == ["1.200", "(0.300)", "[0.612, 1.788]", "log_gdp"]
    assert "95% confidence intervals in brackets." in tab.notes


def test_event_study_table():
    tab = event_study_table({"TWFE": twfe(), "CS": cs()})
    df = tab.to_frame().set_index("Event time")
    assert df.index[0] == "E = -2"
    assert df.loc["E = -1", "TWFE"] == "ref."
    assert df.loc["E = -1", "CS"] == ""
    rows = tab.to_frame()["CS"].tolist()
    i = tab.to_frame().index[tab.to_frame()["Event time"] == "E = 0"][0]
    assert rows[i : i + 4] == ["0.600", "(0.250)", "[0.110, 1.090]", "{0.100, 1.100}"]
    assert any("uniform" in n for n in tab.notes)
    with pytest.raises(TableError, match="event"):
        event_study_table(sc_with_weights())


def test_claims_table():
    df = pd.DataFrame(
        {
            "claim": ["Zones raised FDI", "No displacement"],
            "data": ["china_zones", "china_zones"],
            "estimator": ["callaway_santanna", "spillover"],
            "estimate": [0.31, -0.02],
            "ci_low": [0.12, -0.09],
            "ci_high": [0.50, 0.05],
            "margin": [np.nan, 0.1],
            "breakdown": [0.8, np.nan],
            "verdict": ["supported", "supported"],
        }
    )
    tab = claims_table(df)
    assert tab.columns == [
        "Claim",
        "Data",
        "Estimator",
        "Estimate",
        "CI",
        "Margin",
        "Breakdown",
        "Verdict",
    ]
    assert tab.to_frame().iloc[1].tolist() == [
        "No displacement",
        "china_zones",
        "spillover",
        "-0.020",
        "[-0.090, 0.050]",
        "0.100",
        "",
        "supported",
    ]
    with pytest.raises(TableError, match="margin"):
        claims_table(df.drop(columns=["margin"]))


# ----------------------------------------------------------------------------- formats
def test_latex_structure_and_escaping():
    tab = regression_table([twfe(), cs()], stars=True, title="Effects on log_gdp (100% = 1)")
    tex = tab.to_latex()
    lines = tex.splitlines()
    assert lines.count("\\toprule") == 1 and lines.count("\\bottomrule") == 1
    assert lines.count("\\midrule") == 2  # under the header and before the footer
    assert "\\begin{tabular}{lcc}" in tex
    body = [ln for ln in lines if ln.endswith("\\\\") and "&" in ln]
    assert all(ln.count("&") == 2 for ln in body)  # 3 columns on every row
    assert "callaway\\_santanna" in tex and "log\\_gdp" in tex
    assert "\\caption{Effects on log\\_gdp (100\\% = 1)}" in tex
    # No unescaped underscore, percent or ampersand in text.
    stripped = re.sub(r"\\[_%&#$]", "", tex)
    assert "_" not in stripped and "%" not in stripped
    assert "$-$0.500" in tex  # math minus for negative numbers
    bare = tab.to_latex(float_env=False)
    assert bare.startswith("\\begin{tabular}") and "\\begin{table}" not in bare


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_foot = False

    def handle_starttag(self, tag, attrs):
        if tag == "tfoot":
            self._in_foot = True
        if tag == "tr" and not self._in_foot:
            self.rows.append([])
        if tag in ("td", "th") and not self._in_foot:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_round_trips_markdown_csv_html():
    tab = regression_table([twfe(), cs()], ci=True, stars=True, title="T | 1")
    frame = tab.to_frame()
    expected = [list(frame.columns), *frame.astype(str).to_numpy().tolist()]
    # CSV
    got = list(csv.reader(io.StringIO(tab.to_csv())))
    assert got == expected
    # Markdown pipe table
    md_rows = [ln for ln in tab.to_markdown().splitlines() if ln.startswith("|")]
    parsed = [
        [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in md_rows
    ]
    assert parsed[0] == expected[0]
    assert set(parsed[1][1:]) == {"---:"}
    assert parsed[2:] == expected[1:]
    # HTML (standard-library parser, entities decoded)
    p = _TableParser()
    p.feed(tab.to_html())
    assert p.rows == expected
    assert 'class="midrule"' in tab.to_html()


def test_save_by_extension(tmp_path):
    tab = regression_table(twfe())
    for ext, marker in (
        (".tex", "\\toprule"),
        (".md", "| :--- |"),
        (".html", "<table"),
        (".htm", "<table"),
        (".csv", ",twfe"),
    ):
        out = tab.save(tmp_path / f"t{ext}")
        assert out.read_text(encoding="utf-8").count(marker) >= 1, ext
    with pytest.raises(TableError, match=r"\.docx"):
        tab.save(tmp_path / "t.docx")
    with pytest.raises(ZoneImpactError, match="extension"):
        tab.save(tmp_path / "noext")


def test_table_from_frame_and_unique_columns():
    df = pd.DataFrame({"unit": ["a_1", "b"], "weight": [0.25, 0.75], "n": [3, 1200]})
    tab = Table.from_frame(df, digits=2)
    assert tab.to_frame().to_numpy().tolist() == [["a_1", "0.25", "3"], ["b", "0.75", "1,200"]]
    with pytest.raises(TableError, match="unique"):
        Table(pd.DataFrame([["a", "b"]], columns=["x", "x"]))


def test_inputs_not_modified():
    r = twfe()
    before = r.terms.copy()
    regression_table(r, stars=True, ci=True)
    event_study_table(r)
    pd.testing.assert_frame_equal(r.terms, before)


# ----------------------------------------------------------------------------- LaTeX compile
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(tmp_path):
    tab = regression_table(
        [twfe(), cs()], stars=True, ci=True, title="Zones & growth: 100% of log_gdp"
    )
    es = event_study_table({"TWFE": twfe(), "CS": cs()})
    doc = (
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + tab.to_latex()
        + es.to_latex()
        + "\\end{document}\n"
    )
    (tmp_path / "doc.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


# ----------------------------------------------------------------------------- maketables
def test_results_work_with_maketables():
    mt = pytest.importorskip("maketables")
    et = mt.ETable([twfe(), cs()])
    tex = et.make(type="tex")
    # maketables reads the coefficient hooks: our numbers appear in its table.
    assert "1.200" in tex and "(0.300)" in tex and "(0.400)" in tex


@dataclass(frozen=True)
class _Duck:
    """A result-like object without tidy(): tables fall back to normal-based inference."""

    terms: pd.DataFrame
    estimator: str = "duck"
    outcome: str = "y"
    n_units: int = 5
    n_obs: int = 50


def test_duck_typed_result():
    d = _Duck(terms_frame(["att"], [0.2], [0.1]))
    tab = regression_table(d, stars=True, ci=True, stats=("n_units",))
    assert tab.to_frame()["duck"].tolist() == ["0.200**", "(0.100)", "[0.004, 0.396]", "y", "5"]


def test_event_terms_sorted_across_results():
    # The second result has a longer pre-window: event:-4 must come first, not last.
    a = EstimationResult(
        "cs", "y", terms_frame(["att", "event:-1", "event:0", "event:1"], [1, 2, 3, 4], [1] * 4)
    )
    b = EstimationResult(
        "sa", "y", terms_frame(["att", "event:-4", "event:0", "event:10"], [1, 2, 3, 4], [1] * 4)
    )
    labels = [x for x in regression_table([a, b]).to_frame().iloc[:, 0] if x]
    assert labels[:6] == ["att", "event:-4", "event:-1", "event:0", "event:1", "event:10"]
    labels = [x for x in regression_table([a, b], terms=["event:*"]).to_frame().iloc[:, 0] if x]
    assert labels[:5] == ["event:-4", "event:-1", "event:0", "event:1", "event:10"]
