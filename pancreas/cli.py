"""The ``pancreas`` command (also ``python -m pancreas``).

Sub-commands, in the habits of TotalSegmentator and nnU-Net:

``pancreas demo [-o DIR]``
    The built-in default: make a phantom cohort, train, evaluate held-out
    phantoms, write the model and a full report.
``pancreas train DATASET -o MODEL``
    Train on a labelled cohort (``--msd``, ``--nih``, ``--images/--labels``)
    and write a model directory.
``pancreas segment MODEL INPUT... -o OUT``
    NIfTI files, DICOM series folders or cohort folders in; a uint8 NIfTI
    mask per case (``--proba``: a float32 probability map, ``--stats``:
    organ statistics) out, in each input's own grid. Resumes an interrupted
    run; exits non-zero when a case failed, listing the failures.
``pancreas evaluate MODEL DATASET -o REPORT``
    The stage report of a labelled cohort, with figures.
``pancreas info MODEL``
    What the model's manifest says.

Exit status: 0 on success, 1 when some case failed, 2 on a usage error or an
input that cannot be used at all (the message says why).
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
from typing import Any

__all__ = ["build_parser", "main"]

log = logging.getLogger("pancreas")


# --------------------------------------------------------------------- data
def _dataset(args: argparse.Namespace) -> Any:
    """The cohort named by ``--msd``, ``--nih`` or ``--images/--labels``."""
    from pancreas.datasets import (
        load_msd_pancreas,
        load_nifti_folder,
        load_nifti_glob,
        load_nih_pancreas,
    )

    if args.msd:
        return load_msd_pancreas(args.msd)
    if args.nih:
        return load_nih_pancreas(args.nih[0], labels=args.nih[1])
    if args.labels is None:
        raise ValueError("--images needs --labels (a glob pattern or a folder)")
    if Path(args.images).is_dir():
        return load_nifti_folder(args.images, args.labels)
    return load_nifti_glob(args.images, args.labels)


def _read_split(path: str, case_ids: Sequence[str]) -> dict[str, list[str]]:
    """A split file: JSON ``{"train": [...], "val": [...], "test": [...]}``."""
    try:
        split = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the split file ({exc})") from exc
    if not isinstance(split, dict) or "train" not in split:
        raise ValueError(
            f'{path}: a split file is a JSON object {{"train": [case ids], '
            '"val": [...], "test": [...]}'
        )
    known = set(case_ids)
    out = {}
    for part in ("train", "val", "test"):
        ids = [str(c) for c in split.get(part, [])]
        missing = [c for c in ids if c not in known]
        if missing:
            raise ValueError(
                f"{path}: {part} cases not in the dataset: {', '.join(missing[:10])}"
            )
        out[part] = ids
    return out


def _subset(ds: Any, ids: Sequence[str], name: str) -> Any:
    index = {c: i for i, c in enumerate(ds.case_ids)}
    return ds.subset([index[c] for c in ids], name=f"{ds.name}[{name}]")


def _train_val(ds: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    if args.split:
        split = _read_split(args.split, ds.case_ids)
        return _subset(ds, split["train"], "train"), _subset(ds, split["val"], "val")
    n = len(ds)
    n_val = round(args.val_fraction * n) if args.val_fraction > 0 else 0
    if args.val_fraction > 0 and n >= 3:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    train, val, _ = ds.split(n - n_val, n_val, 0, random_state=args.seed)
    return train, val


def _eval_cases(ds: Any, args: argparse.Namespace) -> Any:
    if not args.split:
        return ds
    split = _read_split(args.split, ds.case_ids)
    return _subset(ds, split[args.subset], args.subset)


# ----------------------------------------------------------------- commands
def _configure_pipeline(pipe: Any, args: argparse.Namespace) -> Any:
    params: dict[str, Any] = {}
    available = pipe.get_params()
    if getattr(args, "no_hu_check", False) and "superpixels__check_hu" in available:
        params["superpixels__check_hu"] = False
    if getattr(args, "n_jobs", None) is not None:
        params.update({k: args.n_jobs for k in available if k.endswith("__n_jobs")})
    verbose = 0 if args.quiet else 1
    params.update({k: verbose for k in available if k.endswith("__verbose")})
    return pipe.set_params(**params)


def _new_pipeline(args: argparse.Namespace) -> Any:
    """The preset's pipeline with the command's seed, epochs and runtime options."""
    from pancreas.pipeline import make_roth2015_pipeline

    pipe = make_roth2015_pipeline(preset=args.preset, random_state=args.seed)
    if args.epochs:
        pipe.set_params(convnet__epochs=args.epochs)
    return _configure_pipeline(pipe, args)


def _train(args: argparse.Namespace) -> int:
    from pancreas.persistence import cohort_summary, save_pipeline

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    ds = _dataset(args)
    if ds.labels is None:
        raise ValueError(
            f"no label found for any of the {len(ds)} images in {args.images!r} "
            f"(labels: {args.labels!r}); training needs one label per image, "
            "paired by file name: pass the folder or glob of the labels with "
            "--labels"
        )
    train, val = _train_val(ds, args)
    log.info(
        "training on %d cases, validating on %d (%s)", len(train), len(val), ds.name
    )
    pipe = _new_pipeline(args)
    start = time.perf_counter()
    if len(val):
        pipe.fit(train.images, train.labels, X_val=val.images, y_val=val.labels)
    else:
        pipe.fit(train.images, train.labels)
    fit_s = time.perf_counter() - start
    training = {
        "dataset": ds.name,
        **cohort_summary(train.images),
        "train_cases": list(train.case_ids),
        "val_cases": list(val.case_ids),
        "preset": args.preset,
        "seed": args.seed,
        "fit_seconds": round(fit_s, 1),
    }
    save_pipeline(pipe, out, training=training, overwrite=args.overwrite)
    threshold = pipe.steps[-1][1].threshold_
    print(
        f"trained on {len(train)} cases in {fit_s:.0f} s (threshold {threshold:.2f}); "
        f"model in {out}/"
    )
    return 0


def _segment(args: argparse.Namespace) -> int:
    from pancreas._atomic import atomic_write_text
    from pancreas.cohort import segment_cohort
    from pancreas.persistence import load_pipeline, read_manifest

    pipe = _configure_pipeline(load_pipeline(args.model), args)
    training = read_manifest(args.model).get("training")
    out = Path(args.output)
    result = _run_maybe_on_cluster(
        args,
        [pipe],
        segment_cohort,
        pipe,
        args.inputs,
        out,
        proba=args.proba,
        stats=args.stats,
        overwrite=args.overwrite,
        training=training,
        n_jobs=args.cases_in_parallel,
        verbose=0 if args.quiet else 1,
    )
    if args.stats and result.stats:
        atomic_write_text(
            out / "statistics.json", json.dumps(result.stats, indent=2) + "\n"
        )
    n_total = len(result.done) + len(result.skipped) + len(result.failed)
    print(
        f"{len(result.done)} of {n_total} case(s) segmented, "
        f"{len(result.skipped)} already done, {len(result.failed)} failed; "
        f"outputs in {out}/"
    )
    if result.outside_training:
        print(
            f"{len(result.outside_training)} case(s) with a voxel spacing outside "
            "the model's training range: " + ", ".join(result.outside_training),
            file=sys.stderr,
        )
    if result.empty:
        print(
            f"{len(result.empty)} case(s) with an empty mask: "
            + ", ".join(result.empty),
            file=sys.stderr,
        )
    if result.failed:
        print("failed cases:", file=sys.stderr)
        for case, message in result.failed.items():
            print(f"  {case}: {message}", file=sys.stderr)
        return 1
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pancreas.evaluation import evaluate_pipeline
    from pancreas.persistence import load_pipeline

    pipe = _configure_pipeline(load_pipeline(args.model), args)
    ds = _eval_cases(_dataset(args), args)
    log.info("evaluating %d cases of %s", len(ds), ds.name)
    evaluation = _run_maybe_on_cluster(
        args,
        [pipe],
        evaluate_pipeline,
        pipe,
        ds.images,
        ds.labels,
        case_ids=ds.case_ids,
        n_jobs=args.cases_in_parallel,
        verbose=0 if args.quiet else 1,
    )
    folder = evaluation.write(args.output)
    print(f"Stage table on {len(ds)} cases of {ds.name} (Dice):")
    print(evaluation.stage.to_text(per_case=False))
    print(f"report in {folder}/")
    return 0


def _info(args: argparse.Namespace) -> int:
    from pancreas.persistence import read_manifest

    manifest = read_manifest(args.model)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    training = manifest.get("training") or {}
    versions = manifest.get("versions", {})
    lines = [
        f"model:      {args.model}",
        f"saved by:   pancreas {manifest.get('pancreas_version')} "
        f"on {manifest.get('created')}",
        f"versions:   {', '.join(f'{k} {v}' for k, v in versions.items())}",
        f"steps:      {', '.join(s['name'] for s in manifest.get('steps', []))}",
        f"threshold:  {manifest.get('threshold')}",
    ]
    if training:
        lines.append(
            f"trained on: {training.get('n_cases')} cases of "
            f"{training.get('dataset', '?')}, spacing "
            f"{training.get('spacing_min')} - {training.get('spacing_max')} mm"
        )
    lines.append("files:")
    for name, entry in sorted(manifest.get("files", {}).items()):
        lines.append(f"  {name}  {entry['bytes']} bytes  sha256 {entry['sha256']}")
    print("\n".join(lines))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pancreas.evaluation import evaluate_pipeline
    from pancreas.persistence import cohort_summary, save_pipeline
    from pancreas.phantom import make_phantom_cohort

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
    pipe = _new_pipeline(args)
    log.info("training on %d cases, validating on %d", n_train, n_val)
    pipe.fit(images[train], labels[train], X_val=images[val], y_val=labels[val])
    t2 = time.perf_counter()
    save_pipeline(
        pipe,
        out / "model",
        training={
            "dataset": f"phantoms (seed {args.seed})",
            **cohort_summary(images[train]),
            "preset": args.preset,
        },
        overwrite=True,
    )
    log.info("evaluating %d held-out cases", len(images[test]))
    evaluation = evaluate_pipeline(
        pipe,
        images[test],
        labels[test],
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )
    report = evaluation.stage
    report_dir = evaluation.write(out / "report")
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
        f"evaluated in {timing['evaluate_s']} s; model in {out / 'model'}/, "
        f"report in {report_dir}/index.md"
    )
    return 0


def _run_maybe_on_cluster(
    args: argparse.Namespace, scatter: list[Any], func: Any, *a: Any, **kw: Any
) -> Any:
    """Run ``func`` locally, or with joblib's Dask backend on ``--scheduler``."""
    address = getattr(args, "scheduler", None)
    if not address:
        return func(*a, **kw)
    from pancreas.distributed import run_on_cluster

    return run_on_cluster(address, func, *a, scatter=scatter, **kw)


# ------------------------------------------------------------------- parser
def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset (one of)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--msd", metavar="PATH", help="Medical Segmentation Decathlon Task07 folder"
    )
    source.add_argument(
        "--nih",
        nargs=2,
        metavar=("IMAGES", "LABELS"),
        help="NIH Pancreas-CT: the folder of PANCREAS_XXXX folders and the "
        "folder of labelXXXX.nii.gz",
    )
    source.add_argument(
        "--images",
        metavar="GLOB",
        help="CT NIfTI files: a quoted glob pattern or a folder (with --labels)",
    )
    group.add_argument(
        "--labels", metavar="GLOB", help="label NIfTI files: a glob or a folder"
    )
    group.add_argument(
        "--split",
        metavar="FILE",
        help='JSON {"train": [ids], "val": [ids], "test": [ids]}',
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or log messages, only results and errors",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=argparse.SUPPRESS,
        help="parallel threads/processes inside each stage (-1: all cores)",
    )


def _add_runtime(parser: argparse.ArgumentParser, *, cases: bool = True) -> None:
    parser.add_argument(
        "--no-hu-check",
        action="store_true",
        help="accept volumes whose intensities do not look like Hounsfield units",
    )
    if cases:
        parser.add_argument(
            "--cases-in-parallel",
            type=int,
            default=None,
            metavar="N",
            help="cases processed at once, in separate processes (default 1)",
        )
        parser.add_argument(
            "--scheduler",
            metavar="ADDRESS",
            help="run the cases on an existing Dask cluster "
            "(tcp://HOST:PORT; needs pancreas[distributed])",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pancreas`` command.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> build_parser().parse_args(["segment", "model", "ct.nii.gz", "-o", "out"]).proba
    False
    """
    parser = argparse.ArgumentParser(
        prog="pancreas",
        description="Pancreas segmentation in CT after Roth et al. (2015).",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--n-jobs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train and evaluate on the built-in phantom cohort",
        description="Make a phantom cohort, train the pipeline, pick the "
        "threshold on validation cases, evaluate held-out cases and write the "
        "model and a report with figures.",
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
    _add_common(demo)
    demo.set_defaults(func=_demo)

    train = sub.add_parser(
        "train",
        help="train on a labelled cohort and write a model directory",
        description="Train the pipeline on a labelled cohort; the refiner's "
        "threshold is chosen on the validation cases.",
    )
    _add_dataset_options(train)
    train.add_argument("-o", "--output", required=True, help="model directory")
    train.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of cases held out to choose the threshold (default 0.1, "
        "at least 1 case; 0: the training cases)",
    )
    train.add_argument("--preset", default="cpu", choices=("paper", "cpu", "tiny"))
    train.add_argument(
        "--epochs", type=int, default=0, help="ConvNet epochs (0: the preset's)"
    )
    train.add_argument("--seed", type=int, default=0, help="random state")
    train.add_argument(
        "--overwrite", action="store_true", help="replace an existing model"
    )
    _add_runtime(train, cases=False)
    _add_common(train)
    train.set_defaults(func=_train)

    segment = sub.add_parser(
        "segment",
        help="segment NIfTI files or DICOM series with a model",
        description="Write a uint8 NIfTI mask per case in the input's own grid "
        "and affine. Cases whose outputs exist are skipped (resume); a failing "
        "case does not stop the others; the exit status is 1 if any failed.",
    )
    segment.add_argument("model", help="model directory")
    segment.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="NIfTI files, DICOM series folders or cohort folders",
    )
    segment.add_argument("-o", "--output", required=True, help="output folder")
    segment.add_argument(
        "--proba", action="store_true", help="also write float32 probability maps"
    )
    segment.add_argument(
        "--stats",
        action="store_true",
        help="also write organ statistics (volume in mL, HU) as JSON",
    )
    segment.add_argument(
        "--overwrite", action="store_true", help="redo cases already done"
    )
    _add_runtime(segment)
    _add_common(segment)
    segment.set_defaults(func=_segment)

    evaluate = sub.add_parser(
        "evaluate",
        help="the stage report of a labelled cohort, with figures",
        description="Evaluate a model on a labelled cohort: per-case metrics, "
        "the paper's stage table, Dice-versus-threshold curves and overlays.",
    )
    evaluate.add_argument("model", help="model directory")
    _add_dataset_options(evaluate)
    evaluate.add_argument(
        "--subset",
        default="test",
        choices=("train", "val", "test"),
        help="part of --split to evaluate (default test)",
    )
    evaluate.add_argument("-o", "--output", required=True, help="report folder")
    _add_runtime(evaluate)
    _add_common(evaluate)
    evaluate.set_defaults(func=_evaluate)

    info = sub.add_parser("info", help="what a model's manifest says")
    info.add_argument("model", help="model directory")
    info.add_argument("--json", action="store_true", help="the raw manifest")
    info.set_defaults(func=_info)
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
        The exit status: 0 success, 1 some case failed, 2 unusable input.

    Examples
    --------
    >>> build_parser().parse_args(["demo", "--n-train", "4"]).n_train
    4
    """
    from sklearn.exceptions import NotFittedError

    from pancreas.exceptions import PancreasError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return int(args.func(args))
    except (PancreasError, NotFittedError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"pancreas {args.command}: error: {exc}", file=sys.stderr)
        return 2
