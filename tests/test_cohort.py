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


# ------------------------------------------- issue 14: folders and outputs
def test_find_cases_follows_symlinked_series_and_keeps_empty_case_folders(tmp_path):
    store = tmp_path / "store" / "series"
    _touch(store / "1.dcm")
    cohort = tmp_path / "cohort"
    (cohort / "linked" / "study").mkdir(parents=True)
    (cohort / "linked" / "study" / "series").symlink_to(store)
    (cohort / "empty").mkdir()
    _touch(cohort / "plain" / "s" / "1.dcm")
    (cohort / "plain" / "s" / "loop").symlink_to(cohort / "plain")  # a cycle
    assert find_cases([cohort]) == [
        ("empty", cohort / "empty"),
        ("linked", cohort / "linked" / "study" / "series"),
        ("plain", cohort / "plain" / "s"),
    ]
    # a case folder that is itself a link
    other = tmp_path / "other"
    other.mkdir()
    (other / "case9").symlink_to(store.parent)
    assert find_cases([other]) == [("case9", other / "case9" / "series")]


def test_check_output_folder_refuses_files_and_unwritable_folders(tmp_path):
    from pancreas.cohort import check_output_folder

    notes = _touch(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match=r"notes.txt is a file, not a folder"):
        check_output_folder(notes / "masks")
    with pytest.raises(ValueError, match=r"-o .*notes.txt is a file"):
        check_output_folder(notes, option="-o")
    # /proc refuses new files even to root, where chmod would not
    with pytest.raises(ValueError, match=r"/proc/self/masks: cannot be written"):
        check_output_folder("/proc/self/masks")
    assert check_output_folder(tmp_path / "a" / "b").is_dir()
    assert not list((tmp_path / "a" / "b").iterdir())  # the probe is removed


def _write_dicom_series(volume, folder):
    """Write a Volume (an axis-aligned RAS grid) as a real DICOM CT series."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    sx, sy, sz = np.diag(volume.affine)[:3]
    x0, y0, z0 = volume.affine[:3, 3]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = frame
        ds.Modality = "CT"
        ds.PatientID, ds.PatientName = "phantom", "Phantom^Case"
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20260101", "120000", "1"
        ds.SeriesNumber, ds.InstanceNumber = 3, k + 1
        # RAS +x/+y columns are LPS -x/-y: row and column directions (-1, -1)
        ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
        ds.ImagePositionPatient = [-x0, -y0, z0 + k * sz]
        ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]
        ds.SliceThickness = f"{sz:.6f}"
        pixels = np.ascontiguousarray(volume.array[:, :, k].T.astype(np.int16))
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"{k:03d}.dcm", enforce_file_format=True)
    return folder


@pytest.mark.slow
def test_segment_dicom_series_to_dicom_seg_and_proba_threshold(
    tiny_fitted, tiny_cohort, tmp_path
):
    pytest.importorskip("keras")
    pytest.importorskip("highdicom")
    import pydicom

    images, _ = tiny_cohort
    cohort = tmp_path / "in"
    series = _write_dicom_series(images[4], cohort / "case4" / "study" / "ct")
    (cohort / "empty_case").mkdir()
    np.testing.assert_allclose(load_volume(series).affine, images[4].affine, atol=1e-4)
    out = tmp_path / "out"
    result = segment_cohort(
        tiny_fitted, [cohort], out, proba=True, stats=True, dicom_seg=True,
        preview=True,
    )  # fmt: skip
    assert result.done == ["case4"]
    from matplotlib.image import imread

    picture = imread(out / "case4_preview.png")
    assert picture.ndim == 3 and picture.shape[1] > picture.shape[0] > 100
    # the empty case folder is listed with the reason, not left out
    assert list(result.failed) == ["empty_case"]
    assert "no DICOM image found" in result.failed["empty_case"]

    mask = np.asarray(nib.load(out / "case4.nii.gz").dataobj)
    assert mask.any()
    seg = pydicom.dcmread(out / "case4_seg.dcm")
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == (
        "Pancreas"
    )
    sources = {}
    for f in sorted(series.iterdir()):
        ds = pydicom.dcmread(f)
        sources[ds.SOPInstanceUID] = ds
    first = next(iter(sources.values()))
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    np.testing.assert_allclose(
        [float(v) for v in orientation.ImageOrientationPatient],
        [float(v) for v in first.ImageOrientationPatient],
    )
    frames = seg.pixel_array.reshape(-1, *seg.pixel_array.shape[-2:])
    covered = set()
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        uid = (
            group.DerivationImageSequence[0]
            .SourceImageSequence[0]
            .ReferencedSOPInstanceUID
        )
        source = sources[uid]  # each frame lies on its source slice
        np.testing.assert_allclose(
            [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in source.ImagePositionPatient],
        )
        k = int(source.InstanceNumber) - 1
        np.testing.assert_array_equal(frame, mask[:, :, k].T)
        covered.add(k)
    # slices without a frame hold no pancreas in the NIfTI mask either
    for k in set(range(mask.shape[2])) - covered:
        assert not mask[:, :, k].any()
    assert covered == {k for k in range(mask.shape[2]) if mask[:, :, k].any()}

    # the probability map says which threshold gives the mask (item 5)
    threshold = tiny_fitted.steps[-1][1].threshold_
    proba_img = nib.load(out / "case4_proba.nii.gz")
    descrip = proba_img.header["descrip"].item().decode()
    assert f"mask = proba > {threshold:.4f}" in descrip and "not 0.5" in descrip
    proba = np.asarray(proba_img.dataobj)
    np.testing.assert_array_equal(proba > float(descrip.split("> ")[1][:6]), mask)
    stats = json.loads((out / "case4.json").read_text())
    assert stats["proba"]["threshold"] == pytest.approx(threshold)
    assert stats["proba"]["file"] == "case4_proba.nii.gz"


def test_segment_cohort_refuses_before_any_case(tiny_fitted, tiny_cohort, tmp_path):
    pytest.importorskip("keras")
    images, _ = tiny_cohort
    inputs = _write_cases(tmp_path / "in", images, [4])
    notes = _touch(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        segment_cohort(tiny_fitted, inputs, notes / "out")
    with pytest.raises(ValueError, match="needs DICOM series inputs"):
        segment_cohort(tiny_fitted, inputs, tmp_path / "out", dicom_seg=True)
    assert not (tmp_path / "out").exists()


def test_write_dicom_seg_refuses_what_a_seg_cannot_reference(shared_data, tmp_path):
    pytest.importorskip("highdicom")
    from pancreas.dicom_seg import write_dicom_seg

    # this public series was de-identified with its Study and Series UIDs
    # blanked: a SEG could not point at it, so none is written
    series = shared_data / "totalseg_case2_dicom"
    mask = np.zeros((512, 512, 20), np.uint8)
    with pytest.raises(ValueError, match="StudyInstanceUID, SeriesInstanceUID empty"):
        write_dicom_seg(mask, series, tmp_path / "seg.dcm")
    with pytest.raises(ValueError, match=r"mask of shape \(512, 512, 19\)"):
        write_dicom_seg(mask[:, :, 1:], series, tmp_path / "seg.dcm")
    assert not list(tmp_path.iterdir())
