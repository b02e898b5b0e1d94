"""Fake data for the face pipeline: a tiny AffectNet-layout dataset whose given boxes and
68 landmarks put the eye centres on two bright dots, so every crop can be checked against
where the dots really land."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor
from ferdata.ingest import ingest
from ferdata.manifest import Manifest

ANGLES = (-25.0, -12.0, -4.0, 0.0, 3.0, 9.0, 17.0, 30.0)
EYE_DISTANCE = 40.0
SIZE = (180, 160)  # width, height


@dataclass
class FakeFaces:
    manifest: Manifest
    eyes: dict[str, tuple[tuple[float, float], tuple[float, float]]]
    """image path -> (image-left eye, image-right eye) for the images that have a face."""
    black: str
    no_box: str
    broken: str


def dot_image(eye_l: tuple[float, float], eye_r: tuple[float, float], seed: int) -> np.ndarray:
    """Mid-grey noise with two white discs (radius 4) centred on the eyes."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    img = rng.integers(40, 120, size=(h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for cx, cy in (eye_l, eye_r):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= 16] = 255
    return np.repeat(img[:, :, None], 3, axis=2)


def landmarks_68(eye_l, eye_r, centre) -> list[float]:
    pts = [centre] * 68
    for start, (cx, cy) in ((36, eye_l), (42, eye_r)):
        for k in range(6):
            t = 2 * math.pi * k / 6
            pts[start + k] = (cx + 5 * math.cos(t), cy + 5 * math.sin(t))
    return [v for p in pts for v in p]


def write_fake_affectnet(root: Path) -> tuple[dict, str, str, str]:
    images = root / "Manually_Annotated_Images"
    (images / "1").mkdir(parents=True)
    rows, eyes = [], {}
    for i, angle in enumerate(ANGLES):
        mx, my = 85.0 + i, 62.0 + (i % 3)
        dx, dy = EYE_DISTANCE / 2 * math.cos(math.radians(angle)), EYE_DISTANCE / 2 * math.sin(math.radians(angle))
        eye_l, eye_r = (mx - dx, my - dy), (mx + dx, my + dy)
        rel = f"1/face_{i}.png"
        Image.fromarray(dot_image(eye_l, eye_r, i)).save(images / rel)
        lm = landmarks_68(eye_l, eye_r, (mx, my + 40))
        rows.append([rel, int(mx - 55), int(my - 45), 110, 130, ";".join(f"{v:.4f}" for v in lm), "1", "0.5", "0.2"])
        eyes[rel] = (eye_l, eye_r)
    black, no_box, broken = "1/black.png", "1/nobox.png", "1/broken.png"
    Image.fromarray(np.zeros((SIZE[1], SIZE[0], 3), np.uint8)).save(images / black)
    rows.append([black, 20, 20, 100, 100, ";".join(["50"] * 136), "0", "0", "0"])
    Image.fromarray(dot_image((60, 60), (100, 60), 99)).save(images / no_box)
    rows.append([no_box, "", "", "", "", "", "2", "-0.3", "0.1"])
    data = (images / "1/face_0.png").read_bytes()
    (images / broken).write_bytes(data[: len(data) // 2])
    rows.append([broken, 10, 10, 50, 50, "", "3", "0", "0"])
    with open(root / "training.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                         "facial_landmarks", "expression", "valence", "arousal"])
        writer.writerows(rows)
    return eyes, black, no_box, broken


@pytest.fixture
def fake_faces(tmp_path: Path) -> FakeFaces:
    source = tmp_path / "affectnet"
    eyes, black, no_box, broken = write_fake_affectnet(source)
    manifest = ingest("affectnet", source, name="fakeaffect", manifests=tmp_path / "manifests",
                      executor=InlineExecutor()).manifest
    return FakeFaces(manifest, eyes, black, no_box, broken)


def ids_by_path(manifest: Manifest) -> dict[str, str]:
    t = manifest.images(columns=["image_id", "path"])
    return dict(zip(t.column("path").to_pylist(), t.column("image_id").to_pylist()))
