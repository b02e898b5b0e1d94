"""The measurement behind the split audit's pixel check (``ferdata.splits.confirm``).

For JAFFE, CK+48 and FER-2013 (the first ``--fer-images`` Training images of
``fer2013_full``) it finds every pair of images whose 64-bit pHashes differ in at most
``--bits`` bits and that are not exact copies (the audit's near-duplicate candidates), scores
each pair with :func:`ferdata.splits.confirm.similarity`, and prints the score's
distribution per kind of pair, the kinds the dataset's own names tell apart:

* JAFFE: two different women (``TM.HA2.181`` ~ ``YM.FE2.68``): look-alikes, never the same
  picture; and one woman's photographs of one session;
* CK+48: frames of one sequence (``S010_004_*``: neighbouring video frames, the leakage the
  audit is for) and frames of two sequences;
* FER-2013: no names to go by; ``--sheet FILE`` draws the lowest-scoring pairs side by side
  to look at (they are re-cropped and re-encoded copies of one photograph).

The default threshold must keep every same-sequence and FER-2013 pair and drop JAFFE's
different women; the timings show what the check costs per pair.

    .venv/bin/python benchmarks/near_duplicates.py
    .venv/bin/python benchmarks/near_duplicates.py --fer-images 12000 --sheet /tmp/fer_pairs.png
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from ferdata.imageio import read_image  # noqa: E402
from ferdata.splits.confirm import DEFAULT_NEAR_SIMILARITY, similarity, thumbnail  # noqa: E402
from ferdata.splits.phash import phash_array  # noqa: E402


def data_root(given: str | None) -> Path:
    for c in (given, os.environ.get("FERDATA_TEST_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if c and Path(c).is_dir():
            return Path(c)
    sys.exit("no data: pass --data DIR (the folder holding jaffe/, ckplus48/, fer2013_full/)")


def candidates(files: list[Path], bits: int) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
    """Index pairs within ``bits`` pHash bits, not byte-identical, and the grey images."""
    images = [read_image(f, gray=True) for f in files]
    hashes = np.array([phash_array(g) for g in images], dtype=np.uint64)
    blobs = [f.read_bytes() for f in files]
    pairs = []
    for i in range(len(files)):
        x = hashes[i + 1 :] ^ hashes[i]
        d = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        pairs += [(i, i + 1 + int(j)) for j in np.flatnonzero(d <= bits) if blobs[i] != blobs[i + 1 + int(j)]]
    return pairs, images


def kind(dataset: str, a: str, b: str) -> str:
    if dataset == "jaffe":
        return "one woman" if a.split(".")[0] == b.split(".")[0] else "two women"
    if dataset == "ck48":
        return "one sequence" if a[:8] == b[:8] else "two sequences"
    return "all pairs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--fer-images", type=int, default=6000)
    ap.add_argument("--sheet", help="write the 12 lowest-scoring FER-2013 pairs side by side to this PNG")
    args = ap.parse_args()
    root = data_root(args.data)
    sets = {
        "jaffe": sorted((root / "jaffe").glob("*.tiff")),
        "ck48": sorted((root / "ckplus48").rglob("*.png")),
        "fer2013": sorted((root / "fer2013_full" / "train").rglob("*.jpg"))[: args.fer_images],
    }
    print(f"load average {os.getloadavg()[0]:.2f}; threshold {DEFAULT_NEAR_SIMILARITY}; pHash within {args.bits} bits, "
          "not exact copies\n")
    print(f"{'dataset':8} {'pairs':>13} {'n':>5} {'min':>6} {'p1':>6} {'p5':>6} {'median':>6} {'max':>6} "
          f"{'>= thr':>7} {'ms/pair':>7}")
    for ds, files in sets.items():
        if not files:
            print(f"{ds:8} (not found)")
            continue
        pairs, images = candidates(files, args.bits)
        thumbs = [thumbnail(g) for g in images]
        t0 = time.perf_counter()
        scores = [similarity(thumbs[i], thumbs[j]) for i, j in pairs]
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(pairs))
        by_kind: dict[str, list[float]] = {}
        for (i, j), s in zip(pairs, scores):
            by_kind.setdefault(kind(ds, files[i].name, files[j].name), []).append(s)
        for k, v in sorted(by_kind.items()):
            q = np.percentile(v, [0, 1, 5, 50, 100])
            print(f"{ds:8} {k:>13} {len(v):5d} {q[0]:6.3f} {q[1]:6.3f} {q[2]:6.3f} {q[3]:6.3f} {q[4]:6.3f} "
                  f"{np.mean(np.array(v) >= DEFAULT_NEAR_SIMILARITY):7.1%} {ms:7.2f}", flush=True)
        if ds == "fer2013" and args.sheet and pairs:
            from PIL import Image

            low = sorted(range(len(pairs)), key=lambda k: scores[k])[:12]
            sheet = Image.new("L", (2 * 2 * 48 + 16, 6 * 48), 255)
            for n, k in enumerate(low):
                i, j = pairs[k]
                x, y = (n % 2) * (2 * 48 + 16), (n // 2) * 48
                sheet.paste(Image.fromarray(images[i]).resize((48, 48)), (x, y))
                sheet.paste(Image.fromarray(images[j]).resize((48, 48)), (x + 48, y))
            sheet.resize((sheet.width * 3, sheet.height * 3)).save(args.sheet)
            print(f"wrote {args.sheet}: the 12 lowest-scoring FER-2013 pairs (scores "
                  f"{', '.join(f'{scores[k]:.3f}' for k in low)})")
    print("\nmin..max: the pair scores of each kind; >= thr: the share the audit keeps as near-duplicates. "
          "Look-alikes (two women) must fall below the threshold, neighbouring frames (one sequence) and "
          "FER-2013's copies above it.")


if __name__ == "__main__":
    main()
