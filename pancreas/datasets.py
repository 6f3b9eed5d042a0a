"""Public pancreas CT cohorts on disk: NIH Pancreas-CT, MSD Task07, NIfTI folders.

Every loader only *finds* the cases: it checks the layout, pairs images with
labels and returns a :class:`Dataset` whose ``images`` and ``labels`` are
:class:`LazyVolumes`, sequences that read one case from disk each time they
are indexed (through :func:`pancreas.io.load_volume`) and keep nothing. So
iterating over an 82-case cohort never holds more than one case in memory.

Data contract (see ``DESIGN.md``): ``images`` are CT volumes in Hounsfield
units; ``labels`` are label volumes on the same grids where non-zero means
pancreas. The loaders do not binarise labels: an MSD label keeps its tumour
value 2, and the pipeline's record layer counts every non-zero voxel as
pancreas.

Cases are always listed in natural order of their case ids (``case2`` before
``case10``), whatever order the file system or a ``dataset.json`` gives, so
that a seeded :meth:`Dataset.split` is the same on every machine.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Integral
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from pancreas.exceptions import DatasetLayoutError, InvalidVolumeError
from pancreas.io import Volume, load_volume

if TYPE_CHECKING:
    from pancreas.alignment import LabelCheck

__all__ = [
    "Dataset",
    "LazyVolumes",
    "load_msd_pancreas",
    "load_nifti_folder",
    "load_nifti_glob",
    "load_nih_pancreas",
]

#: Suffixes stripped from image file stems when pairing images with labels.
IMAGE_SUFFIXES: tuple[str, ...] = ("_0000", "_ct", "_image", "_img")
#: Suffixes that mark a label file (and are stripped from its stem).
LABEL_SUFFIXES: tuple[str, ...] = ("_seg", "_label", "_mask", "_gt")

_NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_NIH_CASE = re.compile(r"^PANCREAS_(\d+)$", re.IGNORECASE)
_NIH_LABEL = re.compile(r"^label(\d+)\.nii(\.gz)?$", re.IGNORECASE)
_NIH_LABEL_FOLDERS = ("TCIA_pancreas_labels-02-05-2017",)

#: NIH cases that TCIA removed in 2020 as duplicates of PANCREAS_0002; their
#: label files are still distributed.
NIH_DUPLICATES: tuple[int, ...] = (25, 70)

PathType = str | PathLike[str]
LabelAlignment = str | Mapping[str, str]

log = logging.getLogger("pancreas")


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders ``case2`` before ``case10``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    )


def _is_hidden(path: Path) -> bool:
    """True for dot files, including macOS ``._`` resource forks."""
    return path.name.startswith(".")


def _nifti_stem(path: Path) -> str | None:
    """File name without its NIfTI extension, or None if it is not NIfTI."""
    lower = path.name.lower()
    for ext in _NIFTI_EXTENSIONS:
        if lower.endswith(ext):
            return path.name[: -len(ext)]
    return None


def _list_nifti(folder: Path) -> list[Path]:
    """NIfTI files directly inside ``folder``, hidden files left out."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not _is_hidden(p) and _nifti_stem(p) is not None
    )


def _check_folder(folder: PathType, what: str) -> Path:
    """Return ``folder`` as a Path, or raise if it is not an existing folder."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise DatasetLayoutError(f"{what} folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise DatasetLayoutError(f"{what} path {str(path)!r} is not a folder")
    return path


def _format_list(items: Iterable[Any], limit: int = 10) -> str:
    """``'a', 'b', ... (n in all)``, for error messages."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items)} in all)"
    return shown


def _strip_suffix(stem: str, suffixes: Sequence[str]) -> tuple[str, bool]:
    """Strip the first of ``suffixes`` that ends ``stem`` (case-insensitive)."""
    lower = stem.lower()
    for suffix in suffixes:
        if suffix and lower.endswith(suffix.lower()) and len(stem) > len(suffix):
            return stem[: -len(suffix)], True
    return stem, False


def _clean_suffix(suffix: str | None) -> str | None:
    """Drop a NIfTI extension that the user may have written in a suffix."""
    if suffix is None:
        return None
    lower = suffix.lower()
    for ext in _NIFTI_EXTENSIONS:
        if lower.endswith(ext):
            suffix = suffix[: -len(ext)]
            break
    if not suffix:
        raise ValueError("a file suffix must not be empty")
    return suffix


# ---------------------------------------------------------------------------
# LazyVolumes
# ---------------------------------------------------------------------------


class LazyVolumes(Sequence[Volume]):
    """A sequence of volumes on disk, each read only when it is indexed.

    Indexing with an integer calls :func:`pancreas.io.load_volume` on that
    case's path and returns the :class:`~pancreas.io.Volume`; nothing is
    cached, so a loop over the sequence holds one case at a time. Indexing
    with a slice or a sequence of integers returns a new ``LazyVolumes`` and
    loads nothing.

    Parameters
    ----------
    paths : sequence of str or PathLike
        One NIfTI file or DICOM series folder per case.
    case_ids : sequence of str, optional
        Name of each case, unique. Default: each path's file name without its
        NIfTI extension.

    Attributes
    ----------
    paths : list of Path
        The paths, in order (a copy).
    case_ids : list of str
        The case ids, in order (a copy).

    See Also
    --------
    pancreas.io.load_volume : Reads one case.
    Dataset : Pairs images with labels.

    Notes
    -----
    Label volumes use the same class. Their values are returned as stored:
    non-zero means pancreas, and nothing here binarises them.

    Examples
    --------
    >>> from pancreas.datasets import LazyVolumes
    >>> cases = LazyVolumes(["ct/a.nii.gz", "ct/b.nii.gz", "ct/c.nii.gz"])
    >>> len(cases), cases.case_ids
    (3, ['a', 'b', 'c'])
    >>> cases[1:]
    LazyVolumes(2 cases: 'b', 'c')
    """

    __slots__ = ("_case_ids", "_paths")

    def __init__(
        self, paths: Sequence[PathType], case_ids: Sequence[str] | None = None
    ) -> None:
        if isinstance(paths, str | PathLike):
            raise TypeError(
                "paths must be a sequence of paths, not a single path "
                f"({str(paths)!r}); wrap it in a list"
            )
        self._paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        if case_ids is None:
            ids = tuple(_nifti_stem(p) or p.name for p in self._paths)
        else:
            if isinstance(case_ids, str):
                raise TypeError("case_ids must be a sequence of strings")
            ids = tuple(str(c) for c in case_ids)
            if len(ids) != len(self._paths):
                raise ValueError(
                    f"got {len(ids)} case ids for {len(self._paths)} paths"
                )
        seen: set[str] = set()
        duplicates = [c for c in ids if c in seen or seen.add(c)]
        if duplicates:
            raise ValueError(
                f"case ids must be unique; repeated: {_format_list(duplicates)}"
            )
        self._case_ids: tuple[str, ...] = ids

    @property
    def paths(self) -> list[Path]:
        """The path of each case, in order."""
        return list(self._paths)

    @property
    def case_ids(self) -> list[str]:
        """The id of each case, in order."""
        return list(self._case_ids)

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, index: int) -> Volume: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int]) -> LazyVolumes: ...

    def __getitem__(self, index: Any) -> Volume | LazyVolumes:
        if isinstance(index, slice):
            return self._subset(range(len(self))[index])
        if isinstance(index, Integral) and not isinstance(index, bool):
            if not -len(self) <= index < len(self):
                raise IndexError(
                    f"case index {index} out of range for {len(self)} cases"
                )
            return load_volume(self._paths[int(index)])
        if isinstance(index, Sequence | np.ndarray) and not isinstance(index, str):
            return self.take(index)
        raise TypeError(
            "LazyVolumes indices must be integers, slices or sequences of "
            f"integers, not {type(index).__name__}"
        )

    def take(self, indices: Iterable[int]) -> LazyVolumes:
        """Return the cases at ``indices``, in that order, without loading them.

        Parameters
        ----------
        indices : iterable of int
            Positions, negative ones counting from the end.

        Returns
        -------
        LazyVolumes
            The selected cases; nothing is loaded.
        """
        positions = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, Integral):
                raise TypeError(
                    f"case indices must be integers, not {type(i).__name__}"
                )
            if not -len(self) <= i < len(self):
                raise IndexError(f"case index {i} out of range for {len(self)} cases")
            positions.append(int(i) % len(self))
        return self._subset(positions)

    def _subset(self, positions: Iterable[int]) -> LazyVolumes:
        positions = list(positions)
        return LazyVolumes(
            [self._paths[i] for i in positions],
            [self._case_ids[i] for i in positions],
        )

    def __iter__(self) -> Iterator[Volume]:
        for path in self._paths:
            yield load_volume(path)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyVolumes):
            return NotImplemented
        return self._paths == other._paths and self._case_ids == other._case_ids

    def __hash__(self) -> int:
        return hash((self._paths, self._case_ids))

    def __getstate__(self) -> tuple[tuple[Path, ...], tuple[str, ...]]:
        return self._paths, self._case_ids

    def __setstate__(self, state: tuple[tuple[Path, ...], tuple[str, ...]]) -> None:
        self._paths, self._case_ids = state

    def __repr__(self) -> str:
        n = len(self)
        ids = [repr(c) for c in self._case_ids]
        if n > 6:
            ids = [*ids[:3], "...", *ids[-2:]]
        noun = "case" if n == 1 else "cases"
        if n == 0:
            return "LazyVolumes(0 cases)"
        return f"LazyVolumes({n} {noun}: {', '.join(ids)})"


class _AlignedLabels(LazyVolumes):
    """Label volumes that are checked against, or aligned to, their images.

    Indexing a case loads its label and, per the case's ``label_alignment``
    option, either checks its HU profile against the image the first time
    (:func:`pancreas.alignment.check_label_alignment`; the verdict is kept,
    so later reads do not load the image again) or applies the given
    alignment (:func:`pancreas.alignment.apply_label_alignment`).
    """

    __slots__ = ("_alignments", "_checks", "_images")

    def __init__(
        self,
        paths: Sequence[PathType],
        case_ids: Sequence[str],
        *,
        images: LazyVolumes,
        alignments: Sequence[str],
        checks: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(paths, case_ids)
        if len(images) != len(self) or len(alignments) != len(self):
            raise ValueError(
                f"{len(self)} labels for {len(images)} images and "
                f"{len(alignments)} alignments"
            )
        self._images = images
        self._alignments: tuple[str, ...] = tuple(alignments)
        self._checks: dict[str, Any] = {} if checks is None else checks

    @property
    def alignments(self) -> list[str]:
        """The ``label_alignment`` option of each case, in order."""
        return list(self._alignments)

    def check(self, index: int) -> LabelCheck:
        """Check (or align and re-measure) one case's label against its image.

        Parameters
        ----------
        index : int
            Case position.

        Returns
        -------
        LabelCheck
            The alignment applied and the HU profiles.
        """
        from pancreas.alignment import check_label_alignment

        i = int(index) % len(self)
        key = str(self._paths[i])
        if key not in self._checks:
            self._checks[key] = check_label_alignment(
                self._images[i],
                load_volume(self._paths[i]),
                self._case_ids[i],
                alignment=self._alignments[i],
            )
        return self._checks[key]

    def _load(self, i: int) -> Volume:
        alignment = self._alignments[i]
        if alignment == "check":
            self.check(i)
        label = load_volume(self._paths[i])
        if alignment in ("check", "as-is"):
            return label
        from pancreas.alignment import apply_label_alignment

        return apply_label_alignment(label, alignment, self._case_ids[i])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, Integral) and not isinstance(index, bool):
            if not -len(self) <= index < len(self):
                raise IndexError(
                    f"case index {index} out of range for {len(self)} cases"
                )
            return self._load(int(index) % len(self))
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Volume]:
        for i in range(len(self)):
            yield self._load(i)

    def _subset(self, positions: Iterable[int]) -> LazyVolumes:
        positions = list(positions)
        return _AlignedLabels(
            [self._paths[i] for i in positions],
            [self._case_ids[i] for i in positions],
            images=self._images.take(positions),
            alignments=[self._alignments[i] for i in positions],
            checks=self._checks,
        )

    def __getstate__(self) -> Any:  # type: ignore[override]
        return (
            self._paths,
            self._case_ids,
            self._images,
            self._alignments,
            dict(self._checks),
        )

    def __setstate__(self, state: Any) -> None:  # type: ignore[override]
        (
            self._paths,
            self._case_ids,
            self._images,
            self._alignments,
            self._checks,
        ) = state


def _with_alignment(ds: Dataset, label_alignment: LabelAlignment | None) -> Dataset:
    """``ds`` with labels checked or aligned per ``label_alignment``."""
    from pancreas.alignment import parse_label_alignment

    if ds.labels is None:
        return ds
    alignments = parse_label_alignment(label_alignment, ds.case_ids)
    labels = _AlignedLabels(
        ds.labels.paths, ds.case_ids, images=ds.images, alignments=alignments
    )
    return Dataset(ds.images, labels, ds.case_ids, ds.name)


# ---------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------


def _permutation(n: int, random_state: Any) -> np.ndarray:
    """A permutation of ``range(n)`` drawn as scikit-learn would."""
    if isinstance(random_state, np.random.Generator):
        return random_state.permutation(n)
    from sklearn.utils import check_random_state

    return check_random_state(random_state).permutation(n)


@dataclass(frozen=True, repr=False)
class Dataset:
    """A cohort on disk: lazy CT images, optional lazy labels and case ids.

    Returned by the ``load_*`` functions of this module; ``images`` and
    ``labels`` are the ``X`` and ``y`` of the pipeline.

    Parameters
    ----------
    images : LazyVolumes
        CT volumes in Hounsfield units, one per case.
    labels : LazyVolumes or None, default=None
        Label volumes on the same grids (non-zero = pancreas), or None for an
        unlabelled cohort.
    case_ids : list of str, optional
        Case names, in order. Default: ``images.case_ids``.
    name : str, default="dataset"
        Name of the cohort, for reports.

    Examples
    --------
    >>> from pancreas.datasets import Dataset, LazyVolumes
    >>> ds = Dataset(LazyVolumes([f"ct/case{i}.nii.gz" for i in range(10)]))
    >>> train, val, test = ds.split(6, 1, 3, random_state=0)
    >>> len(train), len(val), len(test)
    (6, 1, 3)
    >>> test.case_ids
    ['case0', 'case3', 'case5']
    """

    images: LazyVolumes
    labels: LazyVolumes | None = None
    case_ids: list[str] = field(default=None)  # type: ignore[assignment]
    name: str = "dataset"

    def __post_init__(self) -> None:
        if not isinstance(self.images, LazyVolumes):
            object.__setattr__(self, "images", LazyVolumes(self.images))
        if self.labels is not None and not isinstance(self.labels, LazyVolumes):
            object.__setattr__(self, "labels", LazyVolumes(self.labels))
        case_ids = (
            self.images.case_ids if self.case_ids is None else list(self.case_ids)
        )
        if len(case_ids) != len(self.images):
            raise ValueError(
                f"{self.name}: {len(case_ids)} case ids for {len(self.images)} images"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(
                f"{self.name}: {len(self.labels)} labels for {len(self.images)} images"
            )
        object.__setattr__(self, "case_ids", [str(c) for c in case_ids])

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n = len(self)
        labelled = "labelled" if self.labels is not None else "unlabelled"
        return f"Dataset({self.name!r}, {n} {labelled} case{'s' * (n != 1)})"

    def subset(self, indices: Iterable[int], *, name: str | None = None) -> Dataset:
        """Return the cases at ``indices`` (in that order) as a new Dataset.

        Parameters
        ----------
        indices : iterable of int
            Case positions.
        name : str, optional
            Name of the new dataset. Default: this dataset's name.

        Returns
        -------
        Dataset
            Images, labels and case ids of the selected cases.
        """
        indices = [int(i) for i in indices]
        return Dataset(
            images=self.images.take(indices),
            labels=None if self.labels is None else self.labels.take(indices),
            case_ids=[self.case_ids[i] for i in indices],
            name=self.name if name is None else name,
        )

    def split(
        self,
        n_train: int,
        n_val: int = 0,
        n_test: int | None = None,
        random_state: Any = 0,
        *,
        shuffle: bool = True,
    ) -> tuple[Dataset, Dataset, Dataset]:
        """Split the cases into training, validation and test datasets.

        The paper's NIH Pancreas-CT protocol is ``split(60, 2, 20)``. The
        split depends only on the case order (natural order of the case ids)
        and ``random_state``, so it is the same on every machine.

        Parameters
        ----------
        n_train : int
            Number of training cases.
        n_val : int, default=0
            Number of validation cases.
        n_test : int or None, default=None
            Number of test cases. None: all the remaining cases.
        random_state : int, RandomState, Generator or None, default=0
            Seed of the shuffle (as in scikit-learn). None draws a fresh,
            irreproducible shuffle. Ignored when ``shuffle=False``.
        shuffle : bool, default=True
            If False, the first ``n_train`` cases train, the next ``n_val``
            validate and the next ``n_test`` test.

        Returns
        -------
        train, val, test : Dataset
            Disjoint subsets, each listing its cases in this dataset's order.
            Their names end in ``[train]``, ``[val]`` and ``[test]``.

        Raises
        ------
        ValueError
            If a size is negative or the sizes add up to more cases than
            there are.
        """
        n = len(self)
        sizes = {"n_train": n_train, "n_val": n_val}
        if n_test is not None:
            sizes["n_test"] = n_test
        for key, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
        if n_test is None:
            n_test = n - n_train - n_val
            if n_test < 0:
                raise ValueError(
                    f"{self.name}: n_train + n_val = {n_train + n_val} is more "
                    f"than the {n} cases"
                )
        total = n_train + n_val + n_test
        if total > n:
            raise ValueError(
                f"{self.name}: n_train + n_val + n_test = {total} is more than "
                f"the {n} cases"
            )
        order = _permutation(n, random_state) if shuffle else np.arange(n)
        bounds = np.cumsum([0, n_train, n_val, n_test])
        parts = []
        for part, (lo, hi) in zip(
            ("train", "val", "test"), pairwise(bounds), strict=True
        ):
            parts.append(
                self.subset(np.sort(order[lo:hi]), name=f"{self.name}[{part}]")
            )
        return parts[0], parts[1], parts[2]

    def verify_labels(self) -> dict[str, LabelCheck]:
        """Check every label against its image before training or evaluating.

        Loads each case once (image and label) and checks that the label is
        on the image's grid and that its HU profile fits the pancreas, as
        the case's ``label_alignment`` option says (see
        :func:`pancreas.alignment.check_label_alignment`). The verdicts are
        kept, so reading the labels afterwards does not load the images
        again. ``pancreas train`` and ``pancreas evaluate`` call this first.

        Returns
        -------
        dict of str to LabelCheck
            Per case id: the alignment applied and the HU profiles.

        Raises
        ------
        ValueError
            If the dataset has no labels.
        LabelAlignmentError
            If any label is refused: one message listing every refused case
            and why (misaligned, on another grid, wrong values), with the
            options that fix each.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from pancreas.io import save_volume
        >>> from pancreas.phantom import make_synthetic_ct
        >>> from pancreas.datasets import load_nifti_folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = pathlib.Path(tmp.name)
        >>> ct, label = make_synthetic_ct(shape=(64, 64, 12), random_state=0)
        >>> _ = save_volume(ct, folder / "case1_ct.nii.gz")
        >>> _ = save_volume(label, folder / "case1_seg.nii.gz")
        >>> checks = load_nifti_folder(folder).verify_labels()
        >>> checks["case1"].alignment
        'as-is'
        >>> tmp.cleanup()
        """
        from pancreas.alignment import LabelAlignmentError, check_label_alignment

        if self.labels is None:
            raise ValueError(f"{self.name}: no labels to verify")
        results: dict[str, LabelCheck] = {}
        refused: list[str] = []
        for i, case in enumerate(self.case_ids):
            try:
                if isinstance(self.labels, _AlignedLabels):
                    results[case] = self.labels.check(i)
                else:
                    results[case] = check_label_alignment(
                        self.images[i], self.labels[i], case
                    )
            except InvalidVolumeError as exc:
                refused.append(f"- {exc}")
        if refused:
            raise LabelAlignmentError(
                f"{self.name}: {len(refused)} of {len(self)} label(s) refused "
                "before training or evaluating:\n" + "\n".join(refused)
            )
        return results


# ---------------------------------------------------------------------------
# NIH Pancreas-CT
# ---------------------------------------------------------------------------


def _find_nih_root(root: Path) -> tuple[Path, list[Path]]:
    """The folder holding the ``PANCREAS_XXXX`` folders, and those folders."""

    def case_dirs(folder: Path) -> list[Path]:
        return [
            p
            for p in folder.iterdir()
            if p.is_dir() and not _is_hidden(p) and _NIH_CASE.match(p.name)
        ]

    cases = case_dirs(root)
    if cases:
        return root, cases
    # A TCIA download puts them one level down, in a 'Pancreas-CT' folder.
    nested = [
        (sub, found)
        for sub in sorted(root.iterdir())
        if sub.is_dir() and not _is_hidden(sub)
        for found in [case_dirs(sub)]
        if found
    ]
    if len(nested) == 1:
        return nested[0]
    raise DatasetLayoutError(
        f"no PANCREAS_XXXX case folders in {str(root)!r}; expected the NIH "
        "Pancreas-CT layout root/PANCREAS_0001/<study>/<series>/*.dcm"
        + (
            f" (several subfolders hold case folders: "
            f"{_format_list(s.name for s, _ in nested)}; pass one of them)"
            if nested
            else ""
        )
    )


def _dicom_series_folder(case_dir: Path) -> Path | str:
    """The single folder under ``case_dir`` holding .dcm files, or an error."""
    folders = sorted(
        {
            p.parent
            for p in case_dir.rglob("*")
            if p.suffix.lower() == ".dcm" and not _is_hidden(p) and p.is_file()
        }
    )
    if not folders:
        return f"{case_dir.name}: no .dcm files anywhere under {str(case_dir)!r}"
    if len(folders) > 1:
        rel = [str(f.relative_to(case_dir)) for f in folders]
        return (
            f"{case_dir.name}: {len(folders)} folders hold .dcm files, expected "
            f"one series: {_format_list(rel)}"
        )
    return folders[0]


def _nih_labels(folder: Path) -> dict[int, Path]:
    """``labelNNNN.nii.gz`` files in ``folder``, by case number."""
    labels: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _NIH_LABEL.match(path.name)
        if match and path.is_file() and not _is_hidden(path):
            number = int(match.group(1))
            if number in labels:
                raise DatasetLayoutError(
                    f"two label files for case {number} in {str(folder)!r}: "
                    f"{labels[number].name}, {path.name}"
                )
            labels[number] = path
    return labels


def load_nih_pancreas(
    root: PathType,
    *,
    labels: PathType | None = None,
    require_labels: bool = True,
    drop_duplicates: bool = False,
    label_alignment: LabelAlignment = "check",
) -> Dataset:
    """Find the NIH Pancreas-CT (TCIA) cohort on disk.

    The expected layout is the one TCIA downloads::

        root/PANCREAS_0001/<study folder>/<series folder>/1-001.dcm
        root/PANCREAS_0002/...
        labels/label0001.nii.gz
        labels/label0002.nii.gz

    Each case's CT is the single folder holding ``.dcm`` files anywhere
    under its ``PANCREAS_XXXX`` folder, however many folders deep. If
    ``root`` holds no ``PANCREAS_XXXX`` folder but exactly one of its
    subfolders does (TCIA's ``Pancreas-CT`` folder), that subfolder is used.
    ``labelNNNN.nii.gz`` matches the case with the same number; labels of
    cases that are not on disk are ignored.

    Parameters
    ----------
    root : str or PathLike
        Folder holding the ``PANCREAS_XXXX`` folders.
    labels : str or PathLike, optional
        Folder holding the ``labelNNNN.nii.gz`` files. Default: the first of
        ``root/TCIA_pancreas_labels-02-05-2017``, ``root`` and (if the cases
        were found in a subfolder of ``root``) that subfolder and its
        ``TCIA_pancreas_labels-02-05-2017`` folder that holds label files.
    require_labels : bool, default=True
        If True, every case must have a label. If False, a cohort without any
        label file is returned with ``labels=None``; a cohort where only some
        cases have labels is still an error.
    drop_duplicates : bool, default=False
        Leave out PANCREAS_0025 and PANCREAS_0070 when they are on disk (the
        82-case release): TCIA removed them in 2020 as scans of the same
        patient as PANCREAS_0002, so keeping them can put one patient in
        both the training and the test set.
    label_alignment : str or dict of str to str, default="check"
        What to do with each label before it is used, as a string for every
        case or a dict ``{case_id: option}`` (other cases: ``"check"``; the
        key ``"*"`` sets the default). ``"check"``: the first time a label is
        read, its HU profile is compared with its in-plane flips and
        transposes, and the read fails with a
        :class:`~pancreas.alignment.LabelAlignmentError` if another
        alignment is clearly more plausible; one
        of :data:`pancreas.alignment.ALIGNMENTS` (``"flip-y"``,
        ``"transpose"``, ...): apply it; ``"as-is"``: use the label as stored
        without the check. See :meth:`Dataset.verify_labels`.

    Returns
    -------
    Dataset
        Case ids ``'PANCREAS_0001'``, ... in natural order; images are DICOM
        series folders, labels NIfTI files (1 = pancreas).

    Raises
    ------
    DatasetLayoutError
        If ``root`` (or ``labels``) is missing, holds no case folders, a case
        has no DICOM series or several, or cases lack labels.

    See Also
    --------
    load_msd_pancreas, load_nifti_folder

    Notes
    -----
    Both releases load. The collection first held 82 cases (the paper's);
    in 2020 TCIA removed PANCREAS_0025 and PANCREAS_0070 as duplicates of
    PANCREAS_0002, so a download today has 80 case folders while the label
    archive still holds ``label0025`` and ``label0070``. Labels without a
    case folder are skipped with a note in the ``pancreas`` log (level
    INFO), not an error. With the 82-case release on disk, the duplicates are
    kept unless ``drop_duplicates=True``; a note says so. The paper split its
    82 cases 60/2/20 (see :meth:`Dataset.split` and :doc:`/reproduce`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pancreas.datasets import load_nih_pancreas
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = pathlib.Path(tmp.name)
    >>> series = root / "PANCREAS_0001" / "study" / "series"
    >>> series.mkdir(parents=True)
    >>> _ = (series / "1-001.dcm").write_bytes(b"")
    >>> ds = load_nih_pancreas(root, require_labels=False)
    >>> ds.case_ids, ds.labels is None
    (['PANCREAS_0001'], True)
    >>> tmp.cleanup()
    """
    root = _check_folder(root, "NIH Pancreas-CT")
    cases_root, case_dirs = _find_nih_root(root)
    case_dirs.sort(key=lambda p: _natural_key(p.name))

    numbers: dict[int, str] = {}
    problems: list[str] = []
    series: list[Path] = []
    for case_dir in case_dirs:
        number = int(_NIH_CASE.match(case_dir.name).group(1))  # type: ignore[union-attr]
        if number in numbers:
            problems.append(f"{case_dir.name}: same case number as {numbers[number]}")
        numbers[number] = case_dir.name
        found = _dicom_series_folder(case_dir)
        if isinstance(found, str):
            problems.append(found)
        else:
            series.append(found)
    if problems:
        raise DatasetLayoutError(
            f"NIH Pancreas-CT layout problems in {str(cases_root)!r} (expected "
            "PANCREAS_XXXX/<study>/<series>/*.dcm, one series per case): "
            + "; ".join(problems)
        )
    case_ids = [p.name for p in case_dirs]
    case_numbers = [int(_NIH_CASE.match(c).group(1)) for c in case_ids]  # type: ignore[union-attr]
    duplicates = [k for k in case_numbers if k in NIH_DUPLICATES]
    if duplicates:
        shown = ", ".join(f"PANCREAS_{k:04d}" for k in duplicates)
        if drop_duplicates:
            keep = [i for i, k in enumerate(case_numbers) if k not in duplicates]
            series = [series[i] for i in keep]
            case_ids = [case_ids[i] for i in keep]
            case_numbers = [case_numbers[i] for i in keep]
            log.info(
                "NIH Pancreas-CT: left out %s (drop_duplicates=True; TCIA "
                "removed them in 2020 as duplicates of PANCREAS_0002)",
                shown,
            )
        else:
            log.info(
                "NIH Pancreas-CT: %s on disk (the 82-case release); TCIA "
                "removed them in 2020 as duplicates of PANCREAS_0002: keep "
                "them and PANCREAS_0002 in one part of a split, or pass "
                "drop_duplicates=True",
                shown,
            )
    images = LazyVolumes(series, case_ids)
    name = "NIH Pancreas-CT"

    if labels is not None:
        label_dir = _check_folder(labels, "NIH Pancreas-CT labels")
        label_files = _nih_labels(label_dir)
        searched = [label_dir]
    else:
        candidates = [root / f for f in _NIH_LABEL_FOLDERS] + [root]
        if cases_root != root:
            candidates += [cases_root / f for f in _NIH_LABEL_FOLDERS] + [cases_root]
        searched = [c for c in candidates if c.is_dir()]
        label_dir, label_files = searched[0], {}
        for candidate in searched:
            found_labels = _nih_labels(candidate)
            if found_labels:
                label_dir, label_files = candidate, found_labels
                break

    if not label_files:
        if not require_labels:
            return Dataset(images, None, case_ids, name)
        raise DatasetLayoutError(
            "no NIH Pancreas-CT label files (labelNNNN.nii.gz) in "
            f"{_format_list(repr(str(s)) for s in searched)}; pass labels= the "
            "folder holding them, or require_labels=False for images only"
        )
    orphans = sorted(set(label_files) - set(case_numbers))
    if orphans:
        removed = [k for k in orphans if k in NIH_DUPLICATES]
        why = (
            " (TCIA removed PANCREAS_0025 and PANCREAS_0070 in 2020 as "
            "duplicates of PANCREAS_0002)"
            if removed
            else ""
        )
        log.info(
            "NIH Pancreas-CT: skipped %d label file(s) without a case folder: "
            "%s%s",
            len(orphans),
            _format_list(label_files[k].name for k in orphans),
            why,
        )
    missing = [
        c for c, k in zip(case_ids, case_numbers, strict=True) if k not in label_files
    ]
    if missing:
        raise DatasetLayoutError(
            f"{len(missing)} NIH Pancreas-CT case(s) have no label "
            f"labelNNNN.nii.gz in {str(label_dir)!r}: {_format_list(missing)}"
        )
    label_seq = LazyVolumes([label_files[k] for k in case_numbers], case_ids)
    return _with_alignment(Dataset(images, label_seq, case_ids, name), label_alignment)


# ---------------------------------------------------------------------------
# MSD Task07_Pancreas
# ---------------------------------------------------------------------------


def _read_msd_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetLayoutError(f"cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{str(path)!r} does not hold a JSON object")
    label_names = meta.get("labels")
    if label_names is not None:
        names = label_names.values() if isinstance(label_names, dict) else label_names
        if not any("pancreas" in str(v).lower() for v in names):
            raise DatasetLayoutError(
                f"{str(path)!r}: its labels {label_names!r} do not mention "
                "pancreas; is this the MSD Task07_Pancreas folder?"
            )
    return meta


def _msd_entry_path(root: Path, entry: Any, where: str) -> Path:
    if not isinstance(entry, str) or not entry:
        raise DatasetLayoutError(f"{where}: expected a file path, got {entry!r}")
    return root / entry  # pathlib drops the "./"; an absolute entry wins


def load_msd_pancreas(
    root: PathType,
    *,
    subset: str = "training",
    label_alignment: LabelAlignment = "check",
) -> Dataset:
    """Find the Medical Segmentation Decathlon ``Task07_Pancreas`` cohort.

    The expected layout is the one the Decathlon ships::

        Task07_Pancreas/dataset.json
        Task07_Pancreas/imagesTr/pancreas_001.nii.gz
        Task07_Pancreas/labelsTr/pancreas_001.nii.gz
        Task07_Pancreas/imagesTs/pancreas_002.nii.gz

    When ``dataset.json`` is present its ``"training"`` list (pairs
    ``{"image": "./imagesTr/...", "label": "./labelsTr/..."}``) or
    ``"test"`` list names the files, and its ``"labels"`` must mention
    pancreas. Without it (or without the list), the ``imagesTr`` and
    ``labelsTr`` files are paired by name. macOS ``._`` files are ignored.

    Parameters
    ----------
    root : str or PathLike
        The ``Task07_Pancreas`` folder.
    subset : {"training", "test"}, default="training"
        ``"training"``: the labelled cases. ``"test"``: the unlabelled
        ``imagesTs`` cases (``labels`` is None).
    label_alignment : str or dict of str to str, default="check"
        What to do with each label before it is used, as a string for every
        case or a dict ``{case_id: option}`` (other cases: ``"check"``; the
        key ``"*"`` sets the default). ``"check"``: the first time a label is
        read, its HU profile is compared with its in-plane flips and
        transposes, and the read fails with a
        :class:`~pancreas.alignment.LabelAlignmentError` if another
        alignment is clearly more plausible; one
        of :data:`pancreas.alignment.ALIGNMENTS` (``"flip-y"``,
        ``"transpose"``, ...): apply it; ``"as-is"``: use the label as stored
        without the check. See :meth:`Dataset.verify_labels`.

    Returns
    -------
    Dataset
        Case ids ``'pancreas_001'``, ... in natural order.

    Raises
    ------
    DatasetLayoutError
        If ``root`` is missing, ``dataset.json`` is unreadable or not about
        the pancreas, a listed file is missing, or images and labels do not
        pair up.

    See Also
    --------
    load_nih_pancreas, load_nifti_folder

    Notes
    -----
    MSD labels are 0 background, 1 pancreas, 2 tumour. Both 1 and 2 count
    as pancreas downstream (non-zero = pancreas) and in the HU check; the
    label volumes are returned unchanged, so the tumour stays available.
    MSD images and labels share a grid up to the rounding of their float32
    NIfTI headers, which the pipeline's grid check tolerates.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pancreas.datasets import load_msd_pancreas
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = pathlib.Path(tmp.name)
    >>> for sub in ("imagesTr", "labelsTr"):
    ...     (root / sub).mkdir()
    ...     _ = (root / sub / "pancreas_001.nii.gz").write_bytes(b"")
    >>> load_msd_pancreas(root).case_ids
    ['pancreas_001']
    >>> tmp.cleanup()
    """
    if subset not in ("training", "test"):
        raise ValueError(f"subset must be 'training' or 'test', got {subset!r}")
    root = _check_folder(root, "MSD Task07_Pancreas")
    name = (
        "MSD Task07_Pancreas" if subset == "training" else "MSD Task07_Pancreas[test]"
    )
    json_path = root / "dataset.json"
    meta = _read_msd_json(json_path) if json_path.is_file() else {}
    entries = meta.get(subset)

    if entries:
        if not isinstance(entries, list):
            raise DatasetLayoutError(
                f"{str(json_path)!r}: {subset!r} must be a list, got "
                f"{type(entries).__name__}"
            )
        images: list[Path] = []
        labels: list[Path] = []
        for k, entry in enumerate(entries):
            where = f"{json_path}: {subset}[{k}]"
            if subset == "test":
                image = entry.get("image") if isinstance(entry, dict) else entry
                images.append(_msd_entry_path(root, image, where))
                continue
            if (
                not isinstance(entry, dict)
                or "image" not in entry
                or "label" not in entry
            ):
                raise DatasetLayoutError(
                    f"{where}: expected {{'image': ..., 'label': ...}}, got {entry!r}"
                )
            images.append(_msd_entry_path(root, entry["image"], where))
            labels.append(_msd_entry_path(root, entry["label"], where))
        missing = [p for p in [*images, *labels] if not p.is_file()]
        if missing:
            raise DatasetLayoutError(
                f"{len(missing)} file(s) listed in {str(json_path)!r} are missing: "
                + _format_list(
                    str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
                    for p in missing
                )
            )
        case_ids = [_nifti_stem(p) or p.name for p in images]
        order = sorted(range(len(images)), key=lambda i: _natural_key(case_ids[i]))
        try:
            image_seq = LazyVolumes(
                [images[i] for i in order], [case_ids[i] for i in order]
            )
        except ValueError as exc:
            raise DatasetLayoutError(f"{str(json_path)!r}: {exc}") from exc
        label_seq = (
            LazyVolumes([labels[i] for i in order], image_seq.case_ids)
            if labels
            else None
        )
        return _with_alignment(
            Dataset(image_seq, label_seq, image_seq.case_ids, name), label_alignment
        )

    # No dataset.json (or no list in it): pair the folders by file name.
    if subset == "test":
        folder = root / "imagesTs"
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"no imagesTs folder in {str(root)!r} and no 'test' list in a "
                "dataset.json; expected the MSD Task07_Pancreas layout"
            )
        ds = load_nifti_folder(folder)
        return Dataset(ds.images, None, ds.case_ids, name)
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    absent = [d.name for d in (images_dir, labels_dir) if not d.is_dir()]
    if absent:
        raise DatasetLayoutError(
            f"{str(root)!r} has no {' or '.join(absent)} folder and no "
            "dataset.json training list; expected the MSD Task07_Pancreas "
            "layout imagesTr/pancreas_001.nii.gz, labelsTr/pancreas_001.nii.gz"
        )
    ds = load_nifti_folder(images_dir, labels_dir, label_alignment=label_alignment)
    if ds.labels is None:
        raise DatasetLayoutError(
            f"no label files in {str(labels_dir)!r}; expected "
            "labelsTr/pancreas_001.nii.gz"
        )
    return Dataset(ds.images, ds.labels, ds.case_ids, name)


# ---------------------------------------------------------------------------
# any folder of NIfTI pairs
# ---------------------------------------------------------------------------


def _index_by_stem(
    files: Iterable[tuple[str, Path]], folder: Path, what: str
) -> dict[str, Path]:
    """Map stems to files, failing on two files with the same stem."""
    by_stem: dict[str, Path] = {}
    clashes: list[str] = []
    for stem, path in files:
        if stem in by_stem:
            clashes.append(f"{by_stem[stem].name} and {path.name} -> {stem!r}")
        else:
            by_stem[stem] = path
    if clashes:
        raise DatasetLayoutError(
            f"{what} files in {str(folder)!r} share a case name once their "
            f"suffixes are stripped: {_format_list(clashes)}"
        )
    return by_stem


def load_nifti_folder(
    images: PathType,
    labels: PathType | None = None,
    *,
    image_suffix: str | None = None,
    label_suffix: str | None = None,
    label_alignment: LabelAlignment = "check",
) -> Dataset:
    """Pair CT and label NIfTI files in one or two folders by case name.

    The case name of a file is its name without the ``.nii``/``.nii.gz``
    extension and without one known suffix: ``_0000`` (nnU-Net), ``_ct``,
    ``_image``, ``_img`` for images; ``_seg``, ``_label``, ``_mask``,
    ``_gt`` for labels (case-insensitive). Images and labels with the same
    case name form a case. So all of these pair up::

        images/case1.nii.gz         labels/case1.nii.gz        (two folders)
        imagesTr/case1_0000.nii.gz  labelsTr/case1.nii.gz      (nnU-Net)
        folder/case1_ct.nii.gz      folder/case1_seg.nii.gz    (one folder)
        folder/case1.nii.gz         folder/case1_label.nii.gz  (one folder)

    With one folder (``labels=None``), files whose names end in a label
    suffix are labels and the others images. Hidden files (``.*``, macOS
    ``._*``) are ignored.

    Parameters
    ----------
    images : str or PathLike
        Folder of CT NIfTI files (and, if ``labels`` is None, maybe labels).
    labels : str or PathLike, optional
        Folder of label NIfTI files. Every file there is a label.
    image_suffix : str, optional
        The one suffix image files end with, e.g. ``"_0000"``. When given,
        only files ending with it are images, and the known image suffixes
        are not used.
    label_suffix : str, optional
        The one suffix label files end with, e.g. ``"_seg"``. When given,
        only files ending with it are labels (in a separate labels folder,
        files without it are ignored).
    label_alignment : str or dict of str to str, default="check"
        What to do with each label before it is used, as a string for every
        case or a dict ``{case_id: option}`` (other cases: ``"check"``; the
        key ``"*"`` sets the default). ``"check"``: the first time a label is
        read, its HU profile is compared with its in-plane flips and
        transposes, and the read fails with a
        :class:`~pancreas.alignment.LabelAlignmentError` if another
        alignment is clearly more plausible; one
        of :data:`pancreas.alignment.ALIGNMENTS` (``"flip-y"``,
        ``"transpose"``, ...): apply it; ``"as-is"``: use the label as stored
        without the check. See :meth:`Dataset.verify_labels`.

    Returns
    -------
    Dataset
        Case ids in natural order. ``labels`` is None when no label file is
        found at all.

    Raises
    ------
    DatasetLayoutError
        If a folder is missing or holds no NIfTI image, two files give the
        same case name, or some images or labels have no partner (the error
        lists them).

    See Also
    --------
    load_msd_pancreas, load_nih_pancreas

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pancreas.datasets import load_nifti_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(tmp.name)
    >>> for name in ["case2_ct", "case2_seg", "case10_ct", "case10_seg"]:
    ...     _ = (folder / f"{name}.nii.gz").write_bytes(b"")
    >>> ds = load_nifti_folder(folder)
    >>> ds.case_ids
    ['case2', 'case10']
    >>> [p.name for p in ds.labels.paths]
    ['case2_seg.nii.gz', 'case10_seg.nii.gz']
    >>> tmp.cleanup()
    """
    image_dir = _check_folder(images, "images")
    image_suffix = _clean_suffix(image_suffix)
    label_suffix = _clean_suffix(label_suffix)
    image_suffixes = (image_suffix,) if image_suffix else IMAGE_SUFFIXES
    label_suffixes = (label_suffix,) if label_suffix else LABEL_SUFFIXES

    label_dir = None if labels is None else _check_folder(labels, "labels")
    if label_dir is not None and label_dir.resolve() == image_dir.resolve():
        label_dir = None  # the same folder twice: one-folder mode
    image_files = _list_nifti(image_dir)

    def image_entries(files: Iterable[Path]) -> Iterator[tuple[str, Path]]:
        for path in files:
            stem, stripped = _strip_suffix(_nifti_stem(path) or "", image_suffixes)
            if image_suffix is None or stripped:
                yield stem, path

    def label_entries(files: Iterable[Path]) -> Iterator[tuple[str, Path]]:
        for path in files:
            stem, stripped = _strip_suffix(_nifti_stem(path) or "", label_suffixes)
            if label_suffix is None or stripped:
                yield stem, path

    if label_dir is None:
        is_label = {
            p
            for p in image_files
            if _strip_suffix(_nifti_stem(p) or "", label_suffixes)[1]
        }
        label_files = [p for p in image_files if p in is_label]
        image_files = [p for p in image_files if p not in is_label]
        labels_where = image_dir
    else:
        label_files = _list_nifti(label_dir)
        labels_where = label_dir
    image_by_stem = _index_by_stem(image_entries(image_files), image_dir, "image")
    label_by_stem = _index_by_stem(label_entries(label_files), labels_where, "label")

    if not image_by_stem:
        expected = f"*{image_suffix}.nii.gz" if image_suffix else "*.nii.gz / *.nii"
        raise DatasetLayoutError(
            f"no NIfTI image files ({expected}) in {str(image_dir)!r}"
        )
    name = image_dir.name
    case_ids = sorted(image_by_stem, key=_natural_key)
    image_seq = LazyVolumes([image_by_stem[c] for c in case_ids], case_ids)
    if not label_by_stem:
        if label_dir is not None:
            expected = f"*{label_suffix}.nii.gz" if label_suffix else "*.nii.gz / *.nii"
            raise DatasetLayoutError(
                f"no NIfTI label files ({expected}) in {str(label_dir)!r}"
            )
        return Dataset(image_seq, None, case_ids, name)

    ds = _paired_dataset(
        image_by_stem,
        label_by_stem,
        str(image_dir),
        str(labels_where),
        name,
        hint=f"Images and labels pair up by name once the suffixes "
        f"{_format_list(image_suffixes)} (images) and "
        f"{_format_list(label_suffixes)} (labels) are stripped; pass "
        "image_suffix= / label_suffix= for other names",
    )
    return _with_alignment(ds, label_alignment)


def _paired_dataset(
    image_by_stem: dict[str, Path],
    label_by_stem: dict[str, Path],
    images_where: str,
    labels_where: str,
    name: str,
    *,
    hint: str,
) -> Dataset:
    """Images and labels paired by case name; lists any without a partner."""
    case_ids = sorted(image_by_stem, key=_natural_key)
    lonely_images = [image_by_stem[c].name for c in case_ids if c not in label_by_stem]
    lonely_labels = sorted(
        (label_by_stem[c].name for c in label_by_stem if c not in image_by_stem),
        key=_natural_key,
    )
    if lonely_images or lonely_labels:
        parts = []
        if lonely_images:
            parts.append(
                f"{len(lonely_images)} image(s) in {images_where!r} without a "
                f"label: {_format_list(lonely_images)}"
            )
        if lonely_labels:
            parts.append(
                f"{len(lonely_labels)} label(s) in {labels_where!r} without "
                f"an image: {_format_list(lonely_labels)}"
            )
        raise DatasetLayoutError("; ".join(parts) + ". " + hint)
    image_seq = LazyVolumes([image_by_stem[c] for c in case_ids], case_ids)
    label_seq = LazyVolumes([label_by_stem[c] for c in case_ids], case_ids)
    return Dataset(image_seq, label_seq, case_ids, name)


def _glob_nifti(pattern: str, what: str) -> list[Path]:
    files = [
        Path(p)
        for p in sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        if _nifti_stem(Path(p)) is not None
        and Path(p).is_file()
        and not _is_hidden(Path(p))
    ]
    if not files:
        raise DatasetLayoutError(
            f"no NIfTI {what} files (.nii / .nii.gz) match {pattern!r}; check the "
            "pattern (quote it so that the shell does not expand it)"
        )
    return files


def load_nifti_glob(
    images: str,
    labels: str | None = None,
    *,
    label_alignment: LabelAlignment = "check",
) -> Dataset:
    """Pair CT and label NIfTI files given by two glob patterns, by case name.

    Case names are file names without the extension and without one known
    suffix (``_0000``, ``_ct``, ``_image``, ``_img`` for images; ``_seg``,
    ``_label``, ``_mask``, ``_gt`` for labels), as in
    :func:`load_nifti_folder`. ``**`` matches folders recursively.

    Parameters
    ----------
    images : str
        Glob pattern of the CT files, e.g. ``"data/*_ct.nii.gz"``.
    labels : str, optional
        Glob pattern of the label files; None gives an unlabelled dataset.
    label_alignment : str or dict of str to str, default="check"
        What to do with each label before it is used, as a string for every
        case or a dict ``{case_id: option}`` (other cases: ``"check"``; the
        key ``"*"`` sets the default). ``"check"``: the first time a label is
        read, its HU profile is compared with its in-plane flips and
        transposes, and the read fails with a
        :class:`~pancreas.alignment.LabelAlignmentError` if another
        alignment is clearly more plausible; one
        of :data:`pancreas.alignment.ALIGNMENTS` (``"flip-y"``,
        ``"transpose"``, ...): apply it; ``"as-is"``: use the label as stored
        without the check. See :meth:`Dataset.verify_labels`.

    Returns
    -------
    Dataset
        Case ids in natural order.

    Raises
    ------
    DatasetLayoutError
        If a pattern matches no NIfTI file, two files give the same case
        name, or some images or labels have no partner.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pancreas.datasets import load_nifti_glob
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(tmp.name)
    >>> for name in ["a_ct", "a_seg", "b_ct", "b_seg"]:
    ...     _ = (folder / f"{name}.nii.gz").write_bytes(b"")
    >>> ds = load_nifti_glob(f"{folder}/*_ct.nii.gz", f"{folder}/*_seg.nii.gz")
    >>> ds.case_ids, ds.labels.paths[1].name
    (['a', 'b'], 'b_seg.nii.gz')
    >>> tmp.cleanup()
    """
    image_files = _glob_nifti(images, "image")

    def stems(files: list[Path], suffixes: Sequence[str]) -> Iterator[tuple[str, Path]]:
        for path in files:
            yield _strip_suffix(_nifti_stem(path) or "", suffixes)[0], path

    image_by_stem = _index_by_stem(
        stems(image_files, IMAGE_SUFFIXES), Path(images), "image"
    )
    name = Path(os.path.commonpath([p.parent for p in image_files])).name or "dataset"
    if labels is None:
        case_ids = sorted(image_by_stem, key=_natural_key)
        seq = LazyVolumes([image_by_stem[c] for c in case_ids], case_ids)
        return Dataset(seq, None, case_ids, name)
    label_files = _glob_nifti(labels, "label")
    label_by_stem = _index_by_stem(
        stems(label_files, LABEL_SUFFIXES), Path(labels), "label"
    )
    ds = _paired_dataset(
        image_by_stem,
        label_by_stem,
        images,
        labels,
        name,
        hint="Images and labels pair up by file name once the extension and a "
        f"suffix ({_format_list(IMAGE_SUFFIXES)} for images, "
        f"{_format_list(LABEL_SUFFIXES)} for labels) are stripped",
    )
    return _with_alignment(ds, label_alignment)
