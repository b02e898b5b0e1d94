"""The review loop as a person does it, in a real browser (Debian's Chromium, driven by
Playwright): start the managed server, push five JAFFE suspects, log in, open the project,
look at each task at 1366x768, relabel two (one with a note), keep one, pull, stop.

Skips cleanly where Chromium or Playwright is missing (scripts/test.sh installs both)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.manifest import Manifest
from ferdata.manifest.effective import images_with_effective_labels, label_decisions
from ferdata.review import server
from tests.noise_helpers import cached_fold_runs
from tests.review.conftest import free_port

pytestmark = [pytest.mark.labelstudio, pytest.mark.real_data]
runner = CliRunner()
VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTE = "Clearly smiling: the given label is wrong"
#: The task id Label Studio shows in the editor's bottom bar ("#12"; the "#" is CSS).
TASK_ID_JS = """() => {
  const el = document.querySelector('.lsf-current-task__task-id');
  const text = el && el.firstChild ? el.firstChild.textContent.trim() : '';
  return /^\\d+$/.test(text) ? Number(text) : null;
}"""
IMAGE_READY_JS = """() => {
  const img = document.querySelector('img[alt="image"]');
  return !!img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0;
}"""
#: Whether an element is inside the viewport and is what a click at its centre would hit.
VISIBLE_JS = """(el) => {
  const r = el.getBoundingClientRect();
  const inside = r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 &&
                 r.right <= window.innerWidth && r.bottom <= window.innerHeight;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return inside && !!hit && (el === hit || el.contains(hit) || hit.contains(el));
}"""


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.skip("Chromium not found (Debian: apt-get install chromium; scripts/test.sh does it as root)")
    return path


@contextlib.contextmanager
def browser_page(profile: Path) -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium(), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def run(args: list[str]) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    """Kept with the test's files, and copied to $FERDATA_SCREENSHOTS when set (to look at)."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    if os.environ.get("FERDATA_SCREENSHOTS"):
        target = Path(os.environ["FERDATA_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / name)
    return path


def test_a_reviewer_relabels_two_and_keeps_one_in_a_real_browser(real_manifest, ls_venv, tmp_path,
                                                                  tmp_path_factory, monkeypatch):
    chromium()
    pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install -e .[dev])")
    source = real_manifest("jaffe")
    manifest = Manifest(shutil.copytree(source.dir, tmp_path / "manifests" / "jaffe"))
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    runs = cached_fold_runs(source, tmp_path_factory.mktemp("jaffe-runs"))
    run(["flag", "jaffe", "--from-runs", str(runs[0].parent)])

    port = free_port()
    out = run(["review", "server", "start", "--port", str(port)])
    pid = server.read_state().pid
    creds = server.read_credentials()
    url = f"http://127.0.0.1:{port}"
    try:
        assert url in out and creds.username in out and creds.token not in out and creds.password not in out
        out = run(["review", "push", "jaffe", "--top", "5"])
        assert re.search(r"tasks imported\s*│\s*5", out)
        client = server_client(url, creds.token)
        [project] = [p for p in client.projects.list() if p.title == "ferdata jaffe"]
        tasks = {t.id: t for t in client.tasks.list(project=project.id, fields="all")}
        classes = project.parsed_label_config["label"]["labels"]

        done: dict[int, tuple[str, str, str | None]] = {}  # task id -> (given, chosen, note)
        with browser_page(tmp_path / "chromium-profile") as page:
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", creds.username)
            page.fill("input[name=password]", creds.password)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/(projects|$).*"))
            page.goto(f"{url}/projects/{project.id}/data")
            page.get_by_text("Label All Tasks").click()
            for step, action in enumerate(("relabel with a note", "relabel", "keep")):
                page.wait_for_function(f"() => ({TASK_ID_JS})() !== null && !{list(done)}.includes(({TASK_ID_JS})())")
                page.wait_for_function(IMAGE_READY_JS)
                task_id = page.evaluate(TASK_ID_JS)
                task = tasks[task_id]
                given, suggested = task.data["given_label"], task.data["suggested_label"]
                page.get_by_text(f"Given label: {given}", exact=True).wait_for()
                page.wait_for_timeout(300)  # let the canvas draw the image
                if step == 0:
                    shot = save_screenshot(page, tmp_path, "review-task-1366x768.png")
                    print(f"reviewer's view: {shot}")
                # the image is drawn: a screenshot of it is not blank
                box = page.locator(".lsf-image").first.bounding_box()
                pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("L"), dtype=float)
                assert pixels.std() > 10 and np.ptp(pixels) > 80, "the image area is blank"
                # everything needed to decide is on screen at 1366x768, without scrolling
                page.get_by_text("ferdata suggests: " + suggested).first.wait_for()
                for label in classes:
                    assert page.locator(f"label:has(input[name='{label}'])").evaluate(VISIBLE_JS), label
                submit = page.get_by_test_id("bottombar-submit-button")
                assert submit.evaluate(VISIBLE_JS), "Submit is not on screen"
                # the given label is pre-selected, not ferdata's suggestion
                assert page.locator("input.ant-radio-input:checked").get_attribute("name") == given
                chosen, note = given, None
                if action.startswith("relabel"):
                    chosen = next(c for c in classes if c not in (given, suggested))
                    page.click(f"label:has(input[name='{chosen}'])")
                    assert page.locator("input.ant-radio-input:checked").get_attribute("name") == chosen
                if action.endswith("note"):
                    note = NOTE
                    page.fill("textarea[name=note]", note)
                submit.click()
                page.get_by_text("Annotation saved successfully").first.wait_for()
                done[task_id] = (given, chosen, note)
            save_screenshot(page, tmp_path, "review-after-3-submits.png")

        out = run(["review", "pull", "jaffe"])
        assert re.search(r"labels changed\s*│\s*2", out) and re.search(r"labels kept\s*│\s*1", out)
        log = label_decisions(manifest).to_pylist()
        assert len(log) == 3
        assert {r["task_id"]: (r["old_label"], r["new_label"], r["note"]) for r in log} == done
        assert {r["annotator"] for r in log} == {creds.username}
        assert all(r["source"] == "label-studio" and r["project"] == "ferdata jaffe" for r in log)
        effective = images_with_effective_labels(manifest).to_pylist()
        changed = {r["image_id"]: (r["label_original"], r["label"]) for r in effective if r["label"] != r["label_original"]}
        assert changed == {tasks[t].data["image_id"]: (g, c) for t, (g, c, _) in done.items() if g != c}
        assert len(changed) == 2
        out = run(["info", "jaffe", "--relabels"])
        assert "2 relabelled, 1 kept" in out and NOTE in " ".join(out.replace("│", " ").split())
    finally:
        out = run(["review", "server", "stop"])
    assert f"stopped Label Studio on {url} (pid {pid})" in out
    assert server.group_members(pid) == []  # no process of the server's group is left
    with pytest.raises(ConnectionRefusedError):  # and nothing answers on its port
        socket.create_connection(("127.0.0.1", port), timeout=5)


def server_client(url: str, token: str):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=token)
