"""Poisson pseudo-maximum likelihood (PPML) with unit and time fixed effects.

For a non-negative outcome with zeros, such as city FDI, the log of the outcome drops the
zeros and log(1 + y) depends on the units; PPML (Santos Silva & Tenreyro 2006) models the
conditional mean multiplicatively,

    E[y_it | i, t, D_it] = exp(alpha_i + lambda_t + beta * D_it),

so ``exp(beta) - 1`` is the proportional change of the mean at the zone's opening, zeros
included. Units whose outcome is zero in every period carry no information on beta (their
fixed effect diverges) and are dropped, as fixest's ``fepois`` does; the count is reported.

Estimation is iteratively reweighted least squares with the unit and time effects absorbed
by the weighted within transformation (:func:`._fe.absorb`), fixest's ``fepois`` strategy,
and cluster-robust standard errors with the factor ``G/(G-1) (N-1)/(N-K)``. Why not
statsmodels' GLM, which this module used before: it needs one dummy per unit, and with 500
units (mpdta) a fit took over 10 s on this machine against ~0.1 s here; the coefficients
and SEs are the same (to the IRLS tolerance, ``tests/test_ppml.py``), and pyfixest
``fepois`` is matched to 1e-9 in ``tests/test_designs.py`` (with ``ssc="fixest"``).

``result.with_inference("cluster", cluster=...)`` re-clusters the kept scores
``w_i (y_i - mu_i) x~_i`` and bread (the inverse Fisher information on the absorbed design,
pyfixest ``fepois``'s CRV1) one or two ways without refitting; ``att_pct`` follows by the
same delta method as in :func:`fit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..inference.covariance import crv1
from ..panel import Panel, _v
from ..results import EstimationResult, check_choice, check_fit_arguments, terms_frame
from ._fe import absorb, cluster_ssc_k
from ._scale import scale_equivariant, unit_scale
from ._weights import check_weight_name, weight_values
from .twfe import _cluster_codes, _fixest_k, _row_clusters


@dataclass(frozen=True)
class PoissonDesign:
    """What another clustering of a PPML fit needs, without refitting: the treatment
    dummy after the weighted within transformation ``x~`` (weights ``w mu``), the weighted
    residuals ``w (y - mu)`` (scores ``w (y - mu) x~``), the bread
    ``(x~' W diag(mu) x~)^{-1}``, the fixed-effect codes and rank, and the rows (unit and
    time), on the unit scale the fit works on (:func:`._scale.unit_scale`). The covariance is
    invariant to the outcome's and the weights' scale (the scores scale by ``c``, the
    bread by ``1/c``), so nothing here is rescaled."""

    Xd: np.ndarray
    wresid: np.ndarray
    bread: np.ndarray
    fe: list[np.ndarray]
    fe_rank: int
    rows: pd.DataFrame


@dataclass(frozen=True)
class PPMLResult(EstimationResult):
    """Result of :func:`fit`; ``with_inference`` re-clusters the kept
    :class:`PoissonDesign` without refitting (pyfixest ``fepois``'s ``vcov=`` switch)."""

    design: PoissonDesign | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self, method: str = "cluster", *, cluster: Any = None, ssc: str | None = None
    ) -> PPMLResult:
        """The same coefficient with the CR1 covariance clustered another way.

        Parameters
        ----------
        method : {"cluster"}
            CR1 clustered covariance, one way or two ways (Cameron, Gelbach & Miller
            2011; :func:`zoneimpact.inference.covariance.crv1`); ``att_pct`` by the delta
            method as in :func:`fit`.
        cluster : str, pandas.Series, or a list of two, optional
            A panel or geography column (numeric or string), or labels as a Series indexed
            by unit (or by (unit, time)); None: by unit.
        ssc : {"statsmodels", "fixest"}, optional
            Small-sample ``K`` (default: the fit's; see :func:`fit`).
        """
        if self.design is None:
            raise EstimationError(
                "This result keeps no PPML design (it was not made by ppml.fit); refit to "
                "change its inference."
            )
        check_choice(method, "method", ("cluster",))
        ssc = str(self.info["ssc"]) if ssc is None else ssc
        check_choice(ssc, "ssc", ("statsmodels", "fixest"))
        d = self.design
        codes, cname = _row_clusters(self.panel, d.rows, cluster)
        big_k = 1 + d.fe_rank if ssc == "statsmodels" else _fixest_k(1, d.fe, codes)
        cov, g = crv1(d.Xd, d.wresid, d.bread, codes, n_params=big_k)
        # two-way CGM can give a negative variance: NaN, as fixest and pyfixest
        se = float(np.sqrt(cov[0, 0])) if cov[0, 0] >= 0 else np.nan
        beta = float(self.terms["estimate"].iloc[0])
        terms = _ppml_terms(beta, se)
        info = {**self.info, "cluster": cname, "n_clusters": int(g), "ssc": ssc}
        return replace(self, terms=terms, vcov=_ppml_vcov(beta, se), info=info)


def _ppml_terms(beta: float, se: float) -> pd.DataFrame:
    """``att`` (beta) and ``att_pct`` (``exp(beta) - 1``, delta-method SE)."""
    return terms_frame(
        ["att", "att_pct"],
        [beta, np.expm1(beta)],
        [se, np.exp(beta) * se],
        df=[np.inf, np.inf],
    )


def _ppml_vcov(beta: float, se: float) -> np.ndarray:
    """The covariance of ``(att, att_pct)`` (the delta method's gradient ``(1, e^beta)``)."""
    out: np.ndarray = se**2 * np.outer([1.0, np.exp(beta)], [1.0, np.exp(beta)])
    return out


@scale_equivariant(result_scales=False)
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    cluster: str | None = None,
    weights: str | None = None,
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
) -> PPMLResult:
    """Static PPML difference in differences with unit and time fixed effects.

    Parameters
    ----------
    panel : Panel
        Validated panel; the treatment dummy is ``time >= cohort``.
    outcome : str
        Non-negative outcome column (zeros allowed).
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"province"``.
    weights : str, optional
        Column of positive observation weights: the weighted Poisson QMLE (each
        observation's score and Hessian scaled by its weight; pyfixest ``fepois(weights=)``,
        statsmodels GLM ``var_weights``), so the small-sample factor still counts
        observations.
    ssc : {"statsmodels", "fixest"}
        ``K`` of the clustered factor ``G/(G-1) (N-1)/(N-K)``: every parameter including
        the unit and time dummies (statsmodels GLM, the default) or fixest/pyfixest's
        default, which leaves out the effects nested in the clusters (see
        :func:`._fe.cluster_ssc_k`).

    Returns
    -------
    PPMLResult
        Terms ``att`` (beta, the log-point effect on the conditional mean) and
        ``att_pct`` (``exp(beta) - 1`` with a delta-method standard error).
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="ppml")
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    weights = check_weight_name(panel, weights)
    # a weight missing on an observed row is refused (weight_values), not dropped
    data = panel.data.dropna(subset=[outcome])
    if data.empty:
        raise EstimationError(f"PPML: {outcome!r} is missing in every row; nothing to estimate.")
    y = data[outcome].to_numpy(float)
    if (y < 0).any():
        i = int(np.flatnonzero(y < 0)[0])
        raise EstimationError(
            f"PPML needs a non-negative outcome; {outcome!r} is {float(y[i])!r} at unit "
            f"{_v(data['unit'].iloc[i])!r}, period {_v(data['time'].iloc[i])!r}."
        )
    positive = data.groupby("unit")[outcome].transform("sum") > 0
    n_dropped = int(data.loc[~positive, "unit"].nunique())
    data = data.loc[positive]
    if data.empty:
        raise EstimationError(
            f"PPML: {outcome!r} is zero in every row of every unit ({n_dropped} unit(s)); a "
            "unit whose outcome is always zero carries no information, so nothing is left."
        )
    d = (data["time"] >= data["cohort"]).astype(float).to_numpy()
    if np.ptp(d) == 0:
        raise EstimationError("The treatment dummy does not vary: nobody is treated in the sample.")
    _check_separation(data, outcome, d)
    codes, cname = _cluster_codes(panel, data, cluster)
    n_clusters = int(len(np.unique(codes)))
    if n_clusters < 2:
        raise EstimationError(
            f"Clustered standard errors need at least two clusters of {cname!r}; the sample "
            "has one. Cluster on another variable or add units."
        )
    w = weight_values(data, weights) if weights else None
    fe = [pd.factorize(data["unit"])[0], pd.factorize(data["time"])[0]]
    y = data[outcome].to_numpy(float)
    beta, se, fe_rank, kept = _ppml_fe(y, d[:, None], fe, w, codes)
    n = len(y)
    # statsmodels' K counts every dummy (the FE's exact rank); fixest's leaves out the
    # effects nested in the clusters
    big_k = 1 + fe_rank if ssc == "statsmodels" else cluster_ssc_k(1, fe, codes)
    if n <= big_k:
        raise EstimationError(
            f"PPML: no residual degrees of freedom ({n} observations, {big_k} parameters)."
        )
    se *= float(np.sqrt(n_clusters / (n_clusters - 1) * (n - 1) / (n - big_k)))
    if not (np.isfinite(beta) and np.isfinite(se)):
        raise EstimationError(
            f"PPML did not give a finite coefficient and standard error (estimate {beta!r}, SE "
            f"{se!r}) on {data['unit'].nunique()} unit(s) in {n_clusters} clusters of "
            f"{cname!r}: the design is too small (or separated) for the clustered variance. "
            "Add units or use twfe."
        )
    return PPMLResult(
        estimator="ppml",
        outcome=outcome,
        terms=_ppml_terms(beta, se),
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=_ppml_vcov(beta, se),
        info={
            "cluster": cname,
            "n_clusters": n_clusters,
            "fixed_effects": "unit + time",
            "units_all_zero_dropped": n_dropped,
            "weights": weights or "",
            "ssc": ssc,
        },
        alpha=alpha,
        design=PoissonDesign(*kept, fe=fe, fe_rank=fe_rank, rows=data[["unit", "time"]]),
        panel=panel,
    )


def _check_separation(data: pd.DataFrame, outcome: str, d: np.ndarray) -> None:
    """Refuse a treatment dummy that separates the zeros, for which the Poisson QMLE does
    not exist (Santos Silva & Tenreyro 2010; Correia, Guimaraes & Zylkin 2019, "Verifying
    the existence of maximum likelihood estimates for generalized linear models"): when
    every treated observation is 0, ``z = D`` is non-negative where ``y = 0`` and zero
    where ``y > 0``, so the likelihood keeps rising as ``beta -> -inf`` and IRLS stops at an
    arbitrary large negative value (-32 with an SE of 0.3); when every untreated one is 0,
    ``1 - D`` (in the span of the period effects) does the same with ``beta -> +inf``."""
    y = data[outcome].to_numpy(float)
    for side, rows, limit in (("treated", d == 1, "-inf"), ("untreated", d == 0, "+inf")):
        if (y[rows] == 0).all():
            units = data.loc[rows, "unit"].unique()
            raise EstimationError(
                f"PPML: {outcome!r} is 0 in every {side} observation ({int(rows.sum())} rows "
                f"of {len(units)} unit(s), first unit {_v(units[0])!r}): the treatment dummy "
                "separates the zeros (Correia, Guimaraes & Zylkin 2019), so the Poisson "
                f"estimate does not exist (beta -> {limit}). Use twfe, or an outcome with "
                f"positive {side} values."
            )


def _ppml_fe(
    y: np.ndarray,
    X: np.ndarray,
    fe: list[np.ndarray],
    w: np.ndarray | None,
    cluster: np.ndarray,
    tol: float = 1e-13,
    maxiter: int = 500,
) -> tuple[float, float, int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Poisson QMLE with absorbed fixed effects by iteratively reweighted least squares.

    Each step is the weighted regression of the working outcome ``z = eta + (y - mu)/mu``
    on ``X`` and the fixed effects with weights ``w mu`` (McCullagh & Nelder 1989, Section
    2.5; with the effects absorbed by the weighted within transformation, as fixest's
    ``fepois``, Berge 2018), until the deviance stops changing. Returns the first
    coefficient, its clustered sandwich SE without small-sample factor (scores
    ``w (y - mu) x~``, bread ``(x~' W mu x~)^{-1}``, ``x~`` the within-transformed
    regressors), the fixed effects' rank, and ``(x~, w (y - mu), bread)`` for
    :meth:`PPMLResult.with_inference`.
    """
    # on the unit scale (see _scale.unit_scale): beta and the sandwich do not depend on it, the
    # convergence test does
    y = y / unit_scale(y)
    wobs = np.ones(len(y)) if w is None else w / unit_scale(w)
    mu = (y + y.mean()) / 2  # fixest's starting values: positive wherever y is
    eta = np.log(mu)
    dev_old = np.inf
    rank = 0
    for _ in range(maxiter):
        z = eta + (y - mu) / mu
        ww = wobs * mu
        Z, rank = absorb(np.column_stack([z, X]), fe, weights=ww)
        zd, Xd = Z[:, 0], Z[:, 1:]
        beta = np.linalg.solve((Xd * ww[:, None]).T @ Xd, (Xd * ww[:, None]).T @ zd)
        eta = z - (zd - Xd @ beta)  # X beta + the fitted fixed effects
        mu = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylog = np.where(y > 0, y * np.log(y / mu), 0.0)
        dev = 2 * float(wobs @ (ylog - (y - mu)))
        if abs(dev - dev_old) / (0.1 + abs(dev)) < tol:
            break
        dev_old = dev
    else:
        raise EstimationError(
            f"PPML did not converge in {maxiter} iterations (deviance {dev:.6g}); the "
            "outcome may be separated (a period or unit whose outcome is always zero)."
        )
    ww = wobs * mu
    Xd, _ = absorb(X, fe, weights=ww)
    bread = np.linalg.inv((Xd * ww[:, None]).T @ Xd)
    g = int(cluster.max()) + 1
    resid = wobs * (y - mu)
    scores = np.stack([np.bincount(cluster, x * resid, g) for x in Xd.T], axis=1)
    cov = bread @ (scores.T @ scores) @ bread
    return float(beta[0]), float(np.sqrt(cov[0, 0])), rank, (Xd, resid, bread)
