"""``ferdata review push``: one Label Studio task per top suspect, with ferdata's guess as a
prediction. Tasks are keyed by ``image_id``, so pushing again only adds what is missing
(and completes a push that a server failure cut short)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferdata.errors import FerdataError
from ferdata.manifest import Manifest
from ferdata.noise import read_suspects
from ferdata.progress import NullProgress, ProgressSink
from ferdata.review.connection import Connection, ServerError
from ferdata.review.project import (
    CONTROL,
    GIVEN_VERSION,
    OBJECT,
    choose_image_mode,
    document_root,
    embedded_png,
    ensure_local_storage,
    ensure_project,
    local_url,
    preselect_given_label,
    project_title,
)

BATCH = 20
MODEL_PREFIX = "ferdata"


@dataclass
class PushResult:
    project_id: int
    title: str
    url: str
    created: bool
    image_mode: str
    n_selected: int
    n_existing: int
    n_imported: int
    n_predictions: int


class PushInterrupted(ServerError):
    """The server failed part-way; the message says what already went in."""


def project_tasks(conn: Connection, project_id: int) -> dict[str, Any]:
    """``{image_id: task}`` of the tasks already in the project."""
    with conn.calling("listing the project's tasks"):
        tasks = list(conn.client.tasks.list(project=project_id, fields="all", page_size=100))
    out: dict[str, Any] = {}
    for t in tasks:
        image_id = (t.data or {}).get("image_id")
        if isinstance(image_id, str) and image_id not in out:
            out[image_id] = t
    return out


def _versions(task: Any) -> set[str]:
    return {str(getattr(p, "model_version", "") or "") for p in task.predictions or []}


def _has_suggestion(task: Any) -> bool:
    return any(v.startswith(MODEL_PREFIX) and v != GIVEN_VERSION for v in _versions(task))


def _has_given(task: Any) -> bool:
    return GIVEN_VERSION in _versions(task)


def _choice(label: str) -> list[dict[str, Any]]:
    return [{"from_name": CONTROL, "to_name": OBJECT, "type": "choices", "value": {"choices": [label]}}]


def push(manifest: Manifest, conn: Connection, *, top: int = 50, title: str | None = None, images: str = "auto",
         doc_root: str | os.PathLike | None = None, batch: int = BATCH,
         progress: ProgressSink | None = None) -> PushResult:
    """Send the ``top`` suspects of ``manifest`` to a (new or reused) project."""
    progress = progress or NullProgress()
    if top < 1:
        raise FerdataError("--top must be at least 1")
    suspects, meta = read_suspects(manifest)
    rows = suspects.sort_by("rank").slice(0, top).to_pylist()
    if not rows:
        raise FerdataError(f"{manifest.name}'s suspects.parquet is empty; nothing to review")
    classes = list(meta["classes"])
    title = title or project_title(manifest.name)
    image_root = manifest.image_root
    # the managed server says where it serves local files from; another server is described
    # by --document-root or $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT
    root = document_root(doc_root) if doc_root else (conn.document_root or document_root())
    mode = choose_image_mode(images, image_root, [r["path"] for r in rows], root)
    model_version = f"{MODEL_PREFIX}-{meta.get('created_at', 'unknown')}"
    dataset = manifest.dataset
    description = (f"Suspected label errors in ferdata manifest {manifest.name} ({dataset}): pick the right "
                   "expression. Pulled back with 'ferdata review pull'.")

    project, created = ensure_project(conn, title, classes, description)
    if mode == "local":
        ensure_local_storage(conn, project.id, image_root)
    existing = project_tasks(conn, project.id)
    new = [r for r in rows if r["image_id"] not in existing]
    for r in rows:  # tasks an older ferdata pushed lack what today's view shows
        task = existing.get(r["image_id"])
        if task is not None and "suggestion" not in (task.data or {}):
            with conn.calling(f"updating task {task.id} for the current view"):
                conn.client.tasks.update(str(task.id), data={**task.data, "suggestion": suggestion_text(r)})

    progress.start("importing tasks", len(new))
    imported = 0
    try:
        for start in range(0, len(new), batch):
            chunk = new[start:start + batch]
            payload = [{"data": task_data(manifest, r, mode, image_root, root)} for r in chunk]
            with conn.calling(f"importing tasks {start + 1}-{start + len(chunk)} of {len(new)}"):
                conn.client.projects.import_tasks(project.id, request=payload, return_task_ids=True)
            imported += len(chunk)
            progress.advance(len(chunk))
    except ServerError as exc:
        raise PushInterrupted(f"{exc} — {imported} of {len(new)} new tasks were imported into project "
                              f"{title!r} (id {project.id}) before that; run push again to complete it",
                              exc.status) from None
    finally:
        progress.finish()

    tasks = project_tasks(conn, project.id)
    # Two pre-annotations per task: the given label, which the editor pre-selects (Submit =
    # keep), and ferdata's suggestion with its scores, kept for the record but not shown as
    # the default answer (pre-filling the machine's guess invites automation bias).
    wanted: list[tuple[Any, str, dict[str, Any]]] = []
    for r in rows:
        task = tasks.get(r["image_id"])
        if task is None:
            continue
        if r["given_label"] in classes and not _has_given(task):
            wanted.append((task, "given", r))
        if r["suggested_label"] in classes and not _has_suggestion(task):
            wanted.append((task, "suggestion", r))
    progress.start("adding pre-annotations", len(wanted))
    added = 0
    try:
        for task, kind, r in wanted:
            with conn.calling(f"adding the {kind} pre-annotation of task {task.id}"):
                if kind == "given":
                    conn.client.predictions.create(task=task.id, model_version=GIVEN_VERSION,
                                                   result=_choice(r["given_label"]))
                else:
                    conn.client.predictions.create(task=task.id, model_version=model_version,
                                                   result=_choice(r["suggested_label"]),
                                                   score=_num(r["p_suggested"]), mislabeling=_num(r["score"]))
            added += 1
            progress.advance()
    except ServerError as exc:
        raise PushInterrupted(f"{exc} — all {imported} new tasks are in project {title!r} (id {project.id}) but "
                              f"{len(wanted) - added} pre-annotations are missing; run push again to add them",
                              exc.status) from None
    finally:
        progress.finish()
    with conn.calling(f"reading project {title!r}"):
        project = conn.client.projects.get(project.id)
    preselect_given_label(conn, project)
    return PushResult(project.id, title, conn.url, created, mode, len(rows), len(rows) - len(new), imported, added)


def suggestion_text(row: dict[str, Any]) -> str:
    """ferdata's guess as context for the reviewer: the class and how sure the model was."""
    if not row["suggested_label"]:
        return "nothing (questioned by the data, not the model)"
    parts = []
    if row.get("p_suggested") is not None:
        parts.append(f"model probability {row['p_suggested']:.2f}")
    if row["score"] is not None:
        parts.append(f"mislabeling score {row['score']:.2f}")
    return row["suggested_label"] + (f" ({', '.join(parts)})" if parts else "")


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def task_data(manifest: Manifest, row: dict[str, Any], mode: str, image_root: Path, doc_root: Path | None) -> dict:
    """What an annotator sees, and what the pull needs to match the decision back."""
    if mode == "local":
        assert doc_root is not None
        image = local_url(image_root, row["path"], doc_root)
    else:
        image = embedded_png(manifest.resolve(row["path"]))
    score = row["score"]
    return {
        "image": image,
        "image_id": row["image_id"],
        "dataset": manifest.dataset,
        "manifest": manifest.name,
        "subject": row["subject_id"] or "",
        "path": row["path"],
        "given_label": row["given_label"],
        "suggested_label": row["suggested_label"] or "",
        "score": score,
        "score_text": "n/a" if score is None else f"{score:.3f}",
        "suggestion": suggestion_text(row),
        "rank": row["rank"],
        "reasons": "; ".join(row["reasons"] or []) or "(none)",
    }
