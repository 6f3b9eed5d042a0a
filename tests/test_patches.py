"""Tests for pancreas.patches: square, scaled, HU-windowed superpixel crops."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.patches import (
    crop_superpixels,
    sample_patches,
    scale_boxes,
    superpixel_boxes,
)
from pancreas.record import make_record


def _square_record(spacing=(1.0, 1.0, 2.0), rows=(10, 16), cols=(20, 26), k=1):
    """Dark volume with one bright rectangular superpixel (label 1) on slice k."""
    ct = np.full((40, 48, 3), -1000.0, np.float32)
    ct[rows[0] : rows[1], cols[0] : cols[1], k] = 240.0
    rec = make_record(Volume(ct, np.diag([*spacing, 1.0])), "square")
    sp = np.zeros(ct.shape, np.int32)
    sp[rows[0] : rows[1], cols[0] : cols[1], k] = 1
    sp[30:34, 30:34, 0] = 2
    rec.superpixels = sp
    rec.candidates = np.array([1, 2], np.int32)
    return rec


def _centroid(patch):
    w = patch[..., 0]
    r, c = np.indices(w.shape)
    return (w * r).sum() / w.sum(), (w * c).sum() / w.sum()


def test_crop_shape_dtype_range():
    rec = _square_record()
    out = crop_superpixels(rec, scales=(1.0, 2.0, 3.0), patch_size=24)
    assert out.shape == (6, 24, 24, 1)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_bright_square_is_centred_and_fills_scale_one():
    rec = _square_record()
    crops = crop_superpixels(rec, [1], scales=(1.0, 2.0), patch_size=32, min_box_mm=1)
    one, two = crops
    assert one.mean() > 0.85  # the box is the square itself
    centre = (32 - 1) / 2
    assert_allclose(_centroid(two), (centre, centre), atol=0.05)
    # a bright square of half the side: a quarter of the patch
    assert_allclose(two.mean(), 0.25, atol=0.05)


def test_larger_scale_shows_more_context():
    rec = _square_record()
    crops = crop_superpixels(
        rec, [1], scales=(1.0, 1.5, 2.0, 3.0), patch_size=32, min_box_mm=1
    )
    bright = crops.reshape(4, -1).mean(axis=1)
    assert np.all(np.diff(bright) < 0)
    assert_allclose(bright[3], 1 / 9, atol=0.03)


def test_min_box_mm_is_respected():
    rec = _square_record(rows=(10, 12), cols=(20, 22))  # a 2 mm superpixel
    boxes = superpixel_boxes(rec.superpixels, [1], rec.spacing, min_box_mm=12.0)
    assert_allclose(boxes[0], [1, 10.5, 20.5, 12.0])
    crop = crop_superpixels(rec, [1], patch_size=48, min_box_mm=12.0)[0]
    assert_allclose(crop.mean(), (2 / 12) ** 2, atol=0.01)
    assert_allclose(_centroid(crop), (23.5, 23.5), atol=0.05)


def test_box_is_square_in_mm_with_anisotropic_spacing():
    # 8 rows of 0.5 mm by 4 columns of 1 mm: a 4 mm square
    rec = _square_record(spacing=(0.5, 1.0, 2.5), rows=(10, 18), cols=(20, 24))
    boxes = superpixel_boxes(rec.superpixels, [1], rec.spacing, min_box_mm=0)
    assert_allclose(boxes[0, 3], 4.0)
    crop = crop_superpixels(rec, [1], patch_size=16, min_box_mm=0)[0]
    assert crop.mean() > 0.85


def test_label_major_order_and_candidates_default():
    rec = _square_record()
    both = crop_superpixels(rec, scales=(1.0, 2.0), patch_size=16)
    first = crop_superpixels(rec, [1], scales=(1.0, 2.0), patch_size=16)
    second = crop_superpixels(rec, [2], scales=(2.0,), patch_size=16)
    assert_allclose(both[:2], first)
    assert_allclose(both[3], second[0])


def test_equals_map_coordinates_on_windowed_volume():
    rng = np.random.default_rng(0)
    vol = rng.normal(0, 300, (30, 36, 5)).astype(np.float32)
    spacing = (0.8, 0.7, 2.0)
    n, size = 25, 12
    boxes = np.stack(
        [
            rng.integers(0, 5, n),
            rng.uniform(-5, 35, n),  # some boxes leave the volume
            rng.uniform(-5, 41, n),
            rng.uniform(2, 60, n),
        ],
        axis=1,
    )
    out = sample_patches(vol, spacing, boxes, patch_size=size, hu_window=(-100, 300))
    windowed = np.clip((vol + 100) / 400, 0, 1)
    u = (np.arange(size) + 0.5) / size - 0.5
    coords = np.empty((3, n, size, size))
    coords[0] = (boxes[:, 1:2] + u * boxes[:, 3:4] / spacing[0])[:, :, None]
    coords[1] = (boxes[:, 2:3] + u * boxes[:, 3:4] / spacing[1])[:, None, :]
    coords[2] = boxes[:, 0, None, None]
    expected = ndimage.map_coordinates(windowed, coords, order=1, mode="nearest")
    assert_allclose(out[..., 0], expected, atol=1e-5)


def test_scale_boxes():
    boxes = np.array([[0, 1, 2, 10.0], [1, 3, 4, 20.0]])
    out = scale_boxes(boxes, (1.0, 2.0))
    assert_allclose(out[:, 3], [10, 20, 20, 40])
    assert_allclose(out[:, :3], np.repeat(boxes[:, :3], 2, axis=0))


def test_empty_label_list():
    rec = _square_record()
    assert crop_superpixels(rec, [], patch_size=8).shape == (0, 8, 8, 1)


def test_errors():
    rec = _square_record()
    with pytest.raises(InvalidVolumeError, match="superpixel 5 is not"):
        superpixel_boxes(rec.superpixels, [5], rec.spacing)
    sp = rec.superpixels.copy()
    sp[0, 0, :] = 3
    with pytest.raises(InvalidVolumeError, match="spans axial slices"):
        superpixel_boxes(sp, [3], rec.spacing)
    bare = make_record(np.zeros((8, 8, 2)), "bare")
    with pytest.raises(InvalidVolumeError, match="SuperpixelGenerator"):
        crop_superpixels(bare, [1])
    rec.candidates = None
    with pytest.raises(InvalidVolumeError, match="RFCascade"):
        crop_superpixels(rec)
