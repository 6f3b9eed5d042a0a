"""Run pancreas's parallel loops on a Dask cluster, through joblib.

pancreas has no scheduler of its own: every parallel loop (superpixel
slices, feature slices, cases of a cohort, cases of a report) goes through
joblib, so inside ``joblib.parallel_config(backend="dask")`` the work goes to
the workers of the active ``dask.distributed.Client``. :func:`run_on_cluster`
does this for one call, scattering the fitted model to every worker once
(not once per task). Workers read their inputs themselves, by path, from
storage they share with the driver. Needs ``pip install pancreas[distributed]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["run_on_cluster"]

T = TypeVar("T")


def _client(address: Any) -> Any:
    try:
        from dask.distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "running on a Dask cluster needs dask.distributed: "
            "pip install 'pancreas[distributed]'"
        ) from exc
    if isinstance(address, Client):
        return address
    try:
        return Client(address, set_as_default=False, timeout="20s")
    except OSError as exc:
        raise OSError(
            f"cannot reach the Dask scheduler at {address!r} ({exc}); start one "
            "with `dask scheduler` (and `dask worker ADDRESS`) or check the address"
        ) from exc


def run_on_cluster(
    address: Any,
    func: Callable[..., T],
    *args: Any,
    scatter: Sequence[Any] = (),
    retries: int = 2,
    **kwargs: Any,
) -> T:
    """Call ``func(*args, **kwargs)`` with its joblib loops on a Dask cluster.

    Parameters
    ----------
    address : str or dask.distributed.Client
        The scheduler (``"tcp://host:8786"``) or a connected client.
    func : callable
        For example :func:`pancreas.cohort.segment_cohort`.
    *args : tuple
        Positional arguments of ``func``.
    scatter : sequence, default=()
        Large objects passed to every task (the fitted pipeline): sent to
        each worker once, before the tasks.
    retries : int, default=2
        Times a task is retried when it fails or its worker dies.
    **kwargs : dict
        Keyword arguments of ``func``.

    Returns
    -------
    object
        What ``func`` returns.

    Examples
    --------
    On a local cluster (``pip install pancreas[distributed]``)::

        from dask.distributed import LocalCluster
        from pancreas.cohort import segment_cohort
        with LocalCluster(n_workers=2, threads_per_worker=1) as cluster:
            run_on_cluster(cluster.scheduler_address, segment_cohort,
                           pipe, ["scans/"], "masks/", scatter=[pipe])
    """
    import joblib

    client = _client(address)
    own = client is not address
    try:
        with joblib.parallel_config(
            backend="dask",
            client=client,
            scatter=list(scatter) or None,
            retries=retries,
        ):
            return func(*args, **kwargs)
    finally:
        if own:
            client.close()
