"""Borusyak, Jaravel & Spiess (2024) imputation estimator for staggered adoption.

Borusyak, K., Jaravel, X. and Spiess, J. (2024), "Revisiting event-study designs: robust
and efficient estimation", *Review of Economic Studies* 91(6), 3253-3285.

Theorem 2 (the imputation estimator), for an estimand ``tau_w = sum_{it in Omega_1} w_it
tau_it`` over treated observations ``Omega_1``:

1. fit ``Y_it = a_i + l_t + X_it b + e_it`` by (weighted) OLS on the untreated observations
   ``Omega_0`` (never treated and not yet treated);
2. impute ``Y_it(0)`` for every treated observation and set
   ``tau_hat_it = Y_it - a_i - l_t - X_it b``;
3. ``tau_hat_w = sum w_it tau_hat_it``.

Being linear in ``Y``, ``tau_hat_w = sum_it v_it Y_it`` with implied weights ``v_it = w_it``
on ``Omega_1`` and ``v_0 = -Z_0 (Z_0' W Z_0)^{-1} Z_1' w_1`` (times the observation weight)
on ``Omega_0`` (Section 4.1). The variance (Theorem 3, Section 4.3) is estimated
conservatively by ``sum_c (sum_{it in c} v_it e~_it)^2`` over clusters ``c`` with
``e~_it`` the step-1 residual on ``Omega_0`` and ``tau_hat_it - tau~_it`` on ``Omega_1``,
where ``tau~_it`` is the ``v``-weighted average of ``tau_hat`` within the observation's
cohort x event-time cell (the default ``avgeffectsby(Ei K)`` of Stata ``did_imputation``;
no small-sample factor and, by default, no leave-out, as ``did_imputation``'s defaults;
``leave_out=True`` applies the Supplementary Appendix A.9 refinement).

Pre-trend test (Test 1, Section 4.4): OLS on ``Omega_0`` only of ``Y`` on the fixed effects
(and controls) plus dummies ``1{K_it = -k}``, ``k = 1..pretrends``, for eventually treated
units; Wald test of the dummies with cluster-robust covariance, reported as ``F`` on
``(pretrends, G - 1)`` degrees of freedom as ``did_imputation``'s ``test`` after
``reghdfe`` does (with fixest's small-sample factor, see :func:`._fe.cluster_ssc_k`).

Why by hand: no maintained Python library outside our peer set implements the imputation
estimator and its Theorem 3 variance. The step-1 fixed effects are needed as values (to
impute), so they are solved exactly from the sparse normal equations with
``scipy.sparse.linalg.splu`` (one factorisation serves the point estimate and every
estimand's implied weights); no dense dummy matrix is formed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.linalg import splu

from ..errors import EstimationError, SpecError
from ..panel import RESERVED, Panel, _v
from ..results import (
    EstimationResult,
    check_bool,
    check_fit_arguments,
    check_int,
    terms_frame,
)
from ._fe import (
    check_cluster,
    cluster_codes,
    cluster_scores,
    cluster_ssc_k,
    demean,
    fe_dof,
)
from ._scale import scale_equivariant
from .sun_abraham import _covariate_list

__all__ = ["ImputationResult", "fit"]

#: Most estimands (``att`` and one per horizon): each has a column of implied weights on
#: the untreated observations and of cluster scores.
_MAX_TARGETS = 2_001

_PARTITIONS = {
    "cohort_event": ("cohort", "event"),
    "cohort": ("cohort",),
    "event": ("event",),
    "none": (),
}


@dataclass(frozen=True)
class ImputationResult(EstimationResult):
    """Result of :func:`fit`; adds the imputed effects and the pre-trend regression.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per treated observation used: ``unit``, ``time``, ``cohort``, ``event``
        and ``tau`` (the imputed ``tau_hat_it``).
    pretrend : pandas.DataFrame
        Test 1 coefficients (``event``, ``estimate``, ``se``), empty when off.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "effects": {"tau": 1},
        "pretrend": {"estimate": 1, "se": 1},
    }

    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    pretrend: pd.DataFrame = field(default_factory=pd.DataFrame)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {"effects": self.effects}
        if not self.pretrend.empty:
            out["pretrend"] = self.pretrend
        return out


def _design(
    unit: np.ndarray, time: np.ndarray, Xc: np.ndarray, n_unit: int, n_time: int
) -> sparse.csr_matrix:
    """Sparse ``[unit dummies | time dummies without the first | covariates]``."""
    n = len(unit)
    rows = np.arange(n)
    keep_t = time > 0  # period code 0 is the reference level of the time effects
    parts = [
        sparse.csr_matrix((np.ones(n), (rows, unit)), shape=(n, n_unit)),
        sparse.csr_matrix(
            (np.ones(keep_t.sum()), (rows[keep_t], time[keep_t] - 1)), shape=(n, n_time - 1)
        ),
    ]
    if Xc.shape[1]:
        parts.append(sparse.csr_matrix(Xc))
    return sparse.hstack(parts, format="csr")


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    horizons: Sequence[int] | None = None,
    pretrends: int | None = None,
    covariates: str | Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    aux_partition: Literal["cohort_event", "cohort", "event", "none"] = "cohort_event",
    leave_out: bool = False,
) -> ImputationResult:
    """Imputation estimator of Borusyak, Jaravel & Spiess (2024).

    Parameters
    ----------
    panel : Panel
        Staggered-adoption panel (balanced or not); rows with a missing outcome,
        covariate or weight are dropped.
    outcome : str
        Outcome column.
    rng, n_jobs
        Accepted for the common estimator interface; the estimator is deterministic.
    alpha : float
        Level of the confidence intervals stored with the result.
    horizons : sequence of int, optional
        Event times ``E >= 0`` reported as ``event:E`` (default: every observed one).
    pretrends : int, optional
        Number of pre-periods in Test 1 (0/None = off). Adds ``event:-k`` terms and
        ``info["pretrend_p"]``.
    covariates : str or list of str, optional
        Time-varying controls in the ``Y(0)`` model (time-invariant ones are absorbed by
        the unit effects and dropped, see ``info["dropped_covariates"]``).
    cluster : str, optional
        Cluster variable (panel or geography column); default unit.
    weights : str, optional
        Column of positive observation weights: the step-1 regression is weighted and
        the estimands weight treated observations proportionally (``did_imputation``'s
        ``aweight``).
    aux_partition : {"cohort_event", "cohort", "event", "none"}
        Cells within which ``tau~`` averages ``tau_hat`` for the conservative variance
        (Section 4.3); the default is ``did_imputation``'s ``avgeffectsby(Ei K)``.
    leave_out : bool
        Leave-out refinement of the conservative variance (BJS 2024, Supplementary
        Appendix A.9; ``did_imputation``'s ``leaveout``): ``tau~`` of an observation
        averages its cell without the observation's own cluster, which removes the
        downward finite-sample bias of averaging over few units. Off by default, as in
        R ``didimputation``; ``info["leave_out_fallback"]`` counts treated observations
        whose cell lies in a single cluster (plain average kept).

    Returns
    -------
    ImputationResult
        Terms ``att`` (all treated observations, equally weighted), ``event:-k`` (Test 1
        coefficients, if requested) and ``event:E``; ``vcov`` in terms order (the
        covariance between a pre-trend coefficient and an imputation estimate is the
        cross-product of their cluster scores); ``info["pretrend_p"]``.

    Raises
    ------
    EstimationError
        No untreated observations, no treated observation whose effect is identified, a
        requested horizon without treated observations, or bad options.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="imputation")
    del rng, n_jobs
    if not isinstance(aux_partition, str) or aux_partition not in _PARTITIONS:
        raise EstimationError(
            f"aux_partition={aux_partition!r} is not valid; use one of {list(_PARTITIONS)}."
        )
    if pretrends is not None and (
        isinstance(pretrends, bool) or not isinstance(pretrends, int | float | np.number)
    ):
        raise EstimationError(f"pretrends={pretrends!r} must be a non-negative integer.")
    n_pre = 0 if pretrends is None else check_int(pretrends, "pretrends")
    if n_pre < 0:
        raise EstimationError(f"pretrends={pretrends!r} must be a non-negative integer.")
    if horizons is not None:
        if isinstance(horizons, int | np.integer) and not isinstance(horizons, bool):
            horizons = [int(horizons)]
        elif isinstance(horizons, str) or not isinstance(horizons, Sequence | np.ndarray):
            raise SpecError(
                f"horizons must be a list of event times >= 0 (e.g. [0, 1, 2]); received "
                f"{horizons!r}."
            )
        horizons = [check_int(h, "horizons", minimum=0) for h in horizons]
    leave_out = check_bool(leave_out, "leave_out")
    covs = _covariate_list(panel, covariates)
    check_cluster(cluster)
    cols = ["unit", "time", "cohort", outcome, *covs]
    if weights is not None:
        if not isinstance(weights, str) or weights not in panel.data.columns or weights in RESERVED:
            raise EstimationError(
                f"Weight column {weights!r} is not in the panel; available: "
                f"{[c for c in panel.data.columns if c not in RESERVED]}."
            )
        cols.append(weights)
    if cluster is not None and cluster in panel.data.columns and cluster not in cols:
        cols.append(cluster)
    cols = list(dict.fromkeys(cols))
    df = panel.data.loc[:, cols]
    needed = [outcome, *covs] + ([weights] if weights else [])
    df = df.loc[df[needed].notna().all(axis=1).to_numpy()].reset_index(drop=True)
    if weights is not None:
        bad = df[weights].to_numpy(float) <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EstimationError(
                f"Weight column {weights!r} must be positive; unit "
                f"{_v(df['unit'].iloc[i])!r}, period {_v(df['time'].iloc[i])!r} has "
                f"{_v(df[weights].iloc[i])!r}."
            )

    cohort = df["cohort"].to_numpy(float)
    time = df["time"].to_numpy(np.int64)
    treated = time >= cohort
    if not (~treated).any():
        raise EstimationError("No untreated observations: the Y(0) model cannot be fitted.")

    # Treated observations whose unit or period has no untreated observation have no
    # imputable Y(0) (BJS Section 3, Assumption-free identification needs both effects);
    # drop them, as did_imputation's autosample does, and report how many.
    units0 = set(df.loc[~treated, "unit"].tolist())
    times0 = set(time[~treated].tolist())
    ident = ~treated | (df["unit"].isin(units0).to_numpy() & np.isin(time, list(times0)))
    n_unident = int((~ident).sum())
    df, cohort, time, treated = (
        df.loc[ident].reset_index(drop=True),
        cohort[ident],
        time[ident],
        treated[ident],
    )
    if not treated.any():
        raise EstimationError(
            "No treated observation has an imputable Y(0) (every treated unit or period "
            "lacks untreated observations)."
        )
    y = df[outcome].to_numpy(float)
    wobs = df[weights].to_numpy(float) if weights else np.ones(len(df))
    n = len(df)
    event = np.where(np.isfinite(cohort), time - np.where(np.isfinite(cohort), cohort, 0), np.nan)

    i0, i1 = np.flatnonzero(~treated), np.flatnonzero(treated)
    # Unit/time codes from the untreated sample (every kept treated obs maps into them).
    ucode0 = pd.Index(np.sort(df.loc[i0, "unit"].unique()))
    tcode0 = np.sort(np.unique(time[i0]))
    uc = ucode0.get_indexer(df["unit"])
    tc = np.searchsorted(tcode0, time)
    nU, nT = len(ucode0), len(tcode0)
    if fe_dof([uc[i0], tc[i0]]) < nU + nT - 1:
        raise EstimationError(
            "The untreated observations split into disconnected groups of units and "
            "periods, so the unit and period effects of the Y(0) model are not identified."
        )

    Xall = df[covs].to_numpy(float) if covs else np.zeros((n, 0))
    dropped_covs: list[str] = []
    if covs:
        Xd0 = demean(Xall[i0], [uc[i0], tc[i0]], weights=wobs[i0])
        keep = []
        for j, c in enumerate(covs):
            # A covariate constant within units (or periods) is absorbed by the effects.
            scale = max(float(np.abs(Xall[i0, j]).max(initial=0.0)), 1.0)
            if np.abs(Xd0[:, j]).max(initial=0.0) > 1e-9 * scale:
                keep.append(j)
            else:
                dropped_covs.append(c)
        Xall = Xall[:, keep]
        covs = [covs[j] for j in keep]
    Z = _design(uc, tc, Xall, nU, nT)
    Z0, Z1 = Z[i0], Z[i1]
    W0 = sparse.diags(wobs[i0])
    A = (Z0.T @ W0 @ Z0).tocsc()
    try:
        lu = splu(A)
    except RuntimeError as exc:
        raise EstimationError(
            "The Y(0) model on untreated observations is singular (collinear covariates?)."
        ) from exc
    theta = lu.solve(Z0.T @ (wobs[i0] * y[i0]))
    if not np.all(np.isfinite(theta)):
        raise EstimationError("The Y(0) model on untreated observations is singular.")
    fitted = Z @ theta
    resid0 = y[i0] - fitted[i0]
    tau = y[i1] - fitted[i1]

    # Estimand weights on treated observations: overall ATT and each event time.
    ev1 = event[i1].astype(np.int64)
    coh1 = cohort[i1]
    w1obs = wobs[i1]
    avail = np.unique(ev1)
    if horizons is None:
        hz = avail.tolist()
    else:
        hz = sorted({int(h) for h in horizons})
        missing = [h for h in hz if h not in set(avail.tolist())]
        if missing:
            raise EstimationError(
                f"horizons {missing} have no treated observations; observed event times "
                f"are {avail.tolist()}."
            )
    targets = ["att", *[f"event:{h}" for h in hz]]
    if len(targets) > _MAX_TARGETS:
        raise EstimationError(
            f"{len(hz)} event-time horizons ({hz[0]} to {hz[-1]}) to estimate, beyond this "
            f"implementation's limit of {_MAX_TARGETS - 1:,} (each needs its own implied "
            "weights on every untreated observation). Pass horizons=[...] with the event "
            "times you need, or aggregate the periods."
        )
    Wt = np.zeros((len(i1), len(targets)))
    Wt[:, 0] = w1obs / w1obs.sum()
    for j, h in enumerate(hz, start=1):
        m = ev1 == h
        Wt[m, j] = w1obs[m] / w1obs[m].sum()
    est = Wt.T @ tau

    # Implied weights on untreated observations (BJS Section 4.1, eq. 6 in matrix form).
    rhs = np.asarray(Z1.T @ Wt)
    # One column at a time: SuperLU's multi-right-hand-side solve is far slower here.
    gamma = np.column_stack([lu.solve(rhs[:, j]) for j in range(rhs.shape[1])])
    V0 = -(Z0 @ gamma) * wobs[i0][:, None]

    # tau~: v-weighted average of tau_hat within the auxiliary cells (Section 4.3).
    part = _PARTITIONS[aux_partition]
    if part:
        keys = np.column_stack([{"cohort": coh1, "event": ev1}[k] for k in part])
        cell = np.unique(keys, axis=0, return_inverse=True)[1].ravel().astype(np.intp)
    else:
        cell = np.zeros(len(i1), dtype=np.intp)
    ncell = int(cell.max()) + 1
    cl, cl_name = cluster_codes(panel, df, cluster)
    G = int(cl.max()) + 1
    # Cell x cluster pairs for the leave-out average (Supplementary Appendix A.9).
    pair = cell.astype(np.int64) * G + cl[i1]
    pair_code = np.unique(pair, return_inverse=True)[1].ravel()
    npair = int(pair_code.max()) + 1
    resid1 = np.empty_like(Wt)
    n_fallback = 0
    for j in range(len(targets)):
        num = np.bincount(cell, weights=Wt[:, j] * tau, minlength=ncell)[cell]
        den = np.bincount(cell, weights=Wt[:, j], minlength=ncell)[cell]
        if leave_out:
            # tau~ without the observation's own cluster; a cell whose weight sits in one
            # cluster has no leave-out average and keeps the plain one.
            num_c = np.bincount(pair_code, weights=Wt[:, j] * tau, minlength=npair)[pair_code]
            den_c = np.bincount(pair_code, weights=Wt[:, j], minlength=npair)[pair_code]
            ok = (den - den_c) > 1e-14 * np.maximum(den, 1e-300)
            n_fallback += int((~ok & (Wt[:, j] != 0)).sum())
            num = np.where(ok, num - num_c, num)
            den = np.where(ok, den - den_c, den)
        tt = np.divide(num, den, out=np.zeros(len(tau)), where=den != 0)
        resid1[:, j] = tau - tt
    scores = np.zeros((n, len(targets)))
    scores[i0] = V0 * resid0[:, None]
    scores[i1] = Wt * resid1
    S = cluster_scores(scores, cl)
    vcov = S.T @ S

    info: dict[str, object] = {
        "cluster": cl_name,
        "n_clusters": G,
        "fixed_effects": "unit+time",
        "n_untreated_obs": len(i0),
        "n_treated_obs": len(i1),
        "n_dropped_unidentified": n_unident,
        "aux_partition": aux_partition,
        "variance": "BJS Theorem 3 conservative"
        + (", leave-out (App. A.9)" if leave_out else ", no leave-out")
        + ", no small-sample factor",
        "leave_out_fallback": n_fallback,
        "covariates": ",".join(covs),
        "dropped_covariates": ",".join(dropped_covs),
        "weights": weights or "",
        "pretrend_p": np.nan,
    }
    pre_table = pd.DataFrame(columns=["event", "estimate", "se"])
    names, estimates = list(targets), list(est)
    if n_pre > 0:
        pre_est, pre_V, psi, F, p, ks = _pretrend_test(
            y[i0], event[i0], uc[i0], tc[i0], Xall[i0], wobs[i0], cl[i0], n_pre, G
        )
        info.update(pretrend_F=F, pretrend_p=p, pretrend_df=f"({len(ks)}, {G - 1})")
        pre_table = pd.DataFrame(
            {"event": [-k for k in ks], "estimate": pre_est, "se": np.sqrt(np.diag(pre_V))}
        )
        # psi rows are untreated observations; aggregate to clusters for the cross block.
        Spre = cluster_scores(psi, cl[i0])
        Spre = np.vstack([Spre, np.zeros((G - Spre.shape[0], Spre.shape[1]))])
        cross = S.T @ Spre
        m = len(targets)
        full = np.zeros((m + len(ks), m + len(ks)))
        full[:m, :m] = vcov
        full[m:, m:] = pre_V
        full[:m, m:] = cross
        full[m:, :m] = cross.T
        order = [0, *range(m, m + len(ks))[::-1], *range(1, m)]
        vcov = full[np.ix_(order, order)]
        names = [targets[0], *[f"event:{-k}" for k in ks][::-1], *targets[1:]]
        estimates = [est[0], *list(pre_est)[::-1], *est[1:]]
    se = np.sqrt(np.clip(np.diag(vcov), 0, None))
    terms = terms_frame(names, estimates, se)

    effects = pd.DataFrame(
        {
            "unit": df.loc[i1, "unit"].to_numpy(),
            "time": time[i1],
            "cohort": coh1.astype(np.int64),
            "event": ev1,
            "tau": tau,
        }
    )
    return ImputationResult(
        estimator="imputation",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(df["unit"].nunique()),
        n_obs=n,
        vcov=vcov,
        info=info,
        alpha=alpha,
        effects=effects,
        pretrend=pre_table,
    )


def _pretrend_test(
    y0: np.ndarray,
    event0: np.ndarray,
    uc: np.ndarray,
    tc: np.ndarray,
    X0: np.ndarray,
    w0: np.ndarray,
    cl0: np.ndarray,
    n_pre: int,
    G: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, list[int]]:
    """BJS (2024) Test 1: leads ``1{K_it = -k}`` on untreated observations, Wald F-test.

    Returns coefficients, their clustered covariance, per-observation influence rows
    (``n0 x k``, summing within clusters to each cluster's contribution), F, p, and the
    leads ``k`` used (leads with no observation are skipped).
    """
    ks = [k for k in range(1, n_pre + 1) if np.any(event0 == -k)]
    if not ks:
        raise EstimationError(
            f"pretrends={n_pre}: no untreated observation lies 1..{n_pre} periods before treatment."
        )
    D = np.column_stack([(event0 == -k).astype(float) for k in ks])
    R = np.hstack([D, X0])
    fe = [uc, tc]
    sw = np.sqrt(w0)
    Rd = demean(R, fe, weights=w0) * sw[:, None]
    yd = demean(y0, fe, weights=w0) * sw
    XtX = Rd.T @ Rd
    if np.linalg.matrix_rank(XtX) < Rd.shape[1]:
        raise EstimationError(
            "Pre-trend regression is rank deficient: reduce pretrends (too few "
            "never-treated or early observations to separate leads from period effects)."
        )
    bread = np.linalg.inv(XtX)
    b = bread @ (Rd.T @ yd)
    e = yd - Rd @ b
    psi = (Rd * e[:, None]) @ bread  # row contributions to b - beta (n0 x p)
    n0 = len(y0)
    Gp = int(cl0.max()) + 1
    K = cluster_ssc_k(R.shape[1], fe, cl0)
    ssc = Gp / (Gp - 1) * (n0 - 1) / (n0 - K)
    Sc = cluster_scores(psi, cl0)
    V = ssc * Sc.T @ Sc
    q = len(ks)
    bk, Vk = b[:q], V[:q, :q]
    wald = float(bk @ np.linalg.solve(Vk, bk))
    F = wald / q
    p = float(stats.f.sf(F, q, Gp - 1))
    return bk, Vk, psi[:, :q], F, p, ks
