"""Multi-scale superpixel ConvNet, the third stage (Roth et al. 2015, 2.2-2.3).

Each candidate superpixel kept by ``RFCascade`` is cropped from its axial
slice at several scales (:mod:`pancreas.patches`) and classified by a
five-layer ConvNet as pancreas / non-pancreas. Training augments every
(superpixel, scale) with random thin-plate-spline deformations
(:class:`pancreas.augment.RandomThinPlateSpline`, the model's first layer, so
it runs on the accelerator and only while training).

Keras 3 is imported inside functions and methods only: ``import
pancreas.convnet`` is cheap and never imports Keras. The network uses
``keras`` and ``keras.ops`` only, so it runs on the TensorFlow, JAX and
PyTorch backends (choose with the ``KERAS_BACKEND`` environment variable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from functools import cache
from numbers import Integral, Real
from typing import Any

import numpy as np
from joblib import effective_n_jobs
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from pancreas._validation import N_JOBS, Interval, _fit_context
from pancreas.base import VolumeEstimatorMixin
from pancreas.exceptions import InvalidVolumeError
from pancreas.patches import sample_patches, scale_boxes, superpixel_boxes
from pancreas.record import CaseRecord, as_records, check_labels

__all__ = ["SuperpixelConvNet", "build_convnet"]


def build_convnet(
    patch_size: int = 64,
    filters: Sequence[int] = (64, 64, 128, 128, 128),
    dense_units: Sequence[int] = (512, 512),
    dropout: float = 0.5,
    *,
    tps_grid_size: int = 4,
    tps_magnitude: float = 0.05,
    intensity: tuple[float, float, float] = (0.0, 0.0, 0.0),
    seed: int | None = None,
) -> Any:
    """Build (uncompiled) the superpixel ConvNet of Roth et al. (2015), Fig. 4.

    Parameters
    ----------
    patch_size : int, default=64
        Side of the square single-channel input patches.
    filters : sequence of int, default=(64, 64, 128, 128, 128)
        Filters of each convolutional layer (ReLU, "same" padding). Kernels
        are 5 x 5 for the first two layers and 3 x 3 after; a 2 x 2 max
        pooling follows the first, the second and the last layer (with the
        default five layers: conv5-pool-conv5-pool-conv3-conv3-conv3-pool).
    dense_units : sequence of int, default=(512, 512)
        Units of the fully connected ReLU layers, each followed by dropout.
    dropout : float, default=0.5
        Dropout rate of the fully connected layers.
    tps_grid_size : int, default=4
        Control points per side of the thin-plate-spline augmentation layer.
    tps_magnitude : float, default=0.05
        Its displacement size as a fraction of the patch size; 0 leaves the
        augmentation layer out.
    intensity : (float, float, float), default=(0, 0, 0)
        Brightness shift, contrast change and noise of the intensity
        augmentation layer (:class:`pancreas.augment.RandomIntensity`, in
        window units); all 0 leaves it out.
    seed : int or None, default=None
        Seeds of the augmentation and dropout layers.

    Returns
    -------
    keras.Model
        Input ``(patch_size, patch_size, 1)`` in [0, 1]; output
        ``(batch, 2)`` softmax probabilities (non-pancreas, pancreas).

    Notes
    -----
    With the defaults the model has 4,931,650 trainable parameters (the
    flattened 8 x 8 x 128 features into the first 512-unit layer are 4.2 M
    of them), close to the paper's network, and one forward pass costs
    about 0.42 GFLOPs per patch (0.21 G multiply-adds: conv2 105 M, conv4
    and conv5 38 M each, conv3 19 M, conv1 7 M, dense 4.5 M), so about
    1.3 GFLOPs per training patch with the backward pass.

    Examples
    --------
    >>> from pancreas.convnet import build_convnet
    >>> model = build_convnet(32, filters=(4, 4, 8, 8, 8), dense_units=(16,))
    >>> model.output_shape
    (None, 2)
    """
    import keras

    from pancreas.augment import RandomIntensity, RandomThinPlateSpline

    filters = [int(f) for f in filters]
    if not filters:
        raise ValueError("filters must name at least one convolutional layer")
    pool_after = {0, 1, len(filters) - 1}
    inputs = keras.Input((patch_size, patch_size, 1), name="patch")
    x = inputs
    if tps_magnitude > 0:
        x = RandomThinPlateSpline(
            grid_size=tps_grid_size, magnitude=tps_magnitude, seed=seed, name="tps"
        )(x)
    if any(intensity):
        shift, contrast, noise = (float(v) for v in intensity)
        x = RandomIntensity(
            shift, contrast, noise, seed=None if seed is None else seed + 100, name="intensity"
        )(x)
    for i, n_filters in enumerate(filters):
        x = keras.layers.Conv2D(
            n_filters,
            5 if i < 2 else 3,
            padding="same",
            activation="relu",
            name=f"conv{i + 1}",
        )(x)
        if i in pool_after:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = keras.layers.Dense(int(units), activation="relu", name=f"fc{i + 1}")(x)
        x = keras.layers.Dropout(
            dropout, seed=None if seed is None else seed + i + 1, name=f"dropout{i + 1}"
        )(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="superpixel_convnet")


@contextlib.contextmanager
def _seeded_process(seed: int | None) -> Iterator[None]:
    """Seed the process's random generators for a block, then restore them.

    With ``seed=None`` nothing is touched. Otherwise, for the block only:
    ``keras.utils.set_random_seed(seed)`` (Python's ``random``, NumPy's
    global generator, Keras's global seed generator, TensorFlow's global seed
    and, on the torch backend, torch's) and, on the TensorFlow backend, op
    determinism. Each is put back as it was on the way out, so a host
    application finds its global state as it left it.
    """
    if seed is None:
        yield
        return
    import random

    import keras

    py_state = random.getstate()
    np_state = np.random.get_state()
    keras_state = _keras_global_seed_state()
    tf_state = _tensorflow_seed_state()
    backend = keras.backend.backend()
    torch_state = None
    if backend == "torch":
        import torch

        torch_state = torch.get_rng_state()
    deterministic = None
    try:
        keras.utils.set_random_seed(seed)
        if backend == "tensorflow":
            # TensorFlow exports enable_op_determinism only; reading the
            # switch and turning it back off go through its config module.
            from tensorflow.python.framework import config as tf_config

            deterministic = bool(tf_config.is_op_determinism_enabled())
            tf_config.enable_op_determinism()
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        _restore_keras_global_seed_state(keras_state)
        _restore_tensorflow_seed_state(tf_state)
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state)
        if deterministic is False:
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()


# Keras keeps its global seed in private state (written by set_random_seed);
# it is read and put back here only.
def _keras_global_seed_state() -> tuple[Any, Any] | None:
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # pragma: no cover - a Keras with another layout
        return None
    return (
        global_state.get_global_attribute(GLOBAL_RANDOM_SEED),
        global_state.get_global_attribute(GLOBAL_SEED_GENERATOR),
    )


def _restore_keras_global_seed_state(state: tuple[Any, Any] | None) -> None:
    if state is None:
        return
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, state[0])
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, state[1])


# set_random_seed also seeds TensorFlow whenever it is installed, whatever
# the backend: its eager and graph seeds are read and put back here.
def _tensorflow_seed_state() -> tuple[Any, Any] | None:
    try:
        from tensorflow.python.eager import context
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    return context.global_seed(), ops.get_default_graph().seed


def _restore_tensorflow_seed_state(state: tuple[Any, Any] | None) -> None:
    if state is None:
        return
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    context.set_global_seed(state[0])
    ops.get_default_graph().seed = state[1]


@cache
def _patch_dataset_class() -> type:
    """The streaming :class:`keras.utils.PyDataset` (defined on first use)."""
    import keras

    class PatchDataset(keras.utils.PyDataset):
        """Batches of superpixel crops extracted on the fly.

        Holds only the index table: per row the case, the box (slice, centre,
        side in mm), the target and the sample weight; example ``e`` is row
        ``e // n_scales`` at scale ``scales[e % n_scales]``. An epoch makes
        ``n_repeats`` passes over all examples, each in a fresh random order
        that depends only on ``(seed, epoch, pass)``, so batch contents are a
        pure function of the epoch and batch index, whatever the number of
        worker threads.
        """

        def __init__(
            self,
            volumes: list[NDArray[Any]],
            spacings: list[tuple[float, ...]],
            case: NDArray[np.intp],
            boxes: NDArray[np.float64],
            target: NDArray[np.int32],
            weight: NDArray[np.float32] | None,
            scales: Sequence[float],
            *,
            n_repeats: int,
            batch_size: int,
            seed: int | None,
            patch_size: int,
            hu_window: Sequence[float],
            workers: int = 1,
        ) -> None:
            super().__init__(workers=workers, use_multiprocessing=False)
            self.volumes = volumes
            self.spacings = spacings
            self.case = case
            self.boxes = boxes
            self.target = target
            self.weight = weight
            self.scales = np.asarray(scales, dtype=np.float64)
            self.n_examples = len(case) * len(self.scales)
            self.n_repeats = n_repeats
            self.batch_size = batch_size
            self.seed = seed
            self.patch_size = patch_size
            self.hu_window = hu_window
            self.epoch = 0
            self._orders: dict[tuple[int, int], NDArray[np.intp]] = {}

        def __len__(self) -> int:
            return math.ceil(self.n_examples * self.n_repeats / self.batch_size)

        def _order(self, repeat: int) -> NDArray[np.intp]:
            # thread-safe: worker threads may ask for orders concurrently
            key = (self.epoch, repeat)
            order = self._orders.get(key)
            if order is None:
                rng = np.random.default_rng([self.seed, *key])
                order = rng.permutation(self.n_examples)
                if len(self._orders) > 8:
                    self._orders = {}
                self._orders[key] = order
            return order

        def __getitem__(self, index: int) -> tuple[NDArray[Any], ...]:
            total = self.n_examples * self.n_repeats
            pos = np.arange(
                index * self.batch_size, min(total, (index + 1) * self.batch_size)
            )
            examples = pos % self.n_examples
            if self.seed is not None:
                repeat = pos // self.n_examples
                for r in np.unique(repeat):
                    sel = repeat == r
                    examples[sel] = self._order(int(r))[examples[sel]]
            rows = examples // len(self.scales)
            boxes = self.boxes[rows].copy()
            boxes[:, 3] *= self.scales[examples % len(self.scales)]
            x = np.empty((len(pos), self.patch_size, self.patch_size, 1), np.float32)
            cases = self.case[rows]
            for c in np.unique(cases):
                sel = cases == c
                x[sel] = sample_patches(
                    self.volumes[c],
                    self.spacings[c],
                    boxes[sel],
                    patch_size=self.patch_size,
                    hu_window=self.hu_window,
                )
            y = self.target[rows]
            if self.weight is None:
                return x, y
            return x, y, self.weight[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return PatchDataset


@cache
def _resumable_early_stopping_class() -> type:
    """Keras's EarlyStopping whose state can be restored after a restart."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping that starts from ``resume_state`` when one is set."""

        resume_state: dict[str, Any] | None = None
        resume_weights: list[NDArray[Any]] | None = None

        @property
        def resume_stopped(self) -> bool:
            """Whether the interrupted run had already stopped early."""
            return bool(self.resume_state and self.resume_state["stopped"])

        def on_train_begin(self, logs: Any = None) -> None:
            super().on_train_begin(logs)
            if self.resume_state is not None:
                self.wait = int(self.resume_state["wait"])
                self.best = self.resume_state["best"]
                self.best_epoch = int(self.resume_state["best_epoch"])
                self.best_weights = self.resume_weights

        def state(self) -> dict[str, Any]:
            best = None if self.best is None else float(self.best)
            return {
                "wait": int(self.wait),
                "best": best,
                "best_epoch": int(self.best_epoch),
                "stopped": bool(self.model.stop_training),
            }

    return ResumableEarlyStopping


@cache
def _checkpoint_class() -> type:
    """The callback that saves every epoch of a training, for resuming it."""
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Save the model, optimizer, RNG and early-stopping state each epoch.

        Files, all replaced atomically at the end of each epoch:
        ``model.keras`` (weights and optimizer), ``state.npz`` (the states of
        every random seed generator and the early-stopping best weights) and
        ``state.json`` (the epoch, history and early-stopping counters),
        written last so that it always names a complete set.
        """

        def __init__(self, folder: str, stopper: Any) -> None:
            super().__init__()
            self.folder = folder
            self.stopper = stopper
            self.history: dict[str, list[float]] = {}

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            from pancreas._atomic import atomic_write_text

            for key, value in (logs or {}).items():
                self.history.setdefault(key, []).append(float(value))
            name = f"epoch-{epoch:04d}"
            final = os.path.join(self.folder, name)
            tmp = os.path.join(self.folder, f".{name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            self.model.save(os.path.join(tmp, "model.keras"))
            arrays = {
                f"seed_{i}": keras.ops.convert_to_numpy(sg.state.value)
                for i, sg in enumerate(_seed_generators(self.model))
            }
            stopper = None
            if self.stopper is not None:
                stopper = self.stopper.state()
                for i, w in enumerate(self.stopper.best_weights or []):
                    arrays[f"best_{i}"] = np.asarray(w)
            np.savez(os.path.join(tmp, "state.npz"), **arrays)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            state = {
                "epoch": int(epoch),
                "folder": name,
                "history": self.history,
                "stopper": stopper,
            }
            # the pointer is written last: it always names a complete epoch
            atomic_write_text(os.path.join(self.folder, "state.json"), json.dumps(state))
            for old in os.listdir(self.folder):
                if old.startswith("epoch-") and old != name:
                    shutil.rmtree(os.path.join(self.folder, old), ignore_errors=True)

        def restore(self, model: Any) -> tuple[Any, int, dict[str, Any]] | None:
            """(model, next epoch, history so far) from the folder, or None."""
            path = os.path.join(self.folder, "state.json")
            if not os.path.isfile(path):
                return None
            with open(path) as fh:
                state = json.load(fh)
            import pancreas.augment  # noqa: F401  registers the custom layer

            where = os.path.join(self.folder, state["folder"])
            restored = keras.saving.load_model(
                os.path.join(where, "model.keras"), safe_mode=True
            )
            with np.load(os.path.join(where, "state.npz")) as data:
                for i, sg in enumerate(_seed_generators(restored)):
                    sg.state.assign(data[f"seed_{i}"])
                best = sorted(
                    (k for k in data.files if k.startswith("best_")),
                    key=lambda k: int(k.split("_")[1]),
                )
                best_weights = [data[k] for k in best] or None
            if self.stopper is not None and state["stopper"] is not None:
                self.stopper.resume_state = state["stopper"]
                self.stopper.resume_weights = best_weights
                self.stopper.set_model(restored)
            self.history = {k: list(v) for k, v in state["history"].items()}
            return restored, int(state["epoch"]) + 1, dict(self.history)

    return EpochCheckpoint


def _seed_generators(model: Any) -> list[Any]:
    """Every random seed generator of a model's layers, in a stable order."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        found.extend(getattr(layer, "_seed_generators", []) or [])
    return found


class SuperpixelConvNet(VolumeEstimatorMixin, TransformerMixin, BaseEstimator):
    """Multi-scale ConvNet probability of each candidate superpixel.

    Third stage of Roth et al. (2015): every candidate superpixel kept by
    ``RFCascade`` (``record.candidates``) is cropped from its axial slice as
    the square bounding box of the superpixel at several scales, and a
    five-layer ConvNet gives its pancreas probability at each scale
    (:func:`build_convnet`). Training uses ``n_train_scales`` scales and
    ``n_deformations`` random thin-plate-spline deformations of each crop.

    Data contract: ``X`` is a sequence of :class:`~pancreas.record.CaseRecord`
    with ``superpixels`` and ``candidates`` set (the output of
    ``SuperpixelGenerator`` then ``RFCascade``); ``y`` is one label volume
    per case on the case's own grid, non-zero meaning pancreas.
    ``transform`` returns new records with ``convnet_proba`` added; inputs
    are never modified.

    Parameters
    ----------
    patch_size : int, default=64
        Side of the square crops in pixels.
    scales : sequence of float, default=(1.0, 1.5, 2.0, 3.0)
        Test scales: the crop side is ``max(box height, box width,
        min_box_mm) * scale`` (mm). ``convnet_proba`` has one column per
        scale; column 0 alone is the paper's Ns=1 result, the mean of all
        four its Ns=4 result.
    n_train_scales : int, default=2
        Training uses the first ``n_train_scales`` scales (paper: Ns=2).
    n_deformations : int, default=8
        Random TPS deformations per (superpixel, training scale) and epoch
        (paper: Nt=8): an epoch visits every training example this many
        times, each time with a new deformation.
    filters : sequence of int, default=(64, 64, 128, 128, 128)
        Filters of the convolutional layers (see :func:`build_convnet`).
    dense_units : sequence of int, default=(512, 512)
        Units of the fully connected layers.
    dropout : float, default=0.5
        Dropout rate after each fully connected layer.
    tps_grid_size : int, default=4
        Control points per side of the TPS grid (K = 16).
    tps_magnitude : float, default=0.05
        Control-point displacements, uniform in +-``tps_magnitude`` times the
        patch size (0 disables the deformations).
    intensity_shift : float, default=0.0
        Intensity augmentation (not in the paper): the largest brightness
        shift in HU, drawn per training patch (see
        :class:`pancreas.augment.RandomIntensity`). Scans of other contrast
        phases and scanners than the training set's differ by tens of HU.
    intensity_contrast : float, default=0.0
        The largest relative contrast change per training patch (0.2:
        factors 0.83-1.2 about the window's centre).
    intensity_noise : float, default=0.0
        The largest standard deviation, in HU, of the Gaussian noise added to
        a training patch.
    epochs : int, default=100
        Maximum number of epochs (paper: 100).
    batch_size : int, default=128
        Training batch size.
    predict_batch_size : int, default=512
        Largest batch of patches at inference.
    learning_rate : float, default=1e-3
        Learning rate of the Adam optimiser.
    validation_fraction : float, default=0.1
        Share of the cases held out for validation and early stopping (at
        least one case, never all). With one case, a share of its
        superpixels is held out instead. 0 disables validation.
    early_stopping : bool, default=True
        Stop when the validation loss (the training loss without
        validation) has not improved for ``patience`` epochs, and restore the
        weights of the best epoch.
    patience : int, default=10
        Epochs without improvement before stopping.
    min_box_mm : float, default=12.0
        Smallest crop side in mm before scaling, so that tiny superpixels
        keep some context.
    hu_window : (float, float), default=(-160.0, 240.0)
        HU window mapped to [0, 1].
    positive_fraction : float in (0, 1) or None, default=None
        Class balance. ``None`` trains on the candidates as they come (the
        paper). A float reweights the loss so that positives carry this
        share of it (0.5: balanced class weights); every example is still
        visited ``n_deformations`` times per epoch, and the mean weight is 1.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the batch order, the weight initialisation, the
        deformations and dropout. An int also seeds
        Keras's global generators (``keras.utils.set_random_seed``) and, on
        the TensorFlow backend, switches op determinism on, so that two fits
        on CPU give identical results; both only while ``fit`` runs: Python's
        ``random``, NumPy's global generator, the backend's seed and
        TensorFlow's op determinism are as the caller left them when ``fit``
        returns (or raises).
    n_jobs : int or None, default=None
        Threads that crop training batches ahead of the network (the
        ``workers`` of the :class:`keras.utils.PyDataset`), as in
        scikit-learn: None means 1, -1 all processors. Results do not depend
        on it. More than one helps keep an accelerator busy.
    verbose : int, default=0
        Training progress: 0 silent, > 0 one line per epoch.

    Attributes
    ----------
    model_ : keras.Model
        The trained network (after early stopping, the best epoch's weights).
    history_ : dict of str to list of float
        Keras training history (``loss``, ``accuracy``, ``val_loss``...).
    n_train_patches_ : int
        Training patches per epoch: candidates of the training cases times
        ``n_train_scales`` times ``n_deformations``.
    n_validation_patches_ : int
        Validation patches (candidates times ``n_train_scales``, undeformed).
    validation_cases_ : list of str
        ``case_id`` of the held-out cases (empty when the split is within
        one case, or without validation).
    scales_ : tuple of float
        The test scales.

    See Also
    --------
    pancreas.convnet.build_convnet : The network.
    pancreas.augment.RandomThinPlateSpline : The training deformations.
    pancreas.patches.crop_superpixels : The crops.

    Notes
    -----
    Positives are the candidate superpixels whose voxels are at least half
    pancreas in the ground truth (the optimal superpixel labelling of the
    paper).

    Training streams its patches: a :class:`keras.utils.PyDataset` crops
    every batch on the fly from the records, so memory does not grow with
    the number of patches (cropping runs at about 4,000 patches/s per
    thread). Measured on a 2-core CPU with TensorFlow, the default network
    trains at about 30 patches/s and predicts about 190 patches/s; the
    paper trained 855,500 patches for 100 epochs in 55 h on a GPU.

    Pickling (``pickle``, ``joblib``) stores ``model_`` in Keras's native
    ``.keras`` format and reloads it with ``safe_mode=True``.

    References
    ----------
    .. [1] H. R. Roth, A. Farag, L. Lu, E. B. Turkbey, R. M. Summers. "Deep
       convolutional networks for pancreas segmentation in CT imaging",
       SPIE Medical Imaging 2015, :arXiv:`1504.03967`.

    Examples
    --------
    >>> from pancreas.convnet import SuperpixelConvNet
    >>> net = SuperpixelConvNet(patch_size=32, filters=(4, 4, 8, 8, 8),
    ...                         dense_units=(16,), epochs=2, random_state=0)
    >>> net.get_params()["scales"]
    (1.0, 1.5, 2.0, 3.0)
    """

    _parameter_constraints: dict = {
        "patch_size": [Interval(Integral, 8, None, closed="left")],
        "scales": ["array-like"],
        "n_train_scales": [Interval(Integral, 1, None, closed="left")],
        "n_deformations": [Interval(Integral, 1, None, closed="left")],
        "filters": ["array-like"],
        "dense_units": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "tps_grid_size": [Interval(Integral, 2, None, closed="left")],
        "tps_magnitude": [Interval(Real, 0, 0.5, closed="both")],
        "intensity_shift": [Interval(Real, 0, None, closed="left")],
        "intensity_contrast": [Interval(Real, 0, 1, closed="both")],
        "intensity_noise": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "min_box_mm": [Interval(Real, 0, None, closed="left")],
        "hu_window": ["array-like"],
        "positive_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        patch_size: int = 64,
        scales: Sequence[float] = (1.0, 1.5, 2.0, 3.0),
        n_train_scales: int = 2,
        n_deformations: int = 8,
        filters: Sequence[int] = (64, 64, 128, 128, 128),
        dense_units: Sequence[int] = (512, 512),
        dropout: float = 0.5,
        tps_grid_size: int = 4,
        tps_magnitude: float = 0.05,
        intensity_shift: float = 0.0,
        intensity_contrast: float = 0.0,
        intensity_noise: float = 0.0,
        epochs: int = 100,
        batch_size: int = 128,
        predict_batch_size: int = 512,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 10,
        min_box_mm: float = 12.0,
        hu_window: Sequence[float] = (-160.0, 240.0),
        positive_fraction: float | None = None,
        random_state: Any = None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.patch_size = patch_size
        self.scales = scales
        self.n_train_scales = n_train_scales
        self.n_deformations = n_deformations
        self.filters = filters
        self.dense_units = dense_units
        self.dropout = dropout
        self.tps_grid_size = tps_grid_size
        self.tps_magnitude = tps_magnitude
        self.intensity_shift = intensity_shift
        self.intensity_contrast = intensity_contrast
        self.intensity_noise = intensity_noise
        self.epochs = epochs
        self.batch_size = batch_size
        self.predict_batch_size = predict_batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_box_mm = min_box_mm
        self.hu_window = hu_window
        self.positive_fraction = positive_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> SuperpixelConvNet:
        """Train the ConvNet on the candidate superpixels of ``X``.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ``superpixels`` and ``candidates`` set.
        y : sequence of label volumes
            One per case, on the case's own grid; non-zero is pancreas.

        Returns
        -------
        self : SuperpixelConvNet
            The fitted estimator.
        """
        self._check_params()
        records = _checked_records(X)
        if y is None or len(y) != len(records):
            check_labels(records, y)  # raises with the message
        rows = [
            self._training_rows(
                rec.superpixels,
                rec.candidates,
                rec.spacing,
                rec.case_id,
                check_labels([rec], [y[i]])[0],
            )
            for i, rec in enumerate(records)
        ]
        return self._fit_table(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [rec.volume.array for rec in records],
            [rec.spacing for rec in records],
            [rec.case_id for rec in records],
        )

    def _training_rows(
        self,
        superpixels: NDArray[Any],
        candidates: NDArray[Any],
        spacing: tuple[float, ...],
        case_id: str,
        label: NDArray[np.bool_],
    ) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
        """Boxes and majority-pancreas targets of a case's candidates.

        Needs no CT: a streamed fit builds these tables without reading it.
        """
        boxes = superpixel_boxes(
            superpixels, candidates, spacing, min_box_mm=self.min_box_mm, name=case_id
        )
        target = _majority_pancreas(superpixels, candidates, label)
        return boxes, target.astype(np.int32)

    def _fit_table(
        self,
        boxes: list[NDArray[np.float64]],
        targets: list[NDArray[np.int32]],
        volumes: list[Any],
        spacings: list[tuple[float, ...]],
        case_ids: list[str],
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> SuperpixelConvNet:
        """Train on per-case tables of candidate boxes and targets.

        ``volumes`` are arrays or on-disk volumes that the patches are
        cropped from as training goes (see :func:`pancreas.patches.sample_patches`).
        With ``checkpoint``, the state after every epoch is written there and
        a later call with the same folder resumes after the last one.
        """
        scales, hu_window = self._check_params()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        with _seeded_process(seed if self.random_state is not None else None):
            return self._fit_seeded(
                (boxes, targets, volumes, spacings, case_ids),
                checkpoint,
                scales,
                hu_window,
                rng,
                seed,
            )

    def _fit_seeded(
        self,
        table: tuple[list[Any], list[Any], list[Any], list[Any], list[str]],
        checkpoint: str | os.PathLike[str] | None,
        scales: tuple[float, ...],
        hu_window: tuple[float, float],
        rng: np.random.RandomState,
        seed: int,
    ) -> SuperpixelConvNet:
        """The training itself, inside :func:`_seeded_process`."""
        import keras

        boxes, targets, volumes, spacings, case_ids = table

        case = np.concatenate(
            [np.full(len(b), i, dtype=np.intp) for i, b in enumerate(boxes)]
            or [np.zeros(0, np.intp)]
        )
        box = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        tgt = (np.concatenate(targets) if targets else np.zeros(0)).astype(np.int32)
        if len(case) == 0:
            raise InvalidVolumeError(
                "no candidate superpixels in X: nothing to train the ConvNet on"
            )
        train, val, self.validation_cases_ = self._split(case_ids, case, rng)
        if not train.any():
            raise InvalidVolumeError(
                "no candidate superpixels left for training after the validation "
                "split; lower validation_fraction"
            )
        weight = None
        if self.positive_fraction is not None:
            p_hat = tgt[train].mean()
            if 0 < p_hat < 1:
                weight = np.where(
                    tgt == 1,
                    self.positive_fraction / p_hat,
                    (1 - self.positive_fraction) / (1 - p_hat),
                ).astype(np.float32)

        train_scales = scales[: self.n_train_scales]
        dataset = _patch_dataset_class()
        common = dict(
            patch_size=self.patch_size,
            hu_window=hu_window,
            batch_size=self.batch_size,
            workers=effective_n_jobs(self.n_jobs),
        )

        def subset(mask: NDArray[np.bool_], **kwargs: Any) -> Any:
            return dataset(
                volumes,
                spacings,
                case[mask],
                box[mask],
                tgt[mask],
                None if weight is None else weight[mask],
                train_scales,
                **common,
                **kwargs,
            )

        train_data = subset(train, n_repeats=self.n_deformations, seed=seed)
        val_data = subset(val, n_repeats=1, seed=None) if val.any() else None

        model = build_convnet(
            self.patch_size,
            self.filters,
            self.dense_units,
            self.dropout,
            tps_grid_size=self.tps_grid_size,
            tps_magnitude=self.tps_magnitude,
            intensity=self._intensity_in_window(hu_window),
            seed=seed,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = []
        stopper = None
        if self.early_stopping:
            stopper = _resumable_early_stopping_class()(
                monitor="val_loss" if val_data is not None else "loss",
                patience=self.patience,
                restore_best_weights=True,
            )
            callbacks.append(stopper)
        initial_epoch, past = 0, {}
        if checkpoint is not None:
            saver = _checkpoint_class()(os.fspath(checkpoint), stopper)
            restored = saver.restore(model)
            if restored is not None:
                model, initial_epoch, past = restored
            callbacks.append(saver)
        train_data.epoch = initial_epoch
        history: dict[str, list[float]] = {k: list(v) for k, v in past.items()}
        if not (stopper is not None and stopper.resume_stopped):
            fitted = model.fit(
                train_data,
                validation_data=val_data,
                epochs=self.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                shuffle=False,
                verbose=2 if self.verbose else 0,  # one line per epoch
            )
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
        elif stopper.resume_weights is not None:
            model.set_weights(stopper.resume_weights)
        self.model_ = model
        self.history_ = history
        self.n_train_patches_ = (
            int(train.sum()) * len(train_scales) * self.n_deformations
        )
        self.n_validation_patches_ = int(val.sum()) * len(train_scales)
        self.scales_ = tuple(scales)
        return self

    def _check_params(self) -> tuple[tuple[float, ...], tuple[float, float]]:
        scales = tuple(float(s) for s in np.asarray(self.scales, dtype=float).ravel())
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}")
        if self.n_train_scales > len(scales):
            raise ValueError(
                f"n_train_scales={self.n_train_scales} exceeds the {len(scales)} scales"
            )
        window = np.asarray(self.hu_window, dtype=float).ravel()
        if window.size != 2 or not window[0] < window[1]:
            raise ValueError(
                f"hu_window must be (low, high) with low < high, got {self.hu_window!r}"
            )
        for name in ("filters", "dense_units"):
            values = np.asarray(getattr(self, name)).ravel()
            if (name == "filters" and values.size == 0) or np.any(values < 1):
                raise ValueError(f"{name} must be positive integers, got {values!r}")
        if self.patch_size < self.tps_grid_size:
            raise ValueError(
                f"patch_size={self.patch_size} is smaller than "
                f"tps_grid_size={self.tps_grid_size}"
            )
        hu_window = (float(window[0]), float(window[1]))
        self._intensity_in_window(hu_window)  # raises on shifts wider than the window
        return scales, hu_window

    def _split(
        self,
        case_ids: list[str],
        case: NDArray[np.intp],
        rng: np.random.RandomState,
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], list[str]]:
        """Train / validation masks over the candidate rows, by case if possible."""
        n_cases = len(case_ids)
        val = np.zeros(len(case), dtype=bool)
        if self.validation_fraction == 0:
            return ~val, val, []
        if n_cases >= 2:
            n_val = min(max(1, round(self.validation_fraction * n_cases)), n_cases - 1)
            held = rng.permutation(n_cases)[:n_val]
            val = np.isin(case, held)
            return ~val, val, [case_ids[i] for i in sorted(held)]
        n_val = max(1, round(self.validation_fraction * len(case)))
        if len(case) >= 2:
            val[rng.permutation(len(case))[:n_val]] = True
        return ~val, val, []

    # ------------------------------------------------------------ transform
    def transform(self, X: Any) -> list[CaseRecord]:
        """Add each candidate's ConvNet probability at every scale.

        Parameters
        ----------
        X : sequence of CaseRecord
            Cases with ``superpixels`` and ``candidates`` set.

        Returns
        -------
        list of CaseRecord
            New records (inputs untouched) with ``convnet_proba``: float32 of
            shape (len(candidates), len(scales)), the softmax pancreas
            probability of each candidate at each test scale.
        """
        check_is_fitted(self)
        records = _checked_records(X)
        return [
            dataclasses.replace(
                rec, convnet_proba=self._predict_record(rec), extras=dict(rec.extras)
            )
            for rec in records
        ]

    def _predict_record(self, rec: CaseRecord) -> NDArray[np.float32]:
        from keras import ops

        scales = self.scales_
        boxes = scale_boxes(
            superpixel_boxes(
                rec.superpixels,
                rec.candidates,
                rec.spacing,
                min_box_mm=self.min_box_mm,
                name=rec.case_id,
            ),
            scales,
        )
        proba = np.empty(len(boxes), dtype=np.float32)
        step = int(self.predict_batch_size)
        for start in range(0, len(boxes), step):
            chunk = boxes[start : start + step]
            patches = sample_patches(
                rec.volume.array,
                rec.spacing,
                chunk,
                patch_size=self.patch_size,
                hu_window=self.hu_window,
            )
            # pad to a power of two so that compiled backends see few shapes
            size = min(step, 1 << max(0, (len(chunk) - 1).bit_length()))
            if size > len(chunk):
                pad = np.zeros((size - len(chunk), *patches.shape[1:]), np.float32)
                patches = np.concatenate([patches, pad])
            out = ops.convert_to_numpy(self.model_.predict_on_batch(patches))
            proba[start : start + len(chunk)] = out[: len(chunk), 1]
        return proba.reshape(len(rec.candidates), len(scales))

    # -------------------------------------------------------------- saving
    def save_model(self, path: str | os.PathLike[str]) -> None:
        """Write the trained network to a Keras ``.keras`` file.

        Parameters
        ----------
        path : str or PathLike
            Destination; must end in ``.keras``. Load it back with
            ``keras.saving.load_model`` after ``import pancreas.augment``.
        """
        check_is_fitted(self)
        self.model_.save(os.fspath(path))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras_bytes"] = _model_to_bytes(model)
        return state

    def _intensity_in_window(
        self, hu_window: tuple[float, float]
    ) -> tuple[float, float, float]:
        """The intensity augmentation in window units (shift, contrast, noise)."""
        width = hu_window[1] - hu_window[0]
        shift = float(self.intensity_shift) / width
        noise = float(self.intensity_noise) / width
        if shift > 1 or noise > 1:
            raise ValueError(
                f"intensity_shift={self.intensity_shift} and intensity_noise="
                f"{self.intensity_noise} HU must be at most the HU window's width "
                f"({width:g} HU)"
            )
        return shift, float(self.intensity_contrast), noise

    def __setstate__(self, state: dict[str, Any]) -> None:
        # models saved before the intensity augmentation trained without it
        state = {
            "intensity_shift": 0.0,
            "intensity_contrast": 0.0,
            "intensity_noise": 0.0,
            **state,
        }
        data = state.pop("_model_keras_bytes", None)
        if data is not None:
            state["model_"] = _model_from_bytes(data)
        super().__setstate__(state)


def _checked_records(X: Any) -> list[CaseRecord]:
    records = as_records(X)
    for rec in records:
        if rec.superpixels is None or rec.candidates is None:
            missing = "superpixels" if rec.superpixels is None else "candidates"
            raise InvalidVolumeError(
                f"{rec.case_id}: the record has no {missing}; run "
                "SuperpixelGenerator and RFCascade first"
            )
    return records


def _majority_pancreas(
    sp: NDArray[Any], candidates: NDArray[Any], label: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Candidates whose voxels are at least half pancreas in ``label``."""
    n = int(max(sp.max(initial=0), np.max(candidates, initial=0))) + 1
    total = np.bincount(sp.ravel(), minlength=n)
    inside = np.bincount(sp[label], minlength=n)
    cand = np.asarray(candidates, dtype=np.intp)
    return inside[cand] * 2 >= np.maximum(total[cand], 1)


def _model_to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def _model_from_bytes(data: bytes) -> Any:
    import keras

    import pancreas.augment  # noqa: F401  registers the custom layer

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.saving.load_model(path, safe_mode=True)
