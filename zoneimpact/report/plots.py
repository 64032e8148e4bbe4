"""The standard figures of DiD, synthetic-control and spillover analyses (matplotlib only).

Every function takes result objects (duck-typed on the attributes documented in
``docs/DEVELOPING.md``), keyword-only options and ``ax=None``, and returns the
:class:`~matplotlib.figure.Figure` it drew on. Nothing is shown: the library never calls
``plt.show`` and never touches pyplot's global state (figures are made with
:func:`zoneimpact.report.style.new_figure`), so figures can be written by a run without
leaking memory. Styling (Okabe–Ito colours, 8 pt text at 3.5 in width) lives in
:mod:`zoneimpact.report.style`.

Functions that draw several panels (:func:`group_time_plot`, :func:`sdid_weights_plot`)
accept ``ax`` as a sequence of axes, one per panel.

All text is drawn literally (no mathtext, no TeX): unit, donor, outcome and estimate names
are the user's, and one holding ``$...$`` must show as typed rather than abort the figure.
Every label, title, tick label and legend set here passes through
:func:`zoneimpact.report.style.literal`, and :func:`~zoneimpact.report.style.paper_style`
turns mathtext off for any other text created while drawing.

The figures follow the conventions of the methods' papers: event-study coefficients with
pointwise intervals and a simultaneous band (Callaway & Sant'Anna 2021, Fig. 1; R
``did::ggdid``), treated versus synthetic paths, gaps and placebo gaps and the post/pre
RMSPE-ratio distribution (Abadie, Diamond & Hainmueller 2010, Figs. 2–4, 8), synthetic-DiD
unit and time weights (Arkhangelsky et al. 2021, Fig. 1), and the Goodman-Bacon (2021,
Fig. 6) scatter of 2×2 DiD estimates against their weights.
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from scipy import stats as sps

from ..errors import SpecError, ZoneImpactError
from ..results import band_alpha as _band_alpha
from ..results import check_alpha
from ..results import intervals_alpha as _intervals_alpha
from . import style
from .style import (
    legend_above,
    legend_top_of_figure,
    literal,
    new_figure,
    paper_style,
    root_figure,
)
from .tables import _bin_ranges

__all__ = [
    "PlotError",
    "bacon_plot",
    "decomposition_plot",
    "default_figures",
    "donor_weights_plot",
    "event_study_plot",
    "exposure_sensitivity_plot",
    "group_time_plot",
    "placebo_gaps_plot",
    "rmspe_ratio_hist",
    "sc_gap_plot",
    "sc_paths_plot",
    "sdid_weights_plot",
    "spillover_by_ring_plot",
    "unit_map_plot",
]


class PlotError(ZoneImpactError, ValueError):
    """A result lacks what a plot needs, or plot options are inconsistent."""


# ----------------------------------------------------------------------------- helpers
def _check_alpha(alpha: Any) -> None:
    """``alpha`` is None (each result's own) or a number in (0, 1)."""
    if alpha is not None:
        try:
            check_alpha(alpha)
        except SpecError as exc:
            raise PlotError(f"{exc} (None uses each result's own level)") from None


def _named(results: Any) -> dict[str, Any]:
    """``{legend label: result}`` from one result, a sequence or a mapping."""
    if results is None or isinstance(results, str | bytes):
        raise PlotError(
            f"Pass a result, a list of results or a mapping name -> result; received {results!r}."
        )
    if not isinstance(results, Mapping) and not hasattr(results, "terms"):
        try:
            iter(results)
        except TypeError:
            raise PlotError(
                f"Pass a result, a list of results or a mapping name -> result; received "
                f"{type(results).__name__}."
            ) from None
    if isinstance(results, Mapping):
        out = {str(k): v for k, v in results.items()}
    else:
        seq = [results] if hasattr(results, "terms") else list(results)
        est = [str(getattr(r, "estimator", "")) for r in seq]
        outc = [str(getattr(r, "outcome", "")) for r in seq]
        if len(set(est)) == len(seq):
            names = est
        elif len(set(outc)) == len(seq):
            names = outc
        else:
            names = [f"{e} ({o})" for e, o in zip(est, outc, strict=True)]
            if len(set(names)) != len(seq):
                names = [f"({i + 1}) {n}" for i, n in enumerate(names)]
        out = dict(zip(names, seq, strict=True))
    if not out:
        raise PlotError("No results given to plot.")
    return out


def _terms_with_ci(res: Any, alpha: float | None) -> pd.DataFrame:
    """term, estimate, lo, hi, band_low, band_high for a result (duck-typed)."""
    terms = getattr(res, "terms", None)
    if not isinstance(terms, pd.DataFrame):
        raise PlotError(f"{type(res).__name__} has no `terms` table to plot.")
    a = float(getattr(res, "alpha", 0.05) if alpha is None else alpha)
    est = terms["estimate"].to_numpy(float)
    if hasattr(res, "conf_int"):
        ci = res.conf_int(a)
        lo, hi = ci["lower"].to_numpy(float), ci["upper"].to_numpy(float)
    else:
        z = sps.norm.ppf(1 - a / 2)
        se = terms["se"].to_numpy(float)
        lo, hi = est - z * se, est + z * se
    out = pd.DataFrame(
        {"term": terms["term"].astype(str).to_numpy(), "estimate": est, "lo": lo, "hi": hi}
    )
    for c in ("band_low", "band_high"):
        out[c] = terms[c].to_numpy(float) if c in terms.columns else np.nan
    return out


def _start(ax: Axes | None, **fig_kw: Any) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = new_figure(**fig_kw)
        return fig, ax
    if not isinstance(ax, Axes):
        raise PlotError(f"`ax` must be a matplotlib Axes or None; got {type(ax).__name__}.")
    return root_figure(ax), ax


def _start_multi(ax: Any, n: int, **fig_kw: Any) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig, axes = new_figure(squeeze=False, **fig_kw)
        return fig, list(np.asarray(axes).ravel())
    axes = [ax] if isinstance(ax, Axes) else list(np.asarray(ax, dtype=object).ravel())
    if len(axes) < n or not all(isinstance(a, Axes) for a in axes):
        raise PlotError(
            f"This plot draws {n} panel(s); pass `ax` as a sequence of {n} Axes (got {len(axes)})."
        )
    return root_figure(axes[0]), axes


def _attr(res: Any, name: str, what: str) -> Any:
    val = getattr(res, name, None)
    if val is None:
        raise PlotError(
            f"{type(res).__name__} ({getattr(res, 'estimator', '?')}) has no `{name}`; "
            f"{what} needs it."
        )
    return val


def _treatment_period(res: Any) -> float | None:
    """First treated period: ``treatment_period`` attribute, else ``info`` under
    ``treatment_period`` or ``treatment_start`` (the synthetic-control option name).
    """
    tp = getattr(res, "treatment_period", None)
    info = getattr(res, "info", None) or {}
    for key in ("treatment_period", "treatment_start"):
        if tp is None:
            tp = info.get(key)
    try:
        return None if tp is None else float(tp)
    except (TypeError, ValueError):
        return None


def _treated_unit(res: Any) -> Any:
    unit = getattr(res, "treated_unit", None)
    if unit is None:
        unit = (getattr(res, "info", None) or {}).get("treated_unit")
    return unit


def _outcome_label(res: Any) -> str:
    out = str(getattr(res, "outcome", "") or "outcome")
    return out


def _zero_line(ax: Axes, *, horizontal: bool = True) -> None:
    (ax.axhline if horizontal else ax.axvline)(
        0.0, color=style.REFERENCE_COLOR, lw=0.7, ls="--", zorder=0
    )


def _treat_line(ax: Axes, period: float | None) -> None:
    if period is not None:
        ax.axvline(
            period,
            color=style.REFERENCE_COLOR,
            lw=0.8,
            ls=":",
            zorder=0,
            label=f"First treated period ({_num(period)})",
        )


def _num(v: Any) -> str:
    """A period or cohort as text: whole numbers as integers (``20040101``, not
    ``2.00401e+07``), others as ``:g``."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if np.isfinite(f) and f.is_integer():
        return str(int(f))
    return f"{f:g}"


def _integer_x(ax: Axes) -> None:
    # Integer periods; nbins keeps year labels (4 digits at 7 pt) from touching at 3.5 in.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))


def _event_time(term: str) -> float | None:
    if not term.startswith("event:"):
        return None
    try:
        return float(term.split(":", 1)[1])
    except ValueError:
        return None


# ----------------------------------------------------------------------------- event study
def event_study_plot(
    results: Any,
    *,
    ax: Axes | None = None,
    band: bool = True,
    ref_line: bool = True,
    labels: Sequence[str] | None = None,
    alpha: float | None = None,
    offset: float = 0.15,
    xlabel: str = "Periods relative to treatment",
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Event-study coefficients (terms ``event:E``) with confidence intervals.

    Parameters
    ----------
    results : result, sequence or mapping name -> result
        Several results are overlaid, each shifted horizontally by ``offset`` so their
        intervals do not hide each other.
    ax : matplotlib Axes, optional
        Axes to draw on (default: a new column-width figure).
    band : bool
        Draw the simultaneous (uniform) band as a wide translucent bar behind the pointwise
        interval, where the result carries ``band_low``/``band_high`` (Callaway & Sant'Anna
        2021, Sec. 4.1; Montiel Olea & Plagborg-Møller 2019).
    ref_line : bool
        Dashed lines at zero effect and between E = -1 and E = 0 (treatment onset).
    labels : sequence of str, optional
        Legend labels (default: mapping keys, estimator names or outcomes).
    alpha : float, optional
        Level of the pointwise intervals (default: each result's ``alpha``).
    offset : float
        Horizontal shift between overlaid results, in periods.
    xlabel, ylabel, title : str, optional
        Axis labels (the y label defaults to "Effect on OUTCOME") and title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_alpha(alpha)
    if (
        isinstance(offset, bool)
        or not isinstance(offset, int | float | np.number)
        or not (np.isfinite(offset))
    ):
        raise PlotError(f"offset must be a finite number of periods; received {offset!r}.")
    named = _named(results)
    if labels is not None:
        if isinstance(labels, str):
            labels = [labels]
        if len(labels) != len(named):
            raise PlotError(f"{len(labels)} labels for {len(named)} results.")
        named = dict(zip([str(x) for x in labels], named.values(), strict=True))
    # Results on different outcomes share one axis only with the outcome in each legend
    # entry and a generic y label: "Effect on <first outcome>" would mislabel the others.
    outcomes = {name: _outcome_label(res) for name, res in named.items()}
    mixed_outcomes = len(set(outcomes.values())) > 1
    if mixed_outcomes:
        named = {
            (name if outcomes[name] in name else f"{name} ({outcomes[name]})"): res
            for name, res in named.items()
        }
    with paper_style():
        fig, ax = _start(ax)
        n = len(named)
        band_series: list[tuple[int, str]] = []
        plotted = 0
        for i, (name, res) in enumerate(named.items()):
            t = _terms_with_ci(res, alpha)
            e = t["term"].map(_event_time)
            t = t.assign(e=e).dropna(subset=["e"]).sort_values("e")
            if t.empty:
                continue
            plotted += 1
            x = t["e"].to_numpy(float) + (i - (n - 1) / 2) * offset
            y = t["estimate"].to_numpy(float)
            col = style.color(i)
            if band:
                bl, bh = t["band_low"].to_numpy(float), t["band_high"].to_numpy(float)
                ok = np.isfinite(bl) & np.isfinite(bh)
                if ok.any():
                    band_series.append((i, name))
                    ax.vlines(x[ok], bl[ok], bh[ok], color=col, lw=4.0, alpha=0.25, zorder=1)
            lo, hi = t["lo"].to_numpy(float), t["hi"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.vlines(x[ok], lo[ok], hi[ok], color=col, lw=1.0, zorder=2)
            ax.plot(x, y, ls="none", marker=style.marker(i), color=col, label=name, zorder=3)
            shift = (i - (n - 1) / 2) * offset
            # Binned event times: the bin's extent as a segment at the estimate and its
            # range as text ("2..3", "<= -2", ">= 1"; info["bins"] / info["binned"]).
            ranges = _event_bins(res, t)
            for k, term in enumerate(t["term"]):
                text = ranges.get(term)
                if not text:
                    continue
                span = re.fullmatch(r"(-?[\d.]+)\.\.(-?[\d.]+)", text)
                if span:
                    a, z = float(span.group(1)), float(span.group(2))
                    ax.hlines(y[k], a + shift, z + shift, color=col, lw=1.0, zorder=2)
                top = hi[k] if np.isfinite(hi[k]) else y[k]
                ax.annotate(
                    text.replace(" ", ""), (x[k], top), xytext=(0, 1.5),
                    textcoords="offset points", ha="center", va="bottom", fontsize=5.5,
                    color=col,
                )  # fmt: skip
            # Regression event studies omit the reference period(s) (info["reference"],
            # default E = -1): each is drawn as a hollow 0 where it is.
            refs = _references(res)
            if not refs and -1.0 not in set(t["e"]) and (t["e"] < -1).any():
                refs = [-1.0]
            for r in refs:
                if r in set(t["e"]):
                    continue
                ax.plot(
                    r + shift,
                    0.0,
                    ls="none",
                    marker=style.marker(i),
                    mfc="white",
                    color=col,
                    zorder=3,
                )
        if plotted == 0:
            raise PlotError(
                "No `event:E` terms in the result(s); fit an event study (dynamic "
                "aggregation) first."
            )
        if ref_line:
            _zero_line(ax)
            ax.axvline(-0.5, color=style.REFERENCE_COLOR, lw=0.7, ls=":", zorder=0)
        _integer_x(ax)
        note = _pre_period_note(named)
        literal(ax.set_xlabel(xlabel + (f"\n{note}" if note else "")))
        first = next(iter(named.values()))
        default_y = (
            "Effect (outcome in legend)"
            if mixed_outcomes
            else (f"Effect on {_outcome_label(first)}")
        )
        literal(ax.set_ylabel(ylabel or default_y))
        if title:
            literal(ax.set_title(title))
        handles, labs = ax.get_legend_handles_labels()
        level = _level_label(named.values(), alpha)
        # The interval and band entries state the confidence level; each band swatch has
        # the colour of the band it stands for. A band is the result's own (its bootstrap
        # critical value at its alpha, not stored for another), so it carries that level.
        handles.append(Line2D([], [], color=style.TREATED_COLOR, lw=1.0))
        labs.append(f"{level} pointwise CI")
        results = list(named.values())
        for i, name in band_series:
            handles.append(Patch(facecolor=style.color(i), alpha=0.25, lw=0))
            band_level = f"{100 * (1 - _band_alpha(results[i])):g}%"
            labs.append(
                f"{band_level} uniform band" + (f" ({name})" if len(band_series) > 1 else "")
            )
        legend_above(ax, handles=handles, labels=labs)
    return fig


def _event_bins(res: Any, t: pd.DataFrame) -> dict[str, str]:
    """Texts of the binned event terms of a result (``{"event:-2": "<= -2"}``): TWFE's
    ``info["bins"]``/``info["binned"]`` (read as the tables read them) and Sun-Abraham's
    ``window="bin"``, whose end points pool every event time beyond them."""
    info = getattr(res, "info", None) or {}
    if str(getattr(res, "estimator", "")) == "sun_abraham" and info.get("window") == "bin":
        e = t.sort_values("e")
        lo, hi = e.iloc[0], e.iloc[-1]
        return {str(lo["term"]): f"<= {_num(lo['e'])}", str(hi["term"]): f">= {_num(hi['e'])}"}
    return _bin_ranges(res, list(t["term"]))


def _level_label(results: Any, alpha: float | None) -> str:
    """The level as "95%", from the given alpha or the results' own."""
    alphas = (
        {float(getattr(r, "alpha", 0.05)) for r in results} if alpha is None else {float(alpha)}
    )
    if len(alphas) == 1:
        return f"{100 * (1 - alphas.pop()):g}%"
    return "Per-estimate"


def _pre_period_meaning(res: Any) -> str:
    """What the pre-treatment coefficients of a result's event study compare (short)."""
    est = str(getattr(res, "estimator", ""))
    info = getattr(res, "info", None) or {}
    if est == "callaway_santanna":
        if str(info.get("base_period", "varying")) == "varying":
            return "vs. the period before (varying base)"
        return "vs. E = -1 (universal base)"
    if est in ("imputation", "spillover"):
        return "placebo fits on untreated obs."
    if est in ("event_study", "twfe", "sun_abraham", "ppml"):
        refs = _references(res) or [-1.0]
        plural = "s" if len(refs) > 1 else ""
        return f"vs. E = {', '.join(_num(r) for r in refs)} (reference period{plural})"
    return ""


def _references(res: Any) -> list[float]:
    """The omitted reference event time(s) a regression event study records:
    ``info["reference"]`` (TWFE event study: ``-1`` or ``"-5,-1"``) with TWFE's
    ``info["second_reference"]`` (the lead dropped without never-treated units), or
    ``info["ref_period"]`` (Sun-Abraham); empty when the result records none."""
    info = getattr(res, "info", None) or {}
    raw = info.get("reference", info.get("ref_period"))
    if raw is None or isinstance(raw, bool):
        return []
    second = info.get("second_reference")
    parts = str(raw).split(",") + ([] if second is None else [str(second)])
    out: list[float] = []
    for part in parts:
        try:
            v = float(part)
        except ValueError:
            return []
        if np.isfinite(v):
            out.append(v)
    return sorted(set(out))


def _pre_period_note(named: Mapping[str, Any]) -> str:
    """A "what each pre-period means" note when overlaid results define them differently
    (Roth 2024: CS's varying base and a regression's fixed reference period are not
    comparable pre-trend by pre-trend)."""
    groups: dict[str, list[str]] = {}
    for name, res in named.items():
        meaning = _pre_period_meaning(res)
        if meaning:
            groups.setdefault(meaning, []).append(name)
    # one definition needs no note, unless it is a reference other than the usual E = -1
    unusual = any("(reference period" in m and m != "vs. E = -1 (reference period)" for m in groups)
    if len(groups) < 2 and not unusual:
        return ""
    text = "Pre-periods: " + "; ".join(
        f"{', '.join(names)} {meaning}" for meaning, names in groups.items()
    )
    return "\n".join(textwrap.wrap(text, 50))


# ----------------------------------------------------------------------------- group-time
def group_time_plot(
    result: Any,
    *,
    ax: Any = None,
    alpha: float | None = None,
    ncols: int | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    event_time: bool = False,
) -> Figure:
    """Callaway & Sant'Anna (2021) group-time ATT(g, t): one panel per cohort g.

    With ``event_time=True`` each panel is the cohort's own event study: ATT(g, g + e)
    against e = t - g (periods relative to its treatment), on a common axis, so cohorts'
    dynamics can be compared; the default x axis is calendar time.

    Pre-treatment periods (t < g, placebo estimates) and post-treatment periods are drawn
    in two colours with confidence intervals, as R ``did::ggdid`` does for ``MP`` objects:
    the simultaneous band (``band_low``/``band_high`` of ``att_gt``, from the multiplier
    bootstrap, Callaway & Sant'Anna 2021 Sec. 4.1) when present, as R ``did`` does by
    default; else ``ci_low``/``ci_high``; else pointwise estimate ± z·se. The stored band
    and intervals are at the level they were computed at (the result's ``alpha``, or its
    ``band_alpha`` once rebuilt at another with ``with_terms``); any other ``alpha`` draws
    pointwise estimate ± z·se at that level instead (the band's bootstrap critical value
    is not stored for other levels).
    """
    att = _attr(result, "att_gt", "group_time_plot")
    need = {"cohort", "time", "estimate", "se"}
    if not isinstance(att, pd.DataFrame) or not need <= set(att.columns):
        raise PlotError(f"`att_gt` must be a DataFrame with columns {sorted(need)}.")
    if att.empty:
        raise PlotError("`att_gt` is empty: no group-time effects to plot.")
    cohorts = sorted(att["cohort"].unique())
    n = len(cohorts)
    if ncols is None:
        ncols = 1 if n <= 4 else 2
    nrows = math.ceil(n / ncols)
    a = float(getattr(result, "alpha", 0.05)) if alpha is None else float(alpha)
    z = sps.norm.ppf(1 - a / 2)
    # the stored band / intervals are at the level they were computed at only
    stored = a == _band_alpha(result)
    with paper_style():
        fig, axes = _start_multi(
            ax,
            n,
            nrows=nrows,
            ncols=ncols,
            sharex=True,
            sharey=True,
            width=style.COLUMN_WIDTH if ncols == 1 else style.PAGE_WIDTH,
            height=0.4 + 1.25 * nrows,
        )
        kinds: set[str] = set()
        for k, g in enumerate(cohorts):
            axk = axes[k]
            d = att.loc[att["cohort"] == g].sort_values("time")
            t = d["time"].to_numpy(float) - (float(g) if event_time else 0.0)
            y = d["estimate"].to_numpy(float)
            if (
                stored
                and {"band_low", "band_high"} <= set(d.columns)
                and d["band_low"].notna().any()
            ):
                lo, hi = d["band_low"].to_numpy(float), d["band_high"].to_numpy(float)
                kinds.add("uniform band")
            elif stored and {"ci_low", "ci_high"} <= set(d.columns):
                kinds.add("pointwise CI")
                lo, hi = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
            else:
                se = d["se"].to_numpy(float)
                lo, hi = y - z * se, y + z * se
                kinds.add("pointwise CI")
            onset = 0.0 if event_time else float(g)
            post = t >= onset
            for mask, col, mk, lab in (
                (~post, style.PRE_COLOR, "o", "Pre-treatment"),
                (post, style.POST_COLOR, "s", "Post-treatment"),
            ):
                if mask.any():
                    axk.vlines(t[mask], lo[mask], hi[mask], color=col, lw=1.0)
                    axk.plot(t[mask], y[mask], ls="none", marker=mk, color=col, label=lab)
            _zero_line(axk)
            axk.axvline(onset - 0.5, color=style.REFERENCE_COLOR, lw=0.7, ls=":", zorder=0)
            literal(
                axk.set_title(
                    f"Cohort {_num(g)}"
                    if isinstance(g, float | int | np.number)
                    else f"Cohort {g}",
                    loc="left",
                )
            )
            _integer_x(axk)
        for axk in axes[n:]:
            axk.set_visible(False)
        for axk in axes[:n]:
            if (spec := axk.get_subplotspec()) is None or spec.is_last_row() or ax is not None:
                literal(
                    axk.set_xlabel(
                        xlabel or ("Periods relative to treatment" if event_time else "Period")
                    )
                )
        ylab = ylabel or f"ATT(g, t) on {_outcome_label(result)}"
        if ax is None:
            literal(fig.supylabel(ylab, fontsize=8))
        else:
            for axk in axes[:n]:
                literal(axk.set_ylabel(ylab))
        # The first cohort may lack pre-periods: collect the entries from every panel.
        entries: dict[str, Any] = {}
        for axk in axes[:n]:
            for h, lab in zip(*axk.get_legend_handles_labels(), strict=True):
                entries.setdefault(lab, h)
        labs: list[str] = [lab for lab in ("Pre-treatment", "Post-treatment") if lab in entries]
        handles = [entries[lab] for lab in labs]
        level = f"{100 * (1 - a):g}%"
        for kind in sorted(kinds):
            handles.append(Line2D([], [], color=style.REFERENCE_COLOR, lw=1.0))
            labs.append(f"{level} {kind}")
        legend_top_of_figure(fig, handles, labs)
    return fig


# ----------------------------------------------------------------------------- synthetic control
def _series(res: Any, name: str, what: str) -> pd.Series:
    s = _attr(res, name, what)
    if isinstance(s, pd.DataFrame):
        if s.shape[1] != 1:
            raise PlotError(f"`{name}` must be a Series by period (got {s.shape[1]} columns).")
        s = s.iloc[:, 0]
    return pd.Series(s).sort_index()


def sc_paths_plot(
    result: Any,
    *,
    ax: Axes | None = None,
    xlabel: str = "Period",
    ylabel: str | None = None,
    treated_label: str | None = None,
    synthetic_label: str = "Synthetic control",
) -> Figure:
    """Treated unit against its synthetic control over time (ADH 2010, Fig. 2).

    A dotted line marks the first treated period (``treatment_period`` or
    ``info["treatment_period"]``).
    """
    treated = _series(result, "treated_path", "sc_paths_plot")
    synth = _series(result, "synthetic_path", "sc_paths_plot")
    unit = _treated_unit(result)
    with paper_style():
        fig, ax = _start(ax)
        ax.plot(
            treated.index,
            treated.to_numpy(float),
            color=style.TREATED_COLOR,
            label=treated_label or (f"Treated ({unit})" if unit is not None else "Treated"),
        )
        ax.plot(
            synth.index,
            synth.to_numpy(float),
            color=style.SYNTHETIC_COLOR,
            ls="--",
            label=synthetic_label,
        )
        _treat_line(ax, _treatment_period(result))
        _integer_x(ax)
        literal(ax.set_xlabel(xlabel))
        literal(ax.set_ylabel(ylabel or _outcome_label(result)))
        legend_above(ax)
    return fig


def sc_gap_plot(
    result: Any,
    *,
    ax: Axes | None = None,
    xlabel: str = "Period",
    ylabel: str | None = None,
) -> Figure:
    """Gap between the treated unit and its synthetic control (ADH 2010, Fig. 3)."""
    gaps = getattr(result, "gaps", None)
    if gaps is None:
        gaps = _series(result, "treated_path", "sc_gap_plot") - _series(
            result, "synthetic_path", "sc_gap_plot"
        )
    gaps = pd.Series(gaps).sort_index()
    with paper_style():
        fig, ax = _start(ax)
        ax.plot(
            gaps.index,
            gaps.to_numpy(float),
            color=style.TREATED_COLOR,
            label="Treated minus synthetic",
        )
        _zero_line(ax)
        _treat_line(ax, _treatment_period(result))
        _integer_x(ax)
        literal(ax.set_xlabel(xlabel))
        literal(ax.set_ylabel(ylabel or f"Gap in {_outcome_label(result)}"))
        legend_above(ax)
    return fig


def placebo_gaps_plot(
    result: Any,
    *,
    ax: Axes | None = None,
    pre_mspe_cap: float | None = None,
    xlabel: str = "Period",
    ylabel: str | None = None,
) -> Figure:
    """In-space placebo gaps (grey) with the treated unit's gap highlighted (ADH 2010, Figs. 4–7).

    Parameters
    ----------
    result : synthetic-control result
        With ``placebo_gaps`` (period x unit), ``gaps``, ``treated_unit``, ``rmspe``.
    ax : matplotlib Axes, optional
        Axes to draw on.
    pre_mspe_cap : float, optional
        Drop placebos whose pre-treatment MSPE exceeds ``pre_mspe_cap`` times the treated
        unit's (ADH 2010 show caps of 20, 5 and 2), using ``rmspe["pre_rmspe"]``. Default:
        the placebos the result kept (``rmspe["kept"]``, its ``drop_ratio``), the set its
        permutation p-value counts.
    xlabel, ylabel : str, optional
        Axis labels.
    """
    gaps = _attr(result, "placebo_gaps", "placebo_gaps_plot")
    if not isinstance(gaps, pd.DataFrame) or gaps.empty:
        raise PlotError("`placebo_gaps` must be a non-empty DataFrame (period x unit).")
    gaps = gaps.sort_index()
    treated_unit = _treated_unit(result)
    own = getattr(result, "gaps", None)
    if own is None and treated_unit in gaps.columns:
        own = gaps[treated_unit]
    placebos = (
        gaps.drop(columns=[treated_unit], errors="ignore") if treated_unit is not None else gaps
    )
    n_dropped = 0
    if pre_mspe_cap is not None:
        rm = _attr(result, "rmspe", "pre_mspe_cap")
        if treated_unit not in rm.index:
            raise PlotError(
                f"The treated unit {treated_unit!r} is not in `rmspe`; cannot apply pre_mspe_cap."
            )
        cap = pre_mspe_cap * float(rm.loc[treated_unit, "pre_rmspe"]) ** 2
        keep = [
            u
            for u in placebos.columns
            if u in rm.index and float(rm.loc[u, "pre_rmspe"]) ** 2 <= cap
        ]
        n_dropped = placebos.shape[1] - len(keep)
        placebos = placebos[keep]
    else:
        rm = getattr(result, "rmspe", None)
        if isinstance(rm, pd.DataFrame) and "kept" in rm.columns:
            # the result's own placebo set (drop_ratio), as its p-value (ADH 2010, Figs. 5-7)
            dropped = [u for u in placebos.columns if u in rm.index and not rm.loc[u, "kept"]]
            n_dropped = len(dropped)
            placebos = placebos.drop(columns=dropped)
    with paper_style():
        fig, ax = _start(ax)
        x = placebos.index.to_numpy()
        for j, u in enumerate(placebos.columns):
            ax.plot(
                x,
                placebos[u].to_numpy(float),
                color=style.PLACEBO_COLOR,
                lw=0.6,
                label="Placebo units" if j == 0 else None,
                zorder=1,
            )
        if own is not None:
            own = pd.Series(own).sort_index()
            lab = f"Treated ({treated_unit})" if treated_unit is not None else "Treated"
            ax.plot(
                own.index,
                own.to_numpy(float),
                color=style.TREATED_COLOR,
                lw=1.6,
                label=lab,
                zorder=3,
            )
        _zero_line(ax)
        _treat_line(ax, _treatment_period(result))
        _integer_x(ax)
        literal(ax.set_xlabel(xlabel))
        literal(ax.set_ylabel(ylabel or f"Gap in {_outcome_label(result)}"))
        if n_dropped:
            rule = (
                f"pre-MSPE > {pre_mspe_cap:g}× treated"
                if pre_mspe_cap is not None
                else "dropped by the result's drop_ratio"
            )
            literal(ax.set_title(f"{n_dropped} placebo(s) {rule} omitted", loc="left"))
        legend_above(ax)
    return fig


def rmspe_ratio_hist(
    result: Any,
    *,
    ax: Axes | None = None,
    bins: int | Sequence[float] | None = None,
    xlabel: str = "Post/pre-treatment RMSPE ratio",
) -> Figure:
    """Distribution of post/pre-treatment RMSPE ratios over the units (ADH 2010, Fig. 8).

    The treated unit's ratio is marked; the legend gives the permutation p-value
    ``#{units with ratio >= treated's} / #units`` (ADH 2010, Sec. 4). When the result
    dropped placebos (``rmspe["kept"]``, its ``drop_ratio``), the histogram and the p-value
    cover the kept units only, and the p-value is the result's ``info["p_value"]``.
    """
    rm = _attr(result, "rmspe", "rmspe_ratio_hist")
    if not isinstance(rm, pd.DataFrame) or "ratio" not in rm.columns:
        raise PlotError("`rmspe` must be a DataFrame with a `ratio` column (index: unit).")
    n_all = len(rm)
    if "kept" in rm.columns:
        # the placebo set of the result's p-value (drop_ratio), not every unit
        rm = rm[rm["kept"].astype(bool)]
    ratio = rm["ratio"].astype(float)
    ratio = ratio[np.isfinite(ratio)]
    treated_unit = _treated_unit(result)
    stored_p = (getattr(result, "info", None) or {}).get("p_value")
    units_label = "All units" if len(rm) == n_all else f"Kept units ({len(rm)} of {n_all})"
    with paper_style():
        fig, ax = _start(ax)
        if bins is None:
            bins = min(20, max(5, int(np.ceil(np.sqrt(len(ratio))))))
        ax.hist(
            ratio.to_numpy(),
            bins=bins,
            color=style.OKABE_ITO["sky_blue"],
            edgecolor="white",
            lw=0.5,
            label=units_label,
        )
        if treated_unit is not None and treated_unit in ratio.index:
            r0 = float(ratio.loc[treated_unit])
            p = float(np.mean(ratio.to_numpy() >= r0))
            if stored_p is not None and np.isfinite(float(stored_p)):
                # the result's p-value (its rule also counts 0/0 ratios as extreme)
                p = float(stored_p)
            ax.axvline(
                r0,
                color=style.TREATED_COLOR,
                lw=1.4,
                label=f"Treated ({treated_unit}); p = {p:.3g}",
            )
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        literal(ax.set_xlabel(xlabel))
        literal(ax.set_ylabel("Number of units"))
        legend_above(ax)
    return fig


def _barh_weights(
    ax: Axes, w: pd.Series, *, top: int, color: str, xlabel: str, ylabel: str, what: str
) -> None:
    w = pd.Series(w).astype(float)
    w = w[w.abs() > 1e-10]
    # ranked by size |w| with the signs kept: a large negative weight (augmented SC,
    # SDID's unit weights need not be positive) is not hidden below the top
    w = w.iloc[np.argsort(-w.abs().to_numpy(), kind="stable")]
    shown = w.iloc[:top]
    y = np.arange(len(shown))[::-1]
    ax.barh(y, shown.to_numpy(), color=color, height=0.7)
    literal(ax.set_yticks(y, [str(u) for u in shown.index]))
    ax.tick_params(axis="y", labelsize=6 if len(shown) > 10 else 7)
    literal(ax.set_xlabel(xlabel))
    literal(ax.set_ylabel(ylabel))
    rest = len(w) - len(shown)
    title = f"{what}: {len(w)} nonzero" + (f", top {len(shown)} by |w| shown" if rest > 0 else "")
    if (w < 0).any():
        ax.axvline(0.0, color=style.REFERENCE_COLOR, lw=0.7, zorder=0)
    literal(ax.set_title(title, loc="left"))


def donor_weights_plot(result: Any, *, ax: Axes | None = None, top: int = 15) -> Figure:
    """Synthetic-control donor weights, largest |w| first with their signs (zero weights
    omitted)."""
    w = _attr(result, "donor_weights", "donor_weights_plot")
    with paper_style():
        n = min(top, int((pd.Series(w).abs() > 1e-10).sum()))
        fig, ax = _start(ax, height=0.9 + 0.16 * max(n, 2))
        _barh_weights(
            ax,
            w,
            top=top,
            color=style.OKABE_ITO["blue"],
            xlabel="Weight",
            ylabel="Donor unit",
            what="Donors",
        )
    return fig


def _weights_frame(w: Any) -> pd.DataFrame:
    """Weights as a DataFrame (index: unit or period; one column per cohort)."""
    if isinstance(w, pd.DataFrame):
        return w.astype(float)
    return pd.Series(w, dtype=float).to_frame("weight")


def sdid_weights_plot(
    result: Any, *, ax: Any = None, top: int = 15, xlabel_time: str = "Period"
) -> Figure:
    """Synthetic-DiD unit weights ω and time weights λ (Arkhangelsky et al. 2021, eqs. 2.2–2.3).

    Two panels: nonzero unit weights as horizontal bars (the ``top`` largest) and the
    pre-treatment time weights by period. With staggered adoption the weights are
    DataFrames with one column per cohort; each cohort then gets its own colour.
    """
    uw = _weights_frame(_attr(result, "unit_weights", "sdid_weights_plot"))
    tw = _weights_frame(_attr(result, "time_weights", "sdid_weights_plot")).sort_index()
    if uw.shape[1] == 1:
        n = min(top, int((uw.iloc[:, 0].abs() > 1e-10).sum()))
    else:
        n = min(top, int((uw.abs().max(axis=1) > 1e-10).sum()))
    with paper_style():
        if ax is None:
            # a cohort legend above the unit panel takes room from its tick rows
            extra = 0.0 if uw.shape[1] == 1 else 0.45
            fig, axes = new_figure(nrows=2, squeeze=False, height=1.9 + extra + 0.16 * max(n, 2))
            axes = list(np.asarray(axes).ravel())
            engine = fig.get_layout_engine()
            assert isinstance(engine, ConstrainedLayoutEngine)  # new_figure: layout="constrained"
            engine.set(h_pad=0.06)
        else:
            fig, axes = _start_multi(ax, 2)
        if uw.shape[1] == 1:
            _barh_weights(
                axes[0],
                uw.iloc[:, 0],
                top=top,
                color=style.OKABE_ITO["blue"],
                xlabel="Unit weight (ω)",
                ylabel="Control unit",
                what="Units",
            )
        else:
            order = uw.abs().max(axis=1).sort_values(ascending=False)
            shown = order[order > 1e-10].index[:top]
            k = uw.shape[1]
            h = 0.8 / k
            y0 = np.arange(len(shown))[::-1]
            for j, c in enumerate(uw.columns):
                axes[0].barh(
                    y0 + (j - (k - 1) / 2) * h,
                    uw.loc[shown, c].fillna(0).to_numpy(),
                    height=h,
                    color=style.color(j),
                    label=f"Cohort {c}",
                )
            literal(axes[0].set_yticks(y0, [str(u) for u in shown]))
            axes[0].tick_params(axis="y", labelsize=6 if len(shown) > 10 else 7)
            literal(axes[0].set_xlabel("Unit weight (ω)"))
            literal(axes[0].set_ylabel("Control unit"))
            legend_above(axes[0])
        k = tw.shape[1]
        wbar = 0.8 / k
        for j, c in enumerate(tw.columns):
            axes[1].bar(
                tw.index.to_numpy(float) + (j - (k - 1) / 2) * wbar,
                tw[c].fillna(0).to_numpy(),
                color=style.OKABE_ITO["vermillion"] if k == 1 else style.color(j),
                width=wbar,
            )
        literal(axes[1].set_xlabel(xlabel_time))
        literal(axes[1].set_ylabel("Time weight (λ)"))
        _integer_x(axes[1])
        literal(axes[1].set_title("Pre-treatment periods", loc="left"))
    return fig


# ----------------------------------------------------------------------------- Bacon
def bacon_plot(result: Any, *, ax: Axes | None = None) -> Figure:
    """Goodman-Bacon (2021) decomposition: each 2×2 DiD estimate against its weight.

    Markers distinguish comparison types; the dashed line is the TWFE estimate, the
    weighted average of the 2×2 estimates (Goodman-Bacon 2021, Theorem 1, eq. 10a).
    """
    comp = _attr(result, "comparisons", "bacon_plot")
    need = {"type", "estimate", "weight"}
    if not isinstance(comp, pd.DataFrame) or not need <= set(comp.columns):
        raise PlotError(f"`comparisons` must be a DataFrame with columns {sorted(need)}.")
    w = comp["weight"].to_numpy(float)
    b = comp["estimate"].to_numpy(float)
    twfe = float(np.sum(w * b) / np.sum(w)) if np.sum(w) > 0 else float("nan")
    with paper_style():
        fig, ax = _start(ax)
        for i, (typ, d) in enumerate(comp.groupby("type", sort=True)):
            ax.plot(
                d["weight"].to_numpy(float),
                d["estimate"].to_numpy(float),
                ls="none",
                marker=style.marker(i),
                color=style.color(i),
                mfc="none" if i % 2 else None,
                label=str(typ).replace("_", " ").capitalize(),
            )
        if np.isfinite(twfe):
            ax.axhline(twfe, color=style.TREATED_COLOR, lw=0.9, ls="--", label=f"TWFE = {twfe:.3g}")
        ax.set_xlim(left=0)
        literal(ax.set_xlabel("Weight"))
        literal(ax.set_ylabel(f"2x2 DiD estimate ({_outcome_label(result)})"))
        legend_above(ax)
    return fig


# ----------------------------------------------------------------------------- spillovers
_RING_RE = re.compile(r"^spillover:(.+)$")


def _ring_key(name: str) -> tuple[float, str]:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", name)
    return (float(m.group(1)) if m else math.inf, name)


def _decomposition_keys(t: pd.DataFrame) -> tuple[list[tuple[str, str]], bool]:
    """(term, bar label) pairs of one result, and whether they are regional totals."""
    if {"direct_total", "spillover_total", "net"} <= set(t.index):
        # The spillover estimator reports direct/spillover as per-unit ATTs but `net` as
        # a total; only the totals add up, so they are what the bars compare (with the
        # zone units' losses before their own zone when estimated: they are in net too)
        keys = [("direct_total", "Direct"), ("spillover_total", "Spillover")]
        if "spillover_on_zones_total" in t.index:
            keys.append(("spillover_on_zones_total", "Spillover on zones"))
        return [*keys, ("net", "Net")], True
    keys = [("direct", "Direct")]
    if "spillover" in t.index:
        keys.append(("spillover", "Spillover"))
    else:
        rings = sorted(
            (k for k in t.index if _RING_RE.match(k)), key=lambda k: _ring_key(k.split(":", 1)[1])
        )
        keys += [(k, "Spillover " + k.split(":", 1)[1]) for k in rings]
    keys.append(("net", "Net"))
    return [(k, lab) for k, lab in keys if k in t.index], False


def decomposition_plot(
    results: Any,
    *,
    ax: Axes | None = None,
    alpha: float | None = None,
    xlabel: str = "Outcome",
    ylabel: str | None = None,
) -> Figure:
    """Direct, spillover and net effects with confidence intervals, grouped per outcome.

    The estimands are those of Butts (2021) and Clarke (2017): the direct effect on zone
    units, the spillover on exposed neighbours and the net regional effect, net = direct
    + spillover (+ spillover on zone units before their zone) in levels. When a result carries ``direct_total``/``spillover_total``
    (totals over unit-periods, which add up to ``net`` together with
    ``spillover_on_zones_total``, drawn when present) those are drawn; otherwise the
    terms ``direct``, ``spillover`` (or ``spillover:RING``) and ``net``. A
    ``displacement_share`` term (1 - net / direct total) is printed under the group's
    label.
    """
    named = _named(results)
    rows = []
    kinds = set()
    for name, res in named.items():
        t = _terms_with_ci(res, alpha).set_index("term")
        keys, totals = _decomposition_keys(t)
        if not keys:
            raise PlotError(
                f"Result {name!r} has none of the terms direct / spillover / net; "
                f"terms are {list(t.index)}."
            )
        kinds.add(totals)
        for k, lab in keys:
            rows.append((name, lab, *t.loc[k, ["estimate", "lo", "hi"]].to_numpy(float)))
    if len(kinds) > 1:
        raise PlotError(
            "Some results report regional totals (direct_total, spillover_total) and others "
            "per-unit effects; plot them separately, as the two scales differ."
        )
    totals = kinds.pop()
    df = pd.DataFrame(rows, columns=["group", "term", "estimate", "lo", "hi"])
    slots = list(dict.fromkeys(df["term"]))
    groups = list(named)
    width = 0.8 / len(slots)
    with paper_style():
        fig, ax = _start(ax)
        for j, lab in enumerate(slots):
            d = df.loc[df["term"] == lab].set_index("group").reindex(groups)
            x = np.arange(len(groups)) + (j - (len(slots) - 1) / 2) * width
            y = d["estimate"].to_numpy(float)
            err = np.vstack([y - d["lo"].to_numpy(float), d["hi"].to_numpy(float) - y])
            ax.bar(x, y, width=width * 0.92, color=style.color(j), label=lab)
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=style.TREATED_COLOR, elinewidth=0.9)
        _zero_line(ax)
        ticklabels = []
        for name, res in named.items():
            t = getattr(res, "terms", pd.DataFrame())
            hit = t.loc[t["term"] == "displacement_share", "estimate"] if "term" in t else None
            ticklabels.append(
                f"{name}\n(displ. {float(hit.iloc[0]):.2f})"
                if hit is not None and len(hit)
                else name
            )
        literal(ax.set_xticks(np.arange(len(groups)), ticklabels))
        literal(ax.set_xlabel(xlabel))
        if ylabel is None:
            ylabel = "Total effect (sum over unit-periods)" if totals else "Effect (outcome units)"
        literal(ax.set_ylabel(ylabel))
        legend_above(ax)
    return fig


def spillover_by_ring_plot(
    results: Any,
    *,
    ax: Axes | None = None,
    alpha: float | None = None,
    offset: float = 0.12,
    xlabel: str = "Distance ring around the zone",
    ylabel: str | None = None,
) -> Figure:
    """Spillover effect by distance ring (terms ``spillover:RING``), with intervals.

    Rings are ordered by their inner distance (``0-50km`` before ``50-100km``); several
    results are overlaid with a small horizontal offset.
    """
    named = _named(results)
    per: dict[str, pd.DataFrame] = {}
    rings: set[str] = set()
    for name, res in named.items():
        t = _terms_with_ci(res, alpha)
        t = t.loc[t["term"].str.match(_RING_RE)].copy()
        t["ring"] = t["term"].str.split(":", n=1).str[1]
        per[name] = t
        rings |= set(t["ring"])
    if not rings:
        raise PlotError(
            "No `spillover:RING` terms in the result(s); fit spillovers by distance ring."
        )
    order = sorted(rings, key=_ring_key)
    bands = [_ring_band(r) for r in order]
    numeric = all(b is not None for b in bands)
    # Distance bands are placed at their midpoints on a km axis (the effect-by-distance
    # curve of Butts 2021, Fig. 2); other ring labels are categories.
    pos = {
        r: (0.5 * (b[0] + b[1]) if numeric and b is not None else float(i))
        for i, (r, b) in enumerate(zip(order, bands, strict=True))
    }
    n = len(named)
    width = min(b[1] - b[0] for b in bands if b is not None) if numeric and len(order) > 1 else 1.0
    with paper_style():
        fig, ax = _start(ax)
        for i, (name, t) in enumerate(per.items()):
            t = t.assign(x=t["ring"].map(pos)).sort_values("x")
            x = t["x"].to_numpy(float) + (i - (n - 1) / 2) * offset * width
            col = style.color(i)
            y = t["estimate"].to_numpy(float)
            lo, hi = t["lo"].to_numpy(float), t["hi"].to_numpy(float)
            if len(x) > 1:
                ax.fill_between(x, lo, hi, color=col, alpha=0.15, lw=0, zorder=1)
                ax.plot(x, y, color=col, lw=0.9, zorder=2)
            ax.vlines(x, lo, hi, color=col, lw=1.0, zorder=2)
            ax.plot(x, y, ls="none", marker=style.marker(i), color=col, label=name, zorder=3)
        _zero_line(ax)
        if numeric:
            edges = sorted({e for b in bands if b is not None for e in b})
            ax.set_xlim(edges[0], edges[-1])
            literal(ax.set_xticks(edges, [f"{e:g}" for e in edges]))
            if xlabel == "Distance ring around the zone":
                xlabel = "Distance from the nearest zone (km)"
        else:
            literal(ax.set_xticks(np.arange(len(order)), order))
            ax.set_xlim(-0.5, len(order) - 0.5)
        literal(ax.set_xlabel(xlabel))
        first = next(iter(named.values()))
        literal(ax.set_ylabel(ylabel or f"Spillover on {_outcome_label(first)}"))
        handles, labs = ax.get_legend_handles_labels()
        if n == 1:
            handles, labs = [], []
        handles.append(Line2D([], [], color=style.TREATED_COLOR, lw=1.0))
        labs.append(f"{_level_label(named.values(), alpha)} pointwise CI")
        legend_above(ax, handles=handles, labels=labs)
    return fig


def _ring_band(ring: str) -> tuple[float, float] | None:
    """(inner, outer) km of a distance-band label such as ``0-50km``; None otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*(?:km)?\s*", ring)
    return (float(m.group(1)), float(m.group(2))) if m else None


def exposure_sensitivity_plot(
    table: pd.DataFrame,
    *,
    term: str = "displacement_share",
    ax: Axes | None = None,
    truth: float | None = None,
    xlabel: str | None = None,
) -> Figure:
    """One estimate per exposure definition, with its interval (the table of
    :func:`zoneimpact.sensitivity.exposure_sensitivity`): how much the answer depends on
    who counts as exposed. Definitions that could not run are listed without a point; an
    unbounded interval (Fieller's for the displacement share when the direct total is not
    significant) is drawn as an arrow to the axis edge and labelled "unbounded".
    """
    need = {"definition", term, f"{term}_low", f"{term}_high"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise PlotError(
            f"exposure_sensitivity_plot needs a table with columns {sorted(need)} (from "
            "zoneimpact.sensitivity.exposure_sensitivity)."
        )
    t = table.reset_index(drop=True)
    y = np.arange(len(t))[::-1]
    with paper_style():
        fig, ax = _start(ax, height=0.9 + 0.28 * max(len(t), 2))
        ok = t[term].notna().to_numpy()
        est = t[term].to_numpy(float)
        lo, hi = t[f"{term}_low"].to_numpy(float), t[f"{term}_high"].to_numpy(float)
        open_lo, open_hi = ok & np.isinf(lo), ok & np.isinf(hi)
        # the finite part of every interval; an infinite end becomes an arrow below
        ax.hlines(
            y[ok], np.where(open_lo, est, lo)[ok], np.where(open_hi, est, hi)[ok],
            color=style.color(0), lw=1.0,
        )  # fmt: skip
        ax.plot(est[ok], y[ok], ls="none", marker="o", color=style.color(0))
        x0, x1 = ax.get_xlim()
        # zero and the truth line must be inside the limits fixed below, or axvline is
        # drawn off the axes
        marks = [0.0] + ([float(truth)] if truth is not None and np.isfinite(truth) else [])
        pad = 0.05 * (max(x1, *marks) - min(x0, *marks))
        if min(marks) <= x0:
            x0 = min(marks) - pad
        if max(marks) >= x1:
            x1 = max(marks) + pad
        for k in np.flatnonzero(open_lo | open_hi):
            for edge in [x0] * int(open_lo[k]) + [x1] * int(open_hi[k]):
                ax.annotate(
                    "", xy=(edge, y[k]), xytext=(est[k], y[k]),
                    arrowprops={"arrowstyle": "->", "color": style.color(0), "lw": 1.0},
                )  # fmt: skip
        ax.set_xlim(x0, x1)
        if truth is not None:
            ax.axvline(truth, color=style.OKABE_ITO["vermillion"], ls="--", lw=0.8, label="truth")
            legend_above(ax)
        _zero_line(ax, horizontal=False)
        labels = [
            (f"{d} (unbounded)" if unb else str(d)) if has else f"{d} (not run)"
            for d, has, unb in zip(t["definition"], ok, open_lo | open_hi, strict=True)
        ]
        literal(ax.set_yticks(y, labels))
        literal(ax.set_xlabel(xlabel or term.replace("_", " ")))
    return fig


# ----------------------------------------------------------------------------- map
def unit_map_plot(
    geography: Any,
    cohorts: pd.Series | None = None,
    *,
    ax: Axes | None = None,
    lon: str = "lon",
    lat: str = "lat",
    never_label: str = "Never treated",
    max_discrete: int = 7,
    sources: pd.DataFrame | None = None,
) -> Figure:
    """Units at their longitude/latitude, coloured by treatment cohort.

    Parameters
    ----------
    geography : DataFrame indexed by unit (columns ``lon``, ``lat``) or a Panel
        A :class:`~zoneimpact.panel.Panel` supplies both its geography and its cohorts.
    cohorts : Series by unit, optional
        Year of treatment; ``inf``/NaN = never treated (grey). Up to ``max_discrete``
        cohorts get Okabe–Ito colours, more a ``viridis`` scale with a colour bar.
    ax : matplotlib Axes, optional
        Axes to draw on.
    lon, lat : str
        Coordinate columns of ``geography`` (degrees).
    never_label : str
        Legend label of never-treated units.
    max_discrete : int
        Most cohorts drawn with discrete colours.
    sources : DataFrame indexed by unit, optional
        Exposure sources outside the estimation sample (``Panel.sources``, taken from a
        Panel). Units of ``geography`` absent from ``cohorts`` are not never-treated
        units: those among ``sources`` are drawn as zones outside the panel (e.g. opened
        before the data start), any others as "Not in the panel".

    Notes
    -----
    The aspect ratio is 1/cos(mean latitude), so distances look right locally
    (equirectangular projection).
    """
    if hasattr(geography, "unit_cohort") and hasattr(geography, "geography"):
        if cohorts is None:
            cohorts = geography.unit_cohort
        if sources is None:
            sources = getattr(geography, "sources", None)
        geography = geography.geography
    if not isinstance(geography, pd.DataFrame) or not {lon, lat} <= set(geography.columns):
        raise PlotError(
            f"`geography` must be a DataFrame indexed by unit with columns {lon!r} and {lat!r}."
        )
    if cohorts is None:
        raise PlotError("Pass `cohorts` (a Series of treatment years by unit).")
    cohorts = pd.Series(cohorts)
    coh = cohorts.reindex(geography.index).astype(float)
    xy = geography[[lon, lat]].astype(float)
    # a unit with no cohort at all is outside the panel (an always-treated zone kept as an
    # exposure source), not a never-treated control (breaker D, session 21: 63 Chinese
    # cities opened before the data were drawn as never treated)
    outside = ~geography.index.isin(cohorts.index)
    is_source = (
        geography.index.isin(sources.index)
        if isinstance(sources, pd.DataFrame)
        else np.zeros(len(geography), bool)
    )
    never = ~np.isfinite(coh.to_numpy()) & ~outside
    finite = sorted(coh[~never & ~outside].unique())
    with paper_style():
        fig, ax = _start(ax)
        for m, label, marker in (
            (outside & is_source, "Zone outside the panel (exposure source)", "x"),
            (outside & ~is_source, "Not in the panel", "+"),
        ):
            if m.any():
                ax.scatter(
                    xy.loc[m, lon],
                    xy.loc[m, lat],
                    s=10,
                    color=style.REFERENCE_COLOR,
                    marker=marker,
                    lw=0.6,
                    label=label,
                    zorder=1,
                )
        if never.any():
            ax.scatter(
                xy.loc[never, lon],
                xy.loc[never, lat],
                s=6,
                color=style.PLACEBO_COLOR,
                lw=0,
                label=never_label,
                zorder=1,
            )
        if len(finite) <= max_discrete:
            for i, g in enumerate(finite):
                m = (coh == g).to_numpy()
                ax.scatter(
                    xy.loc[m, lon],
                    xy.loc[m, lat],
                    s=10,
                    color=style.color(i),
                    marker=style.marker(i),
                    lw=0,
                    label=_num(g),
                    zorder=2,
                )
            legend_above(ax, title="Cohort")
        else:
            m = ~never & ~outside
            sc = ax.scatter(
                xy.loc[m, lon],
                xy.loc[m, lat],
                c=coh[m].to_numpy(),
                s=10,
                cmap=style.SEQUENTIAL_CMAP,
                lw=0,
                zorder=2,
            )
            cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02)
            cb.set_label("Cohort (year treated)")
            cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if never.any() or outside.any():
                legend_above(ax)
        mid = float(np.nanmean(xy[lat]))
        ax.set_aspect(1.0 / max(math.cos(math.radians(mid)), 0.1), adjustable="datalim")
        literal(ax.set_xlabel("Longitude (°E)"))
        literal(ax.set_ylabel("Latitude (°N)"))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    return fig


# ----------------------------------------------------------------------------- defaults
def _has_event_terms(res: Any) -> bool:
    t = getattr(res, "terms", None)
    return isinstance(t, pd.DataFrame) and t["term"].astype(str).str.startswith("event:").any()


def _has_terms(res: Any, names: Sequence[str]) -> bool:
    t = getattr(res, "terms", None)
    return isinstance(t, pd.DataFrame) and bool(set(names) & set(t["term"].astype(str)))


def default_figures(result: Any, *, outcome_label: str | None = None) -> dict[str, Figure]:
    """The standard figures for a result, by what it carries: ``{file stem: Figure}``.

    Event-study terms give ``event_study``; ``att_gt`` gives ``group_time`` (calendar time)
    and ``cohort_event_study`` (each cohort's event study, by event time); synthetic
    control paths give ``sc_paths`` and ``sc_gap`` (+ ``placebo_gaps``, ``rmspe_ratio``,
    ``donor_weights``); SDID weights give ``sdid_weights``; Bacon comparisons give
    ``bacon``; spillover terms give ``decomposition`` and, with two or more distance
    rings, ``spillover_by_ring`` (one ring is already a bar of the decomposition). Parts a
    result lacks are skipped. ``outcome_label`` (e.g. "FDI inflow (million USD)") labels
    the effect axes.
    """
    ylab = f"Effect on {outcome_label}" if outcome_label else None
    plan: list[tuple[str, Callable[[], Figure], bool]] = [
        ("event_study", lambda: event_study_plot(result, ylabel=ylab), _has_event_terms(result)),
        (
            "group_time",
            lambda: group_time_plot(
                result, ylabel=f"ATT(g, t) on {outcome_label}" if outcome_label else None
            ),
            isinstance(getattr(result, "att_gt", None), pd.DataFrame) and not result.att_gt.empty,
        ),
        (
            "cohort_event_study",
            lambda: group_time_plot(
                result,
                event_time=True,
                ylabel=f"ATT(g, g + e) on {outcome_label}" if outcome_label else None,
            ),
            isinstance(getattr(result, "att_gt", None), pd.DataFrame) and not result.att_gt.empty,
        ),
        (
            "sc_paths",
            lambda: sc_paths_plot(result),
            getattr(result, "treated_path", None) is not None
            and getattr(result, "synthetic_path", None) is not None,
        ),
        (
            "sc_gap",
            lambda: sc_gap_plot(result),
            getattr(result, "gaps", None) is not None
            or getattr(result, "treated_path", None) is not None
            and getattr(result, "synthetic_path", None) is not None,
        ),
        (
            "placebo_gaps",
            lambda: placebo_gaps_plot(result),
            isinstance(getattr(result, "placebo_gaps", None), pd.DataFrame)
            and not result.placebo_gaps.empty,
        ),
        (
            "rmspe_ratio",
            lambda: rmspe_ratio_hist(result),
            isinstance(getattr(result, "rmspe", None), pd.DataFrame) and not result.rmspe.empty,
        ),
        (
            "donor_weights",
            lambda: donor_weights_plot(result),
            getattr(result, "donor_weights", None) is not None
            and getattr(result, "unit_weights", None) is None,
        ),
        (
            "sdid_weights",
            lambda: sdid_weights_plot(result),
            getattr(result, "unit_weights", None) is not None
            and getattr(result, "time_weights", None) is not None,
        ),
        (
            "bacon",
            lambda: bacon_plot(result),
            isinstance(getattr(result, "comparisons", None), pd.DataFrame)
            and not result.comparisons.empty,
        ),
        (
            "decomposition",
            lambda: decomposition_plot(
                {outcome_label or str(getattr(result, "outcome", "")) or "effect": result}
            ),
            _has_terms(result, ["direct", "net"]),
        ),
        (
            "spillover_by_ring",
            lambda: spillover_by_ring_plot(
                result, ylabel=f"Spillover on {outcome_label}" if outcome_label else None
            ),
            isinstance(getattr(result, "terms", None), pd.DataFrame)
            and result.terms["term"].astype(str).str.match(_RING_RE).sum() >= 2,
        ),
    ]
    out: dict[str, Figure] = {}
    for name, make, wanted in plan:
        if not wanted:
            continue
        try:
            out[name] = make()
        except PlotError:
            # A part present but unusable (e.g. empty after filtering) is skipped, not fatal:
            # the run still writes the other figures.
            continue
    return out


# ----------------------------------------------------------------------------- power
_POWER_TITLES = {
    "direct": "Direct effect",
    "spillover": "Spillover",
    "displacement": "Displacement share",
}


def power_curve_plot(result: Any, *, ax: Any = None, outcome_label: str | None = None) -> Figure:
    """Simulated power against the true effect, one panel per target, in the house style.

    Each panel shows the Monte Carlo power with its 95% Monte Carlo band (±1.96 MC
    standard errors), the target power and the test level as reference lines, and the
    minimum detectable effect (the smallest grid effect whose power reaches the target;
    Bloom 1995) as a labelled vertical line. The figure is at most a page wide.

    Parameters
    ----------
    result : zoneimpact.power.PowerResult
        Needs ``curves`` (target, effect, power, mc_se), ``mde`` and ``info`` (alpha,
        power).
    ax : Axes or sequence of Axes, optional
        One per target.
    outcome_label : str, optional
        Label of the outcome for the x axes (default: the design's outcome).
    """
    curves = _attr(result, "curves", "power_curve_plot")
    need = {"target", "effect", "power", "mc_se"}
    if not isinstance(curves, pd.DataFrame) or not need <= set(curves.columns):
        raise PlotError(f"`curves` must be a DataFrame with columns {sorted(need)}.")
    if curves.empty:
        raise PlotError("`curves` is empty: no power curve to plot.")
    info = getattr(result, "info", None) or {}
    target_power = float(info.get("power", 0.8))
    level = float(info.get("alpha", 0.05))
    mde = getattr(result, "mde", None) or {}
    outcome = outcome_label or str(getattr(getattr(result, "design", None), "outcome", "outcome"))
    targets = list(dict.fromkeys(curves["target"]))
    n = len(targets)
    width = min(style.PAGE_WIDTH, style.COLUMN_WIDTH * max(1, n) * 0.75 + 0.6)
    with paper_style():
        fig, axes = _start_multi(ax, n, ncols=n, width=width, height=2.2, sharey=True)
        for k, target in enumerate(targets):
            a = axes[k]
            cur = curves.loc[curves["target"] == target].sort_values("effect")
            x = cur["effect"].to_numpy(float)
            p = cur["power"].to_numpy(float)
            se = cur["mc_se"].to_numpy(float)
            col = style.color(0)
            a.fill_between(
                x,
                np.clip(p - 1.96 * se, 0, 1),
                np.clip(p + 1.96 * se, 0, 1),
                color=col,
                alpha=0.2,
                lw=0,
                label="95% Monte Carlo band",
            )
            a.plot(x, p, color=col, marker="o", label="Simulated power")
            a.axhline(
                target_power,
                color=style.REFERENCE_COLOR,
                ls="--",
                lw=0.8,
                label=f"Target power {100 * target_power:g}%",
            )
            a.axhline(
                level,
                color=style.REFERENCE_COLOR,
                ls=":",
                lw=0.8,
                label=f"Test level {100 * level:g}%",
            )
            m = float(mde.get(target, float("nan")))
            if math.isfinite(m):
                a.axvline(m, color=style.OKABE_ITO["vermillion"], lw=0.9, label="MDE")
                literal(
                    a.annotate(
                        f"MDE {m:.3g}",
                        (m, 0.04),
                        xytext=(3, 0),
                        textcoords="offset points",
                        color=style.OKABE_ITO["vermillion"],
                        fontsize=7,
                    )
                )
            a.set_ylim(0, 1.02)
            title = _POWER_TITLES.get(str(target), str(target).replace("_", " ").capitalize())
            literal(a.set_title(title, loc="left"))
            xlab = (
                "True displacement share"
                if target == "displacement"
                else (f"True effect on {outcome}")
            )
            literal(a.set_xlabel(xlab))
        literal(axes[0].set_ylabel("Power"))
        for a in axes[n:]:
            a.set_visible(False)
        handles, labs = axes[0].get_legend_handles_labels()
        legend_top_of_figure(fig, handles, labs)
    return fig


# ----------------------------------------------------------------------------- counterfactual estimators
def _interval_frame(intervals: Any) -> pd.DataFrame | None:
    """``term, low, high`` (+ ``cf_low``, ``cf_high``) of effect intervals from an
    :class:`~zoneimpact.inference.scpi.ScpiResult`, a
    :class:`~zoneimpact.inference.conformal.ConformalResult` or a frame."""
    if intervals is None:
        return None
    table = getattr(intervals, "table", intervals)
    if not isinstance(table, pd.DataFrame) or "term" not in table.columns:
        raise PlotError(
            "intervals must be an SCPI or conformal result or a frame with term, low, high; "
            f"received {type(intervals).__name__}."
        )
    t = table.rename(
        columns={"effect_low": "low", "effect_high": "high", "ci_low": "low", "ci_high": "high"}
    )
    if not {"low", "high"} <= set(t.columns):
        raise PlotError("intervals has no low/high (effect_low/effect_high, ci_low/ci_high).")
    return t


def _interval_name(intervals: Any, frame: pd.DataFrame) -> str:
    kind = type(intervals).__name__
    method = str(frame["method"].iloc[0]) if "method" in frame.columns and len(frame) else ""
    if kind == "ScpiResult" or method == "scpi":
        return "SCPI prediction interval"
    if kind == "ConformalResult" or method == "conformal":
        return "conformal interval"
    return "interval"


def _sdid_paths(result: Any, panel: Any) -> pd.DataFrame:
    """Treated mean and its synthetic counterfactual by period for a one-cohort SDID:
    ``omega'Y_0t`` shifted by the time-weighted pre-period difference, so the post-period
    mean gap is the SDID estimate (Arkhangelsky et al. 2021, Fig. 1)."""
    omega, lam = result.unit_weights, result.time_weights
    if not isinstance(omega, pd.Series) or not isinstance(lam, pd.Series):
        raise PlotError("The gap plot of SDID needs one adoption cohort (several given).")
    if panel is None:
        raise PlotError("The gap plot of SDID needs the panel it was fitted on (panel=).")
    g = _treatment_period(result)
    coh = panel.unit_cohort
    treated = coh.index[coh.to_numpy() == g].tolist()
    periods = list(panel.periods)
    if result.outcome not in panel.data.columns:
        raise PlotError(
            f"The panel does not match the SDID result: it has no outcome {result.outcome!r}."
        )
    wide = _sdid_outcome(result, panel).pivot(index="unit", columns="time", values="y")
    Y1 = _complete_rows(wide, treated, periods).mean(axis=0)
    Y0 = _complete_rows(wide, list(omega.index), periods)
    synth = omega.to_numpy(float) @ Y0
    pre = np.asarray(periods) < g
    shift = float(lam.to_numpy(float) @ (Y1 - synth)[pre])
    cf = synth + shift
    return pd.DataFrame({"treated": Y1, "counterfactual": cf, "gap": Y1 - cf}, index=periods)


def _sdid_covariate_coefs(result: Any) -> pd.Series | None:
    """The covariate coefficients an SDID result removed from its outcome, or None.

    A result whose ``info`` names covariates but which does not carry the coefficients
    cannot be drawn: the raw outcome is not the one its weights were fitted on.
    """
    coefs = getattr(result, "covariate_coefs", None)
    named = (getattr(result, "info", None) or {}).get("covariates")
    if coefs is None or len(coefs) == 0:
        if named:
            raise PlotError(
                f"The SDID result was fitted on the outcome net of covariates {named!r} but "
                "does not carry their coefficients (covariate_coefs); its gap cannot be drawn "
                "on the raw outcome."
            )
        return None
    return pd.Series(coefs, dtype=float)


def _sdid_outcome(result: Any, panel: Any) -> pd.DataFrame:
    """unit, time and the outcome SDID weighted: ``Y`` itself, or with covariates
    ``Y - (X - xbar)'beta`` using the result's stored ``beta`` (Arkhangelsky et al. 2021,
    Section 8), ``xbar`` the covariates' mean over the untreated observed cells as in
    :func:`zoneimpact.estimators._sdid_covariates.residualise_on_covariates` (a constant,
    so it moves both paths alike and leaves the gap unchanged)."""
    d = panel.data
    y = d[result.outcome].to_numpy(float)
    coefs = _sdid_covariate_coefs(result)
    if coefs is not None:
        missing = [c for c in coefs.index if c not in d.columns]
        if missing:
            raise PlotError(
                f"The panel does not match the SDID result: it has no covariate column(s) "
                f"{missing} (the result removed {list(coefs.index)} from {result.outcome!r})."
            )
        X = d[list(coefs.index)].to_numpy(float)
        obs = np.isfinite(y)
        untreated = obs & (d["time"].to_numpy(float) < d["cohort"].to_numpy(float))
        centre = X[untreated].mean(axis=0)
        y = np.where(obs, y - np.nan_to_num(X - centre) @ coefs.to_numpy(float), np.nan)
    return pd.DataFrame({"unit": d["unit"].to_numpy(), "time": d["time"].to_numpy(), "y": y})


def _complete_rows(wide: pd.DataFrame, units: list[Any], periods: list[Any]) -> np.ndarray:
    """The units x periods outcomes the SDID result was fitted on (a gap names the cell)."""
    sub = wide.reindex(index=units, columns=periods)
    if sub.isna().to_numpy().any():
        i, j = np.argwhere(sub.isna().to_numpy())[0]
        raise PlotError(
            f"The panel does not match the SDID result: unit {sub.index[i]!r} has no "
            f"outcome in period {sub.columns[j]!r}."
        )
    return sub.to_numpy(float)


def _counterfactual_event_paths(result: Any, panel: Any, alpha: float | None) -> pd.DataFrame:
    """IFE / matrix completion by event time: treated and imputed means after adoption
    (``effects``), the out-of-sample pre-treatment errors before it (``pretrend``), and
    the event terms' intervals."""
    eff = result.effects
    post = eff.groupby("event")[["y", "y0_hat"]].mean()
    frame = pd.DataFrame(
        {"treated": post["y"], "counterfactual": post["y0_hat"]}, index=post.index.astype(float)
    )
    pre = result.pretrend
    if isinstance(pre, pd.DataFrame) and not pre.empty:
        gaps = pd.Series(pre["estimate"].to_numpy(float), index=pre["event"].astype(float))
        treated = pd.Series(np.nan, index=gaps.index)
        if panel is not None:
            d = panel.data
            ev = d["time"] - d["cohort"]
            # the treated units the result used (its effects), not every treated unit: a
            # cohort dropped for too few pre-periods is not in its pre-period errors either
            used = d["unit"].isin(pd.unique(eff["unit"])) if "unit" in eff.columns else True
            keep = np.isfinite(d["cohort"]) & (ev < 0) & used
            means = d.loc[keep, result.outcome].groupby(ev[keep].astype(float)).mean()
            treated = means.reindex(gaps.index)
        frame = pd.concat(
            [pd.DataFrame({"treated": treated, "counterfactual": treated - gaps}), frame]
        )
        frame["gap"] = np.concatenate([gaps.to_numpy(), (post["y"] - post["y0_hat"]).to_numpy()])
    else:
        frame["gap"] = frame["treated"] - frame["counterfactual"]
    t = _terms_with_ci(result, alpha)
    e = t["term"].map(_event_time)
    t = t.assign(e=e).dropna(subset=["e"]).set_index("e")
    frame["low"] = t["lo"].reindex(frame.index)
    frame["high"] = t["hi"].reindex(frame.index)
    return frame.sort_index()


def counterfactual_gap_plot(
    result: Any,
    *,
    panel: Any = None,
    intervals: Any = None,
    alpha: float | None = None,
    ax: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """Treated outcome against its counterfactual (top) and the gap (bottom), fect style.

    For synthetic control (the treated path and its synthetic control, ADH 2010 Figs.
    2-3), synthetic DiD with one cohort (the treated mean and the unit-weighted controls
    shifted by the time-weighted pre-period difference; needs ``panel``), and the
    counterfactual estimators IFE and matrix completion (means over treated cells by
    event time, Liu, Wang & Xu 2024 Fig. 2: imputed ``Y(0)`` after adoption, the
    out-of-sample prediction errors before it; the treated means before adoption need
    ``panel``). A dotted line marks the first treated period.

    Parameters
    ----------
    result : result
        A ``synthetic_control``, ``synthetic_did``, ``ife`` or ``matrix_completion``
        result.
    panel : Panel, optional
        The panel the result was fitted on (see above).
    intervals : ScpiResult, ConformalResult or DataFrame, optional
        Intervals of the effect by ``calendar:T`` term, shaded around the gap (SCPI's
        counterfactual interval also around the counterfactual). Default: a synthetic
        control's own ``prediction_intervals``; the event terms' pointwise confidence
        intervals for IFE / matrix completion.
    alpha : float, optional
        Level of the IFE / matrix completion intervals (default the result's).
    ax : sequence of two Axes, optional
        Where to draw the paths and the gap.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_alpha(alpha)
    est = str(getattr(result, "estimator", ""))
    band_name = ""
    level = _level_label([result], alpha)
    y_name = _outcome_label(result)
    if est in ("ife", "matrix_completion"):
        frame = _counterfactual_event_paths(result, panel, alpha)
        treat_x: float | None = 0.0
        band_name = "pointwise CI"
        x_default = "Periods relative to treatment"
    elif est == "synthetic_did":
        frame = _sdid_paths(result, panel)
        coefs = _sdid_covariate_coefs(result)
        if coefs is not None:
            # the paths are the outcome SDID weighted, not the raw one
            y_name = f"{y_name} net of {', '.join(map(str, coefs.index))}"
        treat_x = _treatment_period(result)
        x_default = "Period"
    elif getattr(result, "treated_path", None) is not None:
        treated = _series(result, "treated_path", "counterfactual_gap_plot")
        synth = _series(result, "synthetic_path", "counterfactual_gap_plot")
        frame = pd.DataFrame({"treated": treated, "counterfactual": synth, "gap": treated - synth})
        treat_x = _treatment_period(result)
        x_default = "Period"
    else:
        raise PlotError(
            f"counterfactual_gap_plot draws synthetic control, synthetic DiD, IFE and matrix "
            f"completion results; received {type(result).__name__} ({est or '?'})."
        )
    if est not in ("ife", "matrix_completion"):
        given = (
            intervals if intervals is not None else getattr(result, "prediction_intervals", None)
        )
        iv = _interval_frame(given)
        if iv is not None:
            band_name = _interval_name(given, iv)
            cal = iv[iv["term"].astype(str).str.startswith("calendar:")].copy()
            cal.index = cal["term"].str.split(":", n=1).str[1].astype(float)
            frame.index = frame.index.astype(float)
            frame["low"] = cal["low"].reindex(frame.index).to_numpy(float)
            frame["high"] = cal["high"].reindex(frame.index).to_numpy(float)
            if {"cf_low", "cf_high"} <= set(cal.columns):
                frame["cf_low"] = cal["cf_low"].reindex(frame.index).to_numpy(float)
                frame["cf_high"] = cal["cf_high"].reindex(frame.index).to_numpy(float)
            a_iv = float(getattr(given, "alpha", None) or _intervals_alpha(result))
            # SCPI bounds in- and out-of-sample error at 1 - alpha each: the interval covers
            # with probability at least 1 - 2 alpha (Cattaneo, Feng & Titiunik 2021)
            scpi = band_name.startswith("SCPI")
            level = f">={100 * (1 - 2 * a_iv):g}%" if scpi else f"{100 * (1 - a_iv):g}%"
            if scpi and "estimate" in cal.columns:
                # SCPI refits the weights itself: its band is centred on its own effect,
                # which need not be the plotted gap (the result's own fit)
                centre = cal["estimate"].reindex(frame.index).to_numpy(float)
                gap = frame["gap"].to_numpy(float)
                both = np.isfinite(centre) & np.isfinite(gap)
                worst = float(np.max(np.abs(centre - gap)[both])) if both.any() else 0.0
                # 1e-6 of the gap's scale: rounding only; any real refit differs by more
                if worst > 1e-6 * (1.0 + float(np.max(np.abs(gap[both]), initial=0.0))):
                    band_name = "SCPI prediction interval (centred on SCPI's own fit)"
                    warnings.warn(
                        f"The SCPI interval is centred on SCPI's own synthetic-control fit, "
                        f"not on the plotted gap of the result: the centres differ by up to "
                        f"{worst:.4g} (period by period). The band is labelled as SCPI's own.",
                        stacklevel=2,
                    )
    x = frame.index.to_numpy(float)
    with paper_style():
        if ax is None:
            fig, axes = new_figure(nrows=2, sharex=True, squeeze=False)
            top, bottom = np.asarray(axes).ravel()
        else:
            fig, axs = _start_multi(ax, 2)
            top, bottom = axs[0], axs[1]
        unit = _treated_unit(result)
        top.plot(
            x,
            frame["treated"].to_numpy(float),
            color=style.TREATED_COLOR,
            label=f"Treated ({unit})"
            if unit is not None and est == "synthetic_control"
            else "Treated",
        )
        top.plot(
            x,
            frame["counterfactual"].to_numpy(float),
            color=style.SYNTHETIC_COLOR,
            ls="--",
            label="Counterfactual",
        )
        if "cf_low" in frame.columns:
            ok = np.isfinite(frame["cf_low"].to_numpy(float))
            top.fill_between(
                x[ok],
                frame["cf_low"].to_numpy(float)[ok],
                frame["cf_high"].to_numpy(float)[ok],
                color=style.SYNTHETIC_COLOR,
                alpha=0.2,
                lw=0,
                label=f"{level} SCPI interval of Y(0)"
                + (" (SCPI's own fit)" if "own fit" in band_name else ""),
            )
        bottom.plot(x, frame["gap"].to_numpy(float), color=style.TREATED_COLOR, label="Gap")
        if "low" in frame.columns:
            lo, hi = frame["low"].to_numpy(float), frame["high"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                bottom.fill_between(
                    x[ok],
                    lo[ok],
                    hi[ok],
                    color=style.PRE_COLOR,
                    alpha=0.25,
                    lw=0,
                    label=f"{level} {band_name}",
                )
        _zero_line(bottom)
        for a in (top, bottom):
            if treat_x is not None:
                a.axvline(treat_x, color=style.REFERENCE_COLOR, lw=0.8, ls=":", zorder=0)
            _integer_x(a)
        literal(top.set_ylabel(ylabel or y_name))
        literal(bottom.set_ylabel(f"Gap in {y_name}"))
        literal(bottom.set_xlabel(xlabel or x_default))
        handles, labs = [], []
        for a in (top, bottom):
            h, lab = a.get_legend_handles_labels()
            handles += h
            labs += lab
        if treat_x is not None:
            handles.append(Line2D([], [], color=style.REFERENCE_COLOR, lw=0.8, ls=":"))
            labs.append(f"First treated period ({_num(treat_x)})")
        legend_top_of_figure(fig, handles, labs)
    return fig


def equivalence_event_plot(
    result: Any,
    *,
    margin: float | None = None,
    alpha: float | None = None,
    ax: Axes | None = None,
    xlabel: str = "Periods relative to treatment",
    ylabel: str | None = None,
) -> Figure:
    """Effects by event time with the pre-treatment equivalence band (fect's ``"equiv"``
    plot; Liu, Wang & Xu 2024, Fig. 4).

    Pre-treatment points (for IFE / matrix completion: out-of-sample prediction errors)
    and post-treatment effects with pointwise intervals; the band ``[-margin, margin]``
    is shaded over the pre-treatment periods and the pre-trend F test and equivalence
    (TOST) p-values from ``info`` (``pretrend_p``, ``pretrend_tost_p``) are printed.

    Parameters
    ----------
    result : result
        With ``event:E`` terms; ``info["equivalence_margin"]`` (IFE, matrix completion)
        unless ``margin`` is given.
    margin : float, optional
        Equivalence bound (outcome units).
    alpha : float, optional
        Level of the intervals (default the result's).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_alpha(alpha)
    info = getattr(result, "info", None) or {}
    if margin is None:
        margin = info.get("equivalence_margin")
    if (
        isinstance(margin, bool)
        or not isinstance(margin, int | float | np.number)
        or not np.isfinite(margin)
        or margin <= 0
    ):
        raise PlotError(
            "equivalence_event_plot needs a positive equivalence margin: pass margin= or use "
            f"a result with info['equivalence_margin']; received {margin!r}."
        )
    t = _terms_with_ci(result, alpha)
    t = t.assign(e=t["term"].map(_event_time)).dropna(subset=["e"]).sort_values("e")
    if t.empty:
        raise PlotError("No `event:E` terms in the result; equivalence_event_plot needs them.")
    level = _level_label([result], alpha)
    pre = t["e"].to_numpy(float) < 0
    with paper_style():
        fig, ax = _start(ax)
        if pre.any():
            x0 = float(t["e"][pre].min()) - 0.5
            ax.fill_between(
                [x0, -0.5],
                -float(margin),
                float(margin),
                color=style.OKABE_ITO["sky_blue"],
                alpha=0.3,
                lw=0,
                label=f"Equivalence bounds (±{float(margin):.3g})",
            )
        for mask, col, lab, mk in (
            (pre, style.PRE_COLOR, "Pre-treatment", "o"),
            (~pre, style.POST_COLOR, "Post-treatment", "s"),
        ):
            if not mask.any():
                continue
            x = t["e"].to_numpy(float)[mask]
            lo, hi = t["lo"].to_numpy(float)[mask], t["hi"].to_numpy(float)[mask]
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.vlines(x[ok], lo[ok], hi[ok], color=col, lw=1.0, zorder=2)
            ax.plot(
                x, t["estimate"].to_numpy(float)[mask], ls="none", marker=mk, color=col,
                label=lab, zorder=3,
            )  # fmt: skip
        _zero_line(ax)
        ax.axvline(-0.5, color=style.REFERENCE_COLOR, lw=0.7, ls=":", zorder=0)
        _integer_x(ax)

        def fmt(key: str) -> str:
            v = info.get(key)
            if isinstance(v, int | float | np.number) and np.isfinite(v):
                return f"{float(v):.3f}"
            return "n/a"

        literal(
            ax.text(
                0.02,
                0.97,
                f"Pre-trend F test p = {fmt('pretrend_p')}\nEquivalence test p = "
                f"{fmt('pretrend_tost_p')}",
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=7,
            )
        )
        literal(ax.set_xlabel(xlabel))
        literal(ax.set_ylabel(ylabel or f"Effect on {_outcome_label(result)}"))
        handles, labs = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color=style.TREATED_COLOR, lw=1.0))
        labs.append(f"{level} pointwise CI")
        legend_above(ax, handles=handles, labels=labs)
    return fig


def counterfactual_figures(result: Any, *, panel: Any = None) -> dict[str, Figure]:
    """The gap plot (``counterfactual_gap``) of synthetic control, synthetic DiD, IFE and
    matrix completion results, and the equivalence event plot (``equivalence_event``)
    of IFE and matrix completion: ``{file stem: Figure}``. ``panel`` is the panel the
    result was fitted on (SDID needs it; IFE / matrix completion use it for the treated
    means before adoption). Parts a result cannot draw are skipped."""
    est = str(getattr(result, "estimator", ""))
    plan: list[tuple[str, Callable[[], Figure]]] = []
    if est in ("synthetic_control", "synthetic_did", "ife", "matrix_completion"):
        plan.append(("counterfactual_gap", lambda: counterfactual_gap_plot(result, panel=panel)))
    if est in ("ife", "matrix_completion"):
        plan.append(("equivalence_event", lambda: equivalence_event_plot(result)))
    out: dict[str, Figure] = {}
    for name, make in plan:
        try:
            out[name] = make()
        except PlotError:
            continue
    return out
