"""Segment a cohort of CT scans with a fitted pipeline, resumably.

:func:`segment_cohort` is what ``pancreas segment`` runs: for every input (a
NIfTI file or a DICOM series folder) it writes a uint8 NIfTI mask, and
optionally a float32 probability map and a JSON file of organ statistics, in
the input's own grid and affine. It is built to lose nothing on a long run:

- every output is written atomically (a hidden temporary file renamed into
  place), so a file that exists is complete;
- a case whose outputs all exist is skipped (resume after an interruption),
  and temporary files left by a killed run are removed first;
- a failing case is logged and reported at the end; the others go on.

The loop over cases goes through joblib (:func:`pancreas._parallel.parallel_map`),
so with ``joblib.parallel_config(backend="dask")`` the cases run on a Dask
cluster's workers, each reading its own input from shared storage.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pancreas._atomic import (
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temporaries,
)
from pancreas._checks import outside_training_range
from pancreas._memory import check_memory
from pancreas._parallel import local_threads, parallel_map
from pancreas.datasets import IMAGE_SUFFIXES, _is_hidden, _nifti_stem, _strip_suffix
from pancreas.exceptions import DatasetLayoutError

__all__ = [
    "CaseOutputs",
    "CohortResult",
    "check_output_folder",
    "find_cases",
    "organ_statistics",
    "output_paths",
    "proba_description",
    "segment_cohort",
]

log = logging.getLogger("pancreas")


def _nifti_case_id(path: Path) -> str | None:
    """Case id of a NIfTI file (as the dataset loaders name cases), else None."""
    stem = _nifti_stem(path)
    return None if stem is None else _strip_suffix(stem, IMAGE_SUFFIXES)[0]


def _series_folder(folder: Path) -> Path | None:
    """The folder below ``folder`` (or itself) holding its image files.

    A case folder of NIH Pancreas-CT nests its series two levels down
    (``PANCREAS_0001/<study>/<series>/*.dcm``); it must hold exactly one
    folder with files.
    """
    with_files = []
    seen: set[str] = set()
    # symbolic links are followed (a series linked in from another disk), each
    # real folder once (a link to an ancestor would loop)
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if any(not f.startswith(".") for f in files):
            with_files.append(Path(root))
    if len(with_files) == 1:
        return with_files[0]
    if not with_files:
        return None
    raise DatasetLayoutError(
        f"{folder}: holds files in {len(with_files)} folders "
        f"({', '.join(str(p.relative_to(folder)) for p in with_files[:4])}"
        f"{', ...' if len(with_files) > 4 else ''}); give one DICOM series "
        "folder per case"
    )


def check_output_folder(
    output: str | os.PathLike[str], *, option: str = "output folder"
) -> Path:
    """Create an output folder, or say why it cannot be written, before any work.

    Parameters
    ----------
    output : str or PathLike
        The folder; created with its parents when missing.
    option : str, default="output folder"
        How to name it in messages (e.g. ``"-o/--output"``).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    ValueError
        The path or one of its parents is a regular file, or the folder
        cannot be created or written (a probe file is written and removed).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = Path(tempfile.mkdtemp())
    >>> check_output_folder(tmp / "masks").is_dir()
    True
    >>> _ = (tmp / "notes.txt").write_text("x")
    >>> check_output_folder(tmp / "notes.txt" / "masks")
    Traceback (most recent call last):
    ...
    ValueError: output folder .../masks: .../notes.txt is a file, not a folder; ...
    """
    import tempfile

    out = Path(os.fspath(output))
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(
                f"{option} {out}: {parent} is a file, not a folder; choose "
                "another output path"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise ValueError(
            f"{option} {out}: cannot be written ({exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from exc
    return out


def find_cases(inputs: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """Expand command-line inputs into ``(case_id, path)`` pairs.

    Each input is a NIfTI file, a DICOM series folder (a folder with files),
    or a cohort folder: a folder holding NIfTI files (one case each) or
    sub-folders (one case each, the DICOM series anywhere below, as in the
    NIH Pancreas-CT tree; symbolic links are followed). A case folder that
    holds no file is still returned, so that segmenting it fails with the
    reason rather than leaving it out unnoticed. Case ids are file names
    without the extension and an nnU-Net ``_0000`` (or ``_ct``, ``_image``,
    ``_img``) suffix, or folder names.

    Parameters
    ----------
    inputs : iterable of str or PathLike
        Files and folders, as given on the command line.

    Returns
    -------
    list of (str, Path)
        One entry per case, in the order given (cohort folders sorted).

    Raises
    ------
    DatasetLayoutError
        An input does not exist, a folder holds no case, or two inputs give
        the same case id (their outputs would overwrite each other).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = Path(tempfile.mkdtemp())
    >>> for name in ["b_0000.nii.gz", "a.nii.gz", "notes.txt"]:
    ...     _ = (tmp / name).write_bytes(b"")
    >>> [case for case, _ in find_cases([tmp])]
    ['a', 'b']
    """
    cases: list[tuple[str, Path]] = []
    for item in inputs:
        path = Path(os.fspath(item))
        if path.is_file():
            case = _nifti_case_id(path)
            if case is None:
                raise DatasetLayoutError(
                    f"{path}: not a NIfTI file (.nii or .nii.gz); give NIfTI files "
                    "or DICOM series folders"
                )
            cases.append((case, path))
        elif path.is_dir():
            cases.extend(_cases_in_folder(path))
        else:
            raise DatasetLayoutError(f"{path}: no such file or folder")
    seen: dict[str, Path] = {}
    for case, path in cases:
        if case in seen:
            raise DatasetLayoutError(
                f"case id {case!r} is given twice ({seen[case]} and {path}); "
                "their outputs would overwrite each other; rename one"
            )
        seen[case] = path
    return cases


def _cases_in_folder(folder: Path) -> list[tuple[str, Path]]:
    entries = sorted(p for p in folder.iterdir() if not _is_hidden(p))
    niftis = [p for p in entries if p.is_file() and _nifti_case_id(p) is not None]
    if niftis:
        return [(str(_nifti_case_id(p)), p) for p in niftis]
    if any(p.is_file() for p in entries):
        return [(folder.name, folder)]  # a DICOM series folder
    cases = []
    for sub in (p for p in entries if p.is_dir()):
        # a case folder without files stays a case: it fails and is listed
        # with the reason, instead of silently shrinking the cohort
        cases.append((sub.name, _series_folder(sub) or sub))
    if not cases:
        raise DatasetLayoutError(
            f"{folder}: holds no NIfTI file, DICOM file or case folder"
        )
    return cases


@dataclass(frozen=True)
class CaseOutputs:
    """The files written for one case.

    Parameters
    ----------
    mask : Path
        The uint8 NIfTI mask (``<case>.nii.gz``).
    proba : Path or None
        The float32 probability map (``<case>_proba.nii.gz``), if asked for.
    stats : Path or None
        The organ statistics (``<case>.json``), if asked for.
    dicom_seg : Path or None
        The DICOM Segmentation object (``<case>_seg.dcm``), if asked for.
    preview : Path or None
        The preview picture (``<case>_preview.png``), if asked for.

    Examples
    --------
    >>> out = output_paths("out", "case1", proba=True)
    >>> out.mask.name, out.proba.name, out.stats
    ('case1.nii.gz', 'case1_proba.nii.gz', None)
    """

    mask: Path
    proba: Path | None = None
    stats: Path | None = None
    dicom_seg: Path | None = None
    preview: Path | None = None

    @property
    def paths(self) -> list[Path]:
        """Every file of the case."""
        files = (self.mask, self.proba, self.stats, self.dicom_seg, self.preview)
        return [p for p in files if p is not None]

    def complete(self) -> bool:
        """Whether every file exists (each is written atomically)."""
        return all(p.is_file() and p.stat().st_size > 0 for p in self.paths)


def output_paths(
    output: str | os.PathLike[str],
    case_id: str,
    *,
    proba: bool = False,
    stats: bool = False,
    dicom_seg: bool = False,
    preview: bool = False,
) -> CaseOutputs:
    """Where :func:`segment_cohort` writes the outputs of one case.

    Parameters
    ----------
    output : str or PathLike
        The output folder.
    case_id : str
        The case.
    proba : bool, default=False
        Include the probability map.
    stats : bool, default=False
        Include the statistics file.
    dicom_seg : bool, default=False
        Include the DICOM Segmentation object.
    preview : bool, default=False
        Include the preview picture.

    Returns
    -------
    CaseOutputs

    Examples
    --------
    >>> output_paths("out", "c", stats=True).stats.name
    'c.json'
    """
    out = Path(os.fspath(output))
    return CaseOutputs(
        mask=out / f"{case_id}.nii.gz",
        proba=out / f"{case_id}_proba.nii.gz" if proba else None,
        stats=out / f"{case_id}.json" if stats else None,
        dicom_seg=out / f"{case_id}_seg.dcm" if dicom_seg else None,
        preview=out / f"{case_id}_preview.png" if preview else None,
    )


@dataclass
class CohortResult:
    """What :func:`segment_cohort` did.

    Parameters
    ----------
    done : list of str
        Cases segmented in this run.
    skipped : list of str
        Cases whose outputs were already complete.
    failed : dict of str to str
        Cases that failed, with the error message.
    stats : dict of str to dict
        Organ statistics per case (for ``stats=True``), also for skipped cases.
    empty : list of str
        Cases segmented in this run whose mask is empty (no voxel above the
        threshold): a result, not a failure, but worth a look.
    outside_training : dict of str to str
        Cases segmented in this run whose voxel spacing is well outside the
        model's training range (when ``training`` was given), with the note.

    Examples
    --------
    >>> CohortResult(done=["a"], failed={"b": "no file"}).ok
    False
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    outside_training: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no case failed."""
        return not self.failed


def organ_statistics(
    mask: np.ndarray, image: np.ndarray, spacing: Sequence[float]
) -> dict[str, Any]:
    """Pancreas volume (mL) and HU statistics inside a mask.

    Parameters
    ----------
    mask : ndarray
        Binary mask (non-zero = pancreas).
    image : ndarray
        The CT in HU, same shape.
    spacing : sequence of float
        Voxel size in mm.

    Returns
    -------
    dict
        ``n_voxels``, ``volume_ml``, ``mean_hu``, ``std_hu``, ``median_hu``
        (None for an empty mask).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((10, 10, 10), bool); m[:5] = True
    >>> organ_statistics(m, np.full(m.shape, 40.0), (1.0, 1.0, 2.0))["volume_ml"]
    1.0
    """
    sel = np.asarray(mask) != 0
    n = int(sel.sum())
    values = np.asarray(image)[sel].astype(np.float64)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {
        "n_voxels": n,
        "volume_ml": round(n * voxel_ml, 3),
        "mean_hu": round(float(values.mean()), 2) if n else None,
        "std_hu": round(float(values.std()), 2) if n else None,
        "median_hu": round(float(np.median(values)), 2) if n else None,
    }


def _nifti_shape(path: Path) -> tuple[int, ...] | None:
    """The grid of a NIfTI file from its header (None for DICOM or bad files)."""
    if _nifti_case_id(path) is None or not path.is_file():
        return None
    import nibabel as nib

    try:
        return tuple(int(n) for n in nib.load(path).shape[:3])
    except Exception:  # load_volume reports what is wrong with the file
        return None


_PROBA_NOTE = (
    "the mask is the probability map above the model's threshold (chosen on "
    "validation cases), not above 0.5"
)


def proba_description(threshold: float) -> str:
    """The NIfTI ``descrip`` of a probability map: how to get the mask from it.

    The map is G(P(x)), the smoothed ConvNet probability; the model's mask is
    the map above the threshold its refiner chose on validation cases
    (typically 0.2-0.4), so thresholding the map at 0.5 gives a smaller or
    empty mask.

    Parameters
    ----------
    threshold : float
        The model's threshold (``GaussianRefiner.threshold_``).

    Returns
    -------
    str
        At most 80 characters, for the header's ``descrip`` field.

    Examples
    --------
    >>> proba_description(0.2734)
    'pancreas G(P(x)); mask = proba > 0.2734 (model threshold, not 0.5)'
    """
    return (
        f"pancreas G(P(x)); mask = proba > {threshold:.4f} (model threshold, not 0.5)"
    )


def _segment_case(
    job: tuple[str, Path, CaseOutputs], pipeline: Any, training: dict[str, Any] | None
) -> tuple[str, str, Any]:
    """Segment one case; returns (case, "done" | "failed", stats or message)."""
    from pancreas.io import Volume, load_volume, save_volume

    case, path, outputs = job
    start = time.perf_counter()
    try:
        shape = _nifti_shape(path)
        if shape is not None:  # refuse before reading a volume that cannot fit
            check_memory(shape, case)
        volume = load_volume(path)
        with local_threads():  # the slices of this case stay on this worker
            records = pipeline.records([Volume(volume.array, volume.affine, case)])
            refiner = pipeline.steps[-1][1]
            if outputs.proba is not None:
                mask, proba = refiner.predict_with_proba(records)[0]
            else:  # no volume-sized float map unless it is written
                mask, proba = refiner.predict(records)[0], None
        stats = organ_statistics(mask, volume.array, volume.spacing)
        stats.update(
            case=case,
            input=str(path),
            shape=list(volume.shape),
            spacing=[round(float(s), 4) for s in volume.spacing],
            threshold=float(pipeline.steps[-1][1].threshold_),
        )
        if outputs.proba is not None:
            stats["proba"] = {
                "file": outputs.proba.name,
                "threshold": stats["threshold"],
                "mask": f"proba > {stats['threshold']:.4f}",
                "note": _PROBA_NOTE,
            }
        note = outside_training_range(records[0].full_spacing, training, case)
        if note is not None:
            stats["outside_training_range"] = note
        if outputs.preview is not None:
            _write_preview(records[0], mask, outputs.preview, stats)
        del records
        # the mask last: its presence with the others marks a finished case
        if outputs.proba is not None:
            save_volume(
                proba,
                outputs.proba,
                reference=volume,
                dtype=np.float32,
                description=proba_description(stats["threshold"]),
            )
        if outputs.dicom_seg is not None:
            from pancreas.dicom_seg import write_dicom_seg

            write_dicom_seg(mask, path, outputs.dicom_seg)
        if outputs.stats is not None:
            atomic_write_text(outputs.stats, json.dumps(stats, indent=2) + "\n")
        save_volume(mask, outputs.mask, reference=volume, dtype=np.uint8)
        return case, "done", (stats, time.perf_counter() - start)
    except Exception as exc:  # keep going: report the case at the end
        log.debug("case %s failed", case, exc_info=True)
        return case, "failed", f"{type(exc).__name__}: {exc}"


def _write_preview(
    record: Any, mask: np.ndarray, path: Path, stats: dict[str, Any]
) -> None:
    """Save :func:`pancreas.plotting.plot_preview` of a case as a PNG."""
    from io import BytesIO

    from pancreas.plotting import DPI, plot_preview

    # canonical (RAS+) already: no copy reoriented; a working grid's CT is
    # brought to the scan's grid, where the mask is
    fig = plot_preview(
        record.to_full(np.asarray(record.volume.array)),
        record.to_canonical(mask),
        record.full_affine,
        title=f"{stats['case']}: {stats['volume_ml']:g} mL "
        f"(threshold {stats['threshold']:.2f})",
    )
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())


def segment_cohort(
    pipeline: Any,
    inputs: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    proba: bool = False,
    stats: bool = False,
    dicom_seg: bool = False,
    preview: bool = False,
    overwrite: bool = False,
    training: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> CohortResult:
    """Segment every case of a cohort, writing one mask per case.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline (for example from
        :func:`pancreas.persistence.load_pipeline`).
    inputs : iterable of str or PathLike
        NIfTI files, DICOM series folders or cohort folders (see
        :func:`find_cases`).
    output : str or PathLike
        Output folder; created if needed.
    proba : bool, default=False
        Also write G(P(x)) as a float32 map ``<case>_proba.nii.gz``. The
        mask is the map *above the model's threshold* (typically 0.2-0.4,
        not 0.5): the threshold is written in the map's header description
        (``descrip``) and, with ``stats``, in the case's JSON.
    stats : bool, default=False
        Also write ``<case>.json``: pancreas volume in mL and HU statistics
        inside the mask, the input's shape and spacing, the threshold.
    dicom_seg : bool, default=False
        Also write ``<case>_seg.dcm``, a DICOM Segmentation object that
        references the source series (see
        :func:`pancreas.dicom_seg.write_dicom_seg`; needs
        ``pancreas[dicom-seg]``). Every input must be a DICOM series.
    preview : bool, default=False
        Also write ``<case>_preview.png``: axial, coronal and sagittal views
        through the mask's centre (:func:`pancreas.plotting.plot_preview`).
    overwrite : bool, default=False
        Redo cases whose outputs exist (default: skip them, so that an
        interrupted run resumes where it stopped).
    training : dict or None, default=None
        The model's training-cohort summary (``read_manifest(model)
        ["training"]``, see :func:`pancreas.persistence.cohort_summary`): a
        case whose voxel spacing lies well outside its range gets a warning,
        is listed in :attr:`CohortResult.outside_training` and, with
        ``stats``, has the note in its JSON. None checks nothing.
    n_jobs : int or None, default=None
        Cases segmented in parallel (joblib processes; inside a
        ``joblib.parallel_config`` context, its backend, e.g. Dask).
    verbose : int, default=0
        Progress bar over the cases when > 0.

    Returns
    -------
    CohortResult
        The cases done, skipped and failed (with the error message).

    Raises
    ------
    DatasetLayoutError
        The inputs name no case or the same case twice (before any work).
    ValueError
        The output folder cannot be written, or ``dicom_seg`` was asked for
        a NIfTI input (before any work).
    ImportError
        ``dicom_seg`` without highdicom installed.

    Examples
    --------
    A cohort folder of NIfTI files, segmented with a fitted pipeline
    ``pipe`` (fitting takes longer than an example should)::

        result = segment_cohort(pipe, ["scans/"], "masks/", proba=True)
        print(result.done, result.failed)
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(pipeline)
    cases = find_cases(inputs)
    if not cases:
        raise DatasetLayoutError("no input case given")
    if dicom_seg:
        from pancreas.dicom_seg import _highdicom

        _highdicom()
        niftis = [str(path) for _, path in cases if not path.is_dir()]
        if niftis:
            raise ValueError(
                "a DICOM SEG output needs DICOM series inputs (it references "
                f"their slices); NIfTI input(s): {', '.join(niftis[:5])}"
                f"{', ...' if len(niftis) > 5 else ''}"
            )
    out = check_output_folder(output)
    result = CohortResult()
    jobs = []
    for case, path in cases:
        paths = output_paths(
            out, case, proba=proba, stats=stats, dicom_seg=dicom_seg, preview=preview
        )
        remove_stale_temporaries(paths.paths)
        if paths.complete() and not overwrite:
            result.skipped.append(case)
            if paths.stats is not None:
                result.stats[case] = json.loads(paths.stats.read_text())
            continue
        jobs.append((case, path, paths))
    if result.skipped:
        log.info("%d case(s) already done, skipped", len(result.skipped))
    outcomes = parallel_map(
        _segment_case,
        jobs,
        n_jobs=n_jobs,
        prefer="processes",
        verbose=verbose,
        desc="segment",
        args=(pipeline, training),
    )
    # a worker killed mid-write (its task retried elsewhere) leaves a temporary
    for _, _, paths in jobs:
        remove_stale_temporaries(paths.paths)
    for case, status, info in outcomes:
        if status == "done":
            case_stats, seconds = info
            result.done.append(case)
            if stats:
                result.stats[case] = case_stats
            log.info("%s: %.1f mL in %.1f s", case, case_stats["volume_ml"], seconds)
            if "outside_training_range" in case_stats:
                result.outside_training[case] = case_stats["outside_training_range"]
                log.warning("%s", case_stats["outside_training_range"])
            if case_stats["n_voxels"] == 0:
                result.empty.append(case)
                log.warning(
                    "%s: empty segmentation (no voxel above the threshold %.2f); "
                    "a scan unlike the training data (another contrast phase, "
                    "field of view, scanner or intensity scale) often gives "
                    "this: `pancreas info MODEL` shows what the model was "
                    "trained on",
                    case,
                    case_stats["threshold"],
                )
        else:
            result.failed[case] = info
            log.error("%s failed: %s", case, info)
    return result
