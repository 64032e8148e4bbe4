r"""Multiplier (wild) bootstrap of asymptotically linear estimators.

An estimator with influence function :math:`\psi_i` satisfies
:math:`\hat\theta - \theta = n^{-1} \sum_i \psi_i + o_p(n^{-1/2})`. The multiplier
bootstrap (Callaway & Sant'Anna 2021, Section 4.1 and Algorithm 1; Kline & Santos 2012)
perturbs that sum with i.i.d. weights :math:`V_i` of mean 0 and variance 1,

.. math:: \hat\theta^*_b - \hat\theta = n^{-1} \sum_i V_{ib} \psi_i ,

so each bootstrap draw is a row of the matrix product ``V @ psi / n``. With clusters the
influence function is first summed within cluster and one weight is drawn per cluster
(CS 2021, Remark 10; R ``did`` >= 2.2 ``mboot`` also uses cluster sums).

Standard errors follow R ``did::mboot``: the interquartile range of the draws divided by
``qnorm(.75) - qnorm(.25)`` (robust to a few wild draws), quantiles of type 1 (inverse
empirical CDF). The critical value of the uniform (sup-t) band is the type-1
``1 - alpha`` quantile over draws of ``max_k |draw_k| / se_k``.

Weights: Rademacher (+1/-1 with probability 1/2) by default, as R ``did`` does through
``BMisc::multiplier_bootstrap``; Mammen's two-point weights as in R ``DRDID::mboot_did``
on request.

Why by hand: no maintained Python library offers a chunked multiplier bootstrap of an
influence-function matrix with cluster sums and sup-t bands; the work is one matrix
product per chunk. Chunks get their own child generator through
:func:`zoneimpact.parallel.replicate`, so draws do not depend on ``n_jobs``.

Memory: the weights of a chunk are drawn and multiplied one block of 32,768 rows at a
time into a reused buffer, so a chunk of 100 draws needs 26 MB at any number of units (a
dense ``chunk_size x n`` weight matrix would need 400 MB at 500,000 units), and the
influence matrix is never copied. Up to 32,768 rows (units or clusters) the draws are
those of a single ``chunk_size x n`` Rademacher matrix filled from random bits in row-major
order; beyond, the bits of each row block come in turn from the chunk's stream.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ZoneImpactError
from ..parallel import as_generator, replicate

_IQR_NORMAL = float(stats.norm.ppf(0.75) - stats.norm.ppf(0.25))

__all__ = [
    "bootstrap_se",
    "cluster_sums",
    "multiplier_bootstrap",
    "multiplier_draws",
    "sup_t_critical",
]


def cluster_sums(influence: np.ndarray, cluster: Any) -> np.ndarray:
    """Sum the rows of an influence-function matrix within clusters.

    Parameters
    ----------
    influence : ndarray, shape (n, k)
    cluster : array-like of length n
        Cluster label of each row (any hashable values; NaN is not allowed).

    Returns
    -------
    ndarray, shape (n_clusters, k)
        Rows ordered by sorted cluster label.
    """
    labels = pd.Series(np.asarray(cluster))
    if labels.isna().any():
        raise ZoneImpactError(
            f"Cluster labels contain {int(labels.isna().sum())} missing value(s); every unit "
            "needs a cluster."
        )
    codes, _ = pd.factorize(labels, sort=True)
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    return _sums(np.asarray(influence, dtype=float).reshape(len(codes), -1), codes, n_clusters)


#: Rows of the influence matrix per block: a chunk's weights are drawn and multiplied one
#: block of rows at a time, so a running chunk holds ``chunk_size x _ROW_BLOCK`` doubles
#: (26 MB at 100 draws) whatever the number of units, and reads the influence matrix
#: once. A constant, not a tuning knob: the draws depend on it (with more rows than this
#: the weights are generated block by block), so it must not depend on the machine.
_ROW_BLOCK = 32_768


def min_clusters(labels: tuple[np.ndarray, ...]) -> int | None:
    """The cluster count a t reference reads: the clusters of one dimension or, clustered
    two ways, the smaller dimension's (Cameron, Gelbach & Miller 2011, "Robust inference
    with multiway clustering", JBES 29(2); fixest's default ``t(min(G) - 1)``); None
    without clusters (each unit its own)."""
    if not labels:
        return None
    return min(int(pd.Series(lab).nunique()) for lab in labels)


def _fill_weights(rng: np.random.Generator, out: np.ndarray, kind: str) -> float:
    """Fill ``out`` (C-contiguous) with multiplier weights divided by the returned scale."""
    if kind == "rademacher":
        # one random bit per weight: unpacking random bytes is ~5x faster than drawing
        # integers one by one; bit - 1/2 is +-1/2 in one pass straight into the float
        # buffer (no float temporary), and the returned scale 2 is exact in floating point
        nbits = out.size
        raw = rng.integers(0, 256, size=(nbits + 7) // 8, dtype=np.uint8)
        np.subtract(np.unpackbits(raw, count=nbits).reshape(out.shape), 0.5, out=out)
        return 2.0
    if kind == "mammen":
        # Mammen (1993): E V = 0, E V^2 = E V^3 = 1.
        s5 = np.sqrt(5.0)
        rng.random(out=out)
        low = out < (s5 + 1) / (2 * s5)
        out.fill((1 + s5) / 2)
        out[low] = (1 - s5) / 2
        return 1.0
    raise ZoneImpactError(f"Unknown bootstrap weights {kind!r}; use 'rademacher' or 'mammen'.")


def _sums(psi: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.empty((n_groups, psi.shape[1]))
    for j in range(psi.shape[1]):
        out[:, j] = np.bincount(codes, weights=psi[:, j], minlength=n_groups)
    return out


def multiplier_draws(
    influence: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator | int | None,
    cluster: Any = None,
    chunk_size: int | None = None,
    n_jobs: int = 1,
    weights: Literal["rademacher", "mammen"] = "rademacher",
) -> np.ndarray:
    r"""Bootstrap draws of :math:`\hat\theta^* - \hat\theta = n^{-1} \sum_i V_i \psi_i`.

    Parameters
    ----------
    influence : ndarray, shape (n, k)
        Influence function of ``k`` estimates, one row per unit (scaled so that the
        estimate minus its limit is the row mean). Read in place (any memory layout);
        never copied unless it is not float64.
    n_boot : int
        Number of draws.
    rng : Generator, int or None
        Parent generator; one child per chunk of ``chunk_size`` draws.
    cluster : array-like of length n, optional
        Cluster labels: weights are drawn per cluster and applied to cluster sums.
    chunk_size : int, optional
        Draws per chunk (default 100). Within a chunk the weights are drawn block by
        block of rows, so memory is ``chunk_size x 32768`` doubles per running chunk
        whatever the number of units, and the influence matrix is read once per chunk.
        The draws depend on ``chunk_size`` (a different chunking spawns different child
        streams) but never on ``n_jobs``.
    n_jobs : int
        Threads for the chunks (numpy's matrix product and generator release the GIL).
    weights : {"rademacher", "mammen"}

    Returns
    -------
    ndarray, shape (n_boot, k)
    """
    psi = np.asarray(influence, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if psi.ndim != 2:
        raise ZoneImpactError(f"Influence function must be a 2-D array; got shape {psi.shape}.")
    if int(n_boot) < 2:
        raise ZoneImpactError(f"n_boot must be at least 2; received {n_boot!r}.")
    chunk_size = 100 if chunk_size is None else chunk_size
    if int(chunk_size) < 1:
        raise ZoneImpactError(f"chunk_size must be positive; received {chunk_size!r}.")
    if weights not in ("rademacher", "mammen"):
        raise ZoneImpactError(
            f"Unknown bootstrap weights {weights!r}; use 'rademacher' or 'mammen'."
        )
    if not np.all(np.isfinite(psi)):
        raise ZoneImpactError(
            "Influence function has NaN/inf entries; drop the affected estimates before "
            "bootstrapping."
        )
    n = psi.shape[0]
    if cluster is not None:
        if len(cluster) != n:
            raise ZoneImpactError(
                f"cluster has {len(cluster)} labels but the influence function has {n} rows."
            )
        psi = cluster_sums(psi, cluster)
    n_boot, chunk_size = int(n_boot), int(chunk_size)
    sizes = [min(chunk_size, n_boot - s) for s in range(0, n_boot, chunk_size)]
    rows, k = psi.shape
    block = max(1, min(_ROW_BLOCK, rows))

    def one_chunk(size: int, child: np.random.Generator) -> np.ndarray:
        acc = np.zeros((size, k))
        buf = np.empty(size * block)
        scale = 1.0
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            w = buf[: size * (r1 - r0)].reshape(size, r1 - r0)  # contiguous view
            scale = _fill_weights(child, w, weights)
            acc += w @ psi[r0:r1]
        acc *= scale
        acc /= n
        return acc

    parts = replicate(
        one_chunk,
        sizes,
        rng=as_generator(rng),
        n_jobs=n_jobs,
        desc="multiplier bootstrap",
        backend=None if n_jobs == 1 else "threading",
    )
    return np.vstack(parts)


def bootstrap_se(draws: np.ndarray) -> np.ndarray:
    """IQR-based bootstrap standard errors, as R ``did::mboot``.

    NaN for degenerate columns (all draws zero, e.g. the normalised reference period, or
    a zero interquartile range), where R ``did`` reports NA.
    """
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    se = (q75 - q25) / _IQR_NORMAL
    return np.where(se > 0, se, np.nan)


def sup_t_critical(draws: np.ndarray, se: np.ndarray, alpha: float = 0.05) -> float:
    r"""Critical value of the uniform (sup-t) band over the columns of ``draws``.

    The ``1 - alpha`` quantile (type 1) of :math:`\max_k |\theta^*_{bk} - \hat\theta_k| /
    se_k` (CS 2021, Algorithm 1, step 4); columns with NaN standard errors are ignored.
    NaN when no column is usable.
    """
    se = np.asarray(se, dtype=float)
    ok = np.isfinite(se) & (se > 0)
    if not ok.any():
        return float("nan")
    t = np.abs(draws[:, ok]) / se[ok]
    return float(np.quantile(t.max(axis=1), 1 - alpha, method="inverted_cdf"))


def multiplier_bootstrap(
    influence: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator | int | None,
    cluster: Any = None,
    alpha: float = 0.05,
    chunk_size: int | None = None,
    n_jobs: int = 1,
    weights: Literal["rademacher", "mammen"] = "rademacher",
    return_draws: bool = False,
) -> dict[str, Any]:
    r"""Multiplier-bootstrap standard errors and a sup-t critical value.

    Parameters
    ----------
    influence : ndarray, shape (n, k) or (n,)
        Influence function of ``k`` estimates (estimate minus limit = row mean).
    n_boot, rng, cluster, chunk_size, n_jobs, weights
        As in :func:`multiplier_draws`.
    alpha : float
        Level of the uniform band.
    return_draws : bool
        Include the ``(n_boot, k)`` draws of :math:`\hat\theta^* - \hat\theta`.

    Returns
    -------
    dict
        ``se`` (k,), ``crit_value`` (float; sup-t over the k columns), ``vcov`` (k, k
        covariance of the draws), ``n_clusters``, and ``draws`` when requested.
    """
    draws = multiplier_draws(
        influence,
        n_boot=n_boot,
        rng=rng,
        cluster=cluster,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        weights=weights,
    )
    se = bootstrap_se(draws)
    n_rows = np.asarray(influence).shape[0]
    out: dict[str, Any] = {
        "se": se,
        "crit_value": sup_t_critical(draws, se, alpha),
        "vcov": np.atleast_2d(np.cov(draws, rowvar=False)),
        "n_clusters": n_rows if cluster is None else int(pd.Series(np.asarray(cluster)).nunique()),
    }
    if return_draws:
        out["draws"] = draws
    return out
