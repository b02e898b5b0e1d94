"""One registry pattern for every pluggable kind (datasets, detectors, descriptors,
protocols, models), modelled on timm's ``register_model`` / ``list_models`` /
``create_model``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ferdata.errors import FerdataError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one kind.

    ``kind`` is used in messages ("unknown detector 'x'; choose from: haar, mtcnn").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        self._aliases: set[str] = set()
        self._loaders: list[Callable[[], None]] = []
        self._loaded = False

    def register(
        self, name: str | None = None, *, aliases: tuple[str, ...] = ()
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@registry.register("jaffe")`` on a class or factory function."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or getattr(factory, "name", None) or factory.__name__
            for k in (key, *aliases):
                existing = self._entries.get(k)
                if existing is not None and existing is not factory:
                    raise ValueError(f"{self.kind} {k!r} is registered twice")
                self._entries[k] = factory
            self._aliases.update(aliases)
            return factory

        return decorate

    def add_loader(self, loader: Callable[[], None]) -> None:
        """A callable that registers more entries on first use (entry points, plugins)."""
        self._loaders.append(loader)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for loader in self._loaders:
            loader()

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered with a shell wildcard (``resnet*``)."""
        self._load()
        names = sorted(n for n in self._entries if n not in self._aliases)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def get(self, name: str) -> Callable[..., T]:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names()) or "none registered"
            raise FerdataError(f"unknown {self.kind} {name!r}; choose from: {choices}") from None

    def create(self, name: str, **options: Any) -> T:
        return self.get(name)(**options)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
