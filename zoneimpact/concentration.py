"""Concentration outcomes: a unit's share of its region, and the region's HHI.

Whether zones *concentrate* activity rather than create it shows up in the distribution
of activity inside a region: the zone unit's share of the regional total rises, and so
does the Herfindahl-Hirschman index (HHI, the sum of squared shares) across the region's
units. This module derives those outcomes from a :class:`~zoneimpact.panel.Panel` and
returns new panels, so the same DiD / synthetic-control machinery estimates their change
(DESIGN.md, "Estimands for concentration versus creation").

* :func:`share_of_region` — unit-level panel with the outcome ``{outcome}_share`` =
  ``y_it / sum_{j in region(i)} y_jt``; zone units keep their cohorts, so the ATT is the
  change in a zone unit's regional share. Neighbours' shares fall when activity moves, so
  estimate it with :func:`zoneimpact.estimators.spillover.fit` (term ``direct``) to keep
  them out of the controls.
* :func:`region_hhi` — region-by-period panel with ``{outcome}_hhi`` and
  ``{outcome}_total``; a region is treated from its onset: its first zone period, or an
  earlier opening of a source zone located in it (or, given the exposure map, an earlier
  exposure of one of its units); regions treated from the first period or before are
  left out.

Shares need non-negative outcomes; a region-period whose total is 0 or which misses any
of its units' values gets NaN (shares of a changing set of units are not comparable). A
unit with no value of the outcome in any of the panel's periods (a panel unit or one of
``others``) does not change the set: it is left out of the totals exactly as a unit
without rows is, with a warning naming it.

Which units a region's total covers: the panel's units of the region and, given
``others=``, the outcome rows of the region's units outside the panel -- above all the
units ``outside_window="adjust"`` dropped as already treated, often a region's largest
(China: the 63 cities zoned before 1996 held a median 65% of their province's FDI). Without
``others`` the total covers the panel's units only, and a zone unit's "share of its
region" is a share of the region's later-zoned and zone-free units.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import PanelError, SpecError, ZoneImpactError
from .exposure import ExposureMap, left_out_note, region_onsets, regions_left_out
from .panel import Panel, _check_id_spellings, _v
from .results import EstimationResult

__all__ = ["estimate_concentration", "region_hhi", "share_of_region"]


def _other_rows(panel: Panel, outcome: str, column: str, others: pd.DataFrame) -> pd.DataFrame:
    """``others`` checked and keyed like the panel's rows: ``unit``, ``time``, ``region``
    and the outcome, at the panel's periods only."""
    if not isinstance(others, pd.DataFrame):
        raise PanelError(
            "others= must be a DataFrame of outcome rows of units outside the panel "
            f"(columns unit, time, {outcome!r}); received {type(others).__name__}."
        )
    names = panel.names
    ucol = "unit" if "unit" in others.columns else names.get("unit", "unit")
    tcol = "time" if "time" in others.columns else names.get("time", "time")
    miss = [c for c in (ucol, tcol, outcome) if c not in others.columns]
    if miss:
        raise PanelError(
            f"others= lacks column(s) {miss}; it needs the unit ('unit' or {ucol!r}), the "
            f"period ('time' or {tcol!r}) and the outcome {outcome!r}; it has "
            f"{list(others.columns)}."
        )
    o = pd.DataFrame(
        {
            "unit": others[ucol].to_numpy(),
            "time": others[tcol].to_numpy(),
            "cohort": np.nan,
            outcome: pd.to_numeric(others[outcome], errors="coerce").to_numpy(float),
        }
    )
    text = o[outcome].isna().to_numpy() & others[outcome].notna().to_numpy()
    if text.any():
        i = int(np.flatnonzero(text)[0])
        raise PanelError(
            f"others= column {outcome!r} is not numeric: {_v(others[outcome].iloc[i])!r} at "
            f"unit {_v(o['unit'].iloc[i])!r}, period {_v(o['time'].iloc[i])!r}."
        )
    # '101' for the panel's 101 would pass the exact test below and count twice
    _check_id_spellings(o["unit"], panel.units, "others=", PanelError)
    inside = pd.Index(o["unit"].unique()).intersection(pd.Index(panel.units))
    if len(inside):
        raise PanelError(
            f"others= holds unit {_v(inside[0])!r}, which is a panel unit; others are the "
            "region's units outside the panel (its own rows are counted already)."
        )
    dup = o.duplicated(["unit", "time"])
    if dup.any():
        r = o.loc[dup].iloc[0]
        raise PanelError(
            f"others= lists unit {_v(r['unit'])!r}, period {_v(r['time'])!r} more than once."
        )
    if column in others.columns:
        o["region"] = others[column].to_numpy()
    else:
        src = panel.sources
        where = (
            src[column] if src is not None and column in src.columns else pd.Series(dtype=object)
        )
        o["region"] = o["unit"].map(where).to_numpy()
    if o["region"].isna().any():
        u = o.loc[o["region"].isna(), "unit"].iloc[0]
        raise PanelError(
            f"others= unit {_v(u)!r} has no {column!r}: give that column in others= (or in the "
            "panel's sources, as for units dropped as already treated)."
        )
    at = o["time"].isin(panel.periods).to_numpy()
    if len(o) and not at.any():
        raise PanelError(
            f"others= holds no row at a panel period (its first period is "
            f"{_v(o['time'].iloc[0])!r}; the panel's are {_v(panel.periods[0])!r} to "
            f"{_v(panel.periods[-1])!r}); give the periods on the panel's scale."
        )
    return o[at]


def _regional(
    panel: Panel,
    outcome: str,
    column: str,
    others: pd.DataFrame | None = None,
    stacklevel: int = 4,
) -> pd.DataFrame:
    """The panel's rows (first, in :attr:`Panel.data`'s order) and ``others``' rows with
    their region, its total and the unit's share; ``_in_panel`` tells them apart."""
    panel._check_outcome(outcome)
    geo = panel.require_geography([column])
    d = panel.data[["unit", "time", "cohort", outcome]].copy()
    d["region"] = geo[column].reindex(d["unit"]).to_numpy()
    d["_in_panel"] = True
    if others is not None:
        o = _other_rows(panel, outcome, column, others)
        # a region without panel units has no share or HHI to estimate (every unit of a
        # province may predate the data), but a table none of whose regions is the
        # panel's names them otherwise (e.g. codes against names, numbers against text)
        known = o["region"].isin(set(d["region"])).to_numpy()
        if len(o) and not known.any():
            raise PanelError(
                f"others= column {column!r} holds {_v(o['region'].iloc[0])!r}, ... and none "
                f"of its values is a {column!r} of the panel's geography (e.g. "
                f"{_v(d['region'].iloc[0])!r}); give the regions as the geography does."
            )
        o = o[known]
        d = pd.concat([d, o.assign(_in_panel=False)], ignore_index=True)
    d = _drop_unobserved(d, outcome, stacklevel)
    y = d[outcome].to_numpy(float)
    if np.nanmin(y) < 0:
        row = d.loc[d[outcome] < 0].iloc[0]
        where = "" if row["_in_panel"] else " (a row of others=)"
        raise PanelError(
            f"Concentration measures need a non-negative outcome; {outcome!r} is "
            f"{row[outcome]:g} at unit {_v(row['unit'])!r}, period {_v(row['time'])!r}{where}."
        )
    # units never observed are out of the totals (their rows of others= are gone already)
    counted = d["unit"].where(~d["_unobserved"].to_numpy())
    n_units = counted.groupby(d["region"]).transform("nunique")
    d["_n_units"] = n_units
    grp = d.groupby(["region", "time"])[outcome]
    d["_total"] = grp.transform("sum")
    if np.isinf(d["_total"]).any():
        row = d.loc[np.isinf(d["_total"])].iloc[0]
        raise PanelError(
            f"The regional total of {outcome!r} overflows in region {_v(row['region'])!r}, period "
            f"{_v(row['time'])!r} (values near the float limit); rescale the outcome (e.g. to "
            "millions) first."
        )
    d["_count"] = grp.transform("count")
    complete = (d["_count"] == n_units) & (d["_total"] > 0)
    d["_share"] = np.where(complete, d[outcome] / d["_total"].where(complete, 1.0), np.nan)
    d["_complete"] = complete
    return d


def _drop_unobserved(d: pd.DataFrame, outcome: str, stacklevel: int) -> pd.DataFrame:
    """Flag (``_unobserved``) the units without a value of ``outcome`` in any period and
    drop such units' rows of ``others``, with a warning naming them: a unit never observed
    leaves the totals as a unit without rows does (it changes no period's set of units).
    A unit observed in some periods keeps blanking its region's other periods."""
    seen = d.groupby("unit", sort=False)[outcome].count()
    never = seen.index[seen.to_numpy() == 0]
    d["_unobserved"] = d["unit"].isin(never).to_numpy()
    if len(never):
        flag = d.drop_duplicates("unit").set_index("unit")["_in_panel"].reindex(never)
        n_in = int(flag.sum())
        names = ", ".join(repr(_v(u)) for u in never[:5])
        more = ", ..." if len(never) > 5 else ""
        warnings.warn(
            f"{len(never)} unit(s) have no value of {outcome!r} in any period ({n_in} of the "
            f"panel, {len(never) - n_in} of others=): {names}{more}. They are left out of "
            "the regional totals, as units without rows would be; their own shares are NaN.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return d.loc[~(d["_unobserved"] & ~d["_in_panel"]).to_numpy()]


def share_of_region(
    panel: Panel,
    outcome: str,
    *,
    column: str = "region",
    name: str | None = None,
    others: pd.DataFrame | None = None,
) -> Panel:
    """Add the outcome ``name`` (default ``{outcome}_share``): a unit's share of its region.

    The region-period total sums the panel's units of the region and the rows of
    ``others`` in it; it is NaN (and so is every share in it) when any of those units lacks
    the value in that period or the total is 0. A unit without a value in any period is
    left out of the totals, as a unit without rows is (with a warning); a panel unit's
    share is then NaN.

    Parameters
    ----------
    panel : Panel
        With a geography column ``column``.
    outcome : str
        A non-negative outcome in levels.
    column : str
        Geography column defining regions.
    name : str, optional
        Name of the new outcome.
    others : DataFrame, optional
        Outcome rows of the regions' units that are not panel units, e.g. those
        ``outside_window="adjust"`` dropped as already treated
        (:attr:`zoneimpact.datasets.LoadedData.outside_rows` for the China data):
        columns ``unit``, ``time`` (or the panel's own names of them; periods on the panel's
        scale; rows at other periods are ignored), ``outcome`` and ``column`` (else read from
        :attr:`Panel.sources`). Without it the totals cover the panel's units only.
    """
    return _share_panel(panel, outcome, column, name, others)[0]


def _share_panel(
    panel: Panel, outcome: str, column: str, name: str | None, others: pd.DataFrame | None
) -> tuple[Panel, int]:
    """:func:`share_of_region`'s panel and the number of units of ``others`` counted."""
    d = _regional(panel, outcome, column, others, stacklevel=5)
    share = d.loc[d["_in_panel"].to_numpy(), "_share"].to_numpy()
    n_other = int(d.loc[~d["_in_panel"].to_numpy(), "unit"].nunique())
    return panel.with_outcome(name or f"{outcome}_share", share), n_other


def region_hhi(
    panel: Panel,
    outcome: str,
    *,
    column: str = "region",
    exposure: ExposureMap | None = None,
    others: pd.DataFrame | None = None,
) -> Panel:
    """Region-by-period panel of the HHI of ``outcome`` across each region's units.

    ``HHI_rt = sum_i s_it^2`` with ``s_it`` the unit's share of the region total. The
    region's cohort is its onset (``inf`` if none): the earliest of its units' zone
    openings and of the openings of the panel's source zones located in it
    (:attr:`Panel.sources` with a ``column`` value, e.g. zones dropped by
    ``outside_window="adjust"`` or passed as ``sources=``) and, only when ``exposure`` (an
    :class:`~zoneimpact.exposure.ExposureMap` of this panel) is given, of its units'
    exposure onsets; without it a zone-free region whose units a zone across its border
    draws on stays a control. Regions treated from the first period or before have no
    untreated period and are left out: ``report["regions_left_out"]`` maps them to their
    onsets. Outcomes: ``{outcome}_hhi`` and ``{outcome}_total``; covariate ``n_units``
    (units per region whose outcome is observed in some period).

    The HHI and total run over the region's panel units and the rows of ``others`` (see
    :func:`share_of_region`), with the same missing-value rule. A unit dropped as already
    treated puts its region's onset at or before the first period when it is a source
    with ``column`` (as ``outside_window="adjust"`` makes it, given the geography), so its
    region is left out in any case; without ``others`` a kept region's HHI misses only
    units absent from the panel for other reasons. ``report["hhi_units"]`` says which.
    """
    return _region_hhi(panel, outcome, column, exposure, others, stacklevel=5)


def _region_hhi(
    panel: Panel,
    outcome: str,
    column: str,
    exposure: ExposureMap | None,
    others: pd.DataFrame | None,
    *,
    stacklevel: int,
) -> Panel:
    """:func:`region_hhi`, its warnings ``stacklevel`` frames up from ``_regional``'s
    (5: the caller of :func:`region_hhi` or of :func:`estimate_concentration`)."""
    onset = region_onsets(panel, column, exposure)
    left = regions_left_out(onset, panel)
    d = _regional(panel, outcome, column, others, stacklevel=stacklevel)
    d = d.loc[~d["region"].isin(left.index)]
    if d.empty:
        raise PanelError(
            left_out_note(left.to_dict(), "region_hhi") + " No region is left to compare."
        )
    d["_sq"] = d["_share"] ** 2
    agg = d.groupby(["region", "time"]).agg(
        hhi=("_sq", "sum"),
        total=(outcome, "sum"),
        complete=("_complete", "all"),
        n_units=("_n_units", "first"),
    )
    agg = agg.reset_index()
    agg.loc[~agg["complete"], ["hhi", "total"]] = np.nan
    first = onset.reindex(d["region"].unique())
    agg["cohort"] = first.reindex(agg["region"]).to_numpy()
    hhi, tot = f"{outcome}_hhi", f"{outcome}_total"
    frame = agg.rename(columns={"hhi": hhi, "total": tot})
    frame["n_units"] = frame["n_units"].astype(float)
    geo = pd.DataFrame({"unit": first.index.to_numpy(), "region": first.index.to_numpy()})
    rp = Panel.from_frame(
        frame[["region", "time", "cohort", hhi, tot, "n_units"]],
        unit="region",
        time="time",
        cohort="cohort",
        outcomes=[hhi, tot],
        covariates=["n_units"],
        geography=geo,
        never_values=(),
    )
    n_other = int(d.loc[~d["_in_panel"], "unit"].nunique())
    units = (
        f"the panel's units and {n_other} unit(s) outside it (others=)"
        if others is not None
        else "the panel's units only (no others= given)"
    )
    report = {**rp.report, "regions_left_out": left.to_dict(), "hhi_units": units}
    return rp.replace(report=report)


def estimate_concentration(
    panel: Panel,
    outcome: str,
    *,
    kind: Literal["share", "hhi"] = "share",
    column: str = "region",
    rng: np.random.Generator | int | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    base_estimator: str = "imputation",
    options: dict[str, Any] | None = None,
    others: pd.DataFrame | None = None,
) -> EstimationResult:
    """Estimate the effect of zones on a concentration outcome.

    ``kind="share"``: :func:`zoneimpact.estimators.spillover.fit` on the share panel
    (its ``att`` is the direct effect on a zone unit's regional share, against clean
    controls). ``kind="hhi"``: the registry estimator ``base_estimator`` on the region
    panel of :func:`region_hhi`. The result's ``info["pre_mean"]`` holds the treated
    units' pre-zone mean of the outcome (for equivalence margins). ``others``: outcome
    rows of the regions' units outside the panel, counted in the regional totals (see
    :func:`share_of_region`); ``info["region_units"]`` says which units the totals cover.
    """
    options = dict(options or {})
    _check_concentration_options(kind, base_estimator, options)
    if kind == "share":
        from .estimators.spillover import fit as spill_fit

        name = f"{outcome}_share"
        sp, n_other = _share_panel(panel, outcome, column, name, others)
        res = spill_fit(
            sp,
            outcome=name,
            rng=rng,
            alpha=alpha,
            n_jobs=n_jobs,
            base_estimator=base_estimator,
            region_column=column,
            **options,
        )
        units = (
            f"the panel's units and {n_other} unit(s) outside it (others=)"
            if others is not None
            else "the panel's units only (no others= given)"
        )
        return replace(res, info={**res.info, "region_units": units})
    if kind == "hhi":
        from .estimators import get_estimator

        rp = _region_hhi(panel, outcome, column, None, others, stacklevel=5)
        note = left_out_note(rp.report.get("regions_left_out") or {}, "region_hhi")
        name = f"{outcome}_hhi"
        try:
            res = get_estimator(base_estimator)(
                rp, outcome=name, rng=rng, alpha=alpha, n_jobs=n_jobs, **options
            )
        except ZoneImpactError as exc:
            if not note:
                raise
            # the left-out regions are often why the region panel has too few controls
            raise type(exc)(f"{exc} ({note})") from exc
        d = rp.data
        pre = d.loc[np.isfinite(d["cohort"]) & (d["time"] < d["cohort"]), name]
        info = {**res.info, "pre_mean": float(pre.mean()), "region_units": rp.report["hhi_units"]}
        if note:
            info["regions_left_out_note"] = note
        return replace(res, info=info)
    raise SpecError(f"kind={kind!r} is not allowed; use 'share' or 'hhi'.")


def _check_concentration_options(kind: str, base_estimator: str, options: dict[str, Any]) -> None:
    """Refuse, by name, an option the fit behind ``kind`` does not take or that this
    function sets itself (before a long fit raises a bare ``TypeError``)."""
    from .estimators import check_options, get_estimator

    if kind not in ("share", "hhi"):
        raise SpecError(f"kind={kind!r} is not allowed; use 'share' or 'hhi'.")
    get_estimator(base_estimator)  # an unknown name is refused with the valid ones
    own = sorted(set(options) & {"base_estimator", "region_column"})
    if own:
        raise SpecError(
            f"estimate_concentration sets {own} itself; pass base_estimator= and column= "
            "instead of options."
        )
    check_options("spillover" if kind == "share" else base_estimator, options)
