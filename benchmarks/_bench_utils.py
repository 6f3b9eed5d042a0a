"""Helpers shared by the benchmark scripts: machine description, peak memory, JSON.

Nothing here imports Keras or TensorFlow at import time; :func:`machine_info`
asks only the active Keras backend's own library for the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

MB = 1024.0**2


def quiet_warnings() -> None:
    """Silence the per-case spacing warning of tiny phantoms (benchmarks only)."""
    try:
        from pancreas.exceptions import SpacingWarning
    except ImportError:  # older pancreas without the spacing check
        return
    warnings.filterwarnings("ignore", category=SpacingWarning)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _total_ram_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def gpu_names(backend: str) -> list[str]:
    """Names of the GPUs the active Keras backend sees (never imports another's).

    TensorFlow is imported only when it is the backend; otherwise JAX or
    PyTorch is asked, and ``nvidia-smi`` is the fallback.
    """
    names: list[str] = []
    try:
        if backend == "jax":
            import jax

            names = [
                str(getattr(d, "device_kind", d))
                for d in jax.devices()
                if d.platform in ("gpu", "cuda", "rocm", "tpu")
            ]
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                names = [
                    torch.cuda.get_device_name(i)
                    for i in range(torch.cuda.device_count())
                ]
        elif backend == "tensorflow":
            import tensorflow as tf

            names = [
                tf.config.experimental.get_device_details(d).get("device_name", d.name)
                for d in tf.config.list_physical_devices("GPU")
            ]
    except Exception as exc:  # report, never fail on a description
        names = [f"unknown ({type(exc).__name__}: {exc})"]
    if not names and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout
            names = [
                f"{n.strip()} (nvidia-smi; not used by {backend})"
                for n in out.splitlines()
                if n.strip()
            ]
        except (OSError, subprocess.SubprocessError):
            pass
    return names


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python/numpy/Keras versions, backend and GPUs."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count_logical": os.cpu_count(),
        "ram_gb": None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "hostname": platform.node(),
    }
    try:
        import psutil

        info["cpu_count_physical"] = psutil.cpu_count(logical=False)
    except ImportError:
        info["cpu_count_physical"] = None
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    ram = _total_ram_bytes()
    info["ram_gb"] = None if ram is None else round(ram / 1024**3, 1)
    try:
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    import keras

    backend = keras.backend.backend()
    info["keras"] = keras.__version__
    info["keras_backend"] = backend
    lib = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}.get(backend)
    if lib is not None and lib in sys.modules:
        info[f"{lib}_version"] = getattr(sys.modules[lib], "__version__", None)
    info["gpus"] = gpu_names(backend)
    return info


class PeakRSS:
    """Peak resident memory of this process (and its children), sampled.

    A background thread reads ``psutil`` every ``interval`` seconds; use as a
    context manager. :meth:`window` returns the peak since the previous call
    and starts a new window. :meth:`ru_maxrss_mb` is the kernel's own peak
    (``getrusage``), which needs no sampling but never resets.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._window = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import psutil

            self._proc: Any = psutil.Process()
        except ImportError:
            self._proc = None

    def sample(self) -> int:
        """Read the current RSS (bytes) of the process and its children."""
        if self._proc is None:
            return 0
        rss = self._proc.memory_info().rss
        try:
            for child in self._proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except Exception:  # the child just exited
                    pass
        except Exception:
            pass
        self.peak = max(self.peak, rss)
        self._window = max(self._window, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRSS:
        self.sample()
        if self._proc is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def window(self) -> float | None:
        """Peak RSS in MB since the last call (None without psutil)."""
        self.sample()
        peak, self._window = self._window, 0
        return None if self._proc is None else round(peak / MB, 1)

    def peak_mb(self) -> float | None:
        """Peak RSS in MB since the start (None without psutil)."""
        return None if self._proc is None else round(self.peak / MB, 1)

    @staticmethod
    def ru_maxrss_mb() -> float:
        """The kernel's peak RSS of this process (``getrusage(RUSAGE_SELF)``), MB."""
        unit = 1.0 if sys.platform == "darwin" else 1024.0  # bytes vs KiB
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / MB, 1)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def write_json(path: str | os.PathLike[str] | None, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (numpy scalars as numbers); no-op for None."""
    if path is None:
        return
    import numpy as np

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=default) + "\n")
    print(f"wrote {out}")


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table, numbers right-aligned."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            if v == 0 or abs(v) >= 100:
                return f"{v:,.0f}"
            return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
        for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def parse_set(items: list[str], option: str = "--set") -> dict:
    """``["a__b=1", "c=null"]`` -> ``{"a__b": 1, "c": None}`` (values are JSON).

    ``option`` names the command-line option in the error message.
    """
    # the rule of ``pancreas train --set``: JSON, else a bare string
    from pancreas.cli import _assignment

    params = {}
    for item in items:
        try:
            name, value = _assignment(item)
        except argparse.ArgumentTypeError:
            raise SystemExit(f"{option}: expected NAME=JSON, got {item!r}") from None
        params[name] = value
    return params
