"""evaluate_pipeline: a labelled cohort case by case, and its report folder."""

from __future__ import annotations

import csv
import gc
import json
import math
import re
import weakref
from collections.abc import Sequence

import numpy as np
import pytest

from pancreas.evaluation import (
    METRICS,
    CasePictures,
    Evaluation,
    _case_pictures,
    evaluate_pipeline,
    field_of_view_box,
)
from pancreas.io import Volume
from pancreas.metrics import dice_score, evaluate_segmentation, surface_dice
from pancreas.plotting import SlicePanel
from pancreas.report import StageReport

FILES = (
    "index.md",
    "metrics.csv",
    "metrics.json",
    "stage_table.csv",
    "stage_table.txt",
    "figures/dice_curves.png",
    "figures/overlay_best.png",
    "figures/overlay_median.png",
    "figures/overlay_worst.png",
)


# --------------------------------------------------------------------------- #
# Without Keras: pictures, ranking, writing
# --------------------------------------------------------------------------- #
def _blob_case():
    shape, spacing = (160, 140, 20), (0.8, 0.8, 2.0)
    ct = np.full(shape, -50.0)
    label = np.zeros(shape, bool)
    i, j = np.mgrid[: shape[0], : shape[1]]
    for z in range(4, 16):  # an ellipse growing to slice 11 then shrinking
        r = 10 - abs(z - 11)
        label[..., z] = (i - 80) ** 2 + (j - 70) ** 2 / 4 <= r**2
    pred = np.roll(label, 2, axis=0)
    return ct, label, pred, spacing


def test_case_pictures_largest_slice_spread_and_centroid():
    ct, label, pred, spacing = _blob_case()
    pics = _case_pictures("c", ct, label, pred, spacing)
    z = [p.index for p in pics.axial]
    area = label.sum(axis=(0, 1))
    assert len(z) == 3 and z == sorted(set(z))
    assert int(np.argmax(area)) in z
    assert min(z) >= 4 and max(z) <= 15 and max(z) - min(z) >= 4
    # the crop holds the whole pancreas of each slice, not subsampled
    for p in pics.axial:
        assert p.truth.sum() == label[..., p.index].sum()
        assert p.pred.sum() == pred[..., p.index].sum()
        assert p.spacing == pytest.approx((0.8, 0.8))
        assert p.shape[0] < label.shape[1] and p.shape[1] < label.shape[0]
    centre = np.round(np.argwhere(label).mean(axis=0)).astype(int)
    assert [(p.plane, p.index) for p in pics.planes] == [
        ("axial", centre[2]),
        ("coronal", centre[1]),
        ("sagittal", centre[0]),
    ]
    assert pics.planes[1].spacing == pytest.approx((2.0, 0.8))
    assert all(p.truth.any() for p in pics.planes)
    assert all(max(p.shape) <= 192 for p in [*pics.axial, *pics.planes])


def test_case_pictures_without_any_pancreas():
    ct, label, _, spacing = _blob_case()
    empty = np.zeros_like(label)
    pics = _case_pictures("c", ct, empty, empty, spacing)
    assert [p.index for p in pics.axial] == [10]
    assert len(pics.planes) == 3 and not any(p.truth.any() for p in pics.planes)


def _handmade(tmp_path=None):
    """Three cases, one with an empty prediction (infinite distances)."""
    ct, label, pred, spacing = _blob_case()
    empty = np.zeros_like(pred)
    metrics, pictures = [], []
    for name, p in (("a", pred), ("b", label), ("c", empty)):
        m = {"case": name, **evaluate_segmentation(label, p, spacing)}
        m["volume_pred_ml"] = p.sum() * np.prod(spacing) / 1000
        m["volume_true_ml"] = label.sum() * np.prod(spacing) / 1000
        metrics.append(m)
        pictures.append(_case_pictures(name, ct, label, p, spacing))
    grid = np.round(np.arange(1, 20) * 0.05, 2)
    stage_cols = list(StageReport.stage_columns(4))
    rows = [
        {
            "case": m["case"],
            **{c: m["dice"] / (i + 1) for i, c in enumerate(stage_cols)},
        }
        for m in metrics
    ]
    thresholds = {c: 0.4 for c in stage_cols[3:]}
    curves = {c: np.tile(1 - abs(grid - 0.4), (3, 1)) for c in stage_cols[3:]}
    return Evaluation(
        stage=StageReport(stage_cols, rows, thresholds),
        metrics=metrics,
        curves=curves,
        thresholds=grid,
        threshold=0.4,
        pictures=pictures,
    )


def test_ranking_and_summary_skip_infinite_distances():
    ev = _handmade()
    assert ev.ranking() == {"best": 1, "median": 0, "worst": 2}
    summ = ev.summary()
    assert summ["hd95"]["n_infinite"] == 1 and summ["dice"]["n_infinite"] == 0
    assert summ["hd95"]["max"] == pytest.approx(ev.metrics[0]["hd95"])
    assert summ["dice"]["median"] == pytest.approx(ev.metrics[0]["dice"])
    assert summ["dice"]["mean"] == pytest.approx(np.mean(ev.values("dice")))


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _check_png(path, min_px=300):
    from matplotlib.image import imread

    image = imread(path)
    h, w = image.shape[:2]
    assert min_px <= w <= 2000 and 200 <= h <= 1500, (path, image.shape)
    assert image[..., :3].std() > 0.05, f"{path} looks blank"
    return image


def test_write_handmade_report_round_trips(tmp_path):
    ev = _handmade()
    assert ev.write(tmp_path / "rep") == tmp_path / "rep"
    for name in FILES:
        assert (tmp_path / "rep" / name).is_file(), name
    rows = _read_csv(tmp_path / "rep" / "metrics.csv")
    assert rows[0] == ["case", *METRICS]
    for row, m in zip(rows[1:], ev.metrics, strict=True):
        assert row[0] == m["case"]
        assert [float(v) for v in row[1:]] == [float(m[k]) for k in METRICS]
    assert rows[3][METRICS.index("hd95") + 1] == "inf"
    data = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert data["n_cases"] == 3 and data["threshold"] == 0.4
    assert data["cases"][2]["hd95"] is None  # strict JSON: no Infinity
    assert data["cases"][0]["dice"] == ev.metrics[0]["dice"]
    assert data["ranking"] == {"best": "b", "median": "a", "worst": "c"}
    assert data["summary"]["hd95"]["n_infinite"] == 1
    text = (tmp_path / "rep" / "index.md").read_text()
    assert "figures/three_plane_a.png" in text  # the median case
    assert (tmp_path / "rep" / "figures" / "three_plane_a.png").is_file()
    assert "| hd95" not in text and "| HD95 (mm) (1 infinite) |" in text
    assert data["surface_method"] == "surfel"
    assert data["surface_dice_tolerance_mm"] == 1.0
    assert "**surfel definition**" in text and "at **1 mm**" in text


def _rf_as_convnet(records):
    for r in records:
        r.convnet_proba = r.sp_proba[r.candidates][:, None]
    return records


@pytest.fixture(scope="module")
def rf_only():
    """A pipeline without Keras: the cascade's probabilities stand in for P(x)."""
    from sklearn.preprocessing import FunctionTransformer

    from pancreas.cascade import RFCascade
    from pancreas.phantom import make_phantom_cohort
    from pancreas.pipeline import make_pipeline
    from pancreas.refine import GaussianRefiner
    from pancreas.superpixels import SuperpixelGenerator

    cts, labels = make_phantom_cohort(3, shape=(48, 48, 8), random_state=0)
    pipe = make_pipeline(
        SuperpixelGenerator(check_spacing=False),
        RFCascade(n_estimators=5, cv=2, random_state=0),
        FunctionTransformer(_rf_as_convnet),
        GaussianRefiner(sigma=1.0),
    )
    return pipe.fit(cts[:2], labels[:2]), cts[2:], labels[2:]


def test_surface_method_and_tolerance_reach_metrics_and_report(rf_only, tmp_path):
    pipe, cts, labels = rf_only
    mask = pipe.predict(cts)[0]
    truth = np.asarray(labels[0].array) != 0
    assert mask.any() and truth.any()
    assd = {}
    for method, tol in (("surfel", 2.5), ("voxel", 0.5)):
        ev = evaluate_pipeline(
            pipe, cts, labels, tolerance=tol, surface_method=method
        )
        assd[method] = ev.metrics[0]["assd"]
        assert (ev.surface_method, ev.tolerance) == (method, tol)
        expected = evaluate_segmentation(
            truth, mask, cts[0].spacing, tol, method=method
        )
        for k, v in expected.items():
            assert ev.metrics[0][k] == pytest.approx(v, rel=1e-12), (method, k)
        folder = ev.write(tmp_path / method)
        data = json.loads((folder / "metrics.json").read_text())
        assert data["surface_method"] == method
        assert data["surface_dice_tolerance_mm"] == tol
        text = (folder / "index.md").read_text()
        assert f"**{method} definition**" in text and f"at **{tol:g} mm**" in text
    assert assd["surfel"] != pytest.approx(assd["voxel"])  # the choice mattered
    default = evaluate_pipeline(pipe, cts, labels)
    assert (default.surface_method, default.tolerance) == ("surfel", 1.0)
    assert default.metrics[0]["surface_dice"] == pytest.approx(
        surface_dice(truth, mask, cts[0].spacing, 1.0, method="surfel"), rel=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"surface_method": "mesh"}, "surface_method must be one of 'surfel'"),
        ({"tolerance": -1.0}, "tolerance must be non-negative"),
    ],
)
def test_bad_surface_options_are_named(rf_only, kwargs, match):
    pipe, cts, labels = rf_only
    with pytest.raises(ValueError, match=match):
        evaluate_pipeline(pipe, cts, labels, **kwargs)


# --------------------------------------------------------------------------- #
# With the tiny fitted pipeline (Keras)
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def cohort(tiny_cohort):
    images, labels = tiny_cohort
    return images[3:], labels[3:]  # the refiner's validation case and the test case


@pytest.fixture(scope="module")
def evaluation(tiny_fitted, cohort):
    return evaluate_pipeline(tiny_fitted, *cohort)


@pytest.mark.slow
def test_stage_rows_equal_stage_report(tiny_fitted, cohort, evaluation):
    rep = tiny_fitted.stage_report(*cohort)
    assert evaluation.stage.columns == rep.columns
    assert evaluation.stage.columns[-1] == "G(P(x)) Ns=4"
    assert evaluation.stage.rows == rep.rows
    assert evaluation.stage.thresholds == rep.thresholds
    assert evaluation.stage.paper == rep.paper
    assert [r["case"] for r in rep.rows] == ["phantom_003", "phantom_004"]


@pytest.mark.slow
def test_stage_rows_match_the_stages_computed_directly(tiny_fitted, cohort, evaluation):
    from pancreas.cascade import candidate_mask
    from pancreas.superpixels import optimal_superpixel_mask

    refiner = tiny_fitted.named_steps["refiner"]
    for x, y, row in zip(*cohort, evaluation.stage.rows, strict=True):
        (rec,) = tiny_fitted.records([x])
        lab = rec.label_array(y)
        srf = candidate_mask(rec)
        assert row["Optimal"] == dice_score(
            optimal_superpixel_mask(rec.superpixels, lab), lab
        )
        assert row["S_RF"] == dice_score(srf, lab)
        assert row["S_RF recall"] == pytest.approx(srf[lab].mean())
        maps = refiner.stage_maps(rec)
        for key, col in (
            ("P(x) Ns=1", "P(x) Ns=1"),
            ("G(P(x)) Ns=all", "G(P(x)) Ns=4"),
        ):
            thr = refiner.stage_thresholds_[key]
            assert row[col] == dice_score(maps[key] > thr, lab)


@pytest.mark.slow
def test_metrics_equal_evaluate_segmentation_of_predict(
    tiny_fitted, cohort, evaluation
):
    for x, y, m in zip(*cohort, evaluation.metrics, strict=True):
        mask = tiny_fitted.predict([x])[0]
        truth = np.asarray(y.array) != 0
        expected = evaluate_segmentation(truth, mask, spacing=x.spacing)
        assert m["case"] == x.source
        for k, v in expected.items():
            assert m[k] == pytest.approx(v, rel=1e-9), k
        ml = float(np.prod(x.spacing)) / 1000
        assert m["volume_pred_ml"] == pytest.approx(mask.sum() * ml)
        assert m["volume_true_ml"] == pytest.approx(truth.sum() * ml)
        assert m["volume_true_ml"] > 1.0
    assert evaluation.values("dice") == pytest.approx(
        [tiny_fitted.score([x], [y]) for x, y in zip(*cohort, strict=True)]
    )


@pytest.mark.slow
def test_curves_on_the_refiners_grid(tiny_fitted, evaluation):
    refiner = tiny_fitted.named_steps["refiner"]
    grid = refiner.thresholds_
    np.testing.assert_array_equal(evaluation.thresholds, grid)
    assert evaluation.threshold == refiner.threshold_
    assert evaluation.threshold_stage == "G(P(x)) Ns=4"
    assert sorted(evaluation.curves) == sorted(evaluation.stage.columns[3:])
    for curve in evaluation.curves.values():
        assert curve.shape == (2, grid.size)
        assert ((curve >= 0) & (curve <= 1)).all()
    # case 0 is the validation case the refiner was fitted on: same curves,
    # and its G(P(x)) curve peaks at the chosen threshold
    for key, col in (("G(P(x)) Ns=all", "G(P(x)) Ns=4"), ("P(x) Ns=1", "P(x) Ns=1")):
        np.testing.assert_allclose(
            evaluation.curves[col][0], refiner.dice_curves_[key][0]
        )
    g = evaluation.curves["G(P(x)) Ns=4"]
    at = int(np.flatnonzero(np.isclose(grid, refiner.threshold_))[0])
    assert g[0, at] == g[0].max()
    # the final mask is G(P(x)) Ns=all at threshold_: its Dice is on the curve,
    # and so is each stage's table entry at its own threshold
    np.testing.assert_allclose(g[:, at], evaluation.values("dice"))
    for col, thr in evaluation.stage.thresholds.items():
        i = int(np.flatnonzero(np.isclose(grid, thr))[0])
        np.testing.assert_allclose(
            evaluation.curves[col][:, i], evaluation.stage.values(col)
        )


@pytest.mark.slow
def test_pictures_and_ranking(cohort, evaluation):
    rank = evaluation.ranking()
    dice = evaluation.values("dice")
    assert dice[rank["best"]] >= dice[rank["median"]] >= dice[rank["worst"]]
    assert dice[rank["best"]] == dice.max() and dice[rank["worst"]] == dice.min()
    assert len(evaluation.pictures) == 2
    for pics, y in zip(evaluation.pictures, cohort[1], strict=True):
        assert isinstance(pics, CasePictures)
        label = np.asarray(y.array) != 0  # the phantoms are RAS already
        assert 1 <= len(pics.axial) <= 3
        assert int(np.argmax(label.sum(axis=(0, 1)))) in [p.index for p in pics.axial]
        assert [p.plane for p in pics.planes] == ["axial", "coronal", "sagittal"]
        for p in [*pics.axial, *pics.planes]:
            assert isinstance(p, SlicePanel) and p.truth.any()
            assert p.image.dtype == np.int16
        assert pics.nbytes < 50_000


@pytest.mark.slow
def test_write_report_folder(evaluation, tmp_path):
    out = tmp_path / "report"
    assert evaluation.write(out) == out
    median = evaluation.case_ids[evaluation.ranking()["median"]]
    files = [*FILES, f"figures/three_plane_{median}.png"]
    for name in files:
        assert (out / name).is_file(), name
    # Markdown: the tables and every picture, linked relatively
    text = (out / "index.md").read_text()
    assert "2 cases" in text and "Paper (Table 2)" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert {f for f in files if f.endswith(".png")} <= set(links)
    assert all((out / link).is_file() for link in links)
    for col in evaluation.stage.columns:
        assert f"| {col} |" in text
    for case in evaluation.case_ids:
        assert f"| {case} |" in text
    # CSV and JSON parse back to the same numbers
    rows = _read_csv(out / "metrics.csv")
    assert rows[0] == ["case", *METRICS]
    for row, m in zip(rows[1:], evaluation.metrics, strict=True):
        assert row[0] == m["case"]
        assert [float(v) for v in row[1:]] == [m[k] for k in METRICS]
    data = json.loads((out / "metrics.json").read_text())
    assert data["cases"] == evaluation.metrics
    assert data["threshold"] == evaluation.threshold
    assert data["stage"]["rows"] == evaluation.stage.rows
    assert data["summary"]["dice"]["mean"] == pytest.approx(
        evaluation.values("dice").mean()
    )
    np.testing.assert_allclose(
        data["curves"]["mean"]["G(P(x)) Ns=4"],
        evaluation.curves["G(P(x)) Ns=4"].mean(axis=0),
    )
    stage_rows = _read_csv(out / "stage_table.csv")
    assert stage_rows[0] == ["case", *evaluation.stage.columns]
    for row, ref in zip(stage_rows[1:3], evaluation.stage.rows, strict=True):
        assert [float(v) for v in row[1:]] == [ref[c] for c in evaluation.stage.columns]
    assert (out / "stage_table.txt").read_text() == evaluation.stage.to_text() + "\n"
    for name in files:
        if name.endswith(".png"):
            _check_png(out / name)


class _Spy(Sequence):
    """A lazy sequence that counts reads and how many read items are alive."""

    def __init__(self, items):
        self._items = items
        self.calls: list[int] = []
        self._refs: list[weakref.ref] = []
        self.max_alive = 0

    def __len__(self):
        return len(self._items)

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError("the spy only answers integer indices")
        gc.collect()
        self.max_alive = max(self.max_alive, sum(r() is not None for r in self._refs))
        self.calls.append(i)
        item = self._items[i]
        out = Volume(item.array.copy(), item.affine.copy(), item.source)
        self._refs.append(weakref.ref(out))
        return out


@pytest.mark.slow
def test_reads_each_case_once_and_holds_one_at_a_time(
    tiny_fitted, tiny_cohort, evaluation
):
    images, labels = tiny_cohort
    X, y = _Spy(images[2:]), _Spy(labels[2:])
    ev = evaluate_pipeline(tiny_fitted, X, y, case_ids=["t2", "v3", "t4"])
    assert X.calls == [0, 1, 2] and y.calls == [0, 1, 2]
    assert X.max_alive == 0 and y.max_alive == 0  # case i freed before i + 1
    assert ev.case_ids == ["t2", "v3", "t4"]
    assert [r["case"] for r in ev.stage.rows] == ["t2", "v3", "t4"]
    # the same numbers as the evaluation of the same cases in one list
    assert ev.metrics[1:] == [
        {**m, "case": c} for m, c in zip(evaluation.metrics, ["v3", "t4"], strict=True)
    ]


@pytest.mark.slow
def test_threads_give_the_same_evaluation(tiny_fitted, tiny_cohort, evaluation):
    images, labels = tiny_cohort
    X, y = _Spy(images[3:]), _Spy(labels[3:])
    ev = evaluate_pipeline(tiny_fitted, X, y, n_jobs=2)
    assert sorted(X.calls) == [0, 1] and X.max_alive <= 1
    assert ev.metrics == evaluation.metrics
    assert ev.stage.rows == evaluation.stage.rows


@pytest.mark.slow
def test_bad_inputs(tiny_fitted, cohort):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    from pancreas.exceptions import InvalidVolumeError

    images, labels = cohort
    with pytest.raises(InvalidVolumeError, match="2 cases but y has 1"):
        evaluate_pipeline(tiny_fitted, images, labels[:1])
    with pytest.raises(InvalidVolumeError, match="wrap it in a list"):
        evaluate_pipeline(tiny_fitted, images[0], labels[0])
    with pytest.raises(ValueError, match="case_ids"):
        evaluate_pipeline(tiny_fitted, images, labels, case_ids=["a"])
    with pytest.raises(ValueError, match="no cases"):
        evaluate_pipeline(tiny_fitted, [], [])
    with pytest.raises(NotFittedError):
        evaluate_pipeline(clone(tiny_fitted), images, labels)
    with pytest.raises(TypeError, match="GaussianRefiner"):
        evaluate_pipeline(tiny_fitted[:-1], images, labels)
    assert math.isfinite(
        evaluate_pipeline(tiny_fitted, images[1:], labels[1:]).threshold
    )


def test_field_of_view_box_keeps_the_label_plus_margins_and_centres_in_plane():
    label = np.zeros((200, 160, 80), bool)
    label[90:120, 60:80, 40:50] = True
    box = field_of_view_box(label, (0.8, 1.0, 2.0), margin_mm=7.0, fov_mm=100.0)
    # 7 mm at 2 mm slices: 4 slices each side
    assert box[2] == slice(36, 54)
    # 100 mm: 125 pixels of 0.8 mm, 100 of 1 mm, centred on the grid
    assert box[:2] == (slice(37, 162), slice(30, 130))
    assert label[box].sum() == label.sum()


def test_field_of_view_box_clips_to_the_grid():
    label = np.zeros((50, 50, 20), bool)
    label[20:30, 20:30, 0:3] = True
    box = field_of_view_box(label, (1.0, 1.0, 1.0), margin_mm=5.0, fov_mm=500.0)
    assert box == (slice(0, 50), slice(0, 50), slice(0, 8))


@pytest.mark.parametrize(
    "label, spacing, kw, match",
    [
        (np.zeros((4, 4, 4)), (1, 1, 1), {}, "empty"),
        (np.ones((4, 4)), (1, 1, 1), {}, "3-D"),
        (np.ones((4, 4, 4)), (1, 0, 1), {}, "positive"),
        (np.ones((4, 4, 4)), (1, 1, 1), {"fov_mm": 0}, "fov_mm"),
    ],
)
def test_field_of_view_box_rejects_bad_input(label, spacing, kw, match):
    with pytest.raises(ValueError, match=match):
        field_of_view_box(label, spacing, **kw)
