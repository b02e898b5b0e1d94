"""``ferdata review server``: where it lives, its secrets, and every way its PID file can lie.

The faults each end in one clear line: a port in use, a killed server (``status`` says so,
``start`` recovers), a second ``start`` (reuses), a stale PID file (another program has the
pid; ``stop`` leaves that program alone)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.errors import FerdataError
from ferdata.review import connect, server
from ferdata.review.install import LEGACY_MARKER, MARKER, adopt_legacy, data_home, venv_dir
from tests.noise_helpers import fake_manifest
from tests.review.conftest import free_port

runner = CliRunner()


def run(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def one_line(args: list[str], code: int, message: str) -> str:
    out = run(args, code)
    assert message in out and len(out.strip().splitlines()) == 1, out
    return out


def test_data_home_follows_xdg_and_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("FERDATA_DATA_HOME")
    monkeypatch.delenv("FERDATA_LABEL_STUDIO_VENV", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert data_home() == (tmp_path / "me" / ".local" / "share" / "ferdata").resolve()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_home() == (tmp_path / "xdg" / "ferdata").resolve()
    assert venv_dir() == (tmp_path / "xdg" / "ferdata" / "label-studio" / f"venv-{server.LS_VERSION}").resolve()
    monkeypatch.setenv("FERDATA_DATA_HOME", str(tmp_path / "mine"))
    assert server.paths()["credentials"] == (tmp_path / "mine").resolve() / "label-studio" / "credentials.json"
    monkeypatch.setenv("FERDATA_LABEL_STUDIO_VENV", str(tmp_path / "shared-venv"))
    assert venv_dir() == (tmp_path / "shared-venv").resolve()
    assert not (tmp_path / "me").exists()  # asking where things are creates nothing


def test_credentials_are_private_and_stable(tmp_path):
    path = tmp_path / "ls" / "credentials.json"
    old = os.umask(0o022)
    try:
        creds, notes = server.ensure_credentials(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not notes
    assert creds.username.endswith("@localhost") and len(creds.token) == 40 and len(creds.password) >= 20
    assert creds.token not in repr(creds) and creds.password not in repr(creds)
    assert server.ensure_credentials(path)[0] == creds  # generated once, then kept
    path.chmod(0o644)
    again, notes = server.ensure_credentials(path)
    assert again == creds and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "was readable by others" in notes[0]
    path.write_text("{not json")
    with pytest.raises(FerdataError, match="not a ferdata credentials file"):
        server.read_credentials(path)


def test_document_root_is_above_every_manifests_images(tmp_path, monkeypatch):
    a = fake_manifest(tmp_path / "one", "a")
    b = fake_manifest(tmp_path / "two", "b")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for m in (a, b):
        (manifests / m.name).symlink_to(m.dir)
    roots = server.manifest_image_roots(manifests)
    assert roots == [a.image_root.resolve(), b.image_root.resolve()]
    assert server.choose_document_root(None, roots) == tmp_path.resolve()
    assert server.choose_document_root(tmp_path / "one", roots) == (tmp_path / "one").resolve()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert server.choose_document_root(None, []) == tmp_path.resolve()
    with pytest.raises(FerdataError, match="is not a folder"):
        server.choose_document_root(tmp_path / "nope", roots)


def test_no_server_yet():
    one_line(["review", "server", "status"], 1, "no ferdata Label Studio server is running; start one with "
                                                 "'ferdata review server start'")
    one_line(["review", "server", "stop"], 0, "no ferdata Label Studio server is running")
    one_line(["review", "server", "logs"], 2, "no server log at")
    with pytest.raises(FerdataError, match="start one with 'ferdata review server start'"):
        connect()


def write_state(pid: int, port: int = 1) -> Path:
    state = server.paths()["state"]
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"pid": pid, "started": None, "port": port, "url": f"http://127.0.0.1:{port}",
                                 "document_root": "/", "version": server.LS_VERSION, "started_at": "then"}))
    return state


def test_stale_pid_file_naming_another_program_is_left_alone():
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = write_state(other.pid)
        one_line(["review", "server", "status"], 1, f"was stale: pid {other.pid} is now another program")
        with pytest.raises(FerdataError, match="was stale"):
            connect()
        one_line(["review", "server", "stop"], 0, "removed the PID file, stopped nothing")
        assert other.poll() is None and not state.exists()  # that program still runs
        state.write_text("{garbage")
        one_line(["review", "server", "status"], 1, "server.json was unreadable")
        one_line(["review", "server", "stop"], 0, "was unreadable; removed the PID file")
    finally:
        other.kill()
        other.wait()


def test_pid_file_of_a_dead_server(tmp_path, monkeypatch):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_state(gone.pid, 18999)
    out = one_line(["review", "server", "status"], 1, "is no longer running (killed or crashed); "
                                                        "'ferdata review server start' starts it again")
    assert f"pid {gone.pid}" in out
    manifest = fake_manifest(tmp_path, "dead")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    one_line(["review", "status", "dead"], 1, "is no longer running (killed or crashed)")
    # a team server in the environment wins over the dead local one
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "team-token-123456")
    one_line(["review", "status", "dead"], 2, "cannot reach Label Studio at http://127.0.0.1:")


def test_port_in_use_is_one_line_and_leaves_nothing_running():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line(["review", "server", "start", "--port", str(port)], 2,
                 f"port {port} on 127.0.0.1 is already in use by another program; pick a free one with "
                 f"'ferdata review server start --port {port + 1}'")
    assert not server.paths()["state"].exists()


def test_a_venv_built_elsewhere_and_renamed_here_is_repaired(tmp_path):
    """What the test suite's old fixture left in .cache: scripts whose shebang names
    <venv>.tmpNNNN, a folder that no longer exists."""
    venv = tmp_path / "label-studio-venv"
    (venv / "bin").mkdir(parents=True)
    site = tmp_path / "site"
    for pkg in ("label_studio", "django"):
        (site / pkg).mkdir(parents=True)
        (site / pkg / "__init__.py").write_text("")
    python = venv / "bin" / "python"  # a stand-in interpreter that sees the fake packages
    python.write_text(f'#!/bin/sh\nexport PYTHONPATH={site}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    moved = f"{venv}.tmp4242"
    pip = venv / "bin" / "pip"
    pip.write_text(f"#!{moved}/bin/python\nimport label_studio, django\nprint('pip ok')\n")
    pip.chmod(0o755)
    (venv / "bin" / "activate").write_text(f'VIRTUAL_ENV="{moved}"\nexport VIRTUAL_ENV\n')
    assert not adopt_legacy(venv)  # no marker of the old fixture: not ours to repair
    (venv / LEGACY_MARKER).write_text(server.LS_VERSION)
    with pytest.raises(FileNotFoundError):  # broken as found: "required file not found"
        subprocess.run([str(pip)], capture_output=True)
    assert adopt_legacy(venv)
    assert subprocess.run([str(pip)], capture_output=True, text=True).stdout.strip() == "pip ok"
    assert f'VIRTUAL_ENV="{venv}"' in (venv / "bin" / "activate").read_text()
    assert (venv / MARKER).read_text().strip() == server.LS_VERSION


@pytest.mark.labelstudio
def test_start_reuse_kill_recover_stop(ls_venv, tmp_path, monkeypatch):
    port = free_port()
    manifest = fake_manifest(tmp_path, "life")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    t0 = time.monotonic()
    out = run(["review", "server", "start", "--port", str(port)])
    first_start_s = time.monotonic() - t0
    p = server.paths()
    creds = server.read_credentials()
    url = f"http://127.0.0.1:{port}"
    assert url in out and "log in as" in out and creds.username in out and str(p["credentials"]) in out
    assert str(manifest.image_root.resolve()) in out  # local files served from the manifests' images
    for secret in (creds.token, creds.password):
        assert secret not in out
        assert secret not in p["log"].read_text() and secret not in p["state"].read_text()
    assert stat.S_IMODE(p["credentials"].stat().st_mode) == 0o600
    pid = server.read_state().pid
    assert httpx.get(f"{url}/api/projects", headers={"Authorization": f"Token {creds.token}"}).status_code == 200

    out = run(["review", "server", "start", "--port", str(port)])
    assert "already running: reused" in out and f"pid {pid}" in out
    assert "healthy" in run(["review", "server", "status"])
    assert "Starting development server" in run(["review", "server", "logs", "-n", "200"])

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    one_line(["review", "server", "status"], 1, "is no longer running (killed or crashed); "
                                                 "'ferdata review server start' starts it again")
    one_line(["review", "status", "life"], 1, "is no longer running (killed or crashed)")

    out = run(["review", "server", "start", "--port", str(port)])
    assert "note: the server recorded in" in out and "starting a new one" in out
    new_pid = server.read_state().pid
    assert new_pid != pid and f"pid {new_pid}" in out
    assert "healthy" in run(["review", "server", "status"])

    out = run(["review", "server", "stop"])
    assert f"stopped Label Studio on {url} (pid {new_pid})" in out
    assert server.group_members(new_pid) == [] and not p["state"].exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    one_line(["review", "server", "stop"], 0, "no ferdata Label Studio server is running")
    print(f"first start of this home (template database, venv cached): {first_start_s:.1f} s")


@pytest.mark.labelstudio
def test_review_commands_find_the_managed_server(managed_env, tmp_path, monkeypatch):
    from ferdata.noise import flag, read_run_predictions
    from tests.noise_helpers import synthetic_runs

    manifest = fake_manifest(tmp_path, "found")
    flag(manifest, read_run_predictions(synthetic_runs(manifest, tmp_path / "runs")[0]))
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    out = run(["review", "push", "found", "--top", "2"])
    assert f"{managed_env.url}/projects/" in out
    assert re.search(r"images\s*│\s*local", out)  # the managed server's document root covers the files
    assert managed_env.token not in out
    client = managed_env.client()
    [project] = [p for p in client.projects.list() if p.title == "ferdata found"]
    task = next(iter(client.tasks.list(project=project.id, fields="all")))
    got = httpx.get(managed_env.url + task.data["image"], headers={"Authorization": f"Token {managed_env.token}"})
    assert got.status_code == 200 and got.content == manifest.resolve(task.data["path"]).read_bytes()
    assert "to annotate" in run(["review", "status", "found"])
    # a task pushed by an older ferdata (no "suggestion" for the view) is brought up to date
    client.tasks.update(str(task.id), data={k: v for k, v in task.data.items() if k != "suggestion"})
    run(["review", "push", "found", "--top", "2"])
    assert client.tasks.get(task.id).data["suggestion"] == task.data["suggestion"]
    # a URL and token in the environment win: here a server that is not there
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "someone-elses-token")
    one_line(["review", "status", "found"], 2, "cannot reach Label Studio at http://127.0.0.1:")
    # the managed server's URL alone borrows the stored token
    monkeypatch.setenv("LABEL_STUDIO_URL", managed_env.url.replace("127.0.0.1", "localhost"))
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    assert "to annotate" in run(["review", "status", "found"])


def test_without_pypi_the_install_fails_in_one_line_and_leaves_no_half_venv(tmp_path, monkeypatch):
    venv = tmp_path / "ls-venv"
    monkeypatch.setenv("FERDATA_LABEL_STUDIO_VENV", str(venv))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as without a network: pip finds nothing
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    out = one_line(["review", "server", "start", "--port", str(free_port())], 2,
                   f"cannot install label-studio=={server.LS_VERSION} into {venv}: ")
    assert "check that PyPI is reachable" in out and "install.log" in out
    assert not venv.exists() and not server.paths()["state"].exists()
