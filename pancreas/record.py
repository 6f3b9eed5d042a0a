"""The per-case record that the pipeline's stages pass to one another.

Every stage of the method works on a :class:`CaseRecord`: the CT volume
reoriented to the closest canonical (RAS+) orientation, so that array axis 2
is always the axial (inferior to superior) axis, plus what earlier stages
added. Results are mapped back to each input's own grid with
:meth:`CaseRecord.to_native`.

Contract, in canonical voxel order (shape ``record.shape``):

``volume``
    :class:`~pancreas.io.Volume`, float32 Hounsfield units, RAS+ affine.
``body_mask``
    bool array, the patient's body (set by ``SuperpixelGenerator``).
``superpixels``
    int32 array; 0 outside the body, 1..``n_superpixels`` inside. Labels are
    unique across the whole volume and each superpixel lies within one axial
    slice (one index along axis 2).
``sp_proba``
    float32 array of shape (n_superpixels + 1,), indexed by label, the
    level-2 random-forest probability p_RF (entry 0 is 0). Set by ``RFCascade``.
``candidates``
    int32 array of the labels kept by ``RFCascade`` (the set S_RF).
``convnet_proba``
    float32 array of shape (len(candidates), n_scales): the ConvNet's
    pancreas probability for each candidate at each test scale. Column 0 is
    the Ns=1 result; the mean over columns is p_ConvNet. Set by
    ``SuperpixelConvNet``.

A record may live on a coarser in-plane *working grid*
(``SuperpixelGenerator(working_spacing=...)``, :meth:`CaseRecord.on_working_grid`):
its voxels are blocks of ``zoom`` voxels of the scan's canonical grid, every
array above is on the working grid, labels are brought to it (blocks at least
half pancreas) and :meth:`CaseRecord.to_native` brings results back to the
input's own grid (probabilities interpolated linearly, labels repeated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import orientations
from numpy.typing import NDArray

from pancreas._checks import (
    check_affine,
    check_ct_dtype,
    check_finite,
    check_label_values,
    check_shape_3d,
)
from pancreas._regrid import (
    block_factors,
    block_mean,
    blocks_at_least_half,
    grid_affine,
    upsample,
)
from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume, _canonical_grid, as_volume

__all__ = [
    "CanonicalLabel",
    "CaseRecord",
    "as_records",
    "check_labels",
    "check_sequence",
    "make_record",
    "record_at",
    "world_difference",
]


@dataclass(frozen=True, eq=False)
class CanonicalLabel:
    """A label already in a record's canonical voxel order, on its working grid.

    What :meth:`CaseRecord.label_array` returns, wrapped so that it can be
    passed back as a label without being taken for an array in the input's
    own voxel order (the streamed fit's labels, read from its work folder).

    Parameters
    ----------
    array : ndarray
        The label in the record's canonical voxel order and shape
        (``record.shape``): 0 background, 1 pancreas, 2 tumour.

    Examples
    --------
    >>> import numpy as np
    >>> rec = make_record(np.zeros((2, 3, 4)), "c")
    >>> int(rec.label_array(CanonicalLabel(np.ones((2, 3, 4), bool))).sum())
    24
    """

    array: NDArray[Any]


@dataclass(eq=False)
class CaseRecord:
    """One case on its way through the pipeline (see the module docstring).

    Parameters
    ----------
    case_id : str
        Name of the case, used in every message about it.
    volume : Volume
        The CT in canonical (RAS+) voxel order, float32 HU.
    native_affine : ndarray of shape (4, 4)
        Affine of the input as given.
    native_shape : tuple of int
        Shape of the input as given.
    ornt : ndarray of shape (3, 2)
        nibabel orientation transform from the native to the canonical grid.
    body_mask, superpixels, sp_proba, candidates, convnet_proba : ndarray or None
        Added by the stages; see the module docstring for each.
    extras : dict
        Anything else a stage wants to pass on (for example timings).
    zoom : (int, int), default=(1, 1)
        In-plane block factors from the scan's canonical grid to the grid of
        ``volume`` (see :meth:`on_working_grid`); (1, 1) is the scan's grid.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> from pancreas.record import make_record
    >>> affine = np.diag([-0.8, 0.8, 2.0, 1.0])  # an LAS volume
    >>> rec = make_record(Volume(np.zeros((4, 5, 6), np.int16), affine), "case")
    >>> rec.shape, float(rec.volume.affine[0, 0])
    ((4, 5, 6), 0.8)
    >>> rec.to_native(rec.volume.array).shape
    (4, 5, 6)
    """

    case_id: str
    volume: Volume
    native_affine: NDArray[np.float64]
    native_shape: tuple[int, ...]
    ornt: NDArray[np.float64]
    body_mask: NDArray[np.bool_] | None = None
    superpixels: NDArray[np.int32] | None = None
    sp_proba: NDArray[np.float32] | None = None
    candidates: NDArray[np.int32] | None = None
    convnet_proba: NDArray[np.float32] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    zoom: tuple[int, int] = (1, 1)

    @property
    def shape(self) -> tuple[int, ...]:
        """Canonical shape of the case (of the working grid, if coarser)."""
        return self.volume.shape

    @property
    def regridded(self) -> bool:
        """Whether the record lives on a coarser working grid than the scan's."""
        return tuple(self.zoom) != (1, 1)

    @property
    def full_shape(self) -> tuple[int, ...]:
        """Shape of the scan's own grid in canonical voxel order."""
        if not self.regridded:
            return self.shape
        return _canonical_grid(self.native_shape, self.native_affine)[0]

    @property
    def full_affine(self) -> NDArray[np.float64]:
        """Affine of the scan's own grid in canonical voxel order."""
        if not self.regridded:
            return np.asarray(self.volume.affine, dtype=np.float64)
        return self.native_affine @ orientations.inv_ornt_aff(
            self.ornt, self.native_shape
        )

    @property
    def full_spacing(self) -> tuple[float, ...]:
        """Voxel spacing in mm of the scan's own grid, canonical axes."""
        if not self.regridded:
            return self.spacing
        zooms = _canonical_grid(self.native_shape, self.native_affine)[1]
        return tuple(float(round(z, 6)) for z in zooms)  # as Volume.spacing

    def on_working_grid(self, working_spacing: float | None) -> CaseRecord:
        """The case on an in-plane grid of about ``working_spacing`` mm.

        Each working voxel is a block of whole voxels of the scan
        (``round(working_spacing / spacing)`` along each in-plane axis; the
        slices are kept) holding their mean HU. A record that is already on
        a working grid, or whose voxels are already about as large, is
        returned as it is. Only the CT is carried over: regrid before any
        stage runs.

        Parameters
        ----------
        working_spacing : float or None
            In-plane spacing in mm; None keeps the scan's grid.

        Returns
        -------
        CaseRecord

        Examples
        --------
        >>> import numpy as np
        >>> from pancreas.io import Volume
        >>> rec = make_record(Volume(np.zeros((8, 6, 3)), np.diag([0.7, 0.7, 2.5, 1])))
        >>> work = rec.on_working_grid(1.5)
        >>> work.zoom, work.shape, work.spacing[:2]
        ((2, 2), (4, 3, 3), (1.4, 1.4))
        >>> work.to_native(np.ones(work.shape, np.float32)).shape
        (8, 6, 3)
        """
        factors = block_factors(self.spacing, working_spacing)
        if self.regridded or factors == (1, 1):
            return self
        array = block_mean(self.volume.array, factors)
        affine = grid_affine(self.volume.affine, factors)
        return CaseRecord(
            case_id=self.case_id,
            volume=Volume(array, affine, self.volume.source),
            native_affine=self.native_affine,
            native_shape=self.native_shape,
            ornt=self.ornt,
            zoom=factors,
        )

    def to_full(self, array: NDArray[Any]) -> NDArray[Any]:
        """An array on the working grid brought to the scan's canonical grid.

        Floats (probabilities) are interpolated linearly between block
        centres; integers and bools (labels, masks) are repeated over each
        block. Unchanged when the record is on the scan's grid.
        """
        array = np.asarray(array)
        if array.shape != self.shape:
            raise InvalidVolumeError(
                f"{self.case_id}: array of shape {array.shape} does not match the "
                f"canonical shape {self.shape}"
            )
        if not self.regridded:
            return array
        return upsample(array, self.zoom, self.full_shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Canonical voxel spacing in mm."""
        return self.volume.spacing

    @property
    def n_superpixels(self) -> int:
        """Number of superpixels (0 before ``SuperpixelGenerator``)."""
        if self.superpixels is None:
            return 0
        return int(self.superpixels.max(initial=0))

    def to_canonical(self, array: NDArray[Any]) -> NDArray[Any]:
        """Reorder an array on the native grid into canonical voxel order.

        The result is on the scan's grid (:attr:`full_shape`), also for a
        record on a working grid.
        """
        array = np.asarray(array)
        if array.shape != self.native_shape:
            raise InvalidVolumeError(
                f"{self.case_id}: array of shape {array.shape} does not match the "
                f"image's shape {self.native_shape}"
            )
        return orientations.apply_orientation(array, self.ornt)

    def to_native(self, array: NDArray[Any]) -> NDArray[Any]:
        """Reorder an array on the canonical grid back into the input's grid.

        On a record on a working grid, an array of the working grid's shape
        is first brought to the scan's grid (:meth:`to_full`); one of
        :attr:`full_shape` is only reordered.
        """
        array = np.asarray(array)
        if self.regridded and array.shape == self.shape:
            array = self.to_full(array)
        elif array.shape != self.full_shape:
            raise InvalidVolumeError(
                f"{self.case_id}: array of shape {array.shape} does not match the "
                f"canonical shape {self.shape}"
            )
        inverse = orientations.ornt_transform(
            orientations.axcodes2ornt(("R", "A", "S")),
            orientations.io_orientation(self.native_affine),
        )
        return np.ascontiguousarray(orientations.apply_orientation(array, inverse))

    def label_array(self, label: Any, *, full: bool = False) -> NDArray[np.bool_]:
        """Check a label volume against this case and return it canonical, bool.

        Parameters
        ----------
        label : path, nibabel image, Volume, ndarray or CanonicalLabel
            Label volume on the input's grid: 0 background, 1 pancreas, 2
            tumour (MSD), which counts as pancreas; or, wrapped in
            :class:`CanonicalLabel`, one already on this record's grid.
        full : bool, default=False
            On a record on a working grid, return the label on the scan's
            grid instead of the working grid's blocks that are at least half
            pancreas.

        Returns
        -------
        ndarray of bool, canonical voxel order

        Raises
        ------
        InvalidVolumeError
            The label's shape differs from the image's; it lies on another
            grid than the image (checked whenever the label carries an
            affine: a path, nibabel image or Volume; a label that stores the
            image's grid in another voxel order, such as LAS for an RAS
            image or with axes swapped, is reordered, not refused); or it
            holds values other than 0, 1 and 2 (negative, larger,
            fractional, NaN), or is not numeric.
        VolumeFileError, DicomSeriesError
            The label file cannot be read (see :func:`pancreas.io.load_volume`).
        """
        if isinstance(label, CanonicalLabel):
            lab = np.asarray(label.array)
            if lab.shape != self.shape:
                raise InvalidVolumeError(
                    f"{self.case_id}: label of shape {lab.shape} does not match "
                    f"the case's canonical shape {self.shape}"
                )
            check_label_values(lab, self.case_id)
            if full and self.regridded:
                return upsample(lab != 0, self.zoom, self.full_shape)
            return lab != 0
        vol = as_volume(label, name=f"{self.case_id} label")
        where = self.case_id
        if vol.source is not None and vol.source != f"{self.case_id} label":
            where = f"{self.case_id} (label {vol.source})"
        if isinstance(label, np.ndarray | list | tuple):
            # a bare array has no grid of its own: it is on the image's voxels
            if vol.shape != self.native_shape:
                raise InvalidVolumeError(
                    f"{where}: label of shape {vol.shape} does not match the "
                    f"image's shape {self.native_shape}; pass the label that "
                    "belongs to this image, on the image's own grid (resample "
                    "it if needed)"
                )
            check_label_values(vol.array, where)
            canonical = self.to_canonical(np.asarray(vol.array) != 0)
        else:
            check_label_values(vol.array, where)
            canonical = _label_on_image_grid(vol, self, where)
        if full or not self.regridded:
            return canonical
        return blocks_at_least_half(canonical, self.zoom)


#: Largest distance between where a label and its image put the same voxel
#: centre, as a share of the image's smallest voxel size, for the label to be
#: taken as lying on the image's grid.
GRID_TOLERANCE = 0.05


def _grid_corners(shape: tuple[int, ...]) -> NDArray[np.float64]:
    """The 8 corner voxel indices of a grid, homogeneous, shape (4, 8)."""
    idx = np.array(np.meshgrid(*[(0, n - 1) for n in shape[:3]], indexing="ij"))
    idx = idx.reshape(3, -1).astype(np.float64)
    return np.vstack([idx, np.ones((1, idx.shape[1]))])


def world_difference(
    affine: NDArray[np.float64],
    reference: NDArray[np.float64],
    shape: tuple[int, ...],
) -> float:
    """Largest distance in mm between two affines' voxel centres on one grid.

    Parameters
    ----------
    affine, reference : ndarray of shape (4, 4)
        Voxel-to-world affines of two volumes with the same voxel order.
    shape : tuple of int
        Shape of the grid; the distance is largest at one of its corners.

    Returns
    -------
    float
        The largest world-space distance (mm) between where ``affine`` and
        ``reference`` put the same voxel index; ``inf`` if not finite.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.diag([0.8, 0.8, 2.0, 1.0])
    >>> b = a.copy()
    >>> b[:3, 3] = [0.0, 3.0, 4.0]  # shifted by 5 mm
    >>> world_difference(a, b, (10, 10, 10))
    5.0
    """
    corners = _grid_corners(shape)
    diff = (np.asarray(affine) @ corners - np.asarray(reference) @ corners)[:3]
    dist = np.sqrt((diff**2).sum(axis=0))
    return float(dist.max()) if np.all(np.isfinite(dist)) else float("inf")


def _label_on_image_grid(
    vol: Volume, record: CaseRecord, where: str
) -> NDArray[np.bool_]:
    """A label that carries an affine, brought to the record's canonical grid.

    The label may store the image's grid in another voxel order (LAS vs RAS,
    axes swapped): nibabel's orientation tools reorder it. A label on a
    genuinely different grid is refused with the largest world-space
    difference between the two grids.
    """
    array = np.asarray(vol.array)
    try:
        ornt = orientations.io_orientation(vol.affine)
    except Exception as exc:  # singular or non-finite affine
        raise InvalidVolumeError(
            f"{where}: the label's affine cannot place its voxels in space "
            f"({_describe_affine(vol.affine)}): {exc}; fix the label's header"
        ) from exc
    if array.ndim != 3:
        raise InvalidVolumeError(
            f"{where}: label of shape {array.shape} does not match the image's "
            f"shape {record.native_shape}; pass the label that belongs to this "
            "image, on the image's own grid (resample it if needed)"
        )
    canonical = orientations.apply_orientation(array != 0, ornt)
    affine = vol.affine @ orientations.inv_ornt_aff(ornt, array.shape)
    reordered = not np.array_equal(
        ornt, orientations.io_orientation(record.native_affine)
    )
    full_shape, full_affine = record.full_shape, record.full_affine
    if canonical.shape != full_shape:
        as_stored = (
            f" (in the image's voxel order: {canonical.shape} vs "
            f"{full_shape})"
            if reordered
            else ""
        )
        raise InvalidVolumeError(
            f"{where}: label of shape {array.shape} does not match the "
            f"image's shape {record.native_shape}{as_stored}; pass the label "
            "that belongs to this image, on the image's own grid (resample it "
            "if needed)"
        )
    distance = world_difference(affine, full_affine, full_shape)
    tolerance = GRID_TOLERANCE * min(record.full_spacing)
    if not distance <= tolerance:
        raise InvalidVolumeError(
            f"{where}: label affine differs from the image affine and the "
            "label lies on another grid, not the image's grid in another voxel "
            f"order: the same voxel is up to {distance:.4g} mm apart in the "
            f"two (tolerance {tolerance:.3g} mm; label "
            f"{_describe_affine(vol.affine)}, image "
            f"{_describe_affine(record.native_affine)}, largest affine entry "
            f"difference {_max_difference(affine, full_affine)} in "
            "the image's voxel order). If the label was drawn on another scan "
            "or resampled, resample it onto the image with nearest-neighbour "
            "interpolation (nibabel.processing.resample_from_to(label, image, "
            "order=0)); if its header was saved with a wrong origin or "
            "spacing, fix the header"
        )
    return np.ascontiguousarray(canonical)


def _describe_affine(affine: NDArray[np.float64]) -> str:
    """Orientation code and origin of an affine, for messages."""
    try:
        codes = "".join(str(c) for c in nib.aff2axcodes(affine))
    except Exception:  # a singular or non-finite affine has no orientation
        codes = "no orientation"
    origin = ", ".join(f"{v:.4g}" for v in np.asarray(affine)[:3, 3])
    return f"{codes}, origin ({origin})"


def _max_difference(a: NDArray[np.float64], b: NDArray[np.float64]) -> str:
    diff = np.abs(np.asarray(a) - np.asarray(b))
    return f"{float(np.max(diff)):.4g}" if np.all(np.isfinite(diff)) else "not finite"


def make_record(item: Any, case_id: str | None = None) -> CaseRecord:
    """Load one case (path, image, Volume or record) into a :class:`CaseRecord`.

    Parameters
    ----------
    item : path, nibabel image, Volume, ndarray or CaseRecord
        The CT. A record is returned unchanged.
    case_id : str, optional
        Name for messages; defaults to the volume's source.

    Returns
    -------
    CaseRecord

    Raises
    ------
    InvalidVolumeError
        The CT is not 3D, is empty, is a bool mask, complex or not numeric,
        has NaN or infinite voxels (also after conversion to float32), or its
        affine is not finite, is singular or gives an implausible voxel size
        (see :mod:`pancreas._checks`). A 4D NIfTI file or image whose last
        axis has length 1 is squeezed to 3D first; a 4D array is refused.
    VolumeFileError, DicomSeriesError
        The file or folder cannot be read (see :func:`pancreas.io.load_volume`).

    Notes
    -----
    Checks that only make sense for a CT fed to the method (Hounsfield units,
    a constant volume, tiny slices, coarse spacing) are made by
    :class:`~pancreas.superpixels.SuperpixelGenerator`, so that records can
    also carry arbitrary arrays for tests and examples.

    Examples
    --------
    >>> import numpy as np
    >>> make_record(np.zeros((2, 3, 4)), "a").case_id
    'a'
    """
    if isinstance(item, CaseRecord):
        return item
    vol = as_volume(item, name=case_id)
    name = case_id or vol.name
    array = np.asarray(vol.array)
    check_shape_3d(array.shape, name)
    check_ct_dtype(array.dtype, name)
    check_finite(array, name)
    check_affine(vol.affine, name)
    if array.dtype.kind == "f" and array.dtype.itemsize > 4:
        largest = float(np.max(np.abs(array)))
        if largest > float(np.finfo(np.float32).max):
            raise InvalidVolumeError(
                f"{name}: values up to {largest:.3g} do not fit float32 (a CT in "
                "HU lies within -1024..3071, or a few thousand with metal); "
                "check the units of the volume"
            )
    ornt = orientations.io_orientation(vol.affine)
    canonical = orientations.apply_orientation(array, ornt)
    affine = vol.affine @ orientations.inv_ornt_aff(ornt, array.shape)
    canonical = np.ascontiguousarray(canonical, dtype=np.float32)
    return CaseRecord(
        case_id=name,
        volume=Volume(canonical, affine, vol.source),
        native_affine=vol.affine.copy(),
        native_shape=tuple(array.shape),
        ornt=ornt,
    )


def as_records(X: Any) -> list[CaseRecord]:
    """Turn a sequence of cases into records, naming unnamed ones ``case_<i>``.

    Parameters
    ----------
    X : sequence
        Paths, nibabel images, Volumes, arrays or records, one per case.

    Returns
    -------
    list of CaseRecord

    Raises
    ------
    InvalidVolumeError
        ``X`` is a single volume or array rather than a sequence of them, or
        a case is refused by :func:`make_record` (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> [r.case_id for r in as_records([np.zeros((2, 2, 2))])]
    ['case_0']
    """
    check_sequence(X)
    return [record_at(X, i) for i in range(len(X))]


def record_at(X: Any, i: int) -> CaseRecord:
    """Case ``i`` of a sequence as a record, named as :func:`as_records` names it.

    Only ``X[i]`` is read, so a lazy sequence of a large cohort can be
    walked one case at a time.

    Parameters
    ----------
    X : sequence
        Paths, nibabel images, Volumes, arrays or records.
    i : int
        Index of the case.

    Returns
    -------
    CaseRecord
        Named after its path or source, or ``case_<i>``.

    Examples
    --------
    >>> import numpy as np
    >>> record_at([np.zeros((2, 2, 2))] * 3, 2).case_id
    'case_2'
    """
    item = X[i]
    if isinstance(item, CaseRecord):
        return item
    src = getattr(item, "source", None)
    name = src if isinstance(item, Volume) and src else None
    if isinstance(item, str):
        name = item
    return make_record(item, name or f"case_{i}")


def check_sequence(X: Any) -> None:
    """Refuse an ``X`` that is not a sequence of cases (see :func:`as_records`).

    Parameters
    ----------
    X : object
        What was passed as the cases.

    Raises
    ------
    InvalidVolumeError
        ``X`` is a single volume, path or array rather than a sequence of
        them, or has no ``len()`` and indexing.

    Examples
    --------
    >>> check_sequence(["a.nii.gz", "b.nii.gz"])
    """
    if isinstance(X, str | PathLike | nib.spatialimages.SpatialImage | Volume) or (
        isinstance(X, CaseRecord)
    ):
        raise InvalidVolumeError(
            "X must be a sequence of volumes (one per case), got a single "
            f"{type(X).__name__}; wrap it in a list"
        )
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim <= 3:
        raise InvalidVolumeError(
            f"X is a single array of shape {X.shape}, not a sequence of 3D "
            "volumes (one per case); wrap one CT in a list: [ct]"
        )
    if not hasattr(X, "__len__") or not hasattr(X, "__getitem__"):
        raise InvalidVolumeError(
            f"X must be a sequence of volumes (one per case), got a "
            f"{type(X).__name__}; pass a list"
        )


def check_labels(
    records: list[CaseRecord], y: Any, *, full: bool = False
) -> list[NDArray[np.bool_]]:
    """Check ``y`` against ``records`` and return canonical bool label arrays.

    Parameters
    ----------
    records : list of CaseRecord
        The cases, as returned by :func:`as_records`.
    y : sequence
        One label volume per case, on that case's own grid.
    full : bool, default=False
        For a record on a working grid, the label on the scan's grid rather
        than on the working grid (see :meth:`CaseRecord.label_array`).

    Returns
    -------
    list of ndarray of bool
        Each label in its case's canonical voxel order.

    Raises
    ------
    InvalidVolumeError
        ``y`` is missing or its length differs from the number of cases, or
        a label is refused by :meth:`CaseRecord.label_array` (wrong shape,
        affine or values; the message names the case).

    Examples
    --------
    >>> import numpy as np
    >>> recs = as_records([np.zeros((2, 2, 2))])
    >>> int(check_labels(recs, [np.ones((2, 2, 2))])[0].sum())
    8
    """
    if y is None:
        raise InvalidVolumeError("y is required: one label volume per case")
    if len(y) != len(records):
        raise InvalidVolumeError(
            f"X has {len(records)} cases but y has {len(y)} label volumes"
        )
    return [rec.label_array(y[i], full=full) for i, rec in enumerate(records)]
