"""What a GPU changes in a segmentation, measured on the CPU.

Two things differ when the pipeline runs on an NVIDIA GPU instead of a CPU;
everything else (SLIC, the random forests, painting, Gaussian smoothing) runs
on the CPU in both cases and is bitwise identical.

1. **Inference in TensorFloat-32.** On Ampere and later GPUs (A100, H100,
   H200) JAX and TensorFlow compute float32 convolutions and matrix products
   in TF32 by default, and PyTorch does for convolutions: each input and
   weight is rounded to 10 explicit mantissa bits (unit roundoff 2^-11,
   against 2^-24 for float32) and the products are summed in float32. This
   script emulates that on the CPU: a copy of the fitted network whose
   convolution and dense kernels, and the activations entering those
   layers, are rounded to TF32 (round to nearest even), everything else in
   float32. It runs the same held-out cases through the pipeline with the
   float32 network and with the emulated one and reports how far apart the
   ConvNet probabilities, P(x), G(P(x)) and the final masks are.
2. **Training is not bitwise reproducible on a GPU** (atomic adds in the
   backward passes sum in a varying order; see the docs for the switches
   that make it deterministic). A run then ends in a different local
   optimum, as if trained with another seed. ``--seeds`` measures that
   spread on the CPU: it refits the same recipe with other ConvNet seeds
   (superpixels and forests unchanged, as on a GPU, where they run on the
   CPU) and reports each one's held-out Dice and how much the masks agree.

The cohort is the ``pancreas demo`` one (phantoms of ``--cohort-seed``,
8 training, 2 validation, 4 held-out cases of 160 x 160 x 40); ``--model``
takes the demo's model (``demo_output/model``) instead of training one.
``benchmarks/gpu_check.py`` compares this emulation against a real GPU.

Usage::

    python benchmarks/precision_check.py --model demo_output/model --json p.json
    python benchmarks/precision_check.py --model demo_output/model --seeds 1 2
    python benchmarks/precision_check.py --small     # tiny, seconds (tests)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _bench_utils import (
    format_table,
    machine_info,
    quiet_warnings,
    write_json,
)

#: float32 bits that TF32 drops (23 stored mantissa bits, 10 kept)
_DROPPED_BITS = 13


def round_to_tf32(x: Any) -> NDArray[np.float32]:
    """Round float32 values to TensorFloat-32 (10 mantissa bits), nearest even.

    Infinities and NaNs pass through; finite values that round past the
    largest float32 become infinite, as on the hardware.

    Examples
    --------
    >>> round_to_tf32([1.0, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11]).tolist()
    [1.0, 1.0, 1.001953125]
    """
    a = np.ascontiguousarray(x, dtype=np.float32)
    bits = a.view(np.uint32)
    finite = (bits & np.uint32(0x7F800000)) != np.uint32(0x7F800000)
    lowest_kept = (bits >> np.uint32(_DROPPED_BITS)) & np.uint32(1)
    half = np.uint32((1 << (_DROPPED_BITS - 1)) - 1)
    rounded = (bits + half + lowest_kept) & ~np.uint32((1 << _DROPPED_BITS) - 1)
    return np.where(finite, rounded, bits).view(np.float32)


class TF32Network:
    """A fitted Keras network evaluated with TF32 convolutions and products.

    The network must be a chain (each layer feeding the next, as
    :func:`pancreas.convnet.build_convnet` builds it). Its layers are cloned
    with their weights; the kernels of Conv2D and Dense layers are rounded to
    TF32, and so is every activation entering one of them. Biases, pooling,
    ReLU and softmax stay float32, as on the GPU.

    Parameters
    ----------
    model : keras.Model
        The float32 network; left unchanged.
    emulate : bool, default=True
        False runs the same layer-by-layer path without rounding (a check
        that the path itself reproduces ``model``).
    """

    def __init__(self, model: Any, *, emulate: bool = True) -> None:
        import keras

        self.emulate = emulate
        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())
        self.rounded = (keras.layers.Conv2D, keras.layers.Dense)
        self.layers = [
            layer
            for layer in self.model.layers
            if not isinstance(layer, keras.layers.InputLayer)
        ]
        for layer in self.layers:
            if len(layer._inbound_nodes) != 1:
                raise ValueError(f"layer {layer.name!r} is shared; not a chain")
        if emulate:
            for layer in self.layers:
                if isinstance(layer, self.rounded):
                    kernel = keras.ops.convert_to_numpy(layer.kernel)
                    layer.kernel.assign(round_to_tf32(kernel))

    def predict_on_batch(self, x: Any) -> NDArray[np.float32]:
        """The network's output for one batch (inference mode)."""
        from keras import ops

        out = np.asarray(x, dtype=np.float32)
        for layer in self.layers:
            if self.emulate and isinstance(layer, self.rounded):
                out = round_to_tf32(out)
            out = ops.convert_to_numpy(layer(out, training=False))
        return out


@contextlib.contextmanager
def tf32_convnet(pipe: Any, *, emulate: bool = True) -> Iterator[Any]:
    """Within the block, ``pipe``'s ConvNet predicts with :class:`TF32Network`."""
    convnet = pipe.named_steps["convnet"]
    original = convnet.model_
    convnet.model_ = TF32Network(original, emulate=emulate)
    try:
        yield pipe
    finally:
        convnet.model_ = original


def compare_case(pipe: Any, image: Any, label: Any) -> dict[str, Any]:
    """One case through the float32 and the TF32 network: how far apart.

    Superpixels and cascade run once; the ConvNet runs twice; P(x) (at the
    refiner's scales), G(P(x)) and the masks are compared voxel by voxel.
    """
    from pancreas.io import as_volume
    from pancreas.metrics import dice_score
    from pancreas.refine import paint_probability

    superpixels_and_cascade = pipe[:-2]
    convnet, refiner = pipe[-2], pipe[-1]
    record = superpixels_and_cascade.transform([image])[0]
    f32 = convnet.transform([record])[0]
    with tf32_convnet(pipe):
        tf32 = convnet.transform([record])[0]
    truth = np.asarray(as_volume(label).array) > 0
    out: dict[str, Any] = {
        "case": record.case_id,
        "candidates": len(record.candidates),
    }
    dp = np.abs(f32.convnet_proba - tf32.convnet_proba)
    out["convnet_max_abs_diff"] = float(dp.max()) if dp.size else 0.0
    out["convnet_mean_abs_diff"] = float(dp.mean()) if dp.size else 0.0
    out["convnet_flipped_at_0.5"] = int(
        ((f32.convnet_proba > 0.5) != (tf32.convnet_proba > 0.5)).sum()
    )
    out["convnet_probabilities"] = int(dp.size)
    painted = [paint_probability(r, refiner.n_scales) for r in (f32, tf32)]
    out["P(x)_max_abs_diff"] = float(np.abs(painted[0] - painted[1]).max())
    (mask32, g32), (mask_tf, g_tf) = refiner.predict_with_proba([f32, tf32])
    out["G(P(x))_max_abs_diff"] = float(np.abs(g32 - g_tf).max())
    m32, mtf = mask32 > 0, mask_tf > 0
    out["mask_voxels"] = int(m32.sum())
    out["mask_voxels_differing"] = int((m32 != mtf).sum())
    out["dice_f32_vs_tf32"] = dice_score(m32, mtf)
    out["dice_truth_f32"] = dice_score(truth, m32)
    out["dice_truth_tf32"] = dice_score(truth, mtf)
    return out


def demo_args(seed: int, small: bool) -> argparse.Namespace:
    """``pancreas demo``'s own settings (tiny cohort and preset if ``small``)."""
    from pancreas.cli import build_parser

    argv = ["demo", "--quiet", "--seed", str(seed)]
    if small:
        argv += ["--n-train", "3", "--n-val", "1", "--n-test", "2"]
        argv += ["--shape", "64", "64", "16", "--preset", "tiny", "--epochs", "0"]
    return build_parser().parse_args(argv)


def demo_cohort(demo: argparse.Namespace) -> dict[str, Any]:
    """The ``pancreas demo`` phantom cohort split into train/val/test."""
    from pancreas.phantom import make_phantom_cohort

    n_train, n_val, n_test = demo.n_train, demo.n_val, demo.n_test
    shape = tuple(demo.shape)
    images, labels = make_phantom_cohort(
        n_train + n_val + n_test, shape=shape, random_state=demo.seed
    )
    return {
        "train": (images[:n_train], labels[:n_train]),
        "val": (images[n_train : n_train + n_val], labels[n_train : n_train + n_val]),
        "test": (images[n_train + n_val :], labels[n_train + n_val :]),
        "shape": shape,
    }


def fit_demo_recipe(
    cohort: dict[str, Any],
    demo: argparse.Namespace,
    convnet_random_state: int | None = None,
) -> Any:
    """Fit the pipeline ``pancreas demo`` fits, with the same settings.

    ``convnet_random_state`` reseeds the ConvNet alone (initial weights,
    deformations, dropout, batch order); the other steps keep the demo's
    seed.
    """
    from pancreas.cli import _new_pipeline

    pipe = _new_pipeline(demo)
    if convnet_random_state is not None:
        pipe.set_params(convnet__random_state=convnet_random_state)
    (xt, yt), (xv, yv) = cohort["train"], cohort["val"]
    return pipe.fit(xt, yt, X_val=xv, y_val=yv)


def seed_spread(
    cohort: dict[str, Any],
    masks0: Sequence[NDArray[np.bool_]],
    seeds: Sequence[int],
    demo: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Refit with each other ConvNet seed: held-out Dice, agreement with the first.

    Superpixels and forests keep the demo's seed (on a GPU they run on the
    CPU and do not change); only the ConvNet's training is reseeded.
    """
    from pancreas.io import as_volume
    from pancreas.metrics import dice_score

    images, labels = cohort["test"]
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        pipe = fit_demo_recipe(cohort, demo, convnet_random_state=seed)
        masks = [m > 0 for m in pipe.predict(images)]
        rows.append(
            {
                "convnet_random_state": int(seed),
                "fit_s": round(time.perf_counter() - t0, 1),
                "dice_truth": [
                    dice_score(np.asarray(as_volume(y).array) > 0, m)
                    for m, y in zip(masks, labels, strict=True)
                ],
                "dice_vs_first": [
                    dice_score(m0, m) for m, m0 in zip(masks, masks0, strict=True)
                ],
            }
        )
        print(
            f"ConvNet random_state {seed}: held-out Dice "
            f"{np.mean(rows[-1]['dice_truth']):.3f}, agreement with the first "
            f"model's masks {np.mean(rows[-1]['dice_vs_first']):.3f} "
            f"({rows[-1]['fit_s']} s)",
            flush=True,
        )
    return rows


def path_check(pipe: Any, n_patches: int = 256) -> float:
    """Largest difference between the network and its unrounded layer-by-layer twin."""
    from keras import ops

    model = pipe.named_steps["convnet"].model_
    size = int(model.input_shape[1])
    x = np.random.default_rng(0).random((n_patches, size, size, 1), dtype=np.float32)
    direct = ops.convert_to_numpy(model.predict_on_batch(x))
    chained = TF32Network(model, emulate=False).predict_on_batch(x)
    return float(np.abs(direct - chained).max())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="fitted model directory (demo's model)")
    p.add_argument("--cohort-seed", type=int, default=0, help="phantom cohort seed")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[],
        help="also refit with these ConvNet random_state values (training spread)",
    )
    p.add_argument("--small", action="store_true", help="tiny cohort and net (tests)")
    p.add_argument("--json", type=Path, help="write the results here")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Emulated-TF32 comparison (and seed spread); returns the JSON document."""
    import keras

    quiet_warnings()
    demo = demo_args(args.cohort_seed, args.small)
    cohort = demo_cohort(demo)
    if args.model is not None:
        from pancreas.persistence import load_pipeline

        pipe = load_pipeline(args.model)
        source = str(args.model)
    else:
        t0 = time.perf_counter()
        pipe = fit_demo_recipe(cohort, demo)
        source = f"fitted here in {time.perf_counter() - t0:.0f} s"
    print(f"model: {source}; Keras {keras.__version__} on {keras.backend.backend()}")
    chain = path_check(pipe)
    print(f"layer-by-layer path without rounding vs the network: max {chain:.2g}")

    images, labels = cohort["test"]
    cases = []
    for image, label in zip(images, labels, strict=True):
        cases.append(compare_case(pipe, image, label))
    cols = [
        "case",
        "candidates",
        "convnet_max_abs_diff",
        "convnet_flipped_at_0.5",
        "P(x)_max_abs_diff",
        "G(P(x))_max_abs_diff",
        "mask_voxels",
        "mask_voxels_differing",
        "dice_f32_vs_tf32",
        "dice_truth_f32",
        "dice_truth_tf32",
    ]
    print(format_table(cols, [[c[k] for k in cols] for c in cases]))

    doc: dict[str, Any] = {
        "benchmark": "precision_check",
        "small": bool(args.small),
        "machine": machine_info(),
        "model": source,
        "cohort_seed": args.cohort_seed,
        "shape": list(cohort["shape"]),
        "path_check_max_abs_diff": chain,
        "tf32_cases": cases,
        "tf32_summary": {
            "convnet_max_abs_diff": max(c["convnet_max_abs_diff"] for c in cases),
            "convnet_flipped_at_0.5": sum(c["convnet_flipped_at_0.5"] for c in cases),
            "convnet_probabilities": sum(c["convnet_probabilities"] for c in cases),
            "G(P(x))_max_abs_diff": max(c["G(P(x))_max_abs_diff"] for c in cases),
            "mask_voxels_differing": sum(c["mask_voxels_differing"] for c in cases),
            "mask_voxels": sum(c["mask_voxels"] for c in cases),
            "mean_dice_truth_f32": float(np.mean([c["dice_truth_f32"] for c in cases])),
            "mean_dice_truth_tf32": float(
                np.mean([c["dice_truth_tf32"] for c in cases])
            ),
        },
    }
    s = doc["tf32_summary"]
    print(
        f"\nTF32 vs float32 over {len(cases)} held-out cases: ConvNet probabilities "
        f"differ by at most {s['convnet_max_abs_diff']:.2g} "
        f"({s['convnet_flipped_at_0.5']} of {s['convnet_probabilities']} flip at 0.5), "
        f"G(P(x)) by at most {s['G(P(x))_max_abs_diff']:.2g}; "
        f"{s['mask_voxels_differing']} of {s['mask_voxels']} mask voxels differ; "
        f"mean Dice {s['mean_dice_truth_f32']:.4f} (float32) vs "
        f"{s['mean_dice_truth_tf32']:.4f} (TF32)",
        flush=True,
    )
    if args.seeds:
        masks0 = [m > 0 for m in pipe.predict(images)]
        doc["seed_spread"] = seed_spread(cohort, masks0, args.seeds, demo)
        doc["dice_truth_first"] = [c["dice_truth_f32"] for c in cases]
    return doc


def main(argv: list[str] | None = None) -> int:
    """Run, print, write ``--json``."""
    args = parse_args(argv)
    doc = run(args)
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
