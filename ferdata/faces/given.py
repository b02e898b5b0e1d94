"""The dataset's own face: AffectNet's box and 68 landmarks from ``images.parquet``.

Nothing is detected; the row's ``face_x``/``face_y``/``face_width``/``face_height`` give
the box and ``landmarks`` (68 points as x0, y0, x1, y1, ...) give the eye centres as the
mean of each eye's six points (iBUG indices 36-41 and 42-47). A row without a box has no face.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ferdata.faces._registry import register_detector
from ferdata.faces.base import Detector, Face, ordered_eyes

BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")
EYES_68 = (range(36, 42), range(42, 48))


@register_detector("given")
class GivenDetector(Detector):
    name = "given"
    description = "the dataset's own boxes and 68 landmarks (AffectNet face_x/face_y/face_width/face_height/landmarks)"
    row_columns = (*BOX_COLUMNS, "landmarks")
    reads_pixels = False

    def detect(self, image: np.ndarray, row: Mapping[str, Any] | None = None) -> list[Face]:
        row = row or {}
        values = [row.get(c) for c in BOX_COLUMNS]
        if any(v is None for v in values) or values[2] <= 0 or values[3] <= 0:
            return []
        x, y, w, h = (float(v) for v in values)
        flat = row.get("landmarks") or []
        points = tuple((float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat) - 1, 2))
        eye_l = eye_r = None
        if len(points) >= 48:
            a, b = (tuple(float(v) for v in np.mean([points[i] for i in idx], axis=0)) for idx in EYES_68)
            eye_l, eye_r = ordered_eyes(a, b)
        return [Face((x, y, x + w, y + h), None, eye_l, eye_r, points)]
