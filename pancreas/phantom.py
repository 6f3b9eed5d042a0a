"""Synthetic contrast-enhanced abdominal CT: the built-in phantom cohort.

No real training data can be downloaded where this package is developed and
tested, so demos, tests and benchmarks run on a synthetic cohort instead. Each
case is a portal-venous abdominal CT built from an anatomical model written in
millimetres (body wall, fat, muscles, spine and ribs, liver, spleen, kidneys,
great vessels, stomach, duodenum, colon and small bowel, mesenteric vessels,
lung bases) and rasterised on the requested grid, with the pancreas as a
curved, lobulated head-body-tail organ surrounded by fat.

The pancreas is realistic enough to be hard: many of its neighbours (bowel
wall, duodenum, liver, spleen, collapsed jejunal loops, vessels) share its
Hounsfield range, so intensity alone cannot segment it; shape, context and
texture (a lobulated outline with fatty clefts and specks) can.

Coordinates: every case has a positive-diagonal RAS+ affine, so array axis 0
runs towards the patient's right, axis 1 towards anterior and axis 2 towards
superior (the spine lies at low axis-1 indices, the anterior abdominal wall at
high ones, the liver at high axis-0 indices, the spleen at low ones), as in a
real scan converted to RAS+. (The anatomical model itself is written with x
towards the patient's left, as in DICOM; the output is mirrored to RAS+.)

For tests and diagnostics, ``_make_case(seed, shape, return_tissues=True)``
also returns the tissue map (codes in :data:`TISSUES`; the label is made of
:data:`PANCREAS_TISSUES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, lru_cache, partial
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pancreas._parallel import parallel_map
from pancreas.io import Volume

__all__ = ["make_phantom_cohort", "make_synthetic_ct"]

# --------------------------------------------------------------------------
# Tissue classes
# --------------------------------------------------------------------------

_TISSUE_NAMES = (
    "air",
    "skin",
    "subcutaneous_fat",
    "visceral_fat",
    "muscle",
    "bone_cortical",
    "bone_cancellous",
    "cartilage",
    "csf",
    "disc",
    "lung",
    "liver",
    "gallbladder",
    "spleen",
    "kidney_cortex",
    "kidney_medulla",
    "urine",
    "stomach_wall",
    "stomach_content",
    "gas",
    "bowel_wall",
    "bowel_content",
    "colon_wall",
    "stool",
    "duodenum_wall",
    "duodenum_content",
    "artery",
    "vein",
    "ivc",
    "pancreas",
    "pancreas_fat",
    "pancreatic_duct",
    "bile_duct",
    "heart",
    "blood",
    "lymph_node",
    "table",
    "halo",  # internal: reserved fat around the pancreas, output as visceral_fat
)
#: Tissue name -> code in the tissue map returned by ``_make_case``.
TISSUES: dict[str, int] = {name: code for code, name in enumerate(_TISSUE_NAMES)}
_T = SimpleNamespace(**{name.upper(): code for name, code in TISSUES.items()})
#: Tissue codes that make up the pancreas label.
PANCREAS_TISSUES = (_T.PANCREAS, _T.PANCREAS_FAT, _T.PANCREATIC_DUCT)

# Mean HU of each tissue: (low, high) of the per-case uniform draw.
_HU_RANGES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "skin": (20.0, 50.0),
    "subcutaneous_fat": (-115.0, -90.0),
    "visceral_fat": (-110.0, -85.0),
    "muscle": (48.0, 62.0),
    "bone_cortical": (650.0, 1000.0),
    "bone_cancellous": (200.0, 320.0),
    "cartilage": (110.0, 180.0),
    "csf": (5.0, 15.0),
    "disc": (70.0, 100.0),
    "lung": (-880.0, -820.0),
    "liver": (92.0, 118.0),
    "gallbladder": (0.0, 20.0),
    "spleen": (102.0, 125.0),
    "kidney_cortex": (165.0, 200.0),
    "kidney_medulla": (105.0, 135.0),
    "urine": (0.0, 20.0),
    "stomach_wall": (55.0, 75.0),
    "stomach_content": (0.0, 25.0),
    "gas": (-1000.0, -985.0),
    "bowel_wall": (65.0, 95.0),
    "bowel_content": (5.0, 30.0),
    "colon_wall": (55.0, 80.0),
    "stool": (-40.0, 30.0),
    "duodenum_wall": (62.0, 80.0),
    "duodenum_content": (0.0, 20.0),
    "artery": (155.0, 195.0),
    "vein": (145.0, 180.0),
    "ivc": (130.0, 160.0),
    "pancreas": (88.0, 125.0),
    "pancreas_fat": (-50.0, -10.0),
    "pancreatic_duct": (5.0, 20.0),
    "bile_duct": (5.0, 20.0),
    "heart": (95.0, 120.0),
    "blood": (140.0, 175.0),
    "lymph_node": (40.0, 65.0),
    "table": (-60.0, 80.0),
}


@cache
def _lut(codes: tuple[int, ...]) -> NDArray[np.bool_]:
    lut = np.zeros(256, dtype=bool)
    lut[list(codes)] = True
    return lut


_VISC = (_T.VISCERAL_FAT,)

# --------------------------------------------------------------------------
# Small geometric helpers
# --------------------------------------------------------------------------


def _smoothstep(t: Any) -> Any:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Grid:
    """Rectilinear render grid: voxel-centre coordinates in patient mm."""

    def __init__(self, x: NDArray[Any], y: NDArray[Any], z: NDArray[Any]) -> None:
        self.x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.float32)
        self.z = np.asarray(z, dtype=np.float32)
        self.shape = (self.x.size, self.y.size, self.z.size)
        self.origin = [float(c[0]) for c in (self.x, self.y, self.z)]
        self.step = [
            float(c[1] - c[0]) if c.size > 1 else 1.0 for c in (self.x, self.y, self.z)
        ]

    def window(
        self, lo: Sequence[float], hi: Sequence[float]
    ) -> tuple[slice, slice, slice] | None:
        """Index window of the voxels whose centres lie in the box [lo, hi]."""
        out = []
        for ax in range(3):
            i0, i1 = self.span(ax, float(lo[ax]), float(hi[ax]))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return out[0], out[1], out[2]

    def span(self, ax: int, a: float, b: float) -> tuple[int, int]:
        """Indices [i0, i1) of the voxel centres in [a, b] along an axis."""
        o, d, n = self.origin[ax], self.step[ax], self.shape[ax]
        i0 = max(math.ceil((a - o) / d - 1e-9), 0)
        i1 = min(math.floor((b - o) / d + 1e-9) + 1, n)
        return i0, i1

    def coords(
        self, sl: tuple[slice, slice, slice]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        return self.x[sl[0]], self.y[sl[1]], self.z[sl[2]]


class _Canvas:
    """Tissue map on a render grid, plus texture jobs applied at the end."""

    def __init__(self, grid: _Grid) -> None:
        self.grid = grid
        self.tissue = np.zeros(grid.shape, dtype=np.uint8)
        self.textures: list[tuple[Any, ...]] = []

    def paint(
        self,
        code: int,
        sl: tuple[slice, ...],
        mask: NDArray[np.bool_],
        allowed: tuple[int, ...] | None = None,
    ) -> NDArray[np.bool_]:
        t = self.tissue[sl]
        mask = np.broadcast_to(mask, t.shape)
        if allowed is not None:
            mask = mask & _lut(allowed)[t]
        t[mask] = code
        return mask

    def apply_textures(self, hu: NDArray[np.float32]) -> None:
        """Add each texture job's HU offsets where its tissue survived."""
        for job in self.textures:
            code, sl = job[1], job[2]
            sub_t = self.tissue[sl]
            sub_h = hu[sl]
            if job[0] == "grid":
                field, amp = job[3], job[4]
                m = sub_t == code
                if m.any():
                    f = field.on_grid(*self.grid.coords(sl))
                    sub_h[m] += np.float32(amp) * f[m]
            else:
                idx, vals = job[3], job[4]
                keep = sub_t[idx] == code
                sub_h[tuple(i[keep] for i in idx)] += vals[keep]


class _Field:
    """A smooth random field (zero mean, unit std) on a physical lattice.

    Drawn once per case in millimetres, so that the same anatomy is sampled
    whatever the render grid; sampled by separable linear interpolation.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        lo: Sequence[float],
        hi: Sequence[float],
        step: float,
        sigma_mm: float,
    ) -> None:
        lo_a = np.asarray(lo, dtype=np.float64) - 2 * step
        hi_a = np.asarray(hi, dtype=np.float64) + 2 * step
        n = np.maximum(np.ceil((hi_a - lo_a) / step).astype(int) + 1, 2)
        v = rng.standard_normal(tuple(int(k) for k in n), dtype=np.float32)
        v = ndimage.gaussian_filter(v, sigma_mm / step, mode="wrap")
        v -= v.mean()
        v /= v.std() + 1e-12
        self.lo = lo_a
        self.step = float(step)
        self.v = v

    def on_grid(
        self, xs: NDArray[Any], ys: NDArray[Any], zs: NDArray[Any]
    ) -> NDArray[np.float32]:
        out = self.v
        for axis, c in enumerate((xs, ys, zs)):
            n = out.shape[axis]
            t = (np.asarray(c, dtype=np.float32) - np.float32(self.lo[axis])) / (
                np.float32(self.step)
            )
            i = np.clip(np.floor(t).astype(np.intp), 0, n - 2)
            w = np.clip(t - i, 0.0, 1.0).astype(np.float32)
            shape = [1, 1, 1]
            shape[axis] = -1
            a = np.take(out, i, axis=axis)
            b = np.take(out, i + 1, axis=axis)
            b -= a
            b *= w.reshape(shape)
            a += b
            out = a
        return out

    def at_points(self, pts: NDArray[Any]) -> NDArray[np.float32]:
        coords = (np.asarray(pts, dtype=np.float64) - self.lo) / self.step
        return ndimage.map_coordinates(self.v, coords.T, order=1, mode="nearest")


class _Waves:
    """A smooth random field (zero mean, unit variance) as random plane waves.

    Gaussian spectrum, so the correlation is ``exp(-r**2 / (2 * sigma**2))``;
    evaluated at arbitrary points in mm, independent of any grid.
    """

    def __init__(self, rng: np.random.Generator, sigma_mm: float, n: int = 32) -> None:
        self.w = rng.normal(0.0, 1.0 / sigma_mm, (3, n)).astype(np.float32)
        self.ph = rng.uniform(0.0, 2 * np.pi, n).astype(np.float32)
        self.amp = np.float32(math.sqrt(2.0 / n))

    def at(self, pts: NDArray[Any]) -> NDArray[np.float32]:
        pts = np.asarray(pts, dtype=np.float32)
        out = np.empty(len(pts), dtype=np.float32)
        for c in range(0, len(pts), 32768):
            a = pts[c : c + 32768] @ self.w
            a += self.ph
            np.cos(a, out=a)
            out[c : c + 32768] = a.sum(axis=1) * self.amp
        return out


def _curve(
    ctrl: Any,
    radii: Any,
    *,
    step_factor: float = 0.4,
    min_step: float = 0.6,
    max_step: float = 6.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sample a smooth tube through control points, spaced by local radius.

    Returns the sample points (n, 3), radii (n,) and arc lengths (n,).
    """
    ctrl = np.asarray(ctrl, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    if radii.ndim == 0:
        radii = np.full(len(ctrl), float(radii))
    seg = np.linalg.norm(np.diff(ctrl, axis=0), axis=1)
    keep = np.r_[True, seg > 1e-6]
    ctrl, radii = ctrl[keep], radii[keep]
    if len(ctrl) < 2:
        ctrl = np.vstack([ctrl, ctrl + 1e-3])
        radii = np.r_[radii, radii]
    t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(ctrl, axis=0), axis=1))]
    # Catmull-Rom (cubic Hermite) spline with chord-length parameter
    tan = np.empty_like(ctrl)
    tan[0] = (ctrl[1] - ctrl[0]) / (t[1] - t[0])
    tan[-1] = (ctrl[-1] - ctrl[-2]) / (t[-1] - t[-2])
    if len(ctrl) > 2:
        tan[1:-1] = (ctrl[2:] - ctrl[:-2]) / (t[2:] - t[:-2])[:, None]
    h = np.diff(t)
    k = np.maximum(np.ceil(h).astype(int), 2)
    seg = np.repeat(np.arange(len(h)), k)
    v = np.concatenate([np.arange(n) / n for n in k])[:, None]
    hs = h[seg][:, None]
    pos = (
        (2 * v**3 - 3 * v**2 + 1) * ctrl[seg]
        + (v**3 - 2 * v**2 + v) * hs * tan[seg]
        + (-2 * v**3 + 3 * v**2) * ctrl[seg + 1]
        + (v**3 - v**2) * hs * tan[seg + 1]
    )
    pos = np.vstack([pos, ctrl[-1:]])
    rad = np.r_[radii[seg] + (radii[seg + 1] - radii[seg]) * v[:, 0], radii[-1]]
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pos, axis=0), axis=1))]
    step = np.clip(step_factor * rad, min_step, max_step)
    count = np.r_[0.0, np.cumsum(np.diff(arc) / (0.5 * (step[1:] + step[:-1])))]
    n = max(math.ceil(count[-1]), 1)
    s = np.interp(np.linspace(0.0, count[-1], n + 1), count, arc)
    pts = np.stack([np.interp(s, arc, pos[:, k]) for k in range(3)], axis=1)
    return pts, np.interp(s, arc, rad), s


def _tube_sdf(
    grid: _Grid,
    pts: NDArray[Any],
    radii: NDArray[Any],
    margin: float,
    zscale: float = 1.0,
    track: bool = False,
) -> tuple[tuple[slice, slice, slice], NDArray[np.float32], NDArray[np.int32] | None]:
    """Approximate signed distance (mm) to a union of balls, in its window.

    Voxels farther than ``margin`` outside the tube hold +inf. With ``track``
    also returns, per voxel, the index of the nearest ball.
    """
    ids = list(range(len(pts)))
    if len(pts) > 2:
        # on coarse grids fewer balls do: keep their spacing below the radius
        ds = float(np.median(np.linalg.norm(np.diff(pts, axis=0), axis=1)))
        vox, r_min = min(grid.step), float(radii.min())
        if vox >= 1.5:  # bumps of a tenth of the radius are below the voxel size
            want = max(0.7 * vox, 0.8 * r_min)
        else:
            want = 0.45 * vox if r_min < 0.5 * vox else min(0.45 * vox, 0.7 * r_min)
        stride = int(want / max(ds, 1e-6))
        if stride > 1:
            keep = np.r_[np.arange(0, len(pts) - 1, stride), len(pts) - 1]
            pts, radii, ids = pts[keep], radii[keep], keep.tolist()
    ext = radii + margin
    lo = [
        (pts[:, 0] - ext).min(),
        (pts[:, 1] - ext).min(),
        (pts[:, 2] - ext * zscale).min(),
    ]
    hi = [
        (pts[:, 0] + ext).max(),
        (pts[:, 1] + ext).max(),
        (pts[:, 2] + ext * zscale).max(),
    ]
    sl = grid.window(lo, hi)
    if sl is None:
        return None  # type: ignore[return-value]
    xs, ys, zs = grid.coords(sl)
    sdf = np.full((xs.size, ys.size, zs.size), np.inf, dtype=np.float32)
    own = np.zeros(sdf.shape, dtype=np.int32) if track else None
    inv_z2 = np.float32(1.0 / (zscale * zscale))
    off = np.array([sl[0].start, sl[1].start, sl[2].start])
    size = np.array(sdf.shape)
    ext3 = ext[:, None] * np.array([1.0, 1.0, zscale])
    org, stp = np.array(grid.origin), np.array(grid.step)
    i_lo = np.ceil((pts - ext3 - org) / stp - 1e-9).astype(int) - off
    i_hi = np.floor((pts + ext3 - org) / stp + 1e-9).astype(int) + 1 - off
    i_lo = np.clip(i_lo, 0, size).tolist()
    i_hi = np.clip(i_hi, 0, size).tolist()
    for i, (p, r) in enumerate(zip(pts.tolist(), radii.tolist(), strict=True)):
        i0, j0, k0 = i_lo[i]
        i1, j1, k1 = i_hi[i]
        if i1 <= i0 or j1 <= j0 or k1 <= k0:
            continue
        dx = (xs[i0:i1] - np.float32(p[0])) ** 2
        dy = (ys[j0:j1] - np.float32(p[1])) ** 2
        dz = (zs[k0:k1] - np.float32(p[2])) ** 2 * inv_z2
        d = dx[:, None, None] + dy[None, :, None]
        d = d + dz[None, None, :]
        np.sqrt(d, out=d)
        d -= r
        sub = sdf[i0:i1, j0:j1, k0:k1]
        if own is None:
            np.minimum(sub, d, out=sub)
        else:
            better = d < sub
            sub[better] = d[better]
            own[i0:i1, j0:j1, k0:k1][better] = ids[i]
    return sl, sdf, own


def _rotation(long_axis: Any, toward: Any) -> NDArray[np.float64]:
    """Orthonormal frame: column 2 along ``long_axis``, column 0 near ``toward``."""
    e2 = np.asarray(long_axis, dtype=np.float64)
    e2 = e2 / np.linalg.norm(e2)
    e0 = np.asarray(toward, dtype=np.float64)
    e0 = e0 - e2 * (e0 @ e2)
    e0 /= np.linalg.norm(e0)
    e1 = np.cross(e2, e0)
    return np.stack([e0, e1, e2], axis=1)


def _local(
    xs: NDArray[Any],
    ys: NDArray[Any],
    zs: NDArray[Any],
    c: Any,
    rot: NDArray[Any],
) -> list[NDArray[np.float32]]:
    """Coordinates of the grid box in the frame (c, rot), as 3D arrays."""
    dx = (xs - np.float32(c[0]))[:, None, None]
    dy = (ys - np.float32(c[1]))[None, :, None]
    dz = (zs - np.float32(c[2]))[None, None, :]
    rot = rot.astype(np.float32)
    return [dx * rot[0, k] + dy * rot[1, k] + dz * rot[2, k] for k in range(3)]


# --------------------------------------------------------------------------
# Body outline (shared by sampling and rendering)
# --------------------------------------------------------------------------


def _body_radius(th: NDArray[Any], an: SimpleNamespace) -> NDArray[Any]:
    c, s = np.cos(th), np.sin(th)
    b = np.where(s >= 0, an.b_ant, an.b_post)
    p = np.where(s >= 0, an.p_ant, an.p_post)
    r = ((np.abs(c) / an.a) ** p + (np.abs(s) / b) ** p) ** (-1.0 / p)
    h = 1.0
    for k, (amp, ph) in enumerate(an.harmonics, start=2):
        h = h + amp * np.cos(k * th + ph)
    dth = np.angle(np.exp(1j * (th + np.pi / 2)))
    return r * h - an.groove * np.exp(-((dth / 0.1) ** 2))


def _fat_thickness(th: NDArray[Any], an: SimpleNamespace) -> NDArray[Any]:
    c, s = np.cos(th), np.sin(th)
    f = (
        1.0
        + (an.f_ant - 1.0) * np.maximum(s, 0)
        + (an.f_post - 1.0) * np.maximum(-s, 0)
    )
    return an.tsc * f * (1.0 + an.f_flank * c * c)


def _wall_thickness(th: NDArray[Any], an: SimpleNamespace) -> NDArray[Any]:
    c, s = np.cos(th), np.sin(th)
    return (
        an.t_ant * np.maximum(s, 0) ** 2
        + an.t_lat * c * c
        + an.t_post * np.maximum(-s, 0) ** 2
    )


def _body_scale(z: Any, an: SimpleNamespace) -> Any:
    t = np.asarray(z, dtype=np.float64) / 150.0
    return 1.0 + an.taper * t * t + an.tilt * t


def _inner_point(theta: Any, z: Any, an: SimpleNamespace, inset: Any = 0.0) -> Any:
    """Point(s) on the inner surface of the muscle wall (minus ``inset`` mm)."""
    th = np.asarray(theta, dtype=np.float64)
    r = (
        _body_radius(th, an) * _body_scale(z, an)
        - _fat_thickness(th, an)
        - _wall_thickness(th, an)
        - inset
    )
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=-1)


def _cavity_y_ant(x: float, z: float, an: SimpleNamespace) -> float:
    """Anterior inner wall y at lateral position x (approximately)."""
    pts = _inner_point(np.linspace(0.15, np.pi - 0.15, 241), z, an)
    return float(pts[np.argmin(np.abs(pts[:, 0] - x)), 1])


def _cavity_x(side: int, y: float, z: float, an: SimpleNamespace) -> float:
    """Lateral inner wall x at height y on one side (+1 left, -1 right)."""
    ths = np.linspace(-np.pi / 2 + 0.1, np.pi / 2 - 0.1, 241)
    if side < 0:
        ths = np.pi - ths
    pts = _inner_point(ths, z, an)
    return float(pts[np.argmin(np.abs(pts[:, 1] - y)), 0])


def _dome(x: NDArray[Any], y: NDArray[Any], an: SimpleNamespace) -> NDArray[Any]:
    """Height (z, mm) of the diaphragm under the lung bases."""
    d = an.dome
    # deep posterior recesses; anteriorly the diaphragm rises to the xiphoid
    dy = y - d.y0
    dy2 = np.where(dy > 0, (0.3 * dy) ** 2, (dy * d.ky) ** 2)
    right = d.zr - d.k * ((x - d.xr) ** 2 + dy2)
    left = d.zl - d.k * ((x - d.xl) ** 2 + dy2)
    return np.maximum(right, left)


# --------------------------------------------------------------------------
# Anatomy sampling (millimetres only: independent of the render grid)
# --------------------------------------------------------------------------


def _sample_anatomy(rng: np.random.Generator) -> SimpleNamespace:
    """Draw one case's anatomy, intensities and scanner settings, in mm.

    Everything random about a case except its grid (slice count of full-size
    cases) and its noise realisation is drawn here, so the same case can be
    rendered on any grid.
    """
    u = rng.uniform
    an = SimpleNamespace()
    an.hu = {k: float(u(*v)) for k, v in _HU_RANGES.items()}
    an.hu["halo"] = an.hu["visceral_fat"]
    an.noise_sigma = float(u(10.0, 20.0))
    an.psf_mm = float(u(0.55, 0.9))

    # ---- field of view and body ----------------------------------------------
    # the field of view is chosen to fit the patient, as on a scanner
    an.a = float(u(132.0, 176.0))
    an.fov = float(np.clip(max(2.28 * an.a, 2 * an.a + u(40.0, 130.0)), 307.2, 460.8))
    ap = 2 * an.a * float(u(0.7, 0.86))
    an.b_post = ap * float(u(0.45, 0.5))
    an.b_ant = ap - an.b_post
    an.p_ant = float(u(1.9, 2.25))
    an.p_post = float(u(2.3, 3.0))
    an.harmonics = [(float(u(0.0, 0.015)), float(u(0, 2 * np.pi))) for _ in range(4)]
    an.groove = float(u(2.0, 7.0))
    an.taper = float(u(-0.04, 0.06))
    an.tilt = float(u(-0.03, 0.03))
    an.tsc = 5.0 + (an.a - 132.0) / 44.0 * 15.0 + float(u(0.0, 12.0))
    an.f_ant = float(u(0.7, 1.3))
    an.f_post = float(u(0.8, 1.2))
    an.f_flank = float(u(0.1, 0.5))
    an.skin = float(u(1.5, 2.5))
    an.t_ant = float(u(8.0, 13.0))
    an.t_lat = float(u(11.0, 17.0))
    an.t_post = float(u(6.0, 10.0))
    an.linea = float(u(3.0, 6.0))
    an.semilunar = float(u(60.0, 85.0))
    an.wall_planes = (float(u(0.28, 0.38)), float(u(0.6, 0.72)))
    half = an.fov / 2
    an.fov_cx = float(u(-1, 1)) * max(0.0, min(12.0, half - an.a - 8))
    room = half - 0.5 * (an.b_ant + an.b_post)
    an.fov_cy = -0.5 * (an.b_ant - an.b_post) + float(u(-1, 1)) * max(
        0.0, min(15.0, room - 10)
    )
    an.table_gap = float(u(4.0, 15.0))
    an.world = np.array([0.0, float(u(-30, 30)), float(u(-350, -80))])

    # ---- z coverage: crop for coarse grids inside the full-size one ----------
    m_inf = float(u(80.0, 110.0))
    m_sup = float(u(55.0, 85.0))
    an.z_crop = (-m_inf, m_sup)
    z_lo = -m_inf - float(u(0.0, 120.0))
    z_hi = m_sup + float(u(10.0, 50.0))
    if z_hi - z_lo < 160.0:
        z_lo = z_hi - 160.0
    an.z_full = (z_lo, z_hi)

    # ---- spine ---------------------------------------------------------------
    tsc_back = float(_fat_thickness(np.array(-np.pi / 2), an))
    an.ys = -an.b_post + tsc_back + float(u(55.0, 66.0))
    an.vb_a = float(u(20.0, 25.0))
    an.vb_b = float(u(15.0, 18.0))
    an.pitch = float(u(31.0, 36.0))
    an.disc_h = float(u(7.0, 10.0))
    an.z_l1 = float(u(-20.0, 5.0))
    an.canal = (float(u(10.0, 12.5)), float(u(7.0, 9.0)))
    an.tp_len = float(u(32.0, 42.0))
    an.sp_len = float(u(28.0, 38.0))
    an.para_a = float(u(24.0, 32.0))
    an.psoas_top = an.z_l1 + float(u(0.0, 20.0))
    an.psoas_rate = float(u(0.12, 0.18))
    an.psoas_max = float(u(18.0, 26.0))
    an.ql = (float(u(12.0, 18.0)), float(u(7.0, 10.0)))

    # ---- ribs and pelvis -----------------------------------------------------
    an.ribs = _sample_ribs(rng, an)
    an.z_crest = an.z_l1 - an.pitch * float(u(3.2, 3.9))
    an.wing = SimpleNamespace(
        x=float(u(40, 55)), y=an.ys - float(u(0, 15)), r=float(u(55, 70))
    )

    # ---- diaphragm, lungs, heart ---------------------------------------------
    zr = float(u(95.0, 125.0))
    an.dome = SimpleNamespace(
        zr=zr,
        zl=zr - float(u(0.0, 20.0)),
        xr=-float(u(55.0, 75.0)),
        xl=float(u(55.0, 75.0)),
        y0=an.ys + float(u(40.0, 70.0)),
        k=float(u(0.0055, 0.008)),
        ky=float(u(0.8, 1.1)),
    )
    an.heart = SimpleNamespace(
        c=np.array([float(u(5, 30)), an.ys + float(u(95, 120)), an.dome.zl + 50]),
        axes=np.array([float(u(50, 62)), float(u(42, 52)), float(u(45, 55))]),
    )

    # ---- great vessels -------------------------------------------------------
    an.r_ao = float(u(9.0, 12.5))
    an.ax = float(u(6.0, 16.0))
    an.ay = an.ys + an.vb_b + an.r_ao + float(u(0.5, 4.0))
    an.ivc_r = (float(u(11.0, 14.0)), float(u(8.0, 11.0)))
    an.ix = -float(u(18.0, 27.0))
    an.iy = an.ys + an.vb_b + float(u(4.0, 10.0))
    an.z_bif = an.z_l1 - an.pitch * float(u(2.7, 3.4))
    z_top = an.z_full[1] + 10
    an.aorta = _curve(
        [
            (an.ax, an.ay - 6, z_top),
            (an.ax, an.ay - 2, 40.0),
            (an.ax + float(u(-3, 3)), an.ay, an.z_bif + 20),
            (an.ax, an.ay - 2, an.z_bif),
        ],
        an.r_ao,
    )
    an.iliac_a = [
        _curve(
            [
                (an.ax, an.ay - 2, an.z_bif + 5),
                (an.ax + sgn * 40, an.ay - 6, an.z_bif - 90),
                (an.ax + sgn * 70, an.ay - 4, an.z_bif - 180),
            ],
            an.r_ao * 0.62,
        )
        for sgn in (-1, 1)
    ]
    an.ivc = _curve(
        [
            (an.ix - 6, an.iy + 22, z_top),
            (an.ix - 3, an.iy + 12, 45.0),
            (an.ix, an.iy, 10.0),
            (an.ix + 2, an.iy, an.z_bif - 15),
        ],
        1.0,
    )
    an.iliac_v = [
        _curve(
            [
                (an.ix + 2, an.iy, an.z_bif - 10),
                (an.ix + 2 + sgn * 35, an.iy - 8, an.z_bif - 90),
                (an.ix + 2 + sgn * 65, an.iy - 8, an.z_bif - 180),
            ],
            an.ivc_r[0] * 0.6,
        )
        for sgn in (-1, 1)
    ]

    # ---- kidneys -------------------------------------------------------------
    kz = float(u(-20.0, 0.0))
    an.kidneys = []
    for side in (1, -1):
        c = np.array(
            [
                side * float(u(58.0, 72.0)),
                an.ys + float(u(-12.0, 2.0)),
                kz if side > 0 else kz - float(u(5.0, 25.0)),
            ]
        )
        rot = _rotation(
            (-side * float(u(0.15, 0.3)), -float(u(0.1, 0.3)), 1.0),
            (-side * 1.0, float(u(0.5, 1.0)), 0.0),
        )
        axes = np.array([float(u(24, 30)), float(u(19, 24)), float(u(48, 60))])
        an.kidneys.append(
            SimpleNamespace(
                side=side,
                c=c,
                rot=rot,
                axes=axes,
                cortex=float(u(5.0, 8.0)),
                n_pyr=int(rng.integers(5, 8)),
                ph=float(u(0, 2 * np.pi)),
                hilum=c + rot @ np.array([axes[0] * 0.75, 0.0, 0.0]),
            )
        )
    kl = an.kidneys[0]

    # ---- spleen --------------------------------------------------------------
    th_s = -float(u(0.05, 0.45))
    zs_c = kl.c[2] + float(u(35.0, 55.0))
    sa = np.array([float(u(22, 30)), float(u(48, 62)), float(u(42, 55))])
    u0 = np.array([np.cos(th_s), np.sin(th_s), 0.0])
    wall = _inner_point(th_s, zs_c, an, inset=sa[0] - 4)
    sc_c = np.array([wall[0], wall[1], zs_c])
    an.spleen = SimpleNamespace(
        c=sc_c,
        rot=_rotation((0.0, 0.0, 1.0), u0),
        axes=sa,
        hollow=float(u(0.35, 0.6)),
    )
    tang = np.array([-np.sin(th_s), np.cos(th_s), 0.0])  # points anterior
    hilum = sc_c - u0 * sa[0] * 0.8 + tang * sa[1] * 0.25

    # ---- pancreas ------------------------------------------------------------
    an.pancreas = _sample_pancreas(rng, an, hilum, kl)

    # ---- visceral vessels ----------------------------------------------------
    _sample_visceral_vessels(rng, an)

    # ---- duodenum, stomach, liver, gallbladder, colon, small bowel -----------
    _sample_gut(rng, an)
    _sample_liver(rng, an)
    _sample_small_bowel(rng, an)
    _sample_mesentery(rng, an)
    an.tex_liver = _Field(
        rng,
        (-an.a, -an.b_post, an.z_full[0]),
        (an.a * 0.7, an.b_ant, an.z_full[1]),
        4.0,
        6.0,
    )
    an.tex_amp = {
        "liver": float(u(3.0, 7.0)),
        "spleen": float(u(3.0, 7.0)),
        "pancreas": float(u(6.0, 14.0)),
        "stool": float(u(15.0, 35.0)),
        "muscle": float(u(2.0, 5.0)),
    }
    return an


def _sample_ribs(rng: np.random.Generator, an: SimpleNamespace) -> list[Any]:
    """Ribs 5-12 on both sides as tubes (bone, then costal cartilage)."""
    u = rng.uniform
    canal_cy = an.ys - an.vb_b - an.canal[1] + 1
    out = []
    for k in range(8):  # k = 0 is the 12th rib
        z_head = an.z_l1 + an.pitch * (1.0 + 0.95 * k) + float(u(-3, 3))
        drop = float(u(125.0, 170.0))
        end = [1.2, 1.75, 2.25, 2.45, 2.55, 2.6, 2.65, 2.7][k] + float(u(-0.15, 0.1))
        cart = 0.0 if k < 2 else float(u(2.9, 3.05))
        rad = float(u(3.6, 4.6))
        for sgn in (-1, 1):
            phis = np.linspace(0.25, max(end, cart), 40)
            th = -np.pi / 2 + sgn * phis
            z = z_head - drop * (phis - 0.25) / np.pi
            z = np.where(
                phis > end, z_head - drop * (end - 0.25) / np.pi + 25 * (phis - end), z
            )
            rw = (
                _body_radius(th, an) * _body_scale(z, an)
                - _fat_thickness(th, an)
                - 0.45 * _wall_thickness(th, an)
            )
            w = _smoothstep((phis - 0.25) / 0.9)
            px = (1 - w) * sgn * (an.tp_len + 6) + w * rw * np.cos(th)
            py = (1 - w) * (canal_cy + 2) + w * rw * np.sin(th)
            pts = np.column_stack([px, py, z])
            bone = phis <= end
            out.append((_curve(pts[bone], rad, step_factor=0.7), _T.BONE_CORTICAL))
            if cart > end:
                i0 = max(int(bone.sum()) - 1, 0)
                out.append(
                    (_curve(pts[i0:], rad * 0.85, step_factor=0.7), _T.CARTILAGE)
                )
    return out


def _sample_pancreas(
    rng: np.random.Generator,
    an: SimpleNamespace,
    hilum: NDArray[Any],
    kl: SimpleNamespace,
) -> SimpleNamespace:
    u = rng.uniform
    ax, ay = an.ax, an.ay
    sc = float(u(0.88, 1.12))
    rh = float(u(12.5, 16.0))
    rn = float(u(7.0, 9.5))
    rb = float(u(8.5, 11.5))
    rt = float(u(8.0, 11.0))
    h = float(u(1.2, 1.5))
    hz = float(u(-28.0, -14.0))
    head = np.array([ax - 46 * sc + float(u(-4, 4)), ay + 24 + float(u(-4, 4)), hz])
    neck = np.array([ax - 10 * sc, ay + 40 + float(u(-3, 5)), float(u(-6, 2))])
    body = np.array([ax + 20 * sc, ay + 42 + float(u(-4, 5)), float(u(-2, 8))])
    # the tail runs towards the splenic hilum, anterior to the left kidney
    tip = hilum + np.array([-float(u(6, 14)), float(u(4, 12)), 0.0])
    kid_front = kl.c[1] + kl.axes[1] + 10 + rt * 0.6
    tip[1] = max(tip[1], kid_front)
    tip[2] = float(np.clip(hilum[2] - float(u(5, 30)), body[2] - 8, body[2] + 32))
    tail = (body + tip) / 2 + np.array(
        [float(u(0, 10)), -float(u(0, 8)), float(u(-4, 4))]
    )
    ctrl0 = np.array(
        [
            (
                ax - 20 * sc,
                ay + 15 + float(u(-2, 3)),
                hz - float(u(14, 22)),
            ),  # uncinate
            (head[0] + 3, head[1] - 3, hz - 11),
            head,
            (head[0] + 14 * sc, head[1] + 9, hz + 12),
            neck,
            body,
            (body + tail) / 2 + np.array([0, float(u(-3, 3)), float(u(-3, 3))]),
            tail,
            tip,
        ],
        dtype=np.float64,
    )
    radii0 = np.array(
        [rh * 0.5, rh * 0.85, rh, rh * 0.8, rn, rb, (rb + rt) / 2, rt, rt * 0.55]
    )
    # clearances: each control point stays in front of what lies behind it
    ivc_front = an.iy + an.ivc_r[1] + 2.0
    ao_front = an.ay + an.r_ao + 2.0
    kid_front = kl.c[1] + kl.axes[1] + 6.0
    behind = np.array(
        [
            max(ivc_front, ao_front),
            ivc_front,
            ivc_front,
            ivc_front + 2,
            ao_front + 20.0,  # SMA, SMV and the portal confluence in between
            ao_front + 12.0,  # SMA and left renal vein
            max(ao_front + 4.0, kid_front),
            kid_front,
            kid_front,
        ]
    )
    P = SimpleNamespace(h=h, rh=rh)
    P.lob_amp = float(u(0.6, 2.0))
    P.rough_amp = float(u(0.3, 0.8))
    P.halo = float(u(1.5, 4.0))
    P.cleft_depth = float(u(2.0, 5.0))
    P.cleft_eps = float(u(0.0, 0.06))
    P.speck_q = float(u(0.0, 0.08))  # fraction of the organ in fatty specks
    P.duct_r = float(u(0.7, 1.5))
    P.f_lob = _Waves(rng, float(u(4.0, 6.0)))
    P.f_rough = _Waves(rng, 1.5, 24)
    P.f_cleft = _Waves(rng, float(u(2.0, 3.0)))
    P.f_speck = _Waves(rng, 1.0)
    P.f_tex = _Waves(rng, float(u(1.2, 2.2)), 24)
    P.target_ml = float(u(52.0, 100.0))

    def build(k: float) -> None:
        radii = radii0 * k
        ctrl = ctrl0.copy()
        # keep the organ inside the abdominal cavity, but in front of what
        # lies behind it (vessels, kidney)
        th = np.arctan2(ctrl[:, 1], ctrl[:, 0])
        r_in = np.linalg.norm(_inner_point(th, ctrl[:, 2], an), axis=1)
        r_max = r_in - (radii * 1.4 + 12.0)
        r_now = np.hypot(ctrl[:, 0], ctrl[:, 1])
        ctrl[:, :2] *= np.minimum(1.0, r_max / np.maximum(r_now, 1e-6))[:, None]
        ctrl[:, 1] = np.maximum(ctrl[:, 1], behind + radii + P.lob_amp)
        P.pts, P.radii, _ = _curve(
            ctrl, radii, step_factor=0.3, min_step=0.8, max_step=3.0
        )
        P.ctrl = ctrl
        P.head, P.neck, P.body, P.tail, P.tip = (
            ctrl[2],
            ctrl[4],
            ctrl[5],
            ctrl[7],
            ctrl[8],
        )

    # scale the radii so that the organ volume lands on the target
    k = 1.0
    for _ in range(3):
        build(k)
        vol = _pancreas_volume(P, 2.5)
        if abs(vol / P.target_ml - 1) < 0.03:
            break
        k *= (P.target_ml / vol) ** 0.6
    build(k)
    return P


def _pancreas_shape(P: SimpleNamespace, grid: _Grid) -> SimpleNamespace | None:
    """Pancreas implicit function at the voxels near the organ.

    Returns the window ``sl``, the voxel indices ``idx`` (within the window)
    of the candidate voxels, their coordinates ``pts``, the implicit function
    ``sdf`` (negative inside) and the organ mask ``organ`` (without clefts).
    """
    margin = P.halo + 3 * P.lob_amp + 3 * P.rough_amp + 0.5
    res = _tube_sdf(grid, P.pts, P.radii, margin, zscale=P.h)
    if res is None:
        return None
    sl, sdf_t, _ = res
    idx = np.nonzero(sdf_t < margin)
    xs, ys, zs = grid.coords(sl)
    pts = np.column_stack([xs[idx[0]], ys[idx[1]], zs[idx[2]]])
    sdf = sdf_t[idx] + P.lob_amp * P.f_lob.at(pts)
    sdf += P.rough_amp * P.f_rough.at(pts)
    organ = sdf < 0
    near = organ & (sdf > -P.cleft_depth)
    cleft = np.abs(P.f_cleft.at(pts[near])) < P.cleft_eps
    organ[np.flatnonzero(near)[cleft]] = False
    return SimpleNamespace(
        sl=sl, shape=sdf_t.shape, idx=idx, pts=pts, sdf=sdf, organ=organ
    )


def _pancreas_volume(P: SimpleNamespace, step: float) -> float:
    lo = P.pts.min(axis=0) - 30
    hi = P.pts.max(axis=0) + 30
    grid = _Grid(*(np.arange(a, b, step) for a, b in zip(lo, hi, strict=True)))
    res = _pancreas_shape(P, grid)
    assert res is not None
    return float(res.organ.sum()) * step**3 / 1000.0


def _sample_visceral_vessels(rng: np.random.Generator, an: SimpleNamespace) -> None:
    u = rng.uniform
    P = an.pancreas
    ax, ay = an.ax, an.ay
    z_bot = an.z_full[0] - 10
    # portal confluence behind the neck
    cfl = P.neck + np.array([-2.0, -(P.radii.mean() + float(u(3, 6))), -2.0])
    an.confluence = cfl
    r_pv = float(u(5.5, 8.0))
    an.porta = np.array([P.head[0] - float(u(10, 20)), ay + float(u(30, 45)), 38.0])
    an.portal = _curve(
        [cfl, cfl + np.array([-8, 2, 14]), an.porta + np.array([8, -4, -10]), an.porta],
        r_pv,
    )
    an.smv = _curve(
        [
            cfl,
            cfl + np.array([-2, 3, -20]),
            cfl + np.array([-5, 9, -55]),
            cfl + np.array([-10, 15, -110]),
            (cfl[0] - 20, cfl[1] + 20, z_bot),
        ],
        [r_pv * 0.85, r_pv * 0.8, r_pv * 0.7, r_pv * 0.6, r_pv * 0.5],
    )
    # splenic vein along the back of the body and tail
    ineck = int(np.argmin(np.linalg.norm(P.pts - P.neck, axis=1)))
    body_pts = P.pts[ineck:][::4]
    body_r = P.radii[ineck:][::4]
    sv = body_pts + np.stack(
        [np.zeros_like(body_r), -0.8 * body_r, 0.25 * body_r * P.h], axis=1
    )
    r_sv = float(u(3.5, 5.0))
    an.splenic_v = _curve(
        np.vstack(
            [cfl, sv[1:], an.spleen.c + an.spleen.rot @ (-an.spleen.axes[0], 0, 0)]
        ),
        r_sv,
    )
    # SMA and coeliac trunk
    z_sma = float(u(2.0, 12.0)) + P.neck[2]
    r_sma = float(u(3.5, 5.0))
    an.sma = _curve(
        [
            (ax, ay + an.r_ao - 3, z_sma),
            (ax - 1, ay + an.r_ao + 10, z_sma - 8),
            (cfl[0] + 12, cfl[1] - 3, -28.0),
            (cfl[0] + 10, cfl[1] + 6, -70.0),
            (cfl[0] + 4, cfl[1] + 14, z_bot),
        ],
        [r_sma, r_sma, r_sma * 0.9, r_sma * 0.8, r_sma * 0.6],
    )
    z_cel = z_sma + float(u(10.0, 18.0))
    cel_end = np.array([ax - 2, ay + an.r_ao + 16, z_cel + 3])
    r_a = float(u(2.2, 3.2))
    itail = np.linspace(ineck, len(P.pts) - 1, 7).astype(int)
    sa_pts = P.pts[itail] + np.stack(
        [
            np.zeros(7),
            -0.2 * P.radii[itail] + rng.uniform(-5, 5, 7),
            P.radii[itail] * P.h + 3 + rng.uniform(-3, 5, 7),
        ],
        axis=1,
    )
    an.splenic_a = _curve(
        np.vstack([(ax, ay + an.r_ao - 2, z_cel), cel_end, sa_pts[1:]]), r_a
    )
    an.hepatic_a = _curve(
        [
            (ax, ay + an.r_ao - 2, z_cel),
            cel_end,
            cel_end + np.array([-25, 2, -4]),
            an.porta + np.array([6, 8, 0]),
        ],
        r_a * 0.9,
    )
    # renal veins
    z_lrv = z_sma - float(u(8.0, 15.0))
    kl, kr = an.kidneys
    an.renal_v = [
        _curve(
            [
                kl.hilum,
                (ax + an.r_ao + 5, ay + 2, z_lrv),
                (ax, ay + an.r_ao + 5, z_lrv),
                (an.ix, an.iy, z_lrv),
            ],
            float(u(4.0, 5.5)),
        ),
        _curve([kr.hilum, (an.ix - 5, an.iy, kr.hilum[2] + 5)], float(u(4.0, 5.5))),
    ]
    # common bile duct down the back of the head to the ampulla
    hd = P.head
    an.ampulla = np.array([hd[0] - P.rh * 0.75, hd[1] - 2.0, hd[2] - 4.0])
    an.cbd = _curve(
        [
            an.porta + np.array([6, 6, 4]),
            (hd[0] - 2, hd[1] - P.rh * 0.45, hd[2] + P.rh * P.h + 4),
            (hd[0] - P.rh * 0.4, hd[1] - P.rh * 0.4, hd[2]),
            an.ampulla,
        ],
        float(u(2.5, 4.5)),
    )
    i_head = int(np.argmin(np.linalg.norm(P.pts - P.head, axis=1)))
    duct = np.vstack([P.pts[i_head:][::3], [P.pts[-1]]])[::-1]
    an.duct = _curve(np.vstack([duct, an.ampulla]), P.duct_r)


def _sample_gut(rng: np.random.Generator, an: SimpleNamespace) -> None:
    u = rng.uniform
    P = an.pancreas
    ax, ay = an.ax, an.ay
    hd, rh, h = P.head, P.rh, P.h
    # ---- duodenum: C-loop around the head ------------------------------------
    rd = float(u(9.0, 12.0))
    z_low = float((P.pts[:, 2] - P.radii * h).min())
    z_d3 = z_low - rd - P.halo - float(u(2.0, 6.0))
    x_d2 = hd[0] - rh - rd - P.halo - float(u(2.0, 6.0))
    y_ant = _cavity_y_ant(hd[0] + 30, 10.0, an)
    pyl = np.array(
        [
            hd[0] + float(u(8, 20)),
            min(ay + float(u(55, 68)), y_ant - 14),
            hd[2] + rh * h + float(u(10, 18)),
        ]
    )
    an.duodenum = _curve(
        [
            pyl,
            (hd[0] - 8, hd[1] + rh + 6, hd[2] + rh * h + rd * 0.6),
            (x_d2 + 3, hd[1] + 6, hd[2] + rh * h * 0.6),
            (x_d2, hd[1] - 1, hd[2] - rh * 0.3),
            (x_d2 + 5, hd[1] - 4, z_d3 + 8),
            (hd[0] - rh * 0.3, hd[1] - 6, z_d3),
            (ax - 8, ay + an.r_ao + rd + 3, z_d3 - 2),
            (ax + an.r_ao + rd + 4, ay + 10, z_d3 + 8),
            (ax + an.r_ao + rd + 10, ay + 24, min(-22.0, z_d3 + 35)),
        ],
        rd,
    )
    an.duo_wall = float(u(1.8, 3.0))
    an.duo_gas = float(u(0.0, 0.6)) if u() < 0.5 else 0.0
    an.pylorus = pyl
    # ---- stomach: J from fundus to pylorus -----------------------------------
    rs = float(u(21.0, 31.0))
    dz = an.dome
    xl_wall = _cavity_x(1, an.ys + 40, 60.0, an)
    fund = np.array(
        [float(u(35, 55)), an.ys + float(u(20, 40)), dz.zl - float(u(20, 35))]
    )
    y_ant_b = _cavity_y_ant(xl_wall * 0.5, 40.0, an)
    sbody = np.array(
        [
            xl_wall * float(u(0.45, 0.6)),
            min(an.ys + 70, y_ant_b - rs - 6),
            float(u(40, 60)),
        ]
    )
    y_ant_l = _cavity_y_ant(25.0, 20.0, an)
    lower = np.array([float(u(20, 40)), y_ant_l - rs * 0.75 - 8, float(u(18, 32))])
    antrum = np.array(
        [float(u(-5, 12)), min(P.body[1] + 30, y_ant_l - 22), float(u(10, 22))]
    )
    an.stomach = _curve(
        [fund, sbody, lower, antrum, pyl],
        [rs * 1.05, rs, rs * 0.75, rs * 0.5, 8.5],
    )
    an.stomach_wall = float(u(3.0, 5.0))
    an.stomach_gas = float(u(0.05, 0.4))
    an.esophagus = _curve(
        [
            (ax - 8, ay + 14, an.z_full[1] + 10),
            (ax - 4, ay + 18, dz.zl - 5),
            fund + np.array([-20, 5, 10]),
        ],
        float(u(7.0, 9.0)),
    )
    # ---- gallbladder ---------------------------------------------------------
    an.gallbladder = None
    if u() < 0.85:
        c = np.array(
            [x_d2 - float(u(15, 30)), ay + float(u(40, 60)), float(u(-10, 15))]
        )
        an.gallbladder = SimpleNamespace(
            c=c,
            rot=_rotation((float(u(-0.3, 0.1)), float(u(0.3, 0.8)), 1.0), (1, 0, 0)),
            axes=np.array([float(u(13, 19)), float(u(12, 18)), float(u(28, 40))]),
        )
    # ---- colon ---------------------------------------------------------------
    zb = an.z_full[0]
    xr = _cavity_x(-1, an.ys + 35, -60.0, an)
    xl = _cavity_x(1, an.ys + 35, -40.0, an)
    rc = float(u(18.0, 26.0))
    y_front = lambda x, z: _cavity_y_ant(x, z, an)  # noqa: E731
    zt = -float(u(55.0, 100.0))
    zh = x_d2 * 0 + float(u(-35.0, -10.0))
    ctrl = [
        (xr + rc + 4, an.ys + 35, zb - 30),
        (xr + rc + 3, an.ys + 40, -70.0),
        (xr + rc + 10, ay + 40, zh),
        (-55.0, y_front(-55, zh - 20) - rc * 0.8 - 4, zh - 25),
        (0.0, y_front(0, zt) - rc * 0.8 - 6, zt),
        (55.0, y_front(55, zt + 20) - rc * 0.8 - 4, zt + 30),
        (xl - rc - 12, ay + 25, float(u(15.0, 40.0))),
        (xl - rc * 0.8 - 4, an.ys + 30, -10.0),
        (xl - rc * 0.8 - 6, an.ys + 30, -80.0),
        (xl - rc * 0.8 - 8, an.ys + 35, zb - 30),
    ]
    radii = [
        rc * 1.2,
        rc * 1.1,
        rc,
        rc * 0.9,
        rc * 0.9,
        rc * 0.9,
        rc * 0.8,
        rc * 0.7,
        rc * 0.7,
        rc * 0.7,
    ]
    pts, r, s = _curve(ctrl, radii)
    period = float(u(22.0, 35.0))
    r = r * (1.0 + 0.13 * np.cos(2 * np.pi * s / period + float(u(0, 6.3))))
    an.colon = (pts, r, s)
    an.colon_wall = float(u(1.8, 3.0))
    n_seg = 6
    an.colon_seg = np.minimum((s / s[-1] * n_seg).astype(int), n_seg - 1)
    an.colon_gas = np.where(
        rng.uniform(size=n_seg) < 0.55, rng.uniform(0.05, 0.45, n_seg), 0.0
    )
    lo = pts.min(axis=0) - 30
    hi = pts.max(axis=0) + 30
    an.f_stool = _Field(rng, lo, hi, 3.5, 2.5)
    an.stool_gas_thr = float(u(0.8, 1.8))


def _sample_liver(rng: np.random.Generator, an: SimpleNamespace) -> None:
    u = rng.uniform
    P = an.pancreas
    L = SimpleNamespace()
    L.x_tip = _cavity_x(-1, an.ys + 40, -40.0, an) + float(u(15, 35))
    L.z_tip = -float(u(45.0, 90.0))
    L.slope = float(u(0.45, 0.9))
    L.z_left = float(u(-5.0, 25.0))
    L.x_low = P.head[0] - P.rh - 24 - float(u(8, 20))
    L.x_high_post = an.ix + float(u(0, 12))
    L.x_left = float(u(15.0, 75.0))
    L.y_left = an.ay + float(u(25.0, 45.0))
    L.z_a = float(u(-15.0, 5.0))
    L.z_b = L.z_a + float(u(25.0, 40.0))
    L.kx = an.kidneys[1].c[0]
    lo = (-an.a - 20, -an.b_post - 20, an.z_full[0] - 20)
    hi = (an.a + 20, an.b_ant + 20, an.z_full[1] + 20)
    L.f_xmed = _Field(rng, (0.0, lo[1], lo[2]), (0.0, hi[1], hi[2]), 6.0, 15.0)
    L.f_zinf = _Field(rng, (lo[0], lo[1], 30.0), (hi[0], hi[1], 30.0), 6.0, 15.0)
    L.amp = float(u(4.0, 9.0))
    an.liver = L
    # hepatic veins (to the IVC) and portal branches (from the porta hepatis)
    vessels = []
    zr = an.dome.zr
    ivc_top = np.array([an.ix - 4, an.iy + 16, zr - 25])
    for code, root, targets in (
        (_T.IVC, ivc_top, ((-110, 10, 30), (-55, 55, 25), (5, 60, 50))),
        (
            _T.VEIN,
            an.porta,
            ((-95, -10, 40), (-80, 35, 20), (-30, 55, 55), (10, 55, 60)),
        ),
    ):
        for tgt in targets:
            t = np.array(tgt, dtype=float) + rng.uniform(-12, 12, 3)
            ctrl = [
                root + (t - root) * f + rng.uniform(-6, 6, 3) * (f > 0)
                for f in (0, 0.35, 0.7, 1)
            ]
            r0 = float(u(3.5, 5.5))
            vessels.append(
                (_curve(ctrl, [r0, r0 * 0.75, r0 * 0.5, 1.2], min_step=1.0), code)
            )
            for f in (0.4, 0.7):
                b0 = root + (t - root) * f
                tb = b0 + rng.uniform(-35, 35, 3)
                vessels.append(
                    (
                        _curve(
                            [b0, (b0 + tb) / 2 + rng.uniform(-5, 5, 3), tb],
                            [r0 * 0.45, r0 * 0.35, 1.0],
                            min_step=1.0,
                        ),
                        code,
                    )
                )
    an.liver_vessels = vessels


class _Occupancy:
    """Coarse boolean occupancy grid (mm) used to pack bowel loops."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], step: float) -> None:
        self.lo = np.asarray(lo, dtype=np.float64)
        self._lo = self.lo.tolist()
        self.step = step
        n = np.ceil((np.asarray(hi) - self.lo) / step).astype(int) + 1
        self.occ = np.zeros(tuple(int(k) for k in n), dtype=bool)

    def _box(self, c: Any, r: float) -> tuple[slice, slice, slice]:
        s, lo, k = self.step, self._lo, r / self.step
        x, y, z = (c[0] - lo[0]) / s, (c[1] - lo[1]) / s, (c[2] - lo[2]) / s
        ce, fl = math.ceil, math.floor
        return (
            slice(max(ce(x - k), 0), max(fl(x + k) + 1, 0)),
            slice(max(ce(y - k), 0), max(fl(y + k) + 1, 0)),
            slice(max(ce(z - k), 0), max(fl(z + k) + 1, 0)),
        )

    def mark(self, centres: NDArray[Any], radii: Any) -> None:
        radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(centres),))
        for c, r in zip(np.asarray(centres).tolist(), radii.tolist(), strict=True):
            self.occ[self._box(c, r * 0.85)] = True

    def free(self, c: Any, r: float) -> bool:
        return not self.occ[self._box(c, r)].any()


def _sample_small_bowel(rng: np.random.Generator, an: SimpleNamespace) -> None:
    u = rng.uniform
    P = an.pancreas
    zb = an.z_full[0]
    occ = _Occupancy(
        (-an.a - 10, -an.b_post - 10, zb - 60), (an.a + 10, an.b_ant + 10, 80.0), 4.0
    )
    occ.mark(P.pts, P.radii * P.h + P.halo + 3)
    for k in an.kidneys:
        occ.mark(k.c[None, :], k.axes[0] + 2)
    zz = np.arange(zb - 60, 80, 6.0)
    one = np.ones_like(zz)
    occ.mark(np.column_stack([an.ax * one, an.ay * one, zz]), an.r_ao + 4)
    occ.mark(np.column_stack([an.ix * one, an.iy * one, zz]), 14)
    occ.mark(np.column_stack([0 * one, an.ys * one, zz]), 30)
    for c in (an.smv, an.duodenum, an.stomach):
        occ.mark(c[0], c[1] + 2)
    occ.mark(an.colon[0], an.colon[1] * 0.8)
    loops = []
    n = int(rng.integers(40, 60))
    xr = _cavity_x(-1, 0.0, -60.0, an)
    xl = _cavity_x(1, 0.0, -60.0, an)
    y_top = _cavity_y_ant(0.0, -40.0, an)
    for i in range(n):
        collapsed = u() < 0.3
        r = float(u(4.5, 7.5)) if collapsed else float(u(9.0, 15.0))
        if i < n * 0.3:  # jejunum: left upper and mid abdomen, below the tail
            lo = np.array([an.ax - 15, an.ay - 5, -75.0])
            hi = np.array([xl - 15, y_top - 8, 20.0])
        else:
            lo = np.array([xr + 25, an.ay - 10, zb - 40])
            hi = np.array([xl - 25, y_top - 5, -20.0])
        n_steps = int(rng.integers(30, 70))
        starts = lo + (hi - lo) * rng.uniform(0.05, 0.95, (20, 3))
        d0 = rng.standard_normal(3)
        noise = rng.normal(0.0, 0.7, (n_steps, 10, 3))
        wall = float(u(1.5, 3.0)) if not collapsed else r
        gas = 0.0 if u() < 0.7 else float(u(0.1, 0.4))
        if np.any(hi <= lo):
            continue
        start = next((p for p in starts if occ.free(p.tolist(), r)), None)
        if start is None:
            continue
        pts = _walk(start, d0, noise, 5.0, lo, hi, occ, r)
        if len(pts) < 5:
            continue
        curve = _curve(pts[::2], r)
        occ.mark(curve[0], curve[1] + 1)
        loops.append(SimpleNamespace(curve=curve, wall=wall, gas=gas))
    an.bowel = loops


def _walk(
    start: NDArray[Any],
    d0: NDArray[Any],
    noise: NDArray[Any],
    step: float,
    lo: NDArray[Any],
    hi: NDArray[Any],
    occ: _Occupancy,
    r: float,
) -> NDArray[np.float64]:
    """A persistent random walk that stays in [lo, hi] and in free space."""
    p = np.asarray(start, dtype=np.float64)
    d = d0 * (1.0, 1.0, 0.5)
    d = d / np.linalg.norm(d)
    pts = [p]
    for i in range(len(noise)):
        trial = noise[i] + d
        trial[:, 2] *= 0.8
        trial /= np.linalg.norm(trial, axis=1)[:, None]
        nxt = p + step * trial
        ok = np.all((nxt > lo) & (nxt < hi), axis=1)
        nxt_l = nxt.tolist()
        for j in np.flatnonzero(ok).tolist():
            if occ.free(nxt_l[j], r * 0.9):
                d, p = trial[j], nxt[j]
                pts.append(p)
                break
        else:
            d = -d
    return np.asarray(pts)


def _sample_mesentery(rng: np.random.Generator, an: SimpleNamespace) -> None:
    u = rng.uniform
    vessels = []
    spts = an.smv[0]
    zb = an.z_full[0]
    for _ in range(int(rng.integers(20, 32))):
        z0 = float(u(max(zb, -120.0), -5.0))
        i = int(np.argmin(np.abs(spts[:, 2] - z0)))
        p = spts[i].copy()
        side = 1.0 if u() < 0.6 else -1.0
        d = np.array(
            [side * float(u(0.3, 1.0)), float(u(0.3, 1.0)), -float(u(0.2, 0.8))]
        )
        pts = [p.copy()]
        for _k in range(int(rng.integers(10, 25))):
            d = d / np.linalg.norm(d) + rng.normal(0, 0.35, 3)
            p = p + 4.0 * d / np.linalg.norm(d)
            pts.append(p.copy())
        r0 = float(u(1.2, 2.6))
        vessels.append(
            _curve(
                np.asarray(pts)[::2],
                [r0] + [r0 * 0.5] * (len(pts[::2]) - 1),
                min_step=1.0,
            )
        )
    an.mesentery = vessels
    nodes = []
    for _ in range(int(rng.integers(2, 7))):
        i = int(rng.integers(0, len(spts)))
        c = spts[i] + rng.uniform(-25, 25, 3) * (1, 1, 0.5)
        nodes.append((c, rng.uniform(3, 6, 3)))
    an.nodes = nodes


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _render(an: SimpleNamespace, grid: _Grid) -> _Canvas:
    cv = _Canvas(grid)
    _paint_body(cv, an)
    _paint_back_muscles(cv, an)
    _paint_spine(cv, an)
    _paint_ribs(cv, an)
    _paint_pelvis(cv, an)
    _paint_thorax(cv, an)
    _paint_great_vessels(cv, an)
    _paint_pancreas(cv, an)
    _paint_visceral_vessels(cv, an)
    _paint_kidneys(cv, an)
    _paint_duodenum(cv, an)
    _paint_spleen(cv, an)
    _paint_liver(cv, an)
    _paint_stomach(cv, an)
    _paint_colon(cv, an)
    _paint_small_bowel(cv, an)
    _paint_mesentery(cv, an)
    _paint_heart(cv, an)
    return cv


def _paint_body(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    X = g.x.astype(np.float64)[:, None]
    Y = g.y.astype(np.float64)[None, :]
    r = np.hypot(X, Y)
    th = np.arctan2(Y, X)
    R = _body_radius(th, an)
    t2 = _fat_thickness(th, an)
    tm = _wall_thickness(th, an)
    ant = np.maximum(np.sin(th), 0.0)
    ax_ = np.abs(X) + 0 * Y
    # linea alba and semilunar lines: thin aponeurosis instead of muscle
    thin = np.exp(-((ax_ / an.linea) ** 2)) + 0.6 * np.exp(
        -(((ax_ - an.semilunar) / 4.0) ** 2)
    )
    tm = tm * (1.0 - 0.75 * np.clip(thin, 0, 1) * ant)
    t3 = t2 + tm
    # fat planes between the three lateral muscle layers
    lateral = (np.abs(np.cos(th)) > 0.6) & (Y > an.ys)
    s = _body_scale(g.z, an)
    q = 0.0015
    s_idx = np.rint(s / q).astype(int)
    for key in np.unique(s_idx):
        d = R * (key * q) - r
        sl2 = np.full(d.shape, _T.VISCERAL_FAT, dtype=np.uint8)
        sl2[d < t3] = _T.MUSCLE
        for f in an.wall_planes:
            plane = lateral & (np.abs(d - (t2 + f * tm)) < 0.7)
            sl2[plane] = _T.SUBCUTANEOUS_FAT
        sl2[d < t2] = _T.SUBCUTANEOUS_FAT
        sl2[d < an.skin] = _T.SKIN
        sl2[d < 0] = _T.AIR
        ks = np.nonzero(s_idx == key)[0]
        cv.tissue[:, :, ks] = sl2[:, :, None]
    # CT table: two thin curved plates below the back
    th_b = np.linspace(-np.pi, 0.0, 361)
    y_back = float((_body_radius(th_b, an) * np.sin(th_b)).min()) * float(np.max(s))
    y_tab = y_back - an.table_gap - 2.0
    for off, thick in ((0.0, 2.5), (-28.0, 2.0)):
        yt = y_tab + off + 0.0005 * X**2
        m = (np.abs(Y - yt) < thick / 2) & (np.abs(X) < 230)
        ii, jj = np.nonzero(m)
        cv.tissue[ii, jj, :] = _T.TABLE


def _ellipse_mask(
    xs: NDArray[Any], ys: NDArray[Any], cx: Any, cy: Any, ax: Any, by: Any
) -> NDArray[np.bool_]:
    return ((xs - cx) / ax) ** 2 + ((ys - cy) / by) ** 2 < 1


def _paint_back_muscles(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    canal_cy = an.ys - an.vb_b - an.canal[1] + 1
    y_back = -an.b_post + float(_fat_thickness(np.array(-np.pi / 2), an)) + 2
    pb = (canal_cy + 4 - y_back) / 2 + 2
    pcy = (canal_cy + 4 + y_back) / 2
    pa = an.para_a
    lo = (-(4 + 2 * pa) - 30, y_back - 10, g.z[0] - 1)
    hi = (4 + 2 * pa + 30, an.ys + 30, g.z[-1] + 1)
    sl = g.window(lo, hi)
    if sl is None:
        return
    xs, ys, zs = g.coords(sl)
    X, Y = xs[:, None], ys[None, :]
    para = _ellipse_mask(np.abs(X), Y, 4 + pa, pcy, pa, pb)
    cv.paint(_T.MUSCLE, sl, para[:, :, None], allowed=(_T.VISCERAL_FAT, _T.MUSCLE))
    # quadratus lumborum and psoas grow towards the pelvis
    t = np.clip((an.psoas_top + 30 - zs) / 120.0, 0, 1)[None, None, :]
    qa = an.ql[0] * (0.3 + 0.7 * t)
    qb = an.ql[1] * (0.3 + 0.7 * t)
    qx = 4 + 2 * pa + an.ql[0] * 0.6
    ql = (
        ((np.abs(X)[:, :, None] - qx) / qa) ** 2
        + ((Y[:, :, None] - canal_cy - 8) / qb) ** 2
    ) < 1
    ql &= zs[None, None, :] < an.psoas_top + 30
    cv.paint(_T.MUSCLE, sl, ql, allowed=_VISC)
    rp = np.clip((an.psoas_top - zs) * an.psoas_rate + 4.0, 0, an.psoas_max)[
        None, None, :
    ]
    px = an.vb_a + rp * 0.75 - 3
    py = an.ys + 2 + 0.25 * rp
    ps = (
        ((np.abs(X)[:, :, None] - px) / (rp * 0.85 + 1e-3)) ** 2
        + ((Y[:, :, None] - py) / (rp + 1e-3)) ** 2
    ) < 1
    cv.paint(_T.MUSCLE, sl, ps, allowed=_VISC)


def _paint_spine(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    cr_x, cr_y = an.canal
    canal_cy = an.ys - an.vb_b - cr_y + 1
    lo = (-an.tp_len - 5, canal_cy - cr_y - an.sp_len - 10, g.z[0] - 1)
    hi = (an.tp_len + 5, an.ys + an.vb_b + 3, g.z[-1] + 1)
    sl = g.window(lo, hi)
    if sl is None:
        return
    xs, ys, zs = g.coords(sl)
    X, Y = xs[:, None].astype(np.float32), ys[None, :].astype(np.float32)

    def ell(cx: float, cy: float, a: float, b: float) -> NDArray[np.float32]:
        q = np.sqrt(((X - cx) / a) ** 2 + ((Y - cy) / b) ** 2)
        return (1 - q) * min(a, b)

    def box(cx: float, cy: float, a: float, b: float) -> NDArray[np.float32]:
        return np.minimum(a - np.abs(X - cx), b - np.abs(Y - cy))

    d_body = ell(0, an.ys, an.vb_a, an.vb_b)
    d_canal = ell(0, canal_cy, cr_x, cr_y)
    d_sac = ell(0, canal_cy, cr_x - 2, cr_y - 1.5)
    d_ring = np.minimum(ell(0, canal_cy, cr_x + 6.5, cr_y + 6.5), -d_canal)
    ax_ = np.abs(X)
    d_tp = np.minimum(
        an.tp_len - ax_, (3.8 - 0.04 * ax_) - np.abs(Y - (canal_cy + 2 - 0.12 * ax_))
    )
    d_tp = np.minimum(d_tp, -d_canal)
    sp_c = canal_cy - cr_y - 3 - an.sp_len / 2
    d_sp = box(0, sp_c, 3.5, an.sp_len / 2 + 3)
    d_fac = np.maximum(
        ell(cr_x + 4, canal_cy - cr_y * 0.6, 6.0, 7.0),
        ell(-cr_x - 4, canal_cy - cr_y * 0.6, 6.0, 7.0),
    )
    dfrac = an.disc_h / an.pitch
    rim = 1.8
    sub_t = cv.tissue[sl]
    canal = d_canal > 0
    sac = d_sac > 0
    for k, z in enumerate(zs):
        ph = ((z - an.z_l1) / an.pitch + 0.5) % 1.0
        tk = sub_t[:, :, k]
        depth = np.full(X.shape[:1] + Y.shape[1:], -1.0, dtype=np.float32)
        in_disc = ph < dfrac / 2 or ph > 1 - dfrac / 2
        if in_disc:
            m = d_body > 0
            tk[m] = _T.DISC
        else:
            edge = min(ph - dfrac / 2, 1 - dfrac / 2 - ph) * an.pitch
            if edge < 1.2:
                m = d_body > 0
                tk[m] = _T.BONE_CORTICAL
            else:
                depth = np.maximum(depth, d_body)
        if 0.12 < ph < 0.62:
            depth = np.maximum(depth, d_ring)
        if 0.3 < ph < 0.5:
            depth = np.maximum(depth, d_tp)
        if 0.25 < ph < 0.85:
            depth = np.maximum(depth, d_sp)
        if ph > 0.6 or ph < 0.08:
            depth = np.maximum(depth, d_fac)
        m = depth > 0
        tk[m] = _T.BONE_CORTICAL
        tk[depth >= rim] = _T.BONE_CANCELLOUS
        tk[canal] = _T.VISCERAL_FAT
        tk[sac] = _T.CSF


def _paint_ribs(cv: _Canvas, an: SimpleNamespace) -> None:
    ok = tuple(
        c for c in range(len(_TISSUE_NAMES)) if c not in (_T.AIR, _T.SKIN, _T.CSF)
    )
    for curve, code in an.ribs:
        pts, r, _ = curve
        res = _tube_sdf(cv.grid, pts, r, 0.5, zscale=1.2)
        if res is None:
            continue
        sl, sdf, _ = res
        if code == _T.CARTILAGE:
            cv.paint(_T.CARTILAGE, sl, sdf < 0, allowed=ok)
        else:
            m = cv.paint(_T.BONE_CORTICAL, sl, sdf < 0, allowed=ok)
            cv.paint(_T.BONE_CANCELLOUS, sl, m & (sdf < -1.3))


def _paint_pelvis(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    kz = np.nonzero(g.z < an.z_crest)[0]
    if kz.size == 0:
        return
    w = an.wing
    ext = w.r + 25
    for sgn in (-1, 1):
        sl = g.window(
            (sgn * w.x - ext, w.y - ext, g.z[0] - 1),
            (sgn * w.x + ext, w.y + ext, g.z[-1] + 1),
        )
        if sl is None:
            continue
        xs, ys, _ = g.coords(sl)
        X, Y = xs[:, None], ys[None, :]
        rw = np.hypot(X - sgn * w.x, Y - w.y)
        ang = np.arctan2(Y - w.y, sgn * (X - sgn * w.x))  # 0 lateral, +pi/2 front
        sub = cv.tissue[sl]
        for k in kz:
            t = min((an.z_crest - g.z[k]) / 60.0, 1.0)
            radius = w.r + 10 * t
            thick = 4 + 8 * t
            a_hi = -0.2 + 1.4 * t
            m = (np.abs(rw - radius) < thick / 2) & (ang > -1.6) & (ang < a_hi)
            core = (np.abs(rw - radius) < thick / 2 - 1.5) & m
            tk = sub[:, :, k]
            mm = m & (tk != _T.AIR) & (tk != _T.SKIN) & (tk != _T.SUBCUTANEOUS_FAT)
            tk[mm] = _T.BONE_CORTICAL
            tk[core & mm] = _T.BONE_CANCELLOUS
            mus = (rw < radius - thick / 2) & (rw > radius - thick / 2 - 10 * t - 3)
            mus &= (ang > -1.2) & (ang < a_hi) & (tk == _T.VISCERAL_FAT)
            tk[mus] = _T.MUSCLE


def _paint_thorax(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    X = g.x.astype(np.float32)[:, None]
    Y = g.y.astype(np.float32)[None, :]
    dome = _dome(X, Y, an).astype(np.float32)
    inside = (np.abs(X) < an.a) & (Y > -an.b_post) & (Y < an.b_ant)
    kz = np.nonzero(g.z > dome[inside].min() - 1)[0]
    if kz.size == 0:
        return
    sl = (slice(None), slice(None), slice(int(kz[0]), int(kz[-1]) + 1))
    Z = g.z[sl[2]][None, None, :]
    dia = Z > dome[:, :, None]
    lung = Z > dome[:, :, None] + 4.0
    # keep the posterior mediastinum (aorta, oesophagus, azygos) free
    medi = ((X - an.ax * 0.5) / 34.0) ** 2 + ((Y - an.ys - 12) / 48.0) ** 2 < 1
    lung &= ~medi[:, :, None]
    cv.paint(_T.MUSCLE, sl, dia & ~lung, allowed=_VISC)
    cv.paint(_T.LUNG, sl, lung, allowed=_VISC)


def _paint_tube(
    cv: _Canvas,
    curve: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
    code: int,
    allowed: tuple[int, ...] | None,
    radius: float | None = None,
) -> None:
    pts, r, _ = curve
    if radius is not None:
        r = np.full(len(pts), radius)
    res = _tube_sdf(cv.grid, pts, r, 0.5)
    if res is None:
        return
    sl, sdf, _ = res
    cv.paint(code, sl, sdf < 0, allowed=allowed)


def _paint_great_vessels(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    _paint_tube(cv, an.aorta, _T.ARTERY, (*_VISC, _T.LUNG, _T.MUSCLE))
    for c in an.iliac_a:
        _paint_tube(cv, c, _T.ARTERY, (*_VISC, _T.MUSCLE))
    # IVC: elliptical cross-section, flattened front to back
    pts = an.ivc[0]
    lo = (pts[:, 0].min() - 20, pts[:, 1].min() - 20, g.z[0] - 1)
    hi = (pts[:, 0].max() + 20, pts[:, 1].max() + 20, g.z[-1] + 1)
    sl = g.window(lo, hi)
    if sl is not None:
        xs, ys, zs = g.coords(sl)
        order = np.argsort(pts[:, 2])
        cx = np.interp(zs, pts[order, 2], pts[order, 0])[None, None, :]
        cy = np.interp(zs, pts[order, 2], pts[order, 1])[None, None, :]
        m = ((xs[:, None, None] - cx) / an.ivc_r[0]) ** 2 + (
            (ys[None, :, None] - cy) / an.ivc_r[1]
        ) ** 2 < 1
        m &= (zs > an.z_bif - 15)[None, None, :]
        cv.paint(_T.IVC, sl, m, allowed=(*_VISC, _T.LUNG, _T.MUSCLE))
    for c in an.iliac_v:
        _paint_tube(cv, c, _T.IVC, (*_VISC, _T.MUSCLE))


def _paint_pancreas(cv: _Canvas, an: SimpleNamespace) -> None:
    P = an.pancreas
    res = _pancreas_shape(P, cv.grid)
    if res is None:
        return
    sl, idx = res.sl, res.idx

    def scatter(values: NDArray[np.bool_]) -> NDArray[np.bool_]:
        m = np.zeros(res.shape, dtype=bool)
        m[idx] = values
        return m

    painted = cv.paint(_T.PANCREAS, sl, scatter(res.organ), allowed=_VISC)[idx]
    sel = np.flatnonzero(painted)
    if sel.size:
        tex = an.tex_amp["pancreas"] * P.f_tex.at(res.pts[sel])
        cv.textures.append(("points", _T.PANCREAS, sl, tuple(i[sel] for i in idx), tex))
        if P.speck_q > 0.005:
            f = P.f_speck.at(res.pts[sel])
            thr = np.quantile(f, 1 - P.speck_q)
            speck = np.zeros(len(painted), dtype=bool)
            speck[sel] = (f > thr) & (res.sdf[sel] < -0.8)
            cv.paint(_T.PANCREAS_FAT, sl, scatter(speck))
    halo = (res.sdf < P.halo) & ~res.organ
    cv.paint(_T.HALO, sl, scatter(halo), allowed=_VISC)
    _paint_tube(cv, an.duct, _T.PANCREATIC_DUCT, (_T.PANCREAS, _T.PANCREAS_FAT))


def _paint_visceral_vessels(cv: _Canvas, an: SimpleNamespace) -> None:
    soft = (_T.VISCERAL_FAT, _T.HALO, _T.PANCREAS, _T.PANCREAS_FAT, _T.PANCREATIC_DUCT)
    # fat collar around the SMA
    pts, r, _ = an.sma
    res = _tube_sdf(cv.grid, pts, r, 4.0)
    if res is not None:
        sl, sdf, _ = res
        cv.paint(_T.HALO, sl, sdf < 3.0, allowed=soft)
        cv.paint(_T.ARTERY, sl, sdf < 0, allowed=soft)
    for c in an.renal_v:
        _paint_tube(cv, c, _T.VEIN, (*soft, _T.MUSCLE))
    for c in (an.portal, an.smv, an.splenic_v):
        _paint_tube(cv, c, _T.VEIN, soft)
    for c in (an.splenic_a, an.hepatic_a):
        _paint_tube(cv, c, _T.ARTERY, soft)
    _paint_tube(cv, an.cbd, _T.BILE_DUCT, soft)


def _paint_kidneys(cv: _Canvas, an: SimpleNamespace) -> None:
    g = cv.grid
    for K in an.kidneys:
        e = float(K.axes.max()) + 2
        sl = g.window(K.c - e, K.c + e)
        if sl is None:
            continue
        xs, ys, zs = g.coords(sl)
        u0, u1, u2 = _local(xs, ys, zs, K.c, K.rot)
        a0, a1, a2 = K.axes
        q = (u0 / a0) ** 2 + (u1 / a1) ** 2 + (u2 / a2) ** 2
        t = K.cortex
        qi = (u0 / (a0 - t)) ** 2 + (u1 / (a1 - t)) ** 2 + (u2 / (a2 - t)) ** 2
        sinus = ((u0 - a0 * 0.55) / (a0 * 0.62)) ** 2 + (u1 / (a1 * 0.5)) ** 2 + (
            u2 / (a2 * 0.55)
        ) ** 2 < 1
        notch = (u0 > a0 * 0.4) & (
            (u1 / (a1 * 0.42)) ** 2 + (u2 / (a2 * 0.32)) ** 2 < 1
        )
        kidney = (q < 1) & ~notch
        done = cv.paint(_T.KIDNEY_CORTEX, sl, kidney, allowed=_VISC)
        psi = np.arctan2(u2 / a2, u1 / a1)
        pyr = (qi < 1) & (qi > 0.12) & (np.cos(K.n_pyr * psi + K.ph) > -0.35) & ~sinus
        cv.paint(_T.KIDNEY_MEDULLA, sl, pyr & done)
        cv.paint(_T.VISCERAL_FAT, sl, sinus & done)
        pelvis = ((u0 - a0 * 0.6) / (a0 * 0.35)) ** 2 + (u1 / (a1 * 0.25)) ** 2 + (
            u2 / (a2 * 0.22)
        ) ** 2 < 1
        cv.paint(_T.URINE, sl, pelvis, allowed=_VISC)


def _paint_walled_tube(
    cv: _Canvas,
    curve: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
    wall: float,
    gas: Any,
    codes: tuple[int, int],
    allowed: tuple[int, ...],
    content_tex: Any = None,
    segments: NDArray[Any] | None = None,
) -> tuple[tuple[slice, ...], NDArray[np.bool_]] | None:
    """Hollow organ: wall, fluid content and gas above a horizontal level.

    ``gas`` gives the gas fraction of each segment (``segments`` maps each
    ball of the tube to its segment; one segment by default). The patient is
    supine, so gas collects anteriorly (high y) above a flat fluid level.
    """
    pts, r, _ = curve
    res = _tube_sdf(cv.grid, pts, r, 0.5, track=segments is not None)
    if res is None:
        return None
    sl, sdf, own = res
    done = cv.paint(codes[0], sl, sdf < 0, allowed=allowed)
    lumen = done & (sdf < -wall)
    if not lumen.any():
        return sl, lumen
    cv.paint(codes[1], sl, lumen)
    if content_tex is not None:
        content_tex(sl, lumen)
    gas = np.atleast_1d(np.asarray(gas, dtype=np.float64))
    if np.any(gas > 0):
        _, ys, _ = cv.grid.coords(sl)
        Y = np.broadcast_to(ys[None, :, None], lumen.shape)
        seg = None if own is None else np.asarray(segments)[own]
        for sid, frac in enumerate(gas):
            if frac <= 0:
                continue
            m = lumen if seg is None else lumen & (seg == sid)
            if not m.any():
                continue
            level = np.quantile(Y[m], 1.0 - frac)
            cv.paint(_T.GAS, sl, m & (Y > level))
    return sl, lumen


def _paint_duodenum(cv: _Canvas, an: SimpleNamespace) -> None:
    pts = an.duodenum[0]
    seg = np.ones(len(pts), dtype=int)
    seg[: max(2, len(pts) // 6)] = 0
    _paint_walled_tube(
        cv,
        an.duodenum,
        an.duo_wall,
        (an.duo_gas, 0.0),
        (_T.DUODENUM_WALL, _T.DUODENUM_CONTENT),
        _VISC,
        segments=seg,
    )


def _paint_spleen(cv: _Canvas, an: SimpleNamespace) -> None:
    S = an.spleen
    g = cv.grid
    e = float(S.axes.max()) + 2
    sl = g.window(S.c - e, S.c + e)
    if sl is None:
        return
    xs, ys, zs = g.coords(sl)
    u0, u1, u2 = _local(xs, ys, zs, S.c, S.rot)
    a0, a1, a2 = S.axes
    q = (u0 / a0) ** 2 + (u1 / a1) ** 2 + (u2 / a2) ** 2
    hollow = (
        ((u0 + a0 * 1.25) / (a0 * (0.6 + S.hollow))) ** 2
        + (u1 / (a1 * 0.75)) ** 2
        + (u2 / (a2 * 0.8)) ** 2
    )
    cv.paint(_T.SPLEEN, sl, (q < 1) & (hollow > 1), allowed=_VISC)
    cv.textures.append(("grid", _T.SPLEEN, sl, an.tex_liver, an.tex_amp["spleen"]))


def _paint_liver(cv: _Canvas, an: SimpleNamespace) -> None:
    L = an.liver
    g = cv.grid
    x_hi = max(L.x_left, L.x_high_post) + 20
    lo = (-an.a - 10, -an.b_post, L.z_tip - 15)
    hi = (x_hi, an.b_ant + 10, g.z[-1] + 1)
    sl = g.window(lo, hi)
    if sl is None:
        return
    xs, ys, zs = g.coords(sl)
    # medial border x_med(y, z): right of the duodenum low down, across the
    # midline (left lobe) high up and in front
    w = _smoothstep((zs - L.z_a) / (L.z_b - L.z_a))[None, :]
    y = ys[:, None]
    x_hi_y = L.x_high_post + (L.x_left - L.x_high_post) * _smoothstep(
        (y - L.y_left) / 35.0
    )
    fx = L.f_xmed.on_grid(np.zeros(1, np.float32), ys, zs)[0]
    x_med = L.x_low + (x_hi_y - L.x_low) * w + L.amp * 1.5 * fx  # (ny, nz)
    # inferior border z_inf(x, y): low laterally (right lobe tip), higher medially
    x = xs[:, None]
    z_inf = L.z_tip + L.slope * np.maximum(x - L.x_tip, 0)
    z_inf = np.minimum(z_inf, L.z_left + 0.15 * np.maximum(x, 0))
    fz = L.f_zinf.on_grid(xs, ys, np.zeros(1, np.float32) + 30)[:, :, 0]
    z_inf = z_inf + L.amp * fz
    m = (xs[:, None, None] < x_med[None, :, :]) & (
        zs[None, None, :] > z_inf[:, :, None]
    )
    # keep off the spine, the crura and the aorta
    post = ((xs[:, None] - an.ax * 0.4) / (an.vb_a + 30)) ** 2 + (
        (ys[None, :] - an.ys) / (an.vb_b + 34)
    ) ** 2 < 1
    m &= ~post[:, :, None]
    cv.paint(_T.LIVER, sl, m, allowed=_VISC)
    cv.textures.append(("grid", _T.LIVER, sl, an.tex_liver, an.tex_amp["liver"]))
    for c, code in an.liver_vessels:
        _paint_tube(cv, c, code, (_T.LIVER,))
    if an.gallbladder is not None:
        G = an.gallbladder
        e = float(G.axes.max()) + 2
        sl = g.window(G.c - e, G.c + e)
        if sl is not None:
            xs, ys, zs = g.coords(sl)
            u0, u1, u2 = _local(xs, ys, zs, G.c, G.rot)
            a0, a1, a2 = G.axes
            taper = 1 - 0.35 * np.clip(u2 / a2, -1, 1)
            q = (u0 / (a0 * taper)) ** 2 + (u1 / (a1 * taper)) ** 2 + (u2 / a2) ** 2
            ok = (_T.VISCERAL_FAT, _T.LIVER, _T.VEIN)
            cv.paint(_T.DUODENUM_WALL, sl, q < 1, allowed=ok)
            qi = (
                (u0 / (a0 * taper - 2)) ** 2
                + (u1 / (a1 * taper - 2)) ** 2
                + (u2 / (a2 - 2)) ** 2
            )
            cv.paint(_T.GALLBLADDER, sl, qi < 1, allowed=(*ok, _T.DUODENUM_WALL))


def _paint_stomach(cv: _Canvas, an: SimpleNamespace) -> None:
    _paint_walled_tube(
        cv,
        an.stomach,
        an.stomach_wall,
        an.stomach_gas,
        (_T.STOMACH_WALL, _T.STOMACH_CONTENT),
        _VISC,
    )
    _paint_walled_tube(
        cv,
        an.esophagus,
        100.0,
        0.0,
        (_T.STOMACH_WALL, _T.STOMACH_CONTENT),
        (*_VISC, _T.LUNG),
    )


def _paint_colon(cv: _Canvas, an: SimpleNamespace) -> None:
    amp = an.tex_amp["stool"]

    def stool(sl: tuple[slice, ...], lumen: NDArray[np.bool_]) -> None:
        xs, ys, zs = cv.grid.coords(sl)
        idx = np.nonzero(lumen)
        f = an.f_stool.at_points(np.column_stack([xs[idx[0]], ys[idx[1]], zs[idx[2]]]))
        cv.textures.append(("points", _T.STOOL, sl, idx, (amp * f).astype(np.float32)))
        gas = np.zeros(lumen.shape, dtype=bool)
        gas[idx] = f > an.stool_gas_thr
        stool.gas = gas  # type: ignore[attr-defined]

    res = _paint_walled_tube(
        cv,
        an.colon,
        an.colon_wall,
        an.colon_gas,
        (_T.COLON_WALL, _T.STOOL),
        _VISC,
        content_tex=stool,
        segments=an.colon_seg,
    )
    gas = getattr(stool, "gas", None)
    if gas is not None and res is not None:
        cv.paint(_T.GAS, res[0], gas, allowed=(_T.STOOL,))


def _paint_small_bowel(cv: _Canvas, an: SimpleNamespace) -> None:
    for loop in an.bowel:
        _paint_walled_tube(
            cv,
            loop.curve,
            loop.wall,
            loop.gas,
            (_T.BOWEL_WALL, _T.BOWEL_CONTENT),
            _VISC,
        )


def _paint_mesentery(cv: _Canvas, an: SimpleNamespace) -> None:
    for i, c in enumerate(an.mesentery):
        _paint_tube(cv, c, _T.VEIN if i % 2 else _T.ARTERY, _VISC)
    g = cv.grid
    for c, axes in an.nodes:
        sl = g.window(c - axes - 1, c + axes + 1)
        if sl is None:
            continue
        xs, ys, zs = g.coords(sl)
        m = (
            ((xs - c[0]) / axes[0])[:, None, None] ** 2
            + ((ys - c[1]) / axes[1])[None, :, None] ** 2
            + ((zs - c[2]) / axes[2])[None, None, :] ** 2
        ) < 1
        cv.paint(_T.LYMPH_NODE, sl, m, allowed=_VISC)


def _paint_heart(cv: _Canvas, an: SimpleNamespace) -> None:
    H = an.heart
    g = cv.grid
    sl = g.window(H.c - H.axes, H.c + H.axes)
    if sl is None:
        return
    xs, ys, zs = g.coords(sl)
    q = (
        ((xs - H.c[0]) / H.axes[0])[:, None, None] ** 2
        + ((ys - H.c[1]) / H.axes[1])[None, :, None] ** 2
        + ((zs - H.c[2]) / H.axes[2])[None, None, :] ** 2
    )
    above = zs[None, None, :] > _dome(xs[:, None], ys[None, :], an)[:, :, None] + 6
    ok = (_T.LUNG, _T.VISCERAL_FAT)
    cv.paint(_T.HEART, sl, (q < 1) & above, allowed=ok)
    cv.paint(_T.BLOOD, sl, (q < 0.55) & above, allowed=(_T.HEART,))


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


@lru_cache(maxsize=16)
def _cached_anatomy(entropy: Any, spawn_key: tuple[int, ...]) -> SimpleNamespace:
    """The anatomy of a case (read-only), cached across grids of the same case."""
    ss = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    return _sample_anatomy(np.random.default_rng(ss))


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


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _root_seed(random_state: Any) -> np.random.SeedSequence:
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31 - 1)))
    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    raise ValueError(
        "random_state must be None, an int, a numpy Generator, RandomState or "
        f"SeedSequence; got {type(random_state).__name__}"
    )


def _case_seed(root: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))


def _check_shape(shape: Any) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    try:
        out = tuple(int(s) for s in shape)
        ok = len(out) == 3 and all(
            int(s) == s and not isinstance(s, bool) for s in shape
        )
    except (TypeError, ValueError):
        ok = False
    if not ok or min(out) < 8:
        raise ValueError(
            f"shape must be None or three integers >= 8 (nx, ny, nz); got {shape!r}"
        )
    return out  # type: ignore[return-value]


def _one_case(
    root: np.random.SeedSequence, shape: tuple[int, int, int] | None, i: int
) -> tuple[Volume, Volume]:
    ct, label = _make_case(_case_seed(root, i), shape, name=f"phantom_{i:03d}")
    return ct, label


def make_synthetic_ct(
    *,
    shape: Sequence[int] = (64, 64, 16),
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
) -> tuple[Volume, Volume]:
    """Generate one synthetic contrast-enhanced abdominal CT and its pancreas label.

    The same case as ``make_phantom_cohort(1, shape=shape,
    random_state=random_state)``: a small, fast volume for examples and
    tests. See :func:`make_phantom_cohort` for the anatomy and intensities.

    Parameters
    ----------
    shape : tuple of 3 int, default=(64, 64, 16)
        Grid size ``(nx, ny, nz)``. The field of view is physically realistic
        (about 300-460 mm in-plane, 130-200 mm along z around the pancreas),
        so the spacing is the field of view divided by ``shape``.
    random_state : int, numpy.random.Generator, SeedSequence or None, default=None
        Seed of the case; ``None`` draws a fresh one.

    Returns
    -------
    ct : Volume
        The CT in int16 Hounsfield units with an RAS+ affine (axis 0 towards
        the patient's right, axis 1 anterior, axis 2 superior); ``source`` is
        ``"phantom_000"``.
    label : Volume
        The pancreas mask, uint8 on the same grid (1 = pancreas).

    See Also
    --------
    make_phantom_cohort : A reproducible cohort of such cases.

    Examples
    --------
    >>> from pancreas.phantom import make_synthetic_ct
    >>> ct, label = make_synthetic_ct(random_state=0)
    >>> ct.shape, ct.array.dtype.name, label.array.dtype.name
    ((64, 64, 16), 'int16', 'uint8')
    >>> bool(label.array.any()), ct.source
    (True, 'phantom_000')
    """
    shape_t = _check_shape(shape)
    if shape_t is None:
        raise ValueError("make_synthetic_ct needs an explicit shape")
    return _one_case(_root_seed(random_state), shape_t, 0)


def make_phantom_cohort(
    n_cases: int = 10,
    *,
    shape: Sequence[int] | None = None,
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
    n_jobs: int | None = None,
) -> tuple[list[Volume], list[Volume]]:
    """Generate a cohort of synthetic portal-venous abdominal CTs with labels.

    The built-in default cohort for demos, tests and benchmarks. Each case is
    drawn from an anatomical model in millimetres: a body outline with skin,
    subcutaneous and visceral fat (about -100 HU) and a muscle wall (about
    55 HU); spine, ribs and iliac crests (cortical bone up to about 1000 HU,
    cancellous about 250 HU); psoas, quadratus lumborum and back muscles;
    liver (about 100 HU) with enhancing portal and hepatic veins; spleen;
    kidneys with bright cortex (about 180 HU) and medullary pyramids (about
    120 HU); aorta (about 170 HU), IVC (about 145 HU), portal, splenic and
    superior mesenteric vessels; stomach, duodenal C-loop, colon and small
    bowel loops with enhancing walls, fluid, stool and gas; lung bases; and
    the pancreas (80-120 HU): a lobulated tube from the head, inside the
    duodenal C-loop right of the mesenteric vessels, across the midline in
    front of the aorta and SMA to the tail at the splenic hilum, with the
    splenic vein along its back, fatty clefts and specks, and a volume of
    about 50-100 mL. The scanner adds a Gaussian point-spread function,
    correlated noise (sigma 10-20 HU) and int16 quantisation.

    Parameters
    ----------
    n_cases : int, default=10
        Number of cases.
    shape : tuple of 3 int or None, default=None
        ``None`` gives full-size cases like NIH Pancreas-CT: 512 x 512 x
        (150-250) voxels, in-plane spacing 0.6-0.9 mm and slice spacing
        about 1-2.5 mm, drawn per case. ``(nx, ny, nz)`` renders the same
        physical anatomy on that coarser grid, over a field of view of
        about 300-460 mm in-plane and 130-200 mm along z around the
        pancreas (coarse grids are supersampled, so partial-volume effects
        are realistic).
    random_state : int, numpy.random.Generator, SeedSequence or None, default=None
        Seed of the cohort. Case ``i`` comes from its own seed derived from
        ``random_state`` and ``i``, so it is the same whatever ``n_cases``.
    n_jobs : int or None, default=None
        Cases generated in parallel through joblib (threads); ``None`` means
        1 unless inside a ``joblib.parallel_config`` context, -1 means all
        processors.

    Returns
    -------
    cts : list of Volume
        The CTs in int16 Hounsfield units with RAS+ affines (axis 0 towards
        the patient's left, axis 1 anterior, axis 2 superior); ``source`` is
        ``"phantom_000"``, ``"phantom_001"``, ...
    labels : list of Volume
        The pancreas masks, uint8 on the same grids (1 = pancreas).

    See Also
    --------
    make_synthetic_ct : One small case.

    Notes
    -----
    A full-size case takes about 5-10 s on one core (generation is
    vectorised and organs are built in their bounding boxes only) and peaks at
    about 0.8 GB of memory; a 160 x 160 x 40 case takes well under a second.
    The anatomy of a case is drawn in millimetres before any grid is chosen,
    so ``shape`` changes the sampling, not the patient.

    Examples
    --------
    >>> from pancreas.phantom import make_phantom_cohort
    >>> cts, labels = make_phantom_cohort(2, shape=(32, 32, 8), random_state=0)
    >>> [ct.source for ct in cts]
    ['phantom_000', 'phantom_001']
    >>> cts[0].shape == labels[0].shape == (32, 32, 8)
    True
    >>> 300 < cts[0].spacing[0] * 32 < 465  # a realistic field of view in mm
    True
    """
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)):
        raise ValueError(f"n_cases must be a non-negative int, got {n_cases!r}")
    if n_cases < 0:
        raise ValueError(f"n_cases must be a non-negative int, got {n_cases}")
    shape_t = _check_shape(shape)
    root = _root_seed(random_state)
    pairs = parallel_map(
        partial(_one_case, root, shape_t), range(int(n_cases)), n_jobs=n_jobs
    )
    return [p[0] for p in pairs], [p[1] for p in pairs]
