"""User-facing errors.

A ``FerdataError`` is a mistake the user can fix (a bad path, an unknown label, a wrong
layout). The CLI prints its message as one line and exits non-zero, with no traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FerdataError(Exception):
    """An error whose message is one actionable line for the user."""

    exit_code = 2


class LayoutError(FerdataError):
    """The source directory is not in the layout the adapter expects."""


class UnknownLabelError(FerdataError):
    """A label folder or code that the dataset's label map does not know."""


class ManifestError(FerdataError):
    """A manifest is missing, corrupt or fails validation."""
