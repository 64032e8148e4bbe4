"""Presentation of results: tables, plots and the report page (never estimation)."""

from .html import write_report
from .plots import default_figures, event_study_plot
from .tables import Table, claims_table, event_study_table, regression_table

__all__ = [
    "Table",
    "claims_table",
    "default_figures",
    "event_study_plot",
    "event_study_table",
    "regression_table",
    "write_report",
]
