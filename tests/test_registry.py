import pytest

from ferdata.errors import FerdataError
from ferdata.registry import Registry


def test_register_list_create_and_wildcards():
    reg: Registry = Registry("widget")

    @reg.register("resnet18", aliases=("r18",))
    def make(**kw):
        return ("resnet18", kw)

    reg.register("resnet34")(lambda: "r34")
    reg.register("vgg16")(lambda: "vgg")
    assert reg.names() == ["resnet18", "resnet34", "vgg16"]
    assert reg.names("resnet*") == ["resnet18", "resnet34"]
    assert reg.create("r18", x=1) == ("resnet18", {"x": 1})
    assert "r18" in reg and "nope" not in reg


def test_unknown_name_lists_choices():
    reg: Registry = Registry("detector")
    reg.register("haar")(lambda: 1)
    with pytest.raises(FerdataError, match=r"unknown detector 'x'; choose from: haar"):
        reg.create("x")


def test_double_registration_is_refused_and_loaders_run_once():
    reg: Registry = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError):
        reg.register("a")(lambda: 2)
    calls = []
    reg.add_loader(lambda: calls.append(1) or reg.register("b")(lambda: 3))
    assert reg.names() == ["a", "b"] and reg.names() == ["a", "b"] and calls == [1]
