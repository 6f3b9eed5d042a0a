"""What the in-plane working grid costs in accuracy, without and with a model.

On the held-out phantoms of ``reproduce_table.py`` (the same cohort: the
cases ``--first`` onwards of ``--n-cohort`` phantoms with ``--seed``):

* the Optimal Dice of the superpixels, on the scan's own grid, for SLIC on
  the scan's grid and on the working grid (``--working-spacing``), by
  superpixel area and SLIC implementation (OpenCV's when installed); no
  training;
* for each ``--model`` (model directories, for example those that
  ``reproduce_table.py`` saves), the stage table's means with the model's own
  grid and with the other one (a model trained on the scan's grid run on the
  working grid, and the reverse).

Usage::

    python benchmarks/bench_working_grid.py
    python benchmarks/bench_working_grid.py \\
        --models benchmarks/results/model_cpu benchmarks/results/model_cpu_ws15
    python benchmarks/bench_working_grid.py --small      # seconds, for the tests
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from _bench_utils import machine_info, write_json  # noqa: E402

from pancreas.phantom import make_phantom_cohort  # noqa: E402
from pancreas.superpixels import SuperpixelGenerator  # noqa: E402


def optimal_dice(images, labels, working_spacing, area, backend, n_jobs) -> dict:
    """Mean Optimal Dice (scan's grid) and superpixel count of one configuration."""
    gen = SuperpixelGenerator(
        working_spacing=working_spacing,
        superpixel_area=area,
        backend=backend,
        n_jobs=n_jobs,
    ).fit()
    records = gen.transform(images)
    dice = gen.optimal_dice(records, labels)
    return {
        "working_spacing": working_spacing,
        "superpixel_area": area,
        "backend": backend,
        "optimal_dice": round(float(dice.mean()), 4),
        "n_superpixels": int(np.mean([r.n_superpixels for r in records])),
    }


def model_on_grids(path: Path, images, labels, working_spacing, n_jobs) -> list:
    """Stage-table means of a saved model on its own grid and on the other one."""
    from pancreas.persistence import load_pipeline

    pipe = load_pipeline(path)
    for _, est in pipe.steps:
        if "n_jobs" in est.get_params(deep=False):
            est.set_params(n_jobs=n_jobs)
    own = pipe.get_params()["superpixels__working_spacing"]
    rows = []
    for grid in (own, None if own is not None else working_spacing):
        pipe.set_params(superpixels__working_spacing=grid)
        report = pipe.stage_report(images, labels)
        means = {k: round(v["mean"], 4) for k, v in report.summary().items()}
        rows.append(
            {"model": str(path), "trained_on": own, "run_on": grid, "means": means}
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 60))
    parser.add_argument("--n-cohort", type=int, default=24)
    parser.add_argument("--first", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--working-spacing", type=float, default=1.5)
    parser.add_argument("--areas", type=float, nargs="+", default=[40.0, 30.0])
    parser.add_argument("--models", type=Path, nargs="*", default=[])
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--small", action="store_true", help="2 tiny phantoms, for the tests"
    )
    args = parser.parse_args(argv)
    if args.small:
        args.shape, args.n_cohort, args.first, args.areas = (96, 96, 8), 2, 0, [150.0]
    warnings.simplefilter("ignore")
    images, labels = make_phantom_cohort(
        args.n_cohort, shape=tuple(args.shape), random_state=args.seed, n_jobs=args.n_jobs
    )
    images, labels = images[args.first :], labels[args.first :]
    if args.small:  # blocks of 2 x 2 of these coarse pixels
        args.working_spacing = 2 * images[0].spacing[0]
    try:
        import cv2  # noqa: F401

        backends = ["skimage", "opencv"]
    except ImportError:
        backends = ["skimage"]
    configs = [(None, args.areas[0], "skimage")] + [
        (args.working_spacing, area, backend)
        for backend in backends
        for area in args.areas
    ]
    out = {"machine": machine_info(), "args": vars(args), "optimal": [], "models": []}
    print(f"Optimal Dice on {len(images)} held-out phantoms {tuple(args.shape)}:")
    for ws, area, backend in configs:
        row = optimal_dice(images, labels, ws, area, backend, args.n_jobs)
        out["optimal"].append(row)
        print(json.dumps(row), flush=True)
    for path in args.models:
        for row in model_on_grids(path, images, labels, args.working_spacing, args.n_jobs):
            out["models"].append(row)
            print(json.dumps(row), flush=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
