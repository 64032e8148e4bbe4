r"""Publication tables: several estimates side by side, event studies and claim verdicts.

A :class:`Table` holds formatted cells and renders them as LaTeX (booktabs), Markdown,
HTML or CSV; :meth:`Table.save` picks the format from the file extension, as R
``modelsummary`` does. :func:`regression_table` lays results out like ``modelsummary`` /
``fixest::etable``: one column per model, the standard error in parentheses under each
estimate, optional confidence intervals and significance stars, and footer rows for units,
observations, clusters, control group, fixed effects and the pre-trend p-value.

Why hand-written rather than ``maketables`` or ``great_tables``
---------------------------------------------------------------
Both were tried (maketables 0.2.0, great_tables 1.1.0). Results already expose the
maketables hooks, so ``maketables.ETable([res1, res2])`` works (tested when installed),
but as the default it did not fit:

* dependencies: maketables pulls in great_tables, IPython, python-docx and tabulate; the
  runtime dependencies of zoneimpact are kept to the scientific stack;
* its LaTeX needs ``threeparttable``, ``tabularx`` and ``makecell``, while ours needs only
  ``booktabs`` and compiles in a minimal document;
* it parses ``:`` in term names as an interaction (``event:0`` is printed
  ``event $\times$ 0``), which mangles our term names (``event:E``, ``cohort:G``);
* its footer is built for regression models (R², fixed-effect markers); ours comes from
  the result's ``info`` (control group, clusters, pre-trend p-value).

great_tables renders HTML/LaTeX well but is itself a heavy dependency for what is a
few dozen lines of string formatting per format. The formatting here is therefore
hand-written; users who prefer maketables can pass results to it directly.
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

from ..errors import SpecError, ZoneImpactError
from ..results import check_alpha

__all__ = [
    "DEFAULT_STARS",
    "Table",
    "TableError",
    "claims_table",
    "event_study_table",
    "regression_table",
]


class TableError(ZoneImpactError, ValueError):
    """A table cannot be built or written from the input given."""


#: Star thresholds of applied economics (Stata/fixest convention): symbol -> p-value bound.
DEFAULT_STARS: dict[str, float] = {"*": 0.10, "**": 0.05, "***": 0.01}

#: Footer rows known to :func:`regression_table`: key -> label.
STAT_LABELS: dict[str, str] = {
    "n_units": "Units",
    "n_obs": "Observations",
    "cluster": "Clusters",
    "n_clusters": "Clusters",
    "control_group": "Control group",
    "fixed_effects": "Fixed effects",
    "pretrend_p": "Pre-trend p-value",
}

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

        With ``index=True`` the index becomes the stub column.
        """
        src = df.reset_index() if index else df
        cells = pd.DataFrame(
            {str(c): [_fmt_cell(v, digits) for v in src[c].tolist()] for c in src.columns}
        )
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
    def to_latex(self, *, float_env: bool = True, placement: str = "htbp") -> str:
        r"""Booktabs LaTeX. Needs only ``\usepackage{booktabs}``.

        Parameters
        ----------
        float_env : bool
            Wrap in a ``table`` float with caption and label (default). ``False`` returns
            the bare ``tabular`` (plus notes) to ``\input`` into one's own float.
        placement : str
            Float placement specifier.
        """
        ncol = self.frame.shape[1]
        lines: list[str] = []
        if float_env:
            lines += [f"\\begin{{table}}[{placement}]", "\\centering"]
            if self.title:
                lines.append(f"\\caption{{{_latex_escape(self.title)}}}")
            if self.label:
                lines.append(f"\\label{{{_latex_label(self.label)}}}")
        lines.append(f"\\begin{{tabular}}{{l{'c' * (ncol - 1)}}}")
        lines.append("\\toprule")
        lines.append(_latex_line(" & ".join(_latex_cell(c) for c in self.columns)) + " \\\\")
        lines.append("\\midrule")
        for i, row in enumerate(self._rows()):
            if i in self.midrules and i > 0:
                lines.append("\\midrule")
            lines.append(_latex_line(" & ".join(_latex_cell(c) for c in row)) + " \\\\")
        lines.append("\\bottomrule")
        lines.append("\\end{tabular}")
        if self.notes:
            lines.append("")
            lines.append("\\smallskip")
            lines.append(
                "{\\footnotesize "
                + " \\\\\n".join(_latex_line(_latex_escape(n)) for n in self.notes)
                + "\\par}"
            )
        if float_env:
            lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

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
            out += [_md_escape(n) + "  " for n in self.notes]
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


def _csv_cell(text: str) -> str:
    # The csv module quotes fields holding "\n" but not a bare "\r", which readers take
    # as a row end: normalise carriage returns to newlines (then quoted).
    return str(text).replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------- numbers
def _fmt_num(x: Any, digits: int) -> str:
    """Fixed decimals; NaN -> empty; no negative zero."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")
    s = f"{v:.{digits}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def _fmt_int(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return ""
    return f"{int(round(v)):,}"


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
        est = [str(getattr(r, "estimator", "")) for r in seq]
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
        return [(t, t) for t in _order_terms(all_terms) if not t.startswith("weight:")]
    if isinstance(terms, str):
        terms = [terms]  # one pattern, not a list of its characters
    if not isinstance(terms, Mapping | Iterable):
        raise TableError(
            f"`terms` must be a list of term names or patterns, or a mapping term -> label; "
            f"received {terms!r}."
        )
    items = list(terms.items()) if isinstance(terms, Mapping) else [(t, t) for t in terms]
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
                out.append((t, str(label) if label != pattern or len(hits) == 1 else t))
    return out


def _stat_value(res: Any, key: str, digits: int) -> str:
    info = getattr(res, "info", None) or {}
    if key in ("n_units", "n_obs"):
        v = getattr(res, key, info.get(key))
        return "" if v is None else _fmt_int(v)
    v = info.get(key, getattr(res, key, None))
    if v is None:
        return ""
    if key.endswith("_p") or key.startswith("p_"):
        return _fmt_num(v, digits)
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return _fmt_int(v)
    return _fmt_cell(v, digits)


def _footer(named: Mapping[str, Any], names: list[str], stats: Any, digits: int) -> list[list[str]]:
    """Footer rows: the outcomes (unless the columns are already named by them) and the
    requested statistics that at least one column reports."""
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
        foot.append(["Outcome", *outcomes])
    for key, lab in stat_items:
        vals = [_stat_value(named[n], key, digits) for n in names]
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
    stats: Sequence[str] | Mapping[str, str] = (
        "n_units",
        "n_obs",
        "cluster",
        "control_group",
        "fixed_effects",
        "pretrend_p",
    ),
    alpha: float | None = None,
    title: str | None = None,
    notes: Iterable[str] = (),
    label: str | None = None,
) -> Table:
    """Estimates side by side, one column per result (R ``modelsummary`` layout).

    Parameters
    ----------
    results : result, sequence of results, or mapping name -> result
        Column headers are the mapping keys; for a sequence, the estimator names when they
        differ, else the outcomes, else ``(1)``, ``(2)``, ...
    terms : sequence or mapping, optional
        Terms to show, in order; shell wildcards allowed (``"event:*"``). A mapping
        ``{term: label}`` renames rows. Default: every term except ``weight:*``.
    stars : bool or mapping
        ``True`` marks p < 0.10 / 0.05 / 0.01 with ``*``/``**``/``***``; a mapping
        ``{symbol: bound}`` sets other thresholds. p-values are the results' own
        (normal or t, see :meth:`EstimationResult.pvalues`).
    ci : bool
        Add a row with the ``1 - alpha`` confidence interval in brackets under the SE.
    digits : int
        Decimals of estimates, SEs and intervals.
    stats : sequence or mapping
        Footer rows from ``n_units``, ``n_obs`` and the results' ``info`` keys (known
        labels: units, observations, clusters, control group, fixed effects, pre-trend
        p-value). Rows empty in every column are dropped. A mapping sets the labels.
    alpha : float, optional
        Level of the intervals (default: each result's ``alpha``).
    title, notes, label
        Caption, extra note lines, LaTeX label.

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
    for term, lab in chosen:
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
            star = _stars(float(h["p"]), thresholds) if thresholds else ""
            r_est.append(_fmt_num(h["estimate"], digits) + star)
            r_se.append(f"({_fmt_num(h['se'], digits)})" if math.isfinite(h["se"]) else "")
            r_ci.append(
                f"[{_fmt_num(h['lo'], digits)}, {_fmt_num(h['hi'], digits)}]"
                if math.isfinite(h["lo"]) and math.isfinite(h["hi"])
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

    foot = _footer(named, names, stats, digits)

    midrules = (len(rows),) if foot and rows else ()
    frame = pd.DataFrame([*rows, *foot], columns=["", *names])
    note_lines = ["Standard errors in parentheses."]
    if ci:
        level = _level_text(named, alpha)
        note_lines.append(f"{level} confidence intervals in brackets.")
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


def _check_digits(digits: Any) -> None:
    if (
        isinstance(digits, bool | np.bool_)
        or not isinstance(digits, int | np.integer)
        or not 0 <= digits <= 20
    ):
        raise TableError(f"digits must be a whole number from 0 to 20; received {digits!r}.")


def _level_text(named: Mapping[str, Any], alpha: float | None) -> str:
    alphas = (
        {float(getattr(r, "alpha", 0.05)) for r in named.values()} if alpha is None else {alpha}
    )
    if len(alphas) == 1:
        return f"{100 * (1 - alphas.pop()):g}%"
    return "Pointwise"


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
    ``ref.`` when present with no standard error.
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
    for e in sorted(events):
        term = events[e]
        lab = f"E = {int(e) if float(e).is_integer() else e}"
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
            star = _stars(float(h["p"]), thresholds) if thresholds else ""
            r_est.append(_fmt_num(h["estimate"], digits) + star)
            r_se.append(f"({_fmt_num(h['se'], digits)})" if se_ok else "")
            r_ci.append(
                f"[{_fmt_num(h['lo'], digits)}, {_fmt_num(h['hi'], digits)}]" if se_ok else ""
            )
            bl, bh = float(h["band_low"]), float(h["band_high"])
            if math.isfinite(bl) and math.isfinite(bh):
                has_band = True
                r_band.append(f"{{{_fmt_num(bl, digits)}, {_fmt_num(bh, digits)}}}")
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

    foot = _footer(named, names, stats, digits)
    frame = pd.DataFrame([*rows, *foot], columns=["Event time", *names])
    note_lines = ["E: periods relative to treatment. Standard errors in parentheses."]
    if ci:
        note_lines.append(
            f"{_level_text(named, alpha)} pointwise confidence intervals in brackets."
        )
    if band and has_band:
        note_lines.append("Simultaneous (uniform) confidence bands in braces.")
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
    title: str | None = None,
    notes: Iterable[str] = (),
    label: str | None = None,
) -> Table:
    """The claim verdicts: one row per claim with estimate, CI, margin, breakdown, verdict.

    ``margin`` is the equivalence margin of a null claim (the CI must lie within
    ±margin, the TOST logic of Schuirmann 1987); ``breakdown`` is the sensitivity
    breakdown value (e.g. the largest HonestDiD M̄ at which the conclusion survives,
    Rambachan & Roth 2023). Both are printed as given.
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"claims_table needs a DataFrame; got {type(df).__name__}.")
    missing = [c for c in CLAIM_COLUMNS if c not in df.columns]
    if missing:
        raise TableError(
            f"The claims table lacks column(s) {missing}; it needs {list(CLAIM_COLUMNS)} "
            f"(got {list(df.columns)})."
        )
    rows = []
    for r in df.itertuples(index=False):
        lo, hi = _fmt_num(r.ci_low, digits), _fmt_num(r.ci_high, digits)
        rows.append(
            [
                _fmt_cell(r.claim, digits),
                _fmt_cell(r.data, digits),
                _fmt_cell(r.estimator, digits),
                _fmt_num(r.estimate, digits),
                f"[{lo}, {hi}]" if lo and hi else "",
                _fmt_num(r.margin, digits),
                _fmt_num(r.breakdown, digits),
                _fmt_cell(r.verdict, digits),
            ]
        )
    frame = pd.DataFrame(
        rows,
        columns=["Claim", "Data", "Estimator", "Estimate", "CI", "Margin", "Breakdown", "Verdict"],
    )
    return Table(
        frame,
        title=title,
        notes=tuple(notes),
        label=label,
        data=df.loc[:, list(CLAIM_COLUMNS)].copy(),
    )
