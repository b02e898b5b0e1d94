"""Ingest: a dataset directory in, ``<manifests>/<name>/images.parquet`` out.

The adapter lists the images; this module reads every file once on the executor
(content hash, size and mode from the header, a structural check) and writes the table
atomically with its provenance. Bad files become rows with ``readable=false`` and the
error; nothing stops the run.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import itertools
import multiprocessing
import operator
import os
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferdata import __version__, atomic
from ferdata.datasets import create_dataset
from ferdata.datasets.base import (
    NAME_ERROR_FIELD,
    OUTSIDE,
    Entry,
    Rows,
    link_policy,
    outside_error,
    read_inside,
)
from ferdata.engines import Executor, create_executor, default_chunksize, kept_pool
from ferdata.errors import FerdataError, FerdataWarning, Interrupted, arg
from ferdata.findings import KEEP, first_paths
from ferdata.imageio import max_pixels as pillow_max_pixels
from ferdata.imageio import probe_bytes, sha256
from ferdata.manifest import (
    SCHEMA_VERSION,
    Manifest,
    images_schema,
    manifests_root,
    write_table,
)
from ferdata.manifest.lock import manifest_lock
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
    replaced: str | None = None
    """Where the manifest this ingest replaced (``--replace``) was moved, if one was."""


def image_id(dataset: str, path: str) -> str:
    """Stable across re-ingests and machines: dataset + relative path, hashed."""
    return hashlib.sha256(f"{dataset}\x00{path}".encode()).hexdigest()[:16]


# ---- worker side (module level so it pickles) --------------------------------------------


@dataclass(frozen=True)
class _ReadContext:
    """What every file of one ingest shares, sent once per worker rather than once per file."""

    dataset: str
    root: str
    materialize: Callable[[Any], bytes] | None
    limit: int
    boundary: str | None
    """The dataset root's real path: a file whose real path lies outside it is not read."""


_Task = tuple[list[str], list[Any] | None]
"""(relative paths, their payloads for ``materialize`` or ``None``), one batch of files."""
_Result = tuple[str, int | None, int | None, str | None, int | None, str | None, bool, str | None]
"""(image ID, width, height, mode, bytes, content hash, readable, error)."""

_context: _ReadContext | None = None


def _start_reader(context: _ReadContext) -> None:
    """Per-worker set-up. A forked worker inherits the driver's paused collector: on again."""
    global _context
    _context = context
    if multiprocessing.parent_process() is not None:
        gc.enable()


def _probe_one(ctx: _ReadContext, rel: str, payload: Any) -> _Result:
    """Read (or, for FER-2013 pixels, write) one file and probe it."""
    full = os.path.join(ctx.root, rel)
    iid = image_id(ctx.dataset, rel)  # here, on every worker, rather than serially on the driver
    try:
        if ctx.materialize is not None:
            data = ctx.materialize(payload)
            atomic.write_bytes(full, data, fsync=False)
        else:
            data, refused = read_inside(full, ctx.boundary)
            if data is None:
                return iid, None, None, None, None, None, False, refused
    except (OSError, ValueError) as exc:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return iid, None, None, None, None, None, False, f"{type(exc).__name__}: {msg}"
    p = probe_bytes(data, limit=ctx.limit)
    return iid, p.width, p.height, p.mode, len(data), sha256(data), p.readable, p.error


#: The columns a worker fills, in :data:`_Result`'s order.
PROBED_SCHEMA = pa.schema([images_schema().field(name) for name in (
    "image_id", "width", "height", "mode", "bytes", "content_hash", "readable", "error")])


def _probe_batches(batches: list[_Task]) -> list[pa.RecordBatch]:
    """Each batch of files read and probed, returned as Arrow columns: converting them here,
    on every worker, spares the driver 430,644 result tuples to unpickle, turn and convert
    one after the other (AffectNet scale)."""
    ctx = _context
    if ctx is None:  # pragma: no cover - every engine runs the initializer first
        raise RuntimeError("ingest worker started without its read context")
    out = []
    for paths, payloads in batches:
        rows = [_probe_one(ctx, rel, payload) for rel, payload in zip(paths, payloads or itertools.repeat(None))]
        columns = zip(*rows) if rows else ([] for _ in PROBED_SCHEMA)
        out.append(pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, PROBED_SCHEMA)],
                                              schema=PROBED_SCHEMA))
    return out


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
    follow_links: bool = False,
    replace: bool = False,
    pre_cropped: bool | None = None,
    **options: Any,
) -> IngestResult:
    """Ingest ``source`` with the ``dataset`` adapter into ``<manifests>/<name>``.

    Files and folders whose real path lies outside ``source`` (through a link) become error
    rows and are never read, unless ``follow_links``. The manifest's write lock is held
    throughout; Ctrl-C leaves the previous ``images.parquet`` as it was.

    Re-ingesting the same source with the same adapter refreshes the manifest in place (image
    IDs are stable, so the tables beside it stay valid). A manifest built from another
    source or adapter is never replaced silently: that needs ``replace``, which moves the
    old manifest folder aside (``<name>.replaced-<time>``) rather than deleting it.
    ``pre_cropped`` overrides what the adapter knows about its layout (your own folder of
    aligned faces: ``True``).
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
        raise FerdataError(f"manifest name {name!r} is not a plain folder name; choose one with {arg('name')}")
    mdir = manifests_root(manifests) / name
    previous = _other_source(mdir, adapter.name, source_path)
    if previous is not None and not replace:
        raise FerdataError(f"manifest {name!r} ({mdir}) holds {previous}; this is {adapter.name} from {source_path}: "
                           f"pass {arg('replace')} to replace it, or {arg('name')} to ingest beside it")
    replaced = _move_aside(mdir) if previous is not None else None
    try:
        mdir = atomic.make_folder(mdir)
        executor = executor or create_executor("local", workers=workers)
        _load_list_conversion()
        # the pool is forked before the scan fills this process with rows (and before the lock,
        # so its workers hold no copy of it); the collector is paused while the rows live
        with kept_pool(executor), manifest_lock(mdir), collector_paused():
            manifest, table, scan = _ingest_locked(adapter, dataset, source_path, name, mdir, limit=(
                pillow_max_pixels() if max_pixels is None else max_pixels), follow_links=follow_links,
                pre_cropped=pre_cropped, executor=executor, progress=progress)
    except BaseException as exc:
        if replaced is not None and not (mdir / IMAGES_TABLE).exists():  # put the old manifest back
            shutil.rmtree(mdir, ignore_errors=True)
            atomic.move(replaced, mdir)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(f"nothing written ({mdir / IMAGES_TABLE} is as it was); run the ingest again") from None
        raise
    n_unreadable = n_unreadable_rows(table)
    paths, error = table.column("path"), table.column("error")
    name_error = table.column(NAME_ERROR_FIELD.name)
    unparsed = paths.filter(pc.greater(pc.fill_null(pc.utf8_length(name_error), 0), 0)).to_pylist()
    errors = Counter(e.split(":")[0] for e in error.drop_null().to_pylist())
    linked_out = pc.fill_null(pc.starts_with(error, OUTSIDE), False)
    outside = list(zip(paths.filter(linked_out).to_pylist(), error.filter(linked_out).to_pylist()))
    if outside:
        first, why = outside[0]
        warnings.warn(f"{len(outside)} file(s) or folder(s) of {source_path} link outside it (e.g. {first} "
                      f"{why[len(OUTSIDE):].split(';')[0].strip()}); recorded as unreadable rows, not read: pass "
                      "--follow-links to read them", FerdataWarning, stacklevel=2)
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
        name_error_paths=unparsed[:KEEP],
        replaced=str(replaced) if replaced is not None else None,
    )


def _load_list_conversion() -> None:
    """pyarrow imports pandas the first time it converts a Python list (0.2-0.3 s of CPU):
    once here, before the pool forks, rather than once more in every worker."""
    pa.array([], pa.string())


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
    return atomic.move(mdir, target)


def _ingest_locked(adapter: Any, dataset: str, source_path: Path, name: str, mdir: Path, *, limit: int,
                   follow_links: bool, pre_cropped: bool | None, executor: Executor,
                   progress: ProgressSink) -> tuple[Manifest, pa.Table, Any]:
    """Scan, read every file and write ``images.parquet`` (under the manifest's lock)."""
    progress.start(f"scanning {source_path.name}", 0)
    with link_policy(source_path, follow_links) as links:
        try:
            scan = adapter.scan(source_path, mdir)
        except FerdataError as exc:
            if not links.refused:
                raise
            raise FerdataError(f"{exc} ({len(links.refused)} folder(s) link outside {source_path}, e.g. "
                            f"{links.refused[0]} -> {os.path.realpath(links.refused[0])}, and were not read: "
                            f"pass {arg('follow_links')} to read them)") from None
    progress.finish()
    if not scan.entries and not links.refused:
        raise FerdataError(f"{source_path}: no images found; {dataset} expects {adapter.layout}")

    root = scan.image_root
    root_dir = str(mdir / root[len(IN_MANIFEST):]) if root.startswith(IN_MANIFEST) else root
    fields = (NAME_ERROR_FIELD, *(f for f in scan.extra_fields if f.name != NAME_ERROR_FIELD.name))
    rows = (scan.entries if isinstance(scan.entries, Rows)
            else Rows.from_entries(scan.entries, tuple(f.name for f in fields[1:])))
    rows = _in_path_order(rows.concat(Rows.from_entries(_refused_entries(links.refused, root_dir))), dataset)

    boundary = None if follow_links or scan.materialize is not None else os.path.realpath(source_path)
    read = range(len(rows)) if rows.error is None else [i for i, e in enumerate(rows.error) if e is None]
    context = _ReadContext(adapter.name, root_dir, scan.materialize, limit, boundary)
    size = default_chunksize(len(read), executor.workers)
    batches = [_task(rows, read[i : i + size]) for i in range(0, len(read), size)]
    probed: list[pa.RecordBatch] = []
    progress.start("reading images", len(read))
    try:
        # strict: the engine's generator runs to its end here, so its pool stops now, not at
        # garbage collection (where a Ctrl-C would be printed as an ignored exception)
        for (paths, _), done in zip(batches, executor.map_chunks(_probe_batches, batches, chunksize=1,
                                                                 initializer=_start_reader, initargs=(context,)),
                                    strict=True):
            probed.append(done)
            progress.advance(len(paths))
    finally:
        progress.finish()
        if scan.materialize is not None:
            atomic.sweep_stale(root_dir, force=True)  # temporary files of stopped workers

    # one chunk per column: the Parquet writer pays per chunk (841 at AffectNet scale)
    table = _build_table(adapter.name, rows, pa.Table.from_batches(probed, schema=PROBED_SCHEMA).combine_chunks(),
                         fields)
    n_unreadable = n_unreadable_rows(table)
    unparsed = [path for path, why in zip(rows.path, rows.name_error or ()) if why]
    meta = {
        "table": "images",
        "schema_version": SCHEMA_VERSION,
        "dataset": adapter.name,
        "name": name,
        "source_root": str(source_path),
        "image_root": root,
        "adapter_options": adapter.adapter_options(),
        "follow_links": follow_links,
        "ferdata_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_pixels": limit,
        "skipped": dict(scan.skipped),
        "warnings": dict(scan.warnings),
        "skipped_first": first_paths(scan.skipped),
        "warnings_first": first_paths(scan.warnings),
        "name_errors": {"count": len(unparsed), "first": unparsed[:KEEP]},
        "report": scan.report,
        "n_rows": table.num_rows,
        "n_unreadable": n_unreadable,
        "pre_cropped": bool(scan.pre_cropped if pre_cropped is None else pre_cropped),
    }
    manifest = Manifest(mdir)
    write_table(manifest.images_path, table, meta)
    return manifest, table, dataclasses.replace(scan, entries=[])  # the rows go with this frame, not to the collector


def _in_path_order(rows: Rows, dataset: str) -> Rows:
    """``rows`` sorted by path, which must be unique. Most adapters list them sorted already:
    one comparison per row says so (sorting 430,644 entries by a key cost 0.2 s)."""
    paths = rows.path
    if all(map(operator.lt, paths, itertools.islice(paths, 1, None))):  # sorted, so no path twice
        return rows
    rows = rows.take(sorted(range(len(paths)), key=paths.__getitem__))
    paths = rows.path
    twice = next((a for a, b in zip(paths, itertools.islice(paths, 1, None)) if a == b), None)
    if twice is not None:  # sorted: a path listed twice sits beside itself
        raise FerdataError(f"{dataset}: {twice} is listed twice by the source; remove the duplicate entry")
    return rows


def _task(rows: Rows, read: range | list[int]) -> _Task:
    """The paths (and payloads) of the rows numbered ``read``: list slices when every row is read."""
    def pick(values: list[Any]) -> list[Any]:
        return values[read.start : read.stop] if isinstance(read, range) else [values[i] for i in read]

    return pick(rows.path), None if rows.payload is None else pick(rows.payload)


def _refused_entries(refused: list[str], root_dir: str) -> list[Entry]:
    """One error row per folder link that leads outside the dataset root."""
    out = []
    for path in refused:
        rel = os.path.relpath(path, root_dir).replace(os.sep, "/")
        out.append(Entry(rel, None, None, error=outside_error(os.path.realpath(path))))
    return out


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while hundreds of thousands of rows are built.

    Every few hundred new objects the collector walks the young ones, and every few of those
    walks all of them: building 430,644 entries cost 1.16 s of CPU with it and 0.32 s without
    (AffectNet scale, ``benchmarks/scale.py``). Rows hold no reference cycles, so nothing is
    left for it to find. Ingest holds it off from the scan until the rows are freed, so it
    never walks them on the way out either (0.4 s more when it came back on with the rows
    alive); it is switched back on (if it was on) however the block ends."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def n_unreadable_rows(table: pa.Table) -> int:
    return table.num_rows - int(pc.sum(table.column("readable")).as_py() or 0)


def _build_table(dataset: str, rows: Rows, probed: pa.Table, extra_fields: tuple[pa.Field, ...]) -> pa.Table:
    """One row per entry: what the adapter knows, column by column, beside what the workers
    found (``probed``: one row per entry read, in order); entries never read get their
    error, no size and no hash."""
    n = len(rows)
    missing = (np.zeros(n, dtype=bool) if rows.error is None
               else np.fromiter((e is not None for e in rows.error), dtype=bool, count=n))
    if missing.any():  # rare (a link out of the root, a CSV row without pixels): spread the rows out
        position = np.full(n, -1, dtype=np.int64)
        position[~missing] = np.arange(probed.num_rows)
        probed = probed.take(pa.array(position, mask=missing))
    found = {f.name: probed.column(f.name) for f in PROBED_SCHEMA}
    if missing.any():
        ids: list[str | None] = [None] * n
        errors: list[str | None] = [None] * n
        for i in np.flatnonzero(missing):
            ids[i], errors[i] = image_id(dataset, rows.path[i]), rows.error[i]
        found["image_id"] = pc.if_else(missing, pa.array(ids, pa.string()), found["image_id"])
        found["error"] = pc.if_else(missing, pa.array(errors, pa.string()), found["error"])
        found["readable"] = pc.fill_null(found["readable"], False)
    schema = images_schema(extra_fields)
    given = ("path", "label", "label_raw", "subject_id", "source_split")
    cols: dict[str, Any] = {**found, **{name: getattr(rows, name) for name in given},
                            "dataset": pa.repeat(pa.scalar(dataset, pa.string()), n)}
    for f in extra_fields:
        cols[f.name] = rows.name_error if f.name == NAME_ERROR_FIELD.name else rows.extras.get(f.name)
    return pa.Table.from_arrays([_as_column(cols[f.name], f.type, n) for f in schema], schema=schema)


def _as_column(values: Any, type_: pa.DataType, n: int) -> pa.ChunkedArray | pa.Array:
    """Arrow as it is, a list converted, ``None`` (a column the adapter did not give) as nulls."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return pa.nulls(n, type_) if values is None else pa.array(values, type=type_)
