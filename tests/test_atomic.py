"""The one writer: atomic renames, umask modes, temp files removed or swept, OS errors as one line."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from ferdata import atomic
from ferdata.errors import DiskFullError, NoPermissionError, from_os_error
from ferdata.manifest import write_table


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_bytes_tables_and_streams_get_the_umask_mode(tmp_path, umask_022):
    a = atomic.write_bytes(tmp_path / "a.bin", b"x")
    t = write_table(tmp_path / "t.parquet", pa.table({"x": [1, 2]}))
    s = atomic.write_stream(tmp_path / "s.pt", lambda fh: fh.write(b"stream"))
    for path in (a, t, s):
        assert _mode(path) == 0o644, path
    os.umask(0o077)
    assert _mode(atomic.write_bytes(tmp_path / "private.bin", b"y")) == 0o600
    assert atomic.leftover_temps(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = atomic.write_bytes(tmp_path / "keep.txt", b"old")

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, boom)
    assert target.read_bytes() == b"old"
    assert atomic.leftover_temps(tmp_path) == []


def test_stale_temps_of_dead_processes_are_swept_on_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    host = atomic._HOST
    stale = [tmp_path / f".images.parquet.{host}-{pid}.abcdef12.tmp",      # this version
             tmp_path / f".img1.png.{pid}.tmp",                               # earlier crops
             tmp_path / f"img2.png.{pid}.tmp"]                                # earlier FER-2013 pixels
    live = [tmp_path / f".features.parquet.{host}-{os.getpid()}.abcdef12.tmp",   # a live writer (us)
            tmp_path / f".x.parquet.otherhost-{pid}.abcdef12.tmp"]              # another machine's writer
    legacy_old = tmp_path / ".last.pt.k2j4_x9a.tmp"  # mkstemp's name: no pid, swept when old
    for p in (*stale, *live, legacy_old):
        p.write_bytes(b"partial")
    os.utime(legacy_old, (1, 1))
    atomic.write_bytes(tmp_path / "new.bin", b"n")
    left = {p.name for p in tmp_path.iterdir()}
    assert not any(p.name in left for p in (*stale, legacy_old))
    assert all(p.name in left for p in live)


def test_os_errors_become_one_line():
    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/m/images.parquet"), needs=2_500_000)
    assert isinstance(full, DiskFullError)
    assert str(full).startswith("no space left on /data/m (needs ~2.5 MB")
    denied = from_os_error(PermissionError(errno.EACCES, "Permission denied", "/data/m/.x.tmp"))
    assert isinstance(denied, NoPermissionError)
    assert str(denied) == ("cannot write /data/m: permission denied (run as a user who can, or "
                           "--manifests/--runs elsewhere)")
    ro = from_os_error(OSError(errno.EROFS, "Read-only file system", "/mnt/x/y"))
    assert "read-only file system" in str(ro)
    assert from_os_error(OSError(errno.EINVAL, "Invalid argument", "/x")) is None
    assert from_os_error(PermissionError(errno.EACCES, "denied", "/m/t.parquet"), action="read").where == "/m/t.parquet"


def test_errors_cross_a_process_pool_intact():
    import pickle

    e = pickle.loads(pickle.dumps(DiskFullError("/m/crops", 10_000_000, 0)))
    assert str(e) == str(DiskFullError("/m/crops", 10_000_000, 0)) and e.needs == 10_000_000


def test_ensure_writable_checks_space_before_the_work(tmp_path):
    assert atomic.ensure_writable(tmp_path / "new" / "folder").is_dir()
    with pytest.raises(DiskFullError, match=r"no space left on .*folder \(needs ~"):
        atomic.ensure_writable(tmp_path / "new" / "folder", needs=1 << 62)


def test_every_write_goes_through_the_one_writer():
    """No second writer survives: files are written with ferdata.atomic (or write_table),
    never with open(..., "w"), Path.write_*, mkstemp, os.replace, cv2.imwrite or a writer
    handed a final path. Append-only logs and lock files say so on their line ("...: not atomic")."""
    import re

    root = Path(__file__).resolve().parent.parent
    forbidden = [
        r"""\bopen\([^)]*["'](?:w|wb|a|ab|x|xb|w\+|r\+|rb\+)["']""",
        r"(?<!atomic)\.write_text\(", r"(?<!atomic)(?<!atomic_)\.write_bytes\(", r"\bmkstemp\(", r"\bos\.replace\(",
        r"\bos\.rename\(", r"\bimwrite\(", r"\.to_parquet\(", r"\bpq\.write_table\((?!table, tmp)",
        r"\btorch\.save\((?!state, fh\))", r"\.savefig\((?!buf)", r"\bwrite_csv\((?!table, str\(tmp\)\))",
    ]
    allowed = {"ferdata/atomic.py"}
    offenders = []
    for path in sorted([*root.glob("ferdata/**/*.py"), *root.glob("plugins/**/*.py")]):
        rel = str(path.relative_to(root))
        if rel in allowed:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            appends = re.search(r"""\bopen\([^)]*["']ab?["']\)""", line) and line.rstrip().endswith(": not atomic")
            if any(re.search(p, line) for p in forbidden) and not appends:  # logs and lock files append
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
