"""Connect to a Dask scheduler, or start a local cluster when no address is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import SpecError

__all__ = ["client", "session"]


def client(address: str | None = None, *, n_workers: int | None = None, **kwargs: Any) -> Any:
    """A ``distributed.Client``: connected to ``address`` (``"tcp://host:8786"``) or, when
    None, to a new ``distributed.LocalCluster`` (``n_workers`` processes; ``kwargs`` go to
    ``LocalCluster``). The client becomes Dask's default scheduler; close it when done
    (it is a context manager)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is part of [test]
        raise SpecError(
            "The Dask engine needs dask[distributed]: pip install 'zoneimpact[distributed]'."
        ) from exc
    if address is not None:
        if not isinstance(address, str) or not address.strip():
            raise SpecError(
                f"Scheduler address must be a string such as 'tcp://10.0.0.5:8786'; "
                f"received {address!r}."
            )
        try:
            return Client(address)
        except (OSError, TimeoutError) as exc:
            raise SpecError(f"Could not reach the Dask scheduler at {address!r}: {exc}") from exc
    return Client(LocalCluster(n_workers=n_workers, **kwargs))


@contextmanager
def session(engine: str, address: str | None) -> Iterator[Any]:
    """The cluster of a run: with ``engine = "dask"`` a client on ``address`` or on a new
    local cluster, closed (with the local cluster) at the end; nothing for the in-memory
    engine, where a scheduler address is an error."""
    if engine != "dask":
        if address is not None:
            raise SpecError(
                f'--scheduler {address} needs [data] engine = "dask" in the spec (the panel is '
                "read into memory otherwise)."
            )
        yield None
        return
    c = client(address)
    try:
        yield c
    finally:
        cluster = c.cluster if address is None else None  # the local cluster started here
        c.close()
        if cluster is not None:
            cluster.close()
