"""Every registered model plugin builds, runs forward and backward at its input size on
CPU, trains one step through the engine on a tiny fake manifest and round-trips its
checkpoint (parametrised over the registry, so plugins added later are tested too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ferdata.manifest import Manifest, write_table
from ferdata.models import get_model, list_models

#: Too big to train at their input size in the time budget: their forward and backward pass
#: runs at the input size (batch 1, eval mode) and the engine step at ``HEAVY_STEP_SIZE``.
HEAVY = {"vgg16", "inception-v3", "xception", "resnet101-alf", "resnet101-llf", "resnet152-alf", "resnet152-llf"}
HEAVY_STEP_SIZE = 96
#: Their engine step uses plain SGD, so the checkpoints are the weights twice and no optimizer
#: state (a one-step VGG16 with Adam's would write 2.2 GB).
HEAVY_STEP_OPTIMIZER = {"optimizer": "sgd", "momentum": 0.0}
#: From scratch: fine-tuning plugins default to ImageNet weights, which are not on this machine.
ONE_STEP = {"epochs": 1, "batch_size": 2, "augment": "none", "patience": 0, "pretrain_epochs": 1, "weights": "none"}


def _params(kind: str) -> list:
    out = []
    for name in list_models():
        if get_model(name).kind != kind:
            continue
        marks = [pytest.mark.slow] if name in HEAVY else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.fixture(scope="module")
def one_step_manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Nine images, three subjects: fold 0 trains on 3, validates on 3, tests on 3; with a
    10-D ``lpqphog`` vector per image in features.parquet for plugins that need features."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tests.training.conftest import CLASSES, kfold_rows, make_images, write_split

    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest
    from ferdata.labels import class_set

    tmp = tmp_path_factory.mktemp("one-step")
    src = make_images(tmp / "src", per_class=3, subjects=3)
    m = ingest("folder", src, name="onestep", manifests=tmp / "manifests", executor=InlineExecutor(),
               subject_pattern=r"^(?P<subject>S\d+)_").manifest
    write_split(m, "cv", kfold_rows(m, 3), class_set(",".join(CLASSES)))
    ids = m.images(columns=["image_id"]).column("image_id").to_pylist()
    rng = np.random.default_rng(0)
    write_table(m.table_path("features.parquet"), pa.table({
        "image_id": pa.array(ids, pa.string()),
        "lpqphog": pa.array([rng.normal(size=10).tolist() for _ in ids], pa.list_(pa.float64()))}), {})
    return m


@pytest.mark.parametrize("name", _params("torch"))
def test_torch_plugin_forward_backward_step_checkpoint(name: str, one_step_manifest: Manifest, tmp_path: Path) -> None:
    import dataclasses

    import torch

    from ferdata.training import train
    from ferdata.training.engine import build_model, split_output
    from ferdata.training.hparams import resolve
    from ferdata.training.weights import torch_load

    plugin = get_model(name)
    hp = resolve(plugin.defaults, ONE_STEP)
    torch.manual_seed(0)
    model = build_model(plugin, 3, hp)
    heavy = name in HEAVY
    batch = 1 if heavy else 2
    if heavy:
        model.eval()
    x = torch.randn(batch, plugin.channels, plugin.input_size, plugin.input_size)
    args = (x, torch.randn(batch, 10)) if plugin.features else (x,)
    logits, _ = split_output(model(*args))
    assert logits.shape == (batch, 3)
    logits.float().logsumexp(1).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    del model
    step = dataclasses.replace(plugin, input_size=HEAVY_STEP_SIZE) if heavy else plugin
    hparams = {**ONE_STEP, **HEAVY_STEP_OPTIMIZER} if heavy else ONE_STEP
    result = train(step, one_step_manifest, "cv", runs=tmp_path / "runs", hparams=hparams, device="cpu")
    history = [h for h in (result.run_dir / "history.jsonl").read_text().splitlines()]
    assert history, "no epoch recorded"
    ckpt = torch_load(result.run_dir / "best.pt")
    fresh = build_model(plugin, 3, hp)
    fresh.load_state_dict(ckpt["model"])
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, ckpt["model"][key]), key
    assert ckpt["classes"] == ["happy", "sad", "surprise"]
    assert result.metrics["test"]["n"] == 3


@pytest.mark.parametrize("name", _params("sklearn"))
def test_sklearn_plugin_fits_and_round_trips(name: str, one_step_manifest: Manifest, tmp_path: Path) -> None:
    from ferdata.training import train
    from ferdata.training.data import gather_examples, read_split
    from ferdata.training.sklearn_fit import align_proba, design_matrix, load_estimator

    result = train(name, one_step_manifest, "cv", runs=tmp_path / "runs", hparams=ONE_STEP)
    est = load_estimator(result.run_dir)
    plugin = get_model(name)
    ex = gather_examples(one_step_manifest, read_split(one_step_manifest, "cv"), 0, features=plugin.features)
    probs = align_proba(est, est.predict_proba(design_matrix(plugin, ex)), 3)
    from ferdata.training.runs import probabilities, read_predictions

    table, classes = read_predictions(result.run_dir)
    np.testing.assert_allclose(probabilities(table, classes), probs)


@pytest.mark.parametrize("name", [n for n in list_models() if get_model(n).kind == "ensemble"])
def test_ensemble_plugins_combine_members(name: str) -> None:
    combiner = get_model(name).build(3)
    a, b = np.array([[0.2, 0.5, 0.3]]), np.array([[0.6, 0.1, 0.3]])
    out = combiner.combine([a, b])
    assert out.shape == (1, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
