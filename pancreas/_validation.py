"""The one place where pancreas reaches scikit-learn's parameter validation.

``_fit_context`` comes from sklearn-compat, which keeps it stable across
scikit-learn releases; the constraint classes are scikit-learn's own (their
module is private, so any change there is absorbed here only).
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn_compat.base import _fit_context

__all__ = [
    "N_JOBS",
    "Interval",
    "StrOptions",
    "_fit_context",
    "validate_step_params",
]

#: The constraint of every ``n_jobs``: None (one job, or joblib's
#: ``parallel_config``), a positive count, or -1, -2, ... (all processors,
#: all but one, ...). Zero means nothing to joblib and is refused.
N_JOBS: list[Any] = [
    Interval(Integral, 1, None, closed="left"),
    Interval(Integral, None, -1, closed="right"),
    None,
]


def validate_step_params(steps: Iterable[tuple[str, Any]]) -> None:
    """Check every parameter of every step, before any step is fitted.

    Each estimator's ``_parameter_constraints`` are checked as its own
    ``fit`` would, and its ``_check_params()`` (if it has one) is called, so
    that a bad value of the last step is reported at once, not after the
    first steps have trained.

    Parameters
    ----------
    steps : iterable of (str, estimator)
        A pipeline's steps; ``None`` and ``"passthrough"`` are skipped.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        Naming the estimator, its step and the parameter.
    ValueError
        From an estimator's ``_check_params``, prefixed with its step.
    """
    for name, est in steps:
        if est is None or (isinstance(est, str) and est == "passthrough"):
            continue
        constraints = getattr(est, "_parameter_constraints", None)
        if isinstance(constraints, dict):
            validate_parameter_constraints(
                constraints,
                est.get_params(deep=False),
                caller_name=f"{type(est).__name__} (step {name!r})",
            )
        # Rules the constraints cannot state (a window's order, how many of
        # the scales are trained on), checked by the estimator itself.
        check = getattr(est, "_check_params", None)
        if callable(check):
            try:
                check()
            except ValueError as exc:
                raise type(exc)(
                    f"{type(est).__name__} (step {name!r}): {exc}"
                ) from exc
