"""The plain-language summary that opens ``report.html`` (and the console note of a run).

It states, from the results alone: the headline estimate of every block with its interval,
the claim verdicts when there are any, the simulated truth when the data are simulated
(and which intervals cover it), and what the estimates differ on and why — the comparison
group, the aggregation weights and, for a simulated design with displacement, the
controls that are contaminated by design (Butts 2021: untreated neighbours that lose
activity to a zone make a comparison with them overstate the zone's own gain).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from scipy.stats import norm

from .. import labels
from ..registry import ENTRIES

if TYPE_CHECKING:
    from ..rundir import RunOutput

__all__ = ["run_summary", "truth_note"]

#: What each estimator's headline weights the treated cells by (one clause).
_WEIGHTS = {e.name: e.weighting for e in ENTRIES if e.weighting}

#: Estimators whose ``att`` is the plain average of their post-treatment event-time
#: coefficients (TWFE and first-difference event studies): another estimand than the
#: overall ATT of a simulation's truth, so their intervals are not judged against it.
_EVENT_AVERAGE = frozenset(
    name for name, w in _WEIGHTS.items() if w.startswith("the average of its post-treatment")
)


def _num(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return ""
    text = f"{x:.3g}" if abs(x) < 1 else f"{x:,.1f}"
    # -0.0 (or a negative number too small to show) prints as 0, not "-0"
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def _headline(res: Any, alpha: float) -> tuple[float, float, float]:
    est = float(res.estimate)
    try:
        ci = res.conf_int(alpha)
        ci = (ci.set_index("term") if "term" in ci.columns else ci).loc[res.main_term]
        return est, float(ci["lower"]), float(ci["upper"])
    except Exception:  # a result without conf_int: the normal interval at the level
        z = float(norm.ppf(1 - alpha / 2))
        return est, est - z * float(res.se), est + z * float(res.se)


def _has_interval(lo: float, hi: float) -> bool:
    """Both bounds finite: an estimate with no standard error has none."""
    return math.isfinite(lo) and math.isfinite(hi)


def truth_note(output: RunOutput) -> str:
    """'Simulated data: true ATT ...' or '' when the data are not simulated."""
    sim = getattr(output.data, "simulation", None)
    if sim is None:
        return ""
    truth = sim.truth
    parts = []
    estimated = {str(getattr(r, "outcome", "")) for r in output.results.values()}
    for o in [o for o in output.spec.data.outcomes if o in estimated] or output.spec.data.outcomes:
        if o in truth.overall:
            parts.append(
                f"{o}: true overall ATT {_num(truth.overall[o])}, true displacement share "
                f"{_num(truth.displacement_share.get(o, float('nan')))}"
            )
    return "Simulated data with known truth — " + "; ".join(parts) + "." if parts else ""


def run_summary(output: RunOutput) -> list[str]:
    """Paragraphs (plain text) summarising a run: estimates, verdicts, truth, differences."""
    alpha = float(output.spec.inference.alpha)
    level = f"{100 * (1 - alpha):g}%"
    block_labels = {e.name: getattr(e, "label", None) for e in output.spec.estimates}
    olabels = dict(getattr(output.spec.data, "labels", {}) or {})
    ounits = dict(getattr(output.spec.data, "units", {}) or {})
    names = labels.display_names(output.results, block_labels, olabels)
    out: list[str] = []

    by_outcome: dict[str, list[tuple[str, Any, tuple[float, float, float]]]] = {}
    for name, res in output.results.items():
        try:
            by_outcome.setdefault(res.outcome, []).append((name, res, _headline(res, alpha)))
        except Exception:  # a result without a usable headline term is left out
            continue
    for outcome, rows in by_outcome.items():
        items = "; ".join(
            f"{names[n]} {_num(e)} "
            + (f"[{_num(lo)}, {_num(hi)}]" if _has_interval(lo, hi) else "(no interval)")
            + (f" ({labels.term_label(r.main_term)})" if r.main_term != "att" else "")
            for n, r, (e, lo, hi) in rows
        )
        out.append(
            f"Headline estimates of the effect on "
            f"{labels.outcome_label(outcome, olabels, ounits)} ({level} confidence "
            f"intervals): {items}."
        )

    verdicts = output.extras.get("verdicts")
    if verdicts is not None and "verdict" in getattr(verdicts, "columns", ()):
        counts = verdicts["verdict"].astype(str).value_counts()
        out.append(
            "Claim verdicts: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f" (of {len(verdicts)} claims; the table is below)."
        )

    sim = getattr(output.data, "simulation", None)
    if sim is not None:
        truth = sim.truth
        lines = [truth_note(output)]
        for outcome, rows in by_outcome.items():
            true = truth.overall.get(outcome)
            if true is None:
                continue
            att = [
                (names[n], lo, hi)
                for n, r, (e, lo, hi) in rows
                if r.main_term == "att" and r.estimator not in _EVENT_AVERAGE
            ]
            other = [
                names[n]
                for n, r, _ in rows
                if r.main_term == "att" and r.estimator in _EVENT_AVERAGE
            ]
            # an estimate without an interval (NaN bounds) neither covers nor misses
            cover = [n for n, lo, hi in att if _has_interval(lo, hi) and lo <= true <= hi]
            miss = [n for n, lo, hi in att if _has_interval(lo, hi) and not lo <= true <= hi]
            bare = [n for n, lo, hi in att if not _has_interval(lo, hi)]
            if cover or miss:
                lines.append(
                    f"For {olabels.get(outcome, outcome)}, the intervals of {', '.join(cover) or 'no estimate'} cover "
                    f"the true {_num(true)}; {', '.join(miss) or 'none'} miss it."
                )
            if other:
                one = len(other) == 1
                lines.append(
                    f"The att of {', '.join(other)} "
                    f"{'averages its' if one else 'average their'} post-treatment event-time "
                    "coefficients with equal weights, another estimand than the overall ATT: "
                    f"{'its interval is' if one else 'their intervals are'} not compared with "
                    "the true value."
                )
            if bare:
                lines.append(
                    f"For {olabels.get(outcome, outcome)}, {', '.join(bare)} "
                    f"{'has' if len(bare) == 1 else 'have'} no interval, so coverage of the "
                    f"true {_num(true)} cannot be judged."
                )
        out.append(" ".join(t for t in lines if t))

    for outcome, rows in by_outcome.items():
        atts = [(names[n], r, e) for n, r, (e, lo, hi) in rows if r.main_term == "att"]
        if len(atts) < 2:
            continue
        lo_n, _, lo_e = min(atts, key=lambda x: x[2])
        hi_n, _, hi_e = max(atts, key=lambda x: x[2])
        kinds = dict.fromkeys(r.estimator for _, r, _ in atts if r.estimator in _WEIGHTS)
        reasons = [f"{labels.estimator_label(k)}: {_WEIGHTS[k]}" for k in kinds]
        text = (
            f"The estimates for {olabels.get(outcome, outcome)} range from {_num(lo_e)} ({lo_n}) to {_num(hi_e)} "
            f"({hi_n}). They estimate differently weighted averages of the same effects"
            + (": " + "; ".join(reasons) if reasons else "")
            + "."
        )
        share = None
        if sim is not None:
            share = getattr(getattr(sim, "design", None), "displacement_share", None)
            if share is None:
                share = (output.spec.data.simulate or {}).get("displacement_share")
        if share:
            spill = [
                names[n]
                for n, r, _ in rows
                if r.estimator == "spillover" and "displacement_share" in set(r.terms["term"])
            ]
            text += (
                f" The simulated design displaces {100 * float(share):g}% of each zone's gain "
                "from its neighbours, so neighbours used as controls lose activity by design: "
                "the controls are contaminated, and estimators that compare zones with them "
                "mix the zone's own gain with the neighbours' loss"
                + (
                    f"; {', '.join(spill)} separates the two (direct, spillover and net "
                    "effects and the displacement share)."
                    if spill
                    else "."
                )
            )
        out.append(text)
    return out
