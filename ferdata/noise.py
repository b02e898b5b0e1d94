"""Out-of-fold probabilities in, likely mislabeled images out (confident learning).

FER datasets carry far more label noise than anyone finds by eye. Confident learning
(Northcutt et al.) finds it from out-of-fold predicted probabilities alone: a per-class
threshold (the mean self-confidence of the class) decides which class each image
*confidently* belongs to, the counts of (given label, confident class) pairs form the
confident joint, and the joint's off-diagonal mass says how many images of each given
class are mislabeled as each other class. Those many images, the ones with the largest
margin for the other class, are pruned (flagged). Suspects are ranked by self-confidence
and normalised margin. cleanlab implements this too but is AGPL-licensed, so ferdata has
its own; ``benchmarks/label_noise.py`` compares the two on the same probabilities.

The data adds reasons of its own: JAFFE's semantic ratings (raters' top emotion is not
the intended one) and exact duplicates that carry two different labels.

``flag`` writes ``<manifest>/suspects.parquet``; ``info_sections`` shows its top rows in
``ferdata info NAME --suspects N``.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferdata import __version__, atomic
from ferdata.errors import FerdataError, FerdataWarning, Interrupted, arg
from ferdata.labels import VOCABULARY
from ferdata.manifest import Manifest, read_metadata, read_table, table_from_rows, write_table
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.manifest.lock import manifest_lock
from ferdata.manifest.schema import SUSPECTS_SCHEMA
from ferdata.manifest.tables import SUSPECTS_TABLE
from ferdata.progress import NullProgress, ProgressSink
from ferdata.training.runs import (EVAL_PREFIX, PREDICTIONS, read_predictions, resolve_run, run_config_of,
                                  split_coverage)

HELD_OUT_ROLE = "test"
RANK_BY = ("both", "self_confidence", "normalized_margin")
#: The order of the list unless the scorer names its own (``OutOfFold.source["rank_by"]``).
DEFAULT_RANK_BY = "both"
#: Which images confident learning flags: cleanlab's ``filter_by`` names with cleanlab's
#: meaning, plus ``low_score`` (see :func:`find_label_issues`).
FILTER_BY = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
             "low_normalized_margin", "low_self_confidence", "low_score", "confident_other")
DEFAULT_FILTER_BY = "low_score"
#: ``confident_other``: the calibrated probability of another class this high or higher.
CONFIDENT_OTHER_P = 0.6
#: Fewer labelled images per class than this (median over classes) and a scorer cannot tell
#: its own mistakes from label errors: ``flag`` then flags only confident disagreements.
MIN_PER_CLASS = 50
#: ... unless the scorer is this accurate: then its disagreements are few and credible.
SURE_ACCURACY = 0.8



# ---- out-of-fold probabilities ------------------------------------------------------------


@dataclass
class OutOfFold:
    """Held-out probabilities: row ``i`` of ``probs`` scores ``image_ids[i]``, whose given
    class is ``classes[labels[i]]``, by a model that never trained on it."""

    image_ids: list[str]
    labels: np.ndarray
    probs: np.ndarray
    classes: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.probs = np.asarray(self.probs, dtype=np.float64)
        n, k = self.probs.shape if self.probs.ndim == 2 else (0, 0)
        if self.probs.ndim != 2 or k != len(self.classes) or n != len(self.image_ids) or len(self.labels) != n:
            raise FerdataError(
                f"out-of-fold probabilities have shape {self.probs.shape} for {len(self.image_ids)} images and "
                f"{len(self.classes)} classes; they must be one row per image and one column per class"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= k):
            raise FerdataError("out-of-fold labels must index the class list")
        if not np.isfinite(self.probs).all() or (self.probs < 0).any():
            raise FerdataError("out-of-fold probabilities contain negative, NaN or infinite values; "
                               "re-run the predictions")


def find_prediction_files(runs: Sequence[str | Path]) -> list[Path]:
    """``predictions.parquet`` of each run folder given, or of each run inside a folder of runs."""
    files: list[Path] = []
    for run in runs:
        run = resolve_run(run) or Path(run)  # a run id or 'latest' too
        if run.is_file() and run.name.endswith(".parquet"):
            files.append(run)
        elif (run / PREDICTIONS).is_file():
            files.append(run / PREDICTIONS)
        elif run.is_dir():
            # an 'eval --on' folder inside a run holds another manifest's predictions: not a fold's
            inner = sorted(f for f in run.glob(f"*/{PREDICTIONS}") if not f.parent.name.startswith(EVAL_PREFIX))
            if not inner:
                raise FerdataError(f"{arg('from_runs')} {run}: no {PREDICTIONS} in it or in its sub-folders; "
                                   "give the run folders written by 'ferdata train'")
            files.extend(inner)
        else:
            raise FerdataError(f"{arg('from_runs')} {run} does not exist; give run folders written by 'ferdata train'")
    if not files:
        raise FerdataError(f"{arg('from_runs')}: give at least one run folder")
    return files


def read_run_predictions(runs: Sequence[str | Path], *, manifest: Manifest | None = None,
                         partial: bool = False) -> OutOfFold:
    """Out-of-fold probabilities from runs' ``predictions.parquet`` (rows of role ``test``).

    An image held out by several runs (repeated cross-validation) gets the mean of its
    probabilities; every run must use the same classes. Runs that do not cover every fold
    of the split they were trained on (an interrupted ``--fold all``, a single fold) are
    refused, naming how many images would stay unscored, unless ``partial``; then the
    shortfall is a :class:`~ferdata.errors.FerdataWarning` and is kept in ``source``.
    ``manifest`` is where the split is read from (default: the one the runs name).
    """
    files = find_prediction_files(runs)
    read = [(path, read_predictions(path, required=("image_id", "role", "label"))) for path in files]
    coverage = [c for c in split_coverage([(p, t) for p, (t, _) in read], manifest) if not c.complete]
    for c in coverage:
        resume = (f"finish them with 'ferdata train --resume {c.run}'" if c.run is not None
                  else "train the missing folds")
        if not partial:
            raise FerdataError(f"{c.describe()}; {resume}, or pass {arg('partial')} to flag only the scored images")
        warnings.warn(f"{c.describe()} (--partial); {resume} to score them", FerdataWarning, stacklevel=2)
    classes: tuple[str, ...] | None = None
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = defaultdict(int)
    given: dict[str, str] = {}
    for path, (table, names) in read:
        file_classes = tuple(names)
        if classes is None:
            classes = file_classes
        elif file_classes != classes:
            raise FerdataError(f"{path} predicts classes {list(file_classes)} but an earlier run predicts "
                               f"{list(classes)}; give runs of one experiment")
        held = table.filter(pc.equal(table.column("role"), HELD_OUT_ROLE))
        ids = held.column("image_id").to_pylist()
        labels = held.column("label").to_pylist()
        probs = np.column_stack([held.column(f"prob_{c}").to_numpy(zero_copy_only=False).astype(np.float64)
                                 for c in classes]) if held.num_rows else np.zeros((0, len(classes)))
        for image_id, label, row in zip(ids, labels, probs):
            if label not in classes:
                raise FerdataError(f"{path}: image {image_id} has label {label!r}, not one of {list(classes)}")
            if given.setdefault(image_id, label) != label:
                raise FerdataError(f"image {image_id} is labelled {given[image_id]!r} in one run and {label!r} in "
                                   f"{path}; give runs trained on the same labels")
            sums[image_id] = sums[image_id] + row if image_id in sums else row.copy()
            counts[image_id] += 1
    assert classes is not None
    if not sums:
        raise FerdataError(f"no held-out ('{HELD_OUT_ROLE}') rows in {len(files)} predictions file(s); "
                           "give the runs of every fold of a cross-validation split")
    ids = sorted(sums)
    probs = np.stack([sums[i] / counts[i] for i in ids])
    labels = np.array([classes.index(given[i]) for i in ids])
    source: dict[str, Any] = {"kind": "runs", "runs": [str(p.parent) for p in files], "n_files": len(files)}
    ranks = {(run_config_of(p) or {}).get("rank_by") for p in files}
    if len(ranks) == 1 and ranks <= set(RANK_BY):  # the default scorer's runs keep the order it was measured with
        source["rank_by"] = ranks.pop()
    if coverage:
        source["partial"] = {c.split: {"folds": c.scored_folds, "missing_folds": c.missing_folds,
                                       "unscored": c.unscored} for c in coverage}
    return OutOfFold(ids, labels, probs, classes, source)


def oof_from_model(manifest: Manifest, model: str, split: str, *, allow_image_level: bool = False,
                   runs: str | Path | None = None, hparams: dict[str, Any] | None = None, device: str | None = "auto",
                   seed: int = 0, classes: str | None = None, workers: int = 0,
                   progress: ProgressSink | None = None) -> OutOfFold:
    """Train ``model`` once per fold of ``split`` (the engine's ``train(..., fold="all")``) and
    keep each fold's held-out predictions, so no image is scored by a model that saw it.

    The split must keep subjects apart (a grouped protocol such as spi or loso), so no model
    saw the image's subject either; ``allow_image_level`` accepts an ungrouped split.
    """
    from ferdata.splits import split_metadata
    from ferdata.training import train
    from ferdata.training.api import unfinished_run

    meta = split_metadata(manifest, split)
    if not meta.get("group_column") and not allow_image_level:
        raise FerdataError(f"split {split!r} of {manifest.name} ({meta.get('protocol')}) does not keep subjects apart, "
                           "so a model may have seen the person it scores; use a grouped split "
                           f"('ferdata split {manifest.name} --protocol spi') or pass {arg('allow_image_level')}")
    # suspects.parquet goes into the manifest: fail now, not after training every fold
    atomic.ensure_writable(manifest.dir)
    previous = unfinished_run(model, manifest, split, runs=runs, hparams=hparams, seed=seed, classes=classes)
    try:
        if previous is not None:  # an interrupted 'flag --model' with the same recipe: go on with it
            result = train("", resume=previous, runs=runs, device=device, workers=workers, progress=progress)
        else:
            result = train(model, manifest, split, fold="all", runs=runs, hparams=hparams, device=device, seed=seed,
                           classes=classes, workers=workers, progress=progress)
    except Interrupted as exc:
        kept = str(exc).removeprefix("interrupted; ").split("; continue with")[0]
        raise Interrupted(f"{kept}; run the same 'ferdata flag' again to continue") from None
    oof = read_run_predictions([result.run_dir])
    oof.source = {"kind": "model", "model": model, "split": split, "protocol": meta.get("protocol"),
                  "run": str(result.run_dir), "seed": seed, "resumed": previous is not None}
    return oof


# ---- confident learning -------------------------------------------------------------------


@dataclass
class NoiseResult:
    """What confident learning found, one entry per scored image."""

    is_issue: np.ndarray
    suggested: np.ndarray
    self_confidence: np.ndarray
    normalized_margin: np.ndarray
    score: np.ndarray
    """Mislabeling score in [0, 1]: higher means more likely mislabeled."""
    thresholds: np.ndarray
    confident_joint: np.ndarray
    """Calibrated: rows are given classes, columns the confidently predicted class."""

    @property
    def noise_rates(self) -> np.ndarray:
        """Estimated share of each given class that belongs to another class."""
        rows = self.confident_joint.sum(axis=1)
        off = rows - np.diag(self.confident_joint)
        return np.divide(off, rows, out=np.zeros_like(off, dtype=np.float64), where=rows > 0)


def per_class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mean self-confidence of each class (``inf`` for a class with no examples: never confident)."""
    k = probs.shape[1]
    out = np.full(k, np.inf)
    for j in range(k):
        mask = labels == j
        if mask.any():
            out[j] = probs[mask, j].mean()
    return out


def confident_joint(labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None,
                    *, calibrate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The confident joint ``C[given, confident class]`` and each image's confident class
    (-1 when no class reaches its threshold).

    An image counts for class ``j`` when ``p_j`` reaches the class threshold; with several
    such classes the most probable one wins. Calibration rescales each row to the given
    class's size, so the joint estimates counts rather than confident hits.
    """
    n, k = probs.shape
    thresholds = per_class_thresholds(labels, probs) if thresholds is None else thresholds
    above = probs >= thresholds[None, :] - 1e-6
    masked = np.where(above, probs, -np.inf)
    guess = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    joint = np.zeros((k, k), dtype=np.float64)
    has = guess >= 0
    np.add.at(joint, (labels[has], guess[has]), 1.0)
    if calibrate:
        label_counts = np.bincount(labels, minlength=k).astype(np.float64)
        rows = joint.sum(axis=1)
        for i in range(k):
            if rows[i] > 0:
                joint[i] = joint[i] / rows[i] * label_counts[i]
            else:
                joint[i] = 0.0
                joint[i, i] = label_counts[i]
    return joint, guess


def rank_scores(labels: np.ndarray, probs: np.ndarray, rank_by: str = "both") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(self-confidence, normalised margin, mislabeling score).

    Self-confidence is ``p[given]``; the normalised margin is ``(p[given] - max other + 1) / 2``;
    both lie in [0, 1] and are low for a likely error. The score is one minus the chosen
    quality (their mean for ``both``).
    """
    if rank_by not in RANK_BY:
        raise FerdataError(f"{arg('rank_by')} {rank_by!r}: choose one of {', '.join(RANK_BY)}")
    n = len(labels)
    self_conf = probs[np.arange(n), labels]
    others = probs.copy()
    others[np.arange(n), labels] = -np.inf
    margin = (self_conf - others.max(axis=1) + 1.0) / 2.0 if probs.shape[1] > 1 else np.ones(n)
    quality = {"self_confidence": self_conf, "normalized_margin": margin,
               "both": (self_conf + margin) / 2.0}[rank_by]
    return self_conf, margin, np.clip(1.0 - quality, 0.0, 1.0)


def temperature_scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the same ranking of classes, sharper (T < 1) or flatter (T > 1)."""
    logits = np.log(np.clip(probs, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    """The temperature that makes out-of-fold probabilities best predict the given labels
    (least log loss; Guo et al. 2017), so "p = 0.6" means the same for every scorer."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        return float(-np.log(np.clip(temperature_scale(probs, float(np.exp(log_t)))[rows, labels], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def estimated_issue_count(labels: np.ndarray, joint: np.ndarray, min_examples_per_class: int = 1) -> np.ndarray:
    """Per (given class, true class): how many images the calibrated confident joint says
    are mislabeled, rounded, leaving at least ``min_examples_per_class`` of each class."""
    k = joint.shape[0]
    counts = np.rint(joint).astype(np.int64)
    np.fill_diagonal(counts, 0)
    label_counts = np.bincount(labels, minlength=k)
    for i in range(k):
        budget = max(0, int(label_counts[i]) - min_examples_per_class)
        total = int(counts[i].sum())
        if total > budget:  # keep at least min_examples_per_class, shrinking every pair alike
            counts[i] = np.floor(counts[i] * (budget / total)).astype(np.int64)
    return counts


def find_label_issues(labels: np.ndarray, probs: np.ndarray, *, rank_by: str = "both",
                      filter_by: str = DEFAULT_FILTER_BY, min_examples_per_class: int = 1) -> NoiseResult:
    """Confident learning: flag the images the estimated noise rates say are mislabeled.

    For every given class ``i`` and other class ``j``, the calibrated confident joint
    estimates how many images labelled ``i`` belong to ``j`` (at least
    ``min_examples_per_class`` of each class are kept). ``filter_by`` decides which images
    those are; the names mean what cleanlab's ``filter_by`` options of the same name mean:

    * ``prune_by_noise_rate``: for each pair (i, j), that many images of class ``i`` with
      the largest margin ``p_j - p_i``;
    * ``prune_by_class``: for each class ``i``, as many images as the joint's row ``i``
      holds off the diagonal, those with the smallest ``p_i``;
    * ``both``: images both of the above flag;
    * ``confident_learning``: the images counted off the diagonal of the confident joint
      (their confident class is not their label);
    * ``predicted_neq_given``: the most probable class is not the label (no counting);
    * ``low_normalized_margin`` / ``low_self_confidence``: as many images as the joint
      estimates in all, those with the lowest normalised margin / self-confidence;
    * ``low_score`` (ferdata's): as many images as the joint estimates in all, those with
      the highest mislabeling score (``rank_by``): confident learning decides how many,
      the ranking decides which;
    * ``confident_other`` (ferdata's): the images whose probability of another class,
      after temperature calibration (:func:`fit_temperature`), is at least
      :data:`CONFIDENT_OTHER_P`: no counting, for scorers whose count cannot be trusted.

    Under every rule an image whose given label is its most probable class is never flagged.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if filter_by not in FILTER_BY:
        raise FerdataError(f"{arg('filter_by')} {filter_by!r}: choose one of {', '.join(FILTER_BY)}")
    n, k = probs.shape
    thresholds = per_class_thresholds(labels, probs)
    joint, guess = confident_joint(labels, probs, thresholds)
    counts = estimated_issue_count(labels, joint, min_examples_per_class)
    self_conf, margin, score = rank_scores(labels, probs, rank_by)
    disputed = probs[np.arange(n), labels] < probs.max(axis=1)  # the given label is not (one of) the most probable

    def by_noise_rate() -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for i in range(k):
            members = np.flatnonzero(labels == i)
            for j in np.flatnonzero(counts[i]):
                gap = probs[members, j] - probs[members, i]
                out[members[np.argsort(-gap, kind="stable")[: counts[i, j]]]] = True
        return out

    def by_class() -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for i in range(k):
            members = np.flatnonzero(labels == i)
            out[members[np.argsort(probs[members, i], kind="stable")[: int(counts[i].sum())]]] = True
        return out

    def lowest(badness: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        candidates = np.flatnonzero(disputed)
        out[candidates[np.argsort(-badness[candidates], kind="stable")[: int(counts.sum())]]] = True
        return out

    if filter_by == "prune_by_noise_rate":
        issue = by_noise_rate()
    elif filter_by == "prune_by_class":
        issue = by_class()
    elif filter_by == "both":
        issue = by_noise_rate() & by_class()
    elif filter_by == "confident_learning":
        issue = (guess >= 0) & (guess != labels)
    elif filter_by == "predicted_neq_given":
        issue = disputed.copy()
    elif filter_by == "low_normalized_margin":
        issue = lowest(1.0 - margin)
    elif filter_by == "low_self_confidence":
        issue = lowest(1.0 - self_conf)
    elif filter_by == "confident_other":
        calibrated = temperature_scale(probs, fit_temperature(labels, probs))
        rest = calibrated.copy()
        rest[np.arange(n), labels] = -np.inf
        issue = rest.max(axis=1) >= CONFIDENT_OTHER_P
    else:  # low_score
        issue = lowest(score)
    issue &= disputed
    others = probs.copy()
    others[np.arange(n), labels] = -np.inf
    suggested = others.argmax(axis=1) if k > 1 else labels.copy()
    return NoiseResult(issue, suggested, self_conf, margin, score, thresholds, joint)


# ---- reasons from the data ----------------------------------------------------------------


def data_reasons(images: pa.Table) -> dict[str, tuple[list[str], str | None]]:
    """``{image_id: (reasons, label the data suggests)}`` from the manifest itself.

    JAFFE's ratings: the intended expression (the label) is not the raters' top emotion
    (neutral is not rated, so neutral images are not judged). Exact duplicates: the same
    content under two labels.
    """
    names = set(images.column_names)
    cols = [c for c in ("image_id", "path", "label", "content_hash", "rating_top") if c in names]
    rating_cols = [c for c in names if c.startswith("rating_") and c != "rating_top"]
    rows = images.select(cols + sorted(rating_cols)).to_pylist()
    out: dict[str, tuple[list[str], str | None]] = {}

    def add(image_id: str, reason: str, suggestion: str | None) -> None:
        reasons, current = out.get(image_id, ([], None))
        reasons.append(reason)
        out[image_id] = (reasons, current or suggestion)

    if "rating_top" in names:
        for r in rows:
            top, label = r.get("rating_top"), r["label"]
            if not top or not label or f"rating_{label}" not in names or top == label:
                continue
            mine, best = r.get(f"rating_{label}"), r.get(f"rating_{top}")
            detail = f" ({best:.2f} vs {label} {mine:.2f})" if mine is not None and best is not None else ""
            add(r["image_id"], f"ratings: raters' top is {top}{detail}", top)

    by_hash: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("content_hash"):
            by_hash[r["content_hash"]].append(r)
    for group in by_hash.values():
        if len(group) < 2 or len({g["label"] for g in group}) < 2:
            continue
        for r in group:
            for other in group:
                if other is not r and other["label"] != r["label"]:
                    add(r["image_id"], f"duplicate of {other['path']} labelled {other['label']}",
                        other["label"])
    return out


# ---- flag -----------------------------------------------------------------------------------


#: Out-of-fold accuracy this close to the majority baseline (or closer) means the scorer
#: barely beats always answering the commonest class: its suspects are hard images.
CHANCE_MARGIN = 0.10


@dataclass
class FlagResult:
    manifest: Manifest
    path: Path
    n_scored: int
    n_flagged: int
    n_data_only: int
    classes: tuple[str, ...]
    thresholds: dict[str, float]
    noise_rates: dict[str, float]
    seconds: float
    top: list[dict[str, Any]]
    accuracy: float = float("nan")
    """Out-of-fold accuracy against the given labels."""
    baseline: float = float("nan")
    """Share of the commonest given class among the scored images."""
    majority_class: str | None = None
    run: str | None = None
    """The run folder the probabilities came from (when there is one)."""
    warnings: list[str] = field(default_factory=list)
    rule: str = DEFAULT_FILTER_BY
    """The ``filter_by`` rule that chose the flagged images."""
    n_estimated: int = 0
    """How many images confident learning estimates are mislabeled."""
    rank_by: str = DEFAULT_RANK_BY
    """The score that ordered the list."""

    @property
    def flagged_share(self) -> float:
        return self.n_flagged / self.n_scored if self.n_scored else 0.0


def scorer_doubts(name: str, labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> list[str]:
    """Why the scorer's estimate of how many labels are wrong cannot be trusted (empty: it can).

    Near the majority baseline the scorer barely beats guessing; with few images per class
    (and an accuracy under :data:`SURE_ACCURACY`) it is undertrained and person-specific,
    and confident learning reads every mistake of its own as a label error (JAFFE: 57 % "mislabeled" at accuracy 0.43, where the raters'
    top emotion differs from 16 % of the labels).
    """
    n = len(labels)
    if not n:
        return []
    counts = np.bincount(labels, minlength=len(classes))
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    baseline = float(counts.max() / n)
    doubts = []
    if accuracy - baseline < CHANCE_MARGIN:
        doubts.append(f"out-of-fold accuracy {accuracy:.2f} is within {CHANCE_MARGIN * 100:.0f} points of the majority "
                      f"baseline {baseline:.2f} (always '{classes[int(counts.argmax())]}'): the scorer barely beats "
                      "guessing")
    per_class = float(np.median(counts[counts > 0]))
    if per_class < MIN_PER_CLASS and accuracy < SURE_ACCURACY and not doubts:  # one reason is enough
        doubts.append(f"{name} has {per_class:.0f} images per class (median), under {MIN_PER_CLASS}: too few for the "
                      f"scorer (out-of-fold accuracy {accuracy:.2f}) to tell its own mistakes from label errors")
    return doubts


def trust_warning(name: str, doubts: list[str], *, auto: bool, n_flagged: int, n_estimated: int, n: int) -> str | None:
    """The one line saying the list is not trustworthy, what ``flag`` did about it and the fix."""
    if not doubts:
        return None
    chance = doubts[0].startswith("out-of-fold accuracy")
    what = (f": only the {n_flagged} images it confidently puts in another class (calibrated p >= "
            f"{CONFIDENT_OTHER_P:.1f}) are flagged, not confident learning's estimate of {n_estimated} "
            f"({n_estimated / max(n, 1):.0%})" if auto else "")
    fix = ("give it face crops ('ferdata preprocess " + name + "'), more images, or a stronger scorer "
           "(--model ... with more --epochs) before relabelling from it" if chance else
           "add images, and check the data's own reasons (ratings, duplicates) first")
    override = "; --filter-by low_score flags confident learning's count anyway" if auto else ""
    return f"{'; '.join(doubts)}, so its list is not trustworthy{what}; {fix}{override}"


def _pair_share(joint: np.ndarray, i: int, j: int, given: str, suggested: str) -> str:
    """The reason's tail naming the estimated share of ``given`` images that are ``suggested``,
    or nothing when the confident joint puts (almost) none there: the image was flagged on
    its own score, and "an estimated 0%" beside a flag reads as a contradiction."""
    share = joint[i, j] / max(joint[i].sum(), 1.0)
    if share >= 0.005:
        return f"; an estimated {share:.0%} of {given} images are {suggested}"
    return ""


def build_suspects(manifest: Manifest, oof: OutOfFold, *, rank_by: str = "both",
                   filter_by: str = DEFAULT_FILTER_BY) -> tuple[pa.Table, NoiseResult]:
    """The suspects table (not written): confident-learning issues plus images the data
    itself questions, ranked by mislabeling score."""
    unknown_classes = [c for c in oof.classes if c not in VOCABULARY]
    if unknown_classes:
        raise FerdataError(f"the predictions use grouped classes ({', '.join(unknown_classes)}); flag needs "
                           f"per-label classes so annotators can choose a label, so train with e.g. {arg('classes')} 7")
    images = images_with_effective_labels(manifest)
    known = set(images.column("image_id").to_pylist())
    stray = [i for i in oof.image_ids if i not in known]
    if stray:
        raise FerdataError(f"{len(stray)} predicted images (e.g. {stray[0]}) are not in manifest {manifest.name}; "
                           "give runs trained on this manifest")
    result = find_label_issues(oof.labels, oof.probs, rank_by=rank_by, filter_by=filter_by)
    info = {r["image_id"]: r for r in images.select(["image_id", "path", "subject_id"]).to_pylist()}
    from_data = data_reasons(images)
    row_of = {image_id: i for i, image_id in enumerate(oof.image_ids)}
    classes = oof.classes
    current = dict(zip(images.column("image_id").to_pylist(), images.column("label").to_pylist()))

    # A decision made after training settles what the model disputed: not a model suspect any more.
    decided = np.array([current[i] != classes[lab] for i, lab in zip(oof.image_ids, oof.labels)], dtype=bool)
    if decided.any():
        result.is_issue = result.is_issue & ~decided
    records: list[dict[str, Any]] = []
    candidates = [i for i, flagged in zip(oof.image_ids, result.is_issue) if flagged]
    seen = set(candidates)
    candidates += [i for i in from_data if i not in seen]
    for image_id in candidates:
        reasons: list[str] = []
        row = row_of.get(image_id)
        model_flag = row is not None and bool(result.is_issue[row])
        if row is not None:
            given = classes[oof.labels[row]]
            suggested = classes[result.suggested[row]]
            p = oof.probs[row]
            if model_flag:
                i, j = oof.labels[row], result.suggested[row]
                reasons.append(f"model: p({given})={p[i]:.2f}, p({suggested})={p[j]:.2f}"
                               + _pair_share(result.confident_joint, i, j, given, suggested))
            scores = (float(result.score[row]), float(result.self_confidence[row]),
                      float(result.normalized_margin[row]), float(p[result.suggested[row]]))
        else:
            given, suggested, scores = current[image_id], None, (None, None, None, None)
        data, data_suggestion = from_data.get(image_id, ([], None))
        reasons.extend(data)
        if not model_flag and data_suggestion is not None:
            suggested = data_suggestion
            if row is not None and suggested in classes:
                scores = (*scores[:3], float(oof.probs[row][classes.index(suggested)]))
        flagged_by = "+".join(s for s, on in (("model", model_flag), ("data", bool(data))) if on)
        records.append({"image_id": image_id, "path": info[image_id]["path"], "subject_id": info[image_id]["subject_id"],
                        "given_label": current[image_id] or given, "suggested_label": suggested, "score": scores[0], "reasons": reasons,
                        "flagged_by": flagged_by, "self_confidence": scores[1], "normalized_margin": scores[2],
                        "p_suggested": scores[3]})
    records.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["image_id"]))
    for rank, r in enumerate(records, 1):
        r["rank"] = rank
    return table_from_rows(records, SUSPECTS_SCHEMA), result


def flag(manifest: Manifest, oof: OutOfFold, *, rank_by: str | None = None, filter_by: str | None = None,
         progress: ProgressSink | None = None) -> FlagResult:
    """Score ``oof`` with confident learning and write ``<manifest>/suspects.parquet``.

    Without ``filter_by`` the rule is chosen here: ``low_score`` (confident learning's
    count) when the scorer can be trusted, else ``confident_other`` (only its confident
    disagreements), and the result carries one warning line saying so. Without ``rank_by``
    the order is the one the scorer was measured best with (``oof.source["rank_by"]``),
    else :data:`DEFAULT_RANK_BY`.
    """
    progress = progress or NullProgress()
    start = time.perf_counter()
    rank_chosen = rank_by is None
    rank_by = rank_by or oof.source.get("rank_by") or DEFAULT_RANK_BY
    classes = oof.classes
    doubts = scorer_doubts(manifest.name, oof.labels, oof.probs, classes)
    rule = filter_by or ("confident_other" if doubts else DEFAULT_FILTER_BY)
    progress.start("confident learning", 1)
    table, result = build_suspects(manifest, oof, rank_by=rank_by, filter_by=rule)
    progress.advance()
    progress.finish()
    n_estimated = (int(find_label_issues(oof.labels, oof.probs, rank_by=rank_by).is_issue.sum())
                   if rule != DEFAULT_FILTER_BY else int(result.is_issue.sum()))
    thresholds = {c: float(t) for c, t in zip(classes, result.thresholds) if np.isfinite(t)}
    noise = {c: float(r) for c, r in zip(classes, result.noise_rates)}
    meta = {"kind": "suspects", "manifest": manifest.name, "classes": list(classes), "source": oof.source,
            "rank_by": rank_by, "rank_chosen": rank_chosen, "filter_by": rule, "filter_chosen": filter_by is None,
            "thresholds": thresholds,
            "noise_rates": noise, "confident_joint": np.round(result.confident_joint, 3).tolist(),
            "n_scored": len(oof.image_ids), "n_flagged": int(result.is_issue.sum()),
            "n_estimated_by_confident_learning": n_estimated, "ferdata_version": __version__,
            "n_unscored": sum(p["unscored"] for p in (oof.source.get("partial") or {}).values()),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    n = len(oof.labels)
    accuracy = float((oof.probs.argmax(axis=1) == oof.labels).mean()) if n else float("nan")
    counts = np.bincount(oof.labels, minlength=len(classes))
    baseline = float(counts.max() / n) if n else float("nan")
    majority = classes[int(counts.argmax())] if n else None
    warning = trust_warning(manifest.name, doubts, auto=filter_by is None and bool(doubts),
                            n_flagged=int(result.is_issue.sum()), n_estimated=n_estimated, n=n)
    meta.update(out_of_fold_accuracy=accuracy, majority_baseline=baseline, majority_class=majority,
                warnings=[warning] if warning else [])
    with manifest_lock(manifest.dir):
        path = write_table(manifest.table_path(SUSPECTS_TABLE), table, meta)
    flagged_by = table.column("flagged_by").to_pylist()
    return FlagResult(manifest, path, len(oof.image_ids), int(result.is_issue.sum()),
                      sum(1 for f in flagged_by if f == "data"), classes, thresholds, noise,
                      time.perf_counter() - start, table.slice(0, 5).to_pylist(), accuracy, baseline, majority,
                      oof.source.get("run"), [warning] if warning else [], rule, n_estimated, rank_by)


def read_suspects(manifest: Manifest) -> tuple[pa.Table, dict[str, Any]]:
    """``suspects.parquet`` and its metadata, or the fix when ``ferdata flag`` has not run."""
    path = manifest.table_path(SUSPECTS_TABLE)
    if not path.exists():
        raise FerdataError(f"{manifest.name} has no {SUSPECTS_TABLE}; run 'ferdata flag {manifest.name} "
                           "--from-runs RUNS' first")
    return read_table(path), read_metadata(path)


# ---- ferdata info ---------------------------------------------------------------------------


def info_sections(manifest: Manifest, suspects: int | None = None, **_: Any) -> list[dict[str, Any]]:
    """``ferdata info NAME --suspects N``: the top N suspects."""
    if not suspects:
        return []
    path = manifest.table_path(SUSPECTS_TABLE)
    if not path.exists():
        return [{"title": "suspects", "columns": ("", ""),
                 "rows": [[SUSPECTS_TABLE, f"none yet; run 'ferdata flag {manifest.name} --from-runs RUNS'"]]}]
    table = read_table(path)
    meta = read_metadata(path)
    top = table.sort_by("rank").slice(0, suspects).to_pylist()
    rows = [[r["rank"], r["path"], r["given_label"], r["suggested_label"] or "",
             "" if r["score"] is None else f"{r['score']:.3f}", "; ".join(r["reasons"] or [])] for r in top]
    title = (f"top {len(top)} of {table.num_rows} suspects ({meta.get('n_flagged', '?')} by confident learning "
             f"over {meta.get('n_scored', '?')} scored images)")
    return [{"title": title, "rows": rows,
             "columns": ("rank", "path", "given", "suggested", "score", "reasons")}]
