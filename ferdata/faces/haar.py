"""Viola-Jones Haar cascades from OpenCV's wheel (paper 001's detector).

Faces come from ``haarcascade_frontalface_default.xml``; each face's eye centres from
``haarcascade_eye.xml`` run inside the upper part of the face box, one eye per half. A
face whose eyes the cascade misses keeps ``eye_left``/``eye_right`` as ``None`` (the
pipeline then crops the box without rotating it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ferdata.errors import FerdataError
from ferdata.faces._registry import register_detector
from ferdata.faces.base import Detector, Face, Padding


def _cascade(filename: str):
    import cv2

    path = Path(cv2.data.haarcascades) / filename
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FerdataError(f"OpenCV cascade {path} is missing or unreadable; reinstall opencv-python-headless")
    return cascade


@register_detector("haar")
class HaarDetector(Detector):
    name = "haar"
    description = "OpenCV Haar cascade (Viola-Jones), eye cascade inside the face for eye centres"
    tight_padding = Padding(0.25, "replicate", 160)
    """Measured on the pre-cropped samples (``benchmarks/face_rates.py``): a replicated border
    of a quarter of the side and upsampling to 160 px found every CK+48 face and 72-79 % of
    FER-2013's and FER+'s; without upsampling the eye cascade finds no eyes in 48 px faces."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 30, eyes: bool = True) -> None:
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.eyes = bool(eyes)
        self._face = _cascade("haarcascade_frontalface_default.xml")
        self._eye = _cascade("haarcascade_eye.xml") if self.eyes else None

    def detect(self, image: np.ndarray, row: Mapping[str, Any] | None = None) -> list[Face]:
        import cv2

        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        size = max(1, min(self.min_size, min(gray.shape[:2])))
        rects, _, weights = self._face.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(size, size),
            outputRejectLevels=True,
        )
        faces = []
        for (x, y, w, h), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            eye_l, eye_r = self._find_eyes(gray, int(x), int(y), int(w), int(h)) if self._eye is not None else (None, None)
            faces.append(Face((float(x), float(y), float(x + w), float(y + h)), float(weight), eye_l, eye_r))
        return faces

    def _find_eyes(self, gray: np.ndarray, x: int, y: int, w: int, h: int):
        """Best eye detection in each half of the face's upper 60 % (eyes sit well above the middle)."""
        roi = gray[y : y + int(h * 0.6), x : x + w]
        min_eye = max(5, w // 8)
        if roi.shape[0] < min_eye or roi.shape[1] < min_eye:
            return None, None
        rects, _, weights = self._eye.detectMultiScale3(
            roi, scaleFactor=1.1, minNeighbors=3, minSize=(min_eye, min_eye), maxSize=(w // 2, w // 2),
            outputRejectLevels=True,
        )
        best: dict[str, tuple[float, tuple[float, float]]] = {}
        for (ex, ey, ew, eh), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            cx, cy = x + ex + ew / 2.0, y + ey + eh / 2.0
            if cy > y + h * 0.55:
                continue
            side = "left" if cx < x + w / 2.0 else "right"
            if side not in best or weight > best[side][0]:
                best[side] = (float(weight), (float(cx), float(cy)))
        if len(best) < 2:
            return None, None
        return best["left"][1], best["right"][1]
