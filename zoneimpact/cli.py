"""Command line: ``python -m zoneimpact {estimate,simulate,claims,power,figures}``.

The CLI only parses arguments and TOML into the typed objects the Python API takes.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import parallel
from .errors import RunDirectoryError, ZoneImpactError

if TYPE_CHECKING:
    from .run import RunOutput


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", help="run spec (TOML); default: the bundled simulated zone panel")
    p.add_argument(
        "--data-dir", help="external data directory (default: $ZONEIMPACT_DATA or ../shared/data)"
    )
    p.add_argument("--out", help="run directory to create (default: runs/<spec>-<timestamp>)")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _print_summary(output: RunOutput) -> None:
    from .run import summary_table

    table = summary_table(output)
    with np.printoptions(precision=4):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def cmd_estimate(args: argparse.Namespace) -> int:
    from .run import run_spec
    from .spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    # [data] engine = "dask": a client on --scheduler, or on a local cluster (issue 19)
    from .distributed.cluster import session

    with session(spec.data.engine, getattr(args, "scheduler", None)):
        output = run_spec(spec, Path(args.out) if args.out else None, force=args.force)
    print(f"Run directory: {output.path}")
    _print_summary(output)
    sim = output.data.simulation
    if sim is not None:
        import textwrap

        from .report.narrative import _num, run_summary

        t = sim.truth
        print(
            "Simulated truth: "
            + "; ".join(
                f"{o}: ATT {_num(t.overall[o])}, displacement share "
                f"{_num(t.displacement_share.get(o, float('nan')))}"
                for o in output.spec.data.outcomes
                if o in t.overall
            )
        )
        # Why the estimates differ from each other and from the truth (report.html has more);
        # the headline paragraphs (one per data and outcome) repeat the table printed above
        for para in run_summary(output):
            if not para.startswith(("Headline estimates", "Simulated data")):
                print()
                print(textwrap.fill(para, 100))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from .errors import SpecError
    from .simulate import SimulationDesign, simulate

    # SimulationDesign field values, forwarded through simulate(**overrides: Any)
    # numeric and true/false fields only (waves and cohort multipliers are tables: use a
    # spec file)
    kinds = {f.name: str(f.type) for f in fields(SimulationDesign)}
    allowed = {k for k, t in kinds.items() if t in ("int", "float", "bool")}
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise SpecError(
                f"--set {item!r}: expected KEY=VALUE with KEY a numeric or true/false "
                f"simulation design field; allowed keys: {', '.join(sorted(allowed))}."
            )
        if kinds[key] == "bool":
            if value.lower() not in ("true", "false"):
                raise SpecError(f"--set {item!r}: {key} needs true or false; received {value!r}.")
            overrides[key] = value.lower() == "true"
            continue
        try:
            number = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise SpecError(f"--set {item!r}: {key} needs a number; received {value!r}.") from None
        if not math.isfinite(number):
            raise SpecError(f"--set {item!r}: {key} needs a finite number; received {value!r}.")
        if kinds[key] == "int":
            if not float(number).is_integer():
                raise SpecError(f"--set {item!r}: {key} needs a whole number; received {value!r}.")
            number = int(number)
        overrides[key] = number
    out = Path(args.out)
    geo = out.with_name(out.stem + "_geography.csv")
    for target in (out, geo):
        if target.exists() and not (target.is_file() or target.is_dir()):
            raise RunDirectoryError(
                f"{target} is a device, pipe or socket, not a file; nothing was written. "
                "Choose another --out."
            )
        if target.is_dir():
            raise RunDirectoryError(
                f"{target} is a folder; --out names the CSV file to write (its geography goes "
                f"beside it as {geo.name}). Nothing was written."
            )
        if target.exists() and not args.force:
            raise RunDirectoryError(
                f"{target} exists already; nothing was written. Pass --force to replace it."
            )
    if not out.parent.is_dir():
        raise RunDirectoryError(
            f"Cannot write {out}: folder {out.parent} does not exist; create it or choose "
            "another --out. Nothing was written."
        )
    sim = simulate(rng=args.seed, **overrides)
    try:
        sim.frame.to_csv(out, index=False)
        sim.geography.to_csv(geo, index=False)
    except OSError as exc:
        raise RunDirectoryError(
            f"Cannot write {exc.filename or out}: {exc.strerror or exc}. Check that the folder "
            "is writable, or choose another --out."
        ) from exc
    print(f"Wrote {out} ({len(sim.frame)} rows) and {geo}")
    print(
        f"True overall ATT: {sim.truth.overall}; displacement share: {sim.truth.displacement_share}"
    )
    return 0


#: Printed before and after the verdicts of a claims run on simulated data.
DEMO_NOTE = (
    "DEMONSTRATION on SIMULATED data: {why}. The verdicts below judge the claims against "
    "a simulated panel whose truth is known (half of each zone's gain displaced from its "
    "neighbours by design), not against China's data. For real verdicts: "
    "python -m zoneimpact claims --spec specs/china.toml"
)


def cmd_claims(args: argparse.Namespace) -> int:
    """``python -m zoneimpact claims [--spec FILE] [--out DIR]``: judge the claims."""
    from .spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    demo = spec.data.source == "simulate"
    if demo:
        why = "no --spec given" if args.spec is None else f"{args.spec} simulates its data"
        print(DEMO_NOTE.format(why=why))
    code = _judge_and_write(spec, args)
    if demo:
        print("(Simulated data: these verdicts are a demonstration, see above.)")
    return code


def _judge_and_write(spec: Any, args: argparse.Namespace) -> int:
    """Print the verdict table and write a run directory (``runs/<spec>-claims-<timestamp>``
    or ``--out``) with ``claims.csv``, the claims table in every format, the estimates
    behind it, the direct/spillover/net decomposition figure and the report page."""
    from .claims import claims_for_spec
    from .run import check_target, default_run_dir, write_run

    target = Path(args.out) if args.out else default_run_dir(spec)
    if not args.out:
        target = target.with_name(target.name.replace(spec.stem, f"{spec.stem}-claims", 1))
    force = getattr(args, "force", False)
    check_target(target, force=force)  # fail before estimating, not after
    output = claims_for_spec(spec)
    table = output.extras["verdicts"]
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(
            table.drop(columns=["note", "document"]).to_string(
                index=False, float_format=lambda v: f"{v:.4g}"
            )
        )
    path = write_run(output, target, force=force)
    print(f"Run directory: {path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from .figures import regenerate

    return regenerate(Path(args.out), data_dir=args.data_dir, force=args.force, n_jobs=args.n_jobs)


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN as null (strict JSON)."""
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def cmd_power(args: argparse.Namespace) -> int:
    """Simulated power curves and minimum detectable effects of a spec's design."""
    from .power import power_from_spec
    from .spec import load_spec

    out = Path(os.path.expanduser(args.out)) if args.out else None
    if out is not None:  # checked before the (long) simulations
        if out.exists() and not out.is_dir():
            raise RunDirectoryError(
                f"{out} exists and is not a folder; --out names the folder to write the power "
                "curves into. Nothing was written."
            )
        if out.exists() and any(out.iterdir()) and not args.force:
            raise RunDirectoryError(
                f"{out} exists and is not empty; nothing was written. Pass --force to write "
                "into it, or choose another --out."
            )
    spec = load_spec(args.spec, data_dir=args.data_dir)
    result = power_from_spec(spec)
    summary = result.summary()
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if result.info.get("notes"):
        print(f"Note: {result.info['notes']}")
    if out is not None:
        try:
            _write_power(result, summary, out)
        except OSError as exc:
            raise RunDirectoryError(
                f"Cannot write the power results into {out}: {exc.strerror or exc} "
                f"({exc.filename or out}). Check that it is writable, or choose another --out."
            ) from exc
        print(f"Wrote {out}/power_curves.csv, power_summary.csv, power.json, power_curve.png")
    return 0


def _write_power(result: Any, summary: pd.DataFrame, out: Path) -> None:
    """The files of ``power --out``: curves, draws, summary, power.json and the figure.

    They are written into a hidden sibling folder and moved into ``out`` only once all
    are written, so a failure (a full disk) never leaves new files beside old ones."""
    import json
    import shutil
    import tempfile

    from .report.plots import power_curve_plot

    out = Path(os.path.abspath(os.path.expanduser(out)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.power-", dir=out.parent))
    try:
        result.curves.to_csv(tmp / "power_curves.csv", index=False)
        result.draws.to_csv(tmp / "power_draws.csv", index=False)
        summary.to_csv(tmp / "power_summary.csv", index=False)
        info = {
            k: (v if isinstance(v, str | int | float | type(None)) else str(v))
            for k, v in result.info.items()
        }
        (tmp / "power.json").write_text(
            json.dumps({"summary": _json_records(summary), "info": info}, indent=2, default=float)
            + "\n",
            encoding="utf-8",
        )
        power_curve_plot(result).savefig(tmp / "power_curve.png", dpi=200)
        out.mkdir(exist_ok=True)
        for name in POWER_FILES:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


POWER_FILES = (
    "power_curves.csv",
    "power_draws.csv",
    "power_summary.csv",
    "power.json",
    "power_curve.png",
)


def _seed(text: str) -> int:
    """The type of ``--seed``: a whole number >= 0 (what numpy accepts as a seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seed {text!r}: give a whole number >= 0"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: give a whole number >= 0")
    return value


_DESCRIPTION = """\
Counterfactual econometrics of place-based policy: estimate the effects of economic zones
with panel estimators (TWFE, Callaway-Sant'Anna, Sun-Abraham, imputation, synthetic
control, synthetic DiD, spillover DiD, ...), judge claims, and write run directories with
tables, figures and a report page."""

_EPILOG = """\
examples:
  python -m zoneimpact estimate                       # the bundled simulated zone panel
  python -m zoneimpact estimate --spec specs/replications/mpdta.toml --out runs/mpdta
  python -m zoneimpact simulate --out panel.csv --set displacement_share=1
  python -m zoneimpact power --spec specs/china.toml --out runs/power
  python -m zoneimpact claims --spec specs/china.toml

Run "python -m zoneimpact COMMAND --help" for a command's options. Spec keys: docs/spec.md."""


def _sub(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description)
    return parser


def _force_quiet(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"replace an existing {what}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="zoneimpact",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"zoneimpact {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _sub(
        sub,
        "estimate",
        "estimate a spec into a run directory",
        "Estimate every [[estimate]] block of a spec and write a run directory: "
        "results.json, tables (LaTeX, Markdown, HTML, CSV), figures (PNG, PDF), "
        "report.html and manifest.json. Without --spec, the bundled simulated zone panel.",
    )
    _common(p)
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help='Dask scheduler (tcp://host:8786) for [data] engine = "dask"; default: a local '
        "cluster",
    )
    p.set_defaults(func=cmd_estimate)
    p = _sub(
        sub,
        "claims",
        "judge the seed documents' claims",
        "Judge the claims of the seed documents (seeds/claims.toml) against a spec's data: "
        "one verdict per claim (supported, contradicted, inconclusive) with its estimate, "
        "interval, equivalence margin and sensitivity breakdown. Without --spec the "
        "claims are judged on the bundled SIMULATED panel, a demonstration only.",
    )
    _common(p)
    p.set_defaults(func=cmd_claims)
    p = _sub(
        sub,
        "simulate",
        "write a simulated zone panel with known truth",
        "Write a simulated China-like zone panel (CSV) and its geography, and print the "
        "true effects, so that estimators can be checked against known truth.",
    )
    p.add_argument(
        "--out",
        default="simulated_panel.csv",
        help="CSV file to write (default: simulated_panel.csv)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=20261122,
        help="random seed, a whole number >= 0 (default: 20261122)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="change a numeric simulation setting (repeatable), e.g. displacement_share=1",
    )
    _force_quiet(p, "file")
    p.set_defaults(func=cmd_simulate)
    p = _sub(
        sub,
        "power",
        "power curves and minimum detectable effects of a design",
        "Simulate a spec's design under a grid of true effects and report the power to "
        "detect the direct effect, the spillover and the displacement share, with the "
        "minimum detectable effects (MDE) at the spec's [power] settings.",
    )
    p.add_argument("--spec", help="run spec (TOML) with an optional [power] table")
    p.add_argument(
        "--data-dir", help="external data directory (default: $ZONEIMPACT_DATA or ../shared/data)"
    )
    p.add_argument(
        "--out", help="folder for power_curves.csv, power_summary.csv, power.json, power_curve.png"
    )
    _force_quiet(p, "output folder")
    p.set_defaults(func=cmd_power)
    p = _sub(
        sub,
        "figures",
        "regenerate every figure and table of the study",
        "Regenerate every figure and table of the China study from the external data.",
    )
    p.add_argument(
        "--out",
        default="figures",
        help="folder to write the figures and tables into (default: figures)",
    )
    p.add_argument(
        "--data-dir", help="external data directory (default: $ZONEIMPACT_DATA or ../shared/data)"
    )
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="joblib workers for every spec, replacing each spec's [inference] n_jobs "
        "(-1: every core; the numbers do not depend on it)",
    )
    _force_quiet(p, "output folder")
    p.set_defaults(func=cmd_figures)
    return parser


#: Python-API advice in library errors, and what a spec user sets instead (the CLI's
#: users write TOML specs: they cannot call Panel.from_frame or pass never_values)
_SPEC_ADVICE = (
    (
        re.compile(
            r"(?:Panel\.from_frame|read_panel)\((?:\.\.\., )?covariates=(?:\[\.\.\.\]|\.\.\.)\)"
        ),
        "the spec's [data] covariates = [...] (or the block's own [estimate.data] covariates)",
    ),
    (
        re.compile(
            r"Mark never-treated units with an empty cohort \(NaN\) and pass never_values=\(\), "
            r"or pass the code they use, e\.g\. never_values=\(-1,\)\."
        ),
        "In a spec, leave the cohort cells of never-treated units empty, or give the treated "
        "units with [data] treated_units = {unit = first period} instead of cohort (units not "
        "listed are never treated, and a first period 0 means period 0).",
    ),
    (
        re.compile(r"\b([Pp])ass outside_window='adjust'"),
        lambda m: (
            ("S" if m.group(1) == "P" else "s") + 'et [data] outside_window = "adjust" in the spec'
        ),
    ),
)


def _for_spec_users(message: str) -> str:
    """``message`` with Python-API advice replaced by the spec key to set."""
    for pattern, advice in _SPEC_ADVICE:
        message = pattern.sub(advice, message)
    return message


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 success, 2 error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    parallel.set_progress(not args.quiet)
    try:
        return int(args.func(args))
    except ZoneImpactError as exc:
        print(f"zoneimpact: error: {_for_spec_users(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the user named: no traceback, the path and the reason
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"zoneimpact: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoneimpact: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
