"""``ferdata features`` on the real SFEW sample and JAFFE."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.features.extract import read_features

runner = CliRunner()


@pytest.mark.real_data
def test_sfew_features_beside_the_xlsx_columns(real_manifest):
    manifest = real_manifest("sfew")
    before = manifest.images()
    assert {"lpq_pc1", "phog_pc5"} <= set(before.column_names)
    res = runner.invoke(app, ["features", str(manifest.dir), "--fit-on", "all", "-j", "1", "--no-crops"])
    assert res.exit_code == 0, res.output
    table = pq.read_table(manifest.table_path("features.parquet"))
    assert table.num_rows == before.num_rows == 35
    assert set(table.column("height").to_pylist()) == {576} and set(table.column("width").to_pylist()) == {720}
    for column, width in (("lpq", 256), ("phog", 680), ("lpq_pca", 5), ("phog_pca", 5), ("lpqphog", 10)):
        _, matrix = read_features(manifest, column)
        assert matrix.shape == (35, width) and np.isfinite(matrix).all()
    _, fused = read_features(manifest, "lpqphog")
    np.testing.assert_allclose(fused.std(axis=0), 1.0, atol=1e-9)
    assert manifest.images().equals(before)  # the ANU xlsx columns are untouched


@pytest.mark.real_data
def test_jaffe_features_lpq_window_and_angle(real_manifest):
    manifest = real_manifest("jaffe")
    res = runner.invoke(app, ["features", str(manifest.dir), "--lpq-window", "5", "--no-lpq-decorr",
                              "--phog-angle", "180", "--phog-levels", "2", "--no-crops", "-j", "2"])
    assert res.exit_code == 0, res.output
    ids, lpq = read_features(manifest, "lpq")
    _, phog = read_features(manifest, "phog")
    assert len(ids) == manifest.images().num_rows == 213
    assert lpq.shape == (213, 256) and phog.shape == (213, 8 * 21)
    np.testing.assert_allclose(lpq.sum(axis=1), 1.0, atol=1e-12)
    assert len({row.tobytes() for row in lpq}) == 213  # every face has its own histogram
