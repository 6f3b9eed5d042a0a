"""Write a pancreas mask as a DICOM Segmentation object (``pancreas[dicom-seg]``).

A DICOM Segmentation (SEG, Supplement 111) is how PACS viewers, OHIF, 3D
Slicer and XNAT expect a segmentation of a DICOM series: a binary multi-frame
object in the source series' frame of reference, each frame referencing the
CT slice it lies on. :func:`write_dicom_seg` builds one with `highdicom
<https://highdicom.readthedocs.io>`_ from a mask in the series' own grid (as
:func:`pancreas.io.load_volume` reads it and ``pancreas segment`` writes it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["write_dicom_seg"]


def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError as exc:
        raise ImportError(
            "writing DICOM SEG needs highdicom: pip install 'pancreas[dicom-seg]'"
        ) from exc
    return highdicom


def _source_slice(ds: Any, path: Path) -> Any:
    """A source slice with the identifiers a SEG must reference, or a clear error.

    De-identification tools sometimes blank the SOP Class and Instance UIDs
    in the data set while the file meta keeps them; those are taken from the
    meta. A series without its Study, Series or Frame of Reference UID cannot
    be referenced by a SEG at all.
    """
    meta = getattr(ds, "file_meta", None)
    for key, meta_key in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):
        if not ds.get(key) and meta is not None and meta.get(meta_key):
            setattr(ds, key, meta.get(meta_key))
    # type 2 (may be empty, must be present) patient and study attributes
    # that highdicom copies; exports often leave them out
    for key in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "ReferringPhysicianName",
        "AccessionNumber",
    ):
        if key not in ds:
            setattr(ds, key, "")
    missing = [
        key
        for key in (
            "SOPClassUID",
            "SOPInstanceUID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
        )
        if not ds.get(key)
    ]
    if missing:
        raise ValueError(
            f"{path}: {', '.join(missing)} empty or missing (the series was "
            "de-identified without keeping its UIDs?); a DICOM SEG must "
            "reference them: write NIfTI output for this series instead"
        )
    return ds


def write_dicom_seg(
    mask: ArrayLike,
    series: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    segment_label: str = "pancreas",
    series_description: str = "pancreas segmentation",
) -> Path:
    """Write a binary mask of a DICOM CT series as a DICOM Segmentation.

    Parameters
    ----------
    mask : array-like of shape (columns, rows, slices)
        Non-zero = pancreas, in the grid that :func:`pancreas.io.load_volume`
        gives the series (column, row, slice; slices in order along the
        slice normal).
    series : str or PathLike
        The source DICOM series folder (one CT series).
    path : str or PathLike
        The file to write (conventionally ``.dcm``); written atomically.
    segment_label : str, default="pancreas"
        The segment's label (SegmentLabel).
    series_description : str, default="pancreas segmentation"
        The new series' SeriesDescription.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ImportError
        highdicom is not installed.
    ValueError
        The mask's shape is not the series' grid, or the source slices lack
        the UIDs a SEG references (Study, Series, Frame of Reference, SOP
        Instance).

    Notes
    -----
    The object is BINARY with one segment (SNOMED CT "Pancreas" in the
    category "Anatomical Structure", algorithm type AUTOMATIC, identified as
    ``pancreas`` with the package version). Slices with no pancreas carry no
    frame (highdicom's default); each frame's position and orientation are
    those of its source slice, which it references in its derivation
    sequence. Study, patient and frame of reference are the source's.

    Examples
    --------
    The mask of a series, from a threshold here (a pipeline's ``predict`` in
    practice), written beside it::

        from pancreas.io import load_volume

        ct = load_volume("CT_series/")
        write_dicom_seg(ct.array > 100, "CT_series/", "CT_series_seg.dcm")
    """
    hd = _highdicom()
    import pydicom
    from pydicom.sr.codedict import codes

    from pancreas import __version__
    from pancreas._atomic import atomic_write_bytes
    from pancreas.io import _scan_dicom_series

    folder = Path(os.fspath(series))
    scan = _scan_dicom_series(folder)
    array = np.asarray(mask)
    if array.shape != tuple(scan.shape):
        raise ValueError(
            f"{folder}: mask of shape {array.shape} is not the series' grid "
            f"{tuple(scan.shape)} (columns, rows, slices)"
        )
    sources = [_source_slice(pydicom.dcmread(f), f) for f in scan.files]
    # (column, row, slice) -> one (row, column) frame per source slice
    frames = np.ascontiguousarray((array != 0).transpose(2, 1, 0)).astype(np.uint8)
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=segment_label,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=codes.SCT.Pancreas,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="pancreas",
            family=codes.cid7162.ArtificialIntelligence,
            version=__version__,
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=int(getattr(sources[0], "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="pancreas",
        manufacturer_model_name="Roth et al. 2015 cascade",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description,
    )
    from io import BytesIO

    buffer = BytesIO()
    seg.save_as(buffer)
    return atomic_write_bytes(Path(os.fspath(path)), buffer.getvalue())
