"""Measure the superpixel and RF-cascade stages on a phantom cohort.

Prints, per held-out case, the Optimal superpixel Dice (Roth et al. Table 2,
"Optimal"), the recall and Dice of the candidate set S_RF and the number of
candidates, plus the fit and transform times. Run::

    python benchmarks/tune_cascade.py --train 8 --test 4 --shape 160 160 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pancreas.cascade import RFCascade, candidate_mask, candidate_recall
from pancreas.metrics import dice_score
from pancreas.phantom import make_phantom_cohort
from pancreas.superpixels import SuperpixelGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=8)
    parser.add_argument("--test", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=(160, 160, 40))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--superpixel-area", type=float, default=40.0)
    parser.add_argument("--compactness", type=float, default=0.2)
    parser.add_argument("--sigma", type=float, default=0.0)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--grid-spacing", type=float, default=3.0)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    t0 = time.perf_counter()
    cts, labels = make_phantom_cohort(
        args.train + args.test, shape=tuple(args.shape), random_state=args.seed
    )
    print(
        f"phantom cohort: {time.perf_counter() - t0:.1f} s, spacing "
        f"{cts[0].spacing}, shape {cts[0].shape}"
    )

    gen = SuperpixelGenerator(
        superpixel_area=args.superpixel_area,
        compactness=args.compactness,
        sigma=args.sigma,
        n_jobs=args.n_jobs,
    )
    t0 = time.perf_counter()
    records = gen.fit_transform(cts)
    t_sp = (time.perf_counter() - t0) / len(cts)
    optimal = gen.optimal_dice(records, labels)
    n_sp = [r.n_superpixels for r in records]
    print(
        f"superpixels: {t_sp:.2f} s/case, {np.mean(n_sp):.0f} per case, "
        f"Optimal Dice {optimal.mean():.3f} +- {optimal.std():.3f} "
        f"(min {optimal.min():.3f})"
    )

    train, test = slice(0, args.train), slice(args.train, None)
    cascade = RFCascade(
        n_estimators=args.n_estimators,
        grid_spacing=args.grid_spacing,
        threshold=args.threshold,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    t0 = time.perf_counter()
    cascade.fit(records[train], labels[train])
    t_fit = time.perf_counter() - t0
    print(
        f"RFCascade.fit on {args.train} cases: {t_fit:.1f} s "
        f"({cascade.n_patches_} patches, {cascade.n_superpixels_fit_} superpixels)"
    )

    t0 = time.perf_counter()
    out = cascade.transform(records[test])
    t_tr = (time.perf_counter() - t0) / len(out)
    rows = []
    for rec, lab in zip(out, labels[test], strict=True):
        mask = candidate_mask(rec)
        rows.append(
            (
                candidate_recall(rec, lab),
                dice_score(rec.label_array(lab), mask),
                rec.candidates.size,
                rec.n_superpixels,
            )
        )
    rows = np.array(rows)
    for r in rows:
        print(
            f"  recall {r[0]:.3f}  Dice {r[1]:.3f}  "
            f"candidates {r[2]:.0f} / {r[3]:.0f} superpixels"
        )
    print(
        f"S_RF on {len(out)} held-out cases ({t_tr:.1f} s/case): recall "
        f"{rows[:, 0].mean():.3f} (min {rows[:, 0].min():.3f}), Dice "
        f"{rows[:, 1].mean():.3f}, candidates {rows[:, 2].mean():.0f} per case"
    )
    for t in (0.3, 0.4, 0.6, 0.7):
        rec_t = [
            float(
                np.mean(
                    np.isin(
                        r.superpixels[r.label_array(lab)],
                        np.flatnonzero(r.sp_proba > t),
                    )
                )
            )
            for r, lab in zip(out, labels[test], strict=True)
        ]
        print(f"  threshold {t}: recall {np.mean(rec_t):.3f}")


if __name__ == "__main__":
    main()
