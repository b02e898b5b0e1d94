"""Geometry on synthetic points: rotation, crop boxes, the affine into the crop and back,
and the warp that must put pixels exactly where the recorded transform says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ferdata.faces import geometry
from ferdata.faces.base import Face


def flat(points):
    return [v for p in points for v in p]


def eyes_at(angle, mid=(120.0, 90.0), d=50.0):
    dx, dy = d / 2 * math.cos(math.radians(angle)), d / 2 * math.sin(math.radians(angle))
    return (mid[0] - dx, mid[1] - dy), (mid[0] + dx, mid[1] + dy)


@pytest.mark.parametrize("angle", [-40.0, -7.5, 0.0, 1.0, 22.0, 60.0])
def test_eye_angle_and_rotation_level_the_eye_line(angle):
    el, er = eyes_at(angle)
    assert geometry.eye_angle(el, er) == pytest.approx(angle)
    rot = geometry.rotation(geometry.midpoint(el, er), angle)
    (lx, ly), (rx, ry) = geometry.apply(rot, [el, er])
    assert ly == pytest.approx(ry, abs=1e-9)
    assert rx - lx == pytest.approx(50.0)
    assert geometry.apply(rot, [geometry.midpoint(el, er)])[0] == pytest.approx(geometry.midpoint(el, er))


def test_eye_angle_sign_is_image_convention():
    # y grows downwards: the right eye lower than the left is a positive (clockwise-looking) roll
    assert geometry.eye_angle((0, 0), (10, 10)) == pytest.approx(45.0)
    assert geometry.eye_angle((0, 10), (10, 0)) == pytest.approx(-45.0)


def test_spatial_box_uses_paper_factors():
    box = geometry.spatial_box((100.0, 50.0), (140.0, 50.0))
    assert box == pytest.approx((120 - 68, 50 - 52, 120 + 68, 50 + 128))


@pytest.mark.parametrize("angle", [-30.0, 0.0, 12.5])
@pytest.mark.parametrize("size", [48, 224])
def test_spatial_alignment_puts_eyes_at_fixed_pixels(angle, size):
    el, er = eyes_at(angle, mid=(200.0 + angle, 150.0 - angle), d=30.0 + abs(angle))
    al = geometry.align("spatial", Face((0, 0, 400, 300), 1.0, el, er), (300, 400, 3), size)
    (lx, ly), (rx, ry) = geometry.apply(al.matrix, [el, er])
    # midpoint 1.7 d from the left edge of 3.4 d, 1.3 d below the top of 4.5 d
    assert (lx + rx) / 2 == pytest.approx(size / 2 - 0.5)
    assert (ly + ry) / 2 == pytest.approx(size * 1.3 / 4.5 - 0.5)
    assert ly == pytest.approx(ry)
    assert rx - lx == pytest.approx(size / 3.4)
    assert al.rotation_deg == pytest.approx(angle)


def test_rotate_alignment_keeps_box_size_and_levels_eyes():
    el, er = eyes_at(20.0)
    face = Face((70.0, 40.0, 170.0, 160.0), 0.9, el, er)
    al = geometry.align("rotate", face, (200, 300), 100)
    (lx, ly), (rx, ry) = geometry.apply(al.matrix, [el, er])
    assert ly == pytest.approx(ry)
    assert al.rect[2] - al.rect[0] == pytest.approx(100.0)
    assert al.rect[3] - al.rect[1] == pytest.approx(120.0)
    # the box centre lands in the crop centre
    assert geometry.apply(al.matrix, [(120.0, 100.0)])[0] == pytest.approx((49.5, 49.5))


def test_alignment_without_eyes_or_face():
    face = Face((10.0, 20.0, 60.0, 80.0), 0.5)
    for mode in ("none", "rotate", "spatial"):
        al = geometry.align(mode, face, (100, 100), 50)
        assert al.mode == "none" and al.rotation_deg == 0.0
        assert flat(geometry.apply(al.matrix, [(10.0, 20.0), (60.0, 80.0)])) == pytest.approx([-0.5, -0.5, 49.5, 49.5])
    whole = geometry.align("spatial", None, (100, 200, 3), 64)
    assert whole.mode == "whole"
    assert flat(geometry.apply(whole.matrix, [(0, 0), (200, 100)])) == pytest.approx([-0.5, -0.5, 63.5, 63.5])


def test_mapping_back_to_original_coordinates():
    el, er = eyes_at(-17.0)
    al = geometry.align("spatial", Face((0, 0, 300, 300), 1.0, el, er), (300, 300), 96)
    pts = [(3.0, 4.0), (150.5, 77.25), el, er]
    back = geometry.apply(geometry.invert(al.matrix), geometry.apply(al.matrix, pts))
    assert flat(back) == pytest.approx(flat(pts))


@pytest.mark.parametrize("scale", [0.25, 0.5, 0.37])
def test_detections_on_a_downscaled_copy_map_back(scale):
    original = [(10.0, 20.0), (300.0, 41.5), (0.0, 0.0)]
    # where OpenCV's resize puts those points (pixel centres): (p + 0.5) * s - 0.5
    small = [((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5) for x, y in original]
    face = Face((small[0][0], small[0][1], small[1][0], small[1][1]), 0.9, small[0], small[1], tuple(small))
    back = geometry.map_face(face, geometry.scaling(1 / scale))
    assert back.eye_left == pytest.approx(original[0])
    assert back.eye_right == pytest.approx(original[1])
    assert flat(back.landmarks) == pytest.approx(flat(original))
    assert back.box == pytest.approx((10.0, 20.0, 300.0, 41.5))


def bright_centroids(img: np.ndarray, threshold: int) -> list[tuple[float, float]]:
    import cv2

    mask = (img > threshold).astype(np.uint8)
    n, labels = cv2.connectedComponents(mask)
    out = []
    for k in range(1, n):
        ys, xs = np.nonzero(labels == k)
        w = img[ys, xs].astype(np.float64) - threshold
        out.append((float((xs * w).sum() / w.sum()), float((ys * w).sum() / w.sum())))
    return sorted(out)


@pytest.mark.parametrize("mode,size", [("spatial", 64), ("spatial", 256), ("rotate", 48), ("none", 100)])
@pytest.mark.parametrize("angle", [-23.0, 0.0, 14.0])
def test_warp_puts_pixels_where_the_transform_says(mode, size, angle):
    h, w = 240, 320
    el, er = eyes_at(angle, mid=(160.0, 100.0), d=60.0)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 30, np.uint8)
    for cx, cy in (el, er):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= 25] = 250
    face = Face((100.0, 40.0, 220.0, 200.0), 1.0, el, er)
    al = geometry.align(mode, face, img.shape, size)
    crop = geometry.warp(img, al.matrix, size)
    assert crop.shape == (size, size)
    found = bright_centroids(crop, 100)
    expected = sorted(geometry.apply(al.matrix, [el, er]))
    assert len(found) == 2
    for f, e in zip(found, expected):
        assert f == pytest.approx(e, abs=0.35)


def test_source_region_covers_what_the_crop_reads():
    el, er = eyes_at(10.0, mid=(100.0, 80.0), d=40.0)
    al = geometry.align("spatial", Face((0, 0, 1, 1), 1.0, el, er), (400, 500), 64)
    x0, y0, x1, y1 = geometry.source_region(al.matrix, 64, (400, 500))
    inv = geometry.invert(al.matrix)
    for u, v in [(-0.5, -0.5), (63.5, -0.5), (63.5, 63.5), (-0.5, 63.5)]:
        (x, y), = geometry.apply(inv, [(u, v)])
        assert x0 <= max(x, 0) and min(x, 500) <= x1 and y0 <= max(y, 0) and min(y, 400) <= y1
    assert 0 <= x0 < x1 <= 500 and 0 <= y0 < y1 <= 400
