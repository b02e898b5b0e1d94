"""Tiny fake manifests and split files for the training tests.

Until ``ferdata split`` lands, the tests write split files themselves in its contract:
``splits/<name>.parquet`` with image_id (string), fold (int32), role; the class set and
protocol in the ferdata metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from ferdata.labels import ClassSet, class_set
from ferdata.manifest import Manifest, write_table

CLASSES = ("happy", "sad", "surprise")


def write_split(manifest: Manifest, name: str, rows: Sequence[tuple[str, int, str]], classes: ClassSet,
                protocol: str = "test") -> Path:
    table = pa.table({"image_id": pa.array([r[0] for r in rows], pa.string()),
                      "fold": pa.array([r[1] for r in rows], pa.int32()),
                      "role": pa.array([r[2] for r in rows], pa.string())})
    path = manifest.dir / "splits" / f"{name}.parquet"
    return write_table(path, table, {"protocol": protocol, "class_set": classes.to_dict(), "seed": 0})


def kfold_rows(manifest: Manifest, k: int) -> list[tuple[str, int, str]]:
    """Subject-wise k folds: fold f tests subjects ≡ f, validates subjects ≡ f+1 (mod k)."""
    t = manifest.images(columns=["image_id", "subject_id"])
    subjects = sorted(set(t.column("subject_id").to_pylist()))
    group = {s: i % k for i, s in enumerate(subjects)}
    rows = []
    for f in range(k):
        for image_id, s in zip(t.column("image_id").to_pylist(), t.column("subject_id").to_pylist()):
            g = group[s]
            role = "test" if g == f else "val" if g == (f + 1) % k else "train"
            rows.append((image_id, f, role))
    return rows


def make_images(root: Path, per_class: int = 6, subjects: int = 3, size: int = 16, seed: int = 0) -> Path:
    """Class-dependent patterns (a bright band in a class-specific place) plus noise."""
    rng = np.random.default_rng(seed)
    for c, label in enumerate(CLASSES):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            band = slice(c * size // 3, (c + 1) * size // 3)
            img[band, :, :] = 200 + rng.integers(0, 40, size=(size // 3 + (size % 3 > 0), size, 3))[: img[band].shape[0]]
            Image.fromarray(img).save(folder / f"S{i % subjects}_{label}_{i}.png")
    return root


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Callable[..., Manifest]:
    """``tiny_manifest(per_class=6, folds=3)`` → an ingested manifest with a split ``cv``."""
    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    def make(per_class: int = 6, folds: int = 3, subjects: int = 3, name: str = "tiny") -> Manifest:
        src = make_images(tmp_path / f"src-{name}", per_class=per_class, subjects=subjects)
        m = ingest("folder", src, name=name, manifests=tmp_path / "manifests", executor=InlineExecutor(),
                   subject_pattern=r"^(?P<subject>S\d+)_").manifest
        write_split(m, "cv", kfold_rows(m, folds), class_set(",".join(CLASSES)))
        return m

    return make


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("FERDATA_RUNS", str(path))
    return path
