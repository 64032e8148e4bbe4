"""Aggregating group-time effects ATT(g,t) with their influence functions.

Shared by the estimators that produce Callaway-Sant'Anna style ATT(g,t) cells outside
:mod:`~zoneimpact.estimators.callaway_santanna` (repeated cross-sections, staggered triple
differences). The aggregations are those of Callaway & Sant'Anna (2021, Section 3, eqs.
3.3-3.11; R ``did::aggte``): ``simple`` (term ``att``), ``dynamic`` (``event:E`` and
``event_avg``), ``group`` (``cohort:G`` and ``cohort_avg``) and ``calendar``
(``calendar:T`` and ``calendar_avg``), with the extra influence-function term for
estimated cohort shares (R ``did``'s ``wif``), the shares being (sampling-)weighted:
``p_g = mean_i(w_i 1{G_i = g})`` with weights normalised to mean one, as R ``did`` does.

Every term's influence function is ``basis @ a`` with ``basis`` = the ATT(g,t) influence
columns followed by the centred cohort indicators ``w_i 1{G_i=g} - p_g``, so the analytic
covariance is ``A' (basis' basis / n^2) A``. Written by hand because no library aggregates
group-time effects with their influence functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..inference.bootstrap import cluster_sums

AGGREGATIONS = ("simple", "dynamic", "group", "calendar")


@dataclass(frozen=True)
class Aggregated:
    """Terms of the aggregations: names, estimates, coefficient matrix on the basis."""

    names: list[str]
    estimates: np.ndarray
    amat: np.ndarray  # (basis columns, terms)
    basis: np.ndarray  # (observations, cells + cohorts)
    vcov: np.ndarray
    se: np.ndarray
    cell_se: np.ndarray


def aggregate_gt(
    *,
    cell_g: np.ndarray,
    cell_t: np.ndarray,
    att: np.ndarray,
    psi: np.ndarray,
    group: np.ndarray,
    weights: np.ndarray,
    cohorts: np.ndarray,
    aggregations: tuple[str, ...],
    normalised: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
) -> Aggregated:
    """Aggregate ATT(g,t) (CS 2021 Section 3) with analytic influence-function SEs.

    Parameters
    ----------
    cell_g, cell_t, att : arrays of length k
        Cohort, period and estimate of each cell (NaN estimate: left out).
    psi : ndarray (n, k)
        Influence functions scaled so that ``se = sqrt(sum psi^2) / n``.
    group, weights : arrays of length n
        Each observation's cohort (``inf`` never treated) and its weight (mean one).
    cohorts : array
        Finite cohorts.
    aggregations : tuple of str
        Among :data:`AGGREGATIONS`; ``simple`` is always computed.
    normalised : bool array of length k, optional
        Cells fixed at zero by a universal base period (their SE is undefined).
    cluster : array of length n, optional
        Cluster labels: influence functions are summed within clusters before squaring.
    """
    n, k = psi.shape
    valid = np.isfinite(att)
    cell_e = cell_t - cell_g
    basis = np.zeros((n, k + len(cohorts)))
    basis[:, :k] = np.where(valid[None, :], psi, 0.0)
    pg_cohort = np.array([np.mean(weights * (group == g)) for g in cohorts])
    for i, g in enumerate(cohorts):
        basis[:, k + i] = weights * (group == g) - pg_cohort[i]
    coh_idx = {float(g): i for i, g in enumerate(cohorts)}
    pg_cell = np.array([pg_cohort[coh_idx[float(g)]] for g in cell_g])

    def weighted(keep: np.ndarray, wif: bool) -> tuple[float, np.ndarray]:
        idx = np.flatnonzero(keep & valid)
        if idx.size == 0:
            return np.nan, np.zeros(basis.shape[1])
        s = pg_cell[idx].sum()
        w = pg_cell[idx] / s
        est = float(w @ att[idx])
        a = np.zeros(basis.shape[1])
        a[idx] = w
        if wif:
            for i in idx:
                a[k + coh_idx[float(cell_g[i])]] += (att[i] - est) / s
        return est, a

    names: list[str] = []
    ests: list[float] = []
    coefs: list[np.ndarray] = []

    def add(name: str, est: float, a: np.ndarray) -> None:
        names.append(name)
        ests.append(est)
        coefs.append(a)

    post = cell_e >= 0
    est, a = weighted(post, wif=True)
    if not np.isfinite(est):
        raise EstimationError("No post-treatment ATT(g,t) could be estimated.")
    add("att", est, a)
    if "dynamic" in aggregations:
        rows = []
        for e in np.unique(cell_e[valid]):
            est, a = weighted(cell_e == e, wif=True)
            if np.isfinite(est):
                add(f"event:{int(e)}", est, a)
                rows.append((int(e), est, a))
        pos = [(est, a) for e, est, a in rows if e >= 0]
        if pos:
            add("event_avg", float(np.mean([p[0] for p in pos])), np.mean([p[1] for p in pos], 0))
    if "group" in aggregations:
        g_rows = []
        for g in cohorts:
            est, a = weighted((cell_g == g) & post, wif=False)
            if np.isfinite(est):
                add(f"cohort:{int(g)}", est, a)
                g_rows.append((float(g), est, a))
        if g_rows:
            pgs = np.array([pg_cohort[coh_idx[g]] for g, _, _ in g_rows])
            s = pgs.sum()
            est = float(np.sum(pgs * np.array([r[1] for r in g_rows])) / s)
            a = np.sum([(pgs[i] / s) * g_rows[i][2] for i in range(len(g_rows))], axis=0)
            for g, eg, _ in g_rows:
                a[k + coh_idx[g]] += (eg - est) / s
            add("cohort_avg", est, a)
    if "calendar" in aggregations:
        c_rows = []
        for t in np.unique(cell_t):
            if t < cohorts.min():
                continue
            est, a = weighted((cell_t == t) & (cell_g <= t), wif=True)
            if np.isfinite(est):
                add(f"calendar:{int(t)}", est, a)
                c_rows.append((est, a))
        if c_rows:
            add(
                "calendar_avg",
                float(np.mean([r[0] for r in c_rows])),
                np.mean([r[1] for r in c_rows], axis=0),
            )
    amat = np.column_stack(coefs)
    src = basis if cluster is None else cluster_sums(basis, cluster)
    meat = src.T @ src / n**2
    vcov = amat.T @ meat @ amat
    se = np.sqrt(np.clip(np.diag(vcov), 0, None))
    cell_se = np.sqrt(np.clip(np.diag(meat)[:k], 0, None))
    norm = np.zeros(k, bool) if normalised is None else normalised
    by_construction = ~np.any(amat[:k][~norm] != 0, axis=0) & ~np.any(amat[k:] != 0, axis=0)
    se = np.where(by_construction, np.nan, se)
    cell_se = np.where(valid & ~norm, cell_se, np.nan)
    return Aggregated(names, np.array(ests), amat, basis, vcov, se, cell_se)


def terms_table(agg: Aggregated) -> pd.DataFrame:
    """The ``terms`` frame of an :class:`Aggregated`."""
    return pd.DataFrame({"term": agg.names, "estimate": agg.estimates, "se": agg.se})
