"""Checks every first-party model plugin must pass; the test modules parametrise them over
the plugins their plugin module registers."""

from __future__ import annotations

from types import ModuleType

import torch

from ferdata.models import FEATURE_VECTORS, ModelPlugin, create_model, get_model, list_models

VOCABULARY_OPTIMIZERS = {"sgd", "adam", "adamw"}
VOCABULARY_SCHEDULES = {"none", "step", "cosine", "plateau"}
AUGMENTATIONS = {"flip", "crop", "rotate", "scale", "all", "none"}


def names_from(module: ModuleType) -> list[str]:
    """Every registered model whose ``build`` lives in ``module``."""
    return [n for n in list_models() if get_model(n).build.__module__ == module.__name__]


def feature_dim(plugin: ModelPlugin) -> int:
    return sum(len(FEATURE_VECTORS[f]) for f in plugin.features)


def inputs(plugin: ModelPlugin, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The positional inputs the engine passes: images (unless image-less), then features."""
    g = torch.Generator().manual_seed(seed)
    args: list[torch.Tensor] = []
    if plugin.input_size:
        args.append(torch.rand(batch, plugin.channels, plugin.input_size, plugin.input_size, generator=g) * 2 - 1)
    if plugin.features:
        args.append(torch.randn(batch, feature_dim(plugin), generator=g))
    return tuple(args)


def check_forward_backward(name: str, num_classes: int, batch: int = 4, **hparams) -> torch.nn.Module:
    """Build, forward and backward on CPU: right shapes, finite gradients on every trainable
    parameter, and penultimate features of ``model.feature_dim``."""
    plugin = get_model(name)
    model = create_model(name, num_classes, **hparams)
    model.train()
    args = inputs(plugin, batch)
    scores, feats = model(*args, return_features=True)
    assert scores.shape == (batch, num_classes)
    assert feats.shape == (batch, model.feature_dim)
    targets = torch.arange(batch) % num_classes
    torch.nn.functional.cross_entropy(scores, targets).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable
    for p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in trainable)
    assert model(*args).shape == (batch, num_classes)
    return model


def check_defaults(name: str) -> None:
    """Defaults speak the shared hyperparameter vocabulary of ``ferdata.models``."""
    plugin = get_model(name)
    d = plugin.defaults
    if plugin.kind == "torch":
        assert d["optimizer"] in VOCABULARY_OPTIMIZERS
        assert d["schedule"] in VOCABULARY_SCHEDULES
        assert d["lr"] > 0 and d["epochs"] > 0 and d["batch_size"] > 0
        if d["schedule"] == "step":
            assert 0 < d["gamma"] < 1 and d["step_size"] > 0
        if plugin.input_size:
            assert set(d.get("augment", "none").split(",")) <= AUGMENTATIONS
