"""The coarser in-plane working grid (``SuperpixelGenerator(working_spacing=...)``)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, ornt_transform

from pancreas._regrid import (
    block_factors,
    block_mean,
    blocks_at_least_half,
    grid_affine,
    upsample,
    upsample_box,
)
from pancreas.exceptions import InvalidVolumeError
from pancreas.io import Volume
from pancreas.metrics import dice_score
from pancreas.record import CanonicalLabel, make_record
from pancreas.superpixels import SuperpixelGenerator


# ------------------------------------------------------------- the block grid
def test_block_factors_round_to_whole_pixels():
    # one rule for the working grid and the cascade's block maps
    assert block_factors((0.7, 0.8, 1.0), 1.5) == (2, 2)
    assert block_factors((0.5, 0.98, 5.0), 1.5) == (3, 2)
    assert block_factors((0.5, 0.9), 1.5) == (3, 2)  # a slice's spacing
    assert block_factors((2.0, 2.5, 3.0), 1.5) == (1, 1)  # already coarse
    assert block_factors((0.7, 0.7, 1.0), None) == (1, 1)


def test_block_mean_averages_whole_blocks_and_pads_the_far_edge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 6, 3)).astype(np.float32)
    out = block_mean(a, (2, 3))
    assert out.shape == (4, 2, 3)
    np.testing.assert_allclose(out[1, 1], a[2:4, 3:6].mean(axis=(0, 1)), rtol=1e-6)
    # the last row of blocks holds one row of voxels, repeated as padding
    np.testing.assert_allclose(out[3, 0], a[6, 0:3].mean(axis=0), rtol=1e-6)
    # a slice as well (the cascade's block maps)
    image = np.arange(35, dtype=np.float32).reshape(5, 7)
    got = block_mean(image, (2, 3))
    padded = np.pad(image, ((0, 1), (0, 2)), mode="edge")
    want = padded.reshape(3, 2, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32


def test_label_blocks_are_those_at_least_half_pancreas():
    m = np.zeros((4, 4, 1), bool)
    m[0, 0] = m[0, 1] = True  # half of block (0, 0)
    m[2, 2] = True  # a quarter of block (1, 1)
    out = blocks_at_least_half(m, (2, 2))[..., 0]
    np.testing.assert_array_equal(out, [[True, False], [False, False]])


def test_block_centres_are_where_the_affine_puts_them():
    affine = np.array(
        [[-0.7, 0, 0, 120.0], [0, -0.75, 0, 90.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]]
    )
    coarse = grid_affine(affine, (2, 3))
    fine = np.array([[2 * 4 + a, 3 * 5 + b, 7, 1] for a in range(2) for b in range(3)])
    centre = (affine @ fine.T)[:3].mean(axis=1)
    np.testing.assert_allclose(coarse @ [4, 5, 7, 1], [*centre, 1])


def test_upsampling_is_linear_between_block_centres():
    # a linear ramp sampled at block centres comes back exactly at every
    # voxel between the outermost centres, and held beyond them
    f = 3
    fine_x = np.arange(30, dtype=np.float64)
    centres = fine_x.reshape(-1, f).mean(axis=1)
    coarse = np.tile((2.0 * centres - 5)[:, None, None], (1, 2, 2)).astype(np.float32)
    out = upsample(coarse, (f, 1), (30, 2, 2))
    inner = (fine_x >= centres[0]) & (fine_x <= centres[-1])
    np.testing.assert_allclose(out[inner, 0, 0], 2.0 * fine_x[inner] - 5, atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 0], coarse[0, 0, 0])


def test_upsampling_labels_repeats_them_and_crops_to_the_scan():
    labels = np.arange(6, dtype=np.int32).reshape(3, 2, 1)
    out = upsample(labels, (2, 2), (5, 4, 1))
    assert out.dtype == np.int32 and out.shape == (5, 4, 1)
    np.testing.assert_array_equal(out[4, :, 0], [4, 4, 5, 5])
    # a whole-block label comes back unchanged from the round trip
    np.testing.assert_array_equal(blocks_at_least_half(out > 2, (2, 2)), labels > 2)


def test_upsampling_a_box_matches_upsampling_the_volume_inside_it():
    rng = np.random.default_rng(1)
    values = rng.random((4, 5, 3)).astype(np.float32)
    box = (slice(1, 3), slice(2, 5), slice(0, 3))
    full_box, up = upsample_box(values[box], box, (2, 2), (7, 10, 3))
    assert full_box == (slice(2, 6), slice(4, 10), slice(0, 3))
    whole = upsample(values, (2, 2), (7, 10, 3))
    # away from the box's border the two agree (the box holds edge values)
    np.testing.assert_allclose(up[1:-1, 1:-1], whole[full_box][1:-1, 1:-1], rtol=1e-6)


# ------------------------------------------------------------------- records
def _lps_volume(shape=(10, 8, 3)):
    rng = np.random.default_rng(2)
    array = rng.normal(size=shape).astype(np.float32)
    affine = np.array(
        [[-0.7, 0, 0, 50.0], [0, -0.7, 0, 40.0], [0, 0, 2.5, 0.0], [0, 0, 0, 1]]
    )
    return Volume(array, affine)


def test_working_record_maps_back_to_the_input_grid():
    vol = _lps_volume()
    rec = make_record(vol, "c")
    work = rec.on_working_grid(1.5)
    assert work.zoom == (2, 2) and work.shape == (5, 4, 3)
    assert work.full_shape == rec.shape and work.full_spacing == rec.spacing
    np.testing.assert_allclose(work.full_affine, rec.volume.affine)
    assert work.on_working_grid(1.5) is work  # regridded once only
    # the working CT is the block mean of the canonical CT
    np.testing.assert_allclose(
        work.volume.array, block_mean(rec.volume.array, (2, 2)), rtol=1e-6
    )
    # a constant map comes back constant on the input's (LPS) grid
    back = work.to_native(np.full(work.shape, 0.25, np.float32))
    assert back.shape == vol.shape
    np.testing.assert_allclose(back, 0.25)
    # labels: on the working grid by blocks, on the scan's grid as drawn
    label = np.zeros(vol.shape, np.uint8)
    label[2:6, 2:6] = 1
    canonical = rec.label_array(label)
    np.testing.assert_array_equal(work.label_array(label, full=True), canonical)
    np.testing.assert_array_equal(
        work.label_array(label), blocks_at_least_half(canonical, (2, 2))
    )
    # a label already on the working grid passes back unchanged
    np.testing.assert_array_equal(
        work.label_array(CanonicalLabel(work.label_array(label))),
        work.label_array(label),
    )
    with pytest.raises(InvalidVolumeError, match="canonical shape"):
        work.label_array(CanonicalLabel(canonical))


def test_superpixels_on_the_working_grid_keep_their_size_in_mm():
    hu = np.full((96, 96, 2), -1000, np.int16)
    hu[8:88, 8:88] = 40
    hu[30:60, 30:60] = 180
    ct = Volume(hu, np.diag([0.7, 0.7, 2.5, 1.0]))
    native = SuperpixelGenerator(superpixel_area=40.0).fit().transform([ct])[0]
    gen = SuperpixelGenerator(superpixel_area=40.0, working_spacing=1.5).fit()
    work = gen.transform([ct])[0]
    assert work.zoom == (2, 2) and work.shape == (48, 48, 2)
    # about as many superpixels (of about 40 mm^2) on a 4 times smaller grid
    # (SLIC's seed grid rounds to fewer on 4.5-pixel steps: 0.79 here)
    assert 0.7 <= work.n_superpixels / native.n_superpixels <= 1.25
    # the optimal Dice is measured on the scan's own grid
    label = np.zeros(hu.shape, np.uint8)
    label[30:60, 30:60] = 1
    assert gen.optimal_dice([ct], [label])[0] >= 0.9


def test_a_working_grid_too_coarse_for_the_scan_is_refused():
    hu = np.full((12, 12, 2), -1000, np.int16)
    hu[2:10, 2:10] = 40
    ct = Volume(hu, np.diag([0.7, 0.7, 2.5, 1.0]))
    gen = SuperpixelGenerator(working_spacing=1.5).fit()
    assert gen.set_params(working_spacing=None).transform([ct])[0].n_superpixels > 0
    gen.set_params(working_spacing=1.5)
    with pytest.raises(InvalidVolumeError, match="1.5 mm working grid.*6 x 6 voxels"):
        gen.transform([ct])


def test_old_models_work_on_the_scan_grid():
    gen = SuperpixelGenerator()
    state = gen.__getstate__()
    del state["working_spacing"]
    old = SuperpixelGenerator.__new__(SuperpixelGenerator)
    old.__setstate__(state)
    assert old.working_spacing is None


# --------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def working_fitted():
    pytest.importorskip("keras")
    from pancreas.phantom import make_phantom_cohort
    from pancreas.pipeline import make_roth2015_pipeline

    images, labels = make_phantom_cohort(5, shape=(96, 96, 12), random_state=5)
    pixel = images[0].spacing[0]
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    pipe.set_params(superpixels__working_spacing=2 * pixel)
    pipe.fit(images[:3], labels[:3], X_val=images[3:4], y_val=labels[3:4])
    return pipe, images, labels


@pytest.mark.slow
def test_pipeline_on_a_working_grid_answers_on_the_scan_grid(working_fitted):
    pipe, images, labels = working_fitted
    ct = images[4]
    (rec,) = pipe.records([ct])
    assert rec.zoom == (2, 2) and rec.shape == (48, 48, 12)
    mask, proba = pipe.steps[-1][1].predict_with_proba([rec])[0]
    assert mask.shape == proba.shape == ct.shape
    np.testing.assert_array_equal(mask, proba > pipe.steps[-1][1].threshold_)
    # the outline follows the interpolated probability, not whole blocks
    assert not np.array_equal(
        mask, upsample(blocks_at_least_half(mask != 0, (2, 2)), (2, 2), mask.shape)
    )
    label = np.asarray(labels[4].array) != 0
    assert pipe.score([ct], [labels[4]]) == pytest.approx(dice_score(mask, label))

    # stored as LPS or with sagittal slices: the same mask
    ras = nib.Nifti1Image(np.asarray(ct.array), ct.affine)
    for codes in (("L", "P", "S"), ("A", "S", "R")):
        other = ras.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes)))
        got = pipe.predict([other])[0]
        back = nib.Nifti1Image(got, other.affine).as_reoriented(
            ornt_transform(axcodes2ornt(codes), axcodes2ornt("RAS"))
        )
        np.testing.assert_array_equal(np.asarray(back.dataobj), mask)


@pytest.mark.slow
def test_stage_report_on_a_working_grid_compares_with_the_label_as_drawn(
    working_fitted,
):
    from pancreas.pipeline import stage_report

    pipe, images, labels = working_fitted
    report = stage_report(pipe, images[4:], labels[4:])
    label = np.asarray(labels[4].array) != 0
    optimal = pipe.steps[0][1].optimal_dice(images[4:], labels[4:])[0]
    assert report.values("Optimal")[0] == pytest.approx(optimal)
    final = report.values("G(P(x)) Ns=4")[0]
    assert final == pytest.approx(dice_score(pipe.predict(images[4:])[0], label))


@pytest.mark.slow
def test_model_file_keeps_the_working_grid(working_fitted, tmp_path, capsys):
    from pancreas.cli import main
    from pancreas.persistence import load_pipeline, save_pipeline

    pipe, images, _ = working_fitted
    save_pipeline(pipe, tmp_path / "model")
    loaded = load_pipeline(tmp_path / "model")
    assert loaded.get_params()["superpixels__working_spacing"] == pytest.approx(
        2 * images[0].spacing[0]
    )
    np.testing.assert_array_equal(loaded.predict(images[4:])[0], pipe.predict(images[4:])[0])
    assert main(["info", str(tmp_path / "model")]) == 0
    spacing = pipe.get_params()["superpixels__working_spacing"]
    assert f"grid:       {spacing:g} mm in-plane working" in capsys.readouterr().out
