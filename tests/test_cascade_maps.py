"""The cascade's texture maps on blocks of pixels (``RFCascade(map_spacing=...)``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import ndimage

from pancreas.cascade import (
    RFCascade,
    _box_depth,
    _feature_maps,
    _level1_names,
    _level2_names,
    body_depth,
)
from pancreas.io import Volume
from pancreas.superpixels import SuperpixelGenerator

FAST = {"n_estimators": 8, "max_depth": 10, "min_samples_leaf": 2}


def _fine_case(seed: int, shape=(120, 110, 4), spacing=(0.7, 0.7, 2.0)):
    """A small abdomen on a fine (0.7 mm) grid: body, spine, organ, 'pancreas'."""
    rng = np.random.default_rng(seed)
    n0, n1, nz = shape
    ii, jj = np.meshgrid(np.arange(n0), np.arange(n1), indexing="ij")
    ell = ((ii - n0 / 2) / (0.45 * n0)) ** 2 + ((jj - n1 / 2) / (0.4 * n1)) ** 2
    sl = np.full((n0, n1), -1000.0)
    sl[ell <= 1] = -100.0
    sl[ell <= 0.7] = 40.0
    sl[np.hypot(ii - n0 / 2, jj - 0.25 * n1) < 6] = 600.0  # spine
    hu = np.repeat(sl[..., None], nz, axis=2)
    label = np.zeros(shape, np.uint8)
    s = int(rng.integers(-3, 4))
    label[50 + s : 66 + s, 55:80, :] = 1
    hu[label == 1] = 110.0
    hu += rng.normal(0, 10, shape)
    affine = np.diag([*spacing, 1.0])
    return Volume(hu.astype(np.int16), affine), Volume(label, affine)


@pytest.fixture(scope="module")
def fine_cohort():
    cases = [_fine_case(seed) for seed in range(4)]
    records = SuperpixelGenerator(check_spacing=False).fit_transform(
        [c[0] for c in cases]
    )
    return records, [c[1] for c in cases]


def test_maps_on_pixels_are_the_filters_themselves():
    """factor (1, 1): every map on the pixel grid, as the filters give it."""
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((60, 50)), 2).astype(np.float32)
    maps = _feature_maps(image, (0.7, 0.7))
    assert not any(maps.on_blocks)
    window = 15  # 11 mm at 0.7 mm: 15.7 pixels -> the nearest odd 15 or 17
    mean = ndimage.uniform_filter(image, (window + 2, window + 2), mode="nearest")
    np.testing.assert_allclose(maps.maps[3], mean, atol=1e-6)
    log = ndimage.gaussian_laplace(image, 4 / 0.7, mode="nearest")
    np.testing.assert_allclose(maps.maps[-1], -log * (4 / 0.7) ** 2, atol=1e-5)


def test_block_maps_approximate_the_pixel_maps():
    """On 2 x 2 blocks the large-scale maps stay close to the pixel ones and
    the 5 mm and 1 mm maps are the same."""
    vol, _ = _fine_case(1)
    image = np.clip((np.asarray(vol.array, np.float32)[:, :, 0] + 160) / 400, 0, 1)
    fine = _feature_maps(image, (0.7, 0.7))
    coarse = _feature_maps(image, (0.7, 0.7), (2, 2))
    assert coarse.on_blocks == [False] * 3 + [True] * 6 + [False, True, True, True]
    rows, cols = np.nonzero(np.ones(image.shape, bool))
    for name, a, b, on in zip(
        ["intensity", *_level1_names()[1:13]],
        fine.at(rows, cols),
        coarse.at(rows, cols),
        coarse.on_blocks,
        strict=True,
    ):
        if not on:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert np.corrcoef(a, b)[0, 1] > 0.9, name
            assert coarse.maps[coarse.on_blocks.index(True)].shape == (60, 55)


@pytest.mark.parametrize("factor", [(1, 1), (2, 2)])
def test_depth_in_the_body_box_equals_the_whole_slice(factor):
    """The box's one-pixel background margin gives the whole slice's depth
    (exactly on pixels), also where the body is cut by the image's edge."""
    body = np.zeros((50, 60), bool)
    body[5:45, 0:40] = True  # reaches the left edge of the image
    body[20:30, 40:52] = True
    box = (slice(5, 45), slice(0, 52))
    got = _box_depth(body, box, (0.8, 0.6), factor)
    whole = body_depth(body, (0.8, 0.6))[box]
    if factor == (1, 1):
        np.testing.assert_array_equal(got.maps[0], whole)
    else:
        rows, cols = np.nonzero(body[box])
        err = np.abs(got.at(rows, cols)[0] - whole[rows, cols])
        assert err.max() <= np.hypot(2 * 0.8, 2 * 0.6) + 1e-6  # a block diagonal


def test_map_spacing_changes_features_little_and_none_keeps_pixels(fine_cohort):
    records, labels = fine_cohort
    blocks = RFCascade(random_state=0, map_spacing=1.5, **FAST)
    pixels = RFCascade(random_state=0, **FAST)
    assert pixels.map_spacing is None
    fb = blocks._case_features(records[0])
    fp = pixels._case_features(records[0])
    assert fb.geom.factor == (2, 2) and fp.geom.factor == (1, 1)
    np.testing.assert_array_equal(fb.a, fp.a)
    for j, name in enumerate(_level1_names()):
        a, b = fp.level1[:, j], fb.level1[:, j]
        if np.ptp(a) > 0:
            assert np.corrcoef(a, b)[0, 1] > 0.85, name
    l2p = np.concatenate([v[1] for _, v in sorted(fp.level2_image.items())])
    l2b = np.concatenate([v[1] for _, v in sorted(fb.level2_image.items())])
    assert l2p.shape == l2b.shape
    for j, name in enumerate(_level2_names()[: l2p.shape[1]]):
        if np.ptp(l2p[:, j]) > 0:
            assert np.corrcoef(l2p[:, j], l2b[:, j])[0, 1] > 0.95, name
    assert not np.array_equal(fb.level1, fp.level1)


def test_fit_and_transform_on_blocks(fine_cohort):
    records, labels = fine_cohort
    cascade = RFCascade(random_state=0, map_spacing=1.5, **FAST)
    cascade.fit(records[:3], labels[:3])
    out = cascade.transform(records[3:])[0]
    cand = np.isin(out.superpixels, out.candidates)
    truth = out.to_canonical(np.asarray(labels[3].array)) > 0
    assert (cand & truth).sum() / truth.sum() > 0.9


def test_models_saved_before_map_spacing_load_with_pixel_maps(fine_cohort):
    records, labels = fine_cohort
    cascade = RFCascade(random_state=0, map_spacing=None, **FAST).fit(
        records[:2], labels[:2]
    )
    state = dict(cascade.__getstate__())
    del state["map_spacing"]  # as pickled by a version without the parameter
    old = RFCascade.__new__(RFCascade)
    old.__setstate__(state)
    assert old.map_spacing is None
    np.testing.assert_array_equal(
        old.transform(records[2:3])[0].sp_proba,
        cascade.transform(records[2:3])[0].sp_proba,
    )
    again = pickle.loads(pickle.dumps(RFCascade(map_spacing=2.0)))
    assert again.map_spacing == 2.0


def test_work_folder_key_of_the_features_names_map_spacing():
    from pancreas._store import WorkFolder
    from pancreas._streamed import _CaseStore

    def key(**kw):
        store = _CaseStore(WorkFolder.__new__(WorkFolder), SuperpixelGenerator(), RFCascade(**kw))
        return store.cf_key

    from pancreas._store import hash_params
    from pancreas.cascade import FEATURES_VERSION

    before = {"grid_spacing": 3.0, "hu_window": [-160.0, 240.0]}
    # None keeps the key of the work folders made before the parameter existed
    assert key() == "cf-" + hash_params({**before, "version": FEATURES_VERSION})
    assert key(map_spacing=1.5) != key()
    assert key(map_spacing=1.5) != key(map_spacing=2.0)
    assert key(map_spacing=1.5) == key(map_spacing=1.5, n_estimators=3)
