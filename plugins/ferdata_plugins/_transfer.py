"""Shared pieces of the first-party transfer-learning plugins: ImageNet weights through
torchvision's enums (or a timm file URL), ImageNet normalisation, head replacement."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

IMAGENET_NORMALIZE = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def torchvision_weights(enum_name: str) -> Callable[[Any, str], dict]:
    """A ``pretrained(model, weights)`` hook for the torchvision weights enum member ``enum_name``
    (``"ResNet18_Weights.IMAGENET1K_V1"``), resolved only when weights are asked for."""

    def pretrained(model: Any, weights: str) -> dict:
        from torchvision.models import get_weight

        from ferdata.training.weights import load_weights

        return load_weights(model, weights, get_weight(enum_name) if weights == "imagenet" else None)

    return pretrained


def url_weights(url: str) -> Callable[[Any, str], dict]:
    """The same for a model whose ImageNet file is a plain URL (timm's legacy Xception)."""

    def pretrained(model: Any, weights: str) -> dict:
        from ferdata.training.weights import load_weights

        return load_weights(model, weights, SimpleNamespace(url=url) if weights == "imagenet" else None)

    return pretrained


def trainable(model: Any, *prefixes: str) -> list[dict]:
    """One optimiser group with the parameters whose names start with ``prefixes``."""
    params = [p for n, p in model.named_parameters() if any(n.startswith(pre) for pre in prefixes)]
    return [{"params": params}]
