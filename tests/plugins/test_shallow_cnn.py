from __future__ import annotations

import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import shallow_cnn
from tests.plugins.plugin_checks import check_defaults, check_forward_backward, names_from

NAMES = names_from(shallow_cnn)


def test_module_registers_the_paper_model():
    assert NAMES == ["shallow-cnn"]
    plugin = get_model("shallow-cnn")
    assert (plugin.input_size, plugin.channels, plugin.paper) == (48, 1, "003")
    d = plugin.defaults
    assert (d["optimizer"], d["lr"], d["epochs"], d["schedule"], d["dropout"]) == ("adam", 1e-3, 60, "plateau", 0.25)


@pytest.mark.parametrize("num_classes", [2, 7])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, num_classes):
    check_forward_backward(name, num_classes)
    check_defaults(name)


def test_paper_architecture():
    model = create_model("shallow-cnn", 7)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.trunk) == 4
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.trunk) == 4
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and set(drops) == {0.25}
    dense = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert dense == [256, 512, 7]


def test_too_small_input_is_refused():
    with pytest.raises(FerdataError, match="at least 16"):
        shallow_cnn.ShallowCnn(7, input_size=8)
