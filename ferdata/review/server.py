"""A local Label Studio that ferdata installs, starts, finds and stops by itself.

Everything lives in ``<data home>/label-studio/`` (see :mod:`ferdata.review.install`):

* ``credentials.json`` (mode 0600): the generated admin user, password and API token. The
  token travels only in that file, in the server's environment and in the client's
  Authorization header: never on a command line, in a message, a log or a manifest.
* ``server.json``: the PID file (pid, the process's start time, port, URL, document root).
  ``stop`` signals that process only, and only while it still is the server ferdata started.
* ``data/``: the server's database and media; ``server.log``: its output.

The server listens on 127.0.0.1 only, with sign-up closed and local-files serving rooted
at the manifests' image roots, so pushed tasks can show the dataset's own files.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from ferdata.errors import FerdataError
from ferdata.manifest import Manifest, atomic_write_bytes, manifests_root
from ferdata.progress import NullProgress, ProgressSink
from ferdata.review.install import (
    DB_NAME,
    LS_VERSION,
    ensure_installed,
    file_lock,
    quiet_env,
    server_home,
    template_db,
    venv_dir,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
CREDENTIALS = "credentials.json"
STATE = "server.json"
LOG = "server.log"
MODULE = "label_studio.server"


class ServerNotRunning(FerdataError):
    """The managed server is not running (never started, stopped, or killed)."""

    exit_code = 1


@dataclass(frozen=True)
class Credentials:
    """The managed server's admin user; ``repr`` never shows the secrets."""

    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)


@dataclass
class ServerState:
    """What ``server.json`` records about the process ``start`` launched."""

    pid: int
    started: int | None  # the process's start time (clock ticks since boot), to tell a reused pid
    port: int
    url: str
    document_root: str
    version: str
    started_at: str


@dataclass
class StartResult:
    url: str
    pid: int
    username: str
    credentials: Path
    document_root: Path
    log: Path
    reused: bool
    installed: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class StopResult:
    stopped: bool
    pid: int | None
    message: str


@dataclass
class ServerStatus:
    running: bool
    healthy: bool
    url: str | None
    pid: int | None
    document_root: str | None
    message: str
    home: Path
    version: str = LS_VERSION


@dataclass(frozen=True)
class Managed:
    """Where ``review push|pull|status`` find the managed server when no URL/token is set."""

    url: str
    token: str = field(repr=False)
    document_root: Path


def paths() -> dict[str, Path]:
    home = server_home()
    return {"home": home, "credentials": home / CREDENTIALS, "state": home / STATE, "log": home / LOG,
            "data": home / "data", "lock": home / "server.lock"}


# ---------------------------------------------------------------- credentials

def _default_username() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "reviewer"
    user = re.sub(r"[^a-z0-9._-]", "", user.lower()) or "reviewer"
    return f"{user}@localhost"


def write_private(path: Path, data: bytes) -> None:
    """Atomically write a file only its owner can read (0600 whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_credentials(path: Path | None = None) -> Credentials | None:
    path = path or paths()["credentials"]
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return Credentials(str(raw["username"]), str(raw["password"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise FerdataError(f"{path} is not a ferdata credentials file (username, password, token); remove it and "
                           f"the server's data folder {path.parent / 'data'} to start afresh") from None


def ensure_credentials(path: Path) -> tuple[Credentials, list[str]]:
    """The stored admin user, or a new one (random password and 40-hex-digit token)."""
    notes: list[str] = []
    creds = read_credentials(path)
    if creds is None:
        creds = Credentials(_default_username(), secrets.token_urlsafe(18), secrets.token_hex(20))
        write_private(path, json.dumps({"username": creds.username, "password": creds.password,
                                        "token": creds.token}, indent=2).encode() + b"\n")
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        notes.append(f"{path} was readable by others; it is now 0600 (consider a new token: remove it and "
                     f"{path.parent / 'data'}, then start again)")
    return creds, notes


# ---------------------------------------------------------------- processes

def _proc_started(pid: int) -> int | None:
    """The start time of a live (non-zombie) process, ``0`` where /proc is unavailable, or
    ``None`` when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if not stat:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        _reap(pid)
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    """Collect a child that has exited (only possible when ``start`` ran in this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_our_process(state: ServerState) -> bool:
    """Whether ``state.pid`` still is the Label Studio process ``start`` launched (a pid the
    system has handed to another program since is not)."""
    started = _proc_started(state.pid)
    if started is None:
        return False
    if started and state.started and started != state.started:
        return False
    cmd = _cmdline(state.pid)
    return not cmd or MODULE in cmd


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (the server runs in a session of its own)."""
    out = []
    proc = Path("/proc")
    if not proc.exists():
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


# ---------------------------------------------------------------- state file

def read_state(path: Path | None = None) -> ServerState | None:
    """The PID file, or ``None`` when there is none; an unreadable one reads as stale."""
    path = path or paths()["state"]
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return ServerState(int(raw["pid"]), raw.get("started"), int(raw["port"]), str(raw["url"]),
                           str(raw["document_root"]), str(raw.get("version", "")), str(raw.get("started_at", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return ServerState(0, None, 0, "", "", "", "")


def _write_state(path: Path, state: ServerState) -> None:
    atomic_write_bytes(path, json.dumps(state.__dict__, indent=2).encode() + b"\n")


def _describe_stale(state: ServerState, state_path: Path) -> str:
    if state.pid <= 0:
        return f"{state_path} was unreadable"
    if _proc_started(state.pid) is None:
        return f"the server recorded in {state_path} (pid {state.pid}, {state.url}) is no longer running (killed or crashed)"
    return f"{state_path} was stale: pid {state.pid} is now another program, not the Label Studio ferdata started"


# ---------------------------------------------------------------- health

def probe(url: str, token: str | None = None, timeout: float = 3.0) -> str:
    """``"ok"``, ``"down"`` (nothing answers), ``"starting"`` (not healthy yet) or
    ``"token"`` (healthy, but it refuses the stored token)."""
    try:
        if httpx.get(f"{url}/health", timeout=timeout).status_code != 200:
            return "starting"
        if token is None:
            return "ok"
        who = httpx.get(f"{url}/api/current-user/whoami", timeout=timeout,
                        headers={"Authorization": f"Token {token}"})
        return "ok" if who.status_code == 200 else "token"
    except httpx.ConnectError:
        return "down"
    except httpx.HTTPError:
        return "starting"


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether a program listens on the port (connections of a stopped server lingering in
    TIME_WAIT do not count: the server binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EACCES:
                raise FerdataError(f"port {port} needs privileges you do not have; pick one above 1023 with "
                                   "--port (the default is 8080)") from None
            raise
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ---------------------------------------------------------------- document root

def manifest_image_roots(manifests: str | os.PathLike | None = None) -> list[Path]:
    """The image folders of the manifests under ``manifests`` (default ``./manifests``)."""
    base = manifests_root(manifests)
    roots: list[Path] = []
    if not base.is_dir():
        return roots
    for images in sorted(base.glob("*/images.parquet")):
        try:
            root = Manifest(images.parent).image_root.resolve()
        except FerdataError:
            continue
        if root.is_dir() and root not in roots:
            roots.append(root)
    return roots


def choose_document_root(document_root: str | os.PathLike | None, roots: Iterable[Path]) -> Path:
    """``--document-root``, else the deepest folder above every manifest's images, else home."""
    if document_root is not None:
        root = Path(document_root).expanduser().resolve()
        if not root.is_dir():
            raise FerdataError(f"--document-root {root} is not a folder; give the folder above your datasets' images")
        return root
    roots = [str(r) for r in roots]
    if not roots:
        return Path.home().resolve()
    return Path(os.path.commonpath(roots))


# ---------------------------------------------------------------- the commands

def start(*, port: int = DEFAULT_PORT, document_root: str | os.PathLike | None = None,
          manifests: str | os.PathLike | None = None, timeout: float = START_TIMEOUT_S,
          progress: ProgressSink | None = None) -> StartResult:
    """Install (once), then start the server, or reuse the one already running."""
    progress = progress or NullProgress()
    t0 = time.monotonic()
    p = paths()
    p["home"].mkdir(parents=True, exist_ok=True)
    with file_lock(p["lock"]):
        notes: list[str] = []
        creds, cred_notes = ensure_credentials(p["credentials"])
        notes += cred_notes
        state = read_state(p["state"])
        if state is not None:
            if is_our_process(state):
                _wait_healthy(state.url, creds, state.pid, p["log"], timeout, progress)
                if state.port != port or (document_root is not None and
                                          Path(document_root).resolve() != Path(state.document_root)):
                    notes.append(f"the running server keeps port {state.port} and document root {state.document_root}; "
                                 "'ferdata review server stop' first to change them")
                return StartResult(state.url, state.pid, creds.username, p["credentials"], Path(state.document_root),
                                   p["log"], True, False, time.monotonic() - t0, notes)
            notes.append(_describe_stale(state, p["state"]) + "; starting a new one")
            p["state"].unlink(missing_ok=True)

        if port_in_use(port):
            raise FerdataError(f"port {port} on {HOST} is already in use by another program; pick a free one with "
                               f"'ferdata review server start --port {port + 1}' (or stop that program)")
        root = choose_document_root(document_root, manifest_image_roots(manifests))
        python, installed = ensure_installed(progress, p["home"] / "install.log")
        data = p["data"]
        data.mkdir(parents=True, exist_ok=True)
        if not (data / DB_NAME).exists():
            shutil.copyfile(template_db(), data / DB_NAME)
        url = f"http://{HOST}:{port}"
        env = quiet_env(LABEL_STUDIO_USERNAME=creds.username, LABEL_STUDIO_PASSWORD=creds.password,
                        LABEL_STUDIO_USER_TOKEN=creds.token, LABEL_STUDIO_BASE_DATA_DIR=str(data),
                        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
                        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(root))
        cmd = [str(python), "-m", MODULE, "start", "--internal-host", HOST, "--port", str(port), "--host", url,
               "--no-browser", "--enable-legacy-api-token", "--data-dir", str(data)]
        with open(p["log"], "ab") as log:
            log.write(f"\n==> ferdata starts Label Studio {LS_VERSION} on {url} at "
                      f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=p["home"], start_new_session=True)
        state = ServerState(proc.pid, _proc_started(proc.pid), port, url, str(root), LS_VERSION,
                            datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write_state(p["state"], state)
        try:
            _wait_healthy(url, creds, proc.pid, p["log"], timeout, progress, proc=proc)
        except BaseException:
            _terminate(proc.pid)
            p["state"].unlink(missing_ok=True)
            raise
        return StartResult(url, proc.pid, creds.username, p["credentials"], root, p["log"], False, installed,
                           time.monotonic() - t0, notes)


def _wait_healthy(url: str, creds: Credentials, pid: int, log: Path, timeout: float, progress: ProgressSink,
                  proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    progress.start(f"waiting for Label Studio on {url}", 0)
    try:
        while True:
            exited = proc.poll() is not None if proc is not None else _proc_started(pid) is None
            if exited:
                raise FerdataError(f"Label Studio exited while starting: {_last_log_line(log)} (log: {log})")
            moved = _port_moved(log)
            if moved:
                raise FerdataError(f"{moved}; pick a free port with --port (log: {log})")
            state = probe(url, creds.token)
            if state == "ok":
                return
            if state == "token":
                raise FerdataError(f"Label Studio on {url} refuses the token in {log.parent / CREDENTIALS}; its "
                                   f"database {log.parent / 'data'} belongs to other credentials: stop the server, "
                                   "remove both and start again")
            if time.monotonic() > deadline:
                raise FerdataError(f"Label Studio did not become healthy on {url} within {timeout:.0f} s "
                                   f"(last log line: {_last_log_line(log)}); see {log} or raise --timeout")
            time.sleep(0.5)
    finally:
        progress.finish()


_MOVED = re.compile(r"Port (\d+) is in use")


def _port_moved(log: Path) -> str | None:
    """Label Studio silently moves to the next port when its own is taken; we do not."""
    tail = _log_tail(log, 40)
    start = tail.rfind("==> ferdata starts")
    m = _MOVED.search(tail[start:] if start >= 0 else tail)
    return f"port {m.group(1)} became busy while Label Studio started" if m else None


def _log_tail(log: Path, lines: int) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _last_log_line(log: Path) -> str:
    lines = [ln.strip() for ln in _log_tail(log, 20).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the server's process group, SIGKILL what is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return True
        except PermissionError:
            return False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not group_members(pid):
                return True
            time.sleep(0.2)
    return not group_members(pid)


def stop(timeout: float = STOP_TIMEOUT_S) -> StopResult:
    """Stop the server ``start`` launched, and nothing else."""
    p = paths()
    with file_lock(p["lock"]):
        state = read_state(p["state"])
        if state is None:
            return StopResult(False, None, "no ferdata Label Studio server is running (no PID file)")
        if not is_our_process(state):
            why = _describe_stale(state, p["state"])
            p["state"].unlink(missing_ok=True)
            return StopResult(False, state.pid or None, f"{why}; removed the PID file, stopped nothing")
        if not _terminate(state.pid, timeout):
            raise FerdataError(f"could not stop Label Studio (pid {state.pid}); stop it by hand: kill {state.pid}")
        p["state"].unlink(missing_ok=True)
        return StopResult(True, state.pid, f"stopped Label Studio on {state.url} (pid {state.pid})")


def status() -> ServerStatus:
    """Running or not, healthy or not, and where: a query that changes nothing."""
    p = paths()
    state = read_state(p["state"])
    if state is None:
        return ServerStatus(False, False, None, None, None,
                            "no ferdata Label Studio server is running; start one with 'ferdata review server start'",
                            p["home"])
    if not is_our_process(state):
        return ServerStatus(False, False, state.url or None, state.pid or None, state.document_root or None,
                            _describe_stale(state, p["state"]) + "; 'ferdata review server start' starts it again",
                            p["home"])
    creds = read_credentials(p["credentials"])
    health = probe(state.url, creds.token if creds else None)
    message = {"ok": f"Label Studio {state.version} is running on {state.url} (pid {state.pid})",
               "starting": f"Label Studio on {state.url} (pid {state.pid}) runs but is not healthy yet",
               "down": f"Label Studio (pid {state.pid}) runs but does not answer on {state.url}; "
                       f"see 'ferdata review server logs'",
               "token": f"Label Studio on {state.url} refuses the token in {p['credentials']}"}[health]
    return ServerStatus(True, health == "ok", state.url, state.pid, state.document_root, message, p["home"],
                        state.version or LS_VERSION)


def log_lines(lines: int = 50) -> tuple[Path, list[str]]:
    """The last ``lines`` lines of the server's log."""
    log = paths()["log"]
    if not log.exists():
        raise FerdataError(f"no server log at {log}; start the server with 'ferdata review server start'")
    return log, _log_tail(log, lines).splitlines()


def managed() -> Managed | None:
    """The managed server's URL, token and document root, when it runs; ``None`` when it
    was never started; :class:`ServerNotRunning` when its PID file names a dead process."""
    p = paths()
    state = read_state(p["state"])
    if state is None:
        return None
    if not is_our_process(state):
        raise ServerNotRunning(_describe_stale(state, p["state"]) + "; 'ferdata review server start' starts it again")
    creds = read_credentials(p["credentials"])
    if creds is None:
        raise FerdataError(f"{p['credentials']} is missing; stop the server, remove {p['data']} and start again")
    return Managed(state.url, creds.token, Path(state.document_root))


__all__ = ["DEFAULT_PORT", "HOST", "Credentials", "Managed", "ServerNotRunning", "ServerState", "ServerStatus",
           "StartResult", "StopResult", "choose_document_root", "log_lines", "managed", "manifest_image_roots",
           "read_credentials", "start", "status", "stop", "venv_dir"]
