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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import orientations
from numpy.typing import NDArray

from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume, as_volume

__all__ = ["CaseRecord", "as_records", "check_labels", "make_record"]


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

    @property
    def shape(self) -> tuple[int, ...]:
        """Canonical shape of the case."""
        return self.volume.shape

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
        """Reorder an array on the native grid into canonical voxel order."""
        array = np.asarray(array)
        if array.shape != self.native_shape:
            raise InvalidVolumeError(
                f"{self.case_id}: array of shape {array.shape} does not match the "
                f"image's shape {self.native_shape}"
            )
        return orientations.apply_orientation(array, self.ornt)

    def to_native(self, array: NDArray[Any]) -> NDArray[Any]:
        """Reorder an array on the canonical grid back into the input's grid."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise InvalidVolumeError(
                f"{self.case_id}: array of shape {array.shape} does not match the "
                f"canonical shape {self.shape}"
            )
        inverse = orientations.ornt_transform(
            orientations.axcodes2ornt(("R", "A", "S")),
            orientations.io_orientation(self.native_affine),
        )
        return np.ascontiguousarray(orientations.apply_orientation(array, inverse))

    def label_array(self, label: Any) -> NDArray[np.bool_]:
        """Check a label volume against this case and return it canonical, bool.

        Parameters
        ----------
        label : path, nibabel image, Volume or ndarray
            Label volume on the input's grid; non-zero means pancreas (so an
            MSD label with tumour = 2 counts as pancreas).

        Returns
        -------
        ndarray of bool, canonical voxel order
        """
        vol = as_volume(label, name=f"{self.case_id} label")
        if vol.shape != self.native_shape:
            raise InvalidVolumeError(
                f"{self.case_id}: label of shape {vol.shape} does not match the "
                f"image's shape {self.native_shape}"
            )
        if isinstance(label, Volume | str) or hasattr(label, "affine"):
            if not np.allclose(vol.affine, self.native_affine, atol=1e-3):
                raise InvalidVolumeError(
                    f"{self.case_id}: label affine differs from the image affine; "
                    "the label must be on the image's own grid"
                )
        return self.to_canonical(np.asarray(vol.array) != 0)


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

    Examples
    --------
    >>> import numpy as np
    >>> make_record(np.zeros((2, 3, 4)), "a").case_id
    'a'
    """
    if isinstance(item, CaseRecord):
        return item
    vol = as_volume(item, name=case_id)
    array = np.asarray(vol.array)
    if array.ndim != 3:
        raise InvalidVolumeError(
            f"{case_id or vol.name}: a CT volume must be 3D, got an array of "
            f"shape {array.shape}"
        )
    ornt = orientations.io_orientation(vol.affine)
    canonical = orientations.apply_orientation(array, ornt)
    affine = vol.affine @ orientations.inv_ornt_aff(ornt, array.shape)
    canonical = np.ascontiguousarray(canonical, dtype=np.float32)
    return CaseRecord(
        case_id=case_id or vol.name,
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

    Examples
    --------
    >>> import numpy as np
    >>> [r.case_id for r in as_records([np.zeros((2, 2, 2))])]
    ['case_0']
    """
    if isinstance(X, str | nib.spatialimages.SpatialImage | Volume | CaseRecord):
        raise InvalidVolumeError(
            "X must be a sequence of volumes (one per case), got a single "
            f"{type(X).__name__}; wrap it in a list"
        )
    records = []
    for i in range(len(X)):
        item = X[i]
        name = None
        if not isinstance(item, CaseRecord):
            src = getattr(item, "source", None)
            name = src if isinstance(item, Volume) and src else None
            if isinstance(item, str):
                name = item
            name = name or f"case_{i}"
        records.append(make_record(item, name))
    return records


def check_labels(records: list[CaseRecord], y: Any) -> list[NDArray[np.bool_]]:
    """Check ``y`` against ``records`` and return canonical bool label arrays.

    Parameters
    ----------
    records : list of CaseRecord
        The cases, as returned by :func:`as_records`.
    y : sequence
        One label volume per case, on that case's own grid.

    Returns
    -------
    list of ndarray of bool
        Each label in its case's canonical voxel order.

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
    return [rec.label_array(y[i]) for i, rec in enumerate(records)]
