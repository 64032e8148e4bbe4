"""Safe, unique file names inside one run directory (a core module: it imports only the
package's errors, so the report layer can use it without importing the run)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import RunDirectoryError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: device names Windows refuses as file names (with any extension)
_RESERVED = frozenset(
    {
        "CON",
        "PRN",
        "AUX",
        "NUL",
        *(f"COM{i}" for i in range(1, 10)),
        *(f"LPT{i}" for i in range(1, 10)),
    }
)
#: longest stem a user-derived name keeps (far below the 255-byte limit of file names, so a
#: ``-N`` suffix and an extension always fit)
MAX_STEM = 100


def safe_name(text: object) -> str:
    """A file-name stem made of ``[A-Za-z0-9_.-]`` only.

    Every other run of characters (path separators, spaces, non-ASCII letters) becomes one
    ``-``; leading and trailing dots and dashes are dropped (so ``"../../X"`` gives ``"X"``:
    no hidden files, no parent references), the stem is cut to :data:`MAX_STEM` characters,
    Windows device names get a leading ``_`` and an empty result becomes ``"unnamed"``.

    Parameters
    ----------
    text : object
        The user-given name (block, artifact, figure, unit or outcome name).

    Returns
    -------
    str
        The safe stem; not yet unique (see :meth:`RunFiles.stem`).
    """
    stem = _UNSAFE.sub("-", str(text)).strip(".-")[:MAX_STEM].rstrip(".-")
    if not stem:
        return "unnamed"
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    return stem


class RunFiles:
    """Names every file written inside one run directory: safe, unique and inside it.

    Stems are sanitised with :func:`safe_name` and made unique per folder (compared
    case-insensitively, for case-insensitive file systems) by a ``-2``, ``-3``, ... suffix in
    the order they are asked for, so the same spec gives the same names. Every path handed
    out is checked to resolve inside the root.

    Parameters
    ----------
    root : pathlib.Path
        The run directory (in practice the hidden temporary directory being written).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._real = self.root.resolve()
        self._stems: dict[str, set[str]] = {}

    def folder(self, name: str) -> Path:
        """Create (if needed) and return the sub-folder ``name`` of the root."""
        path = self._inside(self.root / safe_name(name))
        path.mkdir(exist_ok=True)
        return path

    def stem(self, folder: str, name: object) -> str:
        """A safe stem for ``name``, unique inside ``folder`` (``""`` is the root)."""
        used = self._stems.setdefault(folder, set())
        base = safe_name(name)
        stem, k = base, 2
        while stem.casefold() in used:
            stem, k = f"{base}-{k}", k + 1
        used.add(stem.casefold())
        return stem

    def path(self, folder: str, stem: str, ext: str = "") -> Path:
        """The path of ``folder/stem+ext``, checked to lie inside the root."""
        return self._inside(self.root / folder / f"{stem}{ext}")

    def file(self, folder: str, name: object, ext: str = "") -> Path:
        """:meth:`stem` and :meth:`path` in one call."""
        return self.path(folder, self.stem(folder, name), ext)

    def _inside(self, path: Path) -> Path:
        real = path.resolve()
        if real == self._real or self._real not in real.parents:
            raise RunDirectoryError(
                f"Refusing to write {path}: it resolves to {real}, outside the run directory "
                f"{self._real}. This is a bug in zoneimpact; please report it with the spec."
            )
        return path


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_or_none(path: Path) -> str | None:
    """:func:`sha256`, or None when the file can no longer be read (a manifest records
    that rather than failing a finished run)."""
    try:
        return sha256(path)
    except OSError:
        return None
