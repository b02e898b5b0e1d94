"""``ferdata eval``: a finished run's figures, or the run applied to another manifest
(cross-dataset), with the run's class set mapped onto the other manifest's labels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata import atomic
from ferdata.errors import FerdataError, arg
from ferdata.labels import ClassSet
from ferdata.manifest import Manifest
from ferdata.manifest.crops import WHOLE_IMAGES, crop_configs
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


def preprocess_command(manifest: str, config: dict[str, Any]) -> str:
    """The ``ferdata preprocess`` command line that makes crops with ``config``."""
    parts = ["ferdata preprocess", manifest, "--detector", str(config.get("detector")),
             "--align", str(config.get("align", "none")), "--size", str(config.get("size")),
             "--gray" if config.get("gray") else "--color", "--pick", str(config.get("pick", "largest")),
             "--fallback", str(config.get("fallback", "whole"))]
    if config.get("clahe"):
        parts += ["--clahe", "--clip-limit", str(config.get("clip_limit")), "--tile-grid", str(config.get("tile_grid"))]
    for key, value in sorted((config.get("detector_options") or {}).items()):
        parts += ["--detector-option", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return " ".join(parts)


def target_crops(config: dict[str, Any], target: Manifest, *, make_crops: bool = False,
                 manifests: str | os.PathLike | None = None, progress: ProgressSink | None = None) -> str:
    """The crops of ``target`` a run is evaluated on: the same preprocessing config it was
    trained on (made now with ``make_crops``), or whole images for a run trained on whole
    images. A model trained on face crops and shown whole frames (or other crops) gives
    figures about the mismatch, not about the model, so that is refused with the fix."""
    trained_on = config.get("crops")
    if not trained_on:
        return WHOLE_IMAGES
    if trained_on in crop_configs(target):
        return trained_on
    source = config.get("manifest") or {}
    options = None
    try:
        options = crop_configs(Manifest.open(source.get("path") or source.get("name"), manifests)).get(trained_on)
    except FerdataError:
        pass
    if options is None:
        raise FerdataError(f"run {config.get('run_id')} was trained on face crops {trained_on}, which {target.name} "
                           f"does not have, and the options that made them are not found (the run's manifest "
                           f"{source.get('name')!r} is gone); preprocess {target.name} as the run's manifest was")
    command = preprocess_command(target.name, options)
    if not make_crops:
        raise FerdataError(f"run {config.get('run_id')} was trained on face crops {trained_on} and {target.name} has "
                           f"none made that way: pass {arg('make_crops')}, or run '{command}' first")
    from ferdata.faces.preprocess import FaceConfig, preprocess

    face_config = FaceConfig.from_dict(options)
    if face_config.hash != trained_on:
        raise FerdataError(f"crops {trained_on} were made by another ferdata version (its options now hash to "
                           f"{face_config.hash}); retrain the run, or compare with '{command}' by hand")
    preprocess(target, config=face_config, progress=progress)
    return trained_on


def evaluate(run: str | os.PathLike, *, on: str | None = None, split: str = ALL_TEST, runs: str | os.PathLike | None = None,
             manifests: str | os.PathLike | None = None, device: str | None = "auto", make_crops: bool = False,
             progress: ProgressSink | None = None) -> dict[str, Any]:
    """Figures of a run (recomputed from its predictions), or of the run on manifest ``on``.

    Cross-dataset: images whose effective label the run's class set does not map are left
    out and counted; a fold-all run evaluates every fold's model and aggregates them. The
    target is read as the run was trained: the same face crops (made with ``make_crops``
    when missing, else refused with the command), or whole images.
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
    crops = target_crops(config, target, make_crops=make_crops, manifests=manifests, progress=progress) \
        if plugin.input_size else WHOLE_IMAGES
    ex = gather_examples(target, sp, 0, features=plugin.features, crops=crops)
    classes = list(cs.classes)
    out_dir = run_dir / f"{R.EVAL_PREFIX}{target.name}-{split}"
    atomic.make_folder(out_dir)
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
                    "n_images": len(ex.image_ids), "crops": None if crops == WHOLE_IMAGES else crops,
                    "read": "whole images" if crops == WHOLE_IMAGES else f"face crops {crops} (as trained)"})
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
    from ferdata.training.hparams import input_size

    size = input_size(plugin, hp)
    images = decode_all(ex.files, size, plugin.channels, progress=progress)
    ds = FaceDataset(ex, np.arange(len(ex.image_ids)), size=size, channels=plugin.channels,
                     normalize=plugin.normalize, images=images)
    rows, probs = predict(model, _loader(ds, int(hp.get("batch_size", 32)), shuffle=False, seed=0, workers=0), dev,
                          with_features=bool(plugin.features))
    out = np.zeros_like(probs)
    out[rows] = probs
    return out
