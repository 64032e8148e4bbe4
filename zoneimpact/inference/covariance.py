r"""Cluster-robust covariance of linear regression coefficients, one-way and two-way.

One sandwich for every regression estimator (TWFE, the event study, first differences,
ETWFE): with the fixed effects absorbed (Frisch-Waugh-Lovell), the coefficients' covariance
is :math:`B (\sum_g s_g s_g') B` with :math:`B = (\tilde X' W \tilde X)^{-1}` and the cluster
scores :math:`s_g = \sum_{i \in g} w_i \tilde x_i \hat u_i` (Liang & Zeger 1986; Cameron &
Miller 2015, eq. 12), times the CR1 factor :math:`G/(G-1) \cdot (N-1)/(N-K)`.

Two-way clustering follows Cameron, Gelbach & Miller (2011, "Robust inference with
multiway clustering", JBES 29(2), eq. 2.11): :math:`V = V_1 + V_2 - V_{12}`, with
:math:`V_{12}` clustered on the intersection, each meat scaled by the factor of the
smallest number of clusters (fixest's default ``cluster.df = "min"``; pyfixest the same),
and, when the sum is not positive semi-definite, nothing changed (as fixest and pyfixest
by default): the standard error of a term whose variance came out negative is NaN.

Why by hand: statsmodels' ``cov_type="cluster"`` needs the dense design with every fixed
effect as a dummy; linearmodels and pyfixest refit the model. Here the scores of an
existing fit are re-summed, so another clustering costs one pass over the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError

__all__ = ["cluster_scores", "crv1"]


def cluster_scores(X: np.ndarray, wresid: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(G, k) sums of ``X * wresid`` within clusters (``codes`` in ``0..G-1``)."""
    g = int(codes.max()) + 1
    return np.stack([np.bincount(codes, weights=x * wresid, minlength=g) for x in X.T], axis=1)


def crv1(
    X: np.ndarray,
    wresid: np.ndarray,
    bread: np.ndarray,
    clusters: Sequence[np.ndarray],
    *,
    n_params: int,
) -> tuple[np.ndarray, int]:
    """CR1 covariance of the coefficients, clustered one or two ways.

    Parameters
    ----------
    X : array (n, k)
        Regressors after absorbing the fixed effects.
    wresid : array (n,)
        Weighted residuals ``w_i u_i``.
    bread : array (k, k)
        ``(X' W X)^{-1}``.
    clusters : sequence of one or two integer-code arrays (n,)
    n_params : int
        ``K`` of the small-sample factor (coefficients plus the fixed effects counted).

    Returns
    -------
    (vcov, G) : the covariance and the number of clusters its factor used (the smallest).
    """
    if not 1 <= len(clusters) <= 2:
        raise SpecError(f"Cluster one or two ways; received {len(clusters)} dimensions.")
    n = len(wresid)
    sizes = [int(c.max()) + 1 for c in clusters]
    g = min(sizes)
    if g < 2:
        raise EstimationError(
            "Clustered standard errors need at least two clusters in every dimension."
        )
    if n <= n_params:
        raise EstimationError(
            f"No residual degrees of freedom: {n} rows for {n_params} parameters."
        )
    meats = []
    for codes in clusters:
        s = cluster_scores(X, wresid, codes)
        meats.append(s.T @ s)
    if len(clusters) == 2:
        both = pd.factorize(pd.MultiIndex.from_arrays([clusters[0], clusters[1]]))[0]
        s = cluster_scores(X, wresid, both)
        meats.append(-(s.T @ s))
    factor = g / (g - 1) * (n - 1) / (n - n_params)
    return factor * bread @ sum(meats) @ bread, g
