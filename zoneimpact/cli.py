"""Command line: ``python -m zoneimpact {estimate,simulate,claims,figures}``.

The CLI only parses arguments and TOML into the typed objects the Python API takes.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import parallel
from .errors import RunDirectoryError, ZoneImpactError

if TYPE_CHECKING:
    import pandas as pd

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
    output = run_spec(spec, Path(args.out) if args.out else None, force=args.force)
    print(f"Run directory: {output.path}")
    _print_summary(output)
    sim = output.data.simulation
    if sim is not None:
        t = sim.truth
        print(
            "Simulated truth: "
            + "; ".join(
                f"{o}: ATT {t.overall[o]:.4g}, displacement share {t.displacement_share[o]:.3g}"
                for o in output.spec.data.outcomes
                if o in t.overall
            )
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from .errors import SpecError
    from .simulate import SimulationDesign, simulate

    # SimulationDesign field values, forwarded through simulate(**overrides: Any)
    # numeric fields only (waves and cohort multipliers are tables: use a spec file)
    kinds = {f.name: str(f.type) for f in fields(SimulationDesign)}
    allowed = {k for k, t in kinds.items() if t in ("int", "float")}
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise SpecError(
                f"--set {item!r}: expected KEY=VALUE with KEY a numeric simulation design "
                f"field; allowed keys: {', '.join(sorted(allowed))}."
            )
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


def cmd_claims(args: argparse.Namespace) -> int:
    from .claims import run_claims_cli

    return run_claims_cli(args)


def cmd_figures(args: argparse.Namespace) -> int:
    from .figures import regenerate

    return regenerate(Path(args.out), data_dir=args.data_dir, force=args.force)


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

    out = Path(args.out) if args.out else None
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
    """The files of ``power --out``: curves, draws, summary, power.json and the figure."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    result.curves.to_csv(out / "power_curves.csv", index=False)
    result.draws.to_csv(out / "power_draws.csv", index=False)
    summary.to_csv(out / "power_summary.csv", index=False)
    info = {
        k: (v if isinstance(v, str | int | float | type(None)) else str(v))
        for k, v in result.info.items()
    }
    (out / "power.json").write_text(
        json.dumps({"summary": _json_records(summary), "info": info}, indent=2, default=float)
        + "\n",
        encoding="utf-8",
    )
    result.figure().savefig(out / "power_curve.png", dpi=120)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoneimpact", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("estimate", help="estimate a spec into a run directory")
    _common(p)
    p.set_defaults(func=cmd_estimate)
    p = sub.add_parser("claims", help="judge the seed documents' claims")
    _common(p)
    p.set_defaults(func=cmd_claims)
    p = sub.add_parser("simulate", help="write a simulated zone panel with known truth")
    p.add_argument("--out", default="simulated_panel.csv")
    p.add_argument("--seed", type=_seed, default=20261122, help="whole number >= 0")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="simulation setting, e.g. displacement_share=1",
    )
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("power", help="power curves and minimum detectable effects of a design")
    p.add_argument("--spec", help="run spec (TOML) with an optional [power] table")
    p.add_argument("--data-dir", help="external data directory")
    p.add_argument("--out", help="directory for power_curves.csv, power.json, power_curve.png")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_power)
    p = sub.add_parser("figures", help="regenerate every figure and table of the study")
    p.add_argument("--out", default="figures")
    p.add_argument("--data-dir")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    parallel.set_progress(not args.quiet)
    try:
        return int(args.func(args))
    except ZoneImpactError as exc:
        print(f"zoneimpact: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
