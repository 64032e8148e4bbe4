"""Exposure-map inputs that gave wrong numbers or crashed (found by a breaker's read).

k-nearest maps where a zone outside the panel (a source, e.g. an always-treated zone unit
dropped by ``outside_window="adjust"``) took no slot among another zone's k nearest, and
where ``k`` reached the number of units; a cross-validated cutoff that depended on the
units' labels; grid openings given as dates; a panel restricted by years; an adjacency
map that placed a source zone by the geography table's coordinates rather than its own.
Each test fails on the code before the fix.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import zoneimpact.sensitivity as sensitivity
from zoneimpact.errors import GeographyError
from zoneimpact.exposure import (
    _subpanel,
    exposure_from_adjacency,
    exposure_from_knn,
    exposure_from_rings,
)
from zoneimpact.grid import grid_exposure
from zoneimpact.panel import Panel
from zoneimpact.sensitivity import cv_cutoff
from zoneimpact.simulate import simulate

R_KM = 6371.0  # zoneimpact.geo's Earth radius; the distance formula below is written out anew


def _hav(a1: float, o1: float, a2: float, o2: float) -> float:
    """Great-circle distance in km, written out here (the reference, not the package's)."""
    p1, p2, dl, dp = map(math.radians, (a1, a2, o2 - o1, a2 - a1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(min(1.0, h)))


def _knn_reference(panel: Panel, k: int) -> tuple[dict, dict]:
    """Brute-force k-nearest map in plain loops: each zone (panel zone or source opening by
    the last period) ranks every other candidate (panel unit or such source) by distance;
    the panel units within its k-th distance (all candidates when fewer than k, ties
    included) are exposed from its opening. Returns onset and distance to the nearest
    linking zone, by panel unit."""
    geo, src = panel.geography, panel.sources
    last = panel.periods[-1]
    cand = [(u, geo.loc[u, "lat"], geo.loc[u, "lon"], True) for u in panel.units]
    zones = [
        (u, c, geo.loc[u, "lat"], geo.loc[u, "lon"])
        for u, c in panel.unit_cohort.items()
        if np.isfinite(c)
    ]
    if src is not None:
        for u, r in src.iterrows():
            if r["cohort"] <= last and pd.notna(r["lat"]):
                cand.append((u, r["lat"], r["lon"], False))
                zones.append((u, r["cohort"], r["lat"], r["lon"]))
    onset = {u: np.inf for u in panel.units}
    dist = {u: np.nan for u in panel.units}
    for z, c, la, lo in zones:
        d = [(_hav(la, lo, a, b), u, inside) for u, a, b, inside in cand if u != z]
        if not d:
            continue
        kth = sorted(x[0] for x in d)[min(k, len(d)) - 1]
        for du, u, inside in d:
            if inside and du <= kth + 1e-9:
                onset[u] = min(onset[u], c)
                dist[u] = du if np.isnan(dist[u]) else min(dist[u], du)
    return onset, dist


def _world(seed: int, n: int = 24) -> Panel:
    """Units scattered over 2 x 2 degrees, 2000-2008: ~30% zones, two always-treated zone
    units (dropped into the sources by outside_window='adjust') and three sources= zones,
    one of them opening after the data (ignored by every map)."""
    rng = np.random.default_rng(seed)
    units = [f"u{i:02d}" for i in range(n)]
    lat, lon = rng.uniform(30, 32, n), rng.uniform(110, 112, n)
    coh = np.where(rng.random(n) < 0.3, rng.integers(2001, 2009, n), 0)
    coh[:2] = [1998, 2000]  # always treated: dropped, kept as sources
    rows = [
        {"u": u, "t": t, "g": int(c), "y": float(rng.normal())}
        for u, c in zip(units, coh, strict=True)
        for t in range(2000, 2009)
    ]
    geo = pd.DataFrame({"u": units, "lat": lat, "lon": lon})
    src = pd.DataFrame(
        {
            "unit": ["s0", "s1", "s2"],
            "cohort": [1997, 2005, 2012],
            "lat": rng.uniform(30, 32, 3),
            "lon": rng.uniform(110, 112, 3),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Panel.from_frame(
            pd.DataFrame(rows),
            unit="u",
            time="t",
            cohort="g",
            outcomes="y",
            geography=geo,
            sources=src,
            outside_window="adjust",
        )


# ---------------------------------------------------------------------- 1. knn candidates
def test_knn_dropped_zone_fills_a_slot_as_in_the_treatment_reading():
    # five units on the equator 1 degree (111.2 km) apart: Z(2003) A(1995) b c d. Read with
    # cohort= and outside_window="adjust", A (always treated) leaves the panel as a
    # source; read with treatment=, A stays as a zone unit. Either way Z's 2 nearest are
    # A and b and A's are Z and b, so c and d are clean (hand count). The old code let
    # only panel units fill slots: Z's 2 nearest became b and c, c "exposed" from 2003
    units = ["Z", "A", "b", "c", "d"]
    coh = {"Z": 2003, "A": 1995}
    rows = [
        {"u": u, "t": t, "g": coh.get(u, 0), "d": int(t >= coh.get(u, 9999)), "y": 1.0}
        for u in units
        for t in range(2000, 2006)
    ]
    df = pd.DataFrame(rows)
    geo = pd.DataFrame({"u": units, "lat": 0.0, "lon": [0.0, 1.0, 2.0, 3.0, 4.0]})
    p1 = Panel.from_frame(
        df, unit="u", time="t", cohort="g", outcomes="y", geography=geo, outside_window="adjust"
    )
    p2 = Panel.from_frame(df, unit="u", time="t", treatment="d", outcomes="y", geography=geo)
    t1, t2 = exposure_from_knn(p1, 2).table, exposure_from_knn(p2, 2).table
    assert p1.report["dropped_always_treated"] == ["A"]
    assert t1["role"].to_dict() == {"Z": "direct", "b": "exposed", "c": "clean", "d": "clean"}
    assert t2["role"].drop("A").to_dict() == t1["role"].to_dict()
    # b's onset: A's opening (1995 as a source; 2000, the first period, read off treatment=)
    assert t1.loc["b", "exposure_onset"] == 1995.0
    assert t2.loc["b", "exposure_onset"] == 2000.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_matches_a_brute_force_map_for_every_k(seed):
    # the plain-loop reference above, for k from 1 past the number of candidates (24 units,
    # 2 dropped zone units, 2 located sources opening by 2008: 24 - 2 + 2 + 2 = 26); the old
    # code let no source take a slot (mismatches at small k) and capped every zone at
    # n_units - 1 neighbours (a source zone then missed its farthest unit, k >= n_units)
    p = _world(seed)
    n_cand = len(p.units) + 2
    for k in (1, 2, 3, 5, 10, n_cand - 2, n_cand - 1, n_cand, n_cand + 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # s2 opens after the data: warned, ignored
            tab = exposure_from_knn(p, k).table
        onset, dist = _knn_reference(p, k)
        assert tab["exposure_onset"].to_dict() == onset, k
        # distances: two haversine codings of the same formula, 1e-9 km apart at most
        np.testing.assert_allclose(
            tab["distance_km"].to_numpy(float),
            np.array([dist[u] for u in tab.index]),
            rtol=0,
            atol=1e-9,
        )


# ---------------------------------------------------------------------- 2. k >= units
def test_knn_source_zone_with_k_past_the_number_of_units():
    # units a, b, d (zone 2002), e at longitudes 0.1, 0.2, 0.3, 5.0 on the equator; source
    # S at 0.0 opens 2001. With k = 4 S's 4 nearest are all four units, so e is exposed
    # from 2001 (hand count); the old code capped k at n_units - 1 = 3 (e from 2002, by d
    # alone) and labelled the ring "3-nearest" for k = 4 and 10
    units = ["a", "b", "d", "e"]
    coh = {"d": 2002}
    rows = [
        {"u": u, "t": t, "g": coh.get(u, 0), "y": 1.0} for u in units for t in (2000, 2001, 2002)
    ]
    geo = pd.DataFrame({"u": units, "lat": 0.0, "lon": [0.1, 0.2, 0.3, 5.0]})
    src = pd.DataFrame({"unit": ["S"], "cohort": [2001], "lat": [0.0], "lon": [0.0]})
    p = Panel.from_frame(
        pd.DataFrame(rows), unit="u", time="t", cohort="g", outcomes="y", geography=geo, sources=src
    )
    for k in (4, 10):
        m = exposure_from_knn(p, k)
        assert m.rings == (f"{k}-nearest",)
        assert m.table.loc["e", "role"] == "exposed"
        assert m.table.loc["e", "exposure_onset"] == 2001.0
        # every unit is among S's neighbours (k past the 4 units); d is exposed too
        assert set(m.links.loc[m.links["zone"] == "S", "unit"]) == set(units)
    # k = 3: d's 3 nearest are b (11 km), a and S (22 and 33 km, S a zone outside the
    # panel), S's are a, b, d: e is nobody's neighbour (hand count; the old code, which
    # skipped S as a candidate, gave d's 3 nearest as a, b, e)
    m = exposure_from_knn(p, 3)
    assert m.table.loc["e", "role"] == "clean"


# ---------------------------------------------------------------------- 3. cv folds
def _relabelled(p: Panel, seed: int, *, drop_region: bool = False) -> Panel:
    """The same data with units and regions renamed by a random permutation, rows shuffled."""
    units = list(p.units)
    regions = sorted(p.geography["region"].unique())
    perm = np.random.default_rng(seed).permutation(len(units))
    rperm = np.random.default_rng(100 + seed).permutation(len(regions))
    f = {u: f"id{perm[i]:03d}" for i, u in enumerate(units)}
    g = {r: f"R{rperm[i]}" for i, r in enumerate(regions)}
    d = p.data.assign(unit=p.data["unit"].map(f)).sample(frac=1, random_state=seed)
    geo = p.geography.reset_index()
    geo = geo.assign(unit=geo["unit"].map(f), region=geo["region"].map(g))
    if drop_region:
        geo = geo.drop(columns="region")
    return Panel.from_frame(
        d, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], geography=geo,
        never_values=(),
    )  # fmt: skip


@pytest.mark.parametrize("drop_region", [False, True])
def test_cv_cutoff_does_not_depend_on_the_labels(drop_region):
    # the breaker's world (120 units, 12 regions, noise SD 45): with the same data and seed
    # the old code chose 100 or 50 km depending on how the units were named (folds drawn
    # over blocks numbered in label order). Now every relabelling gives the table of the
    # original panel; 1e-9 relative: the same folds, only the row order of the least
    # squares differs
    sim = simulate(rng=5, n_units=120, n_regions=12, first_year=2000, last_year=2012,
                   waves={2004: 0.5, 2008: 0.5}, radius_km=100.0, noise_sd=45.0,
                   zero_share=0.0)  # fmt: skip
    base = _relabelled(sim.panel, 0, drop_region=drop_region)
    best0, tab0 = cv_cutoff(base, "fdi", candidates_km=(0, 50, 100, 200))
    for seed in (1, 2, 3, 5):
        q = _relabelled(sim.panel, seed, drop_region=drop_region)
        best, tab = cv_cutoff(q, "fdi", candidates_km=(0, 50, 100, 200))
        assert best == best0
        np.testing.assert_allclose(tab["cv_mse"], tab0["cv_mse"], rtol=1e-9)
        np.testing.assert_allclose(tab["gain_se"], tab0["gain_se"], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- 4. grid dates
@pytest.mark.parametrize(
    "opening",
    [
        pd.to_datetime(["2005-06-01"]),
        pd.PeriodIndex(["2005"], freq="Y"),
        pd.Series([pd.Timestamp("2005-06-01")], dtype=object),
    ],
)
def test_grid_exposure_refuses_dates_as_openings(opening):
    # the old code read a datetime64 opening as nanoseconds since 1970: cohort 1.117584e+15
    cells = pd.DataFrame({"cell": [1, 2], "lat": [30.0, 30.05], "lon": [110.0, 110.0]})
    zones = pd.DataFrame({"zone": ["z"], "lat": [30.0], "lon": [110.0], "opening": opening})
    with pytest.raises(GeographyError, match=r"'opening' of the zones table holds dates.*year"):
        grid_exposure(cells, zones, rings_km=[1, 10])
    # the year itself is read as before: cell 1 (0 km) direct from 2005
    tab = grid_exposure(cells, zones.assign(opening=2005), rings_km=[1, 10])
    assert tab.loc[1, "cohort"] == 2005.0 and tab.loc[2, "exposure_onset"] == 2005.0


# ---------------------------------------------------------------------- 5. year subsets
def _line(cohorts: dict[str, int]) -> Panel:
    names = list(cohorts)
    rows = [
        {"u": u, "t": t, "g": cohorts[u], "y": float(k + t)}
        for k, u in enumerate(names)
        for t in range(2000, 2007)
    ]
    geo = pd.DataFrame({"u": names, "lat": 30.0, "lon": 100.0 + np.arange(len(names))})
    adj = pd.DataFrame({"u": names[:-1], "neighbour": names[1:]})
    return Panel.from_frame(
        pd.DataFrame(rows), unit="u", time="t", cohort="g", outcomes="y", geography=geo,
        adjacency=adj,
    )  # fmt: skip


def test_subpanel_restricted_by_years():
    # a (2002), b (2005), c, d on a line 96.3 km apart (1 degree of longitude at 30N);
    # the old code raised PanelError for either cut (outside_window="error")
    p = _line({"a": 2002, "b": 2005, "c": 0, "d": 0})
    rings = [(0.0, 100.0)]
    full = exposure_from_rings(p, rings).table
    # years up to 2003: b's zone opens after the window, so b is untreated in every kept
    # year, a never-treated unit of the subset, exposed by a from 2002; c (next to b
    # only) is clean, as a source opening after the data exposes nobody
    early = _subpanel(p, (p.data["time"] <= 2003).to_numpy(), None)
    assert early.unit_cohort.to_dict() == {"a": 2002.0, "b": np.inf, "c": np.inf, "d": np.inf}
    assert early.report["recoded_late_cohort"] == ["b"]
    tab = exposure_from_rings(early, rings).table
    assert tab["role"].to_dict() == {"a": "direct", "b": "exposed", "c": "clean", "d": "clean"}
    assert tab.loc["b", "exposure_onset"] == 2002.0
    # years from 2003: a's zone predates the window, so a leaves as a source (cohort 2002,
    # its coordinates and its adjacency link to b) and still exposes b from 2002: the
    # map of b, c, d is the full panel's
    late = _subpanel(p, (p.data["time"] >= 2003).to_numpy(), None)
    assert list(late.units) == ["b", "c", "d"]
    assert late.report["dropped_always_treated"] == ["a"]
    assert late.sources.loc["a", "cohort"] == 2002.0
    assert late.sources.loc["a", "lon"] == 100.0
    tab = exposure_from_rings(late, rings).table
    pd.testing.assert_frame_equal(tab, full.loc[["b", "c", "d"]])
    adj = exposure_from_adjacency(late).table
    assert adj.loc["b", "exposure_onset"] == 2002.0


# ---------------------------------------------------------------------- 6. source coords
def test_adjacency_distance_uses_the_sources_coordinates():
    # source zone X at longitude 0.1 in sources=, at 5.0 in the geography table (its city's
    # centroid); a at 0.0 on the equator is adjacent to X. Rings and k-nearest place X by
    # sources=: 0.1 degree = 11.12 km (6371 * 0.1 * pi / 180); the old adjacency map
    # read 5.0 (556 km)
    units = ["a", "b"]
    rows = [{"u": u, "t": t, "g": 0, "y": 1.0} for u in units for t in range(2000, 2004)]
    geo = pd.DataFrame({"u": [*units, "X"], "lat": 0.0, "lon": [0.0, 1.0, 5.0]})
    src = pd.DataFrame({"unit": ["X"], "cohort": [2002], "lat": [0.0], "lon": [0.1]})
    p = Panel.from_frame(
        pd.DataFrame(rows), unit="u", time="t", cohort="g", outcomes="y", geography=geo,
        sources=src, adjacency=pd.DataFrame({"u": ["a"], "neighbour": ["X"]}),
    )  # fmt: skip
    want = R_KM * 0.1 * math.pi / 180
    d_adj = exposure_from_adjacency(p).table.loc["a", "distance_km"]
    d_ring = exposure_from_rings(p, [(0, 1000)]).table.loc["a", "distance_km"]
    assert d_adj == pytest.approx(want, rel=1e-9)  # same formula, rounding only
    assert d_adj == pytest.approx(d_ring, rel=1e-12)


# ---------------------------------------------------------------------- 7. [0, h)
def test_cv_cutoff_ring_is_half_open_as_documented():
    # the module notes said 1{d <= h}; the code's ring is [0, h) (exposure_from_rings).
    # A unit at exactly h from the zone is not exposed at cutoff h, and is just beyond it
    assert "1{d < h, exposed}" in sensitivity.__doc__
    assert "1{d <= h" not in sensitivity.__doc__
    rng = np.random.default_rng(0)
    names = [f"u{i:02d}" for i in range(16)]
    coh = {"u00": 2003, "u08": 2005}
    rows = [
        {"u": u, "t": t, "g": coh.get(u, 0), "y": float(rng.normal())}
        for u in names
        for t in range(2000, 2010)
    ]
    geo = pd.DataFrame({"u": names, "lat": 0.0, "lon": np.arange(16.0)})
    p = Panel.from_frame(
        pd.DataFrame(rows), unit="u", time="t", cohort="g", outcomes="y", geography=geo
    )
    # h: 1 degree on the equator, u00 to u01 and u08 to u07 and u09 (the smallest of the
    # three, which may differ in the last bits); the next units lie 2 degrees out
    near = exposure_from_rings(p, [(0, 1000)]).table["distance_km"]
    h = near.loc[["u01", "u07", "u09"]].min()
    _, tab = cv_cutoff(p, "y", candidates_km=(0, h, h * (1 + 1e-9)))
    assert tab["n_exposed_units"].tolist() == [0, 0, 3]
