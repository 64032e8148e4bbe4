"""The group-time cells ATT(g,t) of Callaway & Sant'Anna (2021) outside the panel estimator.

Shared by :mod:`~zoneimpact.estimators.cs_repeated_cross_section` (Sant'Anna & Zhao 2020
2x2 estimators on repeated cross-sections) and
:mod:`~zoneimpact.estimators.triple_difference` (Ortiz-Villavicencio & Sant'Anna 2025):

* :func:`group_time_cells`: the (g, t) cells and their base periods (CS 2021 Section 2.1,
  R ``did``'s ``base_period = "varying"``/``"universal"``; with a universal base the
  cell ``t = g - 1 - anticipation`` is the normalised zero);
* :func:`estimate_cells`: runs an estimator's 2x2 routine over the cells, collecting the
  estimates, their influence functions (one column per cell) and the cells that failed;
* :func:`aggregate_cells` and :func:`att_gt_frame`: the aggregations of
  :mod:`~zoneimpact.estimators._gt_aggregate` and the ``att_gt`` table;
* :func:`defined_se`: the SEs of the terms and cells from another covariance (used by
  ``with_inference``), undefined where the aggregation leaves them undefined.

Written by hand: this is the bookkeeping of R ``did::att_gt`` around its 2x2 estimators.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..results import check_choice, check_names
from ._gt_aggregate import AGGREGATIONS, Aggregated, aggregate_gt, variance_se

__all__ = [
    "Cell",
    "CellFit",
    "aggregate_cells",
    "att_gt_frame",
    "check_aggregations",
    "defined_se",
    "estimate_cells",
    "group_time_cells",
    "warn_failures",
]


class Cell(NamedTuple):
    """One ATT(g,t): cohort ``g``, the indices of ``t`` and of its base period in the
    sorted periods, and whether it is the normalised zero (base period = ``t``)."""

    cohort: float
    t: int
    base: int
    normalised: bool


class CellFit(NamedTuple):
    """What a 2x2 routine returns for one cell."""

    estimate: float
    influence: np.ndarray | None  # one value per observation; None: the cell failed
    n_used: int  # observations or comparisons used
    failures: tuple[str, ...] = ()  # messages of what could not be estimated


def check_aggregations(aggregations: Sequence[str]) -> tuple[str, ...]:
    """The requested aggregations, each among :data:`AGGREGATIONS`."""
    aggs = tuple(check_names(aggregations, "aggregations"))
    for a in aggs:
        check_choice(a, "aggregations", AGGREGATIONS)
    return aggs


def group_time_cells(
    periods: np.ndarray,
    cohorts: np.ndarray,
    *,
    base_period: str,
    anticipation: int = 0,
    warn_dropped: bool = False,
    empty_message: str,
) -> list[Cell]:
    """Every (g, t) with its base period: the last period before ``g - anticipation`` for
    post-treatment and anticipation-window cells (``t >= g - anticipation``; R ``did`` PR
    #276) and for every cell with a universal base, the period before ``t`` for the other
    pre-treatment cells with a varying base (whose first period has none).

    A cohort without a pre-treatment period is dropped (with a warning when
    ``warn_dropped``); no cell at all is an :class:`EstimationError` saying
    ``empty_message``.
    """
    n_t = len(periods)
    first = 1 if base_period == "varying" else 0
    cells: list[Cell] = []
    for g in cohorts:
        pre = np.flatnonzero(periods + anticipation < g)
        if pre.size == 0:
            if warn_dropped:
                warnings.warn(
                    f"Cohort {g:g} has no pre-treatment period; it is dropped.", stacklevel=4
                )
            continue
        for c in range(first, n_t):
            # anticipation-window cells use the post-treatment base too (R did PR #276)
            window = periods[c] + anticipation >= g
            b = int(pre[-1]) if (window or base_period == "universal") else c - 1
            cells.append(Cell(float(g), c, b, b == c))
    if not cells:
        raise EstimationError(empty_message)
    return cells


def estimate_cells(
    cells: list[Cell],
    n: int,
    estimate: Callable[[Cell], CellFit],
    periods: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Estimates, influence functions (``n`` x cells; NaN columns for failed cells),
    counts and failure messages of the cells. Normalised cells are 0 with a zero
    influence function; a non-finite estimate or influence function is a failed cell
    (``periods``: the sorted periods, to name it)."""
    k = len(cells)
    psi = np.zeros((n, k))
    att = np.full(k, np.nan)
    counts = np.zeros(k, dtype=int)
    failures: list[str] = []
    for j, cell in enumerate(cells):
        if cell.normalised:
            att[j] = 0.0
            continue
        fit = estimate(cell)
        failures.extend(fit.failures)
        finite = np.isfinite(fit.estimate) and (
            fit.influence is not None and bool(np.all(np.isfinite(fit.influence)))
        )
        if fit.influence is not None and not finite:
            # a non-finite estimate is a failure, never a success the aggregations skip
            t = cell.t if periods is None else periods[cell.t]
            failures.append(f"({cell.cohort:g},{t}) the estimate is not finite")
        if not finite:
            psi[:, j] = np.nan
            continue
        att[j], psi[:, j], counts[j] = fit.estimate, fit.influence, fit.n_used
    return att, psi, counts, failures


def warn_failures(failures: list[str], what: str) -> None:
    """One warning listing the first five failures (``what``: "ATT(g,t) cell(s)"...)."""
    if failures:
        warnings.warn(
            f"{len(failures)} {what} could not be estimated: {'; '.join(failures[:5])}",
            stacklevel=4,
        )


def aggregate_cells(
    cells: list[Cell],
    periods: np.ndarray,
    att: np.ndarray,
    psi: np.ndarray,
    **options: Any,
) -> Aggregated:
    """:func:`~zoneimpact.estimators._gt_aggregate.aggregate_gt` of the cells (failed
    cells' influence functions as zeros); ``options``: ``group``, ``weights``,
    ``cohorts``, ``aggregations`` and optionally ``cluster``."""
    return aggregate_gt(
        cell_g=np.array([cl[0] for cl in cells]),
        cell_t=periods[[cl[1] for cl in cells]],
        att=att,
        psi=np.nan_to_num(psi),
        normalised=np.array([cl[3] for cl in cells]),
        **options,
    )


def att_gt_frame(
    cells: list[Cell], periods: np.ndarray, att: np.ndarray, se: np.ndarray, **counts: Any
) -> pd.DataFrame:
    """The ``att_gt`` table: ``cohort``, ``time``, ``event_time``, ``base_period``,
    ``estimate``, ``se`` and the count columns given as keywords."""
    cell_g = np.array([cl[0] for cl in cells])
    cell_t = periods[[cl[1] for cl in cells]]
    return pd.DataFrame(
        {
            "cohort": cell_g.astype(np.int64),
            "time": cell_t,
            "event_time": (cell_t - cell_g).astype(np.int64),
            "base_period": periods[[cl[2] for cl in cells]],
            "estimate": att,
            "se": se,
            **counts,
        }
    )


def defined_se(
    cells: pd.DataFrame,
    amat: np.ndarray,
    vcov: np.ndarray,
    cell_var: np.ndarray,
    *,
    two_way: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """SEs of the terms and the cells from a covariance, NaN where undefined as in
    :func:`~zoneimpact.estimators._gt_aggregate.aggregate_gt`: terms built only from cells
    a universal base fixes at zero, normalised or failed cells, and (``two_way``) a
    negative two-way clustered variance (see
    :func:`~zoneimpact.estimators._gt_aggregate.variance_se`)."""
    k = len(cells)
    norm = (cells["base_period"] == cells["time"]).to_numpy()
    valid = np.isfinite(cells["estimate"].to_numpy(float))
    by_construction = ~np.any(amat[:k][~norm] != 0, axis=0) & ~np.any(amat[k:] != 0, axis=0)
    se = np.where(by_construction, np.nan, variance_se(np.diag(vcov), two_way))
    cell_se = np.where(valid & ~norm, variance_se(cell_var[:k], two_way), np.nan)
    return se, cell_se
