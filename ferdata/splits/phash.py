"""Perceptual hashes (DCT pHash) of a manifest's images, cached beside it.

The leakage audit needs to see that two *different* files show nearly the same picture
(CK+'s consecutive frames, FER-2013's re-encoded duplicates). A 64-bit pHash survives
re-encoding, small shifts and brightness changes: the image is decoded to grey, resized to
32×32, transformed with a 2-D DCT, and the 8×8 lowest frequencies are thresholded at their
median. Hashes are computed once per image on the executor and kept in
``<manifest>/phash.parquet`` (image_id, content_hash, phash as 16 hex digits); a row is
reused while the image's content hash is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from PIL import Image
from scipy.fft import dctn

from ferdata.engines import Executor, create_executor
from ferdata.imageio import read_image
from ferdata.manifest import Manifest, read_metadata, read_table, write_table
from ferdata.progress import NullProgress, ProgressSink

PHASH_TABLE = "phash.parquet"
PHASH_PARAMS = {"algorithm": "dct-phash", "resize": 32, "low_frequencies": 8, "version": 1}
PHASH_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("content_hash", pa.string()),
    pa.field("phash", pa.string()),
])


def phash_array(gray: np.ndarray) -> int:
    """The 64-bit pHash of a 2-D uint8 image, as an int."""
    size, low = PHASH_PARAMS["resize"], PHASH_PARAMS["low_frequencies"]
    small = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    coeffs = dctn(small, type=2, norm="ortho")[:low, :low]
    bits = (coeffs > np.median(coeffs)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _hash_chunk(items: list[tuple[str, str]]) -> list[str | None]:
    out: list[str | None] = []
    for _, path in items:
        try:
            out.append(f"{phash_array(read_image(path, gray=True)):016x}")
        except Exception:  # noqa: BLE001 - an undecodable file has no hash; the audit counts it
            out.append(None)
    return out


def perceptual_hashes(manifest: Manifest, image_ids: Sequence[str], paths: Sequence[str],
                      content_hashes: Sequence[str | None], *, executor: Executor | None = None,
                      progress: ProgressSink | None = None) -> dict[str, int | None]:
    """``{image_id: 64-bit pHash or None}`` for the given images, computing only those the
    cache lacks (or whose content changed) and rewriting the cache when it grew."""
    progress = progress or NullProgress()
    path = manifest.table_path(PHASH_TABLE)
    cached: dict[str, tuple[str | None, str | None]] = {}
    if path.exists() and read_metadata(path).get("params") == PHASH_PARAMS:
        for row in read_table(path).to_pylist():
            cached[row["image_id"]] = (row["content_hash"], row["phash"])
    todo = [(i, manifest.resolve(p).as_posix()) for i, p, h in zip(image_ids, paths, content_hashes)
            if i not in cached or cached[i][0] != h]
    if todo:
        executor = executor or create_executor()
        progress.start("perceptual hashes", len(todo))
        try:
            results = list(executor.map_chunks(_hash_chunk, todo, progress=progress.advance))
        finally:
            progress.finish()
        by_id = dict(zip(image_ids, content_hashes))
        for (image_id, _), value in zip(todo, results):
            cached[image_id] = (by_id[image_id], value)
        ids = sorted(cached)
        table = pa.table({"image_id": ids, "content_hash": [cached[i][0] for i in ids],
                          "phash": [cached[i][1] for i in ids]}, schema=PHASH_SCHEMA)
        write_table(path, table, {"table": "phash", "params": PHASH_PARAMS})
    return {i: (int(cached[i][1], 16) if cached[i][1] else None) for i in image_ids}


#: Up to this many hashes every pair is compared (blocked); above it, multi-index hashing.
EXHAUSTIVE_LIMIT = 20_000


def near_pairs(hashes: np.ndarray, valid: np.ndarray, threshold: int, *, block: int = 256,
               exhaustive_limit: int = EXHAUSTIVE_LIMIT) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``threshold``
    bits (both valid), as an ``(n, 2)`` array, sorted.

    Small sets compare every pair in blocks (memory ``block × n``). Large ones use
    multi-index hashing: cut the 64 bits into ``threshold + 1`` chunks; two hashes within
    ``threshold`` bits agree exactly on at least one chunk (pigeonhole), so only hashes
    sharing a chunk value are compared.
    """
    idx = np.flatnonzero(valid)
    h = hashes[idx].astype(np.uint64)
    if len(h) <= exhaustive_limit or threshold >= 64:
        found: list[np.ndarray] = []
        for start in range(0, len(h), block):
            stop = min(start + block, len(h))
            dist = np.bitwise_count(h[start:stop, None] ^ h[None, start:])
            rows, cols = np.nonzero(dist <= threshold)
            cols = cols + start
            keep = cols > rows + start
            if keep.any():
                found.append(np.stack([rows[keep] + start, cols[keep]], axis=1))
        local = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    else:
        local = _multi_index_pairs(h, threshold)
    if len(local) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = idx[local]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _multi_index_pairs(h: np.ndarray, threshold: int) -> np.ndarray:
    n_chunks = threshold + 1
    edges = np.linspace(0, 64, n_chunks + 1).astype(int)
    found: set[tuple[int, int]] = set()
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = (h >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for a, b in zip(starts, ends):
            if b - a < 2:
                continue
            members = np.sort(order[a:b])
            dist = np.bitwise_count(h[members, None] ^ h[None, members])
            rows, cols = np.nonzero(np.triu(dist <= threshold, k=1))
            found.update(zip(members[rows].tolist(), members[cols].tolist()))
    return np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
