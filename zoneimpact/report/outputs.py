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

from .. import labels  # noqa: E402
from ..errors import SpecError  # noqa: E402
from ..files import RunFiles  # noqa: E402
from . import html, narrative, plots, tables  # noqa: E402

if TYPE_CHECKING:
    from ..rundir import RunOutput

TABLE_FORMATS = (".csv", ".md", ".tex", ".html")


def _event_results(results: dict[str, Any]) -> dict[str, Any]:
    return {
        name: res
        for name, res in results.items()
        if any(str(t).startswith("event:") for t in res.terms["term"])
    }


def display_labels(output: RunOutput) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Column/legend names by block, outcome labels and outcome units (from the spec)."""
    block_labels = {e.name: getattr(e, "label", None) for e in output.spec.estimates}
    olabels = dict(getattr(output.spec.data, "labels", {}) or {})
    ounits = dict(getattr(output.spec.data, "units", {}) or {})
    names = labels.display_names(output.results, block_labels, olabels)
    return names, olabels, ounits


#: Captions of the standard figures (``plots.default_figures`` keys).
FIGURE_TITLES = {
    "event_study": "event study",
    "group_time": "group-time effects ATT(g, t), one panel per cohort",
    "cohort_event_study": "event study of each cohort, ATT(g, g + e)",
    "sc_paths": "treated and synthetic paths",
    "sc_gap": "gap between treated and synthetic",
    "placebo_gaps": "placebo gaps",
    "rmspe_ratio": "post/pre RMSPE ratios",
    "donor_weights": "donor weights",
    "sdid_weights": "unit and time weights",
    "bacon": "Goodman-Bacon decomposition",
    "decomposition": "direct, spillover and net effects",
    "spillover_by_ring": "spillover by distance",
    # plots.counterfactual_figures
    "counterfactual_gap": "treated minus counterfactual, before and after adoption",
    "equivalence_event": "pre-period equivalence test of the event-time gaps",
}

#: Captions of the run-wide figures a command adds (``extras["figures"]``).
EXTRA_FIGURE_TITLES = {
    "decomposition": "Direct, spillover and net effects",
    "specification_curve": "Specification curve",
    "honest_sensitivity": "Rambachan-Roth sensitivity of the event studies",
    "role_map": "Treated, neighbouring and control cities",
    "estimate_map": "Effect by city",
}

#: Shown first on the report page of a run on simulated data (the console prints the
#: claims command's version of it, which the page did not carry).
SIMULATED_CAVEAT = (
    "DEMONSTRATION on SIMULATED data: the estimates{verdicts} on this page come from a "
    "simulated panel whose truth is known, not from real data."
)


def figure_captions(output: RunOutput, figs: dict[str, Any]) -> dict[str, str]:
    """Human captions: "Callaway–Sant'Anna: group-time effects ..." instead of file stems."""
    names, olabels, ounits = display_labels(output)
    out = {"event_study": "Event studies overlaid", "units_map": "Units and zone cohorts"}
    out.update(EXTRA_FIGURE_TITLES)
    overlays = event_overlays(output) if output.results else []
    if len(overlays) > 1:
        for key, outcome, _ in overlays:
            label = labels.outcome_label(outcome, olabels, ounits)
            out[key] = f"Event studies overlaid: effect on {label}"
    for block in output.results:
        for key, title in FIGURE_TITLES.items():
            if f"{block}_{key}" in figs:
                out[f"{block}_{key}"] = f"{names[block]}: {title}"
    return {k: v for k, v in out.items() if k in figs}


def build_tables(output: RunOutput) -> dict[str, tables.Table]:
    """Regression table of the headline terms, event-study table, pre-trend diagnostics
    with Rambachan-Roth breakdown values, and the claims table."""
    out: dict[str, tables.Table] = {}
    names, olabels, ounits = display_labels(output)
    if output.results:  # a claims run whose claims all went untested has no estimates
        out["estimates"] = tables.regression_table(
            {names[n]: res for n, res in output.results.items()},
            outcome_labels=olabels,
            outcome_units=ounits,
            alpha=output.spec.inference.alpha,
        )
    events = _event_results(output.results)
    if events:
        out["event_study"] = tables.event_study_table(
            {names[n]: res for n, res in events.items()}, alpha=output.spec.inference.alpha
        )
    diag = output.diagnostics
    if diag is not None and not diag.empty:
        out["pretrends"] = tables.pretrends_table(diag, names=names)
    verdicts = output.extras.get("verdicts")
    if verdicts is not None:
        # the verdicts' (1 - 2 alpha) intervals, labelled with their level
        out["claims"] = tables.claims_table(verdicts, alpha=output.spec.inference.alpha)
    # further tables a command adds (e.g. the China claims run's specification curve)
    for name, frame in output.extras.get("tables", {}).items():
        if name not in out and hasattr(frame, "columns") and len(frame):
            out[name] = tables.Table.from_frame(frame, digits=4, title=name.replace("_", " "))
    return out


def event_overlays(output: RunOutput) -> list[tuple[str, str, list[str]]]:
    """The overlaid event-study figures: ``(figure key, outcome, block names)``, one per
    outcome (a curve is only overlaid on curves of the same outcome, so the y label
    "Effect on OUTCOME" holds for each). The first outcome's figure keeps the key
    ``event_study``; the others are ``event_study_OUTCOME``."""
    events = _event_results(output.results)
    chosen = output.spec.figures.get("event_study")
    unknown = [n for n in chosen or [] if n not in events]
    if unknown:
        raise SpecError(
            f"[figures] event_study names {unknown}, which are not event-study estimates."
        )
    by_outcome: dict[str, list[str]] = {}
    for name in chosen if chosen is not None else events:
        by_outcome.setdefault(str(events[name].outcome), []).append(name)
    out = []
    for k, (outcome, blocks) in enumerate(by_outcome.items()):
        if chosen is None:
            # one estimate per estimator keeps the overlay readable at a column's width
            seen: dict[str, str] = {}
            for name in blocks:
                seen.setdefault(events[name].estimator, name)
            blocks = list(seen.values())[:5]
        out.append(("event_study" if k == 0 else f"event_study_{outcome}", outcome, blocks))
    return out


def build_figures(output: RunOutput) -> dict[str, Any]:
    """The standard figures of every result, plus overlaid event studies (one figure per
    outcome)."""
    figs: dict[str, Any] = {}
    events = _event_results(output.results)
    names, olabels, ounits = display_labels(output)
    for key, outcome, chosen in event_overlays(output):
        figs[key] = plots.event_study_plot(
            [events[n] for n in chosen],
            labels=[names[n] for n in chosen],
            ylabel=f"Effect on {labels.outcome_label(outcome, olabels, ounits)}",
        )
    for name, res in output.results.items():
        outcome = labels.outcome_label(res.outcome, olabels, ounits)
        for key, fig in plots.default_figures(res, outcome_label=outcome).items():
            if key == "event_study" and name in events:
                continue
            figs[f"{name}_{key}"] = fig
    own_data = {e.name for e in output.spec.estimates if e.data is not None}
    for name, res in output.results.items():
        # gap and equivalence plots of the counterfactual estimators (issue 15); a block
        # with its own [estimate.data] is drawn without the main panel
        block_panel = None if name in own_data else output.data.panel
        for key, fig in plots.counterfactual_figures(res, panel=block_panel).items():
            figs[f"{name}_{key}"] = fig
    panel = output.data.panel
    if panel.geography is not None and {"lat", "lon"} <= set(panel.geography.columns):
        # the panel itself, so zones outside it (its sources) are not drawn as controls
        figs["units_map"] = plots.unit_map_plot(panel)
    extra = output.extras.get("figures", {})
    figs.update(extra)
    return figs


def write_tables_and_figures(
    output: RunOutput,
    root: Path,
    *,
    files: RunFiles | None = None,
    manifest: dict[str, Any] | None = None,
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
    manifest : dict, optional
        The run's provenance record (written by the run), shown at the foot of the page.
    """
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
        fixed = {
            "event_study",
            "units_map",
            *(key for key, _, _ in event_overlays(output)),
            *output.extras.get("figures", {}),
        }
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
        manifest=manifest or {},
        summary=narrative.run_summary(output),
        captions=figure_captions(output, figs),
        warnings={
            block: [f"{w['category']}: {w['message']}" for w in caught]
            for block, caught in output.warnings.items()
        },
        caveats=run_caveats(output),
    )


def run_caveats(output: RunOutput) -> list[str]:
    """Run-wide caveats of the report page: that the data are simulated (a claims run on
    simulated data is a demonstration, its verdicts say nothing about real data)."""
    simulated = (
        getattr(output.data, "simulation", None) is not None
        or getattr(output.spec.data, "source", None) == "simulate"
    )
    if not simulated:
        return []
    judged = " and claim verdicts" if output.extras.get("verdicts") is not None else ""
    return [SIMULATED_CAVEAT.format(verdicts=judged)]
