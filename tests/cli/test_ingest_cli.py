"""The ingest/info/pipeline commands as a user runs them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.datasets import list_datasets
from tests.datasets.fakes import write_fake

runner = CliRunner()


def test_ingest_list_shows_every_adapter():
    res = runner.invoke(app, ["ingest", "--list"])
    assert res.exit_code == 0
    for name in list_datasets():
        assert name in res.output


def test_ingest_then_info_json(tmp_path, manifests_dir):
    exp = write_fake("jaffe", tmp_path / "src")
    res = runner.invoke(app, ["ingest", "jaffe", str(exp.source), "--name", "jf", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert "images" in res.output and "jf" in res.output
    info = runner.invoke(app, ["info", "jf", "--json"])
    assert info.exit_code == 0
    data = json.loads(info.output)
    assert data["n_images"] == 5 and data["subjects"]["n_subjects"] == 3 and data["problems"] == []
    assert data["labels"]["anger"] == {"(none)": 1}
    table = runner.invoke(app, ["info", "jf"])
    assert table.exit_code == 0 and "images per label" in table.output


def test_info_reports_duplicates_and_conflicts(tmp_path, manifests_dir):
    exp = write_fake("folder", tmp_path / "src")
    (exp.source / "sad").mkdir()
    (exp.source / "sad" / "AB.1.png").write_bytes((exp.source / "Happy" / "AB.1.png").read_bytes())
    assert runner.invoke(app, ["ingest", "folder", str(exp.source)]).exit_code == 0
    data = json.loads(runner.invoke(app, ["info", "folder", "--json"]).output)
    assert data["duplicates"]["groups"] == 1 and data["n_conflicts"] == 1
    assert data["conflicts"][0]["labels"] == ["happy", "sad"]


def test_user_errors_are_one_line_without_traceback(tmp_path, manifests_dir):
    exp = write_fake("folder", tmp_path / "src")
    (exp.source / "Smirk").mkdir()
    (exp.source / "Smirk" / "x.png").write_bytes((exp.source / "Happy" / "AB.1.png").read_bytes())
    cases = [
        (["ingest", "folder", str(exp.source)], "--label-map"),
        (["ingest", "nosuch", str(exp.source)], "unknown dataset 'nosuch'"),
        (["ingest", "jaffe", str(tmp_path / "missing")], "does not exist"),
        (["info", "nothing"], "no manifest 'nothing'"),
        (["ingest", "jaffe"], "give a dataset and a source"),
    ]
    for args, needle in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output, (args, res.output)
        assert "Traceback" not in res.output
        assert len([ln for ln in res.output.splitlines() if ln.strip()]) <= 2, res.output


def test_pipeline_runs_every_step(tmp_path, manifests_dir):
    exp = write_fake("ckplus", tmp_path / "CK+48")
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["pipeline", str(exp.source), "--runs", str(runs), "--epochs", "2", "-j", "1"])
    assert res.exit_code == 0, res.output
    m = manifests_dir / "CK+48"  # named after the folder, not the adapter
    assert (m / "images.parquet").exists() and (m / "splits" / "spi-3.parquet").exists()
    assert (m / "faces.parquet").exists() and (m / "features.parquet").exists()
    (run,) = runs.iterdir()
    assert (run / "metrics.json").exists() and (run / "predictions.parquet").exists()
    text = " ".join(res.output.split())
    assert "spi-3 (3 folds, grouped by subject)" in text and "test accuracy (fold 0)" in text
