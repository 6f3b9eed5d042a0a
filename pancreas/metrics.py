"""Segmentation metrics for binary volumes: overlap and surface distances in mm.

All functions take a ground-truth and a predicted mask of the same shape. Any
non-zero voxel is foreground, so an MSD label with tumour = 2 counts as pancreas.
Masks may be 2D or 3D (any ``ndim >= 1``). Surface-distance metrics honour
anisotropic voxel ``spacing`` and are reported in millimetres.

**Empty masks.** A ratio whose denominator is zero is **1 when both masks are
empty and 0 otherwise**. Hence, with both masks empty every overlap score is 1;
with exactly one mask empty Dice and Jaccard are 0, precision is 0 when the
prediction is empty but the truth is not, and recall is 0 when the truth is
empty but the prediction is not. Surface metrics follow the same rule: both
empty gives HD95 = ASSD = 0 mm and surface Dice = 1; exactly one empty gives
HD95 = ASSD = ``inf`` and surface Dice = 0.

**Surfaces.** The surface of a mask is its set of boundary voxels,
``mask ^ binary_erosion(mask, structure=face_connected, border_value=0)``: a
foreground voxel is on the surface when one of its ``2 * ndim`` face
neighbours is background or outside the array (so masks touching the array
edge still have a surface there). Distances between surfaces are Euclidean
distances between voxel centres, computed with
:func:`scipy.ndimage.distance_transform_edt` on the bounding box of both masks
padded by one voxel, which keeps full 512x512x200 CT volumes cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from pancreas.exceptions import InvalidVolumeError

__all__ = [
    "average_symmetric_surface_distance",
    "dice_score",
    "evaluate_segmentation",
    "hausdorff_distance_95",
    "jaccard_score",
    "precision_score",
    "recall_score",
    "surface_dice",
]


# --------------------------------------------------------------------------- #
# Internal helpers (shared by every public function)
# --------------------------------------------------------------------------- #
def _as_masks(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Return both inputs as boolean masks, checking that their shapes agree."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise InvalidVolumeError(
            f"y_true and y_pred must have the same shape; got y_true.shape="
            f"{t.shape} and y_pred.shape={p.shape}"
        )
    if t.ndim == 0:
        raise InvalidVolumeError("y_true and y_pred must have at least one axis")
    return _binary(t), _binary(p)


def _binary(a: NDArray[Any]) -> NDArray[np.bool_]:
    """Non-zero voxels of ``a`` (no copy when ``a`` is already boolean)."""
    return a if a.dtype == np.bool_ else a != 0


def _bounding_box(mask: NDArray[np.bool_], pad: int) -> tuple[slice, ...]:
    """Bounding box of a non-empty ``mask``, padded by ``pad`` and clipped."""
    box = []
    for axis, n in enumerate(mask.shape):
        others = tuple(i for i in range(mask.ndim) if i != axis)
        idx = np.flatnonzero(mask.any(axis=others))
        box.append(slice(max(int(idx[0]) - pad, 0), min(int(idx[-1]) + 1 + pad, n)))
    return tuple(box)


def _check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Return ``spacing`` as a tuple of ``ndim`` positive finite floats."""
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in np.ravel(np.asarray(spacing, dtype=float)))
    if len(values) != ndim:
        raise ValueError(f"spacing must have one entry per axis ({ndim}); got {values}")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be positive and finite; got {values}")
    return values


def _check_tolerance(tolerance: float) -> float:
    """Return ``tolerance`` as a non-negative finite float."""
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tolerance must be non-negative and finite; got {tolerance}")
    return tol


def _ratio(num: int, den: int, both_empty: bool) -> float:
    """``num / den``, or 1 if both masks are empty and 0 otherwise when den == 0."""
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def _overlap(t: NDArray[np.bool_], p: NDArray[np.bool_]) -> dict[str, float]:
    """Dice, Jaccard, precision and recall of two boolean masks."""
    tp = int(np.count_nonzero(t & p))
    n_true = int(np.count_nonzero(t))
    n_pred = int(np.count_nonzero(p))
    both_empty = n_true == 0 and n_pred == 0
    return {
        "dice": _ratio(2 * tp, n_true + n_pred, both_empty),
        "jaccard": _ratio(tp, n_true + n_pred - tp, both_empty),
        "precision": _ratio(tp, n_pred, both_empty),
        "recall": _ratio(tp, n_true, both_empty),
    }


def _surface(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Boundary voxels: foreground voxels with a background face neighbour."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask ^ ndimage.binary_erosion(mask, structure, border_value=0)


def _surface_metrics(
    t: NDArray[np.bool_],
    p: NDArray[np.bool_],
    spacing: tuple[float, ...],
    tolerance: float,
) -> dict[str, float]:
    """HD95, ASSD and surface Dice from the pooled symmetric surface distances."""
    t_empty, p_empty = not t.any(), not p.any()
    if t_empty and p_empty:
        return {"hd95": 0.0, "assd": 0.0, "surface_dice": 1.0}
    if t_empty or p_empty:
        return {"hd95": math.inf, "assd": math.inf, "surface_dice": 0.0}

    # Crop to the union bounding box padded by one voxel; exact, because every
    # surface voxel lies inside it and the EDT is a true Euclidean distance.
    crop = _bounding_box(t | p, pad=1)
    surf_t, surf_p = _surface(t[crop]), _surface(p[crop])
    d_pred_to_true = ndimage.distance_transform_edt(~surf_t, sampling=spacing)[surf_p]
    d_true_to_pred = ndimage.distance_transform_edt(~surf_p, sampling=spacing)[surf_t]

    n = d_pred_to_true.size + d_true_to_pred.size
    pooled = np.concatenate([d_pred_to_true, d_true_to_pred])
    # Sums and counts are added in a symmetric way so that swapping y_true and
    # y_pred gives bit-identical results.
    within = np.count_nonzero(d_pred_to_true <= tolerance) + np.count_nonzero(
        d_true_to_pred <= tolerance
    )
    return {
        "hd95": float(np.percentile(pooled, 95)),
        "assd": float(d_pred_to_true.sum() + d_true_to_pred.sum()) / n,
        "surface_dice": int(within) / n,
    }


# --------------------------------------------------------------------------- #
# Overlap metrics
# --------------------------------------------------------------------------- #
def dice_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Dice similarity coefficient ``2 |T & P| / (|T| + |P|)``.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.

    Returns
    -------
    float
        Dice in [0, 1]; 1 if both masks are empty, 0 if exactly one is.

    Raises
    ------
    ValueError
        If the shapes of `y_true` and `y_pred` differ (an
        :class:`~pancreas.exceptions.InvalidVolumeError`).

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import dice_score
    >>> dice_score(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0]))
    0.5
    """
    return _overlap(*_as_masks(y_true, y_pred))["dice"]


def jaccard_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Jaccard index (intersection over union) ``|T & P| / |T | P|``.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.

    Returns
    -------
    float
        Jaccard in [0, 1]; 1 if both masks are empty, 0 if exactly one is.

    Raises
    ------
    ValueError
        If the shapes of `y_true` and `y_pred` differ.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import jaccard_score
    >>> round(jaccard_score(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])), 4)
    0.3333
    """
    return _overlap(*_as_masks(y_true, y_pred))["jaccard"]


def precision_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Precision (positive predictive value) ``|T & P| / |P|``.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.

    Returns
    -------
    float
        Precision in [0, 1]. With an empty prediction it is 1 if the truth is
        empty too and 0 otherwise.

    Raises
    ------
    ValueError
        If the shapes of `y_true` and `y_pred` differ.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import precision_score
    >>> precision_score(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 1]))
    0.3333333333333333
    """
    return _overlap(*_as_masks(y_true, y_pred))["precision"]


def recall_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Recall (sensitivity) ``|T & P| / |T|``.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.

    Returns
    -------
    float
        Recall in [0, 1]. With an empty truth it is 1 if the prediction is
        empty too and 0 otherwise.

    Raises
    ------
    ValueError
        If the shapes of `y_true` and `y_pred` differ.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import recall_score
    >>> recall_score(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 1]))
    0.5
    """
    return _overlap(*_as_masks(y_true, y_pred))["recall"]


# --------------------------------------------------------------------------- #
# Surface-distance metrics
# --------------------------------------------------------------------------- #
def hausdorff_distance_95(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    spacing: Sequence[float] | None = None,
) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in mm.

    The distances from every predicted surface voxel to the true surface and
    from every true surface voxel to the predicted surface are pooled into one
    set, and its 95th percentile (linear interpolation) is returned.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.
    spacing : sequence of float, default=None
        Voxel size in mm along each axis; ``None`` means 1 mm isotropic.

    Returns
    -------
    float
        HD95 in mm; 0 if both masks are empty, ``inf`` if exactly one is.

    Raises
    ------
    ValueError
        If the shapes differ, or `spacing` does not hold one positive finite
        value per axis.

    Notes
    -----
    Pooling both directions follows MedPy's ``hd95``. MONAI's
    ``compute_hausdorff_distance(percentile=95)`` instead takes the larger of
    the two directed percentiles, which is never smaller. Surfaces are the
    face-connected boundary voxels described in the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import hausdorff_distance_95
    >>> a = np.zeros((8, 4), bool); a[1] = True
    >>> b = np.zeros((8, 4), bool); b[4] = True
    >>> hausdorff_distance_95(a, b, spacing=(2.0, 1.0))
    6.0
    """
    t, p = _as_masks(y_true, y_pred)
    return _surface_metrics(t, p, _check_spacing(spacing, t.ndim), 0.0)["hd95"]


def average_symmetric_surface_distance(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    spacing: Sequence[float] | None = None,
) -> float:
    """Average symmetric surface distance (ASSD) between mask surfaces, in mm.

    The mean of the pooled distances from each surface voxel of one mask to
    the nearest surface voxel of the other, over both directions.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.
    spacing : sequence of float, default=None
        Voxel size in mm along each axis; ``None`` means 1 mm isotropic.

    Returns
    -------
    float
        ASSD in mm; 0 if both masks are empty, ``inf`` if exactly one is.

    Raises
    ------
    ValueError
        If the shapes differ, or `spacing` does not hold one positive finite
        value per axis.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import average_symmetric_surface_distance
    >>> a = np.zeros((8, 4), bool); a[1] = True
    >>> b = np.zeros((8, 4), bool); b[4] = True
    >>> average_symmetric_surface_distance(a, b, spacing=(2.0, 1.0))
    6.0
    """
    t, p = _as_masks(y_true, y_pred)
    return _surface_metrics(t, p, _check_spacing(spacing, t.ndim), 0.0)["assd"]


def surface_dice(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
) -> float:
    """Normalised surface Dice at a tolerance in mm (Nikolov et al. 2018).

    The fraction of surface voxels of both masks lying within `tolerance` mm
    (inclusive) of the other mask's surface.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.
    spacing : sequence of float, default=None
        Voxel size in mm along each axis; ``None`` means 1 mm isotropic.
    tolerance : float, default=1.0
        Largest surface distance in mm that still counts as agreement.

    Returns
    -------
    float
        Surface Dice in [0, 1]; 1 if both masks are empty, 0 if exactly one is.

    Raises
    ------
    ValueError
        If the shapes differ, `spacing` does not hold one positive finite
        value per axis, or `tolerance` is negative or not finite.

    Notes
    -----
    Each surface voxel counts with equal weight, as in MONAI's
    ``compute_surface_dice``; Nikolov et al. weight surface elements by their
    area, which differs slightly on strongly anisotropic grids.

    References
    ----------
    .. [1] S. Nikolov et al., "Deep learning to achieve clinically applicable
       segmentation of head and neck anatomy for radiotherapy",
       :arXiv:`1809.04430`, 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import surface_dice
    >>> a = np.zeros((8, 4), bool); a[1] = True
    >>> b = np.zeros((8, 4), bool); b[4] = True
    >>> surface_dice(a, b, spacing=(2.0, 1.0), tolerance=5.0)
    0.0
    >>> surface_dice(a, b, spacing=(2.0, 1.0), tolerance=6.0)
    1.0
    """
    t, p = _as_masks(y_true, y_pred)
    spacing_ = _check_spacing(spacing, t.ndim)
    return _surface_metrics(t, p, spacing_, _check_tolerance(tolerance))["surface_dice"]


def evaluate_segmentation(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
) -> dict[str, float]:
    """All seven metrics of one case, computing the surface distances once.

    Parameters
    ----------
    y_true : array-like of shape (M, N[, P])
        Ground-truth mask; any non-zero voxel is foreground.
    y_pred : array-like of shape (M, N[, P])
        Predicted mask, same shape as `y_true`.
    spacing : sequence of float, default=None
        Voxel size in mm along each axis; ``None`` means 1 mm isotropic.
    tolerance : float, default=1.0
        Tolerance in mm of the surface Dice.

    Returns
    -------
    dict of str to float
        Keys ``'dice'``, ``'jaccard'``, ``'precision'``, ``'recall'``,
        ``'hd95'``, ``'assd'`` and ``'surface_dice'``; values as returned by
        the function of the same name.

    Raises
    ------
    ValueError
        If the shapes differ, `spacing` does not hold one positive finite
        value per axis, or `tolerance` is negative or not finite.

    See Also
    --------
    dice_score : Dice similarity coefficient.
    jaccard_score : Intersection over union.
    precision_score : Positive predictive value.
    recall_score : Sensitivity.
    hausdorff_distance_95 : 95th-percentile symmetric Hausdorff distance.
    average_symmetric_surface_distance : Mean symmetric surface distance.
    surface_dice : Normalised surface Dice at a tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.metrics import evaluate_segmentation
    >>> a = np.zeros((6, 6), bool); a[1:4, 1:4] = True
    >>> scores = evaluate_segmentation(a, a, spacing=(1.0, 2.0))
    >>> scores["dice"], scores["hd95"], scores["surface_dice"]
    (1.0, 0.0, 1.0)
    """
    t, p = _as_masks(y_true, y_pred)
    spacing_ = _check_spacing(spacing, t.ndim)
    tol = _check_tolerance(tolerance)
    return {**_overlap(t, p), **_surface_metrics(t, p, spacing_, tol)}
