"""
How the phantom cohort varies: one picture per factor
=====================================================

Real cohorts differ in field of view, voxel spacing, contrast phase, patient
habitus, arm position, scanner table, noise, reconstruction kernel, streak
artefacts, oral contrast and the pancreas itself.
:func:`pancreas.phantom.make_phantom_cohort` has one keyword per factor, and
``variation="realistic"`` draws them all per case. This example renders the
*same patient* (one ``random_state``) with each value of each factor and
shows an axial slice through the pancreas (soft-tissue window W400/L40,
radiological convention: the patient's right on the left of each image),
with the pancreas label outlined.

The grids are small so that the documentation builds quickly; the detail
factors (noise, kernel, streaks) are shown on a 0.8 mm grid cropped around
the pancreas.
"""

# %%
# Helpers
# -------
# One axial slice per case, through the middle of the pancreas, in world
# coordinates from the affine: RAS+, so world x grows towards the patient's
# right, drawn on the left as radiologists do.
import time

import matplotlib.pyplot as plt
import numpy as np

from pancreas.phantom import make_synthetic_ct

SEED = 4
t_start = time.perf_counter()


def axial(ax, ct, label, title, window=(40, 400), through_metal=False):
    """Show the axial slice through the pancreas's centre (or through metal)."""
    lab = label.array > 0
    k = int(round(np.argwhere(lab)[:, 2].mean())) if lab.any() else ct.shape[2] // 2
    if through_metal:
        k = int(np.argmax((ct.array > 2000).sum(axis=(0, 1))))
    a = ct.affine
    nx, ny = ct.shape[:2]
    x = a[0, 3] + a[0, 0] * np.array([-0.5, nx - 0.5])
    y = a[1, 3] + a[1, 1] * np.array([-0.5, ny - 0.5])
    extent = (x[0], x[1], y[0], y[1])
    level, width = window
    ax.imshow(
        ct.array[:, :, k].T,
        cmap="gray",
        vmin=level - width / 2,
        vmax=level + width / 2,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    if lab[:, :, k].any():
        ax.contour(
            lab[:, :, k].T.astype(float),
            levels=[0.5],
            colors="orangered",
            linewidths=0.8,
            origin="lower",
            extent=extent,
        )
    ax.set_xlim(x[1], x[0])  # the patient's right (large x) on the left
    ax.set_ylim(y[0], y[1])
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def row(factor, values, *, titles=None, grids=None, **common):
    """Render the same patient with each value of one factor."""
    fig, axes = plt.subplots(
        1, len(values), figsize=(3.2 * len(values), 3.4), layout="constrained"
    )
    for i, (ax, value) in enumerate(zip(np.atleast_1d(axes), values, strict=True)):
        grid = grids[i] if grids else {}
        ct, label = make_synthetic_ct(
            random_state=SEED, **{factor: value}, **grid, **common
        )
        title = titles[i] if titles else f"{factor}={value!r}"
        axial(ax, ct, label, title, through_metal=value == "metal")
    fig.suptitle(factor)
    return fig


SMALL = {"shape": (112, 112, 10)}
# the detail factors: 0.8 mm pixels, 160 x 160 mm around the field's centre
DETAIL = {
    "shape": (200, 200, 12),
    "spacing": (0.8, 0.8, 2.5),
    "field_of_view": "partial",
}

# %%
# Field of view
# -------------
# The coverage along z changes (here a coronal reformat shows it), the
# patient does not: the four fields of view of one seed share one anatomy.
FIELDS = ("partial", "abdomen", "abdomen-pelvis", "chest-abdomen-pelvis")
fig, axes = plt.subplots(1, 4, figsize=(12, 5), layout="constrained")
for ax, fov in zip(axes, FIELDS, strict=True):
    ct, label = make_synthetic_ct(
        shape=None, spacing=(5.0, 5.0, 6.0), field_of_view=fov, random_state=SEED
    )
    j = int(round(np.argwhere(label.array > 0)[:, 1].mean()))
    a = ct.affine
    x = a[0, 3] + a[0, 0] * np.array([-0.5, ct.shape[0] - 0.5])
    z = a[2, 3] + a[2, 2] * np.array([-0.5, ct.shape[2] - 0.5])
    ax.imshow(
        ct.array[:, j, :].T,
        cmap="gray",
        vmin=-160,
        vmax=240,
        origin="lower",
        extent=(x[0], x[1], z[0], z[1]),
    )
    ax.set_xlim(x[1], x[0])
    ax.set_title(f"field_of_view={fov!r}\n{np.ptp(z):.0f} mm along z", fontsize=9)
    ax.set_axis_off()
    ax.set_ylim(z[0], z[1])
fig.suptitle("field_of_view (coronal)")

# %%
# The lesser pelvis
# -----------------
# Abdomen-pelvis and chest-abdomen-pelvis scans reach below the iliac crests:
# the femoral heads in their acetabula, the pubic bones meeting at the
# symphysis, and the urinary bladder behind it (60-500 mL of urine at 0-20 HU,
# a thin muscular wall), which a model must learn is not pancreas. This
# patient (seed 1) has a full bladder of about 300 mL.
ct, label = make_synthetic_ct(
    shape=None, spacing=(1.5, 1.5, 3.0), field_of_view="abdomen-pelvis",
    phase="non-contrast", random_state=1,
)
fig, axes = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
for ax, up_mm in zip(axes, (75, 100), strict=True):
    k = int(round(up_mm / ct.spacing[2]))
    ax.imshow(ct.array[::-1, :, k].T, cmap="gray", vmin=-160, vmax=240, origin="lower")
    ax.set_title(f"{up_mm} mm above the lowest slice", fontsize=9)
    ax.set_axis_off()
fig.suptitle("field_of_view='abdomen-pelvis', non-contrast (axial)")

# %%
# Voxel spacing
# -------------
# ``spacing=`` renders the same anatomy on any grid: the pancreas keeps its
# volume in mL. Here 160 x 160 x 60 mm around the field's centre.
row(
    "spacing",
    [(0.8, 0.8, 5.0), (2.0, 2.0, 2.5), (4.0, 4.0, 5.0)],
    grids=[{"shape": (200, 200, 12)}, {"shape": (80, 80, 24)}, {"shape": (40, 40, 12)}],
    field_of_view="partial",
)

# %%
# Contrast phase
# --------------
row("phase", ["non-contrast", "arterial", "portal-venous", "delayed"], **SMALL)

# %%
# Habitus
# -------
row("habitus", [0.0, 1.0], titles=["thin (0)", "obese (1)"], **SMALL)

# %%
# Arms and table
# --------------
row("arms", ["up", "sides"], **SMALL)
row("table", [True, False], **SMALL)

# %%
# Noise and reconstruction kernel
# -------------------------------
row("noise", [5.0, 15.0, 35.0], **DETAIL)
row("kernel", ["smooth", "standard", "sharp"], noise=15.0, **DETAIL)

# %%
# Streaks from bone and metal
# ---------------------------
# The metal case is shown through its clips (in the gallbladder fossa).
row("streaks", ["none", "bone", "metal"], spacing=(1.2, 1.2, 2.5), shape=(250, 200, 24))

# %%
# Oral contrast
# -------------
row("oral_contrast", [False, True], **SMALL)

# %%
# The pancreas: variants and position
# -----------------------------------
# A fatty pancreas darkens towards fat: its parenchyma mixes the phase's
# pancreas HU and fat's by the fraction of fat in it.
row(
    "pancreas_variant",
    ["typical", "fatty", "fatty-atrophic", "bulky-head"],
    **SMALL,
)
row("pancreas_shift", [-15.0, 0.0, 15.0], **SMALL)

# %%
# All at once
# -----------
# ``variation="realistic"`` draws every factor per case.
fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4), layout="constrained")
for i, ax in enumerate(axes):
    ct, label = make_synthetic_ct(
        shape=(128, 128, 16), variation="realistic", random_state=100 + i
    )
    axial(ax, ct, label, f"variation='realistic', seed {100 + i}")
fig.suptitle("variation='realistic'")
print(f"rendered all cases in {time.perf_counter() - t_start:.1f} s")
plt.show()
