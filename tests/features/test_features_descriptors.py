"""Every registered descriptor: shape, dtype, no NaN, determinism, batch = one by one."""

from __future__ import annotations

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.features import create_descriptor, list_descriptors
from ferdata.features.edges import detect_edges, list_edge_detectors
from tests.features.fakes import face_like

SIZES = [(64, 64), (48, 56), (31, 37)]


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(3)
    return {size: np.stack([face_like(rng, *size) for _ in range(3)]) for size in SIZES}


def test_registry_lists_lpq_and_phog():
    assert {"lpq", "phog"} <= set(list_descriptors())
    with pytest.raises(FerdataError, match="unknown descriptor"):
        create_descriptor("sift")


@pytest.mark.parametrize("matlab_compatible", [False, True], ids=["faithful", "matlab"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list_descriptors())
def test_shape_dtype_finite_deterministic(batches, name, size, matlab_compatible):
    descriptor = create_descriptor(name, matlab_compatible=matlab_compatible)
    batch = batches[size]
    out = descriptor.compute(batch)
    assert out.dtype == np.float64
    assert out.shape == (len(batch), descriptor.length(*size))
    assert np.isfinite(out).all()
    assert (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(descriptor.compute(batch), out)  # deterministic
    one_by_one = np.concatenate([descriptor.compute(img[None]) for img in batch])
    np.testing.assert_allclose(one_by_one, out, rtol=0, atol=1e-15)  # batching changes nothing
    rebuilt = create_descriptor(name, **descriptor.params())
    assert rebuilt.params() == descriptor.params()


@pytest.mark.parametrize("name", list_descriptors())
def test_faithful_length_does_not_depend_on_size(name):
    d = create_descriptor(name)
    assert len({d.length(*s) for s in SIZES}) == 1


@pytest.mark.parametrize("name", list_descriptors())
def test_too_small_face_is_refused(name):
    d = create_descriptor(name)
    tiny = np.zeros((1, d.min_size() - 1, d.min_size() - 1), dtype=np.uint8)
    with pytest.raises(ValueError):
        d.compute(tiny)


def test_phog_matlab_length_grows_for_sizes_that_do_not_divide():
    d = create_descriptor("phog", matlab_compatible=True)
    assert d.length(31, 37) == 888 and d.length(64, 64) == 680


def test_phog_roi_restricts_the_histogram(batches):
    batch = batches[(64, 64)]
    whole = create_descriptor("phog").compute(batch)
    roi = create_descriptor("phog", roi=(16, 48, 8, 56)).compute(batch)
    assert roi.shape == whole.shape and not np.allclose(roi, whole)
    same = create_descriptor("phog", roi=(0, 64, 0, 64)).compute(batch)
    np.testing.assert_array_equal(same, whole)


@pytest.mark.parametrize(("options", "message"), [
    ({"angle": 90}, "phog_angle"), ({"bins": 0}, "phog_bins"), ({"levels": 9}, "phog_levels"),
    ({"roi": (5, 2, 0, 4)}, "phog_roi"), ({"edge_detector": "sobel"}, "unknown edge detector"),
])
def test_phog_bad_options(options, message):
    with pytest.raises(FerdataError, match=message):
        create_descriptor("phog", **options)


def test_lpq_bad_window():
    with pytest.raises(FerdataError, match="lpq_window"):
        create_descriptor("lpq", window=4)


@pytest.mark.parametrize("detector", list_edge_detectors())
def test_edge_detectors(batches, detector):
    batch = batches[(64, 64)]
    edges = detect_edges(batch, detector)
    assert edges.shape == batch.shape and edges.dtype == bool
    assert 0 < edges.mean() < 0.5
    assert not detect_edges(np.full((1, 32, 32), 90, np.uint8), detector).any()


@pytest.mark.parametrize(("direction", "faithful_bin", "matlab_bin"), [(-1, 2, 3), (1, 6, 6)])
def test_phog_pure_vertical_gradients(direction, faithful_bin, matlab_bin):
    """gx == 0: the original's 1e-5 substitution moves an upward gradient (gy < 0, 90°)
    from bin 2 to bin 3 of 8 over 360°; downward (270°) stays in bin 6."""
    from ferdata.features.phog import bin_maps

    rows = np.arange(16, dtype=np.int64)[:, None] * 8 * direction + (60 if direction > 0 else 200)
    img = np.repeat(rows, 16, axis=1).astype(np.uint8)[None]
    edges = np.ones_like(img, dtype=bool)
    assert set(np.unique(bin_maps(img, edges, 8, 360)[0])) == {faithful_bin}
    assert set(np.unique(bin_maps(img, edges, 8, 360, matlab_compatible=True)[0])) == {matlab_bin}
    # Over 180° both directions are one orientation in the faithful mode (the last bin).
    assert set(np.unique(bin_maps(img, edges, 8, 180)[0])) == {8}


def test_lpq_responses_give_the_codes():
    from ferdata.features.lpq import lpq_codes, lpq_responses

    img = face_like(np.random.default_rng(5), 40, 33)[None]
    for decorr in (False, True):
        planes = lpq_responses(img, 5, decorr)
        assert planes.shape == (8, 1, 36, 29)
        codes = sum((planes[i] > 0).astype(np.int64) << i for i in range(8))
        np.testing.assert_array_equal(codes, lpq_codes(img, 5, decorr))
