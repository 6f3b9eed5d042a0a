"""The streamed fit: same model as in memory, reuse, stale inputs, bounded storage."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, ornt_transform
from sklearn.base import clone

from pancreas._store import DiskVolume, WorkFolder, compact_ct, smallest_label_dtype
from pancreas.io import Volume, save_volume
from pancreas.patches import sample_patches
from pancreas.phantom import make_phantom_cohort
from pancreas.pipeline import make_roth2015_pipeline

pytest.importorskip("keras")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cohort():
    return make_phantom_cohort(4, shape=(48, 48, 12), random_state=3)


def _pipeline():
    pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
    return pipe.set_params(convnet__epochs=3)


def _in_memory_fit(pipe, X, y, X_val, y_val):
    """The stages fitted one after the other on in-memory records."""
    sp, cascade, net, refiner = (est for _, est in pipe.steps)
    records = cascade.fit(sp.fit().transform(X), y).transform(sp.transform(X))
    net.fit(records, y)
    refiner.fit(net.transform(cascade.transform(sp.transform(X_val))), y_val)
    return pipe


def _weights(pipe):
    return pipe.named_steps["convnet"].model_.get_weights()


def _same_model(a, b, X):
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    ca, cb = a.named_steps["cascade"], b.named_steps["cascade"]
    for fa, fb in ((ca.level1_, cb.level1_), (ca.level2_, cb.level2_)):
        for ta, tb in zip(fa.estimators_, fb.estimators_, strict=True):
            np.testing.assert_array_equal(ta.tree_.value, tb.tree_.value)
            np.testing.assert_array_equal(ta.tree_.threshold, tb.tree_.threshold)
    assert a.steps[-1][1].threshold_ == b.steps[-1][1].threshold_
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X), strict=True):
        np.testing.assert_array_equal(pa, pb)


def test_streamed_fit_equals_the_in_memory_fit(cohort, tmp_path):
    images, labels = cohort
    streamed = _pipeline().set_params(work_dir=tmp_path / "work")
    streamed.fit(images[:3], labels[:3], X_val=images[3:], y_val=labels[3:])
    counts = streamed.streamed_counts_
    assert counts["superpixels computed"] == 4
    assert counts["forests computed"] == 1
    reference = _in_memory_fit(_pipeline(), images[:3], labels[:3], images[3:], labels[3:])
    _same_model(streamed, reference, images[3:])

    # the work folder holds the CT as int16, slice-major, and small labels
    case = next((tmp_path / "work" / "cases").iterdir())
    volume = DiskVolume(case / "volume.npy")
    assert volume.dtype == np.int16
    assert np.load(case / "volume.npy", mmap_mode="r").shape[0] == volume.shape[2]
    sp = np.load(next(case.glob("sp-*")) / "superpixels.npy")
    assert sp.dtype in (np.uint8, np.uint16)


def test_rerun_reuses_everything_and_gives_the_same_model(cohort, tmp_path):
    images, labels = cohort
    paths = []
    for i in range(3):
        paths.append(save_volume(images[i], tmp_path / f"ct{i}.nii.gz"))
        save_volume(labels[i], tmp_path / f"lab{i}.nii.gz")
    X = [str(p) for p in paths]
    y = [str(tmp_path / f"lab{i}.nii.gz") for i in range(3)]
    work = tmp_path / "work"
    first = _pipeline().set_params(work_dir=work).fit(X, y)
    second = _pipeline().set_params(work_dir=work).fit(X, y)
    counts = second.streamed_counts_
    assert counts["cases reused"] == 3
    assert "superpixels computed" not in counts
    assert counts["forests reused"] == 1
    assert counts["ConvNet epochs reused"] == 3
    _same_model(first, second, images[3:])

    # a changed input is recomputed, never reused stale
    changed = images[1].array.copy()
    changed[changed > 200] -= 50
    save_volume(Volume(changed, images[1].affine), paths[1])
    third = _pipeline().set_params(work_dir=work).fit(X, y)
    counts = third.streamed_counts_
    assert counts["cases reused"] == 2
    assert counts["superpixels computed"] == 1
    assert counts["forests computed"] == 1
    reference = _pipeline().fit(
        [str(p) for p in paths], y
    )  # fresh temporary work folder
    _same_model(third, reference, images[3:])


def test_changed_parameters_recompute_only_what_they_change(cohort, tmp_path):
    images, labels = cohort
    work = tmp_path / "work"
    _pipeline().set_params(work_dir=work).fit(images[:2], labels[:2])
    pipe = _pipeline().set_params(work_dir=work, convnet__epochs=2)
    counts = pipe.fit(images[:2], labels[:2]).streamed_counts_
    assert counts["cases reused"] == 2
    assert counts["forests reused"] == 1
    assert "ConvNet epochs reused" not in counts  # another network
    pipe = _pipeline().set_params(work_dir=work, cascade__n_estimators=12)
    counts = pipe.fit(images[:2], labels[:2]).streamed_counts_
    assert counts["cases reused"] == 2  # the features do not depend on it
    assert counts["forests computed"] == 1
    pipe = _pipeline().set_params(work_dir=work, superpixels__compactness=0.3)
    counts = pipe.fit(images[:2], labels[:2]).streamed_counts_
    assert counts["superpixels computed"] == 2
    assert "case files computed" not in counts  # the CT files are kept


def test_temporary_work_folder_is_removed(cohort, tmp_path, monkeypatch):
    images, labels = cohort
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    _pipeline().fit(images[:2], labels[:2])
    assert not list(tmp_path.glob("pancreas-fit-*"))


def test_disk_volume_crops_equal_in_memory_crops():
    rng = np.random.default_rng(0)
    vol = rng.integers(-1000, 1500, (30, 40, 6)).astype(np.int16)
    boxes = np.c_[
        rng.integers(0, 6, 200),
        rng.uniform(-5, 35, 200),
        rng.uniform(-5, 45, 200),
        rng.uniform(2, 60, 200),
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        disk = DiskVolume.write(f"{d}/v.npy", vol)
        a = sample_patches(vol.astype(np.float32), (0.7, 0.9, 2.0), boxes, patch_size=8)
        b = sample_patches(disk, (0.7, 0.9, 2.0), boxes, patch_size=8)
    np.testing.assert_array_equal(a, b)


def test_compact_ct_keeps_values():
    ints = np.array([-1024.0, 0.0, 3071.0], np.float32)
    assert compact_ct(ints).dtype == np.int16
    fractional = np.array([-1024.0, 0.5], np.float32)
    assert compact_ct(fractional).dtype == np.float32
    big = np.array([0.0, 40000.0], np.float32)
    assert compact_ct(big).dtype == np.float32
    assert smallest_label_dtype(255) == np.uint8
    assert smallest_label_dtype(256) == np.uint16


def test_work_folder_entry_is_all_or_nothing(tmp_path):
    wf = WorkFolder(tmp_path)
    with pytest.raises(RuntimeError), wf.entry("cases/a") as tmp:
        (tmp / "half.npy").write_bytes(b"x")
        raise RuntimeError("killed")
    assert not wf.complete("cases/a")
    assert not (tmp_path / "cases" / "a").exists()
    assert not list((tmp_path / "cases").iterdir())


def test_in_memory_path_with_memory_still_works(cohort, tmp_path):
    images, labels = cohort
    pipe = clone(_pipeline()).set_params(memory=str(tmp_path / "cache"))
    pipe.fit(images[:2], labels[:2])
    assert not hasattr(pipe, "streamed_counts_")
    assert pipe.predict(images[3:])[0].shape == images[3].shape


def _stored_as(volume, codes):
    """The same CT or label stored in another voxel order (nibabel reorders it)."""
    image = nib.Nifti1Image(np.asarray(volume.array), volume.affine)
    other = image.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes)))
    return Volume(np.asarray(other.dataobj), other.affine)


@pytest.mark.parametrize("variant", ["LPS", "working grid"])
def test_streamed_fit_equals_the_in_memory_fit_on_other_grids(cohort, tmp_path, variant):
    # the refiner's threshold is chosen on labels read back from the work
    # folder: they must be taken in the case's canonical order (an LPS case
    # would otherwise be scored against its mirror image) and on its
    # working grid
    images, labels = cohort
    params = {}
    if variant == "LPS":
        images = [_stored_as(v, "LPS") for v in images]
        labels = [_stored_as(v, "LPS") for v in labels]
    else:
        params = {"superpixels__working_spacing": 2 * images[0].spacing[0]}
    streamed = _pipeline().set_params(work_dir=tmp_path / "work", **params)
    streamed.fit(images[:3], labels[:3], X_val=images[3:], y_val=labels[3:])
    reference = _pipeline().set_params(**params)
    reference = _in_memory_fit(reference, images[:3], labels[:3], images[3:], labels[3:])
    ref, got = reference.steps[-1][1], streamed.steps[-1][1]
    for stage, curves in ref.dice_curves_.items():
        np.testing.assert_array_equal(got.dice_curves_[stage], curves)
    _same_model(streamed, reference, images[3:])
