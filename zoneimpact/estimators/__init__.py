"""Estimators: one module per estimator, each exposing ``fit(panel, *, outcome, ...)``.

Every ``fit`` takes a validated :class:`~zoneimpact.panel.Panel`, an ``outcome`` column,
keyword options, and (where it draws random numbers) ``rng``, a ``numpy.random.Generator``;
it returns an :class:`~zoneimpact.results.EstimationResult` and never writes files.

``REGISTRY`` maps the names used in run specs to ``module:function`` paths, imported lazily
so that a spec only pays for the estimators it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..errors import SpecError

REGISTRY: dict[str, str] = {
    "twfe": "zoneimpact.estimators.twfe:fit",
    "ppml": "zoneimpact.estimators.ppml:fit",
    "event_study": "zoneimpact.estimators.twfe:fit_event_study",
    "callaway_santanna": "zoneimpact.estimators.callaway_santanna:fit",
    "sun_abraham": "zoneimpact.estimators.sun_abraham:fit",
    "imputation": "zoneimpact.estimators.imputation:fit",
    "bacon": "zoneimpact.estimators.bacon:fit",
    "synthetic_control": "zoneimpact.estimators.synthetic_control:fit",
    "synthetic_did": "zoneimpact.estimators.synthetic_did:fit",
    "augmented_sc": "zoneimpact.estimators.augmented_sc:fit",
    "spillover": "zoneimpact.estimators.spillover:fit",
}


def get_estimator(name: str) -> Callable[..., Any]:
    """The ``fit`` function registered under ``name``."""
    if name not in REGISTRY:
        raise SpecError(f"Unknown estimator {name!r}. Use one of: {', '.join(sorted(REGISTRY))}.")
    module, func = REGISTRY[name].split(":")
    try:
        return getattr(import_module(module), func)
    except (ImportError, AttributeError) as exc:  # a registered module not built yet
        raise SpecError(f"Estimator {name!r} is not available: {exc}") from exc
