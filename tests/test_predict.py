"""``ferdata predict`` with a tiny real run (JAFFE) on images, videos, folders and cameras."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from ferdata.errors import FerdataError
from ferdata.manifest import read_table, write_table
from ferdata.predict import predict
from tests.reports.tiny_run import shared_tiny_run

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def jaffe(real_manifest):
    return real_manifest("jaffe")


@pytest.fixture(scope="module")
def tiny_run(jaffe, tmp_path_factory):
    return shared_tiny_run(jaffe, tmp_path_factory)[1]


def _jaffe_files(jaffe, n):
    rows = jaffe.images(columns=["path"]).column("path").to_pylist()
    return [jaffe.resolve(p) for p in sorted(rows)[:n]]


def _probs(table, classes):
    return np.stack([table.column(f"prob_{c}").to_numpy() for c in classes], axis=1)


def test_one_jaffe_image_one_face_probabilities_sum_to_one(jaffe, tiny_run, tmp_path):
    image = _jaffe_files(jaffe, 1)[0]
    out = tmp_path / "annotated.png"
    result = predict(tiny_run, image, out=[out, tmp_path / "faces.parquet"])
    run_config = json.loads((tiny_run / "config.json").read_text())
    assert result.config_source == f"{run_config['manifest']['name']} crops {run_config['crops']}"  # the run's own
    assert result.frames == 1 and result.faces == 1 and result.table.num_rows == 1
    row = result.table.to_pylist()[0]
    assert row["face_found"] and 0 <= row["x0"] < row["x1"] <= 256 and 0 <= row["y0"] < row["y1"] <= 256
    assert _probs(result.table, result.classes).sum() == pytest.approx(1.0)
    assert row["label"] in result.classes and row["confidence"] == pytest.approx(_probs(result.table, result.classes).max())
    assert result.detect_ms > 0 and result.preprocess_ms > 0 and result.classify_ms > 0
    from ferdata.imageio import read_image

    assert read_image(out).shape == (256, 256, 3)
    saved = read_table(tmp_path / "faces.parquet")
    assert saved.num_rows == 1 and saved.column_names == result.table.column_names


def test_video_of_jaffe_frames_gives_one_row_per_frame(jaffe, tiny_run, tmp_path):
    import cv2

    from ferdata.imageio import read_image

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (256, 256))
    assert writer.isOpened()
    files = _jaffe_files(jaffe, 5)
    for f in files:
        writer.write(cv2.cvtColor(read_image(f), cv2.COLOR_RGB2BGR))
    writer.release()
    annotated = tmp_path / "annotated.mp4"
    result = predict(tiny_run, video, out=[tmp_path / "rows.csv", annotated])
    assert result.frames == 5 and result.table.num_rows == 5
    assert result.table.column("frame").to_pylist() == [0, 1, 2, 3, 4]
    assert all(result.table.column("face_found").to_pylist())
    assert np.allclose(_probs(result.table, result.classes).sum(axis=1), 1.0)
    cap = cv2.VideoCapture(str(annotated))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    import pyarrow.csv as pacsv

    assert pacsv.read_csv(tmp_path / "rows.csv").num_rows == 5


def test_folder_and_the_runs_own_preprocessing_config(jaffe, tiny_run, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for f in _jaffe_files(jaffe, 3):
        shutil.copy(f, folder / f.name)
    (folder / "notes.txt").write_text("not an image")
    # a run trained on 64-pixel grey Haar crops of a manifest: predict must crop the same way
    manifest_copy = tmp_path / "manifests" / "jaffe"
    shutil.copytree(jaffe.dir, manifest_copy)
    config = {"detector": "haar", "detector_options": {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 30,
                                                       "eyes": True},
              "pick": "largest", "clahe": True, "clip_limit": 2.0, "tile_grid": 8, "align": "rotate", "size": 64,
              "gray": True, "fallback": "skip", "detect_max_side": 1280, "flat_std": 2.0, "version": 1}
    write_table(manifest_copy / "faces.parquet", pa.table({"image_id": pa.array([], pa.string())}),
                {"latest_config": "abc123", "configs": {"abc123": config}})
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "fold-0", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(crops="abc123", source="crops", manifest={"name": "jaffe", "path": str(manifest_copy)})
    (run / "config.json").write_text(json.dumps(cfg))

    from ferdata.predict import Predictor

    p = Predictor(run)
    assert p.face_config["size"] == 64 and p.faces.detector.name == "haar" and "abc123" in p.config_source
    from ferdata.imageio import read_image

    image = read_image(_jaffe_files(jaffe, 1)[0])
    face = p.faces.detect(image)[0]
    assert p.faces.crop(image, face, 48).shape == (64, 64)
    blank = np.zeros((120, 160, 3), np.uint8)
    skipped = p.predict_frame(blank)
    assert not skipped.found and skipped.probs.shape == (0, len(p.classes))

    assert Predictor(run, detector="mediapipe").faces.detector.name == "mediapipe"
    config["detector"] = "given"
    write_table(manifest_copy / "faces.parquet", pa.table({"image_id": pa.array([], pa.string())}),
                {"latest_config": "abc123", "configs": {"abc123": config}})
    with pytest.raises(FerdataError, match="with detector haar"):
        Predictor(run)

    result = predict(run, folder, out=[tmp_path / "annotated"], detector="haar")
    assert result.frames == 3 and result.table.num_rows == 3
    assert len(list((tmp_path / "annotated").glob("*.annotated.png"))) == 3


def test_runs_on_whole_images_get_the_default_detector():
    from pathlib import Path

    from ferdata.inference import RunModel
    from ferdata.predict import DEFAULT_FACE_CONFIG, face_config

    config, source = face_config(RunModel(Path("."), {"source": "images", "crops": None}, None, None, ["happy"]))
    assert config == DEFAULT_FACE_CONFIG and "whole images" in source


def test_user_errors_are_one_line(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(tiny_run), "--camera", "57"])
    assert res.exit_code == 2 and "no camera 57" in res.output and "Traceback" not in res.output
    bad = tmp_path / "x.docx"
    bad.write_text("x")
    res = runner.invoke(app, ["predict", str(tiny_run), str(bad)])
    assert res.exit_code == 2 and "not an image" in res.output
    with pytest.raises(FerdataError, match="either an INPUT"):
        predict(tiny_run)
    with pytest.raises(FerdataError, match="needs a video"):
        predict(tiny_run, tmp_path, out=[tmp_path / "a.mp4"])


def test_cli_predict_prints_faces_and_timings(jaffe, tiny_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    import torch

    monkeypatch.chdir(tmp_path)
    image = _jaffe_files(jaffe, 1)[0]
    threads = torch.get_num_threads()
    res = CliRunner().invoke(app, ["predict", str(tiny_run), str(image), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == threads  # put back for whoever runs next
    assert "ms per frame: detection" in res.output and "classification" in res.output
    # the annotated copy goes under the run (the --out default), never into the current directory
    assert (tiny_run / "predict" / f"{image.stem}.annotated.png").exists()
    assert not list(tmp_path.iterdir())


def test_cli_predict_on_a_folder_lists_bad_files_and_relative_paths(jaffe, tiny_run, tmp_path):

    from typer.testing import CliRunner

    from ferdata.cli.app import app

    folder = tmp_path / "photos"
    for sub, f in zip(("happy", "sad"), _jaffe_files(jaffe, 2)):
        (folder / sub).mkdir(parents=True)
        shutil.copy(f, folder / sub / "ok0.tiff")  # the same base name twice
    (folder / "sad" / "bad.jpg").write_text("hello, I am a text file")
    res = CliRunner().invoke(app, ["predict", str(tiny_run), str(folder), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "happy/ok0.tiff" in res.output and "sad/ok0.tiff" in res.output
    assert "sad/bad.jpg: not an image: a text file" in res.output and "BytesIO" not in res.output
    out = tiny_run / "predict" / "photos"
    assert (out / "happy" / "ok0.annotated.png").exists() and (out / "sad" / "ok0.annotated.png").exists()

    res = CliRunner().invoke(app, ["predict", str(tiny_run), str(folder), "--threads", "1", "--json",
                                   "--out", str(tmp_path / "faces.csv")])
    data = json.loads(res.stdout)
    assert data["frames"] == 2 and data["skipped_cannot_be_decoded"] == 1
    assert data["skipped_files"][0]["path"] == "sad/bad.jpg"
    assert sorted(r["source"] for r in data["tables"]["faces"]) == ["happy/ok0.tiff", "sad/ok0.tiff"]

    res = CliRunner().invoke(app, ["predict", str(tiny_run), str(folder / "sad" / "bad.jpg")])
    assert res.exit_code == 2
    assert "bad.jpg: cannot decode the image: not an image: a text file (23 bytes) starting 'hello, I am" in res.output
