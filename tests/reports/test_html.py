"""The report machinery: one self-contained file, PNGs beside it, renders in Chromium."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ferdata.reports import plots
from ferdata.reports.html import HtmlReport, embedded_images, external_references
from tests.reports.chromium import assert_not_blank, screenshot


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_report_embeds_every_figure_and_writes_pngs(tmp_path):
    rep = HtmlReport("a <title> & more", tmp_path / "out")
    rep.heading("numbers")
    rep.table(["class", "n"], [["happy", 3], ["<sad>", 1.5]], caption="counts")
    rep.figure("red", _png((255, 0, 0)))
    rep.figure("red", _png((0, 0, 255)))  # same name: kept apart
    with rep.columns() as col:
        col.next()
        rep.figure("left", plots.histogram([1, 2, 2, 3], "h", "x"))
        col.next()
        rep.paragraph("right side")
    path = rep.write()
    text = path.read_text()
    assert "&lt;title&gt; &amp; more" in text and "&lt;sad&gt;" in text and 'class="row"' in text
    assert external_references(text) == []
    images = embedded_images(text)
    assert len(images) == 3
    assert sorted(p.name for p in path.parent.glob("*.png")) == ["left.png", "red-2.png", "red.png"]
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            im.load()
    assert (path.parent / "red.png").read_bytes() == images[0]
    assert np.asarray(Image.open(io.BytesIO(images[1])))[0, 0].tolist() == [0, 0, 255]


def test_embedded_images_rejects_corrupt_base64():
    import binascii

    import pytest

    with pytest.raises(binascii.Error):
        embedded_images('<img src="data:image/png;base64,ab!c">')


def test_report_renders_in_headless_chromium(tmp_path):
    rep = HtmlReport("render check", tmp_path)
    rep.heading("confusion")
    rep.figure("cm", plots.confusion(np.array([[5, 1], [2, 7]]), ["happy", "sad"], "cm", normalized=False))
    rep.key_values([("accuracy", 0.8)])
    shot = screenshot(rep.write(), tmp_path / "shot.png")
    assert shot.shape[:2] == (2000, 1280)
    assert_not_blank(shot)


def test_blank_page_is_detected(tmp_path):
    import pytest

    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    with pytest.raises(AssertionError):
        assert_not_blank(screenshot(page, tmp_path / "blank.png"))
