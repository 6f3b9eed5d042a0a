"""A training killed with SIGKILL resumes from its work folder: same model, no rework."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pancreas.io import save_volume
from pancreas.phantom import make_phantom_cohort

pytest.importorskip("keras")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _train(data: Path, work: Path, out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("pancreas")
    return [str(exe), "train", "--images", str(data / "img" / "*.nii.gz"),
            "--labels", str(data / "lab" / "*.nii.gz"), "--preset", "tiny",
            "--epochs", "4", "--val-fraction", "0.34", "--seed", "0",
            "--work-dir", str(work), "-o", str(out)]  # fmt: skip


def _kill_when(command: list[str], ready, timeout: float = 600) -> None:
    """Start ``command`` and SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"


def _complete(work: Path, pattern: str) -> int:
    return sum(1 for p in work.glob(pattern) if (p / ".complete").is_file())


def test_sigkill_during_cases_and_epochs_then_resume_gives_the_same_model(tmp_path):
    from pancreas.persistence import load_pipeline

    images, labels = make_phantom_cohort(4, shape=(48, 48, 12), random_state=5)
    data = tmp_path / "data"
    for i in range(3):
        save_volume(images[i], data / "img" / f"case{i}.nii.gz")
        save_volume(labels[i], data / "lab" / f"case{i}.nii.gz")

    reference = subprocess.run(
        _train(data, tmp_path / "work_ref", tmp_path / "ref"),
        capture_output=True, text=True, env=ENV, timeout=900,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-3000:]

    work = tmp_path / "work"
    out = tmp_path / "model"
    # killed while the cases are prepared: one case has its superpixels
    _kill_when(_train(data, work, out), lambda: _complete(work, "cases/*/sp-*") >= 1)
    done_cases = _complete(work, "cases/*/sp-*/cf-*")
    assert done_cases < 3
    # killed during the ConvNet's training, after its first epoch
    _kill_when(
        _train(data, work, out),
        lambda: any(work.glob("fit-*/convnet-*/state.json")),
    )
    resumed = subprocess.run(
        _train(data, work, out), capture_output=True, text=True, env=ENV, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3 cases reused" in resumed.stderr
    assert "superpixels computed" not in resumed.stderr
    assert "1 forests reused" in resumed.stderr
    assert "ConvNet epochs reused" in resumed.stderr

    a, b = load_pipeline(tmp_path / "ref"), load_pipeline(out)
    for wa, wb in zip(
        a.named_steps["convnet"].model_.get_weights(),
        b.named_steps["convnet"].model_.get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(wa, wb)
    assert a.steps[-1][1].threshold_ == b.steps[-1][1].threshold_
    np.testing.assert_array_equal(
        a.predict_proba(images[3:])[0], b.predict_proba(images[3:])[0]
    )
