r"""Wild cluster restricted bootstrap-t for the spillover decomposition (imputation base).

``SpilloverResult.with_inference("wild")``. With few clusters (the regions of a zone
programme) a t reference distribution can be off; the wild cluster bootstrap with the
null imposed (WCR: Cameron, Gelbach & Miller 2008, "Bootstrap-based improvements for
inference with clustered errors", REStat 90(3); Roodman, MacKinnon, Nielsen & Webb 2019,
"Fast and wild", Stata Journal 19(1), section 3; MacKinnon, Nielsen & Webb 2023, J.
Econometrics 232(2)) takes its critical values from draws of the estimator redone on
outcomes generated under the null.

**The bootstrap world.** One regression for every row any piece uses, the DiD regression
that WCR is built for (Cameron, Gelbach & Miller 2008; MacKinnon & Webb 2017, "Wild
bootstrap inference for wildly different cluster sizes", J. Applied Econometrics 32(2)):
unit and period effects, the covariate-by-period terms and one effect per piece (direct,
each spillover ring, the spillover onto zone units) on that piece's targets,

.. math:: Y_{it} = \alpha_i + \lambda_t + X_{it}'\beta + \sum_p \delta_p D^p_{it} + e_{it}.

Every term of the decomposition is a linear function :math:`r'\delta` of the pieces'
effects (totals and the net effect weight them by their numbers of targets), so the null
:math:`r'\delta = \theta_0` is imposed by restricted least squares: residuals
:math:`\tilde e = \hat e + h\,(r'\hat\delta - \theta_0)/q` with :math:`h = X A^{-1} r`,
:math:`q = r'A^{-1}r`, :math:`A = X'X`. A draw multiplies each cluster's :math:`\tilde e` by
one weight :math:`v_g` (Rademacher; Webb's six points below 12 clusters), and every piece's
BJS steps 1-2 and cluster scores (same leave-out and CR2 rules as the fit) are redone on
:math:`Y^* = Y - \tilde e + v \odot \tilde e`, giving
:math:`t^* = (\hat\theta^* - \theta_0)/\mathrm{se}^*`. The p-value is the share of
:math:`|t^*|` at least :math:`|t|`; the interval is the set of :math:`\theta_0` not rejected
(test inversion, Roodman et al. 2019, section 3.5): the connected part of that set which
contains the estimate, with an infinite end where the p-value stays above the level. One effect per piece rather than one
per cohort-by-event-time cell: cell effects absorb the regional shocks of the few regions
in a cell, which leaves the bootstrap residuals too small (measured: the saturated world
rejected a true null of no direct effect 13% of the time at 10% with 8 regions, this one
8%; ``benchmarks/RESULTS.md``).

**Calibration (``benchmarks/mc_spillover_wild.py``).** It is not the default. Rejection
of a true null at 5% (direct / spillover / net), 600 worlds per design (session 50): 7.5 /
7.2 / 5.5% with 8 regional clusters and 6.5 / 6.7 / 6.2% with 12, against 5.3 / 5.3 / 5.7%
and 5.5 / 6.2 / 6.0% for the default CR2 scores with their exact t reference
(:func:`zoneimpact.estimators.spillover.fit`); with 30 regions (200 worlds) 5.0 / 3.0 /
3.0% against 5.5 / 4.0 / 3.5%. With few clusters the spillover pieces' clean comparisons
sit in few regions, the case where wild bootstraps are known to fail (MacKinnon & Webb
2017). ``with_inference("wild")`` warns below 20 clusters.

**Cost.** Everything is linear in the outcomes and :math:`\tilde e` is :math:`\hat e` plus a
combination of the pieces' :math:`h_p`, so each piece's draws are computed once for
:math:`\hat e` and each :math:`h_p` (:func:`zoneimpact.estimators._bjs.outcome_shift`);
any term, any :math:`\theta_0`, and the displacement share are then sums of those draws.
The share :math:`s = -S/D`, with :math:`S` every loss outside the zones' own
unit-periods (net minus the direct total: the spillover total plus the spillover onto
zone units before their zone) and :math:`D` the direct total, is tested as the linear
restriction :math:`S + s_0 D = 0`, so its interval is a Fieller-type set; the part that
contains the estimate is reported (unbounded ends are infinite).

Why by hand: no library bootstraps the imputation estimator; R ``fwildclusterboot`` and
Stata ``boottest`` handle linear regressions (our TWFE path uses
:mod:`zoneimpact.inference.wild_cluster`), not a two-step imputation with leave-out scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.sparse.linalg import splu

from ..errors import EstimationError
from ..inference.wild_cluster import _exceed
from . import _bjs


@dataclass(frozen=True)
class WildPiece:
    """One imputation piece as the bootstrap needs it: steps 1-2 (with the factorisation),
    estimand weights and cells of its targets, its estimate and cluster scores on the data,
    and whether its scores use CR2."""

    name: str
    fit: _bjs.Imputed
    w: np.ndarray
    cells: np.ndarray
    estimate: float
    score: np.ndarray
    cr2: bool
    scale: np.ndarray | None = None  # tau~ proportional to it within a cell (_bjs.tau_tilde)


@dataclass(frozen=True)
class _World:
    """The bootstrap world's model on the long table: unrestricted residuals ``resid``
    and, per piece ``p``, ``h_p = X A^{-1} r_p`` (columns of ``h``; ``r_p`` picks the
    piece's effect), the estimated effect ``delta_hat_p`` (``value``) and
    ``Q[p, q] = r_p' A^{-1} r_q``. ``resid`` and ``h`` are zero on rows outside the model."""

    resid: np.ndarray
    h: np.ndarray
    value: np.ndarray
    Q: np.ndarray


def _world(long: _bjs.LongTable, pieces: Sequence[WildPiece]) -> _World:
    """Fit the bootstrap world's model (module notes) on the rows the pieces use."""
    n = len(long.y)
    rows = np.unique(np.concatenate([np.r_[p.fit.clean, p.fit.target] for p in pieces]))
    pos = np.full(n, -1)
    pos[rows] = np.arange(len(rows))
    uc, unit = np.unique(long.unit[rows], return_inverse=True)
    tc, time = np.unique(long.time[rows], return_inverse=True)
    Xr = long.X[rows]
    # a covariate-by-period column of a period no piece fits (too few clean units there,
    # spillover._without_thin_periods) is zero on these rows and would make the model
    # singular; it carries nothing, so it is left out
    Z = _bjs.design(unit, time, Xr[:, np.any(Xr != 0, axis=0)], len(uc), len(tc))
    ti = np.concatenate([pos[p.fit.target] for p in pieces])
    pi = np.concatenate([np.full(p.fit.target.size, k) for k, p in enumerate(pieces)])
    D = sparse.csr_matrix((np.ones(len(ti)), (ti, pi)), shape=(len(rows), len(pieces)))
    X = sparse.hstack([Z, D], format="csr")
    R = np.zeros((X.shape[1], len(pieces)))
    R[Z.shape[1] :] = np.eye(len(pieces))
    try:
        lu = splu((X.T @ X).tocsc())
        phi = lu.solve(np.asarray(X.T @ long.y[rows]))
        G = lu.solve(R)
    except RuntimeError as exc:
        raise EstimationError(
            "The wild bootstrap's model of the outcomes (unit, period and covariate terms "
            "plus one effect per piece) is singular."
        ) from exc
    if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(G))):
        raise EstimationError("The wild bootstrap's model of the outcomes is singular.")
    resid = np.zeros(n)
    resid[rows] = long.y[rows] - X @ phi
    h = np.zeros((n, len(pieces)))
    h[rows] = np.asarray(X @ G)
    return _World(resid, h, R.T @ phi, R.T @ G)


@dataclass(frozen=True)
class _Draws:
    """Per piece ``p`` and base residual ``j`` (0: ``resid``; 1 + q: ``h_q``), the draws'
    shift of the estimate (``E[p, j]``, B) and of the cluster scores (``S[p, j]``, B x G)."""

    E: np.ndarray
    S: np.ndarray


def _draws(
    pieces: Sequence[WildPiece],
    world: _World,
    cluster: np.ndarray,
    n_clusters: int,
    omega: np.ndarray,
    chunk: int = 250,
) -> _Draws:
    """Each piece redone on ``(v - 1) * e`` for every base residual ``e`` (module notes),
    ``chunk`` draws at a time so that memory stays at rows x ``chunk`` per piece."""
    B, P = omega.shape[0], len(pieces)
    bases = np.column_stack([world.resid, world.h])
    E = np.zeros((P, P + 1, B))
    S = np.zeros((P, P + 1, B, n_clusters))
    move = (omega - 1.0).T  # G x B
    for k, p in enumerate(pieces):
        c0, c1 = cluster[p.fit.clean], cluster[p.fit.target]
        roots = _bjs.cr2_parts(p.fit, c0)[1] if p.cr2 else None
        for j in range(P + 1):
            for b in range(0, B, chunk):
                m = move[:, b : b + chunk]
                D0 = m[c0] * bases[p.fit.clean, j][:, None]
                D1 = m[c1] * bases[p.fit.target, j][:, None]
                E[k, j, b : b + chunk], S[k, j, b : b + chunk] = _bjs.outcome_shift(
                    p.fit,
                    p.w,
                    p.cells,
                    cluster,
                    n_clusters,
                    D0,
                    D1,
                    cr2=p.cr2,
                    roots=roots,
                    scale=p.scale,
                )
    return _Draws(E, S)


class WildTest:
    """Bootstrap-t statistics of any linear combination ``c`` of the pieces' means
    (``c'mean = theta0``), from one set of draws."""

    def __init__(self, pieces: Sequence[WildPiece], world: _World, draws: _Draws) -> None:
        self.est = np.array([p.estimate for p in pieces])
        self.score = np.column_stack([p.score for p in pieces])  # G x P
        self.world = world
        self.draws = draws
        self._last: tuple[bytes, np.ndarray, np.ndarray] | None = None

    def _by_base(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The draws' shifts combined over pieces by ``c``, per base residual (``(P+1) x B``
        and ``(P+1) x B x G``). An interval's root search tests one ``c`` at many
        ``theta0``, which only reweight the base residuals: kept for the last ``c``."""
        key = np.ascontiguousarray(c, dtype=float).tobytes()
        if self._last is None or self._last[0] != key:
            D = self.draws
            self._last = (
                key,
                np.tensordot(c, D.E, axes=(0, 0)),
                np.tensordot(c, D.S, axes=(0, 0)),
            )
        return self._last[1], self._last[2]

    def statistics(self, c: np.ndarray, theta0: float) -> tuple[float, np.ndarray]:
        """``t`` on the data and the ``B`` draws of ``t*`` for ``c'mean = theta0``."""
        W = self.world
        q = float(c @ W.Q @ c)
        kappa = (float(c @ W.value) - theta0) / q if q > 0 else 0.0
        # base residual weights: 1 on resid, kappa * c on the h's
        b = np.concatenate([[1.0], kappa * c])
        E_c, S_c = self._by_base(c)
        est_star = c @ self.est + b @ E_c
        S_star = (self.score @ c)[None, :] + np.tensordot(b, S_c, axes=(0, 0))
        se_star = np.sqrt(np.einsum("bg,bg->b", S_star, S_star))
        se = float(np.sqrt(np.sum((self.score @ c) ** 2)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return (float(c @ self.est) - theta0) / se, (est_star - theta0) / se_star

    def p_value(self, c: np.ndarray, theta0: float) -> float:
        """Symmetric bootstrap p-value: the share of ``|t*|`` at least ``|t|`` (draws equal
        to it up to rounding count, as in :func:`zoneimpact.inference.wild_cluster._exceed`)."""
        t, t_star = self.statistics(c, theta0)
        ok = np.isfinite(t_star)
        if not ok.any() or not np.isfinite(t):
            return np.nan
        return _exceed(t_star[ok], t)


def _invert(excess: Callable[[float], float], center: float, scale: float) -> tuple[float, float]:
    """Ends of the interval ``{x: excess(x) >= 0}`` around ``center`` (bracketing by
    doubling steps of ``scale``, then Brent's method to 1e-8 of ``scale``); an end that
    is not reached within 1e6 scales is infinite."""
    ends = []
    for sign in (-1.0, 1.0):
        step = 2.0 * scale
        far = center + sign * step
        while excess(far) >= 0 and step <= 1e6 * scale:
            step *= 2.0
            far = center + sign * step
        if excess(far) >= 0:
            ends.append(sign * np.inf)
            continue
        ends.append(optimize.brentq(excess, center, far, xtol=1e-8 * scale))
    return min(ends), max(ends)


def wild_terms(
    long: _bjs.LongTable,
    pieces: Sequence[WildPiece],
    combos: Mapping[str, np.ndarray],
    share: tuple[np.ndarray, np.ndarray] | None,
    cluster: np.ndarray,
    n_clusters: int,
    omega: np.ndarray,
    alpha: float,
) -> dict[str, tuple[float, float, float]]:
    """WCR p-value (of ``term = 0``) and interval of every term in ``combos`` (name ->
    coefficients on the pieces' means), and of the displacement share when ``share`` gives
    the coefficients of its numerator's losses (net minus the direct total) and of the
    direct total.

    Returns
    -------
    dict
        name -> (p_value, ci_low, ci_high).
    """
    world = _world(long, pieces)
    test = WildTest(pieces, world, _draws(pieces, world, cluster, n_clusters, omega))
    out: dict[str, tuple[float, float, float]] = {}
    for name, c in combos.items():
        est = float(c @ test.est)
        se = float(np.sqrt(np.sum((test.score @ c) ** 2)))
        if not (np.isfinite(est) and se > 0):
            out[name] = (np.nan, np.nan, np.nan)
            continue

        def excess(theta0: float, c: np.ndarray = c) -> float:
            return test.p_value(c, theta0) - alpha

        out[name] = (test.p_value(c, 0.0), *_invert(excess, est, se))
    if share is not None:
        c_s, c_d = share
        s_tot, d_tot = float(c_s @ test.est), float(c_d @ test.est)
        s_hat = -s_tot / d_tot if d_tot != 0 else np.nan
        grad = -c_s / d_tot + (s_tot / d_tot**2) * c_d if d_tot != 0 else c_s * np.nan
        se = float(np.sqrt(np.sum((test.score @ grad) ** 2)))
        if np.isfinite(s_hat) and se > 0:

            def excess_share(s0: float) -> float:
                return test.p_value(c_s + s0 * c_d, 0.0) - alpha

            out["displacement_share"] = (
                test.p_value(c_s, 0.0),
                *_invert(excess_share, s_hat, se),
            )
        else:
            out["displacement_share"] = (np.nan, np.nan, np.nan)
    return out
