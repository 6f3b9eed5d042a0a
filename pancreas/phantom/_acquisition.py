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
from pancreas.phantom._anatomy import _Body, _cached_anatomy
from pancreas.phantom._factors import _case_factors, _Factors, _realistic_spacing
from pancreas.phantom._geometry import _Canvas, _Grid
from pancreas.phantom._render import _arms_width, _render
from pancreas.phantom._tissues import (
    _ORAL_CONTRAST_HU,
    _ORAL_CONTRAST_TISSUES,
    _PHASE_HU,
    PANCREAS_TISSUES,
    TISSUES,
    _T,
    _lut,
)

# --------------------------------------------------------------------------
# Grid, intensities, noise
# --------------------------------------------------------------------------


def _case_grid(
    an: SimpleNamespace,
    shape: tuple[int, int, int] | None,
    rng: np.random.Generator,
    *,
    spacing: tuple[float, float, float] | None = None,
    z_range: tuple[float, float] | None = None,
    fov: float | None = None,
) -> tuple[tuple[int, int, int], NDArray[np.float64], tuple[int, int, int]]:
    """Target shape, affine (patient frame) and supersampling factors.

    The grid covers the field of view ``an.fov`` in-plane and ``z_range``
    (default: the default cohort's, by ``shape``) along z; ``fov`` widens
    the in-plane field of view (arms at the sides). With ``spacing``,
    a grid of that spacing centred on the same field of view (``shape=None``)
    or of ``shape`` voxels of that spacing around the same centre.
    """
    default_grid = spacing is None and z_range is None and fov is None
    if z_range is None:
        z_range = an.z_full if shape is None else an.z_crop
    z_lo, z_hi = z_range
    if fov is not None:
        an = SimpleNamespace(fov=fov, fov_cx=0.0, fov_cy=an.fov_cy)
    if spacing is None:
        if shape is None:
            length = z_hi - z_lo
            n_lo = max(150, math.ceil(length / 2.5))
            n_hi = max(n_lo, min(250, math.floor(length / 1.0)))
            nz = int(rng.integers(n_lo, n_hi + 1))
            shape = (512, 512, nz)
        nx, ny, nz = shape
        sp = np.array([an.fov / nx, an.fov / ny, (z_hi - z_lo) / nz])
        origin = np.array([an.fov_cx - an.fov / 2, an.fov_cy - an.fov / 2, z_lo])
        origin += 0.5 * sp
    else:
        sp = np.asarray(spacing, dtype=np.float64)
        extent = np.array([an.fov, an.fov, z_hi - z_lo])
        if shape is None:
            shape = tuple(max(8, round(float(e / s))) for e, s in zip(extent, sp))
        centre = np.array([an.fov_cx, an.fov_cy, 0.5 * (z_lo + z_hi)])
        origin = centre - 0.5 * sp * (np.asarray(shape) - 1)
    nx, ny, nz = shape
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = origin
    target = np.array([2.5, 2.5, 3.0])
    factors = np.clip(np.ceil(sp / target - 1e-6), 1, 3).astype(int)
    if not default_grid:
        # odd factors only: with 2 subsamples, the label's ">= half covered"
        # rule includes every tie and inflates the organ (about 15 % at 5 mm
        # slices); the default cohort keeps its factors (bitwise unchanged).
        # 2 becomes 1 where the voxel is at most 1.6 times the target, else 3.
        even = factors == 2
        factors[even & (sp <= 1.6 * target)] = 1
        factors[even & (sp > 1.6 * target)] = 3
    return (nx, ny, nz), affine, (int(factors[0]), int(factors[1]), int(factors[2]))


def _arms_fov(an: SimpleNamespace) -> float:
    """In-plane field of view (mm) with the arms at the sides: up to 500 mm."""
    return float(np.clip(_arms_width(an) + 20.0, an.fov, 500.0))


def _fov_z_range(
    an: SimpleNamespace, field_of_view: str, rng: np.random.Generator
) -> tuple[float, float]:
    """The z range (mm) a field of view covers on this patient, from landmarks.

    ``abdomen``: from just above the diaphragm's domes to below the iliac
    crests; ``abdomen-pelvis``: from there to the ischial tuberosities
    (about 170-220 mm below the crests); ``chest-abdomen-pelvis``: from the
    lung apices to the ischial
    tuberosities (about 170-230 mm beyond both); ``partial``: the pancreas
    with 25-45 mm on each side, as a targeted pancreas protocol.
    """
    u = rng.uniform
    a, b, c, d, e, f = (u(lo, hi) for lo, hi in _FOV_MARGINS)
    if field_of_view == "abdomen":
        return an.z_crest - a, an.dome.zr + b
    if field_of_view == "chest-abdomen-pelvis":
        return an.z_crest - c, an.dome.zr + d
    if field_of_view == "abdomen-pelvis":
        return an.z_crest - c, an.dome.zr + b
    P = an.pancreas
    z = P.pts[:, 2]
    dz = P.radii * P.h
    return float((z - dz).min() - e), float((z + dz).max() + f)


# margins (mm) of the fields of view: abdomen (below the crests, above the
# domes), chest-abdomen-pelvis (the same), partial (below, above the pancreas);
# abdomen-pelvis goes as far below the crests as chest-abdomen-pelvis and as
# far above the domes as the abdomen
_FOV_MARGINS = ((30.0, 80.0), (15.0, 35.0), (170.0, 220.0), (170.0, 230.0),
                (25.0, 45.0), (25.0, 45.0))


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


def _child(seed: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """Child ``k`` of a case's seed: 0 anatomy, 1 grid, 2 noise, 3 factors."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, k))


def _factor_rng(seed: np.random.SeedSequence) -> np.random.Generator:
    """The generator of a case's factor draws (its own stream: the default
    cohort's anatomy, grid and noise do not depend on it)."""
    return np.random.default_rng(_child(seed, 3))


def _make_case(
    seed: np.random.SeedSequence,
    shape: tuple[int, int, int] | None,
    *,
    name: str = "phantom",
    return_tissues: bool = False,
    factors: _Factors | None = None,
    variation: str | None = None,
) -> tuple[Volume, ...]:
    """Generate one case (CT, label[, tissue map]) from its seed sequence.

    ``factors`` fixes some of the case's factors and ``variation="realistic"``
    draws the others (see :func:`pancreas.phantom.make_phantom_cohort`); with
    neither, the default cohort's case.
    """
    # children derived explicitly (not with spawn(), which has state)
    s_anat, s_grid, s_noise = (_child(seed, k) for k in range(3))
    entropy = s_anat.entropy
    if not isinstance(entropy, int):
        entropy = tuple(int(e) for e in np.atleast_1d(entropy))
    rng_f = _factor_rng(seed)
    f = _case_factors(factors or _Factors(), variation, rng_f)
    body = _Body(
        habitus=f.habitus,
        pancreas_variant=(
            None if f.pancreas_variant == "typical" else f.pancreas_variant
        ),
        pancreas_shift=f.pancreas_shift,
        wide=f.field_of_view is not None,
    )
    an = _cached_anatomy(
        entropy, tuple(s_anat.spawn_key), None if body == _Body() else body
    )
    z_range = None
    if f.field_of_view is not None:
        z_range = _fov_z_range(an, f.field_of_view, rng_f)
    spacing = f.spacing
    if spacing is None and shape is None and variation is not None:
        z_mm = (an.z_full if z_range is None else z_range)
        spacing = _realistic_spacing(rng_f, an.fov, z_mm[1] - z_mm[0])
    shape_t, affine, factors = _case_grid(
        an,
        shape,
        np.random.default_rng(s_grid),
        spacing=spacing,
        z_range=z_range,
        fov=_arms_fov(an) if f.arms == "sides" else None,
    )
    grid = _render_grid(shape_t, affine, factors)
    cv = _render(an, grid, table=f.table is not False, arms=f.arms == "sides")
    if f.streaks == "metal":
        _paint_metal(cv, an, rng_f)
    tissue = cv.tissue
    hu = _tissue_hu(an, f, rng_f)
    lut = np.zeros(256, dtype=np.float32)
    for nm, code in TISSUES.items():
        lut[code] = hu[nm]
    hu = lut[tissue]
    cv.apply_textures(hu)
    if f.streaks in ("bone", "metal"):
        _add_streaks(hu, tissue, grid, cv.metal, rng_f)
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
    hu = _scanner(hu, an, f, np.abs(np.diag(affine)[:3]), s_noise, rng_f)
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


def _tissue_hu(
    an: SimpleNamespace, f: _Factors, rng: np.random.Generator
) -> dict[str, float]:
    """Mean HU of each tissue in this case: the patient's, then the phase's."""
    hu = dict(an.hu)
    # far beyond the 12-bit scale: blooms and saturates at 3071 HU, as on CT
    hu["metal"] = 8000.0
    if f.phase is not None:
        for nm, (lo, hi) in _PHASE_HU[f.phase].items():
            hu[nm] = float(rng.uniform(lo, hi))
        hu["halo"] = hu["visceral_fat"]
        if f.phase == "delayed":
            hu["bladder_urine"] = an.lesser_pelvis.bladder.delayed_hu
    if f.oral_contrast:
        level = float(rng.uniform(*_ORAL_CONTRAST_HU))
        for nm in _ORAL_CONTRAST_TISSUES:
            hu[nm] = level * float(rng.uniform(0.8, 1.0))
    # fat infiltrating the parenchyma: attenuation mixes linearly by volume
    ff = an.pancreas.fat_fraction
    if ff:
        hu["pancreas"] = (1.0 - ff) * hu["pancreas"] + ff * hu["visceral_fat"]
    return hu


# Point-spread function FWHM-like width (mm, Gaussian sigma) per kernel, and
# the edge enhancement (unsharp-mask weight) of sharp kernels.
_KERNEL_PSF_MM = {"smooth": (1.0, 1.4), "standard": (0.55, 0.9), "sharp": (0.3, 0.45)}
_SHARP_GAIN = (0.3, 0.6)
_SHARP_SIGMA_MM = 1.2


def _scanner(
    hu: NDArray[np.float32],
    an: SimpleNamespace,
    f: _Factors,
    spacing: NDArray[Any],
    s_noise: np.random.SeedSequence,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Point-spread function (the kernel) and correlated quantum noise."""
    psf_mm = an.psf_mm  # "standard": the patient's own draw
    if f.kernel in ("smooth", "sharp"):
        psf_mm = float(rng.uniform(*_KERNEL_PSF_MM[f.kernel]))
    sharp = float(rng.uniform(*_SHARP_GAIN)) if f.kernel == "sharp" else 0.0
    noise_sigma = an.noise_sigma if f.noise is None else f.noise
    sig = np.maximum(psf_mm / spacing, 0.45)
    sig_u = np.r_[_SHARP_SIGMA_MM / spacing[:2], 0.0]

    def kernel(a: NDArray[np.float32], mode: str) -> NDArray[np.float32]:
        a = ndimage.gaussian_filter(a, sig, mode=mode, truncate=3.0)
        if sharp:
            a += np.float32(sharp) * (
                a - ndimage.gaussian_filter(a, sig_u, mode=mode, truncate=3.0)
            )
        return a

    if sharp:
        # noise gain of the whole linear filter, from its impulse response
        r = np.ceil(3.0 * np.maximum(sig, sig_u)).astype(int) + 1
        delta = np.zeros(tuple(2 * r + 1), dtype=np.float32)
        delta[tuple(r)] = 1.0
        gain = float(np.sqrt((kernel(delta, "constant") ** 2).sum()))
    else:
        gain = math.sqrt(math.prod(_gauss_ss(float(s)) for s in sig))
    rng_n = np.random.default_rng(s_noise)
    noise = rng_n.standard_normal(hu.shape, dtype=np.float32)
    noise *= np.float32(noise_sigma / gain)
    hu += noise
    del noise
    return kernel(hu, "nearest")


def _paint_metal(cv: _Canvas, an: SimpleNamespace, rng: np.random.Generator) -> None:
    """Surgical clips in the gallbladder fossa (after cholecystectomy).

    Three to six small metal cylinders (about 3 x 3 x 9 mm) whose centres are
    kept in ``cv.metal`` for their streaks.
    """
    g = cv.grid
    gb = an.gallbladder
    c0 = gb.c if gb is not None else an.porta + np.array([-10.0, 5.0, -20.0])
    for _ in range(int(rng.integers(3, 7))):
        c = c0 + rng.uniform(-12.0, 12.0, 3) * (1.0, 1.0, 0.8)
        sl = g.window(c - (2.5, 2.5, 6.0), c + (2.5, 2.5, 6.0))
        cv.metal.append(c)
        if sl is None:
            continue
        xs, ys, zs = g.coords(sl)
        m = (
            ((xs[:, None, None] - c[0]) ** 2 + (ys[None, :, None] - c[1]) ** 2 < 2.4)
            & (np.abs(zs[None, None, :] - c[2]) < 4.5)
        )
        # at least the voxel holding the centre, whatever the grid
        if not m.any():
            idx = [min(max(int(np.searchsorted(a, v)), 0), len(a) - 1)
                   for a, v in zip((xs, ys, zs), c)]
            m[tuple(idx)] = True
        cv.paint(_T.METAL, sl, m)


def _line_profile(
    X: NDArray[Any], Y: NDArray[Any], p: NDArray[Any], q: NDArray[Any], width: float
) -> NDArray[np.float32]:
    """Gaussian band of ``width`` mm along the segment from ``p`` to ``q``."""
    d = q - p
    length = float(np.hypot(*d)) + 1e-6
    ux, uy = d / length
    t = (X - p[0]) * ux + (Y - p[1]) * uy
    perp = (X - p[0]) * -uy + (Y - p[1]) * ux
    along = np.clip(np.minimum(t, length - t) / width + 1.0, 0.0, 1.0)
    return (np.exp(-((perp / width) ** 2)) * along).astype(np.float32)


def _add_streaks(
    hu: NDArray[np.float32],
    tissue: NDArray[np.uint8],
    grid: _Grid,
    metal: list[NDArray[Any]],
    rng: np.random.Generator,
) -> None:
    """Beam-hardening and metal streaks, in place, on the render grid.

    Dark bands join dense bones seen in the same slice (vertebra, ribs,
    iliac wings: beam hardening, 20-60 HU); with metal, alternating bright and
    dark streaks radiate from each clip (150-350 HU, fading with distance)
    and dark bands join the clips.
    """
    X = grid.x.astype(np.float32)[:, None]
    Y = grid.y.astype(np.float32)[None, :]
    z = grid.z
    amp_bone = float(rng.uniform(20.0, 60.0))
    px_mm2 = grid.step[0] * grid.step[1]
    block = max(1, round(10.0 / grid.step[2]))
    for k0 in range(0, len(z), block):
        k1 = min(k0 + block, len(z))
        bone = tissue[:, :, (k0 + k1) // 2] == _T.BONE_CORTICAL
        lab, n = ndimage.label(bone)
        if n < 2:
            continue
        area = ndimage.sum_labels(bone, lab, range(1, n + 1)) * px_mm2
        big = np.argsort(area)[::-1][:4]
        big = big[area[big] > 20.0]
        cents = ndimage.center_of_mass(bone, lab, big + 1)
        pts = [np.array([grid.x[0] + c[0] * grid.step[0],
                         grid.y[0] + c[1] * grid.step[1]]) for c in cents]
        band = np.zeros(bone.shape, dtype=np.float32)
        for i in range(len(pts)):
            for j in range(i + 1, len(pts)):
                w = min(area[big[i]], area[big[j]]) / 200.0
                band -= min(w, 1.0) * _line_profile(X, Y, pts[i], pts[j], 4.0)
        hu[:, :, k0:k1] += (amp_bone * band)[:, :, None]
    if not metal:
        return
    amp = float(rng.uniform(150.0, 350.0))
    n_lines = 16
    phi0 = float(rng.uniform(0.0, np.pi))
    for c in metal:
        ks = np.flatnonzero(np.abs(z - c[2]) < 8.0)
        if ks.size == 0:
            continue
        r = np.hypot(X - c[0], Y - c[1])
        ang = np.arctan2(Y - c[1], X - c[0])
        star = np.zeros(r.shape, dtype=np.float32)
        for j in range(n_lines):
            phi = phi0 + j * np.pi / n_lines
            perp = r * np.sin(ang - phi)
            star += (1.0 if j % 2 else -1.0) * np.exp(-((perp / 1.2) ** 2))
        star /= 1.0 + r / 30.0
        for c2 in metal:
            if c2 is not c and abs(c2[2] - c[2]) < 8.0:
                star -= 0.5 * _line_profile(X, Y, c[:2], c2[:2], 2.0)
        fade = np.exp(-np.abs(z[ks] - c[2]) / 3.0).astype(np.float32)
        hu[:, :, ks] += amp * star[:, :, None] * fade[None, None, :]
