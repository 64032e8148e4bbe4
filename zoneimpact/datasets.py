"""Build the panel a spec asks for: a simulated panel, a CSV/Parquet file, or the China data.

This is the only place where a spec's ``[data]`` table turns into a :class:`Panel`; it
also returns the input files read (for the manifest's checksums) and any data report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataNotFoundError, SpecError
from .files import sha256_or_none
from .panel import Panel, read_table
from .simulate import Simulation, design_from_dict, simulate
from .spec import DataSpec, RunSpec


@dataclass(frozen=True)
class LoadedData:
    """A validated panel with where it came from."""

    panel: Panel
    inputs: tuple[Path, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)
    simulation: Simulation | None = None
    # SHA-256 of each input (by str(path)) taken when it was read, for the run's manifest
    input_hashes: dict[str, str | None] = field(default_factory=dict)
    # outcome rows of the data's units left out of the panel (already treated, or zoned
    # without any value of an outcome), with their geography: regional totals count them
    # (zoneimpact.concentration's others=)
    outside_rows: pd.DataFrame | None = None


def _read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a data file; ``sep`` None: by extension (a tab for .tsv, else a comma).

    Named index levels (a Parquet file written with ``frame.to_parquet(path)`` keeps the
    frame's index, e.g. ``unit`` and ``year``) become columns again: in a spec they are
    the file's columns like any other.
    """
    if not path.exists():
        raise DataNotFoundError(f"Data file not found: {path}")
    frame = read_table(path, sep=sep)
    names = [n for n in frame.index.names if n is not None]
    if names and len(names) == frame.index.nlevels and not set(names) & set(frame.columns):
        frame = frame.reset_index()
    return frame


def load_data(
    spec: RunSpec, rng: np.random.Generator, data: DataSpec | None = None, *, dask: bool = False
) -> LoadedData:
    """Build the spec's panel, or the panel of ``data`` (an estimate block's own
    ``[estimate.data]``); ``rng`` drives the simulator only. ``dask``: the caller accepts a
    :class:`~zoneimpact.distributed.DaskPanel` for ``engine = "dask"`` (the estimate run).
    The inputs' hashes are taken now, when they have just been read.
    """
    out = _load(spec, rng, data, dask=dask)
    return replace(out, input_hashes={str(p): sha256_or_none(p) for p in out.inputs})


def _load(
    spec: RunSpec, rng: np.random.Generator, data: DataSpec | None = None, *, dask: bool = False
) -> LoadedData:
    d = spec.data if data is None else data
    if d.source == "simulate":
        sim = simulate(design_from_dict(d.simulate), rng=rng)
        panel = sim.panel
        missing = [o for o in d.outcomes if o not in panel.outcomes]
        if missing:
            raise SpecError(
                f"Simulated panels have outcomes {list(panel.outcomes)}; not {missing}."
            )
        missing = [c for c in d.covariates if c not in panel.covariates]
        if missing:
            raise SpecError(
                f"[data] covariates = {list(d.covariates)}: simulated panels have covariates "
                f"{list(panel.covariates)}; not {missing}."
            )
        return LoadedData(panel, (), {"panel": panel.report}, sim)
    if d.source == "china":
        return _load_china(spec, d)
    if d.engine == "dask":
        if not dask:
            raise SpecError(
                '[data] engine = "dask" serves `zoneimpact estimate` (estimators '
                "callaway_santanna, twfe, imputation); claims and power need the panel in "
                'memory: use engine = "pandas" for them.'
            )
        return _load_dask(spec, d)

    path = spec.resolve_path(d.path or "")
    frame = _read_table(path, d.sep)
    inputs = [path]
    cohort, treatment = d.cohort, d.treatment
    never_values: tuple[float, ...] = (0,)  # a cohort column's 0 means never (R did)
    if d.treated_units:
        if cohort or treatment:
            raise SpecError("[data] give treated_units or cohort/treatment, not both.")
        if d.unit not in frame.columns:
            raise SpecError(
                f"[data] unit = {d.unit!r} is not a column of {path.name}; its columns are "
                f"{list(frame.columns)}."
            )
        unknown = sorted(set(d.treated_units) - set(frame[d.unit].astype(str)))
        if unknown:
            raise SpecError(
                f"[data] treated_units names unit(s) {unknown} not found in column {d.unit!r}."
            )
        # units not listed are never treated: NaN, and no never-treated code, so that a
        # listed first period 0 (periods counted from 0, or centred) stays a period
        frame = frame.assign(_cohort=frame[d.unit].astype(str).map(d.treated_units))
        cohort, never_values = "_cohort", ()
    geography = adjacency = None
    if d.geography:
        gpath = spec.resolve_path(d.geography)
        geography = _read_table(gpath)
        inputs.append(gpath)
    if d.adjacency:
        apath = spec.resolve_path(d.adjacency)
        adjacency = _read_table(apath)
        inputs.append(apath)
    panel = Panel.from_frame(
        frame,
        unit=d.unit,
        time=d.time,
        cohort=cohort,
        treatment=treatment,
        outcomes=list(d.outcomes),
        covariates=list(d.covariates),
        geography=geography,
        adjacency=adjacency,
        never_values=never_values,
        outside_window=d.outside_window,
    )
    return LoadedData(panel, tuple(inputs), {"panel": panel.report})


def _load_dask(spec: RunSpec, d: DataSpec) -> LoadedData:
    """``[data] engine = "dask"``: the Parquet glob as a :class:`DaskPanel` (issue 19);
    it stands in for the Panel, of which a run reads only the (absent) geography."""
    from .distributed._spec import read_spec_panel

    dpanel, files = read_spec_panel(spec, d)
    report = {
        "engine": "dask",
        "n_units": dpanel.n_units,
        "n_obs": dpanel.n_obs,
        "n_partitions": int(dpanel.frame.npartitions),
    }
    return LoadedData(dpanel, files, {"panel": report})  # type: ignore[arg-type]


CHINA_DATASETS = ("cities", "province_patents", "wanjiang")


def _derived_outcomes(
    frame: pd.DataFrame, outcomes: tuple[str, ...], unit: str = "city_code"
) -> pd.DataFrame:
    """Add requested derived outcomes: ``log1p_X`` (log(1 + X), keeps zeros), ``log_X``
    (X > 0) and ``growth_X`` (100 x the year-on-year log difference of X, in percent).
    """
    new = {}
    for name in outcomes:
        base = name[len("growth_") :]
        if name.startswith("growth_") and base in frame.columns:
            x = frame[base].where(frame[base] > 0).to_numpy(float)
            lx = pd.Series(np.log(x), index=frame.index)
            ordered = frame.assign(_lx=lx).sort_values([unit, "year"])
            diff = ordered.groupby(unit)["_lx"].diff() * 100
            # only consecutive years give an annual growth rate
            gap = ordered.groupby(unit)["year"].diff()
            new[name] = diff.where(gap == 1).reindex(frame.index)
            continue
        for prefix, func in (("log1p_", np.log1p), ("log_", np.log)):
            base = name[len(prefix) :]
            if name.startswith(prefix) and name not in frame.columns and base in frame.columns:
                x = frame[base].to_numpy(float)
                with np.errstate(divide="ignore", invalid="ignore"):
                    new[name] = np.where(x > 0, func(x), np.nan) if prefix == "log_" else func(x)
    return frame.assign(**new) if new else frame


def _load_china(spec: RunSpec, d: DataSpec) -> LoadedData:
    """The China zone study panels (see ``docs/china_data.md``).

    ``[data.china]`` keys: ``dataset`` (``"cities"``, ``"province_patents"``,
    ``"wanjiang"``), ``zone_type`` (``"any"``, ``"etdz"``, ``"htz"``; cities only),
    ``first_year``/``last_year`` (window), ``merges`` (``"report"``/``"aggregate"``),
    ``region`` (``"east"``, ``"central"``, ``"west"``: keep one belt).
    Cities whose first zone predates the window are dropped as already treated, as R
    ``did`` does, and counted in the data report; so are zone cities (zoned by the
    window's last year) with no observed value of any outcome the spec estimates (the
    outcomes of the estimate blocks reading this data, else all of ``outcomes``): they
    enter no comparison but would count in the Callaway-Sant'Anna cohort shares. Cities
    without a zone and without data stay: they count in no cohort share, and the k-nearest
    maps keep them in their place. The dropped zone cities stay exposure sources, as do
    the zones of prefecture-level units outside the panel (autonomous prefectures,
    county-level cities under a province; :func:`zoneimpact.china.study.zone_sources`):
    exposure counts every zone. Their outcome rows are kept in
    :attr:`LoadedData.outside_rows`, so a unit's share of its province counts every city
    of the province in the data.
    """
    from .china import cities as china_files
    from .china.study import build_province_patents, build_study_panel, build_wanjiang_panel
    from .datadir import resolve_data_dir

    opts = dict(d.china)
    dataset = opts.pop("dataset", "cities")
    if dataset not in CHINA_DATASETS:
        raise SpecError(f"[data.china] dataset = {dataset!r}; use one of {CHINA_DATASETS}.")
    zone_type = opts.pop("zone_type", "any")
    first = opts.pop("first_year", None)
    last = opts.pop("last_year", None)
    merges = opts.pop("merges", "report")
    region = opts.pop("region", None)
    if opts:
        raise SpecError(f"Unknown [data.china] key(s) {sorted(opts)}.")
    data_dir = resolve_data_dir(spec.data_dir)
    geography = adjacency = None
    report: dict[str, Any] = {}
    if dataset == "cities":
        frame, geography, adjacency, report = build_study_panel(
            data_dir, zone_type, merges=merges, first_year=first, last_year=last, region=region
        )
        unit, cohort = "city_code", f"cohort_{zone_type}"
        files = [*china_files.CITY_FILES, china_files.ZONES_FILE]
    elif dataset == "province_patents":
        frame = build_province_patents(data_dir)
        unit, cohort = "province", "cohort_htz"
        files = [
            china_files.PATENT_APPL_FILE,
            china_files.PATENT_GRANT_FILE,
            china_files.ZONES_FILE,
        ]
        geography = (
            frame.groupby("province", as_index=False)["region"]
            .first()
            .rename(columns={"province": "unit"})
        )
    else:
        frame = build_wanjiang_panel(data_dir)
        unit, cohort = "city_code", "cohort_wanjiang"
        files = list(china_files.CITY_FILES)
    if region is not None:
        if region not in set(frame["region"]):
            raise SpecError(
                f"[data.china] region = {region!r}; the data have {sorted(set(frame['region']))}."
            )
        frame = frame[frame["region"] == region]
    # derived outcomes first: a growth rate in the window's first year needs the year before
    frame = _derived_outcomes(frame, d.outcomes, unit)
    if first is not None:
        frame = frame[frame["year"] >= int(first)]
    if last is not None:
        frame = frame[frame["year"] <= int(last)]
    if geography is not None and "unit" in geography.columns and unit == "city_code":
        geography = geography[geography["unit"].isin(frame[unit].unique())]
    sources = None
    if dataset == "cities":
        full = frame
        # the outcomes the spec estimates on this data (a block may read its own data)
        used = [b.outcome for b in spec.estimates if (b.data or spec.data) == d]
        used = [o for o in dict.fromkeys(used) if o in d.outcomes] or list(d.outcomes)
        frame, sources, blank = _china_sources(frame, report, cohort, tuple(used), geography)
        report["dropped_no_outcome"] = {"outcomes": used, "cities": blank}
        if report.get("markdown") and blank:
            report["markdown"] += (
                f"\n## Zone cities without any value of {used}\n\nDropped from the panel "
                "(they would enter no comparison but count in the cohort shares) and kept as "
                f"exposure sources: {', '.join(blank)}.\n"
            )
    if adjacency is not None:
        keep = set(frame[unit].unique())
        if sources is not None:
            keep |= set(sources["unit"])
            links = report.get("zone_source_links")
            if links is not None and len(links):
                adjacency = pd.concat([adjacency, links], ignore_index=True)
        adjacency = adjacency[adjacency["unit"].isin(keep) & adjacency["neighbour"].isin(keep)]
    panel = Panel.from_frame(
        frame,
        unit=unit,
        time="year",
        cohort=cohort,
        outcomes=list(d.outcomes),
        covariates=list(d.covariates),
        geography=geography,
        adjacency=adjacency[["unit", "neighbour"]] if adjacency is not None else None,
        outside_window="adjust",
        sources=sources,
    )
    outside = None
    if dataset == "cities":
        rows = full[~full[unit].isin(set(panel.units))]
        cols = ["province", "region", *d.outcomes]
        outside = rows[[unit, "year", *cols]].rename(columns={unit: "unit", "year": "time"})
        outside = outside.reset_index(drop=True)
    markdown = report.pop("markdown", None) if report else None
    report.pop("zone_source_links", None)
    out: dict[str, Any] = {"panel": panel.report, "china": report}
    if markdown:
        out["markdown"] = markdown
    return LoadedData(panel, tuple(data_dir / f for f in files), out, outside_rows=outside)


def _china_sources(
    frame: pd.DataFrame,
    report: dict[str, Any],
    cohort: str,
    outcomes: tuple[str, ...],
    geography: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """The city frame without the zone cities (zoned by the last year) that lack every
    value of all ``outcomes``, the exposure sources of the window (``sources=``) and those
    cities' codes.

    Sources are the zones of prefecture-level units outside the panel (the report's
    ``zone_sources``, already restricted to the belt) and the dropped zone cities, each
    opening with its first zone of the study's type; a zone opening after the window's
    last year exposes nobody in it and is left out.
    """
    last = int(frame["year"].max())
    seen = frame.groupby("city_code")[list(outcomes)].count()
    coh = frame.groupby("city_code")[cohort].first().reindex(seen.index)
    # a zone-free city without data counts in no cohort share and stays (dropping it
    # would hand its place among a zone's k nearest cities to a farther city)
    blank = (seen == 0).all(axis=1).to_numpy() & (coh.to_numpy(float) <= last)
    lacking = [str(u) for u in seen.index[blank]]
    parts = []
    src = report.get("zone_sources")
    if src is not None and len(src):
        parts.append(src[["unit", cohort, "province", "region", "lat", "lon"]])
    if lacking:
        place = pd.DataFrame({"unit": lacking, cohort: coh.reindex(lacking).to_numpy()})
        if geography is not None:
            cols = [c for c in ("province", "region", "lat", "lon") if c in geography]
            place = place.merge(geography[["unit", *cols]], on="unit", how="left")
        parts.append(place)
        frame = frame[~frame["city_code"].isin(lacking)]
    if not parts:
        return frame, None, lacking
    sources = pd.concat(parts, ignore_index=True).rename(columns={cohort: "cohort"})
    sources = sources[sources["cohort"].notna() & (sources["cohort"] <= last)]
    return frame, (sources.reset_index(drop=True) if len(sources) else None), lacking
