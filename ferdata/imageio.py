"""Reading images: cheap header probes for ingest, full decodes for everything after.

Ingest must run near the speed of ``sha256sum``, so :func:`probe_bytes` reads size and
mode from PNG and JPEG headers and checks the file's structure (PNG ends in IEND, JPEG
in EOI) without decoding pixels. Anything unusual (another format, a failed structural
check) takes the slow path through Pillow, so a valid but odd file is still read and a
broken one gets a precise error.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

#: File name endings ingest treats as images (content is sniffed, so a PNG named .jpg is fine).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".gif", ".webp",
     ".pgm", ".ppm", ".pbm", ".pnm", ".jp2", ".j2k"}
)

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {  # (bit depth, colour type) -> Pillow mode
    (1, 0): "1", (2, 0): "L", (4, 0): "L", (8, 0): "L", (16, 0): "I;16",
    (8, 2): "RGB", (16, 2): "RGB", (1, 3): "P", (2, 3): "P", (4, 3): "P", (8, 3): "P",
    (8, 4): "LA", (16, 4): "LA", (8, 6): "RGBA", (16, 6): "RGBA",
}
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class Probe:
    width: int | None
    height: int | None
    mode: str | None
    format: str | None
    readable: bool
    error: str | None


def max_pixels() -> int:
    """Pillow's decompression-bomb limit (its hard error is at twice this)."""
    return int(Image.MAX_IMAGE_PIXELS or 0)


def _png_header(data: bytes) -> tuple[int, int, str] | None:
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    mode = _PNG_MODES.get((depth, ctype))
    # Structural check: the last chunk must be IEND (a truncated file loses it).
    if mode is None or data[-12:-8] != b"\x00\x00\x00\x00" or data[-8:-4] != b"IEND":
        return None
    return w, h, mode


def _jpeg_header(data: bytes) -> tuple[int, int, str] | None:
    # Structural check: ends with EOI (trailing zero padding is tolerated).
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS:
            if i + 10 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            mode = _JPEG_MODES.get(data[i + 9])
            if mode is None or w == 0 or h == 0:
                return None
            return w, h, mode
        if marker == 0xDA:  # start of scan before any SOF: malformed
            return None
        i += 2 + length
    return None


def sniff_format(data: bytes) -> str | None:
    if data.startswith(_PNG_SIG):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    return None


class NotAnImageError(Image.UnidentifiedImageError):
    """A file no decoder recognises; the message says what the file is instead."""


#: Leading bytes of files people mistake for images, and what to call them.
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio or video file"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"SQLite format 3", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"\x89HDF", "an HDF5 file"),
)


def describe_content(data: bytes) -> str:
    """What a file that is not an image is, in a few words: ``'a text file (27 bytes)
    starting 'this is not an image''``, ``'an HTML page'``, ``'a PDF document'``."""
    n = len(data)
    if not n:
        return "an empty file (0 bytes)"
    head = data[:512]
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"{what} ({n:,} bytes)"
    if head[4:8] == b"ftyp":
        return f"an MP4/QuickTime video ({n:,} bytes)"
    text = head.decode("utf-8", errors="ignore")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if text and b"\x00" not in head and printable >= 0.95 * len(text):
        lowered = text.lstrip().lower()
        if lowered.startswith(("<!doctype html", "<html")):
            return f"an HTML page ({n:,} bytes; a download that saved a web page?)"
        if lowered.startswith(("<?xml", "<svg")):
            return f"an XML/SVG file ({n:,} bytes; vector images are not supported)"
        snippet = " ".join(text.split())[:40]
        return f"a text file ({n:,} bytes) starting {snippet!r}"
    return f"{n:,} bytes of data no image decoder recognises (starting {head[:8].hex(' ')})"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def probe_bytes(data: bytes, *, limit: int | None = None) -> Probe:
    """Size, mode and readability of an encoded image, decoding only when needed."""
    if not data:
        return Probe(None, None, None, None, False, "empty file (0 bytes)")
    limit = max_pixels() if limit is None else limit
    fmt = sniff_format(data)
    header = _png_header(data) if fmt == "PNG" else _jpeg_header(data) if fmt == "JPEG" else None
    if header is not None:
        w, h, mode = header
        if limit and w * h > limit:
            return Probe(w, h, mode, fmt, False, _bomb_message(w, h, limit))
        return Probe(w, h, mode, fmt, True, None)
    return _probe_with_pillow(data, limit)


def _bomb_message(w: int, h: int, limit: int) -> str:
    return (
        f"{w}x{h} = {w * h} pixels is over the decompression-bomb limit of {limit}; "
        "raise it with --max-pixels if the file is trusted"
    )


def _probe_with_pillow(data: bytes, limit: int) -> Probe:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                mode, fmt = im.mode, im.format
                if limit and w * h > limit:
                    return Probe(w, h, mode, fmt, False, _bomb_message(w, h, limit))
                im.load()  # full decode: the structural fast path failed or did not apply
        return Probe(w, h, mode, fmt, True, None)
    except Image.UnidentifiedImageError:
        return Probe(None, None, None, None, False, f"not an image: {describe_content(data)}")
    except Exception as exc:  # noqa: BLE001 - every decoder failure becomes a row's error
        partial = locals()
        return Probe(partial.get("w"), partial.get("h"), partial.get("mode"), partial.get("fmt"),
                     False, _describe(exc))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- decoding for the later stages -------------------------------------------------------


def to_uint8(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to an 8-bit array: grey stays 2-D, everything else becomes RGB.

    16-bit and 32-bit greys are scaled by their range type (not clipped), palettes are
    expanded (a palette of greys to grey), CMYK and alpha are converted to RGB.
    """
    mode = im.mode
    if mode in ("L", "1"):
        return np.asarray(im if mode == "L" else im.convert("L"))
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            return (arr.astype(np.uint32) >> 8).astype(np.uint8)
        arr = arr.astype(np.float64)
        lo, hi = (0.0, 65535.0) if mode == "I" and arr.max() > 255 else (0.0, 255.0)
        if mode == "F":
            lo, hi = float(arr.min()), float(arr.max()) or 1.0
        return np.clip((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode in ("LA", "La"):
        return np.asarray(im.convert("L"))
    if mode == "P":
        if _grey_palette(im):
            return np.asarray(im.convert("L"))
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))


def _grey_palette(im: Image.Image) -> bool:
    """A palette whose every entry is a grey (JAFFE's TIFFs): the picture is grey."""
    pal = im.getpalette("RGB")
    if pal is None or "transparency" in im.info:
        return False
    rgb = np.asarray(pal, np.uint8).reshape(-1, 3)
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())


def _fast_mode(data: bytes) -> str | None:
    """``"L"`` or ``"RGB"`` for an 8-bit grey or colour PNG or JPEG within the pixel limit,
    the files OpenCV decodes to exactly Pillow's pixels, faster; None for everything else."""
    fmt = sniff_format(data)
    if fmt == "PNG":
        if len(data) < 33 or data[12:16] != b"IHDR" or data[24] != 8 or data[25] not in (0, 2):
            return None
        header = _png_header(data)
    elif fmt == "JPEG":
        header = _jpeg_header(data)
    else:
        return None
    if header is None or header[2] not in ("L", "RGB"):
        return None
    limit = max_pixels()
    return header[2] if not limit or header[0] * header[1] <= limit else None


def read_pixels(path: str | Path) -> np.ndarray:
    """Decode a file to uint8 in its own colours: H×W for grey pictures (grey palettes
    included), H×W×3 RGB for everything else, whatever the mode or extension.

    Grey stays grey so the face pipeline detects, warps, equalises and writes one channel
    instead of three copies. 8-bit PNG and JPEG go through OpenCV (same pixels as Pillow,
    about 1.5× faster); every other file, and anything OpenCV refuses, through Pillow.
    """
    data = Path(path).read_bytes()
    mode = _fast_mode(data)
    if mode is not None:
        import cv2

        flags = (cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_COLOR_RGB) | cv2.IMREAD_IGNORE_ORIENTATION
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if arr is not None:
            return arr
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:  # Pillow's message names a BytesIO object, not the file
        raise NotAnImageError(f"not an image: {describe_content(data)}") from None
    with im:
        im.load()
        return to_uint8(im)


def read_image(path: str | Path, *, gray: bool = False) -> np.ndarray:
    """Decode a file to uint8 H×W grey (``gray``) or H×W×3 RGB, whatever its mode or extension."""
    arr = read_pixels(path)
    if gray and arr.ndim == 3:
        return np.asarray(Image.fromarray(arr).convert("L"))
    if not gray and arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    return arr
