"""Offline ImageNet weights through torchvision's enums and cache, weights files, and the
real ImageNet MobileNetV2 backbone in shared/weights."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import default_weights, fine_tunes, get_model, list_models
from ferdata.training import train
from ferdata.training.weights import describe_start, imagenet_file, load_weights


def _shared_weights() -> Path:
    """``../shared/weights`` beside the project, or beside ``$FERDATA_TEST_DATA``."""
    from tests.conftest import ROOT, data_root

    data = data_root()
    for folder in (ROOT.parent / "shared" / "weights", data.parent / "weights" if data else None):
        if folder is not None and (folder / "mobilenet_v2_imagenet_features.pth").exists():
            return folder / "mobilenet_v2_imagenet_features.pth"
    return ROOT.parent / "shared" / "weights" / "mobilenet_v2_imagenet_features.pth"


SHARED_MOBILENET = _shared_weights()


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("FERDATA_OFFLINE", "1")  # no download attempt: this machine has no network anyway
    return home


def _resnet18_file_with_random_network() -> tuple[Path, dict]:
    import torchvision
    from torchvision.models import ResNet18_Weights

    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()  # 1000 ImageNet classes
    path = imagenet_file(ResNet18_Weights.IMAGENET1K_V1)
    assert path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def test_imagenet_weights_come_from_the_torch_home_cache(torch_home: Path, tiny_manifest, runs_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path, state = _resnet18_file_with_random_network()
    assert path.parent == torch_home / "hub" / "checkpoints"
    # The file is not torchvision's, so its hash does not match the prefix in its name: refused.
    with pytest.raises(FerdataError, match="does not match the sha256 prefix f37072fd") as info:
        load_weights(torch.nn.Linear(1, 1), "imagenet", __import__("torchvision").models.ResNet18_Weights.IMAGENET1K_V1)
    assert "\n" not in str(info.value)
    # Pretend its hash matches (as torchvision's real file would) and train from it.
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr("ferdata.training.weights.file_sha256", lambda p: "f37072fd" + real[8:])
    r = train("resnet18-last1", tiny_manifest(), "cv", weights="imagenet", device="cpu",
              hparams={"epochs": 1, "batch_size": 4, "augment": "none"})
    loaded = torch.load(r.run_dir / "best.pt", weights_only=True)["model"]
    # Frozen backbone (last1 trains only fc): exactly the cached file's tensors; the new head has 3 classes.
    for key in ("conv1.weight", "layer3.0.conv1.weight", "layer4.1.bn2.running_mean"):
        assert torch.equal(loaded[key], state[key]), key
    assert loaded["fc.weight"].shape == (3, 512)
    import json

    info_ = json.loads((r.run_dir / "config.json").read_text())["weights_loaded"]
    assert info_["shape_mismatch"] == 2 and info_["loaded"] == len(state) - 2


def test_missing_imagenet_file_is_one_line_naming_file_and_folder(torch_home: Path, tiny_manifest,
                                                                   runs_dir: Path) -> None:
    with pytest.raises(FerdataError) as info:
        train("resnet18-alf", tiny_manifest(), "cv", weights="imagenet", device="cpu", hparams={"epochs": 1})
    msg = str(info.value)
    assert "\n" not in msg
    assert "resnet18-f37072fd.pth" in msg and str(torch_home / "hub" / "checkpoints") in msg
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no half-made run folder


def test_models_without_imagenet_weights_say_so(tiny_manifest, runs_dir: Path) -> None:
    with pytest.raises(FerdataError, match="no ImageNet weights"):
        train("small-cnn", tiny_manifest(), "cv", weights="imagenet", hparams={"epochs": 1})


def test_weights_file_path_and_unsafe_pickles(tmp_path: Path) -> None:
    model = get_model("small-cnn").build(3)
    other = get_model("small-cnn").build(5)
    torch.save({"state_dict": other.state_dict()}, tmp_path / "w.pt")
    info = load_weights(model, tmp_path / "w.pt")
    assert info["shape_mismatch"] == 2  # the 5-class head is not loaded
    assert torch.equal(model.state_dict()["0.weight"], other.state_dict()["0.weight"])
    torch.save({"model": object()}, tmp_path / "evil.pt")  # not loadable with weights_only=True
    with pytest.raises(FerdataError, match="not a loadable weights file"):
        load_weights(model, tmp_path / "evil.pt")


@pytest.mark.skipif(not SHARED_MOBILENET.exists(), reason="shared/weights/mobilenet_v2_imagenet_features.pth not found")
def test_real_imagenet_mobilenet_v2_backbone_loads_by_path() -> None:
    plugin = get_model("mobilenet-v2")
    model = plugin.build(7)
    info = plugin.pretrained(model, str(SHARED_MOBILENET))
    assert info["loaded"] == 312 and info["shape_mismatch"] == 0
    state = torch.load(SHARED_MOBILENET, weights_only=True)
    assert torch.equal(model.state_dict()["features.0.0.weight"], state["features.0.0.weight"])


# ---- models whose recipe fine-tunes start from ImageNet unless told otherwise ---------------------


@pytest.mark.parametrize("name", list_models())
def test_fine_tuning_names_default_to_imagenet(name: str) -> None:
    plugin = get_model(name)
    promised = bool(re.search(r"-(alf|llf|last\d+)$", name))
    assert fine_tunes(plugin) is (plugin.fine_tunes if plugin.fine_tunes is not None else promised)
    assert default_weights(plugin) == ("imagenet" if plugin.kind == "torch" and fine_tunes(plugin) else "none")
    if promised:
        assert default_weights(plugin) == "imagenet"


def test_a_plugin_can_declare_that_it_fine_tunes() -> None:
    plugin = dataclasses.replace(get_model("small-cnn"), name="my-net", fine_tunes=True)
    assert default_weights(plugin) == "imagenet"
    assert default_weights(dataclasses.replace(get_model("resnet18-alf"), fine_tunes=False)) == "none"


def test_alf_without_weights_offline_is_one_line_exit_2(torch_home: Path, tiny_manifest, runs_dir: Path) -> None:
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    m = tiny_manifest()
    res = CliRunner().invoke(app, ["train", "resnet18-alf", "--manifest", str(m.dir), "--split", "cv",
                                   "--epochs", "1", "--device", "cpu"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    text = " ".join(res.output.split())
    assert len(lines) <= 2 and "Traceback" not in res.output
    assert "resnet18-f37072fd.pth" in text and "--weights none" in text
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_from_scratch_needs_weights_none_and_says_so(tiny_manifest, runs_dir: Path) -> None:
    from typer.testing import CliRunner

    from ferdata.cli.app import app
    from ferdata.reports.run import load_run, started_from

    m = tiny_manifest(per_class=3)
    res = CliRunner().invoke(app, ["train", "resnet18-alf", "--manifest", str(m.dir), "--split", "cv", "--epochs", "1",
                                   "--batch-size", "4", "--device", "cpu", "--weights", "none", "--hp", "augment=none"])
    assert res.exit_code == 0, res.output
    assert "from scratch (random initialisation, --weights none)" in " ".join(res.output.split())
    (run,) = runs_dir.iterdir()
    assert json.loads((run / "config.json").read_text())["hparams"]["weights"] == "none"
    assert started_from(load_run(run)).startswith("from scratch")


@pytest.mark.skipif(not SHARED_MOBILENET.exists(), reason="shared/weights/mobilenet_v2_imagenet_features.pth not found")
def test_a_real_pretrained_start_is_stated_in_the_summary(tiny_manifest, runs_dir: Path) -> None:
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    m = tiny_manifest(per_class=3)
    res = CliRunner().invoke(app, ["train", "mobilenet-v2", "--manifest", str(m.dir), "--split", "cv", "--epochs", "1",
                                   "--batch-size", "4", "--device", "cpu", "--weights", str(SHARED_MOBILENET),
                                   "--hp", "augment=none"])
    assert res.exit_code == 0, res.output
    text = re.sub(r"[\s│]", "", res.output)  # the summary wraps long values inside its cell
    assert "startedfrom" in text and "(--weights,312tensorsloaded)" in text
    (run,) = runs_dir.iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["weights_loaded"]["loaded"] == 312
    assert describe_start(config) == f"{SHARED_MOBILENET} (--weights, 312 tensors loaded)"
