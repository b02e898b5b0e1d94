"""One local Ray cluster for the engine tests (2 CPUs, one logical GPU), and helpers for
tests that start clusters of their own with ``ray start`` in subprocesses.

Starting Ray costs seconds, so every test that runs work on Ray shares ``ray_cluster``; it
is shut down (and its temp folder removed) when the tests of this package end, so the rest
of the suite does not run beside an idle cluster. The logical GPU only lets the scheduler
place GPU actors; nothing runs on it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RAY_CPUS = 2


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install 'ferdata[ray]'")
    pytest.importorskip("ray.data")
    if ray.is_initialized():  # pragma: no cover - another fixture left one running
        ray.shutdown()
    temp = tempfile.mkdtemp(prefix="ferdata-ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    ray.init(num_cpus=RAY_CPUS, num_gpus=1, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=300 * 1024 ** 2, _temp_dir=temp)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


class RayStart:
    """``ray start ... --block`` in a subprocess; :meth:`stop` sends SIGTERM, which makes it
    stop every process it started (with the drain wait turned off), and waits."""

    def __init__(self, args: list[str], temp_dir: Path, env: dict[str, str]) -> None:
        self.temp_dir = temp_dir
        self.log = open(temp_dir / "ray-start.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([ray_cli(), "start", *args, "--temp-dir", str(temp_dir), "--block",
                                      "--disable-usage-stats"], stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - Ray did not stop; do not leave it
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        leftover = processes_under(self.temp_dir)
        for pid in leftover:  # pragma: no cover - only when Ray's own teardown failed
            os.kill(pid, signal.SIGKILL)

    def output(self) -> str:
        return (self.temp_dir / "ray-start.log").read_text(errors="replace")


def processes_under(temp_dir: Path) -> list[int]:
    """Live processes whose command line names ``temp_dir`` (what one ``ray start`` left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(temp_dir) in cmd:
            found.append(int(entry.name))
    return found


def ray_env() -> dict[str, str]:
    """The environment for subprocess nodes and drivers: token authentication on (Ray's
    default for a new cluster, which joining nodes and drivers must opt into), no drain wait
    on SIGTERM, and no inherited address."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env.update(RAY_AUTH_MODE="token", RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", COLUMNS="200",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]))
    return env


def wait_for_nodes(address: str, n: int, env: dict[str, str], timeout: float = 180.0) -> None:
    """Until the cluster at ``address`` has ``n`` live nodes (asked in a subprocess, so this
    process's own Ray session is not touched)."""
    code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, env=env)
        last = out.stdout.strip() or out.stderr.strip()[-300:]
        if out.returncode == 0 and last.isdigit() and int(last) >= n:
            return
        time.sleep(2)
    raise AssertionError(f"the cluster at {address} never had {n} nodes: {last}")
