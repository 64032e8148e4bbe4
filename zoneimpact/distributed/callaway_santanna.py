"""Callaway & Sant'Anna (2021) ATT(g,t) on a Dask DataFrame, from per-partition sums.

Same estimator as :func:`zoneimpact.estimators.callaway_santanna.fit` (Callaway, B. and
Sant'Anna, P. H. C. 2021, "Difference-in-Differences with multiple time periods", *J.
Econometrics* 225(2); 2x2 estimators of Sant'Anna & Zhao 2020, *J. Econometrics* 219(1)),
computed where the data live. Every 2x2 comparison of cohort ``g`` in period ``t`` against
base period ``b`` uses each unit's change ``dY_i = Y_it - Y_ib`` only, and a unit's rows sit
in one partition (:func:`.read_panel` shuffles on unit), so:

1. **Sums** (one pass): per cell, the (weighted) counts and sums of ``dY`` of treated and
   control units; with covariates also the control group's ``sum w X'X`` and ``sum w X'dY``
   (outcome regression, SZ eq. 2.2) and the logit's gradient and Hessian at zero.
2. **Logit** (``ipw``/``dr``): Newton-Raphson, each step one pass returning every cell's
   gradient ``sum w X'(D - p)`` and Hessian ``sum w p(1-p) X'X`` at its current
   coefficients, from the same start and with the same stopping rule as in memory.
3. **Moments** (covariates): the weighted means and the ``m1``-``m3`` vectors of the DRDID
   influence functions (SZ 2020, Appendix), and the largest propensity score (overlap).
4. **Influence functions** (one pass): each unit's influence function for every cell,
   computed in its partition from the global sums; the blocks come back to the client.

The client then builds the same :class:`GroupTime` blocks as the in-memory fit and calls
its aggregation (``aggregate_terms``, CS Section 3) and inference (``_infer``, Theorem 2 /
Algorithm 1), so the result is a :class:`CallawaySantAnnaResult` (``.aggregate`` and
``.with_inference`` work) equal to the in-memory fit up to the order of floating-point
sums (``tests/test_distributed.py``: 1e-10).

What must fit on the client: the influence-function matrix, units x (cells + cohorts)
float64 (1,000,000 units x 30 columns = 240 MB), which the aggregations and the variance
need; the partitions hold the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..errors import EstimationError, PanelError
from ..estimators._scale import rescale_result
from ..estimators.callaway_santanna import (
    _AGGREGATIONS,
    _OVERLAP,
    _PS_CAP,
    _TRIM_LEVEL,
    CallawaySantAnnaResult,
    GroupTime,
    _Cell,
    _cell_influence,
    _check_cells,
    _check_design,
    _check_window,
    _fit_info,
    _infer,
    _inference_info,
    _make_cells,
    _Options,
    _settings,
    _terms_and_cells,
    _warn_few_treated_clusters,
    aggregate_terms,
)
from ..panel import TieKeys, _v, canonical_positions
from ..parallel import as_generator
from ..results import check_alpha, check_bool, check_choice, check_int
from ._frame import (
    DaskPanel,
    check_covariates_read,
    check_dask_panel,
    compute_blocks,
    moments,
    persist_blocks,
    pooled_moments,
    summed,
    tie_columns,
    unit_tables,
    uses_column,
)
from .twfe import scaled_panel

__all__ = ["fit"]


# ---------------------------------------------------------------------- partition blocks
def _covariate_moments(df: pd.DataFrame, *, covs: list[str]) -> np.ndarray:
    """Per covariate: count, mean and sum of squared deviations of its observed values
    in one partition (combined stably across partitions by :func:`_standardisation`)."""
    return np.array([moments(df[c].to_numpy(dtype=float)) for c in covs]).reshape(len(covs), 3)


def _standardisation(parts: list[Any], covs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The centre and scale of each covariate over all its observed values, as the
    in-memory ``_standard`` (Chan, Golub & LeVeque's pairwise update, so a covariate with a
    large offset keeps its digits)."""
    if not covs:
        return np.zeros(0), np.ones(0)
    n, mean, m2 = pooled_moments(compute_blocks([_covariate_moments], parts, covs=covs))
    sd = np.sqrt(m2 / np.where(n > 0, n, 1))
    ok = np.isfinite(sd) & (sd > 0)
    return np.where(ok, mean, 0.0), np.where(ok, sd, 1.0)


def _wide_block(
    df: pd.DataFrame,
    *,
    periods: np.ndarray,
    outcome: str,
    covs: list[str],
    weighted: bool = False,
    centre: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> dict[str, Any]:
    """Units x periods arrays of one partition (its units sorted), as in memory: the
    sampling weights only when the fit uses them, the covariates centred and scaled as
    the in-memory ``_standard`` does (``centre``, ``scale``)."""
    ucode, units = pd.factorize(df["unit"], sort=True)
    tcode = np.searchsorted(periods, df["time"].to_numpy())
    n, n_t = len(units), len(periods)

    def wide(col: str) -> np.ndarray:
        out = np.full((n, n_t), np.nan)
        out[ucode, tcode] = df[col].to_numpy(dtype=float)
        return out

    g = np.full(n, np.nan)
    g[ucode] = df["cohort"].to_numpy(dtype=float)
    w = np.ones(n)
    if weighted and "weight" in df.columns:
        w[ucode] = df["weight"].to_numpy(dtype=float)
    labels = None
    if "cluster" in df.columns:
        labels = np.empty(n, dtype=object)
        labels[ucode] = df["cluster"].to_numpy()
    return {
        "units": np.asarray(units),
        "g": g,
        "y": wide(outcome),
        "x": [
            (wide(c) - (0.0 if centre is None else centre[j]))
            / (1.0 if scale is None else scale[j])
            for j, c in enumerate(covs)
        ],
        "w": w,
        "labels": labels,
    }


def _masks(
    blk: dict[str, Any], cell: _Cell, periods: np.ndarray, cg: str, anticipation: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Treated and control units of one cell in a block, their changes, and the columns."""
    c = int(np.searchsorted(periods, cell.t))
    b = cell.base
    g = blk["g"]
    never = ~np.isfinite(g)
    treat = g == cell.g
    if cg == "never_treated":
        ctrl = never.copy()
    else:
        cutoff = max(periods[c], periods[b]) + anticipation
        ctrl = never | ((g > cutoff) & (g != cell.g))
    dy = blk["y"][:, c] - blk["y"][:, b]
    ok = np.isfinite(dy)
    return treat & ok, ctrl & ok, dy, c, b


def _design(blk: dict[str, Any], sub: np.ndarray, col: int) -> np.ndarray:
    return np.column_stack([np.ones(int(sub.sum()))] + [xv[sub, col] for xv in blk["x"]])


def _first_sums(blk: dict[str, Any], *, cells: list[_Cell], ctx: dict[str, Any]) -> dict[str, Any]:
    """Pass 1: counts and sums of the changes per cell; control-group OLS pieces and the
    first logit step with covariates; the first unit with a missing covariate."""
    k, p = len(cells), 1 + len(blk["x"])
    uw = blk["w"] / ctx["mean_w"]
    out = {name: np.zeros(k) for name in ("n_t", "n_c", "sw_t", "sw_c", "swdy_t", "swdy_c")}
    if p > 1:
        out.update(
            xtx=np.zeros((k, p, p)), xty=np.zeros((k, p)), hess=np.zeros((k, p, p)),
            grad=np.zeros((k, p)), n_sub=np.zeros(k),
        )  # fmt: skip
    bad: tuple[int, Any, int, int] | None = None
    for j, cell in enumerate(cells):
        if cell.base == int(np.searchsorted(ctx["periods"], cell.t)):
            continue
        treat, ctrl, dy, c, b = _masks(blk, cell, ctx["periods"], ctx["cg"], ctx["anticipation"])
        out["n_t"][j], out["n_c"][j] = treat.sum(), ctrl.sum()
        out["sw_t"][j], out["sw_c"][j] = uw[treat].sum(), uw[ctrl].sum()
        out["swdy_t"][j] = uw[treat] @ dy[treat]
        out["swdy_c"][j] = uw[ctrl] @ dy[ctrl]
        if p == 1:
            continue
        sub = treat | ctrl
        x = _design(blk, sub, min(b, c))
        finite = np.all(np.isfinite(x), axis=1)
        if not finite.all():
            if bad is None:
                row = int(np.flatnonzero(~finite)[0])
                cov = int(np.flatnonzero(~np.isfinite(x[row, 1:]))[0])
                bad = (j, blk["units"][np.flatnonzero(sub)[row]], cov, min(b, c))
            continue
        d, iw = treat[sub].astype(float), uw[sub]
        wc = iw * (1 - d)
        out["xtx"][j] = (x * wc[:, None]).T @ x
        out["xty"][j] = x.T @ (wc * dy[sub])
        out["n_sub"][j] = sub.sum()
        # logit at beta = 0: p = 1/2
        out["hess"][j] = (x * (iw * 0.25)[:, None]).T @ x
        out["grad"][j] = x.T @ (iw * (d - 0.5))
    return {"sums": out, "bad": bad}


def _logit_sums(
    blk: dict[str, Any], *, cells: list[_Cell], active: np.ndarray, beta: np.ndarray,
    ctx: dict[str, Any],
) -> dict[str, np.ndarray]:  # fmt: skip
    """A Newton step's pieces for the cells still iterating: gradient and Hessian of the
    (weighted) logit log-likelihood at ``beta`` (one row per cell)."""
    k, p = beta.shape
    uw = blk["w"] / ctx["mean_w"]
    hess, grad = np.zeros((k, p, p)), np.zeros((k, p))
    for j in np.flatnonzero(active):
        treat, ctrl, _, c, b = _masks(blk, cells[j], ctx["periods"], ctx["cg"], ctx["anticipation"])
        sub = treat | ctrl
        x = _design(blk, sub, min(b, c))
        d, iw = treat[sub].astype(float), uw[sub]
        ps = special.expit(x @ beta[j])
        hess[j] = (x * (iw * ps * (1 - ps))[:, None]).T @ x
        grad[j] = x.T @ (iw * (d - ps))
    return {"hess": hess, "grad": grad}


def _weights_ps(
    x: np.ndarray, d: np.ndarray, iw: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw and capped scores and the trimmed IPW weights of treated and controls (R DRDID)."""
    raw = special.expit(x @ beta)
    ps = np.minimum(raw, _PS_CAP)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    return raw, ps, trim * iw * d, trim * iw * ps * (1 - d) / (1 - ps)


def _moment_sums(
    blk: dict[str, Any], *, cells: list[_Cell], coef: np.ndarray, beta: np.ndarray,
    ctx: dict[str, Any],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Pass 3 (covariates): the sums behind the DRDID means and ``m`` vectors, the
    Hessian at the final logit coefficients and the largest score."""
    k, p = coef.shape
    uw = blk["w"] / ctx["mean_w"]
    method = ctx["method"]
    out = {
        "sw_t": np.zeros(k), "sw_c": np.zeros(k), "swy_t": np.zeros(k), "swy_c": np.zeros(k),
        "swfit_t": np.zeros(k), "swx_t": np.zeros((k, p)), "swx_c": np.zeros((k, p)),
        "swyx_c": np.zeros((k, p)), "hess": np.zeros((k, p, p)), "max_ps": np.zeros(k),
    }  # fmt: skip
    for j in np.flatnonzero(ctx["ok"]):
        treat, ctrl, dy, c, b = _masks(
            blk, cells[j], ctx["periods"], ctx["cg"], ctx["anticipation"]
        )
        sub = treat | ctrl
        if not sub.any():
            continue
        x = _design(blk, sub, min(b, c))
        d, iw, dys = treat[sub].astype(float), uw[sub], dy[sub]
        if method == "reg":
            wt = iw * d
            out["sw_t"][j] = wt.sum()
            out["swy_t"][j] = wt @ dys
            out["swfit_t"][j] = wt @ (x @ coef[j])
            out["swx_t"][j] = wt @ x
            continue
        raw, _, w_t, w_c = _weights_ps(x, d, iw, beta[j])
        out["hess"][j] = (x * (iw * raw * (1 - raw))[:, None]).T @ x
        out["max_ps"][j] = raw.max()
        r = dys - x @ coef[j] if method == "dr" else dys
        out["sw_t"][j], out["sw_c"][j] = w_t.sum(), w_c.sum()
        out["swy_t"][j], out["swy_c"][j] = w_t @ r, w_c @ r
        out["swx_t"][j], out["swx_c"][j] = w_t @ x, w_c @ x
        out["swyx_c"][j] = (w_c * r) @ x
    return out


def _influence_block(
    blk: dict[str, Any], *, cells: list[_Cell], glob: dict[str, Any], ctx: dict[str, Any]
) -> dict[str, Any]:
    """Pass 4: every unit's influence function for every cell (R ``did`` scaling ``n/n_gt``
    times the 2x2 influence function) from the global pieces in ``glob``."""
    n_loc, k = len(blk["units"]), len(cells)
    uw = blk["w"] / ctx["mean_w"]
    psi = np.zeros((n_loc, k), order="F")
    n, method = ctx["n"], ctx["method"]
    for j in np.flatnonzero(glob["estimated"]):
        cell = cells[j]
        treat, ctrl, dy, c, b = _masks(blk, cell, ctx["periods"], ctx["cg"], ctx["anticipation"])
        if method == "unconditional":
            psi[treat, j] = n * uw[treat] * (dy[treat] - glob["mt"][j]) / glob["sw_t"][j]
            psi[ctrl, j] = -n * uw[ctrl] * (dy[ctrl] - glob["mc"][j]) / glob["sw_c"][j]
            continue
        sub = treat | ctrl
        if not sub.any():
            continue
        x = _design(blk, sub, min(b, c))
        d, iw, dys = treat[sub].astype(float), uw[sub], dy[sub]
        n_s = glob["n_sub"][j]
        fitted = x @ glob["coef"][j] if method in ("reg", "dr") else None
        if fitted is not None:
            alr_ols = (iw * (1 - d) * (dys - fitted))[:, None] * x @ glob["xtx_inv_n"][j]
        if method == "reg":
            wt = iw * d
            pt = glob["sw_t"][j] / n_s
            inf_t = (wt * dys - wt * glob["eta_t"][j]) / pt
            inf_c = (wt * fitted - wt * glob["eta_c"][j] + alr_ols @ glob["m1"][j]) / pt
        else:
            _, ps, w_t, w_c = _weights_ps(x, d, iw, glob["beta"][j])
            alr_ps = ((iw * (d - ps))[:, None] * x) @ (glob["hinv"][j] * n_s)
            r = dys - fitted if fitted is not None else dys
            mw_t, mw_c = glob["sw_t"][j] / n_s, glob["sw_c"][j] / n_s
            inf_t = w_t * r - w_t * glob["eta_t"][j]
            inf_c = w_c * r - w_c * glob["eta_c"][j] + alr_ps @ glob["m2"][j]
            if fitted is not None:
                inf_t = inf_t - alr_ols @ glob["m1"][j]
                inf_c = inf_c - alr_ols @ glob["m3"][j]
            inf_t, inf_c = inf_t / mw_t, inf_c / mw_c
        psi[sub, j] = (n / n_s) * (inf_t - inf_c)
    return {
        "units": blk["units"],
        "g": blk["g"],
        "w": blk["w"],
        "y": blk["y"],
        "labels": blk["labels"],
        "psi": psi,
    }


# ---------------------------------------------------------------------- client side
def _check(
    dpanel: DaskPanel,
    outcome: Any,
    control_group: Any,
    est_method: Any,
    covariates: Any,
    base_period: Any,
    aggregations: Any,
) -> tuple[str, str, list[str], list[str]]:
    check_dask_panel(dpanel, outcome)
    cg, method, covs, aggs = _check_design(
        control_group, est_method, covariates, base_period, aggregations
    )
    check_covariates_read(dpanel, covs)
    if not covs:
        method = "unconditional"  # reg, ipw and dr reduce to it without covariates
    return cg, method, covs, aggs


def _newton(
    blocks: list[Any], cells: list[_Cell], first: dict[str, np.ndarray], ok: np.ndarray,
    ctx: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every cell's logit by Newton-Raphson, one pass per step for all cells at once; the
    same start (zero), step and stopping rule as the in-memory ``_logit``."""
    k, p = first["grad"].shape
    beta = np.zeros((k, p))
    active, failed = ok.copy(), np.zeros(k, bool)
    hess, grad = first["hess"], first["grad"]
    for _ in range(100):
        for j in np.flatnonzero(active):
            try:
                step = np.linalg.solve(hess[j], grad[j])
            except np.linalg.LinAlgError:
                active[j], failed[j] = False, True
                continue
            beta[j] = beta[j] + step
            if np.max(np.abs(step)) < 1e-12 * (1 + np.max(np.abs(beta[j]))):
                active[j] = False
        if not active.any():
            break
        s = summed(
            compute_blocks([_logit_sums], blocks, cells=cells, active=active, beta=beta, ctx=ctx)
        )
        hess, grad = s["hess"], s["grad"]
    return beta, failed


def fit(
    dpanel: DaskPanel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    control_group: str = "never_treated",
    est_method: str | None = None,
    covariates: Sequence[str] | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    aggregations: Sequence[str] = _AGGREGATIONS,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
    bootstrap: bool = True,
    n_boot: int = 999,
    cluster: str | bool | None = None,
    uniform_bands: bool = True,
    boot_weights: str = "rademacher",
    chunk_size: int | None = None,
    weights: str | bool | None = None,
) -> CallawaySantAnnaResult:
    """Callaway & Sant'Anna (2021) on a :class:`DaskPanel`, equal to the in-memory fit.

    Parameters are those of :func:`zoneimpact.estimators.callaway_santanna.fit` except:

    Parameters
    ----------
    dpanel : DaskPanel
        From :func:`zoneimpact.distributed.read_panel` (unit-partitioned).
    cluster : str or bool, optional
        The panel's cluster column (its name as read, or True); None or ``"unit"``: by unit.
    weights : str or bool, optional
        The panel's sampling-weight column (its name as read, or True); None: unweighted.

    Returns
    -------
    CallawaySantAnnaResult
        ``info["engine"] = "dask"``; ``panel`` is None, so ``with_inference(cluster=...)``
        takes a pandas Series of labels indexed by unit.
    """
    cg, method, covs, aggs = _check(
        dpanel, outcome, control_group, est_method, covariates, base_period, aggregations
    )
    alpha = check_alpha(alpha)
    anticipation = check_int(anticipation, "anticipation", minimum=0)
    lo, hi, bal = _check_window(min_e, max_e, balance_e)
    bootstrap = check_bool(bootstrap, "bootstrap")
    check_choice(boot_weights, "boot_weights", ("rademacher", "mammen"))
    by_cluster = uses_column(dpanel, cluster, "cluster")
    weighted = uses_column(dpanel, weights, "weights")
    opts = _Options(
        cg=cg,
        est_method=method if covs else (est_method or "unconditional"),
        covs=covs,
        anticipation=anticipation,
        base_period=base_period,
        aggs=aggs,
        min_e=lo,
        max_e=hi,
        balance_e=bal,
        bootstrap=bootstrap,
        n_boot=check_int(n_boot, "n_boot", minimum=2 if bootstrap else 0),
        uniform_bands=check_bool(uniform_bands, "uniform_bands"),
        boot_weights=boot_weights,
        chunk_size=check_int(chunk_size, "chunk_size", minimum=1, none=True),
        weights=dpanel.weights if weighted else None,
    )
    # as the in-memory scale_equivariant: the outcome divided by a power of two (exact)
    # outside [2^-64, 2^64], the result rescaled (y x 1e160 gave SE NaN, and the
    # pre-trend Wald test failed to converge)
    dpanel, c = scaled_panel(dpanel, outcome)
    gt, failed, labels = _att_gt(dpanel, outcome, opts, method, by_cluster)
    _checked_cells(gt, failed, outcome)
    _warn_few_treated_clusters(gt, labels, dpanel.cluster if by_cluster else None, stacklevel=3)
    agg = aggregate_terms(gt, aggs, min_e=lo, max_e=hi, balance_e=bal)
    generator = as_generator(rng) if bootstrap else None
    cname = dpanel.cluster if by_cluster else None
    settings = _settings(opts, labels, cname, n_jobs, generator)
    inf = _infer(
        gt, agg, labels=labels, bootstrap=bootstrap, n_boot=opts.n_boot, rng=generator,
        chunk_size=opts.chunk_size, n_jobs=n_jobs, boot_weights=boot_weights,
        uniform_bands=opts.uniform_bands, alpha=alpha,
    )  # fmt: skip
    terms, table = _terms_and_cells(gt, agg, inf)
    inference = _inference_info(
        inf, terms, bootstrap=bootstrap, n_boot=opts.n_boot, boot_weights=boot_weights,
        cluster=cname, n_units=len(gt.units), anticipation=opts.anticipation,
    )  # fmt: skip
    res = CallawaySantAnnaResult(
        estimator="callaway_santanna",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=len(gt.units),
        n_obs=gt.n_obs,
        vcov=inf.vcov,
        info={**_fit_info(opts, inference, gt, failed), "engine": "dask"},
        alpha=alpha,
        att_gt=table,
        influence=_cell_influence(gt),
        term_influence=gt.basis @ agg.amat,
        units=gt.units,
        group_time=gt,
        panel=None,
        settings=settings,
    )
    return rescale_result(res, c)


def _checked_cells(gt: GroupTime, failed: list[str], outcome: str) -> None:
    """The in-memory ``_check_cells``, whose warning counts one frame (the in-memory fit's
    scale wrapper) between the fit and its caller: this function stands in for it, so the
    warning points at the caller's line here too."""
    _check_cells(gt, failed, outcome)


def _att_gt(
    dpanel: DaskPanel, outcome: str, opts: _Options, method: str, cluster: bool
) -> tuple[GroupTime, list[str], list[np.ndarray]]:
    """The distributed counterpart of the in-memory ``att_gt``: the same cells, ATTs and
    influence-function basis, built from the four passes of the module docstring."""
    import dask

    periods, cohorts = dpanel.periods, dpanel.cohorts
    if opts.cg == "never_treated":
        if dpanel.n_never == 0:
            raise EstimationError(
                "control_group='never_treated' but no unit is never treated (every unit has a "
                "finite cohort). Use control_group='not_yet_treated'."
            )
    if cohorts.size == 0:
        raise EstimationError("No treated cohort in the panel: nothing to estimate.")
    cells = _make_cells(cohorts, periods, opts.anticipation, opts.base_period)
    k = len(cells)
    parts = dpanel.partitions()
    centre, scale = _standardisation(parts, opts.covs)
    blocks = persist_blocks(
        _wide_block, parts, periods=periods, outcome=outcome, covs=opts.covs,
        weighted=opts.weights is not None, centre=centre, scale=scale,
    )  # fmt: skip
    _warn_blank_units(blocks, outcome)
    wsum = sum(dask.compute(*[dask.delayed(_weight_sum)(b, use=opts.weights) for b in blocks]))
    ctx: dict[str, Any] = {
        "periods": periods, "cg": opts.cg, "anticipation": opts.anticipation,
        "mean_w": wsum / dpanel.n_units, "n": dpanel.n_units, "method": method,
    }  # fmt: skip
    if opts.weights is None:
        ctx["mean_w"] = 1.0
    first = compute_blocks([_first_sums], blocks, cells=cells, ctx=ctx)
    _raise_missing_covariate(first, cells, opts.covs, periods)
    s = summed([f["sums"] for f in first])
    normalised = np.array([c.base == int(np.searchsorted(periods, c.t)) for c in cells], dtype=bool)
    att = np.full(k, np.nan)
    att[normalised] = 0.0
    failed: list[str] = []
    for j, cell in enumerate(cells):
        if normalised[j]:
            continue
        cell.n_treated, cell.n_control = int(s["n_t"][j]), int(s["n_c"][j])
        if s["n_t"][j] == 0 or s["n_c"][j] == 0:
            failed.append(
                f"({cell.g:g},{cell.t}) no {'treated' if s['n_t'][j] == 0 else 'control'} units"
            )
    estimated = ~normalised & (s["n_t"] > 0) & (s["n_c"] > 0)
    glob: dict[str, Any] = {"estimated": estimated, "sw_t": s["sw_t"], "sw_c": s["sw_c"]}
    if method == "unconditional":
        with np.errstate(invalid="ignore", divide="ignore"):
            glob["mt"], glob["mc"] = s["swdy_t"] / s["sw_t"], s["swdy_c"] / s["sw_c"]
        att[estimated] = (glob["mt"] - glob["mc"])[estimated]
    else:
        att = _covariate_cells(blocks, cells, s, glob, att, failed, ctx)
    ctx["n"] = dpanel.n_units
    pieces = compute_blocks([_influence_block], blocks, cells=cells, glob=glob, ctx=ctx)
    return _group_time(
        pieces, cells, att, normalised, periods, cohorts, opts, cluster, failed, dpanel, outcome
    )


def _blank_units(blk: dict[str, Any]) -> list[tuple[int, Any]]:
    """Count and first unit (the block's units are sorted) of the units with no observed
    outcome and of those with one observed period."""
    n_seen = np.isfinite(blk["y"]).sum(axis=1)
    return [
        (int(m.sum()), blk["units"][m][0] if m.any() else None) for m in (n_seen == 0, n_seen == 1)
    ]


def _warn_blank_units(blocks: list[Any], outcome: str) -> None:
    """As in memory: units without any observed outcome, or with one observed period,
    enter no ATT(g,t) (each needs two periods) but count in the cohort shares, which the
    caller should know. "first" is the smallest such unit, as in memory."""
    found = compute_blocks([_blank_units], blocks)
    counts = [sum(f[i][0] for f in found) for i in (0, 1)]
    firsts = [min((f[i][1] for f in found if f[i][0]), default=None) for i in (0, 1)]
    said = [
        f"{counts[i]} {more}unit(s) (first {_v(firsts[i])!r}) {what}"
        for i, more, what in (
            (0, "", f"have no observed {outcome!r}"),
            (1, "more " if counts[0] else "", f"have {outcome!r} in one period only"),
        )
        if counts[i]
    ]
    if said:
        warnings.warn(
            f"{' and '.join(said)}; they enter no ATT(g,t) but count in the cohort shares "
            "of the aggregations. Drop them from the panel.",
            stacklevel=4,  # past _att_gt and fit: the caller
        )


def _weight_sum(blk: dict[str, Any], use: str | None) -> float:
    return float(blk["w"].sum()) if use else float(len(blk["w"]))


def _raise_missing_covariate(
    first: list[dict[str, Any]], cells: list[_Cell], covs: list[str], periods: np.ndarray
) -> None:
    bad = [f["bad"] for f in first if f["bad"] is not None]
    if not bad:
        return
    # the first cell, and in it the first unit in the sorted order the in-memory fit reads
    j, unit, cov, col = min(bad, key=lambda b: (b[0], b[1]))
    raise PanelError(
        f"Covariate {covs[cov]!r} is missing for unit {_v(unit)!r} in period {periods[col]} "
        f"(needed for ATT({cells[j].g:g},{cells[j].t})). Impute it or drop the unit."
    )


def _covariate_cells(
    blocks: list[Any], cells: list[_Cell], s: dict[str, np.ndarray], glob: dict[str, Any],
    att: np.ndarray, failed: list[str], ctx: dict[str, Any],
) -> np.ndarray:  # fmt: skip
    """Outcome regression, logit and DRDID moments of every estimated cell (SZ 2020)."""
    method = ctx["method"]
    k, p = s["xty"].shape
    ok = glob["estimated"].copy()
    coef = np.zeros((k, p))
    xtx_inv_n = np.zeros((k, p, p))
    n_sub = s["n_sub"]
    if method in ("reg", "dr"):
        for j in np.flatnonzero(ok):
            xtx = s["xtx"][j]
            if np.linalg.cond(xtx) > 1 / np.finfo(float).eps:
                ok[j] = False
                failed.append(f"({cells[j].g:g},{cells[j].t}) singular control-group design")
                continue
            coef[j] = np.linalg.solve(xtx, s["xty"][j])
            xtx_inv_n[j] = np.linalg.inv(xtx / n_sub[j])
    beta = np.zeros((k, p))
    if method in ("ipw", "dr"):
        beta, bad = _newton(blocks, cells, s, ok, ctx)
        for j in np.flatnonzero(bad & ok):
            failed.append(f"({cells[j].g:g},{cells[j].t}) Singular matrix")
        ok &= ~bad
    m = summed(
        compute_blocks(
            [_moment_sums], blocks, cells=cells, coef=coef, beta=beta, ctx={**ctx, "ok": ok}
        )
    )
    hinv = np.zeros((k, p, p))
    if method in ("ipw", "dr"):
        for j in np.flatnonzero(ok):
            if m["max_ps"][j] >= _OVERLAP:
                ok[j] = False
                failed.append(
                    f"({cells[j].g:g},{cells[j].t}) propensity score reaches "
                    f"{m['max_ps'][j]:.4f} (overlap violated)"
                )
                continue
            hinv[j] = np.linalg.inv(m["hess"][j])
            # as the in-memory _trimmed_weights (DRDID refuses such a 2x2): no control weight
            # left after trimming is a failed cell, not a NaN that drops its cohort from the
            # aggregations unreported
            if not m["sw_c"][j] > 0:
                ok[j] = False
                failed.append(
                    f"({cells[j].g:g},{cells[j].t}) all {int(s['n_c'][j])} control unit(s) "
                    f"have a propensity score >= {_TRIM_LEVEL} and are trimmed (no control "
                    "weight left)"
                )
            elif not m["sw_t"][j] > 0:
                ok[j] = False
                failed.append(
                    f"({cells[j].g:g},{cells[j].t}) the treated units have no positive weight"
                )
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_t = m["swy_t"] / m["sw_t"]
        eta_c = m["swfit_t"] / m["sw_t"] if method == "reg" else m["swy_c"] / m["sw_c"]
        n_s = np.where(n_sub > 0, n_sub, 1.0)[:, None]
        m1 = m["swx_t"] / n_s
        m2 = (m["swyx_c"] - eta_c[:, None] * m["swx_c"]) / n_s
        m3 = m["swx_c"] / n_s
    att[ok] = (eta_t - eta_c)[ok]
    # a cell that failed after pass 1 has no influence function (zero column, NaN ATT)
    att[glob["estimated"] & ~ok] = np.nan
    glob.update(
        estimated=ok, coef=coef, beta=beta, hinv=hinv, xtx_inv_n=xtx_inv_n, n_sub=n_sub,
        sw_t=m["sw_t"], sw_c=m["sw_c"], eta_t=eta_t, eta_c=eta_c, m1=m1, m2=m2, m3=m3,
    )  # fmt: skip
    return att


def _tie_keys(dpanel: DaskPanel, outcome: str, units: np.ndarray) -> TieKeys:
    """The other numeric columns of ``units`` (the fit's), as :meth:`Panel.canonical_order`
    breaks ties in cohort and outcome by them; a unit without rows reads missing data."""
    columns = tie_columns(dpanel, outcome)
    index, _, tables = unit_tables(dpanel, columns)
    tables = [np.vstack([t, np.full((1, t.shape[1]), np.nan)]) for t in tables]
    return TieKeys(index.get_indexer(pd.Index(units)), tables, [])


def _group_time(
    pieces: list[dict[str, Any]], cells: list[_Cell], att: np.ndarray, normalised: np.ndarray,
    periods: np.ndarray, cohorts: np.ndarray, opts: _Options, cluster: bool, failed: list[str],
    dpanel: DaskPanel, outcome: str,
) -> tuple[GroupTime, list[str], list[np.ndarray]]:  # fmt: skip
    """Gather the partitions' influence blocks in the in-memory unit order and build the
    :class:`GroupTime` blocks (cohort-share columns and canonical order as in memory)."""
    units = np.concatenate([pc["units"] for pc in pieces])
    order = np.argsort(units, kind="stable")
    units = units[order]
    gvec = np.concatenate([pc["g"] for pc in pieces])[order]
    uw = np.concatenate([pc["w"] for pc in pieces])[order] if opts.weights else np.ones(len(units))
    y = np.concatenate([pc["y"] for pc in pieces])[order]
    psi = np.concatenate([pc["psi"] for pc in pieces])[order]
    uw = uw / uw.mean()
    k = len(cells)
    basis = np.zeros((len(units), k + len(cohorts)), order="F")
    basis[:, :k] = psi
    pg_cohort = np.array([np.mean(uw * (gvec == g)) for g in cohorts])
    for i, g in enumerate(cohorts):
        basis[:, k + i] = uw * (gvec == g) - pg_cohort[i]
    basis[:, :k][:, ~np.isfinite(att)] = 0.0
    # the label-free order of Panel.canonical_order, through the same function: by
    # cohort, the outcome by period, ties by the other numeric columns (read only if tied)
    canon = canonical_positions(gvec, y, lambda: _tie_keys(dpanel, outcome, units))
    labels: list[np.ndarray] = []
    if cluster:
        labels = [np.concatenate([pc["labels"] for pc in pieces])[order]]
    gt = GroupTime(
        units=units,
        periods=periods,
        cohorts=cohorts,
        cell_g=np.array([cl.g for cl in cells]),
        cell_t=np.array([cl.t for cl in cells]),
        cell_e=np.array([cl.e for cl in cells]),
        cell_base=periods[[cl.base for cl in cells]],
        att=att,
        normalised=normalised,
        n_treated=np.array([cl.n_treated for cl in cells]),
        n_control=np.array([cl.n_control for cl in cells]),
        basis=basis,
        pg_cohort=pg_cohort,
        order=canon,
        n_obs=int(np.isfinite(y).sum()),
    )
    return gt, failed, labels
