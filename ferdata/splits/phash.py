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
from ferdata.errors import DamagedError
from ferdata.manifest import Manifest, read_metadata, read_table, write_table
from ferdata.manifest.lock import manifest_lock
from ferdata.manifest.schema import PHASH_SCHEMA
from ferdata.manifest.tables import PHASH_TABLE
from ferdata.progress import NullProgress, ProgressSink

PHASH_PARAMS = {"algorithm": "dct-phash", "resize": 32, "low_frequencies": 8, "version": 1}


def phash_array(gray: np.ndarray) -> int:
    """The 64-bit pHash of a 2-D uint8 image, as an int."""
    return int(phash_batch([_small(gray)])[0])


def _small(gray: np.ndarray) -> np.ndarray:
    size = PHASH_PARAMS["resize"]
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)


def phash_batch(smalls: Sequence[np.ndarray]) -> np.ndarray:
    """pHashes (uint64) of resized grey images, the DCT and medians taken over the whole
    batch at once (about 3× cheaper per image than one call per image, same bits)."""
    low = PHASH_PARAMS["low_frequencies"]
    coeffs = dctn(np.stack(smalls), type=2, norm="ortho", axes=(1, 2))[:, :low, :low].reshape(len(smalls), -1)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def _hash_chunk(items: list[tuple[str, str]]) -> list[str | None]:
    smalls: list[np.ndarray] = []
    ok: list[int] = []
    for k, (_, path) in enumerate(items):
        try:
            smalls.append(_small(read_image(path, gray=True)))
            ok.append(k)
        except Exception:  # noqa: BLE001 - an undecodable file has no hash; the audit counts it
            pass
    out: list[str | None] = [None] * len(items)
    if smalls:
        for k, value in zip(ok, phash_batch(smalls)):
            out[k] = f"{int(value):016x}"
    return out


def perceptual_hashes(manifest: Manifest, image_ids: Sequence[str], paths: Sequence[str],
                      content_hashes: Sequence[str | None], *, executor: Executor | None = None,
                      progress: ProgressSink | None = None) -> dict[str, int | None]:
    """``{image_id: 64-bit pHash or None}`` for the given images, computing only those the
    cache lacks (or whose content changed) and rewriting the cache when it grew."""
    progress = progress or NullProgress()
    path = manifest.table_path(PHASH_TABLE)
    cached: dict[str, tuple[str | None, str | None]] = {}
    try:
        if path.exists() and read_metadata(path).get("params") == PHASH_PARAMS:
            table = read_table(path)  # column by column: a dict per row costs ~300 bytes each at 430k rows
            cached = dict(zip(table.column("image_id").to_pylist(),
                              zip(table.column("content_hash").to_pylist(), table.column("phash").to_pylist())))
            del table
    except DamagedError:
        cached = {}  # a damaged cache is only a cache: hash everything again and rewrite it
    missing = [(i, p, h) for i, p, h in zip(image_ids, paths, content_hashes) if i not in cached or cached[i][0] != h]
    if missing:
        # a pHash depends on the file's bytes only: copies (one content hash) are hashed once
        known = {h: v for h, v in cached.values() if h is not None}
        first: dict[str, str] = {}
        todo = []
        for i, p, h in missing:
            if h is not None and (h in known or h in first):
                continue
            if h is not None:
                first[h] = i
            todo.append((i, manifest.resolve(p).as_posix()))
        executor = executor or create_executor()
        progress.start("perceptual hashes", len(todo))
        try:
            results = list(executor.map_chunks(_hash_chunk, todo, progress=progress.advance)) if todo else []
        finally:
            progress.finish()
        computed = dict(zip((i for i, _ in todo), results))
        for h, i in first.items():
            known[h] = computed[i]
        for i, _, h in missing:
            cached[i] = (h, known[h] if h is not None else computed[i])
        ids = sorted(cached)
        table = pa.table({"image_id": ids, "content_hash": [cached[i][0] for i in ids],
                          "phash": [cached[i][1] for i in ids]}, schema=PHASH_SCHEMA)
        with manifest_lock(manifest.dir):
            write_table(path, table, {"table": "phash", "params": PHASH_PARAMS})
    return {i: (int(cached[i][1], 16) if cached[i][1] else None) for i in image_ids}


#: Up to this many distinct hashes every pair of them is compared (blocked); above it,
#: multi-index hashing.
EXHAUSTIVE_LIMIT = 4096
#: Candidate pairs examined at once: bounds the search's working memory (about 60 bytes each).
CANDIDATE_BLOCK = 1 << 21


def near_pairs(hashes: np.ndarray, valid: np.ndarray, threshold: int, *, block: int = 256,
               exhaustive_limit: int = EXHAUSTIVE_LIMIT, exclude: np.ndarray | None = None) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``threshold``
    bits (both valid), as an ``(n, 2)`` array, sorted.

    ``exclude`` (one integer code per image, e.g. a content-hash code) drops the pairs of
    images that share a code without ever making them: exact copies are the audit's other
    count, and a set with many copies of each file would otherwise hold their pairs.

    The search runs on the distinct hash values (copies cost nothing). Few of them: every
    pair is compared in blocks. Many: multi-index hashing (Norouzi et al., 2012), which cuts
    the 64 bits into ``s`` substrings; two hashes within ``threshold`` bits differ in at
    most ``threshold // s`` bits on at least one substring (pigeonhole), so each hash looks
    up, per substring, the table entries within that radius of its own substring. ``s`` is
    picked for the number of distinct hashes so the expected candidates per hash stay
    small, which makes the search near-linear; candidates are examined
    :data:`CANDIDATE_BLOCK` at a time, which bounds its memory beside the answer itself.
    """
    idx = np.flatnonzero(valid)
    h = hashes[idx].astype(np.uint64)
    codes = np.arange(len(h), dtype=np.int64) if exclude is None else np.asarray(exclude)[idx].astype(np.int64)
    # items: distinct (hash, code); images of one item never pair (same code), except when
    # exclude is None, where every image is its own item
    item_keys, item_of = np.unique(np.stack([h.view(np.int64), codes], axis=1), axis=0, return_inverse=True)
    item_of = item_of.ravel()
    item_hash = item_keys[:, 0].view(np.uint64)
    item_code = item_keys[:, 1]
    values, value_of_item = np.unique(item_hash, return_inverse=True)
    if len(values) <= exhaustive_limit or threshold >= 64:
        value_pairs = _exhaustive_pairs(values, threshold, block)
    else:
        value_pairs = _multi_index_pairs(values, threshold)
    item_pairs = _item_pairs(value_of_item.ravel(), value_pairs, item_code)
    local = _expand(item_pairs, item_of)
    if len(local) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = idx[local]
    pairs.sort(axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _exhaustive_pairs(h: np.ndarray, threshold: int, block: int) -> np.ndarray:
    """Pairs ``i < j`` of distinct values within ``threshold`` bits, every pair compared."""
    found: list[np.ndarray] = []
    for start in range(0, len(h), block):
        stop = min(start + block, len(h))
        dist = np.bitwise_count(h[start:stop, None] ^ h[None, start:])
        rows, cols = np.nonzero(dist <= threshold)
        cols = cols + start
        keep = cols > rows + start
        if keep.any():
            found.append(np.stack([rows[keep] + start, cols[keep]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def _ball(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``radius`` bits set."""
    from itertools import combinations

    masks = [sum(1 << b for b in bits) for r in range(radius + 1) for bits in combinations(range(width), r)]
    return np.array(masks, dtype=np.uint64)


def substring_plan(n_values: int, threshold: int) -> tuple[np.ndarray, int]:
    """Substring edges and search radius with the fewest expected operations per hash:
    ``s`` lookups of ``ball(64/s, t//s)`` masks, each finding ``n / 2**(64/s)`` entries."""
    from math import comb

    best: tuple[float, int] = (float("inf"), 1)
    for s in range(1, min(threshold + 1, 64) + 1):
        width_min, width_max, radius = 64 // s, -(-64 // s), threshold // s
        ball = sum(comb(width_max, k) for k in range(radius + 1))
        if ball > 1 << 16:
            continue
        cost = s * ball * (1.0 + n_values / 2.0 ** width_min)
        best = min(best, (cost, s))
    s = best[1]
    return np.linspace(0, 64, s + 1).round().astype(int), threshold // s


def _multi_index_pairs(h: np.ndarray, threshold: int) -> np.ndarray:
    """Pairs ``i < j`` of distinct values ``h`` within ``threshold`` bits (see
    :func:`near_pairs`). A pair is kept only at the first substring that finds it, so no
    pair is held twice."""
    edges, radius = substring_plan(len(h), threshold)
    subs = list(zip(edges[:-1], edges[1:]))
    masks = [np.uint64((1 << (hi - lo)) - 1) for lo, hi in subs]
    found: list[np.ndarray] = []
    for c, (lo, hi) in enumerate(subs):
        key = (h >> np.uint64(lo)) & masks[c]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        for flip in _ball(hi - lo, radius):
            query = key ^ flip
            left = np.searchsorted(sorted_key, query, "left")
            count = np.searchsorted(sorted_key, query, "right") - left
            hits = np.flatnonzero(count)
            if len(hits) == 0:
                continue
            ends = np.cumsum(count[hits])
            first = 0
            while first < len(hits):  # query blocks of at most CANDIDATE_BLOCK candidates
                base = ends[first - 1] if first else 0
                last = max(first + 1, int(np.searchsorted(ends, base + CANDIDATE_BLOCK, "right")))
                qs = hits[first:last]
                n = count[qs]
                i = np.repeat(qs, n)
                offset = np.arange(len(i)) - np.repeat(np.cumsum(n) - n, n)
                j = order[left[i] + offset]
                keep = j > i
                i, j = i[keep], j[keep]
                x = h[i] ^ h[j]
                ok = np.bitwise_count(x) <= threshold
                for e in range(c):  # found by an earlier substring already
                    ok &= np.bitwise_count((x >> np.uint64(subs[e][0])) & masks[e]) > radius
                if ok.any():
                    found.append(np.stack([i[ok], j[ok]], axis=1))
                first = last
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 2), dtype=np.int64)


def _groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(members sorted by label, start of each label's run, its length) for labels 0..k-1."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
    starts = np.cumsum(counts) - counts
    return order, starts, counts


def _item_pairs(value_of_item: np.ndarray, value_pairs: np.ndarray, item_code: np.ndarray) -> np.ndarray:
    """Item pairs: items of one value with each other, and the items of paired values."""
    members, starts, counts = _groups(value_of_item)
    out: list[np.ndarray] = []
    for g in np.unique(counts[counts > 1]):  # same hash, different items
        firsts = starts[counts == g]
        a, b = np.triu_indices(int(g), 1)
        out.append(np.stack([members[(firsts[:, None] + a).ravel()], members[(firsts[:, None] + b).ravel()]], axis=1))
    if len(value_pairs):
        out.append(_product(value_pairs, members, starts, counts))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(out)
    return pairs[item_code[pairs[:, 0]] != item_code[pairs[:, 1]]]


def _expand(item_pairs: np.ndarray, item_of: np.ndarray) -> np.ndarray:
    """Image pairs: every image of one item with every image of the other."""
    if len(item_pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    members, starts, counts = _groups(item_of)
    return _product(item_pairs, members, starts, counts)


def _product(pairs: np.ndarray, members: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For each group pair (a, b): every member of group a with every member of group b."""
    na, nb = counts[pairs[:, 0]], counts[pairs[:, 1]]
    n = na * nb
    k = np.repeat(np.arange(len(pairs)), n)
    offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    first = members[starts[pairs[k, 0]] + offset // nb[k]]
    second = members[starts[pairs[k, 1]] + offset % nb[k]]
    return np.stack([first, second], axis=1)
