"""A real Label Studio server for the review tests, started the way a user starts one.

``label-studio==1.23.2`` lives in its own venv, installed by the same code as
``ferdata review server start`` (:mod:`ferdata.review.install`), cached for later sessions
in ``<repo>/.cache/label-studio-venv`` (git-ignored; a user can run it too). One server per
test session, its data folder temporary, on a free port; tests that start or kill servers
of their own get their own data folder. Without PyPI the install fails and these tests
skip, saying why.

Every review test runs with ``$FERDATA_DATA_HOME`` in a temporary folder, so no test ever
finds (or stops) a server the person running the tests started.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferdata.errors import FerdataError
from ferdata.review import server
from ferdata.review.install import ENV_HOME, ENV_VENV
from tests.conftest import data_root

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "label-studio-venv"
START_TIMEOUT_S = 600.0  # a first run installs and migrates: minutes on a busy 2-core machine


@dataclass
class LabelStudioServer:
    url: str
    token: str
    document_root: Path
    home: Path
    username: str
    password: str

    def client(self, token: str | None = None):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=token or self.token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ls_venv() -> Path:
    """The Label Studio venv for every server the tests start (installed once, reused)."""
    previous = os.environ.get(ENV_VENV)
    os.environ[ENV_VENV] = str(VENV)
    try:
        from ferdata.review.install import ensure_installed

        try:
            ensure_installed(log=VENV.parent / "label-studio-install.log")
        except FerdataError as exc:
            if "cannot install" in str(exc):
                pytest.skip(str(exc))
            raise
        yield VENV
    finally:
        if previous is None:
            os.environ.pop(ENV_VENV, None)
        else:
            os.environ[ENV_VENV] = previous


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ferdata-home"
    monkeypatch.setenv(ENV_HOME, str(home))
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", raising=False)
    return home


def document_root_for(base: Path) -> Path:
    """Above the test's temporary folders and the real data, so local files can be served."""
    real = data_root()
    return Path(os.path.commonpath([str(base.parent.resolve())] + ([str(real.resolve())] if real else [])))


@pytest.fixture(scope="session")
def label_studio(ls_venv: Path, tmp_path_factory: pytest.TempPathFactory):
    """The session's server, started by :func:`ferdata.review.server.start` in its own home."""
    home = tmp_path_factory.mktemp("ls-session-home")
    doc_root = document_root_for(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_HOME, str(home))
        started = server.start(port=free_port(), document_root=doc_root, timeout=START_TIMEOUT_S)
        creds = server.read_credentials()
        assert creds is not None
    try:
        yield LabelStudioServer(started.url, creds.token, doc_root, home, creds.username, creds.password)
    finally:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(ENV_HOME, str(home))
            server.stop()


@pytest.fixture
def ls_env(label_studio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch) -> LabelStudioServer:
    """The server's URL and token in the environment, as a user of a team server would export them."""
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", str(label_studio.document_root))
    return label_studio


@pytest.fixture
def managed_env(label_studio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch) -> LabelStudioServer:
    """No URL or token set: ``ferdata review`` finds the session's managed server by itself."""
    monkeypatch.setenv(ENV_HOME, str(label_studio.home))
    return label_studio
