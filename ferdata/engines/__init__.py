"""Where work runs. ``create_executor('local', workers=N)`` is the default; a distributed
engine registers itself under another name and implements :class:`Executor`."""

from __future__ import annotations

from ferdata.engines.base import Executor, default_chunksize
from ferdata.engines.local import InlineExecutor, ProcessPoolExecutor, available_cores
from ferdata.registry import Registry

ENGINES: Registry[Executor] = Registry("engine")
ENGINES.register("local")(ProcessPoolExecutor)
ENGINES.register("inline")(InlineExecutor)


def create_executor(name: str = "local", **options) -> Executor:
    if name == "inline":
        return ENGINES.create(name)
    return ENGINES.create(name, **options)


def list_engines() -> list[str]:
    return ENGINES.names()


__all__ = ["ENGINES", "Executor", "InlineExecutor", "ProcessPoolExecutor", "available_cores",
           "create_executor", "default_chunksize", "list_engines"]
