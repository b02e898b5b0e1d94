"""What every dataset adapter provides, and the directory walk they share.

An adapter only *lists* a dataset: which files, which raw labels, subjects and extras.
Reading, hashing and sizing every file is common work done by :mod:`ferdata.ingest` on
the executor, so every adapter gets the same speed and the same bad-file handling.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from ferdata.errors import FerdataError, LayoutError, UnknownLabelError
from ferdata.imageio import IMAGE_SUFFIXES
from ferdata.labels import SYNONYMS, parse_label_map


@dataclass
class Entry:
    """One image of a dataset, as the adapter sees it before any file is opened."""

    path: str
    """Relative to the scan's image root, with forward slashes."""
    label_raw: str | None
    label: str | None
    subject_id: str | None = None
    source_split: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    payload: Any = None
    """Data the adapter's ``materialize`` turns into the file's bytes (FER-2013 pixels)."""
    error: str | None = None
    """Known to be bad before the file is read (a malformed CSV row, a path outside the root)."""


@dataclass
class Scan:
    entries: list[Entry]
    image_root: str
    """Absolute directory, or ``@manifest/<dir>`` for images ferdata writes itself."""
    extra_fields: tuple[pa.Field, ...] = ()
    skipped: Counter = field(default_factory=Counter)
    """Files left out on purpose, by reason (hidden, not an image, unknown label)."""
    warnings: Counter = field(default_factory=Counter)
    """Rows kept but with a caveat, by kind (irregular filename, ...)."""
    report: dict[str, Any] = field(default_factory=dict)
    """Adapter findings worth keeping in the metadata (xlsx rows without an image, ...)."""
    materialize: Callable[[Any], bytes] | None = None
    pre_cropped: bool = False
    """The layout ships faces already cropped (CK+48, FER-2013, SFEW 2.0 aligned): the face
    step pads them before detection and ``ferdata pipeline`` knows it."""


class DatasetAdapter(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`scan`."""

    name: ClassVar[str]
    description: ClassVar[str]
    layout: ClassVar[str]
    """The expected layout, in one line, for error messages and ``ingest --list``."""
    options: ClassVar[tuple[str, ...]] = ()
    """Adapter-specific keyword options this adapter accepts."""
    code_map: ClassVar[Mapping[str, str]] = SYNONYMS

    def __init__(self, *, label_map: str | Mapping[str, str] | None = None, skip_unknown: bool = False,
                 **options: Any) -> None:
        unknown = sorted(k for k, v in options.items() if v not in (None, (), [], False) and k not in self.options)
        if unknown:
            opts = ", ".join("--" + k.replace("_", "-") for k in unknown)
            accepted = ", ".join("--" + k.replace("_", "-") for k in self.options) or "none"
            raise FerdataError(f"{opts} does not apply to {self.name} (its options: {accepted})")
        self.label_map = parse_label_map(label_map) if isinstance(label_map, str) else dict(label_map or {})
        self.skip_unknown = skip_unknown
        self.opts = {k: options.get(k) for k in self.options}

    # -- to implement ------------------------------------------------------------------
    @classmethod
    def detect(cls, source: Path) -> bool:
        """Does ``source`` look like this dataset? (used by ``ferdata pipeline``)"""
        return False

    @abstractmethod
    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        """List the dataset's images (no file is read here; ingest does that once for all)."""

    # -- shared helpers ----------------------------------------------------------------
    def adapter_options(self) -> dict[str, Any]:
        return {"label_map": self.label_map, "skip_unknown": self.skip_unknown,
                **{k: v for k, v in self.opts.items() if v is not None}}

    def to_label(self, raw: str, *, what: str = "label", table: Mapping[str, str] | None = None,
                 key: str | None = None, known: str | None = None) -> str | None:
        """Canonical label for a raw one (``--label-map`` first, then ``table`` looked up
        by ``key``); ``None`` when unknown and ``--skip-unknown`` is on, else a one-line error."""
        if raw in self.label_map:
            return self.label_map[raw]
        table = self.code_map if table is None else table
        hit = table.get(raw if key is None else key)
        if hit is not None:
            return hit
        if self.skip_unknown:
            return None
        known = known or ", ".join(sorted(table))
        raise UnknownLabelError(
            f"{self.name}: unknown {what} {raw!r} (known: {known}); map it with "
            f"--label-map '{raw}=<label>' or pass --skip-unknown"
        )

    def require_dir(self, source: Path) -> Path:
        if not source.exists():
            raise FerdataError(f"{source} does not exist; give the {self.name} dataset directory ({self.layout})")
        if not source.is_dir():
            raise LayoutError(f"{source} is not a directory; {self.name} expects {self.layout}")
        return source


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in ("Thumbs.db", "desktop.ini", "__MACOSX")


def walk_files(root: Path, skipped: Counter | None = None) -> Iterator[tuple[str, bool]]:
    """Every file below ``root`` as (relative posix path, is_image_suffix), sorted.

    Hidden files and folders are skipped and counted. Symlinked folders are followed,
    but a folder already visited (a symlink loop) is not entered twice. A file entry that
    cannot be stat'ed (a dangling link, a link loop) is still yielded, so ingest records
    it as an unreadable row rather than losing it.
    """
    skipped = skipped if skipped is not None else Counter()
    seen: set[tuple[int, int]] = set()
    out: list[tuple[str, bool]] = []

    def visit(directory: Path, rel: str) -> None:
        try:
            st = directory.stat()
        except OSError:
            skipped["unreadable folder"] += 1
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            skipped["folder symlink loop"] += 1
            return
        seen.add(key)
        try:
            with os.scandir(directory) as it:
                dirents = list(it)
        except OSError:
            skipped["unreadable folder"] += 1
            return
        for d in dirents:
            name = d.name
            if is_hidden(name):
                skipped["hidden"] += 1
                continue
            relpath = f"{rel}{name}"
            try:
                is_dir = d.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                visit(Path(d.path), relpath + "/")
                continue
            suffix = os.path.splitext(name)[1].lower()
            out.append((relpath, suffix in IMAGE_SUFFIXES))

    visit(root, "")
    out.sort()
    return iter(out)


def image_files(root: Path, skipped: Counter) -> list[str]:
    """Relative paths of image-named files below ``root``; other files are counted as skipped."""
    files = []
    for rel, is_image in walk_files(root, skipped):
        if is_image:
            files.append(rel)
        else:
            skipped["not an image"] += 1
    return files


def inside(root: Path, candidate: str) -> bool:
    """Is a path taken from outside data (a CSV, an export) inside ``root``?"""
    root_real = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root_real, candidate))
    return os.path.commonpath([root_real, target]) == root_real and not os.path.isabs(candidate)
