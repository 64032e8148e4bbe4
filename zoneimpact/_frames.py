"""Data frames from other libraries (polars, pyarrow, ...) as the pandas frames the package uses.

zoneimpact computes on pandas/numpy. A polars ``DataFrame`` (or ``LazyFrame``, collected),
a pyarrow ``Table`` or any eager frame that narwhals reads is converted once at the door
(:meth:`zoneimpact.panel.Panel.from_frame`), so the caller's own frame is never modified.
narwhals is used when installed (it knows every backend's conversion); without it the
frame's own ``to_pandas()`` is used. Conversion keeps column names and dtypes as the
backend maps them (polars -> pandas goes through Arrow, which needs pyarrow).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .errors import PanelError

__all__ = ["as_pandas"]


def as_pandas(frame: Any) -> pd.DataFrame:
    """``frame`` as a pandas DataFrame (the same object when it already is one).

    Parameters
    ----------
    frame : pandas.DataFrame, polars.DataFrame or LazyFrame, pyarrow.Table, or any eager
        frame narwhals supports.

    Raises
    ------
    PanelError
        For anything else (named, with the types accepted), or when the conversion needs a
        package that is not installed (pyarrow for polars).
    """
    if isinstance(frame, pd.DataFrame):
        return frame
    kind = f"{type(frame).__module__.split('.')[0]}.{type(frame).__name__}"
    if hasattr(frame, "collect") and type(frame).__name__ == "LazyFrame":
        frame = frame.collect()  # a polars query: run it, then convert the result
    try:
        try:
            import narwhals as nw

            have_narwhals = True
        except ImportError:
            have_narwhals = False
        if have_narwhals:
            try:
                native = nw.from_native(frame, eager_only=True)
            except TypeError:
                native = None
            if native is not None:
                out = native.to_pandas()
                if isinstance(out, pd.DataFrame):
                    return out
        to_pandas = getattr(frame, "to_pandas", None)
        if callable(to_pandas):
            out = to_pandas()
            if isinstance(out, pd.DataFrame):
                return out
    except ImportError as exc:
        raise PanelError(
            f"Converting the {kind} to pandas needs an optional package: {exc}. Install it "
            "(pip install pyarrow) or pass a pandas DataFrame."
        ) from None
    raise PanelError(
        f"Expected a pandas or polars DataFrame (or a pyarrow Table or another frame that "
        f"narwhals reads); received {kind}. Convert it with pandas.DataFrame(...) first."
    )
