"""GaussianRefiner: paint p_ConvNet, smooth in 3D, threshold (Roth et al. Sec. 2.3).

Each candidate superpixel of S_RF is painted with its ConvNet probability
(the mean over scales, Eq. 2), giving P(x); a 3D Gaussian (Eq. 3, sigma 3
voxels in the paper) gives G(P(x)), which is thresholded. ``fit`` picks the
threshold that maximises the mean Dice on the cases it is given (the paper:
0.4 on its two validation cases) and keeps the Dice-versus-threshold curves
(the paper's Figure 6).
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pancreas._checks import EMPTY_VALIDATION, check_any_pancreas
from pancreas._parallel import parallel_map
from pancreas._regrid import upsample_box
from pancreas._validation import N_JOBS, Interval, StrOptions, _fit_context
from pancreas.base import VolumeEstimatorMixin
from pancreas.exceptions import InvalidVolumeError, SegmentationWarning
from pancreas.metrics import dice_score
from pancreas.record import (
    CaseRecord,
    as_records,
    check_labels,
    check_sequence,
    record_at,
)

__all__ = [
    "GaussianRefiner",
    "dice_curve",
    "largest_component",
    "paint_probability",
    "smooth_probability",
]

#: Stage names of the paper's Table 2 that the refiner can produce.
STAGES = ("P(x) Ns=1", "G(P(x)) Ns=1", "P(x) Ns=all", "G(P(x)) Ns=all")


def paint_probability(record: CaseRecord, n_scales: int | None = None) -> NDArray:
    """Paint each candidate superpixel with its ConvNet probability: P(x).

    Parameters
    ----------
    record : CaseRecord
        A case with ``superpixels``, ``candidates`` and ``convnet_proba``.
    n_scales : int or None, default=None
        Average the first ``n_scales`` scales (Eq. 2 of the paper); None
        uses all the scales the ConvNet produced.

    Returns
    -------
    ndarray of float32, canonical shape
        p_ConvNet inside candidate superpixels, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from dataclasses import replace
    >>> from pancreas.record import make_record
    >>> rec = make_record(np.zeros((2, 2, 1)), "c")
    >>> rec = replace(rec, superpixels=np.array([[[1], [1]], [[2], [0]]], np.int32),
    ...               candidates=np.array([2], np.int32),
    ...               convnet_proba=np.array([[0.5, 1.0]], np.float32))
    >>> paint_probability(rec)[..., 0]
    array([[0.  , 0.  ],
           [0.75, 0.  ]], dtype=float32)
    """
    return _probability_lut(record, n_scales)[record.superpixels]


def _probability_lut(record: CaseRecord, n_scales: int | None) -> NDArray[np.float32]:
    """P(x) of each superpixel label (0 for non-candidates), checked."""
    if record.superpixels is None or record.candidates is None:
        raise InvalidVolumeError(
            f"{record.case_id}: no superpixels or candidates; run "
            "SuperpixelGenerator and RFCascade first"
        )
    if record.convnet_proba is None:
        raise InvalidVolumeError(
            f"{record.case_id}: no ConvNet probabilities; run SuperpixelConvNet first"
        )
    proba = np.asarray(record.convnet_proba, dtype=np.float32)
    if proba.ndim != 2 or proba.shape[0] != len(record.candidates):
        raise InvalidVolumeError(
            f"{record.case_id}: convnet_proba of shape {proba.shape} does not match "
            f"{len(record.candidates)} candidates"
        )
    k = proba.shape[1] if n_scales is None else min(int(n_scales), proba.shape[1])
    lut = np.zeros(record.n_superpixels + 1, dtype=np.float32)
    lut[record.candidates] = proba[:, :k].mean(axis=1)
    return lut


def _reach(sigmas: NDArray[np.float64], truncate: float) -> list[int]:
    """Voxels beyond which a Gaussian of `sigmas` (truncated) adds nothing."""
    return [int(truncate * s + 0.5) + 1 for s in sigmas]


def _nonzero_box(
    lut: NDArray[np.float32], superpixels: NDArray[Any], reach: list[int]
) -> tuple[slice, ...] | None:
    """Bounding box of the voxels painted non-zero, grown by `reach`.

    Read a few slices at a time, so no volume-sized temporary is made.
    """
    hit = lut != 0
    if not hit.any():
        return None
    shape = superpixels.shape
    found = [np.zeros(n, dtype=bool) for n in shape]
    step = 16
    for z0 in range(0, shape[2], step):
        slab = hit[superpixels[:, :, z0 : z0 + step]]
        found[0] |= slab.any(axis=(1, 2))
        found[1] |= slab.any(axis=(0, 2))
        found[2][z0 : z0 + step] = slab.any(axis=(0, 1))
    if not found[2].any():
        return None
    box = []
    for where, r, n in zip(found, reach, shape, strict=True):
        idx = np.flatnonzero(where)
        box.append(slice(max(int(idx[0]) - r, 0), min(int(idx[-1]) + r + 1, n)))
    return tuple(box)


def _smoothed_in_box(
    record: CaseRecord,
    n_scales: int | None,
    sigma: NDArray[np.float64],
    truncate: float = 4.0,
) -> tuple[tuple[slice, ...] | None, NDArray[np.float32]]:
    """G(P(x)) of a case inside the only box where it can be non-zero.

    Equal to ``smooth_probability(paint_probability(record, n_scales),
    sigma)[box]`` (zero outside ``box``), without any volume-sized float
    array: the candidates' bounding box grown by the kernel's reach is
    painted and smoothed alone. ``box`` is None when nothing is painted.
    """
    lut = _probability_lut(record, n_scales)
    superpixels = np.asarray(record.superpixels)
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (3,))
    box = _nonzero_box(lut, superpixels, _reach(sigmas, truncate))
    if box is None:
        return None, np.zeros((0, 0, 0), np.float32)
    painted = lut[superpixels[box]]
    return box, smooth_probability(painted, sigmas, truncate=truncate)


def smooth_probability(
    proba: NDArray,
    sigma: float | tuple[float, ...],
    *,
    truncate: float = 4.0,
) -> NDArray[np.float32]:
    """3D Gaussian smoothing of a probability map: G(P(x)).

    Zero outside the volume (``mode="constant"``). Only the bounding box of
    the non-zero voxels plus the kernel's reach is filtered, which gives the
    same result as filtering the whole volume at a fraction of the cost.

    Parameters
    ----------
    proba : ndarray of shape (I, J, K)
        P(x).
    sigma : float or tuple of float
        Standard deviation in voxels, per axis or for all.
    truncate : float, default=4.0
        Kernel radius in standard deviations.

    Returns
    -------
    ndarray of float32, same shape

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((9, 9, 9), np.float32); p[4, 4, 4] = 1
    >>> g = smooth_probability(p, 1.0)
    >>> round(float(g.sum()), 3), bool(g[4, 4, 4] < 1)
    (1.0, True)
    """
    proba = np.asarray(proba, dtype=np.float32)
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (proba.ndim,))
    out = np.zeros_like(proba)
    nz = np.nonzero(proba)
    if nz[0].size == 0:
        return out
    reach = _reach(sigmas, truncate)
    box = tuple(
        slice(max(int(idx.min()) - r, 0), min(int(idx.max()) + r + 1, n))
        for idx, r, n in zip(nz, reach, proba.shape, strict=True)
    )
    out[box] = ndimage.gaussian_filter(
        proba[box], sigmas, mode="constant", cval=0.0, truncate=truncate
    )
    return out


def _in_volume(
    shape: tuple[int, ...],
    box: tuple[slice, ...] | None,
    values: NDArray[Any],
    dtype: Any,
) -> NDArray[Any]:
    """A volume of `shape`, zero but for `values` in `box`."""
    out = np.zeros(shape, dtype=dtype)
    if box is not None:
        out[box] = values
    return out


def largest_component(mask: NDArray) -> NDArray[np.bool_]:
    """Keep the largest 26-connected component of a binary mask.

    Parameters
    ----------
    mask : ndarray
        Binary mask (non-zero is foreground).

    Returns
    -------
    ndarray of bool
        The largest component only (the mask itself if it has at most one).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 1, 1), bool); m[0] = m[2:5] = True
    >>> largest_component(m)[:, 0, 0].tolist()
    [False, False, True, True, True]
    """
    mask = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def dice_curve(
    proba: NDArray, label: NDArray, thresholds: NDArray
) -> NDArray[np.float64]:
    """Dice of ``proba > t`` against ``label`` for every threshold, in one pass.

    Parameters
    ----------
    proba : ndarray
        Probability map.
    label : ndarray of bool, same shape
        Ground truth.
    thresholds : ndarray of shape (n,)
        Increasing thresholds.

    Returns
    -------
    ndarray of shape (n,)
        Dice at each threshold (1 where both masks are empty).

    Examples
    --------
    >>> import numpy as np
    >>> dice_curve(np.array([0.2, 0.6, 0.9]), np.array([0, 1, 1], bool),
    ...            np.array([0.1, 0.5, 0.8]))
    array([0.8       , 1.        , 0.66666667])
    """
    thresholds = np.asarray(thresholds, dtype=float)
    p = np.asarray(proba).ravel()
    lab = np.asarray(label, dtype=bool).ravel()
    # idx[v] = number of thresholds strictly below the value: p > t_j iff idx > j
    idx = np.searchsorted(thresholds, p, side="left")
    n = len(thresholds)
    above = np.cumsum(np.bincount(idx, minlength=n + 1)[::-1])[::-1][1:]
    hits = np.cumsum(np.bincount(idx[lab], minlength=n + 1)[::-1])[::-1][1:]
    n_true = int(lab.sum())
    denom = above + n_true
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2.0 * hits / np.maximum(denom, 1), 1.0)
    return dice.astype(np.float64)


#: Share of the smoothing kernel that must lie inside the volume, across
#: the slices, at its middle slice; less gets a SegmentationWarning.
MIN_KERNEL_INSIDE = 0.75


def _warn_few_slices(record: CaseRecord, sigma_slices: float) -> None:
    """Warn when a volume has too few slices for the 3D smoothing.

    The smoothing is zero beyond the volume, so across ``n`` slices a
    Gaussian of ``sigma`` slices keeps only ``erf(n / (2 sqrt(2) sigma))`` of
    its weight even at the middle slice: with 2 slices and sigma 3 that is
    26 %, G(P(x)) stays far below the threshold and the mask is empty.
    """
    n = int(record.shape[2])
    if sigma_slices <= 0:
        return
    inside = math.erf(n / (2.0 * math.sqrt(2.0) * sigma_slices))
    if inside >= MIN_KERNEL_INSIDE:
        return
    needed = math.ceil(
        2.0 * math.sqrt(2.0) * sigma_slices * float(special.erfinv(MIN_KERNEL_INSIDE))
    )
    warnings.warn(
        f"{record.case_id}: {n} slice(s) are too few for the 3D smoothing "
        f"(sigma {sigma_slices:.3g} slices): even at the middle slice only "
        f"{inside:.0%} of the Gaussian lies inside the volume, so G(P(x)) is "
        "scaled down and the mask may be empty; pass the whole scan (at least "
        f"{needed} slices here) or a smaller refiner sigma",
        SegmentationWarning,
        stacklevel=4,
    )


class GaussianRefiner(VolumeEstimatorMixin, BaseEstimator):
    """Paint, smooth in 3D and threshold the ConvNet's superpixel probabilities.

    The last stage of Roth et al. (2015): candidate superpixels are painted
    with p_ConvNet (mean over scales) giving P(x), smoothed with a 3D
    Gaussian giving G(P(x)), and thresholded. ``fit`` chooses the threshold
    that maximises mean Dice on the given cases.

    Parameters
    ----------
    sigma : float, default=3.0
        Standard deviation of the Gaussian (the paper: 3 voxels).
    sigma_unit : {"voxel", "mm"}, default="voxel"
        Unit of ``sigma``. With ``"mm"`` the kernel is isotropic in space,
        whatever the voxel spacing.
    threshold : float or None, default=None
        Fixed threshold on G(P(x)); None chooses it in ``fit``.
    thresholds : array-like or None, default=None
        Grid searched in ``fit`` (and used for the curves); None means
        0.05, 0.10, ..., 0.95.
    n_scales : int or None, default=None
        Number of ConvNet scales averaged (None: all; 1: the paper's Ns=1).
    largest_component : bool, default=False
        Keep only the largest connected component of the mask.
    n_jobs : int or None, default=None
        Parallel cases in ``fit`` (joblib).
    verbose : int, default=0
        Progress bars when > 0.

    Attributes
    ----------
    threshold_ : float
        The threshold applied by ``predict``.
    thresholds_ : ndarray of shape (n_thresholds,)
        The grid of the Dice curves.
    dice_curves_ : dict of str to ndarray of shape (n_cases, n_thresholds)
        Dice against threshold for each case and each stage, keyed
        ``"P(x) Ns=1"``, ``"G(P(x)) Ns=1"``, ``"P(x) Ns=all"``,
        ``"G(P(x)) Ns=all"`` (the paper's Figure 6 is their mean over cases).
    stage_thresholds_ : dict of str to float
        For each stage, the threshold maximising its mean Dice in ``fit``.
    n_scales_ : int
        Number of ConvNet scales available in ``fit``.

    See Also
    --------
    pancreas.refine.paint_probability : P(x).
    pancreas.refine.smooth_probability : G(P(x)).

    References
    ----------
    .. [1] H. R. Roth et al., "Deep convolutional networks for pancreas
       segmentation in CT imaging", SPIE Medical Imaging 2015,
       :doi:`10.1117/12.2081420`.

    Examples
    --------
    >>> import numpy as np
    >>> from dataclasses import replace
    >>> from pancreas.record import make_record
    >>> sp = np.zeros((8, 8, 4), np.int32); sp[2:6, 2:6, :] = 1 + np.arange(4)
    >>> label = sp > 0
    >>> rec = replace(make_record(np.zeros((8, 8, 4)), "c"), superpixels=sp,
    ...               candidates=np.arange(1, 5, dtype=np.int32),
    ...               convnet_proba=np.full((4, 2), 0.9, np.float32))
    >>> ref = GaussianRefiner(sigma=0.5).fit([rec], [label])
    >>> float(ref.score([rec], [label]))
    1.0
    """

    _parameter_constraints: dict = {
        "sigma": [Interval(Real, 0, None, closed="left")],
        "sigma_unit": [StrOptions({"voxel", "mm"})],
        "threshold": [Interval(Real, 0, 1, closed="neither"), None],
        "thresholds": ["array-like", None],
        "n_scales": [Interval(Integral, 1, None, closed="left"), None],
        "largest_component": ["boolean"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sigma: float = 3.0,
        sigma_unit: str = "voxel",
        threshold: float | None = None,
        thresholds: Any = None,
        n_scales: int | None = None,
        largest_component: bool = False,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.sigma = sigma
        self.sigma_unit = sigma_unit
        self.threshold = threshold
        self.thresholds = thresholds
        self.n_scales = n_scales
        self.largest_component = largest_component
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _sigma_voxels(self, record: CaseRecord) -> tuple[float, ...]:
        if self.sigma_unit == "mm":
            return tuple(self.sigma / s for s in record.spacing)
        return (float(self.sigma),) * 3

    def _check_params(self) -> None:
        """What the constraints cannot say (see ``validate_step_params``)."""
        self._threshold_grid()

    def _threshold_grid(self) -> NDArray[np.float64]:
        if self.thresholds is None:
            return np.round(np.arange(1, 20) * 0.05, 2)
        grid = np.unique(np.asarray(self.thresholds, dtype=float))
        if grid.ndim != 1 or grid.size == 0 or grid.min() <= 0 or grid.max() >= 1:
            raise ValueError(
                "thresholds must be a non-empty 1D list of values in (0, 1), "
                f"got {self.thresholds!r}"
            )
        return grid

    def stage_maps(self, record: CaseRecord) -> dict[str, NDArray[np.float32]]:
        """P(x) and G(P(x)) at Ns=1 and with all scales, canonical order.

        Parameters
        ----------
        record : CaseRecord
            A case with ConvNet probabilities.

        Returns
        -------
        dict of str to ndarray of float32
            Keyed by the stage names of :attr:`dice_curves_`.
        """
        sigma = self._sigma_voxels(record)
        p1 = paint_probability(record, 1)
        pall = paint_probability(record, None)
        return {
            "P(x) Ns=1": p1,
            "G(P(x)) Ns=1": smooth_probability(p1, sigma),
            "P(x) Ns=all": pall,
            "G(P(x)) Ns=all": smooth_probability(pall, sigma),
        }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> GaussianRefiner:
        """Choose the threshold maximising mean Dice and record the Dice curves.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ConvNet probabilities (output of ``SuperpixelConvNet``).
        y : sequence of label volumes
            Ground truth, one per case; non-zero is pancreas.

        Returns
        -------
        self : GaussianRefiner
            The fitted refiner.
        """
        check_sequence(X)
        if y is None or len(y) != len(X):
            check_labels([None] * len(X), y)  # raises with the message
        grid = self._threshold_grid()
        n_cases = len(X)

        def curves(i: int) -> tuple[dict[str, NDArray], int, str, bool]:
            # one case at a time: X may be a lazy sequence of a large cohort
            rec = record_at(X, i)
            lab = check_labels([rec], [y[i]])[0]
            maps = self.stage_maps(rec)
            n_scales = int(np.shape(rec.convnet_proba)[1])
            per_stage = {k: dice_curve(m, lab, grid) for k, m in maps.items()}
            return per_stage, n_scales, rec.case_id, bool(lab.any())

        results = parallel_map(
            curves,
            range(n_cases),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            desc="refiner fit",
        )
        if self.threshold is None:
            check_any_pancreas(
                [np.array([r[3]]) for r in results],  # one flag per case
                [r[2] for r in results],
                what="validation",
                consequence=EMPTY_VALIDATION,
                labels_name="y_val",
                cases_name="X_val",
            )
        per_case = [r[0] for r in results]
        self.thresholds_ = grid
        self.dice_curves_ = {k: np.stack([c[k] for c in per_case]) for k in STAGES}
        self.stage_thresholds_ = {
            k: float(grid[int(np.argmax(v.mean(axis=0)))])
            for k, v in self.dice_curves_.items()
        }
        self.n_scales_ = min(r[1] for r in results)
        chosen = "G(P(x)) Ns=1" if self.n_scales == 1 else "G(P(x)) Ns=all"
        self.threshold_ = (
            float(self.threshold)
            if self.threshold is not None
            else self.stage_thresholds_[chosen]
        )
        return self

    def _smoothed(
        self, record: CaseRecord
    ) -> tuple[tuple[slice, ...] | None, NDArray[np.float32]]:
        sigma = self._sigma_voxels(record)
        _warn_few_slices(record, sigma[2])
        return _smoothed_in_box(record, self.n_scales, sigma)

    def _on_scan_grid(
        self, record: CaseRecord
    ) -> tuple[tuple[slice, ...] | None, NDArray[np.float32]]:
        """G(P(x))'s box and values on the scan's canonical grid.

        A record on a working grid has its smoothed box brought to the
        scan's grid (linear interpolation between block centres), so that
        the threshold cuts a smooth outline, not one of whole blocks.
        """
        box, values = self._smoothed(record)
        if record.regridded and box is not None:
            box, values = upsample_box(values, box, record.zoom, record.full_shape)
        return box, values

    def _native_outputs(
        self, record: CaseRecord, *, mask: bool, proba: bool
    ) -> list[NDArray[Any]]:
        """The mask (uint8) and/or G(P(x)) (float32) on the input's own grid."""
        box, values = self._on_scan_grid(record)
        shape = record.full_shape
        out = []
        if mask:
            inside = _in_volume(shape, box, self._threshold(values), np.uint8)
            out.append(record.to_native(inside))
        if proba:
            out.append(record.to_native(_in_volume(shape, box, values, np.float32)))
        return out

    def _full_mask(self, record: CaseRecord) -> NDArray[np.bool_]:
        """The mask on the scan's canonical grid (:attr:`CaseRecord.full_shape`)."""
        box, values = self._on_scan_grid(record)
        return _in_volume(record.full_shape, box, self._threshold(values), bool)

    def _threshold(self, proba: NDArray[np.float32]) -> NDArray[np.bool_]:
        # G(P(x)) is 0 outside the smoothed box and the threshold is >= 0,
        # so thresholding the box alone (and its largest component: nothing
        # outside is foreground) gives the whole volume's mask
        mask = proba > self.threshold_
        if self.largest_component:
            mask = largest_component(mask)
        return mask

    def predict_proba(self, X: Any) -> list[NDArray[np.float32]]:
        """G(P(x)) for each case, as float32 volumes in each input's own grid.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ConvNet probabilities.

        Returns
        -------
        list of ndarray of float32
        """
        check_is_fitted(self)
        return [
            self._native_outputs(rec, mask=False, proba=True)[0]
            for rec in as_records(X)
        ]

    def predict(self, X: Any) -> list[NDArray[np.uint8]]:
        """Binary pancreas masks (uint8, 1 = pancreas) in each input's own grid.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ConvNet probabilities.

        Returns
        -------
        list of ndarray of uint8
        """
        check_is_fitted(self)
        return [
            self._native_outputs(rec, mask=True, proba=False)[0]
            for rec in as_records(X)
        ]

    def predict_with_proba(
        self, X: Any
    ) -> list[tuple[NDArray[np.uint8], NDArray[np.float32]]]:
        """Masks and G(P(x)) together, smoothing each case once.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ConvNet probabilities.

        Returns
        -------
        list of (ndarray of uint8, ndarray of float32)
            For each case, what :meth:`predict` and :meth:`predict_proba`
            return, in the input's own grid.

        Examples
        --------
        >>> import numpy as np
        >>> from dataclasses import replace
        >>> from pancreas.record import make_record
        >>> sp = np.zeros((8, 8, 4), np.int32); sp[2:6, 2:6, :] = 1
        >>> rec = replace(make_record(np.zeros((8, 8, 4)), "c"), superpixels=sp,
        ...               candidates=np.array([1], np.int32),
        ...               convnet_proba=np.full((1, 2), 0.9, np.float32))
        >>> ref = GaussianRefiner(sigma=0.5, threshold=0.5).fit([rec], [sp > 0])
        >>> mask, proba = ref.predict_with_proba([rec])[0]
        >>> mask.dtype, proba.dtype, int(mask.sum())
        (dtype('uint8'), dtype('float32'), 64)
        """
        check_is_fitted(self)
        out = []
        for rec in as_records(X):
            mask, proba = self._native_outputs(rec, mask=True, proba=True)
            out.append((mask, proba))
        return out

    def score(self, X: Any, y: Any) -> float:
        """Mean Dice of the predicted masks against ``y``.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ConvNet probabilities.
        y : sequence of label volumes
            Ground truth.

        Returns
        -------
        float
        """
        check_is_fitted(self)
        records = as_records(X)
        # on the scan's own grid, also for a record on a working grid
        labels = check_labels(records, y, full=True)
        scores = [
            dice_score(self._full_mask(rec), lab)
            for rec, lab in zip(records, labels, strict=True)
        ]
        return float(np.mean(scores))
