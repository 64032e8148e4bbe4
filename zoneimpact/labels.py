"""Human labels for tables, figures and the report: estimators, terms, outcomes, SE types.

Results carry machine names (``callaway_santanna``, ``event:0``, ``fdi``); a table or figure
a researcher pastes into a paper shows display names instead ("Callaway–Sant'Anna",
"Event time 0", "FDI (million USD)"). Outcome labels and units come from the spec
(``[data] labels`` / ``units``) or from the caller; estimator names from
:data:`ESTIMATOR_NAMES` (from :mod:`zoneimpact.registry`). Every function here is a pure string mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .registry import ENTRIES

__all__ = [
    "ESTIMATOR_NAMES",
    "PRE_PERIOD_MEANING",
    "control_group_label",
    "estimator_label",
    "fixed_effects_label",
    "format_p",
    "is_p_column",
    "outcome_label",
    "se_type_label",
    "term_label",
]

#: Display names of the registered estimators (the names papers use).
ESTIMATOR_NAMES: dict[str, str] = {e.name: e.display for e in ENTRIES}

#: What E = -1 (and the other pre-periods) of each estimator's event study measure: the
#: pre-period definitions differ, so an overlay that mixes them needs a note (Roth 2024,
#: "Interpreting event-studies from recent difference-in-differences methods").
PRE_PERIOD_MEANING: dict[str, str] = {e.name: e.pre_periods for e in ENTRIES if e.pre_periods}

_TERM_NAMES = {
    "att": "ATT",
    "event_avg": "ATT (average over event time)",
    "cohort_avg": "ATT (average over cohorts)",
    "calendar_avg": "ATT (average over periods)",
    "direct": "Direct effect",
    "spillover": "Spillover",
    "net": "Net effect (total)",
    "net_per_treated": "Net effect per zone",
    "direct_total": "Direct effect (total)",
    "spillover_total": "Spillover (total)",
    "displacement_share": "Displacement share",
    "spillover_on_zones": "Spillover on zone units (before their zone)",
    "spillover_on_zones_total": "Spillover on zone units (total)",
    "spillover_from_sources": "Spillover from zones outside the sample or unobserved",
    "spillover_from_sources_total": "Spillover from zones outside the sample or unobserved (total)",
}
_PREFIXES = {
    "event": "Event time",
    "cohort": "Cohort",
    "calendar": "Period",
    "spillover": "Spillover",
    "weight": "Weight",
}


def _num(text: str) -> str:
    try:
        v = float(text)
    except ValueError:
        return text
    return f"{int(v)}" if math.isfinite(v) and v.is_integer() else text


def term_label(term: str) -> str:
    """``event:-2`` -> "Event time -2", ``att`` -> "ATT"; unknown names are returned as is."""
    term = str(term)
    if term in _TERM_NAMES:
        return _TERM_NAMES[term]
    prefix, sep, rest = term.partition(":")
    if sep and prefix in _PREFIXES:
        if prefix == "spillover":
            return f"Spillover ({rest})"
        return f"{_PREFIXES[prefix]} {_num(rest)}"
    return term


#: Display names of estimators whose ``info["method"]`` makes them another estimator:
#: synthetic DiD's ``method="sc"``/``"did"`` are synthdid's synthetic control and DiD.
_METHOD_NAMES: dict[tuple[str, str], str] = {
    ("synthetic_did", "sc"): "Synthetic control (synthdid)",
    ("synthetic_did", "did"): "DiD (synthdid)",
}


def estimator_label(res_or_name: Any) -> str:
    """Display name of an estimator (a result or a registered name).

    A result's ``info["method"]`` is read where it changes the estimator (synthetic DiD
    run with ``method="sc"`` is a synthetic control, not "Synthetic DiD").
    """
    name = str(getattr(res_or_name, "estimator", res_or_name))
    info = getattr(res_or_name, "info", None)
    method = info.get("method") if isinstance(info, Mapping) else None
    if isinstance(method, str) and (name, method) in _METHOD_NAMES:
        return _METHOD_NAMES[(name, method)]
    return ESTIMATOR_NAMES.get(name, name)


def outcome_label(
    outcome: str,
    labels: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> str:
    """The outcome's label with its unit in parentheses: "FDI inflow (million USD)"."""
    text = str((labels or {}).get(outcome, outcome))
    unit = (units or {}).get(outcome)
    return f"{text} ({unit})" if unit else text


def _clean(text: str) -> str:
    return re.sub(r"[_\s]+", " ", str(text)).strip()


def control_group_label(value: Any) -> str:
    """``not_yet_treated`` -> "Not yet treated"."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ""
    text = _clean(str(value))
    return text[:1].upper() + text[1:]


def fixed_effects_label(value: Any) -> str:
    """One wording for every estimator's fixed effects: "Unit + period".

    Results report them as ``"unit + time"``, ``"unit+time"`` or ``("unit", "year")``;
    the time dimension is called "period" whatever its column is named.
    """
    if value is None or value == "" or value == ():
        return ""
    parts = (
        [str(v) for v in value]
        if isinstance(value, list | tuple | set)
        else re.split(r"\s*[+,]\s*", str(value))
    )
    out = []
    for p in parts:
        p = _clean(p).lower()
        if not p:
            continue
        out.append("period" if p in {"time", "year", "period", "t"} else p)
    if not out:
        return ""
    text = " + ".join(out)
    return text[:1].upper() + text[1:]


def se_type_label(res: Any) -> str:
    """How a result's standard errors were computed, in a few words."""
    info = getattr(res, "info", None) or {}
    se_type = info.get("se_type")
    cluster = info.get("cluster")
    # "none" is the absence of a small-sample rule, not one to name
    rule = str(info.get("small_sample") or "")
    small = "" if rule == "none" else rule.upper()
    if se_type:
        text = str(se_type)
        if cluster:
            text += f", clustered by {cluster}"
        return text[:1].upper() + text[1:]
    if cluster:
        return f"Clustered by {cluster}" + (f" ({small})" if small else "")
    for key in ("inference", "se_method", "vcov", "variance"):
        if info.get(key):
            text = str(info[key]).split(";")[0]
            return text[:1].upper() + text[1:]
    return ""


def is_p_column(name: Any) -> bool:
    """Whether a column or statistic name holds p-values: ``p``, ``p_value``, ``pvalue``,
    ``p-value`` or a name ending in ``_p``/``_pvalue``/``p_value`` (``pretrend_p``)."""
    n = str(name).lower()
    return n in {"p", "p_value", "pvalue", "p-value"} or n.endswith(("_p", "_pvalue", "p_value"))


def format_p(p: Any, digits: int = 3) -> str:
    """A p-value as papers print it: "0.043", "<0.001" (never ``3.8e-41``).

    Tables print every p-value at the default 3 decimals whatever the precision of the
    estimates (a p-value of 0.065 at 0 decimals would read "<1")."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        return str(p)
    if math.isnan(v):
        return ""
    floor = 10.0**-digits
    if v < floor:
        return f"<{floor:.{digits}f}"
    return f"{v:.{digits}f}"


def display_names(
    results: Mapping[str, Any],
    block_labels: Mapping[str, str | None] | None = None,
    outcome_labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{block name: column/legend name}`` for a run's results.

    The spec block's ``label`` when given, else the estimator's display name; names that
    would repeat get the outcome ("TWFE: FDI inflow"), then the block name, appended.
    """
    base = {
        name: str((block_labels or {}).get(name) or estimator_label(res))
        for name, res in results.items()
    }
    counts: dict[str, int] = {}
    for v in base.values():
        counts[v] = counts.get(v, 0) + 1
    out: dict[str, str] = {}
    for name, res in results.items():
        text = base[name]
        if counts[text] > 1:
            outcome = str(getattr(res, "outcome", ""))
            text = f"{text}: {(outcome_labels or {}).get(outcome, outcome)}"
        out[name] = text
    if len(set(out.values())) < len(out):
        out = {name: f"{text} ({name})" for name, text in out.items()}
    return out
