"""``reproduce()`` end to end on a tiny synthetic dataset with a recipe file: rows, repeats and
their spread, quick splits, reuse of finished runs, two stages, ensembles, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferdata.errors import FerdataError
from ferdata.recipes import ReproduceOptions, load_recipe_file, reproduce
from ferdata.splits import list_splits
from ferdata.manifest import Manifest

RECIPE = """
name = "{name}"
paper = "000"
title = "tiny"
ambiguities = ["synthetic data"]
seed = 0

[[dataset]]
key = "{key}"
adapter = "folder"
layout = "<label>/<subject>_<n>.png"
options = {{ subject_pattern = "^(?P<subject>s[0-9]+)_" }}

[model]
name = "{model}"
weights = "none"
{extra}

[model.hp]
epochs = 2
batch_size = 16
lr = 0.01
augment = "none"
patience = 0

[quick]
folds = 1
max_train = 20

[quick.hp]
epochs = 1

[[protocol]]
label = "leaky"
protocol = "ppi"
folds = 2
figure = 50.0
where = "Table 1"
leaks = "subjects"

[[protocol]]
label = "strict"
protocol = "spi"
folds = 2
leaks = "none"
"""


def _faces(root: Path) -> Path:
    """Two classes told apart by brightness, 6 subjects × 5 pictures each."""
    rng = np.random.default_rng(0)
    for s in range(6):
        for k in range(10):
            label = ("sad", "happy")[k % 2]
            base = 60 if label == "sad" else 190
            arr = np.clip(rng.normal(base, 25, (24, 24)), 0, 255).astype(np.uint8)
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / label / f"s{s}_{k}.png")
    return root


@pytest.fixture
def setup(tmp_path: Path):
    data = _faces(tmp_path / "faces")

    def recipe(name: str = "tiny", model: str = "small-cnn", extra: str = "", key: str = "faces") -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(RECIPE.format(name=name, model=model, extra=extra, key=key))
        return path

    opts = dict(device="cpu", manifests=tmp_path / "m", runs=tmp_path / "r", workers=1)
    return data, recipe, opts


def test_rows_repeats_and_reuse(setup) -> None:
    data, recipe, opts = setup
    path = recipe()
    result = reproduce(path, data, options=ReproduceOptions(repeats=2, **opts))
    leaky, strict = result.rows
    assert [r.label for r in result.rows] == ["leaky", "strict"]
    assert len(leaky.values) == 4 and len(leaky.seeds) == 2 and leaky.seed_std is not None
    assert leaky.figure == 50.0 and leaky.gap == pytest.approx(100 * leaky.mean - 50.0)
    assert strict.figure is None and strict.gap is None
    assert leaky.trained == 2 and leaky.reused == 0
    assert 0 < leaky.majority < 1 and result.cpu_s > 0
    assert leaky.protocol == "ppi-2" and strict.protocol == "spi-2"
    d = result.to_dict()
    json.dumps(d)
    assert d["rows"][0]["paper"] == 50.0 and d["ambiguities"] == ["synthetic data"]

    again = reproduce(path, data, options=ReproduceOptions(repeats=2, **opts))
    assert all(r.reused == 2 and r.trained == 0 for r in again.rows)
    assert again.rows[0].values == leaky.values
    names = list_splits(Manifest.open("faces", opts["manifests"]))
    assert {"ppi-2", "ppi-2-seed1", "spi-2", "spi-2-seed1"} <= set(names)


def test_quick_trims_folds_and_training_images(setup) -> None:
    data, recipe, opts = setup
    result = reproduce(recipe(), data, options=ReproduceOptions(quick=True, only=("strict",), **opts))
    assert [r.label for r in result.rows] == ["strict"] and len(result.rows[0].values) == 1
    assert result.mode == "quick"
    m = Manifest.open("faces", opts["manifests"])
    quick = [n for n in list_splits(m) if "quick" in n]
    assert quick == ["spi-2-quick-f1-n20"]
    config = json.loads((Path(result.rows[0].runs[0]) / "config.json").read_text())
    assert config["hparams"]["epochs"] == 1 and config["n_images"] < 60


def test_two_stages_ensembles_and_errors(setup, tmp_path: Path) -> None:
    data, recipe, opts = setup
    recipe("tiny-stage")  # found beside the recipes that name it
    second = recipe("tiny-second", extra='init = "tiny-stage"')
    result = reproduce(second, data, options=ReproduceOptions(only=("strict",), **opts))
    assert [r.label for r in result.rows] == ["stage 1", "strict"]
    run_cfg = json.loads((Path(result.rows[1].runs[0]) / "fold-0" / "config.json").read_text())
    assert run_cfg["init_from"]["run"] == str(Path(result.rows[0].runs[0]) / "fold-0")  # stage 1's first fold

    recipe("tiny-member", model="shallow-cnn")
    ens = recipe("tiny-ens", model="ensemble", extra='members = ["tiny-stage", "tiny-member"]')
    out = reproduce(ens, data, options=ReproduceOptions(only=("leaky",), **opts))
    assert [r.label for r in out.rows] == ["leaky", "member small-cnn", "member shallow-cnn"]
    assert out.rows[1].reused == 1  # the stage recipe's run on this split is the member

    with pytest.raises(FerdataError, match="holds another dataset"):
        reproduce(recipe(key="faces"), tmp_path, options=ReproduceOptions(**opts))
    with pytest.raises(FerdataError, match="no protocol row nope"):
        reproduce(recipe(), data, options=ReproduceOptions(only=("nope",), **opts))
    with pytest.raises(FerdataError, match="give data faces=DIR"):
        reproduce(recipe("x", extra='init = "tiny-stage"', key="other"), data, options=ReproduceOptions(**opts))
    assert load_recipe_file(second).model.init == "tiny-stage"
