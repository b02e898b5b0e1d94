"""``ferdata flag NAME`` without ``--model``: out-of-fold probabilities from frozen
descriptors and a head per fold, written as a run folder.

1. The split: the strictest the data allows (:mod:`ferdata.oof.split`), made in memory.
2. Descriptors of every image (face crops when ``ferdata preprocess`` made them), once,
   cached (:mod:`ferdata.oof.backbone`).
3. Per fold: a head (:mod:`ferdata.oof.heads`) fitted on the training part, scoring the
   held-out part; images are scored as they are and mirrored, and the two averaged.
4. ``runs/<id>/predictions.parquet`` (role ``test``, one row per image), ``config.json`` and
   ``metrics.json``, so ``ferdata flag --from-runs`` and ``ferdata report`` can reuse them.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ferdata.errors import FerdataError
from ferdata.labels import ClassSet
from ferdata.manifest import Manifest
from ferdata.manifest.crops import crop_paths, latest_crop_config
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.noise import OutOfFold
from ferdata.oof.backbone import BackboneSpec, describe, find_weights, weights_hint
from ferdata.oof.heads import HeadSpec, fit_predict, resolve
from ferdata.oof.split import DEFAULT_FOLDS, flag_split
from ferdata.progress import NullProgress, ProgressSink



@dataclass
class ScoreResult:
    """The out-of-fold probabilities and how they were made."""

    oof: OutOfFold
    run_dir: Path
    split_name: str
    protocol: str
    n_folds: int
    descriptor: str
    head: dict[str, Any]
    cached_descriptors: bool
    notes: list[str] = field(default_factory=list)
    """One-line notices the caller must show (a missing backbone, excluded images)."""


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def score_out_of_fold(manifest: Manifest, *, weights: str | os.PathLike | None = None,
                      spec: BackboneSpec | None = None, head: HeadSpec | None = None, folds: int = DEFAULT_FOLDS,
                      seed: int = 0, classes: str | None = None, crops: str | None = None,
                      runs: str | os.PathLike | None = None, workers: int | None = None, cache: bool = True,
                      progress: ProgressSink | None = None) -> ScoreResult:
    """Every image of ``manifest`` scored by a head that never saw it, its subject or a copy of it."""
    from ferdata.training import runs as R

    progress = progress or NullProgress()
    spec = spec or BackboneSpec()
    head = head or HeadSpec()
    notes: list[str] = []
    weights_path = find_weights(weights) if spec.network == "mobilenet_v2" else None
    if spec.network == "mobilenet_v2" and weights_path is None:
        spec = BackboneSpec.hog()
        notes.append("no ImageNet MobileNetV2 weights here, so faces are described with HOG, which finds fewer "
                     f"label errors; {weights_hint()}")

    split = flag_split(manifest, folds=folds, seed=seed, classes=classes, workers=workers, progress=progress)
    cset = ClassSet.from_dict(split.metadata["class_set"])
    test = split.table.filter(pc.equal(split.table.column("role"), "test"))
    fold_of = dict(zip(test.column("image_id").to_pylist(), test.column("fold").to_pylist()))
    ids = sorted(fold_of)
    if not ids:
        raise FerdataError(f"{manifest.name}: no image can be scored (all unreadable, unlabelled or outside the "
                           "class set)")
    images = images_with_effective_labels(manifest, columns=["path", "content_hash"])
    info = {r["image_id"]: r for r in images.select(["image_id", "path", "label", "content_hash"]).to_pylist()}
    crops = crops or latest_crop_config(manifest)
    crop_map = crop_paths(manifest, crops) if crops else None
    if crop_map is not None:
        without = [i for i in ids if i not in crop_map]
        if without:
            notes.append(f"{len(without)} image(s) have no face crop (e.g. {info[without[0]]['path']}) and are "
                         "not scored; re-run 'ferdata preprocess' with --fallback whole")
            ids = [i for i in ids if i in crop_map]
    files = [crop_map[i] if crop_map is not None else manifest.resolve(info[i]["path"]) for i in ids]
    content = [f"{info[i]['content_hash']}:{crops or ''}" for i in ids]
    desc = describe(manifest, ids, files, content, spec, weights_path, workers=workers, cache=cache,
                    progress=progress)

    labels = np.array([cset.index(info[i]["label"]) for i in ids], np.int64)
    fold = np.array([fold_of[i] for i in ids], np.int64)
    k = len(cset.classes)
    probs = np.zeros((len(ids), k))
    n_folds = int(split.metadata["n_folds"])
    smallest = min((int((fold != f).sum()) for f in range(n_folds) if (fold == f).any()), default=len(ids))
    head = resolve(head, smallest)
    progress.start(f"fitting a {head.kind} head per fold", n_folds)
    for f in range(n_folds):
        held = fold == f
        if not held.any():
            progress.advance()
            continue
        train = ~held
        mirror = desc.mirror
        probs[held] = fit_predict(head, desc.plain[train], None if mirror is None else mirror[train], labels[train],
                                  desc.plain[held], None if mirror is None else mirror[held], k, seed=seed + f)
        progress.advance()
    progress.finish()

    root = R.runs_root(runs)
    scorer = f"flag-{spec.network.replace('_', '')}"
    run_dir = R.new_run_dir(root, scorer, manifest.name, split.name)
    table = R.predictions_table(ids, fold.tolist(), ["test"] * len(ids), labels, probs, cset.classes)
    R.write_predictions(run_dir / R.PREDICTIONS, table, cset.classes)
    accuracy = float((probs.argmax(1) == labels).mean())
    baseline = float(np.bincount(labels, minlength=k).max() / len(labels))
    config = {"plugin": scorer, "kind": "flag", "manifest": {"name": manifest.name, "path": str(manifest.dir)},
              "split": {"name": split.name, "protocol": split.metadata["protocol"], "n_folds": n_folds,
                        "content_hash": split.metadata["content_hash"], "written": False,
                        "class_set": cset.to_dict()},
              "descriptor": {**spec.to_dict(), "weights_sha256": desc.weights,
                             "weights_file": str(weights_path) if weights_path else None},
              "head": head.to_dict(), "crops": crops, "seed": seed, "classes": list(cset.classes),
              "versions": R.versions()}
    R.write_json(run_dir / R.CONFIG, config)
    R.write_json(run_dir / R.METRICS, {"fold": "all", "classes": list(cset.classes), "n": len(ids),
                                        "out_of_fold_accuracy": accuracy, "majority_baseline": baseline,
                                        "excluded": split.metadata.get("excluded", {})})
    oof = OutOfFold(ids, labels, probs, cset.classes,
                    {"kind": "descriptors", "scorer": scorer, "run": str(run_dir), "split": split.name,
                     "protocol": split.metadata["protocol"], "n_folds": n_folds, "head": head.to_dict(),
                     "descriptor": spec.to_dict(), "seed": seed})
    return ScoreResult(oof, run_dir, split.name, split.metadata["protocol"], n_folds, spec.network,
                       head.to_dict(), desc.cached, notes)


__all__ = ["ScoreResult", "cpu_seconds", "score_out_of_fold"]
