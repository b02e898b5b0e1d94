"""``ferdata review pull``: finished annotations back into the append-only ``labels.parquet``.

Everything in an export is outside data: each task is checked (a known image_id, its
path inside the dataset root, one label from the class set) before anything is written.
A pull is idempotent: a decision already in the log for that task is not appended again.
Keeping the given label is a decision too (a row whose new_label equals old_label), and
the reviewer's note rides along. ``images.parquet`` is never touched; the effective label
is the latest decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from ferdata.datasets.base import inside
from ferdata.errors import FerdataError
from ferdata.manifest import Manifest, read_metadata, table_from_rows, write_table
from ferdata.manifest.effective import images_with_effective_labels, label_decisions
from ferdata.manifest.schema import LABELS_SCHEMA
from ferdata.manifest.tables import LABELS_TABLE
from ferdata.noise import read_suspects
from ferdata.review.connection import Connection
from ferdata.review.project import CONTROL, NOTE, find_project, local_files_param, project_title

NOTE_MAX = 2000

SOURCE = "label-studio"


@dataclass
class PullResult:
    project_id: int
    title: str
    n_tasks: int
    n_annotated: int
    n_new: int
    n_already: int
    rejected: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    n_changed: int = 0
    n_kept: int = 0


def export_tasks(conn: Connection, project_id: int, title: str) -> list[dict[str, Any]]:
    """The project's annotated tasks as JSON, checked for shape."""
    with conn.calling(f"exporting project {title!r}"):
        raw = b"".join(conn.client.projects.exports.download_sync(project_id, export_type="JSON",
                                                                  download_all_tasks=False))
    return parse_export(raw, title)


def parse_export(raw: bytes, title: str) -> list[dict[str, Any]]:
    try:
        tasks = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FerdataError(f"the export of project {title!r} is not JSON ({exc.msg if hasattr(exc, 'msg') else exc}); "
                           "nothing was written — check the server and pull again") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise FerdataError(f"the export of project {title!r} is not a list of tasks; nothing was written")
    for t in tasks:
        if not isinstance(t.get("id"), int) or not isinstance(t.get("data"), dict) \
                or not isinstance(t.get("annotations", []), list):
            raise FerdataError(f"the export of project {title!r} has a task without an integer id, a data object "
                               "or an annotation list; nothing was written")
    return tasks


def user_names(conn: Connection) -> dict[int, str]:
    """``{user id: email}``; ids stay ids where the server will not list its users."""
    try:
        with conn.calling("listing users"):
            return {u.id: (u.email or u.username or f"user {u.id}") for u in conn.client.users.list()}
    except FerdataError:
        return {}


def latest_choice(task: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str] | None]:
    """The newest finished (not cancelled) annotation and its chosen labels."""
    done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None, None
    ann = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
    choices: list[str] = []
    for item in ann.get("result") or []:
        if isinstance(item, dict) and item.get("from_name") == CONTROL and item.get("type") == "choices":
            value = item.get("value") or {}
            choices.extend(value.get("choices") or [])
    return ann, choices


def annotation_note(ann: dict[str, Any]) -> str | None:
    """The reviewer's free-text note (``None`` when empty), whitespace-normalised and capped."""
    texts: list[str] = []
    for item in ann.get("result") or []:
        if isinstance(item, dict) and item.get("from_name") == NOTE and item.get("type") == "textarea":
            value = (item.get("value") or {}).get("text") or []
            texts.extend(t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str))
    note = " ".join(" ".join(texts).split())
    return note[:NOTE_MAX] or None


def check_task(task: dict[str, Any], choices: list[str], known: dict[str, dict[str, Any]],
               manifest: Manifest, classes: list[str]) -> str | None:
    """Why this task's decision cannot be accepted, or ``None`` when it can."""
    data = task["data"]
    image_id = data.get("image_id")
    if not isinstance(image_id, str) or image_id not in known:
        return f"task {task['id']}: image_id {image_id!r} is not in manifest {manifest.name}"
    root = manifest.image_root
    path = data.get("path")
    if path is not None:
        if not isinstance(path, str) or not inside(root, path):
            return f"task {task['id']}: path {path!r} is outside the dataset root {root}"
        if path != known[image_id]["path"]:
            return f"task {task['id']}: path {path!r} is not the path of image {image_id}"
    local = local_files_param(data.get("image"))
    if local is not None:
        tail = PurePosixPath(known[image_id]["path"])
        given = PurePosixPath(local)
        if given.is_absolute() or ".." in given.parts or given.parts[-len(tail.parts):] != tail.parts:
            return f"task {task['id']}: image {data.get('image')!r} names a file outside the dataset root {root}"
    if len(choices) != 1:
        return f"task {task['id']}: expected one chosen label, got {len(choices)}"
    if choices[0] not in classes:
        return f"task {task['id']}: label {choices[0]!r} is not one of {', '.join(classes)}"
    return None


def pull(manifest: Manifest, conn: Connection, *, title: str | None = None, dry_run: bool = False,
         skip_invalid: bool = False) -> PullResult:
    """Append the project's new decisions to ``labels.parquet`` (nothing with ``dry_run``).

    An invalid task stops the pull with nothing written, unless ``skip_invalid``, which
    takes the valid ones and lists the rest.
    """
    title = title or project_title(manifest.name)
    _, meta = read_suspects(manifest)
    classes = list(meta["classes"])
    project = find_project(conn, title)
    if project is None:
        raise FerdataError(f"no project {title!r} on Label Studio at {conn.url}; run 'ferdata review push "
                           f"{manifest.name}' first")
    tasks = export_tasks(conn, project.id, title)
    images = images_with_effective_labels(manifest, columns=["path"])
    known = {r["image_id"]: r for r in images.select(["image_id", "path", "label"]).to_pylist()}
    log = label_decisions(manifest)
    last: dict[int, tuple[str, str | None]] = {}
    for r in log.to_pylist():
        if r["project"] == title and r["task_id"] is not None:
            last[r["task_id"]] = (r["new_label"], r["note"])

    users: dict[int, str] | None = None
    accepted: list[dict[str, Any]] = []
    rejected: list[str] = []
    annotated = already = 0
    for task in tasks:
        ann, choices = latest_choice(task)
        if ann is None:
            continue
        annotated += 1
        problem = check_task(task, choices or [], known, manifest, classes)
        if problem:
            rejected.append(problem)
            continue
        new_label = choices[0]
        note = annotation_note(ann)
        if last.get(task["id"]) == (new_label, note):
            already += 1
            continue
        image_id = task["data"]["image_id"]
        who = ann.get("completed_by")
        if isinstance(who, dict):
            annotator = who.get("email") or who.get("username") or f"user {who.get('id')}"
        else:
            if users is None:
                users = user_names(conn)
            annotator = users.get(who, f"user {who}")
        accepted.append({"image_id": image_id, "old_label": known[image_id]["label"], "new_label": new_label,
                         "annotator": annotator, "time": str(ann.get("updated_at") or ann.get("created_at") or ""),
                         "project": title, "task_id": int(task["id"]), "source": SOURCE, "note": note,
                         "path": known[image_id]["path"]})  # for the report; not a column of the log
    if rejected and not skip_invalid:
        more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
        raise FerdataError(f"{rejected[0]}{more}; nothing was written — fix the task(s) in Label Studio, or pass "
                           "--skip-invalid to take the valid decisions")
    n_changed = sum(1 for r in accepted if r["old_label"] != r["new_label"])
    result = PullResult(project.id, title, len(tasks), annotated, len(accepted), already, rejected, accepted,
                        dry_run, n_changed, len(accepted) - n_changed)
    if accepted and not dry_run:
        append_decisions(manifest, accepted)
    return result


def append_decisions(manifest: Manifest, rows: list[dict[str, Any]]) -> None:
    """Append to the relabel log: read, concatenate, write atomically (never rewrite history)."""
    path = manifest.table_path(LABELS_TABLE)
    old = label_decisions(manifest).cast(LABELS_SCHEMA)
    meta = read_metadata(path) if path.exists() else {"kind": "labels", "manifest": manifest.name}
    table = pa.concat_tables([old, table_from_rows(rows, LABELS_SCHEMA)])
    write_table(path, table, meta)
