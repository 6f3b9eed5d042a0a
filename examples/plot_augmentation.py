"""
Multi-scale superpixel crops and thin-plate-spline deformations
===============================================================

The ConvNet of Roth et al. (2015) does not see superpixels directly: it sees
the bounding box of each candidate superpixel, enlarged by a factor ``s`` at
each of ``Ns`` scales and resampled to a 64 x 64 patch. At training time each
crop is also warped by ``Nt`` random non-rigid deformations, thin-plate
splines (TPS) through a regular grid of randomly moved control points, "such
that the resulting warped images resemble plausible physical variations"
(the paper trains with Ns = 2 scales and Nt = 8 deformations).

This example crops one pancreas superpixel at the four test scales with
:func:`pancreas.patches.crop_superpixels`, then deforms a crop with the
functions and the Keras layer of :mod:`pancreas.augment`.
"""

# %%
# A superpixel on the pancreas outline
# ------------------------------------
# Superpixels of one small phantom; in the slice with the most pancreas we
# pick the largest superpixel that is 40-80 % pancreas, so that its crops
# show the organ's edge.
import matplotlib.pyplot as plt
import numpy as np

from pancreas.augment import (
    RandomThinPlateSpline,
    tps_control_points,
    tps_warp,
    tps_weights,
)
from pancreas.patches import crop_superpixels
from pancreas.phantom import make_synthetic_ct
from pancreas.superpixels import SuperpixelGenerator, superpixel_label_fractions

ct, label = make_synthetic_ct(shape=(256, 256, 40), random_state=2)
record = SuperpixelGenerator().fit_transform([ct])[0]
truth = record.label_array(label)
k = int(np.argmax(truth.sum(axis=(0, 1))))
fraction = superpixel_label_fractions(record.superpixels, truth)
ids, sizes = np.unique(record.superpixels[:, :, k], return_counts=True)
edge = (ids > 0) & (np.abs(fraction[ids] - 0.6) <= 0.2)
chosen = int(ids[edge][np.argmax(sizes[edge])])
print(
    f"superpixel {chosen} of slice {k}: {sizes[ids == chosen][0]} pixels, "
    f"{fraction[chosen]:.0%} pancreas"
)

# %%
# Crops at the four test scales
# -----------------------------
# The box is the superpixel's in-plane bounding box made square, at least
# ``min_box_mm`` (12 mm) wide, times the scale: 1, 1.5, 2 and 3 by default
# (:class:`~pancreas.convnet.SuperpixelConvNet` ``scales``; the paper does not
# give its factors). Each crop is windowed to [-160, 240] HU and scaled to
# [0, 1]. The crop's rows follow array axis 0 and its columns axis 1 of the
# canonical volume; they are drawn like the CT slices of the other examples,
# axis 0 to the right and axis 1 (anterior) up.
scales = (1.0, 1.5, 2.0, 3.0)
crops = crop_superpixels(record, [chosen], scales=scales, patch_size=64)
print(crops.shape, crops.dtype, float(crops.min()), float(crops.max()))


def show(ax, patch, title=""):
    ax.imshow(patch[..., 0].T, cmap="gray", vmin=0, vmax=1, origin="lower")
    ax.set_title(title)
    ax.set_axis_off()


fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
for ax, patch, s in zip(axes, crops, scales, strict=True):
    show(ax, patch, f"scale {s:g}")
fig.suptitle("one superpixel at Ns = 4 scales, each resampled to 64 x 64")

# %%
# The thin-plate spline
# ---------------------
# ``K = g x g`` control points ``omega_i`` on a regular grid over the patch
# (:func:`~pancreas.augment.tps_control_points`, ``g = 4`` by default) are
# moved by displacements ``D_i``; the dense displacement field is the TPS
# through them (the paper's Eq. 1), and the warped patch samples the input at
# ``x + d(x)`` (:func:`~pancreas.augment.tps_warp`). Since the control grid is
# fixed, the field is a fixed linear map of the ``D_i``:
# :func:`~pancreas.augment.tps_weights` is that ``(64 * 64, K)`` matrix.
#
# :class:`~pancreas.augment.RandomThinPlateSpline` draws each ``D_i``
# uniformly in +-``magnitude`` times the patch size, 0.05 by default (+-3.2
# pixels on 64 x 64). Below, one such draw and, to make the mechanism
# visible, the same draw three times larger.
patch = crops[2]  # scale 2
g, size = 4, patch.shape[0]
points = tps_control_points(g, size, size)
rng = np.random.default_rng(0)
unit = rng.uniform(-1.0, 1.0, size=(g * g, 2)).astype(np.float32)
weights = tps_weights(g, size, size)

fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), layout="constrained")
show(axes[0], patch, "scale-2 crop and the 4 x 4 control grid")
axes[0].plot(points[:, 0], points[:, 1], "o", color="orange", ms=4)
for ax, magnitude in zip(axes[1:], (0.05, 0.15), strict=True):
    disp = unit * magnitude * size
    warped = np.asarray(tps_warp(patch[None], disp[None], grid_size=g))[0]
    show(ax, warped, f"warped, magnitude {magnitude:g}")
    field = (weights @ disp).reshape(size, size, 2)
    step = 6
    a, b = np.meshgrid(
        np.arange(0, size, step), np.arange(0, size, step), indexing="ij"
    )
    ax.quiver(
        a,
        b,
        field[::step, ::step, 0],
        field[::step, ::step, 1],
        color="cyan",
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.004,
    )
    ax.plot(points[:, 0], points[:, 1], "o", color="orange", ms=4)

# %%
# Random deformations inside the network
# --------------------------------------
# :class:`~pancreas.augment.RandomThinPlateSpline` is a Keras layer, written
# with ``keras.ops`` only, and the first layer of the ConvNet
# (:func:`~pancreas.convnet.build_convnet`): while training it draws a new
# deformation for every patch of every batch (so ``n_deformations`` passes
# over the data per epoch give the paper's Nt deformations), on the same
# device as the network; at inference it is the identity.
layer = RandomThinPlateSpline(grid_size=4, magnitude=0.05, seed=0)
batch = np.repeat(patch[None], 8, axis=0)
deformed = np.asarray(layer(batch, training=True))
identity = np.asarray(layer(batch))
print("identity at inference:", bool(np.array_equal(identity, batch)))
print("mean absolute change while training:", float(np.abs(deformed - batch).mean()))

fig, axes = plt.subplots(3, 4, figsize=(12, 9.4), layout="constrained")
for i, ax in enumerate(axes[:2].flat):
    show(ax, deformed[i], f"t = {i + 1}")
for i, ax in enumerate(axes[2]):
    im = ax.imshow(
        (deformed[i] - patch)[..., 0].T,
        cmap="coolwarm",
        vmin=-0.3,
        vmax=0.3,
        origin="lower",
    )
    ax.set_title(f"t = {i + 1} minus the crop")
    ax.set_axis_off()
fig.colorbar(im, ax=axes[2], shrink=0.8)
fig.suptitle("Nt = 8 random TPS deformations of the scale-2 crop (magnitude 0.05)")
plt.show()
