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
impute), so they are solved exactly from the normal equations: the unit block of
``Z_0'WZ_0`` is diagonal, so eliminating the unit effects leaves a dense
``(periods - 1 + covariates)`` Schur complement (:class:`_TwoWayNormal`); one small
factorisation serves the point estimate and every estimand's implied weights, and each
solve is a few passes over the rows (no dummy matrix, sparse or dense, is formed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats

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


class _TwoWayNormal:
    """Normal equations of ``y = a_unit + l_period + X b`` (period 0 the reference level)
    on weighted rows, solved exactly by eliminating the unit effects.

    The unit block of ``Z'WZ`` is diagonal (each unit's weight), so the Schur complement
    on the ``periods - 1 + covariates`` other parameters is a small dense matrix: every
    solve costs a few passes over the rows, with no sparse design and no sparse
    factorisation (the same solution as ``splu`` on the sparse normal equations, to
    rounding).
    """

    def __init__(
        self, u: np.ndarray, t: np.ndarray, w: np.ndarray, X: np.ndarray, nU: int, nT: int
    ) -> None:
        k = X.shape[1]
        self.nU, self.nT, self.k = nU, nT, k
        d_unit = np.bincount(u, weights=w, minlength=nU)
        self.d_inv = 1.0 / d_unit
        # unit x (period, covariate) cross products: the off-diagonal block of Z'WZ
        Ct = np.bincount(u * nT + t, weights=w, minlength=nU * nT).reshape(nU, nT)[:, 1:]
        self.C = np.hstack(
            [Ct, *[np.bincount(u, weights=w * X[:, j], minlength=nU)[:, None] for j in range(k)]]
        )
        p = nT - 1 + k
        RR = np.zeros((p, p))
        RR[: nT - 1, : nT - 1] = np.diag(np.bincount(t, weights=w, minlength=nT)[1:])
        if k:
            TX = np.column_stack(
                [np.bincount(t, weights=w * X[:, j], minlength=nT)[1:] for j in range(k)]
            )
            RR[: nT - 1, nT - 1 :] = TX
            RR[nT - 1 :, : nT - 1] = TX.T
            RR[nT - 1 :, nT - 1 :] = (X * w[:, None]).T @ X
        self.Ct = np.ascontiguousarray(self.C.T)
        schur = RR - self.Ct @ (self.C * self.d_inv[:, None])
        schur = 0.5 * (schur + schur.T)
        if p:
            # singular when covariates are collinear given the effects: judged on the
            # unit-diagonal scaling so that the covariates' units do not matter
            dg = np.sqrt(np.clip(np.diag(schur), 1e-300, None))
            lam = np.linalg.eigvalsh(schur / np.outer(dg, dg))
            if not np.all(np.isfinite(lam)) or lam[0] <= 1e-12 * max(lam[-1], 1.0):
                raise EstimationError(
                    "The Y(0) model on untreated observations is singular (collinear covariates?)."
                )
        self.schur = schur

    def cross(
        self, u: np.ndarray, t: np.ndarray, X: np.ndarray, V: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``V Z`` for rows with codes ``u``, ``t`` and covariates ``X``, each of the ``r``
        rows of ``V`` (r x rows) one right-hand side: (unit part r x nU, rest r x p)."""
        ru = np.vstack([np.bincount(u, weights=v, minlength=self.nU) for v in V])
        rt = np.vstack([np.bincount(t, weights=v, minlength=self.nT)[1:] for v in V])
        return ru, np.hstack([rt, V @ X])

    def solve(self, ru: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit effects (r x nU), period effects with the reference's zero (r x nT) and
        covariate coefficients (r x k) solving the normal equations for each row."""
        scaled = ru * self.d_inv
        rest = np.linalg.solve(self.schur, (rr - scaled @ self.C).T).T if rr.shape[1] else rr
        unit = scaled - (rest @ self.Ct) * self.d_inv
        period = np.hstack([np.zeros((len(rr), 1)), rest[:, : self.nT - 1]])
        return unit, period, rest[:, self.nT - 1 :]


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
    if weights is not None and (
        not isinstance(weights, str) or weights not in panel.data.columns or weights in RESERVED
    ):
        raise EstimationError(
            f"Weight column {weights!r} is not in the panel; available: "
            f"{[c for c in panel.data.columns if c not in RESERVED]}."
        )
    data = panel.data
    needed = list(dict.fromkeys([outcome, *covs] + ([weights] if weights else [])))
    complete = data[needed].notna().all(axis=1).to_numpy()
    # rows kept, as positions in panel.data (None: all of them, and no copies are made)
    kept: np.ndarray | None = None if complete.all() else np.flatnonzero(complete)

    def column(name: str, dtype: Any = float) -> np.ndarray:
        a = data[name].to_numpy(dtype)
        return a if kept is None else a[kept]

    # panel.data is sorted by unit, so first-appearance codes follow the sorted unit ids
    unit_code, unit_ids = pd.factorize(data["unit"])
    unit_code = unit_code if kept is None else unit_code[kept]
    time = column("time", np.int64)
    if weights is not None:
        bad = column(weights) <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            r = i if kept is None else int(kept[i])
            raise EstimationError(
                f"Weight column {weights!r} must be positive; unit "
                f"{_v(data['unit'].iloc[r])!r}, period {_v(data['time'].iloc[r])!r} has "
                f"{_v(data[weights].iloc[r])!r}."
            )

    cohort = column("cohort")
    treated = time >= cohort
    if not (~treated).any():
        raise EstimationError("No untreated observations: the Y(0) model cannot be fitted.")

    # Treated observations whose unit or period has no untreated observation have no
    # imputable Y(0) (BJS Section 3, Assumption-free identification needs both effects);
    # drop them, as did_imputation's autosample does, and report how many.
    periods = panel.periods
    time_code = np.searchsorted(periods, time)
    has_u = np.bincount(unit_code[~treated], minlength=len(unit_ids)) > 0
    has_t = np.bincount(time_code[~treated], minlength=len(periods)) > 0
    ident = ~treated | (has_u[unit_code] & has_t[time_code])
    n_unident = int((~ident).sum())
    if n_unident:
        sel = np.flatnonzero(ident)
        kept = sel if kept is None else kept[sel]
        unit_code, time_code, time, cohort, treated = (
            unit_code[sel],
            time_code[sel],
            time[sel],
            cohort[sel],
            treated[sel],
        )
    if not treated.any():
        raise EstimationError(
            "No treated observation has an imputable Y(0) (every treated unit or period "
            "lacks untreated observations)."
        )
    y = column(outcome)
    wobs = column(weights) if weights else np.ones(len(y))
    n = len(y)

    i0, i1 = np.flatnonzero(~treated), np.flatnonzero(treated)
    # Unit/period codes among those with untreated observations (every kept treated
    # observation maps into them), in sorted order.
    uc = (np.cumsum(has_u) - 1)[unit_code]
    tc = (np.cumsum(has_t) - 1)[time_code]
    nU, nT = int(has_u.sum()), int(has_t.sum())
    # A period observed untreated by every unit connects them all (the usual case, and
    # a cheap check); otherwise count the connected components.
    if np.bincount(tc[i0], minlength=nT).max() < nU and fe_dof([uc[i0], tc[i0]]) < nU + nT - 1:
        raise EstimationError(
            "The untreated observations split into disconnected groups of units and "
            "periods, so the unit and period effects of the Y(0) model are not identified."
        )

    Xall = np.column_stack([column(c) for c in covs]) if covs else np.zeros((n, 0))
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
    u0, t0, w0, X0 = uc[i0], tc[i0], wobs[i0], Xall[i0]
    k = Xall.shape[1]
    normal = _TwoWayNormal(u0, t0, w0, X0, nU, nT)
    th_u, th_t, th_x = normal.solve(*normal.cross(u0, t0, X0, (w0 * y[i0])[None]))
    fitted = th_u[0][uc] + th_t[0][tc]
    if k:
        fitted += Xall @ th_x[0]
    resid0 = y[i0] - fitted[i0]
    tau = y[i1] - fitted[i1]
    del fitted

    # Estimand weights on treated observations: overall ATT and each event time.
    ev1 = (time[i1] - cohort[i1]).astype(np.int64)
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
    # one row of weights per estimand (targets x treated observations)
    Wt = np.zeros((len(targets), len(i1)))
    Wt[0] = w1obs / w1obs.sum()
    for j, h in enumerate(hz, start=1):
        m = ev1 == h
        Wt[j, m] = w1obs[m] / w1obs[m].sum()
    est = Wt @ tau

    # Implied weights on untreated observations (BJS Section 4.1, eq. 6 in matrix form):
    # v_0 = -Z_0 (Z_0' W Z_0)^{-1} Z_1' w, all estimands in one solve.
    gamma_u, gamma_t, gamma_x = normal.solve(*normal.cross(uc[i1], tc[i1], Xall[i1], Wt))

    # tau~: v-weighted average of tau_hat within the auxiliary cells (Section 4.3).
    part = _PARTITIONS[aux_partition]
    cell = np.zeros(len(i1), dtype=np.intp)
    for key in part:
        codes, levels = pd.factorize({"cohort": coh1, "event": ev1}[key], sort=True)
        cell = cell * len(levels) + codes
    # number the occupied cells 0..ncell-1 (in the lexicographic order of their keys)
    occupied = np.bincount(cell) > 0
    cell = (np.cumsum(occupied) - 1)[cell]
    ncell = int(occupied.sum())
    if cluster is None:
        present = np.bincount(unit_code, minlength=len(unit_ids)) > 0
        cl, cl_name = (np.cumsum(present) - 1)[unit_code], "unit"
    else:
        frame = pd.DataFrame({"unit": unit_ids[unit_code]})
        if cluster in data.columns:
            frame[cluster] = column(cluster, None)
        cl, cl_name = cluster_codes(panel, frame, cluster)
    G = int(cl.max()) + 1
    cl0, cl1 = cl[i0], cl[i1]
    if leave_out:
        # Cell x cluster pairs for the leave-out average (Supplementary Appendix A.9).
        pair_code = np.unique(cell.astype(np.int64) * G + cl1, return_inverse=True)[1].ravel()
        npair = int(pair_code.max()) + 1
    S = np.empty((G, len(targets)))
    n_fallback = 0
    for j in range(len(targets)):
        wj = Wt[j]
        num = np.bincount(cell, weights=wj * tau, minlength=ncell)[cell]
        den = np.bincount(cell, weights=wj, minlength=ncell)[cell]
        if leave_out:
            # tau~ without the observation's own cluster; a cell whose weight sits in one
            # cluster has no leave-out average and keeps the plain one.
            num_c = np.bincount(pair_code, weights=wj * tau, minlength=npair)[pair_code]
            den_c = np.bincount(pair_code, weights=wj, minlength=npair)[pair_code]
            ok = (den - den_c) > 1e-14 * np.maximum(den, 1e-300)
            n_fallback += int((~ok & (wj != 0)).sum())
            num = np.where(ok, num - num_c, num)
            den = np.where(ok, den - den_c, den)
        tt = np.divide(num, den, out=np.zeros(len(tau)), where=den != 0)
        v0 = gamma_u[j][u0]
        v0 += gamma_t[j][t0]
        if k:
            v0 += X0 @ gamma_x[j]
        v0 *= -w0
        # Theorem 3: each cluster's sum of v_it e~_it over untreated and treated rows
        S[:, j] = np.bincount(cl0, weights=v0 * resid0, minlength=G) + np.bincount(
            cl1, weights=wj * (tau - tt), minlength=G
        )
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
            # event time of untreated rows (-inf for never-treated units)
            y[i0],
            time[i0] - cohort[i0],
            uc[i0],
            tc[i0],
            Xall[i0],
            wobs[i0],
            cl[i0],
            n_pre,
            G,
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
            "unit": unit_ids[unit_code[i1]],
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
        n_units=int(np.count_nonzero(np.bincount(unit_code))),
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
