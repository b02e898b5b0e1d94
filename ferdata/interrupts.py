"""Ctrl-C: one line, exit 130, never swallowed.

Only the main process reacts to SIGINT: pool workers ignore it (:func:`worker_ignores_sigint`,
run first in every worker), so a Ctrl-C reaches the driver once, which stops the pool and
reports what it kept (:class:`ferdata.errors.Interrupted`). A pool is started under
:func:`sigint_blocked`: a Ctrl-C that lands while workers are forked would otherwise kill a
worker before it ignores SIGINT, or interrupt a fork handler that holds a lock (``logging``'s),
and the pool's next fork or its shutdown then waits forever. Shutting a pool down runs
finalizers in which a ``KeyboardInterrupt`` would be printed and dropped by Python, so the
shutdown runs under :func:`deferred_sigint`, which re-raises the interrupt afterwards.
:func:`watch` records every SIGINT the process receives, so the CLI exits 130 even when
some library swallowed the ``KeyboardInterrupt``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

EXIT_CODE = 130

_received = threading.Event()


def worker_ignores_sigint(initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> None:
    """A pool worker's initializer: leave Ctrl-C to the driver, then run ``initializer``.

    The worker was started with SIGINT blocked (:func:`sigint_blocked`); once it ignores the
    signal, unblocking drops a Ctrl-C that was pending for it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block and raise it when the block ends."""
    if not _in_main_thread():
        yield
        return
    got: list[int] = []

    def hold(signum: int, frame: Any) -> None:  # noqa: ARG001 - the signal handler's signature
        _received.set()
        got.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if got:
            raise KeyboardInterrupt


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Keep SIGINT pending (not lost) while the block starts processes and threads.

    Processes forked here, the fork server started here and threads started here inherit
    the blocked mask, so no worker can die of a Ctrl-C before :func:`worker_ignores_sigint`
    and no fork is interrupted half-way; the driver gets the Ctrl-C when the block ends, with
    a whole pool to stop. The mask holds the signal only for this thread (the kernel hands it
    to any other thread, a progress bar's say), so the handler holds it too."""
    with deferred_sigint():
        if not hasattr(signal, "pthread_sigmask") or not _in_main_thread():
            yield
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _handler(signum: int, frame: Any) -> None:  # noqa: ARG001
    _received.set()
    raise KeyboardInterrupt


@contextmanager
def watch() -> Iterator[None]:
    """Record SIGINT for :func:`received` (the CLI wraps every command in this)."""
    _received.clear()
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def received() -> bool:
    """Did a SIGINT arrive since :func:`watch` began?"""
    return _received.is_set()


def acknowledge() -> None:
    """A Ctrl-C the caller handled as a normal end (a camera session stops with it): the
    command that follows is not reported as interrupted."""
    _received.clear()
