import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferdata.errors import ManifestError
from ferdata.manifest import Manifest, images_schema, manifests_root, read_metadata, validate_images, write_table


def tiny_images(n=2, **over):
    cols = {f.name: [None] * n for f in images_schema()}
    cols.update(image_id=[f"id{i}" for i in range(n)], dataset=["x"] * n, path=[f"p{i}" for i in range(n)],
                label=["happy"] * n, readable=[True] * n)
    cols.update(over)
    return pa.Table.from_pydict(cols, schema=images_schema())


def test_write_is_deterministic_and_keeps_metadata(tmp_path):
    t = tiny_images()
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_table(a, t, {"dataset": "x", "options": {"k": 1}})
    write_table(b, t, {"options": {"k": 1}, "dataset": "x"})
    assert a.read_bytes() == b.read_bytes()
    assert read_metadata(a) == {"dataset": "x", "options": {"k": 1}}
    raw = pq.read_schema(a).metadata[b"ferdata"]
    assert json.loads(raw)["dataset"] == "x"


def test_validator_finds_problems():
    assert validate_images(tiny_images()) == []
    assert any("not unique" in p for p in validate_images(tiny_images(image_id=["a", "a"])))
    assert any("outside the vocabulary" in p for p in validate_images(tiny_images(label=["glee", "happy"])))
    assert any("no error message" in p for p in validate_images(tiny_images(readable=[False, True])))
    assert any("'label' is missing" in p for p in validate_images(tiny_images().drop(["label"])))


def test_manifest_open_and_roots(tmp_path, monkeypatch):
    monkeypatch.delenv("FERDATA_MANIFESTS", raising=False)
    assert str(manifests_root()) == "manifests"
    monkeypatch.setenv("FERDATA_MANIFESTS", str(tmp_path))
    assert manifests_root() == tmp_path
    write_table(tmp_path / "jf" / "images.parquet", tiny_images(), {"dataset": "x", "source_root": "/data/x",
                                                                    "image_root": "@manifest/images"})
    m = Manifest.open("jf")
    assert m.dataset == "x" and m.image_root == tmp_path / "jf" / "images"
    assert m.resolve("a.png") == tmp_path / "jf" / "images" / "a.png"
    with pytest.raises(ManifestError, match=r"no manifest 'other'.*found: jf"):
        Manifest.open("other")


def test_corrupt_table_is_a_manifest_error(tmp_path):
    bad = tmp_path / "jf" / "images.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    with pytest.raises(ManifestError, match=r"images.parquet is damaged: Parquet file size is 7 bytes.*; re-run "
                                            r"'ferdata ingest DATASET SOURCE --name jf'"):
        Manifest(tmp_path / "jf").images()


def test_metadata_cache_follows_a_rewritten_table(tmp_path):
    path = tmp_path / "jf" / "images.parquet"
    write_table(path, tiny_images(), {"dataset": "x", "source_root": "/data/one"})
    m = Manifest(tmp_path / "jf")
    assert m.image_root == Path("/data/one") and m.metadata() is m.metadata()
    write_table(path, tiny_images(3), {"dataset": "x", "source_root": "/data/two"})
    assert m.image_root == Path("/data/two")
