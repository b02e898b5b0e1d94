"""``ferdata ingest``: a dataset folder in, ``images.parquet`` out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

ORDER = 10

from ferdata.cli.common import ManifestsOpt, RichProgress, WorkersOpt, console, print_broken, summary_table


def ingest_command(
    dataset: Annotated[str | None, typer.Argument(help="Adapter: see --list.", show_default=False)] = None,
    source: Annotated[Path | None, typer.Argument(help="Dataset folder (or fer2013.csv).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="Manifest name [default: the dataset's].")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the dataset adapters and exit.")] = False,
    label_map: Annotated[str | None, typer.Option("--label-map", help="RAW=LABEL pairs, comma separated.")] = None,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="Skip (and count) unknown labels.")] = False,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", help="Pixel limit per image [default: Pillow's].")] = None,
    ratings: Annotated[Path | None, typer.Option("--ratings", help="jaffe: semantic ratings file.")] = None,
    frames: Annotated[str | None, typer.Option("--frames", help="ckplus: last | last3 [default: last3].")] = None,
    neutral: Annotated[str | None, typer.Option("--neutral", help="ckplus (original layout): first | none.")] = None,
    xlsx: Annotated[str | None, typer.Option("--xlsx", help="sfew: SFEW.xlsx path, or 'none'.")] = None,
    csv: Annotated[list[str] | None, typer.Option("--csv", help="affectnet / folder: annotation CSV (repeatable).")] = None,
    subject_pattern: Annotated[str | None, typer.Option("--subject-pattern", help="folder: regex with (?P<subject>...).")] = None,
    pre_cropped: Annotated[bool | None, typer.Option(
        "--pre-cropped/--not-pre-cropped", show_default=False,
        help="The images are already face crops (padded before detection; 'ferdata pipeline' knows) "
             "[default: what the layout says: CK+48, FER-2013 and SFEW 2.0 aligned are].")] = None,
) -> None:
    """Ingest a dataset folder into <manifests>/<name>/images.parquet."""
    from ferdata.datasets import DATASETS, get_dataset_class, list_datasets
    from ferdata.errors import FerdataError
    from ferdata.ingest import ingest

    if list_:
        table = Table(title="dataset adapters", title_justify="left")
        for col in ("name", "what", "layout", "options"):
            table.add_column(col)
        for n in list_datasets():
            cls = get_dataset_class(n)
            table.add_row(n, cls.description, cls.layout, " ".join("--" + o.replace("_", "-") for o in cls.options))
        console.print(table)
        print_broken(DATASETS)
        return
    if dataset is None or source is None:
        raise FerdataError("give a dataset and a source folder, e.g. 'ferdata ingest jaffe ~/data/jaffe' (see --list)")
    result = ingest(
        dataset, source, name=name, manifests=manifests, workers=workers, progress=RichProgress(),
        max_pixels=max_pixels, label_map=label_map, skip_unknown=skip_unknown,
        ratings=ratings, frames=frames, neutral=neutral, xlsx=xlsx, csv=tuple(csv or ()),
        subject_pattern=subject_pattern, pre_cropped=pre_cropped,
    )
    rows = [("manifest", str(result.manifest.images_path)), ("images", result.n_rows),
            ("unreadable", result.n_unreadable)]
    rows += [(f"label {lab}", n) for lab, n in sorted(result.labels.items(), key=lambda kv: str(kv[0]))]
    rows += [(f"skipped: {why}", n) for why, n in sorted(result.skipped.items())]
    rows += [(f"warning: {why}", n) for why, n in sorted(result.warnings.items())]
    for key, value in result.report.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((key.replace("_", " "), value))
        elif isinstance(value, list):
            rows.append((key.replace("_", " "), len(value)))
    rows.append(("faces", "pre-cropped" if result.manifest.metadata().get("pre_cropped") else "to be detected"))
    rows.append(("seconds", round(result.seconds, 2)))
    console.print(summary_table(f"ingest {dataset} → {result.manifest.name}", rows))


def register(app: typer.Typer) -> None:
    app.command("ingest", no_args_is_help=False)(ingest_command)
