"""CLAHE (paper 004): grey directly, colour on CIELAB lightness, safe on the pipeline's threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ferdata.faces.clahe import apply_clahe

rng = np.random.default_rng(4)


def _image(h: int, w: int, colour: bool) -> np.ndarray:
    ramp = np.linspace(60, 140, w)[None, :] + rng.normal(0, 8, (h, w))  # low contrast: CLAHE has work to do
    grey = np.clip(ramp, 0, 255).astype(np.uint8)
    return np.stack([grey, grey // 2 + 40, 255 - grey], axis=2) if colour else grey


@pytest.mark.parametrize("colour", [False, True])
def test_shape_dtype_and_contrast(colour):
    image = _image(97, 131, colour)
    out = apply_clahe(image, 2.0, 8)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.std() > image.std()


def test_grey_is_equalised_directly_and_colour_keeps_its_hue_order():
    grey = _image(64, 64, False)
    colour = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.abs(apply_clahe(colour).astype(int)[:, :, 0] - apply_clahe(grey).astype(int)).mean() < 12
    out = apply_clahe(_image(64, 64, True))
    assert (out[:, :, 0].astype(int) - out[:, :, 2].astype(int)).mean() < 0  # blue stays the brighter channel


def test_concurrent_calls_match_sequential_ones():
    """Two helper threads equalise crops at once: a shared cv2.CLAHE broke with OpenCV ROI
    assertions when region sizes differed."""
    images = [_image(h, w, colour) for h, w in ((185, 137), (191, 137), (199, 145), (64, 80)) for colour in (False, True)]
    images *= 10
    expected = [apply_clahe(im, 2.0, 8) for im in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda im: apply_clahe(im, 2.0, 8), images))
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
