"""Tests for pancreas.superpixels: SLIC superpixels inside the body."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pancreas.io import Volume
from pancreas.record import as_records
from pancreas.superpixels import (
    SuperpixelGenerator,
    body_mask,
    optimal_superpixel_mask,
    superpixel_label_fractions,
    window_hu,
)


def _disc_ct(rng, spacing=1.0, radius_mm=40.0, n_slices=3, gas=True):
    """A disc-shaped 'body' (soft tissue, a fat rim, a bright blob) in air."""
    n = round(2 * (radius_mm + 8) / spacing)
    centre = (n - 1) / 2.0
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    r = np.hypot(ii - centre, jj - centre) * spacing
    hu = np.full((n, n, n_slices), -1000.0)
    body = r <= radius_mm
    hu[body] = 40.0
    hu[(r > radius_mm - 6) & body] = -100.0
    blob = np.hypot(ii * spacing - 0.4 * n * spacing, jj * spacing - 0.5 * n * spacing)
    hu[blob < 8] = 180.0
    if gas:
        hu[np.hypot(ii - centre, jj - centre) * spacing < 4] = -900.0  # bowel gas
    hu += rng.normal(0, 5, hu.shape)
    affine = np.diag([spacing, spacing, 2.5, 1.0])
    return Volume(hu.astype(np.int16), affine), body


@pytest.fixture
def ct(rng):
    return _disc_ct(rng)


@pytest.fixture
def records(ct):
    return SuperpixelGenerator().fit_transform([ct[0]])


# --------------------------------------------------------------------------- #
# scikit-learn conventions
# --------------------------------------------------------------------------- #
def test_clone_get_set_params():
    est = SuperpixelGenerator(superpixel_area=25.0, compactness=0.2)
    params = clone(est).get_params()
    assert params["superpixel_area"] == 25.0
    assert params["compactness"] == 0.2
    est.set_params(sigma=0.5)
    assert est.sigma == 0.5


def test_not_fitted_raises(ct):
    est = SuperpixelGenerator()
    with pytest.raises(NotFittedError):
        est.transform([ct[0]])
    with pytest.raises(NotFittedError):
        est.optimal_dice([ct[0]], [ct[1]])


def test_fit_returns_self_and_sets_attribute():
    est = SuperpixelGenerator(superpixel_area=50.0)
    assert est.fit(None) is est
    assert est.n_segments_per_cm2_ == pytest.approx(2.0)


@pytest.mark.parametrize(
    "params",
    [
        {"superpixel_area": 0.0},
        {"superpixel_area": -3.0},
        {"compactness": 0},
        {"sigma": -1.0},
        {"max_num_iter": 0},
        {"hu_window": "soft"},
        {"hu_window": (240.0, -160.0)},
        {"hu_window": (1.0, 2.0, 3.0)},
    ],
)
def test_invalid_params_rejected_at_fit(params):
    est = SuperpixelGenerator(**params)  # no error at construction
    with pytest.raises(ValueError):
        est.fit(None)


def test_pickle_round_trip_gives_identical_transform(ct):
    est = SuperpixelGenerator().fit([ct[0]])
    again = pickle.loads(pickle.dumps(est))
    a = est.transform([ct[0]])[0].superpixels
    b = again.transform([ct[0]])[0].superpixels
    np.testing.assert_array_equal(a, b)


def test_parallel_gives_same_result(ct):
    a = SuperpixelGenerator().fit_transform([ct[0]])[0].superpixels
    b = SuperpixelGenerator(n_jobs=2).fit_transform([ct[0]])[0].superpixels
    np.testing.assert_array_equal(a, b)


def test_transform_returns_new_records(ct):
    recs = as_records([ct[0]])
    out = SuperpixelGenerator().fit_transform(recs)
    assert out[0] is not recs[0]
    assert recs[0].superpixels is None and recs[0].body_mask is None
    assert out[0].volume is recs[0].volume  # the CT itself is shared, not copied


# --------------------------------------------------------------------------- #
# Superpixel contract
# --------------------------------------------------------------------------- #
def test_superpixels_dtype_and_zero_exactly_outside_body(records, ct):
    rec = records[0]
    assert rec.superpixels.dtype == np.int32
    assert rec.superpixels.shape == rec.shape
    np.testing.assert_array_equal(rec.superpixels > 0, rec.body_mask)
    # the body is the disc, with the gas pocket filled in
    np.testing.assert_array_equal(rec.body_mask, np.repeat(ct[1][..., None], 3, 2))


def test_labels_consecutive_unique_and_within_one_slice(records):
    sp = records[0].superpixels
    n = records[0].n_superpixels
    assert n > 0
    np.testing.assert_array_equal(np.unique(sp[sp > 0]), np.arange(1, n + 1))
    seen = set()
    for k in range(sp.shape[2]):
        labels = set(np.unique(sp[:, :, k]).tolist()) - {0}
        assert not labels & seen, "a superpixel spans two slices"
        seen |= labels
    assert seen == set(range(1, n + 1))


@pytest.mark.parametrize("target", [25.0, 60.0])
def test_mean_area_is_spacing_aware(rng, target):
    counts = []
    for spacing in (1.0, 0.5):
        vol, body = _disc_ct(rng, spacing=spacing, n_slices=1, gas=False)
        rec = SuperpixelGenerator(superpixel_area=target).fit_transform([vol])[0]
        body_mm2 = body.sum() * spacing**2
        mean_area = body_mm2 / rec.n_superpixels
        assert 0.6 * target <= mean_area <= 1.25 * target, (spacing, mean_area)
        counts.append(rec.n_superpixels)
    assert counts[1] == pytest.approx(counts[0], rel=0.2)


def test_superpixels_follow_a_strong_edge(records, ct):
    """The bright blob is captured almost exactly by whole superpixels."""
    rec = records[0]
    blob = np.asarray(ct[0].array) > 120
    mask = optimal_superpixel_mask(rec.superpixels, blob)
    inter = (mask & blob).sum()
    assert 2 * inter / (mask.sum() + blob.sum()) > 0.9


def test_empty_slices_and_all_air():
    hu = np.full((20, 20, 3), -1000, np.int16)
    hu[5:15, 5:15, 1] = 40
    rec = SuperpixelGenerator().fit_transform([hu])[0]
    assert rec.superpixels[:, :, 0].max() == 0
    assert rec.superpixels[:, :, 2].max() == 0
    assert rec.n_superpixels > 0
    air = SuperpixelGenerator().fit_transform([np.full((8, 8, 2), -1000.0)])[0]
    assert air.n_superpixels == 0 and not air.body_mask.any()


# --------------------------------------------------------------------------- #
# Functions
# --------------------------------------------------------------------------- #
def test_window_hu():
    out = window_hu(np.array([-2000, -160, 40, 240, 3000]), (-160, 240))
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])
    assert out.dtype == np.float32


def test_body_mask_keeps_largest_component_and_fills_holes():
    hu = np.full((12, 12, 2), -1000.0)
    hu[2:10, 2:10] = 30.0
    hu[5:7, 5:7] = -1000.0  # gas inside
    hu[0, 11] = 30.0  # a separate speck (e.g. the table)
    mask = body_mask(hu)
    assert mask[5, 5, 0] and mask[5, 5, 1]
    assert not mask[0, 11, 0]
    assert mask.sum() == 2 * 64


def test_label_fractions_and_optimal_mask():
    sp = np.array([[0, 1, 1, 2, 3], [0, 1, 1, 2, 3]])
    lab = np.array([[1, 1, 1, 0, 1], [0, 1, 0, 0, 0]])
    frac = superpixel_label_fractions(sp, lab)
    np.testing.assert_allclose(frac, [0.0, 0.75, 0.0, 0.5])
    np.testing.assert_array_equal(
        optimal_superpixel_mask(sp, lab),
        [[0, 1, 1, 0, 1], [0, 1, 1, 0, 1]],
    )
    with pytest.raises(ValueError, match="differ"):
        superpixel_label_fractions(sp, lab[:, :3])


def test_optimal_dice_is_one_for_union_of_superpixels(records, ct):
    rec = records[0]
    sp = rec.superpixels
    chosen = np.arange(1, rec.n_superpixels + 1, 3)
    label = np.isin(sp, chosen).astype(np.uint8)
    est = SuperpixelGenerator().fit(None)
    np.testing.assert_allclose(est.optimal_dice(records, [label]), [1.0])
    # from raw volumes, superpixelised on the fly: the same
    np.testing.assert_allclose(est.optimal_dice([ct[0]], [label]), [1.0])
