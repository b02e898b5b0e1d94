"""Pyramid Histogram of Oriented Gradients (Bosch, Zisserman and Muñoz 2007; the VGG
``anna_phog.m``), vectorised over a batch of equally sized grey faces.

For every pixel on an edge (the edge detector is pluggable, see
:mod:`ferdata.features.edges`), the gradient of the raw 0..255 intensities
(``numpy.gradient``: central differences inside, one-sided at the border) gives a
magnitude and an orientation; the orientation falls into one of ``bins`` equal sectors of
180° (unsigned) or 360° (signed), the sector boundary belonging to the lower bin. Level 0
sums the magnitudes per bin over the region of interest; level l splits it into a grid of
cells and appends each cell's bin sums, cells enumerated column-major (down the first
column of cells, then the next) as in the original. The whole vector is L1-normalised
once.

Two modes:

* default (faithful): a pure vertical gradient (gx = 0) has orientation ±90° like any
  other; an orientation of exactly 0° is the same direction as 180° (360°) and goes to the
  last bin; level l has exactly 2^l × 2^l cells with boundaries ``floor(k·size/2^l)``,
  so every pixel counts at every level and the length is ``bins·Σ4^l`` for any image size.
* ``matlab_compatible=True`` reproduces ``anna_phog.m`` bit for bit: every gx that is
  exactly 0 becomes 1e-5 (a vertical gradient pointing up lands in bin 3, not 2, for
  8 bins over 360°); a bin index of 0 is dropped (the original's ``b == 0`` fix assigns
  to the wrong variable); cells are ``floor(size/2^l)`` pixels wide, remainder pixels are
  ignored and there can be more than 2^l cells per axis (31×37 at L = 3 gives 888
  values, not 680); an image whose grey levels sum to ≤ 100 gives all zeros.

In both modes gradients, orientations and edges are computed on the whole image before
the ROI crop, and edge pixels with zero gradient magnitude add nothing.
"""

from __future__ import annotations

import numpy as np

#: The original replaces gx == 0 by this before taking the orientation.
GX_ZERO = 1e-5


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected an (N, H, W) batch of grey images, got shape {images.shape}")
    if images.shape[1] < 2 or images.shape[2] < 2:
        raise ValueError(f"PHOG needs images of at least 2x2 pixels, got {images.shape[1]}x{images.shape[2]}")
    return images


def resolve_roi(roi: tuple[int, int, int, int] | None, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: 0-based, bottom/right exclusive; ``None`` = whole image.

    The original's 1-based inclusive ``[1; H; 1; W]`` is ``(0, H, 0, W)`` here.
    """
    if roi is None:
        return 0, height, 0, width
    top, bottom, left, right = (int(v) for v in roi)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"PHOG ROI {roi} does not fit a {height}x{width} image (top<bottom<=H, left<right<=W)")
    return top, bottom, left, right


def cell_edges(size: int, level: int, *, matlab_compatible: bool = False) -> np.ndarray:
    """Cell boundaries along one axis of the ROI at one pyramid level (cell k is
    ``[edges[k], edges[k+1])``)."""
    parts = 2**level
    if not matlab_compatible:
        if size < parts:
            raise ValueError(f"PHOG level {level} needs at least {parts} pixels per side of the ROI, got {size}")
        return (np.arange(parts + 1) * size) // parts
    step = size // parts
    if step == 0:  # the original loops forever here
        raise ValueError(f"PHOG level {level} needs at least {parts} pixels per side of the ROI, got {size}")
    return np.arange(size // step + 1) * step


def _cell_lookup(edges: np.ndarray, size: int) -> np.ndarray:
    """Cell index of every coordinate 0..size-1 (len(edges) - 1 past the last cell)."""
    return np.searchsorted(edges, np.arange(size), side="right") - 1


def descriptor_length(height: int, width: int, bins: int = 8, levels: int = 3, *,
                      roi: tuple[int, int, int, int] | None = None, matlab_compatible: bool = False) -> int:
    top, bottom, left, right = resolve_roi(roi, height, width)
    cells = 0
    for level in range(levels + 1):
        rows = len(cell_edges(bottom - top, level, matlab_compatible=matlab_compatible)) - 1
        cols = len(cell_edges(right - left, level, matlab_compatible=matlab_compatible)) - 1
        cells += rows * cols
    return bins * cells


def orientation_bins(gx: np.ndarray, gy: np.ndarray, bins: int, angle: int, *,
                     matlab_compatible: bool = False) -> np.ndarray:
    """Bin index 1..bins of each gradient (0 = not counted, matlab_compatible only).

    The expression order (add π or π/2, ×180, ÷π, ÷(angle/bins), ceil) is the original's,
    so gradients on a sector boundary land in the same bin bit for bit.
    """
    if angle not in (180, 360):
        raise ValueError(f"PHOG angle must be 180 or 360, got {angle}")
    vertical = gx == 0
    gx = np.where(vertical, GX_ZERO, gx)
    if angle == 180:
        a = ((np.arctan(gy / gx) + np.pi / 2) * 180) / np.pi
    else:
        a = ((np.arctan2(gy, gx) + np.pi) * 180) / np.pi
    if not matlab_compatible and vertical.any():
        # A vertical gradient is ±90°; 0° and 180° (360°) are one direction, the last bin.
        exact = (np.full_like(a, 180.0) if angle == 180 else
                 ((np.arctan2(gy, np.zeros_like(gy)) + np.pi) * 180) / np.pi)
        a = np.where(vertical, exact, a)
    b = np.ceil(a / (angle / bins)).astype(np.int64)
    # A bin of 0 (orientation exactly 0°): the original means to map it to 1 but assigns
    # to the wrong variable, so it stays 0 and is never counted (matlab_compatible).
    if not matlab_compatible:
        b[b == 0] = bins
    return b


def gradient_at(images: np.ndarray, k: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.gradient`` of the raw intensities (gx along columns, gy along rows) at the
    given pixels only: central differences inside, one-sided at the border. Differences
    of integers halved are exact, so this equals ``np.gradient`` bit for bit."""
    height, width = images.shape[1:]
    jp, jm = np.minimum(j + 1, width - 1), np.maximum(j - 1, 0)
    ip, im = np.minimum(i + 1, height - 1), np.maximum(i - 1, 0)
    gx = (images[k, i, jp].astype(np.float64) - images[k, i, jm]) / (jp - jm)
    gy = (images[k, ip, j].astype(np.float64) - images[k, im, j]) / (ip - im)
    return gx, gy


def phog(images: np.ndarray, bins: int = 8, angle: int = 360, levels: int = 3, *,
         roi: tuple[int, int, int, int] | None = None, edges: np.ndarray | None = None,
         edge_detector: str = "canny", matlab_compatible: bool = False) -> np.ndarray:
    """PHOG descriptors (N, D) of a batch of grey images, float64, L1-normalised.

    ``edges`` (N, H, W) bool overrides the detector (e.g. the oracle's saved edge maps).
    """
    images = _check(images)
    n, height, width = images.shape
    if edges is None:
        from ferdata.features.edges import detect_edges

        edges = detect_edges(images, edge_detector)
    edges = np.asarray(edges, dtype=bool).reshape(images.shape)
    top, bottom, left, right = resolve_roi(roi, height, width)

    # Gradients only where they are used: edge pixels inside the ROI (ROI coordinates).
    k, i, j = np.nonzero(edges[:, top:bottom, left:right])
    gx, gy = gradient_at(images, k, i + top, j + left)
    magnitude = np.sqrt(gx**2 + gy**2)
    b = orientation_bins(gx, gy, bins, angle, matlab_compatible=matlab_compatible)
    keep = (magnitude > 0) & (b > 0)
    k, i, j, b, magnitude = k[keep], i[keep], j[keep], b[keep] - 1, magnitude[keep]

    parts = []
    for level in range(levels + 1):
        row_edges = cell_edges(bottom - top, level, matlab_compatible=matlab_compatible)
        col_edges = cell_edges(right - left, level, matlab_compatible=matlab_compatible)
        n_rows, n_cols = len(row_edges) - 1, len(col_edges) - 1
        row_cell = _cell_lookup(row_edges, bottom - top)[i]
        col_cell = _cell_lookup(col_edges, right - left)[j]
        ok = (row_cell < n_rows) & (col_cell < n_cols)  # remainder pixels (matlab mode)
        cell = col_cell[ok] * n_rows + row_cell[ok]  # column-major cell order
        size = n_rows * n_cols * bins
        index = k[ok] * size + cell * bins + b[ok]
        parts.append(np.bincount(index, weights=magnitude[ok], minlength=n * size).reshape(n, size))
    out = np.concatenate(parts, axis=1)
    total = out.sum(axis=1, keepdims=True)
    np.divide(out, total, out=out, where=total != 0)
    if matlab_compatible:
        dark = images.reshape(n, -1).sum(axis=1, dtype=np.int64) <= 100
        out[dark] = 0.0
    return out


def bin_maps(images: np.ndarray, edges: np.ndarray, bins: int = 8, angle: int = 360, *,
             matlab_compatible: bool = False) -> np.ndarray:
    """The per-pixel bin map (N, H, W) uint8 (0 = not counted), for inspection and tests."""
    images = _check(images)
    edges = np.asarray(edges, dtype=bool).reshape(images.shape)
    gy, gx = np.gradient(images.astype(np.float64), axis=(1, 2))
    b = orientation_bins(gx, gy, bins, angle, matlab_compatible=matlab_compatible)
    counted = edges & (np.sqrt(gx**2 + gy**2) > 0) & (b > 0)
    return np.where(counted, b, 0).astype(np.uint8)
