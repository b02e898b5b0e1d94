"""The report's figures, drawn on plain matplotlib ``Figure`` objects (Agg canvas, no
pyplot state), so reports can be built in worker processes and on headless machines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

PALETTE = ("#3b6ea5", "#e07b39", "#5a9e5a", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd")


def stacked_counts(counts: Mapping[str, Mapping[str, int]], title: str, xlabel: str = "label") -> Figure:
    """Bars per row key, stacked by column key (label × source split)."""
    rows = list(counts)
    cols = sorted({c for v in counts.values() for c in v})
    fig = Figure(figsize=(max(5.0, 0.7 * len(rows) + 2), 3.6))
    ax = fig.add_subplot()
    bottom = np.zeros(len(rows))
    for k, col in enumerate(cols):
        vals = np.array([counts[r].get(col, 0) for r in rows], float)
        ax.bar(rows, vals, bottom=bottom, label=col, color=PALETTE[k % len(PALETTE)])
        bottom += vals
    for x, total in enumerate(bottom):
        ax.text(x, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.tick_params(axis="x", rotation=30)
    if len(cols) > 1:
        ax.legend(fontsize=8)
    return fig


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 20) -> Figure:
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.add_subplot()
    vals = np.asarray(values, float)
    if len(vals) and np.all(vals == np.round(vals)) and vals.max() - vals.min() < 40:
        ks, ns = np.unique(vals.astype(int), return_counts=True)  # small integers: one bar each
        ax.bar(ks, ns, width=0.8, color=PALETTE[0])
        ax.yaxis.get_major_locator().set_params(integer=True)
    else:
        ax.hist(vals, bins=bins, color=PALETTE[0], edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return fig


def bar_values(names: Sequence[str], values: Sequence[float], title: str, ylabel: str, *,
               fmt: str = "{:.0f}") -> Figure:
    fig = Figure(figsize=(max(4.5, 0.6 * len(names) + 2), 3.4))
    ax = fig.add_subplot()
    ax.bar(list(names), list(values), color=PALETTE[0])
    for x, v in enumerate(values):
        ax.text(x, v, fmt.format(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=30)
    return fig


def contact_sheet(images: Sequence[np.ndarray], titles: Sequence[str], title: str, *, cols: int = 8,
                  cell: float = 1.2) -> Figure:
    """A grid of small images (uint8 grey or RGB) with a caption under each."""
    n = max(1, len(images))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(cols * cell, rows * (cell + 0.25) + 0.4))
    fig.suptitle(title, fontsize=10)
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        if i < len(images):
            im = images[i]
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255)
            if titles[i]:
                ax.set_title(titles[i], fontsize=6)
    return fig


def confusion(matrix: np.ndarray, classes: Sequence[str], title: str, *, normalized: bool) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted) with each cell's value."""
    m = np.asarray(matrix, float)
    size = max(4.0, 0.55 * len(classes) + 2.0)
    fig = Figure(figsize=(size + 0.8, size))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalized else max(1.0, m.max()))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    hi = (1 if normalized else max(1.0, m.max())) / 2
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{m[i, j]:.2f}" if normalized else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if m[i, j] > hi else "black")
    return fig


def grouped_bars(classes: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> Figure:
    """Bars per class, one colour per series (precision / recall / F1, or one per run)."""
    names = list(series)
    fig = Figure(figsize=(max(5.5, 0.9 * len(classes) + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    x = np.arange(len(classes))
    for k, name in enumerate(names):
        ax.bar(x + (k - (len(names) - 1) / 2) * width, list(series[name]), width, label=name,
               color=PALETTE[k % len(PALETTE)])
    ax.set_xticks(x, list(classes), rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(4, len(names)))
    return fig


def curves(history: Sequence[Mapping[str, Any]], title: str) -> Figure | None:
    """Loss and accuracy per epoch, one line per fold and quantity; ``None`` without epochs."""
    rows = [h for h in history if "epoch" in h]
    if not rows:
        return None
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    folds = sorted({h.get("fold", 0) for h in rows})
    for panel, (ax, kind) in enumerate(zip(axes, ("loss", "accuracy"))):
        for k, fold in enumerate(folds):
            fr = sorted((h for h in rows if h.get("fold", 0) == fold), key=lambda h: h["epoch"])
            for style, key in (("-", f"train_{kind}"), ("--", f"val_{kind}")):
                pts = [(h["epoch"], h[key]) for h in fr if h.get(key) is not None]
                if pts:
                    ex, ey = zip(*pts)
                    label = f"{key}" + (f" fold {fold}" if len(folds) > 1 else "")
                    ax.plot(ex, ey, style, color=PALETTE[k % len(PALETTE)], label=label, marker="." if len(pts) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind)
        ax.set_title(f"{title}: {kind}", fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def explanation_grid(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, str]], title: str) -> Figure:
    """One row per example: the input (uint8), its Grad-CAM map over it, its saliency map
    (both maps in [0, 1] at the input's size)."""
    n = max(1, len(rows))
    fig = Figure(figsize=(5.4, 1.9 * n + 0.5))
    fig.suptitle(title, fontsize=10)
    for i, (image, cam, saliency, caption) in enumerate(rows):
        grey = image.ndim == 2
        axes = [fig.add_subplot(n, 3, i * 3 + j + 1) for j in range(3)]
        for ax in axes:
            ax.axis("off")
        axes[0].imshow(image, cmap="gray" if grey else None, vmin=0, vmax=255)
        axes[0].set_title(caption, fontsize=7)
        axes[1].imshow(image, cmap="gray" if grey else None, vmin=0, vmax=255)
        axes[1].imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[1].set_title("Grad-CAM", fontsize=7)
        axes[2].imshow(saliency, cmap="hot", vmin=0, vmax=1)
        axes[2].set_title("saliency", fontsize=7)
    return fig
