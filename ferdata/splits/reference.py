"""Reference fold lists: the folds behind a published result, as image names, so anyone can
rebuild exactly those folds on their own copy of the dataset.

A reference is a small CSV shipped in ``ferdata/splits/references/`` (or any file of the
same shape): two comment lines (a legend, then the split's metadata as JSON: protocol,
options, class set, group column, folds, the content hash of the original split's rows),
then one row per image: ``name`` (path relative to the dataset folder), ``sha256`` of the
file (blank where unknown), ``label``, ``group`` (the value of the column the protocol kept
apart) and ``roles``, one letter per fold (``R`` train, ``V`` val, ``T`` test, ``.`` none).
No pixels.

:func:`apply_reference` matches every row to an image of a manifest by path, then by
content hash (a renamed copy), then by file name alone (the same frames in another layout,
e.g. CK+48 and the original CK+), writes ``splits/<name>.parquet`` with the usual leakage
audit, and reports the rows it could not match. :func:`export_reference` writes the
reference of any split, so a new result can ship its folds the same way.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferdata.engines import Executor
from ferdata.errors import FerdataError
from ferdata.labels import ClassSet, class_set
from ferdata.manifest import Manifest, atomic_write_bytes
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.manifest.lock import manifest_lock
from ferdata.progress import NullProgress, ProgressSink

REFERENCES_DIR = Path(__file__).resolve().parent / "references"
REFERENCE_FORMAT = 1
SUFFIX = ".csv"
ROLE_LETTERS = {"train": "R", "val": "V", "test": "T"}
LETTER_ROLES = {v: k for k, v in ROLE_LETTERS.items()}
NO_ROLE = "."
COLUMNS = ("name", "sha256", "label", "group", "roles")
LEGEND = ("# ferdata reference split: name = image path relative to the dataset folder, sha256 of the file, "
          "label, group kept apart, roles = one letter per fold (R train, V val, T test, . none). "
          "Apply with: ferdata split MANIFEST --reference FILE")
#: Header keys copied from the split's metadata, in this order (the file is deterministic).
HEADER_KEYS = ("name", "dataset", "protocol", "options", "seed", "class_set", "group_column", "n_folds", "n_images",
               "content_hash")


@dataclass
class Reference:
    """A loaded reference fold list: its header (split metadata) and rows."""

    name: str
    header: dict[str, Any]
    rows: pd.DataFrame
    path: Path

    @property
    def n_folds(self) -> int:
        return int(self.header["n_folds"])

    @property
    def classes(self) -> ClassSet:
        return ClassSet.from_dict(self.header["class_set"])


# ---- finding and reading ---------------------------------------------------------------------------


def list_references() -> list[str]:
    """Names of the reference fold lists shipped with ferdata."""
    return sorted(p.name[: -len(SUFFIX)] for p in REFERENCES_DIR.glob(f"*{SUFFIX}"))


def reference_path(spec: str | os.PathLike) -> Path:
    """A shipped reference by name (``ckplus48-spi-10``), or a file path."""
    text = str(spec)
    shipped = REFERENCES_DIR / f"{text}{SUFFIX}"
    if "/" not in text and os.sep not in text and shipped.is_file():
        return shipped
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FerdataError(f"no reference fold list {text!r}: give a file, or one of: {', '.join(list_references())}")


def load_reference(spec: str | os.PathLike) -> Reference:
    """Read a reference file (shipped name or path); a malformed file is one clear error."""
    path = reference_path(spec)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    header_line = next((ln for ln in lines[:3] if ln.startswith("# {")), None)
    if header_line is None:
        raise FerdataError(f"{path} is not a ferdata reference fold list (no '# {{...}}' header line); "
                           "make one with 'ferdata split NAME --protocol P --export-reference FILE'")
    try:
        header = json.loads(header_line[2:])
    except json.JSONDecodeError as exc:
        raise FerdataError(f"{path}: the header line is not valid JSON ({exc.msg})") from None
    missing = [k for k in ("name", "protocol", "class_set", "n_folds") if k not in header]
    if missing:
        raise FerdataError(f"{path}: the header lacks {', '.join(missing)}; re-export the reference")
    body = "\n".join(ln for ln in lines if not ln.startswith("#"))
    rows = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False)
    if tuple(rows.columns) != COLUMNS:
        raise FerdataError(f"{path}: columns are {', '.join(rows.columns)}; expected {', '.join(COLUMNS)}")
    n = int(header["n_folds"])
    bad = rows[(rows["roles"].str.len() != n) | ~rows["roles"].str.fullmatch(r"[RVT.]*")]
    if len(bad):
        raise FerdataError(f"{path}: row {bad.index[0] + 1} ({bad.iloc[0]['name']}) has roles "
                           f"{bad.iloc[0]['roles']!r}; expected {n} letters of R, V, T or '.'")
    if rows["name"].duplicated().any():
        dup = rows.loc[rows["name"].duplicated(), "name"].iloc[0]
        raise FerdataError(f"{path}: image {dup} is listed twice")
    return Reference(str(header["name"]), header, rows, path)


# ---- exporting --------------------------------------------------------------------------------------


def reference_text(manifest: Manifest, split: str) -> str:
    """The reference file of ``splits/<split>.parquet``: deterministic, so exporting the split
    a reference rebuilt gives the shipped file back byte for byte."""
    from ferdata.splits import load_split, split_metadata

    meta = split_metadata(manifest, split)
    table = load_split(manifest, split).to_pandas()
    n_folds = int(meta["n_folds"])
    images = images_with_effective_labels(manifest).to_pandas().set_index("image_id")
    group_column = meta.get("group_column")
    roles = {i: [NO_ROLE] * n_folds for i in table["image_id"].unique()}
    for image_id, fold, role in zip(table["image_id"], table["fold"], table["role"]):
        roles[image_id][int(fold)] = ROLE_LETTERS[role]
    out = []
    for image_id, letters in roles.items():
        row = images.loc[image_id]
        group = row.get(group_column) if group_column else None
        out.append((str(row["path"]), _text(row.get("content_hash")), _text(row.get("label")), _text(group),
                    "".join(letters)))
    # A split rebuilt from a reference exports under the reference's name: it is the same list.
    name = (meta.get("reference") or {}).get("name") or meta["name"]
    return format_reference({**meta, "name": name}, out)


def format_reference(meta: dict[str, Any], rows: list[tuple[str, str, str, str, str]]) -> str:
    """The file text for split metadata ``meta`` (the keys of :data:`HEADER_KEYS`) and rows
    ``(name, sha256, label, group, roles)``; rows are sorted by name."""
    out = sorted(rows)
    header = {k: meta.get(k) for k in HEADER_KEYS}
    header["format"] = REFERENCE_FORMAT
    buf = io.StringIO()
    buf.write(LEGEND + "\n")
    buf.write("# " + json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(out)
    return buf.getvalue()


def export_reference(manifest: Manifest, split: str, path: str | os.PathLike) -> Path:
    """Write the reference of a split to ``path`` (atomically)."""
    path = Path(path).expanduser()
    atomic_write_bytes(path, reference_text(manifest, split).encode("utf-8"))
    return path


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


# ---- applying ---------------------------------------------------------------------------------------


@dataclass
class Match:
    """Which image each reference row found (``image_ids[i]`` or ``None``), and how."""

    image_ids: list[str | None]
    how: Counter

    @property
    def matched(self) -> int:
        return sum(1 for i in self.image_ids if i is not None)


def match_rows(rows: pd.DataFrame, images: pd.DataFrame) -> Match:
    """Match reference rows to manifest images: path, then content hash, then file name.

    Each image is used at most once; the file-name tier only pairs names that are unique on
    both sides (so two ``001.png`` in different folders never pair by accident).
    """
    result: list[str | None] = [None] * len(rows)
    how: Counter = Counter()
    used: set[str] = set()
    by_path = dict(zip(images["path"].astype(str), images["image_id"]))
    for i, name in enumerate(rows["name"]):
        image_id = by_path.get(name)
        if image_id is not None and image_id not in used:
            result[i] = image_id
            used.add(image_id)
            how["path"] += 1
    by_hash: dict[str, list[str]] = {}
    for image_id, digest in sorted(zip(images["image_id"], images["content_hash"].fillna("").astype(str)),
                                   key=lambda t: t[0]):
        if digest and image_id not in used:
            by_hash.setdefault(digest, []).append(image_id)
    for i, digest in enumerate(rows["sha256"]):
        if result[i] is None and digest and by_hash.get(digest):
            result[i] = by_hash[digest].pop(0)
            used.add(result[i])
            how["content hash"] += 1
    base_rows = Counter(Path(n).name for i, n in enumerate(rows["name"]) if result[i] is None)
    free = images[~images["image_id"].isin(used)]
    base_images: dict[str, list[str]] = {}
    for image_id, path in zip(free["image_id"], free["path"].astype(str)):
        base_images.setdefault(Path(path).name, []).append(image_id)
    for i, name in enumerate(rows["name"]):
        base = Path(name).name
        if result[i] is None and base_rows[base] == 1 and len(base_images.get(base, ())) == 1:
            result[i] = base_images[base][0]
            used.add(result[i])
            how["file name"] += 1
    return Match(result, how)


def apply_reference(manifest: Manifest, reference: str | os.PathLike | Reference, *, classes: str | None = None,
                    name: str | None = None, strict: bool = False, near_threshold: int | None = None,
                    near_similarity: float | None = None, write: bool = True, executor: Executor | None = None,
                    workers: int | None = None,
                    progress: ProgressSink | None = None) -> Any:
    """Rebuild a reference's folds on ``manifest`` and write ``splits/<name>.parquet``
    (default: the reference's name). Returns a :class:`ferdata.splits.SplitResult` whose
    metadata ``reference`` says how many rows matched, how, and which did not.

    ``classes`` may narrow the reference's class set (CK+ ``6`` out of all seven); images
    outside it, unreadable or unlabelled images and images the reference does not list get
    no role and are counted, as in :func:`ferdata.splits.make_split`.
    """
    with manifest_lock(manifest.dir) if write else nullcontext():  # a dry run takes no lock
        return _apply_reference(manifest, reference, classes=classes, name=name, strict=strict,
                                near_threshold=near_threshold, near_similarity=near_similarity, write=write,
                                executor=executor, workers=workers,
                                progress=progress)


def _apply_reference(manifest: Manifest, reference: str | os.PathLike | Reference, *, classes: str | None,
                     name: str | None, strict: bool, near_threshold: int | None, near_similarity: float | None,
                     write: bool,
                     executor: Executor | None, workers: int | None, progress: ProgressSink | None) -> Any:
    from ferdata.splits import create_protocol
    from ferdata.splits.make import (
        build_frame,
        check_near_similarity,
        check_near_threshold,
        finish_split,
    )

    progress = progress or NullProgress()
    fingerprint = manifest.images_fingerprint()
    ref = reference if isinstance(reference, Reference) else load_reference(reference)
    header = ref.header
    near_threshold = header.get("options", {}).get("near_threshold") if near_threshold is None else near_threshold
    near_threshold = check_near_threshold(near_threshold)
    if near_similarity is None:
        near_similarity = header.get("options", {}).get("near_similarity")
    near_similarity = check_near_similarity(near_similarity)
    cset = _narrow(ref, classes)
    options = dict(header.get("options") or {})
    seed = int(header.get("seed", options.get("seed") or 0))
    group_by = options.get("group_by")
    proto = create_protocol(header["protocol"], folds=options.get("folds"), test_size=options.get("test_size"),
                            val_size=options.get("val_size"), seed=seed, grouped=bool(group_by))
    images = images_with_effective_labels(manifest)
    table = images.to_pandas()
    match = match_rows(ref.rows, table)
    if match.matched == 0:
        raise FerdataError(f"none of the {len(ref.rows)} images of reference {ref.name} are in {manifest.name} "
                           f"(matched by path, content hash and file name); is it the dataset the reference "
                           f"lists ({header.get('dataset')}), e.g. {ref.rows['name'].iloc[0]}?")
    # A copy that lost its subject ids (renamed files) takes them from the reference.
    filled = 0
    group_col = header.get("group_column")
    if group_col:
        ref_group = {i: g for i, g in zip(match.image_ids, ref.rows["group"]) if i is not None and g}
        if group_col not in table.columns:
            table[group_col] = None
        missing = table[group_col].isna() & table["image_id"].isin(ref_group)
        filled = int(missing.sum())
        if filled:
            table[group_col] = table[group_col].astype(object)
            table.loc[missing, group_col] = table.loc[missing, "image_id"].map(ref_group)
            import pyarrow as pa

            images = pa.Table.from_pandas(table, preserve_index=False)
    frame, cset, group_column, excluded = build_frame(manifest.name, manifest.dataset, images, proto, cset, group_by)

    letters = {image_id: ref.rows["roles"].iloc[i] for i, image_id in enumerate(match.image_ids) if image_id}
    ref_label = {image_id: ref.rows["label"].iloc[i] for i, image_id in enumerate(match.image_ids) if image_id}
    listed = frame["image_id"].isin(letters)
    if (~listed).any():
        excluded["not in the reference"] = int((~listed).sum())
    frame = frame[listed].reset_index(drop=True)
    if len(frame) == 0:
        raise FerdataError(f"the {match.matched} images of {manifest.name} that reference {ref.name} lists are all "
                           f"unreadable, unlabelled or outside class set {cset.name}")
    fold_roles = []
    for k in range(ref.n_folds):
        fold = np.array([LETTER_ROLES.get(letters[i][k], "") for i in frame["image_id"]], dtype=object)
        fold_roles.append(fold)
    label_differs = sum(1 for i, lab in zip(frame["image_id"], frame["label"]) if ref_label.get(i) not in ("", lab))
    unmatched = [n for n, i in zip(ref.rows["name"], match.image_ids) if i is None]
    info = {"name": ref.name, "file": ref.path.name, "rows": int(len(ref.rows)), "matched": match.matched,
            "matched_by": dict(sorted(match.how.items())), "unmatched": len(unmatched),
            "unmatched_sample": unmatched[:10], "label_differs": label_differs, "groups_from_reference": filled,
            "reference_content_hash": header.get("content_hash")}
    warnings = []
    if unmatched:
        warnings.append(f"{len(unmatched)} of the {len(ref.rows)} images reference {ref.name} lists are not in "
                        f"{manifest.name} (first: {', '.join(unmatched[:3])}); the folds hold the {match.matched} "
                        "found. Ingest the complete dataset to rebuild the reference's folds exactly")
    if label_differs:
        warnings.append(f"{label_differs} image(s) carry another label than in reference {ref.name} (relabelled "
                        "or another label file); their manifest label is used")
    return finish_split(manifest, proto, frame, cset, group_column, excluded, fold_roles, options=options, seed=seed,
                        name=name or ref.name, strict=strict, near_threshold=near_threshold,
                        near_similarity=near_similarity, write=write,
                        executor=executor, workers=workers, progress=progress, extra={"reference": info},
                        extra_warnings=warnings, fingerprint=fingerprint)


def _narrow(ref: Reference, classes: str | None) -> ClassSet:
    """The reference's class set, or ``classes`` (CK+ ``6`` out of all seven): images the
    reference does not list get no role either way, so any set keeps its folds."""
    if classes is None:
        return ref.classes
    return class_set(classes, present=ref.classes.mapping)
