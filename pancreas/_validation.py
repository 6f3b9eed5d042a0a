"""The one place where pancreas reaches scikit-learn's parameter validation.

``_fit_context`` comes from sklearn-compat, which keeps it stable across
scikit-learn releases; the constraint classes are scikit-learn's own (their
module is private, so any change there is absorbed here only).
"""

from __future__ import annotations

from sklearn.utils._param_validation import Interval, StrOptions
from sklearn_compat.base import _fit_context

__all__ = ["Interval", "StrOptions", "_fit_context"]
