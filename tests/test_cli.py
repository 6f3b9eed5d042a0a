"""The ``pancreas`` command, run as a real subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("keras")


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pancreas",
            "--quiet",
            "demo",
            "-o",
            str(out),
            "--preset",
            "tiny",
            "--shape",
            "64",
            "64",
            "12",
            "--n-train",
            "2",
            "--n-val",
            "1",
            "--n-test",
            "1",
            "--epochs",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Stage table on 1 held-out phantom cases" in proc.stdout
    assert "paper mean" in proc.stdout
    with (out / "stage_table.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["case", "Optimal", "S_RF"]
    assert rows[1][0] == "phantom_003"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] == 2 and 0.0 < summary["threshold"] < 1.0
    assert 0.0 <= summary["mean_dice"] <= 1.0
