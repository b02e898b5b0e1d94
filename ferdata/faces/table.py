"""``faces.parquet``: its schema, and how a run's rows reach it without ever risking it.

A run never rewrites the table per image. Each finished chunk of rows goes into its own
small Arrow IPC part under ``<manifest>/.faces-journal/`` (written atomically, so a part is
either whole or absent; Arrow rather than Parquet because a part is written once per chunk
and read once, and Arrow does both about 5× faster). The journal is merged into
``faces.parquet`` at the end of a run and at the start of the next one,
with one atomic ``write_table``, under the manifest's write lock.
A killed run therefore loses only the chunks in flight, and concurrent runs of different
configs on one manifest never overwrite each other's rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ferdata.errors import ManifestError
from ferdata.manifest import Manifest, atomic_write_bytes, read_metadata, read_table, table_from_rows, write_table
from ferdata.manifest.lock import manifest_lock
from ferdata.manifest.schema import FACES_SCHEMA
from ferdata.manifest.tables import CROPS_DIR, FACES_TABLE

JOURNAL_DIR = ".faces-journal"
PART_SUFFIX = ".arrow"
SCHEMA_VERSION = 1

def faces_path(manifest: Manifest) -> Path:
    return manifest.table_path(FACES_TABLE)


def crops_dir(manifest: Manifest, config_hash: str) -> Path:
    return manifest.dir / CROPS_DIR / config_hash


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return table_from_rows(rows, FACES_SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """``table`` in today's schema: columns an older ferdata did not write yet are null."""
    n = table.num_rows
    return pa.Table.from_arrays(
        [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
         for f in FACES_SCHEMA], schema=FACES_SCHEMA)


@contextmanager
def locked(manifest: Manifest) -> Iterator[None]:
    """The manifest's write lock (:mod:`ferdata.manifest.lock`) around a merge."""
    with manifest_lock(manifest.dir):
        yield


class Journal:
    """The parts one run appends; names carry the config hash and the process id."""

    def __init__(self, manifest: Manifest, config_hash: str, config: dict[str, Any]) -> None:
        self.dir = manifest.dir / JOURNAL_DIR
        self.config_hash = config_hash
        self.config = config
        self._seq = 0

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._seq += 1
        name = f"{self.config_hash}-{os.getpid()}-{self._seq:06d}{PART_SUFFIX}"
        table = rows_to_table(rows).replace_schema_metadata(
            {"config_hash": self.config_hash, "config": json.dumps(self.config, sort_keys=True)})
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        atomic_write_bytes(self.dir / name, sink.getvalue().to_pybytes())


def _read_part(part: Path) -> tuple[str, dict[str, Any], pa.Table]:
    """``(config hash, config, rows)`` of one journal part (Parquet parts are an earlier format)."""
    if part.suffix == ".parquet":
        meta = read_metadata(part)
        return meta["config_hash"], meta["config"], read_table(part)
    try:
        with pa.memory_map(str(part)) as source:
            table = ipc.open_file(source).read_all()
        meta = table.schema.metadata
        return meta[b"config_hash"].decode(), json.loads(meta[b"config"]), table.replace_schema_metadata(None)
    except (pa.ArrowException, KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{part} is not a readable journal part ({type(exc).__name__}); delete it and "
                            "re-run: its images are simply done again") from None


def read_faces(manifest: Manifest, config_hash: str | None = None) -> pa.Table:
    """The merged table (empty when there is none), optionally one config's rows."""
    path = faces_path(manifest)
    if not path.exists():
        return FACES_SCHEMA.empty_table()
    table = conform(read_table(path))
    if config_hash is not None:
        table = table.filter(pc.equal(table.column("config_hash"), config_hash))
    return table


def merge_journal(manifest: Manifest, latest: str | None = None, config: dict[str, Any] | None = None) -> int:
    """Fold every journal part into ``faces.parquet`` (one atomic write); the newest row per
    (image, config) wins. ``latest``/``config`` name the run that is finishing. Returns the
    number of parts merged."""
    with locked(manifest):
        journal = manifest.dir / JOURNAL_DIR
        parts = sorted((p for p in journal.iterdir() if p.suffix in (PART_SUFFIX, ".parquet")),
                       key=lambda p: (p.stat().st_mtime_ns, p.name)) if journal.is_dir() else []
        path = faces_path(manifest)
        if not parts and (path.exists() or latest is None):
            if latest is not None and path.exists():
                meta = read_metadata(path)
                if meta.get("latest_config") != latest:
                    meta["latest_config"] = latest
                    meta.setdefault("configs", {})[latest] = config
                    write_table(path, read_table(path), meta)
            return 0
        meta = read_metadata(path) if path.exists() else {}
        configs: dict[str, Any] = dict(meta.get("configs", {}))
        tables = [conform(read_table(path))] if path.exists() else []
        last_hash = None
        for part in parts:
            last_hash, configs[last_hash], rows = _read_part(part)
            tables.append(conform(rows))
        if latest is not None:
            configs[latest] = config
        table = _newest_per_key(pa.concat_tables(tables) if tables else FACES_SCHEMA.empty_table())
        latest_config = latest or meta.get("latest_config") or last_hash
        write_table(path, table, {**meta, "table": "faces", "schema_version": SCHEMA_VERSION,
                                  "latest_config": latest_config, "configs": configs,
                                  "n_rows": table.num_rows})
        for part in parts:
            part.unlink(missing_ok=True)
        return len(parts)


def _newest_per_key(table: pa.Table) -> pa.Table:
    """Keep the last row of each (image_id, config_hash), sorted by config then image."""
    if table.num_rows == 0:
        return table
    keys = list(zip(table.column("config_hash").to_pylist(), table.column("image_id").to_pylist()))
    last = {k: i for i, k in enumerate(keys)}
    order = sorted(last, key=lambda k: k)
    return table.take(pa.array([last[k] for k in order], pa.int64()))
