"""Fuzzing the entry points: nothing but documented exceptions may escape.

Random arrays (0 to 5 dimensions, every dtype a user might have, tiny),
random affines (including singular, NaN and infinite ones), NIfTI files
written from them, random damage to a valid file, and random masks and
spacings for the metrics. ``pytest`` turns warnings into errors here, so a
stray ``ComplexWarning`` or ``RuntimeWarning`` counts as an escape too.

Documented exceptions: the ``pancreas.exceptions`` classes for
``pancreas.io.as_volume``, ``pancreas.io.load_volume`` and
``pancreas.record.make_record`` (see their ``Raises`` sections); ``ValueError``
(of which ``InvalidVolumeError`` is one) for the metrics.
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pancreas import metrics
from pancreas.exceptions import PancreasError
from pancreas.io import Volume, as_volume, load_volume, save_volume
from pancreas.record import CaseRecord, make_record

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
]


def shapes(max_dims: int = 5, max_side: int = 4) -> st.SearchStrategy[tuple]:
    """Mostly 3D shapes (the interesting case), also 4D with a trailing 1 and
    anything from 0 to ``max_dims`` dimensions, zero-length axes included."""
    three_d = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=max_side)
    return st.one_of(
        three_d,
        three_d,
        three_d.map(lambda s: (*s, 1)),
        hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side),
    )


def arrays(max_dims: int = 5, max_side: int = 4) -> st.SearchStrategy[np.ndarray]:
    """Tiny arrays of any of DTYPES (all values, NaN and infinity included)."""
    return st.tuples(st.sampled_from(DTYPES), shapes(max_dims, max_side)).flatmap(
        lambda args: hnp.arrays(*args)
    )


def _affine_from(kind: str, values: list[float]) -> np.ndarray:
    a = np.eye(4)
    a[:3, :] = np.reshape(values, (3, 4))
    if kind == "diagonal":
        a[:3, :3] = np.diag(np.abs(np.diag(a[:3, :3])) + 0.1)
    elif kind == "singular":
        a[:3, 2] = a[:3, 0]
    elif kind == "zero":
        a[:3, :3] = 0.0
    elif kind == "nan":
        a[1, 1] = np.nan
    elif kind == "inf":
        a[0, 3] = np.inf
    return a


affines = st.builds(
    _affine_from,
    st.sampled_from(["diagonal", "any", "singular", "zero", "nan", "inf"]),
    st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        min_size=12,
        max_size=12,
    ),
)


def _write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> bool:
    """Write ``array`` with ``affine`` in the sform; False where nibabel can't."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = nib.Nifti1Header()
            header.set_data_dtype(array.dtype)
            header.set_data_shape(array.shape)
            header.set_sform(affine, code=1)
            header.set_qform(None, code=0)
            nib.save(nib.Nifti1Image(array, None, header=header), path)
    except Exception:
        return False
    return True


def _why(exc: BaseException) -> str:
    """The gist of a message, for hypothesis' statistics."""
    return str(exc).split(": ", 1)[-1].split("(")[0].split(";")[0][:30]


def _check_volume(vol: Volume) -> None:
    """Whatever a loader returns must be a usable Volume (or refused later)."""
    assert isinstance(vol, Volume)
    assert vol.affine.shape == (4, 4)
    try:
        rec = make_record(vol, "fuzz")
    except PancreasError as exc:
        event(f"make_record refused: {_why(exc)}")
        return
    event("make_record accepted")
    assert isinstance(rec, CaseRecord)
    assert rec.volume.array.dtype == np.float32 and rec.volume.array.ndim == 3
    assert np.all(np.isfinite(rec.volume.array))
    assert all(s > 0 for s in rec.spacing)


# --------------------------------------------------------------------------- #
# as_volume / make_record on in-memory arrays, Volumes and nibabel images
# --------------------------------------------------------------------------- #
@FUZZ
@given(array=arrays(), affine=affines)
def test_fuzz_in_memory(array, affine):
    for item in (array, array.tolist(), Volume(array, affine, "fuzz")):
        try:
            vol = as_volume(item, name="fuzz")
        except PancreasError:
            continue
        _check_volume(vol)
    try:
        img = nib.Nifti1Image(array, affine)
    except Exception:  # nibabel's own refusal (bool, float16, bad affine)
        return
    try:
        vol = as_volume(img, name="fuzz")
    except PancreasError:
        return
    _check_volume(vol)


@FUZZ
@given(
    item=st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5).map(lambda s: f"/nonexistent/{s}.nii.gz"),
        st.lists(st.lists(st.integers(-5, 5), max_size=3), max_size=3),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
)
def test_fuzz_make_record_odd_objects(item):
    try:
        rec = make_record(item, "fuzz")
    except PancreasError:
        return
    assert isinstance(rec, CaseRecord)


label_arrays = st.one_of(
    arrays(max_dims=4, max_side=3),
    st.tuples(st.sampled_from(DTYPES), st.just((2, 3, 2))).flatmap(
        lambda args: hnp.arrays(*args)
    ),
    st.sampled_from([np.int16, np.int64, np.float32, np.float64]).flatmap(
        lambda dt: hnp.arrays(
            dt, (2, 3, 2), elements=st.sampled_from([0, 1, 2, 3, -1, 255])
        )
    ),
)


@FUZZ
@given(label=label_arrays, affine=affines)
def test_fuzz_labels(label, affine):
    rec = make_record(np.zeros((2, 3, 2), np.int16), "fuzz")
    for item in (label, Volume(label, affine, "fuzz_label.nii.gz")):
        try:
            out = rec.label_array(item)
        except PancreasError as exc:
            assert str(exc).startswith("fuzz")
            event(f"label refused: {_why(exc)}")
            continue
        event("label accepted")
        assert out.dtype == np.bool_ and out.shape == rec.shape
        assert set(np.unique(np.asarray(label)).tolist()) <= {0, 1, 2}


# --------------------------------------------------------------------------- #
# load_volume on NIfTI files written from random arrays and affines
# --------------------------------------------------------------------------- #
@FUZZ
@given(array=arrays(), affine=affines, gz=st.booleans())
def test_fuzz_load_random_nifti(tmp_path_factory, array, affine, gz):
    path = tmp_path_factory.mktemp("fuzz") / ("case.nii.gz" if gz else "case.nii")
    assume(_write_nifti(path, array, affine))
    try:
        vol = load_volume(path)
    except PancreasError as exc:
        assert str(path) in str(exc)
        event(f"load_volume refused: {type(exc).__name__}")
        return
    _check_volume(vol)
    assert vol.array.dtype.kind in "iuf" and vol.array.ndim == 3


def _valid_file(suffix: str) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1000, (6, 7, 5)).astype(np.int16)
    buf = io.BytesIO()
    img = nib.Nifti1Image(arr, np.diag([0.8, 0.8, 2.5, 1.0]))
    img.to_stream(buf)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if suffix == ".nii.gz" else raw


VALID = {suffix: _valid_file(suffix) for suffix in (".nii.gz", ".nii")}


@st.composite
def damaged(draw):
    suffix = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[suffix])
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "header", "dims"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how in ("header", "dims"):
        # damage the NIfTI header itself: anywhere (datatype, vox_offset,
        # scaling...), or its dim field (bytes 40-55: 8 int16)
        raw = bytearray(gzip.decompress(data)) if suffix == ".nii.gz" else data
        where = st.integers(0, 351) if how == "header" else st.integers(40, 55)
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(where)] = draw(st.integers(0, 255))
        if suffix == ".nii.gz":
            raw = bytearray(gzip.compress(bytes(raw), mtime=0))
        data = raw
    else:
        data = bytearray(draw(st.binary(max_size=600)))
    return suffix, bytes(data)


@FUZZ
@given(case=damaged())
def test_fuzz_load_damaged_file(tmp_path_factory, case):
    suffix, data = case
    path = tmp_path_factory.mktemp("damaged") / f"case{suffix}"
    path.write_bytes(data)
    try:
        vol = load_volume(path)
    except PancreasError as exc:
        assert str(path) in str(exc)
        event(f"load_volume refused: {type(exc).__name__}")
        return
    _check_volume(vol)


def test_valid_file_loads(tmp_path):
    for suffix, data in VALID.items():
        path = tmp_path / f"ok{suffix}"
        path.write_bytes(data)
        assert load_volume(path).shape == (6, 7, 5)
        save_volume(load_volume(path), tmp_path / f"again{suffix}")


# --------------------------------------------------------------------------- #
# metrics
# --------------------------------------------------------------------------- #
spacings = st.one_of(
    st.none(),
    st.lists(
        st.one_of(
            st.floats(0.1, 5.0),
            st.sampled_from([0.0, -1.0, math.nan, math.inf, 1e-300]),
        ),
        min_size=0,
        max_size=4,
    ),
)


@st.composite
def mask_pairs(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    other = draw(st.sampled_from(["same", "same", "same", "other"]))
    shape2 = (
        shape
        if other == "same"
        else draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    )
    dtype = draw(st.sampled_from([np.bool_, np.uint8, np.int64, np.float32]))
    elements = st.sampled_from([0, 1, 2]) if dtype != np.bool_ else st.booleans()
    if dtype == np.float32:
        elements = st.sampled_from([0.0, 1.0, 0.5, math.nan])
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    b = draw(hnp.arrays(dtype, shape2, elements=elements))
    return a, b


METRICS = [
    metrics.dice_score,
    metrics.jaccard_score,
    metrics.precision_score,
    metrics.recall_score,
]
SURFACE = [
    metrics.hausdorff_distance_95,
    metrics.average_symmetric_surface_distance,
]


@settings(max_examples=100, deadline=None)
@given(masks=mask_pairs(), spacing=spacings, tolerance=st.floats(-1.0, 5.0))
def test_fuzz_metrics(masks, spacing, tolerance):
    a, b = masks
    for func in METRICS:
        try:
            value = func(a, b)
        except ValueError:
            continue
        assert 0.0 <= value <= 1.0
    for func in SURFACE:
        try:
            value = func(a, b, spacing=spacing)
        except ValueError:
            continue
        assert value >= 0.0
    try:
        value = metrics.surface_dice(a, b, spacing=spacing, tolerance=tolerance)
    except ValueError:
        pass
    else:
        assert 0.0 <= value <= 1.0
    try:
        scores = metrics.evaluate_segmentation(
            a, b, spacing=spacing, tolerance=tolerance
        )
    except ValueError:
        return
    assert set(scores) == {
        "dice",
        "jaccard",
        "precision",
        "recall",
        "hd95",
        "assd",
        "surface_dice",
    }


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_metrics_refuse_bad_spacing(bad):
    a = np.zeros((4, 4), bool)
    a[1:3, 1:3] = True
    with pytest.raises(ValueError, match="spacing must be positive and finite"):
        metrics.hausdorff_distance_95(a, a, spacing=(1.0, bad))
