"""What every dataset adapter provides, and the directory walk they share.

An adapter only *lists* a dataset: which files, which raw labels, subjects and extras.
Reading, hashing and sizing every file is common work done by :mod:`ferdata.ingest` on
the executor, so every adapter gets the same speed and the same bad-file handling.
"""

from __future__ import annotations

import contextvars
import csv
import functools
import os
import stat
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from ferdata.errors import FerdataError, LayoutError, UnknownLabelError, arg
from ferdata.findings import Tally, count
from ferdata.imageio import IMAGE_SUFFIXES
from ferdata.labels import SYNONYMS, parse_label_map

#: Why a file's name, place or annotation row could not be read: the row stays (readable as
#: it is) with an empty subject, and an empty label unless its place gave one.
NAME_ERROR_FIELD = pa.field("name_error", pa.string())


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
    """Known to be bad before the file is read (a path outside the root, a CSV row without
    pixels): the file is never read."""
    name_error: str | None = None
    """The file's name, place or annotation row could not be read (the reason); the file is
    still read, and its row kept with an empty subject (see :data:`NAME_ERROR_FIELD`)."""


@dataclass
class Rows:
    """Entries as columns, one list per :class:`Entry` field.

    An adapter whose rows follow from the walk alone (image folders) lists them this way: at
    AffectNet scale one ``Entry`` per file, and then one pass per field to turn them back
    into columns, cost the driver about a second of serial work around the reading. ``None``
    stands for a column with nothing in it; ``extras`` holds one list per extra field."""

    path: list[str]
    label_raw: list[str | None]
    label: list[str | None]
    subject_id: list[str | None] | None = None
    source_split: list[str | None] | None = None
    extras: dict[str, list[Any]] = field(default_factory=dict)
    payload: list[Any] | None = None
    error: list[str | None] | None = None
    name_error: list[str | None] | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = ("path", "label_raw", "label", "subject_id", "source_split", "payload",
                                          "error", "name_error")
    """Every field but ``extras``; the first three are always lists."""

    def __len__(self) -> int:
        return len(self.path)

    @classmethod
    def from_entries(cls, entries: list[Entry], extras: tuple[str, ...] = ()) -> Rows:
        """The columns of ``entries``; a field no entry sets stays ``None``."""
        columns = {name: [getattr(e, name) for e in entries] for name in cls.COLUMNS}
        for name in cls.COLUMNS[3:]:
            if all(v is None for v in columns[name]):
                columns[name] = None
        return cls(**columns, extras={k: [e.extras.get(k) for e in entries] for k in extras})

    def concat(self, other: Rows) -> Rows:
        if not len(other):
            return self

        def join(a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
            """One column of each (``None``: none there); ``None`` when neither has it."""
            if a is None and b is None:
                return None
            return (a if a is not None else [None] * len(self)) + (b if b is not None else [None] * len(other))

        return Rows(**{name: join(getattr(self, name), getattr(other, name)) for name in self.COLUMNS},
                    extras={k: join(self.extras.get(k), other.extras.get(k)) for k in {*self.extras, *other.extras}})

    def take(self, order: list[int]) -> Rows:
        """The rows in ``order`` (a permutation or a selection of row numbers)."""
        def pick(values: list[Any] | None) -> list[Any] | None:
            return None if values is None else [values[i] for i in order]

        return Rows(**{name: pick(getattr(self, name)) for name in self.COLUMNS},
                    extras={k: pick(v) for k, v in self.extras.items()})


@dataclass
class Scan:
    entries: list[Entry] | Rows
    """One :class:`Entry` per image, or the same as :class:`Rows`."""
    image_root: str
    """Absolute directory, or ``@manifest/<dir>`` for images ferdata writes itself."""
    extra_fields: tuple[pa.Field, ...] = ()
    skipped: Counter = field(default_factory=Tally)
    """Files left out on purpose, by reason (hidden, not an image, unknown label); a
    :class:`~ferdata.findings.Tally` keeps the first paths of each reason."""
    warnings: Counter = field(default_factory=Tally)
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
    default_group_by: ClassVar[str] = "subject"
    """What person-aware split protocols keep apart when ``--group-by`` is not given
    (``subject``, ``movie``, ``sequence`` or ``clip``): the grouping that surely keeps one
    person on one side."""
    group_notes: ClassVar[Mapping[str, str]] = {}
    """A line per ``--group-by`` value that needs one (what the column really is), shown
    where the split is made."""

    def __init__(self, *, label_map: str | Mapping[str, str] | None = None, skip_unknown: bool = False,
                 **options: Any) -> None:
        unknown = sorted(k for k, v in options.items() if v not in (None, (), [], False) and k not in self.options)
        if unknown:
            opts = ", ".join(arg(k) for k in unknown)
            accepted = ", ".join(arg(k) for k in self.options) or "none"
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
            f"{arg('label_map')} '{raw}=<label>' or pass {arg('skip_unknown')}"
        )

    def unparsed(self, rel: str, reason: str, skipped: Counter, *, label_raw: str | None = None,
                 label: str | None = None, **fields: Any) -> Entry | None:
        """A file whose name or place cannot be read: a row with the ``reason`` in
        ``name_error`` and no subject (a stray file never costs the rest of the dataset), or,
        with ``--skip-unknown``, left out and counted under the reason with its path."""
        if self.skip_unknown:
            count(skipped, reason, rel)
            return None
        return Entry(rel, label_raw, label, name_error=reason, **fields)

    def require_dir(self, source: Path) -> Path:
        if not source.exists():
            raise FerdataError(f"{source} does not exist; give the {self.name} dataset directory ({self.layout})")
        if not source.is_dir():
            raise LayoutError(f"{source} is not a directory; {self.name} expects {self.layout}")
        return source


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in ("Thumbs.db", "desktop.ini", "__MACOSX")


@dataclass
class LinkPolicy:
    """Where a folder walk may go: links whose real path leaves ``boundary`` are refused
    (never entered, never read) unless ``follow``; refused folders are collected for ingest
    to record as error rows."""

    boundary: str | None = None
    follow: bool = False
    refused: list[str] = field(default_factory=list)
    """Absolute paths of folder links that lead outside ``boundary``."""


_LINKS: contextvars.ContextVar[LinkPolicy | None] = contextvars.ContextVar("ferdata_link_policy", default=None)


@contextmanager
def link_policy(boundary: str | os.PathLike, follow: bool = False) -> Iterator[LinkPolicy]:
    """Scan under this policy (ingest sets it around ``adapter.scan``)."""
    policy = LinkPolicy(os.path.realpath(boundary), follow)
    token = _LINKS.set(policy)
    try:
        yield policy
    finally:
        _LINKS.reset(token)


def within(real: str, boundary: str) -> bool:
    """Is the real path ``real`` the real folder ``boundary`` or below it?"""
    return real == boundary or real.startswith(boundary.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=4096)
def _real_dir(directory: str) -> str:
    return os.path.realpath(directory)


def outside_root(full: str, boundary: str) -> str | None:
    """The real path of the file ``full`` when it lies outside the real folder ``boundary``
    (through a link in the file or any folder above it), else ``None``. Folders are
    resolved once; see :func:`refuse_file` for the check ingest makes per file."""
    real = os.path.join(_real_dir(os.path.dirname(full)), os.path.basename(full))
    if os.path.islink(real):
        real = os.path.realpath(real)
    return None if within(real, boundary) else real


NOT_REGULAR = "not a regular file (a pipe, device or socket); not read"

#: How ingest opens a plain file after its ``lstat``: never through a link (one swapped in
#: since would fail, not be followed), never waiting (nor on a pipe swapped in), not inherited.
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _folder_outside(full: str, boundary: str | None) -> str | None:
    """The error row for ``full`` when a linked folder above it leads out of ``boundary``."""
    folder = _real_dir(os.path.dirname(full))
    if boundary is None or within(folder, boundary):
        return None
    return outside_error(os.path.join(folder, os.path.basename(full)))


def read_inside(full: str, boundary: str | None) -> tuple[bytes | None, str | None]:
    """``(content, None)`` of the file ``full``, or ``(None, why)`` when ingest must not read
    it (see :func:`refuse_file`); raises ``OSError`` when it cannot be read.

    A plain file costs one ``lstat``, ``open``, ``read`` and ``close``: at AffectNet scale
    (430k files of 1.6 kB) Python's file object, with its own ``fstat``, buffer and second
    ``read``, cost more CPU than hashing and probing the bytes together."""
    st = os.lstat(full)
    if not stat.S_ISREG(st.st_mode):  # links, pipes, devices: the careful path
        refused = refuse_file(full, boundary)
        if refused is not None:
            return None, refused
        with open(full, "rb") as fh:
            return fh.read(), None
    outside = _folder_outside(full, boundary)
    if outside is not None:
        return None, outside
    fd = os.open(full, _READ_FLAGS)
    try:
        data = os.read(fd, st.st_size + 1)
        if len(data) == st.st_size:  # a regular file reads short only at its end: all of it
            return data, None
        parts = [data]  # it changed since the lstat, or is larger than one read returns
        while chunk := os.read(fd, 1 << 24):
            parts.append(chunk)
        return b"".join(parts), None
    finally:
        os.close(fd)


def refuse_file(full: str, boundary: str | None) -> str | None:
    """Why ingest must not read ``full`` (a link out of ``boundary``, the dataset root's real
    path, unless ``None``; a pipe or device, which would block or never end), else
    ``None``. One ``lstat`` for a plain file; raises ``OSError`` when it cannot be stat'ed."""
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        if boundary is not None:
            real = os.path.realpath(full)
            if not within(real, boundary):
                return outside_error(real)
        st = os.stat(full)
    outside = _folder_outside(full, boundary)
    if outside is not None:
        return outside
    return None if stat.S_ISREG(st.st_mode) else NOT_REGULAR


OUTSIDE = "outside the dataset root:"
"""How the error of a row that links out of the dataset root starts."""


def outside_error(real: str) -> str:
    return f"{OUTSIDE} links to {real}; not read (pass --follow-links to read it)"


def walk_files(root: Path, skipped: Counter | None = None) -> Iterator[tuple[str, bool]]:
    """Every file below ``root`` as (relative posix path, is_image_suffix), sorted.

    Hidden files and folders are skipped and counted. Symlinked folders are followed while
    they stay inside the dataset root (the :func:`link_policy` boundary, else ``root``); one
    that leads outside is not entered (ingest records it as an error row; without a policy
    it is counted as skipped) unless the policy follows links. A folder already visited (a
    symlink loop) is not entered twice. A file entry that cannot be stat'ed (a dangling
    link, a link loop) is still yielded, so ingest records it as an unreadable row rather
    than losing it.
    """
    skipped = skipped if skipped is not None else Counter()
    seen: set[tuple[int, int]] = set()
    out: list[tuple[str, bool]] = []
    policy = _LINKS.get()
    boundary = policy.boundary if policy is not None else os.path.realpath(root)
    follow = policy is not None and policy.follow

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
                count(skipped, "hidden", f"{rel}{name}")
                continue
            relpath = f"{rel}{name}"
            try:
                is_dir = d.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not follow and d.is_symlink() and not within(os.path.realpath(d.path), boundary):
                    if policy is not None:
                        policy.refused.append(os.path.abspath(d.path))
                    else:
                        skipped["folder link outside the root"] += 1
                    continue
                visit(Path(d.path), relpath + "/")
                continue
            dot = name.rfind(".")  # os.path.splitext, at a third of its cost (names starting with "." are hidden)
            out.append((relpath, dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES))

    visit(root, "")
    out.sort(key=itemgetter(0))  # paths are unique: a third of the tuple sort's cost
    return iter(out)


def image_files(root: Path, skipped: Counter) -> list[str]:
    """Relative paths of image-named files below ``root``; other files are counted as skipped."""
    files = []
    for rel, is_image in walk_files(root, skipped):
        if is_image:
            files.append(rel)
        else:
            count(skipped, "not an image", rel)
    return files


def csv_rows(path: Path, *, encoding: str = "utf-8") -> Iterator[tuple[int, list[str]]]:
    """``(line number, row)`` of a CSV file: a malformed line (a NUL byte, an unclosed quote,
    a field over the size limit) stops with one error naming the file and the line."""
    with open(path, newline="", encoding=encoding, errors="replace") as fh:
        reader = csv.reader(fh)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise LayoutError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
            yield reader.line_num, row


@contextmanager
def at_line(path: Path, line: int) -> Iterator[None]:
    """Prefix an unknown-label error raised inside with the CSV file and line it came from."""
    try:
        yield
    except UnknownLabelError as exc:
        raise UnknownLabelError(f"{path} line {line}: {exc.raw}") from None


def inside(root: Path, candidate: str) -> bool:
    """Is a path taken from outside data (a CSV, an export) inside ``root``?"""
    root_real = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root_real, candidate))
    return os.path.commonpath([root_real, target]) == root_real and not os.path.isabs(candidate)
