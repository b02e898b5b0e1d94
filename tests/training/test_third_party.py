"""A third-party plugin package, installed (a dist-info on the path with a ``ferdata.models``
entry point), is listed by ``ferdata train --list`` and trains like a first-party one; an
entry point that fails to import is listed as broken without hiding the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.third_party import install_distribution, plugin_env

PLUGIN = '''
from torch import nn
from ferdata.models import ModelPlugin, register_model

def build(num_classes, **hp):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))

register_model(ModelPlugin(name="thirdparty-linear", description="a linear model from elsewhere", paper=None,
                           input_size=8, channels=3, build=build))
'''


def test_installed_third_party_plugin_lists_and_trains(tiny_manifest, tmp_path: Path) -> None:
    site = install_distribution(tmp_path / "site", "fer-thirdparty", {"fer_thirdparty": PLUGIN}, {
        "ferdata.models": {"linear": "fer_thirdparty", "broken": "fer_thirdparty_missing_module"}})
    env = plugin_env(site)
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
