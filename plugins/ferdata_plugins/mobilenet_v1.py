"""MobileNet V1 (Howard et al., 2017) as paper 001 uses it for 48×48 grey faces.

torchvision ships no MobileNet V1, so it is defined here: a 3×3 stride-2 convolution,
13 depthwise-separable blocks (3×3 depthwise + 1×1 pointwise, each with batch norm and
ReLU), global average pooling, dropout 0.5 and the classification layer. ``width_mult``
is the paper's width multiplier α (channels × α, rounded to a multiple of 8).

Paper 001's training: SGD, momentum 0.9, weight decay 4e-5, batch 64, initial lr 0.045
for the second ("refined") stage (0.01 for the first), decayed ×0.94 every 15 epochs,
dropout 0.5 after the average pool, and optionally the center loss (Wen et al., 2016)
on the pooled features with λ = α = 0.001: ``--center-loss`` (``center_loss``,
``center_loss_weight``, ``center_loss_alpha``) turns on the engine's center loss, which
taps the input of the last linear layer; the classifier is a :class:`DropoutLinear`, so
that input is the pooled vector before dropout, as in the paper. The paper gives no
epoch count; ours is stated below.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin, register_model
from ferdata_plugins.layers import DropoutLinear

INPUT_SIZE = 48
CHANNELS = 1

#: (output channels, stride) of the 13 depthwise-separable blocks
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)

DEFAULTS: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": 0.045,
    "momentum": 0.9,
    "weight_decay": 4e-5,
    "epochs": 100,  # not given in the paper
    "batch_size": 64,
    "schedule": "step",
    "gamma": 0.94,
    "step_size": 15,
    "augment": "flip,crop",  # paper: random crops of 0.85-1 of the area, horizontal flips
    "dropout": 0.5,
    "width_mult": 1.0,
    "center_loss": False,
    "center_loss_weight": 0.001,
    "center_loss_alpha": 0.001,
}


def _width(channels: int, width_mult: float) -> int:
    return max(8, int(channels * width_mult + 4) // 8 * 8)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int, channels: int = CHANNELS, width_mult: float = 1.0,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if width_mult <= 0:
            raise FerdataError(f"mobilenet-v1: width_mult must be positive (e.g. 0.5, 1.0), got {width_mult}")
        c_in = _width(32, width_mult)
        layers: list[nn.Module] = [_conv_bn(channels, c_in, 3, 2)]
        for c, stride in BLOCKS:
            c_out = _width(c, width_mult)
            layers.append(nn.Sequential(_conv_bn(c_in, c_in, 3, stride, groups=c_in), _conv_bn(c_in, c_out, 1, 1)))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = DropoutLinear(c_in, num_classes, p=dropout)
        self.feature_dim = c_in
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor, return_features: bool = False) -> Any:
        pooled = torch.flatten(self.pool(self.features(images)), 1)
        scores = self.classifier(pooled)
        return (scores, pooled) if return_features else scores


def build(num_classes: int, **hp: Any) -> MobileNetV1:
    return MobileNetV1(
        num_classes,
        width_mult=float(hp.get("width_mult", DEFAULTS["width_mult"])),
        dropout=float(hp.get("dropout", DEFAULTS["dropout"])),
    )


def param_groups(model: nn.Module, **hp: Any) -> list[dict]:
    """Paper 001 puts the weight decay "on the model weights": not on batch-norm scales
    and shifts, nor on biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


MOBILENET_V1 = register_model(
    ModelPlugin(
        name="mobilenet-v1",
        description="MobileNet V1 (defined in code, width multiplier), SGD 0.045 ×0.94/15 epochs, optional center loss",
        paper="001",
        input_size=INPUT_SIZE,
        channels=CHANNELS,
        build=build,
        defaults=dict(DEFAULTS),
        param_groups=param_groups,
        tags=("from-scratch", "center-loss"),
    )
)
