"""Where work runs. ``create_executor('local', workers=N)`` is the default; a distributed
engine registers itself under another name (here or through the ``ferdata.engines``
entry-point group) and implements :class:`Executor`."""

from __future__ import annotations

from ferdata.engines._registry import ENGINES, create_executor, list_engines, register_engine
from ferdata.engines.base import Executor, default_chunksize
from ferdata.engines.local import InlineExecutor, ProcessPoolExecutor, available_cores

__all__ = ["ENGINES", "Executor", "InlineExecutor", "ProcessPoolExecutor", "available_cores",
           "create_executor", "default_chunksize", "list_engines", "register_engine"]
