"""Pre-trend diagnostics and sensitivity for every event study of a run.

For each result with event-time terms this reads (never re-estimates):

* the joint Wald test that all leads are zero (:func:`.pretrends.pretrend_wald`), referred
  to Hotelling's ``F(L, G - L)`` with the result's number of clusters ``G`` (see
  :func:`wald_reference`), to ``chi2_L`` only where the result has no cluster count
  (Conley's spatial HAC, placebo or jackknife covariances);
* the equivalence view of the leads: the largest absolute lead and the smallest margin
  within which all leads are equivalent to zero at level alpha (TOST intersection-union,
  :func:`.pretrends.pretrend_equivalence`);
* the Rambachan & Roth (2023) breakdown values of the first post-period effect under
  relative magnitudes (M-bar) and smoothness (M) restrictions (:mod:`.honest`).

A result that cannot support a diagnostic (no leads, no covariance, gaps in event times)
gets NaN and a note instead of an error, so a run's table lists every event study.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from ..errors import ZoneImpactError
from ..results import EstimationResult, cluster_count
from .pretrends import pretrend_equivalence, pretrend_wald

COLUMNS = [
    "name",
    "estimator",
    "outcome",
    "n_leads",
    "wald_stat",
    "wald_p",
    "max_abs_lead",
    "equivalence_margin",
    "breakdown_rm",
    "breakdown_sd",
    "note",
]


def has_event_study(result: EstimationResult) -> bool:
    """Whether the result reports event-time terms with at least one lead."""
    terms = result.terms["term"].astype(str)
    return any(t.startswith("event:") and int(t.split(":")[1]) < 0 for t in terms)


def wald_reference(result: EstimationResult) -> tuple[int | None, Literal["CR1", "CR0"]]:
    """The cluster count and covariance type :func:`.pretrends.pretrend_wald` needs for the
    small-sample (Hotelling) reference of a result's pre-trend test.

    ``G`` is ``info["n_clusters"]`` (clustered two ways: the smaller dimension's, as the
    estimators store it), or the number of units for an influence-function covariance
    that is not clustered (``info["cluster"]`` None: each unit its own cluster), the rule
    of :func:`~zoneimpact.results.verdict_df`; None (chi2 reference) for Conley's spatial
    HAC or without a count. The covariance is ``"CR1"`` (carries ``G/(G-1)``) for the
    regression estimators, which record their small-sample correction in
    ``info["ssc"]`` (TWFE, Sun & Abraham, ETWFE, PPML: fixest / statsmodels both apply
    ``G/(G-1)``) and for imputation, whose Test 1 leads carry fixest's
    ``G/(G-1) (n0-1)/(n0-K)``, and ``"CR0"`` (the plain sum of cluster scores) for the
    influence-function estimators (Callaway & Sant'Anna, dCDH).
    """
    cr1 = "ssc" in result.info or result.estimator == "imputation"
    kind: Literal["CR1", "CR0"] = "CR1" if cr1 else "CR0"
    return cluster_count(result), kind


def _breakdown(
    result: EstimationResult, restriction: Literal["relative_magnitude", "smoothness"]
) -> tuple[float, str]:
    from .honest import honest_did

    try:
        return float(honest_did(result, type=restriction).breakdown), ""
    except (ZoneImpactError, ValueError, KeyError, ArithmeticError) as exc:
        text = str(exc)
        if "event:-1 has an estimate" in text:
            # varying base periods (CS) and imputation leads estimate E = -1
            return math.nan, "sensitivity needs E = -1 as reference (CS: base_period='universal')"
        return math.nan, f"{restriction}: {text}"


def event_study_diagnostics(
    results: Mapping[str, EstimationResult], *, alpha: float = 0.05
) -> pd.DataFrame:
    """One row of pre-trend diagnostics and sensitivity per event-study result."""
    rows: list[dict[str, Any]] = []
    for name, res in results.items():
        if not has_event_study(res):
            continue
        notes = []
        n_clusters, vcov_type = wald_reference(res)
        with warnings.catch_warnings():
            # too many leads for the clusters: NaN p-value with a note, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            wald = pretrend_wald(res, n_clusters=n_clusters, vcov_type=vcov_type)
        if wald["note"] and wald["terms"]:
            notes.append(f"wald: {wald['note']}")
        try:
            eq = pretrend_equivalence(res, margin=1.0, alpha=alpha)
            max_abs, margin = eq["max_abs"], eq["min_margin"]
        except ZoneImpactError as exc:
            max_abs = margin = math.nan
            notes.append(str(exc))
        rm, note_rm = (
            _breakdown(res, "relative_magnitude") if res.vcov is not None else (math.nan, "no vcov")
        )
        sd, note_sd = _breakdown(res, "smoothness") if res.vcov is not None else (math.nan, "")
        notes += list(dict.fromkeys(n for n in (note_rm, note_sd) if n))
        rows.append(
            {
                "name": name,
                "estimator": res.estimator,
                "outcome": res.outcome,
                "n_leads": len(wald["terms"]),
                "wald_stat": wald["statistic"],
                "wald_p": wald["p_value"],
                "max_abs_lead": max_abs,
                "equivalence_margin": margin,
                "breakdown_rm": rm,
                "breakdown_sd": sd,
                "note": "; ".join(notes)[:200],
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
