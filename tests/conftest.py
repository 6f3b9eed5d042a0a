"""Shared fixtures: tiny volumes, a seeded RNG and the real CT in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("PANCREAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CT beside the checkout; skips where it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real CT test data not found at {SHARED_DATA}")
    return SHARED_DATA


#: Grid of the tiny phantoms used by the end-to-end tests.
TINY_SHAPE = (64, 64, 12)


@pytest.fixture(scope="session")
def tiny_cohort():
    """Five tiny labelled phantoms: 3 to train, 1 to validate, 1 to test."""
    from pancreas.phantom import make_phantom_cohort

    return make_phantom_cohort(5, shape=TINY_SHAPE, random_state=3)


@pytest.fixture(scope="session")
def tiny_fitted(tiny_cohort):
    """A pipeline (tiny preset) fitted on ``tiny_cohort``'s first 4 cases.

    Shared by the tests of model files, reports and the CLI; do not mutate it.
    """
    pytest.importorskip("keras")
    from pancreas.pipeline import make_roth2015_pipeline

    images, labels = tiny_cohort
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    pipe.fit(images[:3], labels[:3], X_val=images[3:4], y_val=labels[3:4])
    return pipe


@pytest.fixture(scope="session")
def make_local_cluster():
    """Makes a dask.distributed LocalCluster on loopback (use it in a ``with``)."""
    return _local_cluster


def _local_cluster():
    """A LocalCluster on loopback: 2 worker processes, 1 thread each."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    )
