"""Ensembles of finished runs (``kind="ensemble"`` plugins): combine the members'
``predictions.parquet`` row by row, with the members' own figures beside the ensemble's."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin
from ferdata.training import runs as R
from ferdata.training.metrics import aggregate_folds, classification_metrics, plot_confusion

KEY = ("image_id", "fold", "role")


def _keyed(table: pa.Table) -> dict[tuple, int]:
    cols = [table.column(k).to_pylist() for k in KEY]
    return {key: i for i, key in enumerate(zip(*cols))}


def role_metrics(table: pa.Table, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Metrics per role over all rows, plus mean ± std over folds when there are several."""
    targets = R.targets_of(table, classes)
    roles = np.asarray(table.column("role").to_pylist())
    folds = np.asarray(table.column("fold").to_pylist())
    out: dict[str, Any] = {"classes": classes}
    for role in ("train", "val", "test"):
        sel = roles == role
        if sel.any():
            out[role] = classification_metrics(targets[sel], probs[sel], classes)
    distinct = sorted(set(folds.tolist()))
    if len(distinct) > 1:
        per_fold = []
        for f in distinct:
            m: dict[str, Any] = {}
            for role in ("val", "test"):
                sel = (folds == f) & (roles == role)
                if sel.any():
                    m[role] = classification_metrics(targets[sel], probs[sel], classes)
            per_fold.append(m)
        out["aggregate"] = aggregate_folds(per_fold, "test")
    return out


def run_ensemble(plugin: ModelPlugin, members: Sequence[str | os.PathLike], run_dir: Path,
                 config: dict[str, Any], runs: str | os.PathLike | None = None, **hparams: Any) -> dict[str, Any]:
    """Combine members' probabilities with the plugin's combiner into ``run_dir``."""
    if len(members) < 2:
        raise FerdataError("an ensemble needs at least two runs: ferdata train ensemble --runs RUN_A RUN_B")
    dirs = [R.open_run(m, runs) for m in members]
    tables, classes = [], None
    for d in dirs:
        table, cls = R.read_predictions(d)
        if classes is None:
            classes = cls
        elif cls != classes:
            raise FerdataError(f"{d} predicts classes {cls}, the first run {classes}; ensemble runs on the same class set")
        tables.append(table)
    assert classes is not None
    keys = [_keyed(t) for t in tables]
    common = [k for k in keys[0] if all(k in other for other in keys[1:])]
    if not common:
        raise FerdataError("the runs share no predicted images (same manifest, split and folds?)")
    member_probs = []
    for t, index in zip(tables, keys):
        take = pa.array([index[k] for k in common], pa.int64())
        member_probs.append(R.probabilities(t.take(take), classes))
    base = tables[0].take(pa.array([keys[0][k] for k in common], pa.int64()))
    combiner = plugin.build(len(classes), **hparams)
    probs = np.asarray(combiner.combine(member_probs), np.float64)
    targets = R.targets_of(base, classes)
    table = R.predictions_table(base.column("image_id").to_pylist(), base.column("fold").to_pylist(),
                                base.column("role").to_pylist(), targets, probs, classes)
    metrics = role_metrics(table, probs, classes)
    metrics["members"] = {str(d): role_metrics(base, p, classes).get("test", {}).get("accuracy")
                          for d, p in zip(dirs, member_probs)}
    metrics["dropped_rows"] = {str(d): t.num_rows - len(common) for d, t in zip(dirs, tables)}
    R.write_json(run_dir / R.CONFIG, {**config, "members": [str(d) for d in dirs]})
    R.write_predictions(run_dir / R.PREDICTIONS, table, classes, members=[str(d) for d in dirs])
    R.write_json(run_dir / R.METRICS, metrics)
    shown = "test" if "test" in metrics else "val"
    if shown in metrics:
        plot_confusion(metrics[shown]["confusion"], metrics[shown]["confusion_normalized"], classes,
                       run_dir / R.CONFUSION_PNG, f"ensemble {shown}")
    return metrics
