"""AffectNet: the annotation CSVs (``training.csv``, ``validation.csv``) plus the image root.

Keeps the 11 expression codes (none/uncertain/no-face included, as labels training
excludes by default), valence and arousal (``-2`` = absent → null), and the given face box
and 68 landmarks. Paths from the CSV that point outside the image root become error rows.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pyarrow as pa

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan, inside
from ferdata.errors import FerdataError, LayoutError
from ferdata.labels import AFFECTNET_CODES

COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal")
EXTRA_FIELDS = (
    pa.field("face_x", pa.int32()), pa.field("face_y", pa.int32()),
    pa.field("face_width", pa.int32()), pa.field("face_height", pa.int32()),
    pa.field("landmarks", pa.list_(pa.float32())),
    pa.field("valence", pa.float32()), pa.field("arousal", pa.float32()),
)
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "images")
CSV_DIRS = ("", "Manually_Annotated_file_lists", "Manually_Annotated")


def _num(value: str, cast=float):
    value = value.strip()
    return cast(float(value)) if value else None


@register_dataset("affectnet")
class AffectNet(DatasetAdapter):
    code_map = AFFECTNET_CODES
    name = "affectnet"
    description = "AffectNet: web faces, 11 codes, valence/arousal, given boxes and 68 landmarks"
    layout = "an image root plus training.csv / validation.csv (subDirectory_filePath,face_x,...,arousal)"
    options = ("csv",)

    @classmethod
    def _find_csvs(cls, source: Path) -> list[Path]:
        return [source / d / f for d in CSV_DIRS for f in ("training.csv", "validation.csv")
                if (source / d / f).is_file()]

    @classmethod
    def detect(cls, source: Path) -> bool:
        return source.is_dir() and bool(cls._find_csvs(source))

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        self.require_dir(source)
        given = self.opts.get("csv") or ()
        csvs = [Path(c) if Path(c).is_absolute() else source / c for c in given] or self._find_csvs(source)
        if not csvs:
            raise LayoutError(f"{source}: no training.csv / validation.csv found; name them with --csv "
                              f"(affectnet expects {self.layout})")
        for c in csvs:
            if not c.is_file():
                raise FerdataError(f"--csv {c} does not exist")
        image_root = next((source / d for d in IMAGE_DIRS if (source / d).is_dir()), source)

        entries: list[Entry] = []
        skipped: Counter = Counter()
        warnings: Counter = Counter()
        for c in csvs:
            split = c.stem.lower()
            with open(c, newline="", encoding="utf-8", errors="replace") as fh:
                reader = csv.reader(fh)
                header = next(reader, None) or []
                if [h.strip() for h in header[: len(COLUMNS)]] != list(COLUMNS):
                    raise LayoutError(f"{c}: header {header[:3]}...; affectnet expects {', '.join(COLUMNS)}")
                for n, row in enumerate(reader, 2):
                    if not row or not row[0].strip():
                        skipped["empty CSV row"] += 1
                        continue
                    rel = row[0].strip().replace("\\", "/")
                    if len(row) < len(COLUMNS):
                        entries.append(Entry(rel, None, None, source_split=split,
                                             error=f"{c.name} line {n}: {len(row)} columns, expected {len(COLUMNS)}"))
                        continue
                    code = row[6].strip()
                    label = self.to_label(code, what="expression code")
                    if label is None:
                        skipped[f"unknown label {code}"] += 1
                        continue
                    error = None
                    if not inside(image_root, rel):
                        error = f"{c.name} line {n}: path {rel!r} points outside the image root"
                    try:
                        extras = {
                            "face_x": _num(row[1], int), "face_y": _num(row[2], int),
                            "face_width": _num(row[3], int), "face_height": _num(row[4], int),
                            "landmarks": [float(v) for v in row[5].split(";") if v.strip()] or None,
                            "valence": _num(row[7]), "arousal": _num(row[8]),
                        }
                    except ValueError:
                        extras, error = {}, f"{c.name} line {n}: a box, landmark or valence/arousal value is not a number"
                    for k in ("valence", "arousal"):
                        if extras.get(k) is not None and extras[k] <= -2:
                            extras[k] = None
                    entries.append(Entry(rel, code, label, source_split=split, extras=extras, error=error))
        seen: Counter = Counter(e.path for e in entries)
        dup = {p for p, k in seen.items() if k > 1}
        if dup:
            warnings["image listed in more than one row (first kept)"] += sum(seen[p] - 1 for p in dup)
            kept, done = [], set()
            for e in entries:
                if e.path in done:
                    continue
                done.add(e.path)
                kept.append(e)
            entries = kept
        report = {"csvs": [str(c) for c in csvs], "image_root": str(image_root)}
        return Scan(entries, str(image_root), EXTRA_FIELDS, skipped, warnings, report)
