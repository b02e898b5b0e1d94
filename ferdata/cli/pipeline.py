"""``ferdata pipeline SOURCE``: the main job end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ORDER = 90

from ferdata.cli.common import ManifestsOpt, RichProgress, WorkersOpt, console, err_console, summary_table
from ferdata.cli.preprocess import MinFaceRateOpt


def pipeline_command(
    source: Annotated[Path, typer.Argument(help="A dataset folder in any supported layout.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Adapter [default: detected from the layout].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Manifest name [default: the dataset's].")] = None,
    manifests: ManifestsOpt = None,
    runs: Annotated[Path | None, typer.Option("--runs", envvar="FERDATA_RUNS", help="Runs folder [default: ./runs].")] = None,
    workers: WorkersOpt = None,
    detector: Annotated[str | None, typer.Option("--detector", show_default=False, help="Face detector for preprocessing, or none (the images are the faces) [default: the one 'ferdata preprocess --list' marks].")] = None,
    min_face_rate: MinFaceRateOpt = None,
    model: Annotated[str, typer.Option("--model", help="Model trained at the end.")] = "small-cnn",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the training run.")] = 0,
    no_train: Annotated[bool, typer.Option("--no-train", help="Stop after the features.")] = False,
) -> None:
    """Ingest SOURCE, split it, crop the faces, describe them, train and evaluate a model."""
    from ferdata.cli.info import render_summary
    from ferdata.info import summarize
    from ferdata.pipeline import run_pipeline

    result = run_pipeline(
        source, dataset=dataset, name=name, manifests=manifests, runs=runs, workers=workers, detector=detector,
        min_face_rate=min_face_rate,
        model=model, epochs=epochs, seed=seed, train=not no_train, progress=RichProgress(),
        on_step=lambda s: err_console.print(f"[bold cyan]▶ {s}[/]"),
    )
    m = result.manifest
    render_summary(summarize(m))
    split, pre, feats = result.steps["split"], result.steps["preprocess"], result.steps["features"]
    rows = [
        ("dataset", result.dataset), ("manifest", str(m.dir)), ("images", result.ingest.n_rows),
        ("unreadable", result.ingest.n_unreadable),
        ("split", f"{split.name} ({split.n_folds} folds)"),
        ("faces", f"{pre.config['detector']}, " + ("pre-cropped: searched padded" if pre.pre_cropped else "detected")
         + f", align {pre.config['align']}"),
        ("faces found (detection rate)", f"{pre.counts.get('face_found', 0)}/{pre.n_readable} ({100 * pre.detection_rate:.1f}%)"),
        ("aligned (eye line levelled)", f"{pre.counts['aligned']}/{pre.n_readable}"),
        ("features", f"{', '.join(feats.descriptors)} + pca:5 for {feats.n_described} images"),
    ]
    run = result.steps.get("train")
    if run is not None:
        test = run.metrics.get("test", {})
        rows += [("model", model), ("run", str(run.run_dir)),
                 ("test accuracy (fold 0)", test.get("accuracy")),
                 ("majority-class accuracy", test.get("majority_baseline")),
                 ("test macro F1", test.get("macro", {}).get("f1"))]
    console.print(summary_table("pipeline", rows))
    if pre.warning:
        err_console.print(f"[yellow]warning:[/] {pre.warning}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("pipeline")(pipeline_command)
