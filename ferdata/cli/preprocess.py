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

MinFaceRateOpt = Annotated[float | None, typer.Option(
    "--min-face-rate", min=0.0, max=1.0, show_default=False,
    help="Fail (exit 2, rows and crops kept) when fewer than this share of readable images have a face, e.g. 0.9.")]

EXAMPLES = (
    Example("ferdata preprocess jaffe --detector mediapipe --align rotate --size 48 --gray",
            "48×48 grey crops with the eyes level (what 'ferdata pipeline' does)"),
    Example("ferdata preprocess sfew --detector haar --clahe --size 96 --preview 16",
            "Haar faces, CLAHE, plus a contact sheet of 16 crops"),
    Example("ferdata preprocess --list", "the face detectors"),
)


def preprocess_command(
    name: Annotated[str | None, typer.Argument(help="Manifest name (or folder).", show_default=False)] = None,
    detector: Annotated[str | None, typer.Option("--detector", "-d", show_default=False, help="haar | mtcnn | mediapipe | given | none (the whole image is the face) [default: the one --list marks].")] = None,
    align: Annotated[str, typer.Option("--align", help="none | rotate (eye line horizontal) | spatial (paper 004 crop).")] = "none",
    size: Annotated[int, typer.Option("--size", help="Output crops are SIZE×SIZE pixels.")] = 224,
    gray: Annotated[bool, typer.Option("--gray/--color", help="Write grey crops.")] = False,
    clahe: Annotated[bool, typer.Option("--clahe/--no-clahe", help="Contrast-limited adaptive histogram equalisation.")] = False,
    clip_limit: Annotated[float, typer.Option("--clip-limit", help="CLAHE clip limit.")] = 2.0,
    tile_grid: Annotated[int, typer.Option("--tile-grid", help="CLAHE tiles per side.")] = 8,
    pick: Annotated[str, typer.Option("--pick", help="Primary face: largest | score.")] = "largest",
    fallback: Annotated[str, typer.Option("--fallback", help="No face: whole (resize the whole image) | skip.")] = "whole",
    detector_option: Annotated[list[str] | None, typer.Option("--detector-option", help="KEY=VALUE passed to the detector (repeatable).")] = None,
    pad: Annotated[str, typer.Option("--pad", help="Search an upsampled, padded copy of tight crops: auto (always for a pre-cropped manifest, else retry) | always | retry (only when the image as it is has no face) | never.")] = "auto",
    pad_border: Annotated[float | None, typer.Option("--pad-border", show_default=False, help="Border on every side, a fraction of the image's longer side [default: the detector's measured one].")] = None,
    pad_mode: Annotated[str | None, typer.Option("--pad-mode", show_default=False, help="replicate | constant [default: the detector's].")] = None,
    upsample_to: Annotated[int | None, typer.Option("--upsample-to", show_default=False, help="Upsample tight crops until the padded image's shorter side is this many pixels [default: the detector's].")] = None,
    min_face_rate: MinFaceRateOpt = None,
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
    from ferdata.faces.preprocess import DEFAULT_DETECTOR, preprocess
    from ferdata.keyvalues import parse_key_values

    if list_:
        console.print(table("face detectors", ("name", "what"),
                            [(n + (" (default)" if n == DEFAULT_DETECTOR else ""), get_detector_class(n).description)
                             for n in list_detectors()], justify=("left", "left")))
        print_broken(DETECTORS)
        return
    if name is None:
        raise FerdataError("give a manifest name, e.g. 'ferdata preprocess jaffe --detector mtcnn' (see --help)")
    with lock_waits(no_wait), engine_executor(engine, workers, ray_address) as executor:
        r = preprocess(name, manifests=manifests, executor=executor, progress=RichProgress(), preview=preview,
                       detector=detector or DEFAULT_DETECTOR,
                       detector_opts=parse_key_values(detector_option, option="--detector-option",
                                                      example="model=short"),
                       pick=pick, clahe=clahe, clip_limit=clip_limit, tile_grid=tile_grid, align=align, size=size,
                       gray=gray, fallback=fallback, pad=pad, pad_border=pad_border, pad_mode=pad_mode,
                       upsample_to=upsample_to)
    preprocess_summary(r, executor).print(as_json)
    if min_face_rate is not None:
        from ferdata.faces.preprocess import check_face_rate

        check_face_rate(r, min_face_rate)


def preprocess_summary(r: PreprocessResult, executor: Any = None) -> Summary:
    """The closing table of a preprocessing run (also a stage of 'ferdata pipeline')."""
    from ferdata.manifest.tables import FACES_TABLE

    detector, align = r.config.get("detector"), r.config.get("align")
    size, gray = r.config.get("size"), r.config.get("gray")
    c = r.counts
    s = Summary(f"preprocess {r.manifest.name}")
    s.row("config", r.config_hash).row("detector", detector).row("align", align)
    s.row("size", f"{size}×{size}" + (" grey" if gray else ""))
    s.row("faces in the images", "pre-cropped" if r.pre_cropped else "to be detected")
    s.row("padding", padding_text(r.config))
    s.row("images", r.n_images).row("processed now", r.n_processed).row("already done (skipped)", r.n_done_before)
    if r.n_crops_remade:
        s.row("crops made again (their files were gone)", r.n_crops_remade, key="crops_remade")
    s.row("faces found", c["face_found"]).row("detection rate", f"{100 * r.detection_rate:.1f}%")
    s.row("faces per image", round(r.faces_per_image, 3)).row("searched padded", c["padded"])
    if align != "none":
        s.row("aligned (eye line levelled)", c["aligned"])
    s.row("fallback: whole image", c["fallback_whole"])
    s.row("fallback: skipped", c["fallback_skip"]).row("flat frames", c["flat"]).row("errors", c["error"])
    for k, v in r.stage_ms.items():
        s.row(f"{k.replace('_ms', '')} ms/image", round(v, 2))
    s.row("crops", str(r.crops_dir)).row("table", str(r.manifest.table_path(FACES_TABLE)))
    if r.preview:
        s.row("preview", str(r.preview))
    for label, value in engine_rows(executor):
        s.row(label, value)
    s.row("seconds", round(r.seconds, 2))
    if r.warning:
        s.warn(r.warning)
    return s


def padding_text(config: dict) -> str:
    """What the run did to tight crops before detection, in words."""
    pad = config.get("pad", "never")
    if pad in ("never", "auto") or not (config.get("pad_border") or config.get("upsample_to")):
        return "none"
    what = f"{config['pad_border']:g} × side {config['pad_mode']} border"
    what += f", upsampled to {config['upsample_to']} px" if config.get("upsample_to") else ", not upsampled"
    return f"{pad}: {what}" if pad == "always" else f"{pad} (when nothing is found as is): {what}"


def register(app: typer.Typer) -> None:
    app.command("preprocess", no_args_is_help=False,
                **command_help("Detect, align and crop the faces of a manifest", EXAMPLES))(preprocess_command)
