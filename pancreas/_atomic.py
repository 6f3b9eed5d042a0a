"""Atomic file writes: a hidden temporary file in the same folder, renamed.

A reader never sees a half-written file: the data go to
``.{name}.{pid}.{random}.tmp`` beside the target, are flushed to disk and
renamed over the target in one step. A run killed in between leaves only the
temporary file, which :func:`remove_stale_temporaries` clears on the next run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def temporary_path(path: Path) -> Path:
    """The hidden temporary file a write of ``path`` goes through."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    out = Path(os.fspath(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(out.parent)
    return out


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(paths: Iterable[Path]) -> list[Path]:
    """Delete temporary files left by killed writes of ``paths``."""
    removed = []
    for path in paths:
        if not path.parent.is_dir():
            continue
        for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """Escape glob metacharacters in a file name."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
