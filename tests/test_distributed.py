"""A real dask.distributed LocalCluster on loopback runs a cohort like a local run."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pancreas.cohort import segment_cohort
from pancreas.io import save_volume

pytest.importorskip("keras")
distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

N_CASES = 6


@pytest.fixture(scope="module")
def cohort_folder(tmp_path_factory, tiny_cohort):
    images, _ = tiny_cohort
    folder = tmp_path_factory.mktemp("cluster_inputs")
    for i in range(N_CASES):
        save_volume(images[i % len(images)], folder / f"c{i}.nii.gz")
    return folder


@pytest.fixture(scope="module")
def local_outputs(tiny_fitted, cohort_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    result = segment_cohort(tiny_fitted, [cohort_folder], out, proba=True)
    assert result.ok and len(result.done) == N_CASES
    return _read(out)


def _read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.nii.gz"))}


@pytest.fixture(scope="module")
def cluster(make_local_cluster):
    with make_local_cluster() as cluster:
        yield cluster


def test_cohort_on_a_local_cluster_matches_a_local_run(
    tiny_fitted, cohort_folder, local_outputs, cluster, tmp_path
):
    from distributed import Client, get_task_stream

    from pancreas.distributed import run_on_cluster

    out = tmp_path / "cluster"
    with Client(cluster) as client, get_task_stream(client) as stream:
        result = run_on_cluster(
            client,
            segment_cohort,
            tiny_fitted,
            [cohort_folder],
            out,
            proba=True,
            scatter=[tiny_fitted],
        )
        # the pipeline was scattered once (broadcast), not shipped with each task
        who_has = client.who_has()
        scattered = [k for k in who_has if "Pipeline" in str(k)]
    assert result.ok and sorted(result.done) == [f"c{i}" for i in range(N_CASES)]
    assert _read(out) == local_outputs
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, "the cases did not spread over both workers"
    assert len(scattered) == 1  # one shared copy, the tasks refer to it by key


def test_segment_command_with_scheduler(
    tiny_fitted, cohort_folder, local_outputs, cluster, tmp_path
):
    import subprocess
    import sys

    from pancreas.persistence import save_pipeline

    model = save_pipeline(tiny_fitted, tmp_path / "model")
    out = tmp_path / "masks"
    exe = Path(sys.executable).with_name("pancreas")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [str(exe), "--quiet", "segment", str(model), str(cohort_folder), "-o",
         str(out), "--proba", "--scheduler", cluster.scheduler_address],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{N_CASES} of {N_CASES} case(s) segmented" in proc.stdout
    assert _read(out) == local_outputs
    bad = subprocess.run(
        [str(exe), "--quiet", "segment", str(model), str(cohort_folder), "-o",
         str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "cannot reach the Dask scheduler" in bad.stderr


# last: it kills a worker of the shared cluster (its nanny restarts it)
def test_killed_worker_cohort_still_completes(
    tiny_fitted, cohort_folder, local_outputs, cluster, tmp_path
):
    from distributed import Client

    from pancreas.distributed import run_on_cluster

    out = tmp_path / "cluster"
    with Client(cluster) as client:
        pids = client.run(os.getpid)
        outcome: dict = {}

        def work():
            outcome["result"] = run_on_cluster(
                client,
                segment_cohort,
                tiny_fitted,
                [cohort_folder],
                out,
                proba=True,
                scatter=[tiny_fitted],
            )

        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(out.glob("c*_proba.nii.gz")):
            time.sleep(0.05)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)  # the nanny restarts it
        thread.join(timeout=600)
        assert not thread.is_alive()
    result = outcome["result"]
    assert result.ok, result.failed
    assert sorted(result.done) == [f"c{i}" for i in range(N_CASES)]
    assert _read(out) == local_outputs
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert np.all([len(v) > 0 for v in _read(out).values()])
