"""How ingest reads one file of a dataset: read_inside's fast path and its careful one."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ferdata.datasets import base
from ferdata.datasets.base import NOT_REGULAR, OUTSIDE, read_inside


def test_a_plain_file_is_read_whole(tmp_path: Path) -> None:
    for size in (0, 1, 1571, 200_000):
        f = tmp_path / f"{size}.png"
        f.write_bytes(os.urandom(size))
        assert read_inside(str(f), str(tmp_path)) == (f.read_bytes(), None)


@pytest.mark.parametrize("change", [-100, +100])
def test_a_file_that_changed_since_its_lstat_is_read_to_its_end(tmp_path: Path, monkeypatch, change: int) -> None:
    """The size the lstat saw only sizes the first read: a file that grew (or a read the
    kernel cut short) is read on to its end, not truncated."""
    f = tmp_path / "a.png"
    f.write_bytes(os.urandom(5000))
    real_lstat = os.lstat

    def stale_lstat(path, *a, **kw):
        st = real_lstat(path, *a, **kw)
        return SimpleNamespace(st_mode=st.st_mode, st_size=st.st_size - change) if path == str(f) else st

    monkeypatch.setattr(base.os, "lstat", stale_lstat)
    assert read_inside(str(f), str(tmp_path)) == (f.read_bytes(), None)


def test_links_inside_are_read_and_links_out_are_refused(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "a.png").write_bytes(b"inside")
    (elsewhere / "b.png").write_bytes(b"outside")
    (root / "in.png").symlink_to(root / "a.png")
    (root / "out.png").symlink_to(elsewhere / "b.png")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    boundary = os.path.realpath(root)
    assert read_inside(str(root / "in.png"), boundary) == (b"inside", None)
    for path in (root / "out.png", root / "linked" / "b.png"):
        data, why = read_inside(str(path), boundary)
        assert data is None and why.startswith(OUTSIDE) and "b.png" in why
    assert read_inside(str(root / "out.png"), None) == (b"outside", None)  # --follow-links


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.png")
    assert read_inside(str(tmp_path / "p.png"), str(tmp_path)) == (None, NOT_REGULAR)


def test_a_missing_file_raises_for_ingest_to_record(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_inside(str(tmp_path / "gone.png"), str(tmp_path))
