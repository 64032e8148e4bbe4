"""Validated long panel of units (cities, counties, firms) observed over periods.

A :class:`Panel` is the one container every estimator reads. It is built once by
:meth:`Panel.from_frame` (or :func:`read_panel` for files), which checks the input and
reports problems with the column, unit and period at fault; after that it is read-only.

Internally the frame carries canonical columns ``unit``, ``time`` and ``cohort`` (the first
zone year; ``inf`` for never-treated units, so ``time >= cohort`` is the treatment
indicator), followed by the outcome and covariate columns under their own names. The
caller's names of the unit, time and cohort columns are kept in :attr:`Panel.names` for
messages and reports.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import _frames
from .errors import GeographyError, PanelError

NEVER = np.inf
RESERVED = ("unit", "time", "cohort")


def _v(x: Any) -> Any:
    """Plain Python value for messages (numpy scalars print as np.int64(...) otherwise)."""
    return x.item() if isinstance(x, np.generic) else x


def _row(df: pd.DataFrame, mask: np.ndarray | pd.Series) -> dict[Any, Any]:
    """The first row where ``mask`` holds, column by column (``df.loc[mask].iloc[0]`` would
    cast every value to one dtype and print unit 7 as 7.0)."""
    i = int(np.flatnonzero(np.asarray(mask))[0])
    return {c: _v(df[c].iloc[i]) for c in df.columns}


def _first_row(df: pd.DataFrame, mask: np.ndarray | pd.Series, unit: str, time: str) -> str:
    row = _row(df, mask)
    return f"unit {row[unit]!r}, period {row[time]!r}"


def _label(value: Any, name: str) -> None:
    """A column argument must be one column label (a string, usually)."""
    try:
        hash(value)
    except TypeError:
        raise PanelError(
            f"{name} must be one column name; received {value!r} ({type(value).__name__})."
        ) from None
    if isinstance(value, bool | float) or value is None:
        raise PanelError(f"{name} must be a column name; received {value!r}.")


def _labels(value: Any, name: str) -> tuple[Any, ...]:
    """A column name or a list of them (one string is one name)."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence | pd.Index | np.ndarray | set | frozenset):
        raise PanelError(
            f"{name} must be a column name or a list of column names; received {value!r} "
            f"({type(value).__name__})."
        )
    out = tuple(value)
    for v in out:
        _label(v, name)
    return out


def _unsupported_kind(col: pd.Series) -> str | None:
    """What a column holds when it cannot be numbers: dates, durations, complex numbers."""
    dt = col.dtype
    if pd.api.types.is_complex_dtype(dt):
        return "complex numbers"
    if pd.api.types.is_datetime64_any_dtype(dt) or isinstance(dt, pd.PeriodDtype):
        return "dates"
    if pd.api.types.is_timedelta64_dtype(dt):
        return "durations (timedelta)"
    if pd.api.types.is_object_dtype(dt):
        vals = col.dropna()
        if len(vals):
            kinds: dict[str, type | tuple[type, ...]] = {
                "complex numbers": complex,
                "durations (timedelta)": (pd.Timedelta, _dt.timedelta),
                "dates": (pd.Timestamp, pd.Period, _dt.date),
            }
            for kind, types in kinds.items():
                if any(
                    isinstance(v, types) and not isinstance(v, bool | int | float) for v in vals
                ):
                    return kind
    return None


@dataclass(frozen=True)
class _Grid:
    """Where each row of a panel's data sits in a units x periods table: ``r`` (the
    unit's position in ``units``, the panel's sorted units), ``c`` (the period's) and
    ``first`` (each unit's first row)."""

    units: pd.Index
    n_periods: int
    r: np.ndarray
    c: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, data: pd.DataFrame) -> _Grid:
        r, uniq = pd.factorize(data["unit"], sort=True)
        periods, c = np.unique(data["time"].to_numpy(), return_inverse=True)
        first = np.unique(r, return_index=True)[1]
        return cls(pd.Index(uniq), len(periods), r, c.ravel(), first)

    def table(self, col: pd.Series) -> np.ndarray:
        """``col`` as a (units + 1) x periods array (missing where a unit-period is not
        observed); the last row (index -1) is all missing, for units not in the panel.
        Numbers as floats, anything else (text) as objects."""
        shape = (len(self.units) + 1, self.n_periods)
        if _numeric(col):
            out = np.full(shape, np.nan)
            out[self.r, self.c] = col.to_numpy(float)
            return out
        obj = np.full(shape, None, dtype=object)
        obj[self.r, self.c] = col.to_numpy(object)
        return obj


def _numeric(col: pd.Series) -> bool:
    """Whether a column's values sort as numbers (booleans too)."""
    return bool(pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype))


def _membership_codes(values: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Codes of unit labels (a region per unit, rows in canonical order) that do not depend
    on the labels' names: a label is ranked by the tie blocks its units are in (their
    count, then the sorted block numbers), so renaming regions moves nothing; labels with
    the same blocks share a code. Missing labels last."""
    codes, _ = pd.factorize(pd.Series(values, dtype=object))
    k = int(codes.max()) + 1 if len(codes) else 0
    by = np.lexsort([block, codes])
    by = by[codes[by] >= 0]
    split = np.flatnonzero(np.diff(codes[by])) + 1
    members = np.split(block[by], split) if len(by) else []
    rank = sorted(range(k), key=lambda c: (len(members[c]), members[c].tolist()))
    sig = {c: (len(members[c]), tuple(members[c].tolist())) for c in range(k)}
    code_of = np.empty(k, dtype=np.int64)
    last: tuple[int, tuple[int, ...]] | None = None
    n = -1
    for c in rank:
        if sig[c] != last:
            n, last = n + 1, sig[c]
        code_of[c] = n
    return np.where(codes >= 0, code_of[np.maximum(codes, 0)] if k else 0, np.iinfo(np.int64).max)


def _last_if_missing(a: np.ndarray) -> np.ndarray:
    """``a`` as floats with missing values as ``inf``, so they sort last."""
    a = np.asarray(a, dtype=float)
    return np.where(np.isnan(a), np.inf, a)


@dataclass(frozen=True)
class TieKeys:
    """The data :func:`canonical_positions` breaks ties in cohort and outcome by.

    ``rows``: each ordered unit's row in the tables (-1 reads the last row, which holds
    missing values, for a unit without data). ``numeric``: 2-D float tables (a row per
    unit: another column period by period, a coordinate, neighbour counts), compared
    left to right, missing values last. ``labels``: 1-D label arrays (region names or
    codes), compared after the numbers by their members (:func:`_membership_codes`)."""

    rows: np.ndarray
    numeric: list[np.ndarray]
    labels: list[np.ndarray]


def canonical_positions(
    cohort: np.ndarray, outcome: np.ndarray, tie_keys: Callable[[], TieKeys]
) -> np.ndarray:
    """Positions that put units in the order of :meth:`Panel.canonical_order`.

    Sorted by ``cohort`` (one per unit), then by the ``outcome`` table (units x periods)
    in the first period, the second, ... (missing values last); units tied on all of
    that by :class:`TieKeys` (``tie_keys`` is only called when there are ties). Units
    identical in all of these keep their given order. The in-memory panel and the Dask
    engines both order units through this function, so they draw alike.
    """
    coh = np.asarray(cohort, dtype=float)
    vals = _last_if_missing(outcome)
    # np.lexsort: the last key is the primary one
    order = np.lexsort([*(vals[:, j] for j in range(vals.shape[1] - 1, -1, -1)), coh])
    prim = np.column_stack([coh, vals])[order]
    tied = np.all(prim[1:] == prim[:-1], axis=1)
    if tied.any():
        block = np.cumsum(np.r_[True, ~tied])  # tie groups, in the first sort's order
        order = _refine_ties(order, block, tie_keys())
    return order


def _refine_ties(order: np.ndarray, block: np.ndarray, keys: TieKeys) -> np.ndarray:
    """``order`` with each tie ``block`` (consecutive, numbered in order) sorted by
    ``keys`` (:func:`canonical_positions`); stable otherwise."""
    # only the tied units are sorted again: their blocks keep their places
    sel = np.flatnonzero(np.bincount(block)[block] > 1)
    sub = keys.rows[order[sel]]
    numeric = [np.asarray(t)[sub] for t in keys.numeric]
    labels = [_membership_codes(np.asarray(v)[keys.rows][order], block)[sel] for v in keys.labels]
    num = _last_if_missing(np.column_stack(numeric) if numeric else np.empty((len(sel), 0)))
    ordered = [*labels[::-1], *(num[:, j] for j in range(num.shape[1] - 1, -1, -1))]
    out = order.copy()
    out[sel] = order[sel][np.lexsort([*ordered, block[sel]])]
    return out


#: largest period number kept exactly (floats above 2**53 are not whole numbers any more)
_MAX_PERIOD = 2**53


@dataclass(frozen=True)
class Panel:
    """A validated long panel.

    Attributes
    ----------
    data : pandas.DataFrame
        Sorted by unit and time, with columns ``unit``, ``time``, ``cohort`` (float,
        ``inf`` = never treated), the outcomes and the covariates.
    outcomes, covariates : tuple of str
        Column names in ``data``.
    geography : pandas.DataFrame or None
        Indexed by unit; columns among ``region``, ``lat``, ``lon`` (and any others given).
    adjacency : pandas.DataFrame or None
        Columns ``unit`` and ``neighbour``, both directions present.
    names : dict
        The caller's names of the unit, time and cohort columns.
    report : dict
        What validation found: counts of units, periods, missing unit-periods, cohorts,
        and any units dropped or recoded (with the reason).
    sources : pandas.DataFrame or None
        Zones outside the estimation sample that still expose their neighbours, indexed by
        unit: ``cohort`` (opening period, possibly before the data start) and any of
        ``region``, ``lat``, ``lon``. Always-treated units dropped by
        ``outside_window="adjust"`` land here, as do zones passed as ``sources=``.
    source_links : pandas.DataFrame or None
        Adjacency pairs ``unit`` (a panel unit) - ``source`` (a source zone).
    """

    data: pd.DataFrame
    outcomes: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    geography: pd.DataFrame | None = None
    adjacency: pd.DataFrame | None = None
    names: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    sources: pd.DataFrame | None = None
    source_links: pd.DataFrame | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        unit: str,
        time: str,
        outcomes: str | Sequence[str],
        cohort: str | None = None,
        treatment: str | None = None,
        covariates: Sequence[str] = (),
        geography: pd.DataFrame | None = None,
        adjacency: pd.DataFrame | None = None,
        never_values: Iterable[float] = (0,),
        outside_window: Literal["error", "adjust"] = "error",
        sources: pd.DataFrame | None = None,
    ) -> Panel:
        """Validate a long DataFrame and build a :class:`Panel`.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per unit and period. Never modified.
        unit, time : str
            Identifier columns. ``time`` must hold whole numbers (years).
        outcomes : str or sequence of str
            Numeric outcome columns; NaN marks a missing value, infinities are errors.
        cohort : str, optional
            First treatment (zone) period of each unit; empty, NaN or a value in
            ``never_values`` means never treated. Exactly one of ``cohort`` and
            ``treatment`` must be given.
        treatment : str, optional
            A 0/1 absorbing treatment indicator from which the cohort is derived. A unit
            treated in every observed period is kept, as a cohort of the first period:
            TWFE and its Goodman-Bacon decomposition use such units (``cohort=`` refuses
            or drops them, as R ``did`` does, and so do the DiD estimators).
        covariates : sequence of str
            Numeric covariates (time-varying or not).
        geography : DataFrame, optional
            Columns ``unit`` (matching the panel's unit ids; or named as the panel's
            ``unit`` column) and any of ``region``, ``lat``, ``lon``.
        adjacency : DataFrame, optional
            Two columns ``unit`` (or the panel's unit column name) and ``neighbour``;
            made symmetric.
        never_values : iterable of float
            Cohort codes meaning "never treated" (R ``did`` uses 0).
        outside_window : {"error", "adjust"}
            A cohort before the first observed period (always treated) or after the last
            is an error by default. ``"adjust"`` drops always-treated units and recodes late
            cohorts as never treated, as R ``did`` does, and records both in ``report``;
            the dropped units stay as exposure :attr:`sources`.
        sources : DataFrame, optional
            Zones that are not panel units but expose their neighbours (e.g. zones in
            units outside the data): columns ``unit`` (or the panel's unit column name)
            and ``cohort`` (opening period) and
            any of ``region``, ``lat``, ``lon``; the adjacency list may name them. A unit
            of the data (a panel unit, or one dropped as always treated, which is a source
            already) is refused, also when its id is spelled another way ('105' for 105).
        """
        frame = _frames.as_pandas(frame)  # polars, pyarrow, ...: converted, never modified
        if not isinstance(frame, pd.DataFrame):
            raise PanelError(f"Expected a pandas DataFrame, received {type(frame).__name__}.")
        outcomes, covariates, never = _check_arguments(
            unit, time, outcomes, cohort, treatment, covariates, outside_window, never_values
        )
        needed = [unit, time, cohort if cohort is not None else treatment, *outcomes, *covariates]
        _check_columns(frame, needed, outcomes, covariates)
        _check_roles(unit=unit, time=time, cohort=cohort)
        df, time_kind = _id_columns(frame, needed, unit, time)
        keys = _row_keys(df, unit, time)
        _numeric_columns(df, (*outcomes, *covariates), unit, time)
        periods = np.sort(df[time].unique())
        if cohort is not None:
            coh = _cohort_numbers(df, cohort, unit, time, time_kind, never)
            lo = _constant_cohort(df, coh, cohort, unit, keys, time_kind)
            df["cohort"] = coh
        else:
            df, lo = _cohort_from_treatment(df, treatment, unit, time, time_kind), None
        report: dict[str, Any] = {"dropped_always_treated": [], "recoded_late_cohort": []}
        df, ucoh, early = _outside_window(
            df, _unit_cohorts(df, unit, lo, keys), unit, cohort, periods, outside_window, report,
            time_kind,
        )  # fmt: skip
        df = _canonical_rows(
            df, unit, time, (*outcomes, *covariates), keys, presorted=treatment is not None
        )
        # the sources' opening periods are read on the time column's scale
        report["time_frequency"] = str(time_kind)
        geo, adj, src, links = _attach_geography(
            df, *_keyed_by_unit(unit, geography, adjacency, sources),
            early if cohort is not None else None, report, never, time_kind,
        )  # fmt: skip
        report.update(_summary(df, ucoh, outcomes))
        names = {
            "unit": unit,
            "time": time,
            "cohort": cohort if cohort is not None else f"first({treatment}==1)",
        }
        return cls(df, outcomes, covariates, geo, adj, names, report, src, links)

    # ------------------------------------------------------------------ accessors
    @property
    def units(self) -> np.ndarray:
        """Unit ids in sorted order."""
        return self.data["unit"].unique()

    @property
    def periods(self) -> np.ndarray:
        """Observed periods in increasing order."""
        return np.sort(self.data["time"].unique())

    @property
    def n_units(self) -> int:
        return int(self.report["n_units"])

    @property
    def balanced(self) -> bool:
        return bool(self.report["balanced"])

    @property
    def unit_cohort(self) -> pd.Series:
        """Cohort of every unit (``inf`` = never treated), indexed by unit."""
        return self.data.groupby("unit", sort=True)["cohort"].first()

    @property
    def cohorts(self) -> np.ndarray:
        """Treated cohorts (finite first zone periods) in increasing order."""
        c = self.unit_cohort.to_numpy()
        return np.unique(c[np.isfinite(c)])

    def treated(self) -> pd.Series:
        """0/1 treatment indicator ``time >= cohort`` aligned with :attr:`data`."""
        return (self.data["time"] >= self.data["cohort"]).astype(np.int8)

    def canonical_order(self, units: Sequence[Any] | np.ndarray, outcome: str) -> list[Any]:
        """``units`` ordered by their data, not their labels.

        Sorted by cohort, then by the outcome in the first period, the second, ... (missing
        values last). Units tied on all of that are then ordered by every other datum an
        estimator can read about a unit: the other outcome and covariate columns (doses,
        weights) period by period, the geography columns (region, lat, lon, ...), and the
        number of neighbours and zone neighbours (earliest opening first) in the adjacency
        and sources tables. Geography labels (``region`` and any column that is not
        decimal numbers) enter through their members, not their names
        (:func:`_membership_codes`). Only units identical in all of these keep the order
        they were given in.

        Resampling and permutation loops draw over this order, so the same seed gives the
        same draws whatever the units are called; units with identical data are
        interchangeable, so their relative order cannot matter. Without ties in cohort
        and outcome the order is the first sort's. The Dask engines order through the same
        :func:`canonical_positions` (their panels hold no geography or adjacency tables).
        """
        units = list(units)
        self._check_outcome(outcome)
        grid = _Grid.of(self.data)
        rows = grid.units.get_indexer(pd.Index(units))
        coh = self.data["cohort"].to_numpy(float)[grid.first]
        coh = np.append(coh, np.nan)[rows]  # a unit not in the panel: missing data
        vals = grid.table(self.data[outcome])[rows]
        order = canonical_positions(coh, vals, lambda: self._tie_keys(grid, rows, outcome))
        return [units[i] for i in order]

    def _tie_keys(self, grid: _Grid, rows: np.ndarray, outcome: str) -> TieKeys:
        """What :meth:`canonical_order` breaks ties in cohort and outcome by, as tables
        with a row per unit of ``grid`` and a last all-missing row (``rows``: the
        ordered units' rows there, -1 for a unit not in the panel)."""
        numeric = [  # units x k tables of keys
            grid.table(self.data[col])
            for col in self.data.columns
            if col not in RESERVED and col != outcome and _numeric(self.data[col])
        ]
        labels: list[np.ndarray] = []
        if self.geography is not None:
            geo = self.geography.reindex(grid.units)
            for col in geo.columns:
                v = np.append(geo[col].to_numpy(object), [None])
                # measurements (lat, lon) by value; region names or codes by membership
                if pd.api.types.is_float_dtype(geo[col].dtype) and col != "region":
                    numeric.append(v.astype(float)[:, None])
                else:
                    labels.append(v)
        numeric.append(self._neighbour_keys(grid))
        return TieKeys(rows, numeric, labels)

    def _neighbour_keys(self, grid: _Grid) -> np.ndarray:
        """Per unit (rows of :attr:`units` + a missing row): the number of neighbours, of
        zone neighbours and their earliest opening, in the adjacency table and then in the
        sources' links (what exposure maps read)."""
        uidx = grid.units
        out = np.zeros((len(uidx) + 1, 6))
        out[:, [2, 5]] = np.inf
        out[-1] = np.nan
        coh = pd.Series(self.data["cohort"].to_numpy(float)[grid.first], uidx)
        links = [(self.adjacency, "neighbour", coh)]
        if self.source_links is not None and self.sources is not None:
            links.append((self.source_links, "source", self.sources["cohort"]))
        for k, (tab, other, opening) in enumerate(links):
            if tab is None or not len(tab):
                continue
            r = uidx.get_indexer(tab["unit"])
            op = pd.Series(opening).reindex(tab[other].to_numpy()).to_numpy(float)
            ok = r >= 0
            out[:-1, 3 * k] = np.bincount(r[ok], minlength=len(uidx))
            zone = ok & np.isfinite(op)
            out[:-1, 3 * k + 1] = np.bincount(r[zone], minlength=len(uidx))
            first = np.full(len(uidx), np.inf)
            np.minimum.at(first, r[zone], op[zone])
            out[:-1, 3 * k + 2] = first
        return out

    def wide(self, outcome: str) -> pd.DataFrame:
        """Outcome as a units x periods table (NaN where a unit-period is missing)."""
        self._check_outcome(outcome)
        return self.data.pivot(index="unit", columns="time", values=outcome)

    def _check_outcome(self, outcome: str) -> None:
        if outcome not in self.data.columns or outcome in RESERVED:
            raise PanelError(
                f"Outcome {outcome!r} is not in the panel; outcomes: {list(self.outcomes)}, "
                f"covariates: {list(self.covariates)}."
            )

    def require_geography(
        self, columns: Sequence[str], units: Sequence[Any] | np.ndarray | None = None
    ) -> pd.DataFrame:
        """Return the geography table, checking that ``columns`` exist for ``units``."""
        columns = [columns] if isinstance(columns, str) else list(columns)
        if self.geography is None:
            raise GeographyError(
                f"This step needs geography columns {list(columns)} but the panel has no "
                "geography table; pass geography= to Panel.from_frame."
            )
        miss = [c for c in columns if c not in self.geography.columns]
        if miss:
            raise GeographyError(
                f"Geography table lacks column(s) {miss}; it has {list(self.geography.columns)}."
            )
        units = self.units if units is None else units
        sub = self.geography.reindex(units)[list(columns)]
        bad = sub.isna().any(axis=1)
        if bad.any():
            u = sub.index[bad.to_numpy()][0]
            col = sub.columns[sub.loc[u].isna().to_numpy()][0]
            raise GeographyError(
                f"Geography missing for unit {_v(u)!r}: column {col!r} is empty or the unit is "
                f"absent ({int(bad.sum())} unit(s) affected)."
            )
        return sub

    def replace(self, **changes: Any) -> Panel:
        """A new Panel with some fields replaced (the data frame is not re-validated)."""
        fields = {
            "data": self.data,
            "outcomes": self.outcomes,
            "covariates": self.covariates,
            "geography": self.geography,
            "adjacency": self.adjacency,
            "names": self.names,
            "report": self.report,
            "sources": self.sources,
            "source_links": self.source_links,
        }
        fields.update(changes)
        return Panel(**fields)

    def column_for(self, name: Any) -> Any:
        """The panel column a caller's column name refers to.

        The panel stores the unit, time and cohort columns as ``unit``, ``time`` and
        ``cohort``; the caller's own names for them (:attr:`names`, e.g. ``"countyreal"``,
        ``"year"``) mean those columns in ``cluster=`` and TWFE's ``fixed_effects=``. Any
        other name, or a name that is itself a panel column, is returned unchanged
        (:meth:`from_frame` refuses a role column named after another role, so a name
        cannot mean two columns).
        """
        if isinstance(name, str) and name not in self.data.columns:
            for canonical, own in self.names.items():
                if name == own:
                    return canonical
        return name

    def with_outcome(
        self, name: str, values: pd.Series | np.ndarray, *, overwrite: bool = False
    ) -> Panel:
        """A new Panel with an added (derived) outcome column aligned with :attr:`data`.

        ``values`` holds one real number per row of :attr:`data` (NaN = missing; infinities
        are errors, as in :meth:`from_frame`); ``name`` may not be ``unit``, ``time`` or
        ``cohort``, nor another column than an outcome (an outcome is replaced) unless
        ``overwrite`` (the package's own fits replace the column they are fitting, which
        may be a covariate).
        """
        if not isinstance(name, str) or not name or name in RESERVED:
            raise PanelError(
                f"with_outcome needs a new column name other than {RESERVED}; received {name!r}."
            )
        if name in self.data.columns and name not in self.outcomes and not overwrite:
            raise PanelError(
                f"with_outcome: {name!r} is already a column of the panel (a covariate, weight "
                "or other column), which the new outcome would overwrite; choose another name."
            )
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise PanelError(f"Outcome {name!r}: values must be real numbers ({exc}).") from None
        if arr.shape != (len(self.data),):
            raise PanelError(
                f"Outcome {name!r}: {arr.shape} values for {len(self.data)} rows; give one "
                "value per row of panel.data, in its order."
            )
        if np.isinf(arr).any():
            i = int(np.flatnonzero(np.isinf(arr))[0])
            raise PanelError(
                f"Outcome {name!r} has an infinite value at unit "
                f"{_v(self.data['unit'].iloc[i])!r}, period {_v(self.data['time'].iloc[i])!r}; "
                "use NaN for missing values."
            )
        data = self.data.copy()
        data[name] = arr
        outs = self.outcomes if name in self.outcomes else (*self.outcomes, name)
        return self.replace(data=data, outcomes=outs)

    def __repr__(self) -> str:
        r = self.report
        return (
            f"Panel({r['n_units']} units x {r['n_periods']} periods "
            f"{r['first_period']}-{r['last_period']}, {r['n_missing_unit_periods']} missing "
            f"unit-periods, cohorts {r['cohort_sizes']}, outcomes {list(self.outcomes)})"
        )


# ---------------------------------------------------------------------- from_frame steps
# Panel.from_frame runs these in order; each step raises the PanelError/GeographyError of
# its own check, so the first problem in that order is the one reported.


def _check_arguments(
    unit: Any,
    time: Any,
    outcomes: Any,
    cohort: Any,
    treatment: Any,
    covariates: Any,
    outside_window: Any,
    never_values: Any,
) -> tuple[tuple[Any, ...], tuple[Any, ...], set[float]]:
    """Step 1: the arguments themselves (column labels, options), before the data are read.

    Returns the outcome and covariate names as tuples and the never-treated codes as floats.
    """
    outcomes = _labels(outcomes, "outcomes")
    covariates = () if covariates is None else _labels(covariates, "covariates")
    if not outcomes:
        raise PanelError("No outcome given: pass outcomes=['column', ...].")
    if (cohort is None) == (treatment is None):
        raise PanelError(
            "Give exactly one of cohort= (first zone period per unit) and treatment= "
            f"(0/1 absorbing indicator); received cohort={cohort!r}, treatment={treatment!r}."
        )
    _label(unit, "unit")
    _label(time, "time")
    _label(cohort if cohort is not None else treatment, "cohort" if cohort else "treatment")
    if not isinstance(outside_window, str) or outside_window not in ("error", "adjust"):
        raise PanelError(
            f"outside_window must be 'error' or 'adjust'; received {outside_window!r}."
        )
    try:
        if isinstance(never_values, str | bytes):
            # a string is iterable too, but "10" would mean the codes 1 and 0
            raise TypeError
        never = {float(v) for v in never_values}
    except (TypeError, ValueError):
        raise PanelError(
            "never_values must be a list of numbers meaning 'never treated' (R did uses "
            f"[0]); received {never_values!r}."
        ) from None
    return outcomes, covariates, never


def _check_roles(**role_columns: Any) -> None:
    """A unit, time or cohort column may not be named after another of the three roles
    (``unit="time"``): the panel stores them as ``unit``, ``time`` and ``cohort``, and a
    name such as ``cluster="time"`` or ``fixed_effects=("unit", "time")`` would then mean
    two columns at once."""
    for role, name in role_columns.items():
        if name in RESERVED and name != role:
            raise PanelError(
                f"The {role} column is named {name!r}, the name of the panel's {name} column; "
                f"rename it (e.g. frame.rename(columns={{{name!r}: {role + '_id'!r}}})) so that "
                f"{name!r} means one column."
            )


def _check_columns(
    frame: pd.DataFrame,
    needed: list[Any],
    outcomes: tuple[Any, ...],
    covariates: tuple[Any, ...],
) -> None:
    """Step 2: every needed column is present once, under a name that is not reserved, and
    the frame has rows."""
    twice = sorted({str(c) for c in needed if (frame.columns == c).sum() > 1})
    if twice:
        raise PanelError(
            f"The data have several columns named {twice}; rename or drop the copies "
            "(pandas keeps duplicate names, e.g. after pd.concat(axis=1))."
        )
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        in_index = [c for c in missing if c is not None and c in frame.index.names]
        hint = (
            f" {in_index} {'is' if len(in_index) == 1 else 'are'} in the index: call "
            "frame.reset_index() first."
            if in_index
            else ""
        )
        raise PanelError(
            f"Column(s) {missing} not found in the data; available columns: "
            f"{list(frame.columns)}.{hint}"
        )
    clash = [c for c in (*outcomes, *covariates) if c in RESERVED]
    if clash:
        raise PanelError(
            f"Outcome/covariate column(s) {clash} use reserved names {RESERVED}; rename them."
        )
    if len(set(needed)) != len(needed):
        raise PanelError(f"A column is used twice among {needed}.")
    if len(frame) == 0:
        raise PanelError(
            f"The data frame has no rows (columns {list(frame.columns)}); a panel needs at "
            "least one unit observed in two periods."
        )


def _id_columns(
    frame: pd.DataFrame, needed: list[Any], unit: Any, time: Any
) -> tuple[pd.DataFrame, str]:
    """Step 3: a working copy of the needed columns with complete unit and period ids, the
    periods as whole numbers (:func:`_period_numbers`); and the time column's kind."""
    # a fresh positional index: a non-unique index (after pd.concat) must not align
    # rows with each other below
    df = frame.loc[:, list(dict.fromkeys(needed))].reset_index(drop=True)
    for col in (unit, time):
        bad = df[col].isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise PanelError(
                f"Missing ids in column {col!r}: {int(bad.sum())} row(s), first at row "
                f"position(s) {rows}."
            )
    if isinstance(df[unit].dtype, pd.CategoricalDtype):
        # categories without rows would become phantom units in groupby and pivots
        df[unit] = df[unit].cat.remove_unused_categories()
    _check_unit_ids(df[unit], unit)
    df[time], time_kind = _period_numbers(df[time], time, df[unit])
    return df, time_kind


def _check_unit_ids(col: pd.Series, column: Any) -> None:
    """Refuse unit ids that spell one id two ways: a number and a text of the same number
    (8001 and '8001', as after concatenating two sources one of which read the ids as text)
    or two texts of the same number ('8001' and '8001.0'). Either would split a unit in two
    silently. Numbers mixed with texts that read as no number among them are kept."""
    clash = _spelling_clash(_id_values(col))
    if clash is None:
        return
    mixed, what = clash
    if mixed:
        raise PanelError(
            f"Unit column {column!r} mixes numbers and text, e.g. {what}; a unit spelled "
            f"both ways would be split in two. Give the ids one type, e.g. "
            f"frame[{column!r}].astype(str) (or pd.to_numeric)."
        )
    raise PanelError(
        f"Unit column {column!r} spells one number in several ways: {what}; they would be "
        f"different units. Normalise the ids (e.g. "
        f"pd.to_numeric(frame[{column!r}]).astype('int64').astype(str)) or, if they really "
        "are different units, give them labels that do not read as the same number."
    )


def _check_id_spellings(ids: Any, panel_ids: Any, what: str, error: type[Exception]) -> None:
    """Refuse ids of ``what`` (``sources=``, ``others=``) that spell a panel unit's id
    another way, by :func:`_check_unit_ids`' rule applied to both sets together: 105 for
    the panel's '105' (or '105' for 105, '105.0' for '105') would pass an exact "is a
    panel unit" test and count the unit twice. The panel's own ids passed that rule."""
    own, theirs = _id_values(pd.Series(ids)), _id_values(pd.Series(panel_ids))
    both = np.concatenate([theirs.to_numpy(dtype=object), own.to_numpy(dtype=object)])
    clash = _spelling_clash(pd.Index(pd.unique(both)))
    if clash is None:
        return
    mixed, pair = clash
    how = "mix numbers and text" if mixed else "spell one number in several ways"
    raise error(
        f"The unit ids of {what} and of the panel together {how}: {pair}. An id spelled "
        f"two ways is two units, so a panel unit would pass as a unit outside the panel. "
        f"Give {what} the panel's unit ids as the panel spells them (e.g. with "
        "pd.to_numeric or .astype(str))."
    )


def _id_values(col: pd.Series) -> pd.Index:
    """The distinct ids of a unit column (a categorical's categories)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Index(col.dtype.categories)
    return pd.Index(pd.unique(col.to_numpy()))


def _spelling_clash(vals: pd.Index) -> tuple[bool, str] | None:
    """The first id spelled two ways among distinct ids ``vals``: ``(True, pair)`` for a
    number and a text of it, ``(False, spellings)`` for texts of one number; None if none."""
    if not (pd.api.types.is_object_dtype(vals.dtype) or pd.api.types.is_string_dtype(vals)):
        return None  # numbers (or dates) of one dtype
    is_text = np.fromiter((isinstance(v, str) for v in vals), dtype=bool, count=len(vals))
    if not is_text.any():
        return None
    is_num = np.fromiter(
        (
            isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
            for v in vals
        ),
        dtype=bool,
        count=len(vals),
    )
    texts = vals[is_text]
    parsed = pd.to_numeric(pd.Series(np.asarray(texts, dtype=object)), errors="coerce")
    parsed = parsed.to_numpy(float)
    if is_num.any():
        nums = vals[is_num]
        numv = pd.to_numeric(pd.Series(np.asarray(nums, dtype=object)), errors="coerce")
        hit = np.flatnonzero(np.isin(parsed, numv.to_numpy(float)))
        if len(hit):
            # only a text that reads as one of the numbers is refused: numbers mixed with
            # labels such as 'zero' or 'A12' are distinct units
            txt = texts[hit[0]]
            num = nums[int(np.flatnonzero(numv.to_numpy(float) == parsed[hit[0]])[0])]
            return True, f"{_v(num)!r} and {txt!r} ({len(hit)} id(s) spelled both ways)"
    ok = np.isfinite(parsed)
    same = pd.Series(parsed[ok]).duplicated(keep=False).to_numpy()
    if same.any():
        where = np.flatnonzero(ok)[same]
        first = parsed[where[0]]
        spellings = [t for t, v in zip(texts[where], parsed[where], strict=True) if v == first]
        return False, f"{spellings[:3]} ({int(same.sum())} ids affected)"
    return None


@dataclass(frozen=True)
class _RowKeys:
    """Unit and period codes in sorted order, computed once (:func:`_row_codes`): one key
    per row serves the duplicate check, the within-unit cohort check and the test whether
    the rows are already in (unit, period) order (then the final sort is skipped).
    ``counts`` (rows per key) is None when the key range is too wide to count densely."""

    ucode: np.ndarray
    ulevels: pd.Index
    key: np.ndarray
    counts: np.ndarray | None
    in_order: bool


def _row_keys(df: pd.DataFrame, unit: Any, time: Any) -> _RowKeys | None:
    """Step 4: refuse duplicate (unit, period) rows; return the row keys (None for units
    that take the generic checks)."""
    codes = _row_codes(df[unit], df[time])
    dup = None
    if codes is not None:
        ucode, ulevels, key, n_keys = codes
        counts = np.bincount(key, minlength=n_keys) if n_keys <= 4 * len(df) + 1024 else None
        dup = counts[key] > 1 if counts is not None else None
        in_order = bool(np.all(key[1:] > key[:-1]))
    if codes is None or dup is None:
        dup = df.duplicated([unit, time], keep=False).to_numpy()
        counts, in_order = None, False
    if dup.any():
        raise PanelError(
            f"Duplicate (unit, period) rows: {int(dup.sum())} rows, first at "
            f"{_first_row(df, dup, unit, time)}. Each unit may appear once per period "
            f"in columns {unit!r}/{time!r}."
        )
    return None if codes is None else _RowKeys(ucode, ulevels, key, counts, in_order)


def _numeric_columns(df: pd.DataFrame, columns: Sequence[Any], unit: Any, time: Any) -> None:
    """Step 5: outcomes and covariates as real floats (NaN = missing), in place in ``df``."""
    for col in columns:
        raw = df[col]
        kind = _unsupported_kind(raw)
        if kind is not None:
            raise PanelError(
                f"Column {col!r} holds {kind}; outcomes and covariates must be real "
                f"numbers (received {raw.dtype} values such as {_v(raw.dropna().iloc[0])!r})."
            )
        num = pd.to_numeric(raw, errors="coerce")
        non_num = (num.isna() & raw.notna()).to_numpy()
        if non_num.any():
            row = _row(df, non_num)
            raise PanelError(
                f"Column {col!r} is not numeric: {row[col]!r} at unit {row[unit]!r}, "
                f"period {row[time]!r}."
            )
        if np.iscomplexobj(num.to_numpy()):
            raise PanelError(f"Column {col!r} holds complex numbers; it must be real.")
        num = num.astype(float)
        inf = np.isinf(num.to_numpy())
        if inf.any():
            raise PanelError(
                f"Column {col!r} has an infinite value at "
                f"{_first_row(df, inf, unit, time)}; use NaN for missing values."
            )
        df[col] = num


def _check_never_codes(
    df: pd.DataFrame, coh: pd.Series, cohort: Any, unit: Any, time: Any, never: set[float]
) -> None:
    """A never-treated code that is an observed period after the first (``0`` in years
    since 2000 on data from 1996) cannot say whether a unit with that cohort is never
    treated or a zone from that period, with periods before it to compare, so it is
    refused rather than read as never. The first period itself (periods counted 0, 1,
    ...) keeps the code's meaning: a zone from the first period has no untreated period."""
    periods = pd.unique(df[time])
    later = set(periods[periods > periods.min()].tolist())
    clash = sorted(v for v in never if v in later and bool((coh == v).any()))
    if not clash:
        return
    v = clash[0]
    hit = (coh == v).to_numpy()
    n_units = df.loc[hit, unit].nunique()
    row = _row(df, hit)
    raise PanelError(
        f"Cohort column {cohort!r} holds {v:g} at {n_units} unit(s) (first {row[unit]!r}), and "
        f"{v:g} is both a never-treated code (never_values) and an observed period of "
        f"{time!r}, so those units could be never treated or treated from period {v:g}. "
        "Mark never-treated units with an empty cohort (NaN) and pass never_values=(), or "
        "pass the code they use, e.g. never_values=(-1,)."
    )


def _cohort_numbers(
    df: pd.DataFrame, cohort: Any, unit: Any, time: Any, time_kind: str, never: set[float]
) -> pd.Series:
    """Step 6a: the cohort column as periods on the time column's scale (``inf`` = never
    treated: empty, NaN or a code in ``never``)."""
    kind = _unsupported_kind(df[cohort])
    if pd.api.types.is_bool_dtype(df[cohort].dtype):
        raise PanelError(
            f"Cohort column {cohort!r} is boolean; it must hold each unit's first treated "
            "period. For a 0/1 treatment indicator pass treatment= instead of cohort=."
        )
    if kind == "dates" and time_kind == "integer":
        raise PanelError(
            f"Cohort column {cohort!r} holds dates but column {time!r} holds numbers; "
            "give the first treated period on the time column's scale (e.g. the year), "
            "or give both as dates."
        )
    if kind is not None and kind != "dates":
        raise PanelError(
            f"Cohort column {cohort!r} holds {kind}; it must hold each unit's first "
            f"treated period like {time!r} (0 or empty for never treated)."
        )
    dates = time_kind != "integer" and _is_dates(df[cohort], cohort, df[unit])
    if dates:
        coh = pd.Series(_cohort_periods(df[cohort], time_kind, cohort), index=df.index)
    else:
        coh = pd.to_numeric(df[cohort], errors="coerce")
    # a writable copy: the candidates are narrowed in place below
    non_num = (coh.isna() & df[cohort].notna()).to_numpy(copy=True)
    if non_num.any():
        # blank strings count as missing (never treated); only the few candidate
        # rows are turned into text
        cand = np.flatnonzero(non_num)
        non_num[cand] = (df[cohort].iloc[cand].astype(str).str.strip() != "").to_numpy()
    if non_num.any():
        row = _row(df, non_num)
        raise PanelError(
            f"Cohort column {cohort!r} is not numeric: {row[cohort]!r} at unit "
            f"{row[unit]!r}, period {row[time]!r}."
        )
    coh = coh.astype(float)
    if dates:
        # only an empty date (NaT) means never: never_values are codes of a numeric
        # column, and a date's period number (1970-01 is month 0) is no code
        coh[coh.isna()] = NEVER
    else:
        _check_never_codes(df, coh, cohort, unit, time, never)
        coh[coh.isin(never) | coh.isna()] = NEVER
    frac = (np.isfinite(coh) & (coh != np.round(coh))).to_numpy()
    if frac.any():
        row = _row(df, frac)
        raise PanelError(
            f"Cohort column {cohort!r} must hold whole periods like {time!r}; unit "
            f"{row[unit]!r} has {row[cohort]!r}. Round it to the first "
            "period of treatment (or use 0/empty for never treated)."
        )
    if (
        time_kind != "integer"
        and not _is_annual(time_kind)
        and np.isfinite(coh).any()
        and not dates
    ):
        raise PanelError(
            f"Column {time!r} holds dates ({_freq_label(time_kind)} periods) but cohort "
            f"column {cohort!r} holds numbers; give the first treated period as dates "
            "too (NaT or empty for never treated)."
        )
    return coh


def _constant_cohort(
    df: pd.DataFrame,
    coh: pd.Series,
    cohort: Any,
    unit: Any,
    keys: _RowKeys | None,
    time_kind: str = "integer",
) -> np.ndarray | None:
    """Step 6b: the cohort must be constant within each unit. Returns each unit's cohort
    (in ``keys.ulevels`` order) when the row keys exist, else None."""
    lo = None
    if keys is not None:
        # per-unit smallest and largest cohort (no NaN is left in coh)
        cv = coh.to_numpy()
        lo = np.full(len(keys.ulevels), np.inf)
        hi = np.full(len(keys.ulevels), -np.inf)
        np.minimum.at(lo, keys.ucode, cv)
        np.maximum.at(hi, keys.ucode, cv)
        bad_units = keys.ulevels[hi > lo]
    else:
        per_unit = coh.groupby(df[unit]).nunique(dropna=False)
        bad_units = per_unit.index[per_unit.to_numpy() > 1]
    if len(bad_units):
        u = bad_units[0]  # the first in sorted order, as a groupby lists them
        vals: list[Any] = sorted(coh[df[unit] == u].unique().tolist())
        if time_kind != "integer" and not _is_annual(time_kind):
            # date panels: Periods (1982-06), not their ordinals
            vals = [v if np.isinf(v) else _period_label(v, time_kind) for v in vals]
        raise PanelError(
            f"Cohort column {cohort!r} varies within unit {_v(u)!r} (values {vals}); the "
            "first zone period must be constant per unit."
        )
    return lo


def _cohort_from_treatment(
    df: pd.DataFrame, treatment: Any, unit: Any, time: Any, time_kind: str = "integer"
) -> pd.DataFrame:
    """Step 6 (treatment=): the cohort is each unit's first period with a 1 in an absorbing
    0/1 indicator. Returns the frame sorted by unit and period, with column ``cohort``.

    The first 1 dates the zone only when the unit is observed untreated in the period just
    before it: after a gap (or a late entry already treated) the zone may have opened in
    any unobserved period, so that is refused (the first period of the data excepted: a
    unit treated there is always treated, handled by the window step)."""
    raw_d = df[treatment]
    if pd.api.types.is_bool_dtype(raw_d.dtype):
        # bool and nullable boolean: True/False are 1/0; <NA> is refused below
        raw_d = raw_d.astype("Float64")
    d = pd.to_numeric(raw_d, errors="coerce").astype(float)
    bad = ~d.isin([0, 1]).to_numpy()
    if bad.any():
        row = _row(df, bad)
        raise PanelError(
            f"Treatment column {treatment!r} must be 0/1; received {row[treatment]!r} "
            f"at unit {row[unit]!r}, period {row[time]!r}."
        )
    df = df.sort_values([unit, time], kind="mergesort")
    d = d.loc[df.index]
    prev = d.groupby(df[unit]).shift(1)
    off = ((prev == 1) & (d == 0)).to_numpy()
    if off.any():
        row = _row(df, off)
        raise PanelError(
            f"Treatment column {treatment!r} switches off for unit {row[unit]!r} in "
            f"period {row[time]!r}; zone treatment must be absorbing (once 1, always 1)."
        )
    t = df[time]
    first = t.where(d == 1).groupby(df[unit]).transform("min")
    periods = np.sort(t.unique())
    tv = t.to_numpy()
    # the period just before each row's period in the data's own periods
    before = periods[np.maximum(np.searchsorted(periods, tv) - 1, 0)]
    prev_t = t.groupby(df[unit]).shift(1).to_numpy(float)
    onset = ((d == 1) & (t == first)).to_numpy() & (tv > periods[0])
    gap = onset & ~(prev_t == before)
    if gap.any():
        i = int(np.flatnonzero(gap)[0])
        raise PanelError(
            onset_gap_message(
                treatment, df[unit].iloc[i], tv[i], before[i], prev_t[i], int(gap.sum()),
                lambda t: _period_label(t, time_kind),
            )
        )  # fmt: skip
    df["cohort"] = first.fillna(NEVER).astype(float)
    return df


def onset_gap_message(
    treatment: Any,
    unit: Any,
    first: float,
    just_before: float,
    previous: float,
    n_units: int,
    label: Callable[[float], str],
) -> str:
    """Why a ``treatment=`` onset cannot date a zone: the unit is not observed in the
    period just before its first 1 (``previous``: its last observed period before it, or
    NaN / -inf when it is first observed treated). Shared by :meth:`Panel.from_frame` and
    the Dask reader (``label`` prints a period as the caller reads it)."""
    seen = (
        f"its previous observed period is {label(previous)}"
        if np.isfinite(previous)
        else "it is first observed then"
    )
    return (
        f"Treatment column {treatment!r} turns on for unit {_v(unit)!r} in period "
        f"{label(first)}, but the unit is not observed in period {label(just_before)} just "
        f"before ({seen}), so its zone may have opened earlier ({n_units} such unit(s)). "
        "Pass cohort= with each unit's first treated period instead, or add the missing rows."
    )


def _unit_cohorts(
    df: pd.DataFrame, unit: Any, lo: np.ndarray | None, keys: _RowKeys | None
) -> pd.Series:
    """Each unit's cohort, indexed by unit id in sorted order."""
    if lo is not None and keys is not None:
        # the cohort is constant within units (checked): lo is each unit's
        return pd.Series(lo, index=keys.ulevels.rename(unit), name="cohort")
    return df.groupby(unit)["cohort"].first()


def _outside_window(
    df: pd.DataFrame,
    ucoh: pd.Series,
    unit: Any,
    cohort: Any,
    periods: np.ndarray,
    outside_window: str,
    report: dict[str, Any],
    time_kind: str = "integer",
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Step 7: cohorts outside the observed periods, refused or adjusted (always-treated
    units dropped, late cohorts recoded as never treated, both recorded in ``report``), then
    a comparison group must remain. Returns the frame, the unit cohorts and the
    always-treated units (the candidate exposure sources)."""
    first_t, last_t = int(periods[0]), int(periods[-1])
    # A unit treated in (or before) the first observed period has no untreated pre-period:
    # it cannot contribute to any DiD comparison (R did drops it too). Read off treatment=
    # it is kept as a cohort of the first period: TWFE's regression and Goodman-Bacon's
    # decomposition of it ("later vs always treated") use such units, and the report's
    # cohort sizes show them (a breaker asked for the two paths to agree; session 19)
    early = ucoh[ucoh <= first_t] if cohort is not None else ucoh[ucoh < first_t]
    late = ucoh[(ucoh > last_t) & np.isfinite(ucoh)]
    if cohort is not None and len(early):
        if outside_window == "error":
            _refuse_always_treated(df, early, cohort, first_t, time_kind)
        report["dropped_always_treated"] = early.index.tolist()
        df = df[~df[unit].isin(early.index)]
        ucoh = ucoh.drop(early.index)
    if len(late):
        if outside_window == "error":
            u = late.index[0]
            raise PanelError(
                f"Cohort outside the observed periods: unit {_v(u)!r} has cohort "
                f"{_period_label(late.iloc[0], time_kind)} but the data end in "
                f"{_period_label(last_t, time_kind)} ({len(late)} such unit(s)). Code it as "
                "never treated (0, or empty) or pass outside_window='adjust'."
            )
        report["recoded_late_cohort"] = late.index.tolist()
        df.loc[df[unit].isin(late.index), "cohort"] = NEVER
        ucoh = ucoh.copy()
        ucoh[late.index] = NEVER
    if ucoh.empty:
        raise PanelError(
            f"No unit is left after dropping the {len(report['dropped_always_treated'])} "
            f"unit(s) treated from the first period {_period_label(first_t, time_kind)} "
            "(outside_window='adjust'): "
            "the panel needs units with an untreated period."
        )
    if not np.isinf(ucoh).any() and ucoh.nunique() < 2:
        raise PanelError(
            "No untreated comparison units: every unit enters a zone in "
            f"{_period_label(ucoh.iloc[0], time_kind)} and none is never treated."
        )
    return df, ucoh, early


def _refuse_always_treated(
    df: pd.DataFrame, early: pd.Series, cohort: Any, first_t: int, time_kind: str = "integer"
) -> None:
    """The error for units treated from the first observed period (outside_window='error'),
    with a hint when the cohort column looks like a 0/1 treatment indicator (``cohort`` is
    None when the cohorts were read off ``treatment=``)."""
    u = early.index[0]
    finite = df["cohort"].to_numpy(float)
    hint = (
        f" Column {cohort!r} holds only 0/1 values: if it is a treatment indicator, "
        "pass treatment= instead of cohort=."
        if cohort is not None and set(np.unique(finite[np.isfinite(finite)])) == {1.0}
        else ""
    )
    raise PanelError(
        f"Cohort outside the observed periods: unit {_v(u)!r} has cohort "
        f"{_period_label(early.iloc[0], time_kind)} but the data start in "
        f"{_period_label(first_t, time_kind)} (no untreated "
        f"period; {len(early)} such unit(s)). Pass outside_window='adjust' to "
        f"drop always-treated units.{hint}"
    )


def _canonical_rows(
    df: pd.DataFrame,
    unit: Any,
    time: Any,
    columns: Sequence[Any],
    keys: _RowKeys | None,
    *,
    presorted: bool,
) -> pd.DataFrame:
    """Step 8: canonical columns ``unit``, ``time``, ``cohort`` and the data columns, rows
    in (unit, period) order on a fresh index. ``presorted``: the rows are already sorted
    (the treatment branch sorts them)."""
    df = df.rename(columns={unit: "unit", time: "time"})
    keep = ["unit", "time", "cohort", *columns]
    df = df.loc[:, keep]
    # rows already in (unit, period) order stay put (dropped units keep the order of the
    # rest)
    if not (presorted or (keys is not None and keys.in_order)):
        if keys is not None and keys.counts is not None:
            # the keys are unique and dense: each row's sorted position is a prefix
            # count (a counting sort, in the order sort_values(["unit", "time"]) gives)
            pos = (np.cumsum(keys.counts) - 1)[keys.key]
            order = np.empty_like(pos)
            order[pos] = np.arange(len(pos))
            if len(df) < len(order):  # rows of dropped units: positions in df
                alive = np.zeros(len(order), dtype=bool)
                alive[df.index.to_numpy()] = True
                order = np.searchsorted(df.index.to_numpy(), order[alive[order]])
            df = df.take(order)
        else:
            df = df.sort_values(["unit", "time"], kind="mergesort")
    return df.reset_index(drop=True)


def _keyed_by_unit(unit: Any, geography: Any, adjacency: Any, sources: Any) -> tuple[Any, Any, Any]:
    """The geography, adjacency and sources tables with the panel's unit column (e.g.
    ``"county"``) named ``unit`` where they use that name instead (a renamed copy; the
    caller's table is not modified). A table with a ``unit`` column keeps it."""

    def keyed(tab: Any) -> Any:
        if (
            isinstance(tab, pd.DataFrame)
            and unit != "unit"
            and "unit" not in tab.columns
            and unit in tab.columns
        ):
            return tab.rename(columns={unit: "unit"})
        return tab

    return keyed(geography), keyed(adjacency), keyed(sources)


def _attach_geography(
    df: pd.DataFrame,
    geography: pd.DataFrame | None,
    adjacency: pd.DataFrame | None,
    sources: pd.DataFrame | None,
    dropped: pd.Series | None,
    report: dict[str, Any],
    never: AbstractSet[float] = frozenset({0.0}),
    time_kind: str | None = None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Step 9: geography, exposure sources and adjacency, checked against the final units.
    Returns ``geography``, ``adjacency``, ``sources`` and ``source_links``."""
    geo = _validate_geography(geography, df["unit"].unique()) if geography is not None else None
    src = _validate_sources(sources, dropped, df, geo, report, never, time_kind)
    adj = links = None
    if adjacency is not None:
        # pairs with a source zone (dropped always-treated units included) are exposure
        # links, not errors: they are kept apart from the panel's own adjacency
        a = adjacency
        if (
            src is not None
            and isinstance(a, pd.DataFrame)
            and {"unit", "neighbour"} <= set(a.columns)
        ):
            links = _source_links(a, src.index, df["unit"].unique())
            gone = a["unit"].isin(src.index) | a["neighbour"].isin(src.index)
            report["adjacency_rows_to_sources"] = int(gone.sum())
            a = a.loc[~gone]
        adj = _validate_adjacency(a, df["unit"].unique())
    return geo, adj, src, links


def _summary(df: pd.DataFrame, ucoh: pd.Series, outcomes: Sequence[Any]) -> dict[str, Any]:
    """Step 10: what validation found, for :attr:`Panel.report`."""
    # ucoh already holds each remaining unit's cohort (the frame was only reordered)
    n_units, n_periods = len(ucoh), df["time"].nunique()
    coh_counts = ucoh.value_counts().sort_index()
    return dict(
        n_units=int(n_units),
        n_periods=int(n_periods),
        n_rows=int(len(df)),
        n_missing_unit_periods=int(n_units * n_periods - len(df)),
        balanced=bool(n_units * n_periods == len(df)),
        first_period=int(df["time"].min()),
        last_period=int(df["time"].max()),
        cohort_sizes={("never" if np.isinf(k) else int(k)): int(v) for k, v in coh_counts.items()},
        missing_outcomes={o: int(df[o].isna().sum()) for o in outcomes},
    )


#: Calendar frequencies a date column may have, coarsest first (pandas Period aliases).
_FREQS = ("Y", "Q", "M", "W", "D")
_FREQ_NAMES = {
    "integer": "whole-numbered",
    "Y": "annual",
    "Q": "quarterly",
    "M": "monthly",
    "W": "weekly",
    "D": "daily",
}


#: Values an object column may hold as dates.
_DATE_TYPES = (pd.Timestamp, pd.Period, _dt.date, np.datetime64)


def _is_annual(kind: str) -> bool:
    """Whether a time scale (``"integer"`` or a Period alias) is annual: its periods are
    numbered by the year pandas labels them with (fiscal years included)."""
    return kind == "Y" or kind.startswith("Y-")


def _freq_label(kind: str) -> str:
    """The name of a time scale in messages: "annual", "quarterly (Q-NOV)", ..."""
    if kind in _FREQ_NAMES:
        return _FREQ_NAMES[kind]
    base = _FREQ_NAMES.get(kind.split("-")[0], "")
    return f"{base} ({kind})" if base else f"{kind!r}"


def _period_label(value: Any, kind: str) -> str:
    """A period number as the caller reads it: the year or whole number itself, or the
    pandas Period (e.g. ``1982-06``) of a date panel whose periods are Period ordinals."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return repr(_v(value))
    if not np.isfinite(v) or v != round(v):
        return f"{v:g}"
    if kind == "integer" or _is_annual(kind):
        return str(int(v))
    try:
        return str(pd.Period(ordinal=int(v), freq=kind))
    except (ValueError, TypeError, OverflowError):  # pragma: no cover - defensive
        return str(int(v))


def _is_dates(col: pd.Series, column: Any = None, units: pd.Series | None = None) -> bool:
    """True for datetime, Period, or object columns of dates/Timestamps/Periods.

    An object column mixing dates with numbers or text (a merge of two sources, one with
    years) is refused: the numbers would otherwise be read as nanoseconds since 1970, or the
    dates as errors, depending on which rows come first."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or isinstance(col.dtype, pd.PeriodDtype):
        return True
    if col.dtype != object:
        return False
    vals = col.dropna()
    if not len(vals):
        return False
    is_date = np.fromiter((isinstance(v, _DATE_TYPES) for v in vals), dtype=bool, count=len(vals))
    if is_date.all():
        return True
    if not is_date.any() or column is None:
        return False
    i = int(np.flatnonzero(~is_date)[0])
    other = _v(vals.iloc[i])
    date = vals.iloc[int(np.flatnonzero(is_date)[0])]
    who = f"unit {_v(units.loc[vals.index[i]])!r}" if units is not None else f"row {vals.index[i]}"
    raise PanelError(
        f"Column {column!r} mixes dates and other values: {who} has {other!r} "
        f"({type(other).__name__}) while other rows hold dates such as {date!r} "
        f"({int((~is_date).sum())} non-date value(s)). Give every value as a date (NaT or "
        "empty for a missing one), or every value as a number."
    )


def _period_index(col: pd.Series) -> pd.PeriodIndex | None:
    """The column as a PeriodIndex when it holds Periods of one frequency (a Period dtype,
    or an object column of Periods), else None."""
    if isinstance(col.dtype, pd.PeriodDtype):
        return pd.PeriodIndex(col)
    if col.dtype == object:
        vals = col.dropna()
        if len(vals) and all(isinstance(v, pd.Period) for v in vals):
            try:
                return pd.PeriodIndex(col)
            except (ValueError, TypeError):  # Periods of several frequencies
                return None
    return None


def _period_kind(per: pd.PeriodIndex) -> str:
    """The time scale of a Period column: its own Period alias, with the calendar anchors
    written as the inferred frequencies are (``"Y"``, ``"Q"``, ``"W"``)."""
    for base in _FREQS:
        if per.dtype == pd.PeriodDtype(base):
            return base
    return str(per.freqstr)


def _period_values(per: pd.PeriodIndex, kind: str) -> np.ndarray:
    """Period numbers (NaN for NaT): the labelled year of annual periods (a fiscal year
    Y-JUN 2006, July 2005 - June 2006, is 2006, as pandas labels it), else the Period
    ordinal in the periods' own frequency (consecutive periods differ by one)."""
    ok = ~per.isna()
    out = np.full(len(per), np.nan)
    if ok.any():
        good = per[ok]
        out[ok] = good.year if _is_annual(kind) else good.asi8
    return out


def _as_timestamps(col: pd.Series, column: Any) -> pd.Series:
    """A date column as naive numpy datetimes.

    Time-zone-aware dates keep their wall-clock time in their own zone (the zone is dropped,
    not converted: 2003-01-01 00:00 in New York stays 1 January). Periods become their start
    time; pyarrow-backed dates become numpy dates first. Dates in several time zones are
    refused: one wall clock is needed to say which period a date falls in."""
    if isinstance(col.dtype, pd.ArrowDtype):
        pa_type = col.dtype.pyarrow_dtype
        unit = getattr(pa_type, "unit", "s")
        unit = unit if unit in ("s", "ms", "us", "ns") else "s"
        tz = getattr(pa_type, "tz", None)
        col = col.astype(pd.DatetimeTZDtype(unit, tz) if tz else f"datetime64[{unit}]")
    if col.dtype == object:
        col = col.map(lambda v: v.start_time if isinstance(v, pd.Period) else v)
    try:
        ts = pd.to_datetime(col)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PanelError(
            f"Column {column!r} holds dates that cannot be read on one time line ({exc}). "
            "Dates in several time zones must be converted to one zone first (e.g. "
            "pd.to_datetime(col, utc=True).dt.tz_convert('Asia/Shanghai'))."
        ) from None
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)  # drops the zone, keeps the wall clock
    return ts


def _same_position(stamps: pd.DatetimeIndex, per: pd.PeriodIndex, freq: str) -> bool:
    """Whether every date sits at the same calendar position in its period: the same
    month and day (years), month-in-quarter and day (quarters), day (months), or the same
    offset from the period start (weeks, days: periods of constant length). Years and
    months are not of constant length, so every 1 July is one position in its year though
    its distance from 1 January differs in leap years."""
    clock = stamps - stamps.normalize()
    if freq == "Y":
        keys = [stamps.month, stamps.day]
    elif freq == "Q":
        keys = [(stamps.month - 1) % 3, stamps.day]
    elif freq == "M":
        keys = [stamps.day]
    else:
        return (stamps - per.start_time).nunique() == 1
    frame = pd.DataFrame({f"k{i}": np.asarray(k) for i, k in enumerate(keys)})
    frame["clock"] = np.asarray(clock)
    return len(frame.drop_duplicates()) == 1


def _infer_frequency(stamps: pd.DatetimeIndex, column: str) -> str:
    """The coarsest calendar frequency on which the dates sit regularly.

    A frequency fits when no two distinct dates fall in the same period and every date has
    the same position in its period (all period starts, all period ends, or one fixed
    offset such as every 30 June).
    """
    for f in _FREQS:
        per = stamps.to_period(f)
        if per.nunique() != len(stamps):
            continue
        end = per.end_time.normalize() - stamps
        if _same_position(stamps, per, f) or (end == pd.Timedelta(0)).all():
            ordinals = np.sort(per.asi8)
            span = ordinals[-1] - ordinals[0] + 1
            gaps = np.diff(ordinals)
            if len(ordinals) > 2 and len(ordinals) < 0.5 * span and np.gcd.reduce(gaps) == 1:
                break  # uneven dates on a fine grid: irregular, not a frequency
            return f
    raise PanelError(
        f"Column {column!r} holds dates that are not regularly spaced (first dates: "
        f"{[str(d.date()) for d in stamps[:4]]}); event time needs a regular frequency. "
        "Convert the column to periods yourself (e.g. years, or pandas Periods)."
    )


def _row_codes(
    units: pd.Series, times: pd.Series
) -> tuple[np.ndarray, pd.Index, np.ndarray, int] | None:
    """Unit codes and the sorted unit ids they index, a (unit, period) key per row whose
    order is the rows' (unit, period) order, and the key range; None for units pandas
    cannot sort plainly (categorical or mixed types), which take the generic checks."""
    if isinstance(units.dtype, pd.CategoricalDtype) or (
        units.dtype == object and pd.api.types.infer_dtype(units, skipna=False) != "string"
    ):
        return None
    try:
        ucode, ulevels = pd.factorize(units, sort=True)
    except TypeError:
        return None
    t = times.to_numpy(np.int64)
    t0 = int(t.min())
    span = int(t.max()) - t0 + 1
    if len(ulevels) > np.iinfo(np.int64).max // max(span, 1):
        return None
    key = ucode.astype(np.int64) * span + (t - t0)
    return ucode, pd.Index(ulevels), key, len(ulevels) * span


class _TimeKind(str):
    """A time scale name ("Y", "Q-NOV", ...) that also carries where dated observations sit
    in their periods (:func:`_anchor`): ``anchor`` is None for Periods and for dates at the
    period start or end, else the offset from the period start (every 30 June: 5 months 29
    days), by which :func:`_cohort_periods` places opening dates."""

    anchor: Any = None


def _anchor(stamps: pd.Series, freq: str) -> Any:
    """The position of dated observations in their periods of ``freq`` as an offset from the
    period start, or None when they sit at the period start or end (the period that
    contains a date is then the one it opens in)."""
    first = pd.Timestamp(stamps.iloc[0])
    per = pd.Period(first, freq=freq)
    if first == per.start_time:
        return None
    ends = pd.PeriodIndex(stamps, freq=freq).end_time.normalize()
    if bool((ends == pd.DatetimeIndex(stamps)).all()):
        return None
    if freq in ("Y", "Q", "M"):
        # a calendar position (month and day), as months and days differ in length
        months = first.month - 1 if freq == "Y" else (first.month - 1) % 3 if freq == "Q" else 0
        clock = first - first.normalize()
        return pd.DateOffset(
            months=months, days=first.day - 1, microseconds=clock // pd.Timedelta(1, "us")
        )
    return first - per.start_time


def _period_numbers(col: pd.Series, column: str, units: pd.Series) -> tuple[pd.Series, str]:
    """Whole period numbers for a time column, and its kind (``"integer"`` or a frequency).

    Numbers must be whole (years). A Period column keeps its own frequency (a fiscal year
    Y-JUN or quarter Q-NOV included): annual periods become the year pandas labels them
    with, others their Period ordinals. Dates and date objects are counted in periods of
    their inferred calendar frequency the same way, so event time is counted in periods of
    the panel's frequency (consecutive quarters/months/weeks/days differ by one).
    """
    if pd.api.types.is_bool_dtype(col.dtype):
        raise PanelError(f"Column {column!r} is boolean; it must hold periods (years or dates).")
    kind = _unsupported_kind(col)
    if kind is not None and kind != "dates":
        raise PanelError(
            f"Column {column!r} holds {kind}; it must hold whole-numbered periods (years) or dates."
        )
    if _is_dates(col, column, units):
        per = _period_index(col)
        if per is not None:
            freq = _period_kind(per)  # a Period column declares its frequency
        else:
            stamps = _as_timestamps(col, column)
            uniq = pd.DatetimeIndex(np.sort(stamps.unique()))
            freq = _TimeKind(_infer_frequency(uniq, column))
            freq.anchor = _anchor(pd.Series(uniq), freq)
            per = pd.PeriodIndex(stamps, freq=freq)
        vals = _period_values(per, freq)
        return pd.Series(vals.astype(np.int64), index=col.index), freq
    t = pd.to_numeric(col, errors="coerce")
    bad = (t.isna() | ~np.isfinite(t) | (t != np.round(t))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PanelError(
            f"Column {column!r} must hold whole-numbered periods or dates; unit "
            f"{_v(units.iloc[i])!r} has {_v(col.iloc[i])!r}."
        )
    huge = np.abs(t.to_numpy(float)) > _MAX_PERIOD
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        raise PanelError(
            f"Column {column!r} holds period {_v(col.iloc[i])!r} (unit {_v(units.iloc[i])!r}), "
            f"beyond +-2**53 where whole numbers are no longer exact; number the periods "
            "(years, or 1, 2, ...) instead."
        )
    return t.astype(np.int64), "integer"


def _cohort_periods(col: pd.Series, freq: str, column: Any = "cohort") -> np.ndarray:
    """First treated period as a number on the same scale as the time column (NaN = never).

    Periods of the time column's own frequency are read as they are labelled; other dates
    (Periods of another frequency by their start) fall in the period of ``freq`` that
    contains them when the observations are dated at period starts or ends (a zone opened
    in September 2006 is treated in the year 2006, dated 1 January or 31 December). When
    they are dated inside their periods (every 30 June), the first treated period is the
    first whose observation date is on or after the opening: an observation taken before
    the zone opened is not treated."""
    per = _period_index(col)
    if per is not None and per.dtype == pd.PeriodDtype(freq):
        return _period_values(per, freq)
    stamps = _as_timestamps(col, column)
    out = np.full(len(col), np.nan)
    ok = stamps.notna().to_numpy()
    if ok.any():
        per = pd.PeriodIndex(stamps[ok], freq=freq)
        anchor = getattr(freq, "anchor", None)
        if anchor is not None:
            seen = per.start_time + anchor  # the observation date of each period
            per = pd.PeriodIndex(
                np.where(pd.DatetimeIndex(stamps[ok]) > seen, per + 1, per), freq=freq
            )
        out[ok] = _period_values(per, freq)
    return out


def _validate_geography(geo: pd.DataFrame, units: np.ndarray) -> pd.DataFrame:
    if not isinstance(geo, pd.DataFrame) or "unit" not in geo.columns:
        raise GeographyError(
            "The geography table must be a DataFrame with a 'unit' column (or one named as "
            "the panel's unit column)."
        )
    if geo["unit"].duplicated().any():
        u = geo.loc[geo["unit"].duplicated(), "unit"].iloc[0]
        raise GeographyError(f"Geography table lists unit {_v(u)!r} more than once.")
    g = geo.copy().set_index("unit")
    for c, limit in (("lat", 90), ("lon", 180)):
        if c not in g.columns:
            continue
        num = pd.to_numeric(g[c], errors="coerce")
        blank = g[c].astype(str).str.strip() == ""
        text = (num.isna() & g[c].notna() & ~blank).to_numpy()
        if text.any():
            i = int(np.flatnonzero(text)[0])
            raise GeographyError(
                f"Geography column {c!r} is not numeric: {_v(g[c].iloc[i])!r} for unit "
                f"{_v(g.index[i])!r}; give degrees as numbers."
            )
        out = (num.abs() > limit).to_numpy()  # infinities included; NaN = missing
        if out.any():
            i = int(np.flatnonzero(out)[0])
            what = "Latitude" if c == "lat" else "Longitude"
            raise GeographyError(
                f"{what} out of range for unit {_v(g.index[i])!r}: {_v(num.iloc[i])!r}; "
                f"column {c!r} must lie in [-{limit}, {limit}] degrees."
            )
        g[c] = num
    missing = pd.Index(units).difference(g.index, sort=False).tolist()
    if missing:
        raise GeographyError(
            f"Geography missing for unit {missing[0]!r} ({len(missing)} panel unit(s) absent "
            "from the geography table)."
        )
    return g


def _validate_sources(
    sources: pd.DataFrame | None,
    dropped: pd.Series | None,
    df: pd.DataFrame,
    geo: pd.DataFrame | None,
    report: dict[str, Any],
    never: AbstractSet[float] = frozenset({0.0}),
    time_kind: str | None = None,
) -> pd.DataFrame | None:
    """Source zones (outside the sample) indexed by unit: ``cohort`` (on the panel's period
    scale, :func:`_source_cohorts`) plus geography, checked as the geography table is."""
    parts = []
    if dropped is not None and len(dropped) and report["dropped_always_treated"]:
        parts.append(pd.DataFrame({"cohort": dropped.astype(float)}))
    if sources is not None:
        if not isinstance(sources, pd.DataFrame) or not {"unit", "cohort"} <= set(sources.columns):
            raise GeographyError(
                "sources= must be a DataFrame with columns 'unit' (or the panel's unit column) "
                "and 'cohort' (and any of 'region', 'lat', 'lon'); received "
                f"{type(sources).__name__}."
            )
        s = sources.set_index("unit")
        kind = time_kind if time_kind is not None else report["time_frequency"]
        _check_source_ids(s, df, dropped if parts else None, kind)
        if s.index.duplicated().any():
            u = s.index[s.index.duplicated()][0]
            raise GeographyError(f"sources= lists source zone {_v(u)!r} more than once.")
        coh = _source_cohorts(s, df["time"], kind, never)
        place = [c for c in ("region", "lat", "lon") if c in s.columns]
        if place:
            s = s.drop(columns=place).join(
                _validate_geography(s[place].reset_index(), np.array([]))
            )
        parts.append(s.assign(cohort=coh))
    if not parts:
        return None
    out = pd.concat(parts)
    out = out[~out.index.duplicated(keep="last")]
    if geo is not None:
        for col in geo.columns:
            if col not in out.columns:
                out[col] = geo[col].reindex(out.index).to_numpy()
            else:
                out[col] = out[col].fillna(geo[col].reindex(out.index))
    out.index.name = "unit"
    report["n_sources"] = int(len(out))
    return out


def _check_source_ids(
    s: pd.DataFrame, df: pd.DataFrame, dropped: pd.Series | None, kind: str
) -> None:
    """Refuse a ``sources=`` zone that is a unit of the data: a panel unit, or a unit
    dropped as already treated (already a source, opening at its own cohort: a second
    opening would replace the data's silently), also when spelled another way ('105' for
    105, :func:`_check_id_spellings`)."""
    panel_ids = pd.Index(df["unit"].unique())
    data_ids = panel_ids if dropped is None else panel_ids.append(pd.Index(dropped.index))
    _check_id_spellings(s.index, data_ids, "sources=", GeographyError)
    inside = s.index.intersection(panel_ids)
    if len(inside):
        raise GeographyError(
            f"Source zone {_v(inside[0])!r} is also a panel unit; sources are zones outside "
            "the estimation sample."
        )
    if dropped is None:
        return
    twice = s.index.intersection(pd.Index(dropped.index))
    if len(twice):
        u = twice[0]
        given = s.loc[[u], "cohort"].iloc[0]
        raise GeographyError(
            f"Source zone {_v(u)!r} is a unit of the data, dropped as treated before the first "
            f"period (outside_window='adjust') and kept as a source opening at its cohort "
            f"{_period_label(dropped.loc[u], kind)}; sources= gives it the opening "
            f"{_v(given)!r} as well ({len(twice)} such zone(s)). Drop it from sources= to "
            "keep the data's cohort, or drop its rows from the data to use the sources= one."
        )


def _source_cohorts(
    s: pd.DataFrame, time: pd.Series, time_kind: str, never: AbstractSet[float]
) -> pd.Series:
    """The sources' opening periods on the panel's period scale (dates converted as the
    cohort column's are), refused where they are not whole periods or are a never-treated
    code that is not a period: a source is a zone with an opening."""
    col = s["cohort"]
    dates = _is_dates(col, "sources' 'cohort'", pd.Series(s.index, index=s.index))
    if dates and time_kind == "integer":
        raise GeographyError(
            "sources' 'cohort' holds dates but the panel's periods are numbers; give the "
            "opening periods on the time column's scale (e.g. the year)."
        )
    if not dates and time_kind != "integer" and not _is_annual(time_kind):
        raise GeographyError(
            f"The panel's periods are dates ({_freq_label(time_kind)} periods) but sources' "
            f"'cohort' does not hold dates (first value {_v(col.iloc[0])!r}); give the opening "
            "periods as dates too."
        )
    if dates:
        coh = pd.Series(_cohort_periods(col, time_kind, "sources' 'cohort'"), index=s.index)
    else:
        coh = pd.to_numeric(col, errors="coerce").astype(float)
    v = coh.to_numpy(float)
    # never_values are codes of numbers; a date's period number is no code
    never_code = np.isin(v, list(never)) & ~np.isin(v, pd.unique(time)) & (not dates)
    bad = ~np.isfinite(v) | (v != np.round(v)) | never_code
    if bad.any():
        u = s.index[np.flatnonzero(bad)[0]]
        raise GeographyError(
            f"Source zone {_v(u)!r} has cohort {_v(col.loc[u])!r}; a source needs its opening "
            "period, a whole period on the time column's scale (not a never-treated code)."
        )
    return coh


def _source_links(adj: pd.DataFrame, sources: pd.Index, units: np.ndarray) -> pd.DataFrame:
    """Adjacency pairs between a panel unit and a source zone, as (unit, source)."""
    a, b = adj["unit"], adj["neighbour"]
    inside = pd.Index(units)
    one = adj.loc[a.isin(inside) & b.isin(sources)].rename(columns={"neighbour": "source"})
    two = adj.loc[b.isin(inside) & a.isin(sources)].rename(
        columns={"unit": "source", "neighbour": "unit"}
    )
    return pd.concat([one[["unit", "source"]], two[["unit", "source"]]]).drop_duplicates()


def _validate_adjacency(adj: pd.DataFrame, units: np.ndarray) -> pd.DataFrame:
    if not isinstance(adj, pd.DataFrame) or not {"unit", "neighbour"} <= set(adj.columns):
        raise GeographyError(
            "The adjacency list must have columns 'unit' (or one named as the panel's unit "
            "column) and 'neighbour'."
        )
    known = set(units.tolist())
    for col in ("unit", "neighbour"):
        bad = ~adj[col].isin(known)
        if bad.any():
            raise GeographyError(
                f"Adjacency column {col!r} names unit {_v(adj.loc[bad, col].iloc[0])!r}, which is "
                "not in the panel."
            )
    a = adj[["unit", "neighbour"]]
    both = pd.concat([a, a.rename(columns={"unit": "neighbour", "neighbour": "unit"})])
    both = both[both["unit"] != both["neighbour"]].drop_duplicates()
    return both.sort_values(["unit", "neighbour"]).reset_index(drop=True)


#: File types :func:`read_table` reads, by suffix.
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq", ".dta", ".feather")


def _text_encoding(path: Path) -> str:
    """The encoding of a text file from its byte-order mark (UTF-8 without one)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise PanelError(
            f"Cannot decode {path}: it holds NUL bytes, so it is UTF-16 (or UTF-32) without a "
            "byte-order mark, or not a text file. Save the file as UTF-8 (or UTF-16 with a "
            "byte-order mark)."
        )
    return "utf-8"


def _data_file(path: Any, sep: Any) -> Path:
    """The data file's path, checked (a regular file that exists) before any reader runs;
    ``sep`` must be None or a non-empty string."""
    if not isinstance(path, str | os.PathLike):
        raise PanelError(
            f"The data file must be a path (str or pathlib.Path); received {path!r} "
            f"({type(path).__name__})."
        )
    if sep is not None and (not isinstance(sep, str) or sep == ""):
        raise PanelError(f"sep must be a non-empty string such as ',' or ';'; received {sep!r}.")
    path = Path(path)
    if "\x00" in str(path):
        raise PanelError(f"Data file name {str(path)!r} contains a NUL character.")
    if not path.is_file():
        if path.is_dir():
            raise PanelError(f"{path} is a folder, not a data file; give the file's path.")
        if path.exists():
            raise PanelError(
                f"{path} is not a regular file (a pipe, socket or device); save the data to a "
                "file and give its path."
            )
        raise PanelError(f"Data file not found: {path}")
    return path


def read_table(path: str | Path, *, sep: str | None = None) -> pd.DataFrame:
    """Read a data file into a DataFrame, choosing the reader by suffix.

    CSV/TXT/TSV (UTF-8, UTF-8 with a byte-order mark, or UTF-16 with one; ``sep`` defaults
    to a comma, a tab for ``.tsv``), Parquet, Stata ``.dta`` and Feather. Errors name the
    file and what was expected.
    """
    path = _data_file(path, sep)
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix == ".dta":
            return pd.read_stata(path)
        if suffix == ".feather":
            return pd.read_feather(path)
        if suffix not in {".csv", ".txt", ".tsv"}:
            raise PanelError(
                f"Cannot read {path.name!r}: unknown file type {suffix or '(none)'!r}; use one "
                f"of {', '.join(TABLE_SUFFIXES)}."
            )
        enc = _text_encoding(path)
        default_sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep if sep is not None else default_sep, encoding=enc)
    except ImportError as exc:
        raise PanelError(
            f"Reading {path.name!r} needs an optional package: {exc}. Install it (pip install "
            "pyarrow) or save the data as CSV."
        ) from None
    except UnicodeDecodeError as exc:
        raise PanelError(
            f"Cannot decode {path}: {exc.reason} at byte {exc.start} (read as {exc.encoding}). "
            "Save the file as UTF-8 (or UTF-16 with a byte-order mark)."
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        if isinstance(exc, PanelError):
            raise
        raise PanelError(f"Cannot read {path} as {suffix or 'a table'}: {exc}") from None


def read_panel(path: str | Path, *, sep: str | None = None, **kwargs: Any) -> Panel:
    """Read a data file (see :func:`read_table`) and build a :class:`Panel` (keywords as
    ``from_frame``)."""
    return Panel.from_frame(read_table(path, sep=sep), **kwargs)
