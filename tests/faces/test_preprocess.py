"""The per-image pipeline on fake AffectNet-layout data (``given`` detector: no models,
so these run in a second): table contract, crops, fallbacks, flat frames, resuming,
configs side by side, and the process pool path."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor, create_executor
from ferdata.errors import FerdataError
from ferdata.faces import geometry
from ferdata.faces import preprocess as preprocess_module
from ferdata.faces.preprocess import make_config, preprocess
from ferdata.faces.table import JOURNAL_DIR, Journal, read_faces, rows_to_table
from ferdata.manifest import read_metadata, write_table
from ferdata.manifest.crops import crop_paths

from .conftest import ids_by_path
from .test_geometry import bright_centroids

CONTRACT = ("image_id", "config_hash", "detector", "n_faces", "face_found", "fallback", "box", "score",
            "eye_left", "eye_right", "landmarks", "rotation_deg", "crop_path", "decode_ms", "detect_ms",
            "align_ms", "write_ms", "total_ms")


def run(manifest, **kw):
    kw.setdefault("executor", InlineExecutor())
    kw.setdefault("detector", "given")
    return preprocess(manifest, **kw)


def journal_parts(manifest):
    """Journal parts left behind (temp files start with a dot)."""
    journal = manifest.dir / JOURNAL_DIR
    return [p for p in journal.iterdir() if not p.name.startswith(".")] if journal.is_dir() else []


def rows_by_path(fake, config_hash):
    by_id = {r["image_id"]: r for r in read_faces(fake.manifest, config_hash).to_pylist()}
    return {p: by_id[i] for p, i in ids_by_path(fake.manifest).items()}


def test_table_contract_and_crop_paths(fake_faces):
    m = fake_faces.manifest
    assert crop_paths(m) is None
    r = run(m, align="spatial", size=64)
    table = pq.read_table(m.dir / "faces.parquet")
    for col in CONTRACT:
        assert col in table.column_names
    assert table.num_rows == 11 and r.n_images == 11
    meta = read_metadata(m.dir / "faces.parquet")
    assert meta["latest_config"] == r.config_hash
    assert meta["configs"][r.config_hash]["align"] == "spatial"
    assert meta["configs"][r.config_hash]["detector"] == "given"

    paths = crop_paths(m)
    rows = rows_by_path(fake_faces, r.config_hash)
    assert set(paths) == {row["image_id"] for row in rows.values() if row["crop_path"]}
    assert len(paths) == 10  # everything but the unreadable file
    for image_id, path in paths.items():
        assert path == m.dir / "crops" / r.config_hash / f"{image_id}.png"
        with Image.open(path) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
    assert r.counts["face_found"] == 8 and r.counts["fallback_whole"] == 2 and r.counts["error"] == 1
    assert not journal_parts(m)


def test_spatial_crops_put_the_real_eyes_on_one_pixel(fake_faces):
    r = run(fake_faces.manifest, align="spatial", size=96, gray=True)
    rows = rows_by_path(fake_faces, r.config_hash)
    target = (96 / 2 - 0.5, 96 * 1.3 / 4.5 - 0.5)
    for path, (el, er) in fake_faces.eyes.items():
        row = rows[path]
        assert row["face_found"] and row["align"] == "spatial"
        assert row["eye_left"] == pytest.approx(list(el), abs=1e-3)
        matrix = np.vstack([np.reshape(row["transform"], (2, 3)), [0, 0, 1]])
        (lx, ly), (rx, ry) = geometry.apply(matrix, [el, er])
        assert ((lx + rx) / 2, (ly + ry) / 2) == pytest.approx(target, abs=1e-6)
        crop = np.asarray(Image.open(fake_faces.manifest.dir / row["crop_path"]))
        assert crop.shape == (96, 96)
        dots = bright_centroids(crop, 180)
        assert len(dots) == 2
        mid = ((dots[0][0] + dots[1][0]) / 2, (dots[0][1] + dots[1][1]) / 2)
        assert mid == pytest.approx(target, abs=1.0)  # measured on the output pixels
        assert abs(math.degrees(math.atan2(dots[1][1] - dots[0][1], dots[1][0] - dots[0][0]))) < 1.0


def test_rotate_levels_the_eye_line_and_records_the_angle(fake_faces):
    r = run(fake_faces.manifest, align="rotate", size=128)
    rows = rows_by_path(fake_faces, r.config_hash)
    for path, (el, er) in fake_faces.eyes.items():
        row = rows[path]
        assert row["rotation_deg"] == pytest.approx(geometry.eye_angle(el, er), abs=0.05)
        dots = bright_centroids(np.asarray(Image.open(fake_faces.manifest.dir / row["crop_path"]).convert("L")), 180)
        assert len(dots) == 2
        assert abs(math.degrees(math.atan2(dots[1][1] - dots[0][1], dots[1][0] - dots[0][0]))) < 1.0


def test_black_frame_no_box_and_unreadable(fake_faces):
    r = run(fake_faces.manifest, size=32)
    rows = rows_by_path(fake_faces, r.config_hash)
    black = rows[fake_faces.black]
    assert black["flat"] is True and black["face_found"] is False and black["n_faces"] == 0
    assert black["fallback"] == "whole" and black["align"] == "whole" and black["crop_path"]
    assert black["detect_ms"] is None  # a flat frame is not searched
    nobox = rows[fake_faces.no_box]
    assert nobox["flat"] is False and nobox["face_found"] is False and nobox["fallback"] == "whole"
    broken = rows[fake_faces.broken]
    assert broken["error"].startswith("unreadable:") and broken["crop_path"] is None

    skip = run(fake_faces.manifest, size=32, fallback="skip")
    rows = rows_by_path(fake_faces, skip.config_hash)
    assert rows[fake_faces.black]["fallback"] == "skip" and rows[fake_faces.black]["crop_path"] is None
    assert rows[fake_faces.no_box]["crop_path"] is None
    assert skip.counts["fallback_skip"] == 2
    assert len(crop_paths(fake_faces.manifest)) == 8


def test_rerun_is_idempotent_and_configs_live_side_by_side(fake_faces):
    m = fake_faces.manifest
    first = run(m, align="none", size=40)
    before = read_faces(m, first.config_hash)
    again = run(m, align="none", size=40)
    assert again.config_hash == first.config_hash
    assert again.n_processed == 0 and again.n_done_before == 11
    assert read_faces(m, first.config_hash).equals(before)

    second = run(m, align="spatial", size=40, clahe=True, clip_limit=3.0, tile_grid=4)
    assert second.config_hash != first.config_hash
    meta = read_metadata(m.dir / "faces.parquet")
    assert meta["latest_config"] == second.config_hash
    assert set(meta["configs"]) == {first.config_hash, second.config_hash}
    assert meta["configs"][second.config_hash]["clip_limit"] == 3.0
    assert meta["configs"][second.config_hash]["tile_grid"] == 4
    assert read_faces(m).num_rows == 22
    assert set(crop_paths(m, first.config_hash)) == set(crop_paths(m, second.config_hash))
    assert all(p.parent.name == second.config_hash for p in crop_paths(m).values())
    with pytest.raises(FerdataError, match="no preprocessing config"):
        crop_paths(m, "feedfacefeed")


def test_a_crashed_run_keeps_finished_chunks_and_resumes(fake_faces, monkeypatch):
    m = fake_faces.manifest
    real = preprocess_module.process_images
    calls = {"n": 0}

    def crash_on_third_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(preprocess_module, "process_images", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="worker died"):
        run(m, size=32, chunksize=3)
    done = read_faces(m)
    assert done.num_rows == 1 + 6  # the unreadable row, then two chunks of three
    assert pq.read_table(m.dir / "faces.parquet").num_rows == 7

    monkeypatch.setattr(preprocess_module, "process_images", real)
    resumed = run(m, size=32, chunksize=3)
    assert resumed.n_done_before == 7 and resumed.n_processed == 4
    table = read_faces(m)
    assert table.num_rows == 11
    assert len(set(table.column("image_id").to_pylist())) == 11


def finished_rows(fake, cfg, n: int) -> list[dict]:
    """Rows (and crops) for the first ``n`` faces, as a run that died before merging left them."""
    m = fake.manifest
    ids = ids_by_path(m)
    some = [(ids[p], p, None) for p in sorted(fake.eyes)[:n]]
    (m.dir / "crops" / cfg.hash).mkdir(parents=True)
    return preprocess_module.process_images(preprocess_module.create_detector("given"), cfg, cfg.hash, some, m.image_root, m.dir)


def test_a_killed_run_leaves_a_journal_the_next_run_merges(fake_faces):
    """SIGKILL skips every ``finally``: what is left is journal parts and maybe a temp file."""
    m = fake_faces.manifest
    cfg = make_config("given", size=32)
    Journal(m, cfg.hash, cfg.to_dict()).append(finished_rows(fake_faces, cfg, 3))
    (m.dir / "crops" / cfg.hash / ".half-written.png.123.tmp").write_bytes(b"\x89PNG")
    assert not (m.dir / "faces.parquet").exists()

    r = run(m, config=cfg)
    assert r.n_done_before == 3 and r.n_processed == 11 - 1 - 3  # minus the unreadable one
    assert read_faces(m).num_rows == 11
    assert not journal_parts(m)


def test_a_journal_part_in_the_earlier_parquet_format_is_merged(fake_faces):
    """Parts of a run killed under an older ferdata (Parquet, not Arrow) still count as done."""
    m = fake_faces.manifest
    cfg = make_config("given", size=32)
    write_table(m.dir / JOURNAL_DIR / f"{cfg.hash}-1-000001.parquet", rows_to_table(finished_rows(fake_faces, cfg, 2)),
                {"table": "faces-journal", "config_hash": cfg.hash, "config": cfg.to_dict()})
    r = run(m, config=cfg)
    assert r.n_done_before == 2 and read_faces(m).num_rows == 11
    assert not journal_parts(m)


def test_process_pool_matches_inline(fake_faces):
    m = fake_faces.manifest
    inline = run(m, align="spatial", size=48)
    a = read_faces(m, inline.config_hash).drop_columns(list(preprocess_module.STAGE_COLUMNS)).to_pylist()
    (m.dir / "faces.parquet").unlink()
    pooled = run(m, align="spatial", size=48, executor=create_executor("local", workers=2), chunksize=2)
    assert pooled.config_hash == inline.config_hash
    b = read_faces(m, pooled.config_hash).drop_columns(list(preprocess_module.STAGE_COLUMNS)).to_pylist()
    assert a == b


def test_preview_contact_sheet(fake_faces):
    r = run(fake_faces.manifest, align="spatial", size=48, preview=9)
    assert r.preview == fake_faces.manifest.dir / "previews" / f"{r.config_hash}.png"
    with Image.open(r.preview) as im:
        assert im.size == (3 * 128, 3 * 128)
        sheet = np.asarray(im.convert("RGB"))
    assert (sheet[:, :, 1] > 150).any() and (sheet[:, :, 1] > sheet[:, :, 0] + 100).any()  # green boxes drawn


@pytest.mark.parametrize("kw,match", [
    ({"align": "tilt"}, "^align 'tilt'"), ({"pick": "first"}, "^pick 'first'"), ({"fallback": "drop"}, "^fallback 'drop'"),
    ({"size": 4}, "^size 4"), ({"detector": "nope"}, "unknown detector 'nope'"),
    ({"detector": "haar", "detector_opts": {"colour": 1}}, "has no option colour"),
])
def test_bad_options_are_one_line_errors(fake_faces, kw, match):
    with pytest.raises(FerdataError, match=match):
        run(fake_faces.manifest, **kw)


def test_given_needs_the_dataset_columns(real_manifest):
    with pytest.raises(FerdataError, match="face_x"):
        run(real_manifest("jaffe"), detector="given")


def test_config_hash_is_stable_and_sensitive():
    a = make_config("mtcnn", align="spatial", size=224)
    assert a.hash == make_config("mtcnn", align="spatial", size=224).hash
    assert a.hash != make_config("mtcnn", align="spatial", size=225).hash
    assert a.hash != make_config("mtcnn", align="spatial", size=224, detector_opts={"min_face_size": 40}).hash
    assert make_config("mediapipe", align="rotate").detector_options["mesh"] is True
    assert make_config("mediapipe", align="none").detector_options["mesh"] is False
    # CLAHE parameters only matter when CLAHE is on
    assert make_config(clip_limit=9.0).hash == make_config().hash



def test_a_damaged_journal_part_is_named_in_one_line(fake_faces):
    m = fake_faces.manifest
    (m.dir / JOURNAL_DIR).mkdir(parents=True)
    part = m.dir / JOURNAL_DIR / "abc-1-000001.arrow"
    part.write_bytes(b"ARROW1\x00\x00 not really")
    with pytest.raises(FerdataError, match=r"abc-1-000001\.arrow is not a readable journal part.*delete it"):
        run(m, size=32)


def test_pad_is_resolved_per_detector_and_manifest():
    assert make_config("mtcnn").pad == "auto"
    tight = make_config("mtcnn", pre_cropped=True)
    assert tight.pad == "always" and tight.padding.does_something
    assert make_config("mtcnn", pre_cropped=False).pad == "retry"
    assert make_config("given", pre_cropped=True).pad == "never"  # boxes from the row: nothing to pad
    assert not make_config("given").padding.does_something
    assert make_config("none", align="rotate").pad == "always" and make_config("none").pad == "never"
    custom = make_config("haar", pad="always", pad_border=0.4, pad_mode="constant", upsample_to=200)
    assert (custom.pad_border, custom.pad_mode, custom.upsample_to) == (0.4, "constant", 200)
    assert preprocess_module.resolve_pad(make_config("mtcnn"), True) == tight
    assert len({make_config("mtcnn", pad=p).hash for p in ("always", "retry", "never")}) == 3
    assert make_config("mtcnn", pad="always").hash != make_config("mtcnn", pad="always", pad_border=0.3).hash
    with pytest.raises(FerdataError, match="pad 'sometimes'"):
        make_config(pad="sometimes")


def test_too_few_faces_warn_in_one_line_and_min_face_rate_fails(fake_faces):
    m = fake_faces.manifest
    r = run(m, size=32)  # 8 of the 10 readable images have a given box
    assert r.detection_rate == pytest.approx(0.8)
    assert r.warning is not None and "\n" not in r.warning
    assert "80.0% of 10 readable images" in r.warning and "--detector none" in r.warning
    assert run(m, size=32, min_face_rate=0.8).n_processed == 0  # exactly at the floor passes
    with pytest.raises(preprocess_module.FaceRateError, match=r"80\.0% of 10 readable images .* below min_face_rate 0\.9"):
        run(m, size=48, min_face_rate=0.9)
    assert len(read_faces(m, make_config("given", size=48).hash)) == 11  # the rows were kept
    assert preprocess_module.face_rate_warning({"detector": "given"}, 9, 10) is None


def test_a_faces_table_from_before_the_padded_column_is_merged(fake_faces):
    m = fake_faces.manifest
    r = run(m, size=32)
    path = m.dir / "faces.parquet"
    old = pq.read_table(path)
    write_table(path, old.drop_columns(["padded"]), read_metadata(path))
    assert "padded" not in pq.read_schema(path).names
    r2 = run(m, size=40)
    merged = read_faces(m)
    assert merged.num_rows == 22 and "padded" in merged.column_names
    assert read_faces(m, r.config_hash).column("padded").null_count == 11
    assert r2.counts["padded"] == 0
