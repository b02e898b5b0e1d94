"""Contrast-limited adaptive histogram equalisation (paper 004, 5.2.1).

Colour images are equalised on the lightness channel of CIELAB so hues do not shift; grey
images directly. The pipeline equalises the region a crop is cut from, so the tile grid is
relative to the face rather than the whole frame. The clip limit and tile grid are options
and go into the config hash.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _clahe(clip_limit: float, tile_grid: int):
    import cv2

    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid))


def apply_clahe(image: np.ndarray, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """CLAHE on a uint8 grey (H×W) or RGB (H×W×3) image; same shape and dtype back."""
    import cv2

    op = _clahe(float(clip_limit), int(tile_grid))
    if image.ndim == 2:
        return op.apply(image)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = op.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
