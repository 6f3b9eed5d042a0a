"""Tests for pancreas.superpixels: SLIC superpixels inside the body."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import find_boundaries
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pancreas.io import Volume
from pancreas.phantom import make_phantom_cohort
from pancreas.record import as_records
from pancreas.superpixels import (
    SuperpixelGenerator,
    body_mask,
    optimal_superpixel_mask,
    superpixel_label_fractions,
    window_hu,
)

try:
    import cv2

    HAVE_OPENCV = hasattr(cv2, "ximgproc")
except ImportError:
    HAVE_OPENCV = False

needs_opencv = pytest.mark.skipif(
    not HAVE_OPENCV, reason="backend='opencv' needs pip install pancreas[fast]"
)
BACKENDS = ["skimage", pytest.param("opencv", marks=needs_opencv)]


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


@pytest.fixture(params=BACKENDS)
def backend_records(request, ct):
    return SuperpixelGenerator(backend=request.param).fit_transform([ct[0]])


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
        {"backend": "cuda"},
        {"backend": "OpenCV"},
    ],
)
def test_invalid_params_rejected_at_fit(params):
    est = SuperpixelGenerator(**params)  # no error at construction
    with pytest.raises(ValueError):
        est.fit(None)


def test_unknown_backend_error_names_the_parameter():
    with pytest.raises(ValueError, match="backend"):
        SuperpixelGenerator(backend="slic0").fit(None)


@pytest.mark.parametrize("cv2_module", [None, types.ModuleType("cv2")])
def test_opencv_backend_without_opencv_says_how_to_install(monkeypatch, cv2_module):
    # None: no OpenCV at all; a module without ximgproc: OpenCV without contrib
    monkeypatch.setitem(sys.modules, "cv2", cv2_module)
    with pytest.raises(ImportError, match=r"pip install pancreas\[fast\]"):
        SuperpixelGenerator(backend="opencv").fit(None)
    SuperpixelGenerator(backend="skimage").fit(None)  # the default needs no OpenCV


def test_pickle_round_trip_gives_identical_transform(ct):
    est = SuperpixelGenerator().fit([ct[0]])
    again = pickle.loads(pickle.dumps(est))
    a = est.transform([ct[0]])[0].superpixels
    b = again.transform([ct[0]])[0].superpixels
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_gives_same_result(ct, backend):
    a = SuperpixelGenerator(backend=backend).fit_transform([ct[0]])[0].superpixels
    b = SuperpixelGenerator(backend=backend, n_jobs=2).fit_transform([ct[0]])
    np.testing.assert_array_equal(a, b[0].superpixels)


@needs_opencv
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_opencv_runs_on_one_thread_and_restores_the_setting(ct, monkeypatch, n_jobs):
    seen = []
    real = cv2.ximgproc.createSuperpixelSLIC

    def spy(*args, **kwargs):
        seen.append(cv2.getNumThreads())
        return real(*args, **kwargs)

    monkeypatch.setattr(cv2.ximgproc, "createSuperpixelSLIC", spy)
    before = cv2.getNumThreads()
    SuperpixelGenerator(backend="opencv", n_jobs=n_jobs).fit_transform([ct[0]])
    assert seen and set(seen) == {1}
    assert cv2.getNumThreads() == before


def test_transform_returns_new_records(ct):
    recs = as_records([ct[0]])
    out = SuperpixelGenerator().fit_transform(recs)
    assert out[0] is not recs[0]
    assert recs[0].superpixels is None and recs[0].body_mask is None
    assert out[0].volume is recs[0].volume  # the CT itself is shared, not copied


# --------------------------------------------------------------------------- #
# Superpixel contract
# --------------------------------------------------------------------------- #
def test_superpixels_dtype_and_zero_exactly_outside_body(backend_records, ct):
    rec = backend_records[0]
    assert rec.superpixels.dtype == np.int32
    assert rec.superpixels.shape == rec.shape
    np.testing.assert_array_equal(rec.superpixels > 0, rec.body_mask)
    # the body is the disc, with the gas pocket filled in
    np.testing.assert_array_equal(rec.body_mask, np.repeat(ct[1][..., None], 3, 2))


def test_labels_consecutive_unique_and_within_one_slice(backend_records):
    sp = backend_records[0].superpixels
    n = backend_records[0].n_superpixels
    assert n > 0
    np.testing.assert_array_equal(np.unique(sp[sp > 0]), np.arange(1, n + 1))
    seen = set()
    for k in range(sp.shape[2]):
        labels = set(np.unique(sp[:, :, k]).tolist()) - {0}
        assert not labels & seen, "a superpixel spans two slices"
        seen |= labels
    assert seen == set(range(1, n + 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", [25.0, 60.0])
def test_mean_area_is_spacing_aware(rng, target, backend):
    counts = []
    for spacing in (1.0, 0.5):
        vol, body = _disc_ct(rng, spacing=spacing, n_slices=1, gas=False)
        est = SuperpixelGenerator(superpixel_area=target, backend=backend)
        rec = est.fit_transform([vol])[0]
        body_mm2 = body.sum() * spacing**2
        mean_area = body_mm2 / rec.n_superpixels
        assert 0.6 * target <= mean_area <= 1.25 * target, (spacing, mean_area)
        counts.append(rec.n_superpixels)
    assert counts[1] == pytest.approx(counts[0], rel=0.2)


def test_superpixels_follow_a_strong_edge(backend_records, ct):
    """The bright blob is captured almost exactly by whole superpixels."""
    rec = backend_records[0]
    blob = np.asarray(ct[0].array) > 120
    mask = optimal_superpixel_mask(rec.superpixels, blob)
    inter = (mask & blob).sum()
    assert 2 * inter / (mask.sum() + blob.sum()) > 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_slices_and_all_air(backend):
    hu = np.full((20, 20, 4), -1000, np.int16)
    hu[5:15, 5:15, 1] = 40
    hu[9, 9, 2] = 40  # a one-voxel body section, joined to slice 1
    est = SuperpixelGenerator(backend=backend)
    rec = est.fit_transform([hu])[0]
    assert rec.superpixels[:, :, 0].max() == 0
    assert rec.superpixels[:, :, 3].max() == 0
    np.testing.assert_array_equal(rec.superpixels > 0, rec.body_mask)
    assert rec.n_superpixels > 1
    assert rec.superpixels[9, 9, 2] == rec.n_superpixels  # its own superpixel
    air = est.fit_transform([np.full((8, 8, 2), -1000.0)])[0]
    assert air.n_superpixels == 0 and not air.body_mask.any()


# --------------------------------------------------------------------------- #
# Backends: OpenCV's SLIC against scikit-image's on phantom CT
# --------------------------------------------------------------------------- #
def _boundary_recall(superpixels, label, tolerance=2):
    """Fraction of the label's in-plane boundary within `tolerance` pixels of
    a superpixel boundary (slice by slice)."""
    hits = total = 0
    for k in range(label.shape[2]):
        edge = find_boundaries(label[:, :, k] > 0, mode="inner")
        if not edge.any():
            continue
        near = ndimage.binary_dilation(
            find_boundaries(superpixels[:, :, k], mode="thick"), iterations=tolerance
        )
        hits += int((edge & near).sum())
        total += int(edge.sum())
    return hits / total


@pytest.fixture(scope="module")
def phantom_slab():
    """Two full-resolution phantom cases (512 x 512, 0.7-0.9 mm pixels), a
    few slices each through the pancreas."""
    cts, labels = make_phantom_cohort(2, shape=(512, 512, 8), random_state=3)
    keep = [np.flatnonzero(np.asarray(lab.array).any(axis=(0, 1))) for lab in labels]
    cts = [Volume(np.asarray(c.array)[:, :, k], c.affine) for c, k in zip(cts, keep)]
    labels = [np.asarray(lab.array)[:, :, k] for lab, k in zip(labels, keep)]
    return cts, labels


@needs_opencv
def test_opencv_backend_gives_superpixels_of_the_same_quality(phantom_slab):
    cts, labels = phantom_slab
    result = {}
    for backend in ("skimage", "opencv"):
        est = SuperpixelGenerator(backend=backend, check_spacing=False).fit(None)
        recs = est.transform(cts)
        dice = est.optimal_dice(recs, labels)
        density = [
            r.n_superpixels / (r.body_mask.sum() * r.spacing[0] * r.spacing[1] / 100)
            for r in recs
        ]
        recall = [_boundary_recall(r.superpixels, lab) for r, lab in zip(recs, labels)]
        result[backend] = (dice, np.asarray(density), np.asarray(recall))
    (d_sk, n_sk, r_sk), (d_cv, n_cv, r_cv) = result["skimage"], result["opencv"]
    assert d_sk.mean() > 0.85  # the comparison is between good superpixels
    np.testing.assert_allclose(d_cv, d_sk, atol=0.02)
    np.testing.assert_allclose(n_cv, n_sk, rtol=0.1)
    np.testing.assert_allclose(r_cv, r_sk, atol=0.05)


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


def test_generator_saved_before_the_backend_parameter_still_runs():
    gen = SuperpixelGenerator().fit()
    state = gen.__getstate__()
    del state["backend"]  # as pickled or skops-saved by an earlier version
    old = SuperpixelGenerator.__new__(SuperpixelGenerator)
    old.__setstate__(state)
    assert old.backend == "skimage"
    assert old.get_params()["backend"] == "skimage"
