"""Sensitivity of event-study conclusions to violations of parallel trends.

Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel Trends",
*Review of Economic Studies* 90(5), 2555-2591 (RR below), implemented as in their R package
``HonestDiD`` so that applied users get the same numbers.

Setup (RR Section 2): the event-study coefficients ``beta = tau + delta`` stack ``K``
pre-period and ``T`` post-period coefficients (the reference period, normalised to zero, is
excluded), ``tau_pre = 0``, and ``delta`` is the bias from a violation of parallel trends.
The target is ``theta = l' tau_post``. Inference is robust to ``delta`` lying in a set
``Delta``:

* relative magnitudes ``Delta^RM(Mbar)`` (RR eq. 2.7): every post-period first difference
  of ``delta`` is at most ``Mbar`` times the largest pre-period first difference;
* smoothness ``Delta^SD(M)`` (RR eq. 2.6): second differences of ``delta`` are at most
  ``M`` in absolute value (``M = 0`` allows exactly a linear trend, extrapolated from the
  pre-periods).

Confidence sets
---------------
* ``"Conditional"``: the conditional moment-inequality test of Andrews, Roth and Pakes
  (2023, ARP) applied to ``A delta <= d`` after the change of variables of RR Section 3.2
  (eq. 3.5-3.7, nuisance ``tau_post`` with ``l' tau_post`` fixed), inverted over a grid of
  ``theta``.
* ``"C-LF"``: the ARP hybrid with a least-favourable first stage of size ``kappa = alpha/10``
  (ARP Section 3.3; RR Section 3.2.2; the default for ``Delta^RM``).
* ``"C-F"``: the hybrid whose first stage is the FLCI of size ``kappa`` (RR Section 3.2.2).
* ``"FLCI"``: the optimal fixed-length confidence interval (RR Section 4.1; Armstrong and
  Kolesar 2018, 2020): an affine estimator ``v' beta`` with half-length
  ``h * cv_alpha(b / h)``, ``b`` its worst-case bias over ``Delta^SD(M)`` and ``h`` its
  standard deviation, minimised over the pre-period weights (the default for
  ``Delta^SD``).

``Delta^RM`` is a finite union of polyhedra (one for each pre-period first difference that
is the largest and each sign, RR Section 3.2.1); the confidence set is the union of the
conditional confidence sets of the pieces, exactly as ``computeConditionalCS_DeltaRM``.
As in HonestDiD only the moments that involve post-period coefficients enter the ARP test
when there is more than one post-period (``postPeriodMomentsOnly``).

What is written by hand and why
-------------------------------
No maintained Python library implements the ARP conditional test, so it is written here.
The linear programs use ``scipy.optimize.linprog`` (HiGHS). Three departures from the R
code make the module fast and deterministic without changing the method:

1. ARP's test statistic ``eta = min_{tau} max_j (y_j - X_j tau) / sigma_j`` equals, by LP
   duality, ``max_gamma gamma'y`` over the vertices of the dual polytope
   ``{gamma >= 0, gamma'X = 0, gamma'sigma = 1}`` (ARP eq. 13 and Appendix D). Knowing
   the vertices, the statistic, the optimal vertex and the truncation points
   ``V^lo``/``V^up`` of the conditional test (the values of ``eta`` at which the optimal
   vertex changes, ARP Appendix D, Algorithm 1, which R approximates by bisection) are
   exact closed forms, vectorised over the ``theta`` grid and over the Monte Carlo
   draws of the least-favourable critical value. Two ways to get the vertices:

   * *enumeration* (small problems): all basic solutions of the dual, when the number
     of candidate bases ``C(moments, 1 + dim(nuisance))`` is at most ``_MAX_BASES``
     (2,000; a count known before any work). This covers the usual 4 x 4 event study.
   * *LP path* (everything larger; e.g. 11 post-periods give C(22, 11) = 705,432
     candidates, which made the enumeration and R's one-LP-per-theta approach take
     minutes): vertices are found lazily by HiGHS and *certified* for each ``y`` by
     complementary slackness (a stored optimal basis gives a primal point; if it is
     feasible the vertex is optimal), so one HiGHS solve serves every ``theta`` and
     every draw its basis certifies. Bases do not depend on ``sigma``, so all pieces
     and all values of ``M`` of one analysis share them (typically 10-50 LPs in all).
     The closed-form truncation points over the vertices found so far are checked by
     solving ``eta`` at the candidate end points (an end point ``c`` is right iff
     ``eta = c`` there, ARP Appendix D); a failed check discovers the missing vertex
     and the step repeats. The answer is the enumeration's, to rounding; the tests
     check both paths against each other and against a plain HiGHS + Algorithm 1
     implementation.

2. The FLCI's inner problem (least worst-case bias for a given standard deviation; R
   solves a conic program for each ``h``) is traced exactly by a lasso homotopy: the
   worst-case bias is ``M`` times the L1 norm of the pre-period second differences of
   the weights, so the efficient frontier is the lasso path of the variance
   (:func:`_lasso_path`); the half-length is then minimised along its linear pieces.
3. The ``1 - alpha`` quantile of the folded normal is computed exactly (R simulates it
   with 1e6 draws, so R's FLCI can differ in the 4th digit).

Cost
----
Per value of ``M``: relative magnitudes have ``2 K`` pieces (``K`` pre-periods), each
with a 1000-draw LF critical value and a 1000-point theta grid; smoothness has one. With
the defaults, :func:`honest_did` (table + breakdown search) takes well under a second on
4 x 4 and a few seconds on 6 x 11 or 10 x 15 event studies (``benchmarks/bench_honest.py``;
``target="average"`` costs 1.5-3x ``"first"``: its dual has more degenerate vertices,
hence more LPs). Small dense linear algebra dominates; on an oversubscribed machine
multi-threaded OpenBLAS can make ``numpy.linalg.eigh`` (used by the LF draws) 100x
slower, and ``OPENBLAS_NUM_THREADS=1`` restores the speed.

The least-favourable critical value is simulated (ARP Section 5.2), as in R, from a
seeded ``numpy.random.Generator`` (``lf_sims`` draws, R uses 1000 with its own RNG, so
C-LF bounds may differ from R's in the last grid step).

References
----------
Andrews, I., Roth, J. and Pakes, A. (2023). Inference for Linear Conditional Moment
Inequalities. *Review of Economic Studies* 90(6), 2763-2791.
Armstrong, T. and Kolesar, M. (2018). Optimal inference in a class of regression models.
*Econometrica* 86(2), 655-683.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ..errors import ZoneImpactError

__all__ = [
    "FLCIResult",
    "HonestResult",
    "HonestDiDError",
    "breakdown_value",
    "honest_did",
    "original_ci",
    "flci",
    "sensitivity_rm",
    "sensitivity_sd",
    "delta_sd_upper_bound_mpre",
]

RMMethod = Literal["C-LF", "Conditional"]
SDMethod = Literal["FLCI", "C-F", "C-LF", "Conditional"]

# Enumerate the dual vertices when there are at most this many candidate bases (a count,
# C(moments, 1 + nuisance dimension), known before any work); beyond it use the LP path
# (same answer; see _DualOracle). Enumeration costs about 1e-5 s per candidate basis and
# is redone for every piece and M, the LP path a few milliseconds per HiGHS solve shared
# by all pieces and M: 2,000 keeps the enumeration under ~0.02 s per piece.
_MAX_BASES = 2_000

# A vertex whose statistic has standard deviation below this is degenerate: the ARP test
# at it is deterministic (reject iff eta > 0) and has no truncation points.
_DEGENERATE_SD = 1e-10

# Dual bases found by HiGHS, shared by every piece and M of one analysis (see _DualCone).
_STORE: ContextVar[dict[Any, Any] | None] = ContextVar("_honest_dual_store", default=None)


@contextmanager
def _shared_store() -> Iterator[dict[Any, Any]]:
    """Share the LP path's dual bases across the calls made inside the block (one
    analysis: table + breakdown search), so that results do not depend on earlier,
    unrelated analyses.
    """
    store = _STORE.get()
    if store is not None:
        yield store
        return
    store = {}
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


class HonestDiDError(ZoneImpactError, ValueError):
    """Bad input to the HonestDiD sensitivity analysis."""


# ---------------------------------------------------------------------------- inputs
# relative tolerance on sigma's negative eigenvalues (rounding of a singular covariance,
# e.g. a cluster-robust one with fewer clusters than coefficients, sits near 1e-16)
_PSD_RTOL = 1e-8


def _check_inputs(
    betahat: Any, sigma: Any, num_pre: int, num_post: int, l_vec: Any, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = np.asarray(betahat, dtype=float).ravel()
    s = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise HonestDiDError(
            f"num_pre and num_post must be >= 1; received num_pre={num_pre}, num_post={num_post}. "
            "The analysis needs at least one pre-period and one post-period coefficient."
        )
    if b.size != num_pre + num_post:
        raise HonestDiDError(
            f"betahat has {b.size} entries but num_pre + num_post = {num_pre + num_post}. "
            "Pass the pre-period coefficients (earliest first) then the post-period ones, "
            "without the reference period."
        )
    if s.shape != (b.size, b.size):
        raise HonestDiDError(
            f"sigma has shape {s.shape}; expected ({b.size}, {b.size}) to match betahat."
        )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
        raise HonestDiDError("betahat and sigma must be finite (no NaN/inf).")
    if not np.allclose(s, s.T, rtol=1e-6, atol=1e-12 * max(1.0, np.abs(s).max())):
        raise HonestDiDError("sigma is not symmetric; pass the covariance matrix of betahat.")
    s = (s + s.T) / 2
    # positive semi-definite up to rounding (relative to the largest eigenvalue): an
    # indefinite matrix is no covariance, and the FLCI's variance and the ARP test's
    # conditional variances can turn negative (scipy's brentq then fails deep inside)
    eig = np.linalg.eigvalsh(s)
    scale = float(np.abs(eig).max()) if eig.size else 0.0
    if eig.size and eig[0] < -_PSD_RTOL * scale:
        raise HonestDiDError(
            f"sigma is not positive semi-definite: its smallest eigenvalue is {eig[0]:.3g} "
            f"(largest {eig[-1]:.3g}; allowed down to -{_PSD_RTOL:g} x the largest in absolute "
            "value, rounding). Pass the covariance matrix of betahat."
        )
    if l_vec is None:
        lv = np.zeros(num_post)
        lv[0] = 1.0
    else:
        lv = np.asarray(l_vec, dtype=float).ravel()
        if lv.size != num_post:
            raise HonestDiDError(
                f"l_vec has {lv.size} entries; it needs one weight per post-period ({num_post})."
            )
        if not np.any(lv != 0):
            raise HonestDiDError(
                "l_vec is all zeros; give the weights defining theta = l'tau_post."
            )
    if not 0 < alpha < 1:
        raise HonestDiDError(f"alpha must lie in (0, 1); received {alpha}.")
    return b, s, lv


def _check_grid(values: Any, name: str) -> np.ndarray:
    g = np.atleast_1d(np.asarray(values, dtype=float))
    if g.size == 0 or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise HonestDiDError(
            f"{name} must be a non-empty list of non-negative numbers; received {values!r}."
        )
    return g


# ---------------------------------------------------------------------------- restrictions
def _first_diff_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """Rows give the first differences of (delta_-K, ..., delta_-1, 0, delta_1, ...)."""
    n = num_pre + num_post
    full = np.zeros((n, n + 1))
    for r in range(n):
        full[r, r] = -1.0
        full[r, r + 1] = 1.0
    return np.delete(full, num_pre, axis=1)  # drop the reference period (delta_0 = 0)


def _second_diff_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """Rows give the second differences of (delta_-K, ..., delta_-1, 0, delta_1, ...)."""
    n = num_pre + num_post
    full = np.zeros((n - 1, n + 1))
    for r in range(n - 1):
        full[r, r : r + 3] = (1.0, -2.0, 1.0)
    return np.delete(full, num_pre, axis=1)


def _a_sd(num_pre: int, num_post: int) -> np.ndarray:
    """``A`` of Delta^SD(M) = {delta: A delta <= M} (RR eq. 2.6): +/- second differences."""
    a = _second_diff_matrix(num_pre, num_post)
    return np.vstack([a, -a])


def _a_rm(num_pre: int, num_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """``A`` of the piece of Delta^RM(Mbar) where pre-period first difference ``s`` is the
    largest in absolute value and has the given sign (RR Section 3.2.1; ``s`` in
    ``-(K-1), ..., 0`` indexes the difference delta_s - delta_{s-1}). ``d = 0``.
    """
    fd = np.zeros((num_pre + num_post, num_pre + num_post + 1))
    for r in range(num_pre + num_post):
        fd[r, r : r + 2] = (-1.0, 1.0)
    vmax = np.zeros(num_pre + num_post + 1)
    vmax[num_pre + s - 1 : num_pre + s + 1] = (-1.0, 1.0)
    if not positive:
        vmax = -vmax
    bound = np.vstack([np.tile(vmax, (num_pre, 1)), np.tile(mbar * vmax, (num_post, 1))])
    a = np.vstack([fd - bound, -fd - bound])
    a = a[np.einsum("ij,ij->i", a, a) > 1e-10]  # the trivially satisfied row for s itself
    return np.delete(a, num_pre, axis=1)


def _post_rows(a: np.ndarray, num_pre: int) -> np.ndarray:
    return np.flatnonzero(np.any(a[:, num_pre:] != 0, axis=1))


def _identified_set(
    a: np.ndarray, d: np.ndarray, beta: np.ndarray, l_vec: np.ndarray, num_pre: int
) -> tuple[float, float]:
    """Identified set of theta when beta is known (RR Lemma 2.1): l'beta_post minus the
    range of l'delta_post over {A delta <= d, delta_pre = beta_pre}.
    """
    n = a.shape[1]
    c = np.concatenate([np.zeros(num_pre), l_vec])
    a_eq = np.hstack([np.eye(num_pre), np.zeros((num_pre, n - num_pre))])
    bounds = [(None, None)] * n
    lo = optimize.linprog(
        c, A_ub=a, b_ub=d, A_eq=a_eq, b_eq=beta[:num_pre], bounds=bounds, method="highs"
    )
    hi = optimize.linprog(
        -c, A_ub=a, b_ub=d, A_eq=a_eq, b_eq=beta[:num_pre], bounds=bounds, method="highs"
    )
    pe = float(l_vec @ beta[num_pre:])
    if lo.status != 0 or hi.status != 0:
        return pe, pe
    return pe + hi.fun, pe - lo.fun


def _construct_gamma(l_vec: np.ndarray) -> np.ndarray:
    """An invertible matrix whose first row is l' (RR Section 3.2): the other rows span
    the orthogonal complement of l. Any completion gives the same test (only the set
    {tau: l'tau = theta} matters).
    """
    t = l_vec.size
    if t == 1:
        return l_vec.reshape(1, 1)
    _, _, vt = np.linalg.svd(l_vec.reshape(1, -1))
    return np.vstack([l_vec, vt[1:]])


# ---------------------------------------------------------------------------- ARP machinery
def _orth_columns(x: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        return x
    u, sv, _ = np.linalg.svd(x, full_matrices=False)
    keep = sv > max(x.shape) * np.finfo(float).eps * max(sv.max(), 1e-300)
    return u[:, keep]


def _dual_vertices(sd: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Vertices of {gamma >= 0, gamma'X = 0, gamma'sd = 1} (ARP eq. 13's dual), one per
    row; ``None`` if there are too many candidate bases to enumerate.
    """
    m = sd.size
    w = np.column_stack([sd, _orth_columns(x)])
    r = w.shape[1]
    if r > m:
        return np.zeros((0, m))
    if math.comb(m, r) > _MAX_BASES:
        return None
    if np.linalg.matrix_rank(w) < r:  # sd in the span of X: the dual is empty
        return np.zeros((0, m))
    idx = np.array(list(combinations(range(m), r)), dtype=int)
    wb = w[idx]  # (n, r, r); basis rows
    sv = np.linalg.svd(wb, compute_uv=False)
    ok = sv[:, -1] > 1e-10 * sv[:, 0]
    idx, wb = idx[ok], wb[ok]
    rhs = np.zeros((wb.shape[0], r, 1))
    rhs[:, 0, 0] = 1.0
    gb = np.linalg.solve(np.transpose(wb, (0, 2, 1)), rhs)[:, :, 0]
    scale = np.abs(gb).max(axis=1, keepdims=True)
    feas = np.all(gb >= -1e-9 * scale, axis=1)
    idx, gb = idx[feas], np.clip(gb[feas], 0.0, None)
    verts = np.zeros((idx.shape[0], m))
    np.put_along_axis(verts, idx, gb, axis=1)
    if verts.shape[0] == 0:
        return verts
    key = np.round(verts / np.abs(verts).max(), 10)
    _, first = np.unique(key, axis=0, return_index=True)
    return verts[np.sort(first)]


def _eta_lp(y: np.ndarray, sd: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray | None]:
    """ARP statistic by HiGHS, solving the dual LP max gamma'y over the dual polytope;
    returns (eta, optimal vertex) or (-inf, None) when the dual is empty.
    """
    m = sd.size
    a_eq = np.column_stack([sd, x]).T
    b_eq = np.zeros(a_eq.shape[0])
    b_eq[0] = 1.0
    res = optimize.linprog(-y, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * m, method="highs-ds")
    if res.status != 0:
        return -math.inf, None
    return float(-res.fun), np.asarray(res.x)


def _truncnorm_ppf(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(lo, hi).shape, np.nan)
    ok = lo < hi
    if np.any(ok):
        out[ok] = stats.truncnorm.ppf(p, np.asarray(lo)[ok], np.asarray(hi)[ok])
    return out


class _DualCone:
    """Optimal bases found so far for the dual LPs of one nuisance matrix ``X``.

    The dual feasible set ``{gamma >= 0, gamma'X = 0, gamma'sigma = 1}`` is the section by
    ``gamma'sigma = 1`` of the cone ``{gamma >= 0, gamma'X = 0}``, whose extreme rays do
    not depend on ``sigma > 0``. A basis is stored as the moments ``S`` it makes tight
    and the nuisance coordinates ``L`` it fixes at zero (HiGHS's basic logicals at a
    degenerate vertex); with any ``sigma > 0`` it pins the primal point ``(eta, tau)`` as
    a linear function of ``y_S``. So the bases found for one piece serve every piece and
    every ``M`` with the same ``X`` (all pieces of Delta^RM share their post-period rows),
    and a handful of HiGHS solves replaces one LP per theta and per Monte Carlo draw.
    """

    def __init__(self, x: np.ndarray) -> None:
        self.x = _orth_columns(x)
        self.m = x.shape[0]
        self.r = 1 + self.x.shape[1]
        self.rays = np.zeros((0, self.m))  # one per vertex, scaled to sum 1
        self.bases: list[tuple[np.ndarray, np.ndarray]] = []  # (S, L)
        self.basis_ray: list[int] = []
        self.by_ray: list[list[int]] = []
        self.empty: bool | None = None  # dual infeasible (LP unbounded): never reject
        self.n_lp = 0

    def add_ray(self, gamma: np.ndarray) -> int:
        ray = gamma / gamma.sum()
        if self.rays.shape[0]:
            dist = np.abs(self.rays - ray).max(axis=1)
            k = int(np.argmin(dist))
            if dist[k] <= 1e-9:
                return k
        self.rays = np.vstack([self.rays, ray])
        self.by_ray.append([])
        return self.rays.shape[0] - 1

    def add_basis(self, tight: np.ndarray, zero: np.ndarray, ray: int) -> None:
        key = (np.sort(tight), np.sort(zero))
        for s, z in self.bases:
            if np.array_equal(key[0], s) and np.array_equal(key[1], z):
                return
        self.bases.append(key)
        self.basis_ray.append(ray)
        self.by_ray[ray].append(len(self.bases) - 1)


def _cone_for(store: dict[Any, _DualCone] | None, x: np.ndarray) -> _DualCone:
    if store is None:
        return _DualCone(x)
    key = (x.shape, np.round(x, 12).tobytes())
    if key not in store:
        store[key] = _DualCone(x)
    return store[key]


class _DualOracle:
    """Exact ARP statistic ``eta(y) = max_gamma gamma'y`` for many ``y`` at once.

    For each ``y`` the best known vertex is certified optimal by LP duality: a stored
    basis gives the primal point ``(eta, tau)`` as a linear function of ``y``, and if
    every primal constraint ``y_j - X_j tau <= sigma_j eta`` holds (up to rounding) the
    vertex is optimal (weak duality; ARP eq. 13). Only uncertified ``y`` go to HiGHS,
    whose optimal basis is then added to the shared :class:`_DualCone`.
    """

    def __init__(self, cone: _DualCone, sd: np.ndarray, sig: np.ndarray) -> None:
        self.cone = cone
        self.sd = sd
        self.sig = sig
        self.w = np.column_stack([sd, cone.x]).T  # r x m
        self._n = -1
        self._g: dict[int, np.ndarray | None] = {}
        if cone.empty is None:
            res = optimize.linprog(
                np.zeros(cone.m),
                A_eq=self.w,
                b_eq=np.eye(cone.r)[0],
                bounds=(0, None),
                method="highs-ds",
            )
            cone.n_lp += 1
            cone.empty = res.status != 0

    def _refresh(self) -> None:
        n = self.cone.rays.shape[0]
        if n != self._n:
            self.verts = self.cone.rays / (self.cone.rays @ self.sd)[:, None]
            self.vsv = self.verts @ self.sig @ self.verts.T
            self._n = n

    def _slack_map(self, b: int) -> np.ndarray | None:
        """``G`` with primal slack ``y - G y_S`` for basis ``b`` (computed on first use)."""
        if b not in self._g:
            tight, zero = self.cone.bases[b]
            # primal point: W_S' pi = y_S, pi_L = 0 -> pi = P y_S; slack y - W'P y_S
            c = np.vstack([self.w[:, tight].T, np.eye(self.cone.r)[zero]])
            try:
                p = np.linalg.solve(c, np.eye(self.cone.r)[:, : tight.size])
                self._g[b] = self.w.T @ p  # m x |S|
            except np.linalg.LinAlgError:
                self._g[b] = None
        return self._g[b]

    def _lp(self, y: np.ndarray) -> tuple[float, int]:
        """Solve one dual LP by HiGHS, store its optimal basis, return (eta, vertex)."""
        cone = self.cone
        res = optimize.linprog(
            -y, A_eq=self.w, b_eq=np.eye(cone.r)[0], bounds=(0, None), method="highs-ds"
        )
        cone.n_lp += 1
        if res.status != 0:
            raise HonestDiDError(f"HiGHS failed on the ARP dual LP: {res.message}")
        gamma = np.clip(np.asarray(res.x), 0.0, None)
        ray = cone.add_ray(gamma)
        # rebuild a basis from the duals: tight moments (they include the support of
        # gamma) and, at a degenerate vertex, nuisance coordinates HiGHS left at zero
        pi = -np.asarray(res.eqlin.marginals)
        slack = y - self.w.T @ pi
        scale = np.abs(y).max() + abs(pi[0]) * self.sd.max() + 1e-300
        support = np.flatnonzero(gamma > 1e-12 * gamma.max())
        tight = np.flatnonzero(np.abs(slack) <= 1e-9 * scale)
        rows: list[np.ndarray] = []
        chosen: list[int] = []
        for j in [*support, *tight[np.argsort(np.abs(slack[tight]), kind="stable")]]:
            if j in chosen or len(rows) == cone.r:
                continue
            if np.linalg.matrix_rank(np.array([*rows, self.w[:, j]])) == len(rows) + 1:
                rows.append(self.w[:, j])
                chosen.append(int(j))
        zero: list[int] = []
        small = np.abs(pi[1:]) <= 1e-12 * np.abs(pi).max()
        for i in 1 + np.flatnonzero(small):
            if len(rows) == cone.r:
                break
            if np.linalg.matrix_rank(np.array([*rows, np.eye(cone.r)[i]])) == len(rows) + 1:
                rows.append(np.eye(cone.r)[i])
                zero.append(int(i))
        if len(rows) == cone.r:
            cone.add_basis(np.asarray(chosen, dtype=int), np.asarray(zero, dtype=int), ray)
        return float(-res.fun), ray

    def solve(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``eta`` and the index of an optimal vertex (a row of ``self.verts``) for each
        row of ``y`` (n x m).
        """
        y = np.atleast_2d(y)
        n = y.shape[0]
        eta = np.full(n, np.nan)
        vert = np.full(n, -1, dtype=int)
        pending = np.arange(n)
        while pending.size:
            self._refresh()
            if self.verts.shape[0] == 0:
                eta[pending[0]], vert[pending[0]] = self._lp(y[pending[0]])
                pending = pending[1:]
                continue
            yp = y[pending]
            vals = yp @ self.verts.T
            cand = np.argmax(vals, axis=1)
            best = vals[np.arange(pending.size), cand]
            tol = 1e-9 * (np.abs(yp).max(axis=1) + np.abs(best) * self.sd.max()) + 1e-300
            done = np.zeros(pending.size, dtype=bool)
            for ray in np.unique(cand):
                sel = np.flatnonzero(cand == ray)
                order = self.cone.by_ray[ray]
                for pos, b in enumerate(list(order)):
                    g = self._slack_map(b)
                    if g is None:
                        continue
                    tight = self.cone.bases[b][0]
                    slack = yp[sel] - yp[sel][:, tight] @ g.T
                    ok = slack.max(axis=1) <= tol[sel]
                    if ok.any():
                        done[sel[ok]] = True
                        sel = sel[~ok]
                        if pos:  # move to front: the bases that certify most go first
                            order.remove(b)
                            order.insert(0, b)
                    if sel.size == 0:
                        break
            eta[pending[done]] = best[done]
            vert[pending[done]] = cand[done]
            pending = pending[~done]
            if pending.size:
                # one LP; its basis usually certifies many of the remaining y
                eta[pending[0]], vert[pending[0]] = self._lp(y[pending[0]])
                pending = pending[1:]
        self._refresh()
        return eta, vert


def _truncation_points(
    vsv: np.ndarray, vals: np.ndarray, j: np.ndarray, eta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sigma_b``, ``V^lo`` and ``V^up`` of the ARP test in closed form over known vertices.

    Vertex ``v`` stays optimal iff ``a_v <= b_v * eta`` (ARP Appendix D), with
    ``b_v = 1 - v'c`` and ``c = Sigma gamma_j / gamma_j'Sigma gamma_j``. At a degenerate
    optimal vertex (``sigma_b < _DEGENERATE_SD``) ``c`` is undefined; its end points are
    returned infinite and :meth:`_ARPPiece._decide` settles it without them.

    Parameters
    ----------
    vsv : ndarray (n_vert, n_vert)
        ``V Sigma V'`` over the vertices.
    vals : ndarray (n_vert, n_theta)
        ``v'y`` for every vertex and tested ``theta``.
    j, eta : ndarray (n_theta,)
        The optimal vertex and the statistic for every ``theta``.
    """
    gjj = vsv[j, j]
    sigma_b = np.sqrt(np.clip(gjj, 0.0, None))
    ok = sigma_b >= _DEGENERATE_SD
    vc = vsv[:, j] / np.where(ok, gjj, 1.0)  # v'c
    bcoef = 1.0 - vc
    acoef = vals - vc * eta
    tol = 1e-10
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = acoef / bcoef
    vlo = np.where(bcoef > tol, ratio, -np.inf).max(axis=0)
    vup = np.where(bcoef < -tol, ratio, np.inf).min(axis=0)
    vlo = np.where(ok, vlo, -np.inf)
    vup = np.where(ok, vup, np.inf)
    return sigma_b, vlo, vup


@dataclass
class _ARPPiece:
    """The ARP test of H0: theta = theta0 for one polyhedron {A delta <= d} (RR eq. 3.7).

    ``y(theta) = A betahat - d - a theta`` with ``a = A_post Gamma^{-1} e_1`` and the
    nuisance matrix ``X = A_post Gamma^{-1}[:, 1:]``.
    """

    y0: np.ndarray  # A betahat - d, all rows
    a1: np.ndarray  # coefficient of theta, all rows
    x: np.ndarray  # nuisance matrix, all rows
    sigma_y: np.ndarray  # A Sigma A', all rows
    rows: np.ndarray  # rows used by ARP
    alpha: float
    method: str  # "ARP", "LF", "FLCI"
    kappa: float
    lf_sims: int
    rng: np.random.Generator
    flci_info: dict[str, Any] | None = None
    store: dict[Any, _DualCone] | None = None  # shared dual bases (LP path)
    verts: np.ndarray | None = field(init=False, default=None)
    lf_cv: float = field(init=False, default=math.inf)
    oracle: _DualOracle | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        r = self.rows
        self._sig = self.sigma_y[np.ix_(r, r)]
        self._sd = np.sqrt(np.clip(np.diag(self._sig), 0.0, None))
        self._x = self.x[r]
        if np.any(self._sd <= 0):
            raise HonestDiDError(
                "A moment of the restriction has zero variance under sigma; sigma must give every "
                "pre/post difference a positive variance (check for a singular covariance matrix)."
            )
        self.verts = _dual_vertices(self._sd, self._x)
        if self.verts is not None:
            self._vsv = self.verts @ self._sig @ self.verts.T
        else:
            self.oracle = _DualOracle(_cone_for(self.store, self._x), self._sd, self._sig)
        if self.method == "LF":
            self.lf_cv = self._least_favourable_cv()
        if self.method == "FLCI":
            assert self.flci_info is not None
            vbar = self.flci_info["vbar"]
            self._vbar = vbar
            self._vbar_y0 = vbar @ self.y0
            self._vbar_a1 = vbar @ self.a1
            self._vbar_d = self.flci_info["vbar_d"]
            self._hl = self.flci_info["halflength"]
            full = np.zeros((0, self.y0.size))
            if self.verts is not None:
                full = np.zeros((self.verts.shape[0], self.y0.size))
                full[:, r] = self.verts
                self._vbar_sig_g = full @ self.sigma_y @ vbar  # vbar' Sigma_Y gamma_full per vertex

    # ---------------------------------------------------------------- critical value
    def _least_favourable_cv(self) -> float:
        """1 - kappa quantile of eta under the least-favourable null E[y] = 0 (ARP Sec. 5.2)."""
        draws = self.rng.multivariate_normal(
            np.zeros(self._sd.size), self._sig, size=self.lf_sims, method="eigh"
        )
        if self.verts is not None:
            if self.verts.shape[0] == 0:
                return math.inf
            eta = (draws @ self.verts.T).max(axis=1)
        else:
            assert self.oracle is not None
            if self.oracle.cone.empty:
                return math.inf
            eta = self.oracle.solve(draws)[0]
        return float(np.quantile(eta, 1 - self.kappa))

    # ---------------------------------------------------------------- test
    def accept(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        if self.verts is None:
            return self._accept_oracle(theta)
        if self.verts.shape[0] == 0:  # the LP is unbounded below: never reject (as R)
            return np.ones(theta.size, dtype=bool)
        r = self.rows
        vy = self.verts @ self.y0[r]
        va = self.verts @ self.a1[r]
        vals = vy[:, None] - va[:, None] * theta[None, :]  # (n_vert, n_theta)
        j = np.argmax(vals, axis=0)
        eta = vals[j, np.arange(theta.size)]
        sigma_b, vlo, vup = _truncation_points(self._vsv, vals, j, eta)
        vsg = self._vbar_sig_g[j] if self.method == "FLCI" else None
        return self._decide(theta, eta, sigma_b, vlo, vup, vsg)

    def _accept_oracle(self, theta: np.ndarray) -> np.ndarray:
        """The test of :meth:`accept` for problems too large to enumerate the vertices.

        The statistic and its optimal vertex come from :class:`_DualOracle` (exact). The
        truncation points use the closed form of :meth:`accept` over the vertices found so
        far, which can only make ``V^lo`` too high or ``V^up`` too low; each is then
        checked by solving the statistic at ``y + b (c - eta)``, ``c = V^lo, V^up``
        (ARP Appendix D: ``c`` is an end point iff ``eta`` there equals ``c``) and, for
        an infinite end, along ``+/- b`` itself. A failed check discovers the missing
        vertex (ARP Algorithm 1's step) and the closed form is recomputed.
        """
        assert self.oracle is not None
        oracle = self.oracle
        if oracle.cone.empty:  # the LP is unbounded below: never reject (as R)
            return np.ones(theta.size, dtype=bool)
        r = self.rows
        y = self.y0[r][None, :] - theta[:, None] * self.a1[r][None, :]  # (n_theta, m)
        eta, j = oracle.solve(y)
        for _ in range(100):
            n_rays = oracle.cone.rays.shape[0]
            verts, vsv = oracle.verts, oracle.vsv
            vals = verts @ y.T  # (n_vert, n_theta)
            sigma_b, vlo, vup = _truncation_points(vsv, vals, j, eta)
            # the truncation points matter only where the LF first stage has not rejected
            # and the optimal vertex has a positive variance. At a degenerate vertex
            # (gamma'Sigma gamma = 0, e.g. two perfectly negatively correlated moments) the
            # statistic is not random along b = Sigma gamma / gamma'Sigma gamma, _decide
            # settles it without truncation (as _accept_lp does), and b is 0/0 or ~1e15:
            # probing it sent NaN or astronomically large points to HiGHS.
            need = (eta <= self.lf_cv) & (sigma_b >= _DEGENERATE_SD)
            jn = j[need]
            # Sigma gamma / gamma'Sigma gamma, finite because degenerate vertices are out
            b = (verts[jn] @ self._sig) / (sigma_b[need, None] ** 2)
            checks = []
            for c in (vlo[need], vup[need]):
                fin = np.isfinite(c)
                checks.append(y[need][fin] + b[fin] * (c[fin] - eta[need][fin])[:, None])
                # an infinite end: no vertex gains on gamma_j along sign(c) * b; b depends
                # on the vertex only, so one check per vertex
                _, first = np.unique(jn[~fin] * 2 + (c[~fin] > 0), return_index=True)
                checks.append(np.sign(c[~fin][first])[:, None] * b[~fin][first])
            oracle.solve(np.vstack(checks))
            if oracle.cone.rays.shape[0] == n_rays:
                break
        else:
            warnings.warn(
                "ARP truncation points did not converge; the LP-path test may be inexact.",
                stacklevel=4,
            )
        vsg = None
        if self.method == "FLCI":
            full = np.zeros((verts.shape[0], self.y0.size))
            full[:, r] = verts
            vsg = (full @ self.sigma_y @ self._vbar)[j]
        return self._decide(theta, eta, sigma_b, vlo, vup, vsg)

    def _decide(
        self,
        theta: np.ndarray,
        eta: np.ndarray,
        sigma_b: np.ndarray,
        vlo: np.ndarray,
        vup: np.ndarray,
        vsg: np.ndarray | None,
    ) -> np.ndarray:
        reject = np.zeros(theta.size, dtype=bool)
        decided = np.zeros(theta.size, dtype=bool)
        size = self.alpha
        if self.method == "LF":
            size = (self.alpha - self.kappa) / (1 - self.kappa)
            first = eta > self.lf_cv
            reject |= first
            decided |= first
            vup = np.minimum(vup, self.lf_cv)
        elif self.method == "FLCI":
            size = (self.alpha - self.kappa) / (1 - self.kappa)
            # first stage: theta outside the size-kappa FLCI (dbar of HonestDiD)
            vbar_y = self._vbar_y0 - self._vbar_a1 * theta
            shift = (1 - self._vbar_a1) * theta
            dbar1 = self._hl - self._vbar_d + shift
            dbar2 = self._hl + self._vbar_d - shift
            # ">= 0 up to rounding": the default grid starts exactly on the FLCI's ends,
            # where the first stage must reject (as it does in R's floating point)
            first = np.maximum(vbar_y - dbar1, -vbar_y - dbar2) > -1e-9 * self._hl
            reject |= first
            decided |= first
            # the FLCI event {|vbar'y - ...| <= dbar} also truncates eta
            assert vsg is not None
            with np.errstate(divide="ignore", invalid="ignore"):
                # sigma_b = 0 (degenerate vertex) is decided below without these
                cvec = vsg / sigma_b**2  # vbar'c
                svec = vbar_y - cvec * eta  # vbar'S
                up1 = (dbar1 - svec) / cvec  # row +vbar
                up2 = (dbar2 + svec) / (-cvec)  # row -vbar
            lo_f = np.where(cvec < 0, up1, -np.inf)
            lo_f = np.maximum(lo_f, np.where(-cvec < 0, up2, -np.inf))
            hi_f = np.where(cvec > 0, up1, np.inf)
            hi_f = np.minimum(hi_f, np.where(-cvec > 0, up2, np.inf))
            vlo = np.maximum(vlo, lo_f)
            vup = np.minimum(vup, hi_f)
        degenerate = sigma_b < _DEGENERATE_SD
        reject |= ~decided & degenerate & (eta > 0)
        decided |= degenerate
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = eta / sigma_b
            zlo = vlo / sigma_b
            zup = vup / sigma_b
        inside = (zlo <= stat) & (stat <= zup) & ~decided
        if np.any(inside):
            cval = np.maximum(0.0, _truncnorm_ppf(1 - size, zlo[inside], zup[inside]))
            reject[inside] = stat[inside] > cval
        return ~reject

    def _accept_lp(self, theta: float) -> bool:
        """Reference implementation of the test at one theta: one HiGHS solve for the
        statistic and ARP Appendix D Algorithm 1 for the truncation points (slow: several
        LPs per theta; used by the tests to check both fast paths).
        """
        r = self.rows
        y = self.y0[r] - self.a1[r] * theta
        eta, gamma = _eta_lp(y, self._sd, self._x)
        if gamma is None:
            return True
        gsg = float(gamma @ self._sig @ gamma)
        sigma_b = math.sqrt(max(gsg, 0.0))
        if sigma_b < _DEGENERATE_SD:
            vlo, vup = -math.inf, math.inf
        else:
            b = self._sig @ gamma / gsg
            s = y - b * eta
            vlo, vup = self._vlo_vup_lp(eta, s, b)
        vsg = None
        if self.method == "FLCI":
            full = np.zeros(self.y0.size)
            full[self.rows] = gamma
            vsg = np.atleast_1d(self._vbar @ self.sigma_y @ full)
        out = self._decide(
            np.array([theta]),
            np.array([eta]),
            np.array([sigma_b]),
            np.array([vlo]),
            np.array([vup]),
            vsg,
        )
        return bool(out[0])

    def _vlo_vup_lp(self, eta: float, s: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """Endpoints of {c: max_gamma gamma'(s + b c) = c} (ARP Appendix D, Algorithm 1),
        stepping from far out to the line of the current optimal vertex (exact for a
        piecewise-linear convex function).
        """

        def best(c: float) -> tuple[float, np.ndarray | None]:
            return _eta_lp(s + b * c, self._sd, self._x)

        out = []
        for far in (
            max(100.0, eta + 1e3 * abs(eta) + 100.0),
            min(-100.0, eta - 1e3 * abs(eta) - 100.0),
        ):
            c = far
            end = math.inf if far > 0 else -math.inf
            for _ in range(200):
                val, g = best(c)
                if g is None or abs(val - c) <= 1e-9 * max(1.0, abs(c)):
                    break
                denom = 1.0 - float(g @ b)
                if abs(denom) < 1e-14:
                    break
                c = float(g @ s) / denom
            else:
                c = end
            val, _ = best(c)
            out.append(c if abs(val - c) <= 1e-7 * max(1.0, abs(c)) and c != far else end)
        return out[1], out[0]


def _make_piece(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    l_vec: np.ndarray,
    alpha: float,
    method: str,
    kappa: float,
    lf_sims: int,
    rng: np.random.Generator,
    post_moments_only: bool = True,
    flci_info: dict[str, Any] | None = None,
    store: dict[Any, _DualCone] | None = None,
) -> _ARPPiece:
    num_post = l_vec.size
    a_gamma_inv = a[:, num_pre:] @ np.linalg.inv(_construct_gamma(l_vec))
    rows = _post_rows(a, num_pre) if (post_moments_only and num_post > 1) else np.arange(a.shape[0])
    info = None
    if flci_info is not None:
        # vbar solves A'vbar = v_flci (least squares, exact since v_flci is orthogonal to
        # the null space of A: FLCI weights are unbiased for linear trends).
        vbar = np.linalg.lstsq(a.T, flci_info["vec"], rcond=None)[0]
        info = {"vbar": vbar, "vbar_d": float(vbar @ d), "halflength": flci_info["halflength"]}
    return _ARPPiece(
        y0=a @ beta - d,
        a1=a_gamma_inv[:, 0],
        x=a_gamma_inv[:, 1:],
        sigma_y=a @ sigma @ a.T,
        rows=rows,
        alpha=alpha,
        method=method,
        kappa=kappa,
        lf_sims=lf_sims,
        rng=rng,
        flci_info=info,
        store=store if store is not None else _STORE.get(),
    )


def _invert(
    pieces: list[_ARPPiece],
    lb: float,
    ub: float,
    grid_points: int,
    refine: bool,
    widen: bool,
    centre: float | None = None,
) -> tuple[float, float]:
    """Confidence set = {theta accepted by some piece} on a grid (min and max accepted
    point, as HonestDiD); optionally the end points are bisected between grid points and
    the grid is widened while the set touches its edge.

    With ``widen`` (the default grid) and a ``centre`` (the estimate ``l'beta_post``), a
    grid that accepts nothing is moved onto the estimate and then widened around it: R's
    default grid, ``[-20 sd, 20 sd]`` about zero, misses the whole set when the estimate
    lies more than about 20 SEs from zero, and R (like this function before) then reports
    an empty set, NaN, for a set that is not empty (the original CI, inside it at
    ``Mbar = 0``, is not). Where R's grid finds the set the bounds are R's.
    """

    def accept(theta: np.ndarray) -> np.ndarray:
        acc = np.zeros(np.size(theta), dtype=bool)
        for p in pieces:
            acc |= p.accept(theta)
        return acc

    grid = np.linspace(lb, ub, grid_points)
    acc = accept(grid)
    if not acc.any() and widen and centre is not None and math.isfinite(centre):
        # nothing accepted: the same width on the estimate, then doubling around it
        half = (ub - lb) / 2
        for _ in range(5):
            lb, ub = centre - half, centre + half
            grid = np.linspace(lb, ub, grid_points)
            acc = accept(grid)
            if acc.any():
                break
            half *= 2
    if not acc.any():
        return math.nan, math.nan
    for attempt in range(6):
        if attempt:
            grid = np.linspace(lb, ub, grid_points)
            acc = accept(grid)
            if not acc.any():
                return math.nan, math.nan
        lo_i, hi_i = np.flatnonzero(acc)[[0, -1]]
        touches = lo_i == 0 or hi_i == grid_points - 1
        if not (touches and widen):
            break
        half = (ub - lb) / 2
        lb, ub = (lb - half if lo_i == 0 else lb), (ub + half if hi_i == grid_points - 1 else ub)
    else:
        warnings.warn(
            "The robust confidence set is open at an end of the theta grid.", stacklevel=3
        )
    lo, hi = float(grid[lo_i]), float(grid[hi_i])
    if refine:
        step = grid[1] - grid[0] if grid_points > 1 else 0.0
        if lo_i > 0:
            lo = _bisect_edge(accept, float(grid[lo_i - 1]), lo, step * 1e-6)
        if hi_i < grid_points - 1:
            hi = _bisect_edge(accept, float(grid[hi_i + 1]), hi, step * 1e-6)
    elif touches:
        warnings.warn(
            "The robust confidence set reaches the end of the theta grid (reported bound = grid "
            "edge); widen grid_lb/grid_ub.",
            stacklevel=3,
        )
    return lo, hi


def _bisect_edge(accept: Any, out_pt: float, in_pt: float, tol: float) -> float:
    for _ in range(60):
        if abs(in_pt - out_pt) <= tol:
            break
        mid = (in_pt + out_pt) / 2
        if accept(np.array([mid]))[0]:
            in_pt = mid
        else:
            out_pt = mid
    return in_pt


# ---------------------------------------------------------------------------- FLCI
def _folded_normal_quantile(p: float, mu: float) -> float:
    """p-quantile of |N(mu, 1)| (exact; RR eq. 4.3's cv_alpha)."""
    mu = abs(mu)

    def f(c: float) -> float:
        return float(special.ndtr(c - mu) - special.ndtr(-c - mu)) - p

    hi = mu + stats.norm.ppf(p) + 10.0
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-14))


def _sd_bias_matrix(
    num_pre: int, num_post: int, l_vec: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Worst-case bias of ``w'beta_pre + l'beta_post`` over Delta^SD(M).

    Writing delta through its slope at the reference period and its second differences
    ``SD_u`` (u = -K+1, ..., T-1) gives ``delta_s = s*slope + sum_{u<s} (s-u) SD_u`` for
    post-periods and ``delta_-j = -j*slope + sum_{u=-j+1}^{0} (u+j) SD_u`` for pre-periods.
    The bias is finite iff the estimator is unbiased for linear trends,
    ``sum_j j w_-j = sum_s s l_s`` (=: c), and then equals
    ``M * (sum_{u<0} |D_u w| + |c| + sum_{u>=1} |sum_{s>u} (s-u) l_s|)``.

    Returns ``D`` (rows u = -K+1..-1, columns the pre-periods earliest first), the vector
    ``a`` with ``a'w = c`` the unbiasedness constraint, ``c``, and the constant part.
    """
    k = num_pre
    j_of_col = np.arange(k, 0, -1)  # column p holds w_{-j} with j = K - p
    dmat = np.zeros((k - 1, k))
    for row, u in enumerate(range(-k + 1, 0)):
        use = j_of_col >= 1 - u
        dmat[row, use] = u + j_of_col[use]
    s = np.arange(1, num_post + 1)
    c = float(s @ l_vec)
    post_terms = sum(abs(float(np.sum((s[s > u] - u) * l_vec[s > u]))) for u in range(1, num_post))
    return dmat, j_of_col.astype(float), c, abs(c) + post_terms


@dataclass(frozen=True)
class FLCIResult:
    """Optimal fixed-length confidence interval (RR Section 4.1)."""

    lb: float
    ub: float
    halflength: float
    vec: np.ndarray  # weights on beta (pre then post)
    sd: float
    max_bias: float


def _lasso_path(q: np.ndarray, g: np.ndarray) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Solution path of ``min_z 0.5 z'Qz + g'z + mu ||z||_1`` for ``mu`` from
    ``||g||_inf`` (where ``z = 0``) down to 0 (the unconstrained minimum), ``Q`` positive
    definite: the homotopy / LARS-lasso algorithm (Osborne, Presnell and Turlach 2000;
    Efron et al. 2004), exact because ``z(mu)`` is piecewise linear in ``mu``.

    Returns segments ``(mu_lo, mu_hi, p, d)`` with ``z(mu) = p + mu d`` on
    ``[mu_lo, mu_hi]`` (full-length vectors, zero off the active set).
    """
    n = g.size
    mu = float(np.abs(g).max()) if n else 0.0
    if mu == 0.0:
        return [(0.0, mu, np.zeros(n), np.zeros(n))]
    first = int(np.argmax(np.abs(g)))
    active, signs = [first], {first: -math.copysign(1.0, g[first])}
    segments = []
    for _ in range(10 * n + 10):
        a = np.array(active, dtype=int)
        s_a = np.array([signs[i] for i in active])
        qaa_inv = np.linalg.pinv(q[np.ix_(a, a)])
        p = np.zeros(n)
        d = np.zeros(n)
        p[a] = -qaa_inv @ g[a]  # KKT on the active set: (Qz + g)_A = -mu s_A
        d[a] = -qaa_inv @ s_a
        cp, cd = q @ p + g, q @ d  # gradient (Qz + g) = cp + mu cd
        nxt = 0.0
        event: tuple[Literal["leave"], int] | tuple[Literal["enter"], int, float] | None = None
        tol = 1e-12 * max(mu, 1e-300)
        for i in range(n):
            if i in signs:
                if d[i] != 0:  # leaves when z_i reaches zero
                    t = -p[i] / d[i]
                    if tol < t < mu - tol and t > nxt:
                        nxt, event = t, ("leave", i)
            else:  # enters when |gradient_i| reaches mu
                for sgn in (1.0, -1.0):
                    den = sgn - cd[i]
                    if den != 0:
                        t = cp[i] / den
                        if tol < t < mu - tol and t > nxt:
                            nxt, event = t, ("enter", i, -sgn)
        segments.append((nxt, mu, p, d))
        if event is None:
            break
        mu = nxt
        if event[0] == "leave":
            active.remove(event[1])
            del signs[event[1]]
        else:
            active.append(event[1])
            signs[event[1]] = event[2]
    return segments


def flci(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    m: float,
    l_vec: Any = None,
    alpha: float = 0.05,
) -> FLCIResult:
    """Optimal FLCI for theta = l'tau_post under Delta^SD(M) (RR Section 4.1, eq. 4.1-4.3).

    Among affine estimators ``v'betahat`` with ``v_post = l``, minimises the half-length
    ``chi(v) = sd(v) * cv_alpha(maxbias(v) / sd(v))`` where ``cv_alpha(t)`` is the
    ``1 - alpha`` quantile of ``|N(t, 1)|`` (Armstrong and Kolesar 2018).

    How: the pre-period weights ``w`` enter the worst-case bias only through the second
    differences ``z = D w`` (:func:`_sd_bias_matrix`; ``w`` is an affine function of
    ``z`` once unbiasedness for linear trends holds), so the efficient frontier
    "least worst-case bias for a given standard deviation" (R's inner problem, solved
    there for each ``h`` by a conic solver) is traced exactly by the lasso path of
    ``min 0.5 var(w(z)) + mu ||z||_1`` (:func:`_lasso_path`), from the least-bias
    estimator (``mu`` large: all weight on the last pre-period) to the least-variance
    one (``mu = 0``). The half-length is then minimised along the path: a bounded Brent
    search on each linear piece plus its end points (R bisects on numerical
    derivatives in ``h``).

    Parameters
    ----------
    betahat, sigma : array_like
        Event-study coefficients (pre-periods earliest first, then post) and covariance.
    num_pre, num_post : int
        Numbers of pre- and post-period coefficients.
    m : float
        Smoothness bound ``M >= 0``.
    l_vec : array_like, optional
        Target weights (default: first post-period).
    alpha : float
        One minus the coverage.
    """
    beta, sig, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    if not (np.isfinite(m) and m >= 0):
        raise HonestDiDError(f"m must be a non-negative number; received {m}.")
    k = num_pre
    s_pre = sig[:k, :k]
    s_cross = sig[:k, k:] @ lv
    s_post = float(lv @ sig[k:, k:] @ lv)
    dmat, avec, c, const = _sd_bias_matrix(num_pre, num_post, lv)

    def var(w: np.ndarray) -> float:
        return float(w @ s_pre @ w + 2 * w @ s_cross + s_post)

    # w = w_0 + F z: [D; a'] is unit lower triangular, and w_0 = c e_K (all weight on the
    # last pre-period) has D w_0 = 0, a'w_0 = c
    w_0 = np.zeros(k)
    w_0[-1] = c
    f_mat = np.linalg.inv(np.vstack([dmat, avec[None, :]]))[:, : k - 1]
    q = f_mat.T @ s_pre @ f_mat
    g = f_mat.T @ (s_pre @ w_0 + s_cross)
    segments = _lasso_path(q, g)
    z_min = segments[-1][2]  # mu = 0: least variance among trend-unbiased weights

    def halflength_at(z: np.ndarray) -> tuple[float, np.ndarray, float]:
        w = w_0 + f_mat @ z
        b = float(np.abs(dmat @ w).sum() + const)
        sd = math.sqrt(max(var(w), 1e-300))
        return sd * _folded_normal_quantile(1 - alpha, m * b / sd), w, b

    if m == 0:
        best_z = z_min
    else:
        cands = [segments[0][1] * segments[0][3] + segments[0][2]]  # mu = mu_max: z = 0
        for mu_lo, mu_hi, p, d in segments:
            cands.append(p + mu_lo * d)
            if mu_hi - mu_lo > 1e-12 * max(mu_hi, 1e-300):
                opt = optimize.minimize_scalar(
                    lambda t, p=p, d=d: halflength_at(p + t * d)[0],
                    bounds=(mu_lo, mu_hi),
                    method="bounded",
                    options={"xatol": 1e-10 * max(mu_hi, 1e-300)},
                )
                cands.append(p + float(opt.x) * d)
        best_z = min(cands, key=lambda z: halflength_at(z)[0])
    hl, w, b = halflength_at(best_z)
    vec = np.concatenate([w, lv])
    centre = float(vec @ beta)
    return FLCIResult(centre - hl, centre + hl, hl, vec, math.sqrt(max(var(w), 0.0)), m * b)


# ---------------------------------------------------------------------------- public API
def original_ci(
    betahat: Any, sigma: Any, num_pre: int, num_post: int, l_vec: Any = None, alpha: float = 0.05
) -> tuple[float, float]:
    """Conventional CI ``l'beta_post +/- z_{1-alpha/2} se`` (HonestDiD ``constructOriginalCS``)."""
    beta, sig, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    est = float(lv @ beta[num_pre:])
    se = math.sqrt(float(lv @ sig[num_pre:, num_pre:] @ lv))
    z = stats.norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se


def delta_sd_upper_bound_mpre(betahat: Any, sigma: Any, num_pre: int, alpha: float = 0.05) -> float:
    """Largest one-sided upper confidence bound of the pre-period second differences (with
    delta_0 = 0): HonestDiD's ``DeltaSD_upperBound_Mpre``, the end of its default M grid.
    """
    beta = np.asarray(betahat, dtype=float).ravel()[:num_pre]
    sig = np.asarray(sigma, dtype=float)[:num_pre, :num_pre]
    if num_pre < 2:
        raise HonestDiDError("delta_sd_upper_bound_mpre needs at least 2 pre-periods.")
    a = _a_sd(num_pre, 0)
    se = np.sqrt(np.diag(a @ sig @ a.T))
    return float(np.max(a @ beta + stats.norm.ppf(1 - alpha) * se))


def _sd_theta(sig: np.ndarray, lv: np.ndarray, num_pre: int) -> float:
    return math.sqrt(float(lv @ sig[num_pre:, num_pre:] @ lv))


def sensitivity_rm(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    mbar_grid: Any = None,
    l_vec: Any = None,
    alpha: float = 0.05,
    *,
    method: RMMethod = "C-LF",
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    refine: bool = False,
    lf_sims: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Robust confidence sets under relative magnitudes Delta^RM(Mbar) (RR Sec. 2.4.1, 3.2.1).

    Mirrors HonestDiD's ``createSensitivityResults_relativeMagnitudes`` with
    ``bound = "deviation from parallel trends"``: for each ``Mbar`` the union over the
    ``2K`` polyhedral pieces of ARP conditional ("Conditional") or least-favourable hybrid
    ("C-LF", the default) confidence sets, inverted over ``grid_points`` values of theta in
    ``[grid_lb, grid_ub]`` (default ``+/- 20 sd(l'beta_post)`` as in R; the grid is widened
    while the set touches its end, and moved onto ``l'beta_post`` when it accepts nothing,
    as when the estimate lies beyond 20 SEs from zero, where R reports an empty set). ``refine=True`` bisects the end points between grid
    points (R reports grid points).

    Returns
    -------
    pandas.DataFrame
        Columns ``mbar``, ``lb``, ``ub``, ``method``, ``delta`` ("DeltaRM").
    """
    beta, sig, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    grid = _check_grid(np.linspace(0, 2, 10) if mbar_grid is None else mbar_grid, "mbar_grid")
    if method not in ("C-LF", "Conditional"):
        raise HonestDiDError(
            f"method must be 'C-LF' or 'Conditional' for relative magnitudes; received {method!r}."
        )
    sd_t = _sd_theta(sig, lv, num_pre)
    lb = -20 * sd_t if grid_lb is None else float(grid_lb)
    ub = 20 * sd_t if grid_ub is None else float(grid_ub)
    widen = grid_lb is None and grid_ub is None
    with _shared_store():
        rows = []
        for mbar in grid:
            lo, hi = _rm_ci(
                beta,
                sig,
                num_pre,
                num_post,
                lv,
                float(mbar),
                alpha,
                method,
                lb,
                ub,
                grid_points,
                refine,
                widen,
                lf_sims,
                seed,
            )
            rows.append(
                {"mbar": float(mbar), "lb": lo, "ub": hi, "method": method, "delta": "DeltaRM"}
            )
    return pd.DataFrame(rows)


def _rm_ci(
    beta: np.ndarray,
    sig: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    mbar: float,
    alpha: float,
    method: str,
    lb: float,
    ub: float,
    grid_points: int,
    refine: bool,
    widen: bool,
    lf_sims: int,
    seed: int,
) -> tuple[float, float]:
    flag = "LF" if method == "C-LF" else "ARP"
    rng = np.random.default_rng(seed)
    pieces = []
    for s in range(-(num_pre - 1), 1):
        for positive in (True, False):
            a = _a_rm(num_pre, num_post, mbar, s, positive)
            pieces.append(
                _make_piece(
                    beta,
                    sig,
                    a,
                    np.zeros(a.shape[0]),
                    num_pre,
                    lv,
                    alpha,
                    flag,
                    alpha / 10,
                    lf_sims,
                    rng,
                )
            )
    centre = float(lv @ beta[num_pre:])
    return _invert(pieces, lb, ub, grid_points, refine, widen, centre)


def sensitivity_sd(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    m_grid: Any = None,
    l_vec: Any = None,
    alpha: float = 0.05,
    *,
    method: SDMethod = "FLCI",
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    refine: bool = False,
    lf_sims: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Robust confidence sets under smoothness Delta^SD(M) (RR Sec. 2.4.2, 3-4).

    Mirrors HonestDiD's ``createSensitivityResults``: ``method="FLCI"`` (default, RR Sec.
    4.1), ``"C-F"`` (conditional test with FLCI first stage), ``"C-LF"`` (least-favourable
    hybrid) or ``"Conditional"`` (ARP). The default ``m_grid`` is 10 points from 0 to
    :func:`delta_sd_upper_bound_mpre`, as in R. Conditional sets are inverted over a grid of
    theta: by default ``[id_lb - 20 sd, id_ub + 20 sd]`` (identified set at beta = 0) or the
    size-``kappa`` FLCI for "C-F", as in R; a default grid that accepts nothing is moved
    onto ``l'beta_post`` (see :func:`sensitivity_rm`).

    Returns
    -------
    pandas.DataFrame
        Columns ``m``, ``lb``, ``ub``, ``method``, ``delta`` ("DeltaSD").
    """
    beta, sig, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    if m_grid is None:
        top = delta_sd_upper_bound_mpre(beta, sig, num_pre) if num_pre > 1 else math.sqrt(sig[0, 0])
        m_grid = np.linspace(0, top, 10)
    grid = _check_grid(m_grid, "m_grid")
    if method not in ("FLCI", "C-F", "C-LF", "Conditional"):
        raise HonestDiDError(
            f"method must be one of 'FLCI', 'C-F', 'C-LF', 'Conditional'; received {method!r}."
        )
    with _shared_store():
        rows = []
        for m in grid:
            lo, hi = _sd_ci(
                beta,
                sig,
                num_pre,
                num_post,
                lv,
                float(m),
                alpha,
                method,
                grid_lb,
                grid_ub,
                grid_points,
                refine,
                lf_sims,
                seed,
            )
            rows.append({"m": float(m), "lb": lo, "ub": hi, "method": method, "delta": "DeltaSD"})
    return pd.DataFrame(rows)


def _sd_ci(
    beta: np.ndarray,
    sig: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    m: float,
    alpha: float,
    method: str,
    grid_lb: float | None,
    grid_ub: float | None,
    grid_points: int,
    refine: bool,
    lf_sims: int,
    seed: int,
) -> tuple[float, float]:
    if method == "FLCI":
        res = flci(beta, sig, num_pre, num_post, m, lv, alpha)
        return res.lb, res.ub
    kappa = alpha / 10
    a = _a_sd(num_pre, num_post)
    d = np.full(a.shape[0], m)
    flci_info = None
    if method == "C-F":
        f = flci(beta, sig, num_pre, num_post, m, lv, kappa)
        flci_info = {"vec": f.vec, "halflength": f.halflength}
        lb = f.lb if grid_lb is None else float(grid_lb)
        ub = f.ub if grid_ub is None else float(grid_ub)
        widen = False
    else:
        id_lb, id_ub = _identified_set(a, d, np.zeros(beta.size), lv, num_pre)
        sd_t = _sd_theta(sig, lv, num_pre)
        lb = id_lb - 20 * sd_t if grid_lb is None else float(grid_lb)
        ub = id_ub + 20 * sd_t if grid_ub is None else float(grid_ub)
        widen = grid_lb is None and grid_ub is None
    flag = {"C-F": "FLCI", "C-LF": "LF", "Conditional": "ARP"}[method]
    piece = _make_piece(
        beta,
        sig,
        a,
        d,
        num_pre,
        lv,
        alpha,
        flag,
        kappa,
        lf_sims,
        np.random.default_rng(seed),
        flci_info=flci_info,
    )
    return _invert([piece], lb, ub, grid_points, refine, widen, float(lv @ beta[num_pre:]))


def breakdown_value(
    betahat: Any,
    sigma: Any,
    num_pre: int,
    num_post: int,
    *,
    restriction: Literal["relative_magnitude", "smoothness"] = "relative_magnitude",
    l_vec: Any = None,
    alpha: float = 0.05,
    method: RMMethod | SDMethod | None = None,
    grid: Any = None,
    null: float = 0.0,
    tol: float | None = None,
    **options: Any,
) -> float:
    """Breakdown value: the smallest Mbar (or M) at which the robust CI contains ``null``.

    RR Section 5 ("breakdown value"): how large a violation of parallel trends must be
    allowed before the conclusion (here: theta != ``null``) is overturned. Computed by
    scanning ``grid`` (default ``Mbar`` in 0..5 step 0.25, or ``M`` in 0..(2 x the
    default smoothness grid end)) for the first value whose robust CI contains ``null``
    and bisecting between that value and the previous one down to ``tol``. The search
    assumes what the method guarantees in population: the robust set grows with M. It
    returns 0 if the original CI already contains ``null`` and ``inf`` if no value on the
    grid breaks the conclusion.
    """
    beta, sig, lv = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    if restriction == "relative_magnitude":
        # sensitivity_rm accepts a subset of the methods and rejects "FLCI"/"C-F" at run time
        rm_method = cast(RMMethod, method or "C-LF")
        default = np.arange(0, 5.0001, 0.25)

        def ci(mm: float) -> tuple[float, float]:
            t = sensitivity_rm(
                beta, sig, num_pre, num_post, [mm], lv, alpha, method=rm_method, **options
            )
            return float(t["lb"].iloc[0]), float(t["ub"].iloc[0])

    elif restriction == "smoothness":
        sd_method: SDMethod = method or "FLCI"
        top = delta_sd_upper_bound_mpre(beta, sig, num_pre) if num_pre > 1 else math.sqrt(sig[0, 0])
        default = np.linspace(0, 2 * top, 11)

        def ci(mm: float) -> tuple[float, float]:
            t = sensitivity_sd(
                beta, sig, num_pre, num_post, [mm], lv, alpha, method=sd_method, **options
            )
            return float(t["lb"].iloc[0]), float(t["ub"].iloc[0])

    else:
        raise HonestDiDError(
            f"restriction must be 'relative_magnitude' or 'smoothness'; received {restriction!r}."
        )
    values = np.sort(_check_grid(default if grid is None else grid, "grid"))
    lo0, hi0 = original_ci(beta, sig, num_pre, num_post, lv, alpha)
    if lo0 <= null <= hi0:
        return 0.0
    with _shared_store():
        return _scan_breakdown(ci, values, null, tol)


def _scan_breakdown(ci: Any, values: np.ndarray, null: float, tol: float | None) -> float:
    """First value of the sorted grid ``values`` whose CI ``ci(value)`` covers ``null``,
    bisected against the previous grid value down to ``tol`` (see :func:`breakdown_value`).
    """

    def covers(mm: float) -> bool:
        lo, hi = ci(mm)
        return bool(not np.isnan(lo) and lo <= null <= hi)

    prev = None
    for v in values:
        if covers(float(v)):
            if prev is None:
                return float(v)
            lo_m, hi_m = prev, float(v)
            tol_ = tol if tol is not None else 1e-3 * max(hi_m, 1e-12)
            while hi_m - lo_m > tol_:
                mid = (lo_m + hi_m) / 2
                if covers(mid):
                    hi_m = mid
                else:
                    lo_m = mid
            return hi_m
        prev = float(v)
    return math.inf


# ---------------------------------------------------------------------------- from a result
@dataclass(frozen=True)
class HonestResult:
    """Sensitivity analysis of one event study (RR 2023).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per M (``m``), with the robust ``lb``, ``ub``, ``method`` and ``delta``.
    breakdown : float
        Smallest M at which the robust CI contains 0 (``inf`` if none on the search grid).
    original_ci : tuple of float
        The conventional CI of theta.
    estimate : float
        ``l'betahat_post``.
    restriction, method, target : str
        Settings used.
    l_vec : numpy.ndarray
        Weights defining theta.
    event_times : tuple
        (pre event times, post event times) read from the result.
    alpha : float
    """

    table: pd.DataFrame
    breakdown: float
    original_ci: tuple[float, float]
    estimate: float
    restriction: str
    method: str
    target: str
    l_vec: np.ndarray
    event_times: tuple[tuple[int, ...], tuple[int, ...]]
    alpha: float

    def tidy(self) -> pd.DataFrame:
        """Broom-style table: the original CI then one row per M."""
        first = pd.DataFrame(
            [
                {
                    "restriction": "none",
                    "method": "Original",
                    "m": math.nan,
                    "conf_low": self.original_ci[0],
                    "conf_high": self.original_ci[1],
                }
            ]
        )
        rest = pd.DataFrame(
            {
                "restriction": self.restriction,
                "method": self.table["method"].to_numpy(),
                "m": self.table["m"].to_numpy(float),
                "conf_low": self.table["lb"].to_numpy(float),
                "conf_high": self.table["ub"].to_numpy(float),
            }
        )
        out = pd.concat([first, rest], ignore_index=True)
        out.insert(0, "term", f"theta_{self.target}")
        out["estimate"] = self.estimate
        out["breakdown"] = self.breakdown
        return out


def _event_terms(result: Any) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    terms = result.terms
    vcov = getattr(result, "vcov", None)
    if vcov is None:
        raise HonestDiDError(
            f"The {result.estimator!r} result on {result.outcome!r} has no vcov; HonestDiD needs the "
            "joint covariance of the event-study coefficients. Refit with an estimator that stores vcov."
        )
    vcov = np.asarray(vcov, dtype=float)
    names = terms["term"].astype(str).tolist()
    pos, times = [], []
    for i, name in enumerate(names):
        if name.startswith("event:"):
            try:
                e = int(float(name.split(":", 1)[1]))
            except ValueError:
                continue
            est, se = float(terms["estimate"].iloc[i]), float(terms["se"].iloc[i])
            if e == -1 and est == 0 and (not np.isfinite(se) or se == 0):
                continue  # the normalised reference period kept as a row
            pos.append(i)
            times.append(e)
    if vcov.shape != (len(names), len(names)):
        raise HonestDiDError(f"vcov has shape {vcov.shape} but the result has {len(names)} terms.")
    order = np.argsort(times)
    pos = [pos[o] for o in order]
    times = [times[o] for o in order]
    pre = [t for t in times if t < 0]
    post = [t for t in times if t >= 0]
    if not pre or not post:
        raise HonestDiDError(
            f"Need event:E terms both before (E < 0) and after (E >= 0) treatment; found pre={pre}, post={post}."
        )
    if -1 in pre:
        raise HonestDiDError(
            "event:-1 has an estimate: HonestDiD needs the reference period to be the last pre-period "
            "(E = -1, normalised to 0 and absent from the terms). Re-estimate with reference period -1."
        )
    want_pre = list(range(min(pre), -1))
    want_post = list(range(0, max(post) + 1))
    missing = sorted(set(want_pre + want_post) - set(times))
    if missing:
        raise HonestDiDError(
            f"Event times {missing} are missing between {min(pre)} and {max(post)}; the restrictions "
            "compare consecutive periods, so the event study must have every event time (bin or trim it)."
        )
    beta = terms["estimate"].to_numpy(float)[pos]
    sig = vcov[np.ix_(pos, pos)]
    return beta, sig, pre, post


def honest_did(
    result: Any,
    *,
    type: Literal["relative_magnitude", "smoothness"] = "relative_magnitude",  # noqa: A002
    grid: Any = None,
    target: Literal["first", "average"] | Any = "first",
    alpha: float = 0.05,
    method: RMMethod | SDMethod | None = None,
    **options: Any,
) -> HonestResult:
    """HonestDiD sensitivity analysis of an event-study :class:`EstimationResult`.

    Reads the ``event:E`` terms (``E < 0`` pre-periods, ``E >= 0`` post-periods, the
    reference period ``-1`` absent) and their block of ``vcov``, then runs
    :func:`sensitivity_rm` (``type="relative_magnitude"``, default method "C-LF", default
    grid Mbar = 0, 0.5, ..., 2) or :func:`sensitivity_sd` (``type="smoothness"``, default
    "FLCI" and R's default M grid), plus the conventional CI and the breakdown value.

    Parameters
    ----------
    result : EstimationResult
        With ``event:E`` terms and ``vcov``.
    type : {"relative_magnitude", "smoothness"}
        The restriction Delta^RM(Mbar) or Delta^SD(M).
    grid : sequence of float, optional
        Values of Mbar or M.
    target : {"first", "average"} or array_like
        theta = the first post-period effect, the average over post-periods, or explicit
        weights ``l`` on the post-periods. Any length of post window works: above a few
        post-periods the ARP tests use the LP path (module docstring), whose cost grows
        with the number of distinct optimal dual bases rather than combinatorially;
        "average" costs about 1.5-3x "first" (e.g. 6 pre x 11 post, defaults, relative
        magnitudes: ~1 s for "first", ~2-3 s for "average"; smoothness/FLCI: < 1 s).
    alpha : float
        One minus the coverage.
    method : str, optional
        Confidence-set method (see :func:`sensitivity_rm`, :func:`sensitivity_sd`).
    **options
        Passed on (``grid_points``, ``refine``, ``lf_sims``, ``seed``...).
    """
    beta, sig, pre, post = _event_terms(result)
    num_pre, num_post = len(pre), len(post)
    if isinstance(target, str):
        if target == "first":
            lv = np.eye(num_post)[0]
        elif target == "average":
            lv = np.full(num_post, 1.0 / num_post)
        else:
            raise HonestDiDError(
                f"target must be 'first', 'average' or a weight vector; received {target!r}."
            )
        target_name = target
    else:
        lv = np.asarray(target, dtype=float)
        target_name = "custom"
    with _shared_store():  # the table and the breakdown search share their LPs
        if type == "relative_magnitude":
            meth: RMMethod | SDMethod = method or "C-LF"
            table = sensitivity_rm(
                beta,
                sig,
                num_pre,
                num_post,
                np.arange(0, 2.0001, 0.5) if grid is None else grid,
                lv,
                alpha,
                # sensitivity_rm accepts a subset of the methods; it rejects "FLCI"/"C-F" at run time
                method=cast(RMMethod, meth),
                **options,
            )
            table = table.rename(columns={"mbar": "m"})
        elif type == "smoothness":
            meth = method or "FLCI"
            table = sensitivity_sd(
                beta, sig, num_pre, num_post, grid, lv, alpha, method=meth, **options
            )
        else:
            raise HonestDiDError(
                f"type must be 'relative_magnitude' or 'smoothness'; received {type!r}."
            )
        bd = breakdown_value(
            beta,
            sig,
            num_pre,
            num_post,
            restriction=type,
            l_vec=lv,
            alpha=alpha,
            method=meth,
            **options,
        )
    return HonestResult(
        table=table,
        breakdown=bd,
        original_ci=original_ci(beta, sig, num_pre, num_post, lv, alpha),
        estimate=float(lv @ beta[num_pre:]),
        restriction=type,
        method=meth,
        target=target_name,
        l_vec=lv,
        event_times=(tuple(pre), tuple(post)),
        alpha=alpha,
    )
