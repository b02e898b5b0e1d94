"""A real Label Studio server for the review tests.

``label-studio==1.23.2`` conflicts with ferdata's own pins, so it lives in its own virtual
environment under ``<repo>/.cache/label-studio-venv`` (git-ignored, kept between runs).
The server runs on 127.0.0.1 on a free port with a preset user and legacy API token, its
data in a temporary folder, and is stopped when the session ends. Without PyPI the
install fails and these tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import data_root

ROOT = Path(__file__).resolve().parents[2]


VERSION = "1.23.2"
VENV = ROOT / ".cache" / "label-studio-venv"
MARKER = VENV / f".installed-{VERSION}"
#: The database after the first start (migrated, preset user and token): later sessions start
#: from a copy in seconds instead of migrating for a minute.
TEMPLATE_DB = ROOT / ".cache" / f"label-studio-{VERSION}-template.sqlite3"
DB_NAME = "label_studio.sqlite3"
TOKEN = "f3rd4t4-t3st-t0k3n-0000000000000000000000"
USER = "reviewer@example.com"
START_TIMEOUT_S = 240


@dataclass
class LabelStudioServer:
    url: str
    token: str
    document_root: Path
    base: Path

    def client(self, token: str | None = None):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=token or self.token)


def _install() -> Path:
    python = VENV / "bin" / "python"
    if MARKER.exists() and python.exists():
        return python
    tmp = VENV.with_name(f"{VENV.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, timeout=120)
        done = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", f"label-studio=={VERSION}"],
                              capture_output=True, text=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"cannot create a virtual environment for label-studio=={VERSION}: {exc}")
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"cannot install label-studio=={VERSION} from PyPI (no network?): {last}")
    shutil.rmtree(VENV, ignore_errors=True)
    tmp.rename(VENV)  # a venv run as <venv>/bin/python is position-independent
    MARKER.write_text(VERSION)
    return python


def _save_template(db: Path) -> None:
    """Copy the freshly migrated database (SQLite's backup API: consistent while the server runs)."""
    tmp = TEMPLATE_DB.with_name(TEMPLATE_DB.name + f".tmp{os.getpid()}")
    src, dst = sqlite3.connect(db), sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    tmp.rename(TEMPLATE_DB)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    python = _install()
    base = tmp_path_factory.mktemp("label-studio")
    real = data_root()
    doc_root = Path(os.path.commonpath([str(base.parent.resolve())] + ([str(real.resolve())] if real else [])))
    data = base / "data"
    data.mkdir()
    if TEMPLATE_DB.exists():
        shutil.copyfile(TEMPLATE_DB, data / DB_NAME)
    port = _free_port()
    env = {**os.environ,
           "LABEL_STUDIO_USERNAME": USER, "LABEL_STUDIO_PASSWORD": "ferdata-test-pass",
           "LABEL_STUDIO_USER_TOKEN": TOKEN, "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(doc_root),
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "DEBUG": "false"}
    env.pop("LABEL_STUDIO_URL", None)
    env.pop("LABEL_STUDIO_API_KEY", None)
    log = open(base / "server.log", "wb")
    proc = subprocess.Popen(
        [str(python), "-m", "label_studio.server", "start", "--internal-host", "127.0.0.1", "--port", str(port),
         "--host", f"http://127.0.0.1:{port}", "--no-browser", "--enable-legacy-api-token", "--data-dir", str(data)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=base, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited with {proc.returncode}: "
                            + (base / "server.log").read_text(errors="replace")[-2000:])
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not answer on {url} within {START_TIMEOUT_S} s")
            time.sleep(1)
        if not TEMPLATE_DB.exists():
            _save_template(data / DB_NAME)
        yield LabelStudioServer(url, TOKEN, doc_root, base)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def ls_env(label_studio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch) -> LabelStudioServer:
    """The server's URL and token in the environment, as a user would export them."""
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", str(label_studio.document_root))
    return label_studio
