"""``ferdata predict``: a trained run on new pictures, folders, videos and cameras.

Every frame goes through the run's own preprocessing config (the detector, its options,
CLAHE, alignment, crop size and grey that made its training crops, read from the
manifest's ``faces.parquet`` metadata); every face found is cropped the same way and all
faces of a frame are classified in one batch. Time is measured per frame in three parts,
as paper 001 reports it: detection, preprocessing (crop, align, resize, normalise) and
classification.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata import atomic, interrupts
from ferdata.errors import FerdataError, arg
from ferdata.imageio import IMAGE_SUFFIXES, read_pixels
from ferdata.inference import RunModel, load_run_model
from ferdata.manifest import atomic_write_bytes, read_metadata, write_table
from ferdata.progress import NullProgress, ProgressSink

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
TABLE_SUFFIXES = frozenset({".parquet", ".csv"})
ANNOTATED_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
#: Used when the run trained on whole images (no preprocessing config to copy).
DEFAULT_FACE_CONFIG = {"detector": "haar", "detector_options": {}, "pick": "largest", "clahe": False,
                       "align": "none", "size": 0, "gray": False, "fallback": "whole", "detect_max_side": 1280,
                       "flat_std": 2.0}


# --- the run's preprocessing ------------------------------------------------------------------


def face_config(run: RunModel, manifests: str | os.PathLike | None = None) -> tuple[dict[str, Any], str]:
    """The preprocessing config the run's training crops were made with, and where it came
    from; the default (Haar, box crop) when the run trained on whole images."""
    from ferdata.manifest.crops import FACES_TABLE
    from ferdata.reports.run import run_manifest

    cfg = run.config
    wanted = cfg.get("crops")
    if cfg.get("source") == "images" and not wanted:
        return dict(DEFAULT_FACE_CONFIG), "default (the run trained on whole images)"
    try:
        manifest = run_manifest(cfg, manifests)
    except FerdataError:
        if wanted:
            raise
        return dict(DEFAULT_FACE_CONFIG), "default (the run's manifest is not here)"
    path = manifest.table_path(FACES_TABLE)
    if not path.exists():
        if wanted:
            raise FerdataError(f"{manifest.name} has no faces.parquet, so crops config {wanted!r} of the run is unknown; "
                               f"run 'ferdata preprocess {manifest.name}' with the run's options")
        return dict(DEFAULT_FACE_CONFIG), "default (the run's manifest has no crops)"
    meta = read_metadata(path)
    key = wanted or meta.get("latest_config")
    config = (meta.get("configs") or {}).get(key)
    if not config:
        raise FerdataError(f"{path}: no preprocessing config {key!r} recorded; re-run 'ferdata preprocess {manifest.name}'")
    return dict(config), f"{manifest.name} crops {key}"


@dataclass
class Face:
    box: tuple[float, float, float, float]
    score: float | None
    crop: np.ndarray


class FacePreprocessor:
    """Detect every face of a frame and crop each as the run's preprocessing did."""

    def __init__(self, config: dict[str, Any]) -> None:
        from ferdata.faces import create_detector

        self.config = config
        self.detector = create_detector(config["detector"], **(config.get("detector_options") or {}))

    def detect(self, image: np.ndarray) -> list[Any]:
        """Faces in original pixels, searched as preprocess searched the training images (large
        frames downscaled; tight crops padded when the run's config padded them)."""
        from ferdata.faces.preprocess import FaceConfig, detect_faces, is_flat

        if is_flat(image, float(self.config.get("flat_std", 2.0))):
            return []  # a flat frame (black, white, constant): nothing to find
        return detect_faces(self.detector, image, int(self.config.get("detect_max_side") or 0),
                            FaceConfig.from_dict(self.config))

    def crop(self, image: np.ndarray, face: Any | None, size: int) -> np.ndarray:
        """The face (or the whole frame when ``face`` is None) as training saw it."""
        from ferdata.faces.preprocess import FaceConfig, crop_face

        cfg = FaceConfig.from_dict({**self.config, "size": int(self.config.get("size") or 0) or size})
        return crop_face(image, face, cfg).image


# --- frames in, rows out --------------------------------------------------------------------


@dataclass
class FrameResult:
    source: str
    frame: int
    boxes: list[tuple[float, float, float, float]]
    scores: list[float | None]
    probs: np.ndarray
    found: bool
    detect_ms: float
    preprocess_ms: float
    classify_ms: float


class Predictor:
    """A run plus its face preprocessing: frames in, faces with probabilities out."""

    def __init__(self, run: str | os.PathLike, *, manifests: str | os.PathLike | None = None,
                 detector: str | None = None) -> None:
        self.model = load_run_model(run)
        self.face_config, self.config_source = face_config(self.model, manifests)
        if detector is not None and detector != self.face_config.get("detector"):
            self.face_config = {**self.face_config, "detector": detector, "detector_options": {}}
            self.config_source += f", detector replaced by {detector}"
        if self.face_config.get("detector") == "given":
            raise FerdataError("the run's crops come from boxes given in the dataset, which new pictures do not have; "
                               f"pick a detector with {arg('detector')} haar|mtcnn|mediapipe")
        self.faces = FacePreprocessor(self.face_config)
        # One throw-away batch: the first forward pays for lazy initialisation, which would
        # otherwise be booked as the first frame's classification time.
        side = self.model.size
        blank = np.zeros((side, side, 3) if self.model.channels == 3 else (side, side), np.uint8)
        self.model.predict_proba(self.model.tensor([blank]))

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    def predict_frame(self, image: np.ndarray, source: str = "", frame: int = 0) -> FrameResult:
        """All faces of one RGB frame, classified in one batch; with the fallback of the
        run's config (whole frame or nothing) when no face is found."""
        t0 = time.perf_counter()
        faces = self.faces.detect(image)
        t1 = time.perf_counter()
        found = bool(faces)
        if not faces and self.face_config.get("fallback", "whole") == "whole":
            faces = [None]
        crops = [self.model.resize(self.faces.crop(image, f, self.model.size)) for f in faces]
        batch = self.model.tensor(crops) if crops else None
        t2 = time.perf_counter()
        probs = self.model.predict_proba(batch) if batch is not None else np.zeros((0, len(self.classes)))
        t3 = time.perf_counter()
        h, w = image.shape[:2]
        boxes = [tuple(float(v) for v in f.box) if f is not None else (0.0, 0.0, float(w), float(h)) for f in faces]
        scores = [f.score if f is not None else None for f in faces]
        return FrameResult(source, frame, boxes, scores, probs, found, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                           (t3 - t2) * 1e3)


def _open_capture(path: Path | int) -> Any:
    """``cv2.VideoCapture`` with OpenCV's own console chatter silenced while probing (a missing
    camera must come out as our one line, not as V4L2 warnings)."""
    import sys

    import cv2

    if isinstance(path, int) and sys.platform.startswith("linux") and not Path(f"/dev/video{path}").exists():
        raise FerdataError(f"no camera {path}: /dev/video{path} does not exist (list cameras with 'ls /dev/video*')")
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent
    try:
        return cv2.VideoCapture(path if isinstance(path, int) else str(path))
    finally:
        cv2.setLogLevel(level)


def _frames_of_video(path: Path | int) -> Iterator[np.ndarray]:
    import cv2

    cap = _open_capture(path)
    if not cap.isOpened():
        if isinstance(path, int):
            raise FerdataError(f"no camera {path}: OpenCV cannot open it (none attached, or no permission)")
        raise FerdataError(f"{path}: OpenCV cannot decode this video; convert it to MP4 (H.264) or AVI")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def video_fps(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if fps and fps > 0 else 25.0


def kind_of(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise FerdataError(f"{path}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}), a video "
                       f"({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder")


def frames(input: Path, skipped: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, int, np.ndarray]]:
    """``(source, frame number, frame)`` of an image, a video or a folder of both: RGB, or
    grey for a grey picture (decoded as ``preprocess`` decodes it, so crops match training).

    A bad single input is an error; in a folder a file that cannot be decoded is appended
    to ``skipped`` as ``(path relative to the folder, why)`` and the run goes on."""
    kind = kind_of(input)
    if kind == "image":
        try:
            yield str(input), 0, read_pixels(input)
        except (OSError, ValueError) as exc:
            raise FerdataError(f"{input}: cannot decode the image: {_reason(exc)}") from None
    elif kind == "video":
        yield from ((str(input), k, im) for k, im in enumerate(_frames_of_video(input)))
    else:
        files = sorted(p for p in input.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        for f in files:
            rel = f.relative_to(input).as_posix()
            if f.suffix.lower() in VIDEO_SUFFIXES:
                try:
                    yield from ((str(f), k, im) for k, im in enumerate(_frames_of_video(f)))
                except FerdataError as exc:
                    if skipped is not None:
                        skipped.append((rel, str(exc).removeprefix(f"{f}: ")))
                continue
            try:
                image = read_pixels(f)
            except (OSError, ValueError) as exc:
                if skipped is not None:
                    skipped.append((rel, _reason(exc)))
                continue
            yield str(f), 0, image


def _reason(exc: BaseException) -> str:
    """A decoder's failure in one line (the exception type only where the message needs it)."""
    from ferdata.imageio import NotAnImageError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NotAnImageError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def count_frames(input: Path) -> int:
    import cv2

    kind = kind_of(input)
    if kind == "image":
        return 1
    if kind == "video":
        cap = cv2.VideoCapture(str(input))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return max(n, 0)
    return sum(1 for p in input.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --- drawing and writing ---------------------------------------------------------------------


def annotate(image: np.ndarray, result: FrameResult, classes: list[str]) -> np.ndarray:
    """The frame (RGB) with a box, the label and its probability on every face."""
    import cv2

    out = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)).copy()
    thick = max(1, round(max(out.shape[:2]) / 300))
    for box, p in zip(result.boxes, result.probs):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        k = int(np.argmax(p))
        colour = (40, 200, 60) if result.found else (230, 160, 30)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, thick)
        text = f"{classes[k]} {p[k]:.2f}"
        scale = max(0.4, thick * 0.45)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y0 - 4 if y0 - th - 6 > 0 else y0 + th + 4
        cv2.rectangle(out, (x0, ty - th - 3), (x0 + tw + 4, ty + base - 1), colour, -1)
        cv2.putText(out, text, (x0 + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


class VideoOut:
    """An annotated video, written to a temporary name and renamed when complete."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._target = atomic.atomic_path(path, fsync=False, keep_suffix=True)  # OpenCV picks the format by suffix
        self.tmp: Path | None = None
        self.writer = None

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.tmp = self._target.__enter__()
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (rgb.shape[1], rgb.shape[0]))
            if not self.writer.isOpened():
                self.close(False)
                raise FerdataError(f"{self.path}: OpenCV cannot write this video format; use .mp4 or .avi")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self, ok: bool) -> None:
        """Rename the finished video into place (``ok``), else remove the temporary file."""
        if self.writer is None or self.tmp is None:
            return
        self.writer.release()
        self.writer = None
        self.tmp = None
        if ok:
            self._target.__exit__(None, None, None)
        else:
            self._target.__exit__(FerdataError, FerdataError("video abandoned"), None)


def write_annotated_image(path: Path, rgb: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FerdataError(f"{path}: cannot encode an image with this suffix; use .png or .jpg")
    atomic_write_bytes(path, buf.tobytes())


def rows_table(results: list[FrameResult], classes: list[str]) -> pa.Table:
    """One row per face (one per frame without a face when the config skips those)."""
    cols: dict[str, list] = {k: [] for k in ("source", "frame", "face", "face_found", "x0", "y0", "x1", "y1",
                                             "det_score", "label", "confidence", "detect_ms", "preprocess_ms",
                                             "classify_ms")}
    probs: list[np.ndarray] = []
    for r in results:
        n = len(r.boxes)
        entries = range(n) if n else [None]
        for i in entries:
            cols["source"].append(r.source)
            cols["frame"].append(r.frame)
            cols["face"].append(i)
            cols["face_found"].append(r.found)
            box = r.boxes[i] if i is not None else (None,) * 4
            for k, v in zip(("x0", "y0", "x1", "y1"), box):
                cols[k].append(v)
            cols["det_score"].append(r.scores[i] if i is not None else None)
            p = r.probs[i] if i is not None else np.full(len(classes), np.nan)
            cols["label"].append(classes[int(np.argmax(p))] if i is not None else None)
            cols["confidence"].append(float(np.max(p)) if i is not None else None)
            for k in ("detect_ms", "preprocess_ms", "classify_ms"):
                cols[k].append(getattr(r, k))
            probs.append(p)
    types = {"source": pa.string(), "frame": pa.int64(), "face": pa.int32(), "face_found": pa.bool_(),
             "label": pa.string()}
    arrays = {k: pa.array(v, types.get(k, pa.float64())) for k, v in cols.items()}
    matrix = np.stack(probs) if probs else np.zeros((0, len(classes)))
    for j, c in enumerate(classes):
        arrays[f"prob_{c}"] = pa.array(matrix[:, j], pa.float64(), from_pandas=True)
    return pa.table(arrays)


# --- the library call ------------------------------------------------------------------------


@dataclass
class PredictResult:
    table: pa.Table
    classes: list[str]
    frames: int
    faces: int
    frames_with_face: int
    detect_ms: float
    preprocess_ms: float
    classify_ms: float
    config_source: str
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files of a folder that could not be decoded: (path relative to the folder, why)."""

    @property
    def ms_per_frame(self) -> float:
        return self.detect_ms + self.preprocess_ms + self.classify_ms


#: Where ``ferdata predict`` writes annotated copies when no ``--out`` is given: under the run.
DEFAULT_OUT = "predict"


def default_out(run: str | os.PathLike, input: str | os.PathLike, runs: str | os.PathLike | None = None) -> Path:
    """Where annotated images go when no ``--out`` is given, so a prediction never writes
    into the current directory: ``<run>/predict/`` for an image, ``<run>/predict/<folder
    name>/`` for a folder (its sub-folders kept)."""
    from ferdata.training.runs import resolve_run

    found = resolve_run(run, runs)
    if found is None:
        raise FerdataError(f"no run {str(run)!r}; give a run folder made by 'ferdata train' (or 'latest')")
    base = found / DEFAULT_OUT
    return base / Path(input).resolve().name if Path(input).is_dir() else base


def _outputs(outs: list[Path], kind: str) -> tuple[list[Path], Path | None, Path | None]:
    tables, video, images = [], None, None
    for o in outs:
        suffix = o.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            tables.append(o)
        elif suffix in VIDEO_SUFFIXES:
            if kind not in ("video", "camera"):
                raise FerdataError(f"{arg('out')} {o}: an annotated video needs a video or camera input")
            video = o
        elif suffix in ANNOTATED_IMAGE_SUFFIXES:
            if kind != "image":
                raise FerdataError(f"{arg('out')} {o}: one annotated image needs one image input; give a folder for many")
            images = o
        elif suffix == "":
            if kind not in ("folder", "image"):
                raise FerdataError(f"{arg('out')} {o}: a folder of annotated images needs an image or folder input")
            images = o
        else:
            raise FerdataError(f"{arg('out')} {o}: use .parquet or .csv (table), .mp4/.avi (video), .png/.jpg (image) "
                               "or a folder (annotated images)")
    return tables, video, images


def predict(run: str | os.PathLike, input: str | os.PathLike | None = None, *, camera: int | None = None,
            out: list[str | os.PathLike] | None = None, max_frames: int | None = None,
            manifests: str | os.PathLike | None = None, detector: str | None = None,
            threads: int | None = None, progress: ProgressSink | None = None) -> PredictResult:
    """Classify every face of ``input`` (image, video, folder) or of camera ``camera``.

    ``out`` paths say what to write by suffix: ``.parquet``/``.csv`` the table (one row per
    face), ``.mp4``/``.avi`` the annotated video, ``.png``/``.jpg`` the annotated image, a
    suffix-less path a folder of annotated images. ``detector`` replaces the run's detector
    (with its default options); everything else of the run's preprocessing stays.
    ``threads`` caps torch's CPU threads (1 is fastest on a busy or shared CPU, where
    threads spin against each other).
    """
    progress = progress or NullProgress()
    if (input is None) == (camera is None):
        raise FerdataError(f"give either an INPUT (image, folder or video) or {arg('camera')} N")
    if input is not None and not Path(input).exists():
        raise FerdataError(f"{input} does not exist")
    kind = "camera" if camera is not None else kind_of(Path(input))
    if threads is None:
        return _predict(run, input, camera, kind, out, max_frames, manifests, detector, progress)
    if threads < 1:
        raise FerdataError(f"{arg('threads')} {threads}: give at least 1")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _predict(run, input, camera, kind, out, max_frames, manifests, detector, progress)
    finally:
        torch.set_num_threads(before)


def _predict(run: str | os.PathLike, input: str | os.PathLike | None, camera: int | None, kind: str,
             out: list[str | os.PathLike] | None, max_frames: int | None, manifests: str | os.PathLike | None,
             detector: str | None, progress: ProgressSink) -> PredictResult:
    tables, video_out, images_out = _outputs([Path(o) for o in (out or [])], kind)
    predictor = Predictor(run, manifests=manifests, detector=detector)
    classes = predictor.classes
    skipped: list[tuple[str, str]] = []
    if camera is not None:
        source_frames: Iterator = ((f"camera:{camera}", k, im) for k, im in enumerate(_frames_of_video(camera)))
        total = max_frames or 0
    else:
        source_frames = frames(Path(input), skipped)
        total = count_frames(Path(input))
        if max_frames:
            total = min(total, max_frames) if total else max_frames
    video = VideoOut(video_out, video_fps(Path(input)) if camera is None else 25.0) if video_out else None
    results: list[FrameResult] = []
    written: list[Path] = []
    ok = False
    progress.start("predict", total)
    try:
        for source, k, image in source_frames:
            if max_frames is not None and len(results) >= max_frames:
                break
            r = predictor.predict_frame(image, source, k)
            results.append(r)
            if video is not None:
                video.write(annotate(image, r, classes))
            if images_out is not None:
                if kind == "image" and images_out.suffix:
                    target = images_out
                else:
                    base = Path(source).relative_to(input) if kind == "folder" else Path(Path(source).name)
                    target = images_out / base.with_suffix(".annotated.png")
                write_annotated_image(target, annotate(image, r, classes))
                written.append(target)
            progress.advance(1)
        ok = True
    except KeyboardInterrupt:
        ok = True  # a camera session ends with Ctrl-C; keep what was seen
        interrupts.acknowledge()
    finally:
        progress.finish()
        if video is not None:
            video.close(ok and bool(results))
    if video is not None and results:
        written.append(video_out)
    if not results:
        why = (f" ({len(skipped)} file(s) could not be decoded, e.g. {skipped[0][0]}: {skipped[0][1]})"
               if skipped else "")
        raise FerdataError(f"{input if camera is None else f'camera {camera}'}: no frame could be read{why}")
    table = rows_table(results, classes)
    for t in tables:
        if t.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            atomic.write_with(t, lambda tmp: pacsv.write_csv(table, str(tmp)))
        else:
            write_table(t, table, {"classes": classes, "run": str(Path(run).resolve()),
                                   "face_config": predictor.face_config})
        written.append(t)
    n = len(results)
    return PredictResult(table, classes, n, sum(len(r.boxes) for r in results if r.found),
                         sum(1 for r in results if r.found),
                         sum(r.detect_ms for r in results) / n, sum(r.preprocess_ms for r in results) / n,
                         sum(r.classify_ms for r in results) / n, predictor.config_source, written, skipped)
