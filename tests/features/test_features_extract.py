"""``compute_features`` and ``ferdata features`` on small fake manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.engines import InlineExecutor
from ferdata.features import compute_features, create_descriptor
from ferdata.features.extract import read_features
from ferdata.features.reduction import Reduction
from ferdata.ingest import ingest
from ferdata.manifest import Manifest, read_metadata, write_table
from tests.features.fakes import face_like

runner = CliRunner()


@pytest.fixture
def manifest(fake_faces: Path, manifests_dir: Path) -> Manifest:
    return ingest("folder", fake_faces, name="fake", manifests=manifests_dir, executor=InlineExecutor()).manifest


def write_split(manifest: Manifest, name: str = "spi") -> dict[str, str]:
    ids = manifest.images(columns=["image_id"]).column("image_id").to_pylist()
    roles = {i: ("train" if k % 3 else "test") for k, i in enumerate(sorted(ids))}
    table = pa.table({"image_id": pa.array(list(roles), pa.string()),
                      "fold": pa.array([0] * len(roles), pa.int32()),
                      "role": pa.array(list(roles.values()), pa.string())})
    write_table(manifest.dir / "splits" / f"{name}.parquet", table, {"protocol": "test"})
    return roles


def test_table_columns_metadata_and_fit_on_train(manifest):
    roles = write_split(manifest)
    result = compute_features(manifest, reduce="pca:3", fit_on="spi", executor=InlineExecutor())
    assert result.n_described == 12 and result.skipped == {"unreadable": 1}
    table = pq.read_table(result.path)
    assert table.num_rows == 12
    types = {f.name: f.type for f in table.schema}
    assert types["lpq"] == pa.list_(pa.float64(), 256)
    assert types["phog"] == pa.list_(pa.float64(), 680)
    assert types["lpq_pca"] == pa.list_(pa.float64(), 3) and types["lpqphog"] == pa.list_(pa.float64(), 6)

    meta = read_metadata(result.path)
    assert meta["descriptors"]["lpq"]["params"] == {"window": 7, "decorr": True, "matlab_compatible": False}
    fitted = meta["reduction"]["fitted_on"]
    n_train = sum(1 for i, r in roles.items() if r == "train" and i in set(table.column("image_id").to_pylist()))
    assert fitted["spec"] == "spi:train:0" and fitted["n_images"] == n_train

    # The stored transform reproduces the stored reduced columns from the stored descriptors.
    red = Reduction.from_metadata(meta["reduction"])
    ids, lpq = read_features(manifest, "lpq")
    _, phog = read_features(manifest, "phog")
    _, fused = read_features(manifest, "lpqphog")
    np.testing.assert_allclose(red.transform({"lpq": lpq, "phog": phog})["lpqphog"], fused, atol=1e-12)
    # Standardised on the training rows only: zero mean there, not on the test rows.
    train = np.array([roles[i] == "train" for i in ids])
    np.testing.assert_allclose(fused[train].mean(axis=0), 0, atol=1e-9)
    # images.parquet is untouched.
    assert "lpq" not in manifest.images().column_names


def test_descriptors_in_table_equal_library_output(manifest):
    result = compute_features(manifest, [create_descriptor("lpq", window=3, decorr=False)],
                              executor=InlineExecutor())
    ids, lpq = read_features(manifest, "lpq")
    assert result.reduction is None and pq.read_schema(result.path).names == ["image_id", "height", "width", "lpq"]
    paths = dict(zip(*(manifest.images(columns=["image_id", "path"]).column(c).to_pylist() for c in ("image_id", "path"))))
    img = np.asarray(Image.open(manifest.resolve(paths[ids[0]])).convert("L"))
    np.testing.assert_array_equal(lpq[0], create_descriptor("lpq", window=3, decorr=False).compute(img[None])[0])


def test_roi_larger_than_the_faces_is_counted_not_fatal(manifest):
    with pytest.raises(Exception, match="no image could be described"):
        compute_features(manifest, [create_descriptor("phog", roi=(0, 100, 0, 100))], executor=InlineExecutor())


def test_process_pool_gives_the_same_table(manifest):
    compute_features(manifest, executor=InlineExecutor())
    inline = pq.read_table(manifest.table_path("features.parquet"))
    compute_features(manifest, workers=2)
    pooled = pq.read_table(manifest.table_path("features.parquet"))
    assert inline.equals(pooled)


def test_uses_face_crops_when_present(manifest, tmp_path):
    ids = manifest.images(columns=["image_id"]).column("image_id").to_pylist()
    crop_dir = manifest.dir / "crops" / "abc"
    crop_dir.mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for k, image_id in enumerate(ids):
        path = None
        if k < 5:
            Image.fromarray(face_like(rng, 40, 40)).save(crop_dir / f"{image_id}.png")
            path = f"crops/abc/{image_id}.png"
        rows.append({"image_id": image_id, "config_hash": "abc", "crop_path": path})
    write_table(manifest.table_path("faces.parquet"), pa.Table.from_pylist(rows), {"latest_config": "abc"})
    result = compute_features(manifest, executor=InlineExecutor())
    assert result.input == "crops:abc" and result.n_described == 5
    assert result.skipped == {"no face crop": len(ids) - 5}
    assert set(pq.read_table(result.path).column("height").to_pylist()) == {40}
    result = compute_features(manifest, use_crops=False, executor=InlineExecutor())
    assert result.input == "images" and result.n_described == 12


def test_reduce_from_applies_another_tables_transform(fake_faces, manifests_dir, manifest):
    compute_features(manifest, fit_on="all", executor=InlineExecutor())
    other = ingest("folder", fake_faces, name="other", manifests=manifests_dir, executor=InlineExecutor()).manifest
    result = compute_features(other, reduce_from="fake", manifests=manifests_dir, executor=InlineExecutor())
    assert result.reduction.fitted_on["spec"] == "all"
    _, a = read_features(manifest, "lpqphog")
    _, b = read_features(other, "lpqphog")
    np.testing.assert_array_equal(a, b)  # same images, same transform


def test_cli_features_prints_summary(manifest, manifests_dir):
    write_split(manifest, "spi-2")
    res = runner.invoke(app, ["features", "fake", "--fit-on", "spi-2:train", "--reduce", "pca:2", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert "features → fake" in res.output and "split spi-2, role train, fold 0" in res.output and "lpqphog" in res.output
    res = runner.invoke(app, ["features", "fake", "--descriptor", "phog", "--phog-bins", "4", "--phog-angle",
                              "180", "--phog-levels", "2", "--no-crops", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert pq.read_schema(manifest.table_path("features.parquet")).field("phog").type.list_size == 4 * 21


@pytest.mark.parametrize(("args", "message"), [
    (["--reduce", "pca:5"], "needs --fit-on"),
    (["--fit-on", "nosuch:train"], "no split 'nosuch'"),
    (["--fit-on", "spi:val"], "no 'val' images"),
    (["--descriptor", "sift"], "unknown descriptor 'sift'"),
    (["--phog-roi", "1,2,3"], "--phog-roi"),
    (["--reduce", "pca:50", "--fit-on", "all"], "pca:50 needs at least 50"),
    (["--reduce-from", "nowhere"], "--reduce-from nowhere"),
])
def test_cli_user_errors_are_one_line(manifest, args, message):
    write_split(manifest)
    res = runner.invoke(app, ["features", "fake", "-j", "1", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_cli_list():
    res = runner.invoke(app, ["features", "--list"])
    assert res.exit_code == 0 and "lpq" in res.output and "canny_skimage" in res.output


def test_info_shows_the_features_section(manifest):
    import json

    def sections():
        res = runner.invoke(app, ["info", "fake", "--json"])
        assert res.exit_code == 0, res.output
        return {s["title"]: dict(map(tuple, s["rows"])) for s in json.loads(res.output)["sections"]}

    write_split(manifest)
    assert "features" not in sections()
    compute_features(manifest, reduce="pca:2", fit_on="spi:train", executor=InlineExecutor())
    features = sections()["features"]
    assert features["reduction pca:2"].startswith("split spi, role train, fold 0")
    assert "window=7" in features["lpq (256 values)"] and features["described"] == 12
