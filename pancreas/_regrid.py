"""A coarser in-plane working grid: whole blocks of the scan's own voxels.

``SuperpixelGenerator(working_spacing=...)`` runs the method on a grid whose
in-plane voxels are blocks of ``f0 x f1`` voxels of the scan (the block
factors are whole numbers, so that every working voxel covers the same scan
voxels and the way back is exact in position). The CT is averaged over each
block, labels become the blocks that are at least half pancreas, and
probabilities come back to the scan's grid by linear interpolation between
block centres, so that the mask's outline is as smooth as the probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "block_factors",
    "block_mean",
    "blocks_at_least_half",
    "grid_affine",
    "upsample",
    "upsample_box",
]


def block_factors(
    spacing: Sequence[float], working_spacing: float | None
) -> tuple[int, int]:
    """In-plane block factors that bring ``spacing`` closest to ``working_spacing``.

    The one rule for blocks of whole pixels: the working grid of
    :class:`~pancreas.superpixels.SuperpixelGenerator` and the block maps of
    :class:`~pancreas.cascade.RFCascade` both use it.

    Parameters
    ----------
    spacing : sequence of float
        Voxel spacing in mm (the first two axes are in-plane).
    working_spacing : float or None
        Wanted in-plane spacing in mm; None keeps the scan's grid.

    Returns
    -------
    (int, int)
        Whole factors, at least 1: ``round(working_spacing / spacing)``.

    Examples
    --------
    >>> block_factors((0.7, 0.7, 2.5), 1.5)
    (2, 2)
    >>> block_factors((2.4, 2.4, 3.0), 1.5)
    (1, 1)
    """
    if working_spacing is None:
        return (1, 1)
    fi, fj = (max(1, round(float(working_spacing) / float(s))) for s in spacing[:2])
    return (fi, fj)


def _block_sums(array: NDArray, factors: tuple[int, int], dtype: type) -> NDArray:
    """Sums over blocks of ``factors`` pixels along the first two axes, in ``dtype``.

    A partial block at the far edge is padded with the edge pixels.
    """
    f0, f1 = factors
    n0, n1 = array.shape[:2]
    pad = [(0, -(-n0 // f0) * f0 - n0), (0, -(-n1 // f1) * f1 - n1)]
    if pad[0][1] or pad[1][1]:
        pad += [(0, 0)] * (array.ndim - 2)
        array = np.pad(array, pad, mode="edge")
    total = np.zeros(
        (array.shape[0] // f0, array.shape[1] // f1, *array.shape[2:]), dtype=dtype
    )
    for di in range(f0):  # strided sums: faster than a sum over a 4-D view
        for dj in range(f1):
            total += array[di::f0, dj::f1]
    return total


def block_mean(array: NDArray, factors: tuple[int, int]) -> NDArray[np.float32]:
    """Mean over blocks of ``factors`` pixels along the first two axes, float32.

    Block ``(a, b)`` covers pixels ``a * f0 .. a * f0 + f0 - 1`` along axis 0
    and likewise along axis 1; a partial block at the far edge repeats the
    edge pixels. Works on a slice or a volume (further axes are kept).

    Examples
    --------
    >>> a = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    >>> block_mean(a, (2, 2))[..., 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    total = _block_sums(np.asarray(array, dtype=np.float32), factors, np.float32)
    return total * np.float32(1.0 / (factors[0] * factors[1]))


def blocks_at_least_half(
    mask: NDArray, factors: tuple[int, int]
) -> NDArray[np.bool_]:
    """Blocks of which at least half the voxels are set (a label on the working grid).

    Examples
    --------
    >>> m = np.zeros((4, 4, 1), bool); m[:2, :1] = True; m[2:, 2:] = True
    >>> blocks_at_least_half(m, (2, 2))[..., 0]
    array([[ True, False],
           [False,  True]])
    """
    counts = _block_sums(np.asarray(mask, dtype=bool), factors, np.int32)
    return 2 * counts >= factors[0] * factors[1]


def grid_affine(
    affine: NDArray[np.float64], factors: tuple[int, int]
) -> NDArray[np.float64]:
    """Affine of the block grid: voxel ``i`` is centred on its block's centre.

    Examples
    --------
    >>> grid_affine(np.diag([0.7, 0.7, 2.5, 1.0]), (2, 2))[:3, 3]
    array([0.35, 0.35, 0.  ])
    """
    f0, f1 = factors
    step = np.diag([f0, f1, 1.0, 1.0])
    step[:2, 3] = [(f0 - 1) / 2.0, (f1 - 1) / 2.0]
    return np.asarray(affine, dtype=np.float64) @ step


def upsample(
    array: NDArray, factors: tuple[int, int], shape: tuple[int, ...]
) -> NDArray:
    """An array on the block grid brought back to the scan's grid of ``shape``.

    Floats are interpolated linearly between block centres (edge values
    held beyond the outermost centres); integers and bools, such as
    superpixel labels and masks, are repeated over their block.

    Examples
    --------
    >>> upsample(np.array([[[0.0], [1.0]]], np.float32), (1, 2), (1, 4, 1))[0, :, 0]
    array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    >>> upsample(np.array([[[1], [2]]]), (1, 2), (1, 3, 1))[0, :, 0]
    array([1, 1, 2])
    """
    array = np.asarray(array)
    f0, f1 = factors
    if array.dtype.kind == "f":
        out = ndimage.zoom(
            array, (f0, f1, 1), order=1, mode="nearest", grid_mode=True
        ).astype(array.dtype, copy=False)
    else:
        out = np.repeat(np.repeat(array, f0, axis=0), f1, axis=1)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])


def upsample_box(
    values: NDArray,
    box: tuple[slice, ...],
    factors: tuple[int, int],
    shape: tuple[int, ...],
) -> tuple[tuple[slice, ...], NDArray]:
    """:func:`upsample` for the values of a box; returns the box on the scan's grid.

    Examples
    --------
    >>> box, v = upsample_box(np.ones((2, 2, 3), np.float32),
    ...                       (slice(1, 3), slice(0, 2), slice(0, 3)), (2, 2), (5, 8, 3))
    >>> box[:2], v.shape
    ((slice(2, 5, None), slice(0, 4, None)), (3, 4, 3))
    """
    f = (*factors, 1)
    full = tuple(
        slice(b.start * k, min(b.stop * k, n)) for b, k, n in zip(box, f, shape)
    )
    size = tuple(s.stop - s.start for s in full)
    return full, upsample(values, factors, size)
