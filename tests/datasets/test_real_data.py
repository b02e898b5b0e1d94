"""The exact figures of the real samples in ../shared/data (skipped when absent)."""

from __future__ import annotations

from collections import Counter

import pytest

from ferdata.info import summarize

pytestmark = pytest.mark.real_data


def labels(manifest) -> Counter:
    return Counter(manifest.images(columns=["label"]).column("label").to_pylist())


def test_jaffe(real_manifest):
    m = real_manifest("jaffe")
    t = m.images()
    assert t.num_rows == 213 and all(t.column("readable").to_pylist())
    assert len(set(t.column("subject_id").to_pylist())) == 10
    assert labels(m) == Counter(anger=30, disgust=29, fear=32, happy=31, neutral=30, sad=31, surprise=30)
    raw = Counter(t.column("label_raw").to_pylist())
    assert raw == Counter(AN=30, DI=29, FE=32, HA=31, NE=30, SA=31, SU=30)
    meta = m.metadata()
    assert len(meta["report"]["ratings_without_image"]) == 6
    assert t.column("rating_top").null_count == 0
    assert set(t.column("mode").to_pylist()) <= {"L", "P"} and set(t.column("width").to_pylist()) == {256}


def test_ckplus48(real_manifest):
    m = real_manifest("ck48")
    t = m.images()
    assert t.num_rows == 981 and all(t.column("readable").to_pylist())
    assert len(set(t.column("subject_id").to_pylist())) == 118
    assert len(set(t.column("sequence_id").to_pylist())) == 327
    assert labels(m) == Counter(anger=135, contempt=54, disgust=177, fear=75, happy=207, sad=84, surprise=249)
    assert Counter(t.column("label_raw").to_pylist())["sadness"] == 84


def test_fer2013_csv_sample(real_manifest):
    m = real_manifest("fer2013")
    t = m.images()
    assert t.num_rows == 1167 and all(t.column("readable").to_pylist())
    assert set(t.column("source_split").to_pylist()) == {"Training"}
    assert set(zip(t.column("width").to_pylist(), t.column("height").to_pylist())) == {(48, 48)}
    assert t.column("subject_id").null_count == 1167


def test_fer2013_folder_sample(real_manifest):
    t = real_manifest("fer2013_folders").images()
    assert t.num_rows == 168
    assert Counter(t.column("source_split").to_pylist()) == Counter(Training=84, PublicTest=42, PrivateTest=42)
    assert Counter(t.column("label").to_pylist()) == Counter(
        {lab: 24 for lab in ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise")})


def test_ferplus_sample(real_manifest):
    """FER+'s own layout: 60 images per folder, ten vote columns, majority labels."""
    from ferdata.datasets.ferplus import VOTE_COLUMNS, VOTE_LABELS, vote_winner

    t = real_manifest("ferplus").images()
    assert t.num_rows == 180 and all(t.column("readable").to_pylist())
    assert Counter(t.column("source_split").to_pylist()) == Counter(Training=60, PublicTest=60, PrivateTest=60)
    rows = t.to_pylist()
    assert all(sum(r[c] for c in VOTE_COLUMNS) in (9, 10) for r in rows)
    for r in rows:
        win = vote_winner([r[c] for c in VOTE_COLUMNS], "majority")
        assert r["label"] == (None if win is None else VOTE_LABELS[win])
    assert labels(real_manifest("ferplus")) == Counter(
        {"neutral": 65, "happy": 39, "surprise": 20, "anger": 14, "sad": 14, "fear": 6, "contempt": 2, "disgust": 1,
         None: 19})
    first = next(r for r in rows if r["path"] == "FER2013Train/fer0000000.png")
    assert [first[c] for c in VOTE_COLUMNS] == [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]


def test_sfew_sample(real_manifest):
    m = real_manifest("sfew")
    t = m.images()
    assert t.num_rows == 35
    assert t.column("subject_id").null_count == 0 and t.column("movie").null_count == 0
    assert t.column("lpq_pc1").null_count == 0
    report = m.metadata()["report"]
    assert report["xlsx_rows"] == 675 and report["xlsx_rows_without_image"] == 640
    s = summarize(m)
    assert s["n_images"] == 35 and s["subjects"]["n_subjects"] == len(set(t.column("subject_id").to_pylist()))
