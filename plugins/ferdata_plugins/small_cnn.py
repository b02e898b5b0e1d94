"""Paper 004's small CNN (after Lopes et al. 2017): 32×32 RGB input, conv 5×5×32 → max-pool
→ conv 7×7×64 → max-pool → flatten → dropout → dense 256 → dense C. With 8 classes it has
exactly the paper's 367,304 parameters. Adam 1e-4, categorical cross-entropy, flips."""

from __future__ import annotations

from typing import Any

from ferdata.models import ModelPlugin, register_model


def build_small_cnn(num_classes: int, **hp: Any) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 32, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 32 → 28 → 14
        nn.Conv2d(32, 64, kernel_size=7), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 → 8 → 4
        nn.Flatten(), nn.Dropout(float(hp.get("dropout", 0.5))),
        nn.Linear(4 * 4 * 64, 256), nn.ReLU(inplace=True),
        nn.Linear(256, num_classes),
    )


register_model(ModelPlugin(
    name="small-cnn", description="small CNN: 2 conv + pool, dense 256 (367k parameters)", paper="004",
    input_size=32, channels=3, build=build_small_cnn,
    defaults={"optimizer": "adam", "lr": 1e-4, "batch_size": 32, "epochs": 100, "patience": 10, "augment": "flip"}))
