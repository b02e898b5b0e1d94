"""Seconds from ``ferdata review server start`` in a clean user folder to a healthy server.

    .venv/bin/python benchmarks/review_server.py                  # warm: Label Studio's venv cached
    .venv/bin/python benchmarks/review_server.py --cold           # first start: the install included
    .venv/bin/python benchmarks/review_server.py --cold --no-pip-cache   # ... without pip's wheel cache

Each run makes a new ``$FERDATA_DATA_HOME`` in a temporary folder (no credentials, no
database, no PID file), runs the CLI as a user would (a subprocess, on a free port), takes
the wall time until the command returns (it returns once ``/health`` and the API token
answer), then stops the server and checks no process of it is left. Warm runs use the venv
at ``--venv`` (default ``.cache/label-studio-venv``, the tests' cache; installed there
first when missing); ``--cold`` installs into the temporary folder, as on a new machine.
Prints the figures with the load average before and after, since the machine is shared.
The target is 90 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferdata.review import server  # noqa: E402
from ferdata.review.install import ENV_HOME, ENV_VENV, ensure_installed  # noqa: E402

FERDATA = [sys.executable, "-m", "ferdata"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (the server is not our child)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(cold: bool, venv: Path, no_pip_cache: bool) -> dict:
    home = Path(tempfile.mkdtemp(prefix="ferdata-bench-home-"))
    env = {**os.environ, ENV_HOME: str(home)}
    env.pop("LABEL_STUDIO_URL", None)
    env.pop("LABEL_STUDIO_API_KEY", None)
    if cold:
        env.pop(ENV_VENV, None)
        if no_pip_cache:
            env["PIP_NO_CACHE_DIR"] = "1"
    else:
        env[ENV_VENV] = str(venv)
    port = free_port()
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = subprocess.run(FERDATA + ["review", "server", "start", "--port", str(port), "--timeout", "900"],
                          env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    if done.returncode != 0:
        raise SystemExit(f"start failed: {done.stdout}{done.stderr}")
    os.environ[ENV_HOME] = str(home)
    pid = server.read_state().pid
    server_cpu = process_cpu(pid)
    stopped = subprocess.run(FERDATA + ["review", "server", "stop"], env=env, capture_output=True, text=True)
    left = server.group_members(pid)
    shutil.rmtree(home, ignore_errors=True)
    return {"seconds": seconds, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "server_cpu": server_cpu,
            "load_before": load_before, "load_after": load_after, "stopped": stopped.returncode == 0 and not left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="Install Label Studio too (into the temporary folder).")
    parser.add_argument("--no-pip-cache", action="store_true", help="With --cold: pip downloads every wheel.")
    parser.add_argument("--venv", type=Path, default=ROOT / ".cache" / "label-studio-venv",
                        help="The cached venv for warm runs.")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if not args.cold:
        os.environ[ENV_VENV] = str(args.venv.resolve())
        ensure_installed()
    kind = "cold (install + database + start)" if args.cold else "warm (venv cached; new data folder)"
    print(f"review server start, {kind}, {os.cpu_count()} cores")
    for i in range(args.repeat):
        r = one_run(args.cold, args.venv.resolve(), args.no_pip_cache)
        lb, la = (" ".join(f"{x:.2f}" for x in r["load_before"]), " ".join(f"{x:.2f}" for x in r["load_after"]))
        print(f"run {i + 1}: {r['seconds']:.1f} s to healthy; CPU: {r['cpu']:.1f} s the command (pip and "
              f"migration included), {r['server_cpu']:.1f} s the server; stopped cleanly: {r['stopped']}; "
              f"load average before {lb}, after {la}")


if __name__ == "__main__":
    main()
