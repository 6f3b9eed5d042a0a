"""The benchmark scripts run end to end at tiny sizes (no timing assertions).

Each script runs in a subprocess, as a user runs it; the tests check the exit
status and that the JSON it writes has the expected keys and positive
numbers.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STAGES = ("read", "superpixels", "cascade", "convnet", "refine", "write", "total")


def run_process(
    name: str, *args: str, backend: str = "tensorflow"
) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<name>`` with ``args``, as a user runs it, whatever its exit."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=BENCHMARKS.parent,
        timeout=600,
        check=False,
    )


def run_script(name: str, *args: str, backend: str = "tensorflow") -> str:
    """Run ``benchmarks/<name>`` with ``args``; assert it exits 0; its stdout."""
    proc = run_process(name, *args, backend=backend)
    assert proc.returncode == 0, (
        f"{name} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_machine(machine: dict[str, Any], backend: str) -> None:
    for key in ("cpu_model", "os", "python", "numpy", "keras", "gpus"):
        assert key in machine
    assert positive(machine["cpu_count_logical"])
    assert positive(machine["ram_gb"])
    assert machine["keras_backend"] == backend


def check_segment_result(r: dict[str, Any]) -> None:
    assert set(STAGES) <= set(r["stages_s"])
    for stage in STAGES:
        assert positive(r["stages_s"][stage]), stage
    for key in (
        "segment_cohort_s",
        "n_superpixels",
        "n_candidates",
        "n_patches",
        "patches_per_s",
        "peak_rss_stages_mb",
        "peak_rss_segment_cohort_mb",
    ):
        assert positive(r[key]), key
    assert r["n_patches"] == r["n_candidates"] * r["n_scales"]
    assert r["shape"] == [r["size"], r["size"], r["slices"]]


def check_convnet_result(r: dict[str, Any]) -> None:
    for part in ("inference", "training", "cropping_1_thread"):
        assert positive(r[part]["patches_per_s"]), part
        assert r[part]["steps"] >= 2
    assert r["training"]["augmented"] is True
    assert positive(r["paper"]["hours_at_measured_rate"])
    assert r["paper"]["paper_hours"] == 55.0
    assert positive(r["n_parameters"])


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``bench_segment.py --small``, training its model and saving it for reuse."""
    tmp = tmp_path_factory.mktemp("bench_segment")
    out, model = tmp / "segment.json", tmp / "tiny_model"
    stdout = run_script(
        "bench_segment.py", "--small", "--json", str(out), "--save-model", str(model)
    )
    return {"doc": json.loads(out.read_text()), "model": model, "stdout": stdout}


def test_bench_segment(segment_run: dict[str, Any]) -> None:
    doc = segment_run["doc"]
    assert doc["benchmark"] == "bench_segment"
    check_machine(doc["machine"], "tensorflow")
    assert [r["slices"] for r in doc["results"]] == doc["args"]["slices"]
    for r in doc["results"]:
        check_segment_result(r)
    assert set(doc["scaling"]) >= {"total", "segment_cohort"}
    assert positive(doc["peak_rss_mb"])
    assert positive(doc["ru_maxrss_mb"])
    assert doc["model"]["convnet"]["patch_size"] == 16  # the tiny preset
    assert (segment_run["model"] / "manifest.json").is_file()
    assert "segment_cohort (end to end)" in segment_run["stdout"]


def test_bench_convnet(tmp_path: Path) -> None:
    out = tmp_path / "convnet.json"
    stdout = run_script("bench_convnet.py", "--small", "--json", str(out))
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_convnet"
    check_machine(doc["machine"], "tensorflow")
    assert [r["preset"] for r in doc["results"]] == ["tiny"]
    check_convnet_result(doc["results"][0])
    assert "855,500 patches x 100 epochs" in stdout


def check_gpu_check(doc: dict[str, Any], backend: str) -> None:
    assert doc["benchmark"] == "gpu_check"
    assert doc["small"] is True
    assert doc["device"]["keras_backend"] == backend
    check_machine(doc["machine"], backend)
    check_convnet_result(doc["convnet"])
    check_segment_result(doc["segment"]["results"][0])
    assert [t["key"] for t in doc["targets"]] == [
        "segment_s",
        "inference_patches_per_s",
        "training_patches_per_s",
    ]
    for t in doc["targets"]:
        assert positive(t["measured"])
        assert isinstance(t["met"], bool)


def run_gpu_check(tmp_path: Path, model: Path, backend: str) -> dict[str, Any]:
    """``gpu_check.py --small`` on ``backend`` with ``model``; checked JSON."""
    out = tmp_path / "gpu.json"
    run_script(
        "gpu_check.py", "--small", "--model", str(model), "--json", str(out),
        backend=backend,
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_gpu_check(doc, backend)
    return doc


def test_gpu_check_jax(tmp_path: Path, segment_run: dict[str, Any]) -> None:
    pytest.importorskip("jax")
    doc = run_gpu_check(tmp_path, segment_run["model"], "jax")
    tf = doc["tensorflow"]
    assert tf["blocked"] is True
    assert tf["imported"] is False
    assert tf["attempts_from_pancreas_or_benchmarks"] == []


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is not None,
    reason="jax is installed: test_gpu_check_jax runs the script instead",
)
def test_gpu_check_tensorflow_fallback(
    tmp_path: Path, segment_run: dict[str, Any]
) -> None:
    # no JAX here: the script must at least complete on the TensorFlow backend
    doc = run_gpu_check(tmp_path, segment_run["model"], "tensorflow")
    assert doc["tensorflow"]["blocked"] is False


def test_bench_cluster_small(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "cluster.json"
    stdout = run_script(
        "bench_cluster.py", "--small", "--workers", "2", "--json", str(out)
    )
    assert "identical to the local run" in stdout
    doc = json.loads(out.read_text())
    check_machine(doc["machine"], "tensorflow")
    assert [r["run"] for r in doc["runs"]] == [
        "local (this process)",
        "LocalCluster, 2 worker(s)",
    ]
    assert all(positive(r["cases_per_min"]) for r in doc["runs"])


def test_precision_check_script_small(tmp_path: Path) -> None:
    out = tmp_path / "precision.json"
    stdout = run_script(
        "precision_check.py", "--small", "--seeds", "1", "--json", str(out)
    )
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "precision_check"
    assert doc["path_check_max_abs_diff"] < 1e-6
    assert len(doc["tf32_cases"]) == 2
    for case in doc["tf32_cases"]:
        assert case["candidates"] > 0
        assert 0 <= case["convnet_max_abs_diff"] < 0.05
        assert 0 <= case["dice_f32_vs_tf32"] <= 1
        assert 0 <= case["mask_voxels_differing"] <= case["mask_voxels"] * 2 + 1
    assert "TF32 vs float32" in stdout
    (spread,) = doc["seed_spread"]
    assert spread["convnet_random_state"] == 1
    assert len(spread["dice_truth"]) == len(spread["dice_vs_first"]) == 2
    assert all(0 <= d <= 1 for d in spread["dice_truth"] + spread["dice_vs_first"])
    assert "ConvNet random_state 1" in stdout


def test_bench_working_grid_small(tmp_path: Path, tiny_fitted) -> None:
    from pancreas.persistence import save_pipeline

    save_pipeline(tiny_fitted, tmp_path / "model")
    out = tmp_path / "wg.json"
    run_script(
        "bench_working_grid.py", "--small", "--models", str(tmp_path / "model"),
        "--json", str(out),
    )
    data = json.loads(out.read_text())
    scan, work = data["optimal"][0], data["optimal"][1]
    assert scan["working_spacing"] is None and positive(work["working_spacing"])
    for row in data["optimal"]:
        assert 0.0 <= row["optimal_dice"] <= 1.0 and positive(row["n_superpixels"])
    # the model on its own grid (the scan's) and on the working grid
    assert [r["run_on"] for r in data["models"]] == [None, work["working_spacing"]]
    for row in data["models"]:
        assert 0.0 <= row["means"]["G(P(x)) Ns=4"] <= 1.0


def test_diagnose_real_ct(tmp_path: Path, tiny_fitted, shared_data: Path) -> None:
    from pancreas.persistence import save_pipeline

    save_pipeline(tiny_fitted, tmp_path / "model")
    out = tmp_path / "diag.json"
    stdout = run_script(
        "diagnose_real_ct.py", "--model", str(tmp_path / "model"),
        "--data", str(shared_data / "totalseg_case1"),
        "--dicom", str(shared_data / "totalseg_case2_dicom"), "--json", str(out),
    )
    case1 = json.loads(out.read_text())["case1"]
    assert 0.0 <= case1["dice"] <= 1.0 and 0.0 <= case1["s_rf_recall"] <= 1.0
    # TotalSegmentator's pancreas: 695 voxels of 27 mm^3
    assert case1["truth"]["volume_ml"] == round(695 * 27 / 1000, 1)
    assert case1["truth"]["slices"] > 0
    ranking = case1["ranking"]
    assert 0 <= ranking["n_pancreas_candidates"] <= ranking["n_candidates"]
    for name in ("auc_p_rf", "auc_convnet_ns1", "auc_convnet_ns4"):
        assert ranking[name] is None or 0.0 <= ranking[name] <= 1.0
    assert 0.0 <= ranking["p_rf_all"] <= 1.0
    assert set(case1["organ_hu_quartiles"]) == {
        "pancreas", "spleen", "liver", "kidney right", "kidney left"
    }
    for q25, q50, q75 in case1["organ_hu_quartiles"].values():
        assert -1000 < q25 <= q50 <= q75 < 1000
    assert "case2 (totalseg_case2_dicom" in stdout
    assert json.loads(out.read_text())["case2"]["volume_ml"] >= 0


def test_candidate_ranking_scores_each_stage(request: pytest.FixtureRequest) -> None:
    from pancreas.record import make_record

    sys.path.insert(0, str(BENCHMARKS))
    request.addfinalizer(lambda: sys.path.remove(str(BENCHMARKS)))
    diagnose = importlib.import_module("diagnose_real_ct")
    rec = make_record(np.zeros((2, 2, 1), np.float32))
    rec.superpixels = np.array([[[1], [2]], [[3], [4]]], np.int32)
    rec.candidates = np.array([1, 2, 3, 4], np.int32)
    rec.sp_proba = np.array([0.0, 0.9, 0.1, 0.8, 0.2], np.float32)
    # the ConvNet ranks the pancreas last at Ns=1; over scales its means are
    # 0.5, 0.5, 0.2, 0.5: of the four pancreas / other pairs two tie (half
    # each) and two are wrong, an AUC of 0.25
    rec.convnet_proba = np.array(
        [[0.1, 0.9], [0.9, 0.1], [0.2, 0.2], [0.8, 0.2]], np.float32
    )
    label = np.array([[[True], [False]], [[True], [False]]])
    got = diagnose.candidate_ranking(rec, label)
    assert got["n_candidates"] == 4 and got["n_pancreas_candidates"] == 2
    assert got["p_rf_on_pancreas"] == pytest.approx(0.85)
    assert got["p_rf_all"] == pytest.approx(0.5)
    assert got["auc_p_rf"] == 1.0
    assert got["auc_convnet_ns1"] == 0.0
    assert got["auc_convnet_ns4"] == 0.25
    # one class only: no AUC
    assert diagnose.candidate_ranking(rec, np.zeros_like(label))["auc_p_rf"] is None


def test_bench_invariance_small(tmp_path: Path, tiny_fitted) -> None:
    from pancreas.persistence import save_pipeline

    save_pipeline(tiny_fitted, tmp_path / "model")
    out = tmp_path / "inv.json"
    stdout = run_script(
        "bench_invariance.py", "--model", str(tmp_path / "model"), "--cases", "1",
        "--shape", "48", "48", "16", "--spacings", "6", "6", "8", "7", "7", "10",
        "--factors", "phase=non-contrast", "pancreas_variant=fatty", "--json", str(out),
    )
    data = json.loads(out.read_text())
    assert data["factors"] == {"phase": "non-contrast", "pancreas_variant": "fatty"}
    assert data["spacings"] == [[6.0, 6.0, 8.0], [7.0, 7.0, 10.0]]
    (fov,), (spacing,) = data["fov"], data["spacing"]
    assert fov["cropped_shape"][2] <= fov["full_shape"][2] == 16
    assert 0.0 <= fov["dice_on_overlap"] <= 1.0
    assert len(spacing["dice_vs_truth"]) == 2 and list(spacing["pairwise_dice"]) == ["0-1"]
    assert "spacing {" in stdout


def test_evaluate_held_out_scores_saved_models_on_the_same_cases(
    tmp_path: Path, tiny_fitted
) -> None:
    from pancreas.persistence import save_pipeline
    from pancreas.phantom import phantom_factors

    save_pipeline(tiny_fitted, tmp_path / "model")
    out = tmp_path / "paired.json"
    stdout = run_script(
        "evaluate_held_out.py", "--models", str(tmp_path / "model"),
        "--n-fit", "3", "--n-test", "2", "--shape", "40", "40", "12",
        "--variation", "realistic", "--seed", "2", "--json", str(out),
    )  # fmt: skip
    data = json.loads(out.read_text())
    # the held-out cases are cases 3 and 4 of the seed's realistic cohort
    drawn = phantom_factors(5, variation="realistic", random_state=2)[3:]
    assert data["kinds"] == [
        {k: d[k] for k in ("field_of_view", "phase", "pancreas_variant")} for d in drawn
    ]
    (model,) = data["models"].values()
    assert [row["case"] for row in model["rows"]] == ["phantom_003", "phantom_004"]
    for row in model["rows"]:
        last = [k for k in row if k.startswith("G(P(x)) Ns=")][-1]  # all scales
        assert 0.0 <= row[last] <= 1.0
    assert f"{model['rows'][0]['case']}" in stdout and "G(P(x))" in stdout


def test_bench_invariance_rejects_a_bad_factor(tmp_path: Path) -> None:
    proc = run_process(
        "bench_invariance.py", "--model", str(tmp_path), "--factors", "phase"
    )
    assert proc.returncode != 0
    assert "--factors: expected NAME=JSON, got 'phase'" in proc.stderr


def test_reproduce_table_small_with_training_factors(tmp_path: Path) -> None:
    """The stage table end to end (tiny preset), training on chosen kinds of scan."""
    stdout = run_script(
        "reproduce_table.py", "--preset", "tiny", "--shape", "40", "40", "12",
        "--n-train", "3", "--n-val", "1", "--n-test", "2", "--n-jobs", "1",
        "--variation", "realistic", "--seed", "2", "--out", str(tmp_path), "--tag", "t",
        "--train-factors", 'pancreas_variant={"fatty": 1, "fatty-atrophic": 1}',
        "phase=non-contrast",
    )  # fmt: skip
    data = json.loads((tmp_path / "reproduce_table_tiny_t.json").read_text())
    assert data["train_factors"] == {
        "pancreas_variant": {"fatty": 1, "fatty-atrophic": 1},
        "phase": "non-contrast",
    }
    fit = data["kinds"]["training and validation"]
    assert fit["phase"] == {"non-contrast": 4}
    assert set(fit["pancreas_variant"]) <= {"fatty", "fatty-atrophic"}
    assert sum(fit["pancreas_variant"].values()) == 4
    # the held-out cases are the realistic cohort's, as without the option
    from pancreas.phantom import phantom_factors

    drawn = phantom_factors(6, variation="realistic", random_state=2)[4:]
    assert data["kinds"]["held-out"]["phase"] == dict(Counter(c["phase"] for c in drawn))
    assert "training and validation cases: 4 non-contrast" in stdout
    assert set(data["summary"]) >= {"Optimal", "S_RF recall", "P(x) Ns=1", "G(P(x)) Ns=4"}
    manifest = json.loads((tmp_path / "model_tiny_t" / "manifest.json").read_text())
    assert manifest["training"]["train_factors"] == data["train_factors"]


def test_reproduce_table_rejects_bad_training_factors(tmp_path: Path) -> None:
    proc = run_process(
        "reproduce_table.py", "--preset", "tiny", "--shape", "40", "40", "12",
        "--out", str(tmp_path), "--train-factors", 'phase={"arterial": 1}',
    )  # fmt: skip
    assert proc.returncode != 0
    assert (
        "--train-factors: phase: a mapping of values to weights draws the factor "
        "per case, which needs variation='realistic'"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written
