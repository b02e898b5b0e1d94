"""A pixel check behind the pHash: is a near-duplicate candidate really the same picture?

A 64-bit pHash keeps only the coarse layout of a face, so two people photographed in the
same pose against the same backdrop can differ in 4 bits or fewer (JAFFE's TM.HA2.181 and
YM.FE2.68 are two women). A near-duplicate the audit reports must be the same picture:
a re-encoded or re-cropped copy, a neighbouring video frame. Each candidate pair's grey
64×64 thumbnails are compared by normalised correlation, allowing the shifts and rescales
that re-cropping brings: the inner 80 % of one thumbnail, at five scales (0.9 to 1.1), is
slid over the other (``cv2.matchTemplate``), both ways, and the best score counts.

Measured on the real data (``benchmarks/near_duplicates.py``), over the pairs within 4 bits
that are not exact copies: FER-2013's re-cropped copies score 0.936 and more, CK+48's
frames of one sequence 0.937 and more, JAFFE's pairs of different women 0.891 at most; hence
:data:`DEFAULT_NEAR_SIMILARITY`.

The check runs once per pair of distinct contents (a set of hard-linked or copied files
costs nothing more) and decodes only the images in a candidate pair, on the executor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferdata.engines import Executor
from ferdata.imageio import read_image
from ferdata.progress import NullProgress, ProgressSink

DEFAULT_NEAR_SIMILARITY = 0.92
"""A candidate scoring at least this is a near-duplicate (see the module docstring)."""
THUMBNAIL = 64
SCALES = (0.9, 0.95, 1.0, 1.05, 1.1)
INNER = 0.8


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """The grey ``THUMBNAIL``² float32 thumbnail the check compares."""
    import cv2

    return cv2.resize(gray.astype(np.float32), (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)


def _score(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """Best normalised correlation of ``b``'s inner part, rescaled, over every position in ``a``."""
    import cv2

    side = int(round(THUMBNAIL * scale))
    scaled = b if side == THUMBNAIL else cv2.resize(b, (side, side), interpolation=cv2.INTER_AREA)
    margin = int(round(side * (1 - INNER) / 2))
    inner = scaled[margin : side - margin, margin : side - margin]
    if inner.shape[0] >= THUMBNAIL or float(inner.std()) == 0.0:
        return -1.0
    return float(cv2.matchTemplate(a, inner, cv2.TM_CCOEFF_NORMED).max())


def similarity(a: np.ndarray, b: np.ndarray, threshold: float | None = None) -> float:
    """Shift- and scale-tolerant normalised correlation of two thumbnails, -1 to 1: the
    best over both directions and every scale. With ``threshold`` it returns as soon as a
    score reaches it (most real copies do at the first, unscaled try)."""
    best = -1.0
    for scale in sorted(SCALES, key=lambda s: abs(s - 1.0)):
        for x, y in ((a, b), (b, a)):
            best = max(best, _score(x, y, scale))
            if threshold is not None and best >= threshold:
                return best
    return best


def _thumbnail_chunk(paths: list[str]) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for path in paths:
        try:
            out.append(thumbnail(read_image(path, gray=True)))
        except Exception:  # noqa: BLE001 - an image that no longer decodes cannot be checked
            out.append(None)
    return out


def confirm_pairs(pairs: np.ndarray, paths: Sequence[str], codes: np.ndarray, threshold: float, *,
                  executor: Executor, progress: ProgressSink | None = None) -> np.ndarray:
    """The rows of ``pairs`` (index pairs into ``paths``) whose pictures score at least
    ``threshold``; ``codes`` are content codes (equal for identical files). A pair whose
    images cannot be decoded is kept: the check only ever removes a candidate it saw."""
    if threshold <= 0 or len(pairs) == 0:
        return pairs
    progress = progress or NullProgress()
    a, b = codes[pairs[:, 0]], codes[pairs[:, 1]]
    keys = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    needed = np.unique(unique)
    known, first = np.unique(codes, return_index=True)  # one file per content
    rows = first[np.searchsorted(known, needed)].tolist()
    progress.start("checking near-duplicates", len(rows))
    try:
        thumbs = dict(zip(needed.tolist(), executor.map_chunks(_thumbnail_chunk, [paths[r] for r in rows],
                                                               progress=progress.advance), strict=True))
    finally:
        progress.finish()
    keep_key = np.array([thumbs[x] is None or thumbs[y] is None
                         or similarity(thumbs[x], thumbs[y], threshold) >= threshold
                         for x, y in unique.tolist()], dtype=bool)
    return pairs[keep_key[inverse.ravel()]]
