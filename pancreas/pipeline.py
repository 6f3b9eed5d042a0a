"""The Pipeline of Roth et al. (2015) and its stage-by-stage report.

:class:`Pipeline` is scikit-learn's :class:`~sklearn.pipeline.Pipeline`
(named steps, ``memory=`` caching, slicing, ``step__param``) for lists of CT
volumes: ``predict_proba`` returns float32 probability volumes, ``predict``
uint8 masks and ``score`` the mean Dice, each in every input's own grid.
"""

from __future__ import annotations

import os
from typing import Any

from sklearn.pipeline import Pipeline as _SkPipeline
from sklearn.pipeline import _name_estimators
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from pancreas._checks import (
    _after_predict,
    _before_fit,
    _before_predict,
    _final_has,
    _keyed_for_memory,
)
from pancreas.record import CaseRecord
from pancreas.report import StageReport

__all__ = ["Pipeline", "make_pipeline", "make_roth2015_pipeline", "stage_report"]


class Pipeline(_SkPipeline):
    """A scikit-learn Pipeline over lists of CT volumes.

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        The stages, usually ``SuperpixelGenerator``, ``RFCascade``,
        ``SuperpixelConvNet`` and ``GaussianRefiner``.
    memory : str, joblib.Memory or None, default=None
        scikit-learn's cache of the fitted transformers and their output
        for an in-memory fit. Setting it turns the streamed fit off (every
        case's stage outputs are then held in memory at once): meant for
        small cohorts and custom step lists; use ``work_dir`` otherwise.
    work_dir : str, PathLike or None, default=None
        Work folder of the streamed fit of the paper's four stages (see
        Notes). ``None``: a temporary folder, removed after ``fit``. A path:
        kept, so that a rerun (after a crash, a SIGKILL or with changed
        parameters) reuses every complete case, the fitted forests and the
        ConvNet's last completed epoch, and recomputes what changed.
    transform_input : list of str or None, default=None
        As in scikit-learn: fit parameters transformed by the preceding
        steps (metadata routing only).
    verbose : bool, default=False
        Print the time of each step.

    Attributes
    ----------
    training_summary_ : dict
        What ``fit`` saw: ``n_cases``, the range of voxel spacing
        (``spacing_min``, ``spacing_max``, mm, canonical axes) and grid size
        (``shape_min``, ``shape_max``) of the training cases, and
        ``n_validation_cases``. ``predict`` and ``predict_proba`` warn about
        a case whose spacing lies well outside it, and
        :func:`~pancreas.persistence.save_pipeline` stores it.
    streamed_counts_ : dict of str to int
        After a streamed fit: per kind of work (``"superpixels computed"``,
        ``"cases reused"``, ``"ConvNet epochs reused"``...), how many.

    Notes
    -----
    When the steps are ``SuperpixelGenerator``, ``RFCascade``,
    ``SuperpixelConvNet`` and ``GaussianRefiner`` and ``memory`` is None,
    ``fit`` streams: each case is loaded, superpixelised and described by
    the cascade's features once, written to ``work_dir`` (CT as int16 where
    exact, superpixels in the smallest integer type) and dropped; the
    forests train on at most ``cascade__max_patches_per_case`` rows per
    case and level, read back case by case; the ConvNet crops its patches
    from the CT files on disk, reading only the rows each batch needs; the
    refiner sees one case at a time. Resident memory is one case plus the
    training tables, whatever the size of the cohort, and the model is
    bitwise the same as fitting the steps one after the other in memory
    (on CPU, for an integer ``random_state``). The per-case work goes
    through joblib: inside ``joblib.parallel_config(backend="dask")`` (see
    :func:`pancreas.distributed.run_on_cluster`) it runs on the cluster's
    workers, which must see ``work_dir`` and the inputs at the same paths;
    the forests and the ConvNet train in this process.

    See Also
    --------
    make_roth2015_pipeline : The paper's configuration.
    stage_report : The paper's Table 2 for any labelled cohort.

    Examples
    --------
    >>> from pancreas.pipeline import make_roth2015_pipeline
    >>> pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    >>> [name for name, _ in pipe.steps]
    ['superpixels', 'cascade', 'convnet', 'refiner']
    """

    def __init__(
        self,
        steps: list[tuple[str, Any]],
        *,
        transform_input: list[str] | None = None,
        memory: Any = None,
        work_dir: str | os.PathLike[str] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            steps, transform_input=transform_input, memory=memory, verbose=verbose
        )
        self.work_dir = work_dir

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        **params: Any,
    ) -> Pipeline:
        """Fit every stage; optionally fit the last one on validation cases.

        Parameters
        ----------
        X : sequence of CT volumes
            Training cases (paths, nibabel images or Volumes; a bare array,
            which has no voxel spacing, is refused).
        y : sequence of label volumes
            One label per case; non-zero means pancreas.
        X_val, y_val : sequences, optional
            Validation cases. When given, the transformers are fitted on
            ``X`` and the final step (the refiner, which picks the
            threshold) on ``X_val`` transformed by them, as in the paper
            (threshold 0.4 chosen on 2 validation cases).
        **params : dict
            Fit parameters routed to the steps (``step__param``).

        Returns
        -------
        self : Pipeline
        """
        # Parameters and inputs checked, and the training cases summarised,
        # before any stage runs (pancreas._checks).
        self.training_summary_ = _before_fit(self, X, y, X_val=X_val, y_val=y_val)
        X, y = _keyed_for_memory(self, X, y)
        from pancreas._streamed import can_stream, streamed_fit

        if self.memory is None and not params and can_stream(self):
            streamed_fit(self, X, y, X_val, y_val, self.work_dir)
            return self
        if X_val is None:
            return super().fit(X, y, **params)
        if y_val is None:
            raise ValueError("X_val was given without y_val")
        head = self[:-1]
        head.fit(X, y, **params)
        self.steps = [*head.steps, self.steps[-1]]
        self.steps[-1][1].fit(head.transform(X_val), y_val)
        return self

    @available_if(_final_has("predict_proba"))
    def predict_proba(self, X: Any, **params: Any) -> Any:
        """Probability maps, with the warnings ``pancreas segment`` gives.

        Parameters
        ----------
        X : sequence of CT volumes
            Paths, nibabel images or Volumes; a bare array is refused (it
            has no voxel spacing): pass ``Volume(array, affine)``.
        **params : dict
            Passed on as by scikit-learn's ``Pipeline.predict_proba``.

        Returns
        -------
        list of ndarray of float32
            One map per case, in its own grid.
        """
        _before_predict(self, X)
        maps = super().predict_proba(X, **params)
        _after_predict(self, X, maps, proba=True)
        return maps

    @available_if(_final_has("predict"))
    def predict(self, X: Any, **params: Any) -> Any:
        """Masks, with the warnings ``pancreas segment`` gives.

        Parameters
        ----------
        X : sequence of CT volumes
            Paths, nibabel images or Volumes; a bare array is refused (it
            has no voxel spacing): pass ``Volume(array, affine)``.
        **params : dict
            Passed on as by scikit-learn's ``Pipeline.predict``.

        Returns
        -------
        list of ndarray of uint8
            One mask per case, in its own grid.
        """
        _before_predict(self, X)
        masks = super().predict(X, **params)
        _after_predict(self, X, masks, proba=False)
        return masks

    def records(self, X: Any) -> list[CaseRecord]:
        """Run every step but the last: the per-case records.

        Parameters
        ----------
        X : sequence of CT volumes

        Returns
        -------
        list of CaseRecord
        """
        check_is_fitted(self)
        return self[:-1].transform(X)

    def stage_report(self, X: Any, y: Any, *, n_jobs: int | None = None) -> StageReport:
        """The paper's Table 2 for a labelled cohort (see :func:`stage_report`)."""
        return stage_report(self, X, y, n_jobs=n_jobs)


def make_pipeline(*steps: Any, memory: Any = None, verbose: bool = False) -> Pipeline:
    """Build a :class:`Pipeline` naming the steps after their classes.

    Parameters
    ----------
    *steps : estimators
        The stages, in order.
    memory : str, joblib.Memory or None, default=None
        Cache of fitted transformers.
    verbose : bool, default=False
        Print the time of each step.

    Returns
    -------
    Pipeline

    Examples
    --------
    >>> from pancreas.pipeline import make_pipeline
    >>> from pancreas.refine import GaussianRefiner
    >>> make_pipeline(GaussianRefiner()).steps[0][0]
    'gaussianrefiner'
    """
    return Pipeline(_name_estimators(steps), memory=memory, verbose=verbose)


#: Parameter presets of :func:`make_roth2015_pipeline`.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # As in the paper: Ns=2 x Nt=8 at training, Ns=4 at test, 64x64 patches,
    # a 5-conv-layer net, 100 epochs. Sized for a GPU.
    "paper": {
        "superpixels": {},
        "cascade": {},
        "convnet": {
            "patch_size": 64,
            "n_deformations": 8,
            "epochs": 100,
        },
        "refiner": {"sigma": 3.0},
    },
    # Sized for 2 CPU cores in minutes: a narrower net on 32x32 patches,
    # fewer deformations and epochs. Same stages, same scales.
    "cpu": {
        "superpixels": {},
        "cascade": {"n_estimators": 40},
        "convnet": {
            "patch_size": 32,
            "filters": (16, 16, 32, 32, 32),
            "dense_units": (128, 128),
            "n_deformations": 2,
            "epochs": 12,
            "patience": 3,
            "batch_size": 128,
        },
        # The paper's 3 voxels were about 2 x 2 x 6 mm on NIH Pancreas-CT; on
        # the CPU preset's coarser grids (2.5-3.5 mm voxels) the same number
        # of voxels blurs 3-4 times more, so sigma is set in mm instead.
        "refiner": {"sigma": 3.0, "sigma_unit": "mm"},
    },
    # For tests and doctests on tiny volumes: seconds, not minutes. Tiny
    # grids have 5-7 mm pixels and 13-15 mm slices, which the spacing check
    # would (rightly) warn about on a real scan.
    "tiny": {
        "superpixels": {"check_spacing": False},
        "cascade": {"n_estimators": 10, "cv": 2},
        "convnet": {
            "patch_size": 16,
            "filters": (4, 4, 8, 8, 8),
            "dense_units": (16, 16),
            "n_deformations": 1,
            "epochs": 2,
            "batch_size": 64,
            "validation_fraction": 0.0,
            "early_stopping": False,
        },
        "refiner": {"sigma": 1.0},
    },
}


def make_roth2015_pipeline(
    *,
    preset: str = "paper",
    random_state: int | None = None,
    n_jobs: int | None = None,
    verbose: int = 0,
    memory: Any = None,
) -> Pipeline:
    """The paper's method: superpixels -> RF cascade -> ConvNet -> Gaussian.

    Parameters
    ----------
    preset : {"paper", "cpu", "tiny"}, default="paper"
        ``"paper"``: the published configuration (for a GPU); ``"cpu"``: the
        same stages sized for two CPU cores (narrower net, 32x32 patches,
        fewer deformations and epochs); ``"tiny"``: for tests.
    random_state : int or None, default=None
        Seed of every stochastic stage.
    n_jobs : int or None, default=None
        Parallel slices, cases and trees (joblib).
    verbose : int, default=0
        Progress bars when > 0.
    memory : str, joblib.Memory or None, default=None
        Cache of the fitted transformers.

    Returns
    -------
    Pipeline
        Steps ``superpixels``, ``cascade``, ``convnet``, ``refiner``.

    Examples
    --------
    >>> pipe = make_roth2015_pipeline(preset="cpu", random_state=0)
    >>> pipe.get_params()["convnet__patch_size"]
    32
    """
    from pancreas.cascade import RFCascade
    from pancreas.convnet import SuperpixelConvNet
    from pancreas.refine import GaussianRefiner
    from pancreas.superpixels import SuperpixelGenerator

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    p = PRESETS[preset]
    return Pipeline(
        [
            (
                "superpixels",
                SuperpixelGenerator(n_jobs=n_jobs, verbose=verbose, **p["superpixels"]),
            ),
            (
                "cascade",
                RFCascade(
                    random_state=random_state,
                    n_jobs=n_jobs,
                    verbose=verbose,
                    **p["cascade"],
                ),
            ),
            (
                "convnet",
                SuperpixelConvNet(
                    random_state=random_state, verbose=verbose, **p["convnet"]
                ),
            ),
            ("refiner", GaussianRefiner(verbose=verbose, **p["refiner"])),
        ],
        memory=memory,
    )


def stage_report(
    pipeline: Pipeline, X: Any, y: Any, *, n_jobs: int | None = None
) -> StageReport:
    """Dice of every stage for each case: the paper's Tables 1 and 2.

    Columns: ``Optimal`` (superpixels labelled by the majority of the ground
    truth), ``S_RF`` (the kept candidates) and its recall (fraction of
    pancreas voxels inside them), P(x) and G(P(x)) at Ns=1 and with all test
    scales. Each probability stage is thresholded at the value the refiner
    found best for it in ``fit`` (``stage_thresholds_``).

    Cases are processed one at a time (``X[i]`` and ``y[i]`` are indexed
    once each), with the same per-case code as
    :func:`pancreas.evaluation.evaluate_pipeline`, whose ``stage`` holds
    these rows.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline ending in a ``GaussianRefiner``.
    X : sequence of CT volumes
        Cases to report on.
    y : sequence of label volumes
        Their ground truth.
    n_jobs : int or None, default=None
        Parallel cases.

    Returns
    -------
    StageReport

    See Also
    --------
    pancreas.evaluation.evaluate_pipeline : The stage table, metrics, curves
        and pictures of a cohort.

    Examples
    --------
    The report's columns for a ConvNet with 4 test scales (fitting a
    pipeline takes longer than an example should; see ``make demo``):

    >>> from pancreas.report import StageReport
    >>> StageReport.stage_columns(4)[-2:]
    ('P(x) Ns=4', 'G(P(x)) Ns=4')
    """
    from pancreas.evaluation import _evaluate_cases, _stage_report

    results, refiner = _evaluate_cases(pipeline, X, y, n_jobs=n_jobs, full=False)
    return _stage_report(results, refiner)
