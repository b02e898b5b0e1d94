"""Evaluation figures from predictions: top-1/top-2, per-class and averaged P/R/F1,
confusion matrices (counts and row-normalised), fold aggregation, the confusion PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def classification_metrics(targets: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Everything ``metrics.json`` reports for one role of one run."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    targets = np.asarray(targets, np.int64)
    probs = np.asarray(probs, np.float64)
    n_classes = len(classes)
    labels = list(range(n_classes))
    if len(targets) == 0:
        return {"n": 0}
    preds = probs.argmax(axis=1)
    k = min(2, n_classes)
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    p, r, f, s = precision_recall_fscore_support(targets, preds, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "n": int(len(targets)),
        "accuracy": float((preds == targets).mean()),
        "top2_accuracy": float((topk == targets[:, None]).any(axis=1).mean()),
        "majority_baseline": float(np.bincount(targets, minlength=n_classes).max() / len(targets)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
    }
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(targets, preds, labels=labels, average=avg, zero_division=0)
        out[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    cm = confusion_matrix(targets, preds, labels=labels)
    rows = cm.sum(axis=1, keepdims=True)
    out["confusion"] = cm.astype(int).tolist()
    out["confusion_normalized"] = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0).tolist()
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    arr = np.asarray(vals, np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def aggregate_folds(fold_metrics: Sequence[dict[str, Any]], role: str = "test") -> dict[str, Any]:
    """Mean ± std over folds of the headline figures of one role."""
    keys = ("accuracy", "top2_accuracy", "majority_baseline")
    out: dict[str, Any] = {"folds": len(fold_metrics)}
    for key in keys:
        vals = [m.get(role, {}).get(key) for m in fold_metrics]
        mean, std = mean_std([v for v in vals if v is not None])
        out[key] = {"mean": mean, "std": std, "values": vals}
    for avg in ("macro", "weighted"):
        vals = [m.get(role, {}).get(avg, {}).get("f1") for m in fold_metrics]
        mean, std = mean_std([v for v in vals if v is not None])
        out[f"{avg}_f1"] = {"mean": mean, "std": std, "values": vals}
    return out


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, first imported with Ctrl-C held: an interrupt
    inside the start of its native modules leaves them half made, and Python then aborts at
    exit (SIGABRT, "the GIL is released") instead of printing the one interrupted line."""
    from ferdata.interrupts import deferred_sigint

    with deferred_sigint():
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    return plt


def plot_confusion(confusion: Sequence[Sequence[float]], normalized: Sequence[Sequence[float]],
                   classes: Sequence[str], path: Path, title: str) -> Path:
    """Counts and row-normalised confusion matrices side by side, written atomically."""
    import io

    from ferdata.manifest import atomic_write_bytes

    plt = _pyplot()

    n = len(classes)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * n, 2 + 0.6 * n))
    for ax, mat, fmt_, name in ((axes[0], np.asarray(confusion), "d", "counts"),
                                (axes[1], np.asarray(normalized), ".2f", "normalised")):
        ax.imshow(mat, cmap="Blues", vmin=0)
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})")
        top = mat.max() if mat.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, format(mat[i, j], fmt_), ha="center", va="center", fontsize=8,
                        color="white" if top and mat[i, j] > top / 2 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
