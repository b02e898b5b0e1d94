"""Where a network looks: Grad-CAM (the ``grad-cam`` package) on its last convolution,
and vanilla-gradient saliency on the input pixels, as paper 003 shows them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ferdata.errors import FerdataError


def last_conv(model: Any) -> Any:
    """The last 2-D convolution: its activations keep the most semantics with a spatial layout."""
    from torch import nn

    last = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last = module
    if last is None:
        raise FerdataError(f"{type(model).__name__} has no 2-D convolution; Grad-CAM needs one")
    return last


def scores_only(model: Any) -> Any:
    """``model`` as a module whose forward returns only class scores (some plugins return
    ``(scores, features)``), which is what Grad-CAM's targets index."""
    from torch import nn

    class ScoresOnly(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return out[0] if isinstance(out, tuple) else out

    return ScoresOnly(model).eval()


def grad_cam(model: Any, batch: Any, targets: list[int]) -> np.ndarray:
    """N×H×W maps in [0, 1] at the input's size, one per image for its target class."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=scores_only(model), target_layers=[last_conv(model)]) as cam:
        maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return np.asarray(maps, np.float64)


def saliency(model: Any, batch: Any, targets: list[int]) -> np.ndarray:
    """N×H×W maps in [0, 1]: |∂ score_target / ∂ pixel|, max over channels, per image scaled."""
    import torch

    x = batch.detach().clone().requires_grad_(True)
    out = model(x)
    scores = out[0] if isinstance(out, tuple) else out
    chosen = scores.gather(1, torch.as_tensor(targets, dtype=torch.long).view(-1, 1)).sum()
    model.zero_grad(set_to_none=True)
    chosen.backward()
    grad = x.grad.detach().abs().amax(dim=1).numpy().astype(np.float64)
    peak = grad.reshape(len(grad), -1).max(axis=1).reshape(-1, 1, 1)
    return grad / np.where(peak > 0, peak, 1.0)
