"""Tests for pancreas.datasets: lazy sequences, cohort layouts and splits.

Each layout is written as a small fake tree in ``tmp_path``: real NIfTI files
(nibabel) and real DICOM CT series (pydicom), a few voxels each.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import pancreas.datasets as datasets
from pancreas.datasets import (
    Dataset,
    LazyVolumes,
    load_msd_pancreas,
    load_nifti_folder,
    load_nih_pancreas,
)
from pancreas.exceptions import DatasetLayoutError
from pancreas.io import Volume

SHAPE = (8, 8, 4)
AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])


# ---------------------------------------------------------------------------
# writers for fake trees
# ---------------------------------------------------------------------------


def case_array(k: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """A CT-like int16 array that differs for every case number ``k``."""
    ramp = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    return (ramp + 100 * k - 1000).astype(np.int16)


def label_array(k: int, shape: tuple[int, ...] = SHAPE, tumour: bool = False):
    """A uint8 label with a case-dependent pancreas box (and optional value 2)."""
    label = np.zeros(shape, np.uint8)
    label[1 : 2 + k % 5, 2:5, 1:3] = 1
    if tumour:
        label[2, 3, 1] = 2
    return label


def write_nifti(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, AFFINE), str(path))
    return path


def write_ct_series(
    folder: Path,
    hu: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (0.7, 0.7, 2.5),
    intercept: float = -1024.0,
    unsigned: bool = False,
    origin: tuple[float, float, float] = (-10.0, -20.0, -50.0),
) -> Path:
    """Write ``hu`` (rows, columns, slices) as a DICOM CT series in ``folder``.

    One file per slice, named like TCIA's (``1-001.dcm``); the first pixel
    of the first slice is at ``origin`` (DICOM LPS mm); slices go up in z by
    ``spacing[2]`` mm; stored values are ``hu - intercept``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols, n_slices = hu.shape
    stored = np.round(hu - intercept)
    dtype = np.uint16 if unsigned else np.int16
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = DicomDataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID = folder.name
        ds.PatientName = "Fake^Patient"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.SliceThickness = spacing[2]
        ds.SliceLocation = origin[2] + k * spacing[2]
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0 if unsigned else 1
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = 1.0
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].astype(dtype)).tobytes()
        ds.save_as(folder / f"1-{k + 1:03d}.dcm", enforce_file_format=True)
    return folder


def make_nih_tree(
    root: Path,
    numbers: tuple[int, ...] = (1, 2, 10),
    *,
    label_folder: str | None = "TCIA_pancreas_labels-02-05-2017",
    with_labels: tuple[int, ...] | None = None,
) -> Path:
    """NIH Pancreas-CT layout; case 2 has an extra intermediate folder."""
    for n in numbers:
        case = root / f"PANCREAS_{n:04d}"
        study = case / f"11-24-2015-PANCREAS{n:04d}-Pancreas-{n}"
        if n == 2:
            study = study / "extra"
        write_ct_series(study / f"Pancreas-{n}", case_array(n), unsigned=n % 2 == 0)
    labels_dir = root if label_folder is None else root / label_folder
    for n in numbers if with_labels is None else with_labels:
        write_nifti(labels_dir / f"label{n:04d}.nii.gz", label_array(n))
    return root


def make_msd_tree(root: Path, numbers=(1, 4, 10), *, json_order=None) -> Path:
    """MSD Task07_Pancreas layout with a dataset.json (listed in json_order)."""
    for n in numbers:
        write_nifti(root / "imagesTr" / f"pancreas_{n:03d}.nii.gz", case_array(n))
        write_nifti(
            root / "labelsTr" / f"pancreas_{n:03d}.nii.gz",
            label_array(n, tumour=True),
        )
        # macOS resource forks, as found in the shipped tar
        (root / "imagesTr" / f"._pancreas_{n:03d}.nii.gz").write_bytes(b"\0\5junk")
        (root / "labelsTr" / f"._pancreas_{n:03d}.nii.gz").write_bytes(b"\0\5junk")
    write_nifti(root / "imagesTs" / "pancreas_002.nii.gz", case_array(2))
    meta = {
        "name": "Pancreas",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "pancreas", "2": "cancer"},
        "numTraining": len(numbers),
        "numTest": 1,
        "training": [
            {
                "image": f"./imagesTr/pancreas_{n:03d}.nii.gz",
                "label": f"./labelsTr/pancreas_{n:03d}.nii.gz",
            }
            for n in (json_order or numbers)
        ],
        "test": ["./imagesTs/pancreas_002.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def names(paths) -> list[str]:
    return [Path(p).name for p in paths]


@pytest.fixture
def fake_loader(monkeypatch):
    """Replace load_volume in pancreas.datasets by a recorder (no file read)."""
    calls: list[Path] = []

    def fake(path):
        calls.append(Path(path))
        return Volume(np.zeros((2, 2, 2), np.int16), np.eye(4), str(path))

    monkeypatch.setattr(datasets, "load_volume", fake)
    return calls


@pytest.fixture
def spy_loader(monkeypatch):
    """Wrap the real load_volume, recording every call."""
    calls: list[Path] = []
    real = datasets.load_volume

    def spy(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(datasets, "load_volume", spy)
    return calls


def assert_same_values(volume: Volume, expected: np.ndarray) -> None:
    """Same voxel values, whatever axis order the reader chose (for DICOM)."""
    assert sorted(volume.shape) == sorted(expected.shape)
    np.testing.assert_array_equal(
        np.sort(np.asarray(volume.array, np.float64).ravel()),
        np.sort(expected.astype(np.float64).ravel()),
    )


# ---------------------------------------------------------------------------
# LazyVolumes
# ---------------------------------------------------------------------------


class TestLazyVolumes:
    def test_ids_default_to_file_stems(self):
        seq = LazyVolumes(["a/x.nii.gz", Path("b/y.nii"), "c/PANCREAS_0001"])
        assert len(seq) == 3
        assert seq.case_ids == ["x", "y", "PANCREAS_0001"]
        assert seq.paths == [
            Path("a/x.nii.gz"),
            Path("b/y.nii"),
            Path("c/PANCREAS_0001"),
        ]

    def test_attributes_are_copies(self):
        seq = LazyVolumes(["a.nii.gz"])
        seq.paths.append(Path("b.nii.gz"))
        seq.case_ids.append("b")
        assert len(seq) == 1 and seq.case_ids == ["a"]

    def test_explicit_case_ids(self):
        seq = LazyVolumes(["a.nii.gz", "b.nii.gz"], ["one", "two"])
        assert seq.case_ids == ["one", "two"]

    def test_nothing_loaded_until_indexed(self, fake_loader):
        seq = LazyVolumes(["a.nii.gz", "b.nii.gz", "c.nii.gz"])
        len(seq), repr(seq), seq.case_ids, seq[1:], seq[[2, 0]]
        assert fake_loader == []
        vol = seq[1]
        assert fake_loader == [Path("b.nii.gz")]
        assert vol.source == "b.nii.gz"
        seq[-1]
        assert fake_loader == [Path("b.nii.gz"), Path("c.nii.gz")]
        seq[np.int64(0)]
        assert fake_loader[-1] == Path("a.nii.gz")

    def test_no_caching(self, fake_loader):
        seq = LazyVolumes(["a.nii.gz"])
        first, second = seq[0], seq[0]
        assert first is not second
        assert len(fake_loader) == 2

    def test_iteration_loads_one_case_at_a_time(self, fake_loader):
        seq = LazyVolumes([f"case{i}.nii.gz" for i in range(4)])
        it = iter(seq)
        assert fake_loader == []
        for i, vol in enumerate(it, start=1):
            assert len(fake_loader) == i
            assert vol.source == f"case{i - 1}.nii.gz"
        assert len(fake_loader) == 4

    def test_slicing_and_take(self, fake_loader):
        seq = LazyVolumes([f"c{i}.nii.gz" for i in range(6)])
        sub = seq[1:5:2]
        assert isinstance(sub, LazyVolumes)
        assert sub.case_ids == ["c1", "c3"]
        assert seq[::-1].case_ids == [f"c{i}" for i in range(5, -1, -1)]
        assert seq[10:].case_ids == []
        assert seq[[4, -6]].case_ids == ["c4", "c0"]
        assert seq[np.array([2, 3])].case_ids == ["c2", "c3"]
        assert seq.take(range(2)).case_ids == ["c0", "c1"]
        assert fake_loader == []
        assert sub[1].source == "c3.nii.gz"

    def test_bad_indices(self):
        seq = LazyVolumes(["a.nii.gz", "b.nii.gz"])
        with pytest.raises(IndexError, match="out of range for 2 cases"):
            seq[2]
        with pytest.raises(IndexError):
            seq[-3]
        with pytest.raises(IndexError):
            seq[[0, 5]]
        with pytest.raises(TypeError):
            seq["a"]
        with pytest.raises(TypeError):
            seq[1.0]
        with pytest.raises(TypeError):
            seq[True]

    def test_bad_construction(self):
        with pytest.raises(TypeError, match="single path"):
            LazyVolumes("a.nii.gz")
        with pytest.raises(ValueError, match="2 case ids for 1 paths"):
            LazyVolumes(["a.nii.gz"], ["a", "b"])
        with pytest.raises(ValueError, match="unique"):
            LazyVolumes(["x/a.nii.gz", "y/a.nii.gz"])

    def test_repr(self):
        assert repr(LazyVolumes([])) == "LazyVolumes(0 cases)"
        assert repr(LazyVolumes(["a.nii"])) == "LazyVolumes(1 case: 'a')"
        many = LazyVolumes([f"c{i}.nii.gz" for i in range(82)])
        assert (
            repr(many) == "LazyVolumes(82 cases: 'c0', 'c1', 'c2', ..., 'c80', 'c81')"
        )

    def test_equality_and_pickle(self):
        seq = LazyVolumes(["a.nii.gz", "b.nii.gz"])
        assert seq == LazyVolumes(["a.nii.gz", "b.nii.gz"])
        assert seq != LazyVolumes(["a.nii.gz"])
        assert hash(seq) == hash(LazyVolumes(["a.nii.gz", "b.nii.gz"]))
        clone = pickle.loads(pickle.dumps(seq))
        assert clone == seq and clone.case_ids == ["a", "b"]

    def test_is_a_sequence(self):
        from collections.abc import Sequence

        assert isinstance(LazyVolumes([]), Sequence)

    def test_loads_real_nifti(self, tmp_path, spy_loader):
        paths = [
            write_nifti(tmp_path / f"c{k}.nii.gz", case_array(k)) for k in range(3)
        ]
        seq = LazyVolumes(paths)
        vol = seq[2]
        assert spy_loader == [paths[2]]
        np.testing.assert_array_equal(vol.array, case_array(2))
        np.testing.assert_allclose(vol.affine, AFFINE)


# ---------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------


def fake_dataset(n: int, labelled: bool = True) -> Dataset:
    images = LazyVolumes([f"img/case{i}.nii.gz" for i in range(n)])
    labels = (
        LazyVolumes([f"lab/case{i}.nii.gz" for i in range(n)]) if labelled else None
    )
    return Dataset(images, labels, name="fake")


class TestDataset:
    def test_defaults_and_len(self):
        ds = Dataset(LazyVolumes(["a.nii.gz", "b.nii.gz"]))
        assert len(ds) == 2
        assert ds.case_ids == ["a", "b"]
        assert ds.labels is None
        assert ds.name == "dataset"
        assert repr(ds) == "Dataset('dataset', 2 unlabelled cases)"
        assert repr(fake_dataset(1)) == "Dataset('fake', 1 labelled case)"

    def test_is_frozen(self):
        ds = fake_dataset(2)
        with pytest.raises(AttributeError):
            ds.name = "other"

    def test_lengths_must_agree(self):
        with pytest.raises(ValueError, match="1 labels for 2 images"):
            Dataset(LazyVolumes(["a.nii", "b.nii"]), LazyVolumes(["a.nii"]))
        with pytest.raises(ValueError, match="1 case ids for 2 images"):
            Dataset(LazyVolumes(["a.nii", "b.nii"]), case_ids=["a"])

    def test_paper_split_60_2_20(self):
        ds = fake_dataset(82)
        train, val, test = ds.split(60, 2, 20, random_state=0)
        assert (len(train), len(val), len(test)) == (60, 2, 20)
        ids = [set(part.case_ids) for part in (train, val, test)]
        assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
        assert set.union(*ids) == set(ds.case_ids)
        assert (train.name, val.name, test.name) == (
            "fake[train]",
            "fake[val]",
            "fake[test]",
        )
        # labels follow their images, and each part keeps the cohort's order
        for part in (train, val, test):
            assert part.images.case_ids == part.case_ids == part.labels.case_ids
            assert names(part.images.paths) == names(part.labels.paths)
            order = [ds.case_ids.index(c) for c in part.case_ids]
            assert order == sorted(order)

    def test_split_is_deterministic(self):
        ds = fake_dataset(30)
        a = ds.split(20, 2, 8, random_state=42)
        b = ds.split(20, 2, 8, random_state=42)
        assert [p.case_ids for p in a] == [p.case_ids for p in b]
        c = ds.split(20, 2, 8, random_state=43)
        assert [p.case_ids for p in a] != [p.case_ids for p in c]
        # default seed is fixed too
        assert ds.split(20)[2].case_ids == ds.split(20)[2].case_ids
        gen = ds.split(20, 2, 8, random_state=np.random.default_rng(1))
        assert sum(len(p) for p in gen) == 30

    def test_split_without_shuffle_and_default_test(self):
        ds = fake_dataset(5, labelled=False)
        train, val, test = ds.split(2, 1, shuffle=False)
        assert train.case_ids == ["case0", "case1"]
        assert val.case_ids == ["case2"]
        assert test.case_ids == ["case3", "case4"]
        assert test.labels is None
        train, val, test = ds.split(2, 1, 1, shuffle=False)
        assert test.case_ids == ["case3"]
        assert len(ds.split(0, 0, 0)[0]) == 0

    def test_split_errors(self):
        ds = fake_dataset(5)
        with pytest.raises(ValueError, match="more than the 5 cases"):
            ds.split(4, 1, 1)
        with pytest.raises(ValueError, match="more than the 5 cases"):
            ds.split(5, 1)
        with pytest.raises(ValueError, match="n_val must be a non-negative"):
            ds.split(2, -1)
        with pytest.raises(ValueError, match="n_train must be a non-negative"):
            ds.split(2.5)

    def test_split_loads_nothing(self, fake_loader):
        fake_dataset(10).split(6, 1, 3)
        assert fake_loader == []

    def test_subset(self):
        ds = fake_dataset(4)
        sub = ds.subset([3, 1])
        assert sub.case_ids == ["case3", "case1"]
        assert names(sub.labels.paths) == ["case3.nii.gz", "case1.nii.gz"]
        assert sub.name == "fake"


# ---------------------------------------------------------------------------
# NIH Pancreas-CT
# ---------------------------------------------------------------------------


class TestNIH:
    def test_layout_ids_and_paths(self, tmp_path, spy_loader):
        root = make_nih_tree(tmp_path / "nih")
        ds = load_nih_pancreas(root)
        assert spy_loader == []
        assert ds.name == "NIH Pancreas-CT"
        assert len(ds) == 3
        assert ds.case_ids == ["PANCREAS_0001", "PANCREAS_0002", "PANCREAS_0010"]
        assert ds.images.case_ids == ds.labels.case_ids == ds.case_ids
        assert names(ds.images.paths) == ["Pancreas-1", "Pancreas-2", "Pancreas-10"]
        assert ds.images.paths[1].parent.name == "extra"  # deeper tree
        assert names(ds.labels.paths) == [
            "label0001.nii.gz",
            "label0002.nii.gz",
            "label0010.nii.gz",
        ]

    def test_indexing_loads_the_right_case(self, tmp_path, spy_loader):
        # "as-is": the labels as stored, no check (these fake labels are
        # not on their images' grids)
        root = make_nih_tree(tmp_path / "nih")
        ds = load_nih_pancreas(root, label_alignment="as-is")
        for i, n in enumerate((1, 2, 10)):
            image = ds.images[i]
            assert spy_loader[-1] == ds.images.paths[i]
            assert_same_values(image, case_array(n))
            assert sorted(image.spacing) == pytest.approx([0.7, 0.7, 2.5])
            label = ds.labels[i]
            np.testing.assert_array_equal(label.array, label_array(n))
        assert len(spy_loader) == 6

    def test_labels_in_root_and_explicit_folder(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", label_folder=None)
        assert names(load_nih_pancreas(root).labels.paths)[0] == "label0001.nii.gz"
        elsewhere = tmp_path / "my_labels"
        for n in (1, 2, 10):
            write_nifti(elsewhere / f"label{n:04d}.nii.gz", label_array(n))
        ds = load_nih_pancreas(root, labels=elsewhere)
        assert {p.parent for p in ds.labels.paths} == {elsewhere}

    def test_tcia_download_folder_is_found(self, tmp_path):
        top = tmp_path / "manifest-1599750808610"
        make_nih_tree(top / "Pancreas-CT", label_folder=None)
        (top / "metadata").mkdir()
        ds = load_nih_pancreas(top)
        assert ds.case_ids == ["PANCREAS_0001", "PANCREAS_0002", "PANCREAS_0010"]

    def test_extra_labels_are_ignored(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", numbers=(1, 2), with_labels=(1, 2, 3))
        assert len(load_nih_pancreas(root)) == 2

    def test_macos_files_are_ignored(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", numbers=(1,))
        study = next((root / "PANCREAS_0001").iterdir())
        (study / "._1-001.dcm").write_bytes(b"\0\5junk")
        (root / "TCIA_pancreas_labels-02-05-2017" / "._label0001.nii.gz").write_bytes(
            b"junk"
        )
        ds = load_nih_pancreas(root)
        assert names(ds.images.paths) == ["Pancreas-1"]

    def test_missing_labels_are_listed(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", with_labels=(2,))
        with pytest.raises(DatasetLayoutError, match="2 NIH Pancreas-CT case") as err:
            load_nih_pancreas(root)
        assert "PANCREAS_0001" in str(err.value)
        assert "PANCREAS_0010" in str(err.value)
        assert "PANCREAS_0002" not in str(err.value)
        # partial labels stay an error even when labels are optional
        with pytest.raises(DatasetLayoutError, match="PANCREAS_0001"):
            load_nih_pancreas(root, require_labels=False)

    def test_no_labels_at_all(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", with_labels=())
        with pytest.raises(DatasetLayoutError, match="no NIH Pancreas-CT label files"):
            load_nih_pancreas(root)
        ds = load_nih_pancreas(root, require_labels=False)
        assert ds.labels is None and len(ds) == 3

    def test_case_without_series_or_with_two(self, tmp_path):
        root = make_nih_tree(tmp_path / "nih", numbers=(1, 2))
        (root / "PANCREAS_0003" / "study" / "empty").mkdir(parents=True)
        touch(root / "PANCREAS_0004" / "s" / "a" / "1-001.dcm")
        touch(root / "PANCREAS_0004" / "s" / "b" / "1-001.dcm")
        with pytest.raises(DatasetLayoutError) as err:
            load_nih_pancreas(root, require_labels=False)
        message = str(err.value)
        assert "PANCREAS_0003: no .dcm files" in message
        assert "PANCREAS_0004: 2 folders hold .dcm files" in message
        assert "PANCREAS_0001" not in message

    def test_missing_or_empty_root(self, tmp_path):
        with pytest.raises(DatasetLayoutError, match="does not exist") as err:
            load_nih_pancreas(tmp_path / "nowhere")
        assert "nowhere" in str(err.value)
        (tmp_path / "empty").mkdir()
        with pytest.raises(DatasetLayoutError, match="no PANCREAS_XXXX case folders"):
            load_nih_pancreas(tmp_path / "empty")
        with pytest.raises(DatasetLayoutError, match="not a folder"):
            load_nih_pancreas(touch(tmp_path / "file.txt"))
        root = make_nih_tree(tmp_path / "nih", numbers=(1,))
        with pytest.raises(DatasetLayoutError, match="does not exist"):
            load_nih_pancreas(root, labels=tmp_path / "no_labels")

    def test_is_an_error_subclass_of_value_error(self, tmp_path):
        with pytest.raises(ValueError):
            load_nih_pancreas(tmp_path / "nowhere")


# ---------------------------------------------------------------------------
# MSD Task07_Pancreas
# ---------------------------------------------------------------------------


class TestMSD:
    def test_dataset_json_training_list(self, tmp_path, spy_loader):
        root = make_msd_tree(tmp_path / "Task07_Pancreas", json_order=(10, 1, 4))
        ds = load_msd_pancreas(root)
        assert spy_loader == []
        assert ds.name == "MSD Task07_Pancreas"
        # natural order, whatever order dataset.json lists them in
        assert ds.case_ids == ["pancreas_001", "pancreas_004", "pancreas_010"]
        assert [p.parent.name for p in ds.images.paths] == ["imagesTr"] * 3
        assert [p.parent.name for p in ds.labels.paths] == ["labelsTr"] * 3
        assert all(p.is_file() for p in [*ds.images.paths, *ds.labels.paths])

    def test_indexing_and_tumour_label_kept(self, tmp_path, spy_loader):
        ds = load_msd_pancreas(
            make_msd_tree(tmp_path / "Task07_Pancreas"), label_alignment="as-is"
        )
        image, label = ds.images[1], ds.labels[1]
        assert spy_loader == [ds.images.paths[1], ds.labels.paths[1]]
        np.testing.assert_array_equal(image.array, case_array(4))
        np.testing.assert_array_equal(label.array, label_array(4, tumour=True))
        assert set(np.unique(label.array)) == {0, 1, 2}

    def test_only_listed_cases(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas", json_order=(4,))
        assert load_msd_pancreas(root).case_ids == ["pancreas_004"]

    def test_without_dataset_json(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas")
        (root / "dataset.json").unlink()
        ds = load_msd_pancreas(root)
        assert ds.case_ids == ["pancreas_001", "pancreas_004", "pancreas_010"]
        assert ds.name == "MSD Task07_Pancreas"
        assert names(ds.labels.paths) == names(ds.images.paths)

    def test_test_subset(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas")
        ds = load_msd_pancreas(root, subset="test")
        assert ds.case_ids == ["pancreas_002"] and ds.labels is None
        (root / "dataset.json").unlink()
        assert load_msd_pancreas(root, subset="test").case_ids == ["pancreas_002"]
        with pytest.raises(ValueError, match="subset"):
            load_msd_pancreas(root, subset="validation")

    def test_listed_file_missing(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas")
        (root / "labelsTr" / "pancreas_004.nii.gz").unlink()
        with pytest.raises(DatasetLayoutError, match="missing") as err:
            load_msd_pancreas(root)
        assert "labelsTr/pancreas_004.nii.gz" in str(err.value)

    def test_labels_must_mention_pancreas(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas")
        meta = json.loads((root / "dataset.json").read_text())
        meta["labels"] = {"0": "background", "1": "spleen"}
        (root / "dataset.json").write_text(json.dumps(meta))
        with pytest.raises(DatasetLayoutError, match="do not mention pancreas"):
            load_msd_pancreas(root)

    def test_bad_json(self, tmp_path):
        root = make_msd_tree(tmp_path / "Task07_Pancreas")
        (root / "dataset.json").write_text("{not json")
        with pytest.raises(DatasetLayoutError, match=r"dataset\.json"):
            load_msd_pancreas(root)
        (root / "dataset.json").write_text(json.dumps({"training": [{"image": "x"}]}))
        with pytest.raises(DatasetLayoutError, match="expected"):
            load_msd_pancreas(root)

    def test_missing_root_or_folders(self, tmp_path):
        with pytest.raises(DatasetLayoutError, match="does not exist"):
            load_msd_pancreas(tmp_path / "Task07_Pancreas")
        (tmp_path / "empty").mkdir()
        with pytest.raises(DatasetLayoutError, match="imagesTr or labelsTr") as err:
            load_msd_pancreas(tmp_path / "empty")
        assert "empty" in str(err.value)
        touch(tmp_path / "half" / "imagesTr" / "pancreas_001.nii.gz")
        (tmp_path / "half" / "labelsTr").mkdir()
        with pytest.raises(DatasetLayoutError, match="no NIfTI label files"):
            load_msd_pancreas(tmp_path / "half")


# ---------------------------------------------------------------------------
# any NIfTI folder
# ---------------------------------------------------------------------------


class TestNiftiFolder:
    def test_two_folders_same_names(self, tmp_path, spy_loader):
        for k in (2, 10, 1):
            write_nifti(tmp_path / "images" / f"case{k}.nii.gz", case_array(k))
            write_nifti(tmp_path / "labels" / f"case{k}.nii.gz", label_array(k))
        ds = load_nifti_folder(
            tmp_path / "images", tmp_path / "labels", label_alignment="as-is"
        )
        assert spy_loader == []
        assert ds.case_ids == ["case1", "case2", "case10"]
        assert ds.name == "images"
        image, label = ds.images[2], ds.labels[2]
        np.testing.assert_array_equal(image.array, case_array(10))
        np.testing.assert_array_equal(label.array, label_array(10))
        assert len(spy_loader) == 2

    def test_nnunet_layout(self, tmp_path):
        for case in ("liver_3", "liver_12"):
            touch(tmp_path / "imagesTr" / f"{case}_0000.nii.gz")
            touch(tmp_path / "labelsTr" / f"{case}.nii.gz")
        ds = load_nifti_folder(tmp_path / "imagesTr", tmp_path / "labelsTr")
        assert ds.case_ids == ["liver_3", "liver_12"]
        assert names(ds.images.paths) == ["liver_3_0000.nii.gz", "liver_12_0000.nii.gz"]
        assert names(ds.labels.paths) == ["liver_3.nii.gz", "liver_12.nii.gz"]

    @pytest.mark.parametrize(
        ("image_name", "label_name"),
        [
            ("{}_ct", "{}_seg"),
            ("{}", "{}_label"),
            ("{}_0000", "{}_seg"),
            ("{}_image", "{}_mask"),
            ("{}_img", "{}_gt"),
            ("{}_CT", "{}_Seg"),
        ],
    )
    def test_one_folder_suffixes(self, tmp_path, image_name, label_name):
        for case in ("b", "a"):
            touch(tmp_path / f"{image_name.format(case)}.nii.gz")
            touch(tmp_path / f"{label_name.format(case)}.nii")
        ds = load_nifti_folder(tmp_path)
        assert ds.case_ids == ["a", "b"]
        assert names(ds.images.paths) == [
            f"{image_name.format(c)}.nii.gz" for c in "ab"
        ]
        assert names(ds.labels.paths) == [f"{label_name.format(c)}.nii" for c in "ab"]

    def test_one_folder_loads_the_pair(self, tmp_path):
        write_nifti(tmp_path / "p1_ct.nii.gz", case_array(1))
        write_nifti(tmp_path / "p1_seg.nii.gz", label_array(1))
        write_nifti(tmp_path / "p2_ct.nii.gz", case_array(2))
        write_nifti(tmp_path / "p2_seg.nii.gz", label_array(2))
        ds = load_nifti_folder(tmp_path)
        np.testing.assert_array_equal(ds.images[1].array, case_array(2))
        np.testing.assert_array_equal(ds.labels[0].array, label_array(1))

    def test_images_only(self, tmp_path):
        for case in ("a", "b"):
            touch(tmp_path / f"{case}_0000.nii.gz")
        touch(tmp_path / "notes.txt")
        touch(tmp_path / "._a_0000.nii.gz")
        ds = load_nifti_folder(tmp_path)
        assert ds.case_ids == ["a", "b"] and ds.labels is None

    def test_unmatched_images_and_labels_are_listed(self, tmp_path):
        for case in ("a", "b", "c"):
            touch(tmp_path / "img" / f"{case}.nii.gz")
        for case in ("a", "d"):
            touch(tmp_path / "lab" / f"{case}_seg.nii.gz")
        with pytest.raises(DatasetLayoutError) as err:
            load_nifti_folder(tmp_path / "img", tmp_path / "lab")
        message = str(err.value)
        assert "2 image(s)" in message and "b.nii.gz, c.nii.gz" in message
        assert "1 label(s)" in message and "d_seg.nii.gz" in message
        assert "a.nii.gz" not in message and "a_seg" not in message

    def test_unmatched_in_one_folder(self, tmp_path):
        touch(tmp_path / "a_ct.nii.gz")
        touch(tmp_path / "a_seg.nii.gz")
        touch(tmp_path / "b_ct.nii.gz")
        with pytest.raises(DatasetLayoutError, match=r"image.*without a label.*b_ct"):
            load_nifti_folder(tmp_path)

    def test_explicit_suffixes(self, tmp_path):
        for case in ("a", "b"):
            touch(tmp_path / f"{case}_0000.nii.gz")
            touch(tmp_path / f"{case}_0001.nii.gz")  # a second channel: ignored
            touch(tmp_path / f"{case}_seg.nii.gz")
            touch(tmp_path / f"{case}_mask.nii.gz")  # not the label: ignored
        with pytest.raises(DatasetLayoutError):
            load_nifti_folder(tmp_path)
        ds = load_nifti_folder(
            tmp_path, image_suffix="_0000", label_suffix="_seg.nii.gz"
        )
        assert ds.case_ids == ["a", "b"]
        assert names(ds.images.paths) == ["a_0000.nii.gz", "b_0000.nii.gz"]
        assert names(ds.labels.paths) == ["a_seg.nii.gz", "b_seg.nii.gz"]
        with pytest.raises(ValueError, match="empty"):
            load_nifti_folder(tmp_path, image_suffix=".nii.gz")

    def test_same_folder_twice_is_one_folder(self, tmp_path):
        touch(tmp_path / "a_ct.nii.gz")
        touch(tmp_path / "a_seg.nii.gz")
        assert load_nifti_folder(tmp_path, tmp_path).case_ids == ["a"]

    def test_two_files_one_case(self, tmp_path):
        touch(tmp_path / "a.nii.gz")
        touch(tmp_path / "a_ct.nii.gz")
        with pytest.raises(DatasetLayoutError, match="share a case name"):
            load_nifti_folder(tmp_path)

    def test_missing_and_empty_folders(self, tmp_path):
        with pytest.raises(DatasetLayoutError, match="does not exist") as err:
            load_nifti_folder(tmp_path / "nope")
        assert "nope" in str(err.value)
        (tmp_path / "empty").mkdir()
        touch(tmp_path / "empty" / "readme.md")
        with pytest.raises(DatasetLayoutError, match="no NIfTI image files") as err:
            load_nifti_folder(tmp_path / "empty")
        assert "empty" in str(err.value)
        touch(tmp_path / "img" / "a.nii.gz")
        (tmp_path / "lab").mkdir()
        with pytest.raises(DatasetLayoutError, match="no NIfTI label files"):
            load_nifti_folder(tmp_path / "img", tmp_path / "lab")
        with pytest.raises(DatasetLayoutError, match="does not exist"):
            load_nifti_folder(tmp_path / "img", tmp_path / "missing")
        with pytest.raises(DatasetLayoutError, match="no NIfTI image files"):
            load_nifti_folder(tmp_path / "img", image_suffix="_0000")


def test_public_names():
    import pancreas

    assert pancreas.load_nih_pancreas is load_nih_pancreas
    assert pancreas.load_msd_pancreas is load_msd_pancreas
    assert pancreas.load_nifti_folder is load_nifti_folder


# ---------------------------------------------------------------------------
# labels as real datasets store them: voxel order, grid, alignment
# ---------------------------------------------------------------------------

PHANTOM_SHAPE = (96, 96, 16)


@pytest.fixture(scope="module")
def phantom():
    """A realistic CT (HU) and its pancreas label, on an RAS grid."""
    from pancreas.phantom import make_synthetic_ct

    return make_synthetic_ct(shape=PHANTOM_SHAPE, random_state=0)


def write_phantom_series(folder: Path, ct: Volume) -> Path:
    """Write the RAS phantom as a DICOM series on the same world grid.

    DICOM's patient frame is LPS and a slice's pixel (row r, column c) lies
    at ImagePositionPatient + c * x-spacing + r * y-spacing (rows along
    -x_RAS, columns along -y_RAS here), so the series is the phantom with
    both in-plane axes reversed.
    """
    dx, dy, dz = ct.spacing
    nx, ny, _ = ct.shape
    ox, oy, oz = ct.affine[:3, 3]
    far = ct.affine @ np.array([nx - 1, ny - 1, 0, 1.0])
    hu = np.asarray(ct.array)[::-1, ::-1, :].transpose(1, 0, 2)
    return write_ct_series(
        folder,
        hu.astype(np.float64),
        spacing=(dy, dx, dz),
        origin=(-far[0], -far[1], oz),
    )


def nifti_like(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), affine), str(path))
    return path


def image_grid_label(ct: Volume, label: Volume, tmp_path: Path):
    """The label on the DICOM series' own voxel grid, and that grid's affine."""
    series = write_phantom_series(tmp_path / "probe", ct)
    dicom = load_volume_checked(series, ct)
    native = np.asarray(label.array)[::-1, ::-1, :]
    return native, dicom.affine


def load_volume_checked(series: Path, ct: Volume) -> Volume:
    """Load a written series and check it is the phantom on its world grid."""
    from pancreas.io import load_volume
    from pancreas.record import make_record

    dicom = load_volume(series)
    rec = make_record(dicom, "probe")
    np.testing.assert_array_equal(rec.volume.array, ct.array)
    np.testing.assert_allclose(rec.volume.affine, ct.affine, atol=1e-3)
    return dicom


def nih_phantom_tree(root: Path, ct: Volume, labels: dict[int, tuple]) -> Path:
    """NIH layout of DICOM series of ``ct``; labels {case: (array, affine)}."""
    for n, (array, affine) in labels.items():
        case = root / "Pancreas-CT" / f"PANCREAS_{n:04d}"
        write_phantom_series(case / "11-24-2015-PANCREAS" / f"Pancreas-{n}", ct)
        nifti_like(array, affine, root / "labels" / f"label{n:04d}.nii.gz")
    return root


class TestLabelGeometry:
    """Item 1: same world grid in another voxel order is reordered."""

    def test_las_and_swapped_axes_labels_are_reordered(self, tmp_path, phantom):
        from nibabel.orientations import axcodes2ornt, ornt_transform

        from pancreas.record import make_record

        ct, label = phantom
        native, affine = image_grid_label(ct, label, tmp_path)
        stored = nib.Nifti1Image(native.astype(np.uint8), affine)  # LPS
        ras = nib.as_closest_canonical(stored)
        las = ras.as_reoriented(
            ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("LAS"))
        )
        swapped = ras.as_reoriented(
            ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("ASR"))
        )
        assert nib.aff2axcodes(las.affine) == ("L", "A", "S")
        assert swapped.shape == (96, 16, 96)
        tree = {1: (native, affine), 2: (las.get_fdata(), las.affine)}
        tree[3] = (swapped.get_fdata(), swapped.affine)
        root = nih_phantom_tree(tmp_path / "nih", ct, tree)
        ds = load_nih_pancreas(root / "Pancreas-CT", labels=root / "labels")
        checks = ds.verify_labels()
        assert [c.alignment for c in checks.values()] == ["as-is"] * 3
        for i in range(3):
            rec = make_record(ds.images[i], ds.case_ids[i])
            np.testing.assert_array_equal(
                rec.label_array(ds.labels[i]), label.array > 0
            )

    def test_label_on_another_grid_is_refused(self, tmp_path, phantom):
        ct, label = phantom
        native, affine = image_grid_label(ct, label, tmp_path)
        shifted = affine.copy()
        shifted[:3, 3] += [0.0, 3.0, 4.0]  # 5 mm away
        root = nih_phantom_tree(
            tmp_path / "nih", ct, {1: (native, affine), 2: (native, shifted)}
        )
        ds = load_nih_pancreas(root / "Pancreas-CT", labels=root / "labels")
        from pancreas.alignment import LabelAlignmentError

        with pytest.raises(LabelAlignmentError) as err:
            ds.verify_labels()
        message = str(err.value)
        assert "1 of 2 label(s) refused" in message
        assert "PANCREAS_0002" in message and "PANCREAS_0001" not in message
        assert "up to 5 mm apart" in message
        assert "resample_from_to" in message


class TestLabelAlignment:
    """Item 2: flipped or transposed labels with consistent headers."""

    @pytest.fixture
    def tree(self, tmp_path, phantom):
        ct, label = phantom
        native, affine = image_grid_label(ct, label, tmp_path)
        labels = {
            1: (native, affine),  # right
            2: (native[:, ::-1, :], affine),  # flipped along y, same header
            3: (native.transpose(1, 0, 2), affine),  # transposed, same header
        }
        root = nih_phantom_tree(tmp_path / "nih", ct, labels)
        return root / "Pancreas-CT", root / "labels"

    def test_misaligned_labels_are_caught_and_named(self, tree):
        from pancreas.alignment import LabelAlignmentError

        ds = load_nih_pancreas(tree[0], labels=tree[1])
        assert ds.labels[0].shape == PHANTOM_SHAPE  # the right one reads
        with pytest.raises(LabelAlignmentError) as err:
            ds.labels[1]
        message = str(err.value)
        assert message.startswith("PANCREAS_0002: the label does not look aligned")
        assert "with the label flip-y it has median" in message
        assert "PANCREAS_0002=flip-y" in message and "=as-is" in message
        with pytest.raises(LabelAlignmentError) as err:
            ds.verify_labels()
        message = str(err.value)
        assert "2 of 3 label(s) refused" in message
        assert "with the label flip-y" in message
        assert "with the label transpose it has" in message
        assert "- PANCREAS_0001" not in message

    def test_alignment_option_applies_the_fix(self, tree, phantom):
        from pancreas.record import make_record

        ct, label = phantom
        fix = {"PANCREAS_0002": "flip-y", "PANCREAS_0003": "transpose"}
        ds = load_nih_pancreas(tree[0], labels=tree[1], label_alignment=fix)
        checks = ds.verify_labels()
        applied = [c.alignment for c in checks.values()]
        assert applied == ["as-is", "flip-y", "transpose"]
        assert checks["PANCREAS_0002"].profiles["as-is"].implausibility < 0.25
        for i in range(3):
            rec = make_record(ds.images[i], ds.case_ids[i])
            np.testing.assert_array_equal(
                rec.label_array(ds.labels[i]), label.array > 0
            )

    def test_as_is_overrides_the_check(self, tree, phantom):
        from pancreas.record import make_record

        ct, label = phantom
        ds = load_nih_pancreas(tree[0], labels=tree[1], label_alignment="as-is")
        ds.verify_labels()  # not judged
        rec = make_record(ds.images[1], "PANCREAS_0002")
        stored = rec.label_array(ds.labels[1])
        np.testing.assert_array_equal(stored, label.array[:, ::-1] > 0)

    def test_split_subsets_keep_the_options(self, tree):
        ds = load_nih_pancreas(
            tree[0], labels=tree[1], label_alignment={"*": "as-is"}
        )
        train, _, test = ds.split(2, 0, 1, random_state=0)
        assert train.labels.alignments == ["as-is", "as-is"]
        again = pickle.loads(pickle.dumps(test.labels))
        assert again.case_ids == test.case_ids and again.alignments == ["as-is"]

    def test_unknown_option_or_case(self, tree):
        with pytest.raises(ValueError, match="unknown option"):
            load_nih_pancreas(tree[0], labels=tree[1], label_alignment="flip-z")
        with pytest.raises(ValueError, match="not in the cohort: PANCREAS_0009"):
            load_nih_pancreas(
                tree[0], labels=tree[1], label_alignment={"PANCREAS_0009": "flip-y"}
            )

    def test_cli_train_stops_before_training(self, tree, tmp_path, capsys):
        from pancreas.cli import main

        argv = ["--quiet", "train", "--nih", str(tree[0]), str(tree[1])]
        code = main([*argv, "-o", str(tmp_path / "model")])
        err = capsys.readouterr().err
        assert code == 2
        assert "PANCREAS_0002=flip-y" in err and "PANCREAS_0003" in err
        assert "--label-alignment" in err
        assert not (tmp_path / "model").exists()


class TestNIHReleases:
    """Item 3: the 82- and 80-case releases of NIH Pancreas-CT."""

    def test_80_case_release_skips_labels_25_and_70(self, tmp_path, caplog):
        root = make_nih_tree(tmp_path / "nih", numbers=(1, 2, 10), with_labels=())
        labels = tmp_path / "TCIA_pancreas_labels-02-05-2017"
        for n in (1, 2, 10, 25, 70):
            write_nifti(labels / f"label{n:04d}.nii.gz", label_array(n))
        with caplog.at_level("INFO", logger="pancreas"):
            ds = load_nih_pancreas(root, labels=labels)
        assert ds.case_ids == ["PANCREAS_0001", "PANCREAS_0002", "PANCREAS_0010"]
        note = caplog.text
        assert "skipped 2 label file(s) without a case folder" in note
        assert "label0025.nii.gz, label0070.nii.gz" in note
        assert "duplicates of PANCREAS_0002" in note

    def test_82_case_release_keeps_or_drops_the_duplicates(self, tmp_path, caplog):
        root = make_nih_tree(tmp_path / "nih", numbers=(1, 2, 25, 70))
        with caplog.at_level("INFO", logger="pancreas"):
            ds = load_nih_pancreas(root)
        assert len(ds) == 4
        assert "PANCREAS_0025, PANCREAS_0070 on disk (the 82-case release)" in (
            caplog.text
        )
        ds = load_nih_pancreas(root, drop_duplicates=True)
        assert ds.case_ids == ["PANCREAS_0001", "PANCREAS_0002"]
        assert names(ds.labels.paths) == ["label0001.nii.gz", "label0002.nii.gz"]

    def test_tcia_manifest_layout_with_metadata(self, tmp_path, phantom):
        ct, label = phantom
        top = tmp_path / "manifest-1599750808610"
        native, affine = image_grid_label(ct, label, tmp_path)
        case = top / "Pancreas-CT" / "PANCREAS_0001"
        series = case / "11-24-2015-PANCREAS0001-Pancreas-18957" / "Pancreas-99667"
        write_phantom_series(series, ct)
        (top / "metadata.csv").write_text("Series UID,Collection\n1.2.3,Pancreas-CT\n")
        labels = tmp_path / "TCIA_pancreas_labels-02-05-2017"
        nifti_like(native, affine, labels / "label0001.nii.gz")
        ds = load_nih_pancreas(top, labels=labels)
        assert (series / "1-001.dcm").is_file()
        assert ds.images.paths == [series]
        assert ds.verify_labels()["PANCREAS_0001"].alignment == "as-is"


class TestMSDGeometry:
    """Item 3: MSD Task07 as shipped: tumour = 2, float32 headers, qform only."""

    def test_tumour_counts_and_msd_headers_are_accepted(self, tmp_path, phantom):
        from pancreas.record import make_record

        ct, label = phantom
        root = tmp_path / "Task07_Pancreas"
        # an LPS-stored image, as the MSD ships NIfTI converted from DICOM
        image = nib.as_closest_canonical(nib.Nifti1Image(ct.array, ct.affine))
        from nibabel.orientations import axcodes2ornt, ornt_transform

        lps = image.as_reoriented(
            ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("LPS"))
        )
        img_path = root / "imagesTr" / "pancreas_001.nii.gz"
        img_path.parent.mkdir(parents=True)
        nib.save(lps, str(img_path))
        lab = np.asarray(label.array, np.uint8).copy()
        inside = np.argwhere(lab)
        tumour = tuple(inside[: len(inside) // 4].T)
        lab[tumour] = 2
        lab_img = lps.__class__(
            nib.orientations.apply_orientation(
                lab, ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("LPS"))
            ),
            None,
        )
        # the label's header: qform only, its affine through float32 rounding
        qform = lps.affine.astype(np.float32).astype(np.float64)
        qform[:3, 3] += 1e-4
        lab_img.set_qform(qform, code=1)
        lab_img.set_sform(None, code=0)
        lab_path = root / "labelsTr" / "pancreas_001.nii.gz"
        lab_path.parent.mkdir(parents=True)
        nib.save(lab_img, str(lab_path))
        assert not np.array_equal(nib.load(lab_path).affine, nib.load(img_path).affine)

        ds = load_msd_pancreas(root)
        assert ds.verify_labels()["pancreas_001"].alignment == "as-is"
        stored = ds.labels[0]
        assert set(np.unique(stored.array)) == {0, 1, 2}
        rec = make_record(ds.images[0], "pancreas_001")
        np.testing.assert_array_equal(rec.label_array(stored), label.array > 0)
