"""Contrast-limited adaptive histogram equalisation (paper 004, 5.2.1).

Colour images are equalised on the lightness channel of CIELAB so hues do not shift; grey
images directly. The pipeline equalises the region a crop is cut from, so the tile grid is
relative to the face rather than the whole frame. The clip limit and tile grid are options
and go into the config hash.
"""

from __future__ import annotations

import numpy as np


def apply_clahe(image: np.ndarray, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """CLAHE on a uint8 grey (H×W) or RGB (H×W×3) image; same shape and dtype back."""
    import cv2

    # A new operator per call (under a microsecond): a cv2.CLAHE keeps per-call buffers, and
    # one shared by the pipeline's helper threads failed with OpenCV ROI assertions.
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid), int(tile_grid)))
    if image.ndim == 2:
        return op.apply(image)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = op.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
