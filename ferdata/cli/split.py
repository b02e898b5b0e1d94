"""``ferdata split NAME --protocol P``: evaluation splits with a leakage audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import (
    EngineOpt,
    Example,
    JsonOpt,
    ManifestsOpt,
    NoWaitOpt,
    RayAddressOpt,
    RichProgress,
    Summary,
    WorkersOpt,
    command_help,
    console,
    engine_executor,
    engine_rows,
    lock_waits,
    print_broken,
    print_json,
    summary_table,
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
    near_similarity: Annotated[float | None, typer.Option("--near-similarity", show_default=False, help="Pixel similarity (shift-tolerant correlation, 0-1) a pHash candidate needs to count as a near-duplicate; 0 counts every candidate [default: 0.92].")] = None,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    reference: Annotated[str | None, typer.Option(
        "--reference", help="Rebuild a reference fold list (a shipped name, see --list, or a file) instead of a "
                            "protocol.")] = None,
    export_reference: Annotated[Path | None, typer.Option(
        "--export-reference", help="Also write the split as a reference fold list (image names, hashes, roles) to "
                                   "this file.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the protocols and the reference fold lists, and exit.")]
        = False,
    as_json: JsonOpt = False,
    no_wait: NoWaitOpt = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Split a manifest into train/val/test roles per fold: <manifests>/<name>/splits/<split>.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest, list_manifests, manifests_root
    from ferdata.splits import PROTOCOLS, get_protocol_class, list_protocols, make_split
    from ferdata.splits.reference import apply_reference, export_reference as export, list_references, load_reference

    if list_:
        rows = []
        for p in list_protocols():
            cls = get_protocol_class(p)
            rows.append((p, {"required": "needs them", "optional": "--group-by", "never": "ignored"}[cls.groups],
                         cls.description))
        console.print(table("split protocols", ("name", "subjects", "what"), rows, justify=["left"] * 3))
        print_broken(PROTOCOLS)
        refs = []
        for ref_name in list_references():
            h = load_reference(ref_name).header
            refs.append((ref_name, h.get("dataset"), h.get("protocol"), h.get("n_folds"), h.get("n_images"),
                         ", ".join(h["class_set"]["classes"])))
        console.print(table("reference fold lists (--reference NAME)",
                            ("name", "dataset", "protocol", "folds", "images", "classes"), refs,
                            justify=["left"] * 6))
        return
    if name is None or (protocol is None and reference is None):
        known = list_manifests(manifests)
        have = (f"manifests under {manifests_root(manifests)}: {', '.join(known)}" if known else
                f"no manifest under {manifests_root(manifests)} yet: make one with 'ferdata ingest'")
        example = known[0] if known else "jaffe"
        raise FerdataError(f"give a manifest and a protocol, e.g. 'ferdata split {example} --protocol loso', or a "
                           f"reference fold list, e.g. 'ferdata split {example} --reference jaffe-loso' "
                           f"(protocols and references: --list; {have})")
    if protocol is not None and reference is not None:
        raise FerdataError("give --protocol or --reference, not both: a reference carries its own protocol")
    manifest = Manifest.open(name, manifests)
    with lock_waits(no_wait), engine_executor(engine, workers, ray_address) as executor:
        if reference is not None:
            given = {"--folds": folds, "--val-size": val_size, "--test-size": test_size, "--group-by": group_by}
            clash = [k for k, v in given.items() if v is not None] + (["--seed"] if seed != 0 else [])
            if clash:
                raise FerdataError(f"{', '.join(clash)} cannot change a reference fold list; drop them "
                                   "(--classes, --name, --strict, --near-threshold and --near-similarity apply)")
            result = apply_reference(manifest, reference, classes=classes, name=split_name, strict=strict,
                                     near_threshold=near_threshold, near_similarity=near_similarity,
                                     executor=executor, progress=RichProgress())
        else:
            result = make_split(
                manifest, protocol, folds=folds, seed=seed, val_size=val_size, test_size=test_size,
                classes=classes, group_by=group_by, name=split_name, strict=strict, near_threshold=near_threshold,
                near_similarity=near_similarity, executor=executor, progress=RichProgress(),
            )
    if export_reference is not None:
        export(manifest, result.name, export_reference)
    if as_json:
        print_json({"path": str(result.path), **result.metadata})
        return
    render_split(result.metadata, str(result.path))
    if engine_rows(executor):  # pHash computed on Ray this time: where
        console.print(summary_table("perceptual hashes", engine_rows(executor)))
    if export_reference is not None:
        console.print(f"wrote reference fold list {export_reference}", highlight=False, soft_wrap=True)


def split_summary(meta: dict, path: str | None = None) -> Summary:
    """The split's summary, its per-fold audit and its warnings (also a stage of 'ferdata pipeline')."""
    from ferdata.splits.info import audit_rows, summary_rows

    s = Summary(f"split {meta['manifest']} → {meta['name']}")
    ref = meta.get("reference")
    if ref:
        how = ", ".join(f"{n} by {k}" for k, n in ref["matched_by"].items()) or "none"
        same = meta.get("content_hash") == ref.get("reference_content_hash")
        rows = [("reference", ref["name"]), ("reference images", ref["rows"]), ("matched", f"{ref['matched']} ({how})"),
                ("not matched", ref["unmatched"]), ("label differs from the reference", ref["label_differs"]),
                ("same rows as the reference's split", "yes" if same else "no (another copy or subset)")]
        if ref["unmatched_sample"]:
            rows.append(("first not matched", ", ".join(ref["unmatched_sample"][:5])))
        s.table("reference fold list", ("", ""), rows, key="reference", before=False)
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
