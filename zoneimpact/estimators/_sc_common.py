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

from ..errors import EstimationError, PanelError, SpecError, ZoneImpactError
from ..panel import Panel, _v


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
            f"{estimator} needs a balanced panel: outcome {outcome!r} {what} for unit "
            f"{_v(u)!r} in period {_v(t)!r} ({int(miss.sum())} missing unit-period(s) among "
            "the units and periods used). Drop that unit, restrict the periods, or impute the "
            "value."
        )
    return sub.astype(float)


def never_treated(panel: Panel) -> list[Any]:
    """Never-treated units (the donor pool), in panel order."""
    coh = panel.unit_cohort
    return coh.index[np.isinf(coh.to_numpy())].tolist()


#: Most control units: the weight solvers hold dense (controls x controls) Gram matrices.
MAX_DONORS = 15_000


def check_pool_size(donors: Sequence[Any], estimator: str) -> None:
    """Refuse donor pools whose dense Gram matrix would not fit in memory."""
    if len(donors) > MAX_DONORS:
        gib = len(donors) ** 2 * 8 / 2**30
        raise EstimationError(
            f"{estimator} with {len(donors):,} control units needs dense {len(donors):,} x "
            f"{len(donors):,} matrices ({gib:.1f} GiB each), beyond this implementation's "
            f"limit of {MAX_DONORS:,} controls. Restrict the donor pool (e.g. to the treated "
            "unit's region) or aggregate the units."
        )


def require_donors(donors: Sequence[Any], what: str = "donor") -> None:
    if len(donors) == 0:
        raise EstimationError(
            f"No {what} units: the panel has no never-treated unit to build a synthetic "
            "control from. Add never-treated units (cohort 0/NaN) to the data."
        )


def unit_list(
    panel: Panel, value: Any, name: str, *, error: type[ZoneImpactError] = PanelError
) -> list[Any]:
    """Unit ids from one id or a list of them, each checked to be in the panel (else
    ``error``), none twice (a string is one id, not a list of characters)."""
    seq = isinstance(value, list | tuple | np.ndarray | pd.Index | pd.Series)
    items = list(value) if seq else [value]
    coh = panel.unit_cohort
    out: list[Any] = []
    for u in items:
        try:
            known = u in coh.index
        except TypeError:  # unhashable: a list or dict inside the list
            known = False
        if not known:
            raise error(
                f"{name}: unit {u!r} is not in the panel (column "
                f"{panel.names.get('unit', 'unit')!r}); check its spelling."
            )
        if u in out:
            raise SpecError(f"{name}: unit {u!r} is listed twice.")
        out.append(u)
    return out
