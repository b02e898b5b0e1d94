"""Headless Chromium for report tests: render a report to a screenshot and judge it.

Debian's ``chromium`` package (``scripts/test.sh`` installs it when it can); tests that
need it skip cleanly where it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium)")


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2000) -> np.ndarray:
    """Render ``html`` (a file) to ``png`` and return the screenshot as RGB uint8."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="ferdata-chromium-") as profile:
        cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
               html.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-800:]}"
    with Image.open(png) as im:
        return np.asarray(im.convert("RGB"))


def assert_not_blank(shot: np.ndarray) -> None:
    """A rendered report has text and figures: many non-background pixels and many colours."""
    grey = shot.astype(np.float64).mean(axis=2)
    background = np.median(grey)
    ink = np.abs(grey - background) > 30
    assert ink.mean() > 0.01, f"screenshot is almost blank ({ink.mean():.4f} of pixels differ from the background)"
    assert grey.std() > 5.0
    colours = len(np.unique(shot.reshape(-1, 3)[:: 7], axis=0))
    assert colours > 50, f"screenshot has only {colours} colours"
