"""Tests for pancreas.alignment: the HU-profile check of label alignment."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from pancreas.alignment import (
    ALIGNMENTS,
    HUProfile,
    LabelAlignmentError,
    align_label,
    apply_label_alignment,
    check_label_alignment,
    hu_profile,
    parse_label_alignment,
)
from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume


@pytest.fixture(scope="module")
def phantom():
    from pancreas.phantom import make_synthetic_ct

    return make_synthetic_ct(shape=(96, 96, 16), random_state=0)


def test_alignments_are_the_eight_symmetries_of_a_square():
    a = np.arange(9).reshape(3, 3, 1)
    results = {name: align_label(a, name) for name in ALIGNMENTS}
    assert len({r.tobytes() for r in results.values()}) == 8
    np.testing.assert_array_equal(results["as-is"], a)
    # transpose first, then flip
    np.testing.assert_array_equal(
        results["transpose-flip-y"], np.swapaxes(a, 0, 1)[:, ::-1]
    )
    for name in ("flip-x", "flip-y", "flip-xy", "transpose", "transpose-flip-xy"):
        np.testing.assert_array_equal(align_label(results[name], name), a)
    back = align_label(results["transpose-flip-x"], "transpose-flip-y")
    np.testing.assert_array_equal(back, a)
    with pytest.raises(ValueError, match="unknown label alignment 'rotate'"):
        align_label(a, "rotate")


def test_hu_profile_numbers():
    ct = np.concatenate([np.full(6, -1000.0), np.full(10, 50.0), np.full(4, 900.0)])
    mask = np.ones(ct.shape, bool)
    p = hu_profile(ct, mask)
    assert (p.median, p.below, p.above, p.n_voxels) == (50.0, 0.3, 0.2, 20)
    assert p.implausibility > 0.5
    soft = hu_profile(np.full(30, 80.0), np.ones(30, bool))
    assert soft.implausibility == 0.0
    assert str(soft) == "median 80 HU, IQR 0 HU, 0.0% < -200 HU, 0.0% > 300 HU"
    assert np.isnan(hu_profile(ct, np.zeros(ct.shape, bool)).median)


def test_right_label_passes_with_its_profile(phantom):
    ct, label = phantom
    check = check_label_alignment(ct, label, "case")
    assert check.alignment == "as-is" and check.note == ""
    assert list(check.profiles) == list(ALIGNMENTS)
    given = check.profiles["as-is"]
    assert 20 < given.median < 200 and given.iqr < 80
    lowest = min(p.implausibility for p in check.profiles.values())
    assert given.implausibility == lowest


@pytest.mark.parametrize("stored_as", ["flip-y", "transpose", "flip-xy"])
def test_misaligned_label_names_the_fitting_alignment(phantom, stored_as):
    ct, label = phantom
    stored = label.with_array(np.ascontiguousarray(align_label(label.array, stored_as)))
    with pytest.raises(LabelAlignmentError) as err:
        check_label_alignment(ct, stored, "case_7")
    message = str(err.value)
    assert message.startswith("case_7: the label does not look aligned")
    assert f"with the label {stored_as} it has median" in message
    assert "Inside the label as stored the CT has median" in message
    assert f"label_alignment={{'case_7': '{stored_as}'}}" in message
    assert f"--label-alignment case_7={stored_as}" in message
    assert "'as-is'" in message
    # applying it gives back the right label, now accepted
    fixed = check_label_alignment(ct, stored, "case_7", alignment=stored_as)
    assert fixed.alignment == stored_as
    assert fixed.profiles["as-is"].implausibility == 0.0
    # and the override accepts the label as stored
    assert check_label_alignment(ct, stored, "case_7", alignment="as-is").alignment == (
        "as-is"
    )


def test_label_fitting_no_alignment_is_refused(phantom):
    ct, label = phantom
    moved = np.zeros_like(label.array)
    moved[2:8, 2:8, 4:10] = 1  # the air in the corner of the field of view
    with pytest.raises(LabelAlignmentError, match="no in-plane flip or transpose"):
        check_label_alignment(ct, label.with_array(moved), "case_3")


def test_tiny_label_is_not_judged(phantom):
    ct, _ = phantom
    dot = np.zeros(ct.shape, np.uint8)
    dot[0, 0, 0] = 1
    check = check_label_alignment(ct, Volume(dot, ct.affine), "case")
    assert "not judged" in check.note


def test_apply_alignment_keeps_the_grid_and_refuses_non_square(phantom):
    ct, label = phantom
    from nibabel.orientations import axcodes2ornt, ornt_transform

    ras = nib.Nifti1Image(np.asarray(label.array), ct.affine)
    lps = ras.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("LPS")))
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    out = apply_label_alignment(lps, "flip-y", "case")
    np.testing.assert_allclose(out.affine, ct.affine, atol=1e-6)
    np.testing.assert_array_equal(out.array, np.asarray(label.array)[:, ::-1])
    narrow = Volume(np.zeros((4, 5, 2), np.uint8), np.eye(4))
    with pytest.raises(InvalidVolumeError, match="only square slices"):
        apply_label_alignment(narrow, "transpose", "case_2")


def test_parse_label_alignment():
    ids = ["a", "b", "c"]
    assert parse_label_alignment(None, ids) == ["check"] * 3
    assert parse_label_alignment("as-is", ids) == ["as-is"] * 3
    assert parse_label_alignment({"*": "as-is", "b": "flip-y"}, ids) == [
        "as-is",
        "flip-y",
        "as-is",
    ]
    with pytest.raises(ValueError, match="unknown option"):
        parse_label_alignment({"a": "mirror"}, ids)
    with pytest.raises(ValueError, match="not in the cohort: z"):
        parse_label_alignment({"z": "flip-y"}, ids)
    with pytest.raises(TypeError, match="mapping"):
        parse_label_alignment(3, ids)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label_alignment must be one of"):
        check_label_alignment(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), alignment="x")


def test_profile_is_a_value():
    p = HUProfile(90.0, 40.0, 0.0, 0.0, 100)
    assert p == HUProfile(90.0, 40.0, 0.0, 0.0, 100)
