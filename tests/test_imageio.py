"""The header fast path must agree with Pillow on every format it handles."""

import io

import numpy as np
import pytest
from PIL import Image

from ferdata.imageio import probe_bytes, read_image, to_uint8


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


rng = np.random.default_rng(0)
RGB = Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8))


@pytest.mark.parametrize("im,fmt,kw", [
    (RGB, "PNG", {}), (RGB.convert("L"), "PNG", {}), (RGB.convert("P"), "PNG", {}), (RGB.convert("RGBA"), "PNG", {}),
    (RGB, "JPEG", {}), (RGB, "JPEG", {"progressive": True}), (RGB.convert("L"), "JPEG", {}),
    (RGB.convert("CMYK"), "JPEG", {}), (RGB, "TIFF", {}), (RGB, "BMP", {}), (RGB, "GIF", {}), (RGB, "WEBP", {}),
    (Image.fromarray(np.arange(221, dtype=np.uint16).reshape(13, 17)), "PNG", {}),
])
def test_probe_matches_pillow(im, fmt, kw):
    data = encode(im, fmt, **kw)
    p = probe_bytes(data)
    with Image.open(io.BytesIO(data)) as ref:
        assert p.readable and p.error is None
        assert (p.width, p.height, p.mode) == (*ref.size, ref.mode)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_truncation_is_caught(fmt):
    data = encode(RGB, fmt)
    p = probe_bytes(data[: len(data) * 2 // 3])
    assert not p.readable and p.error


def test_to_uint8_modes():
    deep = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert to_uint8(deep).dtype == np.uint8 and to_uint8(deep).max() == 255
    assert to_uint8(RGB.convert("CMYK")).shape == (13, 17, 3)
    assert to_uint8(RGB.convert("P")).shape == (13, 17, 3)
    assert to_uint8(RGB.convert("LA")).shape == (13, 17)


def test_read_image_gray_and_color(tmp_path):
    p = tmp_path / "x.jpg"
    RGB.save(p, "PNG")  # wrong extension on purpose
    assert read_image(p).shape == (13, 17, 3)
    assert read_image(p, gray=True).shape == (13, 17)
