"""Adapters of layouts that ship faces already cropped say so in the manifest, so the face
step pads them before detection and ``ferdata pipeline`` needs no flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferdata.datasets import list_datasets
from ferdata.engines import InlineExecutor
from ferdata.faces.preprocess import is_pre_cropped
from ferdata.ingest import ingest
from tests.datasets.fakes import image, write_fake

#: what each adapter's fake layout is (CK+48 crops, FER-2013's CSV, FER+'s 48 px PNGs); every other layout is frames
PRE_CROPPED = {"ckplus": True, "fer2013": True, "ferplus": True}


def run(dataset: str, source: Path, tmp_path: Path, **kw):
    return ingest(dataset, source, manifests=tmp_path / "m", executor=InlineExecutor(), **kw)


@pytest.mark.parametrize("name", list_datasets())
def test_every_adapter_records_whether_its_faces_are_pre_cropped(name, tmp_path):
    exp = write_fake(name, tmp_path / "src")
    m = run(name, exp.source, tmp_path, **exp.options).manifest
    assert m.metadata()["pre_cropped"] is PRE_CROPPED.get(name, False)
    assert is_pre_cropped(m) is PRE_CROPPED.get(name, False)


def test_fer2013_folders_are_pre_cropped(tmp_path):
    image(tmp_path / "f" / "train/happy/Training_1.jpg", (48, 48), seed=1, fmt="JPEG")
    assert is_pre_cropped(run("fer2013", tmp_path / "f", tmp_path).manifest)


def test_ckplus_original_sequences_are_frames(tmp_path):
    root = tmp_path / "ck"
    image(root / "cohn-kanade-images/S005/001/S005_001_00000011.png", (64, 48), seed=2)
    (root / "Emotion/S005/001").mkdir(parents=True)
    (root / "Emotion/S005/001/S005_001_00000011_emotion.txt").write_text("   3.0000000e+00\n")
    assert not is_pre_cropped(run("ckplus", root, tmp_path).manifest)


@pytest.mark.parametrize("folder,aligned", [("Train_Aligned_Faces", True), ("SFEW2_aligned", True), ("frames", False)])
def test_sfew2_aligned_faces_are_pre_cropped(folder, aligned, tmp_path):
    image(tmp_path / folder / "Happy" / "A_000000001_00000001.png", (143, 181), "RGB", seed=3)
    assert is_pre_cropped(run("sfew", tmp_path / folder, tmp_path).manifest) is aligned


def test_the_user_can_say_so_for_their_own_folder(tmp_path):
    exp = write_fake("folder", tmp_path / "src")
    assert is_pre_cropped(run("folder", exp.source, tmp_path / "a", pre_cropped=True, **exp.options).manifest)
    ck = write_fake("ckplus", tmp_path / "ck")
    assert not is_pre_cropped(run("ckplus", ck.source, tmp_path / "b", pre_cropped=False).manifest)
