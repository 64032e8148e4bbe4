"""The t reference of the spillover terms: the CR2 t ratio's law under the working model.

Bell & McCaffrey (2002) give a CR2 t statistic the Student reference with Satterthwaite
degrees of freedom, the moments of ``sum_g (c_g'u)^2`` under their working model
(independent homoskedastic normal errors ``u``; :func:`._bjs.satterthwaite_df`). Those df
treat the variance as independent of the estimate. With BJS's leave-out ``tau~`` and
CR2's leverage-corrected residuals a cluster's score keeps its own shock, which is also
the estimate's, so the two move together and the t ratio is lighter-tailed than that t
(at times than the normal): on the Monte Carlo worlds of ``benchmarks/`` (sessions 45-48) t(BM df) rejected a true
zero at 0.25-3.7% at the 5% level with correct SEs. Under the same working model the t
ratio of a piece is ``a'u / ||C'u||`` (``a`` the estimate's implied weights on the long
table's rows, ``C`` its Bell-McCaffrey vectors), and its exact law keeps that dependence
(Imhof 1961 for a fixed ``C``; ``benchmarks/mc_spillover_exact_t.py``).

The spillover pieces choose their ``tau~`` model from the data (the one with the smallest
variance, :func:`.spillover._tighter_aux`), so their ``|t|`` is the largest of the models'
``|t|``: one model's exact law under-states it (6.6% null rejection on referee L's worlds,
session 48). The law here makes the same choice in every draw: for each piece and model
``(a_p'u, C_pk'u)`` are jointly normal with covariance the Gram of ``[a_p, C_pk]`` over
the long table the pieces share; a draw keeps, per piece, the model with the smallest
``||C_pk'u||^2`` (the first on a tie, as the fit does), and a term combining pieces with
weights ``w_p`` reads ``|sum_p w_p a_p'u| / ||sum_p w_p C_{p,k_p}'u||``. Its ``1 - alpha``
quantile is the exact critical value at the fit's level (5.1% null rejection on those
worlds; 1,000 worlds, ``benchmarks/mc_spillover_exact_sel.py``).

The terms table keeps its ``df`` column: the reported df is the Student df whose
``1 - alpha/2`` quantile equals that critical value, so intervals and p-values at the
fit's level are the exact law's, and every consumer of ``df`` (Fieller's share set,
tables, ``conf_int``) reads it unchanged. Where the critical value is below the normal's
the df are infinite: the normal reference, conservative there (``info["t_reference_terms"]``
names the terms whose df, infinite ones included, are this reference's, so that a claim's
verdict reads them, :func:`zoneimpact.results.verdict_df`). At other levels the t with
those df approximates the law. The displacement share's df are its delta-method
linearisation's at the estimated share; its zero test (the losses' t) and Fieller set
read them, an approximation away from that share.

Written by hand: no library computes the law of a CR2 t ratio, still less with a
data-driven choice of the auxiliary model inside it. The draws are fixed (a seeded
generator of their own, independent of the fit's ``rng``), through the Gram's symmetric
root with the clusters in an order the data fix (their scores' covariance with the
estimate), so the reference does not depend on the order or labels of units and clusters
(bar clusters whose keys tie to 6 digits, whose order the labels then decide).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: draws of the working model's law; the 95% quantile's Monte Carlo SE is then about 0.2
#: points of rejection rate (binomial SE of a 5% tail over 10,000 draws)
N_DRAWS = 10_000
#: the draws' own seed (fixed: the reference is part of the estimate's inference)
SEED = 20261206
#: above this many columns (pieces x models x clusters) the draws cost seconds, and with
#: that many clusters the Satterthwaite df are large and the two references agree closely;
#: the terms then keep the Satterthwaite df
MAX_COLUMNS = 600


@dataclass(frozen=True)
class PieceVectors:
    """One piece's ``a`` (implied weights of its mean on the long table's rows, on the
    working model's scale) and Bell-McCaffrey vectors under each ``tau~`` model it scores
    (rows x clusters each), ``chosen`` the one its scores use."""

    a: np.ndarray
    models: tuple[np.ndarray, ...]
    chosen: int = 0

    @property
    def C(self) -> np.ndarray:
        """The vectors of the model in use."""
        return self.models[self.chosen]


def df_matching(c: Any, alpha: float) -> Any:
    """The Student df whose ``1 - alpha/2`` quantile is ``c`` (a number or an array, as
    given): infinite where ``c`` is at or below the normal's (a lighter tail than any t),
    NaN where it is not finite. Bisection on ``log df`` over ``[-8, 18]``, every ``c`` at
    once (45 halvings: ``log df`` to 1e-12)."""
    cs = np.atleast_1d(np.asarray(c, dtype=float))
    p = 1.0 - alpha / 2.0
    lo_x, hi_x = -8.0, 18.0  # log df: 3e-4 to 6.6e7
    out = np.full(cs.shape, np.nan)
    fin = np.isfinite(cs)
    light = cs <= max(float(stats.t.ppf(p, np.exp(hi_x))), stats.norm.ppf(p) * (1 + 1e-12))
    out[fin & light] = np.inf
    out[fin & (cs >= stats.t.ppf(p, np.exp(lo_x)))] = np.exp(lo_x)
    todo = fin & np.isnan(out)
    lo, hi = np.full(todo.sum(), lo_x), np.full(todo.sum(), hi_x)
    for _ in range(45):
        mid = (lo + hi) / 2
        # the quantile falls as the df grow: above the target, the df are too few
        few = stats.t.ppf(p, np.exp(mid)) > cs[todo]
        lo, hi = np.where(few, mid, lo), np.where(few, hi, mid)
    out[todo] = np.exp((lo + hi) / 2)
    return float(out[0]) if np.ndim(c) == 0 else out


def reference_note(terms: Sequence[str], alpha: float) -> str:
    """``info["t_reference"]``: which terms take the exact reference, and at what level."""
    return (
        f"exact law of the CR2 t ratio under the Bell-McCaffrey working model, with the "
        f"tau~ model chosen in each of {N_DRAWS:,} draws; df matched to its "
        f"{1 - alpha:.4g} critical value: {', '.join(terms)} (other terms: Satterthwaite df)"
    )


def _distinct(models: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The models with different vectors (to 1e-10 of their size), the first of equal
    ones kept: a model equal to another changes no draw's choice (weighted fits with
    constant weights, whose weighted split is the equal split)."""
    out: list[np.ndarray] = []
    for C in models:
        size = float(np.max(np.abs(C))) if C.size else 0.0
        if not any(np.max(np.abs(C - D), initial=0.0) <= 1e-10 * size for D in out):
            out.append(C)
    return out


def _cluster_order(gram: np.ndarray, anchors: Sequence[int], spans: Sequence[slice]) -> np.ndarray:
    """The clusters in an order read from the data, not their labels: by each block's
    covariance of the estimate with the cluster's score, the score's variance, and its
    covariance with all scores, each on the block's scale and rounded to 6 digits (so
    that rounding does not decide between equal values; a residual's score can be
    orthogonal to the estimate); equal keys keep the given order."""
    keys = []
    for ja, span in zip(anchors, spans, strict=True):
        block = gram[span, span]
        size = float(np.max(np.diag(block))) or 1.0
        cross = gram[ja, span] / np.sqrt(size * max(float(gram[ja, ja]), 1e-300))
        keys += [cross, np.diag(block) / size, block.sum(axis=1) / (size * len(block))]
    return np.lexsort(np.round(np.column_stack(keys), 6).T[::-1])


#: the last normals drawn (one array, read-only), reused by the next fit that needs no more
_NORMALS: dict[int, np.ndarray] = {}


def _normals(n_draws: int, cols: int) -> np.ndarray:
    """The module's seeded standard normals, ``n_draws x cols``, drawn column after column:
    the first ``c`` columns are the same whatever ``cols``, so groups of terms (and fits)
    share one generation and each group's draws still depend on its own size only."""
    q = _NORMALS.get(n_draws)
    if q is None or q.shape[1] < cols:
        q = np.random.default_rng(SEED).standard_normal((cols, n_draws)).T
        q.flags.writeable = False
        _NORMALS.clear()
        _NORMALS[n_draws] = q
    return q[:, :cols]


def _draws(gram: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rows from ``N(0, gram)`` as ``q R`` with ``R`` the symmetric root of ``gram`` (unique,
    unlike eigenvectors, which repeated eigenvalues leave undetermined; eigenvalues below
    1e-12 of the largest taken as zeros) and ``q`` the first columns of :func:`_normals`."""
    lam, V = np.linalg.eigh((gram + gram.T) / 2)
    # eigenvalues at rounding level are zeros (their roots would carry the rounding, 1e-8)
    lam = np.where(lam > 1e-12 * max(float(lam[-1]), 0.0), lam, 0.0)
    R = (V * np.sqrt(lam)) @ V.T
    return np.asarray(q[:, : gram.shape[0]] @ R)


def reference_dfs(
    vectors: Mapping[str, PieceVectors | None],
    terms: Sequence[Mapping[str, float] | None],
    alpha: float,
    n_draws: int = N_DRAWS,
) -> list[float | None]:
    """Per term (``{piece: weight}``; None for a term not estimated) the df of its exact
    reference at level ``alpha`` (module notes), or None where a piece has no vectors
    (CR2 off, panels too large for the vectors), the pieces' columns exceed
    ``MAX_COLUMNS`` (estimates and every model's vectors), or the term's estimate has no
    variance under the working model.
    Terms over the same pieces share one set of draws; a term's df do not depend on the
    pieces it leaves out."""
    out: list[float | None] = [None] * len(terms)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, w in enumerate(terms):
        if w and all(vectors.get(k) is not None for k in w) and any(v != 0 for v in w.values()):
            # the pieces in the mapping's order: a term's draws depend on its own pieces only
            groups.setdefault(tuple(k for k in vectors if k in w), []).append(i)
    vec = {k: v for k, v in vectors.items() if v is not None}

    def width(g: tuple[str, ...]) -> int:  # models counted before dropping repeats
        return sum(1 + len(vec[k].models) * vec[k].C.shape[1] for k in g)

    groups = {g: idx for g, idx in groups.items() if width(g) <= MAX_COLUMNS}
    pieces = [k for k in vec if any(k in g for g in groups)]
    if not pieces:
        return out
    models = {k: _distinct(vec[k].models) for k in pieces}
    X = np.hstack([np.column_stack([vec[k].a, *models[k]]) for k in pieces])
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if not big > 0 or not np.isfinite(big):
        return out
    # one Gram for every group (a group's is its block): the t ratio does not depend on
    # the scale, and the Gram of X / max|X| cannot overflow
    X = X / big
    gram = X.T @ X
    G = vec[pieces[0]].C.shape[1]
    start = dict(
        zip(pieces, np.cumsum([0] + [1 + len(models[k]) * G for k in pieces]), strict=False)
    )
    q = _normals(n_draws, max(width(g) for g in groups))
    crit = np.full(len(terms), np.nan)
    for g, idx in groups.items():
        take = np.concatenate([np.arange(start[k], start[k] + 1 + len(models[k]) * G) for k in g])
        n_models = {k: len(models[k]) for k in g}
        block = gram[np.ix_(take, take)]
        crit[idx] = _group_critical_values(
            block, n_models, G, [terms[i] or {} for i in idx], alpha, q
        )
    dfs = df_matching(crit, alpha)  # all at once: the bisection's t quantiles are vectorised
    return [float(d) if np.isfinite(c) else None for c, d in zip(crit, dfs, strict=True)]


def _group_critical_values(
    gram: np.ndarray,
    n_models: Mapping[str, int],
    G: int,
    terms: Sequence[Mapping[str, float]],
    alpha: float,
    q: np.ndarray,
) -> np.ndarray:
    """The exact critical values (NaN: none) of terms over the same pieces, from one set of
    draws of their estimates and Bell-McCaffrey scores: ``gram`` of their columns (per
    piece ``a``, then ``n_models`` blocks of ``G`` clusters), ``q`` from :func:`_normals`."""
    where: dict[str, tuple[int, list[slice]]] = {}
    j = 0
    for k, m in n_models.items():
        where[k] = (j, [slice(j + 1 + i * G, j + 1 + (i + 1) * G) for i in range(m)])
        j += 1 + m * G
    # the draws in a cluster order the data fix, so that relabelling clusters (or units)
    # leaves every draw's t ratio as it was (module notes)
    order = _cluster_order(gram, [where[k][0] for k in where], [where[k][1][0] for k in where])
    perm = np.arange(j)
    for _, spans in where.values():
        for sp in spans:
            perm[sp] = sp.start + order
    gram = gram[np.ix_(perm, perm)]
    Z = _draws(gram, q)
    err, spread = {}, {}
    for k, (ja, spans) in where.items():
        err[k] = Z[:, ja]
        blocks = [Z[:, sp] for sp in spans]
        pick = np.argmin(np.column_stack([np.einsum("bg,bg->b", b, b) for b in blocks]), axis=1)
        chosen = blocks[0].copy()  # the first model on a tie, as the fit
        for m in range(1, len(blocks)):
            chosen[pick == m] = blocks[m][pick == m]
        spread[k] = chosen
    crit = np.full(len(terms), np.nan)
    for i, w in enumerate(terms):
        var_e = sum(
            wa * wb * gram[where[a][0], where[b][0]] for a, wa in w.items() for b, wb in w.items()
        )
        if not var_e > 1e-20 * float(np.max(np.diag(gram))):
            continue
        e = sum(wk * err[k] for k, wk in w.items())
        s = sum(wk * spread[k] for k, wk in w.items())
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.abs(e) / np.sqrt(np.einsum("bg,bg->b", s, s))
        crit[i] = np.quantile(np.where(np.isnan(t), 0.0, t), 1.0 - alpha)
    return crit
