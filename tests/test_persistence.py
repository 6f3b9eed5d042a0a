"""Model directories: save, load, integrity and refusal of crafted files."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import pickle
import shutil
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.testing import assert_array_equal
import pytest
from sklearn.exceptions import NotFittedError

import pancreas
from pancreas.exceptions import (
    InvalidVolumeError,
    ModelFileError,
    ModelVersionError,
    UntrustedModelError,
)
from pancreas.io import Volume
from pancreas.persistence import (
    TRUSTED_TYPES,
    cohort_summary,
    load_pipeline,
    read_manifest,
    save_pipeline,
)

MODEL_FILES = {"manifest.json", "pipeline.skops", "convnet.keras"}


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def saved(tiny_fitted, tiny_cohort, tmp_path_factory):
    """``tiny_fitted`` saved once; tests copy it before changing anything."""
    images, _ = tiny_cohort
    path = tmp_path_factory.mktemp("saved") / "model"
    training = {**cohort_summary(images[:4]), "note": ("phantoms", 4)}
    return save_pipeline(tiny_fitted, path, training=training)


@pytest.fixture
def model(saved, tmp_path):
    """A private copy of the saved model directory."""
    return Path(shutil.copytree(saved, tmp_path / "model"))


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, manifest: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest))


def _replace_file(path: Path, name: str, data: bytes, *, listed: bool = True) -> None:
    """Write ``data`` as ``name`` and fix the manifest so checksums pass."""
    (path / name).write_bytes(data)
    if listed:
        manifest = _manifest(path)
        manifest["files"][name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        _write_manifest(path, manifest)


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture
def payload_module(monkeypatch):
    """An importable module holding a class whose loading leaves a marker.

    Any loader that rebuilds a ``Payload`` calls ``__setstate__``, which
    creates the file named in its state: the payload's side effect.
    """
    module = types.ModuleType("pancreas_test_payload")

    class Payload:
        def __init__(self, marker: str) -> None:
            self.marker = marker

        def __setstate__(self, state: dict) -> None:
            Path(state["marker"]).touch()
            self.__dict__.update(state)

    Payload.__module__ = module.__name__
    module.Payload = Payload
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


class _PickleBomb:
    """Unpickling this opens (creates) the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------- round trip
@pytest.mark.slow
def test_round_trip_predicts_bitwise_identically(tiny_fitted, tiny_cohort, saved):
    pytest.importorskip("keras")
    images, _ = tiny_cohort
    loaded = load_pipeline(saved)
    assert type(loaded) is type(tiny_fitted)
    assert [n for n, _ in loaded.steps] == [n for n, _ in tiny_fitted.steps]
    net = loaded.named_steps["convnet"]
    assert net.model_ is not tiny_fitted.named_steps["convnet"].model_
    expected = tiny_fitted.predict_proba([images[4]])[0]
    got = loaded.predict_proba([images[4]])[0]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert expected.max() > 0  # a real prediction, not an empty map
    refiner = loaded.named_steps["refiner"]
    assert refiner.threshold_ == tiny_fitted.named_steps["refiner"].threshold_


@pytest.mark.slow
def test_save_does_not_touch_the_fitted_pipeline(tiny_fitted, saved):
    pytest.importorskip("keras")
    net = tiny_fitted.named_steps["convnet"]
    assert hasattr(net, "model_")
    assert "_model_keras_bytes" not in vars(net)


@pytest.mark.slow
def test_directory_holds_exactly_the_model_files(saved):
    assert {p.name for p in saved.iterdir()} == MODEL_FILES
    # No temporary sibling is left behind.
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


@pytest.mark.slow
def test_manifest_records_checksums_thresholds_and_params(
    tiny_fitted, tiny_cohort, saved
):
    manifest = read_manifest(saved)
    assert manifest == _manifest(saved)
    assert manifest["format"] == "pancreas-model"
    assert manifest["format_version"] == 1
    assert manifest["pancreas_version"] == pancreas.__version__
    versions = manifest["versions"]
    for key in ("python", "numpy", "scipy", "scikit-learn", "scikit-image"):
        assert isinstance(versions[key], str)
    for key in ("keras", "skops", "nibabel"):
        assert isinstance(versions[key], str)
    assert versions["keras_backend"] == os.environ["KERAS_BACKEND"]
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == datetime.timedelta(0)

    assert manifest["steps"] == [
        {"name": "superpixels", "class": "pancreas.superpixels.SuperpixelGenerator"},
        {"name": "cascade", "class": "pancreas.cascade.RFCascade"},
        {"name": "convnet", "class": "pancreas.convnet.SuperpixelConvNet"},
        {"name": "refiner", "class": "pancreas.refine.GaussianRefiner"},
    ]
    for name, est in tiny_fitted.steps:
        params = est.get_params(deep=False)
        assert set(manifest["params"][name]) == set(params)
    convnet = manifest["params"]["convnet"]
    assert convnet["filters"] == [4, 4, 8, 8, 8]
    assert convnet["patch_size"] == 16
    assert convnet["positive_fraction"] is None
    assert manifest["params"]["refiner"]["sigma"] == 1.0
    assert manifest["params"]["cascade"]["n_estimators"] == 10

    refiner = tiny_fitted.named_steps["refiner"]
    assert manifest["threshold"] == refiner.threshold_
    assert manifest["stage_thresholds"] == {
        k: float(v) for k, v in refiner.stage_thresholds_.items()
    }
    images, _ = tiny_cohort
    # The caller's keys are added to (and replace) what fit recorded.
    assert manifest["training"] == {
        **tiny_fitted.training_summary_,
        **cohort_summary(images[:4]),
        "note": ["phantoms", 4],
    }
    assert manifest["training"]["n_cases"] == 4

    assert set(manifest["files"]) == MODEL_FILES - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = (saved / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# ---------------------------------------------------------------- integrity
@pytest.mark.slow
@pytest.mark.parametrize("name", ["pipeline.skops", "convnet.keras"])
def test_missing_file_is_named(model, name):
    (model / name).unlink()
    with pytest.raises(ModelFileError, match=rf"{name} is missing"):
        load_pipeline(model)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pipeline.skops", "convnet.keras"])
def test_flipped_byte_is_a_checksum_mismatch(model, name):
    data = bytearray((model / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (model / name).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{name}: checksum mismatch") as info:
        load_pipeline(model)
    assert "modified or corrupted" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("saved_by", ["1.0.0", "2.3", "0.2.0", "0.0.9", "banana"])
def test_model_from_another_version_is_refused(model, saved_by):
    manifest = _manifest(model)
    manifest["pancreas_version"] = saved_by
    _write_manifest(model, manifest)
    with pytest.raises(ModelVersionError) as info:
        load_pipeline(model)
    msg = str(info.value)
    assert f"saved by pancreas {saved_by}" in msg
    assert f"pancreas {pancreas.__version__} is installed" in msg
    assert "Retrain" in msg and f"install pancreas {saved_by}" in msg


@pytest.mark.slow
def test_model_from_a_compatible_patch_release_loads(model):
    pytest.importorskip("keras")
    major, minor = pancreas.__version__.split(".")[:2]
    manifest = _manifest(model)
    manifest["pancreas_version"] = f"{major}.{minor}.99"
    _write_manifest(model, manifest)
    assert load_pipeline(model).named_steps["convnet"].model_ is not None


@pytest.mark.slow
def test_newer_model_format_is_refused(model):
    manifest = _manifest(model)
    manifest["format_version"] = 2
    _write_manifest(model, manifest)
    with pytest.raises(ModelVersionError, match="format version 2"):
        load_pipeline(model)


def test_non_model_directories_are_refused(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelFileError, match="does not exist"):
        load_pipeline(missing)
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelFileError, match=r"manifest\.json is missing"):
        load_pipeline(tmp_path)
    with pytest.raises(ModelFileError, match="not a directory"):
        load_pipeline(tmp_path / "notes.txt")
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(ModelFileError, match=r"manifest\.json: .*not valid JSON"):
        load_pipeline(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other-tool"}))
    with pytest.raises(ModelFileError, match="not a pancreas model manifest"):
        read_manifest(tmp_path)


@pytest.mark.slow
def test_manifest_file_names_cannot_leave_the_directory(model, tmp_path):
    outside = tmp_path / "outside.skops"
    outside.write_bytes((model / "pipeline.skops").read_bytes())
    manifest = _manifest(model)
    manifest["files"]["../outside.skops"] = manifest["files"]["pipeline.skops"]
    _write_manifest(model, manifest)
    with pytest.raises(ModelFileError, match="invalid file name"):
        load_pipeline(model)


# ---------------------------------------------------------------- saving
@pytest.mark.slow
def test_existing_target_is_refused_without_overwrite(tiny_fitted, model):
    before = _snapshot(model)
    with pytest.raises(FileExistsError, match=r"already exists.*overwrite=True"):
        save_pipeline(tiny_fitted, model)
    assert _snapshot(model) == before


@pytest.mark.slow
def test_overwrite_replaces_a_model(tiny_fitted, model):
    (model / "stale.txt").write_text("from the old model")
    out = save_pipeline(tiny_fitted, model, training={"n_cases": 1}, overwrite=True)
    assert out == model
    assert {p.name for p in model.iterdir()} == MODEL_FILES
    assert read_manifest(model)["training"] == {
        **tiny_fitted.training_summary_,
        "n_cases": 1,
    }
    assert [p.name for p in model.parent.iterdir()] == ["model"]


@pytest.mark.slow
def test_overwrite_never_deletes_a_non_model_directory(tiny_fitted, tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a pancreas model directory"):
        save_pipeline(tiny_fitted, folder, overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"


@pytest.mark.slow
def test_interrupted_save_leaves_nothing_behind(tiny_fitted, model, monkeypatch):
    import skops.io

    def crash(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(skops.io, "dumps", crash)
    fresh = model.parent / "fresh"
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_pipeline(tiny_fitted, fresh)
    assert not fresh.exists()
    # With overwrite, the old model survives a crash untouched.
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_pipeline(tiny_fitted, model, overwrite=True)
    assert _snapshot(model) == before
    assert sorted(p.name for p in model.parent.iterdir()) == ["model"]


def test_unfitted_or_foreign_objects_are_not_saved(tmp_path):
    from pancreas.pipeline import make_roth2015_pipeline

    with pytest.raises(NotFittedError):
        save_pipeline(make_roth2015_pipeline(preset="tiny"), tmp_path / "m")
    with pytest.raises(TypeError, match="Pipeline"):
        save_pipeline({"not": "a pipeline"}, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_save_refuses_what_load_would_refuse(tiny_fitted, tmp_path):
    import joblib

    pipe = copy.copy(tiny_fitted)
    pipe.memory = joblib.Memory(location=None, verbose=0)
    with pytest.raises(UntrustedModelError, match=r"joblib\.memory\.Memory"):
        save_pipeline(pipe, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- crafted files
@pytest.mark.slow
def test_untrusted_object_in_pipeline_skops_is_refused(model, tmp_path, payload_module):
    import skops.io as sio

    marker = tmp_path / "payload-ran"
    pipe = sio.load(model / "pipeline.skops", trusted=list(TRUSTED_TYPES))
    pipe.named_steps["refiner"].extra_ = payload_module.Payload(str(marker))
    data = sio.dumps(pipe)
    # The payload is live: a loader that trusted it would run it.
    sio.loads(data, trusted=[*TRUSTED_TYPES, "pancreas_test_payload.Payload"])
    assert marker.exists()
    marker.unlink()

    _replace_file(model, "pipeline.skops", data)
    with pytest.raises(UntrustedModelError) as info:
        load_pipeline(model)
    assert "pipeline.skops" in str(info.value)
    assert "pancreas_test_payload.Payload" in str(info.value)
    assert isinstance(info.value, ModelFileError)
    assert not marker.exists()


@pytest.mark.slow
def test_function_reference_in_pipeline_skops_is_refused(model):
    import skops.io as sio

    pipe = sio.load(model / "pipeline.skops", trusted=list(TRUSTED_TYPES))
    pipe.named_steps["refiner"].hook_ = os.system
    _replace_file(model, "pipeline.skops", sio.dumps(pipe))
    with pytest.raises(UntrustedModelError, match=r"pipeline\.skops.*system"):
        load_pipeline(model)


@pytest.mark.slow
def test_keras_lambda_layer_is_refused_before_keras_reads_it(model, tmp_path):
    keras = pytest.importorskip("keras")

    marker = tmp_path / "lambda-ran"
    # A real lambda (named functions are saved by name, lambdas as bytecode).
    code = f"lambda x: (open({str(marker)!r}, 'a').close(), x)[1]"
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Lambda(eval(code))(inputs)
    evil = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(evil)
    marker.unlink()  # building the model ran the lambda once
    # The payload is live: loading without safe mode runs it.
    keras.saving.load_model(evil, safe_mode=False)
    assert marker.exists()
    marker.unlink()

    _replace_file(model, "convnet.keras", evil.read_bytes())
    # Refused by pancreas's allow-list before Keras (and its safe mode) reads it.
    with pytest.raises(
        UntrustedModelError, match=r"convnet\.keras: .*keras\.layers\.Lambda"
    ):
        load_pipeline(model)
    assert not marker.exists()


@pytest.mark.slow
def test_planted_pickle_files_are_never_read(model, tmp_path):
    pytest.importorskip("keras")
    marker = tmp_path / "unpickled"
    bomb = pickle.dumps(_PickleBomb(marker))
    pickle.loads(bomb).close()  # the payload is live
    assert marker.exists()
    marker.unlink()

    for name in ("pipeline.pkl", "model.joblib", "convnet.pickle"):
        (model / name).write_bytes(bomb)
    # Even a pickle listed in the manifest, with a valid checksum, is not read
    # as anything but bytes to hash.
    _replace_file(model, "extra.pkl", bomb)
    pipe = load_pipeline(model)
    assert pipe.named_steps["convnet"].model_ is not None
    assert not marker.exists()


# ---------------------------------------------------------------- cohort
def test_cohort_summary_of_volumes_and_arrays(tiny_cohort):
    images, _ = tiny_cohort
    summary = cohort_summary(images)
    spacings = np.array([img.spacing for img in images])
    shapes = np.array([img.shape for img in images])
    assert summary == {
        "n_cases": 5,
        "spacing_min": spacings.min(axis=0).tolist(),
        "spacing_max": spacings.max(axis=0).tolist(),
        "shape_min": shapes.min(axis=0).tolist(),
        "shape_max": shapes.max(axis=0).tolist(),
    }
    json.dumps(summary)
    plain = cohort_summary([np.zeros((3, 4, 5)), np.zeros((5, 4, 3))])
    assert plain["spacing_min"] == plain["spacing_max"] == [1.0, 1.0, 1.0]
    assert plain["shape_min"] == [3, 4, 3] and plain["shape_max"] == [5, 4, 5]


def test_cohort_summary_reads_only_nifti_headers_in_canonical_order(tmp_path):
    from pancreas.record import make_record

    # Array axes (S, R, A) with 3 x 0.7 x 0.8 mm voxels: canonical order is
    # (R, A, S), so shape (5, 6, 4) and spacing (0.7, 0.8, 3.0).
    affine = np.array(
        [[0, 0.7, 0, 0], [0, 0, 0.8, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]], float
    )
    data = np.zeros((4, 5, 6), np.int16)
    full = tmp_path / "full.nii"
    nib.save(nib.Nifti1Image(data, affine), full)
    record = make_record(full)
    # A header whose voxels were cut off: readable only without the data.
    header_only = tmp_path / "header_only.nii"
    header_only.write_bytes(full.read_bytes()[:352])
    gz = tmp_path / "image.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.6, 2.5, 1.0])), gz)

    summary = cohort_summary([full, str(header_only)])
    assert summary["shape_min"] == summary["shape_max"] == [5, 6, 4]
    assert summary["shape_min"] == list(record.shape)
    assert summary["spacing_min"] == summary["spacing_max"] == [0.7, 0.8, 3.0]
    assert summary["spacing_min"] == list(record.spacing)

    both = cohort_summary([header_only, gz, nib.load(gz), Volume(data, affine)])
    assert both["n_cases"] == 4
    assert both["spacing_min"] == [0.5, 0.6, 2.5]
    assert both["spacing_max"] == [0.7, 0.8, 3.0]
    assert both["shape_min"] == [4, 5, 4] and both["shape_max"] == [5, 6, 6]


def test_cohort_summary_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one case"):
        cohort_summary([])
    with pytest.raises(InvalidVolumeError, match="sequence"):
        cohort_summary(Volume(np.zeros((2, 2, 2))))
    with pytest.raises(InvalidVolumeError, match="3D"):
        cohort_summary([np.zeros((2, 2))])
    four_d = tmp_path / "4d.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.int16), np.eye(4)), four_d)
    with pytest.raises(InvalidVolumeError, match=r"4d\.nii.*3D"):
        cohort_summary([four_d])


# ---------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_model_folder_permissions_follow_the_umask(tmp_path, umask):
    import stat

    from pancreas.pipeline import make_pipeline
    from pancreas.superpixels import SuperpixelGenerator

    pipe = make_pipeline(SuperpixelGenerator()).fit(None)
    old = os.umask(umask)
    try:
        model = save_pipeline(pipe, tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(model.stat().st_mode) == 0o777 & ~umask
    for file in model.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask, file.name


# ---------------------------------------------------------------- Keras allow-list
def _rewrite_keras(model: Path, edit, extra: dict[str, bytes] | None = None) -> None:
    """Rewrite the model's convnet.keras with ``edit`` applied to config.json."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO((model / "convnet.keras").read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    _replace_file(model, "convnet.keras", out.getvalue())


def _layers(config: dict) -> list[dict]:
    return config["config"]["layers"]


@pytest.mark.slow
def test_keras_config_naming_a_function_outside_the_allow_list_is_refused(model):
    pytest.importorskip("keras")

    def edit(config):
        dense = next(la for la in _layers(config) if la["class_name"] == "Dense")
        dense["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "exec",
            "registered_name": "function",
        }

    _rewrite_keras(model, edit)
    with pytest.raises(
        UntrustedModelError, match=r"convnet\.keras: .*names builtins\.function"
    ):
        load_pipeline(model)


@pytest.mark.slow
def test_keras_config_naming_a_layer_outside_the_allow_list_is_refused(
    model, payload_module, tmp_path
):
    pytest.importorskip("keras")

    def edit(config):
        layer = next(la for la in _layers(config) if la["class_name"] == "Dropout")
        layer["module"] = payload_module.__name__
        layer["class_name"] = "Payload"
        layer["config"] = {"marker": str(tmp_path / "ran")}

    _rewrite_keras(model, edit)
    with pytest.raises(UntrustedModelError, match=r"pancreas_test_payload\.Payload"):
        load_pipeline(model)
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
def test_keras_archive_with_extra_members_is_refused(model):
    pytest.importorskip("keras")
    _rewrite_keras(model, lambda config: None, extra={"assets/run.py": b"1"})
    with pytest.raises(UntrustedModelError, match=r"unexpected member.*assets/run"):
        load_pipeline(model)


@pytest.mark.slow
def test_the_saved_network_is_within_the_allow_list(model):
    pytest.importorskip("keras")
    # The allow-list holds what a trained ConvNet needs: an unedited model
    # still loads (the round trip above checks its predictions).
    _rewrite_keras(model, lambda config: None)
    assert load_pipeline(model).named_steps["convnet"].model_ is not None


@pytest.mark.slow
def test_intensity_augmented_network_round_trips(tiny_cohort, tmp_path):
    pytest.importorskip("keras")
    from pancreas.pipeline import make_roth2015_pipeline

    images, labels = tiny_cohort
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0).set_params(
        convnet__intensity_shift=40.0, convnet__intensity_noise=8.0
    )
    pipe.fit(images[:3], labels[:3], X_val=images[3:4], y_val=labels[3:4])
    loaded = load_pipeline(save_pipeline(pipe, tmp_path / "model"))
    layer = loaded.named_steps["convnet"].model_.get_layer("intensity")
    assert (layer.shift, layer.noise) == (0.1, 0.02)
    assert_array_equal(loaded.predict_proba(images[4:])[0], pipe.predict_proba(images[4:])[0])


def test_safe_library_floors_match_pyproject():
    import tomllib

    from pancreas.persistence import SAFE_LIBRARY_VERSIONS

    root = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    for dist, floor in SAFE_LIBRARY_VERSIONS.items():
        wanted = ".".join(str(v) for v in floor).removesuffix(".0")
        assert f"{dist}>={wanted}" in deps
    assert SAFE_LIBRARY_VERSIONS["keras"] >= (3, 11, 0)  # CVE-2025-9906


@pytest.mark.slow
def test_loading_refuses_a_keras_with_known_holes(model, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version

    def version(dist):
        return "3.10.0" if dist == "keras" else real(dist)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ModelVersionError, match=r"keras 3\.10\.0 is installed.*3\.14"):
        load_pipeline(model)


# ---------------------------------------------------------------- training summary
@pytest.mark.slow
def test_save_from_python_stores_what_fit_saw(tiny_fitted, tiny_cohort, tmp_path):
    images, _ = tiny_cohort
    # fitted on images[:3], validated on images[3]
    assert tiny_fitted.training_summary_ == {
        **cohort_summary(images[:3]),
        "n_validation_cases": 1,
    }
    model = save_pipeline(tiny_fitted, tmp_path / "model")  # no training=
    training = read_manifest(model)["training"]
    assert training["n_cases"] == 3
    assert training["spacing_min"] == cohort_summary(images[:3])["spacing_min"]
    assert training["spacing_max"] == cohort_summary(images[:3])["spacing_max"]
    loaded = load_pipeline(model)
    assert loaded.training_summary_ == tiny_fitted.training_summary_


@pytest.mark.slow
def test_predict_warns_about_spacing_outside_the_training_range(
    tiny_fitted, tiny_cohort, tmp_path
):
    import warnings

    from pancreas.exceptions import SpacingWarning

    images, _ = tiny_cohort
    case = images[4]
    # the same voxels, slices three times further apart than any training case
    stretched = case.affine.copy()
    stretched[:3, 2] *= 3.0 * max(tiny_fitted.training_summary_["spacing_max"])
    far = Volume(case.array, stretched, "far-case")
    with pytest.warns(SpacingWarning, match=r"far-case: voxel spacing .* outside"):
        tiny_fitted.predict([far])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpacingWarning)
        tiny_fitted.predict_proba([case])
