"""One option vocabulary across estimators, with the old spellings accepted for a release.

``renamed(old="new")`` decorates a ``fit`` whose option was renamed: a call (or a spec) with
the old name gets a :class:`DeprecationWarning` naming the new one and runs as if the new
name had been used; passing both is an error. :func:`zoneimpact.estimators.check_options`
reads the aliases, so specs with the old names keep working. The vocabulary is the table in
``docs/options.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import SpecError

F = TypeVar("F", bound=Callable[..., Any])


def renamed(**aliases: str) -> Callable[[F], F]:
    """Accept ``old=`` for each ``old="new"`` pair, with a deprecation warning."""

    def deco(fit: F) -> F:
        @functools.wraps(fit)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in aliases.items():
                if old in kwargs:
                    if new in kwargs:
                        raise SpecError(
                            f"Options {old!r} and {new!r} are the same option ({old!r} is "
                            f"its old name); pass only {new!r}."
                        )
                    warnings.warn(
                        f"Option {old!r} is now called {new!r}; the old name will stop "
                        "working in the next release.",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return fit(*args, **kwargs)

        wrapper.__zoneimpact_aliases__ = dict(aliases)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco
