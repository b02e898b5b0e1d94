"""Paper 000's CNN classifiers for SFEW: ``cnn-base`` and its fusion with LPQ/PHOG.

Three convolutional layers (64, 128, 256 filters), each followed by batch norm,
LeakyReLU(0.01) and 2×2 max pooling; the flattened maps go through two fully connected
layers (ReLU, dropout on the first) and a log-softmax, trained with NLL and SGD with
momentum.

Geometry: the paper feeds whole 720×576 SFEW frames with kernel 20 and stride 2 and no
padding, which leaves 256×3×5 maps. ferdata feeds face crops, so the default keeps the
stride and scales the kernel with the input (20 px of 576 ≈ 5 px of 128); ``kernel_size``
and ``stride`` are hyperparameters, and the flattened size is computed from
``input_size``. The paper gives no learning rate, hidden width or dropout rate for this
model; the defaults below are stated as ours.

``cnn-lpqphog`` (the paper's "CNN and PHOG LPQ") adds a fully connected branch on the
10-D LPQ+PHOG vector and concatenates its output with the CNN's first FC output before
the classification layer. The branch standardises its input with the running statistics
of the training samples (the paper standardises the vector over the dataset).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ferdata.errors import FerdataError
from ferdata.models import FEATURE_VECTORS, ModelPlugin, register_model
from ferdata_plugins.layers import RunningStandardize

INPUT_SIZE = 128
CHANNELS = 3
FILTERS = (64, 128, 256)

DEFAULTS: dict[str, Any] = {
    "optimizer": "sgd",  # paper: SGD with momentum
    "lr": 0.01,  # not given in the paper
    "momentum": 0.9,  # value not given in the paper
    "weight_decay": 0.0,
    "epochs": 50,  # not given in the paper
    "batch_size": 32,  # not given in the paper
    "schedule": "none",
    "augment": "none",  # the paper mentions no augmentation
    "dropout": 0.5,  # paper: dropout on the first FC layer; rate not given
    "kernel_size": 5,  # paper: 20 on 720×576 frames, scaled to 128 px crops
    "stride": 2,  # paper: 2
    "negative_slope": 0.01,  # paper: LeakyReLU 0.01 was best
    "fc_hidden": 256,  # not given in the paper
    "feature_hidden": 32,  # width of the LPQ/PHOG branch (fusion only); not given
}


def conv_trunk(channels: int, kernel_size: int, stride: int, negative_slope: float) -> nn.Sequential:
    """conv → batch norm → LeakyReLU → 2×2 max pool, three times (64/128/256)."""
    layers: list[nn.Module] = []
    c_in = channels
    for c_out in FILTERS:
        layers += [
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(negative_slope),
            nn.MaxPool2d(2),
        ]
        c_in = c_out
    return nn.Sequential(*layers)


def flat_size(trunk: nn.Module, channels: int, input_size: int) -> int:
    """Length of the flattened trunk output for one ``input_size`` image."""
    with torch.no_grad():
        was_training = trunk.training
        trunk.eval()
        try:
            out = trunk(torch.zeros(1, channels, input_size, input_size))
        except RuntimeError:
            out = torch.zeros(0)
        finally:
            trunk.train(was_training)
    if out.numel() == 0:
        raise FerdataError(f"input size {input_size} is too small for this kernel_size and stride; use smaller ones")
    return out.numel()


class CnnBase(nn.Module):
    """Paper 000's "CNN base": 3 conv layers + 2 FC layers, log-softmax output."""

    def __init__(
        self,
        num_classes: int,
        channels: int = CHANNELS,
        input_size: int = INPUT_SIZE,
        kernel_size: int = 5,
        stride: int = 2,
        negative_slope: float = 0.01,
        fc_hidden: int = 256,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.trunk = conv_trunk(channels, kernel_size, stride, negative_slope)
        self.fc1 = nn.Linear(flat_size(self.trunk, channels, input_size), fc_hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc_hidden, num_classes)
        self.feature_dim = fc_hidden

    def forward(self, images: torch.Tensor, return_features: bool = False) -> Any:
        hidden = F.relu(self.fc1(torch.flatten(self.trunk(images), 1)))
        scores = F.log_softmax(self.fc2(self.dropout(hidden)), dim=1)
        return (scores, hidden) if return_features else scores


class CnnLpqPhog(nn.Module):
    """Paper 000's "CNN and PHOG LPQ": the CNN's FC features concatenated with a fully
    connected branch on the LPQ+PHOG vector, then one classification layer."""

    def __init__(
        self,
        num_classes: int,
        feature_dim: int = 10,
        channels: int = CHANNELS,
        input_size: int = INPUT_SIZE,
        kernel_size: int = 5,
        stride: int = 2,
        negative_slope: float = 0.01,
        fc_hidden: int = 256,
        feature_hidden: int = 32,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.trunk = conv_trunk(channels, kernel_size, stride, negative_slope)
        self.fc1 = nn.Linear(flat_size(self.trunk, channels, input_size), fc_hidden)
        self.dropout = nn.Dropout(dropout)
        self.feature_branch = nn.Sequential(
            RunningStandardize(feature_dim),
            nn.Linear(feature_dim, feature_hidden),
            nn.ReLU(),
        )
        self.fc2 = nn.Linear(fc_hidden + feature_hidden, num_classes)
        self.feature_dim = fc_hidden + feature_hidden

    def forward(self, images: torch.Tensor, features: torch.Tensor, return_features: bool = False) -> Any:
        cnn = self.dropout(F.relu(self.fc1(torch.flatten(self.trunk(images), 1))))
        fused = torch.cat([cnn, self.feature_branch(features.float())], dim=1)
        scores = F.log_softmax(self.fc2(fused), dim=1)
        return (scores, fused) if return_features else scores


def _geometry(hp: dict[str, Any]) -> dict[str, Any]:
    return {
        "kernel_size": int(hp.get("kernel_size", DEFAULTS["kernel_size"])),
        "stride": int(hp.get("stride", DEFAULTS["stride"])),
        "negative_slope": float(hp.get("negative_slope", DEFAULTS["negative_slope"])),
        "fc_hidden": int(hp.get("fc_hidden", DEFAULTS["fc_hidden"])),
        "dropout": float(hp.get("dropout", DEFAULTS["dropout"])),
    }


def build_cnn_base(num_classes: int, **hp: Any) -> CnnBase:
    return CnnBase(num_classes, **_geometry(hp))


def build_cnn_lpqphog(num_classes: int, **hp: Any) -> CnnLpqPhog:
    return CnnLpqPhog(
        num_classes,
        feature_dim=len(FEATURE_VECTORS["lpqphog"]),
        feature_hidden=int(hp.get("feature_hidden", DEFAULTS["feature_hidden"])),
        **_geometry(hp),
    )


CNN_BASE = register_model(
    ModelPlugin(
        name="cnn-base",
        description="3 conv (64/128/256, BN, LeakyReLU 0.01, max pool) + 2 FC with dropout, log-softmax/NLL, SGD",
        paper="000",
        input_size=INPUT_SIZE,
        channels=CHANNELS,
        build=build_cnn_base,
        defaults={k: v for k, v in DEFAULTS.items() if k != "feature_hidden"},
        tags=("sfew", "from-scratch"),
    )
)

CNN_LPQPHOG = register_model(
    ModelPlugin(
        name="cnn-lpqphog",
        description="cnn-base fused with a fully connected branch on the 10-D LPQ+PHOG vector",
        paper="000",
        input_size=INPUT_SIZE,
        channels=CHANNELS,
        build=build_cnn_lpqphog,
        defaults=dict(DEFAULTS),
        features=("lpqphog",),
        tags=("sfew", "from-scratch", "fusion"),
    )
)
