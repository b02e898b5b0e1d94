"""The engine's loop: repeatable seeds, resume, early stopping, class weights, fold-all,
hooks (pretrain, epoch_end, extra_loss, param_groups), feature inputs, init-from, the
predictions contract, and DistributedDataParallel under torchrun (gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn

from ferdata.manifest import read_metadata, read_table, write_table
from ferdata.models import ModelPlugin
from ferdata.training import train
from ferdata.training.data import balanced_class_weights, load_features
from ferdata.training.losses import CenterLoss
from ferdata.training.runs import probabilities, read_predictions

FAST = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "augment": "flip,crop,rotate,scale", "patience": 0}


def test_same_seed_same_run_on_cpu(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    a = train("small-cnn", m, "cv", hparams=FAST, seed=3, device="cpu")
    b = train("small-cnn", m, "cv", hparams=FAST, seed=3, device="cpu")
    c = train("small-cnn", m, "cv", hparams=FAST, seed=4, device="cpu")
    pa_, classes = read_predictions(a.run_dir)
    pb, _ = read_predictions(b.run_dir)
    pc, _ = read_predictions(c.run_dir)
    assert np.array_equal(probabilities(pa_, classes), probabilities(pb, classes))
    assert not np.array_equal(probabilities(pa_, classes), probabilities(pc, classes))


def test_predictions_contract_and_run_files(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    r = train("small-cnn", m, "cv", hparams=FAST, device="cpu")
    assert {p.name for p in r.run_dir.iterdir()} >= {"config.json", "history.jsonl", "best.pt", "last.pt",
                                                      "predictions.parquet", "metrics.json", "confusion.png"}
    t = read_table(r.run_dir / "predictions.parquet")
    assert t.schema.field("image_id").type == pa.string()
    assert t.schema.field("fold").type == pa.int32()
    assert t.schema.field("role").type == pa.string()
    classes = read_metadata(r.run_dir / "predictions.parquet")["classes"]
    assert classes == ["happy", "sad", "surprise"]
    assert t.column_names == ["image_id", "fold", "role", "label", "pred"] + [f"prob_{c}" for c in classes]
    assert all(t.schema.field(f"prob_{c}").type == pa.float64() for c in classes)
    np.testing.assert_allclose(probabilities(t, classes).sum(axis=1), 1.0)
    assert set(t.column("role").to_pylist()) == {"train", "val", "test"}
    config = json.loads((r.run_dir / "config.json").read_text())
    assert config["plugin"] == "small-cnn" and config["fold"] == 0 and config["seed"] == 0
    assert len(config["manifest"]["content_hash"]) == 64 and config["split"]["content_hash"]
    assert config["versions"]["torch"] == torch.__version__ and config["device"] == "cpu"
    metrics = json.loads((r.run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "top2_accuracy", "per_class", "macro", "weighted", "confusion",
                                    "confusion_normalized"}
    assert (r.run_dir / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((r.run_dir / "history.jsonl").read_text().splitlines()) == 2


def test_resume_continues_to_the_same_weights(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    straight = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 4}, device="cpu")
    half = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 2}, device="cpu")
    resumed = train("", resume=half.run_dir, hparams={"epochs": 4}, device="cpu")
    assert resumed.run_dir == half.run_dir
    a = torch.load(straight.run_dir / "last.pt", weights_only=True)["model"]
    b = torch.load(resumed.run_dir / "last.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k]) for k in a)
    assert len((resumed.run_dir / "history.jsonl").read_text().splitlines()) == 4


def test_early_stopping_on_val(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    # lr 0: the validation loss never improves after the first epoch, so patience 2 stops at epoch 3.
    r = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 20, "lr": 0.0, "patience": 2, "optimizer": "sgd"},
              device="cpu")
    assert r.metrics["stopped_early"] and r.metrics["epochs_run"] == 3 and r.metrics["best_epoch"] == 1


def test_fold_all_mean_std(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    r = train("small-cnn", m, "cv", fold="all", hparams={**FAST, "epochs": 1}, device="cpu")
    agg = r.metrics["aggregate"]["accuracy"]
    accs = [f.metrics["test"]["accuracy"] for f in r.folds]
    assert len(accs) == 3 and agg["mean"] == pytest.approx(np.mean(accs))
    assert agg["std"] == pytest.approx(np.std(accs, ddof=1))
    t, _ = read_predictions(r.run_dir)
    assert sorted(set(t.column("fold").to_pylist())) == [0, 1, 2]
    test_ids = [i for i, role in zip(t.column("image_id").to_pylist(), t.column("role").to_pylist()) if role == "test"]
    assert len(test_ids) == len(set(test_ids)) == 18  # every image held out exactly once


def test_balanced_class_weights_paper_004() -> None:
    w = balanced_class_weights(np.array([10, 5, 20, 0]))
    np.testing.assert_allclose(w, [20 / (4 * 10), 20 / (4 * 5), 20 / (4 * 20), 0.0])


def test_class_weights_change_training(tiny_manifest, runs_dir: Path) -> None:
    from tests.training.conftest import write_split

    from ferdata.labels import class_set

    m = tiny_manifest()
    labels = dict(zip(*(m.images(columns=["image_id", "label"]).column(c).to_pylist() for c in ("image_id", "label"))))
    rows = read_table(m.dir / "splits" / "cv.parquet").to_pylist()
    dropped = [r for r in rows if r["fold"] == 0 and r["role"] == "train" and labels[r["image_id"]] == "sad"][:1]
    kept = [(r["image_id"], r["fold"], r["role"]) for r in rows if r not in dropped]
    write_split(m, "imbalanced", kept, class_set("happy,sad,surprise"))
    hp = {**FAST, "batch_size": 8, "optimizer": "sgd", "lr": 0.05}  # Adam would hide a rescaled loss
    a = train("small-cnn", m, "imbalanced", hparams=hp, device="cpu")
    b = train("small-cnn", m, "imbalanced", hparams={**hp, "class_weights": "balanced"}, device="cpu")
    assert json.loads((b.run_dir / "config.json").read_text())["hparams"]["class_weights"] == "balanced"
    ta, classes = read_predictions(a.run_dir)
    tb, _ = read_predictions(b.run_dir)
    assert not np.array_equal(probabilities(ta, classes), probabilities(tb, classes))


def test_center_loss_pulls_centers_towards_features() -> None:
    loss = CenterLoss(2, 3, weight=0.5, alpha=0.5)
    feats = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    targets = torch.tensor([0, 0, 1])
    value = loss(feats, targets)
    assert value.item() == pytest.approx(0.5 * 0.5 * (1 + 1 + 4) / 3)
    # c0 moves by α·Σ(x−c)/(1+n) = 0.5·2/3 towards (1,0,0); c1 by 0.5·1/2 towards (0,2,0).
    torch.testing.assert_close(loss.centers, torch.tensor([[1 / 3, 0.0, 0.0], [0.0, 0.5, 0.0]]))


def test_center_loss_flag_trains(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    r = train("small-cnn", m, "cv", hparams={**FAST, "center_loss": True}, device="cpu")
    ckpt = torch.load(r.run_dir / "last.pt", weights_only=True)
    assert ckpt["extra_loss"]["centers"].shape == (3, 256) and ckpt["extra_loss"]["centers"].abs().sum() > 0


class _FeatureNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 + 10, num_classes)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.conv(x), features], dim=1)
        return self.fc(h), h


def test_hooks_features_and_param_groups(tiny_manifest, runs_dir: Path) -> None:
    """A plugin using every field of the API trains through the engine."""
    m = tiny_manifest()
    ids = m.images(columns=["image_id"]).column("image_id").to_pylist()
    write_table(m.table_path("features.parquet"), pa.table({
        "image_id": pa.array(ids[:-1], pa.string()),  # the last image has no vector: left out, counted
        "lpqphog": pa.array([[float(k)] * 10 for k in range(len(ids) - 1)], pa.list_(pa.float64()))}), {})
    calls: dict[str, list] = {"pretrain": [], "epoch_end": [], "extra": []}

    def pretrain(model, loader, device, **hp):  # noqa: ANN001, ANN003, ANN202
        calls["pretrain"].append(len(loader.dataset))
        return {"reconstruction_loss": 0.5}

    def epoch_end(model, epoch, **hp):  # noqa: ANN001, ANN003, ANN202
        calls["epoch_end"].append(epoch)
        return {"pruned": epoch}

    def extra_loss(num_classes, feature_dim, **hp):  # noqa: ANN001, ANN003, ANN202
        calls["extra"].append(feature_dim)
        return CenterLoss(num_classes, feature_dim)

    plugin = ModelPlugin(
        name="test-features", description="", paper=None, input_size=12, channels=1,
        build=lambda n, **hp: _FeatureNet(n), features=("lpqphog",), extra_loss=extra_loss,
        param_groups=lambda model, **hp: [{"params": list(model.fc.parameters())}],
        pretrain=pretrain, epoch_end=epoch_end, normalize=((0.5,), (0.25,)))
    r = train(plugin, m, "cv", hparams=FAST, device="cpu")
    assert len(calls["pretrain"]) == 1 and calls["pretrain"][0] > 0 and calls["extra"] == [14]
    assert calls["epoch_end"] == [0, 1]
    history = [json.loads(line) for line in (r.run_dir / "history.jsonl").read_text().splitlines()]
    assert history[0] == {"phase": "pretrain", "reconstruction_loss": 0.5}
    assert [h["pruned"] for h in history[1:]] == [0, 1]
    assert r.metrics["excluded"] == {"no feature vector": 1}
    state = torch.load(r.run_dir / "last.pt", weights_only=True)["model"]
    # Frozen conv (left out of param_groups) keeps its initial weights: compare with a rebuilt seed-0 model.
    torch.manual_seed(0)
    fresh = _FeatureNet(3)
    assert torch.equal(state["conv.0.weight"], fresh.conv[0].weight.detach())
    assert not torch.equal(state["fc.weight"], fresh.fc.weight.detach())


def test_feature_lookup_order(tiny_manifest) -> None:
    m = tiny_manifest()
    ids = m.images(columns=["image_id"]).column("image_id").to_pylist()
    with pytest.raises(Exception, match="no feature 'lpqphog'"):
        load_features(m, ["lpqphog"])
    write_table(m.table_path("features.parquet"), pa.table({
        "image_id": pa.array(ids, pa.string()),
        "lpqphog": pa.array([list(range(10))] * len(ids), pa.list_(pa.float64()))}), {})
    vec = load_features(m, ["lpqphog"])[ids[0]]
    np.testing.assert_array_equal(vec, np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(load_features(m, ["phog_pc"])[ids[0]], np.arange(5, 10, dtype=np.float32))


def test_init_from_replaces_the_classifier(tiny_manifest, runs_dir: Path) -> None:
    from tests.training.conftest import write_split

    from ferdata.labels import class_set

    m = tiny_manifest()
    first = train("small-cnn", m, "cv", hparams=FAST, device="cpu")
    rows = read_table(m.dir / "splits" / "cv.parquet").to_pylist()
    write_split(m, "two", [(r["image_id"], r["fold"], r["role"]) for r in rows], class_set("happy,sad"))
    second = train("small-cnn", m, "two", hparams={**FAST, "lr": 0.0, "optimizer": "sgd"}, init_from=str(first.run_dir),
                   device="cpu")
    config = json.loads((second.run_dir / "config.json").read_text())
    assert config["init_from"]["classifier_replaced"] is True
    a = torch.load(first.run_dir / "best.pt", weights_only=True)["model"]
    b = torch.load(second.run_dir / "best.pt", weights_only=True)["model"]
    assert torch.equal(a["0.weight"], b["0.weight"]) and torch.equal(a["8.weight"], b["8.weight"])
    assert b["10.weight"].shape == (2, 256) and a["10.weight"].shape == (3, 256)
    assert second.metrics["excluded"] == {"label outside class set": 6}


def test_user_errors_are_one_line(tiny_manifest, runs_dir: Path) -> None:
    from ferdata.errors import FerdataError

    m = tiny_manifest()
    for kwargs, pattern in (({"split": "nope"}, "no split 'nope'"),
                            ({"split": "cv", "fold": 7}, "no fold 7"),
                            ({"split": "cv", "hparams": {"optimizer": "rmsprop"}}, "optimizer 'rmsprop'"),
                            ({"split": "cv", "device": "cuda:3"} if not torch.cuda.is_available() else
                             {"split": "cv", "hparams": {"class_weights": "x"}}, "CUDA|class-weights")):
        with pytest.raises(FerdataError, match=pattern) as info:
            train("small-cnn", m, **kwargs)
        assert "\n" not in str(info.value)


def test_ddp_two_processes_gloo(tiny_manifest, tmp_path: Path) -> None:
    """torchrun with two CPU processes: one run folder, world size 2, every image predicted."""
    m = tiny_manifest()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'plugins'}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ferdata", "train", "small-cnn", "--manifest", str(m.dir), "--split", "cv", "--epochs", "2",
           "--batch-size", "4", "--device", "cpu", "--runs", str(tmp_path / "ddp-runs")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = list((tmp_path / "ddp-runs").iterdir())
    assert len(runs) == 1
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["world_size"] == 2
    t, _ = read_predictions(runs[0])
    assert t.num_rows == 18
    assert len((runs[0] / "history.jsonl").read_text().splitlines()) == 2


def test_reads_face_crops_when_the_manifest_has_them(tiny_manifest, runs_dir: Path) -> None:
    from PIL import Image

    m = tiny_manifest()
    ids = m.images(columns=["image_id"]).column("image_id").to_pylist()
    (m.dir / "crops" / "abc").mkdir(parents=True)
    for i in ids[1:]:
        Image.new("RGB", (10, 10), (200, 10, 10)).save(m.dir / "crops" / "abc" / f"{i}.png")
    write_table(m.table_path("faces.parquet"), pa.table({
        "image_id": pa.array(ids, pa.string()), "config_hash": pa.array(["abc"] * len(ids), pa.string()),
        "crop_path": pa.array([None] + [f"crops/abc/{i}.png" for i in ids[1:]], pa.string())}), {"latest_config": "abc"})
    r = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 1}, device="cpu")
    assert r.metrics["source"] == "crops" and r.metrics["excluded"] == {"no face crop": 1}


@pytest.mark.parametrize("opt", [{"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.9},
                                 {"optimizer": "sgd", "momentum": 0.0}])
def test_checkpoint_estimate_matches_what_is_written(tiny_manifest, runs_dir: Path, opt: dict) -> None:
    """The free-space check before training asks for what the checkpoints will take: Adam's
    two slots, momentum's one, none for plain SGD (within 10 %, pickling overhead aside)."""
    from ferdata.models import get_model
    from ferdata.training.engine import build_model, checkpoint_bytes, param_groups
    from ferdata.training.hparams import resolve

    plugin = get_model("small-cnn")
    hp = resolve(plugin.defaults, {**FAST, **opt})
    model = build_model(plugin, 3, hp)
    estimate = checkpoint_bytes(model, param_groups(plugin, model, hp), hp)
    r = train("small-cnn", tiny_manifest(), "cv", hparams={**FAST, **opt}, device="cpu")
    written = (r.run_dir / "best.pt").stat().st_size + (r.run_dir / "last.pt").stat().st_size
    assert abs(written - estimate) / estimate < 0.10, (written, estimate)


def test_frozen_parameters_carry_no_optimizer_state_in_the_estimate() -> None:
    from ferdata.training.engine import checkpoint_bytes

    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 3))
    weights = sum(p.numel() * 4 for p in model.parameters())
    head = list(model[1].parameters())
    adam = {"optimizer": "adam"}
    assert checkpoint_bytes(model, [{"params": list(model.parameters())}], adam) == 4 * weights
    assert checkpoint_bytes(model, [{"params": head}], adam) == 2 * weights + 2 * sum(p.numel() * 4 for p in head)
