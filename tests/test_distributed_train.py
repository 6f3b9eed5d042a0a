"""Training with the per-case work on a real Dask LocalCluster on loopback."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from pancreas.io import save_volume
from pancreas.phantom import make_phantom_cohort
from pancreas.pipeline import make_roth2015_pipeline

pytest.importorskip("keras")
distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


def _pipeline(work):
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    return pipe.set_params(convnet__epochs=2, work_dir=work)


def test_training_on_a_cluster_with_a_killed_worker_matches_a_local_fit(
    tmp_path, make_local_cluster
):
    from distributed import Client

    from pancreas.distributed import run_on_cluster

    images, labels = make_phantom_cohort(5, shape=(48, 48, 12), random_state=7)
    X, y = [], []
    for i in range(4):
        X.append(str(save_volume(images[i], tmp_path / "img" / f"c{i}.nii.gz")))
        y.append(str(save_volume(labels[i], tmp_path / "lab" / f"c{i}.nii.gz")))
    local = _pipeline(tmp_path / "work_local").fit(X, y)

    work = tmp_path / "work_cluster"
    pipe = _pipeline(work)
    with make_local_cluster() as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        outcome: dict = {}

        def work_():
            outcome["fitted"] = run_on_cluster(client, pipe.fit, X, y)

        thread = threading.Thread(target=work_)
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(work.glob("cases/*/meta.json")):
            time.sleep(0.02)
        os.kill(sorted(pids.values())[0], signal.SIGKILL)  # mid-run; nanny restarts
        thread.join(timeout=900)
        assert not thread.is_alive()
    fitted = outcome["fitted"]
    # each case is prepared exactly once in all: computed by a worker, or
    # (when the killed worker had finished it or its superpixels before it
    # could report them) found complete in the work folder by the retry
    counts = fitted.streamed_counts_
    once = ("superpixels computed", "superpixels reused", "cases reused")
    assert sum(counts.get(k, 0) for k in once) == 4, counts
    assert counts["superpixels computed"] >= 1, counts

    # every case was prepared by a worker process, not by this one
    writers = {
        json.loads(p.read_text())["written_by"]["pid"]
        for p in work.glob("cases/*/meta.json")
    }
    assert len(writers) >= 1 and os.getpid() not in writers
    for wa, wb in zip(
        local.named_steps["convnet"].model_.get_weights(),
        fitted.named_steps["convnet"].model_.get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(
        local.predict_proba(images[4:])[0], fitted.predict_proba(images[4:])[0]
    )
    rerun = _pipeline(work).fit(X, y)
    assert rerun.streamed_counts_["cases reused"] == 4
    assert not list(work.rglob(".*.tmp"))
