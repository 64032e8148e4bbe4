r"""Hostile names in figures and tables: unit, outcome and estimate names that look like
markup (``$\badcmd{x}$``, ``<script>``, ``|pipe|``, ...) are drawn and printed literally.

matplotlib parses any text holding two ``$`` as mathtext, so a unit named ``$\badcmd{x}$``
used to abort a run when its figure was saved; LaTeX, HTML and Markdown tables each have
their own special characters. Every figure here is saved to PNG (which lays out and
renders every text), and every table format is parsed back.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from zoneimpact.estimators import get_estimator  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.parallel import set_progress  # noqa: E402
from zoneimpact.report import plots, style  # noqa: E402
from zoneimpact.report.tables import (  # noqa: E402
    Table,
    claims_table,
    event_study_table,
    regression_table,
)
from zoneimpact.results import EstimationResult, terms_frame  # noqa: E402
from zoneimpact.run import run_spec  # noqa: E402
from zoneimpact.spec import load_spec  # noqa: E402

set_progress(False)

# DejaVu Sans (matplotlib's default font) has no CJK glyphs: 北京 draws as boxes, with a
# warning, which is a font matter and not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore:Glyph .* missing from font")

HOSTILE = [
    r"$\badcmd{x}$",
    "a_b",
    "50%",
    "x & y",
    "<script>",
    "|pipe|",
    "{brace}",
    "~tilde^",
    "line1\nline2",
    "北京",
]
IDS = [
    "mathtext",
    "underscore",
    "percent",
    "ampersand",
    "html",
    "pipe",
    "brace",
    "tilde",
    "newline",
    "cjk",
]

#: Each hostile name as booktabs LaTeX must print it.
LATEX = {
    r"$\badcmd{x}$": r"\$\textbackslash{}badcmd\{x\}\$",
    "a_b": r"a\_b",
    "50%": r"50\%",
    "x & y": r"x \& y",
    "<script>": r"\textless{}script\textgreater{}",
    "|pipe|": r"\textbar{}pipe\textbar{}",
    "{brace}": r"\{brace\}",
    "~tilde^": r"\textasciitilde{}tilde\textasciicircum{}",
    "line1\nline2": "line1 line2",
    "北京": "北京",
}


# ----------------------------------------------------------------------------- panel
def hostile_frame() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """8 regions x 3 units, 2000-2009; zones (cohorts 2004 and 2006) are unit 0 of regions
    0-3, the others never treated. The ten hostile names are units (four zones, six
    never-treated donors) and, as copies of ``y``, outcome columns.

    Returns the long frame, the geography (unit, region, lat, lon) and the adjacency.
    """
    rng = np.random.default_rng(11)
    slots = [(r, 0) for r in range(4)] + [(r, k) for r in range(5, 8) for k in range(2)]
    name = {slot: h for slot, h in zip(slots, HOSTILE, strict=True)}
    rows, adj = [], []
    for r in range(8):
        units = [name.get((r, k), f"r{r}u{k}") for k in range(3)]
        adj += [(units[0], units[1]), (units[0], units[2])]
        for k, u in enumerate(units):
            g = (2004 if r < 2 else 2006) if r < 4 and k == 0 else 0
            for t in range(2000, 2010):
                y = 50 + 10 * r + 4 * k + 2 * (t - 2000) + rng.normal(0, 1.0)
                y += 8.0 if g and t >= g else 0.0
                lat, lon = 30 + 0.4 * r + 0.05 * k, 110 + 0.4 * r - 0.05 * k
                rows.append(
                    {
                        "unit": u,
                        "year": t,
                        "g": g,
                        "y": y,
                        "region": f"reg{r}",
                        "lat": lat,
                        "lon": lon,
                    }
                )
    df = pd.DataFrame(rows)
    geo = df.drop_duplicates("unit")[["unit", "region", "lat", "lon"]].reset_index(drop=True)
    return df, geo, pd.DataFrame(adj, columns=["unit", "neighbour"])


@pytest.fixture(scope="module")
def panel() -> Panel:
    df, geo, adj = hostile_frame()
    df = df.assign(**{h: df["y"] for h in HOSTILE})
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        cohort="g",
        outcomes=[*HOSTILE, "y"],
        geography=geo,
        adjacency=adj,
    )


# ----------------------------------------------------------------------------- figures
def _saved_texts(fig: Figure) -> list[Text]:
    """Render ``fig`` to PNG (laying out and parsing every text) and return its texts."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def assert_literal(fig: Figure, name: str, where: str) -> None:
    """``name`` appears as typed in a text of ``fig``, and that text is not mathtext."""
    texts = _saved_texts(fig)
    hits = [t for t in texts if name in t.get_text()]
    assert hits, f"{name!r} not drawn in {where}: {[t.get_text() for t in texts]}"
    for t in hits:
        assert not t.get_parse_math() and not t.get_usetex(), (where, t.get_text())


@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_did_figures_draw_hostile_outcome_and_block_names(panel, name):
    cs_fit = get_estimator("callaway_santanna")
    cs = cs_fit(panel, outcome=name, rng=np.random.default_rng(0), bootstrap=False)
    figs = plots.default_figures(cs)
    assert {"event_study", "group_time"} <= set(figs)
    for key, fig in figs.items():
        assert_literal(fig, name, key)  # "Effect on NAME", "ATT(g, t) on NAME"
    # estimate-block names as legend entries (the run's overlaid event study)
    other = cs_fit(panel, outcome="y", rng=np.random.default_rng(1), bootstrap=False)
    fig = plots.event_study_plot([cs, other], labels=[name, "plain"], title=name)
    assert_literal(fig, name, "event-study legend")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][0] == name


@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_sc_figures_draw_hostile_unit_and_donor_names(panel, name):
    sc = get_estimator("synthetic_control")(
        panel,
        outcome=name,
        rng=np.random.default_rng(0),
        treated_unit=name,
        treatment_start=2006,
        n_starts=1,
        placebo_starts=1,
    )
    figs = plots.default_figures(sc)
    assert set(figs) == {"sc_paths", "sc_gap", "placebo_gaps", "rmspe_ratio", "donor_weights"}
    for key in ("sc_paths", "sc_gap", "placebo_gaps", "rmspe_ratio"):
        assert_literal(figs[key], name, key)  # "Treated (NAME)" and/or "Gap in NAME"
    # donor names are the tick labels, as typed (hostile donors included)
    ax = figs["donor_weights"].axes[0]
    _saved_texts(figs["donor_weights"])
    w = sc.donor_weights[sc.donor_weights.abs() > 1e-10]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(str(u) for u in w.index)
    assert all(not t.get_parse_math() for t in ax.get_yticklabels())


def test_sc_donor_weights_show_every_hostile_donor():
    """Every hostile name as a donor with positive weight, on one figure."""
    donors = pd.Series(np.linspace(0.05, 0.15, len(HOSTILE)), index=HOSTILE)
    res = _SC(
        "synthetic_control",
        HOSTILE[0],
        terms_frame(["att"], [1.0], [np.nan]),
        donor_weights=donors / donors.sum(),
    )
    fig = plots.donor_weights_plot(res)
    for name in HOSTILE:
        assert_literal(fig, name, "donor_weights")


@dataclass(frozen=True)
class _SC(EstimationResult):
    donor_weights: pd.Series | None = None


@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_spillover_figures_draw_hostile_names(panel, name):
    sp = get_estimator("spillover")(panel, outcome=name, rng=np.random.default_rng(0), n_boot=9)
    figs = plots.default_figures(sp)
    assert "decomposition" in figs
    # One (adjacency) ring: no by-distance figure by default (a single point, already a bar
    # of the decomposition); drawn on request.
    assert "spillover_by_ring" not in figs
    figs["spillover_by_ring"] = plots.spillover_by_ring_plot(sp)
    for key, fig in figs.items():
        assert_literal(fig, name, key)  # the outcome: bar-group label, "Spillover on NAME"
    # several outcomes or estimate blocks: one bar group each, labelled by its name
    fig = plots.decomposition_plot({name: sp, "plain": sp})
    assert_literal(fig, name, "decomposition group")


def test_sdid_bacon_and_map_with_hostile_names(panel):
    name = HOSTILE[0]
    sdid = get_estimator("synthetic_did")(
        panel, outcome=name, rng=np.random.default_rng(0), se_method="placebo", n_reps=5
    )
    figs = plots.default_figures(sdid)
    assert "sdid_weights" in figs
    texts = {t.get_text() for t in _saved_texts(figs["sdid_weights"])}
    assert texts & set(HOSTILE), "no hostile donor among the unit-weight labels"
    bacon = get_estimator("bacon")(panel, outcome=name)
    assert_literal(plots.default_figures(bacon)["bacon"], name, "bacon")
    fig = plots.unit_map_plot(panel, never_label=name)
    assert_literal(fig, name, "unit map legend")


def test_caller_axes_made_outside_the_house_style(panel):
    """Axes a caller made under default rc (mathtext on) still get literal names."""
    name = HOSTILE[0]
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    sc = get_estimator("synthetic_control")(
        panel, outcome=name, rng=np.random.default_rng(0), treated_unit=name, n_starts=1
    )
    plots.sc_paths_plot(sc, ax=axes[0, 0], xlabel=name)
    plots.sc_gap_plot(sc, ax=axes[0, 1])
    sp = get_estimator("spillover")(panel, outcome=name, rng=np.random.default_rng(0), n_boot=9)
    plots.decomposition_plot({name: sp}, ax=axes[1, 0])
    w = pd.Series([0.5, 0.5], index=[name, "<script>"])
    res = _SC("synthetic_control", name, terms_frame(["att"], [1.0], [1.0]), donor_weights=w)
    plots.donor_weights_plot(res, ax=axes[1, 1])
    assert_literal(fig, name, "caller's figure")
    assert_literal(fig, "<script>", "caller's figure")
    assert axes[0, 0].get_xlabel() == name


def test_house_style_does_not_change_global_text_settings():
    before = {k: matplotlib.rcParams[k] for k in ("text.parse_math", "text.usetex")}
    with style.paper_style():
        assert matplotlib.rcParams["text.parse_math"] is False
    assert {k: matplotlib.rcParams[k] for k in before} == before


def test_literal_rejects_non_text():
    with pytest.raises(TypeError, match="Text, Tick or Legend"):
        style.literal("$x$")


# ----------------------------------------------------------------------------- tables
def _result(estimator: str, outcome: str, shift: float = 0.0) -> EstimationResult:
    return EstimationResult(
        estimator,
        outcome,
        terms_frame(
            ["att", "event:-2", "event:0", "event:1"],
            [0.5 + shift, -0.05, 0.4, -0.6],
            [0.1, 0.05, 0.1, 0.2],
        ),
        n_units=24,
        n_obs=240,
        info={"control_group": outcome, "cluster": "unit"},
    )


def hostile_tables() -> dict[str, Table]:
    """Every table kind with hostile column, row, footer, caption, note and label text."""
    named = {h: _result(h, h, i / 10) for i, h in enumerate(HOSTILE)}
    claims = pd.DataFrame(
        {
            "claim": HOSTILE,
            "data": HOSTILE[::-1],
            "estimator": HOSTILE,
            "estimate": np.linspace(-1, 1, len(HOSTILE)),
            "ci_low": -2.0,
            "ci_high": 2.0,
            "margin": 0.5,
            "breakdown": np.nan,
            "verdict": HOSTILE,
        }
    )
    caption = dict(title=" ".join(HOSTILE), notes=HOSTILE, label=r"tab:$\badcmd{x}$ {x}")
    return {
        "regression": regression_table(
            named, terms={"att": r"[$\badcmd{x}$] effect"}, stars=True, ci=True, **caption
        ),
        "event_study": event_study_table(named, **caption),
        "claims": claims_table(claims, **caption),
        "frame": Table.from_frame(
            pd.DataFrame({"unit": HOSTILE, "weight": 0.1, "note": HOSTILE[::-1]}), **caption
        ),
    }


def _cells(tab: Table) -> list[list[str]]:
    return [tab.columns, *tab.to_frame().astype(str).to_numpy().tolist()]


@pytest.mark.parametrize("kind", ["regression", "event_study", "claims", "frame"])
def test_latex_escapes_hostile_names(kind):
    tab = hostile_tables()[kind]
    tex = tab.to_latex()
    for name, escaped in LATEX.items():
        assert escaped in tex, (name, escaped)
    lines = tex.splitlines()
    # A table too wide for the page is split into panels of columns, each repeating the
    # stub: every panel holds every row, and the panels together hold every column.
    starts = [i for i, ln in enumerate(lines) if ln == "\\toprule"]
    ends = [i for i, ln in enumerate(lines) if ln == "\\bottomrule"]
    seen_cols = 0
    for a, b in zip(starts, ends, strict=True):
        rows = [ln for ln in lines[a + 1 : b] if ln != "\\midrule"]
        assert len(rows) == 1 + len(tab.to_frame())  # header + body: no name broke a row
        ncol = len(re.findall(r"(?<!\\)&", rows[0])) + 1
        seen_cols += ncol - 1
        for ln in rows:
            assert len(re.findall(r"(?<!\\)&", ln)) == ncol - 1, ln
            assert not ln.lstrip().startswith(("[", "*")), ln  # not read as \\[len] or \\*
    assert seen_cols == len(tab.columns) - 1
    # Nothing special is left bare: drop the escapes and our own markup, then look.
    bare = re.sub(r"\\[$&%#_{}]", "", tex)
    bare = re.sub(r"\\[A-Za-z]+(\{\})?|\$-\$|\$\\times\$", "", bare)
    assert not re.search(r"[$%#_^~<>|]", bare), re.findall(r".{0,20}[$%#_^~<>|].{0,20}", bare)
    assert bare.count("{") == bare.count("}")  # our own groups only, balanced
    assert "\\label{tab:--badcmd-x----x-}" in tex
    assert "\\caption{\\$\\textbackslash{}badcmd\\{x\\}\\$ a\\_b 50\\% x \\& y" in tex


def test_latex_shields_a_leading_bracket():
    tab = hostile_tables()["regression"]
    row = next(ln for ln in tab.to_latex().splitlines() if "badcmd" in ln and "effect" in ln)
    assert row.startswith("{}[\\$\\textbackslash{}badcmd")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_hostile_latex_compiles(tmp_path):
    # pdflatex has no CJK fonts by default (xelatex with ctex has): 北京 is left out here.
    keep = [h for h in HOSTILE if h != "北京"]
    named = {h: _result(h, h) for h in keep}
    tab = regression_table(
        named,
        terms={"att": "[" + keep[0] + "] effect", "event:0": "*" + keep[1]},
        stars=True,
        ci=True,
        title=" ".join(keep),
        notes=["[" + h + "]" for h in keep],
        label=keep[0],
    )
    doc = (
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + tab.to_latex()
        + event_study_table(named, title=keep[0]).to_latex()
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


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption: list[str] = []
        self.notes: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self._where = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("caption", "tfoot"):
            self._where = tag
        if tag == "tr" and self._where != "tfoot":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self._where = ""
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            (self.notes if self._where == "tfoot" else self.rows[-1]).append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._where == "caption":
            self.caption.append(data)


@pytest.mark.parametrize("kind", ["regression", "event_study", "claims", "frame"])
def test_html_escapes_hostile_names(kind):
    tab = hostile_tables()[kind]
    page = tab.to_html()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "x &amp; y" in page
    p = _Cells()
    p.feed(page)
    assert set(p.tags) <= {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
    assert p.rows == _cells(tab)  # every cell back, as typed
    assert "".join(p.caption) == tab.title
    assert p.notes == list(tab.notes)


def _gfm_cells(line: str) -> list[str]:
    """Split a pipe-table row as GitHub does: at each pipe not escaped by a backslash."""
    cells, cur, i = [], "", 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur += line[i : i + 2]
            i += 2
            continue
        if ch == "|":
            cells.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    cells.append(cur)
    return cells[1:-1]  # the row starts and ends with a pipe


def _md_unescape(cell: str) -> str:
    # CommonMark: a backslash before ASCII punctuation prints that character.
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", cell)


@pytest.mark.parametrize("kind", ["regression", "event_study", "claims", "frame"])
def test_markdown_escapes_hostile_names(kind):
    tab = hostile_tables()[kind]
    md = tab.to_markdown()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len(rows) == 2 + len(tab.to_frame())  # header, rule, body: no row broken
    expected = [[c.replace("\n", " ") for c in r] for r in _cells(tab)]
    parsed = [[_md_unescape(c.strip()) for c in _gfm_cells(ln)] for ln in rows]
    assert parsed[0] == expected[0]
    assert parsed[2:] == expected[1:]
    # no raw HTML tag, math delimiter or cell delimiter: each is backslash-escaped
    assert not re.search(r"(?<!\\)<script>|(?<!\\)\$\\|(?<!\\)\|pipe", md)
    assert "\\<script>" in md and "\\|pipe\\|" in md and "\\$\\\\badcmd{x}\\$" in md


@pytest.mark.parametrize("kind", ["regression", "event_study", "claims", "frame"])
def test_csv_round_trips_hostile_names(kind):
    tab = hostile_tables()[kind]
    assert list(csv.reader(io.StringIO(tab.to_csv(), newline=""))) == _cells(tab)


def test_csv_quotes_a_bare_carriage_return():
    tab = Table.from_frame(pd.DataFrame({"unit": ["a\rb", "c"], "y": [1.0, 2.0]}))
    got = list(csv.reader(io.StringIO(tab.to_csv(), newline="")))
    assert got == [["unit", "y"], ["a\nb", "1.000"], ["c", "2.000"]]


# ----------------------------------------------------------------------------- a whole run
def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def test_run_spec_with_hostile_unit_names(tmp_path: Path):
    df, geo, adj = hostile_frame()
    df.drop(columns=["region", "lat", "lon"]).to_csv(tmp_path / "panel.csv", index=False)
    geo.to_csv(tmp_path / "geo.csv", index=False)
    adj.to_csv(tmp_path / "adj.csv", index=False)
    treated = HOSTILE[0]  # a zone unit (cohort 2004)
    spec = f"""
title = {_toml("Zones " + " ".join(HOSTILE))}
seed = 3
[data]
source = "file"
path = "panel.csv"
unit = "unit"
time = "year"
cohort = "g"
outcomes = ["y"]
geography = "geo.csv"
adjacency = "adj.csv"
[[estimate]]
name = "cs"
estimator = "callaway_santanna"
outcome = "y"
[estimate.options]
bootstrap = false
[[estimate]]
name = "sc"
estimator = "synthetic_control"
outcome = "y"
[estimate.options]
treated_unit = {_toml(treated)}
n_starts = 1
placebo_starts = 1
[[estimate]]
name = "spill"
estimator = "spillover"
outcome = "y"
[estimate.options]
n_boot = 9
"""
    path = tmp_path / "hostile.toml"
    path.write_text(spec, encoding="utf-8")
    out = run_spec(load_spec(path), tmp_path / "run")
    root = out.path
    figures = {p.stem for p in (root / "figures").glob("*.png")}
    assert {"sc_sc_paths", "sc_placebo_gaps", "sc_donor_weights", "spill_decomposition"} <= figures
    assert {"cs_group_time", "event_study", "units_map"} <= figures
    page = (root / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    for ext in (".tex", ".md", ".html", ".csv"):
        assert (root / "tables" / f"estimates{ext}").is_file()
