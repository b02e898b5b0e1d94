"""Describe every face of a manifest and write ``features.parquet``.

The per-image work (decode, LPQ, PHOG) runs on the executor in chunks; inside a chunk the
faces of one size are described as one batch, which is where the vectorised descriptors
earn their speed. The reduction is fitted afterwards, in this process, on the rows
``--fit-on`` names (or taken from another features table with ``reduce_from``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata.errors import FerdataError, arg
from ferdata.features.base import Descriptor
from ferdata.features.fitset import FitOn, fit_image_ids, parse_fit_on
from ferdata.features.reduction import Reduction, fit_reduction, parse_reduce
from ferdata.manifest import Manifest, read_metadata, write_table
from ferdata.manifest.lock import manifest_lock
from ferdata.manifest.tables import FEATURES_TABLE
from ferdata.progress import NullProgress, ProgressSink

DEFAULT_DESCRIPTORS = ("lpq", "phog")
#: ``--fit-on`` without ``--reduce`` fits ``pca:5`` (5 + 5 → the 10-D vector of paper 000).
DEFAULT_K = 5

# Per-worker state, built once by the initializer.
_WORKER_DESCRIPTORS: list[Descriptor] = []


@dataclass
class FeaturesResult:
    manifest: Manifest
    path: Path
    input: str  # "crops:<config>" or "images"
    n_images: int
    n_described: int
    skipped: dict[str, int]
    descriptors: dict[str, dict[str, Any]]  # name -> {"params", "length"}
    reduction: Reduction | None
    seconds: float
    columns: list[str] = field(default_factory=list)


def _init_worker(specs: list[tuple[str, dict[str, Any]]]) -> None:
    # No thread limits here: threadpoolctl and cv2.setNumThreads can hang in a forked
    # child whose parent already ran OpenMP / OpenCV threads.
    from ferdata.features._registry import create_descriptor

    _WORKER_DESCRIPTORS[:] = [create_descriptor(name, **options) for name, options in specs]


def describe_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
    """``[(image_id, path)]`` → ``[(image_id, [vector per descriptor] | None, (h, w) | reason)]``."""
    from ferdata.imageio import read_image

    images: dict[int, np.ndarray] = {}
    results: list[tuple[str, Any, Any]] = [(image_id, None, "unreadable") for image_id, _ in chunk]
    for i, (_, path) in enumerate(chunk):
        try:
            images[i] = read_image(path, gray=True)
        except Exception:  # noqa: BLE001 - an undecodable file is counted, not fatal
            continue
    smallest = max((d.min_size() for d in _WORKER_DESCRIPTORS), default=1)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, img in images.items():
        if min(img.shape) < smallest:
            results[i] = (chunk[i][0], None, "too small")
        else:
            by_shape.setdefault(img.shape, []).append(i)
    for shape, idx in by_shape.items():
        batch = np.stack([images[i] for i in idx])
        try:
            vectors = [d.compute(batch) for d in _WORKER_DESCRIPTORS]
        except ValueError as exc:  # e.g. a PHOG ROI larger than these faces: counted by reason
            for i in idx:
                results[i] = (chunk[i][0], None, f"{shape[0]}x{shape[1]}: {exc}")
            continue
        for row, i in enumerate(idx):
            results[i] = (chunk[i][0], [v[row] for v in vectors], shape)
    return results


def _work_items(manifest: Manifest, use_crops: bool, crops_config: str | None) -> tuple[list, str, Counter]:
    from ferdata.manifest.crops import crop_paths, latest_crop_config

    table = manifest.images(columns=["image_id", "path", "readable"])
    skipped: Counter = Counter()
    crops = crop_paths(manifest, crops_config) if use_crops else None
    items = []
    for image_id, path, readable in zip(*(table.column(c).to_pylist() for c in ("image_id", "path", "readable"))):
        if crops is not None:
            crop = crops.get(image_id)
            if crop is None:
                skipped["no face crop"] += 1
                continue
            items.append((image_id, str(crop)))
        elif not readable:
            skipped["unreadable"] += 1
        else:
            items.append((image_id, str(manifest.resolve(path))))
    if crops is not None:
        config = crops_config or latest_crop_config(manifest)
        return items, f"crops:{config}", skipped
    return items, "images", skipped


def load_reduction(source: str | Path, manifests: str | Path | None = None) -> Reduction:
    """The reduction stored in a features.parquet (a path, a manifest folder or a manifest name)."""
    path = Path(source)
    if path.is_dir():
        path = path / FEATURES_TABLE
    if not path.exists():
        try:
            path = Manifest.open(str(source), manifests).table_path(FEATURES_TABLE)
        except FerdataError:
            raise FerdataError(f"{arg('reduce_from')} {source}: no features.parquet there; give a file, folder or manifest name") from None
    if not path.exists():
        raise FerdataError(f"{arg('reduce_from')} {source}: {path} does not exist; run 'ferdata features' there first")
    meta = read_metadata(path).get("reduction")
    if not meta:
        raise FerdataError(f"{arg('reduce_from')} {source}: {path} holds no fitted reduction; re-run it with {arg('fit_on')}")
    reduction = Reduction.from_metadata(meta)
    reduction.fitted_on = {**reduction.fitted_on, "features_table": str(path)}
    return reduction


def compute_features(
    manifest: Manifest,
    descriptors: list[Descriptor] | None = None,
    *,
    reduce: str | None = None,
    fit_on: str | FitOn | None = None,
    reduce_from: str | Path | None = None,
    use_crops: bool = True,
    crops_config: str | None = None,
    executor: Any = None,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    manifests: str | Path | None = None,
) -> FeaturesResult:
    """Describe the manifest's faces and write ``<manifest>/features.parquet``.

    ``reduce`` is ``pca:K`` or ``none``; without it a reduction is fitted (``pca:5``) only
    when ``fit_on`` is given. ``fit_on`` is ``SPLIT[:ROLE[:FOLD]]`` or ``all`` (see
    :mod:`ferdata.features.fitset`). ``reduce_from`` applies the reduction stored in
    another features table instead of fitting one.
    """
    from ferdata.engines import create_executor
    from ferdata.features._registry import create_descriptor

    started = time.perf_counter()
    progress = progress or NullProgress()
    descriptors = descriptors or [create_descriptor(n) for n in DEFAULT_DESCRIPTORS]
    names = [d.name for d in descriptors]
    if len(set(names)) != len(names):
        raise FerdataError(f"{arg('descriptor')} lists a descriptor twice ({', '.join(names)})")
    if reduce_from is not None:
        if fit_on is not None or parse_reduce(reduce) is not None:
            raise FerdataError(f"{arg('reduce_from')} applies a stored reduction; drop {arg('reduce')} / {arg('fit_on')}")
        k = None
    else:
        k = parse_reduce(reduce) if reduce is not None else (DEFAULT_K if fit_on is not None else None)
    if k is not None and fit_on is None:
        raise FerdataError(
            f"{arg('reduce')} pca:{k} needs {arg('fit_on')} SPLIT[:ROLE[:FOLD]] (fit on training images only) or {arg('fit_on')} all "
            "(fit on everything, as paper 000 did: leaks test images into the transform)"
        )
    fit = parse_fit_on(fit_on) if isinstance(fit_on, str) else fit_on
    fit_ids = fit_image_ids(manifest, fit) if fit is not None and k is not None else None
    reduction = load_reduction(reduce_from, manifests) if reduce_from is not None else None

    items, source, skipped = _work_items(manifest, use_crops, crops_config)
    specs = [(d.name, d.params()) for d in descriptors]
    executor = executor or create_executor(workers=workers)
    progress.start(f"features {', '.join(names)}", len(items))
    ids: list[str] = []
    shapes: list[tuple[int, int]] = []
    vectors: list[list[np.ndarray]] = []
    try:
        for image_id, vecs, info in executor.map_chunks(describe_chunk, items, initializer=_init_worker,
                                                        initargs=(specs,), progress=progress.advance):
            if vecs is None:
                skipped[info] += 1
                continue
            ids.append(image_id)
            shapes.append(info)
            vectors.append(vecs)
    finally:
        progress.finish()
    if not ids:
        raise FerdataError(f"{manifest.name}: no image could be described ({dict(skipped) or 'no images'})")

    columns: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for j, name in enumerate(names):
        sizes = {len(v[j]) for v in vectors}
        if len(sizes) > 1:
            raise FerdataError(
                f"{name} vectors have different lengths ({', '.join(map(str, sorted(sizes)))}) because the faces "
                f"differ in size; use crops of one size or drop {arg('matlab_compatible')}"
            )
        columns[name] = np.stack([v[j] for v in vectors])
        lengths[name] = columns[name].shape[1]

    params = {d.name: d.params() for d in descriptors}
    if k is not None:
        rows = np.arange(len(ids)) if fit_ids is None else np.array([i for i, x in enumerate(ids) if x in fit_ids], dtype=np.int64)
        if len(rows) == 0:
            raise FerdataError(f"{arg('fit_on')} {fit.describe()}: none of its images could be described; check the split")
        fitted_on = {**fit.as_dict(), "n_images": int(len(rows))}
        reduction = fit_reduction({n: columns[n][rows] for n in names}, k, fitted_on=fitted_on,
                                  descriptor_params=params)
    elif reduction is not None:
        for name in reduction.descriptors:
            if name in params and reduction.descriptor_params.get(name, params[name]) != params[name]:
                raise FerdataError(
                    f"{arg('reduce_from')}: the stored reduction was fitted on {name} with {reduction.descriptor_params[name]},"
                    f" not {params[name]}; use the same descriptor options"
                )
    reduced = reduction.transform(columns) if reduction is not None else {}

    table = _to_table(ids, shapes, {**columns, **reduced})
    meta = {
        "kind": "features",
        "manifest": manifest.name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ferdata_version": _version(),
        "input": source,
        "descriptors": {n: {"params": params[n], "length": lengths[n], "column": n} for n in names},
        "reduction": reduction.to_metadata() if reduction is not None else None,
        "n_images": len(ids) + sum(skipped.values()),
        "n_described": len(ids),
        "skipped": dict(sorted(skipped.items())),
    }
    with manifest_lock(manifest.dir):
        path = write_table(manifest.table_path(FEATURES_TABLE), table, meta)
    return FeaturesResult(manifest=manifest, path=path, input=source, n_images=meta["n_images"],
                          n_described=len(ids), skipped=dict(skipped),
                          descriptors={n: {"params": params[n], "length": lengths[n]} for n in names},
                          reduction=reduction, seconds=time.perf_counter() - started,
                          columns=table.column_names)


def _to_table(ids: list[str], shapes: list[tuple[int, int]], columns: dict[str, np.ndarray]) -> pa.Table:
    arrays: dict[str, pa.Array] = {
        "image_id": pa.array(ids, pa.string()),
        "height": pa.array([s[0] for s in shapes], pa.int32()),
        "width": pa.array([s[1] for s in shapes], pa.int32()),
    }
    for name, matrix in columns.items():
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])
    return pa.table(arrays)


def _version() -> str:
    from ferdata import __version__

    return __version__


def read_features(manifest: Manifest, column: str) -> tuple[list[str], np.ndarray]:
    """``(image_ids, (N, D) matrix)`` of one column of ``features.parquet`` (for training)."""
    from ferdata.manifest import read_table

    path = manifest.table_path(FEATURES_TABLE)
    if not path.exists():
        raise FerdataError(f"{manifest.name} has no features; run 'ferdata features {manifest.name}' first")
    table = read_table(path)
    if column not in table.column_names:
        have = ", ".join(c for c in table.column_names if c not in ("image_id", "height", "width"))
        raise FerdataError(f"{path} has no column {column!r} (have: {have})")
    col = table.column(column).combine_chunks()
    width = col.type.list_size
    matrix = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    return table.column("image_id").to_pylist(), matrix
