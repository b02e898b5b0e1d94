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
