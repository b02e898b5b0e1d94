"""``ferdata split NAME --protocol P``: evaluation splits with a leakage audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

ORDER = 40

from ferdata.cli.common import ManifestsOpt, RichProgress, WorkersOpt, console, print_broken, summary_table


def split_command(
    name: Annotated[str | None, typer.Argument(help="Manifest name (or folder).", show_default=False)] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", "-p", help="spi, ppi, sps, loso, kfold, official, all-train, all-test (see --list).")] = None,
    folds: Annotated[int | None, typer.Option("--folds", "-k", help="Number of folds [default: 5 for spi/kfold; a hold-out for ppi/sps].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same split.")] = 0,
    val_size: Annotated[float | None, typer.Option("--val-size", help="Fraction of each fold's training part held out as validation.")] = None,
    test_size: Annotated[float | None, typer.Option("--test-size", help="Test fraction of a hold-out split (ppi, sps, spi) [default: 0.2].")] = None,
    classes: Annotated[str | None, typer.Option("--classes", help="8, 7, 6, 7-no-neutral, 7-no-contempt, 3, or a comma list [default: every emotion present].")] = None,
    group_by: Annotated[str | None, typer.Option("--group-by", help="subject | movie | sequence [default: subject for person-aware protocols].")] = None,
    split_name: Annotated[str | None, typer.Option("--name", help="Split name [default: <protocol> or <protocol>-<folds>].")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (and write nothing) on leakage the protocol forbids.")] = False,
    near_threshold: Annotated[int | None, typer.Option("--near-threshold", help="pHash bits that may differ for a near-duplicate, 0-16 [default: 4].")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    reference: Annotated[str | None, typer.Option("--reference", help="Rebuild a reference fold list (a shipped name, see --list, or a file) instead of a protocol.")] = None,
    export_reference: Annotated[Path | None, typer.Option("--export-reference", help="Also write the split as a reference fold list (image names, hashes, roles) to this file.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the protocols and the reference fold lists, and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the split's metadata as JSON.")] = False,
) -> None:
    """Split a manifest into train/val/test roles per fold: <manifests>/<name>/splits/<split>.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest
    from ferdata.splits import PROTOCOLS, get_protocol_class, list_protocols, make_split
    from ferdata.splits.reference import apply_reference, export_reference as export, list_references, load_reference

    if list_:
        table = Table(title="split protocols", title_justify="left")
        for col in ("name", "subjects", "what"):
            table.add_column(col)
        for p in list_protocols():
            cls = get_protocol_class(p)
            table.add_row(p, {"required": "needs them", "optional": "--group-by", "never": "ignored"}[cls.groups],
                          cls.description)
        console.print(table)
        print_broken(PROTOCOLS)
        refs = Table(title="reference fold lists (--reference NAME)", title_justify="left")
        for col in ("name", "dataset", "protocol", "folds", "images", "classes"):
            refs.add_column(col)
        for ref_name in list_references():
            h = load_reference(ref_name).header
            refs.add_row(ref_name, str(h.get("dataset")), str(h.get("protocol")), str(h.get("n_folds")),
                         str(h.get("n_images")), ", ".join(h["class_set"]["classes"]))
        console.print(refs)
        return
    if name is None or (protocol is None and reference is None):
        raise FerdataError("give a manifest and a protocol, e.g. 'ferdata split jaffe --protocol loso', or a "
                           "reference fold list, e.g. 'ferdata split jaffe --reference jaffe-loso' (see --list)")
    if protocol is not None and reference is not None:
        raise FerdataError("give --protocol or --reference, not both: a reference carries its own protocol")
    manifest = Manifest.open(name, manifests)
    if reference is not None:
        given = {"--folds": folds, "--val-size": val_size, "--test-size": test_size, "--group-by": group_by}
        clash = [k for k, v in given.items() if v is not None] + (["--seed"] if seed != 0 else [])
        if clash:
            raise FerdataError(f"{', '.join(clash)} cannot change a reference fold list; drop them "
                               "(--classes, --name, --strict and --near-threshold apply)")
        result = apply_reference(manifest, reference, classes=classes, name=split_name, strict=strict,
                                 near_threshold=near_threshold, workers=workers, progress=RichProgress())
    else:
        result = make_split(
            manifest, protocol, folds=folds, seed=seed, val_size=val_size, test_size=test_size,
            classes=classes, group_by=group_by, name=split_name, strict=strict, near_threshold=near_threshold,
            workers=workers, progress=RichProgress(),
        )
    if export_reference is not None:
        export(manifest, result.name, export_reference)
    if as_json:
        typer.echo(json.dumps({"path": str(result.path), **result.metadata}, indent=2, sort_keys=True))
        return
    render_split(result.metadata, str(result.path))
    if export_reference is not None:
        console.print(f"wrote reference fold list {export_reference}", highlight=False, soft_wrap=True)


def render_split(meta: dict, path: str | None = None) -> None:
    """The split's summary table and its per-fold audit table."""
    from ferdata.splits.info import audit_rows, summary_rows

    console.print(summary_table(f"split {meta['manifest']} → {meta['name']}", summary_rows(meta)))
    ref = meta.get("reference")
    if ref:
        how = ", ".join(f"{n} by {k}" for k, n in ref["matched_by"].items()) or "none"
        rows = [("reference", ref["name"]), ("reference images", ref["rows"]), ("matched", f"{ref['matched']} ({how})"),
                ("not matched", ref["unmatched"]), ("label differs from the reference", ref["label_differs"]),
                ("same rows as the reference's split",
                 "yes" if meta.get("content_hash") == ref.get("reference_content_hash") else "no (another copy or subset)")]
        if ref["unmatched_sample"]:
            rows.append(("first not matched", ", ".join(ref["unmatched_sample"][:5])))
        console.print(summary_table("reference fold list", rows))
    columns, fold_rows = audit_rows(meta)
    console.print(summary_table("leakage audit per fold", fold_rows, columns))
    for warning in meta.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if path:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("split", no_args_is_help=True)(split_command)
