"""``ferdata split`` and ``ferdata info --split`` through the Typer app."""

from __future__ import annotations

import pyarrow.parquet as pq
from typer.testing import CliRunner

from ferdata.cli.app import app
from tests.splits.fakes import people, write_manifest

runner = CliRunner()


def test_split_writes_and_prints_a_summary(tmp_path):
    write_manifest(tmp_path / "faces", people(n_subjects=6))
    result = runner.invoke(app, ["split", "faces", "--protocol", "spi", "--folds", "3", "--manifests", str(tmp_path),
                                 "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "split faces → spi-3" in result.output and "leakage audit per fold" in result.output
    assert pq.read_table(tmp_path / "faces" / "splits" / "spi-3.parquet").num_rows == 3 * 36


def test_info_shows_the_split(tmp_path):
    write_manifest(tmp_path / "faces", people(n_subjects=3))
    assert runner.invoke(app, ["split", "faces", "-p", "loso", "--manifests", str(tmp_path), "-j", "1"]).exit_code == 0
    result = runner.invoke(app, ["info", "faces", "--split", "loso", "--manifests", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "class counts per fold and role" in result.output and "leakage audit" in result.output


def test_list_shows_every_protocol():
    result = runner.invoke(app, ["split", "--list"])
    assert result.exit_code == 0
    for name in ("spi", "ppi", "sps", "loso", "kfold", "official", "all-train", "all-test"):
        assert name in result.output


def test_user_errors_are_one_line_and_exit_2(tmp_path):
    write_manifest(tmp_path / "faces", people(n_subjects=3))
    for args in (["split", "faces", "-p", "nope"], ["split", "faces", "-p", "spi", "--folds", "9"],
                 ["split", "faces", "-p", "spi", "--classes", "joy"], ["split", "missing", "-p", "spi"],
                 ["split", "faces"]):
        result = runner.invoke(app, [*args, "--manifests", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output


def test_json_output_is_the_metadata(tmp_path):
    import json

    write_manifest(tmp_path / "faces", people(n_subjects=4))
    result = runner.invoke(app, ["split", "faces", "-p", "kfold", "-k", "2", "--json", "--manifests", str(tmp_path), "-j", "1"])
    assert result.exit_code == 0
    meta = json.loads(result.output)
    assert meta["protocol"] == "kfold" and meta["n_folds"] == 2 and meta["path"].endswith("kfold-2.parquet")
