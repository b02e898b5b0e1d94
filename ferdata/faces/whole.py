"""``--detector none``: the whole image is the face (FER-2013, CK+48, SFEW 2.0 aligned and
other sets that ship faces already cropped and aligned).

Nothing is detected; the face's box is the image. When alignment needs eye centres
(``eyes=True``, which the pipeline sets for ``--align rotate|spatial``), MediaPipe's face
mesh finds them on the prepared copy (upsampled and padded, see
:mod:`ferdata.faces.search`: the pipeline always pads for this detector when it wants eyes);
a face whose eyes the mesh misses is cropped unrotated, and ``align`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ferdata.faces._registry import register_detector
from ferdata.faces.base import Detector, Face, Padding
from ferdata.faces.geometry import midpoint


@register_detector("none")
class WholeImage(Detector):
    name = "none"
    description = "no detection: the whole image is the face (pre-cropped datasets); face mesh eyes for --align"
    whole_image = True
    tight_padding = Padding(0.5, "constant", 0)
    """The face mesh's own detector (BlazeFace short range) needs the face inside a frame: a
    mid-grey border of half the side found eyes in 99 % of FER-2013 and 97 % of FER+ faces,
    a replicated one in 95 % (``benchmarks/face_rates.py``)."""

    def __init__(self, eyes: bool = False, min_confidence: float = 0.5) -> None:
        self.eyes = bool(eyes)
        self.min_confidence = float(min_confidence)
        self._mesh = None
        if self.eyes:
            from ferdata.faces.mediapipe_detector import FaceMeshEyes

            self._mesh = FaceMeshEyes(max_faces=2, min_confidence=self.min_confidence)

    def detect(self, image: np.ndarray, row: Mapping[str, Any] | None = None) -> list[Face]:
        h, w = image.shape[:2]
        box = (0.0, 0.0, float(w), float(h))
        if self._mesh is None:
            return [Face(box)]
        from ferdata.faces.mediapipe_detector import rgb

        pairs = self._mesh.eyes(rgb(image))
        if not pairs:
            return [Face(box)]
        centre = (w / 2.0, h / 2.0)
        eye_l, eye_r = min(pairs, key=lambda p: sum((a - b) ** 2 for a, b in zip(midpoint(*p), centre)))
        return [Face(box, None, eye_l, eye_r)]
