"""
The whole method: train, choose the threshold, segment, report
==============================================================

:func:`pancreas.pipeline.make_roth2015_pipeline` chains the four stages of
Roth et al. (2015) in a scikit-learn :class:`~pancreas.pipeline.Pipeline`:

1. :class:`~pancreas.superpixels.SuperpixelGenerator`: SLIC superpixels;
2. :class:`~pancreas.cascade.RFCascade`: the candidate superpixels S_RF;
3. :class:`~pancreas.convnet.SuperpixelConvNet`: the ConvNet probability of
   each candidate at several scales, painted into P(x);
4. :class:`~pancreas.refine.GaussianRefiner`: 3D Gaussian smoothing, G(P(x)),
   and a threshold chosen on validation cases.

This example trains the ``"tiny"`` preset (a very small network on 16 x 16
patches, two epochs) on four small phantoms, chooses the threshold on two
more, segments a held-out one and prints the paper's stage table for it. The
``"tiny"`` preset exists for tests and examples; use ``"cpu"`` or
``"paper"`` for real work.
"""

# %%
# Train, validation and test cases
# --------------------------------
# The paper splits NIH Pancreas-CT 60 / 2 / 20; here 4 / 2 / 1 phantoms on
# a 160 x 160 x 32 grid (2-3 mm pixels, 4-6 mm slices).
import time

import matplotlib.pyplot as plt
import numpy as np

from pancreas.cascade import candidate_mask
from pancreas.metrics import dice_score
from pancreas.phantom import make_phantom_cohort
from pancreas.pipeline import make_roth2015_pipeline

cts, labels = make_phantom_cohort(7, shape=(160, 160, 32), random_state=0)
X_train, y_train = cts[:4], labels[:4]
X_val, y_val = cts[4:6], labels[4:6]
X_test, y_test = cts[6:], labels[6:]

# %%
# Fit
# ---
# With ``X_val`` and ``y_val``, :meth:`~pancreas.pipeline.Pipeline.fit` fits
# the superpixels, the cascade and the ConvNet on the training cases and then
# the refiner on the validation cases, where it picks the threshold on
# G(P(x)) that maximises the mean Dice (the paper: 0.4 on its two validation
# cases).
pipe = make_roth2015_pipeline(preset="tiny", random_state=0)
params = pipe.get_params()
print({k: params[f"convnet__{k}"] for k in ("patch_size", "scales", "epochs")})

t0 = time.perf_counter()
pipe.fit(X_train, y_train, X_val=X_val, y_val=y_val)
convnet = pipe.named_steps["convnet"]
refiner = pipe.named_steps["refiner"]
print(f"fitted in {time.perf_counter() - t0:.0f} s")
print(f"ConvNet: {convnet.n_train_patches_} training patches per epoch")
print(f"threshold chosen on the validation cases: {refiner.threshold_:.2f}")

# %%
# Segment the held-out case
# -------------------------
# ``predict`` returns one uint8 mask per input and ``predict_proba`` one
# float32 map G(P(x)), each in the input's own grid (so they can be saved
# with the input's affine, see :func:`pancreas.io.save_volume`);
# ``pipe.score(X, y)`` would give the mean Dice.
t0 = time.perf_counter()
mask = pipe.predict(X_test)[0]
print(f"segmented in {time.perf_counter() - t0:.1f} s")
proba = pipe.predict_proba(X_test)[0]
truth = y_test[0].array > 0
print(mask.dtype, mask.shape, proba.dtype, f"Dice {dice_score(truth, mask):.3f}")

# %%
# Every stage on one slice
# ------------------------
# :meth:`~pancreas.pipeline.Pipeline.records` runs every step but the last and
# returns the per-case records; the refiner's
# :meth:`~pancreas.refine.GaussianRefiner.stage_maps` gives P(x) and G(P(x))
# with the first scale only (Ns=1) and with all four (Ns=4), as in the
# paper's Figure 2. The last panel shows the final mask (green) against the
# reference (red), the colours of the paper's Figure 7. (Records and stage
# maps are in canonical RAS+ voxel order, ``predict`` returns the input's own
# order; the phantoms are stored in canonical order, so the two coincide.)
record = pipe.records(X_test)[0]
k = int(np.argmax(truth.sum(axis=(0, 1))))
maps = refiner.stage_maps(record)
sx, sy, _ = record.spacing
ii, jj = np.nonzero(truth[:, :, k])
mi, mj = round(60 / sx), round(60 / sy)
crop = (
    slice(max(ii.min() - mi, 0), ii.max() + mi + 1),
    slice(max(jj.min() - mj, 0), jj.max() + mj + 1),
)
extent = (crop[0].start * sx, crop[0].stop * sx, crop[1].start * sy, crop[1].stop * sy)
ct_slice = X_test[0].array[:, :, k][crop].T

panels = [
    ("S_RF", candidate_mask(record)[:, :, k].astype(float)),
    ("P(x) Ns=1", maps["P(x) Ns=1"][:, :, k]),
    ("P(x) Ns=4", maps["P(x) Ns=all"][:, :, k]),
    ("G(P(x)) Ns=1", maps["G(P(x)) Ns=1"][:, :, k]),
    ("G(P(x)) Ns=4", maps["G(P(x)) Ns=all"][:, :, k]),
]
fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), layout="constrained")
for ax in axes.flat:
    ax.imshow(ct_slice, cmap="gray", vmin=-160, vmax=240, origin="lower", extent=extent)
    ax.set_axis_off()
for ax, (title, image) in zip(axes.flat, panels, strict=False):
    im = ax.imshow(
        np.ma.masked_less(image[crop], 0.02).T,
        cmap="magma",
        vmin=0,
        vmax=1,
        alpha=0.75,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    ax.set_title(title)
fig.colorbar(im, ax=axes, shrink=0.6, label="probability")
for m, colour in ((truth, "red"), (mask > 0, "lime")):
    axes[1, 2].contour(
        m[:, :, k][crop].T.astype(float),
        levels=[0.5],
        colors=colour,
        linewidths=1.5,
        origin="lower",
        extent=extent,
    )
axes[1, 2].set_title(f"mask: G(P(x)) Ns=4 > {refiner.threshold_:.2f}")
fig.suptitle(f"{record.case_id}, slice {k}: mask (green) and reference (red)")

# %%
# Dice against the threshold (the paper's Figure 6)
# -------------------------------------------------
# ``refiner.dice_curves_`` holds, for each validation case, the Dice of every
# stage at each threshold of ``refiner.thresholds_``; the threshold used is
# the best one for G(P(x)) with all scales.
fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
for key, style in (
    ("P(x) Ns=1", "C0--"),
    ("G(P(x)) Ns=1", "C0-"),
    ("P(x) Ns=all", "C1--"),
    ("G(P(x)) Ns=all", "C1-"),
):
    curve = refiner.dice_curves_[key].mean(axis=0)
    ax.plot(refiner.thresholds_, curve, style, label=key.replace("all", "4"))
ax.axvline(refiner.threshold_, color="gray", ls=":", label="chosen threshold")
ax.set_xlabel("threshold on p_ConvNet")
ax.set_ylabel("mean Dice on the validation cases")
ax.set_ylim(0, 1)
ax.legend()

# %%
# The stage table (the paper's Table 2)
# -------------------------------------
# :meth:`~pancreas.pipeline.Pipeline.stage_report` gives the Dice of every
# stage for each case, beside the paper's means on the NIH test cases:
# Optimal (the best superpixel labelling), S_RF and its recall, then P(x) and
# G(P(x)) at Ns=1 and Ns=4, each at the threshold the refiner found best for
# it.
report = pipe.stage_report(X_test, y_test)
print(report.to_text())
plt.show()
