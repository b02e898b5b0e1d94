"""The pixel check behind the pHash: re-crops and re-encodes pass, look-alikes do not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ferdata.engines import InlineExecutor
from ferdata.splits.confirm import DEFAULT_NEAR_SIMILARITY, confirm_pairs, similarity, thumbnail
from ferdata.splits.make import make_split
from ferdata.splits.phash import phash_array


def _layout(seed: int, size: int = 96) -> np.ndarray:
    """A face-like picture: the same coarse layout for every seed (blobs at fixed places),
    fine texture of its own, as two people in one pose against one backdrop."""
    import cv2

    y, x = np.mgrid[0:size, 0:size]
    coarse = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 200.0)
                 for cx, cy in np.random.default_rng(1234).integers(12, 84, (6, 2)))
    fine = np.random.default_rng(seed).normal(0, 1, (size // 2, size // 2)).astype(np.float32)
    fine = cv2.resize(fine, (size, size), interpolation=cv2.INTER_CUBIC)
    fine -= cv2.GaussianBlur(fine, (0, 0), 4)  # detail only: the layout stays the same
    return np.clip(170 * coarse / coarse.max() + 25 * fine + 40, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int = 60) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def _bits(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def test_a_recrop_or_reencode_passes_and_a_lookalike_does_not():
    img = _layout(0)
    recrop = np.asarray(Image.fromarray(img[4:92, 3:91]).resize((96, 96), Image.Resampling.BILINEAR))
    other = _layout(1)
    assert _bits(phash_array(img), phash_array(other)) <= 4  # the pHash alone calls them near-duplicates
    t = thumbnail(img)
    assert similarity(t, thumbnail(_jpeg(img))) >= DEFAULT_NEAR_SIMILARITY
    assert similarity(t, thumbnail(recrop)) >= DEFAULT_NEAR_SIMILARITY
    assert similarity(t, thumbnail(other)) < DEFAULT_NEAR_SIMILARITY
    assert similarity(t, thumbnail(np.full_like(img, 128))) < DEFAULT_NEAR_SIMILARITY  # flat: nothing to match


def test_confirm_pairs_checks_each_pair_of_contents_once_and_keeps_what_it_cannot_read(tmp_path):
    paths = []
    for k, img in enumerate((_layout(0), _jpeg(_layout(0)), _layout(1), _layout(0))):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(img).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.append(str(tmp_path / "broken.png"))
    codes = np.array([0, 1, 2, 0, 3])  # image 3 is a copy of image 0
    pairs = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [0, 4]])
    kept = confirm_pairs(pairs, paths, codes, DEFAULT_NEAR_SIMILARITY, executor=InlineExecutor())
    assert kept.tolist() == [[0, 1], [1, 3], [0, 4]]
    assert confirm_pairs(pairs, paths, codes, 0.0, executor=InlineExecutor()).tolist() == pairs.tolist()


def _with_and_without_the_check(manifest, protocol: str):
    checked = make_split(manifest, protocol, executor=InlineExecutor(), write=False)
    unchecked = make_split(manifest, protocol, near_similarity=0, executor=InlineExecutor(), write=False)
    return checked, unchecked


@pytest.mark.real_data
def test_jaffe_lookalikes_of_different_women_are_no_longer_leakage(real_manifest):
    checked, unchecked = _with_and_without_the_check(real_manifest("jaffe"), "spi")
    # the pHash pairs across roles are all two different women (TM.HA2.181 ~ YM.FE2.68, ...)
    assert unchecked.audit["totals"]["near_duplicates"] > 0
    assert checked.audit["totals"]["near_duplicates"] == 0 and not checked.audit["forbidden"]
    assert checked.audit["near_similarity"] == DEFAULT_NEAR_SIMILARITY
    assert checked.table.equals(unchecked.table)  # nothing within 2 bits was a look-alike: same folds


@pytest.mark.real_data
def test_real_near_duplicates_stay_near_duplicates(real_manifest):
    # CK+48's frames of one sequence, and FER-2013's re-cropped copies, pass the check
    checked, unchecked = _with_and_without_the_check(real_manifest("ck48"), "ppi")
    assert checked.audit["totals"]["near_duplicates_same_subject"] > 0
    assert checked.audit["near_duplicate_pairs"] >= 0.8 * unchecked.audit["near_duplicate_pairs"]
    official, raw = _with_and_without_the_check(real_manifest("fer2013"), "official")
    assert official.audit["near_duplicate_pairs"] >= 0.9 * raw.audit["near_duplicate_pairs"] > 0
