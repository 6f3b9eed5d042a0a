"""Time SuperpixelGenerator's two SLIC backends, scikit-image and OpenCV.

Three measurements, each backend side by side in the same run:

1. per slice: one 512 x 512 phantom slice through the pancreas, cropped to the
   body, windowed and cut into superpixels (what ``transform`` does per
   slice), one thread (OpenCV's pool set to 1, as with parallel slices);
2. ``SuperpixelGenerator.transform`` of a 512 x 512 x ``--slices`` phantom with
   ``n_jobs=--n-jobs`` (slices in parallel, OpenCV on one thread per worker);
3. the Optimal Dice (majority vote of the superpixels) on ``--cases`` phantom
   cases of another seed (no stage is trained on them), with the superpixel
   density.

Timings are repeated ``--repeats`` times: the median and the min-max spread
are printed, since a shared machine is noisy. Needs ``pip install
pancreas[fast]`` for the OpenCV backend.

Usage::

    python benchmarks/bench_slic.py
    python benchmarks/bench_slic.py --slices 40 --cases 3 --repeats 5 --n-jobs 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _bench_utils import quiet_warnings

from pancreas.io import Volume
from pancreas.phantom import make_phantom_cohort
from pancreas.superpixels import (
    SuperpixelGenerator,
    _slice_superpixels,
    body_mask,
)

BACKENDS = ("skimage", "opencv")


def _spread(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):7.3f} s  "
        f"(min {min(times):.3f}, max {max(times):.3f}, n={len(times)})"
    )


def _pancreas_slab(
    n_cases: int, n_slices: int, seed: int
) -> tuple[list[Volume], list[Any]]:
    return make_phantom_cohort(n_cases, shape=(512, 512, n_slices), random_state=seed)


def bench_slice(repeats: int) -> None:
    import cv2

    cts, labels = _pancreas_slab(1, 40, seed=11)
    hu = np.asarray(cts[0].array)
    lab = np.asarray(labels[0].array)
    k = int(np.argmax(lab.sum(axis=(0, 1))))  # the slice with most pancreas
    mask = body_mask(hu)[:, :, k]
    spacing = (float(cts[0].spacing[0]), float(cts[0].spacing[1]))
    est = SuperpixelGenerator()
    options = {
        "superpixel_area": est.superpixel_area,
        "compactness": est.compactness,
        "hu_window": est.hu_window,
        "sigma": est.sigma,
        "max_num_iter": est.max_num_iter,
    }
    print(
        f"\n1. one 512 x 512 slice ({spacing[0]:.2f} mm pixels, body "
        f"{mask.sum() * spacing[0] * spacing[1] / 100:.0f} cm^2), one thread"
    )
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    medians = {}
    try:
        for backend in BACKENDS:
            _, _, n = _slice_superpixels(
                hu[:, :, k], mask, spacing, backend=backend, **options
            )
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                _slice_superpixels(
                    hu[:, :, k], mask, spacing, backend=backend, **options
                )
                times.append(time.perf_counter() - t0)
            medians[backend] = statistics.median(times)
            print(f"   {backend:8s} {n:5d} superpixels  {_spread(times)}")
    finally:
        cv2.setNumThreads(before)
    print(f"   opencv / skimage: {medians['opencv'] / medians['skimage']:.2f}x")


def bench_transform(n_slices: int, n_jobs: int, repeats: int) -> None:
    cts, _ = _pancreas_slab(1, n_slices, seed=12)
    print(
        f"\n2. SuperpixelGenerator.transform, 512 x 512 x {n_slices}, "
        f"n_jobs={n_jobs}"
    )
    medians = {}
    for backend in BACKENDS:
        est = SuperpixelGenerator(backend=backend, n_jobs=n_jobs).fit(None)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rec = est.transform(cts)[0]
            times.append(time.perf_counter() - t0)
        medians[backend] = statistics.median(times)
        print(f"   {backend:8s} {rec.n_superpixels:6d} superpixels  {_spread(times)}")
    print(f"   opencv / skimage: {medians['opencv'] / medians['skimage']:.2f}x")


def bench_quality(n_cases: int, n_slices: int, n_jobs: int) -> None:
    cts, labels = _pancreas_slab(n_cases, n_slices, seed=2015)
    print(
        f"\n3. Optimal Dice on {n_cases} held-out phantom cases "
        f"(512 x 512 x {n_slices}, seed 2015)"
    )
    for backend in BACKENDS:
        est = SuperpixelGenerator(backend=backend, n_jobs=n_jobs).fit(None)
        recs = est.transform(cts)
        dice = est.optimal_dice(recs, labels)
        density = [
            r.n_superpixels / (r.body_mask.sum() * r.spacing[0] * r.spacing[1] / 100)
            for r in recs
        ]
        print(
            f"   {backend:8s} Optimal Dice {dice.mean():.4f} "
            f"(per case {np.array2string(dice, precision=4)}), "
            f"{np.mean(density):.2f} superpixels per cm^2"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    quiet_warnings()
    try:
        SuperpixelGenerator(backend="opencv").fit(None)
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    bench_slice(args.repeats)
    bench_transform(args.slices, args.n_jobs, args.repeats)
    bench_quality(args.cases, args.slices, args.n_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
