"""``ferdata predict``: classify the faces of images, folders, videos or a camera with a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import ManifestsOpt, RichProgress, console, summary_table

ORDER = 85


def predict_command(
    run: Annotated[Path, typer.Argument(help="A run folder made by 'ferdata train'.", show_default=False)],
    input: Annotated[Path | None, typer.Argument(help="An image, a folder or a video.", show_default=False)] = None,
    out: Annotated[list[Path] | None, typer.Option("--out", "-o", help="What to write, by suffix: .parquet/.csv "
                                                   "(table), .mp4/.avi (video), .png/.jpg (image), a folder "
                                                   "(annotated images). Repeatable.")] = None,
    camera: Annotated[int | None, typer.Option("--camera", help="Read camera N instead of INPUT (Ctrl-C stops).")] = None,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after this many frames.")] = None,
    detector: Annotated[str | None, typer.Option("--detector", "-d", help="Replace the run's face detector "
                                                 "(haar | mtcnn | mediapipe) [default: the run's].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for the network "
                                                "[default: torch's]; 1 is fastest on a busy machine.")] = None,
    manifests: ManifestsOpt = None,
) -> None:
    """Find every face, classify it with the run's model, and time detection, preprocessing
    and classification per frame."""
    from ferdata.predict import predict

    outs = list(out or [])
    if input is not None and not outs and input.suffix and input.is_file() and camera is None:
        from ferdata.predict import kind_of

        if kind_of(input) == "image":  # one photo: the annotated copy is what people want to see
            outs = [Path(f"{input.stem}.annotated.png")]
    result = predict(run, input, camera=camera, out=outs, max_frames=max_frames, manifests=manifests,
                     detector=detector, threads=threads, progress=RichProgress())
    rows = result.table.to_pylist()
    if len(rows) <= 20:
        from rich.table import Table

        t = Table(title="faces", title_justify="left")
        for col in ("source", "frame", "face", "box", "label", "confidence"):
            t.add_column(col, justify="left" if col in ("source", "label") else "right")
        for r in rows:
            box = "" if r["x0"] is None else f"{r['x0']:.0f},{r['y0']:.0f},{r['x1']:.0f},{r['y1']:.0f}"
            t.add_row(Path(r["source"]).name, str(r["frame"]), "" if r["face"] is None else str(r["face"]), box,
                      r["label"] or "(no face)", "" if r["confidence"] is None else f"{r['confidence']:.3f}")
        console.print(t)
    summary = [("frames", result.frames), ("frames with a face", result.frames_with_face), ("faces", result.faces),
               ("preprocessing", result.config_source),
               ("ms per frame: detection", round(result.detect_ms, 2)),
               ("ms per frame: preprocessing", round(result.preprocess_ms, 2)),
               ("ms per frame: classification", round(result.classify_ms, 2)),
               ("ms per frame: total", round(result.ms_per_frame, 2))]
    summary += [("wrote", str(p)) for p in result.written]
    console.print(summary_table(f"predict {run}", summary))


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
