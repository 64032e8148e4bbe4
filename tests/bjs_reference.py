"""An independent, pandas-only reading of BJS (2024) eq. 8 for the tests' hand-built
Theorem 3 variances (the package computes it with integer codes and bincounts)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def eq8_tilde(w, tau, cells, cluster, leave_out: bool = False, scale=None) -> np.ndarray:
    """``tau~`` of every treated row: within its cell, ``sum_c a_c b_c / sum_c a_c^2`` over
    clusters ``c`` (``a_c`` the cluster's weight sum in the cell, ``b_c`` its weighted
    ``tau_hat`` sum), as Stata ``did_imputation``'s cluster-by-cell smart weights; with
    ``leave_out``, without the row's own cluster unless the cell's weight is all in it.
    With ``scale`` the cell's model is ``beta * scale``: the least-squares ``beta`` of
    ``b_c`` on ``a_c = sum w * scale`` (same ratio), times the row's ``scale``."""
    s = np.ones(len(w)) if scale is None else np.asarray(scale, float)
    f = pd.DataFrame(
        {
            "cell": pd.Series(list(cells)).astype(str),
            "cl": np.asarray(cluster),
            "a": np.asarray(w, float) * s,
            "b": np.asarray(w, float) * np.asarray(tau, float),
        }
    )
    per = f.groupby(["cell", "cl"])[["a", "b"]].sum()
    per["ab"], per["aa"] = per["a"] * per["b"], per["a"] ** 2
    cell_tot = per.groupby(level="cell")[["ab", "aa"]].sum()
    cell_tot.columns = ["ab_cell", "aa_cell"]
    rows = f.join(per[["ab", "aa"]], on=["cell", "cl"]).join(cell_tot, on="cell")
    num, den = rows["ab_cell"].to_numpy(), rows["aa_cell"].to_numpy()
    if leave_out:
        rest = den - rows["aa"].to_numpy()
        ok = rest > 1e-8 * den  # the package's LEAVE_OUT_REST
        num = np.where(ok, num - rows["ab"].to_numpy(), num)
        den = np.where(ok, rest, den)
    return s * np.divide(num, den, out=np.zeros(len(f)), where=den != 0)
