"""Fake manifests for the split tests: an ``images.parquet`` written directly, with tiny
PNGs on disk so perceptual hashes can be computed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from ferdata.manifest import Manifest, images_schema, write_table

EXTRA = (pa.field("sequence_id", pa.string()), pa.field("frame", pa.int32()), pa.field("movie", pa.string()))


def write_manifest(directory: Path, rows: Sequence[dict], *, dataset: str = "fake", images: bool = True,
                   seed: int = 0) -> Manifest:
    """A manifest from row dicts (image_id, label, subject_id, sequence_id, source_split,
    readable, pixels); missing keys get defaults. ``pixels`` (a 2-D uint8 array) is written
    as the image; without it a random 16×16 image is."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {f.name: [] for f in images_schema(EXTRA)}
    for n, r in enumerate(rows):
        image_id = r.get("image_id", f"img{n:04d}")
        path = f"{image_id}.png"
        pixels = r.get("pixels")
        if images:
            if pixels is None:
                pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(directory / path)
        readable = r.get("readable", True)
        values = {
            "image_id": image_id, "dataset": dataset, "path": path, "label": r.get("label"),
            "label_raw": r.get("label"), "subject_id": r.get("subject_id"), "source_split": r.get("source_split"),
            "width": 16, "height": 16, "mode": "L", "bytes": 1, "content_hash": r.get("content_hash", f"h{image_id}"),
            "readable": readable, "error": None if readable else "broken", "sequence_id": r.get("sequence_id"),
            "frame": r.get("frame"), "movie": r.get("movie"),
        }
        for k, v in values.items():
            columns[k].append(v)
    table = pa.table(columns, schema=images_schema(EXTRA))
    write_table(directory / "images.parquet", table, {"dataset": dataset, "source_root": str(directory)})
    return Manifest(directory)


def people(n_subjects: int = 6, labels: Sequence[str] = ("happy", "sad", "anger"), per_label: int = 2,
           sequences: bool = False) -> list[dict]:
    """Rows for ``n_subjects`` subjects, each with ``per_label`` images of every label
    (grouped into one sequence per subject and label when ``sequences``)."""
    rows = []
    for s in range(n_subjects):
        for lab in labels:
            for k in range(per_label):
                rows.append({"image_id": f"s{s}-{lab}-{k}", "label": lab, "subject_id": f"S{s:03d}",
                             "sequence_id": f"S{s:03d}_{lab}" if sequences else None, "frame": k})
    return rows
