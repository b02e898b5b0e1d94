"""``ferdata flag NAME`` without ``--model``: out-of-fold probabilities from frozen
descriptors and a head per fold, written as a run folder.

1. The split: the strictest the data allows (:mod:`ferdata.oof.split`), made in memory.
2. Descriptors of every image (face crops when ``ferdata preprocess`` made them), once,
   cached (:mod:`ferdata.oof.backbone`).
3. Per fold: a head (:mod:`ferdata.oof.heads`) fitted on the training part, scoring the
   held-out part; images are scored as they are and mirrored, and the two averaged. The
   folds' heads are fitted side by side, one per core.
4. Clean, then refit: a head fitted on labels a third of which are wrong learns part of
   the noise and so under-counts it. When the first pass can be trusted
   (:func:`ferdata.noise.scorer_doubts` finds nothing), each fold's head is fitted again
   without the training images confident learning flagged in the first pass, and the
   second pass's probabilities are the result. On FER-2013 against FER+'s majority this
   moved the flagged count from 89 % to 96 % of the true number and F1 from 0.601 to 0.621
   (``benchmarks/label_noise.py --real``; the closing note of issue 18 has the full table).
5. ``runs/<id>/predictions.parquet`` (role ``test``, one row per image), ``config.json`` and
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

from ferdata.engines.local import available_cores
from ferdata.errors import FerdataError
from ferdata.labels import ClassSet
from ferdata.manifest import Manifest
from ferdata.manifest.crops import crop_paths, latest_crop_config
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.noise import OutOfFold, find_label_issues, scorer_doubts
from ferdata.oof.backbone import BackboneSpec, Descriptors, describe, find_weights, weights_hint
from ferdata.oof.heads import HeadSpec, fit_predict, resolve
from ferdata.oof.split import DEFAULT_FOLDS, flag_split
from ferdata.progress import NullProgress, ProgressSink


#: The order of the list after the second pass: the cleaned heads' probability of the given
#: label. Measured on FER-2013 against FER+ (``benchmarks/label_noise.py --real``), it ranks
#: better than the mean of self-confidence and margin (``both``) once the heads no longer
#: learn from the flagged images (average precision 0.675 against 0.660, precision in the
#: top 5 % 0.839 against 0.802); on the first pass's probabilities it did not (0.652 / 0.657).
RANK_AFTER_CLEANING = "self_confidence"


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
    clean_pass_left_out: int = 0
    """Training images the second pass left out (0: no second pass)."""


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def score_out_of_fold(manifest: Manifest, *, weights: str | os.PathLike | None = None,
                      spec: BackboneSpec | None = None, head: HeadSpec | None = None, folds: int = DEFAULT_FOLDS,
                      seed: int = 0, classes: str | None = None, crops: str | None = None,
                      runs: str | os.PathLike | None = None, workers: int | None = None, cache: bool = True,
                      clean: bool = True, progress: ProgressSink | None = None) -> ScoreResult:
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
    n_folds = int(split.metadata["n_folds"])
    smallest = min((int((fold != f).sum()) for f in range(n_folds) if (fold == f).any()), default=len(ids))
    head = resolve(head, smallest)
    probs = fit_folds(head, desc, labels, fold, n_folds, k, seed=seed, workers=workers, progress=progress,
                      what=f"fitting a {head.kind} head per fold")
    first_flagged, rank_by = 0, None
    if clean and not scorer_doubts(manifest.name, labels, probs, cset.classes):
        flagged = find_label_issues(labels, probs).is_issue
        first_flagged = int(flagged.sum())
        if first_flagged:
            probs = fit_folds(head, desc, labels, fold, n_folds, k, seed=seed, workers=workers, progress=progress,
                              leave_out=flagged, what="fitting the heads again without the images flagged")
            rank_by = RANK_AFTER_CLEANING

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
              "head": head.to_dict(), "clean_pass": {"ran": bool(first_flagged), "left_out": first_flagged},
              "rank_by": rank_by,
              "crops": crops, "seed": seed, "classes": list(cset.classes),
              "versions": R.versions()}
    R.write_json(run_dir / R.CONFIG, config)
    R.write_json(run_dir / R.METRICS, {"fold": "all", "classes": list(cset.classes), "n": len(ids),
                                        "out_of_fold_accuracy": accuracy, "majority_baseline": baseline,
                                        "excluded": split.metadata.get("excluded", {})})
    oof = OutOfFold(ids, labels, probs, cset.classes,
                    {"kind": "descriptors", "scorer": scorer, "run": str(run_dir), "split": split.name,
                     "protocol": split.metadata["protocol"], "n_folds": n_folds, "head": head.to_dict(),
                     "descriptor": spec.to_dict(), "seed": seed, "clean_pass_left_out": first_flagged,
                     **({"rank_by": rank_by} if rank_by else {})})
    return ScoreResult(oof, run_dir, split.name, split.metadata["protocol"], n_folds, spec.network,
                       head.to_dict(), desc.cached, notes, first_flagged)


def fit_folds(head: HeadSpec, desc: Descriptors, labels: np.ndarray, fold: np.ndarray, n_folds: int, k: int, *,
              seed: int = 0, workers: int | None = None, leave_out: np.ndarray | None = None,
              progress: ProgressSink | None = None, what: str = "fitting a head per fold") -> np.ndarray:
    """Out-of-fold probabilities: each fold scored by a head fitted on the other folds (less
    the ``leave_out`` rows, unless they are all of a class there). Folds run in threads, one
    per core: torch and BLAS leave the GIL while they compute, so two threads fit two heads
    in about the time of one."""
    import concurrent.futures
    import threading

    import torch
    from threadpoolctl import threadpool_limits

    progress = progress or NullProgress()
    probs = np.zeros((len(labels), k))
    mirror = desc.mirror
    stop = threading.Event()

    def one(f: int) -> None:
        held = fold == f
        train = ~held
        if leave_out is not None:
            cleaned = train & ~leave_out
            # A class the first pass flagged whole keeps its images: a head that never saw it
            # would give it probability 0 and flag every held-out image of it.
            emptied = np.setdiff1d(labels[train], labels[cleaned])
            train = cleaned | (train & np.isin(labels, emptied))
        probs[held] = fit_predict(head, desc.plain[train], None if mirror is None else mirror[train], labels[train],
                                  desc.plain[held], None if mirror is None else mirror[held], k, seed=seed + f,
                                  stop=stop)

    todo = [f for f in range(n_folds) if (fold == f).any()]
    progress.start(what, n_folds)
    progress.advance(n_folds - len(todo))
    threads = torch.get_num_threads()
    # One compute thread per head, set once here: the heads' own per-call limits then find
    # it set and leave it so, whichever thread finishes first.
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1), concurrent.futures.ThreadPoolExecutor(
                max(1, min(workers or available_cores(), len(todo)))) as pool:
            futures = [pool.submit(one, f) for f in todo]
            try:
                for done in concurrent.futures.as_completed(futures):
                    done.result()
                    progress.advance()
            except BaseException:  # Ctrl-C or a fold's error: the other folds stop at their next step
                stop.set()
                for future in futures:
                    future.cancel()
                raise
    finally:
        torch.set_num_threads(threads)
        progress.finish()
    return probs


__all__ = ["ScoreResult", "cpu_seconds", "fit_folds", "score_out_of_fold"]
