"""The dataset report on fake and real manifests, with faces and splits tables when present."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor
from ferdata.ingest import ingest
from ferdata.manifest import write_table
from ferdata.reports import dataset_report, embedded_images, external_references
from ferdata.reports.dataset import face_stats, split_leakage
from tests.datasets.fakes import write_fake
from tests.reports.chromium import assert_not_blank, screenshot


@pytest.fixture
def fake_manifest(tmp_path):
    exp = write_fake("jaffe", tmp_path / "src")
    return ingest("jaffe", exp.source, manifests=tmp_path / "manifests", executor=InlineExecutor()).manifest


def _decode_all(text: str) -> int:
    images = embedded_images(text)
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            im.load()
    return len(images)


def test_dataset_report_without_faces_or_splits(fake_manifest):
    result = dataset_report(fake_manifest, per_class=3)
    assert result.html == fake_manifest.dir / "report" / "report.html"
    text = result.html.read_text()
    assert external_references(text) == []
    assert _decode_all(text) == len(result.pngs)
    assert "No faces.parquet yet" in text and "No splits yet" in text and "whole images (no crops yet)" in text
    labels = set(fake_manifest.images(columns=["label"]).column("label").to_pylist())
    assert {p.name for p in result.pngs} >= {f"samples_{lab}.png" for lab in labels}


def _faces_and_split(manifest):
    rows = manifest.images(columns=["image_id", "subject_id"]).to_pylist()
    crops = manifest.dir / "crops" / "cfg1"
    crops.mkdir(parents=True)
    found = [i % 4 != 0 for i in range(len(rows))]
    paths = []
    for i, r in enumerate(rows):
        Image.new("L", (48, 48), 40 + 5 * i).save(crops / f"{r['image_id']}.png")
        paths.append(f"crops/cfg1/{r['image_id']}.png")
    from ferdata.manifest.schema import FACES_SCHEMA

    columns = {
        "image_id": [r["image_id"] for r in rows], "config_hash": ["cfg1"] * len(rows),
        "detector": ["haar"] * len(rows), "n_faces": [1 if f else 0 for f in found], "face_found": found,
        "fallback": [None if f else "whole" for f in found], "crop_path": paths, "detect_ms": [3.0] * len(rows)}
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * len(rows)), f.type) for f in FACES_SCHEMA})
    write_table(manifest.dir / "faces.parquet", table, {"latest_config": "cfg1"})
    subjects = sorted({r["subject_id"] for r in rows})
    # fold 0 is subject-disjoint; fold 1 puts the first subject in both roles
    fold0 = [(r["image_id"], 0, "test" if r["subject_id"] == subjects[0] else "train") for r in rows]
    fold1 = [(r["image_id"], 1, "test" if i % 2 else "train") for i, r in enumerate(rows)]
    ids, folds, roles = zip(*(fold0 + fold1))
    write_table(manifest.dir / "splits" / "demo.parquet",
                pa.table({"image_id": list(ids), "fold": pa.array(folds, pa.int32()), "role": list(roles)}),
                {"protocol": "kfold"})
    return found


def test_face_stats_leakage_and_crops(fake_manifest, tmp_path):
    found = _faces_and_split(fake_manifest)
    stats = face_stats(fake_manifest)
    assert stats["detection_rate"] == pytest.approx(sum(found) / len(found))
    assert stats["fallbacks"] == {"whole": len(found) - sum(found)}
    leak = {r["fold"]: r for r in split_leakage(fake_manifest)}
    assert leak[0]["subjects_in_two_roles"] == 0 and leak[1]["subjects_in_two_roles"] > 0
    assert leak[0]["train"] + leak[0]["test"] == len(found)
    result = dataset_report(fake_manifest, tmp_path / "out", per_class=2)
    text = result.html.read_text()
    assert "face crops" in text and "detection_rate_by_label.png" in {p.name for p in result.pngs}
    assert dict(result.summary)["folds with subject leakage"] == 1


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["jaffe", "sfew"])
def test_real_dataset_report_renders(real_manifest, name, tmp_path):
    manifest = real_manifest(name)
    result = dataset_report(manifest, tmp_path / name, per_class=4)
    text = result.html.read_text()
    assert _decode_all(text) == len(result.pngs) >= 5
    assert external_references(text) == []
    assert_not_blank(screenshot(result.html, tmp_path / f"{name}.png"))


def test_cli_report_on_a_manifest(fake_manifest, tmp_path):
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    runner = CliRunner()
    out = tmp_path / "cli-report"
    res = runner.invoke(app, ["report", fake_manifest.name, "--manifests", str(fake_manifest.dir.parent),
                              "--out", str(out), "--per-class", "2"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists() and "figures" in res.output
    res = runner.invoke(app, ["report", "nope", "--manifests", str(fake_manifest.dir.parent)])
    assert res.exit_code == 2 and "no manifest 'nope'" in res.output and "Traceback" not in res.output
