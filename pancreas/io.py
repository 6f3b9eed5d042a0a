"""CT volumes in and out: the :class:`Volume` object, NIfTI and DICOM series.

A :class:`Volume` is an array in Hounsfield units plus the 4x4 voxel-to-world
affine (RAS+ millimetres, as nibabel uses) and where it came from. Voxel
spacing is derived from the affine, so it always travels with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pancreas.exceptions import InvalidVolumeError

__all__ = ["Volume", "as_volume", "load_volume", "save_volume"]


@dataclass(eq=False)
class Volume:
    """A 3D CT (or label) volume with its voxel-to-world affine.

    Parameters
    ----------
    array : ndarray of shape (I, J, K)
        Voxel values, in Hounsfield units for CT. Axes follow the affine.
    affine : ndarray of shape (4, 4)
        Voxel-to-world transform into RAS+ millimetres (nibabel convention).
    source : str or None, default=None
        Where the volume came from (a path, or a description); used in error
        messages so that every error names its case.

    Attributes
    ----------
    spacing : tuple of float
        Voxel size in mm along each array axis (column norms of the affine).
    shape : tuple of int
        Shape of ``array``.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> vol = Volume(np.zeros((4, 5, 6), np.int16), np.diag([0.8, 0.8, 2.0, 1.0]))
    >>> vol.spacing
    (0.8, 0.8, 2.0)
    """

    array: NDArray[Any]
    affine: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    source: str | None = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise InvalidVolumeError(
                f"{self.name}: affine must have shape (4, 4), got {affine.shape}"
            )
        self.affine = affine

    @property
    def name(self) -> str:
        """A short name for messages: the source, or ``'<array>'``."""
        return self.source if self.source is not None else "<array>"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the voxel array."""
        return tuple(self.array.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each array axis."""
        zooms = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return tuple(float(round(z, 6)) for z in zooms)

    def with_array(self, array: NDArray[Any]) -> Volume:
        """Return a volume on the same grid holding ``array``.

        Parameters
        ----------
        array : ndarray of shape (I, J, K)
            New voxel values; must have this volume's shape.

        Returns
        -------
        Volume
            Same affine and source, new array.
        """
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise InvalidVolumeError(
                f"{self.name}: array of shape {array.shape} does not fit a grid "
                f"of shape {self.array.shape}"
            )
        return Volume(array, self.affine.copy(), self.source)


def as_volume(item: Any, *, name: str | None = None) -> Volume:
    """Turn a path, nibabel image, :class:`Volume` or array into a Volume.

    Parameters
    ----------
    item : str, PathLike, nibabel image, Volume or array-like
        A NIfTI file, a DICOM series folder, an in-memory image, or a plain
        array (then the affine is the identity: 1 mm voxels).
    name : str, optional
        Name used in messages when ``item`` carries none.

    Returns
    -------
    Volume

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import as_volume
    >>> as_volume(np.zeros((2, 3, 4))).shape
    (2, 3, 4)
    """
    if isinstance(item, Volume):
        return item
    if isinstance(item, str | PathLike):
        return load_volume(item)
    if hasattr(item, "affine") and hasattr(item, "dataobj"):
        array = np.asanyarray(item.dataobj)
        source = getattr(item, "get_filename", lambda: None)() or name
        return Volume(array, np.asarray(item.affine, dtype=np.float64), source)
    if isinstance(item, np.ndarray | list | tuple):
        return Volume(np.asarray(item), np.eye(4), name)
    raise InvalidVolumeError(
        f"{name or 'item'}: cannot make a volume from an object of type "
        f"{type(item).__name__}; give a path, a nibabel image, a "
        "pancreas.io.Volume or an array"
    )


def load_volume(path: str | PathLike[str]) -> Volume:  # pragma: no cover - stub
    """Load a NIfTI file or a DICOM series folder (implemented below)."""
    raise NotImplementedError


def save_volume(
    volume: Volume | ArrayLike, path: str | PathLike[str], **kwargs: Any
) -> None:  # pragma: no cover - stub
    """Save a volume as NIfTI (implemented below)."""
    raise NotImplementedError
