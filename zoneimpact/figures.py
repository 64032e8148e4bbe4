"""``python -m zoneimpact figures``: regenerate every figure and table of the study.

Runs each committed spec — the simulated default, the replications of mpdta and Prop 99,
and the China study when its data are present — into ``OUT/<spec>/`` through the same
:func:`zoneimpact.run.run_spec` as ``estimate``, and the claims of the default and China
specs into ``OUT/<spec>-claims/`` through the same :func:`zoneimpact.claims.claims_for_spec`
as ``claims``; then lists every file written with its sha256.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .claims import claims_for_spec
from .datadir import REPO_SPECS
from .errors import DataNotFoundError, RunDirectoryError
from .parallel import check_n_jobs
from .run import run_spec, sha256, write_run
from .spec import load_spec

STUDY_SPECS = (
    "replications/mpdta.toml",
    "replications/prop99.toml",
    "china.toml",
    "china_patents.toml",
    "china_wanjiang.toml",
    "china_west.toml",
)
#: specs whose claims are judged too (the default spec's and the China study's)
CLAIM_SPECS = (None, "china.toml")


def study_specs(spec_dir: Path = REPO_SPECS) -> list[Path | None]:
    """The default spec (None) followed by the committed study specs that exist."""
    return [None, *[spec_dir / s for s in STUDY_SPECS if (spec_dir / s).exists()]]


def regenerate(
    out: Path,
    *,
    data_dir: str | None = None,
    force: bool = False,
    specs: list[Path | None] | None = None,
    n_jobs: int | None = None,
) -> int:
    """Run every study spec into ``out`` and print each file written with its checksum.

    ``n_jobs`` replaces every spec's ``[inference] n_jobs`` (None keeps each spec's): the
    numbers do not depend on it, only the time and the cores taken (on a machine whose
    cores are busy with other work, one worker avoids the workers' own overhead)."""
    if n_jobs is not None:
        check_n_jobs(n_jobs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(
            f"{out} exists and is not a folder; --out names the folder of the figures. Nothing "
            "was written; choose another --out."
        )
    if out.exists() and not force:
        raise RunDirectoryError(f"{out} exists already; pass --force to regenerate into it.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(
            f"Cannot create {out}: {exc.strerror or exc}. Check that its parent is writable, or "
            "choose another --out."
        ) from exc
    written: list[Path] = []
    for spec_path in specs if specs is not None else study_specs():
        try:
            spec = load_spec(spec_path, data_dir=data_dir)
            if n_jobs is not None:
                spec = replace(spec, inference=replace(spec.inference, n_jobs=n_jobs))
            name = "default" if spec_path is None else spec.stem
            run_dir = run_spec(spec, out / name, force=force).path
            assert run_dir is not None  # run_spec always writes the run directory
            written.append(run_dir)
            if spec_path is None or Path(spec_path).name in CLAIM_SPECS:
                claims = claims_for_spec(spec)
                written.append(write_run(claims, out / f"{name}-claims", force=force))
        except DataNotFoundError as exc:
            print(f"skipped {spec_path}: {exc}")
    for root in written:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            print(f"{sha256(path)}  {path}")
    return 0
