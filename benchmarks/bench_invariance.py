"""How much a trained model's mask changes with the field of view and the voxel size.

For each held-out phantom (same anatomy, one ``random_state`` per case):

* field of view: the scan cropped to the pancreas plus ``--margin`` mm along z
  and to a ``--fov`` mm field of view in-plane (centred) against the full
  scan: Dice of the two masks on the overlap;
* spacing: the same patient rendered at each of ``--spacings`` (x, y, z in mm,
  ``make_phantom_cohort(spacing=...)``), each mask resampled (nearest
  neighbour) onto the grid of the first: Dice of every pair, and each mask's
  Dice against its own ground truth. ``--factors`` fixes phantom factors of
  these patients (``make_phantom_cohort`` keywords, for example
  ``phase=non-contrast pancreas_variant=fatty``): how a model fares on one
  kind of scan at each spacing.

The issue's full-size check is ``--spacings 0.7 0.7 1 0.9 0.9 2.5 0.8 0.8 5``
with a model trained on full-size scans; with a model trained on 160 x 160 x
40 phantoms (``benchmarks/reproduce_table.py``), use spacings near its
training range (the default).

Usage::

    python benchmarks/bench_invariance.py --model benchmarks/results/model_cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_utils import parse_set, write_json  # noqa: E402

from pancreas.evaluation import field_of_view_box  # noqa: E402
from pancreas.metrics import dice_score, pairwise_dice_on_first_grid  # noqa: E402
from pancreas.persistence import load_pipeline  # noqa: E402
from pancreas.phantom import make_phantom_cohort  # noqa: E402


def _image(vol) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.asarray(vol.array), vol.affine)


def fov_check(pipe, ct, label, margin_mm: float, fov_mm: float) -> dict:
    sp = ct.spacing
    box = field_of_view_box(
        np.asarray(label.array), sp, margin_mm=margin_mm, fov_mm=fov_mm
    )
    full = pipe.predict([ct])[0]
    cropped = _image(ct).slicer[box]
    mask = pipe.predict([cropped])[0]
    return {
        "full_shape": list(ct.shape),
        "cropped_shape": list(cropped.shape),
        "dice_on_overlap": round(dice_score(full[box], mask), 4),
        "full_mask_ml": round(float(full.sum()) * float(np.prod(sp)) / 1000, 1),
    }


def spacing_check(
    pipe, seed: int, spacings: list[tuple[float, float, float]], factors: dict | None = None
) -> dict:
    masks, truth_dice = [], []
    for sp in spacings:
        (ct,), (label,) = make_phantom_cohort(
            1, spacing=sp, random_state=seed, **(factors or {})
        )
        mask = pipe.predict([ct])[0]
        truth_dice.append(round(dice_score(np.asarray(label.array) > 0, mask), 3))
        masks.append(nib.Nifti1Image(mask.astype(np.uint8), ct.affine))
    pairs = {
        f"{i}-{j}": round(d, 3) for (i, j), d in pairwise_dice_on_first_grid(masks).items()
    }
    return {"dice_vs_truth": truth_dice, "pairwise_dice": pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=(160, 160, 40))
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--margin", type=float, default=30.0)
    parser.add_argument("--fov", type=float, default=350.0)
    parser.add_argument(
        "--spacings",
        type=float,
        nargs="+",
        default=[2.4, 2.4, 3.0, 2.8, 2.8, 4.5, 2.6, 2.6, 6.0],
        help="x y z triples in mm",
    )
    parser.add_argument(
        "--factors",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="phantom factors of the spacing check's patients (make_phantom_cohort keywords)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    spacings = [tuple(args.spacings[i : i + 3]) for i in range(0, len(args.spacings), 3)]
    factors = parse_set(args.factors, "--factors")
    pipe = load_pipeline(args.model)
    warnings.simplefilter("ignore")
    images, labels = make_phantom_cohort(
        args.cases, shape=tuple(args.shape), random_state=args.seed
    )
    out = {"fov": [], "spacing": [], "spacings": spacings, "factors": factors}
    for i in range(args.cases):
        res = fov_check(pipe, images[i], labels[i], args.margin, args.fov)
        out["fov"].append(res)
        print("field of view", json.dumps(res), flush=True)
        res = spacing_check(pipe, args.seed + 100 + i, spacings, factors)
        out["spacing"].append(res)
        print("spacing", json.dumps(res), flush=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
