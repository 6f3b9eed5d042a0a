"""The two-level random-forest cascade that proposes candidate superpixels.

Roth et al. (2015), Sec. 2.1, after Farag et al. (2014): image patches on a
regular grid inside the body are classified by a first random forest into a
pancreas probability response map; a second forest classifies each
superpixel from its own intensity, texture, size and depth and from the
response map inside and around it. The superpixels with ``p_RF > 0.5`` form the
candidate set ``S_RF``: highly sensitive, heavily over-segmented.

Data contract: ``X`` is a sequence of cases whose records already carry
superpixels (the output of :class:`~pancreas.superpixels.SuperpixelGenerator`);
``y`` is a sequence of label volumes on the cases' own grids, non-zero
meaning pancreas.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from pancreas._checks import check_any_pancreas
from pancreas._parallel import parallel_map
from pancreas._regrid import block_factors, block_mean
from pancreas._validation import N_JOBS, Interval, _fit_context
from pancreas.base import VolumeEstimatorMixin
from pancreas.exceptions import InvalidVolumeError, ModelVersionError
from pancreas.record import CaseRecord, as_records, check_labels
from pancreas.superpixels import _check_window, superpixel_label_fractions, window_hu

__all__ = ["RFCascade", "body_depth", "candidate_mask", "candidate_recall"]

# Patch sizes (side, mm) of the local intensity statistics, and the scales
# (mm) of the texture filters and of the context of the response map.
_PATCH_SIZES_MM = (5.0, 11.0, 21.0, 41.0)
_GRADIENT_SIGMAS_MM = (1.0, 3.0)
_LOG_SIGMAS_MM = (2.0, 4.0)
_CONTEXT_SIGMAS_MM = (5.0, 15.0)
#: Version of the features' definitions: part of the key under which a
#: streamed fit keeps a case's features, so a new definition is recomputed.
FEATURES_VERSION = 3

# Location, from anatomy and in mm only: nothing that moves when the scan
# covers more or less of the patient (no offset from the body's centroid or
# extent, no height between the first and last slice).
_LOCATION_NAMES = (
    "depth_mm",
    "dx_spine_mm",
    "dy_spine_mm",
    "anterior_mm",
    "ap_rel",
)
# HU above which a voxel counts as bone, for the spine landmark.
_BONE_HU = 300.0


def _map_names() -> list[str]:
    names = ["intensity"]
    for size in _PATCH_SIZES_MM:
        names += [f"mean_{size:g}mm", f"std_{size:g}mm"]
    names += [f"gradient_{s:g}mm" for s in _GRADIENT_SIGMAS_MM]
    names += [f"log_{s:g}mm" for s in _LOG_SIGMAS_MM]
    return names


def _level1_names() -> list[str]:
    return [*_map_names(), *_LOCATION_NAMES]


def _level2_names() -> list[str]:
    return [
        *(f"sp_{name}" for name in _map_names()),
        "sp_intensity_std",
        "sp_intensity_min",
        "sp_intensity_max",
        "sp_area_mm2",
        "sp_depth_mm",
        "p1_mean",
        "p1_max",
        "p1_min",
        "p1_frac_gt_0.5",
        *(f"p1_context_{s:g}mm_mean" for s in _CONTEXT_SIGMAS_MM),
        *(f"p1_context_{s:g}mm_max" for s in _CONTEXT_SIGMAS_MM),
    ]


# --------------------------------------------------------------------------- #
# Geometry and per-slice features
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Geometry:
    """Where a case's body lies and how the level-1 grid covers it."""

    box: tuple[slice, slice]  # in-plane bounding box of the body, all slices
    z_range: tuple[int, int]  # first and last slice holding body
    steps: tuple[int, int]  # grid stride in pixels along axes 0 and 1
    coarse_shape: tuple[int, int, int]  # grid points along axes 0, 1, 2
    spacing: tuple[float, float, float]
    spine: NDArray[np.float64]  # (n_slices, 2) spine landmark, box coordinates
    factor: tuple[int, int] = (1, 1)  # pixels per block of the block maps


def _spine_landmarks(
    hu: NDArray[Any], mask: NDArray[np.bool_], box: tuple[slice, slice]
) -> NDArray[np.float64]:
    """Centre of the spine in each slice, in the box's pixel coordinates.

    The bone (HU > 300) inside the body, in the posterior half (low axis-1
    indices in canonical RAS+ order) of a central strip a fifth of the body
    wide: the vertebra, whatever the patient's girth. Slices without such
    bone are interpolated from their neighbours, the track is median
    filtered along z, and the body's centre stands in when no slice has
    any bone.
    """
    n = hu.shape[2]
    points = np.full((n, 2), np.nan)
    centres = np.full((n, 2), np.nan)
    for k in range(n):
        m = mask[box[0], box[1], k]
        if not m.any():
            continue
        rows, cols = np.nonzero(m)
        centres[k] = rows.mean(), cols.mean()
        r0, r1 = rows.min(), rows.max()
        half = (r1 - r0) / 10.0
        strip = slice(int(centres[k, 0] - half), int(centres[k, 0] + half) + 1)
        back = slice(0, int(centres[k, 1]) + 1)
        bone = hu[box[0], box[1], k][strip, back] > _BONE_HU
        bone &= m[strip, back]
        if bone.sum() >= 3:
            br, bc = np.nonzero(bone)
            points[k] = br.mean() + strip.start, bc.mean()
    found = np.flatnonzero(~np.isnan(points[:, 0]))
    if found.size == 0:
        return centres
    z = np.arange(n)
    for axis in range(2):
        filled = np.interp(z, found, points[found, axis])
        points[:, axis] = ndimage.median_filter(filled, size=5, mode="nearest")
    return points


def _geometry(
    mask: NDArray[np.bool_],
    hu: NDArray[Any],
    spacing: Any,
    grid_spacing: float,
    origin: Any = (0.0, 0.0),
    map_spacing: float | None = None,
) -> _Geometry:
    """The body's box and the level-1 grid of a case.

    The grid is anchored in world coordinates (``origin``: the world
    position of voxel (0, 0) along the two in-plane axes, in mm): a point
    lies on it wherever the same anatomy lies, whatever the scan's extent,
    so a scan cropped in z or in-plane samples the same patch centres.
    """
    sx, sy, sz = (float(s) for s in spacing[:3])
    rows = np.flatnonzero(mask.any(axis=(1, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 2)))
    zs = np.flatnonzero(mask.any(axis=(0, 1)))
    steps = (max(1, round(grid_spacing / sx)), max(1, round(grid_spacing / sy)))
    if rows.size == 0:
        box = (slice(0, 0), slice(0, 0))
        z_range = (0, 0)
    else:
        starts = []
        for first, step, size, o in zip(
            (rows[0], cols[0]), steps, (sx, sy), origin, strict=True
        ):
            phase = round(-float(o) / size) % step  # index of a world grid line
            starts.append(int(first) - (int(first) - phase) % step)
        box = (
            slice(max(starts[0], 0), rows[-1] + 1),
            slice(max(starts[1], 0), cols[-1] + 1),
        )
        z_range = (int(zs[0]), int(zs[-1]))
    height = box[0].stop - box[0].start
    width = box[1].stop - box[1].start
    coarse = (-(-height // steps[0]), -(-width // steps[1]), mask.shape[2])
    spine = _spine_landmarks(hu, mask, box)
    factor = block_factors((sx, sy), map_spacing)
    return _Geometry(box, z_range, steps, coarse, (sx, sy, sz), spine, factor)


def _odd(n: float) -> int:
    n = max(1, round(n))
    return n if n % 2 else n + 1


#: Scales computed on the scan's own pixels whatever ``map_spacing``: the
#: 5 mm patch statistics and the 1 mm gradient (with the intensity itself).
#: The larger scales are smooth at a block of pixels and are computed on
#: blocks (see ``RFCascade(map_spacing=...)``).
_FINE_PATCH_SIZES_MM = (5.0,)
_FINE_SIGMAS_MM = (1.0,)


@dataclass
class _SliceMaps:
    """A slice's intensity and texture maps, the larger scales on blocks.

    ``maps[i]`` lies on the slice's pixels when ``on_blocks[i]`` is False,
    else on blocks of ``factor`` pixels (``pancreas._regrid.block_mean``).
    The order is that of :func:`_map_names`.
    """

    maps: list[NDArray[np.float32]]
    on_blocks: list[bool]
    factor: tuple[int, int]

    def at(self, rows: NDArray[Any], cols: NDArray[Any]) -> list[NDArray[np.float32]]:
        """Every map at pixels ``(rows, cols)``: a block map gives its block's value."""
        fi, fj = self.factor
        return [
            m[rows // fi, cols // fj] if coarse else m[rows, cols]
            for m, coarse in zip(self.maps, self.on_blocks, strict=True)
        ]

    def superpixel_means(self, index: _SuperpixelIndex) -> list[NDArray[np.float64]]:
        """Every map's mean over each superpixel of `index`."""
        means = []
        blocks = None
        for m, coarse in zip(self.maps, self.on_blocks, strict=True):
            if coarse:
                if blocks is None:
                    blocks = _block_of_pixels(index, self.factor, m.shape[1])
                means.append(index.mean(m.ravel().take(blocks)))
            else:
                means.append(index.mean(index.values(m)))
        return means


def _block_of_pixels(
    index: _SuperpixelIndex, factor: tuple[int, int], n_block_cols: int
) -> NDArray[np.intp]:
    """Flat position, in a block map, of the block holding each pixel of `index`."""
    rows, cols = np.divmod(index.flat, index.shape[1])
    return (rows // factor[0]) * n_block_cols + cols // factor[1]


def _feature_maps(
    image: NDArray[np.float32],
    spacing: tuple[float, float],
    factor: tuple[int, int] = (1, 1),
) -> _SliceMaps:
    """Intensity and texture maps of one windowed slice, scales in mm.

    With ``factor`` other than ``(1, 1)`` the scales not in
    ``_FINE_PATCH_SIZES_MM`` and ``_FINE_SIGMAS_MM`` are computed on blocks
    of ``factor`` pixels: the block means of the intensity and of its square
    (so a patch's standard deviation is still that of its pixels), at a
    quarter of the pixels or fewer.
    """
    squared = image * image
    on_blocks = factor != (1, 1)
    grids = {False: (image, squared, spacing)}
    if on_blocks:
        grids[True] = (
            block_mean(image, factor),
            block_mean(squared, factor),
            (spacing[0] * factor[0], spacing[1] * factor[1]),
        )
    maps, blocks = [image], [False]
    for size in _PATCH_SIZES_MM:
        coarse = on_blocks and size not in _FINE_PATCH_SIZES_MM
        img, sq, (sx, sy) = grids[coarse]
        window = (_odd(size / sx), _odd(size / sy))
        mean = ndimage.uniform_filter(img, window, mode="nearest")
        mean_sq = ndimage.uniform_filter(sq, window, mode="nearest")
        maps += [mean, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))]
        blocks += [coarse, coarse]
    for s in _GRADIENT_SIGMAS_MM:
        coarse = on_blocks and s not in _FINE_SIGMAS_MM
        img, _, (sx, sy) = grids[coarse]
        sig = (s / sx, s / sy)
        grad = ndimage.gaussian_gradient_magnitude(img, sig, mode="nearest")
        maps.append(grad * np.float32(np.mean(sig)))  # scale-normalised
        blocks.append(coarse)
    for s in _LOG_SIGMAS_MM:
        coarse = on_blocks and s not in _FINE_SIGMAS_MM
        img, _, (sx, sy) = grids[coarse]
        sig = (s / sx, s / sy)
        log = ndimage.gaussian_laplace(img, sig, mode="nearest")
        maps.append(-log * np.float32(sig[0] * sig[1]))  # bright blobs > 0
        blocks.append(coarse)
    return _SliceMaps(maps, blocks, factor)


@dataclass
class _Slice:
    """One axial slice of a case, cropped to the case's body box."""

    image: NDArray[np.float32]
    mask: NDArray[np.bool_]
    depth: _SliceMaps  # depth below the body surface in mm (one map)
    spine: tuple[float, float]
    front: NDArray[np.float64]  # per row: the body's most anterior column
    ap_span: float  # columns from the spine to the anterior wall above it


def _make_slice(
    rec: CaseRecord,
    mask: NDArray[np.bool_],
    geom: _Geometry,
    k: int,
    hu_window: tuple[float, float],
) -> _Slice | None:
    m = mask[geom.box[0], geom.box[1], k]
    if not m.any():
        return None
    image = window_hu(
        np.asarray(rec.volume.array)[geom.box[0], geom.box[1], k], hu_window
    )
    depth = _box_depth(mask[:, :, k], geom.box, geom.spacing[:2], geom.factor)
    spine = (float(geom.spine[k, 0]), float(geom.spine[k, 1]))
    # the anterior abdominal wall straight ahead of each row (canonical axis 1
    # points anterior): a landmark of the patient, not of the field of view
    cols = np.arange(m.shape[1])
    front = np.where(m.any(axis=1), np.max(np.where(m, cols, -1), axis=1), np.nan)
    row = int(np.clip(round(spine[0]), 0, m.shape[0] - 1))
    span = front[row] - spine[1] if np.isfinite(front[row]) else np.nan
    if not np.isfinite(span) or span < 1:
        span = float(np.nanmax(front) - spine[1]) if np.isfinite(front).any() else 1.0
    return _Slice(image, m, depth, spine, front.astype(np.float64), max(span, 1.0))


def _box_depth(
    body: NDArray[np.bool_],
    box: tuple[slice, slice],
    spacing: tuple[float, float],
    factor: tuple[int, int],
) -> _SliceMaps:
    """:func:`body_depth` of one slice inside the case's body box.

    The box holds the body of every slice, so one pixel of margin around it
    (where the image goes on) is background: the depth inside the box equals
    that of the whole slice, at the cost of the box alone. With ``factor``
    other than ``(1, 1)`` it is computed on blocks of pixels (a block is
    body when at least half of it is).
    """
    rows = range(*box[0].indices(body.shape[0]))
    cols = range(*box[1].indices(body.shape[1]))
    inside = np.asarray(body[box[0], box[1]], dtype=bool)
    coarse = factor != (1, 1)
    if coarse:
        inside = block_mean(inside, factor) >= 0.5
        spacing = (spacing[0] * factor[0], spacing[1] * factor[1])
    # background margin where the box stops short of the image's edge
    pad = (
        (int(rows.start > 0), int(rows.stop < body.shape[0])),
        (int(cols.start > 0), int(cols.stop < body.shape[1])),
    )
    depth = body_depth(np.pad(inside, pad), spacing)
    depth = depth[pad[0][0] : depth.shape[0] - pad[0][1], pad[1][0] : depth.shape[1] - pad[1][1]]
    return _SliceMaps([depth], [coarse], factor)


def body_depth(
    body: NDArray[np.bool_], spacing: tuple[float, float]
) -> NDArray[np.float32]:
    """Distance in mm from each pixel of an axial slice to the body's surface.

    Where the body reaches the edge of the image (a field of view narrower
    than the patient), it is taken to go on beyond it: the edge is not a
    surface, so a pixel's depth does not change when the field of view is
    cropped, as long as the nearest true surface stays inside it.

    Parameters
    ----------
    body : ndarray of bool of shape (I, J)
        The body mask of one slice.
    spacing : (float, float)
        Pixel size in mm along the two axes.

    Returns
    -------
    ndarray of float32 of shape (I, J)
        0 outside the body.

    Examples
    --------
    >>> import numpy as np
    >>> body = np.zeros((5, 9), bool); body[1:4, :] = True  # cut at both sides
    >>> body_depth(body, (1.0, 2.0))[2].tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    """
    padded = np.pad(np.asarray(body, dtype=bool), 1, mode="edge")
    depth = ndimage.distance_transform_edt(padded, sampling=spacing)
    return depth[1:-1, 1:-1].astype(np.float32)


def _location(
    sl: _Slice,
    rows: NDArray[Any],
    cols: NDArray[Any],
    depth: NDArray[Any],
    spacing: tuple[float, float, float],
) -> list:
    return [
        depth,
        (rows - sl.spine[0]) * spacing[0],
        (cols - sl.spine[1]) * spacing[1],
        (sl.front[rows] - cols) * spacing[1],
        (cols - sl.spine[1]) / sl.ap_span,
    ]


def _level1_slice(
    sl: _Slice, geom: _Geometry, maps: _SliceMaps
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float32]]:
    """Level-1 features at the grid points inside the body of one slice.

    ``maps`` are the slice's :func:`_feature_maps`.
    """
    si, sj = geom.steps
    grid = np.zeros_like(sl.mask)
    grid[::si, ::sj] = True
    rows, cols = np.nonzero(grid & sl.mask)
    feats = maps.at(rows, cols)
    feats += _location(sl, rows, cols, sl.depth.at(rows, cols)[0], geom.spacing)
    return rows // si, cols // sj, np.stack(feats, axis=1).astype(np.float32)


@dataclass(frozen=True)
class _SuperpixelIndex:
    """The body pixels of one slice's superpixels, grouped by superpixel."""

    flat: NDArray[np.intp]  # flat (row-major) indices of the pixels in the slice
    shape: tuple[int, int]  # shape of the slice
    labels: NDArray[Any]  # sorted superpixel labels of the slice
    inverse: NDArray[np.intp]  # position in `labels` of each pixel
    counts: NDArray[np.float64]  # pixels per superpixel
    order: NDArray[np.intp]  # pixels sorted by superpixel (stable)
    starts: NDArray[np.int64]  # first position of each superpixel in `order`

    @classmethod
    def of(cls, sp: NDArray[np.integer[Any]]) -> _SuperpixelIndex | None:
        """Index of the superpixels of slice `sp`; None when it has none."""
        flat = np.flatnonzero(sp > 0)
        if flat.size == 0:
            return None
        values = sp.ravel()[flat]
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * flat.size:
            # the labels of a slice span a short range (consecutive from
            # SuperpixelGenerator): count them in a table instead of sorting
            present = np.bincount(values - lo, minlength=hi - lo + 1)
            labels = np.flatnonzero(present) + lo
            inverse = (np.cumsum(present > 0) - 1)[values - lo]
        else:
            labels, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse, minlength=labels.size).astype(np.float64)
        # a stable sort of small integers is a radix sort in numpy
        small = np.int16 if labels.size <= np.iinfo(np.int16).max else np.intp
        order = np.argsort(inverse.astype(small), kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts[:-1]).astype(np.int64)])
        return cls(flat, sp.shape, labels, inverse, counts, order, starts)

    def values(self, image: NDArray[Any]) -> NDArray[Any]:
        """The pixels of `image` (shaped like the slice) in index order."""
        return image.ravel().take(self.flat)

    def mean(self, values: NDArray[Any]) -> NDArray[np.float64]:
        """Mean of per-pixel `values` over each superpixel."""
        return np.bincount(self.inverse, weights=values) / self.counts

    def reduce(self, values: NDArray[Any], ufunc: np.ufunc) -> NDArray[Any]:
        """``ufunc`` (np.minimum, np.maximum) of `values` over each superpixel."""
        return ufunc.reduceat(values[self.order], self.starts)


def _linear_weights(
    n_out: int, step: int, n_in: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Neighbours and weight of pixel ``i / step`` on a grid of `n_in` points.

    As ``map_coordinates(order=1, mode="nearest")``: positions past the last
    grid point take its value.
    """
    pos = np.minimum(np.arange(n_out) / step, n_in - 1)
    lower = pos.astype(np.intp)
    return lower, np.minimum(lower + 1, n_in - 1), pos - lower


def _upsample_linear(
    coarse: NDArray[np.floating[Any]], steps: tuple[int, int], shape: tuple[int, int]
) -> NDArray[np.floating[Any]]:
    """Bilinear interpolation of a coarse grid map at every pixel of a slice.

    Pixel ``(i, j)`` lies at grid position ``(i / steps[0], j / steps[1])``.
    Computed separably in float64 and returned in the dtype of `coarse`; it
    equals ``map_coordinates(coarse, ..., order=1, mode="nearest")`` but for
    rounding (1 ulp on a few pixels), without its per-pixel spline set-up.
    """
    r0, r1, fr = _linear_weights(shape[0], steps[0], coarse.shape[0])
    c0, c1, fc = _linear_weights(shape[1], steps[1], coarse.shape[1])
    c = np.asarray(coarse, dtype=np.float64)
    rows = c[r0] * (1.0 - fr)[:, None] + c[r1] * fr[:, None]
    out = rows[:, c0] * (1.0 - fc) + rows[:, c1] * fc
    return out.astype(coarse.dtype, copy=False)


#: Level-2 features computed from the image alone (the first ones of
#: :func:`_level2_names`); the others need the level-1 response map.
_N_LEVEL2_IMAGE = len(_map_names()) + 5


def _level2_image_slice(
    sl: _Slice,
    geom: _Geometry,
    index: _SuperpixelIndex,
    maps: _SliceMaps,
) -> NDArray[np.float32]:
    """Level-2 features of one slice's superpixels that need no level-1 map."""
    feats = maps.superpixel_means(index)
    intensity = index.values(sl.image).astype(np.float64)
    var = index.mean(intensity * intensity) - feats[0] ** 2
    feats += [
        np.sqrt(np.maximum(var, 0.0)),
        index.reduce(intensity, np.minimum),
        index.reduce(intensity, np.maximum),
        index.counts * geom.spacing[0] * geom.spacing[1],
        sl.depth.superpixel_means(index)[0],
    ]
    return np.stack(feats, axis=1).astype(np.float32)


def _level2_response_slice(
    index: _SuperpixelIndex, geom: _Geometry, prob: list[NDArray[np.float32]]
) -> NDArray[np.float32]:
    """Level-2 features of one slice's superpixels from the level-1 map.

    ``prob`` holds this slice of the coarse level-1 map, then its smoothed
    versions (one per context scale).
    """
    p1, *context = (
        index.values(_upsample_linear(p, geom.steps, index.shape)) for p in prob
    )
    feats = [
        index.mean(p1),
        index.reduce(p1, np.maximum),
        index.reduce(p1, np.minimum),
        index.mean((p1 > 0.5).astype(np.float64)),
    ]
    feats += [index.mean(c) for c in context]
    feats += [index.reduce(c, np.maximum) for c in context]
    return np.stack(feats, axis=1).astype(np.float32)


@dataclass
class _CaseFeatures:
    """Features of one case computed in a single pass over its slices.

    The level-1 features at the grid points, and (when asked for) the
    level-2 features that need no level-1 map, per slice: the feature maps
    of each slice are computed once and serve both levels.
    """

    geom: _Geometry
    a: NDArray[Any]  # grid coordinates of the level-1 rows
    b: NDArray[Any]
    k: NDArray[Any]
    level1: NDArray[np.float32]
    level2_image: list[tuple[int, NDArray[Any], NDArray[np.float32]]]


def _positive_proba(model: RandomForestClassifier, X: NDArray[Any]) -> NDArray[Any]:
    """Probability of class 1, also when the forest saw a single class."""
    if X.shape[0] == 0:
        return np.zeros(0, np.float32)
    classes = list(model.classes_)
    if 1 not in classes and True not in classes:
        return np.zeros(X.shape[0], np.float32)
    proba = model.predict_proba(X)
    return proba[:, classes.index(1)].astype(np.float32)


def _subsample(
    y: NDArray[np.bool_], cap: int, rng: np.random.RandomState
) -> NDArray[Any]:
    """Indices keeping all positives (up to cap // 2) and negatives up to cap."""
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    if pos.size > cap // 2 and pos.size + neg.size > cap:
        pos = rng.choice(pos, max(cap // 2, 1), replace=False)
    n_neg = max(cap - pos.size, 0)
    if neg.size > n_neg:
        neg = rng.choice(neg, n_neg, replace=False)
    return np.sort(np.concatenate([pos, neg]))


# --------------------------------------------------------------------------- #
# Public helpers
# --------------------------------------------------------------------------- #
def candidate_mask(record: CaseRecord) -> NDArray[np.bool_]:
    """Voxel mask of a record's candidate superpixels (the set S_RF).

    Parameters
    ----------
    record : CaseRecord
        A record with ``superpixels`` and ``candidates`` set (the output of
        :meth:`RFCascade.transform`).

    Returns
    -------
    ndarray of bool, canonical voxel order

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.record import make_record
    >>> from pancreas.cascade import candidate_mask
    >>> rec = make_record(np.zeros((2, 2, 1)))
    >>> rec.superpixels = np.array([[[1], [2]], [[3], [0]]], np.int32)
    >>> rec.candidates = np.array([2, 3], np.int32)
    >>> candidate_mask(rec)[..., 0].tolist()
    [[False, True], [True, False]]
    """
    if record.superpixels is None or record.candidates is None:
        raise InvalidVolumeError(
            f"{record.case_id}: the record has no candidate superpixels; run "
            "SuperpixelGenerator and RFCascade first"
        )
    keep = np.zeros(record.n_superpixels + 1, dtype=bool)
    cand = np.asarray(record.candidates, dtype=np.int64)
    keep[cand[(cand > 0) & (cand < keep.size)]] = True
    return keep[record.superpixels]


def candidate_recall(record: CaseRecord, label: Any) -> float:
    """Fraction of the pancreas voxels that lie inside the candidate set S_RF.

    Parameters
    ----------
    record : CaseRecord
        A record with ``superpixels`` and ``candidates`` set.
    label : path, nibabel image, Volume or ndarray
        The case's label on its own (native) grid, as in ``y``; non-zero
        means pancreas.

    Returns
    -------
    float
        Recall in [0, 1] (1 when both the label and S_RF are empty, 0 when
        only the label is; see :func:`pancreas.metrics.recall_score`).

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.record import make_record
    >>> from pancreas.cascade import candidate_recall
    >>> rec = make_record(np.zeros((2, 2, 1)))
    >>> rec.superpixels = np.array([[[1], [2]], [[3], [0]]], np.int32)
    >>> rec.candidates = np.array([2], np.int32)
    >>> candidate_recall(rec, np.array([[[0], [1]], [[1], [0]]]))
    0.5
    """
    from pancreas.metrics import recall_score

    return recall_score(record.label_array(label), candidate_mask(record))


def _check_superpixels(records: list[CaseRecord]) -> None:
    for rec in records:
        if rec.superpixels is None:
            raise InvalidVolumeError(
                f"{rec.case_id}: RFCascade needs records with superpixels; run "
                "pancreas.superpixels.SuperpixelGenerator first (for example "
                "make_pipeline(SuperpixelGenerator(), RFCascade()))"
            )
        if rec.superpixels.shape != rec.shape:
            raise InvalidVolumeError(
                f"{rec.case_id}: superpixels of shape {rec.superpixels.shape} do "
                f"not match the volume's shape {rec.shape}"
            )


# --------------------------------------------------------------------------- #
# Estimator
# --------------------------------------------------------------------------- #
class RFCascade(VolumeEstimatorMixin, TransformerMixin, BaseEstimator):
    """Two-level random-forest cascade selecting candidate superpixels (S_RF).

    Level 1 classifies image patches centred on a regular grid inside the
    body (every `grid_spacing` mm in-plane, every slice) from local
    intensity statistics (mean and standard deviation) over square patches
    of 5, 11, 21 and 41 mm, texture (gradient magnitude at 1 and 3 mm,
    Laplacian of Gaussian at 2 and 4 mm) and anatomical location in mm:
    the depth below the body surface, the offset from the spine (the bone
    in the posterior midline, tracked along z), the distance to the
    anterior abdominal wall and the position between spine and wall. Its
    probabilities form a response map. Level 2 classifies each superpixel from the means of
    the same intensity and texture maps over it, its intensity spread, area
    in mm^2 and depth below the body surface, and from the response map
    inside it (mean, max, min, fraction > 0.5) and around it (3D Gaussian
    context at 5 and 15 mm: mean and max over the superpixel). Superpixels
    with probability above `threshold` are the candidates.

    Parameters
    ----------
    n_estimators : int, default=50
        Trees in each forest.
    max_depth : int or None, default=20
        Maximum depth of the trees.
    min_samples_leaf : int, default=50
        Minimum samples in a leaf.
    max_patches_per_case : int, default=20000
        Training rows drawn from each case, at each level: all positives (up
        to half of this) and random negatives.
    grid_spacing : float, default=3.0
        In-plane distance in mm between level-1 patch centres.
    map_spacing : float or None, default=None
        In-plane size in mm of the blocks of pixels on which the texture
        maps of scale 2 mm and more (patch statistics over 11-41 mm,
        gradient at 3 mm, Laplacian of Gaussian) and the depth below the skin
        are computed, for speed: with 1.5, a scan of 0.7 mm pixels computes
        them on 2 x 2 blocks, a quarter of the pixels, and the cascade takes
        about 35 % less time. Each axis uses ``round(map_spacing / pixel
        size)`` pixels per block, at least 1. None (the default) computes
        every map on the scan's own pixels; models made before this
        parameter existed load with None. See Notes.
    threshold : float, default=0.5
        A superpixel is a candidate when its level-2 probability exceeds it.
    positive_fraction : float, default=0.1
        A superpixel is a positive level-2 training example when at least
        this fraction of its voxels is pancreas (see Notes).
    cv : int, default=3
        Folds (grouped by case) for the out-of-fold level-1 probabilities
        that train level 2.
    hu_window : tuple of (float, float), default=(-160.0, 240.0)
        HU window mapped to [0, 1] before computing features.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling, the fold assignment and both forests.
    n_jobs : int or None, default=None
        Parallel jobs (threads) for the per-slice features and the forests.
        None means 1 unless in a ``joblib.parallel_config`` context.
    verbose : int, default=0
        Progress bars over cases when > 0, and over slices when > 1.

    Attributes
    ----------
    level1_ : RandomForestClassifier
        The patch forest, refitted on all training cases.
    level2_ : RandomForestClassifier
        The superpixel forest.
    n_features_level1_ : int
        Number of patch features.
    feature_names_level1_ : ndarray of str
        Names of the patch features.
    n_features_level2_ : int
        Number of superpixel features.
    feature_names_level2_ : ndarray of str
        Names of the superpixel features.
    n_patches_ : int
        Patches used to fit ``level1_``.
    n_superpixels_fit_ : int
        Superpixels used to fit ``level2_``.
    n_folds_ : int
        Folds actually used for the out-of-fold level-1 map (0 when there
        was a single training case and level 2 saw in-sample probabilities).
    features_version_ : int
        Version of the features' definitions the forests were trained on
        (:data:`FEATURES_VERSION`); a model of another version is refused.

    See Also
    --------
    pancreas.superpixels.SuperpixelGenerator : The stage before, which adds
        the superpixels.
    candidate_recall : Fraction of the pancreas covered by the candidates.

    Notes
    -----
    * Both forests use ``class_weight="balanced_subsample"``: the pancreas
      is a tiny fraction of the body, and the balanced weights make a
      probability above 0.5 mean "more pancreas-like than the typical
      background" rather than "more likely pancreas than not"; together
      with the response-map context this is what makes S_RF highly
      sensitive at the cost of over-segmentation, as in the paper.
      Subsampling the negatives does not change these balanced
      probabilities.
    * A level-1 patch is labelled by the voxel at its centre. Each case
      gives all its pancreas patches (up to half of
      `max_patches_per_case`) and random other patches inside the body,
      which bounds the forests' size and fitting time whatever the image
      size; level 2 draws its superpixels the same way.
    * Location features are anatomical and in mm (offsets from the spine,
      depth below the body surface), so they do not move with the scan's
      field of view or voxel size. Location reaches level 2 only through
      the response map (and the depth below the skin): in-plane offsets,
      useful at level 1, made level 2 over-fit the training cases'
      pancreas positions and miss much of the pancreas of new cases.
      Large leaves (``min_samples_leaf=50``) generalise better for the
      same reason.
    * The level-2 forest is trained on out-of-fold level-1 maps (case-wise
      folds), so it does not learn to trust the level-1 forest's
      over-confident outputs on its own training cases; ``level1_`` is
      then refitted on all cases.
    * Level 2 learns "pancreas and its surroundings" (the paper's words for
      S_RF): a superpixel is a positive example when at least
      `positive_fraction` of it is pancreas. The majority rule of the
      "Optimal" labelling (``positive_fraction=0.5``) teaches the forest to
      drop the superpixels on the pancreas outline, which hold most of the
      pancreas voxels S_RF then misses: on held-out phantom cases the
      candidates' voxel recall was 0.93 with 0.5 and 0.995 with 0.1, at
      S_RF Dice 0.44 and 0.32.
    * ``transform`` returns new records with ``sp_proba`` (float32, indexed
      by superpixel label, entry 0 is 0) and ``candidates`` (int32 labels)
      set; the records passed in are not changed.
    * ``map_spacing=1.5`` is an option, not the default: applied to a
      trained model it moved no stage of the phantom stage table by more
      than 0.003 (512 x 512 x 60 phantoms, 10 held-out cases), but a
      pipeline trained with it scored 0.030 lower at the last stage
      (G(P(x)) Ns=4 0.760 vs 0.790; S_RF 0.496 vs 0.485), within the
      spread of retraining yet more than the 0.01 a default may cost.

    References
    ----------
    .. [1] H. R. Roth, A. Farag, L. Lu, E. B. Turkbey, R. M. Summers, "Deep
       convolutional networks for pancreas segmentation in CT imaging",
       SPIE Medical Imaging 2015, :arXiv:`1504.03967`.
    .. [2] A. Farag, L. Lu, E. Turkbey, J. Liu, R. M. Summers, "A bottom-up
       approach for automatic pancreas segmentation in abdominal CT scans",
       MICCAI Abdominal Imaging Workshop 2014, :arXiv:`1407.8497`.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> from pancreas.superpixels import SuperpixelGenerator
    >>> from pancreas.cascade import RFCascade, candidate_recall
    >>> rng = np.random.default_rng(0)
    >>> cts, labels = [], []
    >>> for i in range(3):
    ...     hu = rng.normal(0, 10, (32, 32, 4)).astype(np.int16)
    ...     hu[:2], hu[-2:], hu[:, :2], hu[:, -2:] = -1000, -1000, -1000, -1000
    ...     lab = np.zeros(hu.shape, np.uint8)
    ...     lab[14 + i:22 + i, 10:20] = 1
    ...     hu[lab == 1] += 120
    ...     cts.append(Volume(hu, np.diag([1.5, 1.5, 3.0, 1.0])))
    ...     labels.append(Volume(lab, np.diag([1.5, 1.5, 3.0, 1.0])))
    >>> records = SuperpixelGenerator().fit_transform(cts)
    >>> cascade = RFCascade(n_estimators=10, random_state=0).fit(records, labels)
    >>> out = cascade.transform(records)
    >>> candidate_recall(out[0], labels[0]) > 0.9
    True
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "max_patches_per_case": [Interval(Integral, 2, None, closed="left")],
        "grid_spacing": [Interval(Real, 0, None, closed="neither")],
        "map_spacing": [Interval(Real, 0, None, closed="neither"), None],
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "positive_fraction": [Interval(Real, 0, 1, closed="right")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "hu_window": [tuple, list],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_estimators: int = 50,
        max_depth: int | None = 20,
        min_samples_leaf: int = 50,
        max_patches_per_case: int = 20000,
        grid_spacing: float = 3.0,
        map_spacing: float | None = None,
        threshold: float = 0.5,
        positive_fraction: float = 0.1,
        cv: int = 3,
        hu_window: tuple[float, float] = (-160.0, 240.0),
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_patches_per_case = max_patches_per_case
        self.grid_spacing = grid_spacing
        self.map_spacing = map_spacing
        self.threshold = threshold
        self.positive_fraction = positive_fraction
        self.cv = cv
        self.hu_window = hu_window
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __setstate__(self, state: dict[str, Any]) -> None:
        # models saved before `map_spacing` existed computed every map on
        # the scan's own pixels
        state = {"map_spacing": None, **state}
        super().__setstate__(state)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> RFCascade:
        """Fit both forests.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with superpixels, as returned by
            :meth:`SuperpixelGenerator.transform`.
        y : sequence of label volumes
            One label per case on its own grid; non-zero means pancreas.

        Returns
        -------
        self : RFCascade
            The fitted cascade.

        Raises
        ------
        InvalidVolumeError
            If ``X`` is empty, a case has no superpixels, ``y`` does not match
            ``X`` (number, shapes, affines or values of the labels, see
            :func:`~pancreas.record.check_labels`), or no label marks any
            pancreas voxel.
        """
        _check_window(self.hu_window)
        records = as_records(X)
        n_cases = len(records)
        if n_cases == 0:
            raise InvalidVolumeError(
                "X: RFCascade.fit needs at least one case, X is empty; pass the "
                "training cases"
            )
        _check_superpixels(records)
        labels = check_labels(records, y)
        check_any_pancreas(labels, [rec.case_id for rec in records])
        return self._fit_cases(_RecordCases(self, records, labels))

    def _fit_cases(self, cases: Any) -> RFCascade:
        """Fit both forests on cases given one at a time by ``cases``.

        ``cases`` has ``len()``, ``features(i)`` (a :class:`_CaseFeatures`
        with the level-2 image features), ``superpixels(i)`` and ``label(i)``
        (canonical arrays). In memory they are computed from records; a
        streamed fit reads them from its work folder. Only one case's arrays
        and the subsampled training tables (at most ``max_patches_per_case``
        rows per case and level) are held at a time.
        """
        _check_window(self.hu_window)
        n_cases = len(cases)
        rng = check_random_state(self.random_state)
        cap = int(self.max_patches_per_case)

        # Pass 1: subsampled level-1 training patches of every case.
        def level1_rows(i: int) -> tuple[NDArray[Any], NDArray[Any]]:
            cf, lab = cases.features(i, level2=False), cases.label(i)
            rows = cf.a * cf.geom.steps[0] + cf.geom.box[0].start
            cols = cf.b * cf.geom.steps[1] + cf.geom.box[1].start
            target = lab[rows, cols, cf.k]
            keep = _subsample(target, cap, rng)
            return cf.level1[keep], target[keep]

        rows1 = self._over_cases(level1_rows, range(n_cases), "level-1 patches")
        n_folds = min(int(self.cv), n_cases)
        fold = rng.permutation(n_cases) % n_folds
        seed_final, seed_level2, *fold_seeds = rng.randint(
            np.iinfo(np.int32).max, size=2 + n_folds
        )

        def stack(which: Any) -> tuple[NDArray[Any], NDArray[Any]]:
            feats = np.concatenate([rows1[i][0] for i in which])
            return feats, np.concatenate([rows1[i][1] for i in which])

        fold_models: list[RandomForestClassifier] = []
        if n_folds >= 2:
            for f in range(n_folds):
                train = np.flatnonzero(fold != f)
                fold_models.append(self._forest(fold_seeds[f]).fit(*stack(train)))
        else:
            warnings.warn(
                "RFCascade was fitted on a single case: level 2 is trained on "
                "in-sample level-1 probabilities, which are over-confident",
                UserWarning,
                stacklevel=3,
            )
        X1, y1 = stack(range(n_cases))
        level1 = self._forest(seed_final).fit(X1, y1)
        n_patches = X1.shape[0]
        del X1, y1
        rows1.clear()

        # Pass 2: level-2 features from out-of-fold level-1 maps.
        def level2_rows(i: int) -> tuple[NDArray[Any], NDArray[Any]]:
            model = fold_models[fold[i]] if fold_models else level1
            sp = cases.superpixels(i)
            sp_labels, feats = self._level2_features(
                cases.features(i), sp, model, cases.case_id(i)
            )
            frac = superpixel_label_fractions(sp, cases.label(i))
            target = frac[sp_labels] >= self.positive_fraction
            keep = _subsample(target, cap, rng)
            return feats[keep], target[keep]

        rows2 = self._over_cases(level2_rows, range(n_cases), "level-2 superpixels")
        X2 = np.concatenate([r[0] for r in rows2])
        y2 = np.concatenate([r[1] for r in rows2])
        level2 = self._forest(seed_level2).fit(X2, y2)

        self.level1_ = level1
        self.level2_ = level2
        self.feature_names_level1_ = np.asarray(_level1_names(), dtype=object)
        self.n_features_level1_ = len(self.feature_names_level1_)
        self.feature_names_level2_ = np.asarray(_level2_names(), dtype=object)
        self.n_features_level2_ = len(self.feature_names_level2_)
        self.n_patches_ = int(n_patches)
        self.n_superpixels_fit_ = int(X2.shape[0])
        self.n_folds_ = n_folds if fold_models else 0
        self.features_version_ = FEATURES_VERSION
        return self

    # ------------------------------------------------------------ transform
    def transform(self, X: Any) -> list[CaseRecord]:
        """Score every superpixel and keep the candidates.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with superpixels.

        Returns
        -------
        list of CaseRecord
            New records with ``sp_proba`` and ``candidates`` set.
        """
        check_is_fitted(self)
        records = as_records(X)
        _check_superpixels(records)

        def one(rec: CaseRecord) -> CaseRecord:
            proba = self._sp_proba(rec)
            candidates = np.flatnonzero(proba > self.threshold).astype(np.int32)
            return dataclasses.replace(
                rec,
                sp_proba=proba,
                candidates=candidates,
                convnet_proba=None,
                extras=dict(rec.extras),
            )

        return self._over_cases(one, records, "RF cascade")

    def predict_proba_superpixels(self, X: Any) -> list[NDArray[np.float32]]:
        """Level-2 probability p_RF of every superpixel of each case.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with superpixels.

        Returns
        -------
        list of ndarray of float32 of shape (n_superpixels + 1,)
            Indexed by superpixel label; entry 0 (outside the body) is 0.
        """
        check_is_fitted(self)
        records = as_records(X)
        _check_superpixels(records)
        return self._over_cases(self._sp_proba, records, "RF cascade")

    # -------------------------------------------------------------- helpers
    def _forest(self, seed: int) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features="sqrt",
            class_weight="balanced_subsample",
            n_jobs=self.n_jobs,
            random_state=int(seed),
        )

    def _over_cases(self, func: Callable[[Any], Any], items: Any, desc: str) -> list:
        return parallel_map(func, items, n_jobs=1, verbose=self.verbose, desc=desc)

    def _body(self, rec: CaseRecord) -> NDArray[np.bool_]:
        if rec.body_mask is not None:
            return np.asarray(rec.body_mask, dtype=bool)
        return np.asarray(rec.superpixels) > 0

    def _slices(
        self,
        rec: CaseRecord,
        mask: NDArray[np.bool_],
        geom: _Geometry,
        func: Callable[[int, _Slice], Any],
    ) -> list:
        window = tuple(float(v) for v in self.hu_window)

        def work(k: int) -> Any:
            sl = _make_slice(rec, mask, geom, k, window)
            return None if sl is None else func(k, sl)

        return parallel_map(
            work,
            range(rec.shape[2]),
            n_jobs=self.n_jobs,
            verbose=max(int(self.verbose) - 1, 0),
            desc=rec.case_id,
        )

    def _case_features(self, rec: CaseRecord, level2: bool = True) -> _CaseFeatures:
        """Level-1 features of a case and, with `level2`, its image level-2 ones.

        One pass over the slices: each slice's feature maps are computed once
        and serve both levels.
        """
        mask = self._body(rec)
        hu = np.asarray(rec.volume.array)
        origin = np.asarray(rec.volume.affine)[:2, 3]
        geom = _geometry(
            mask,
            hu,
            rec.spacing,
            float(self.grid_spacing),
            origin,
            self.map_spacing,
        )
        sp_all = np.asarray(rec.superpixels)

        def work(z: int, sl: _Slice) -> tuple[tuple, tuple | None]:
            maps = _feature_maps(sl.image, geom.spacing[:2], geom.factor)
            level1 = _level1_slice(sl, geom, maps)
            if not level2:
                return level1, None
            index = _SuperpixelIndex.of(sp_all[geom.box[0], geom.box[1], z])
            if index is None:
                return level1, None
            return level1, (index.labels, _level2_image_slice(sl, geom, index, maps))

        a, b, k, feats = [], [], [], []
        image2: dict[int, tuple[NDArray[Any], NDArray[np.float32]]] = {}
        for z, res in enumerate(self._slices(rec, mask, geom, work)):
            if res is None:
                continue
            (rows, cols, slice_feats), slice_image2 = res
            a.append(rows)
            b.append(cols)
            k.append(np.full(rows.shape, z))
            feats.append(slice_feats)
            if slice_image2 is not None:
                image2[z] = slice_image2
        if not feats:
            empty = np.zeros(0, np.int64)
            n_feat = len(_level1_names())
            return _CaseFeatures(
                geom, empty, empty, empty, np.zeros((0, n_feat), np.float32), image2
            )
        return _CaseFeatures(
            geom,
            np.concatenate(a),
            np.concatenate(b),
            np.concatenate(k),
            np.concatenate(feats),
            image2,
        )

    def _level2_case(
        self, rec: CaseRecord, model: RandomForestClassifier
    ) -> tuple[NDArray[Any], NDArray[np.float32]]:
        """Level-2 features of every superpixel of a case (labels, features)."""
        return self._level2_features(
            self._case_features(rec), np.asarray(rec.superpixels), model, rec.case_id
        )

    def _level2_features(
        self,
        cf: _CaseFeatures,
        sp_all: NDArray[Any],
        model: RandomForestClassifier,
        case_id: str,
    ) -> tuple[NDArray[Any], NDArray[np.float32]]:
        """Level-2 features from a case's features, superpixels and a level-1 model."""
        geom = cf.geom
        coarse = np.zeros(geom.coarse_shape, dtype=np.float32)
        coarse[cf.a, cf.b, cf.k] = _positive_proba(model, cf.level1)
        grid_mm = (
            geom.steps[0] * geom.spacing[0],
            geom.steps[1] * geom.spacing[1],
            geom.spacing[2],
        )
        maps = [coarse] + [
            ndimage.gaussian_filter(coarse, [s / g for g in grid_mm], mode="constant")
            for s in _CONTEXT_SIGMAS_MM
        ]

        def work(z: int) -> NDArray[np.float32]:
            index = _SuperpixelIndex.of(sp_all[geom.box[0], geom.box[1], z])
            response = _level2_response_slice(index, geom, [m[:, :, z] for m in maps])
            return np.concatenate([cf.level2_image[z][1], response], axis=1)

        slices = sorted(cf.level2_image)
        if not slices:
            return np.zeros(0, np.int64), np.zeros(
                (0, len(_level2_names())), np.float32
            )
        results = parallel_map(
            work,
            slices,
            n_jobs=self.n_jobs,
            verbose=max(int(self.verbose) - 1, 0),
            desc=case_id,
        )
        return (
            np.concatenate([cf.level2_image[z][0] for z in slices]),
            np.concatenate(results),
        )

    def _proba_from_features(
        self, cf: _CaseFeatures, sp_all: NDArray[Any], case_id: str
    ) -> NDArray[np.float32]:
        """p_RF of every superpixel from a case's features (see ``_sp_proba``)."""
        version = getattr(self, "features_version_", 1)
        if version != FEATURES_VERSION:
            raise ModelVersionError(
                f"this RFCascade was trained on version {version} of the "
                f"cascade's features, and this pancreas computes version "
                f"{FEATURES_VERSION} (see the cascade's user guide): retrain "
                "the model with this version, or use the version it was made with"
            )
        sp_labels, feats = self._level2_features(cf, sp_all, self.level1_, case_id)
        proba = np.zeros(int(sp_all.max(initial=0)) + 1, dtype=np.float32)
        proba[sp_labels] = _positive_proba(self.level2_, feats)
        proba[0] = 0.0
        return proba

    def _sp_proba(self, rec: CaseRecord) -> NDArray[np.float32]:
        return self._proba_from_features(
            self._case_features(rec), np.asarray(rec.superpixels), rec.case_id
        )


class _RecordCases:
    """The cases of an in-memory fit: features computed from each record."""

    def __init__(
        self, cascade: RFCascade, records: list[CaseRecord], labels: list[Any]
    ) -> None:
        self.cascade, self.records, self.labels = cascade, records, labels

    def __len__(self) -> int:
        return len(self.records)

    def case_id(self, i: int) -> str:
        return self.records[i].case_id

    def features(self, i: int, level2: bool = True) -> _CaseFeatures:
        return self.cascade._case_features(self.records[i], level2=level2)

    def superpixels(self, i: int) -> NDArray[Any]:
        return np.asarray(self.records[i].superpixels)

    def label(self, i: int) -> NDArray[np.bool_]:
        return self.labels[i]
