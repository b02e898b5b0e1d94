"""The names of everything a manifest folder holds, and the roles a split gives: the one
place other modules take them from."""

from __future__ import annotations

IMAGES_TABLE = "images.parquet"
"""One row per source image (``ferdata ingest``)."""
FACES_TABLE = "faces.parquet"
"""Per image and preprocessing config (``ferdata preprocess``)."""
CROPS_DIR = "crops"
"""PNG crops under ``crops/<config_hash>/``."""
FEATURES_TABLE = "features.parquet"
"""Descriptor and reduced vectors (``ferdata features``)."""
PHASH_TABLE = "phash.parquet"
"""Cached perceptual hashes (the split's leakage audit)."""
SPLITS_DIR = "splits"
"""``splits/<name>.parquet`` (``ferdata split``)."""
SUSPECTS_TABLE = "suspects.parquet"
"""Likely label errors (``ferdata flag``)."""
LABELS_TABLE = "labels.parquet"
"""The append-only relabel log (``ferdata review pull``)."""

ROLES = ("train", "val", "test")
"""The roles of an image in one fold of a split, in this order."""
