"""ResNets fine-tuned on faces.

Paper 000 (Huang): ResNet18–152 pretrained on ImageNet with a new 7-way fully connected
layer; LLF trains only that last layer, ALF trains all layers; SGD without momentum,
lr 5e-4, cross-entropy. Paper 002 (Chen): ResNet18 with the last n blocks transferred
(n=1: the FC layer, n=2: + layer4, n=3: + layer3; n=2 best), Adam, cross-entropy, on
160×160 MTCNN faces.
"""

from __future__ import annotations

from typing import Any

from ferdata.models import ModelPlugin, register_model
from ferdata_plugins._transfer import IMAGENET_NORMALIZE, torchvision_weights, trainable

DEPTHS = (18, 34, 50, 101, 152)
PAPER_000_DEFAULTS = {"optimizer": "sgd", "lr": 5e-4, "momentum": 0.0, "weight_decay": 0.0,
                      "epochs": 30, "batch_size": 32, "augment": "flip"}
PAPER_002_DEFAULTS = {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "epochs": 20,
                      "batch_size": 32, "augment": "flip"}
#: What each "last n blocks" variant trains (paper 002).
LAST_BLOCKS = {1: ("fc.",), 2: ("layer4.", "fc."), 3: ("layer3.", "layer4.", "fc.")}


def _builder(depth: int):  # noqa: ANN202
    def build(num_classes: int, **hparams: Any) -> Any:
        import torchvision

        return getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)

    return build


def _llf(model: Any, **hparams: Any) -> list[dict]:
    return trainable(model, "fc.")


def _last_n(n: int):  # noqa: ANN202
    def groups(model: Any, **hparams: Any) -> list[dict]:
        return trainable(model, *LAST_BLOCKS[n])

    return groups


for _depth in DEPTHS:
    _weights = torchvision_weights(f"ResNet{_depth}_Weights.IMAGENET1K_V1")
    register_model(ModelPlugin(
        name=f"resnet{_depth}-llf", description=f"ResNet{_depth}, last layer fine-tuned (LLF)", paper="000",
        input_size=224, channels=3, build=_builder(_depth), defaults=PAPER_000_DEFAULTS, param_groups=_llf,
        pretrained=_weights, normalize=IMAGENET_NORMALIZE, tags=("transfer",)))
    register_model(ModelPlugin(
        name=f"resnet{_depth}-alf", description=f"ResNet{_depth}, all layers fine-tuned (ALF)", paper="000",
        input_size=224, channels=3, build=_builder(_depth), defaults=PAPER_000_DEFAULTS,
        pretrained=_weights, normalize=IMAGENET_NORMALIZE, tags=("transfer",)))

for _n in LAST_BLOCKS:
    register_model(ModelPlugin(
        name=f"resnet18-last{_n}", description=f"ResNet18 with the last {_n} block(s) trained", paper="002",
        input_size=160, channels=3, build=_builder(18), defaults=PAPER_002_DEFAULTS, param_groups=_last_n(_n),
        pretrained=torchvision_weights("ResNet18_Weights.IMAGENET1K_V1"), normalize=IMAGENET_NORMALIZE,
        tags=("transfer",)))
