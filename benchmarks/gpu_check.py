"""One-shot check of a GPU machine with JAX or PyTorch and no TensorFlow.

Prints the device, measures the paper ConvNet's inference patches/s and
augmented training patches/s (:mod:`bench_convnet`), then segments one
512 x 512 x 200 phantom CT read to written, stage by stage and through
``segment_cohort`` (:mod:`bench_segment`), and prints each measurement beside
its target: segment <= 3 s, inference >= 250,000 patches/s, training >=
60,000 augmented patches/s.

TensorFlow is never imported: unless ``KERAS_BACKEND`` is ``tensorflow``
(default here: ``jax``), any attempt to import it raises
``ModuleNotFoundError``, as on a machine without it, and is reported with the
code that tried (exit status 3 if pancreas or these scripts tried).

Usage::

    KERAS_BACKEND=jax python benchmarks/gpu_check.py --json gpu.json
    KERAS_BACKEND=torch python benchmarks/gpu_check.py --model models/paper
    KERAS_BACKEND=jax python benchmarks/gpu_check.py --small   # CPU, seconds
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import traceback
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class TensorFlowBlocker(importlib.abc.MetaPathFinder):
    """A meta-path finder that makes ``import tensorflow`` fail, and logs who tried."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        """Refuse ``tensorflow`` and its submodules; defer everything else."""
        if fullname != "tensorflow" and not fullname.startswith("tensorflow."):
            return None
        frames = [
            f"{f.filename}:{f.lineno} in {f.name}"
            for f in traceback.extract_stack()[:-1]
            if not f.filename.startswith("<frozen") and "importlib" not in f.filename
        ]
        self.attempts.append(
            {
                "module": fullname,
                "importer": frames[-1] if frames else "?",
                "stack": frames[-10:],
            }
        )
        raise ModuleNotFoundError(
            f"No module named {fullname!r} (blocked by gpu_check.py: the GPU machine "
            "has no TensorFlow)",
            name=fullname,
        )


BLOCKER = TensorFlowBlocker()
if os.environ["KERAS_BACKEND"] != "tensorflow":
    sys.meta_path.insert(0, BLOCKER)

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import bench_convnet  # noqa: E402
import bench_segment  # noqa: E402
import precision_check  # noqa: E402
from _bench_utils import format_table, machine_info, write_json  # noqa: E402

#: (key, label, target, "<=" or ">=")
TARGETS = [
    ("segment_s", "segment 512x512x200, read to written (s)", 3.0, "<="),
    ("inference_patches_per_s", "ConvNet inference (patches/s)", 250_000.0, ">="),
    (
        "training_patches_per_s",
        "ConvNet training, TPS-augmented (patches/s)",
        60_000.0,
        ">=",
    ),
]


def device_info() -> dict[str, Any]:
    """The accelerator as the Keras backend's library sees it."""
    import keras

    backend = keras.backend.backend()
    info: dict[str, Any] = {"keras_backend": backend}
    try:
        if backend == "jax":
            import jax

            info.update(
                jax=jax.__version__,
                default_backend=jax.default_backend(),
                devices=[str(d) for d in jax.devices()],
            )
        elif backend == "torch":
            import torch

            cuda = torch.cuda.is_available()
            info.update(
                torch=torch.__version__,
                cuda_available=cuda,
                cuda_version=torch.version.cuda,
                devices=[
                    torch.cuda.get_device_name(i)
                    for i in range(torch.cuda.device_count())
                ]
                if cuda
                else ["cpu"],
            )
        elif backend == "tensorflow":
            import tensorflow as tf

            info.update(
                tensorflow=tf.__version__,
                devices=[d.name for d in tf.config.list_physical_devices()],
            )
    except Exception as exc:  # describe, do not fail
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def accelerator_vs_cpu(preset: str, n_patches: int = 512) -> dict[str, Any]:
    """How far the accelerator's ConvNet outputs are from the CPU's (JAX only).

    One model with fixed weights predicts the same random patches on the
    default device and on the CPU; reports the largest absolute difference of
    the pancreas probability and the share of patches whose 0.5 decision
    flips, and the same for the CPU emulation of TensorFloat-32 in
    ``precision_check.py`` (close to the accelerator where it computes in
    TF32). On a CPU-only machine both runs are on the CPU (difference 0).
    """
    import keras

    if keras.backend.backend() != "jax":
        return {"compared": False, "why": "only measured with the jax backend"}
    import jax
    import numpy as np

    model = bench_convnet.build_model(bench_convnet.net_config(preset), seed=0)
    size = int(model.input_shape[1])
    x = np.random.default_rng(1).random((n_patches, size, size, 1), dtype=np.float32)
    on_default = np.asarray(model.predict_on_batch(x))[:, 1]
    with jax.default_device(jax.devices("cpu")[0]):
        on_cpu = np.asarray(model.predict_on_batch(x))[:, 1]
        emulated = precision_check.TF32Network(model).predict_on_batch(x)[:, 1]
    return {
        "compared": True,
        "default_device": str(jax.devices()[0]),
        "max_abs_diff": float(np.max(np.abs(on_default - on_cpu))),
        "decisions_flipped": float(np.mean((on_default > 0.5) != (on_cpu > 0.5))),
        # how well benchmarks/precision_check.py's CPU emulation of TF32
        # predicts the accelerator (near 0 on a TF32 GPU, = max_abs_diff of
        # the emulation itself on a CPU)
        "max_abs_diff_to_tf32_emulation": float(np.max(np.abs(on_default - emulated))),
        "tf32_emulation_vs_cpu": float(np.max(np.abs(emulated - on_cpu))),
        "n_patches": n_patches,
    }


def tensorflow_report() -> dict[str, Any]:
    """Attempts to import TensorFlow, and those from pancreas or these scripts."""
    here = os.path.dirname(os.path.abspath(__file__))
    ours = [
        a
        for a in BLOCKER.attempts
        if f"{os.sep}pancreas{os.sep}" in a["importer"]
        or a["importer"].startswith(here)
    ]
    return {
        "blocked": BLOCKER in sys.meta_path,
        "imported": any(
            m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules
        ),
        "attempts": BLOCKER.attempts,
        "attempts_from_pancreas_or_benchmarks": ours,
    }


def check_targets(measured: dict[str, float]) -> list[dict[str, Any]]:
    """Each target with its measurement and whether it is met."""
    rows = []
    for key, label, target, op in TARGETS:
        value = measured.get(key)
        met = (
            None
            if value is None
            else (value <= target if op == "<=" else value >= target)
        )
        rows.append(
            {
                "key": key,
                "label": label,
                "measured": value,
                "target": f"{op} {target:,.0f}",
                "met": met,
            }
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--small``: tiny net and volume, for the CPU test)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--small", action="store_true", help="tiny net and volume (CPU test)"
    )
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--size", type=int, help="in-plane size (default 512)")
    p.add_argument(
        "--slices", type=int, help="slices of the segmented volume (default 200)"
    )
    p.add_argument(
        "--preset",
        choices=("paper", "cpu", "tiny"),
        help="net and model preset (default paper)",
    )
    p.add_argument("--model", type=Path, help="fitted pipeline (a model directory)")
    p.add_argument(
        "--seconds", type=float, help="budget per throughput measurement (default 10)"
    )
    p.add_argument("--batch-size", type=int, help="training batch (default 128)")
    p.add_argument(
        "--predict-batch-size", type=int, help="inference batch (default 512)"
    )
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_bfloat16 for the throughput",
    )
    p.add_argument(
        "--n-jobs", type=int, default=-1, help="CPU threads per pipeline step"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Device, ConvNet throughput and one full segment; returns the JSON document."""
    preset = args.preset or ("tiny" if args.small else "paper")
    device = device_info()
    print(f"device: {device}", flush=True)

    conv = bench_convnet.bench_config(
        preset,
        batch_size=args.batch_size or (32 if args.small else None),
        predict_batch_size=args.predict_batch_size or (64 if args.small else None),
        seconds=args.seconds
        if args.seconds is not None
        else (0.5 if args.small else 10.0),
        mixed_precision=args.mixed_precision,
    )
    print(bench_convnet.results_table([conv]), flush=True)

    seg_argv = ["--small"] if args.small else []
    seg_argv += ["--preset", preset, "--n-jobs", str(args.n_jobs)]
    if args.size:
        seg_argv += ["--size", str(args.size)]
    seg_argv += ["--slices", str(args.slices or (16 if args.small else 200))]
    if args.model is not None:
        seg_argv += ["--model", str(args.model)]
    seg = bench_segment.run(bench_segment.parse_args(seg_argv))
    print(bench_segment.results_table(seg["results"]), flush=True)

    versus_cpu = accelerator_vs_cpu(preset, 64 if args.small else 512)
    print(f"accelerator vs CPU outputs: {versus_cpu}", flush=True)

    one = seg["results"][0]
    measured = {
        "segment_s": one["segment_cohort_s"],
        "inference_patches_per_s": conv["inference"]["patches_per_s"],
        "training_patches_per_s": conv["training"]["patches_per_s"],
    }
    return {
        "benchmark": "gpu_check",
        "small": bool(args.small),
        "device": device,
        "machine": machine_info(),
        "convnet": conv,
        "segment": seg,
        "measured": measured,
        "targets": check_targets(measured),
        "accelerator_vs_cpu": versus_cpu,
        "tensorflow": tensorflow_report(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the check, print the targets table, write ``--json``; the exit status."""
    args = parse_args(argv)
    doc = run(args)
    one = doc["segment"]["results"][0]
    shape = "x".join(str(s) for s in one["shape"])
    note = " (--small: sizes differ, targets not comparable)" if args.small else ""
    print(
        f"\n{doc['device'].get('devices')} via Keras {doc['machine']['keras']} on "
        f"{doc['device']['keras_backend']}; net {doc['convnet']['preset']!r} "
        f"({doc['convnet']['dtype_policy']}); segmented {shape}{note}\n"
    )
    rows = []
    for t in doc["targets"]:
        label = t["label"].replace("512x512x200", shape)
        met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
        rows.append([label, t["measured"], t["target"], met])
    print(format_table(["check", "measured", "target", "met"], rows))
    tf = doc["tensorflow"]
    print(
        f"\nTensorFlow: blocked={tf['blocked']}, imported={tf['imported']}, "
        f"{len(tf['attempts'])} import attempt(s), "
        f"{len(tf['attempts_from_pancreas_or_benchmarks'])} from pancreas/benchmarks"
    )
    for a in tf["attempts"]:
        print(f"  import {a['module']} from {a['importer']}")
    write_json(args.json, doc)
    if tf["attempts_from_pancreas_or_benchmarks"]:
        return 3
    if args.strict and not all(t["met"] for t in doc["targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
