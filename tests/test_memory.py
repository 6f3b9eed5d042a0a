"""The memory guard refuses a case that cannot fit, before any work on it."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

import pancreas._memory as memory
from pancreas.exceptions import InsufficientMemoryError
from pancreas.phantom import make_phantom_cohort
from pancreas.superpixels import SuperpixelGenerator


def test_estimate_is_linear_in_voxels():
    base = memory.PROCESS_BYTES
    small = memory.required_memory((512, 512, 100)) - base
    assert memory.required_memory((512, 512, 1000)) - base == 10 * small
    assert small == 512 * 512 * 100 * memory.BYTES_PER_VOXEL


def test_available_memory_is_known_here():
    avail = memory.available_memory()
    assert avail is not None and avail > 100 * 1024**2


def test_check_memory_message_and_switch(monkeypatch):
    with pytest.raises(InsufficientMemoryError) as info:
        memory.check_memory((512, 512, 1000), "case7", available=2 * 1024**3)
    msg = str(info.value)
    assert msg.startswith("case7: ")
    assert "512 x 512 x 1000" in msg and "2.0 GB is available" in msg
    assert "--cases-in-parallel" in msg and memory.ENV_SWITCH in msg
    assert isinstance(info.value, MemoryError)
    memory.check_memory((512, 512, 1000), "case7", available=100 * 1024**3)
    monkeypatch.setenv(memory.ENV_SWITCH, "0")
    memory.check_memory((512, 512, 1000), "case7", available=1)


def test_superpixels_refuse_before_any_slic(monkeypatch):
    import pancreas.superpixels as sp

    images, _ = make_phantom_cohort(1, shape=(48, 48, 8), random_state=0)
    calls = []
    monkeypatch.setattr(sp, "_slice_superpixels", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    gen = SuperpixelGenerator(check_spacing=False).fit()
    with pytest.raises(InsufficientMemoryError, match="phantom_000"):
        gen.transform(images)
    assert not calls


def test_cohort_refuses_a_huge_scan_from_its_header(monkeypatch, tmp_path):
    """A 512 x 512 x 1000 NIfTI is refused from its header, its data never read."""
    from pancreas.cohort import segment_cohort
    from pancreas.pipeline import make_pipeline
    from pancreas.refine import GaussianRefiner

    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    img.header.set_data_shape((512, 512, 1000))
    path = tmp_path / "huge.nii.gz"
    with gzip.open(path, "wb") as fh:  # the header only: reading data would fail
        fh.write(img.header.binaryblock + b"\0" * 4)
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * 1024**3)
    refiner = GaussianRefiner(threshold=0.5)
    refiner.threshold_ = 0.5  # a stand-in fitted pipeline: never reached
    result = segment_cohort(make_pipeline(refiner), [path], tmp_path / "out")
    assert list(result.failed) == ["huge"]
    assert "InsufficientMemoryError" in result.failed["huge"]
    assert "needs about 6.9 GB" in result.failed["huge"]
