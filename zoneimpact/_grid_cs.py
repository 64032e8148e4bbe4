"""Ring-spillover Callaway-Sant'Anna on a cell panel too large for memory (two streamed passes).

Method
------
Callaway & Sant'Anna (2021), *J. Econometrics* 225(2), eq. 2.3 (never-treated comparisons)
and Section 3 (aggregations), without covariates, on a *balanced* cell panel: every ATT(g,t)
is a difference of mean outcome changes,

    ATT(g,t) = (mean_{G=g} Y_t - mean_{G=g} Y_b) - (mean_{C} Y_t - mean_{C} Y_b),

with ``b`` the base period (``"varying"``: ``t - 1`` before treatment, ``g - 1`` after),
so it needs only the per-(cohort, period) counts and sums of the outcome (pass 1). Its
influence function (the one :mod:`zoneimpact.estimators.callaway_santanna` keeps,
``n / n_g (dY_i - mean)`` for the cohort, ``-n / n_C (dY_i - mean)`` for the controls) is
linear in the cell's outcomes, and so is that of every aggregate ``sum_j a_j ATT_j`` plus
the estimated-cohort-share term ``sum_g a_g (1{G_i=g} - p_g)``:

    IF_i = sum_t W[G_i, t] Y_it + D[G_i],

with ``W`` and ``D`` known after pass 1. Pass 2 streams the rows again and adds them into
per-cell accumulators with ``numpy.bincount``, whatever the order of the rows or the
layout of the partitions:

* for the overall ATT alone (``event_study=False``): one per-cell sum of
  ``W[G_i, t] Y_it`` per piece — the influence-function sum itself, one float64 per cell;
* with the event-time terms (default): the per-cell outcome sums by period (one float64
  per cell and period, shared by all pieces), from which every term's influence function
  follows by one small matrix product per cohort class. With ``T`` periods the dynamic
  aggregation has ``2T - 3`` event-time terms, so this takes less memory than one
  influence-function accumulator per term, and one ``bincount`` per batch instead of one
  per term.

Then ``se = sqrt(sum_i IF_i^2) / n`` (CS Theorem 2, R ``did``'s analytic standard errors),
or with ``cluster=`` (a column of the exposure table) ``sqrt(sum_c (sum_{i in c} IF_i)^2)
/ n`` as ``callaway_santanna.fit(cluster=...)`` computes it. Cells near the same zone
share shocks: in a Monte Carlo with shocks by 10 km block, unclustered 95% intervals
covered 58%; clustered by the blocks, 94% with 63 blocks (30 zones), 86% with 16 blocks
of which 8 hold treated cells (too few treated clusters: a warning says so, as in the
in-memory fit). Peak memory is one batch of rows plus those per-cell accumulators (800 MB
at 10 million cells x 10 years): the long panel (ids, periods, one row per cell-year) is
never held.

Pieces (Butts 2021, arXiv:2105.03737, Section 3.2, the ring estimator): for the exposure
table of :func:`zoneimpact.grid.grid_exposure`, ``spillover:<ring>`` compares the cells
exposed in that ring, treated from their exposure onset, with the clean cells, and
``direct`` compares the direct cells with the clean cells, leaving out direct cells exposed
to another zone before their own opened — what :meth:`ExposureMap.panels` gives with
``controls="never_exposed", pre_exposed="drop_units"``. Cohorts at or before the first
period are dropped and cohorts after the last become controls (``Panel.from_frame``'s
``outside_window="adjust"``). Checked against
``callaway_santanna.fit(..., control_group="never_treated", bootstrap=False)`` to 1e-10
(``tests/test_grid.py``).

Outcomes are centred by one constant (the first batch's mean) before they are summed, so
large levels (1e12) keep their digits. Periods, cohorts and exposure onsets must be whole
numbers (as in ``Panel.from_frame``; quarters are numbered, not decimal years), and
Hive-style ``key=value`` directories are read as columns.

Scope: balanced panels with finite outcomes (checked exactly, with a row count and one bit
per cell and period: a cell with a missing, extra or duplicated period is an error naming
it), no covariates, no weights. The same two passes over per-partition sums are what a
Dask engine would map over partitions; this module is kept small so that it can move there.

Why by hand: no library computes CS from streamed sums; pyarrow only reads the batches.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .errors import EstimationError, PanelError
from .inference.covariance import warn_few_treated
from .panel import _v
from .results import EstimationResult

__all__ = ["StreamedCSResult", "ring_cs_from_parquet", "ring_pieces"]


@dataclass(frozen=True)
class StreamedCSResult(EstimationResult):
    """Callaway-Sant'Anna terms (``att``, ``event:E``, ``event_avg``) of one piece, with
    the ATT(g,t) table ``att_gt`` (columns as in ``CallawaySantAnnaResult.att_gt``; ``se``
    is NaN unless ``cell_se=True``)."""

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {"att_gt": {"estimate": 1, "se": 1}}

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {"att_gt": self.att_gt}


def ring_pieces(table: pd.DataFrame, pieces: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The cohort of every cell in each piece: finite = treated from then, ``inf`` = clean
    control, NaN = not in the piece (module notes).

    Parameters
    ----------
    table : DataFrame
        Exposure table indexed by cell (``role``, ``cohort``, ``exposure_onset``, ``ring``).
    pieces : sequence of str, optional
        ``"direct"`` and/or ``"spillover:<ring>"``; default every ring with exposed cells,
        then direct.
    """
    missing = [c for c in ("role", "cohort", "exposure_onset", "ring") if c not in table.columns]
    if missing:
        raise PanelError(f"The exposure table lacks column(s) {missing}.")
    role = np.asarray(table["role"].astype(str))
    ring = np.asarray(table["ring"].astype(str))
    g = table["cohort"].to_numpy(float)
    e = table["exposure_onset"].to_numpy(float)
    clean = role == "clean"
    rings = list(dict.fromkeys(r for r in ring[role == "exposed"]))
    if isinstance(table["ring"].dtype, pd.CategoricalDtype):
        cats = [str(c) for c in table["ring"].cat.categories]
        rings = [r for r in cats if r in set(rings)]
    allowed = [f"spillover:{r}" for r in rings] + ["direct"]
    chosen = allowed if pieces is None else list(pieces)
    out: dict[str, np.ndarray] = {}
    for p in chosen:
        if p not in allowed:
            raise PanelError(f"Unknown piece {p!r}; this exposure table has {allowed}.")
        if p == "direct":
            own = (role == "direct") & ~(e < g)
            coh = np.where(own, g, np.nan)
        else:
            coh = np.where((role == "exposed") & (ring == p.split(":", 1)[1]), e, np.nan)
        out[p] = np.where(clean, np.inf, coh)
    return out


# ---------------------------------------------------------------------- reading rows
def _batches(
    source: Any, columns: list[str], batch_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(cell, period, outcome) arrays batch by batch from Parquet files or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        missing = [c for c in columns if c not in source.columns]
        if missing:
            raise PanelError(f"The panel lacks column(s) {missing}; it has {list(source.columns)}.")
        for lo in range(0, len(source), batch_rows):
            part = source.iloc[lo : lo + batch_rows]
            cid, t, y = (part[c] for c in columns)
            yield cid.to_numpy(), t.to_numpy(), y.to_numpy(dtype=float)
        return
    import pyarrow.dataset as ds  # optional dependency (the test extra)

    dataset = _dataset(ds, source)
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise PanelError(
            f"The Parquet data lack column(s) {missing}; they have {dataset.schema.names}."
        )
    # little read-ahead: memory stays at a few batches whatever the size of the files
    batches = dataset.to_batches(
        columns=columns, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1
    )
    for batch in batches:
        arrs = []
        for c in columns:
            col = batch.column(c)
            if col.null_count and c != columns[2]:
                raise PanelError(f"Column {c!r} of the Parquet data has missing values.")
            arrs.append(col.to_numpy(zero_copy_only=False))
        yield arrs[0], arrs[1], np.asarray(arrs[2], dtype=float)


def _dataset(ds: Any, source: Any) -> Any:
    """A pyarrow dataset over the Parquet files, reading Hive-style ``key=value`` directory
    names (``year=2001/part-0.parquet``, what ``pyarrow.parquet.write_to_dataset`` and Spark
    write) as columns. Below one directory given as the source, only the names under it
    count; a layout whose file columns clash with such names is read without them."""
    import pyarrow as pa

    files = _files(source)
    if not any("=" in part for f in files for part in Path(f).parts[:-1]):
        return ds.dataset(files, format="parquet")
    base = str(source) if isinstance(source, str | os.PathLike) and Path(source).is_dir() else None
    try:
        return ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=base)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return ds.dataset(files, format="parquet")


def _files(source: Any) -> list[str]:
    """Parquet files named by a path, a directory, a glob or a list of them."""
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    files: list[str] = []
    for s in items:
        s = str(s)
        if any(ch in s for ch in "*?["):
            files += sorted(glob.glob(s, recursive=True))
        elif Path(s).is_dir():
            files += sorted(str(p) for p in Path(s).rglob("*.parquet"))
        elif Path(s).exists():
            files.append(s)
    if not files:
        raise PanelError(f"No Parquet file found at {source!r}.")
    return files


class _CellIndex:
    """Position of each cell id in the exposure table (fast path for consecutive ints)."""

    def __init__(self, ids: np.ndarray, cell_col: str) -> None:
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]
        dup = np.flatnonzero(self.sorted[1:] == self.sorted[:-1])
        if dup.size:
            raise PanelError(
                f"Cell {_v(self.sorted[dup[0]])!r} appears more than once in the exposure "
                f"table's index ({dup.size} repeated row(s)); the table must have one row per "
                f"cell of column {cell_col!r}."
            )
        self.offset: int | None = None
        if (
            ids.dtype.kind in "iu"
            and len(ids)
            and int(self.sorted[-1]) - int(self.sorted[0]) == len(ids) - 1
        ):
            self.offset = int(self.sorted[0])

    def __call__(self, cells: np.ndarray, cell_col: str) -> np.ndarray:
        n = len(self.sorted)
        if self.offset is not None and cells.dtype.kind in "iu":
            pos = cells.astype(np.int64) - self.offset
            bad = (pos < 0) | (pos >= n)
        else:
            pos = np.searchsorted(self.sorted, cells)
            bad = pos >= n
            bad[~bad] = self.sorted[pos[~bad]] != cells[~bad]
        if bad.any():
            raise PanelError(
                f"Cell {_v(cells[bad][0])!r} (column {cell_col!r}) is not in the exposure "
                f"table; build the table from the same cells ({int(bad.sum())} such row(s) "
                "in this batch)."
            )
        return self.order[pos]


# ---------------------------------------------------------------------- the estimator
@dataclass
class _Piece:
    """One piece's classes (cohort code per table cell, ``G`` = control, -1 = out)."""

    name: str
    cls: np.ndarray
    cohorts: np.ndarray
    pos: np.ndarray  # position of each table cell among the piece's cells (-1 = out)
    n: int
    n_class: np.ndarray
    sums: np.ndarray  # (G + 1, T)


class _NoCohortError(EstimationError):
    """A piece without any cohort treated within the data's periods."""


def _make_piece(name: str, cohort: np.ndarray, periods: np.ndarray) -> _Piece:
    c = cohort.copy()
    c[c <= periods[0]] = np.nan  # no untreated period: left out (outside_window="adjust")
    c[c > periods[-1]] = np.inf  # treated after the data end: a control
    cohorts = np.unique(c[np.isfinite(c)])
    cls = np.full(len(c), -1, dtype=np.int32)
    fin = np.isfinite(c)
    cls[fin] = np.searchsorted(cohorts, c[fin])
    cls[np.isinf(c)] = len(cohorts)
    inside = cls >= 0
    pos = np.full(len(c), -1, dtype=np.int64)
    pos[inside] = np.arange(int(inside.sum()))
    n_class = np.bincount(cls[inside], minlength=len(cohorts) + 1)
    if n_class[-1] == 0:
        raise EstimationError(
            f"Piece {name!r}: no clean cell to compare with (control_group='never_treated')."
        )
    if len(cohorts) == 0:
        raise _NoCohortError(f"Piece {name!r}: no treated cohort within the data's periods.")
    return _Piece(
        name, cls, cohorts, pos, int(inside.sum()), n_class, np.zeros((len(cohorts) + 1, 0))
    )


def _cells(piece: _Piece, periods: np.ndarray) -> pd.DataFrame:
    """ATT(g,t) cells with varying base periods (CS Remark 2; ``_make_cells``)."""
    rows = []
    for gi, g in enumerate(piece.cohorts):
        pret = int(np.flatnonzero(periods < g)[-1])
        for c in range(1, len(periods)):
            b = pret if g <= periods[c] else c - 1
            # periods and cohorts are whole numbers (checked), so the difference is exact
            rows.append((gi, g, c, b, int(round(periods[c] - g)), bool(periods[c] >= g)))
    return pd.DataFrame(rows, columns=["gi", "g", "c", "b", "e", "post"])


def _att(piece: _Piece, cells: pd.DataFrame) -> np.ndarray:
    mean = piece.sums / piece.n_class[:, None]
    gi, c, b = (cells[k].to_numpy() for k in ("gi", "c", "b"))
    return (mean[gi, c] - mean[gi, b]) - (mean[-1, c] - mean[-1, b])


def _weighted(
    piece: _Piece, cells: pd.DataFrame, att: np.ndarray, keep: np.ndarray
) -> tuple[float, np.ndarray]:
    """Cohort-share weighted average of the cells in ``keep`` and its coefficients on the
    basis (cells, then centred cohort indicators; CS Section 3, R ``compute.aggte``)."""
    k, n_g = len(cells), len(piece.cohorts)
    idx = np.flatnonzero(keep)
    pg = piece.n_class[:n_g] / piece.n
    gi = cells["gi"].to_numpy()[idx]
    s = pg[gi].sum()
    w = pg[gi] / s
    est = float(w @ att[idx])
    a = np.zeros(k + n_g)
    a[idx] = w
    np.add.at(a, k + gi, (att[idx] - est) / s)
    return est, a


def _terms(
    piece: _Piece, cells: pd.DataFrame, att: np.ndarray, cell_se: bool, event_study: bool
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Accumulated terms (names, estimates, coefficients) and the linear map from them to
    the reported terms (``event_avg`` is the mean of the post event-time terms)."""
    e = cells["e"].to_numpy()
    est, a = _weighted(piece, cells, att, cells["post"].to_numpy(bool))
    names, ests, coefs = ["att"], [est], [a]
    for ev in np.unique(e) if event_study else []:
        est, a = _weighted(piece, cells, att, e == ev)
        names.append(f"event:{ev}")
        ests.append(est)
        coefs.append(a)
    n_acc = len(names)
    if cell_se:
        eye = np.eye(len(cells) + len(piece.cohorts))
        coefs += [eye[j] for j in range(len(cells))]
    lin = np.eye(n_acc)
    if not event_study:
        return names, np.array(ests), np.column_stack(coefs), lin
    post = [j for j, nm in enumerate(names) if nm.startswith("event:") and int(nm[6:]) >= 0]
    avg = np.zeros(n_acc)
    avg[post] = 1.0 / len(post)
    names.append("event_avg")
    ests.append(float(avg @ np.array(ests)))
    lin = np.vstack([lin, avg])
    return names, np.array(ests), np.column_stack(coefs), lin


def _weights(
    piece: _Piece, cells: pd.DataFrame, att: np.ndarray, amat: np.ndarray, n_t: int
) -> tuple[np.ndarray, np.ndarray]:
    """``W[m, class, t]`` and ``D[m, class]`` of ``IF_i = sum_t W Y_it + D`` (module notes)."""
    n_g, k = len(piece.cohorts), len(cells)
    mean = piece.sums / piece.n_class[:, None]
    n_terms = amat.shape[1]
    w = np.zeros((n_terms, n_g + 1, n_t))
    d = np.zeros((n_terms, n_g + 1))
    for j, (gi, c, b) in enumerate(cells[["gi", "c", "b"]].to_numpy()):
        aj = amat[j]
        if not aj.any():
            continue
        f1 = piece.n / piece.n_class[gi]
        f0 = piece.n / piece.n_class[-1]
        w[:, gi, c] += aj * f1
        w[:, gi, b] -= aj * f1
        d[:, gi] -= aj * f1 * (mean[gi, c] - mean[gi, b])
        w[:, -1, c] -= aj * f0
        w[:, -1, b] += aj * f0
        d[:, -1] += aj * f0 * (mean[-1, c] - mean[-1, b])
    pg = piece.n_class[:n_g] / piece.n
    for gi in range(n_g):
        ag = amat[k + gi]
        d -= ag[:, None] * pg[gi]
        d[:, gi] += ag
    return w, d


def ring_cs_from_parquet(
    source: Any,
    table: pd.DataFrame,
    *,
    outcome: str = "y",
    cell: str = "cell",
    time: str = "year",
    pieces: Sequence[str] | None = None,
    event_study: bool = True,
    cell_se: bool = False,
    batch_rows: int = 2_000_000,
    cluster: str | None = None,
) -> dict[str, StreamedCSResult]:
    """Ring-spillover (and direct) CS effects from a partitioned Parquet cell panel.

    Parameters
    ----------
    source : str, path, list of them, or DataFrame
        Parquet file(s), a directory of them or a glob; a DataFrame is read in slices of
        ``batch_rows`` (tests). Columns ``cell``, ``time`` and ``outcome`` (long format).
    table : DataFrame
        Exposure table of :func:`zoneimpact.grid.grid_exposure`, indexed by cell.
    pieces : sequence of str, optional
        ``"spillover:<ring>"`` and/or ``"direct"`` (default: all; :func:`ring_pieces`).
    event_study : bool
        Also the event-time terms (CS eq. 3.5) and their average. Memory: one float64
        per cell and period (800 MB at 10 million cells x 10 years); without them one
        float64 per cell of each piece (module notes).
    cell_se : bool
        Also the standard error of every ATT(g,t).
    batch_rows : int
        Rows per batch; bounds memory, does not change the result.
    cluster : str, optional
        A column of the exposure table (e.g. a region or a block of cells) whose cells'
        influence values are summed before the variance is formed,
        ``sqrt(sum_c (sum_{i in c} IF_i)^2) / n`` as ``callaway_santanna.fit(cluster=...)``
        computes it (no small-sample factor; ``info["n_clusters"]`` holds the piece's cluster
        count). Default: each cell its own cluster. Cells' shocks are usually spatially
        correlated: cluster by blocks of cells larger than that correlation.

    Returns
    -------
    dict of str to StreamedCSResult
        One result per piece: terms ``att`` (CS simple aggregation), ``event:E``,
        ``event_avg`` with analytic standard errors and their covariance.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise PanelError(f"batch_rows must be a whole number >= 1; received {batch_rows!r}.")
    cohorts_by_piece = ring_pieces(table, pieces)
    _check_whole_cohorts(cohorts_by_piece, table)
    labels = _cluster_labels(table, cluster)
    index = _CellIndex(table.index.to_numpy(), cell)
    cols = [cell, time, outcome]
    periods = _periods(source, cols, batch_rows)
    n_t = len(periods)
    if n_t < 2:
        raise EstimationError(f"The panel has {n_t} period(s); CS needs at least two.")
    built, skipped = [], []
    for p, c in cohorts_by_piece.items():
        try:
            built.append(_make_piece(p, c, periods))
        except _NoCohortError:
            if pieces is not None:
                raise
            skipped.append(p)
    if skipped:
        warnings.warn(
            f"Piece(s) {skipped} have no cohort treated within the data's periods "
            f"({_v(periods[0])}-{_v(periods[-1])}: every exposure onset is at or before the "
            "first period or after the last) and are left out; pass pieces= to choose.",
            stacklevel=2,
        )
    if not built:
        raise EstimationError(
            f"No piece of {list(cohorts_by_piece)} has a cohort treated within the data's "
            f"periods ({_v(periods[0])}-{_v(periods[-1])})."
        )
    for pc in built:
        pc.sums = np.zeros((len(pc.cohorts) + 1, n_t))
    n_cells = len(table)
    used = np.zeros(n_cells, bool)
    for pc in built:
        used |= pc.cls >= 0
    # rows per cell and one bit per (cell, period) seen: T rows covering all T periods is
    # one row per period (exact, at 8 + T / 8 bytes per cell)
    rows = np.zeros(n_cells, dtype=np.int64)
    seen = np.zeros((n_cells * n_t + 7) // 8, dtype=np.uint8)
    # outcomes are centred by one constant (the first rows' mean) before they are summed:
    # the estimates do not depend on it, and sums of large levels would lose digits
    shift: float | None = None
    # pass 1: counts and sums by (class, period), and a balance check per cell
    for cid, t, y in _batches(source, cols, batch_rows):
        pos = index(cid, cell)
        tc = np.searchsorted(periods, t)
        bad_y = ~np.isfinite(y)
        if bad_y.any():
            i = int(np.flatnonzero(bad_y)[0])
            raise PanelError(
                f"Outcome {outcome!r} is {'missing' if np.isnan(y[i]) else y[i]} for cell "
                f"{_v(cid[i])!r}, period {_v(t[i])!r}; the streamed estimator needs a "
                "balanced panel with a finite outcome in every row."
            )
        if shift is None and y.size:
            shift = float(np.mean(y))
        y = y - (shift or 0.0)
        _scatter_add(rows, pos, None)
        key = pos.astype(np.int64) * n_t + tc
        np.bitwise_or.at(seen, key >> 3, np.left_shift(np.uint8(1), (key & 7).astype(np.uint8)))
        for pc in built:
            k = pc.cls[pos]
            m = k >= 0
            pc.sums += np.bincount(
                k[m] * n_t + tc[m], weights=y[m], minlength=pc.sums.size
            ).reshape(pc.sums.shape)
    _check_balanced(rows, seen, used, table.index, periods, cell)
    del rows, seen
    plans = []
    for pc in built:
        cells = _cells(pc, periods)
        att = _att(pc, cells)
        names, ests, amat, lin = _terms(pc, cells, att, cell_se, event_study)
        w, d = _weights(pc, cells, att, amat, n_t)
        plans.append((pc, cells, att, names, ests, lin, w, d))
    wide = event_study or cell_se
    # pass 2: per cell, either the outcome by period (every term's influence function is
    # a fixed linear map of it, per cohort class) or, for the overall ATT alone, the sum
    # of W[class, t] Y_it, which is its influence function up to D[class]
    zsum = np.zeros((n_cells, n_t)) if wide else None
    accs = [np.zeros(pc.n) for pc, *_ in plans] if not wide else []
    for cid, t, y in _batches(source, cols, batch_rows):
        pos = index(cid, cell)
        tc = np.searchsorted(periods, t)
        y = y - (shift or 0.0)
        if zsum is not None:
            _scatter_add(zsum.reshape(-1), pos * n_t + tc, y)
            continue
        for (pc, *_, w, _d), acc in zip(plans, accs, strict=True):
            k = pc.cls[pos]
            m = k >= 0
            _scatter_add(acc, pc.pos[pos[m]], w[0, k[m], tc[m]] * y[m])
    out: dict[str, StreamedCSResult] = {}
    for j, (pc, cells, att, names, ests, lin, w, d) in enumerate(plans):
        codes, n_clu = (None, None) if labels is None else _codes(labels, pc)
        # as callaway_santanna.fit: few treated clusters (or cells) make the SE too small
        treated = pc.cls[pc.cls >= 0] < len(pc.cohorts)
        n_tr = int(treated.sum()) if codes is None else len(np.unique(codes[treated]))
        what = "cell(s)" if cluster is None else f"cluster(s) of {cluster!r}"
        warn_few_treated(n_tr, f"{what} in piece {pc.name!r}", stacklevel=2)
        if zsum is not None:
            gram = _gram_wide(pc, zsum, w, d, codes, n_clu)
        else:
            infl = accs[j] + d[0, pc.cls[pc.cls >= 0]]
            if codes is not None:
                infl = np.bincount(codes, weights=infl, minlength=int(n_clu or 0))
            gram = np.array([[infl @ infl]])
        clu = {"cluster": cluster, "n_clusters": n_clu}
        out[pc.name] = _result(pc, cells, att, names, ests, lin, gram, outcome, periods, clu)
    return out


def _scatter_add(target: np.ndarray, idx: np.ndarray, weights: np.ndarray | None) -> None:
    """``target[idx] += weights`` (repeated indices add up) through ``numpy.bincount`` over
    the batch's index range only (rows of a partition usually cover a narrow range)."""
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max()) + 1
    target[lo:hi] += np.bincount(idx - lo, weights=weights, minlength=hi - lo)


def _cluster_labels(table: pd.DataFrame, cluster: Any) -> np.ndarray | None:
    """Cluster label of every table cell (None: each cell its own cluster)."""
    if cluster is None:
        return None
    if not isinstance(cluster, str):
        raise PanelError(
            f"cluster must be the name of a column of the exposure table (e.g. 'region') or "
            f"None for cells; received {cluster!r} ({type(cluster).__name__})."
        )
    if cluster not in table.columns:
        raise PanelError(
            f"Cluster column {cluster!r} is not in the exposure table; it has "
            f"{list(table.columns)}. Add it (e.g. a block or region id per cell)."
        )
    lab = table[cluster]
    if lab.isna().any():
        i = int(np.flatnonzero(lab.isna().to_numpy())[0])
        raise PanelError(
            f"Cluster column {cluster!r} is missing for cell {_v(table.index[i])!r}; every "
            "cell needs a cluster."
        )
    return pd.factorize(lab, sort=True)[0]


def _codes(labels: np.ndarray, pc: _Piece) -> tuple[np.ndarray, int]:
    """Cluster codes 0..G-1 of the piece's cells (in the order of ``pc.pos``) and G."""
    codes, uniq = pd.factorize(labels[pc.cls >= 0], sort=True)
    return codes, len(uniq)


def _gram_wide(
    pc: _Piece,
    zsum: np.ndarray,
    w: np.ndarray,
    d: np.ndarray,
    codes: np.ndarray | None = None,
    n_clu: int | None = None,
    block: int = 1 << 20,
) -> np.ndarray:
    """``sum_i IF_i IF_i'`` with ``IF_i = W[class_i] Y_i + D[class_i]``, in blocks of cells;
    with clusters, ``sum_c S_c S_c'`` of the sums ``S_c`` of the ``IF_i`` within cluster c."""
    m = w.shape[0]
    gram = np.zeros((m, m))
    csum = None if codes is None else np.zeros((m, int(n_clu or 0)))
    inside = np.flatnonzero(pc.cls >= 0)
    for lo in range(0, inside.size, block):
        rows = inside[lo : lo + block]
        cls = pc.cls[rows]
        z = zsum[rows]
        infl = np.empty((m, rows.size))
        for c in np.unique(cls):
            sel = cls == c
            infl[:, sel] = w[:, c, :] @ z[sel].T + d[:, c : c + 1]
        if csum is None or codes is None:
            gram += infl @ infl.T
            continue
        cb = codes[lo : lo + block]
        for r in range(m):
            csum[r] += np.bincount(cb, weights=infl[r], minlength=csum.shape[1])
    return gram if csum is None else csum @ csum.T


def _periods(source: Any, cols: list[str], batch_rows: int) -> np.ndarray:
    """The sorted distinct periods, refusing periods that are not whole numbers (as
    ``Panel.from_frame`` does: ``t - g`` must count periods)."""
    seen: set = set()
    for cid, t, _ in _batches(source, cols, batch_rows):
        t = np.asarray(t)
        if t.dtype.kind not in "iuf":
            raise PanelError(
                f"Column {cols[1]!r} holds {t.dtype} values (e.g. {_v(t[0])!r} at cell "
                f"{_v(cid[0])!r}); the streamed estimator needs whole-numbered periods (years)."
            )
        if t.dtype.kind == "f":
            bad = ~np.isfinite(t) | (t != np.round(t))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PanelError(
                    f"Column {cols[1]!r} must hold whole-numbered periods; cell "
                    f"{_v(cid[i])!r} has {_v(t[i])!r}. Number the periods 1, 2, ... (e.g. "
                    "quarters as year * 4 + quarter) and give cohorts and openings on that scale."
                )
        seen.update(np.unique(t).tolist())
    return np.sort(np.array(sorted(seen)))


def _check_whole_cohorts(cohorts_by_piece: dict[str, np.ndarray], table: pd.DataFrame) -> None:
    """Finite cohorts must be whole periods (``Panel.from_frame`` refuses others): a zone
    opening at 2005.5 on a yearly panel would count 2005 as treated."""
    for name, coh in cohorts_by_piece.items():
        bad = np.isfinite(coh) & (coh != np.round(coh))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            col = "cohort" if name == "direct" else "exposure_onset"
            raise PanelError(
                f"Column {col!r} of the exposure table must hold whole periods like the "
                f"panel's time column; cell {_v(table.index[i])!r} has {_v(coh[i])!r} (piece "
                f"{name!r}). Round the zones' openings to the first treated period."
            )


def _check_balanced(
    rows: np.ndarray,
    seen: np.ndarray,
    used: np.ndarray,
    ids: pd.Index,
    periods: np.ndarray,
    cell: str,
    block: int = 1 << 20,
) -> None:
    """Every cell of a piece has exactly one row per period: ``T`` rows whose periods
    cover all ``T`` periods (a missing period, an extra row or a duplicated one fails)."""
    n_t = len(periods)
    n_bad, first = 0, None
    for lo in range(0, len(used), block):
        hi = min(lo + block, len(used))
        b0, b1 = (lo * n_t) >> 3, (hi * n_t + 7) >> 3
        bits = np.unpackbits(seen[b0:b1], bitorder="little")
        off = lo * n_t - 8 * b0
        have = bits[off : off + (hi - lo) * n_t].reshape(hi - lo, n_t).astype(bool)
        bad = used[lo:hi] & ((rows[lo:hi] != n_t) | ~have.all(axis=1))
        if bad.any():
            n_bad += int(bad.sum())
            if first is None:
                i = int(np.flatnonzero(bad)[0])
                gone = np.flatnonzero(~have[i])
                first = (lo + i, periods[gone[0]] if gone.size else None)
    if first is not None:
        i, lack = first
        what = f"no row for period {_v(lack)!r}" if lack is not None else "a period more than once"
        raise PanelError(
            f"Cell {_v(ids[i])!r} (column {cell!r}) has {int(rows[i])} row(s) and {what}; the "
            f"panel has {n_t} periods ({_v(periods[0])}-{_v(periods[-1])}) and the streamed "
            f"estimator needs exactly one row per cell and period ({n_bad} such cell(s))."
        )


def _result(
    pc: _Piece,
    cells: pd.DataFrame,
    att: np.ndarray,
    names: list[str],
    ests: np.ndarray,
    lin: np.ndarray,
    gram: np.ndarray,
    outcome: str,
    periods: np.ndarray,
    clu: dict[str, Any],
) -> StreamedCSResult:
    """Terms, their covariance ``L (Psi'Psi / n^2) L'`` and the ATT(g,t) table."""
    n_acc = lin.shape[1]
    vcov = lin @ (gram[:n_acc, :n_acc] / pc.n**2) @ lin.T
    se = np.sqrt(np.diag(vcov))
    cell_se = (
        np.sqrt(np.diag(gram)[n_acc:]) / pc.n
        if gram.shape[0] > n_acc
        else np.full(len(cells), np.nan)
    )
    gi = cells["gi"].to_numpy()
    att_gt = pd.DataFrame(
        {
            "cohort": cells["g"].to_numpy(float),
            "time": periods[cells["c"].to_numpy()],
            "event_time": cells["e"].to_numpy(),
            "base_period": periods[cells["b"].to_numpy()],
            "estimate": att,
            "se": cell_se,
            "n_treated": pc.n_class[gi],
            "n_control": np.full(len(cells), pc.n_class[-1]),
        }
    )
    terms = pd.DataFrame({"term": names, "estimate": ests, "se": se})
    return StreamedCSResult(
        estimator="callaway_santanna",
        outcome=outcome,
        terms=terms,
        n_units=pc.n,
        n_obs=pc.n * len(periods),
        vcov=vcov,
        info={
            "piece": pc.name,
            "control_group": "never_treated",
            "est_method": "unconditional",
            "base_period": "varying",
            "engine": "streamed (two passes over Parquet batches)",
            "se_type": "analytic influence function",
            **clu,
        },
        att_gt=att_gt,
    )
