"""Soft-voting ensemble (paper 003): the mean of the member runs' class probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ferdata.models import ModelPlugin, register_model


class SoftVote:
    """Combines members' probability matrices (rows aligned, same class order) by their mean."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def combine(self, member_probs: Sequence[np.ndarray]) -> np.ndarray:
        stack = np.stack([np.asarray(p, np.float64) for p in member_probs])
        if stack.shape[2] != self.num_classes:
            raise ValueError(f"members give {stack.shape[2]} classes, expected {self.num_classes}")
        return stack.mean(axis=0)


def _build(num_classes: int, **hp: Any) -> SoftVote:
    return SoftVote(num_classes)


register_model(ModelPlugin(
    name="ensemble", description="soft voting: mean of the member runs' probabilities", paper="003",
    input_size=0, channels=3, build=_build, kind="ensemble"))
