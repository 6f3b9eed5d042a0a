"""The catalogue of bad inputs: each one is refused with a clear error.

A CAD system that silently segments a flipped scan, a 0-255 PNG stack or a
truncated file is worse than one that refuses. Every error names the case or
file, says what is wrong and what to do. The catalogue (item -> what is
raised; every class is in :mod:`pancreas.exceptions` unless noted):

1. Not 3D: a 2D slice, a 4D array, a 2D or 5D NIfTI file, ``X`` given as one
   3D array -> ``InvalidVolumeError``. (A 4D NIfTI file or image whose last
   axis has length 1 is squeezed to 3D and accepted.)
2. NaN or infinite voxels, also float64 values that overflow float32 ->
   ``InvalidVolumeError``.
3. A bool, complex or non-numeric CT (array or NIfTI file) ->
   ``InvalidVolumeError``.
4. An empty volume (size 0; array or NIfTI file) -> ``InvalidVolumeError``.
5. A constant volume -> ``InvalidVolumeError`` (an all-air volume is
   accepted: it has no body, so no superpixels and an empty segmentation).
6. Intensities that are not Hounsfield units: a 0-255 stack, raw 0-4095
   stored values (also padded with -2000), an image scaled to [0, 1] ->
   ``InvalidVolumeError``, naming the override ``check_hu=False`` /
   ``superpixels__check_hu=False`` / ``--no-hu-check``.
7. Image and label of different shapes -> ``InvalidVolumeError``.
8. Image and label of the same shape but different affines (flipped or
   shifted; label as Volume, nibabel image, ``str`` or ``Path``) ->
   ``InvalidVolumeError``.
9. Label values other than 0, 1, 2 (3, 255, negative, fractional, NaN, a
   multi-organ label map such as TotalSegmentator's) ->
   ``InvalidVolumeError`` naming the offending values.
10. A training set with no pancreas at all -> ``InvalidVolumeError`` at
    ``RFCascade.fit`` (the first step fitted with labels).
11. A volume too small to segment (axial slices under 8 x 8 voxels, e.g.
    3 x 3 x 1) -> ``InvalidVolumeError``.
12. A broken affine (NaN, singular, implausible voxel size) ->
    ``InvalidVolumeError``.
13. Extreme spacing (pixels over 3 mm, slices more than 10 mm apart) ->
    ``SpacingWarning`` (a warning, not an error).
14. A truncated or corrupt ``.nii.gz``, a missing file, an unknown format ->
    ``VolumeFileError``.
15. A DICOM folder with mixed series, missing slices, a non-CT modality or no
    images -> ``DicomSeriesError``.
16. An empty dataset folder (NIfTI folder, NIH Pancreas-CT, MSD) ->
    ``DatasetLayoutError``.
17. Predicting before fitting -> scikit-learn's ``NotFittedError`` for
    each of the four estimators and the Pipeline.

Seventeen items; the tests below are named ``test_<nn>_...`` after them.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from pancreas.cascade import RFCascade
from pancreas.convnet import SuperpixelConvNet
from pancreas.datasets import load_msd_pancreas, load_nifti_folder, load_nih_pancreas
from pancreas.exceptions import (
    DatasetLayoutError,
    DicomSeriesError,
    InvalidVolumeError,
    PancreasWarning,
    SpacingWarning,
    VolumeFileError,
)
from pancreas.io import Volume, as_volume, load_volume, save_volume
from pancreas.pipeline import make_pipeline
from pancreas.record import as_records, check_labels, make_record
from pancreas.refine import GaussianRefiner
from pancreas.superpixels import SuperpixelGenerator


def _load_helpers(name: str):
    """Import a sibling test module by path (tests/ is not a package)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_bad_inputs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_io = _load_helpers("test_io")
make_series = _io.make_series

AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])


def hu_ct(shape=(24, 24, 3), affine=AFFINE, name="case_07", seed=0) -> Volume:
    """A tiny CT in HU: air around a body of fat and soft tissue."""
    rng = np.random.default_rng(seed)
    hu = np.full(shape, -1000.0)
    hu[2:-2, 2:-2] = -100.0
    hu[5:-5, 5:-5] = 40.0
    hu += rng.normal(0, 5, shape)
    return Volume(hu.astype(np.int16), affine, name)


def label_for(ct: Volume) -> Volume:
    lab = np.zeros(ct.shape, np.uint8)
    lab[8:12, 8:12] = 1
    return Volume(lab, ct.affine.copy(), None)


def refused(exc_type, func, *patterns):
    """Call ``func``, expect ``exc_type``; each regex must be in the message."""
    with pytest.raises(exc_type) as info:
        func()
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    # the style: "<case or file>: <what is wrong>; <what to do>"
    assert ": " in message and ";" in message, message
    return message


# --------------------------------------------------------------------------- #
# 1. not 3D
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("shape", "hint"),
    [((24, 24), r"add an axis"), ((24, 24, 3, 2), r"one 3D volume per case")],
    ids=["2d_slice", "4d_array"],
)
def test_01_not_3d_array(shape, hint):
    refused(
        InvalidVolumeError,
        lambda: make_record(np.zeros(shape, np.int16), "case_07"),
        r"^case_07: ",
        r"must be 3D",
        re.escape(str(shape)),
        hint,
    )


@pytest.mark.parametrize("shape", [(6, 7), (2, 3, 4, 2), (2, 3, 4, 1, 2)])
def test_01_not_3d_nifti(tmp_path, shape):
    path = tmp_path / "case_07.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, np.int16), np.eye(4)), path)
    refused(
        InvalidVolumeError,
        lambda: load_volume(path),
        re.escape(str(path)),
        r"must be 3D",
        r"extract one 3D volume",
    )


def test_01_4d_nifti_with_trailing_singleton_is_squeezed(tmp_path):
    """Documented choice: NIfTI stores a 3D volume so when its 4th axis is 1."""
    raw = hu_ct().array[..., None]
    img = nib.Nifti1Image(raw, AFFINE)
    path = tmp_path / "four.nii.gz"
    nib.save(img, path)
    for item in (path, img):
        rec = make_record(item, "case_07")
        assert rec.shape == raw.shape[:3]
    # a plain 4D array is ambiguous (channels? cases?) and is refused
    with pytest.raises(InvalidVolumeError, match="must be 3D"):
        make_record(raw, "case_07")


def test_01_x_given_as_one_3d_array():
    refused(
        InvalidVolumeError,
        lambda: as_records(hu_ct().array),
        r"^X is a single array of shape \(24, 24, 3\)",
        r"wrap one CT in a list",
    )


# --------------------------------------------------------------------------- #
# 2-4. values and dtypes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_02_nan_or_inf(bad):
    hu = hu_ct().array.astype(np.float32)
    hu[3, 4, 1] = bad
    refused(
        InvalidVolumeError,
        lambda: make_record(Volume(hu, AFFINE), "case_07"),
        r"^case_07: ",
        r"1 infinite|1 NaN",
        r"fill the gaps|re-export",
    )


def test_02_values_that_overflow_float32():
    hu = hu_ct().array.astype(np.float64)
    hu[0, 0, 0] = 1e300
    refused(
        InvalidVolumeError,
        lambda: make_record(hu, "case_07"),
        r"^case_07: values up to 1e\+300 do not fit float32",
        r"check the units",
    )


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.zeros((9, 9, 2), bool), r"dtype bool, a mask.*swap image and label"),
        (np.zeros((9, 9, 2), np.complex64), r"complex dtype complex64.*real part"),
        (np.full((9, 9, 2), "a"), r"not numbers; give an array of numbers"),
        (np.full((9, 9, 2), None), r"not numbers; give an array of numbers"),
    ],
    ids=["bool", "complex", "str", "object"],
)
def test_03_bad_dtype(array, pattern):
    refused(
        InvalidVolumeError,
        lambda: make_record(array, "case_07"),
        r"^case_07: ",
        pattern,
    )


def test_03_complex_nifti(tmp_path):
    path = tmp_path / "case_07.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.complex64), np.eye(4)), path)
    refused(
        InvalidVolumeError,
        lambda: load_volume(path),
        re.escape(str(path)),
        r"complex64",
        r"re-export it as int16",
    )


def test_04_empty_volume(tmp_path):
    refused(
        InvalidVolumeError,
        lambda: make_record(np.zeros((0, 24, 3), np.int16), "case_07"),
        r"^case_07: the CT volume is empty \(shape \(0, 24, 3\)",
        r"check the file",
    )
    path = tmp_path / "case_07.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((0, 5, 6), np.int16), np.eye(4)), path)
    refused(
        InvalidVolumeError,
        lambda: load_volume(path),
        re.escape(str(path)),
        r"empty",
        r"re-export",
    )


# --------------------------------------------------------------------------- #
# 5. constant volume
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("value", [0, 40, -200])
def test_05_constant_volume(value):
    ct = Volume(np.full((24, 24, 3), value, np.int16), AFFINE, "case_07")
    refused(
        InvalidVolumeError,
        lambda: SuperpixelGenerator().fit_transform([ct]),
        rf"^case_07: all 1728 voxels have the value {value}, a constant volume",
        r"check the file",
    )


def test_05_all_air_is_accepted_and_gives_no_superpixels():
    ct = Volume(np.full((24, 24, 3), -1000, np.int16), AFFINE, "case_07")
    rec = SuperpixelGenerator().fit_transform([ct])[0]
    assert rec.n_superpixels == 0 and not rec.body_mask.any()


# --------------------------------------------------------------------------- #
# 6. not Hounsfield units
# --------------------------------------------------------------------------- #
def _png_stack():
    hu = np.clip(hu_ct().array.astype(float), -1000, 400)
    return (hu + 1000) / 1400 * 255  # 0-255, air at 0


def _raw_12bit():
    return (hu_ct().array.astype(np.int32) + 1024).astype(np.uint16)


def _raw_12bit_padded():
    raw = _raw_12bit().astype(np.int16)
    raw[:2] = -2000  # padding outside the field of view, stored signed
    return raw


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: _png_stack().astype(np.uint8), r"8-bit image values \(0-255"),
        (_png_stack, r"8-bit image values \(0-255"),
        (_raw_12bit, r"raw 12-bit stored values.*RescaleIntercept"),
        (_raw_12bit_padded, r"raw 12-bit stored values"),
        (lambda: _png_stack() / 255.0, r"scaled to \[0, 1\]"),
    ],
    ids=["uint8_0_255", "float_0_255", "uint16_0_4095", "padded_0_4095", "0_1"],
)
def test_06_not_hounsfield_units(make, kind):
    ct = Volume(make(), AFFINE, "case_07")
    message = refused(
        InvalidVolumeError,
        lambda: SuperpixelGenerator().fit_transform([ct]),
        r"^case_07: the values are not Hounsfield units",
        r"air near -1000",
        kind,
    )
    # how to override, in every spelling the user may need
    for override in (
        "check_hu=False",
        "superpixels__check_hu=False",
        "--no-hu-check",
    ):
        assert override in message
    # the override works
    rec = SuperpixelGenerator(check_hu=False).fit_transform([ct])[0]
    assert rec.superpixels is not None


def test_06_hounsfield_units_pass(tiny_cohort):
    SuperpixelGenerator().fit_transform([hu_ct()])
    ct = tiny_cohort[0][0]
    # no air at all (bowel gas filled in), but fat: a crop inside the body
    inside = np.maximum(ct.array[20:44, 20:44], -150)
    assert not (inside < -200).any() and (inside < 0).mean() > 0.1
    crop = Volume(inside, ct.affine, "crop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpacingWarning)  # the phantoms are coarse
        SuperpixelGenerator().fit_transform([crop])


def test_06_real_ct_in_hu_passes(shared_data):
    cases = [
        shared_data / "totalseg_case1" / "example_ct.nii.gz",  # 3.0 mm, not over
        shared_data / "totalseg_case2_dicom",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rec in as_records(cases):
            SuperpixelGenerator()._check_case(rec)


# --------------------------------------------------------------------------- #
# 7-9. labels
# --------------------------------------------------------------------------- #
def test_07_label_of_another_shape():
    ct = hu_ct()
    rec = make_record(ct, "case_07")
    refused(
        InvalidVolumeError,
        lambda: check_labels([rec], [np.zeros((24, 24, 4), np.uint8)]),
        r"^case_07: label of shape \(24, 24, 4\) does not match the image's shape "
        r"\(24, 24, 3\)",
        r"on the image's own grid",
    )


def _flipped(affine):
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = 23
    return affine @ flip


def _shifted(affine):
    out = affine.copy()
    out[:3, 3] += [0.0, 0.0, 5.0]
    return out


@pytest.mark.parametrize("change", [_flipped, _shifted], ids=["flipped", "shifted"])
@pytest.mark.parametrize("form", ["volume", "nibabel", "str", "path"])
def test_08_label_with_another_affine(tmp_path, change, form):
    ct = hu_ct()
    lab = label_for(ct)
    affine = change(ct.affine)
    if form == "volume":
        label = Volume(lab.array, affine)
    else:
        label = nib.Nifti1Image(lab.array, affine)
        if form != "nibabel":
            path = tmp_path / "case_07_label.nii.gz"
            nib.save(label, path)
            label = str(path) if form == "str" else path
    rec = make_record(ct, "case_07")
    if change is _flipped:
        # the image's own grid stored in another voxel order: reordered, so
        # the label marks the mirrored voxels its header places it on
        mirrored = check_labels([rec], [label])[0]
        np.testing.assert_array_equal(rec.to_native(mirrored), lab.array[::-1] > 0)
        return
    refused(
        InvalidVolumeError,
        lambda: check_labels([rec], [label]),
        r"^case_07\b",
        r"label affine differs from the image affine",
        r"up to 5 mm apart",
        r"resample it onto the image",
    )
    # the same label on the image's grid is accepted
    assert check_labels([rec], [Volume(lab.array, ct.affine)])[0].sum() == 48


@pytest.mark.parametrize(
    ("value", "shown"),
    [(3, "3"), (255, "255"), (-1, "-1"), (0.5, "0.5"), (np.nan, "nan")],
    ids=["three", "255", "negative", "fractional", "nan"],
)
def test_09_label_values(value, shown):
    ct = hu_ct()
    lab = label_for(ct).array.astype(np.float32 if value in (0.5,) else np.int16)
    if isinstance(value, float) and np.isnan(value):
        lab = lab.astype(np.float32)
    lab[1, 1, 1] = value
    rec = make_record(ct, "case_07")
    refused(
        InvalidVolumeError,
        lambda: check_labels([rec], [lab]),
        r"^case_07: label values must be 0 \(background\), 1 \(pancreas\) or 2",
        rf"found {shown} in 1 voxel",
        r"binary mask",
    )


def test_09_msd_tumour_label_counts_as_pancreas():
    ct = hu_ct()
    lab = label_for(ct).array
    lab[9, 9] = 2
    rec = make_record(ct, "case_07")
    assert check_labels([rec], [lab])[0].sum() == 48
    assert check_labels([rec], [lab.astype(np.float64)])[0].sum() == 48


def test_09_multi_organ_label_is_refused(shared_data):
    """A TotalSegmentator label map (pancreas = 7) is not a pancreas label."""
    case = shared_data / "totalseg_case1"
    rec = make_record(case / "example_ct.nii.gz")
    seg = case / "example_seg_fast_force_split.nii.gz"
    message = refused(
        InvalidVolumeError,
        lambda: check_labels([rec], [seg]),
        r"example_ct\.nii\.gz \(label .*example_seg_fast_force_split\.nii\.gz\): "
        r"label values must be 0",
        r"found 3, 4, 5, 6, 7",
    )
    assert "after checking what the values mean" in message
    # the pancreas alone (label 7) is accepted
    pancreas = Volume((load_volume(seg).array == 7).astype(np.uint8), rec.native_affine)
    assert check_labels([rec], [pancreas])[0].sum() == 695


# --------------------------------------------------------------------------- #
# 10. no pancreas in the training set
# --------------------------------------------------------------------------- #
def test_10_training_set_without_pancreas():
    cts = [hu_ct(name=f"case_{i:02d}", seed=i) for i in range(2)]
    empty = [np.zeros(ct.shape, np.uint8) for ct in cts]
    records = SuperpixelGenerator().fit_transform(cts)
    refused(
        InvalidVolumeError,
        lambda: RFCascade(n_estimators=2).fit(records, empty),
        r"^case_00, case_01: no training label marks any pancreas voxel",
        r"all 2 label volume\(s\) are empty",
        r"check that y holds the pancreas labels",
    )
    pipe = make_pipeline(SuperpixelGenerator(), RFCascade(n_estimators=2))
    with pytest.raises(InvalidVolumeError, match="no training label marks"):
        pipe.fit(cts, empty)


# --------------------------------------------------------------------------- #
# 11. too small
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("shape", [(3, 3, 1), (24, 6, 3)])
def test_11_volume_too_small(shape):
    hu = np.full(shape, -1000, np.int16)
    hu[1:-1, 1:-1] = 40
    ct = Volume(hu, AFFINE, "case_07")
    refused(
        InvalidVolumeError,
        lambda: SuperpixelGenerator().fit_transform([ct]),
        rf"^case_07: axial slices of {shape[0]} x {shape[1]} voxels are too small",
        r"at least 8 x 8",
        r"pass the whole scan",
    )


# --------------------------------------------------------------------------- #
# 12. broken affine
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("affine", "pattern"),
    [
        (np.full((4, 4), np.nan), r"NaN or infinite entries"),
        (np.diag([0.8, 0.0, 2.5, 1.0]), r"singular \(voxel size 0.8 x 0 x 2.5 mm"),
        (
            np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            r"singular",
        ),
        (np.diag([1e-9, 1.0, 1.0, 1.0]), r"implausible for a CT"),
    ],
    ids=["nan", "zero_voxel", "collinear_axes", "tiny_voxel"],
)
def test_12_broken_affine(affine, pattern):
    ct = Volume(hu_ct().array, affine, "case_07.nii.gz")
    refused(
        InvalidVolumeError,
        lambda: make_record(ct),
        r"^case_07\.nii\.gz: ",
        pattern,
        r"re-export",
    )


# --------------------------------------------------------------------------- #
# 13. extreme spacing: a warning
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("zooms", "pattern"),
    [
        ((0.8, 0.8, 12.0), r"0\.8 x 0\.8 x 12 mm \(slices more than 10 mm apart\)"),
        ((3.5, 3.5, 2.5), r"3\.5 x 3\.5 x 2\.5 mm \(pixels larger than 3 mm\)"),
    ],
    ids=["thick_slices", "large_pixels"],
)
def test_13_extreme_spacing_warns(zooms, pattern):
    ct = hu_ct(affine=np.diag([*zooms, 1.0]))
    gen = SuperpixelGenerator()
    with pytest.warns(SpacingWarning, match=rf"^case_07: voxel spacing {pattern}") as w:
        gen.fit_transform([ct])
    message = str(w[0].message)
    assert "check_spacing=False" in message
    assert issubclass(SpacingWarning, PancreasWarning)
    assert issubclass(SpacingWarning, UserWarning)
    # not an error, and it can be silenced
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SuperpixelGenerator(check_spacing=False).fit_transform([ct])
        SuperpixelGenerator().fit_transform([hu_ct()])  # 0.8 x 0.8 x 2.5 mm: quiet


# --------------------------------------------------------------------------- #
# 14. files
# --------------------------------------------------------------------------- #
def test_14_truncated_or_corrupt_nifti(tmp_path):
    path = tmp_path / "case_07.nii.gz"
    save_volume(hu_ct(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(
        VolumeFileError,
        lambda: load_volume(path),
        re.escape(str(path)),
        r"truncated or corrupt",
        r"re-export or re-download",
    )
    path.write_bytes(b"not a nifti" * 40)
    refused(VolumeFileError, lambda: as_volume(path), r"truncated or corrupt")
    refused(
        VolumeFileError,
        lambda: make_record(tmp_path / "missing.nii.gz"),
        r"missing\.nii\.gz: no such file",
        r"give a NIfTI file",
    )
    (tmp_path / "ct.mha").write_bytes(b"ObjectType = Image\n")
    refused(
        VolumeFileError,
        lambda: load_volume(tmp_path / "ct.mha"),
        r"ct\.mha: unknown volume format",
        r"give a NIfTI file",
    )


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_14_header_promising_more_voxels_than_the_file_holds(tmp_path, suffix):
    """A corrupt dim field is refused before gigabytes are allocated (fuzz find)."""
    import gzip
    import struct

    path = tmp_path / f"case_07{suffix}"
    save_volume(hu_ct(), path.with_name(f"ok{suffix}"))
    data = path.with_name(f"ok{suffix}").read_bytes()
    raw = bytearray(gzip.decompress(data) if suffix == ".nii.gz" else data)
    raw[40:48] = struct.pack("<4h", 3, 2000, 2000, 2000)  # 16 GB of int16
    path.write_bytes(gzip.compress(bytes(raw)) if suffix == ".nii.gz" else raw)
    refused(
        VolumeFileError,
        lambda: load_volume(path),
        re.escape(str(path)),
        r"header promises 16000000000 bytes of voxels for shape \(2000, 2000, 2000\)",
        r"re-export or re-download",
    )


# --------------------------------------------------------------------------- #
# 15. DICOM series (more cases in test_io.py::test_dicom_refusals)
# --------------------------------------------------------------------------- #
def _mixed_series(folder):
    make_series(folder, n=3, series_uid="1.2.3.1")
    make_series(folder / "b", n=3, series_uid="1.2.3.2", origin=(0, 0, 50.0))
    for f in (folder / "b").iterdir():
        f.rename(folder / f"B{f.name}")
    (folder / "b").rmdir()


def _missing_slice(folder):
    make_series(folder, n=6)[2][3].unlink()


def _no_images(folder):
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here\n")


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (_mixed_series, r"2 DICOM series"),
        (_missing_slice, r"about 1 slice\(s\) missing"),
        (lambda f: make_series(f, n=4, modality="MR"), r"Modality is not CT.*'MR'"),
        (_no_images, r"no DICOM image found"),
    ],
    ids=["mixed_series", "missing_slice", "not_ct", "no_images"],
)
def test_15_bad_dicom_folder(tmp_path, build, pattern):
    folder = tmp_path / "case_07"
    build(folder)
    with pytest.raises(DicomSeriesError) as info:
        make_record(folder)
    message = str(info.value)
    assert str(folder) in message and re.search(pattern, message), message


# --------------------------------------------------------------------------- #
# 16. empty dataset folder
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("load", "pattern"),
    [
        (load_nifti_folder, r"no NIfTI image files"),
        (load_nih_pancreas, r"no PANCREAS_XXXX case folders"),
        (load_msd_pancreas, r"no imagesTr or labelsTr folder"),
    ],
    ids=["nifti_folder", "nih", "msd"],
)
def test_16_empty_dataset_folder(tmp_path, load, pattern):
    folder = tmp_path / "empty_dataset"
    folder.mkdir()
    with pytest.raises(DatasetLayoutError, match=pattern) as info:
        load(folder)
    assert "empty_dataset" in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- #
# 17. predicting before fitting
# --------------------------------------------------------------------------- #
def _records_with_candidates():
    rec = make_record(hu_ct(), "case_07")
    rec.superpixels = np.ones(rec.shape, np.int32)
    rec.candidates = np.array([1], np.int32)
    rec.convnet_proba = np.zeros((1, 4), np.float32)
    return [rec]


@pytest.mark.parametrize(
    ("estimator", "methods"),
    [
        (SuperpixelGenerator(), ("transform", "optimal_dice")),
        (RFCascade(), ("transform", "predict_proba_superpixels")),
        (SuperpixelConvNet(), ("transform",)),
        (GaussianRefiner(), ("predict", "predict_proba", "score")),
        (
            make_pipeline(
                SuperpixelGenerator(),
                RFCascade(),
                SuperpixelConvNet(),
                GaussianRefiner(),
            ),
            ("predict", "predict_proba", "score", "records"),
        ),
    ],
    ids=["superpixels", "cascade", "convnet", "refiner", "pipeline"],
)
def test_17_predict_before_fit(estimator, methods):
    X = _records_with_candidates()
    y = [label_for(hu_ct()).array]
    for method in methods:
        args = (X, y) if method in ("score", "optimal_dice") else (X,)
        with pytest.raises(NotFittedError, match=r"not fitted yet.*Call 'fit'"):
            getattr(estimator, method)(*args)


# ------------------------------------------------- issue 14: the first hour
def _refiner_record(n_slices: int, name: str = "case"):
    """A record whose ConvNet is sure of a central block of superpixels."""
    from dataclasses import replace

    shape = (16, 16, n_slices)
    i, j, k = np.indices(shape)
    sp = (1 + i // 4 + 4 * (j // 4) + 16 * k).astype(np.int32)
    label = ((abs(i - 8) < 4) & (abs(j - 8) < 4)).astype(np.uint8)
    cands = np.unique(sp[label > 0]).astype(np.int32)
    rec = make_record(Volume(np.zeros(shape, np.int16), np.eye(4)), name)
    rec = replace(
        rec,
        superpixels=sp,
        candidates=cands,
        convnet_proba=np.full((len(cands), 2), 0.9, np.float32),
    )
    return rec, label


def test_14_bare_arrays_are_refused_with_how_to_pass_the_affine(tiny_fitted):
    pattern = (
        r"X\[0\]: a bare array of shape \(64, 64, 12\) has no voxel spacing",
        r"Volume\(array, affine\)",
        r"numpy\.diag\(\[sx, sy, sz, 1\.0\]\)",
    )
    array = np.full((64, 64, 12), -1000, np.int16)
    for method in (tiny_fitted.predict, tiny_fitted.predict_proba):
        refused(InvalidVolumeError, lambda m=method: m([array]), *pattern)
    pipe = make_pipeline(SuperpixelGenerator(), GaussianRefiner())
    refused(InvalidVolumeError, lambda: pipe.fit([array], [array]), *pattern)
    refused(
        InvalidVolumeError,
        lambda: tiny_fitted.predict(np.stack([array, array])),
        r"^X: a bare array of shape \(2, 64, 64, 12\)",
        r"Volume\(array, affine\)",
    )
    # the same voxels with their affine are segmented
    volume = Volume(array, np.diag([5.0, 5.0, 13.0, 1.0]), "air")
    with pytest.warns(PancreasWarning, match="air: empty segmentation"):
        (mask,) = tiny_fitted.predict([volume])
    assert mask.shape == array.shape


def test_14_predict_proba_warns_about_an_empty_mask(tiny_fitted, tiny_cohort):
    from pancreas.exceptions import SegmentationWarning

    images, _ = tiny_cohort
    air = Volume(np.full(images[4].shape, -1000, np.int16), images[4].affine, "air")
    threshold = tiny_fitted.steps[-1][1].threshold_
    with pytest.warns(SegmentationWarning) as caught:
        tiny_fitted.predict_proba([images[4], air])
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"air: empty segmentation (no voxel above the threshold {threshold:.2f}); "
        "the scan may not show the pancreas, or be unlike the training cases "
        "(field of view, spacing, contrast phase): check it"
    ]


def test_14_fit_without_labels_says_labels_are_required():
    cts = [hu_ct(name="case_00")]
    pipe = make_pipeline(SuperpixelGenerator(), RFCascade(n_estimators=2))
    refused(ValueError, lambda: pipe.fit(cts, None), r"labels are required")
    refused(ValueError, lambda: pipe.fit(cts), r"labels are required")
    refused(
        ValueError,
        lambda: pipe.fit(cts, [label_for(cts[0])], X_val=cts),
        r"X_val was given without y_val",
    )
    refused(
        ValueError,
        lambda: pipe.fit(cts, [label_for(cts[0])] * 2),
        r"X has 1 case\(s\) but y has 2 label\(s\)",
    )


@pytest.mark.parametrize(
    ("step", "param", "value", "estimator"),
    [
        ("gaussianrefiner", "sigma", -1.0, "GaussianRefiner"),
        ("gaussianrefiner", "n_jobs", 0, "GaussianRefiner"),
        ("rfcascade", "n_jobs", 0, "RFCascade"),
        ("superpixelgenerator", "n_jobs", 0, "SuperpixelGenerator"),
    ],
)
def test_14_every_parameter_is_checked_before_any_stage_runs(
    step, param, value, estimator
):
    from sklearn.utils._param_validation import InvalidParameterError

    class Counting(SuperpixelGenerator):
        calls = 0

        def transform(self, X):
            type(self).calls += 1
            return super().transform(X)

    first = Counting() if step != "superpixelgenerator" else SuperpixelGenerator()
    pipe = make_pipeline(first, RFCascade(n_estimators=2), GaussianRefiner())
    pipe.steps[0] = ("superpixelgenerator", first)
    pipe.set_params(**{f"{step}__{param}": value})
    cts = [hu_ct(name="case_00")]
    with pytest.raises(InvalidParameterError) as info:
        pipe.fit(cts, [label_for(cts[0])])
    message = str(info.value)
    assert f"'{param}' parameter of {estimator}" in message, message
    assert f"(step '{step}')" in message
    assert Counting.calls == 0  # no stage ran


def test_14_validation_labels_all_empty_are_refused():
    rec, label = _refiner_record(8)
    refused(
        InvalidVolumeError,
        lambda: GaussianRefiner(sigma=1.0).fit([rec], [np.zeros_like(label)]),
        r"^case: no validation label marks any pancreas voxel",
        r"cannot choose its threshold",
        r"check that y_val holds the pancreas labels",
    )
    # a fixed threshold needs no labels to choose it
    GaussianRefiner(sigma=1.0, threshold=0.5).fit([rec], [np.zeros_like(label)])
    assert GaussianRefiner(sigma=1.0).fit([rec], [label]).threshold_ > 0


def test_14_too_few_slices_for_the_smoothing_warn():
    from pancreas.exceptions import SegmentationWarning

    deep, label = _refiner_record(12, "deep")
    ref = GaussianRefiner(sigma=3.0, threshold=0.5).fit([deep], [label])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (mask,) = ref.predict([deep])
    assert mask.any()
    thin, _ = _refiner_record(2, "thin")
    with pytest.warns(
        SegmentationWarning,
        match=r"thin: 2 slice\(s\) are too few for the 3D smoothing \(sigma 3 "
        r"slices\): .*only 26%.*at least 7 slices",
    ):
        (mask,) = ref.predict([thin])
    assert not mask.any()  # what the warning is about


def test_14_train_with_labels_matching_no_image_says_so(tmp_path, capsys):
    from pancreas.cli import main

    folder = tmp_path / "cases"
    folder.mkdir()
    for i in range(2):
        ct = hu_ct(name=f"case{i}", seed=i)
        save_volume(ct, folder / f"case{i}.nii.gz")
    # the same folder as --labels: one-folder mode finds no label file in it
    code = main(
        [
            "train",
            "--images",
            str(folder),
            "--labels",
            str(folder),
            "--preset",
            "tiny",
            "--output",
            str(tmp_path / "model"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "no label found for any of the 2 images" in err, err
    assert "Traceback" not in err and "X_val" not in err
    assert not (tmp_path / "model").exists()


def test_14_memory_cache_is_keyed_on_the_files_not_their_paths(tmp_path, monkeypatch):
    import os

    import pancreas.superpixels as sp

    calls = []
    real = sp.SuperpixelGenerator.transform

    def spy(self, X):
        calls.append(len(X))
        return real(self, X)

    monkeypatch.setattr(sp.SuperpixelGenerator, "transform", spy)
    images, labels = [], []
    for i in range(3):
        ct = hu_ct(name=f"case{i}", seed=i)
        images.append(save_volume(ct, tmp_path / f"case{i}.nii"))
        labels.append(save_volume(label_for(ct), tmp_path / f"case{i}_seg.nii.gz"))

    def fit():
        pipe = make_pipeline(
            SuperpixelGenerator(), RFCascade(n_estimators=2, cv=2),
            memory=str(tmp_path / "cache"),
        )
        return pipe.fit(images, labels)

    fit()
    assert calls == [3]
    fit()
    assert calls == [3]  # unchanged files: the superpixels come from the cache
    # a new scan written at the same path (same size, even)
    new = hu_ct(name="case0", seed=99)
    before = os.stat(images[0])
    save_volume(new, images[0])
    assert os.stat(images[0]).st_size == before.st_size
    fitted = fit()
    assert calls == [3, 3]  # recomputed, not the stale records
    assert fitted[0].transform([images[0]])[0].volume.array.tolist() == (
        new.array.astype(np.float32).tolist()
    )


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        (
            "gaussianrefiner__thresholds",
            [0.0, 0.5],
            r"^GaussianRefiner \(step 'gaussianrefiner'\): thresholds must be",
        ),
        (
            "superpixelconvnet__n_train_scales",
            9,
            r"^SuperpixelConvNet \(step 'superpixelconvnet'\): n_train_scales=9",
        ),
    ],
)
def test_14_rules_beyond_the_constraints_are_checked_before_any_stage_runs(
    param, value, match, monkeypatch
):
    import pancreas.superpixels as sp

    calls = []
    monkeypatch.setattr(
        sp.SuperpixelGenerator, "transform", lambda self, X: calls.append(X)
    )
    pipe = make_pipeline(
        SuperpixelGenerator(),
        RFCascade(n_estimators=2),
        SuperpixelConvNet(),
        GaussianRefiner(),
    )
    pipe.set_params(**{param: value})
    cts = [hu_ct(name="case_00")]
    with pytest.raises(ValueError, match=match):
        pipe.fit(cts, [label_for(cts[0])])
    assert calls == []  # no stage ran


def test_14_empty_validation_labels_are_refused_before_any_stage_runs(monkeypatch):
    import pancreas.superpixels as sp

    calls = []
    monkeypatch.setattr(
        sp.SuperpixelGenerator, "transform", lambda self, X: calls.append(X)
    )
    cts = [hu_ct(name=f"case_{i:02d}", seed=i) for i in range(3)]
    empty = [np.zeros(ct.shape, np.uint8) for ct in cts[2:]]
    pipe = make_pipeline(SuperpixelGenerator(), RFCascade(n_estimators=2))
    refused(
        InvalidVolumeError,
        lambda: pipe.fit(
            cts[:2], [label_for(ct) for ct in cts[:2]], X_val=cts[2:], y_val=empty
        ),
        r"^case_02: no validation label marks any pancreas voxel",
        r"refiner cannot choose its threshold",
        r"check that y_val holds the pancreas labels .* same order as X_val",
    )
    assert calls == []  # refused before any stage ran
