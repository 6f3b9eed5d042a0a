"""What every pancreas estimator shares: scikit-learn tags for lists of volumes."""

from __future__ import annotations

from typing import Any

__all__ = ["VolumeEstimatorMixin"]


class VolumeEstimatorMixin:
    """Tags of an estimator whose ``X`` is a list of CT volumes, not a 2D array.

    Put it left of scikit-learn's mixins. ``_requires_y`` says whether ``fit``
    needs label volumes.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Stage(VolumeEstimatorMixin, BaseEstimator):
    ...     pass
    >>> Stage().__sklearn_tags__().input_tags.two_d_array
    False
    """

    _requires_y = True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.two_d_array = False
        tags.target_tags.required = self._requires_y
        return tags
