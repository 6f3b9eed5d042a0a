"""Square crops of superpixel bounding boxes, the ConvNet's input (Roth et al. 2.2).

Each candidate superpixel lies within one axial slice (canonical axis 2, see
:mod:`pancreas.record`). Its in-plane bounding box is made square in
millimetres, at least ``min_box_mm`` wide so that tiny superpixels keep some
context, multiplied by a scale factor ``s`` and resampled to a
``patch_size`` x ``patch_size`` patch, HU-windowed and scaled to [0, 1].

Sampling is vectorised over all (superpixel, scale) pairs of a case: the
result equals one ``scipy.ndimage.map_coordinates(order=1, mode='nearest')``
call on the windowed float32 volume, but only the voxels that are sampled are
windowed, so memory and time follow the number of patches, not the size of
the CT (see :func:`sample_patches`).

Nothing here imports Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pancreas.exceptions import InvalidVolumeError

__all__ = ["crop_superpixels", "sample_patches", "scale_boxes", "superpixel_boxes"]


def superpixel_boxes(
    superpixels: NDArray[np.integer[Any]],
    labels: ArrayLike,
    spacing: Sequence[float],
    *,
    min_box_mm: float = 12.0,
    name: str = "superpixels",
) -> NDArray[np.float64]:
    """Square in-plane bounding boxes of superpixels, in one pass over the volume.

    Parameters
    ----------
    superpixels : ndarray of int of shape (I, J, K)
        Superpixel labels in canonical voxel order (axis 2 axial); each label
        lies within one axial slice.
    labels : array-like of int of shape (n_labels,)
        The labels to measure (each must be present).
    spacing : sequence of float
        Voxel size in mm along the three axes.
    min_box_mm : float, default=12.0
        Smallest side of the square box, in mm.
    name : str, default="superpixels"
        Name used in error messages (the case id).

    Returns
    -------
    ndarray of float64 of shape (n_labels, 4)
        Columns: axial slice index ``k``, box centre along axis 0 and axis 1
        (voxel coordinates) and the side of the square box in mm,
        ``max(height_mm, width_mm, min_box_mm)``.

    Raises
    ------
    InvalidVolumeError
        If a label is absent from ``superpixels`` or spans several slices.

    Examples
    --------
    >>> import numpy as np
    >>> sp = np.zeros((10, 10, 2), np.int32); sp[2:6, 4:6, 1] = 1
    >>> superpixel_boxes(sp, [1], (1.0, 1.0, 2.0), min_box_mm=3.0).tolist()
    [[1.0, 3.5, 4.5, 4.0]]
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    out = np.empty((labels.size, 4), dtype=np.float64)
    if labels.size == 0:
        return out
    if labels.min() < 1:
        raise InvalidVolumeError(f"{name}: superpixel labels must be >= 1")
    sp = np.asarray(superpixels)
    lo, hi = _label_extents(sp, labels)
    missing = lo[:, 0] < 0
    spans = ~missing & (lo[:, 2] != hi[:, 2])
    bad = np.flatnonzero(missing | spans)
    if bad.size:
        row = int(bad[0])
        label = int(labels[row])
        if missing[row]:
            raise InvalidVolumeError(f"{name}: superpixel {label} is not in the volume")
        raise InvalidVolumeError(
            f"{name}: superpixel {label} spans axial slices "
            f"{lo[row, 2]}..{hi[row, 2]}; each must lie within one slice"
        )
    extent = hi - lo + 1
    out[:, 0] = lo[:, 2]
    out[:, 1] = 0.5 * (lo[:, 0] + hi[:, 0])
    out[:, 2] = 0.5 * (lo[:, 1] + hi[:, 1])
    out[:, 3] = np.maximum(
        np.maximum(extent[:, 0] * spacing[0], extent[:, 1] * spacing[1]), min_box_mm
    )
    return out


def _label_extents(
    superpixels: NDArray[np.integer[Any]], labels: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Smallest and largest voxel index of each label along each axis.

    Only the voxels of the wanted labels are visited after one table look-up
    over the volume (``find_objects`` keeps a box for every label up to the
    largest). Rows of labels absent from the volume are -1.
    """
    n_max = int(superpixels.max(initial=0))
    wanted = np.zeros(n_max + 1, dtype=bool)
    wanted[labels[labels <= n_max]] = True
    flat = np.flatnonzero(wanted[superpixels.ravel()])
    voxel_labels = superpixels.ravel()[flat]
    order = np.argsort(voxel_labels, kind="stable")
    voxel_labels = voxel_labels[order]
    coords = np.stack(np.unravel_index(flat[order], superpixels.shape), axis=1)
    starts = np.flatnonzero(np.diff(voxel_labels, prepend=-1))
    found = voxel_labels[starts].astype(np.int64)
    lo = np.full((labels.size, 3), -1, dtype=np.int64)
    hi = np.full((labels.size, 3), -1, dtype=np.int64)
    if found.size:
        row = np.minimum(np.searchsorted(found, labels), found.size - 1)
        ok = found[row] == labels
        lo[ok] = np.minimum.reduceat(coords, starts, axis=0)[row[ok]]
        hi[ok] = np.maximum.reduceat(coords, starts, axis=0)[row[ok]]
    return lo, hi


def sample_patches(
    volume: NDArray[Any],
    spacing: Sequence[float],
    boxes: NDArray[np.floating[Any]],
    *,
    patch_size: int = 64,
    hu_window: Sequence[float] = (-160.0, 240.0),
) -> NDArray[np.float32]:
    """Resample square boxes of axial slices into windowed patches.

    Parameters
    ----------
    volume : ndarray of shape (I, J, K) or DiskVolume
        CT in Hounsfield units, canonical voxel order; or a CT on disk
        (``pancreas._store.DiskVolume``, as a streamed fit keeps it), of
        which only the rows that the boxes cover are read.
    spacing : sequence of float
        Voxel size in mm.
    boxes : ndarray of shape (n, 4)
        Rows ``(k, centre0, centre1, side_mm)`` as from :func:`superpixel_boxes`
        (with ``side_mm`` already multiplied by the scale).
    patch_size : int, default=64
        Side of the output patches in pixels.
    hu_window : (float, float), default=(-160, 240)
        HU range mapped linearly to [0, 1]; values outside are clipped.

    Returns
    -------
    ndarray of float32 of shape (n, patch_size, patch_size, 1)
        Patch rows follow axis 0 and columns axis 1 of the volume. Pixel
        ``(a, b)`` samples the box at its centre
        ``centre + ((a + 0.5) / patch_size - 0.5) * side_mm / spacing``.

    Notes
    -----
    The result equals ``scipy.ndimage.map_coordinates(window(volume), coords,
    order=1, mode='nearest')`` with 3D coordinates of fixed ``k`` (tested),
    where ``window`` maps ``hu_window`` to [0, 1] and clips. It is computed
    as a vectorised bilinear interpolation that gathers the four neighbours
    of every sample from the raw volume and windows only those, so nothing of
    the size of the CT is allocated. Measured on a 512 x 512 x 200 volume and
    a batch of 128 patches of 64 x 64 from random slices: 0.03 s, against
    0.2 s for ``map_coordinates`` on the windowed stack of the sampled slices.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.full((20, 20, 3), 40.0)
    >>> p = sample_patches(vol, (1.0, 1.0, 1.0), np.array([[1, 10, 10, 8.0]]),
    ...                    patch_size=4)
    >>> p.shape, float(p.max())
    ((1, 4, 4, 1), 0.5)
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    from_disk = hasattr(volume, "band")  # a pancreas._store.DiskVolume
    if not from_disk:
        volume = np.asarray(volume)
    n = boxes.shape[0]
    if n == 0:
        return np.zeros((0, patch_size, patch_size, 1), np.float32)
    lo, hi = float(hu_window[0]), float(hu_window[1])
    n_i, n_j, n_k = volume.shape
    u = ((np.arange(patch_size, dtype=np.float64) + 0.5) / patch_size - 0.5)[None, :]
    rows = np.clip(boxes[:, 1:2] + u * (boxes[:, 3:4] / spacing[0]), 0, n_i - 1)
    cols = np.clip(boxes[:, 2:3] + u * (boxes[:, 3:4] / spacing[1]), 0, n_j - 1)
    r0 = rows.astype(np.intp)  # floor: rows >= 0
    c0 = cols.astype(np.intp)
    fr = (rows - r0).astype(np.float32)[:, :, None]
    fc = (cols - c0).astype(np.float32)[:, None, :]
    # the +1 neighbours, clamped on the last row / column
    r1 = r0 + (r0 < n_i - 1)
    c1 = c0 + (c0 < n_j - 1)
    ks = boxes[:, 0].astype(np.intp)
    if ks.min() < 0 or ks.max() >= n_k:
        raise InvalidVolumeError(
            f"slice index out of range 0..{n_k - 1} for a volume of shape "
            f"{volume.shape}"
        )
    if from_disk:
        corners = _corners_from_disk(volume, ks, r0, r1, c0, c1)
    else:
        corners = _corners_in_memory(volume, ks, r0, r1, c0, c1)
    scale = 1.0 / (hi - lo)

    def windowed(v: NDArray[Any]) -> NDArray[np.float32]:
        v = v.astype(np.float32, copy=False)
        v -= lo
        v *= scale
        return np.clip(v, 0.0, 1.0, out=v)

    v00, v01, v10, v11 = (windowed(v) for v in corners)
    top = v00 + (v01 - v00) * fc
    bottom = v10 + (v11 - v10) * fc
    out = top + (bottom - top) * fr
    return out[..., None]


def _corners_in_memory(
    volume: NDArray[Any],
    ks: NDArray[np.intp],
    r0: NDArray[np.intp],
    r1: NDArray[np.intp],
    c0: NDArray[np.intp],
    c1: NDArray[np.intp],
) -> list[NDArray[Any]]:
    """The four bilinear neighbours of every sample, gathered from an array."""
    _, n_j, n_k = volume.shape
    flat = volume.reshape(-1)
    k = ks[:, None, None]
    return [
        flat[(r[:, :, None] * n_j + c[:, None, :]) * n_k + k]
        for r, c in ((r0, c0), (r0, c1), (r1, c0), (r1, c1))
    ]


def _corners_from_disk(
    volume: Any,
    ks: NDArray[np.intp],
    r0: NDArray[np.intp],
    r1: NDArray[np.intp],
    c0: NDArray[np.intp],
    c1: NDArray[np.intp],
) -> list[NDArray[Any]]:
    """The four bilinear neighbours, reading one band of rows per slice."""
    n, p = r0.shape
    out = [np.empty((n, p, p), dtype=volume.dtype) for _ in range(4)]
    for k in np.unique(ks):
        sel = np.flatnonzero(ks == k)
        top, bottom = int(r0[sel].min()), int(r1[sel].max()) + 1
        band = volume.band(int(k), top, bottom)
        for o, (r, c) in zip(
            out, ((r0, c0), (r0, c1), (r1, c0), (r1, c1)), strict=True
        ):
            o[sel] = band[(r[sel] - top)[:, :, None], c[sel][:, None, :]]
    return out


def crop_superpixels(
    record: Any,
    labels: ArrayLike | None = None,
    *,
    scales: Sequence[float] = (1.0,),
    patch_size: int = 64,
    min_box_mm: float = 12.0,
    hu_window: Sequence[float] = (-160.0, 240.0),
) -> NDArray[np.float32]:
    """Crop a record's superpixels at several scales, as ConvNet input.

    Parameters
    ----------
    record : CaseRecord
        A case with ``superpixels`` set (see :mod:`pancreas.record`).
    labels : array-like of int, default=None
        Superpixel labels to crop; ``None`` means ``record.candidates``.
    scales : sequence of float, default=(1.0,)
        Box enlargement factors ``s``: the box side is
        ``max(height_mm, width_mm, min_box_mm) * s``.
    patch_size : int, default=64
        Output patch side in pixels.
    min_box_mm : float, default=12.0
        Smallest box side in mm before scaling.
    hu_window : (float, float), default=(-160, 240)
        HU range mapped to [0, 1].

    Returns
    -------
    ndarray of float32 of shape (n_labels * n_scales, patch_size, patch_size, 1)
        Label-major: the crop of ``labels[i]`` at ``scales[j]`` is row
        ``i * len(scales) + j``.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.record import make_record
    >>> ct = np.full((16, 16, 2), -1000.0)
    >>> ct[4:8, 4:8, 0] = 40.0
    >>> rec = make_record(ct, "toy")
    >>> sp = np.zeros(ct.shape, np.int32)
    >>> sp[4:8, 4:8, 0] = 1
    >>> rec.superpixels = sp
    >>> crop_superpixels(rec, [1], scales=(1.0, 2.0), patch_size=8,
    ...                  min_box_mm=4.0).shape
    (2, 8, 8, 1)
    """
    if record.superpixels is None:
        raise InvalidVolumeError(
            f"{record.case_id}: the record has no superpixels; run "
            "SuperpixelGenerator first"
        )
    if labels is None:
        if record.candidates is None:
            raise InvalidVolumeError(
                f"{record.case_id}: the record has no candidates; run RFCascade first"
            )
        labels = record.candidates
    boxes = superpixel_boxes(
        record.superpixels,
        labels,
        record.spacing,
        min_box_mm=min_box_mm,
        name=record.case_id,
    )
    return sample_patches(
        record.volume.array,
        record.spacing,
        scale_boxes(boxes, scales),
        patch_size=patch_size,
        hu_window=hu_window,
    )


def scale_boxes(
    boxes: NDArray[np.floating[Any]], scales: Sequence[float]
) -> NDArray[np.float64]:
    """Repeat each box once per scale, label-major, multiplying its side.

    Examples
    --------
    >>> import numpy as np
    >>> scale_boxes(np.array([[3.0, 10.0, 12.0, 20.0]]), (1.0, 2.0))[:, 3].tolist()
    [20.0, 40.0]

    Parameters
    ----------
    boxes : ndarray of shape (n, 4)
        As from :func:`superpixel_boxes`.
    scales : sequence of float
        Scale factors.

    Returns
    -------
    ndarray of shape (n * len(scales), 4)
        Row ``i * len(scales) + j`` is box ``i`` with its side times
        ``scales[j]``.
    """
    scales = np.asarray(scales, dtype=np.float64)
    out = np.repeat(np.asarray(boxes, dtype=np.float64), scales.size, axis=0)
    out[:, 3] *= np.tile(scales, len(boxes))
    return out
