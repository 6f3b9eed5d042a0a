"""Synthetic contrast-enhanced abdominal CT: the built-in phantom cohort.

No real training data can be downloaded where this package is developed and
tested, so demos, tests and benchmarks run on a synthetic cohort instead. Each
case is a portal-venous abdominal CT built from an anatomical model written in
millimetres (body wall, fat, muscles, spine and ribs, liver, spleen, kidneys,
great vessels, stomach, duodenum, colon and small bowel, mesenteric vessels,
lung bases; below the iliac crests the hips, the pubic and ischial bones and
the urinary bladder) and rasterised on the requested grid, with the pancreas as a
curved, lobulated head-body-tail organ surrounded by fat.

The pancreas is realistic enough to be hard: many of its neighbours (bowel
wall, duodenum, liver, spleen, collapsed jejunal loops, vessels) share its
Hounsfield range, so intensity alone cannot segment it; shape, context and
texture (a lobulated outline with fatty clefts and specks) can.

By default every case is portal-venous, from the diaphragm to the lower
abdomen, at NIH Pancreas-CT-like spacings; ``variation="realistic"`` (or the
factor keywords of :func:`make_phantom_cohort`) varies the field of view,
spacing, contrast phase, habitus, arms, table, noise, kernel, streaks, oral
contrast and the pancreas itself as real cohorts do.

Coordinates: every case has a positive-diagonal RAS+ affine, so array axis 0
runs towards the patient's right, axis 1 towards anterior and axis 2 towards
superior (the spine lies at low axis-1 indices, the anterior abdominal wall at
high ones, the liver at high axis-0 indices, the spleen at low ones), as in a
real scan converted to RAS+. (The anatomical model itself is written with x
towards the patient's left, as in DICOM; the output is mirrored to RAS+.)

The package has one room per part: ``_anatomy`` draws the patient in
millimetres, ``_render`` paints it as a tissue map on a grid, and
``_acquisition`` is the scanner (grid, intensities, point-spread function,
noise, kernel, streaks); ``_factors`` says what each varying factor may be
and draws it; ``_tissues`` and ``_geometry`` hold what they share.

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
from pancreas.phantom._acquisition import _factor_rng
from pancreas.phantom._acquisition import _make_case as _make_case
from pancreas.phantom._anatomy import _cached_anatomy as _cached_anatomy
from pancreas.phantom._factors import _case_factors, _check_factors, _Factors
from pancreas.phantom._tissues import PANCREAS_TISSUES as PANCREAS_TISSUES
from pancreas.phantom._tissues import TISSUES as TISSUES

__all__ = ["make_phantom_cohort", "make_synthetic_ct", "phantom_factors"]

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


def _check_n_cases(n_cases: Any) -> int:
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)):
        raise ValueError(f"n_cases must be a non-negative int, got {n_cases!r}")
    if n_cases < 0:
        raise ValueError(f"n_cases must be a non-negative int, got {n_cases}")
    return int(n_cases)


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
    root: np.random.SeedSequence,
    shape: tuple[int, int, int] | None,
    variation: str | None,
    factors: _Factors,
    i: int,
) -> tuple[Volume, Volume]:
    ct, label = _make_case(
        _case_seed(root, i),
        shape,
        name=f"phantom_{i:03d}",
        factors=None if factors == _Factors() else factors,
        variation=variation,
    )
    return ct, label


def make_synthetic_ct(
    *,
    shape: Sequence[int] | None = (64, 64, 16),
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
    **factors: Any,
) -> tuple[Volume, Volume]:
    """Generate one synthetic contrast-enhanced abdominal CT and its pancreas label.

    The same case as ``make_phantom_cohort(1, shape=shape,
    random_state=random_state, **factors)``: a small, fast volume for
    examples and tests. See :func:`make_phantom_cohort` for the anatomy,
    intensities and the factors.

    Parameters
    ----------
    shape : tuple of 3 int or None, default=(64, 64, 16)
        Grid size ``(nx, ny, nz)``. The field of view is physically realistic
        (about 300-460 mm in-plane, 130-200 mm along z around the pancreas),
        so the spacing is the field of view divided by ``shape``. ``None``
        only with ``spacing`` (or ``variation``): the grid then follows from
        the field of view and the spacing.
    random_state : int, numpy.random.Generator, SeedSequence or None, default=None
        Seed of the case; ``None`` draws a fresh one.
    **factors
        The factor keywords of :func:`make_phantom_cohort` (``spacing``,
        ``field_of_view``, ``phase``, ``habitus``, ``arms``, ``table``,
        ``noise``, ``kernel``, ``streaks``, ``oral_contrast``,
        ``pancreas_variant``, ``pancreas_shift``) and ``variation``.

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
    >>> ct, _ = make_synthetic_ct(shape=(32, 32, 8), phase="arterial", random_state=0)
    >>> ct.shape
    (32, 32, 8)
    """
    if shape is None and factors.get("spacing") is None and not factors.get(
        "variation"
    ):
        raise ValueError(
            "make_synthetic_ct needs an explicit shape, or shape=None with spacing"
        )
    cts, labels = make_phantom_cohort(
        1, shape=shape, random_state=random_state, **factors
    )
    return cts[0], labels[0]


def make_phantom_cohort(
    n_cases: int = 10,
    *,
    shape: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    field_of_view: str | None = None,
    phase: str | None = None,
    habitus: float | None = None,
    arms: str | None = None,
    table: bool | None = None,
    noise: float | None = None,
    kernel: str | None = None,
    streaks: str | None = None,
    oral_contrast: bool | None = None,
    pancreas_variant: str | None = None,
    pancreas_shift: float | None = None,
    variation: str | None = None,
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
    n_jobs: int | None = None,
) -> tuple[list[Volume], list[Volume]]:
    """Generate a cohort of synthetic abdominal CTs with pancreas labels.

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
    duodenal C-loop on the patient's right of the mesenteric vessels, across
    the midline in front of the aorta and SMA to the tail at the splenic
    hilum on the patient's left, with the splenic vein along its back, fatty
    clefts and specks, and a volume of about 50-100 mL. The scanner adds a
    Gaussian point-spread function, correlated noise (sigma 10-20 HU) and
    int16 quantisation.

    The default cohort is portal-venous, covers the abdomen around the
    pancreas at NIH Pancreas-CT-like spacings, without arms in the field of
    view, with the scanner table. Real cohorts vary more: each factor below
    can be fixed for the whole cohort, and ``variation="realistic"`` draws
    every factor left at ``None`` per case. A factor left at ``None`` without
    ``variation`` keeps the default cohort's behaviour, so the default cohort
    is unchanged by this interface.

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
    spacing : tuple of 3 float or None, default=None
        Voxel size ``(x, y, z)`` in mm (0.2-10). With ``shape=None`` the
        grid covers the case's field of view at this spacing, so the same
        anatomy (same ``random_state``) can be rendered at several spacings;
        with a ``shape``, ``shape`` voxels of this spacing around the same
        centre. ``None``: from ``shape`` (or, with ``variation``, drawn for
        full-size cases: in-plane 0.5-1.0 mm over a field of view that fits
        the patient, slice spacing 0.625-5 mm).
    field_of_view : {"abdomen", "abdomen-pelvis", "chest-abdomen-pelvis", \
"partial"}, mapping or None, default=None
        Cranio-caudal coverage, from the patient's landmarks: ``"abdomen"``
        from just above the diaphragm's domes to 30-80 mm below the iliac
        crests; ``"abdomen-pelvis"`` (the routine protocol) from there to
        the ischial tuberosities, 170-220 mm below the crests, so the hips
        and the urinary bladder are in the scan; ``"chest-abdomen-pelvis"``
        170-230 mm beyond both crests and domes (lung apices to ischial
        tuberosities); ``"partial"`` the pancreas with 25-45 mm on each side
        (a targeted pancreas protocol). Any of them models the patient from
        the pelvis to the lung apices, so the four fields of view of one
        ``random_state`` show the same anatomy (which
        differs from the default cohort's case of that seed). ``None``: the
        default cohort's coverage.
    phase : {"non-contrast", "arterial", "portal-venous", "delayed"}, mapping \
or None, default=None
        Contrast phase: sets the mean HU of the enhancing tissues per case
        from published ranges (see Notes). ``None`` and ``"portal-venous"``
        give the default cohort's intensities.
    habitus : float in [0, 1] or None, default=None
        Patient habitus from thin (0) to obese (1): body width 0.95-1.3 times
        the drawn one (more visceral fat around the same organs),
        subcutaneous fat 3 to about 38 mm, peripancreatic fat 0.5-1.7 times.
        ``None``: the default cohort's patients.
    arms : {"up", "sides"}, mapping or None, default=None
        ``"sides"`` adds the arms beside the trunk (cut at the field of view
        when it is narrow); ``"up"`` and ``None``: out of the field of view.
    table : bool or None, default=None
        Whether the scanner table is in the image. ``None``: it is.
    noise : float or None, default=None
        Standard deviation (HU) of the quantum noise in a uniform region
        after reconstruction, 0-200. ``None``: 10-20 HU drawn per case.
    kernel : {"smooth", "standard", "sharp"}, mapping or None, default=None
        Reconstruction kernel: the point-spread function (Gaussian sigma
        1.0-1.4, 0.55-0.9 and 0.3-0.45 mm) and so the noise texture; sharp
        kernels also enhance edges (overshoot, and coarser noise at the same
        standard deviation). ``None``: ``"standard"``.
    streaks : {"none", "bone", "metal"}, mapping or None, default=None
        ``"bone"``: dark beam-hardening bands between dense bones of the
        same slice (15-45 HU); ``"metal"``: also surgical clips in the
        gallbladder fossa with bright and dark streaks (150-350 HU).
        ``None``: none.
    oral_contrast : bool or None, default=None
        Positive oral contrast (150-350 HU) in the stomach, duodenum and
        small bowel. ``None``: water-density contents.
    pancreas_variant : {"typical", "fatty", "fatty-atrophic", "bulky-head"}, \
mapping or None, default=None
        ``"fatty"``: steatosis, a gland of normal size with 15-60 % fat mixed
        into its parenchyma and a few more fatty specks; ``"fatty-atrophic"``:
        about half the volume, deeply lobulated with fat between the lobules
        and 10-45 % fat in the parenchyma. The parenchyma's HU mixes the
        phase's pancreas and fat by volume, so a fatty pancreas can be darker
        than 0 HU on a non-contrast scan, as histology allows (0-65 % fat in
        Kim et al. [2]_). ``"bulky-head"``: a head 1.45 times as thick and
        a quarter more volume. ``None`` and ``"typical"``: the default
        cohort's pancreas.
    pancreas_shift : float or None, default=None
        Cranio-caudal displacement of the pancreas (mm, -30 to 30, positive
        towards the head), its vessels and the duodenum following it.
        ``None``: no shift.
    variation : {"realistic"} or None, default=None
        ``"realistic"`` draws, per case, every factor above left at
        ``None``: field of view (abdomen 35 %, abdomen-pelvis 30 %,
        chest-abdomen-pelvis 20 %, partial 15 %), spacing (full-size
        cases), phase (non-contrast 15 %, arterial 20 %, portal-venous 55
        %, delayed 10 %), habitus (Beta(2,
        2)), arms at the sides (20 %), table (90 %), noise (8-25 HU, higher
        for obese patients), kernel (smooth 30 %, standard 50 %, sharp 20
        %), streaks (none 50 %, bone 35 %, metal 15 %), oral contrast
        (35 %), pancreas variant (typical 60 %, fatty 15 %, fatty-atrophic 10
        %, bulky-head 15 %; steatosis in 16-33 % of adults [5]_) and shift
        (-15 to 15 mm). The draws of a case do not depend on which factors
        are fixed. ``None``: nothing is drawn.

        With ``"realistic"``, each categorical factor (``field_of_view``,
        ``phase``, ``arms``, ``kernel``, ``streaks``, ``pancreas_variant``)
        may also be a mapping of its values to weights, drawn per case with
        these instead of the percentages above: for a cohort balanced across
        kinds of scan, ``phase={"non-contrast": 1, "arterial": 1,
        "portal-venous": 1, "delayed": 1}``, or one matched to your own
        (values left out get weight 0). Every other draw of a case, and its
        anatomy, stay the same.
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
        The CTs in int16 Hounsfield units with RAS+ affines (array axis 0
        towards the patient's right, axis 1 anterior, axis 2 superior; the
        liver at high axis-0 indices, the spleen and the pancreatic tail at
        low ones); ``source`` is ``"phantom_000"``, ``"phantom_001"``, ...
    labels : list of Volume
        The pancreas masks, uint8 on the same grids (1 = pancreas).

    Raises
    ------
    ValueError
        If ``n_cases``, ``shape``, ``random_state`` or a factor is not one of
        the values described above (the message names the parameter).

    See Also
    --------
    make_synthetic_ct : One small case.
    phantom_factors : The factors of each case, without rendering.

    Notes
    -----
    A full-size case takes about 4-10 s on one core (generation is
    vectorised and organs are built in their bounding boxes only) and peaks at
    about 0.8 GB of memory; a 160 x 160 x 40 case takes well under a second.
    The anatomy of a case is drawn in millimetres before any grid is chosen,
    so ``shape`` and ``spacing`` change the sampling, not the patient.

    Mean HU per contrast phase of the tissues that enhance (drawn uniformly
    per case in these ranges; the others keep their portal-venous values):

    ================ ============ =========== ============= ===========
    tissue           non-contrast arterial    portal-venous delayed
    ================ ============ =========== ============= ===========
    aorta, arteries  35-50        250-400     155-195       100-140
    portal veins     35-50        110-160     145-180       100-140
    IVC              35-50        60-100      130-160       100-140
    liver            50-65        65-85       92-118        75-95
    spleen           40-52        110-150     102-125       80-100
    pancreas         35-50        110-150     88-125        65-85
    kidney cortex    28-38        180-260     165-200       140-180
    kidney medulla   25-35        70-110      105-135       140-190
    renal pelvis     0-20         0-20        0-20          300-900
    bladder urine    0-20         0-20        0-20          10-80
    bowel wall       30-45        80-120      65-95         60-80
    ================ ============ =========== ============= ===========

    Unenhanced values follow the soft-tissue attenuations measured by Lamba
    et al. [1]_ and, for the pancreas, Kim et al. [2]_; the arterial
    (pancreatic) phase peak of the pancreas and its timing against the
    portal-venous phase follow Lu et al. [3]_; the aortic and parenchymal
    time-enhancement curves (arterial peak, portal-venous plateau, delayed
    wash-out, excretion into the collecting system) follow Bae [4]_;
    excreted contrast has only begun to reach the bladder when the delayed
    phase is taken, 3-5 minutes after the injection. They
    are typical ranges for a standard iodine dose, not patient-specific
    values.

    References
    ----------
    .. [1] R. Lamba et al., "CT Hounsfield numbers of soft tissues on
       unenhanced abdominal CT scans: variability between two different
       manufacturers' MDCT scanners", AJR 203(5), 2014, pp. 1013-1020.
    .. [2] S. Y. Kim et al., "Quantitative assessment of pancreatic fat by
       using unenhanced CT: pathologic correlation and clinical
       implications", Radiology 271(1), 2014, pp. 104-112.
    .. [3] D. S. Lu et al., "Two-phase helical CT for pancreatic tumors:
       pancreatic versus hepatic phase enhancement of tumor, pancreas, and
       vascular structures", Radiology 199(3), 1996, pp. 697-701.
    .. [4] K. T. Bae, "Intravenous contrast medium administration and scan
       timing at CT: considerations and approaches", Radiology 256(1),
       2010, pp. 32-61.
    .. [5] U. Koc and O. Taydas, "Evaluation of pancreatic steatosis
       prevalence and anthropometric measurements using non-contrast
       computed tomography", Turk J Gastroenterol 31(9), 2020, pp. 640-648.

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

    The same patient at two slice spacings, and a cohort that varies:

    >>> a, _ = make_phantom_cohort(1, spacing=(6, 6, 2.5), random_state=0)
    >>> b, _ = make_phantom_cohort(1, spacing=(6, 6, 5.0), random_state=0)
    >>> float(a[0].spacing[2]), float(b[0].spacing[2])
    (2.5, 5.0)
    >>> cts, _ = make_phantom_cohort(
    ...     3, shape=(32, 32, 8), variation="realistic", random_state=0
    ... )

    Fatty pancreases in one case of two, the other factors as drawn:

    >>> cases = phantom_factors(
    ...     100, variation="realistic", random_state=0,
    ...     pancreas_variant={"typical": 1, "fatty": 1},
    ... )
    >>> sorted({c["pancreas_variant"] for c in cases})
    ['fatty', 'typical']
    """
    n_cases = _check_n_cases(n_cases)
    shape_t = _check_shape(shape)
    variation, factors = _check_factors(
        variation,
        spacing=spacing,
        field_of_view=field_of_view,
        phase=phase,
        habitus=habitus,
        arms=arms,
        table=table,
        noise=noise,
        kernel=kernel,
        streaks=streaks,
        oral_contrast=oral_contrast,
        pancreas_variant=pancreas_variant,
        pancreas_shift=pancreas_shift,
    )
    root = _root_seed(random_state)
    pairs = parallel_map(
        partial(_one_case, root, shape_t, variation, factors),
        range(int(n_cases)),
        n_jobs=n_jobs,
    )
    return [p[0] for p in pairs], [p[1] for p in pairs]


def phantom_factors(
    n_cases: int = 10,
    *,
    random_state: int | np.random.SeedSequence | None = None,
    **factors: Any,
) -> list[dict[str, Any]]:
    """The factors of each case of a phantom cohort, without rendering it.

    ``phantom_factors(n, random_state=seed, **factors)[i]`` says how case
    ``i`` of ``make_phantom_cohort(n, random_state=seed, **factors)`` was
    acquired (its contrast phase, field of view, habitus, ...): what a study
    on the cohort stratifies its results by. It takes milliseconds.

    Parameters
    ----------
    n_cases : int, default=10
        Number of cases.
    random_state : int, SeedSequence or None, default=None
        Seed of the cohort, as given to :func:`make_phantom_cohort`. A numpy
        ``Generator`` is not accepted: it would be consumed, and the cohort
        made with it afterwards would differ.
    **factors
        The factor keywords of :func:`make_phantom_cohort` and
        ``variation``.

    Returns
    -------
    list of dict
        One dict per case with the keys ``spacing``, ``field_of_view``,
        ``phase``, ``habitus``, ``arms``, ``table``, ``noise``, ``kernel``,
        ``streaks``, ``oral_contrast``, ``pancreas_variant`` and
        ``pancreas_shift``. ``None`` means the default cohort's behaviour;
        ``spacing`` is ``None`` unless given (read the drawn one from the
        case's :class:`~pancreas.io.Volume`).

    See Also
    --------
    make_phantom_cohort : The cohort itself.

    Examples
    --------
    >>> from pancreas.phantom import phantom_factors
    >>> cases = phantom_factors(3, variation="realistic", random_state=0)
    >>> sorted(cases[0]) == sorted(
    ...     ["spacing", "field_of_view", "phase", "habitus", "arms", "table",
    ...      "noise", "kernel", "streaks", "oral_contrast", "pancreas_variant",
    ...      "pancreas_shift"]
    ... )
    True
    >>> phantom_factors(1, phase="arterial", random_state=0)[0]["phase"]
    'arterial'
    """
    if isinstance(random_state, np.random.Generator | np.random.RandomState):
        raise ValueError(
            "random_state must be None, an int or a SeedSequence (a Generator "
            "would be consumed, and the cohort would differ)"
        )
    unknown = set(factors) - {*_Factors._fields, "variation"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TypeError(f"phantom_factors got unexpected keyword(s): {names}")
    variation, fixed = _check_factors(
        factors.get("variation"), **{k: factors.get(k) for k in _Factors._fields}
    )
    root = _root_seed(random_state)
    return [
        _case_factors(fixed, variation, _factor_rng(_case_seed(root, i)))._asdict()
        for i in range(_check_n_cases(n_cases))
    ]
