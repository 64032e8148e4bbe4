"""A panel held as a Dask DataFrame, every unit's rows in one partition.

The estimators of :mod:`zoneimpact.distributed` need each unit's whole history in one
place (the 2x2 comparisons of Callaway & Sant'Anna use a unit's change ``Y_t - Y_b``, the
within transformation a unit's mean), so :func:`read_panel` shuffles the rows on the unit
(``DataFrame.shuffle(on="unit")``: a hash partitioning, not a sort, so it costs one
all-to-all exchange and no global order). Everything else is computed from per-partition
sums.

The checks :meth:`zoneimpact.Panel.from_frame` makes in memory are made here partition by
partition (a unit lives in one partition, so each is local) and raise the same kind of
named error: duplicated unit-periods, non-whole periods, a cohort or weight that varies
within a unit, infinite outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import PanelError, SpecError
from ..panel import onset_gap_message

__all__ = [
    "DaskPanel",
    "check_dask_panel",
    "cluster_sums",
    "compute_blocks",
    "midranges",
    "persist_blocks",
    "read_panel",
    "summed",
    "uses_column",
]


@dataclass(frozen=True)
class DaskPanel:
    """A validated panel on Dask: columns ``unit``, ``time`` (int64), ``cohort`` (float,
    ``inf`` never treated), the outcomes and covariates under their own names, and
    optionally ``weight`` and ``cluster`` (constant within unit).

    Attributes
    ----------
    frame : dask.dataframe.DataFrame
        The rows, partitioned so that each unit sits in exactly one partition.
    outcomes, covariates : tuple of str
    weights, cluster : str or None
        The source names of the weight and cluster columns (stored as ``weight`` and
        ``cluster``).
    periods : ndarray
        Sorted periods present in the data.
    cohorts : ndarray
        Sorted finite cohorts.
    n_units, n_obs : int
        Units and rows.
    """

    frame: Any
    outcomes: tuple[str, ...]
    covariates: tuple[str, ...]
    weights: str | None
    cluster: str | None
    periods: np.ndarray
    cohorts: np.ndarray
    n_units: int
    n_obs: int
    n_never: int = 0
    names: dict[str, str] = field(default_factory=dict)
    #: what a run reads of an in-memory Panel: the engine, and no geography or adjacency
    engine: ClassVar[str] = "dask"
    geography: ClassVar[None] = None
    adjacency: ClassVar[None] = None

    def partitions(self) -> list[Any]:
        """One ``dask.delayed`` pandas frame per partition."""
        return list(self.frame.to_delayed())


def read_panel(
    path: str | Sequence[str],
    *,
    unit: str,
    time: str,
    outcomes: Sequence[str],
    cohort: str | None = None,
    treatment: str | None = None,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    cluster: str | None = None,
    never_values: Iterable[float] = (0,),
    npartitions: int | None = None,
    storage_options: dict[str, Any] | None = None,
    outside_window: str = "error",
) -> DaskPanel:
    """Read a panel from (partitioned) Parquet into a :class:`DaskPanel`.

    Parameters
    ----------
    path : str or list of str
        A Parquet file, directory or glob (``"data/panel/*.parquet"``, ``"s3://bucket/p/"``),
        read with :func:`dask.dataframe.read_parquet`.
    unit, time : str
        Identifier columns; ``time`` must hold whole numbers.
    outcomes : sequence of str
        Outcome columns (NaN = missing).
    cohort, treatment : str
        Exactly one: the first treated period (``never_values`` or NaN = never treated),
        or a 0/1 absorbing treatment indicator from which the cohort is derived.
    covariates : sequence of str
        Numeric covariates.
    weights : str, optional
        Positive sampling weights, constant within unit.
    cluster : str, optional
        Cluster labels, constant within unit.
    never_values : iterable of float
        Cohort codes meaning "never treated" (R ``did`` uses 0).
    npartitions : int, optional
        Partitions after the shuffle on unit (default: those of the files).
    storage_options : dict, optional
        Passed to ``read_parquet`` (credentials of object stores).
    outside_window : {"error", "adjust"}
        Cohorts outside the observed periods, as in ``Panel.from_frame``: refused, or
        adjusted (units treated from the first period dropped, cohorts after the last
        recoded as never treated).

    Returns
    -------
    DaskPanel
    """
    if (cohort is None) == (treatment is None):
        raise SpecError("Pass exactly one of cohort= (first treated period) and treatment= (0/1).")
    if outside_window not in ("error", "adjust"):
        raise SpecError(f"outside_window must be 'error' or 'adjust'; received {outside_window!r}.")
    outcomes = _names(outcomes, "outcomes")
    covariates = _names(covariates, "covariates")
    if not outcomes:
        raise SpecError("outcomes is empty: name at least one outcome column.")
    source = _source_names(unit, time, str(cohort or treatment), weights, cluster)
    frame = _read_columns(path, storage_options, source, outcomes, covariates)
    frame = frame.shuffle(on="unit", npartitions=npartitions, shuffle_method=_shuffle_method())
    if isinstance(never_values, str | bytes):
        raise SpecError(
            f"never_values must be an iterable of cohort codes, e.g. (0,); received the "
            f"string {never_values!r}."
        )
    never = tuple(float(v) for v in never_values)
    frame = frame.map_partitions(
        _prepare_partition,
        treatment=treatment is not None,
        never=never,
        meta=_meta(frame, outcomes, covariates, treatment is not None),
    ).persist()
    scans = compute_blocks([_scan_partition], frame.to_delayed(), outcomes=outcomes, names=source)
    problems = [s["problem"] for s in scans if s["problem"] is not None]
    if problems:
        raise PanelError(problems[0])
    periods = np.unique(np.concatenate([s["periods"] for s in scans]))
    cohorts = np.unique(np.concatenate([s["cohorts"] for s in scans]))
    if treatment is None:
        _check_never_codes(scans, periods, names=source)
        frame = frame.drop(columns="_never")
    else:
        _check_onset_gaps(scans, periods, names=source)
    if outside_window == "adjust" and treatment is None:
        # as Panel.from_frame: drop units treated from the first period, recode cohorts
        # after the last as never treated, then count again
        frame = frame.map_partitions(
            _adjust_window, first=int(periods[0]), last=int(periods[-1]), meta=frame._meta
        ).persist()
        scans = compute_blocks(
            [_scan_partition], frame.to_delayed(), outcomes=outcomes, names=source
        )
        if not sum(s["n_units"] for s in scans):
            raise PanelError(
                f"No unit is left after dropping the units treated from the first period "
                f"{periods[0]} (outside_window='adjust')."
            )
        periods = np.unique(np.concatenate([s["periods"] for s in scans]))
        cohorts = np.unique(np.concatenate([s["cohorts"] for s in scans]))
    _check_window(scans, periods, treatment is None)
    return DaskPanel(
        frame=frame,
        outcomes=tuple(outcomes),
        covariates=tuple(covariates),
        weights=weights,
        cluster=cluster,
        periods=periods.astype(np.int64),
        cohorts=cohorts,
        n_units=int(sum(s["n_units"] for s in scans)),
        n_obs=int(sum(s["n_obs"] for s in scans)),
        n_never=int(sum(s["n_never"] for s in scans)),
        names=source,
    )


def _source_names(
    unit: str, time: str, cohort: str, weights: str | None, cluster: str | None
) -> dict[str, str]:
    """Canonical column name -> the name in the files (``cohort`` holds the cohort or the
    treatment column; ``weight`` and ``cluster`` only when given)."""
    source = {"unit": unit, "time": time, "cohort": cohort}
    if weights is not None:
        source["weight"] = weights
    if cluster is not None:
        source["cluster"] = cluster
    given = list(source.items())
    for i, (k, v) in enumerate(given):
        for k2, v2 in given[:i]:
            if v == v2:
                hint = (
                    " Clustering by unit is the default: leave cluster out."
                    if {k, k2} == {"unit", "cluster"}
                    else ""
                )
                raise SpecError(
                    f"Column {v!r} is given as both {k2} and {k}; each role needs its own "
                    f"column.{hint}"
                )
    return source


def _read_columns(
    path: str | Sequence[str],
    storage_options: dict[str, Any] | None,
    source: dict[str, str],
    outcomes: list[str],
    covariates: list[str],
) -> Any:
    """The wanted columns of the Parquet data, checked to exist and to be numeric where
    they must be, under their canonical names (``source`` maps canonical to source name)."""
    import dask.dataframe as dd

    wanted = list(dict.fromkeys([*source.values(), *outcomes, *covariates]))
    frame = dd.read_parquet(path, storage_options=storage_options)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise PanelError(
            f"Column(s) {missing} not in the Parquet data at {path!r}; its columns are "
            f"{list(frame.columns)}."
        )
    frame = frame[wanted]
    weights = [source["weight"]] if "weight" in source else []
    numeric = [source["time"], source["cohort"], *outcomes, *covariates, *weights]
    text = [c for c in dict.fromkeys(numeric) if not pd.api.types.is_numeric_dtype(frame.dtypes[c])]
    if text:
        raise PanelError(
            f"Column(s) {text} must be numeric; their Parquet types are "
            f"{[str(frame.dtypes[c]) for c in text]}. Convert them before writing the files."
        )
    renamed = {v: k for k, v in source.items()}
    frame = frame.rename(columns=renamed) if renamed else frame
    # a column used twice (e.g. a covariate that is also the cluster) keeps its own name too
    for key, col in source.items():
        if col in (*outcomes, *covariates):
            frame = frame.assign(**{col: frame[key]})
    return frame


def _shuffle_method() -> str | None:
    """Dask's own choice (peer-to-peer on a distributed cluster), except under a local
    scheduler set explicitly, whose tasks cannot run the peer-to-peer shuffle even when a
    ``distributed.Client`` exists in the process."""
    import dask

    local = ("threads", "threading", "sync", "synchronous", "single-threaded", "processes")
    return "tasks" if dask.config.get("scheduler", None) in local else None


def _adjust_window(df: pd.DataFrame, *, first: int, last: int) -> pd.DataFrame:
    g = df["cohort"].to_numpy(float)
    df = df[~(g <= first)].copy()
    g = df["cohort"].to_numpy(float)
    df["cohort"] = np.where(np.isfinite(g) & (g > last), np.inf, g)
    return df


def _check_never_codes(
    scans: list[dict[str, Any]], periods: np.ndarray, *, names: dict[str, str]
) -> None:
    """As ``Panel.from_frame`` (``panel._check_never_codes``): a never-treated code that is
    an observed period after the first could be a zone from that period (0 in years since
    2000), so it is refused rather than read as never treated."""
    later = set(periods[periods > periods.min()].tolist())
    used: dict[float, list[tuple[int, Any]]] = {}
    for scan in scans:
        for v, hit in scan["never_codes"].items():
            used.setdefault(v, []).append(hit)
    clash = sorted(v for v in used if v in later)
    if clash:
        v = clash[0]
        n_units = sum(n for n, _ in used[v])
        first = used[v][0][1]
        raise PanelError(
            f"Cohort column {names['cohort']!r} holds {v:g} at {n_units} unit(s) (first "
            f"{first!r}), and {v:g} is both a never-treated code (never_values) and an observed "
            f"period of {names['time']!r}, so those units could be never treated or treated "
            f"from period {v:g}. Mark never-treated units with an empty cohort (NaN) and pass "
            "never_values=(), or pass the code they use, e.g. never_values=(-1,)."
        )


def _check_window(scans: list[dict[str, Any]], periods: np.ndarray, by_cohort: bool) -> None:
    """Cohorts outside the observed periods are refused, as ``Panel.from_frame`` does by
    default: a unit treated from the first period has no untreated pre-period, a cohort
    after the last period is never observed treated."""
    firsts = [s["first"] for s in scans if s["first"] is not None]
    lasts = [s["last"] for s in scans if s["last"] is not None]
    if by_cohort and firsts and min(firsts, key=lambda v: v[0])[0] <= periods[0]:
        g, u = min(firsts, key=lambda v: v[0])
        raise PanelError(
            f"Cohort outside the observed periods: unit {u!r} has cohort {g:g} but the data "
            f"start in {periods[0]}; it has no untreated period. Drop the always-treated units."
        )
    if lasts and max(lasts, key=lambda v: v[0])[0] > periods[-1]:
        g, u = max(lasts, key=lambda v: v[0])
        raise PanelError(
            f"Cohort outside the observed periods: unit {u!r} has cohort {g:g} but the data "
            f"end in {periods[-1]}. Code it as never treated (0)."
        )


def _names(values: Any, what: str) -> list[str]:
    values = [values] if isinstance(values, str) else list(values or ())
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise SpecError(f"{what} must be column names (strings); received {bad!r}.")
    return values


def _meta(frame: Any, outcomes: list[str], covariates: list[str], treatment: bool) -> pd.DataFrame:
    meta = frame._meta.copy()
    if treatment:
        meta["_d"] = meta["cohort"].astype(float)
    else:
        meta["_never"] = meta["cohort"].astype(float)
    meta["time"] = meta["time"].astype(np.int64)
    meta["cohort"] = meta["cohort"].astype(float)
    for c in [*outcomes, *covariates]:
        meta[c] = meta[c].astype(float)
    if "weight" in meta.columns:
        meta["weight"] = meta["weight"].astype(float)
    return meta


def _prepare_partition(
    df: pd.DataFrame,
    *,
    treatment: bool,
    never: tuple[float, ...],
) -> pd.DataFrame:
    """Canonical columns of one partition, sorted by unit and period. Problems are left
    for :func:`_scan_partition` to report (a non-whole period becomes a sentinel, the
    treatment indicator is kept as ``_d``) so that the first one is named on the client."""
    df = df.copy()
    t = pd.to_numeric(df["time"], errors="coerce").to_numpy(float)
    df["time"] = np.where(np.isfinite(t) & (t == np.round(t)), t, -(2**62)).astype(np.int64)
    if treatment:
        d = pd.to_numeric(df["cohort"], errors="coerce").to_numpy(float)
        first = df["time"].where(d > 0).groupby(df["unit"]).transform("min")
        df["cohort"] = first.fillna(np.inf).astype(float)
        df["_d"] = d
    else:
        g = pd.to_numeric(df["cohort"], errors="coerce").to_numpy(float)
        coded = np.isin(g, never)
        # the never-treated code each row used, checked against the periods on the client
        df["_never"] = np.where(coded, g, np.nan)
        g = np.where(np.isnan(g) | coded, np.inf, g)
        df["cohort"] = g
    for c in df.columns:
        if c not in ("unit", "time", "cohort", "cluster", "_d", "_never"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df.sort_values(["unit", "time"], kind="stable")


def _treatment_problem(df: pd.DataFrame, names: dict[str, str]) -> str | None:
    d = df["_d"].to_numpy()
    if np.isnan(d).any() or not np.isin(d, (0.0, 1.0)).all():
        i = int(np.flatnonzero(~np.isin(d, (0.0, 1.0)))[0])
        return (
            f"Treatment column {names['cohort']!r} must hold 0/1; unit {df['unit'].iloc[i]!r} "
            f"has {d[i]!r} in period {df['time'].iloc[i]}."
        )
    back = (df["time"] >= df["cohort"]) & (d == 0)
    if back.any():
        i = int(np.flatnonzero(back.to_numpy())[0])
        return (
            f"Treatment {names['cohort']!r} is not absorbing: unit {df['unit'].iloc[i]!r} is "
            f"treated from {df['cohort'].iloc[i]:g} but untreated in {df['time'].iloc[i]}."
        )
    return None


def _scan_partition(
    df: pd.DataFrame, *, outcomes: list[str], names: dict[str, str]
) -> dict[str, Any]:
    """Periods, cohorts and counts of one partition, and its first problem (if any)."""
    problem = None
    if df["unit"].isna().any():
        i = int(np.flatnonzero(df["unit"].isna().to_numpy())[0])
        problem = f"A row of period {df['time'].iloc[i]} has no unit id (column {names['unit']!r})."
    if problem is None and "_d" in df.columns:
        problem = _treatment_problem(df, names)
    if problem is None and (df["time"] == -(2**62)).any():
        i = int(np.flatnonzero((df["time"] == -(2**62)).to_numpy())[0])
        problem = (
            f"Period of unit {df['unit'].iloc[i]!r} in column {names['time']!r} is not a "
            "whole number."
        )
    dup = df.duplicated(subset=["unit", "time"])
    if problem is None and dup.any():
        row = df[dup.to_numpy()].iloc[0]
        problem = (
            f"Unit {row['unit']!r} has more than one row for period {row['time']}; each "
            "unit-period must appear once."
        )
    for col in ("cohort", "weight", "cluster"):
        if problem is None and col in df.columns:
            spread = df.groupby("unit", sort=False)[col].nunique(dropna=False)
            if (spread > 1).any():
                u = spread.index[(spread > 1).to_numpy()][0]
                shown = names.get(col, col)
                problem = (
                    f"Column {shown!r} varies within unit {u!r}; it must be constant per unit."
                )
    if problem is None and "weight" in df.columns:
        w = df["weight"].to_numpy()
        if not (np.isfinite(w) & (w > 0)).all():
            i = int(np.flatnonzero(~(np.isfinite(w) & (w > 0)))[0])
            problem = (
                f"Weight of unit {df['unit'].iloc[i]!r} in period {df['time'].iloc[i]} is "
                f"{float(w[i])!r}; weights must be positive and finite."
            )
    for col in outcomes:
        y = df[col].to_numpy()
        if problem is None and np.isinf(y).any():
            i = int(np.flatnonzero(np.isinf(y))[0])
            problem = (
                f"Outcome {col!r} is infinite for unit {df['unit'].iloc[i]!r} in period "
                f"{df['time'].iloc[i]}; NaN marks a missing value."
            )
    g = df["cohort"].to_numpy()
    fin = np.flatnonzero(np.isfinite(g))
    frac = fin[g[fin] != np.round(g[fin])]
    if problem is None and frac.size:
        i = int(frac[0])
        problem = (
            f"Cohort column {names['cohort']!r} must hold whole periods like "
            f"{names['time']!r}; unit {df['unit'].iloc[i]!r} has {g[i]:g}."
        )
    codes: dict[float, tuple[int, Any]] = {}
    if "_never" in df.columns:
        used = df.loc[df["_never"].notna(), ["unit", "_never"]].drop_duplicates("unit")
        for v, grp in used.groupby("_never", sort=True):
            codes[float(v)] = (len(grp), grp["unit"].iloc[0])
    lo = int(fin[np.argmin(g[fin])]) if fin.size else None
    hi = int(fin[np.argmax(g[fin])]) if fin.size else None
    onsets = None
    if "_d" in df.columns:
        # each treated unit's first treated period and the unit's observed period just
        # before it (-inf: first observed treated), checked against the periods on the client
        t = df["time"].to_numpy(float)
        before = np.where(t < g, t, -np.inf)
        prev = pd.Series(before).groupby(df["unit"].to_numpy(), sort=False).max()
        first = pd.Series(g).groupby(df["unit"].to_numpy(), sort=False).first()
        keep = np.isfinite(first.to_numpy())
        onsets = (first.index[keep], first.to_numpy()[keep], prev.to_numpy()[keep])
    return {
        "first": None if lo is None else (float(g[lo]), df["unit"].iloc[lo]),
        "last": None if hi is None else (float(g[hi]), df["unit"].iloc[hi]),
        "problem": problem,
        "periods": np.unique(df["time"].to_numpy()),
        "cohorts": np.unique(g[np.isfinite(g)]),
        "n_units": int(df["unit"].nunique()),
        "n_obs": len(df),
        "n_never": int(df.loc[~np.isfinite(g), "unit"].nunique()),
        "never_codes": codes,
        "onsets": onsets,
    }


def _check_onset_gaps(
    scans: list[dict[str, Any]], periods: np.ndarray, names: dict[str, str]
) -> None:
    """As ``Panel.from_frame(treatment=)``: the first 1 dates a unit's zone only when the
    unit is observed in the period just before it (in the data's own periods); after a
    gap, or a late entry already treated, the zone may have opened earlier (the first
    period excepted: a unit treated there is always treated)."""
    bad: list[tuple[Any, float, float]] = []
    for s in scans:
        if s.get("onsets") is None:
            continue
        units, first, prev = s["onsets"]
        just_before = periods[np.maximum(np.searchsorted(periods, first) - 1, 0)]
        gap = (first > periods[0]) & ~(prev == just_before)
        bad += [(u, f, pv) for u, f, pv in zip(units[gap], first[gap], prev[gap], strict=True)]
    if not bad:
        return
    u, t1, pv = bad[0]
    t0 = periods[np.searchsorted(periods, t1) - 1]
    # this reader's periods are whole numbers: printed as such
    raise PanelError(onset_gap_message(names["cohort"], u, t1, t0, pv, len(bad), "{:g}".format))


def compute_blocks(steps: list[Callable[..., Any]], parts: list[Any], **kwargs: Any) -> list[Any]:
    """Apply ``steps`` (functions chained left to right, the first taking the partition)
    to every partition with Dask and return the per-partition results (in partition order).
    The scheduler is Dask's current one: the active ``distributed.Client`` if any."""
    import dask

    tasks = []
    for part in parts:
        out = part
        for i, step in enumerate(steps):
            out = dask.delayed(step, pure=True)(out, **(kwargs if i == len(steps) - 1 else {}))
        tasks.append(out)
    return list(dask.compute(*tasks))


def persist_blocks(step: Callable[..., Any], parts: list[Any], **kwargs: Any) -> list[Any]:
    """``step(part, **kwargs)`` for every partition, kept in the workers' memory
    (``dask.persist``) for the passes that follow; one delayed object per partition."""
    import dask

    return list(dask.persist(*[dask.delayed(step, pure=True)(p, **kwargs) for p in parts]))


def check_covariates_read(dpanel: DaskPanel, covs: Sequence[str]) -> None:
    """Refuse covariates the panel was not read with (every Dask estimator taking them)."""
    unknown = [c for c in covs if c not in dpanel.covariates]
    if unknown:
        raise PanelError(
            f"Covariate(s) {unknown} not in the panel; its covariates are "
            f"{list(dpanel.covariates)}. Add them with read_panel(..., covariates=[...])."
        )


def check_dask_panel(dpanel: Any, outcome: Any) -> None:
    """The checks every Dask estimator makes first: a :class:`DaskPanel` that holds
    ``outcome``."""
    if not isinstance(dpanel, DaskPanel):
        raise SpecError(
            f"Expected a DaskPanel (zoneimpact.distributed.read_panel); received "
            f"{type(dpanel).__name__}."
        )
    if outcome not in dpanel.outcomes:
        raise PanelError(f"Outcome {outcome!r} is not in the panel; outcomes: {dpanel.outcomes}.")


def cluster_sums(parts: list[pd.DataFrame]) -> np.ndarray:
    """Per-partition score sums indexed by cluster label, added over partitions (a
    cluster's units may sit in several partitions): clusters x columns, in first-seen
    order."""
    return pd.concat(parts).groupby(level=0, sort=False).sum().to_numpy()


def moments(x: np.ndarray) -> tuple[float, float, float]:
    """Count, mean and sum of squared deviations of the finite values of ``x`` (one
    partition's block for :func:`pooled_moments`)."""
    x = x[np.isfinite(x)]
    if not x.size:
        return 0.0, 0.0, 0.0
    m = float(x.mean())
    return float(x.size), m, float(((x - m) ** 2).sum())


def pooled_moments(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations over partitions from each partition's
    ``(..., 3)`` array of them (Chan, Golub & LeVeque's pairwise update, so a column with
    a large offset keeps its digits)."""
    first = np.asarray(blocks[0], dtype=float)
    n, mean, m2 = (np.zeros(first.shape[:-1]) for _ in range(3))
    for blk in blocks:
        blk = np.asarray(blk, dtype=float)
        nb, mb, m2b = blk[..., 0], blk[..., 1], blk[..., 2]
        tot = n + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - mean
            mean = np.where(tot > 0, mean + delta * nb / np.where(tot > 0, tot, 1), mean)
            m2 = m2 + m2b + np.where(tot > 0, delta**2 * n * nb / np.where(tot > 0, tot, 1), 0)
        n = tot
    return n, mean, m2


def summed(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Elementwise sum of per-partition dictionaries of arrays (the reduce step); entries
    whose name starts with ``max_`` are reduced by their maximum instead."""
    out = {k: np.array(v, dtype=float, copy=True) for k, v in pieces[0].items()}
    for piece in pieces[1:]:
        for k, v in piece.items():
            out[k] = np.maximum(out[k], v) if k.startswith("max_") else out[k] + v
    return out


def uses_column(dpanel: DaskPanel, value: Any, kind: str) -> bool:
    """Whether a fit's ``cluster``/``weights`` option asks for the panel's column of that
    kind: ``True`` or the column's name (as read) does, ``None``/``False`` (and ``"unit"``
    for clusters) do not; any other name is an error naming the column that was read."""
    have = dpanel.cluster if kind == "cluster" else dpanel.weights
    unit_names = ("unit", dpanel.names.get("unit"))
    if value is None or value is False or (kind == "cluster" and value in unit_names):
        return False
    if value is True or (isinstance(value, str) and value == have):
        if have is None:
            raise SpecError(
                f"{kind}={value!r} but the panel was read without a {kind} column; pass "
                f"read_panel(..., {'cluster' if kind == 'cluster' else 'weights'}='column')."
            )
        return True
    if have is None:
        raise SpecError(
            f"{kind}={value!r} but the panel was read without a {kind} column; pass "
            f"read_panel(..., {'cluster' if kind == 'cluster' else 'weights'}={value!r}) to "
            "read it, or None."
        )
    raise SpecError(
        f"{kind}={value!r}: the panel was read with {kind} column {have!r}; pass that name, "
        f"True, or None."
    )


def _extremes(df: pd.DataFrame, *, cols: list[str]) -> np.ndarray:
    x = df[cols].to_numpy(dtype=float) if len(df) else np.full((1, len(cols)), np.nan)
    with np.errstate(all="ignore"):
        lo = np.where(np.isnan(x).all(axis=0), np.inf, np.nanmin(x, axis=0, initial=np.inf))
        hi = np.where(np.isnan(x).all(axis=0), -np.inf, np.nanmax(x, axis=0, initial=-np.inf))
    return np.vstack([lo, hi])


def midranges(parts: list[Any], cols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per column the middle of its observed range over every partition and half its
    width (0 where nothing is observed). The fixed effects absorb a constant, so
    subtracting the middle changes no estimate, while the sweeps' arithmetic then works
    at the column's variation and not at its level, as the in-memory ``_fe.demean``
    centring (an outcome of 1,000 + y made the alternating projections stall at
    rounding, a breaker's check in session 20); the half width is the column's own scale
    for their stopping rule."""
    if not cols:
        return np.zeros(0), np.zeros(0)
    ext = compute_blocks([_extremes], parts, cols=cols)
    lo = np.min([e[0] for e in ext], axis=0)
    hi = np.max([e[1] for e in ext], axis=0)
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    return (lo + hi) / 2, (hi - lo) / 2


def tie_columns(dpanel: DaskPanel, outcome: str) -> list[str]:
    """The numeric columns, other than ``outcome``, that :meth:`Panel.canonical_order`
    breaks ties by, in the order of the in-memory panel read with the same outcomes and
    covariates: the outcomes, the covariates, then the weight and cluster columns (stored
    as ``weight`` and ``cluster``) when the panel does not hold them under their own
    names (an in-memory fit with ``weights="pop"`` needs ``pop`` as a panel column)."""
    own = list(dict.fromkeys([*dpanel.outcomes, *dpanel.covariates]))
    extra = [k for k in ("weight", "cluster") if k in dpanel.names and dpanel.names[k] not in own]
    meta = dpanel.frame._meta
    return [
        c for c in [*own, *extra] if c != outcome and pd.api.types.is_numeric_dtype(meta[c].dtype)
    ]


def _unit_block(df: pd.DataFrame, *, columns: list[str], periods: np.ndarray) -> dict[str, Any]:
    """One partition's units (sorted), cohorts and ``columns`` as units x periods tables."""
    ucode, units = pd.factorize(df["unit"], sort=True)
    tcode = np.searchsorted(periods, df["time"].to_numpy())
    cohort = np.full(len(units), np.nan)
    cohort[ucode] = df["cohort"].to_numpy(dtype=float)
    tables = np.full((len(columns), len(units), len(periods)), np.nan)
    for j, c in enumerate(columns):
        tables[j, ucode, tcode] = df[c].to_numpy(dtype=float)
    return {"units": np.asarray(units), "cohort": cohort, "tables": tables}


def unit_tables(
    dpanel: DaskPanel, columns: Sequence[str]
) -> tuple[pd.Index, np.ndarray, list[np.ndarray]]:
    """The panel's units (sorted), their cohorts and each of ``columns`` as a units x
    periods float table (NaN where a unit-period is missing), gathered on the client from
    the partitions (each unit sits in one)."""
    parts = compute_blocks(
        [_unit_block],
        dpanel.partitions(),
        columns=list(columns),
        periods=np.asarray(dpanel.periods),
    )
    units = np.concatenate([p["units"] for p in parts])
    order = np.argsort(units, kind="stable")
    cohort = np.concatenate([p["cohort"] for p in parts])[order]
    tables = [np.concatenate([p["tables"][j] for p in parts])[order] for j in range(len(columns))]
    return pd.Index(units[order]), cohort, tables
