"""Is a label aligned with its CT? A check on the HU profile inside the label.

A label that is flipped or transposed relative to its image, but carries a
header consistent with the image, passes every geometric check and trains
the model on the wrong tissue. Published preprocessing of NIH Pancreas-CT
transposes the label arrays relative to the DICOM pixel arrays, and labels
converted with some tools must be flipped along y to overlay the images.

The pancreas is soft tissue: inside a right label the CT is a narrow band of
HU (median about 30-150 HU depending on the contrast phase, interquartile
range well under 80 HU, hardly any air below -200 HU or bone and contrast
above 300 HU). A flipped, transposed or shifted label covers fat, gas, bowel
wall, vessels and bone: a low or high median, a wide spread and more voxels
outside the soft-tissue window. :func:`check_label_alignment` measures this
profile for the label as given and for its in-plane flips and transposes
(the eight ways of laying a square slice on itself) and stops when another
alignment is clearly more plausible, naming it.

Alignments are named in the label's canonical (RAS+) voxel order, where array
axis 0 runs right-left (x), axis 1 posterior-anterior (y) and axis 2 along
the body (z): ``"flip-x"`` reverses axis 0, ``"flip-y"`` axis 1,
``"flip-xy"`` both, ``"transpose"`` swaps axes 0 and 1, and
``"transpose-flip-x"`` etc. transpose first, then flip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nibabel import orientations
from numpy.typing import NDArray

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume, as_volume

__all__ = [
    "ALIGNMENTS",
    "HUProfile",
    "LabelAlignmentError",
    "LabelCheck",
    "align_label",
    "apply_label_alignment",
    "check_label_alignment",
    "hu_profile",
]

#: The label as stored, its in-plane flips and transposes (transpose first).
ALIGNMENTS: tuple[str, ...] = (
    "as-is",
    "flip-x",
    "flip-y",
    "flip-xy",
    "transpose",
    "transpose-flip-x",
    "transpose-flip-y",
    "transpose-flip-xy",
)
#: What a loader's ``label_alignment`` accepts: check, or apply one alignment.
LABEL_ALIGNMENT_OPTIONS: tuple[str, ...] = ("check", *ALIGNMENTS)

#: HU below which a voxel is air or gas, above which bone or dense contrast.
LOW_HU, HIGH_HU = -200.0, 300.0
#: Range of the median HU of a pancreas (fatty gland to arterial phase).
MEDIAN_RANGE = (-20.0, 200.0)
#: Interquartile range (HU) above which the label spans several tissues.
MAX_IQR = 80.0
#: Implausibility at or below which an alignment fits the pancreas.
FITS = 0.25
#: How much more implausible the label as given must be than another
#: alignment for that one to be "clearly more plausible".
MARGIN = 0.3
#: Implausibility above which the label as given fits no soft tissue at all.
NO_FIT = 1.0
#: Labels with fewer voxels are too small to judge and are not checked.
MIN_VOXELS = 20


class LabelAlignmentError(InvalidVolumeError):
    """A label is not aligned with its CT (HU profile), or not on its grid.

    Raised by :func:`check_label_alignment` and, listing every refused case,
    by :meth:`pancreas.datasets.Dataset.verify_labels`. A subclass of
    :class:`~pancreas.exceptions.InvalidVolumeError` (so of ``ValueError``).

    Examples
    --------
    >>> from pancreas.alignment import LabelAlignmentError
    >>> issubclass(LabelAlignmentError, ValueError)
    True
    """


@dataclass(frozen=True)
class HUProfile:
    """The CT's Hounsfield units inside a label.

    Parameters
    ----------
    median : float
        Median HU inside the label.
    iqr : float
        Interquartile range (75th minus 25th percentile), HU.
    below : float
        Share of the label's voxels below -200 HU (air, gas).
    above : float
        Share of the label's voxels above 300 HU (bone, dense contrast).
    n_voxels : int
        Number of voxels in the label.

    Examples
    --------
    >>> p = HUProfile(median=90.0, iqr=40.0, below=0.0, above=0.01, n_voxels=900)
    >>> str(p)
    'median 90 HU, IQR 40 HU, 0.0% < -200 HU, 1.0% > 300 HU'
    >>> round(p.implausibility, 2)
    0.01
    """

    median: float
    iqr: float
    below: float
    above: float
    n_voxels: int

    @property
    def implausibility(self) -> float:
        """How far the profile is from soft tissue (0: a plausible pancreas).

        The share of voxels outside -200..300 HU, plus the median's distance
        from -20..200 HU and the interquartile range's excess over 80 HU,
        both per 100 HU.
        """
        lo, hi = MEDIAN_RANGE
        off_median = max(0.0, lo - self.median, self.median - hi)
        wide = max(0.0, self.iqr - MAX_IQR)
        return self.below + self.above + (off_median + wide) / 100.0

    def __str__(self) -> str:
        return (
            f"median {self.median:.0f} HU, IQR {self.iqr:.0f} HU, "
            f"{100 * self.below:.1f}% < {LOW_HU:.0f} HU, "
            f"{100 * self.above:.1f}% > {HIGH_HU:.0f} HU"
        )


def hu_profile(ct: NDArray[Any], mask: NDArray[Any]) -> HUProfile:
    """Measure the CT's HU profile inside a mask.

    Parameters
    ----------
    ct : ndarray
        CT in Hounsfield units.
    mask : ndarray of bool, same shape as ``ct``
        The label (non-zero = inside).

    Returns
    -------
    HUProfile
        NaN median and IQR for an empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> ct = np.full((4, 4, 2), 60.0)
    >>> ct[0] = -1000.0
    >>> mask = np.zeros(ct.shape, bool)
    >>> mask[:2] = True
    >>> p = hu_profile(ct, mask)
    >>> p.below, p.n_voxels
    (0.5, 16)
    """
    values = np.asarray(ct)[np.asarray(mask) != 0].astype(np.float64)
    if values.size == 0:
        return HUProfile(float("nan"), float("nan"), 0.0, 0.0, 0)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return HUProfile(
        median=float(median),
        iqr=float(q3 - q1),
        below=float(np.mean(values < LOW_HU)),
        above=float(np.mean(values > HIGH_HU)),
        n_voxels=int(values.size),
    )


def align_label(array: NDArray[Any], alignment: str) -> NDArray[Any]:
    """Flip or transpose a label array in-plane, in canonical voxel order.

    Parameters
    ----------
    array : ndarray of shape (nx, ny, nz)
        Label in canonical (RAS+) voxel order.
    alignment : str
        One of :data:`ALIGNMENTS`; the transposing ones swap axes 0 and 1
        first, then flip.

    Returns
    -------
    ndarray
        A view of ``array``, flipped and transposed.

    Raises
    ------
    ValueError
        If ``alignment`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(4).reshape(2, 2, 1)
    >>> align_label(a, "flip-y")[:, :, 0].tolist()
    [[1, 0], [3, 2]]
    >>> align_label(a, "transpose")[:, :, 0].tolist()
    [[0, 2], [1, 3]]
    """
    if alignment not in ALIGNMENTS:
        raise ValueError(
            f"unknown label alignment {alignment!r}; use one of "
            + ", ".join(repr(a) for a in ALIGNMENTS)
        )
    out = np.asarray(array)
    if alignment.startswith("transpose"):
        out = np.swapaxes(out, 0, 1)
    flips = alignment.rpartition("flip-")[2] if "flip-" in alignment else ""
    if "x" in flips:
        out = out[::-1]
    if "y" in flips:
        out = out[:, ::-1]
    return out


def _fitting(shape: tuple[int, ...]) -> tuple[str, ...]:
    """The alignments a grid of this shape allows (transposes: square slices)."""
    if shape[0] == shape[1]:
        return ALIGNMENTS
    return tuple(a for a in ALIGNMENTS if not a.startswith("transpose"))


@dataclass(frozen=True)
class LabelCheck:
    """The outcome of :func:`check_label_alignment` for one case.

    Parameters
    ----------
    case_id : str
        The case.
    alignment : str
        The alignment applied to the label as stored (``"as-is"``: none).
    profiles : dict of str to HUProfile
        The HU profile of the label (after ``alignment``) under each
        alignment tried, ``"as-is"`` first. Empty if not measured.
    note : str, default=""
        Why the profile was not judged (a label too small), if so.

    Examples
    --------
    >>> LabelCheck("case", "as-is", {}).alignment
    'as-is'
    """

    case_id: str
    alignment: str
    profiles: dict[str, HUProfile] = field(default_factory=dict)
    note: str = ""


def apply_label_alignment(label: Any, alignment: str, name: str) -> Volume:
    """A label volume in its canonical voxel order with ``alignment`` applied.

    Parameters
    ----------
    label : path, nibabel image or Volume
        The label, with its affine.
    alignment : str
        One of :data:`ALIGNMENTS`.
    name : str
        The case, for messages.

    Returns
    -------
    Volume
        The label reordered to its closest canonical (RAS+) voxel order
        (nibabel's orientation tools), then flipped and transposed; the
        affine is the canonical one, so the label stays on its grid.

    Raises
    ------
    InvalidVolumeError
        A transposing alignment of a label whose slices are not square (or
        whose in-plane voxels are not square).

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> lab = np.zeros((2, 2, 1), np.uint8)
    >>> lab[0, 1, 0] = 1
    >>> out = apply_label_alignment(Volume(lab, np.eye(4)), "flip-y", "case")
    >>> out.array[:, :, 0].tolist()
    [[1, 0], [0, 0]]
    """
    vol = as_volume(label, name=f"{name} label")
    array = np.asarray(vol.array)
    ornt = orientations.io_orientation(vol.affine)
    canonical = orientations.apply_orientation(array, ornt)
    affine = vol.affine @ orientations.inv_ornt_aff(ornt, array.shape)
    if alignment.startswith("transpose"):
        zooms = np.sqrt((affine[:3, :2] ** 2).sum(axis=0))
        if canonical.shape[0] != canonical.shape[1] or not np.isclose(*zooms):
            raise InvalidVolumeError(
                f"{name}: label_alignment {alignment!r} transposes the slices, "
                f"but the label's slices are {canonical.shape[0]} x "
                f"{canonical.shape[1]} voxels of {zooms[0]:.3g} x "
                f"{zooms[1]:.3g} mm: only square slices can be transposed"
            )
    aligned = np.ascontiguousarray(align_label(canonical, alignment))
    return Volume(aligned, affine, vol.source)


def _verdict(case_id: str, profiles: dict[str, HUProfile]) -> None:
    """Raise when the HU profiles say the label is not aligned with its CT."""
    given = profiles["as-is"]
    others = {a: p for a, p in profiles.items() if a != "as-is"}
    best = min(others, key=lambda a: others[a].implausibility) if others else None
    how = (
        "pass label_alignment={{{case!r}: {a!r}}} to the loader (or "
        "--label-alignment {case}={a} to pancreas train/evaluate) to apply it"
    )
    override = (
        f"if the label is right as stored (for example a fatty pancreas), "
        f"pass label_alignment={{{case_id!r}: 'as-is'}} (--label-alignment "
        f"{case_id}=as-is) to skip this check"
    )
    if best is not None:
        gain = given.implausibility - others[best].implausibility
        if others[best].implausibility <= FITS and gain >= MARGIN:
            fitting = [
                a
                for a, p in others.items()
                if p.implausibility <= FITS and a != best
            ]
            also = f" ({', '.join(fitting)} also fit)" if fitting else ""
            raise LabelAlignmentError(
                f"{case_id}: the label does not look aligned with its CT. "
                f"Inside the label as stored the CT has {given}; with the "
                f"label {best} it has {others[best]}, which fits the pancreas "
                f"(soft tissue){also}. The label was probably stored with its "
                "axes in another order than the image's pixels; "
                + how.format(case=case_id, a=best)
                + f"; {override}"
            )
    if given.implausibility >= NO_FIT:
        raise LabelAlignmentError(
            f"{case_id}: inside the label the CT has {given}, which is not "
            "the soft tissue of a pancreas, and no in-plane flip or transpose "
            "of the label fits better: the label may be shifted, resampled "
            "wrongly or belong to another scan; check it over the image in a "
            f"viewer. {override[0].upper()}{override[1:]}"
        )


def check_label_alignment(
    image: Any,
    label: Any,
    case_id: str | None = None,
    *,
    alignment: str = "check",
) -> LabelCheck:
    """Check that a label lies on its CT's pancreas, not flipped or transposed.

    The label is first brought onto the image's grid as the pipeline does
    (:meth:`pancreas.record.CaseRecord.label_array`: same world grid, voxel
    order free). Then the HU profile inside it (median, interquartile range,
    share below -200 HU and above 300 HU) is compared with the profiles of
    its in-plane flips and transposes (:data:`ALIGNMENTS`).

    Parameters
    ----------
    image : path, nibabel image, Volume or ndarray
        The CT, in Hounsfield units.
    label : path, nibabel image, Volume or ndarray
        Its label (non-zero = pancreas).
    case_id : str, optional
        The case, named in every message. Default: the image's source.
    alignment : str, default="check"
        ``"check"``: judge the label as stored and raise if another
        alignment is clearly more plausible or none fits. One of
        :data:`ALIGNMENTS`: apply that alignment (in the label's canonical
        voxel order, see the module docstring) and do not judge; ``"as-is"``
        overrides the check.

    Returns
    -------
    LabelCheck
        The alignment applied and the profile of each alignment tried.

    Raises
    ------
    LabelAlignmentError
        With ``alignment="check"``: another alignment is clearly more
        plausible (the message names the case, the profiles and the
        alignment that fits, and how to apply it or override the check), or
        the label fits soft tissue in no alignment.
    InvalidVolumeError
        The label is not on the image's grid, or holds values other than
        0, 1 and 2 (see :func:`pancreas.record.check_labels`).
    ValueError
        ``alignment`` is not one of the options.

    Notes
    -----
    The rule, with the constants of this module: a profile's
    implausibility is the share of voxels outside -200..300 HU plus, per
    100 HU, the median's distance from -20..200 HU and the interquartile
    range's excess over 80 HU. The label as given is refused when another
    alignment has implausibility at most 0.25 and at least 0.3 less than the
    given one, or when the given one reaches 1.0 and nothing fits better.
    Labels of fewer than 20 voxels are not judged. A left-right flip can
    move the pancreas onto the liver, which is soft tissue too: such a flip
    may pass unnoticed.

    Examples
    --------
    >>> from pancreas.phantom import make_synthetic_ct
    >>> from pancreas.alignment import align_label, check_label_alignment
    >>> ct, label = make_synthetic_ct(shape=(96, 96, 16), random_state=0)
    >>> check_label_alignment(ct, label, "case").alignment
    'as-is'
    >>> flipped = label.with_array(align_label(label.array, "flip-y"))
    >>> check_label_alignment(ct, flipped, "case")
    Traceback (most recent call last):
    ...
    pancreas.alignment.LabelAlignmentError: case: the label does not look ...
    """
    from pancreas.record import make_record

    if alignment not in LABEL_ALIGNMENT_OPTIONS:
        raise ValueError(
            f"{case_id or 'label'}: label_alignment must be one of "
            + ", ".join(repr(a) for a in LABEL_ALIGNMENT_OPTIONS)
            + f", got {alignment!r}"
        )
    record = make_record(image, case_id)
    name = record.case_id
    if alignment not in ("check", "as-is"):
        label = apply_label_alignment(label, alignment, name)
    mask = record.label_array(label)
    applied = "as-is" if alignment == "check" else alignment
    ct = record.volume.array
    if int(mask.sum()) < MIN_VOXELS:
        return LabelCheck(
            name,
            applied,
            {"as-is": hu_profile(ct, mask)},
            note=f"fewer than {MIN_VOXELS} label voxels: not judged",
        )
    profiles = {a: hu_profile(ct, align_label(mask, a)) for a in _fitting(mask.shape)}
    if alignment == "check":
        _verdict(name, profiles)
    return LabelCheck(name, applied, profiles)


def parse_label_alignment(
    value: str | Mapping[str, str] | None, case_ids: list[str]
) -> list[str]:
    """One alignment option per case from a loader's ``label_alignment``.

    Parameters
    ----------
    value : str, mapping of str to str, or None
        One option for every case, or options by case id (other cases:
        ``"check"``); the key ``"*"`` sets the default. None: ``"check"``.
    case_ids : list of str
        The cohort's cases.

    Returns
    -------
    list of str
        The option of each case, in order.

    Raises
    ------
    ValueError
        An unknown option or case id (the message lists them).

    Examples
    --------
    >>> parse_label_alignment({"b": "flip-y"}, ["a", "b"])
    ['check', 'flip-y']
    """
    if value is None:
        value = "check"
    if isinstance(value, str):
        by_case: dict[str, str] = {"*": value}
    elif isinstance(value, Mapping):
        by_case = {str(k): v for k, v in value.items()}
    else:
        raise TypeError(
            "label_alignment must be a string or a mapping of case ids to "
            f"strings, not {type(value).__name__}"
        )
    bad = {k: v for k, v in by_case.items() if v not in LABEL_ALIGNMENT_OPTIONS}
    if bad:
        raise ValueError(
            "label_alignment: unknown option(s) "
            + ", ".join(f"{k}={v!r}" for k, v in bad.items())
            + "; use one of "
            + ", ".join(repr(a) for a in LABEL_ALIGNMENT_OPTIONS)
        )
    unknown = sorted(set(by_case) - set(case_ids) - {"*"})
    if unknown:
        raise ValueError(
            f"label_alignment names case(s) not in the cohort: {', '.join(unknown)}"
        )
    default = by_case.get("*", "check")
    return [by_case.get(c, default) for c in case_ids]
