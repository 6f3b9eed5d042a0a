"""Tissue classes of the phantom: codes of the tissue map and their HU."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import numpy as np
from numpy.typing import NDArray

# --------------------------------------------------------------------------
# Tissue classes
# --------------------------------------------------------------------------

_TISSUE_NAMES = (
    "air",
    "skin",
    "subcutaneous_fat",
    "visceral_fat",
    "muscle",
    "bone_cortical",
    "bone_cancellous",
    "cartilage",
    "csf",
    "disc",
    "lung",
    "liver",
    "gallbladder",
    "spleen",
    "kidney_cortex",
    "kidney_medulla",
    "urine",
    "stomach_wall",
    "stomach_content",
    "gas",
    "bowel_wall",
    "bowel_content",
    "colon_wall",
    "stool",
    "duodenum_wall",
    "duodenum_content",
    "artery",
    "vein",
    "ivc",
    "pancreas",
    "pancreas_fat",
    "pancreatic_duct",
    "bile_duct",
    "heart",
    "blood",
    "lymph_node",
    "table",
    "halo",  # internal: reserved fat around the pancreas, output as visceral_fat
    "metal",  # surgical clips (only with streaks="metal")
    "bladder_urine",  # last: the codes above predate it
)
#: Tissue name -> code in the tissue map returned by ``_make_case``.
TISSUES: dict[str, int] = {name: code for code, name in enumerate(_TISSUE_NAMES)}
_T = SimpleNamespace(**{name.upper(): code for name, code in TISSUES.items()})
#: Tissue codes that make up the pancreas label.
PANCREAS_TISSUES = (_T.PANCREAS, _T.PANCREAS_FAT, _T.PANCREATIC_DUCT)

# Mean HU of each tissue: (low, high) of the per-case uniform draw.
_HU_RANGES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "skin": (20.0, 50.0),
    "subcutaneous_fat": (-115.0, -90.0),
    "visceral_fat": (-110.0, -85.0),
    "muscle": (48.0, 62.0),
    "bone_cortical": (650.0, 1000.0),
    "bone_cancellous": (200.0, 320.0),
    "cartilage": (110.0, 180.0),
    "csf": (5.0, 15.0),
    "disc": (70.0, 100.0),
    "lung": (-880.0, -820.0),
    "liver": (92.0, 118.0),
    "gallbladder": (0.0, 20.0),
    "spleen": (102.0, 125.0),
    "kidney_cortex": (165.0, 200.0),
    "kidney_medulla": (105.0, 135.0),
    "urine": (0.0, 20.0),
    "stomach_wall": (55.0, 75.0),
    "stomach_content": (0.0, 25.0),
    "gas": (-1000.0, -985.0),
    "bowel_wall": (65.0, 95.0),
    "bowel_content": (5.0, 30.0),
    "colon_wall": (55.0, 80.0),
    "stool": (-40.0, 30.0),
    "duodenum_wall": (62.0, 80.0),
    "duodenum_content": (0.0, 20.0),
    "artery": (155.0, 195.0),
    "vein": (145.0, 180.0),
    "ivc": (130.0, 160.0),
    "pancreas": (88.0, 125.0),
    "pancreas_fat": (-50.0, -10.0),
    "pancreatic_duct": (5.0, 20.0),
    "bile_duct": (5.0, 20.0),
    "heart": (95.0, 120.0),
    "blood": (140.0, 175.0),
    "lymph_node": (40.0, 65.0),
    "table": (-60.0, 80.0),
}


@cache
def _lut(codes: tuple[int, ...]) -> NDArray[np.bool_]:
    lut = np.zeros(256, dtype=bool)
    lut[list(codes)] = True
    return lut


_VISC = (_T.VISCERAL_FAT,)

# Mean HU (low, high) of the tissues that enhance, per contrast phase; the
# other tissues keep their _HU_RANGES draw. "portal-venous" is _HU_RANGES
# itself (the default cohort). Sources in make_phantom_cohort's docstring.
_PHASE_HU: dict[str, dict[str, tuple[float, float]]] = {
    "non-contrast": {
        "artery": (35.0, 50.0),
        "vein": (35.0, 50.0),
        "ivc": (35.0, 50.0),
        "blood": (35.0, 50.0),
        "heart": (35.0, 50.0),
        "liver": (50.0, 65.0),
        "spleen": (40.0, 52.0),
        "pancreas": (35.0, 50.0),
        "kidney_cortex": (28.0, 38.0),
        "kidney_medulla": (25.0, 35.0),
        "muscle": (42.0, 55.0),
        "stomach_wall": (30.0, 45.0),
        "bowel_wall": (30.0, 45.0),
        "colon_wall": (30.0, 45.0),
        "duodenum_wall": (30.0, 45.0),
        "lymph_node": (30.0, 45.0),
    },
    "arterial": {
        "artery": (250.0, 400.0),
        "vein": (110.0, 160.0),
        "ivc": (60.0, 100.0),
        "blood": (180.0, 320.0),
        "heart": (100.0, 130.0),
        "liver": (65.0, 85.0),
        "spleen": (110.0, 150.0),
        "pancreas": (110.0, 150.0),
        "kidney_cortex": (180.0, 260.0),
        "kidney_medulla": (70.0, 110.0),
        "muscle": (45.0, 60.0),
        "stomach_wall": (80.0, 120.0),
        "bowel_wall": (80.0, 120.0),
        "colon_wall": (70.0, 100.0),
        "duodenum_wall": (80.0, 120.0),
        "lymph_node": (45.0, 65.0),
    },
    "portal-venous": {},
    "delayed": {
        "artery": (100.0, 140.0),
        "vein": (100.0, 140.0),
        "ivc": (100.0, 140.0),
        "blood": (100.0, 140.0),
        "heart": (80.0, 100.0),
        "liver": (75.0, 95.0),
        "spleen": (80.0, 100.0),
        "pancreas": (65.0, 85.0),
        "kidney_cortex": (140.0, 180.0),
        "kidney_medulla": (140.0, 190.0),
        "urine": (300.0, 900.0),
        "stomach_wall": (60.0, 80.0),
        "bowel_wall": (60.0, 80.0),
        "colon_wall": (55.0, 75.0),
        "duodenum_wall": (60.0, 80.0),
        "lymph_node": (45.0, 60.0),
    },
}
# Positive oral contrast (dilute barium or iodine) in the lumen of the gut.
_ORAL_CONTRAST_HU = (150.0, 350.0)
_ORAL_CONTRAST_TISSUES = ("stomach_content", "duodenum_content", "bowel_content")
