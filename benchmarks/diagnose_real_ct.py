"""Where a phantom-trained pipeline loses the real pancreas, stage by stage.

Loads a fitted pipeline (a model directory, e.g. ``demo_output/model`` from
``make demo``, or ``results/model_cpu`` saved by
``benchmarks/reproduce_table.py``) and runs it on the real CT in
../shared/data/totalseg_case1, printing the candidate set's size and recall
against TotalSegmentator's pancreas (label 7), the ConvNet's probabilities
on the candidates that cover it, and how well each stage ranks the
candidates: the area under the ROC curve of the level-2 forest's p_RF and of
the ConvNet's p (Ns=1 and Ns=4) for telling the candidates that are at least
half pancreas from the others (0.5: no better than chance). Then it segments
the DICOM series of ../shared/data/totalseg_case2_dicom (no reference there)
and prints where the mask lies: its volume, its centre in the patient's
frame (RAS mm) and relative to the body's centre, and its mean HU.

Usage::

    python benchmarks/reproduce_table.py      # writes results/model_cpu
    python benchmarks/diagnose_real_ct.py
    python benchmarks/diagnose_real_ct.py --model demo_output/model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.metrics import roc_auc_score

from pancreas.cascade import candidate_mask, candidate_recall
from pancreas.convnet import _majority_pancreas
from pancreas.io import load_volume
from pancreas.metrics import dice_score
from pancreas.persistence import load_pipeline

HERE = Path(__file__).resolve().parent
REAL_CT = HERE.parent.parent / "shared" / "data" / "totalseg_case1"
REAL_DICOM = HERE.parent.parent / "shared" / "data" / "totalseg_case2_dicom"
#: TotalSegmentator v2 labels whose HU the script reports.
ORGANS = {7: "pancreas", 1: "spleen", 5: "liver", 2: "kidney right", 3: "kidney left"}
sys.path.insert(0, str(HERE))
from _bench_utils import write_json  # noqa: E402


def where_is_the_mask(ct, mask: np.ndarray) -> dict:
    """Volume, centre (RAS mm, and from the body's centre) and mean HU of a mask."""
    from nibabel.orientations import aff2axcodes

    if aff2axcodes(ct.affine) != ("R", "A", "S"):
        raise ValueError(f"expected the pipeline's RAS output, got {aff2axcodes(ct.affine)}")
    hu = np.asarray(ct.array)
    mask = np.asarray(mask, dtype=bool)
    voxel_ml = float(np.prod(ct.spacing)) / 1000
    out = {"volume_ml": round(float(mask.sum()) * voxel_ml, 1)}
    if not mask.any():
        return out
    world = lambda ijk: ct.affine[:3, :3] @ ijk + ct.affine[:3, 3]  # noqa: E731
    centre = world(np.argwhere(mask).mean(axis=0))
    body = world(np.argwhere(hu > -500).mean(axis=0))
    offset = centre - body
    out.update(
        centre_ras_mm=[round(float(v), 1) for v in centre],
        from_body_centre_mm={
            "right (+) / left (-)": round(float(offset[0]), 1),
            "anterior (+) / posterior (-)": round(float(offset[1]), 1),
        },
        mean_hu=round(float(hu[mask].mean()), 1),
        slices=int(mask.any(axis=(0, 1)).sum()),
    )
    return out


def candidate_ranking(rec, label: np.ndarray) -> dict:
    """How well p_RF and the ConvNet's p separate pancreas candidates (ROC AUC)."""
    positive = _majority_pancreas(rec.superpixels, rec.candidates, label)
    p_rf = rec.sp_proba[rec.candidates]
    scores = {
        "p_rf": p_rf,
        "convnet_ns1": rec.convnet_proba[:, 0],
        "convnet_ns4": rec.convnet_proba.mean(axis=1),
    }
    out = {
        "n_candidates": int(positive.size),
        "n_pancreas_candidates": int(positive.sum()),
        "p_rf_all": round(float(p_rf.mean()), 4),
        "p_rf_on_pancreas": round(float(p_rf[positive].mean()), 4) if positive.any() else None,
    }
    both = 0 < positive.sum() < positive.size  # an AUC needs both classes
    for name, score in scores.items():
        out[f"auc_{name}"] = round(float(roc_auc_score(positive, score)), 4) if both else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "results" / "model_cpu")
    parser.add_argument("--data", type=Path, default=REAL_CT)
    parser.add_argument("--dicom", type=Path, default=REAL_DICOM)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    pipe = load_pipeline(args.model)
    ct = load_volume(args.data / "example_ct.nii.gz")
    seg = load_volume(args.data / "example_seg_fast_force_split.nii.gz")
    labels = np.asarray(seg.array)
    truth = labels == 7
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
    ranking = candidate_ranking(rec, label)
    print("candidate ranking (ROC AUC, pancreas candidates against the rest):", json.dumps(ranking))
    # the last stage on the record made above: the mask pipe.predict([ct])
    # gives, without running the first three stages a second time
    mask = pipe[-1].predict([rec])[0]
    print(f"final Dice {dice_score(truth, mask):.3f}")
    hu = np.asarray(ct.array)
    organ_hu = {}
    for value, organ in ORGANS.items():
        if (labels == value).any():
            q = np.percentile(hu[labels == value], [25, 50, 75])
            organ_hu[organ] = [round(float(v), 1) for v in q]
    print("case1 HU quartiles (25/50/75) in TotalSegmentator's organs:", json.dumps(organ_hu))
    result = {
        "case1": {
            "organ_hu_quartiles": organ_hu,
            "candidates": len(rec.candidates),
            "s_rf_recall": round(candidate_recall(rec, label), 4),
            "convnet_p_all": round(float(proba.mean()), 4),
            "convnet_p_on_pancreas": round(float(on_pancreas), 4),
            "ranking": ranking,
            "dice": round(dice_score(truth, mask), 4),
            "mask": where_is_the_mask(ct, mask),
            "truth": where_is_the_mask(ct, truth),
        }
    }
    print("case1 mask", json.dumps(result["case1"]["mask"]))
    print("case1 truth", json.dumps(result["case1"]["truth"]))
    if args.dicom.is_dir():
        series = load_volume(args.dicom)
        # the pipeline returns masks in the input's voxel order; compare in RAS
        from pancreas.record import make_record

        rec2 = make_record(series, "case2")
        mask2 = rec2.label_array(pipe.predict([series])[0])
        result["case2"] = where_is_the_mask(rec2.volume, mask2)
        print(f"case2 ({args.dicom.name}, no reference)", json.dumps(result["case2"]))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
