"""Silencing native libraries that write straight to file descriptor 2.

TFLite/absl (MediaPipe) and Ray's C++ core print start-up chatter below Python, where
``warnings`` and ``logging`` cannot reach; the library never prints, so such chatter is
sent to ``/dev/null`` for the few calls that make it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at ``/dev/null`` inside the block (C/C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
