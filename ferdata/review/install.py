"""Label Studio in a virtual environment of its own, under ferdata's data folder.

``label-studio`` pins Django, numpy and friends that conflict with ferdata's own pins, so
it never goes into ferdata's environment. Its venv is created where it stays (its scripts'
shebangs point at that folder, so ``<venv>/bin/label-studio`` runs for a user too), under a
lock, and a marker written last says the install is complete: a half-done install is
removed and redone. A database migrated once at install time (no users, no secret key) is
kept in the venv, so a new server copies it and starts in seconds instead of migrating
for a minute and a half.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ferdata.errors import FerdataError
from ferdata.progress import NullProgress, ProgressSink

LS_VERSION = "1.23.2"
ENV_HOME = "FERDATA_DATA_HOME"
ENV_VENV = "FERDATA_LABEL_STUDIO_VENV"
MARKER = ".ferdata-installed"
#: What the test suite wrote before it used this module: its venv was built in a temporary
#: folder and renamed, so its scripts' shebangs name a folder that no longer exists.
LEGACY_MARKER = f".installed-{LS_VERSION}"
TEMPLATE_DB = "ferdata-template.sqlite3"
DB_NAME = "label_studio.sqlite3"
#: Generous: on a 2-core machine shared with heavy jobs pip alone has taken over 30 minutes.
INSTALL_TIMEOUT_S = 7200
MIGRATE_TIMEOUT_S = 7200
#: Label Studio would otherwise ask PyPI for its latest version and send analytics.
QUIET_ENV = {"LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "DEBUG": "false",
             "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}


def data_home() -> Path:
    """ferdata's per-user data folder: ``$FERDATA_DATA_HOME``, else ``$XDG_DATA_HOME/ferdata``,
    else ``~/.local/share/ferdata``."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return (base / "ferdata").resolve()


def server_home() -> Path:
    """Where the managed server keeps its database, credentials, PID file and log."""
    return data_home() / "label-studio"


def venv_dir() -> Path:
    """``$FERDATA_LABEL_STUDIO_VENV`` (one install shared by several data folders, as the
    tests do), else ``<data home>/label-studio/venv-<version>``."""
    if os.environ.get(ENV_VENV):
        return Path(os.environ[ENV_VENV]).expanduser().resolve()
    return server_home() / f"venv-{LS_VERSION}"


def venv_python(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "python"


def is_installed(venv: Path | None = None) -> bool:
    venv = venv or venv_dir()
    marker = venv / MARKER
    return venv_python(venv).exists() and marker.exists() and marker.read_text().strip() == LS_VERSION


def template_db(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / TEMPLATE_DB


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (two ``start`` commands at once wait for each other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment Label Studio runs with: ours, minus any server URL or token the user
    exported (those are for ferdata's client, not for the server), plus the quiet settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "DJANGO_")) and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(QUIET_ENV)
    env.update(extra)
    return env


def ensure_installed(progress: ProgressSink | None = None, log: Path | None = None) -> tuple[Path, bool]:
    """The venv's Python, installing ``label-studio==LS_VERSION`` first when needed.

    Returns ``(python, installed_now)``. Without PyPI the install fails with one line that
    names the log holding pip's output.
    """
    progress = progress or NullProgress()
    venv = venv_dir()
    if is_installed(venv) and template_db(venv).exists():
        return venv_python(venv), False
    log = log or server_home() / "install.log"
    with file_lock(venv.with_name(venv.name + ".lock")):
        installed_now = False
        if not is_installed(venv) and not adopt_legacy(venv):
            _install(venv, log, progress)
            installed_now = True
        if not template_db(venv).exists():
            make_template_db(venv, log, progress)
    return venv_python(venv), installed_now


def _install(venv: Path, log: Path, progress: ProgressSink) -> None:
    shutil.rmtree(venv, ignore_errors=True)  # a half-done install: start over
    venv.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    progress.start(f"installing label-studio {LS_VERSION} into {venv} (once)", 0)
    try:
        with open(log, "ab") as out:
            for cmd in ([base, "-m", "venv", str(venv)],
                        [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                         f"label-studio=={LS_VERSION}"]):
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=INSTALL_TIMEOUT_S, env=quiet_env())
                if done.returncode != 0:
                    raise FerdataError(f"cannot install label-studio=={LS_VERSION} into {venv}: "
                                       f"{_last_line(log)}; check that PyPI is reachable (pip's output: {log})")
    except subprocess.TimeoutExpired:
        shutil.rmtree(venv, ignore_errors=True)
        raise FerdataError(f"installing label-studio=={LS_VERSION} took over {INSTALL_TIMEOUT_S} s; "
                           f"check the network and try again (pip's output: {log})") from None
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    finally:
        progress.finish()
    (venv / MARKER).write_text(LS_VERSION + "\n")


def adopt_legacy(venv: Path) -> bool:
    """Repair a venv built elsewhere and renamed here: point its scripts at this folder.
    Returns whether the venv is now complete (else it is reinstalled)."""
    if not (venv / LEGACY_MARKER).exists() or not venv_python(venv).exists():
        return False
    moved = re.compile(re.escape(str(venv)).encode() + rb"\.tmp\d+")
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if b"\0" in data[:4096]:
            continue
        fixed = moved.sub(str(venv).encode(), data)
        if fixed != data:
            tmp = script.with_name(script.name + ".tmp")
            tmp.write_bytes(fixed)
            os.chmod(tmp, script.stat().st_mode)
            os.replace(tmp, script)
    # a rewritten script runs (pip's), and the package imports (without touching any data folder)
    for cmd in ([str(venv / "bin" / "pip"), "--version"],
                [str(venv_python(venv)), "-c", "import label_studio, django"]):
        try:
            if subprocess.run(cmd, capture_output=True, timeout=300, env=quiet_env()).returncode != 0:
                return False
        except OSError:
            return False
    (venv / MARKER).write_text(LS_VERSION + "\n")
    return True


def make_template_db(venv: Path, log: Path, progress: ProgressSink) -> None:
    """Migrate an empty database once (``label-studio version`` migrates, then prints)."""
    progress.start("preparing Label Studio's database (once)", 0)
    work = Path(tempfile.mkdtemp(prefix="ferdata-ls-migrate-", dir=venv))
    try:
        with open(log, "ab") as out:
            cmd = [str(venv_python(venv)), "-m", "label_studio.server", "version", "--data-dir", str(work)]
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                                  timeout=MIGRATE_TIMEOUT_S,
                                  env=quiet_env(LABEL_STUDIO_BASE_DATA_DIR=str(work)))
        db = work / DB_NAME
        if done.returncode != 0 or not db.exists():
            raise FerdataError(f"Label Studio {LS_VERSION} could not create its database: {_last_line(log)} "
                               f"(full output: {log}); remove {venv} and try again")
        tmp = template_db(venv).with_suffix(".tmp")
        shutil.copyfile(db, tmp)
        os.replace(tmp, template_db(venv))
    except subprocess.TimeoutExpired:
        raise FerdataError(f"Label Studio's database migration took over {MIGRATE_TIMEOUT_S} s (output: {log})") \
            from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # its .env holds a secret key we do not keep
        progress.finish()


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    interesting = [ln for ln in lines if not ln.startswith("WARNING: Location")]
    return (interesting or lines or ["no output"])[-1][:300]
