"""Model directories: save a fitted pipeline and load it back, safely.

A fitted :class:`~pancreas.pipeline.Pipeline` is stored in one directory:

``manifest.json``
    What the directory holds and who wrote it: the format and its version,
    the versions of pancreas, Python and the libraries, the creation time,
    the steps and their parameters, the refiner's thresholds, a summary of
    the training cohort, and the SHA-256 checksum and size of every other
    file.
``pipeline.skops``
    The pipeline and everything in it but the Keras network (the random
    forests, arrays, curves), in the :mod:`skops.io` format. It is loaded
    with an explicit list of trusted types (:data:`TRUSTED_TYPES`); a file
    naming any other type is refused.
``convnet.keras``
    The ConvNet's trained network in Keras's native format, loaded with
    ``safe_mode=True`` (no Python code such as ``Lambda`` layers is
    deserialized).

Nothing is ever unpickled: :func:`load_pipeline` reads only the files the
manifest lists, checks their checksums, and hands the verified bytes to
skops and Keras. The checksums detect corruption and accidental edits; the
trusted-type list and Keras's safe mode are what protect against a
deliberately crafted model, since whoever can edit a file can also edit the
manifest.

Compatibility: a model loads only into the pancreas version line that saved
it. From 1.0 on, that is the same major version (1.x reads 1.y); before 1.0,
when there is no compatibility promise, the same major.minor version (0.1.x
reads 0.1.y, not 0.2.z). Anything else raises
:class:`~pancreas.exceptions.ModelVersionError`: retrain with the installed
version, or install the one that saved the model.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import importlib.metadata
import io
import json
import math
import numbers
import os
import platform
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pancreas._atomic import fsync_dir
from pancreas.exceptions import (
    InvalidVolumeError,
    ModelFileError,
    ModelVersionError,
    UntrustedModelError,
    VolumeFileError,
)

if TYPE_CHECKING:
    from pancreas.pipeline import Pipeline

__all__ = ["cohort_summary", "load_pipeline", "read_manifest", "save_pipeline"]

#: Value of the manifest's ``format`` field.
FORMAT = "pancreas-model"
#: Version of the directory layout; a newer one cannot be read.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PIPELINE_FILE = "pipeline.skops"
KERAS_SUFFIX = ".keras"

#: Types that ``pipeline.skops`` may hold beyond those skops trusts by default
#: (scikit-learn's estimators, numpy arrays and scalars, Python builtins). These
#: are the pancreas estimators and scikit-learn's decision-tree structure, as
#: reported by ``skops.io.get_untrusted_types`` for a fitted pipeline. A file
#: naming any other type is refused with :class:`UntrustedModelError`.
TRUSTED_TYPES: tuple[str, ...] = (
    "pancreas.cascade.RFCascade",
    "pancreas.convnet.SuperpixelConvNet",
    "pancreas.pipeline.Pipeline",
    "pancreas.refine.GaussianRefiner",
    "pancreas.superpixels.SuperpixelGenerator",
    "sklearn.tree._tree.Tree",
)

#: What the ``config.json`` of a ``.keras`` network may name: (module, class)
#: of every serialized object. These are the layers, initializers, optimizer
#: and dtype policy of :func:`~pancreas.convnet.build_convnet` as trained by
#: :class:`~pancreas.convnet.SuperpixelConvNet`, and pancreas's own
#: deformation layer. Any other object (a ``Lambda`` layer, a function, a
#: class from another module) is refused with :class:`UntrustedModelError`
#: before Keras reads the file.
KERAS_ALLOWED: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, "__keras_tensor__"),
        ("keras", "DTypePolicy"),
        ("keras.src.models.functional", "Functional"),
        ("keras.layers", "InputLayer"),
        ("keras.layers", "Conv2D"),
        ("keras.layers", "MaxPooling2D"),
        ("keras.layers", "Flatten"),
        ("keras.layers", "Dense"),
        ("keras.layers", "Dropout"),
        ("keras.initializers", "GlorotUniform"),
        ("keras.initializers", "Zeros"),
        ("keras.optimizers", "Adam"),
        ("pancreas.augment", "RandomThinPlateSpline"),
        ("pancreas.augment", "RandomIntensity"),
    }
)
#: The members a ``.keras`` archive may hold.
_KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})

#: Oldest releases of the deserializing libraries without a known way for a
#: crafted file to run code or write outside its folder: Keras 3.14.0
#: (CVE-2025-9906 and CVE-2025-8747 fixed in 3.11.0, CVE-2025-12060 in
#: 3.12.0, CVE-2026-1462 and the archive path traversal GHSA-hqp4-2352-xf5r
#: in 3.14.0) and skops 0.13 (CVE-2025-54412 fixed in 0.12.0, CVE-2025-54886
#: in 0.13.0). The same floors are in ``pyproject.toml``; loading refuses to
#: run with anything older.
SAFE_LIBRARY_VERSIONS: dict[str, tuple[int, ...]] = {
    "keras": (3, 14, 0),
    "skops": (0, 13, 0),
}

#: Distributions whose versions the manifest records.
_DISTRIBUTIONS = (
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "keras",
    "skops",
    "nibabel",
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


def save_pipeline(
    pipeline: Pipeline,
    path: str | PathLike[str],
    *,
    training: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a fitted pipeline to a model directory, atomically.

    The directory gets ``manifest.json``, ``pipeline.skops`` and one
    ``<step>.keras`` file per ConvNet step (``convnet.keras`` for
    :func:`~pancreas.pipeline.make_roth2015_pipeline`). Everything is first
    written to a hidden temporary directory beside ``path``, which is renamed
    to ``path`` only once complete: an interrupted save never leaves a
    half-written model at ``path``.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted :class:`~pancreas.pipeline.Pipeline` (or scikit-learn
        ``Pipeline``) of pancreas estimators.
    path : str or PathLike
        The model directory to create. Missing parent directories are
        created.
    training : mapping or None, default=None
        A description of the training data stored in the manifest as
        ``training``. By default the pipeline's own ``training_summary_``
        (what :meth:`~pancreas.pipeline.Pipeline.fit` saw: case count,
        spacing and grid-size range, see :func:`cohort_summary`), which
        ``pancreas segment`` compares each scan with; keys given here are
        added to it, or replace its own. Made JSON-safe.
    overwrite : bool, default=False
        Replace an existing model directory at ``path``. The old model is
        removed only after the new one is complete. Even with
        ``overwrite=True``, a path that is neither an empty directory nor a
        pancreas model directory is never deleted.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the pipeline, or a ConvNet step in it, is not fitted.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False, or it exists and is not
        a pancreas model directory.
    UntrustedModelError
        If the pipeline holds objects that :func:`load_pipeline` would refuse
        to load (for example a ``joblib.Memory`` as ``memory``).

    See Also
    --------
    load_pipeline : Load the directory back.
    read_manifest : Read the manifest only.

    Examples
    --------
    A round trip of a one-step pipeline (a fitted Roth et al. pipeline is
    saved the same way and also gets ``convnet.keras``):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pancreas.pipeline import make_pipeline
    >>> from pancreas.persistence import load_pipeline, save_pipeline
    >>> from pancreas.superpixels import SuperpixelGenerator
    >>> pipe = make_pipeline(SuperpixelGenerator(superpixel_area=50.0)).fit(None)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     model = save_pipeline(pipe, Path(tmp) / "model",
    ...                           training={"n_cases": 0})
    ...     print(sorted(p.name for p in model.iterdir()))
    ...     loaded = load_pipeline(model)
    ['manifest.json', 'pipeline.skops']
    >>> loaded[0].superpixel_area
    50.0
    """
    from sklearn.pipeline import Pipeline as SkPipeline
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(pipeline, SkPipeline):
        raise TypeError(
            "save_pipeline saves a fitted pancreas Pipeline, got an object of "
            f"type {type(pipeline).__name__}"
        )
    check_is_fitted(pipeline)
    keras_steps = _keras_steps(pipeline)
    for _, est in keras_steps:
        check_is_fitted(est, "model_")

    target = Path(os.path.abspath(os.fspath(path)))
    _check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    )
    try:
        # mkdtemp makes the folder private (0o700); a model folder gets the
        # permissions of any new folder, so that a service or a shared model
        # store can read it where the umask allows.
        os.chmod(tmp, 0o777 & ~_current_umask())
        keras_files: dict[str, str] = {}
        for i, (name, est) in enumerate(keras_steps):
            stem = name if _SAFE_NAME.match(name) else f"step{i}"
            fname = stem + KERAS_SUFFIX
            est.model_.save(os.fspath(tmp / fname))
            keras_files[name] = fname

        data = _dump_without_networks(pipeline, {name for name, _ in keras_steps})
        untrusted = _untrusted(data)
        if untrusted:
            raise UntrustedModelError(
                f"cannot save the pipeline to {target}: it holds objects of types "
                f"{', '.join(untrusted)}, which load_pipeline does not trust and "
                "would refuse to load (set memory=None or a path string, and keep "
                "only pancreas and scikit-learn objects in the pipeline)"
            )
        _write_bytes(tmp / PIPELINE_FILE, data)

        files = {}
        for fname in [PIPELINE_FILE, *keras_files.values()]:
            blob = (tmp / fname).read_bytes()
            files[fname] = {"sha256": _sha256(blob), "bytes": len(blob)}
        fitted = getattr(pipeline, "training_summary_", None)
        if fitted:
            training = {**fitted, **(training or {})}
        manifest = _make_manifest(pipeline, training, files, keras_files)
        text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
        _write_bytes(tmp / MANIFEST, text.encode("utf-8"))
        for fname in keras_files.values():
            _fsync_file(tmp / fname)
        fsync_dir(tmp)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _keras_steps(pipeline: Any) -> list[tuple[str, Any]]:
    """The (name, estimator) steps whose Keras network is saved separately."""
    from pancreas.convnet import SuperpixelConvNet

    return [
        (name, est)
        for name, est in pipeline.steps
        if isinstance(est, SuperpixelConvNet)
    ]


def _without_model(est: Any) -> Any:
    """A shallow copy of a ConvNet step without its Keras network.

    Built by hand rather than with :func:`copy.copy`, which would go through
    ``SuperpixelConvNet.__getstate__`` and serialize the network for nothing.
    """
    clone = type(est).__new__(type(est))
    clone.__dict__.update({k: v for k, v in vars(est).items() if k != "model_"})
    return clone


def _dump_without_networks(pipeline: Any, keras_names: set[str]) -> bytes:
    import skops.io as sio

    shallow = copy.copy(pipeline)
    shallow.steps = [
        (name, _without_model(est) if name in keras_names else est)
        for name, est in pipeline.steps
    ]
    return sio.dumps(shallow)


def _check_target(target: Path, overwrite: bool) -> None:
    """Refuse an existing target, or anything but a model directory to replace."""
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass overwrite=True to replace it, or "
            "choose another path"
        )
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(
            f"{target} exists and is not a model directory; refusing to replace "
            "it even with overwrite=True"
        )
    if not any(target.iterdir()):
        return
    try:
        read_manifest(target)
    except ModelFileError as exc:
        raise FileExistsError(
            f"{target} exists and is not a pancreas model directory ({exc}); "
            "refusing to delete it even with overwrite=True"
        ) from exc


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the complete temporary directory to ``target``."""
    if overwrite and (target.exists() or target.is_symlink()):
        old = Path(
            tempfile.mkdtemp(
                prefix=f".{target.name}.", suffix=".old", dir=target.parent
            )
        )
        # rename() onto an empty directory replaces it atomically.
        os.replace(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if target.exists() or target.is_symlink():
            raise FileExistsError(
                f"{target} was created while the model was being saved; pass "
                "overwrite=True to replace it"
            )
        os.rename(tmp, target)
    fsync_dir(target.parent)


def _make_manifest(
    pipeline: Any,
    training: Mapping[str, Any] | None,
    files: dict[str, dict[str, Any]],
    keras_files: dict[str, str],
) -> dict[str, Any]:
    import pancreas

    keras = sys.modules.get("keras")
    backend = None
    if keras is not None:
        try:
            backend = str(keras.config.backend())
        except Exception:  # a partly imported keras
            backend = None
    versions: dict[str, Any] = {"python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    versions["keras_backend"] = backend
    final = pipeline.steps[-1][1]
    threshold = getattr(final, "threshold_", None)
    stage_thresholds = getattr(final, "stage_thresholds_", None)
    steps = [{"name": name, "class": _qualname(est)} for name, est in pipeline.steps]
    params = {
        name: _json_safe(est.get_params(deep=False))
        if hasattr(est, "get_params")
        else _json_safe(est)
        for name, est in pipeline.steps
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pancreas_version": pancreas.__version__,
        "versions": versions,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "steps": steps,
        "params": params,
        "threshold": _json_safe(threshold),
        "stage_thresholds": _json_safe(stage_thresholds),
        "training": _json_safe(dict(training)) if training is not None else None,
        "keras_models": keras_files,
        "files": files,
    }


def _qualname(obj: Any) -> str:
    if isinstance(obj, str) or obj is None:
        return repr(obj)
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_safe(value: Any) -> Any:
    """Turn ``value`` into something :func:`json.dumps` writes as strict JSON."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else repr(f)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, PathLike):
        return os.fspath(value)
    return repr(value)


def _current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def read_manifest(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and check the manifest of a model directory.

    Only ``manifest.json`` is read; the other files are neither opened nor
    verified (see :func:`load_pipeline`).

    Parameters
    ----------
    path : str or PathLike
        A model directory written by :func:`save_pipeline`.

    Returns
    -------
    dict
        The manifest: ``format``, ``format_version``, ``pancreas_version``,
        ``versions``, ``created``, ``steps``, ``params``, ``threshold``,
        ``stage_thresholds``, ``training``, ``keras_models`` and ``files``.

    Raises
    ------
    ModelFileError
        If ``path`` is not a directory, has no ``manifest.json``, or the
        manifest is not valid JSON describing a pancreas model.

    See Also
    --------
    load_pipeline : Load the model.

    Examples
    --------
    >>> import tempfile
    >>> from pancreas.exceptions import ModelFileError
    >>> from pancreas.persistence import read_manifest
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         read_manifest(tmp)
    ...     except ModelFileError as exc:
    ...         print("not a model:", "manifest.json is missing" in str(exc))
    not a model: True
    """
    root = Path(path)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise ModelFileError(f"{root} {what}; expected a pancreas model directory")
    file = root / MANIFEST
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"{root} is not a pancreas model directory: {MANIFEST} is missing"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{file}: cannot read the manifest ({exc})") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{file}: the manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelFileError(
            f"{file}: not a pancreas model manifest (format is {found!r}, "
            f"expected {FORMAT!r})"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{file}: invalid format_version {version!r}")
    if not isinstance(manifest.get("pancreas_version"), str):
        raise ModelFileError(
            f"{file}: the manifest does not say which pancreas saved it"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(e, dict)
        and isinstance(e.get("sha256"), str)
        and isinstance(e.get("bytes"), int)
        for e in files.values()
    ):
        raise ModelFileError(
            f"{file}: 'files' must map each file name to its sha256 and bytes"
        )
    return manifest


def load_pipeline(path: str | PathLike[str]) -> Pipeline:
    """Load a pipeline saved by :func:`save_pipeline`.

    In order: the manifest is read and its format checked; the pancreas
    version that saved the model must be compatible with the installed one
    (same major version from 1.0 on; same major.minor before 1.0); every file
    the manifest lists must exist and match its SHA-256 checksum; then
    ``pipeline.skops`` is loaded with :data:`TRUSTED_TYPES` only and each
    ``.keras`` network with Keras's ``safe_mode=True``, from the verified
    bytes. Files the manifest does not list are never read, and nothing is
    unpickled.

    Parameters
    ----------
    path : str or PathLike
        A model directory.

    Returns
    -------
    Pipeline
        The fitted pipeline, ready to ``predict``.

    Raises
    ------
    ModelFileError
        If the directory, the manifest or a listed file is missing or
        invalid, a checksum does not match (the file was modified or
        corrupted), or Keras refuses the network (for example a ``Lambda``
        layer, which safe mode does not deserialize).
    UntrustedModelError
        If ``pipeline.skops`` holds a type outside :data:`TRUSTED_TYPES`.
    ModelVersionError
        If the model was saved by an incompatible version of pancreas, or
        with a newer model format.

    See Also
    --------
    save_pipeline : Write a model directory.
    read_manifest : Inspect a model without loading it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from pancreas.pipeline import make_pipeline
    >>> from pancreas.persistence import load_pipeline, save_pipeline
    >>> from pancreas.refine import GaussianRefiner
    >>> from pancreas.superpixels import SuperpixelGenerator
    >>> pipe = make_pipeline(SuperpixelGenerator()).fit(None)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_pipeline(save_pipeline(pipe, Path(tmp) / "m"))
    >>> type(loaded).__name__, loaded.steps[0][0]
    ('Pipeline', 'superpixelgenerator')
    """
    root = Path(path)
    manifest = read_manifest(root)
    _check_versions(manifest, root)
    _check_safe_libraries(root)
    blobs = _read_verified(root, manifest["files"])
    if PIPELINE_FILE not in blobs:
        raise ModelFileError(
            f"{root / MANIFEST}: the manifest does not list {PIPELINE_FILE}"
        )
    pipeline = _load_skops(blobs[PIPELINE_FILE], root / PIPELINE_FILE)

    keras_models = manifest.get("keras_models") or {}
    if not isinstance(keras_models, dict):
        raise ModelFileError(f"{root / MANIFEST}: 'keras_models' must be a mapping")
    named = dict(pipeline.steps)
    for step, fname in keras_models.items():
        if not isinstance(fname, str) or fname not in blobs:
            raise ModelFileError(
                f"{root / MANIFEST}: the network of step {step!r} ({fname!r}) is "
                "not among the listed files"
            )
        if not fname.endswith(KERAS_SUFFIX):
            raise ModelFileError(f"{root / fname}: a network must be a .keras file")
        if step not in named:
            raise ModelFileError(
                f"{root / PIPELINE_FILE}: the pipeline has no step {step!r} for "
                f"the network in {fname}"
            )
        named[step].model_ = _load_keras(blobs[fname], root / fname)

    steps = manifest.get("steps")
    found = [{"name": n, "class": _qualname(e)} for n, e in pipeline.steps]
    if steps is not None and steps != found:
        raise ModelFileError(
            f"{root / PIPELINE_FILE}: the pipeline's steps {found} do not match "
            f"the manifest's {steps}"
        )
    return pipeline


def _version_key(version: str) -> tuple[int, ...] | None:
    """The part of a version that must match: major, or major.minor for 0.x."""
    m = re.match(r"\s*v?(\d+)(?:\.(\d+))?", version)
    if m is None:
        return None
    major = int(m.group(1))
    if major >= 1:
        return (major,)
    return (0, int(m.group(2) or 0))


def _check_versions(manifest: dict[str, Any], root: Path) -> None:
    import pancreas

    fmt = manifest["format_version"]
    if fmt > FORMAT_VERSION:
        raise ModelVersionError(
            f"{root} uses model format version {fmt} (saved by pancreas "
            f"{manifest['pancreas_version']}), but pancreas {pancreas.__version__} "
            f"reads format version {FORMAT_VERSION} only; install a newer pancreas "
            "to load it"
        )
    saved = manifest["pancreas_version"]
    installed = pancreas.__version__
    saved_key, installed_key = _version_key(saved), _version_key(installed)
    if saved_key is None or saved_key != installed_key:
        rule = (
            "major.minor version (0.x releases make no compatibility promise)"
            if installed_key is not None and installed_key[0] == 0
            else "major version"
        )
        raise ModelVersionError(
            f"{root} was saved by pancreas {saved}, but pancreas {installed} is "
            f"installed; models load only into the same {rule}. Retrain the model "
            f"with pancreas {installed}, or install pancreas {saved} to use it."
        )


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: ``"3.14.0rc1"`` -> (3, 14, 0)."""
    numbers = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if m is None:
            break
        numbers.append(int(m.group()))
        if m.end() != len(part):
            break
    return tuple(numbers)


def _check_safe_libraries(root: Path) -> None:
    """Refuse to deserialize with a Keras or skops release that has known holes."""
    for dist, floor in SAFE_LIBRARY_VERSIONS.items():
        try:
            installed = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue  # reported where it is needed (an ImportError)
        if _release(installed) < floor:
            wanted = ".".join(str(v) for v in floor)
            raise ModelVersionError(
                f"cannot load {root} safely: {dist} {installed} is installed, and "
                f"releases before {wanted} can run code from a crafted model file; "
                f"upgrade it (pip install '{dist}>={wanted}')"
            )


def _read_verified(root: Path, files: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """Read every listed file and check its size and SHA-256."""
    blobs: dict[str, bytes] = {}
    for name, entry in files.items():
        if not _SAFE_NAME.match(name) or name == MANIFEST:
            raise ModelFileError(
                f"{root / MANIFEST}: invalid file name {name!r} (a model file must "
                "be a plain name inside the model directory)"
            )
        file = root / name
        if file.is_symlink() or (file.exists() and not file.is_file()):
            raise ModelFileError(f"{file}: not a regular file")
        try:
            data = file.read_bytes()
        except FileNotFoundError as exc:
            raise ModelFileError(
                f"{file} is missing: the manifest lists it but the model "
                "directory does not hold it"
            ) from exc
        except OSError as exc:
            raise ModelFileError(f"{file}: cannot read it ({exc})") from exc
        digest = _sha256(data)
        expected = str(entry["sha256"]).lower()
        if (
            len(data) != entry["bytes"]
            or digest != expected
            or not _SHA256.match(expected)
        ):
            raise ModelFileError(
                f"{file}: checksum mismatch (the manifest records sha256 {expected} "
                f"and {entry['bytes']} bytes, the file has sha256 {digest} and "
                f"{len(data)} bytes): the file was modified or corrupted"
            )
        blobs[name] = data
    return blobs


def _untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def _load_skops(data: bytes, file: Path) -> Any:
    import skops.io as sio
    from sklearn.pipeline import Pipeline as SkPipeline

    try:
        untrusted = _untrusted(data)
    except Exception as exc:  # skops raises many kinds on bad input
        raise ModelFileError(f"{file}: not a readable skops file ({exc})") from exc
    if untrusted:
        raise UntrustedModelError(
            f"{file} holds objects of untrusted types {', '.join(untrusted)}; "
            "pancreas refuses to load it. Only pancreas estimators, scikit-learn "
            "objects and numpy arrays are loaded from a model file"
        )
    try:
        obj = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ModelFileError(f"{file}: cannot load the pipeline ({exc})") from exc
    if not isinstance(obj, SkPipeline):
        raise ModelFileError(
            f"{file} holds a {type(obj).__name__}, not a pancreas Pipeline"
        )
    return obj


def _load_keras(data: bytes, file: Path) -> Any:
    import keras

    import pancreas.augment  # noqa: F401  registers RandomThinPlateSpline

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(f"{file}: not a Keras .keras archive")
    _check_keras_config(data, file)
    with tempfile.TemporaryDirectory() as tmp:
        # The verified bytes, under a name that makes Keras use its native
        # (.keras) loader whatever the file is called.
        local = os.path.join(tmp, "model.keras")
        with open(local, "wb") as fh:
            fh.write(data)
        try:
            return keras.saving.load_model(local, safe_mode=True)
        except Exception as exc:  # Keras raises many kinds
            raise ModelFileError(
                f"{file}: Keras could not load the network in safe mode ({exc})"
            ) from exc


def _keras_objects(config: Any) -> list[tuple[Any, Any]]:
    """(module, class_name) of every serialized object in a Keras config."""
    found = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node or "module" in node:
                found.append((node.get("module"), node.get("class_name")))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _check_keras_config(data: bytes, file: Path) -> None:
    """Refuse a ``.keras`` archive naming anything outside :data:`KERAS_ALLOWED`.

    Keras's ``safe_mode`` refuses Python code (``Lambda`` layers), but its
    checks have been bypassed before (CVE-2025-1550, CVE-2025-9906,
    CVE-2026-1462); this allow-list is checked first, on the archive's
    ``config.json`` alone, so a crafted file never reaches Keras's
    deserializer.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            extra = sorted(names - _KERAS_MEMBERS)
            if extra:
                raise UntrustedModelError(
                    f"{file} holds unexpected member(s) {', '.join(extra)}; a "
                    "pancreas network holds only "
                    f"{', '.join(sorted(_KERAS_MEMBERS))}. Refusing to load it"
                )
            config = json.loads(archive.read("config.json"))
    except UntrustedModelError:
        raise
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(
            f"{file}: not a readable Keras .keras archive ({exc})"
        ) from exc
    bad = sorted(
        {
            f"{module}.{name}" if module else str(name)
            for module, name in _keras_objects(config)
            if (module, name) not in KERAS_ALLOWED
        }
    )
    if bad:
        raise UntrustedModelError(
            f"{file}: the network's config.json names {', '.join(bad)}, outside "
            "the layers and functions a pancreas ConvNet is made of "
            "(pancreas.persistence.KERAS_ALLOWED); refusing to load it"
        )


# ---------------------------------------------------------------------------
# Training cohort
# ---------------------------------------------------------------------------


def cohort_summary(X: Sequence[Any]) -> dict[str, Any]:
    """Number of cases and range of voxel spacing and grid size of a cohort.

    Spacing and shape are given in the canonical (RAS+) voxel order the
    pipeline works in, so that the last axis is always the axial one. NIfTI
    files are summarised from their header alone (the voxels are not read);
    DICOM folders from their headers (the pixel data is not read either).

    Parameters
    ----------
    X : sequence of CT volumes
        Paths to NIfTI files or DICOM series folders, nibabel images,
        :class:`~pancreas.io.Volume` objects, case records or arrays (1 mm
        voxels).

    Returns
    -------
    dict
        ``n_cases`` (int), ``spacing_min`` and ``spacing_max`` (3 floats, mm,
        per axis), ``shape_min`` and ``shape_max`` (3 ints, per axis).

    Raises
    ------
    ValueError
        If ``X`` is empty.
    InvalidVolumeError
        If a volume is not 3D.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.io import Volume
    >>> from pancreas.persistence import cohort_summary
    >>> a = Volume(np.zeros((4, 5, 6)), np.diag([0.8, 0.8, 2.0, 1.0]))
    >>> b = Volume(np.zeros((6, 5, 3)), np.diag([0.7, 0.9, 3.0, 1.0]))
    >>> summary = cohort_summary([a, b])
    >>> summary["n_cases"], summary["spacing_max"], summary["shape_min"]
    (2, [0.8, 0.9, 3.0], [4, 5, 3])
    """
    from pancreas.io import Volume, _case_grid
    from pancreas.record import CaseRecord

    if isinstance(X, str | PathLike | Volume | CaseRecord) or hasattr(X, "dataobj"):
        raise InvalidVolumeError(
            "cohort_summary needs a sequence of volumes (one per case), got a "
            f"single {type(X).__name__}; wrap it in a list"
        )
    # A lazy sequence of files (LazyVolumes) is summarised from its paths,
    # without loading a volume.
    items = getattr(X, "paths", X)
    shapes, spacings = [], []
    for i, item in enumerate(items):
        _, shape, spacing = _case_grid(item, i)
        shapes.append(shape)
        spacings.append(spacing)
    if not shapes:
        raise ValueError("cohort_summary needs at least one case, got none")
    shp = np.asarray(shapes, dtype=np.int64)
    spc = np.asarray(spacings, dtype=np.float64)
    return {
        "n_cases": len(shapes),
        "spacing_min": [round(float(v), 6) for v in spc.min(axis=0)],
        "spacing_max": [round(float(v), 6) for v in spc.max(axis=0)],
        "shape_min": [int(v) for v in shp.min(axis=0)],
        "shape_max": [int(v) for v in shp.max(axis=0)],
    }
