"""Ingest: a dataset directory in, ``<manifests>/<name>/images.parquet`` out.

The adapter lists the images; this module reads every file once on the executor
(content hash, size and mode from the header, a structural check) and writes the table
atomically with its provenance. Bad files become rows with ``readable=false`` and the
error; nothing stops the run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from ferdata import __version__
from ferdata.datasets import create_dataset
from ferdata.datasets.base import Entry
from ferdata.engines import Executor, create_executor
from ferdata.errors import FerdataError
from ferdata.imageio import max_pixels as pillow_max_pixels
from ferdata.imageio import probe_bytes, sha256
from ferdata.manifest import SCHEMA_VERSION, Manifest, images_schema, manifests_root, write_table
from ferdata.manifest.store import IN_MANIFEST
from ferdata.progress import NullProgress, ProgressSink


@dataclass
class IngestResult:
    manifest: Manifest
    n_rows: int
    n_unreadable: int
    labels: Counter
    skipped: Counter
    warnings: Counter
    report: dict[str, Any]
    seconds: float
    errors: Counter = field(default_factory=Counter)


def image_id(dataset: str, path: str) -> str:
    """Stable across re-ingests and machines: dataset + relative path, hashed."""
    return hashlib.sha256(f"{dataset}\x00{path}".encode()).hexdigest()[:16]


# ---- worker side (module level so it pickles) --------------------------------------------

_Task = tuple[str, str, Any, Callable[[Any], bytes] | None, int]
_Result = tuple[int | None, int | None, str | None, int | None, str | None, bool, str | None]


def _probe_one(root: str, rel: str, payload: Any, materialize: Callable[[Any], bytes] | None,
               limit: int) -> _Result:
    full = os.path.join(root, rel)
    try:
        if materialize is not None:
            data = materialize(payload)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            tmp = f"{full}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, full)
        else:
            with open(full, "rb") as fh:
                data = fh.read()
    except (OSError, ValueError) as exc:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, None, None, None, None, False, f"{type(exc).__name__}: {msg}"
    p = probe_bytes(data, limit=limit)
    return p.width, p.height, p.mode, len(data), sha256(data), p.readable, p.error


def _probe_chunk(tasks: list[_Task]) -> list[_Result]:
    return [_probe_one(*t) for t in tasks]


# ---- driver -------------------------------------------------------------------------------


def ingest(
    dataset: str,
    source: str | os.PathLike,
    *,
    name: str | None = None,
    manifests: str | os.PathLike | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: ProgressSink | None = None,
    max_pixels: int | None = None,
    label_map: str | dict | None = None,
    skip_unknown: bool = False,
    pre_cropped: bool | None = None,
    **options: Any,
) -> IngestResult:
    """Ingest ``source`` with the ``dataset`` adapter into ``<manifests>/<name>``.
    ``pre_cropped`` overrides what the adapter knows about its layout (your own folder of
    aligned faces: ``True``)."""
    started = time.perf_counter()
    progress = progress or NullProgress()
    adapter = create_dataset(dataset, label_map=label_map, skip_unknown=skip_unknown, **options)
    source_path = Path(source).expanduser()
    if not source_path.exists():
        raise FerdataError(f"{source_path} does not exist; give the {dataset} source ({adapter.layout})")
    source_path = source_path.resolve()
    name = name or dataset
    if not name or "/" in name or name.startswith("."):
        raise FerdataError(f"manifest name {name!r} is not a plain folder name; choose one with --name")
    mdir = manifests_root(manifests) / name
    mdir.mkdir(parents=True, exist_ok=True)

    progress.start(f"scanning {source_path.name}", 0)
    scan = adapter.scan(source_path, mdir)
    progress.finish()
    if not scan.entries:
        raise FerdataError(f"{source_path}: no images found; {dataset} expects {adapter.layout}")

    root = scan.image_root
    root_dir = str(mdir / root[len(IN_MANIFEST):]) if root.startswith(IN_MANIFEST) else root
    limit = pillow_max_pixels() if max_pixels is None else max_pixels
    entries = sorted(scan.entries, key=lambda e: e.path)
    seen_paths: set[str] = set()
    for e in entries:
        if e.path in seen_paths:
            raise FerdataError(f"{dataset}: {e.path} is listed twice by the source; remove the duplicate entry")
        seen_paths.add(e.path)

    todo = [i for i, e in enumerate(entries) if e.error is None]
    tasks: list[_Task] = [(root_dir, entries[i].path, entries[i].payload, scan.materialize, limit) for i in todo]
    results: list[_Result | None] = [None] * len(entries)
    executor = executor or create_executor("local", workers=workers)
    progress.start("reading images", len(tasks))
    for i, res in zip(todo, executor.map_chunks(_probe_chunk, tasks, progress=progress.advance)):
        results[i] = res
    progress.finish()

    table = _build_table(adapter.name, entries, results, scan.extra_fields)
    n_unreadable = table.num_rows - sum(table.column("readable").to_pylist())
    meta = {
        "table": "images",
        "schema_version": SCHEMA_VERSION,
        "dataset": adapter.name,
        "name": name,
        "source_root": str(source_path),
        "image_root": root,
        "adapter_options": adapter.adapter_options(),
        "ferdata_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_pixels": limit,
        "skipped": dict(scan.skipped),
        "warnings": dict(scan.warnings),
        "report": scan.report,
        "n_rows": table.num_rows,
        "n_unreadable": n_unreadable,
        "pre_cropped": bool(scan.pre_cropped if pre_cropped is None else pre_cropped),
    }
    manifest = Manifest(mdir)
    write_table(manifest.images_path, table, meta)
    errors = Counter(e.split(":")[0] for e in table.column("error").drop_null().to_pylist())
    return IngestResult(
        manifest=manifest,
        n_rows=table.num_rows,
        n_unreadable=n_unreadable,
        labels=Counter(table.column("label").to_pylist()),
        skipped=scan.skipped,
        warnings=scan.warnings,
        report=scan.report,
        seconds=time.perf_counter() - started,
        errors=errors,
    )


def _build_table(dataset: str, entries: list[Entry], results: list, extra_fields: tuple[pa.Field, ...]) -> pa.Table:
    cols: dict[str, list] = {k: [] for k in (
        "image_id", "dataset", "path", "label", "label_raw", "subject_id", "source_split",
        "width", "height", "mode", "bytes", "content_hash", "readable", "error")}
    extra_cols: dict[str, list] = {f.name: [] for f in extra_fields}
    for e, res in zip(entries, results):
        cols["image_id"].append(image_id(dataset, e.path))
        cols["dataset"].append(dataset)
        cols["path"].append(e.path)
        cols["label"].append(e.label)
        cols["label_raw"].append(e.label_raw)
        cols["subject_id"].append(e.subject_id)
        cols["source_split"].append(e.source_split)
        if res is None:
            w = h = mode = nbytes = digest = None
            readable, error = False, e.error
        else:
            w, h, mode, nbytes, digest, readable, error = res
        cols["width"].append(w)
        cols["height"].append(h)
        cols["mode"].append(mode)
        cols["bytes"].append(nbytes)
        cols["content_hash"].append(digest)
        cols["readable"].append(bool(readable))
        cols["error"].append(error)
        for k in extra_cols:
            extra_cols[k].append(e.extras.get(k))
    return pa.Table.from_pydict({**cols, **extra_cols}, schema=images_schema(extra_fields))
