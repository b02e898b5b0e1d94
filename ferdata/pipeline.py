"""The main job: one dataset folder in, every step of ferdata run on it with defaults.

ingest (into a manifest named after the folder) → split (a person-independent protocol
when the data has subjects; SFEW by movie) → face preprocessing → LPQ/PHOG features (PCA
fitted on the training role) → a short training run → its test metrics. ``ferdata pipeline DIR`` is this function with a summary.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ferdata.datasets import detect_dataset
from ferdata.engines import Executor
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


def manifest_name(source: Path) -> str:
    """The manifest a folder gets by default: the folder's own name (a file's stem), made a
    plain folder name, so two collections never share one manifest by accident."""
    source = source.expanduser().resolve()
    raw = source.stem if source.is_file() else source.name
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", raw).strip("-.")
    return name or "dataset"


def choose_protocol(manifest: Manifest, max_folds: int = 5) -> tuple[str, int | None]:
    """Person-independent folds when the data has groups (the dataset's default grouping:
    subjects, or SFEW's movies), else the dataset's own split, else stratified k-fold: the
    strictest protocol the data allows."""
    from ferdata.splits.make import GROUP_COLUMNS, default_group_by

    column = GROUP_COLUMNS[default_group_by(manifest.dataset)]
    names = pq.read_schema(manifest.images_path).names
    table = manifest.images(columns=[c for c in dict.fromkeys([column, "source_split", "readable"]) if c in names])
    table = table.filter(table.column("readable"))
    subjects = {s for s in table.column(column).to_pylist() if s is not None} if column in names else set()
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
    executor: Executor | None = None,
    detector: str | None = None,
    min_face_rate: float | None = None,
    model: str = "small-cnn",
    epochs: int = 30,
    seed: int = 0,
    train: bool = True,
    progress: ProgressSink | None = None,
    on_step: Callable[[str], None] | None = None,
    on_step_done: Callable[[str, Any], None] | None = None,
) -> PipelineResult:
    """Every step on ``source``. Faces: ``detector`` (default: the measured default of
    ``preprocess``), eye-line rotation, 48 px grey; a manifest whose faces are pre-cropped is
    searched on padded copies (``pad="auto"``). ``min_face_rate`` stops the run after the face
    step when too few images have a face, before anything trains on whole-image fallbacks.
    ``on_step(name)`` is called as a step starts, ``on_step_done(name, result)`` as it ends
    (the CLI prints each step's table then)."""
    progress = progress or NullProgress()
    step = on_step or (lambda _name: None)
    done = on_step_done or (lambda _name, _result: None)
    source = Path(source)
    dataset = dataset or detect_dataset(source)

    step("ingest")
    ing = ingest(dataset, source, name=name or manifest_name(source), manifests=manifests, workers=workers, executor=executor,
                 progress=progress)
    manifest = ing.manifest
    result = PipelineResult(dataset, manifest, ing)
    done("ingest", ing)

    from ferdata.splits import make_split

    step("split")
    protocol, folds = choose_protocol(manifest)
    split = make_split(manifest, protocol, folds=folds, seed=seed, workers=workers, executor=executor,
                       progress=progress)
    result.steps["split"] = split
    done("split", split)

    from ferdata.faces.preprocess import DEFAULT_DETECTOR, preprocess

    step("preprocess")
    result.steps["preprocess"] = preprocess(manifest, detector=detector or DEFAULT_DETECTOR, align="rotate", size=48,
                                            gray=True, workers=workers, executor=executor, progress=progress,
                                            min_face_rate=min_face_rate)
    done("preprocess", result.steps["preprocess"])

    from ferdata.features.extract import compute_features

    step("features")
    result.steps["features"] = compute_features(manifest, reduce="pca:5", fit_on=f"{split.name}:train",
                                                workers=workers, executor=executor, progress=progress)
    done("features", result.steps["features"])
    if train:
        from ferdata.training import train as train_model

        step("train")
        result.steps["train"] = train_model(model, manifest, split.name, fold=0, runs=runs,
                                            hparams={"epochs": epochs}, seed=seed, progress=progress)
        done("train", result.steps["train"])
    return result
