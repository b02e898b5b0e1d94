"""A ``--quick`` run of every recipe whose data is in the shared test data: the table is
produced, every row has figures, and rows with enough test images beat the majority class.

The runs share one manifests and runs folder, so paper 001's FER-2013 stage and the
ensemble's members are trained once and reused, as ``ferdata reproduce`` does.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ferdata.recipes import ReproduceOptions, create_recipe, list_recipes, reproduce

#: recipe → (main dataset folder, {other key: folder}); the folders are under the test data.
DATA = {
    "fer2013": "fer2013_folders",
    "ckplus-last": "ckplus48",
    "ck48": "ckplus48",
    "jaffe": "jaffe",
    "sfew": "sfew_anu",
}
#: Rows whose quick figure must beat the majority class: the test part is large enough
#: (JAFFE, CK+) for a few epochs to show it learns; the 42 test faces of the FER-2013 sample
#: and the 35 SFEW frames are too few for that to be more than chance.
MUST_BEAT = {
    ("p001-mobilenet-jaffe", "paper"), ("p001-mobilenet-ckplus6-last", "paper"),
    ("p001-mobilenet-ckplus6-last3", "paper"), ("p001-mobilenet-ckplus6-last3", "subject-independent"),
    ("p001-mobilenet-ckplus6-last", "subject-independent"),
}
RUNNABLE = [n for n in list_recipes() if all(d.key in DATA for d in create_recipe(n).datasets)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Shared by the module's tests, removed after them (the quick runs take ~1 GB)."""
    path = tmp_path_factory.mktemp("reproduce")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _options(name: str, real_data: Path, work: Path) -> tuple[Path, ReproduceOptions]:
    recipe = create_recipe(name)
    data = {d.key: str(real_data / DATA[d.key]) for d in recipe.datasets[1:]}
    stage = create_recipe(recipe.model.init) if recipe.model.init else None
    if stage is not None:
        data[stage.main.key] = str(real_data / DATA[stage.main.key])
    for member in recipe.model.members:
        assert create_recipe(member).main.key == recipe.main.key
    weights = real_data.parent / "weights" / "mobilenet_v2_imagenet_features.pth"
    # ImageNet files are not downloadable here: the shared MobileNetV2 backbone where it fits,
    # random weights for the ResNets (the pipeline is what these tests check).
    uses_resnet = recipe.model.name.startswith("resnet")
    opts = ReproduceOptions(quick=True, device="cpu", data=data, manifests=work / "manifests", runs=work / "runs",
                            workers=1, weights="none" if uses_resnet or not weights.is_file() else str(weights))
    return real_data / DATA[recipe.main.key], opts


@pytest.mark.parametrize("name", RUNNABLE)
def test_quick_run_on_the_real_samples(name: str, real_data: Path, work: Path) -> None:
    source, opts = _options(name, real_data, work)
    result = reproduce(name, source, options=opts)
    recipe = create_recipe(name)
    labels = [r.label for r in result.rows if not r.label.startswith("member ")]  # an ensemble's members last
    assert labels[-len(recipe.protocols):] == [p.label for p in recipe.protocols]
    for row in result.rows:
        assert row.values and all(0.0 <= v <= 1.0 for v in row.values), row
        assert not math.isnan(row.mean) and not math.isnan(row.majority)
        assert row.runs and all(Path(r).is_dir() for r in row.runs)
        if (name, row.label) in MUST_BEAT:
            assert row.mean > row.majority, f"{name} {row.label}: {row.mean:.3f} <= majority {row.majority:.3f}"
    assert result.cpu_s > 0 and result.wall_s > 0


def test_cli_table_and_reuse(real_data: Path, work: Path) -> None:
    """The command prints the table with the paper's figure; run again, nothing is retrained."""
    from ferdata.cli.app import app

    args = ["reproduce", "p004-small-cnn-fer2013", str(real_data / "fer2013_folders"), "--quick", "--device", "cpu",
            "--manifests", str(work / "manifests"), "--runs", str(work / "runs"), "-j", "1"]
    first = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert first.exit_code == 0, first.output
    assert "p004-small-cnn-fer2013 (quick)" in first.output and "majority" in first.output
    again = CliRunner().invoke(app, args + ["--json"])
    assert again.exit_code == 0, again.output
    import json

    out = json.loads(again.output)
    assert out["rows"][0]["reused"] == 1 and out["rows"][0]["trained"] == 0
    assert out["rows"][0]["paper"] is None and out["mode"] == "quick"
