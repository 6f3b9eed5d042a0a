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
    assert args.val_fraction == 0.1 and args.preset == "paper"
    assert args.device == "auto"
    args = parser.parse_args(["evaluate", "m", "--msd", "Task07", "-o", "r"])
    assert args.msd == "Task07" and args.subset == "test"
    assert parser.parse_args(["info", "m", "--json"]).json
    # --quiet works before and after the command
    assert parser.parse_args(["--quiet", "info", "m"]).quiet
    assert parser.parse_args(["segment", "m", "x", "-o", "o", "--quiet"]).quiet
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--msd", "a", "--images", "b", "-o", "m"])


def test_evaluate_surface_options(capsys):
    parser = build_parser()
    base = ["evaluate", "m", "--msd", "Task07", "-o", "r"]
    args = parser.parse_args(base)
    assert (args.nsd_tolerance, args.surface_method) == (1.0, "surfel")
    args = parser.parse_args(
        [*base, "--nsd-tolerance", "2.5", "--surface-method", "voxel"]
    )
    assert (args.nsd_tolerance, args.surface_method) == (2.5, "voxel")
    for bad in ("-1", "nan", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, f"--nsd-tolerance={bad}"])
        err = capsys.readouterr().err
        assert "--nsd-tolerance" in err and "non-negative number of mm" in err
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--surface-method", "mesh"])
    assert "--surface-method" in capsys.readouterr().err


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
    # not quiet: Keras's epoch lines and the log go to stderr, the result
    # alone to stdout
    proc = run(
        "train", "--images", f"{ct}/*_ct.nii.gz",
        "--labels", f"{labels}/*_seg.nii.gz", "--split", split,
        "--preset", "tiny", "--seed", 0, "-o", model,
        "--set", "convnet__dense_units=[8,8]",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("trained on 3 cases") and "model in" in proc.stdout
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    assert "Epoch 1/" in proc.stderr and "INFO training on 3 cases" in proc.stderr
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["training"]["train_cases"] == ["case0", "case1", "case2"]
    assert manifest["training"]["n_cases"] == 3
    # --set reached the trained network and is kept in the manifest
    assert manifest["training"]["set"] == {"convnet__dense_units": [8, 8]}
    assert manifest["params"]["convnet"]["dense_units"] == [8, 8]
    from pancreas.persistence import load_pipeline

    net = load_pipeline(model).named_steps["convnet"].model_
    assert [layer.units for layer in net.layers if hasattr(layer, "units")][:2] == [8, 8]

    # a second train into the same folder is refused, the model left intact
    again = run("--quiet", "train", "--images", f"{ct}/*_ct.nii.gz",
                "--labels", f"{labels}/*_seg.nii.gz", "-o", model)  # fmt: skip
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert json.loads((model / "manifest.json").read_text()) == manifest

    info = run("info", model)
    assert info.returncode == 0, info.stderr
    assert f"threshold:  {manifest['threshold']}" in info.stdout
    assert "grid:       each scan's own; SLIC skimage" in info.stdout
    assert "set:        convnet__dense_units=[8, 8]" in info.stdout
    assert "convnet.keras" in info.stdout

    # segment: two good cases and a broken file -> exit 1, the failure listed
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in (3, 4):
        shutil.copy(ct / f"case{i}_ct.nii.gz", inputs / f"case{i}.nii.gz")
    data = (ct / "case0_ct.nii.gz").read_bytes()
    (inputs / "broken.nii.gz").write_bytes(data[: len(data) // 3])
    out = tmp_path / "masks"
    seg = run("segment", model, inputs, "-o", out, "--proba", "--stats", "--preview")
    assert seg.returncode == 1, seg.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*_preview.png")) == [
        "case3_preview.png",
        "case4_preview.png",
    ]
    assert seg.stdout.startswith("2 of 3 case(s) segmented")
    assert len(seg.stdout.splitlines()) == 1, seg.stdout
    # the progress bar, written to a pipe (a log file), is plain lines
    assert "segment:" in seg.stderr and "3/3" in seg.stderr
    assert "\r" not in seg.stderr and "\x1b" not in seg.stderr
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
    # --quiet: no TensorFlow (absl) or INFO lines, only the warnings below
    for noise in ("I0000", "absl", "oneDNN", "cuda", " INFO "):
        assert noise not in rerun.stderr, rerun.stderr
    assert "2 of 4 case(s) segmented, 2 already done" in rerun.stdout
    assert "air: empty segmentation" in rerun.stderr
    # the air case is listed (the coarse "big" copy may be empty too)
    empty = [ln for ln in rerun.stderr.splitlines() if "with an empty mask:" in ln]
    assert len(empty) == 1
    assert "air" in [name.strip() for name in empty[0].split(":", 1)[1].split(",")]
    assert "big: voxel spacing" in rerun.stderr
    assert "1 case(s) with a voxel spacing outside the model's training range: big" in (
        rerun.stderr
    )
    assert "outside_training_range" in json.loads((out / "big.json").read_text())

    report = tmp_path / "report"
    ev = run(
        "--quiet", "evaluate", model, "--images", ct, "--labels", labels,
        "--split", split, "--subset", "test", "-o", report, "--nsd-tolerance", 2.5,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "Stage table on 2 cases" in ev.stdout
    assert "surface metrics: surfel definition, surface Dice at 2.5 mm" in ev.stdout
    data = json.loads((report / "metrics.json").read_text())
    assert data["surface_method"] == "surfel"
    assert data["surface_dice_tolerance_mm"] == 2.5
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


def test_version_and_help_import_nothing_heavy():
    from pancreas import __version__

    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"pancreas {__version__}"
    code = (
        "import sys\n"
        "from pancreas.cli import main\n"
        "for argv in (['--help'], ['segment', '--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('keras', 'tensorflow', 'jax', 'torch', 'sklearn', 'scipy',\n"
        "         'numpy', 'nibabel', 'pydicom', 'matplotlib', 'skimage')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert "usage: pancreas segment" in proc.stdout


@pytest.mark.slow
def test_info_json_into_a_closed_pipe_exits_quietly(tiny_fitted, tmp_path):
    from pancreas.persistence import save_pipeline

    model = save_pipeline(tiny_fitted, tmp_path / "model")
    # like `pancreas info --json MODEL | head -0`: the reader is gone before
    # the command writes (the command takes a second to start)
    with subprocess.Popen(
        [*_console_script(), "info", "--json", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    ) as proc:
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, stderr
    assert stderr == "", stderr


@pytest.mark.slow
def test_evaluate_leaves_out_the_models_training_cases(
    tiny_fitted, phantom_files, tmp_path
):
    from pancreas.persistence import save_pipeline

    # tiny_fitted was trained on the first three phantoms, validated on the 4th
    model = save_pipeline(
        tiny_fitted,
        tmp_path / "model",
        training={
            "train_cases": ["case0", "case1", "case2"],
            "val_cases": ["case3"],
        },
    )
    ct, labels = phantom_files / "ct", phantom_files / "labels"
    report = tmp_path / "report"
    proc = run("evaluate", model, "--images", ct, "--labels", labels, "-o", report)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leaving out 4 case(s) the model was trained or validated on" in (
        proc.stderr
    )
    assert "Stage table on 1 cases" in proc.stdout
    assert "1 unseen, 0 training and 0 validation case(s)" in proc.stdout
    with (report / "metrics.csv").open() as fh:
        assert [row["case"] for row in csv.DictReader(fh)] == ["case4"]
    assert (report / "scored_cases.csv").read_text() == "case,role\ncase4,unseen\n"
    assert "## Cases scored" in (report / "index.md").read_text()

    both = tmp_path / "both"
    proc = run(
        "--quiet", "evaluate", model, "--images", ct, "--labels", labels,
        "--include-training-cases", "-o", both,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 unseen, 3 training and 1 validation case(s)" in proc.stdout
    roles = dict(
        line.split(",") for line in (both / "scored_cases.csv").read_text().split()
    )
    assert roles == {
        "case": "role",
        "case0": "train",
        "case1": "train",
        "case2": "train",
        "case3": "val",
        "case4": "unseen",
    }
    index = (both / "index.md").read_text()
    assert "Training and validation cases are included" in index
    assert "| case0 | train |" in index

    only_seen = run(
        "--quiet", "evaluate", model, "--images", f"{ct}/case[0-2]_ct.nii.gz",
        "--labels", f"{labels}/case[0-2]_seg.nii.gz", "-o", tmp_path / "r3",
    )  # fmt: skip
    assert only_seen.returncode == 2
    assert "all 3 cases" in only_seen.stderr and "--include-training-cases" in (
        only_seen.stderr
    )


def test_default_preset_is_the_same_in_python_and_on_the_command_line():
    import inspect

    from pancreas.pipeline import make_roth2015_pipeline

    python_default = (
        inspect.signature(make_roth2015_pipeline).parameters["preset"].default
    )
    parser = build_parser()
    train = parser.parse_args(["train", "--msd", "d", "-o", "m"])
    assert train.preset == python_default == "paper"
    # the demo is a recipe with its own, stated preset
    assert parser.parse_args(["demo"]).preset == "cpu"


def test_device_option(tmp_path):
    parser = build_parser()
    assert parser.parse_args(["--device", "cpu", "info", "m"]).device == "cpu"
    args = parser.parse_args(["segment", "m", "x", "-o", "o", "--device", "gpu"])
    assert args.device == "gpu"
    # --device cpu hides the GPUs from the backend before Keras is imported
    code = (
        "import os, sys\n"
        "from pancreas.cli import main\n"
        "main(['--device', 'cpu', 'info', sys.argv[1]])\n"
        "print(os.environ.get('CUDA_VISIBLE_DEVICES'), file=sys.stderr)\n"
    )
    env = {k: v for k, v in ENV.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr.strip().splitlines()[-1] == "-1", proc.stderr
    # --device gpu refuses to start where the backend sees no GPU
    gpu_env = {**ENV, "CUDA_VISIBLE_DEVICES": "-1"}
    proc = subprocess.run(
        [*_console_script(), "--device", "gpu", "info", tmp_path],
        capture_output=True, text=True, env=gpu_env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--device gpu: the Keras backend (tensorflow) sees no GPU" in proc.stderr


def test_make_demo_installs_only_the_package(tmp_path):
    """`make demo` installs `.`, `make test` and `make docs` the test extra."""
    root = Path(__file__).resolve().parents[1]
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(root / name, tmp_path / name)  # a fresh clone: no .venv

    def dry_run(target):
        proc = subprocess.run(
            ["make", "-n", target], cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return [line for line in proc.stdout.splitlines() if "pip install" in line]

    demo = dry_run("demo")
    assert any(line.endswith("pip install -q -e .") for line in demo), demo
    assert not any("[" in line for line in demo), demo
    for target in ("test", "docs"):
        assert any('-e ".[test]"' in line for line in dry_run(target)), target
    assert "-m pytest" in subprocess.run(
        ["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True
    ).stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], -1),  # segment: all cores by default
        (["--n-jobs", "1"], 1),
        (["--cases-in-parallel", "2"], None),  # the model's own (None)
        (["--scheduler", "tcp://127.0.0.1:1"], None),
    ],
)
def test_segment_uses_every_core_unless_cases_run_in_parallel(tmp_path, argv, expected):
    from pancreas.cli import _configure_pipeline
    from pancreas.pipeline import make_roth2015_pipeline

    args = build_parser().parse_args(
        ["segment", str(tmp_path), "x.nii.gz", "-o", str(tmp_path / "out"), *argv]
    )
    pipe = _configure_pipeline(make_roth2015_pipeline(preset="tiny"), args, all_cores=True)
    jobs = {k: v for k, v in pipe.get_params().items() if k.endswith("__n_jobs")}
    assert jobs and set(jobs.values()) == {expected}
    train = build_parser().parse_args(
        ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    )
    kept = _configure_pipeline(make_roth2015_pipeline(preset="tiny"), train)
    assert {v for k, v in kept.get_params().items() if k.endswith("__n_jobs")} == {None}


def test_train_slic_option_picks_the_superpixel_backend(tmp_path):
    from pancreas.cli import _new_pipeline

    pytest.importorskip("cv2")
    base = ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    for argv, expected in (([], "skimage"), (["--slic", "opencv"], "opencv")):
        args = build_parser().parse_args([*base, "--preset", "tiny", *argv])
        assert _new_pipeline(args).get_params()["superpixels__backend"] == expected
    with pytest.raises(SystemExit):  # segment applies the model's own backend
        build_parser().parse_args(["segment", "m", "x.nii.gz", "-o", "o", "--slic", "opencv"])


def test_train_working_spacing_option_sets_the_working_grid():
    from pancreas.cli import _new_pipeline

    base = ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    for argv, expected in (([], None), (["--working-spacing", "1.5"], 1.5)):
        args = build_parser().parse_args([*base, "--preset", "tiny", *argv])
        got = _new_pipeline(args).get_params()["superpixels__working_spacing"]
        assert got == expected
    with pytest.raises(SystemExit):  # the model keeps the grid it was trained on
        build_parser().parse_args(
            ["segment", "m", "x.nii.gz", "-o", "o", "--working-spacing", "1.5"]
        )
    # --fast: the working grid, an explicit spacing winning
    for argv, expected in (
        (["--fast"], (1.5, "skimage")),
        (["--fast", "--working-spacing", "2"], (2.0, "skimage")),
        (["--fast", "--slic", "opencv"], (1.5, "opencv")),
    ):
        args = build_parser().parse_args([*base, "--preset", "tiny", *argv])
        params = _new_pipeline(args).get_params()
        got = (params["superpixels__working_spacing"], params["superpixels__backend"])
        assert got == expected


def test_train_set_option_sets_any_parameter_after_the_preset():
    from pancreas.cli import _new_pipeline

    base = ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    args = build_parser().parse_args(
        [*base, "--preset", "tiny", "--epochs", "3",
         "--set", "convnet__learning_rate=3e-4",
         "--set", "convnet__filters=[8, 8, 16, 16, 16]",
         "--set", "convnet__epochs=5",  # --set is applied after --epochs
         "--set", "superpixels__backend=opencv",  # not JSON: kept as a string
         "--set", "cascade__n_estimators=7", "--set", "cascade__n_estimators=9"]
    )  # fmt: skip
    params = _new_pipeline(args).get_params()
    assert params["convnet__learning_rate"] == 3e-4
    assert params["convnet__filters"] == [8, 8, 16, 16, 16]
    assert params["convnet__epochs"] == 5
    assert params["superpixels__backend"] == "opencv"
    assert params["cascade__n_estimators"] == 9  # the last one wins
    # untouched parameters keep the preset's values
    assert params["convnet__patch_size"] == 16 and params["convnet__batch_size"] == 64


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("convnet__nope=1", "--set: no parameter 'convnet__nope' in the pipeline"),
        ("learning_rate=1e-3", "--set: no parameter 'learning_rate'"),
        ("convnet__learning_rate=-1", "--set: "),
        ("convnet__filters=[8, 0]", "--set: SuperpixelConvNet (step 'convnet'): filters"),
    ],
)
def test_train_set_option_refuses_bad_parameters(assignment, message):
    from pancreas.cli import _new_pipeline

    base = ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    args = build_parser().parse_args([*base, "--preset", "tiny", "--set", assignment])
    with pytest.raises(ValueError, match="SuperpixelConvNet|no parameter") as err:
        _new_pipeline(args)
    assert str(err.value).startswith(message)
    if assignment.startswith("convnet__nope"):  # the step's own names are listed
        assert "step 'convnet' has batch_size, dense_units, dropout" in str(err.value)
    elif assignment.startswith("learning_rate"):
        assert "STEP one of superpixels, cascade, convnet, refiner" in str(err.value)


def test_train_set_option_needs_name_equals_value(capsys):
    base = ["train", "--images", "*.nii.gz", "--labels", "l/*.nii.gz", "-o", "m"]
    for bad in ("convnet__learning_rate", "=3"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*base, "--set", bad])
        assert "expected STEP__PARAMETER=VALUE" in capsys.readouterr().err


def test_train_bad_set_is_reported_before_any_data_is_read(tmp_path):
    model = tmp_path / "model"
    proc = run(
        "--quiet", "train", "--images", tmp_path / "nowhere" / "*.nii.gz",
        "--labels", tmp_path / "nowhere" / "*_seg.nii.gz", "-o", model,
        "--preset", "tiny", "--set", "convnet__dropout=1",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pancreas train: error: --set: " in proc.stderr, proc.stderr
    assert "dropout" in proc.stderr and "nowhere" not in proc.stderr
    assert not model.exists()
