"""A self-contained HTML report: summary, verdicts, figures, tables, results, manifest.

The page reads top-down as a paper would: a plain-language summary first (headline
estimates, verdicts, the simulated truth, what the estimates differ on and why), then the
verdicts, then the figures shown at their printed size (so 7 pt figure text is at least
9 px on screen), then the tables and per-estimate details folded in ``<details>``. Wide
tables scroll inside their own box, so the page never overflows sideways (checked at
1280 px in headless Chromium by the tests). p-values print as "0.043" or "<0.001".

The page is one file with no external resources (no scripts, fonts or stylesheets from the
network): figures are embedded as base64 PNG ``data:`` URIs, tables as HTML, the manifest
as JSON in a collapsible ``<details>`` block, so it can be mailed, archived or opened
offline. The output is deterministic for given inputs (no timestamps are added; the run's
time, if any, comes from the manifest). Written with the standard library only.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ZoneImpactError
from ..labels import format_p, is_p_column
from .tables import Table

__all__ = ["ReportError", "figure_to_png", "write_report"]


class ReportError(ZoneImpactError, ValueError):
    """The report cannot be built from the inputs given."""


_CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45;
 overflow-wrap:anywhere}
.summary p{font-size:1.02em;max-width:75ch}
.scroll{max-width:100%;overflow-x:auto}
h1{font-size:1.6em;border-bottom:2px solid #0072B2;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
h3{font-size:1.05em;margin-bottom:.3em}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
th,td{padding:.2em .7em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead tr{border-top:2px solid #222;border-bottom:1px solid #222}
tbody tr:last-child{border-bottom:2px solid #222}
tr.midrule{border-top:1px solid #222}
tfoot td{text-align:left;font-size:.85em;color:#555;white-space:normal}
.zi-table tbody th{font-weight:normal}
.verdict{padding:.1em .5em;border-radius:3px;font-weight:600}
.v-supported{background:#cde8dc;color:#00523a}
.v-contradicted{background:#f6d3bf;color:#7a2e00}
.v-inconclusive{background:#e6e6e6;color:#333}
figure{display:inline-block;margin:0 1.5em 1.5em 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}
details{margin:1em 0}
summary{cursor:pointer;font-weight:600}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em;max-width:100%}
.meta{color:#555;font-size:.9em}
"""


#: Headings of the tables a run writes.
TABLE_TITLES = {
    "estimates": "Headline estimates",
    "event_study": "Event-study coefficients",
    "pretrends": "Pre-trend diagnostics",
    "claims": "Claims",
}

#: CSS pixels per inch of figure: figures are shown at their printed size, where 7 pt
#: tick labels are 7 / 72 * 150 = 14.6 px (at least 9 px even at 60 % zoom).
DISPLAY_PX_PER_INCH = 150.0


def _display_size(png: bytes) -> tuple[int, int]:
    """Displayed (width, height) in CSS px: the image's size in inches (from its pHYs
    chunk, 200 dpi when absent) at :data:`DISPLAY_PX_PER_INCH`."""
    width, height = struct.unpack(">II", png[16:24])
    dpi = 200.0
    at = png.find(b"pHYs")
    if at > 0:
        ppu_x, _, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
        if unit == 1 and ppu_x > 0:  # pixels per metre
            dpi = ppu_x * 0.0254
    scale = DISPLAY_PX_PER_INCH / dpi
    return max(1, round(width * scale)), max(1, round(height * scale))


def figure_to_png(fig: Figure, *, dpi: int = 150) -> bytes:
    """PNG bytes of a figure (its canvas is not changed; pyplot is not used)."""
    buf = io.BytesIO()
    # No "Software" metadata: the bytes then depend only on the figure, not on the
    # installed matplotlib version.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _png_bytes(name: str, fig: Any) -> bytes:
    if isinstance(fig, Figure):
        return figure_to_png(fig)
    if isinstance(fig, bytes | bytearray):
        data = bytes(fig)
    elif isinstance(fig, str | os.PathLike):
        p = Path(fig)
        if not p.is_file():
            raise ReportError(f"Figure {name!r}: file {str(p)!r} does not exist.")
        data = p.read_bytes()
    else:
        raise ReportError(
            f"Figure {name!r} must be a matplotlib Figure, PNG bytes or a path to a PNG; "
            f"got {type(fig).__name__}."
        )
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ReportError(f"Figure {name!r} is not a PNG image; save it as .png first.")
    return data


def _anchor(prefix: str, name: str, used: set[str]) -> str:
    """An element id ``prefix-name`` made of ``[A-Za-z0-9_-]``, unique among ``used``.

    Names that sanitise alike (``"a b"`` and ``"a-b"``) get ``-2``, ``-3``, ... in page
    order; the id is added to ``used``.
    """
    base = prefix + "-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", str(name)).strip("-") or "x")
    anchor, k = base, 2
    while anchor in used:
        anchor, k = f"{base}-{k}", k + 1
    used.add(anchor)
    return anchor


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)):
            return "" if math.isnan(float(v)) else str(float(v))
        text = f"{float(v):.4g}"
        # plain digits for large numbers (46123, not 4.612e+04); tiny ones stay scientific
        return f"{float(v):.0f}" if "e+" in text else text
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    return str(v)


def _is_p_column(name: Any) -> bool:
    return is_p_column(name)


def _frame_html(df: pd.DataFrame, *, caption: str | None = None) -> str:
    esc = html.escape
    pcols = [_is_p_column(c) for c in df.columns]
    out = ['<div class="scroll"><table class="zi-table">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append(
        "<thead><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in df.columns) + "</tr></thead>"
    )
    out.append("<tbody>")
    for row in df.itertuples(index=False):
        out.append(
            "<tr>"
            + "".join(
                f"<td>{esc(format_p(v) if isp and _numeric(v) else _fmt(v))}</td>"
                for v, isp in zip(row, pcols, strict=True)
            )
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _verdicts_html(df: pd.DataFrame) -> str:
    esc = html.escape
    cols = list(df.columns)
    out = ['<table class="zi-table verdicts">']
    out.append("<thead><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in cols) + "</tr></thead>")
    out.append("<tbody>")
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row, strict=True):
            text = esc(_fmt(v))
            if c == "verdict":
                key = re.sub(r"[^a-z]+", "", str(v).lower())
                text = f'<span class="verdict v-{key}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if {"ci_low", "ci_high"} <= set(cols):
        # the verdicts' intervals are (1 - 2 alpha) ones (TOST), not the estimates' level
        out.append(
            '<p class="meta">ci_low, ci_high: the (1 - 2 alpha) interval each verdict is '
            "judged with (90% at alpha = 0.05; TOST equivalence, Schuirmann 1987); its level "
            "and reference distribution are in each row's note.</p>"
        )
    return "\n".join(out)


def _warning_list(messages: Sequence[str]) -> str:
    """The warnings of one block as an escaped list."""
    items = "".join(f"<li>{html.escape(str(m))}</li>" for m in messages)
    return f'<ul class="warnings">{items}</ul>'


def _result_html(name: str, res: Any, ids: set[str], warned: Sequence[str] = ()) -> str:
    esc = html.escape
    parts = [f'<h3 id="{_anchor("res", name, ids)}">{esc(str(name))}</h3>']
    if warned:
        parts.append(f'<p class="meta">Warnings raised while estimating {esc(str(name))}:</p>')
        parts.append(_warning_list(warned))
    est = esc(str(getattr(res, "estimator", "")))
    outc = esc(str(getattr(res, "outcome", "")))
    # a count of 0 is the default of a result that did not record its sample: left out
    sizes = "".join(
        f" · {esc(_fmt(n))} {what}"
        for n, what in (
            (getattr(res, "n_units", None), "units"),
            (getattr(res, "n_obs", None), "observations"),
        )
        if n not in (None, "", 0)
    )
    parts.append(
        f'<p class="meta">estimator <code>{est}</code> · outcome <code>{outc}</code>{sizes}</p>'
    )
    if hasattr(res, "tidy"):
        tidy = res.tidy()
    else:
        tidy = pd.DataFrame(getattr(res, "terms", pd.DataFrame()))
    # Donor-weight rows can run to hundreds: shown folded, after the estimates.
    is_weight = tidy["term"].astype(str).str.startswith("weight:") if "term" in tidy else None
    main = tidy if is_weight is None else tidy.loc[~is_weight]
    parts.append(_frame_html(main))
    if is_weight is not None and is_weight.any():
        parts.append(
            f"<details><summary>Weights ({int(is_weight.sum())} rows)</summary>"
            + _frame_html(tidy.loc[is_weight, ["term", "estimate"]])
            + "</details>"
        )
    info = getattr(res, "info", None) or {}
    scalars = {
        k: (format_p(v) if _is_p_column(k) and _numeric(v) else v)
        for k, v in info.items()
        if np.isscalar(v) or v is None
    }
    if scalars:
        parts.append(
            "<details><summary>Settings and diagnostics</summary>"
            + _frame_html(pd.DataFrame({"key": list(scalars), "value": list(scalars.values())}))
            + "</details>"
        )
    return "\n".join(parts)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    return str(o)


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    results: Mapping[str, Any] | None = None,
    tables: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
    verdicts: pd.DataFrame | None = None,
    manifest: Mapping[str, Any] | None = None,
    summary: Sequence[str] | str | None = None,
    captions: Mapping[str, str] | None = None,
    warnings: Mapping[str, Sequence[str]] | None = None,
    caveats: Sequence[str] | None = None,
) -> Path:
    """Write a self-contained ``report.html``.

    Parameters
    ----------
    path : path
        The HTML file to write; an existing directory gets ``report.html`` inside it.
        Written atomically (temporary file, then rename).
    title : str
        Page title and heading.
    results : mapping name -> result, optional
        Each shown with its ``tidy()`` table and ``info`` scalars.
    tables : mapping name -> Table or DataFrame, optional
        :class:`~zoneimpact.report.tables.Table` objects (rendered with ``to_html``) or
        plain DataFrames.
    figures : mapping name -> Figure, PNG bytes or PNG path, optional
        Embedded as base64 PNG.
    verdicts : DataFrame, optional
        Claim verdicts (e.g. columns of :func:`~zoneimpact.report.tables.claims_table`);
        a ``verdict`` column is colour-coded.
    manifest : mapping, optional
        Run manifest, shown as JSON in a collapsible block.
    summary : str or sequence of str, optional
        Plain-text paragraphs opening the page (e.g.
        :func:`zoneimpact.report.narrative.run_summary`).
    captions : mapping figure name -> caption, optional
        Figure captions (default: the figure names).
    warnings : mapping block name -> messages, optional
        The warnings raised while each block was estimated; listed in a "Warnings and
        caveats" section under the summary and again with the block's estimates.
    caveats : sequence of str, optional
        Run-wide caveats (e.g. that the data are simulated), shown first in that section.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    out = Path(path)
    if out.is_dir():
        out = out / "report.html"
    if not out.parent.is_dir():
        raise ReportError(f"Cannot write the report: folder {str(out.parent)!r} does not exist.")
    esc = html.escape
    results = dict(results or {})
    tables = dict(tables or {})
    figures = dict(figures or {})

    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    # every element id on the page, so ids built from names never repeat
    ids = {"summary", "warnings", "verdicts", "tables", "figures", "results", "manifest"}
    if summary is not None:
        paras = [summary] if isinstance(summary, str) else list(summary)
        if not all(isinstance(x, str) for x in paras):
            raise ReportError("`summary` must be a string or a list of strings (paragraphs).")
        if paras:
            sections.append(
                ("summary", "Summary", "\n".join(f"<p>{esc(x)}</p>" for x in paras if x))
            )
    warned = {str(k): [str(m) for m in v] for k, v in (warnings or {}).items() if v}
    # next to the headline numbers they qualify, not only in the folded estimates
    notes = [f'<p class="caveat"><strong>{esc(str(c))}</strong></p>' for c in caveats or () if c]
    for block, messages in warned.items():
        notes.append(f"<p>Estimate <code>{esc(block)}</code>:</p>{_warning_list(messages)}")
    if notes:
        sections.append(("warnings", "Warnings and caveats", "\n".join(notes)))
    if verdicts is not None:
        if not isinstance(verdicts, pd.DataFrame):
            raise ReportError(f"`verdicts` must be a DataFrame; got {type(verdicts).__name__}.")
        sections.append(("verdicts", "Claims and verdicts", _verdicts_html(verdicts)))
    tab_body = []
    for name, tab in tables.items():
        if isinstance(tab, Table):
            inner = f'<div class="scroll">{tab.to_html()}</div>'
        elif isinstance(tab, pd.DataFrame):
            inner = _frame_html(tab)
        else:
            raise ReportError(
                f"Table {name!r} must be a Table or a DataFrame; got {type(tab).__name__}."
            )
        heading = TABLE_TITLES.get(str(name), str(name))
        # Folded: the summary and figures come first; a table is a click away.
        tab_body.append(
            f'<details id="{_anchor("tab", name, ids)}"><summary>{esc(heading)}</summary>'
            f"{inner}</details>"
        )
    if figures:
        body = []
        for name, fig in figures.items():
            data = _png_bytes(str(name), fig)
            b64 = base64.b64encode(data).decode("ascii")
            width, height = _display_size(data)
            body.append(
                f'<figure id="{_anchor("fig", name, ids)}"><img alt="{esc(str(name))}" '
                f'width="{width}" height="{height}" '
                f'src="data:image/png;base64,{b64}"><figcaption>'
                f"{esc(str((captions or {}).get(name, name)))}</figcaption></figure>"
            )
        sections.append(("figures", "Figures", "\n".join(body)))
    if tab_body:
        sections.append(("tables", "Tables", "\n".join(tab_body)))
    if results:
        sections.append(
            (
                "results",
                "Estimates",
                "<details><summary>Every term of every estimate</summary>"
                + "\n".join(
                    _result_html(n, r, ids, warned.get(str(n), ())) for n, r in results.items()
                )
                + "</details>",
            )
        )
    if manifest is not None:
        text = json.dumps(dict(manifest), indent=2, sort_keys=True, default=_json_default)
        sections.append(
            (
                "manifest",
                "Manifest",
                f"<details><summary>Run manifest (JSON)</summary><pre>{esc(text)}</pre></details>",
            )
        )

    nav = " ".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in sections)
    doc = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{esc(title)}</h1>",
            f"<nav>{nav}</nav>",
            *[
                f'<section id="{a}" class="{a}"><h2>{esc(h)}</h2>\n{b}\n</section>'
                for a, h, b in sections
            ],
            "</body>",
            "</html>",
            "",
        ]
    )
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(doc)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
