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
            "n_clusters": 17,
            "fixed_effects": ("unit", "year"),
            "covariates": "",
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
        info={"control_group": "never_treated", "covariates": ["x1", "x2"]},
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
    # Estimator display names head the columns, terms print as papers print them.
    assert list(df.columns) == ["", "TWFE", "Callaway–Sant'Anna"]
    assert df.iloc[0].tolist() == ["ATT", "1.200", "-0.500"]
    # Standard error in parentheses on the line under its estimate, with an empty stub.
    assert df.iloc[1].tolist() == ["", "(0.300)", "(0.400)"]
    assert df.iloc[2].tolist() == ["Event time 0", "0.420", "0.600"]
    foot = dict(zip(df.iloc[:, 0], df["TWFE"], strict=False))
    assert foot["Units"] == "1,234" and foot["Observations"] == "24,680"
    assert foot["Clusters"] == "17"  # a count, not the cluster variable's name
    assert foot["Fixed effects"] == "Unit + period"  # one wording for every estimator
    assert foot["Pre-trend p-value"] == "0.432"
    assert foot["Control group"] == "Not yet treated"
    assert foot["Standard errors"] == "Clustered by unit"
    cs_foot = dict(zip(df.iloc[:, 0], df["Callaway–Sant'Anna"], strict=False))
    assert cs_foot["Pre-trend p-value"] == "" and cs_foot["Standard errors"] == ""
    assert cs_foot["Controls"] == "x1, x2" and foot["Controls"] == "None"
    # The rule separates the estimates (4 rows) from the footer.
    assert tab.midrules == (4,)
    assert "Confidence level of tests and intervals: 95%." in tab.notes
    # Long-form numbers kept for machines.
    assert tab.data.set_index(["model", "term"]).loc[("TWFE", "att"), "se"] == 0.3


def test_headline_terms_by_default_and_event_terms_on_request():
    # Default: each result's headline (main_term) only -- the README's two-model table
    # was 70 rows with every term; it is now one estimate row plus the footer.
    tab = regression_table({"A": twfe(), "B": cs()})
    stub = tab.to_frame().iloc[:, 0].tolist()
    assert stub[:2] == ["ATT", ""] and "Event time 0" not in stub
    tab = regression_table({"A": twfe(), "B": cs()}, events=True)
    stub = [x for x in tab.to_frame().iloc[:, 0] if x]
    assert stub[:5] == ["ATT", "Event time -2", "Event time -1", "Event time 0", "Event time 1"]
    tab = regression_table({"A": twfe()}, terms="all")
    assert "Event time -2" in tab.to_frame().iloc[:, 0].tolist()


def test_outcome_labels_units_and_se_note():
    tab = regression_table(
        {"A": twfe(), "B": twfe()},
        outcome_labels={"log_gdp": "GDP"},
        outcome_units={"log_gdp": "log points"},
    )
    foot = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["A"], strict=False))
    # One outcome in every column: a note, as "Dependent variable: ..." in papers.
    assert "Outcome" not in foot and tab.notes[0] == "Outcome: GDP (log points)."
    # One SE type for every column: stated once in the notes, no footer row.
    assert "Standard errors" not in foot
    assert tab.notes[1] == "Standard errors in parentheses (clustered by unit)."
    # Different outcomes: a row, labelled.
    b = EstimationResult("twfe", "emp", twfe().terms, info=twfe().info)
    tab = regression_table({"A": twfe(), "B": b}, outcome_labels={"emp": "Employment"})
    foot = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["B"], strict=False))
    assert foot["Outcome"] == "Employment"


def test_missing_term_cells_are_empty_and_weights_left_out():
    tab = regression_table({"A": twfe(), "B": sc_with_weights()}, terms="all")
    labels = tab.to_frame().iloc[:, 0].tolist()
    assert not any(str(x).startswith("Weight") for x in labels)
    row = tab.to_frame().set_index("").loc["Event time 1"]
    assert row["A"] == "-0.340" and row["B"] == ""
    # NaN SE (synthetic control without inference): no parentheses line for that column.
    att_se = tab.to_frame().iloc[1]
    assert att_se["A"] == "(0.300)" and att_se["B"] == ""
    # Explicit request shows them.
    tab = regression_table(sc_with_weights(), terms=["weight:*"])
    assert tab.to_frame().iloc[:, 0].tolist()[:2] == ["Weight Utah", "Weight Nevada"]


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
    tab = regression_table(twfe(), stars=True, stats=(), terms="all")
    est = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["TWFE"], strict=False))
    assert est["ATT"] == "1.200***"
    assert est["Event time 0"] == "0.420**"
    assert est["Event time 1"] == "-0.340*"
    assert est["Event time -2"] == "0.100"
    assert "* p < 0.1, ** p < 0.05, *** p < 0.01." in tab.notes
    # Custom thresholds (modelsummary style).
    tab = regression_table(twfe(), stars={"+": 0.1, "*": 0.05}, stats=(), terms="all")
    est = dict(zip(tab.to_frame().iloc[:, 0], tab.to_frame()["TWFE"], strict=False))
    assert est["ATT"] == "1.200*" and est["Event time 1"] == "-0.340+"


def test_ci_rows():
    tab = regression_table(twfe(), terms=["att"], ci=True, stats=())
    rows = tab.to_frame()["TWFE"].tolist()
    # 1.2 -/+ 1.959964 * 0.3 = [0.612, 1.788]
    # The one outcome is named in the notes, as fixest's "Dependent Var." line.
    assert rows == ["1.200", "(0.300)", "[0.612, 1.788]"]
    assert "Outcome: log_gdp." in tab.notes
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
    assert "\\begin{tabular}{lcc}" in tex and "\\normalsize" in tex
    body = [ln for ln in lines if ln.endswith("\\\\") and "&" in ln]
    assert all(ln.count("&") == 2 for ln in body)  # 3 columns on every row
    # Long headers are stacked (after the en dash) so that the table fits the page.
    assert "Callaway-- \\\\ Sant'Anna" in tex and "log\\_gdp" in tex
    assert "\\caption{Effects on log\\_gdp (100\\% = 1)}" in tex
    # No unescaped underscore, percent or ampersand in text.
    stripped = re.sub(r"\\[_%&#$]", "", tex)
    assert "_" not in stripped and "%" not in stripped
    assert "$-$0.500" in tex  # math minus for negative numbers
    bare = tab.to_latex(float_env=False)
    assert "\\begin{tabular}" in bare and "\\begin{table}" not in bare


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
        (".csv", ",TWFE"),
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
    # maketables is in the `test` extra, so this runs in CI (skips only without it).
    mt = pytest.importorskip("maketables")
    from maketables.extractors import get_extractor

    # Read through our plug-in hooks, not maketables' statsmodels extractor (which claims
    # anything with params/bse/pvalues): zoneimpact/_maketables.py puts ours first.
    assert type(get_extractor(twfe())).__name__ == "ZoneImpactExtractor"
    et = mt.ETable([twfe(), cs()], keep=["^att$", "^event::0$"])
    df = et.df
    flat = df.to_string()
    # Numbers, human labels (event:0 is not split as an interaction), depvar, FE and
    # footer rows from the hooks.
    assert "1.200" in flat and "(0.300)" in flat and "(0.400)" in flat
    assert "Event time=0" in flat and "ATT" in flat and "×" not in flat
    assert "log_gdp" in flat
    assert "Unit fixed effects" in flat and "Period fixed effects" in flat
    assert "Clusters" in flat and "17" in flat
    assert "Clustered by unit" in flat and "R²" not in flat
    tex = et.make(type="tex")
    assert "1.200" in tex and "Event time=0" in tex


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
    assert tab.to_frame()["duck"].tolist() == ["0.200**", "(0.100)", "[0.004, 0.396]", "5"]
    assert "Outcome: y." in tab.notes


def test_event_terms_sorted_across_results():
    # The second result has a longer pre-window: event:-4 must come first, not last.
    a = EstimationResult(
        "cs", "y", terms_frame(["att", "event:-1", "event:0", "event:1"], [1, 2, 3, 4], [1] * 4)
    )
    b = EstimationResult(
        "sa", "y", terms_frame(["att", "event:-4", "event:0", "event:10"], [1, 2, 3, 4], [1] * 4)
    )
    labels = [x for x in regression_table([a, b], terms="all").to_frame().iloc[:, 0] if x]
    ev = ["Event time -4", "Event time -1", "Event time 0", "Event time 1", "Event time 10"]
    assert labels[:6] == ["ATT", *ev]
    labels = [x for x in regression_table([a, b], terms=["event:*"]).to_frame().iloc[:, 0] if x]
    assert labels[:5] == ev


# ----------------------------------------------------------------------------- page fit
def _long_results() -> dict[str, EstimationResult]:
    # Three event studies with 32 terms each: with SEs and CIs, 100+ body rows -- the
    # README's "every term" table that overflowed a page ("Float too large by 1325pt").
    ev = np.arange(-10, 21)
    out = {}
    for k, name in enumerate(("callaway_santanna", "imputation", "event_study")):
        est = np.where(ev >= 0, 10.0 + ev + k, 0.5 * k) - 1234.5
        out[name] = EstimationResult(
            name,
            "fdi",
            terms_frame(["att", *[f"event:{e}" for e in ev]], [-1000.0, *est], [12.345] * 32),
            n_units=1_234_567,
            n_obs=98_765_432,
            info={"cluster": "prefecture", "n_clusters": 280, "fixed_effects": "unit + time"},
        )
    return out


def _compile(tmp_path, body: str) -> str:
    doc = (
        "\\documentclass[letterpaper]{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + body
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
    return (tmp_path / "doc.log").read_text(encoding="latin-1")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_fits_a_letter_page(tmp_path):
    long = _long_results()
    labels = {
        "Callaway–Sant'Anna, not-yet-treated controls": long["callaway_santanna"],
        "Imputation (Borusyak, Jaravel & Spiess)": long["imputation"],
        "TWFE event study, binned endpoints": long["event_study"],
        "Callaway–Sant'Anna, never-treated controls": long["callaway_santanna"],
        "Imputation, all horizons": long["imputation"],
    }
    wide = {f"Specification number {i} (long name)": r for i, r in enumerate(long.values())}
    wide.update({f"Another specification {i}": r for i, r in enumerate(long.values())})
    tables = [
        regression_table(labels, stars=True, ci=True, title="Headline estimates"),
        regression_table(long, terms="all", ci=True, title="Every term"),  # 190+ rows
        event_study_table(long, title="Event studies"),
        regression_table(wide, title="Six columns of long names"),
    ]
    assert len(tables[1].to_frame()) > 70
    log = _compile(tmp_path, "".join(t.to_latex() for t in tables))
    assert "Overfull" not in log, re.findall(r"Overfull.*", log)
    assert "Float too large" not in log
    # The long table was split into floats of at most MAX_LATEX_ROWS rows ("continued").
    tex = tables[1].to_latex()
    assert tex.count("\\begin{table}") >= 3 and "(continued)" in tex
    # The wide one is set smaller or split into panels, never wider than the page.
    assert "\\normalsize" not in tables[3].to_latex()
