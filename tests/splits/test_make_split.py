"""make_split / load_split on fake manifests: files, names, exclusions, refusal, strict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.manifest import write_table
from ferdata.manifest.schema import LABELS_SCHEMA
from ferdata.manifest.tables import LABELS_TABLE
from ferdata.splits import list_splits, load_split, make_split, split_metadata
from tests.splits.fakes import people

INLINE = InlineExecutor()


def test_writes_the_split_file_with_its_contract(fake_manifest):
    m = fake_manifest(people(n_subjects=6))
    r = make_split(m, "spi", folds=3, executor=INLINE)
    assert r.path == m.dir / "splits" / "spi-3.parquet"
    table = pq.read_table(r.path)
    assert table.schema.names == ["image_id", "fold", "role"]
    assert [str(t) for t in table.schema.types] == ["string", "int32", "string"]
    meta = split_metadata(m, "spi-3")
    for key in ("protocol", "options", "seed", "class_set", "group_column", "n_folds", "audit", "content_hash"):
        assert key in meta
    assert meta["protocol"] == "spi" and meta["n_folds"] == 3 and meta["group_column"] == "subject_id"
    assert meta["class_set"]["classes"] == ["anger", "happy", "sad"]
    assert not any("time" in k or "created" in k for k in meta)
    loaded = load_split(m, "spi-3")
    assert loaded.equals(r.table)
    assert json.loads(loaded.schema.metadata[b"ferdata"])["content_hash"] == r.content_hash
    assert list_splits(m) == ["spi-3"]


def test_same_options_same_bytes_other_seed_other_split(fake_manifest):
    m = fake_manifest(people(n_subjects=8, per_label=3))
    first = make_split(m, "spi", folds=2, seed=3, val_size=0.2, executor=INLINE).path.read_bytes()
    again = make_split(m, "spi", folds=2, seed=3, val_size=0.2, executor=INLINE).path.read_bytes()
    assert first == again
    other = make_split(m, "spi", folds=2, seed=4, val_size=0.2, name="other", executor=INLINE)
    assert other.content_hash != split_metadata(m, "spi-2")["content_hash"]


@pytest.mark.parametrize("protocol,options,name", [
    ("spi", {}, "spi-5"), ("spi", {"folds": 10}, "spi-10"), ("spi", {"test_size": 0.3}, "spi"),
    ("ppi", {}, "ppi"), ("ppi", {"folds": 3}, "ppi-3"), ("sps", {}, "sps"), ("loso", {}, "loso"),
    ("kfold", {}, "kfold-5"), ("all-train", {}, "all-train"), ("spi", {"name": "mine"}, "mine"),
])
def test_default_names(protocol, options, name, fake_manifest):
    r = make_split(fake_manifest(people(n_subjects=10)), protocol, executor=INLINE, write=False, **options)
    assert r.name == name


def test_a_bad_name_is_refused(fake_manifest):
    with pytest.raises(FerdataError, match="--name"):
        make_split(fake_manifest(people()), "ppi", name="../escape", executor=INLINE)


def test_unreadable_and_excluded_images_are_counted_never_given_a_role(fake_manifest):
    rows = people(n_subjects=4, labels=("happy", "neutral", "contempt"))
    rows[0]["readable"] = False
    rows.append({"image_id": "nolabel", "label": None, "subject_id": "S000"})
    m = fake_manifest(rows)
    r = make_split(m, "kfold", folds=2, classes="6", executor=INLINE)
    ids = set(r.table.column("image_id").to_pylist())
    assert rows[0]["image_id"] not in ids and "nolabel" not in ids
    assert r.excluded == {"unreadable": 1, "no label": 1, "label contempt not in class set 6": 8,
                          "label neutral not in class set 6": 8}
    assert r.metadata["n_images"] == len(ids) == 7


def test_labels_come_from_relabel_decisions(fake_manifest):
    m = fake_manifest(people(n_subjects=4, labels=("happy", "sad")))
    log = pa.table({"image_id": ["s0-happy-0"], "old_label": ["happy"], "new_label": ["contempt"],
                    "annotator": ["a"], "time": ["t"], "project": [None], "task_id": [None], "source": ["test"],
                    "note": [None]},
                   schema=LABELS_SCHEMA)
    write_table(m.dir / LABELS_TABLE, log, {})
    r = make_split(m, "ppi", classes="happy,sad", executor=INLINE, write=False)
    assert "s0-happy-0" not in r.table.column("image_id").to_pylist()
    assert r.excluded == {"label contempt not in class set happy,sad": 1}


def test_person_aware_protocols_are_refused_without_subjects(fake_manifest):
    rows = [{"image_id": f"i{n}", "label": ("happy", "sad")[n % 2], "source_split": "Training"} for n in range(10)]
    m = fake_manifest(rows, name="nosubjects")
    for protocol in ("spi", "sps", "loso"):
        with pytest.raises(FerdataError) as info:
            make_split(m, protocol, executor=INLINE)
        msg = str(info.value)
        assert "\n" not in msg and "nosubjects" in msg and "subject IDs" in msg
        usable = msg.rsplit(": ", 1)[1]
        assert set(usable.split(", ")) == {"ppi", "kfold", "official", "all-train", "all-test"}
    assert not (m.dir / "splits").exists()


def test_group_by_a_missing_column_is_refused(fake_manifest):
    with pytest.raises(FerdataError, match="no movie values"):
        make_split(fake_manifest(people()), "kfold", group_by="movie", executor=INLINE)


def test_ppi_refuses_group_by(fake_manifest):
    with pytest.raises(FerdataError, match="ppi ignores subjects"):
        make_split(fake_manifest(people()), "ppi", group_by="subject", executor=INLINE)


def _duplicated(n_subjects: int = 6) -> list[dict]:
    rows = people(n_subjects=n_subjects)
    rng = np.random.default_rng(5)
    for r in rows:
        r["pixels"] = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    # The same picture under subjects S000 and S001: an exact copy (same content hash) ...
    copy = next(i for i, r in enumerate(rows) if r["subject_id"] == "S001")
    rows[0]["content_hash"] = rows[copy]["content_hash"] = "same"
    rows[copy]["pixels"] = rows[0]["pixels"]
    # ... and under S002 / S003 a near copy (re-saved brighter: another content hash, same pHash).
    a = next(i for i, r in enumerate(rows) if r["subject_id"] == "S002")
    b = next(i for i, r in enumerate(rows) if r["subject_id"] == "S003")
    rows[b]["pixels"] = np.clip(rows[a]["pixels"].astype(int) + 3, 0, 255).astype(np.uint8)
    return rows


@pytest.mark.parametrize("protocol", ["ppi", "kfold", "spi", "loso"])
def test_exact_copies_always_share_a_role(protocol, fake_manifest):
    r = make_split(fake_manifest(_duplicated(n_subjects=8)), protocol, executor=INLINE, write=False)
    assert r.audit["duplicate_pairs"] == 1
    assert r.audit["totals"]["exact_duplicates"] == 0 and r.audit["forbidden"] == []
    if protocol == "loso":  # S000/S001 hold the same picture, S002/S003 a near copy: each pair leaves together
        assert r.n_folds == 6
        assert any("2 subject_id value(s) merged" in w for w in r.warnings)


@pytest.mark.parametrize("protocol", ["ppi", "kfold", "spi", "loso"])
def test_near_copies_are_joined_and_share_a_role(protocol, fake_manifest):
    r = make_split(fake_manifest(_duplicated(n_subjects=8)), protocol, executor=INLINE, write=False)
    assert r.audit["near_duplicates_joined"]["pairs"] == 1
    assert r.audit["totals"]["near_duplicates"] == 0


def test_audit_finds_near_duplicates_left_across_roles(fake_manifest, monkeypatch):
    from ferdata.splits import make

    monkeypatch.setattr(make, "NEAR_JOIN_THRESHOLD", -1)  # join nothing: the audit must see the pair
    r = make_split(fake_manifest(_duplicated()), "loso", executor=INLINE, write=False)
    assert r.audit["near_duplicate_pairs"] == 1
    assert r.audit["totals"]["near_duplicates"] == 2  # S002's fold and S003's fold
    assert r.audit["totals"]["near_duplicates_same_subject"] == 0


def _official_leak() -> list[dict]:
    rows = _duplicated()
    copy = next(i for i, r in enumerate(rows) if r["subject_id"] == "S001")
    for i, r in enumerate(rows):
        r["source_split"] = "PrivateTest" if i == copy else "Training"
    return rows


def test_strict_refuses_leakage_and_writes_nothing(fake_manifest):
    m = fake_manifest(_official_leak())
    r = make_split(m, "official", executor=INLINE)
    assert r.audit["totals"]["exact_duplicates"] == 1
    assert r.audit["forbidden"] == ["fold 0: 1 exact duplicate pair(s) across roles"]
    assert any("forbids" in w for w in r.warnings)
    r.path.unlink()
    with pytest.raises(FerdataError, match="leaks: fold 0: 1 exact duplicate") as info:
        make_split(m, "official", strict=True, executor=INLINE)
    assert "\n" not in str(info.value)
    assert not (m.dir / "splits" / "official.parquet").exists()


def test_label_conflicts_are_counted(fake_manifest):
    rows = _official_leak()
    copy = next(i for i, r in enumerate(rows) if r["subject_id"] == "S001")
    rows[copy]["label"] = "happy" if rows[0]["label"] != "happy" else "sad"
    r = make_split(fake_manifest(rows), "official", executor=INLINE, write=False)
    assert r.audit["conflicting_duplicate_groups"] == 1
    assert r.audit["totals"]["label_conflicts"] == 1


def test_strict_passes_a_clean_split(fake_manifest):
    r = make_split(fake_manifest(people(n_subjects=6)), "spi", folds=3, strict=True, executor=INLINE)
    assert r.audit["forbidden"] == [] and r.path.exists()


def test_a_split_reads_with_plain_pandas_and_joins_images(fake_manifest):
    m = fake_manifest(people(n_subjects=5))
    make_split(m, "loso", executor=INLINE)
    split = pd.read_parquet(m.dir / "splits" / "loso.parquet")
    images = pd.read_parquet(m.dir / "images.parquet")
    joined = split.merge(images, on="image_id", validate="many_to_one")
    assert len(joined) == len(split) == 5 * len(images)
    test = joined[(joined.fold == 0) & (joined.role == "test")]
    assert test.subject_id.nunique() == 1


def test_load_split_names_the_fix_when_missing(fake_manifest):
    m = fake_manifest(people())
    with pytest.raises(FerdataError, match="has no split 'spi-10'.*ferdata split"):
        load_split(m, "spi-10")
