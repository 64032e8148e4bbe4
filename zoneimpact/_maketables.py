"""Route zoneimpact results to their maketables plug-in hooks.

Results implement the maketables plug-in format (``__maketables_coef_table__``,
``__maketables_stat__``, ``__maketables_depvar__``, ``__maketables_var_labels__``,
``__maketables_fixef_string__``, ``__maketables_vcov_info__``, default stat keys and
labels; see :class:`zoneimpact.results.EstimationResult`). maketables 0.2 consults its
registered extractors before the plug-in format, and its statsmodels extractor claims any
object with ``params``, ``bse`` and ``pvalues`` — which zoneimpact results have, with
statsmodels' names — so ``ETable`` would read them as statsmodels models (outcome "y",
``event:0`` split as an interaction, R² rows). :func:`register` puts an extractor for
zoneimpact results first, so they are read through their own hooks, as pyfixest models
are through pyfixest's. :mod:`zoneimpact.results` calls :func:`install` on import: it registers at
once when maketables is already imported, else when maketables is first imported (an
import hook; maketables is optional and heavy, so it is never imported for this).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["install", "register"]

_REGISTERED = False
_TARGET = "maketables.extractors"
#: the result class the extractor claims (given by zoneimpact.results, which imports this
#: module: importing it back here would close a cycle)
_RESULT_TYPE: type | None = None


def register(extractors: ModuleType | None = None) -> bool:
    """Make ``maketables.ETable`` read zoneimpact results through their plug-in hooks.

    Idempotent. Returns False when maketables is not installed (nothing to do).
    """
    global _REGISTERED
    if _REGISTERED:
        return True
    if extractors is None:
        try:
            import maketables.extractors
        except ImportError:
            return False
        extractors = maketables.extractors
    if _RESULT_TYPE is None:
        return False
    result_type: type = _RESULT_TYPE
    base: Any = extractors.PluginExtractor

    class ZoneImpactExtractor(base):
        """The plug-in extractor, for zoneimpact results only."""

        def can_handle(self, model: Any) -> bool:
            return isinstance(model, result_type)

    registry = getattr(extractors, "_EXTRACTOR_REGISTRY", None)
    if isinstance(registry, list):
        registry.insert(0, ZoneImpactExtractor())
    else:  # a future maketables without the list: the public call (appends)
        extractors.register_extractor(ZoneImpactExtractor())
    _REGISTERED = True
    return True


class _AfterImport(importlib.abc.MetaPathFinder):
    """Registers once ``maketables.extractors`` has been executed (its own extractors are
    registered at the end of that module, so ours goes in front of them)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one use; also keeps the lookup below from recursing
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return None
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            register(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install(result_type: type) -> None:
    """Register now if maketables is imported, else when it is (no import of it here)."""
    global _RESULT_TYPE
    _RESULT_TYPE = result_type
    if _TARGET in sys.modules:
        register(sys.modules[_TARGET])
    elif not _REGISTERED and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
