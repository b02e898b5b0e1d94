"""``ferdata split NAME --protocol P``: evaluation splits with a leakage audit."""

from __future__ import annotations

from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    NoWaitOpt,
    RichProgress,
    Summary,
    WorkersOpt,
    command_help,
    console,
    lock_waits,
    print_broken,
    print_json,
    table,
)

ORDER = 40

EXAMPLES = (
    Example("ferdata split jaffe --protocol loso", "leave one subject out: manifests/jaffe/splits/loso.parquet"),
    Example("ferdata split sfew --protocol spi --folds 2 --group-by movie --classes 6",
            "two folds that keep whole movies apart, the six basic emotions"),
    Example("ferdata split jaffe --protocol ppi --test-size 0.2 --val-size 0.1 --json",
            "an image-level hold-out (the audit shows what leaks), as JSON"),
    Example("ferdata split --list", "the protocols"),
)


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
    list_: Annotated[bool, typer.Option("--list", help="List the protocols and exit.")] = False,
    as_json: JsonOpt = False,
    no_wait: NoWaitOpt = False,
) -> None:
    """Split a manifest into train/val/test roles per fold: <manifests>/<name>/splits/<split>.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest, list_manifests, manifests_root
    from ferdata.splits import PROTOCOLS, get_protocol_class, list_protocols, make_split

    if list_:
        rows = []
        for p in list_protocols():
            cls = get_protocol_class(p)
            rows.append((p, {"required": "needs them", "optional": "--group-by", "never": "ignored"}[cls.groups],
                         cls.description))
        console.print(table("split protocols", ("name", "subjects", "what"), rows, justify=["left"] * 3))
        print_broken(PROTOCOLS)
        return
    if name is None or protocol is None:
        known = list_manifests(manifests)
        have = (f"manifests under {manifests_root(manifests)}: {', '.join(known)}" if known else
                f"no manifest under {manifests_root(manifests)} yet: make one with 'ferdata ingest'")
        raise FerdataError(f"give a manifest and a protocol, e.g. 'ferdata split {known[0] if known else 'jaffe'} "
                           f"--protocol loso' (protocols: --list; {have})")
    with lock_waits(no_wait):
        result = make_split(
            Manifest.open(name, manifests), protocol, folds=folds, seed=seed, val_size=val_size, test_size=test_size,
            classes=classes, group_by=group_by, name=split_name, strict=strict, near_threshold=near_threshold,
            workers=workers, progress=RichProgress(),
        )
    if as_json:
        print_json({"path": str(result.path), **result.metadata})
        return
    render_split(result.metadata, str(result.path))


def split_summary(meta: dict, path: str | None = None) -> Summary:
    """The split's summary, its per-fold audit and its warnings (also a stage of 'ferdata pipeline')."""
    from ferdata.splits.info import audit_rows, summary_rows

    s = Summary(f"split {meta['manifest']} → {meta['name']}")
    columns, fold_rows = audit_rows(meta)
    s.table("leakage audit per fold", columns, fold_rows, key="audit", before=False)
    for label, value in summary_rows(meta):
        s.row(label, value)
    if path:
        s.row("wrote", path)
    for warning in meta.get("warnings", []):
        s.warn(warning)
    return s


def render_split(meta: dict, path: str | None = None) -> None:
    """The split's summary table and its per-fold audit table."""
    split_summary(meta, path).print()


def register(app: typer.Typer) -> None:
    app.command("split", **command_help("Train/val/test roles per fold, audited for leakage", EXAMPLES))(
        split_command)
