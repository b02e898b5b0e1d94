"""The default engine: a local process pool (or inline work when one worker is asked)."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ferdata.engines._registry import register_engine
from ferdata.engines.base import Progress, R, T, default_chunksize
from ferdata.interrupts import deferred_sigint, sigint_blocked, worker_ignores_sigint


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@register_engine("inline")
class InlineExecutor:
    """Runs everything in this process: for one worker, tests and debugging."""

    workers = 1

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
        if initializer is not None:
            initializer(*initargs)
        size = chunksize or default_chunksize(len(items), 1)
        for start in range(0, len(items), size):
            chunk = list(items[start : start + size])
            yield from fn(chunk)
            if progress:
                progress(len(chunk))


#: Libraries with native thread pools (OpenMP, their own pthreads pools) that do not survive
#: ``fork``: a child forked after the parent ran one of their parallel ops can hang in its
#: first call. With any of them loaded, workers come from a clean fork server instead.
_FORK_UNSAFE = ("torch", "cv2")


def safe_start_method() -> str | None:
    """``fork`` (the fast default) unless a fork-unsafe library is already loaded here, or
    this process is a Ray driver (forking its gRPC threads hangs the driver's next call)."""
    unsafe = any(name in sys.modules for name in _FORK_UNSAFE) or _ray_running()
    if unsafe and "forkserver" in mp.get_all_start_methods():
        return "forkserver"
    return None


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and getattr(ray, "is_initialized", lambda: False)())


@register_engine("local")
class ProcessPoolExecutor:
    """A ``multiprocessing`` pool; results come back in input order, chunk by chunk."""

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers = max(1, workers or available_cores())
        self.start_method = start_method

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
        size = chunksize or default_chunksize(len(items), self.workers)
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        if len(chunks) <= 1 or self.workers == 1:
            yield from InlineExecutor().map_chunks(
                fn, items, chunksize=size, initializer=initializer, initargs=initargs, progress=progress
            )
            return
        ctx = mp.get_context(self.start_method or safe_start_method())
        # Workers ignore Ctrl-C: the driver alone gets it, stops the pool and says what it kept.
        pool = None
        try:
            with sigint_blocked():  # a Ctrl-C during the forks waits until the pool is whole
                pool = ctx.Pool(min(self.workers, len(chunks)), initializer=worker_ignores_sigint,
                                initargs=(initializer, initargs))
            for chunk, result in zip(chunks, pool.imap(fn, chunks)):
                yield from result
                if progress:
                    progress(len(chunk))
            pool.close()
        finally:
            if pool is not None:
                with deferred_sigint():  # an interrupt inside the shutdown's finalizers would be lost
                    pool.terminate()
                    pool.join()
