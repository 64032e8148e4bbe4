r"""Pre-trend diagnostics for event-study results: a joint Wald test and an equivalence test.

Both work on any :class:`~zoneimpact.results.EstimationResult` whose ``terms`` hold
``event:E`` rows (event time ``E``; negative = before the zone opens).

* :func:`pretrend_wald` tests H0: every pre-period coefficient is zero, with the Wald
  statistic :math:`W = \hat\beta' \hat V^{-1} \hat\beta \sim \chi^2_L` over the ``L``
  leads (Callaway & Sant'Anna 2021, Section 4.2 pre-tests; the usual joint test of
  leads). Failing to reject is *not* evidence of parallel trends (Roth 2022).
* :func:`pretrend_equivalence` reverses the burden of proof (Hartman & Hidalgo 2018,
  "An Equivalence Approach to Balance and Placebo Tests", AJPS 62(4); applied to
  event-study leads as in Dette & Schumann 2024, "Testing for Equivalence of Pre-Trends
  in Difference-in-Differences Estimation", JBES): H0: :math:`\max_l |\beta_l| \ge m`
  versus H1: every lead lies inside :math:`(-m, m)`. Implemented as an
  intersection-union test of per-lead TOSTs (Schuirmann 1987; Berger & Hsu 1996): each
  lead's TOST p-value is :math:`\max\{1-\Phi((\hat\beta_l + m)/s_l),
  \Phi((\hat\beta_l - m)/s_l)\}` and the joint p-value is the largest of them, a
  level-alpha test without multiplicity correction (conservative; Dette & Schumann's
  bootstrap test of the maximum is sharper). The smallest margin at which equivalence
  is concluded, :math:`\max_l (|\hat\beta_l| + z_{1-\alpha} s_l)`, is reported too.

Reference periods are excluded: rows whose standard error is zero or NaN (the
normalised period of a universal-base or regression event study).

When the result has no ``vcov`` (or it does not cover the leads) the Wald test uses the
diagonal matrix of squared standard errors, which ignores correlation between leads;
the output says so in ``vcov_source``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, stats

from ..errors import SpecError, ZoneImpactError
from ..results import EstimationResult

__all__ = ["pre_period_terms", "pretrend_equivalence", "pretrend_wald"]


def _terms(obj: EstimationResult | pd.DataFrame) -> pd.DataFrame:
    terms = obj.terms if isinstance(obj, EstimationResult) else obj
    if not isinstance(terms, pd.DataFrame) or not {"term", "estimate", "se"} <= set(terms):
        raise ZoneImpactError(
            "Expected an EstimationResult or a terms table with columns term, estimate, se."
        )
    return terms.reset_index(drop=True)


def pre_period_terms(obj: EstimationResult | pd.DataFrame) -> pd.DataFrame:
    """Rows ``event:E`` with ``E < 0`` and a positive finite standard error.

    Returns the rows with an added integer column ``event_time`` and ``position`` (row
    position in the full terms table, to index a ``vcov``).
    """
    terms = _terms(obj)
    name = terms["term"].astype(str)
    is_event = name.str.match(r"^event:-?\d+$")
    ev = terms.loc[is_event].copy()
    ev["event_time"] = name[is_event].str.slice(6).astype(int)
    ev["position"] = ev.index.to_numpy()
    se = ev["se"].to_numpy(float)
    keep = (ev["event_time"] < 0) & np.isfinite(se) & (se > 0) & np.isfinite(ev["estimate"])
    return ev.loc[keep.to_numpy()].reset_index(drop=True)


def pretrend_wald(
    result_or_terms: EstimationResult | pd.DataFrame, vcov: np.ndarray | None = None
) -> dict[str, Any]:
    """Joint Wald test that all pre-period event-time coefficients are zero.

    Parameters
    ----------
    result_or_terms : EstimationResult or DataFrame
        A result (its ``vcov`` is used unless ``vcov`` is given) or a terms table.
    vcov : ndarray, optional
        Covariance overriding the result's: of every row of the terms table (full size)
        or of the leads alone (``L x L``, in the order of the table's leads); any other
        shape raises :class:`~zoneimpact.errors.SpecError`.

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p_value`` (NaN when there is no lead), ``terms`` (the
        leads used) and ``vcov_source`` (``"vcov"`` or ``"diagonal se"``).
    """
    terms = _terms(result_or_terms)
    explicit = vcov is not None
    if vcov is None and isinstance(result_or_terms, EstimationResult):
        vcov = result_or_terms.vcov
    pre = pre_period_terms(terms)
    out: dict[str, Any] = {
        "statistic": float("nan"),
        "df": 0,
        "p_value": float("nan"),
        "terms": pre["term"].tolist(),
        "vcov_source": "none",
    }
    if pre.empty:
        return out
    beta = pre["estimate"].to_numpy(float)
    pos = pre["position"].to_numpy()
    v = None
    if vcov is not None:
        vcov = np.asarray(vcov, dtype=float)
        if vcov.shape == (len(terms), len(terms)):
            v = vcov[np.ix_(pos, pos)]
            out["vcov_source"] = "vcov"
        elif explicit and vcov.shape == (len(pre), len(pre)):
            # the caller's covariance of the leads themselves, in the order of ``terms``
            v = vcov
            out["vcov_source"] = "vcov"
        elif explicit:
            # a covariance given on purpose is never swapped for the diagonal silently
            raise SpecError(
                f"vcov has shape {vcov.shape}; pass the covariance of every row of the terms "
                f"table ({len(terms)}, {len(terms)}) or of the {len(pre)} leads "
                f"{pre['term'].tolist()} ({len(pre)}, {len(pre)})."
            )
    if v is None:
        v = np.diag(pre["se"].to_numpy(float) ** 2)
        out["vcov_source"] = "diagonal se"
    # A pseudo-inverse keeps the test defined when leads are collinear (e.g. a lead that
    # is an exact average of others); the degrees of freedom are the matrix rank.
    vinv = linalg.pinvh(v)
    rank = int(np.linalg.matrix_rank(v))
    stat = float(beta @ vinv @ beta)
    out.update(statistic=stat, df=rank, p_value=float(stats.chi2.sf(stat, rank)))
    return out


def pretrend_equivalence(
    result: EstimationResult | pd.DataFrame, margin: float, alpha: float = 0.05
) -> dict[str, Any]:
    """Equivalence (TOST, intersection-union) test that all leads lie within ``±margin``.

    Parameters
    ----------
    result : EstimationResult or DataFrame
        Holds ``event:E`` terms with standard errors.
    margin : float
        Equivalence margin ``m > 0`` in outcome units (for log outcomes, log points).
    alpha : float
        Level; equivalence is concluded when ``p_value < alpha``.

    Returns
    -------
    dict
        ``p_value`` (largest per-lead TOST p-value), ``equivalent`` (bool), ``max_abs``
        (largest absolute lead), ``min_margin`` (smallest margin giving equivalence at
        ``alpha``), ``margin``, ``alpha`` and ``table`` (one row per lead with
        ``p_lower``, ``p_upper``, ``p_tost``).
    """
    if not np.isfinite(margin) or margin <= 0:
        raise ZoneImpactError(f"Equivalence margin must be a positive number; received {margin!r}.")
    if not 0 < alpha < 1:
        raise ZoneImpactError(f"alpha must lie in (0, 1); received {alpha!r}.")
    pre = pre_period_terms(result)
    if pre.empty:
        raise ZoneImpactError(
            "No pre-period event-time terms (event:E with E < 0 and a standard error) to "
            "test; estimate an event study with leads first."
        )
    b = pre["estimate"].to_numpy(float)
    s = pre["se"].to_numpy(float)
    p_lower = stats.norm.sf((b + margin) / s)  # H0: beta <= -m
    p_upper = stats.norm.cdf((b - margin) / s)  # H0: beta >= m
    p_tost = np.maximum(p_lower, p_upper)
    z = stats.norm.ppf(1 - alpha)
    table = pd.DataFrame(
        {
            "term": pre["term"],
            "event_time": pre["event_time"],
            "estimate": b,
            "se": s,
            "p_lower": p_lower,
            "p_upper": p_upper,
            "p_tost": p_tost,
        }
    )
    p = float(p_tost.max())
    return {
        "p_value": p,
        "equivalent": bool(p < alpha),
        "max_abs": float(np.abs(b).max()),
        "min_margin": float(np.max(np.abs(b) + z * s)),
        "margin": float(margin),
        "alpha": float(alpha),
        "table": table,
    }
