"""The one place every file ferdata writes goes through: tables, JSON, checkpoints, crops,
reports, figures.

A write goes to a temporary file in the target's folder and is renamed over the target,
so a reader (or a killed run) only ever sees the old file or the new one. The temporary
file is created with mode ``0666`` so the user's umask decides who may read the result
(``0644`` under the usual ``022``), it is removed on any failure, and its name carries the
host and process id (``.<name>.<host>-<pid>.<random>.tmp``) so that the next write to the
same folder sweeps away temporary files of processes that died. An ``OSError`` a user can
fix (full disk, no permission, read-only file system) becomes one line naming the folder
(:func:`ferdata.errors.from_os_error`).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ferdata.errors import DiskFullError, from_os_error

TEMP_SUFFIX = ".tmp"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[a-z0-9]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")
#: Temporary files of earlier ferdata versions: ``.<name>.<pid>.tmp[.ext]`` (crops, videos),
#: ``<name>.<pid>.tmp`` (FER-2013 pixels) and mkstemp's ``.<name>.<8 random>.tmp``.
_LEGACY_PID_RE = re.compile(r"^.+\.(?P<pid>\d+)\.tmp(?:\.[A-Za-z0-9]+)?$")
_LEGACY_RANDOM_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
#: A legacy temporary file without a process id is stale once it is this old.
LEGACY_STALE_SECONDS = 3600.0

#: A folder is swept at most this often by one process (a crop folder gets thousands of writes).
SWEEP_EVERY_SECONDS = 60.0
_swept: dict[str, float] = {}


def temp_name(name: str, *, keep_suffix: bool = False) -> str:
    """A fresh temporary name for a file called ``name`` (``keep_suffix``: end with the
    target's suffix, for writers that pick a format from it)."""
    suffix = os.path.splitext(name)[1] if keep_suffix else ""
    return f".{name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}{suffix}"


def is_temp(name: str) -> bool:
    """A temporary file of this or an earlier ferdata version?"""
    return bool(_TEMP_RE.match(name) or _LEGACY_PID_RE.match(name) or _LEGACY_RANDOM_RE.match(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str, mtime: float, now: float) -> bool:
    m = _TEMP_RE.match(name)
    if m:
        return m["host"] == _HOST and not _alive(int(m["pid"]))
    m = _LEGACY_PID_RE.match(name)
    if m:
        return not _alive(int(m["pid"]))
    return bool(_LEGACY_RANDOM_RE.match(name)) and now - mtime > LEGACY_STALE_SECONDS


def sweep_stale(folder: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Remove the temporary files dead processes left in ``folder`` (at most once a minute
    per process and folder unless ``force``); returns what was removed. Temporary files of
    live processes, and of other hosts sharing the folder, are left alone."""
    folder = os.fspath(folder)
    now_mono = time.monotonic()
    if not force and now_mono - _swept.get(folder, -SWEEP_EVERY_SECONDS) < SWEEP_EVERY_SECONDS:
        return []
    _swept[folder] = now_mono
    removed: list[Path] = []
    now = time.time()
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if TEMP_SUFFIX in e.name and is_temp(e.name)]
    except OSError:
        return removed
    for e in entries:
        try:
            if e.is_file(follow_symlinks=False) and _stale(e.name, e.stat(follow_symlinks=False).st_mtime, now):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


@contextmanager
def os_errors(where: str | os.PathLike | None = None, *, action: str = "write",
              needs: int | None = None) -> Iterator[None]:
    """Turn an ``OSError`` a user can fix into its one line (others pass through)."""
    try:
        yield
    except OSError as exc:
        mapped = from_os_error(exc, os.fspath(where) if where is not None else None, action=action, needs=needs)
        if mapped is None:
            raise
        raise mapped from None


def make_folder(folder: str | os.PathLike) -> Path:
    """``mkdir -p`` whose failure names the folder and the fix."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        mapped = from_os_error(exc, str(existing))
        if mapped is None:
            raise
        raise mapped from None
    return folder


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - a folder we cannot clean up; the next sweep will
        pass


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True, needs: int | None = None,
                keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (Parquet,
    ``torch.save``, a video writer); renamed over ``path`` when the block ends without an
    error, removed otherwise. The temporary file already exists (empty, mode ``0666`` less
    the umask); the writer may overwrite it. ``needs`` is the expected size for the
    full-disk message (default: what had been written when it failed)."""
    path = Path(path)
    folder = make_folder(path.parent)
    sweep_stale(folder)
    tmp = folder / temp_name(path.name, keep_suffix=keep_suffix)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        written = _size(tmp)
        _discard(tmp)
        mapped = from_os_error(exc, str(folder), needs=needs or written)
        if mapped is None:
            raise
        raise mapped from None
    except BaseException:
        _discard(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring). One descriptor from
    creation to rename: crops and FER-2013 pixels are written tens of thousands at a time.
    ``private`` makes the file owner-only (0600) whatever the umask: credentials, not results."""
    path = Path(path)
    folder = make_folder(path.parent)
    sweep_stale(folder)
    tmp = folder / temp_name(path.name)
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        if private:
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        _discard(tmp)
        mapped = from_os_error(exc, str(folder), needs=len(data))
        if mapped is None:
            raise
        raise mapped from None
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _discard(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> Path:
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object], *, fsync: bool = True,
               needs: int | None = None, keep_suffix: bool = False) -> Path:
    """``writer(temporary path)`` writes the file; it is renamed over ``path`` when it returns."""
    path = Path(path)
    with atomic_path(path, fsync=fsync, needs=needs, keep_suffix=keep_suffix) as tmp:
        writer(tmp)
    return path


class _RecordingFile(io.FileIO):
    """A raw file that writes all it is given and remembers the ``OSError`` that stopped it:
    writers such as ``torch.save`` turn a full disk into an opaque ``RuntimeError``."""

    error: OSError | None = None

    def write(self, data) -> int:  # noqa: ANN001 - any bytes-like
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += super().write(view[done:]) or 0
        except OSError as exc:
            self.error = exc
            raise
        return done


def write_stream(path: str | os.PathLike, writer: Callable[[BinaryIO], object], *, fsync: bool = True,
                 needs: int | None = None) -> Path:
    """``writer(file object)`` writes the file (``torch.save(state, fh)``); an ``OSError``
    under whatever the writer raised (full disk) still becomes its one line."""
    path = Path(path)
    with atomic_path(path, fsync=fsync, needs=needs) as tmp:
        with _RecordingFile(tmp, "wb") as fh:
            try:
                writer(fh)
            except Exception:
                if fh.error is not None:
                    raise fh.error from None
                raise
    return path


def move(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a file or folder in one step (same file system): a manifest moved aside is
    either all at its old name or all at its new one."""
    with os_errors(src):
        os.replace(src, dst)
    return Path(dst)


def free_bytes(folder: str | os.PathLike) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def on_disk(folder: str | os.PathLike, nbytes: int) -> int:
    """What a file of ``nbytes`` takes on the file system of ``folder``: whole blocks (a 2 kB
    crop takes 4 kB on most file systems)."""
    try:
        block = os.statvfs(folder).f_frsize or 4096
    except OSError:
        block = 4096
    return -(-max(nbytes, 1) // block) * block


def ensure_writable(folder: str | os.PathLike, *, needs: int = 0) -> Path:
    """Fail now, with the one line, if ``folder`` cannot take ``needs`` more bytes: the
    check a long command makes before hours of work. Creates the folder, and creates and
    removes a probe file in it (which also sweeps stale temporary files)."""
    folder = make_folder(folder)
    sweep_stale(folder)
    probe = folder / temp_name("probe")
    with os_errors(folder, needs=needs or None):
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    free = free_bytes(folder)
    if needs and free is not None and free < needs:
        raise DiskFullError(str(folder), needs, free)
    return folder


def leftover_temps(root: str | os.PathLike) -> list[Path]:
    """Every temporary file under ``root`` (for tests and ``ferdata info`` checks)."""
    return sorted(p for p in Path(root).rglob(f"*{TEMP_SUFFIX}*") if p.is_file() and is_temp(p.name))


__all__ = ["atomic_path", "ensure_writable", "free_bytes", "on_disk", "is_temp", "leftover_temps",
           "make_folder", "os_errors", "sweep_stale", "temp_name", "write_bytes", "write_stream", "write_text", "write_with"]
