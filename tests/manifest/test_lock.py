"""One writer per manifest: a second one waits (saying for whom) or fails with --no-wait."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ferdata.manifest.lock import ManifestBusyError, holder, lock_policy, manifest_lock

HOLD = textwrap.dedent("""
    import sys, time
    from ferdata.manifest.lock import manifest_lock
    with manifest_lock(sys.argv[1], command="ferdata split jf --protocol spi"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(directory: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_no_wait_names_the_holder_and_waiting_says_for_whom(tmp_path):
    proc = _hold(tmp_path, 1.5)
    try:
        info = holder(tmp_path)
        assert info["command"] == "ferdata split jf --protocol spi" and info["pid"] == proc.pid
        with lock_policy(wait=False), pytest.raises(ManifestBusyError,
                                                    match=r"being written by 'ferdata split jf --protocol spi' "
                                                          rf"\(pid {proc.pid}"):
            with manifest_lock(tmp_path):
                pass
        said: list[str] = []
        started = time.monotonic()
        with lock_policy(wait=True, on_wait=said.append), manifest_lock(tmp_path):
            waited = time.monotonic() - started
        assert waited > 0.3 and len(said) == 1 and "waiting for 'ferdata split jf" in said[0]
    finally:
        proc.wait()


def test_the_lock_is_reentrant_and_dies_with_its_process(tmp_path):
    with manifest_lock(tmp_path), manifest_lock(tmp_path):  # a split refreshing its pHash cache
        pass
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    with lock_policy(wait=False), manifest_lock(tmp_path):  # a killed writer never leaves it stuck
        pass
