r"""Wild cluster restricted (WCR) bootstrap for one coefficient of a linear model with
absorbed fixed effects.

With few clusters (a handful of provinces, the regions of a zone programme) cluster-robust
t-tests over-reject; the wild cluster bootstrap with the null imposed (Cameron, Gelbach &
Miller 2008, "Bootstrap-based improvements for inference with clustered errors", REStat
90(3); MacKinnon, Nielsen & Webb 2023, "Cluster-robust inference: a guide to empirical
practice", J. Econometrics 232(2)) is the field's remedy. This module implements the
"WCR11" bootstrap-t of Roodman, MacKinnon, Nielsen & Webb (2019, "Fast and wild", Stata
Journal 19(1), section 3): CRV1 in the statistic and in every draw, Rademacher or Webb
(2013) six-point weights, full enumeration of the :math:`2^G` Rademacher sign vectors when
that is no more than the draws asked for (the p-value is then exact and seed-free), and
confidence intervals by test inversion.

The algebra (for the restriction :math:`R'\beta = r`, fixed effects :math:`D` partialled
out, :math:`\tilde X = M_D X`): the restricted residuals :math:`\tilde u` give cluster
scores :math:`S_g = \tilde X_g'\tilde u_g`, so a draw :math:`v` moves the estimate by
:math:`(\tilde X'\tilde X)^{-1} \sum_g S_g v_g` and the numerator of :math:`t^*` is
:math:`C v` with :math:`C_g = R'(\tilde X'\tilde X)^{-1} S_g`. The draw's CRV1 scores are

.. math:: \tilde X_g'\hat u^*_g = S_g v_g - \sum_h K_{gh} v_h
          - \tilde X_g'\tilde X_g (\tilde X'\tilde X)^{-1} \sum_h S_h v_h ,

where :math:`K_{gh} = \tilde X_g' (P_D \tilde u^{(h)})_g` and :math:`\tilde u^{(h)}` is
:math:`\tilde u` kept on cluster ``h`` only: re-estimating the fixed effects in every draw is
what that term carries (it vanishes when the fixed effects are nested in the clusters). So
the :math:`B` statistics are one :math:`G \times G` by :math:`G \times B` product, whatever
the number of observations, and the fixed effects are absorbed :math:`G + k + 1` times in
all.

Why by hand: the maintained peers (R ``fwildclusterboot``, Stata ``boottest``) are not
Python; the Python port ``wildboottest`` takes a dense design (fixed effects as dummies),
draws with its own generator and needs numba. It is used as the reference in
``benchmarks/reference/wild_cluster_reference.py``: with full enumeration the p-values
must agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize

from ..errors import EstimationError, SpecError
from ..estimators._fe import cluster_ssc_k, demean, factorize
from ..parallel import as_generator

#: Webb (2013) six-point weights: mean 0, variance 1, six values, for very few clusters
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])

Weights = Literal["rademacher", "webb"]


@dataclass(frozen=True)
class WildClusterTest:
    """One WCR bootstrap test of ``R'beta = null``.

    Attributes
    ----------
    estimate, se : float
        The coefficient and its CRV1 standard error (fixest's small-sample factor
        ``(N-1)/(N-K) * G/(G-1)`` with ``K`` counting the absorbed fixed effects).
    t_stat : float
        ``(estimate - null) / se``.
    p_value : float
        Share of bootstrap statistics with ``|t*| >= |t|`` (symmetric two-sided test).
        The statistic uses fixest's small-sample factor; the p-value does not depend on
        it (the same factor scales every draw).
    n_boot : int
        Draws used (``2**G`` under full enumeration).
    enumerated : bool
        True when every Rademacher sign vector was used (the p-value is exact).
    n_clusters : int
    weights : str
    """

    estimate: float
    se: float
    t_stat: float
    p_value: float
    n_boot: int
    enumerated: bool
    n_clusters: int
    weights: str


class _Design:
    """The pieces of the WCR algebra that do not depend on the null value."""

    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        cluster: np.ndarray,
        fe: Sequence[np.ndarray],
        column: int,
    ) -> None:
        self.fe = [factorize(f) for f in fe]
        self.codes = factorize(cluster)
        self.G = int(self.codes.max()) + 1
        self.Xt = demean(X, self.fe) if self.fe else X.copy()
        self.yt = demean(y, self.fe) if self.fe else y.copy()
        _check_rank(X, self.Xt, bool(self.fe))
        self.XtX_inv = np.linalg.inv(self.Xt.T @ self.Xt)
        self.R = np.zeros(X.shape[1])
        self.R[column] = 1.0
        self.beta = self.XtX_inv @ (self.Xt.T @ self.yt)
        # per-cluster X'X, stacked (G, k, k)
        k = X.shape[1]
        self.XgXg = np.zeros((self.G, k, k))
        np.add.at(self.XgXg, self.codes, self.Xt[:, :, None] * self.Xt[:, None, :])

    def scores(self, u: np.ndarray) -> np.ndarray:
        """(G, k) cluster sums of ``Xt * u``."""
        out = np.zeros((self.G, self.Xt.shape[1]))
        np.add.at(out, self.codes, self.Xt * u[:, None])
        return out

    def restricted_residuals(self, null: float) -> np.ndarray:
        Rb = self.XtX_inv @ self.R
        beta_r = self.beta - Rb * (self.R @ self.beta - null) / (self.R @ Rb)
        return self.yt - self.Xt @ beta_r

    def statistic_parts(self, null: float) -> tuple[np.ndarray, np.ndarray]:
        """``C`` (G,) and ``H`` (G, G): ``t*_b = C v_b / sqrt(ssc sum_g (C_g v_gb -
        (H v_b)_g)^2)``. Both are linear in the restricted residuals, which are affine in
        the null value: ``u_r = u_hat + (R'beta_hat - r) X a / (R'a)`` with ``a = (X'X)^-1
        R``. The two pieces are computed once (test inversion evaluates many null values;
        each evaluation absorbs the fixed effects from ``G`` columns) and combined with
        the weight ``R'beta_hat - r``, the numerator of ``t``: no difference of two parts is
        formed, so the draws that reproduce the sample keep ``|t*| = |t|`` to rounding
        whatever the outcome's units (interpolating between the parts at nulls 0 and 1
        lost ~1e-8 of ``t*`` to cancellation when ``y`` was in units of 1e6 and more)."""
        if not hasattr(self, "_affine"):
            a = self.XtX_inv @ self.R
            u_hat = self.yt - self.Xt @ self.beta
            self._affine = (*self._parts(u_hat), *self._parts(self.Xt @ a / (self.R @ a)))
        c_u, h_u, c_w, h_w = self._affine
        delta = float(self.R @ self.beta) - null
        return c_u + delta * c_w, h_u + delta * h_w

    def _exact_parts(self, null: float) -> tuple[np.ndarray, np.ndarray]:
        """The parts from the restricted residuals at ``null`` directly (a check)."""
        return self._parts(self.restricted_residuals(null))

    def _parts(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``C`` and ``H`` from residuals ``u`` (both linear in ``u``)."""
        S = self.scores(u)  # (G, k)
        a = self.XtX_inv @ self.R  # (k,)
        C = S @ a
        # X_g'X_g (X'X)^-1 sum_h S_h v_h  ->  a' X_g'X_g (X'X)^-1 S_h
        Q = self.XgXg @ a  # (G, k): X_g'X_g a (symmetric)
        H = Q @ (self.XtX_inv @ S.T)  # (G, G)
        if self.fe:
            # re-estimated fixed effects: K_gh = a' X_g' (P_D u^(h))_g
            U = np.zeros((len(u), self.G))
            U[np.arange(len(u)), self.codes] = u
            PU = U - demean(U, self.fe)
            K = np.zeros((self.G, self.G))
            np.add.at(K, self.codes, (self.Xt @ a)[:, None] * PU)
            H = H + K
        return C, H


def _check_rank(X: np.ndarray, Xt: np.ndarray, absorbed: bool) -> None:
    """Refuse a regressor the fixed effects absorb, or regressors collinear once they are
    absorbed (the inverse of ``X'X`` would be rounding noise and every number with it).

    The conventions of :func:`zoneimpact.estimators.twfe._ols_design`: a column is absorbed
    when its within norm is below 1e-9 of its own centred norm (so its units cannot decide
    it), and the Gram matrix of the unit-norm columns is singular when its smallest
    eigenvalue is at most ``max(n, k) * eps`` of the largest (the rounding of forming it,
    Higham 2002, section 3.5)."""
    within = np.sqrt((Xt**2).sum(axis=0))
    ref = np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=0)) if absorbed else within
    ratio = np.divide(within, ref, out=np.zeros_like(within), where=ref > 0)
    gone = [j for j, r in enumerate(ratio) if r < 1e-9]
    if gone:
        what = "do not vary within the fixed effects (absorbed)" if absorbed else "are zero"
        raise EstimationError(
            f"Column(s) {gone} of X {what}; drop them before the wild cluster bootstrap."
        )
    unit = Xt / within
    ev = np.linalg.eigvalsh(unit.T @ unit)
    if not ev[0] > ev[-1] * max(Xt.shape) * np.finfo(float).eps:
        raise EstimationError(
            "The columns of X are collinear"
            + (" once the fixed effects are absorbed" if absorbed else "")
            + "; drop one before the wild cluster bootstrap."
        )


def _draws(
    G: int, n_boot: int, weights: str, rng: np.random.Generator, enumerate_all: bool
) -> np.ndarray:
    """(G, B) multipliers: every Rademacher sign vector, or random draws."""
    if enumerate_all:
        bits = (np.arange(2**G)[None, :] >> np.arange(G)[:, None]) & 1
        return (2.0 * bits - 1.0).astype(float)
    if weights == "webb":
        return rng.choice(WEBB, size=(G, n_boot))
    return rng.integers(0, 2, size=(G, n_boot)) * 2.0 - 1.0


def _t_boot(C: np.ndarray, H: np.ndarray, V: np.ndarray) -> np.ndarray:
    Z = C[:, None] * V - H @ V
    with np.errstate(divide="ignore", invalid="ignore"):
        return (C @ V) / np.sqrt((Z**2).sum(axis=0))


def _se_raw(d: _Design) -> float:
    """CRV1 standard error without the small-sample factor (it cancels in the test)."""
    s = d.scores(d.yt - d.Xt @ d.beta) @ (d.XtX_inv @ d.R)
    return float(np.sqrt((s**2).sum()))


def _exceed(t_star: np.ndarray, t0: float) -> float:
    """Share of draws with ``|t*| >= |t|``. Draws equal to ``|t|`` up to rounding count:
    the all-ones and all-minus-ones sign vectors reproduce the sample, so under full
    enumeration the smallest p-value is ``2 / 2**G`` (Webb 2013), as in ``boottest``."""
    return float(np.mean(np.abs(t_star) >= abs(t0) * (1 - 1e-10)))


def _check(
    y: np.ndarray, X: np.ndarray, cluster: np.ndarray, weights: str, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if y.ndim != 1 or X.shape[0] != y.shape[0] or len(cluster) != y.shape[0]:
        raise SpecError(
            f"y, X and cluster must have the same number of rows; received {y.shape}, "
            f"{X.shape} and {len(cluster)}."
        )
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise EstimationError("y and X must be finite for the wild cluster bootstrap.")
    if weights not in ("rademacher", "webb"):
        raise SpecError(f"weights must be 'rademacher' or 'webb'; received {weights!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 99:
        raise SpecError(f"n_boot must be a whole number >= 99; received {n_boot!r}.")
    return y, X


def wild_cluster_test(
    y: np.ndarray,
    X: np.ndarray,
    cluster: np.ndarray | Sequence[object],
    *,
    column: int = 0,
    fe: Sequence[np.ndarray] = (),
    null: float = 0.0,
    weights: Weights = "rademacher",
    n_boot: int = 9999,
    rng: np.random.Generator | int | None = None,
) -> WildClusterTest:
    """WCR11 wild cluster bootstrap test of ``beta[column] = null``.

    Roodman et al. (2019), section 3 (the module notes give the algebra). The model is
    ``y = X beta + D alpha + u`` with ``D`` the dummies of the fixed effects in ``fe``
    (absorbed, never built).

    Parameters
    ----------
    y : array (n,)
    X : array (n, k)
        Regressors other than the fixed effects.
    cluster : array (n,)
        Cluster labels (any hashable values).
    column : int
        The tested coefficient.
    fe : sequence of arrays (n,)
        Fixed-effect labels to absorb (e.g. unit and period).
    null : float
        Value of the coefficient under the null.
    weights : {"rademacher", "webb"}
        Rademacher signs (enumerated exactly when ``2**G <= n_boot``) or Webb's six
        points (recommended below about 12 clusters, where Rademacher has too few
        distinct draws).
    n_boot : int
        Draws (at least 99).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    WildClusterTest
    """
    y, X = _check(y, X, np.asarray(cluster), weights, n_boot)
    d = _Design(y, X, np.asarray(cluster), fe, column)
    if d.G < 2:
        raise EstimationError("The wild cluster bootstrap needs at least 2 clusters; found 1.")
    enumerate_all = weights == "rademacher" and 2**d.G <= n_boot
    V = _draws(d.G, n_boot, weights, as_generator(rng), enumerate_all)
    C, H = d.statistic_parts(null)
    est = float(d.R @ d.beta)
    t0 = (est - null) / _se_raw(d)
    n, k = X.shape
    ssc = (n - 1) / (n - cluster_ssc_k(k, d.fe, d.codes)) * d.G / (d.G - 1)
    se = _se_raw(d) * np.sqrt(ssc)
    return WildClusterTest(
        estimate=est,
        se=float(se),
        t_stat=float((est - null) / se),
        p_value=_exceed(_t_boot(C, H, V), t0),
        n_boot=V.shape[1],
        enumerated=enumerate_all,
        n_clusters=d.G,
        weights=weights,
    )


def wild_cluster_ci(
    y: np.ndarray,
    X: np.ndarray,
    cluster: np.ndarray | Sequence[object],
    *,
    column: int = 0,
    fe: Sequence[np.ndarray] = (),
    alpha: float = 0.05,
    weights: Weights = "rademacher",
    n_boot: int = 9999,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float]:
    """Confidence interval by inverting the WCR test: the null values whose bootstrap
    p-value is at least ``alpha`` (Roodman et al. 2019, section 3.5). The same draws serve
    every null value, so the p-value is a step function of the null and each end is found
    by bracketing and bisection to a relative 1e-8 of the CRV1 standard error.
    """
    y, X = _check(y, X, np.asarray(cluster), weights, n_boot)
    d = _Design(y, X, np.asarray(cluster), fe, column)
    enumerate_all = weights == "rademacher" and 2**d.G <= n_boot
    V = _draws(d.G, n_boot, weights, as_generator(rng), enumerate_all)
    est = float(d.R @ d.beta)
    scale = _se_raw(d)

    def excess(null: float) -> float:
        C, H = d.statistic_parts(null)
        return _exceed(_t_boot(C, H, V), (est - null) / scale) - alpha

    ends = []
    for sign in (-1.0, 1.0):
        step = 2.0 * scale
        far = est + sign * step
        while excess(far) >= 0:
            step *= 2
            far = est + sign * step
            if step > 1e6 * max(scale, 1e-300):
                raise EstimationError(
                    "The wild bootstrap confidence set is unbounded (too few clusters for "
                    f"alpha={alpha}); report the p-value instead."
                )
        ends.append(optimize.brentq(excess, est, far, xtol=1e-8 * scale))
    return (min(ends), max(ends))
