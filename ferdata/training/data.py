"""What a training run reads: a split's fold, effective labels, crops or images, feature
vectors, and a torch dataset that serves them in batches.

Images are decoded once per run and kept in memory at the model's input size when they
fit (``cache_bytes``); the dataset then serves whole batches through ``__getitems__``, so
the engine's data path costs about what a bare tensor-slicing loop costs.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferdata.errors import FerdataError
from ferdata.labels import ClassSet, class_set
from ferdata.manifest import Manifest, read_table
from ferdata.manifest.crops import crop_paths
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.manifest.tables import FEATURES_TABLE, LABELS_TABLE
from ferdata.progress import NullProgress, ProgressSink

#: The pseudo-split of cross-dataset evaluation: every labelled, readable image is a test image.
ALL_TEST = "all-test"
AUGMENTATIONS = ("flip", "crop", "rotate", "scale")
#: What a run learns: the (effective) labels, or the distribution of annotators' votes.
TARGETS = ("labels", "votes")
#: ``images.parquet`` columns holding one vote count per label (FER+: ``votes_happy``, ...).
VOTES_PREFIX = "votes_"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_hash(manifest: Manifest) -> str:
    """Content hash of what decides a run's data: images.parquet and the relabel log."""
    h = hashlib.sha256(file_sha256(manifest.images_path).encode())
    labels = manifest.table_path(LABELS_TABLE)
    if labels.exists():
        h.update(file_sha256(labels).encode())
    return h.hexdigest()


@dataclass
class Split:
    """One split file: rows (image_id, fold, role), its class set and provenance."""

    name: str
    table: pa.Table
    classes: ClassSet
    protocol: str | None
    content_hash: str
    path: Path | None

    @property
    def folds(self) -> list[int]:
        return sorted(set(self.table.column("fold").to_pylist()))

    def rows(self, fold: int) -> list[tuple[str, str]]:
        """``[(image_id, role), ...]`` of one fold."""
        if fold not in self.folds:
            raise FerdataError(f"split {self.name!r} has no fold {fold} (folds: {', '.join(map(str, self.folds))})")
        t = self.table.filter(pc.equal(self.table.column("fold"), fold))
        return list(zip(t.column("image_id").to_pylist(), t.column("role").to_pylist()))


def read_split(manifest: Manifest, split: str, classes: str | None = None) -> Split:
    """Read ``splits/<split>.parquet``; ``all-test`` is every labelled image as test, fold 0."""
    from ferdata.splits import load_split, split_metadata, split_path

    if split == ALL_TEST and not split_path(manifest, split).exists():
        table = images_with_effective_labels(manifest, columns=["readable"])
        present = {lab for lab, ok in zip(table.column("label").to_pylist(), table.column("readable").to_pylist())
                   if lab and ok}
        cs = class_set(classes, present)
        ids = [i for i, lab, ok in zip(table.column("image_id").to_pylist(), table.column("label").to_pylist(),
                                        table.column("readable").to_pylist()) if ok and lab and cs.includes(lab)]
        rows = pa.table({"image_id": pa.array(ids, pa.string()), "fold": pa.array([0] * len(ids), pa.int32()),
                         "role": pa.array(["test"] * len(ids), pa.string())})
        return Split(ALL_TEST, rows, cs, ALL_TEST, manifest_hash(manifest), None)
    table = load_split(manifest, split).select(["image_id", "fold", "role"])
    meta = split_metadata(manifest, split)
    path = split_path(manifest, split)
    if meta.get("class_set"):
        cs = ClassSet.from_dict(meta["class_set"])
    else:
        labels = images_with_effective_labels(manifest).column("label").drop_null().to_pylist()
        cs = class_set(classes, set(labels))
    digest = meta.get("content_hash") or meta.get("hash") or file_sha256(path)
    return Split(split, table, cs, meta.get("protocol"), digest, path)


# --- feature vectors ------------------------------------------------------------------


def _prefixed_columns(names: Sequence[str], prefix: str) -> list[str]:
    pat = re.compile(re.escape(prefix) + r"(\d+)$")
    found = [(int(m.group(1)), n) for n in names if (m := pat.match(n))]
    return [n for _, n in sorted(found)]


def load_features(manifest: Manifest, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``{image_id: float32 vector}`` for the plugin's declared ``features``.

    Lookup order for each name, first hit wins:
    1. ``features.parquet`` (written by ``ferdata features``) column ``name`` (a list or a number);
    2. ``lpqphog`` only: ``images.parquet`` columns ``lpq_pc1..5`` then ``phog_pc1..5`` (SFEW.xlsx);
    3. ``images.parquet`` column ``name``, or its numbered columns ``name1..nameK``
       (``lpq_pc`` → ``lpq_pc1..5``);
    4. ``lpq_pc`` / ``phog_pc`` only: the first / last five values of ``features.parquet``'s ``lpqphog``.
    The vectors of the names are concatenated in order; an image missing any part has none.
    """
    ftable = None
    fpath = manifest.table_path(FEATURES_TABLE)
    if fpath.exists():
        ftable = read_table(fpath)
    images = manifest.images()
    parts: list[dict[str, np.ndarray]] = []
    for name in names:
        parts.append(_feature_part(name, ftable, images, manifest))
    if not parts:
        return {}
    common = set(parts[0])
    for p in parts[1:]:
        common &= set(p)
    return {i: np.concatenate([p[i] for p in parts]).astype(np.float32) for i in common}


def _vectors(table: pa.Table, columns: list[str]) -> dict[str, np.ndarray]:
    ids = table.column("image_id").to_pylist()
    cols = [table.column(c).to_pylist() for c in columns]
    out: dict[str, np.ndarray] = {}
    for k, image_id in enumerate(ids):
        values: list[float] = []
        for col in cols:
            v = col[k]
            if v is None:
                break
            values.extend(v if isinstance(v, (list, tuple)) else [v])
        else:
            vec = np.asarray(values, np.float32)
            if np.all(np.isfinite(vec)):
                out[image_id] = vec
    return out


def _feature_part(name: str, ftable: pa.Table | None, images: pa.Table, manifest: Manifest) -> dict[str, np.ndarray]:
    if ftable is not None and name in ftable.column_names:
        return _vectors(ftable, [name])
    if name == "lpqphog":
        cols = _prefixed_columns(images.column_names, "lpq_pc") + _prefixed_columns(images.column_names, "phog_pc")
        if cols:
            return _vectors(images, cols)
    if name in images.column_names:
        return _vectors(images, [name])
    cols = _prefixed_columns(images.column_names, name)
    if cols:
        return _vectors(images, cols)
    if name in ("lpq_pc", "phog_pc") and ftable is not None and "lpqphog" in ftable.column_names:
        full = _vectors(ftable, ["lpqphog"])
        half = slice(0, 5) if name == "lpq_pc" else slice(5, 10)
        return {i: v[half] for i, v in full.items()}
    raise FerdataError(
        f"{manifest.name} has no feature {name!r} (not in {FEATURES_TABLE} nor images.parquet); "
        f"run 'ferdata features {manifest.name}' first"
    )


# --- the examples of one fold ---------------------------------------------------------


@dataclass
class Examples:
    """Everything a fold needs, in split order: ids, roles, class indices, files, features."""

    image_ids: list[str]
    roles: list[str]
    targets: np.ndarray
    files: list[Path]
    features: np.ndarray | None
    classes: ClassSet
    excluded: dict[str, int] = field(default_factory=dict)
    source: str = "images"
    soft: np.ndarray | None = None
    """Soft targets (N x classes, rows sum to 1) when training on a vote distribution."""

    def select(self, role: str | Sequence[str]) -> np.ndarray:
        roles = {role} if isinstance(role, str) else set(role)
        return np.array([k for k, r in enumerate(self.roles) if r in roles], dtype=np.int64)

    def counts(self, role: str = "train") -> np.ndarray:
        idx = self.select(role)
        return np.bincount(self.targets[idx], minlength=len(self.classes.classes))


def vote_distribution(images: pa.Table, classes: ClassSet, manifest_name: str = "") -> dict[str, np.ndarray]:
    """``{image_id: distribution over the class set}`` from ``votes_<label>`` columns (FER+).

    Votes for a label go to the class the class set maps it to; votes for labels outside the
    set (FER+'s unknown and NF, contempt under 7 classes) are dropped and the rest
    renormalised. Images with no vote inside the set get no distribution.
    """
    columns = [c for c in images.column_names if c.startswith(VOTES_PREFIX)]
    if not columns:
        raise FerdataError(f"{manifest_name or 'the manifest'} has no {VOTES_PREFIX}<label> columns, so there is no "
                           "vote distribution to train on; use --targets labels, or ingest a dataset with votes "
                           "(ferdata ingest ferplus ...)")
    k = len(classes.classes)
    weights = np.zeros((len(columns), k), np.float64)
    for r, col in enumerate(columns):
        label = col[len(VOTES_PREFIX):]
        if classes.includes(label):
            weights[r, classes.index(label)] = 1.0
    votes = np.column_stack([images.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in columns])
    votes = np.nan_to_num(votes, nan=0.0).clip(min=0.0)
    mass = votes @ weights
    totals = mass.sum(axis=1)
    ids = images.column("image_id").to_pylist()
    return {i: (m / t).astype(np.float32) for i, m, t in zip(ids, mass, totals) if t > 0}


def gather_examples(manifest: Manifest, split: Split, fold: int, *, features: Sequence[str] = (),
                    crops: str | None = None, targets: str = "labels") -> Examples:
    """The fold's images with effective labels mapped through the split's class set.

    Reads crops when ``ferdata preprocess`` wrote them (``crops`` picks a config), else the
    original images. Rows whose label is outside the class set, unreadable images, and (for
    models with features) images without a feature vector are left out and counted.
    ``targets="votes"`` adds each image's vote distribution (:func:`vote_distribution`) as
    soft targets; images without votes are left out and counted.
    """
    if targets not in TARGETS:
        raise FerdataError(f"--targets {targets!r}: use {' or '.join(TARGETS)}")
    table = images_with_effective_labels(manifest, columns=["path", "readable"])
    soft_of = vote_distribution(manifest.images(), split.classes, manifest.name) if targets == "votes" else None
    info = {i: (p, lab, ok) for i, p, lab, ok in zip(
        table.column("image_id").to_pylist(), table.column("path").to_pylist(),
        table.column("label").to_pylist(), table.column("readable").to_pylist())}
    crop_map = crop_paths(manifest, crops)
    vectors = load_features(manifest, features) if features else None
    excluded: Counter = Counter()
    ids, roles, labels, files, feats, soft = [], [], [], [], [], []
    for image_id, role in split.rows(fold):
        if image_id not in info:
            excluded["not in manifest"] += 1
            continue
        path, label, readable = info[image_id]
        if not readable:
            excluded["unreadable"] += 1
            continue
        if label is None or not split.classes.includes(label):
            excluded["label outside class set"] += 1
            continue
        if crop_map is not None:
            if image_id not in crop_map:
                excluded["no face crop"] += 1
                continue
            file = crop_map[image_id]
        else:
            file = manifest.resolve(path)
        if vectors is not None:
            if image_id not in vectors:
                excluded["no feature vector"] += 1
                continue
        if soft_of is not None:
            if image_id not in soft_of:
                excluded["no votes inside the class set"] += 1
                continue
            soft.append(soft_of[image_id])
        if vectors is not None:
            feats.append(vectors[image_id])
        ids.append(image_id)
        roles.append(role)
        labels.append(split.classes.index(label))
        files.append(file)
    if not ids:
        raise FerdataError(f"{manifest.name}/{split.name} fold {fold}: no usable images "
                           f"({', '.join(f'{k}: {v}' for k, v in excluded.items()) or 'empty split'})")
    return Examples(ids, roles, np.asarray(labels, np.int64), files,
                    np.stack(feats) if feats else None, split.classes, dict(excluded),
                    "crops" if crop_map is not None else "images",
                    np.stack(soft) if soft_of is not None else None)


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """Paper 004's weights ``max(R) / (C · n_i)`` from the training counts R (0 for absent classes)."""
    counts = np.asarray(counts, np.float64)
    c = len(counts)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, counts.max() / (c * counts), 0.0)
    return w


# --- decoding and the torch dataset ---------------------------------------------------


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 C×size×size (resized whole; crops are already faces)."""
    from PIL import Image

    from ferdata.imageio import read_image

    arr = read_image(path, gray=channels == 1)
    im = Image.fromarray(arr)
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    out = np.asarray(im, np.uint8)
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1).copy()


def _decode_chunk(items: list[tuple[str, int, int]]) -> list[np.ndarray]:
    return [decode(Path(p), s, c) for p, s, c in items]


def decode_all(files: Sequence[Path], size: int, channels: int, *, workers: int = 0,
               progress: ProgressSink | None = None) -> np.ndarray:
    """Decode every file into one uint8 N×C×S×S array (in parallel through the executor)."""
    progress = progress or NullProgress()
    items = [(str(f), size, channels) for f in files]
    progress.start("decoding images", len(items))
    try:
        if workers > 1 and len(items) > 2000:
            from ferdata.engines import create_executor

            chunks = create_executor("local", workers=workers).map_chunks(_decode_chunk, items, progress=progress.advance)
            arrays = [a for chunk in chunks for a in chunk]
        else:
            arrays = []
            for it in items:
                arrays.append(decode(Path(it[0]), size, channels))
                progress.advance(1)
    except OSError as exc:
        raise FerdataError(f"cannot read an image ({exc}); check the manifest's image root or re-run ingest") from None
    finally:
        progress.finish()
    return np.stack(arrays) if arrays else np.zeros((0, channels, size, size), np.uint8)


def build_augment(spec: str | Sequence[str] | None, size: int) -> Callable[[Any], Any] | None:
    """The papers' augmentations as torchvision v2 transforms on a uint8 C×H×W tensor.

    ``flip`` (horizontal, p=0.5), ``crop`` (random crop of 0.85–1 of the area, resized back),
    ``rotate`` (±10°), ``scale`` (±10%); ``none`` or empty turns them off.
    """
    from torchvision.transforms import v2

    names = _augment_names(spec)
    if not names:
        return None
    ops: list[Any] = []
    if "crop" in names:
        ops.append(v2.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(0.9, 1.1), antialias=True))
    if "flip" in names:
        ops.append(v2.RandomHorizontalFlip())
    if "rotate" in names or "scale" in names:
        ops.append(v2.RandomAffine(degrees=10 if "rotate" in names else 0,
                                   scale=(0.9, 1.1) if "scale" in names else None))
    return v2.Compose(ops)


def _augment_names(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return []
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names in (["none"], []):
        return []
    if names == ["all"]:
        return list(AUGMENTATIONS)
    bad = [n for n in names if n not in AUGMENTATIONS]
    if bad:
        raise FerdataError(f"--augment {','.join(bad)}: unknown; use a comma list of {', '.join(AUGMENTATIONS)}, all or none")
    return names


class FaceDataset:
    """Batches of (normalised float images, class indices[, feature vectors]).

    ``images`` is either a preloaded uint8 N×C×S×S array or ``None`` (then files are decoded
    on demand, for data too big to keep in memory).
    """

    def __init__(self, examples: Examples, indices: np.ndarray, *, size: int, channels: int,
                 normalize: tuple[tuple[float, ...], tuple[float, ...]] | None,
                 images: np.ndarray | None, augment: Callable[[Any], Any] | None = None) -> None:
        import torch

        self.examples = examples
        self.indices = np.asarray(indices, np.int64)
        self.size, self.channels = size, channels
        self.images = torch.from_numpy(images) if images is not None else None
        self.augment = augment
        self.targets = torch.from_numpy(examples.targets)
        self.features = torch.from_numpy(examples.features) if examples.features is not None else None
        if normalize is None:
            mean, std = (0.5,) * channels, (0.5,) * channels
        else:
            mean, std = normalize
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0

    def __len__(self) -> int:
        return len(self.indices)

    def _raw(self, rows: np.ndarray) -> Any:
        import torch

        if self.images is not None:
            return self.images[torch.from_numpy(rows)]
        return torch.from_numpy(np.stack([decode(self.examples.files[r], self.size, self.channels) for r in rows]))

    def __getitems__(self, positions: list[int]) -> tuple:
        import torch

        rows = self.indices[np.asarray(positions, np.int64)]
        raw = self._raw(rows)
        if self.augment is not None:
            raw = torch.stack([self.augment(img) for img in raw])
        x = (raw.float() - self.mean) / self.std
        batch = [x, self.targets[rows], torch.from_numpy(rows)]
        if self.features is not None:
            batch.append(self.features[rows])
        return tuple(batch)

    def __getitem__(self, position: int) -> tuple:
        return tuple(t[0] for t in self.__getitems__([position]))


def identity_collate(batch: Any) -> Any:
    return batch
