from __future__ import annotations

import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import cae_mlp
from tests.plugins.plugin_checks import check_defaults, check_forward_backward, inputs, names_from

NAMES = names_from(cae_mlp)
PLUGIN = get_model("cae-mlp")


def test_module_registers_the_paper_model():
    assert NAMES == ["cae-mlp"]
    d = PLUGIN.defaults
    assert (d["hidden"], d["regularizer"], d["weight_decay"], d["pretrain_epochs"]) == (64, "weight-decay", 1e-3, 100)
    assert (d["prune_similar_deg"], d["prune_complementary_deg"]) == (15.0, 165.0)
    assert PLUGIN.pretrain is not None and PLUGIN.epoch_end is not None


@pytest.mark.parametrize("regularizer", cae_mlp.REGULARIZERS)
@pytest.mark.parametrize("num_classes", [2, 7])
def test_forward_backward(regularizer, num_classes):
    model = check_forward_backward("cae-mlp", num_classes, regularizer=regularizer)
    check_defaults("cae-mlp")
    assert model.dropout.p == (0.5 if regularizer == "dropout" else 0.0)
    assert not any(p.requires_grad for p in model.autoencoder.parameters())  # the encoder is frozen


def test_unknown_regularizer_is_one_line():
    with pytest.raises(FerdataError, match="weight-decay, prune, dropout"):
        create_model("cae-mlp", 7, regularizer="l1")


def test_weight_decay_only_for_its_regularizer():
    for regularizer, expected in (("weight-decay", 1e-3), ("prune", 0.0), ("dropout", 0.0)):
        model = create_model("cae-mlp", 7, regularizer=regularizer)
        groups = PLUGIN.param_groups(model, **{**PLUGIN.defaults, "regularizer": regularizer})
        assert [g["weight_decay"] for g in groups] == [expected]
        assert {id(p) for p in groups[0]["params"]} == {id(p) for p in [*model.hidden.parameters(), *model.out.parameters()]}


def test_unfrozen_encoder_is_trained_too():
    model = create_model("cae-mlp", 3, freeze_encoder=False)
    groups = PLUGIN.param_groups(model, **PLUGIN.defaults)
    assert len(groups) == 2
    check_forward_backward("cae-mlp", 3, freeze_encoder=False)


def test_autoencoder_reconstructs_the_input_shape():
    model = create_model("cae-mlp", 7)
    (x,) = inputs(PLUGIN, batch=2)
    assert model.autoencoder(x).shape == x.shape


def _smooth_images(n, size, seed=0):
    """Low-frequency images: something an autoencoder can learn to compress."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def test_pretrain_reduces_reconstruction_loss_and_freezes_the_encoder():
    torch.manual_seed(0)
    small = {"kernel_size": 3, "stride": 1}
    model = cae_mlp.CaeMlp(7, input_size=32, **small)  # a tiny geometry keeps the test fast
    x = _smooth_images(4, 32)
    loader = [(x, torch.zeros(4, dtype=torch.long))]  # the engine's batches: images first
    metrics = PLUGIN.pretrain(model, loader, torch.device("cpu"), **{**PLUGIN.defaults, **small,
                                                                     "pretrain_epochs": 8, "pretrain_lr": 0.1})
    assert metrics["pretrain_epochs"] == 8
    assert metrics["reconstruction_loss_last"] < 0.8 * metrics["reconstruction_loss_first"]
    assert not any(p.requires_grad for p in model.autoencoder.parameters())
    # the classifier's training passes leave the pretrained encoder's statistics alone
    model.train()
    before = model.autoencoder.enc[0][1].running_mean.clone()
    model(x)
    assert torch.equal(before, model.autoencoder.enc[0][1].running_mean)
    assert not model.autoencoder.training and model.training


def _model_with_planted_pairs():
    """Unit 1 duplicates unit 0 (0° apart); unit 3 mirrors unit 2 (180°) with the same
    outgoing weights, so their contributions cancel exactly."""
    torch.manual_seed(0)
    model = create_model("cae-mlp", 5, regularizer="prune", hidden=12)
    with torch.no_grad():
        model.hidden.weight[1] = model.hidden.weight[0]
        model.hidden.bias[1] = model.hidden.bias[0]
        model.hidden.weight[3] = -model.hidden.weight[2]
        model.hidden.bias[3] = -model.hidden.bias[2]
        model.out.weight[:, 3] = model.out.weight[:, 2]
    return model


def test_distinctiveness_pruning_removes_units_and_keeps_the_network_working():
    model = _model_with_planted_pairs()
    (x,) = inputs(PLUGIN, batch=32, seed=2)
    model.train()
    model(x)  # a training pass records the hidden units' functionality
    model.eval()
    with torch.no_grad():
        before = model(x)
    metrics = PLUGIN.epoch_end(model, 10, **{**PLUGIN.defaults, "prune_after": 0})
    assert metrics["pruned"] >= 3
    assert metrics["hidden_units"] == 12 - metrics["pruned"]
    mask = model.unit_mask
    assert mask[2] == 0 and mask[3] == 0 and (mask[0] == 0) != (mask[1] == 0)
    with torch.no_grad():
        after = model(x)
    if metrics["pruned"] == 3:  # only the planted pairs: the function is unchanged
        assert torch.allclose(before, after, atol=1e-4)
    # still trains, and the pruned units stay silent
    model.train()
    scores, hidden = model(x, return_features=True)
    torch.nn.functional.cross_entropy(scores, torch.arange(32) % 5).backward()
    assert torch.isfinite(model.hidden.weight.grad).all()
    assert (hidden[:, mask == 0] == 0).all()
    # the mask survives a checkpoint round trip
    fresh = create_model("cae-mlp", 5, regularizer="prune", hidden=12)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_no_pruning_before_prune_after_or_for_other_regularizers():
    model = _model_with_planted_pairs()
    (x,) = inputs(PLUGIN, batch=32, seed=2)
    model.train()
    model(x)
    assert PLUGIN.epoch_end(model, 1, **{**PLUGIN.defaults, "prune_after": 5}) == {"pruned": 0.0, "hidden_units": 12.0}
    other = create_model("cae-mlp", 5, regularizer="weight-decay")
    other.train()
    other(x)
    assert PLUGIN.epoch_end(other, 50, **PLUGIN.defaults) == {}


def test_pruning_keeps_a_minimum_of_units():
    model = create_model("cae-mlp", 3, regularizer="prune", hidden=4)
    with torch.no_grad():
        for u in range(1, 4):  # four identical units
            model.hidden.weight[u] = model.hidden.weight[0]
            model.hidden.bias[u] = model.hidden.bias[0]
    (x,) = inputs(PLUGIN, batch=16)
    model.train()
    model(x)
    metrics = PLUGIN.epoch_end(model, 20, **{**PLUGIN.defaults, "prune_min_units": 2})
    assert metrics == {"pruned": 2.0, "hidden_units": 2.0}
