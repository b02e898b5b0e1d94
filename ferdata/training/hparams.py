"""Hyperparameters: engine defaults < plugin defaults < ``--hp KEY=VALUE`` < explicit options.

The engine reads these keys; plugins receive all of them in ``build(num_classes, **hparams)``
and may add their own (``regularizer``, ``dropout``, ``blocks``...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ferdata.errors import FerdataError, arg
from ferdata.keyvalues import parse_key_values

ENGINE_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",          # sgd | adam | adamw
    "lr": 1e-3,
    "momentum": 0.9,              # sgd only
    "nesterov": False,
    "weight_decay": 0.0,
    "schedule": "none",           # none | step (×gamma every step_size epochs) | cosine | plateau
    "step_size": 15,
    "gamma": 0.94,
    "epochs": 30,
    "batch_size": 32,
    "patience": 10,               # early stopping on the val role; 0 turns it off
    "monitor": "val_loss",        # val_loss | val_accuracy: early stopping and the best checkpoint
    "augment": "flip",            # comma list of flip, crop, rotate, scale; all; none
    "class_weights": "none",      # none | balanced (paper 004)
    "center_loss": False,
    "center_loss_weight": 0.001,  # λ (paper 001)
    "center_loss_alpha": 0.001,   # α (paper 001)
    "grad_clip": 0.0,
    "weights": "none",            # none | imagenet | PATH
    "targets": "labels",          # labels | votes (soft cross-entropy on the votes_<label> distribution)
}


def input_size(plugin: Any, hp: Mapping[str, Any] | None) -> int:
    """The side a run decodes its images at: ``hp["input_size"]`` when set (``--hp input_size=48``:
    an ImageNet network on FER-2013's 48-px faces, as paper 001 ran MobileNet), else the plugin's."""
    value = (hp or {}).get("input_size")
    if value in (None, "", 0):
        return int(plugin.input_size)
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise FerdataError(f"input_size {value!r} is not a whole number of pixels (e.g. {arg('hparams')} input_size=48)") from None
    if size < 8:
        raise FerdataError(f"input_size {size} is too small; use at least 8 pixels")
    return size


def parse_hp(items: Iterable[str] | None) -> dict[str, Any]:
    """``["lr=0.01", "regularizer=prune"]`` → dict, values parsed as JSON when they are JSON."""
    return parse_key_values(items, option=arg("hparams"), example="lr=0.01")


def resolve(plugin_defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    hp = {**ENGINE_DEFAULTS, **dict(plugin_defaults)}
    hp.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("epochs", "batch_size", "patience", "step_size"):
        hp[key] = int(hp[key])
    for key in ("lr", "momentum", "weight_decay", "gamma", "center_loss_weight", "center_loss_alpha", "grad_clip"):
        hp[key] = float(hp[key])
    if hp["epochs"] < 1 or hp["batch_size"] < 1:
        raise FerdataError(f"{arg('epochs')} and {arg('batch_size')} must be at least 1")
    if hp["class_weights"] not in ("none", "balanced"):
        raise FerdataError(f"{arg('class_weights')} {hp['class_weights']!r}: use none or balanced")
    if hp["targets"] not in ("labels", "votes"):
        raise FerdataError(f"{arg('targets')} {hp['targets']!r}: use labels or votes")
    if hp["monitor"] not in ("val_loss", "val_accuracy"):
        raise FerdataError(f"monitor {hp['monitor']!r}: use val_loss or val_accuracy")
    return hp
