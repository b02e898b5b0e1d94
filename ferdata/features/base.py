"""What every descriptor offers the feature pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Descriptor(ABC):
    """Turns a batch of equally sized grey faces into fixed-length vectors.

    Subclasses set ``name`` and implement :meth:`compute`, :meth:`length` and
    :meth:`params` (JSON-friendly, enough to rebuild the descriptor with
    ``create_descriptor(name, **params)``).
    """

    name: str = ""

    @abstractmethod
    def compute(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 → (N, D) float64."""

    @abstractmethod
    def length(self, height: int, width: int) -> int:
        """D for a face of this size."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The options that define the output (stored in features.parquet's metadata)."""

    def min_size(self) -> int:
        """The smallest face side this descriptor accepts."""
        return 1

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
