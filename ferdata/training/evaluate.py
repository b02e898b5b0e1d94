"""``ferdata eval``: a finished run's figures, or the run applied to another manifest
(cross-dataset), with the run's class set mapped onto the other manifest's labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata.errors import FerdataError
from ferdata.labels import ClassSet
from ferdata.manifest import Manifest
from ferdata.models import get_model, list_models
from ferdata.progress import NullProgress, ProgressSink
from ferdata.training import runs as R
from ferdata.training.data import ALL_TEST, FaceDataset, Split, gather_examples, read_split
from ferdata.training.metrics import aggregate_folds


def list_model_rows() -> list[dict[str, Any]]:
    """Every registered model (name, paper, input size, channels, kind, description); broken
    entry points are ``ferdata.models.broken_plugins()``."""
    rows = []
    for name in list_models():
        p = get_model(name)
        rows.append({"name": name, "paper": p.paper, "input_size": p.input_size, "channels": p.channels,
                     "kind": p.kind, "features": list(p.features), "description": p.description})
    return rows


def _fold_dirs(run_dir: Path, config: dict[str, Any]) -> list[Path]:
    if config.get("fold") == "all":
        return [run_dir / f"fold-{k}" for k in config["folds"]]
    return [run_dir]


def evaluate(run: str | os.PathLike, *, on: str | None = None, split: str = ALL_TEST, runs: str | os.PathLike | None = None,
             manifests: str | os.PathLike | None = None, device: str | None = "auto",
             progress: ProgressSink | None = None) -> dict[str, Any]:
    """Figures of a run (recomputed from its predictions), or of the run on manifest ``on``.

    Cross-dataset: images whose effective label the run's class set does not map are left
    out and counted; a fold-all run evaluates every fold's model and aggregates them.
    Results go to ``<run>/eval-<manifest>-<split>/`` (predictions, metrics, confusion PNG).
    """
    from ferdata.training.ensemble import role_metrics

    run_dir = R.open_run(run, runs)
    config = R.read_json(run_dir / R.CONFIG)
    if on is None:
        table, classes = R.read_predictions(run_dir)
        metrics = role_metrics(table, R.probabilities(table, classes), classes)
        metrics["run"] = str(run_dir)
        metrics["plugin"] = config.get("plugin")
        stored = run_dir / R.METRICS
        if stored.exists():
            metrics["training"] = {k: v for k, v in R.read_json(stored).items()
                                   if k in ("epochs_run", "best_epoch", "stopped_early", "train_seconds", "members")}
        return metrics
    if config.get("kind") == "ensemble":
        raise FerdataError("evaluate an ensemble's member runs on the other manifest, then combine them with "
                           "'ferdata train ensemble --runs ...'")
    progress = progress or NullProgress()
    plugin = get_model(config["plugin"])
    target = Manifest.open(on, manifests)
    cs = ClassSet.from_dict(config["split"]["class_set"])
    sp = read_split(target, split)
    sp = Split(sp.name, sp.table, cs, sp.protocol, sp.content_hash, sp.path)
    if split != ALL_TEST:
        import pyarrow.compute as pc

        test = sp.table.filter(pc.equal(sp.table.column("role"), "test"))
        ids = list(dict.fromkeys(test.column("image_id").to_pylist()))
        sp.table = pa.table({"image_id": pa.array(ids, pa.string()), "fold": pa.array([0] * len(ids), pa.int32()),
                             "role": pa.array(["test"] * len(ids), pa.string())})
    ex = gather_examples(target, sp, 0, features=plugin.features)
    classes = list(cs.classes)
    out_dir = run_dir / f"eval-{target.name}-{split}"
    out_dir.mkdir(exist_ok=True)
    tables, per_fold = [], []
    for k, fold_dir in enumerate(_fold_dirs(run_dir, config)):
        probs = _predict_run(plugin, fold_dir, ex, device, progress)
        fold_cfg = R.read_json(fold_dir / R.CONFIG)
        fold_no = fold_cfg.get("fold", k)
        t = R.predictions_table(ex.image_ids, [fold_no] * len(ex.image_ids), ex.roles, ex.targets, probs, classes)
        tables.append(t)
        per_fold.append(role_metrics(t, probs, classes))
    table = pa.concat_tables(tables)
    metrics = role_metrics(table, R.probabilities(table, classes), classes)
    if len(per_fold) > 1:
        metrics["aggregate"] = aggregate_folds(per_fold, "test")
    metrics.update({"run": str(run_dir), "on": target.name, "split": split, "excluded": ex.excluded,
                    "n_images": len(ex.image_ids)})
    R.write_predictions(out_dir / R.PREDICTIONS, table, classes, run=str(run_dir), on=target.name, split=split)
    R.write_json(out_dir / R.METRICS, metrics)
    from ferdata.training.metrics import plot_confusion

    plot_confusion(metrics["test"]["confusion"], metrics["test"]["confusion_normalized"], classes,
                   out_dir / R.CONFUSION_PNG, f"{config['plugin']} on {target.name}")
    metrics["out_dir"] = str(out_dir)
    return metrics


def _predict_run(plugin: Any, fold_dir: Path, ex: Any, device: str | None, progress: ProgressSink) -> np.ndarray:
    """Class probabilities of one trained fold model on examples ``ex``."""
    config = R.read_json(fold_dir / R.CONFIG)
    hp = config["hparams"]
    if plugin.kind == "sklearn":
        from ferdata.training.sklearn_fit import align_proba, design_matrix, load_estimator

        est = load_estimator(fold_dir)
        return align_proba(est, np.asarray(est.predict_proba(design_matrix(plugin, ex, progress))), len(ex.classes.classes))
    from ferdata.training.data import decode_all
    from ferdata.training.engine import _loader, build_model, pick_device, predict
    from ferdata.training.weights import torch_load

    dev = pick_device(device)
    model = build_model(plugin, len(ex.classes.classes), {**hp, "weights": "none"})
    ckpt = torch_load(fold_dir / R.BEST)
    model.load_state_dict(ckpt["model"])
    model.to(dev)
    images = decode_all(ex.files, plugin.input_size, plugin.channels, progress=progress)
    ds = FaceDataset(ex, np.arange(len(ex.image_ids)), size=plugin.input_size, channels=plugin.channels,
                     normalize=plugin.normalize, images=images)
    rows, probs = predict(model, _loader(ds, int(hp.get("batch_size", 32)), shuffle=False, seed=0, workers=0), dev,
                          with_features=bool(plugin.features))
    out = np.zeros_like(probs)
    out[rows] = probs
    return out
