"""pancreas: pancreas segmentation in abdominal CT.

An implementation of Roth et al., "Deep convolutional networks for pancreas
segmentation in CT imaging" (SPIE Medical Imaging 2015): SLIC superpixels, a
two-level random-forest cascade, a multi-scale superpixel ConvNet and 3D
Gaussian smoothing, as scikit-learn estimators.

Public names are loaded lazily, so ``import pancreas`` is fast and never
imports Keras or TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # io
    "Volume": "pancreas.io",
    "load_volume": "pancreas.io",
    "save_volume": "pancreas.io",
    # datasets
    "make_phantom_cohort": "pancreas.phantom",
    "make_synthetic_ct": "pancreas.phantom",
    "load_nih_pancreas": "pancreas.datasets",
    "load_msd_pancreas": "pancreas.datasets",
    "load_nifti_folder": "pancreas.datasets",
    "load_nifti_glob": "pancreas.datasets",
    # the method
    "SuperpixelGenerator": "pancreas.superpixels",
    "RFCascade": "pancreas.cascade",
    "SuperpixelConvNet": "pancreas.convnet",
    "GaussianRefiner": "pancreas.refine",
    "Pipeline": "pancreas.pipeline",
    "make_pipeline": "pancreas.pipeline",
    "make_roth2015_pipeline": "pancreas.pipeline",
    # model files, cohorts, reports
    "save_pipeline": "pancreas.persistence",
    "load_pipeline": "pancreas.persistence",
    "segment_cohort": "pancreas.cohort",
    "evaluate_pipeline": "pancreas.evaluation",
    # metrics
    "dice_score": "pancreas.metrics",
    "jaccard_score": "pancreas.metrics",
    "precision_score": "pancreas.metrics",
    "recall_score": "pancreas.metrics",
    "hausdorff_distance_95": "pancreas.metrics",
    "average_symmetric_surface_distance": "pancreas.metrics",
    "surface_dice": "pancreas.metrics",
    "evaluate_segmentation": "pancreas.metrics",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pancreas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
