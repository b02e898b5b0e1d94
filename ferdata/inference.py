"""A trained run as a classifier: its plugin, its best weights, its classes and the exact
input preparation training used (decode, resize whole to the plugin's size, grey or RGB,
the plugin's normalisation). Reports (Grad-CAM) and ``ferdata predict`` share it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferdata.errors import FerdataError
from ferdata.training.runs import CONFIG, checkpoint_path, fold_runs, read_json
from ferdata.training.weights import torch_load

@dataclass
class RunModel:
    """A run's network in eval mode on the CPU, ready for batches of decoded images."""

    run_dir: Path
    config: dict[str, Any]
    plugin: Any
    model: Any
    classes: list[str]

    @property
    def size(self) -> int:
        return int(self.plugin.input_size)

    @property
    def channels(self) -> int:
        return int(self.plugin.channels)

    def resize(self, image: np.ndarray) -> np.ndarray:
        """uint8 image (any size, grey or RGB) → uint8 size×size in the model's channels,
        resized whole with bilinear filtering as training decoded its images."""
        from PIL import Image

        arr = image
        if self.channels == 1 and arr.ndim == 3:
            arr = np.asarray(Image.fromarray(arr).convert("L"))
        elif self.channels == 3 and arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        im = Image.fromarray(np.ascontiguousarray(arr))
        if im.size != (self.size, self.size):
            im = im.resize((self.size, self.size), Image.BILINEAR)
        return np.asarray(im, np.uint8)

    def tensor(self, images: Sequence[np.ndarray]) -> Any:
        """Resized uint8 images (from :meth:`resize`) → a normalised float batch N×C×S×S."""
        import torch

        arr = np.stack([im[None] if im.ndim == 2 else im.transpose(2, 0, 1) for im in images]).astype(np.float32)
        mean, std = self.plugin.normalize or ((0.5,) * self.channels, (0.5,) * self.channels)
        mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1) * 255.0
        std = np.asarray(std, np.float32).reshape(1, -1, 1, 1) * 255.0
        return torch.from_numpy((arr - mean) / std)

    def predict_proba(self, batch: Any) -> np.ndarray:
        """Softmax probabilities (float64, rows sum to 1) of a prepared batch."""
        import torch

        with torch.inference_mode():
            out = self.model(batch)
            logits = out[0] if isinstance(out, tuple) else out
            return torch.softmax(logits.float(), dim=1).double().numpy()


def load_run_model(run: str | os.PathLike, *, fold_index: int = 0) -> RunModel:
    """The network of a run (the first fold of a fold group unless told otherwise)."""
    from ferdata.models import get_model

    runs = fold_runs(Path(run))
    if not 0 <= fold_index < len(runs):
        raise FerdataError(f"{run} has {len(runs)} fold run(s); fold index {fold_index} does not exist")
    run_dir = runs[fold_index]
    config = read_json(run_dir / CONFIG)
    ckpt = torch_load(checkpoint_path(run_dir))
    name = ckpt.get("plugin") or config.get("plugin") or config.get("model")
    if not name:
        raise FerdataError(f"{run_dir}: neither the checkpoint nor {CONFIG} names the model")
    plugin = get_model(name)
    if plugin.kind != "torch" or plugin.features:
        raise FerdataError(f"model {name!r} is not an image-only neural network; it cannot be explained or run on faces")
    classes = list(ckpt.get("classes") or config.get("classes") or [])
    if not classes:
        raise FerdataError(f"{run_dir}: the checkpoint lists no classes")
    try:  # as the engine builds it: the plugin's defaults under the run's resolved hyperparameters
        model = plugin.build(len(classes), **{**plugin.defaults, **(config.get("hparams") or {})})
    except TypeError as exc:
        raise FerdataError(f"model {name!r} rejected the run's hyperparameters ({exc})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as exc:
        raise FerdataError(f"{run_dir}: the checkpoint does not fit model {name!r} ({str(exc).splitlines()[0]})") from None
    model.eval()
    return RunModel(run_dir, config, plugin, model, classes)
