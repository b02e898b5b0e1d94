"""Edge detectors for PHOG: one registry, each maps an (N, H, W) uint8 batch to an
(N, H, W) bool batch.

``canny`` (the default) is OpenCV's non-maximum suppression and hysteresis fed with the
gradients and thresholds that Octave's ``edge(I, 'canny')`` uses, because the PHOG oracle
was produced with Octave: the image scaled to [0, 1], a Gaussian of σ = √2 with replicated
borders, derivatives with [1 0 −1]/2, the magnitude divided by its maximum, the high
threshold at the mean normalised magnitude and the low one at 0.4 of it, and Octave's
even-length (16-tap) smoothing kernel with its half-pixel shift. On the oracle's 12 faces
this finds 99.9 % of Octave's edge pixels, with about 14 % extra ones (OpenCV's
hysteresis keeps more weak chains than Octave's).
``canny_skimage`` is scikit-image's Canny (σ = √2, Sobel derivatives, odd kernel) with
the same threshold rule. Neither reproduces Octave's maps pixel for pixel;
``benchmarks/features.py`` reports how far the PHOG descriptors land from the oracle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferdata.registry import Registry

EdgeDetector = Callable[[np.ndarray], np.ndarray]

EDGE_DETECTORS: Registry[EdgeDetector] = Registry("edge detector")
register_edge_detector = EDGE_DETECTORS.register

SIGMA = float(np.sqrt(2.0))
LOW_RATIO = 0.4


def list_edge_detectors(pattern: str | None = None) -> list[str]:
    return EDGE_DETECTORS.names(pattern)


def detect_edges(images: np.ndarray, detector: str | EdgeDetector = "canny") -> np.ndarray:
    """Edge maps (N, H, W) bool of a batch of grey uint8 images."""
    fn = EDGE_DETECTORS.get(detector) if isinstance(detector, str) else detector
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    return np.asarray(fn(images), dtype=bool)


def octave_gaussian_kernel(sigma: float = SIGMA, taps: int = 16) -> np.ndarray:
    """The even-length Gaussian Octave's Canny smooths with: samples at ±0.5, ±1.5, ...,
    anchored so the taps cover offsets −7..+8 (a half-pixel shift that the edge maps keep)."""
    x = np.arange(taps) - (taps - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


@register_edge_detector("canny")
def canny_opencv(images: np.ndarray) -> np.ndarray:
    """Octave-style Canny on OpenCV (fast: well under a millisecond per 224×224 face).

    Works in float32: the maps only have to be close to Octave's, not bit-exact.
    """
    import cv2

    out = np.empty(images.shape, dtype=bool)
    g = octave_gaussian_kernel().astype(np.float32)
    anchor = (len(g) - 1) // 2
    kernel = np.array([[0.5, 0.0, -0.5]], dtype=np.float32)
    for n, img in enumerate(images):
        smooth = cv2.sepFilter2D(img.astype(np.float32) * np.float32(1 / 255), cv2.CV_32F, g[None, :], g[:, None],
                                 anchor=(anchor, anchor), borderType=cv2.BORDER_REPLICATE)
        # filter2D correlates: (f(x-1) - f(x+1))/2, the sign is irrelevant to Canny.
        dx = cv2.filter2D(smooth, cv2.CV_32F, kernel, borderType=cv2.BORDER_REPLICATE)
        dy = cv2.filter2D(smooth, cv2.CV_32F, kernel.T, borderType=cv2.BORDER_REPLICATE)
        magnitude = cv2.magnitude(dx, dy)
        peak = float(magnitude.max())
        if peak == 0.0:
            out[n] = False
            continue
        high = float(magnitude.mean())  # mean of magnitude/peak, in units of the peak
        scale = 16000.0 / peak  # int16 gradients for cv2.Canny's derivative input
        dx16 = (dx * np.float32(scale)).astype(np.int16)
        dy16 = (dy * np.float32(scale)).astype(np.int16)
        out[n] = cv2.Canny(dx16, dy16, LOW_RATIO * high * scale, high * scale, L2gradient=True) > 0
    return out


@register_edge_detector("canny_skimage")
def canny_skimage(images: np.ndarray) -> np.ndarray:
    """scikit-image's Canny with σ = √2 and the Octave threshold rule (mean magnitude)."""
    from scipy import ndimage as ndi
    from skimage.feature import canny

    out = np.empty(images.shape, dtype=bool)
    for n, img in enumerate(images):
        x = img.astype(np.float64) / 255.0
        smooth = ndi.gaussian_filter(x, SIGMA, mode="nearest")
        magnitude = np.hypot(ndi.sobel(smooth, axis=1), ndi.sobel(smooth, axis=0))
        high = float(magnitude.mean())
        if high == 0.0:
            out[n] = False
            continue
        out[n] = canny(x, sigma=SIGMA, low_threshold=LOW_RATIO * high, high_threshold=high, mode="nearest")
    return out
