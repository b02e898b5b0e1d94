"""A tiny learnable dataset and a MobileNetV2 weights file for the out-of-fold scorer tests.

The weights are a seeded, randomly initialised MobileNetV2 in torchvision's layout: the
scorer's plumbing does not care whether they were trained (the real ImageNet file is
exercised by the real-data tests and the benchmark).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor
from ferdata.ingest import ingest
from ferdata.manifest import Manifest

CLASSES = ("happy", "sad", "surprise")


@pytest.fixture(scope="session")
def random_mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_random.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    return path


def write_faces(root: Path, per_class: int = 12, subjects: int = 4, side: int = 32, seed: int = 0) -> Path:
    """Grey 'faces' whose class decides where a bright bar lies (learnable by any descriptor)."""
    rng = np.random.default_rng(seed)
    for c, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 70, size=(side, side), dtype=np.uint8)
            band = slice(c * side // 3, (c + 1) * side // 3)
            img[band, 4:-4] = 220
            Image.fromarray(img, "L").save(root / label / f"S{i % subjects}_{label}_{i}.png")
    return root


@pytest.fixture
def faces_manifest(tmp_path: Path) -> Manifest:
    """36 images, 3 classes, 4 subjects, ingested with the folder adapter."""
    source = write_faces(tmp_path / "faces")
    return ingest("folder", source, name="faces", manifests=tmp_path / "manifests", executor=InlineExecutor(),
                  subject_pattern=r"^(?P<subject>S\d+)_").manifest
