"""Every registered detector on a real face (a JAFFE image), on a blank image, and batched
against one call per image."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.faces import create_detector, detector_options, geometry, get_detector_class, list_detectors
from ferdata.faces.preprocess import find_faces, make_config
from ferdata.imageio import read_image

from ferdata.faces.base import Face

from .conftest import landmarks_68

JAFFE_FACES = ("KA.AN1.39.tiff", "KM.HA1.4.tiff")
#: a hand-checked face in KA.AN1.39 for the ``given`` detector (what AffectNet's CSV would hold)
GIVEN_ROW = {"face_x": 54, "face_y": 53, "face_width": 134, "face_height": 188,
             "landmarks": landmarks_68((99.0, 127.0), (160.0, 130.0), (130.0, 170.0))}

_cache: dict[str, object] = {}


def detector(name: str):
    if name not in _cache:
        _cache[name] = create_detector(name)
    return _cache[name]


@pytest.fixture(scope="module")
def jaffe_faces(real_data: Path) -> list[np.ndarray]:
    paths = [real_data / "jaffe" / f for f in JAFFE_FACES]
    if not all(p.exists() for p in paths):
        pytest.skip("JAFFE images not found")
    return [read_image(p) for p in paths]


def test_registry_lists_the_five_detectors():
    assert list_detectors() == ["given", "haar", "mediapipe", "mtcnn", "none"]
    assert list_detectors("m*") == ["mediapipe", "mtcnn"]


PIXEL_DETECTORS = [n for n in list_detectors() if get_detector_class(n).reads_pixels]
#: JAFFE's face box in KA.AN1.39 / KM.HA1.4 and where the eyes are in that crop
TIGHT_BOX = (54, 53, 188, 241)
TIGHT_EYES = ((99.0 - 54, 127.0 - 53), (160.0 - 54, 130.0 - 53))


@pytest.mark.real_data
@pytest.mark.parametrize("side", [None, 48], ids=["tight", "tight-48px"])
@pytest.mark.parametrize("name", PIXEL_DETECTORS)
def test_detector_finds_a_padded_tight_crop(name, side, jaffe_faces):
    """A real face cut out at its box (and shrunk to FER-2013's 48 px): the search pads and
    upsamples it, finds the face, and maps box and eyes back inside the crop's own pixels."""
    import cv2

    x0, y0, x1, y1 = TIGHT_BOX
    crop = np.ascontiguousarray(jaffe_faces[0][y0:y1, x0:x1])
    scale = 1.0 if side is None else side / crop.shape[1]
    if side is not None:
        crop = cv2.resize(crop, (side, round(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cfg = make_config(name, align="rotate", pre_cropped=True)
    assert cfg.pad == "always" and cfg.padding.does_something
    faces = find_faces(detector_for(cfg), crop, cfg)
    assert faces, f"{name} found no face in a padded tight crop {crop.shape}"
    face = max(faces, key=lambda f: f.area)
    h, w = crop.shape[:2]
    fx0, fy0, fx1, fy1 = face.box
    assert 0 <= fx0 < fx1 <= w and 0 <= fy0 < fy1 <= h, face.box
    assert fx1 - fx0 > 0.5 * w
    if name == "haar" and not face.has_eyes:
        return  # the eye cascade is allowed to miss (the crop is then cut unrotated)
    assert face.has_eyes, f"{name} gave no eye centres on the padded crop"
    d = math.dist(*TIGHT_EYES) * scale
    for got, want in zip((face.eye_left, face.eye_right), TIGHT_EYES):
        assert math.dist(got, (want[0] * scale, want[1] * scale)) < 0.25 * d, (got, want)


def detector_for(cfg):
    key = (cfg.detector, json.dumps(cfg.detector_options, sort_keys=True))
    if key not in _cache:
        _cache[key] = create_detector(cfg.detector, **cfg.detector_options)
    return _cache[key]


@pytest.mark.real_data
@pytest.mark.parametrize("name", [n for n in list_detectors() if n != "none"])
def test_detector_finds_the_real_face(name, jaffe_faces):
    image = jaffe_faces[0]
    faces = detector(name).detect(image, GIVEN_ROW if name == "given" else None)
    assert faces, f"{name} found no face in a frontal JAFFE face"
    face = max(faces, key=lambda f: f.area)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = face.box
    assert -5 <= x0 < x1 <= w + 5 and -5 <= y0 < y1 <= h + 5
    assert 60 <= x1 - x0 <= 220  # the face is about half the frame
    assert face.score is None or 0.0 <= face.score <= 1.0 or name == "haar"
    assert face.has_eyes, f"{name} gave no eye centres"
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    assert lx < rx
    for x, y in (face.eye_left, face.eye_right):
        assert x0 <= x <= x1 and y0 <= y <= y1
    assert abs(geometry.eye_angle(face.eye_left, face.eye_right)) < 10
    # eyes of the same face agree across detectors to within a fraction of their distance
    assert math.dist(face.eye_left, (99.0, 127.0)) < 0.2 * (rx - lx)
    assert math.dist(face.eye_right, (160.0, 130.0)) < 0.2 * (rx - lx)


@pytest.mark.parametrize("name", [n for n in list_detectors() if n != "none"])
def test_detector_finds_nothing_in_a_blank_image(name):
    assert detector(name).detect(np.full((200, 240, 3), 128, np.uint8)) == []
    cfg = make_config(name, align="rotate", pre_cropped=True)
    assert find_faces(detector_for(cfg), np.full((48, 48), 128, np.uint8), cfg) == []


def test_none_is_the_whole_image_with_mesh_eyes_only_when_asked():
    blank = np.full((48, 40), 128, np.uint8)
    assert detector("none").detect(blank) == [Face((0.0, 0.0, 40.0, 48.0))]
    cfg = make_config("none", align="spatial")
    assert cfg.detector_options == {"eyes": True, "min_confidence": 0.5} and cfg.pad == "always"
    assert make_config("none").pad == "never"
    (face,) = find_faces(detector_for(cfg), blank, cfg)
    assert face.box == (0.0, 0.0, 40.0, 48.0) and not face.has_eyes  # nothing to align by: cropped unrotated


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["haar", "mediapipe", "mtcnn"])
def test_batch_equals_one_call_per_image(name, jaffe_faces):
    det = detector(name)
    images = [jaffe_faces[0], jaffe_faces[1], jaffe_faces[0][:200, :180].copy()]
    batched = det.detect_batch(images)
    single = [det.detect(im) for im in images]
    for b, s in zip(batched, single):
        assert len(b) == len(s)
        for fb, fs in zip(b, s):
            assert np.allclose(fb.box, fs.box, atol=1e-3)


def test_given_reads_the_row():
    faces = detector("given").detect(np.zeros((300, 300, 3), np.uint8), GIVEN_ROW)
    (face,) = faces
    assert face.box == (54.0, 53.0, 188.0, 241.0) and face.score is None
    assert face.eye_left == pytest.approx((99.0, 127.0)) and face.eye_right == pytest.approx((160.0, 130.0))
    assert len(face.landmarks) == 68
    assert detector("given").detect(np.zeros((9, 9, 3), np.uint8), {"face_x": None}) == []


@pytest.mark.real_data
def test_mediapipe_mesh_eyes_refine_the_key_points(jaffe_faces):
    coarse = max(detector("mediapipe").detect(jaffe_faces[1]), key=lambda f: f.area)
    fine = max(create_detector("mediapipe", mesh=True).detect(jaffe_faces[1]), key=lambda f: f.area)
    assert fine.box == coarse.box
    d = math.dist(coarse.eye_left, coarse.eye_right)
    assert fine.eye_left != coarse.eye_left
    assert math.dist(fine.eye_left, coarse.eye_left) < 0.25 * d
    assert math.dist(fine.eye_right, coarse.eye_right) < 0.25 * d


def test_mtcnn_weights_load_with_weights_only(monkeypatch):
    import torch

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    create_detector("mtcnn")
    assert calls == [True, True, True]


def test_detector_options_fill_defaults_and_reject_typos():
    assert detector_options("mtcnn")["min_face_size"] == 20
    assert detector_options("mediapipe", {"model": "short"})["model"] == "short"
    assert detector_options("given") == {}
    with pytest.raises(FerdataError, match="has no option min_size_face"):
        detector_options("mtcnn", {"min_size_face": 3})
    with pytest.raises(FerdataError, match="mediapipe model 'huge'"):
        create_detector("mediapipe", model="huge")
