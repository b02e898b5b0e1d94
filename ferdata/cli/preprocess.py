"""``ferdata preprocess``: detect, align and crop every face of a manifest."""

from __future__ import annotations

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
    from ferdata.faces.preprocess import PreprocessResult

ORDER = 20

EXAMPLES = (
    Example("ferdata preprocess jaffe --detector mediapipe --align rotate --size 48 --gray",
            "48×48 grey crops with the eyes level (what 'ferdata pipeline' does)"),
    Example("ferdata preprocess sfew --detector haar --clahe --size 96 --preview 16",
            "Haar faces, CLAHE, plus a contact sheet of 16 crops"),
    Example("ferdata preprocess --list", "the face detectors"),
)


def preprocess_command(
    name: Annotated[str | None, typer.Argument(help="Manifest name (or folder).", show_default=False)] = None,
    detector: Annotated[str, typer.Option("--detector", "-d", help="haar | mtcnn | mediapipe | given (see --list).")] = "mtcnn",
    align: Annotated[str, typer.Option("--align", help="none | rotate (eye line horizontal) | spatial (paper 004 crop).")] = "none",
    size: Annotated[int, typer.Option("--size", help="Output crops are SIZE×SIZE pixels.")] = 224,
    gray: Annotated[bool, typer.Option("--gray/--color", help="Write grey crops.")] = False,
    clahe: Annotated[bool, typer.Option("--clahe/--no-clahe", help="Contrast-limited adaptive histogram equalisation.")] = False,
    clip_limit: Annotated[float, typer.Option("--clip-limit", help="CLAHE clip limit.")] = 2.0,
    tile_grid: Annotated[int, typer.Option("--tile-grid", help="CLAHE tiles per side.")] = 8,
    pick: Annotated[str, typer.Option("--pick", help="Primary face: largest | score.")] = "largest",
    fallback: Annotated[str, typer.Option("--fallback", help="No face: whole (resize the whole image) | skip.")] = "whole",
    detector_option: Annotated[list[str] | None, typer.Option("--detector-option", help="KEY=VALUE passed to the detector (repeatable).")] = None,
    preview: Annotated[int, typer.Option("--preview", min=0, help="Also write a contact sheet PNG of N crops.")] = 0,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the detectors and exit.")] = False,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Detect faces, align and crop them into <manifests>/<name>/crops/<config>/ and faces.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.faces import DETECTORS, get_detector_class, list_detectors
    from ferdata.faces.preprocess import preprocess
    from ferdata.keyvalues import parse_key_values

    if list_:
        console.print(table("face detectors", ("name", "what"),
                            [(n, get_detector_class(n).description) for n in list_detectors()], justify=("left", "left")))
        print_broken(DETECTORS)
        return
    if name is None:
        raise FerdataError("give a manifest name, e.g. 'ferdata preprocess jaffe --detector mtcnn' (see --help)")
    with lock_waits(no_wait), engine_executor(engine, workers, ray_address) as executor:
        r = preprocess(name, manifests=manifests, executor=executor, progress=RichProgress(), preview=preview,
                       detector=detector, detector_opts=parse_key_values(detector_option, option="--detector-option",
                                                                         example="model=short"),
                       pick=pick, clahe=clahe, clip_limit=clip_limit, tile_grid=tile_grid, align=align, size=size,
                       gray=gray, fallback=fallback)
    preprocess_summary(r, executor).print(as_json)


def preprocess_summary(r: PreprocessResult, executor: Any = None) -> Summary:
    """The closing table of a preprocessing run (also a stage of 'ferdata pipeline')."""
    from ferdata.manifest.tables import FACES_TABLE

    detector, align = r.config.get("detector"), r.config.get("align")
    size, gray = r.config.get("size"), r.config.get("gray")
    c = r.counts
    s = Summary(f"preprocess {r.manifest.name}")
    s.row("config", r.config_hash).row("detector", detector).row("align", align)
    s.row("size", f"{size}×{size}" + (" grey" if gray else ""))
    s.row("images", r.n_images).row("processed now", r.n_processed).row("already done (skipped)", r.n_done_before)
    if r.n_crops_remade:
        s.row("crops made again (their files were gone)", r.n_crops_remade, key="crops_remade")
    s.row("faces found", c["face_found"]).row("detection rate", f"{100 * r.detection_rate:.1f}%")
    s.row("faces per image", round(r.faces_per_image, 3)).row("fallback: whole image", c["fallback_whole"])
    s.row("fallback: skipped", c["fallback_skip"]).row("flat frames", c["flat"]).row("errors", c["error"])
    for k, v in r.stage_ms.items():
        s.row(f"{k.replace('_ms', '')} ms/image", round(v, 2))
    s.row("crops", str(r.crops_dir)).row("table", str(r.manifest.table_path(FACES_TABLE)))
    if r.preview:
        s.row("preview", str(r.preview))
    for label, value in engine_rows(executor):
        s.row(label, value)
    s.row("seconds", round(r.seconds, 2))
    return s


def register(app: typer.Typer) -> None:
    app.command("preprocess", no_args_is_help=False,
                **command_help("Detect, align and crop the faces of a manifest", EXAMPLES))(preprocess_command)
