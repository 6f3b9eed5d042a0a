"""Figures of an evaluation: Dice against threshold and CT overlays.

The figures of Roth et al. (2015): Figure 6 (mean Dice of P(x) and G(P(x))
against the threshold, :func:`plot_dice_curves`) and Figure 7 (axial CT
slices with the ground truth and the automatic segmentation outlined,
:func:`plot_overlay`), plus three orthogonal planes through the pancreas
(:func:`plot_three_plane`).

The overlays draw :class:`SlicePanel` objects: small 2-D crops of a case in
display orientation, cut from canonical (RAS+) volumes by
:func:`slice_panel`. Axial and coronal views follow the radiological
convention (the patient's right on the viewer's left), axial views have
anterior at the top, coronal and sagittal views superior at the top and
sagittal views anterior on the left.

Every function builds a :class:`matplotlib.figure.Figure` directly (no
pyplot state, so it works headless and in threads) and imports matplotlib
only when called, so ``import pancreas`` stays light.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "SlicePanel",
    "plot_dice_curves",
    "plot_overlay",
    "plot_panel",
    "plot_preview",
    "plot_three_plane",
    "slice_panel",
]

#: CT window (level, width) in HU of the overlays: the paper's W400/L40.
ABDOMEN_WINDOW = (40.0, 400.0)
#: Outline colours: ground truth and prediction (a colour-blind safe pair).
TRUTH_COLOR = "#00d5ff"
PRED_COLOR = "#ff9500"
#: Resolution of the saved PNGs.
DPI = 120

# Display orientation of each plane: the canonical axes kept (rows, columns
# after the transpose) and the patient sides at top, bottom, left, right.
_AXIS_NAME = {"axial": "z", "coronal": "y", "sagittal": "x"}
_PLANES = {
    "axial": {"normal": 2, "sides": ("A", "P", "R", "L")},
    "coronal": {"normal": 1, "sides": ("S", "I", "R", "L")},
    "sagittal": {"normal": 0, "sides": ("S", "I", "A", "P")},
}


@dataclass(eq=False)
class SlicePanel:
    """One 2-D view of a case: CT, ground truth and prediction, display-ready.

    Row 0 is the top of the picture. The CT is stored clipped to the
    display window as int16, so a panel costs about 4 bytes a pixel.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        CT in Hounsfield units.
    truth : ndarray of bool of shape (H, W)
        Ground-truth pancreas.
    pred : ndarray of bool of shape (H, W)
        Predicted pancreas.
    spacing : tuple of 2 float, default=(1.0, 1.0)
        Pixel size in mm between rows and between columns.
    plane : str, default="axial"
        ``"axial"``, ``"coronal"`` or ``"sagittal"`` (any text is allowed).
    index : int, default=0
        Index of the slice along the plane's normal in the canonical grid.
    sides : tuple of 4 str, default=("A", "P", "R", "L")
        Patient side at the top, bottom, left and right of the picture.
    position_mm : float or None, default=None
        Position of the slice along the plane's normal in scanner (RAS+)
        coordinates, mm: x for sagittal, y for coronal, z for axial planes.
        None when the volume's affine is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import SlicePanel
    >>> truth = np.zeros((8, 6), bool); truth[2:5, 2:4] = True
    >>> panel = SlicePanel(np.zeros((8, 6)), truth, truth, spacing=(2.0, 1.0))
    >>> panel.shape, panel.extent_mm
    ((8, 6), (16.0, 6.0))
    """

    image: NDArray[Any]
    truth: NDArray[np.bool_]
    pred: NDArray[np.bool_]
    spacing: tuple[float, float] = (1.0, 1.0)
    plane: str = "axial"
    index: int = 0
    sides: tuple[str, str, str, str] = ("A", "P", "R", "L")
    position_mm: float | None = None

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image)
        self.truth = np.asarray(self.truth, dtype=bool)
        self.pred = np.asarray(self.pred, dtype=bool)
        if self.image.ndim != 2:
            raise ValueError(f"image must be 2-D, got shape {self.image.shape}")
        if self.truth.shape != self.image.shape or self.pred.shape != self.image.shape:
            raise ValueError(
                f"image {self.image.shape}, truth {self.truth.shape} and pred "
                f"{self.pred.shape} must have the same shape"
            )
        sp = tuple(float(s) for s in self.spacing)
        if len(sp) != 2 or not all(math.isfinite(s) and s > 0 for s in sp):
            raise ValueError(f"spacing must be 2 positive numbers, got {self.spacing}")
        self.spacing = (sp[0], sp[1])
        self.index = int(self.index)
        self.sides = tuple(str(s) for s in self.sides)  # type: ignore[assignment]
        if self.position_mm is not None:
            self.position_mm = float(self.position_mm)

    @property
    def label(self) -> str:
        """Where the slice is: ``"axial slice 12, z = -148.5 mm"``."""
        text = f"{self.plane} slice {self.index}"
        if self.position_mm is not None:
            axis = _AXIS_NAME.get(self.plane, "position")
            text += f", {axis} = {self.position_mm:.1f} mm"
        return text

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (H, W) of the panel in pixels."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))

    @property
    def extent_mm(self) -> tuple[float, float]:
        """Height and width of the panel in mm."""
        return (self.shape[0] * self.spacing[0], self.shape[1] * self.spacing[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the panel's arrays, in bytes."""
        return int(self.image.nbytes + self.truth.nbytes + self.pred.nbytes)


def slice_panel(
    ct: ArrayLike,
    truth: ArrayLike,
    pred: ArrayLike,
    *,
    plane: str = "axial",
    index: int,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    box: Sequence[slice] | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    max_size: int = 192,
    affine: ArrayLike | None = None,
) -> SlicePanel:
    """Cut one plane out of canonical volumes into a display-ready panel.

    Parameters
    ----------
    ct : array-like of shape (I, J, K)
        CT in Hounsfield units, canonical RAS+ voxel order (axis 0 towards
        the patient's right, 1 anterior, 2 superior).
    truth : array-like of shape (I, J, K)
        Ground truth; non-zero is pancreas.
    pred : array-like of shape (I, J, K)
        Prediction; non-zero is pancreas.
    plane : {"axial", "coronal", "sagittal"}, default="axial"
        The plane, normal to axis 2, 1 or 0.
    index : int
        Slice index along the plane's normal.
    spacing : sequence of 3 float, default=(1.0, 1.0, 1.0)
        Voxel size in mm along each canonical axis.
    box : sequence of 2 slice, optional
        Crop along the two in-plane canonical axes, in increasing axis order
        (for example ``(x_slice, y_slice)`` for an axial plane). Default: the
        whole plane.
    window : tuple of 2 float, default=(40.0, 400.0)
        Level and width in HU; the CT is clipped to it and stored as int16.
    max_size : int, default=192
        Largest side in pixels; bigger crops are subsampled by a whole step
        (the pixel spacing grows accordingly).
    affine : array-like of shape (4, 4), optional
        The canonical volume's voxel-to-scanner (RAS+ mm) affine; gives the
        panel's :attr:`~SlicePanel.position_mm` (at the crop's centre).

    Returns
    -------
    SlicePanel
        Independent copies, small enough to keep for hundreds of cases.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import slice_panel
    >>> ct = np.zeros((20, 10, 4)); ct[19, 9, 2] = 100  # right, anterior corner
    >>> p = slice_panel(ct, ct > 0, ct > 0, index=2, spacing=(0.5, 0.5, 3.0))
    >>> p.shape, p.sides, int(p.image[0, 0])  # row 0 anterior, column 0 right
    ((10, 20), ('A', 'P', 'R', 'L'), 100)
    >>> slice_panel(ct, ct > 0, ct > 0, plane="sagittal", index=19).shape
    (4, 10)
    """
    if plane not in _PLANES:
        raise ValueError(f"plane must be one of {sorted(_PLANES)}, got {plane!r}")
    ct = np.asarray(ct)
    if ct.ndim != 3:
        raise ValueError(f"ct must be 3-D, got shape {ct.shape}")
    normal = int(_PLANES[plane]["normal"])
    index = int(index)
    if not 0 <= index < ct.shape[normal]:
        raise ValueError(
            f"index {index} out of range for a {plane} plane of a volume of "
            f"shape {ct.shape}"
        )
    spacing3 = tuple(float(s) for s in spacing)
    if len(spacing3) != 3:
        raise ValueError(f"spacing must have 3 entries, got {spacing}")
    in_plane = [a for a in range(3) if a != normal]
    if box is None:
        box = (slice(None), slice(None))
    if len(box) != 2:
        raise ValueError("box must hold one slice per in-plane axis (2)")
    box = tuple(box)
    lengths = [
        len(range(*b.indices(ct.shape[a]))) for a, b in zip(in_plane, box, strict=True)
    ]
    step = max(1, math.ceil(max(lengths) / int(max_size)))
    sel: list[Any] = [None, None, None]
    sel[normal] = index
    for a, b in zip(in_plane, box, strict=True):
        start, stop, _ = b.indices(ct.shape[a])
        sel[a] = slice(start, stop, step)
    sel_t = tuple(sel)
    level, width = float(window[0]), float(window[1])
    lo, hi = level - width / 2, level + width / 2

    def orient(a: NDArray[Any]) -> NDArray[Any]:
        # a is (first in-plane axis, second); display rows = second axis
        # reversed (A or S at the top), columns = first axis reversed (R or A
        # on the left).
        return np.ascontiguousarray(a[::-1, ::-1].T)

    position = None
    if affine is not None:
        centre = np.zeros(4)
        centre[normal], centre[3] = index, 1.0
        for a, b in zip(in_plane, box, strict=True):
            start, stop, _ = b.indices(ct.shape[a])
            centre[a] = (start + stop - 1) / 2
        position = float((np.asarray(affine, dtype=np.float64) @ centre)[normal])
    image = orient(np.clip(ct[sel_t], lo, hi).astype(np.int16))
    t = orient(np.asarray(truth)[sel_t] != 0)
    p = orient(np.asarray(pred)[sel_t] != 0)
    return SlicePanel(
        image=image,
        truth=t,
        pred=p,
        spacing=(spacing3[in_plane[1]] * step, spacing3[in_plane[0]] * step),
        plane=plane,
        index=index,
        sides=_PLANES[plane]["sides"],
        position_mm=position,
    )


def _new_figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _outline_handles(truth_color: str, pred_color: str) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=truth_color, lw=2, label="ground truth"),
        Line2D([], [], color=pred_color, lw=2, ls="--", label="prediction"),
    ]


def _nice_length(mm: float) -> float:
    """A round scale-bar length of at most about a quarter of ``mm``."""
    target = mm / 4
    for v in (100, 50, 20, 10, 5, 2, 1):
        if v <= target:
            return float(v)
    return 1.0


def plot_panel(
    panel: SlicePanel,
    *,
    ax: Axes | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    title: str | None = None,
    truth_color: str = TRUTH_COLOR,
    pred_color: str = PRED_COLOR,
) -> Figure:
    """Draw one panel: CT in a window, ground truth and prediction outlined.

    The ground truth is a solid outline and the prediction a dashed one.
    Patient sides are written at the edges and a scale bar in mm at the
    bottom left; the pixel aspect follows ``panel.spacing``.

    Parameters
    ----------
    panel : SlicePanel
        The view to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    window : tuple of 2 float, default=(40.0, 400.0)
        CT level and width in HU.
    title : str, optional
        Axes title; default the plane, slice index and position
        (:attr:`SlicePanel.label`).
    truth_color : str, default="#00d5ff"
        Colour of the ground-truth outline.
    pred_color : str, default="#ff9500"
        Colour of the prediction outline.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import SlicePanel, plot_panel
    >>> m = np.zeros((20, 20), bool); m[5:15, 5:12] = True
    >>> fig = plot_panel(SlicePanel(np.zeros((20, 20)), m, np.roll(m, 3, axis=1)))
    >>> fig.axes[0].get_title(), len(fig.axes[0].collections)
    ('axial slice 0', 2)
    """
    if ax is None:
        h, w = panel.extent_mm
        scale = 4.0 / max(h, w)
        ax = _new_figure((max(2.0, w * scale), max(2.0, h * scale) + 0.4)).subplots()
    level, width = float(window[0]), float(window[1])
    ax.imshow(
        panel.image,
        cmap="gray",
        vmin=level - width / 2,
        vmax=level + width / 2,
        aspect=panel.spacing[0] / panel.spacing[1],
        interpolation="nearest",
    )
    for mask, color, style in (
        (panel.truth, truth_color, "solid"),
        (panel.pred, pred_color, "dashed"),
    ):
        # contour warns on a constant field: nothing to outline then
        if mask.any() and not mask.all():
            ax.contour(
                mask.astype(np.float32),
                levels=[0.5],
                colors=[color],
                linewidths=1.8,
                linestyles=style,
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else panel.label)
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=2, foreground="black")]
    style = {
        "color": "white",
        "fontsize": 8,
        "fontweight": "bold",
        "path_effects": halo,
    }
    top, bottom, left, right = panel.sides
    ax.text(0.5, 0.985, top, ha="center", va="top", transform=ax.transAxes, **style)
    ax.text(
        0.5, 0.015, bottom, ha="center", va="bottom", transform=ax.transAxes, **style
    )
    ax.text(0.015, 0.5, left, ha="left", va="center", transform=ax.transAxes, **style)
    ax.text(0.985, 0.5, right, ha="right", va="center", transform=ax.transAxes, **style)
    # the display window, stated on the image (as a viewer's overlay does)
    ax.text(
        0.985,
        0.015,
        f"W {width:g} L {level:g}",
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        **{**style, "fontweight": "normal", "fontsize": 7},
    )
    # scale bar: columns are spacing[1] mm apart
    h_px, w_px = panel.shape
    bar_mm = _nice_length(panel.extent_mm[1])
    bar_px = bar_mm / panel.spacing[1]
    x0, y0 = 0.06 * w_px - 0.5, h_px - 0.5 - 0.07 * h_px
    ax.plot(
        [x0, x0 + bar_px],
        [y0, y0],
        color="white",
        lw=2.5,
        solid_capstyle="butt",
        path_effects=halo,
    )
    ax.text(
        x0 + bar_px / 2,
        y0 - 0.015 * h_px,
        f"{bar_mm:g} mm",
        ha="center",
        va="bottom",
        **{**style, "fontweight": "normal", "fontsize": 7},
    )
    ax.set_xlim(-0.5, w_px - 0.5)
    ax.set_ylim(h_px - 0.5, -0.5)
    return ax.figure


def _plot_panels(
    panels: Sequence[SlicePanel],
    titles: Sequence[str],
    *,
    title: str | None,
    fig: Figure | None,
    window: tuple[float, float],
    truth_color: str,
    pred_color: str,
    panel_width: float = 3.4,
    handles: list[Any] | None = None,
) -> Figure:
    if len(panels) == 0:
        raise ValueError("no panels to draw")
    ratios = [p.extent_mm[1] / p.extent_mm[0] for p in panels]
    # slots at least 0.8 of their height wide, so that titles fit
    slots = [max(0.8, r) for r in ratios]
    if fig is None:
        # all panels share one height; widths follow their physical aspect,
        # and the figure is kept under 13 inches wide
        height = min(5.0, max(2.2, panel_width / max(1.0, max(ratios))))
        height = max(1.6, min(height, 12.5 / sum(slots)))
        fig = _new_figure((max(5.0, sum(slots) * height + 0.3), height + 1.0))
    axes = fig.subplots(1, len(panels), squeeze=False, width_ratios=slots)[0]
    for ax, panel, name in zip(axes, panels, titles, strict=True):
        plot_panel(
            panel,
            ax=ax,
            window=window,
            title=name,
            truth_color=truth_color,
            pred_color=pred_color,
        )
    fig.legend(
        handles=handles or _outline_handles(truth_color, pred_color),
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    return fig


def plot_overlay(
    panels: Sequence[SlicePanel],
    *,
    title: str | None = None,
    fig: Figure | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    truth_color: str = TRUTH_COLOR,
    pred_color: str = PRED_COLOR,
) -> Figure:
    """Axial CT slices side by side with both outlines (the paper's Figure 7).

    Parameters
    ----------
    panels : sequence of SlicePanel
        The slices, left to right (usually axial, from inferior to superior).
    title : str, optional
        Figure title, for example the case and its Dice.
    fig : matplotlib.figure.Figure, optional
        An empty figure to draw in; default a new one sized to the panels.
    window : tuple of 2 float, default=(40.0, 400.0)
        CT level and width in HU (W400/L40).
    truth_color : str, default="#00d5ff"
        Colour of the ground-truth outline.
    pred_color : str, default="#ff9500"
        Colour of the prediction outline.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel, titled with the slice index, and a legend.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import SlicePanel, plot_overlay
    >>> m = np.zeros((20, 30), bool); m[5:15, 5:20] = True
    >>> panels = [SlicePanel(np.zeros((20, 30)), m, m, index=i) for i in (3, 7)]
    >>> fig = plot_overlay(panels, title="case_0: Dice 1.000")
    >>> [ax.get_title() for ax in fig.axes], fig.get_suptitle()
    (['axial slice 3', 'axial slice 7'], 'case_0: Dice 1.000')
    """
    titles = [p.label for p in panels]
    return _plot_panels(
        panels,
        titles,
        title=title,
        fig=fig,
        window=window,
        truth_color=truth_color,
        pred_color=pred_color,
    )


def plot_three_plane(
    panels: Sequence[SlicePanel] | Mapping[str, SlicePanel],
    *,
    title: str | None = None,
    fig: Figure | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    truth_color: str = TRUTH_COLOR,
    pred_color: str = PRED_COLOR,
) -> Figure:
    """Axial, coronal and sagittal planes through one point, both outlined.

    Parameters
    ----------
    panels : sequence or mapping of SlicePanel
        The planes (usually axial, coronal and sagittal through the
        pancreas centroid); a mapping is drawn in its order.
    title : str, optional
        Figure title.
    fig : matplotlib.figure.Figure, optional
        An empty figure to draw in; default a new one.
    window : tuple of 2 float, default=(40.0, 400.0)
        CT level and width in HU.
    truth_color : str, default="#00d5ff"
        Colour of the ground-truth outline.
    pred_color : str, default="#ff9500"
        Colour of the prediction outline.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per plane, with the pixel aspect of its voxel spacing.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import plot_three_plane, slice_panel
    >>> ct = np.zeros((30, 30, 10)); lab = np.zeros(ct.shape, bool)
    >>> lab[10:20, 12:18, 3:7] = True
    >>> panels = [slice_panel(ct, lab, lab, plane=p, index=i, spacing=(1, 1, 3))
    ...           for p, i in (("axial", 5), ("coronal", 15), ("sagittal", 15))]
    >>> fig = plot_three_plane(panels)
    >>> [ax.get_title() for ax in fig.axes]
    ['axial (z = 5)', 'coronal (y = 15)', 'sagittal (x = 15)']
    >>> fig.axes[1].get_aspect()  # 3 mm slices against 1 mm columns
    3.0
    """
    items = list(panels.values()) if isinstance(panels, Mapping) else list(panels)
    titles = [
        f"{p.plane} ({_AXIS_NAME.get(p.plane, 'index')} = {p.position_mm:.1f} mm)"
        if p.position_mm is not None
        else f"{p.plane} ({_AXIS_NAME.get(p.plane, 'index')} = {p.index})"
        for p in items
    ]
    return _plot_panels(
        items,
        titles,
        title=title,
        fig=fig,
        window=window,
        truth_color=truth_color,
        pred_color=pred_color,
    )


def plot_preview(
    ct: ArrayLike,
    mask: ArrayLike,
    affine: ArrayLike,
    *,
    title: str | None = None,
    window: tuple[float, float] = ABDOMEN_WINDOW,
    color: str = PRED_COLOR,
    max_size: int = 256,
) -> Figure:
    """Axial, coronal and sagittal views through a mask's centre, outlined.

    The quick look that ``pancreas segment --preview`` saves per case (as
    TotalSegmentator's ``--preview`` does): the whole plane of each
    orientation through the centre of the segmentation (the volume's centre
    when it is empty), radiological orientation with the patient's sides
    written at the edges, a scale bar, the display window stated on each
    image and each slice's position in scanner coordinates (mm) in its title.

    Parameters
    ----------
    ct : array-like of shape (I, J, K)
        CT in Hounsfield units, in any voxel orientation.
    mask : array-like of shape (I, J, K)
        The segmentation, same grid; non-zero is pancreas.
    affine : array-like of shape (4, 4)
        Voxel-to-scanner (RAS+ mm) affine of the grid (for example
        ``pancreas.io.load_volume(path).affine``).
    title : str, optional
        Figure title, for example the case and its volume.
    window : tuple of 2 float, default=(40.0, 400.0)
        CT level and width in HU.
    color : str, default="#ff9500"
        Colour of the segmentation's outline.
    max_size : int, default=256
        Largest side of a panel in pixels (bigger planes are subsampled).

    Returns
    -------
    matplotlib.figure.Figure
        Three axes (axial, coronal, sagittal) and a legend.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import plot_preview
    >>> ct = np.full((40, 30, 10), -100.0); mask = np.zeros(ct.shape, bool)
    >>> mask[20:30, 10:20, 4:8] = True
    >>> affine = np.diag([0.8, 0.8, 2.5, 1.0]); affine[:3, 3] = (-16, -12, -50)
    >>> fig = plot_preview(ct, mask, affine, title="case1")
    >>> [ax.get_title() for ax in fig.axes]
    ['axial slice 6, z = -35.0 mm', 'coronal slice 14, y = -0.8 mm',
     'sagittal slice 24, x = 3.2 mm']
    """
    from nibabel import orientations

    ct = np.asarray(ct)
    mask = np.asarray(mask) != 0
    affine = np.asarray(affine, dtype=np.float64)
    if ct.ndim != 3 or mask.shape != ct.shape or affine.shape != (4, 4):
        raise ValueError(
            f"ct {ct.shape} and mask {mask.shape} must be one 3-D grid and the "
            f"affine 4 x 4 (got {affine.shape})"
        )
    ornt = orientations.io_orientation(affine)
    ct = orientations.apply_orientation(ct, ornt)
    mask = orientations.apply_orientation(mask, ornt)
    affine = affine @ orientations.inv_ornt_aff(ornt, ct.shape)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    centre = (
        [round(c) for c in np.argwhere(mask).mean(axis=0)]
        if mask.any()
        else [n // 2 for n in ct.shape]
    )
    nothing = np.broadcast_to(False, ct.shape)
    panels = [
        slice_panel(
            ct,
            nothing,
            mask,
            plane=plane,
            index=centre[int(_PLANES[plane]["normal"])],
            spacing=spacing,
            window=window,
            max_size=max_size,
            affine=affine,
        )
        for plane in ("axial", "coronal", "sagittal")
    ]
    from matplotlib.lines import Line2D

    return _plot_panels(
        panels,
        [p.label for p in panels],
        title=title,
        fig=None,
        window=window,
        truth_color=TRUTH_COLOR,
        pred_color=color,
        handles=[Line2D([], [], color=color, lw=2, ls="--", label="pancreas")],
    )


#: Line style of each stage family and colour of each number of scales.
_STAGE_STYLE = {"P(x)": "--", "G(P(x))": "-"}
_SCALE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def plot_dice_curves(
    thresholds: ArrayLike,
    curves: Mapping[str, ArrayLike],
    *,
    threshold: float | None = None,
    threshold_stage: str | None = None,
    band: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Mean Dice against threshold for each stage (the paper's Figure 6).

    Each curve is the mean over cases, with a band of one standard
    deviation (clipped to [0, 1]); P(x) is dashed and G(P(x)) solid, one
    colour per number of scales. The legend gives each curve's best mean
    Dice and where it is reached.

    Parameters
    ----------
    thresholds : array-like of shape (n_thresholds,)
        The threshold grid.
    curves : mapping of str to array-like of shape (n_cases, n_thresholds)
        Dice of each case at each threshold, by stage name (for example
        ``"G(P(x)) Ns=4"``); a 1-D array is one case.
    threshold : float, optional
        The threshold in use, drawn as a vertical line.
    threshold_stage : str, optional
        The stage ``threshold`` applies to; its mean Dice there is marked.
        Default: the last stage whose name starts with ``"G(P(x))"``.
    band : bool, default=True
        Draw the +/- one standard deviation bands.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    title : str, optional
        Axes title; default names the figure and the number of cases.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Examples
    --------
    >>> import numpy as np
    >>> from pancreas.plotting import plot_dice_curves
    >>> t = np.round(np.arange(1, 20) * 0.05, 2)
    >>> curves = {"P(x) Ns=1": np.vstack([t, 1 - t]),
    ...           "G(P(x)) Ns=1": np.vstack([1 - abs(t - 0.4)] * 2)}
    >>> fig = plot_dice_curves(t, curves, threshold=0.4)
    >>> ax = fig.axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel(), len(ax.get_legend().get_texts())
    ('Threshold', 'Dice', 3)
    """
    grid = np.asarray(thresholds, dtype=float).ravel()
    data = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in curves.items()}
    if not data:
        raise ValueError("no curves to draw")
    for k, v in data.items():
        if v.shape[-1] != grid.size:
            raise ValueError(
                f"curve {k!r} has {v.shape[-1]} points for {grid.size} thresholds"
            )
    if ax is None:
        ax = _new_figure((6.4, 5.0)).subplots()
    scales: list[str] = []
    for k in data:
        ns = k.split(" ", 1)[1] if " " in k else k
        if ns not in scales:
            scales.append(ns)
    n_cases = max(v.shape[0] for v in data.values())
    for k, v in data.items():
        family, _, ns = k.partition(" ")
        color = _SCALE_COLORS[scales.index(ns or k) % len(_SCALE_COLORS)]
        mean = v.mean(axis=0)
        best = int(np.argmax(mean))
        ax.plot(
            grid,
            mean,
            ls=_STAGE_STYLE.get(family, "-"),
            color=color,
            # the first scale drawn wider, so that equal curves stay visible
            lw=3.2 if scales.index(ns or k) == 0 else 1.8,
            label=f"{k}: max {mean[best]:.3f} at {grid[best]:.2f}",
        )
        if band and v.shape[0] > 1:
            sd = v.std(axis=0)
            ax.fill_between(
                grid,
                np.clip(mean - sd, 0, 1),
                np.clip(mean + sd, 0, 1),
                color=color,
                alpha=0.10 if family == "P(x)" else 0.18,
                lw=0,
            )
    if threshold is not None:
        thr = float(threshold)
        ax.axvline(thr, color="black", ls=":", lw=1.5, label=f"threshold {thr:.2f}")
        if threshold_stage is None:
            g = [k for k in data if k.startswith("G(P(x))")]
            threshold_stage = g[-1] if g else None
        if threshold_stage in data:
            mean = data[threshold_stage].mean(axis=0)
            y = float(np.interp(thr, grid, mean))
            ax.plot([thr], [y], "o", color="black", ms=6, zorder=5)
            ax.annotate(
                f"{y:.3f}",
                (thr, y),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=9,
            )
    ax.set_xlim(float(grid.min()), float(grid.max()))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("Threshold")
    ax.set_ylabel("Dice")
    ax.grid(True, alpha=0.3)
    if title is None:
        noun = "case" if n_cases == 1 else "cases"
        title = f"Dice against threshold (mean of {n_cases} {noun})"
    ax.set_title(title)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncols=2,
        fontsize=8,
        frameon=False,
    )
    return ax.figure
