"""``python -m zoneimpact figures``: regenerate every figure and table of the study.

Runs each committed spec — the simulated default, the replications of mpdta and Prop 99,
and the China study when its data are present — into ``OUT/<spec>/`` through the same
:func:`zoneimpact.run.run_spec` as ``estimate`` (so nothing is estimated twice or
differently), then lists every file written with its sha256.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataNotFoundError, RunDirectoryError
from .run import run_spec, sha256
from .spec import load_spec

REPO_SPECS = Path(__file__).resolve().parents[1] / "specs"
STUDY_SPECS = ("replications/mpdta.toml", "replications/prop99.toml", "china.toml")


def study_specs(spec_dir: Path = REPO_SPECS) -> list[Path | None]:
    """The default spec (None) followed by the committed study specs that exist."""
    return [None, *[spec_dir / s for s in STUDY_SPECS if (spec_dir / s).exists()]]


def regenerate(
    out: Path, *, data_dir: str | None = None, force: bool = False, specs: list[Path | None] | None = None
) -> int:
    """Run every study spec into ``out`` and print each file written with its checksum."""
    out = Path(out)
    if out.exists() and not force:
        raise RunDirectoryError(f"{out} exists already; pass --force to regenerate into it.")
    out.mkdir(parents=True, exist_ok=True)
    for spec_path in specs if specs is not None else study_specs():
        try:
            spec = load_spec(spec_path, data_dir=data_dir)
            run = run_spec(spec, out / ("default" if spec_path is None else spec.stem), force=force)
        except DataNotFoundError as exc:
            print(f"skipped {spec_path}: {exc}")
            continue
        for path in sorted(p for p in run.path.rglob("*") if p.is_file()):
            print(f"{sha256(path)}  {path}")
    return 0
