"""The two k-nearest conventions of :func:`zoneimpact.exposure.exposure_from_knn`.

``among="places"`` (default): a zone's ``k`` nearest places, the panel's units and its
located source zones (zones outside the sample); a source takes a slot but is never
exposed. ``among="panel"``: the ``k`` nearest panel units; sources take no slot but still
expose their own ``k`` nearest panel units (the referee Monte Carlo's convention,
benchmarks/mc_referee_knn.py). Hand-computable geometry: units on the equator (lat 0), so
distances are proportional to the longitude gaps below (in degrees):

    D(-5)  B(-2)  Z(0)  S(0.4)  A(1)  C(2)  E(8)  F(12)

Z (zone 2003) and E (zone 2004) are panel zones, S a source zone outside the panel opening
in 2002; B and C are tied (2 degrees) from Z.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import GeographyError
from zoneimpact.exposure import build_exposure, exposure_from_knn
from zoneimpact.panel import Panel

YEARS = list(range(2000, 2006))
LON = {"D": -5.0, "B": -2.0, "Z": 0.0, "A": 1.0, "C": 2.0, "E": 8.0, "F": 12.0}
COHORT = {"Z": 2003, "E": 2004}
SOURCE = {"S": (0.4, 2002)}  # lon, cohort


def _panel(
    lon: dict[str, float] = LON,
    cohort: dict[str, int] = COHORT,
    source: dict[str, tuple[float, int]] = SOURCE,
    order: list[str] | None = None,
    **kw,
) -> Panel:
    units = order or list(lon)
    df = pd.DataFrame(
        [
            dict(unit=u, time=t, cohort=cohort.get(u, np.nan), y=float(t + len(u)))
            for u in units
            for t in YEARS
        ]
    )
    geo = pd.DataFrame({"unit": units, "lat": 0.0, "lon": [lon[u] for u in units]})
    src = pd.DataFrame(
        {
            "unit": list(source),
            "cohort": [c for _, c in source.values()],
            "lat": 0.0,
            "lon": [x for x, _ in source.values()],
        }
    )
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        cohort="cohort",
        outcomes="y",
        geography=geo,
        sources=src if len(src) else None,
        never_values=(),
        **kw,
    )


def _links(emap) -> set[tuple[str, str]]:
    return set(zip(emap.links["unit"], emap.links["zone"], strict=True))


def _onsets(emap) -> dict[str, float]:
    return emap.table["exposure_onset"].to_dict()


def test_places_counts_the_source_zone_in_the_k_slots():
    emap = exposure_from_knn(_panel(), 2, among="places")
    # Z: S (0.4) and A (1); S: Z (0.4) and A (0.6); E: F (4) and C (6)
    assert _links(emap) == {("A", "Z"), ("Z", "S"), ("A", "S"), ("F", "E"), ("C", "E")}
    roles = emap.table["role"].to_dict()
    assert roles == {"D": "clean", "B": "clean", "Z": "direct", "A": "exposed",
                     "C": "exposed", "E": "direct", "F": "exposed"}  # fmt: skip
    inf = np.inf
    assert _onsets(emap) == {"D": inf, "B": inf, "Z": 2002.0, "A": 2002.0, "C": 2004.0,
                             "E": inf, "F": 2004.0}  # fmt: skip
    assert emap.settings == {"k": 2, "among": "places"}
    # the default is "places", through build_exposure too
    for other in (exposure_from_knn(_panel(), 2), build_exposure(_panel(), "knn", k=2)):
        pd.testing.assert_frame_equal(other.table, emap.table)
        pd.testing.assert_frame_equal(other.links, emap.links)


def test_panel_counts_panel_units_only_and_keeps_ties():
    emap = exposure_from_knn(_panel(), 2, among="panel")
    # Z: A (1), then B and C tied at 2: all in; S (no slot taken) still exposes Z and A
    assert _links(emap) == {("A", "Z"), ("B", "Z"), ("C", "Z"), ("Z", "S"), ("A", "S"),
                            ("F", "E"), ("C", "E")}  # fmt: skip
    roles = emap.table["role"].to_dict()
    assert roles == {"D": "clean", "B": "exposed", "Z": "direct", "A": "exposed",
                     "C": "exposed", "E": "direct", "F": "exposed"}  # fmt: skip
    inf = np.inf
    assert _onsets(emap) == {"D": inf, "B": 2003.0, "Z": 2002.0, "A": 2002.0, "C": 2003.0,
                             "E": inf, "F": 2004.0}  # fmt: skip
    assert emap.settings == {"k": 2, "among": "panel"}
    via = build_exposure(_panel(), "knn", k=2, among="panel")
    pd.testing.assert_frame_equal(via.table, emap.table)
    assert _links(via) == _links(emap)


def test_ties_at_the_kth_place_under_places():
    # k=3 among places: S (0.4), A (1), then B and C tied at 2 are both Z's neighbours
    emap = exposure_from_knn(_panel(), 3, among="places")
    by_z = {u for u, z in _links(emap) if z == "Z"}
    assert by_z == {"A", "B", "C"}  # and S, which is no panel unit


def test_always_treated_unit_dropped_to_the_sources():
    # X (lon -0.5, zone 1995) is always treated: outside_window="adjust" drops it from the
    # panel and keeps it as a source zone. Among places it and S fill Z's two slots, so Z
    # exposes no panel unit; among panel units Z exposes A and B, and X its nearest
    # panel units Z (0.5), then A and B tied at 1.5
    lon, coh = {**LON, "X": -0.5}, {**COHORT, "X": 1995}
    p = _panel(lon, coh, outside_window="adjust")
    assert "X" not in set(p.units) and "X" in set(p.sources.index)
    places = exposure_from_knn(p, 2, among="places")
    assert {u for u, z in _links(places) if z == "Z"} == set()
    assert {u for u, z in _links(places) if z == "X"} == {"Z"}  # X: Z (0.5), S (0.9)
    assert places.table.loc["B", "role"] == "clean"
    panel = exposure_from_knn(p, 2, among="panel")
    assert {u for u, z in _links(panel) if z == "Z"} == {"A", "B", "C"}
    assert {u for u, z in _links(panel) if z == "X"} == {"Z", "A", "B"}
    assert panel.table.loc[["Z", "A", "B", "C"], "exposure_onset"].tolist() == [1995.0] * 3 + [
        2003.0
    ]


def test_conventions_agree_without_sources():
    p = _panel(source={})
    a, b = exposure_from_knn(p, 2, among="places"), exposure_from_knn(p, 2, among="panel")
    pd.testing.assert_frame_equal(a.table, b.table)
    assert _links(a) == _links(b)


@pytest.mark.parametrize("among", ["places", "panel"])
def test_invariant_to_unit_order_and_labels(among):
    base = exposure_from_knn(_panel(), 2, among=among)
    # relabel so that the alphabetical order differs, and shuffle the rows
    new = {"D": "u1", "B": "u6", "Z": "u3", "A": "u0", "C": "u5", "E": "u2", "F": "u4"}
    back = {v: k for k, v in new.items()}
    lon = {new[u]: x for u, x in LON.items()}
    coh = {new[u]: c for u, c in COHORT.items()}
    order = ["u4", "u5", "u0", "u6", "u2", "u3", "u1"]
    other = exposure_from_knn(_panel(lon, coh, {"a_src": SOURCE["S"]}, order), 2, among=among)
    tab = other.table.rename(index=back).loc[base.table.index]
    pd.testing.assert_frame_equal(tab, base.table, check_names=False)
    links = {(back[u], "S" if z == "a_src" else back[z]) for u, z in _links(other)}
    assert links == _links(base)


@pytest.mark.parametrize("bad", ["units", "Panel", None, ["panel"], 1])
def test_bad_among_is_refused_by_name(bad):
    with pytest.raises(GeographyError, match=r"among must be one of 'places', 'panel'"):
        exposure_from_knn(_panel(), 2, among=bad)
    with pytest.raises(GeographyError, match=rf"received {bad!r}".replace("[", r"\[")):
        build_exposure(_panel(), "knn", k=2, among=bad)
