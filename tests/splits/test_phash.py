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
