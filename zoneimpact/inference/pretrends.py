r"""Pre-trend diagnostics for event-study results: a joint Wald test and an equivalence test.

Both work on any :class:`~zoneimpact.results.EstimationResult` whose ``terms`` hold
``event:E`` rows (event time ``E``; negative = before the zone opens).

* :func:`pretrend_wald` tests H0: every pre-period coefficient is zero with the Wald
  statistic :math:`W = \hat\beta' \hat V^{-1} \hat\beta` over the ``L`` leads (Callaway &
  Sant'Anna 2021, Section 4.2 pre-tests; the usual joint test of leads). Its reference
  depends on whether the number of clusters ``G`` is given:

  - ``n_clusters=G`` (recommended for a cluster-robust ``V``): Hotelling's :math:`T^2`
    reference. A cluster-robust covariance is built from ``G`` cluster scores, so
    :math:`T^2 = W` (CR1 covariance, with the ``G/(G-1)`` factor of Stata / fixest) or
    :math:`T^2 = W (G-1)/G` (CR0, :math:`\sum_g s_g s_g'/n^2`, the influence-function
    covariance of Callaway & Sant'Anna and R ``did``) is Hotelling's statistic, and
    :math:`F = (G-L)/(L(G-1))\,T^2 \sim F(L, G-L)` (Hotelling 1931, "The generalization
    of Student's ratio", Ann. Math. Stat. 2(3); exact for i.i.d. normal cluster scores;
    the reference of the approximate Hotelling test of Pustejovsky & Tipton 2018,
    "Small-sample methods for cluster-robust variance estimation and hypothesis
    testing", JBES 36(4), with the ``G - 1`` degrees of freedom of ``G`` cluster scores
    in place of their CR2-based estimate). Referring
    :math:`W` to :math:`\chi^2_L` instead over-rejects badly with few clusters (a
    measured 60% at ``G = 10``, ``L = 6`` for a nominal 5%). With ``L >= G`` (or a
    covariance of rank below ``L``) the leads cannot be tested jointly: the p-value is
    NaN with a note, never a test of a subspace.
  - ``n_clusters=None`` (default, backward compatible): :math:`W \sim \chi^2_r`, ``r``
    the rank of :math:`\hat V` (a pseudo-inverse keeps collinear leads defined). Only
    valid with many clusters.

  Failing to reject is *not* evidence of parallel trends (Roth 2022).
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

import numbers
import warnings
from typing import Any, Literal

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
    result_or_terms: EstimationResult | pd.DataFrame,
    vcov: np.ndarray | None = None,
    *,
    n_clusters: int | None = None,
    vcov_type: Literal["CR1", "CR0"] = "CR1",
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
    n_clusters : int, optional
        Number of clusters ``G`` behind a cluster-robust ``vcov`` (the smaller dimension's
        when clustered two ways; the number of units for a unit-level influence-function
        covariance). Given, the statistic is referred to Hotelling's
        ``F(L, G - L)`` (see the module docstring); not given, to ``chi2`` (large-``G``
        approximation, over-rejects with few clusters).
    vcov_type : {"CR1", "CR0"}
        Only with ``n_clusters``: ``"CR1"`` when ``vcov`` carries the ``G/(G-1)`` factor
        (regression estimators: Stata, fixest, statsmodels), ``"CR0"`` when it is the
        plain sum of outer products of cluster scores (influence-function estimators:
        Callaway & Sant'Anna, and imputation's estimands; imputation's Test 1 leads carry
        fixest's CR1 factor, so their ``vcov_type`` is ``"CR1"``). ``CR0`` rescales ``W``
        by ``(G-1)/G``.

    Returns
    -------
    dict
        ``statistic`` (the Wald ``W``), ``reference`` (``"chi2"`` or ``"F"``), ``df``
        (chi2: rank of the leads' covariance; F: ``L``), ``df2`` (``G - L``; None for
        chi2), ``f_statistic`` (``(G-L)/(L(G-1)) T^2``; NaN for chi2), ``p_value`` (NaN
        when there is no lead or, for F, when ``L >= G`` or the covariance is singular),
        ``n_clusters``, ``note`` (why a p-value is NaN; empty otherwise), ``terms`` (the
        leads used) and ``vcov_source`` (``"vcov"`` or ``"diagonal se"``).
    """
    if vcov_type not in ("CR1", "CR0"):
        raise SpecError(f"vcov_type must be 'CR1' or 'CR0'; received {vcov_type!r}.")
    if n_clusters is not None:
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral | float):
            raise SpecError(f"n_clusters must be a whole number >= 2; received {n_clusters!r}.")
        if not (np.isfinite(n_clusters) and float(n_clusters).is_integer() and n_clusters >= 2):
            raise SpecError(f"n_clusters must be a whole number >= 2; received {n_clusters!r}.")
        n_clusters = int(n_clusters)
    terms = _terms(result_or_terms)
    explicit = vcov is not None
    if vcov is None and isinstance(result_or_terms, EstimationResult):
        vcov = result_or_terms.vcov
    pre = pre_period_terms(terms)
    out: dict[str, Any] = {
        "statistic": float("nan"),
        "reference": "chi2" if n_clusters is None else "F",
        "df": 0,
        "df2": None,
        "f_statistic": float("nan"),
        "p_value": float("nan"),
        "n_clusters": n_clusters,
        "note": "",
        "terms": pre["term"].tolist(),
        "vcov_source": "none",
    }
    if pre.empty:
        out["note"] = "no pre-period term"
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
    n_leads = len(beta)
    rank = int(np.linalg.matrix_rank(v))
    if n_clusters is None:
        # chi2 reference: a pseudo-inverse keeps the test defined when leads are collinear
        # (e.g. a lead that is an exact average of others); the df are the matrix rank
        stat = float(beta @ linalg.pinvh(v) @ beta)
        out.update(statistic=stat, df=rank, p_value=float(stats.chi2.sf(stat, rank)))
        return out
    g = n_clusters
    out.update(df=n_leads, df2=g - n_leads)
    if n_leads >= g or rank < n_leads:
        # G cluster scores span at most G - 1 directions: L >= G leads (or a singular
        # covariance) cannot be tested jointly; a pseudo-inverse would test a subspace
        out["df2"] = None
        out["note"] = (
            f"{n_leads} leads with {g} clusters (covariance rank {rank}): a joint test "
            f"needs fewer leads than clusters and a nonsingular covariance; p-value NaN"
        )
        warnings.warn(f"pretrend_wald: {out['note']}.", RuntimeWarning, stacklevel=2)
        return out
    stat = float(beta @ np.linalg.solve(v, beta))
    t2 = stat * (g - 1) / g if vcov_type == "CR0" else stat
    f = (g - n_leads) / (n_leads * (g - 1)) * t2
    out.update(statistic=stat, f_statistic=f, p_value=float(stats.f.sf(f, n_leads, g - n_leads)))
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
