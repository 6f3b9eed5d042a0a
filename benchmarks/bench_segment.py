"""Time each stage of segmenting one phantom CT, read to written, and its memory.

For each slice count a phantom abdomen CT of ``size x size x slices`` voxels
is written to ``.nii.gz``; then, with a fitted pipeline, the script times the
NIfTI read, every transformer step (SuperpixelGenerator, RFCascade,
SuperpixelConvNet: candidates, patches = candidates x scales, patches/s), the
GaussianRefiner (paint, 3D smoothing, threshold) and the NIfTI write, and
then the whole :func:`pancreas.cohort.segment_cohort` (what ``pancreas
segment`` runs) on the same file. Peak RSS is sampled every 50 ms (psutil)
and read from ``getrusage``. Without ``--model`` a pipeline is trained first,
quickly (1 epoch, on small phantoms): its speed, not its accuracy, matters.
The phantom's field of view is fixed (about 130-200 mm along z), so more
slices means thinner slices of the same patient.

Usage::

    python benchmarks/bench_segment.py --slices 100 200 400 --json seg.json
    python benchmarks/bench_segment.py --model models/cpu --n-jobs 2
    python benchmarks/bench_segment.py --slices 200 --save-model models/bench
    python benchmarks/bench_segment.py --model models/bench --slices 50 100
    python benchmarks/bench_segment.py --model models/bench \
        --set superpixels__working_spacing=1.5 superpixels__backend=opencv
    python benchmarks/bench_segment.py --small          # seconds, for the tests
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _bench_utils import (
    PeakRSS,
    Timer,
    format_table,
    machine_info,
    parse_set,
    quiet_warnings,
    write_json,
)

#: Options that ``--small`` changes (tiny volumes, tiny net): for the tests.
SMALL = {
    "size": 64,
    "slices": [8, 16],
    "preset": "tiny",
    "train_shape": [48, 48, 12],
    "n_train": 2,
}
DEFAULTS = {
    "size": 512,
    "slices": [100, 200, 400],
    "preset": "cpu",
    "train_shape": [128, 128, 32],
    "n_train": 3,
}


# ----------------------------------------------------------------- the model
def set_n_jobs(pipeline: Any, n_jobs: int | None) -> None:
    """Set ``n_jobs`` on every step that has it (slices, trees, crop threads)."""
    for _, est in pipeline.steps:
        if "n_jobs" in est.get_params(deep=False):
            est.set_params(n_jobs=n_jobs)


def train_quick_pipeline(
    preset: str = "cpu",
    *,
    n_train: int = 3,
    shape: tuple[int, int, int] = (128, 128, 32),
    epochs: int = 1,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> Any:
    """Fit ``make_roth2015_pipeline(preset)`` fast: few small phantoms, 1 epoch.

    The ConvNet has the preset's architecture (so its inference speed is the
    preset's) but sees each patch once (``n_deformations=1``).
    """
    from pancreas.phantom import make_phantom_cohort
    from pancreas.pipeline import make_roth2015_pipeline

    cts, labels = make_phantom_cohort(
        n_train, shape=tuple(shape), random_state=random_state, n_jobs=n_jobs
    )
    pipe = make_roth2015_pipeline(
        preset=preset, random_state=random_state, n_jobs=n_jobs
    )
    pipe.set_params(convnet__epochs=epochs, convnet__n_deformations=1)
    return pipe.fit(cts, labels)


def _train_quick_and_save(args: argparse.Namespace, path: str) -> None:
    save_model(
        train_quick_pipeline(
            args.preset,
            n_train=args.n_train,
            shape=tuple(args.train_shape),
            epochs=args.train_epochs,
            random_state=args.seed,
            n_jobs=args.n_jobs,
        ),
        path,
    )


def _train_in_child(args: argparse.Namespace) -> Any:
    """Train the quick model in a child process and load it here.

    Segmenting in the process that trained a Keras model measured 1.3-1.7x
    slower on this 2-core machine than with the same model loaded from disk
    (512 x 512 x 200: 37 s vs 22-30 s), so nothing is trained in the timed
    process.
    """
    import multiprocessing
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model")
        child = multiprocessing.get_context("spawn").Process(
            target=_train_quick_and_save, args=(args, path)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"training the quick model failed ({child.exitcode})")
        return load_model(path)


def load_model(path: str | os.PathLike[str]) -> Any:
    """A fitted pipeline from a model directory written by ``save_pipeline``.

    Pickles (``.joblib``, ``.pkl``) are not loaded: unpickling can run code.
    """
    from pancreas.persistence import load_pipeline

    return load_pipeline(path)


def save_model(pipeline: Any, path: str | os.PathLike[str]) -> Path:
    """Save as a ``save_pipeline`` model directory (replacing one there)."""
    from pancreas.persistence import save_pipeline

    return save_pipeline(pipeline, path, overwrite=True)


def convnet_step(pipeline: Any) -> tuple[str, Any] | None:
    """The (name, estimator) of the ConvNet step (the one with a Keras model)."""
    for name, est in pipeline.steps:
        if hasattr(est, "model_"):
            return name, est
    return None


def model_summary(pipeline: Any) -> dict[str, Any]:
    """Steps and ConvNet parameters of a fitted pipeline, for the JSON."""
    out: dict[str, Any] = {
        "steps": [f"{name}:{type(est).__name__}" for name, est in pipeline.steps]
    }
    found = convnet_step(pipeline)
    if found is not None:
        net = found[1]
        out["convnet"] = {
            "patch_size": int(net.patch_size),
            "filters": [int(f) for f in net.filters],
            "dense_units": [int(u) for u in net.dense_units],
            "scales": [float(s) for s in net.scales_],
            "predict_batch_size": int(net.predict_batch_size),
            "n_parameters": int(net.model_.count_params()),
        }
    return out


def predict_batch_shapes(net: Any, n_patches: int | None = None) -> list[int]:
    """Batch sizes ``SuperpixelConvNet.transform`` gives the model.

    It predicts in chunks of ``predict_batch_size`` and pads the last chunk
    to a power of two: for ``n_patches`` patches that is at most two shapes;
    for None, every shape it can use.
    """
    step = int(net.predict_batch_size)
    if n_patches is None:
        return sorted({min(step, 1 << k) for k in range(step.bit_length() + 1)})
    sizes = {step} if n_patches >= step else set()
    rest = n_patches % step
    if rest:
        sizes.add(min(step, 1 << (rest - 1).bit_length()))
    return sorted(sizes)


_WARMED: set[tuple[int, int]] = set()


def warm_up_convnet(pipeline: Any, n_patches: int | None = None) -> float:
    """Run the ConvNet once on zeros for each batch shape it will see.

    A JIT backend (JAX; TensorFlow's ``tf.function``) compiles once per
    input shape; warming up the shapes of :func:`predict_batch_shapes` keeps
    compilation out of the timed stages, as for every case after the first
    in a cohort. Shapes already warmed are skipped. Returns the seconds.
    """
    found = convnet_step(pipeline)
    if found is None:
        return 0.0
    net = found[1]
    with Timer() as t:
        for n in predict_batch_shapes(net, n_patches):
            if (id(net.model_), n) not in _WARMED:
                x = np.zeros((n, net.patch_size, net.patch_size, 1), np.float32)
                net.model_.predict_on_batch(x)
                _WARMED.add((id(net.model_), n))
    return t.seconds


# ----------------------------------------------------------------- the timing
def write_phantom(
    path: str | os.PathLike[str],
    *,
    size: int = 512,
    slices: int = 200,
    random_state: int = 1000,
) -> dict[str, Any]:
    """Write a ``size x size x slices`` phantom CT to ``path`` (NIfTI).

    The same ``random_state`` gives the same patient at every grid (the
    anatomy is drawn in mm, then rendered), so sizes differ only in slices.
    """
    from pancreas.io import save_volume
    from pancreas.phantom import make_synthetic_ct

    with Timer() as t:
        ct, _ = make_synthetic_ct(shape=(size, size, slices), random_state=random_state)
        save_volume(ct, path)
    return {
        "shape": list(ct.shape),
        "spacing_mm": [round(float(s), 4) for s in ct.spacing],
        "file_mb": round(Path(path).stat().st_size / 1024**2, 2),
        "phantom_s": round(t.seconds, 2),
    }


def time_stages(
    pipeline: Any,
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    proba: bool = False,
    warmup: bool = True,
) -> dict[str, Any]:
    """Run the segment of one NIfTI file step by step, timing each step.

    Same work as ``segment_cohort`` does for one case: read, every
    transformer step, the refiner's ``predict_with_proba``, write the mask
    (and the probability map with ``proba``). Returns the seconds per stage
    (keys ``read``, the step names, ``refine``, ``write``, ``total``), the
    superpixel, candidate and patch counts, and ``convnet_warmup_s``: the
    untimed compile of the ConvNet's batch shapes before its stage
    (``warmup``; without it the compile is in the ConvNet stage).
    """
    from pancreas.io import Volume, load_volume, save_volume

    out_dir = Path(out_dir)
    stages: dict[str, float] = {}
    with Timer() as t:
        volume = load_volume(path)
    stages["read"] = t.seconds
    records: Any = [Volume(volume.array, volume.affine, "bench")]
    warmup_s = 0.0
    for name, est in pipeline.steps[:-1]:
        if warmup and hasattr(est, "model_") and records[0].candidates is not None:
            n_patches = len(records[0].candidates) * len(est.scales_)
            warmup_s += warm_up_convnet(pipeline, n_patches)  # untimed
        with Timer() as t:
            records = est.transform(records)
        stages[name] = t.seconds
    refiner = pipeline.steps[-1][1]
    with Timer() as t:
        mask, prob = refiner.predict_with_proba(records)[0]
    stages["refine"] = t.seconds
    with Timer() as t:
        if proba:
            save_volume(
                prob, out_dir / "bench_proba.nii.gz", reference=volume, dtype=np.float32
            )
        save_volume(mask, out_dir / "bench.nii.gz", reference=volume, dtype=np.uint8)
    stages["write"] = t.seconds
    stages["total"] = sum(stages.values())

    rec = records[0]
    counts: dict[str, Any] = {
        "n_superpixels": int(rec.n_superpixels)
        if rec.superpixels is not None
        else None,
        "n_candidates": None if rec.candidates is None else len(rec.candidates),
        "n_scales": None,
        "n_patches": None,
        "patches_per_s": None,
        "mask_voxels": int(np.count_nonzero(mask)),
        "convnet_warmup_s": round(warmup_s, 3),
    }
    found = convnet_step(pipeline)
    if found is not None and rec.convnet_proba is not None:
        n_scales = int(np.shape(rec.convnet_proba)[1])
        n_patches = counts["n_candidates"] * n_scales
        counts.update(
            n_scales=n_scales,
            n_patches=n_patches,
            patches_per_s=n_patches / max(stages[found[0]], 1e-9),
        )
    return {"stages_s": stages, **counts}


def time_segment_cohort(
    pipeline: Any,
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    proba: bool = False,
) -> float:
    """Seconds of ``segment_cohort(pipeline, [path], out_dir)``, end to end."""
    from pancreas.cohort import segment_cohort

    with Timer() as t:
        result = segment_cohort(pipeline, [path], out_dir, proba=proba, overwrite=True)
    if not result.ok:
        raise RuntimeError(f"segment_cohort failed: {result.failed}")
    return t.seconds


def bench_volume(
    pipeline: Any,
    *,
    size: int,
    slices: int,
    workdir: str | os.PathLike[str],
    random_state: int = 1000,
    proba: bool = False,
    warmup: bool = True,
    memory: PeakRSS | None = None,
    stages: bool = True,
) -> dict[str, Any]:
    """Write one phantom, time its stages, then ``segment_cohort``; with peaks.

    ``stages=False`` times ``segment_cohort`` only (for the largest volumes,
    where the stage-by-stage run would double the time).

    ``memory`` (a running :class:`PeakRSS`) gives the peak RSS of the
    stage-by-stage run and of ``segment_cohort`` separately (after the
    phantom is written and freed).
    """
    workdir = Path(workdir)
    path = workdir / f"phantom_{size}x{size}x{slices}.nii.gz"
    result: dict[str, Any] = {"size": size, "slices": slices}
    result.update(
        write_phantom(path, size=size, slices=slices, random_state=random_state)
    )
    gc.collect()
    if memory is not None:
        memory.window()
        result["rss_before_mb"] = round(memory.sample() / 1024**2, 1)
    if stages:
        stage_dir = workdir / f"stages_{slices}"
        stage_dir.mkdir(exist_ok=True)
        result.update(
            time_stages(pipeline, path, stage_dir, proba=proba, warmup=warmup)
        )
        gc.collect()
        if memory is not None:
            result["peak_rss_stages_mb"] = memory.window()
    result["segment_cohort_s"] = time_segment_cohort(
        pipeline, path, workdir / f"segment_{slices}", proba=proba
    )
    if memory is not None:
        result["peak_rss_segment_cohort_mb"] = memory.window()
    path.unlink()
    return result


def scaling(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Least-squares ``seconds = intercept + slope * slices`` for each stage.

    Linear scaling shows as a small intercept and a constant slope (seconds
    per 100 slices); needs two or more sizes.
    """
    if len({r["slices"] for r in results}) < 2:
        return {}
    n = np.array([r["slices"] for r in results], float)
    out = {}
    keys = [*results[0].get("stages_s", {}), "segment_cohort"]
    for key in keys:
        s = np.array(
            [
                r["segment_cohort_s"] if key == "segment_cohort" else r["stages_s"][key]
                for r in results
            ]
        )
        slope, intercept = np.polyfit(n, s, 1)
        out[key] = {
            "s_per_100_slices": round(float(slope) * 100, 4),
            "intercept_s": round(float(intercept), 4),
        }
    return out


def results_table(results: list[dict[str, Any]]) -> str:
    """Stage x size table of seconds, then counts and memory."""
    header = ["stage (s)", *(f"{r['size']}x{r['size']}x{r['slices']}" for r in results)]
    rows = []
    for key in results[0].get("stages_s", {}):
        label = "sum of stages" if key == "total" else key
        rows.append([label, *(r.get("stages_s", {}).get(key) for r in results)])
    rows.append(
        ["segment_cohort (end to end)", *(r["segment_cohort_s"] for r in results)]
    )
    for key, label in [
        ("n_superpixels", "n superpixels"),
        ("n_candidates", "n candidates"),
        ("n_patches", "n patches (cand. x scales)"),
        ("patches_per_s", "ConvNet stage patches/s"),
        ("convnet_warmup_s", "ConvNet compile, untimed (s)"),
        ("peak_rss_stages_mb", "peak RSS stages (MB)"),
        ("peak_rss_segment_cohort_mb", "peak RSS segment_cohort (MB)"),
    ]:
        rows.append([label, *(r.get(key) for r in results)])
    return format_table(header, rows)


# ----------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--small`` fills in tiny defaults)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--slices", type=int, nargs="+", help="slice counts (default 100 200 400)"
    )
    p.add_argument("--size", type=int, help="in-plane size (default 512)")
    p.add_argument(
        "--preset",
        choices=("paper", "cpu", "tiny"),
        help="preset to train (default cpu)",
    )
    p.add_argument("--model", type=Path, help="fitted pipeline: a model directory")
    p.add_argument(
        "--save-model",
        type=Path,
        help="save the trained pipeline here (a model directory)",
    )
    p.add_argument("--train-shape", type=int, nargs=3, help="phantom grid to train on")
    p.add_argument("--n-train", type=int, help="phantoms to train on")
    p.add_argument("--train-epochs", type=int, default=1)
    p.add_argument(
        "--n-jobs", type=int, default=-1, help="threads per step (default all)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--proba", action="store_true", help="also write the probability map"
    )
    p.add_argument(
        "--no-warmup", action="store_true", help="time the ConvNet's compile too"
    )
    p.add_argument(
        "--workdir", type=Path, help="where the phantoms go (default: a temp dir)"
    )
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="PARAM=JSON",
        help="pipeline parameters to change before segmenting, e.g. "
        "superpixels__backend=opencv cascade__map_spacing=null",
    )
    p.add_argument(
        "--segment-only",
        action="store_true",
        help="time segment_cohort only, not each stage (largest volumes)",
    )
    p.add_argument(
        "--small", action="store_true", help="tiny sizes and net (for the tests)"
    )
    args = p.parse_args(argv)
    for key, value in (SMALL if args.small else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def prepare_pipeline(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Load ``--model`` or train one quickly; set ``n_jobs``."""
    info: dict[str, Any] = {}
    with Timer() as t:
        if args.model is not None:
            pipeline = load_model(args.model)
            info["source"] = str(args.model)
        else:
            pipeline = _train_in_child(args)
            info["source"] = (
                f"trained: preset {args.preset!r}, {args.n_train} phantoms "
                f"{tuple(args.train_shape)}, {args.train_epochs} epoch(s)"
            )
    info["load_or_train_s"] = round(t.seconds, 2)
    if args.model is None and args.save_model is not None:
        info["saved_to"] = str(save_model(pipeline, args.save_model))
    set_n_jobs(pipeline, args.n_jobs)
    if args.set:
        pipeline.set_params(**parse_set(args.set))
        info["set"] = list(args.set)
    info.update(model_summary(pipeline))
    return pipeline, info


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``main`` does but printing; returns the JSON document."""
    from joblib import effective_n_jobs

    quiet_warnings()
    start = time.perf_counter()
    with PeakRSS(0.05) as memory:
        pipeline, model = prepare_pipeline(args)
        results = []
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            for slices in args.slices:
                results.append(
                    bench_volume(
                        pipeline,
                        size=args.size,
                        slices=slices,
                        workdir=tmp,
                        random_state=args.seed + 1000,
                        proba=args.proba,
                        warmup=not args.no_warmup,
                        memory=memory,
                        stages=not args.segment_only,
                    )
                )
                stage_total = results[-1].get("stages_s", {}).get("total")
                print(
                    f"  {args.size}x{args.size}x{slices}: stages "
                    f"{'-' if stage_total is None else f'{stage_total:.2f} s'}, "
                    f"segment_cohort {results[-1]['segment_cohort_s']:.2f} s",
                    file=sys.stderr,
                )
    return {
        "benchmark": "bench_segment",
        "machine": machine_info(),
        "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        },
        "n_jobs_effective": effective_n_jobs(args.n_jobs),
        "model": model,
        "results": results,
        "scaling": scaling(results),
        "peak_rss_mb": memory.peak_mb(),
        "ru_maxrss_mb": PeakRSS.ru_maxrss_mb(),
        "total_s": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write ``--json``."""
    args = parse_args(argv)
    doc = run(args)
    m, model = doc["machine"], doc["model"]
    gpus = ", ".join(m["gpus"]) or "none"
    print(
        f"\nSegment of one phantom, read to written; model: {model['source']}; "
        f"n_jobs={doc['n_jobs_effective']}\n"
        f"{m['cpu_model']}, {m['cpu_count_logical']} CPUs, {m['ram_gb']} GB RAM, "
        f"Keras {m['keras']} on {m['keras_backend']}, GPU: {gpus}; "
        f"load average {m.get('load_average_1_5_15')}\n"
    )
    print(results_table(doc["results"]))
    if doc["scaling"]:
        sc = doc["scaling"]
        print(
            "\nLinear fit over slices: "
            + ", ".join(
                f"{k} {v['s_per_100_slices']:.3g} s/100 slices "
                f"(+{v['intercept_s']:.2g} s)"
                for k, v in sc.items()
                if k in ("total", "segment_cohort")
            )
        )
    print(
        f"\nPeak RSS (sampled, whole run incl. phantom generation/training): "
        f"{doc['peak_rss_mb']} MB; getrusage ru_maxrss: {doc['ru_maxrss_mb']} MB; "
        f"total {doc['total_s']} s"
    )
    write_json(args.json, doc)
    return doc


if __name__ == "__main__":
    main()
