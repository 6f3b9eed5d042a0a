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
    phantom_factors,
)
from pancreas.phantom._factors import _check_factors, _Factors

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


# --------------------------------------------------------------------------
# Orientation in world coordinates (RAS+: +x towards the patient's right)
# --------------------------------------------------------------------------


def _world(vol, mask):
    """World (RAS+ mm) coordinates of the voxels of ``mask``."""
    return nib.affines.apply_affine(vol.affine, np.argwhere(mask))


def test_pancreatic_head_on_the_patients_right_in_world_coordinates(small_case):
    """The head (in the duodenal C-loop) lies to the right of the tail (at the
    splenic hilum): in RAS+ world coordinates, at larger x."""
    _, label, tissue = small_case
    t = tissue.array
    lab = label.array > 0
    pts = _world(label, lab)
    duo = _world(tissue, t == TISSUES["duodenum_wall"]).mean(axis=0)
    spleen = _world(tissue, t == TISSUES["spleen"]).mean(axis=0)
    d_duo = np.linalg.norm(pts - duo, axis=1)
    d_spl = np.linalg.norm(pts - spleen, axis=1)
    head = pts[d_duo < np.quantile(d_duo, 0.2)].mean(axis=0)
    tail = pts[d_spl < np.quantile(d_spl, 0.2)].mean(axis=0)
    liver = _world(tissue, t == TISSUES["liver"]).mean(axis=0)
    assert head[0] > tail[0] + 40  # head on the patient's right
    assert liver[0] > head[0] > tail[0] > spleen[0] - 30
    assert tail[2] > head[2]  # and the tail higher


def test_docs_state_the_orientation_the_affine_has():
    """Every 'axis 0 towards the patient's left/right' claim in the phantom's
    docstrings and examples matches the affine (RAS+: right)."""
    import re
    from pathlib import Path

    import pancreas.phantom as phantom

    ct, _ = make_synthetic_ct(shape=TINY, random_state=0)
    side = {"R": "right", "L": "left"}[nib.aff2axcodes(ct.affine)[0]]
    root = Path(__file__).resolve().parents[1]
    texts = {
        "module": phantom.__doc__,
        "make_phantom_cohort": make_phantom_cohort.__doc__,
        "make_synthetic_ct": make_synthetic_ct.__doc__,
    }
    for path in sorted((root / "examples").glob("plot_phantom*.py")):
        texts[path.name] = path.read_text()
    pattern = re.compile(r"axis\s+0\s+(?:runs\s+)?towards\s+the\s+patient's\s+(\w+)")
    n_claims = 0
    for where, text in texts.items():
        for claim in pattern.findall(" ".join(text.split())):
            n_claims += 1
            assert claim == side, f"{where} says axis 0 runs to the {claim}"
    assert n_claims >= 4


# --------------------------------------------------------------------------
# Factors (make_phantom_cohort's keywords and variation="realistic")
# --------------------------------------------------------------------------

SEED = 2
FSHAPE = (64, 64, 16)


def _fcase(shape=FSHAPE, seed=SEED, **factors):
    """CT, label and tissue map of case 0 with these factors."""
    return _make_case(
        _case_seed(_root_seed(seed), 0),
        shape,
        return_tissues=True,
        factors=_Factors(**factors),
    )


def _median(ct, tissue, name, erode=0):
    m = tissue.array == TISSUES[name]
    if erode:
        m = ndimage.binary_erosion(m, iterations=erode)
    return float(np.median(ct.array[m]))


def test_default_cohort_is_unchanged():
    """The factors leave the default cohort as it was (the whole test suite and
    the benchmarks rely on it): fingerprints of a case whose coarse grid is
    supersampled twice per voxel (values from before the factors existed)."""
    ct, label = make_synthetic_ct(shape=(96, 96, 24), random_state=1)
    assert int(label.array.sum()) == 720
    assert int(ct.array.astype(np.int64).sum()) == -141990923


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phase": "portal-venous"},
        {"pancreas_variant": "typical"},
        {"arms": "up"},
        {"table": True},
        {"streaks": "none"},
        {"kernel": "standard"},
    ],
)
def test_default_values_of_the_factors_give_the_default_cohort(kwargs):
    a = make_phantom_cohort(1, shape=TINY, random_state=SEED)
    b = make_phantom_cohort(1, shape=TINY, random_state=SEED, **kwargs)
    np.testing.assert_array_equal(a[0][0].array, b[0][0].array)
    np.testing.assert_array_equal(a[1][0].array, b[1][0].array)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spacing": (1, 1)}, "spacing"),
        ({"spacing": (1, 1, 0)}, "spacing"),
        ({"field_of_view": "head"}, "field_of_view"),
        ({"phase": "venous"}, "phase"),
        ({"habitus": 1.5}, "habitus"),
        ({"habitus": "obese"}, "habitus"),
        ({"arms": "down"}, "arms"),
        ({"table": "yes"}, "table"),
        ({"noise": -1}, "noise"),
        ({"kernel": "bone"}, "kernel"),
        ({"streaks": True}, "streaks"),
        ({"oral_contrast": 1}, "oral_contrast"),
        ({"pancreas_variant": "tumour"}, "pancreas_variant"),
        ({"pancreas_shift": 50}, "pancreas_shift"),
        ({"variation": "random"}, "variation"),
        # weights: per case, so only with variation; known values, numbers >= 0
        ({"phase": {"arterial": 1}}, "phase: .*needs variation='realistic'"),
        (
            {"phase": {"venous": 1}, "variation": "realistic"},
            "phase: unknown value.*'venous'",
        ),
        (
            {"kernel": {"sharp": -1}, "variation": "realistic"},
            "kernel: the weight of 'sharp' must be finite and >= 0",
        ),
        (
            {"arms": {"up": "1"}, "variation": "realistic"},
            "arms: the weight of 'up' must be a number",
        ),
        (
            {"pancreas_variant": {"fatty": 0}, "variation": "realistic"},
            "pancreas_variant: the weights must not all be 0",
        ),
    ],
)
def test_invalid_factors_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantom_cohort(1, shape=TINY, random_state=0, **kwargs)


def test_spacing_is_honoured_in_the_affine():
    ct, label = make_synthetic_ct(shape=None, spacing=(7.0, 7.0, 3.0), random_state=1)
    np.testing.assert_allclose(np.diag(ct.affine)[:3], (7.0, 7.0, 3.0))
    np.testing.assert_allclose(ct.spacing, (7.0, 7.0, 3.0))
    # the grid covers the same in-plane field of view as the case's default grid
    ref, _ = make_synthetic_ct(shape=(48, 48, 12), random_state=1)
    fov = np.asarray(ref.spacing[:2]) * ref.shape[:2]
    np.testing.assert_allclose(np.asarray(ct.shape[:2]) * 7.0, fov, atol=7)
    # with a shape too: that many voxels of that spacing
    ct2, _ = make_synthetic_ct(shape=(20, 20, 10), spacing=(2, 2, 5), random_state=1)
    assert ct2.shape == (20, 20, 10)
    np.testing.assert_allclose(ct2.spacing, (2, 2, 5))


def test_same_anatomy_at_two_spacings_same_pancreas_volume():
    """The invariance tests' need: one patient rendered at two spacings."""
    vols, centroids = [], []
    for sp in [(2.0, 2.0, 1.5), (2.5, 2.5, 5.0), (4.0, 4.0, 2.5)]:
        ct, label = make_synthetic_ct(
            shape=None, spacing=sp, field_of_view="partial", random_state=SEED
        )
        np.testing.assert_allclose(np.diag(ct.affine)[:3], sp)
        vols.append(_volume_ml(label))
        centroids.append(_world(label, label.array > 0).mean(axis=0))
    assert max(vols) / min(vols) < 1.04, vols
    for c in centroids[1:]:
        assert np.linalg.norm(c - centroids[0]) < 2.0


def test_field_of_view_extents_and_same_patient():
    """'partial' covers less z (mm) but holds the whole pancreas; the four
    fields of view of one seed show the same patient."""
    z_mm, centroids, vols = {}, {}, {}
    for fov in ("partial", "abdomen", "abdomen-pelvis", "chest-abdomen-pelvis"):
        ct, label = make_synthetic_ct(
            shape=None, spacing=(4.0, 4.0, 4.0), field_of_view=fov, random_state=SEED
        )
        z_mm[fov] = ct.shape[2] * ct.spacing[2]
        lab = label.array > 0
        ks = np.flatnonzero(lab.any(axis=(0, 1)))
        assert ks[0] > 0 and ks[-1] < ct.shape[2] - 1  # pancreas inside, with margin
        centroids[fov] = _world(label, lab).mean(axis=0)
        vols[fov] = _volume_ml(label)
    assert (
        z_mm["partial"]
        < z_mm["abdomen"]
        < z_mm["abdomen-pelvis"]
        < z_mm["chest-abdomen-pelvis"]
    )
    assert z_mm["partial"] < 200 and z_mm["chest-abdomen-pelvis"] > 550
    for fov in ("abdomen", "abdomen-pelvis", "chest-abdomen-pelvis"):
        assert np.linalg.norm(centroids[fov] - centroids["partial"]) < 1.0
        assert vols[fov] == pytest.approx(vols["partial"], rel=0.04)


def test_chest_abdomen_pelvis_reaches_lungs_and_pelvis():
    ct, _, tissue = _fcase(
        shape=None, spacing=(6.0, 6.0, 5.0), field_of_view="chest-abdomen-pelvis"
    )
    t = tissue.array
    lung = (t == TISSUES["lung"]).sum(axis=(0, 1))
    # lungs fill the upper slices, none in the lowest quarter
    assert lung[-5:].min() > 0 and lung[: t.shape[2] // 4].max() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_abdomen_pelvis_holds_the_hips_and_the_bladder(seed):
    """The routine protocol reaches the lesser pelvis: a urine-filled bladder
    behind the symphysis, in the midline, far below the pancreas, between the
    two femoral heads; none of it in a targeted pancreas scan."""
    ct, label, tissue = _fcase(
        shape=None,
        spacing=(3.0, 3.0, 3.0),
        seed=seed,
        field_of_view="abdomen-pelvis",
        phase="non-contrast",
        noise=0.0,
    )
    t = tissue.array
    urine = t == TISSUES["bladder_urine"]
    ml = urine.sum() * 27 / 1000
    assert 20 < ml < 500  # 60-500 mL inside the wall, which is 2-5 mm thick
    bladder = _world(tissue, urine).mean(axis=0)
    pancreas = _world(label, label.array > 0).mean(axis=0)
    body = _world(tissue, t != TISSUES["air"]).mean(axis=0)
    assert pancreas[2] - bladder[2] > 130  # mm caudal
    assert abs(bladder[0] - body[0]) < 25  # midline
    assert bladder[1] > body[1]  # anterior half of the body
    # urine without contrast: 0-20 HU (no noise in this case)
    assert 0 <= _median(ct, tissue, "bladder_urine", erode=1) <= 20
    # bone on both sides of the bladder at its level (the hips): the
    # patient's right at larger x in RAS+
    k = int(round(np.argwhere(urine)[:, 2].mean()))
    bone = np.zeros_like(urine)
    bones = [TISSUES["bone_cortical"], TISSUES["bone_cancellous"]]
    bone[:, :, k] = np.isin(t[:, :, k], bones)
    xs = _world(tissue, bone)[:, 0]
    assert (xs > bladder[0] + 50).sum() > 10 and (xs < bladder[0] - 50).sum() > 10
    # a targeted scan of the same patient stops well above it
    _, _, partial = _fcase(
        shape=None, spacing=(3.0, 3.0, 3.0), seed=seed, field_of_view="partial"
    )
    assert not (partial.array == TISSUES["bladder_urine"]).any()


def test_bladder_fills_with_contrast_only_in_the_delayed_phase():
    hu = {}
    for phase in ("non-contrast", "portal-venous", "delayed"):
        ct, _, tissue = _fcase(
            shape=None,
            spacing=(4.0, 4.0, 4.0),
            field_of_view="abdomen-pelvis",
            phase=phase,
            noise=0.0,
        )
        hu[phase] = _median(ct, tissue, "bladder_urine", erode=1)
    # the same urine before excreted contrast reaches it
    assert hu["non-contrast"] == pytest.approx(hu["portal-venous"], abs=1.0)
    assert 0 <= hu["portal-venous"] <= 20
    assert 10 <= hu["delayed"] <= 80


def test_contrast_phase_changes_enhancement():
    aorta, liver, pelvis = {}, {}, {}
    for phase in ("non-contrast", "arterial", "portal-venous", "delayed"):
        ct, _, tissue = _fcase(shape=(96, 96, 24), phase=phase)
        aorta[phase] = _median(ct, tissue, "artery")
        liver[phase] = _median(ct, tissue, "liver", erode=2)
        pelvis[phase] = _median(ct, tissue, "urine")
    assert aorta["non-contrast"] < 80 < aorta["delayed"] < aorta["portal-venous"]
    assert aorta["portal-venous"] < aorta["arterial"]
    assert aorta["arterial"] > 200
    assert 40 <= liver["non-contrast"] <= 75 < liver["portal-venous"]
    assert liver["arterial"] < liver["portal-venous"]
    assert pelvis["delayed"] > 150 > pelvis["portal-venous"]  # excreted contrast


def test_habitus_thin_to_obese():
    fat, width, visceral = [], [], []
    for h in (0.0, 1.0):
        ct, _, tissue = _fcase(habitus=h)
        t = tissue.array
        vox = np.prod(tissue.spacing) / 1000
        fat.append((t == TISSUES["subcutaneous_fat"]).sum() * vox)
        visceral.append((t == TISSUES["visceral_fat"]).sum() * vox)
        body = (t != TISSUES["air"]) & (t != TISSUES["table"])
        mid = np.zeros_like(body)
        mid[:, :, t.shape[2] // 2] = body[:, :, t.shape[2] // 2]
        width.append(np.ptp(_world(tissue, mid)[:, 0]))
    assert fat[1] > 3 * fat[0]
    assert visceral[1] > 1.15 * visceral[0]
    assert width[1] > 1.15 * width[0]


def test_arms_at_the_sides():
    _, _, up = _fcase()
    _, _, sides = _fcase(arms="sides")
    for tissue, n_parts in ((up, 1), (sides, 3)):
        t = tissue.array[:, :, tissue.shape[2] // 2]
        body = (t != TISSUES["air"]) & (t != TISSUES["table"])
        parts, n = ndimage.label(body)
        sizes = ndimage.sum_labels(body, parts, range(1, n + 1))
        assert (sizes > 50).sum() == n_parts  # trunk (+ two arms)
    # the field of view widened to hold the arms
    assert sides.spacing[0] > up.spacing[0]


def test_table():
    assert (_fcase()[2].array == TISSUES["table"]).any()
    assert not (_fcase(table=False)[2].array == TISSUES["table"]).any()


@pytest.mark.parametrize("noise", [6.0, 30.0])
def test_noise_level_is_honoured(noise):
    ct, _, tissue = _fcase(shape=(128, 128, 24), noise=noise)
    core = ndimage.binary_erosion(tissue.array == TISSUES["liver"], iterations=3)
    core &= ndimage.binary_erosion(core, iterations=1)
    sd = float(np.std(ct.array[core]))
    # texture of the liver adds a few HU to the noise
    assert noise * 0.85 <= sd <= np.hypot(noise, 8.0) * 1.15


def _lag1(ct, mask):
    a = ct.array.astype(float)
    m = mask[:-1] & mask[1:]
    x, y = a[:-1][m], a[1:][m]
    return float(np.corrcoef(x, y)[0, 1])


def test_kernel_smooth_to_sharp():
    """Smooth kernels give coarse-grained noise, sharp ones fine-grained noise
    and an overshoot at edges; the noise level stays the one asked for."""
    corr, sd = {}, {}
    grid = {"shape": (100, 100, 12), "spacing": (0.8, 0.8, 2.5)}
    for k in ("smooth", "standard", "sharp"):
        ct, _, tissue = _fcase(field_of_view="partial", kernel=k, noise=20.0, **grid)
        fat = ndimage.binary_erosion(
            tissue.array == TISSUES["visceral_fat"], iterations=3
        )
        corr[k] = _lag1(ct, fat)
        sd[k] = float(np.std(ct.array[fat]))
    assert corr["smooth"] > corr["standard"] > corr["sharp"]
    for k in sd:
        assert 15.0 <= sd[k] <= 26.0, sd


def test_streaks_from_bone_and_metal():
    grid = {"shape": (160, 160, 24), "spacing": (1.2, 1.2, 2.5)}
    none, _, tissue = _fcase(streaks="none", **grid)
    bone, _, _ = _fcase(streaks="bone", **grid)
    metal, _, t_metal = _fcase(streaks="metal", **grid)
    body = tissue.array != TISSUES["air"]
    diff = bone.array.astype(float) - none.array
    # dark bands: same noise realisation, so the difference is the streaks
    assert diff[body].mean() < 0 and (diff[body] < -10).mean() > 0.01
    assert (diff[body] > 10).mean() < 0.2 * (diff[body] < -10).mean()
    assert (t_metal.array == TISSUES["metal"]).any()
    assert metal.array.max() >= 3000
    k = int(np.argmax((metal.array >= 3000).sum(axis=(0, 1))))
    dm = metal.array[:, :, k].astype(float) - none.array[:, :, k]
    assert np.percentile(np.abs(dm[body[:, :, k]]), 95) > 30


def test_oral_contrast_in_the_bowel():
    plain, _, tissue = _fcase()
    oral, _, _ = _fcase(oral_contrast=True)
    for name in ("stomach_content", "bowel_content"):
        assert _median(plain, tissue, name) < 60
        assert _median(oral, tissue, name) > 120


def test_pancreas_variants():
    ref_ct, ref, _ = _fcase(shape=(96, 96, 24))
    fat_ct, fatty, _ = _fcase(shape=(96, 96, 24), pancreas_variant="fatty-atrophic")
    _, bulky, _ = _fcase(shape=(96, 96, 24), pancreas_variant="bulky-head")
    steat_ct, steat, _ = _fcase(shape=(96, 96, 24), pancreas_variant="fatty")
    v_ref, v_fat, v_bulky, v_steat = (
        _volume_ml(v) for v in (ref, fatty, bulky, steat)
    )
    assert v_fat < 0.7 * v_ref < v_ref < v_bulky
    # steatosis darkens the gland without shrinking it
    assert 0.8 * v_ref < v_steat < 1.25 * v_ref
    ref_hu = np.median(ref_ct.array[ref.array > 0])
    for ct, label in ((fat_ct, fatty), (steat_ct, steat)):
        assert np.median(ct.array[label.array > 0]) < ref_hu - 15

    def head_area(label):
        """Largest sagittal section (mm2) of the right third of the organ."""
        lab = label.array > 0
        per_x = lab.sum(axis=(1, 2)) * label.spacing[1] * label.spacing[2]
        xs = np.flatnonzero(per_x)  # axis 0 runs towards the patient's right
        right = xs[xs >= xs[0] + 2 * (xs[-1] - xs[0]) / 3]
        return per_x[right].max()

    assert head_area(bulky) > 1.4 * head_area(ref)


def test_fat_in_the_pancreas_mixes_by_volume():
    """Fat infiltrating the parenchyma pulls its HU towards fat's."""
    kw = {"shape": (64, 64, 16), "phase": "non-contrast"}
    ct, _, tissue = _fcase(**kw)
    typical = _median(ct, tissue, "pancreas", erode=1)
    fatty_ct, _, fatty_tissue = _fcase(pancreas_variant="fatty", **kw)
    fatty = _median(fatty_ct, fatty_tissue, "pancreas", erode=1)
    fat = _median(fatty_ct, fatty_tissue, "visceral_fat", erode=2)
    assert fat < fatty < typical - 10


@pytest.mark.parametrize("shift", [-15.0, 15.0])
def test_pancreas_shift(shift):
    _, ref, _ = _fcase(shape=(96, 96, 48))
    _, moved, _ = _fcase(shape=(96, 96, 48), pancreas_shift=shift)
    dz = (
        _world(moved, moved.array > 0)[:, 2].mean()
        - _world(ref, ref.array > 0)[:, 2].mean()
    )
    assert dz == pytest.approx(shift, abs=5.0)


def test_realistic_variation_varies_and_is_reproducible():
    kw = {"shape": (32, 32, 8), "variation": "realistic", "random_state": 5}
    cts, _ = make_phantom_cohort(4, **kw)
    again, _ = make_phantom_cohort(4, **kw)
    for a, b in zip(cts, again, strict=True):
        np.testing.assert_array_equal(a.array, b.array)
    # fields of view (z extent) differ from case to case
    z_mm = {round(ct.spacing[2] * ct.shape[2]) for ct in cts}
    assert len(z_mm) >= 3
    # fixing one factor leaves the others' draws alone
    fixed, _ = make_phantom_cohort(4, phase="arterial", **kw)
    for a, b in zip(cts, fixed, strict=True):
        np.testing.assert_array_equal(a.affine, b.affine)


def test_weighted_factors_are_drawn_with_their_weights_and_nothing_else_moves():
    kw = {"variation": "realistic", "random_state": 4}
    plain = phantom_factors(300, **kw)
    phases = {"non-contrast": 1, "arterial": 1, "portal-venous": 1, "delayed": 1}
    weighted = phantom_factors(
        300, phase=phases, pancreas_variant={"fatty": 3, "fatty-atrophic": 1}, **kw
    )
    share = {p: np.mean([c["phase"] == p for c in weighted]) for p in phases}
    assert all(0.18 < x < 0.32 for x in share.values()), share  # 0.25 each
    # plain: 15 % non-contrast, 10 % delayed
    assert np.mean([c["phase"] == "non-contrast" for c in plain]) < 0.22
    variants = [c["pancreas_variant"] for c in weighted]
    assert set(variants) == {"fatty", "fatty-atrophic"}  # left out: weight 0
    assert 0.65 < variants.count("fatty") / len(variants) < 0.85  # 0.75
    for a, b in zip(plain, weighted, strict=True):
        for name in a.keys() - {"phase", "pancreas_variant"}:
            assert a[name] == b[name], name
    # the rendered cases follow the weights (an unenhanced aorta), on the
    # grids of the unweighted cohort
    only = {"phase": {"non-contrast": 1}}
    cts, _ = make_phantom_cohort(3, shape=(32, 32, 8), **only, **kw)
    ref, _ = make_phantom_cohort(3, shape=(32, 32, 8), **kw)
    for a, b in zip(cts, ref, strict=True):
        np.testing.assert_array_equal(a.affine, b.affine)
    for i in range(3):
        ct, _, tissue = _make_case(
            _case_seed(_root_seed(4), i),
            (64, 64, 16),
            return_tissues=True,
            variation="realistic",
            factors=_check_factors(
                "realistic", **{**dict.fromkeys(_Factors._fields), **only}
            )[1],
        )
        assert _median(ct, tissue, "artery") < 80


def test_realistic_full_size_spacing_is_drawn():
    """Full-size realistic cases: in-plane 0.5-1.0 mm, slice 0.625-5 mm."""
    from pancreas.phantom._factors import _realistic_spacing

    rng = np.random.default_rng(0)
    draws = np.array([_realistic_spacing(rng, 400.0, 300.0) for _ in range(200)])
    assert 0.5 <= draws[:, 0].min() and draws[:, 0].max() <= 1.0
    assert draws[:, 0].max() - draws[:, 0].min() > 0.2
    assert set(np.unique(draws[:, 2])) >= {0.625, 1.0, 2.5, 5.0}
    # long scans get thicker slices (at most 700 slices)
    long = np.array([_realistic_spacing(rng, 400.0, 900.0)[2] for _ in range(50)])
    assert long.min() * 700 >= 900


def test_phantom_factors_say_how_each_case_was_made():
    kw = {"variation": "realistic", "random_state": 3}
    described = phantom_factors(12, **kw)  # case 11 is the first 'partial'
    assert len(described) == 12
    assert {d["phase"] for d in described[:6]} == {"portal-venous", "non-contrast"}
    cts, _ = make_phantom_cohort(12, shape=(32, 32, 8), **kw)
    # the described field of view is the one rendered: 'partial' is the
    # shortest, then the abdomen, abdomen-pelvis and chest-abdomen-pelvis
    z_mm = [ct.spacing[2] * ct.shape[2] for ct in cts]
    fovs = [d["field_of_view"] for d in described]
    assert {"partial", "abdomen", "abdomen-pelvis", "chest-abdomen-pelvis"} <= set(fovs)
    z_of = {f: [z for z, g in zip(z_mm, fovs, strict=True) if g == f] for f in fovs}
    assert max(z_of["partial"]) < min(z_of["abdomen"])
    assert max(z_of["abdomen"]) < min(z_of["abdomen-pelvis"])
    assert max(z_of["abdomen-pelvis"]) < min(z_of["chest-abdomen-pelvis"])
    # the described contrast phase is the one rendered
    for d, seed_case in zip(described[1:4], range(1, 4), strict=True):
        ct, _, tissue = _make_case(
            _case_seed(_root_seed(3), seed_case),
            (64, 64, 16),
            return_tissues=True,
            variation="realistic",
        )
        aorta = _median(ct, tissue, "artery")
        expected = {"non-contrast": (0, 80), "arterial": (200, 450)}
        lo, hi = expected.get(d["phase"], (80, 220))
        assert lo <= aorta <= hi, (d["phase"], aorta)
    fixed = phantom_factors(2, phase="delayed", random_state=0)
    assert [d["phase"] for d in fixed] == ["delayed", "delayed"]
    assert fixed[0]["habitus"] is None  # no variation: the default cohort's
    with pytest.raises(ValueError, match="random_state"):
        phantom_factors(2, random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="shape"):
        phantom_factors(2, shape=(32, 32, 8))
