"""Speed of LPQ and PHOG per face, and how far our Canny puts PHOG from the oracle.

    .venv/bin/python benchmarks/features.py
    .venv/bin/python benchmarks/features.py --batch 64 --repeat 20
    .venv/bin/python benchmarks/features.py --faces ../shared/data/jaffe --oracle ../shared/oracles/lpq_phog

Faces are real JAFFE images (``--faces``; default ``../shared/data/jaffe``, else smooth
synthetic faces) resized to 64×64 and 224×224. Each configuration is timed ``--repeat``
times in one process with one BLAS and one OpenCV thread and the best run is kept;
``--cpu-time`` uses the process CPU clock instead of the wall clock, which is steadier on
a busy shared machine. "single" describes one face per call, "batched" ``--batch`` faces per call; both
print milliseconds per face. Descriptors: LPQ (window 7, decorrelated) and PHOG (8 bins,
360°, L = 3, OpenCV Canny included), in the default (faithful) mode; LPQ's
matlab_compatible mode (``convolve2d`` per image) is timed too. The goal is at least 20×
faster than the original MATLAB code under Octave on the same inputs, measured
separately.

With ``--oracle`` it also prints, for each edge detector, the L1 and max-abs distance
between PHOG with that detector and the oracle's PHOG (which used Octave's Canny), and
the share of Octave's edge pixels it finds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferdata.features import create_descriptor  # noqa: E402
from ferdata.features.edges import detect_edges, list_edge_detectors  # noqa: E402
from ferdata.features.phog import phog  # noqa: E402


def load_faces(folder: Path | None, n: int, side: int) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tiff", ".tif", ".png")) if folder else []
    if files:
        faces = [np.asarray(Image.open(files[i % len(files)]).convert("L").resize((side, side), Image.BILINEAR))
                 for i in range(n)]
        return np.stack(faces)
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = ndi.gaussian_filter(rng.normal(size=(side, side)), side / 40)
        out.append(np.clip((img - img.min()) / np.ptp(img) * 220 + 15, 0, 255).astype(np.uint8))
    return np.stack(out)


def best_ms(fn, repeat: int, clock=time.perf_counter) -> float:
    fn()  # warm-up (imports, caches, workspaces)
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best * 1000


def speed(faces_dir: Path | None, batch: int, repeat: int, clock) -> None:
    lpq = create_descriptor("lpq", window=7, decorr=True)
    lpq_matlab = create_descriptor("lpq", window=7, decorr=True, matlab_compatible=True)
    phog_d = create_descriptor("phog", bins=8, angle=360, levels=3)
    print(f"{'descriptor':<34} {'size':>8} {'single ms/face':>15} {'batched ms/face':>16}")
    for side in (64, 224):
        faces = load_faces(faces_dir, batch, side)
        for label, d in (("LPQ(7, decorrelated)", lpq), ("LPQ(7, decorr., matlab_compatible)", lpq_matlab),
                         ("PHOG(8 bins, 360°, L=3) + Canny", phog_d)):
            single = best_ms(lambda: [d.compute(faces[i:i + 1]) for i in range(min(8, batch))], repeat,
                             clock) / min(8, batch)
            batched = best_ms(lambda: d.compute(faces), max(3, repeat // 4), clock) / batch
            print(f"{label:<34} {side:>4}x{side:<3} {single:>15.3f} {batched:>16.3f}")
        edges_ms = best_ms(lambda: detect_edges(faces), max(3, repeat // 4), clock) / batch
        print(f"{'  of which Canny (OpenCV)':<34} {side:>4}x{side:<3} {'':>15} {edges_ms:>16.3f}")


def canny_distance(oracle: Path) -> None:
    import csv

    rows = list(csv.DictReader(open(oracle / "phog" / "phog.csv", newline="")))
    print(f"\nPHOG with our Canny vs the oracle (Octave's Canny), {len(rows)} configurations, matlab_compatible")
    print(f"{'edge detector':<16} {'mean L1':>9} {'max L1':>9} {'max |Δ|':>9} {'Octave edges found':>19} {'extra edges':>12}")
    for detector in list_edge_detectors():
        l1, mx, found, extra = [], [], [], []
        for r in rows:
            img = np.asarray(Image.open(oracle / "inputs" / f"{r['image']}.png"))
            ref_edges = np.asarray(Image.open(oracle / "phog" / "edges" / f"{r['image']}__canny.png")) > 0
            ref = np.array([float(r[f"d{k}"]) for k in range(int(r["dim"]))])
            got = phog(img, int(r["bin"]), int(r["angle"]), int(r["L"]), edge_detector=detector,
                       matlab_compatible=True)[0]
            l1.append(np.abs(got - ref).sum())
            mx.append(np.abs(got - ref).max())
            ours = detect_edges(img, detector)[0]
            found.append((ours & ref_edges).sum() / ref_edges.sum())
            extra.append((ours & ~ref_edges).sum() / ref_edges.sum())
        print(f"{detector:<16} {np.mean(l1):>9.4f} {np.max(l1):>9.4f} {np.max(mx):>9.4f} "
              f"{np.mean(found):>18.1%} {np.mean(extra):>12.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "jaffe")
    parser.add_argument("--oracle", type=Path, default=ROOT.parent / "shared" / "oracles" / "lpq_phog")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process CPU clock (robust on a busy shared machine) instead of the wall clock")
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)  # one core per process, as in the executor's workers
    faces = args.faces if args.faces.is_dir() else None
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"faces: {faces or 'synthetic'}; best of {args.repeat} runs, one thread (BLAS and OpenCV), "
          f"{'CPU' if args.cpu_time else 'wall'} clock")
    with threadpool_limits(1):
        speed(faces, args.batch, args.repeat, clock)
    if (args.oracle / "phog" / "phog.csv").is_file():
        canny_distance(args.oracle)
    else:
        print(f"\n(no oracle at {args.oracle}: Canny distance skipped)")


if __name__ == "__main__":
    main()
