"""Where work runs. ``create_executor('local', workers=N)`` is the default; ``'ray'`` runs
the same chunks on a Ray cluster (the optional ``ray`` extra). ``create_executor()`` with no
name takes ``$FERDATA_ENGINE``, else ``local``."""

from __future__ import annotations

import os

from ferdata.engines.base import Executor, default_chunksize
from ferdata.engines.local import InlineExecutor, ProcessPoolExecutor, available_cores
from ferdata.errors import FerdataError
from ferdata.registry import Registry

ENGINES: Registry[Executor] = Registry("engine")
ENGINES.register("local")(ProcessPoolExecutor)
ENGINES.register("inline")(InlineExecutor)


@ENGINES.register("ray")
def _ray_executor(workers: int | None = None, *, address: str | None = None, **options) -> Executor:
    from ferdata.engines.ray_engine import RayExecutor  # Ray is imported only when asked for

    return RayExecutor(workers, address=address, **options)


def default_engine() -> str:
    """``$FERDATA_ENGINE`` when set, else ``local``."""
    return os.environ.get("FERDATA_ENGINE") or "local"


def create_executor(name: str | None = None, **options) -> Executor:
    """An executor by engine name (``local``, ``inline``, ``ray``; default :func:`default_engine`).
    ``address`` (a Ray cluster to join) is for ``ray`` only."""
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


def list_engines() -> list[str]:
    return ENGINES.names()


__all__ = ["ENGINES", "Executor", "InlineExecutor", "ProcessPoolExecutor", "available_cores", "close_executor",
           "create_executor", "default_chunksize", "default_engine", "list_engines"]
