"""GaussianRefiner: painting, 3D smoothing, threshold choice and Dice curves."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.record import make_record
from pancreas.refine import (
    GaussianRefiner,
    dice_curve,
    largest_component,
    paint_probability,
    smooth_probability,
)


def _case(rng, shape=(12, 12, 6), proba=None, affine=None):
    """Superpixels = 2x2 squares in every slice; label = a central block."""
    i, j, k = np.indices(shape)
    n_i, n_j = shape[0] // 2, shape[1] // 2
    sp = (1 + i // 2 + n_i * (j // 2) + n_i * n_j * k).astype(np.int32)
    label = (abs(i - 6) < 3) & (abs(j - 6) < 3) & (k >= 1) & (k <= 4)
    cands = np.unique(sp[(abs(i - 6) < 5) & (abs(j - 6) < 5)]).astype(np.int32)
    frac = ndimage.mean(label, sp, cands)
    if proba is None:
        proba = np.clip(frac[:, None] + rng.normal(0, 0.05, (len(cands), 4)), 0, 1)
    vol = Volume(np.zeros(shape, np.int16), np.eye(4) if affine is None else affine)
    rec = make_record(vol, "case")
    rec = replace(
        rec,
        superpixels=rec.to_canonical(sp),
        candidates=cands,
        convnet_proba=np.asarray(proba, np.float32),
    )
    return rec, label.astype(np.uint8)


def test_paint_probability_averages_the_first_scales(rng):
    rec, _ = _case(rng)
    p = rec.convnet_proba
    one = paint_probability(rec, 1)
    allp = paint_probability(rec)
    first = rec.candidates[0]
    voxel = np.argwhere(rec.superpixels == first)[0]
    assert one[tuple(voxel)] == pytest.approx(p[0, 0])
    assert allp[tuple(voxel)] == pytest.approx(p[0].mean(), rel=1e-6)
    outside = ~np.isin(rec.superpixels, rec.candidates)
    assert np.all(allp[outside] == 0)
    assert allp.dtype == np.float32


def test_paint_requires_candidates_and_proba(rng):
    rec, _ = _case(rng)
    with pytest.raises(InvalidVolumeError, match="case: no ConvNet"):
        paint_probability(replace(rec, convnet_proba=None))
    with pytest.raises(InvalidVolumeError, match="run SuperpixelGenerator"):
        paint_probability(replace(rec, candidates=None))
    with pytest.raises(InvalidVolumeError, match="does not match"):
        paint_probability(replace(rec, convnet_proba=np.zeros((2, 4), np.float32)))


def test_smooth_matches_full_volume_filter(rng):
    p = np.zeros((30, 31, 20), np.float32)
    p[10:14, 12:15, 5:9] = rng.random((4, 3, 4))
    for sigma in (1.0, (2.0, 1.0, 0.5)):
        full = ndimage.gaussian_filter(p, sigma, mode="constant")
        np.testing.assert_allclose(smooth_probability(p, sigma), full, atol=1e-7)
    assert not smooth_probability(np.zeros((4, 4, 4)), 3.0).any()


@pytest.mark.parametrize("where", ["inside", "edge", "none"])
def test_refiner_smooths_the_candidate_box_alone_with_the_same_result(rng, where):
    """predict/predict_proba paint and smooth only the candidates' box (plus
    the kernel's reach): equal, value for value, to painting and smoothing
    the whole volume, also when candidates touch the volume's edge."""
    rec, label = _case(rng, shape=(40, 36, 18))
    sp = rec.superpixels
    if where == "edge":  # the candidates of one corner column of superpixels
        cands = np.unique(sp[:4, :6, :3]).astype(np.int32)
    elif where == "inside":
        cands = np.unique(sp[14:22, 10:18, 6:10]).astype(np.int32)
    else:
        cands = np.zeros(0, np.int32)
    rec = replace(
        rec,
        candidates=cands,
        convnet_proba=rng.random((len(cands), 4)).astype(np.float32),
    )
    ref = GaussianRefiner(sigma=1.5, threshold=0.05, largest_component=True)
    ref.fit([rec], [label])
    sigma = ref._sigma_voxels(rec)
    full = smooth_probability(paint_probability(rec), sigma)
    np.testing.assert_array_equal(ref.predict_proba([rec])[0], full)
    whole = ndimage.gaussian_filter(paint_probability(rec), sigma, mode="constant")
    np.testing.assert_allclose(full, whole, atol=1e-6)
    expected = largest_component(full > 0.05)
    np.testing.assert_array_equal(ref.predict([rec])[0], expected.astype(np.uint8))
    mask, proba = ref.predict_with_proba([rec])[0]
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(proba, full)
    assert expected.any() == (where != "none")


def test_dice_curve_matches_direct_computation(rng):
    p = rng.random((10, 10, 10))
    lab = rng.random((10, 10, 10)) > 0.6
    t = np.linspace(0.05, 0.95, 19)
    direct = [2 * ((p > x) & lab).sum() / ((p > x).sum() + lab.sum()) for x in t]
    np.testing.assert_allclose(dice_curve(p, lab, t), direct)
    # both empty -> 1, prediction empty with a label -> 0
    z = np.zeros(5)
    assert dice_curve(z, z.astype(bool), np.array([0.5]))[0] == 1.0
    assert dice_curve(z, np.ones(5, bool), np.array([0.5]))[0] == 0.0


def test_largest_component():
    m = np.zeros((10, 10, 10), bool)
    m[0:2, 0:2, 0:2] = True
    m[5:9, 5:9, 5:9] = True
    out = largest_component(m)
    assert out.sum() == 64 and not out[0, 0, 0]


def test_fit_picks_threshold_and_curves(rng):
    cases = [_case(np.random.default_rng(s)) for s in range(3)]
    X = [c[0] for c in cases]
    y = [c[1] for c in cases]
    ref = GaussianRefiner(sigma=1.0).fit(X, y)
    assert set(ref.dice_curves_) == {
        "P(x) Ns=1",
        "G(P(x)) Ns=1",
        "P(x) Ns=all",
        "G(P(x)) Ns=all",
    }
    curve = ref.dice_curves_["G(P(x)) Ns=all"]
    assert curve.shape == (3, 19)
    best = ref.thresholds_[np.argmax(curve.mean(axis=0))]
    assert ref.threshold_ == best
    assert ref.n_scales_ == 4
    # the chosen threshold does at least as well as any other on the fit cases
    assert ref.score(X, y) == pytest.approx(curve.mean(axis=0).max())
    masks = ref.predict(X)
    assert masks[0].dtype == np.uint8 and set(np.unique(masks[0])) <= {0, 1}
    proba = ref.predict_proba(X)
    assert proba[0].dtype == np.float32
    np.testing.assert_array_equal(masks[0], proba[0] > ref.threshold_)


def test_fixed_threshold_and_ns1(rng):
    rec, lab = _case(rng)
    ref = GaussianRefiner(threshold=0.3, n_scales=1, sigma=1.0).fit([rec], [lab])
    assert ref.threshold_ == 0.3
    expected = smooth_probability(paint_probability(rec, 1), 1.0) > 0.3
    np.testing.assert_array_equal(ref.predict([rec])[0], expected)


def test_sigma_in_mm_uses_spacing(rng):
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    rec, lab = _case(rng, affine=affine)
    ref = GaussianRefiner(sigma=3.0, sigma_unit="mm").fit([rec], [lab])
    expected = smooth_probability(paint_probability(rec), (3.0, 3.0, 1.0))
    np.testing.assert_allclose(ref.predict_proba([rec])[0], expected, atol=1e-7)


def test_outputs_in_native_grid(rng):
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    rec, lab = _case(rng, affine=flip)
    ref = GaussianRefiner(sigma=1.0).fit([rec], [lab])
    canonical = smooth_probability(paint_probability(rec), 1.0)
    np.testing.assert_allclose(ref.predict_proba([rec])[0], canonical[::-1])


def test_sklearn_conventions(rng):
    rec, lab = _case(rng)
    ref = GaussianRefiner(sigma=2.0, largest_component=True)
    assert clone(ref).get_params() == ref.get_params()
    with pytest.raises(NotFittedError):
        ref.predict([rec])
    assert ref.fit([rec], [lab]) is ref
    again = pickle.loads(pickle.dumps(ref))
    np.testing.assert_array_equal(again.predict([rec])[0], ref.predict([rec])[0])
    with pytest.raises(ValueError, match="sigma_unit"):
        GaussianRefiner(sigma_unit="cm").fit([rec], [lab])
    with pytest.raises(ValueError, match="thresholds"):
        GaussianRefiner(thresholds=[0.0, 0.5]).fit([rec], [lab])
    with pytest.raises(InvalidVolumeError, match="2 label volumes"):
        GaussianRefiner().fit([rec], [lab, lab])
