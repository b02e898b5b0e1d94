"""Extra losses the engine adds to the classification loss."""

from __future__ import annotations

import torch
from torch import nn


class CenterLoss(nn.Module):
    """Center loss (Wen et al. 2016) as paper 001 uses it: ``λ/2 · mean ||x_i − c_{y_i}||²``.

    The class centers are not learned by the optimiser; after each training batch they move
    towards their class's features with rate ``alpha`` (``Δc_j = Σ(c_j − x_i) / (1 + n_j)``).
    ``weight`` is λ; paper 001 uses λ = α = 0.001. Forward returns the weighted term.
    """

    def __init__(self, num_classes: int, feature_dim: int, weight: float = 0.001, alpha: float = 0.001) -> None:
        super().__init__()
        self.weight = weight
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, feature_dim))

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        features = features.flatten(1)
        centers = self.centers[targets]
        loss = 0.5 * (features - centers.to(features.dtype)).pow(2).sum(dim=1).mean()
        if self.training:
            self._update(features.detach().float(), targets)
        return self.weight * loss

    @torch.no_grad()
    def _update(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        diff = self.centers[targets] - features
        delta = torch.zeros_like(self.centers).index_add_(0, targets, diff)
        counts = torch.bincount(targets, minlength=self.centers.shape[0]).to(features.dtype)
        self.centers -= self.alpha * delta / (1.0 + counts).unsqueeze(1)


def center_loss(num_classes: int, feature_dim: int, **hparams: object) -> CenterLoss:
    """The ``extra_loss`` factory plugins can name, and what ``--center-loss`` uses."""
    return CenterLoss(num_classes, feature_dim, weight=float(hparams.get("center_loss_weight", 0.001)),
                      alpha=float(hparams.get("center_loss_alpha", 0.001)))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against a target distribution (FER+'s vote shares): ``-Σ q_c log p_c``,
    averaged over the batch; ``weight`` scales each class's term (``--class-weights``)."""
    logp = torch.log_softmax(logits, dim=1)
    terms = -target * logp
    if weight is not None:
        terms = terms * weight.to(terms.dtype).unsqueeze(0)
    return terms.sum(dim=1).mean()
