"""Exceptions raised by pancreas.

Every error names the case or file it concerns and says what is wrong.
"""

from __future__ import annotations


class PancreasError(Exception):
    """Base class of every exception raised on purpose by pancreas."""


class InvalidVolumeError(PancreasError, ValueError):
    """A CT or label volume is unusable (wrong shape, dtype, values, grid)."""


class DicomSeriesError(PancreasError, ValueError):
    """A DICOM folder is not one clean, complete, untilted CT series."""


class VolumeFileError(PancreasError, OSError):
    """A volume file is missing, truncated, corrupt or of an unknown format."""


class DatasetLayoutError(PancreasError, ValueError):
    """A dataset folder does not follow the expected layout."""


class ModelFileError(PancreasError, OSError):
    """A model directory is missing a file, is corrupt or was tampered with."""


class UntrustedModelError(ModelFileError):
    """A model file holds objects that pancreas does not trust to load."""


class ModelVersionError(PancreasError, ValueError):
    """A model was saved by an incompatible version of pancreas."""


class PancreasWarning(UserWarning):
    """Base class of every warning issued on purpose by pancreas."""


class SpacingWarning(PancreasWarning):
    """A CT's voxels are too coarse for the method (thick slices, large pixels)."""


class OrientationWarning(PancreasWarning):
    """A volume's orientation is unknown (NIfTI sform and qform codes both 0)."""


class SegmentationWarning(PancreasWarning):
    """A segmentation is likely wrong: an empty mask, too few slices."""


class InsufficientMemoryError(PancreasError, MemoryError):
    """A case needs more memory than the machine has available."""
