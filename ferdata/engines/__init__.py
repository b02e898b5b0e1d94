"""Where work runs. ``create_executor('local', workers=N)`` is the default; ``'ray'`` runs
the same chunks on a Ray cluster (the optional ``ray`` extra); ``create_executor()`` with no
name takes ``$FERDATA_ENGINE``. Another engine registers itself under its own name (here or
through the ``ferdata.engines`` entry-point group) and implements :class:`Executor`."""

from __future__ import annotations

from ferdata.engines._registry import (ENGINES, close_executor, create_executor, default_engine, list_engines,
                                       register_engine)
from ferdata.engines.base import Executor, default_chunksize
from ferdata.engines.local import InlineExecutor, ProcessPoolExecutor, available_cores, kept_pool

__all__ = ["ENGINES", "Executor", "InlineExecutor", "ProcessPoolExecutor", "available_cores", "close_executor",
           "create_executor", "default_chunksize", "default_engine", "kept_pool", "list_engines",
           "register_engine"]
