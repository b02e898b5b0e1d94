"""The default engine: a local process pool (or inline work when one worker is asked)."""

from __future__ import annotations

import functools
import itertools
import multiprocessing as mp
import multiprocessing.pool
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
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


class _Pool(multiprocessing.pool.Pool):
    """A pool whose worker-maintenance thread sleeps until a worker exits or the pool changes.

    The standard pool's thread also wakes whenever a result waits in the pipe, and spins
    until the result thread has read it: 0.6 s of the driver's CPU, taken from the workers,
    for the 841 chunks of an AffectNet-sized ingest. Workers here are never recycled, so
    their exits and the pool's own notices are all it needs to watch."""

    def _get_sentinels(self) -> list:  # CPython's own hook (3.8+) for what that thread waits on
        return [self._change_notifier._reader]


_calls = itertools.count()
_initialised_for: int | None = None
"""In a kept pool's worker: the call whose initializer ran here last."""


def _call_chunk(call: int, initializer: Callable[..., Any] | None, initargs: tuple,
                fn: Callable[[list[T]], list[R]], chunk: list[T]) -> list[R]:
    """One chunk of one ``map_chunks`` call on a kept pool: the call's initializer runs once
    per worker, on its first chunk (a kept pool's workers were forked before the call)."""
    global _initialised_for
    if _initialised_for != call:
        if initializer is not None:
            initializer(*initargs)
        _initialised_for = call
    return fn(chunk)


@register_engine("local")
class ProcessPoolExecutor:
    """A ``multiprocessing`` pool; results come back in input order, chunk by chunk.

    Each ``map_chunks`` call forks its own pool, unless it runs inside :meth:`kept`, whose
    pool serves every call in the block."""

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers = max(1, workers or available_cores())
        self.start_method = start_method
        self._kept: Any = None

    def _start_pool(self, processes: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> Any:
        ctx = mp.get_context(self.start_method or safe_start_method())
        # Workers ignore Ctrl-C: the driver alone gets it, stops the pool and says what it kept.
        with sigint_blocked():  # a Ctrl-C during the forks waits until the pool is whole
            return _Pool(processes, initializer=worker_ignores_sigint, initargs=(initializer, initargs), context=ctx)

    @staticmethod
    def _stop_pool(pool: Any, *, wait: bool = False) -> None:
        with deferred_sigint():  # an interrupt inside the shutdown's finalizers would be lost
            if wait:
                pool.close()
            else:
                pool.terminate()
            pool.join()

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Fork the pool now and use it for every call inside the block.

        Forking costs more the more memory the driver holds: at AffectNet scale (430,644 rows
        built in the driver) a pool forked after the scan cost 0.6 s more CPU in copied pages
        and the ingest 0.7 s more wall time than one forked before it."""
        if self._kept is not None or self.workers == 1:
            yield
            return
        self._kept = self._start_pool(self.workers)
        try:
            yield
        except BaseException:
            pool, self._kept = self._kept, None
            if pool is not None:
                self._stop_pool(pool)
            raise
        pool, self._kept = self._kept, None
        if pool is not None:
            self._stop_pool(pool, wait=True)

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
        own = self._kept is None
        pool = self._start_pool(min(self.workers, len(chunks)), initializer, initargs) if own else self._kept
        call = fn if own else functools.partial(_call_chunk, next(_calls), initializer, initargs, fn)
        finished = False
        try:
            for chunk, result in zip(chunks, pool.imap(call, chunks)):
                yield from result
                if progress:
                    progress(len(chunk))
            finished = True
        finally:
            if own or not finished:  # a kept pool stopped early still holds queued chunks: it goes too
                if not own:
                    self._kept = None
                self._stop_pool(pool)


def kept_pool(executor: object) -> AbstractContextManager[None]:
    """The executor's :meth:`ProcessPoolExecutor.kept` block, or nothing for engines without one."""
    kept = getattr(executor, "kept", None)
    return kept() if kept is not None else nullcontext()

