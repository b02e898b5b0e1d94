"""``ferdata info``: what a manifest holds (counts, subjects, bad files, duplicates, splits,
faces, features, suspects, review decisions)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    Summary,
    command_help,
    console,
    print_json,
    table,
)

ORDER = 15

EXAMPLES = (
    Example("ferdata info jaffe", "counts per label, subjects, unreadable files, duplicates, later steps"),
    Example("ferdata info jaffe --split loso", "also the split: images per fold and role, its leakage audit"),
    Example("ferdata info jaffe --json", "the same as one JSON object, for scripts"),
)


def info_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
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
        print_json(summary)
        return
    render_summary(summary)


def overview(s: dict[str, Any], into: Summary) -> Summary:
    """Subjects, duplicates and label conflicts: the rows ``info`` and ``ingest`` both show."""
    into.row("subjects", s["subjects"]["n_subjects"])
    into.row("images without subject", s["subjects"]["images_without_subject"])
    ips = s["subjects"]["images_per_subject"]
    if ips:
        into.row("images per subject (min/median/max)", f"{ips['min']} / {ips['median']:g} / {ips['max']}")
    into.row("duplicate groups (same content)", s["duplicates"]["groups"])
    into.row("label conflicts (same content, two labels)", s["n_conflicts"])
    if s.get("n_relabelled"):
        into.row("relabelled (labels.parquet)", s["n_relabelled"])
    unparsed = s.get("name_errors") or {}
    if unparsed.get("count"):  # stray or irregular files: kept as rows, without subject
        into.row("name or place not read (kept, see name_error)", unparsed["count"], key="name_errors")
        first = list(unparsed.get("first") or [])
        into.data["name_errors_first"] = first
        more = unparsed["count"] - min(len(first), 3)
        into.note("e.g. " + ", ".join(first[:3]) + (f" (+{more:,} more)" if more > 0 else ""))
    return into


def render_summary(s: dict[str, Any]) -> None:
    head = Summary(f"manifest {s['name']}")
    head.row("dataset", s["dataset"]).row("source", s["source_root"]).row("created", s["created_at"])
    head.row("images", s["n_images"]).row("unreadable", s["n_unreadable"])
    overview(s, head)
    head.counted("skipped", s["skipped"], s.get("skipped_first"))
    head.counted("warning", s["warnings"], s.get("warnings_first"))
    head.print()

    splits = s["source_splits"]
    console.print(table("images per label × source split", ["label", *splits, "total"],
                        [(lab, *(counts.get(sp, 0) for sp in splits), sum(counts.values()))
                         for lab, counts in s["labels"].items()]))
    if s["unreadable"]:
        console.print(table(f"unreadable files ({s['n_unreadable']})", ("path", "error"),
                            [(u["path"], u["error"]) for u in s["unreadable"]], justify=("left", "left")))
    if s["conflicts"]:
        console.print(table("label conflicts", ("labels", "paths"),
                            [(", ".join(c["labels"]), "\n".join(c["paths"])) for c in s["conflicts"]],
                            justify=("left", "left")))
    for section in s.get("sections", []):
        columns = section.get("columns", ("", ""))
        console.print(table(section["title"], columns, section["rows"], header=any(columns)))
    if s["problems"]:
        console.print(Text("validation problems:", "bold red"))
        for p in s["problems"]:
            console.print(Text(f"  - {p}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("info", **command_help("Counts, subjects, duplicates, splits of a manifest", EXAMPLES))(info_command)
