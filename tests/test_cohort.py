"""Cohort segmentation: inputs found, outputs in each input's grid, resume, failures."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from pancreas._checks import outside_training_range
from pancreas.cohort import (
    CohortResult,
    find_cases,
    organ_statistics,
    output_paths,
    segment_cohort,
)
from pancreas.exceptions import DatasetLayoutError
from pancreas.io import Volume, load_volume, save_volume


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _two_series(folder):
    _touch(folder / "c" / "P1" / "s1" / "1.dcm")
    _touch(folder / "c" / "P1" / "s2" / "1.dcm")
    return folder / "c"


# ------------------------------------------------------------- find_cases
def test_find_cases_nifti_files_folders_and_nih_tree(tmp_path):
    a = _touch(tmp_path / "a_0000.nii.gz")
    series = tmp_path / "ct_series"
    _touch(series / "1.dcm")
    _touch(series / "2.dcm")
    nih = tmp_path / "nih"
    _touch(nih / "PANCREAS_0002" / "study" / "series" / "1-001.dcm")
    _touch(nih / "PANCREAS_0001" / "study" / "series" / "1-001.dcm")
    _touch(nih / ".hidden" / "x.dcm")
    cases = find_cases([a, series, nih])
    assert cases == [
        ("a", a),
        ("ct_series", series),
        ("PANCREAS_0001", nih / "PANCREAS_0001" / "study" / "series"),
        ("PANCREAS_0002", nih / "PANCREAS_0002" / "study" / "series"),
    ]
    folder = tmp_path / "cohort"
    for name in ["c10.nii", "c2.nii.gz", "readme.txt"]:
        _touch(folder / name)
    assert [c for c, _ in find_cases([folder])] == ["c10", "c2"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: [d / "missing.nii.gz"], "no such file"),
        (lambda d: [_touch(d / "notes.txt")], "not a NIfTI"),
        (lambda d: [(d / "empty").mkdir() or d / "empty"], "no NIfTI file"),
        (
            lambda d: [_touch(d / "x" / "a.nii.gz"), _touch(d / "y" / "a.nii")],
            "given twice",
        ),
        (lambda d: [_two_series(d)], "in 2 folders"),
    ],
    ids=["missing", "not-nifti", "empty-folder", "duplicate-id", "two-series"],
)
def test_find_cases_refuses_bad_inputs(tmp_path, make, match):
    with pytest.raises(DatasetLayoutError, match=match):
        find_cases(make(tmp_path))


def test_output_paths_and_statistics(tmp_path):
    out = output_paths(tmp_path, "c1", proba=True, stats=True)
    assert [p.name for p in out.paths] == ["c1.nii.gz", "c1_proba.nii.gz", "c1.json"]
    assert not out.complete()
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 1:4, 2:5] = 1
    image = np.where(mask, 50.0, -100.0)
    image[1, 1, 2] = 80.0
    stats = organ_statistics(mask, image, (0.5, 0.5, 2.0))
    assert stats["n_voxels"] == 18
    assert stats["volume_ml"] == pytest.approx(18 * 0.5 / 1000, abs=1e-3)
    assert stats["mean_hu"] == pytest.approx((17 * 50 + 80) / 18, abs=0.01)
    assert stats["median_hu"] == 50.0
    empty = organ_statistics(np.zeros_like(mask), image, (1, 1, 1))
    assert empty["volume_ml"] == 0 and empty["mean_hu"] is None
    assert not CohortResult(failed={"x": "boom"}).ok


# ---------------------------------------------------------- segment_cohort
def _write_cases(folder, images, indices, *, flip=False):
    paths = []
    for i in indices:
        vol = images[i]
        if flip:  # store the scan left-right flipped (an LAS file)
            f = np.diag([-1.0, 1.0, 1.0, 1.0])
            f[0, 3] = vol.shape[0] - 1
            vol = Volume(vol.array[::-1].copy(), vol.affine @ f, vol.source)
        paths.append(save_volume(vol, folder / f"case{i}_0000.nii.gz", dtype=np.int16))
    return paths


@pytest.mark.slow
def test_segment_cohort_writes_each_case_in_its_own_grid(
    tiny_fitted, tiny_cohort, tmp_path
):
    pytest.importorskip("keras")
    images, _ = tiny_cohort
    inputs = _write_cases(tmp_path / "in", images, [4], flip=True)
    out = tmp_path / "out"
    result = segment_cohort(tiny_fitted, [tmp_path / "in"], out, proba=True, stats=True)
    assert result.done == ["case4"] and result.ok and not result.skipped
    src = nib.load(inputs[0])
    mask_img = nib.load(out / "case4.nii.gz")
    proba_img = nib.load(out / "case4_proba.nii.gz")
    np.testing.assert_allclose(mask_img.affine, src.affine, atol=1e-5)
    np.testing.assert_allclose(proba_img.affine, src.affine, atol=1e-5)
    assert mask_img.get_data_dtype() == np.uint8
    assert proba_img.get_data_dtype() == np.float32
    # identical to the in-memory pipeline on the same (flipped) scan
    vol = load_volume(inputs[0])
    expected_proba = tiny_fitted.predict_proba([vol])[0]
    expected_mask = tiny_fitted.predict([vol])[0]
    np.testing.assert_array_equal(np.asarray(mask_img.dataobj), expected_mask)
    np.testing.assert_allclose(np.asarray(proba_img.dataobj), expected_proba, atol=1e-6)
    stats = json.loads((out / "case4.json").read_text())
    assert stats == result.stats["case4"]
    assert stats["n_voxels"] == int(expected_mask.sum())
    assert stats["shape"] == list(vol.shape)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_segment_cohort_resumes_and_reports_failures(
    tiny_fitted, tiny_cohort, tmp_path
):
    pytest.importorskip("keras")
    images, _ = tiny_cohort
    folder = tmp_path / "in"
    _write_cases(folder, images, [3, 4])
    good = (folder / "case3_0000.nii.gz").read_bytes()
    (folder / "broken.nii.gz").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out"
    first = segment_cohort(tiny_fitted, [folder], out)
    assert sorted(first.done) == ["case3", "case4"]
    assert list(first.failed) == ["broken"]
    assert "broken.nii.gz" in first.failed["broken"]
    assert not (out / "broken.nii.gz").exists()
    before = (out / "case3.nii.gz").read_bytes()

    # a killed run left a temporary file and case4 half done (no mask yet)
    stale = out / ".case4.nii.gz.12345.deadbeef.tmp"
    stale.write_bytes(b"partial")
    (out / "case4.nii.gz").unlink()
    second = segment_cohort(tiny_fitted, [folder], out)
    assert second.skipped == ["case3"] and second.done == ["case4"]
    assert not stale.exists()
    assert (out / "case3.nii.gz").read_bytes() == before
    again = segment_cohort(tiny_fitted, [folder], out, overwrite=True)
    assert sorted(again.done) == ["case3", "case4"]
    assert (out / "case3.nii.gz").read_bytes() == before  # deterministic


@pytest.mark.slow
def test_segment_cohort_reports_empty_masks(tiny_fitted, tiny_cohort, tmp_path, caplog):
    pytest.importorskip("keras")
    images, _ = tiny_cohort
    folder = tmp_path / "in"
    _write_cases(folder, images, [4])
    air = Volume(np.full(images[4].shape, -1000, np.int16), images[4].affine, "air")
    save_volume(air, folder / "air.nii.gz")
    with caplog.at_level("WARNING", logger="pancreas"):
        result = segment_cohort(tiny_fitted, [folder], tmp_path / "out")
    assert result.ok and sorted(result.done) == ["air", "case4"]
    assert result.empty == ["air"]  # a result, not a failure
    assert not np.asarray(nib.load(tmp_path / "out" / "air.nii.gz").dataobj).any()
    assert np.asarray(nib.load(tmp_path / "out" / "case4.nii.gz").dataobj).any()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("air: empty segmentation") for m in warnings), warnings
    assert not any("case4" in m for m in warnings)


def test_outside_training_range_tolerance_and_missing_summaries():
    training = {"spacing_min": [0.6, 0.6, 1.0], "spacing_max": [0.8, 0.8, 2.0]}
    assert outside_training_range((0.6, 0.8, 1.5), training, "c") is None
    # 25 % margin on either side of the range, per axis
    assert outside_training_range((0.48, 1.0, 0.8), training, "c") is None
    note = outside_training_range((0.7, 0.7, 2.6), training, "c")
    assert note.startswith("c: voxel spacing 0.7 x 0.7 x 2.6 mm is outside")
    assert "0.6-0.8 x 0.6-0.8 x 1-2 mm" in note
    assert outside_training_range((0.47, 0.7, 1.5), training, "c") is not None
    assert outside_training_range((0.7, 0.7, 2.6), training, "c", tolerance=0.5) is None
    assert outside_training_range((9, 9, 9), None, "c") is None
    assert outside_training_range((9, 9, 9), {"n_cases": 3}, "c") is None


@pytest.mark.slow
def test_segment_cohort_notes_cases_unlike_the_training_data(
    tiny_fitted, tiny_cohort, tmp_path, caplog
):
    pytest.importorskip("keras")
    from pancreas.persistence import cohort_summary

    images, _ = tiny_cohort
    training = cohort_summary(images[:3])  # what tiny_fitted was trained on
    folder = tmp_path / "in"
    _write_cases(folder, images, [4])
    vol = images[4]
    coarse = Volume(vol.array, vol.affine @ np.diag([3.0, 3.0, 1.0, 1.0]), "coarse")
    save_volume(coarse, folder / "coarse.nii.gz")
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="pancreas"):
        result = segment_cohort(
            tiny_fitted, [folder], out, stats=True, training=training
        )
    assert result.ok and sorted(result.done) == ["case4", "coarse"]
    assert list(result.outside_training) == ["coarse"]
    note = result.outside_training["coarse"]
    assert note.startswith("coarse: voxel spacing") and "training range" in note
    assert (
        json.loads((out / "coarse.json").read_text())["outside_training_range"] == note
    )
    assert "outside_training_range" not in json.loads((out / "case4.json").read_text())
    assert note in [r.getMessage() for r in caplog.records]
    # without a training summary nothing is checked
    again = segment_cohort(tiny_fitted, [folder], out, overwrite=True)
    assert not again.outside_training


@pytest.mark.slow
def test_segment_real_dicom_series_keeps_its_affine(tiny_fitted, shared_data, tmp_path):
    pytest.importorskip("keras")
    series = shared_data / "totalseg_case2_dicom"
    result = segment_cohort(tiny_fitted, [series], tmp_path, stats=True)
    assert result.ok, result.failed
    ct = load_volume(series)
    mask = nib.load(tmp_path / "totalseg_case2_dicom.nii.gz")
    assert mask.shape == ct.shape == (512, 512, 20)
    np.testing.assert_allclose(mask.affine, ct.affine, atol=1e-4)
    assert nib.aff2axcodes(mask.affine) == nib.aff2axcodes(ct.affine)
    assert result.stats["totalseg_case2_dicom"]["spacing"] == pytest.approx(
        [0.977, 0.977, 2.0], abs=1e-3
    )
