"""Time each face-detector path of ``ferdata preprocess`` on real SFEW frames and JAFFE.

For every (dataset, detector) it prints, in one process and one run:

* the bare detector: ``detect_batch`` on images already decoded in memory, in the same
  batches the pipeline uses (the best of two passes, one before and one after the pipeline);
* the whole pipeline (``preprocess`` on the in-process executor, from an empty table):
  decode, detect, CLAHE, align, resize, PNG write, journal and table. ``pipeline`` is its
  wall clock per image (model loading and table writes included), ``per-img`` the mean of
  the per-image stage times (decode + detect + CLAHE + align + write, the steady-state cost);
  both are divided by the bare detector (goal: ≤ 1.2×), and each stage's mean is shown.

Anchors from the papers: 90.7 ms per image for the thesis pipeline (paper 004, AffectNet
photos averaging 548×548 px, CLAHE + rotation + spatial normalisation), and 46.93 ms
detection + 7.49 ms preprocessing per frame (paper 001, Haar on camera frames).

    python benchmarks/preprocess.py                      # data from ../shared/data or $FERDATA_TEST_DATA
    python benchmarks/preprocess.py --datasets jaffe --detectors mtcnn --align rotate --clahe
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ferdata.engines import InlineExecutor  # noqa: E402
from ferdata.faces import create_detector  # noqa: E402
from ferdata.faces.pipeline import make_config, preprocess  # noqa: E402
from ferdata.imageio import read_image  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402

DATASETS = {"sfew": ("sfew", "sfew_anu"), "jaffe": ("jaffe", "jaffe")}
ANCHORS = (("paper 004 thesis pipeline (CLAHE + rotation + spatial)", "90.7 ms/image"),
           ("paper 001 Haar detection + preprocessing", "46.93 + 7.49 = 54.42 ms/frame"))


def data_root(given: str | None) -> Path:
    for c in (given, os.environ.get("FERDATA_TEST_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    sys.exit("no data: pass --data DIR (the folder holding jaffe/ and sfew_anu/)")


def bare(detector, images, batch: int) -> float:
    """ms per image of the detector alone, in the pipeline's batch sizes."""
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        detector.detect_batch(images[i : i + batch])
    return (time.perf_counter() - t0) * 1000 / len(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--detectors", nargs="+", default=["haar", "mtcnn", "mediapipe"])
    ap.add_argument("--align", default="spatial", choices=["none", "rotate", "spatial"])
    ap.add_argument("--clahe", action="store_true")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    root = data_root(args.data)
    work = Path(tempfile.mkdtemp(prefix="ferdata-bench-"))
    print(f"cores: {len(os.sched_getaffinity(0))}  load average: {os.getloadavg()[0]:.2f}  "
          f"align={args.align} clahe={args.clahe} size={args.size}  (inline executor, one process)\n")
    header = (f"{'dataset':8} {'detector':10} {'n':>4} {'found':>6} {'bare':>8} {'pipeline':>9} {'ratio':>6} "
              f"{'per-img':>8} {'ratio':>6} {'decode':>7} {'detect':>7} {'clahe':>6} {'align':>6} {'write':>6}")
    print(header + "\n" + "-" * len(header))
    try:
        for ds in args.datasets:
            adapter, folder = DATASETS[ds]
            manifest = ingest(adapter, root / folder, name=ds, manifests=work, executor=InlineExecutor()).manifest
            paths = [manifest.resolve(p) for p in manifest.images(columns=["path"]).column("path").to_pylist()]
            images = [read_image(p) for p in paths]
            for name in args.detectors:
                cfg = make_config(name, align=args.align, clahe=args.clahe, size=args.size)
                detector = create_detector(name, **cfg.detector_options)
                detector.detect_batch(images[:1])  # warm-up (lazy graph / allocator set-up)
                batch = max(1, min(detector.batch_size, 64))
                first = bare(detector, images, batch)
                shutil.rmtree(manifest.dir / "crops", ignore_errors=True)
                (manifest.dir / "faces.parquet").unlink(missing_ok=True)
                t0 = time.perf_counter()
                r = preprocess(manifest, config=cfg, executor=InlineExecutor(), chunksize=max(batch, 16))
                pipe = (time.perf_counter() - t0) * 1000 / len(images)
                second = bare(detector, images, batch)
                ref = min(first, second)
                s = r.stage_ms
                print(f"{ds:8} {name:10} {len(images):4d} {r.detection_rate:6.1%} {ref:8.1f} {pipe:9.1f} "
                      f"{pipe / ref:6.2f} {s.get('total_ms', 0):8.1f} {s.get('total_ms', 0) / ref:6.2f} "
                      f"{s.get('decode_ms', 0):7.1f} {s.get('detect_ms', 0):7.1f} "
                      f"{s.get('clahe_ms', 0):6.1f} {s.get('align_ms', 0):6.1f} {s.get('write_ms', 0):6.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nms per image. bare: detector alone on decoded images; pipeline: wall clock of preprocess() "
          "(model load, decode, detect, crop, PNG, table) / images; per-img: mean of the per-image stages; "
          "ratio: each / bare (goal <= 1.2)")
    for what, value in ANCHORS:
        print(f"anchor: {what}: {value}")


if __name__ == "__main__":
    main()
