"""The t reference of the spillover terms: the CR2 t ratio's law under the working model.

Bell & McCaffrey (2002) give a CR2 t statistic the Student reference with Satterthwaite
degrees of freedom, the moments of ``sum_g (c_g'u)^2`` under their working model
(independent homoskedastic normal errors ``u``; :func:`._bjs.satterthwaite_df`). Those df
treat the variance as independent of the estimate. With BJS's leave-out ``tau~`` and
CR2's leverage-corrected residuals a cluster's score keeps its own shock, which is also
the estimate's, so the two move together and the t ratio is lighter-tailed than any t:
on the Monte Carlo worlds of ``benchmarks/`` (sessions 45-48) t(BM df) rejected a true
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
``1 - alpha/2`` quantile equals that critical value (infinite where it is below the
normal's), so intervals and p-values at the fit's level are the exact law's, and every
consumer of ``df`` (Fieller's share set, tables, ``conf_int``) reads it unchanged. At
other levels the t with those df approximates the law.

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
from typing import cast

import numpy as np
from scipy import optimize, stats

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


def df_matching(c: float, alpha: float) -> float:
    """The Student df whose ``1 - alpha/2`` quantile is ``c``; infinite where ``c`` is at
    or below the normal's (a lighter tail than any t)."""
    p = 1.0 - alpha / 2.0
    if not np.isfinite(c):
        return np.nan
    if c <= stats.norm.ppf(p) * (1 + 1e-12):
        return np.inf
    lo, hi = -8.0, 18.0  # log df: 3e-4 to 6.6e7
    if stats.t.ppf(p, np.exp(hi)) >= c:
        return np.inf
    if stats.t.ppf(p, np.exp(lo)) <= c:
        return float(np.exp(lo))
    root = optimize.brentq(lambda x: stats.t.ppf(p, np.exp(x)) - c, lo, hi, xtol=1e-10)
    return float(np.exp(root))


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


def _draws(gram: np.ndarray, n_draws: int) -> np.ndarray:
    """``n_draws`` rows from ``N(0, gram)`` as ``q R`` with ``R`` the symmetric root of
    ``gram`` (unique, unlike eigenvectors, which repeated eigenvalues leave undetermined;
    eigenvalues below 1e-12 of the largest taken as zeros) and ``q`` the module's seeded
    standard normals."""
    lam, V = np.linalg.eigh((gram + gram.T) / 2)
    # eigenvalues at rounding level are zeros (their roots would carry the rounding, 1e-8)
    lam = np.where(lam > 1e-12 * max(float(lam[-1]), 0.0), lam, 0.0)
    R = (V * np.sqrt(lam)) @ V.T
    q = np.random.default_rng(SEED).standard_normal((n_draws, gram.shape[0]))
    return np.asarray(q @ R)


def reference_dfs(
    vectors: Mapping[str, PieceVectors | None],
    terms: Sequence[Mapping[str, float] | None],
    alpha: float,
    n_draws: int = N_DRAWS,
) -> list[float | None]:
    """Per term (``{piece: weight}``; None for a term not estimated) the df of its exact
    reference at level ``alpha`` (module notes), or None where a piece has no vectors
    (CR2 off, panels too large for the vectors), the pieces' columns exceed
    ``MAX_COLUMNS``, or the term's estimate has no variance under the working model.
    Terms over the same pieces share one set of draws; a term's df do not depend on the
    pieces it leaves out."""
    out: list[float | None] = [None] * len(terms)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, w in enumerate(terms):
        if w and all(vectors.get(k) is not None for k in w) and any(v != 0 for v in w.values()):
            # the pieces in the mapping's order: a term's draws depend on its own pieces only
            groups.setdefault(tuple(k for k in vectors if k in w), []).append(i)
    for pieces, idx in groups.items():
        vec = {k: cast(PieceVectors, vectors[k]) for k in pieces}
        dfs = _group_dfs(vec, [terms[i] or {} for i in idx], alpha, n_draws)
        for i, df in zip(idx, dfs, strict=True):
            out[i] = df
    return out


def _group_dfs(
    vec: Mapping[str, PieceVectors],
    terms: Sequence[Mapping[str, float]],
    alpha: float,
    n_draws: int,
) -> list[float | None]:
    """:func:`reference_dfs` for terms over the same pieces ``vec``, from one set of draws
    of their estimates and Bell-McCaffrey scores."""
    out: list[float | None] = [None] * len(terms)
    models = {k: _distinct(v.models) for k, v in vec.items()}
    G = next(iter(vec.values())).models[0].shape[1]
    X = np.hstack([np.column_stack([v.a, *models[k]]) for k, v in vec.items()])
    if X.shape[1] > MAX_COLUMNS:
        return out
    X = X[(X != 0).any(axis=1)]
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if not big > 0 or not np.isfinite(big):
        return out
    X = X / big  # the t ratio does not depend on the scale, and the Gram then cannot overflow
    where: dict[str, tuple[int, list[slice]]] = {}
    j = 0
    for k in vec:
        where[k] = (j, [slice(j + 1 + m * G, j + 1 + (m + 1) * G) for m in range(len(models[k]))])
        j += 1 + len(models[k]) * G
    # the draws in a cluster order the data fix, so that relabelling clusters (or units)
    # leaves every draw's t ratio as it was (module notes)
    gram = X.T @ X
    order = _cluster_order(gram, [where[k][0] for k in vec], [where[k][1][0] for k in vec])
    perm = np.arange(j)
    for _, spans in where.values():
        for sp in spans:
            perm[sp] = sp.start + order
    gram = gram[np.ix_(perm, perm)]
    Z = _draws(gram, n_draws)
    err, spread = {}, {}
    rows = np.arange(n_draws)
    for k in vec:
        ja, spans = where[k]
        err[k] = Z[:, ja]
        S = np.stack([Z[:, s] for s in spans], axis=1)  # draws x models x clusters
        pick = np.argmin(np.einsum("bkg,bkg->bk", S, S), axis=1)  # first on a tie
        spread[k] = S[rows, pick]
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
        t = np.where(np.isnan(t), 0.0, t)
        out[i] = df_matching(float(np.quantile(t, 1.0 - alpha)), alpha)
    return out
