"""ConvNet throughput: inference and augmented training patches/s, vs the paper.

Builds the superpixel ConvNet of :func:`pancreas.convnet.build_convnet` with
the parameters of a preset (``paper``: 64 x 64 patches, filters 64-64-128-
128-128, two 512-unit layers; ``cpu``: 32 x 32, 16-16-32-32-32, 128-128),
compiled as ``SuperpixelConvNet.fit`` compiles it (Adam, sparse categorical
cross-entropy), and times on random patches:

- inference: ``predict_on_batch`` (the thin-plate-spline layer is the
  identity), as ``SuperpixelConvNet.transform`` calls it;
- training: ``train_on_batch``, which runs the
  :class:`~pancreas.augment.RandomThinPlateSpline` layer (a random TPS
  warp of every patch) before the forward and backward pass;
- cropping: :func:`pancreas.patches.sample_patches` on one CPU thread, the
  work that feeds both (``SuperpixelConvNet``'s ``n_jobs`` threads).

The first steps (compilation) are excluded. The training rate is turned into
the paper's training time: 855,500 patches x 100 epochs took 55 h on a GTX
TITAN Z (about 430 patches/s).

Usage::

    python benchmarks/bench_convnet.py                       # paper and cpu nets
    python benchmarks/bench_convnet.py --configs paper --batch-size 256 --seconds 20
    KERAS_BACKEND=jax python benchmarks/bench_convnet.py --mixed-precision --json c.json
    python benchmarks/bench_convnet.py --small               # seconds, for the tests
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _bench_utils import Timer, format_table, machine_info, write_json

#: The paper's training set and time (Roth et al. 2015, Sec. 3).
PAPER_TRAIN_PATCHES = 855_500
PAPER_EPOCHS = 100
PAPER_HOURS = 55.0
PAPER_GPU = "NVIDIA GTX TITAN Z"

#: Parameters of the net and its batches taken from a preset.
NET_KEYS = (
    "patch_size",
    "filters",
    "dense_units",
    "dropout",
    "tps_grid_size",
    "tps_magnitude",
    "batch_size",
    "predict_batch_size",
    "learning_rate",
)


def net_config(preset: str) -> dict[str, Any]:
    """The ConvNet parameters of ``make_roth2015_pipeline(preset)``.

    ``SuperpixelConvNet``'s defaults (the paper's net) updated by
    ``PRESETS[preset]["convnet"]``.
    """
    from pancreas.convnet import SuperpixelConvNet
    from pancreas.pipeline import PRESETS

    params = SuperpixelConvNet().get_params()
    params.update(PRESETS[preset]["convnet"])
    cfg = {k: params[k] for k in NET_KEYS}
    cfg["filters"] = [int(f) for f in cfg["filters"]]
    cfg["dense_units"] = [int(u) for u in cfg["dense_units"]]
    return cfg


def set_precision(mixed: bool) -> str:
    """Set Keras's global dtype policy (``mixed_bfloat16`` or ``float32``)."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed else "float32")
    return keras.mixed_precision.global_policy().name


def build_model(cfg: dict[str, Any], *, seed: int = 0) -> Any:
    """``build_convnet`` with ``cfg``, compiled as ``SuperpixelConvNet.fit`` does."""
    import keras

    from pancreas.convnet import build_convnet

    model = build_convnet(
        cfg["patch_size"],
        cfg["filters"],
        cfg["dense_units"],
        cfg["dropout"],
        tps_grid_size=cfg["tps_grid_size"],
        tps_magnitude=cfg["tps_magnitude"],
        seed=seed,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def has_augmentation(model: Any) -> bool:
    """Whether the model holds an active ``RandomThinPlateSpline`` layer."""
    from pancreas.augment import RandomThinPlateSpline

    return any(
        isinstance(layer, RandomThinPlateSpline) and layer.magnitude > 0
        for layer in model.layers
    )


def random_batches(
    n_batches: int, batch_size: int, patch_size: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few batches of random patches in [0, 1] with random 0/1 targets."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.random((batch_size, patch_size, patch_size, 1), dtype=np.float32),
            rng.integers(0, 2, batch_size).astype(np.int32),
        )
        for _ in range(n_batches)
    ]


def timed_loop(
    step: Any, seconds: float, *, warmup_steps: int = 2, min_steps: int = 3
) -> dict[str, float]:
    """Call ``step(i)`` ``warmup_steps`` times untimed, then for ``seconds``.

    Returns ``warmup_s`` (compilation included), ``steps`` and ``seconds``
    of the timed part (at least ``min_steps`` steps). ``step`` must block
    until its result is on the host (``predict_on_batch`` and
    ``train_on_batch`` do), so the time is not the time to queue work.
    """
    with Timer() as warm:
        for i in range(warmup_steps):
            step(i)
    n = 0
    start = time.perf_counter()
    while n < min_steps or time.perf_counter() - start < seconds:
        step(n)
        n += 1
    return {
        "warmup_s": round(warm.seconds, 3),
        "steps": n,
        "seconds": time.perf_counter() - start,
    }


def measure_inference(
    model: Any, batch_size: int, seconds: float, *, patch_size: int | None = None
) -> dict[str, Any]:
    """Inference patches/s of ``model.predict_on_batch`` (host arrays in and out)."""
    patch_size = patch_size or int(model.input_shape[1])
    batches = random_batches(4, batch_size, patch_size, seed=1)
    loop = timed_loop(lambda i: model.predict_on_batch(batches[i % 4][0]), seconds)
    loop.update(
        batch_size=batch_size,
        patches_per_s=loop["steps"] * batch_size / loop["seconds"],
    )
    return loop


def measure_training(
    model: Any, batch_size: int, seconds: float, *, patch_size: int | None = None
) -> dict[str, Any]:
    """Training patches/s of ``model.train_on_batch``, TPS augmentation included."""
    patch_size = patch_size or int(model.input_shape[1])
    batches = random_batches(4, batch_size, patch_size, seed=2)

    def step(i: int) -> Any:
        x, y = batches[i % 4]
        return model.train_on_batch(x, y)

    loop = timed_loop(step, seconds)
    loop.update(
        batch_size=batch_size,
        augmented=has_augmentation(model),
        patches_per_s=loop["steps"] * batch_size / loop["seconds"],
    )
    return loop


def measure_cropping(
    patch_size: int, seconds: float, *, batch_size: int = 512, seed: int = 0
) -> dict[str, Any]:
    """Patches/s of ``sample_patches`` on one thread (the CPU side of the net).

    Random boxes of 12-60 mm (scaled like the test scales) in a random
    int16 volume of 512 x 512 x 16 voxels of 0.7 x 0.7 x 2 mm.
    """
    from pancreas.patches import sample_patches

    rng = np.random.default_rng(seed)
    shape, spacing = (512, 512, 16), (0.7, 0.7, 2.0)
    volume = rng.integers(-1000, 1000, shape, dtype=np.int16)
    boxes = np.column_stack(
        [
            rng.integers(0, shape[2], batch_size),
            rng.uniform(60, 450, batch_size),
            rng.uniform(60, 450, batch_size),
            rng.uniform(12, 60, batch_size),
        ]
    ).astype(np.float64)
    loop = timed_loop(
        lambda i: sample_patches(volume, spacing, boxes, patch_size=patch_size),
        seconds,
        warmup_steps=1,
        min_steps=2,
    )
    loop.update(
        batch_size=batch_size,
        patches_per_s=loop["steps"] * batch_size / loop["seconds"],
    )
    return loop


def paper_comparison(train_patches_per_s: float) -> dict[str, float]:
    """Hours for the paper's 855,500 patches x 100 epochs at this rate, vs 55 h."""
    total = PAPER_TRAIN_PATCHES * PAPER_EPOCHS
    hours = total / max(train_patches_per_s, 1e-12) / 3600
    return {
        "train_patches": PAPER_TRAIN_PATCHES,
        "epochs": PAPER_EPOCHS,
        "hours_at_measured_rate": hours,
        "paper_hours": PAPER_HOURS,
        "paper_patches_per_s": total / (PAPER_HOURS * 3600),
        "speedup_vs_paper": PAPER_HOURS / hours,
        "paper_gpu": PAPER_GPU,
    }


def bench_config(
    preset: str,
    *,
    batch_size: int | None = None,
    predict_batch_size: int | None = None,
    seconds: float = 5.0,
    mixed_precision: bool = False,
    crop: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Inference, augmented training (and cropping) rates of one preset's net.

    With ``mixed_precision`` the model runs under ``mixed_bfloat16``; if the
    backend or device cannot run it, the error is recorded and float32 is
    used. The global policy is float32 again on return.
    """
    import keras

    cfg = net_config(preset)
    if batch_size:
        cfg["batch_size"] = int(batch_size)
    if predict_batch_size:
        cfg["predict_batch_size"] = int(predict_batch_size)
    out: dict[str, Any] = {"preset": preset, "config": cfg}
    policy, error = set_precision(mixed_precision), None
    try:
        keras.backend.clear_session()
        model = build_model(cfg, seed=seed)
        out["inference"] = measure_inference(model, cfg["predict_batch_size"], seconds)
        out["training"] = measure_training(model, cfg["batch_size"], seconds)
    except Exception as exc:
        if not mixed_precision:
            raise
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        policy = set_precision(False)
        keras.backend.clear_session()
        model = build_model(cfg, seed=seed)
        out["inference"] = measure_inference(model, cfg["predict_batch_size"], seconds)
        out["training"] = measure_training(model, cfg["batch_size"], seconds)
    finally:
        set_precision(False)
    out["dtype_policy"] = policy
    out["mixed_precision_error"] = error
    out["n_parameters"] = int(model.count_params())
    if crop:
        out["cropping_1_thread"] = measure_cropping(
            cfg["patch_size"], min(seconds, 2.0)
        )
    out["paper"] = paper_comparison(out["training"]["patches_per_s"])
    return out


def results_table(results: list[dict[str, Any]]) -> str:
    """One row per net: the rates and the paper's training time at that rate."""
    header = [
        "net",
        "patch",
        "params",
        "dtype",
        "infer batch",
        "infer patches/s",
        "train batch",
        "train patches/s (TPS)",
        "crop patches/s (1 thr)",
        "paper 100 ep. (h)",
    ]
    rows = [
        [
            r["preset"],
            r["config"]["patch_size"],
            r["n_parameters"],
            r["dtype_policy"],
            r["inference"]["batch_size"],
            r["inference"]["patches_per_s"],
            r["training"]["batch_size"],
            r["training"]["patches_per_s"],
            r.get("cropping_1_thread", {}).get("patches_per_s"),
            r["paper"]["hours_at_measured_rate"],
        ]
        for r in results
    ]
    return format_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--small``: the tiny net, short budgets)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--configs",
        nargs="+",
        choices=("paper", "cpu", "tiny"),
        help="nets (default paper cpu)",
    )
    p.add_argument(
        "--batch-size", type=int, help="training batch (default: the preset's, 128)"
    )
    p.add_argument(
        "--predict-batch-size",
        type=int,
        help="inference batch (default: the preset's, 512)",
    )
    p.add_argument(
        "--seconds", type=float, help="time budget per measurement (default 10)"
    )
    p.add_argument(
        "--mixed-precision", action="store_true", help="mixed_bfloat16 policy"
    )
    p.add_argument("--no-crop", action="store_true", help="skip the cropping rate")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument(
        "--small", action="store_true", help="tiny net, short budget (tests)"
    )
    args = p.parse_args(argv)
    if args.small:
        args.configs = args.configs or ["tiny"]
        args.seconds = args.seconds if args.seconds is not None else 0.5
        args.batch_size = args.batch_size or 32
        args.predict_batch_size = args.predict_batch_size or 64
    args.configs = args.configs or ["paper", "cpu"]
    args.seconds = args.seconds if args.seconds is not None else 10.0
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the paper comparison, write ``--json``."""
    args = parse_args(argv)
    start = time.perf_counter()
    results = [
        bench_config(
            preset,
            batch_size=args.batch_size,
            predict_batch_size=args.predict_batch_size,
            seconds=args.seconds,
            mixed_precision=args.mixed_precision,
            crop=not args.no_crop,
        )
        for preset in args.configs
    ]
    doc = {
        "benchmark": "bench_convnet",
        "machine": machine_info(),
        "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        },
        "results": results,
        "total_s": round(time.perf_counter() - start, 2),
    }
    m = doc["machine"]
    print(
        f"\nConvNet throughput, Keras {m['keras']} on {m['keras_backend']}; "
        f"GPU: {', '.join(m['gpus']) or 'none'}; {m['cpu_model']}, "
        f"{m['cpu_count_logical']} CPUs; load average {m.get('load_average_1_5_15')}\n"
    )
    print(results_table(results))
    for r in results:
        pc = r["paper"]
        err = r["mixed_precision_error"]
        print(
            f"\n{r['preset']}: {pc['train_patches']:,} patches x {pc['epochs']} epochs "
            f"at {r['training']['patches_per_s']:,.0f} augmented patches/s = "
            f"{pc['hours_at_measured_rate']:,.1f} h (paper: {pc['paper_hours']:.0f} h "
            f"on a {pc['paper_gpu']}, {pc['paper_patches_per_s']:,.0f} patches/s; "
            f"x{pc['speedup_vs_paper']:.3g})"
            + (f"\n  mixed precision not used: {err}" if err else "")
        )
    write_json(args.json, doc)
    return doc


if __name__ == "__main__":
    main()
