"""Training augmentations of 2D patches: thin-plate-spline deformations and intensity.

Random thin-plate-spline deformations are the paper's (Roth et al. 2015,
2.2); random intensity changes (:class:`RandomIntensity`) go past it, for
scans whose contrast phase, scanner and noise differ from the training set's.

A regular ``g`` x ``g`` grid of control points ``omega_i`` over the patch is
moved by random displacements ``D_i``; the dense displacement field is the
thin-plate-spline interpolant

.. math:: d(x) = \\sum_{i=1}^K c_i \\phi(\\lVert x - \\omega_i \\rVert)
          + a_0 + a_1 x_0 + a_2 x_1, \\qquad \\phi(r) = r^2 \\log r,

which passes exactly through the control displacements, ``d(omega_i) = D_i``.
Because the control points are a fixed grid, ``d`` is linear in the ``D_i``:
:func:`tps_weights` solves the TPS system once, in numpy, for the
``(H * W, K)`` matrix that maps the ``K`` displacements to the field, and each
batch costs one matmul plus a bilinear resampling (:func:`tps_warp`).

Everything that runs on tensors uses ``keras.ops`` only, so it runs on the
TensorFlow, JAX and PyTorch backends and on an accelerator, inside the model.
This module imports Keras; :mod:`pancreas.convnet` imports it lazily.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import NDArray

__all__ = [
    "RandomIntensity",
    "RandomThinPlateSpline",
    "tps_control_points",
    "tps_warp",
    "tps_weights",
]


def tps_control_points(grid_size: int, height: int, width: int) -> NDArray[np.intp]:
    """Pixel coordinates of the regular grid of TPS control points.

    Parameters
    ----------
    grid_size : int
        ``g``, the number of control points along each side (``g >= 2``).
    height, width : int
        Patch size in pixels (each ``>= g``).

    Returns
    -------
    ndarray of int of shape (g * g, 2)
        ``(row, column)`` of each control point, row-major: point
        ``i * g + j`` is at ``(rows[i], cols[j])`` with ``rows`` the rounded
        ``linspace(0, height - 1, g)``. The grid spans the whole patch,
        corners included, and every point lies on a pixel centre.

    Examples
    --------
    >>> from pancreas.augment import tps_control_points
    >>> tps_control_points(2, 5, 5).tolist()
    [[0, 0], [0, 4], [4, 0], [4, 4]]
    """
    grid_size, height, width = int(grid_size), int(height), int(width)
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}")
    if min(height, width) < grid_size:
        raise ValueError(
            f"a {height} x {width} patch is too small for a {grid_size} x "
            f"{grid_size} grid of control points"
        )
    rows = np.round(np.linspace(0, height - 1, grid_size)).astype(np.intp)
    cols = np.round(np.linspace(0, width - 1, grid_size)).astype(np.intp)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def _tps_kernel(r2: NDArray[np.float64]) -> NDArray[np.float64]:
    # phi(r) = r^2 log r = 0.5 * r^2 log r^2, with phi(0) = 0
    out = np.zeros_like(r2)
    pos = r2 > 0
    out[pos] = 0.5 * r2[pos] * np.log(r2[pos])
    return out


@lru_cache(maxsize=16)
def tps_weights(grid_size: int, height: int, width: int) -> NDArray[np.float32]:
    """Matrix mapping control-point displacements to the dense TPS field.

    Parameters
    ----------
    grid_size : int
        ``g``; there are ``K = g * g`` control points
        (:func:`tps_control_points`).
    height, width : int
        Patch size in pixels.

    Returns
    -------
    ndarray of float32 of shape (height * width, K), read-only
        ``W`` such that ``(W @ D).reshape(height, width, 2)`` is the
        thin-plate-spline displacement field through the displacements
        ``D`` of shape (K, 2). The row of a control pixel is exactly one-hot,
        so the field equals ``D`` there exactly. Cached.

    Notes
    -----
    With ``Phi[i, j] = phi(|omega_i - omega_j|)`` and ``P = [1, omega]``
    (K x 3), the TPS coefficients are ``[c; a] = L^{-1} [D; 0]`` with
    ``L = [[Phi, P], [P^T, 0]]``; so ``W = Q L^{-1}[:, :K]`` where row ``x``
    of ``Q`` is ``[phi(|x - omega_i|)_i, 1, x]``. Coordinates are divided by
    the patch size first, which only improves conditioning: the TPS
    interpolant does not depend on the length unit.
    """
    grid_size, height, width = int(grid_size), int(height), int(width)
    points = tps_control_points(grid_size, height, width)
    n_points = points.shape[0]
    unit = float(max(height, width))
    ctrl = points / unit
    rr, cc = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    pixels = np.stack([rr.ravel(), cc.ravel()], axis=1) / unit
    system = np.zeros((n_points + 3, n_points + 3))
    system[:n_points, :n_points] = _tps_kernel(
        ((ctrl[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1)
    )
    system[:n_points, n_points] = 1.0
    system[:n_points, n_points + 1 :] = ctrl
    system[n_points:, :n_points] = system[:n_points, n_points:].T
    coef = np.linalg.solve(system, np.eye(n_points + 3)[:, :n_points])
    query = np.empty((pixels.shape[0], n_points + 3))
    query[:, :n_points] = _tps_kernel(
        ((pixels[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1)
    )
    query[:, n_points] = 1.0
    query[:, n_points + 1 :] = pixels
    weights = (query @ coef).astype(np.float32)
    # exact interpolation at the control pixels (the solve gives it to ~1e-15)
    ctrl_rows = points[:, 0] * width + points[:, 1]
    weights[ctrl_rows] = np.eye(n_points, dtype=np.float32)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=16)
def _pixel_grid(height: int, width: int) -> NDArray[np.float32]:
    rr, cc = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grid = np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.float32)
    grid.setflags(write=False)
    return grid


def tps_warp(images: Any, displacements: Any, grid_size: int) -> Any:
    """Warp images with the thin-plate spline through given control displacements.

    Deterministic; written with ``keras.ops`` only (any backend, any device).

    Parameters
    ----------
    images : tensor of shape (batch, height, width, channels)
        Float images; ``height`` and ``width`` must be static.
    displacements : tensor of shape (batch, grid_size ** 2, 2)
        Displacement ``(d_row, d_col)``, in pixels, of each control point of
        :func:`tps_control_points` (row-major), per image.
    grid_size : int
        ``g``, control points per side.

    Returns
    -------
    tensor of shape (batch, height, width, channels), dtype of ``images``
        ``out[x] = images[x + d(x)]`` with ``d`` the TPS field
        (:func:`tps_weights`), sampled bilinearly with edge clamping. In
        particular zero displacements return ``images`` exactly, and the
        output at control point ``omega_i`` is the input at
        ``omega_i + D_i``.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.augment import tps_warp
    >>> img = np.random.default_rng(0).random((1, 8, 8, 1)).astype("float32")
    >>> out = tps_warp(img, np.zeros((1, 9, 2), "float32"), grid_size=3)
    >>> bool(np.allclose(np.asarray(out), img))
    True
    """
    images = ops.convert_to_tensor(images)
    in_dtype = images.dtype
    shape = images.shape
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(
            "images must have shape (batch, height, width, channels) with static "
            f"height and width, got {shape}"
        )
    height, width = int(shape[1]), int(shape[2])
    channels = shape[3] if shape[3] is not None else -1
    weights = ops.convert_to_tensor(tps_weights(grid_size, height, width))
    grid = ops.convert_to_tensor(_pixel_grid(height, width))
    disp = ops.cast(displacements, "float32")
    field = ops.einsum("pk,bkc->bpc", weights, disp)  # (batch, H * W, 2)
    coords = ops.expand_dims(grid, 0) + field
    y = ops.clip(coords[..., 0], 0.0, float(height - 1))
    x = ops.clip(coords[..., 1], 0.0, float(width - 1))
    y0 = ops.floor(y)
    x0 = ops.floor(x)
    wy = ops.expand_dims(y - y0, -1)
    wx = ops.expand_dims(x - x0, -1)
    y0 = ops.cast(y0, "int32")
    x0 = ops.cast(x0, "int32")
    y1 = ops.minimum(y0 + 1, height - 1)
    x1 = ops.minimum(x0 + 1, width - 1)
    flat = ops.cast(ops.reshape(images, (-1, height * width, channels)), "float32")

    def gather(yi: Any, xi: Any) -> Any:
        index = ops.expand_dims(yi * width + xi, -1)  # (batch, H * W, 1)
        return ops.take_along_axis(flat, index, axis=1)

    top = gather(y0, x0) * (1.0 - wx) + gather(y0, x1) * wx
    bottom = gather(y1, x0) * (1.0 - wx) + gather(y1, x1) * wx
    out = top * (1.0 - wy) + bottom * wy
    out = ops.reshape(out, (-1, height, width, channels))
    return ops.cast(out, in_dtype)


@keras.saving.register_keras_serializable(package="pancreas")
class RandomThinPlateSpline(keras.layers.Layer):
    """Random thin-plate-spline deformation of image patches, in training only.

    Each example gets its own random displacement of every control point of
    a regular ``grid_size`` x ``grid_size`` grid (:func:`tps_control_points`)
    and is warped by the thin-plate spline through them (:func:`tps_warp`).
    The layer is the identity at inference (``training`` false or None), so
    it is put first in a model: active during ``fit``, absent from
    ``predict``.

    Parameters
    ----------
    grid_size : int, default=4
        Control points per side, ``K = grid_size ** 2``.
    magnitude : float, default=0.05
        Size of the displacements as a fraction of the patch size: uniform
        in ``[-magnitude, magnitude] * size`` or normal with that standard
        deviation, per axis (0.05 is +-3.2 pixels on a 64-pixel patch: a
        plausible physical variation, as in the paper's Fig. 3).
    distribution : {"uniform", "normal"}, default="uniform"
        Distribution of the displacements.
    seed : int or None, default=None
        Seed of the layer's :class:`keras.random.SeedGenerator`.
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ``dtype``...).

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.augment import RandomThinPlateSpline
    >>> layer = RandomThinPlateSpline(grid_size=3, magnitude=0.05, seed=0)
    >>> x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    >>> bool(np.all(np.asarray(layer(x)) == x))  # inference: identity
    True
    >>> tuple(layer(x, training=True).shape)
    (2, 16, 16, 1)
    """

    def __init__(
        self,
        grid_size: int = 4,
        magnitude: float = 0.05,
        distribution: str = "uniform",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(grid_size) < 2:
            raise ValueError(f"grid_size must be >= 2, got {grid_size}")
        if not magnitude >= 0:
            raise ValueError(f"magnitude must be >= 0, got {magnitude}")
        if distribution not in ("uniform", "normal"):
            raise ValueError(
                f"distribution must be 'uniform' or 'normal', got {distribution!r}"
            )
        self.grid_size = int(grid_size)
        self.magnitude = float(magnitude)
        self.distribution = distribution
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: Any) -> None:
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "RandomThinPlateSpline needs inputs of shape (batch, height, width, "
                f"channels) with static height and width, got {input_shape}"
            )
        tps_weights(self.grid_size, int(input_shape[1]), int(input_shape[2]))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.magnitude == 0:
            return inputs
        height, width = int(inputs.shape[1]), int(inputs.shape[2])
        shape = (ops.shape(inputs)[0], self.grid_size**2, 2)
        if self.distribution == "uniform":
            draw = keras.random.uniform(
                shape, minval=-1.0, maxval=1.0, seed=self.seed_generator
            )
        else:
            draw = keras.random.normal(shape, seed=self.seed_generator)
        size = ops.convert_to_tensor(
            np.array([height, width], np.float32) * self.magnitude
        )
        return tps_warp(inputs, draw * size, self.grid_size)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            grid_size=self.grid_size,
            magnitude=self.magnitude,
            distribution=self.distribution,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="pancreas")
class RandomIntensity(keras.layers.Layer):
    """Random brightness, contrast and noise of windowed patches, in training only.

    For patches of HU windowed to [0, 1], each example gets a brightness
    shift ``b``, uniform in ``[-shift, shift]``, a contrast factor ``c``,
    log-uniform in ``[1 / (1 + contrast), 1 + contrast]`` (about the window's
    centre), and Gaussian noise of a standard deviation uniform in ``[0,
    noise]``, then is clipped to the window again::

        x' = clip((x - 0.5) * c + 0.5 + b + noise, 0, 1)

    A shift of 0.1 on a 400 HU window moves every tissue by up to 40 HU, about
    the difference in pancreatic enhancement between contrast phases. Like
    :class:`RandomThinPlateSpline` the layer is the identity at inference.

    Parameters
    ----------
    shift : float, default=0.0
        Largest brightness shift, in window units (0-1).
    contrast : float, default=0.0
        Largest relative contrast change (0: none; 0.2: factors 0.83-1.2).
    noise : float, default=0.0
        Largest noise standard deviation, in window units.
    seed : int or None, default=None
        Seed of the layer's :class:`keras.random.SeedGenerator`.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.augment import RandomIntensity
    >>> layer = RandomIntensity(shift=0.1, contrast=0.2, noise=0.02, seed=0)
    >>> x = np.full((2, 8, 8, 1), 0.5, "float32")
    >>> bool(np.all(np.asarray(layer(x)) == x))  # inference: identity
    True
    >>> y = np.asarray(layer(x, training=True))
    >>> bool(0.0 <= y.min() and y.max() <= 1.0 and not np.allclose(y, x))
    True
    """

    def __init__(
        self,
        shift: float = 0.0,
        contrast: float = 0.0,
        noise: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("shift", shift), ("contrast", contrast), ("noise", noise)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.shift = float(shift)
        self.contrast = float(contrast)
        self.noise = float(noise)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or not (self.shift or self.contrast or self.noise):
            return inputs
        per_example = (ops.shape(inputs)[0], 1, 1, 1)

        def uniform(low: float, high: float) -> Any:
            return keras.random.uniform(
                per_example, minval=low, maxval=high, seed=self.seed_generator
            )

        log_c = float(np.log1p(self.contrast))
        factor = ops.exp(uniform(-log_c, log_c))
        x = (inputs - 0.5) * factor + 0.5 + uniform(-self.shift, self.shift)
        if self.noise:
            sigma = uniform(0.0, self.noise)
            x = x + sigma * keras.random.normal(
                ops.shape(inputs), seed=self.seed_generator
            )
        return ops.clip(x, 0.0, 1.0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            shift=self.shift, contrast=self.contrast, noise=self.noise, seed=self.seed
        )
        return config
