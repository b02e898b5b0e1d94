"""Ingest: a dataset directory in, ``<manifests>/<name>/images.parquet`` out.

The adapter lists the images; this module reads every file once on the executor
(content hash, size and mode from the header, a structural check) and writes the table
atomically with its provenance. Bad files become rows with ``readable=false`` and the
error; nothing stops the run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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
from ferdata.datasets.base import NAME_ERROR_FIELD, SHOWN_PATHS, DatasetAdapter, Entry
from ferdata.engines import Executor, create_executor
from ferdata.errors import FerdataError
from ferdata.imageio import max_pixels as pillow_max_pixels
from ferdata.imageio import probe_bytes, sha256
from ferdata.manifest import SCHEMA_VERSION, Manifest, images_schema, manifests_root, write_table
from ferdata.manifest.store import IN_MANIFEST, read_metadata
from ferdata.manifest.tables import IMAGES_TABLE
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
    name_errors: int = 0
    """Rows whose file name, place or annotation row could not be read (kept, subject empty)."""
    name_error_paths: list[str] = field(default_factory=list)
    """The first few of them."""
    skipped_paths: dict[str, list[str]] = field(default_factory=dict)
    """The first few paths of each skip reason (and of each warning), to name them."""
    warning_paths: dict[str, list[str]] = field(default_factory=dict)
    replaced: str | None = None
    """Where the manifest this ingest replaced (``--replace``) was moved, if one was."""


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
    replace: bool = False,
    **options: Any,
) -> IngestResult:
    """Ingest ``source`` with the ``dataset`` adapter into ``<manifests>/<name>``.

    Re-ingesting the same source with the same adapter refreshes the manifest in place (image
    IDs are stable, so the tables beside it stay valid). A manifest built from another
    source or adapter is never replaced silently: that needs ``replace``, which moves the
    old manifest folder aside (``<name>.replaced-<time>``) rather than deleting it.
    """
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
    previous = _other_source(mdir, adapter.name, source_path)
    if previous is not None and not replace:
        raise FerdataError(f"manifest {name!r} ({mdir}) holds {previous}; this is {adapter.name} from {source_path}: "
                           f"pass --replace to replace it, or --name to ingest beside it")
    replaced = _move_aside(mdir) if previous is not None else None
    try:
        return _ingest_into(adapter, source_path, name, mdir, progress=progress, workers=workers,
                            executor=executor, max_pixels=max_pixels, started=started, replaced=replaced)
    except BaseException:
        if replaced is not None and not (mdir / IMAGES_TABLE).exists():  # put the old manifest back
            shutil.rmtree(mdir, ignore_errors=True)
            os.replace(replaced, mdir)
        raise


def _other_source(mdir: Path, dataset: str, source: Path) -> str | None:
    """``"<adapter> from <root>"`` when ``mdir`` holds a manifest of another source or
    adapter; ``None`` when it holds none or the same one."""
    path = mdir / IMAGES_TABLE
    if not path.exists():
        return None
    try:
        meta = read_metadata(path)
    except FerdataError:
        return "an unreadable images.parquet"
    old_dataset, old_root = meta.get("dataset"), meta.get("source_root")
    if old_dataset == dataset and old_root == str(source):
        return None
    return f"{old_dataset or 'an unknown adapter'} from {old_root or 'an unknown source'}"


def _move_aside(mdir: Path) -> Path:
    """Rename a manifest folder to ``<name>.replaced-<UTC time>`` beside it (nothing is lost)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = mdir.with_name(f"{mdir.name}.replaced-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = mdir.with_name(f"{mdir.name}.replaced-{stamp}-{n}")
    os.replace(mdir, target)
    return target


def _ingest_into(adapter: DatasetAdapter, source_path: Path, name: str, mdir: Path, *, progress: ProgressSink,
                 workers: int | None, executor: Executor | None, max_pixels: int | None, started: float,
                 replaced: Path | None) -> IngestResult:
    dataset = adapter.name
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

    fields = (NAME_ERROR_FIELD, *(f for f in scan.extra_fields if f.name != NAME_ERROR_FIELD.name))
    table = _build_table(adapter.name, entries, results, fields)
    n_unreadable = table.num_rows - sum(table.column("readable").to_pylist())
    unparsed = [e.path for e in entries if e.name_error]
    skipped_paths = dict(getattr(scan.skipped, "paths", {}))
    warning_paths = dict(getattr(scan.warnings, "paths", {}))
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
        "name_errors": {"count": len(unparsed), "first": unparsed[:SHOWN_PATHS]},
        "skipped_paths": skipped_paths,
        "warning_paths": warning_paths,
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
        name_errors=len(unparsed),
        name_error_paths=unparsed[:SHOWN_PATHS],
        skipped_paths=skipped_paths,
        warning_paths=warning_paths,
        replaced=str(replaced) if replaced is not None else None,
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
            extra_cols[k].append(e.name_error if k == NAME_ERROR_FIELD.name else e.extras.get(k))
    return pa.Table.from_pydict({**cols, **extra_cols}, schema=images_schema(extra_fields))
