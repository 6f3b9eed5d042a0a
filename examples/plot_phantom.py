"""
The synthetic abdominal CT phantom
==================================

No real training data can be downloaded where this package is built, so its
demos, tests and benchmarks use a synthetic cohort of portal-venous abdominal
CTs: :func:`pancreas.phantom.make_phantom_cohort`. Each case is drawn from an
anatomical model in millimetres (body wall and fat, spine and ribs, liver,
spleen, kidneys, great and mesenteric vessels, stomach, duodenum, colon,
small bowel, lung bases) with a lobulated pancreas from the head, inside the
duodenal C-loop on the patient's right, to the tail at the splenic hilum on
the patient's left. Every case has an RAS+ affine: array axis 0 runs towards
the patient's right, axis 1 anterior, axis 2 superior.

This example generates one full-size case (512 x 512 voxels per slice, like
NIH Pancreas-CT) and shows axial slices through the pancreatic head, body and
tail in a soft-tissue window (W400/L40), with the pancreas label outlined.
The next example, :ref:`sphx_glr_auto_examples_plot_phantom_factors.py`,
shows how the cohort varies (field of view, spacing, contrast phase,
habitus, noise, kernel and more).
"""

# %%
# Generate one full-size case
# ---------------------------
# ``shape=None`` gives NIH-like grids: 512 x 512 x (150-250) voxels, in-plane
# spacing 0.6-0.9 mm and slice spacing about 1-2.5 mm, all drawn per case.
# Passing ``shape=(nx, ny, nz)`` renders the same anatomy on a coarser grid.
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from scipy import ndimage

from pancreas.phantom import make_phantom_cohort

t0 = time.perf_counter()
cts, labels = make_phantom_cohort(1, random_state=3)
ct, label = cts[0], labels[0]
print(f"generated {ct.source} in {time.perf_counter() - t0:.1f} s")
print(f"shape {ct.shape}, spacing {tuple(round(s, 3) for s in ct.spacing)} mm")
ml = label.array.sum() * np.prod(ct.spacing) / 1000
print(
    f"pancreas volume {ml:.0f} mL, median {np.median(ct.array[label.array > 0]):.0f} HU"
)

# %%
# Choose slices through the head, body and tail
# ---------------------------------------------
# Positions are read in world coordinates through the affine. In RAS+ world
# x grows towards the patient's right, so the head (on the patient's right)
# is the part of the label with the largest world x and the tail (on the
# patient's left, at the splenic hilum) the part with the smallest.
lab = label.array > 0
area = lab.sum(axis=(0, 1))
ks = np.flatnonzero(area > 0.3 * area.max())
ijk = np.argwhere(lab)
x_world = nib.affines.apply_affine(ct.affine, ijk)[:, 0]
x_world = [x_world[ijk[:, 2] == k] for k in ks]
x_mean = np.array([x.mean() for x in x_world])
x_min = np.array([x.min() for x in x_world])
x_max = np.array([x.max() for x in x_world])
head = int(ks[np.argmax(x_mean)])
tail = int(ks[np.argmin(x_mean)])
body = int(ks[np.argmax(x_max - x_min)])  # the slice where it spans the midline
if body in (head, tail):
    body = int(ks[len(ks) // 2])

# %%
# Plot in a soft-tissue window
# ----------------------------
# Radiological convention: the patient's right on the left of each image,
# anterior at the top. The images are drawn in world coordinates (mm), with
# the x axis reversed so that the patient's right (large world x) is on the
# left. The view is cropped to the body (the largest connected region above
# -500 HU, which leaves out the scanner table).
sx, sy, sz = ct.spacing
nx, ny, _ = ct.shape
x0, y0 = ct.affine[0, 3] - 0.5 * sx, ct.affine[1, 3] - 0.5 * sy
extent = (x0, x0 + nx * sx, y0, y0 + ny * sy)
parts, n_parts = ndimage.label(ct.array[:, :, body] > -500)
sizes = ndimage.sum_labels(np.ones(parts.shape), parts, range(1, n_parts + 1))
ii, jj = np.nonzero(parts == 1 + int(np.argmax(sizes)))
pad = 12.0  # mm
# reversed x limits: the patient's right on the left
xlim = (x0 + (ii.max() + 1) * sx + pad, x0 + ii.min() * sx - pad)
ylim = (y0 + jj.min() * sy - pad, y0 + (jj.max() + 1) * sy + pad)
aspect = (ylim[1] - ylim[0]) / (xlim[0] - xlim[1])
fig, axes = plt.subplots(1, 3, figsize=(15, 5 * aspect + 0.9), layout="constrained")
for ax, (name, k) in zip(
    axes, [("head", head), ("body", body), ("tail", tail)], strict=True
):
    z_mm = ct.affine[2, 3] + k * sz
    ax.imshow(
        ct.array[:, :, k].T,
        cmap="gray",
        vmin=40 - 200,
        vmax=40 + 200,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    ax.contour(
        lab[:, :, k].T.astype(float),
        levels=[0.5],
        colors="orangered",
        linewidths=1.2,
        origin="lower",
        extent=extent,
    )
    ax.set_title(f"pancreatic {name}: slice {k}, z = {z_mm:.1f} mm")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    y_mid = sum(ylim) / 2
    ax.text(xlim[0] - 4, y_mid, "R", color="w", fontsize=12, va="center")
    ax.text(xlim[1] + 4, y_mid, "L", color="w", fontsize=12, va="center", ha="right")
    ax.set_axis_off()
fig.suptitle(
    f"{ct.source}: synthetic portal-venous CT, {nx} x {ny} x {ct.shape[2]} voxels, "
    f"{sx:.2f} x {sy:.2f} x {sz:.2f} mm, W400/L40; pancreas outlined"
)

# %%
# Save the picture used in the README and the documentation
# ----------------------------------------------------------
# ``python examples/plot_phantom.py --save`` (or with the environment
# variable ``PANCREAS_SAVE_PHANTOM_PNG=1``) writes this figure to
# ``docs/_static/phantom.png``. The documentation build runs the example
# without either, so it never changes that file.
if "--save" in sys.argv[1:] or os.environ.get("PANCREAS_SAVE_PHANTOM_PNG"):
    out = Path(sys.argv[0]).resolve().parents[1] / "docs" / "_static" / "phantom.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")
plt.show()
