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
