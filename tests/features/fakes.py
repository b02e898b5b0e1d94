"""Synthetic faces for the feature tests."""

from __future__ import annotations

import numpy as np


def face_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random grey image with edges (closer to a face than white noise)."""
    from scipy import ndimage as ndi

    noise = rng.normal(size=(height, width))
    img = ndi.gaussian_filter(noise, 2.0)
    img = (img - img.min()) / (np.ptp(img) or 1.0) * 200 + 20
    img[height // 3 : height // 2, width // 4 : width // 2] += 30
    return np.clip(img, 0, 255).astype(np.uint8)
