"""How images are shown to a detector (upsampled, padded, downscaled) and how faces come back
to original pixels, with a stand-in detector that records what it was given."""

from __future__ import annotations

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.faces import geometry
from ferdata.faces.base import Detector, Face, Padding
from ferdata.faces.search import NO_PADDING, prepare, search, to_original


class Recorder(Detector):
    """Finds one face (with eyes) in the middle of any image at least ``needs`` pixels high,
    and remembers the shapes it was shown."""

    name = "recorder"
    description = "test stand-in"

    def __init__(self, needs: int = 0) -> None:
        self.needs = needs
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image, row=None):
        self.shapes.append(image.shape)
        h, w = image.shape[:2]
        if h < self.needs:
            return []
        return [Face((w * 0.3, h * 0.3, w * 0.7, h * 0.7), 0.9, (w * 0.4, h * 0.45), (w * 0.6, h * 0.45))]


def test_prepare_upsamples_pads_and_maps_points_exactly():
    image = np.arange(48 * 40, dtype=np.uint8).reshape(40, 48)
    p = prepare(image, Padding(0.25, "replicate", 160))
    h, w = p.image.shape
    assert min(h, w) >= 159 and p.padded
    # pixel (x, y) of the original lands where the matrix says: compare values through the map
    sx = p.matrix[0, 0]
    assert sx == pytest.approx(p.matrix[1, 1], rel=0.03) and sx > 2
    b = round(p.matrix[0, 2] - (sx - 1) / 2)
    assert b == round(0.25 * max(round(48 * sx), round(40 * sx)))
    # the border replicates the edge; the inside is the upsampled image
    assert (p.image[:b, b + 5] == p.image[b, b + 5]).all()
    pts = [(0.0, 0.0), (47.0, 39.0), (12.5, 30.25)]
    back = geometry.apply(geometry.invert(p.matrix), geometry.apply(p.matrix, pts))
    assert np.allclose(back, pts)


def test_prepare_constant_border_and_downscale_of_large_frames():
    image = np.full((100, 80, 3), 7, np.uint8)
    p = prepare(image, Padding(0.5, "constant", 0))
    assert p.image.shape == (100 + 2 * 50, 80 + 2 * 50, 3)
    assert (p.image[0, 0] == 128).all() and (p.image[60, 60] == 7).all()
    big = np.zeros((2000, 3000), np.uint8)
    q = prepare(big, NO_PADDING, max_side=1280)
    assert max(q.image.shape) == 1280 and not q.padded
    assert geometry.apply(q.matrix, [(2999.5 - 0.5, 0.0)])[0][0] == pytest.approx(1279.0, abs=0.5)


def test_to_original_clips_boxes_and_drops_faces_in_the_border():
    image = np.zeros((50, 40), np.uint8)
    p = prepare(image, Padding(0.5, "replicate", 0))  # 25-px border: the original spans 25..65 × 25..75
    inside = Face((10.0, 15.0, 70.0, 75.0), 0.8, (30.0, 40.0), (50.0, 40.0), ((40.0, 50.0),))
    in_border = Face((0.0, 0.0, 15.0, 15.0), 0.9)
    (face,) = to_original([inside, in_border], p)
    assert face.box == (0.0, 0.0, 40.0, 50.0)  # clipped to the original image
    assert face.eye_left == pytest.approx((5.0, 15.0)) and face.landmarks[0] == pytest.approx((15.0, 25.0))
    (whole,) = to_original([inside], p, whole_image=True)
    assert whole.box == (0.0, 0.0, 40.0, 50.0)


@pytest.mark.parametrize("pad,first_try_finds,calls,padded", [
    ("never", False, 1, False),
    ("always", False, 1, True),
    ("retry", True, 1, False),   # found as it is: no second search
    ("retry", False, 2, True),   # nothing as it is: the padded copy
])
def test_search_pads_as_asked(pad, first_try_finds, calls, padded):
    det = Recorder(needs=40 if first_try_finds else 100)
    image = np.zeros((48, 48), np.uint8)
    (faces,), (was_padded,) = search(det, [image], pad=pad, padding=Padding(0.25, "replicate", 160), max_side=1280)
    assert len(det.shapes) == calls and was_padded is padded
    if pad == "never":
        assert faces == []
        return
    (face,) = faces
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
    assert face.eye_left[0] < face.eye_right[0]
    assert geometry.eye_angle(face.eye_left, face.eye_right) == pytest.approx(0.0, abs=1e-6)


def test_search_batches_retry_only_the_misses():
    det = Recorder(needs=100)
    small, large = np.zeros((48, 48), np.uint8), np.zeros((200, 200), np.uint8)
    found, padded = search(det, [small, large, small], pad="retry", padding=Padding(0.25, "replicate", 160),
                           max_side=1280)
    assert [bool(f) for f in found] == [True, True, True] and padded == [True, False, True]
    assert len(det.shapes) == 5  # three as they are, then the two misses padded


def test_padding_rejects_nonsense():
    with pytest.raises(FerdataError, match="pad_border"):
        Padding(-0.1)
    with pytest.raises(FerdataError, match="pad_mode 'mirror'"):
        Padding(0.2, "mirror")
    with pytest.raises(FerdataError, match="upsample_to"):
        Padding(0.2, "constant", -1)
