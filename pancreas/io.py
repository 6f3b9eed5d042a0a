"""CT volumes in and out: the :class:`Volume` object, NIfTI and DICOM series.

A :class:`Volume` is an array in Hounsfield units plus the 4x4 voxel-to-world
affine (RAS+ millimetres, as nibabel uses) and where it came from. Voxel
spacing is derived from the affine, so it always travels with the data.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from pancreas._atomic import fsync_dir, temporary_path
from pancreas.exceptions import (
    DicomSeriesError,
    InvalidVolumeError,
    OrientationWarning,
    VolumeFileError,
)

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
        A Volume is returned as it is. A nibabel image whose data is 4D with
        a last axis of length 1 is squeezed to 3D, as :func:`load_volume`
        does for NIfTI files (NIfTI stores a 3D volume so when its fourth,
        time axis has one entry); a plain array is never squeezed.

    Raises
    ------
    InvalidVolumeError
        ``item`` is of an unknown type, a ragged nested list, or holds
        non-numeric values (strings, objects); or the file it names is not
        a usable volume (see :func:`load_volume`).
    VolumeFileError
        The path does not exist, is of an unknown format, or the file (or a
        nibabel image's file) is truncated or corrupt.
    DicomSeriesError
        The path is a folder that is not one clean DICOM CT series.

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
        source = getattr(item, "get_filename", lambda: None)() or name
        try:
            array = np.asanyarray(item.dataobj)
        except _nibabel_errors() as exc:
            raise VolumeFileError(
                f"{source or 'image'}: cannot read the image's voxels, its file "
                f"is truncated or corrupt ({type(exc).__name__}: {exc}); "
                "re-export or re-download it"
            ) from exc
        if array.ndim == 4 and array.shape[3] == 1:
            array = array[..., 0]
        _check_numeric(array.dtype, source or "image")
        _warn_unknown_orientation(item, source or "image")
        affine = item.affine
        if affine is None:  # an image made without one: the header's voxel sizes
            affine = item.header.get_best_affine()
        return Volume(array, np.asarray(affine, dtype=np.float64), source)
    if isinstance(item, np.ndarray | list | tuple):
        try:
            array = np.asarray(item)
        except (ValueError, TypeError) as exc:
            raise InvalidVolumeError(
                f"{name or 'item'}: cannot make an array of this nested "
                f"sequence ({exc}); give a rectangular array of numbers"
            ) from exc
        _check_numeric(array.dtype, name or "<array>")
        return Volume(array, np.eye(4), name)
    raise InvalidVolumeError(
        f"{name or 'item'}: cannot make a volume from an object of type "
        f"{type(item).__name__}; give a path, a nibabel image, a "
        "pancreas.io.Volume or an array"
    )


def _check_numeric(dtype: np.dtype[Any], name: str) -> None:
    """Refuse voxels that are not numbers (strings, objects, records, dates)."""
    if dtype.kind not in "biufc":
        raise InvalidVolumeError(
            f"{name}: voxels of dtype {dtype} are not numbers; give an array of "
            "numbers (int16 or float32 for a CT, uint8 for a label)"
        )


def _case_grid(item: Any, index: int) -> tuple[str, tuple[int, ...], tuple[float, ...]]:
    """Name, shape and spacing of one case in canonical (RAS+) voxel order.

    Read without the voxels: from the header of a NIfTI file, the headers of
    a DICOM series, the affine of a nibabel image or Volume, a record's own
    grid. Other items (arrays) go through :func:`as_volume`. Axis 2 is the axial
    one, as in the records the pipeline works on.
    """
    from pancreas.record import CaseRecord

    if isinstance(item, CaseRecord):
        return item.case_id, tuple(item.shape), tuple(item.spacing)
    if isinstance(item, str | PathLike) and _nifti_suffix(Path(item)) is not None:
        shape, affine = _nifti_header_grid(Path(item))
        name = os.fspath(item)
    elif isinstance(item, str | PathLike) and Path(item).is_dir():
        series = _scan_dicom_series(Path(item))  # headers only, no pixels
        shape, affine, name = series.shape, series.affine, os.fspath(item)
    elif hasattr(item, "affine") and hasattr(item, "shape"):
        shape, affine = tuple(item.shape), np.asarray(item.affine, dtype=np.float64)
        getname = getattr(item, "get_filename", None)
        name = getattr(item, "source", None) or (getname and getname()) or None
        name = name or f"case_{index}"
    else:
        vol = as_volume(item, name=f"case_{index}")
        shape, affine, name = vol.shape, vol.affine, vol.name
    if len(shape) != 3:
        raise InvalidVolumeError(
            f"{name}: a CT volume must be 3D, got shape {tuple(shape)}"
        )
    return (name, *_canonical_grid(shape, affine))


def _nifti_header_grid(path: Path) -> tuple[tuple[int, ...], NDArray[np.float64]]:
    """Shape and affine from a NIfTI header; the voxels are not read."""
    import nibabel as nib

    try:
        img = nib.load(os.fspath(path))
        shape = tuple(int(s) for s in img.shape)
        affine = np.asarray(img.affine, dtype=np.float64)
    except FileNotFoundError as exc:
        raise VolumeFileError(f"{path}: no such file") from exc
    except Exception as exc:  # nibabel raises many kinds
        raise VolumeFileError(f"{path}: cannot read the NIfTI header ({exc})") from exc
    # A trailing singleton (for example one time point) is still a 3D volume.
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape, affine


def _canonical_grid(
    shape: Sequence[int], affine: NDArray[np.float64]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Shape and spacing reordered as in the closest canonical (RAS+) grid.

    The same reordering as :func:`pancreas.record.make_record` (nibabel's
    ``io_orientation``), computed from the affine so that no voxel is read
    (``nibabel.as_closest_canonical`` would load the data of a non-canonical
    image to transpose it).
    """
    from nibabel import orientations

    affine = np.asarray(affine, dtype=np.float64)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ornt = orientations.io_orientation(affine)
    if np.isnan(ornt).any():  # a degenerate affine: keep the array order
        return tuple(int(s) for s in shape), tuple(float(z) for z in zooms)
    out_shape = [0, 0, 0]
    out_spacing = [0.0, 0.0, 0.0]
    for axis in range(3):
        dest = int(ornt[axis, 0])
        out_shape[dest] = int(shape[axis])
        out_spacing[dest] = float(zooms[axis])
    return tuple(out_shape), tuple(out_spacing)


class _StampedPath(str):
    """A path that carries the identity of the file (or folder) it names.

    It is the path string everywhere, but its pickle, and so joblib's hash
    of it (the key of a Pipeline's ``memory=`` cache), includes ``stamp``:
    the size, modification time and inode of the file, or of every file in a
    DICOM folder. A file changed or replaced at the same path gets a new
    key, so stale cached stage outputs are not reused.
    """

    stamp: tuple[Any, ...]

    def __new__(cls, path: str, stamp: tuple[Any, ...]) -> _StampedPath:
        obj = super().__new__(cls, path)
        obj.stamp = stamp
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (_StampedPath, (str(self), self.stamp))


def _file_stamp(path: Path) -> tuple[Any, ...]:
    """Size, modification time (ns) and inode of a file, or of a folder's files."""
    try:
        if path.is_dir():
            return tuple(
                (f.relative_to(path).as_posix(), *_file_stamp(f))
                for f in sorted(path.rglob("*"))
                if f.is_file()
            )
        st = path.stat()
    except OSError:
        return ()  # a missing file is reported when it is loaded
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _with_file_stamps(items: Any) -> Any:
    """``items`` with every path replaced by a :class:`_StampedPath`.

    A lazy sequence of files (:class:`~pancreas.datasets.LazyVolumes`)
    becomes the list of its stamped paths (it loads the same volumes, one at
    a time); other items and other sequences are returned as they are.
    """
    paths = getattr(items, "paths", None)
    if isinstance(paths, list):
        items = paths
    if not isinstance(items, list | tuple):
        return items
    return [
        _StampedPath(os.fspath(item), _file_stamp(Path(item)))
        if isinstance(item, str | PathLike) and not isinstance(item, _StampedPath)
        else item
        for item in items
    ]


def _warn_unknown_orientation(img: Any, name: str) -> None:
    """Warn when a NIfTI header says nothing of the orientation.

    With sform and qform codes both 0, the NIfTI standard leaves only the
    voxel sizes: nibabel's affine is then a scaling with no rotation, so
    which side is left and which end is the head are guesses.
    """
    header = getattr(img, "header", None)
    if header is None or not hasattr(header, "get_sform"):
        return  # not a NIfTI (e.g. MGH, Analyze has no codes to read)
    try:
        sform_code = int(header["sform_code"])
        qform_code = int(header["qform_code"])
    except (KeyError, ValueError, TypeError):
        return
    if sform_code == 0 and qform_code == 0:
        warnings.warn(
            f"{name}: the NIfTI header's sform and qform codes are both 0, so "
            "its orientation is unknown: the volume is read with its voxel "
            "sizes only (no rotation), and left/right and head/feet may be "
            "wrong, which the method (trained on RAS+ anatomy) cannot correct. "
            "Check it in a viewer and re-export it with its orientation "
            "(e.g. from the DICOM series)",
            OrientationWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Errors that nibabel, gzip and zlib raise on a missing, truncated or corrupt file.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
)


def _nibabel_errors() -> tuple[type[BaseException], ...]:
    """Everything nibabel, gzip and zlib raise on a truncated or corrupt file."""
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError, HeaderTypeError, ImageDataError
    from nibabel.wrapstruct import WrapStructError

    return (
        *_READ_ERRORS,
        ImageFileError,
        WrapStructError,
        HeaderDataError,
        HeaderTypeError,
        ImageDataError,
    )


def _nifti_suffix(path: Path) -> str | None:
    """Return ``'.nii.gz'`` or ``'.nii'`` for a NIfTI file name, else None."""
    lower = path.name.lower()
    for suffix in _NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    return None


def load_volume(path: str | PathLike[str]) -> Volume:
    """Load a CT volume from a NIfTI file or a DICOM series folder.

    Parameters
    ----------
    path : str or PathLike
        A NIfTI file (``.nii`` or ``.nii.gz``) or a folder holding the slice
        files of exactly one DICOM CT series.

    Returns
    -------
    Volume
        ``array`` in Hounsfield units, ``affine`` in RAS+ mm (nibabel's
        convention), ``source`` the path as a string.

        *NIfTI*: the affine is nibabel's best affine (sform, else qform).
        Integer data stored without scaling keeps its dtype (e.g. int16);
        anything scaled (``scl_slope``/``scl_inter``) or stored as float is
        returned as float32. A 4D image whose last axis has length 1 is
        squeezed to 3D.

        *DICOM*: slices are ordered by their position along the slice normal
        (never by file name or InstanceNumber). Array axis 0 runs along the
        image rows' direction (``pixel_array``'s second index, the first three
        ImageOrientationPatient values), axis 1 down the columns, axis 2
        through the slices in increasing position along the normal
        ``cross(row, col)``. ``RescaleSlope``/``RescaleIntercept`` are applied;
        the array is int16 when every slice has slope 1, an integral intercept
        and HU values that fit int16 (the usual CT case), float32 otherwise.
        The slice spacing in the affine is the measured distance between slice
        positions, not SliceThickness. DICOM's LPS patient coordinates are
        turned into RAS by negating x and y. Non-DICOM files in the folder (a
        readme) and DICOM files without an image (DICOMDIR) are skipped;
        sub-folders are not searched.

    Raises
    ------
    VolumeFileError
        The path does not exist, has an unknown extension, or the NIfTI file
        is truncated or corrupt.
    InvalidVolumeError
        The NIfTI image is not 3D (after dropping a trailing axis of length
        1), is empty, its voxels are not real numbers (complex, RGB), or
        its (scaled) values do not fit float32.
    DicomSeriesError
        The folder holds no DICOM image, several series, a modality other than
        CT, tilted or sheared slices, duplicate or missing slices, or slices of
        different sizes or orientations.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from pancreas.io import Volume, load_volume, save_volume
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ct = Volume(np.full((4, 5, 6), -1000, np.int16), np.diag([0.8, 0.8, 2, 1]))
    ...     path = save_volume(ct, Path(tmp) / "ct.nii.gz")
    ...     vol = load_volume(path)
    >>> vol.shape, vol.array.dtype, vol.spacing
    ((4, 5, 6), dtype('int16'), (0.8, 0.8, 2.0))
    """
    p = Path(os.fspath(path))
    if not p.exists():
        raise VolumeFileError(
            f"{p}: no such file or folder; give a NIfTI file (.nii, .nii.gz) or "
            "a DICOM series folder"
        )
    if p.is_dir():
        return _load_dicom_series(p)
    if _nifti_suffix(p) is None:
        raise VolumeFileError(
            f"{p}: unknown volume format (extension {''.join(p.suffixes) or 'none'}); "
            "give a NIfTI file (.nii, .nii.gz) or, for DICOM, the folder that "
            "holds the series' slice files"
        )
    return _load_nifti(p)


def _corrupt(path: Path, exc: BaseException) -> VolumeFileError:
    return VolumeFileError(
        f"{path}: cannot read this NIfTI file, it is truncated or corrupt "
        f"({type(exc).__name__}: {exc}); re-export or re-download it"
    )


def _check_3d(img: Any, path: Path) -> tuple[int, int, int]:
    """The 3D shape of a NIfTI image (a trailing axis of length 1 dropped).

    Also refuses an empty image and voxel types other than integers and
    real floats (complex, RGB).
    """
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InvalidVolumeError(
            f"{path}: a CT or label volume must be 3D, this NIfTI image has "
            f"shape {shape}; extract one 3D volume first"
        )
    if 0 in shape:
        raise InvalidVolumeError(
            f"{path}: the NIfTI image is empty (shape {shape}, no voxels); "
            "re-export the volume"
        )
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind not in "iuf":
        raise InvalidVolumeError(
            f"{path}: the NIfTI voxels are of type {dtype}; a CT or label holds "
            "real numbers: re-export it as int16, uint8 or float32"
        )
    return (shape[0], shape[1], shape[2])


#: deflate's largest compression ratio: a gzip file cannot inflate to more.
_MAX_DEFLATE_RATIO = 1032


def _check_data_size(img: Any, path: Path) -> None:
    """Refuse a header that promises more voxel bytes than the file can hold.

    A corrupt ``dim`` field would otherwise make nibabel allocate (and try to
    fill) gigabytes for a file of a few hundred bytes. A ``.nii`` file must
    hold ``vox_offset`` plus the voxels; a ``.nii.gz`` file cannot inflate to
    more than 1032 times its size (deflate's limit).
    """
    header = img.header
    n_voxels = 1
    for s in img.shape:
        n_voxels *= int(s)
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    try:
        offset = int(header.get("vox_offset", 0) or 0)
    except (TypeError, ValueError):
        offset = 0
    voxel_bytes = n_voxels * itemsize
    size = path.stat().st_size
    limit = size * _MAX_DEFLATE_RATIO if _nifti_suffix(path) == ".nii.gz" else size
    if voxel_bytes + max(offset, 0) > limit:
        raise VolumeFileError(
            f"{path}: cannot read this NIfTI file, it is truncated or corrupt (its "
            f"header promises {voxel_bytes} bytes of voxels for shape "
            f"{tuple(img.shape)} but the file has {size} bytes); re-export or "
            "re-download it"
        )


def _open_nifti(path: Path) -> tuple[Any, tuple[int, int, int]]:
    """Open a NIfTI header (the voxels stay on disk) and check that it is 3D."""
    import nibabel as nib

    try:
        img = nib.load(os.fspath(path), mmap=False)
    except _nibabel_errors() as exc:
        raise _corrupt(path, exc) from exc
    shape = _check_3d(img, path)
    _check_data_size(img, path)
    return img, shape


def _read_voxels(img: Any, path: Path) -> NDArray[Any]:
    """Unscaled integers keep their dtype; scaled or float data become float32.

    Values that do not fit float32 (after ``scl_slope``/``scl_inter``) raise
    :class:`InvalidVolumeError` rather than silently becoming infinite.
    """
    proxy = img.dataobj
    raw_dtype = np.dtype(img.get_data_dtype())
    slope = float(getattr(proxy, "slope", 1.0))
    inter = float(getattr(proxy, "inter", 0.0))
    if raw_dtype.kind in "iu" and slope == 1.0 and inter == 0.0:
        return np.asarray(proxy)
    try:
        with np.errstate(over="raise", invalid="raise"):
            return img.get_fdata(dtype=np.float32, caching="unchanged")
    except FloatingPointError as exc:
        raise InvalidVolumeError(
            f"{path}: voxel values (times scl_slope {slope:g} plus scl_inter "
            f"{inter:g}) do not fit float32 ({exc}); a CT in HU lies within "
            "-1024..3071: check the file's scaling and units"
        ) from exc


def _load_nifti(path: Path) -> Volume:
    import nibabel as nib

    if _nifti_suffix(path) == ".nii":
        img, shape = _open_nifti(path)
        try:
            array = _read_voxels(img, path)
        except InvalidVolumeError:
            raise
        except _nibabel_errors() as exc:
            raise _corrupt(path, exc) from exc
    else:
        # Stream the gzip ourselves and read it to its end, so that gzip checks
        # the CRC and length: nibabel stops after the voxels and would miss
        # damage that still inflates.
        try:
            with gzip.open(path, "rb") as gz:
                magic = gz.peek(4)[:4]
                n2 = magic in (struct.pack("<i", 540), struct.pack(">i", 540))
                klass = nib.Nifti2Image if n2 else nib.Nifti1Image
                img = klass.from_stream(gz)
                shape = _check_3d(img, path)
                _check_data_size(img, path)
                array = _read_voxels(img, path)
                while gz.read(1 << 20):
                    pass
        except (InvalidVolumeError, VolumeFileError):
            raise
        except _nibabel_errors() as exc:
            raise _corrupt(path, exc) from exc
    _warn_unknown_orientation(img, str(path))
    # Native byte order (big-endian files exist), same values.
    array = array.reshape(shape)
    native = array.dtype.newbyteorder("=")
    array = array.view(native) if array.dtype.isnative else array.astype(native)
    return Volume(array, np.asarray(img.affine, dtype=np.float64), str(path))


# ---------------------------------------------------------------------------
# DICOM series
# ---------------------------------------------------------------------------


@dataclass
class _DicomSeries:
    """Validated geometry of a DICOM series, slices in order along the normal."""

    files: list[Path]
    affine: NDArray[np.float64]
    shape: tuple[int, int, int]
    slopes: list[float]
    intercepts: list[float]


def _floats(ds: Any, keyword: str, n: int, path: Path, folder: Path) -> NDArray:
    value = ds.get(keyword)
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.empty(0)
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise DicomSeriesError(
            f"{folder}: file {path.name} has no valid {keyword} ({value!r}); "
            "the slice geometry cannot be rebuilt without it"
        )
    return out


def _counts(values: Sequence[Any]) -> str:
    uniq: dict[Any, int] = {}
    for v in values:
        uniq[v] = uniq.get(v, 0) + 1
    return ", ".join(f"{v!r} in {n} file(s)" for v, n in uniq.items())


def _scan_dicom_series(folder: Path) -> _DicomSeries:
    """Read the headers of a DICOM series folder and validate its geometry."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers: list[tuple[Path, Any]] = []
    n_files = 0
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        n_files += 1
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=False)
        except InvalidDicomError:
            continue  # not a DICOM file (readme, .DS_Store, ...)
        except Exception as exc:
            raise DicomSeriesError(
                f"{folder}: file {f.name} looks like DICOM but cannot be read "
                f"({type(exc).__name__}: {exc}); remove or replace it"
            ) from exc
        if "Rows" not in ds or "Columns" not in ds:
            continue  # a DICOM file without an image (DICOMDIR, report, ...)
        headers.append((f, ds))
    if not headers:
        raise DicomSeriesError(
            f"{folder}: no DICOM image found ({n_files} file(s) checked); give "
            "the folder that holds one CT series' slice files, or a NIfTI file"
        )

    files = [f for f, _ in headers]
    dss = [ds for _, ds in headers]

    uids = [str(ds.get("SeriesInstanceUID", "")) for ds in dss]
    if len(set(uids)) > 1:
        described = []
        for u in dict.fromkeys(uids):
            desc = str(dss[uids.index(u)].get("SeriesDescription", ""))
            described.append(f"{u or '<empty>'} ({desc!r}, {uids.count(u)} file(s))")
        raise DicomSeriesError(
            f"{folder}: holds {len(set(uids))} DICOM series "
            f"(SeriesInstanceUID {'; '.join(described)}); put each series in a "
            "folder of its own and load the CT series' folder"
        )

    modalities = [str(ds.get("Modality", "")) for ds in dss]
    if any(m != "CT" for m in modalities):
        raise DicomSeriesError(
            f"{folder}: Modality is not CT ({_counts(modalities)}); pancreas "
            "segments CT in Hounsfield units only"
        )

    for f, ds in headers:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise DicomSeriesError(
                f"{folder}: file {f.name} is a multi-frame (enhanced) DICOM "
                "image, which is not supported; convert the series to NIfTI "
                "first (e.g. with dcm2niix)"
            )
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise DicomSeriesError(
                f"{folder}: file {f.name} is not a greyscale image "
                f"(SamplesPerPixel={ds.SamplesPerPixel}); a CT series is greyscale"
            )

    sizes = [(int(ds.Rows), int(ds.Columns)) for ds in dss]
    if len(set(sizes)) > 1:
        raise DicomSeriesError(
            f"{folder}: slices differ in size (Rows, Columns): {_counts(sizes)}; "
            "the folder must hold one series whose slices all have one size"
        )
    rows, cols = sizes[0]

    spacings = np.array(
        [_floats(ds, "PixelSpacing", 2, f, folder) for f, ds in headers]
    )
    if np.any(spacings <= 0) or not np.allclose(
        spacings, spacings[0], rtol=0, atol=1e-4
    ):
        shown = [tuple(float(round(v, 6)) for v in s) for s in spacings]
        raise DicomSeriesError(
            f"{folder}: PixelSpacing differs between slices or is not positive: "
            f"{_counts(shown)}; the folder must hold one series of equal slices"
        )
    row_spacing, col_spacing = (float(v) for v in spacings[0])

    iops = np.array(
        [_floats(ds, "ImageOrientationPatient", 6, f, folder) for f, ds in headers]
    )
    if not np.allclose(iops, iops[0], rtol=0, atol=1e-4):
        shown = [tuple(float(round(v, 4)) for v in o) for o in iops]
        raise DicomSeriesError(
            f"{folder}: ImageOrientationPatient differs between slices "
            f"({_counts(shown)}); the slices do not form one straight stack "
            "(several series or a localiser mixed in?)"
        )
    row_cos, col_cos = iops[0][:3], iops[0][3:]
    if (
        abs(np.linalg.norm(row_cos) - 1) > 1e-3
        or abs(np.linalg.norm(col_cos) - 1) > 1e-3
        or abs(float(row_cos @ col_cos)) > 1e-3
    ):
        raise DicomSeriesError(
            f"{folder}: ImageOrientationPatient {iops[0].tolist()} is not two "
            "orthogonal unit vectors; the files' geometry is corrupt"
        )
    row_cos = row_cos / np.linalg.norm(row_cos)
    col_cos = col_cos / np.linalg.norm(col_cos)
    normal = np.cross(row_cos, col_cos)
    normal /= np.linalg.norm(normal)

    positions = np.array(
        [_floats(ds, "ImagePositionPatient", 3, f, folder) for f, ds in headers]
    )
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    files = [files[i] for i in order]
    dss = [dss[i] for i in order]
    positions, along = positions[order], along[order]
    n = len(files)
    if n < 2:
        raise DicomSeriesError(
            f"{folder}: holds a single CT slice ({files[0].name}); a volume "
            "needs at least 2 slices"
        )

    gaps = np.diff(along)
    dup = np.flatnonzero(gaps < 1e-3)
    if dup.size:
        pairs = "; ".join(
            f"{files[i].name} and {files[i + 1].name} at {along[i]:.3f} mm"
            for i in dup[:5]
        )
        raise DicomSeriesError(
            f"{folder}: {dup.size} duplicate slice position(s) along the slice "
            f"normal ({pairs}); the folder holds repeated slices or several "
            "series with one SeriesInstanceUID; keep one file per position"
        )

    offsets = positions - positions[0]
    perp = offsets - np.outer(offsets @ normal, normal)
    drift = np.linalg.norm(perp, axis=1)
    tolerance = max(0.01, 0.1 * min(row_spacing, col_spacing))
    if drift.max() > tolerance:
        worst = int(np.argmax(drift))
        angle = np.degrees(np.arctan2(drift[worst], along[worst] - along[0]))
        raise DicomSeriesError(
            f"{folder}: slice positions do not follow the slice normal "
            f"(slice {worst} is {drift[worst]:.2f} mm off it, about "
            f"{angle:.2f} degrees of gantry tilt or shear); resample the series "
            "to an orthogonal grid first (e.g. dcm2niix corrects gantry tilt)"
        )

    median = float(np.median(gaps))
    uneven = np.flatnonzero(np.abs(gaps - median) > 0.1 * median)
    if uneven.size:
        parts = []
        for i in uneven[:5]:
            missing = round(gaps[i] / median) - 1
            hint = f", about {missing} slice(s) missing" if missing >= 1 else ""
            parts.append(
                f"slices {i} and {i + 1} ({files[i].name}, {files[i + 1].name}) "
                f"are {gaps[i]:.3f} mm apart{hint}"
            )
        more = f" and {uneven.size - 5} more" if uneven.size > 5 else ""
        raise DicomSeriesError(
            f"{folder}: uneven slice gaps (median {median:.3f} mm): "
            f"{'; '.join(parts)}{more}; the series has missing or extra slices; "
            "export the complete series"
        )
    slice_step = float((along[-1] - along[0]) / (n - 1))

    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing
    lps[:3, 1] = col_cos * row_spacing
    lps[:3, 2] = normal * slice_step
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps

    slopes = [float(ds.get("RescaleSlope", 1.0) or 1.0) for ds in dss]
    intercepts = [float(ds.get("RescaleIntercept", 0.0) or 0.0) for ds in dss]
    return _DicomSeries(files, affine, (cols, rows, n), slopes, intercepts)


def _load_dicom_series(folder: Path) -> Volume:
    import pydicom

    series = _scan_dicom_series(folder)
    cols, rows, n = series.shape
    as_int = all(s == 1.0 for s in series.slopes) and all(
        float(b).is_integer() for b in series.intercepts
    )
    # Slices stacked as (slice, row, column); transposed to (column, row, slice).
    buf: NDArray[Any] = np.empty((n, rows, cols), np.int16 if as_int else np.float32)
    for k, f in enumerate(series.files):
        try:
            raw = pydicom.dcmread(f, force=False).pixel_array
        except Exception as exc:
            raise DicomSeriesError(
                f"{folder}: cannot decode the pixel data of {f.name} "
                f"({type(exc).__name__}: {exc}); for compressed transfer syntaxes "
                "install a pydicom decoder (pillow, pylibjpeg or gdcm)"
            ) from exc
        if raw.shape != (rows, cols):
            raise DicomSeriesError(
                f"{folder}: {f.name} has pixel data of shape {raw.shape}, not "
                f"Rows x Columns = {(rows, cols)}; the file is corrupt"
            )
        slope, inter = series.slopes[k], series.intercepts[k]
        if buf.dtype == np.int16:
            hu = raw.astype(np.int32) + int(inter)
            if hu.min() < -32768 or hu.max() > 32767:
                buf = buf.astype(np.float32)
            buf[k] = hu
        else:
            buf[k] = raw.astype(np.float32) * np.float32(slope) + np.float32(inter)
    return Volume(buf.transpose(2, 1, 0), series.affine, str(folder))


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


def _reference_grid(reference: Any) -> tuple[NDArray[np.float64], tuple[int, ...], str]:
    """Affine, shape and name of a reference grid, reading as little as possible."""
    if isinstance(reference, Volume):
        return reference.affine, reference.shape, reference.name
    if isinstance(reference, str | PathLike):
        p = Path(os.fspath(reference))
        if p.is_dir():
            series = _scan_dicom_series(p)
            return series.affine, series.shape, str(p)
        if not p.exists():
            raise VolumeFileError(f"{p}: reference volume not found")
        if _nifti_suffix(p) is None:
            raise VolumeFileError(
                f"{p}: unknown reference format; give a NIfTI file, a DICOM "
                "series folder or a pancreas.io.Volume"
            )
        img, shape = _open_nifti(p)
        return np.asarray(img.affine, dtype=np.float64), shape, str(p)
    if hasattr(reference, "affine") and hasattr(reference, "shape"):
        shape = tuple(int(s) for s in reference.shape)
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        return np.asarray(reference.affine, dtype=np.float64), shape, "<reference>"
    raise InvalidVolumeError(
        f"reference of type {type(reference).__name__} gives no grid; pass a "
        "pancreas.io.Volume, a NIfTI path, a DICOM folder or a nibabel image"
    )


def _cast_for_save(array: NDArray[Any], dtype: Any, name: str) -> NDArray[Any]:
    """Choose and apply the on-disk dtype (see :func:`save_volume`)."""
    if dtype is not None:
        target = np.dtype(dtype)
        if target == np.bool_:
            target = np.dtype(np.uint8)
    elif array.dtype == np.bool_:
        target = np.dtype(np.uint8)
    elif array.dtype.kind == "f":
        target = np.dtype(np.float32)
    elif array.dtype in (np.dtype(np.int64), np.dtype(np.uint64)):
        target = np.dtype(np.int32)
    else:
        target = array.dtype
    if target.kind not in "iuf" or target.itemsize > 8:
        raise InvalidVolumeError(
            f"{name}: cannot save voxels as {target} in NIfTI; use an integer "
            "or float dtype (uint8 masks, int16 CT, float32 probabilities)"
        )
    if target.kind in "iu" and array.dtype != target and array.size:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise InvalidVolumeError(
                f"{name}: NaN or infinite values cannot be saved as {target}"
            )
        info = np.iinfo(target)
        lo, hi = array.min(), array.max()
        if lo < info.min or hi > info.max:
            raise InvalidVolumeError(
                f"{name}: values {lo}..{hi} do not fit {target}; pass a wider "
                "dtype= to save_volume"
            )
    return array.astype(target, copy=False)


def _has_shear(affine: NDArray[np.float64]) -> bool:
    rzs = affine[:3, :3]
    gram = rzs.T @ rzs
    off = gram - np.diag(np.diag(gram))
    return bool(np.abs(off).max() > 1e-6 * np.abs(np.diag(gram)).max())


def save_volume(
    volume: Volume | ArrayLike,
    path: str | PathLike[str],
    *,
    reference: Volume | str | PathLike[str] | None = None,
    dtype: DTypeLike | None = None,
    description: str | None = None,
) -> Path:
    """Write a volume, mask or probability map as NIfTI, atomically.

    Parameters
    ----------
    volume : Volume or array-like of shape (I, J, K)
        What to write. A plain array takes its grid (affine) from
        ``reference``.
    path : str or PathLike
        Output file, ending ``.nii`` or ``.nii.gz`` (gzip-compressed). Parent
        folders are created.
    reference : Volume, str or PathLike, optional
        The grid of the array: a Volume, a NIfTI file or a DICOM series
        folder (only its headers are read). Required when ``volume`` is an
        array; when ``volume`` is a Volume, its grid must match the
        reference's (a safety check).
    dtype : dtype, optional
        On-disk voxel type. By default bool masks are written as uint8,
        floats as float32 (probability maps), int64/uint64 as int32 (when the
        values fit) and other integer types unchanged. ``bool`` means uint8.
    description : str, optional
        Text for the header's ``descrip`` field (at most 80 ASCII
        characters), e.g. the threshold of a probability map.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InvalidVolumeError
        No grid is known, the array is not 3D, does not fit the reference
        grid, or its values do not fit ``dtype``.
    VolumeFileError
        The extension is not ``.nii``/``.nii.gz`` or the file cannot be
        written.

    Notes
    -----
    The affine is stored in both the sform and the qform with code 1
    (scanner), so every NIfTI reader finds it; a sheared affine, which a
    qform cannot represent, is stored in the sform only (qform code 0).
    NIfTI keeps the affine in float32: it round-trips to about 1e-5 mm.

    The file is first written to a hidden temporary file in the same folder
    (``.{name}.{pid}.{random}.tmp``), flushed to disk and then renamed over
    ``path``; if anything fails the temporary file is removed and any
    existing ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from pancreas.io import Volume, load_volume, save_volume
    >>> ct = Volume(np.zeros((4, 5, 6), np.int16), np.diag([-0.75, -0.75, 2.5, 1]))
    >>> mask = ct.array > -500
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = save_volume(mask, Path(tmp) / "pred" / "mask.nii.gz", reference=ct)
    ...     back = load_volume(out)
    >>> out.name, back.array.dtype, np.array_equal(back.affine, ct.affine)
    ('mask.nii.gz', dtype('uint8'), True)
    """
    import nibabel as nib

    out = Path(os.fspath(path))
    suffix = _nifti_suffix(out)
    if suffix is None:
        raise VolumeFileError(
            f"{out}: save_volume writes NIfTI only; name the file .nii or .nii.gz"
        )

    if isinstance(volume, Volume):
        array, affine, name = volume.array, volume.affine, volume.name
        if reference is not None:
            ref_affine, ref_shape, ref_name = _reference_grid(reference)
            if ref_shape != array.shape or not np.allclose(
                ref_affine, affine, rtol=0, atol=1e-4
            ):
                raise InvalidVolumeError(
                    f"{name}: its grid (shape {array.shape}) is not the grid of "
                    f"the reference {ref_name} (shape {ref_shape}, or a different "
                    "affine); resample it or drop reference="
                )
    else:
        if reference is None:
            raise InvalidVolumeError(
                f"{out}: a plain array has no affine; pass reference= (the "
                "Volume, NIfTI file or DICOM folder it belongs to) or a "
                "pancreas.io.Volume"
            )
        array = np.asarray(volume)
        affine, ref_shape, name = _reference_grid(reference)
        if array.shape != ref_shape:
            raise InvalidVolumeError(
                f"{out}: array of shape {array.shape} does not fit the grid of "
                f"{name} (shape {ref_shape})"
            )
    if array.ndim != 3:
        raise InvalidVolumeError(
            f"{name}: only 3D volumes can be saved, got shape {array.shape}"
        )
    if not np.all(np.isfinite(affine)):
        raise InvalidVolumeError(f"{name}: the affine has NaN or infinite entries")
    array = _cast_for_save(array, dtype, name)

    img = nib.Nifti1Image(array, affine)
    img.header.set_data_dtype(array.dtype)
    img.header.set_xyzt_units("mm")
    if description is not None:
        if len(description) > 80 or not description.isascii():
            raise ValueError(
                f"{out}: description must be at most 80 ASCII characters, got "
                f"{description!r}"
            )
        img.header["descrip"] = description.encode("ascii")
    img.set_sform(affine, code=1)
    if _has_shear(affine):
        img.set_qform(None, code=0)
    else:
        img.set_qform(affine, code=1)

    tmp = temporary_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:
            if suffix == ".nii.gz":
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=fh, compresslevel=1, mtime=0
                ) as gz:
                    img.to_stream(gz)
            else:
                img.to_stream(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, VolumeFileError):
            raise VolumeFileError(f"{out}: could not write the file ({exc})") from exc
        raise
    fsync_dir(out.parent)
    return out
