"""The executor interface every step runs its per-image work through.

A step hands over a module-level function and a list of work items; the executor calls
the function on chunks of items wherever it likes (this process, a process pool, a Ray
cluster) and yields the results in input order. Per-worker state (a face detector, say)
is built by ``initializer`` once per worker, not once per item.

Two rules every executor keeps, so faults look the same on every engine: a worker leaves
Ctrl-C to the driver (run :func:`ferdata.interrupts.worker_ignores_sigint` before the
caller's initializer), and whatever a worker writes goes through :mod:`ferdata.atomic`
(the driver sweeps the temporary files of workers it stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int], None]
"""Called with the number of items just finished."""


class Executor(Protocol):
    workers: int

    def map_chunks(
        self,
        fn: Callable[[list[T]], list[R]],
        items: Sequence[T],
        *,
        chunksize: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        progress: Progress | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> Iterator[R]:
        """Apply ``fn`` to consecutive chunks of ``items``; yield each result in order.
        ``resources`` is what one worker needs (``{"GPU": 1}``): a cluster engine schedules
        its workers by it; the local pool, whose workers share this machine, ignores it."""
        ...


def default_chunksize(n_items: int, workers: int, *, target_chunks_per_worker: int = 8, cap: int = 512) -> int:
    """Big enough to amortise inter-process overhead, small enough for a live progress bar."""
    if n_items <= 0:
        return 1
    return max(1, min(cap, -(-n_items // (max(workers, 1) * target_chunks_per_worker))))
