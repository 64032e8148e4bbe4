"""The plain-language summary that opens ``report.html`` (and the console note of a run).

It states, from the results alone: the headline estimate of every block with its interval,
the claim verdicts when there are any, the simulated truth when the data are simulated
(and which intervals cover it), and what the estimates differ on and why — the comparison
group, the aggregation weights and, for a simulated design with displacement, the
controls that are contaminated by design (Butts 2021: untreated neighbours that lose
activity to a zone make a comparison with them overstate the zone's own gain).

Estimates are compared only within one panel and outcome: a block with its own
``[estimate.data]`` (or a claims run's linked spec) is judged against its own data's truth
and is not ranged with estimates from other data. PPML's ``att`` is a log-point
coefficient: it is stated as a percent change and never ranged with, or judged against,
effects in the outcome's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from scipy.stats import norm

from .. import labels
from ..registry import ENTRIES
from ..results import intervals_alpha

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


#: Estimators whose ``att`` is a log-point (proportional) coefficient, not an effect in the
#: outcome's units: stated as the percent change ``exp(b) - 1`` and never compared with
#: level truths or ranged with level estimates.
_PROPORTIONAL = frozenset({"ppml"})

#: Static TWFE and its Goodman-Bacon decomposition: the ``att`` weights the 2x2 comparisons
#: by their variance, not the treated cells as the overall ATT of the truth does.
_VARIANCE_WEIGHTED = frozenset({"twfe", "bacon"})

#: de Chaisemartin-D'Haultfoeuille: ``att`` averages its first ``effects`` horizons (event
#: time 0 alone by default), another estimand than the overall ATT.
_HORIZON_AVERAGE = frozenset({"chaisemartin"})

#: What a result's ``prediction_intervals`` are (``synthetic_control(intervals=...)``).
_INTERVAL_KINDS = {"scpi": "SCPI prediction interval", "conformal": "conformal interval"}


def _num(v: Any) -> str:
    """A number to 3 significant figures ("5.52", "0.172", "62.0", "1,230"); "" when not
    finite. -0.0, or a negative number too small to show, prints as 0."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return ""
    r = float(f"{x:.3g}")  # rounded first: 9.996 -> 10.0, not "10.00"
    if r == 0:
        return "0"
    if abs(r) < 1:
        return f"{r:.3g}"
    decimals = max(0, 2 - int(math.floor(math.log10(abs(r)))))
    return f"{r:,.{decimals}f}"


def _pct(b: float) -> str:
    """A log-point coefficient as the percent change ``exp(b) - 1``."""
    return f"{_num(100 * math.expm1(b))}%" if math.isfinite(b) else ""


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


def _prediction_interval(res: Any, alpha: float) -> tuple[float, float, float, str] | None:
    """The main term's row of ``res.prediction_intervals`` (estimate, low, high, kind);
    the kind names its level when it is not the run's ``alpha``."""
    pi = getattr(res, "prediction_intervals", None)
    if not isinstance(pi, pd.DataFrame) or not {"term", "low", "high"} <= set(pi.columns):
        return None
    row = pi[pi["term"].astype(str) == str(res.main_term)]
    if row.empty:
        return None
    lo, hi = float(row["low"].iloc[0]), float(row["high"].iloc[0])
    if not _has_interval(lo, hi):
        return None
    method = str(row["method"].iloc[0]) if "method" in row else ""
    method = method or str((getattr(res, "info", None) or {}).get("intervals", ""))
    est = float(row["estimate"].iloc[0]) if "estimate" in row else float("nan")
    kind = _INTERVAL_KINDS.get(method, f"{method} interval".strip())
    own = intervals_alpha(res)
    if not math.isclose(own, alpha, rel_tol=1e-12):
        kind += f" at alpha = {own:g}, not the run's {alpha:g}"
    return est, lo, hi, kind


@dataclass(frozen=True)
class _Row:
    """One block's headline: its estimate, interval and what kind of interval it is."""

    name: str
    res: Any
    est: float
    lo: float
    hi: float
    #: "" for the confidence interval at the run's level, else e.g. "SCPI prediction interval"
    kind: str = ""
    #: the prediction interval's own point estimate (SCPI refits the synthetic control)
    center: float = float("nan")

    @property
    def estimator(self) -> str:
        return str(getattr(self.res, "estimator", ""))

    @property
    def is_att(self) -> bool:
        return str(getattr(self.res, "main_term", "")) == "att"


def _row(name: str, res: Any, alpha: float) -> _Row:
    est, lo, hi = _headline(res, alpha)
    if not _has_interval(lo, hi):  # e.g. synthetic control: its interval, if any, is a PI
        pi = _prediction_interval(res, alpha)
        if pi is not None:
            return _Row(name, res, est, pi[1], pi[2], pi[3], pi[0])
    return _Row(name, res, est, lo, hi)


@dataclass(frozen=True)
class _Data:
    """The panel a block was fitted on: ``key`` "" is the run's own ``[data]``."""

    key: str
    label: str
    loaded: Any  # LoadedData, or None when not known (a claims run's linked spec)


def _data_of(output: RunOutput) -> dict[str, _Data]:
    """``{result name: the data it was fitted on}``.

    A block with its own ``[estimate.data]`` has its own panel (``extras["block_data"]``:
    ``estimate_all`` loads each distinct table once, in the blocks' order); a claims run
    names its estimates ``<data>_<key>`` after the data of its verdict table.
    """
    main = _Data("", "the run's data", output.data)
    extras = getattr(output, "extras", None) or {}
    blocks = list(getattr(output.spec, "estimates", ()) or ())
    own = [b for b in blocks if getattr(b, "data", None) is not None]
    keys = list(dict.fromkeys(repr(b.data) for b in own))
    loaded = list(extras.get("block_data", None) or [])
    by_key = dict(zip(keys, loaded, strict=True)) if len(loaded) == len(keys) else {}
    out: dict[str, _Data] = {}
    for b in blocks:
        if getattr(b, "data", None) is None:
            out[b.name] = main
            continue
        k = repr(b.data)
        sharing = ", ".join(x.name for x in own if repr(x.data) == k)
        out[b.name] = _Data(f"block:{k}", f"the own data of {sharing}", by_key.get(k))
    prefixes: dict[str, _Data] = {}
    verdicts = extras.get("verdicts")
    if verdicts is not None and "data" in getattr(verdicts, "columns", ()):
        claims_opts = getattr(output.spec, "claims", None) or {}
        data_name = str(claims_opts.get("data_name", "data"))
        for v in verdicts["data"].dropna().astype(str).unique():
            d = v.removeprefix("spec:").removesuffix(".toml")
            if d:
                prefixes[d] = (
                    main if d == data_name else _Data(f"claims:{d}", f"the {d} data", None)
                )
    for name in output.results:
        if name not in out:
            match = max((d for d in prefixes if name.startswith(d + "_")), key=len, default=None)
            out[name] = prefixes[match] if match is not None else main
    return out


def _truth_text(sim: Any, outcomes: list[str]) -> str:
    truth = sim.truth
    parts = []
    for o in outcomes:
        if o in truth.overall:
            share = _num(truth.displacement_share.get(o, float("nan")))
            # no direct effect: the share (-spillover / direct total) is 0/0, left unsaid
            parts.append(
                f"{o}: true overall ATT {_num(truth.overall[o])}"
                + (f", true displacement share {share}" if share else "")
            )
    return "; ".join(parts)


def truth_note(output: RunOutput) -> str:
    """'Simulated data: true ATT ...' or '' when the data are not simulated."""
    sim = getattr(output.data, "simulation", None)
    if sim is None:
        return ""
    estimated = {str(getattr(r, "outcome", "")) for r in output.results.values()}
    outcomes = list(output.spec.data.outcomes)
    text = _truth_text(sim, [o for o in outcomes if o in estimated] or outcomes)
    return "Simulated data with known truth — " + text + "." if text else ""


def _event_truth(truth: Any, outcome: str, event_time: int) -> float | None:
    try:
        ev = truth.event
        att = ev.loc[(ev["outcome"] == outcome) & (ev["event_time"] == event_time), "att"]
        return float(att.iloc[0]) if len(att) else None
    except Exception:  # a truth without an event table
        return None


def _ci(lo: float, hi: float) -> str:
    return f"[{_num(lo)}, {_num(hi)}]"


def _join(names: list[str]) -> str:
    return ", ".join(names)


def _item(r: _Row, label: str) -> str:
    if r.estimator in _PROPORTIONAL and r.is_att:
        ci = f" [{_pct(r.lo)}, {_pct(r.hi)}]" if _has_interval(r.lo, r.hi) else " (no interval)"
        return (
            f"{label} {_pct(r.est)}{ci} (a proportional change: exp(b) − 1 of its "
            f"log-point coefficient {_num(r.est)}, not an effect in the outcome's units)"
        )
    text = f"{label} {_num(r.est)} " + (
        _ci(r.lo, r.hi) if _has_interval(r.lo, r.hi) else "(no interval)"
    )
    if r.kind:
        text += f" ({r.kind}"
        if math.isfinite(r.center) and not math.isclose(
            r.center, r.est, rel_tol=1e-9, abs_tol=1e-12
        ):
            text += f", around its refit's estimate {_num(r.center)}"
        text += ")"
    if str(r.res.main_term) != "att":
        text += f" ({labels.term_label(r.res.main_term)})"
    return text


def _coverage(
    rows: list[_Row], names: dict[str, str], sim: Any, outcome: str, where: str
) -> list[str]:
    """Sentences on which intervals of one (data, outcome) cover the simulated truth."""
    truth = sim.truth
    true = truth.overall.get(outcome)
    if true is None:
        return []
    lines: list[str] = []
    atts = [r for r in rows if r.is_att]
    judged = [
        r for r in atts if r.estimator not in _EVENT_AVERAGE | _PROPORTIONAL | _HORIZON_AVERAGE
    ]
    other = [names[r.name] for r in atts if r.estimator in _EVENT_AVERAGE]
    # an estimate without an interval (NaN bounds) neither covers nor misses
    cover = [names[r.name] for r in judged if _has_interval(r.lo, r.hi) and r.lo <= true <= r.hi]
    miss = [names[r.name] for r in judged if _has_interval(r.lo, r.hi) and not r.lo <= true <= r.hi]
    bare = [names[r.name] for r in judged if not _has_interval(r.lo, r.hi)]
    if cover or miss:
        lines.append(
            f"For {outcome}{where}, the intervals of {_join(cover) or 'no estimate'} cover "
            f"the true {_num(true)}; {_join(miss) or 'none'} miss it."
        )
    variance = [
        names[r.name]
        for r in judged
        if r.estimator in _VARIANCE_WEIGHTED and _has_interval(r.lo, r.hi)
    ]
    if variance:
        one = len(variance) == 1
        lines.append(
            f"{_join(variance)} {'weights its' if one else 'weight their'} 2x2 comparisons by their "
            "variance (Goodman-Bacon 2021), not the treated cells as the overall ATT does: "
            f"{'its' if one else 'their'} coverage of the true value depends on how far those "
            "weights are from the ATT's."
        )
    if other:
        one = len(other) == 1
        lines.append(
            f"The att of {_join(other)} "
            f"{'averages its' if one else 'average their'} post-treatment event-time "
            "coefficients with equal weights, another estimand than the overall ATT: "
            f"{'its interval is' if one else 'their intervals are'} not compared with "
            "the true value."
        )
    for r in atts:
        if r.estimator not in _HORIZON_AVERAGE:
            continue
        info = getattr(r.res, "info", None) or {}
        horizons = [
            t
            for t in map(str, r.res.terms["term"])
            if t.startswith("event:") and not t.startswith("event:-")
        ]
        binary = str(info.get("treatment", "1{")).startswith("1{") and not info.get("normalized")
        true0 = _event_truth(truth, outcome, 0) if horizons == ["event:0"] and binary else None
        if true0 is not None and _has_interval(r.lo, r.hi):
            verb = "covers" if r.lo <= true0 <= r.hi else "misses"
            lines.append(
                f"The att of {names[r.name]} is its effect at event time 0 (effects = 1), "
                f"another estimand than the overall ATT: its interval {_ci(r.lo, r.hi)} "
                f"{verb} the true event-time-0 effect {_num(true0)}."
            )
        else:
            lines.append(
                f"The att of {names[r.name]} averages its effects over the first periods "
                "after the switch, another estimand than the overall ATT: its interval is "
                "not compared with the true value."
            )
    prop = [names[r.name] for r in atts if r.estimator in _PROPORTIONAL]
    if prop:
        one = len(prop) == 1
        lines.append(
            f"{_join(prop)} {'estimates' if one else 'estimate'} a proportional change, "
            f"not compared with the true effect in the outcome's units ({_num(true)})."
        )
    if bare:
        lines.append(
            f"For {outcome}{where}, {_join(bare)} "
            f"{'has' if len(bare) == 1 else 'have'} no interval, so coverage of the "
            f"true {_num(true)} cannot be judged."
        )
    return lines


def run_summary(output: RunOutput) -> list[str]:
    """Paragraphs (plain text) summarising a run: estimates, verdicts, truth, differences.

    Estimates are grouped by the data they were fitted on and their outcome: each group is
    judged against its own data's truth, and only estimates of one group are ranged.
    """
    alpha = float(output.spec.inference.alpha)
    level = f"{100 * (1 - alpha):g}%"
    block_labels = {e.name: getattr(e, "label", None) for e in output.spec.estimates}
    olabels = dict(getattr(output.spec.data, "labels", {}) or {})
    ounits = dict(getattr(output.spec.data, "units", {}) or {})
    names = labels.display_names(output.results, block_labels, olabels)
    data_of = _data_of(output)
    out: list[str] = []

    groups: dict[tuple[str, str], list[_Row]] = {}
    data_by_key: dict[str, _Data] = {}
    for name, res in output.results.items():
        try:
            row = _row(name, res, alpha)
        except Exception:  # a result without a usable headline term is left out
            continue
        data = data_of[name]
        data_by_key.setdefault(data.key, data)
        groups.setdefault((data.key, str(res.outcome)), []).append(row)
    several = len(data_by_key) > 1

    def where(key: str) -> str:
        return f" on {data_by_key[key].label}" if several else ""

    for (key, outcome), rows in groups.items():
        items = "; ".join(_item(r, names[r.name]) for r in rows)
        unless = " unless said otherwise" if any(r.kind for r in rows) else ""
        out.append(
            f"Headline estimates of the effect on "
            f"{labels.outcome_label(outcome, olabels, ounits)}{where(key)} ({level} confidence "
            f"intervals{unless}): {items}."
        )

    verdicts = output.extras.get("verdicts")
    if verdicts is not None and "verdict" in getattr(verdicts, "columns", ()):
        counts = verdicts["verdict"].astype(str).value_counts()
        n_rows = len(verdicts)
        n_claims = int(verdicts["claim"].nunique()) if "claim" in verdicts.columns else n_rows
        of = (
            f"of {n_claims} claims"
            if n_claims == n_rows
            else f"{n_rows} verdicts on {n_claims} distinct claims: a claim judged on several "
            "scales or data has a verdict for each"
        )
        out.append(
            "Claim verdicts: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f" ({of}; the table is below)."
        )

    truth_lines: list[str] = []
    for key, data in data_by_key.items():
        sim = getattr(data.loaded, "simulation", None)
        if sim is None:
            continue
        outcomes = [o for (k, o) in groups if k == key]
        text = _truth_text(sim, outcomes)
        if text:
            truth_lines.append(
                f"Simulated data with known truth{' (' + data.label + ')' if several else ''} — "
                f"{text}."
            )
        for (k, outcome), rows in groups.items():
            if k == key:
                truth_lines.extend(
                    _coverage(rows, names, sim, outcome, f" ({data.label})" if several else "")
                )
    if truth_lines:
        out.append(" ".join(truth_lines))

    for (key, outcome), rows in groups.items():
        atts = [r for r in rows if r.is_att and r.estimator not in _PROPORTIONAL]
        if len(atts) < 2:
            continue
        lo_r = min(atts, key=lambda r: r.est)
        hi_r = max(atts, key=lambda r: r.est)
        kinds = dict.fromkeys(r.estimator for r in atts if r.estimator in _WEIGHTS)
        reasons = [f"{labels.estimator_label(k)}: {_WEIGHTS[k]}" for k in kinds]
        prop = [names[r.name] for r in rows if r.is_att and r.estimator in _PROPORTIONAL]
        text = (
            f"The estimates for {olabels.get(outcome, outcome)}{where(key)} range from "
            f"{_num(lo_r.est)} ({names[lo_r.name]}) to {_num(hi_r.est)} ({names[hi_r.name]})"
            + (f"; {_join(prop)}, a proportional change, is left out" if prop else "")
            + ". They estimate differently weighted averages of the same effects"
            + (": " + "; ".join(reasons) if reasons else "")
            + "."
        )
        sim = getattr(data_by_key[key].loaded, "simulation", None)
        share = None
        if sim is not None:
            share = getattr(getattr(sim, "design", None), "displacement_share", None)
            if share is None and key == "":
                share = (output.spec.data.simulate or {}).get("displacement_share")
        if share:
            spill = [
                names[r.name]
                for r in rows
                if r.estimator == "spillover" and "displacement_share" in set(r.res.terms["term"])
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
