"""A third-party plugin package, installed (a dist-info on the path with a ``ferdata.models``
entry point), is listed by ``ferdata train --list`` and trains like a first-party one; an
entry point that fails to import is listed as broken without hiding the others."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from torch import nn
from ferdata.models import ModelPlugin, register_model

def build(num_classes, **hp):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))

register_model(ModelPlugin(name="thirdparty-linear", description="a linear model from elsewhere", paper=None,
                           input_size=8, channels=3, build=build))
'''


def _install(site: Path) -> None:
    (site / "fer_thirdparty").mkdir(parents=True)
    (site / "fer_thirdparty" / "__init__.py").write_text(PLUGIN)
    info = site / "fer_thirdparty-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fer-thirdparty\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ferdata.models]\nlinear = fer_thirdparty\nbroken = fer_thirdparty_missing_module\n")


def test_installed_third_party_plugin_lists_and_trains(tiny_manifest, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "plugins"), str(site)]),
           "COLUMNS": "200"}
    listing = subprocess.run([sys.executable, "-m", "ferdata", "train", "--list"], env=env, capture_output=True,
                             text=True, timeout=180)
    assert listing.returncode == 0, listing.stderr
    assert "thirdparty-linear" in listing.stdout and "small-cnn" in listing.stdout
    assert "broken entry point broken" in listing.stdout and "fer_thirdparty_missing_module" in listing.stdout
    m = tiny_manifest()
    run = subprocess.run([sys.executable, "-m", "ferdata", "train", "thirdparty-linear", "--manifest", str(m.dir),
                          "--split", "cv", "--epochs", "2", "--runs", str(tmp_path / "runs")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    (made,) = (tmp_path / "runs").iterdir()
    assert (made / "predictions.parquet").exists() and (made / "best.pt").exists()
