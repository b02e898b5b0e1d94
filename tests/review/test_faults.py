"""What goes wrong with a server, and what must not reach the manifest: a stopped server,
a wrong token, a 5xx in the middle of a push, a malformed export, and tasks that name a
file outside the dataset root. Each is one line, a non-zero exit, and an unchanged manifest."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.errors import FerdataError
from ferdata.manifest import Manifest
from ferdata.manifest.effective import label_decisions
from ferdata.noise import flag, read_run_predictions
from ferdata.review import PushInterrupted, connect, pull, push
from ferdata.review.pull import parse_export
from tests.noise_helpers import fake_manifest, synthetic_runs

runner = CliRunner()


def flagged(tmp_path: Path, name: str) -> Manifest:
    manifest = fake_manifest(tmp_path, name)
    runs, _ = synthetic_runs(manifest, tmp_path / f"runs-{name}")
    flag(manifest, read_run_predictions(runs), filter_by="low_score")  # confident learning's count, as the counts below expect
    return manifest


def snapshot(manifest: Manifest) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(manifest.dir.iterdir()) if p.is_file()}


def fails(args: list[str], message: str, secret: str | None = None) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    if secret:
        assert secret not in result.output
    return result.output


class Faulty(httpx.BaseTransport):
    """Passes requests to the real server unless ``hook`` answers them itself."""

    def __init__(self, hook: Callable[[httpx.Request], httpx.Response | None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.hook(request) or self.inner.handle_request(request)


def test_parse_export_rejects_malformed_json():
    for raw, message in ((b"<html>oops</html>", "is not JSON"), (b'{"a": 1}', "not a list of tasks"),
                         (b'[{"id": "x", "data": {}}]', "without an integer id"),
                         (b"\xff\xfe", "is not JSON")):
        with pytest.raises(FerdataError, match=message):
            parse_export(raw, "p")
    assert parse_export(b'[{"id": 1, "data": {}, "annotations": []}]', "p")[0]["id"] == 1


def test_missing_url_or_token(monkeypatch, tmp_path):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(FerdataError, match="LABEL_STUDIO_URL"):
        connect()
    with pytest.raises(FerdataError, match="LABEL_STUDIO_API_KEY"):
        connect("http://127.0.0.1:1")
    with pytest.raises(FerdataError, match="not an http"):
        connect("ftp://x", "t")


def test_stopped_server(tmp_path, monkeypatch):
    manifest = flagged(tmp_path, "stopped")
    with socket.socket() as s:  # a port nobody listens on: the server is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "secret-token-value")
    before = snapshot(manifest)
    for command in ("push", "pull", "status"):
        fails(["review", command, "stopped"], f"cannot reach Label Studio at http://127.0.0.1:{port}",
              "secret-token-value")
    assert snapshot(manifest) == before


@pytest.mark.labelstudio
def test_wrong_token(tmp_path, ls_env, monkeypatch):
    manifest = flagged(tmp_path, "token")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-right-token-1234")
    before = snapshot(manifest)
    for command in ("push", "pull", "status"):
        fails(["review", command, "token"], "refused the API token (HTTP 401)", "not-the-right-token-1234")
    assert snapshot(manifest) == before


@pytest.mark.labelstudio
def test_local_files_storage_serves_the_dataset(tmp_path, ls_env, monkeypatch):
    manifest = flagged(tmp_path, "local")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    result = runner.invoke(app, ["review", "push", "local", "--top", "3", "--images", "local"])
    assert result.exit_code == 0, result.output
    client = ls_env.client()
    [project] = [p for p in client.projects.list() if p.title == "ferdata local"]
    [storage] = client.import_storage.local.list(project=project.id)
    assert Path(storage.path) == manifest.image_root.resolve()
    tasks = list(client.tasks.list(project=project.id, fields="all"))
    assert len(tasks) == 3
    for task in tasks:
        assert task.data["image"].startswith("/data/local-files/?d=")
        got = httpx.get(ls_env.url + task.data["image"], headers={"Authorization": f"Token {ls_env.token}"})
        assert got.status_code == 200 and got.content == (manifest.resolve(task.data["path"])).read_bytes()
    # outside the server's document root, local images are refused with the fix
    fails(["review", "push", "local", "--images", "local", "--document-root", str(tmp_path / "elsewhere")],
          "outside the document root")


@pytest.mark.labelstudio
def test_5xx_in_the_middle_of_a_push_then_a_repush_completes(tmp_path, ls_env):
    manifest = flagged(tmp_path, "flaky")
    imports = []

    def imports_fail_after_the_first(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/import"):
            imports.append(request)
            if len(imports) >= 2:  # the client retries a 5xx; this server stays broken
                return httpx.Response(502, json={"detail": "bad gateway"})
        return None

    flaky = connect(ls_env.url, ls_env.token, httpx_client=httpx.Client(transport=Faulty(imports_fail_after_the_first)))
    before = snapshot(manifest)
    with pytest.raises(PushInterrupted, match=r"HTTP 502.* 4 of 9 new tasks were imported") as err:
        push(manifest, flaky, top=9, batch=4)
    assert ls_env.token not in str(err.value)
    client = ls_env.client()
    [project] = [p for p in client.projects.list() if p.title == "ferdata flaky"]
    assert len(list(client.tasks.list(project=project.id))) == 4

    result = push(manifest, connect(ls_env.url, ls_env.token), top=9, batch=4)
    assert (result.n_existing, result.n_imported, result.n_predictions) == (4, 5, 18)  # given + suggestion
    tasks = list(client.tasks.list(project=project.id, fields="all"))
    assert len(tasks) == 9 and len({t.data["image_id"] for t in tasks}) == 9
    assert all(len(t.predictions) == 2 and "ferdata-given-label" in {p.model_version for p in t.predictions}
               for t in tasks)
    assert push(manifest, connect(ls_env.url, ls_env.token), top=9).n_predictions == 0  # nothing twice
    assert snapshot(manifest) == before


def annotate(client, task_id: int, label: str) -> None:
    client.annotations.create(id=task_id, result=[
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}])


@pytest.mark.labelstudio
def test_malformed_export(tmp_path, ls_env):
    manifest = flagged(tmp_path, "garbled")
    conn = connect(ls_env.url, ls_env.token)
    push(manifest, conn, top=2)
    client = ls_env.client()
    [project] = [p for p in client.projects.list() if p.title == "ferdata garbled"]
    task = next(iter(client.tasks.list(project=project.id)))
    annotate(client, task.id, "sad")

    def garbled(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/export"):
            return httpx.Response(200, content=b"<html>proxy error</html>")
        return None

    before = snapshot(manifest)
    bad = connect(ls_env.url, ls_env.token, httpx_client=httpx.Client(transport=Faulty(garbled)))
    with pytest.raises(FerdataError, match="is not JSON.*nothing was written"):
        pull(manifest, bad)
    assert snapshot(manifest) == before
    assert pull(manifest, conn).n_new == 1


@pytest.mark.labelstudio
@pytest.mark.parametrize("field, value", [("path", "../../../../etc/passwd"),
                                          ("path", "/etc/passwd"),
                                          ("image", "/data/local-files/?d=../../etc/passwd"),
                                          ("image_id", "not-an-image")])
def test_task_naming_something_outside_the_dataset_is_refused(tmp_path, ls_env, monkeypatch, field, value):
    name = f"outside{abs(hash((field, value))) % 10_000}"
    manifest = flagged(tmp_path, name)
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    conn = connect()
    push(manifest, conn, top=3)
    client = ls_env.client()
    [project] = [p for p in client.projects.list() if p.title == f"ferdata {name}"]
    tasks = list(client.tasks.list(project=project.id, fields="all"))
    client.tasks.update(str(tasks[0].id), data={**tasks[0].data, field: value})
    annotate(client, tasks[0].id, "happy")
    annotate(client, tasks[1].id, "anger")
    before = snapshot(manifest)
    expected = "is not in manifest" if field == "image_id" else "outside the dataset root"
    fails(["review", "pull", name], expected)
    assert snapshot(manifest) == before and not manifest.table_path("labels.parquet").exists()

    result = runner.invoke(app, ["review", "pull", name, "--skip-invalid"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert expected in result.output
    log = label_decisions(manifest).to_pylist()
    assert [(r["task_id"], r["new_label"]) for r in log] == [(tasks[1].id, "anger")]


def test_a_log_written_before_notes_existed_still_reads_and_grows(tmp_path):
    import pyarrow as pa

    from ferdata.manifest import write_table
    from ferdata.manifest.effective import LABELS_TABLE
    from ferdata.review.pull import append_decisions

    manifest = fake_manifest(tmp_path, "old-log")
    [first, second] = manifest.images(columns=["image_id"]).column("image_id").to_pylist()[:2]
    old = pa.table({"image_id": [first], "old_label": ["anger"], "new_label": ["sad"], "annotator": ["a"],
                    "time": ["t"], "project": ["p"], "task_id": pa.array([1], pa.int64()), "source": ["label-studio"]})
    write_table(manifest.table_path(LABELS_TABLE), old, {"kind": "labels"})
    assert label_decisions(manifest).to_pylist()[0]["note"] is None
    append_decisions(manifest, [{"image_id": second, "old_label": "anger", "new_label": "anger", "annotator": "b",
                                 "time": "u", "project": "p", "task_id": 2, "source": "label-studio",
                                 "note": "kept: clearly angry"}])
    log = label_decisions(manifest).to_pylist()
    assert [(r["image_id"], r["note"]) for r in log] == [(first, None), (second, "kept: clearly angry")]
