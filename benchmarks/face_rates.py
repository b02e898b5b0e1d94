"""Detection rate and speed of every face detector on every real sample, as ``ferdata
preprocess`` runs it: the measurement behind the default detector and the padding of tight crops.

For each (dataset, detector) it ingests the sample into a temporary folder, runs
``preprocess`` on the in-process executor (``--align rotate``, 48 px grey, the pipeline's
crops) and reports the detection rate, the faces whose crop was rotated, the mean detect
time per image and the CPU seconds of the whole run. With ``--eye-line`` it also re-detects
the eyes on every rotated crop (same detector, each crop searched as a pre-cropped face) and
reports the re-detected eye line's angle: median, p90 and the share within 2 degrees, beside
the re-detection's own error on the same crops (each crop shifted by one pixel, and turned by
exactly 5 degrees): an alignment cannot be shown to be better than the instrument that reads it.

Besides the datasets in ``../shared/data`` it builds, outside the repository, two
pre-cropped sets the data folder does not have as such:

* ``ferplus``: the FER+ sample's 180 PNGs (48x48), in one folder;
* ``jaffe_tight``: every JAFFE face cut out at one fixed box (x 54-188, y 53-241, no
  detector involved) and resized to 143x181, the size of SFEW 2.0's aligned faces.

    python benchmarks/face_rates.py                                  # every dataset and detector
    python benchmarks/face_rates.py --datasets ck48 fer2013_folders --detectors mediapipe --eye-line
    python benchmarks/face_rates.py --option pad=none                 # any make_config keyword (KEY=VALUE)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ferdata.engines import InlineExecutor  # noqa: E402
from ferdata.faces import create_detector, geometry  # noqa: E402
from ferdata.faces.preprocess import make_config, preprocess  # noqa: E402
from ferdata.faces.table import read_faces  # noqa: E402
from ferdata.imageio import read_image  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402

#: name -> (adapter, folder under the data root or a builder below)
DATASETS = {
    "jaffe": ("jaffe", "jaffe"),
    "ck48": ("ckplus", "ckplus48"),
    "fer2013_csv": ("fer2013", "fer2013_csv/fer2013.csv"),
    "fer2013_folders": ("fer2013", "fer2013_folders"),
    "sfew": ("sfew", "sfew_anu"),
    "ferplus": ("folder", "@ferplus"),
    "jaffe_tight": ("folder", "@jaffe_tight"),
}
TIGHT_BOX = (54, 53, 188, 241)
TIGHT_SIZE = (143, 181)


def data_root(given: str | None) -> Path:
    for c in (given, os.environ.get("FERDATA_TEST_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    sys.exit("no data: pass --data DIR (the folder holding jaffe/, ckplus48/, ...)")


def build(kind: str, root: Path, work: Path) -> Path:
    """The pre-cropped sets made outside the repository (see the module docstring)."""
    from PIL import Image

    out = work / "sources" / kind / "neutral"
    out.mkdir(parents=True, exist_ok=True)
    if kind == "@ferplus":
        for f in sorted((root / "ferplus_sample").glob("*/*.png")):
            shutil.copy(f, out / f"{f.parent.name}_{f.name}")
    elif kind == "@jaffe_tight":
        for f in sorted((root / "jaffe").glob("*.tiff")):
            with Image.open(f) as im:
                im.convert("L").crop(TIGHT_BOX).resize(TIGHT_SIZE, Image.BILINEAR).save(out / (f.stem + ".png"))
    return out.parent


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


#: The instrument's own error, read on each rotated crop moved by a known amount: shifted by
#: one pixel (the reading should not change) and turned by exactly this many degrees.
KNOWN_TURN = 5.0


def eye_lines(manifest, config_hash: str, cfg) -> np.ndarray:
    """Per rotated crop: the eye line re-detected on it (signed degrees), on the crop shifted by
    one pixel, and on the crop turned by :data:`KNOWN_TURN` (NaN where no eyes were found).

    The last two say how far the re-detection itself can be trusted: a perfect alignment
    still reads as much as the instrument errs on a face of that size."""
    import cv2

    from ferdata.faces import preprocess as pp

    detector = create_detector(cfg.detector, **cfg.detector_options)
    # the crops are tight faces: search them as pre-cropped faces
    cfg = pp.make_config(cfg.detector, align=cfg.align, size=cfg.size, gray=cfg.gray, pre_cropped=True)

    def reading(image) -> float:
        face = pp.pick_face(pp.find_faces(detector, image, cfg), "largest")
        return float("nan") if face is None or not face.has_eyes else geometry.eye_angle(face.eye_left, face.eye_right)

    def moved(image, matrix):
        h, w = image.shape[:2]
        return cv2.warpAffine(image, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    out = []
    for row in read_faces(manifest, config_hash).to_pylist():
        if row["align"] != "rotate" or not row["crop_path"]:
            continue
        crop = read_image(manifest.dir / row["crop_path"])
        centre = ((crop.shape[1] - 1) / 2, (crop.shape[0] - 1) / 2)
        out.append((reading(crop), reading(moved(crop, geometry.translation(1.0, 1.0))),
                    reading(moved(crop, geometry.rotation(centre, -KNOWN_TURN)))))
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)


def p90(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, 90)) if len(values) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--detectors", nargs="+", default=["haar", "mtcnn", "mediapipe"])
    ap.add_argument("--align", default="rotate", choices=["none", "rotate", "spatial"])
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE passed to make_config (JSON values)")
    ap.add_argument("--eye-line", action="store_true", help="re-detect the eyes on the rotated crops")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    extra = {}
    for kv in args.option:
        k, _, v = kv.partition("=")
        try:
            extra[k] = json.loads(v)
        except json.JSONDecodeError:
            extra[k] = v
    root = data_root(args.data)
    work = Path(tempfile.mkdtemp(prefix="ferdata-rates-"))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  align={args.align} size={args.size} "
          f"options={extra}  (inline executor, one process)\n")
    header = (f"{'dataset':16} {'detector':10} {'n':>5} {'found':>7} {'rotated':>8} {'detect':>7} {'cpu/img':>8}"
              + (f" {'eye med':>7} {'eye p90':>7} {'<=2deg':>7} {'no eyes':>7} {'1px p90':>7} {'+5° p90':>7}"
                 if args.eye_line else ""))
    print(header + "\n" + "-" * len(header))
    rows = []
    try:
        for ds in args.datasets:
            adapter, folder = DATASETS[ds]
            source = build(folder, root, work) if folder.startswith("@") else root / folder
            if not source.exists():
                print(f"{ds:16} (not found: {source})")
                continue
            manifest = ingest(adapter, source, name=ds, manifests=work / "m", executor=InlineExecutor()).manifest
            for name in args.detectors:
                cfg = make_config(name, align=args.align, size=args.size, gray=True, **extra)
                c0 = cpu_seconds()
                t0 = time.perf_counter()
                r = preprocess(manifest, config=cfg, executor=InlineExecutor())
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                faces = read_faces(manifest, r.config_hash).to_pylist()
                ok = [f for f in faces if f["error"] is None]
                rotated = sum(f["align"] in ("rotate", "spatial") for f in ok)
                row = {"dataset": ds, "detector": name, "n": len(ok), "found": r.detection_rate,
                       "rotated": rotated / max(1, len(ok)), "detect_ms": r.stage_ms.get("detect_ms", 0.0),
                       "cpu_ms_per_image": 1000 * cpu / max(1, len(ok)), "wall_s": wall}
                line = (f"{ds:16} {name:10} {len(ok):5d} {r.detection_rate:7.1%} {row['rotated']:8.1%} "
                        f"{row['detect_ms']:7.1f} {row['cpu_ms_per_image']:8.1f}")
                if args.eye_line:
                    crop, shifted, turned = eye_lines(manifest, r.config_hash, cfg).T
                    good = np.abs(crop[~np.isnan(crop)])
                    row.update(eye_median=float(np.median(good)) if len(good) else None, eye_p90=p90(np.abs(crop)),
                               eye_within_2=float(np.mean(good <= 2.0)) if len(good) else None,
                               eye_missing=int(np.isnan(crop).sum()), eye_n=len(crop),
                               shift_p90=p90(np.abs(shifted - crop)),
                               turn_p90=p90(np.abs(turned - crop - KNOWN_TURN)))
                    line += (f" {row['eye_median'] or 0:7.2f} {row['eye_p90'] or 0:7.2f} "
                             f"{row['eye_within_2'] or 0:7.1%} {row['eye_missing']:7d} {row['shift_p90'] or 0:7.2f} "
                             f"{row['turn_p90'] or 0:7.2f}")
                print(line, flush=True)
                rows.append(row)
                shutil.rmtree(r.crops_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nfound: images with a face / readable images; rotated: crops whose eye line was levelled; "
          "detect: mean detect ms per image; cpu/img: CPU ms per image of the whole preprocess run "
          "(model load included)." + (" eye med/p90: |angle| of the eye line re-detected on the rotated "
                                      "crops; no eyes: crops where no eyes were re-detected; 1px p90 / +5° p90: the re-detection's "
                                      "own error, |change of the reading| when the crop is shifted by one pixel and "
                                      "|change - 5| when it is turned by exactly 5 degrees." if args.eye_line else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
