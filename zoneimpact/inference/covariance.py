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

Spatial HAC (Conley 1999, "GMM estimation with cross sectional dependence", J. Econometrics
92(1)): unit scores (summed over each unit's periods, so any serial correlation within a
unit is allowed) are correlated across units with the Bartlett kernel
:math:`K_{ij} = \max(0, 1 - d_{ij}/c)` of their great-circle distance, :math:`V = B (S' K S)
B`; :func:`conley_root` gives :math:`R` with :math:`R'R = K` (negative eigenvalues of the
kernel matrix set to zero, so the covariance is positive semi-definite), used by the
spillover estimator's joint bootstrap and by TWFE's ``with_inference("conley")``.

Why by hand: statsmodels' ``cov_type="cluster"`` needs the dense design with every fixed
effect as a dummy; linearmodels and pyfixest refit the model. Here the scores of an
existing fit are re-summed, so another clustering costs one pass over the rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..geo import haversine_km

__all__ = [
    "CONLEY_KERNELS",
    "MAX_CONLEY_UNITS",
    "cluster_scores",
    "conley_kernel_matrix",
    "conley_root",
    "conley_vcov",
    "crv1",
    "kernel_root",
    "standard_errors_from_variance",
    "warn_negative_variance",
]

#: Conley kernels: uniform (fixest's, the default) and Bartlett (Conley 1999).
CONLEY_KERNELS = ("bartlett", "uniform")
#: Above this many units the dense kernel (units x units) is refused: cluster on regions.
MAX_CONLEY_UNITS = 5000


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


def standard_errors_from_variance(
    var: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    two_way: bool,
    stacklevel: int = 1,
) -> np.ndarray:
    """Standard errors ``sqrt(var)`` of variances, with the rule for negative ones.

    Every estimator here that clusters two ways (Sun-Abraham, imputation, TWFE and the
    Callaway-Sant'Anna family) takes its standard errors from this function, so a
    negative variance is treated, and reported, the same way in each.

    Parameters
    ----------
    var : array
        Variances (a covariance's diagonal); NaN stays NaN.
    names : sequence of str, optional
        The terms, in ``var`` order. Given, a two-way variance that is negative is named
        in one warning (:func:`warn_negative_variance`); None: no warning (the caller
        warns, e.g. the CS family, which leaves out terms NaN by construction).
    two_way : bool
        Whether ``var`` is Cameron, Gelbach & Miller's two-way ``V_1 + V_2 - V_12``.
    stacklevel : int
        Of the warning, counted from the caller of this function (1: the caller's line).

    Returns
    -------
    numpy.ndarray
        ``sqrt(var)`` where ``var >= 0``. Where ``var < 0``: 0 for one-way (or no)
        clustering, whose variances are sums of squares, so a negative value is rounding
        of a zero variance; NaN for two-way clustering.

    Notes
    -----
    Why NaN: Cameron, Gelbach & Miller's (2011, "Robust inference with multiway
    clustering", JBES 29(2)) ``V_1 + V_2 - V_12`` need not be positive semi-definite, so
    a negative two-way variance is not rounding but a property of the sample, and no SE
    is estimated for that term. R fixest and pyfixest (which by default change nothing
    in the sum; see the module docstring) and our CS family report NaN, rather than a
    zero SE with a zero-width interval (clipping) or the square root of a negative
    number. As before in each estimator, the comparison is with 0 exactly (no tolerance
    for round-off), so the standard errors are those each estimator gave before.
    """
    var = np.asarray(var, dtype=float)
    if not two_way:
        out: np.ndarray = np.sqrt(np.clip(var, 0, None))
        return out
    with np.errstate(invalid="ignore"):
        out = np.sqrt(np.where(var >= 0, var, np.nan))
    if names is not None:
        warn_negative_variance(names, var, stacklevel=stacklevel + 1)
    return out


def warn_negative_variance(names: Sequence[str], var: np.ndarray, *, stacklevel: int) -> None:
    """Warn, naming the terms, where a two-way clustered variance is negative (their SE is
    NaN, see :func:`standard_errors_from_variance`); ``stacklevel`` counts from the caller
    of this function. One warning per call, whatever the number of terms."""
    var = np.asarray(var, dtype=float)
    neg = [str(nm) for nm, v in zip(names, var, strict=True) if v < 0]
    if neg:
        warnings.warn(
            f"The two-way clustered variance V_1 + V_2 - V_12 (Cameron, Gelbach & Miller "
            f"2011) is negative for {len(neg)} term(s) ({', '.join(neg[:5])}"
            f"{' ...' if len(neg) > 5 else ''}): their SE and interval are NaN. Cluster on "
            "one dimension (the coarser) for a positive variance.",
            stacklevel=stacklevel + 1,
        )


def conley_kernel_matrix(
    lat: np.ndarray, lon: np.ndarray, cutoff_km: float, kernel: str = "uniform"
) -> np.ndarray:
    """The kernel ``K`` of the great-circle distances ``d_ij`` between the points: uniform
    ``1{d_ij <= cutoff_km}`` (the default, as R fixest's ``vcov_conley``) or Bartlett
    ``max(0, 1 - d_ij / cutoff_km)`` (Conley 1999). In zoneimpact's referee Monte Carlo
    with regional shocks the Bartlett weights, below one for most pairs of a region, left
    the SEs 10-30% short where the uniform kernel's were about right
    (``benchmarks/RESULTS.md``, session 18)."""
    if isinstance(cutoff_km, bool) or not (
        isinstance(cutoff_km, int | float | np.floating)
        and np.isfinite(cutoff_km)
        and cutoff_km > 0
    ):
        raise SpecError(f"conley_km must be a positive distance in km; received {cutoff_km!r}.")
    if kernel not in CONLEY_KERNELS:
        raise SpecError(
            f"conley_kernel must be one of {', '.join(map(repr, CONLEY_KERNELS))}; "
            f"received {kernel!r}."
        )
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    if len(lat) > MAX_CONLEY_UNITS:
        raise SpecError(
            f"Conley SEs form a {len(lat)} x {len(lat)} kernel; above {MAX_CONLEY_UNITS:,} units "
            "cluster on regions instead (cluster='region')."
        )
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise SpecError("Conley SEs need finite lat and lon for every unit.")
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    if kernel == "uniform":
        return (d <= float(cutoff_km)).astype(float)
    out: np.ndarray = np.clip(1.0 - d / float(cutoff_km), 0.0, None)
    return out


def conley_root(
    lat: np.ndarray, lon: np.ndarray, cutoff_km: float, kernel: str = "uniform"
) -> np.ndarray:
    """``R`` with ``R'R = K`` (:func:`conley_kernel_matrix`), so that ``(R S)'(R S) = S' K
    S``. Negative eigenvalues of ``K`` (neither kernel is always positive semi-definite in
    two dimensions) are set to zero."""
    return kernel_root(conley_kernel_matrix(lat, lon, cutoff_km, kernel))


def kernel_root(K: np.ndarray) -> np.ndarray:
    """``R`` with ``R'R`` the positive part of the symmetric kernel ``K`` (its negative
    eigenvalues set to zero)."""
    lam, Q = np.linalg.eigh(K)
    root: np.ndarray = np.sqrt(np.clip(lam, 0.0, None))[:, None] * Q.T
    return root


def conley_vcov(
    X: np.ndarray,
    wresid: np.ndarray,
    bread: np.ndarray,
    unit_codes: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    cutoff_km: float,
    kernel: str = "uniform",
) -> np.ndarray:
    """Conley spatial-HAC covariance ``B (S' K S) B`` of regression coefficients, with
    ``S`` the unit scores (``unit_codes`` in ``0..N-1``, ``lat``/``lon`` in code order) and
    ``K`` the ``kernel`` of :func:`conley_root`."""
    S = conley_root(lat, lon, cutoff_km, kernel) @ cluster_scores(X, wresid, unit_codes)
    out: np.ndarray = bread @ (S.T @ S) @ bread
    return out


# below this many treated clusters, cluster-robust t tests over-reject badly (MacKinnon &
# Webb 2017, "Wild bootstrap inference for wildly different cluster sizes", JAE 32(2))
FEW_TREATED_CLUSTERS = 10


def warn_few_treated(n_treated: int, what: str, *, stacklevel: int) -> None:
    """Warn when fewer than ``FEW_TREATED_CLUSTERS`` clusters (or units) carry the
    treatment: their own residuals nearly vanish from a cluster-robust sandwich or an
    influence-function variance, so the SE is far too small (one treated unit of iid
    N(0, 1) outcomes: first differences' SE 0.19 against a true SD of 1.50, coverage 17%;
    triple differences' 0.54 against 1.62, 43%; a breaker's Monte Carlo, session 21)."""
    if n_treated < FEW_TREATED_CLUSTERS:
        warnings.warn(
            f"The treatment is carried by only {n_treated} {what}: cluster-robust and "
            "influence-function SEs are then far too small and their t tests over-reject "
            "(MacKinnon & Webb 2017). Read the intervals with caution; randomisation "
            "inference over the treated units, or synthetic control, suits so few.",
            stacklevel=stacklevel + 1,
        )
