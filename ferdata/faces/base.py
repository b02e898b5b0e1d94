"""What every face detector returns, and the interface the pipeline drives.

Coordinates are always in the pixels of the image the detector was given (the decoded
original), ``x`` to the right and ``y`` down. ``eye_left`` is the eye on the *image's*
left (the subject's right eye), ``eye_right`` the one on the image's right, so the eye
line always runs left to right and its angle is the head's in-plane roll.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Face:
    box: Box
    """``(x0, y0, x1, y1)``."""
    score: float | None = None
    """The detector's confidence (``None`` when it has none, e.g. given boxes)."""
    eye_left: Point | None = None
    eye_right: Point | None = None
    landmarks: tuple[Point, ...] = field(default_factory=tuple)
    """Every other point the detector has (MTCNN: 5, MediaPipe: 6 key points, AffectNet: 68)."""

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def has_eyes(self) -> bool:
        return self.eye_left is not None and self.eye_right is not None


def ordered_eyes(a: Point, b: Point) -> tuple[Point, Point]:
    """The two eye centres as (image-left, image-right)."""
    return (a, b) if a[0] <= b[0] else (b, a)


def as_point(xy: Any) -> Point:
    return float(xy[0]), float(xy[1])


@dataclass(frozen=True)
class Padding:
    """How a tight crop is shown to a detector (:mod:`ferdata.faces.search`): upsampled until
    the padded image's shorter side is ``min_side`` pixels, then a border of ``border`` × the
    longer side on every edge, ``replicate`` (edge pixels repeated) or ``constant`` (mid-grey)."""

    border: float = 0.0
    mode: str = "replicate"
    min_side: int = 0

    def __post_init__(self) -> None:
        from ferdata.errors import FerdataError, arg

        if not 0.0 <= self.border <= 2.0:
            raise FerdataError(f"{arg('pad_border')} {self.border} is outside 0..2 (a fraction of the image's side)")
        if self.mode not in ("replicate", "constant"):
            raise FerdataError(f"{arg('pad_mode')} {self.mode!r} is not one of: replicate, constant")
        if not 0 <= self.min_side <= 4096:
            raise FerdataError(f"{arg('upsample_to')} {self.min_side} is outside 0..4096 pixels")

    @property
    def does_something(self) -> bool:
        return self.border > 0 or self.min_side > 0


class Detector:
    """Base class: subclasses set ``name`` and implement :meth:`detect`.

    ``batch_size`` > 1 tells the pipeline that :meth:`detect_batch` is faster than one
    call per image; ``row_columns`` names the ``images.parquet`` columns the detector
    reads (only ``given`` needs any). ``tight_padding`` is how this detector is shown a
    tight face crop, chosen by measurement on the pre-cropped samples
    (``benchmarks/face_rates.py``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    batch_size: ClassVar[int] = 1
    row_columns: ClassVar[tuple[str, ...]] = ()
    reads_pixels: ClassVar[bool] = True
    """False when faces come from the row in original coordinates: never downscale for it."""
    tight_padding: ClassVar[Padding] = Padding(0.25, "replicate", 160)
    whole_image: ClassVar[bool] = False
    """True when the face is the whole image by declaration (``none``): its box is the image's."""

    def detect(self, image: np.ndarray, row: Mapping[str, Any] | None = None) -> list[Face]:
        """Every face in a uint8 image, grey (H×W) or RGB (H×W×3)."""
        raise TypeError(f"{type(self).__name__} must implement detect()")

    def for_tight_crops(self) -> Detector:
        """The detector to run on prepared (padded) tight crops: itself, unless a sibling model
        suits faces that fill the picture better (MediaPipe's short-range model)."""
        return self

    def detect_batch(
        self, images: Sequence[np.ndarray], rows: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[list[Face]]:
        rows = rows if rows is not None else [None] * len(images)
        return [self.detect(im, row) for im, row in zip(images, rows)]
