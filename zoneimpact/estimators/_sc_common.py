"""Data preparation shared by the synthetic-control family (SC, SDID, augmented SC).

Synthetic-control estimators need a balanced block of outcomes: every unit observed in
every period used. :func:`outcome_matrix` builds it from a :class:`~zoneimpact.panel.Panel`
and reports the first missing unit-period by name, with the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EstimationError, PanelError
from ..panel import Panel


def outcome_matrix(
    panel: Panel,
    outcome: str,
    units: Sequence[Any] | np.ndarray | None = None,
    periods: Sequence[Any] | np.ndarray | None = None,
    *,
    estimator: str = "synthetic control",
) -> pd.DataFrame:
    """Units x periods outcome table, checked to be complete.

    Raises
    ------
    PanelError
        If a unit-period is absent or its outcome is NaN, naming the unit and period.
    """
    wide = panel.wide(outcome)
    units = list(wide.index) if units is None else list(units)
    periods = list(wide.columns) if periods is None else list(periods)
    sub = wide.reindex(index=units, columns=periods)
    miss = sub.isna().to_numpy()
    if miss.any():
        i, j = np.argwhere(miss)[0]
        u, t = sub.index[i], sub.columns[j]
        absent = u not in wide.index or t not in wide.columns or pd.isna(wide.loc[u, t])
        what = "is missing" if absent else "is NaN"
        raise PanelError(
            f"{estimator} needs a balanced panel: outcome {outcome!r} {what} for unit {u!r} "
            f"in period {t!r} ({int(miss.sum())} missing unit-period(s) among the units and "
            "periods used). Drop that unit, restrict the periods, or impute the value."
        )
    return sub.astype(float)


def never_treated(panel: Panel) -> list[Any]:
    """Never-treated units (the donor pool), in panel order."""
    coh = panel.unit_cohort
    return coh.index[np.isinf(coh.to_numpy())].tolist()


def require_donors(donors: Sequence[Any], what: str = "donor") -> None:
    if len(donors) == 0:
        raise EstimationError(
            f"No {what} units: the panel has no never-treated unit to build a synthetic "
            "control from. Add never-treated units (cohort 0/NaN) to the data."
        )
