"""The factors a phantom cohort varies over: their checks and their random draws.

One place for what each factor may be: :func:`_check_factors` validates what a
user passes to :func:`pancreas.phantom.make_phantom_cohort`, and
:func:`_case_factors` resolves them for one case (drawing the ones left to
chance when ``variation="realistic"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

# "abdomen-pelvis" last: appended after the others existed, so that the
# same draw gives the same of the first three where it gave them before
FIELDS_OF_VIEW = ("abdomen", "chest-abdomen-pelvis", "partial", "abdomen-pelvis")
PHASES = ("non-contrast", "arterial", "portal-venous", "delayed")
KERNELS = ("smooth", "standard", "sharp")
ARMS = ("up", "sides")
STREAKS = ("none", "bone", "metal")
PANCREAS_VARIANTS = ("typical", "fatty", "fatty-atrophic", "bulky-head")
VARIATIONS = ("realistic",)

# Typical reconstructed slice spacings (mm) of abdominal CT.
_SLICE_SPACINGS = (0.625, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)


class _Weights(tuple):  # type: ignore[type-arg]
    """A categorical factor's draw probabilities, in the order of its options.

    What a mapping such as ``phase={"non-contrast": 1, "portal-venous": 3}``
    becomes: the factor is drawn per case with these probabilities instead
    of the realistic cohort's.
    """


class _Factors(NamedTuple):
    """One case's factors; ``None`` is the default cohort's behaviour.

    Before a case's factors are resolved, a categorical one may also be
    :class:`_Weights`: drawn with those probabilities.
    """

    spacing: tuple[float, float, float] | None = None
    field_of_view: str | _Weights | None = None
    phase: str | _Weights | None = None
    habitus: float | None = None
    arms: str | _Weights | None = None
    table: bool | None = None
    noise: float | None = None
    kernel: str | _Weights | None = None
    streaks: str | _Weights | None = None
    oral_contrast: bool | None = None
    pancreas_variant: str | _Weights | None = None
    pancreas_shift: float | None = None


def _choice(
    name: str, value: Any, options: Sequence[str], variation: str | None = None
) -> str | _Weights | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _weights(name, value, options, variation)
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"{name} must be None, one of {', '.join(map(repr, options))} or a "
            f"mapping of them to weights; got {value!r}"
        )
    return value


def _weights(
    name: str, value: Mapping[Any, Any], options: Sequence[str], variation: str | None
) -> _Weights:
    """``{"fatty": 1, "typical": 3}`` -> the probability of each option, in order."""
    if variation is None:
        raise ValueError(
            f"{name}: a mapping of values to weights draws the factor per case, "
            "which needs variation='realistic'"
        )
    unknown = [k for k in value if k not in options]
    if unknown:
        raise ValueError(
            f"{name}: unknown value(s) {', '.join(map(repr, unknown))} in the "
            f"weights; the values are {', '.join(map(repr, options))}"
        )
    w = []
    for option in options:
        x = value.get(option, 0.0)
        if isinstance(x, bool) or not isinstance(x, (int, float, np.number)):
            raise ValueError(f"{name}: the weight of {option!r} must be a number; got {x!r}")
        if not (math.isfinite(float(x)) and float(x) >= 0):
            raise ValueError(
                f"{name}: the weight of {option!r} must be finite and >= 0; got {x!r}"
            )
        w.append(float(x))
    total = sum(w)
    if total <= 0:
        raise ValueError(f"{name}: the weights must not all be 0; got {dict(value)!r}")
    return _Weights(x / total for x in w)


def _real(name: str, value: Any, lo: float, hi: float, unit: str = "") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be None or a number; got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}]{unit}; got {value!r}")
    return v


def _flag(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise ValueError(f"{name} must be None, True or False; got {value!r}")


def _check_spacing(spacing: Any) -> tuple[float, float, float] | None:
    if spacing is None:
        return None
    msg = (
        "spacing must be None or three positive numbers (x, y, z) in mm, "
        f"between 0.2 and 10; got {spacing!r}"
    )
    try:
        out = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if len(out) != 3 or not all(math.isfinite(s) and 0.2 <= s <= 10 for s in out):
        raise ValueError(msg)
    return out  # type: ignore[return-value]


def _check_factors(
    variation: Any = None, **factors: Any
) -> tuple[str | None, _Factors]:
    """Validate ``variation`` and the factor keywords; return them normalised."""
    if variation is not None and variation not in VARIATIONS:
        raise ValueError(f"variation must be None or 'realistic'; got {variation!r}")
    v = variation
    f = _Factors(
        spacing=_check_spacing(factors["spacing"]),
        field_of_view=_choice(
            "field_of_view", factors["field_of_view"], FIELDS_OF_VIEW, v
        ),
        phase=_choice("phase", factors["phase"], PHASES, v),
        habitus=_real("habitus", factors["habitus"], 0.0, 1.0),
        arms=_choice("arms", factors["arms"], ARMS, v),
        table=_flag("table", factors["table"]),
        noise=_real("noise", factors["noise"], 0.0, 200.0, " HU"),
        kernel=_choice("kernel", factors["kernel"], KERNELS, v),
        streaks=_choice("streaks", factors["streaks"], STREAKS, v),
        oral_contrast=_flag("oral_contrast", factors["oral_contrast"]),
        pancreas_variant=_choice(
            "pancreas_variant", factors["pancreas_variant"], PANCREAS_VARIANTS, v
        ),
        pancreas_shift=_real(
            "pancreas_shift", factors["pancreas_shift"], -30, 30, " mm"
        ),
    )
    return variation, f


def _draw(
    rng: np.random.Generator, options: Sequence[Any], p: Sequence[float], given: Any
) -> Any:
    """One of ``options`` drawn with ``p``, or with the ``given`` weights.

    The draw uses the same random numbers whatever the probabilities, so
    weighting one factor leaves the other factors' draws unchanged.
    """
    if isinstance(given, _Weights):
        p = given
    return options[int(rng.choice(len(options), p=p))]


def _case_factors(
    fixed: _Factors,
    variation: str | None,
    rng: np.random.Generator,
) -> _Factors:
    """The factors of one case: ``fixed`` where given, drawn where left ``None``.

    Without ``variation`` nothing is drawn (``None`` keeps the default
    cohort's behaviour). With ``variation="realistic"`` every factor is drawn,
    always in the same order, and then the fixed ones override their draws, so
    fixing one factor does not change the others' draws; a categorical factor
    given as :class:`_Weights` is drawn with those probabilities.
    """
    if variation is None:
        return fixed
    u = rng.uniform
    fov = _draw(rng, FIELDS_OF_VIEW, (0.35, 0.2, 0.15, 0.3), fixed.field_of_view)
    habitus = float(rng.beta(2.0, 2.0))
    drawn = _Factors(
        spacing=None,  # drawn with the patient's size (_realistic_spacing)
        field_of_view=fov,
        phase=_draw(rng, PHASES, (0.15, 0.2, 0.55, 0.1), fixed.phase),
        habitus=habitus,
        arms=_draw(rng, ARMS, (0.8, 0.2), fixed.arms),
        table=bool(u() < 0.9),
        # obese patients are noisier at the same dose
        noise=float(u(8.0, 25.0)) * (0.8 + 0.5 * habitus),
        kernel=_draw(rng, KERNELS, (0.3, 0.5, 0.2), fixed.kernel),
        streaks=_draw(rng, STREAKS, (0.5, 0.35, 0.15), fixed.streaks),
        oral_contrast=bool(u() < 0.35),
        # pancreatic steatosis in 16-33 % of adults (make_phantom_cohort's
        # reference [5]), atrophic in some of them
        pancreas_variant=_draw(
            rng, PANCREAS_VARIANTS, (0.6, 0.15, 0.1, 0.15), fixed.pancreas_variant
        ),
        pancreas_shift=float(u(-15.0, 15.0)),
    )
    return _Factors(
        *(
            d if f is None or isinstance(f, _Weights) else f
            for f, d in zip(fixed, drawn, strict=True)
        )
    )


def _realistic_spacing(
    rng: np.random.Generator, fov_mm: float, z_mm: float
) -> tuple[float, float, float]:
    """A full-size case's spacing: 512 x 512 over a field of view fitting the patient.

    In-plane 0.5-1.0 mm (the display field of view of a 512 matrix, 256-512
    mm, mostly chosen to fit the patient) and a slice spacing from those of
    clinical protocols (0.625-5 mm), thicker for long scans so that a case
    has at most 700 slices.
    """
    inplane = float(np.clip(fov_mm / 512.0 * rng.uniform(0.85, 1.15), 0.5, 1.0))
    p = np.array([0.1, 0.05, 0.15, 0.1, 0.1, 0.1, 0.15, 0.1, 0.15])
    p[np.asarray(_SLICE_SPACINGS) * 700.0 < z_mm] = 0.0
    slice_sp = float(_SLICE_SPACINGS[int(rng.choice(len(p), p=p / p.sum()))])
    return inplane, inplane, slice_sp
