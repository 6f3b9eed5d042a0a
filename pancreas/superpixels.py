"""SLIC superpixels on each axial slice, inside the patient's body.

The first stage of Roth et al. (2015), Sec. 2.1: every axial slice of the CT
is cut into SLIC superpixels (Achanta et al. 2012) inside the body; later
stages classify these superpixels. The module also gives the paper's
"Optimal" labelling, the best Dice any superpixel classifier could reach.

Data contract: ``X`` is a sequence of CT volumes, one per case (paths,
:class:`~pancreas.io.Volume`, nibabel images, arrays or
:class:`~pancreas.record.CaseRecord`); ``y`` is a sequence of label volumes
on the same grids, non-zero meaning pancreas.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from skimage.segmentation import slic
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pancreas._checks import (
    check_finite,
    check_hounsfield,
    check_min_size,
    check_not_constant,
    warn_spacing,
)
from pancreas._memory import check_memory
from pancreas._parallel import parallel_map
from pancreas._store import smallest_label_dtype
from pancreas._validation import N_JOBS, Interval, StrOptions, _fit_context
from pancreas.base import VolumeEstimatorMixin
from pancreas.exceptions import InvalidVolumeError
from pancreas.record import CaseRecord, as_records, check_labels

__all__ = [
    "SuperpixelGenerator",
    "body_mask",
    "optimal_superpixel_mask",
    "superpixel_label_fractions",
    "window_hu",
]


# --------------------------------------------------------------------------- #
# Functional core
# --------------------------------------------------------------------------- #
def window_hu(
    hu: ArrayLike, hu_window: tuple[float, float] = (-160.0, 240.0)
) -> NDArray[np.float32]:
    """Clip Hounsfield units to a window and scale it linearly to [0, 1].

    Parameters
    ----------
    hu : array-like
        CT values in Hounsfield units.
    hu_window : tuple of (float, float), default=(-160.0, 240.0)
        Lower and upper HU of the window (the default is a soft-tissue
        abdominal window).

    Returns
    -------
    ndarray of float32
        Same shape as `hu`, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.superpixels import window_hu
    >>> window_hu(np.array([-1000.0, 40.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    lo, hi = (float(v) for v in hu_window)
    out = (np.asarray(hu, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def body_mask(hu: ArrayLike, threshold: float = -500.0) -> NDArray[np.bool_]:
    """Mask of the patient's body in a CT volume.

    The body is the largest 3D connected component (6-connectivity) of the
    voxels above `threshold`, with the holes of each axial slice filled, so
    that gas in the bowel and the lungs count as inside the body.

    Parameters
    ----------
    hu : array-like of shape (I, J, K)
        CT volume in HU, canonical voxel order (axis 2 axial).
    threshold : float, default=-500.0
        HU above which a voxel is tissue rather than air.

    Returns
    -------
    ndarray of bool of shape (I, J, K)
        Empty when no voxel exceeds `threshold`.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.superpixels import body_mask
    >>> hu = np.full((7, 7, 2), -1000.0)
    >>> hu[1:6, 1:6] = 40.0
    >>> hu[3, 3] = -1000.0  # gas inside the body
    >>> hu[0, 0] = 40.0  # a speck outside it
    >>> m = body_mask(hu)
    >>> int(m.sum()), bool(m[3, 3, 0]), bool(m[0, 0, 0])
    (50, True, False)
    """
    hu = np.asarray(hu)
    mask = hu > threshold
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    if n > 1:
        # sizes counted slice by slice: no int64 copy of the whole volume
        sizes = np.zeros(n + 1, dtype=np.int64)
        for k in range(lab.shape[2]):
            sizes += np.bincount(lab[:, :, k].ravel(), minlength=n + 1)
        sizes[0] = 0
        mask = lab == np.argmax(sizes)
    del lab
    for k in range(mask.shape[2]):
        if mask[:, :, k].any():
            mask[:, :, k] = _fill_holes_2d(mask[:, :, k])
    return mask


_CROSS = ndimage.generate_binary_structure(2, 1)


def _fill_holes_2d(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``ndimage.binary_fill_holes`` of a 2D mask, by labelling its background.

    A background pixel is a hole unless it is 4-connected to the image
    border, as in ``binary_fill_holes`` (which finds the same pixels by
    repeated dilation from the border, far slower on a CT slice).
    """
    background, n = ndimage.label(~mask, _CROSS)
    if n == 0:
        return mask.copy()
    hole = np.ones(n + 1, dtype=bool)
    hole[0] = False
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        hole[edge] = False
    return mask | hole[background]


def superpixel_label_fractions(
    superpixels: ArrayLike, label: ArrayLike
) -> NDArray[np.float64]:
    """Fraction of each superpixel's voxels that lie inside a label.

    Parameters
    ----------
    superpixels : array-like of int of shape (I, J, K)
        Superpixel labels, 0 outside the body.
    label : array-like of shape (I, J, K)
        Reference mask; non-zero means inside.

    Returns
    -------
    ndarray of float64 of shape (n_superpixels + 1,)
        Entry ``i`` is the fraction for superpixel ``i``; entry 0 (outside
        the body) and labels that do not occur are 0.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.superpixels import superpixel_label_fractions
    >>> sp = np.array([[0, 1, 1, 2], [0, 1, 1, 2]])
    >>> lab = np.array([[1, 1, 0, 1], [0, 1, 0, 1]])
    >>> superpixel_label_fractions(sp, lab).tolist()
    [0.0, 0.5, 1.0]
    """
    sp = np.asarray(superpixels)
    lab = np.asarray(label) != 0
    if sp.shape != lab.shape:
        raise InvalidVolumeError(
            f"superpixels of shape {sp.shape} and label of shape {lab.shape} differ"
        )
    n = int(sp.max(initial=0))
    total = np.bincount(sp.ravel(), minlength=n + 1)
    inside = np.bincount(sp[lab], minlength=n + 1)
    frac = inside / np.maximum(total, 1)
    frac[0] = 0.0
    return frac


def optimal_superpixel_mask(
    superpixels: ArrayLike, label: ArrayLike
) -> NDArray[np.bool_]:
    """Best superpixel labelling of a reference mask, by majority vote.

    A superpixel is labelled pancreas when at least half of its voxels are
    inside `label`: the "Optimal" labelling of Roth et al. (2015), the upper
    bound for any classifier of these superpixels.

    Parameters
    ----------
    superpixels : array-like of int of shape (I, J, K)
        Superpixel labels, 0 outside the body.
    label : array-like of shape (I, J, K)
        Reference mask; non-zero means inside.

    Returns
    -------
    ndarray of bool of shape (I, J, K)

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.superpixels import optimal_superpixel_mask
    >>> sp = np.array([[0, 1, 1, 2], [0, 1, 1, 2]])
    >>> lab = np.array([[1, 1, 0, 0], [0, 1, 0, 1]])
    >>> optimal_superpixel_mask(sp, lab).astype(int).tolist()
    [[0, 1, 1, 1], [0, 1, 1, 1]]
    """
    sp = np.asarray(superpixels)
    keep = superpixel_label_fractions(sp, label) >= 0.5
    keep[0] = False
    return keep[sp]


def _slice_superpixels(
    hu_slice: NDArray[Any],
    mask_slice: NDArray[np.bool_],
    spacing: tuple[float, float],
    *,
    superpixel_area: float,
    compactness: float,
    hu_window: tuple[float, float],
    sigma: float,
    max_num_iter: int,
    backend: str = "skimage",
) -> tuple[tuple[slice, slice] | None, NDArray[np.unsignedinteger] | None, int]:
    """SLIC on the body's bounding box in one slice; labels 1..n, 0 outside.

    The labels are in the smallest unsigned type that holds them (uint8 or
    uint16 for any realistic slice), so the slices of a volume waiting to be numbered
    take half the memory of int32.
    """
    if not mask_slice.any():
        return None, None, 0
    rows = np.flatnonzero(mask_slice.any(axis=1))
    cols = np.flatnonzero(mask_slice.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    mask = mask_slice[box]
    image = window_hu(hu_slice[box], hu_window)
    if sigma > 0:
        image = ndimage.gaussian_filter(
            image, (sigma / spacing[0], sigma / spacing[1]), mode="nearest"
        )
    slic_one = _slic_opencv if backend == "opencv" else _slic_skimage
    labels = slic_one(
        image,
        spacing,
        superpixel_area=superpixel_area,
        compactness=compactness,
        max_num_iter=max_num_iter,
    )
    # renumber the labels inside the body 1..n in order (SLIC's run 1..N)
    inside = labels[mask]
    present = np.bincount(inside) > 0
    renumber = np.cumsum(present, dtype=np.int64)
    out = np.zeros(mask.shape, dtype=smallest_label_dtype(int(renumber[-1])))
    out[mask] = renumber[inside]
    return box, out, int(renumber[-1])


def _slic_skimage(
    image: NDArray[np.float32],
    spacing: tuple[float, float],
    *,
    superpixel_area: float,
    compactness: float,
    max_num_iter: int,
) -> NDArray[np.intp]:
    """scikit-image's SLIC of a windowed [0, 1] image; labels from 1."""
    # SLIC places its seeds on a regular grid over the whole (cropped) image,
    # so the number of segments follows the box area: superpixels of the
    # target area, and fewer of them outside the body.
    box_area = image.size * spacing[0] * spacing[1]
    n_segments = max(1, round(box_area / superpixel_area))
    # slic rescales the image to [0, 1] by its own min and max; scale the
    # compactness by the same factor so that it keeps its meaning on the
    # windowed image whatever the slice's range.
    value_range = float(image.max() - image.min())
    eff_compactness = compactness / value_range if value_range > 0 else compactness
    # slic measures spatial distance in `spacing` units against a grid step
    # in pixels: normalised spacing keeps the result independent of pixel
    # size while honouring anisotropic pixels.
    rel_spacing = np.asarray(spacing, dtype=np.float64) / np.mean(spacing)
    return slic(
        image,
        n_segments=n_segments,
        compactness=eff_compactness,
        max_num_iter=max_num_iter,
        spacing=rel_spacing,
        enforce_connectivity=True,
        start_label=1,
        channel_axis=None,
    )



def _slic_opencv(
    image: NDArray[np.float32],
    spacing: tuple[float, float],
    *,
    superpixel_area: float,
    compactness: float,
    max_num_iter: int,
) -> NDArray[np.int32]:
    """OpenCV's SLIC (``cv2.ximgproc``) of a windowed [0, 1] image; labels from 1.

    OpenCV's distance is ``d_intensity**2 + (ruler / region_size)**2 *
    d_pixels**2`` on the image as given, the same form as scikit-image's
    with ``compactness`` on the windowed image (which `_slic_skimage`
    keeps by undoing scikit-image's own rescaling): so ``ruler =
    compactness``. The grid step ``region_size`` is a whole number of
    pixels, the one whose square is nearest to `superpixel_area` (in the
    log); OpenCV's pixels are square, so anisotropic pixels give
    superpixels of the target area stretched along the finer axis.
    """
    cv2 = _import_cv2()
    area_px = superpixel_area / (spacing[0] * spacing[1])
    side = np.sqrt(area_px)
    lo, hi = max(1, int(np.floor(side))), max(1, int(np.ceil(side)))
    region_size = lo if abs(np.log(lo * lo / area_px)) <= abs(
        np.log(hi * hi / area_px)
    ) else hi
    # OpenCV seeds round(size / region_size) strips per axis: keep at least one
    region_size = max(1, min(region_size, 2 * min(image.shape) - 1))
    engine = cv2.ximgproc.createSuperpixelSLIC(
        np.ascontiguousarray(image, dtype=np.float32),
        algorithm=cv2.ximgproc.SLIC,
        region_size=region_size,
        ruler=float(compactness),
    )
    engine.iterate(max_num_iter)
    # merge segments under half the grid cell's area, as scikit-image's
    # enforce_connectivity (min_size_factor=0.5) does
    engine.enforceLabelConnectivity(50)
    labels = engine.getLabels()
    labels += 1
    return labels


_OPENCV_MISSING = (
    "backend='opencv' needs OpenCV with its contrib modules (cv2.ximgproc): "
    "pip install pancreas[fast] (that is, opencv-contrib-python-headless; "
    "uninstall any other OpenCV package first, only one can be installed), or "
    "use backend='skimage'"
)


def _import_cv2() -> Any:
    """Import OpenCV, or raise ImportError saying how to install it."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(_OPENCV_MISSING) from exc
    if not hasattr(cv2, "ximgproc"):
        raise ImportError(_OPENCV_MISSING)
    return cv2


# --------------------------------------------------------------------------- #
# Estimator
# --------------------------------------------------------------------------- #
class SuperpixelGenerator(VolumeEstimatorMixin, TransformerMixin, BaseEstimator):
    """SLIC superpixels on each axial slice of each CT, inside the body.

    For each case: the body is segmented by thresholding (largest connected
    component, holes filled slice by slice); each axial slice is cropped to
    the body's bounding box, windowed to [0, 1] and cut into SLIC
    superpixels whose mean area is `superpixel_area` mm^2, whatever the
    pixel size. Labels outside the body are 0; inside they run 1..N over the
    whole volume, consecutive, and each superpixel lies within one axial
    slice (one index of array axis 2 of the canonical grid).

    Parameters
    ----------
    superpixel_area : float, default=40.0
        Target mean area of a superpixel, in mm^2.
    compactness : float, default=0.2
        SLIC's balance of intensity against spatial proximity, on the
        windowed [0, 1] image: larger values give squarer superpixels,
        smaller ones follow intensity edges more closely.
    hu_window : tuple of (float, float), default=(-160.0, 240.0)
        HU window mapped to [0, 1] before SLIC.
    body_threshold : float, default=-500.0
        HU above which a voxel is tissue (for the body mask).
    sigma : float, default=0.0
        Width in mm of the Gaussian smoothing applied to each slice before
        SLIC; 0 for none.
    max_num_iter : int, default=10
        Iterations of SLIC's k-means.
    backend : {"skimage", "opencv"}, default="skimage"
        SLIC implementation: scikit-image's ``slic``, or OpenCV's
        ``cv2.ximgproc.createSuperpixelSLIC``, about twice as fast for the
        same quality (see Notes). ``"opencv"`` needs ``pip install
        pancreas[fast]``.
    working_spacing : float or None, default=None
        Work on a coarser in-plane grid of about this many mm: each working
        voxel is a block of whole pixels of the scan (``round(working_spacing
        / pixel size)`` along each in-plane axis; slices are kept) holding
        their mean HU, and every later stage runs on it; masks and
        probabilities come back to the scan's own grid (probabilities
        interpolated linearly between block centres). None works on the
        scan's grid. ``1.5`` makes a 0.7-0.8 mm scan about 4 times smaller,
        for about half the time of segmenting it (the "fast" mode of
        :doc:`/performance`); a scan whose pixels are already about that
        large is not changed. Set it before training: a model works best on
        the grid it was trained on.
    check_hu : bool, default=True
        Refuse a CT whose values are not Hounsfield units: raw stored values
        (0-4095), 8-bit image stacks (0-255) or images scaled to [0, 1] (the
        rule is in Notes). Set it to False (``superpixels__check_hu=False``
        on a pipeline, ``--no-hu-check`` on the command line) only for data
        known to be in HU.
    check_spacing : bool, default=True
        Warn (:class:`~pancreas.exceptions.SpacingWarning`) about a CT with
        pixels over 3 mm or slices more than 10 mm apart.
    n_jobs : int or None, default=None
        Slices processed in parallel (threads) through joblib. None means 1
        unless in a ``joblib.parallel_config`` context; -1 means all
        processors.
    verbose : int, default=0
        Show a progress bar over slices when > 0.

    Attributes
    ----------
    n_segments_per_cm2_ : float
        Target density of superpixels inside the body, ``100 /
        superpixel_area`` (set by :meth:`fit`, which learns nothing else).

    See Also
    --------
    pancreas.cascade.RFCascade : The next stage, which keeps the superpixels
        likely to be pancreas.
    optimal_superpixel_mask : The best labelling of these superpixels.

    Notes
    -----
    * The superpixel count per slice is ``box area / superpixel_area``,
      where the box is the body's bounding box in that slice: SLIC seeds a
      regular grid over its whole input, so this gives superpixels of the
      target area inside the body (those cut by the body outline are a
      little smaller).
    * The cropping replaces scikit-image's ``mask=`` (maskSLIC), which was
      about 6 times slower on CT slices.
    * With the defaults, the Optimal Dice on phantom cases
      (:func:`pancreas.phantom.make_phantom_cohort`) was 0.93 at 2.4-3.4 mm
      pixels and 0.94 at full size (512 x 512, 0.72 mm; about 1300
      superpixels per slice, 25 s per 230-slice case on 2 cores); the paper
      reports 0.81 on NIH Pancreas-CT. Lower `compactness` (0.03) gave
      ragged superpixels and a lower Optimal Dice.
    * SLIC rescales each input to [0, 1] by its own range; the compactness
      is rescaled in step, so it keeps its meaning on the windowed image.
    * ``backend="opencv"`` runs OpenCV's SLIC (algorithm ``SLIC``) on the
      same cropped, windowed slices, with ``ruler = compactness`` (both
      implementations weigh squared intensity differences against squared
      pixel distances times ``(compactness / grid step)**2`` on the
      windowed image), a grid step of a whole number of pixels (the one
      whose square is nearest to `superpixel_area`; at 0.72 mm pixels the
      target 40 mm^2 becomes 42 mm^2, at coarse pixels the rounding is
      larger), square pixels (anisotropic pixels give superpixels of the
      right area, stretched), and segments under half a grid cell merged
      into a neighbour, as scikit-image's ``enforce_connectivity`` does.
      OpenCV runs on one thread per slice worker during ``transform`` (its
      own thread pool made it slower, even with ``n_jobs=1``), and its
      setting is restored afterwards. The labels follow the same contract. On 512 x 512
      phantom slices it took about half the time of scikit-image for an
      Optimal Dice within 0.01 (``benchmarks/bench_slic.py``); the
      superpixels differ, so a model trained on one backend's superpixels
      should be applied with the same backend.
    * ``transform`` returns new records, with ``body_mask`` and
      ``superpixels`` set and every later stage's output cleared; the
      records passed in are not changed.
    * ``transform`` is where cases enter the method, so it refuses what
      would give a meaningless segmentation (besides what
      :func:`~pancreas.record.make_record` refuses: not 3D, empty, bool or
      complex, NaN or infinite values, a broken affine): axial slices
      smaller than 8 x 8 voxels; a constant volume, unless it is all air
      (at or below `body_threshold`: no body, so no superpixels); and, with
      `check_hu`, values that are not Hounsfield units. A CT in HU has air
      near -1000 HU and fat near -100 HU; a volume is refused when at least
      99 % of its voxels are >= 0 and its 99.9th percentile is at most 4095
      (values below -1024, padding outside the field of view, left out):
      almost nothing below -200 HU and a range consistent with unsigned
      8-bit or 12-bit storage. With `check_spacing` it warns about pixels
      over 3 mm and slices more than 10 mm apart (from the affine).

    References
    ----------
    .. [1] H. R. Roth, A. Farag, L. Lu, E. B. Turkbey, R. M. Summers, "Deep
       convolutional networks for pancreas segmentation in CT imaging",
       SPIE Medical Imaging 2015, :arXiv:`1504.03967`.
    .. [2] R. Achanta et al., "SLIC superpixels compared to state-of-the-art
       superpixel methods", IEEE TPAMI 34(11), 2012.
       :DOI:`10.1109/TPAMI.2012.120`

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> from pancreas.superpixels import SuperpixelGenerator
    >>> hu = np.full((40, 40, 3), -1000, np.int16)
    >>> hu[5:35, 5:35] = 40
    >>> hu[15:25, 15:25] = 200
    >>> ct = Volume(hu, np.diag([1.0, 1.0, 2.5, 1.0]))
    >>> rec = SuperpixelGenerator(superpixel_area=50.0).fit_transform([ct])[0]
    >>> bool((rec.superpixels > 0).sum() == rec.body_mask.sum())
    True
    >>> 10 <= rec.n_superpixels // 3 <= 30
    True
    """

    _requires_y = False

    _parameter_constraints: dict = {
        "superpixel_area": [Interval(Real, 0, None, closed="neither")],
        "compactness": [Interval(Real, 0, None, closed="neither")],
        "hu_window": [tuple, list],
        "body_threshold": [Interval(Real, None, None, closed="neither")],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "max_num_iter": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"skimage", "opencv"})],
        "working_spacing": [Interval(Real, 0, None, closed="neither"), None],
        "check_hu": ["boolean"],
        "check_spacing": ["boolean"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        superpixel_area: float = 40.0,
        compactness: float = 0.2,
        hu_window: tuple[float, float] = (-160.0, 240.0),
        body_threshold: float = -500.0,
        sigma: float = 0.0,
        max_num_iter: int = 10,
        backend: str = "skimage",
        working_spacing: float | None = None,
        check_hu: bool = True,
        check_spacing: bool = True,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.superpixel_area = superpixel_area
        self.compactness = compactness
        self.hu_window = hu_window
        self.body_threshold = body_threshold
        self.sigma = sigma
        self.max_num_iter = max_num_iter
        self.backend = backend
        self.working_spacing = working_spacing
        self.check_hu = check_hu
        self.check_spacing = check_spacing
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any = None, y: Any = None) -> SuperpixelGenerator:
        """Check the parameters; superpixels are computed without training.

        Parameters
        ----------
        X : sequence of volumes, optional
            Ignored (accepted for pipeline use).
        y : sequence of label volumes, optional
            Ignored.

        Returns
        -------
        self : SuperpixelGenerator
            The fitted generator.

        Raises
        ------
        ValueError
            If a parameter is invalid, such as an unknown `backend`.
        ImportError
            If ``backend="opencv"`` and OpenCV's contrib modules are not
            installed (``pip install pancreas[fast]``).
        """
        _check_window(self.hu_window)
        if self.backend == "opencv":
            _import_cv2()
        self.n_segments_per_cm2_ = 100.0 / float(self.superpixel_area)
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        # models saved before `backend` existed ran scikit-image's SLIC, and
        # those saved before `working_spacing` on the scan's own grid
        state = {"backend": "skimage", "working_spacing": None, **state}
        super().__setstate__(state)

    def transform(self, X: Any) -> list[CaseRecord]:
        """Compute the body mask and the superpixels of each case.

        Parameters
        ----------
        X : sequence of volumes or CaseRecord
            One CT per case.

        Returns
        -------
        list of CaseRecord
            New records with ``body_mask`` (bool) and ``superpixels`` (int32,
            0 outside the body) set; on the working grid when
            `working_spacing` is set.

        Raises
        ------
        NotFittedError
            If the generator is not fitted.
        InvalidVolumeError
            If a case is refused (see Notes and
            :func:`~pancreas.record.make_record`); the message names it and
            says what to do.

        Warns
        -----
        SpacingWarning
            For a case with pixels over 3 mm or slices more than 10 mm apart
            (with `check_spacing`).
        """
        check_is_fitted(self)
        records = as_records(X)
        for rec in records:  # refuse a bad case before any work is done
            self._check_case(rec)
        return [self._transform_one(rec, checked=True) for rec in records]

    def optimal_dice(self, X: Any, y: Any) -> NDArray[np.float64]:
        """Dice of the optimal (majority-vote) superpixel labelling per case.

        Records that already carry superpixels are used as they are; the
        others are superpixelised first.

        Parameters
        ----------
        X : sequence of volumes or CaseRecord
            One CT per case.
        y : sequence of label volumes
            One label per case; non-zero means pancreas.

        Returns
        -------
        ndarray of float64 of shape (n_cases,)
            The paper's "Optimal" Dice of each case.
        """
        from pancreas.metrics import dice_score

        check_is_fitted(self)
        records = as_records(X)
        # on the scan's own grid, also where the superpixels are on a working grid
        labels = check_labels(records, y, full=True)
        scores = []
        for rec, lab in zip(records, labels, strict=True):
            if rec.superpixels is None:
                rec = self._transform_one(rec)
            mask = optimal_superpixel_mask(rec.to_full(rec.superpixels), lab)
            scores.append(dice_score(lab, mask))
        return np.asarray(scores, dtype=np.float64)

    def _check_case(self, rec: CaseRecord) -> None:
        """Refuse (or warn about) a case the method cannot segment.

        A case already on a working grid (the streamed fit regrids before
        storing) is judged by its scan's spacing and size, and by the working
        grid's slices.
        """
        hu = np.asarray(rec.volume.array)
        if hu.ndim != 3:
            raise InvalidVolumeError(
                f"{rec.case_id}: expected a 3D CT, got shape {hu.shape}; pass "
                "one 3D volume per case"
            )
        self._check_slice_size(rec)
        check_finite(hu, rec.case_id)
        check_not_constant(hu, rec.case_id, air_below=float(self.body_threshold))
        if self.check_hu:
            check_hounsfield(hu, rec.case_id)
        if self.check_spacing:
            warn_spacing(rec.full_spacing, rec.case_id)
        check_memory(rec.full_shape, rec.case_id)

    def _check_slice_size(self, rec: CaseRecord) -> None:
        """Refuse slices too small to segment, naming a working grid's blocks."""
        name = rec.case_id
        if rec.regridded:
            # the record may come regridded from elsewhere (the streamed fit)
            grid_mm = self.working_spacing or rec.spacing[0]
            name += (
                f" (on the {grid_mm:g} mm working grid of "
                f"working_spacing, blocks of {rec.zoom[0]} x {rec.zoom[1]} pixels)"
            )
        check_min_size(rec.shape, name)

    def _transform_one(self, rec: CaseRecord, checked: bool = False) -> CaseRecord:
        if not checked:
            self._check_case(rec)
        rec = rec.on_working_grid(self.working_spacing)
        if rec.regridded:
            self._check_slice_size(rec)
        hu = np.asarray(rec.volume.array)
        mask = body_mask(hu, self.body_threshold)
        spacing = (float(rec.spacing[0]), float(rec.spacing[1]))
        options = {
            "superpixel_area": float(self.superpixel_area),
            "compactness": float(self.compactness),
            "hu_window": tuple(float(v) for v in self.hu_window),
            "sigma": float(self.sigma),
            "max_num_iter": int(self.max_num_iter),
            "backend": self.backend,
        }

        def one_slice(k: int) -> tuple[Any, Any, int]:
            return _slice_superpixels(hu[:, :, k], mask[:, :, k], spacing, **options)

        with _one_opencv_thread(self.backend):
            results = parallel_map(
                one_slice,
                range(hu.shape[2]),
                n_jobs=self.n_jobs,
                verbose=self.verbose,
                desc=f"superpixels {rec.case_id}",
            )
        superpixels = np.zeros(hu.shape, dtype=np.int32)
        offset = 0
        for k, (box, labels, n) in enumerate(results):
            if n == 0:
                continue
            view = superpixels[box[0], box[1], k]
            inside = labels > 0
            view[inside] = labels[inside].astype(np.int32) + np.int32(offset)
            offset += n
        return dataclasses.replace(
            rec,
            body_mask=mask,
            superpixels=superpixels,
            sp_proba=None,
            candidates=None,
            convnet_proba=None,
            extras=dict(rec.extras),
        )


@contextlib.contextmanager
def _one_opencv_thread(backend: str) -> Iterator[None]:
    """Run OpenCV on one thread per slice worker; restore its setting after."""
    if backend != "opencv":
        yield
        return
    cv2 = _import_cv2()
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _check_window(hu_window: Any) -> None:
    """Raise ValueError unless `hu_window` is an increasing pair of numbers."""
    try:
        lo, hi = (float(v) for v in hu_window)
    except (TypeError, ValueError):
        raise ValueError(
            f"hu_window must be a pair (low, high) of HU values, got {hu_window!r}"
        ) from None
    if not lo < hi:
        raise ValueError(f"hu_window must have low < high, got {hu_window!r}")
