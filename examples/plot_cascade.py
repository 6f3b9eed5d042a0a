"""
The random-forest cascade and its candidate superpixels S_RF
============================================================

The second stage of Roth et al. (2015), after Farag et al. (2014): a first
random forest classifies image patches on a regular grid inside the body
into a pancreas response map; a second forest classifies every superpixel
from its own intensity and texture statistics and from the response map in
and around it. The superpixels whose probability ``p_RF`` exceeds 0.5 form
the candidate set S_RF, which must keep nearly all of the pancreas (high
recall) at the cost of heavy over-segmentation: the paper reports a Dice of
only 0.27 for S_RF on its NIH test cases.

This example fits :class:`pancreas.cascade.RFCascade` with the small
``"tiny"`` preset on four phantoms, then shows ``p_RF``, S_RF and its recall
on two held-out phantoms.
"""

# %%
# A small phantom cohort
# ----------------------
# Six cases on a 160 x 160 x 32 grid (2-3 mm pixels, 4-6 mm slices): four
# to train the forests, two held out.
import time

import matplotlib.pyplot as plt
import numpy as np

from pancreas.cascade import candidate_mask, candidate_recall
from pancreas.metrics import dice_score
from pancreas.phantom import make_phantom_cohort
from pancreas.pipeline import make_roth2015_pipeline

cts, labels = make_phantom_cohort(6, shape=(160, 160, 32), random_state=0)
train_cts, train_labels = cts[:4], labels[:4]
test_cts, test_labels = cts[4:], labels[4:]

# %%
# Fit the first two stages
# ------------------------
# :func:`~pancreas.pipeline.make_roth2015_pipeline` builds the whole method;
# slicing the :class:`~pancreas.pipeline.Pipeline` keeps its first two steps,
# the superpixels and the cascade. The ``"tiny"`` preset uses 10 trees per
# forest and 2 folds for the out-of-fold level-1 maps that train level 2.
head = make_roth2015_pipeline(preset="tiny", random_state=0)[:2]
print(head)
t0 = time.perf_counter()
head.fit(train_cts, train_labels)
cascade = head.named_steps["cascade"]
print(
    f"fitted in {time.perf_counter() - t0:.1f} s on {cascade.n_patches_} level-1 "
    f"patches and {cascade.n_superpixels_fit_} level-2 superpixels"
)

# %%
# S_RF on the held-out cases
# --------------------------
# ``transform`` adds ``sp_proba`` (``p_RF`` of every superpixel, indexed by
# its label) and ``candidates`` (the labels with ``p_RF > threshold``) to
# each case's record. :func:`~pancreas.cascade.candidate_mask` paints S_RF
# as a voxel mask and :func:`~pancreas.cascade.candidate_recall` gives the
# fraction of the pancreas inside it.
records = head.transform(test_cts)
print(
    f"{'case':<14}{'superpixels':>12}{'candidates':>12}{'S_RF Dice':>11}{'recall':>8}"
)
for rec, lab in zip(records, test_labels, strict=True):
    truth = rec.label_array(lab)
    print(
        f"{rec.case_id:<14}{rec.n_superpixels:>12}{len(rec.candidates):>12}"
        f"{dice_score(truth, candidate_mask(rec)):>11.3f}"
        f"{candidate_recall(rec, lab):>8.3f}"
    )

# %%
# Draw ``p_RF`` and S_RF on one slice
# -----------------------------------
# ``p_RF`` painted on the superpixels (``sp_proba[superpixels]``), and S_RF
# (orange) with the reference pancreas outline (red). S_RF covers the
# pancreas and much of its surroundings: "pancreas and its surroundings", in
# the paper's words.
rec, truth = records[0], records[0].label_array(test_labels[0])
k = int(np.argmax(truth.sum(axis=(0, 1))))
sx, sy, _ = rec.spacing
extent = (0, rec.shape[0] * sx, 0, rec.shape[1] * sy)
p_rf = rec.sp_proba[rec.superpixels[:, :, k]]
s_rf = candidate_mask(rec)[:, :, k]

fig, axes = plt.subplots(1, 3, figsize=(15, 5), layout="constrained")
for ax in axes:
    ax.imshow(
        rec.volume.array[:, :, k].T,
        cmap="gray",
        vmin=-160,
        vmax=240,
        origin="lower",
        extent=extent,
    )
    ax.set_axis_off()
im = axes[1].imshow(
    np.ma.masked_equal(p_rf, 0).T,
    cmap="viridis",
    vmin=0,
    vmax=1,
    origin="lower",
    extent=extent,
    interpolation="nearest",
)
fig.colorbar(im, ax=axes[1], shrink=0.8, label="p_RF")
orange = np.zeros((*s_rf.T.shape, 4))
orange[s_rf.T] = (1.0, 0.55, 0.0, 0.5)
axes[2].imshow(orange, origin="lower", extent=extent, interpolation="nearest")
for ax in axes[[0, 2]]:
    ax.contour(
        truth[:, :, k].T.astype(float),
        levels=[0.5],
        colors="red",
        linewidths=1.2,
        origin="lower",
        extent=extent,
    )
axes[0].set_title(f"{rec.case_id}, slice {k}: reference (red)")
axes[1].set_title("level-2 probability p_RF of each superpixel")
axes[2].set_title("S_RF: superpixels with p_RF > 0.5 (orange)")

# %%
# Recall against over-segmentation
# --------------------------------
# The cascade's ``threshold`` (0.5, as in the paper) sets the trade-off.
# Thresholding the same ``p_RF`` at other values shows it without refitting:
# lower thresholds keep more of the pancreas and much more of everything
# else.
thresholds = np.linspace(0.1, 0.9, 9)
dice, recall = [], []
for t in thresholds:
    d, r = [], []
    for rec, lab in zip(records, test_labels, strict=True):
        truth = rec.label_array(lab)
        kept = (rec.sp_proba > t)[rec.superpixels]
        d.append(dice_score(truth, kept))
        r.append(kept[truth].mean())
    dice.append(np.mean(d))
    recall.append(np.mean(r))

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.plot(thresholds, recall, "o-", label="recall (pancreas voxels kept)")
ax.plot(thresholds, dice, "s-", label="Dice of the kept superpixels")
ax.axvline(cascade.threshold, color="gray", ls="--", label="threshold used")
ax.set_xlabel("threshold on p_RF")
ax.set_ylim(0, 1.02)
ax.legend(loc="center left")
ax.set_title("S_RF on the held-out cases")

# %%
# What the forests look at
# ------------------------
# The fitted forests are plain scikit-learn
# :class:`~sklearn.ensemble.RandomForestClassifier` objects (``level1_``,
# ``level2_``), with the names of their features. Level 1 sees intensity
# statistics over 5-41 mm patches, texture and location relative to the body
# and the spine; level 2 the same statistics over each superpixel plus the
# level-1 response map inside and around it.
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
for ax, forest, names, title in (
    (axes[0], cascade.level1_, cascade.feature_names_level1_, "level 1 (patches)"),
    (axes[1], cascade.level2_, cascade.feature_names_level2_, "level 2 (superpixels)"),
):
    order = np.argsort(forest.feature_importances_)[-10:]
    ax.barh(np.asarray(names)[order], forest.feature_importances_[order])
    ax.set_xlabel("impurity-based importance")
    ax.set_title(f"{title}: 10 most used of {len(names)} features")
plt.show()
