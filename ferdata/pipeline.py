"""The main job: one dataset folder in, every step of ferdata run on it with defaults.

ingest → split (a person-independent protocol when the data has subjects) → face
preprocessing → LPQ/PHOG features (PCA fitted on the training role) → a short training
run → its test metrics. ``ferdata pipeline DIR`` is this function with a summary.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferdata.datasets import detect_dataset
from ferdata.ingest import IngestResult, ingest
from ferdata.manifest import Manifest
from ferdata.progress import NullProgress, ProgressSink


@dataclass
class PipelineResult:
    dataset: str
    manifest: Manifest
    ingest: IngestResult
    steps: dict[str, Any] = field(default_factory=dict)
    """Per step (split, preprocess, features, train): its library result."""


def choose_protocol(manifest: Manifest, max_folds: int = 5) -> tuple[str, int | None]:
    """Subject-independent folds when the data has subjects, else the dataset's own split,
    else stratified k-fold: the strictest protocol the data allows."""
    table = manifest.images(columns=["subject_id", "source_split", "readable"])
    table = table.filter(table.column("readable"))
    subjects = {s for s in table.column("subject_id").to_pylist() if s is not None}
    if len(subjects) >= 2:
        return "spi", min(max_folds, len(subjects))
    if len({s for s in table.column("source_split").to_pylist() if s is not None}) >= 2:
        return "official", None
    return "kfold", max_folds


def run_pipeline(
    source: str | os.PathLike,
    *,
    dataset: str | None = None,
    name: str | None = None,
    manifests: str | os.PathLike | None = None,
    runs: str | os.PathLike | None = None,
    workers: int | None = None,
    detector: str | None = None,
    min_face_rate: float | None = None,
    model: str = "small-cnn",
    epochs: int = 30,
    seed: int = 0,
    train: bool = True,
    progress: ProgressSink | None = None,
    on_step: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Every step on ``source``. Faces: ``detector`` (default: the measured default of
    ``preprocess``), eye-line rotation, 48 px grey; a manifest whose faces are pre-cropped is
    searched on padded copies (``pad="auto"``). ``min_face_rate`` stops the run after the face
    step when too few images have a face, before anything trains on whole-image fallbacks."""
    progress = progress or NullProgress()
    step = on_step or (lambda _name: None)
    source = Path(source)
    dataset = dataset or detect_dataset(source)

    step("ingest")
    ing = ingest(dataset, source, name=name, manifests=manifests, workers=workers, progress=progress)
    manifest = ing.manifest
    result = PipelineResult(dataset, manifest, ing)

    from ferdata.splits import make_split

    step("split")
    protocol, folds = choose_protocol(manifest)
    split = make_split(manifest, protocol, folds=folds, seed=seed, workers=workers, progress=progress)
    result.steps["split"] = split

    from ferdata.faces.preprocess import DEFAULT_DETECTOR, preprocess

    step("preprocess")
    result.steps["preprocess"] = preprocess(manifest, detector=detector or DEFAULT_DETECTOR, align="rotate", size=48,
                                            gray=True, workers=workers, progress=progress, min_face_rate=min_face_rate)

    from ferdata.features.extract import compute_features

    step("features")
    result.steps["features"] = compute_features(manifest, reduce="pca:5", fit_on=f"{split.name}:train",
                                                workers=workers, progress=progress)
    if train:
        from ferdata.training import train as train_model

        step("train")
        result.steps["train"] = train_model(model, manifest, split.name, fold=0, runs=runs,
                                            hparams={"epochs": epochs}, seed=seed, progress=progress)
    return result
