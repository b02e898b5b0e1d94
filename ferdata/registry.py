"""One registry pattern for every pluggable kind (datasets, detectors, descriptors,
protocols, models, engines), modelled on timm's ``register_model`` / ``list_models`` /
``create_model``.

Each kind keeps its registry object in a leaf module (``ferdata/<package>/_registry.py``,
or ``ferdata/models.py``) that its members import; the package ``__init__`` only imports
the members. Third-party packages add members through an entry-point group
(``ferdata.datasets``, ``ferdata.detectors``, ``ferdata.descriptors``, ``ferdata.protocols``,
``ferdata.models``, ``ferdata.engines``): an entry point names a module (importing it
registers its members) or a callable (called once). First-party plugins in ``plugins/``
come in through the same path. ``FERDATA_NO_PLUGINS=1`` turns third-party entry points
off (the test suite sets it), never ferdata's own.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import types
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from ferdata.errors import FerdataError

T = TypeVar("T")

#: Set to 1 to ignore entry points of every distribution but ferdata itself.
ENV_NO_PLUGINS = "FERDATA_NO_PLUGINS"
FIRST_PARTY = "ferdata"


def third_party_plugins_enabled() -> bool:
    return os.environ.get(ENV_NO_PLUGINS, "").strip().lower() in ("", "0", "false", "no")


def _is_first_party(ep: EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or (dist.metadata["Name"] if dist is not None else None)
    return bool(name) and name.replace("_", "-").lower() == FIRST_PARTY


class Registry(Generic[T]):
    """Named members of one kind.

    ``kind`` is used in messages ("unknown detector 'x'; choose from: haar, mtcnn").
    ``construct(member, **options)`` is what :meth:`create` does with a member; by default
    the member is a class or factory and is called with the options.
    ``builtins`` are ferdata's own member modules, imported on first use (so importing a
    package stays cheap); ``entry_point_group`` names the group plugins register through.
    """

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = (), entry_point_group: str | None = None,
                 construct: Callable[..., T] | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._construct = construct
        self._entries: dict[str, Any] = {}
        self._aliases: set[str] = set()
        self._loaders: list[Callable[[], None]] = []
        self._loaded = False
        self._broken: dict[str, str] = {}
        for module in builtins:
            self._loaders.append(lambda module=module: importlib.import_module(module))
        if entry_point_group:
            self._loaders.append(self._load_entry_points)

    # ---- registering ------------------------------------------------------------------
    def register(
        self, name: str | None = None, *, aliases: tuple[str, ...] = ()
    ) -> Callable[[Any], Any]:
        """Decorator: ``@registry.register("jaffe")`` on a class or factory function."""

        def decorate(member: Any) -> Any:
            self.add(name or getattr(member, "name", None) or member.__name__, member, aliases=aliases)
            return member

        return decorate

    def add(self, name: str, member: Any, *, aliases: tuple[str, ...] = ()) -> Any:
        """Register ``member`` (a class, factory or plain object) under ``name`` and aliases."""
        for key in (name, *aliases):
            existing = self._entries.get(key)
            if existing is not None and existing is not member:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = member
        self._aliases.update(aliases)
        return member

    def add_loader(self, loader: Callable[[], None]) -> None:
        """A callable that registers more entries on first use."""
        self._loaders.append(loader)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for loader in self._loaders:
            loader()

    def _load_entry_points(self) -> None:
        third_party = third_party_plugins_enabled()
        for ep in entry_points(group=self.entry_point_group):
            if not third_party and not _is_first_party(ep):
                continue
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, types.ModuleType):
                    obj()  # a module registered its members on import; a callable registers them now
            except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not hide the others
                self._broken[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"

    # ---- reading ------------------------------------------------------------------------
    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered with a shell wildcard (``resnet*``)."""
        self._load()
        names = sorted(n for n in self._entries if n not in self._aliases)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    list = names  # ``list_detectors = DETECTORS.list`` reads as the timm helpers do

    def get(self, name: str) -> Any:
        """The registered member itself (a class, factory or plugin object)."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names()) or "none registered"
            raise FerdataError(f"unknown {self.kind} {name!r}; choose from: {choices}") from None

    def create(self, name: str, *args: Any, **options: Any) -> T:
        """A new instance of member ``name`` built with ``options``."""
        member = self.get(name)
        if self._construct is not None:
            return self._construct(member, *args, **options)
        return member(*args, **options)

    def broken(self) -> Mapping[str, str]:
        """Entry points that failed to load, with why (``--list`` shows them)."""
        self._load()
        return dict(self._broken)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
