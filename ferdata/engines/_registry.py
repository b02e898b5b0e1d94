"""The engine registry (a leaf: engines import it, it imports none until first use)."""

from __future__ import annotations

from typing import Any

from ferdata.engines.base import Executor
from ferdata.registry import Registry

ENGINES: Registry[Executor] = Registry("engine", builtins=("ferdata.engines.local",),
                                       entry_point_group="ferdata.engines")
register_engine = ENGINES.register
list_engines = ENGINES.list


def create_executor(name: str = "local", **options: Any) -> Executor:
    """An executor of engine ``name``; ``inline`` takes no options (it is one process)."""
    if name == "inline":
        return ENGINES.create(name)
    return ENGINES.create(name, **options)
