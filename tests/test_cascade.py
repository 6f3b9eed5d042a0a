"""Tests for pancreas.cascade: the two-level random-forest cascade (S_RF)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pancreas.cascade import RFCascade, candidate_mask, candidate_recall
from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.record import as_records
from pancreas.superpixels import SuperpixelGenerator

FAST = {"n_estimators": 8, "max_depth": 10, "min_samples_leaf": 2}


def _case(seed, shape=(40, 40, 5), spacing=(1.5, 1.5, 3.0)):
    """A tiny abdomen: fat-rimmed body, a spine, a vessel and a 'pancreas'."""
    rng = np.random.default_rng(seed)
    n0, n1, nz = shape
    ii, jj = np.meshgrid(np.arange(n0), np.arange(n1), indexing="ij")
    ell = ((ii - n0 / 2) / (0.45 * n0)) ** 2 + ((jj - n1 / 2) / (0.38 * n1)) ** 2
    slice_hu = np.full((n0, n1), -1000.0)
    slice_hu[ell <= 1] = -100.0  # fat
    slice_hu[ell <= 0.7] = 30.0  # organs
    spine = np.hypot(ii - n0 / 2, jj - 0.75 * n1) < 3
    slice_hu[spine] = 500.0
    slice_hu[np.hypot(ii - 0.6 * n0, jj - 0.6 * n1) < 2] = 200.0  # vessel
    hu = np.repeat(slice_hu[..., None], nz, axis=2)
    label = np.zeros(shape, np.uint8)
    shift = rng.integers(-2, 3)
    for k in range(1, nz - 1):
        label[14 + shift : 21 + shift, 10 + k : 24 + k, k] = 1
    hu[label == 1] = 110.0
    hu += rng.normal(0, 8, shape)
    affine = np.diag([*spacing, 1.0])
    return Volume(hu.astype(np.int16), affine), Volume(label, affine)


@pytest.fixture(scope="module")
def cohort():
    cases = [_case(seed) for seed in range(5)]
    records = SuperpixelGenerator(superpixel_area=20.0).fit_transform(
        [c[0] for c in cases]
    )
    return records, [c[1] for c in cases]


@pytest.fixture(scope="module")
def fitted(cohort):
    records, labels = cohort
    return RFCascade(random_state=0, **FAST).fit(records[:4], labels[:4])


# --------------------------------------------------------------------------- #
# scikit-learn conventions
# --------------------------------------------------------------------------- #
def test_clone_get_set_params():
    est = RFCascade(n_estimators=7, threshold=0.3)
    params = clone(est).get_params()
    assert params["n_estimators"] == 7 and params["threshold"] == 0.3
    assert est.set_params(cv=4) is est and est.cv == 4


def test_not_fitted_raises(cohort):
    with pytest.raises(NotFittedError):
        RFCascade().transform(cohort[0][:1])


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 0},
        {"threshold": 1.5},
        {"cv": 1},
        {"grid_spacing": 0.0},
        {"max_patches_per_case": 1},
        {"min_samples_leaf": 0},
        {"positive_fraction": 0.0},
        {"hu_window": (100.0, 0.0)},
    ],
)
def test_invalid_params_rejected_at_fit(cohort, params):
    records, labels = cohort
    est = RFCascade(**params)
    with pytest.raises(ValueError):
        est.fit(records[:2], labels[:2])


def test_fit_returns_self_and_fitted_attributes(cohort):
    records, labels = cohort
    est = RFCascade(random_state=0, cv=2, **FAST)
    assert est.fit(records[:3], labels[:3]) is est
    assert est.n_features_level1_ == len(est.feature_names_level1_)
    assert est.level1_.n_features_in_ == est.n_features_level1_
    assert est.level2_.n_features_in_ == est.n_features_level2_
    assert {"depth_mm", "dx_spine_mm", "mean_41mm"} <= set(est.feature_names_level1_)
    assert "p1_mean" in est.feature_names_level2_
    assert est.n_folds_ == 2
    assert 0 < est.n_patches_ and 0 < est.n_superpixels_fit_


def test_max_patches_per_case_bounds_training_rows(cohort):
    records, labels = cohort
    est = RFCascade(max_patches_per_case=50, random_state=0, cv=2, **FAST)
    est.fit(records[:2], labels[:2])
    assert est.n_patches_ <= 100
    assert est.n_superpixels_fit_ <= 100


def test_pickle_round_trip_gives_identical_transform(fitted, cohort):
    again = pickle.loads(pickle.dumps(fitted))
    a = fitted.transform(cohort[0][4:])[0]
    b = again.transform(cohort[0][4:])[0]
    np.testing.assert_array_equal(a.sp_proba, b.sp_proba)
    np.testing.assert_array_equal(a.candidates, b.candidates)


def test_random_state_reproducible(fitted, cohort):
    records, labels = cohort
    again = RFCascade(random_state=0, **FAST).fit(records[:4], labels[:4])
    np.testing.assert_array_equal(
        fitted.transform(records[4:])[0].sp_proba,
        again.transform(records[4:])[0].sp_proba,
    )


def test_single_case_fit_warns(cohort):
    records, labels = cohort
    with pytest.warns(UserWarning, match="single case"):
        est = RFCascade(random_state=0, **FAST).fit(records[:1], labels[:1])
    assert est.n_folds_ == 0


# --------------------------------------------------------------------------- #
# Behaviour
# --------------------------------------------------------------------------- #
def test_candidates_cover_held_out_label(fitted, cohort):
    records, labels = cohort
    out = fitted.transform(records[4:])[0]
    assert candidate_recall(out, labels[4]) >= 0.9
    # and the candidate set is much smaller than the body
    assert candidate_mask(out).sum() < 0.5 * out.body_mask.sum()


def test_transform_output_contract(fitted, cohort):
    records = cohort[0]
    out = fitted.transform(records[4:])[0]
    assert out.sp_proba.dtype == np.float32
    assert out.sp_proba.shape == (out.n_superpixels + 1,)
    assert out.sp_proba[0] == 0.0
    assert np.all((out.sp_proba >= 0) & (out.sp_proba <= 1))
    assert out.candidates.dtype == np.int32
    np.testing.assert_array_equal(
        out.candidates, np.flatnonzero(out.sp_proba > fitted.threshold)
    )
    np.testing.assert_array_equal(
        fitted.predict_proba_superpixels(records[4:])[0], out.sp_proba
    )


def test_threshold_controls_candidates(fitted, cohort):
    records = cohort[0][4:]
    low = pickle.loads(pickle.dumps(fitted)).set_params(threshold=0.1)
    n_default = fitted.transform(records)[0].candidates.size
    assert low.transform(records)[0].candidates.size >= n_default


def test_transform_does_not_mutate_input(fitted, cohort):
    records = cohort[0][4:]
    before = records[0].superpixels.copy()
    out = fitted.transform(records)
    assert out[0] is not records[0]
    assert records[0].sp_proba is None and records[0].candidates is None
    np.testing.assert_array_equal(records[0].superpixels, before)
    assert out[0].superpixels is records[0].superpixels


def test_raw_volumes_without_superpixels_raise(fitted):
    ct, label = _case(9)
    with pytest.raises(InvalidVolumeError, match="SuperpixelGenerator"):
        RFCascade(**FAST).fit([ct, ct], [label, label])
    with pytest.raises(InvalidVolumeError, match="SuperpixelGenerator"):
        fitted.transform(as_records([ct]))


def test_labels_must_match_cases(cohort):
    records, labels = cohort
    with pytest.raises(InvalidVolumeError, match="label"):
        RFCascade(**FAST).fit(records[:3], labels[:2])


def test_candidate_helpers_need_candidates(cohort):
    with pytest.raises(InvalidVolumeError, match="RFCascade"):
        candidate_mask(cohort[0][0])


def test_model_of_another_features_version_is_refused(fitted, cohort):
    import copy

    from pancreas.cascade import FEATURES_VERSION
    from pancreas.exceptions import ModelVersionError

    old = copy.deepcopy(fitted)
    old.features_version_ = FEATURES_VERSION - 1
    with pytest.raises(ModelVersionError, match="version"):
        old.transform(cohort[0][:1])
    assert fitted.features_version_ == FEATURES_VERSION
