"""Face descriptors from a frozen ImageNet MobileNetV2, computed once per image.

Training a network per fold costs hours on a CPU; a frozen backbone is run once over every
image and each fold then fits a cheap head on the stored vectors. On FER-2013 the middle
of the network describes expressions far better than its end (the last blocks encode
ImageNet objects): out-of-fold accuracy of a linear head is 0.45 on the pooled output of
the last block and 0.55 on blocks 10 and 13 kept on a spatial grid (``benchmarks/label_noise.py``).
So the descriptor is the output of inverted-residual blocks ``layers`` average-pooled to a
``grid`` × ``grid`` map, for the image and its mirror image (the mirror's map is flipped
back, so cells line up and a head can average or augment).

Weights: ``--weights PATH``, else ``$FERDATA_BACKBONE_WEIGHTS``, else torchvision's own
file in its cache (``$TORCH_HOME/hub/checkpoints/mobilenet_v2-b0353104.pth``, hash prefix
checked). Nothing is downloaded. Vectors are cached per manifest under
``<manifest>/cache/`` keyed by the weights, the spec and every image's content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferdata import atomic
from ferdata.errors import FerdataError, arg
from ferdata.manifest import Manifest
from ferdata.progress import NullProgress, ProgressSink

ENV_WEIGHTS = "FERDATA_BACKBONE_WEIGHTS"
#: torchvision's MobileNetV2 ImageNet files (IMAGENET1K_V1, IMAGENET1K_V2), sha256 prefix in the name.
TORCHVISION_FILES = ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth")
CACHE_DIR = "cache"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: MobileNetV2's ``features`` blocks and their output channels.
CHANNELS = {0: 32, 1: 16, 2: 24, 3: 24, 4: 32, 5: 32, 6: 32, 7: 64, 8: 64, 9: 64, 10: 64, 11: 96, 12: 96,
            13: 96, 14: 160, 15: 160, 16: 160, 17: 320, 18: 1280}


NETWORKS = ("mobilenet_v2", "hog")
#: HOG's fallback geometry (no weights needed): 48x48 faces, 6-pixel cells, 2x2 blocks, 9 bins.
HOG_SIDE, HOG_CELL, HOG_BINS = 48, 6, 9


@dataclass(frozen=True)
class BackboneSpec:
    """What is computed per image: the network (``hog`` needs no weights), its input side,
    and for MobileNetV2 the (block, grid) pairs kept.

    128 px rather than 96: on FER-2013 against FER+ it ranked the real label errors better
    (precision in the top 1 % 0.948 against 0.882, average precision 0.686 against 0.675)
    for 3 more minutes of describing on 2 cores (``benchmarks/label_noise.py --real``)."""

    side: int = 128
    layers: tuple[tuple[int, int], ...] = ((10, 3), (13, 3))
    flip: bool = True
    network: str = "mobilenet_v2"

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise FerdataError(f"descriptor network {self.network!r}: use one of {', '.join(NETWORKS)}")
        if self.side < 32:
            raise FerdataError(f"backbone input side {self.side}: use at least 32 pixels")
        for block, grid in self.layers:
            if block not in CHANNELS or grid < 1:
                raise FerdataError(f"backbone layer ({block}, {grid}): blocks are 0..18, grids at least 1")

    @classmethod
    def hog(cls) -> BackboneSpec:
        return cls(side=HOG_SIDE, layers=(), network="hog")

    @property
    def dim(self) -> int:
        if self.network == "hog":
            cells = self.side // HOG_CELL
            return (cells - 1) ** 2 * 4 * HOG_BINS
        return sum(CHANNELS[b] * g * g for b, g in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "side": self.side, "layers": [list(x) for x in self.layers],
                "flip": self.flip}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneSpec:
        return cls(side=int(d["side"]), layers=tuple(tuple(x) for x in d["layers"]), flip=bool(d["flip"]),
                   network=d.get("network", "mobilenet_v2"))


@dataclass
class Descriptors:
    """One row per image: ``plain`` (and ``mirror`` when the spec flips), float32."""

    image_ids: list[str]
    plain: np.ndarray
    mirror: np.ndarray | None
    spec: BackboneSpec
    weights: str
    cached: bool = False
    cpu_seconds: float = 0.0


def find_weights(explicit: str | os.PathLike | None = None) -> Path | None:
    """The MobileNetV2 ImageNet weights to use, or ``None`` when there are none here."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FerdataError(f"{arg('weights')} {path}: no such file; give a MobileNetV2 ImageNet state dict "
                               f"(torchvision's {TORCHVISION_FILES[0]})")
        return path
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FerdataError(f"${ENV_WEIGHTS}={env}: no such file; point it at a MobileNetV2 ImageNet state dict")
        return path
    from ferdata.training.weights import hub_checkpoints_dir, verify_hash_prefix

    for name in TORCHVISION_FILES:
        path = hub_checkpoints_dir() / name
        if path.is_file():
            verify_hash_prefix(path)
            return path
    return None


def weights_hint() -> str:
    """Where weights would be found, for the one-line notice when there are none."""
    from ferdata.training.weights import hub_checkpoints_dir

    return (f"put torchvision's {TORCHVISION_FILES[0]} in {hub_checkpoints_dir()} or pass --weights PATH "
            f"(or set ${ENV_WEIGHTS})")


def file_digest(path: Path) -> str:
    from ferdata.training.data import file_sha256

    return file_sha256(path)


# ---- the network ------------------------------------------------------------------------------

_NET: dict[str, Any] = {}


def load_backbone(weights: str | os.PathLike, last_block: int) -> Any:
    """MobileNetV2 ``features[:last_block + 1]`` with the weights, in eval mode (cached per process)."""
    key = f"{weights}:{last_block}"
    if key in _NET:
        return _NET[key]
    import torch
    import torchvision

    from ferdata.training.weights import torch_load, unwrap_state_dict

    state = unwrap_state_dict(torch_load(weights))
    net = torchvision.models.mobilenet_v2(weights=None)
    own = net.state_dict()
    wanted = [k for k in own if k.startswith("features.") and int(k.split(".")[1]) <= last_block]
    missing = [k for k in wanted if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if missing:
        raise FerdataError(f"{weights} is not a MobileNetV2 ImageNet state dict ({len(missing)} of {len(wanted)} "
                           f"backbone tensors missing or of another shape, e.g. {missing[0]})")
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)
    features = net.features[: last_block + 1].eval().to(memory_format=torch.channels_last)
    for p in features.parameters():
        p.requires_grad_(False)
    _NET.clear()
    _NET[key] = features
    return features


def describe_batch(gray: np.ndarray, spec: BackboneSpec, weights: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, side, side) uint8 faces → (plain, mirror) descriptor rows (N, spec.dim) float32."""
    if spec.network == "hog":
        return _hog_batch(gray, spec)
    if weights is None:
        raise FerdataError("MobileNetV2 descriptors need weights; " + weights_hint())
    import torch
    import torch.nn.functional as F

    last = max(b for b, _ in spec.layers)
    net = load_backbone(weights, last)
    x = torch.from_numpy(np.ascontiguousarray(gray)).float().div_(255.0).unsqueeze(1)
    if x.shape[-2:] != (spec.side, spec.side):
        x = F.interpolate(x, size=(spec.side, spec.side), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x.expand(-1, 3, -1, -1) - mean) / std
    wanted: dict[int, list[int]] = {}
    for b, g in spec.layers:
        wanted.setdefault(b, []).append(g)

    def run(inp: Any, mirrored: bool) -> np.ndarray:
        parts: dict[tuple[int, int], Any] = {}
        h = inp.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(net):
            h = block(h)
            for g in wanted.get(i, ()):
                v = F.adaptive_avg_pool2d(h, g)
                parts[(i, g)] = (v.flip(3) if mirrored else v).flatten(1)
        return torch.cat([parts[layer] for layer in spec.layers], 1).numpy().astype(np.float32)

    with torch.inference_mode():
        plain = run(x, False)
        mirror = run(torch.flip(x, dims=[3]), True) if spec.flip else None
    return plain, mirror


def _hog_batch(gray: np.ndarray, spec: BackboneSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """HOG (Dalal and Triggs) of each face and of its mirror image: the fallback descriptor."""
    from skimage.feature import hog

    def one(img: np.ndarray) -> np.ndarray:
        return hog(img.astype(np.float32) / 255.0, orientations=HOG_BINS, pixels_per_cell=(HOG_CELL, HOG_CELL),
                   cells_per_block=(2, 2)).astype(np.float32)

    plain = np.stack([one(g) for g in gray])
    mirror = np.stack([one(g[:, ::-1]) for g in gray]) if spec.flip else None
    return plain, mirror


def _describe_chunk(items: list[tuple[str, int, str, dict]]) -> list[tuple[np.ndarray, np.ndarray | None, float]]:
    """Worker side: decode a chunk of files and describe them (one torch thread per worker)."""
    import resource

    import torch

    torch.set_num_threads(1)
    spec = BackboneSpec.from_dict(items[0][3])
    weights = items[0][2] or None
    start = resource.getrusage(resource.RUSAGE_SELF)
    gray = np.stack([_decode(Path(path), side) for path, side, _, _ in items])
    plain, mirror = describe_batch(gray, spec, weights)
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime) / len(items)
    return [(plain[i], None if mirror is None else mirror[i], cpu) for i in range(len(items))]


def _decode(path: Path, side: int) -> np.ndarray:
    from PIL import Image

    from ferdata.imageio import read_image

    im = Image.fromarray(read_image(path, gray=True))
    if im.size != (side, side):
        im = im.resize((side, side), Image.BILINEAR)
    return np.asarray(im, np.uint8)


# ---- the per-manifest cache ----------------------------------------------------------------------


def cache_key(spec: BackboneSpec, weights_digest: str, image_ids: Sequence[str], content: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps({"spec": spec.to_dict(), "weights": weights_digest}, sort_keys=True).encode())
    for i, c in zip(image_ids, content):
        h.update(f"{i}\x00{c}\n".encode())
    return h.hexdigest()[:20]


def describe(manifest: Manifest, image_ids: Sequence[str], files: Sequence[Path], content: Sequence[str],
             spec: BackboneSpec, weights: Path | None, *, workers: int | None = None, cache: bool = True,
             progress: ProgressSink | None = None) -> Descriptors:
    """Descriptors of ``files`` (one per image id), from the manifest's cache when the same
    weights, spec and image contents were described before."""
    progress = progress or NullProgress()
    digest = file_digest(weights) if weights is not None else "none"
    key = cache_key(spec, digest, image_ids, content)
    path = manifest.dir / CACHE_DIR / f"backbone-{key}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as stored:
                if list(stored["image_ids"]) == list(image_ids):
                    return Descriptors(list(image_ids), stored["plain"],
                                       stored["mirror"] if spec.flip else None, spec, digest, cached=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is recomputed
    from ferdata.engines import create_executor

    executor = create_executor("local", workers=workers)
    items = [(str(f), spec.side, str(weights) if weights is not None else "", spec.to_dict()) for f in files]
    progress.start(f"describing faces ({'MobileNetV2' if spec.network == 'mobilenet_v2' else 'HOG'})", len(items))
    plain = np.zeros((len(items), spec.dim), np.float32)
    mirror = np.zeros((len(items), spec.dim), np.float32) if spec.flip else None
    cpu = 0.0
    try:
        for i, (p, m, c) in enumerate(executor.map_chunks(_describe_chunk, items, chunksize=64,
                                                           progress=progress.advance)):
            plain[i] = p
            if mirror is not None:
                mirror[i] = m
            cpu += c
    except OSError as exc:
        raise FerdataError(f"cannot read an image ({exc}); check the manifest's image root or re-run ingest") from None
    finally:
        progress.finish()
    if cache:
        _save(path, image_ids, plain, mirror)
    return Descriptors(list(image_ids), plain, mirror, spec, digest, cpu_seconds=cpu)


def _save(path: Path, image_ids: Sequence[str], plain: np.ndarray, mirror: np.ndarray | None) -> None:
    """Atomic write; older caches of the manifest are removed (one per spec is plenty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("backbone-*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
    arrays = {"image_ids": np.array(list(image_ids)), "plain": plain}
    if mirror is not None:
        arrays["mirror"] = mirror
    atomic.write_stream(path, lambda fh: np.savez(fh, **arrays))


__all__ = ["BackboneSpec", "Descriptors", "describe", "describe_batch", "find_weights", "weights_hint"]
