"""``ferdata preprocess``: detect, align and crop every face of a manifest."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

ORDER = 20

from ferdata.cli.common import (EngineOpt, ManifestsOpt, RayAddressOpt, RichProgress, WorkersOpt, console,
                                engine_executor, engine_rows, print_broken, summary_table)


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
) -> None:
    """Detect faces, align and crop them into <manifests>/<name>/crops/<config>/ and faces.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.faces import DETECTORS, get_detector_class, list_detectors
    from ferdata.faces.preprocess import preprocess
    from ferdata.keyvalues import parse_key_values
    from ferdata.manifest.tables import FACES_TABLE

    if list_:
        table = Table(title="face detectors", title_justify="left")
        table.add_column("name")
        table.add_column("what")
        for n in list_detectors():
            table.add_row(n, get_detector_class(n).description)
        console.print(table)
        print_broken(DETECTORS)
        return
    if name is None:
        raise FerdataError("give a manifest name, e.g. 'ferdata preprocess jaffe --detector mtcnn' (see --help)")
    with engine_executor(engine, workers, ray_address) as executor:
        r = preprocess(name, manifests=manifests, executor=executor, progress=RichProgress(), preview=preview,
                       detector=detector,
                       detector_opts=parse_key_values(detector_option, option="--detector-option", example="model=short"),
                       pick=pick, clahe=clahe, clip_limit=clip_limit, tile_grid=tile_grid, align=align, size=size,
                       gray=gray, fallback=fallback)
    c = r.counts
    rows = [
        ("config", r.config_hash), ("detector", detector), ("align", align), ("size", f"{size}×{size}" + (" grey" if gray else "")),
        ("images", r.n_images), ("processed now", r.n_processed), ("already done (skipped)", r.n_done_before),
        ("faces found", c["face_found"]), ("detection rate", f"{100 * r.detection_rate:.1f}%"),
        ("faces per image", round(r.faces_per_image, 3)), ("fallback: whole image", c["fallback_whole"]),
        ("fallback: skipped", c["fallback_skip"]), ("flat frames", c["flat"]), ("errors", c["error"]),
    ]
    rows += [(f"{k.replace('_ms', '')} ms/image", round(v, 2)) for k, v in r.stage_ms.items()]
    rows += [("crops", str(r.crops_dir)), ("table", str(r.manifest.table_path(FACES_TABLE)))]
    if r.preview:
        rows.append(("preview", str(r.preview)))
    rows += engine_rows(executor)
    rows.append(("seconds", round(r.seconds, 2)))
    console.print(summary_table(f"preprocess {r.manifest.name}", rows))


def register(app: typer.Typer) -> None:
    app.command("preprocess", no_args_is_help=False)(preprocess_command)
