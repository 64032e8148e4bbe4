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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from scipy import stats as sps

from ..errors import SpecError, ZoneImpactError
from ..results import check_alpha
from . import style
from .style import (
    legend_above,
    legend_top_of_figure,
    literal,
    new_figure,
    paper_style,
    root_figure,
)

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
            label=f"First treated period ({period:g})",
        )


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
    with paper_style():
        fig, ax = _start(ax)
        n = len(named)
        any_band = False
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
                    any_band = True
                    ax.vlines(x[ok], bl[ok], bh[ok], color=col, lw=4.0, alpha=0.25, zorder=1)
            lo, hi = t["lo"].to_numpy(float), t["hi"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.vlines(x[ok], lo[ok], hi[ok], color=col, lw=1.0, zorder=2)
            ax.plot(x, y, ls="none", marker=style.marker(i), color=col, label=name, zorder=3)
            # Regression event studies omit E = -1 (the reference): show it as a hollow 0.
            if -1.0 not in set(t["e"]) and (t["e"] < -1).any():
                ax.plot(
                    -1.0 + (i - (n - 1) / 2) * offset,
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
        literal(ax.set_xlabel(xlabel))
        first = next(iter(named.values()))
        literal(ax.set_ylabel(ylabel or f"Effect on {_outcome_label(first)}"))
        if title:
            literal(ax.set_title(title))
        handles, labs = ax.get_legend_handles_labels()
        if any_band:
            handles.append(Patch(facecolor=style.REFERENCE_COLOR, alpha=0.35, lw=0))
            labs.append("Uniform band")
        if n > 1 or any_band:
            legend_above(ax, handles=handles, labels=labs)
    return fig


# ----------------------------------------------------------------------------- group-time
def group_time_plot(
    result: Any,
    *,
    ax: Any = None,
    alpha: float | None = None,
    ncols: int | None = None,
    xlabel: str = "Period",
    ylabel: str | None = None,
) -> Figure:
    """Callaway & Sant'Anna (2021) group-time ATT(g, t): one panel per cohort g.

    Pre-treatment periods (t < g, placebo estimates) and post-treatment periods are drawn
    in two colours with confidence intervals, as R ``did::ggdid`` does for ``MP`` objects:
    the simultaneous band (``band_low``/``band_high`` of ``att_gt``, from the multiplier
    bootstrap, Callaway & Sant'Anna 2021 Sec. 4.1) when present, as R ``did`` does by
    default; else ``ci_low``/``ci_high``; else pointwise estimate ± z·se.
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
    a = float(getattr(result, "alpha", 0.05) if alpha is None else alpha)
    z = sps.norm.ppf(1 - a / 2)
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
        for k, g in enumerate(cohorts):
            axk = axes[k]
            d = att.loc[att["cohort"] == g].sort_values("time")
            t = d["time"].to_numpy(float)
            y = d["estimate"].to_numpy(float)
            if {"band_low", "band_high"} <= set(d.columns) and d["band_low"].notna().any():
                lo, hi = d["band_low"].to_numpy(float), d["band_high"].to_numpy(float)
            elif {"ci_low", "ci_high"} <= set(d.columns):
                lo, hi = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
            else:
                se = d["se"].to_numpy(float)
                lo, hi = y - z * se, y + z * se
            post = t >= float(g)
            for mask, col, mk, lab in (
                (~post, style.PRE_COLOR, "o", "Pre-treatment"),
                (post, style.POST_COLOR, "s", "Post-treatment"),
            ):
                if mask.any():
                    axk.vlines(t[mask], lo[mask], hi[mask], color=col, lw=1.0)
                    axk.plot(t[mask], y[mask], ls="none", marker=mk, color=col, label=lab)
            _zero_line(axk)
            axk.axvline(float(g) - 0.5, color=style.REFERENCE_COLOR, lw=0.7, ls=":", zorder=0)
            literal(
                axk.set_title(
                    f"Cohort {g:g}" if isinstance(g, float | int | np.number) else f"Cohort {g}",
                    loc="left",
                )
            )
            _integer_x(axk)
        for axk in axes[n:]:
            axk.set_visible(False)
        for axk in axes[:n]:
            if (spec := axk.get_subplotspec()) is None or spec.is_last_row() or ax is not None:
                literal(axk.set_xlabel(xlabel))
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
        labs = [lab for lab in ("Pre-treatment", "Post-treatment") if lab in entries]
        legend_top_of_figure(fig, [entries[lab] for lab in labs], labs)
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
        unit's (ADH 2010 show caps of 20, 5 and 2), using ``rmspe["pre_rmspe"]``.
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
            literal(
                ax.set_title(
                    f"{n_dropped} placebo(s) with pre-MSPE > {pre_mspe_cap:g}× treated omitted",
                    loc="left",
                )
            )
        legend_above(ax)
    return fig


def rmspe_ratio_hist(
    result: Any,
    *,
    ax: Axes | None = None,
    bins: int | Sequence[float] | None = None,
    xlabel: str = "Post/pre-treatment RMSPE ratio",
) -> Figure:
    """Distribution of post/pre-treatment RMSPE ratios over all units (ADH 2010, Fig. 8).

    The treated unit's ratio is marked; the legend gives the permutation p-value
    ``#{units with ratio >= treated's} / #units`` (ADH 2010, Sec. 4).
    """
    rm = _attr(result, "rmspe", "rmspe_ratio_hist")
    if not isinstance(rm, pd.DataFrame) or "ratio" not in rm.columns:
        raise PlotError("`rmspe` must be a DataFrame with a `ratio` column (index: unit).")
    ratio = rm["ratio"].astype(float)
    ratio = ratio[np.isfinite(ratio)]
    treated_unit = _treated_unit(result)
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
            label="All units",
        )
        if treated_unit is not None and treated_unit in ratio.index:
            r0 = float(ratio.loc[treated_unit])
            p = float(np.mean(ratio.to_numpy() >= r0))
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
    w = w[w.abs() > 1e-10].sort_values(ascending=False)
    shown = w.iloc[:top]
    y = np.arange(len(shown))[::-1]
    ax.barh(y, shown.to_numpy(), color=color, height=0.7)
    literal(ax.set_yticks(y, [str(u) for u in shown.index]))
    ax.tick_params(axis="y", labelsize=6 if len(shown) > 10 else 7)
    literal(ax.set_xlabel(xlabel))
    literal(ax.set_ylabel(ylabel))
    rest = len(w) - len(shown)
    title = f"{what}: {len(w)} nonzero" + (f", top {len(shown)} shown" if rest > 0 else "")
    literal(ax.set_title(title, loc="left"))


def donor_weights_plot(result: Any, *, ax: Axes | None = None, top: int = 15) -> Figure:
    """Synthetic-control donor weights, largest first (zero weights omitted)."""
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
        # a total; only the totals add up, so they are what the bars compare.
        return [("direct_total", "Direct"), ("spillover_total", "Spillover"), ("net", "Net")], True
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
    + spillover in levels. When a result carries ``direct_total``/``spillover_total``
    (totals over unit-periods, which add up to ``net``) those are drawn; otherwise the
    terms ``direct``, ``spillover`` (or ``spillover:RING``) and ``net``. A
    ``displacement_share`` term (-spillover total / direct total) is printed under the
    group's label.
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
    pos = {r: i for i, r in enumerate(order)}
    n = len(named)
    with paper_style():
        fig, ax = _start(ax)
        for i, (name, t) in enumerate(per.items()):
            x = t["ring"].map(pos).to_numpy(float) + (i - (n - 1) / 2) * offset
            col = style.color(i)
            ax.vlines(x, t["lo"].to_numpy(float), t["hi"].to_numpy(float), color=col, lw=1.0)
            ax.plot(
                x,
                t["estimate"].to_numpy(float),
                ls="none",
                marker=style.marker(i),
                color=col,
                label=name,
            )
        _zero_line(ax)
        literal(ax.set_xticks(np.arange(len(order)), order))
        ax.set_xlim(-0.5, len(order) - 0.5)
        literal(ax.set_xlabel(xlabel))
        first = next(iter(named.values()))
        literal(ax.set_ylabel(ylabel or f"Spillover on {_outcome_label(first)}"))
        if n > 1:
            legend_above(ax)
    return fig


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
    who counts as exposed. Definitions that could not run are listed without a point.
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
        ax.hlines(
            y[ok], t.loc[ok, f"{term}_low"], t.loc[ok, f"{term}_high"], color=style.color(0), lw=1.0
        )
        ax.plot(t.loc[ok, term], y[ok], ls="none", marker="o", color=style.color(0))
        if truth is not None:
            ax.axvline(truth, color=style.OKABE_ITO["vermillion"], ls="--", lw=0.8, label="truth")
            legend_above(ax)
        _zero_line(ax, horizontal=False)
        labels = [
            str(d) if has else f"{d} (not run)" for d, has in zip(t["definition"], ok, strict=True)
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

    Notes
    -----
    The aspect ratio is 1/cos(mean latitude), so distances look right locally
    (equirectangular projection).
    """
    if hasattr(geography, "unit_cohort") and hasattr(geography, "geography"):
        if cohorts is None:
            cohorts = geography.unit_cohort
        geography = geography.geography
    if not isinstance(geography, pd.DataFrame) or not {lon, lat} <= set(geography.columns):
        raise PlotError(
            f"`geography` must be a DataFrame indexed by unit with columns {lon!r} and {lat!r}."
        )
    if cohorts is None:
        raise PlotError("Pass `cohorts` (a Series of treatment years by unit).")
    coh = pd.Series(cohorts).reindex(geography.index).astype(float)
    xy = geography[[lon, lat]].astype(float)
    never = ~np.isfinite(coh.to_numpy())
    finite = sorted(coh[~never].unique())
    with paper_style():
        fig, ax = _start(ax)
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
                    label=f"{g:g}",
                    zorder=2,
                )
            legend_above(ax, title="Cohort")
        else:
            m = ~never
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
            if never.any():
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


def default_figures(result: Any) -> dict[str, Figure]:
    """The standard figures for a result, by what it carries: ``{file stem: Figure}``.

    Event-study terms give ``event_study``; ``att_gt`` gives ``group_time``; synthetic
    control paths give ``sc_paths`` and ``sc_gap`` (+ ``placebo_gaps``, ``rmspe_ratio``,
    ``donor_weights``); SDID weights give ``sdid_weights``; Bacon comparisons give
    ``bacon``; spillover terms give ``decomposition`` and ``spillover_by_ring``. Parts a
    result lacks are skipped.
    """
    plan: list[tuple[str, Callable[[], Figure], bool]] = [
        ("event_study", lambda: event_study_plot(result), _has_event_terms(result)),
        (
            "group_time",
            lambda: group_time_plot(result),
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
            lambda: decomposition_plot({str(getattr(result, "outcome", "")) or "effect": result}),
            _has_terms(result, ["direct", "net"]),
        ),
        (
            "spillover_by_ring",
            lambda: spillover_by_ring_plot(result),
            isinstance(getattr(result, "terms", None), pd.DataFrame)
            and result.terms["term"].astype(str).str.match(_RING_RE).any(),
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
