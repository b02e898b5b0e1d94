"""One writer at a time per manifest: an advisory ``fcntl`` lock on ``<manifest>/.lock``.

Every step that writes a manifest's tables (ingest, split, preprocess's merges, features,
flag, review pull) holds the lock while it reads what it builds on and writes its result,
so two writers never interleave: the second waits (``on_wait`` says for whom) or, with
``wait=False`` (``--no-wait``), fails at once naming the holder. The lock file records the
holder's command, process id, host and start time. Readers take no lock: tables are
replaced by atomic renames, so a reader sees one whole version or the other. The kernel
drops the lock when its process dies, so a killed writer never leaves it stuck.

The lock is re-entrant within a process (a split that refreshes the pHash cache holds it
once).
"""

from __future__ import annotations

import contextvars
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ferdata.atomic import make_folder, os_errors
from ferdata.errors import FerdataError, arg

LOCK_FILE = ".lock"


class ManifestBusyError(FerdataError):
    """Another process is writing the manifest and the caller would not wait."""


@dataclass(frozen=True)
class LockPolicy:
    wait: bool = True
    """Block until the holder finishes (else fail at once with :class:`ManifestBusyError`)."""
    on_wait: Callable[[str], None] | None = None
    """Told once, in one line, whom we wait for (the CLI prints it)."""


_POLICY: contextvars.ContextVar[LockPolicy] = contextvars.ContextVar("ferdata_lock_policy", default=LockPolicy())
_HELD: dict[str, list[int]] = {}
"""Manifest folder (real path) -> [file descriptor, depth] of the locks this process holds."""
_GUARD = threading.RLock()


@contextmanager
def lock_policy(*, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """How :func:`manifest_lock` behaves inside this block (the CLI's ``--no-wait``)."""
    token = _POLICY.set(LockPolicy(wait, on_wait))
    try:
        yield
    finally:
        _POLICY.reset(token)


def current_command() -> str:
    """``ferdata split ck48 --protocol spi`` (what the lock file shows other writers)."""
    argv = list(sys.argv)
    prog = Path(argv[0]).name if argv else "python"
    if prog in ("ferdata", "__main__.py") or prog.startswith("ferdata"):
        argv[0] = "ferdata"
    return shlex.join(argv) if argv else "python"


def holder(directory: str | os.PathLike) -> dict | None:
    """Who holds (or last held) the lock of a manifest folder, from its lock file."""
    try:
        text = (Path(directory) / LOCK_FILE).read_text()
    except OSError:
        return None
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def describe(info: dict | None) -> str:
    if not info:
        return "another process"
    since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    where = f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    return f"'{info.get('command', '?')}' (pid {info.get('pid', '?')}{where}, since {since})"


@contextmanager
def manifest_lock(directory: str | os.PathLike, command: str | None = None) -> Iterator[None]:
    """Hold the manifest's write lock for the block (see the module docstring)."""
    directory = Path(directory)
    key = os.path.realpath(directory)
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield
        finally:
            with _GUARD:
                held[1] -= 1
        return
    make_folder(directory)
    path = directory / LOCK_FILE
    with os_errors(directory):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            policy = _POLICY.get()
            who = describe(holder(directory))
            if not policy.wait:
                raise ManifestBusyError(f"{directory} is being written by {who}; wait for it to finish, or run "
                                        f"without {arg('no_wait')} to wait for it") from None
            if policy.on_wait is not None:
                policy.on_wait(f"waiting for {who} to finish writing {directory}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _record(fd, command)
        with _GUARD:
            _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            with _GUARD:
                _HELD.pop(key, None)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _record(fd: int, command: str | None) -> None:
    """Write the holder's details into the lock file (best effort: a full disk must not stop
    a writer that holds the lock)."""
    info = {"command": command or current_command(), "pid": os.getpid(), "host": socket.gethostname(),
            "since": time.time()}
    data = (json.dumps(info, sort_keys=True) + "\n").encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass
