"""Plugins beyond models: an installed third-party package adds a dataset adapter and a face
detector through the ``ferdata.datasets`` / ``ferdata.detectors`` entry-point groups; they
are listed, they work end to end, a broken entry point is reported without hiding the
others, and ``FERDATA_NO_PLUGINS=1`` turns them off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.third_party import install_distribution, plugin_env

PLUGIN = '''
from collections import Counter
from pathlib import Path

from ferdata.datasets import register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan, image_files
from ferdata.faces import register_detector
from ferdata.faces.base import Detector, Face


@register_dataset("tinyraf")
class TinyRaf(DatasetAdapter):
    """RAF-DB-like: <label>_<subject>_<n>.png in one folder."""
    name = "tinyraf"
    description = "a third-party adapter (RAF-style file names)"
    layout = "a folder of <label>_<subject>_<n>.png"

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        skipped = Counter()
        entries = []
        for rel in image_files(self.require_dir(source), skipped):
            raw, subject, _ = Path(rel).stem.split("_")
            entries.append(Entry(rel, raw, self.to_label(raw), subject_id=subject))
        return Scan(entries, str(source), skipped=skipped)


@register_detector("centre")
class CentreDetector(Detector):
    name = "centre"
    description = "a third-party detector: the centre half of the image"

    def detect(self, image, row=None):
        h, w = image.shape[:2]
        return [Face((w / 4, h / 4, 3 * w / 4, 3 * h / 4), 1.0, (w * 0.4, h * 0.4), (w * 0.6, h * 0.4))]
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return install_distribution(tmp_path / "site", "fer-raf-plugin", {"fer_raf_plugin": PLUGIN}, {
        "ferdata.datasets": {"tinyraf": "fer_raf_plugin", "gone": "fer_raf_missing_module"},
        "ferdata.detectors": {"centre": "fer_raf_plugin"},
    })


def _ferdata(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferdata", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=240)


def test_listed_with_broken_ones_reported(site: Path, tmp_path: Path) -> None:
    env = plugin_env(site)
    ingest_list = _ferdata(["ingest", "--list"], env, tmp_path)
    assert ingest_list.returncode == 0, ingest_list.stderr
    assert "tinyraf" in ingest_list.stdout and "jaffe" in ingest_list.stdout
    assert "broken entry point gone" in ingest_list.stdout and "fer_raf_missing_module" in ingest_list.stdout
    detectors = _ferdata(["preprocess", "--list"], env, tmp_path)
    assert detectors.returncode == 0, detectors.stderr
    assert "centre" in detectors.stdout and "mediapipe" in detectors.stdout


def test_third_party_adapter_and_detector_run_end_to_end(site: Path, tmp_path: Path) -> None:
    data = tmp_path / "raf"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, (label, subject) in enumerate([("happy", "s1"), ("sad", "s1"), ("happy", "s2"), ("anger", "s2")]):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(data / f"{label}_{subject}_{i}.png")
    env = plugin_env(site, FERDATA_MANIFESTS=str(tmp_path / "manifests"))
    ingested = _ferdata(["ingest", "tinyraf", str(data), "--name", "raf"], env, tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    faces = _ferdata(["preprocess", "raf", "--detector", "centre", "--size", "32", "--workers", "1"], env, tmp_path)
    assert faces.returncode == 0, faces.stderr
    from ferdata.faces.table import read_faces
    from ferdata.manifest import Manifest

    table = read_faces(Manifest(tmp_path / "manifests" / "raf")).to_pylist()
    assert len(table) == 4 and all(r["face_found"] and r["detector"] == "centre" for r in table)
    assert {r["box"][0] for r in table} == {16.0}


def test_switched_off_by_the_environment(site: Path, tmp_path: Path) -> None:
    listing = _ferdata(["ingest", "--list"], plugin_env(site, FERDATA_NO_PLUGINS="1"), tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "tinyraf" not in listing.stdout and "broken entry point" not in listing.stdout
    assert "jaffe" in listing.stdout
