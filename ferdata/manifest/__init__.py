"""Manifest tables: schemas, the store, validation."""

from ferdata.manifest.schema import IMAGE_COLUMNS, SCHEMA_VERSION, images_schema, table_from_rows, validate_images
from ferdata.manifest.store import (
    Manifest,
    atomic_write_bytes,
    list_manifests,
    manifests_root,
    read_metadata,
    read_table,
    write_table,
)

__all__ = [
    "IMAGE_COLUMNS",
    "SCHEMA_VERSION",
    "Manifest",
    "atomic_write_bytes",
    "images_schema",
    "list_manifests",
    "manifests_root",
    "read_metadata",
    "read_table",
    "table_from_rows",
    "validate_images",
    "write_table",
]
