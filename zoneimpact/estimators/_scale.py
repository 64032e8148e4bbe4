"""Scale-equivariant estimation for numerically extreme outcomes.

Every estimator is equivariant in the outcome's scale: multiplying the outcome by ``c``
multiplies effects and standard errors by ``c`` (weights, shares, semi-elasticities and
p-values do not change). In floating point this fails at the extremes: squares of
outcomes near 1e300 overflow (SEs become inf or NaN, SC weights go wrong) and those of
outcomes near 1e-300 underflow (PPML, SDID regularisation). :func:`scale_equivariant`
wraps an estimator's ``fit``: when the largest absolute outcome lies outside
``[2^-64, 2^64]`` it divides the outcome by the power of two nearest to that value
(exact in binary floating point), estimates, and returns ``result.rescaled(c)``. Outcomes
inside the range are passed through untouched, so ordinary data give bit-identical
results. Written by hand: this is a property of our result objects, not something a
library provides.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from ..panel import RESERVED, Panel
from ..results import EstimationResult

_LOW, _HIGH = 2.0**-64, 2.0**64

F = TypeVar("F", bound=Callable[..., EstimationResult])
R = TypeVar("R", bound=EstimationResult)


def outcome_scale(y: np.ndarray) -> float:
    """The power of two to divide ``y`` by (1.0 when ``y`` is in the safe range)."""
    a = np.abs(np.asarray(y, dtype=float))
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 1.0
    m = float(a.max())
    if m == 0.0 or _LOW <= m <= _HIGH:
        return 1.0
    # 2^1024 overflows: outcomes near the float maximum are halved at most 2^1023 times
    return float(np.ldexp(1.0, min(int(np.frexp(m)[1]), 1023)))


def unit_scale(x: np.ndarray) -> float:
    """The power of two that brings the largest ``|x|`` into ``[0.5, 1)`` (1.0 when ``x``
    has no non-zero finite value).

    The Poisson QMLE's coefficients and sandwich do not change when the outcome or the
    weights are multiplied by a constant, but its convergence tests do: fixest's
    ``|dev - dev_old| / (0.1 + |dev|)`` here and statsmodels' ``|dev - dev_old| <= tol``
    in :func:`.etwfe.fit` (both fit on this scale) are absolute for a small deviance, which stopped IRLS early on
    y x 2^-56 (PPML 0.6417 for 0.6400, ETWFE Poisson ATT 0.706 for 1.538;
    ``tests/test_scale_inference_more.py``) or weights x 2^-56, and the sums overflow or
    underflow for weights near the float limits (weights x 1e300 were refused as not
    finite, x 1e-300 gave an SE of 0).
    Dividing by a power of two is exact, so the data are fitted on this unit scale.
    """
    a = np.abs(np.asarray(x, dtype=float))
    a = a[np.isfinite(a) & (a > 0)]
    if a.size == 0:
        return 1.0
    # 2^1024 overflows: values near the float maximum are halved at most 2^1023 times
    return float(np.ldexp(1.0, min(int(np.frexp(a.max())[1]), 1023)))


def midrange(y: np.ndarray) -> float:
    """The midrange of ``y``'s finite values (0.0 when there are none), to centre an
    outcome on before a least-squares step whose fixed effects absorb a constant: solved
    at the outcome's level, the normal equations lose digits to a large offset. Halves
    are added, so the midrange of values near the float maximum does not overflow."""
    a = np.asarray(y, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.max() / 2 + a.min() / 2) if a.size else 0.0


def rescale_result(res: R, c: float, *, scales: bool = True) -> R:
    """The result of a fit on the outcome divided by ``c`` (:func:`outcome_scale`), in
    the outcome's units (``res.rescaled(c)``; ``scales=False`` for scale-free results)
    with ``info["outcome_rescaled_by"]``; ``res`` itself when ``c`` is 1."""
    if c == 1.0:
        return res
    out = res.rescaled(c) if scales else res
    return replace(out, info={**out.info, "outcome_rescaled_by": c})


def normalised_weights(w: np.ndarray) -> np.ndarray:
    """``w`` divided by :func:`outcome_scale` (a power of two) when its largest value lies
    outside ``[2^-64, 2^64]``, else ``w`` itself.

    WLS and its CR1 sandwich do not change when every weight is multiplied by a constant,
    but in floating point the squared weighted scores underflow or overflow for weights
    near the float limits (weights x 1e-300 gave a TWFE SE of 0, x 1e300 one of inf). A
    power of two divides exactly, and ordinary weights are left as they are.
    """
    return w / outcome_scale(w)


def scale_equivariant(
    *, result_scales: bool = True, scaled_options: dict[str, int] | None = None
) -> Callable[[F], F]:
    """Decorate an estimator's ``fit(panel, *, outcome, ...)`` (see the module docstring).

    Parameters
    ----------
    result_scales : bool
        False for estimators whose reported numbers are all scale-free (PPML's
        coefficients are semi-elasticities): the outcome is rescaled, the result is not.
    scaled_options : dict of str to int, optional
        Options given in the outcome's units, with the power of those units (SDID's
        ``zeta_omega``: 1, ASC's ridge ``lambda_``: 2): divided by ``c`` to that power
        along with the outcome, so a given value means the same on either scale (left
        as they were, a user's ``zeta_omega`` moved SDID on Prop 99 x 1e18 from -16.54
        to -19.77; a breaker's check, session 20).
    """

    def deco(fit: F) -> F:
        @functools.wraps(fit)
        def wrapper(panel: Panel, *args: Any, outcome: str, **kwargs: Any) -> EstimationResult:
            data = getattr(panel, "data", None)
            if data is None or outcome in RESERVED or outcome not in data.columns:
                return fit(panel, *args, outcome=outcome, **kwargs)
            y = data[outcome].to_numpy(dtype=float)
            c = outcome_scale(y)
            if c == 1.0:
                return fit(panel, *args, outcome=outcome, **kwargs)
            for name, power in (scaled_options or {}).items():
                value = kwargs.get(name)
                if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
                    kwargs[name] = value / c**power
            rescaled = panel.with_outcome(outcome, y / c, overwrite=True)
            res = fit(rescaled, *args, outcome=outcome, **kwargs)
            return rescale_result(res, c, scales=result_scales)

        return wrapper  # type: ignore[return-value]

    return deco
