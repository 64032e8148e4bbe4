r"""Delete-one-cluster jackknife covariance (CV3) of any estimator that can be refitted.

With ``G`` clusters and :math:`\hat\theta_{(g)}` the estimate refitted without cluster
``g``, the CV3 covariance of MacKinnon, Nielsen & Webb (2023, "Cluster-robust inference: a
guide to empirical practice", *Journal of Econometrics* 232(2); and "Fast and reliable
jackknife and bootstrap methods for cluster-robust inference", *Journal of Applied
Econometrics* 38(5)) is

.. math:: \hat V_{CV3} = \frac{G-1}{G} \sum_{g=1}^{G}
          (\hat\theta_{(g)} - \hat\theta)(\hat\theta_{(g)} - \hat\theta)' ,

centred at the full-sample estimate (``center="estimate"``, MNW's form, never smaller than
the mean-centred one) or at the mean of the replicates (``center="mean"``, Stata's
``vce(jackknife)`` and R ``sandwich::vcovJK``'s default). Refitting captures what an
analytic influence function linearises away: estimated propensity scores and heavy-tailed
clusters. In linear regression jackknife variances err on the conservative side, except
when deleting a cluster leaves the estimator undefined (Hansen 2025, "Jackknife standard
errors for clustered regression", *Review of Economic Studies*). A term that some deletion
leaves undefined (a cohort whose units all sit in one cluster; Hansen's clusterwise
non-invertibility) has no jackknife variance here: its row and column are NaN rather than a
variance over the other replicates.

Why by hand: the formula is one outer product; what no library offers is the refitting of
this package's estimators, which the callers do
(:meth:`CallawaySantAnnaResult.with_inference`). The synthetic-control family keeps its own
unit jackknifes (mean-centred scalars, as their R peers print them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import SpecError

__all__ = ["cluster_jackknife_vcov"]


def cluster_jackknife_vcov(
    estimate: np.ndarray,
    replicates: np.ndarray,
    *,
    center: Literal["estimate", "mean"] = "estimate",
) -> np.ndarray:
    """CV3 covariance of ``estimate`` (length ``p``) from delete-one-cluster replicates.

    Parameters
    ----------
    estimate : ndarray, shape (p,)
        Full-sample estimates.
    replicates : ndarray, shape (G, p)
        Row ``g``: the estimates refitted without cluster ``g`` (NaN where the deletion
        leaves a term undefined).
    center : {"estimate", "mean"}
        Centre of the deviations (module docstring).

    Returns
    -------
    ndarray, shape (p, p)
        ``(G - 1) / G`` times the sum of outer products of the centred replicates; NaN in
        the rows and columns of terms with a NaN replicate.
    """
    theta = np.asarray(estimate, dtype=float).ravel()
    reps = np.asarray(replicates, dtype=float)
    if reps.ndim != 2 or reps.shape[1] != theta.size:
        raise SpecError(
            f"replicates must be G x {theta.size} (one row per deleted cluster); "
            f"received shape {reps.shape}."
        )
    if center not in ("estimate", "mean"):
        raise SpecError(f"center must be 'estimate' or 'mean'; received {center!r}.")
    g = reps.shape[0]
    if g < 2:
        raise SpecError(f"The jackknife needs at least 2 clusters; received {g}.")
    defined = np.all(np.isfinite(reps), axis=0) & np.isfinite(theta)
    mid = theta if center == "estimate" else np.nanmean(reps, axis=0)
    dev = np.where(defined, reps - mid, 0.0)
    vcov = (g - 1) / g * (dev.T @ dev)
    vcov[~defined, :] = np.nan
    vcov[:, ~defined] = np.nan
    return vcov
