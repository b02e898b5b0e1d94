"""Face geometry: the eye line's angle, rotation correction, crop boxes, and the one affine
map from original-image pixels to crop pixels (and back).

Every alignment is a 3×3 homogeneous matrix ``A`` with ``[u, v, 1] = A @ [x, y, 1]``,
where ``(x, y)`` are original-image pixel coordinates and ``(u, v)`` output-crop pixel
coordinates (pixel centres at integers, as OpenCV uses). The table records ``A``, so any
point can be carried into the crop or brought back with :func:`invert`.

Rotation correction (paper 004, 5.2.2): rotate about the eye midpoint by the eye line's
angle so the line becomes horizontal. Spatial normalisation (5.2.3): in the rotated frame
crop 1.7× the inter-eye distance to each side of the midpoint, 1.3× above and 3.2× below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ferdata.faces.base import Box, Face, Point

#: Paper 004's spatial normalisation: inter-eye distances to each side, above, below.
SPATIAL_FACTORS = (1.7, 1.3, 3.2)


def eye_angle(eye_left: Point, eye_right: Point) -> float:
    """Degrees of the line from the image-left eye to the image-right eye; positive when
    the right eye is lower (``y`` grows downwards)."""
    return math.degrees(math.atan2(eye_right[1] - eye_left[1], eye_right[0] - eye_left[0]))


def midpoint(a: Point, b: Point) -> Point:
    return (a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0


def rotation(center: Point, angle_deg: float) -> np.ndarray:
    """The rotation about ``center`` that turns a line at ``angle_deg`` horizontal."""
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    cx, cy = center
    return np.array([[c, s, cx - c * cx - s * cy],
                     [-s, c, cy + s * cx - c * cy],
                     [0.0, 0.0, 1.0]])


def rect_to_output(rect: Box, size: int) -> np.ndarray:
    """Maps ``rect`` (pixel edges) onto a ``size``×``size`` crop: edge ``x0`` → -0.5,
    edge ``x1`` → size - 0.5, so the crop's pixels tile the rectangle exactly."""
    x0, y0, x1, y1 = rect
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    return np.array([[sx, 0.0, -x0 * sx - 0.5], [0.0, sy, -y0 * sy - 0.5], [0.0, 0.0, 1.0]])


def scaling(factor: float) -> np.ndarray:
    """Pixel-centre-correct resize by ``factor`` (used to map detections on a downscaled
    copy back to the original)."""
    off = (factor - 1.0) / 2.0
    return np.array([[factor, 0.0, off], [0.0, factor, off], [0.0, 0.0, 1.0]])


def apply(matrix: np.ndarray, points: Iterable[Point]) -> list[Point]:
    pts = np.asarray(list(points), dtype=np.float64).reshape(-1, 2)
    if not len(pts):
        return []
    out = pts @ matrix[:2, :2].T + matrix[:2, 2]
    return [(float(x), float(y)) for x, y in out]


def invert(matrix: np.ndarray) -> np.ndarray:
    return np.linalg.inv(matrix)


def map_face(face: Face, matrix: np.ndarray) -> Face:
    """The same face in the coordinates ``matrix`` maps to (axis-aligned transforms only
    keep the box exact; it is the bounding box of the mapped corners otherwise)."""
    x0, y0, x1, y1 = face.box
    corners = apply(matrix, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    eye_l = apply(matrix, [face.eye_left])[0] if face.eye_left is not None else None
    eye_r = apply(matrix, [face.eye_right])[0] if face.eye_right is not None else None
    return Face((min(xs), min(ys), max(xs), max(ys)), face.score, eye_l, eye_r,
                tuple(apply(matrix, face.landmarks)))


def spatial_box(eye_left: Point, eye_right: Point, factors: Sequence[float] = SPATIAL_FACTORS) -> Box:
    """Paper 004's crop around horizontal eyes: ``side`` × the inter-eye distance to the left
    and right of the midpoint, ``above`` × above it and ``below`` × below it."""
    side, above, below = factors
    mx, my = midpoint(eye_left, eye_right)
    d = math.dist(eye_left, eye_right)
    return mx - side * d, my - above * d, mx + side * d, my + below * d


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def source_region(matrix: np.ndarray, size: int, image_shape: tuple[int, ...], margin: int = 2) -> tuple[int, int, int, int]:
    """The integer box of the original image that a ``size``×``size`` crop through
    ``matrix`` reads from (clipped to the image; ``margin`` pixels for interpolation)."""
    h, w = image_shape[:2]
    corners = apply(invert(matrix), [(-0.5, -0.5), (size - 0.5, -0.5), (size - 0.5, size - 0.5), (-0.5, size - 0.5)])
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    x0 = min(max(0, math.floor(min(xs)) - margin), w - 1)
    y0 = min(max(0, math.floor(min(ys)) - margin), h - 1)
    x1 = max(min(w, math.ceil(max(xs)) + margin + 1), x0 + 1)
    y1 = max(min(h, math.ceil(max(ys)) + margin + 1), y0 + 1)
    return x0, y0, x1, y1


def box_centre(box: Box) -> Point:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


@dataclass(frozen=True)
class Alignment:
    matrix: np.ndarray
    """Original pixels → crop pixels (3×3)."""
    rotation_deg: float
    """The angle the image was rotated by (0 when not rotated)."""
    rect: Box
    """The cropped rectangle in the rotated frame (the original frame when not rotated)."""
    mode: str
    """What was applied: ``none``, ``rotate``, ``spatial`` or ``whole``."""


def align(mode: str, face: Face | None, image_shape: tuple[int, ...], size: int,
          factors: Sequence[float] = SPATIAL_FACTORS) -> Alignment:
    """The crop of ``face`` for ``mode`` (``none|rotate|spatial``); the whole image when
    ``face`` is ``None``. A face without eye centres cannot be rotated: it gets ``none``."""
    h, w = image_shape[:2]
    if face is None:
        rect = (0.0, 0.0, float(w), float(h))
        return Alignment(rect_to_output(rect, size), 0.0, rect, "whole")
    if mode == "none" or not face.has_eyes or face.eye_left == face.eye_right:
        return Alignment(rect_to_output(face.box, size), 0.0, face.box, "none")
    angle = eye_angle(face.eye_left, face.eye_right)
    rot = rotation(midpoint(face.eye_left, face.eye_right), angle)
    if mode == "rotate":
        cx, cy = apply(rot, [box_centre(face.box)])[0]
        bw, bh = face.box[2] - face.box[0], face.box[3] - face.box[1]
        rect = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
    elif mode == "spatial":
        el, er = apply(rot, [face.eye_left, face.eye_right])
        rect = spatial_box(el, er, factors)
    else:
        raise ValueError(f"unknown alignment {mode!r}")
    return Alignment(rect_to_output(rect, size) @ rot, angle, rect, mode)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample ``image`` through ``matrix`` into a ``size``×``size`` crop.

    Downscaling is done as a bilinear warp onto an integer multiple of ``size`` followed by
    exact block averaging (``INTER_AREA`` with an integer factor), so small crops are not
    aliased and pixel positions stay exactly those ``matrix`` predicts. Outside the image is black.
    """
    import cv2

    sx = math.hypot(matrix[0, 0], matrix[0, 1])
    sy = math.hypot(matrix[1, 0], matrix[1, 1])
    kx, ky = max(1, int(1.0 / sx + 1e-9)), max(1, int(1.0 / sy + 1e-9))
    if kx == 1 and ky == 1:
        return cv2.warpAffine(image, matrix[:2], (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    canvas = np.array([[kx, 0.0, (kx - 1) / 2.0], [0.0, ky, (ky - 1) / 2.0], [0.0, 0.0, 1.0]]) @ matrix
    big = cv2.warpAffine(image, canvas[:2], (size * kx, size * ky), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
