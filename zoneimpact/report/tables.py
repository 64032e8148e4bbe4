r"""Publication tables: several estimates side by side, event studies and claim verdicts.

A :class:`Table` holds formatted cells and renders them as LaTeX (booktabs), Markdown,
HTML or CSV; :meth:`Table.save` picks the format from the file extension, as R
``modelsummary`` does. :func:`regression_table` lays results out like ``modelsummary`` /
``fixest::etable``: one column per model, the standard error in parentheses under each
estimate, optional confidence intervals and significance stars, and footer rows for units,
observations, clusters, control group, fixed effects and the pre-trend p-value.

Why hand-written rather than ``maketables`` or ``great_tables``
---------------------------------------------------------------
Both were tried (maketables 0.2.0, great_tables 1.1.0). Results implement the maketables
plug-in format, so ``maketables.ETable([res1, res2])`` reads them through their own hooks
as it reads pyfixest models (``zoneimpact/_maketables.py``; tested live, maketables is in
the ``test`` extra). As the default it did not fit:

* dependencies: maketables pulls in great_tables, IPython, python-docx and tabulate; the
  runtime dependencies of zoneimpact are kept to the scientific stack;
* its LaTeX needs ``threeparttable``, ``tabularx`` and ``makecell``, while ours needs only
  ``booktabs``, and is sized (font size, stacked header lines, column panels, one float
  per at most :data:`MAX_LATEX_ROWS` rows) so that it compiles without an overfull box on
  a letter page (tests/test_tables.py runs pdflatex);
* its footer is built for regression models (R², fixed-effect markers); ours comes from
  the result's ``info`` (control group, number of clusters, SE type, pre-trend p-value).

great_tables renders HTML/LaTeX well but is itself a heavy dependency for what is a
few dozen lines of string formatting per format.
"""

from __future__ import annotations

import csv
import fnmatch
import html
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import labels
from ..errors import SpecError, ZoneImpactError
from ..results import band_alpha as _band_alpha
from ..results import check_alpha

__all__ = [
    "DEFAULT_STARS",
    "Table",
    "TableError",
    "claims_table",
    "event_study_table",
    "pretrends_table",
    "regression_table",
]


class TableError(ZoneImpactError, ValueError):
    """A table cannot be built or written from the input given."""


#: Star thresholds of applied economics (Stata/fixest convention): symbol -> p-value bound.
DEFAULT_STARS: dict[str, float] = {"*": 0.10, "**": 0.05, "***": 0.01}

#: Footer rows known to :func:`regression_table`: key -> label.
STAT_LABELS: dict[str, str] = {
    "n_obs": "Observations",
    "n_units": "Units",
    "n_clusters": "Clusters",
    "cluster": "Clustered by",
    "fixed_effects": "Fixed effects",
    "covariates": "Controls",
    "control_group": "Control group",
    "se_type": "Standard errors",
    "pretrend_p": "Pre-trend p-value",
}

#: The footer of :func:`regression_table` by default (fixest ``etable`` order: sample,
#: clusters, fixed effects, controls, then the design and inference).
DEFAULT_STATS: tuple[str, ...] = (
    "n_obs",
    "n_units",
    "n_clusters",
    "fixed_effects",
    "covariates",
    "control_group",
    "se_type",
    "pretrend_p",
)

#: Text width of the ``article`` class at 10 pt on letter (and A4) paper, in points.
LETTER_TEXT_WIDTH_PT = 345.0
#: Body rows per float: caption, header, notes and ~34 rows at ``\small`` fit the 550 pt
#: text height of ``article`` at 10 pt (checked by compiling, tests/test_tables.py).
MAX_LATEX_ROWS = 34

_FORMATS = {".tex": "latex", ".md": "markdown", ".html": "html", ".htm": "html", ".csv": "csv"}


# ----------------------------------------------------------------------------- Table
# eq=False: DataFrames have no truth value, so field-wise equality would raise.
@dataclass(frozen=True, eq=False)
class Table:
    r"""Formatted table cells, ready to render.

    Cells, column names, title and notes are plain text (unit, outcome and estimate names
    come from the user's data and spec): each format escapes its own special characters,
    so ``$\badcmd{x}$``, ``x & y`` or ``<script>`` print as typed in LaTeX, HTML,
    Markdown and CSV alike.

    Parameters
    ----------
    frame : pandas.DataFrame
        String cells. The first column is the stub (row labels, may be empty for the
        standard-error lines); the others are the data columns. Column names are the header.
    midrules : tuple of int
        Row positions (0-based, into ``frame``) *before* which a horizontal rule is drawn,
        e.g. between the coefficients and the footer statistics.
    title : str, optional
        Caption.
    notes : tuple of str
        Lines printed under the table (star legend, what is in parentheses, ...).
    label : str, optional
        LaTeX ``\label``.
    data : pandas.DataFrame, optional
        The numbers behind the cells in long form (machine-readable), when available.
    """

    frame: pd.DataFrame
    midrules: tuple[int, ...] = ()
    title: str | None = None
    notes: tuple[str, ...] = ()
    label: str | None = None
    data: pd.DataFrame | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.frame.shape[1] < 1:
            raise TableError("A table needs at least a stub column.")
        cols = [str(c) for c in self.frame.columns]
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise TableError(f"Table column names must be unique; repeated: {dup}.")

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        index: bool = False,
        digits: int = 3,
        title: str | None = None,
        notes: Iterable[str] = (),
        label: str | None = None,
    ) -> Table:
        """A table from any DataFrame; floats are printed with ``digits`` decimals.

        A float column of whole numbers that is named as a count (``n_*``, ``*count``) or
        has a missing value (an integer column that pandas stored as float) prints them as
        integers; a p-value column (``p``, ``p_value``, ``*_p``, ...,
        :func:`labels.is_p_column`) as papers print p-values ("0.043", "<0.001").
        With ``index=True`` the index becomes the stub column.
        """
        src = df.reset_index() if index else df
        cells = pd.DataFrame({str(c): _fmt_column(c, src[c].tolist(), digits) for c in src.columns})
        return cls(cells, title=title, notes=tuple(notes), label=label, data=df.copy())

    # ------------------------------------------------------------------ basics
    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def shape(self) -> tuple[int, int]:
        return self.frame.shape

    def to_frame(self) -> pd.DataFrame:
        """The formatted cells (strings) as a new DataFrame; the first column is the stub."""
        return self.frame.copy()

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()

    def _rows(self) -> list[list[str]]:
        return [[str(v) for v in row] for row in self.frame.itertuples(index=False)]

    # ------------------------------------------------------------------ LaTeX
    def to_latex(
        self,
        *,
        float_env: bool = True,
        placement: str = "htbp",
        text_width_pt: float = LETTER_TEXT_WIDTH_PT,
        max_rows: int = MAX_LATEX_ROWS,
    ) -> str:
        r"""Booktabs LaTeX that fits the page. Needs only ``\usepackage{booktabs}``.

        The font size is the largest of ``\normalsize``, ``\small``, ``\footnotesize`` and
        ``\scriptsize`` at which the estimated width fits ``text_width_pt``; a table still
        too wide is split into panels of columns (each repeating the stub), and a table
        longer than ``max_rows`` rows into consecutive floats ("continued"), breaking only
        between estimates, so no box is overfull and no float is taller than a page.

        Parameters
        ----------
        float_env : bool
            Wrap in ``table`` floats with caption and label (default). ``False`` returns
            the bare ``tabular`` blocks (plus notes) to ``\input`` into one's own float.
        placement : str
            Float placement specifier.
        text_width_pt : float
            Width available (default: the 345 pt text block of the ``article`` class at
            10 pt on letter or A4 paper).
        max_rows : int
            Most body rows per float (default 34: with caption and notes, a float at
            ``\small`` then fits the 550 pt text height of ``article``).
        """
        size, colsep, panels = _latex_layout(self, text_width_pt)
        chunks = _row_chunks(self, max_rows)
        blocks: list[str] = []
        n_blocks = len(chunks) * len(panels)
        k = 0
        for start, stop in chunks:
            for cols in panels:
                k += 1
                last = k == n_blocks
                lines: list[str] = []
                if float_env:
                    lines += [f"\\begin{{table}}[{placement}]", "\\centering"]
                    if self.title:
                        more = " (continued)" if k > 1 else ""
                        lines.append(f"\\caption{{{_latex_escape(self.title)}{more}}}")
                    if self.label and k == 1:
                        lines.append(f"\\label{{{_latex_label(self.label)}}}")
                lines.append("{" + size)
                lines.append(f"\\setlength{{\\tabcolsep}}{{{colsep}pt}}")
                lines.append(f"\\begin{{tabular}}{{l{'c' * len(cols)}}}")
                lines.append("\\toprule")
                head = [_latex_cell(self.columns[0])]
                head += [_latex_wrapped(self.columns[j], "b") for j in cols]
                lines.append(_latex_line(" & ".join(head)) + " \\\\")
                lines.append("\\midrule")
                rows = self._rows()
                for i in range(start, stop):
                    if i in self.midrules and i > start:
                        lines.append("\\midrule")
                    row = [_latex_cell(rows[i][0]), *[_latex_wrapped(rows[i][j]) for j in cols]]
                    lines.append(_latex_line(" & ".join(row)) + " \\\\")
                lines.append("\\bottomrule")
                lines.append("\\end{tabular}")
                if self.notes and last:
                    lines.append("")
                    lines.append("\\smallskip")
                    # A parbox of the text width: long notes wrap instead of running off.
                    lines.append(
                        "\\parbox{\\linewidth}{\\footnotesize "
                        + " \\\\\n".join(_latex_line(_latex_escape(n)) for n in self.notes)
                        + "}"
                    )
                elif not last:
                    lines.append("")
                    lines.append(
                        "\\smallskip\\parbox{\\linewidth}{\\footnotesize\\centering (continued)}"
                    )
                lines.append("}")
                if float_env:
                    lines.append("\\end{table}")
                blocks.append("\n".join(lines))
        return "\n".join(blocks) + "\n"

    # ------------------------------------------------------------------ Markdown
    def to_markdown(self) -> str:
        """A GitHub-flavoured pipe table (title above, notes below)."""
        cols = self.columns

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(_md_escape(c) for c in cells) + " |"

        out: list[str] = []
        if self.title:
            out += [f"**{_md_escape(self.title)}**", ""]
        out.append(line(cols))
        out.append("| " + " | ".join([":---"] + ["---:"] * (len(cols) - 1)) + " |")
        out += [line(r) for r in self._rows()]
        if self.notes:
            out.append("")
            out += [_md_note(n) + "  " for n in self.notes]
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ HTML
    def to_html(self, *, table_class: str = "zi-table") -> str:
        """An HTML ``<table>`` (no styles or scripts; rules drawn by CSS classes)."""
        esc = html.escape
        out = [f'<table class="{esc(table_class)}">']
        if self.title:
            out.append(f"<caption>{esc(self.title)}</caption>")
        out.append(
            "<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in self.columns) + "</tr></thead>"
        )
        out.append("<tbody>")
        for i, row in enumerate(self._rows()):
            cls = ' class="midrule"' if i in self.midrules and i > 0 else ""
            cells = f'<th scope="row">{esc(row[0])}</th>' + "".join(
                f"<td>{esc(c)}</td>" for c in row[1:]
            )
            out.append(f"<tr{cls}>{cells}</tr>")
        out.append("</tbody>")
        if self.notes:
            ncol = len(self.columns)
            out.append(
                "<tfoot>"
                + "".join(f'<tr><td colspan="{ncol}">{esc(n)}</td></tr>' for n in self.notes)
                + "</tfoot>"
            )
        out.append("</table>")
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ CSV
    def to_csv(self, path: str | Path | None = None) -> str:
        """The formatted cells as CSV (header = column names; title and notes omitted).

        Fields holding commas, quotes or line breaks are quoted; a carriage return inside a
        cell is written as a newline (the csv module would leave a bare one unquoted).
        Returns the CSV text; also writes it when ``path`` is given.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_csv_cell(c) for c in self.columns)
        writer.writerows([_csv_cell(c) for c in row] for row in self._rows())
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ save
    def save(self, path: str | Path) -> Path:
        """Write the table in the format named by the extension: ``.tex``, ``.md``,
        ``.html``/``.htm`` or ``.csv`` (R ``modelsummary(output = "file.ext")``).
        """
        path = Path(path)
        kind = _FORMATS.get(path.suffix.lower())
        if kind is None:
            raise TableError(
                f"Cannot tell the table format from the file name {str(path)!r} "
                f"(extension {path.suffix or 'none'!r}). Use one of: "
                f"{', '.join(sorted(_FORMATS))}."
            )
        text = {
            "latex": self.to_latex,
            "markdown": self.to_markdown,
            "html": self.to_html,
            "csv": self.to_csv,
        }[kind]()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise TableError(
                f"Cannot write the table to {path}: {exc.strerror or exc}. Check that the "
                "folder exists and is writable."
            ) from exc
        return path


# ----------------------------------------------------------------------------- escaping
# Every cell, header, caption and note is text (names from the user's data and spec):
# each format escapes what would otherwise be markup. Our own markup (booktabs rules,
# ``$-$`` minus signs, table environments) is added after escaping.
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",  # OT1 fonts print a bare | as an em dash
    # Characters outside pdflatex's default input encoding coverage that we emit ourselves.
    "\u2212": "-",
    "\u00d7": r"$\times$",
    "\u2013": "--",
    "\u2014": "---",
    "\u2264": r"$\leq$",
    "\u2265": r"$\geq$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))
# A minus sign before a number, printed as a math minus rather than a hyphen.
_MINUS_RE = re.compile(r"(?<![\w.])-(?=\.?\d)")


# Line breaks and other control characters: a blank line ends a paragraph (an error inside
# \caption or after \\), other control characters are invalid input to TeX or break
# Markdown rows.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _latex_escape(text: str) -> str:
    r"""``text`` as LaTeX that prints it literally.

    The ten special characters (``\ { } $ & # ^ _ ~ %``) and ``< > |`` become their
    text-mode commands; line breaks and control characters become a space.
    """
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], _CONTROL_RE.sub(" ", str(text)))


def _latex_cell(text: str) -> str:
    return _MINUS_RE.sub("$-$", _latex_escape(text))


def _latex_line(text: str) -> str:
    r"""Shield a line that starts with ``[`` or ``*`` with ``{}``: after ``\\`` or a
    booktabs rule, LaTeX would read it as an optional argument (a length or a star)."""
    return "{}" + text if text.lstrip()[:1] in ("[", "*") else text


def _latex_label(text: str) -> str:
    r"""A ``\label`` key: characters other than letters, digits and ``:._-`` become ``-``."""
    return re.sub(r"[^A-Za-z0-9:._-]", "-", str(text))


# Markdown: the backslash (so the escapes added stay escapes), the cell delimiter, math
# delimiters, and the starts of raw HTML (``<tag``, ``</``, ``<!``, ``<?``) and of
# character references (``&name;``, ``&#123;``); CommonMark prints a backslash-escaped
# ASCII punctuation character as itself.
_MD_RE = re.compile(r"[\\|$]|<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def _md_escape(text: str) -> str:
    """``text`` for a Markdown table cell, title or note: printed as typed, on one line."""
    return _MD_RE.sub(lambda m: "\\" + m.group(0), _CONTROL_RE.sub(" ", str(text)))


# A line that Markdown would read as a list item, heading or quote ("* p < 0.1, ..."
# is a bullet in CommonMark): its first character is backslash-escaped.
_MD_BLOCK_RE = re.compile(r"^(\s*|\s*\d+)((?<!\d)[*+\-#>]|(?<=\d)[.)])")


def _md_note(text: str) -> str:
    """A note line of a Markdown table, printed as typed (not as a list item or heading)."""
    return _MD_BLOCK_RE.sub(lambda m: m.group(1) + "\\" + m.group(2), _md_escape(text), 1)


def _csv_cell(text: str) -> str:
    # The csv module quotes fields holding "\n" but not a bare "\r", which readers take
    # as a row end: normalise carriage returns to newlines (then quoted).
    return str(text).replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------- LaTeX layout
# (size command, points, tabcolsep): tried in order until the table fits.
_LATEX_SIZES = (
    ("\\normalsize", 10.0, 6.0),
    ("\\small", 9.0, 5.0),
    ("\\footnotesize", 8.0, 3.5),
    ("\\scriptsize", 7.0, 3.0),
)
# Advance of a lower-case letter, space or punctuation of Computer Modern at 10 pt, with a
# margin (digits are 5 pt, capitals up to 7.5 pt; the math minus is 7.8 pt).
_CHAR_PT = 4.5


#: Text cells longer than this (in characters) wrap at spaces onto stacked lines.
_WRAP = 12


def _wrap_lines(text: str) -> list[str]:
    """``text`` in lines of at most :data:`_WRAP` characters, broken at spaces. Numbers and
    intervals (cells starting with a bracket or parenthesis) are never broken."""
    text = _CONTROL_RE.sub(" ", str(text))
    if len(text) <= _WRAP or not ({" ", "\u2013"} & set(text)) or text.lstrip()[:1] in "([{":
        return [text]
    # break at spaces and after an en dash ("Callaway–" / "Sant'Anna")
    words = re.findall(r"[^ \u2013]+\u2013?|\u2013", text)
    lines: list[str] = []
    for word in words:
        sep = "" if lines and lines[-1].endswith("\u2013") else " "
        if lines and len(lines[-1]) + len(sep) + len(word) <= _WRAP:
            lines[-1] += sep + word
        else:
            lines.append(word)
    return lines


def _latex_wrapped(text: str, pos: str = "t") -> str:
    r"""A cell, its long text stacked in a nested ``tabular`` (core LaTeX, no package);
    ``pos`` "b" aligns the last line with the row (headers), "t" the first (body)."""
    lines = _wrap_lines(text)
    if len(lines) == 1:
        return _latex_cell(text)
    return (
        f"\\begin{{tabular}}[{pos}]{{@{{}}c@{{}}}}"
        + " \\\\ ".join(_latex_cell(x) for x in lines)
        + "\\end{tabular}"
    )


def _text_pt(text: str) -> float:
    """Estimated width at 10 pt of the widest line of a (wrapped) cell."""
    return max(
        sum(
            6.5 if c.isupper() else 5.0 if c.isdigit() else 7.8 if c == "-" else _CHAR_PT
            for c in line
        )
        for line in _wrap_lines(text)
    )


def _latex_layout(table: Table, width_pt: float) -> tuple[str, float, list[list[int]]]:
    """(size command, tabcolsep in pt, column panels) so that each panel fits ``width_pt``."""
    rows = [table.columns, *table._rows()]
    stub = max(len(_CONTROL_RE.sub(" ", r[0])) * _CHAR_PT for r in rows)
    widths = [stub] + [max(_text_pt(r[j]) for r in rows) for j in range(1, len(table.columns))]
    for cmd, pt, sep in _LATEX_SIZES:
        per = [w * pt / 10 + 2 * sep for w in widths]
        # 6% headroom: the per-character widths are averages, not the font's metrics
        if sum(per) <= 0.94 * width_pt:
            return cmd, sep, [list(range(1, len(widths)))]
    # Still too wide at the smallest size: panels of as many columns as fit beside the stub.
    panels: list[list[int]] = []
    current: list[int] = []
    used = per[0]
    for j in range(1, len(widths)):
        if current and used + per[j] > 0.94 * width_pt:
            panels.append(current)
            current, used = [], per[0]
        current.append(j)
        used += per[j]
    panels.append(current)
    return cmd, sep, panels


def _row_chunks(table: Table, max_rows: int) -> list[tuple[int, int]]:
    """Row ranges of at most ``max_rows`` rows, cut only before a row with a stub label (an
    estimate stays with its SE and interval lines)."""
    rows = table._rows()
    n = len(rows)
    if n <= max_rows:
        return [(0, n)]
    chunks: list[tuple[int, int]] = []
    start = 0
    while n - start > max_rows:
        cut = start + max_rows
        while cut > start + 1 and not rows[cut][0].strip():
            cut -= 1
        chunks.append((start, cut))
        start = cut
    chunks.append((start, n))
    return chunks


# ----------------------------------------------------------------------------- numbers
def _fmt_num(x: Any, digits: int) -> str:
    """Fixed decimals; NaN -> empty; no negative zero.

    A nonzero number that would print as zero at ``digits`` decimals (``2e-05`` at 3)
    gets two significant digits instead (``0.000020``; below 1e-6 in scientific
    notation, ``1.2e-07``), so neither its size nor its sign is lost.
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")
    s = f"{v:.{digits}f}"
    if float(s) == 0:
        if v == 0:
            return s.lstrip("-")
        return _small_num(v)
    return s


def _small_num(v: float) -> str:
    """A nonzero ``v`` with two significant digits: fixed down to 1e-6, else scientific."""
    d = _small_decimals(v)
    return f"{v:.1e}" if d is None else f"{v:.{d}f}"


def _small_decimals(v: float) -> int | None:
    """Decimals that show two significant digits of a nonzero ``v`` (None: below 1e-6,
    scientific notation)."""
    if abs(v) < 1e-6:
        return None
    return 1 - math.floor(math.log10(abs(v)))


def _fmt_interval(lo: Any, hi: Any, digits: int) -> str:
    """``[lo, hi]`` with both ends at one precision: ``digits`` decimals, or as many as
    the end that would print as zero needs (:func:`_fmt_num`), so an interval never
    mixes "-0.001" with "-0.00020"."""
    a, b = float(lo), float(hi)
    small = [v for v in (a, b) if math.isfinite(v) and v != 0 and float(f"{v:.{digits}f}") == 0]
    if not small:
        return f"[{_fmt_num(a, digits)}, {_fmt_num(b, digits)}]"
    need = [_small_decimals(v) for v in small]
    if any(d is None for d in need):
        ends = [f"{v:.1e}" if math.isfinite(v) and v != 0 else _fmt_num(v, digits) for v in (a, b)]
        return f"[{ends[0]}, {ends[1]}]"
    d = max(digits, *[int(x) for x in need if x is not None])
    return f"[{_fmt_num(a, d)}, {_fmt_num(b, d)}]"


def _fmt_int(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return ""
    return f"{int(round(v)):,}"


def _fmt_column(name: Any, values: list[Any], digits: int) -> list[str]:
    """The cells of one column of :meth:`Table.from_frame`."""

    def real(v: Any) -> bool:
        return isinstance(v, float | np.floating | int | np.integer) and not isinstance(
            v, bool | np.bool_
        )

    nums = [float(v) for v in values if real(v) and math.isfinite(float(v))]
    if nums and labels.is_p_column(name):
        return [labels.format_p(v) if real(v) else _fmt_cell(v, digits) for v in values]
    if nums and _is_period_column(name) and all(x.is_integer() for x in nums):
        # years and periods are labels, not quantities: 1997, never "1,997"
        return [str(int(v)) if real(v) and math.isfinite(float(v)) else "" for v in values]
    # counts stored as float: whole numbers in a column that is named as a count or holds
    # a missing value (pandas turns an integer column with a NaN into floats)
    n = str(name).lower()
    count = n.startswith("n_") or n.endswith(("_count", "count")) or len(nums) < len(values)
    if nums and count and all(x.is_integer() for x in nums):
        return [_fmt_int(v) if real(v) else _fmt_cell(v, digits) for v in values]
    return [_fmt_cell(v, digits) for v in values]


def _is_period_column(name: Any) -> bool:
    """A column of years or periods (``year``, ``min_controls_year``, ``cohort``, ...)."""
    n = str(name).lower()
    return any(w in n.replace("-", "_").split("_") for w in ("year", "period", "cohort", "time"))


def _fmt_cell(v: Any, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return "Yes" if v else "No"
    if isinstance(v, int | np.integer):
        return _fmt_int(v)
    if isinstance(v, float | np.floating):
        return _fmt_num(v, digits)
    if isinstance(v, list | tuple | set):
        return ", ".join(str(x) for x in v)
    if v is pd.NA or v is pd.NaT:
        return ""
    return str(v)


def _stars(p: float, thresholds: Mapping[str, float]) -> str:
    if not math.isfinite(p):
        return ""
    best = ""
    best_bound = math.inf
    for sym, bound in thresholds.items():
        if p < bound and bound < best_bound:
            best, best_bound = sym, bound
    return best


def _star_note(thresholds: Mapping[str, float]) -> str:
    parts = [f"{s} p < {b:g}" for s, b in sorted(thresholds.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts) + "."


# ----------------------------------------------------------------------------- results
def _check_alpha(alpha: Any) -> None:
    """``alpha`` is None (each result's own) or a number in (0, 1)."""
    if alpha is not None:
        try:
            check_alpha(alpha)
        except SpecError as exc:
            raise TableError(f"{exc} (None uses each result's own level)") from None


def _as_named(results: Any) -> dict[str, Any]:
    """``{column name: result}`` from a result, a sequence or a mapping."""
    if results is None or isinstance(results, str | bytes):
        raise TableError(
            f"Pass a result, a list of results or a mapping name -> result; received {results!r}."
        )
    if not isinstance(results, Mapping) and not hasattr(results, "terms"):
        if not isinstance(results, Iterable):
            raise TableError(
                f"Pass a result, a list of results or a mapping name -> result; received "
                f"{type(results).__name__}."
            )
    if isinstance(results, Mapping):
        named = {str(k): v for k, v in results.items()}
    else:
        if hasattr(results, "terms"):
            results = [results]
        seq = list(results)
        if not seq:
            raise TableError("No results given to tabulate.")
        est = [labels.estimator_label(r) if getattr(r, "estimator", "") else "" for r in seq]
        out = [str(getattr(r, "outcome", "")) for r in seq]
        if len(set(est)) == len(seq) and all(est):
            names = est
        elif len(set(out)) == len(seq) and all(out):
            names = out
        elif len({f"{e}: {o}" for e, o in zip(est, out, strict=True)}) == len(seq):
            names = [f"{e}: {o}" for e, o in zip(est, out, strict=True)]
        else:
            names = [f"({i + 1})" for i in range(len(seq))]
        named = dict(zip(names, seq, strict=True))
    if not named:
        raise TableError("No results given to tabulate.")
    for name, res in named.items():
        terms = getattr(res, "terms", None)
        if not isinstance(terms, pd.DataFrame) or not {"term", "estimate", "se"} <= set(
            terms.columns
        ):
            raise TableError(
                f"Result {name!r} has no `terms` table with columns term, estimate, se "
                f"(got {type(res).__name__}). Pass EstimationResult objects."
            )
    return named


def _tidy(res: Any, alpha: float | None) -> pd.DataFrame:
    """term, estimate, se, p, lo, hi (+ band_low/high) for one result, duck-typed."""
    terms = res.terms
    est = terms["estimate"].to_numpy(float)
    se = terms["se"].to_numpy(float)
    a = float(getattr(res, "alpha", 0.05) if alpha is None else alpha)
    if hasattr(res, "tidy"):
        t = res.tidy(a)
        p = t["p_value"].to_numpy(float)
        lo, hi = t["conf_low"].to_numpy(float), t["conf_high"].to_numpy(float)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * sps.norm.sf(np.abs(est / se))
        z = sps.norm.ppf(1 - a / 2)
        lo, hi = est - z * se, est + z * se
    out = pd.DataFrame(
        {
            "term": terms["term"].astype(str).to_numpy(),
            "estimate": est,
            "se": se,
            "p": p,
            "lo": lo,
            "hi": hi,
        }
    )
    for c in ("band_low", "band_high"):
        out[c] = terms[c].to_numpy(float) if c in terms.columns else np.nan
    return out


_ORDERED_PREFIXES = ("event:", "cohort:", "calendar:")


def _num_suffix(term: str) -> float:
    try:
        return float(term.split(":", 1)[1])
    except (IndexError, ValueError):
        return math.inf


def _order_terms(terms: list[str]) -> list[str]:
    """Event, cohort and calendar terms sorted numerically, each block where it first
    appears; other terms keep their order (the union of several results' terms otherwise
    puts e.g. ``event:-4`` of a longer window after ``event:3``).
    """
    out: list[str] = []
    placed: set[str] = set()
    for t in terms:
        if t in placed:
            continue
        prefix = next((p for p in _ORDERED_PREFIXES if t.startswith(p)), None)
        if prefix is None:
            out.append(t)
            placed.add(t)
            continue
        block = [x for x in terms if x.startswith(prefix) and x not in placed]
        block = list(dict.fromkeys(block))
        block.sort(key=_num_suffix)  # stable: unparsable suffixes keep their order, last
        out += block
        placed |= set(block)
    return out


def _select_terms(
    all_terms: list[str], terms: Sequence[str] | Mapping[str, str] | None
) -> list[tuple[str, str]]:
    """(term, label) pairs in display order. Patterns may use shell wildcards (``event:*``)."""
    if terms is None:
        # Donor weights are diagnostics, not estimates: left out unless asked for.
        return [
            (t, labels.term_label(t))
            for t in _order_terms(all_terms)
            if not t.startswith("weight:")
        ]
    if isinstance(terms, str):
        terms = [terms]  # one pattern, not a list of its characters
    if not isinstance(terms, Mapping | Iterable):
        raise TableError(
            f"`terms` must be a list of term names or patterns, or a mapping term -> label; "
            f"received {terms!r}."
        )
    # Names and patterns get the display labels ("Event time 0"); a mapping sets its own.
    items = list(terms.items()) if isinstance(terms, Mapping) else [(t, None) for t in terms]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pattern, label in items:
        pattern = str(pattern)
        hits = (
            _order_terms([t for t in all_terms if fnmatch.fnmatchcase(t, pattern)])
            if any(ch in pattern for ch in "*?[")
            else ([pattern] if pattern in all_terms else [])
        )
        if not hits:
            raise TableError(
                f"No result has a term matching {pattern!r}. Terms present: {all_terms}."
            )
        for t in hits:
            if t not in seen:
                seen.add(t)
                if label is None:
                    out.append((t, labels.term_label(t)))
                else:
                    out.append((t, str(label) if label != pattern or len(hits) == 1 else t))
    return out


def _stat_value(res: Any, key: str, digits: int) -> str:
    info = getattr(res, "info", None) or {}
    if key in ("n_units", "n_obs"):
        v = getattr(res, key, info.get(key))
        # 0 is the default of a result that did not record its sample: not a count
        return "" if v is None or v == 0 else _fmt_int(v)
    if key == "n_clusters":
        v = info.get("n_clusters")
        return "" if v is None else _fmt_int(v)
    if key == "fixed_effects":
        return labels.fixed_effects_label(info.get(key))
    if key == "control_group":
        return labels.control_group_label(info.get(key, info.get("controls")))
    if key == "se_type":
        return labels.se_type_label(res)
    if key == "covariates":
        if key not in info:
            return ""
        v = info[key]
        if v is None or v == "" or (isinstance(v, list | tuple) and not v):
            return "None"
        return _fmt_cell(v, digits)
    v = info.get(key, getattr(res, key, None))
    if v is None:
        return ""
    if key.endswith("_p") or key.startswith("p_"):
        return labels.format_p(v)  # p-values at their own precision, whatever ``digits``
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return _fmt_int(v)
    return _fmt_cell(v, digits)


def _footer(
    named: Mapping[str, Any],
    names: list[str],
    stats: Any,
    digits: int,
    outcome_labels: Mapping[str, str] | None = None,
    outcome_units: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Footer rows: the outcomes (labelled, with units; unless the columns are already named
    by them) and the requested statistics that at least one column reports."""
    if isinstance(stats, str):
        stats = [stats]
    if not isinstance(stats, Mapping | Iterable) or not all(
        isinstance(k, str) for k in (stats.keys() if isinstance(stats, Mapping) else stats)
    ):
        raise TableError(
            f"`stats` must be a list of statistic names (e.g. ['n_obs', 'cluster']) or a "
            f"mapping name -> label; received {stats!r}."
        )
    stat_items = (
        list(stats.items())
        if isinstance(stats, Mapping)
        else [(s, STAT_LABELS.get(s, s.replace("_", " ").capitalize())) for s in stats]
    )
    foot: list[list[str]] = []
    outcomes = [str(getattr(named[n], "outcome", "")) for n in names]
    if any(outcomes) and names != outcomes:
        foot.append(
            [
                "Outcome",
                *[
                    labels.outcome_label(o, outcome_labels, outcome_units) if o else ""
                    for o in outcomes
                ],
            ]
        )
    for key, lab in stat_items:
        vals = [_stat_value(named[n], key, digits) for n in names]
        if key == "se_type" and len(set(vals)) == 1:
            continue  # one type for every column: stated in the notes instead
        if any(vals):
            foot.append([lab, *vals])
    return foot


def regression_table(
    results: Any,
    *,
    terms: Sequence[str] | Mapping[str, str] | None = None,
    stars: bool | Mapping[str, float] = False,
    ci: bool = False,
    digits: int = 3,
    stats: Sequence[str] | Mapping[str, str] = DEFAULT_STATS,
    alpha: float | None = None,
    title: str | None = None,
    notes: Iterable[str] = (),
    label: str | None = None,
    events: bool = False,
    outcome_labels: Mapping[str, str] | None = None,
    outcome_units: Mapping[str, str] | None = None,
) -> Table:
    """Estimates side by side, one column per result (R ``modelsummary`` / fixest
    ``etable`` layout).

    Parameters
    ----------
    results : result, sequence of results, or mapping name -> result
        Column headers are the mapping keys; for a sequence, the estimators' display names
        ("Callaway–Sant'Anna") when they differ, else the outcomes, else ``(1)``, ``(2)``...
    terms : sequence or mapping, optional
        Terms to show, in order; shell wildcards allowed (``"event:*"``), ``"all"`` for
        every term but the donor weights. A mapping ``{term: label}`` renames rows.
        Default: the headline terms (each result's ``main_term``, the aggregation chosen
        when it was fitted), labelled "ATT", "Event time 0", ... as papers print them.
    events : bool
        With the default terms, add the event-study terms (``event:*``) under the headline.
    stars : bool or mapping
        ``True`` marks p < 0.10 / 0.05 / 0.01 with ``*``/``**``/``***``; a mapping
        ``{symbol: bound}`` sets other thresholds. p-values are the results' own
        (normal or t, see :meth:`EstimationResult.pvalues`).
    ci : bool
        Add a row with the ``1 - alpha`` confidence interval in brackets under the SE.
        Columns at different levels get a footer row "CI level". A wild-bootstrap result
        tabulated at a level other than its own gets a note: its intervals are then the
        analytic ones, its p-values (stars) the bootstrap's.
    digits : int
        Decimals of estimates, SEs and intervals; a nonzero number that would print as
        zero gets two significant digits. p-values always print with 3 decimals
        ("<0.001"). An SE of exactly 0 (a fixed coefficient) gets no stars or interval;
        an event study's reference period (``event:E`` at 0 without SE) prints "ref.";
        binned event times are labelled by their bins ("Event time <= -2").
    stats : sequence or mapping
        Footer rows from ``n_obs``, ``n_units`` and the results' ``info`` (default
        :data:`DEFAULT_STATS`: observations, units, the number of clusters, fixed effects,
        controls, control group, the type of standard errors, pre-trend p-value). Rows
        empty in every column are dropped. A mapping sets the labels.
    alpha : float, optional
        Level of the intervals (default: each result's ``alpha``).
    title, notes, label
        Caption, extra note lines, LaTeX label.
    outcome_labels, outcome_units : mapping outcome -> text, optional
        Display labels and units of the outcomes (the spec's ``[data] labels`` and
        ``units``), shown in the "Outcome" row as "label (unit)".

    Returns
    -------
    Table
        Its ``data`` attribute holds the numbers in long form.
    """
    _check_alpha(alpha)
    _check_digits(digits)
    named = _as_named(results)
    tidies = {name: _tidy(res, alpha) for name, res in named.items()}
    all_terms: list[str] = []
    for t in tidies.values():
        all_terms += [x for x in t["term"] if x not in all_terms]
    if terms is None:
        heads = [str(getattr(r, "main_term", "att")) for r in named.values()]
        terms = {t: labels.term_label(t) for t in dict.fromkeys(heads) if t in all_terms}
        if events:
            terms.update(
                {t: labels.term_label(t) for t in _order_terms(all_terms) if t.startswith("event:")}
            )
        if not terms:
            terms = None
    elif terms == "all":
        terms = None  # every term but the donor weights, in display order
    chosen = _select_terms(all_terms, terms)
    thresholds: Mapping[str, float] | None = (
        (DEFAULT_STARS if stars is True else stars) if stars else None
    )
    if thresholds is not None and not isinstance(thresholds, Mapping):
        raise TableError(
            f"`stars` must be True/False or a mapping symbol -> p bound; got {stars!r}."
        )

    names = list(named)
    rows: list[list[str]] = []
    long_rows: list[dict[str, Any]] = []
    bin_rows, bin_notes = _bin_labels(named, tidies)
    for term, lab in chosen:
        if term in bin_rows and lab == labels.term_label(term):
            lab = f"{labels.term_label(term).rsplit(' ', 1)[0]} {bin_rows[term]}"
        r_est, r_se, r_ci = [lab], [""], [""]
        for name in names:
            t = tidies[name]
            hit = t.loc[t["term"] == term]
            if hit.empty:
                r_est.append("")
                r_se.append("")
                r_ci.append("")
                continue
            h = hit.iloc[0]
            if _is_reference(term, h):
                # the normalised period of an event study: not an estimate
                r_est.append("ref.")
                r_se.append("")
                r_ci.append("")
                continue
            # an SE of exactly 0 is a fixed (normalised) coefficient: no test, no interval
            fixed = h["se"] == 0
            star = _stars(float(h["p"]), thresholds) if thresholds and not fixed else ""
            r_est.append(_fmt_num(h["estimate"], digits) + star)
            r_se.append(f"({_fmt_num(h['se'], digits)})" if math.isfinite(h["se"]) else "")
            r_ci.append(
                _fmt_interval(h["lo"], h["hi"], digits)
                # an unbounded set (Fieller's share with a weak direct total) shows -Inf/Inf
                if not (fixed or math.isnan(h["lo"]) or math.isnan(h["hi"]))
                else ""
            )
            long_rows.append(
                {
                    "model": name,
                    "term": term,
                    "estimate": float(h["estimate"]),
                    "se": float(h["se"]),
                    "p_value": float(h["p"]),
                    "ci_low": float(h["lo"]),
                    "ci_high": float(h["hi"]),
                }
            )
        rows.append(r_est)
        if any(r_se[1:]):
            rows.append(r_se)
        if ci and any(r_ci[1:]):
            rows.append(r_ci)

    foot, outcome_note = _shared_outcome(
        _footer(named, names, stats, digits, outcome_labels, outcome_units)
    )
    foot += _weights_rows(named, names)
    scale_rows, scale_notes = _log_point_rows(named, names, tidies, chosen, digits)
    foot += scale_rows
    level, level_row = _level_text(named, alpha)
    if level_row:
        foot.append(level_row)

    midrules = (len(rows),) if foot and rows else ()
    frame = pd.DataFrame([*rows, *foot], columns=["", *names])
    note_lines = [*outcome_note, *scale_notes, _se_note(named, foot)]
    if ci:
        note_lines.append(
            f"{level} confidence intervals in brackets."
            if level
            else "Confidence intervals in brackets (level by column in the row CI level)."
        )
    else:
        note_lines.append(
            f"Confidence level of tests and intervals: {level}."
            if level
            else "Confidence level of tests and intervals by column in the row CI level."
        )
    note_lines += _relevelled_notes(named, alpha)
    if ci and any(term == "displacement_share" for term, _ in chosen):
        note_lines += _share_set_notes(named, alpha, digits)
    note_lines += bin_notes
    if thresholds:
        note_lines.append(_star_note(thresholds))
    note_lines += list(notes)
    return Table(
        frame,
        midrules=midrules,
        title=title,
        notes=tuple(note_lines),
        label=label,
        data=pd.DataFrame(long_rows),
    )


def _weights_rows(named: Mapping[str, Any], names: list[str]) -> list[list[str]]:
    """A "Weights" row (the weight column, or "none") when any column is weighted: a
    weighted and an unweighted fit of the same design are otherwise indistinguishable.
    Read from the weight column the estimators record as ``info["weights"]``."""
    vals = []
    for n in names:
        w = (getattr(named[n], "info", None) or {}).get("weights")
        vals.append(str(w) if isinstance(w, str) and w else "none")
    return [["Weights", *vals]] if any(v != "none" for v in vals) else []


def _log_point_rows(
    named: Mapping[str, Any],
    names: list[str],
    tidies: Mapping[str, pd.DataFrame],
    chosen: Sequence[tuple[str, str]],
    digits: int,
) -> tuple[list[list[str]], list[str]]:
    """An "Effect scale" row and a note for PPML columns, whose ``att`` is a log-point
    coefficient (a proportional effect, ``att_pct = exp(att) - 1``), not an effect in the
    outcome's units that the "Outcome" row or note would otherwise suggest."""
    shown = {term for term, _ in chosen}
    ppml = [
        n
        for n in names
        if "att" in shown
        and "att_pct" in set(tidies[n]["term"])
        and (getattr(named[n], "estimator", "ppml") == "ppml")
    ]
    if not ppml:
        return [], []
    row = ["Effect scale", *["log points" if n in ppml else "" for n in names]]
    notes = []
    for n in ppml:
        t = tidies[n].set_index("term")
        pct = t.loc["att_pct"]
        ci = (
            f" [{_fmt_num(pct['lo'], digits)}, {_fmt_num(pct['hi'], digits)}]"
            if math.isfinite(pct["lo"]) and math.isfinite(pct["hi"])
            else ""
        )
        notes.append(
            f"{n}: PPML's ATT in log points, a proportional effect, not in the outcome's "
            f"units; att_pct = exp(ATT) - 1 = {_fmt_num(pct['estimate'], digits)}{ci}."
        )
    return [row], notes


def _shared_outcome(foot: list[list[str]]) -> tuple[list[list[str]], list[str]]:
    """An "Outcome" row with one value in every column becomes a note ("Outcome: X.")."""
    if foot and foot[0][0] == "Outcome" and len(set(foot[0][1:])) == 1 and foot[0][1]:
        return foot[1:], [f"Outcome: {foot[0][1]}."]
    return foot, []


def _se_note(named: Mapping[str, Any], foot: Sequence[Sequence[str]] = ()) -> str:
    """The note on the standard errors: their type when every column shares it, else a
    pointer to the footer row "Standard errors" (when the table has one)."""
    kinds = {labels.se_type_label(r) for r in named.values()}
    if len(kinds) == 1 and (kind := kinds.pop()):
        return f"Standard errors in parentheses ({kind[:1].lower() + kind[1:]})."
    if any(row and row[0] == STAT_LABELS["se_type"] for row in foot):
        return "Standard errors in parentheses (type by column in the row Standard errors)."
    return "Standard errors in parentheses."


def _is_reference(term: str, h: Any) -> bool:
    """An event study's reference period: an ``event:E`` term fixed at 0 without an SE."""
    se = float(h["se"])
    return (
        term.startswith("event:")
        and float(h["estimate"]) == 0
        and not (math.isfinite(se) and se > 0)
    )


def _is_wild(res: Any) -> bool:
    """Whether a result's p-values and intervals come from a wild cluster bootstrap
    (``with_inference("wild")`` of TWFE or the spillover decomposition)."""
    info = getattr(res, "info", None) or {}
    return "wild_draws" in info or any(
        "wild" in str(info.get(k, "")).lower() for k in ("inference", "se_type")
    )


def _relevelled_notes(named: Mapping[str, Any], alpha: float | None) -> list[str]:
    """A note for each wild-bootstrap result tabulated at a level other than the one its
    bootstrap inverted its test at (``info["wild_alpha"]``, else ``info["ci_alpha"]``,
    else the result's ``alpha``; a result rebuilt at another level keeps that record): its
    bootstrap intervals hold at that level only, so its intervals are then the analytic ones
    of the same SEs, while its p-values (stars) stay the bootstrap's (a p-value does not
    depend on the level). So too where a spillover result rebuilt away from that level has
    replaced them for good (``info["wild_intervals_replaced"]``)."""
    out = []
    for name, res in named.items():
        if not _is_wild(res):
            continue
        info = getattr(res, "info", None) or {}
        level = float(getattr(res, "alpha", 0.05) if alpha is None else alpha)
        own = float(info.get("wild_alpha", info.get("ci_alpha", getattr(res, "alpha", 0.05))))
        replaced = bool(info.get("wild_intervals_replaced", False))
        if own != level or replaced:
            share = (
                "; Fieller's for the displacement share"
                if "displacement_share" in set(res.terms["term"])
                else ""
            )
            why = (
                "since the result was rebuilt at another level, which replaced the "
                f"bootstrap's {_pct(own)} intervals"
                if replaced
                else f"since the bootstrap inverted its test at {_pct(own)} only"
            )
            out.append(
                f"{name}: p-values from the wild cluster bootstrap; its {_pct(level)} "
                f"intervals are analytic (estimate +/- t x SE{share}), {why}."
            )
    return out


def _share_set_notes(named: Mapping[str, Any], alpha: float | None, digits: int) -> list[str]:
    """A note for each result whose displacement share's Fieller set is two rays: the
    table shows their hull, the whole line, which would hide that the set excludes the
    gap between them (zero too when the share's p-value is below the level; a referee
    read such a row as an interval containing zero beside p = 0.03)."""
    out = []
    for name, res in named.items():
        pieces = getattr(res, "displacement_share_set", None)
        if pieces is None:
            continue
        level = float(getattr(res, "alpha", 0.05) if alpha is None else alpha)
        info = getattr(res, "info", None) or {}
        wild_share = "displacement_share" in set(info.get("wild_terms", ()))
        if (
            wild_share
            and float(info.get("wild_alpha", level)) == level
            and not info.get("wild_intervals_replaced", False)
        ):
            # the row shows the wild bootstrap's inverted interval, not Fieller's hull
            continue
        rays = pieces(level)
        if len(rays) != 2:
            continue
        a, b = _fmt_num(rays[0][1], digits), _fmt_num(rays[1][0], digits)
        out.append(
            f"{name}: the displacement share's {_pct(level)} Fieller set is two rays, "
            f"(-Inf, {a}] and [{b}, Inf) (the direct total is not significant at that "
            "level); its hull is shown, and the set excludes the shares between them."
        )
    return out


def _check_digits(digits: Any) -> None:
    if (
        isinstance(digits, bool | np.bool_)
        or not isinstance(digits, int | np.integer)
        or not 0 <= digits <= 20
    ):
        raise TableError(f"digits must be a whole number from 0 to 20; received {digits!r}.")


def _pct(alpha: float) -> str:
    return f"{100 * (1 - float(alpha)):g}%"


def _level_text(named: Mapping[str, Any], alpha: float | None) -> tuple[str, list[str]]:
    """The confidence level shared by every column ("95%", no footer row), or "" and a
    footer row "CI level" with each column's level when the columns differ."""
    levels = [_pct(getattr(r, "alpha", 0.05) if alpha is None else alpha) for r in named.values()]
    if len(set(levels)) == 1:
        return levels[0], []
    return "", ["CI level", *levels]


def _bin_ranges(res: Any, event_terms: Sequence[str]) -> dict[str, str]:
    """The event times an event-study term pools, as text, for binned terms only:
    ``"-4..-3"`` for a bin, ``"<= -2"`` / ``">= 1"`` for binned endpoints.

    Read from the result's ``info``: ``bins`` (``"-3=[-4..-3], 0=[0..1]"``: the bins of
    Schmidheiny & Siegloch 2023, each named by its event time closest to zero) and
    ``binned`` (True: the endpoints of the window pool the event times beyond it). The
    endpoints are the terms labelled ``window_start`` and ``window_end``, which the fit
    records; a window end that is a reference (the requested one, or the lead TWFE drops
    as ``second_reference`` without never-treated units) has no term to label. Results
    without those entries (made before they were recorded) fall back on the lowest and
    highest terms, the lowest only when the panel has never-treated units.
    """
    info = getattr(res, "info", None) or {}
    ranges: dict[str, tuple[float, float]] = {}
    bins = info.get("bins")
    if isinstance(bins, str):
        for m in re.finditer(r"(-?\d+)=\[(-?\d+)\.\.(-?\d+)\]", bins):
            ranges[f"event:{int(m.group(1))}"] = (float(m.group(2)), float(m.group(3)))
    times = sorted(
        (e, t) for t in event_terms if (e := _event_time(t)) is not None and float(e).is_integer()
    )
    if info.get("binned") is True and times:
        lo_e, lo_t = times[0]
        hi_e, hi_t = times[-1]
        start, end = info.get("window_start"), info.get("window_end")
        if start is None or end is None:
            low_end, high_end = _has_never_treated(res), True
        else:
            low_end, high_end = lo_e == float(start), hi_e == float(end)
        if low_end:
            ranges[lo_t] = (-math.inf, ranges.get(lo_t, (lo_e, lo_e))[1])
        if high_end:
            ranges[hi_t] = (ranges.get(hi_t, (hi_e, hi_e))[0], math.inf)
    out = {}
    for t, (a, z) in ranges.items():
        if a == -math.inf:
            out[t] = f"<= {z:g}"
        elif z == math.inf:
            out[t] = f">= {a:g}"
        elif a != z:
            out[t] = f"{a:g}..{z:g}"
    return out


def _has_never_treated(res: Any) -> bool:
    """Whether the result's panel (when it keeps one) has never-treated units; True when
    unknown."""
    panel = getattr(res, "panel", None)
    data = getattr(panel, "data", None)
    if not isinstance(data, pd.DataFrame) or "cohort" not in data.columns:
        return True
    return bool(np.isinf(data["cohort"].to_numpy(float)).any())


def _bin_labels(
    named: Mapping[str, Any], tidies: Mapping[str, pd.DataFrame]
) -> tuple[dict[str, str], list[str]]:
    """Row texts of binned event terms (``{"event:-2": "<= -2"}``) where every result with
    the term bins it alike, and notes naming each result's bins where they differ."""
    per = {n: _bin_ranges(named[n], list(tidies[n]["term"])) for n in named}
    rows: dict[str, str] = {}
    notes: list[str] = []
    terms = dict.fromkeys(t for n in named for t in per[n])
    for term in terms:
        having = [n for n in named if term in set(tidies[n]["term"])]
        texts = {per[n].get(term, "") for n in having}
        if len(texts) == 1:
            rows[term] = texts.pop()
    mixed = {n: {t: x for t, x in per[n].items() if t not in rows} for n in named}
    for n, got in mixed.items():
        if got:
            each = "; ".join(f"E = {_event_text(t)} pools event times {x}" for t, x in got.items())
            notes.append(f"{n}: binned event times ({each}).")
    return {t: x for t, x in rows.items() if x}, notes


def _event_text(term: str) -> str:
    e = _event_time(term)
    if e is None:
        return term
    return f"{int(e)}" if float(e).is_integer() else f"{e:g}"


# ----------------------------------------------------------------------------- event study
def _event_time(term: str) -> float | None:
    if not term.startswith("event:"):
        return None
    try:
        return float(term.split(":", 1)[1])
    except ValueError:
        return None


def event_study_table(
    results: Any,
    *,
    ci: bool = True,
    band: bool = True,
    stars: bool | Mapping[str, float] = False,
    digits: int = 3,
    alpha: float | None = None,
    stats: Sequence[str] | Mapping[str, str] = ("n_units", "n_obs", "control_group", "pretrend_p"),
    title: str | None = None,
    notes: Iterable[str] = (),
    label: str | None = None,
) -> Table:
    """Event-study coefficients (terms ``event:E``) by event time, one column per result.

    Rows are sorted by event time and labelled ``E = -2``, ``E = 0``, ... The estimate, its
    SE in parentheses, the pointwise confidence interval in brackets (``ci``) and, when a
    result carries a simultaneous band (``band_low``/``band_high``, e.g. the Callaway &
    Sant'Anna 2021 multiplier-bootstrap band, Sec. 4.1), the band in braces (``band``).
    The reference period of regression event studies (E = -1, normalised to 0) shows as
    ``ref.`` when present with no standard error. Binned terms (TWFE's ``bins`` and
    ``bin_endpoints``, from ``info["bins"]``/``info["binned"]``) are labelled by the event
    times they pool: ``E = -4..-3``, ``E <= -2``, ``E >= 1``. Columns at different levels
    get a footer row "CI level".
    """
    _check_alpha(alpha)
    _check_digits(digits)
    named = _as_named(results)
    tidies = {name: _tidy(res, alpha) for name, res in named.items()}
    events: dict[float, str] = {}
    for t in tidies.values():
        for term in t["term"]:
            e = _event_time(term)
            if e is not None:
                events[e] = term
    if not events:
        raise TableError(
            "No `event:E` terms in the results; fit an event study (dynamic aggregation) first."
        )
    thresholds = (DEFAULT_STARS if stars is True else stars) if stars else None
    names = list(named)
    rows: list[list[str]] = []
    long_rows: list[dict[str, Any]] = []
    has_band = False
    band_alphas: dict[str, float] = {}
    bin_rows, bin_notes = _bin_labels(named, tidies)
    for e in sorted(events):
        term = events[e]
        lab = f"E = {int(e) if float(e).is_integer() else e}"
        if term in bin_rows:
            text = bin_rows[term]
            lab = f"E {text}" if text.startswith(("<", ">")) else f"E = {text}"
        r_est, r_se, r_ci, r_band = [lab], [""], [""], [""]
        for name in names:
            t = tidies[name]
            hit = t.loc[t["term"] == term]
            if hit.empty:
                r_est.append("")
                r_se.append("")
                r_ci.append("")
                r_band.append("")
                continue
            h = hit.iloc[0]
            se_ok = math.isfinite(h["se"]) and h["se"] > 0
            if not se_ok and h["estimate"] == 0:
                r_est.append("ref.")
                r_se.append("")
                r_ci.append("")
                r_band.append("")
                continue
            # an SE of exactly 0 is a fixed coefficient: no test
            star = _stars(float(h["p"]), thresholds) if thresholds and h["se"] != 0 else ""
            r_est.append(_fmt_num(h["estimate"], digits) + star)
            r_se.append(f"({_fmt_num(h['se'], digits)})" if se_ok else "")
            r_ci.append(_fmt_interval(h["lo"], h["hi"], digits) if se_ok else "")
            bl, bh = float(h["band_low"]), float(h["band_high"])
            if math.isfinite(bl) and math.isfinite(bh):
                has_band = True
                band_alphas[name] = _band_alpha(named[name])
                r_band.append("{" + _fmt_interval(bl, bh, digits)[1:-1] + "}")
            else:
                r_band.append("")
            long_rows.append(
                {
                    "model": name,
                    "event_time": e,
                    "estimate": float(h["estimate"]),
                    "se": float(h["se"]),
                    "ci_low": float(h["lo"]),
                    "ci_high": float(h["hi"]),
                    "band_low": bl,
                    "band_high": bh,
                }
            )
        rows.append(r_est)
        if any(r_se[1:]):
            rows.append(r_se)
        if ci and any(r_ci[1:]):
            rows.append(r_ci)
        if band and any(r_band[1:]):
            rows.append(r_band)

    foot, outcome_note = _shared_outcome(_footer(named, names, stats, digits))
    level, level_row = _level_text(named, alpha)
    if level_row and ci:
        foot.append(level_row)
    frame = pd.DataFrame([*rows, *foot], columns=["Event time", *names])
    note_lines = [
        *outcome_note,
        "E: periods relative to treatment. Standard errors in parentheses.",
    ]
    if ci:
        note_lines.append(
            f"{level} pointwise confidence intervals in brackets."
            if level
            else "Pointwise confidence intervals in brackets (level by column in the row CI level)."
        )
        note_lines += _relevelled_notes(named, alpha)
    note_lines += bin_notes
    if band and has_band:
        # a band comes from the result's bootstrap critical value at its own alpha and
        # cannot be recomputed at another: state its level, not ``alpha``'s
        levels = sorted({f"{100 * (1 - a):g}%" for a in band_alphas.values()})
        if len(levels) == 1:
            note_lines.append(f"{levels[0]} simultaneous (uniform) confidence bands in braces.")
        else:
            each = ", ".join(f"{n} {100 * (1 - a):g}%" for n, a in band_alphas.items())
            note_lines.append(f"Simultaneous (uniform) confidence bands in braces ({each}).")
    if thresholds:
        note_lines.append(_star_note(thresholds))
    note_lines += list(notes)
    return Table(
        frame,
        midrules=(len(rows),) if foot else (),
        title=title,
        notes=tuple(note_lines),
        label=label,
        data=pd.DataFrame(long_rows),
    )


# ----------------------------------------------------------------------------- claims
CLAIM_COLUMNS = (
    "claim",
    "data",
    "estimator",
    "estimate",
    "ci_low",
    "ci_high",
    "margin",
    "breakdown",
    "verdict",
)


def claims_table(
    df: pd.DataFrame,
    *,
    digits: int = 3,
    alpha: float | None = None,
    title: str | None = None,
    notes: Iterable[str] = (),
    label: str | None = None,
) -> Table:
    """The claim verdicts: one row per claim with outcome, estimand, estimate, CI, margin,
    breakdown, verdict.

    The interval is the one each verdict is judged with: the ``(1 - 2 alpha)`` interval
    (90% at ``alpha`` = 0.05), whose inclusion in ±margin is the TOST equivalence test at
    level ``alpha`` (Schuirmann 1987) — not the ``1 - alpha`` intervals of the estimate
    tables. Its level heads the column ("90% CI", with "(t)" when every interval is a t
    interval) in every format; ``alpha`` gives it, else it is read from the rows' notes
    ("90% CI (t, 22.5 df); ..."). The ``outcome`` and ``estimand`` columns (when the
    frame has them) tell apart rows of one claim; each row's ``note`` is kept as a
    numbered note under the table, referenced in the "Note" column.

    ``margin`` is the equivalence margin of a null claim (the CI must lie within
    ±margin); ``breakdown`` is the sensitivity breakdown value (e.g. the largest
    HonestDiD M̄ at which the conclusion survives, Rambachan & Roth 2023). Both are
    printed as given.
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"claims_table needs a DataFrame; got {type(df).__name__}.")
    missing = [c for c in CLAIM_COLUMNS if c not in df.columns]
    if missing:
        raise TableError(
            f"The claims table lacks column(s) {missing}; it needs {list(CLAIM_COLUMNS)} "
            f"(got {list(df.columns)})."
        )
    _check_alpha(alpha)
    _check_digits(digits)
    extra = [c for c in ("outcome", "estimand") if c in df.columns]
    row_notes = (
        [str(n).strip() if isinstance(n, str) else "" for n in df["note"]]
        if "note" in df.columns
        else [""] * len(df)
    )
    has_ci = [
        bool(_fmt_num(lo, digits) and _fmt_num(hi, digits))
        for lo, hi in zip(df["ci_low"], df["ci_high"], strict=True)
    ]
    if alpha is not None:
        level: str | None = _pct(2 * alpha)
    else:
        found = {
            m.group(1)
            for n, ok in zip(row_notes, has_ci, strict=True)
            if ok
            for m in [re.search(r"(\d+(?:\.\d+)?)% CI", n)]
            if m
        }
        level = f"{found.pop()}%" if len(found) == 1 else None
    ci_notes = [n for n, ok in zip(row_notes, has_ci, strict=True) if ok]
    t_ref = bool(ci_notes) and all("(t," in n for n in ci_notes)
    ci_head = f"{level} CI" if level else "CI"
    if t_ref:
        ci_head += " (t)"
    numbered: dict[str, int] = {}
    rows = []
    for r, note in zip(df.itertuples(index=False), row_notes, strict=True):
        lo, hi = _fmt_num(r.ci_low, digits), _fmt_num(r.ci_high, digits)
        mark = ""
        if note:
            mark = f"({numbered.setdefault(note, len(numbered) + 1)})"
        rows.append(
            [
                _fmt_cell(r.claim, digits),
                _fmt_cell(r.data, digits),
                *[_fmt_cell(getattr(r, c), digits) for c in extra],
                _fmt_cell(r.estimator, digits),
                _fmt_num(r.estimate, digits),
                _fmt_interval(r.ci_low, r.ci_high, digits) if lo and hi else "",
                _fmt_num(r.margin, digits),
                _fmt_num(r.breakdown, digits),
                _fmt_cell(r.verdict, digits),
                *([mark] if "note" in df.columns else []),
            ]
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "Claim",
            "Data",
            *[c.capitalize() for c in extra],
            "Estimator",
            "Estimate",
            ci_head,
            "Margin",
            "Breakdown",
            "Verdict",
            *(["Note"] if "note" in df.columns else []),
        ],
    )
    what = (
        f"{ci_head}: the {level} (1 - 2 alpha) interval each verdict is judged with"
        if level
        else f"{ci_head}: the (1 - 2 alpha) interval each verdict is judged with (level in "
        "each row's note)"
    )
    elsewhere = f", not the {_pct(alpha)} intervals of the estimate tables" if alpha else ""
    ref = (
        "t reference with the degrees of freedom in each row's note"
        if t_ref
        else "t reference where a row's note gives degrees of freedom, else normal"
    )
    note_lines = [
        f"{what} (a null claim holds when it lies within +/-margin: TOST, Schuirmann 1987)"
        f"{elsewhere}; {ref}.",
        *[f"({k}) {n}" for n, k in numbered.items()],
        *notes,
    ]
    keep = [*CLAIM_COLUMNS, *[c for c in ("outcome", "estimand", "note") if c in df.columns]]
    return Table(
        frame,
        title=title,
        notes=tuple(note_lines),
        label=label,
        data=df.loc[:, keep].copy(),
    )


# ----------------------------------------------------------------------------- pre-trends
_PRETREND_COLUMNS: dict[str, str] = {
    "n_leads": "Leads",
    "wald_stat": "Wald stat.",
    "wald_p": "Wald p-value",
    "max_abs_lead": "Largest |lead|",
    "equivalence_margin": "Equivalence margin",
    "breakdown_rm": "Breakdown M (RM)",
    "breakdown_sd": "Breakdown M (SD)",
}


def pretrends_table(
    diag: pd.DataFrame,
    *,
    names: Mapping[str, str] | None = None,
    digits: int = 3,
    title: str | None = None,
    label: str | None = None,
) -> Table:
    """Pre-trend diagnostics of event studies, one column per estimate (transposed so that
    it stays narrow on a page and a screen).

    Rows: the number of leads, the joint Wald test of the leads (statistic and p-value,
    printed "<0.001" below 0.001), the largest absolute lead, the equivalence margin at
    which the leads are jointly within bounds (Hartman & Hidalgo 2018; Dette & Schumann
    2024) and the Rambachan & Roth (2023) breakdown values under relative-magnitude and
    smoothness restrictions. A ``note`` column becomes the table notes.
    """
    if not isinstance(diag, pd.DataFrame) or "name" not in diag.columns:
        raise TableError("pretrends_table needs the diagnostics frame with a `name` column.")
    _check_digits(digits)
    heads = [str((names or {}).get(str(n), n)) for n in diag["name"]]
    if len(set(heads)) < len(heads):
        heads = [str(n) for n in diag["name"]]
    rows: list[list[str]] = []
    for col, lab in _PRETREND_COLUMNS.items():
        if col not in diag.columns or diag[col].isna().all():
            continue
        vals = diag[col].tolist()
        if col.endswith("_p"):
            cells = [labels.format_p(v) for v in vals]
        elif col == "n_leads":
            cells = [_fmt_int(v) for v in vals]
        else:
            cells = [_fmt_num(v, digits) for v in vals]
        rows.append([lab, *cells])
    frame = pd.DataFrame(rows, columns=["", *heads])
    notes: list[str] = []
    if "note" in diag.columns:
        for head, note in zip(heads, diag["note"], strict=True):
            if isinstance(note, str) and note.strip():
                notes.append(f"{head}: {note.strip()}")
    return Table(frame, title=title, notes=tuple(notes), label=label, data=diag.copy())
