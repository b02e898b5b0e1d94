"""FER-2013, as the ``fer2013.csv`` (``emotion,pixels,Usage``) or the image-folder variant
(``train/<class>/Training_<id>.jpg``, ``test/<class>/PublicTest_<id>.jpg``).

From the CSV, every row's 2,304 grey values are written as a 48×48 PNG under the manifest
(``<manifest>/images/``), so every later step reads files the same way for every dataset.
A row with the wrong pixel count becomes a flagged row, not a crash.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import (
    NAME_ERROR_FIELD,
    DatasetAdapter,
    Entry,
    Scan,
    at_line,
    csv_rows,
    image_files,
)
from ferdata.errors import LayoutError
from ferdata.findings import Tally
from ferdata.labels import FER2013_CODES, SYNONYMS
from ferdata.manifest.store import IN_MANIFEST

SIDE = 48
PREFIX_RE = re.compile(r"^(Training|PublicTest|PrivateTest)_")
FOLDER_SPLITS = {"train": "Training", "test": "Test", "val": "PublicTest", "validation": "PublicTest"}


def pixels_to_png(pixels: str) -> bytes:
    """The CSV's space-separated grey values → PNG bytes; ValueError names what is wrong."""
    try:
        values = np.array(pixels.split(), dtype=np.int64)
    except ValueError:
        raise ValueError("pixels column holds a non-integer value") from None
    if values.size != SIDE * SIDE:
        raise ValueError(f"{values.size} pixel values, expected {SIDE * SIDE} (48x48)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values outside 0..255")
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint8).reshape(SIDE, SIDE), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@register_dataset("fer2013")
class FER2013(DatasetAdapter):
    code_map = FER2013_CODES
    name = "fer2013"
    description = "FER-2013: 35,887 48x48 faces, 7 classes, official Training/PublicTest/PrivateTest"
    layout = "fer2013.csv (emotion,pixels,Usage) or train|test/<class>/<Usage>_<id>.jpg"

    @staticmethod
    def _csv(source: Path) -> Path | None:
        if source.is_file():
            return source
        candidate = source / "fer2013.csv"
        return candidate if candidate.is_file() else None

    @classmethod
    def detect(cls, source: Path) -> bool:
        if cls._csv(source):
            # fer2013.csv with FER+'s fer2013new.csv beside it is the ferplus layout.
            return not (source.is_dir() and (source / "fer2013new.csv").is_file())
        return source.is_dir() and any((source / d).is_dir() for d in ("train", "test")) and any(
            PREFIX_RE.match(f.name) for d in ("train", "test") if (source / d).is_dir()
            for c in (source / d).iterdir() if c.is_dir() for f in c.iterdir())

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        csv_path = self._csv(source)
        if csv_path is not None:
            return self._scan_csv(csv_path)
        self.require_dir(source)
        return self._scan_folders(source)

    def _scan_csv(self, path: Path) -> Scan:
        entries: list[Entry] = []
        skipped = Tally()
        warnings = Tally()
        rows = csv_rows(path)
        _, header = next(rows, (1, None))
        if not header or [h.strip().lower() for h in header[:2]] != ["emotion", "pixels"]:
            raise LayoutError(f"{path}: header is {header!r}; fer2013 expects 'emotion,pixels,Usage'")
        has_usage = len(header) > 2
        for idx, (line, row) in enumerate(rows):
            rel = f"{idx:05d}.png"
            extras = {"csv_row": idx}
            if not row or not any(c.strip() for c in row):
                skipped.add("empty CSV row", f"{path.name} line {line}")
                continue
            code = row[0].strip()
            usage = row[2].strip() if has_usage and len(row) > 2 else None
            if len(row) < 2:
                entries.append(Entry(rel, code, None, source_split=usage, extras=extras,
                                     error=f"CSV line {line}: missing pixels column"))
                continue
            with at_line(path, line):
                label = self.to_label(code, what="emotion code")
            if label is None:
                skipped.add(f"unknown label {code}", f"{path.name} line {line}")
                continue
            entries.append(Entry(rel, code, label, source_split=usage or None, extras=extras,
                                 payload=row[1]))
        if not entries:
            raise LayoutError(f"{path}: no data rows; fer2013 expects {self.layout}")
        return Scan(entries, IN_MANIFEST + "images", (pa.field("csv_row", pa.int32()),), skipped, warnings,
                    {"layout": "csv", "csv": str(path)}, materialize=pixels_to_png, pre_cropped=True)

    def _scan_folders(self, source: Path) -> Scan:
        tops = [d for d in ("train", "test", "val", "validation") if (source / d).is_dir()]
        if not tops:
            raise LayoutError(f"{source}: neither fer2013.csv nor train/ and test/ folders; fer2013 expects {self.layout}")
        skipped = Tally()
        entries: list[Entry] = []
        for top in tops:
            for rel in image_files(source / top, skipped):
                m = PREFIX_RE.match(rel.rsplit("/", 1)[-1])
                split = m.group(1) if m else FOLDER_SPLITS[top]
                if "/" not in rel:  # a stray file beside the class folders: a row without a label
                    entry = self.unparsed(f"{top}/{rel}", "not inside a class folder", skipped, source_split=split)
                    if entry is not None:
                        entries.append(entry)
                    continue
                folder = rel.split("/", 1)[0]
                label = self.to_label(folder, what="class folder", table=SYNONYMS, key=folder.lower(),
                                      known="angry, disgust, fear, happy, neutral, sad, surprise")
                if label is None:
                    skipped.add(f"unknown label {folder}", f"{top}/{rel}")
                    continue
                entries.append(Entry(f"{top}/{rel}", folder, label, source_split=split))
        return Scan(entries, str(source), (NAME_ERROR_FIELD,), skipped, Tally(), {"layout": "folders"}, pre_cropped=True)

