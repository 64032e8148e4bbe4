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
  negligible), **inconclusive** otherwise; ``negative`` mirrors it.

:func:`zoneimpact.inference.equivalence.judge_null_claim` decides the equivalence
verdicts. ``breakdown`` is the Rambachan-Roth (2023) breakdown value of the
direct effect's event study when a registry estimator produced one (else NaN).

Entry points: :func:`load_claims`, :func:`evaluate_claims`, :func:`run_claims` and
:func:`run_claims_cli` (``python -m zoneimpact claims``).
"""

from __future__ import annotations

import argparse
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import SpecError, ZoneImpactError
from .inference.equivalence import judge_null_claim
from .panel import Panel
from .parallel import as_generator
from .results import EstimationResult

__all__ = [
    "Claim",
    "DEFAULT_CLAIMS",
    "evaluate_claims",
    "judge",
    "load_claims",
    "run_claims",
    "run_claims_cli",
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
]


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
    margin_unit: str = "pre_mean"
    null_value: float = 0.0
    testable: bool = True
    reason: str = ""
    spec: str = ""
    estimate: str = ""
    term: str = "att"
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
        vals = {key: v for key, v in item.items() if key in known}
        outs = vals.get("outcomes", ())
        vals["outcomes"] = (
            (outs,) if isinstance(outs, str) else (tuple(outs) if isinstance(outs, list) else outs)
        )
        vals["extra"] = {key: v for key, v in item.items() if key not in known}
        out.append(Claim(**vals))
    ids = [c.id for c in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SpecError(f"{path}: claim id(s) {sorted(dup)} used twice.")
    return out


# ---------------------------------------------------------------------- verdicts
def judge(
    estimate: float,
    se: float,
    margin: float,
    *,
    test: str = "equivalence",
    null_value: float = 0.0,
    alpha: float = 0.05,
    df: float = math.inf,
) -> tuple[str, float, float]:
    """Verdict and the ``(1 - 2 alpha)`` interval ``(lo, hi)`` of ``estimate``.

    The interval uses the normal quantile, or Student's t with ``df`` degrees of freedom
    when finite (e.g. clusters - 1). ``equivalence`` verdicts come from
    :func:`zoneimpact.inference.equivalence.judge_null_claim` (the rule in the module
    docstring).
    """
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return "not estimable", math.nan, math.nan
    z = float(stats.t.ppf(1 - alpha, df) if np.isfinite(df) else stats.norm.ppf(1 - alpha))
    lo, hi = estimate - z * se, estimate + z * se
    d_lo, d_hi = lo - null_value, hi - null_value
    if test == "equivalence":
        if se > 0:
            dfs = float(df) if np.isfinite(df) else None
            verdict = judge_null_claim(estimate - null_value, se, margin, alpha, df=dfs)
            return str(verdict), lo, hi
        # a zero standard error (an exact, noise-free estimate): the interval is the point
        if -margin < d_lo and d_hi < margin:
            return "supported", lo, hi
        if d_lo > margin or d_hi < -margin:
            return "contradicted", lo, hi
        return "inconclusive", lo, hi
    sign = 1.0 if test == "positive" else -1.0
    a, b = sorted((sign * d_lo, sign * d_hi))
    if a > 0:
        return "supported", lo, hi
    if b < margin:
        return "contradicted", lo, hi
    return "inconclusive", lo, hi


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

    Returns
    -------
    pandas.DataFrame
        One row per claim x data x outcome (one row per untestable claim), columns
        ``claim, document, data, estimator, outcome, estimand, test, estimate, ci_low,
        ci_high, null_value, margin, breakdown, verdict, note``.
    """
    rows: list[dict[str, Any]] = []
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
                df = math.inf
                if "df" in res.terms.columns:
                    df = float(res.terms.set_index("term").at[term, "df"])
                scale = res.info.get("pre_mean", math.nan) if c.margin_unit == "pre_mean" else 1.0
                margin = c.margin * abs(float(scale))
                verdict, lo, hi = judge(
                    est, se, margin, test=c.test, null_value=c.null_value, alpha=alpha, df=df
                )
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
                        "note": f"{100 * (1 - 2 * alpha):g}% CI; margin {c.margin:g} x {c.margin_unit}",
                    }
                )
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


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
    df = float(t.at[c.term, "df"]) if "df" in t.columns else math.inf
    scale = res.info.get("pre_mean", math.nan) if c.margin_unit == "pre_mean" else 1.0
    margin = c.margin * abs(float(scale))
    verdict, lo, hi = judge(
        est, se, margin, test=c.test, null_value=c.null_value, alpha=alpha, df=df
    )
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
        "note": f"{c.estimate}:{c.term}; {100 * (1 - 2 * alpha):g}% CI; margin {c.margin:g} x {c.margin_unit}",
    }


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

    Returns
    -------
    table : pandas.DataFrame
        :func:`evaluate_claims` output.
    results : dict
        data name -> {outcome or "outcome:share"/"outcome:hhi" -> result or error text}.
    """
    from .concentration import estimate_concentration
    from .estimators.spillover import fit as spill_fit

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
                try:
                    if kind == "spillover":
                        res[key] = spill_fit(
                            panel, outcome=outcome, rng=child, alpha=alpha, n_jobs=n_jobs, **sp_opts
                        )
                    else:
                        # the share is a spillover fit on the share panel: it takes the
                        # spillover options; the HHI panel has one unit per region and
                        # takes the concentration options only
                        opts = dict(conc.get("options", {}))
                        base = conc.get("base_estimator", "imputation")
                        if kind == "share":
                            opts = {**sp_opts, **opts}
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
                            alpha=alpha,
                            n_jobs=n_jobs,
                            base_estimator=base,
                            options=opts,
                        )
                except ZoneImpactError as exc:
                    res[key] = f"{type(exc).__name__}: {exc}"
        results[name] = res
    return evaluate_claims(claim_list, results, alpha=alpha), results


def linked_spec_results(
    claim_list: Sequence[Claim], spec_dir: Path, data_dir: str | None
) -> dict[str, dict[str, EstimationResult] | str]:
    """Run every spec the claims are bound to (once each) and keep its results."""
    from .errors import DataNotFoundError
    from .run import estimate_all
    from .spec import load_spec

    out: dict[str, dict[str, EstimationResult] | str] = {}
    for name in sorted({c.spec for c in claim_list if c.spec and c.testable}):
        path = spec_dir / name
        try:
            out[f"spec:{name}"] = estimate_all(load_spec(path, data_dir=data_dir)).results
        except (DataNotFoundError, SpecError) as exc:
            out[f"spec:{name}"] = f"{type(exc).__name__}: {exc}"
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
        verdict table and ``extras["figures"]`` the decomposition figure.
    """
    import time

    from .datasets import load_data
    from .datadir import REPO_SPECS
    from .report import plots
    from .run import RunOutput, estimate_all, result_records

    start = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    data_rng, claims_rng = rng.spawn(2)
    loaded = load_data(spec, data_rng)
    opts = dict(spec.claims)
    claims_file = opts.pop("file", None)
    linked = bool(opts.pop("linked_specs", False))
    data_name = str(opts.pop("data_name", "data"))
    breakdown_from = opts.pop("breakdown_from", None)
    if claims_file is not None and spec.spec_path and not Path(claims_file).is_absolute():
        claims_file = str(Path(spec.spec_path).parent / claims_file)
    claim_list = load_claims(claims_file)
    table, claim_results = run_claims(
        opts,
        claims=claim_list,
        panels={data_name: loaded.panel},
        rng=claims_rng,
        alpha=spec.inference.alpha,
        n_jobs=spec.inference.n_jobs,
    )
    # linked specs add "spec:NAME" entries that are a failure message when the spec fails
    results: dict[str, Mapping[str, EstimationResult | str] | str] = dict(claim_results)
    if linked:
        spec_dir = Path(spec.spec_path).parent if spec.spec_path else REPO_SPECS
        results.update(linked_spec_results(claim_list, spec_dir, spec.data_dir))
        table = evaluate_claims(claim_list, results, alpha=spec.inference.alpha)
    estimates: dict[str, EstimationResult] = {}
    if breakdown_from is not None:
        blocks = [b for b in spec.estimates if b.name == breakdown_from]
        if not blocks:
            raise SpecError(
                f"[claims] breakdown_from = {breakdown_from!r} names no estimate block."
            )
        own = estimate_all(replace(spec, estimates=tuple(blocks)), data=loaded).results
        event_study = own[breakdown_from]
        estimates[breakdown_from] = event_study
        rows = (table["data"] == data_name) & table["estimand"].isin(["direct", "net"])
        table.loc[rows & table["estimate"].notna(), "breakdown"] = _breakdown(event_study)
    for data, res_map in results.items():
        if isinstance(res_map, str):
            continue
        for key, res in res_map.items():
            if isinstance(res, EstimationResult):
                label = f"{data.removeprefix('spec:').removesuffix('.toml')}_{key}"
                estimates[label.replace(":", "_")] = res
    # one bar group per outcome of the claims' data (concentration shares are on another
    # scale and have their own figure)
    decomposed = {
        r.outcome: r
        for k, r in estimates.items()
        if "net" in set(r.terms["term"]) and not k.endswith("_share")
    }
    figures = {"decomposition": plots.decomposition_plot(decomposed)} if decomposed else {}
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
        extras={"verdicts": table, "figures": figures},
    )


def run_claims_cli(args: argparse.Namespace) -> int:
    """``python -m zoneimpact claims [--spec FILE] [--out DIR]``: judge the claims.

    Prints the verdict table and writes a run directory (``runs/<spec>-claims-<timestamp>``
    or ``--out``) with ``claims.csv``, the claims table in every format, the estimates
    behind it, the direct/spillover/net decomposition figure and the report page.
    """
    from .run import default_run_dir, write_run
    from .spec import load_spec

    spec = load_spec(args.spec, data_dir=getattr(args, "data_dir", None))
    output = claims_for_spec(spec)
    table = output.extras["verdicts"]
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(
            table.drop(columns=["note", "document"]).to_string(
                index=False, float_format=lambda v: f"{v:.4g}"
            )
        )
    target = Path(args.out) if getattr(args, "out", None) else default_run_dir(spec)
    if not getattr(args, "out", None):
        target = target.with_name(target.name.replace(spec.stem, f"{spec.stem}-claims", 1))
    path = write_run(output, target, force=getattr(args, "force", False))
    print(f"Run directory: {path}")
    return 0
