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

The package has one room per part: ``_anatomy`` draws the patient in
millimetres, ``_render`` paints it as a tissue map on a grid, and
``_acquisition`` is the scanner (grid, intensities, point-spread function,
noise); ``_tissues`` and ``_geometry`` hold what they share.

For tests and diagnostics, ``_make_case(seed, shape, return_tissues=True)``
also returns the tissue map (codes in :data:`TISSUES`; the label is made of
:data:`PANCREAS_TISSUES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from pancreas._parallel import parallel_map
from pancreas.io import Volume
from pancreas.phantom._acquisition import _case_grid as _case_grid
from pancreas.phantom._acquisition import _make_case as _make_case
from pancreas.phantom._anatomy import _cached_anatomy as _cached_anatomy
from pancreas.phantom._tissues import PANCREAS_TISSUES as PANCREAS_TISSUES
from pancreas.phantom._tissues import TISSUES as TISSUES

__all__ = ["make_phantom_cohort", "make_synthetic_ct"]

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
