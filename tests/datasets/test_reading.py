"""How ingest reads one file of a dataset: plain files with one open, links checked against
the dataset root, and pipes, sockets and devices never read (nor waited on)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ferdata.datasets.base import NOT_REGULAR, OUTSIDE, read_dataset_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "happy").mkdir(parents=True)
    (root / "happy" / "a.png").write_bytes(b"\x89PNG plain")
    return root


def _read(path: Path, root: Path) -> tuple[bytes | None, str | None]:
    return read_dataset_file(str(path), os.path.realpath(root))


def test_plain_file_and_link_inside_the_root_are_read(root: Path) -> None:
    assert _read(root / "happy" / "a.png", root) == (b"\x89PNG plain", None)
    (root / "happy" / "b.png").symlink_to(root / "happy" / "a.png")
    assert _read(root / "happy" / "b.png", root) == (b"\x89PNG plain", None)


def test_links_out_of_the_root_are_refused_unread(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"private")
    (root / "happy" / "link.png").symlink_to(secret)
    data, why = _read(root / "happy" / "link.png", root)
    assert data is None and why.startswith(OUTSIDE) and str(secret) in why
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    data, why = _read(root / "out" / "secret.png", root)
    assert data is None and why.startswith(OUTSIDE)
    # without a boundary (--follow-links) both are read
    assert read_dataset_file(str(root / "happy" / "link.png"), None) == (b"private", None)


def test_pipe_and_socket_are_not_read(root: Path) -> None:
    os.mkfifo(root / "happy" / "pipe.png")  # no writer: a blocking open would wait forever
    assert _read(root / "happy" / "pipe.png", root) == (None, NOT_REGULAR)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "happy" / "s.png"))
        assert _read(root / "happy" / "s.png", root) == (None, NOT_REGULAR)
    finally:
        sock.close()


def test_a_file_larger_than_its_stat_is_read_whole(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first read asks for the size fstat gave; a file that grew since is read to its end."""
    big = root / "happy" / "big.png"
    big.write_bytes(bytes(range(256)) * 5000)
    real_fstat = os.fstat

    class Shrunk:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode, self.st_size = st.st_mode, 10

    with monkeypatch.context() as patch:  # undone before the tmp_path is removed (rmtree uses fstat)
        patch.setattr(os, "fstat", lambda fd: Shrunk(real_fstat(fd)))
        data = _read(big, root)
    assert data == (bytes(range(256)) * 5000, None)


def test_missing_file_raises_like_open(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _read(root / "happy" / "gone.png", root)
