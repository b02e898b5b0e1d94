"""Bad input: every broken or odd file becomes a row (or is read), and the run finishes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor, ProcessPoolExecutor
from ferdata.errors import FerdataError
from ferdata.ingest import image_id, ingest
from tests.datasets.fakes import image


def rows_by_name(tmp_path: Path, source: Path, **kw) -> dict[str, dict]:
    kw.setdefault("executor", InlineExecutor())
    res = ingest("folder", source, manifests=tmp_path / "m", **kw)
    return {r["path"].split("/", 1)[1]: r for r in res.manifest.images().to_pylist()}


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    d = tmp_path / "src" / "happy"
    good = image(d / "good.png", (20, 20), "RGB", seed=1)
    data = good.read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    (d / "truncated.jpg").write_bytes(jpeg.getvalue()[:300])
    (d / "zero.png").write_bytes(b"")
    (d / "notes.jpg").write_text("this is not an image at all")
    # Valid but unusual: 16-bit grey PNG, CMYK JPEG, palette TIFF, a PNG named .jpg.
    Image.fromarray((np.arange(400, dtype=np.uint16).reshape(20, 20) * 150)).save(d / "deep16.png")
    Image.new("CMYK", (9, 7), (10, 20, 30, 40)).save(d / "cmyk.jpg", "JPEG")
    Image.new("RGB", (8, 6), (200, 10, 10)).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.tiff")
    Image.new("L", (5, 4), 77).save(d / "actually_png.jpg", "PNG")
    image(d / "naïve café 笑.png", (6, 6), seed=3)
    image(d / "with space.png", (6, 6), seed=4)
    (d / "loop.png").symlink_to(d / "loop.png")
    (d / "dangling.png").symlink_to(d / "nowhere.png")
    (tmp_path / "src" / "happy" / "sub").mkdir()
    (tmp_path / "src" / "happy" / "sub" / "back").symlink_to(tmp_path / "src" / "happy", target_is_directory=True)
    return tmp_path / "src"


def test_messy_folder_is_fully_accounted_for(messy, tmp_path):
    rows = rows_by_name(tmp_path, messy)
    unreadable = {k for k, r in rows.items() if not r["readable"]}
    assert unreadable == {"truncated.png", "truncated.jpg", "zero.png", "notes.jpg", "loop.png", "dangling.png"}
    assert all(rows[k]["error"] for k in unreadable)
    assert "empty file" in rows["zero.png"]["error"]
    assert "not an image" in rows["notes.jpg"]["error"]
    assert "Too many levels of symbolic links" in rows["loop.png"]["error"]
    assert "No such file" in rows["dangling.png"]["error"]
    assert rows["truncated.png"]["bytes"] > 0 and rows["truncated.png"]["content_hash"]
    for name, mode, size in (("deep16.png", "I;16", (20, 20)), ("cmyk.jpg", "CMYK", (9, 7)),
                             ("palette.tiff", "P", (8, 6)), ("actually_png.jpg", "L", (5, 4)),
                             ("naïve café 笑.png", "L", (6, 6)), ("with space.png", "L", (6, 6))):
        r = rows[name]
        assert r["readable"] and r["error"] is None, name
        assert (r["mode"], (r["width"], r["height"])) == (mode, size), name
    # The folder symlink loop (sub/back -> happy) is walked once, not forever.
    assert not any(k.startswith("sub/back/") for k in rows)


def test_decompression_bomb_is_a_row_not_a_crash(tmp_path):
    d = tmp_path / "src" / "sad"
    d.mkdir(parents=True)
    limit = Image.MAX_IMAGE_PIXELS
    side = int(limit**0.5) + 10
    Image.new("1", (side, side)).save(d / "bomb.png", optimize=True)
    image(d / "ok.png", seed=5)
    rows = rows_by_name(tmp_path, tmp_path / "src")
    bomb = rows["bomb.png"]
    assert not bomb["readable"] and "decompression-bomb limit" in bomb["error"] and "--max-pixels" in bomb["error"]
    assert (bomb["width"], bomb["height"]) == (side, side)
    assert rows["ok.png"]["readable"]
    raised = rows_by_name(tmp_path / "again", tmp_path / "src", max_pixels=side * side + 1)
    assert raised["bomb.png"]["readable"]


def test_readable_flags_match_a_full_decode(messy, tmp_path):
    """The header fast path must agree with Pillow decoding every file completely."""
    rows = rows_by_name(tmp_path, messy)
    for rel, r in rows.items():
        path = messy / "happy" / rel
        try:
            with Image.open(path) as im:
                im.load()
            decodes = True
        except Exception:  # noqa: BLE001
            decodes = False
        assert r["readable"] == decodes, rel


def test_process_pool_gives_same_rows(messy, tmp_path):
    a = rows_by_name(tmp_path / "a", messy)
    b = rows_by_name(tmp_path / "b", messy, executor=ProcessPoolExecutor(2))
    assert a == b


def test_the_pool_is_forked_before_the_scan_and_closed_after(messy, tmp_path, monkeypatch):
    """A pool forked after the scan copies the driver's rows into every worker (at AffectNet
    scale 0.7 s of the ingest); the scan must find the pool already there."""
    from contextlib import contextmanager

    from ferdata.datasets.folder import Folder

    events: list[str] = []

    class Recorded(ProcessPoolExecutor):
        @contextmanager
        def kept(self):
            with super().kept():
                events.append("pool up")
                yield
            events.append("pool down")

    scan = Folder.scan
    monkeypatch.setattr(Folder, "scan", lambda self, *a: (events.append("scan"), scan(self, *a))[1])
    executor = Recorded(2)
    rows = rows_by_name(tmp_path, messy, executor=executor)
    assert events == ["pool up", "scan", "pool down"] and executor._kept is None
    assert rows == rows_by_name(tmp_path / "inline", messy)


def test_killed_write_leaves_previous_manifest_intact(messy, tmp_path, monkeypatch):
    first = rows_by_name(tmp_path, messy)
    images = tmp_path / "m" / "folder" / "images.parquet"
    before = images.read_bytes()

    def killed(*args, **kwargs):
        Path(args[1]).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        rows_by_name(tmp_path, messy)
    assert images.read_bytes() == before
    assert [p.name for p in images.parent.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    assert rows_by_name(tmp_path, messy) == first


def test_image_id_is_stable():
    assert image_id("jaffe", "KA.AN1.39.tiff") == image_id("jaffe", "KA.AN1.39.tiff")
    assert image_id("jaffe", "KA.AN1.39.tiff") != image_id("ckplus", "KA.AN1.39.tiff")
    assert len(image_id("x", "y")) == 16


def test_missing_source_and_bad_name(tmp_path):
    with pytest.raises(FerdataError, match="does not exist"):
        ingest("jaffe", tmp_path / "nope", manifests=tmp_path)
    (tmp_path / "src" / "happy").mkdir(parents=True)
    image(tmp_path / "src" / "happy" / "a.png")
    with pytest.raises(FerdataError, match="with name"):
        ingest("folder", tmp_path / "src", name="../evil", manifests=tmp_path)


def test_source_that_is_a_file_for_a_folder_adapter(tmp_path):
    f = tmp_path / "x.png"
    image(f)
    with pytest.raises(FerdataError, match="not a directory"):
        ingest("jaffe", f, manifests=tmp_path)


def test_unreadable_folder_is_counted(tmp_path, monkeypatch):
    src = tmp_path / "src"
    image(src / "happy" / "a.png")
    (src / "sad").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        # rmtree lists folders by descriptor (an int): those pass through
        if isinstance(path, (str, os.PathLike)) and Path(path).name == "sad":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = ingest("folder", src, manifests=tmp_path / "m", executor=InlineExecutor())
    assert res.skipped["unreadable folder"] == 1 and res.n_rows == 1


# ---- re-ingest: the same source refreshes, another source needs --replace ----------------------


def test_reingest_of_another_source_is_refused_and_replace_moves_the_old_aside(tmp_path: Path) -> None:
    from tests.datasets.fakes import write_fake

    a = write_fake("jaffe", tmp_path / "a")
    b = write_fake("jaffe", tmp_path / "b")
    first = ingest("jaffe", a.source, name="faces", manifests=tmp_path / "m", executor=InlineExecutor())
    (first.manifest.dir / "splits").mkdir()
    (first.manifest.dir / "splits" / "mine.parquet").write_bytes(b"a split of the first source")
    again = ingest("jaffe", a.source, name="faces", manifests=tmp_path / "m", executor=InlineExecutor())
    assert again.replaced is None and (again.manifest.dir / "splits" / "mine.parquet").exists()

    with pytest.raises(FerdataError) as info:
        ingest("jaffe", b.source, name="faces", manifests=tmp_path / "m", executor=InlineExecutor())
    msg = str(info.value)
    from ferdata.cli.common import flag_of

    assert "\n" not in msg and "--replace" in info.value.render(flag_of)  # the CLI shows parameters as flags
    assert f"jaffe from {a.source.resolve()}" in msg and f"jaffe from {b.source.resolve()}" in msg
    with pytest.raises(FerdataError, match="holds jaffe from .*; this is folder from"):
        ingest("folder", a.source.parent, name="faces", manifests=tmp_path / "m", executor=InlineExecutor())

    new = ingest("jaffe", b.source, name="faces", manifests=tmp_path / "m", replace=True, executor=InlineExecutor())
    assert new.manifest.metadata()["source_root"] == str(b.source.resolve())
    assert not (new.manifest.dir / "splits").exists()  # the new manifest starts clean ...
    old = Path(new.replaced)
    assert old.parent == tmp_path / "m" and old.name.startswith("faces.replaced-")  # ... the old one is kept
    assert (old / "splits" / "mine.parquet").read_bytes() == b"a split of the first source"


def test_a_failed_replace_puts_the_old_manifest_back(tmp_path: Path) -> None:
    from tests.datasets.fakes import write_fake

    a = write_fake("jaffe", tmp_path / "a")
    ingest("jaffe", a.source, name="faces", manifests=tmp_path / "m", executor=InlineExecutor())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerdataError):
        ingest("jaffe", tmp_path / "empty", name="faces", manifests=tmp_path / "m", replace=True,
               executor=InlineExecutor())
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["faces"]
    from ferdata.manifest import Manifest

    assert Manifest(tmp_path / "m" / "faces").metadata()["source_root"] == str(a.source.resolve())


def test_pipeline_names_the_manifest_after_the_folder(tmp_path: Path) -> None:
    from ferdata.pipeline import manifest_name

    (tmp_path / "lab photos (2019)").mkdir()
    (tmp_path / "CK+48").mkdir()
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    assert manifest_name(tmp_path / "lab photos (2019)") == "lab-photos-2019"
    assert manifest_name(tmp_path / "CK+48") == "CK+48"
    assert manifest_name(tmp_path / "fer2013.csv") == "fer2013"


def test_rows_never_read_keep_their_place_beside_the_workers_columns():
    """Workers return Arrow columns for the entries they read; entries known to be bad (a link
    out of the root, a CSV row without pixels) are never read and must land in their own row."""
    import pyarrow as pa

    from ferdata.datasets.base import Entry, Rows
    from ferdata.ingest import PROBED_SCHEMA, _build_table

    entries = [Entry("a/bad0.png", None, None, error="outside the dataset root: x"),
               Entry("a/ok1.png", "a", "anger"), Entry("a/bad2.png", None, None, error="no pixels"),
               Entry("a/ok3.png", "a", "anger"), Entry("a/bad4.png", None, None, error="no pixels")]
    probed = pa.table({"image_id": [image_id("folder", "a/ok1.png"), image_id("folder", "a/ok3.png")],
                       "width": [4, 5], "height": [6, 7], "mode": ["L", "RGB"], "bytes": [10, 11],
                       "content_hash": ["h1", "h3"], "readable": [True, False], "error": [None, "truncated"]},
                      schema=PROBED_SCHEMA)
    rows = _build_table("folder", Rows.from_entries(entries), probed, ()).to_pylist()
    assert [r["path"] for r in rows] == [e.path for e in entries]
    assert [r["image_id"] for r in rows] == [image_id("folder", e.path) for e in entries]
    assert [r["error"] for r in rows] == ["outside the dataset root: x", None, "no pixels", "truncated", "no pixels"]
    assert [r["readable"] for r in rows] == [False, True, False, False, False]
    assert [r["width"] for r in rows] == [None, 4, None, 5, None]
    assert [r["content_hash"] for r in rows] == [None, "h1", None, "h3", None]
    assert [r["label"] for r in rows] == [None, "anger", None, "anger", None]


def test_rows_are_put_in_path_order_and_a_path_listed_twice_is_refused():
    """Adapters may list their rows in any order (CSV rows); the table is in path order,
    which also makes a duplicate path sit beside itself."""
    from ferdata.datasets.base import Entry, Rows
    from ferdata.ingest import _in_path_order

    entries = [Entry("b.png", "2", "sad", extras={"v": 2}), Entry("a.png", "1", "happy", source_split="x",
                                                                  extras={"v": 1}), Entry("c.png", "3", None)]
    rows = _in_path_order(Rows.from_entries(entries, ("v",)), "folder")
    assert rows.path == ["a.png", "b.png", "c.png"] and rows.label == ["happy", "sad", None]
    assert rows.source_split == ["x", None, None] and rows.extras == {"v": [1, 2, None]}
    assert rows.subject_id is None and rows.error is None  # columns no entry sets stay empty
    same = Rows(["a", "b"], [None, None], [None, None])
    assert _in_path_order(same, "folder") is same  # already sorted: left as it is
    joined = rows.concat(Rows.from_entries([Entry("b.png", None, None, error="outside")]))
    assert joined.error == [None, None, None, "outside"] and joined.extras["v"] == [1, 2, None, None]
    with pytest.raises(FerdataError, match="b.png is listed twice"):
        _in_path_order(joined, "folder")
