"""The CPU emulation of GPU TensorFloat-32 math (benchmarks/precision_check.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def pc(request: pytest.FixtureRequest) -> Any:
    """The benchmark script, imported as a module."""
    sys.path.insert(0, str(BENCHMARKS))
    request.addfinalizer(lambda: sys.path.remove(str(BENCHMARKS)))
    return importlib.import_module("precision_check")


def reference_tf32(x: np.ndarray) -> np.ndarray:
    """Round to 11 significant bits through frexp in float64 (ties to even)."""
    m, e = np.frexp(x.astype(np.float64))  # x = m * 2**e, 0.5 <= |m| < 1
    return np.ldexp(np.round(m * 2.0**11) / 2.0**11, e).astype(np.float32)


def test_round_to_tf32_matches_an_independent_rounding(pc: Any) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(20_000) * 10.0 ** rng.uniform(-30, 30, 20_000)).astype(
        np.float32
    )
    got = pc.round_to_tf32(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, reference_tf32(x))
    # the result keeps 10 mantissa bits: the 13 low bits are zero
    assert not np.any(got.view(np.uint32) & np.uint32(0x1FFF))
    # relative error within TF32's unit roundoff 2**-11
    assert np.max(np.abs(got - x) / np.abs(x)) <= 2.0**-11


def test_round_to_tf32_ties_specials_and_overflow(pc: Any) -> None:
    ulp = 2.0**-10  # TF32 spacing just above 1
    x = np.array(
        [1 + ulp / 2, 1 + 3 * ulp / 2, -(1 + ulp / 2), 0.0, -0.0, np.inf, -np.inf],
        np.float32,
    )
    got = pc.round_to_tf32(x)
    # halfway cases go to the even neighbour
    assert got[:3].tolist() == [1.0, 1 + 2 * ulp, -1.0]
    assert got[3] == 0 and np.signbit(got[4])
    assert got[5] == np.inf and got[6] == -np.inf
    assert np.isnan(pc.round_to_tf32(np.float32(np.nan)))
    big = np.float32(np.finfo(np.float32).max)
    assert pc.round_to_tf32(big) == np.inf  # rounds past the largest float32
    assert pc.round_to_tf32(np.float32(3.0)) == 3.0  # exact values unchanged


def test_tf32_network_is_the_network_without_rounding(pc: Any) -> None:
    import keras

    from pancreas.convnet import build_convnet

    keras.utils.set_random_seed(0)
    model = build_convnet(16, filters=(4, 4, 8), dense_units=(8,), tps_magnitude=0.05)
    x = np.random.default_rng(1).random((32, 16, 16, 1), dtype=np.float32)
    direct = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv1").kernel).copy()

    same = pc.TF32Network(model, emulate=False).predict_on_batch(x)
    np.testing.assert_allclose(same, direct, rtol=0, atol=1e-6)

    emulated = pc.TF32Network(model)
    out = emulated.predict_on_batch(x)
    assert out.shape == direct.shape
    assert 0 < np.abs(out - direct).max() < 1e-2  # rounded, but only slightly
    conv1 = keras.ops.convert_to_numpy(emulated.model.get_layer("conv1").kernel)
    np.testing.assert_array_equal(conv1, pc.round_to_tf32(kernel))
    # the original network is untouched
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("conv1").kernel), kernel
    )


def test_tf32_convnet_swaps_the_network_back(pc: Any, tiny_fitted: Any) -> None:
    convnet = tiny_fitted.named_steps["convnet"]
    original = convnet.model_
    with pytest.raises(RuntimeError), pc.tf32_convnet(tiny_fitted):
        assert isinstance(convnet.model_, pc.TF32Network)
        raise RuntimeError("inside")
    assert convnet.model_ is original
