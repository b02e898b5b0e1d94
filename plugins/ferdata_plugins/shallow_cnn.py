"""Paper 003's shallow CNN for FER-2013 (68.39% alone, 70.24% in the soft-voting ensemble).

Four convolution blocks, each convolution → batch norm → ReLU → 2×2 max pool → dropout
0.25, then dense layers 256 and 512 (ReLU, dropout 0.25) and the output layer: "four 2D
convolutions with batch normalization before activating function and 25% dropout layer
after ReLU. The top of our model are 3 Dense Layer (256, 512, 7)". The filter counts and
kernel sizes are in the paper's Fig. 1, which the text copy lacks; we use the widely used
FER-2013 shallow network this describes (64 3×3, 128 5×5, 512 3×3, 512 3×3). Training:
Adam at 1e-3 with a reduce-on-plateau schedule, 60 epochs, augmentation by ±10% scaling,
horizontal flips and ±10° rotations; the batch size and the schedule's factor and
patience are not given (the engine's are used).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin, register_model

INPUT_SIZE = 48
CHANNELS = 1
BLOCKS = ((64, 3), (128, 5), (512, 3), (512, 3))

DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",  # paper
    "lr": 1e-3,  # paper
    "weight_decay": 0.0,
    "epochs": 60,  # paper
    "batch_size": 64,  # not given
    "schedule": "plateau",  # paper: "a reducing learning rate scheduler"
    "augment": "flip,rotate,scale",  # paper: ±10% scale, horizontal flips, ±10° rotation
    "dropout": 0.25,  # paper
}


class ShallowCnn(nn.Module):
    def __init__(self, num_classes: int, channels: int = CHANNELS, input_size: int = INPUT_SIZE,
                 dropout: float = 0.25) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out, k in BLOCKS:
            layers += [
                nn.Conv2d(c_in, c_out, k, padding=k // 2),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Dropout(dropout),
            ]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        side = input_size // 2 ** len(BLOCKS)
        if side < 1:
            raise FerdataError(f"shallow-cnn: input size {input_size} is too small for {len(BLOCKS)} pooling stages; "
                               f"use at least {2 ** len(BLOCKS)}")
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, 512),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(512, num_classes)
        self.feature_dim = 512

    def forward(self, images: torch.Tensor, return_features: bool = False) -> Any:
        features = self.dense(self.trunk(images))
        scores = self.out(self.dropout(features))
        return (scores, features) if return_features else scores


def build(num_classes: int, **hp: Any) -> ShallowCnn:
    return ShallowCnn(
        num_classes,
        dropout=float(hp.get("dropout", DEFAULTS["dropout"])),
    )


SHALLOW_CNN = register_model(
    ModelPlugin(
        name="shallow-cnn",
        description="4 conv blocks (BN, ReLU, max pool, dropout 0.25) + dense 256/512, Adam 1e-3, plateau schedule",
        paper="003",
        input_size=INPUT_SIZE,
        channels=CHANNELS,
        build=build,
        defaults=dict(DEFAULTS),
        tags=("fer2013", "from-scratch"),
    )
)
