"""``ferdata info``: what a manifest holds (counts, subjects, bad files, duplicates, splits,
faces, features, suspects, review decisions)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ferdata.cli.common import ManifestsOpt, console, summary_table

ORDER = 15


def info_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    manifests: ManifestsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    split: Annotated[str | None, typer.Option("--split", help="Also report this split: class counts per fold and role, leakage audit.")] = None,
    suspects: Annotated[int | None, typer.Option(
        "--suspects", min=1, help="Also list the top N suspected label errors (from 'ferdata flag').")] = None,
    relabels: Annotated[bool, typer.Option(
        "--relabels", help="Also list the review decisions (relabel or keep, reviewer, note) from labels.parquet.")]
        = False,
) -> None:
    """Counts, subjects, unreadable files, duplicates and label conflicts of a manifest."""
    from ferdata.info import summarize
    from ferdata.manifest import Manifest

    summary = summarize(Manifest.open(name, manifests), split=split, suspects=suspects, relabels=relabels)
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
    app.command("info")(info_command)
