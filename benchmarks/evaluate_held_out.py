"""Saved models scored on the held-out phantoms of ``reproduce_table.py``.

Renders the cohort that ``benchmarks/reproduce_table.py`` renders for the
same ``--seed``, ``--shape`` and ``--variation`` and runs each saved model on
its held-out cases (the ``--n-test`` cases after the first ``--n-fit``,
which ``--train-factors`` never changes), printing each model's stage table.
Models trained on different cohorts (another version of the phantom, other
training factors) are so compared on the very same cases.

Usage::

    python benchmarks/evaluate_held_out.py --shape 512 512 60 \
        --variation realistic --n-fit 40 --n-test 10 \
        --models results/model_cpu_wide_balanced \
        results/model_cpu_wide_balanced_pelvis --json results/paired.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_utils import write_json  # noqa: E402

from pancreas.persistence import load_pipeline  # noqa: E402
from pancreas.phantom import make_phantom_cohort, phantom_factors  # noqa: E402

#: What the table says about each held-out case's kind of scan.
KINDS = ("field_of_view", "phase", "pancreas_variant")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument(
        "--n-fit", type=int, default=14, help="training + validation cases (12 + 2)"
    )
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=3, default=(160, 160, 40))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variation", default=None, choices=("realistic",))
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    n = args.n_fit + args.n_test
    cohort = {"random_state": args.seed, "variation": args.variation}
    # case i depends only on the seed and i, as in reproduce_table.py
    images, labels = make_phantom_cohort(
        n, shape=tuple(args.shape), n_jobs=args.n_jobs, **cohort
    )
    images, labels = images[args.n_fit :], labels[args.n_fit :]
    kinds = [
        {k: case[k] for k in KINDS} for case in phantom_factors(n, **cohort)[args.n_fit :]
    ]
    out = {"kinds": kinds, "models": {}}
    for model in args.models:
        report = load_pipeline(model).stage_report(images, labels, n_jobs=args.n_jobs)
        print(f"\n{model}:\n{report.to_text()}", flush=True)
        out["models"][str(model)] = {"summary": report.summary(), "rows": report.rows}
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
