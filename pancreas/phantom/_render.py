"""Rendering of the anatomy (:mod:`pancreas.phantom._anatomy`) as a tissue map.

Each organ is painted in its bounding box only, in a fixed order (later
organs overwrite earlier ones where allowed).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pancreas.phantom._anatomy import (
    _body_radius,
    _body_scale,
    _dome,
    _fat_thickness,
    _pancreas_shape,
    _wall_thickness,
)
from pancreas.phantom._geometry import _Canvas, _Grid, _local, _smoothstep, _tube_sdf
from pancreas.phantom._tissues import _T, _TISSUE_NAMES, _VISC

# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _render(
    an: SimpleNamespace, grid: _Grid, *, table: bool = True, arms: bool = False
) -> _Canvas:
    """Paint the tissue map; ``table``: the scanner table; ``arms``: at the sides."""
    cv = _Canvas(grid)
    _paint_body(cv, an, table=table)
    if arms:
        _paint_arms(cv, an)
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
    _paint_bladder(cv, an)
    _paint_heart(cv, an)
    return cv


def _paint_body(cv: _Canvas, an: SimpleNamespace, *, table: bool = True) -> None:
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
    if not table:
        return
    # CT table: two thin curved plates below the back
    th_b = np.linspace(-np.pi, 0.0, 361)
    y_back = float((_body_radius(th_b, an) * np.sin(th_b)).min()) * float(np.max(s))
    y_tab = y_back - an.table_gap - 2.0
    for off, thick in ((0.0, 2.5), (-28.0, 2.0)):
        yt = y_tab + off + 0.0005 * X**2
        m = (np.abs(Y - yt) < thick / 2) & (np.abs(X) < 230)
        ii, jj = np.nonzero(m)
        cv.tissue[ii, jj, :] = _T.TABLE


def _arms(an: SimpleNamespace) -> list[tuple[int, float, float, float, float, float]]:
    """Each arm's side, centre (x, y), semi-axes and fat thickness, in mm."""
    fat = min(3.0 + 0.5 * an.tsc, 25.0)
    ra, rb = 38.0 + fat, 32.0 + fat
    out = []
    for sgn in (-1, 1):
        th = 0.0 if sgn > 0 else np.pi
        # beside the flank at the level of the pancreas (z = 0)
        half_w = float(_body_radius(np.array(th), an)) * float(_body_scale(0.0, an))
        out.append((sgn, sgn * (half_w + 4.0 + ra), 0.15 * an.b_ant, ra, rb, fat))
    return out


def _arms_width(an: SimpleNamespace) -> float:
    """Width (mm) from the outer edge of one arm to the other's."""
    return float(max(abs(a[1]) + a[3] for a in _arms(an)) * 2)


def _paint_arms(cv: _Canvas, an: SimpleNamespace) -> None:
    """Arms at the sides (elbows and forearms at abdominal levels), in air.

    Each arm is an ellipse of skin, subcutaneous fat (thicker in obese
    patients), muscle and two forearm bones (radius and ulna), 4 mm beside
    the flank at the pancreas's level. The field of view widens to hold
    them, up to 500 mm; beyond, they are cut at its edge, as on real scans.
    """
    g = cv.grid
    X = g.x.astype(np.float64)[:, None]
    Y = g.y.astype(np.float64)[None, :]
    for sgn, cx, cy, ra, rb, fat in _arms(an):
        d = np.sqrt(((X - cx) / ra) ** 2 + ((Y - cy) / rb) ** 2)
        sl2 = np.full(d.shape, _T.AIR, dtype=np.uint8)
        sl2[d < 1.0] = _T.SKIN
        sl2[d < 1.0 - an.skin / rb] = _T.SUBCUTANEOUS_FAT
        sl2[d < 1.0 - (an.skin + fat) / rb] = _T.MUSCLE
        for bx, by, r in ((-10.0, 4.0, 8.0), (10.0, -4.0, 7.0)):
            rr = np.hypot(X - cx - sgn * bx, Y - cy - by)
            sl2[rr < r] = _T.BONE_CORTICAL
            sl2[rr < r - 2.5] = _T.BONE_CANCELLOUS
        ii, jj = np.nonzero(d < 1.0)
        if ii.size:
            sub = cv.tissue[ii, jj, :]
            air = sub == _T.AIR
            sub[air] = np.broadcast_to(sl2[ii, jj][:, None], sub.shape)[air]
            cv.tissue[ii, jj, :] = sub


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
    """Iliac wings below the crests, then the hips and the pubic and ischial bones."""
    g = cv.grid
    P = an.lesser_pelvis
    # the wings end in the acetabula
    kz = np.nonzero((g.z < an.z_crest) & (g.z > P.z_fh + 0.3 * P.r_fh))[0]
    if kz.size:
        _paint_wings(cv, an, kz)
    if g.z[0] < P.z_fh + P.r_fh + P.acetabulum + P.muscle:
        _paint_hips(cv, an)


def _paint_wings(cv: _Canvas, an: SimpleNamespace, kz: NDArray[np.intp]) -> None:
    g = cv.grid
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


def _paint_hips(cv: _Canvas, an: SimpleNamespace) -> None:
    """Acetabula, femora, pubic and ischial rami, and the muscles around them."""
    P = an.lesser_pelvis
    g = cv.grid
    soft = (_T.VISCERAL_FAT, _T.MUSCLE)
    bone_ok = (*soft, _T.BONE_CORTICAL, _T.BONE_CANCELLOUS)
    for pts, r, _ in P.bones:
        res = _tube_sdf(g, pts, r, P.muscle)
        if res is None:
            continue
        sl, sdf, _ = res
        cv.paint(_T.MUSCLE, sl, sdf < P.muscle, allowed=_VISC)
        m = cv.paint(_T.BONE_CORTICAL, sl, sdf < 0, allowed=bone_ok)
        cv.paint(_T.BONE_CANCELLOUS, sl, m & (sdf < -P.cortex))
    # each acetabulum: a bony cup around the medial and upper half of the head
    reach = P.r_fh + P.acetabulum + P.muscle
    for sgn in (-1, 1):
        c = np.array([sgn * P.x_fh, P.y_fh, P.z_fh])
        sl = g.window(c - reach, c + reach)
        if sl is None:
            continue
        xs, ys, zs = g.coords(sl)
        dx = (xs - c[0])[:, None, None]
        dy = (ys - c[1])[None, :, None]
        dz = (zs - c[2])[None, None, :]
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        medial = (sgn * dx) < 0.35 * d
        outer = P.r_fh + P.acetabulum
        cv.paint(_T.MUSCLE, sl, (d < reach) & (d > outer), allowed=_VISC)
        cup = medial & (d > P.r_fh + 1.5) & (d < outer)
        m = cv.paint(_T.BONE_CORTICAL, sl, cup, allowed=bone_ok)
        inner = (d > P.r_fh + 3.0) & (d < outer - 1.5)
        cv.paint(_T.BONE_CANCELLOUS, sl, m & inner)
        # the femoral head (its neck is one of P.bones)
        m = cv.paint(_T.BONE_CORTICAL, sl, d < P.r_fh, allowed=bone_ok)
        cv.paint(_T.BONE_CANCELLOUS, sl, m & (d < P.r_fh - 1.5))


def _ellipsoid_radius2(
    coords: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
    centre: NDArray[Any],
    axes: NDArray[Any],
) -> NDArray[Any]:
    """Squared normalised radius of an axis-aligned ellipsoid (< 1 inside it)."""
    u = [(v - c) / a for v, c, a in zip(coords, centre, axes, strict=True)]
    return (
        u[0][:, None, None] ** 2 + u[1][None, :, None] ** 2 + u[2][None, None, :] ** 2
    )


def _paint_bladder(cv: _Canvas, an: SimpleNamespace) -> None:
    """The urinary bladder: a muscular wall around urine, displacing the bowel."""
    B = an.lesser_pelvis.bladder
    g = cv.grid
    e = float(B.axes.max()) + 1.0
    sl = g.window(B.c - e, B.c + e)
    if sl is None:
        return
    coords = g.coords(sl)
    outer = _ellipsoid_radius2(coords, B.c, B.axes)
    inner = _ellipsoid_radius2(coords, B.c, B.axes - B.wall)
    # it displaces the bowel and the muscles around the hips, not the bones
    displaced = (
        _T.VISCERAL_FAT,
        _T.MUSCLE,
        _T.BOWEL_WALL,
        _T.BOWEL_CONTENT,
        _T.COLON_WALL,
        _T.STOOL,
        _T.GAS,
    )
    m = cv.paint(_T.MUSCLE, sl, outer < 1, allowed=displaced)
    cv.paint(_T.BLADDER_URINE, sl, m & (inner < 1))


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
