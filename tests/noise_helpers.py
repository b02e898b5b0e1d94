"""Real out-of-fold predictions for tests: a quick scikit-learn fit on downsized pixels.

The training engine writes ``runs/<run>/predictions.parquet``; these tests need the same
files from a real (if small) model, so this fits PCA + logistic regression per fold of a
subject-grouped split and writes one run folder per fold in the engine's format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ferdata.imageio import read_image
from ferdata.manifest import Manifest, write_table
from ferdata.manifest.effective import images_with_effective_labels


def pixels(manifest: Manifest, paths: list[str], side: int = 24) -> np.ndarray:
    out = np.empty((len(paths), side * side), dtype=np.float32)
    for i, p in enumerate(paths):
        img = Image.fromarray(read_image(manifest.resolve(p), gray=True)).resize((side, side), Image.BILINEAR)
        out[i] = np.asarray(img, dtype=np.float32).ravel() / 255.0
    return out


_RUNS: dict[tuple[str, int, int], list[Path]] = {}


def cached_fold_runs(manifest: Manifest, runs_dir: Path, *, folds: int = 5, seed: int = 0) -> list[Path]:
    """:func:`write_fold_runs` once per test session and manifest (the fit is the slow part)."""
    key = (str(manifest.images_path.resolve()), folds, seed)
    if key not in _RUNS:
        _RUNS[key] = write_fold_runs(manifest, runs_dir, folds=folds, seed=seed)
    return _RUNS[key]


def _fit(X: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int):
    model = make_pipeline(StandardScaler(), PCA(n_components=min(30, len(train) - 1), random_state=seed),
                          LogisticRegression(max_iter=300, C=0.5))
    return model.fit(X[train], y[train])


def write_fold_runs(manifest: Manifest, runs_dir: Path, *, folds: int = 5, seed: int = 0,
                    labels: list[str] | None = None) -> list[Path]:
    """Fit one model per fold (subjects held out together) and write each fold's run folder.
    ``labels`` overrides the manifest's effective labels (to inject noise)."""
    images = images_with_effective_labels(manifest, columns=["path", "subject_id", "readable"]).to_pylist()
    images = [r for r in images if r["readable"]]
    ids = [r["image_id"] for r in images]
    y_names = labels if labels is not None else [r["label"] for r in images]
    classes = sorted(set(y_names))
    y = np.array([classes.index(lab) for lab in y_names])
    groups = [r["subject_id"] for r in images]
    X = pixels(manifest, [r["path"] for r in images])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    run_dirs = []
    with threadpool_limits(1):  # tiny fits: BLAS threads only contend
        fits = [(train, test, _fit(X, y, train, seed)) for train, test in splitter.split(X, y, groups)]
    for fold, (train, test, model) in enumerate(fits):
        proba = np.zeros((len(ids), len(classes)))
        proba[:, model.classes_] = model.predict_proba(X)
        rows = np.concatenate([test, train[:5]])  # a few train rows, which flag must ignore
        roles = ["test"] * len(test) + ["train"] * min(5, len(train))
        columns = {
            "image_id": pa.array([ids[i] for i in rows], pa.string()),
            "fold": pa.array([fold] * len(rows), pa.int32()),
            "role": pa.array(roles, pa.string()),
            "label": pa.array([classes[y[i]] for i in rows], pa.string()),
            "pred": pa.array([classes[int(proba[i].argmax())] for i in rows], pa.string()),
        }
        for j, c in enumerate(classes):
            columns[f"prob_{c}"] = pa.array(proba[rows, j], pa.float64())
        run = runs_dir / f"fold{fold}"
        write_table(run / "predictions.parquet", pa.table(columns), {"classes": classes, "fold": fold})
        run_dirs.append(run)
    return run_dirs


# ---- fake data -----------------------------------------------------------------------------


def fake_manifest(root: Path, name: str = "fake", *, per_class: int = 12,
                  classes: tuple[str, ...] = ("anger", "happy", "sad"), subjects: int = 4,
                  extra: dict[str, list] | None = None) -> Manifest:
    """A manifest of tiny PNG faces (``per_class`` per class, round-robin subjects)."""
    from ferdata.ingest import image_id as make_id
    from ferdata.manifest import images_schema

    images = root / f"{name}-images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for c in classes:
        for i in range(per_class):
            rel = f"{c}/{c}_{i:03d}.png"
            (images / c).mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(images / rel)
            rows.append({"image_id": make_id("folder", rel), "dataset": "folder", "path": rel, "label": c,
                         "label_raw": c, "subject_id": f"S{i % subjects}", "source_split": None, "width": 8,
                         "height": 8, "mode": "L", "bytes": (images / rel).stat().st_size,
                         "content_hash": f"h-{c}-{i}", "readable": True, "error": None})
    fields = []
    for key, values in (extra or {}).items():
        for r, v in zip(rows, values):
            r[key] = v
        fields.append(pa.field(key, pa.array(values).type))
    table = pa.Table.from_pylist(rows, schema=images_schema(tuple(fields)))
    manifest_dir = root / "manifests" / name
    write_table(manifest_dir / "images.parquet", table,
                {"dataset": "folder", "source_root": str(images), "image_root": str(images)})
    return Manifest(manifest_dir)


def synthetic_runs(manifest: Manifest, runs_dir: Path, *, flip: int = 3, folds: int = 2,
                   seed: int = 0) -> tuple[list[Path], set[str]]:
    """Predictions files whose model is right about every image except ``flip`` per class,
    whose given labels it (confidently) disputes; returns the runs and the disputed ids."""
    rng = np.random.default_rng(seed)
    table = manifest.images(columns=["image_id", "label"]).to_pylist()
    classes = sorted({r["label"] for r in table})
    k = len(classes)
    disputed: set[str] = set()
    probs = []
    seen: dict[str, int] = {}
    for r in table:
        true = classes.index(r["label"])
        n = seen.get(r["label"], 0)
        seen[r["label"]] = n + 1
        if n < flip:
            true = (true + 1) % k
            disputed.add(r["image_id"])
        p = rng.dirichlet(np.ones(k)) * 0.2
        p[true] += 0.8
        probs.append(p / p.sum())
    probs = np.array(probs)
    fold_of = np.arange(len(table)) % folds
    runs = []
    for fold in range(folds):
        rows = np.flatnonzero(fold_of == fold)
        columns = {
            "image_id": pa.array([table[i]["image_id"] for i in rows], pa.string()),
            "fold": pa.array([fold] * len(rows), pa.int32()),
            "role": pa.array(["test"] * len(rows), pa.string()),
            "label": pa.array([table[i]["label"] for i in rows], pa.string()),
            "pred": pa.array([classes[int(probs[i].argmax())] for i in rows], pa.string()),
        }
        for j, c in enumerate(classes):
            columns[f"prob_{c}"] = pa.array(probs[rows, j], pa.float64())
        run = runs_dir / f"fold{fold}"
        write_table(run / "predictions.parquet", pa.table(columns), {"classes": classes})
        runs.append(run)
    return runs, disputed
