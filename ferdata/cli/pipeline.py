"""``ferdata pipeline SOURCE``: the main job end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ORDER = 90

from ferdata.cli.common import ManifestsOpt, RichProgress, WorkersOpt, console, summary_table


def pipeline_command(
    source: Annotated[Path, typer.Argument(help="A dataset folder in any supported layout.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Adapter [default: detected from the layout].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Manifest name [default: the dataset's].")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Ingest SOURCE and report on it, with every option at its default."""
    from ferdata.cli.ingest import render_summary
    from ferdata.datasets import detect_dataset
    from ferdata.info import summarize
    from ferdata.ingest import ingest

    dataset = dataset or detect_dataset(source)
    result = ingest(dataset, source, name=name, manifests=manifests, workers=workers, progress=RichProgress())
    render_summary(summarize(result.manifest))
    console.print(summary_table("pipeline", [("dataset", dataset), ("manifest", str(result.manifest.dir)),
                                             ("images", result.n_rows), ("unreadable", result.n_unreadable)]))


def register(app: typer.Typer) -> None:
    app.command("pipeline")(pipeline_command)
