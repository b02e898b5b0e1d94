"""The contract between face preprocessing and everything that reads faces.

``ferdata preprocess`` writes ``<manifest>/faces.parquet`` (one row per image and
preprocessing config) and PNG crops under ``<manifest>/crops/<config_hash>/``. The table's
ferdata metadata names the most recent config as ``latest_config``. Readers (features,
training, prediction) call :func:`crop_paths` and fall back to the original images when
it returns ``None``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from ferdata.errors import FerdataError
from ferdata.manifest.store import Manifest, read_metadata, read_table
from ferdata.manifest.tables import FACES_TABLE



def latest_crop_config(manifest: Manifest) -> str | None:
    """The config hash of the most recent ``ferdata preprocess`` run, or ``None``."""
    path = manifest.table_path(FACES_TABLE)
    return read_metadata(path).get("latest_config") if path.exists() else None


def crop_paths(manifest: Manifest, config: str | None = None) -> dict[str, Path] | None:
    """``{image_id: crop file}`` for one preprocessing config (default: the latest), or
    ``None`` when the manifest has no crops yet."""
    path = manifest.table_path(FACES_TABLE)
    if not path.exists():
        if config:
            raise FerdataError(f"{manifest.name} has no crops; run 'ferdata preprocess {manifest.name}' first")
        return None
    config = config or latest_crop_config(manifest)
    table = read_table(path, columns=["image_id", "config_hash", "crop_path"])
    known = sorted(set(table.column("config_hash").to_pylist()))
    if config not in known:
        raise FerdataError(f"{manifest.name}: no preprocessing config {config!r} (have: {', '.join(known) or 'none'})")
    rows = table.filter(pc.equal(table.column("config_hash"), config)).to_pylist()
    return {r["image_id"]: manifest.dir / r["crop_path"] for r in rows if r["crop_path"]}
