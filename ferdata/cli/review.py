"""``ferdata review push|pull|status``: relabel suspects in Label Studio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    RichProgress,
    Summary,
    examples_epilog,
)

ORDER = 70

PUSH_EXAMPLES = (
    Example("ferdata review push jaffe --top 50 --url http://localhost:8080",
            "the 50 best suspects as tasks (token from $LABEL_STUDIO_API_KEY)", runnable=False),
    Example("ferdata review push jaffe --images embed", "images inside the tasks (a server without local files)",
            runnable=False),
)
PULL_EXAMPLES = (
    Example("ferdata review pull jaffe --dry-run", "the finished decisions, nothing written", runnable=False),
    Example("ferdata review pull jaffe", "append them to labels.parquet (every reader then sees them)",
            runnable=False),
)
STATUS_EXAMPLES = (
    Example("ferdata review status jaffe", "suspects, tasks, annotations and pulled decisions", runnable=False),
    Example("ferdata review status jaffe --json", "the same as JSON", runnable=False),
)

UrlOpt = Annotated[str | None, typer.Option("--url", help="Label Studio URL [default: $LABEL_STUDIO_URL].")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="API token [default: $LABEL_STUDIO_API_KEY; prefer the variable, it stays out of the shell history].",
    show_default=False)]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Project title [default: 'ferdata NAME'].")]


review_app = typer.Typer(help="Relabel suspects in Label Studio: push tasks, pull decisions.", no_args_is_help=True,
                         short_help="Relabel suspects in Label Studio: push, pull, status",
                         epilog=examples_epilog((PUSH_EXAMPLES[0], STATUS_EXAMPLES[0], PULL_EXAMPLES[1])))


@review_app.command("push", short_help="Import the top suspects as Label Studio tasks",
                    epilog=examples_epilog(PUSH_EXAMPLES))
def push_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    top: Annotated[int, typer.Option("--top", min=1, help="How many suspects, best first.")] = 50,
    images: Annotated[str, typer.Option(
        "--images", help="auto | local (local-files storage rooted at the dataset) | embed (PNG in the task).")]
        = "auto",
    document_root: Annotated[Path | None, typer.Option(
        "--document-root", help="The server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT [default: that variable].")]
        = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or reuse a project and import one task per top suspect (never twice)."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, push

    manifest = Manifest.open(name, manifests)
    result = push(manifest, connect(url, token), top=top, title=project, images=images, doc_root=document_root,
                  progress=RichProgress())
    s = Summary(f"review push {manifest.name}")
    s.row("project", f"{result.title} (id {result.project_id}{', new' if result.created else ''})")
    s.row("open", f"{result.url}/projects/{result.project_id}/data").row("images", result.image_mode)
    s.row("suspects selected", result.n_selected).row("already in the project", result.n_existing)
    s.row("tasks imported", result.n_imported).row("predictions added", result.n_predictions)
    s.print(as_json)


@review_app.command("pull", short_help="Append finished annotations to labels.parquet",
                    epilog=examples_epilog(PULL_EXAMPLES))
def pull_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the decisions; write nothing.")] = False,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Take the valid decisions when some tasks fail validation.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Append finished annotations to labels.parquet (idempotent)."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, pull

    manifest = Manifest.open(name, manifests)
    result = pull(manifest, connect(url, token), title=project, dry_run=dry_run, skip_invalid=skip_invalid)
    s = Summary(f"review pull {manifest.name}")
    if result.rows:
        s.table("decisions" + (" (dry run: not written)" if dry_run else ""),
                ("task", "image_id", "old", "new", "annotator"),
                [(r["task_id"], r["image_id"], r["old_label"], r["new_label"], r["annotator"]) for r in result.rows],
                key="decisions")
    s.row("project", f"{result.title} (id {result.project_id})").row("annotated tasks", result.n_annotated)
    s.row("new decisions" + (" (not written)" if dry_run else " appended"), result.n_new, key="new_decisions")
    s.row("labels changed", result.n_changed).row("already pulled", result.n_already)
    s.row("rejected", len(result.rejected))
    for why in result.rejected[:10]:
        s.note(why)
    s.data["rejected_reasons"] = list(result.rejected)
    s.print(as_json)


@review_app.command("status", short_help="Suspects, tasks, annotations, pulled decisions",
                    epilog=examples_epilog(STATUS_EXAMPLES))
def status_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Suspects, tasks, annotations and pulled decisions of a manifest's review."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, status

    manifest = Manifest.open(name, manifests)
    s = status(manifest, connect(url, token), title=project)
    out = Summary(f"review status {manifest.name}")
    out.row("server", s.url).row("project", f"{s.title} (id {s.project_id})" if s.project_id else f"{s.title} (not pushed)")
    out.row("suspects", s.n_suspects).row("tasks", s.n_tasks).row("annotated tasks", s.n_annotated)
    out.row("to annotate", s.n_tasks - s.n_annotated).row("decisions pulled", s.n_decisions)
    out.row("labels changed", s.n_relabelled)
    out.print(as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
