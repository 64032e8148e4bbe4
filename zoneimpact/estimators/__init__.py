"""Estimators: one module per estimator, each exposing ``fit(panel, *, outcome, ...)``.

Every ``fit`` takes a validated :class:`~zoneimpact.panel.Panel`, an ``outcome`` column,
keyword options, and (where it draws random numbers) ``rng``, a ``numpy.random.Generator``;
it returns an :class:`~zoneimpact.results.EstimationResult` and never writes files.

``REGISTRY`` maps the names used in run specs to ``module:function`` paths (built from
:data:`zoneimpact.registry.ENTRIES`), imported lazily so that a spec only pays for the
estimators it uses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..errors import SpecError
from ..registry import ENTRIES

#: name -> "module:function" of every registered ``fit`` (from :mod:`zoneimpact.registry`,
#: which also says what reporting, power and the spillover bases need to know about it)
REGISTRY: dict[str, str] = {e.name: e.path for e in ENTRIES}


def get_estimator(name: str) -> Callable[..., Any]:
    """The ``fit`` function registered under ``name``."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise SpecError(f"Unknown estimator {name!r}. Use one of: {', '.join(sorted(REGISTRY))}.")
    module, func = REGISTRY[name].split(":")
    # an import error here is a broken installation, not a user mistake: let it surface
    fit: Callable[..., Any] = getattr(import_module(module), func)
    return fit


#: Arguments that the run layer passes to every ``fit`` itself; a spec may not set them.
RUN_ARGUMENTS = frozenset({"outcome", "rng", "alpha", "n_jobs"})


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise :class:`SpecError` unless every key of ``options`` is a keyword of ``fit``.

    The error lists the estimator's valid option names, so a misspelt option in a spec is
    reported before anything is estimated (instead of a ``TypeError`` from deep inside).
    """
    fit = get_estimator(name)
    params = inspect.signature(fit).parameters
    valid = sorted(
        p.name
        for p in params.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in RUN_ARGUMENTS
        and p.name != "panel"
    )
    reserved = sorted(set(options) & RUN_ARGUMENTS)
    if reserved:
        raise SpecError(
            f"Estimator {name!r}: option(s) {', '.join(reserved)} are set by the run itself "
            "(outcome in the estimate block, alpha and n_jobs in [inference], rng from the "
            "spec's seed); remove them from [estimate.options]."
        )
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    # old spellings of renamed options still work for a release (estimators._options)
    aliases = getattr(fit, "__zoneimpact_aliases__", {})
    unknown = sorted(set(options) - set(valid) - set(aliases))
    if unknown:
        raise SpecError(
            f"Estimator {name!r} has no option(s) {', '.join(repr(u) for u in unknown)}. "
            f"Valid options: {', '.join(valid)}."
        )
