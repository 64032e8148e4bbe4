"""Reproducible parallel loops: bootstrap draws, placebos, Monte Carlo replications.

Every repeated computation goes through :func:`replicate`. It spawns one child
``numpy.random.Generator`` per replication from the caller's generator *before* any work is
scheduled, so replication ``k`` always sees the same stream whatever the number of workers
or the joblib backend (loky processes, threads, or a dask cluster through
``joblib.parallel_config(backend="dask")``). This is the fix for the failure mode of
pyfixest 0.60, whose workers share one generator and repeat the same draw.

Progress is shown with tqdm as results come back from the workers, once a loop has run
for :data:`PROGRESS_DELAY_S`.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from joblib import Parallel, delayed

# Notebook bars need ipywidgets; without it tqdm.auto warns ("IProgress not found") on
# every loop, so the text bar is used then.
if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm import tqdm

from .errors import SpecError

T = TypeVar("T")

#: Global switch for progress bars (the CLI's ``--quiet`` turns it off).
SHOW_PROGRESS = {"on": True}
#: Seconds before a bar appears: loops faster than this (a jackknife's deletions on a small
#: panel) finish without flashing a bar that is erased at once.
PROGRESS_DELAY_S = 0.5


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process."""
    SHOW_PROGRESS["on"] = bool(enabled)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, a seed, or None (fresh entropy) and return a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    ok = rng is None or isinstance(rng, np.random.BitGenerator | np.random.SeedSequence)
    ok = ok or (isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0)
    if not ok:
        raise SpecError(
            f"rng must be None, a seed (a whole number >= 0) or a numpy Generator; received "
            f"{rng!r} ({type(rng).__name__})."
        )
    return np.random.default_rng(rng)


def snapshot(rng: np.random.Generator) -> np.random.Generator:
    """An independent copy of ``rng`` that will produce the same draws *and* the same
    spawned children: its bit generator's state and its seed sequence's spawn counter.

    ``copy.deepcopy`` does this on numpy >= 2 only; on 1.26 the copy's seed sequence
    restarts, so its children differ (replayed bootstrap draws would not replay).
    """
    bg = rng.bit_generator
    seq = getattr(bg, "seed_seq", None)
    if not isinstance(seq, np.random.SeedSequence):
        return copy.deepcopy(rng)
    fresh = np.random.SeedSequence(
        seq.entropy,
        spawn_key=seq.spawn_key,
        pool_size=seq.pool_size,
        n_children_spawned=seq.n_children_spawned,
    )
    twin = type(bg)(fresh)
    twin.state = bg.state
    return np.random.Generator(twin)


def spawn(rng: np.random.Generator | int | None, n: int) -> list[np.random.Generator]:
    """``n`` independent child generators, a deterministic function of ``rng``."""
    return as_generator(rng).spawn(n)


def check_n_jobs(n_jobs: Any) -> None:
    """Refuse an ``n_jobs`` that is not a whole number other than 0 (-1: every core)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise SpecError(
            f"n_jobs must be a whole number other than 0 (-1: every core); received {n_jobs!r}."
        )


def replicate(
    func: Callable[..., T],
    n: int | Sequence[Any],
    *,
    rng: np.random.Generator | int | None = None,
    n_jobs: int = 1,
    desc: str = "replications",
    progress: bool | None = None,
    backend: str | None = None,
) -> list[T]:
    """Run ``func`` over replications, in parallel and reproducibly.

    Parameters
    ----------
    func : callable
        Called as ``func(item, rng)`` where ``item`` is the replication index (when ``n`` is
        an int) or an element of ``n`` (a sequence of tasks, e.g. placebo units), and
        ``rng`` is that replication's own child generator.
    n : int or sequence
        Number of replications, or the tasks themselves.
    rng : Generator, int or None
        Parent generator; children are spawned from it in task order.
    n_jobs : int
        joblib workers (1 runs in-process, -1 uses every core).
    backend : str, optional
        joblib backend; ``None`` keeps joblib's default or the active
        ``joblib.parallel_config`` (e.g. ``"dask"`` inside a dask client context).

    Returns
    -------
    list
        Results in task order, identical for any ``n_jobs`` and backend.
    """
    check_n_jobs(n_jobs)
    if isinstance(n, bool) or (isinstance(n, int | np.integer) and n < 0):
        raise SpecError(f"The number of replications must be >= 0; received {n!r}.")
    tasks = list(range(int(n))) if isinstance(n, int | np.integer) else list(n)
    children = spawn(rng, len(tasks))
    show = SHOW_PROGRESS["on"] if progress is None else progress
    bar = tqdm(
        total=len(tasks),
        desc=desc,
        disable=not show or len(tasks) < 2,
        leave=False,
        delay=PROGRESS_DELAY_S,
    )
    try:
        if n_jobs == 1 and backend is None:
            out = []
            for task, child in zip(tasks, children, strict=True):
                out.append(func(task, child))
                bar.update()
            return out
        par = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
        out = []
        for res in par(delayed(func)(t, c) for t, c in zip(tasks, children, strict=True)):
            out.append(res)
            bar.update()
        return out
    finally:
        bar.close()
