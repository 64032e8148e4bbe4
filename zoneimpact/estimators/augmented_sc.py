"""Augmented synthetic control with a ridge outcome model (Ben-Michael, Feller & Rothstein
2021, JASA, "The Augmented Synthetic Control Method").

Ridge ASC (Section 4, eq. 11-12): start from SC weights ``gamma_scm`` fitted on the
pre-period outcomes (simplex QP, see :mod:`zoneimpact.estimators._simplex`), then correct
the remaining pre-period imbalance with a ridge regression of the post-period outcomes on
the pre-period outcomes among controls. In weight form (eq. 12, Lemma 2):

    gamma_aug = gamma_scm + (X1 - X0' gamma_scm)' (X0c' X0c + lambda I)^{-1} X0c'

with ``X0`` the controls' pre-period outcomes (``X0c`` centred by their control means, as
R ``augsynth`` does) and ``X1`` the treated unit's. The ATT is the mean post-period gap
``Y1_t - gamma_aug' Y0_t``; the weights may be negative (extrapolation, controlled by
``lambda``).

``lambda_`` is chosen, when not given, by the paper's cross-validation (Section 4.3):
each of the last ``min(T0 - 1, 5)`` pre-periods is held out in turn, weights are fitted on
the periods before it, and the held-out prediction error is averaged; over a geometric
grid the largest lambda whose CV error is within one standard error of the minimum is
taken (the 1-SE rule of R ``augsynth``).

Standard error: leave-one-control-out jackknife of the ATT (R ``augsynth``'s
``inf_type = "jackknife"``), ``sqrt((n-1)/n * sum (theta_(i) - mean)^2)`` over the control
units (the treated unit is never dropped since there is one); conformal inference is not
implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..panel import Panel
from ..results import EstimationResult, terms_frame
from ._sc_common import never_treated, outcome_matrix, require_donors
from ._simplex import simplex_qp


@dataclass(frozen=True)
class AugmentedSCResult(EstimationResult):
    """Ridge-augmented SC result: ``donor_weights`` (augmented, may be negative),
    ``sc_weights`` (the simplex SC weights), ``gaps`` by period, ``lambda_``.
    """

    donor_weights: pd.Series = field(default_factory=pd.Series)
    sc_weights: pd.Series = field(default_factory=pd.Series)
    gaps: pd.Series = field(default_factory=pd.Series)
    lambda_: float = np.nan

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {
            "donor_weights": pd.DataFrame({"augmented": self.donor_weights, "sc": self.sc_weights})
            .rename_axis("unit")
            .reset_index(),
            "gaps": self.gaps.rename("gap").rename_axis("time").reset_index(),
        }


def _weights(X1: np.ndarray, X0: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(gamma_aug, gamma_scm) for pre-period outcomes X1 (T0,), X0 (N0, T0)."""
    w_sc, _ = simplex_qp(X0.T, X1)
    mu = X0.mean(axis=0)
    X0c = X0 - mu
    imbalance = (X1 - mu) - X0c.T @ w_sc
    # (X0c' X0c + lam I)^{-1} in T0 x T0 form: gamma adj = X0c (X0c'X0c + lam I)^{-1} imbalance
    T0 = X0.shape[1]
    adj = X0c @ np.linalg.solve(X0c.T @ X0c + lam * np.eye(T0), imbalance)
    return w_sc + adj, w_sc


def _cv_lambda(X1: np.ndarray, X0: np.ndarray, n_holdout: int = 5) -> float:
    T0 = X0.shape[1]
    h = min(T0 - 1, n_holdout)
    if h < 1:
        return 0.0
    s = np.linalg.svd(X0 - X0.mean(axis=0), compute_uv=False)
    top = float(s[0] ** 2) if s.size else 1.0
    grid = top * np.geomspace(1e-8, 1.0, 25)
    errs = np.empty((len(grid), h))
    for j, t in enumerate(range(T0 - h, T0)):
        for i, lam in enumerate(grid):
            g, _ = _weights(X1[:t], X0[:, :t], lam)
            errs[i, j] = (X1[t] - X0[:, t] @ g) ** 2
    m = errs.mean(axis=1)
    se = errs.std(axis=1, ddof=1) / np.sqrt(h) if h > 1 else np.zeros(len(grid))
    i0 = int(np.argmin(m))
    ok = np.flatnonzero(m <= m[i0] + se[i0])
    return float(grid[ok.max()])


def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    treated_unit: Any = None,
    treatment_start: int | None = None,
    lambda_: float | None = None,
    se: bool = True,
    donors: Sequence[Any] | None = None,
) -> AugmentedSCResult:
    """Ridge augmented synthetic control (Ben-Michael, Feller & Rothstein 2021, eq. 11-12).

    Parameters
    ----------
    panel : Panel
        Balanced over the treated unit(s) and the never-treated donors.
    outcome : str
        Outcome column.
    rng, n_jobs
        Unused (deterministic); accepted for the common interface.
    alpha : float
        Level of the normal confidence interval.
    treated_unit : unit id or list, optional
        Default: the panel's treated units (one cohort; several are averaged).
    treatment_start : int, optional
        First treated period when ``treated_unit`` is not marked in the panel.
    lambda_ : float, optional
        Ridge penalty; default chosen by cross-validation (module docstring).
    se : bool
        Leave-one-control-out jackknife standard error.
    donors : list, optional
        Donor pool; default the never-treated units.

    Returns
    -------
    AugmentedSCResult
        Term ``att``.
    """
    coh = panel.unit_cohort
    if treated_unit is None:
        tr = coh.index[np.isfinite(coh.to_numpy())].tolist()
    else:
        tr = list(treated_unit) if isinstance(treated_unit, list | tuple) else [treated_unit]
        miss = [u for u in tr if u not in coh.index]
        if miss:
            raise EstimationError(f"Treated unit {miss[0]!r} is not in the panel.")
    if not tr:
        raise EstimationError("No treated unit in the panel; pass treated_unit=.")
    if treatment_start is None:
        gs = {float(coh.loc[u]) for u in tr if np.isfinite(coh.loc[u])}
        if len(gs) != 1:
            raise EstimationError(
                f"Treated units {tr} need one common treatment start (found {sorted(gs)}); "
                "pass treatment_start= or choose one cohort."
            )
        g = int(gs.pop())
    else:
        g = int(treatment_start)
    pool = [u for u in (never_treated(panel) if donors is None else list(donors)) if u not in tr]
    require_donors(pool)
    if lambda_ is not None and lambda_ < 0:
        raise SpecError(f"lambda_ must be >= 0; received {lambda_}.")
    periods = np.asarray(panel.periods)
    pre, post = periods < g, periods >= g
    if pre.sum() < 1 or post.sum() < 1:
        raise EstimationError(f"Need pre- and post-treatment periods around {g}.")
    Y = outcome_matrix(panel, outcome, [*tr, *pool], periods, estimator="Augmented SC")
    Yt = Y.loc[tr].to_numpy(float).mean(axis=0)
    Y0 = Y.loc[pool].to_numpy(float)
    lam = _cv_lambda(Yt[pre], Y0[:, pre]) if lambda_ is None else float(lambda_)
    w_aug, w_sc = _weights(Yt[pre], Y0[:, pre], lam)
    gaps = Yt - w_aug @ Y0
    att = float(gaps[post].mean())
    se_val = np.nan
    if se and len(pool) >= 3:
        vals = []
        for i in range(len(pool)):
            keep = np.delete(np.arange(len(pool)), i)
            wi, _ = _weights(Yt[pre], Y0[keep][:, pre], lam)
            vals.append(float((Yt[post] - wi @ Y0[keep][:, post]).mean()))
        v = np.asarray(vals)
        n = len(v)
        se_val = float(np.sqrt((n - 1) / n * np.sum((v - v.mean()) ** 2)))
    idx = pd.Index(pool, name="unit")
    return AugmentedSCResult(
        estimator="augmented_sc",
        outcome=outcome,
        terms=terms_frame(["att"], [att], [se_val]),
        n_units=len(tr) + len(pool),
        n_obs=int(Y.size),
        info={
            "lambda": lam,
            "treatment_start": g,
            "n_donors": len(pool),
            "pre_rmspe": float(np.sqrt(np.mean(gaps[pre] ** 2))),
            "se_method": "jackknife",
        },
        alpha=alpha,
        donor_weights=pd.Series(w_aug, index=idx, name="weight"),
        sc_weights=pd.Series(w_sc, index=idx, name="weight"),
        gaps=pd.Series(gaps, index=pd.Index(periods, name="time"), name="gap"),
        lambda_=lam,
    )
