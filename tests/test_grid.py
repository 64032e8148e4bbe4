"""Gridded ring exposure (zoneimpact.grid) and the streamed ring-spillover CS (issue 19.3).

The exposure is checked against a brute-force cells x zones distance matrix built with the
same distance formula (so the comparison is exact, boundary ties included); the streamed
CS against ``callaway_santanna.fit`` on the panels ``ExposureMap.panels`` builds, to 1e-10
(both compute the same difference of means and influence functions; they differ only in
the order of floating-point sums).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import GeographyError, PanelError, ZoneImpactError
from zoneimpact.estimators import callaway_santanna
from zoneimpact.geo import haversine_km
from zoneimpact.grid import exposure_from_points, grid_exposure, ring_cs_from_parquet
from zoneimpact.panel import Panel

RINGS = (1.0, 5.0, 10.0)


def _lattice(rng: np.random.Generator, n_cells: int = 3000, n_zones: int = 250):
    """Cells and zones on a 1 km lattice (metres): many distances are exactly 1, 5 or 10
    km (e.g. 3-4-5 triangles), the ties at ring edges; some zones lie outside the grid."""
    xy = rng.choice(80 * 80, size=n_cells, replace=False)
    cells = pd.DataFrame(
        {"cell": rng.permutation(n_cells) + 100, "x": (xy % 80) * 1000.0, "y": (xy // 80) * 1000.0}
    )
    zones = pd.DataFrame(
        {
            "zone": [f"z{i}" for i in range(n_zones)],
            "x": rng.integers(-12, 92, n_zones) * 1000.0,
            "y": rng.integers(-12, 92, n_zones) * 1000.0,
            "opening": rng.integers(2001, 2011, n_zones).astype(float),
        }
    )
    return cells, zones


def _brute(cells: pd.DataFrame, zones: pd.DataFrame, coords: str, n_treat: int = 1) -> dict:
    """Every quantity of grid_exposure from the full distance matrix."""
    if coords == "xy":
        d = (
            np.hypot(
                cells["x"].to_numpy()[:, None] - zones["x"].to_numpy()[None, :],
                cells["y"].to_numpy()[:, None] - zones["y"].to_numpy()[None, :],
            )
            / 1000.0
        )
    else:
        d = haversine_km(
            cells["lat"].to_numpy()[:, None],
            cells["lon"].to_numpy()[:, None],
            zones["lat"].to_numpy()[None, :],
            zones["lon"].to_numpy()[None, :],
        )
    opening = zones["opening"].to_numpy(float)[None, :]
    edges = np.r_[0.0, RINGS]
    first, count = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (d >= lo) & (d < hi)
        first.append(np.where(inside, opening, np.inf).min(axis=1))
        count.append(inside.sum(axis=1))
    spill = (d >= edges[n_treat]) & (d < edges[-1])
    ds = np.where(spill, d, np.inf)
    closest = ds.min(axis=1)
    band = np.searchsorted(RINGS, closest, side="right")
    return {
        "first": first,
        "count": count,
        "nearest": d.min(axis=1),
        "cohort": np.min(first[:n_treat], axis=0),
        "onset": np.min(first[n_treat:], axis=0),
        "distance": np.where(np.isfinite(closest), closest, np.nan),
        "band": np.where(np.isfinite(closest), band, -1),
    }


def _check_against_brute(tab: pd.DataFrame, cells: pd.DataFrame, bf: dict) -> None:
    tab = tab.loc[cells["cell"].to_numpy()]
    labels = ["0-1km", "1-5km", "5-10km"]
    for k, lab in enumerate(labels):
        np.testing.assert_array_equal(tab[f"opening:{lab}"].to_numpy(), bf["first"][k])
        np.testing.assert_array_equal(tab[f"n_zones:{lab}"].to_numpy(), bf["count"][k])
    np.testing.assert_array_equal(tab["cohort"].to_numpy(), bf["cohort"])
    np.testing.assert_array_equal(tab["exposure_onset"].to_numpy(), bf["onset"])
    # same formula on the same pair: equal to the last bit
    np.testing.assert_array_equal(tab["distance_km"].to_numpy(), bf["distance"])
    ring = np.array([""] + labels, dtype=object)[bf["band"] + 1]
    np.testing.assert_array_equal(tab["ring"].astype(str).to_numpy(), ring)
    # the tree's nearest zone could differ from the brute-force argmin only between zones
    # at the same distance up to rounding (1e-12 km)
    np.testing.assert_allclose(tab["nearest_km"].to_numpy(), bf["nearest"], rtol=0, atol=1e-9)
    role = np.where(
        np.isfinite(bf["cohort"]), "direct", np.where(np.isfinite(bf["onset"]), "exposed", "clean")
    )
    np.testing.assert_array_equal(tab["role"].astype(str).to_numpy(), role)


def test_projected_grid_matches_brute_force_with_boundary_ties() -> None:
    rng = np.random.default_rng(3)
    cells, zones = _lattice(rng, 3000, 60)
    tab = grid_exposure(cells, zones, rings_km=RINGS, coords="xy", chunk_size=1000)
    bf = _brute(cells, zones, "xy")
    d = np.hypot(
        cells["x"].to_numpy()[:, None] - zones["x"].to_numpy()[None, :],
        cells["y"].to_numpy()[:, None] - zones["y"].to_numpy()[None, :],
    )
    # the lattice really puts zones exactly on the ring edges (ties the rule must break)
    for edge in (1000.0, 5000.0, 10000.0):
        assert (d == edge).sum() > 20
    assert (zones[["x", "y"]] < 0).any(axis=1).sum() > 10  # zones outside the grid
    _check_against_brute(tab, cells, bf)
    assert set(tab["role"].astype(str)) == {"direct", "exposed", "clean"}


def test_latlon_grid_matches_brute_force_haversine() -> None:
    rng = np.random.default_rng(4)
    n, nz = 3000, 300
    cells = pd.DataFrame(
        {"cell": np.arange(n), "lat": rng.uniform(30, 30.5, n), "lon": rng.uniform(110, 110.6, n)}
    )
    zones = pd.DataFrame(
        {
            "zone": np.arange(nz),
            "lat": rng.uniform(29.9, 30.6, nz),
            "lon": rng.uniform(109.9, 110.7, nz),
            "opening": rng.integers(2001, 2011, nz),
        }
    )
    # two zones exactly on a cell (distance 0, inner band) and one at the antimeridian
    zones.loc[0, ["lat", "lon"]] = cells.loc[5, ["lat", "lon"]].to_numpy()
    zones.loc[1, ["lat", "lon"]] = cells.loc[5, ["lat", "lon"]].to_numpy()
    zones.loc[2, ["lat", "lon"]] = (-10.0, 179.99)
    tab = grid_exposure(cells, zones, rings_km=RINGS, coords="latlon", chunk_size=777)
    _check_against_brute(tab, cells, _brute(cells, zones, "latlon"))
    assert tab.loc[5, "n_zones:0-1km"] >= 2


def test_cell_order_and_chunk_size_do_not_change_the_map() -> None:
    rng = np.random.default_rng(5)
    cells, zones = _lattice(rng, 2000, 150)
    base = grid_exposure(cells, zones, coords="xy")
    shuffled = cells.sample(frac=1.0, random_state=1)
    other = grid_exposure(shuffled, zones.sample(frac=1.0, random_state=2), coords="xy")
    pd.testing.assert_frame_equal(other.loc[base.index], base)
    for chunk in (7, 13, 1999):
        pd.testing.assert_frame_equal(
            grid_exposure(cells, zones, coords="xy", chunk_size=chunk), base
        )
    assert list(other.index) == list(shuffled["cell"])  # rows follow the caller's order


def test_treated_radius_options() -> None:
    rng = np.random.default_rng(6)
    cells, zones = _lattice(rng, 1500, 100)
    two = grid_exposure(cells, zones, coords="xy", treated_km=5)
    bf = _brute(cells, zones, "xy", n_treat=2)
    tab = two.loc[cells["cell"].to_numpy()]
    np.testing.assert_array_equal(tab["cohort"].to_numpy(), bf["cohort"])
    np.testing.assert_array_equal(tab["exposure_onset"].to_numpy(), bf["onset"])
    none = grid_exposure(cells, zones, coords="xy", treated_km=0)
    assert (none["role"] != "direct").all() and np.isinf(none["cohort"]).all()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda c, z: (c.assign(x=c["x"].where(c["cell"] != c["cell"].iloc[3])), z),
            ["'x'", "nan"],
        ),
        (lambda c, z: (c, z.assign(opening=np.nan)), ["'opening'", "zone"]),
        (lambda c, z: (c.drop(columns="y"), z), ["['y']", "cells"]),
        (lambda c, z: (pd.concat([c, c.iloc[:1]]), z), ["'cell'", "more than once"]),
    ],
)
def test_bad_points_name_the_column(change, words) -> None:
    cells, zones = _lattice(np.random.default_rng(7), 200, 20)
    c, z = change(cells.copy(), zones.copy())
    with pytest.raises(GeographyError) as err:
        grid_exposure(c, z, coords="xy")
    for w in words:
        assert w in str(err.value)
    if "nan" in words:
        assert str(cells["cell"].iloc[3]) in str(err.value)  # the cell at fault


@pytest.mark.parametrize(
    ("rings", "treated", "words"),
    [
        ((-1, 5), None, ["rings_km[0]", "-1", "positive"]),
        ((5, 1, 10), None, ["increase", "5", "rings_km[1] = 1"]),
        ((), None, ["empty"]),
        ((1, 5), 2, ["treated_km = 2", "ring edge"]),
    ],
)
def test_bad_rings_are_refused(rings, treated, words) -> None:
    cells, zones = _lattice(np.random.default_rng(8), 100, 10)
    with pytest.raises(ZoneImpactError) as err:
        grid_exposure(cells, zones, coords="xy", rings_km=rings, treated_km=treated)
    for w in words:
        assert w in str(err.value)


def test_latitude_out_of_range() -> None:
    cells = pd.DataFrame({"cell": [1, 2], "lat": [10.0, 95.0], "lon": [0.0, 0.0]})
    zones = pd.DataFrame({"zone": [1], "lat": [0.0], "lon": [0.0], "opening": [2005]})
    with pytest.raises(GeographyError, match=r"'lat'.*95.*cell 2"):
        grid_exposure(cells, zones)


# ---------------------------------------------------------------------- streamed CS
def _grid_panel(seed: int = 11, side: int = 60, n_zones: int = 12, years=range(2001, 2009)):
    """A small 1 km grid panel with staggered zones, a direct effect of 2 and ring
    spillovers of 0.5 (1-5 km) and 0.2 (5-10 km)."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    cells = pd.DataFrame(
        {"cell": np.arange(side * side), "x": ii.ravel() * 1e3, "y": jj.ravel() * 1e3}
    )
    zones = pd.DataFrame(
        {
            "zone": np.arange(n_zones),
            "x": rng.uniform(-3, side + 3, n_zones) * 1e3,
            "y": rng.uniform(-3, side + 3, n_zones) * 1e3,
            "opening": rng.integers(2000, 2010, n_zones),  # some before / after the data
        }
    )
    emap = exposure_from_points(cells, zones, rings_km=RINGS, coords="xy")
    tab = emap.table
    years = np.array(list(years))
    n = len(cells)
    y = rng.normal(size=(n, len(years))) + rng.normal(size=(n, 1)) + 0.1 * (years - 2000)
    t = years[None, :]
    y += 2.0 * (t >= tab["cohort"].to_numpy()[:, None])
    onset = tab["exposure_onset"].to_numpy()[:, None]
    ring = tab["ring"].to_numpy()[:, None]
    y += np.where((t >= onset) & (ring == "1-5km"), 0.5, 0) + np.where(
        (t >= onset) & (ring == "5-10km"), 0.2, 0
    )
    long = pd.DataFrame(
        {
            "cell": np.repeat(cells["cell"].to_numpy(), len(years)).astype(np.int32),
            "year": np.tile(years, n).astype(np.int32),
            "y": y.ravel(),
        }
    )
    return cells, zones, emap, long


def _in_memory(emap, long):
    cohort = emap.table["cohort"].reindex(long["cell"]).to_numpy()
    frame = long.assign(cohort=np.where(np.isfinite(cohort), cohort, 0))
    panel = Panel.from_frame(
        frame, unit="cell", time="year", cohort="cohort", outcomes=["y"], outside_window="adjust"
    )
    direct, spill = emap.panels(panel, controls="never_exposed", pre_exposed="drop_units")
    pieces = {f"spillover:{r}": p for r, p in spill.items()} | {"direct": direct}
    return {
        k: callaway_santanna.fit(
            p, outcome="y", bootstrap=False, aggregations=["dynamic"], control_group="never"
        )
        for k, p in pieces.items()
    }


@pytest.fixture(scope="module")
def grid_case():
    cells, zones, emap, long = _grid_panel()
    return emap, long, _in_memory(emap, long)


def _assert_same(streamed, ref) -> None:
    a = ref.terms.set_index("term")
    b = streamed.terms.set_index("term")
    assert set(a.index) >= set(b.index) and "att" in b.index and "event_avg" in b.index
    common = b.index
    # same formulas, different summation order: 1e-10 (outcomes are O(1), SEs O(0.1))
    np.testing.assert_allclose(b["estimate"], a.loc[common, "estimate"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(b["se"], a.loc[common, "se"], rtol=1e-10, atol=1e-12)
    ga = ref.att_gt.reset_index(drop=True)
    gb = streamed.att_gt
    np.testing.assert_array_equal(gb["cohort"], ga["cohort"])
    np.testing.assert_array_equal(gb["time"], ga["time"])
    np.testing.assert_array_equal(gb["base_period"], ga["base_period"])
    np.testing.assert_allclose(gb["estimate"], ga["estimate"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(gb["n_treated"], ga["n_treated"])
    np.testing.assert_array_equal(gb["n_control"], ga["n_control"])
    if np.isfinite(gb["se"]).all():
        np.testing.assert_allclose(gb["se"], ga["se"], rtol=1e-10, atol=1e-12)
    assert streamed.n_units == ref.n_units


def test_streamed_cs_equals_in_memory_fit(grid_case) -> None:
    emap, long, ref = grid_case
    out = ring_cs_from_parquet(long, emap.table, cell_se=True, batch_rows=5000)
    assert set(out) == set(ref) == {"spillover:1-5km", "spillover:5-10km", "direct"}
    for k in out:
        _assert_same(out[k], ref[k])
    # the simulated spillovers are recovered (truth 0.5 and 0.2; SEs about 0.02-0.05)
    assert abs(out["spillover:1-5km"].estimate - 0.5) < 4 * out["spillover:1-5km"].se
    assert abs(out["direct"].estimate - 2.0) < 4 * out["direct"].se


def test_streamed_cs_from_shuffled_parquet_partitions(grid_case, tmp_path) -> None:
    pytest.importorskip("pyarrow")
    emap, long, ref = grid_case
    rows = long.sample(frac=1.0, random_state=3).reset_index(drop=True)
    # rows of one cell spread over several files: the per-cell sums do not care
    for k, part in enumerate(np.array_split(np.arange(len(rows)), 5)):
        rows.iloc[part].to_parquet(tmp_path / f"part-{k}.parquet", index=False)
    out = ring_cs_from_parquet(str(tmp_path / "*.parquet"), emap.table, batch_rows=3333)
    for k in out:
        _assert_same(out[k], ref[k])
    small = ring_cs_from_parquet(tmp_path, emap.table, batch_rows=10**7, pieces=["direct"])
    np.testing.assert_allclose(
        small["direct"].terms["se"], out["direct"].terms["se"], rtol=1e-12, atol=0
    )
    # the overall ATT alone: one influence-function accumulator per cell
    att_only = ring_cs_from_parquet(tmp_path, emap.table, event_study=False, batch_rows=4000)
    for k, r in att_only.items():
        assert list(r.terms["term"]) == ["att"]
        a = ref[k].terms.set_index("term").loc["att"]
        assert abs(r.estimate - a["estimate"]) < 1e-10
        assert abs(r.se / a["se"] - 1) < 1e-10


def test_streamed_cs_refuses_missing_and_unbalanced_rows(grid_case) -> None:
    emap, long, _ = grid_case
    clean_cell = emap.table.index[(emap.table["role"] == "clean").to_numpy()][0]
    i = int(np.flatnonzero(long["cell"].to_numpy() == clean_cell)[2])
    with pytest.raises(PanelError, match=rf"missing for cell {clean_cell}, period 2003"):
        ring_cs_from_parquet(long.assign(y=long["y"].where(long.index != i)), emap.table)
    with pytest.raises(PanelError, match=rf"Cell {clean_cell} .* 7 row"):
        ring_cs_from_parquet(long.drop(index=i), emap.table)
    dup = pd.concat([long.drop(index=i), long.iloc[[i - 1]]])
    with pytest.raises(PanelError, match=rf"Cell {clean_cell} .* 8 row"):
        ring_cs_from_parquet(dup, emap.table)
    with pytest.raises(PanelError, match="Cell 99999"):
        ring_cs_from_parquet(pd.concat([long, long.iloc[:1].assign(cell=99999)]), emap.table)
    with pytest.raises(PanelError, match="Unknown piece"):
        ring_cs_from_parquet(long, emap.table, pieces=["spillover:2-3km"])


def test_grid_map_feeds_the_spillover_estimator(grid_case) -> None:
    """exposure_from_points gives an ExposureMap that spillover.fit takes as is: with CS as
    its base, its direct and ring terms are the streamed ones."""
    from zoneimpact.estimators import spillover

    emap, long, _ = grid_case
    cohort = emap.table["cohort"].reindex(long["cell"]).to_numpy()
    panel = Panel.from_frame(
        long.assign(cohort=np.where(np.isfinite(cohort), cohort, 0)),
        unit="cell",
        time="year",
        cohort="cohort",
        outcomes=["y"],
        outside_window="adjust",
    )
    res = spillover.fit(
        panel,
        outcome="y",
        exposure=emap,
        controls="never_exposed",
        pre_exposed="drop_units",
        base_estimator="callaway_santanna",
        n_boot=99,
        rng=0,
    )
    terms = res.terms.set_index("term")
    streamed = ring_cs_from_parquet(long, emap.table, event_study=False)
    for piece, r in streamed.items():
        # same estimator, same cells; the spillover SE stacks the same influence functions
        assert abs(terms.loc[piece, "estimate"] - r.estimate) < 1e-10
        assert abs(terms.loc[piece, "se"] / r.se - 1) < 1e-8
