from __future__ import annotations

import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import cnn_sfew
from tests.plugins.plugin_checks import check_defaults, check_forward_backward, inputs, names_from

NAMES = names_from(cnn_sfew)


def test_module_registers_both_paper_models():
    assert set(NAMES) == {"cnn-base", "cnn-lpqphog"}


@pytest.mark.parametrize("num_classes", [2, 7])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, num_classes):
    check_forward_backward(name, num_classes)
    check_defaults(name)


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_log_probabilities(name):
    model = create_model(name, 7).eval()
    scores = model(*inputs(get_model(name)))
    assert torch.allclose(scores.exp().sum(1), torch.ones(len(scores)), atol=1e-5)


def test_paper_architecture():
    model = create_model("cnn-base", 7)
    convs = [m for m in model.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256]
    acts = [m for m in model.trunk if isinstance(m, torch.nn.LeakyReLU)]
    assert [a.negative_slope for a in acts] == [0.01] * 3
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.trunk) == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.trunk) == 3


def test_paper_geometry_gives_the_papers_flat_size():
    """Kernel 20, stride 2 on the paper's frames leave 256×3×5 = 3840 values (its bottleneck)."""
    trunk = cnn_sfew.conv_trunk(3, 20, 2, 0.01)
    assert trunk(torch.zeros(1, 3, 576, 720)).shape == (1, 256, 3, 5)


def test_fusion_uses_the_feature_vector():
    model = create_model("cnn-lpqphog", 7)
    images, feats = inputs(get_model("cnn-lpqphog"), batch=8)
    model.train()
    model(images, feats)  # one training pass fits the running standardisation
    model.eval()
    with torch.no_grad():
        a = model(images, feats)
        b = model(images, feats + torch.randn_like(feats))
        c = model(images, feats)
    assert torch.equal(a, c)
    assert not torch.allclose(a, b)


def test_fusion_trains_with_a_last_batch_of_one():
    model = create_model("cnn-lpqphog", 3).train()
    images, feats = inputs(get_model("cnn-lpqphog"), batch=1)
    assert torch.isfinite(model(images, feats)).all()


def test_too_small_input_is_refused():
    with pytest.raises(FerdataError, match="too small"):
        create_model("cnn-base", 7, kernel_size=20, stride=2)
