"""Reference fold lists: shipped files, export → apply round trips, matching by path, content
hash and file name, unmatched rows reported; on the real data, byte-identical rebuilds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.ingest import ingest
from ferdata.splits import load_split, make_split
from ferdata.splits.reference import (
    REFERENCES_DIR,
    apply_reference,
    export_reference,
    list_references,
    load_reference,
    reference_text,
)

SHIPPED = ("ckplus48-spi-10", "ckplus-last-spi-10", "jaffe-loso", "sfew-anu-movie-5")


def _faces(root: Path, prefix: str = "", seed: int = 0) -> Path:
    """6 subjects × 3 labels × 2 pictures of random content, subject in the file name."""
    rng = np.random.default_rng(seed)
    for s in range(6):
        for label in ("anger", "happy", "sad"):
            for k in range(2):
                path = root / label / f"{prefix}S{s:02d}_{label}_{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(path)
    return root


def _ingest(source: Path, manifests: Path, name: str):
    return ingest("folder", source, name=name, manifests=manifests, executor=InlineExecutor(),
                  subject_pattern=r"^(?:x_)?(?P<subject>S\d+)_").manifest


def _roles_by_content(m, split: str) -> dict[str, tuple]:
    images = m.images(columns=["image_id", "content_hash"]).to_pandas().set_index("image_id")["content_hash"]
    table = load_split(m, split).to_pandas()
    out: dict[str, list] = {}
    for image_id, fold, role in zip(table["image_id"], table["fold"], table["role"]):
        out.setdefault(images[image_id], []).append((int(fold), role))
    return {k: tuple(sorted(v)) for k, v in out.items()}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_reference_loads_and_is_small(name: str) -> None:
    ref = load_reference(name)
    assert name in list_references()
    assert ref.path.stat().st_size < 200_000
    assert ref.n_folds == len(ref.rows["roles"].iloc[0])
    assert len(ref.rows) == ref.header["n_images"]
    # every fold tests somebody, and nobody is tested twice
    tests = ref.rows["roles"].map(lambda r: r.count("T"))
    assert (tests == 1).all()
    for k in range(ref.n_folds):
        assert (ref.rows["roles"].str[k] == "T").any()


def test_export_apply_round_trip_and_renamed_copy(tmp_path: Path) -> None:
    m = _ingest(_faces(tmp_path / "data"), tmp_path / "m", "faces")
    made = make_split(m, "spi", folds=3, executor=InlineExecutor())
    ref_file = export_reference(m, made.name, tmp_path / "faces-spi-3.csv")
    assert ref_file.read_bytes() == reference_text(m, made.name).encode()

    # the same copy: same rows, and the export of the rebuilt split is the same file
    again = apply_reference(m, ref_file, name="rebuilt", executor=InlineExecutor())
    assert again.content_hash == made.content_hash
    assert again.metadata["reference"]["matched_by"] == {"path": 36}
    assert reference_text(m, "rebuilt") == ref_file.read_text()

    # a renamed copy (every file renamed): matched by content hash, the same roles per picture
    renamed = tmp_path / "renamed"
    for p in (tmp_path / "data").rglob("*.png"):
        dst = renamed / p.parent.name / f"x_{p.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
    m2 = _ingest(renamed, tmp_path / "m", "renamed")
    result = apply_reference(m2, ref_file, executor=InlineExecutor())
    assert result.metadata["reference"]["matched_by"] == {"content hash": 36}
    assert result.metadata["reference"]["unmatched"] == 0
    assert _roles_by_content(m2, result.name) == _roles_by_content(m, made.name)


def test_missing_images_are_reported_and_file_names_match_other_layouts(tmp_path: Path) -> None:
    m = _ingest(_faces(tmp_path / "data"), tmp_path / "m", "faces")
    made = make_split(m, "spi", folds=3, executor=InlineExecutor())
    ref_file = export_reference(m, made.name, tmp_path / "ref.csv")

    # another layout of the same pictures (other content, e.g. re-encoded, other folders):
    # file names pair them; two pictures are missing and reported
    other = _faces(tmp_path / "other", seed=1)
    flat = tmp_path / "flat"
    for p in sorted(other.rglob("*.png")):
        (flat / p.parent.name.upper()).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, flat / p.parent.name.upper() / p.name)
    gone = sorted(flat.rglob("*.png"))[:2]
    for p in gone:
        p.unlink()
    m3 = ingest("folder", flat, name="flat", manifests=tmp_path / "m", executor=InlineExecutor(),
                subject_pattern=r"^(?P<subject>S\d+)_", label_map="ANGER=anger,HAPPY=happy,SAD=sad").manifest
    result = apply_reference(m3, ref_file, executor=InlineExecutor())
    info = result.metadata["reference"]
    assert info["matched_by"] == {"file name": 34}
    assert info["unmatched"] == 2
    assert {Path(n).name for n in info["unmatched_sample"]} == {p.name for p in gone}
    assert any("2 of the 36 images" in w for w in result.warnings)


def test_reference_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,roles\na.png,T\n")
    with pytest.raises(FerdataError, match="not a ferdata reference"):
        load_reference(bad)
    with pytest.raises(FerdataError, match="no reference fold list"):
        load_reference("no-such-reference")
    m = _ingest(_faces(tmp_path / "data"), tmp_path / "m", "faces")
    with pytest.raises(FerdataError, match="none of the 213 images"):
        apply_reference(m, "jaffe-loso", executor=InlineExecutor())


def test_cli_reference_flags(tmp_path: Path) -> None:
    from ferdata.cli.app import app

    m = _ingest(_faces(tmp_path / "data"), tmp_path / "m", "faces")
    make_split(m, "spi", folds=3, name="spi-3", executor=InlineExecutor())
    export_reference(m, "spi-3", tmp_path / "ref.csv")
    runner = CliRunner()
    res = runner.invoke(app, ["split", "faces", "--reference", str(tmp_path / "ref.csv"), "--name", "again",
                              "--manifests", str(tmp_path / "m"), "-j", "1",
                              "--export-reference", str(tmp_path / "again.csv")])
    assert res.exit_code == 0, res.output
    assert "same rows as the reference's split" in res.output
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    res = runner.invoke(app, ["split", "faces", "--reference", str(tmp_path / "ref.csv"), "--folds", "4",
                              "--manifests", str(tmp_path / "m")])
    assert res.exit_code != 0 and "--folds cannot change a reference" in res.output
    res = runner.invoke(app, ["split", "--list"])
    assert res.exit_code == 0 and all(name in res.output for name in SHIPPED)


# ---- the real datasets ----------------------------------------------------------------------------


@pytest.mark.parametrize(("reference", "folder", "options"), [
    ("ckplus48-spi-10", "ckplus48", {}),
    ("ckplus-last-spi-10", "ckplus48", {"frames": "last"}),
    ("jaffe-loso", "jaffe", {}),
])
def test_real_reference_rebuilds_byte_identical(real_data: Path, tmp_path: Path, reference: str, folder: str,
                                                options: dict) -> None:
    adapter = "jaffe" if folder == "jaffe" else "ckplus"
    m = ingest(adapter, real_data / folder, name="real", manifests=tmp_path, executor=InlineExecutor(), **options).manifest
    result = apply_reference(m, reference, executor=InlineExecutor())
    assert result.metadata["reference"]["unmatched"] == 0
    assert result.content_hash == load_reference(reference).header["content_hash"]
    assert reference_text(m, result.name).encode() == (REFERENCES_DIR / f"{reference}.csv").read_bytes()


def test_real_ck48_cli_and_renamed_copy(real_data: Path, tmp_path: Path) -> None:
    """The issue's check: 'ferdata split ck48 --reference ckplus48-spi-10' is byte-identical to the
    shipped split, and a renamed copy of CK+48 still matches every image by content hash."""
    from ferdata.cli.app import app

    source = real_data / "ckplus48"
    ingest("ckplus", source, name="ck48", manifests=tmp_path / "m", executor=InlineExecutor())
    res = CliRunner().invoke(app, ["split", "ck48", "--reference", "ckplus48-spi-10", "--manifests",
                                   str(tmp_path / "m"), "-j", "1", "--export-reference", str(tmp_path / "out.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.csv").read_bytes() == (REFERENCES_DIR / "ckplus48-spi-10.csv").read_bytes()

    copy = tmp_path / "copy"
    for i, p in enumerate(sorted(source.rglob("*.png"))):
        dst = copy / p.parent.name / f"face_{i:04d}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
    m2 = ingest("folder", copy, name="copy", manifests=tmp_path / "m", executor=InlineExecutor()).manifest
    result = apply_reference(m2, "ckplus48-spi-10", executor=InlineExecutor())
    assert result.metadata["reference"]["matched_by"] == {"content hash": 981}
    ref = load_reference("ckplus48-spi-10").rows.set_index("sha256")["roles"]
    images = m2.images(columns=["image_id", "content_hash"]).to_pandas().set_index("image_id")["content_hash"]
    table = load_split(m2, result.name).to_pandas()
    test_fold = {images[i]: int(f) for i, f, r in zip(table["image_id"], table["fold"], table["role"]) if r == "test"}
    assert all(ref[h].index("T") == f for h, f in test_fold.items())
    assert len(test_fold) == 981


def test_real_sfew_sample_reports_the_frames_it_lacks(real_data: Path, tmp_path: Path) -> None:
    m = ingest("sfew", real_data / "sfew_anu", name="sfew", manifests=tmp_path, executor=InlineExecutor()).manifest
    result = apply_reference(m, "sfew-anu-movie-5", executor=InlineExecutor())
    info = result.metadata["reference"]
    assert info["matched"] == m.images().num_rows == 35
    assert info["unmatched"] == 675 - 35
    assert result.metadata["group_column"] == "movie"
    # movies never straddle roles
    images = m.images(columns=["image_id", "movie"]).to_pandas().set_index("image_id")["movie"]
    table = load_split(m, result.name).to_pandas()
    table["movie"] = table["image_id"].map(images)
    assert (table.groupby(["fold", "movie"])["role"].nunique() == 1).all()
    assert pd.notna(table["movie"]).all()
