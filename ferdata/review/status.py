"""``ferdata review status``: how far the review of a manifest's suspects has got."""

from __future__ import annotations

from dataclasses import dataclass

from ferdata.manifest import Manifest, read_table
from ferdata.manifest.effective import label_decisions
from ferdata.noise import SUSPECTS_TABLE
from ferdata.review.connection import Connection
from ferdata.review.project import find_project, project_title


@dataclass
class ReviewStatus:
    title: str
    url: str
    project_id: int | None
    n_suspects: int
    n_tasks: int
    n_annotated: int
    n_decisions: int
    n_relabelled: int


def status(manifest: Manifest, conn: Connection, *, title: str | None = None) -> ReviewStatus:
    title = title or project_title(manifest.name)
    path = manifest.table_path(SUSPECTS_TABLE)
    n_suspects = read_table(path, columns=["image_id"]).num_rows if path.exists() else 0
    log = [r for r in label_decisions(manifest).to_pylist() if r["project"] == title]
    n_relabelled = sum(1 for r in log if r["old_label"] != r["new_label"])
    project = find_project(conn, title)
    if project is None:
        return ReviewStatus(title, conn.url, None, n_suspects, 0, 0, len(log), n_relabelled)
    with conn.calling(f"reading project {title!r}"):
        full = conn.client.projects.get(project.id)
    return ReviewStatus(title, conn.url, project.id, n_suspects, int(full.task_number or 0),
                        int(full.num_tasks_with_annotations or 0), len(log), n_relabelled)
