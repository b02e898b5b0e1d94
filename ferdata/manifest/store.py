"""Where manifests live and how their tables are written.

Every table is written to a temporary file in the same directory and renamed over the
old one, so a killed run leaves the previous version intact. Provenance (dataset, source
root, options, ferdata version, time) rides in the Parquet schema metadata under the key
``ferdata`` as JSON, so plain readers still see a plain table.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ferdata.errors import ManifestError
from ferdata.manifest.tables import IMAGES_TABLE

META_KEY = b"ferdata"
ENV_MANIFESTS = "FERDATA_MANIFESTS"
#: ``image_root`` values starting with this are relative to the manifest directory
#: (images ferdata wrote itself, such as FER-2013 pixels decoded from the CSV).
IN_MANIFEST = "@manifest/"


def manifests_root(path: str | os.PathLike | None = None) -> Path:
    """``--manifests`` if given, else ``$FERDATA_MANIFESTS``, else ``./manifests``."""
    return Path(path or os.environ.get(ENV_MANIFESTS) or "manifests")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(path: str | os.PathLike, table: pa.Table, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a Parquet table atomically with ferdata metadata; deterministic for equal input."""
    path = Path(path)
    if metadata is not None:
        meta = dict(table.schema.metadata or {})
        meta[META_KEY] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    except Exception as exc:  # noqa: BLE001
        raise ManifestError(f"{path} is not a readable Parquet file ({exc}); re-create it") from None
    raw = (schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    except Exception as exc:  # noqa: BLE001
        raise ManifestError(f"{path} is not a readable Parquet file ({exc}); re-create it") from None


class Manifest:
    """One manifest directory: ``images.parquet`` plus the tables later steps add beside it."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.name = self.dir.name
        self._meta_cache: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}

    @classmethod
    def open(cls, name: str, root: str | os.PathLike | None = None) -> Manifest:
        """Open an existing manifest by name (or by path), failing with the fix if absent."""
        base = manifests_root(root)
        candidate = Path(name)
        directory = candidate if (candidate / IMAGES_TABLE).exists() else base / name
        if not (directory / IMAGES_TABLE).exists():
            known = sorted(p.name for p in base.glob("*") if (p / IMAGES_TABLE).exists()) if base.exists() else []
            hint = f" (found: {', '.join(known)})" if known else ""
            raise ManifestError(
                f"no manifest {name!r} under {base}{hint}; create it with 'ferdata ingest DATASET SOURCE --name {name}'"
                " or point --manifests / $FERDATA_MANIFESTS at the right folder"
            )
        return cls(directory)

    @property
    def images_path(self) -> Path:
        return self.dir / IMAGES_TABLE

    def table_path(self, name: str) -> Path:
        return self.dir / name

    def metadata(self, table: str = IMAGES_TABLE) -> dict[str, Any]:
        """The table's ferdata metadata, cached until the file changes (``resolve`` asks for
        it once per image)."""
        path = self.dir / table
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ManifestError(f"{path} does not exist") from None
        key = (st.st_mtime_ns, st.st_size)
        cached = self._meta_cache.get(table)
        if cached is None or cached[0] != key:
            cached = (key, read_metadata(path))
            self._meta_cache[table] = cached
        return cached[1]

    def images(self, columns: list[str] | None = None) -> pa.Table:
        return read_table(self.images_path, columns=columns)

    @property
    def dataset(self) -> str:
        return self.metadata()["dataset"]

    @property
    def image_root(self) -> Path:
        """Where ``path`` values are relative to."""
        root = self.metadata().get("image_root") or self.metadata()["source_root"]
        if root.startswith(IN_MANIFEST):
            return self.dir / root[len(IN_MANIFEST):]
        return Path(root)

    def resolve(self, path: str) -> Path:
        return self.image_root / path

    def __repr__(self) -> str:
        return f"Manifest({str(self.dir)!r})"
