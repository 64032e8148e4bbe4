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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..inference.bootstrap import cluster_sums
from ..inference.covariance import standard_errors_from_variance, warn_negative_variance

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


@dataclass(frozen=True)
class _Cells:
    """The ATT(g,t) cells and the influence-function basis the aggregations combine."""

    cell_g: np.ndarray
    cell_t: np.ndarray
    cell_e: np.ndarray
    att: np.ndarray
    valid: np.ndarray
    basis: np.ndarray
    cohorts: np.ndarray
    pg_cohort: np.ndarray  # (weighted) cohort shares p_g
    pg_cell: np.ndarray  # p_g of each cell's cohort
    coh_idx: dict[float, int]

    @property
    def k(self) -> int:
        return len(self.att)

    def weighted(self, keep: np.ndarray, wif: bool) -> tuple[float, np.ndarray]:
        """The ``p_g``-weighted average of the kept cells (CS 2021 Section 3 weights)
        and its coefficients on the basis; ``wif`` adds the estimated-share term."""
        att, k = self.att, self.k
        idx = np.flatnonzero(keep & self.valid)
        if idx.size == 0:
            return np.nan, np.zeros(self.basis.shape[1])
        s = self.pg_cell[idx].sum()
        w = self.pg_cell[idx] / s
        est = float(w @ att[idx])
        a = np.zeros(self.basis.shape[1])
        a[idx] = w
        if wif:
            for i in idx:
                a[k + self.coh_idx[float(self.cell_g[i])]] += (att[i] - est) / s
        return est, a


def _cells(
    cell_g: np.ndarray,
    cell_t: np.ndarray,
    att: np.ndarray,
    psi: np.ndarray,
    group: np.ndarray,
    weights: np.ndarray,
    cohorts: np.ndarray,
) -> _Cells:
    """The basis (cell influence functions, then the centred cohort indicators
    ``w_i 1{G_i=g} - p_g``) and the cohort shares."""
    n, k = psi.shape
    valid = np.isfinite(att)
    basis = np.zeros((n, k + len(cohorts)))
    basis[:, :k] = np.where(valid[None, :], psi, 0.0)
    pg_cohort = np.array([np.mean(weights * (group == g)) for g in cohorts])
    for i, g in enumerate(cohorts):
        basis[:, k + i] = weights * (group == g) - pg_cohort[i]
    coh_idx = {float(g): i for i, g in enumerate(cohorts)}
    pg_cell = np.array([pg_cohort[coh_idx[float(g)]] for g in cell_g])
    return _Cells(
        cell_g, cell_t, cell_t - cell_g, att, valid, basis, cohorts, pg_cohort, pg_cell, coh_idx
    )


_Term = tuple[str, float, np.ndarray]


def _dynamic(c: _Cells) -> list[_Term]:
    """``event:E`` (CS 2021 Section 3, R ``aggte(type="dynamic")``) and ``event_avg``,
    their mean over E >= 0."""
    out: list[_Term] = []
    pos = []
    for e in np.unique(c.cell_e[c.valid]):
        est, a = c.weighted(c.cell_e == e, wif=True)
        if np.isfinite(est):
            out.append((f"event:{int(e)}", est, a))
            if int(e) >= 0:
                pos.append((est, a))
    if pos:
        avg = float(np.mean([p[0] for p in pos]))
        out.append(("event_avg", avg, np.mean([p[1] for p in pos], 0)))
    return out


def _group(c: _Cells) -> list[_Term]:
    """``cohort:G`` (CS 2021 Section 3, ``type="group"``) and ``cohort_avg``, their ``p_g``
    average with the estimated-share term."""
    out: list[_Term] = []
    g_rows = []
    for g in c.cohorts:
        est, a = c.weighted((c.cell_g == g) & (c.cell_e >= 0), wif=False)
        if np.isfinite(est):
            out.append((f"cohort:{int(g)}", est, a))
            g_rows.append((float(g), est, a))
    if g_rows:
        pgs = np.array([c.pg_cohort[c.coh_idx[g]] for g, _, _ in g_rows])
        s = pgs.sum()
        est = float(np.sum(pgs * np.array([r[1] for r in g_rows])) / s)
        a = np.sum([(pgs[i] / s) * g_rows[i][2] for i in range(len(g_rows))], axis=0)
        for g, eg, _ in g_rows:
            a[c.k + c.coh_idx[g]] += (eg - est) / s
        out.append(("cohort_avg", est, a))
    return out


def _calendar(c: _Cells) -> list[_Term]:
    """``calendar:T`` (CS 2021 Section 3, ``type="calendar"``) and ``calendar_avg``, their
    mean."""
    out: list[_Term] = []
    for t in np.unique(c.cell_t):
        if t < c.cohorts.min():
            continue
        est, a = c.weighted((c.cell_t == t) & (c.cell_g <= t), wif=True)
        if np.isfinite(est):
            out.append((f"calendar:{int(t)}", est, a))
    if out:
        avg = float(np.mean([r[1] for r in out]))
        out.append(("calendar_avg", avg, np.mean([r[2] for r in out], axis=0)))
    return out


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

    Steps: the basis and shares (:func:`_cells`), the terms of each aggregation
    (``simple``, :func:`_dynamic`, :func:`_group`, :func:`_calendar`) and their
    covariance (:func:`_covariance`).

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
    c = _cells(cell_g, cell_t, att, psi, group, weights, cohorts)
    est, a = c.weighted(c.cell_e >= 0, wif=True)
    if not np.isfinite(est):
        raise EstimationError("No post-treatment ATT(g,t) could be estimated.")
    terms: list[_Term] = [("att", est, a)]
    for name, step in (("dynamic", _dynamic), ("group", _group), ("calendar", _calendar)):
        if name in aggregations:
            terms += step(c)
    amat = np.column_stack([t[2] for t in terms])
    vcov, se, cell_se = _covariance(c, amat, normalised, cluster)
    names = [t[0] for t in terms]
    return Aggregated(names, np.array([t[1] for t in terms]), amat, c.basis, vcov, se, cell_se)


def _covariance(
    c: _Cells, amat: np.ndarray, normalised: np.ndarray | None, cluster: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A' (basis' basis / n^2) A`` (cluster sums of the basis when clustered), the terms'
    and the cells' SEs; NaN for terms that are zero by construction (only normalised
    cells) and for normalised or failed cells."""
    n, k = len(c.basis), c.k
    src = c.basis if cluster is None else cluster_sums(c.basis, cluster)
    meat = src.T @ src / n**2
    vcov = amat.T @ meat @ amat
    se = variance_se(np.diag(vcov))
    cell_se = variance_se(np.diag(meat)[:k])
    norm = np.zeros(k, bool) if normalised is None else normalised
    by_construction = ~np.any(amat[:k][~norm] != 0, axis=0) & ~np.any(amat[k:] != 0, axis=0)
    se = np.where(by_construction, np.nan, se)
    cell_se = np.where(c.valid & ~norm, cell_se, np.nan)
    return vcov, se, cell_se


def variance_se(var: np.ndarray, two_way: bool = False) -> np.ndarray:
    """Standard errors from variances (:func:`.covariance.standard_errors_from_variance`,
    the rule every estimator shares). One-way (or no) clustering: the variances are sums
    of squares, so a negative value is rounding and gives 0. Two-way clustering: Cameron,
    Gelbach & Miller's ``V_1 + V_2 - V_12`` need not be positive semi-definite, and a
    negative variance gives NaN (fixest/pyfixest and the Sun-Abraham, imputation and
    TWFE estimators here do the same), not a zero SE with a zero-width interval. No
    warning here: the callers warn with :func:`warn_negative_two_way`, leaving out terms
    whose SE is NaN by construction."""
    return standard_errors_from_variance(var, two_way=two_way)


def warn_negative_two_way(names: Sequence[str], var: np.ndarray, stacklevel: int) -> None:
    """Warn, naming the terms, where a two-way clustered variance is negative (their SE
    is NaN, see :func:`variance_se`); ``stacklevel`` counts from the caller of this
    function. The message is :func:`.covariance.warn_negative_variance`'s, as the other
    estimators give it."""
    warn_negative_variance(names, var, stacklevel=stacklevel + 1)


def terms_table(agg: Aggregated) -> pd.DataFrame:
    """The ``terms`` frame of an :class:`Aggregated`."""
    return pd.DataFrame({"term": agg.names, "estimate": agg.estimates, "se": agg.se})
