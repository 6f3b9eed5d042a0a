"""Parallel loops through joblib, with optional tqdm progress bars.

Every parallel loop in pancreas goes through :func:`parallel_map`, so a user
can move the work to a Dask cluster with
``joblib.parallel_config(backend="dask")``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from joblib import Parallel, delayed

T = TypeVar("T")

__all__ = ["local_threads", "parallel_map"]


def parallel_map(
    func: Callable[..., T],
    items: Sequence[Any] | Iterable[Any],
    *,
    n_jobs: int | None = None,
    prefer: str = "threads",
    verbose: int = 0,
    desc: str | None = None,
    args: tuple[Any, ...] = (),
) -> list[T]:
    """Apply ``func`` to each item, in parallel through joblib, in order.

    Parameters
    ----------
    func : callable
        Called as ``func(item)``.
    items : iterable
        The work items.
    n_jobs : int or None, default=None
        As in scikit-learn: None means 1 unless in a
        ``joblib.parallel_config`` context, -1 means all processors.
    prefer : {"threads", "processes"}, default="threads"
        joblib's soft hint; numpy, scipy and skimage release the GIL.
    verbose : int, default=0
        Show a tqdm progress bar when > 0 (updated every
        :data:`LOG_BAR_INTERVAL` seconds when stderr is not a terminal).
    desc : str, optional
        Label of the progress bar.
    args : tuple, default=()
        Extra arguments shared by every call, ``func(item, *args)`` (for
        example a fitted model); on a Dask cluster, pass large ones through
        ``joblib.parallel_config(backend="dask", scatter=[...])`` so they
        travel to each worker once.

    Returns
    -------
    list
        ``[func(item, *args) for item in items]``.
    """
    items = list(items)
    iterator: Iterable[Any] = items
    if verbose and len(items) > 1:
        from tqdm.auto import tqdm

        to_log = _bar_interval(tqdm) >= LOG_BAR_INTERVAL
        iterator = tqdm(
            items,
            desc=desc,
            mininterval=_bar_interval(tqdm),
            # a log file gets plain lines (no carriage returns or escapes),
            # the last one with the total
            leave=to_log,
            file=_LogLines(sys.stderr) if to_log else None,
            ascii=True if to_log else None,
        )
    if n_jobs in (None, 1) and not _in_parallel_config():
        return [func(item, *args) for item in iterator]
    return list(
        Parallel(n_jobs=n_jobs, prefer=prefer)(
            delayed(func)(item, *args) for item in iterator
        )
    )


#: Seconds between progress-bar updates written to a log file (not a terminal).
LOG_BAR_INTERVAL = 30.0


def _bar_interval(bar_class: type) -> float:
    """Seconds between a progress bar's updates.

    tqdm's default (0.1 s) on a terminal or in a notebook;
    :data:`LOG_BAR_INTERVAL` when stderr goes to a file, which would
    otherwise get ten updates a second over a long cohort run.
    """
    if bar_class.__module__.endswith("notebook"):
        return 0.1
    try:
        interactive = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        interactive = False
    return 0.1 if interactive else LOG_BAR_INTERVAL


class _LogLines:
    """A stream for progress bars in a log file: each update a plain line.

    tqdm redraws its bar in place with carriage returns (and, for nested
    bars, cursor-movement escape sequences); in a file they leave one long
    garbled line. This writer turns each redraw into its own line and drops
    the escapes and the blank redraw that clears a finished bar.
    """

    _ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        for part in re.split(r"[\r\n]", self._ESCAPE.sub("", text)):
            if part.strip():
                self.stream.write(part.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _in_parallel_config() -> bool:
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    return type(backend).__name__ not in ("LokyBackend", "SequentialBackend")


def local_threads() -> Any:
    """A context in which nested joblib loops run in threads of this process.

    Used inside the per-case tasks of a cohort: on a Dask worker, joblib
    would otherwise send the slice loops of a case back to the cluster as
    tasks, shipping the case's data through the scheduler.
    """
    from joblib import parallel_config

    return parallel_config(backend="threading")
