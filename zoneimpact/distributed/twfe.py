"""Static two-way fixed-effects DiD on a Dask DataFrame (unit and period effects absorbed).

The regression of :func:`zoneimpact.estimators.twfe.fit`::

    y_it = alpha_i + lambda_t + beta * D_it + x_it' gamma + e_it,   D_it = 1[t >= G_i]

with the fixed effects absorbed by **alternating projections** (Gauss-Seidel on the normal
equations of the dummies; Guimaraes & Portugal 2010, "A simple feasible procedure to fit
models with high-dimensional fixed effects", *Stata Journal* 10(4); Gaure 2013, "OLS with
multiple high dimensional category variables", *CSDA* 66). Each sweep removes unit means
and then period means from ``[y, D, x]``: unit means are local (a unit's rows sit in one
partition), period means are a global reduction (per-partition sums by period, added on the
client). The period effects are accumulated on the client, so a sweep is one pass that
returns a periods x columns table; on a balanced panel the second sweep finds nothing left
to remove. By Frisch-Waugh-Lovell, OLS on the residualised columns gives the coefficients
of the dummy regression; its ``X'X`` and ``X'y`` are per-partition sums, and the CR1
covariance (Liang & Zeger 1986; Cameron & Miller 2015 eq. 12) needs per-cluster score sums
``sum_{i in c} x_i u_i``, which a second pass returns (clusters are constant within unit, so
a cluster's score is the sum of its units' scores, wherever they sit).

The small-sample factor ``G/(G-1) (N-1)/(N-K)`` uses ``K`` as in memory: every absorbed
parameter (``ssc="statsmodels"``: regressors + units + periods - connected components of
the unit-period graph) or fixest's nested count (``ssc="fixest"``: regressors + periods).

Why by hand: no Dask library absorbs fixed effects from partition sums; the in-memory
engine's exact ``L x L`` step (:mod:`zoneimpact.estimators._fe`) needs all rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..estimators._scale import outcome_scale, rescale_result
from ..estimators.twfe import TWFEResult
from ..inference.covariance import FEW_TREATED_CLUSTERS, warn_few_treated
from ..results import check_alpha, check_choice, check_names, terms_frame
from ._frame import (
    DaskPanel,
    check_dask_panel,
    cluster_sums,
    compute_blocks,
    midranges,
    persist_blocks,
    summed,
    uses_column,
)

__all__ = ["fit", "outcome_divisor", "scaled_panel"]

#: Sweeps of the alternating projections before giving up.
_MAX_SWEEPS = 10_000
#: Stop when the largest period-mean correction is below this fraction of the column's
#: scale: the coefficients then agree with the exact within transformation to ~1e-12.
_TOL = 1e-14


def outcome_divisor(centre: float, half: float) -> float:
    """The power of two the in-memory ``scale_equivariant`` divides the outcome by,
    from its midrange and half-width (:func:`midranges`: the largest absolute value is
    ``|centre| + half``); 1.0 when the outcome lies in ``[2^-64, 2^64]``."""
    return outcome_scale(np.array([abs(centre) + half]))


def scaled_panel(dpanel: DaskPanel, outcome: str) -> tuple[DaskPanel, float]:
    """The panel with ``outcome`` divided by :func:`outcome_divisor` (exact: a power of
    two), and the divisor. Estimating on it and returning ``result.rescaled(c)`` keeps
    the fit scale-equivariant, as the in-memory ``scale_equivariant`` decorator does:
    squares of outcomes near 1e160 overflow (SEs inf/NaN) and near 1e-160 underflow
    (SEs off by up to 35%, a breaker's check). The panel is returned unchanged when the
    divisor is 1."""
    centre, half = midranges(dpanel.partitions(), [outcome])
    c = outcome_divisor(float(centre[0]), float(half[0]))
    if c == 1.0:
        return dpanel, c
    frame = dpanel.frame.assign(**{outcome: dpanel.frame[outcome] / c})
    return replace(dpanel, frame=frame), c


def _block(
    df: pd.DataFrame,
    *,
    periods: np.ndarray,
    outcome: str,
    covs: list[str],
    cluster: bool,
    centre: np.ndarray | None = None,
    divisor: float = 1.0,
) -> dict[str, Any]:
    """Rows with the outcome and covariates observed: local unit codes, period codes, the
    columns ``[y, D, x]`` (``y / divisor`` and ``x`` less ``centre``, :func:`midranges`)
    and the cluster label of each row."""
    df = df.dropna(subset=[outcome, *covs])
    ucode, units = pd.factorize(df["unit"], sort=True)
    d = (df["time"].to_numpy() >= df["cohort"].to_numpy()).astype(float)
    c = np.zeros(1 + len(covs)) if centre is None else centre
    z = np.column_stack(
        [
            df[outcome].to_numpy(float) / divisor - c[0],
            d,
            *(df[v].to_numpy(float) - c[1 + j] for j, v in enumerate(covs)),
        ]
    )
    tcode = np.searchsorted(periods, df["time"].to_numpy())
    labels = df["cluster"].to_numpy() if cluster else np.asarray(units)[ucode]
    # edges of the unit-period graph: each unit joins its first period to its others
    first = pd.Series(tcode).groupby(ucode).transform("min").to_numpy()
    edges = np.unique(np.column_stack([first, tcode]), axis=0) if len(df) else np.zeros((0, 2))
    return {
        "ucode": ucode, "n_units": len(units), "tcode": tcode, "z": z, "labels": labels,
        "edges": edges,
    }  # fmt: skip


def _treated_labels(blk: dict[str, Any]) -> list[Any]:
    """Distinct cluster labels of the partition's treated rows, at most
    ``FEW_TREATED_CLUSTERS`` of them (more cannot change whether the caller is warned,
    and a label per treated unit need not travel to the client)."""
    labels = pd.unique(blk["labels"][blk["z"][:, 1] == 1])
    return list(labels[:FEW_TREATED_CLUSTERS])


def _demeaned(blk: dict[str, Any], tau: np.ndarray) -> np.ndarray:
    """``[y, D, x]`` minus the current period effects, then minus unit means (local)."""
    z = blk["z"] - tau[blk["tcode"]]
    n_u = blk["n_units"]
    cnt = np.bincount(blk["ucode"], minlength=n_u)
    means = (
        np.column_stack(
            [np.bincount(blk["ucode"], weights=z[:, j], minlength=n_u) for j in range(z.shape[1])]
        )
        / cnt[:, None]
    )
    return z - means[blk["ucode"]]


def _sweep(blk: dict[str, Any], *, tau: np.ndarray) -> dict[str, np.ndarray]:
    """One sweep's reduction: sums of the unit-demeaned columns by period."""
    r = _demeaned(blk, tau)
    n_t = tau.shape[0]
    sums = np.column_stack(
        [np.bincount(blk["tcode"], weights=r[:, j], minlength=n_t) for j in range(r.shape[1])]
    )
    return {"sums": sums, "count": np.bincount(blk["tcode"], minlength=n_t).astype(float)}


def _gram(blk: dict[str, Any], *, tau: np.ndarray) -> dict[str, np.ndarray]:
    """``X'X``, ``X'y`` of the residualised columns and the squares of the raw regressors."""
    r = _demeaned(blk, tau)
    x, y = r[:, 1:], r[:, 0]
    return {
        "xtx": x.T @ x,
        "xty": x.T @ y,
        "ss_raw": (blk["z"][:, 1:] ** 2).sum(axis=0),
        "ss_within": (x**2).sum(axis=0),
        "n_treated_rows": np.array(float((blk["z"][:, 1] == 1).sum())),
    }


def _scores(blk: dict[str, Any], *, tau: np.ndarray, beta: np.ndarray) -> pd.DataFrame:
    """Per-cluster sums of the scores ``x_i u_i`` of one partition."""
    r = _demeaned(blk, tau)
    x = r[:, 1:]
    u = r[:, 0] - x @ beta
    frame = pd.DataFrame(x * u[:, None])
    frame["_cluster"] = blk["labels"]
    return frame.groupby("_cluster", sort=False).sum()


def _components(edges: np.ndarray, n_t: int) -> int:
    """Connected components of the periods linked through units (union-find)."""
    parent = list(range(n_t))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges.astype(int):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    return len({root(a) for a in range(n_t)})


def fit(
    dpanel: DaskPanel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: Sequence[str] | None = None,
    cluster: str | bool | None = None,
    ssc: str = "statsmodels",
) -> TWFEResult:
    """Static TWFE coefficient with unit and period effects on a :class:`DaskPanel`.

    Parameters
    ----------
    dpanel : DaskPanel
        From :func:`zoneimpact.distributed.read_panel`.
    outcome : str
        Outcome column.
    rng, n_jobs : unused
        Accepted for the common estimator signature (nothing is random).
    alpha : float
        Level of the confidence intervals.
    covariates : sequence of str, optional
        Time-varying covariates added linearly.
    cluster : str or bool, optional
        The panel's cluster column (its name as read, or True; constant within unit); None
        or ``"unit"``: by unit.
    ssc : {"statsmodels", "fixest"}
        Small-sample ``K`` (see the module docstring).

    Returns
    -------
    TWFEResult
        Term ``att`` (and covariates), CR1 clustered SEs with ``G - 1`` degrees of freedom.
        No regression design is kept (``with_inference`` needs the in-memory fit).
    """
    covs = _check_options(dpanel, outcome, covariates, ssc)
    alpha = check_alpha(alpha)
    by_cluster = uses_column(dpanel, cluster, "cluster")
    parts = dpanel.partitions()
    centre, half = midranges(parts, [outcome, *covs])
    # the outcome divided by a power of two (exact) outside [2^-64, 2^64], as in memory:
    # scores and their squares overflow at y x 1e160 (SE inf) and underflow at 1e-160
    c = outcome_divisor(float(centre[0]), float(half[0]))
    centre, half = centre.copy(), half.copy()
    centre[0], half[0] = centre[0] / c, half[0] / c
    blocks = persist_blocks(
        _block, parts, periods=dpanel.periods, outcome=outcome, covs=covs,
        cluster=by_cluster, centre=centre, divisor=c,
    )  # fmt: skip
    tau, present, sweeps = _absorb(
        blocks, n_periods=len(dpanel.periods), n_cols=2 + len(covs),
        floor=np.r_[half[0], 0.5, half[1:]],
    )  # fmt: skip
    n_units, n_obs, fe_rank = _sample_size(blocks, outcome=outcome, present=present)
    names = ["att", *covs]
    beta, bread = _ols(blocks, tau=tau, names=names, n_obs=n_obs)
    # as in memory: the clusters holding a treated row (stacklevel 2: the caller of fit)
    held = set().union(*compute_blocks([_treated_labels], blocks))
    warn_few_treated(
        len(held),
        f"cluster(s) of {dpanel.cluster if by_cluster else 'unit'!r} (with treated units)",
        stacklevel=2,
    )
    scores = cluster_sums(compute_blocks([_scores], blocks, tau=tau, beta=beta))
    big_k = len(names) + (fe_rank if ssc == "statsmodels" else int(present.sum()))
    vcov = _cr1_vcov(scores, bread, n_obs=n_obs, big_k=big_k)
    n_clusters = len(scores)
    se = np.sqrt(np.diag(vcov))
    res = TWFEResult(
        estimator="twfe",
        outcome=outcome,
        terms=terms_frame(names, beta, se, df=np.full(len(names), n_clusters - 1)),
        n_units=int(n_units),
        n_obs=int(n_obs),
        vcov=vcov,
        info={
            "cluster": dpanel.cluster if by_cluster else "unit",
            "n_clusters": n_clusters,
            "fixed_effects": "unit + time",
            "ssc": ssc,
            "weights": "",
            "engine": "dask",
            "sweeps": sweeps,
        },
        alpha=alpha,
    )
    return rescale_result(res, c)


def _check_options(
    dpanel: DaskPanel, outcome: str, covariates: Sequence[str] | None, ssc: str
) -> list[str]:
    """The panel, outcome, covariates and ``ssc`` checked before any data are read;
    returns the covariate names."""
    check_dask_panel(dpanel, outcome)
    covs = check_names(covariates, "covariates")
    unknown = [c for c in covs if c not in dpanel.covariates]
    if unknown:
        raise SpecError(
            f"Covariate(s) {unknown} not in the panel; covariates: {list(dpanel.covariates)}."
        )
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    return covs


def _absorb(
    blocks: list[Any], *, n_periods: int, n_cols: int, floor: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Alternating projections: the period effects of every column ``[y, D, x]``
    accumulated on the client until a sweep's correction is negligible next to the
    column's first correction, or to ``floor`` (half its range, :func:`midranges`) where
    that correction is rounding.
    Returns them, the periods with rows and the number of sweeps."""
    tau = np.zeros((n_periods, n_cols))
    scale = None
    for sweep in range(1, _MAX_SWEEPS + 1):
        s = summed(compute_blocks([_sweep], blocks, tau=tau))
        present = s["count"] > 0
        delta = np.zeros_like(tau)
        delta[present] = s["sums"][present] / s["count"][present, None]
        if scale is None:
            # in each column's own units: a floor of 1 let a covariate in small units
            # (x * 1e-12) stop after one sweep, and the first correction alone made a
            # column constant within units (corrections of rounding) sweep 10,000 times
            first = np.abs(delta).max(axis=0)
            size = np.zeros(n_cols) if floor is None else floor
            # a first correction below 1e-10 of the column's range is rounding: such a
            # column is judged against its range instead
            scale = np.maximum(np.where(first > 1e-10 * size, first, size), 1e-300)
        tau = tau + delta
        if np.all(np.abs(delta).max(axis=0) <= _TOL * scale):
            return tau, present, sweep
    raise EstimationError(
        f"The alternating projections did not converge in {_MAX_SWEEPS} sweeps (the "
        "unit-period graph is very weakly connected)."
    )


def _sample_size(blocks: list[Any], *, outcome: str, present: np.ndarray) -> tuple[int, int, int]:
    """Units, rows, and the rank of the unit and period dummies (units + periods -
    connected components of the unit-period graph)."""
    import dask

    meta = dask.compute(
        *[dask.delayed(lambda b: (b["n_units"], len(b["tcode"]), b["edges"]))(b) for b in blocks]
    )
    n_units, n_obs = sum(a for a, _, _ in meta), sum(b for _, b, _ in meta)
    if n_obs == 0:
        raise EstimationError(f"No observations with a non-missing {outcome!r}.")
    edges = np.concatenate([e for _, _, e in meta])
    n_comp = _components(edges, len(present)) - int((~present).sum())
    return n_units, n_obs, n_units + int(present.sum()) - n_comp


def _ols(
    blocks: list[Any], *, tau: np.ndarray, names: list[str], n_obs: int
) -> tuple[np.ndarray, np.ndarray]:
    """OLS on the residualised columns (Frisch-Waugh-Lovell) from the summed ``X'X`` and
    ``X'y``, after checking that the regressors vary within the fixed effects and are not
    collinear. Returns the coefficients and ``(X'X)^{-1}``."""
    g = summed(compute_blocks([_gram], blocks, tau=tau))
    if g["n_treated_rows"] in (0, n_obs):
        raise EstimationError("The treatment dummy does not vary: nobody is treated in the sample.")
    # relative to each regressor's own (centred) variation, so that its units do not decide
    # (the in-memory TWFE's rule; x * 1e-12 was called absorbed, x * 1e9 collinear)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.sqrt(g["ss_within"] / g["ss_raw"])
    gone = [c for c, r in zip(names, within, strict=True) if not r >= 1e-9]
    if gone:
        raise EstimationError(
            f"Regressor(s) {gone} do not vary within the fixed effects ('unit', 'time'): they "
            "are absorbed (e.g. by the unit fixed effects); drop them."
        )
    d = np.sqrt(np.diag(g["xtx"]))
    unit = g["xtx"] / np.outer(d, d)
    if np.linalg.matrix_rank(unit) < len(names):
        raise EstimationError(
            f"Regressors {names} are collinear once the fixed effects are absorbed; drop one."
        )
    inv = np.linalg.inv(unit) / np.outer(d, d)
    return np.linalg.solve(unit, g["xty"] / d) / d, inv


def _cr1_vcov(scores: np.ndarray, bread: np.ndarray, *, n_obs: int, big_k: int) -> np.ndarray:
    """CR1 sandwich ``G/(G-1) (N-1)/(N-K) B (S'S) B`` from the per-cluster score sums
    (Cameron & Miller 2015 eq. 12)."""
    n_clusters = len(scores)
    if n_clusters < 2:
        raise EstimationError("Clustered standard errors need at least two clusters.")
    if n_obs <= big_k:
        raise EstimationError(
            f"No residual degrees of freedom: {n_obs} observations for {big_k} parameters."
        )
    factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - big_k)
    return factor * bread @ (scores.T @ scores) @ bread
