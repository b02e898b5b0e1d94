"""The run report (one run or a fold group) and the comparison of several runs.

Everything is computed from the run folder's files (``predictions.parquet``,
``history.jsonl``, ``config.json``, the checkpoint), so a report can be made for any
finished run, also one copied from another machine: confusion matrices, per-class
precision/recall/F1, training curves, the fold table with mean ± std, Grad-CAM and
saliency maps of right and wrong examples per class, the most confident mistakes, and
the run's provenance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ferdata.errors import FerdataError
from ferdata.inference import load_run_model
from ferdata.manifest import Manifest
from ferdata.manifest.tables import IMAGES_TABLE
from ferdata.progress import NullProgress, ProgressSink
from ferdata.reports import plots
from ferdata.reports.dataset import ReportResult, thumbnail
from ferdata.reports.html import HtmlReport
from ferdata.training.data import file_sha256
from ferdata.training.runs import (CONFIG, PREDICTIONS, checkpoint_path, fold_runs, read_history, read_json,
                                   read_predictions)

REPORT_DIR = "report"
ROLE_ORDER = ("test", "val", "train")


# --- reading a run ------------------------------------------------------------------------


@dataclass
class FoldRun:
    path: Path
    config: dict[str, Any]
    predictions: pa.Table
    classes: list[str]
    history: list[dict[str, Any]]


@dataclass
class RunData:
    path: Path
    folds: list[FoldRun]
    classes: list[str]
    predictions: pa.Table = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        return self.folds[0].config

    @property
    def history(self) -> list[dict[str, Any]]:
        rows = []
        for fr in self.folds:
            rows.extend(fr.history)
        return rows


def load_run(path: str | os.PathLike) -> RunData:
    """A run folder, or a fold group (a folder of fold runs); fails with the fix when a
    run has not finished."""
    root = Path(path)
    if not root.exists():
        raise FerdataError(f"run folder {str(path)!r} does not exist")
    folds: list[FoldRun] = []
    for d in fold_runs(root):
        table, classes = read_predictions(d)
        folds.append(FoldRun(d, read_json(d / CONFIG), table, classes, read_history(d)))
    classes = folds[0].classes
    for fr in folds[1:]:
        if fr.classes != classes:
            raise FerdataError(f"{fr.path} predicts {fr.classes}, {folds[0].path} predicts {classes}: "
                               "not one fold group")
    tables = [fr.predictions.select(["image_id", "fold", "role", "label", "pred", *(f"prob_{c}" for c in classes)])
              for fr in folds]
    return RunData(root, folds, classes, pa.concat_tables(tables))


def eval_role(table: pa.Table) -> str:
    """The role a run is judged on: test, else val, else train."""
    roles = set(table.column("role").to_pylist())
    return next((r for r in ROLE_ORDER if r in roles), "train")


def probs_of(table: pa.Table, classes: Sequence[str]) -> np.ndarray:
    if table.num_rows == 0:
        return np.zeros((0, len(classes)))
    return np.stack([table.column(f"prob_{c}").to_numpy() for c in classes], axis=1)


def _role_rows(table: pa.Table, role: str) -> pa.Table:
    import pyarrow.compute as pc

    return table.filter(pc.equal(table.column("role"), role))


# --- scores ---------------------------------------------------------------------------------


def scores(run: RunData) -> dict[str, Any]:
    """Per-fold accuracy and macro F1 (with mean ± std), pooled confusion matrix and
    per-class precision/recall/F1 on the evaluation role."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    role = eval_role(run.predictions)
    table = _role_rows(run.predictions, role)
    classes = run.classes
    y = table.column("label").to_pylist()
    p = table.column("pred").to_pylist()
    folds = table.column("fold").to_pylist()
    per_fold = []
    for fold in sorted(set(folds)):
        idx = [i for i, f in enumerate(folds) if f == fold]
        yt, yp = [y[i] for i in idx], [p[i] for i in idx]
        per_fold.append({"fold": fold, "n": len(idx), "accuracy": accuracy_score(yt, yp),
                         "macro_f1": f1_score(yt, yp, labels=classes, average="macro", zero_division=0)})
    acc = np.array([f["accuracy"] for f in per_fold]) if per_fold else np.zeros(0)
    mf1 = np.array([f["macro_f1"] for f in per_fold]) if per_fold else np.zeros(0)
    cm = confusion_matrix(y, p, labels=classes) if y else np.zeros((len(classes), len(classes)), int)
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=classes, zero_division=0) if y else \
        (np.zeros(len(classes)),) * 3 + (np.zeros(len(classes), int),)
    return {
        "role": role, "n": len(y), "per_fold": per_fold,
        "accuracy_mean": float(acc.mean()) if len(acc) else float("nan"),
        "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else None,
        "macro_f1_mean": float(mf1.mean()) if len(mf1) else float("nan"),
        "macro_f1_std": float(mf1.std(ddof=1)) if len(mf1) > 1 else None,
        "pooled_accuracy": accuracy_score(y, p) if y else float("nan"),
        "confusion": cm, "confusion_normalized": cm_norm,
        "per_class": {c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
    }


def pm(mean: float, std: float | None) -> str:
    """``mean ± std`` (sample std over folds); the mean alone for a single fold."""
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


# --- images of a run ----------------------------------------------------------------------


def _crop_config(config: dict[str, Any]) -> str | None:
    """The crops config the run trained on (``train()`` pins it in config.json)."""
    value = config.get("crops")
    return value if isinstance(value, str) and value else None


def run_manifest(config: dict[str, Any], manifests: str | os.PathLike | None = None) -> Manifest:
    """The manifest a run trained on, from its config (a folder, or a name under the
    manifests root)."""
    for key in ("manifest_dir", "manifest_path"):
        value = config.get(key)
        if value and (Path(value) / IMAGES_TABLE).exists():
            return Manifest(value)
    name = config.get("manifest")
    if isinstance(name, dict):
        for key in ("dir", "path"):
            if name.get(key) and (Path(name[key]) / IMAGES_TABLE).exists():
                return Manifest(name[key])
        name = name.get("name")
    if not name:
        raise FerdataError(f"the run's {CONFIG} names no manifest")
    return Manifest.open(str(name), manifests or config.get("manifests"))


def image_files(config: dict[str, Any], manifests: str | os.PathLike | None = None) -> dict[str, Path]:
    """``{image_id: file the model saw}``: the run's crops when it trained on crops."""
    from ferdata.manifest.crops import crop_paths

    manifest = run_manifest(config, manifests)
    crops = None if config.get("source") == "images" else crop_paths(manifest, _crop_config(config))
    rows = manifest.images(columns=["image_id", "path"]).to_pylist()
    files = {r["image_id"]: manifest.resolve(r["path"]) for r in rows}
    if crops is not None:
        files.update(crops)
    return files


def pick_examples(table: pa.Table, classes: Sequence[str]) -> list[tuple[int, str]]:
    """Per class the most confident right and the most confident wrong prediction
    (row index, ``"right"``/``"wrong"``) among images of that true class."""
    probs = probs_of(table, classes)
    labels = table.column("label").to_pylist()
    preds = table.column("pred").to_pylist()
    chosen: list[tuple[int, str]] = []
    for c in classes:
        for kind in ("right", "wrong"):
            idx = [i for i, (lab, pr) in enumerate(zip(labels, preds)) if lab == c and (pr == c) == (kind == "right")]
            if idx:
                conf = [probs[i, classes.index(preds[i])] for i in idx]
                chosen.append((idx[int(np.argmax(conf))], kind))
    return chosen


def explanations(run: RunData, manifests: str | os.PathLike | None, progress: ProgressSink) -> tuple[list, str | None]:
    """Rows for :func:`plots.explanation_grid` per class, from the first fold's model on
    that fold's evaluation images; or why there are none."""
    from ferdata.reports.explain import grad_cam, saliency

    fold = run.folds[0]
    try:
        model = load_run_model(fold.path)
        files = image_files(fold.config, manifests)
    except FerdataError as exc:
        return [], str(exc)
    table = _role_rows(fold.predictions, eval_role(fold.predictions))
    picks = [(i, k) for i, k in pick_examples(table, run.classes) if table.column("image_id")[i].as_py() in files]
    if not picks:
        return [], "no evaluation image of this run is on disk"
    progress.start("Grad-CAM", len(picks))
    images = [model.resize(_read(files[table.column("image_id")[i].as_py()])) for i, _ in picks]
    batch = model.tensor(images)
    targets = [run.classes.index(table.column("pred")[i].as_py()) for i, _ in picks]
    cams = grad_cam(model.model, batch, targets)
    sal = saliency(model.model, batch, targets)
    rows = []
    for n, ((i, kind), image) in enumerate(zip(picks, images)):
        label, pred = table.column("label")[i].as_py(), table.column("pred")[i].as_py()
        p = float(probs_of(table.slice(i, 1), run.classes)[0, run.classes.index(pred)])
        rows.append((label, kind, (image, cams[n], sal[n], f"{kind}: {label}→{pred} ({p:.2f})")))
        progress.advance(1)
    progress.finish()
    return rows, None


def _read(path: Path) -> np.ndarray:
    from ferdata.imageio import read_image

    return read_image(path)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for k in sorted(value):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    elif isinstance(value, list) and len(value) > 12:
        out.append((prefix, f"[{len(value)} items]"))
    else:
        out.append((prefix, json.dumps(value) if isinstance(value, (list, bool)) or value is None else value))


def provenance(run: RunData) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("run", str(run.path.resolve())), ("fold runs", len(run.folds))]
    _flatten("", run.config, rows)
    for fr in run.folds:
        tag = "" if len(run.folds) == 1 else f" ({fr.path.name})"
        rows.append((f"sha256 predictions{tag}", file_sha256(fr.path / PREDICTIONS)))
        try:
            ck = checkpoint_path(fr.path)
            rows.append((f"sha256 {ck.name}{tag}", file_sha256(ck)))
        except FerdataError:
            pass
    return rows


# --- the reports ----------------------------------------------------------------------------


def _mistakes(run: RunData, manifests: str | os.PathLike | None, n: int = 16) -> tuple[list, list] | None:
    table = _role_rows(run.predictions, eval_role(run.predictions))
    probs = probs_of(table, run.classes)
    labels, preds = table.column("label").to_pylist(), table.column("pred").to_pylist()
    wrong = [i for i in range(table.num_rows) if labels[i] != preds[i]]
    wrong.sort(key=lambda i: -probs[i, run.classes.index(preds[i])])
    wrong = wrong[:n]
    if not wrong:
        return None
    try:
        files = image_files(run.config, manifests)
    except FerdataError:
        files = {}
    thumbs, captions = [], []
    for i in wrong:
        path = files.get(table.column("image_id")[i].as_py())
        thumbs.append(thumbnail(path, 96) if path is not None and path.exists() else np.full((96, 96, 3), 200, np.uint8))
        captions.append(f"{labels[i]}→{preds[i]} {probs[i, run.classes.index(preds[i])]:.2f}")
    rows = [(table.column("image_id")[i].as_py(), labels[i], preds[i], float(probs[i, run.classes.index(preds[i])]))
            for i in wrong]
    return rows, [thumbs, captions]


def run_report(run_path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
               manifests: str | os.PathLike | None = None, seed: int = 0,
               progress: ProgressSink | None = None) -> ReportResult:
    """Write ``report.html`` and its PNGs (default ``<run>/report/``)."""
    progress = progress or NullProgress()
    run = load_run(run_path)
    out = Path(out_dir) if out_dir is not None else run.path / REPORT_DIR
    s = scores(run)
    cfg = run.config
    rep = HtmlReport(f"Run report: {run.name}", out)

    rep.heading("Summary")
    rep.key_values([("model", model_name(cfg)), ("manifest", _name(cfg.get("manifest"))), ("split", _name(cfg.get("split"))),
                    ("classes", ", ".join(run.classes)), ("evaluated on", f"{s['role']} ({s['n']} images)"),
                    ("folds", len(s["per_fold"])), ("accuracy (mean ± std over folds)", pm(s["accuracy_mean"], s["accuracy_std"])),
                    ("macro F1 (mean ± std over folds)", pm(s["macro_f1_mean"], s["macro_f1_std"])),
                    ("pooled accuracy", s["pooled_accuracy"])])

    rep.heading("Folds")
    rep.table(["fold", "images", "accuracy", "macro F1"],
              [[f["fold"], f["n"], f["accuracy"], f["macro_f1"]] for f in s["per_fold"]] +
              [["mean ± std", s["n"], pm(s["accuracy_mean"], s["accuracy_std"]), pm(s["macro_f1_mean"], s["macro_f1_std"])]])

    rep.heading(f"Confusion matrix ({s['role']})")
    with rep.columns() as col:
        col.next()
        rep.figure("confusion_counts", plots.confusion(s["confusion"], run.classes, "counts", normalized=False))
        col.next()
        rep.figure("confusion_normalized", plots.confusion(s["confusion_normalized"], run.classes,
                                                           "normalised by true class", normalized=True))

    rep.heading("Per-class precision, recall, F1")
    pc = s["per_class"]
    rep.figure("per_class_prf", plots.grouped_bars(run.classes, {k: [pc[c][k] for c in run.classes]
                                                                  for k in ("precision", "recall", "f1")},
                                                   f"per class ({s['role']})", "score"))
    rep.table(["class", "precision", "recall", "F1", "support"],
              [[c, pc[c]["precision"], pc[c]["recall"], pc[c]["f1"], pc[c]["support"]] for c in run.classes])

    rep.heading("Training curves")
    fig = plots.curves(run.history, run.name)
    if fig is None:
        rep.paragraph("This run has no per-epoch history (history.jsonl).", css="note")
    else:
        rep.figure("training_curves", fig)

    rep.heading("Where the network looks (Grad-CAM and saliency)")
    rows, why = explanations(run, manifests, progress)
    if why:
        rep.paragraph(f"No maps: {why}", css="note")
    else:
        rep.paragraph("Per class: the most confident right and the most confident wrong prediction of the first "
                      "fold's model on its evaluation images (maps for the predicted class).", css="note")
        for c in run.classes:
            mine = [r for lab, _, r in rows if lab == c]
            if mine:
                rep.figure(f"explain_{c}", plots.explanation_grid(mine, c), width=420)

    rep.heading("Most confident mistakes")
    mistakes = _mistakes(run, manifests)
    if mistakes is None:
        rep.paragraph("No mistakes on the evaluation images.", css="note")
    else:
        table_rows, (thumbs, captions) = mistakes
        rep.figure("confident_mistakes", plots.contact_sheet(thumbs, captions, "true→predicted, confidence"))
        rep.table(["image_id", "true", "predicted", "confidence"], table_rows)

    rep.heading("Provenance")
    rep.key_values(provenance(run))

    html = rep.write()
    summary = [("report", str(html)), ("evaluated on", s["role"]), ("images", s["n"]), ("folds", len(s["per_fold"])),
               ("accuracy", pm(s["accuracy_mean"], s["accuracy_std"])), ("macro F1", pm(s["macro_f1_mean"], s["macro_f1_std"])),
               ("Grad-CAM maps", len(rows)), ("figures", len(rep.png_names))]
    return ReportResult(html, [out / n for n in rep.png_names], summary)


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else value


def model_name(config: dict[str, Any]) -> Any:
    return config.get("plugin") or config.get("model")


def compare_report(run_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None, *,
                   progress: ProgressSink | None = None) -> ReportResult:
    """Runs (or fold groups) side by side: scores, per-class F1, confusion matrices, curves."""
    progress = progress or NullProgress()
    runs = [load_run(p) for p in run_paths]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        names = [str(r.path) for r in runs]
    out = Path(out_dir) if out_dir is not None else runs[0].path.parent / ("compare-" + "--".join(r.name for r in runs))[:200]
    progress.start("scoring runs", len(runs))
    all_scores = []
    for r in runs:
        all_scores.append(scores(r))
        progress.advance(1)
    progress.finish()
    rep = HtmlReport("Comparison: " + " vs ".join(names), out)

    rep.heading("Scores")
    rep.table(["run", "model", "manifest", "split", "evaluated on", "folds", "accuracy", "macro F1"],
              [[n, model_name(r.config), _name(r.config.get("manifest")), _name(r.config.get("split")),
                f"{s['role']} ({s['n']})", len(s["per_fold"]), pm(s["accuracy_mean"], s["accuracy_std"]),
                pm(s["macro_f1_mean"], s["macro_f1_std"])] for n, r, s in zip(names, runs, all_scores)])

    classes = list(dict.fromkeys(c for r in runs for c in r.classes))
    rep.heading("Per-class F1")
    rep.figure("per_class_f1", plots.grouped_bars(classes, {n: [s["per_class"].get(c, {}).get("f1", 0.0) for c in classes]
                                                            for n, s in zip(names, all_scores)}, "F1 per class", "F1"))

    rep.heading("Confusion matrices (normalised)")
    with rep.columns() as col:
        for n, r, s in zip(names, runs, all_scores):
            col.next()
            rep.figure(f"confusion_{n}", plots.confusion(s["confusion_normalized"], r.classes, n, normalized=True))

    rep.heading("Training curves")
    with rep.columns() as col:
        for n, r in zip(names, runs):
            col.next()
            fig = plots.curves(r.history, n)
            if fig is None:
                rep.paragraph(f"{n}: no per-epoch history.", css="note")
            else:
                rep.figure(f"curves_{n}", fig)

    rep.heading("Folds")
    with rep.columns() as col:
        for n, s in zip(names, all_scores):
            col.next()
            rep.table(["fold", "images", "accuracy", "macro F1"],
                      [[f["fold"], f["n"], f["accuracy"], f["macro_f1"]] for f in s["per_fold"]], caption=n)

    html = rep.write()
    summary = [("report", str(html))] + [(f"{n} accuracy", pm(s["accuracy_mean"], s["accuracy_std"]))
                                         for n, s in zip(names, all_scores)]
    return ReportResult(html, [out / n for n in rep.png_names], summary)
