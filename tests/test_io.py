"""Tests of pancreas.io: NIfTI and DICOM series in, NIfTI out (real files, no mocks)."""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pancreas.exceptions import DicomSeriesError, InvalidVolumeError, VolumeFileError
from pancreas.io import Volume, as_volume, load_volume, save_volume

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Affines whose entries are exact in float32, so a NIfTI round trip keeps them.
EXACT_AFFINES = {
    "ras_diag": np.array(
        [[0.75, 0, 0, -120.5], [0, 0.75, 0, 80.25], [0, 0, 2.5, 33.0], [0, 0, 0, 1]]
    ),
    "las_flipped": np.array(
        [[-0.5, 0, 0, 60.0], [0, 0.5, 0, -40.0], [0, 0, -3.0, 7.25], [0, 0, 0, 1]]
    ),
    "permuted": np.array(
        [[0, 0, -2.0, 10.0], [1.5, 0, 0, -5.0], [0, -0.5, 0, 7.25], [0, 0, 0, 1]]
    ),
}
# A rotation about z (cos 0.6, sin 0.8) and about x: not exact in float32.
_rot_z = np.array([[0.6, -0.8, 0], [0.8, 0.6, 0], [0, 0, 1.0]])
_rot_x = np.array([[1.0, 0, 0], [0, 0.28, -0.96], [0, 0.96, 0.28]])
OBLIQUE = np.eye(4)
OBLIQUE[:3, :3] = _rot_z @ _rot_x @ np.diag([0.8, 0.9, 2.0])
OBLIQUE[:3, 3] = [-101.3, 17.7, -55.1]


def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# Row (1,0,0), column (0,0.6,-0.8): normal = cross(row, col) = (0, 0.8, 0.6).
OBLIQUE_IOP = (1.0, 0.0, 0.0, 0.0, 0.6, -0.8)


def write_dicom_slice(
    path: Path,
    pixels: np.ndarray,
    *,
    position: tuple[float, float, float],
    orientation: tuple[float, ...] = AXIAL,
    spacing: tuple[float, float] = (0.7, 0.5),
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    modality: str = "CT",
    instance: int = 1,
    slope: float = 1.0,
    intercept: float = -1024.0,
) -> None:
    """Write one real single-frame DICOM CT slice with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.Modality = modality
    ds.PatientID = "anon"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [f"{v:g}" for v in position]
    ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
    ds.PixelSpacing = [f"{v:g}" for v in spacing]
    ds.SliceThickness = "3"  # deliberately not the slice distance
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_series(
    folder: Path,
    *,
    n: int = 6,
    rows: int = 8,
    cols: int = 10,
    origin: tuple[float, float, float] = (-20.5, 30.25, -100.0),
    orientation: tuple[float, ...] = AXIAL,
    spacing: tuple[float, float] = (0.7, 0.5),
    step: float = 2.5,
    seed: int = 0,
    **kwargs,
) -> tuple[list[np.ndarray], list[np.ndarray], list[Path]]:
    """Write an n-slice series with shuffled file names and InstanceNumbers.

    Returns raw pixel arrays, LPS positions and file paths, in true slice order
    (increasing position along the normal).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, col)
    name_order = rng.permutation(n)
    instance_order = rng.permutation(n) + 1
    raws, positions, paths = [], [], []
    for k in range(n):
        raw = rng.integers(0, 3000, size=(rows, cols), dtype=np.uint16)
        pos = np.array(origin) + k * step * normal
        path = folder / f"IMG{name_order[k]:04d}"
        write_dicom_slice(
            path,
            raw,
            position=tuple(pos),
            orientation=orientation,
            spacing=spacing,
            instance=int(instance_order[k]),
            **kwargs,
        )
        raws.append(raw)
        positions.append(pos)
        paths.append(path)
    return raws, positions, paths


def lps_point(
    origin: np.ndarray,
    orientation: tuple[float, ...],
    spacing: tuple[float, float],
    step: float,
    ijk: tuple[int, int, int],
) -> np.ndarray:
    """Where voxel (i, j, k) lies in DICOM LPS: i along the row, j down the column."""
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    i, j, k = ijk
    return (
        np.asarray(origin)
        + i * spacing[1] * row
        + j * spacing[0] * col
        + k * step * np.cross(row, col)
    )


# ---------------------------------------------------------------------------
# NIfTI round trips
# ---------------------------------------------------------------------------


def _arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape = (7, 6, 5)
    return {
        "ct_int16": rng.integers(-1024, 3000, size=shape).astype(np.int16),
        "mask_uint8": (rng.random(shape) > 0.7).astype(np.uint8),
        "proba_float32": rng.random(shape, dtype=np.float32),
    }


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("kind", ["ct_int16", "mask_uint8", "proba_float32"])
@pytest.mark.parametrize("affine_name", sorted(EXACT_AFFINES))
def test_nifti_round_trip_exact(tmp_path, rng, suffix, kind, affine_name):
    array = _arrays(rng)[kind]
    affine = EXACT_AFFINES[affine_name]
    out = save_volume(Volume(array, affine, "case"), tmp_path / f"v{suffix}")
    assert out == tmp_path / f"v{suffix}"
    back = load_volume(out)
    assert back.array.dtype == array.dtype
    np.testing.assert_array_equal(back.array, array)
    assert np.array_equal(back.affine, affine)
    assert back.source == str(out)
    img = nib.load(out)
    assert int(img.header["sform_code"]) == 1
    assert int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), affine, atol=1e-5)
    if suffix == ".nii.gz":
        with gzip.open(out) as fh:  # really gzip-compressed
            assert len(fh.read(348)) == 348
    assert _tmp_files(tmp_path) == []


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_oblique_affine(tmp_path, rng, suffix):
    array = _arrays(rng)["ct_int16"]
    back = load_volume(save_volume(Volume(array, OBLIQUE), tmp_path / f"o{suffix}"))
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, OBLIQUE, rtol=0, atol=1e-5)
    qform = nib.load(tmp_path / f"o{suffix}").get_qform()
    np.testing.assert_allclose(qform, OBLIQUE, rtol=0, atol=1e-5)
    assert back.spacing == pytest.approx((0.8, 0.9, 2.0), abs=1e-5)


def test_sheared_affine_is_kept_in_sform_only(tmp_path, rng):
    sheared = np.array(
        [[1.0, 0.25, 0, 1.0], [0, 1.0, 0, 2.0], [0, 0, 2.0, 3.0], [0, 0, 0, 1]]
    )
    out = save_volume(Volume(_arrays(rng)["mask_uint8"], sheared), tmp_path / "s.nii")
    img = nib.load(out)
    assert int(img.header["qform_code"]) == 0
    assert int(img.header["sform_code"]) == 1
    assert np.array_equal(load_volume(out).affine, sheared)


@settings(max_examples=15, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 6)] * 3),
    dtype=st.sampled_from(["int16", "uint8", "float32", "int32", "uint16"]),
    zooms=st.tuples(*[st.sampled_from([0.5, 0.75, 1.0, 2.5, -1.25])] * 3),
    gz=st.booleans(),
)
def test_nifti_round_trip_property(shape, dtype, zooms, gz):
    rng = np.random.default_rng(1)
    array = (rng.random(shape) * 100).astype(dtype)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = [12.5, -7.25, 3.0]
    with tempfile.TemporaryDirectory() as tmp:
        out = save_volume(
            Volume(array, affine), Path(tmp) / f"p.nii{'.gz' if gz else ''}"
        )
        back = load_volume(out)
    assert back.array.dtype == array.dtype
    np.testing.assert_array_equal(back.array, array)
    assert np.array_equal(back.affine, affine)


# ---------------------------------------------------------------------------
# save_volume: dtypes, references, errors, atomicity
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "dtype", "expected"),
    [
        (np.array([True, False]), None, np.uint8),
        (np.array([0.25, 1.0]), None, np.float32),
        (np.array([0.25, 1.0], np.float16), None, np.float32),
        (np.array([3, -2], np.int64), None, np.int32),
        (np.array([3, 2], np.uint16), None, np.uint16),
        (np.array([0.0, 1.0]), np.uint8, np.uint8),
        (np.array([0, 1], np.int32), bool, np.uint8),
        (np.array([0.5, 0.9], np.float32), np.float64, np.float64),
    ],
)
def test_save_dtype_rules(tmp_path, array, dtype, expected):
    data = np.broadcast_to(array, (3, 3, 2)).copy()
    out = save_volume(Volume(data), tmp_path / "d.nii.gz", dtype=dtype)
    back = load_volume(out)
    assert nib.load(out).get_data_dtype() == np.dtype(expected)
    if np.dtype(expected).kind in "iu":
        assert back.array.dtype == np.dtype(expected)
        np.testing.assert_array_equal(back.array, data.astype(expected))
    else:
        assert back.array.dtype == np.float32
        np.testing.assert_allclose(back.array, data, rtol=1e-3)


def test_save_refuses_values_that_do_not_fit(tmp_path):
    with pytest.raises(InvalidVolumeError, match="do not fit uint8"):
        save_volume(
            Volume(np.full((2, 2, 2), 300.0)), tmp_path / "m.nii", dtype="uint8"
        )
    with pytest.raises(InvalidVolumeError, match="NaN"):
        save_volume(
            Volume(np.full((2, 2, 2), np.nan)), tmp_path / "m.nii", dtype="uint8"
        )
    with pytest.raises(InvalidVolumeError, match="int32"):
        save_volume(Volume(np.full((2, 2, 2), 2**40)), tmp_path / "m.nii")
    with pytest.raises(InvalidVolumeError, match="complex"):
        save_volume(Volume(np.zeros((2, 2, 2), np.complex64)), tmp_path / "m.nii")
    assert list(tmp_path.iterdir()) == []


def test_save_array_with_reference(tmp_path, rng):
    affine = EXACT_AFFINES["las_flipped"]
    ct = Volume(rng.integers(-1000, 1000, (5, 4, 3)).astype(np.int16), affine, "ct")
    mask = ct.array > 0

    # reference given as a Volume
    back = load_volume(
        save_volume(mask, tmp_path / "a" / "b" / "m.nii.gz", reference=ct)
    )
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, mask)
    assert np.array_equal(back.affine, affine)

    # reference given as a NIfTI path
    ct_path = save_volume(ct, tmp_path / "ct.nii.gz")
    proba = rng.random(ct.shape)
    back = load_volume(save_volume(proba, tmp_path / "p.nii", reference=ct_path))
    assert back.array.dtype == np.float32
    assert np.array_equal(back.affine, affine)
    np.testing.assert_allclose(back.array, proba.astype(np.float32))

    # a Volume whose grid matches the reference is fine; a different one is not
    save_volume(ct.with_array(mask), tmp_path / "ok.nii", reference=ct_path)
    moved = Volume(mask, affine.copy(), "moved")
    moved.affine[0, 3] += 5
    with pytest.raises(InvalidVolumeError, match="moved"):
        save_volume(moved, tmp_path / "bad.nii", reference=ct_path)
    with pytest.raises(InvalidVolumeError, match=r"shape \(5, 4\)"):
        save_volume(mask[:, :, 0], tmp_path / "bad.nii", reference=ct)
    with pytest.raises(InvalidVolumeError, match="reference="):
        save_volume(mask, tmp_path / "bad.nii")
    assert not (tmp_path / "bad.nii").exists()


def test_save_array_with_dicom_folder_reference(tmp_path):
    make_series(tmp_path / "series", n=4)
    ref = load_volume(tmp_path / "series")
    mask = np.zeros(ref.shape, bool)
    mask[2, 3, 1] = True
    back = load_volume(
        save_volume(mask, tmp_path / "m.nii.gz", reference=tmp_path / "series")
    )
    np.testing.assert_allclose(back.affine, ref.affine, atol=1e-5)
    np.testing.assert_array_equal(back.array, mask)


def test_save_refuses_unknown_extension(tmp_path):
    with pytest.raises(VolumeFileError, match=r"\.nii or \.nii\.gz"):
        save_volume(Volume(np.zeros((2, 2, 2))), tmp_path / "v.mha")
    with pytest.raises(InvalidVolumeError, match="3D"):
        save_volume(Volume(np.zeros((2, 2))), tmp_path / "v.nii")


def test_atomic_write_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "mask.nii.gz"
    save_volume(Volume(np.ones((4, 4, 4), np.uint8)), out)
    before = out.read_bytes()
    seen = []

    def failing_replace(src, dst):
        src = Path(src)
        seen.append(src.name)
        assert src.exists() and src.parent == out.parent
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(VolumeFileError, match=r"mask\.nii\.gz") as info:
        save_volume(Volume(np.zeros((4, 4, 4), np.uint8)), out)
    assert isinstance(info.value, OSError)
    assert len(seen) == 1
    assert seen[0].startswith(".mask.nii.gz.") and seen[0].endswith(".tmp")
    assert out.read_bytes() == before
    assert _tmp_files(tmp_path) == []


def test_atomic_write_failure_mid_stream_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "ct.nii"
    save_volume(Volume(np.ones((4, 4, 4), np.int16)), out)
    before = out.read_bytes()

    def broken_to_stream(self, fileobj, **kwargs):
        fileobj.write(b"half a header")
        raise RuntimeError("serialiser crashed")

    monkeypatch.setattr(nib.Nifti1Image, "to_stream", broken_to_stream)
    with pytest.raises(RuntimeError, match="serialiser crashed"):
        save_volume(Volume(np.zeros((4, 4, 4), np.int16)), out)
    assert out.read_bytes() == before
    assert _tmp_files(tmp_path) == []


# ---------------------------------------------------------------------------
# load_volume: NIfTI specifics and errors
# ---------------------------------------------------------------------------


def test_load_scaled_and_float64_nifti_gives_float32(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, tmp_path / "scaled.nii.gz")
    vol = load_volume(tmp_path / "scaled.nii.gz")
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, raw * 2.0 - 1024.0)

    nib.save(nib.Nifti1Image(raw.astype(np.float64) / 3, np.eye(4)), tmp_path / "f.nii")
    vol = load_volume(tmp_path / "f.nii")
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, raw / 3, rtol=1e-6)


def test_load_big_endian_nifti_gives_native_array(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 12
    hdr = nib.Nifti1Header(endianness=">")
    hdr.set_data_dtype(np.int16)
    nib.save(nib.Nifti1Image(raw, np.eye(4), hdr), tmp_path / "be.nii")
    vol = load_volume(tmp_path / "be.nii")
    assert nib.load(tmp_path / "be.nii").get_data_dtype().byteorder == ">"
    assert vol.array.dtype == np.int16 and vol.array.dtype.isnative
    np.testing.assert_array_equal(vol.array, raw)


def test_load_4d_with_one_volume_is_squeezed(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4, 1)
    nib.save(nib.Nifti1Image(raw, np.eye(4)), tmp_path / "four.nii.gz")
    vol = load_volume(tmp_path / "four.nii.gz")
    assert vol.shape == (2, 3, 4)
    np.testing.assert_array_equal(vol.array, raw[..., 0])


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 2)])
def test_load_refuses_non_3d_nifti(tmp_path, shape):
    path = tmp_path / "bad_dims.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, np.int16), np.eye(4)), path)
    with pytest.raises(InvalidVolumeError, match=re.escape(str(path))):
        load_volume(path)


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.nii.gz"
    with pytest.raises(VolumeFileError, match=re.escape(str(path))) as info:
        load_volume(path)
    assert isinstance(info.value, OSError)
    with pytest.raises(VolumeFileError, match=r"nope\.nii\.gz"):
        as_volume(str(path))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_load_truncated_nifti(tmp_path, rng, suffix):
    path = tmp_path / f"cut{suffix}"
    save_volume(Volume(rng.integers(-1000, 1000, (40, 40, 40)).astype(np.int16)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VolumeFileError, match="truncated or corrupt") as info:
        load_volume(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a nifti at all" * 30])
def test_load_corrupt_nifti(tmp_path, content):
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(content)
    with pytest.raises(VolumeFileError, match=r"junk\.nii\.gz.*truncated or corrupt"):
        load_volume(path)


def test_load_corrupt_gzip_payload(tmp_path, rng):
    path = tmp_path / "flipped.nii.gz"
    save_volume(Volume(rng.integers(-1000, 1000, (30, 30, 30)).astype(np.int16)), path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(VolumeFileError, match=r"flipped\.nii\.gz"):
        load_volume(path)


def test_load_unknown_extension(tmp_path):
    path = tmp_path / "ct.mha"
    path.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(VolumeFileError, match=r"ct\.mha.*unknown volume format"):
        load_volume(path)


# ---------------------------------------------------------------------------
# DICOM series
# ---------------------------------------------------------------------------


def test_dicom_series_order_hu_and_affine(tmp_path):
    folder = tmp_path / "series"
    origin = (-20.5, 30.25, -100.0)
    raws, _, paths = make_series(folder, origin=origin)
    # File names and InstanceNumbers really are shuffled against the positions.
    assert [p.name for p in paths] != sorted(p.name for p in paths)

    vol = load_volume(folder)
    assert vol.source == str(folder)
    assert vol.shape == (10, 8, 6)  # (columns, rows, slices)
    assert vol.array.dtype == np.int16
    for k, raw in enumerate(raws):
        np.testing.assert_array_equal(vol.array[:, :, k], raw.T.astype(np.int32) - 1024)
    # pixel (row 3, column 7) of slice 2 is voxel (7, 3, 2)
    assert vol.array[7, 3, 2] == int(raws[2][3, 7]) - 1024
    assert vol.spacing == pytest.approx((0.5, 0.7, 2.5))  # not SliceThickness 3

    # By hand: axial, row direction +x (L), column direction +y (P), normal +z (S).
    expected = {
        (0, 0, 0): (20.5, -30.25, -100.0),
        (1, 0, 0): (20.5 - 0.5, -30.25, -100.0),
        (0, 1, 0): (20.5, -30.25 - 0.7, -100.0),
        (0, 0, 1): (20.5, -30.25, -97.5),
        (9, 7, 5): (20.5 - 4.5, -30.25 - 4.9, -87.5),
    }
    for ijk, ras in expected.items():
        np.testing.assert_allclose(vol.affine @ [*ijk, 1], [*ras, 1], atol=1e-9)
    for ijk in [(0, 0, 0), (3, 5, 4), (9, 7, 5)]:
        lps = lps_point(np.array(origin), AXIAL, (0.7, 0.5), 2.5, ijk)
        np.testing.assert_allclose(
            vol.affine @ [*ijk, 1], [-lps[0], -lps[1], lps[2], 1]
        )


def test_dicom_oblique_series_affine(tmp_path):
    folder = tmp_path / "oblique"
    origin = (10.0, -5.0, 40.0)
    raws, positions, _ = make_series(
        folder, origin=origin, orientation=OBLIQUE_IOP, spacing=(0.8, 0.6), step=2.5
    )
    vol = load_volume(folder)
    for ijk in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (9, 7, 5), (4, 2, 3)]:
        lps = lps_point(np.array(origin), OBLIQUE_IOP, (0.8, 0.6), 2.5, ijk)
        np.testing.assert_allclose(
            vol.affine @ [*ijk, 1], [-lps[0], -lps[1], lps[2], 1]
        )
    # the slice origins are the files' ImagePositionPatient, in RAS
    for k, pos in enumerate(positions):
        np.testing.assert_allclose(
            vol.affine @ [0, 0, k, 1], [-pos[0], -pos[1], pos[2], 1]
        )
        np.testing.assert_array_equal(
            vol.array[:, :, k], raws[k].T.astype(np.int32) - 1024
        )
    assert vol.spacing == pytest.approx((0.6, 0.8, 2.5))


def test_dicom_float_rescale_and_int16_overflow(tmp_path):
    folder = tmp_path / "scaled"
    raws, _, _ = make_series(folder, n=3, slope=0.5, intercept=-1024.5)
    vol = load_volume(folder)
    assert vol.array.dtype == np.float32
    for k, raw in enumerate(raws):
        np.testing.assert_array_equal(vol.array[:, :, k], raw.T * 0.5 - 1024.5)

    # slope 1, intercept -1024, but raw values up to 65535: HU do not fit int16
    folder = tmp_path / "wide"
    big = np.full((4, 5), 65535, np.uint16)
    small = np.zeros((4, 5), np.uint16)
    folder.mkdir()
    for k, raw in enumerate([small, small, big]):  # the overflow comes last
        write_dicom_slice(folder / f"s{k}", raw, position=(0, 0, 2.0 * k))
    vol = load_volume(folder)
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array[:, :, 0], -1024)
    np.testing.assert_array_equal(vol.array[:, :, 2], 65535 - 1024)


def test_dicom_signed_pixels(tmp_path):
    folder = tmp_path / "signed"
    raw = np.array([[-1000, 0, 40], [1500, -3, 7]], np.int16)
    for k in range(3):
        write_dicom_slice(
            folder / f"s{k}", raw + k, position=(0, 0, -3.0 * k), intercept=0
        )
    vol = load_volume(folder)
    assert vol.array.dtype == np.int16
    # slices sorted by increasing z: the file at z = -6 comes first
    np.testing.assert_array_equal(vol.array[:, :, 0], (raw + 2).T)
    np.testing.assert_allclose(vol.affine[:3, 3], [0, 0, -6.0])
    assert vol.spacing == pytest.approx((0.5, 0.7, 3.0))


def test_dicom_folder_skips_non_dicom_and_imageless_files(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage

    folder = tmp_path / "with_extras"
    raws, _, _ = make_series(folder, n=4)
    (folder / "readme.txt").write_text("exported by a PACS\n")
    (folder / "sub").mkdir()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir = Dataset()
    dicomdir.file_meta = meta
    dicomdir.FileSetID = "EXPORT"
    dicomdir.save_as(folder / "DICOMDIR", enforce_file_format=True)
    vol = load_volume(folder)
    assert vol.shape == (10, 8, 4)
    np.testing.assert_array_equal(vol.array[:, :, 3], raws[3].T.astype(np.int32) - 1024)


def _two_series(folder: Path) -> None:
    make_series(folder, n=3, series_uid="1.2.3.1")
    make_series(folder / "tmp", n=3, series_uid="1.2.3.2", origin=(0, 0, 50.0))
    for f in (folder / "tmp").iterdir():
        f.rename(folder / f"B{f.name}")
    (folder / "tmp").rmdir()


def _duplicate(folder: Path) -> None:
    _, positions, _ = make_series(folder, n=5)
    write_dicom_slice(
        folder / "extra", np.zeros((8, 10), np.uint16), position=tuple(positions[2])
    )


def _missing(folder: Path) -> None:
    _, _, paths = make_series(folder, n=6)
    paths[3].unlink()


def _tilt(folder: Path) -> None:
    for k in range(5):  # each slice shifted 1 mm in y per 2.5 mm in z: ~22 degrees
        write_dicom_slice(
            folder / f"t{k}",
            np.zeros((8, 10), np.uint16),
            position=(0, 1.0 * k, 2.5 * k),
        )


def _orientation_differs(folder: Path) -> None:
    make_series(folder, n=4)
    write_dicom_slice(
        folder / "rot",
        np.zeros((8, 10), np.uint16),
        position=(-20.5, 30.25, -90.0),
        orientation=(0.6, 0.8, 0.0, -0.8, 0.6, 0.0),
    )


def _size_differs(folder: Path) -> None:
    make_series(folder, n=4)
    write_dicom_slice(
        folder / "small", np.zeros((8, 9), np.uint16), position=(0, 0, 50)
    )


def _spacing_differs(folder: Path) -> None:
    make_series(folder, n=4)
    write_dicom_slice(
        folder / "sp",
        np.zeros((8, 10), np.uint16),
        position=(-20.5, 30.25, -90.0),
        spacing=(0.9, 0.9),
    )


def _no_dicom(folder: Path) -> None:
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here\n")
    (folder / "notes.dcm").write_bytes(b"\x00" * 200)


def _empty(folder: Path) -> None:
    folder.mkdir()


def _single_slice(folder: Path) -> None:
    make_series(folder, n=1)


@pytest.mark.parametrize(
    ("builder", "pattern"),
    [
        (_two_series, r"2 DICOM series"),
        (lambda f: make_series(f, n=4, modality="MR"), r"Modality is not CT.*'MR'"),
        (_duplicate, r"duplicate slice position"),
        (_missing, r"slices 2 and 3 .* about 1 slice\(s\) missing"),
        (_tilt, r"gantry tilt"),
        (_orientation_differs, r"ImageOrientationPatient differs"),
        (_size_differs, r"differ in size"),
        (_spacing_differs, r"PixelSpacing differs"),
        (_no_dicom, r"no DICOM image found \(2 file"),
        (_empty, r"no DICOM image found"),
        (_single_slice, r"single CT slice"),
    ],
    ids=[
        "two_series",
        "mr",
        "duplicate",
        "missing",
        "tilt",
        "orientation",
        "size",
        "spacing",
        "no_dicom",
        "empty",
        "single",
    ],
)
def test_dicom_refusals(tmp_path, builder, pattern):
    folder = tmp_path / "case_0042"
    builder(folder)
    with pytest.raises(DicomSeriesError) as info:
        load_volume(folder)
    message = str(info.value)
    assert "case_0042" in message
    assert re.search(pattern, message), message


# ---------------------------------------------------------------------------
# Real CT (skipped where ../shared/data is absent)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_series(shared_data):
    return load_volume(shared_data / "totalseg_case2_dicom")


def test_real_dicom_series(shared_data, real_series):
    import pydicom

    vol = real_series
    assert vol.shape == (512, 512, 20)
    assert vol.array.dtype == np.int16
    assert vol.spacing == pytest.approx((0.977, 0.977, 2.0), abs=1e-3)
    hu = vol.array
    assert np.percentile(hu, 1) < -900  # air outside the patient
    soft = hu[(hu >= -100) & (hu <= 200)]
    assert soft.size > 0.1 * hu.size
    assert 0 < np.median(soft) < 100
    assert hu.max() > 300  # bone or contrast

    headers = [
        pydicom.dcmread(f, stop_before_pixels=True)
        for f in sorted((shared_data / "totalseg_case2_dicom").iterdir())
    ]
    iop = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ipps = np.array([[float(v) for v in h.ImagePositionPatient] for h in headers])
    first = ipps[np.argmin(ipps @ normal)]
    np.testing.assert_allclose(vol.affine[:3, 3], first * [-1, -1, 1])
    assert float(headers[0].SliceThickness) == 3.0  # the affine does not use it
    # axial, supine: axis 0 runs to the patient's left, axis 1 to posterior
    np.testing.assert_allclose(
        vol.affine[:3, :3], np.diag([-0.9765625, -0.9765625, 2.0])
    )
    # the lowest slice's pixels are the file at that position, transposed
    lowest = int(np.argmin(ipps @ normal))
    path = sorted((shared_data / "totalseg_case2_dicom").iterdir())[lowest]
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array.T.astype(np.int32) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    np.testing.assert_array_equal(vol.array[:, :, 0], expected)


def test_real_nifti(shared_data):
    path = shared_data / "totalseg_case1" / "example_ct.nii.gz"
    vol = load_volume(path)
    img = nib.load(path)
    assert vol.shape == (122, 101, 112)
    assert vol.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert np.array_equal(vol.affine, img.affine)
    assert vol.array.dtype == img.get_data_dtype().newbyteorder("=")
    assert vol.array.min() == -1207 and vol.array.max() == 3382


def test_real_series_saved_as_nifti_round_trips(tmp_path, real_series):
    out = save_volume(real_series, tmp_path / "case2.nii.gz")
    back = load_volume(out)
    np.testing.assert_array_equal(back.array, real_series.array)
    np.testing.assert_allclose(back.affine, real_series.affine, rtol=0, atol=1e-5)


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, pancreas.io; "
        "print(sorted(m for m in ('nibabel', 'pydicom', 'keras', 'tensorflow') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------- unknown orientation
def _nifti_with_codes(path, sform_code, qform_code):
    import nibabel as nib

    array = np.zeros((8, 8, 4), np.int16)
    img = nib.Nifti1Image(array, np.diag([0.8, 0.8, 2.5, 1.0]))
    img.set_sform(img.affine, code=sform_code)
    img.set_qform(img.affine, code=qform_code)
    nib.save(img, path)
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_without_orientation_warns(tmp_path, suffix):
    import warnings

    from pancreas.exceptions import OrientationWarning
    from pancreas.io import load_volume

    path = _nifti_with_codes(tmp_path / f"noorient{suffix}", 0, 0)
    with pytest.warns(OrientationWarning, match=r"noorient.*sform and qform codes"):
        load_volume(path)
    for codes in [(1, 0), (0, 1), (2, 1)]:
        ok = _nifti_with_codes(tmp_path / f"ok{suffix}", *codes)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_volume(ok)


def test_nibabel_image_without_orientation_warns():
    import nibabel as nib

    from pancreas.exceptions import OrientationWarning
    from pancreas.io import as_volume

    img = nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), None)
    assert int(img.header["sform_code"]) == 0 == int(img.header["qform_code"])
    with pytest.warns(OrientationWarning, match="orientation is unknown"):
        as_volume(img, name="in-memory")


def test_dicom_series_summary_from_headers_matches_the_loaded_volume(tmp_path):
    from pancreas.persistence import cohort_summary

    folder = tmp_path / "series"
    make_series(folder, n=5, rows=8, cols=10, spacing=(0.7, 0.5), step=2.5)
    loaded = load_volume(folder)
    assert cohort_summary([folder]) == cohort_summary([loaded])
    assert cohort_summary([folder])["spacing_max"] == [0.5, 0.7, 2.5]
