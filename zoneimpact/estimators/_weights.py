"""Observation weights for the regression and DiD estimators (private helper).

A ``weights`` option names a column of the panel (declared among its covariates or
outcomes) holding analytic or sampling weights, as R ``did``'s ``weightsname`` and
pyfixest's ``weights=`` do. Point estimates are weighted least squares / weighted means;
standard errors are the clustered sandwich of the weighted scores (pyfixest's
``aweights``), so the number of observations, not the sum of weights, enters the
small-sample factors. Multiplying every weight by a constant changes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..panel import RESERVED, Panel, _v

__all__ = ["check_weight_name", "weight_values", "unit_weights"]


def check_weight_name(panel: Panel, weights: object) -> str | None:
    """The weight column's name (``None``: unweighted), or a :class:`SpecError`."""
    if weights is None:
        return None
    if not isinstance(weights, str) or weights not in panel.data.columns or weights in RESERVED:
        raise SpecError(
            f"Weight column {weights!r} is not in the panel; declare it with "
            "Panel.from_frame(..., covariates=[...]). Available: "
            f"{[c for c in panel.data.columns if c not in RESERVED]}."
        )
    return weights


def weight_values(data: pd.DataFrame, weights: str) -> np.ndarray:
    """Weights of the rows of ``data`` as floats; an error names the first bad row."""
    w = data[weights].to_numpy(dtype=float)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EstimationError(
            f"Weight column {weights!r} must be positive and finite; unit "
            f"{_v(data['unit'].iloc[i])!r}, period {_v(data['time'].iloc[i])!r} has "
            f"{_v(data[weights].iloc[i])!r}. Drop those rows or fix the weights."
        )
    return w


def unit_weights(data: pd.DataFrame, weights: str, units: np.ndarray) -> np.ndarray:
    """One weight per unit (in the order of ``units``); the weight must not vary within a
    unit (R ``did`` requires time-invariant weights with panel data).
    """
    w = weight_values(data, weights)
    frame = pd.DataFrame({"unit": data["unit"].to_numpy(), "w": w})
    spread = frame.groupby("unit")["w"].agg(["min", "max"])
    varies = spread["max"] - spread["min"] > 1e-12 * spread["max"].abs()
    if varies.any():
        u = spread.index[varies.to_numpy()][0]
        raise EstimationError(
            f"Weight column {weights!r} varies within unit {_v(u)!r} (from "
            f"{_v(spread.loc[u, 'min'])!r} to {_v(spread.loc[u, 'max'])!r}); panel estimators need one "
            "weight per unit (e.g. the base-year population)."
        )
    return spread["max"].reindex(units).to_numpy(dtype=float)
