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

#: The command that writes each table, for ``<table> is damaged: <why>; re-run <command>``.
#: ``{name}`` is the manifest's name; a leading "remove it, then" marks commands that read
#: the old table before they write the new one.
WRITTEN_BY = {
    IMAGES_TABLE: "'ferdata ingest DATASET SOURCE --name {name}'",
    FACES_TABLE: "'ferdata preprocess {name}' after removing it (its crops are made again)",
    FEATURES_TABLE: "'ferdata features {name}'",
    PHASH_TABLE: "'ferdata split {name} ...' after removing it (a cache; it is rebuilt)",
    SUSPECTS_TABLE: "'ferdata flag {name} ...'",
    LABELS_TABLE: "'ferdata review pull {name}' after moving it aside (decisions are pulled again)",
}


def written_by(path: str) -> str:
    """The command that re-makes the table at ``path`` (a manifest table, a split, a run file)."""
    from pathlib import Path

    p = Path(path)
    if p.parent.name == SPLITS_DIR:
        return f"'ferdata split {p.parent.parent.name} --protocol P --name {p.stem}'"
    if p.name in WRITTEN_BY:
        return WRITTEN_BY[p.name].format(name=p.parent.name)
    if p.suffix in (".parquet", ".json", ".jsonl", ".pt"):
        return f"'ferdata train --resume {p.parent}' (or train it again)"
    return "the command that wrote it"
