"""Hyperparameters: engine defaults < plugin defaults < ``--hp KEY=VALUE`` < explicit options.

The engine reads these keys; plugins receive all of them in ``build(num_classes, **hparams)``
and may add their own (``regularizer``, ``dropout``, ``blocks``...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ferdata.errors import FerdataError
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


def parse_hp(items: Iterable[str] | None) -> dict[str, Any]:
    """``["lr=0.01", "regularizer=prune"]`` → dict, values parsed as JSON when they are JSON."""
    return parse_key_values(items, option="--hp", example="lr=0.01")


def resolve(plugin_defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    hp = {**ENGINE_DEFAULTS, **dict(plugin_defaults)}
    hp.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("epochs", "batch_size", "patience", "step_size"):
        hp[key] = int(hp[key])
    for key in ("lr", "momentum", "weight_decay", "gamma", "center_loss_weight", "center_loss_alpha", "grad_clip"):
        hp[key] = float(hp[key])
    if hp["epochs"] < 1 or hp["batch_size"] < 1:
        raise FerdataError("--epochs and --batch-size must be at least 1")
    if hp["class_weights"] not in ("none", "balanced"):
        raise FerdataError(f"--class-weights {hp['class_weights']!r}: use none or balanced")
    if hp["targets"] not in ("labels", "votes"):
        raise FerdataError(f"--targets {hp['targets']!r}: use labels or votes")
    if hp["monitor"] not in ("val_loss", "val_accuracy"):
        raise FerdataError(f"monitor {hp['monitor']!r}: use val_loss or val_accuracy")
    return hp
