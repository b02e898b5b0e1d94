"""Making, writing and reading ``<manifest>/splits/<name>.parquet``.

The split table has one row per (image, fold) for every image with a role in that fold:
``image_id`` (string), ``fold`` (int32), ``role`` ("train", "val", "test"), sorted by fold
and image_id. Its ferdata metadata holds the protocol, options, seed, class set, group
column, number of folds, counts, exclusions, the leakage audit and a content hash of the
rows; there is no timestamp, so the same manifest, options and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ferdata.engines import Executor, create_executor
from ferdata.errors import FerdataError, FerdataWarning, arg
from ferdata.labels import ClassSet, class_set
from ferdata.manifest import Manifest, read_metadata, read_table, write_table
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.manifest.lock import manifest_lock
from ferdata.manifest.schema import SPLIT_SCHEMA
from ferdata.manifest.tables import ROLES, SPLITS_DIR
from ferdata.progress import NullProgress, ProgressSink
from ferdata.splits._registry import PROTOCOLS, create_protocol, get_protocol_class
from ferdata.splits.audit import audit_split, content_codes, forbidden_summary
from ferdata.splits.confirm import DEFAULT_NEAR_SIMILARITY, confirm_pairs
from ferdata.splits.phash import near_pairs, perceptual_hashes
from ferdata.splits.protocols import SplitProtocol

SPLIT_FORMAT = 1
GROUP_COLUMNS = {"subject": "subject_id", "movie": "movie", "sequence": "sequence_id", "clip": "clip"}
#: Columns whose equal values are one take of one scene (a CK+ sequence, an SFEW clip): such
#: images are one atom and share a role under every protocol, whatever ``--group-by`` says.
ATOM_COLUMNS = ("sequence_id", "clip")
#: What a split reads of ``images.parquet`` (AffectNet's 68 landmarks per row would cost GBs).
FRAME_COLUMNS = ("image_id", "path", "label", "readable", "content_hash", "source_split", *GROUP_COLUMNS.values())
#: pHash bits two near-duplicates may differ in. On CK+48, 4 bits catch 83% of the frame
#: pairs inside a sequence and 0.003% of the pairs of different subjects (16 of 476,397).
DEFAULT_NEAR_THRESHOLD = 4
#: pHash bits within which two pictures are taken to be one (a re-encoding, a resize, the
#: next frame of a clip) and always share a role, like exact copies. The audit still reports
#: the looser :data:`DEFAULT_NEAR_THRESHOLD` pairs left across roles.
NEAR_JOIN_THRESHOLD = 2
MAX_NEAR_THRESHOLD = 16
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class SplitResult:
    """A made split: the table, its metadata, and where it was written (``None`` if not)."""

    name: str
    table: pa.Table
    metadata: dict[str, Any]
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_folds(self) -> int:
        return int(self.metadata["n_folds"])

    @property
    def audit(self) -> dict[str, Any]:
        return self.metadata["audit"]

    @property
    def excluded(self) -> dict[str, int]:
        return self.metadata["excluded"]

    @property
    def content_hash(self) -> str:
        return self.metadata["content_hash"]


# ---- the frame of images that take part ---------------------------------------------------


def _union_groups(groups: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Groups merged wherever one atom spans two of them, so atoms never straddle roles
    (a merged group is labelled ``g:<group>`` or ``a:<atom>``: the smallest key of its
    component, as a union-find that keeps the smaller root would name it)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    frame = pd.DataFrame({"g": groups, "a": atoms})
    if (frame.groupby("a", sort=False)["g"].nunique() <= 1).all():
        return groups
    g_codes, g_keys = pd.factorize(pd.Series(groups, dtype=object).astype(str))
    a_codes, a_keys = pd.factorize(pd.Series(atoms, dtype=object).astype(str))
    n_g = len(g_keys)
    n = n_g + len(a_keys)
    graph = coo_matrix((np.ones(len(groups), dtype=np.int8), (g_codes, n_g + a_codes)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    keys = np.concatenate([("g:" + pd.Index(g_keys).astype(str)).to_numpy(dtype=object),
                           ("a:" + pd.Index(a_keys).astype(str)).to_numpy(dtype=object)])
    smallest = pd.Series(keys).groupby(component).min()
    return smallest.to_numpy(dtype=object)[component[g_codes]]


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table.columns else pd.Series([None] * len(table), index=table.index, dtype=object)


def applicable_protocols(table: pd.DataFrame, group_column: str) -> list[str]:
    """Protocols a manifest supports: person-aware ones only with a group column."""
    has_groups = group_column in table.columns and table[group_column].notna().any()
    has_official = "source_split" in table.columns and table["source_split"].notna().any()
    out = []
    for name in PROTOCOLS.names():
        cls = get_protocol_class(name)
        if cls.groups == "required" and not has_groups:
            continue
        if name == "official" and not has_official:
            continue
        out.append(name)
    return out


def default_group_by(dataset: str) -> str:
    """The grouping a person-aware protocol uses when ``--group-by`` is not given: the
    adapter's ``default_group_by`` (SFEW: the movie), else the subject."""
    return getattr(_adapter_class(dataset), "default_group_by", None) or "subject"


def group_note(dataset: str, key: str) -> str | None:
    """What the adapter says about grouping ``dataset`` by ``key`` (SFEW's subject is paper
    000's definition, not a person ID), for the one line where the choice is made."""
    notes = getattr(_adapter_class(dataset), "group_notes", None) or {}
    return notes.get(key)


def _adapter_class(dataset: str) -> type | None:
    from ferdata.datasets import get_dataset_class

    try:
        return get_dataset_class(dataset)
    except Exception:  # noqa: BLE001 - a manifest of an adapter that is not installed here
        return None


def build_frame(manifest_name: str, dataset: str, images: pa.Table, protocol: SplitProtocol,
                classes: ClassSet | str | None, group_by: str | None
                ) -> tuple[pd.DataFrame, ClassSet, str | None, Counter]:
    """The images that take part, with ``y``, ``group`` and ``atom``; and the exclusions.

    ``images`` is ``images_with_effective_labels(manifest)``: labels are effective labels.
    """
    images = images.select([c for c in images.column_names if c in FRAME_COLUMNS])  # not the extras (landmarks...)
    table = images.to_pandas().sort_values("image_id", kind="stable").reset_index(drop=True)
    excluded: Counter = Counter()
    readable = table["readable"].astype(bool)
    excluded["unreadable"] = int((~readable).sum())
    table = table[readable]
    no_label = table["label"].isna()
    excluded["no label"] = int(no_label.sum())
    table = table[~no_label]
    cset = classes if isinstance(classes, ClassSet) else class_set(classes, present=table["label"].unique())
    inside = table["label"].map(cset.includes).astype(bool)
    for label, n in table.loc[~inside, "label"].value_counts().sort_index().items():
        excluded[f"label {label} not in class set {cset.name}"] = int(n)
    table = table[inside]

    uses_groups = protocol.groups == "required" or (protocol.groups == "optional" and group_by) or \
        (protocol.groups == "never" and group_by and protocol.name != "ppi")
    if protocol.name == "ppi" and group_by:
        raise FerdataError(f"ppi ignores subjects by definition; drop {arg('group_by')}, or use spi / kfold {arg('group_by')}")
    key = group_by or default_group_by(dataset)
    if key not in GROUP_COLUMNS:
        raise FerdataError(f"{arg('group_by')} {key!r}: use one of {', '.join(GROUP_COLUMNS)}")
    group_column = GROUP_COLUMNS[key] if uses_groups else None
    label_of = f"{manifest_name}" if manifest_name == dataset else f"{manifest_name} ({dataset})"
    if group_column and (group_column not in table.columns or table[group_column].isna().all()):
        what = "subject IDs" if key == "subject" else f"{key} values ({group_column})"
        usable = [p for p in applicable_protocols(table, group_column) if p != protocol.name]
        raise FerdataError(f"{label_of} has no {what}, so '{protocol.name}' cannot keep {key}s apart; "
                           f"protocols that apply to {label_of}: {', '.join(usable)}")
    if group_column:
        no_group = table[group_column].isna()
        if no_group.any():
            excluded[f"no {group_column}"] = int(no_group.sum())
            table = table[~no_group]
    if protocol.name == "official":
        roles = create_protocol("official").roles(_column(table, "source_split"))
        if not (roles != "").any():
            raise FerdataError(f"{label_of} has no official split (source_split is empty); "
                               f"protocols that apply: {', '.join(p for p in applicable_protocols(table, 'subject_id') if p != 'official')}")
        for split_name, n in table.loc[roles == "", "source_split"].fillna("(none)").value_counts().sort_index().items():
            excluded[f"source split {split_name} has no role"] = int(n)
        table = table[roles != ""]

    table = table.reset_index(drop=True)
    sequence = _column(table, "sequence_id")
    atom = ("img:" + table["image_id"]).to_numpy(dtype=object)
    # The frames of one sequence or clip are one atom (and a clip column joins them even
    # across sequences), so no protocol can put two frames of one take in two roles.
    for column in ATOM_COLUMNS:
        values = _column(table, column)
        if values.notna().any():
            atom = _union_groups(atom, np.where(values.notna(), f"{column}:" + values.astype(str),
                                                "img:" + table["image_id"]).astype(object))
    # Exact copies of one picture are one atom too: the same file in train and test is
    # leakage under any protocol (FER-2013 holds such copies).
    copies = np.where(table["content_hash"].notna(), "sha:" + table["content_hash"].astype(str),
                      "img:" + table["image_id"]).astype(object)
    atom = _union_groups(atom, copies)
    group_value = table[group_column].astype(object).to_numpy() if group_column else np.full(len(table), None, dtype=object)
    groups = _union_groups(group_value.astype(str), atom) if group_column else atom
    frame = pd.DataFrame({
        "image_id": table["image_id"].to_numpy(),
        "path": table["path"].to_numpy(),
        "label": table["label"].to_numpy(),
        "class": table["label"].map(cset.mapping).to_numpy(),
        "y": table["label"].map(cset.index).to_numpy(dtype=np.int64) if len(table) else np.zeros(0, dtype=np.int64),
        "subject": _column(table, "subject_id").astype(object).to_numpy(),
        "sequence": sequence.astype(object).to_numpy(),
        "clip": _column(table, "clip").astype(object).to_numpy(),
        "source_split": _column(table, "source_split").astype(object).to_numpy(),
        "content_hash": table["content_hash"].astype(object).to_numpy(),
        "group_value": group_value,
        "group": groups,
        "atom": atom,
    })
    # A sequence or an exact copy spanning two groups merges them: say so.
    frame.attrs["merged_groups"] = int(len(set(group_value)) - len(set(groups))) if group_column else 0
    return frame, cset, group_column, Counter({k: v for k, v in excluded.items() if v})


def _within(pairs: np.ndarray, hashes: np.ndarray, threshold: int) -> np.ndarray:
    """The pairs whose hashes differ in at most ``threshold`` bits."""
    if len(pairs) == 0:
        return pairs
    dist = np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]])
    return pairs[dist <= threshold]


def join_near_duplicates(frame: pd.DataFrame, pairs: np.ndarray, group_column: str | None) -> dict[str, int]:
    """Make near-identical pictures (pHash within :data:`NEAR_JOIN_THRESHOLD` bits: a
    re-encoding, a resize, the next frame of a clip) one atom, exactly as exact copies
    already are, so no protocol can put them in two roles; groups follow their atoms.
    Updates ``frame`` in place and returns what was joined, for the audit."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    codes, uniques = pd.factorize(frame["atom"].to_numpy(dtype=object))
    pairs = pairs.reshape(-1, 2)
    a, b = codes[pairs[:, 0]], codes[pairs[:, 1]]
    cross = a != b
    if not cross.any():
        return {"pairs": 0, "atoms_merged": 0, "images": 0, "largest": 1 if len(frame) else 0}
    graph = coo_matrix((np.ones(int(cross.sum())), (a[cross], b[cross])), shape=(len(uniques), len(uniques)))
    _, component = connected_components(graph, directed=False)
    # A joined atom is named after its smallest member, so the same data gives the same split.
    name = pd.Series(uniques.astype(str)).groupby(component).transform("min").to_numpy(dtype=object)
    merged = name[codes]
    frame["atom"] = merged
    if group_column:
        group_value = frame["group_value"].astype(str).to_numpy(dtype=object)
        frame["group"] = _union_groups(group_value, merged)
        frame.attrs["merged_groups"] = int(len(set(group_value)) - frame["group"].nunique())
    else:
        frame["group"] = merged
    sizes = pd.Series(merged).value_counts()
    return {"pairs": int(cross.sum()), "atoms_merged": int(len(uniques) - sizes.size),
            "images": int(sizes[sizes > 1].sum()), "largest": int(sizes.max())}


def _check_merged(frame: pd.DataFrame, proto: SplitProtocol, group_column: str | None, manifest_name: str,
                  group_by: str | None, default: str) -> None:
    """Refuse, with the reason, a grouping whose values sequences, clips or duplicates have
    chained into fewer groups than the protocol's folds (SFEW's character IDs, joined by
    clips, collapse into one group holding nearly every frame)."""
    if not group_column or not frame.attrs.get("merged_groups") or not proto.group_disjoint:
        return
    n_groups = int(frame["group"].nunique())
    need = max(2, proto.n_folds_hint() or 2)
    if n_groups >= need:
        return
    n_values = int(pd.Series(frame["group_value"]).nunique())
    largest = int(frame["group"].value_counts().iloc[0])
    fix = f"leave --group-by out to group by {default}" if group_by and group_by != default else "lower --folds"
    raise FerdataError(f"{manifest_name}: the {n_values} {group_column} values merge into {n_groups} group(s) "
                       f"({largest} of {len(frame)} images in the largest), because frames of one sequence or clip "
                       f"and duplicates that must share a role span them; {proto.name} needs {need}: {fix}")


def assign_roles(frame: pd.DataFrame, protocol: SplitProtocol) -> list[np.ndarray]:
    """One role array per fold (``""`` where an image has no role in that fold)."""
    if len(frame) == 0:
        raise FerdataError("no images are left to split (all unreadable, unlabelled or outside the class set)")
    out: list[np.ndarray] = []
    for train, val, test in protocol.split(frame, frame["y"].to_numpy(), frame["group"].to_numpy()):
        roles = np.full(len(frame), "", dtype=object)
        roles[train], roles[val], roles[test] = "train", "val", "test"
        out.append(roles)
    return out


# ---- making and writing ---------------------------------------------------------------------


def _split_table(frame: pd.DataFrame, fold_roles: list[np.ndarray]) -> pa.Table:
    ids, folds, roles = [], [], []
    order = np.argsort(frame["image_id"].to_numpy(), kind="stable")
    image_ids = frame["image_id"].to_numpy()[order]
    for f, fold in enumerate(fold_roles):
        fold = fold[order]
        keep = fold != ""
        ids.extend(image_ids[keep].tolist())
        roles.extend(fold[keep].tolist())
        folds.extend([f] * int(keep.sum()))
    return pa.table({"image_id": pa.array(ids, pa.string()), "fold": pa.array(folds, pa.int32()),
                     "role": pa.array(roles, pa.string())}, schema=SPLIT_SCHEMA)


def table_hash(table: pa.Table) -> str:
    """sha256 of the rows (image_id, fold, role), independent of Parquet encoding."""
    digest = hashlib.sha256()
    for batch in table.select(["image_id", "fold", "role"]).to_batches(max_chunksize=1 << 16):  # bounded memory
        for i, f, r in zip(*(batch.column(c).to_pylist() for c in ("image_id", "fold", "role"))):
            digest.update(f"{i}\t{f}\t{r}\n".encode())
    return digest.hexdigest()


def _counts(frame: pd.DataFrame, fold_roles: list[np.ndarray], classes: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls = frame["class"].to_numpy(dtype=object)
    for f, roles in enumerate(fold_roles):
        per_role: dict[str, dict[str, int]] = {}
        for role in ROLES:
            mask = roles == role
            if mask.any():
                c = Counter(cls[mask])
                per_role[role] = {k: int(c.get(k, 0)) for k in classes}
        out[str(f)] = per_role
    return out


def make_split(manifest: Manifest, protocol: str, *, folds: int | None = None, seed: int = 0,
               val_size: float | None = None, test_size: float | None = None,
               classes: str | ClassSet | None = None, group_by: str | None = None, name: str | None = None,
               strict: bool = False, near_threshold: int | None = None, near_similarity: float | None = None,
               write: bool = True, executor: Executor | None = None, workers: int | None = None,
               progress: ProgressSink | None = None) -> SplitResult:
    """Split a manifest's images into train/val/test roles per fold under ``protocol``,
    audit the split for leakage, and write ``<manifest>/splits/<name>.parquet``.

    Labels are the effective labels (relabel decisions win); unreadable images, images
    without a label, outside the class set or (for person-aware protocols) without a
    group are left out and counted. With ``strict``, leakage the protocol forbids raises
    a :class:`FerdataError` and nothing is written. Writing holds the manifest's write
    lock from reading the images to writing the split, and the split records the
    manifest's :meth:`~ferdata.manifest.Manifest.images_fingerprint` so readers can tell
    when a later ingest made it stale.
    """
    options = dict(folds=folds, seed=seed, val_size=val_size, test_size=test_size, classes=classes,
                   group_by=group_by, name=name, strict=strict, near_threshold=near_threshold,
                   near_similarity=near_similarity, executor=executor, workers=workers, progress=progress)
    with manifest_lock(manifest.dir) if write else nullcontext():  # a dry run takes no lock
        return _make_split(manifest, protocol, write=write, **options)


def _make_split(manifest: Manifest, protocol: str, *, folds: int | None = None, seed: int = 0,
                val_size: float | None = None, test_size: float | None = None,
                classes: str | ClassSet | None = None, group_by: str | None = None, name: str | None = None,
                strict: bool = False, near_threshold: int | None = None, near_similarity: float | None = None,
                write: bool = True, executor: Executor | None = None, workers: int | None = None,
                progress: ProgressSink | None = None) -> SplitResult:
    progress = progress or NullProgress()
    near_threshold = check_near_threshold(near_threshold)
    near_similarity = check_near_similarity(near_similarity)
    if name is not None and not _NAME_RE.match(name):
        raise FerdataError(f"{arg('name')} {name!r}: use letters, digits, '.', '_' and '-' only (e.g. spi-10)")
    proto = create_protocol(protocol, folds=folds, test_size=test_size, val_size=val_size, seed=seed,
                            grouped=bool(group_by))
    fingerprint = manifest.images_fingerprint()
    present = set(pq.read_schema(manifest.images_path).names)
    images = images_with_effective_labels(manifest, columns=[c for c in FRAME_COLUMNS if c in present])
    frame, cset, group_column, excluded = build_frame(manifest.name, manifest.dataset, images, proto,
                                                      classes, group_by)
    del images  # the frame holds what is needed from here on
    note = group_note(manifest.dataset, group_by) if group_by and group_column else None
    executor = executor or create_executor("local", workers=workers)
    near, valid, packed = near_duplicates(manifest, frame, near_threshold, executor, progress, near_similarity)
    if NEAR_JOIN_THRESHOLD <= near_threshold:
        join = _within(near, packed, NEAR_JOIN_THRESHOLD)
    else:  # the join bar is looser than the audit's: search again at it, on the hashes already made
        join = confirmed_near_pairs(manifest, frame, packed, valid, NEAR_JOIN_THRESHOLD, near_similarity, executor,
                                    progress)
    joined = join_near_duplicates(frame, join, group_column)

    _check_merged(frame, proto, group_column, manifest.name, group_by, default_group_by(manifest.dataset))
    fold_roles = assign_roles(frame, proto)
    options = {"folds": folds, "seed": seed, "val_size": val_size, "test_size": test_size,
               "classes": classes.name if isinstance(classes, ClassSet) else classes,
               "group_by": group_by, "near_threshold": near_threshold, "near_similarity": near_similarity}
    return finish_split(manifest, proto, frame, cset, group_column, excluded, fold_roles, options=options, seed=seed,
                        name=name, strict=strict, near_threshold=near_threshold, near_similarity=near_similarity,
                        write=write,
                        near=(near, valid, packed), joined=joined, note=note, fingerprint=fingerprint)


def check_near_threshold(value: int | None) -> int:
    """The pHash bits a near-duplicate may differ in (``None``: the default), validated."""
    value = DEFAULT_NEAR_THRESHOLD if value is None else int(value)
    if not 0 <= value <= MAX_NEAR_THRESHOLD:
        raise FerdataError(f"{arg('near_threshold')} {value}: give the differing pHash bits, 0 to "
                           f"{MAX_NEAR_THRESHOLD} (beyond that unrelated faces match)")
    return value


def check_near_similarity(value: float | None) -> float:
    """The pixel similarity a pHash candidate needs (``None``: the default), validated."""
    value = DEFAULT_NEAR_SIMILARITY if value is None else float(value)
    if not 0.0 <= value <= 1.0:
        raise FerdataError(f"{arg('near_similarity')} {value:g}: give 0 to 1 (0 counts every pHash candidate; "
                           f"default {DEFAULT_NEAR_SIMILARITY})")
    return value


def near_duplicates(manifest: Manifest, frame: pd.DataFrame, near_threshold: int, executor: Executor,
                    progress: ProgressSink, near_similarity: float = DEFAULT_NEAR_SIMILARITY,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of frame rows whose pHashes differ in at most ``near_threshold`` bits and whose
    pixels pass the check of :mod:`ferdata.splits.confirm` (``near_similarity``; 0 skips
    it), which rows have a pHash, and the packed hashes."""
    hashes = perceptual_hashes(manifest, frame["image_id"].tolist(), frame["path"].tolist(),
                               frame["content_hash"].tolist(), executor=executor, progress=progress)
    values = [hashes[i] for i in frame["image_id"]]
    valid = np.array([v is not None for v in values], dtype=bool)
    packed = np.array([v or 0 for v in values], dtype=np.uint64)
    pairs = confirmed_near_pairs(manifest, frame, packed, valid, near_threshold, near_similarity, executor, progress)
    return pairs, valid, packed


def confirmed_near_pairs(manifest: Manifest, frame: pd.DataFrame, packed: np.ndarray, valid: np.ndarray,
                         near_threshold: int, near_similarity: float, executor: Executor,
                         progress: ProgressSink) -> np.ndarray:
    """pHash candidates within ``near_threshold`` bits (exact copies left out: counted apart,
    already one atom) that pass the pixel check."""
    copies = content_codes(frame["content_hash"].tolist())
    candidates = near_pairs(packed, valid, near_threshold, exclude=copies)
    if near_similarity <= 0 or len(candidates) == 0:
        return candidates
    paths = [manifest.resolve(p).as_posix() for p in frame["path"]]
    return confirm_pairs(candidates, paths, copies, near_similarity, executor=executor, progress=progress)


def finish_split(manifest: Manifest, proto: SplitProtocol, frame: pd.DataFrame, cset: ClassSet,
                 group_column: str | None, excluded: Counter, fold_roles: list[np.ndarray], *,
                 options: dict[str, Any], seed: int, name: str | None, strict: bool, near_threshold: int,
                 write: bool, near_similarity: float = DEFAULT_NEAR_SIMILARITY,
                 near: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                 joined: dict[str, int] | None = None, note: str | None = None, fingerprint: str | None = None,
                 executor: Executor | None = None, workers: int | None = None, progress: ProgressSink | None = None,
                 extra: dict[str, Any] | None = None, extra_warnings: list[str] | None = None) -> SplitResult:
    """Audit roles already assigned to ``frame`` (by a protocol, or a reference fold list),
    then write the split table with its metadata (``extra`` joins the metadata). ``near``
    is (pairs, valid, packed hashes) when the caller computed them; ``joined`` what it joined
    before assigning; ``note`` what the grouping column really is; ``fingerprint`` the
    manifest's images as read (default: as they are now)."""
    n_folds = len(fold_roles)
    split_name = name or proto.default_name(n_folds)
    if near is None:
        executor = executor or create_executor("local", workers=workers)
        pairs, valid, packed = near_duplicates(manifest, frame, near_threshold, executor, progress or NullProgress(),
                                               near_similarity)
    else:
        pairs, valid, packed = near
    audit = audit_split(frame, fold_roles, near=pairs, group_disjoint=proto.group_disjoint, group_column=group_column,
                        near_threshold=near_threshold, near_similarity=near_similarity, hashes=packed)
    audit["near_threshold"] = near_threshold
    audit["near_similarity"] = near_similarity
    audit["near_join_threshold"] = NEAR_JOIN_THRESHOLD
    audit["near_duplicates_joined"] = joined if joined is not None else {"pairs": 0, "atoms_merged": 0, "images": 0,
                                                                          "largest": 1 if len(frame) else 0}
    audit["images_without_phash"] = int((~valid).sum())
    if strict and audit["forbidden"]:
        raise FerdataError(f"{manifest.name} split {split_name} ({proto.name}) leaks: {forbidden_summary(audit)}; "
                           f"nothing written ({_leak_fix(audit, near_threshold, proto.name)}, or drop {arg('strict')} to keep "
                           f"the split with every pair listed in its audit)")

    table = _split_table(frame, fold_roles)
    warnings = _warnings(proto, frame, fold_roles, group_column) + list(extra_warnings or ())
    if note:
        warnings.insert(0, note)
    if audit["forbidden"]:  # kept (not --strict), but never silently
        warnings.append(f"leakage the protocol forbids: {forbidden_summary(audit)}; every pair is listed by "
                        f"'ferdata info {manifest.name} --split {split_name}' ({_leak_fix(audit, near_threshold, proto.name)}, "
                        f"or pass --strict to refuse such a split)")
    metadata = {
        "table": "split",
        "format": SPLIT_FORMAT,
        "name": split_name,
        "manifest": manifest.name,
        "dataset": manifest.dataset,
        "protocol": proto.name,
        "options": options,
        "seed": seed,
        "class_set": cset.to_dict(),
        "group_column": group_column,
        "group_by": next((k for k, c in GROUP_COLUMNS.items() if c == group_column), None) if group_column else None,
        "group_note": note,
        "n_folds": n_folds,
        "n_images": int(len(frame)),
        "excluded": dict(sorted(excluded.items())),
        "counts": _counts(frame, fold_roles, cset.classes),
        "audit": audit,
        "warnings": warnings,
        "content_hash": table_hash(table),
        "manifest_hash": fingerprint or manifest.images_fingerprint(),
        **(extra or {}),
    }
    path = None
    if write:
        path = write_table(split_path(manifest, split_name), table, metadata)
    return SplitResult(split_name, table, metadata, path, warnings)


def _leak_fix(audit: dict[str, Any], near_threshold: int, protocol: str) -> str:
    """The fix a leakage warning names: what keeps the pairs that are left in one role."""
    if protocol in ("official", "all-train", "all-test"):
        return (f"{protocol} fixes every role; ppi or kfold keep exact copies, sequences, clips and "
                f"near-duplicates within {NEAR_JOIN_THRESHOLD} bits in one role")
    return (f"near-duplicates within {NEAR_JOIN_THRESHOLD} bits are joined before splitting; if the pairs "
            f"listed are different pictures, pass --near-threshold {NEAR_JOIN_THRESHOLD} or a --near-similarity above "
            f"{audit.get('near_similarity', DEFAULT_NEAR_SIMILARITY):g}")


def _warnings(proto: SplitProtocol, frame: pd.DataFrame, fold_roles: list[np.ndarray],
              group_column: str | None) -> list[str]:
    out: list[str] = []
    if frame.attrs.get("merged_groups"):
        merged = frame.groupby("group", sort=True)["group_value"].agg(lambda v: sorted(set(map(str, v))))
        merged = merged[merged.map(len) > 1]
        shown = "; ".join(" + ".join(values[:4]) + (" + ..." if len(values) > 4 else "") for values in merged[:3])
        largest = int(frame["group"].value_counts().iloc[0])
        out.append(f"{frame.attrs['merged_groups']} {group_column} value(s) merged into another, in "
                   f"{len(merged)} group(s) (e.g. {shown}; the largest group holds {largest} of {len(frame)} "
                   f"images): a sequence, a clip, an exact copy or a near-duplicate spans them, and must share a role"
                   + ("; folds cannot be balanced around so large a group: group by a coarser column (leave "
                      "--group-by out for the dataset's default)" if 2 * largest > len(frame) else ""))
    if proto.name == "sps":
        per_subject = frame.groupby("group", sort=True)["atom"].nunique()
        single = per_subject[per_subject < 2]
        if len(single):
            names = frame.drop_duplicates("group").set_index("group").loc[single.index[:5], "group_value"].astype(str)
            out.append(f"sps: {len(single)} subject(s) with a single image or sequence stay in train "
                       f"(e.g. {', '.join(names)})")
    for f, roles in enumerate(fold_roles):
        for role in ("train", "test"):
            if proto.name not in ("all-train", "all-test") and not (roles == role).any():
                out.append(f"fold {f} has no {role} images")
    return out


# ---- reading -----------------------------------------------------------------------------------


def split_path(manifest: Manifest, name: str) -> Path:
    return manifest.dir / SPLITS_DIR / f"{name}.parquet"


def list_splits(manifest: Manifest) -> list[str]:
    folder = manifest.dir / SPLITS_DIR
    return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []


def _existing(manifest: Manifest, name: str) -> Path:
    path = split_path(manifest, name)
    if not path.exists():
        known = ", ".join(list_splits(manifest)) or "none yet"
        raise FerdataError(f"{manifest.name} has no split {name!r} (have: {known}); make it with "
                           f"'ferdata split {manifest.name} --protocol P --name {name}'")
    return path


def load_split(manifest: Manifest, name: str) -> pa.Table:
    """The split table (image_id, fold, role); its schema metadata keeps the ferdata key,
    which :func:`split_metadata` decodes."""
    return read_table(_existing(manifest, name))


def split_metadata(manifest: Manifest, name: str) -> dict[str, Any]:
    """Protocol, options, class set, counts, audit and content hash of a written split."""
    return read_metadata(_existing(manifest, name))


def remake_command(manifest: Manifest, meta: dict[str, Any]) -> str:
    """The ``ferdata split`` command line that makes this split again."""
    opts = meta.get("options") or {}
    parts = [f"ferdata split {manifest.name} --protocol {meta.get('protocol', 'P')}"]
    for key, flag in (("folds", "--folds"), ("seed", "--seed"), ("val_size", "--val-size"),
                      ("test_size", "--test-size"), ("classes", "--classes"), ("group_by", "--group-by")):
        value = opts.get(key)
        if value not in (None, 0) or (key == "seed" and value):
            parts.append(f"{flag} {value}")
    if meta.get("name"):
        parts.append(f"--name {meta['name']}")
    return " ".join(parts)


def stale_split(manifest: Manifest, name: str, meta: dict[str, Any] | None = None) -> str | None:
    """One line when the manifest's images changed since the split was made (a re-ingest),
    else ``None``. Relabel decisions do not make a split stale: readers apply them."""
    meta = split_metadata(manifest, name) if meta is None else meta
    made_from = meta.get("manifest_hash")
    if not made_from or made_from == manifest.images_fingerprint():
        return None
    return (f"split {name!r} of {manifest.name} was made before images.parquet last changed (a re-ingest), so its "
            f"images may not match the manifest; make it again with '{remake_command(manifest, meta)}'")


def warn_if_stale(manifest: Manifest, name: str, meta: dict[str, Any] | None = None) -> str | None:
    """:func:`stale_split` as a :class:`~ferdata.errors.FerdataWarning` (the CLI prints it as
    one line); returns the message."""
    message = stale_split(manifest, name, meta)
    if message:
        warnings.warn(message, FerdataWarning, stacklevel=2)
    return message
