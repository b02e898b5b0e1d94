"""Run directories: ``<runs>/<run-id>/`` with config.json, history, checkpoints,
predictions.parquet, metrics.json and the confusion PNG.

``predictions.parquet`` is the contract other steps read (label noise, ensembles):
image_id, fold (int32), role, label, pred, and one float64 ``prob_<class>`` per class in
the run's class order; its ferdata metadata lists ``classes``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata.errors import FerdataError
from ferdata.manifest import atomic_write_bytes, read_metadata, read_table, write_table

ENV_RUNS = "FERDATA_RUNS"
CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.jsonl"
PREDICTIONS = "predictions.parquet"
CONFUSION_PNG = "confusion.png"
BEST = "best.pt"
LAST = "last.pt"
CHECKPOINTS = (BEST, LAST)
FOLD_PREFIX = "fold-"
PREDICTION_COLUMNS = ("image_id", "fold", "role", "label", "pred")


def runs_root(path: str | os.PathLike | None = None) -> Path:
    """``--runs`` if given, else ``$FERDATA_RUNS``, else ``./runs``."""
    return Path(path or os.environ.get(ENV_RUNS) or "runs")


def new_run_dir(root: Path, model: str, manifest: str, split: str) -> Path:
    """A fresh, unique ``<time>-<model>-<manifest>-<split>`` folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = f"{stamp}-{model}-{manifest}-{split}".replace(os.sep, "_")
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = root / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FerdataError(f"cannot create a run folder under {root}")


def write_json(path: Path, data: Any) -> Path:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FerdataError(f"{path} does not exist; is {path.parent} a ferdata run folder?") from None
    except json.JSONDecodeError as exc:
        raise FerdataError(f"{path} is not valid JSON ({exc})") from None


def append_history(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / HISTORY, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True, default=_jsonable) + "\n")


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / HISTORY
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise FerdataError(f"{path} has a line that is not JSON; the run folder is damaged") from None
    return rows


def versions() -> dict[str, str]:
    import sklearn
    import torch

    from ferdata import __version__

    out = {"ferdata": __version__, "torch": torch.__version__, "scikit-learn": sklearn.__version__,
           "python": platform.python_version()}
    try:
        import torchvision

        out["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        pass
    return out


def prob_column(cls: str) -> str:
    return f"prob_{cls}"


def predictions_table(image_ids: Sequence[str], folds: Sequence[int], roles: Sequence[str],
                      targets: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> pa.Table:
    probs = np.asarray(probs, np.float64)
    preds = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    cols: dict[str, pa.Array] = {
        "image_id": pa.array(list(image_ids), pa.string()),
        "fold": pa.array(list(folds), pa.int32()),
        "role": pa.array(list(roles), pa.string()),
        "label": pa.array([classes[t] for t in targets], pa.string()),
        "pred": pa.array([classes[p] for p in preds], pa.string()),
    }
    for j, c in enumerate(classes):
        cols[prob_column(c)] = pa.array(probs[:, j] if len(probs) else [], pa.float64())
    return pa.table(cols)


def write_predictions(path: Path, table: pa.Table, classes: Sequence[str], **meta: Any) -> Path:
    return write_table(path, table, {"classes": list(classes), **meta})


def read_predictions(path: Path, required: Sequence[str] = PREDICTION_COLUMNS) -> tuple[pa.Table, list[str]]:
    """A run's predictions table (a run folder or the file itself) and its class order;
    fails with one line when it is missing or is not a ferdata predictions table."""
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS
    if not path.exists():
        raise FerdataError(f"{path} does not exist; the run did not finish (train it again or pass --resume)")
    meta = read_metadata(path)
    table = read_table(path)
    names = set(table.column_names)
    classes = list(meta.get("classes") or [c[len("prob_"):] for c in table.column_names if c.startswith("prob_")])
    missing = [c for c in required if c not in names] + [prob_column(c) for c in classes if prob_column(c) not in names]
    if missing or not classes:
        raise FerdataError(f"{path} is not a ferdata predictions table (missing "
                           f"{', '.join(missing) or 'prob_<class> columns'})")
    return table, classes


def probabilities(table: pa.Table, classes: Sequence[str]) -> np.ndarray:
    if table.num_rows == 0:
        return np.zeros((0, len(classes)))
    return np.stack([table.column(prob_column(c)).to_numpy() for c in classes], axis=1)


def targets_of(table: pa.Table, classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[c] for c in table.column("label").to_pylist()], np.int64)


def checkpoint_path(run_dir: Path) -> Path:
    """The best checkpoint of a torch run, else its last."""
    for name in CHECKPOINTS:
        if (run_dir / name).is_file():
            return run_dir / name
    raise FerdataError(f"{run_dir} has no checkpoint ({' or '.join(CHECKPOINTS)}); it is not a finished torch run")


def is_run(path: str | os.PathLike) -> bool:
    """A run folder, or a folder of fold runs (a fold group)."""
    p = Path(path)
    return (p / CONFIG).is_file() or (p.is_dir() and any((c / CONFIG).is_file() for c in p.iterdir() if c.is_dir()))


def fold_runs(run_dir: Path) -> list[Path]:
    """The fold runs of a fold group (``fold-<k>/`` folders, as ``--fold all`` writes them
    under a parent run), else the run itself."""
    subs = sorted((c for c in run_dir.iterdir() if c.is_dir() and (c / CONFIG).is_file()),
                  key=lambda c: (len(c.name), c.name)) if run_dir.is_dir() else []
    if subs:
        return subs
    if (run_dir / CONFIG).is_file():
        return [run_dir]
    raise FerdataError(f"{run_dir} is not a run folder (no {CONFIG}); give a folder made by 'ferdata train'")


def resolve_run(target: str | os.PathLike, runs: str | os.PathLike | None = None) -> Path | None:
    """A run folder (or fold group) by path, or by id under the runs root; ``None`` if neither."""
    for candidate in (Path(target), runs_root(runs) / target):
        if candidate.is_dir() and is_run(candidate):
            return candidate
    return None


def open_run(path: str | os.PathLike, runs: str | os.PathLike | None = None) -> Path:
    """A run folder by path, or by id under the runs root."""
    p = Path(path)
    for candidate in (p, runs_root(runs) / p):
        if (candidate / CONFIG).exists():
            return candidate
    raise FerdataError(f"no run {str(path)!r} (no {CONFIG} there or under {runs_root(runs)}); "
                       "give a folder made by 'ferdata train'")
