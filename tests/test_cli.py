"""The ``pancreas`` command, run as a real console script in subprocesses."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pancreas.cli import build_parser
from pancreas.io import save_volume

pytest.importorskip("keras")

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _console_script() -> list[str]:
    """The installed ``pancreas`` entry point (not ``python -m``)."""
    exe = Path(sys.executable).with_name("pancreas")
    if not exe.exists():
        found = shutil.which("pancreas")
        if found is None:
            pytest.fail("the pancreas console script is not installed")
        exe = Path(found)
    return [str(exe)]


def run(*args, timeout=900):
    return subprocess.run(
        [*_console_script(), *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def test_parser_knows_every_command():
    parser = build_parser()
    args = parser.parse_args(
        ["segment", "m", "a.nii.gz", "dicom/", "-o", "out", "--proba", "--stats"]
    )
    assert args.inputs == ["a.nii.gz", "dicom/"] and args.proba and args.stats
    args = parser.parse_args(
        ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    )
    assert args.val_fraction == 0.1 and args.preset == "cpu"
    args = parser.parse_args(["evaluate", "m", "--msd", "Task07", "-o", "r"])
    assert args.msd == "Task07" and args.subset == "test"
    assert parser.parse_args(["info", "m", "--json"]).json
    # --quiet works before and after the command
    assert parser.parse_args(["--quiet", "info", "m"]).quiet
    assert parser.parse_args(["segment", "m", "x", "-o", "o", "--quiet"]).quiet
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--msd", "a", "--images", "b", "-o", "m"])


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = run(
        "--quiet", "demo", "-o", out, "--preset", "tiny", "--shape", 64, 64, 12,
        "--n-train", 2, "--n-val", 1, "--n-test", 2, "--epochs", 1,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Stage table on 2 held-out phantom cases" in proc.stdout
    assert "paper mean" in proc.stdout
    with (out / "stage_table.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["case", "Optimal", "S_RF"]
    assert rows[1][0] == "phantom_003"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] == 2 and 0.0 < summary["threshold"] < 1.0
    assert 0.0 <= summary["mean_dice"] <= 1.0
    assert (out / "model" / "manifest.json").is_file()
    assert (out / "report" / "index.md").is_file()
    assert list((out / "report").rglob("*.png"))


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory, tiny_cohort):
    """The tiny phantoms written as NIfTI files, as a user's cohort would be."""
    images, labels = tiny_cohort
    folder = tmp_path_factory.mktemp("cohort")
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        save_volume(img, folder / "ct" / f"case{i}_ct.nii.gz", dtype=np.int16)
        save_volume(lab, folder / "labels" / f"case{i}_seg.nii.gz", dtype=np.uint8)
    return folder


@pytest.mark.slow
def test_train_segment_evaluate_info(phantom_files, tmp_path):
    ct, labels = phantom_files / "ct", phantom_files / "labels"
    model = tmp_path / "model"
    split = tmp_path / "split.json"
    split.write_text(
        json.dumps(
            {
                "train": ["case0", "case1", "case2"],
                "val": ["case3"],
                "test": ["case3", "case4"],
            }
        )
    )
    proc = run(
        "--quiet", "train", "--images", f"{ct}/*_ct.nii.gz",
        "--labels", f"{labels}/*_seg.nii.gz", "--split", split,
        "--preset", "tiny", "--seed", 0, "-o", model,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model in" in proc.stdout
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["training"]["train_cases"] == ["case0", "case1", "case2"]
    assert manifest["training"]["n_cases"] == 3

    # a second train into the same folder is refused, the model left intact
    again = run("--quiet", "train", "--images", f"{ct}/*_ct.nii.gz",
                "--labels", f"{labels}/*_seg.nii.gz", "-o", model)  # fmt: skip
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert json.loads((model / "manifest.json").read_text()) == manifest

    info = run("info", model)
    assert info.returncode == 0, info.stderr
    assert f"threshold:  {manifest['threshold']}" in info.stdout
    assert "convnet.keras" in info.stdout

    # segment: two good cases and a broken file -> exit 1, the failure listed
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in (3, 4):
        shutil.copy(ct / f"case{i}_ct.nii.gz", inputs / f"case{i}.nii.gz")
    data = (ct / "case0_ct.nii.gz").read_bytes()
    (inputs / "broken.nii.gz").write_bytes(data[: len(data) // 3])
    out = tmp_path / "masks"
    seg = run("--quiet", "segment", model, inputs, "-o", out, "--proba", "--stats")
    assert seg.returncode == 1, seg.stderr[-3000:]
    assert "2 of 3 case(s) segmented" in seg.stdout
    assert "failed cases:" in seg.stderr and "broken" in seg.stderr
    for case in ("case3", "case4"):
        mask = nib.load(out / f"{case}.nii.gz")
        src = nib.load(inputs / f"{case}.nii.gz")
        np.testing.assert_allclose(mask.affine, src.affine, atol=1e-5)
        assert mask.shape == src.shape
        assert nib.load(out / f"{case}_proba.nii.gz").get_data_dtype() == np.float32
    stats = json.loads((out / "statistics.json").read_text())
    assert set(stats) == {"case3", "case4"} and stats["case4"]["volume_ml"] >= 0

    # rerun without the broken file and with an all-air scan: the done cases
    # are skipped, the air case gives an empty mask, reported but not failed
    (inputs / "broken.nii.gz").unlink()
    src = nib.load(inputs / "case3.nii.gz")
    air = np.full(src.shape, -1000, np.int16)
    nib.save(nib.Nifti1Image(air, src.affine), inputs / "air.nii.gz")
    # and a scan with pixels three times the training cohort's: noted
    coarse = src.affine @ np.diag([3.0, 3.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj), coarse), inputs / "big.nii.gz")
    rerun = run("--quiet", "segment", model, inputs, "-o", out, "--proba", "--stats")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "2 of 4 case(s) segmented, 2 already done" in rerun.stdout
    assert "air: empty segmentation" in rerun.stderr
    assert "1 case(s) with an empty mask: air" in rerun.stderr
    assert "big: voxel spacing" in rerun.stderr
    assert "1 case(s) with a voxel spacing outside the model's training range: big" in (
        rerun.stderr
    )
    assert "outside_training_range" in json.loads((out / "big.json").read_text())

    report = tmp_path / "report"
    ev = run(
        "--quiet", "evaluate", model, "--images", ct, "--labels", labels,
        "--split", split, "--subset", "test", "-o", report,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "Stage table on 2 cases" in ev.stdout
    assert (report / "index.md").is_file()
    with (report / "metrics.csv").open() as fh:
        cases = [row["case"] for row in csv.DictReader(fh)]
    assert cases == ["case3", "case4"]


@pytest.mark.slow
def test_tampered_model_is_refused(tiny_fitted, tmp_path, tiny_cohort):
    from pancreas.persistence import save_pipeline

    model = save_pipeline(tiny_fitted, tmp_path / "model")
    target = model / "pipeline.skops"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    ct = save_volume(tiny_cohort[0][4], tmp_path / "ct.nii.gz")
    proc = run("--quiet", "segment", model, ct, "-o", tmp_path / "out")
    assert proc.returncode == 2
    assert "pipeline.skops" in proc.stderr and "checksum" in proc.stderr
    assert not (tmp_path / "out" / "ct.nii.gz").exists()


def test_bad_dataset_gives_a_clear_error(tmp_path):
    proc = run(
        "--quiet", "train", "--images", f"{tmp_path}/*.nii.gz",
        "--labels", f"{tmp_path}/*_seg.nii.gz", "-o", tmp_path / "m",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no NIfTI image files" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_under_a_file_is_refused_before_any_work(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    # the model does not exist either: the output is checked first, so no
    # model is loaded and no case computed before the refusal
    for args in (
        ["segment", tmp_path / "no_model", tmp_path, "-o", notes / "out"],
        ["evaluate", tmp_path / "no_model", "--msd", tmp_path, "-o", notes],
        ["train", "--msd", tmp_path / "none", "-o", notes / "model"],
    ):
        proc = run("--quiet", *args)
        assert proc.returncode == 2, proc.stderr
        assert "notes.txt is a file, not a folder" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    proc = run("--quiet", "segment", tmp_path, tmp_path, "-o", "/proc/self/out")
    assert proc.returncode == 2 and "cannot be written" in proc.stderr
