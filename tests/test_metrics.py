"""Tests for pancreas.metrics: hand-computed cases, conventions and properties."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from scipy.spatial.distance import cdist

import pancreas.metrics as metrics
from pancreas.metrics import (
    average_symmetric_surface_distance,
    dice_score,
    evaluate_segmentation,
    hausdorff_distance_95,
    jaccard_score,
    precision_score,
    recall_score,
    surface_dice,
)

ALL_FUNCS = [
    dice_score,
    jaccard_score,
    precision_score,
    recall_score,
    hausdorff_distance_95,
    average_symmetric_surface_distance,
    surface_dice,
    evaluate_segmentation,
]
SPACING_FUNCS = [
    hausdorff_distance_95,
    average_symmetric_surface_distance,
    surface_dice,
    evaluate_segmentation,
]
KEYS = {"dice", "jaccard", "precision", "recall", "hd95", "assd", "surface_dice"}


def planes(shape=(10, 5, 6), at=(2, 5)):
    """Two full planes perpendicular to axis 0 at the given indices."""
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[at[0]] = True
    b[at[1]] = True
    return a, b


# --------------------------------------------------------------------------- #
# Overlap: hand-computed
# --------------------------------------------------------------------------- #
def test_overlap_1d_boxes():
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0, 0, 1, 1, 1, 1, 0, 0])
    assert dice_score(t, p) == 0.5
    assert jaccard_score(t, p) == pytest.approx(1 / 3)
    assert precision_score(t, p) == 0.5
    assert recall_score(t, p) == 0.5


def test_overlap_2d_boxes_unequal_sizes():
    t = np.zeros((8, 8), int)
    p = np.zeros((8, 8), int)
    t[0:4, 0:4] = 1  # 16 voxels
    p[2:4, 0:6] = 1  # 12 voxels, 8 shared
    assert dice_score(t, p) == pytest.approx(16 / 28)
    assert jaccard_score(t, p) == pytest.approx(8 / 20)
    assert precision_score(t, p) == pytest.approx(8 / 12)
    assert recall_score(t, p) == pytest.approx(8 / 16)


def test_nonzero_labels_are_foreground():
    t = np.array([[0, 2], [1, 0]])
    p = np.array([[0, 1], [7, 0]], dtype=np.uint8)
    assert dice_score(t, p) == 1.0
    assert hausdorff_distance_95(t, p) == 0.0


# --------------------------------------------------------------------------- #
# Surface distances: hand-computed
# --------------------------------------------------------------------------- #
def test_parallel_planes_with_spacing():
    a, b = planes()
    assert hausdorff_distance_95(a, b, spacing=(2.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert average_symmetric_surface_distance(
        a, b, spacing=(2.0, 1.0, 1.0)
    ) == pytest.approx(6.0)


def test_anisotropic_spacing_changes_one_axis_only():
    a, b = planes()
    # Spacing along the in-plane axes does not matter for parallel planes.
    assert hausdorff_distance_95(a, b, spacing=(1.0, 0.3, 7.0)) == pytest.approx(3.0)
    assert hausdorff_distance_95(a, b, spacing=(0.5, 1.0, 1.0)) == pytest.approx(1.5)
    # Two single voxels offset by (3, 4, 0): distance sqrt((3 s0)^2 + (4 s1)^2).
    t = np.zeros((5, 5, 2), bool)
    p = np.zeros((5, 5, 2), bool)
    t[0, 0, 0] = True
    p[3, 4, 0] = True
    assert hausdorff_distance_95(t, p) == pytest.approx(5.0)
    assert hausdorff_distance_95(t, p, spacing=(2.0, 1.0, 9.0)) == pytest.approx(
        math.sqrt(36 + 16)
    )
    assert hausdorff_distance_95(t, p, spacing=(1.0, 2.0, 9.0)) == pytest.approx(
        math.sqrt(9 + 64)
    )


def test_1d_segments_hand_computed():
    # Surfaces are the end points: {2, 7} and {2, 9}; pooled distances [0, 2, 0, 2].
    t = np.zeros(12, bool)
    p = np.zeros(12, bool)
    t[2:8] = True
    p[2:10] = True
    assert hausdorff_distance_95(t, p) == pytest.approx(2.0)
    assert average_symmetric_surface_distance(t, p) == pytest.approx(1.0)
    assert surface_dice(t, p, tolerance=1.0) == 0.5
    assert surface_dice(t, p, tolerance=2.0) == 1.0
    assert average_symmetric_surface_distance(t, p, spacing=(0.5,)) == pytest.approx(
        0.5
    )


def test_mask_touching_array_edge_has_surface():
    # A full 3x3x3 mask is all surface but its centre (border_value=0).
    full = np.ones((3, 3, 3), bool)
    centre = np.zeros((3, 3, 3), bool)
    centre[1, 1, 1] = True
    # centre -> full surface: 1; 26 full-surface voxels -> centre: 6x1, 12x√2, 8x√3.
    expected = (1 + 6 + 12 * math.sqrt(2) + 8 * math.sqrt(3)) / 27
    assert average_symmetric_surface_distance(full, centre) == pytest.approx(expected)
    assert hausdorff_distance_95(full, full) == 0.0


def test_hd95_is_a_pooled_percentile_not_the_maximum():
    t = np.zeros((12, 14), bool)
    t[3:7, 3:7] = True
    p = t.copy()
    p[4, 7:11] = True  # a spike 4 voxels long
    # Surfaces: t has 12 voxels, p has 15 ((4, 6) becomes interior). Pooled
    # distances (27): 22 zeros, (4, 6) -> 1, spike -> 1, 2, 3, 4.
    # 95th percentile: position 0.95 * 26 = 24.7 -> 2 + 0.7 * (3 - 2) = 2.7.
    assert hausdorff_distance_95(t, p) == pytest.approx(2.7)
    assert average_symmetric_surface_distance(t, p) == pytest.approx(11 / 27)


def test_surface_dice_tolerance_just_below_and_above_offset():
    a, b = planes()
    spacing = (2.0, 1.0, 1.0)  # planes 6 mm apart
    assert surface_dice(a, b, spacing=spacing, tolerance=5.999) < 1.0
    assert surface_dice(a, b, spacing=spacing, tolerance=5.999) == 0.0
    assert surface_dice(a, b, spacing=spacing, tolerance=6.001) == 1.0


def test_surface_dice_partial():
    t = np.zeros((10, 10), bool)
    t[2:6, 2:6] = True
    p = np.zeros((10, 10), bool)
    p[2:6, 2:8] = True
    sd = surface_dice(t, p, tolerance=1.0)
    assert 0.0 < sd < 1.0
    assert surface_dice(t, p, tolerance=2.0) == 1.0


def test_crop_gives_same_result_as_small_array(monkeypatch):
    small_t = np.zeros((6, 7, 8), bool)
    small_p = np.zeros((6, 7, 8), bool)
    small_t[1:4, 2:5, 1:6] = True
    small_p[2:5, 1:6, 2:7] = True
    big_t = np.zeros((120, 130, 60), bool)
    big_p = np.zeros((120, 130, 60), bool)
    big_t[50:56, 60:67, 20:28] = small_t
    big_p[50:56, 60:67, 20:28] = small_p
    spacing = (0.7, 0.7, 2.5)

    shapes = []
    edt = ndimage.distance_transform_edt

    def spy(arr, *args, **kwargs):
        shapes.append(arr.shape)
        return edt(arr, *args, **kwargs)

    monkeypatch.setattr(metrics.ndimage, "distance_transform_edt", spy)
    big = evaluate_segmentation(big_t, big_p, spacing=spacing)
    # Union bounding box (4, 5, 6) padded by one voxel on each side.
    assert shapes == [(6, 7, 8), (6, 7, 8)]
    small = evaluate_segmentation(small_t, small_p, spacing=spacing)
    assert big == pytest.approx(small)


# --------------------------------------------------------------------------- #
# Empty masks
# --------------------------------------------------------------------------- #
def test_both_empty():
    z = np.zeros((4, 5, 6), bool)
    assert evaluate_segmentation(z, z) == {
        "dice": 1.0,
        "jaccard": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "hd95": 0.0,
        "assd": 0.0,
        "surface_dice": 1.0,
    }


def test_prediction_empty():
    t = np.zeros((4, 5, 6), bool)
    t[1:3, 1:3, 1:3] = True
    p = np.zeros_like(t)
    scores = evaluate_segmentation(t, p)
    assert scores["dice"] == 0.0
    assert scores["jaccard"] == 0.0
    assert scores["precision"] == 0.0  # nothing predicted, something missed
    assert scores["recall"] == 0.0
    assert scores["hd95"] == math.inf
    assert scores["assd"] == math.inf
    assert scores["surface_dice"] == 0.0


def test_truth_empty():
    p = np.zeros((4, 5, 6), bool)
    p[1:3, 1:3, 1:3] = True
    t = np.zeros_like(p)
    assert precision_score(t, p) == 0.0
    assert recall_score(t, p) == 0.0  # nothing to find, but false positives
    assert dice_score(t, p) == 0.0
    assert jaccard_score(t, p) == 0.0
    assert hausdorff_distance_95(t, p) == math.inf
    assert average_symmetric_surface_distance(t, p) == math.inf
    assert surface_dice(t, p) == 0.0


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("func", ALL_FUNCS)
def test_shape_mismatch_names_both_shapes(func):
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        func(np.zeros((3, 4)), np.zeros((3, 5)))


@pytest.mark.parametrize("func", SPACING_FUNCS)
@pytest.mark.parametrize(
    "spacing",
    [
        (1.0, 1.0),
        (1.0, 1.0, 1.0, 1.0),
        (1.0, 0.0, 1.0),
        (1.0, -2.0, 1.0),
        (1.0, float("nan"), 1.0),
        (float("inf"), 1.0, 1.0),
    ],
)
def test_bad_spacing(func, spacing):
    a = np.ones((2, 3, 4), bool)
    with pytest.raises(ValueError, match="spacing"):
        func(a, a, spacing=spacing)


@pytest.mark.parametrize("tolerance", [-1.0, float("nan"), float("inf")])
def test_bad_tolerance(tolerance):
    a = np.ones((2, 3, 4), bool)
    with pytest.raises(ValueError, match="tolerance"):
        surface_dice(a, a, tolerance=tolerance)


def test_evaluate_matches_individual_functions():
    rng = np.random.default_rng(0)
    t = rng.random((6, 7, 8)) > 0.6
    p = rng.random((6, 7, 8)) > 0.6
    spacing = (2.5, 0.8, 0.8)
    scores = evaluate_segmentation(t, p, spacing=spacing, tolerance=1.5)
    assert set(scores) == KEYS
    assert all(type(v) is float for v in scores.values())
    assert scores["dice"] == dice_score(t, p)
    assert scores["jaccard"] == jaccard_score(t, p)
    assert scores["precision"] == precision_score(t, p)
    assert scores["recall"] == recall_score(t, p)
    assert scores["hd95"] == hausdorff_distance_95(t, p, spacing)
    assert scores["assd"] == average_symmetric_surface_distance(t, p, spacing)
    assert scores["surface_dice"] == surface_dice(t, p, spacing, tolerance=1.5)


def test_docstring_examples_run():
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #
@st.composite
def mask_pairs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=3, max_size=3)))
    a = draw(arrays(bool, shape))
    b = draw(arrays(bool, shape))
    return a, b


spacings = st.tuples(*[st.floats(0.1, 5.0)] * 3)


def brute_force_distances(t, p, spacing):
    """Pooled surface distances from all pairs of surface voxel centres."""

    def surface(m):
        s = ndimage.generate_binary_structure(m.ndim, 1)
        return m ^ ndimage.binary_erosion(m, s, border_value=0)

    pt = np.argwhere(surface(t)) * np.asarray(spacing)
    pp = np.argwhere(surface(p)) * np.asarray(spacing)
    d = cdist(pp, pt)
    return np.concatenate([d.min(axis=1), d.min(axis=0)])


@settings(max_examples=50, deadline=None)
@given(mask_pairs(), spacings)
def test_property_symmetry(pair, spacing):
    a, b = pair
    ab = evaluate_segmentation(a, b, spacing=spacing)
    ba = evaluate_segmentation(b, a, spacing=spacing)
    for key in ("dice", "jaccard", "hd95", "assd", "surface_dice"):
        assert ab[key] == ba[key], key
    assert ab["precision"] == ba["recall"]


@settings(max_examples=50, deadline=None)
@given(mask_pairs())
def test_property_bounds(pair):
    a, b = pair
    s = evaluate_segmentation(a, b)
    for key in ("dice", "jaccard", "precision", "recall", "surface_dice"):
        assert 0.0 <= s[key] <= 1.0, key
    assert s["jaccard"] <= s["dice"] + 1e-12
    assert s["dice"] == pytest.approx(2 * s["jaccard"] / (1 + s["jaccard"]))
    assert s["hd95"] >= 0.0
    assert s["assd"] >= 0.0


@settings(max_examples=50, deadline=None)
@given(mask_pairs(), spacings)
def test_property_identity(pair, spacing):
    a, _ = pair
    s = evaluate_segmentation(a, a, spacing=spacing)
    assert s["dice"] == 1.0
    assert s["jaccard"] == 1.0
    assert s["hd95"] == 0.0
    assert s["assd"] == 0.0
    assert s["surface_dice"] == 1.0


@settings(max_examples=50, deadline=None)
@given(mask_pairs(), spacings, st.floats(0.1, 10.0))
def test_property_distances_scale_linearly(pair, spacing, c):
    a, b = pair
    scaled = tuple(c * s for s in spacing)
    for func in (hausdorff_distance_95, average_symmetric_surface_distance):
        d, d_scaled = func(a, b, spacing), func(a, b, scaled)
        assert math.isclose(d_scaled, c * d, rel_tol=1e-9, abs_tol=1e-12), func


@settings(max_examples=50, deadline=None)
@given(mask_pairs(), spacings)
def test_property_matches_brute_force(pair, spacing):
    a, b = pair
    if not (a.any() and b.any()):
        return
    pooled = brute_force_distances(a, b, spacing)
    assert hausdorff_distance_95(a, b, spacing) == pytest.approx(
        np.percentile(pooled, 95)
    )
    assert average_symmetric_surface_distance(a, b, spacing) == pytest.approx(
        pooled.mean()
    )
