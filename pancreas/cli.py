"""The ``pancreas`` command.

``pancreas demo`` runs the whole method on the built-in phantom cohort:
it makes the cohort, trains the pipeline, picks the threshold on
validation cases, evaluates held-out cases and writes the stage table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("pancreas")


def _demo(args: argparse.Namespace) -> int:
    from pancreas.phantom import make_phantom_cohort
    from pancreas.pipeline import make_roth2015_pipeline

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_val, n_test = args.n_train, args.n_val, args.n_test
    shape = tuple(args.shape)
    t0 = time.perf_counter()
    log.info(
        "making %d phantom cases of shape %s (seed %d)",
        n_train + n_val + n_test,
        shape,
        args.seed,
    )
    images, labels = make_phantom_cohort(
        n_train + n_val + n_test,
        shape=shape,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    train = slice(0, n_train)
    val = slice(n_train, n_train + n_val)
    test = slice(n_train + n_val, None)
    t1 = time.perf_counter()
    pipe = make_roth2015_pipeline(
        preset=args.preset,
        random_state=args.seed,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )
    if args.epochs:
        pipe.set_params(convnet__epochs=args.epochs)
    log.info("training on %d cases, validating on %d", n_train, n_val)
    pipe.fit(images[train], labels[train], X_val=images[val], y_val=labels[val])
    t2 = time.perf_counter()
    log.info("evaluating %d held-out cases", len(images[test]))
    report = pipe.stage_report(images[test], labels[test], n_jobs=args.n_jobs)
    t3 = time.perf_counter()
    report.to_csv(out / "stage_table.csv")
    (out / "stage_table.txt").write_text(report.to_text() + "\n")
    timing = {
        "cohort_s": round(t1 - t0, 1),
        "fit_s": round(t2 - t1, 1),
        "evaluate_s": round(t3 - t2, 1),
        "total_s": round(t3 - t0, 1),
        "n_train": n_train,
        "n_val": n_val,
        "n_test": len(images[test]),
        "shape": list(shape),
        "preset": args.preset,
        "threshold": pipe.steps[-1][1].threshold_,
        "mean_dice": report.summary()[report.columns[-1]]["mean"],
    }
    (out / "summary.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(f"Stage table on {timing['n_test']} held-out phantom cases (Dice):")
    print(report.to_text())
    print(
        f"\nmade cohort in {timing['cohort_s']} s, trained in {timing['fit_s']} s, "
        f"evaluated in {timing['evaluate_s']} s; results in {out}/"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pancreas`` command."""
    parser = argparse.ArgumentParser(
        prog="pancreas",
        description="Pancreas segmentation in CT after Roth et al. (2015).",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train and evaluate on the built-in phantom cohort",
        description="Make a phantom cohort, train the pipeline, pick the "
        "threshold on validation cases and print the stage table for "
        "held-out cases.",
    )
    demo.add_argument("-o", "--output", default="demo_output", help="output folder")
    demo.add_argument("--n-train", type=int, default=8)
    demo.add_argument("--n-val", type=int, default=2)
    demo.add_argument("--n-test", type=int, default=4)
    demo.add_argument(
        "--shape", type=int, nargs=3, default=(160, 160, 40), metavar=("NX", "NY", "NZ")
    )
    demo.add_argument("--preset", default="cpu", choices=("paper", "cpu", "tiny"))
    demo.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="ConvNet epochs (default 4, so the demo runs in minutes on 2 cores; "
        "the preset's own value with --epochs 0)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--n-jobs", type=int, default=None)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pancreas`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.

    Examples
    --------
    >>> from pancreas.cli import build_parser
    >>> build_parser().parse_args(["demo", "--n-train", "4"]).n_train
    4
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return int(args.func(args))
