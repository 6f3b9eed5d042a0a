"""CaseRecord: canonical orientation and the way back to each input's grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.record import as_records, check_labels, make_record

AFFINES = {
    "RAS": np.diag([0.7, 0.7, 2.0, 1.0]),
    "LPS": np.diag([-0.7, -0.7, 2.0, 1.0]),
    "LPI": np.diag([-0.7, -0.7, -2.0, 1.0]),
    # axes permuted: array axis 0 runs along S, axis 2 along R
    "SAR": np.array(
        [[0, 0, 0.8, -5], [0, 0.8, 0, 3], [2.5, 0, 0, 7], [0, 0, 0, 1]], float
    ),
}


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_canonical_round_trip(name, rng):
    affine = AFFINES[name]
    arr = rng.integers(-1000, 1000, (5, 6, 7)).astype(np.int16)
    rec = make_record(Volume(arr, affine, "scan.nii.gz"))
    # canonical affine is RAS+: positive diagonal, axis 2 = superior
    codes = nib.aff2axcodes(rec.volume.affine)
    assert codes == ("R", "A", "S")
    assert rec.volume.array.dtype == np.float32
    np.testing.assert_array_equal(rec.to_native(rec.volume.array), arr)
    # the same world point maps to the same value
    ijk = np.array([1, 2, 3])
    world = affine @ np.r_[ijk, 1]
    cijk = np.linalg.solve(rec.volume.affine, world)[:3].round().astype(int)
    assert rec.volume.array[tuple(cijk)] == arr[tuple(ijk)]
    assert rec.case_id == "scan.nii.gz"


def test_labels_are_checked_and_binarised(rng):
    affine = AFFINES["LPS"]
    arr = np.zeros((4, 5, 6), np.int16)
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[1, 2, 3] = 2  # MSD tumour counts as pancreas
    rec = make_record(Volume(arr, affine, "a"))
    out = check_labels([rec], [Volume(lab, affine)])[0]
    assert out.dtype == bool and out.sum() == 1
    np.testing.assert_array_equal(rec.to_native(out), lab > 0)
    with pytest.raises(InvalidVolumeError, match="a: label of shape"):
        rec.label_array(np.zeros((4, 5, 7)))
    with pytest.raises(InvalidVolumeError, match="a: label affine differs"):
        rec.label_array(Volume(lab, np.eye(4)))
    with pytest.raises(InvalidVolumeError, match="1 cases but y has 2"):
        check_labels([rec], [lab, lab])


def test_as_records_names_and_rejects_single_volume():
    vols = [np.zeros((3, 3, 3)), Volume(np.zeros((3, 3, 3)), source="b.nii")]
    recs = as_records(vols)
    assert [r.case_id for r in recs] == ["case_0", "b.nii"]
    assert as_records(recs)[0] is recs[0]
    with pytest.raises(InvalidVolumeError, match="wrap it in a list"):
        as_records(vols[1])
    with pytest.raises(InvalidVolumeError, match="must be 3D"):
        as_records([np.zeros((3, 3))])
