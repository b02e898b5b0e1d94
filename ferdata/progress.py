"""How the library reports progress without printing: the caller passes a sink."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def start(self, task: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    """The default: nobody is watching."""

    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
