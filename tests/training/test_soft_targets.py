"""Training on a vote distribution (FER+): ``--targets votes``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.engines import InlineExecutor
from ferdata.errors import FerdataError
from ferdata.ingest import ingest
from ferdata.labels import class_set
from ferdata.training.data import vote_distribution
from ferdata.training.losses import soft_cross_entropy
from tests.datasets.fakes import write_fake

runner = CliRunner()


def test_vote_distribution_follows_the_class_set():
    table = pa.table({"image_id": ["a", "b", "c"],
                      "votes_happy": [6, 0, 0], "votes_sad": [2, 0, 0], "votes_contempt": [2, 0, 0],
                      "votes_uncertain": [0, 3, 0], "votes_nonface": [0, 0, 10], "votes_neutral": [0, 1, 0]})
    seven = vote_distribution(table, class_set("7"))
    assert set(seven) == {"a", "b"}  # c only has NF votes
    cs = class_set("7")
    assert seven["a"][cs.index("happy")] == pytest.approx(0.75) and seven["a"][cs.index("sad")] == pytest.approx(0.25)
    assert seven["b"][cs.index("neutral")] == pytest.approx(1.0)  # unknown votes are dropped
    eight = vote_distribution(table, class_set("8"))
    assert eight["a"][class_set("8").index("contempt")] == pytest.approx(0.2)
    three = vote_distribution(table, class_set("3"))
    groups = class_set("3")
    assert three["a"][groups.classes.index("positive")] == pytest.approx(0.6)
    assert three["a"][groups.classes.index("negative")] == pytest.approx(0.4)
    with pytest.raises(FerdataError, match="no votes_<label> columns"):
        vote_distribution(pa.table({"image_id": ["a"]}), class_set("7"), "jaffe")


def test_soft_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    onehot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    hard = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    assert float(soft_cross_entropy(logits, onehot)) == pytest.approx(float(hard))
    half = torch.tensor([[0.5, 0.5, 0.0]])
    logp = torch.log_softmax(logits[:1], 1)[0]
    assert float(soft_cross_entropy(logits[:1], half)) == pytest.approx(float(-(logp[0] + logp[1]) / 2))
    weight = torch.tensor([2.0, 1.0, 1.0])
    assert float(soft_cross_entropy(logits[:1], half, weight)) == pytest.approx(float(-(2 * logp[0] + logp[1]) / 2))


def ferplus_manifest(tmp_path: Path):
    exp = write_fake("ferplus", tmp_path / "src")
    # a few more faces per folder, so every role has images of the labelled classes
    rng = np.random.default_rng(0)
    from PIL import Image
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        with open(exp.source / folder / "label.csv", "a") as fh:
            for i in range(8):
                name = f"extra{i}.png"
                Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), "L").save(exp.source / folder / name)
                votes = [0] * 10
                votes[i % 3] = 6
                votes[(i + 1) % 3] = 4
                fh.write(f'{name},"(0, 0, 48, 48)",{",".join(map(str, votes))}\n')
    m = ingest("ferplus", exp.source, manifests=tmp_path / "manifests", executor=InlineExecutor()).manifest
    from ferdata.splits import make_split

    make_split(m, "official", executor=InlineExecutor())
    return m


def test_train_small_cnn_on_the_vote_distribution(tmp_path):
    m = ferplus_manifest(tmp_path)
    runs = tmp_path / "runs"
    args = ["train", "small-cnn", "--manifest", str(m.dir), "--split", "official", "--epochs", "2", "--device", "cpu",
            "--runs", str(runs)]
    soft = runner.invoke(app, [*args, "--targets", "votes"], env={"COLUMNS": "200"})
    assert soft.exit_code == 0, soft.output
    hard = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert hard.exit_code == 0, hard.output
    histories = {}
    for run in (p for p in runs.iterdir() if p.is_dir()):
        target = json.loads((run / "config.json").read_text())["hparams"]["targets"]
        histories[target] = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        assert (run / "predictions.parquet").is_file()
    assert set(histories) == {"votes", "labels"}
    # the same seed and images; only the targets differ, so the losses differ
    assert histories["votes"][0]["train_loss"] != pytest.approx(histories["labels"][0]["train_loss"])
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in histories["votes"])


def test_votes_need_vote_columns(tmp_path):
    from tests.training.conftest import make_images

    source = make_images(tmp_path / "imgs")
    m = ingest("folder", source, name="plain", manifests=tmp_path / "manifests", executor=InlineExecutor()).manifest
    from ferdata.splits import make_split

    make_split(m, "kfold", folds=2, executor=InlineExecutor())
    out = runner.invoke(app, ["train", "small-cnn", "--manifest", str(m.dir), "--split", "kfold-2", "--epochs", "1",
                              "--targets", "votes", "--runs", str(tmp_path / "runs")], env={"COLUMNS": "200"})
    assert out.exit_code == 2 and "no votes_<label> columns" in out.output and "Traceback" not in out.output
    out = runner.invoke(app, ["train", "small-cnn", "--manifest", str(m.dir), "--split", "kfold-2",
                              "--targets", "soft"], env={"COLUMNS": "200"})
    assert out.exit_code == 2 and "--targets 'soft'" in out.output


@pytest.mark.real_data
def test_train_on_the_ferplus_sample_votes(real_manifest, tmp_path):
    """The real FER+ sample: majority labels for the metrics, the votes as targets."""
    import shutil

    from ferdata.manifest import Manifest
    from ferdata.splits import make_split
    from ferdata.training import train

    m = Manifest(shutil.copytree(real_manifest("ferplus").dir, tmp_path / "manifests" / "ferplus"))
    make_split(m, "official", executor=InlineExecutor())
    r = train("small-cnn", m, "official", runs=tmp_path / "runs", device="cpu", hparams={"epochs": 1, "targets": "votes"})
    assert r.metrics["train"]["n"] > 40 and r.metrics["test"]["n"] > 40
    assert json.loads((r.run_dir / "config.json").read_text())["hparams"]["targets"] == "votes"
