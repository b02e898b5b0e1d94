"""Where manifests live and how their tables are written.

Every table is written through :mod:`ferdata.atomic` (a temporary file in the same
directory renamed over the old one), so a killed run leaves the previous version intact; a
table that cannot be read fails with one line naming the command that writes it again. Provenance (dataset, source
root, options, ferdata version, time) rides in the Parquet schema metadata under the key
``ferdata`` as JSON, so plain readers still see a plain table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ferdata import atomic
from ferdata.errors import DamagedError, ManifestError, arg, from_os_error
from ferdata.manifest.tables import IMAGES_TABLE, written_by

META_KEY = b"ferdata"
ENV_MANIFESTS = "FERDATA_MANIFESTS"
#: ``image_root`` values starting with this are relative to the manifest directory
#: (images ferdata wrote itself, such as FER-2013 pixels decoded from the CSV).
IN_MANIFEST = "@manifest/"


def manifests_root(path: str | os.PathLike | None = None) -> Path:
    """``--manifests`` if given, else ``$FERDATA_MANIFESTS``, else ``./manifests``."""
    return Path(path or os.environ.get(ENV_MANIFESTS) or "manifests")


def list_manifests(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the manifests under ``root`` (folders holding an images table), sorted."""
    base = manifests_root(root)
    return sorted(p.name for p in base.glob("*") if (p / IMAGES_TABLE).exists()) if base.is_dir() else []


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through :mod:`ferdata.atomic` (temp file + rename, umask mode)."""
    return atomic.write_bytes(path, data, fsync=fsync)


def write_table(path: str | os.PathLike, table: pa.Table, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a Parquet table atomically with ferdata metadata; deterministic for equal input."""
    path = Path(path)
    if metadata is not None:
        meta = dict(table.schema.metadata or {})
        meta[META_KEY] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    with atomic.atomic_path(path, needs=table.nbytes) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return path


def _read_failure(path: Path, exc: BaseException) -> Exception:
    """The one line for a table that cannot be read: missing, not readable by this user, or
    damaged (with the command that writes it again)."""
    if isinstance(exc, FileNotFoundError):
        return ManifestError(f"{path} does not exist")
    if isinstance(exc, OSError):
        mapped = from_os_error(exc, str(path), action="read")
        if mapped is not None:
            return mapped
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    why = why.replace(f"Could not open Parquet input source '{path}': ", "").split(". Either")[0].rstrip(".")
    return DamagedError(f"{path} is damaged: {why}; re-run {written_by(str(path))}")


def read_schema(path: str | os.PathLike) -> pa.Schema:
    """A table's Arrow schema, with the same one-line failures as :func:`read_table`."""
    path = Path(path)
    try:
        return pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - every failure becomes its one line
        raise _read_failure(path, exc) from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    schema = read_schema(path)
    raw = (schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # noqa: BLE001 - every failure becomes its one line
        raise _read_failure(path, exc) from None


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
            known = list_manifests(base)
            hint = f" (found: {', '.join(known)})" if known else " (none there yet)"
            if os.sep in str(name) or "/" in str(name) or str(name).startswith((".", "~")):
                what = "does not exist" if not candidate.exists() else f"is not a manifest folder (no {IMAGES_TABLE})"
                raise ManifestError(f"{name} {what}; give a manifest name{hint} or the folder of one")
            raise ManifestError(
                f"no manifest {name!r} under {base}{hint}; create it with 'ferdata ingest DATASET SOURCE --name {name}'"
                f" or point {arg('manifests')} / $FERDATA_MANIFESTS at the right folder"
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

    def images_fingerprint(self) -> str:
        """A hash of which images the manifest holds and what ingest found in them (ids,
        paths, labels, readability, file hashes), blind to the table's metadata and time
        stamp: a split records it, and a later re-ingest that changes it makes the split stale."""
        import hashlib

        import pyarrow.ipc as ipc

        wanted = ("image_id", "path", "label", "readable", "content_hash", "subject_id")
        names = read_schema(self.images_path).names
        table = self.images(columns=[c for c in wanted if c in names]).combine_chunks()
        table = table.replace_schema_metadata(None)
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]

    def require_image_root(self) -> Path:
        """The folder the images are read from, or one line naming it when it is gone
        (moved, unmounted, deleted) instead of one error row per image later."""
        root = self.image_root
        if not root.is_dir():
            raise ManifestError(
                f"{root}, where the images of {self.name} were ingested from, no longer exists; restore or mount it "
                f"there, or ingest it again from where it is now "
                f"('ferdata ingest {self.dataset} NEW_PATH --name {self.name}')")
        return root

    def resolve(self, path: str) -> Path:
        return self.image_root / path

    def __repr__(self) -> str:
        return f"Manifest({str(self.dir)!r})"
