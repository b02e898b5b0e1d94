"""The engine registry (a leaf: engines import it, it imports none until first use)."""

from __future__ import annotations

import os
from typing import Any

from ferdata.engines.base import Executor
from ferdata.errors import FerdataError
from ferdata.registry import Registry

#: ``ray_engine`` imports Ray only when a Ray executor is created, so listing is cheap.
ENGINES: Registry[Executor] = Registry("engine", builtins=("ferdata.engines.local", "ferdata.engines.ray_engine"),
                                       entry_point_group="ferdata.engines")
register_engine = ENGINES.register
list_engines = ENGINES.list
ENV_ENGINE = "FERDATA_ENGINE"


def default_engine() -> str:
    """``$FERDATA_ENGINE`` when set, else ``local``."""
    return os.environ.get(ENV_ENGINE) or "local"


def create_executor(name: str | None = None, **options: Any) -> Executor:
    """An executor of engine ``name`` (default :func:`default_engine`); ``inline`` takes no
    options (it is one process); ``address`` (a Ray cluster to join) is for ``ray`` only."""
    name = name or default_engine()
    if name == "inline":
        return ENGINES.create(name)
    if name != "ray" and options.pop("address", None) is not None:
        raise FerdataError(f"a Ray address needs the ray engine (the {name} engine runs on this machine)")
    return ENGINES.create(name, **options)


def close_executor(executor: object) -> None:
    """Release what an executor holds (a local Ray cluster it started); local pools hold nothing."""
    close = getattr(executor, "close", None)
    if close is not None:
        close()
