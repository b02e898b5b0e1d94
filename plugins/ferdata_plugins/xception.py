"""Xception (timm's ``legacy_xception``, the original architecture), paper 004: 299×299 RGB,
Adam 1e-4, flips, all layers fine-tuned with a new classifier."""

from __future__ import annotations

from typing import Any

from ferdata.models import ModelPlugin, register_model
from ferdata_plugins._transfer import url_weights

#: timm's ImageNet file for legacy_xception (a torch-hub style name with its sha256 prefix).
XCEPTION_URL = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth"


def _xception(num_classes: int, **hp: Any) -> Any:
    import timm

    return timm.create_model("legacy_xception", pretrained=False, num_classes=num_classes)


register_model(ModelPlugin(
    name="xception", description="Xception (timm legacy_xception), all layers fine-tuned", paper="004",
    input_size=299, channels=3, build=_xception,
    defaults={"optimizer": "adam", "lr": 1e-4, "batch_size": 32, "epochs": 30, "augment": "flip"},
    pretrained=url_weights(XCEPTION_URL), normalize=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), tags=("transfer", "heavy")))
