"""Evaluate a fitted pipeline on a labelled cohort, case by case, and report it.

:func:`evaluate_pipeline` runs the pipeline on one case at a time (memory
holds one case per worker, never the cohort) and keeps, per case, only small
results: the paper's stage row (Table 2), the final mask's metrics in mm,
the Dice-versus-threshold curve of every probability stage (Figure 6) and a
few small 2-D crops for pictures (Figure 7). :meth:`Evaluation.write` turns
them into a report folder: a Markdown page, CSV and JSON tables and PNGs.

:func:`pancreas.pipeline.stage_report` uses the same per-case code, so its
rows equal :attr:`Evaluation.stage`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pancreas._parallel import local_threads, parallel_map
from pancreas.exceptions import InvalidVolumeError
from pancreas.metrics import (
    _check_method,
    _check_tolerance,
    dice_score,
    evaluate_segmentation,
)
from pancreas.plotting import DPI, SlicePanel, slice_panel
from pancreas.record import CaseRecord, make_record
from pancreas.report import PAPER_TEST_DICE, StageReport

if TYPE_CHECKING:  # pragma: no cover
    # Typed as scikit-learn's Pipeline: pancreas.pipeline imports this module
    # (for stage_report), never the other way round.
    from sklearn.pipeline import Pipeline

    from pancreas.refine import GaussianRefiner

__all__ = ["CasePictures", "Evaluation", "evaluate_pipeline", "field_of_view_box"]

#: Per-case metrics of the final mask, in the order of the tables.
METRICS = (
    "dice",
    "jaccard",
    "precision",
    "recall",
    "hd95",
    "assd",
    "surface_dice",
    "volume_pred_ml",
    "volume_true_ml",
)

#: How the report names each definition of the surface metrics.
_SURFACE_DEFINITIONS = {
    "surfel": "Surface metrics: **surfel definition** (surface elements weighted "
    "by area, as DeepMind's `surface-distance` and the MSD and TotalSegmentator "
    "numbers): surface Dice (NSD) at **{tol} mm**, HD95 the robust Hausdorff "
    "distance (larger directed 95th percentile of area), ASSD the area-weighted "
    "mean.",
    "voxel": "Surface metrics: **voxel definition** (boundary voxels counted "
    "once, as MedPy; not comparable with published NSD): surface Dice at "
    "**{tol} mm**, HD95 the 95th percentile of the pooled distances, ASSD their "
    "mean.",
}

#: Column headings of the metrics in the Markdown page.
_METRIC_HEADINGS = {
    "dice": "Dice",
    "jaccard": "Jaccard",
    "precision": "Precision",
    "recall": "Recall",
    "hd95": "HD95 (mm)",
    "assd": "ASSD (mm)",
    "surface_dice": "Surface Dice",
    "volume_pred_ml": "Predicted volume (mL)",
    "volume_true_ml": "True volume (mL)",
}

#: Number format of each metric in the Markdown page.
_METRIC_FORMATS = {
    "hd95": ".2f",
    "assd": ".2f",
    "volume_pred_ml": ".1f",
    "volume_true_ml": ".1f",
}

#: The refiner's stage names (``GaussianRefiner.stage_maps``), in table order.
_GENERIC_STAGES = ("P(x) Ns=1", "G(P(x)) Ns=1", "P(x) Ns=all", "G(P(x)) Ns=all")


@dataclass(eq=False)
class CasePictures:
    """Small 2-D views of one case for the overlay figures.

    Parameters
    ----------
    case : str
        Case id.
    axial : list of SlicePanel
        A few axial slices (the ground truth's largest slice and slices
        spread through the pancreas), inferior to superior, sharing one crop.
    planes : list of SlicePanel
        Axial, coronal and sagittal planes through the pancreas centroid.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.evaluation import CasePictures
    >>> from pancreas.plotting import SlicePanel
    >>> m = np.zeros((4, 4), bool)
    >>> pics = CasePictures("a", [SlicePanel(np.zeros((4, 4)), m, m)], [])
    >>> pics.nbytes  # 16 float64 + 2 x 16 bool
    160
    """

    case: str
    axial: list[SlicePanel] = field(default_factory=list)
    planes: list[SlicePanel] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Memory held by all the panels, in bytes."""
        return sum(p.nbytes for p in [*self.axial, *self.planes])


@dataclass
class _CaseResult:
    """What one case leaves behind (small): see ``_evaluate_cases``."""

    case: str
    n_scales: int
    row: dict[str, Any]
    metrics: dict[str, Any] | None = None
    curves: dict[str, NDArray[np.float64]] | None = None
    pictures: CasePictures | None = None


def _stage_row(
    record: CaseRecord,
    label: NDArray[np.bool_],
    maps: dict[str, NDArray[np.float32]],
    thresholds: dict[str, float],
) -> dict[str, Any]:
    """One case's row of the paper's Table 2, keyed by the refiner's stage names.

    The only place that computes a stage row: used by :func:`evaluate_pipeline`
    and by :func:`pancreas.pipeline.stage_report`.
    """
    from pancreas.cascade import candidate_mask
    from pancreas.superpixels import optimal_superpixel_mask

    srf = candidate_mask(record)
    row: dict[str, Any] = {
        "case": record.case_id,
        "Optimal": dice_score(
            optimal_superpixel_mask(record.superpixels, label), label
        ),
        "S_RF": dice_score(srf, label),
        "S_RF recall": float(srf[label].mean()) if label.any() else 1.0,
    }
    for key in _GENERIC_STAGES:
        row[key] = dice_score(maps[key] > thresholds[key], label)
    return row


def _scale_names(n_scales: int) -> dict[str, str]:
    """Refiner stage name -> table column for a ConvNet with ``n_scales``."""
    return {
        "P(x) Ns=1": "P(x) Ns=1",
        "G(P(x)) Ns=1": "G(P(x)) Ns=1",
        "P(x) Ns=all": f"P(x) Ns={n_scales}",
        "G(P(x)) Ns=all": f"G(P(x)) Ns={n_scales}",
    }


def _stage_report(results: Sequence[_CaseResult], refiner: Any) -> StageReport:
    """Assemble the per-case stage rows into the cohort's :class:`StageReport`."""
    n_scales = min(r.n_scales for r in results)
    rename = _scale_names(n_scales)
    columns = list(StageReport.stage_columns(n_scales))
    thresholds = {rename[k]: float(v) for k, v in refiner.stage_thresholds_.items()}
    rows = [{rename.get(k, k): v for k, v in r.row.items()} for r in results]
    paper = dict(PAPER_TEST_DICE)
    if n_scales != 4:
        paper[f"P(x) Ns={n_scales}"] = paper.pop("P(x) Ns=4")
        paper[f"G(P(x)) Ns={n_scales}"] = paper.pop("G(P(x)) Ns=4")
    return StageReport(columns, rows, thresholds, paper)


def _default_case_id(item: Any, i: int) -> str:
    """The name :func:`pancreas.record.as_records` would give case ``i``."""
    if isinstance(item, CaseRecord):
        return item.case_id
    if isinstance(item, str):
        return item
    src = getattr(item, "source", None)
    if src and hasattr(item, "affine"):
        return str(src)
    return f"case_{i}"


def _box(
    mask: NDArray[np.bool_],
    axes: Sequence[int],
    spacing: Sequence[float],
    margin_mm: float,
    min_mm: float,
) -> tuple[slice, ...]:
    """Bounding box of ``mask`` along ``axes``, padded, at least ``min_mm`` wide."""
    out = []
    for a in axes:
        n = mask.shape[a]
        others = tuple(b for b in range(mask.ndim) if b != a)
        idx = np.flatnonzero(mask.any(axis=others))
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, n)
        pad = math.ceil(margin_mm / spacing[a])
        lo, hi = max(lo - pad, 0), min(hi + pad, n)
        need = min(math.ceil(min_mm / spacing[a]), n)
        if hi - lo < need:
            lo = max(lo - (need - (hi - lo)) // 2, 0)
            hi = min(lo + need, n)
            lo = max(hi - need, 0)
        out.append(slice(lo, hi))
    return tuple(out)


def field_of_view_box(
    label: NDArray[Any],
    spacing: Sequence[float],
    *,
    margin_mm: float = 30.0,
    fov_mm: float = 350.0,
) -> tuple[slice, slice, slice]:
    """A narrower scan of the same case: the box a field-of-view check crops.

    Along z, the slices holding the label plus ``margin_mm`` on each side;
    in-plane, ``fov_mm`` centred on the grid (or all of it where the grid is
    smaller). Segmenting the cropped scan and comparing its mask with the
    full scan's on this box checks that the pipeline does not depend on how
    much of the patient was scanned.

    Parameters
    ----------
    label : array of shape (X, Y, Z)
        The reference mask (any non-zero voxel is foreground); it must not be
        empty.
    spacing : sequence of 3 floats
        Voxel size in mm.
    margin_mm : float, default=30.0
        Kept above and below the label.
    fov_mm : float, default=350.0
        In-plane width and height of the box.

    Returns
    -------
    tuple of 3 slices

    Raises
    ------
    ValueError
        If ``label`` is not 3-D or is empty, or a size is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.evaluation import field_of_view_box
    >>> label = np.zeros((100, 100, 60), bool)
    >>> label[40:60, 40:60, 28:32] = True
    >>> field_of_view_box(label, (1.0, 1.0, 2.5), margin_mm=10, fov_mm=50)
    (slice(25, 75, None), slice(25, 75, None), slice(24, 36, None))
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise ValueError(f"label must be 3-D; got shape {label.shape}")
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3 or min(sp) <= 0 or margin_mm < 0 or fov_mm <= 0:
        raise ValueError(
            "spacing must be 3 positive numbers, margin_mm >= 0 and fov_mm > 0; "
            f"got spacing={spacing!r}, margin_mm={margin_mm!r}, fov_mm={fov_mm!r}"
        )
    if not label.any():
        raise ValueError("label is empty: there is no pancreas to keep")
    (z,) = _box(label != 0, (2,), sp, margin_mm, min_mm=0.0)
    inplane = []
    for axis in (0, 1):
        n = min(round(fov_mm / sp[axis]), label.shape[axis])
        start = (label.shape[axis] - n) // 2
        inplane.append(slice(start, start + n))
    return inplane[0], inplane[1], z


def _case_pictures(
    case: str,
    ct: NDArray[Any],
    label: NDArray[np.bool_],
    mask: NDArray[np.bool_],
    spacing: Sequence[float],
    *,
    n_slices: int = 3,
    margin_mm: float = 20.0,
    min_mm: float = 80.0,
    affine: NDArray[np.float64] | None = None,
) -> CasePictures:
    """The small views of one case (canonical arrays): see :class:`CasePictures`."""
    union = label | mask
    ref = label if label.any() else mask
    if ref.any():
        area = ref.sum(axis=(0, 1))
        zs = np.flatnonzero(area)
        # evenly through the extent, the nearest to the largest slice replaced
        # by it
        spread = [round(v) for v in np.linspace(zs[0], zs[-1], n_slices + 2)[1:-1]]
        top = int(np.argmax(area))
        spread[int(np.argmin([abs(v - top) for v in spread]))] = top
        z = sorted(set(spread))
        centre = [round(c) for c in np.argwhere(ref).mean(axis=0)]
    else:
        z = [ct.shape[2] // 2]
        centre = [n // 2 for n in ct.shape]
    kw = {"spacing": spacing, "affine": affine}  # affine: positions in mm
    box_xy = _box(union, (0, 1), spacing, margin_mm, min_mm)
    axial = [
        slice_panel(ct, label, mask, plane="axial", index=k, box=box_xy, **kw)
        for k in z
    ]
    planes = [
        slice_panel(ct, label, mask, plane="axial", index=centre[2], box=box_xy, **kw),
        slice_panel(
            ct,
            label,
            mask,
            plane="coronal",
            index=centre[1],
            box=_box(union, (0, 2), spacing, margin_mm, min_mm),
            **kw,
        ),
        slice_panel(
            ct,
            label,
            mask,
            plane="sagittal",
            index=centre[0],
            box=_box(union, (1, 2), spacing, margin_mm, min_mm),
            **kw,
        ),
    ]
    return CasePictures(case, axial, planes)


def _on_scan_grid(
    record: CaseRecord, maps: dict[str, NDArray[np.float32]]
) -> tuple[CaseRecord, dict[str, NDArray[np.float32]]]:
    """A record on a working grid with its superpixels and stage maps on the scan's grid.

    Superpixels are repeated over their blocks and probabilities
    interpolated as :meth:`~pancreas.record.CaseRecord.to_native` does, so
    that the stage row compares with the label as drawn. Unchanged for a
    record on the scan's grid.
    """
    if not record.regridded:
        return record, maps
    full = {key: record.to_full(value) for key, value in maps.items()}
    return dataclasses.replace(
        record, superpixels=record.to_full(record.superpixels)
    ), full


def _evaluate_case(
    i: int,
    pipeline: Pipeline,
    X: Any,
    y: Any,
    ids: list[str] | None,
    grid: NDArray[np.float64],
    full: bool,
    tolerance: float,
    surface_method: str = "surfel",
) -> _CaseResult:
    """Evaluate case ``i``, loading it here (on a worker, from its path)."""
    from pancreas.refine import dice_curve

    with local_threads():  # the slices of this case stay on this worker
        refiner = pipeline.steps[-1][1]
        item = X[i]
        name = ids[i] if ids is not None else _default_case_id(item, i)
        record = make_record(item, name)
        del item
        (record,) = pipeline[:-1].transform([record])
        # every Dice on the scan's own grid, also for a model on a working grid
        label = record.label_array(y[i], full=True)
        on_scan, maps = _on_scan_grid(record, refiner.stage_maps(record))
        row = _stage_row(on_scan, label, maps, refiner.stage_thresholds_)
        del on_scan
        n_scales = int(np.shape(record.convnet_proba)[1])
        if not full:
            return _CaseResult(name, n_scales, row)
        curves = {k: dice_curve(maps[k], label, grid) for k in _GENERIC_STAGES}
        del maps
        mask = refiner._full_mask(record)
        spacing = record.full_spacing
        voxel_ml = float(np.prod(spacing)) / 1000.0
        metrics = {
            "case": name,
            **evaluate_segmentation(
                label, mask, spacing, tolerance, method=surface_method
            ),
            "volume_pred_ml": int(np.count_nonzero(mask)) * voxel_ml,
            "volume_true_ml": int(np.count_nonzero(label)) * voxel_ml,
        }
        pictures = _case_pictures(
            name,
            record.to_full(np.asarray(record.volume.array)),
            label,
            mask,
            spacing,
            affine=record.full_affine,
        )
        return _CaseResult(name, n_scales, row, metrics, curves, pictures)


def _evaluate_cases(
    pipeline: Pipeline,
    X: Any,
    y: Any,
    *,
    case_ids: Sequence[str] | None = None,
    n_jobs: int | None = None,
    verbose: int = 0,
    full: bool = True,
    tolerance: float = 1.0,
    surface_method: str = "surfel",
) -> tuple[list[_CaseResult], GaussianRefiner]:
    """Run the pipeline case by case; ``full=False`` computes stage rows only."""
    from sklearn.utils.validation import check_is_fitted

    from pancreas.refine import GaussianRefiner

    check_is_fitted(pipeline)
    refiner = pipeline.steps[-1][1]
    if not isinstance(refiner, GaussianRefiner):
        raise TypeError(
            f"the pipeline must end in a GaussianRefiner, got {type(refiner).__name__}"
        )
    if isinstance(X, str | os.PathLike | CaseRecord) or hasattr(X, "affine"):
        raise InvalidVolumeError(
            "X must be a sequence of volumes (one per case), got a single "
            f"{type(X).__name__}; wrap it in a list"
        )
    if y is None:
        raise InvalidVolumeError("y is required: one label volume per case")
    n = len(X)
    if len(y) != n:
        raise InvalidVolumeError(f"X has {n} cases but y has {len(y)} label volumes")
    if n == 0:
        raise ValueError("no cases to evaluate")
    if case_ids is None:
        ids = getattr(X, "case_ids", None)
        ids = [str(c) for c in ids] if ids is not None and len(ids) == n else None
    else:
        if isinstance(case_ids, str) or len(case_ids) != n:
            raise ValueError(f"case_ids must be a sequence of {n} names")
        ids = [str(c) for c in case_ids]
    grid = np.asarray(refiner.thresholds_, dtype=float)

    results = parallel_map(
        _evaluate_case,
        range(n),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="evaluate",
        args=(pipeline, X, y, ids, grid, full, tolerance, surface_method),
    )
    return results, refiner


def evaluate_pipeline(
    pipeline: Pipeline,
    X: Any,
    y: Any,
    *,
    case_ids: Sequence[str] | None = None,
    n_jobs: int | None = None,
    verbose: int = 0,
    tolerance: float = 1.0,
    surface_method: str = "surfel",
) -> Evaluation:
    """Evaluate a fitted pipeline on a labelled cohort, one case at a time.

    Each case is loaded (``X[i]``, ``y[i]``), run through the pipeline and
    reduced to small results before the next is loaded, so lazy sequences
    such as :class:`pancreas.datasets.LazyVolumes` are read once per case and
    memory holds one case per worker. Per case:

    - the paper's stage row (Table 2): Optimal, S_RF, S_RF recall, P(x) and
      G(P(x)) at Ns=1 and with all scales, each at the refiner's
      ``stage_thresholds_`` (as :func:`pancreas.pipeline.stage_report`);
    - the final mask's metrics (:func:`pancreas.metrics.evaluate_segmentation`
      in mm; surface metrics by default in the area-weighted surfel definition
      of the MSD and TotalSegmentator numbers) and the predicted and true
      pancreas volumes in mL;
    - the Dice-versus-threshold curve of each stage on the refiner's grid
      (the paper's Figure 6 on this cohort);
    - a few small 2-D views for overlays (:class:`CasePictures`).

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline ending in a ``GaussianRefiner``.
    X : sequence of CT volumes
        The cases (paths, images, Volumes or arrays); indexed once per case.
    y : sequence of label volumes
        Their ground truth, on each case's own grid; non-zero is pancreas.
    case_ids : sequence of str, optional
        Case names. Default: ``X.case_ids`` when ``X`` has them, else each
        Volume's ``source`` (or path), else ``case_<i>``.
    n_jobs : int or None, default=None
        Cases evaluated in parallel (joblib threads, :func:`parallel_map`).
    verbose : int, default=0
        Progress bar when > 0.
    tolerance : float, default=1.0
        Tolerance in mm of the surface Dice.
    surface_method : {"surfel", "voxel"}, default="surfel"
        Definition of HD95, ASSD and surface Dice (the `method` of
        :func:`pancreas.metrics.evaluate_segmentation`): ``"surfel"``
        (area-weighted surface elements, DeepMind's ``surface-distance``, as
        the MSD and TotalSegmentator) or ``"voxel"`` (boundary voxels, MedPy).

    Returns
    -------
    Evaluation
        Per-case results; :meth:`Evaluation.write` makes the report folder.

    See Also
    --------
    pancreas.pipeline.stage_report : Only the stage table, the same rows.

    Examples
    --------
    A pipeline whose ConvNet is replaced by the cascade's own probabilities
    (to keep the example fast; the real one is ``make_roth2015_pipeline``):

    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from pancreas.cascade import RFCascade
    >>> from pancreas.evaluation import evaluate_pipeline
    >>> from pancreas.phantom import make_phantom_cohort
    >>> from pancreas.pipeline import make_pipeline
    >>> from pancreas.refine import GaussianRefiner
    >>> from pancreas.superpixels import SuperpixelGenerator
    >>> def rf_as_convnet(records):
    ...     for r in records:
    ...         r.convnet_proba = r.sp_proba[r.candidates][:, None]
    ...     return records
    >>> cts, labels = make_phantom_cohort(3, shape=(48, 48, 8), random_state=0)
    >>> pipe = make_pipeline(SuperpixelGenerator(check_spacing=False),
    ...                      RFCascade(n_estimators=5, cv=2, random_state=0),
    ...                      FunctionTransformer(rf_as_convnet),
    ...                      GaussianRefiner(sigma=1.0))
    >>> pipe = pipe.fit(cts[:2], labels[:2])
    >>> ev = evaluate_pipeline(pipe, cts[2:], labels[2:])
    >>> [m["case"] for m in ev.metrics], ev.stage.columns[-1]
    (['phantom_002'], 'G(P(x)) Ns=1')
    >>> ev.surface_method, ev.tolerance
    ('surfel', 1.0)
    >>> ev.curves["G(P(x)) Ns=1"].shape == (1, len(ev.thresholds))
    True
    """
    tolerance = _check_tolerance(tolerance)
    _check_method(surface_method, 3, name="surface_method")
    results, refiner = _evaluate_cases(
        pipeline,
        X,
        y,
        case_ids=case_ids,
        n_jobs=n_jobs,
        verbose=verbose,
        full=True,
        tolerance=tolerance,
        surface_method=surface_method,
    )
    stage = _stage_report(results, refiner)
    rename = _scale_names(min(r.n_scales for r in results))
    curves = {
        rename[k]: np.stack([r.curves[k] for r in results])  # type: ignore[index]
        for k in _GENERIC_STAGES
    }
    chosen = "G(P(x)) Ns=1" if refiner.n_scales == 1 else rename["G(P(x)) Ns=all"]
    return Evaluation(
        stage=stage,
        metrics=[r.metrics for r in results],  # type: ignore[misc]
        curves=curves,
        thresholds=np.asarray(refiner.thresholds_, dtype=float).copy(),
        threshold=float(refiner.threshold_),
        pictures=[r.pictures for r in results],  # type: ignore[misc]
        threshold_stage=chosen,
        tolerance=float(tolerance),
        surface_method=surface_method,
    )


def _finite_or_none(v: Any) -> Any:
    """JSON-safe number: non-finite floats become ``null``."""
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _file_safe(name: str) -> str:
    """A case id as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "case"


def _md_cell(v: Any, fmt: str = ".3f") -> str:
    if isinstance(v, float | np.floating):
        return "inf" if math.isinf(v) else f"{v:{fmt}}"
    return str(v).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return lines


@dataclass(eq=False)
class Evaluation:
    """A labelled cohort's evaluation: tables, curves and pictures, per case.

    Returned by :func:`evaluate_pipeline`; :meth:`write` makes the report.

    Parameters
    ----------
    stage : StageReport
        Dice of every stage per case (the paper's Table 2).
    metrics : list of dict
        Per case: ``"case"``, ``"dice"``, ``"jaccard"``, ``"precision"``,
        ``"recall"``, ``"hd95"`` and ``"assd"`` (mm), ``"surface_dice"``,
        ``"volume_pred_ml"`` and ``"volume_true_ml"``.
    curves : dict of str to ndarray of shape (n_cases, n_thresholds)
        Dice against threshold of each stage (keys as the stage columns).
    thresholds : ndarray of shape (n_thresholds,)
        The refiner's threshold grid.
    threshold : float
        The threshold of the final masks (the refiner's ``threshold_``).
    pictures : list of CasePictures
        Small views of each case, in case order.
    threshold_stage : str, default="G(P(x)) Ns=4"
        The stage ``threshold`` applies to.
    tolerance : float, default=1.0
        Tolerance in mm of the surface Dice.
    surface_method : {"surfel", "voxel"}, default="surfel"
        Definition the surface metrics were computed with (see
        :mod:`pancreas.metrics`); the default is the area-weighted one of the
        MSD and TotalSegmentator numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.evaluation import Evaluation
    >>> from pancreas.report import StageReport
    >>> ev = Evaluation(StageReport(["Optimal"], []),
    ...                 [{"case": c, "dice": d} for c, d in zip("abc", (.5, .9, .7))],
    ...                 {}, np.array([0.5]), 0.5, [])
    >>> ev.case_ids, ev.ranking()
    (['a', 'b', 'c'], {'best': 1, 'median': 2, 'worst': 0})
    """

    stage: StageReport
    metrics: list[dict[str, Any]]
    curves: dict[str, NDArray[np.float64]]
    thresholds: NDArray[np.float64]
    threshold: float
    pictures: list[CasePictures]
    threshold_stage: str = "G(P(x)) Ns=4"
    tolerance: float = 1.0
    surface_method: str = "surfel"

    @property
    def n_cases(self) -> int:
        """Number of cases."""
        return len(self.metrics)

    @property
    def case_ids(self) -> list[str]:
        """Case ids, in order."""
        return [str(m["case"]) for m in self.metrics]

    def values(self, metric: str) -> NDArray[np.float64]:
        """Per-case values of one metric (for example ``"dice"``) as floats."""
        return np.array([m[metric] for m in self.metrics], dtype=float)

    def ranking(self) -> dict[str, int]:
        """Indices of the best, median and worst cases by final Dice.

        Cases are sorted by decreasing Dice (ties keep case order); the
        median is the middle of that order (the better one of two middles).
        """
        order = np.argsort(-self.values("dice"), kind="stable")
        return {
            "best": int(order[0]),
            "median": int(order[(len(order) - 1) // 2]),
            "worst": int(order[-1]),
        }

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, std, median, min and max of each metric over the cases.

        Statistics are over the finite values; ``n_infinite`` counts the
        cases where a distance is infinite (an empty mask).
        """
        out: dict[str, dict[str, float]] = {}
        for m in METRICS:
            if not self.metrics or m not in self.metrics[0]:
                continue
            v = self.values(m)
            fin = v[np.isfinite(v)]
            stats = {
                "mean": float(np.mean(fin)) if fin.size else float("nan"),
                "std": float(np.std(fin)) if fin.size else float("nan"),
                "median": float(np.median(fin)) if fin.size else float("nan"),
                "min": float(np.min(fin)) if fin.size else float("nan"),
                "max": float(np.max(fin)) if fin.size else float("nan"),
            }
            out[m] = {**stats, "n_infinite": int(v.size - fin.size)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pictures, as JSON-ready types (inf/NaN as None)."""
        metrics = [{k: _finite_or_none(v) for k, v in m.items()} for m in self.metrics]
        summary = {
            k: {s: _finite_or_none(x) for s, x in v.items()}
            for k, v in self.summary().items()
        }
        stage_summary = self.stage.summary()
        return {
            "n_cases": self.n_cases,
            "threshold": float(self.threshold),
            "threshold_stage": self.threshold_stage,
            "surface_dice_tolerance_mm": float(self.tolerance),
            "surface_method": self.surface_method,
            "ranking": {k: self.case_ids[i] for k, i in self.ranking().items()}
            if self.metrics
            else {},
            "cases": metrics,
            "summary": summary,
            "stage": {
                "columns": list(self.stage.columns),
                "thresholds": dict(self.stage.thresholds),
                "paper": dict(self.stage.paper),
                "rows": [
                    {k: _finite_or_none(v) for k, v in row.items()}
                    for row in self.stage.rows
                ],
                "summary": {
                    k: {s: _finite_or_none(x) for s, x in v.items()}
                    for k, v in stage_summary.items()
                },
            },
            "curves": {
                "thresholds": [float(t) for t in self.thresholds],
                "mean": {
                    k: [float(x) for x in np.mean(v, axis=0)]
                    for k, v in self.curves.items()
                    if np.size(v)
                },
            },
        }

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write the report folder: Markdown page, tables and figures.

        Files: ``index.md``, ``metrics.csv`` (one row per case),
        ``metrics.json`` (per case, summary, stage table, mean curves),
        ``stage_table.csv``, ``stage_table.txt`` and in ``figures/``:
        ``dice_curves.png``, ``overlay_best.png``, ``overlay_median.png``,
        ``overlay_worst.png`` and ``three_plane_<case>.png`` for the median
        case.

        Parameters
        ----------
        folder : str or PathLike
            The report folder; created if needed, files in it replaced.

        Returns
        -------
        Path
            The folder (its page is ``folder / "index.md"``).
        """
        from pancreas.plotting import plot_dice_curves, plot_overlay, plot_three_plane

        folder = Path(folder)
        figures = folder / "figures"
        figures.mkdir(parents=True, exist_ok=True)

        # tables
        with open(folder / "metrics.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["case", *METRICS])
            for m in self.metrics:
                writer.writerow([m["case"], *(repr(float(m[k])) for k in METRICS)])
        with open(folder / "metrics.json", "w") as fh:
            json.dump(self.to_dict(), fh, indent=2, allow_nan=False)
        self.stage.to_csv(folder / "stage_table.csv")
        (folder / "stage_table.txt").write_text(self.stage.to_text() + "\n")

        # figures
        def save(fig: Any, name: str) -> str:
            fig.savefig(figures / name, dpi=DPI)
            return f"figures/{name}"

        pngs: dict[str, str] = {}
        if self.curves:
            pngs["curves"] = save(
                plot_dice_curves(
                    self.thresholds,
                    self.curves,
                    threshold=self.threshold,
                    threshold_stage=self.threshold_stage,
                    title=f"Dice against threshold, mean ± std of {self.n_cases} "
                    f"case{'s' if self.n_cases != 1 else ''}",
                ),
                "dice_curves.png",
            )
        rank = self.ranking() if self.metrics else {}
        dice = self.values("dice") if self.metrics else np.array([])
        for which, i in rank.items():
            pics = self.pictures[i] if i < len(self.pictures) else None
            if pics is None or not pics.axial:
                continue
            pngs[which] = save(
                plot_overlay(
                    pics.axial,
                    title=f"{which.capitalize()} case: {self.case_ids[i]} "
                    f"(Dice {dice[i]:.3f})",
                ),
                f"overlay_{which}.png",
            )
        if "median" in rank:
            i = rank["median"]
            pics = self.pictures[i] if i < len(self.pictures) else None
            if pics is not None and pics.planes:
                pngs["three_plane"] = save(
                    plot_three_plane(
                        pics.planes,
                        title=f"Median case {self.case_ids[i]} (Dice {dice[i]:.3f}): "
                        "planes through the pancreas centroid",
                    ),
                    f"three_plane_{_file_safe(self.case_ids[i])}.png",
                )

        (folder / "index.md").write_text(self._markdown(pngs, rank))
        return folder

    def _markdown(self, pngs: dict[str, str], rank: dict[str, int]) -> str:
        n = self.n_cases
        tol = f"{self.tolerance:g}"
        lines = [
            "# Pancreas segmentation: evaluation report",
            "",
            f"Cohort: **{n} case{'s' if n != 1 else ''}**. Final masks are "
            f"{self.threshold_stage} thresholded at **{self.threshold:.2f}** "
            "(the refiner's threshold). Distances in mm, "
            f"surface Dice at a tolerance of {tol} mm, volumes in mL.",
            "",
            _SURFACE_DEFINITIONS[self.surface_method].format(tol=tol),
            "",
            "Method: Roth et al. (2015), *Deep convolutional networks for "
            "pancreas segmentation in CT imaging*.",
            "",
            "## Final segmentation: summary",
            "",
        ]
        summ = self.summary()
        rows = []
        for k, st in summ.items():
            fmt = _METRIC_FORMATS.get(k, ".3f")
            inf = f" ({st['n_infinite']} infinite)" if st["n_infinite"] else ""
            rows.append(
                [
                    _METRIC_HEADINGS[k] + inf,
                    f"{_md_cell(st['mean'], fmt)} ± {_md_cell(st['std'], fmt)}",
                    *(_md_cell(st[x], fmt) for x in ("median", "min", "max")),
                ]
            )
        lines += _md_table(["Metric", "Mean ± std", "Median", "Min", "Max"], rows)
        lines += [
            "",
            "## Dice of each stage (the paper's Table 2)",
            "",
            "Each probability stage is thresholded at the value the refiner "
            "found best for it. *Paper*: mean Dice on the 20 NIH test cases "
            "of Roth et al. (2015), Table 2.",
            "",
        ]
        ssum = self.stage.summary()
        rows = []
        for c in self.stage.columns:
            v = self.stage.values(c)
            rows.append(
                [
                    c,
                    f"{ssum[c]['mean']:.3f} ± {ssum[c]['std']:.3f}",
                    float(np.median(v)) if v.size else float("nan"),
                    f"{self.stage.paper[c]:.2f}" if c in self.stage.paper else "-",
                    f"{self.stage.thresholds[c]:.2f}"
                    if c in self.stage.thresholds
                    else "-",
                ]
            )
        lines += _md_table(
            ["Stage", "Dice mean ± std", "Median", "Paper (Table 2)", "Threshold"],
            rows,
        )
        lines += [
            "",
            "Per case: [stage_table.csv](stage_table.csv), "
            "[stage_table.txt](stage_table.txt).",
            "",
        ]
        if "curves" in pngs:
            lines += [
                "## Dice against threshold (the paper's Figure 6)",
                "",
                "Mean over the cases, with a band of one standard deviation; "
                "the dotted line is the threshold in use.",
                "",
                f"![Dice against threshold]({pngs['curves']})",
                "",
            ]
        shown = [k for k in ("best", "median", "worst") if k in pngs]
        if shown:
            lines += [
                "## Examples (the paper's Figure 7)",
                "",
                "Axial CT slices (W400/L40) through the pancreas, cropped "
                "around it: ground truth solid, prediction dashed. Cases "
                "ranked by final Dice.",
                "",
            ]
            for k in shown:
                i = rank[k]
                lines += [
                    f"### {k.capitalize()} case: {_md_cell(self.case_ids[i])}",
                    "",
                    f"![{k} case]({pngs[k]})",
                    "",
                ]
        if "three_plane" in pngs:
            lines += [
                "## Three planes through the median case",
                "",
                f"![three planes]({pngs['three_plane']})",
                "",
            ]
        lines += [
            "## Per case",
            "",
            "[metrics.csv](metrics.csv), [metrics.json](metrics.json).",
            "",
        ]
        ranks = np.empty(self.n_cases, dtype=int)
        ranks[np.argsort(-self.values("dice"), kind="stable")] = np.arange(
            1, self.n_cases + 1
        )
        lines += _md_table(
            ["Case", "Rank", *(_METRIC_HEADINGS[k] for k in METRICS)],
            [
                [
                    m["case"],
                    str(r),
                    *(_md_cell(m[k], _METRIC_FORMATS.get(k, ".3f")) for k in METRICS),
                ]
                for m, r in zip(self.metrics, ranks, strict=True)
            ],
        )
        lines += ["", "Rank: by final Dice, 1 = best.", ""]
        return "\n".join(lines) + "\n"
