"""Claims of the seed documents as hypotheses, and verdicts from the estimates.

``seeds/claims.toml`` lists each claim with its document, a short quote, the hypothesis,
the outcome(s), the estimand (``direct``, ``net``, ``spillover``, ``displacement_share``,
``concentration``, ``concentration_hhi``) and the test. Claims the data cannot test carry
``testable = false`` and the reason.

Verdicts follow the equivalence logic of two one-sided tests (Schuirmann 1987; Lakens
2017, "Equivalence tests", *Social Psychological and Personality Science* 8(4)):

* ``equivalence`` (a null claim, "no effect"): with the ``(1 - 2 alpha)`` confidence
  interval of ``estimate - null_value``, **supported** if it lies inside ``(-margin,
  margin)``, **contradicted** if it lies entirely beyond one side of the margin band (a
  significant effect larger than the margin), **inconclusive** otherwise;
* ``positive`` (a claim that zones raise the outcome): **supported** if the interval lies
  above 0, **contradicted** if it lies below ``+margin`` (the effect is at most
  negligible), **inconclusive** otherwise; ``negative`` mirrors it. "Supported" means
  significantly positive and wins when the interval lies both above 0 and below the margin
  (a significant but small effect); the verdict's note then says so.

Margins: ``margin_unit = "pre_mean"`` (the default for estimands in the outcome's unit:
``direct``, ``net``, ``spillover``, and the concentration share and HHI, whose
``pre_mean`` is the pre-zone mean of the share or HHI itself) scales the margin by the
zones' pre-zone mean, ``"absolute"`` takes it as given. The displacement share is a ratio
without unit, and the fit's ``pre_mean`` is the outcome's (e.g. FDI in dollars): its
margin is absolute by default and an explicit ``margin_unit = "pre_mean"`` is refused. A
claim whose ``pre_mean`` margin has no finite, non-zero pre-zone mean, or whose estimate
has a negative standard error or degrees of freedom <= 0, is **not estimable**, with the
reason.

The interval is the estimate +/- t x SE, except for the displacement share ``1 - N / D``:
a ratio, whose set is Fieller's (1954) from the fit's joint (co)variances
(:func:`result_interval`). It is skewed where the direct total ``D`` is imprecise and
unbounded where ``D`` is not significant, and then supports no bound.

:func:`zoneimpact.inference.equivalence.judge_null_claim` decides the equivalence
verdicts. ``breakdown`` is the Rambachan-Roth (2023) breakdown value of the
direct effect's event study when a registry estimator produced one (else NaN).

Specification curve (issue 17): a claim with ``scales = [...]`` is judged over a set of
specifications (exposure x controls x estimator x sample, one set per scale; built for the
China data by :mod:`zoneimpact.china.speccurve`) by the rule of the claims file's
``[curve_rule]`` table, declared before the numbers (:class:`CurveRule`,
:func:`curve_verdict`): a specification is *admissible* when it has a standard error, its
pre-trend test is not rejected at ``pretrend_alpha`` and it has at least
``min_clean_controls`` clean control cities; the claim is supported (contradicted) on a
scale only when every admissible specification of that scale is supported (contradicted),
and inconclusive otherwise, with the reason. Margins of ``pre_mean`` claims are ``margin x
pre-zone mean`` on level scales and the band ``[log(1 - margin), log(1 + margin)]`` on log
scales (a change of -margin to +margin; ``margin < 1`` needed). A specification whose
margin cannot be formed (no finite, non-zero pre-zone mean) or whose ``df`` is <= 0 is not
admissible, with that reason; a missing ``df`` (NaN, None) means the normal reference.

Entry points: :func:`load_claims`, :func:`evaluate_claims`, :func:`run_claims` and
:func:`claims_for_spec`; the command line (``python -m zoneimpact claims``) lives in
:mod:`zoneimpact.cli`.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import SpecError, ZoneImpactError
from .files import sha256_or_none
from .inference.equivalence import check_margin, judge_null_claim
from .panel import Panel
from .parallel import as_generator
from .results import EstimationResult, check_alpha, t_quantile, verdict_df

__all__ = [
    "Claim",
    "CurveRule",
    "DEFAULT_CLAIMS",
    "curve_verdict",
    "estimate_name",
    "evaluate_claims",
    "judge",
    "load_claims",
    "load_curve_rule",
    "result_interval",
    "run_claims",
]


def _default_claims() -> Path:
    """``seeds/claims.toml`` of the repository, or the copy installed with the package."""
    repo = Path(__file__).resolve().parents[1] / "seeds" / "claims.toml"
    return repo if repo.exists() else Path(__file__).resolve().parent / "_seeds" / "claims.toml"


DEFAULT_CLAIMS = _default_claims()

#: estimand -> (result key suffix, term)
ESTIMANDS: dict[str, tuple[str, str]] = {
    "direct": ("", "direct"),
    "net": ("", "net_per_treated"),
    "spillover": ("", "spillover"),
    "displacement_share": ("", "displacement_share"),
    "concentration": (":share", "direct"),
    "concentration_hhi": (":hhi", "att"),
}
TESTS = ("equivalence", "positive", "negative")
MARGIN_UNITS = ("pre_mean", "absolute")
#: estimands without the outcome's unit: their margin is absolute (``pre_mean`` refused)
UNITLESS_ESTIMANDS = frozenset({"displacement_share"})
COLUMNS = [
    "claim",
    "document",
    "data",
    "estimator",
    "outcome",
    "estimand",
    "test",
    "estimate",
    "ci_low",
    "ci_high",
    "null_value",
    "margin",
    "breakdown",
    "verdict",
    "note",
    "scale",
    "n_specs",
    "n_admissible",
    "n_clean",
    "n_not_yet",
    "breakdown_sd",
]
#: a verdict whose interval ends within this share of the margin is flagged as a knife edge
KNIFE_EDGE = 0.10


@dataclass(frozen=True)
class Claim:
    """One claim of a seed document, as a testable hypothesis (see module docstring)."""

    id: str
    document: str
    quote: str
    hypothesis: str
    outcomes: tuple[str, ...] = ()
    estimand: str = "net"
    test: str = "equivalence"
    margin: float = math.nan
    #: "" (not given): "absolute" for UNITLESS_ESTIMANDS, else "pre_mean"
    margin_unit: str = ""
    null_value: float = 0.0
    testable: bool = True
    reason: str = ""
    spec: str = ""
    estimate: str = ""
    term: str = "att"
    scales: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"claim {self.id!r}"
        for name in ("id", "document", "quote", "hypothesis", "reason", "spec", "estimate"):
            if not isinstance(getattr(self, name), str):
                raise SpecError(
                    f"{where}: {name} must be a string; received {getattr(self, name)!r}."
                )
        for name in ("estimand", "test", "margin_unit", "term"):
            if not isinstance(getattr(self, name), str):
                raise SpecError(
                    f"{where}: {name} must be a string; received {getattr(self, name)!r}."
                )
        if not isinstance(self.scales, tuple) or not all(
            isinstance(o, str) and o for o in self.scales
        ):
            raise SpecError(
                f"{where}: scales must be a list of scale names; received {self.scales!r}."
            )
        if not isinstance(self.outcomes, tuple) or not all(
            isinstance(o, str) and o for o in self.outcomes
        ):
            raise SpecError(
                f"{where}: outcomes must be a list of outcome names; received {self.outcomes!r}."
            )
        for name in ("margin", "null_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SpecError(f"{where}: {name} must be a number; received {value!r}.")
        if not math.isfinite(self.null_value):
            raise SpecError(f"{where}: null_value must be finite; received {self.null_value!r}.")
        if not isinstance(self.testable, bool):
            raise SpecError(f"{where}: testable must be true or false; received {self.testable!r}.")
        if self.testable and not math.isfinite(self.margin):
            raise SpecError(
                f"{where}: a testable claim needs a positive, finite margin; got {self.margin}."
            )
        if self.estimand not in ESTIMANDS:
            raise SpecError(
                f"{where}: estimand {self.estimand!r} unknown; use one of {list(ESTIMANDS)}."
            )
        if self.test not in TESTS:
            raise SpecError(f"{where}: test {self.test!r} unknown; use one of {list(TESTS)}.")
        # a claim bound to another spec judges its term: term="displacement_share" is the
        # share whatever the estimand says
        unitless = self.estimand in UNITLESS_ESTIMANDS or self.term in UNITLESS_ESTIMANDS
        what = self.term if self.term in UNITLESS_ESTIMANDS else self.estimand
        if not self.margin_unit:
            object.__setattr__(self, "margin_unit", "absolute" if unitless else "pre_mean")
        elif unitless and self.margin_unit == "pre_mean":
            raise SpecError(
                f"{where}: margin_unit 'pre_mean' cannot apply to the {what}, a "
                "ratio without unit (the fit's pre-zone mean is in the outcome's unit); give "
                "the margin in share points with margin_unit = 'absolute' (the default)."
            )
        if self.margin_unit not in MARGIN_UNITS:
            raise SpecError(
                f"{where}: margin_unit {self.margin_unit!r} unknown; use one of "
                f"{list(MARGIN_UNITS)}."
            )
        if self.testable and not (self.margin > 0):
            raise SpecError(
                f"{where}: a testable claim needs a positive margin; got {self.margin}."
            )
        if self.spec and not self.estimate:
            raise SpecError(f"{where}: a claim bound to spec {self.spec!r} needs estimate = '...'.")
        if not self.testable and not self.reason:
            raise SpecError(f"{where}: an untestable claim must give its reason.")
        if len(self.quote) > 300:
            raise SpecError(f"{where}: quote is {len(self.quote)} characters; keep one sentence.")


# free-text fields a claim may carry beyond Claim's own (read into ``extra``)
_FREE_KEYS = frozenset({"caveat"})


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """Read ``[[claim]]`` tables from a TOML file (default ``seeds/claims.toml``)."""
    if path is not None and not isinstance(path, str | os.PathLike):
        raise SpecError(
            f"The claims file must be a path; received {path!r} ({type(path).__name__})."
        )
    path = Path(path) if path is not None else DEFAULT_CLAIMS
    if not path.exists():
        raise SpecError(f"Claims file not found: {path}; pass its path (claims.file in the spec).")
    if not path.is_file():
        raise SpecError(f"Claims file {path} is not a regular file; give the path of a TOML file.")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"Claims file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"Claims file {path} is not valid TOML: {exc}") from None
    known = set(Claim.__dataclass_fields__) - {"extra"}
    items = raw.get("claim", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SpecError(
            f"{path}: 'claim' must be an array of tables ([[claim]] blocks); received "
            f"{type(items).__name__}."
        )
    out = []
    for k, item in enumerate(items):
        missing = [f for f in ("id", "document", "quote", "hypothesis") if f not in item]
        if missing:
            raise SpecError(f"{path}: claim #{k + 1} lacks field(s) {missing}.")
        unknown = [key for key in item if key not in known and key not in _FREE_KEYS]
        if unknown:
            hints = {
                key: difflib.get_close_matches(key, sorted(known | _FREE_KEYS), n=1)
                for key in unknown
            }
            said = ", ".join(
                f"{key!r}" + (f" (did you mean {hints[key][0]!r}?)" if hints[key] else "")
                for key in unknown
            )
            raise SpecError(
                f"{path}: claim {item.get('id', f'#{k + 1}')!r} has unknown field(s) {said}; "
                f"allowed: {sorted(known | _FREE_KEYS)}. A misspelt field would fall back "
                "to its default and change the hypothesis tested."
            )
        vals = {key: v for key, v in item.items() if key in known}
        if vals.get("margin_unit", None) == "":
            raise SpecError(
                f"{path}: claim {item.get('id', f'#{k + 1}')!r} has an empty margin_unit; "
                f"use one of {list(MARGIN_UNITS)} or leave it out for the default."
            )
        outs = vals.get("outcomes", ())
        vals["outcomes"] = (
            (outs,) if isinstance(outs, str) else (tuple(outs) if isinstance(outs, list) else outs)
        )
        if isinstance(vals.get("scales"), list):
            vals["scales"] = tuple(vals["scales"])
        vals["extra"] = {key: v for key, v in item.items() if key not in known}
        out.append(Claim(**vals))
    ids = [c.id for c in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SpecError(f"{path}: claim id(s) {sorted(dup)} used twice.")
    return out


# ---------------------------------------------------------------------- verdicts
def check_claim_alpha(alpha: Any) -> float:
    """``alpha`` of a verdict: in (0, 0.5), since each test at level ``alpha`` reads the
    ``(1 - 2 alpha)`` interval, which is empty or inverted from 0.5 on."""
    a = check_alpha(alpha)
    if not a < 0.5:
        raise SpecError(
            f"Claims are judged at alpha in (0, 0.5) (each test at level alpha reads the "
            f"(1 - 2 alpha) interval, which is a point or inverted from 0.5 on); received "
            f"alpha={alpha!r} ([inference] alpha in a spec)."
        )
    return a


def judge(
    estimate: float,
    se: float,
    margin: float,
    *,
    test: str = "equivalence",
    null_value: float = 0.0,
    alpha: float = 0.05,
    df: float = math.inf,
    interval: tuple[float, float] | None = None,
    margin_lower: float | None = None,
) -> tuple[str, float, float]:
    """Verdict and the ``(1 - 2 alpha)`` interval ``(lo, hi)`` of ``estimate``.

    The interval uses the normal quantile, or Student's t with ``df`` degrees of freedom
    when finite (e.g. clusters - 1). ``equivalence`` verdicts come from
    :func:`zoneimpact.inference.equivalence.judge_null_claim` (the rule in the module
    docstring).

    ``interval``, when given, is the estimate's own ``(1 - 2 alpha)`` confidence set (e.g.
    Fieller's for the displacement share, which need not be symmetric and may be
    unbounded): the verdict then comes from where that set lies, by the same rule.
    TOST at level ``alpha`` is the ``(1 - 2 alpha)`` interval's inclusion in the margin
    band (Schuirmann 1987), so a symmetric ``interval`` gives :func:`judge_null_claim`'s
    verdict.

    ``margin_lower`` (default ``margin``) is the band's lower side: the band is
    ``(null_value - margin_lower, null_value + margin)`` (e.g. a log scale's
    ``[log(1 - m), log(1 + m)]``); a ``negative`` claim reads that lower side. A negative
    standard error or ``df <= 0`` gives ``"not estimable"`` (as a NaN one does).
    """
    alpha = check_claim_alpha(alpha)
    if test == "equivalence":
        check_margin(margin)
        if margin_lower is not None:
            check_margin(margin_lower)
    if interval is not None:
        lo, hi = (float(v) for v in interval)
        if not np.isfinite(estimate) or np.isnan(lo) or np.isnan(hi):
            return "not estimable", math.nan, math.nan
        return _judge_interval(lo, hi, margin, test, null_value, margin_lower), lo, hi
    if _unusable(estimate, se, df):
        return "not estimable", math.nan, math.nan
    z = t_quantile(1 - alpha, df)
    lo, hi = estimate - z * se, estimate + z * se
    if test == "equivalence" and se > 0:
        dfs = float(df) if np.isfinite(df) else None
        verdict = judge_null_claim(
            estimate - null_value, se, margin, alpha, df=dfs, margin_lower=margin_lower
        )
        return str(verdict), lo, hi
    # a zero standard error (an exact, noise-free estimate): the interval is the point
    return _judge_interval(lo, hi, margin, test, null_value, margin_lower), lo, hi


def _unusable(estimate: float, se: float, df: float) -> str:
    """Why ``estimate +/- t x se`` cannot be formed ("" when it can): a non-finite
    estimate or standard error, a negative standard error, or ``df <= 0`` (a NaN ``df``
    means the normal reference, as in :func:`zoneimpact.results.t_quantile`)."""
    if not np.isfinite(estimate):
        return "the estimate is not finite"
    if not np.isfinite(se):
        return "the standard error is not finite"
    if se < 0:
        return f"the standard error is negative ({se:g})"
    if not math.isnan(df) and df <= 0:
        return f"the t reference has {df:g} degrees of freedom (<= 0)"
    return ""


def _judge_interval(
    lo: float,
    hi: float,
    margin: float,
    test: str,
    null_value: float,
    margin_lower: float | None = None,
) -> str:
    """The module docstring's rule applied to a ``(1 - 2 alpha)`` set ``[lo, hi]``
    (ends may be infinite: an unbounded set supports nothing a bound would need), with
    the band ``(-margin_lower, margin)`` around ``null_value`` (``margin_lower`` default
    ``margin``)."""
    lower = margin if margin_lower is None else margin_lower
    d_lo, d_hi = lo - null_value, hi - null_value
    if test == "equivalence":
        if -lower < d_lo and d_hi < margin:
            return "supported"
        if d_lo > margin or d_hi < -lower:
            return "contradicted"
        return "inconclusive"
    sign = 1.0 if test == "positive" else -1.0
    edge = margin if test == "positive" else lower
    a, b = sorted((sign * d_lo, sign * d_hi))
    if a > 0:
        return "supported"
    if b < edge:
        return "contradicted"
    return "inconclusive"


def result_interval(
    result: EstimationResult, term: str, alpha: float
) -> tuple[float, float] | None:
    """The result's own ``(1 - 2 alpha)`` set for ``term`` when it is not the symmetric
    estimate +/- t x SE (:func:`zoneimpact.estimators.spillover.own_interval`: Fieller's
    for a spillover fit's displacement share); None otherwise."""
    from .estimators.spillover import own_interval

    return own_interval(result, term, alpha)


# ---------------------------------------------------------------------- curve verdicts
@dataclass(frozen=True)
class CurveRule:
    """Verdict rule over a specification curve (the claims file's ``[curve_rule]``).

    Attributes
    ----------
    pretrend_alpha : float
        A specification whose pre-trend test rejects at this level is not admissible.
    min_clean_controls : int
        Nor is one with fewer clean control cities (no zone, never exposed).
    require_pretrend_test : bool
        A specification without a pre-trend test (or without a standard error) is not
        admissible.
    """

    pretrend_alpha: float = 0.10
    min_clean_controls: int = 20
    require_pretrend_test: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.pretrend_alpha, bool) or not isinstance(
            self.pretrend_alpha, int | float
        ):
            raise SpecError(
                "[curve_rule] pretrend_alpha must be a number in (0, 1) (not quoted); "
                f"received {self.pretrend_alpha!r}."
            )
        if not (0 < float(self.pretrend_alpha) < 1):
            raise SpecError(
                f"[curve_rule] pretrend_alpha must lie in (0, 1); received {self.pretrend_alpha!r}."
            )
        if (
            isinstance(self.min_clean_controls, bool)
            or not isinstance(self.min_clean_controls, int)
            or self.min_clean_controls < 0
        ):
            raise SpecError(
                "[curve_rule] min_clean_controls must be a whole number >= 0; received "
                f"{self.min_clean_controls!r}."
            )
        if not isinstance(self.require_pretrend_test, bool):
            raise SpecError(
                "[curve_rule] require_pretrend_test must be true or false; received "
                f"{self.require_pretrend_test!r}."
            )


def load_curve_rule(path: str | Path | None = None) -> CurveRule:
    """The ``[curve_rule]`` table of a claims file (defaults when it has none)."""
    path = Path(path) if path is not None else DEFAULT_CLAIMS
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8-sig")).get("curve_rule", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"Claims file {path}: cannot read [curve_rule] ({exc}).") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: curve_rule must be a table; received {type(raw).__name__}.")
    known = set(CurveRule.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{path}: [curve_rule] key(s) {unknown} unknown; use {sorted(known)}.")
    return CurveRule(**raw)


def admissible_specs(curve: pd.DataFrame, rule: CurveRule) -> pd.DataFrame:
    """``curve`` with ``admissible`` (bool) and ``why_not`` (the first failed condition).

    Needs the columns ``se``, ``pretrend_p``, ``n_clean`` (and optionally ``judged``).
    """
    se = pd.to_numeric(curve["se"], errors="coerce")
    pre = pd.to_numeric(curve["pretrend_p"], errors="coerce")
    clean = pd.to_numeric(curve["n_clean"], errors="coerce")
    judged = curve["judged"].fillna(False).astype(bool) if "judged" in curve else True
    why = np.where(
        ~(judged & np.isfinite(se) & (se > 0)),
        "no standard error",
        np.where(
            pre.isna() & rule.require_pretrend_test,
            "no pre-trend test",
            np.where(
                pre < rule.pretrend_alpha,
                f"pre-trend test rejects at {rule.pretrend_alpha:g}",
                np.where(
                    ~(clean >= rule.min_clean_controls),
                    f"fewer than {rule.min_clean_controls} clean controls",
                    "",
                ),
            ),
        ),
    )
    return curve.assign(admissible=why == "", why_not=why)


def _curve_margin(claim: Claim, kind: str, pre_mean: float) -> tuple[float, float]:
    """A claim's band on one scale as ``(upper, lower)``, the band being ``(-lower,
    upper)`` around the null: for ``pre_mean`` claims ``margin x |pre-zone mean|`` on both
    sides on level scales (NaN or 0 when the mean is missing or 0) and ``[log(1 - margin),
    log(1 + margin)]`` on log scales, a change of ``-margin`` to ``+margin``; absolute
    margins as given on both sides."""
    if claim.margin_unit != "pre_mean":
        return claim.margin, claim.margin
    if kind == "log":
        if not claim.margin < 1:
            raise SpecError(
                f"claim {claim.id!r}: a pre_mean margin of {claim.margin:g} on a log scale "
                "would be the band [log(1 - margin), log(1 + margin)], which needs margin < 1."
            )
        return math.log1p(claim.margin), -math.log1p(-claim.margin)
    m = claim.margin * abs(pre_mean)
    return m, m


def curve_verdict(
    claim: Claim,
    specs: pd.DataFrame,
    rule: CurveRule,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Verdict of a claim over the specifications of one scale (module docstring).

    Parameters
    ----------
    claim : Claim
    specs : DataFrame
        One row per specification: ``estimate``, ``se``, ``df`` (optional), ``pretrend_p``,
        ``n_clean``, ``scale_kind`` (``"level"``/``"log"``), ``pre_mean``, ``judged``;
        optionally ``ci_low`` / ``ci_high`` / ``ci_level``: a specification's own interval
        at level ``ci_level`` (Fieller's for the displacement share), used for its verdict
        (``ci_level`` must then be ``1 - 2 alpha``).
    rule : CurveRule
    alpha : float
        Each specification is judged with its ``(1 - 2 alpha)`` interval (:func:`judge`).

    Returns
    -------
    dict
        ``verdict``, ``estimate`` (median of the admissible estimates), ``ci_low`` /
        ``ci_high`` (the lowest lower and highest upper bound among them), ``margin``
        (median), ``n_specs``, ``n_admissible``, ``n_clean`` and ``n_not_yet`` (ranges over
        the specifications) and ``note`` (the reason).
    """
    if specs.empty:
        return {"verdict": "not estimable", "note": "no specification on this scale",
                "n_specs": 0, "n_admissible": 0}  # fmt: skip
    tab = admissible_specs(specs.reset_index(drop=True), rule)
    own = _own_intervals(tab, alpha)
    # a missing df (NaN, None) is the normal reference; pre_mean None is NaN
    dfs = (
        pd.to_numeric(tab["df"], errors="coerce").to_numpy(float)
        if "df" in tab
        else np.full(len(tab), math.inf)
    )
    pre_means = (
        pd.to_numeric(tab["pre_mean"], errors="coerce").to_numpy(float)
        if "pre_mean" in tab
        else np.full(len(tab), math.nan)
    )
    admissible, why_not = (
        tab["admissible"].to_numpy(bool).copy(),
        tab["why_not"].to_numpy().astype(object),
    )
    verdicts, lows, highs, margins, lowers = [], [], [], [], []
    for i, r in enumerate(tab.itertuples(index=False)):
        kind = str(getattr(r, "scale_kind", "level"))
        margin, lower = _curve_margin(claim, kind, float(pre_means[i]))
        df = float(dfs[i])
        bad = (
            f"no margin (pre-zone mean {pre_means[i]:g})"
            if not (np.isfinite(margin) and margin > 0)
            else (f"{df:g} degrees of freedom" if not math.isnan(df) and df <= 0 else "")
        )
        if bad:
            # not evidence either way: neither judged nor admissible
            if admissible[i]:
                admissible[i], why_not[i] = False, bad
            v, lo, hi = "not estimable", math.nan, math.nan
        else:
            v, lo, hi = judge(
                float(r.estimate), float(r.se), margin, test=claim.test,
                null_value=claim.null_value, alpha=alpha,
                df=df if np.isfinite(df) else math.inf, interval=own[i],
                margin_lower=None if lower == margin else lower,
            )  # fmt: skip
        verdicts.append(v)
        lows.append(lo)
        highs.append(hi)
        margins.append(margin)
        lowers.append(lower)
    tab = tab.assign(
        admissible=admissible,
        why_not=why_not,
        spec_verdict=verdicts,
        lo=lows,
        hi=highs,
        spec_margin=margins,
        spec_margin_lower=lowers,
    )
    adm = tab[tab["admissible"]]
    out: dict[str, Any] = {"n_specs": len(tab), "n_admissible": len(adm)}
    for col in ("n_clean", "n_not_yet"):
        # the range over the scale's specifications (admissible or not)
        counts = pd.to_numeric(tab[col], errors="coerce") if col in tab else pd.Series([])
        out[col] = f"{int(counts.min())}-{int(counts.max())}" if counts.notna().any() else ""
    if adm.empty:
        why = tab["why_not"].value_counts()
        reasons = ", ".join(f"{n} {w}" for w, n in why.items())
        return {**out, "verdict": "inconclusive",
                "estimate": float(tab["estimate"].median()),
                "ci_low": float(np.nanmin(tab["lo"])) if tab["lo"].notna().any() else math.nan,
                "ci_high": float(np.nanmax(tab["hi"])) if tab["hi"].notna().any() else math.nan,
                "margin": float(np.nanmedian(tab["spec_margin"]))
                if tab["spec_margin"].notna().any() else math.nan,
                "note": f"no admissible specification of {len(tab)} ({reasons}); numbers span "
                        "all of them"}  # fmt: skip
    counts = adm["spec_verdict"].value_counts()
    summary = {
        "estimate": float(adm["estimate"].median()),
        "ci_low": float(adm["lo"].min()),
        "ci_high": float(adm["hi"].max()),
        "margin": float(adm["spec_margin"].median()),
        "margin_lower": float(adm["spec_margin_lower"].median()),
    }
    if len(counts) == 1 and counts.index[0] in ("supported", "contradicted"):
        verdict = str(counts.index[0])
        note = f"all {len(adm)} admissible specifications {verdict}"
    else:
        verdict = "inconclusive"
        parts = ", ".join(f"{n} {v}" for v, n in counts.items())
        note = (
            f"admissible specifications disagree ({parts})"
            if len(counts) > 1
            else f"all {len(adm)} admissible specifications inconclusive"
        )
    dropped = len(tab) - len(adm)
    if dropped:
        note += f"; {dropped} of {len(tab)} not admissible"
        unjudged = tab.loc[~tab["admissible"] & (tab["spec_verdict"] == "not estimable"), "why_not"]
        if len(unjudged):
            parts = ", ".join(f"{n} {w}" for w, n in unjudged.value_counts().items())
            note += f" (not estimable: {parts})"
    if not np.allclose(adm["spec_margin_lower"], adm["spec_margin"], rtol=0.0, atol=0.0):
        note += (
            f"; band [-{summary['margin_lower']:.4g}, {summary['margin']:.4g}] around the "
            "null (log scale: a change of -margin to +margin)"
        )
    lo_m, hi_m = float(adm["spec_margin"].min()), float(adm["spec_margin"].max())
    if not np.isclose(lo_m, hi_m, rtol=1e-9, atol=0.0):
        # each specification is judged against its own margin (its own pre-zone mean), so
        # the envelope interval and the median margin shown need not compare
        note += (
            f"; margins differ across specifications ({lo_m:.4g} to {hi_m:.4g}), each judged "
            "with its own, so the envelope CI need not lie within the median margin shown"
        )
    return {**out, **summary, "verdict": verdict, "note": note}


def _own_intervals(tab: pd.DataFrame, alpha: float) -> list[tuple[float, float] | None]:
    """Each specification's own ``(1 - 2 alpha)`` interval when the curve carries one at
    that level (``ci_level``; e.g. Fieller's for the displacement share), else None (the
    verdict forms the symmetric one from ``estimate`` and ``se``)."""
    if "ci_level" not in tab.columns:
        return [None] * len(tab)
    level = pd.to_numeric(tab["ci_level"], errors="coerce").to_numpy(float)
    formed = np.isfinite(level)
    if np.any(formed & ~np.isclose(level, 1 - 2 * alpha, rtol=0, atol=1e-12)):
        bad = sorted({float(v) for v in level[formed]})
        raise ZoneImpactError(
            f"The curve's intervals (column 'ci_level') were formed at level(s) {bad}; "
            f"judging at alpha={alpha} needs {1 - 2 * alpha:g}. Rebuild the curve with "
            f"alpha={alpha}."
        )
    lo, hi = (pd.to_numeric(tab[c], errors="coerce").to_numpy(float) for c in ("ci_low", "ci_high"))
    # a row with its own set but NaN ends is not estimable, as a single estimate's is
    return [(float(a), float(b)) if ok else None for a, b, ok in zip(lo, hi, formed, strict=True)]


def _knife_edge(row: Mapping[str, Any], test: str) -> str:
    """A note when the deciding interval bound lies within KNIFE_EDGE x margin of it."""
    margin, lo, hi = row.get("margin"), row.get("ci_low"), row.get("ci_high")
    verdict = row.get("verdict")
    if verdict not in ("supported", "contradicted") or not margin or not np.isfinite(margin):
        return ""
    null = float(row.get("null_value") or 0.0)
    # the verdict rule's bound is null_value +/- margin
    if test == "positive" and verdict == "contradicted":
        gap = null + margin - float(hi)  # type: ignore[arg-type]
    elif test == "negative" and verdict == "contradicted":
        lower = float(row.get("margin_lower", margin))
        gap = float(lo) - (null - lower)  # type: ignore[arg-type]
    else:
        return ""
    if 0 <= gap < KNIFE_EDGE * margin:
        return f"knife edge: the interval ends {gap:.3g} inside the margin {margin:.3g}"
    return ""


def _breakdown(result: EstimationResult) -> float:
    """Rambachan-Roth breakdown value of the direct piece's event study, if any."""
    base = getattr(result, "base_results", {}) or {}
    es = base.get("direct", result if "event:-2" in set(result.terms["term"]) else None)
    if es is None or getattr(es, "vcov", None) is None:
        return math.nan
    try:
        from .inference.honest import honest_did

        return float(honest_did(es).breakdown)
    except (ImportError, ZoneImpactError, ValueError, KeyError, np.linalg.LinAlgError):
        return math.nan


def evaluate_claims(
    claims: Sequence[Claim],
    results: Mapping[str, Mapping[str, EstimationResult | str] | str],
    *,
    alpha: float = 0.05,
    curves: Mapping[str, pd.DataFrame] | None = None,
    rule: CurveRule | None = None,
) -> pd.DataFrame:
    """Judge each claim against the estimates.

    Parameters
    ----------
    claims : sequence of Claim
    results : mapping data name -> {key: result}
        Keys: the outcome name for :func:`zoneimpact.estimators.spillover.fit` results,
        ``"{outcome}:share"`` / ``"{outcome}:hhi"`` for concentration results. A string
        value records why an estimate failed.
    alpha : float
        Verdicts use ``(1 - 2 alpha)`` intervals.
    curves : mapping data name -> DataFrame, optional
        Specification curves (:func:`zoneimpact.china.speccurve.specification_curve`
        columns). A claim with ``scales`` is then judged on that data by
        :func:`curve_verdict`, one row per scale, instead of on the single estimate.
    rule : CurveRule, optional
        The curve's verdict rule (default :class:`CurveRule`).

    Returns
    -------
    pandas.DataFrame
        One row per claim x data x outcome (one row per untestable claim), columns
        ``claim, document, data, estimator, outcome, estimand, test, estimate, ci_low,
        ci_high, null_value, margin, breakdown, verdict, note``.
    """
    rows: list[dict[str, Any]] = []
    curves = dict(curves or {})
    rule = rule or CurveRule()
    for c in claims:
        base = {
            "claim": c.id,
            "document": c.document,
            "estimand": c.estimand,
            "test": c.test,
            "null_value": c.null_value,
        }
        if not c.testable:
            rows.append({**base, "verdict": "untestable", "note": c.reason})
            continue
        if c.spec:
            rows.append(_judge_spec_claim(c, base, results.get(f"spec:{c.spec}"), alpha))
            continue
        suffix, term = ESTIMANDS[c.estimand]
        for data, res_map in results.items():
            if data.startswith("spec:"):
                continue
            if c.scales and data in curves:
                rows.extend(_curve_rows(c, base, data, curves[data], rule, alpha))
                continue
            # only "spec:" entries (linked_spec_results) can be a failure message
            assert not isinstance(res_map, str)
            for outcome in c.outcomes:
                row = {**base, "data": data, "outcome": outcome}
                res = res_map.get(outcome + suffix)
                if res is None:
                    rows.append(
                        {
                            **row,
                            "verdict": "untestable",
                            "note": f"outcome {outcome!r} not in data {data!r}",
                        }
                    )
                    continue
                if isinstance(res, str):
                    rows.append({**row, "verdict": "not estimable", "note": res})
                    continue
                tidy = res.tidy().set_index("term")
                if term not in tidy.index:
                    rows.append(
                        {**row, "verdict": "not estimable", "note": f"result lacks term {term!r}"}
                    )
                    continue
                est, se = float(tidy.at[term, "estimate"]), float(tidy.at[term, "std_error"])
                df = verdict_df(res, term)
                margin = _claim_margin(c, res)
                if not np.isfinite(margin):
                    rows.append(
                        {**row, "verdict": "not estimable", "note": _NO_PRE_MEAN.format(res)}
                    )
                    continue
                interval = result_interval(res, term, alpha)
                verdict, lo, hi = judge(
                    est, se, margin, test=c.test, null_value=c.null_value, alpha=alpha, df=df,
                    interval=interval,
                )  # fmt: skip
                why = _unusable(est, se, df) if interval is None else ""
                engine = res.info.get("base_estimator")
                rows.append(
                    {
                        **row,
                        "estimator": res.estimator + (f"/{engine}" if engine else ""),
                        "estimate": est,
                        "ci_low": lo,
                        "ci_high": hi,
                        "margin": margin,
                        "breakdown": _breakdown(res)
                        if c.estimand in ("direct", "net")
                        else math.nan,
                        "verdict": verdict,
                        "note": _with_net_note(
                            (f"{why}; " if why and verdict == "not estimable" else "")
                            + f"{100 * (1 - 2 * alpha):g}% CI{_reference(df)}; margin "
                            f"{c.margin:g} x {c.margin_unit}",
                            res,
                            term,
                        ),
                    }
                )
    claim_of = {c.id: c for c in claims}
    for row in rows:
        c = claim_of[str(row["claim"])]
        extra = [_knife_edge(row, c.test), _below_margin(row, c.test)]
        extra.append(str(c.extra.get("caveat", "")))
        extra = [e for e in extra if e]
        if extra:
            row["note"] = "; ".join([str(row.get("note") or ""), *extra]).lstrip("; ")
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def _curve_rows(
    c: Claim, base: dict[str, Any], data: str, curve: pd.DataFrame, rule: CurveRule, alpha: float
) -> list[dict[str, Any]]:
    """One verdict row per scale of a curve-bound claim."""
    out = []
    for scale in c.scales:
        specs = curve[(curve["estimand"] == c.estimand) & (curve["scale"] == scale)]
        specs = specs[specs["estimate"].notna()]
        res = curve_verdict(c, specs, rule, alpha=alpha)
        outcome = str(specs["outcome"].iloc[0]) if len(specs) else scale
        if scale == "ppml":
            outcome += " (PPML)"  # same variable as levels, another scale
        out.append(
            {
                **base,
                "data": data,
                "outcome": outcome,
                "scale": scale,
                "estimator": f"curve ({res.get('n_admissible', 0)}/{res.get('n_specs', 0)} admissible)",
                **res,
                "note": f"scale {scale}: {res['note']}; estimate = median, CI = envelope of "
                f"the admissible {100 * (1 - 2 * alpha):g}% CIs",
            }
        )
    return out


#: the terms whose verdicts carry the spillover fit's ``info["net_note"]``
_NET_CLAIM_TERMS = frozenset({"net", "net_per_treated", "displacement_share"})


_NO_PRE_MEAN = (
    "margin_unit 'pre_mean' needs the zones' pre-zone mean, which this {0.estimator} result "
    "does not report (or is not finite, or is 0); give an absolute margin "
    "(margin_unit = 'absolute')"
)


def _claim_margin(c: Claim, res: EstimationResult) -> float:
    """The claim's margin for one result: ``margin x |pre_mean|`` for ``pre_mean`` claims
    (NaN when the result's ``info["pre_mean"]`` is missing, not a finite number, or 0:
    a zero band would decide the verdict by itself), else ``margin``."""
    if c.margin_unit != "pre_mean":
        return float(c.margin)
    raw = res.info.get("pre_mean", math.nan)
    try:
        pre = float(raw)
    except (TypeError, ValueError):
        return math.nan
    if not np.isfinite(pre) or pre == 0:
        return math.nan
    return c.margin * abs(pre)


def _below_margin(row: Mapping[str, Any], test: str) -> str:
    """A note when a supported ``positive`` (``negative``) claim's interval also lies
    inside the margin: the effect is significant but smaller than the margin."""
    if row.get("verdict") != "supported" or test not in ("positive", "negative"):
        return ""
    margin, lo, hi = row.get("margin"), row.get("ci_low"), row.get("ci_high")
    lower = row.get("margin_lower", margin)
    if margin is None or lo is None or hi is None:
        return ""
    null = float(row.get("null_value") or 0.0)
    if test == "positive":
        inside = float(hi) - null < float(margin)
    else:
        inside = float(lo) - null > -float(lower)
    if not inside:
        return ""
    side = "above 0" if test == "positive" else "below 0"
    return (
        f"supported: the interval lies {side}, and also within the margin (a significant "
        "effect smaller than the margin)"
    )


def _judge_spec_claim(
    c: Claim, base: dict[str, Any], res_map: Mapping[str, Any] | str | None, alpha: float
) -> dict[str, Any]:
    """Verdict of a claim bound to one estimate of another spec (e.g. the Wanjiang SDID)."""
    row = {**base, "data": c.spec}
    if res_map is None:
        return {**row, "verdict": "not run", "note": f"needs spec {c.spec} (claims.linked_specs)"}
    if isinstance(res_map, str):
        return {**row, "verdict": "not estimable", "note": res_map}
    res = res_map.get(c.estimate)
    if res is None:
        return {
            **row,
            "verdict": "not estimable",
            "note": f"{c.spec} has no estimate {c.estimate!r}",
        }
    t = res.terms.set_index("term")
    if c.term not in t.index:
        return {**row, "verdict": "not estimable", "note": f"result lacks term {c.term!r}"}
    est, se = float(t.at[c.term, "estimate"]), float(t.at[c.term, "se"])
    df = verdict_df(res, c.term)
    margin = _claim_margin(c, res)
    if not np.isfinite(margin):
        return {
            **row,
            "outcome": res.outcome,
            "estimator": res.estimator,
            "verdict": "not estimable",
            "note": _NO_PRE_MEAN.format(res),
        }
    interval = result_interval(res, c.term, alpha)
    verdict, lo, hi = judge(
        est, se, margin, test=c.test, null_value=c.null_value, alpha=alpha, df=df,
        interval=interval,
    )  # fmt: skip
    why = _unusable(est, se, df) if interval is None else ""
    return {
        **row,
        "outcome": res.outcome,
        "estimator": res.estimator,
        "estimate": est,
        "ci_low": lo,
        "ci_high": hi,
        "margin": margin,
        "breakdown": _breakdown(res),
        "verdict": verdict,
        "note": _with_net_note(
            (f"{why}; " if why and verdict == "not estimable" else "")
            + f"{c.estimate}:{c.term}; {100 * (1 - 2 * alpha):g}% CI{_reference(df)}; margin "
            f"{c.margin:g} x "
            f"{c.margin_unit}",
            res,
            c.term,
        ),
    }


def _reference(df: float) -> str:
    """The t reference of a verdict's interval for its note (nothing when normal)."""
    if not math.isfinite(df):
        return ""
    return f" (t, {df:.0f} df)" if df >= 100 else f" (t, {df:.3g} df)"


def _with_net_note(note: str, res: EstimationResult, term: str) -> str:
    """A verdict on net or the displacement share carries what the fit said about net
    (``info["net_note"]``: e.g. net not identified under ``pre_exposed="drop_units"``) and,
    on the share, about the share (``info["share_note"]``: a direct total zero to rounding),
    so the claims table shows the reason next to the verdict; on net and the share also
    what the fit said about losses shared with zones outside the sample
    (``info["joint_source_note"]``: the share's bounds)."""
    extra = ""
    if term in _NET_CLAIM_TERMS:
        said = (res.info.get(k) for k in ("net_note", "joint_source_note"))
        extra = "; ".join(str(v) for v in said if v)
    if term == "displacement_share" and res.info.get("share_note"):
        extra = "; ".join(filter(None, [extra, str(res.info["share_note"])]))
    return f"{note}; {extra}" if extra else note


# ---------------------------------------------------------------------- running
def _needs(claims: Sequence[Claim]) -> dict[str, set[str]]:
    """Which estimates each outcome needs: 'spillover', 'share', 'hhi'."""
    need: dict[str, set[str]] = {}
    for c in claims:
        if not c.testable or c.spec:
            continue
        kind = {"concentration": "share", "concentration_hhi": "hhi"}.get(c.estimand, "spillover")
        for o in c.outcomes:
            need.setdefault(o, set()).add(kind)
    return need


def _panels_from_spec(data: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Panel]:
    from .simulate import design_from_dict, simulate

    out = {}
    for name, item in data.items():
        if isinstance(item, Panel):
            out[name] = item
        elif isinstance(item, Mapping) and "simulate" in item:
            out[name] = simulate(design_from_dict(dict(item["simulate"])), rng=rng).panel
        elif hasattr(item, "panel") and isinstance(item.panel, Panel):
            out[name] = item.panel
        else:
            raise SpecError(
                f"data {name!r}: give a Panel, a Simulation, or {{simulate = {{...}}}}; "
                f"received {type(item).__name__}."
            )
    return out


def estimate_name(data: str, key: str) -> str:
    """The name of one estimate of a claims run (in ``results.json``, the report and
    ``warnings.json``): ``<data>_<key>`` with a linked spec's ``spec:`` prefix and
    ``.toml`` suffix dropped and ``:`` replaced by ``_`` (``data_fdi_share``,
    ``china_patents_ppml``)."""
    label = f"{data.removeprefix('spec:').removesuffix('.toml')}_{key}"
    return label.replace(":", "_")


def run_claims(
    spec: Mapping[str, Any] | None = None,
    *,
    claims: Sequence[Claim] | str | Path | None = None,
    panels: Mapping[str, Panel] | None = None,
    rng: np.random.Generator | int | None = None,
    alpha: float | None = None,
    n_jobs: int | None = None,
    spillover: Mapping[str, Any] | None = None,
    concentration: Mapping[str, Any] | None = None,
    others: Mapping[str, pd.DataFrame] | None = None,
    caught: dict[str, list[dict[str, str]]] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, EstimationResult | str]]]:
    """Estimate what the claims need on every panel and judge them.

    Parameters
    ----------
    spec : dict, optional
        Keys (all optional): ``claims`` (path of a claims TOML, or the key ``file``),
        ``seed``, ``alpha``, ``n_jobs``, ``data`` (name -> Panel, Simulation or
        ``{"simulate": {design overrides}}``), ``spillover`` (options of
        :func:`zoneimpact.estimators.spillover.fit`, e.g. ``exposure``, ``n_boot``,
        ``base_estimator``), ``concentration`` (``base_estimator`` and ``options`` of
        :func:`zoneimpact.concentration.estimate_concentration`). Keyword arguments
        override the spec.
    claims : list of Claim or path, optional
        Default: ``seeds/claims.toml``.
    panels : dict name -> Panel, optional
    rng : Generator or int, optional
        Seeds the estimates (one child generator per data x outcome x kind, in order).
    others : dict name -> DataFrame, optional
        Outcome rows of each data's units outside its panel (e.g. units dropped as
        already treated; :attr:`zoneimpact.datasets.LoadedData.outside_rows`), counted
        in the regional totals of the concentration share and HHI
        (:func:`zoneimpact.concentration.share_of_region`).
    caught : dict, optional
        When given, receives the warnings raised by each fit (failed fits included), as an
        estimate run records them (:func:`zoneimpact.run.record_warnings`): ``{name:
        [{"category", "message"}, ...]}`` in fitting order, ``name`` being the fit's
        estimate name in a claims run (:func:`estimate_name`, e.g. ``data_fdi_share``);
        fits that raised none are left out. The warnings still reach the console.

    Returns
    -------
    table : pandas.DataFrame
        :func:`evaluate_claims` output.
    results : dict
        data name -> {outcome or "outcome:share"/"outcome:hhi" -> result or error text}.
    """
    from .concentration import estimate_concentration
    from .estimators.spillover import fit as spill_fit
    from .run import record_warnings

    spec = dict(spec or {})
    path = claims if claims is not None else spec.get("claims", spec.get("file"))
    claim_list = (
        list(path)
        if isinstance(path, Sequence) and not isinstance(path, str)
        else load_claims(path)
    )
    rng = as_generator(rng if rng is not None else spec.get("seed"))
    alpha = float(alpha if alpha is not None else spec.get("alpha", 0.05))
    n_jobs = int(n_jobs if n_jobs is not None else spec.get("n_jobs", 1))
    sp_opts = dict(spillover if spillover is not None else spec.get("spillover", {}))
    conc = dict(concentration if concentration is not None else spec.get("concentration", {}))
    data = dict(panels) if panels is not None else _panels_from_spec(spec.get("data", {}), rng)
    if not data:
        raise SpecError("run_claims needs data: pass panels={name: Panel} or spec['data'].")

    need = _needs(claim_list)
    results: dict[str, dict[str, EstimationResult | str]] = {}
    for name, panel in data.items():
        res: dict[str, EstimationResult | str] = {}
        for outcome in sorted(need):
            if outcome not in panel.outcomes:
                continue
            for kind in ("spillover", "share", "hhi"):
                if kind not in need[outcome]:
                    continue
                child = rng.spawn(1)[0]
                key = outcome if kind == "spillover" else f"{outcome}:{kind}"
                recording = (
                    record_warnings(estimate_name(name, key), caught)
                    if caught is not None
                    else contextlib.nullcontext()
                )
                try:
                    with recording:
                        if kind == "spillover":
                            # verdicts read 1 - 2 alpha intervals (evaluate_claims): the
                            # exact t reference's df matched at that level
                            res[key] = spill_fit(
                                panel,
                                outcome=outcome,
                                rng=child,
                                alpha=2 * alpha,
                                n_jobs=n_jobs,
                                **sp_opts,
                            )
                        else:
                            # the share is a spillover fit on the share panel: it takes the
                            # spillover options; the HHI panel has one unit per region and
                            # takes the concentration options only
                            opts = dict(conc.get("options", {}))
                            base = conc.get("base_estimator", "imputation")
                            if kind == "share":
                                opts = {**sp_opts, **opts, **conc.get("share_options", {})}
                                base = opts.pop("base_estimator", base)
                            column = str(
                                opts.pop("region_column", sp_opts.get("region_column", "region"))
                            )
                            res[key] = estimate_concentration(
                                panel,
                                outcome,
                                kind=kind,
                                column=column,
                                rng=child,
                                alpha=2 * alpha,
                                n_jobs=n_jobs,
                                base_estimator=base,
                                options=opts,
                                others=(others or {}).get(name),
                            )
                except ZoneImpactError as exc:
                    res[key] = f"{type(exc).__name__}: {exc}"
        results[name] = res
    return evaluate_claims(claim_list, results, alpha=alpha), results


def linked_spec_results(
    claim_list: Sequence[Claim],
    spec_dir: Path,
    data_dir: str | None,
    *,
    inputs: dict[str, str | None] | None = None,
    caught: dict[str, list[dict[str, str]]] | None = None,
) -> dict[str, dict[str, EstimationResult] | str]:
    """Run every spec the claims are bound to (once each) and keep its results;
    ``inputs``, when given, receives each spec file's and data file's SHA-256 as read
    (the claims run's manifest records them), and ``caught`` the warnings each of its
    blocks raised (:attr:`zoneimpact.run.RunOutput.warnings`), under the block's estimate
    name in the claims run (:func:`estimate_name`)."""
    from .errors import DataNotFoundError
    from .run import estimate_all, merge_warnings
    from .rundir import recorded_inputs
    from .spec import load_spec

    out: dict[str, dict[str, EstimationResult] | str] = {}
    for name in sorted({c.spec for c in claim_list if c.spec and c.testable}):
        path = spec_dir / name
        try:
            run = estimate_all(load_spec(path, data_dir=data_dir))
        except (DataNotFoundError, SpecError) as exc:
            out[f"spec:{name}"] = f"{type(exc).__name__}: {exc}"
            continue
        out[f"spec:{name}"] = run.results
        if caught is not None:
            merge_warnings(
                caught,
                {estimate_name(f"spec:{name}", b): ws for b, ws in run.warnings.items()},
            )
        if inputs is not None:
            for p, h in recorded_inputs(run).items():
                inputs.setdefault(p, h)
    return out


def claims_for_spec(spec: Any) -> Any:
    """Estimate what a spec's claims need and judge them; no files are written.

    The spec's data block builds the panel (as ``estimate`` does); its optional
    ``[claims]`` table holds ``file`` (claims TOML), ``spillover`` and ``concentration``
    options (see :func:`run_claims`), ``data_name`` (the data label in the table),
    ``linked_specs = true`` to also run the specs that spec-bound claims name (looked up
    beside the spec file), and ``breakdown_from`` (an estimate block of the spec whose
    event study gives the Rambachan-Roth breakdown value of the direct and net claims).

    Returns
    -------
    zoneimpact.run.RunOutput
        ``results`` are the estimates behind the verdicts, ``extras["verdicts"]`` the
        verdict table and ``extras["figures"]`` the decomposition figure. ``warnings``
        holds the warnings each fit raised, as an estimate run records them
        (:func:`zoneimpact.run.record_warnings`; ``warnings.json``, the manifest and the
        report show them): under its estimate name (:func:`estimate_name`) for the claims'
        own fits and the linked specs' blocks, the block's name for ``breakdown_from`` and
        ``curve.event_studies`` blocks, and ``specification_curve`` for the curve and its
        tables; in fitting order.
    """
    import time

    from .datadir import REPO_SPECS
    from .datasets import load_data
    from .report import plots
    from .run import (
        RunOutput,
        diagnose,
        estimate_all,
        merge_warnings,
        record_warnings,
        result_records,
    )

    start = time.perf_counter()
    check_claim_alpha(spec.inference.alpha)  # before any estimation
    rng = np.random.default_rng(spec.seed)
    data_rng, claims_rng = rng.spawn(2)
    loaded = load_data(spec, data_rng)
    opts = dict(spec.claims)
    claims_file = opts.pop("file", None)
    linked = bool(opts.pop("linked_specs", False))
    data_name = str(opts.pop("data_name", "data"))
    breakdown_from = opts.pop("breakdown_from", None)
    curve_opts = opts.pop("curve", None)
    if claims_file is not None and spec.spec_path and not Path(claims_file).is_absolute():
        claims_file = str(Path(spec.spec_path).parent / claims_file)
    claim_list = load_claims(claims_file)
    claims_path = Path(claims_file) if claims_file is not None else DEFAULT_CLAIMS
    # files the verdicts depend on beyond the spec and its data, hashed as read
    inputs: dict[str, str | None] = {str(claims_path.resolve()): sha256_or_none(claims_path)}
    # the warnings of every fit, in fitting order (warnings.json, manifest, report)
    caught: dict[str, list[dict[str, str]]] = {}
    table, claim_results = run_claims(
        opts,
        claims=claim_list,
        panels={data_name: loaded.panel},
        rng=claims_rng,
        alpha=spec.inference.alpha,
        n_jobs=spec.inference.n_jobs,
        # regional totals count the data's units left out of the panel
        others={data_name: loaded.outside_rows} if loaded.outside_rows is not None else None,
        caught=caught,
    )
    # linked specs add "spec:NAME" entries that are a failure message when the spec fails
    results: dict[str, Mapping[str, EstimationResult | str] | str] = dict(claim_results)
    if linked:
        spec_dir = Path(spec.spec_path).parent if spec.spec_path else REPO_SPECS
        results.update(
            linked_spec_results(claim_list, spec_dir, spec.data_dir, inputs=inputs, caught=caught)
        )
    estimates: dict[str, EstimationResult] = {}
    wanted = [breakdown_from] if breakdown_from is not None else []
    if curve_opts is not None:
        wanted += [n for n in curve_opts.get("event_studies", []) if n not in wanted]
    blocks = [b for b in spec.estimates if b.name in wanted]
    missing = sorted(set(wanted) - {b.name for b in blocks})
    if missing:
        raise SpecError(
            f"[claims] breakdown_from / curve.event_studies name no estimate block: {missing}."
        )
    own: dict[str, EstimationResult] = {}
    if blocks:
        own_run = estimate_all(replace(spec, estimates=tuple(blocks)), data=loaded)
        own = own_run.results
        merge_warnings(caught, own_run.warnings)
    estimates.update(own)
    extras_tables: dict[str, pd.DataFrame] = {}
    figures: dict[str, Any] = {}
    curves: dict[str, pd.DataFrame] = {}
    rule = load_curve_rule(claims_file)
    if curve_opts is not None:
        with record_warnings("specification_curve", caught):
            curves, extras_tables, figures = _china_curve(
                spec, loaded, curve_opts, own, rule, data_name
            )
    table = evaluate_claims(
        claim_list, results, alpha=spec.inference.alpha, curves=curves, rule=rule
    )
    if breakdown_from is not None:
        rows = (
            (table["data"] == data_name)
            & table["estimand"].isin(["direct", "net"])
            & table["scale"].isna()
        )
        table.loc[rows & table["estimate"].notna(), "breakdown"] = _breakdown(own[breakdown_from])
    honest = extras_tables.get("honest_sensitivity")
    if honest is not None and not honest.empty and "breakdown" in honest:
        for scale, block in dict(curve_opts.get("breakdown_by_scale", {})).items():
            h = honest[honest["estimate_block"] == block]
            rows = (table["scale"] == scale) & table["estimand"].isin(["direct", "net"])
            for col, kind in (("breakdown", "relative_magnitude"), ("breakdown_sd", "smoothness")):
                b = h.loc[h["restriction"] == kind, "breakdown"]
                if len(b):
                    table.loc[rows, col] = float(b.iloc[0])
    for data, res_map in results.items():
        if isinstance(res_map, str):
            continue
        for key, res in res_map.items():
            if isinstance(res, EstimationResult):
                estimates[estimate_name(data, key)] = res
    # one bar group per outcome of the claims' data (concentration shares are on another
    # scale and have their own figure)
    decomposed = {
        r.outcome: r
        for k, r in estimates.items()
        if "net" in set(r.terms["term"]) and not k.endswith("_share")
    }
    if decomposed:
        figures["decomposition"] = plots.decomposition_plot(decomposed)
    records = [
        rec
        for name, res in estimates.items()
        for rec in result_records(name, res, spec.inference.alpha)
    ]
    return RunOutput(
        replace(spec, figures={}),  # the spec's figure choices name its estimate blocks
        loaded,
        estimates,
        records,
        time.perf_counter() - start,
        extras={"verdicts": table, "figures": figures, "tables": extras_tables, "inputs": inputs},
        diagnostics=diagnose(estimates, spec.inference.alpha),
        warnings=caught,
    )


def _china_curve(
    spec: Any,
    loaded: Any,
    curve_opts: Mapping[str, Any],
    event_studies: Mapping[str, EstimationResult],
    rule: CurveRule,
    data_name: str,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any]]:
    """The China specification curve and referee tables (``[claims.curve]`` of a spec)."""
    from .china.speccurve import curve_figure, run_china_curve
    from .datadir import resolve_data_dir

    samples = tuple(curve_opts.get("samples", ("full", "no_flagged", "to2020")))
    cs_inference = curve_opts.get("cs_inference", "jackknife")
    if cs_inference not in ("jackknife", "analytic"):
        raise SpecError(
            '[claims.curve] cs_inference must be "jackknife" or "analytic"; received '
            f"{cs_inference!r}."
        )
    blocks = [n for n in curve_opts.get("event_studies", []) if n in event_studies]
    run = run_china_curve(
        loaded.panel,
        resolve_data_dir(spec.data_dir),
        event_studies={n: event_studies[n] for n in blocks},
        alpha=spec.inference.alpha,
        samples=samples,
        cs_inference=cs_inference,
        n_jobs=spec.inference.n_jobs,
    )
    curve = admissible_specs(run.curve, rule)
    tables = dict(run.tables)
    tables["specification_curve"] = curve
    tables["curve_notes"] = pd.DataFrame(
        {"note": [*run.notes, f"curve and tables took {run.seconds:.1f} s"]}
    )
    figures = dict(run.figures)
    figures["specification_curve"] = curve_figure(curve, curve["admissible"])
    return {data_name: curve}, tables, figures
