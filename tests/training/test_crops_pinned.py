"""A run records the exact crops it trained on, so later preprocessing cannot change it."""

import json

from ferdata.engines import InlineExecutor
from ferdata.faces.preprocess import preprocess
from ferdata.manifest.crops import latest_crop_config
from ferdata.training import train


def test_run_pins_the_crop_config_it_used(tiny_manifest, runs_dir):
    m = tiny_manifest(per_class=3)
    first = preprocess(m, detector="haar", size=32, executor=InlineExecutor()).config_hash
    run = train("small-cnn", m, "cv", fold=0, hparams={"epochs": 1, "batch_size": 4})
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["crops"] == first == latest_crop_config(m)

    second = preprocess(m, detector="haar", size=40, executor=InlineExecutor()).config_hash
    assert second != first and latest_crop_config(m) == second
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["crops"] == first
