"""Small layers shared by the first-party plugins."""

from __future__ import annotations

import torch
from torch import nn


class RunningStandardize(nn.Module):
    """Standardise a feature vector with the mean and variance of every training sample
    seen so far (paper 000 standardises LPQ/PHOG "on the entire dataset").

    Unlike a batch norm it does not depend on the batch: a last batch of one sample trains
    fine, and train and eval use the same statistics. The statistics are buffers, so they
    are saved in checkpoints and broadcast by DistributedDataParallel.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float32))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float32))
        self.register_buffer("m2", torch.zeros(dim, dtype=torch.float32))

    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        """Chan et al.'s parallel merge of the batch's moments into the running ones."""
        x = x.detach().to(torch.float32)
        n_b = float(x.shape[0])
        mean_b = x.mean(0)
        m2_b = ((x - mean_b) ** 2).sum(0)
        n_a = self.count.clone()
        total = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * (n_b / total)
        self.m2 += m2_b + delta**2 * (n_a * n_b / total)
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 0:
            self._update(x)
        # before two samples there is no variance: centre only (no device sync needed)
        var = torch.where(self.count > 1, self.m2 / (self.count - 1).clamp_min(1), torch.ones_like(self.m2))
        return ((x - self.mean) / torch.sqrt(var + self.eps)).to(x.dtype)


class DropoutLinear(nn.Linear):
    """Dropout on the input, then a linear layer, as one layer.

    The same function as ``nn.Sequential(nn.Dropout(p), nn.Linear(...))`` with the same
    parameter names, but the layer's input is the clean (pre-dropout) feature vector, so a
    hook on the model's last linear layer — how the engine taps features for the center
    loss — sees the pooled features paper 001 pulls towards their class centres.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.dropout(x, self.p, self.training))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
