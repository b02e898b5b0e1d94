"""The registered descriptors: thin, validated wrappers over :mod:`lpq` and :mod:`phog`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ferdata.errors import FerdataError
from ferdata.features._registry import register_descriptor
from ferdata.features.base import Descriptor
from ferdata.features.edges import EDGE_DETECTORS
from ferdata.features.lpq import lpq
from ferdata.features.phog import descriptor_length, phog


@register_descriptor("lpq")
class LPQDescriptor(Descriptor):
    """Local Phase Quantization: 256-bin normalised histogram of phase codes."""

    name = "lpq"

    def __init__(self, window: int = 7, decorr: bool = True, matlab_compatible: bool = False) -> None:
        if window < 3 or window > 15 or window % 2 == 0:
            raise FerdataError(f"--lpq-window {window}: use an odd window between 3 and 15 (the paper uses 3, 5 or 7)")
        self.window = int(window)
        self.decorr = bool(decorr)
        self.matlab_compatible = bool(matlab_compatible)

    def compute(self, images: np.ndarray) -> np.ndarray:
        return lpq(images, self.window, self.decorr, matlab_compatible=self.matlab_compatible)

    def length(self, height: int, width: int) -> int:
        return 256

    def min_size(self) -> int:
        return self.window

    def params(self) -> dict[str, Any]:
        return {"window": self.window, "decorr": self.decorr, "matlab_compatible": self.matlab_compatible}


@register_descriptor("phog")
class PHOGDescriptor(Descriptor):
    """Pyramid Histogram of Oriented Gradients over edge pixels."""

    name = "phog"

    def __init__(self, bins: int = 8, angle: int = 360, levels: int = 3,
                 roi: tuple[int, int, int, int] | list[int] | None = None, edge_detector: str = "canny",
                 matlab_compatible: bool = False) -> None:
        if angle not in (180, 360):
            raise FerdataError(f"--phog-angle {angle}: use 180 (unsigned) or 360 (signed)")
        if not 1 <= bins <= 360:
            raise FerdataError(f"--phog-bins {bins}: use between 1 and 360 bins")
        if not 0 <= levels <= 6:
            raise FerdataError(f"--phog-levels {levels}: use between 0 and 6 pyramid levels")
        if edge_detector not in EDGE_DETECTORS:
            EDGE_DETECTORS.get(edge_detector)  # raises with the choices
        if roi is not None:
            roi = tuple(int(v) for v in roi)
            if len(roi) != 4 or not (0 <= roi[0] < roi[1] and 0 <= roi[2] < roi[3]):
                raise FerdataError(f"--phog-roi {roi}: give top,bottom,left,right in pixels with top<bottom, left<right")
        self.bins = int(bins)
        self.angle = int(angle)
        self.levels = int(levels)
        self.roi = roi
        self.edge_detector = edge_detector
        self.matlab_compatible = bool(matlab_compatible)

    def compute(self, images: np.ndarray) -> np.ndarray:
        return phog(images, self.bins, self.angle, self.levels, roi=self.roi, edge_detector=self.edge_detector,
                    matlab_compatible=self.matlab_compatible)

    def length(self, height: int, width: int) -> int:
        return descriptor_length(height, width, self.bins, self.levels, roi=self.roi,
                                 matlab_compatible=self.matlab_compatible)

    def min_size(self) -> int:
        return max(2, 2**self.levels)

    def params(self) -> dict[str, Any]:
        return {"bins": self.bins, "angle": self.angle, "levels": self.levels,
                "roi": list(self.roi) if self.roi else None, "edge_detector": self.edge_detector,
                "matlab_compatible": self.matlab_compatible}
