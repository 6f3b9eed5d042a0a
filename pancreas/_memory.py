"""Memory guard: refuse a case that cannot fit before working on it.

Segmenting a case holds the CT (float32), its superpixels (int32), the body
mask, the stages' probability maps and the native-grid outputs, about
:data:`BYTES_PER_VOXEL` bytes per voxel at the peak (measured with
``benchmarks/bench_segment.py``: about six float32 copies of the volume),
plus the Python process with Keras and the model (:data:`PROCESS_BYTES`).
:func:`check_memory` compares that estimate with the memory the
machine (or its container's cgroup limit) has available and raises
:class:`~pancreas.exceptions.InsufficientMemoryError` before any work, rather
than letting the kernel kill the process halfway through a cohort.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from pancreas.exceptions import InsufficientMemoryError

#: Peak bytes per voxel while one case goes through the pipeline (measured:
#: 6.9 GB peak RSS for a 512 x 512 x 1000 phantom, ``bench_segment.py
#: --slices 1000 --segment-only``, of which about 1 GB is the process).
BYTES_PER_VOXEL = 24
#: The Python process with numpy, scikit-learn, Keras and a loaded model.
PROCESS_BYTES = 1024**3
#: Set this environment variable to 0 to switch the guard off.
ENV_SWITCH = "PANCREAS_MEMORY_CHECK"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """Bytes left under this process's cgroup memory limit, if it has one."""
    v2 = Path("/sys/fs/cgroup")
    limit = _read_int(v2 / "memory.max")
    if limit is not None:
        used = _read_int(v2 / "memory.current") or 0
        return max(limit - used, 0)
    v1 = v2 / "memory"
    limit = _read_int(v1 / "memory.limit_in_bytes")
    if limit is not None and limit < 1 << 60:
        used = _read_int(v1 / "memory.usage_in_bytes") or 0
        return max(limit - used, 0)
    return None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None where unknown.

    Returns
    -------
    int or None
        The smaller of the system's available memory and the headroom under
        a cgroup (container) limit.
    """
    candidates = [_meminfo_available(), _cgroup_headroom()]
    if candidates[0] is None:
        try:
            import psutil

            candidates[0] = int(psutil.virtual_memory().available)
        except ImportError:  # pragma: no cover - psutil is optional
            pass
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def required_memory(shape: Sequence[int]) -> int:
    """Estimated peak bytes of segmenting a volume of ``shape``."""
    return int(math.prod(int(s) for s in shape) * BYTES_PER_VOXEL) + PROCESS_BYTES


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def check_memory(
    shape: Sequence[int], name: str, *, available: int | None = None
) -> None:
    """Raise InsufficientMemoryError when a case of ``shape`` cannot fit.

    Parameters
    ----------
    shape : sequence of int
        The case's voxel grid.
    name : str
        The case, for the message.
    available : int, optional
        Bytes available (default: :func:`available_memory`).

    Raises
    ------
    InsufficientMemoryError
        The estimate exceeds what is available.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return
    if available is None:
        available = available_memory()
    if available is None:
        return
    need = required_memory(shape)
    if need > available:
        dims = " x ".join(str(int(s)) for s in shape)
        raise InsufficientMemoryError(
            f"{name}: segmenting a {dims} volume needs about {_gb(need)} of memory "
            f"but only {_gb(available)} is available; free memory, run fewer cases "
            "at once (--cases-in-parallel, Dask workers with more memory), crop the "
            f"scan to the abdomen, or set {ENV_SWITCH}=0 to try anyway"
        )
