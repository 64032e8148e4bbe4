"""Spillover-aware DiD (Butts 2021 ring estimator) on a Dask DataFrame, CS or imputation base.

Same estimator as :func:`zoneimpact.estimators.spillover.fit` (Butts, K. 2021,
"Difference-in-differences estimation with spatial spillovers", arXiv:2105.03737, Section
3.2 and eqs. 3.4-3.5), with Callaway & Sant'Anna (2021) or Borusyak, Jaravel & Spiess (2024)
per piece, computed where the data live:

1. **Exposure map** (client): built by the caller from the small unit-level geography
   (:mod:`zoneimpact.exposure` builders, :func:`zoneimpact.grid.exposure_from_points`);
   its units and cohorts are checked against the panel's.
2. **Pieces** (partitions): the rows and cohorts of :meth:`ExposureMap.panels` — the
   direct piece (zone units against clean controls) and one spillover piece per ring
   (exposed units, treated from their exposure onset, against the same controls) — are
   selected partition by partition (a unit's rows stay in their partition). The CS base
   applies the ``outside_window="adjust"`` rule of the in-memory ring panels (a ring unit
   exposed from the piece's first period leaves it; an onset after its last period is
   never). Both bases add the ``spillover_on_zones`` piece (zone units treated from an
   earlier zone's exposure until their own zone), as in memory; the CS base averages its
   ATT(g,t) by target count (``_target_weighted_att``), since its units leave at their
   own zone. The CS base's pieces put a treated unit without an outcome in the period
   before its cohort (a zone unit exposed before its zone under ``"drop_rows"``, or any
   unit whose outcome is missing then) in the cohort that follows its last untreated
   observed period (:func:`_recode_cohorts`, the in-memory ``_rebased_piece``).
3. **Base fits**: :func:`zoneimpact.distributed.callaway_santanna.fit` on every piece and
   on the whole panel (the ``naive`` piece), returning per-unit influence functions; or
   :func:`zoneimpact.distributed.imputation.fit_scores` (BJS steps 1-2 and the Theorem 3
   scores, leave-out ``tau~`` from cell x cluster sums), returning scores per cluster.
4. **Joint inference** (client): the pieces' scores summed within clusters (numbered in
   :meth:`Panel.canonical_order`, as in memory) and the in-memory ``_linear_terms`` and
   ``_joint`` (totals, net, displacement share, joint multiplier bootstrap) — imported,
   not copied — so the result is a
   :class:`~zoneimpact.estimators.spillover.SpilloverResult` equal to the in-memory fit to
   1e-10 (``tests/test_distributed_spillover.py``). Net and the share are blanked where the
   in-memory fit blanks them (``_unidentified``): the share also where the direct total is
   zero to rounding, judged against the outcome's scale (``info["pre_mean"]`` and
   ``info["outcome_sd"]``, pooled from the partitions' moments in the first pass).

**Zones whose gain is in no total** (zones outside the sample, or zone units of the
sample without an estimated gain in a period: outcome missing then, or no untreated row of
their own; the zone units' observed periods are read in the same pass as the units): the
imputation base splits the unit-periods they alone expose off the ring pieces and
``spillover_on_zones`` into the source pieces (``spillover_from_sources``), as in memory
(:func:`_source_cells`: targets need no unexposed row of their own there, and controls are
untouched). The CS base, as in memory, leaves out of its ring pieces the non-zone units
every exposed period of which is such a period, blanks the outcome of such periods of
non-zone units with counted periods too, so that they enter only the ATT(g,t) of their
counted periods (:func:`_pure_source_units`), and counts those rows under
the source pieces unestimated (``info["cs_sources_note"]``, a warning); it blanks such
periods of zone units exposed before their own zone in ``spillover_on_zones`` alike. It
refuses, naming their number, only such periods on which its gain rule (an untreated row
of its own) and the imputation base's (also a clean row in that period) disagree
(``_refuse_source_targets``). Units exposed from the first period are
estimated by neither base; the CS base counts their rows under the pieces the in-memory
fit counts them in (:func:`_with_start_rows`).

**Exposed rows without an outcome** that a zone with a counted gain exposes: their losses
are in no total, so net leaves them out while the gain is in; both bases name them as in
memory (``info["net_unobserved_note"]``, a warning, ``unobserved_note``), from the units
with fewer rows with an outcome than periods (counted in the first pass; their observed
periods take one more pass, only when there are such units: :func:`_unseen_cells`).

**Covariates** (either base), after the in-memory checks of each unit's baseline
(``baseline_values`` on each unit's first row with every covariate observed, read in the
first pass): on the CS base ``covariates=`` enters every CS piece and the naive fit doubly
robust (Sant'Anna & Zhao 2020); on the imputation base every piece's step 1 adds the
baseline x period terms ``x_i 1{t = s}`` (conditional parallel trends), the baseline table
(one row per unit, centred and scaled as in memory) shipped once to the partitions, and a
period needs ``K + 2`` clean units with another clean row (``K`` covariates; in memory's
``_without_thin_periods``); both as the in-memory bases apply them, equal to 1e-10.
Collinear covariate terms are refused as in memory (:func:`.imputation._check_reduced`).
Those terms are solved directly, so the imputation base takes covariates on panels of at
most 200 periods with clean rows (longer ones are refused by name).

Not available on this engine (in-memory only):
weights, the imputation
base's CR2 correction and the CS base's delete-one-cluster jackknife
(``small_sample="cr2"``, the in-memory default: they need each cluster's rows together),
``net_region_did``/``net_region_sdid`` (they need the geography), Conley SEs and
:meth:`SpilloverResult.with_inference` (the result keeps no panel). A piece whose estimated targets all sit in one cluster is refused as in memory on
either base (NaN SE for its terms, a warning, ``info["one_cluster_pieces"]``); the CS
base finds the clusters of each piece's targets in the cells CS estimated by a pass over
its partitions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import EstimationError, PanelError, SpecError
from ..estimators._bjs import SingularModel
from ..estimators._scale import rescale_result
from ..estimators.callaway_santanna import labels_by_unit
from ..estimators.spillover import (
    _ADAPTIVE_AUX,
    _AUX_PARTITIONS,
    _INFERENCE,
    SOURCE_PIECES,
    SpilloverResult,
    _att_weights_targets,
    _aux_tables,
    _cs_sources_text,
    _estimated_cells,
    _in_piece_order,
    _joint,
    _linear_terms,
    _one_cluster_terms,
    _piece_warnings,
    _PieceFit,
    _pieces_table,
    _recount,
    _refuse_event_window,
    _target_weighted_att,
    _unidentified,
    _unpaired_note,
    _warn_cs_inference,
    _warn_one_cluster,
    _warn_unidentified,
    _with_zone_losses,
    _without_one_cluster_se,
    _zone_piece_selection,
    baseline_values,
    first_complete_rows,
    joint_source_mask,
    joint_source_report,
    rebased_cohorts,
    source_only_refusal,
    unobserved_note,
)
from ..exposure import ExposureMap
from ..panel import TieKeys, _v, canonical_positions
from ..parallel import as_generator
from ..results import EstimationResult, check_alpha, check_choice, check_names
from ._frame import (
    DaskPanel,
    check_covariates_read,
    check_dask_panel,
    compute_blocks,
    moments,
    pooled_moments,
    summed,
    tie_columns,
    unit_tables,
    uses_column,
)
from .callaway_santanna import fit as cs_fit
from .imputation import NothingImputable
from .imputation import fit_scores as imputation_scores
from .twfe import scaled_panel

__all__ = ["fit"]

_CONTROLS = ("not_yet_exposed", "never_exposed")
_PRE_EXPOSED = ("drop_rows", "drop_units", "keep")


# ---------------------------------------------------------------------- partition steps
def _unit_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each unit of a partition with its cohort (and cluster label when read)."""
    cols = ["cohort", *(["cluster"] if "cluster" in df.columns else [])]
    return df.groupby("unit", sort=False)[cols].first()


def _units_and_zone_periods(
    df: pd.DataFrame,
    *,
    outcome: str,
    zones: bool,
    start: np.ndarray | None = None,
    covs: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, np.ndarray]:
    """:func:`_unit_rows`, and with ``zones`` the (``unit``, ``time``) pairs of the
    partition's zone units (finite cohort) whose outcome is observed (finite): what
    :func:`_refuse_source_targets` needs to find the periods in which a zone of the sample
    exposes its neighbours without an estimated gain of its own (no outcome then, or no
    untreated row). ``start``: units exposed from the first period, whose observed pairs
    are read too (:func:`_start_rows`). The units carry their number of rows with an
    outcome (``n_observed``, :func:`_unseen_cells`). With ``covs``, each unit's first row with every
    covariate observed (the in-memory ``first_complete_rows``), for the in-memory
    baseline checks. The outcome's count, mean and squared deviations, over all its values
    and over the zone units' rows before their zone (:func:`_outcome_scale`). One pass
    reads them all (the units' rows of the pairs are few)."""
    first = first_complete_rows(df[["unit", "time", *covs]]) if covs else None
    y = df[outcome].to_numpy(float)
    seen = np.isfinite(y)
    rows = _unit_rows(df)
    # rows with an outcome: a unit with fewer than the periods may have unseen exposed cells
    rows["n_observed"] = pd.Series(seen, index=df.index).groupby(df["unit"]).sum()
    g = df["cohort"].to_numpy(float)
    pre_zone = np.isfinite(g) & (df["time"].to_numpy(float) < g)
    scale = np.array([moments(y), moments(y[pre_zone])])
    if not zones:
        return rows, None, first, scale
    keep = np.isfinite(g)
    if start is not None and len(start):
        keep |= df["unit"].isin(start).to_numpy()
    return rows, df.loc[keep & seen, ["unit", "time"]].drop_duplicates(), first, scale


def _outcome_scale(blocks: list[np.ndarray]) -> dict[str, float]:
    """``info["pre_mean"]`` (the zone units' mean outcome before their zone) and
    ``info["outcome_sd"]`` (the outcome's SD over all its values) as in memory, from the
    partitions' moments (:func:`_units_and_zone_periods`): the displacement share's
    rounding rule (``_share_at_rounding``) and the claims' ``pre_mean`` margins read them."""
    n, mean, m2 = pooled_moments(blocks)
    return {
        "pre_mean": float(mean[1]) if n[1] else np.nan,
        "outcome_sd": float(np.sqrt(m2[0] / n[0])) if n[0] else np.nan,
    }


def _zones_without_untreated(
    tab: pd.DataFrame, units: pd.DataFrame, observed: pd.DataFrame, pre_exposed: str
) -> tuple[np.ndarray, pd.Series]:
    """Zone units with an observed row after they open but none before in the direct
    piece (the in-memory ``_zones_without_untreated``: under ``"drop_rows"`` the rows from
    the exposure onset on are dropped, under ``"drop_units"`` a pre-exposed zone unit
    leaves the piece altogether), and the periods of their observed rows from their
    opening on: the CS base leaves them out of its direct piece and counts those rows as
    unidentified, as the imputation base does. ``observed``: the zone units' (``unit``,
    ``time``) pairs with an outcome."""
    u = observed["unit"].to_numpy()
    t = observed["time"].to_numpy(float)
    g = units["cohort"].reindex(u).to_numpy(float)
    onset = tab["exposure_onset"].reindex(u).to_numpy(float)
    in_piece = (tab["role"].reindex(u) == "direct").to_numpy()
    if pre_exposed == "drop_units":
        in_piece = in_piece & ~(onset < g)
    before = t < (np.minimum(g, onset) if pre_exposed == "drop_rows" else g)
    has_before = pd.Series(before & in_piece).groupby(u).any()
    has_after = pd.Series((t >= g) & in_piece).groupby(u).any()
    gone = has_after.index[has_after & ~has_before.reindex(has_after.index, fill_value=False)]
    rows = in_piece & (t >= g) & np.isin(u, gone)
    return np.asarray(gone), pd.Series(t[rows])


def _blank(out: pd.DataFrame, cells: pd.MultiIndex | None, column: str) -> pd.DataFrame:
    """``out`` (a piece's rows, a copy) with ``column`` missing in ``cells`` (the in-memory
    ``_blanked_rows``)."""
    if cells is not None and len(cells):
        out[column] = out[column].mask(_in_cells(out, cells))
    return out


def _piece_rows(
    df: pd.DataFrame,
    *,
    tab: pd.DataFrame,
    ring: str | None,
    controls: str,
    pre_exposed: str,
    window: tuple[float, float] | None,
    src: pd.MultiIndex | None = None,
    leave: np.ndarray | None = None,
    blank: pd.MultiIndex | None = None,
    blank_in: str = "",
    rebase_on: np.ndarray | None = None,
) -> pd.DataFrame:
    """The rows of one piece in a partition, as :meth:`ExposureMap.panels` selects them:
    ``ring=None`` is the direct piece (cohorts kept), otherwise the ring's spillover piece
    (cohort = exposure onset for the ring's units, never for the others). ``window``
    (first, last period of the piece) applies the ring panels' ``outside_window="adjust"``.
    ``src``: the source-only (``unit``, ``time``) cells (:func:`_source_cells`), which
    leave a ring piece (they are the source piece's targets, and never its controls);
    ``leave``: units that leave the ring pieces (the CS base's pure units,
    :func:`_pure_source_units`); ``blank``: cells whose outcome (column ``blank_in``) a ring
    piece blanks (its mixed units' source-only rows); ``rebase_on``: the panel's periods,
    on which the CS base rebases its pieces' units without an outcome (column
    ``blank_in``, the piece's outcome) in their base period (:func:`_recode_cohorts`)."""
    unit = df["unit"].to_numpy()
    t = df["time"].to_numpy(float)
    g = df["cohort"].to_numpy(float)
    role = tab["role"].reindex(unit).to_numpy()
    onset = tab["exposure_onset"].reindex(unit).to_numpy(float)
    rings = tab["ring"].reindex(unit).to_numpy()
    zone, exposed, clean = role == "direct", role == "exposed", role == "clean"
    pre_rows = exposed & (t < onset)
    not_yet = controls == "not_yet_exposed"
    if ring is None:
        keep_nonzone = clean | (pre_rows if not_yet else False)
        if pre_exposed == "drop_rows":
            keep_zone = zone & ~((t >= onset) & (t < g))
        elif pre_exposed == "drop_units":
            # the map's pre-exposed zone units: exposed before their own zone opened
            keep_zone = zone & ~(onset < g)
        else:
            keep_zone = zone
        kept = keep_zone | keep_nonzone
        if rebase_on is None:
            return df.loc[kept]
        return _recode_cohorts(df.loc[kept].copy(), g[kept], None, rebase_on, blank_in)
    in_ring = exposed & (rings == ring)
    other_pre = exposed & (rings != ring) & pre_rows
    rows = in_ring | clean | (other_pre if not_yet else False)
    if src is not None:
        rows = rows & ~_in_cells(df, src)
    if leave is not None:
        rows = rows & ~np.isin(unit, leave)
    out = _blank(df.loc[rows].copy(), blank, blank_in)
    cohort = np.where(in_ring, onset, np.inf)[rows]
    return _recode_cohorts(out, cohort, window, rebase_on, blank_in)


def _recode_cohorts(
    out: pd.DataFrame,
    cohort: np.ndarray,
    window: tuple[float, float] | None,
    rebase_on: np.ndarray | None = None,
    outcome: str = "",
) -> pd.DataFrame:
    """A piece's rows with their new cohorts; ``window`` (first, last period) applies the
    in-memory ``outside_window="adjust"``: an onset after the last period is never, and a
    unit treated from the first period (no untreated row) leaves the piece. With
    ``rebase_on`` (the panel's periods) a treated unit without an ``outcome`` in the period
    before its cohort takes the cohort after its last untreated observed period, as the
    in-memory CS pieces (``spillover._rebased_piece``; a unit's rows are all in this
    partition)."""
    if window is not None:
        first, last = window
        cohort = np.where(cohort > last, np.inf, cohort)
        out = out.loc[~(cohort <= first)]
        cohort = cohort[~(cohort <= first)]
    if rebase_on is not None:
        cohort = rebased_cohorts(
            out["unit"].to_numpy(),
            out["time"].to_numpy(float),
            np.asarray(cohort, float),
            out[outcome].notna().to_numpy(),
            rebase_on,
        )
    out["cohort"] = cohort
    return out


def _clean_counts(
    df: pd.DataFrame,
    *,
    tab: pd.DataFrame,
    outcome: str,
    controls: str,
    pre_exposed: str,
    periods: np.ndarray,
    thin: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per period (of ``periods``) outside ``thin``, a partition's clean rows of the direct
    piece (:func:`_piece_rows` with ``ring=None``: untreated rows with an outcome) and
    those of units with another such row outside ``thin`` (``has``, ``paired``; a unit's
    rows stay in one partition, so the counts add up)."""
    rows = _piece_rows(
        df, tab=tab, ring=None, controls=controls, pre_exposed=pre_exposed, window=None
    )
    t = rows["time"].to_numpy(float)
    tc = np.searchsorted(periods, t)
    keep = (t < rows["cohort"].to_numpy(float)) & np.isfinite(rows[outcome].to_numpy(float))
    keep &= ~thin[tc]
    units = pd.factorize(rows["unit"])[0]
    rows_of_unit = np.bincount(units[keep], minlength=int(units.max(initial=-1)) + 1)
    paired = keep & (rows_of_unit[units] >= 2)
    return {
        "has": np.bincount(tc[keep], minlength=len(periods)).astype(float),
        "paired": np.bincount(tc[paired], minlength=len(periods)).astype(float),
    }


def _clean_periods(
    dpanel: DaskPanel,
    tab: pd.DataFrame,
    outcome: str,
    rule: Mapping[str, str],
    thin: bool,
    k: int = 0,
) -> np.ndarray:
    """The periods in which the direct piece has a clean row (:func:`_clean_counts`).
    With ``thin`` (the imputation base) without those BJS's step 1 leaves out for ``k +
    1`` clean units or fewer with another clean row (``k`` covariates; the in-memory
    ``_without_thin_periods``, repeated until nothing changes; in-memory
    ``_counted_gain``): a zone's gain is not imputed then."""
    periods = np.asarray(dpanel.periods, float)
    left = np.zeros(len(periods), dtype=bool)
    while True:
        c = summed(
            compute_blocks(
                [_clean_counts], dpanel.partitions(), tab=tab, outcome=outcome,
                periods=periods, thin=left, **rule,
            )
        )  # fmt: skip
        more = (c["has"] > 0) & (c["paired"] <= 1 + k)
        if not (thin and more.any()):
            return periods[c["has"] > 0]
        left |= more


def _scan(df: pd.DataFrame, *, outcome: str) -> dict[str, Any]:
    """Periods, cohorts, counts and target unit-periods (treated rows with an outcome)."""
    g = df["cohort"].to_numpy(float)
    y = df[outcome].to_numpy(float)
    target = (df["time"].to_numpy(float) >= g) & np.isfinite(y)
    cells = pd.DataFrame({"cohort": g[target], "time": df["time"].to_numpy(float)[target]})
    return {
        "target_cells": cells.value_counts(),
        "periods": np.unique(df["time"].to_numpy()),
        "cohorts": np.unique(g[np.isfinite(g)]),
        "n_units": int(df["unit"].nunique()),
        "n_obs": len(df),
        "n_never": int(df.loc[~np.isfinite(g), "unit"].nunique()),
        "n_target": int(target.sum()),
        "n_finite": int(np.isfinite(y).sum()),
    }


def _zone_piece_rows(
    df: pd.DataFrame,
    *,
    tab: pd.DataFrame,
    controls: str,
    window: tuple[float, float] | None = None,
    src: pd.MultiIndex | None = None,
    sources: bool = False,
    blank: pd.MultiIndex | None = None,
    blank_in: str = "",
    rebase_on: np.ndarray | None = None,
) -> pd.DataFrame:
    """The rows of the ``spillover_on_zones`` piece in a partition, as the in-memory
    ``_masks``: the clean controls of the direct piece and every zone unit's rows before its
    own zone; a zone unit exposed before its zone is treated from its exposure onset (its
    targets: onset <= t < cohort), the others are controls. ``window`` (first, last period)
    applies the CS base's ``outside_window="adjust"``, as :func:`_piece_rows` does. With
    ``src`` (:func:`_source_cells`) the targets are split: the source-only ones leave the
    piece, or with ``sources`` only they stay (``spillover_on_zones_from_sources``).
    ``blank``: cells whose outcome (column ``blank_in``) the CS base blanks (the source-only
    rows of its zone units, :func:`_pure_source_units`); ``rebase_on``: as
    :func:`_piece_rows`."""
    rows, cohort = _zone_piece_selection(df, tab, controls)
    if src is not None:
        treated = df["time"].to_numpy(float) >= cohort
        rows = rows & ~(treated & (_in_cells(df, src) != sources))
    out = _blank(df.loc[rows].copy(), blank, blank_in)
    return _recode_cohorts(out, cohort[rows], window, rebase_on, blank_in)


def _source_piece_rows(
    df: pd.DataFrame, *, tab: pd.DataFrame, controls: str, src: pd.MultiIndex, rings: list[Any]
) -> pd.DataFrame:
    """The rows of the ``spillover_from_sources`` piece in a partition, as the in-memory
    ``_masks``: its targets are the non-zone units' source-only cells (``src``), treated
    from their exposure onset; its controls the clean units and, under
    ``"not_yet_exposed"``, every exposed unit's rows before its exposure (under
    ``"never_exposed"`` those of the units of ``rings``, the rings holding its targets)."""
    unit = df["unit"].to_numpy()
    t = df["time"].to_numpy(float)
    role = tab["role"].reindex(unit).to_numpy()
    onset = tab["exposure_onset"].reindex(unit).to_numpy(float)
    exposed = role == "exposed"
    pre = exposed & (t < onset)
    if controls != "not_yet_exposed":
        pre = pre & np.isin(tab["ring"].reindex(unit).to_numpy(), rings)
    target = exposed & _in_cells(df, src)
    rows = (role == "clean") | pre | target
    has = np.isin(unit, src.get_level_values(0))
    cohort = np.where(exposed & has, onset, np.inf)
    return _recode_cohorts(df.loc[rows].copy(), cohort[rows], None)


def _in_cells(df: pd.DataFrame, cells: pd.MultiIndex) -> np.ndarray:
    """Whether each row's (``unit``, ``time``) is one of ``cells``."""
    key = pd.MultiIndex.from_arrays([df["unit"].to_numpy(), df["time"].to_numpy(float)])
    return np.asarray(key.isin(cells))


def _zone_loss_rows(df: pd.DataFrame, *, tab: pd.DataFrame, outcome: str) -> pd.Series:
    """Zone unit-periods exposed before their own zone, with an outcome, by period: the
    in-memory ``spillover_on_zones`` targets (the treated rows of :func:`_zone_piece_rows`),
    those the CS base's window leaves out included."""
    rows = _zone_piece_rows(df, tab=tab, controls="never_exposed")
    t = rows["time"].to_numpy(float)
    treated = (t >= rows["cohort"].to_numpy(float)) & np.isfinite(rows[outcome].to_numpy(float))
    # rows exposed only by zones outside the sample are not its targets (as in memory)
    treated &= t >= tab["exposure_onset_sample"].reindex(rows["unit"]).to_numpy(float)
    return pd.Series(t[treated]).value_counts()


# ---------------------------------------------------------------------- client side
def _check_map(units: pd.DataFrame, emap: Any) -> pd.DataFrame:
    """The map's table for the panel's units; a map built from other units or cohorts is
    refused, naming the units."""
    if not isinstance(emap, ExposureMap):
        raise SpecError(
            f"exposure must be an ExposureMap (zoneimpact.exposure builders or "
            f"zoneimpact.grid.exposure_from_points on the unit table); received "
            f"{type(emap).__name__}. A Dask panel carries no geography to build one from."
        )
    tab = emap.table
    missing = units.index[~units.index.isin(tab.index)].tolist()
    extra = tab.index[~tab.index.isin(units.index)].tolist()
    if missing or extra:
        raise PanelError(
            f"The exposure map's units do not match the Dask panel's: {len(missing)} panel "
            f"unit(s) not in the map (first: {missing[:5]!r}), {len(extra)} map unit(s) not in "
            f"the panel (first: {extra[:5]!r}). Build the map from this panel's unit table."
        )
    g_map = tab["cohort"].reindex(units.index).to_numpy(float)
    g_panel = units["cohort"].to_numpy(float)
    differ = ~((g_map == g_panel) | (np.isinf(g_map) & np.isinf(g_panel)))
    if differ.any():
        i = int(np.flatnonzero(differ)[0])
        raise PanelError(
            f"Unit {units.index[i]!r} has cohort {g_panel[i]:g} in the Dask panel but "
            f"{g_map[i]:g} in the exposure map ({int(differ.sum())} such unit(s)); build the "
            "map from the same cohorts (never treated = inf)."
        )
    return emap.roles_of(units.index)[["role", "exposure_onset", "ring", "exposure_onset_sample"]]


def _piece_panel(
    dpanel: DaskPanel,
    outcome: str,
    tab: pd.DataFrame,
    ring: str | None,
    rule: dict[str, str],
    window: bool = True,
    src: pd.MultiIndex | None = None,
    leave: np.ndarray | None = None,
    blank: pd.MultiIndex | None = None,
    rebase_on: np.ndarray | None = None,
) -> tuple[DaskPanel, pd.Series]:
    """A piece as a :class:`DaskPanel` (rows filtered and cohorts recoded in the
    partitions) and its target unit-periods by (cohort, time). ``window``: a ring piece
    takes the CS base's ``outside_window="adjust"`` rule (the imputation base does not);
    ``src``: source-only cells, ``leave``: units, that leave a ring piece; ``blank``: cells
    whose outcome it blanks; ``rebase_on``: the CS base's rebase (:func:`_piece_rows`)."""
    opts = {"tab": tab, "ring": ring, **rule, "src": src, "leave": leave, "blank": blank,
            "blank_in": outcome, "rebase_on": rebase_on}  # fmt: skip
    meta = dpanel.frame._meta
    span = None
    if ring is not None and window:
        rows = dpanel.frame.map_partitions(_piece_rows, window=None, meta=meta, **opts)
        scans = compute_blocks([_scan], list(rows.to_delayed()), outcome=outcome)
        periods = np.unique(np.concatenate([s["periods"] for s in scans]))
        if periods.size == 0:
            raise PanelError(f"The exposure split left an empty panel for ring {ring!r}.")
        span = (float(periods[0]), float(periods[-1]))
    return _rows_panel(dpanel, outcome, _piece_rows, window=span, **opts)


def _zone_panel(
    dpanel: DaskPanel,
    outcome: str,
    tab: pd.DataFrame,
    controls: str,
    blank: pd.MultiIndex | None = None,
) -> tuple[DaskPanel, pd.Series] | None:
    """The ``spillover_on_zones`` piece for the CS base, with the in-memory
    ``zones_exposed_panel``'s ``outside_window="adjust"`` (a unit exposed since the piece's
    first period leaves it), the outcome of ``blank`` cells blanked and units without a
    base period rebased on the panel's periods (:func:`_zone_piece_rows`); None when none
    of its units keeps an unexposed row."""
    meta = dpanel.frame._meta
    opts = {"tab": tab, "controls": controls, "blank": blank, "blank_in": outcome}
    rows = dpanel.frame.map_partitions(_zone_piece_rows, meta=meta, **opts)
    scans = compute_blocks([_scan], list(rows.to_delayed()), outcome=outcome)
    periods = np.unique(np.concatenate([s["periods"] for s in scans]))
    cohorts = np.unique(np.concatenate([s["cohorts"] for s in scans]))
    if periods.size == 0 or not (cohorts > periods[0]).any():
        return None
    span = (float(periods[0]), float(periods[-1]))
    grid = np.asarray(dpanel.periods, float)
    return _rows_panel(dpanel, outcome, _zone_piece_rows, window=span, rebase_on=grid, **opts)


def _rows_panel(
    dpanel: DaskPanel, outcome: str, select: Any, **kwargs: Any
) -> tuple[DaskPanel, pd.Series]:
    """``dpanel`` with the rows ``select(partition, **kwargs)`` keeps (cohorts recoded),
    persisted, and its target unit-periods by (cohort, time)."""
    frame = dpanel.frame.map_partitions(select, meta=dpanel.frame._meta, **kwargs).persist()
    scans = compute_blocks([_scan], list(frame.to_delayed()), outcome=outcome)
    n_units = int(sum(s["n_units"] for s in scans))
    if n_units == 0:
        raise PanelError("The exposure split left an empty panel (no units in this group).")
    piece = replace(
        dpanel,
        frame=frame,
        periods=np.unique(np.concatenate([s["periods"] for s in scans])).astype(np.int64),
        cohorts=np.unique(np.concatenate([s["cohorts"] for s in scans])),
        n_units=n_units,
        n_obs=int(sum(s["n_obs"] for s in scans)),
        n_never=int(sum(s["n_never"] for s in scans)),
    )
    return piece, _target_cells(scans)


def _target_cells(scans: list[dict[str, Any]]) -> pd.Series:
    """Target unit-periods (treated rows with an outcome) by (cohort, time), over the
    partitions."""
    counts = [s["target_cells"] for s in scans if len(s["target_cells"])]
    if not counts:
        return pd.Series(dtype=float)
    return pd.concat(counts).groupby(level=[0, 1]).sum()


def _cluster_of(
    dpanel: DaskPanel, units: pd.DataFrame, cluster: Any, canon: np.ndarray
) -> tuple[pd.Series, str]:
    """Each unit's cluster code, numbered in the canonical unit order (cohort, then the
    outcome by period) as the in-memory ``_clusters`` numbers them, and the clusters' name.
    ``cluster``: None or ``"unit"``, the panel's cluster column (its name or True), or
    labels as a pandas Series indexed by unit."""
    index = units.index
    if isinstance(cluster, pd.Series):
        lab = labels_by_unit(cluster).reindex(index)
        if lab.isna().any():
            u = lab.index[lab.isna().to_numpy()][0]
            raise SpecError(
                f"Cluster labels {cluster.name!r} have no value for unit {u!r}; the Series "
                "must be indexed by unit and cover every unit of the panel."
            )
        labels, name = lab.astype(str), str(cluster.name or "labels")
    elif uses_column(dpanel, cluster, "cluster"):
        labels, name = units["cluster"].astype(str), str(dpanel.cluster)
    else:
        labels, name = pd.Series(index.astype(str), index=index), "unit"
    ordered = labels.reindex(canon)
    pos = {lab: i for i, lab in enumerate(pd.unique(ordered.to_numpy()))}
    codes = labels.map(pos).astype(int)
    if len(pos) < 2:
        raise EstimationError(
            f"Clustered inference needs at least two clusters of {name!r}; the panel has one. "
            "Pass cluster='unit'."
        )
    return codes, name


def _piece_fit(
    name: str, res: Any, cells: pd.Series, cluster_of: pd.Series, n_clusters: int
) -> _PieceFit:
    """A piece's ATT and its cluster scores from the CS influence function, and its target
    unit-periods in the cells CS estimated (the others unidentified), as the in-memory
    ``_cs_fits`` forms them."""
    j = res.terms["term"].tolist().index("att")
    psi = res.term_influence[:, j] / res.term_influence.shape[0]
    estimate = res.coef("att")
    is_covered = cells.index.isin(_estimated_cells(res.att_gt))
    covered = cells[is_covered]
    if name == "spillover_on_zones" or (name != "naive" and not _att_weights_targets(res, covered)):
        estimate, psi = _target_weighted_att(res, covered)
    codes = cluster_of.reindex(res.units).to_numpy(int)
    score = np.bincount(codes, weights=psi, minlength=n_clusters)
    n = int(covered.sum())
    return _PieceFit(
        name,
        estimate,
        n,
        score,
        int(cells.sum()) - n,
        rescore=pd.Series(psi, index=res.units),
        unidentified=_lost_by_period(cells[~is_covered]),
    )


def _target_clusters(
    df: pd.DataFrame, *, outcome: str, cells: pd.MultiIndex, code_of: pd.Series
) -> np.ndarray:
    """Up to two cluster codes of a partition's estimated CS targets: its treated rows with
    an outcome in ``cells``, the post cells CS estimated (the in-memory ``_cs_targets``),
    coded by ``code_of`` (unit -> cluster code). Two are enough for the one-cluster rule
    (:func:`_one_cluster_terms` asks only whether a piece, or a term's pieces together,
    hold fewer than two clusters)."""
    post = ((df["time"] >= df["cohort"]) & df[outcome].notna()).to_numpy()
    in_cell = pd.MultiIndex.from_frame(df[["cohort", "time"]].astype(float)).isin(cells)
    units = df["unit"].to_numpy()[post & in_cell]
    return np.asarray(pd.unique(code_of.reindex(units).to_numpy(int)))[:2]


def _cs_held(
    pieces: Mapping[str, DaskPanel],
    results: Mapping[str, Any],
    fits: Mapping[str, _PieceFit],
    outcome: str,
    cluster_of: pd.Series,
) -> dict[str, set[int]]:
    """The clusters held by each CS piece's estimated targets (at most two each, which
    decides the rule exactly), as the in-memory ``_one_cluster`` finds them from
    ``_PieceFit.target_units``: one pass over every piece's partitions, in one compute."""
    import dask

    shared = dask.delayed(cluster_of, traverse=False)
    names = [k for k in fits if k in pieces and fits[k].n > 0]
    step = dask.delayed(_target_clusters, pure=True)
    tasks = []
    for name in names:
        cells = _estimated_cells(results[name].att_gt)
        parts = pieces[name].partitions()
        tasks.append([step(p, outcome=outcome, cells=cells, code_of=shared) for p in parts])
    found = dask.compute(*tasks)
    return {
        name: {int(c) for part in codes for c in part}
        for name, codes in zip(names, found, strict=True)
    }


def _lost_by_period(cells: pd.Series) -> tuple[tuple[Any, int], ...]:
    """Target counts by (cohort, time), or by time, as ``(period, count)`` pairs in period
    order, without empty periods (the in-memory ``_by_period``)."""
    by_time = cells.groupby(level=-1).sum() if len(cells) else cells
    return tuple((t, int(n)) for t, n in by_time.sort_index().items() if n > 0)


def _canonical_units(dpanel: DaskPanel, outcome: str) -> np.ndarray:
    """The units in :meth:`Panel.canonical_order` (cohort, the outcome by period, ties by
    the other numeric columns, through the same :func:`canonical_positions`): the order
    the in-memory fit numbers clusters in, so the joint multipliers match."""
    units, cohort, (wide,) = unit_tables(dpanel, [outcome])

    def tie_keys() -> TieKeys:
        # another pass over the partitions, only when units tie (same sorted units)
        tables = unit_tables(dpanel, tie_columns(dpanel, outcome))[2]
        return TieKeys(np.arange(len(units)), tables, [])

    return units.to_numpy()[canonical_positions(cohort, wide, tie_keys)]


def _with_bins(
    df: pd.DataFrame, *, bins: pd.DataFrame | None, intensity: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The partition with each row's exposure-intensity bin (``_aux``) from the units x
    periods table ``bins`` (one bin without it), and with ``intensity`` (same index and
    columns) its exposure intensity (``_scale``)."""
    tab = bins if bins is not None else intensity
    if tab is None:
        raise ValueError("_with_bins needs bins or intensity")
    r = tab.index.get_indexer(df["unit"])
    c = tab.columns.get_indexer(df["time"])
    if (r < 0).any() or (c < 0).any():
        k = int(np.flatnonzero((r < 0) | (c < 0))[0])
        raise PanelError(
            f"Unit {df['unit'].iat[k]!r} in period {df['time'].iat[k]!r} is not in the "
            "exposure map's intensity table (built from the panel's units and periods)."
        )
    out = df.assign(_aux=0 if bins is None else bins.to_numpy()[r, c].astype(np.int64))
    return out if intensity is None else out.assign(_scale=intensity.to_numpy()[r, c])


def _imputation_piece(
    name: str,
    piece: DaskPanel,
    outcome: str,
    by_cluster: bool,
    code_of_label: pd.Series,
    n_clusters: int,
    cells: pd.Series,
    bins: pd.DataFrame | None = None,
    intensity: pd.DataFrame | None = None,
    baseline: pd.DataFrame | None = None,
    adaptive: bool = False,
) -> tuple[_PieceFit, set[int], str]:
    """A piece's BJS mean and cluster scores (leave-out ``tau~`` by onset x event cells,
    split by ``bins`` for the spillover pieces, proportional to ``intensity`` within a cell
    when given, or with ``adaptive`` that or the cell means, whichever variance is smaller
    (in memory's ``_tighter_aux``; both from one step 1, one more pass for the scores); no
    small-sample correction; with ``baseline``, covariates by unit, their period terms in
    step 1), as the
    in-memory ``_imputation_fits`` with ``small_sample="none"``; a ring or zone piece with
    no imputable target is NaN there. Also the codes of the clusters holding its estimated
    targets (the in-memory one-cluster rule) and, with ``adaptive``, the model kept
    ("proportional" or "cell means"; "" otherwise)."""
    spill = name.startswith("spillover")
    refine, scaled = spill and bins is not None, spill and intensity is not None
    # a period needs k + 2 clean units with another clean row (in memory's
    # _without_thin_periods with k covariates)
    k = 0 if baseline is None else baseline.shape[1]
    if refine or scaled:
        import dask

        meta = piece.frame._meta.assign(_aux=np.zeros(0, np.int64))
        if scaled:
            meta = meta.assign(_scale=np.zeros(0))
        # one graph node per table, not a copy hashed into every partition's task
        shared = None if bins is None else dask.delayed(bins, traverse=False)
        tab = None if intensity is None else dask.delayed(intensity, traverse=False)
        frame = piece.frame.map_partitions(_with_bins, bins=shared, intensity=tab, meta=meta)
        piece = replace(piece, frame=frame)
    opts: dict[str, Any] = {
        "leave_out": True, "aux_cells": refine, "min_untreated": 2 + k, "pool_lone": True
    }  # fmt: skip
    try:
        f = imputation_scores(
            piece, outcome, [], by_cluster, "cohort_event", scaled=scaled, baseline=baseline,
            also_cell_means=adaptive, **opts,
        )  # fmt: skip
        model = ""
        if f.scores_cell_means is not None:
            model = "proportional"
            if _sum_sq(f.scores_cell_means) < _sum_sq(f.scores):
                f, model = replace(f, scores=f.scores_cell_means), "cell means"
    except SingularModel as exc:
        # collinear covariate terms refuse the fit, whichever piece, as in memory
        raise SingularModel(f"Piece {name!r}: {exc}") from None
    except EstimationError as exc:
        if name == "direct":
            raise
        # as in memory: the periods left out for too few clean units, targets or not
        left: tuple[tuple[Any, int], ...] = ()
        if isinstance(exc, NothingImputable):
            left = tuple((piece.periods[t], int(exc.at_drop[t])) for t in np.flatnonzero(exc.thin))
        return _PieceFit(
            name, np.nan, 0, np.zeros(n_clusters), int(cells.sum()), left_out=left,
            unidentified=_lost_by_period(cells),
        ), set(), ""  # fmt: skip
    codes = code_of_label.reindex(f.scores.index).to_numpy(int)
    score = np.bincount(codes, weights=f.scores.iloc[:, 0].to_numpy(float), minlength=n_clusters)
    n_unidentified = int(sum(m[2] for m in f.meta))
    # periods left out for too few clean units, as in memory (_without_thin_periods)
    left_out = tuple((piece.periods[t], int(f.thin_units[t])) for t in np.flatnonzero(f.thin))
    lost = np.sum([m[4] for m in f.meta], axis=0)
    held = set(code_of_label.reindex(list(f.target_clusters)).to_numpy(int).tolist())
    return _PieceFit(
        name, float(f.est[0]), int(f.ctx["n1"]), score, n_unidentified, left_out=left_out,
        unidentified=tuple((piece.periods[t], int(lost[t])) for t in np.flatnonzero(lost)),
    ), held, model  # fmt: skip


def _sum_sq(scores: pd.DataFrame) -> float:
    """The variance ``sum_c score_c^2`` of a piece's mean from its cluster scores."""
    score = scores.iloc[:, 0].to_numpy(float)
    return float(score @ score)


def _imputation_fits(
    dpanel: DaskPanel,
    outcome: str,
    tab: pd.DataFrame,
    rings: list[Any],
    rule: dict[str, str],
    units: pd.DataFrame,
    cluster: Any,
    bins: pd.DataFrame | None = None,
    intensity: pd.DataFrame | None = None,
    src: pd.MultiIndex | None = None,
    baseline: pd.DataFrame | None = None,
    adaptive: bool = False,
) -> tuple[dict[str, _PieceFit], str, int, dict[str, set[int]], dict[str, str]]:
    """Every piece of the imputation base on the partitions, with scores numbered in the
    in-memory cluster order; the cluster name and count; the clusters holding each
    piece's estimated targets; the ``tau~`` model each spillover piece kept under
    ``adaptive`` (``info["aux_models"]``). ``bins``: exposure-intensity bins
    of the spillover pieces' ``tau~`` cells (units x periods); ``intensity``: the exposure
    intensity their ``tau~`` is proportional to within a cell. ``src``: the source-only
    cells (:func:`_source_cells`), the targets of the source pieces, split off the ring
    pieces and ``spillover_on_zones`` as in memory (a ring of sources alone has no piece).
    ``baseline``: covariates by unit (every piece's covariate-by-period terms).
    ``adaptive``: each spillover piece's ``tau~`` proportional to ``intensity`` or the cell
    means, whichever variance is smaller (:func:`_imputation_piece`)."""
    if isinstance(cluster, pd.Series):
        raise SpecError(
            "The imputation base on Dask clusters by unit or by the panel's cluster column "
            "(read_panel(..., cluster='column')): its leave-out averages are taken within "
            "the clusters in the partitions, so labels passed as a Series are not supported."
        )
    by_cluster = uses_column(dpanel, cluster, "cluster")
    cluster_of, cname = _cluster_of(dpanel, units, cluster, _canonical_units(dpanel, outcome))
    labels = units["cluster"] if by_cluster else pd.Series(units.index, index=units.index)
    code_of_label = (
        pd.Series(cluster_of.to_numpy(), index=labels.to_numpy())
        .groupby(level=0, sort=False)
        .first()
    )
    G = int(cluster_of.max()) + 1
    panels: dict[str, tuple[DaskPanel, pd.Series]] = {
        "direct": _piece_panel(dpanel, outcome, tab, None, rule)
    }
    cohort = units["cohort"].reindex(tab.index)
    src_units = pd.Index([]) if src is None else src.get_level_values(0).unique()
    non_zone = tab.index[~np.isfinite(cohort.to_numpy(float))]
    src_rings = tab.loc[tab.index.isin(src_units.intersection(non_zone)), "ring"].unique()
    counted = _rings_with_counted_cells(tab, dpanel.periods, src)
    for r in rings:
        if r not in src_rings or r in counted:
            pp = _piece_panel(dpanel, outcome, tab, r, rule, window=False, src=src)
            panels[f"spillover:{r}"] = pp
    zone_opts = {"tab": tab, "controls": rule["controls"], "src": src}
    if ((tab["role"] == "direct") & (tab["exposure_onset"] < cohort)).any():
        zp = _rows_panel(dpanel, outcome, _zone_piece_rows, **zone_opts)
        if zp[1].sum() > 0:
            panels["spillover_on_zones"] = zp
    if src is not None and len(src_rings):
        panels[SOURCE_PIECES[0]] = _rows_panel(
            dpanel, outcome, _source_piece_rows, tab=tab, controls=rule["controls"], src=src,
            rings=list(src_rings),
        )  # fmt: skip
    if src is not None and src_units.difference(non_zone).size:
        zp = _rows_panel(dpanel, outcome, _zone_piece_rows, sources=True, **zone_opts)
        if zp[1].sum() > 0:
            panels[SOURCE_PIECES[1]] = zp
    naive = compute_blocks([_scan], dpanel.partitions(), outcome=outcome)
    panels["naive"] = (dpanel, _target_cells(naive))
    done = {
        name: _imputation_piece(
            name,
            pp,
            outcome,
            by_cluster,
            code_of_label,
            G,
            cells,
            bins,
            intensity,
            baseline,
            adaptive,
        )  # fmt: skip
        for name, (pp, cells) in panels.items()
    }
    fits = {name: fit for name, (fit, _, _) in done.items()}
    held = {name: clusters for name, (fit, clusters, _) in done.items() if fit.n > 0}
    models = {name: m for name, (fit, _, m) in done.items() if m and fit.n > 0}
    return fits, cname, G, held, models


def _observed_zone_cover(
    emap: ExposureMap,
    units: pd.DataFrame,
    periods: np.ndarray,
    observed: pd.DataFrame,
    pre_exposed: str = "drop_rows",
    clean: np.ndarray | None = None,
) -> tuple[np.ndarray, sparse.csr_matrix, pd.Index, np.ndarray, np.ndarray] | None:
    """Units x periods: whether a zone of the sample linked to the unit in the map (a zone
    unit of the panel other than the unit itself) is open with an estimated gain then, the
    in-memory rule (``spillover._counted_gain``): its outcome observed, and an untreated
    row of its own (before its zone, and under ``"drop_rows"`` before its exposure onset;
    ``"drop_units"`` counts the zone units it drops as before). ``observed``: the zone
    units' observed (``unit``, ``time``) pairs (:func:`_units_and_zone_periods`). Also
    the links (units x zones, :meth:`ExposureMap.link_matrix`), the zones, their
    observed matrix and their counted gains (zones x periods). None for
    a map without links (it knows no sources). ``clean``: the periods in which the direct
    piece has a clean row (:func:`_clean_periods`; BJS's step 1 imputes a gain only there,
    as ``_counted_gain`` asks); None takes every period to hold one."""
    if emap.links is None or emap.links.empty:
        return None
    g = units["cohort"].to_numpy(float)
    zones = units.index[np.isfinite(g)]
    seen = _cell_mask(zones, periods, observed)
    gz = g[np.isfinite(g)][:, None]
    ez = emap.roles_of(zones)["exposure_onset"].to_numpy(float)[:, None]
    before = periods[None, :] < (np.minimum(gz, ez) if pre_exposed == "drop_rows" else gz)
    if clean is None:
        untreated = (seen & before).any(axis=1, keepdims=True)
    else:
        # an untreated row in a period whose clean rows step 1 keeps (_clean_periods)
        kept = np.isin(periods, clean)[None, :]
        untreated = (seen & before & kept).any(axis=1, keepdims=True) & kept
    if pre_exposed == "drop_units":
        # the dropped zone units count as before, whatever the period (_counted_gain)
        untreated = untreated | (ez < gz)
    gain = seen & (gz <= periods[None, :]) & untreated
    links = emap.link_matrix(units.index, zones)
    return np.asarray(links @ gain.astype(float)) > 0, links, zones, seen, gain


def _exposed_cells(tab: pd.DataFrame, units: pd.DataFrame, t: np.ndarray) -> np.ndarray:
    """Units of ``tab`` x periods ``t`` (a row): the exposed cells, from each non-clean
    unit's exposure onset on (a zone unit's until its own zone), observed or not."""
    e = tab["exposure_onset"].to_numpy(float)[:, None]
    g = units["cohort"].reindex(tab.index).to_numpy(float)[:, None]
    return (tab["role"] != "clean").to_numpy()[:, None] & (t >= e) & (t < g)


def _source_cells(
    emap: ExposureMap,
    tab: pd.DataFrame,
    units: pd.DataFrame,
    periods: np.ndarray,
    observed: pd.DataFrame | None,
    pre_exposed: str,
    clean: np.ndarray | None = None,
) -> pd.MultiIndex | None:
    """The (``unit``, ``time``) cells exposed only by zones whose gain is in no total: the
    in-memory ``_source_only`` rule (zones outside the sample, or zone units of the sample
    without an estimated gain then, :func:`_observed_zone_cover`), for exposed units from
    their exposure onset and zone units from it until their own zone. None when there are
    none."""
    t = np.asarray(periods, float)[None, :]
    hit = _exposed_cells(tab, units, t)
    found = (
        None
        if observed is None
        else _observed_zone_cover(emap, units, t[0], observed, pre_exposed, clean)
    )
    if found is None:
        hit = hit & (t < tab["exposure_onset_sample"].to_numpy(float)[:, None])
    else:
        hit = hit & ~found[0]
    i, j = np.nonzero(hit)
    if not i.size:
        return None
    return pd.MultiIndex.from_arrays([tab.index.to_numpy()[i], t[0, j]], names=["unit", "time"])


def _cell_mask(index: pd.Index, periods: np.ndarray, cells: Any) -> np.ndarray:
    """Units (``index``) x ``periods``: whether each cell is one of ``cells`` (a
    (``unit``, ``time``) MultiIndex, or a frame of such pairs; None: none)."""
    out = np.zeros((len(index), len(periods)), dtype=bool)
    if cells is None or len(cells) == 0:
        return out
    if isinstance(cells, pd.DataFrame):
        u, t = cells["unit"].to_numpy(), cells["time"].to_numpy(float)
    else:
        u, t = cells.get_level_values(0).to_numpy(), cells.get_level_values(1).to_numpy(float)
    i = index.get_indexer(u)
    j = pd.Index(np.asarray(periods, float)).get_indexer(t)
    ok = (i >= 0) & (j >= 0)
    out[i[ok], j[ok]] = True
    return out


def _unseen_cells(
    dpanel: DaskPanel,
    outcome: str,
    tab: pd.DataFrame,
    units: pd.DataFrame,
    src: pd.MultiIndex | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The units with exposed cells that a zone with an estimated gain exposes (not in
    ``src``) but that have no outcome, and those cells (units x periods): the in-memory
    ``_masks``'s ``unseen``, for ``unobserved_note``. Only units with fewer rows with an
    outcome than periods can have one; their observed pairs take one more pass, only when
    there are such units."""
    periods = np.asarray(dpanel.periods, float)
    want = _exposed_cells(tab, units, periods[None, :]) & ~_cell_mask(tab.index, periods, src)
    short = units["n_observed"].reindex(tab.index).to_numpy(float) < len(periods)
    cand = want.any(axis=1) & short
    if not cand.any():
        return None
    who = tab.index[cand]
    pairs = compute_blocks(
        [_observed_pairs], dpanel.partitions(), outcome=outcome, units=who.to_numpy()
    )
    unseen = want[cand] & ~_cell_mask(who, periods, pd.concat(pairs))
    return (who.to_numpy(), unseen) if unseen.any() else None


def _observed_pairs(df: pd.DataFrame, *, outcome: str, units: np.ndarray) -> pd.DataFrame:
    """The (``unit``, ``time``) pairs of a partition's rows of ``units`` with an outcome."""
    keep = df["unit"].isin(units).to_numpy() & np.isfinite(df[outcome].to_numpy(float))
    return df.loc[keep, ["unit", "time"]].drop_duplicates()


def _rings_with_counted_cells(
    tab: pd.DataFrame, periods: np.ndarray, src: pd.MultiIndex | None
) -> set[Any]:
    """Rings with an exposed cell (unit x period from its exposure onset, observed or not)
    outside ``src``: a ring piece exists when it has one or no source-only cell at all
    (the in-memory ``_masks``: a ring of sources alone has no piece, a ring whose counted
    rows all lack an outcome has an empty one)."""
    t = np.asarray(periods, float)[None, :]
    exposed = (tab["role"] == "exposed").to_numpy()[:, None] & (
        t >= tab["exposure_onset"].to_numpy(float)[:, None]
    )
    exposed &= ~_cell_mask(tab.index, periods, src)
    return set(tab["ring"].to_numpy()[exposed.any(1)].tolist())


def _pure_source_units(
    emap: ExposureMap,
    tab: pd.DataFrame,
    units: pd.DataFrame,
    periods: np.ndarray,
    is_src: np.ndarray,
    obs: np.ndarray,
    observed: pd.DataFrame,
    no_untreated: np.ndarray,
    pre_exposed: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Units (masks over ``tab``) with an unexposed period and an observed source-only row
    (``is_src`` and ``obs``, units x periods) under the imputation base's gain rule and the
    CS base's (an untreated row of its own, :func:`_zones_without_untreated`,
    ``no_untreated``): non-zone units without another observed exposed row (``pure``), and
    non-zone units with one and zone units exposed before their zone (``mixed``): the
    in-memory ``_cs_source_units``. The CS base leaves the pure units out of its ring
    pieces and blanks the mixed units' outcome in their source-only rows there and in
    ``spillover_on_zones``, and counts those rows under the source pieces (unestimated).
    ``observed``: the zone units' observed pairs (their gains)."""
    t = np.asarray(periods, float)[None, :]
    e = tab["exposure_onset"].to_numpy(float)[:, None]
    gu = units["cohort"].reindex(tab.index).to_numpy(float)[:, None]
    role = tab["role"].to_numpy()[:, None]
    exposed_rows = (role == "exposed") | ((role == "direct") & (t < gu))
    seen_rows = exposed_rows & (t >= e) & (e > t.min()) & obs
    taken = (seen_rows & is_src).any(1)
    if taken.any() and emap.links is not None and not emap.links.empty:
        zones = units.index[np.isfinite(units["cohort"].to_numpy(float))]
        seen = _cell_mask(zones, periods, observed)
        gz = units["cohort"].reindex(zones).to_numpy(float)[:, None]
        keep = ~zones.isin(no_untreated)[:, None]
        if pre_exposed == "drop_units":
            ez = tab["exposure_onset"].reindex(zones).to_numpy(float)[:, None]
            keep = keep & ~(ez < gz)
        gain = seen & (t >= gz) & keep
        cs_cover = np.asarray(emap.link_matrix(units.index, zones) @ gain.astype(float)) > 0
        taken &= ~(seen_rows & is_src & cs_cover).any(1)
    counted = (seen_rows & ~is_src).any(1)
    zone = np.isfinite(gu[:, 0])
    return taken & ~counted & ~zone, taken & (counted | zone)


def _start_rows(
    tab: pd.DataFrame,
    units: pd.DataFrame,
    periods: np.ndarray,
    observed: pd.DataFrame,
    is_src: np.ndarray,
) -> pd.DataFrame:
    """The observed exposed rows (``time``, ``piece``, ``source``, ``late``) of units
    exposed from the first period, which no base estimates (no unexposed row): a non-zone
    unit's are its ring's, a zone unit's before its zone ``spillover_on_zones``'s, and
    those exposed only by zones whose gain is in no total (``source``: ``is_src``, units x
    periods, from :func:`_source_cells`) the source pieces'. ``late``: at or after the
    unit's sample onset. ``observed``: (``unit``, ``time``) pairs with an outcome, these
    units' included (:func:`_units_and_zone_periods`)."""
    first = float(np.min(periods))
    start = tab.index[(tab["role"] != "clean") & (tab["exposure_onset"] <= first)]
    rows = observed[observed["unit"].isin(start)]
    cols = ["time", "piece", "source", "late"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    u, t = rows["unit"].to_numpy(), rows["time"].to_numpy(float)
    g = units["cohort"].reindex(u).to_numpy(float)
    u, t, g = u[t < g], t[t < g], g[t < g]
    e_est = tab["exposure_onset_sample"].reindex(u).to_numpy(float)
    i = tab.index.get_indexer(u)
    j = pd.Index(np.asarray(periods, float)).get_indexer(t)
    source = is_src[i, j]
    ring = "spillover:" + tab["ring"].reindex(u).astype(str).to_numpy(object)
    piece = np.where(np.isfinite(g), "spillover_on_zones", ring)
    return pd.DataFrame({"time": t, "piece": piece, "source": source, "late": t >= e_est})


def _with_start_rows(
    fits: dict[str, _PieceFit], rows: pd.DataFrame, n_clusters: int, rings: list[Any]
) -> dict[str, _PieceFit]:
    """The CS fits with the unidentified targets of units exposed from the first period
    (:func:`_start_rows`) counted where the in-memory fit counts them: the rows exposed
    only by zones whose gain is in no total under the source pieces, the others under
    their ring or ``spillover_on_zones``. Such units leave the CS pieces
    (``outside_window="adjust"``), which counted only the zone rows from the sample onset
    (:func:`_zone_loss_rows`): the rings' rows went unreported. (The imputation base's
    pieces hold these rows as targets without an untreated row, :func:`_source_cells`.)"""
    if rows.empty:
        return fits
    zone = rows["piece"] == "spillover_on_zones"
    counted = zone & rows["late"]
    moved = pd.concat(
        [
            rows.loc[counted].assign(k=-1),
            rows.assign(
                k=1,
                piece=np.where(
                    rows["source"],
                    np.where(zone, SOURCE_PIECES[1], SOURCE_PIECES[0]),
                    rows["piece"],
                ),
            ),
        ]
    )
    out = dict(fits)
    for name, d in moved.groupby("piece", sort=False):
        by = d.groupby("time")["k"].sum()
        if not by.any():
            continue
        f = out.get(name) or _PieceFit(name, np.nan, 0, np.zeros(n_clusters))
        f = _recount(f, int(by.sum()), tuple((t, int(k)) for t, k in by.items()))
        if f.n or f.n_unidentified:
            out[name] = f
        else:
            # every row it had moved to a source piece: gone, as in memory
            del out[name]
    return _in_piece_order(out, rings)


def _refuse_source_targets(
    emap: ExposureMap,
    units: pd.DataFrame,
    periods: Any,
    base_estimator: str,
    observed: pd.DataFrame | None = None,
    pre_exposed: str = "drop_rows",
    leave: np.ndarray | None = None,
    obs: np.ndarray | None = None,
    clean: np.ndarray | None = None,
) -> None:
    """Refuse a map whose units are exposed in some periods only by zones whose gain is in
    no total: zones outside the sample (``exposure_onset <= t < exposure_onset_sample``,
    :func:`source_only_refusal`), or, with ``observed`` (the zone units' observed periods,
    :func:`_units_and_zone_periods`), zone units of the sample without an estimated gain
    in that period (:func:`_observed_zone_cover`: outcome missing then, or no untreated
    row of their own): a unit-period (i, t) from i's exposure onset (for a zone unit,
    before its own zone) is source-only when no zone unit of the panel linked to i in the
    map, open at t, has an estimated gain at t. The imputation base (either engine)
    reports those apart (``spillover_from_sources``), which this engine's CS pieces,
    cohorts from the exposure onset, cannot. Counted on the map and the panel's periods,
    for units with an unexposed period (those exposed from the first period leave the
    pieces, as in memory), other than ``leave`` (:func:`_pure_source_units`, which the CS
    base leaves out of its ring pieces); with ``obs`` (units x periods), only the rows
    with an outcome count, as in memory. When every zone unit has an estimated gain from
    its opening on, or the map has no links, both rules are the first one."""
    tab = emap.roles_of(units.index)
    period_values = np.asarray(periods)
    t = period_values.astype(float)[None, :]
    e = tab["exposure_onset"].to_numpy(float)[:, None]
    e_est = tab["exposure_onset_sample"].to_numpy(float)[:, None]
    # units exposed from the first period leave the pieces (no unexposed row), as in memory
    hit = _exposed_cells(tab, units, t) & (e > t.min())
    if leave is not None:
        hit &= ~tab.index.isin(leave)[:, None]
    if obs is not None:
        hit &= obs
    outside = hit & (t < e_est)
    n = int(outside.sum())
    where = f"The Dask spillover fit (base_estimator={base_estimator!r})"
    found = (
        None
        if observed is None
        else _observed_zone_cover(emap, units, t[0], observed, pre_exposed, clean)
    )
    if found is not None:
        cover, links, zones, seen, _ = found
        gap = hit & ~outside & ~cover
        if gap.any():
            i, j = (int(k[0]) for k in np.nonzero(gap))
            unit = _v(units.index[i])
            linked = zones[links[i].indices]
            open_z = linked[units["cohort"].reindex(linked).to_numpy(float) <= t[0, j]]
            if len(open_z):
                z = _v(open_z[0])
                why = (
                    "has no untreated row of its own, or no clean row shares that period"
                    if seen[zones.get_loc(z), j]
                    else "has no outcome then"
                )
                example = (
                    f"the zone unit {z!r} linked to it, open since {units['cohort'].at[z]:g}, {why}"
                )
            else:
                example = "no zone unit linked to it and open then has an estimated gain"
            more = (
                f"; {n} more are exposed only by zones outside the estimation sample" if n else ""
            )
            raise EstimationError(
                f"{where}: {int(gap.sum())} exposed unit-period(s) are exposed only by zone "
                "units of the sample without an estimated gain in that period (outcome "
                "missing then, no untreated row of their own, or no clean row in that period; "
                "e.g. unit "
                f"{unit!r} in period {period_values[j]}: {example}){more}. A zone "
                "without an estimated gain has no direct target in that period, so its gain is in "
                "no total while its neighbours' losses would count in spillover_total, net "
                "and the displacement share. This engine's CS pieces, cohorts from the "
                "exposure onset, cannot split those unit-periods off where the zones' gains "
                "differ between the two bases' rules (an untreated row of its own suffices "
                "for the CS base; the imputation base also needs a clean row in that period); "
                "the imputation base reports them apart (spillover_from_sources): use "
                "base_estimator='imputation' (on this engine or in memory)."
            )
    if n:
        raise source_only_refusal(n, where)


def _check_options(
    base_estimator: Any, controls: Any, pre_exposed: Any, n_boot: Any, base_options: Any
) -> dict[str, Any]:
    if base_estimator not in ("callaway_santanna", "imputation"):
        raise SpecError(
            f"base_estimator={base_estimator!r} is not available on the Dask engine; use "
            "'callaway_santanna' or 'imputation'."
        )
    if base_estimator == "imputation" and base_options:
        raise SpecError(
            f"base_options {sorted(base_options)} apply to base_estimator='callaway_santanna'; "
            "the imputation base on Dask takes none."
        )
    check_choice(controls, "controls", _CONTROLS)
    check_choice(pre_exposed, "pre_exposed", _PRE_EXPOSED)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise SpecError(f"n_boot must be a whole number >= 0; received {n_boot!r}.")
    options = dict(base_options or {})
    _refuse_event_window(options)
    refused = sorted(set(options) & {"weights", "covariates", "bootstrap", "cluster"})
    if refused:
        raise SpecError(
            f"base_options {refused} are not available on the Dask spillover fit (pass "
            "covariates= to the fit, which applies them to every piece; no weights on this "
            "engine; inference is the joint one)."
        )
    return {"est_method": "dr", **options, "bootstrap": False}


def _check_covariates(dpanel: DaskPanel, covariates: Any) -> tuple[str, ...]:
    """The covariates as names of the panel's covariates (either base)."""
    covs = tuple(check_names(covariates, "covariates"))
    if covs:
        check_covariates_read(dpanel, covs)
    return covs


def fit(
    dpanel: DaskPanel,
    *,
    outcome: str,
    exposure: ExposureMap,
    base_estimator: str = "callaway_santanna",
    covariates: Sequence[str] | None = None,
    controls: str = "not_yet_exposed",
    pre_exposed: str = "drop_rows",
    cluster: str | bool | pd.Series | None = None,
    n_boot: int = 999,
    rng: np.random.Generator | int | None = None,
    alpha: float = 0.05,
    base_options: Mapping[str, Any] | None = None,
    aux_partition: str = "onset_event_adaptive",
) -> SpilloverResult:
    """Direct, spillover, net effect and displacement share on a :class:`DaskPanel`.

    Butts (2021, Section 3.2) ring estimator with Callaway & Sant'Anna (2021) or
    Borusyak, Jaravel & Spiess (2024) per piece; equal to
    :func:`zoneimpact.estimators.spillover.fit` with the same base, map, options and
    ``rng``, and ``small_sample="none"``: the imputation base without CR2, the CS base
    with its analytic influence-function SEs (the in-memory default, the delete-one-cluster
    jackknife, refits every piece without each cluster's rows).

    Parameters
    ----------
    dpanel : DaskPanel
        From :func:`zoneimpact.distributed.read_panel`.
    outcome : str
        Outcome in levels.
    exposure : ExposureMap
        Built by the caller on the unit table; its units and cohorts must be the panel's.
    base_estimator : {"callaway_santanna", "imputation"}
        CS per piece (this engine's default: the in-memory default is the imputation
        base), or BJS imputation per piece, its scores with
        leave-out ``tau~`` and without the CR2 correction (``small_sample="none"`` in
        memory; CR2 needs every cluster's rows together). Clusters: by unit or the panel's
        cluster column (not a Series).
    covariates : list of str, optional
        Covariates read with the panel (``read_panel(..., covariates=)``) for conditional
        parallel trends, as the in-memory bases apply them: doubly robust (Sant'Anna & Zhao
        2020) on every CS piece and the naive fit; baseline x period terms in every
        imputation piece's step 1. The same checks of each unit's baseline (its first
        period with every covariate observed).
    controls : {"not_yet_exposed", "never_exposed"}
        Clean controls (:meth:`ExposureMap.panels`); the in-memory fit's default.
    pre_exposed : {"drop_rows", "drop_units", "keep"}
        Zone units exposed before their own zone; the in-memory fit's default.
    cluster : str, bool or pandas.Series, optional
        ``"unit"``: by unit; the panel's cluster column (its name as read, or True); or
        labels as a Series indexed by unit (e.g. regions from the unit table). None (the
        default): the panel's cluster column when it was read with one (as the in-memory
        fit defaults to the regions), else by unit.
    n_boot : int
        Joint multiplier-bootstrap draws (0: delta-method SE of the displacement share).
    rng : Generator or int, optional
        Source of the draws.
    alpha : float
        Level of the stored confidence intervals.
    base_options : dict, optional
        Options of the CS base (e.g. ``{"control_group": "not_yet_treated"}``);
        ``min_e``/``max_e``/``balance_e`` are refused (the totals count every
        post-treatment unit-period).
    aux_partition : str
        Imputation base: the spillover pieces' ``tau~`` cells and model, as in memory
        (the intensities and their bins come from the map and the panel's periods, on the
        client, shipped once).

    Returns
    -------
    SpilloverResult
        Terms as in memory (without ``net_region_did``); ``info["engine"] = "dask"``.
    """
    check_dask_panel(dpanel, outcome)
    alpha = check_alpha(alpha)
    # as the in-memory scale_equivariant: the outcome divided by a power of two (exact)
    # outside [2^-64, 2^64], the result rescaled (y x 1e160 gave every SE inf)
    dpanel, c = scaled_panel(dpanel, outcome)
    if cluster is None and dpanel.cluster is not None:
        # as in memory, where clusters default to the regions: the shocks are regional and
        # unit clusters under-cover (issue 14); the column read is the caller's grouping
        cluster = True
    opts = _check_options(base_estimator, controls, pre_exposed, n_boot, base_options)
    covs = _check_covariates(dpanel, covariates)
    check_choice(aux_partition, "aux_partition", tuple(_AUX_PARTITIONS))
    generator = as_generator(rng)
    # one pass: the units, and the zone units' observed periods when the map has links or
    # the base is CS (its direct piece leaves out zone units without an untreated row)
    linked = exposure.links is not None and not exposure.links.empty
    first = float(np.min(dpanel.periods))
    table = exposure.table
    start = table.index[(table["role"] != "clean") & (table["exposure_onset"] <= first)]
    zones = linked or base_estimator == "callaway_santanna" or len(start) > 0
    blocks = compute_blocks(
        [_units_and_zone_periods],
        dpanel.partitions(),
        outcome=outcome,
        zones=zones,
        start=np.asarray(start),
        covs=covs,
    )
    units = pd.concat([b[0] for b in blocks]).sort_index()
    tab = _check_map(units, exposure)
    baseline = None
    if covs:
        # the in-memory refusals and warning on the baseline (stacklevel: the caller of fit)
        first_rows = pd.concat([b[2] for b in blocks]).sort_index()  # in memory's order
        baseline = baseline_values(first_rows, units.index, units["cohort"], covs, stacklevel=3)
    observed = pd.concat([b[1] for b in blocks]) if zones else None
    rule = {"controls": controls, "pre_exposed": pre_exposed}
    # the periods in which BJS's step 1 can impute a zone's gain (a clean row of the direct
    # piece then): a zone without one in a period exposes its neighbours as a source
    clean = (
        _clean_periods(dpanel, tab, outcome, rule, thin=base_estimator == "imputation", k=len(covs))
        if linked
        else None
    )
    rings = [r for r in exposure.rings if ((tab["role"] == "exposed") & (tab["ring"] == r)).any()]
    naive = compute_blocks([_scan], dpanel.partitions(), outcome=outcome)
    results: dict[str, EstimationResult] = {}
    bins = intensity = None
    models: dict[str, str] = {}
    pure_note = ""
    if base_estimator == "imputation":
        grid, inten = _aux_tables(exposure, units.index, dpanel.periods, aux_partition)
        if grid is not None:
            bins = pd.DataFrame(grid.astype(np.int8), index=units.index, columns=dpanel.periods)
        if inten is not None:
            intensity = pd.DataFrame(inten, index=units.index, columns=dpanel.periods)
        src = _source_cells(
            exposure, tab, units, dpanel.periods, observed if linked else None, pre_exposed, clean
        )
        fits, cname, n_clusters, held, models = _imputation_fits(
            dpanel, outcome, tab, rings, rule, units, cluster, bins, intensity, src, baseline,
            aux_partition in _ADAPTIVE_AUX,
        )  # fmt: skip
    else:
        # as in memory: the CS base's SEs run small (stacklevel 3: the caller of fit)
        assert observed is not None
        no_untreated, left_rows = _zones_without_untreated(tab, units, observed, pre_exposed)
        seen = observed if linked else None
        src = _source_cells(exposure, tab, units, dpanel.periods, seen, pre_exposed, clean)
        is_src = _cell_mask(tab.index, dpanel.periods, src)
        # the observed rows of the non-zone units with a source-only cell (one more pass,
        # only then): the in-memory rules count targets, i.e. rows with an outcome
        cand = tab.index[is_src.any(1) & (tab["role"] == "exposed").to_numpy()]
        pairs = [observed]
        if len(cand):
            pairs += compute_blocks(
                [_observed_pairs], dpanel.partitions(), outcome=outcome, units=cand.to_numpy()
            )
        obs = _cell_mask(tab.index, dpanel.periods, pd.concat(pairs))
        is_pure, is_mixed = _pure_source_units(
            exposure, tab, units, dpanel.periods, is_src, obs, observed, no_untreated,
            pre_exposed,
        )  # fmt: skip
        pure = tab.index[is_pure].to_numpy()
        taken = tab.index[is_pure | is_mixed].to_numpy()
        _refuse_source_targets(
            exposure, units, dpanel.periods, base_estimator, seen, pre_exposed, taken, obs, clean
        )
        i, j = np.nonzero(is_src & obs & is_mixed[:, None])
        blank = pd.MultiIndex.from_arrays(
            [tab.index.to_numpy()[i], np.asarray(dpanel.periods, float)[j]], names=["unit", "time"]
        )
        _warn_cs_inference(stacklevel=3, dask=True)
        left_out = tab.index.isin(no_untreated)
        direct_tab = tab.assign(role=tab["role"].mask(left_out, "left_out"))
        # units without a base period are long-differenced from their last untreated row
        grid = np.asarray(dpanel.periods, float)
        pieces: dict[str, tuple[DaskPanel, pd.Series]] = {
            "direct": _piece_panel(dpanel, outcome, direct_tab, None, rule, rebase_on=grid)
        }
        leave = pure if len(pure) else None
        for r in rings:
            ring_piece = _piece_panel(
                dpanel, outcome, tab, r, rule, leave=leave, blank=blank, rebase_on=grid
            )
            # as in memory (_without_units): a ring left with no treated unit once its
            # source-only units leave has no piece
            left = (tab["ring"] == r).to_numpy() & tab.index.isin(pure)
            if not (left.any() and len(ring_piece[0].cohorts) == 0):
                pieces[f"spillover:{r}"] = ring_piece
        lost = compute_blocks([_zone_loss_rows], dpanel.partitions(), tab=tab, outcome=outcome)
        soz_targets = pd.concat(lost).groupby(level=0).sum() if lost else pd.Series(dtype=int)
        n_soz = int(soz_targets.sum())
        zp = _zone_panel(dpanel, outcome, tab, rule["controls"], blank) if n_soz else None
        if zp is not None:
            pieces["spillover_on_zones"] = zp
        pieces["naive"] = (dpanel, _target_cells(naive))
        for name, (pp, _) in list(pieces.items()):
            try:
                with _piece_warnings(name):
                    results[name] = cs_fit(pp, outcome=outcome, covariates=list(covs), **opts)
            except EstimationError:
                # as in memory: no cell of this piece estimable, all its targets unidentified
                if name != "spillover_on_zones":
                    raise
                del pieces[name]
        gt = results["naive"].group_time  # type: ignore[attr-defined]
        cluster_of, cname = _cluster_of(dpanel, units, cluster, gt.units[gt.order])
        n_clusters = int(cluster_of.max()) + 1
        fits = {
            name: _piece_fit(name, results[name], cells, cluster_of, n_clusters)
            for name, (_, cells) in pieces.items()
        }
        if len(left_rows):
            by = tuple((t, int(k)) for t, k in left_rows.value_counts().sort_index().items())
            fits["direct"] = _recount(fits["direct"], len(left_rows), by)
        soz = fits.get("spillover_on_zones")
        if soz is not None:
            covered = pieces["spillover_on_zones"][1]
            gt_cells = results[soz.name].att_gt  # type: ignore[attr-defined]
            covered = covered[covered.index.isin(_estimated_cells(gt_cells))]
            by_time = covered.groupby(level=-1).sum() if len(covered) else covered
            soz_targets = soz_targets.sub(by_time, fill_value=0)
        fits = _with_zone_losses(fits, n_soz, n_clusters, _lost_by_period(soz_targets))
        frames = {name: pp for name, (pp, _) in pieces.items()}
        held = _cs_held(frames, results, fits, outcome, cluster_of)
        rows = _start_rows(tab, units, dpanel.periods, observed, is_src)
        if len(taken):
            lost = is_src & obs & (is_pure | is_mixed)[:, None]
            i, j = np.nonzero(lost)
            times = np.asarray(dpanel.periods, float)[j]
            # a zone unit's are spillover_on_zones's, counted there (_zone_loss_rows) from
            # its sample onset: moved to the source piece as the start rows are
            zone_row = np.isfinite(units["cohort"].reindex(tab.index).to_numpy(float))[i]
            e_est = tab["exposure_onset_sample"].to_numpy(float)[i]
            extra = pd.DataFrame({
                "time": times, "piece": np.where(zone_row, "spillover_on_zones", ""),
                "source": True, "late": zone_row & (times >= e_est),
            })  # fmt: skip
            rows = pd.concat([rows, extra], ignore_index=True) if len(rows) else extra
            n_pure = int((lost & is_pure[:, None]).sum())
            mixed = tab.index[is_mixed].to_numpy()
            pure_note = _cs_sources_text(pure, n_pure, mixed, int(lost.sum()) - n_pure)
        fits = _with_start_rows(fits, rows, n_clusters, list(exposure.rings))
    if pure_note:
        warnings.warn(pure_note[0].upper() + pure_note[1:], stacklevel=2)
    unseen = _unseen_cells(dpanel, outcome, tab, units, src)
    unseen_note = unobserved_note(exposure, *unseen, pre_exposed, fits) if unseen else ""
    if unseen_note:
        warnings.warn(unseen_note[0].upper() + unseen_note[1:], stacklevel=2)
    _warn_unidentified(fits, cs_base=base_estimator == "callaway_santanna")
    if not np.isfinite(fits["direct"].estimate):
        raise EstimationError("The direct effect could not be estimated on any zone unit-period.")
    names, est, S, dfs, share_df = _linear_terms(fits, None)
    terms, draws, info_boot = _joint(names, est, S, generator, int(n_boot), alpha, dfs, share_df)
    # as in memory (either base): a term whose pieces' targets all sit in one cluster has
    # no SE (stacklevel 3: the warning points at the caller of fit)
    one, gone = _one_cluster_terms(fits, held)
    _warn_one_cluster(one, stacklevel=3)
    terms = _without_one_cluster_se(terms, gone)
    info_boot.update({"one_cluster_pieces": ", ".join(one)} if one else {})
    # as in memory (zones outside the sample, or of it without a counted gain then), but
    # counted on the exposed cells (no per-target effects here)
    periods = np.asarray(dpanel.periods, float)
    cover = (
        None
        if observed is None or not linked
        else _observed_zone_cover(exposure, units, periods, observed, pre_exposed, clean)
    )
    gain = None if cover is None else pd.DataFrame(cover[4], index=cover[2], columns=periods)
    joint = _exposed_cells(tab, units, periods[None, :]) & ~_cell_mask(tab.index, periods, src)
    joint &= joint_source_mask(exposure, tab.index.to_numpy(), periods, gain)
    nan = float("nan")
    joint_info = joint_source_report(int(joint.sum()), False, nan, nan, terms, stacklevel=3)
    role = exposure.table["role"]
    info: dict[str, Any] = {
        "exposure": exposure.kind, "exposure_rings": ", ".join(map(str, exposure.rings)),
        "controls": controls, "pre_exposed": pre_exposed,
        "base_estimator": base_estimator, "engine": "dask", "covariates": ",".join(covs),
        "cluster": cname, "n_clusters": n_clusters,
        "inference": _INFERENCE,
        "small_sample": "none",
        "aux_partition": (
            ("onset_event" if bins is None and intensity is None else aux_partition)
            if base_estimator == "imputation" else ""
        ),
        **({"aux_models": "; ".join(f"{k}: {v}" for k, v in models.items())} if models else {}),
        "n_direct_units": int((role == "direct").sum()),
        "n_exposed_units": int((role == "exposed").sum()),
        "n_clean_units": int((role == "clean").sum()),
        "n_pre_exposed_zones": len(exposure.pre_exposed_units()),
        **_outcome_scale([b[3] for b in blocks]),
        "n_treated_unit_periods": float(fits["direct"].n),
        "n_unidentified_direct": fits["direct"].n_unidentified, "weights": "",
        **info_boot, "n_boot": n_boot,
        "net_region_did_note": "net_region_did not estimated on the Dask engine (no geography).",
        **({"net_note": note} if (note := _unpaired_note(fits, base_estimator)) else {}),
        **({"cs_sources_note": pure_note} if pure_note else {}),
        **({"net_unobserved_note": unseen_note} if unseen_note else {}),
        **joint_info,
    }  # fmt: skip
    # as in memory: net and the share blanked where not identified, the share where the
    # direct total is zero to rounding (stacklevel 3: the caller of fit)
    terms, draws, info = _unidentified(terms, draws, info, warn=True, stacklevel=3)
    res = SpilloverResult(
        estimator="spillover",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=dpanel.n_units,
        n_obs=int(sum(s["n_finite"] for s in naive)),
        info=info,
        alpha=alpha,
        exposure=exposure,
        pieces=_pieces_table(fits, None),
        draws=draws,
        base_results=results,
    )
    return rescale_result(res, c)
