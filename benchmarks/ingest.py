"""Ingest speed against the floor of hashing the same files with ``sha256sum``.

    .venv/bin/python benchmarks/ingest.py                 # 35,887 48x48 JPEGs, like FER-2013
    .venv/bin/python benchmarks/ingest.py --n 5000
    .venv/bin/python benchmarks/ingest.py --folder ~/data/fer2013_folders --dataset fer2013

Both read the same files in the same run from a warm page cache; each is timed
``--repeat`` times and the best is kept. Prints the seconds, files/s and the ratio
(goal: ingest <= 2x sha256sum on a 2-core machine).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def write_jpegs(root: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    # Smooth random faces-sized images compress like real photos (a few hundred bytes to ~2 KB).
    base = rng.integers(0, 256, size=(64, side // 4 + 1, side // 4 + 1), dtype=np.uint8)
    for d in LABELS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = base[i % 64] ^ np.uint8(i % 251)
        arr = np.kron(small, np.ones((4, 4), np.uint8))[:side, :side]
        Image.fromarray(arr, "L").save(root / LABELS[i % 7] / f"Training_{i:06d}.jpg", quality=90)


def time_sha256sum(root: Path) -> float:
    t = time.perf_counter()
    subprocess.run(f"find '{root}' -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True)
    return time.perf_counter() - t


def time_ingest(dataset: str, root: Path, manifests: Path, workers: int | None) -> tuple[float, int]:
    from ferdata.ingest import ingest

    t = time.perf_counter()
    res = ingest(dataset, root, manifests=manifests, workers=workers)
    return time.perf_counter() - t, res.n_rows


def time_cli(dataset: str, root: Path, manifests: Path) -> float:
    exe = Path(sys.executable).with_name("ferdata")
    t = time.perf_counter()
    subprocess.run([str(exe), "ingest", dataset, str(root), "--manifests", str(manifests)], check=True,
                   capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=35887)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--folder", type=Path, help="time an existing dataset folder instead")
    ap.add_argument("--dataset", default="folder", help="adapter for --folder (default: folder)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ferdata-bench-"))
    try:
        root = args.folder
        if root is None:
            root = tmp / "images"
            t = time.perf_counter()
            write_jpegs(root, args.n, args.size)
            print(f"wrote {args.n} {args.size}x{args.size} JPEGs in {time.perf_counter() - t:.1f}s")
        files = sum(1 for p in root.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        time_sha256sum(root)  # warm the page cache for both
        sha, ing, cli, rows = [], [], [], 0
        for i in range(args.repeat):
            sha.append(time_sha256sum(root))
            secs, rows = time_ingest(args.dataset, root, tmp / f"m{i}", args.workers)
            ing.append(secs)
        cli.append(time_cli(args.dataset, root, tmp / "cli"))
        best_sha, best_ing = min(sha), min(ing)
        print(f"files: {files:,} ({size / 1e6:.1f} MB), rows ingested: {rows:,}")
        print(f"sha256sum floor : {best_sha:6.2f} s  ({files / best_sha:,.0f} files/s)")
        print(f"ferdata ingest  : {best_ing:6.2f} s  ({files / best_ing:,.0f} files/s)  [library call]")
        print(f"ferdata CLI     : {min(cli):6.2f} s  (whole process: start-up, ingest, summary)")
        print(f"ratio ingest / sha256sum: {best_ing / best_sha:.2f}  (goal <= 2.0)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
