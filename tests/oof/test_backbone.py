"""Frozen face descriptors: shapes, mirror alignment, weights lookup and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.oof.backbone import (
    ENV_WEIGHTS,
    TORCHVISION_FILES,
    BackboneSpec,
    describe,
    describe_batch,
    find_weights,
)


def faces(n: int = 3, side: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


@pytest.mark.parametrize("spec", [BackboneSpec(side=64, layers=((6, 2), (10, 3))),
                                  BackboneSpec(side=64, layers=((13, 1),), flip=False), BackboneSpec.hog()])
def test_shapes(spec, random_mobilenet):
    gray = faces(side=spec.side)
    plain, mirror = describe_batch(gray, spec, random_mobilenet)
    assert plain.shape == (3, spec.dim) and plain.dtype == np.float32
    assert (mirror is None) == (not spec.flip)
    assert np.isfinite(plain).all()


def test_the_mirror_view_is_the_mirrored_image_with_its_grid_flipped_back(random_mobilenet):
    spec = BackboneSpec(side=64, layers=((10, 2),))
    gray = faces(side=64)
    _, mirror = describe_batch(gray, spec, random_mobilenet)
    flipped, _ = describe_batch(np.ascontiguousarray(gray[:, :, ::-1]), spec, random_mobilenet)
    grid = flipped.reshape(3, 64, 2, 2)[..., ::-1].reshape(3, -1)  # cells back in the original's order
    assert np.allclose(mirror, grid, atol=1e-5)
    plain, _ = describe_batch(gray, spec, random_mobilenet)
    assert not np.allclose(plain, mirror)


def test_bad_specs_and_weights_are_one_line_errors(tmp_path, random_mobilenet):
    with pytest.raises(FerdataError, match="blocks are 0..18"):
        BackboneSpec(layers=((19, 2),))
    with pytest.raises(FerdataError, match="network 'vgg'"):
        BackboneSpec(network="vgg")
    import torch

    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(FerdataError, match="not a MobileNetV2 ImageNet state dict"):
        describe_batch(faces(side=64), BackboneSpec(side=64, layers=((3, 1),)), other)


def test_weights_lookup(tmp_path, monkeypatch, random_mobilenet):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    assert find_weights() is None
    with pytest.raises(FerdataError, match="weights .*no such file"):
        find_weights(tmp_path / "missing.pth")
    monkeypatch.setenv(ENV_WEIGHTS, str(random_mobilenet))
    assert find_weights() == random_mobilenet
    assert find_weights(random_mobilenet) == random_mobilenet
    monkeypatch.delenv(ENV_WEIGHTS)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / TORCHVISION_FILES[0]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not torchvision's file")
    with pytest.raises(FerdataError, match="sha256 prefix"):
        find_weights()


def test_describe_caches_per_content(faces_manifest, random_mobilenet):
    m = faces_manifest
    rows = m.images(columns=["image_id", "path", "content_hash"]).to_pylist()[:6]
    ids = [r["image_id"] for r in rows]
    files = [m.resolve(r["path"]) for r in rows]
    content = [r["content_hash"] for r in rows]
    spec = BackboneSpec(side=48, layers=((6, 2),))
    first = describe(m, ids, files, content, spec, random_mobilenet, workers=1)
    assert not first.cached and first.plain.shape == (6, spec.dim)
    again = describe(m, ids, files, content, spec, random_mobilenet, workers=1)
    assert again.cached and np.array_equal(again.plain, first.plain) and np.array_equal(again.mirror, first.mirror)
    changed = describe(m, ids, files, content[:-1] + ["edited"], spec, random_mobilenet, workers=1)
    assert not changed.cached
    assert len(list((m.dir / "cache").glob("backbone-*.npz"))) == 1  # the stale cache is gone
    pool = describe(m, ids, files, content, spec, random_mobilenet, workers=2, cache=False)
    assert np.allclose(pool.plain, first.plain, atol=1e-5)


def test_unreadable_file_is_one_line_error(faces_manifest, random_mobilenet, tmp_path):
    spec = BackboneSpec(side=48, layers=((6, 1),))
    with pytest.raises(FerdataError, match="cannot read an image"):
        describe(faces_manifest, ["x"], [Path(tmp_path / "gone.png")], ["h"], spec, random_mobilenet, workers=1)
