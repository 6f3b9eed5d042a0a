"""The acquisition: the case's grid, intensities, point-spread function, noise.

Turns the tissue map rendered on the case's grid into an int16 CT in RAS+
and the pancreas label.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pancreas.io import Volume
from pancreas.phantom._anatomy import _cached_anatomy
from pancreas.phantom._geometry import _Grid
from pancreas.phantom._render import _render
from pancreas.phantom._tissues import PANCREAS_TISSUES, TISSUES, _T, _lut

# --------------------------------------------------------------------------
# Grid, intensities, noise
# --------------------------------------------------------------------------


def _case_grid(
    an: SimpleNamespace, shape: tuple[int, int, int] | None, rng: np.random.Generator
) -> tuple[tuple[int, int, int], NDArray[np.float64], tuple[int, int, int]]:
    """Target shape, affine (patient frame) and supersampling factors."""
    if shape is None:
        z_lo, z_hi = an.z_full
        length = z_hi - z_lo
        n_lo = max(150, math.ceil(length / 2.5))
        n_hi = max(n_lo, min(250, math.floor(length / 1.0)))
        nz = int(rng.integers(n_lo, n_hi + 1))
        shape = (512, 512, nz)
    else:
        z_lo, z_hi = an.z_crop
    nx, ny, nz = shape
    sp = np.array([an.fov / nx, an.fov / ny, (z_hi - z_lo) / nz])
    origin = np.array([an.fov_cx - an.fov / 2, an.fov_cy - an.fov / 2, z_lo]) + 0.5 * sp
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = origin
    target = np.array([2.5, 2.5, 3.0])
    factors = np.clip(np.ceil(sp / target - 1e-6), 1, 3).astype(int)
    return (nx, ny, nz), affine, (int(factors[0]), int(factors[1]), int(factors[2]))


def _render_grid(
    shape: tuple[int, int, int], affine: NDArray[Any], factors: tuple[int, int, int]
) -> _Grid:
    axes = []
    for a in range(3):
        n, f = shape[a], factors[a]
        sp = affine[a, a]
        start = affine[a, 3] - 0.5 * sp
        axes.append(start + (np.arange(n * f) + 0.5) * (sp / f))
    return _Grid(*axes)


def _gauss_ss(sigma: float) -> float:
    """Sum of squared weights of scipy's 1D Gaussian kernel."""
    if sigma <= 0:
        return 1.0
    radius = int(3.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    return float((phi**2).sum())


def _make_case(
    seed: np.random.SeedSequence,
    shape: tuple[int, int, int] | None,
    *,
    name: str = "phantom",
    return_tissues: bool = False,
) -> tuple[Volume, ...]:
    """Generate one case (CT, label[, tissue map]) from its seed sequence."""
    # children derived explicitly (not with spawn(), which has state)
    s_anat, s_grid, s_noise = (
        np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, k))
        for k in range(3)
    )
    entropy = s_anat.entropy
    if not isinstance(entropy, int):
        entropy = tuple(int(e) for e in np.atleast_1d(entropy))
    an = _cached_anatomy(entropy, tuple(s_anat.spawn_key))
    shape_t, affine, factors = _case_grid(an, shape, np.random.default_rng(s_grid))
    grid = _render_grid(shape_t, affine, factors)
    cv = _render(an, grid)
    tissue = cv.tissue
    lut = np.zeros(256, dtype=np.float32)
    for nm, code in TISSUES.items():
        lut[code] = an.hu[nm]
    hu = lut[tissue]
    cv.apply_textures(hu)
    is_panc = _lut(PANCREAS_TISSUES)[tissue]
    fx, fy, fz = factors
    if factors != (1, 1, 1):
        nx, ny, nz = shape_t
        hu = hu.reshape(nx, fx, ny, fy, nz, fz).mean(axis=(1, 3, 5), dtype=np.float32)
        frac = is_panc.reshape(nx, fx, ny, fy, nz, fz).mean(axis=(1, 3, 5))
        label = (frac >= 0.5).astype(np.uint8)
        tissue = tissue[fx // 2 :: fx, fy // 2 :: fy, fz // 2 :: fz]
    else:
        label = is_panc.view(np.uint8)
    # scanner: point spread function and correlated quantum noise
    spacing = np.abs(np.diag(affine)[:3])
    sig = np.maximum(an.psf_mm / spacing, 0.45)
    gain = math.sqrt(math.prod(_gauss_ss(float(s)) for s in sig))
    rng_n = np.random.default_rng(s_noise)
    noise = rng_n.standard_normal(hu.shape, dtype=np.float32)
    noise *= np.float32(an.noise_sigma / gain)
    hu += noise
    del noise
    hu = ndimage.gaussian_filter(hu, sig, mode="nearest", truncate=3.0)
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    ct = hu.astype(np.int16)
    del hu
    # The anatomy is modelled with x towards the patient's left; RAS+ x runs
    # towards the patient's right, so axis 0 is reversed on output.
    ct = np.ascontiguousarray(ct[::-1])
    label = np.ascontiguousarray(label[::-1])
    tissue = tissue[::-1]
    world = affine.copy()
    world[:3, 3] += an.world
    world[0, 3] = -(world[0, 3] + (shape_t[0] - 1) * world[0, 0])
    out: tuple[Volume, ...] = (
        Volume(ct, world, name),
        Volume(label, world.copy(), name),
    )
    if return_tissues:
        tissue = np.ascontiguousarray(tissue)
        tissue[tissue == _T.HALO] = _T.VISCERAL_FAT
        out = (*out, Volume(tissue, world.copy(), name))
    return out
