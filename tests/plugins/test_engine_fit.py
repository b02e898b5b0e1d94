"""The plugins' own hooks through the real engine (``ferdata.training.train``) on a tiny
fake manifest: cae-mlp's pretraining and pruning land in the run's history and
checkpoint; mobilenet-v1's center loss is off unless asked for, and then pulls the pooled
features (the tap sees ``feature_dim`` values, not the dropped-out ones)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from ferdata.manifest import Manifest
from ferdata.models import create_model
from ferdata.training import train
from ferdata.training.weights import torch_load

TINY = {"epochs": 2, "batch_size": 4, "augment": "none", "patience": 0}


def _training_fakes():
    """The fake-image and split writers of ``tests/training/conftest.py``, loaded by path."""
    path = Path(__file__).resolve().parent.parent / "training" / "conftest.py"
    spec = importlib.util.spec_from_file_location("ferdata_training_fakes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    fakes = _training_fakes()
    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest
    from ferdata.labels import class_set

    tmp = tmp_path_factory.mktemp("plugins-engine")
    src = fakes.make_images(tmp / "src", per_class=6, subjects=3)
    m = ingest("folder", src, name="tiny", manifests=tmp / "manifests", executor=InlineExecutor(),
               subject_pattern=r"^(?P<subject>S\d+)_").manifest
    fakes.write_split(m, "cv", fakes.kfold_rows(m, 3), class_set(",".join(fakes.CLASSES)))
    return m


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_cae_mlp_pretrains_prunes_and_checkpoints(manifest, tmp_path):
    hp = {**TINY, "regularizer": "prune", "pretrain_epochs": 2, "prune_after": 0, "prune_min_samples": 4,
          "hidden": 8}
    r = train("cae-mlp", manifest, "cv", hparams=hp, runs=tmp_path / "runs", device="cpu")
    rows = _history(r.run_dir)
    assert rows[0]["phase"] == "pretrain" and rows[0]["pretrain_epochs"] == 2
    assert rows[0]["reconstruction_loss_first"] > 0
    epochs = [row for row in rows if "epoch" in row]
    assert len(epochs) == 2 and all("hidden_units" in row and "pruned" in row for row in epochs)
    ckpt = torch_load(r.run_dir / "last.pt")
    assert ckpt["model"]["unit_mask"].sum() == epochs[-1]["hidden_units"]
    model = create_model("cae-mlp", 3, **hp)
    model.load_state_dict(ckpt["model"])  # the pruned network round-trips


def test_mobilenet_v1_center_loss_only_when_asked(manifest, tmp_path):
    hp = {**TINY, "epochs": 1, "width_mult": 0.25}
    plain = train("mobilenet-v1", manifest, "cv", hparams=hp, runs=tmp_path / "runs", device="cpu")
    assert torch_load(plain.run_dir / "last.pt")["extra_loss"] is None
    with_cl = train("mobilenet-v1", manifest, "cv", hparams={**hp, "center_loss": True},
                    runs=tmp_path / "runs", device="cpu")
    centers = torch_load(with_cl.run_dir / "last.pt")["extra_loss"]["centers"]
    assert centers.shape == (3, create_model("mobilenet-v1", 3, width_mult=0.25).feature_dim)
    assert centers.abs().sum() > 0
