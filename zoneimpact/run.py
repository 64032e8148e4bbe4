"""Execute a :class:`RunSpec` into a run directory, atomically.

The run builds the panel, fits every ``[[estimate]]`` block with its own child random
generator (spawned from the spec's seed in block order, so adding n_jobs or reordering
work never changes a number), and only then writes:

``results.json``
    one record per reported number (schema in the README); byte-identical for the same
    spec and seed: records are sorted as the spec lists them and floats are rounded to 12
    significant digits, so last-bit noise from threaded BLAS cannot leak in.
``manifest.json``
    package versions, sha256 of every input file, the resolved spec, seed, git revision,
    wall time, and the warnings below.
``warnings.json``
    the warnings raised while each block was estimated (``{block: [{"category",
    "message"}, ...]}``, ``{}`` when none); also shown next to the block in report.html.
    A claims run (:func:`zoneimpact.claims.claims_for_spec`) records those of each of its
    fits the same way, under the estimate's name in ``results.json`` (the specification
    curve's under ``specification_curve``).
``tables/``, ``figures/``, ``artifacts/``, ``report.html``, ``data_report.json``.

Everything is written into a hidden temporary directory beside the target
(``.<name>.tmp-<pid>-<token>``) and renamed into place when complete. The rename is the
lock: it fails when the target exists (a second concurrent run into the same directory gets
:class:`~zoneimpact.errors.RunDirectoryExistsError`), and an existing directory is replaced
only with ``force``. Temporary folders left by killed runs (their process is gone) are
removed by the next run into the same parent. Every file name derived from user input (block,
artifact and figure names) goes through :class:`RunFiles`: sanitised to ``[A-Za-z0-9_.-]``,
unique inside its folder, and checked to resolve inside the run directory. Any OS error while
creating or writing becomes a :class:`~zoneimpact.errors.RunDirectoryError` naming the path,
what happened and the fix, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .datasets import LoadedData, load_data
from .errors import RunDirectoryError, RunDirectoryExistsError, SpecError, ZoneImpactError
from .estimators import check_options, get_estimator
from .inference.diagnostics import event_study_diagnostics
from .report import outputs
from .results import EstimationResult
from .rundir import PACKAGES as PACKAGES
from .rundir import RunFiles as RunFiles
from .rundir import RunOutput as RunOutput
from .rundir import manifest as manifest
from .rundir import safe_name as safe_name
from .rundir import sha256 as sha256
from .spec import RunSpec


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.12g}")
    return x


def result_records(name: str, result: EstimationResult, alpha: float) -> list[dict[str, Any]]:
    """The ``results.json`` records of one estimate block."""
    return [
        {"name": name, **{k: _round(v) for k, v in rec.items()}} for rec in result.records(alpha)
    ]


def estimate_all(spec: RunSpec, *, data: LoadedData | None = None) -> RunOutput:
    """Load the data and fit every estimate block; no files are written."""
    start = time.perf_counter()
    for block in spec.estimates:  # every misspelt option is reported before any work
        try:
            check_options(block.estimator, block.options)
        except SpecError as exc:
            raise SpecError(f"Estimate {block.name!r}: {exc}") from exc
    root = np.random.default_rng(spec.seed)
    data_rng, *block_rngs = root.spawn(1 + len(spec.estimates))
    data = load_data(spec, data_rng, dask=True) if data is None else data
    results: dict[str, EstimationResult] = {}
    records: list[dict[str, Any]] = []
    caught: dict[str, list[dict[str, str]]] = {}
    block_data: dict[str, LoadedData] = {}
    for block, rng in zip(spec.estimates, block_rngs, strict=True):
        fit = get_estimator(block.estimator)
        panel = data.panel
        if block.data is not None:
            # a block with its own [estimate.data] reads that panel (loaded once per table)
            key = repr(block.data)
            if key not in block_data:
                block_data[key] = load_data(spec, rng.spawn(1)[0], block.data, dask=True)
            panel = block_data[key].panel
        if getattr(panel, "engine", None) == "dask":  # [data] engine = "dask" (issue 19)
            from .distributed._spec import estimator as dask_estimator

            fit = dask_estimator(block.estimator, block.options)
        try:
            with record_warnings(block.name, caught):
                res = fit(
                    panel,
                    outcome=block.outcome,
                    rng=rng,
                    alpha=spec.inference.alpha,
                    n_jobs=spec.inference.n_jobs,
                    **block.options,
                )
        except ZoneImpactError as exc:
            raise type(exc)(f"Estimate {block.name!r} ({block.estimator}): {exc}") from exc
        results[block.name] = res
        records.extend(result_records(block.name, res, spec.inference.alpha))
    extras = {"block_data": list(block_data.values())} if block_data else {}
    return RunOutput(
        spec,
        data,
        results,
        records,
        time.perf_counter() - start,
        extras=extras,
        diagnostics=diagnose(results, spec.inference.alpha),
        warnings=caught,
    )


@contextlib.contextmanager
def record_warnings(name: str, caught: dict[str, list[dict[str, str]]]) -> Iterator[None]:
    """Record the warnings raised inside into ``caught[name]`` (the run directory and
    report show them), then re-emit each one so the console still shows it.

    Used around every fit of an estimate run (:func:`estimate_all`) and of a claims run
    (:func:`zoneimpact.claims.run_claims`, :func:`zoneimpact.claims.claims_for_spec`).
    ``caught[name]`` is set only when something warned: ``[{"category", "message"},
    ...]`` in the order first raised, each (category, message) pair once; a name recorded
    before keeps its warnings and gains the new ones (:func:`merge_warnings`).

    Every warning is recorded whatever the caller's filters (and however often it was
    shown before in this process), so the same spec always records the same warnings; the
    caller's filters still decide what the console shows (or turn into an error) when
    they are re-emitted.
    """
    seen: list[warnings.WarningMessage] = []
    failed = True
    try:
        with warnings.catch_warnings(record=True) as rec:
            seen = rec if rec is not None else seen  # the list the warnings go to
            warnings.simplefilter("always")
            yield
            failed = False
    finally:
        kept: dict[tuple[str, str], warnings.WarningMessage] = {}
        for w in seen:
            kept.setdefault((w.category.__name__, str(w.message)), w)
        merge_warnings(caught, {name: [{"category": c, "message": m} for c, m in kept]})
        for w in kept.values():
            try:
                warnings.warn_explicit(
                    w.message,
                    w.category,
                    w.filename,
                    w.lineno,
                    module=_module_of(w.filename),
                    source=w.source,
                )
            except Warning:
                if not failed:  # an error filter: raised as before the recording
                    raise  # (while the fit's own exception is in flight, that one wins)


def merge_warnings(
    into: dict[str, list[dict[str, str]]], new: Mapping[str, Sequence[dict[str, str]]]
) -> None:
    """Add recorded warnings to ``into``; a name recorded already (two estimates of the
    same name) keeps its warnings and gains the new ones, each once, in order. A name
    without warnings is not added."""
    for name, messages in new.items():
        if messages:
            kept = into.setdefault(name, [])
            kept.extend(m for m in messages if m not in kept)


def _module_of(filename: str) -> str | None:
    """The imported module defined in ``filename`` (so module filters match a re-emitted
    warning as they matched the original), or None."""
    for mod_name, mod in list(sys.modules.items()):
        if getattr(mod, "__file__", None) == filename:
            return mod_name
    return None


def diagnose(results: dict[str, EstimationResult], alpha: float) -> pd.DataFrame:
    """Pre-trend Wald tests, equivalence margins and Rambachan-Roth breakdown values of
    every event-study result, computed once with the estimates (the report reads them)."""
    events = {
        name: res
        for name, res in results.items()
        if any(str(t).startswith("event:") for t in res.terms["term"])
    }
    return event_study_diagnostics(events, alpha=alpha)


def default_run_dir(spec: RunSpec, base: Path | None = None) -> Path:
    """``runs/<spec>-<timestamp>`` under the current directory (or ``base``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (base or Path.cwd() / "runs") / f"{spec.stem}-{stamp}"


#: our temporary (``tmp``) and replaced (``old``) siblings of a run directory
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>[0-9]+)(?:-[0-9a-f]{8})?$")


def _sibling(target: Path, kind: str) -> Path:
    """A fresh hidden name beside ``target`` matching :data:`_TEMP_NAME` (not created)."""
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may be alive (when unsure: yes, so nothing is removed)."""
    if os.name == "nt" or pid <= 0 or pid == os.getpid():
        return True  # on Windows os.kill(pid, 0) sends CTRL_C_EVENT: never probe there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # EPERM: alive, owned by another user
    return True


def _remove(path: Path) -> None:
    """Delete a file, symlink or directory tree; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Remove the temporary folders of dead runs in ``parent``.

    Only entries named like ours (``.<name>.tmp-<pid>[-<token>]`` and
    ``.<name>.old-<pid>[-<token>]``) whose process no longer exists (``os.kill(pid, 0)``)
    are touched. A stale ``tmp`` folder is claimed by an atomic rename (so two cleaners
    never race) and deleted. A stale ``old`` entry is a run replaced by ``--force`` whose
    writer died before its replacement was renamed into place: it is put back when
    ``<name>`` is missing, deleted otherwise.

    Parameters
    ----------
    parent : pathlib.Path
        The folder that holds (or will hold) run directories.

    Returns
    -------
    list of pathlib.Path
        The entries removed or restored (their old names).
    """
    try:
        entries = sorted(os.scandir(parent), key=lambda e: e.name)
    except OSError:
        return []
    handled = []
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None or _pid_alive(int(m["pid"])):
            continue
        path = Path(entry.path)
        target = path.parent / m["name"]
        try:
            if m["kind"] == "tmp" and not entry.is_dir(follow_symlinks=False):
                continue  # we only ever create directories as tmp-*
        except OSError:
            continue
        if m["kind"] == "old" and not os.path.lexists(target):
            try:
                os.rename(path, target)
                handled.append(path)
                continue
            except OSError:
                pass
        claim = _sibling(target, str(m["kind"]))
        try:
            os.rename(path, claim)
        except OSError:
            continue  # another run claimed it first, or we may not touch it
        _remove(claim)
        handled.append(path)
    return handled


def _exists_error(target: Path, *, meanwhile: bool = False) -> RunDirectoryExistsError:
    when = " (created by another run while this one was writing)" if meanwhile else ""
    return RunDirectoryExistsError(
        f"Run directory {target} exists already{when}; nothing was written. Choose another "
        "--out or pass --force to replace it."
    )


def check_target(out_dir: Path, *, force: bool = False) -> Path:
    """Fail early (before any estimation) when ``out_dir`` cannot become a run directory.

    First removes the debris of dead runs beside ``out_dir``
    (:func:`remove_stale_temporaries`, which may also put back a run that a killed
    ``--force`` had moved aside), then checks. Advisory only: the final rename of
    :func:`write_run` is what guarantees that a run never replaces another one without
    ``force``.

    Parameters
    ----------
    out_dir : pathlib.Path
        The run directory to create.
    force : bool
        Whether an existing ``out_dir`` may be replaced.

    Returns
    -------
    pathlib.Path
        ``out_dir`` as an absolute, normalised path.

    Raises
    ------
    RunDirectoryError
        ``out_dir`` exists (without ``force``), one of its parents is a file, or it is the
        current directory, one of its parents or the file-system root.
    """
    if not isinstance(out_dir, str | os.PathLike):
        raise RunDirectoryError(
            f"The run directory must be a path (str or pathlib.Path); received {out_dir!r} "
            f"({type(out_dir).__name__})."
        )
    if "\x00" in str(out_dir) or str(out_dir).strip() == "":
        raise RunDirectoryError(
            f"Run directory {str(out_dir)!r} is empty or holds a NUL character; choose a "
            "folder name for --out."
        )
    target = Path(os.path.abspath(os.path.expanduser(out_dir)))
    try:
        cwd = Path.cwd()
    except OSError:  # the working directory was deleted: it cannot be the target then
        cwd = target.parent
    # judged on the physical path too: a symlinked parent can name the current folder
    real = Path(os.path.realpath(target))
    if any(t == t.parent or t == cwd or t in cwd.parents for t in (target, real)):
        raise RunDirectoryError(
            f"Run directory {out_dir} is the current directory, one of its parents or the "
            "file-system root; a run is never written there. Choose a new folder for --out."
        )
    remove_stale_temporaries(target.parent)
    if os.path.lexists(target) and not force:
        raise _exists_error(Path(out_dir))
    if os.path.lexists(target) and not (target.is_symlink() or target.is_file() or target.is_dir()):
        raise RunDirectoryError(
            f"Run directory {out_dir} exists and is a device, pipe or socket; --force replaces "
            "only a folder or a regular file. Nothing was written; choose another --out."
        )
    if force and target.is_file() and not target.is_symlink() and target.stat().st_size > 0:
        raise RunDirectoryError(
            f"Run directory {out_dir} exists and is a file, not an earlier zoneimpact run; "
            "--force replaces only those (or an empty file), so a mistyped --out cannot "
            "delete other work. Nothing was written; choose another --out or remove the "
            "file yourself."
        )
    if force and target.is_dir() and not target.is_symlink() and not _replaceable(target):
        raise RunDirectoryError(
            f"Run directory {out_dir} exists and is not an earlier zoneimpact run (no "
            "manifest.json) nor empty; --force replaces only those, so a mistyped --out "
            "cannot delete other work. Nothing was written; choose another --out or remove "
            "the folder yourself."
        )
    for parent in target.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise RunDirectoryError(
                    f"Cannot create run directory {out_dir}: {parent} is a file, not a "
                    "folder; nothing was written. Choose another --out or move that file."
                )
            break
    return target


# keys every manifest we write holds (:func:`zoneimpact.rundir.manifest`): a folder whose
# manifest.json lacks them (a browser extension, a web app, another tool's output) is not
# an earlier run and is never deleted by --force
_MANIFEST_KEYS = frozenset({"seed", "spec", "inputs", "packages", "created"})


def _replaceable(folder: Path) -> bool:
    """An empty folder or an earlier run directory (it holds our ``manifest.json``)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    if not entries:
        return True
    try:
        record = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and _MANIFEST_KEYS <= set(record)
        and isinstance(record.get("packages"), dict)
        and "zoneimpact" in record["packages"]
    )


def _os_error(exc: OSError, target: Path) -> RunDirectoryError:
    """The :class:`RunDirectoryError` for an OS error while writing ``target``."""
    where = str(exc.filename) if exc.filename else str(target)
    hidden = str(target.parent / f".{target.name}.")
    if where.startswith(hidden):  # the user knows the target, not our temporary sibling
        rest = where[len(hidden) :]
        cut = rest.find(os.sep)
        where = str(target) + (rest[cut:] if cut >= 0 else "")
    parent = target.parent
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        hint = f"No permission to write in {parent}: fix its permissions or choose another --out."
    elif code == errno.EROFS:
        hint = f"{parent} is on a read-only file system: choose --out on a writable disk."
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        hint = "The disk (or your quota) is full: free some space or choose --out on another disk."
    elif code == errno.ENOTDIR:
        hint = "A part of the path is a file, not a folder: choose another --out or move the file."
    elif code == errno.ENAMETOOLONG:
        hint = "The path or a name in it is too long: choose a shorter --out."
    else:
        hint = f"Check that {parent} exists and is writable, then run again."
    what = exc.strerror or type(exc).__name__
    return RunDirectoryError(
        f"Cannot write run directory {target}: {what} ({where}). {hint} Nothing of this run "
        "was kept."
    )


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, outermost first."""
    missing = []
    for p in (folder, *folder.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    created = []
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except FileExistsError:
            if not p.is_dir():
                raise
            continue  # a concurrent run made it: not ours to remove
        created.append(p)
    return created


def _publish(tmp: Path, target: Path, *, force: bool) -> None:
    """Rename the finished ``tmp`` to ``target``; replace an existing one only if ``force``.

    ``os.rename`` of a directory fails when the target is a non-empty directory or a file
    (POSIX; on Windows whenever it exists), so of two runs racing for the same target exactly
    one wins without ``force``. With ``force`` the existing target is first renamed to an
    ``old`` sibling (restored if the second rename fails) and deleted afterwards.
    """
    for _ in range(5):
        try:
            os.rename(tmp, target)
            return
        except OSError:
            if not os.path.lexists(target):
                raise
        if not force:
            raise _exists_error(target, meanwhile=True)
        old = _sibling(target, "old")
        try:
            os.rename(target, old)
            os.rename(tmp, target)
        except BaseException as exc:  # an interrupt between the renames included
            if not os.path.lexists(old):
                if isinstance(exc, FileNotFoundError):
                    continue  # another --force run moved it away meanwhile: try again
                raise
            if isinstance(exc, OSError) and os.path.lexists(target):
                _remove(old)  # another --force run landed first; it replaced the old run
                continue
            if not os.path.lexists(target):
                try:
                    os.rename(old, target)  # the earlier run comes back
                except OSError:
                    pass  # left as a stale old-* entry; the next run restores it
            raise
        _remove(old)
        return
    raise RunDirectoryError(
        f"Run directory {target} kept being replaced by other runs with --force; this run "
        "was not kept. Run again when they have finished."
    )


def write_run(output: RunOutput, out_dir: Path, *, force: bool = False) -> Path:
    """Write ``output`` into ``out_dir`` atomically.

    The run is built in a hidden temporary directory beside ``out_dir`` and renamed into
    place (see :func:`_publish`); stale temporary folders of dead runs in the same parent
    are removed first (:func:`check_target`).

    Parameters
    ----------
    output : RunOutput
        The estimates to write.
    out_dir : pathlib.Path
        The run directory to create; its missing parents are created too.
    force : bool
        Replace an existing ``out_dir`` (an earlier run directory, an empty folder or an empty
        file) instead of failing; anything else is refused (:func:`check_target`).

    Returns
    -------
    pathlib.Path
        The run directory written: ``out_dir`` made absolute, with ``.`` and ``..``
        resolved as :func:`check_target` resolves them.

    Raises
    ------
    RunDirectoryExistsError
        ``out_dir`` exists already (or another run created it meanwhile) and not ``force``.
    RunDirectoryError
        Any OS error while creating or writing it (permissions, full or read-only disk, a
        parent that is a file). Nothing is left behind: no temporary folder, no partial
        run directory, no parent folders this call created.
    """
    target = check_target(out_dir, force=force)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        created = _make_parents(target.parent)
        for _ in range(100):
            try:
                candidate = _sibling(target, "tmp")
                os.mkdir(candidate)
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:
            raise RunDirectoryError(f"Cannot create a temporary folder beside {target}.")
        _write_contents(output, tmp)
        _publish(tmp, target, force=force)
    except BaseException as exc:
        if tmp is not None:
            _remove(tmp)
        for p in reversed(created):
            try:
                os.rmdir(p)
            except OSError:
                break
        if isinstance(exc, OSError) and not isinstance(exc, RunDirectoryError):
            raise _os_error(exc, target) from exc
        raise
    return target


def _dump(obj: Any, path: Path) -> None:
    path.write_text(
        json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=_json_default)
        + "\n",
        encoding="utf-8",
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return str(obj)


def _write_contents(output: RunOutput, root: Path) -> None:
    """Write every file of the run into the existing, empty folder ``root``."""
    files = RunFiles(root)
    _dump(
        {"title": output.spec.title, "seed": output.spec.seed, "results": output.records},
        files.file("", "results", ".json"),
    )
    # what the console warned while each block was estimated (also in the manifest and
    # on the report page); {} when nothing warned
    _dump(output.warnings, files.file("", "warnings", ".json"))
    report = dict(output.data.report)
    markdown = report.pop("markdown", None)
    data_report = files.stem("", "data_report")
    _dump(report, files.path("", data_report, ".json"))
    if markdown:
        files.path("", data_report, ".md").write_text(markdown, encoding="utf-8")
    files.folder("artifacts")
    # fixed names first, so a block's artifact can never take them
    index_csv = files.file("artifacts", "index", ".csv")
    geography_csv = files.file("artifacts", "geography", ".csv")
    adjacency_csv = files.file("artifacts", "adjacency", ".csv")
    panel = output.data.panel
    # the exposure maps the run used (geography and adjacency), cached with the run
    if panel.geography is not None:
        panel.geography.to_csv(geography_csv)
    if panel.adjacency is not None:
        panel.adjacency.to_csv(adjacency_csv, index=False)
    # which file holds which block's table (names are sanitised and made unique)
    index: list[dict[str, str]] = []
    for name, res in output.results.items():
        path = files.file("artifacts", f"{name}_terms", ".csv")
        res.tidy().to_csv(path, index=False)
        index.append({"name": name, "artifact": "terms", "file": f"artifacts/{path.name}"})
        for key, table in res.artifacts().items():
            frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
            path = files.file("artifacts", f"{name}_{key}", ".csv")
            frame.to_csv(path)
            index.append({"name": name, "artifact": str(key), "file": f"artifacts/{path.name}"})
    pd.DataFrame(index, columns=["name", "artifact", "file"]).to_csv(index_csv, index=False)
    verdicts = output.extras.get("verdicts")
    if verdicts is not None:
        verdicts.to_csv(files.file("", "claims", ".csv"), index=False)
    record = manifest(output)
    outputs.write_tables_and_figures(output, root, files=files, manifest=record)
    _dump(record, files.file("", "manifest", ".json"))


def run_spec(spec: RunSpec, out_dir: Path | None = None, *, force: bool = False) -> RunOutput:
    """Estimate everything in ``spec`` and write the run directory."""
    target = out_dir if out_dir is not None else default_run_dir(spec)
    check_target(target, force=force)  # fail before estimating, not after
    output = estimate_all(spec)
    path = write_run(output, Path(target), force=force)
    return RunOutput(
        output.spec,
        output.data,
        output.results,
        output.records,
        output.wall_time,
        path,
        output.extras,
        output.diagnostics,
        output.warnings,
    )


def summary_table(output: RunOutput) -> pd.DataFrame:
    """The headline estimate of every block (for the console), plus the net effect and
    displacement share of spillover-aware blocks."""
    rows = []
    for name, res in output.results.items():
        ci = res.conf_int()
        present = set(res.terms["term"])
        for term in (res.main_term, "net_per_treated", "displacement_share"):
            if term not in present:
                continue
            row = res.terms.set_index("term").loc[term]
            rows.append(
                {
                    "name": name,
                    "estimator": res.estimator,
                    "outcome": res.outcome,
                    "term": term,
                    "estimate": float(row["estimate"]),
                    "se": float(row["se"]),
                    "ci_low": ci.loc[term, "lower"],
                    "ci_high": ci.loc[term, "upper"],
                    "n_units": res.n_units,
                }
            )
    return pd.DataFrame(rows)
