"""What the rest of the house needs to know about each estimator, in one table.

Every estimator is one module with a ``fit`` function; its entry here says where ``fit``
lives and what the layers that do not import estimators need to know about it: the display
name papers use (tables, figures, the report), what its pre-period coefficients measure
(a note on event-study overlays, Roth 2024), which cells its headline weights (the
report's narrative), the options a power simulation sets to stay fast, and whether the
spillover estimator can use it as its base. Adding an estimator is its module, one entry
here and its tests (``docs/DEVELOPING.md``).

The table is plain data in the core layer: it names modules as strings and imports
nothing, so reporting can read it without importing an estimator (``estimators.
get_estimator`` does the lazy import).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ENTRIES", "EstimatorEntry", "entry", "names"]

_FIXED_REF = "regression: every period against E = -1 (fixed reference)"


@dataclass(frozen=True)
class EstimatorEntry:
    """One registered estimator.

    Parameters
    ----------
    name : str
        The name specs and results use (``[estimate] estimator = "..."``).
    path : str
        ``"module:function"`` of its ``fit``.
    display : str
        Display name in tables, figures and the report.
    pre_periods : str, optional
        What its pre-period event-time coefficients measure (None: it reports none).
    weighting : str, optional
        One clause on what its headline weights the treated cells by.
    power_options : Mapping
        Options a power simulation sets by default (e.g. no bootstrap: the analytic SE is
        what the power formula needs, and thousands of refits must stay fast).
    spillover_base : bool
        Whether ``spillover.fit(base_estimator=name)`` can use it for its pieces.
    """

    name: str
    path: str
    display: str
    pre_periods: str | None = None
    weighting: str | None = None
    power_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    spillover_base: bool = False


def _e(name: str, module: str, display: str, **kw: Any) -> EstimatorEntry:
    func = kw.pop("func", "fit")
    if "power_options" in kw:
        kw["power_options"] = MappingProxyType(dict(kw["power_options"]))
    return EstimatorEntry(name, f"zoneimpact.estimators.{module}:{func}", display, **kw)


ENTRIES: tuple[EstimatorEntry, ...] = (
    _e(
        "twfe",
        "twfe",
        "TWFE",
        pre_periods=_FIXED_REF,
        weighting="variance weights over all 2x2 comparisons, including already-treated "
        "units as controls (Goodman-Bacon 2021)",
    ),
    _e("ppml", "ppml", "PPML"),
    _e(
        "event_study",
        "twfe",
        "TWFE event study",
        func="fit_event_study",
        pre_periods=_FIXED_REF,
        weighting="the average of its post-treatment event-time coefficients",
    ),
    _e(
        "callaway_santanna",
        "callaway_santanna",
        "Callaway–Sant'Anna",
        pre_periods="pre-periods: change from the period before (varying base)",
        weighting="cohort-size weights over group-time cells with clean controls "
        "(Callaway & Sant'Anna 2021)",
        power_options={"bootstrap": False},
        spillover_base=True,
    ),
    _e(
        "sun_abraham",
        "sun_abraham",
        "Sun–Abraham",
        pre_periods=_FIXED_REF,
        weighting="cohort shares within each event time (Sun & Abraham 2021)",
    ),
    _e(
        "imputation",
        "imputation",
        "Imputation (BJS)",
        pre_periods="pre-periods: placebo coefficients on untreated observations",
        weighting="equal weight on every treated observation, so long horizons with larger "
        "effects weigh more (Borusyak, Jaravel & Spiess 2024)",
        spillover_base=True,
    ),
    _e("bacon", "bacon", "Goodman-Bacon"),
    _e("synthetic_control", "synthetic_control", "Synthetic control"),
    _e("synthetic_did", "synthetic_did", "Synthetic DiD"),
    _e("augmented_sc", "augmented_sc", "Augmented SC"),
    _e(
        "spillover",
        "spillover",
        "Spillover DiD",
        pre_periods="pre-periods: placebo coefficients on untreated observations",
        weighting="zones against clean controls (units no zone reaches and, by default "
        "(controls='not_yet_exposed'), exposed units before their exposure), with exposed "
        "neighbours estimated separately (Butts 2021)",
    ),
    _e("ife", "ife", "Interactive FE"),
    _e("matrix_completion", "matrix_completion", "Matrix completion"),
    _e("first_difference", "first_difference", "First differences"),
    _e(
        "first_difference_event_study",
        "first_difference",
        "First-difference event study",
        func="fit_event_study",
        pre_periods=_FIXED_REF,
        weighting="the average of its post-treatment event-time coefficients",
    ),
    _e("etwfe", "etwfe", "Extended TWFE (Wooldridge)"),
    _e("cs_repeated_cross_section", "cs_repeated_cross_section", "Callaway–Sant'Anna (RCS)"),
    _e(
        "chaisemartin",
        "chaisemartin",
        "de Chaisemartin–D'Haultfœuille",
        weighting="the switchers' effects in the first periods after the switch (event time "
        "0 only by default, effects = 1), weighted by the number of switchers at each "
        "horizon (de Chaisemartin & D'Haultfœuille 2024)",
    ),
    _e("continuous_did", "continuous_did", "Continuous DiD"),
    _e("triple_difference", "triple_difference", "Triple differences"),
)

_BY_NAME: Mapping[str, EstimatorEntry] = MappingProxyType({e.name: e for e in ENTRIES})


def names() -> list[str]:
    """Registered estimator names, in registry order."""
    return list(_BY_NAME)


def entry(name: str) -> EstimatorEntry | None:
    """The entry registered under ``name`` (None when there is none)."""
    return _BY_NAME.get(name) if isinstance(name, str) else None
