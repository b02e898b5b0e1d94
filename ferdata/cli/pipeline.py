"""``ferdata pipeline SOURCE``: the main job end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ferdata.cli.common import (
    EngineOpt,
    Example,
    JsonOpt,
    ManifestsOpt,
    RayAddressOpt,
    RichProgress,
    Summary,
    WorkersOpt,
    command_help,
    engine_executor,
    err_console,
    print_json,
)

ORDER = 90

from ferdata.cli.preprocess import MinFaceRateOpt

EXAMPLES = (
    Example("ferdata pipeline ../shared/data/jaffe --epochs 2",
            "ingest, split, crop, describe, train and test JAFFE (30 epochs without --epochs)"),
    Example("ferdata pipeline ../shared/data/sfew_anu --no-train", "every step up to the features"),
    Example("ferdata pipeline ~/data/my-faces --dataset folder --name mine", "your own label folders",
            runnable=False),
)


def stage_summary(name: str, result: Any, dataset: str) -> Summary:
    """A pipeline step's table: the same one its own command prints."""
    if name == "ingest":
        from ferdata.cli.ingest import ingest_summary

        return ingest_summary(dataset, result)
    if name == "split":
        from ferdata.cli.split import split_summary

        return split_summary(result.metadata, str(result.path) if result.path else None)
    if name == "preprocess":
        from ferdata.cli.preprocess import preprocess_summary

        return preprocess_summary(result)
    if name == "features":
        from ferdata.cli.features import features_summary

        return features_summary(result)
    from ferdata.cli.train import train_summary

    return train_summary(result)


def pipeline_command(
    source: Annotated[Path, typer.Argument(help="A dataset folder in any supported layout.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Adapter [default: detected from the layout].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Manifest name [default: the folder's name].")] = None,
    manifests: ManifestsOpt = None,
    runs: Annotated[Path | None, typer.Option("--runs", envvar="FERDATA_RUNS", help="Runs folder [default: ./runs].")] = None,
    workers: WorkersOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    detector: Annotated[str | None, typer.Option("--detector", show_default=False, help="Face detector for preprocessing, or none (the images are the faces) [default: the one 'ferdata preprocess --list' marks].")] = None,
    min_face_rate: MinFaceRateOpt = None,
    model: Annotated[str, typer.Option("--model", help="Model trained at the end.")] = "small-cnn",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the training run.")] = 0,
    no_train: Annotated[bool, typer.Option("--no-train", help="Stop after the features.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest SOURCE, split it, crop the faces, describe them, train and evaluate a model.

    Each step prints its table as it finishes (the same table as its own command)."""
    from ferdata.pipeline import run_pipeline

    stages: dict[str, Any] = {}

    def started(step: str) -> None:
        err_console.print(Text(f"▶ {step}", "bold cyan"))

    def finished(step: str, result: Any) -> None:
        s = stage_summary(step, result, stages.get("dataset", dataset or ""))
        stages[step] = s.as_dict()
        if not as_json:
            s.print()

    if dataset is None:
        from ferdata.datasets import detect_dataset

        dataset = detect_dataset(source)
    stages["dataset"] = dataset
    with engine_executor(engine, workers, ray_address) as executor:
        result = run_pipeline(
            source, dataset=dataset, name=name, manifests=manifests, runs=runs, executor=executor,
            detector=detector, min_face_rate=min_face_rate, model=model, epochs=epochs, seed=seed, train=not no_train, progress=RichProgress(),
            on_step=started, on_step_done=finished,
        )
    m = result.manifest
    split, pre, feats = result.steps["split"], result.steps["preprocess"], result.steps["features"]
    grouped = f", grouped by {split.metadata['group_by']}" if split.metadata.get("group_by") else ""
    s = Summary("pipeline")
    s.row("dataset", result.dataset).row("manifest", str(m.dir)).row("images", result.ingest.n_rows)
    s.row("unreadable", result.ingest.n_unreadable).row("split", f"{split.name} ({split.n_folds} folds{grouped})")
    s.row("faces", f"{pre.config['detector']}, " + ("pre-cropped: searched padded" if pre.pre_cropped else "detected")
          + f", align {pre.config['align']}")
    s.row("faces found (detection rate)",
          f"{pre.counts.get('face_found', 0)}/{pre.n_readable} ({100 * pre.detection_rate:.1f}%)")
    s.row("aligned (eye line levelled)", f"{pre.counts['aligned']}/{pre.n_readable}")
    s.row("features", f"{', '.join(feats.descriptors)} + pca:5 for {feats.n_described} images")
    run = result.steps.get("train")
    if run is not None:
        test = run.metrics.get("test", {})
        s.row("model", model).row("run", str(run.run_dir)).row("test accuracy (fold 0)", test.get("accuracy"))
        s.row("majority-class accuracy", test.get("majority_baseline"))
        s.row("test macro F1", test.get("macro", {}).get("f1"))
    for warning in split.warnings:  # the split's findings (leakage, merged groups) are never silent
        s.warn(f"split {split.name}: {warning}")
    if as_json:
        stages.pop("dataset", None)
        print_json({**s.as_dict(), "stages": stages})
        return
    s.print()


def register(app: typer.Typer) -> None:
    app.command("pipeline", **command_help("Every step on a dataset folder, with defaults", EXAMPLES))(
        pipeline_command)
