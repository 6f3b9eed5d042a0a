"""Tests for pancreas.augment: the thin-plate-spline warp and its Keras layer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

keras = pytest.importorskip("keras")

from pancreas.augment import (  # noqa: E402
    RandomIntensity,
    RandomThinPlateSpline,
    tps_control_points,
    tps_warp,
    tps_weights,
)

pytestmark = pytest.mark.gpu


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _pixels(height, width):
    rr, cc = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def test_control_points_span_the_patch():
    pts = tps_control_points(4, 32, 24)
    assert pts.shape == (16, 2)
    assert_array_equal(pts[0], [0, 0])
    assert_array_equal(pts[-1], [31, 23])
    assert_array_equal(pts[:4, 0], 0)  # row-major
    with pytest.raises(ValueError, match="too small"):
        tps_control_points(5, 4, 32)
    with pytest.raises(ValueError, match=">= 2"):
        tps_control_points(1, 32, 32)


def test_weights_interpolate_control_displacements_exactly():
    height, width = 32, 24
    weights = tps_weights(4, height, width)
    assert weights.shape == (height * width, 16)
    assert weights.dtype == np.float32
    pts = tps_control_points(4, height, width)
    idx = pts[:, 0] * width + pts[:, 1]
    disp = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    for i in range(16):
        assert_array_equal(weights[idx[i]] @ disp, disp[i])
    assert_array_equal((weights @ disp)[idx], disp)


def test_weights_reproduce_affine_fields():
    # a thin-plate spline through an affine displacement is that affine map
    height, width = 20, 28
    pts = tps_control_points(3, height, width)
    mat = np.array([[0.05, -0.1], [0.02, 0.08]])
    shift = np.array([1.5, -0.5])
    field = tps_weights(3, height, width) @ (pts @ mat.T + shift)
    assert_allclose(field, _pixels(height, width) @ mat.T + shift, atol=1e-4)


def test_weights_are_smooth_and_bounded():
    weights = tps_weights(4, 32, 32).astype(np.float64)
    assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)  # constants reproduced
    assert np.abs(weights).max() < 1.5


def test_zero_displacement_is_identity():
    img = np.random.default_rng(1).random((3, 20, 16, 2)).astype(np.float32)
    out = _np(tps_warp(img, np.zeros((3, 16, 2), np.float32), 4))
    assert out.dtype == np.float32
    assert_array_equal(out, img)


def test_control_points_land_on_their_targets():
    height, width = 32, 24
    rr, cc = np.indices((height, width))
    a, b, c = 0.3, 0.7, 1.0
    img = (a * rr + b * cc + c).astype(np.float32)[None, :, :, None]
    pts = tps_control_points(4, height, width)
    disp = np.random.default_rng(2).uniform(-2, 2, (1, 16, 2)).astype(np.float32)
    out = _np(tps_warp(img, disp, 4))[0, :, :, 0]
    target = np.clip(pts + disp[0], 0, [height - 1, width - 1])  # edge clamping
    expected = a * target[:, 0] + b * target[:, 1] + c
    assert_allclose(out[pts[:, 0], pts[:, 1]], expected, atol=1e-4)


def test_translation_shifts_the_image():
    img = np.random.default_rng(3).random((1, 16, 16, 1)).astype(np.float32)
    disp = np.tile(np.array([2.0, -1.0], np.float32), (1, 9, 1))
    out = _np(tps_warp(img, disp, 3))
    # out[r, c] = img[r + 2, c - 1] away from the clamped edges
    assert_allclose(out[0, :-2, 1:, 0], img[0, 2:, :-1, 0], atol=1e-5)


def test_layer_is_identity_at_inference():
    layer = RandomThinPlateSpline(grid_size=4, magnitude=0.1, seed=0)
    img = np.random.default_rng(4).random((2, 16, 16, 1)).astype(np.float32)
    assert_array_equal(_np(layer(img)), img)
    assert_array_equal(_np(layer(img, training=False)), img)


def test_layer_is_random_but_seeded_in_training():
    img = np.random.default_rng(5).random((4, 24, 24, 1)).astype(np.float32)
    layer = RandomThinPlateSpline(grid_size=4, magnitude=0.05, seed=7)
    first = _np(layer(img, training=True))
    second = _np(layer(img, training=True))
    assert first.shape == img.shape and first.dtype == np.float32
    assert not np.allclose(first, img)
    assert not np.allclose(first, second)
    assert not np.allclose(first[0], first[1])  # per-example deformations
    again = RandomThinPlateSpline(grid_size=4, magnitude=0.05, seed=7)
    assert_array_equal(_np(again(img, training=True)), first)


def test_layer_displacements_follow_magnitude():
    rr = np.indices((32, 32))[0].astype(np.float32)
    img = rr[None, :, :, None].repeat(8, axis=0)  # value = row index
    for distribution in ("uniform", "normal"):
        layer = RandomThinPlateSpline(
            grid_size=4, magnitude=0.05, distribution=distribution, seed=1
        )
        out = _np(layer(img, training=True))
        pts = tps_control_points(4, 32, 32)
        interior = (pts[:, 0] > 0) & (pts[:, 0] < 31)
        d_row = out[:, pts[interior, 0], pts[interior, 1], 0] - pts[interior, 0]
        assert 0 < np.abs(d_row).max() <= (1.6 if distribution == "uniform" else 8)
    still = RandomThinPlateSpline(magnitude=0.0, seed=1)
    assert_array_equal(_np(still(img, training=True)), img)


def test_layer_config_round_trip():
    layer = RandomThinPlateSpline(
        grid_size=3, magnitude=0.02, distribution="normal", seed=4, name="tps"
    )
    config = layer.get_config()
    assert {"grid_size": 3, "magnitude": 0.02, "distribution": "normal"}.items() <= (
        config.items()
    )
    clone = RandomThinPlateSpline.from_config(config)
    assert clone.seed == 4 and clone.name == "tps"
    registered = keras.saving.get_registered_object("pancreas>RandomThinPlateSpline")
    assert registered is RandomThinPlateSpline


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        RandomThinPlateSpline(distribution="gamma")
    with pytest.raises(ValueError, match="magnitude"):
        RandomThinPlateSpline(magnitude=-1)
    with pytest.raises(ValueError, match="static"):
        RandomThinPlateSpline().build((None, None, None, 1))


def test_inside_a_model_only_while_training():
    inputs = keras.Input((16, 16, 1))
    outputs = RandomThinPlateSpline(grid_size=3, magnitude=0.1, seed=0)(inputs)
    model = keras.Model(inputs, outputs)
    img = np.random.default_rng(6).random((2, 16, 16, 1)).astype(np.float32)
    assert_array_equal(_np(model.predict_on_batch(img)), img)
    assert not np.allclose(_np(model(img, training=True)), img)


def test_backend_agnostic_source():
    """Only keras and keras.ops: no direct TensorFlow, JAX or PyTorch calls."""
    src = Path(__file__).resolve().parents[1] / "pancreas" / "augment.py"
    code = src.read_text()
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", code, re.M)
    assert not re.search(r"\b(tf|jnp|jax|torch)\.", code)


# --------------------------------------------------------------------------- #
# RandomIntensity
# --------------------------------------------------------------------------- #
def _mid_grey(n: int = 16) -> np.ndarray:
    """Patches of values in [0.3, 0.7]: away from the window's clipping."""
    return np.random.default_rng(9).uniform(0.3, 0.7, (n, 12, 12, 1)).astype(np.float32)


def test_intensity_is_identity_at_inference_and_without_changes():
    img = _mid_grey()
    layer = RandomIntensity(shift=0.1, contrast=0.2, noise=0.05, seed=0)
    assert_array_equal(_np(layer(img)), img)
    assert_array_equal(_np(RandomIntensity(seed=0)(img, training=True)), img)


def test_intensity_shift_is_one_offset_per_patch_within_bounds():
    img = _mid_grey()
    out = _np(RandomIntensity(shift=0.1, seed=1)(img, training=True))
    offset = (out - img).reshape(len(img), -1)
    assert_allclose(offset, offset[:, :1].repeat(offset.shape[1], axis=1), atol=1e-6)
    assert np.abs(offset).max() <= 0.1 + 1e-6
    assert np.unique(offset[:, 0].round(5)).size == len(img)  # per patch


def test_intensity_contrast_scales_about_the_window_centre():
    img = _mid_grey()
    out = _np(RandomIntensity(contrast=0.2, seed=2)(img, training=True))
    factor = ((out - 0.5) / (img - 0.5)).reshape(len(img), -1)
    assert_allclose(factor, factor[:, :1].repeat(factor.shape[1], axis=1), rtol=1e-3)
    assert factor.min() >= 1 / 1.2 - 1e-4 and factor.max() <= 1.2 + 1e-4
    assert factor[:, 0].std() > 0.01


def test_intensity_noise_varies_per_pixel_up_to_its_bound():
    img = np.full((64, 32, 32, 1), 0.5, np.float32)
    out = _np(RandomIntensity(noise=0.04, seed=3)(img, training=True))
    sd = (out - img).reshape(len(img), -1).std(axis=1)
    assert sd.max() <= 0.04 * 1.15 and sd.max() > 0.02 and sd.min() < 0.02


def test_intensity_stays_in_the_window_and_is_seeded():
    img = np.random.default_rng(4).random((4, 16, 16, 1)).astype(np.float32)
    first = _np(RandomIntensity(0.3, 0.5, 0.1, seed=5)(img, training=True))
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert (first == 0).any() and (first == 1).any()  # clipped, as the window does
    again = _np(RandomIntensity(0.3, 0.5, 0.1, seed=5)(img, training=True))
    assert_array_equal(again, first)


def test_intensity_config_round_trip_and_bad_arguments():
    layer = RandomIntensity(shift=0.1, contrast=0.2, noise=0.03, seed=4, name="intensity")
    clone = RandomIntensity.from_config(layer.get_config())
    assert (clone.shift, clone.contrast, clone.noise, clone.seed) == (0.1, 0.2, 0.03, 4)
    assert keras.saving.get_registered_object("pancreas>RandomIntensity") is RandomIntensity
    for name in ("shift", "contrast", "noise"):
        with pytest.raises(ValueError, match=name):
            RandomIntensity(**{name: -0.1})
        with pytest.raises(ValueError, match=name):
            RandomIntensity(**{name: 1.5})
