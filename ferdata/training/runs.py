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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata import atomic
from ferdata.atomic import make_folder, os_errors
from ferdata.errors import DamagedError, FerdataError, arg
from ferdata.manifest import atomic_write_bytes, read_metadata, read_table, write_table
from ferdata.manifest.tables import written_by

ENV_RUNS = "FERDATA_RUNS"
CONFIG = "config.json"
#: Sub-folder of a run where 'eval RUN --on OTHER' writes OTHER's metrics and predictions.
EVAL_PREFIX = "eval-"
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
    make_folder(root)
    for k in range(1000):
        path = root / (base if k == 0 else f"{base}-{k}")
        try:
            with os_errors(root):
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
        with os_errors(path, action="read"):
            return json.loads(path.read_text())
    except FileNotFoundError:
        raise FerdataError(f"{path} does not exist; is {path.parent} a ferdata run folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedError(f"{path} is damaged: not valid JSON ({exc}); re-run {written_by(str(path))}") from None


def append_history(run_dir: Path, row: dict[str, Any]) -> None:
    """Add one row to ``history.jsonl``, idempotently: a row for epoch ``e`` replaces the
    rows of epoch ``e`` and later that a killed run wrote before its checkpoint (a resumed
    run repeats those epochs), and a pretraining row starts the history over. The file is
    rewritten atomically, so it never holds half a line."""
    rows = read_history(run_dir)
    if row.get("phase") == "pretrain":
        rows = []
    elif row.get("epoch") is not None:
        rows = [r for r in rows if r.get("epoch") is None or r.get("fold") != row.get("fold")
                or r["epoch"] < row["epoch"]]
    rows.append(row)
    text = "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n" for r in rows)
    atomic.write_text(run_dir / HISTORY, text, fsync=False)


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
        raise FerdataError(f"{path} does not exist; the run did not finish (train it again or pass {arg('resume')})")
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


#: The run id that means "the newest run under the runs root" (``ferdata eval latest``).
LATEST = "latest"


def latest_run(runs: str | os.PathLike | None = None) -> Path:
    """The newest run folder (or fold group) under the runs root, by the time stamp that
    starts its name (:func:`new_run_dir`)."""
    root = runs_root(runs)
    found = [p for p in root.iterdir() if p.is_dir() and is_run(p)] if root.is_dir() else []
    if not found:
        raise FerdataError(f"{LATEST!r}: no run under {root} yet; train one with "
                           f"'ferdata train MODEL --manifest NAME --split SPLIT' (or point {arg('runs')} at your runs)")
    return max(found, key=lambda p: (p.name[:15], p.name))


def resolve_run(target: str | os.PathLike, runs: str | os.PathLike | None = None) -> Path | None:
    """A run folder (or fold group) by path, by id under the runs root, or ``latest``;
    ``None`` if neither."""
    if str(target) == LATEST and not Path(target).exists():
        return latest_run(runs)
    for candidate in (Path(target), runs_root(runs) / target):
        if candidate.is_dir() and is_run(candidate):
            return candidate
    return None


def open_run(path: str | os.PathLike, runs: str | os.PathLike | None = None) -> Path:
    """A run folder by path, by id under the runs root, or ``latest``."""
    p = Path(path)
    if str(path) == LATEST and not p.exists():
        p = latest_run(runs)
    for candidate in (p, runs_root(runs) / p):
        if (candidate / CONFIG).exists():
            return candidate
    raise FerdataError(f"no run {str(path)!r} (no {CONFIG} there or under {runs_root(runs)}); "
                       "give a folder made by 'ferdata train'")


# ---- do runs cover a split? ------------------------------------------------------------------


@dataclass
class Coverage:
    """How much of a split's held-out (test) role a set of runs' predictions scores."""

    manifest: str
    split: str
    folds: list[int]
    """The split's folds."""
    scored_folds: list[int]
    """Folds with held-out predictions in the runs."""
    unscored: int
    """Test-role images of the missing folds that no run scored."""
    run: Path | None = None
    """The fold-all run the predictions come from, when there is one (to resume)."""

    @property
    def missing_folds(self) -> list[int]:
        return [f for f in self.folds if f not in self.scored_folds]

    @property
    def complete(self) -> bool:
        return not self.missing_folds

    def describe(self) -> str:
        missing = ", ".join(map(str, self.missing_folds))
        return (f"the runs cover {len(self.scored_folds)} of {len(self.folds)} folds of split {self.split!r} of "
                f"{self.manifest} (fold(s) {missing} missing), so {self.unscored} image(s) stay unscored")


def run_config_of(predictions: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run that wrote a predictions file (``None`` for a file
    outside a run folder, an ensemble, or an evaluation's output)."""
    path = Path(predictions).parent / CONFIG
    if not path.is_file():
        return None
    config = read_json(path)
    return config if isinstance(config, dict) and config.get("split") and config.get("manifest") else None


def split_coverage(predictions: Sequence[tuple[Path, pa.Table]], manifest: Any = None) -> list[Coverage]:
    """Per split the runs were trained on: which of its folds their held-out predictions
    score. ``predictions`` are ``(file, table)`` pairs; ``manifest`` (a
    :class:`~ferdata.manifest.Manifest`) is where the split is read from (default: the
    manifest each run's config names). A split that can no longer be read is skipped;
    :func:`ferdata.splits.make.warn_if_stale` warns when it is older than its manifest."""
    import pyarrow.compute as pc

    from ferdata.manifest import Manifest
    from ferdata.splits.make import load_split, split_path, warn_if_stale

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for path, table in predictions:
        config = run_config_of(path)
        if config is None or config["split"].get("name") in (None, "all-test"):
            continue
        key = (str(config["manifest"].get("path")), config["split"]["name"])
        g = groups.setdefault(key, {"folds": set(), "ids": set(), "run": None, "config": config})
        held = table.filter(pc.equal(table.column("role"), "test"))
        g["folds"].update(held.column("fold").to_pylist() if "fold" in held.column_names else [])
        g["ids"].update(held.column("image_id").to_pylist())
        if config.get("fold") == "all":
            g["run"] = Path(path).parent
        elif Path(path).parent.name.startswith(FOLD_PREFIX) and (Path(path).parent.parent / CONFIG).is_file():
            g["run"] = Path(path).parent.parent
    out = []
    for (mpath, split), g in sorted(groups.items()):
        m = manifest
        if m is None:
            try:
                m = Manifest.open(mpath)
            except FerdataError:
                continue
        if not split_path(m, split).is_file():
            continue
        warn_if_stale(m, split)
        table = load_split(m, split)
        folds = sorted(set(table.filter(pc.equal(table.column("role"), "test")).column("fold").to_pylist()))
        scored = sorted(f for f in g["folds"] if f in folds)
        missing = [f for f in folds if f not in scored]
        test = table.filter(pc.and_(pc.equal(table.column("role"), "test"),
                                    pc.is_in(table.column("fold"), pa.array(missing, pa.int32()))))
        unscored = len(set(test.column("image_id").to_pylist()) - g["ids"])
        out.append(Coverage(m.name, split, folds, scored, unscored, g["run"]))
    return out
