"""Fixtures for the feature tests: the LPQ/PHOG oracle and small fake manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.features.fakes import face_like
from tests.features.oracle import ORACLE


@pytest.fixture(scope="session")
def oracle() -> Path:
    if ORACLE is None:
        pytest.skip("LPQ/PHOG oracle not found (set FERDATA_ORACLES or provide ../shared/oracles/lpq_phog)")
    return ORACLE


@pytest.fixture
def fake_faces(tmp_path: Path) -> Path:
    """A ``folder`` dataset: 3 labels × 4 subjects, 48×48 grey PNGs, plus one broken file."""
    rng = np.random.default_rng(7)
    root = tmp_path / "faces"
    for label in ("happy", "sad", "anger"):
        (root / label).mkdir(parents=True)
        for subject in range(4):
            Image.fromarray(face_like(rng, 48, 48)).save(root / label / f"S{subject}_{label}.png")
    (root / "happy" / "S9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root
