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
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

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

    alignment = _label_alignment(getattr(args, "label_alignment", None))
    if args.msd:
        return load_msd_pancreas(args.msd, label_alignment=alignment)
    if args.nih:
        return load_nih_pancreas(
            args.nih[0], labels=args.nih[1], label_alignment=alignment
        )
    if args.labels is None:
        raise ValueError("--images needs --labels (a glob pattern or a folder)")
    if Path(args.images).is_dir():
        return load_nifti_folder(args.images, args.labels, label_alignment=alignment)
    return load_nifti_glob(args.images, args.labels, label_alignment=alignment)


def _label_alignment(values: Sequence[str] | None) -> dict[str, str]:
    """``--label-alignment`` values (``OPTION`` or ``CASE=OPTION``) as a dict."""
    out: dict[str, str] = {}
    for value in values or ():
        case, sep, option = value.rpartition("=")
        out[case if sep else "*"] = option
    return out


def _verify_labels(*parts: Any) -> None:
    """Check every label of the cohorts against its image before any work."""
    for part in parts:
        if len(part):
            checks = part.verify_labels()
            aligned = [
                f"{c}: {k.alignment}"
                for c, k in checks.items()
                if k.alignment != "as-is"
            ]
            if aligned:
                log.info("labels aligned: %s", ", ".join(aligned))


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
def _check_output(path: str | Path, option: str = "-o/--output") -> Path:
    """The output folder, created and probed before any work (or an error)."""
    from pancreas.cohort import check_output_folder

    return check_output_folder(path, option=option)


#: The in-plane working grid of ``pancreas train --fast``, in mm (512 x 512 x
#: 200 in 15-18 s on 2 cores instead of 31-34 s, and a stage table as good;
#: OpenCV's SLIC on it was faster still but scored lower: see
#: docs/performance.rst).
FAST_WORKING_SPACING = 1.5


def _configure_pipeline(
    pipe: Any, args: argparse.Namespace, *, all_cores: bool = False
) -> Any:
    """Apply the command's runtime options to a pipeline's steps.

    With `all_cores` (segment, evaluate) and no ``--n-jobs``, each stage
    uses every core unless cases already run in parallel processes or on a
    cluster, where one thread per case keeps the cores from being
    oversubscribed.
    """
    params: dict[str, Any] = {}
    available = pipe.get_params()
    if getattr(args, "no_hu_check", False) and "superpixels__check_hu" in available:
        params["superpixels__check_hu"] = False
    if getattr(args, "slic", None) and "superpixels__backend" in available:
        # a missing OpenCV is reported by SuperpixelGenerator.fit, the first
        # thing a fit does, naming pancreas[fast]
        params["superpixels__backend"] = args.slic
    working = getattr(args, "working_spacing", None)
    if working is None and getattr(args, "fast", False):
        working = FAST_WORKING_SPACING  # an explicit --working-spacing wins
    if working is not None and "superpixels__working_spacing" in available:
        params["superpixels__working_spacing"] = working or None
    n_jobs = getattr(args, "n_jobs", None)
    in_parallel = (getattr(args, "cases_in_parallel", None) or 1) > 1 or bool(
        getattr(args, "scheduler", None)
    )
    if n_jobs is None and all_cores and not in_parallel:
        n_jobs = -1
    if n_jobs is not None:
        params.update({k: n_jobs for k in available if k.endswith("__n_jobs")})
    verbose = 0 if args.quiet else 1
    params.update({k: verbose for k in available if k.endswith("__verbose")})
    return pipe.set_params(**params)


def _assignment(text: str) -> tuple[str, Any]:
    """The type of ``train --set``: ``NAME=VALUE``, the value read as JSON.

    ``convnet__filters=[32,32,64,64,64]`` gives a list, ``cascade__n_estimators=80``
    an int, ``convnet__hu_window=null`` None; a value that is not JSON is kept as
    a string (``superpixels__backend=opencv``).
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"expected STEP__PARAMETER=VALUE (for example "
            f"convnet__learning_rate=3e-4), got {text!r}"
        )
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _apply_set(pipe: Any, assignments: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Set ``--set``'s parameters on the pipeline and check every value now.

    Unknown names and bad values are reported before any data is read or any
    stage trains, naming the option. Returns the parameters set, the last one
    winning when a name is given twice.
    """
    from pancreas._validation import validate_step_params

    params = dict(assignments)
    if not params:
        return params
    known = pipe.get_params()
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        step, _, _ = unknown[0].partition("__")
        if step in pipe.named_steps:
            names = sorted(pipe.named_steps[step].get_params(deep=False))
            hint = f"step {step!r} has {', '.join(names)}"
        else:
            steps = ", ".join(name for name, _ in pipe.steps)
            hint = f"names are STEP__PARAMETER with STEP one of {steps}"
        raise ValueError(
            f"--set: no parameter {', '.join(map(repr, unknown))} in the pipeline; "
            + hint
        )
    pipe.set_params(**params)
    try:
        validate_step_params(pipe.steps)
    except ValueError as exc:  # InvalidParameterError is a ValueError too
        raise ValueError(f"--set: {exc}") from exc
    return params


def _new_pipeline(args: argparse.Namespace) -> Any:
    """The preset's pipeline with the command's seed, epochs, ``--set`` and runtime options."""
    from pancreas.pipeline import make_roth2015_pipeline

    pipe = make_roth2015_pipeline(preset=args.preset, random_state=args.seed)
    if args.epochs:
        pipe.set_params(convnet__epochs=args.epochs)
    _apply_set(pipe, getattr(args, "set", None) or ())
    return _configure_pipeline(pipe, args)


def _train(args: argparse.Namespace) -> int:
    from pancreas.persistence import cohort_summary, save_pipeline

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    _check_output(out.parent, f"-o/--output {out}: its parent folder")
    pipe = _new_pipeline(args)  # a bad --set is reported before any data is read
    ds = _dataset(args)
    if ds.labels is None:
        raise ValueError(
            f"no label found for any of the {len(ds)} images in {args.images!r} "
            f"(labels: {args.labels!r}); training needs one label per image, "
            "paired by file name: pass the folder or glob of the labels with "
            "--labels"
        )
    train, val = _train_val(ds, args)
    _verify_labels(train, val)
    log.info(
        "training on %d cases, validating on %d (%s)", len(train), len(val), ds.name
    )
    if args.work_dir:
        pipe.set_params(work_dir=args.work_dir)
    if args.scheduler and not args.work_dir:
        raise ValueError(
            "--scheduler needs --work-dir: a folder that the driver and every "
            "worker see at the same path"
        )
    start = time.perf_counter()
    fit_val = {"X_val": val.images, "y_val": val.labels} if len(val) else {}
    _run_maybe_on_cluster(args, [], pipe.fit, train.images, train.labels, **fit_val)
    fit_s = time.perf_counter() - start
    counts = getattr(pipe, "streamed_counts_", {})
    if counts:
        log.info(
            "work folder: %s",
            ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
        )
        log.info(
            "stage times: %s",
            ", ".join(f"{k} {v:.1f} s" for k, v in pipe.streamed_times_.items()),
        )
    training = {
        "dataset": ds.name,
        **cohort_summary(train.images),
        "train_cases": list(train.case_ids),
        "val_cases": list(val.case_ids),
        "preset": args.preset,
        "set": dict(args.set or ()),
        "seed": args.seed,
        "fit_seconds": round(fit_s, 1),
    }
    save_pipeline(pipe, out, training=training, overwrite=args.overwrite)
    threshold = pipe.steps[-1][1].threshold_
    _echo(
        f"trained on {len(train)} cases in {fit_s:.0f} s (threshold {threshold:.2f}); "
        f"model in {out}/"
    )
    return 0


def _segment(args: argparse.Namespace) -> int:
    from pancreas._atomic import atomic_write_text
    from pancreas.cohort import segment_cohort
    from pancreas.persistence import load_pipeline, read_manifest

    out = _check_output(args.output)
    pipe = _configure_pipeline(load_pipeline(args.model), args, all_cores=True)
    training = read_manifest(args.model).get("training")
    result = _run_maybe_on_cluster(
        args,
        [pipe],
        segment_cohort,
        pipe,
        args.inputs,
        out,
        proba=args.proba,
        stats=args.stats,
        dicom_seg=args.output_type == "dicom-seg",
        preview=args.preview,
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
    _echo(
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

    _check_output(args.output)
    pipe = _configure_pipeline(load_pipeline(args.model), args, all_cores=True)
    ds = _eval_cases(_dataset(args), args)
    _verify_labels(ds)
    roles = _training_roles(args.model)
    if not args.split and not args.include_training_cases:
        seen = [c for c in ds.case_ids if c in roles]
        if seen:
            unseen = [c for c in ds.case_ids if c not in roles]
            if not unseen:
                raise ValueError(
                    f"all {len(ds)} cases of {ds.name} were used to train or "
                    "validate this model (its manifest lists them); score other "
                    "cases, or pass --include-training-cases to score these "
                    "anyway (labelled as such in the report)"
                )
            log.warning(
                "leaving out %d case(s) the model was trained or validated on "
                "(its manifest lists them): %s; --include-training-cases "
                "scores them too",
                len(seen),
                ", ".join(seen),
            )
            ds = _subset(ds, unseen, "unseen")
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
        tolerance=args.nsd_tolerance,
        surface_method=args.surface_method,
    )
    folder = evaluation.write(args.output)
    counts = _write_scored_cases(folder, ds.case_ids, roles)
    _echo(f"Stage table on {len(ds)} cases of {ds.name} (Dice; {counts}):")
    _echo(evaluation.stage.to_text(per_case=False))
    _echo(
        f"surface metrics: {evaluation.surface_method} definition, surface Dice "
        f"at {evaluation.tolerance:g} mm"
    )
    _echo(f"report in {folder}/")
    return 0


def _training_roles(model: str) -> dict[str, str]:
    """``{case id: "train" | "val"}`` from the model's manifest (may be empty)."""
    from pancreas.persistence import read_manifest

    training = read_manifest(model).get("training") or {}
    roles = {str(c): "val" for c in training.get("val_cases", [])}
    roles.update({str(c): "train" for c in training.get("train_cases", [])})
    return roles


def _write_scored_cases(
    folder: Path, case_ids: Sequence[str], roles: dict[str, str]
) -> str:
    """List the scored cases, each with its role for the model, in the report.

    Writes ``scored_cases.csv`` (case, role: ``train``, ``val`` or
    ``unseen``) and a section of ``index.md``; returns a one-line count.
    """
    from pancreas._atomic import atomic_write_text

    role = {c: roles.get(c, "unseen") for c in case_ids}
    atomic_write_text(
        folder / "scored_cases.csv",
        "case,role\n" + "".join(f"{c},{role[c]}\n" for c in case_ids),
    )
    n = {r: sum(v == r for v in role.values()) for r in ("unseen", "train", "val")}
    counts = (
        f"{n['unseen']} unseen, {n['train']} training and {n['val']} validation "
        "case(s) of the model"
    )
    lines = ["", "## Cases scored", "", f"{len(case_ids)} cases: {counts}.", ""]
    if n["train"] or n["val"]:
        lines += [
            "**Training and validation cases are included**: their scores "
            "overestimate how the model does on new scans.",
            "",
        ]
    lines += ["| case | role |", "|---|---|"]
    lines += [f"| {c} | {role[c]} |" for c in case_ids]
    index = folder / "index.md"
    text = index.read_text() if index.is_file() else ""
    atomic_write_text(index, text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    return counts


def _info(args: argparse.Namespace) -> int:
    from pancreas.persistence import read_manifest

    manifest = read_manifest(args.model)
    if args.json:
        _echo(json.dumps(manifest, indent=2))
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
    if training.get("set"):
        lines.append(
            "set:        "
            + ", ".join(f"{k}={json.dumps(v)}" for k, v in training["set"].items())
        )
    sp = (manifest.get("params") or {}).get("superpixels") or {}
    working = sp.get("working_spacing")
    where = "each scan's own" if working is None else f"{working:g} mm in-plane working"
    lines.append(f"grid:       {where}; SLIC {sp.get('backend', 'skimage')}")
    lines.append("files:")
    for name, entry in sorted(manifest.get("files", {}).items()):
        lines.append(f"  {name}  {entry['bytes']} bytes  sha256 {entry['sha256']}")
    _echo("\n".join(lines))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pancreas.evaluation import evaluate_pipeline
    from pancreas.persistence import cohort_summary, save_pipeline
    from pancreas.phantom import make_phantom_cohort

    out = _check_output(args.output)
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
    _echo(f"Stage table on {timing['n_test']} held-out phantom cases (Dice):")
    _echo(report.to_text())
    _echo(
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


# ------------------------------------------------------------------- device
#: The preset of ``pancreas train`` when none is given: the default of
#: :func:`pancreas.pipeline.make_roth2015_pipeline`, the paper's configuration.
DEFAULT_PRESET = "paper"
#: Values of ``--device``.
DEVICES = ("auto", "cpu", "gpu")


def _select_device(device: str) -> None:
    """Apply ``--device`` before Keras is imported (see docs/installation.rst).

    ``cpu`` hides every GPU from the backend (``CUDA_VISIBLE_DEVICES=-1``,
    and ``JAX_PLATFORMS=cpu`` for JAX); ``gpu`` checks that the backend
    sees one and refuses to start otherwise, rather than training for hours
    on the CPU by surprise; ``auto`` leaves the backend to choose.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        if backend == "jax":
            os.environ["JAX_PLATFORMS"] = "cpu"
        return
    if device != "gpu":
        return
    if backend == "tensorflow":
        import tensorflow as tf

        found = len(tf.config.list_physical_devices("GPU"))
    elif backend == "jax":
        import jax

        found = sum(d.platform == "gpu" for d in jax.devices())
    elif backend == "torch":
        import torch

        found = torch.cuda.device_count()
    else:
        raise ValueError(f"--device gpu: unknown KERAS_BACKEND {backend!r}")
    if not found:
        raise ValueError(
            f"--device gpu: the Keras backend ({backend}) sees no GPU; check "
            "CUDA_VISIBLE_DEVICES and the GPU build of the backend "
            "(docs/installation.rst, 'A GPU'), or pass --device cpu"
        )
    log.info("%s sees %d GPU(s)", backend, found)


# ------------------------------------------------------------------- parser
def _tolerance_mm(text: str) -> float:
    """``--nsd-tolerance``: a non-negative finite number of mm."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(
            f"must be a non-negative number of mm, got {text!r}"
        )
    return value


def _version() -> str:
    from pancreas import __version__

    return __version__


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
    group.add_argument(
        "--label-alignment",
        action="append",
        metavar="[CASE=]OPTION",
        help="before training or evaluating, every label's HU profile is "
        "checked against its in-plane flips and transposes (OPTION 'check', "
        "the default); give an alignment to apply (flip-x, flip-y, flip-xy, "
        "transpose, transpose-flip-x, transpose-flip-y, transpose-flip-xy) or "
        "'as-is' to skip the check, for every case or, as CASE=OPTION "
        "(repeatable), for one case",
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
        help="parallel threads/processes inside each stage (-1: all cores; "
        "segment and evaluate default to all cores when cases run one at a time)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=argparse.SUPPRESS,
        help="where the ConvNet runs: auto (a GPU when the Keras backend sees "
        "one, the default), cpu (GPUs hidden) or gpu (an error without one)",
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
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}"
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output, and no log lines of TensorFlow or nibabel",
    )
    parser.add_argument("--n-jobs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--device", choices=DEVICES, default="auto", help=argparse.SUPPRESS
    )
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
    demo.add_argument(
        "--preset",
        default="cpu",
        choices=("paper", "cpu", "tiny"),
        help="configuration (default 'cpu': the demo is a recipe that runs in "
        "minutes; train's default, as in Python, is 'paper')",
    )
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
    train.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=("paper", "cpu", "tiny"),
        help=f"configuration (default {DEFAULT_PRESET!r}, as in Python's "
        "make_roth2015_pipeline; 'cpu' trains in hours on a CPU)",
    )
    train.add_argument(
        "--epochs", type=int, default=0, help="ConvNet epochs (0: the preset's)"
    )
    train.add_argument("--seed", type=int, default=0, help="random state")
    train.add_argument(
        "--overwrite", action="store_true", help="replace an existing model"
    )
    train.add_argument(
        "--work-dir",
        metavar="DIR",
        help="keep the streamed fit's per-case files here: a rerun with the same "
        "folder (after a crash or with other parameters) reuses every complete "
        "case, the forests and the ConvNet's last epoch (default: a temporary "
        "folder, removed after training)",
    )
    train.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the per-case work (superpixels, features) on an existing Dask "
        "cluster (tcp://HOST:PORT; needs pancreas[distributed]); its workers must "
        "see the inputs and --work-dir at the same paths",
    )
    train.add_argument(
        "--set",
        type=_assignment,
        action="append",
        metavar="STEP__PARAM=VALUE",
        help="set one of the pipeline's parameters after the preset, the value as "
        "JSON, for example --set convnet__learning_rate=3e-4 --set "
        "'convnet__filters=[32,32,64,64,64]' (repeatable; checked before any data "
        "is read; kept in the model's manifest)",
    )
    _add_runtime(train, cases=False)
    train.add_argument(
        "--slic",
        choices=("skimage", "opencv"),
        default=None,
        help="SLIC implementation: scikit-image (default) or OpenCV's, about "
        "half the time (needs pancreas[fast]); the model keeps it, so segment "
        "and evaluate use the one it was trained with",
    )
    train.add_argument(
        "--working-spacing",
        type=float,
        metavar="MM",
        default=None,
        help="train and segment on a coarser in-plane grid of about MM mm "
        "(blocks of whole pixels; masks come back on each scan's own grid): "
        "1.5 segments a 0.7-0.8 mm scan in about half the time; the model keeps "
        "it (default: each scan's own grid)",
    )
    train.add_argument(
        "--fast",
        action="store_true",
        help="the same as --working-spacing 1.5: about twice as fast to train and "
        "segment full-size scans",
    )
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
        "--proba",
        action="store_true",
        help="also write float32 probability maps; the mask is the map above "
        "the model's threshold (in the map's header and JSON), not above 0.5",
    )
    segment.add_argument(
        "--output-type",
        choices=("nifti", "dicom-seg"),
        default="nifti",
        help="dicom-seg: also a DICOM Segmentation object <case>_seg.dcm per "
        "DICOM input, referencing its series (needs pancreas[dicom-seg])",
    )
    segment.add_argument(
        "--preview",
        action="store_true",
        help="also write <case>_preview.png: axial, coronal and sagittal views "
        "through the mask's centre",
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
    evaluate.add_argument(
        "--include-training-cases",
        action="store_true",
        help="without --split, also score the cases the model's manifest lists "
        "as training or validation cases (by default left out); the report "
        "labels each case's role",
    )
    evaluate.add_argument("-o", "--output", required=True, help="report folder")
    evaluate.add_argument(
        "--nsd-tolerance",
        type=_tolerance_mm,
        default=1.0,
        metavar="MM",
        help="tolerance in mm of the surface Dice (NSD) (default 1.0)",
    )
    evaluate.add_argument(
        "--surface-method",
        default="surfel",
        choices=("surfel", "voxel"),
        help="definition of HD95, ASSD and surface Dice: surfel (area-weighted, "
        "as surface-distance, the MSD and TotalSegmentator; default) or voxel "
        "(boundary voxels, as MedPy)",
    )
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
    parser = build_parser()
    args = parser.parse_args(argv)  # before any heavy import: --help is instant
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _streams(quiet=args.quiet):
            logging.basicConfig(
                level=logging.WARNING if args.quiet else logging.INFO,
                format="%(asctime)s %(levelname)s %(message)s",
                stream=sys.stderr,
            )
            if args.quiet:
                for name in ("nibabel", "tensorflow", "absl", "jax", "h5py"):
                    logging.getLogger(name).setLevel(logging.ERROR)
            return _run(args)
    except BrokenPipeError:
        # the reader of stdout went away (``pancreas info --json | head``):
        # no traceback, and nothing more written at interpreter exit
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        return 141  # 128 + SIGPIPE, what a shell reports for such a writer


def _run(args: argparse.Namespace) -> int:
    """Run the command; a usage error or an unusable input exits 2 with a message."""
    from sklearn.exceptions import NotFittedError

    from pancreas.exceptions import PancreasError

    try:
        _select_device(args.device)
        return int(args.func(args))
    except (PancreasError, NotFittedError, OSError, ValueError) as exc:
        if args.debug or isinstance(exc, BrokenPipeError):
            raise
        print(f"pancreas {args.command}: error: {exc}", file=sys.stderr)
        return 2


#: Where :func:`_echo` writes results: the real standard output while a
#: command runs (see :func:`_streams`); None: ``sys.stdout``.
_results: TextIO | None = None


def _echo(*values: Any) -> None:
    """Print a result on standard output; everything else goes to stderr."""
    print(*values, file=_results or sys.stdout, flush=True)


@contextlib.contextmanager
def _streams(*, quiet: bool) -> Iterator[None]:
    """Results on stdout; progress, logs and library output on stderr.

    Keras prints its epoch lines, and native libraries their messages, on
    standard output or error at the file-descriptor level; while a command
    runs, descriptor 1 is pointed at standard error (with ``quiet``, both at
    the null device: TensorFlow's C++ log lines, which ``TF_CPP_MIN_LOG_LEVEL``
    no longer silences, go with it), and only :func:`_echo` writes to the
    real standard output. Python's ``sys.stderr`` stays visible for warnings
    and errors. Streams without a descriptor (a notebook, pytest's capture)
    get the same split at the Python level.
    """
    global _results
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        _results = sys.stdout
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield
        finally:
            _results = None
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(out_fd), os.dup(err_fd)
    python_stderr = sys.stderr
    _results = open(  # noqa: SIM115 (closed below)
        os.dup(saved_out), "w", encoding=sys.stdout.encoding, errors="replace"
    )
    try:
        if quiet:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, err_fd)
            os.close(null)
            sys.stderr = open(  # noqa: SIM115 (closed below)
                os.dup(saved_err),
                "w",
                buffering=1,
                encoding=python_stderr.encoding,
                errors="backslashreplace",
            )
        os.dup2(err_fd, out_fd)
        yield
    finally:
        sys.stdout.flush()
        with contextlib.suppress(BrokenPipeError):
            _results.close()
        _results = None
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved_out, out_fd)
        os.dup2(saved_err, err_fd)
        os.close(saved_out)
        os.close(saved_err)
