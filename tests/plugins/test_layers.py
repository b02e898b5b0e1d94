from __future__ import annotations

import torch

from ferdata_plugins.layers import RunningStandardize


def test_running_statistics_equal_the_datasets():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(101, 10, generator=g) * torch.arange(1, 11) + 7
    layer = RunningStandardize(10).train()
    for chunk in torch.split(data, [1, 32, 32, 32, 4]):  # batches of uneven size, one of 1
        layer(chunk)
    assert torch.allclose(layer.mean, data.mean(0), atol=1e-4)
    layer.eval()
    out = layer(data)
    assert torch.allclose(out.mean(0), torch.zeros(10), atol=1e-4)
    assert torch.allclose(out.std(0), torch.ones(10), atol=1e-3)


def test_eval_does_not_update_and_state_round_trips():
    layer = RunningStandardize(3).train()
    layer(torch.randn(8, 3))
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.eval()(torch.randn(8, 3) + 100)
    assert all(torch.equal(state[k], v) for k, v in layer.state_dict().items())
    fresh = RunningStandardize(3)
    fresh.load_state_dict(state)
    x = torch.randn(5, 3)
    assert torch.equal(fresh.eval()(x), layer(x))


def test_dropout_linear_is_dropout_then_linear():
    from ferdata_plugins.layers import DropoutLinear

    layer = DropoutLinear(6, 3, p=0.5)
    ref = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(6, 3))
    ref[1].load_state_dict(layer.state_dict())  # same parameter names as nn.Linear
    x = torch.randn(4, 6)
    layer.eval(), ref.eval()
    assert torch.equal(layer(x), ref(x))
    layer.train(), ref.train()
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(1)
    assert torch.equal(a, ref(x))
