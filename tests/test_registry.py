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


def test_builtins_load_on_first_use_and_construct_shapes_create(tmp_path, monkeypatch):
    module = tmp_path / "fer_builtin_widgets.py"
    module.write_text("from tests.test_registry import WIDGETS\nWIDGETS.add('cog', {'teeth': 12})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert WIDGETS.names() == ["cog"]
    assert WIDGETS.create("cog", scale=2) == {"teeth": 24}


WIDGETS: Registry = Registry("widget", builtins=("fer_builtin_widgets",),
                             construct=lambda spec, scale=1: {k: v * scale for k, v in spec.items()})


def test_entry_points_load_and_broken_ones_are_reported(tmp_path, monkeypatch):
    from tests.third_party import install_distribution

    site = install_distribution(tmp_path / "site", "fer-gadgets", {
        "fer_gadgets": "from tests.test_registry import GADGETS\nGADGETS.add('sprocket', 'S')\n",
        "fer_gadgets_cb": "def register():\n    from tests.test_registry import GADGETS\n    GADGETS.add('gear', 'G')\n",
    }, {"ferdata.gadgets": {"mod": "fer_gadgets", "cb": "fer_gadgets_cb:register", "bad": "fer_nowhere"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("FERDATA_NO_PLUGINS", raising=False)
    assert GADGETS.names() == ["gear", "sprocket"]
    assert set(GADGETS.broken()) == {"bad"} and "fer_nowhere" in GADGETS.broken()["bad"]


GADGETS: Registry = Registry("gadget", entry_point_group="ferdata.gadgets")


def test_third_party_entry_points_can_be_switched_off(tmp_path, monkeypatch):
    from tests.third_party import install_distribution

    site = install_distribution(tmp_path / "site", "fer-knobs", {
        "fer_knobs": "from tests.test_registry import KNOBS\nKNOBS.add('dial', 1)\n"},
        {"ferdata.knobs": {"dial": "fer_knobs"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("FERDATA_NO_PLUGINS", "1")
    assert KNOBS.names() == [] and KNOBS.broken() == {}


KNOBS: Registry = Registry("knob", entry_point_group="ferdata.knobs")
