"""Tests for pancreas.phantom: the synthetic abdominal CT cohort."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from pancreas.io import Volume
from pancreas.phantom import (
    PANCREAS_TISSUES,
    TISSUES,
    _cached_anatomy,
    _case_grid,
    _case_seed,
    _make_case,
    _root_seed,
    make_phantom_cohort,
    make_synthetic_ct,
)

TINY = (48, 48, 12)
SMALL = (96, 96, 24)


def _case(seed, shape, i=0):
    """CT, label and tissue map of case ``i`` of the cohort seeded ``seed``."""
    return _make_case(_case_seed(_root_seed(seed), i), shape, return_tissues=True)


@pytest.fixture(scope="module")
def small_case():
    return _case(1, SMALL)


@pytest.fixture(scope="module")
def medium_case():
    """The one medium-size case of this file (about 1 s)."""
    return _case(2, (256, 256, 60))


def _anatomy(seed, i=0):
    s_anat = _case_seed(_root_seed(seed), i).spawn(3)[0]
    return _cached_anatomy(s_anat.entropy, tuple(s_anat.spawn_key))


# --------------------------------------------------------------------------
# API, determinism, grids
# --------------------------------------------------------------------------


def test_make_synthetic_ct_types_and_shapes():
    ct, label = make_synthetic_ct(shape=TINY, random_state=0)
    assert isinstance(ct, Volume) and isinstance(label, Volume)
    assert ct.shape == label.shape == TINY
    assert ct.array.dtype == np.int16
    assert label.array.dtype == np.uint8
    assert set(np.unique(label.array)) == {0, 1}
    assert ct.source == label.source == "phantom_000"
    np.testing.assert_array_equal(ct.affine, label.affine)


def test_default_shape():
    ct, label = make_synthetic_ct(random_state=0)
    assert ct.shape == label.shape == (64, 64, 16)


@pytest.fixture(scope="module")
def cohort7():
    return make_phantom_cohort(3, shape=TINY, random_state=7)


def test_same_seed_same_case_different_seed_differs(cohort7):
    a = cohort7
    b = make_phantom_cohort(2, shape=TINY, random_state=7)
    c = make_phantom_cohort(1, shape=TINY, random_state=8)
    for x, y in zip(a[0][:2] + a[1][:2], b[0] + b[1], strict=True):
        np.testing.assert_array_equal(x.array, y.array)
        np.testing.assert_array_equal(x.affine, y.affine)
    assert not np.array_equal(a[0][0].array, c[0][0].array)
    assert not np.array_equal(a[0][0].array, a[0][1].array)


def test_case_i_does_not_depend_on_n_cases(cohort7):
    cts3, labels3 = cohort7
    cts1, labels1 = make_phantom_cohort(1, shape=TINY, random_state=7)
    np.testing.assert_array_equal(cts3[0].array, cts1[0].array)
    np.testing.assert_array_equal(labels3[0].array, labels1[0].array)
    assert [ct.source for ct in cts3] == ["phantom_000", "phantom_001", "phantom_002"]
    ct2, label2 = _case(7, TINY, i=2)[:2]
    np.testing.assert_array_equal(cts3[2].array, ct2.array)
    np.testing.assert_array_equal(labels3[2].array, label2.array)


def test_make_synthetic_ct_is_case_0_of_the_cohort():
    ct, label = make_synthetic_ct(shape=TINY, random_state=5)
    cts, labels = make_phantom_cohort(1, shape=TINY, random_state=5)
    np.testing.assert_array_equal(ct.array, cts[0].array)
    np.testing.assert_array_equal(label.array, labels[0].array)


def test_random_state_forms():
    ct_int = make_synthetic_ct(shape=TINY, random_state=3)[0]
    ct_ss = make_synthetic_ct(shape=TINY, random_state=np.random.SeedSequence(3))[0]
    np.testing.assert_array_equal(ct_int.array, ct_ss.array)
    # generators are consumed like scikit-learn does; None draws fresh entropy
    g1 = _root_seed(np.random.default_rng(4))
    g2 = _root_seed(np.random.default_rng(4))
    assert g1.entropy == g2.entropy
    assert _root_seed(np.random.RandomState(4)).entropy is not None
    assert _root_seed(None).entropy != _root_seed(None).entropy


def test_n_jobs_gives_the_same_cohort(cohort7):
    parallel = make_phantom_cohort(3, shape=TINY, random_state=7, n_jobs=2)
    for x, y in zip(cohort7[0] + cohort7[1], parallel[0] + parallel[1], strict=True):
        np.testing.assert_array_equal(x.array, y.array)


def test_empty_cohort():
    assert make_phantom_cohort(0, shape=TINY, random_state=0) == ([], [])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (48, 48)},
        {"shape": (48, 48, 4)},
        {"shape": (48.5, 48, 12)},
        {"shape": "big"},
        {"random_state": "seed"},
        {"random_state": -1},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        make_synthetic_ct(**{"shape": TINY, **kwargs})


@pytest.mark.parametrize("n_cases", [-1, 1.5, True])
def test_invalid_n_cases(n_cases):
    with pytest.raises(ValueError, match="n_cases"):
        make_phantom_cohort(n_cases, shape=TINY)


@pytest.mark.parametrize("seed", range(6))
def test_full_size_grid_like_nih(seed):
    an = _anatomy(seed)
    root = _case_seed(_root_seed(seed), 0)
    grid_rng = np.random.default_rng(root.spawn(3)[1])
    shape, affine, factors = _case_grid(an, None, grid_rng)
    assert shape[:2] == (512, 512) and 150 <= shape[2] <= 250
    sx, sy, sz = np.diag(affine)[:3]
    assert 0.6 <= sx == sy <= 0.9
    assert 1.0 <= sz <= 2.5
    assert factors == (1, 1, 1)
    # z coverage holds the whole pancreas with a margin
    P = an.pancreas
    z_lo, z_hi = affine[2, 3], affine[2, 3] + sz * shape[2]
    assert z_lo + 15 < (P.pts[:, 2] - P.radii * P.h).min()
    assert z_hi - 15 > (P.pts[:, 2] + P.radii * P.h).max()


@pytest.mark.parametrize("shape", [(48, 48, 12), (64, 80, 16), (96, 96, 24)])
def test_coarse_grid_field_of_view(shape):
    for seed in range(2):
        ct = make_synthetic_ct(shape=shape, random_state=seed)[0]
        assert ct.shape == shape
        A = ct.affine
        np.testing.assert_array_equal(A[:3, :3], np.diag(np.diag(A)[:3]))
        assert np.all(np.diag(A)[:3] > 0)
        np.testing.assert_allclose(ct.spacing, np.diag(A)[:3], rtol=1e-5)
        fov = np.asarray(ct.spacing) * np.asarray(shape)
        assert 300 <= fov[0] <= 465 and 300 <= fov[1] <= 465
        assert 120 <= fov[2] <= 250


def test_same_anatomy_on_different_grids():
    """A case keeps its anatomy (and pancreas position) whatever the grid."""
    centroids = []
    for shape in [(48, 48, 12), (96, 96, 24)]:
        _, label = make_synthetic_ct(shape=shape, random_state=9)
        idx = np.argwhere(label.array > 0)
        world = idx @ label.affine[:3, :3].T + label.affine[:3, 3]
        centroids.append(world.mean(axis=0))
    assert np.linalg.norm(centroids[0] - centroids[1]) < 10.0


# --------------------------------------------------------------------------
# Anatomy
# --------------------------------------------------------------------------


def _centroid(mask):
    return np.argwhere(mask).mean(axis=0)


def test_orientation_of_the_anatomy(small_case):
    _, label, tissue = small_case
    t = tissue.array
    liver = _centroid(t == TISSUES["liver"])
    spleen = _centroid(t == TISSUES["spleen"])
    bone = _centroid(t == TISSUES["bone_cancellous"])
    muscle_front = np.argwhere(t == TISSUES["muscle"])
    pancreas = _centroid(label.array > 0)
    # RAS+: world x grows towards the patient's right (the liver's side)
    assert nib.aff2axcodes(tissue.affine) == ("R", "A", "S")
    world = nib.affines.apply_affine
    liver_x, pancreas_x, spleen_x = (
        world(tissue.affine, c)[0] for c in (liver, pancreas, spleen)
    )
    assert spleen_x < pancreas_x < liver_x
    # axis 1 runs anterior: spine at the back, pancreas in front of it
    assert bone[1] < pancreas[1] < muscle_front[:, 1].max()
    ivc = world(tissue.affine, _centroid(t == TISSUES["ivc"]))[0]
    spine = world(tissue.affine, bone)[0]
    assert ivc > spine  # the IVC lies to the right of the midline


def test_label_is_pancreas_inside_the_body(small_case):
    ct, label, tissue = small_case
    lab = label.array > 0
    assert lab.sum() > 50
    assert np.all(tissue.array[lab] != TISSUES["air"])
    body = ndimage.binary_fill_holes(ct.array > -500)
    assert body[lab].all()
    # the label is (mostly) made of pancreas tissue
    assert np.isin(tissue.array[lab], PANCREAS_TISSUES).mean() > 0.8


def test_pancreas_head_right_tail_left_and_higher(small_case):
    _, label, _ = small_case
    idx = np.argwhere(label.array > 0).astype(float)
    sp = np.asarray(label.spacing)
    mm = idx * sp
    x = mm[:, 0]
    # axis 0 runs towards the patient's right (RAS+)
    right = mm[x > np.quantile(x, 0.8)]
    left = mm[x < np.quantile(x, 0.2)]
    # elongated from right to left, tail higher than the head
    assert np.ptp(x) > 1.5 * np.ptp(mm[:, 1])
    assert left[:, 2].mean() > right[:, 2].mean()


def test_pancreas_mostly_surrounded_by_fat(medium_case):
    ct, label, _ = medium_case
    lab = label.array > 0
    shell = ndimage.binary_dilation(lab, iterations=2) & ~lab
    hu = ct.array[shell]
    assert (hu < -30).mean() > 0.3


def _volume_ml(label):
    return label.array.sum() * np.prod(label.spacing) / 1000.0


@pytest.mark.parametrize("seed", [0, 1])
def test_pancreas_volume_in_range(seed):
    _, label = make_synthetic_ct(shape=(128, 128, 32), random_state=seed)
    assert 40.0 <= _volume_ml(label) <= 120.0


def test_pancreas_volume_on_the_medium_grid(medium_case):
    assert 40.0 <= _volume_ml(medium_case[1]) <= 120.0


# --------------------------------------------------------------------------
# Intensities
# --------------------------------------------------------------------------


def test_tissue_hounsfield_units(medium_case):
    ct, label, tissue = medium_case
    a, t = ct.array, tissue.array

    def median(name):
        return float(np.median(a[t == TISSUES[name]]))

    assert 70 <= np.median(a[label.array > 0]) <= 130
    assert abs(median("visceral_fat") + 100) <= 40
    assert abs(median("subcutaneous_fat") + 100) <= 40
    assert abs(median("muscle") - 55) <= 20
    assert abs(median("liver") - 105) <= 25
    assert 130 <= median("artery") <= 220
    assert median("kidney_cortex") > median("kidney_medulla")
    assert a.max() > 300 and median("bone_cancellous") > 150
    assert median("air") < -950
    assert a.min() >= -1024


def test_noise_level(medium_case):
    ct, _, tissue = medium_case
    core = ndimage.binary_erosion(tissue.array == TISSUES["liver"], iterations=3)
    sd = float(np.std(ct.array[core]))
    assert 5 <= sd <= 30


def test_intensity_alone_cannot_segment(small_case, medium_case):
    for ct, label, tissue in (small_case, medium_case):
        a = ct.array
        lab = label.array > 0
        lo, hi = np.percentile(a[lab], [10, 90])
        body = tissue.array != TISSUES["air"]
        in_range = (a >= lo) & (a <= hi)
        others = in_range & body & ~lab
        assert others.sum() > 5 * lab.sum()
        tp = (in_range & lab).sum()
        dice = 2 * tp / (lab.sum() + in_range[body].sum())
        assert dice < 0.3
