"""Model plugins: what a model declares so the training engine can run it.

A plugin is a :class:`ModelPlugin` registered under one or more names. First-party
plugins live in ``plugins/ferdata_plugins`` and third-party ones in any installed package;
both are found the same way, through the ``ferdata.models`` entry-point group: an entry
point names a module (importing it registers its plugins) or a callable (called once).

The engine owns the loop, devices, checkpoints and metrics; a plugin only says how to
build its model and what is special about training it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from ferdata.errors import FerdataError
from ferdata.registry import Registry

ENTRY_POINT_GROUP = "ferdata.models"


@dataclass(frozen=True)
class ModelPlugin:
    name: str
    """The CLI name (``resnet18-alf``)."""
    description: str
    paper: str | None
    """Which of the papers in ``shared/papers`` it comes from (``"002"``), if any."""
    input_size: int
    """Side of the square input in pixels."""
    channels: int
    """1 (grey) or 3 (RGB)."""
    build: Callable[..., Any]
    """``build(num_classes, **hparams)`` → a ``torch.nn.Module`` (kind ``torch``) or an
    estimator with ``fit``/``predict_proba`` (kind ``sklearn``)."""
    kind: Literal["torch", "sklearn", "ensemble"] = "torch"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Default hyperparameters (optimizer, lr, momentum, weight_decay, epochs, batch_size,
    schedule, ...); command-line options override them."""
    param_groups: Callable[..., list[dict]] | None = None
    """``param_groups(model, **hparams)`` → optimizer groups; parameters left out are frozen
    (LLF, last-n-blocks)."""
    extra_loss: Callable[..., Any] | None = None
    """``extra_loss(num_classes, feature_dim, **hparams)`` → a module whose forward takes
    (features, targets) and returns a scalar (center loss)."""
    features: tuple[str, ...] = ()
    """Extra per-image vector inputs the model consumes (e.g. ``("lpq_pc", "phog_pc")``)."""
    pretrained: Callable[..., None] | None = None
    """``pretrained(model, weights)`` loads ``imagenet`` or a file into a built model."""
    pretrain: Callable[..., dict] | None = None
    """``pretrain(model, train_loader, device, **hparams)`` → metrics: a phase the engine runs
    before its supervised loop (the convolutional autoencoder of ``cae-mlp``)."""
    epoch_end: Callable[..., dict] | None = None
    """``epoch_end(model, epoch, **hparams)`` → metrics: called after every epoch (pruning by
    distinctiveness, schedules the engine does not know)."""
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """Input (mean, std) per channel; ``None`` means scale to [-1, 1]."""
    tags: tuple[str, ...] = ()


MODELS: Registry[ModelPlugin] = Registry("model")


def register_model(plugin: ModelPlugin, *aliases: str) -> ModelPlugin:
    """Register a plugin under its name (and aliases); returns it, so modules can keep it."""
    MODELS.register(plugin.name, aliases=aliases)(lambda: plugin)
    return plugin


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not hide the others
            _BROKEN[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if callable(obj) and not isinstance(obj, type(__import__("sys"))):
            obj()


_BROKEN: dict[str, str] = {}
MODELS.add_loader(_load_entry_points)


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def get_model(name: str) -> ModelPlugin:
    return MODELS.create(name)


def create_model(name: str, num_classes: int, **hparams: Any) -> Any:
    plugin = get_model(name)
    options = {**plugin.defaults, **hparams}
    return plugin.build(num_classes, **options)


def broken_plugins() -> Mapping[str, str]:
    """Entry points that failed to load, with why (shown by ``ferdata train --list``)."""
    MODELS.names()
    return dict(_BROKEN)


def require_torch_model(name: str) -> ModelPlugin:
    plugin = get_model(name)
    if plugin.kind != "torch":
        raise FerdataError(f"model {name!r} is a {plugin.kind} model; this needs a neural network")
    return plugin
