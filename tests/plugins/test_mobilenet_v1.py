from __future__ import annotations

import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import mobilenet_v1
from tests.plugins.plugin_checks import check_defaults, check_forward_backward, inputs, names_from

NAMES = names_from(mobilenet_v1)


def test_module_registers_the_paper_model():
    assert NAMES == ["mobilenet-v1"]
    plugin = get_model("mobilenet-v1")
    assert (plugin.input_size, plugin.channels, plugin.paper) == (48, 1, "001")
    d = plugin.defaults
    assert (d["optimizer"], d["momentum"], d["weight_decay"], d["batch_size"], d["lr"]) == ("sgd", 0.9, 4e-5, 64, 0.045)
    assert (d["schedule"], d["gamma"], d["step_size"], d["dropout"]) == ("step", 0.94, 15, 0.5)
    assert (d["center_loss"], d["center_loss_weight"], d["center_loss_alpha"]) == (False, 0.001, 0.001)


@pytest.mark.parametrize("num_classes", [2, 7])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, num_classes):
    check_forward_backward(name, num_classes, width_mult=0.25)
    check_defaults(name)


def test_architecture_and_width_multiplier():
    full = create_model("mobilenet-v1", 7)
    half = create_model("mobilenet-v1", 7, width_mult=0.5)
    depthwise = [m for m in full.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13
    assert full.feature_dim == 1024 and half.feature_dim == 512
    n_full = sum(p.numel() for p in full.parameters())
    n_half = sum(p.numel() for p in half.parameters())
    assert 3.0e6 < n_full < 3.5e6  # MobileNet V1 1.0 without its 1000-class head: 3.2M
    assert n_half < n_full / 3
    with pytest.raises(FerdataError, match="width_mult"):
        create_model("mobilenet-v1", 7, width_mult=0)


def test_dropout_sits_before_the_classifier_and_features_are_pooled():
    model = create_model("mobilenet-v1", 7, width_mult=0.25).eval()
    (x,) = inputs(get_model("mobilenet-v1"), batch=2)
    scores, feats = model(x, return_features=True)
    assert torch.allclose(model.classifier(feats), scores, atol=1e-6)
    assert model.classifier.p == 0.5


def test_last_linear_layer_sees_the_pooled_features_before_dropout():
    """The engine's center loss hooks the input of the last linear layer (paper 001: the
    features after the average pool)."""
    torch.manual_seed(0)
    model = create_model("mobilenet-v1", 7, width_mult=0.25).train()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen = []
    last.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
    (x,) = inputs(get_model("mobilenet-v1"), batch=4)
    scores, feats = model(x, return_features=True)
    assert torch.equal(seen[0], feats)
    assert (feats > 0).float().mean() > 0.9  # ReLU-pooled features, not half zeroed by dropout
    assert not torch.allclose(scores, torch.nn.functional.linear(feats, last.weight, last.bias))  # dropout did act


def test_weight_decay_spares_batch_norm_and_biases():
    model = create_model("mobilenet-v1", 7, width_mult=0.25)
    decay, no_decay = get_model("mobilenet-v1").param_groups(model)
    assert all(p.ndim > 1 for p in decay["params"]) and "weight_decay" not in decay
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_the_engines_center_loss_takes_the_pooled_features():
    from ferdata.training import losses

    plugin = get_model("mobilenet-v1")
    model = create_model("mobilenet-v1", 7, width_mult=0.25)
    loss_fn = losses.center_loss(7, model.feature_dim, **plugin.defaults)
    (x,) = inputs(plugin, batch=4)
    _, feats = model(x, return_features=True)
    loss = loss_fn(feats, torch.tensor([0, 1, 2, 3]))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert any(p.grad is not None for p in model.parameters())
