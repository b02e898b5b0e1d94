"""``ferdata predict``: classify the faces of images, folders, videos or a camera with a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    RichProgress,
    RunsOpt,
    Summary,
    command_help,
)

ORDER = 85

EXAMPLES = (
    Example("ferdata predict latest ../shared/data/jaffe/KA.HA1.29.tiff",
            "one photo: faces, labels, timings; the annotated copy goes to <run>/predict/"),
    Example("ferdata predict latest ../shared/data/sfew_anu/Images/Happy --out happy.csv",
            "a folder: one row per face in happy.csv (and bad files listed, not fatal)"),
    Example("ferdata predict latest clip.mp4 --out clip.annotated.mp4 --threads 1",
            "a video, annotated frame by frame", runnable=False),
    Example("ferdata predict latest --camera 0 --max-frames 100", "the first camera", runnable=False),
)


def predict_command(
    run: Annotated[str, typer.Argument(help="A run folder made by 'ferdata train', its id, or 'latest'.",
                                       show_default=False)],
    input: Annotated[Path | None, typer.Argument(help="An image, a folder or a video.", show_default=False)] = None,
    out: Annotated[list[Path] | None, typer.Option(
        "--out", "-o", help="What to write, by suffix: .parquet/.csv (table), .mp4/.avi (video), .png/.jpg "
        "(image), a folder (annotated images). Repeatable. [default: annotated copies of an image in "
        "<run>/predict/, of a folder in <run>/predict/<folder name>/; nothing for a video or a camera]")] = None,
    camera: Annotated[int | None, typer.Option("--camera", help="Read camera N instead of INPUT (Ctrl-C stops).")] = None,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after this many frames.")] = None,
    detector: Annotated[str | None, typer.Option("--detector", "-d", help="Replace the run's face detector "
                                                 "(haar | mtcnn | mediapipe) [default: the run's].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for the network "
                                                "[default: torch's]; 1 is fastest on a busy machine.")] = None,
    runs: RunsOpt = None,
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find every face, classify it with the run's model, and time detection, preprocessing
    and classification per frame."""
    from ferdata.predict import default_out, kind_of, predict
    from ferdata.training.runs import resolve_run

    run_dir = resolve_run(run, runs) or Path(run)
    outs = list(out or [])
    if not outs and input is not None and camera is None and input.exists() and kind_of(input) in ("image", "folder"):
        outs = [default_out(run_dir, input, runs)]
    result = predict(run_dir, input, camera=camera, out=outs, max_frames=max_frames, manifests=manifests,
                     detector=detector, threads=threads, progress=RichProgress())
    folder = input if input is not None and input.is_dir() else None
    rows = result.table.to_pylist()
    s = Summary(f"predict {run_dir}")
    if len(rows) <= 20 or as_json:
        faces = []
        for r in rows:
            box = "" if r["x0"] is None else f"{r['x0']:.0f},{r['y0']:.0f},{r['x1']:.0f},{r['y1']:.0f}"
            source = os.path.relpath(r["source"], folder) if folder is not None else r["source"]
            faces.append((source, r["frame"], r["face"], box, r["label"] or "(no face)", r["confidence"]))
        s.table("faces", ("source", "frame", "face", "box", "label", "confidence"), faces)
    s.row("frames", result.frames).row("frames with a face", result.frames_with_face).row("faces", result.faces)
    s.row("skipped (cannot be decoded)", len(result.skipped))
    for path, why in result.skipped[:10]:
        s.note(f"{path}: {why}")
    if len(result.skipped) > 10:
        s.note(f"(+{len(result.skipped) - 10:,} more)")
    s.data["skipped_files"] = [{"path": p, "error": why} for p, why in result.skipped]
    s.row("preprocessing", result.config_source)
    s.row("ms per frame: detection", round(result.detect_ms, 2))
    s.row("ms per frame: preprocessing", round(result.preprocess_ms, 2))
    s.row("ms per frame: classification", round(result.classify_ms, 2))
    s.row("ms per frame: total", round(result.ms_per_frame, 2))
    if len(result.written) <= 5:
        for p in result.written:
            s.row("wrote", str(p))
    else:
        s.row("wrote", f"{len(result.written):,} files under {os.path.commonpath([str(p) for p in result.written])}")
        s.data["wrote"] = [str(p) for p in result.written]
    if len(rows) > 20 and not any(p.suffix.lower() in (".csv", ".parquet") for p in result.written):
        s.warn(f"{len(rows):,} faces are not listed here; write them with --out faces.csv (or .parquet)")
    s.print(as_json)


def register(app: typer.Typer) -> None:
    app.command("predict", **command_help("Classify the faces of images, folders, videos", EXAMPLES))(
        predict_command)
