"""A tiny real run: JAFFE faces cropped by MediaPipe (48 px, grey), split subject-disjointly
in two folds, small-cnn trained for two epochs on each by the real engine
(``ferdata.training.train``), so reports and predict are tested on the run folders users
get, with a preprocessing config predict must reproduce."""

from __future__ import annotations

import shutil
from pathlib import Path

from ferdata.manifest import Manifest

MODEL = "small-cnn"
SPLIT = "spi-2"

_MADE: dict[str, tuple[Manifest, Path]] = {}


def make_tiny_run(manifest: Manifest, root: Path, *, epochs: int = 2) -> tuple[Manifest, Path]:
    """``(private manifest copy, run folder of a --fold all run)``; the split is written into
    a copy of the manifest so the session's shared manifest stays as ingest made it."""
    from ferdata.engines import InlineExecutor
    from ferdata.faces.preprocess import preprocess
    from ferdata.splits import make_split
    from ferdata.training import train

    copy = Manifest(root / "manifests" / manifest.name)
    copy.dir.mkdir(parents=True)
    shutil.copy(manifest.images_path, copy.images_path)
    faces = preprocess(copy, executor=InlineExecutor(), detector="mediapipe", size=48, gray=True)
    make_split(copy, "spi", folds=2, executor=InlineExecutor())
    result = train(MODEL, copy, SPLIT, fold="all", runs=root / "runs", device="cpu", crops=faces.config_hash,
                   hparams={"epochs": epochs, "lr": 1e-3})
    return copy, result.run_dir


def shared_tiny_run(manifest: Manifest, tmp_path_factory) -> tuple[Manifest, Path]:  # noqa: ANN001 - pytest's factory
    """One tiny run per manifest per test session, shared by every test module that needs one."""
    key = str(manifest.dir)
    if key not in _MADE:
        _MADE[key] = make_tiny_run(manifest, tmp_path_factory.mktemp("tiny-run"))
    return _MADE[key]
