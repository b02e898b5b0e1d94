"""The fit path of ``kind="sklearn"`` plugins: features (or flattened pixels) → fit → predict_proba.

The fitted estimator is kept as ``model.pkl`` with its sha256 in ``config.json``; it is only
unpickled after that hash matches (a run folder is trusted output of ferdata, not input
from strangers — pickles are never read from anywhere else).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin
from ferdata.progress import NullProgress, ProgressSink
from ferdata.training import runs as R
from ferdata.training.data import Examples, decode_all
from ferdata.training.engine import finish_fold

MODEL_FILE = "model.pkl"


def design_matrix(plugin: ModelPlugin, ex: Examples, progress: ProgressSink | None = None) -> np.ndarray:
    """The plugin's feature vectors, or its input-size images flattened to [-1, 1]."""
    if plugin.features:
        assert ex.features is not None
        return ex.features.astype(np.float64)
    images = decode_all(ex.files, plugin.input_size, plugin.channels, progress=progress)
    return images.reshape(len(images), -1).astype(np.float64) / 127.5 - 1.0


def align_proba(estimator: Any, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` columns follow ``estimator.classes_``; put them in class-index order."""
    out = np.zeros((len(proba), n_classes), np.float64)
    cols = getattr(estimator, "classes_", np.arange(proba.shape[1]))
    for j, c in enumerate(cols):
        out[:, int(c)] = proba[:, j]
    return out


def save_estimator(run_dir: Path, estimator: Any) -> str:
    buf = io.BytesIO()
    pickle.dump(estimator, buf, protocol=pickle.HIGHEST_PROTOCOL)
    data = buf.getvalue()
    R.atomic_write_bytes(run_dir / MODEL_FILE, data)
    return hashlib.sha256(data).hexdigest()


def load_estimator(run_dir: Path) -> Any:
    config = R.read_json(run_dir / R.CONFIG)
    expected = config.get("model_sha256")
    data = (run_dir / MODEL_FILE).read_bytes()
    if not expected or hashlib.sha256(data).hexdigest() != expected:
        raise FerdataError(f"{run_dir / MODEL_FILE} does not match the sha256 in its config.json; refusing to load it")
    return pickle.loads(data)  # noqa: S301 - integrity checked above; written by ferdata itself


def fit_fold(plugin: ModelPlugin, ex: Examples, hp: dict[str, Any], run_dir: Path, fold: int,
             config: dict[str, Any], progress: ProgressSink | None = None, seed: int = 0) -> dict[str, Any]:
    progress = progress or NullProgress()
    X = design_matrix(plugin, ex, progress)
    train = ex.select("train")
    if len(train) == 0:
        raise FerdataError(f"fold {fold} has no training images (role 'train')")
    n_classes = len(ex.classes.classes)
    options = {**hp, "seed": seed}
    estimator = plugin.build(n_classes, **options)
    t0 = time.perf_counter()
    estimator.fit(X[train], ex.targets[train])
    seconds = time.perf_counter() - t0
    probs = align_proba(estimator, np.asarray(estimator.predict_proba(X), np.float64), n_classes)
    digest = save_estimator(run_dir, estimator)
    R.write_json(run_dir / R.CONFIG, {**config, "model_sha256": digest})
    R.append_history(run_dir, {"epoch": 1, "fold": fold, "seconds": seconds, "images_per_s": len(train) / max(seconds, 1e-9)})
    rows = np.arange(len(ex.image_ids))
    return finish_fold(run_dir, ex, fold, rows, probs, list(ex.classes.classes),
                       extra={"epochs_run": 1, "train_seconds": seconds})
