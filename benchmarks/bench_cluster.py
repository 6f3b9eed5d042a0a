"""Cohort throughput on a local Dask cluster: cases per minute with 1 and 2 workers.

A phantom cohort is written to NIfTI files; the same fitted pipeline then
segments it with :func:`pancreas.cohort.segment_cohort` three ways: locally
in this process, and on a ``dask.distributed.LocalCluster`` (loopback, one
thread per worker) with each requested number of workers, through
:func:`pancreas.distributed.run_on_cluster` (the model scattered once). Each
run writes to a fresh folder; the outputs of every cluster run are checked to
be identical to the local run's.

Usage::

    python benchmarks/bench_cluster.py --n-cases 8 --shape 256 256 64 --workers 1 2
    python benchmarks/bench_cluster.py --model /tmp/model_cpu --json cluster.json
    python benchmarks/bench_cluster.py --small      # seconds, for the tests
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _bench_utils import format_table, machine_info, quiet_warnings, write_json
from bench_segment import load_model, train_quick_pipeline


def write_cohort(folder: Path, n_cases: int, shape: tuple[int, int, int]) -> None:
    """Write ``n_cases`` phantom CTs of ``shape`` as NIfTI files."""
    from pancreas.io import save_volume
    from pancreas.phantom import make_phantom_cohort

    images, _ = make_phantom_cohort(n_cases, shape=shape, random_state=123)
    for i, image in enumerate(images):
        save_volume(image, folder / f"case{i:03d}.nii.gz")


def outputs(folder: Path) -> dict[str, bytes]:
    """Every mask written in ``folder``, by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.nii.gz"))}


def run_local(pipe: Any, inputs: Path, out: Path) -> float:
    """Seconds to segment the cohort in this process."""
    from pancreas.cohort import segment_cohort

    start = time.perf_counter()
    result = segment_cohort(pipe, [inputs], out)
    if not result.ok:
        raise RuntimeError(f"local run failed: {result.failed}")
    return time.perf_counter() - start


def run_cluster(pipe: Any, inputs: Path, out: Path, n_workers: int) -> float:
    """Seconds to segment the cohort on a LocalCluster of ``n_workers``."""
    from distributed import Client, LocalCluster

    from pancreas.cohort import segment_cohort
    from pancreas.distributed import run_on_cluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        # workers import pancreas and Keras once, outside the timing
        client.run(lambda: __import__("pancreas.convnet") and None)
        start = time.perf_counter()
        result = run_on_cluster(
            client, segment_cohort, pipe, [inputs], out, scatter=[pipe]
        )
        seconds = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"cluster run failed: {result.failed}")
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cases", type=int, default=8)
    p.add_argument("--shape", type=int, nargs=3, default=[256, 256, 64])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", help="model directory (default: train one)")
    p.add_argument("--preset", default="cpu", help="preset of the quick model")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--small", action="store_true", help="tiny sizes, for the tests")
    args = p.parse_args(argv)
    if args.small:
        args.n_cases, args.shape, args.preset = 4, [48, 48, 10], "tiny"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    quiet_warnings()
    shape = tuple(args.shape)
    if args.model:
        pipe = load_model(args.model)
    else:
        small = args.small
        pipe = train_quick_pipeline(
            args.preset,
            n_train=2 if small else 3,
            shape=(48, 48, 10) if small else (128, 128, 32),
        )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cohort(root / "in", args.n_cases, shape)
        local_s = run_local(pipe, root / "in", root / "local")
        reference = outputs(root / "local")
        rows.append(("local (this process)", local_s))
        for n in args.workers:
            seconds = run_cluster(pipe, root / "in", root / f"w{n}", n)
            if outputs(root / f"w{n}") != reference:
                raise RuntimeError(f"{n}-worker outputs differ from the local run")
            rows.append((f"LocalCluster, {n} worker(s)", seconds))
    table = [[name, f"{s:.1f}", f"{args.n_cases / s * 60:.1f}"] for name, s in rows]
    print(
        f"{args.n_cases} cases of {' x '.join(map(str, shape))} voxels; outputs "
        "of every cluster run identical to the local run"
    )
    print(format_table(["run", "seconds", "cases/min"], table))
    doc = {
        "machine": machine_info(),
        "n_cases": args.n_cases,
        "shape": list(shape),
        "runs": [
            {
                "run": name,
                "seconds": round(s, 2),
                "cases_per_min": args.n_cases / s * 60,
            }
            for name, s in rows
        ],
    }
    if args.json:
        write_json(args.json, doc)
    return doc


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
