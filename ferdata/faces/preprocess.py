"""``preprocess``: every image of a manifest through decode → detect → pick → CLAHE →
align → resize → grey → PNG crop, recorded in ``faces.parquet``.

A grey picture stays one channel all the way (detectors take grey, CLAHE equalises it
directly, the crop is a grey PNG); readers such as training convert to the channels a
model wants.

The work runs on the executor; each worker process builds its detector once (in the
initializer) and detects a chunk of images per call, batched where the detector can.
A config (detector and its options, pick, CLAHE, alignment, size, grey, fallback) is
hashed; rows and crops are keyed by that hash, so configs live side by side and a re-run
of one config only does the images it has not finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ferdata import atomic
from ferdata.engines import Executor, create_executor
from ferdata.errors import DiskFullError, FerdataError, Interrupted, arg
from ferdata.faces._registry import create_detector, detector_options, get_detector_class
from ferdata.faces import geometry
from ferdata.faces.base import Detector, Face, Padding
from ferdata.faces.search import PADS, search
from ferdata.faces.clahe import apply_clahe
from ferdata.faces.table import JOURNAL_DIR, Journal, crops_dir, merge_journal, read_faces
from ferdata.manifest.schema import STAGES
from ferdata.manifest.tables import CROPS_DIR, FACES_TABLE
from ferdata.imageio import read_pixels
from ferdata.manifest import Manifest
from ferdata.manifest.store import read_schema
from ferdata.progress import NullProgress, ProgressSink

PIPELINE_VERSION = 3
"""2: grey pictures give grey crops (1 channel, not three copies). 3: tight crops are
upsampled and padded before detection (``pad``), so pre-cropped faces are found and aligned."""
STAGE_COLUMNS = STAGES
DEFAULT_DETECTOR = "mediapipe"
"""The one default of ``preprocess`` and ``pipeline``: the best detection rate over every real
sample (JAFFE, CK+48, FER-2013, FER+, SFEW frames, tight JAFFE crops: 99.4-100 %, MTCNN 93-100 %,
Haar 72-100 %), then the fastest (``benchmarks/face_rates.py``; figures in the README)."""
MIN_FACE_RATE = 0.90
"""Below this share of readable images with a face, the run warns (``--min-face-rate`` fails)."""
ALIGNS = ("none", "rotate", "spatial")
PICKS = ("largest", "score")
FALLBACKS = ("whole", "skip")
CHUNK = 64
"""Images per chunk (fewer when that spreads the images over the workers better). Each chunk
starts by waiting for its first decodes, ends by waiting for its last crops and writes one
journal part; at 64 that costs 1-7 % of the detector's time, at 16 up to 14 %."""


@dataclass(frozen=True)
class FaceConfig:
    """Everything that changes a crop; its hash names the crop folder and the table rows."""

    detector: str = DEFAULT_DETECTOR
    detector_options: dict[str, Any] = field(default_factory=dict)
    pick: str = "largest"
    clahe: bool = False
    clip_limit: float = 2.0
    tile_grid: int = 8
    align: str = "none"
    size: int = 224
    gray: bool = False
    fallback: str = "whole"
    detect_max_side: int = 1280
    """Larger images are detected on a downscaled copy; geometry is mapped back."""
    flat_std: float = 2.0
    """A frame whose grey standard deviation is below this is flagged flat and not searched."""
    pad: str = "auto"
    """When a prepared (upsampled, padded) copy is searched: ``never``, ``always``, ``retry``
    (only when the image as it is has no face); ``auto`` is resolved per manifest before hashing."""
    pad_border: float = 0.0
    pad_mode: str = "replicate"
    upsample_to: int = 0

    @property
    def padding(self) -> Padding:
        return Padding(self.pad_border, self.pad_mode, self.upsample_to)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if not self.clahe:
            d.pop("clip_limit"), d.pop("tile_grid")
        d["version"] = PIPELINE_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaceConfig:
        """The config a ``to_dict()`` recorded (extra keys such as ``version`` ignored)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def make_config(detector: str = DEFAULT_DETECTOR, *, detector_opts: Mapping[str, Any] | None = None,
                pick: str = "largest", clahe: bool = False, clip_limit: float = 2.0, tile_grid: int = 8,
                align: str = "none", size: int = 224, gray: bool = False, fallback: str = "whole",
                detect_max_side: int = 1280, flat_std: float = 2.0, pad: str = "auto", pad_border: float | None = None,
                pad_mode: str | None = None, upsample_to: int | None = None,
                pre_cropped: bool | None = None) -> FaceConfig:
    """A validated config with the detector's options resolved (MediaPipe gets its face mesh,
    ``none`` its eye finder, when alignment needs eye centres, unless given) and the padding
    of tight crops filled in from the detector's measured ``tight_padding``. ``pad="auto"``
    becomes ``always`` when ``pre_cropped`` is true, ``retry`` when it is false, and stays
    ``auto`` (for :func:`resolve_pad`) when it is unknown."""
    for value, allowed, what in ((align, ALIGNS, arg("align")), (pick, PICKS, arg("pick")),
                                 (fallback, FALLBACKS, arg("fallback")), (pad, PADS, arg("pad"))):
        if value not in allowed:
            raise FerdataError(f"{what} {value!r} is not one of: {', '.join(allowed)}")
    if size < 8:
        raise FerdataError(f"{arg('size')} {size} is too small; give at least 8 pixels")
    if clahe and (clip_limit <= 0 or tile_grid < 1):
        raise FerdataError(f"CLAHE needs {arg('clip_limit')} > 0 and {arg('tile_grid')} >= 1 (got {clip_limit}, {tile_grid})")
    opts = dict(detector_opts or {})
    cls = get_detector_class(detector)  # unknown names fail here with the list of choices
    if detector == "mediapipe" and "mesh" not in opts:
        opts["mesh"] = align != "none"
    if detector == "none" and "eyes" not in opts:
        opts["eyes"] = align != "none"
    tight = cls.tight_padding
    padding = Padding(tight.border if pad_border is None else float(pad_border), pad_mode or tight.mode,
                      tight.min_side if upsample_to is None else int(upsample_to))
    if cls.whole_image and pad in ("auto", "retry"):  # nothing to find: pad for the eye finder, always
        pad = "always" if opts.get("eyes") else "never"
    elif not cls.reads_pixels:
        pad = "never"
    elif pad == "auto" and pre_cropped is not None:
        pad = "always" if pre_cropped else "retry"
    if pad == "never":
        padding = Padding()
    return FaceConfig(detector, detector_options(detector, opts), pick, bool(clahe), float(clip_limit), int(tile_grid),
                      align, int(size), bool(gray), fallback, int(detect_max_side), float(flat_std), pad,
                      padding.border, padding.mode, padding.min_side)


def resolve_pad(config: FaceConfig, pre_cropped: bool) -> FaceConfig:
    """``pad="auto"`` made concrete for a manifest: ``always`` when its faces are pre-cropped
    (one search, on the padded copy), else ``retry``."""
    if config.pad != "auto":
        return config
    return replace(config, pad="always" if pre_cropped else "retry")


def config_command(manifest: Manifest, config_hash: str | None = None) -> str:
    """The ``ferdata preprocess`` command line that makes a config's crops (default: the
    latest config), for messages that tell the user how to make missing crops again."""
    from ferdata.manifest.crops import latest_crop_config
    from ferdata.manifest.store import read_metadata

    config_hash = config_hash or latest_crop_config(manifest)
    path = manifest.table_path(FACES_TABLE)
    recorded = (read_metadata(path).get("configs") or {}).get(config_hash) if path.exists() else None
    if not recorded:
        return f"ferdata preprocess {manifest.name} ..."
    cfg, default = FaceConfig.from_dict(recorded), FaceConfig()
    parts = [f"ferdata preprocess {manifest.name}", f"--detector {cfg.detector}", f"--align {cfg.align}",
             f"--size {cfg.size}"]
    parts += ["--gray"] if cfg.gray else []
    if cfg.clahe:
        parts += ["--clahe", f"--clip-limit {cfg.clip_limit:g}", f"--tile-grid {cfg.tile_grid}"]
    parts += [f"--pick {cfg.pick}"] if cfg.pick != default.pick else []
    parts += [f"--fallback {cfg.fallback}"] if cfg.fallback != default.fallback else []
    defaults = detector_options(cfg.detector, {})
    parts += [f"--detector-option {k}={v}" for k, v in sorted(cfg.detector_options.items())
              if defaults.get(k, object()) != v and not (k == "mesh" and cfg.detector == "mediapipe")]
    return " ".join(parts)


# ---- worker side --------------------------------------------------------------------------

_STATE: dict[str, Any] = {}


def init_worker(config: dict[str, Any], image_root: str, manifest_dir: str, threads: int | None = None) -> None:
    """Build this process's detector once; the executor calls it in every worker.
    ``threads`` caps torch's thread pool when several workers share the cores (OpenCV's
    pool must not be touched in a forked child: reconfiguring it there can deadlock)."""
    import sys

    cfg = FaceConfig(**{k: v for k, v in config.items() if k not in ("version", "hash")})
    _STATE.clear()
    _STATE.update(config=cfg, hash=config["hash"], image_root=Path(image_root), manifest_dir=Path(manifest_dir),
                  detector=create_detector(cfg.detector, **cfg.detector_options))
    if threads:
        if "torch" in sys.modules:  # only detectors that use torch have imported it
            sys.modules["torch"].set_num_threads(threads)


def process_chunk(tasks: list[tuple[str, str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """``(image_id, relative path, detector row)`` → one ``faces.parquet`` row each."""
    cfg: FaceConfig = _STATE["config"]
    return process_images(_STATE["detector"], cfg, _STATE["hash"], tasks, _STATE["image_root"], _STATE["manifest_dir"])


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@dataclass
class FaceCrop:
    image: np.ndarray
    alignment: geometry.Alignment
    clahe_ms: float | None
    align_ms: float


def crop_face(image: np.ndarray, face: Face | None, cfg: FaceConfig) -> FaceCrop:
    """One face (or the whole image when ``face`` is None) cropped exactly as ``preprocess``
    crops it: alignment, CLAHE on the region the crop is cut from, warp, optional grey.
    ``ferdata predict`` calls this too, so live faces match the training crops."""
    import cv2

    al = geometry.align(cfg.align, face, image.shape, cfg.size)
    matrix, clahe_ms = al.matrix, None
    if cfg.clahe:
        # Equalise the region the crop is cut from (tiles relative to the face, not the frame).
        t0 = time.perf_counter()
        x0, y0, x1, y1 = geometry.source_region(al.matrix, cfg.size, image.shape)
        image = apply_clahe(np.ascontiguousarray(image[y0:y1, x0:x1]), cfg.clip_limit, cfg.tile_grid)
        matrix = al.matrix @ geometry.translation(x0, y0)
        clahe_ms = _ms(t0)
    t0 = time.perf_counter()
    crop = geometry.warp(image, matrix, cfg.size)
    if cfg.gray and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return FaceCrop(crop, al, clahe_ms, _ms(t0))


def is_flat(image: np.ndarray, threshold: float) -> bool:
    """All-black, all-white or near-constant: nothing a detector could find."""
    sample = image[:: max(1, image.shape[0] // 128), :: max(1, image.shape[1] // 128)]
    return float(sample.std()) < threshold


def process_images(detector: Detector, cfg: FaceConfig, config_hash: str, tasks: list, image_root: Path,
                   manifest_dir: Path) -> list[dict[str, Any]]:
    """The per-image pipeline on a chunk.

    Detection runs in this thread, one detector batch at a time; decoding the images ahead
    of it and cropping/writing the ones behind it run on helper threads (OpenCV, Pillow and
    file writes release the GIL), so that work overlaps the detector instead of adding to it.
    A batched detector waits for a whole batch of decodes, so it gets two helpers; a
    per-image one needs a single image of look-ahead, and a second helper would only take
    CPU from it (MediaPipe measured 10-25 % slower per image with two).
    Every crop is on disk before the chunk's rows are returned.
    """
    from concurrent.futures import ThreadPoolExecutor

    rows = [_empty_row(image_id, config_hash, cfg.detector) for image_id, _, _ in tasks]

    def decode(k: int) -> np.ndarray | None:
        t0 = time.perf_counter()
        try:
            image = read_pixels(image_root / tasks[k][1])
        except Exception as exc:  # noqa: BLE001 - a file that fails to decode becomes the row's error
            rows[k]["error"] = f"decode: {type(exc).__name__}: {exc}".splitlines()[0]
            rows[k]["decode_ms"] = _ms(t0)
            return None
        rows[k]["decode_ms"] = _ms(t0)
        rows[k]["flat"] = is_flat(image, cfg.flat_std)
        return image

    step = max(1, detector.batch_size)
    with ThreadPoolExecutor(max_workers=2 if step > 1 else 1) as pool:
        pending = [pool.submit(decode, k) for k in range(len(tasks))]
        finishing = []
        for start in range(0, len(tasks), step):
            group = [(k, pending[k].result()) for k in range(start, min(len(tasks), start + step))]
            group = [(k, im) for k, im in group if im is not None]
            found = _detect(detector, cfg, [(k, im, tasks[k][2]) for k, im in group if not rows[k]["flat"]], rows)
            for k, image in group:
                pending[k] = None  # type: ignore[assignment] - let the decoded frame go once cropped
                finishing.append(pool.submit(_finish_row, rows[k], image, found.get(k, []), cfg, config_hash,
                                             manifest_dir))
        for f in finishing:
            f.result()
    for row in rows:
        row["total_ms"] = sum(row[s] or 0.0 for s in STAGE_COLUMNS[:-1])
    return rows


def _detect(detector: Detector, cfg: FaceConfig, items: list[tuple[int, np.ndarray, Any]],
            rows: list[dict[str, Any]]) -> dict[int, list[Face]]:
    """Faces per row index, in original-image coordinates; records each image's detect time
    and whether it was searched on a padded copy."""
    if not items:
        return {}
    images, det_rows = [im for _, im, _ in items], [r for _, _, r in items]
    if detector.batch_size > 1:
        t0 = time.perf_counter()
        results, padded = find_faces_batch(detector, images, cfg, det_rows)
        times = [_ms(t0) / len(images)] * len(images)
    else:
        results, padded, times = [], [], []
        for im, r in zip(images, det_rows):
            t0 = time.perf_counter()
            (faces,), (was_padded,) = find_faces_batch(detector, [im], cfg, [r])
            times.append(_ms(t0))
            results.append(faces)
            padded.append(was_padded)
    found = {}
    for (k, _, _), faces, was_padded, ms in zip(items, results, padded, times):
        found[k] = faces
        rows[k]["detect_ms"] = ms
        rows[k]["padded"] = was_padded
    return found


def find_faces_batch(detector: Detector, images: list[np.ndarray], cfg: FaceConfig,
                     rows: list[Mapping[str, Any] | None] | None = None) -> tuple[list[list[Face]], list[bool]]:
    """Every face of each image in original pixels, searched as ``preprocess`` searches it
    (large frames downscaled, tight crops padded per ``cfg.pad``), and which were padded."""
    return search(detector, images, pad=cfg.pad, padding=cfg.padding, max_side=cfg.detect_max_side, rows=rows)


def find_faces(detector: Detector, image: np.ndarray, cfg: FaceConfig) -> list[Face]:
    """Every face of one image, in original pixels, searched as ``preprocess`` searches it."""
    return find_faces_batch(detector, [image], cfg)[0][0]


def detect_faces(detector: Detector, image: np.ndarray, max_side: int, cfg: FaceConfig | None = None) -> list[Face]:
    """Every face of one image in original pixels: as ``cfg`` searches (``ferdata predict``
    passes the run's config), else on the image as it is, large frames downscaled."""
    cfg = cfg or FaceConfig(detector=detector.name, detect_max_side=max_side, pad="never")
    return find_faces(detector, image, replace(cfg, detect_max_side=max_side))


def pick_face(faces: list[Face], how: str) -> Face | None:
    if not faces:
        return None
    if how == "score":
        return max(faces, key=lambda f: (f.score if f.score is not None else -math.inf, f.area))
    return max(faces, key=lambda f: (f.area, f.score if f.score is not None else -math.inf))


def _finish_row(row: dict[str, Any], image: np.ndarray, faces: list[Face], cfg: FaceConfig, config_hash: str,
                manifest_dir: Path) -> None:
    import cv2

    face = pick_face(faces, cfg.pick)
    row["n_faces"] = len(faces)
    row["face_found"] = face is not None
    row["all_boxes"] = [float(v) for f in faces for v in f.box]
    if face is not None:
        row["box"] = list(face.box)
        row["score"] = face.score
        row["eye_left"] = list(face.eye_left) if face.eye_left is not None else None
        row["eye_right"] = list(face.eye_right) if face.eye_right is not None else None
        row["landmarks"] = [float(v) for p in face.landmarks for v in p]
    else:
        row["fallback"] = cfg.fallback
        if cfg.fallback == "skip":
            return
    fc = crop_face(image, face, cfg)
    crop, al = fc.image, fc.alignment
    if fc.clahe_ms is not None:
        row["clahe_ms"] = fc.clahe_ms
    row["align_ms"] = fc.align_ms
    row["align"] = al.mode
    row["rotation_deg"] = al.rotation_deg
    row["transform"] = [float(v) for v in al.matrix[:2].ravel()]
    t0 = time.perf_counter()
    rel = f"{CROPS_DIR}/{config_hash}/{row['image_id']}.png"
    ok, buf = cv2.imencode(".png", crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    if not ok:
        row["error"] = "PNG encoding failed"
        return
    _write_crop(manifest_dir / rel, buf.tobytes())
    row["crop_path"] = rel
    row["write_ms"] = _ms(t0)


def _write_crop(path: Path, data: bytes) -> None:
    """Through :mod:`ferdata.atomic`: a killed worker never leaves a half-written crop under
    the real name (no fsync: a crop lost to a power cut is made again by the next run)."""
    atomic.write_bytes(path, data, fsync=False)


def crop_bytes(cfg: FaceConfig) -> int:
    """About what one PNG crop of ``cfg`` takes on disk (faces compress to ~80 % of raw)."""
    return int(cfg.size * cfg.size * (1 if cfg.gray else 3) * 0.8) + 100


def _empty_row(image_id: str, config_hash: str, detector: str) -> dict[str, Any]:
    return {"image_id": image_id, "config_hash": config_hash, "detector": detector, "n_faces": 0,
            "face_found": False, "fallback": None, "flat": None, "box": None, "score": None, "eye_left": None,
            "eye_right": None, "landmarks": None, "all_boxes": None, "align": None, "rotation_deg": None,
            "transform": None, "crop_path": None, "error": None, "padded": None, "decode_ms": None,
            "detect_ms": None,
            "clahe_ms": None, "align_ms": None, "write_ms": None, "total_ms": None}


# ---- driver ---------------------------------------------------------------------------------


def worker_resources(config: FaceConfig) -> dict[str, float]:
    """What one worker needs: a GPU when the detector runs on CUDA (``device=cuda``), so a
    cluster engine puts each detector on a GPU actor; otherwise one CPU."""
    device = str(config.detector_options.get("device", "cpu"))
    return {"CPU": 1, "GPU": 1} if device.startswith("cuda") else {"CPU": 1}


@dataclass
class PreprocessResult:
    manifest: Manifest
    config_hash: str
    config: dict[str, Any]
    n_images: int
    n_done_before: int
    n_processed: int
    counts: Counter
    """Over all of this config's rows: face_found, fallback_whole, fallback_skip, flat, error,
    padded (searched on an upsampled, padded copy), aligned (crops rotated by the eye line)."""
    faces_per_image: float
    stage_ms: dict[str, float]
    """Mean milliseconds per image of each stage, over the images processed in this run."""
    seconds: float
    crops_dir: Path
    preview: Path | None = None
    n_crops_remade: int = 0
    """Images whose row said done but whose crop file was gone; made again in this run."""
    pre_cropped: bool = False
    """The manifest says its faces are pre-cropped (the adapter knows the layout)."""

    @property
    def n_readable(self) -> int:
        return self.n_images - self.counts["error"]

    @property
    def detection_rate(self) -> float:
        n = self.n_readable
        return self.counts["face_found"] / n if n else 0.0

    @property
    def warning(self) -> str | None:
        """One line when too few images have a face (below :data:`MIN_FACE_RATE`), with the fix."""
        return face_rate_warning(self.config, self.counts["face_found"], self.n_readable)


def preprocess(
    manifest: Manifest | str,
    *,
    manifests: str | os.PathLike | None = None,
    config: FaceConfig | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: ProgressSink | None = None,
    chunksize: int | None = None,
    preview: int = 0,
    image_ids: Collection[str] | None = None,
    min_face_rate: float | None = None,
    **config_options: Any,
) -> PreprocessResult:
    """Run the face pipeline over a manifest for one config (``config`` or the keyword
    options of :func:`make_config`); resumes where an earlier run of the config stopped.
    ``image_ids`` limits the run to those images (benchmarks, quick looks). With
    ``min_face_rate``, a run whose detection rate is below it raises :class:`FaceRateError`
    after its rows and crops are saved (scripted runs fail instead of training on fallbacks)."""
    started = time.perf_counter()
    progress = progress or NullProgress()
    if not isinstance(manifest, Manifest):
        manifest = Manifest.open(manifest, manifests)
    pre_cropped = is_pre_cropped(manifest)
    config = resolve_pad(config or make_config(**config_options), pre_cropped)
    cfg_hash = config.hash
    cfg_dict = config.to_dict()

    det_cls = get_detector_class(config.detector)
    available = read_schema(manifest.images_path).names
    missing = [c for c in det_cls.row_columns if c not in available]
    if missing:
        raise FerdataError(f"manifest {manifest.name} has no {', '.join(missing)} column(s); detector "
                           f"{config.detector!r} needs the dataset's own faces (AffectNet) — pick haar, mtcnn or mediapipe")
    cols = ["image_id", "path", "readable", "error", *det_cls.row_columns]
    images = manifest.images(columns=cols)

    manifest.require_image_root()
    merge_journal(manifest)  # rows a killed run left in the journal count as done
    done_table = read_faces(manifest, cfg_hash)
    readable = dict(zip(images.column("image_id").to_pylist(), images.column("readable").to_pylist()))
    finished, crops_gone = set(), 0
    for i, err, crop in zip(done_table.column("image_id").to_pylist(), done_table.column("error").to_pylist(),
                            done_table.column("crop_path").to_pylist()):
        if not readable.get(i, False):
            finished.add(i)
        elif err is None:
            if crop is not None and not (manifest.dir / crop).is_file():
                crops_gone += 1  # its row says done, but the file is gone: make it again
            else:
                finished.add(i)

    todo, unreadable_rows = [], []
    wanted = set(image_ids) if image_ids is not None else None
    for r in images.to_pylist():
        if r["image_id"] in finished or (wanted is not None and r["image_id"] not in wanted):
            continue
        if not r["readable"]:
            row = _empty_row(r["image_id"], cfg_hash, config.detector)
            row["error"] = f"unreadable: {r['error'] or 'marked unreadable at ingest'}"
            unreadable_rows.append(row)
            continue
        det_row = {c: r[c] for c in det_cls.row_columns} or None
        todo.append((r["image_id"], r["path"], det_row))

    out_dir = atomic.make_folder(crops_dir(manifest, cfg_hash))
    per_crop = atomic.on_disk(out_dir, crop_bytes(config))
    atomic.ensure_writable(out_dir, needs=len(todo) * per_crop)  # before hours of detection
    journal = Journal(manifest, cfg_hash, cfg_dict)
    journal.append(unreadable_rows)
    executor = executor or create_executor(workers=workers)
    n_workers = getattr(executor, "workers", 1) if todo else 1  # asking Ray starts a cluster
    size = chunksize or max(det_cls.batch_size, min(CHUNK, -(-len(todo) // n_workers)))
    buffer: list[dict[str, Any]] = []
    stage_sums: Counter = Counter()

    def flush(n: int) -> None:
        journal.append(buffer)
        buffer.clear()
        progress.advance(n)

    init_config = {**cfg_dict, "hash": cfg_hash}
    threads = 1 if n_workers > 1 else None
    progress.start(f"{config.detector}: {manifest.name}", len(todo))
    # nothing to do starts no worker, so a finished config re-runs without loading a model
    results = executor.map_chunks(process_chunk, todo, chunksize=size, initializer=init_worker,
                                  initargs=(init_config, str(manifest.image_root), str(manifest.dir), threads),
                                  progress=flush, resources=worker_resources(config)) if todo else iter(())
    n_done = 0
    try:
        for row in results:
            buffer.append(row)
            n_done += 1
            for s in STAGE_COLUMNS:
                stage_sums[s] += row[s] or 0.0
    except BaseException as exc:
        progress.finish()
        if hasattr(results, "close"):
            results.close()  # stop the workers before cleaning up after them
        with contextlib.suppress(Exception):  # keep what finished (not yet as the latest config); never mask the error
            journal.append(buffer)
            merge_journal(manifest)
        for folder in (out_dir, manifest.dir / JOURNAL_DIR):
            atomic.sweep_stale(folder, force=True)  # temporary files of the workers just stopped
        if isinstance(exc, DiskFullError):
            raise DiskFullError(str(out_dir), (len(todo) - n_done) * per_crop, exc.free) from None
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(f"{n_done} of {len(todo)} images done and kept in {manifest.dir}; run the same "
                              "'ferdata preprocess' again to continue") from None
        raise
    progress.finish()
    journal.append(buffer)
    merge_journal(manifest, latest=cfg_hash, config=cfg_dict)

    rows = read_faces(manifest, cfg_hash)
    counts = Counter(
        face_found=sum(rows.column("face_found").to_pylist()),
        fallback_whole=pc.sum(pc.equal(rows.column("fallback"), "whole")).as_py() or 0,
        fallback_skip=pc.sum(pc.equal(rows.column("fallback"), "skip")).as_py() or 0,
        flat=sum(1 for f in rows.column("flat").to_pylist() if f),
        error=rows.num_rows - rows.column("error").null_count,
        padded=sum(1 for f in rows.column("padded").to_pylist() if f),
        aligned=sum(1 for a in rows.column("align").to_pylist() if a in ("rotate", "spatial")),
    )
    n_faces = [n for n, e in zip(rows.column("n_faces").to_pylist(), rows.column("error").to_pylist()) if e is None]
    result = PreprocessResult(
        manifest=manifest, config_hash=cfg_hash, config=cfg_dict, n_images=rows.num_rows,
        n_done_before=len(finished), n_processed=len(todo), n_crops_remade=crops_gone,
        counts=counts, faces_per_image=float(np.mean(n_faces)) if n_faces else 0.0,
        stage_ms={s: stage_sums[s] / len(todo) for s in stage_sums} if todo else {},
        seconds=time.perf_counter() - started, crops_dir=crops_dir(manifest, cfg_hash), pre_cropped=pre_cropped,
    )
    if preview:
        from ferdata.faces.preview import contact_sheet

        result.preview = contact_sheet(manifest, cfg_hash, preview)
    if min_face_rate is not None:
        check_face_rate(result, min_face_rate)
    return result


class FaceRateError(FerdataError):
    """Fewer images have a face than ``--min-face-rate`` asks for (rows and crops are kept)."""


def is_pre_cropped(manifest: Manifest) -> bool:
    """Does the manifest say its faces are already cropped (CK+48, FER-2013, SFEW 2.0 aligned)?"""
    return bool(manifest.metadata().get("pre_cropped"))


def face_rate_warning(config: Mapping[str, Any], found: int, readable: int) -> str | None:
    """The one warning line of a run (or an ``info`` section) whose faces are too few."""
    if not readable or found / readable >= MIN_FACE_RATE:
        return None
    detector = config.get("detector", "?")
    others = [d for d in ("mtcnn", "mediapipe", "haar") if d != detector]
    fallback = "use the whole image" if config.get("fallback", "whole") == "whole" else "have no crop"
    pad = "" if config.get("pad") in ("always", None) else " or --pad always"
    return (f"{detector} found a face in only {found / readable:.1%} of {readable} readable images (below "
            f"{MIN_FACE_RATE:.0%}); the other {readable - found} {fallback}, unaligned. Try --detector "
            f"{' or --detector '.join(others)}{pad}, or --detector none if the images are already face crops")


def check_face_rate(result: PreprocessResult, min_face_rate: float) -> None:
    """Raise :class:`FaceRateError` when the run's detection rate is below ``min_face_rate``."""
    if not 0.0 <= min_face_rate <= 1.0:
        raise FerdataError(f"{arg('min_face_rate')} {min_face_rate} is outside 0..1 (a share, e.g. 0.9)")
    if result.n_readable and result.detection_rate < min_face_rate:
        raise FaceRateError(
            f"{result.config.get('detector')} found a face in {result.detection_rate:.1%} of {result.n_readable} "
            f"readable images of {result.manifest.name}, below {arg('min_face_rate')} {min_face_rate:g}; rows and crops "
            f"are saved (config {result.config_hash}). Try another {arg('detector')}, {arg('pad')} always, or "
            f"{arg('detector')} none if the images are already face crops")
