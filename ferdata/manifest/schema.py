"""Arrow schemas of the manifest tables.

Only plain Arrow types: every table must open in pandas, polars and DuckDB as it is.
"""

from __future__ import annotations

import pyarrow as pa

from ferdata.labels import VOCABULARY

SCHEMA_VERSION = 1

#: Columns every ``images.parquet`` has, in this order; dataset extras follow them.
IMAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("label", pa.string()),
    pa.field("label_raw", pa.string()),
    pa.field("subject_id", pa.string()),
    pa.field("source_split", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("mode", pa.string()),
    pa.field("bytes", pa.int64()),
    pa.field("content_hash", pa.string()),
    pa.field("readable", pa.bool_(), nullable=False),
    pa.field("error", pa.string()),
)
IMAGE_COLUMNS = tuple(f.name for f in IMAGE_FIELDS)


#: ``faces.parquet``: one row per image and preprocessing config.
_POINTS = pa.list_(pa.float64())
STAGES = ("decode_ms", "detect_ms", "clahe_ms", "align_ms", "write_ms", "total_ms")
FACES_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("config_hash", pa.string(), nullable=False),
    pa.field("detector", pa.string(), nullable=False),
    pa.field("n_faces", pa.int32()),
    pa.field("face_found", pa.bool_(), nullable=False),
    pa.field("fallback", pa.string()),       # null (a face was found), "whole" or "skip"
    pa.field("flat", pa.bool_()),            # all-black / near-constant frame
    pa.field("box", _POINTS),                # x0, y0, x1, y1 of the primary face, original pixels
    pa.field("score", pa.float64()),
    pa.field("eye_left", _POINTS),           # x, y (the eye on the image's left)
    pa.field("eye_right", _POINTS),
    pa.field("landmarks", _POINTS),          # x0, y0, x1, y1, ... the detector's other points
    pa.field("all_boxes", _POINTS),          # every face found: 4 values per face
    pa.field("align", pa.string()),          # applied: none | rotate | spatial | whole
    pa.field("rotation_deg", pa.float64()),
    pa.field("transform", _POINTS),          # 2x3 affine, original pixels -> crop pixels, row-major
    pa.field("crop_path", pa.string()),      # relative to the manifest dir; null when skipped
    pa.field("error", pa.string()),
    pa.field("padded", pa.bool_()),          # searched on an upsampled, padded copy (tight crops)
    *(pa.field(s, pa.float64()) for s in STAGES),
])

#: ``splits/<name>.parquet``: one row per image and fold it has a role in.
SPLIT_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
])

#: ``phash.parquet``: the leakage audit's cache of perceptual hashes.
PHASH_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("content_hash", pa.string()),
    pa.field("phash", pa.string()),
])

#: ``suspects.parquet``: likely label errors, ranked.
SUSPECTS_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("path", pa.string()),
    pa.field("subject_id", pa.string()),
    pa.field("given_label", pa.string(), nullable=False),
    pa.field("suggested_label", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("reasons", pa.list_(pa.string())),
    pa.field("flagged_by", pa.string(), nullable=False),
    pa.field("self_confidence", pa.float64()),
    pa.field("normalized_margin", pa.float64()),
    pa.field("p_suggested", pa.float64()),
])

#: ``labels.parquet``: the append-only relabel log.
LABELS_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("old_label", pa.string()),
    pa.field("new_label", pa.string(), nullable=False),
    pa.field("annotator", pa.string()),
    pa.field("time", pa.string()),
    pa.field("project", pa.string()),
    pa.field("task_id", pa.int64()),
    pa.field("source", pa.string()),
    pa.field("note", pa.string()),  # the reviewer's free text; null in logs written before it existed
])


def table_from_rows(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts; a missing key is null) as a table of ``schema``, built column by column:
    ``pa.Table.from_pylist`` with a schema is about 15× slower on list columns, which the
    face pipeline pays once per chunk."""
    return pa.Table.from_arrays([pa.array([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema)


def images_schema(extra: tuple[pa.Field, ...] = ()) -> pa.Schema:
    return pa.schema(IMAGE_FIELDS + tuple(extra))


def validate_images(table: pa.Table) -> list[str]:
    """Problems that make an ``images.parquet`` unsafe to use; empty when it is sound."""
    problems: list[str] = []
    names = set(table.column_names)
    for field in IMAGE_FIELDS:
        if field.name not in names:
            problems.append(f"column {field.name!r} is missing")
        elif not table.schema.field(field.name).type.equals(field.type):
            problems.append(
                f"column {field.name!r} has type {table.schema.field(field.name).type}, expected {field.type}"
            )
    if problems:
        return problems
    ids = table.column("image_id")
    if ids.null_count:
        problems.append(f"{ids.null_count} rows have no image_id")
    n_unique = len(set(ids.to_pylist()))
    if n_unique != table.num_rows:
        problems.append(f"image_id is not unique ({table.num_rows - n_unique} repeated)")
    labels = set(table.column("label").drop_null().to_pylist())
    unknown = labels - set(VOCABULARY)
    if unknown:
        problems.append(f"labels outside the vocabulary: {', '.join(sorted(unknown))}")
    readable = table.column("readable").to_pylist()
    errors = table.column("error").to_pylist()
    bad = sum(1 for r, e in zip(readable, errors) if (not r) and not e)
    if bad:
        problems.append(f"{bad} unreadable rows carry no error message")
    return problems
