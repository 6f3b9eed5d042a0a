"""The phantom's anatomy, drawn in millimetres, independent of any grid.

Everything random about a case's patient is drawn here: body outline and
fat, skeleton, organs, vessels, bowel and the pancreas. Rendering on a grid
is :mod:`pancreas.phantom._render`; the scanner is
:mod:`pancreas.phantom._acquisition`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from pancreas.phantom._geometry import (
    _Field,
    _Grid,
    _Waves,
    _curve,
    _rotation,
    _smoothstep,
    _tube_sdf,
)
from pancreas.phantom._tissues import _HU_RANGES, _T

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


class _Body(NamedTuple):
    """What a case's factors change in the patient (hashable: a cache key).

    ``None`` everywhere is the default cohort's patient. ``wide`` models the
    anatomy from below the pelvis to the lung apices, so that any field of
    view can be cut from the same patient.
    """

    habitus: float | None = None
    pancreas_variant: str | None = None
    pancreas_shift: float | None = None
    wide: bool = False


def _sample_anatomy(
    rng: np.random.Generator, body: _Body | None = None
) -> SimpleNamespace:
    """Draw one case's anatomy, intensities and scanner settings, in mm.

    Everything random about a case except its grid (slice count of full-size
    cases) and its noise realisation is drawn here, so the same case can be
    rendered on any grid. ``body`` changes the patient deterministically
    (the same random draws, transformed), so ``body=None`` is the default
    cohort's patient.
    """
    body = _Body() if body is None else body
    u = rng.uniform
    an = SimpleNamespace()
    an.body = body
    an.hu = {k: float(u(*v)) for k, v in _HU_RANGES.items()}
    an.hu["halo"] = an.hu["visceral_fat"]
    an.noise_sigma = float(u(10.0, 20.0))
    an.psf_mm = float(u(0.55, 0.9))

    # ---- field of view and body ----------------------------------------------
    # the field of view is chosen to fit the patient, as on a scanner
    an.a = float(u(132.0, 176.0))
    h = body.habitus
    if h is not None:
        # obese patients are wider with more visceral fat around the same organs
        an.a *= 0.95 + 0.35 * h
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
    tsc_rand = float(u(0.0, 12.0))
    an.tsc = 5.0 + (an.a - 132.0) / 44.0 * 15.0 + tsc_rand
    if h is not None:
        # subcutaneous fat: about 3 mm (thin) to 38 mm (obese)
        an.tsc = 3.0 + 32.0 * h**1.5 + 0.25 * tsc_rand
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
    # z range the anatomy is modelled over: the default grids', or from the
    # lesser pelvis to the lung apices for fields of view cut from it
    an.z_model = an.z_full
    if body.wide:
        an.z_model = (an.z_crest - 260.0, an.dome.zr + 260.0)
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
    z_top = an.z_model[1] + 10
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
        (-an.a, -an.b_post, an.z_model[0]),
        (an.a * 0.7, an.b_ant, an.z_model[1]),
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
    # drawn last, so that every other draw of a seed is what it was before
    # the lesser pelvis existed
    _sample_lesser_pelvis(rng, an)
    return an


def _sample_lesser_pelvis(rng: np.random.Generator, an: SimpleNamespace) -> None:
    """Hips, pubic and ischial bones and the urinary bladder, in mm.

    The femoral heads lie 100-125 mm below the iliac crests (radius 21-26
    mm, 156-184 mm apart), each in its acetabulum, with the femoral neck
    running laterally and down to the greater trochanter and the shaft
    below it; the superior pubic rami run from the acetabula to the
    symphysis behind the lower abdominal wall, the ischia down and back to
    the ischial tuberosities. The bladder lies behind the symphysis: an
    ellipsoid of 60-500 mL (log-uniform), its wall 2-5 mm thick (thicker
    when the bladder is nearly empty). Urine measures 0-20 HU without
    contrast; 3-5 minutes after an injection, when the delayed phase is
    taken, excreted contrast has only begun to reach the bladder
    (10-80 HU here).
    """
    u = rng.uniform
    P = SimpleNamespace()
    P.z_fh = an.z_crest - float(u(100.0, 125.0))
    P.r_fh = float(u(21.0, 26.0))
    P.x_fh = min(float(u(78.0, 92.0)), 0.62 * an.a)
    P.y_fh = an.ys + float(u(35.0, 55.0))
    P.z_sym = P.z_fh - float(u(10.0, 25.0))
    P.y_sym = _cavity_y_ant(0.0, P.z_sym, an) - float(u(8.0, 16.0))
    P.acetabulum = float(u(6.0, 9.0))
    P.muscle = float(u(14.0, 24.0))
    P.bones = []
    for sgn in (-1, 1):
        head = np.array([sgn * P.x_fh, P.y_fh, P.z_fh])
        troch = head + [sgn * float(u(35.0, 45.0)), -5.0, -float(u(15.0, 25.0))]
        shaft = troch + [-sgn * float(u(5.0, 15.0)), 5.0, -400.0]
        P.bones.append(_curve([head, troch, shaft], [15.0, 15.0, 13.0]))
        pubis = head + [-sgn * 10.0, 0.6 * P.r_fh, -0.2 * P.r_fh]
        P.bones.append(
            _curve(
                [pubis, (sgn * float(u(3.0, 5.0)), P.y_sym, P.z_sym)],
                float(u(8.0, 10.0)),
            )
        )
        ischium = head + [-sgn * 5.0, -0.8 * P.r_fh, -0.3 * P.r_fh]
        tuber = head + [-sgn * 20.0, -float(u(20.0, 30.0)), -float(u(45.0, 60.0))]
        P.bones.append(_curve([ischium, tuber], float(u(10.0, 13.0))))
    P.cortex = float(u(3.0, 5.0))
    # the urinary bladder
    vol_ml = float(np.exp(u(np.log(60.0), np.log(500.0))))
    k = (3.0 * vol_ml * 1000.0 / (4.0 * np.pi * 1.05 * 0.85 * 1.1)) ** (1 / 3)
    axes = np.array([1.05, 0.85, 1.1]) * k
    P.bladder = SimpleNamespace(
        axes=axes,
        c=np.array(
            [
                float(u(-6.0, 6.0)),
                P.y_sym - axes[1] - float(u(4.0, 12.0)),
                P.z_sym + 0.8 * axes[2],
            ]
        ),
        wall=float(u(2.0, 3.5)) + 1.5 * np.sqrt(60.0 / vol_ml),
        delayed_hu=float(u(10.0, 80.0)),
    )
    an.hu["bladder_urine"] = float(u(0.0, 20.0))
    an.lesser_pelvis = P


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
    variant = an.body.pancreas_variant
    if variant == "bulky-head":
        rh *= 1.45
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
    # fraction of fat mixed into the parenchyma below the grid's resolution
    # (the specks above are the fat one can see)
    P.fat_fraction = 0.0
    if an.body.habitus is not None:
        # little peripancreatic fat in thin patients, much in obese ones
        P.halo *= 0.5 + 1.2 * an.body.habitus
    if variant == "bulky-head":
        P.target_ml *= 1.25
    elif variant == "fatty-atrophic":
        # small, lobulated, with fat between the lobules; fatty infiltration
        # lowers the parenchyma's attenuation (Kim et al., Radiology 2014:
        # 0-65 % fat at histology, in step with the CT attenuation)
        P.target_ml *= 0.45
        P.lob_amp *= 1.5
        P.cleft_depth *= 1.6
        P.cleft_eps += 0.12
        P.speck_q = 0.2 + 2.0 * P.speck_q
        P.fat_fraction = float(u(0.1, 0.45))
    elif variant == "fatty":
        # steatosis without atrophy: a gland of normal size whose parenchyma
        # is diffusely infiltrated by fat, with a few more fatty specks
        P.lob_amp *= 1.2
        P.cleft_eps += 0.04
        P.speck_q = 0.05 + P.speck_q
        P.fat_fraction = float(u(0.15, 0.6))
    if an.body.pancreas_shift is not None:
        ctrl0[:, 2] += an.body.pancreas_shift

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
    z_bot = an.z_model[0] - 10
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
            (ax - 8, ay + 14, an.z_model[1] + 10),
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
    zb = an.z_model[0]
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
    lo = (-an.a - 20, -an.b_post - 20, an.z_model[0] - 20)
    hi = (an.a + 20, an.b_ant + 20, an.z_model[1] + 20)
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
    zb = an.z_model[0]
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
    zb = an.z_model[0]
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


@lru_cache(maxsize=16)
def _cached_anatomy(
    entropy: Any, spawn_key: tuple[int, ...], body: _Body | None = None
) -> SimpleNamespace:
    """The anatomy of a case (read-only), cached across grids of the same case."""
    ss = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    return _sample_anatomy(np.random.default_rng(ss), body)
