"""scikit-learn's data-free estimator checks, for every pancreas estimator.

``parametrize_with_checks`` runs zero checks on estimators that do not take
2D arrays, so the checks that need no data are called one by one. The checks
that need data (fit returns self, NotFittedError, pickling, reproducibility)
live in each stage's test file and in test_pipeline.py.
"""

from __future__ import annotations

import pytest
from sklearn.utils import estimator_checks as ec

from pancreas.cascade import RFCascade
from pancreas.convnet import SuperpixelConvNet
from pancreas.refine import GaussianRefiner
from pancreas.superpixels import SuperpixelGenerator

ESTIMATORS = [SuperpixelGenerator, RFCascade, SuperpixelConvNet, GaussianRefiner]
CHECKS = [
    ec.check_no_attributes_set_in_init,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_estimator_repr,
    ec.check_do_not_raise_errors_in_init_or_set_params,
]


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_sklearn_data_free_checks(Estimator, check):
    check(Estimator.__name__, Estimator())


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_parameters_are_keyword_only_and_constrained(Estimator):
    import inspect

    sig = inspect.signature(Estimator.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params)
    assert set(Estimator._parameter_constraints) == {p.name for p in params}
