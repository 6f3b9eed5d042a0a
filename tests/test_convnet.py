"""Tests for pancreas.convnet: the multi-scale superpixel ConvNet estimator.

Every network here is tiny (patch 32, filters (4, 4, 8, 8, 8), dense (16, 16))
so that the whole file runs in well under a minute on a CPU.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.record import make_record

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY = dict(
    patch_size=32,
    filters=(4, 4, 8, 8, 8),
    dense_units=(16, 16),
    scales=(1.0, 1.5, 2.0, 3.0),
    n_train_scales=2,
    n_deformations=2,
    epochs=3,
    batch_size=32,
    learning_rate=3e-3,
    min_box_mm=8.0,
    random_state=0,
)


def _case(seed, name, side=32, n_slices=4):
    """A grid of 8 x 8 square superpixels per slice; bright squares are pancreas."""
    rng = np.random.default_rng(seed)
    shape = (side, side, n_slices)
    ct = rng.normal(-20, 15, shape).astype(np.float32)
    sp = np.zeros(shape, np.int32)
    label = np.zeros(shape, np.uint8)
    n = 0
    for k in range(n_slices):
        for i in range(0, side, 8):
            for j in range(0, side, 8):
                n += 1
                sp[i : i + 8, j : j + 8, k] = n
                if rng.random() < 0.4:
                    ct[i + 2 : i + 6, j + 2 : j + 6, k] += 150
                    label[i : i + 8, j : j + 8, k] = 1
    rec = make_record(Volume(ct, np.diag([1.0, 1.0, 2.0, 1.0])), name)
    rec.superpixels = sp
    rec.candidates = np.arange(1, n + 1, dtype=np.int32)
    return rec, label


def _positives(rec, label):
    return np.array([label[rec.superpixels == c].mean() >= 0.5 for c in rec.candidates])


@pytest.fixture(scope="module")
def cases():
    pairs = [_case(i, f"case{i}") for i in range(3)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.fixture(scope="module")
def fitted(cases):
    pytest.importorskip("keras")
    from pancreas.convnet import SuperpixelConvNet

    X, y = cases
    return SuperpixelConvNet(**TINY).fit(X, y)


def test_import_does_not_import_keras():
    code = (
        "import sys, pancreas.convnet; "
        "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO_ROOT)


def test_sklearn_conventions():
    from pancreas.convnet import SuperpixelConvNet

    net = SuperpixelConvNet(epochs=5, scales=(1.0, 2.0))
    params = net.get_params()
    assert params["epochs"] == 5 and params["scales"] == (1.0, 2.0)
    twin = clone(net)
    assert twin.get_params() == params
    assert net.set_params(dropout=0.25) is net and net.dropout == 0.25
    with pytest.raises(NotFittedError):
        net.transform([])
    with pytest.raises(NotFittedError):
        net.save_model("x.keras")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"dropout": 1.0}, "dropout"),
        ({"positive_fraction": 1.5}, "positive_fraction"),
        ({"n_train_scales": 5}, "n_train_scales"),
        ({"scales": (1.0, -2.0)}, "scales"),
        ({"hu_window": (100, -100)}, "hu_window"),
        ({"filters": ()}, "filters"),
        ({"intensity_contrast": 2.0}, "intensity_contrast"),
        ({"intensity_shift": 500.0}, "intensity_shift=500.*window's width"),
        ({"intensity_noise": -1.0}, "intensity_noise"),
    ],
)
def test_invalid_params_rejected_at_fit(cases, params, match):
    from pancreas.convnet import SuperpixelConvNet

    net = SuperpixelConvNet(**{**TINY, **params})  # no error at construction
    with pytest.raises(ValueError, match=match):
        net.fit(*cases)


def test_records_without_candidates_are_rejected(cases):
    from pancreas.convnet import SuperpixelConvNet

    X, y = cases
    bare = make_record(np.zeros((8, 8, 2), np.float32), "bare")
    net = SuperpixelConvNet(**TINY)
    with pytest.raises(InvalidVolumeError, match="SuperpixelGenerator and RFCascade"):
        net.fit([bare], [np.zeros((8, 8, 2))])
    no_candidates = make_record(np.zeros((8, 8, 2), np.float32), "nocand")
    no_candidates.superpixels = np.ones((8, 8, 2), np.int32)
    with pytest.raises(InvalidVolumeError, match=r"nocand.*RFCascade"):
        net.fit([no_candidates], [np.zeros((8, 8, 2))])
    with pytest.raises(InvalidVolumeError, match="3 cases but y has 2"):
        net.fit(X, y[:2])


@pytest.mark.slow
def test_fit_returns_self_and_sets_attributes(cases, fitted):
    X, _ = cases
    assert fitted.model_ is not None
    n_candidates = sum(len(r.candidates) for r in X)
    assert fitted.validation_cases_ and len(fitted.validation_cases_) == 1
    n_val = len(
        next(r for r in X if r.case_id == fitted.validation_cases_[0]).candidates
    )
    assert fitted.n_train_patches_ == (n_candidates - n_val) * 2 * 2
    assert fitted.n_validation_patches_ == n_val * 2
    assert len(fitted.history_["loss"]) == 3 and "val_loss" in fitted.history_
    assert fitted.model_.layers[1].name == "tps"  # augmentation comes first


@pytest.mark.slow
def test_transform_shape_range_and_no_mutation(cases, fitted):
    X, _ = cases
    extras = [r.extras for r in X]
    out = fitted.transform(X)
    assert len(out) == len(X)
    for rec, new, ext in zip(X, out, extras, strict=True):
        assert new is not rec and rec.convnet_proba is None and rec.extras is ext
        assert new.convnet_proba.shape == (len(rec.candidates), 4)
        assert new.convnet_proba.dtype == np.float32
        assert np.all((new.convnet_proba >= 0) & (new.convnet_proba <= 1))
        assert new.volume is rec.volume and new.candidates is rec.candidates


@pytest.mark.slow
def test_learns_the_easy_task(cases, fitted):
    X, y = cases
    out = fitted.transform(X)
    for rec, label in zip(out, y, strict=True):
        pos = _positives(rec, label)
        proba = rec.convnet_proba.mean(axis=1)
        assert proba[pos].mean() > proba[~pos].mean() + 0.3


@pytest.mark.slow
def test_pickle_joblib_and_save_model_round_trip(cases, fitted, tmp_path):
    import keras

    X, _ = cases
    expected = fitted.transform(X[:1])[0].convnet_proba
    again = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(again.transform(X[:1])[0].convnet_proba, expected)
    joblib.dump(fitted, tmp_path / "net.joblib")
    loaded = joblib.load(tmp_path / "net.joblib")
    assert_array_equal(loaded.transform(X[:1])[0].convnet_proba, expected)
    assert loaded.history_ == fitted.history_
    fitted.save_model(tmp_path / "net.keras")
    model = keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    patches = np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32)
    assert_array_equal(
        keras.ops.convert_to_numpy(model.predict_on_batch(patches)),
        keras.ops.convert_to_numpy(fitted.model_.predict_on_batch(patches)),
    )
    fresh = clone(fitted)
    assert not hasattr(fresh, "model_")
    assert pickle.loads(pickle.dumps(fresh)).get_params() == fitted.get_params()


@pytest.mark.slow
def test_reproducible_for_fixed_random_state(cases, fitted):
    from pancreas.convnet import SuperpixelConvNet

    X, y = cases
    # two cropping threads: same batches, so the same result
    twin = SuperpixelConvNet(**TINY, n_jobs=2).fit(X, y)
    assert twin.history_ == fitted.history_
    for a, b in zip(twin.transform(X), fitted.transform(X), strict=True):
        assert_array_equal(a.convnet_proba, b.convnet_proba)


@pytest.mark.slow
def test_single_case_balanced_no_early_stopping():
    pytest.importorskip("keras")
    from pancreas.convnet import SuperpixelConvNet

    rec, label = _case(10, "solo", n_slices=2)
    rec.candidates = rec.candidates[::2].copy()  # a subset of the superpixels
    net = SuperpixelConvNet(
        **{**TINY, "epochs": 1, "n_deformations": 1},
        positive_fraction=0.5,
        early_stopping=False,
        validation_fraction=0.25,
    )
    out = net.fit_transform([rec], [label])
    assert net.validation_cases_ == []  # split within the single case
    assert net.n_validation_patches_ == 4 * 2 and net.n_train_patches_ == 12 * 2
    assert out[0].convnet_proba.shape == (16, 4)


def test_patch_dataset_streams_every_example_n_times(cases):
    pytest.importorskip("keras")
    from pancreas.convnet import _patch_dataset_class
    from pancreas.patches import superpixel_boxes

    X, _ = cases
    rec = X[0]
    boxes = superpixel_boxes(rec.superpixels, rec.candidates, rec.spacing)
    n = len(boxes)
    data = _patch_dataset_class()(
        [rec.volume.array],
        [rec.spacing],
        np.zeros(n, np.intp),
        boxes,
        np.arange(n, dtype=np.int32),  # the target identifies the row
        None,
        (1.0, 2.0),
        n_repeats=3,
        batch_size=50,
        seed=1,
        patch_size=16,
        hu_window=(-160, 240),
    )
    assert len(data) == -(-n * 2 * 3 // 50)
    first = [data[i] for i in range(len(data))]
    rows = np.concatenate([b[1] for b in first])
    assert_array_equal(np.bincount(rows, minlength=n), 6)
    x, y = data[0]
    assert x.shape == (50, 16, 16, 1) and x.dtype == np.float32
    assert_array_equal(data[0][0], x)  # a pure function of (epoch, index)
    data.on_epoch_end()
    assert not np.array_equal(data[0][1], y)  # a new order each epoch


@pytest.mark.slow
def test_fit_leaves_the_process_random_state_alone(cases):
    # A host application seeds its own generators; fit(random_state=int)
    # must leave them, and TensorFlow's op determinism, as they were.
    import random

    keras = pytest.importorskip("keras")
    from pancreas.convnet import SuperpixelConvNet

    random.seed(1234)
    np.random.seed(4321)
    py_state, np_state = random.getstate(), np.random.get_state()
    determinism = None
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config as tf_config

        determinism = tf_config.is_op_determinism_enabled()
        assert not determinism
    X, y = cases
    SuperpixelConvNet(**{**TINY, "epochs": 1}).fit(X, y)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and after[2:] == np_state[2:]
    assert_array_equal(after[1], np_state[1])
    if determinism is not None:
        assert not tf_config.is_op_determinism_enabled()
    # The host's next draws are the ones it seeded for.
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    SuperpixelConvNet(**{**TINY, "epochs": 1}).fit(X, y)
    assert random.random() == expected


@pytest.mark.slow
def test_intensity_augmentation_trains_and_survives_a_round_trip(cases, fitted, tmp_path):
    import keras

    from pancreas.convnet import SuperpixelConvNet

    assert "intensity" not in [layer.name for layer in fitted.model_.layers]
    X, y = cases
    net = SuperpixelConvNet(
        **TINY, intensity_shift=40.0, intensity_contrast=0.2, intensity_noise=8.0
    ).fit(X, y)
    layer = net.model_.get_layer("intensity")
    # HU in the default 400 HU window's units
    assert (layer.shift, layer.contrast, layer.noise) == (0.1, 0.2, 0.02)
    assert net.history_["loss"] != fitted.history_["loss"]
    proba = net.transform(X[:1])[0].convnet_proba
    positives = _positives(X[0], y[0])
    assert proba[positives].mean() > proba[~positives].mean() + 0.2
    net.save_model(tmp_path / "net.keras")
    model = keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    assert model.get_layer("intensity").get_config()["shift"] == 0.1
    assert_array_equal(pickle.loads(pickle.dumps(net)).transform(X[:1])[0].convnet_proba, proba)
