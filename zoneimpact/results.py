"""Result objects shared by every estimator.

Estimators return an :class:`EstimationResult` (or a subclass carrying estimator-specific
pieces such as ``att_gt`` or ``donor_weights``). Results are immutable: inference methods
that change the standard errors return a *new* result (the linearmodels convention), and
tables, plots and run directories only read them.

The coefficient table ``terms`` has one row per reported number, keyed by ``term``:
``att`` for an overall effect, ``event:E``, ``cohort:G``, ``calendar:T`` for aggregations,
``weight:DONOR`` for synthetic-control donor weights, or a regression coefficient name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ZoneImpactError

TERM_COLUMNS = ("term", "estimate", "se")


@dataclass(frozen=True)
class EstimationResult:
    """Estimates with their standard errors, read-only.

    Parameters
    ----------
    estimator : str
        Registry name of the estimator (``"twfe"``, ``"callaway_santanna"``...).
    outcome : str
        Outcome column.
    terms : pandas.DataFrame
        Columns ``term``, ``estimate``, ``se`` and optionally ``band_low``/``band_high``
        (simultaneous confidence band) and ``df`` (degrees of freedom for t-based CIs).
    main_term : str
        The headline term reported by :attr:`estimate` and :attr:`se`.
    n_units, n_obs : int
        Units and observations used.
    vcov : numpy.ndarray, optional
        Covariance of the estimates in ``terms`` order (where available).
    info : dict
        Settings and diagnostics worth reporting (control group, clusters, fixed
        effects, pre-trend p-value, ...). Shown by :meth:`glance`.
    """

    estimator: str
    outcome: str
    terms: pd.DataFrame
    main_term: str = "att"
    n_units: int = 0
    n_obs: int = 0
    vcov: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    alpha: float = 0.05

    def __post_init__(self) -> None:
        missing = [c for c in TERM_COLUMNS if c not in self.terms.columns]
        if missing:
            raise ZoneImpactError(f"Result terms lack column(s) {missing}.")
        if self.terms["term"].duplicated().any():
            dup = self.terms.loc[self.terms["term"].duplicated(), "term"].iloc[0]
            raise ZoneImpactError(f"Result has the term {dup!r} twice.")

    # ------------------------------------------------------------------ headline
    def _row(self, term: str) -> pd.Series:
        hit = self.terms.loc[self.terms["term"] == term]
        if hit.empty:
            raise KeyError(f"No term {term!r}; terms are {self.terms['term'].tolist()}.")
        return hit.iloc[0]

    @property
    def estimate(self) -> float:
        """The headline estimate (``main_term``)."""
        return float(self._row(self.main_term)["estimate"])

    @property
    def se(self) -> float:
        """Standard error of the headline estimate."""
        return float(self._row(self.main_term)["se"])

    def coef(self, term: str) -> float:
        return float(self._row(term)["estimate"])

    # ------------------------------------------------------------------ inference
    def _crit(self, alpha: float) -> np.ndarray:
        if "df" in self.terms.columns:
            df = self.terms["df"].to_numpy(dtype=float)
            return np.where(
                np.isfinite(df),
                stats.t.ppf(1 - alpha / 2, np.where(np.isfinite(df), df, 1)),
                stats.norm.ppf(1 - alpha / 2),
            )
        return np.full(len(self.terms), stats.norm.ppf(1 - alpha / 2))

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Pointwise confidence intervals, indexed by term."""
        alpha = self.alpha if alpha is None else alpha
        est = self.terms["estimate"].to_numpy(float)
        se = self.terms["se"].to_numpy(float)
        crit = self._crit(alpha)
        return pd.DataFrame(
            {"lower": est - crit * se, "upper": est + crit * se},
            index=pd.Index(self.terms["term"], name="term"),
        )

    def pvalues(self) -> pd.Series:
        est = self.terms["estimate"].to_numpy(float)
        se = self.terms["se"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        if "df" in self.terms.columns:
            df = self.terms["df"].to_numpy(float)
            p = np.where(
                np.isfinite(df),
                2 * stats.t.sf(np.abs(z), np.where(np.isfinite(df), df, 1)),
                2 * stats.norm.sf(np.abs(z)),
            )
        else:
            p = 2 * stats.norm.sf(np.abs(z))
        return pd.Series(p, index=pd.Index(self.terms["term"], name="term"), name="p_value")

    def tidy(self, alpha: float | None = None) -> pd.DataFrame:
        """Broom-style table: one row per term with estimate, std_error, statistic,
        p_value, conf_low, conf_high (and band_low/band_high when a uniform band exists).
        """
        ci = self.conf_int(alpha)
        t = self.terms
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = t["estimate"].to_numpy(float) / t["se"].to_numpy(float)
        out = pd.DataFrame(
            {
                "term": t["term"].to_numpy(),
                "estimate": t["estimate"].to_numpy(float),
                "std_error": t["se"].to_numpy(float),
                "statistic": stat,
                "p_value": self.pvalues().to_numpy(),
                "conf_low": ci["lower"].to_numpy(),
                "conf_high": ci["upper"].to_numpy(),
            }
        )
        for extra in ("band_low", "band_high"):
            if extra in t.columns:
                out[extra] = t[extra].to_numpy(float)
        return out

    def glance(self) -> pd.DataFrame:
        """One-row model summary: estimator, outcome, counts and the ``info`` scalars."""
        row: dict[str, Any] = {
            "estimator": self.estimator,
            "outcome": self.outcome,
            "n_units": self.n_units,
            "n_obs": self.n_obs,
        }
        row.update({k: v for k, v in self.info.items() if np.isscalar(v) or v is None})
        return pd.DataFrame([row])

    def summary(self) -> str:
        """A plain-text summary for the console."""
        head = f"{self.estimator} on {self.outcome}: {self.n_units} units, {self.n_obs} obs"
        scalars: dict[str, Any] = {k: v for k, v in self.info.items() if np.isscalar(v)}
        extras = ", ".join(f"{k}={v}" for k, v in scalars.items())
        body = self.tidy().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return "\n".join(x for x in (head, extras, body) if x)

    def __repr__(self) -> str:
        try:
            return f"<{type(self).__name__} {self.estimator} {self.outcome} {self.main_term}={self.estimate:.6g} (se {self.se:.4g})>"
        except KeyError:
            return f"<{type(self).__name__} {self.estimator} {self.outcome}>"

    def records(self, alpha: float | None = None) -> list[dict[str, Any]]:
        """One dict per term in the ``results.json`` schema (without the run's name)."""
        tidy = self.tidy(alpha)
        out = []
        for row in tidy.itertuples(index=False):
            out.append(
                {
                    "estimator": self.estimator,
                    "outcome": self.outcome,
                    "term": row.term,
                    "estimate": _num(row.estimate),
                    "se": _num(row.std_error),
                    "ci_low": _num(row.conf_low),
                    "ci_high": _num(row.conf_high),
                    "n_units": int(self.n_units),
                }
            )
        return out

    def artifacts(self) -> dict[str, pd.DataFrame]:
        """Tables beyond ``terms`` that a run directory saves as CSV (donor weights, time
        weights, placebo distributions, group-time effects...). Subclasses add theirs.
        """
        return {}

    def with_terms(self, terms: pd.DataFrame, **changes: Any) -> EstimationResult:
        """A new result of the same type with other standard errors / terms."""
        return replace(self, terms=terms, **changes)

    # ------------------------------------------------------------------ maketables hooks
    @property
    def __maketables_coef_table__(self) -> pd.DataFrame:
        t = self.tidy()
        return pd.DataFrame(
            {
                "b": t["estimate"].to_numpy(),
                "se": t["std_error"].to_numpy(),
                "p": t["p_value"].to_numpy(),
                "t": t["statistic"].to_numpy(),
                "ci95l": t["conf_low"].to_numpy(),
                "ci95u": t["conf_high"].to_numpy(),
            },
            index=pd.Index(t["term"].to_numpy(), name="Coefficient"),
        )

    def __maketables_stat__(self, key: str) -> Any:
        return {"N": self.n_obs, "n_units": self.n_units, **self.info}.get(key)

    @property
    def __maketables_depvar__(self) -> str:
        return self.outcome


def _num(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    x = float(x)
    return x if math.isfinite(x) else None


def terms_frame(terms: list[str], estimate: Any, se: Any, **extra: Any) -> pd.DataFrame:
    """Build a ``terms`` table from parallel arrays."""
    data = {
        "term": list(terms),
        "estimate": np.asarray(estimate, float),
        "se": np.asarray(se, float),
    }
    for k, v in extra.items():
        data[k] = np.asarray(v, float)
    return pd.DataFrame(data)
