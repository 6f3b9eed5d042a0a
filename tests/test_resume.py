"""A cohort run killed with SIGKILL resumes and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pancreas.io import save_volume

pytest.importorskip("keras")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
N_CASES = 8


def _segment_command(model: Path, inputs: Path, out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("pancreas")
    return [str(exe), "--quiet", "segment", str(model), str(inputs), "-o", str(out),
            "--proba", "--stats"]  # fmt: skip


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.name != "statistics.json"
    }


def test_sigkill_mid_cohort_then_resume_matches_an_uninterrupted_run(
    tiny_fitted, tiny_cohort, tmp_path
):
    from pancreas.persistence import save_pipeline

    model = save_pipeline(tiny_fitted, tmp_path / "model")
    images, _ = tiny_cohort
    inputs = tmp_path / "inputs"
    for i in range(N_CASES):
        save_volume(images[i % len(images)], inputs / f"c{i:02d}.nii.gz")

    reference = tmp_path / "reference"
    done = subprocess.run(
        _segment_command(model, inputs, reference),
        capture_output=True, text=True, env=ENV, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _outputs(reference)
    assert len([n for n in expected if n.endswith("_proba.nii.gz")]) == N_CASES

    out = tmp_path / "out"
    proc = subprocess.Popen(
        _segment_command(model, inputs, out),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            masks = [
                p for p in out.glob("c*.nii.gz") if not p.name.endswith("_proba.nii.gz")
            ] if out.is_dir() else []  # fmt: skip
            if masks:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    masks_at_kill = [p for p in out.glob("c??.nii.gz")]
    assert 1 <= len(masks_at_kill) < N_CASES, "not killed mid-cohort"
    # every file that exists after the kill is complete (atomic writes)
    for path in out.glob("*.nii.gz"):
        np.asarray(nib.load(path).dataobj)

    resumed = subprocess.run(
        _segment_command(model, inputs, out),
        capture_output=True, text=True, env=ENV, timeout=900,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(masks_at_kill)} already done" in resumed.stdout
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    got = _outputs(out)
    assert sorted(got) == sorted(expected)
    different = [name for name in expected if got[name] != expected[name]]
    assert not different, f"outputs differ from the uninterrupted run: {different}"
