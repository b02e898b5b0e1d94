"""The DCT perceptual hash, its cache, and the near-pair search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor
from ferdata.splits import phash as phash_module
from ferdata.manifest.tables import PHASH_TABLE
from ferdata.splits.phash import near_pairs, perceptual_hashes, phash_array
from tests.splits.fakes import people


def _face(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64]
    blobs = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 60.0) for cx, cy in rng.integers(8, 56, (4, 2)))
    return (blobs / blobs.max() * 255).astype(np.uint8)


def _bits(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def test_phash_survives_reencoding_and_brightness_but_tells_pictures_apart():
    img = _face(0)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=70)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    brighter = np.clip(img.astype(int) + 10, 0, 255).astype(np.uint8)
    h = phash_array(img)
    assert _bits(h, phash_array(jpeg)) <= 4
    assert _bits(h, phash_array(brighter)) <= 4
    assert min(_bits(h, phash_array(_face(s))) for s in range(1, 6)) > 8
    assert 0 <= h < 2 ** 64


@pytest.mark.parametrize("exhaustive_limit", [10_000, 0])  # blocked all-pairs, multi-index hashing
def test_near_pairs_match_brute_force(exhaustive_limit):
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2 ** 63, 300, dtype=np.uint64)
    hashes[10] = hashes[20] ^ np.uint64(0b101)  # 2 bits apart
    hashes[30] = hashes[40]
    hashes[50:60] = hashes[60] ^ (np.uint64(1) << rng.integers(0, 64, 10).astype(np.uint64))  # a tight cluster
    valid = np.ones(300, dtype=bool)
    valid[40] = False
    got = {tuple(p) for p in near_pairs(hashes, valid, 3, block=64, exhaustive_limit=exhaustive_limit)}
    brute = {(i, j) for i in range(300) for j in range(i + 1, 300)
             if valid[i] and valid[j] and bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 3}
    assert got == brute and (10, 20) in got


def _brute(hashes, valid, threshold, exclude=None):
    n = len(hashes)
    return {(i, j) for i in range(n) for j in range(i + 1, n)
            if valid[i] and valid[j] and (exclude is None or exclude[i] != exclude[j])
            and bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= threshold}


@pytest.mark.parametrize("threshold", [0, 1, 4, 7, 12])
@pytest.mark.parametrize("seed", [0, 1])
def test_multi_index_search_with_copies_and_exclusions_matches_brute_force(threshold, seed):
    """Clusters of near hashes, exact copies (the same file many times) and distinct files
    with one hash; the multi-index path (forced) and the exhaustive one agree with brute force."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2 ** 63, 40, dtype=np.uint64)
    flips = rng.integers(0, 64, (400, 3)).astype(np.uint64)
    base = centres[rng.integers(0, 40, 400)]
    near = base ^ (np.uint64(1) << flips[:, 0]) ^ ((np.uint64(1) << flips[:, 1]) * (rng.random(400) < 0.5))
    hashes = np.where(rng.random(400) < 0.5, base, near).astype(np.uint64)
    content = np.arange(400)
    copies = rng.integers(0, 400, 150)  # 150 images become copies of others: same hash, same content
    hashes[copies[:75]], content[copies[:75]] = hashes[copies[75:]], content[copies[75:]]
    valid = rng.random(400) > 0.05
    for exclude in (None, content):
        want = _brute(hashes, valid, threshold, exclude)
        for limit in (0, 10_000):
            got = near_pairs(hashes, valid, threshold, exclude=exclude, exhaustive_limit=limit)
            assert got.dtype == np.int64 and (got[:, 0] < got[:, 1]).all()
            assert [tuple(p) for p in got] == sorted(want)


def test_substring_plan_keeps_candidates_per_hash_small():
    """The plan's expected work per hash grows slowly with the number of hashes (near-linear
    search), where a fixed cut into threshold + 1 substrings grows linearly."""
    from math import comb

    def per_hash(n, t):
        edges, radius = phash_module.substring_plan(n, t)
        widths = np.diff(edges)
        return sum(sum(comb(int(w), k) for k in range(radius + 1)) * (1 + n / 2.0 ** w) for w in widths)

    assert per_hash(4_300_000, 4) / per_hash(430_000, 4) < 4  # 10x the hashes
    assert per_hash(430_000, 4) < 200


def test_hashes_are_cached_and_recomputed_when_content_changes(fake_manifest, monkeypatch):
    m = fake_manifest(people(n_subjects=2))
    images = m.images().to_pandas()
    ids, paths, hashes = images.image_id.tolist(), images.path.tolist(), images.content_hash.tolist()
    first = perceptual_hashes(m, ids, paths, hashes, executor=InlineExecutor())
    assert all(v is not None for v in first.values()) and (m.dir / PHASH_TABLE).exists()
    calls = []
    original = phash_module._hash_chunk
    monkeypatch.setattr(phash_module, "_hash_chunk", lambda items: calls.append(len(items)) or original(items))
    assert perceptual_hashes(m, ids, paths, hashes, executor=InlineExecutor()) == first
    assert calls == []
    changed = ["changed"] + hashes[1:]
    perceptual_hashes(m, ids, paths, changed, executor=InlineExecutor())
    assert calls == [1]


def test_an_undecodable_file_has_no_hash(fake_manifest):
    m = fake_manifest(people(n_subjects=1))
    images = m.images().to_pandas()
    (m.dir / images.path[0]).write_bytes(b"not an image")
    got = perceptual_hashes(m, images.image_id.tolist(), images.path.tolist(), images.content_hash.tolist(),
                            executor=InlineExecutor())
    assert got[images.image_id[0]] is None and got[images.image_id[1]] is not None


def test_copies_of_one_file_are_hashed_once(fake_manifest, monkeypatch):
    m = fake_manifest(people(n_subjects=1))
    images = m.images().to_pandas()
    calls = []
    original = phash_module._hash_chunk
    monkeypatch.setattr(phash_module, "_hash_chunk", lambda items: calls.append(len(items)) or original(items))
    ids = images.image_id.tolist()[:3]
    got = perceptual_hashes(m, ids, [images.path[0]] * 3, [images.content_hash[0]] * 3, executor=InlineExecutor())
    assert calls == [1] and len(set(got.values())) == 1 and None not in got.values()
