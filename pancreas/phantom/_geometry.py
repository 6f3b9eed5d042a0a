"""Geometry of the phantom in mm: grids, canvases, smooth fields and tubes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pancreas.phantom._tissues import _lut

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
        self.metal: list[NDArray[np.float64]] = []  # centres of metal objects

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
