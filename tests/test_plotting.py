"""Plotting: panels cut in display orientation, overlays, three planes, Figure 6."""

from __future__ import annotations

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from pancreas.plotting import (  # noqa: E402
    SlicePanel,
    plot_dice_curves,
    plot_overlay,
    plot_panel,
    plot_three_plane,
    slice_panel,
)

SHAPE = (40, 30, 12)
SPACING = (0.8, 0.7, 2.5)


def _case():
    rng = np.random.default_rng(0)
    ct = rng.normal(40, 60, SHAPE)
    truth = np.zeros(SHAPE, bool)
    truth[12:26, 10:20, 3:9] = True
    pred = np.roll(truth, 3, axis=0)
    return ct, truth, pred


def _contours(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    buf.seek(0)
    return imread(buf)


@pytest.mark.parametrize(
    ("plane", "marker", "index", "shape", "spacing", "sides"),
    [
        # row 0 anterior, column 0 the patient's right (radiological)
        ("axial", (39, 29, 5), 5, (30, 40), (0.7, 0.8), ("A", "P", "R", "L")),
        # row 0 superior, column 0 right
        ("coronal", (39, 7, 11), 7, (12, 40), (2.5, 0.8), ("S", "I", "R", "L")),
        # row 0 superior, column 0 anterior
        ("sagittal", (4, 29, 11), 4, (12, 30), (2.5, 0.7), ("S", "I", "A", "P")),
    ],
)
def test_slice_panel_display_orientation(plane, marker, index, shape, spacing, sides):
    ct = np.zeros(SHAPE)
    ct[marker] = 100
    panel = slice_panel(ct, ct > 0, ct > 0, plane=plane, index=index, spacing=SPACING)
    assert panel.shape == shape
    assert panel.spacing == pytest.approx(spacing)
    assert panel.sides == sides and panel.plane == plane and panel.index == index
    assert panel.image[0, 0] == 100 and panel.truth[0, 0] and panel.pred[0, 0]
    assert panel.truth.sum() == 1


def test_slice_panel_crops_windows_and_copies():
    ct, truth, pred = _case()
    ct[20, 15, 5] = 3000  # bone far above the window
    box = (slice(10, 30), slice(5, 25))
    panel = slice_panel(ct, truth, pred, index=5, spacing=SPACING, box=box)
    assert panel.shape == (20, 20)
    assert panel.image.dtype == np.int16
    assert panel.image.max() == 240 and panel.image.min() >= -160  # W400/L40
    expected = truth[10:30, 5:25, 5][::-1, ::-1].T
    np.testing.assert_array_equal(panel.truth, expected)
    assert panel.pred.sum() == pred[10:30, 5:25, 5].sum()
    for a in (panel.image, panel.truth, panel.pred):
        assert a.flags.c_contiguous
        assert not np.shares_memory(a, ct) and not np.shares_memory(a, truth)


def test_slice_panel_subsamples_big_planes():
    ct = np.zeros((400, 300, 3))
    panel = slice_panel(ct, ct > 0, ct > 0, index=1, spacing=(0.5, 0.6, 2.0))
    assert max(panel.shape) <= 192
    assert panel.shape == (100, 134)  # every third voxel
    assert panel.spacing == pytest.approx((1.8, 1.5))
    assert panel.extent_mm == pytest.approx((180.0, 201.0))


def test_slice_panel_rejects_bad_arguments():
    ct, truth, pred = _case()
    with pytest.raises(ValueError, match="plane"):
        slice_panel(ct, truth, pred, plane="oblique", index=0)
    with pytest.raises(ValueError, match="out of range"):
        slice_panel(ct, truth, pred, plane="axial", index=12)
    with pytest.raises(ValueError, match="same shape"):
        SlicePanel(np.zeros((4, 4)), np.zeros((4, 5), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="spacing"):
        SlicePanel(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4)), (0, 1))


def test_plot_panel_outlines_both_masks_with_the_voxel_aspect():
    ct, truth, pred = _case()
    panel = slice_panel(ct, truth, pred, plane="coronal", index=15, spacing=SPACING)
    fig = plot_panel(panel)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    contours = _contours(ax)
    assert len(contours) == 2
    for c, color in zip(contours, ("#00d5ff", "#ff9500"), strict=True):
        rgb = tuple(c.get_edgecolor()[0][:3])
        assert rgb == pytest.approx(matplotlib.colors.to_rgb(color))
    assert ax.get_aspect() == pytest.approx(2.5 / 0.8)
    assert ax.get_title() == "coronal slice 15"
    texts = {t.get_text() for t in ax.texts}
    assert {"S", "I", "R", "L"} <= texts and any(t.endswith("mm") for t in texts)
    assert len(ax.images) == 1
    clim = ax.images[0].get_clim()
    assert clim == (-160.0, 240.0)


def test_plot_panel_skips_empty_masks_without_warning():
    # filterwarnings=error: contour would warn on a constant mask
    ct, truth, _ = _case()
    panel = slice_panel(ct, truth, np.zeros_like(truth), index=5)
    assert len(_contours(plot_panel(panel).axes[0])) == 1
    empty = slice_panel(ct, np.zeros_like(truth), np.zeros_like(truth), index=0)
    assert len(_contours(plot_panel(empty).axes[0])) == 0


def test_plot_overlay_has_one_axes_per_slice_title_and_legend():
    ct, truth, pred = _case()
    panels = [slice_panel(ct, truth, pred, index=k, spacing=SPACING) for k in (3, 5, 8)]
    fig = plot_overlay(panels, title="case_7 (Dice 0.812)")
    assert [ax.get_title() for ax in fig.axes] == [
        "axial slice 3",
        "axial slice 5",
        "axial slice 8",
    ]
    assert fig.get_suptitle() == "case_7 (Dice 0.812)"
    assert all(len(_contours(ax)) == 2 for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["ground truth", "prediction"]
    w, h = fig.get_size_inches()
    assert 5 <= w <= 13 and 2.5 <= h <= 7
    image = _png(fig)
    assert image.shape[0] > 200 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05


def test_plot_overlay_draws_into_a_given_figure():
    ct, truth, pred = _case()
    fig = Figure()
    out = plot_overlay([slice_panel(ct, truth, pred, index=5)], fig=fig)
    assert out is fig and len(fig.axes) == 1
    with pytest.raises(ValueError, match="no panels"):
        plot_overlay([])


def test_plot_three_plane_titles_and_aspects():
    ct, truth, pred = _case()
    planes = {
        p: slice_panel(ct, truth, pred, plane=p, index=i, spacing=SPACING)
        for p, i in (("axial", 5), ("coronal", 15), ("sagittal", 20))
    }
    fig = plot_three_plane(planes, title="three planes")
    assert [ax.get_title() for ax in fig.axes] == [
        "axial (z = 5)",
        "coronal (y = 15)",
        "sagittal (x = 20)",
    ]
    assert [ax.get_aspect() for ax in fig.axes] == pytest.approx(
        [0.7 / 0.8, 2.5 / 0.8, 2.5 / 0.7]
    )
    assert fig.get_suptitle() == "three planes"
    assert _png(fig)[..., :3].std() > 0.05


def test_plot_dice_curves_mean_band_and_threshold():
    grid = np.round(np.arange(1, 20) * 0.05, 2)
    rng = np.random.default_rng(0)
    peak = 1 - np.abs(grid - 0.4)
    curves = {
        "P(x) Ns=1": rng.uniform(0, 0.5, (3, grid.size)),
        "G(P(x)) Ns=1": np.vstack([peak * 0.7, peak * 0.8, peak * 0.9]),
        "P(x) Ns=4": rng.uniform(0, 0.6, (3, grid.size)),
        "G(P(x)) Ns=4": np.vstack([peak * 0.8, peak * 0.9, peak]),
    }
    fig = plot_dice_curves(grid, curves, threshold=0.4)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 5 and labels[-1] == "threshold 0.40"
    assert labels[3] == "G(P(x)) Ns=4: max 0.900 at 0.40"
    mean_lines = [ln for ln in ax.lines if ln.get_label() in labels[:4]]
    assert len(mean_lines) == 4
    np.testing.assert_allclose(mean_lines[3].get_ydata(), 0.9 * peak)
    assert {ln.get_linestyle() for ln in mean_lines[::2]} == {"--"}
    assert {ln.get_linestyle() for ln in mean_lines[1::2]} == {"-"}
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 4
    # the chosen threshold's Dice on the chosen stage is marked and written
    assert any(t.get_text() == "0.900" for t in ax.texts)
    assert ax.get_xlabel() == "Threshold" and ax.get_ylabel() == "Dice"
    assert ax.get_ylim() == (0.0, 1.0)
    assert "3 cases" in ax.get_title()
    assert _png(fig)[..., :3].std() > 0.05


def test_plot_dice_curves_on_given_axes_one_case_no_band():
    grid = np.array([0.25, 0.5, 0.75])
    fig = Figure()
    ax = fig.subplots()
    out = plot_dice_curves(grid, {"G(P(x)) Ns=1": [0.2, 0.6, 0.4]}, ax=ax, title="t")
    assert out is fig and ax.get_title() == "t"
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    with pytest.raises(ValueError, match="thresholds"):
        plot_dice_curves(grid, {"a": [0.1, 0.2]})
    with pytest.raises(ValueError, match="no curves"):
        plot_dice_curves(grid, {})


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_panels_state_window_level_and_position_in_mm():
    ct, truth, pred = _case()
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-100.0, 50.0, -300.0)
    panel = slice_panel(ct, truth, pred, plane="axial", index=5, spacing=SPACING,
                        affine=affine)  # fmt: skip
    assert panel.position_mm == pytest.approx(-300.0 + 5 * 2.5)
    assert panel.label == "axial slice 5, z = -287.5 mm"
    ax = plot_panel(panel, window=(50, 350)).axes[0]
    assert ax.get_title() == "axial slice 5, z = -287.5 mm"
    assert "W 350 L 50" in _texts(ax)
    # without an affine the position is unknown, and not made up
    bare = slice_panel(ct, truth, pred, plane="coronal", index=4, spacing=SPACING)
    assert bare.position_mm is None and bare.label == "coronal slice 4"
    fig = plot_three_plane(
        [slice_panel(ct, truth, pred, plane=p, index=i, spacing=SPACING, affine=affine)
         for p, i in (("axial", 5), ("coronal", 15), ("sagittal", 20))]
    )  # fmt: skip
    assert [ax.get_title() for ax in fig.axes] == [
        "axial (z = -287.5 mm)",
        "coronal (y = 60.5 mm)",
        "sagittal (x = -84.0 mm)",
    ]
    assert all("W 400 L 40" in _texts(ax) for ax in fig.axes)


def test_plot_preview_three_planes_through_the_mask_in_any_orientation(tmp_path):
    from pancreas.plotting import plot_preview

    ct, _, mask = _case()
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-10.0, 20.0, -30.0)
    fig = plot_preview(ct, mask, affine, title="case7")
    centre = np.argwhere(mask).mean(axis=0).round().astype(int)
    world = affine @ [*centre, 1.0]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        f"axial slice {centre[2]}, z = {world[2]:.1f} mm",
        f"coronal slice {centre[1]}, y = {world[1]:.1f} mm",
        f"sagittal slice {centre[0]}, x = {world[0]:.1f} mm",
    ]
    for ax, sides in zip(fig.axes, ("APRL", "SIRL", "SIAP"), strict=True):
        texts = _texts(ax)
        assert "W 400 L 40" in texts
        assert [t for t in texts if len(t) == 1] == list(sides)  # radiological
        assert any(t.endswith(" mm") for t in texts)  # the scale bar
        assert len(_contours(ax)) == 1  # the mask only, no ground truth
    assert [t.get_text() for t in fig.legends[0].texts] == ["pancreas"]
    assert fig.get_suptitle() == "case7"
    # the same scan stored left-right flipped (LAS) gives the same picture
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = SHAPE[0] - 1
    las = plot_preview(ct[::-1], mask[::-1], affine @ flip, title="case7")
    assert [ax.get_title() for ax in las.axes] == titles
    pictures = []
    for f in (fig, las):
        buf = io.BytesIO()
        f.savefig(buf, format="png")
        pictures.append(imread(io.BytesIO(buf.getvalue())))
    np.testing.assert_array_equal(pictures[0], pictures[1])
    # an empty mask: the volume's centre, no outline, no warning
    empty = plot_preview(ct, np.zeros(SHAPE, bool), affine)
    assert [ax.get_title().split(",")[0] for ax in empty.axes] == [
        "axial slice 6",
        "coronal slice 15",
        "sagittal slice 20",
    ]
    with pytest.raises(ValueError, match="one 3-D grid"):
        plot_preview(ct, mask[:-1], affine)


@pytest.mark.slow
def test_report_pictures_give_slice_positions_in_mm(tiny_fitted, tiny_cohort):
    pytest.importorskip("keras")
    from pancreas.evaluation import evaluate_pipeline

    images, labels = tiny_cohort
    evaluation = evaluate_pipeline(tiny_fitted, images[4:5], labels[4:5])
    pictures = evaluation.pictures[0]
    affine = images[4].affine  # the phantoms are RAS+ already
    for panel in [*pictures.axial, *pictures.planes]:
        normal = {"sagittal": 0, "coronal": 1, "axial": 2}[panel.plane]
        expected = affine[normal, normal] * panel.index + affine[normal, 3]
        assert panel.position_mm == pytest.approx(expected, abs=1e-3)
        assert panel.label.endswith(f"= {expected:.1f} mm")
