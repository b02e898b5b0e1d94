"""``ferdata ingest``: a dataset folder in, ``images.parquet`` out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    table,
)

if TYPE_CHECKING:
    from ferdata.ingest import IngestResult

ORDER = 10

EXAMPLES = (
    Example("ferdata ingest jaffe ../shared/data/jaffe", "JAFFE into manifests/jaffe/images.parquet"),
    Example("ferdata ingest sfew ../shared/data/sfew_anu", "SFEW (ANU layout: Images/<Emotion>/, PCA/SFEW.xlsx)"),
    Example("ferdata ingest folder ../shared/data/jaffe --name jaffe-by-name --label-pattern "
            "'^..\\.(?P<label>..)' --label-map AN=anger,DI=disgust,FE=fear,HA=happy,NE=neutral,SA=sad,SU=surprise",
            "labels read from the file names (KA.AN1.39.tiff: characters 4-5)"),
    Example("ferdata ingest --list", "the dataset adapters, their layouts and options"),
)


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
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="Leave out (and count) unknown labels and files whose name or place cannot be read [default: keep such files as rows with name_error].")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a manifest of the same name built from another source or adapter (the old one is moved aside).")] = False,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", help="Pixel limit per image [default: Pillow's].")] = None,
    ratings: Annotated[Path | None, typer.Option("--ratings", help="jaffe: semantic ratings file.")] = None,
    frames: Annotated[str | None, typer.Option("--frames", help="ckplus: last | last3 [default: last3].")] = None,
    neutral: Annotated[str | None, typer.Option("--neutral", help="ckplus (original layout): first | none.")] = None,
    xlsx: Annotated[str | None, typer.Option("--xlsx", help="sfew: SFEW.xlsx path, or 'none'.")] = None,
    csv: Annotated[list[str] | None, typer.Option("--csv", help="affectnet / folder: annotation CSV (repeatable).")] = None,
    subject_pattern: Annotated[str | None, typer.Option(
        "--subject-pattern", help="folder: regex on the file name with (?P<subject>...).")] = None,
    label_pattern: Annotated[str | None, typer.Option(
        "--label-pattern", help="folder: regex on the file name with (?P<label>...), e.g. '^.{4}(?P<label>[a-g])' "
        "for a 5th character a-g; map the values with --label-map.")] = None,
    label_rule: Annotated[str | None, typer.Option(
        "--label-rule", help="ferplus: majority | plurality | ferplus (the FER+ paper's) [default: majority].")] = None,
    follow_links: Annotated[bool, typer.Option(
        "--follow-links", help="Read files and folders that links lead to outside the dataset folder "
                               "[default: record them as error rows].")] = False,
    as_json: JsonOpt = False,
    no_wait: NoWaitOpt = False,
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
        rows = []
        for n in list_datasets():
            cls = get_dataset_class(n)
            rows.append((n, cls.description, cls.layout, " ".join("--" + o.replace("_", "-") for o in cls.options)))
        console.print(table("dataset adapters", ("name", "what", "layout", "options"), rows, justify=["left"] * 4))
        print_broken(DATASETS)
        return
    if dataset is None or source is None:
        raise FerdataError("give a dataset and a source folder, e.g. 'ferdata ingest jaffe ~/data/jaffe' (see --list)")
    with lock_waits(no_wait), engine_executor(engine, workers, ray_address) as executor:
        result = ingest(
            dataset, source, name=name, manifests=manifests, executor=executor, progress=RichProgress(),
            max_pixels=max_pixels, label_map=label_map, skip_unknown=skip_unknown, follow_links=follow_links,
            replace=replace,
            ratings=ratings, frames=frames, neutral=neutral, xlsx=xlsx, csv=tuple(csv or ()),
            subject_pattern=subject_pattern, label_pattern=label_pattern, label_rule=label_rule,
            pre_cropped=pre_cropped,
        )
    ingest_summary(dataset, result, executor).print(as_json)


def ingest_summary(dataset: str, result: IngestResult, executor: Any = None) -> Summary:
    """The closing table of an ingest (also the first stage of 'ferdata pipeline')."""
    from ferdata.cli.info import overview
    from ferdata.findings import first_paths
    from ferdata.info import summarize

    s = Summary(f"ingest {dataset} → {result.manifest.name}")
    s.row("manifest", str(result.manifest.images_path)).row("images", result.n_rows)
    s.row("unreadable", result.n_unreadable)
    if result.replaced:
        s.row("previous manifest moved to", result.replaced)
    for why, n in sorted(result.errors.items()):
        s.row(f"  unreadable: {why}", n)
    for lab, n in sorted(result.labels.items(), key=lambda kv: (kv[0] is None, str(kv[0]))):
        s.row(f"label {lab}" if lab is not None else "no label", n)
    overview(summarize(result.manifest, sections=False), s)
    s.counted("skipped", result.skipped, first_paths(result.skipped))
    s.counted("warning", result.warnings, first_paths(result.warnings))
    report_rows(result.report, s)
    s.row("faces", "pre-cropped" if result.manifest.metadata().get("pre_cropped") else "to be detected")
    for label, value in engine_rows(executor):
        s.row(label, value)
    s.row("seconds", round(result.seconds, 2))
    return s


def report_rows(report: dict[str, Any], s: Summary, *, shown: int = 3) -> Summary:
    """An adapter's findings: numbers and strings as rows; a list as its count with its first
    items; ``<key>_sample`` lists as the examples of the count ``<key>`` (never a row)."""
    samples = {k[: -len("_sample")]: v for k, v in report.items() if k.endswith("_sample") and isinstance(v, list)}
    for key, value in report.items():
        if key.endswith("_sample") or isinstance(value, (dict, bool)):
            continue
        label = key.replace("_", " ")
        items = value if isinstance(value, list) else samples.get(key)
        if isinstance(value, list):
            value = len(value)
        s.row(label, value)
        if items and value:
            s.data[f"{key}_first"] = list(items[:20])
            more = value - min(len(items), shown) if isinstance(value, int) else 0
            s.note("e.g. " + ", ".join(str(i) for i in items[:shown]) + (f" (+{more:,} more)" if more > 0 else ""))
    return s


def register(app: typer.Typer) -> None:
    app.command("ingest", no_args_is_help=False,
                **command_help("Ingest a dataset folder into a Parquet manifest", EXAMPLES))(ingest_command)
