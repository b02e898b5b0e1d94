"""CPU per image of a whole ``ferdata preprocess`` run over ~700 full 720×576 movie frames,
start-up included (the goal: at most 15 ms per image for MediaPipe + CLAHE + spatial + 224 px).

The SFEW sample has 35 frames, so the set is built outside the repository from them: each
frame is used ``--frames / 35`` times, every copy changed a little (mirrored every other
time, brightness and contrast scaled, shifted by a few pixels, a little noise), so no two
files are the same. The run is the CLI itself in a child process (``--workers``, default
the number of cores); its CPU is the children's user + system time from ``getrusage``,
which counts the interpreter start, every worker's model load, decode, detection, face
mesh, CLAHE, warp and PNG writes.

    python benchmarks/preprocess_frames.py                       # 700 frames, mediapipe, CLAHE, spatial, 224 px
    python benchmarks/preprocess_frames.py --frames 350 --workers 1 --detector mtcnn
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ferdata.engines import InlineExecutor  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402


def data_root(given: str | None) -> Path:
    for c in (given, os.environ.get("FERDATA_TEST_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    sys.exit("no data: pass --data DIR (the folder holding sfew_anu/)")


def build_frames(root: Path, out: Path, n: int, seed: int = 0) -> int:
    """``n`` varied copies of the SFEW sample's frames under ``out/<emotion>/``."""
    from PIL import Image

    frames = sorted((root / "sfew_anu" / "Images").glob("*/*.png"))
    if not frames:
        sys.exit(f"no SFEW frames under {root / 'sfew_anu' / 'Images'}")
    rng = np.random.default_rng(seed)
    originals = [(f.parent.name.lower(), np.asarray(Image.open(f).convert("RGB"))) for f in frames]
    for k in range(n):
        label, img = originals[k % len(originals)]
        copy = k // len(originals)
        x = img[:, ::-1] if copy % 2 else img
        x = x.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
        x = np.roll(x, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        x = np.clip(x + rng.normal(0, 2.0, x.shape), 0, 255).astype(np.uint8)
        (out / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(out / label / f"frame_{k:04d}.png", compress_level=1)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--frames", type=int, default=700)
    ap.add_argument("--detector", default="mediapipe")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--options", default="--clahe --align spatial --size 224",
                    help="the rest of the preprocess command line")
    ap.add_argument("--keep", help="build the frames into this folder and keep them")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="ferdata-frames-"))
    try:
        src = work / "frames"
        if not src.is_dir():
            t0 = time.perf_counter()
            build_frames(data_root(args.data), src, args.frames)
            print(f"built {args.frames} frames in {time.perf_counter() - t0:.0f} s under {src}")
        manifest = ingest("folder", src, name="frames", manifests=work / "m", executor=InlineExecutor()).manifest
        n = manifest.images(columns=["image_id"]).num_rows
        cmd = [sys.executable, "-m", "ferdata", "preprocess", "frames", "--manifests", str(work / "m"),
               "--detector", args.detector, "--workers", str(args.workers), *args.options.split()]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            sys.exit(f"preprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        from ferdata.faces.table import read_faces

        rows = read_faces(manifest).to_pylist()
        found = sum(r["face_found"] for r in rows)
        print(" ".join(cmd[1:]))
        print(f"frames: {n}  faces found: {found} ({found / n:.1%})  workers: {args.workers}  "
              f"load average: {load0:.2f} -> {os.getloadavg()[0]:.2f}")
        print(f"CPU: {cpu:.1f} s = {1000 * cpu / n:.1f} ms per image (start-up included; goal <= 15 ms)  "
              f"wall: {wall:.1f} s = {1000 * wall / n:.1f} ms per image")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
