"""``ferdata ingest`` and ``ferdata info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

ORDER = 10

from ferdata.cli.common import (EngineOpt, ManifestsOpt, RayAddressOpt, RichProgress, WorkersOpt, console,
                                engine_executor, engine_rows, summary_table)


def ingest_command(
    dataset: Annotated[str | None, typer.Argument(help="Adapter: see --list.", show_default=False)] = None,
    source: Annotated[Path | None, typer.Argument(help="Dataset folder (or fer2013.csv).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="Manifest name [default: the dataset's].")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
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
) -> None:
    """Ingest a dataset folder into <manifests>/<name>/images.parquet."""
    from ferdata.datasets import get_dataset_class, list_datasets
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
        return
    if dataset is None or source is None:
        raise FerdataError("give a dataset and a source folder, e.g. 'ferdata ingest jaffe ~/data/jaffe' (see --list)")
    with engine_executor(engine, workers, ray_address) as executor:
        result = ingest(
            dataset, source, name=name, manifests=manifests, executor=executor, progress=RichProgress(),
            max_pixels=max_pixels, label_map=label_map, skip_unknown=skip_unknown,
            ratings=ratings, frames=frames, neutral=neutral, xlsx=xlsx, csv=tuple(csv or ()),
            subject_pattern=subject_pattern,
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
    rows += engine_rows(executor)
    rows.append(("seconds", round(result.seconds, 2)))
    console.print(summary_table(f"ingest {dataset} → {result.manifest.name}", rows))


def info_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    manifests: ManifestsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    split: Annotated[str | None, typer.Option("--split", help="Also report this split: class counts per fold and role, leakage audit.")] = None,
    suspects: Annotated[int | None, typer.Option(
        "--suspects", min=1, help="Also list the top N suspected label errors (from 'ferdata flag').")] = None,
) -> None:
    """Counts, subjects, unreadable files, duplicates and label conflicts of a manifest."""
    from ferdata.info import summarize
    from ferdata.manifest import Manifest

    summary = summarize(Manifest.open(name, manifests), split=split, suspects=suspects)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    render_summary(summary)


def render_summary(s: dict) -> None:
    head = [("dataset", s["dataset"]), ("source", s["source_root"]), ("created", s["created_at"]),
            ("images", s["n_images"]), ("unreadable", s["n_unreadable"]),
            ("subjects", s["subjects"]["n_subjects"]), ("images without subject", s["subjects"]["images_without_subject"])]
    ips = s["subjects"]["images_per_subject"]
    if ips:
        head.append(("images per subject (min/median/max)", f"{ips['min']} / {ips['median']:g} / {ips['max']}"))
    head += [("duplicate groups (same content)", s["duplicates"]["groups"]),
             ("label conflicts (same content, two labels)", s["n_conflicts"])]
    if s.get("n_relabelled"):
        head.append(("relabelled (labels.parquet)", s["n_relabelled"]))
    head += [(f"skipped: {k}", v) for k, v in s["skipped"].items()]
    head += [(f"warning: {k}", v) for k, v in s["warnings"].items()]
    console.print(summary_table(f"manifest {s['name']}", head))

    splits = s["source_splits"]
    t = Table(title="images per label × source split", title_justify="left")
    t.add_column("label")
    for sp in splits:
        t.add_column(sp, justify="right")
    t.add_column("total", justify="right")
    for lab, counts in s["labels"].items():
        t.add_row(lab, *(str(counts.get(sp, 0)) for sp in splits), str(sum(counts.values())))
    console.print(t)

    if s["unreadable"]:
        t = Table(title=f"unreadable files ({s['n_unreadable']})", title_justify="left")
        t.add_column("path")
        t.add_column("error")
        for u in s["unreadable"]:
            t.add_row(u["path"], u["error"])
        console.print(t)
    if s["conflicts"]:
        t = Table(title="label conflicts", title_justify="left")
        t.add_column("labels")
        t.add_column("paths")
        for c in s["conflicts"]:
            t.add_row(", ".join(c["labels"]), "\n".join(c["paths"]))
        console.print(t)
    for section in s.get("sections", []):
        console.print(summary_table(section["title"], section["rows"], section.get("columns", ("", ""))))
    if s["problems"]:
        console.print("[bold red]validation problems:[/]\n" + "\n".join(f"  - {p}" for p in s["problems"]))


def register(app: typer.Typer) -> None:
    app.command("ingest", no_args_is_help=False)(ingest_command)
    app.command("info")(info_command)
