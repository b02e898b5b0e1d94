"""The header fast path must agree with Pillow on every format it handles."""

import io

import numpy as np
import pytest
from PIL import Image

from ferdata.imageio import probe_bytes, read_image, read_pixels, to_uint8


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


GREY = RGB.convert("L")
GREY_PALETTE = GREY.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
GREY_PALETTE.putpalette([v for i in range(256) for v in (i, i, i)])


@pytest.mark.parametrize("im,fmt,kw", [
    (RGB, "PNG", {}), (GREY, "PNG", {}), (RGB, "JPEG", {"quality": 60}), (RGB, "JPEG", {"subsampling": 0}),
    (RGB, "JPEG", {"progressive": True}), (GREY, "JPEG", {}), (RGB.convert("RGBA"), "PNG", {}),
    (RGB.convert("P"), "PNG", {}), (GREY_PALETTE, "PNG", {}), (GREY_PALETTE, "TIFF", {}), (RGB, "TIFF", {}),
    (RGB.convert("CMYK"), "JPEG", {}), (Image.fromarray(np.arange(221, dtype=np.uint16).reshape(13, 17) * 250), "PNG", {}),
])
def test_read_pixels_matches_pillow_and_keeps_grey_grey(tmp_path, im, fmt, kw):
    """OpenCV's fast path (8-bit PNG/JPEG) gives exactly Pillow's pixels; grey pictures,
    grey palettes included, come back as one channel and everything else as RGB."""
    p = tmp_path / f"x.{fmt.lower()}"
    im.save(p, fmt, **kw)
    with Image.open(p) as ref:
        expected = to_uint8(ref)
        grey = ref.mode in ("L", "I;16", "I;16B", "I;16L") or (ref.mode == "P" and im is GREY_PALETTE)
    got = read_pixels(p)
    assert got.dtype == np.uint8 and got.ndim == (2 if grey else 3)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(read_image(p), got if got.ndim == 3 else np.repeat(got[:, :, None], 3, axis=2))


def test_read_pixels_ignores_exif_orientation_as_pillow_does(tmp_path):
    """Ingest records Pillow's width and height, so the fast path must not rotate by EXIF."""
    p = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    RGB.save(p, "JPEG", exif=exif.tobytes())
    assert read_pixels(p).shape == (13, 17, 3)


def test_read_pixels_errors_on_a_truncated_file(tmp_path):
    p = tmp_path / "cut.png"
    data = encode(RGB, "PNG")
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError):
        read_pixels(p)


@pytest.mark.parametrize("data, says", [
    (b"this is not an image at all", "a text file (27 bytes) starting 'this is not an image at all'"),
    (b"<!DOCTYPE html><html><body>404</body></html>", "an HTML page"),
    (b"%PDF-1.7\n...", "a PDF document"),
    (b"PK\x03\x04rest", "a ZIP archive"),
    (b"", "empty file (0 bytes)"),
    (bytes(range(256)), "256 bytes of data no image decoder recognises (starting 00 01 02"),
])
def test_a_file_that_is_not_an_image_says_what_it_is(tmp_path, data, says):
    from ferdata.imageio import NotAnImageError, probe_bytes, read_pixels

    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    if data:
        with pytest.raises(NotAnImageError) as err:
            read_pixels(path)
        assert says in str(err.value) and "BytesIO" not in str(err.value)
    assert says in probe_bytes(data).error
