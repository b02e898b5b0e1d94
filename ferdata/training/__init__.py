"""Training and evaluation of model plugins on manifest splits.

Public calls: :func:`train` (one fold or ``fold="all"``), :func:`evaluate` (a finished
run, or a run on another manifest), :func:`list_model_rows`. Names resolve on first use
(PEP 562), so importing :mod:`ferdata.training.runs` does not pay for the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferdata.lazy import lazy_exports

_EXPORTS = {
    "RunResult": "ferdata.training.api",
    "train": "ferdata.training.api",
    "evaluate": "ferdata.training.evaluate",
    "list_model_rows": "ferdata.training.evaluate",
}

if TYPE_CHECKING:
    from ferdata.training.api import RunResult, train
    from ferdata.training.evaluate import evaluate, list_model_rows


__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
