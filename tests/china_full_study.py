"""The full China study panel, built once per test process for the China quality, balance
and map tests (which skip via ``conftest.require_data`` when the shared files are absent).

Not a test module: imported by ``test_china_quality.py``, ``test_china_balance.py`` and
``test_china_maps.py``. The estimation panel is built as ``specs/china.toml`` builds it
(``Panel.from_frame(..., outside_window="adjust")`` with the full adjacency, so the 63
early zones are exposure sources).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from conftest import SHARED_DATA

from zoneimpact import Panel


@lru_cache(maxsize=1)
def study() -> tuple[Any, Any, Any, Panel]:
    """(city panel, study frame, adjacency, estimation panel) of the shared data."""
    from zoneimpact.china import build_city_panel, build_study_panel

    cp = build_city_panel(SHARED_DATA)
    frame, geo, adj, _ = build_study_panel(SHARED_DATA)
    panel = Panel.from_frame(
        frame,
        unit="city_code",
        time="year",
        cohort="cohort_any",
        outcomes=["fdi"],
        outside_window="adjust",
        geography=geo,
        adjacency=adj[["unit", "neighbour"]],
    )
    return cp, frame, adj, panel
