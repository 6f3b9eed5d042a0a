"""A trained pipeline gives the same mask whatever the scan covers and however it is stored.

Reduced-size versions of the checks of the real-scans issue: the full-size
numbers come from ``benchmarks/bench_invariance.py``. The voxel-spacing check
keeps the issue's spacings and reduces the field of view instead: targeted
scans, the pancreas with 25-45 mm along z and 200 mm in-plane around it
(``pytest tests/test_invariance.py -k spacing -s`` prints its Dice values).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, ornt_transform

from pancreas.cascade import body_depth
from pancreas.evaluation import field_of_view_box
from pancreas.metrics import dice_score, pairwise_dice_on_first_grid
from pancreas.phantom import make_phantom_cohort
from pancreas.pipeline import make_roth2015_pipeline

pytest.importorskip("keras")

SHAPE = (64, 64, 24)


@pytest.fixture(scope="module")
def fitted_and_held_out():
    images, labels = make_phantom_cohort(6, shape=SHAPE, random_state=11)
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    pipe.fit(images[:3], labels[:3], X_val=images[3:4], y_val=labels[3:4])
    return pipe, images[4:], labels[4:]


@pytest.mark.slow
def test_cropped_field_of_view_gives_the_same_mask_on_the_overlap(
    fitted_and_held_out,
):
    pipe, images, labels = fitted_and_held_out
    for ct, label in zip(images, labels, strict=True):
        full = pipe.predict([ct])[0]
        assert full.sum() > 20, "the model must find the pancreas for this to test"
        box = field_of_view_box(np.asarray(label.array), ct.spacing)
        cropped = nib.Nifti1Image(np.asarray(ct.array), ct.affine).slicer[box]
        assert cropped.shape[2] < ct.shape[2]
        mask = pipe.predict([cropped])[0]
        assert dice_score(full[box], mask) >= 0.95


@pytest.mark.slow
def test_stored_orientation_does_not_change_the_mask(fitted_and_held_out):
    pipe, images, _ = fitted_and_held_out
    ct = images[0]
    ras = nib.Nifti1Image(np.asarray(ct.array), ct.affine)
    reference = pipe.predict([ras])[0]
    for codes in (("L", "P", "S"), ("A", "S", "R")):  # LPS; sagittal slices
        other = ras.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes)))
        mask = pipe.predict([other])[0]
        back = nib.Nifti1Image(mask, other.affine).as_reoriented(
            ornt_transform(axcodes2ornt(codes), axcodes2ornt("RAS"))
        )
        np.testing.assert_array_equal(np.asarray(back.dataobj), reference)


def test_body_depth_ignores_the_edge_of_a_cropped_field_of_view():
    body = np.zeros((40, 60), bool)
    body[5:35, 5:55] = True
    full = body_depth(body, (1.0, 1.0))
    # the same body seen through a field of view that cuts it at both sides
    cut = body_depth(body[:, 20:40], (1.0, 1.0))
    np.testing.assert_allclose(cut[:, 5:15], full[:, 25:35])
    # whereas a body inside the image keeps its own outline
    assert full[20, 5] == 1.0 and full[20, 30] == 15.0


# --------------------------------------------------------------------------- #
# Voxel spacing
# --------------------------------------------------------------------------- #
#: The issue's spacings (x, y, z in mm): thin, standard and thick slices.
SPACINGS = ((0.7, 0.7, 1.0), (0.9, 0.9, 2.5), (0.8, 0.8, 5.0))
INPLANE_MM = 200.0


def targeted_scan(seed: int, spacing: tuple[float, float, float]):
    """Patient ``seed`` at ``spacing``: a pancreas protocol cropped in-plane.

    ``field_of_view="partial"`` covers the pancreas with 25-45 mm along z; the
    image is cut to ``INPLANE_MM`` around the pancreas and the spine behind
    it (40 mm posterior of the pancreas's centre), the same box in mm at
    every spacing. Returns the CT and the label as NIfTI images.
    """
    (ct,), (label,) = make_phantom_cohort(
        1, spacing=spacing, field_of_view="partial", random_state=seed
    )
    centre = np.argwhere(np.asarray(label.array) > 0).mean(axis=0)
    centre[1] -= 40.0 / spacing[1]  # canonical axis 1 points anterior
    box = []
    for axis in (0, 1):
        n = min(round(INPLANE_MM / spacing[axis]), ct.shape[axis])
        start = int(np.clip(round(centre[axis] - n / 2), 0, ct.shape[axis] - n))
        box.append(slice(start, start + n))
    box.append(slice(None))
    return tuple(
        nib.Nifti1Image(np.asarray(v.array), v.affine).slicer[tuple(box)]
        for v in (ct, label)
    )


@pytest.fixture(scope="module")
def fine_grid_model():
    """The ``cpu`` preset trained on 5 targeted scans of mixed spacing (2 for the threshold)."""
    rng = np.random.default_rng(0)
    cases = []
    for seed in range(7):
        inplane = float(rng.uniform(0.7, 0.9))
        cases.append(targeted_scan(seed, (inplane, inplane, float(rng.choice([1.0, 2.5, 5.0])))))
    images, labels = zip(*cases, strict=True)
    pipe = make_roth2015_pipeline(preset="cpu", random_state=0)
    pipe.fit(images[:5], labels[:5], X_val=images[5:], y_val=labels[5:])
    return pipe


def pairwise_dice(images) -> dict[str, float]:
    """Dice of every pair of masks on the first's grid, named by slice spacing."""
    return {
        f"{SPACINGS[i][2]:g} / {SPACINGS[j][2]:g} mm": d
        for (i, j), d in pairwise_dice_on_first_grid(images).items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [100, 101])
def test_voxel_spacing_does_not_change_the_mask(fine_grid_model, seed):
    masks, labels, truth = [], [], []
    for spacing in SPACINGS:
        ct, label = targeted_scan(seed, spacing)
        mask = fine_grid_model.predict([ct])[0]
        truth.append(dice_score(np.asarray(label.dataobj) > 0, mask))
        masks.append(nib.Nifti1Image(mask.astype(np.uint8), ct.affine))
        labels.append(label)
    # the model must find the pancreas at every spacing for this to test
    assert min(truth) >= 0.7, f"Dice against the truth {truth}"
    pairs = pairwise_dice(masks)
    # what the grids allow: the truth itself compared the same way
    ceiling = pairwise_dice(labels)
    print(
        f"\ncase {seed}: Dice against the truth "
        + ", ".join(f"{d:.3f}" for d in truth)
        + "; masks pairwise (slices) "
        + ", ".join(f"{k} {d:.3f}" for k, d in pairs.items())
        + "; truth labels pairwise "
        + ", ".join(f"{d:.3f}" for d in ceiling.values())
    )
    assert min(pairs.values()) >= 0.85, pairs
