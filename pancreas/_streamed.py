"""The streamed fit of the paper's pipeline: one case at a time, through disk.

:meth:`pancreas.pipeline.Pipeline.fit` runs this for the paper's four stages
(``SuperpixelGenerator``, ``RFCascade``, ``SuperpixelConvNet``,
``GaussianRefiner``). Each case is loaded, superpixelised and described by
the cascade's features once; all of it is written to the work folder
(:mod:`pancreas._store`) and the case is dropped. The forests are then
trained from subsampled rows read back case by case, the ConvNet from
patches cropped from the CT files on disk as training goes, and the refiner
from one case at a time. Resident memory is one case plus the training
tables, whatever the number of cases.

Everything is keyed by content and parameters, so a rerun with the same
work folder reuses every complete case, the fitted forests and the ConvNet's
last completed epoch, and recomputes whatever changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pancreas._parallel import local_threads, parallel_map
from pancreas._store import (
    DiskVolume,
    WorkFolder,
    cached,
    compact_ct,
    hash_arrays,
    hash_params,
    smallest_label_dtype,
)
from pancreas.cascade import FEATURES_VERSION
from pancreas.io import Volume, _file_stamp
from pancreas.record import CanonicalLabel, CaseRecord, record_at

__all__ = ["can_stream", "streamed_fit"]

logger = logging.getLogger("pancreas")

#: Parameters that do not change what a stage computes.
# working_spacing changes the CT a case entry holds, so the case key (a hash
# of that CT) already tells working grids apart
_NOT_RESULTS = {"n_jobs", "verbose", "check_hu", "check_spacing", "working_spacing"}


def can_stream(pipeline: Any) -> bool:
    """Whether ``pipeline`` is the paper's four stages, which fit streamed."""
    from pancreas.cascade import RFCascade
    from pancreas.convnet import SuperpixelConvNet
    from pancreas.refine import GaussianRefiner
    from pancreas.superpixels import SuperpixelGenerator

    kinds = (SuperpixelGenerator, RFCascade, SuperpixelConvNet, GaussianRefiner)
    steps = [est for _, est in pipeline.steps]
    return len(steps) == 4 and all(
        isinstance(est, kind) for est, kind in zip(steps, kinds, strict=True)
    )


def _params_key(est: Any, **extra: Any) -> str:
    params = {
        k: v for k, v in est.get_params(deep=False).items() if k not in _NOT_RESULTS
    }
    return hash_params({"class": type(est).__name__, **params, **extra})


# --------------------------------------------------------------------------- #
# Per-case entries
# --------------------------------------------------------------------------- #
def _input_path(X: Any, index: int) -> Any:
    """The path of case ``index`` when ``X`` holds paths, without reading it."""
    paths = getattr(X, "paths", None)  # pancreas.datasets.LazyVolumes
    if paths is not None:
        return paths[index]
    if isinstance(X, list | tuple) and isinstance(X[index], str | os.PathLike):
        return X[index]
    return None


def _file_identity(item: Any) -> str | None:
    """Path, size, modification time and inode of a file or DICOM folder input."""
    if not isinstance(item, str | os.PathLike):
        return None
    path = Path(item)
    return hash_params({"path": str(path.resolve()), "stamp": _file_stamp(path)})


class _CaseStore:
    """The per-case entries of one work folder for given stage parameters."""

    def __init__(self, folder: WorkFolder, superpixels: Any, cascade: Any) -> None:
        self.folder = folder
        self.superpixels = superpixels
        self.cascade = cascade
        self.sp_key = "sp-" + _params_key(superpixels)
        # the features depend on these alone, not on the forests' parameters
        features = {
            "grid_spacing": float(cascade.grid_spacing),
            "hu_window": [float(v) for v in cascade.hu_window],
            "version": FEATURES_VERSION,
        }
        if cascade.map_spacing is not None:  # None: the keys made before it
            features["map_spacing"] = float(cascade.map_spacing)
        self.cf_key = "cf-" + hash_params(features)

    # -- names -------------------------------------------------------------
    def case_dir(self, key: str) -> str:
        return f"cases/{key}"

    def sp_dir(self, key: str) -> str:
        return f"cases/{key}/{self.sp_key}"

    def cf_dir(self, key: str) -> str:
        return f"cases/{key}/{self.sp_key}/{self.cf_key}"

    # -- writing -----------------------------------------------------------
    def prepare(
        self, X: Any, y: Any, index: int, counter: dict
    ) -> tuple[str, str]:
        """Write case, superpixels and features of ``X[index]``; (key, case id).

        A file input whose path, size and modification time (and its
        label's) are those of a complete entry is not even read again.
        """
        identity = _file_identity(_input_path(X, index))
        if identity is not None and y is not None:
            label_identity = _file_identity(_input_path(y, index))
            identity = None if label_identity is None else f"{identity}+{label_identity}"
        working_spacing = self.superpixels.working_spacing
        if identity is not None and working_spacing is not None:
            identity = hash_params({"input": identity, "working": working_spacing})
        # one small file per input identity: safe with concurrent workers
        known = self.folder.read_json(f"inputs/{identity}.json") if identity else None
        if known is not None and self.folder.complete(self.cf_dir(known["key"])):
            counter["cases reused"] = counter.get("cases reused", 0) + 1
            return known["key"], known["case_id"]
        label = None if y is None else y[index]
        rec = record_at(X, index)
        rec = CaseRecord(
            case_id=rec.case_id,
            volume=rec.volume,
            native_affine=rec.native_affine,
            native_shape=rec.native_shape,
            ornt=rec.ornt,
        ).on_working_grid(working_spacing)
        lab = None if label is None else rec.label_array(label)
        key = hash_arrays(
            rec.volume.array,
            rec.volume.affine,
            rec.native_affine,
            np.asarray(rec.native_shape),
            np.zeros(0) if lab is None else lab,
        )
        if self.folder.complete(self.cf_dir(key)):
            counter["cases reused"] = counter.get("cases reused", 0) + 1
        else:
            self._write(rec, lab, key, counter)
        if identity:
            self.folder.write_json(
                f"inputs/{identity}.json", {"key": key, "case_id": rec.case_id}
            )
        return key, rec.case_id

    def _write(
        self, rec: CaseRecord, lab: NDArray[np.bool_] | None, key: str, counter: dict
    ) -> None:
        def write_case(tmp: Path) -> None:
            DiskVolume.write(tmp / "volume.npy", compact_ct(rec.volume.array))
            if lab is not None:
                np.save(tmp / "label.npy", lab)
            meta = {
                "case_id": rec.case_id,
                "affine": np.asarray(rec.volume.affine).tolist(),
                "native_affine": np.asarray(rec.native_affine).tolist(),
                "native_shape": list(rec.native_shape),
                "ornt": np.asarray(rec.ornt).tolist(),
                "source": rec.volume.source,
                "spacing": [float(v) for v in rec.spacing],
                "zoom": [int(v) for v in rec.zoom],
                "written_by": {"pid": os.getpid(), "host": socket.gethostname()},
            }
            (tmp / "meta.json").write_text(json.dumps(meta))

        def write_superpixels(tmp: Path) -> None:
            done = self.superpixels._transform_one(rec)
            sp = np.asarray(done.superpixels)
            np.save(tmp / "superpixels.npy", sp.astype(smallest_label_dtype(sp.max())))
            np.save(tmp / "body_mask.npy", np.asarray(done.body_mask, dtype=bool))

        def write_features(tmp: Path) -> None:
            # the CT in memory equals the one on disk (int16 only where exact)
            sp_dir = self.folder.path(self.sp_dir(key))
            full = dataclasses.replace(
                rec,
                superpixels=self.superpixel_array(key),
                body_mask=np.load(sp_dir / "body_mask.npy"),
            )
            _save_features(tmp, self.cascade._case_features(full))

        # the case entry holds the case id of the first run that wrote it
        cached(self.folder, self.case_dir(key), write_case, counter, "case files")
        cached(self.folder, self.sp_dir(key), write_superpixels, counter, "superpixels")
        cached(self.folder, self.cf_dir(key), write_features, counter, "features")

    # -- reading -----------------------------------------------------------
    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.folder.path(self.case_dir(key)) / "meta.json").read_text())

    def disk_volume(self, key: str) -> DiskVolume:
        return DiskVolume(self.folder.path(self.case_dir(key)) / "volume.npy")

    def label(self, key: str) -> NDArray[np.bool_]:
        return np.load(self.folder.path(self.case_dir(key)) / "label.npy")

    def superpixel_array(self, key: str) -> NDArray[np.int32]:
        sp = np.load(self.folder.path(self.sp_dir(key)) / "superpixels.npy")
        return sp.astype(np.int32)

    def features(self, key: str) -> Any:
        return _load_features(self.folder.path(self.cf_dir(key)))

    def record(self, key: str, name: str | None = None) -> CaseRecord:
        """The case's record with its superpixels, rebuilt from disk."""
        meta = self.meta(key)
        hu = self.disk_volume(key).read().astype(np.float32)
        sp_dir = self.folder.path(self.sp_dir(key))
        rec = CaseRecord(
            case_id=name or meta["case_id"],
            volume=Volume(hu, np.asarray(meta["affine"]), meta["source"]),
            native_affine=np.asarray(meta["native_affine"]),
            native_shape=tuple(meta["native_shape"]),
            ornt=np.asarray(meta["ornt"]),
            zoom=tuple(meta.get("zoom", (1, 1))),
        )
        if (sp_dir / "superpixels.npy").is_file():
            rec.superpixels = self.superpixel_array(key)
            rec.body_mask = np.load(sp_dir / "body_mask.npy")
        return rec


def _save_features(folder: Path, cf: Any) -> None:
    geom = cf.geom
    meta = {
        "box": [[int(b.start), int(b.stop)] for b in geom.box],
        "z_range": [int(v) for v in geom.z_range],
        "steps": [int(v) for v in geom.steps],
        "coarse_shape": [int(v) for v in geom.coarse_shape],
        "spacing": [float(v) for v in geom.spacing],
    }
    (folder / "geometry.json").write_text(json.dumps(meta))
    slices = sorted(cf.level2_image)
    arrays = {
        "spine": geom.spine,
        "a": cf.a,
        "b": cf.b,
        "k": cf.k,
        "level1": cf.level1,
        "level2_z": np.concatenate(
            [np.full(len(cf.level2_image[z][0]), z, np.int64) for z in slices]
            or [np.zeros(0, np.int64)]
        ),
    }
    if slices:
        arrays["level2_labels"] = np.concatenate([cf.level2_image[z][0] for z in slices])
        arrays["level2_feats"] = np.concatenate([cf.level2_image[z][1] for z in slices])
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)


def _load_features(folder: Path) -> Any:
    from pancreas.cascade import _CaseFeatures, _Geometry

    meta = json.loads((folder / "geometry.json").read_text())
    box = tuple(slice(a, b) for a, b in meta["box"])
    geom = _Geometry(
        box,
        tuple(meta["z_range"]),
        tuple(meta["steps"]),
        tuple(meta["coarse_shape"]),
        tuple(meta["spacing"]),
        np.load(folder / "spine.npy"),
    )
    z = np.load(folder / "level2_z.npy")
    image2: dict[int, tuple[NDArray[Any], NDArray[np.float32]]] = {}
    if z.size:
        labels = np.load(folder / "level2_labels.npy")
        feats = np.load(folder / "level2_feats.npy")
        starts = np.flatnonzero(np.diff(z, prepend=-1))
        ends = np.append(starts[1:], z.size)
        for s, e in zip(starts, ends, strict=True):
            image2[int(z[s])] = (labels[s:e], feats[s:e])
    return _CaseFeatures(
        geom,
        np.load(folder / "a.npy"),
        np.load(folder / "b.npy"),
        np.load(folder / "k.npy"),
        np.load(folder / "level1.npy"),
        image2,
    )


class _StoredCases:
    """The training cases of the cascade, read from the work folder."""

    def __init__(self, store: _CaseStore, keys: list[str], names: list[str]) -> None:
        self.store, self.keys, self.names = store, keys, names

    def __len__(self) -> int:
        return len(self.keys)

    def case_id(self, i: int) -> str:
        return self.names[i]

    def features(self, i: int, level2: bool = True) -> Any:
        return self.store.features(self.keys[i])

    def superpixels(self, i: int) -> NDArray[Any]:
        return self.store.superpixel_array(self.keys[i])

    def label(self, i: int) -> NDArray[np.bool_]:
        return self.store.label(self.keys[i])


class _LazyRecords:
    """Records with the cascade's and the ConvNet's outputs, built on indexing."""

    def __init__(
        self, store: _CaseStore, fitted: _FittedCases, keys: list[str], names: list[str]
    ) -> None:
        self.store, self.fitted, self.keys, self.names = store, fitted, keys, names

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> CaseRecord:
        key = self.keys[i]
        rec = self.store.record(key, self.names[i])
        sp_proba, candidates = self.fitted.candidates(key)
        rec.sp_proba, rec.candidates = sp_proba, candidates
        rec.convnet_proba = self.fitted.convnet._predict_record(rec)
        return rec


class _FittedCases:
    """Per-case outputs of the fitted cascade, cached under the fit's folder."""

    def __init__(self, store: _CaseStore, fit_dir: str, convnet: Any) -> None:
        self.store, self.fit_dir, self.convnet = store, fit_dir, convnet

    def _dir(self, key: str) -> str:
        return f"{self.fit_dir}/cases/{key}"

    def compute(self, key: str, name: str, counter: dict) -> None:
        """Write the case's p_RF, candidates, boxes and targets if missing."""

        def write(tmp: Path) -> None:
            cascade = self.store.cascade
            sp = self.store.superpixel_array(key)
            proba = cascade._proba_from_features(self.store.features(key), sp, name)
            candidates = np.flatnonzero(proba > cascade.threshold).astype(np.int32)
            np.save(tmp / "sp_proba.npy", proba)
            np.save(tmp / "candidates.npy", candidates)
            spacing = tuple(self.store.meta(key)["spacing"])
            boxes, target = self.convnet._training_rows(
                sp, candidates, spacing, name, self.store.label(key)
            )
            np.save(tmp / "boxes.npy", boxes)
            np.save(tmp / "target.npy", target)

        cached(self.store.folder, self._dir(key), write, counter, "candidates")

    def candidates(self, key: str) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
        where = self.store.folder.path(self._dir(key))
        return np.load(where / "sp_proba.npy"), np.load(where / "candidates.npy")

    def table(self, key: str) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
        where = self.store.folder.path(self._dir(key))
        return np.load(where / "boxes.npy"), np.load(where / "target.npy")


# --------------------------------------------------------------------------- #
# The driver
# --------------------------------------------------------------------------- #
def _prepare_one(
    index: int, X: Any, y: Any, store: _CaseStore
) -> tuple[str, str, dict[str, int]]:
    """Task: write one case's entries (runs on a Dask worker if configured)."""
    counter: dict[str, int] = {}
    with local_threads():
        key, name = store.prepare(X, y, index, counter)
    return key, name, counter


def _prepare(
    X: Any, y: Any, store: _CaseStore, verbose: int, desc: str, counter: dict
) -> tuple[list[str], list[str]]:
    n = _check_cases(X)
    results = parallel_map(
        _prepare_one, range(n), verbose=verbose, desc=desc, args=(X, y, store)
    )
    for _, _, c in results:
        for k, v in c.items():
            counter[k] = counter.get(k, 0) + v
    return [r[0] for r in results], [r[1] for r in results]


def _check_cases(X: Any) -> int:
    """Number of cases; refuses what :func:`~pancreas.record.as_records` refuses.

    The labels were checked against the cases (present, same number) by
    :func:`pancreas._checks.check_fit_inputs` before any stage ran.
    """
    from pancreas.exceptions import InvalidVolumeError
    from pancreas.record import check_sequence

    check_sequence(X)
    if len(X) == 0:
        raise InvalidVolumeError("X is empty: pass at least one training case")
    return len(X)


@contextlib.contextmanager
def _work_folder(work_dir: Any) -> Any:
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="pancreas-fit-")
        try:
            yield WorkFolder(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        folder = WorkFolder(os.fspath(work_dir))
        folder.remove_temporaries()
        yield folder


def streamed_fit(
    pipeline: Any, X: Any, y: Any, X_val: Any, y_val: Any, work_dir: Any
) -> dict[str, int]:
    """Fit the paper's four stages case by case; returns what was reused.

    See the module docstring. The returned counts say, per kind of entry
    (case files, superpixels, features, candidates, forests, ConvNet
    epochs), how many were computed and how many reused from ``work_dir``.
    """
    sp_gen, cascade, convnet, refiner = (est for _, est in pipeline.steps)
    counter: dict[str, int] = {}
    times: dict[str, float] = {}
    verbose = int(getattr(cascade, "verbose", 0))
    sp_gen.fit()
    with _work_folder(work_dir) as folder:
        store = _CaseStore(folder, sp_gen, cascade)
        with _timed(times, "cases"):
            keys, names = _prepare(X, y, store, verbose, "prepare cases", counter)
            val_keys, val_names = [], []
            if X_val is not None:
                val_keys, val_names = _prepare(
                    X_val, y_val, store, verbose, "prepare validation", counter
                )
        with local_threads():
            _fit_models(
                pipeline,
                store,
                folder,
                (keys, names),
                (val_keys, val_names),
                counter,
                times,
            )
    pipeline.streamed_counts_ = dict(counter)
    pipeline.streamed_times_ = {k: round(v, 2) for k, v in times.items()}
    return counter


@contextlib.contextmanager
def _timed(times: dict[str, float], name: str) -> Any:
    start = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - start


def _fit_models(
    pipeline: Any,
    store: _CaseStore,
    folder: WorkFolder,
    train: tuple[list[str], list[str]],
    val: tuple[list[str], list[str]],
    counter: dict[str, int],
    times: dict[str, float],
) -> None:
    from pancreas._checks import check_any_pancreas

    keys, names = train
    val_keys, val_names = val
    sp_gen, cascade, convnet, refiner = (est for _, est in pipeline.steps)
    deterministic = cascade.random_state is not None and isinstance(
        cascade.random_state, int | np.integer
    )
    cascade_key = _params_key(cascade, cases=keys, sp=store.sp_key)
    if not deterministic:
        cascade_key += "-" + os.urandom(4).hex()
    fit_dir = f"fit-{cascade_key}"

    # the forests
    if deterministic and folder.complete(f"{fit_dir}/forests"):
        _load_cascade(cascade, folder.path(f"{fit_dir}/forests"))
        counter["forests reused"] = 1
    else:
        # one flag per case, not every label in memory at once
        check_any_pancreas([np.array([store.label(k).any()]) for k in keys], names)
        with _timed(times, "forests"):
            cascade._fit_cases(_StoredCases(store, keys, names))
        with folder.entry(f"{fit_dir}/forests") as tmp:
            _save_cascade(cascade, tmp)
        counter["forests computed"] = 1

    # each case's candidates and the ConvNet's table
    fitted = _FittedCases(store, fit_dir, convnet)
    with _timed(times, "candidates"):
        for key, name in zip(keys, names, strict=True):
            fitted.compute(key, name, counter)
    tables = [fitted.table(k) for k in keys]
    net_key = _params_key(convnet)
    checkpoint = folder.path(f"{fit_dir}/convnet-{net_key}") if deterministic else None
    epochs_before = _completed_epochs(checkpoint)
    with _timed(times, "convnet"):
        convnet._fit_table(
            [t[0] for t in tables],
            [t[1] for t in tables],
            [store.disk_volume(k) for k in keys],
            [tuple(store.meta(k)["spacing"]) for k in keys],
            names,
            checkpoint=checkpoint,
        )
    if epochs_before:
        counter["ConvNet epochs reused"] = epochs_before

    # the refiner, on the validation cases when given
    use_keys, use_names = (val_keys, val_names) if val_keys else (keys, names)
    with _timed(times, "refiner"):
        for key, name in zip(use_keys, use_names, strict=True):
            fitted.compute(key, name, counter)
        records = _LazyRecords(store, fitted, use_keys, use_names)
        labels = _LazyLabels(store, use_keys)
        refiner.fit(records, labels)


class _LazyLabels:
    def __init__(self, store: _CaseStore, keys: list[str]) -> None:
        self.store, self.keys = store, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Any:
        # canonical, on the case's working grid: not the input's voxel order
        return CanonicalLabel(self.store.label(self.keys[i]))


def _completed_epochs(checkpoint: Path | None) -> int:
    if checkpoint is None or not (checkpoint / "state.json").is_file():
        return 0
    return int(json.loads((checkpoint / "state.json").read_text())["epoch"]) + 1


def _save_cascade(cascade: Any, folder: Path) -> None:
    import skops.io as sio

    state = {k: v for k, v in vars(cascade).items() if k.endswith("_")}
    (folder / "forests.skops").write_bytes(sio.dumps(state))


def _load_cascade(cascade: Any, folder: Path) -> None:
    import skops.io as sio

    data = (folder / "forests.skops").read_bytes()
    trusted = [
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    ]
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
    if untrusted:
        raise ValueError(
            f"{folder}: the work folder's forests name types that are not "
            f"trusted ({', '.join(untrusted)}); delete the work folder"
        )
    for name, value in sio.loads(data, trusted=trusted).items():
        setattr(cascade, name, value)
