"""The tables, figures and report page of a run directory, read from its results.

Called by :mod:`zoneimpact.run` after every estimate is in memory: nothing here fits a
model. Figures are written as PNG and PDF, tables as CSV, Markdown, LaTeX and HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ..errors import SpecError  # noqa: E402
from ..inference.diagnostics import event_study_diagnostics  # noqa: E402
from . import html, plots, tables  # noqa: E402

if TYPE_CHECKING:
    from ..run import RunFiles, RunOutput

TABLE_FORMATS = (".csv", ".md", ".tex", ".html")


def _event_results(results: dict[str, Any]) -> dict[str, Any]:
    return {
        name: res
        for name, res in results.items()
        if any(str(t).startswith("event:") for t in res.terms["term"])
    }


def build_tables(output: RunOutput) -> dict[str, tables.Table]:
    """Regression table of the headline terms, event-study table, pre-trend diagnostics
    with Rambachan-Roth breakdown values, and the claims table."""
    out: dict[str, tables.Table] = {}
    heads = {name: res for name, res in output.results.items()}
    main_terms = sorted({res.main_term for res in heads.values()})
    out["estimates"] = tables.regression_table(heads, terms=main_terms)
    events = _event_results(output.results)
    if events:
        out["event_study"] = tables.event_study_table(events)
    diag = event_study_diagnostics(events, alpha=output.spec.inference.alpha)
    if not diag.empty:
        out["pretrends"] = tables.Table.from_frame(diag.round(6))
    verdicts = output.extras.get("verdicts")
    if verdicts is not None:
        out["claims"] = tables.claims_table(verdicts)
    return out


def build_figures(output: RunOutput) -> dict[str, Any]:
    """The standard figures of every result, plus overlaid event studies."""
    figs: dict[str, Any] = {}
    events = _event_results(output.results)
    chosen = output.spec.figures.get("event_study")
    if chosen is None:
        # one estimate per estimator keeps the overlay readable at a column's width
        seen: dict[str, str] = {}
        for name, res in events.items():
            seen.setdefault(res.estimator, name)
        chosen = list(seen.values())[:5]
    unknown = [n for n in chosen if n not in events]
    if unknown:
        raise SpecError(
            f"[figures] event_study names {unknown}, which are not event-study estimates."
        )
    if chosen:
        figs["event_study"] = plots.event_study_plot([events[n] for n in chosen], labels=chosen)
    for name, res in output.results.items():
        for key, fig in plots.default_figures(res).items():
            if key == "event_study" and name in events:
                continue
            figs[f"{name}_{key}"] = fig
    panel = output.data.panel
    if panel.geography is not None and {"lat", "lon"} <= set(panel.geography.columns):
        figs["units_map"] = plots.unit_map_plot(panel.geography, panel.unit_cohort)
    extra = output.extras.get("figures", {})
    figs.update(extra)
    return figs


def write_tables_and_figures(
    output: RunOutput, root: Path, *, files: RunFiles | None = None
) -> None:
    """Write ``tables/``, ``figures/`` and ``report.html`` under ``root``.

    Parameters
    ----------
    output : RunOutput
        The run's results.
    root : pathlib.Path
        The (temporary) run directory.
    files : RunFiles, optional
        The run's file namer; file names derived from block names are sanitised, made
        unique and checked to lie inside ``root`` through it. A new one for ``root`` if
        not given.
    """
    from ..run import RunFiles, manifest

    files = RunFiles(root) if files is None else files
    files.folder("tables")
    files.folder("figures")
    built = build_tables(output)
    for name, table in built.items():
        stem = files.stem("tables", name)
        for ext in TABLE_FORMATS:
            table.save(files.path("tables", stem, ext))
    figs = build_figures(output)
    try:
        # figures that do not come from a block claim their names first
        fixed = {"event_study", "units_map", *output.extras.get("figures", {})}
        stems = {
            name: files.stem("figures", name) for name in sorted(figs, key=lambda n: n not in fixed)
        }
        pngs = {}
        for name, fig in figs.items():
            png = files.path("figures", stems[name], ".png")
            # fixed metadata keeps PNG/PDF bytes reproducible across runs
            fig.savefig(png, dpi=200, metadata={"Software": None})
            fig.savefig(
                files.path("figures", stems[name], ".pdf"),
                metadata={"CreationDate": None, "Producer": None},
            )
            pngs[name] = png
    finally:
        for fig in figs.values():
            plt.close(fig)

    html.write_report(
        files.file("", "report", ".html"),
        title=output.spec.title,
        results=output.results,
        tables=built,
        figures=pngs,
        verdicts=output.extras.get("verdicts"),
        manifest=manifest(output),
    )
