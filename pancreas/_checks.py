"""Checks of CT and label volumes: what pancreas refuses, and why.

A CAD system that silently segments a 0-255 PNG stack, a flipped label or a
truncated file is worse than one that refuses. These checks are shared by
:mod:`pancreas.io`, :mod:`pancreas.record` and the estimators; every message
reads ``"<case or file>: <what is wrong>; <what to do>"``.

The rules, and the constants they use:

* **Shape.** A CT or label volume is 3D and has voxels; each axial slice has
  at least :data:`MIN_INPLANE_VOXELS` voxels along both in-plane axes (SLIC
  superpixels and the random-forest features need a neighbourhood; a CT
  slice is usually 512 x 512).
* **Values.** A CT is a real, finite number per voxel: bool (a mask), complex
  and non-numeric arrays, NaN and infinity are refused. A constant volume
  holds no image and is refused, unless it is all air (at or below the body
  threshold): then it has no body, no superpixels and an empty segmentation.
* **Hounsfield units** (:func:`check_hounsfield`). A CT in HU has air near
  -1000 HU (around the body, in the bowel and the lung bases) and fat near
  -100 HU, so a sizeable share of its voxels is negative. A volume is taken
  for raw stored values, not HU, when at least 99 % of its voxels are >= 0
  and its 99.9th percentile is at most :data:`MAX_STORED_VALUE` (4095): that
  is, almost nothing below -200 HU (no air) nor below 0 (no fat) and a
  range consistent with unsigned 8-bit (0-255: PNG or JPEG slices, images
  scaled to [0, 1]) or 12-bit (0-4095: DICOM pixel data without
  RescaleSlope/RescaleIntercept) storage. Values below
  :data:`PADDING_BELOW` (-1024) are ignored as padding outside the scanner's
  field of view, so raw data padded with -2000 is still recognised. The
  percentiles are those of up to a million evenly spaced voxels.
* **Affine.** Finite, non-singular, voxel sizes between
  :data:`MIN_VOXEL_MM` and :data:`MAX_VOXEL_MM` mm.
* **Spacing** (a :class:`~pancreas.exceptions.SpacingWarning`, not an
  error): pixels larger than :data:`MAX_PIXEL_MM` (3 mm) or slices further
  apart than :data:`MAX_SLICE_MM` (10 mm) centre to centre.
* **Like the training data** (:func:`outside_training_range`, a note for
  ``pancreas segment``, not an error): a voxel spacing more than
  :data:`TRAINING_RANGE_TOLERANCE` (25 %) outside the range of the model's
  training cohort, as its model files record it.
* **Labels.** On the image's grid (a label storing that grid in another
  voxel order is reordered, see :meth:`pancreas.record.CaseRecord.label_array`;
  the HU check of alignment is :mod:`pancreas.alignment`); values 0
  (background), 1 (pancreas) or 2 (tumour in the Medical Segmentation
  Decathlon, counted as pancreas), as integers, floats or bools; training
  needs at least one label with a pancreas voxel.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pancreas.exceptions import InvalidVolumeError, SpacingWarning

__all__ = [
    "HOW_TO_PASS_AN_ARRAY",
    "EMPTY_VALIDATION",
    "HU_OVERRIDE",
    "LABEL_VALUES",
    "MAX_PIXEL_MM",
    "MAX_SLICE_MM",
    "MAX_STORED_VALUE",
    "MAX_VOXEL_MM",
    "MIN_INPLANE_VOXELS",
    "MIN_VOXEL_MM",
    "PADDING_BELOW",
    "TRAINING_RANGE_TOLERANCE",
    "check_affine",
    "check_any_pancreas",
    "check_cases",
    "check_ct_dtype",
    "check_finite",
    "check_fit_inputs",
    "check_hounsfield",
    "check_label_values",
    "check_min_size",
    "check_not_constant",
    "check_shape_3d",
    "check_validation_labels",
    "outside_training_range",
    "warn_empty_masks",
    "warn_outside_training",
    "warn_spacing",
]

#: Smallest number of voxels along each in-plane axis of a CT.
MIN_INPLANE_VOXELS = 8
#: In-plane pixels larger than this (mm) give a SpacingWarning.
MAX_PIXEL_MM = 3.0
#: Slices further apart than this (mm, centre to centre) give a SpacingWarning.
MAX_SLICE_MM = 10.0
#: Largest value of unsigned 12-bit stored CT pixel data.
MAX_STORED_VALUE = 4095.0
#: Values below this are padding outside the field of view (HU check only).
PADDING_BELOW = -1024.0
#: Smallest and largest plausible voxel size in mm.
MIN_VOXEL_MM = 1e-3
MAX_VOXEL_MM = 1e3
#: How far (relative) a case's spacing may lie outside the training range.
TRAINING_RANGE_TOLERANCE = 0.25
#: Values a pancreas label may hold (2 = MSD tumour, counted as pancreas).
LABEL_VALUES = (0, 1, 2)
#: How to switch the Hounsfield check off, quoted in its message.
HU_OVERRIDE = (
    "if the values really are Hounsfield units, switch this check off with "
    "SuperpixelGenerator(check_hu=False) (superpixels__check_hu=False on a "
    "pipeline, --no-hu-check on the command line)"
)
# Voxels sampled for the Hounsfield check.
_HU_SAMPLE = 1_000_000


def _fmt(value: float) -> str:
    return f"{float(value):.6g}"


def check_shape_3d(shape: Sequence[int], name: str, what: str = "CT volume") -> None:
    """Refuse anything but a 3D shape with at least one voxel.

    Parameters
    ----------
    shape : sequence of int
        The array's shape.
    name : str
        The case or file, for the message.
    what : str, default="CT volume"
        What the array is, for the message.

    Raises
    ------
    InvalidVolumeError
        If ``shape`` is not 3D or has a zero-length axis.

    Examples
    --------
    >>> check_shape_3d((4, 5, 6), "case")
    >>> check_shape_3d((4, 5), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: a CT volume must be 3D ...
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        hint = (
            "for a single 2D slice add an axis (array[..., None])"
            if len(shape) == 2
            else "pass one 3D volume per case"
        )
        raise InvalidVolumeError(
            f"{name}: a {what} must be 3D (I, J, K), got an array of shape "
            f"{shape}; {hint}"
        )
    if 0 in shape:
        raise InvalidVolumeError(
            f"{name}: the {what} is empty (shape {shape}, no voxels); check the "
            "file or the array you passed"
        )


def check_ct_dtype(dtype: Any, name: str) -> None:
    """Refuse a CT dtype that cannot hold Hounsfield units.

    Parameters
    ----------
    dtype : dtype
        The array's dtype.
    name : str
        The case or file, for the message.

    Raises
    ------
    InvalidVolumeError
        For bool (a mask, not a CT), complex and non-numeric dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> check_ct_dtype(np.int16, "case")
    >>> check_ct_dtype(bool, "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: the CT has dtype bool, a mask ...
    """
    dt = np.dtype(dtype)
    if dt.kind == "b":
        raise InvalidVolumeError(
            f"{name}: the CT has dtype bool, a mask rather than an image in "
            "Hounsfield units; pass the CT itself (did you swap image and label?)"
        )
    if dt.kind == "c":
        raise InvalidVolumeError(
            f"{name}: the CT has complex dtype {dt}; a CT holds real Hounsfield "
            "units: pass the real part or an int16/float32 volume"
        )
    if dt.kind not in "iuf":
        raise InvalidVolumeError(
            f"{name}: the CT has non-numeric dtype {dt}; pass a numeric volume "
            "in Hounsfield units (int16 or float32)"
        )


def check_finite(array: NDArray[Any], name: str, what: str = "CT") -> None:
    """Refuse NaN and infinite voxels.

    Parameters
    ----------
    array : ndarray
        The voxels (any real dtype).
    name : str
        The case or file, for the message.
    what : str, default="CT"
        What the array is, for the message.

    Raises
    ------
    InvalidVolumeError
        If a voxel is NaN or infinite; the message counts them.

    Examples
    --------
    >>> import numpy as np
    >>> check_finite(np.zeros(3), "case")
    >>> check_finite(np.array([0.0, np.nan, np.inf]), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: the CT has 1 NaN and 1 ...
    """
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return
    finite = np.isfinite(a)
    if finite.all():
        return
    n_nan = int(np.isnan(a).sum())
    n_inf = int(a.size - finite.sum()) - n_nan
    raise InvalidVolumeError(
        f"{name}: the {what} has {n_nan} NaN and {n_inf} infinite voxel(s) (of "
        f"{a.size}); every voxel needs a finite value: fill the gaps (e.g. with "
        "-1000 HU, air) or re-export the volume"
    )


def check_affine(affine: NDArray[Any], name: str) -> None:
    """Refuse an affine that cannot place voxels in space.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine.
    name : str
        The case or file, for the message.

    Raises
    ------
    InvalidVolumeError
        If the affine has NaN or infinite entries, is singular (its voxel
        axes do not span 3D space) or has a voxel size outside
        [:data:`MIN_VOXEL_MM`, :data:`MAX_VOXEL_MM`] mm.

    Examples
    --------
    >>> import numpy as np
    >>> check_affine(np.diag([0.7, 0.7, 2.5, 1.0]), "case")
    >>> check_affine(np.diag([0.7, 0.0, 2.5, 1.0]), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: the affine is singular ...
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise InvalidVolumeError(
            f"{name}: the affine must have shape (4, 4), got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise InvalidVolumeError(
            f"{name}: the affine has NaN or infinite entries, so the voxels have "
            "no position or size; the header is corrupt: re-export the volume"
        )
    rzs = a[:3, :3]
    zooms = np.sqrt((rzs**2).sum(axis=0))
    shown = " x ".join(_fmt(z) for z in zooms)
    det = abs(float(np.linalg.det(rzs)))
    if np.any(zooms == 0) or det <= 1e-6 * float(np.prod(zooms)):
        raise InvalidVolumeError(
            f"{name}: the affine is singular (voxel size {shown} mm, its axes do "
            "not span 3D space); the header's voxel size or orientation "
            "(pixdim, sform/qform) is corrupt: fix it or re-export the volume"
        )
    if zooms.min() < MIN_VOXEL_MM or zooms.max() > MAX_VOXEL_MM:
        raise InvalidVolumeError(
            f"{name}: the voxel size {shown} mm is implausible for a CT (allowed "
            f"{MIN_VOXEL_MM:g} to {MAX_VOXEL_MM:g} mm); the header's units or "
            "voxel size are wrong: fix them or re-export the volume"
        )


def check_min_size(shape: Sequence[int], name: str) -> None:
    """Refuse a CT whose axial slices are too small to segment.

    Parameters
    ----------
    shape : sequence of int
        Canonical shape (axis 2 axial).
    name : str
        The case, for the message.

    Raises
    ------
    InvalidVolumeError
        If an in-plane axis has fewer than :data:`MIN_INPLANE_VOXELS` voxels.

    Examples
    --------
    >>> check_min_size((64, 64, 1), "case")
    >>> check_min_size((3, 3, 1), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: axial slices of 3 x 3 voxels ...
    """
    i, j = int(shape[0]), int(shape[1])
    if min(i, j) < MIN_INPLANE_VOXELS:
        raise InvalidVolumeError(
            f"{name}: axial slices of {i} x {j} voxels are too small to segment "
            f"(at least {MIN_INPLANE_VOXELS} x {MIN_INPLANE_VOXELS} are needed for "
            "superpixels and the ConvNet's crops; a CT slice is usually 512 x "
            "512); pass the whole scan, not a crop or a thumbnail"
        )


def check_not_constant(
    array: NDArray[Any], name: str, air_below: float = -500.0
) -> None:
    """Refuse a constant volume, unless it is all air.

    Parameters
    ----------
    array : ndarray
        The CT in HU (finite).
    name : str
        The case, for the message.
    air_below : float, default=-500.0
        A constant volume at or below this value is all air: it has no body,
        so no superpixels and an empty segmentation, and is accepted.

    Raises
    ------
    InvalidVolumeError
        If every voxel has the same value above ``air_below``.

    Examples
    --------
    >>> import numpy as np
    >>> check_not_constant(np.full((2, 2, 2), -1000.0), "case")
    >>> check_not_constant(np.zeros((2, 2, 2)), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: all 8 voxels have the value 0, ...
    """
    a = np.asarray(array)
    lo, hi = a.min(), a.max()
    if lo == hi and float(lo) > air_below:
        raise InvalidVolumeError(
            f"{name}: all {a.size} voxels have the value {_fmt(lo)}, a constant "
            "volume holds no image (a blank or failed export?); check the file "
            "or the array you passed"
        )


def check_hounsfield(array: NDArray[Any], name: str) -> None:
    """Refuse a CT whose values are not Hounsfield units (the rule is above).

    Parameters
    ----------
    array : ndarray
        The CT (finite values).
    name : str
        The case, for the message.

    Raises
    ------
    InvalidVolumeError
        If at least 99 % of the voxels (padding below -1024 left out) are >= 0
        and the 99.9th percentile is at most 4095: unsigned 8-bit or 12-bit
        stored values, not HU. The message says how to convert, and how to
        switch the check off (:data:`HU_OVERRIDE`).

    Examples
    --------
    >>> import numpy as np
    >>> hu = np.full((10, 10, 2), -1000.0); hu[2:8, 2:8] = 40.0
    >>> check_hounsfield(hu, "case")
    >>> check_hounsfield(hu + 1000.0, "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: the values are not Hounsfield ...
    """
    flat = np.asarray(array).reshape(-1)
    step = max(1, flat.size // _HU_SAMPLE)
    sample = flat[::step]
    sample = sample[sample >= PADDING_BELOW]
    if sample.size == 0:
        return
    lo, hi = (float(v) for v in np.percentile(sample, [1.0, 99.9]))
    if lo < 0.0 or hi > MAX_STORED_VALUE:
        return
    if hi <= 1.0:
        kind = "an image scaled to [0, 1]"
        todo = "pass the CT in Hounsfield units instead"
    elif hi <= 255.0:
        kind = "8-bit image values (0-255, e.g. PNG or JPEG slices)"
        todo = "pass the original CT in Hounsfield units instead"
    else:
        kind = "raw 12-bit stored values (0-4095, DICOM pixels not rescaled)"
        todo = (
            "convert them: HU = value * RescaleSlope + RescaleIntercept (usually "
            "slope 1, intercept -1024)"
        )
    raise InvalidVolumeError(
        f"{name}: the values are not Hounsfield units: 99 % of the voxels are >= "
        f"0 (1st to 99.9th percentile {_fmt(lo)} to {_fmt(hi)}) but a CT in HU "
        f"has air near -1000 and fat near -100; they look like {kind}; {todo}; "
        f"{HU_OVERRIDE}"
    )


def warn_spacing(spacing: Sequence[float], name: str) -> None:
    """Warn when a CT's voxels are too coarse for the method.

    Parameters
    ----------
    spacing : sequence of 3 float
        Canonical voxel spacing in mm (axis 2 axial).
    name : str
        The case, for the message.

    Warns
    -----
    SpacingWarning
        If a pixel is larger than :data:`MAX_PIXEL_MM` or the slices are
        further apart than :data:`MAX_SLICE_MM` (centre to centre, from the
        affine; not the DICOM SliceThickness).

    Examples
    --------
    >>> import warnings
    >>> from pancreas.exceptions import SpacingWarning
    >>> warn_spacing((0.7, 0.7, 2.5), "case")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_spacing((0.7, 0.7, 12.0), "case")
    >>> caught[0].category is SpacingWarning
    True
    """
    sx, sy, sz = (float(s) for s in spacing[:3])
    problems = []
    if max(sx, sy) > MAX_PIXEL_MM:
        problems.append(f"pixels larger than {MAX_PIXEL_MM:g} mm")
    if sz > MAX_SLICE_MM:
        problems.append(f"slices more than {MAX_SLICE_MM:g} mm apart")
    if not problems:
        return
    warnings.warn(
        f"{name}: voxel spacing {_fmt(sx)} x {_fmt(sy)} x {_fmt(sz)} mm "
        f"({' and '.join(problems)}) is too coarse for this method (designed for "
        "about 0.7 mm pixels and 1-2.5 mm slices), expect a poor segmentation; "
        "use the scan at its original resolution, or pass "
        "SuperpixelGenerator(check_spacing=False) (superpixels__check_spacing="
        "False on a pipeline) to silence this warning",
        SpacingWarning,
        stacklevel=3,
    )


def outside_training_range(
    spacing: Sequence[float],
    training: dict[str, Any] | None,
    name: str,
    tolerance: float = TRAINING_RANGE_TOLERANCE,
) -> str | None:
    """Say so when a case's voxel spacing is unlike the training cohort's.

    Parameters
    ----------
    spacing : sequence of 3 float
        The case's canonical voxel spacing in mm (axis 2 axial).
    training : dict or None
        The training-cohort summary of the model files (``"training"`` in
        ``manifest.json``, see :func:`pancreas.persistence.cohort_summary`),
        with ``spacing_min`` and ``spacing_max``; None or a summary without
        them checks nothing.
    name : str
        The case, for the message.
    tolerance : float, default=TRAINING_RANGE_TOLERANCE
        Relative margin around the range: an axis is outside when its
        spacing is below ``min / (1 + tolerance)`` or above
        ``max * (1 + tolerance)``.

    Returns
    -------
    str or None
        ``"<case>: ..."`` naming the spacing and the training range, or None
        when the case is within it.

    Examples
    --------
    >>> training = {"spacing_min": [0.6, 0.6, 1.0], "spacing_max": [0.9, 0.9, 2.5]}
    >>> outside_training_range((0.7, 0.7, 2.0), training, "a") is None
    True
    >>> print(outside_training_range((0.7, 0.7, 5.0), training, "b"))
    b: voxel spacing 0.7 x 0.7 x 5 mm is outside the model's training range \
(0.6-0.9 x 0.6-0.9 x 1-2.5 mm); the segmentation may be unreliable: check it, \
or train on scans like this one
    """
    if not training or "spacing_min" not in training or "spacing_max" not in training:
        return None
    lo = [float(v) for v in training["spacing_min"]]
    hi = [float(v) for v in training["spacing_max"]]
    case = [float(v) for v in spacing[:3]]
    factor = 1.0 + float(tolerance)
    if all(lo[i] / factor <= case[i] <= hi[i] * factor for i in range(3)):
        return None
    here = " x ".join(f"{v:.3g}" for v in case)
    span = " x ".join(f"{a:.3g}-{b:.3g}" for a, b in zip(lo, hi, strict=True))
    return (
        f"{name}: voxel spacing {here} mm is outside the model's training range "
        f"({span} mm); the segmentation may be unreliable: check it, or train "
        "on scans like this one"
    )


def check_label_values(array: NDArray[Any], name: str) -> None:
    """Refuse a label whose values are not 0, 1 or 2.

    Parameters
    ----------
    array : ndarray
        The label voxels.
    name : str
        The case, for the message.

    Raises
    ------
    InvalidVolumeError
        For complex or non-numeric dtypes, and for values other than 0
        (background), 1 (pancreas) or 2 (MSD tumour): negative, larger,
        fractional or NaN values; the message lists the offending values.

    Examples
    --------
    >>> import numpy as np
    >>> check_label_values(np.array([0, 1, 2], np.uint8), "case")
    >>> check_label_values(np.array([0.0, 1.0]), "case")
    >>> check_label_values(np.array([0, 255], np.uint8), "case")
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: case: label values must be 0 ...
    """
    a = np.asarray(array)
    kind = a.dtype.kind
    if kind == "b" or a.size == 0:
        return
    if kind not in "iuf":
        raise InvalidVolumeError(
            f"{name}: the label has dtype {a.dtype}; a label holds the integers "
            "0 (background), 1 (pancreas) and 2 (tumour): pass it as uint8"
        )
    if kind in "iu":
        if a.min() >= 0 and a.max() <= 2:
            return
        bad = a[(a < 0) | (a > 2)]
    else:
        ok = (a == 0) | (a == 1) | (a == 2)
        if ok.all():
            return
        bad = a[~ok]
    values = np.unique(bad)
    shown = ", ".join(_fmt(v) for v in values[:8])
    more = f" and {values.size - 8} more" if values.size > 8 else ""
    raise InvalidVolumeError(
        f"{name}: label values must be 0 (background), 1 (pancreas) or 2 "
        f"(tumour, counted as pancreas), found {shown}{more} in {bad.size} "
        "voxel(s); pass the pancreas label itself, or a binary mask "
        "(e.g. (label > 0).astype('uint8')) after checking what the values mean"
    )


def check_any_pancreas(
    labels: Sequence[NDArray[Any]],
    names: Sequence[str],
    *,
    what: str = "training",
    consequence: str = "so there is nothing to learn",
    labels_name: str = "y",
    cases_name: str = "X",
) -> None:
    """Refuse a training set whose labels hold no pancreas at all.

    Parameters
    ----------
    labels : sequence of ndarray
        The (bool) label of each training case.
    names : sequence of str
        The cases, for the message.
    what : str, default="training"
        Which labels these are, for the message.
    consequence : str, default="so there is nothing to learn"
        Why that is fatal, for the message.
    labels_name, cases_name : str, default="y", "X"
        The arguments holding the labels and the cases, for the message.

    Raises
    ------
    InvalidVolumeError
        If no label has a non-zero voxel.

    Examples
    --------
    >>> import numpy as np
    >>> check_any_pancreas([np.zeros(3, bool), np.ones(3, bool)], ["a", "b"])
    >>> check_any_pancreas([np.zeros(3, bool)], ["a"])
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: a: no training label marks ...
    """
    if any(np.any(lab) for lab in labels):
        return
    shown = ", ".join(str(n) for n in list(names)[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    raise InvalidVolumeError(
        f"{shown}{more}: no {what} label marks any pancreas voxel (all "
        f"{len(labels)} label volume(s) are empty), {consequence}; "
        f"check that {labels_name} holds the pancreas labels (non-zero = "
        f"pancreas) in the same order as {cases_name}"
    )


# ---------------------------------------------------------------------------
# What the Pipeline checks before it runs, and warns about after
# ---------------------------------------------------------------------------

#: How to give a bare array its grid, quoted when one is refused.
HOW_TO_PASS_AN_ARRAY = (
    "wrap it with its voxel-to-world affine: pancreas.io.Volume(array, "
    "affine), with affine = the nibabel image's .affine, or "
    "numpy.diag([sx, sy, sz, 1.0]) for voxels of sx x sy x sz mm along the "
    "array's axes (axis 2 the slices); or pass the NIfTI path, the DICOM "
    "folder or the nibabel image itself"
)


def _case_name(item: Any, index: int, what: str) -> str:
    for attr in ("case_id", "source"):
        name = getattr(item, attr, None)
        if name:
            return str(name)
    if isinstance(item, str) or hasattr(item, "__fspath__"):
        return str(item)
    getname = getattr(item, "get_filename", None)
    if callable(getname) and getname():
        return str(getname())
    return f"{what}[{index}]"


def check_cases(X: Any, what: str = "X") -> None:
    """Refuse CT volumes given as bare arrays, which carry no voxel spacing.

    A plain array would be read as 1 mm voxels in an unknown orientation:
    the superpixel sizes, the crops and the smoothing (all in mm) would be
    wrong and the segmentation silently empty. Lists, tuples and arrays of
    cases are checked item by item; other sequences (such as
    :class:`~pancreas.datasets.LazyVolumes`, which yield Volumes) are not
    indexed here.

    Parameters
    ----------
    X : sequence of CT volumes
        The cases.
    what : str, default="X"
        The argument's name, for the message.

    Raises
    ------
    InvalidVolumeError
        Naming the first bare array and showing how to pass its affine.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> check_cases([Volume(np.zeros((8, 8, 2)), np.diag([0.7, 0.7, 2.5, 1]))])
    >>> check_cases([np.zeros((8, 8, 2))])
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: X[0]: a bare array of shape ...
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        raise InvalidVolumeError(
            f"{what}: a bare array of shape {X.shape} has no voxel spacing or "
            f"orientation; pass a list with one volume per case and "
            f"{HOW_TO_PASS_AN_ARRAY}"
        )
    if not isinstance(X, list | tuple | np.ndarray):
        return
    for i, item in enumerate(X):
        if isinstance(item, np.ndarray | list | tuple):
            shape = np.shape(item) if not isinstance(item, np.ndarray) else item.shape
            raise InvalidVolumeError(
                f"{what}[{i}]: a bare array of shape {tuple(shape)} has no voxel "
                "spacing or orientation (it would be read as 1 mm voxels, and "
                "the superpixels, crops and smoothing, all in mm, would be "
                f"wrong); {HOW_TO_PASS_AN_ARRAY}"
            )


def check_fit_inputs(
    X: Any, y: Any, *, X_val: Any = None, y_val: Any = None
) -> None:
    """What ``Pipeline.fit`` needs before any stage runs: cases and labels.

    Parameters
    ----------
    X : sequence of CT volumes
        Training cases.
    y : sequence of label volumes or None
        Their labels.
    X_val, y_val : sequences or None, default=None
        Validation cases and their labels.

    Raises
    ------
    ValueError
        ``y`` is None (the method learns from labels), ``X_val`` comes without
        ``y_val`` (or the reverse), or a sequence and its labels differ in
        length.
    InvalidVolumeError
        A case is a bare array (see :func:`check_cases`).

    Examples
    --------
    >>> check_fit_inputs(["a.nii.gz"], None)
    Traceback (most recent call last):
    ...
    ValueError: Pipeline.fit: labels are required ...
    """
    if y is None:
        raise ValueError(
            "Pipeline.fit: labels are required (y is None); the method learns "
            "from them: pass y, one label volume per case of X (non-zero = "
            "pancreas), in the same order as X"
        )
    check_cases(X, "X")
    _check_same_length(X, y, "X", "y")
    if X_val is None and y_val is None:
        return
    if y_val is None:
        raise ValueError(
            "Pipeline.fit: X_val was given without y_val; the validation cases "
            "choose the threshold from their labels: pass y_val, one label per "
            "case of X_val"
        )
    if X_val is None:
        raise ValueError(
            "Pipeline.fit: y_val was given without X_val; pass the validation "
            "cases as X_val"
        )
    check_cases(X_val, "X_val")
    _check_same_length(X_val, y_val, "X_val", "y_val")
    check_validation_labels(X_val, y_val)


#: Why all-empty validation labels are refused, quoted in the message.
EMPTY_VALIDATION = (
    "so the refiner cannot choose its threshold (the best one for empty "
    "labels empties every mask): give validation cases that show the "
    "pancreas, or a fixed threshold (GaussianRefiner(threshold=...), "
    "refiner__threshold on a pipeline)"
)


def check_validation_labels(X_val: Any, y_val: Any) -> None:
    """Refuse validation labels that are all empty, before any training.

    The validation cases choose the refiner's threshold; with no pancreas in
    any label, the best threshold is the one that empties every mask. The
    labels are read once here (a validation set is small), so that this is
    reported before the stages train, not after.

    Parameters
    ----------
    X_val : sequence of CT volumes
        The validation cases, for their names.
    y_val : sequence of label volumes
        Their labels.

    Raises
    ------
    InvalidVolumeError
        If no label has a non-zero voxel.

    Examples
    --------
    >>> import numpy as np
    >>> check_validation_labels(["a.nii.gz"], [np.ones((2, 2, 2))])
    >>> check_validation_labels(["a.nii.gz"], [np.zeros((2, 2, 2))])
    Traceback (most recent call last):
    ...
    pancreas.exceptions.InvalidVolumeError: a.nii.gz: no validation label ...
    """
    from pancreas.io import as_volume

    names = getattr(X_val, "paths", X_val)
    named = isinstance(names, list | tuple)
    labels = []
    for i in range(len(y_val)):
        labels.append(np.any(as_volume(y_val[i], name=f"y_val[{i}]").array))
        if labels[-1]:
            return
    check_any_pancreas(
        labels,
        [
            _case_name(names[i], i, "X_val") if named else f"X_val[{i}]"
            for i in range(len(labels))
        ],
        what="validation",
        consequence=EMPTY_VALIDATION,
        labels_name="y_val",
        cases_name="X_val",
    )


def _check_same_length(X: Any, y: Any, x_name: str, y_name: str) -> None:
    try:
        n_x, n_y = len(X), len(y)
    except TypeError:
        return  # checked by the stages, which index them
    if n_x != n_y:
        raise ValueError(
            f"Pipeline.fit: {x_name} has {n_x} case(s) but {y_name} has {n_y} "
            "label(s); give one label per case, in the same order"
        )


def warn_outside_training(X: Any, training: dict[str, Any] | None) -> None:
    """Warn about each case whose voxel spacing is unlike the training cohort's.

    The same rule as ``pancreas segment`` (:func:`outside_training_range`);
    NIfTI files are read from their header only.

    Parameters
    ----------
    X : sequence of CT volumes
        The cases about to be segmented.
    training : dict or None
        The fitted pipeline's ``training_summary_`` (or a model's manifest
        ``training``); None checks nothing.

    Warns
    -----
    SpacingWarning
        One per case outside the range.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> training = {"spacing_min": [0.6, 0.6, 1.0], "spacing_max": [0.9, 0.9, 2.5]}
    >>> thick = Volume(np.zeros((8, 8, 2)), np.diag([0.7, 0.7, 5.0, 1]), "thick")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_outside_training([thick], training)
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    thick: voxel spacing 0.7 x 0.7 x 5 mm is outside the model's training range...
    """
    if not training or "spacing_min" not in training:
        return
    from pancreas.io import _case_grid

    items = getattr(X, "paths", X)
    if not isinstance(items, list | tuple):
        return  # a lazy sequence: not loaded twice for a warning
    for i, item in enumerate(items):
        name, _, spacing = _case_grid(item, i)
        note = outside_training_range(spacing, training, name)
        if note is not None:
            warnings.warn(note, SpacingWarning, stacklevel=3)


def warn_empty_masks(X: Any, masks: Sequence[NDArray[Any]], threshold: float) -> None:
    """Warn about each case whose segmentation is empty.

    Parameters
    ----------
    X : sequence of CT volumes
        The cases, for their names.
    masks : sequence of ndarray
        One mask per case (non-zero = pancreas).
    threshold : float
        The threshold that gave them, for the message.

    Warns
    -----
    SegmentationWarning
        One per empty mask, as ``pancreas segment`` reports them.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_empty_masks(["a.nii.gz"], [np.zeros((2, 2, 2))], 0.3)
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    a.nii.gz: empty segmentation (no voxel above the threshold 0.30)...
    """
    from pancreas.exceptions import SegmentationWarning

    items = getattr(X, "paths", X)
    for i, mask in enumerate(masks):
        if np.any(mask):
            continue
        named = isinstance(items, list | tuple) and i < len(items)
        name = _case_name(items[i], i, "X") if named else f"X[{i}]"
        warnings.warn(
            f"{name}: empty segmentation (no voxel above the threshold "
            f"{threshold:.2f}); the scan may not show the pancreas, or be unlike "
            "the training cases (field of view, spacing, contrast phase): check "
            "it",
            SegmentationWarning,
            stacklevel=3,
        )


# The Pipeline's hooks: called at the top of fit and around predict, so that
# pancreas.pipeline stays a thin layer over scikit-learn's Pipeline.
def _final_has(method: str) -> Any:
    """``available_if`` check: the pipeline's last step has ``method``."""

    def check(pipeline: Any) -> bool:
        last = pipeline.steps[-1][1]
        return last == "passthrough" or hasattr(last, method)

    return check


def _before_fit(
    pipeline: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None
) -> dict[str, Any] | None:
    """Validate every step's parameters and the inputs; summarise X.

    Returns the training summary that becomes ``training_summary_``:
    :func:`~pancreas.persistence.cohort_summary` of ``X`` (NIfTI headers
    only, no voxels) and the number of validation cases.
    """
    from pancreas._validation import validate_step_params
    from pancreas.persistence import cohort_summary

    validate_step_params(pipeline.steps)
    if y is not None or X_val is not None or any(
        getattr(est, "_requires_y", False) for _, est in pipeline.steps
    ):
        check_fit_inputs(X, y, X_val=X_val, y_val=y_val)
    else:
        check_cases(X, "X")
    if X is None:  # a pipeline of stages that learn nothing (superpixels)
        return None
    summary = cohort_summary(X)
    summary["n_validation_cases"] = 0 if X_val is None else len(X_val)
    return summary


def _before_predict(pipeline: Any, X: Any) -> None:
    check_cases(X, "X")
    warn_outside_training(X, getattr(pipeline, "training_summary_", None))


def _after_predict(pipeline: Any, X: Any, outputs: Any, *, proba: bool) -> None:
    threshold = getattr(pipeline.steps[-1][1], "threshold_", None)
    if threshold is None:
        return
    masks = [np.asarray(p) > threshold for p in outputs] if proba else outputs
    warn_empty_masks(X, masks, float(threshold))


def _keyed_for_memory(pipeline: Any, X: Any, y: Any) -> tuple[Any, Any]:
    """With ``memory=``, paths in X and y carry their files' identity.

    scikit-learn keys the cache of each fitted transformer on a hash of its
    inputs; a path alone would reuse stale outputs after the file at that
    path changed. See :func:`pancreas.io._with_file_stamps`.
    """
    if getattr(pipeline, "memory", None) is None:
        return X, y
    from pancreas.io import _with_file_stamps

    return _with_file_stamps(X), _with_file_stamps(y)
