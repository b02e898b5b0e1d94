"""MediaPipe (``mp.solutions``) face detection, with face mesh for precise eye centres.

Whole frames go to the full-range BlazeFace model (``model``, faces up to about 5 m away);
padded tight crops (:mod:`ferdata.faces.search`) to the short-range one (``tight_model``),
which is trained on faces that fill much of the picture.

The BlazeFace detector gives boxes, scores and six key points (eyes, nose tip, mouth,
both ear tragions); its eye points are coarse. When alignment needs eyes (``mesh=True``,
which the pipeline sets for ``--align rotate|spatial``), the face mesh runs too and each
eye centre becomes the mean of that eye's contour points, as paper 004 does with its
landmarks. Both models ship inside the mediapipe wheel.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ferdata.errors import FerdataError
from ferdata.faces._registry import register_detector
from ferdata.faces.base import Detector, Face, Padding, Point, ordered_eyes
from ferdata.quiet import stderr_silenced

_MODELS = {"short": 0, "full": 1}
# protobuf deprecation noise raised from inside mediapipe on every result it parses
warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)


class FaceMeshEyes:
    """MediaPipe's face mesh as an eye finder: each face's eye centres as the mean of that
    eye's contour points (what paper 004 does with its landmarks)."""

    def __init__(self, max_faces: int = 5, min_confidence: float = 0.5) -> None:
        import mediapipe as mp

        fm = mp.solutions.face_mesh
        with stderr_silenced():
            self._mesh = fm.FaceMesh(static_image_mode=True, max_num_faces=max_faces,
                                     min_detection_confidence=min_confidence)
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # the first inference builds the delegates
        self._eye_idx = (sorted({i for edge in fm.FACEMESH_RIGHT_EYE for i in edge}),
                         sorted({i for edge in fm.FACEMESH_LEFT_EYE for i in edge}))

    def eyes(self, image: np.ndarray) -> list[tuple[Point, Point]]:
        """(image-left, image-right) eye centres of every mesh face in an RGB uint8 image."""
        h, w = image.shape[:2]
        out = []
        for m in self._mesh.process(image).multi_face_landmarks or []:
            pts = m.landmark
            a, b = ((float(np.mean([pts[i].x for i in idx])) * w, float(np.mean([pts[i].y for i in idx])) * h)
                    for idx in self._eye_idx)
            out.append(ordered_eyes(a, b))
        return out


def rgb(image: np.ndarray) -> np.ndarray:
    """MediaPipe takes contiguous RGB only."""
    return np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2))


@register_detector("mediapipe")
class MediaPipeDetector(Detector):
    name = "mediapipe"
    description = "MediaPipe face detection (boxes, 6 key points); face mesh for precise eye centres"
    tight_padding = Padding(0.5, "constant", 0)
    """Measured on the pre-cropped samples (``benchmarks/face_rates.py``): a mid-grey border of
    half the side; upsampling does nothing for BlazeFace, which resizes its input to 128 px."""

    def __init__(self, model: str = "full", min_confidence: float = 0.5, mesh: bool = False,
                 max_faces: int = 5, tight_model: str = "short") -> None:
        for what, value in (("model", model), ("tight_model", tight_model)):
            if value not in _MODELS:
                raise FerdataError(f"mediapipe {what} {value!r} is unknown; choose from: {', '.join(_MODELS)}")
        self.model = model
        self.tight_model = tight_model
        self._tight: MediaPipeDetector | None = None
        self.min_confidence = float(min_confidence)
        self.mesh = bool(mesh)
        self.max_faces = int(max_faces)
        with stderr_silenced():
            self._build()

    def _build(self) -> None:
        import mediapipe as mp

        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=_MODELS[self.model], min_detection_confidence=self.min_confidence)
        self._detector.process(np.zeros((64, 64, 3), np.uint8))  # the first inference builds the TFLite delegates
        self._mesh = FaceMeshEyes(self.max_faces, self.min_confidence) if self.mesh else None

    def for_tight_crops(self) -> MediaPipeDetector:
        """The short-range model on padded tight crops: measured on CK+48, FER-2013 and FER+
        it finds 99-100 % of them where the full-range model finds 50-90 %
        (``benchmarks/face_rates.py``). It shares this detector's face mesh."""
        if self.tight_model == self.model:
            return self
        if self._tight is None:
            self._tight = MediaPipeDetector(self.tight_model, self.min_confidence, False, self.max_faces,
                                            self.tight_model)
            self._tight.mesh, self._tight._mesh = self.mesh, self._mesh
        return self._tight

    def detect(self, image: np.ndarray, row: Mapping[str, Any] | None = None) -> list[Face]:
        image = rgb(image)
        h, w = image.shape[:2]
        result = self._detector.process(image)
        faces = []
        for det in result.detections or []:
            rb = det.location_data.relative_bounding_box
            box = (rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h)
            kps = tuple((k.x * w, k.y * h) for k in det.location_data.relative_keypoints)
            eye_l, eye_r = ordered_eyes(kps[0], kps[1]) if len(kps) >= 2 else (None, None)
            faces.append(Face(box, float(det.score[0]) if det.score else None, eye_l, eye_r, kps))
        if self._mesh is not None and faces:
            faces = self._refine_eyes(image, faces)
        return faces

    def _refine_eyes(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Replace each face's key-point eyes by face-mesh eye centres (the mesh face whose
        eye midpoint falls inside the box and lies nearest its centre)."""
        centres = self._mesh.eyes(image)
        used: set[int] = set()
        out = []
        for face in faces:
            x0, y0, x1, y1 = face.box
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            best, best_d = None, None
            for j, (el, er) in enumerate(centres):
                mx, my = (el[0] + er[0]) / 2, (el[1] + er[1]) / 2
                if j in used or not (x0 <= mx <= x1 and y0 <= my <= y1):
                    continue
                d = (mx - cx) ** 2 + (my - cy) ** 2
                if best_d is None or d < best_d:
                    best, best_d = j, d
            if best is None:
                out.append(face)
                continue
            used.add(best)
            out.append(Face(face.box, face.score, centres[best][0], centres[best][1], face.landmarks))
        return out
