"""How an image is shown to a detector, and how what it finds comes back to original pixels.

Detectors are trained on faces that sit inside a larger picture: BlazeFace's anchors, the
Haar cascade's sliding window and MTCNN's P-net pyramid all miss a face that fills the whole
frame, and a 48-px face is below what most of them search comfortably. So a tight crop is
shown to the detector *prepared*: upsampled until its shorter side reaches the detector's
comfortable size, then given a border (``replicate`` or ``constant``) of a fraction of its
side on every edge. Large frames are searched on a downscaled copy instead. Everything found
is mapped back through the inverse of that one affine map, so boxes, eye centres and
landmarks are always in the original pixels; a box is clipped to the original image (the
border holds no face) and a face whose centre lies in the border is dropped.

``pad`` says when a prepared copy is searched: ``never``; ``always`` (pre-cropped datasets:
one search, on the prepared copy); or ``retry`` (the image as it is first, the prepared copy
only when nothing was found, so whole frames cost what they did and tight crops are rescued).

These are pure functions of (detector, settings, image): both engines call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferdata.faces import geometry
from ferdata.faces.base import Detector, Face, Padding

PADS = ("auto", "never", "always", "retry")
"""``auto`` is resolved per manifest: ``always`` for pre-cropped faces, else ``retry``."""
NO_PADDING = Padding()


@dataclass(frozen=True)
class Prepared:
    image: np.ndarray
    """What the detector sees."""
    matrix: np.ndarray
    """3×3: original pixels → prepared pixels."""
    shape: tuple[int, int]
    """(height, width) of the original."""
    padded: bool


def prepare(image: np.ndarray, padding: Padding, max_side: int = 0) -> Prepared:
    """Resize (upsample to ``padding.min_side``, or downscale to ``max_side``) and pad; the
    matrix takes original pixel centres to prepared ones."""
    import cv2

    h, w = image.shape[:2]
    border = padding.border
    grow = 1.0 + 2.0 * border
    scale = 1.0
    if padding.min_side and min(h, w) + 2.0 * border * max(h, w) < padding.min_side:
        scale = padding.min_side / (min(h, w) + 2.0 * border * max(h, w))
    if max_side and max(h, w) * grow * scale > max_side:
        scale = max_side / (max(h, w) * grow)
    out = image
    sx = sy = 1.0
    if scale != 1.0:
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
        sx, sy = nw / w, nh / h
    matrix = np.array([[sx, 0.0, (sx - 1.0) / 2.0], [0.0, sy, (sy - 1.0) / 2.0], [0.0, 0.0, 1.0]])
    b = round(border * max(out.shape[:2]))
    if b > 0:
        mode = cv2.BORDER_REPLICATE if padding.mode == "replicate" else cv2.BORDER_CONSTANT
        out = cv2.copyMakeBorder(out, b, b, b, b, mode, value=(128, 128, 128) if out.ndim == 3 else 128)
        matrix = geometry.translation(b, b) @ matrix
    return Prepared(np.ascontiguousarray(out), matrix, (h, w), b > 0)


def to_original(faces: Sequence[Face], prepared: Prepared, whole_image: bool = False) -> list[Face]:
    """Faces found on a prepared copy, in original pixels (boxes clipped to the image when it
    was padded; a face centred in the border is no face of the image). ``whole_image``: the
    face is the image by declaration, so its box is exactly the image's."""
    if not faces:
        return []
    back = geometry.invert(prepared.matrix)
    h, w = prepared.shape
    out = []
    for face in faces:
        f = geometry.map_face(face, back)
        if whole_image:
            f = Face((0.0, 0.0, float(w), float(h)), f.score, f.eye_left, f.eye_right, f.landmarks)
        elif prepared.padded:
            cx, cy = geometry.box_centre(f.box)
            if not (0.0 <= cx <= w and 0.0 <= cy <= h):
                continue
            x0, y0, x1, y1 = f.box
            f = Face((max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)), f.score, f.eye_left,
                     f.eye_right, f.landmarks)
        out.append(f)
    return out


def search(detector: Detector, images: Sequence[np.ndarray], *, pad: str, padding: Padding, max_side: int,
           rows: Sequence[Mapping[str, Any] | None] | None = None) -> tuple[list[list[Face]], list[bool]]:
    """Every face of every image in original pixels, searched as ``pad`` says (batched where
    the detector batches), and which images were searched on a padded copy."""
    rows = list(rows) if rows is not None else [None] * len(images)
    if not detector.reads_pixels:  # faces come from the row: nothing to prepare
        return detector.detect_batch(list(images), rows), [False] * len(images)
    pads = pad in ("always", "retry") and padding.does_something
    first = padding if pads and pad == "always" else NO_PADDING
    found = _run(detector.for_tight_crops() if first is padding else detector, images, rows, first, max_side)
    used = [first is padding] * len(images)
    if pads and pad == "retry":
        again = [i for i, faces in enumerate(found) if not faces]
        if again:
            retried = _run(detector.for_tight_crops(), [images[i] for i in again], [rows[i] for i in again], padding,
                           max_side)
            for i, faces in zip(again, retried):
                found[i], used[i] = faces, True
    return found, used


def _run(detector: Detector, images: Sequence[np.ndarray], rows: list, padding: Padding,
         max_side: int) -> list[list[Face]]:
    if not detector.reads_pixels:
        return detector.detect_batch(list(images), rows)
    prepared = [prepare(im, padding, max_side) for im in images]
    results = detector.detect_batch([p.image for p in prepared], rows)
    return [to_original(faces, p, detector.whole_image) for faces, p in zip(results, prepared)]
