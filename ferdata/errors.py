"""User-facing errors.

A ``FerdataError`` is a mistake the user can fix (a bad path, an unknown label, a wrong
layout). The CLI prints its message as one line and exits non-zero, with no traceback;
anything else is a bug and keeps its traceback.

A message names the parameter to change with :func:`arg`, not with a command-line flag:
``FerdataError(f"{arg('folds')} {folds}: use 2 or more")`` reads ``folds 1: use 2 or
more`` from Python and ``--folds 1: use 2 or more`` from ``ferdata`` (the CLI maps each
parameter to the flag that sets it, :func:`ferdata.cli.common.flag_of`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: How a parameter is marked inside a message until it is rendered for its reader.
_ARG = re.compile(r"⟨([A-Za-z_][A-Za-z0-9_]*)⟩")


def arg(name: str) -> str:
    """A library parameter named in an error message (``arg("label_map")``): shown as
    ``label_map`` to Python callers and as its flag (``--label-map``) on the command line."""
    return f"⟨{name}⟩"


def render(message: str, name_of: Callable[[str], str] | None = None) -> str:
    """``message`` with every :func:`arg` replaced by ``name_of(parameter)`` (default: the
    parameter's own name)."""
    return _ARG.sub(lambda m: (name_of or str)(m.group(1)), message)


class FerdataError(Exception):
    """An error whose message is one actionable line for the user."""

    exit_code = 2

    @property
    def raw(self) -> str:
        """The message with its parameters still marked (to wrap it in another error)."""
        return Exception.__str__(self)

    def render(self, name_of: Callable[[str], str] | None = None) -> str:
        """The message for a reader who sets parameters by ``name_of(parameter)``."""
        return render(self.raw, name_of)

    def __str__(self) -> str:
        return self.render()


class LayoutError(FerdataError):
    """The source directory is not in the layout the adapter expects."""


class UnknownLabelError(FerdataError):
    """A label folder or code that the dataset's label map does not know."""


class ManifestError(FerdataError):
    """A manifest is missing, corrupt or fails validation."""


class DiskFullError(FerdataError):
    """A write ran out of space (or quota) on a folder."""

    def __init__(self, folder: str, needs: int | None = None, free: int | None = None) -> None:
        self.folder, self.needs, self.free = str(folder), needs, free
        need = f"needs ~{megabytes(needs)}" if needs else "needs more"
        have = f", {megabytes(free)} free" if free is not None else ""
        super().__init__(f"no space left on {folder} ({need}{have}); free some space there or write elsewhere "
                         "(--manifests / --runs)")

    def __reduce__(self):  # noqa: ANN204 - keep the fields across a process pool
        return (type(self), (self.folder, self.needs, self.free))


class NoPermissionError(FerdataError):
    """The user may not write (or read) a folder or file."""

    def __init__(self, where: str, action: str = "write", why: str = "permission denied") -> None:
        self.where, self.action, self.why = str(where), action, why
        fix = ("run as a user who can, or --manifests/--runs elsewhere" if action == "write"
               else "run as a user who can read it, or ask its owner to make it readable")
        super().__init__(f"cannot {action} {where}: {why} ({fix})")

    def __reduce__(self):  # noqa: ANN204
        return (type(self), (self.where, self.action, self.why))


class DamagedError(ManifestError):
    """A table or run file exists but cannot be read as what it should be."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept and how to go on (``interrupted; <kept>, <resume>``).

    A ``KeyboardInterrupt`` (not a ``FerdataError``), so no ``except Exception`` swallows it;
    the CLI prints its message as one line and exits 130."""

    exit_code = 130

    def __init__(self, kept: str) -> None:
        super().__init__(f"interrupted; {kept}")


class FerdataWarning(UserWarning):
    """A finding the user should act on that does not stop the run (a stale split, say);
    the CLI prints each as one ``warning:`` line."""


def megabytes(n: int | None) -> str:
    """``1.4 MB``, ``230 MB``: sizes in messages."""
    if n is None:
        return "? MB"
    mb = n / 1e6
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


#: errno values that are the environment's fault, not ferdata's: they become one line.
_SPACE = {28, 122}  # ENOSPC, EDQUOT
_DENIED = {1, 13}  # EPERM, EACCES
_READ_ONLY = 30  # EROFS


def from_os_error(exc: OSError, where: str | None = None, *, action: str = "write",
                  needs: int | None = None) -> FerdataError | None:
    """The one line for an ``OSError`` a user can fix (full disk, no permission, read-only
    file system), naming ``where`` (default: the folder of the file that failed); ``None``
    for any other error, which stays a bug with its traceback."""
    import os

    name = os.fsdecode(exc.filename) if exc.filename else None
    target = where or (name if action == "read" else os.path.dirname(name) if name else None) or "."
    if exc.errno in _SPACE:
        free = None
        try:
            st = os.statvfs(target)
            free = st.f_bavail * st.f_frsize
        except OSError:
            pass
        return DiskFullError(target, needs, free)
    if exc.errno in _DENIED:
        return NoPermissionError(target, action)
    if exc.errno == _READ_ONLY:
        return NoPermissionError(target, action, "read-only file system")
    return None
