"""The work folder of a streamed fit: per-case arrays on disk, read back lazily.

A streamed :meth:`pancreas.pipeline.Pipeline.fit` writes what later stages
and later epochs need of each case once, under a key made of the case's
content and the parameters of the stages that made it, and reads it back
when needed, so that resident memory does not grow with the cohort:

``<work_dir>/cases/<case key>/``
    ``volume.npy`` (the canonical CT, slice-major, int16 where every value
    is an integer in range, float32 otherwise), ``label.npy`` (bool),
    ``meta.json`` (case id, affines, shape, orientation, dtype).
``<work_dir>/cases/<case key>/sp-<key>/``
    ``body_mask.npy``, ``superpixels.npy`` (the smallest unsigned integer
    type that holds the labels), and ``cf-<key>/`` with the cascade's
    per-case features.
``<work_dir>/fit-<key>/``
    What depends on fitted models: the forests, each case's candidates,
    boxes and targets, the ConvNet's last completed epoch.

Every entry is written into a hidden temporary folder and renamed into place
when complete, so a run killed at any point leaves only complete entries
(and temporaries that the next run removes). Nothing here is ever unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pancreas._atomic import atomic_write_text, fsync_dir

__all__ = ["DiskVolume", "WorkFolder", "hash_arrays", "hash_params"]

_INT16 = np.iinfo(np.int16)


def hash_params(params: dict[str, Any]) -> str:
    """A short, stable key of a dict of JSON-able parameters."""
    text = json.dumps(params, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def hash_arrays(*arrays: Any) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes (the content key of a case)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a.reshape(-1)).cast("B"))
    return h.hexdigest()[:24]


def compact_ct(array: NDArray[Any]) -> NDArray[Any]:
    """The CT as int16 where that is exact, else float32 (same values)."""
    a = np.asarray(array)
    if a.size and a.dtype.kind == "f":
        lo, hi = float(a.min()), float(a.max())
        if lo >= _INT16.min and hi <= _INT16.max and np.array_equal(a, np.rint(a)):
            return a.astype(np.int16)
    elif a.dtype.kind in "iu" and a.size:
        if int(a.min()) >= _INT16.min and int(a.max()) <= _INT16.max:
            return a.astype(np.int16)
    return a.astype(np.float32)


def smallest_label_dtype(n_max: int) -> np.dtype[Any]:
    """The smallest unsigned integer type that holds labels 0..``n_max``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_max <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(fh)
        if fortran:
            raise ValueError(f"{path}: expected a C-ordered array")
        return tuple(shape), dtype, fh.tell()


class DiskVolume:
    """A canonical CT stored slice-major on disk, read in bands of rows.

    ``shape`` is the canonical ``(I, J, K)`` shape; the file holds the array
    transposed to ``(K, I, J)`` so that rows ``r0..r1`` of axial slice ``k``
    are one contiguous read (:meth:`band`). Reads go through ``os.pread``
    into a fresh buffer: no page of the file is mapped into the process, so
    resident memory stays at the size of what is being cropped.

    Parameters
    ----------
    path : str or PathLike
        A ``.npy`` file written by :meth:`write`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> vol = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     dv = DiskVolume.write(f"{d}/v.npy", vol)
    ...     np.array_equal(dv.band(1, 0, 2), vol[0:2, :, 1]), dv.shape
    (True, (2, 3, 4))
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        stored, self.dtype, self._offset = _npy_header(self.path)
        self.shape = (stored[1], stored[2], stored[0])
        self._fd: tuple[int, int] | None = None  # (pid, descriptor)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"] = None  # a descriptor does not travel to another process
        return state

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (it is reopened on the next read)."""
        fd = getattr(self, "_fd", None)
        if fd is not None and fd[0] == os.getpid():
            with contextlib.suppress(OSError):
                os.close(fd[1])
        self._fd = None

    def _descriptor(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
        return self._fd[1]

    @classmethod
    def write(cls, path: str | os.PathLike[str], array: NDArray[Any]) -> DiskVolume:
        """Write a canonical ``(I, J, K)`` array slice-major; returns the reader."""
        np.save(path, np.ascontiguousarray(np.moveaxis(np.asarray(array), 2, 0)))
        return cls(path)

    def band(self, k: int, r0: int, r1: int) -> NDArray[Any]:
        """Rows ``r0:r1`` of axial slice ``k``, shape ``(r1 - r0, J)``."""
        n_i, n_j, _ = self.shape
        item = self.dtype.itemsize
        start = self._offset + ((int(k) * n_i + int(r0)) * n_j) * item
        nbytes = (int(r1) - int(r0)) * n_j * item
        data = os.pread(self._descriptor(), nbytes, start)
        if len(data) != nbytes:
            raise OSError(f"{self.path}: short read ({len(data)} of {nbytes} bytes)")
        return np.frombuffer(data, dtype=self.dtype).reshape(int(r1) - int(r0), n_j)

    def read(self) -> NDArray[Any]:
        """The whole volume in canonical ``(I, J, K)`` order (in memory)."""
        return np.ascontiguousarray(np.moveaxis(np.load(self.path), 0, 2))


class WorkFolder:
    """Complete, atomically written entries under a root folder.

    Parameters
    ----------
    root : str or PathLike
        The folder; created if missing.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     wf = WorkFolder(d)
    ...     with wf.entry("cases/a") as tmp:
    ...         np.save(tmp / "x.npy", np.ones(3))
    ...     wf.complete("cases/a"), wf.complete("cases/b")
    (True, False)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """Where entry ``name`` lives (complete or not)."""
        return self.root / name

    def complete(self, name: str) -> bool:
        """Whether entry ``name`` was written completely."""
        return (self.root / name / ".complete").is_file()

    @contextlib.contextmanager
    def entry(self, name: str) -> Iterator[Path]:
        """Write entry ``name`` in a temporary folder, renamed when complete.

        An existing entry of that name (complete or left half-written by a
        killed run) is replaced; on an exception nothing is left behind.
        """
        final = self.root / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.mkdir()
        try:
            yield tmp
            (tmp / ".complete").write_text("ok\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def remove_temporaries(self) -> int:
        """Delete folders left half-written by killed runs; returns how many."""
        n = 0
        for tmp in self.root.rglob(".*.tmp"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
                n += 1
        return n

    def read_json(self, name: str) -> Any:
        """A JSON file of the work folder, or None when absent."""
        path = self.root / name
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def write_json(self, name: str, obj: Any) -> None:
        """Write a JSON file of the work folder atomically."""
        atomic_write_text(self.root / name, json.dumps(obj, indent=1, sort_keys=True))


def cached(
    folder: WorkFolder,
    name: str,
    compute: Callable[[Path], None],
    counter: dict[str, int] | None = None,
    kind: str = "",
) -> Path:
    """Path of complete entry ``name``, computing it with ``compute(tmp)`` if needed."""
    if not folder.complete(name):
        with folder.entry(name) as tmp:
            compute(tmp)
        if counter is not None:
            counter[f"{kind} computed"] = counter.get(f"{kind} computed", 0) + 1
    elif counter is not None:
        counter[f"{kind} reused"] = counter.get(f"{kind} reused", 0) + 1
    return folder.path(name)
