"""Counted findings that keep their first names: a warning names what it counts.

``Tally`` is a :class:`collections.Counter` (``tally[reason] += 1`` still works) that also
remembers the first few paths of each reason when counted with :meth:`Tally.add`, so
"skipped: not an image 3" can be shown with the three files.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

#: How many paths of one reason are kept.
KEEP = 5


class Tally(Counter):
    """Counts by reason, with the first :data:`KEEP` paths of each reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.firsts: dict[str, list[str]] = {}

    def add(self, reason: str, path: str | None = None, n: int = 1) -> None:
        """Count ``n`` more of ``reason``; remember ``path`` if it is among the first."""
        self[reason] += n
        if path is not None:
            kept = self.firsts.setdefault(reason, [])
            if len(kept) < KEEP:
                kept.append(str(path))

    def first_paths(self) -> dict[str, list[str]]:
        """``{reason: [first paths]}`` for the reasons that have any (JSON-friendly)."""
        return {k: list(v) for k, v in sorted(self.firsts.items()) if v}

    def __reduce__(self) -> tuple:  # keep the paths when pickled to a worker
        return (_rebuild, (dict(self), self.firsts))


def _rebuild(counts: dict[str, int], firsts: dict[str, list[str]]) -> Tally:
    t = Tally(counts)
    t.firsts = firsts
    return t


def first_paths(counter: Counter) -> dict[str, list[str]]:
    """The first paths of a :class:`Tally`, ``{}`` for a plain Counter."""
    return counter.first_paths() if isinstance(counter, Tally) else {}


def count(counter: Counter, reason: str, path: str | None = None, n: int = 1) -> None:
    """``counter[reason] += n``, keeping ``path`` when ``counter`` is a :class:`Tally`."""
    if isinstance(counter, Tally):
        counter.add(reason, path, n)
    else:
        counter[reason] += n
