"""``ferdata split NAME --protocol P``: evaluation splits with a leakage audit."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

ORDER = 40

from ferdata.cli.common import (EngineOpt, ManifestsOpt, RayAddressOpt, RichProgress, WorkersOpt, console,
                                engine_executor, engine_rows, print_broken, summary_table)


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
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the protocols and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the split's metadata as JSON.")] = False,
) -> None:
    """Split a manifest into train/val/test roles per fold: <manifests>/<name>/splits/<split>.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest
    from ferdata.splits import PROTOCOLS, get_protocol_class, list_protocols, make_split

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
        return
    if name is None or protocol is None:
        raise FerdataError("give a manifest and a protocol, e.g. 'ferdata split jaffe --protocol loso' (see --list)")
    with engine_executor(engine, workers, ray_address) as executor:
        result = make_split(
            Manifest.open(name, manifests), protocol, folds=folds, seed=seed, val_size=val_size,
            test_size=test_size, classes=classes, group_by=group_by, name=split_name, strict=strict,
            near_threshold=near_threshold, executor=executor, progress=RichProgress(),
        )
    if as_json:
        typer.echo(json.dumps({"path": str(result.path), **result.metadata}, indent=2, sort_keys=True))
        return
    render_split(result.metadata, str(result.path))
    if engine_rows(executor):  # pHash computed on Ray this time: where
        console.print(summary_table("perceptual hashes", engine_rows(executor)))


def render_split(meta: dict, path: str | None = None) -> None:
    """The split's summary table and its per-fold audit table."""
    from ferdata.splits.info import audit_rows, summary_rows

    console.print(summary_table(f"split {meta['manifest']} → {meta['name']}", summary_rows(meta)))
    columns, fold_rows = audit_rows(meta)
    console.print(summary_table("leakage audit per fold", fold_rows, columns))
    for warning in meta.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if path:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("split", no_args_is_help=True)(split_command)
