"""Where a phantom-trained pipeline loses the real pancreas, stage by stage.

Loads a fitted pipeline (a model directory, e.g. ``demo_output/model`` from
``make demo``, or ``results/model_cpu`` saved by
``benchmarks/reproduce_table.py``) and runs it on the real CT in
../shared/data/totalseg_case1, printing the candidate set's size and recall
against TotalSegmentator's pancreas (label 7) and the ConvNet's probabilities
on the candidates that cover it.

Usage::

    python benchmarks/reproduce_table.py      # writes results/model_cpu
    python benchmarks/diagnose_real_ct.py
    python benchmarks/diagnose_real_ct.py --model demo_output/model
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from pancreas.cascade import candidate_mask, candidate_recall
from pancreas.io import load_volume
from pancreas.metrics import dice_score
from pancreas.persistence import load_pipeline

HERE = Path(__file__).resolve().parent
REAL_CT = HERE.parent.parent / "shared" / "data" / "totalseg_case1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "results" / "model_cpu")
    parser.add_argument("--data", type=Path, default=REAL_CT)
    args = parser.parse_args()

    pipe = load_pipeline(args.model)
    ct = load_volume(args.data / "example_ct.nii.gz")
    seg = load_volume(args.data / "example_seg_fast_force_split.nii.gz")
    truth = np.asarray(seg.array) == 7
    rec = pipe[:3].transform([ct])[0]
    label = rec.label_array(truth)
    print(f"{ct.source}: shape {ct.shape}, spacing {ct.spacing}")
    print(
        f"superpixels {rec.n_superpixels}, candidates (S_RF) {len(rec.candidates)}, "
        f"S_RF recall {candidate_recall(rec, label):.3f}"
    )
    proba = rec.convnet_proba
    covering = np.unique(rec.superpixels[label & candidate_mask(rec)])
    rows = np.searchsorted(rec.candidates, covering)
    on_pancreas = proba[rows].mean() if rows.size else float("nan")
    print(
        f"ConvNet p (mean over scales): all candidates {proba.mean():.3f}, "
        f"candidates on the pancreas {on_pancreas:.3f}"
    )
    mask = pipe.predict([ct])[0]
    print(f"final Dice {dice_score(truth, mask):.3f}")


if __name__ == "__main__":
    main()
