"""``ferdata review push|pull|status``: relabel suspects in Label Studio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ORDER = 70

from ferdata.cli.common import ManifestsOpt, RichProgress, console, summary_table

UrlOpt = Annotated[str | None, typer.Option("--url", help="Label Studio URL [default: $LABEL_STUDIO_URL].")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="API token [default: $LABEL_STUDIO_API_KEY; prefer the variable, it stays out of the shell history].",
    show_default=False)]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Project title [default: 'ferdata NAME'].")]


review_app = typer.Typer(help="Relabel suspects in Label Studio: push tasks, pull decisions.", no_args_is_help=True)


@review_app.command("push")
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
) -> None:
    """Create or reuse a project and import one task per top suspect (never twice)."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, push

    manifest = Manifest.open(name, manifests)
    result = push(manifest, connect(url, token), top=top, title=project, images=images, doc_root=document_root,
                  progress=RichProgress())
    console.print(summary_table(f"review push {manifest.name}", [
        ("project", f"{result.title} (id {result.project_id}{', new' if result.created else ''})"),
        ("open", f"{result.url}/projects/{result.project_id}/data"), ("images", result.image_mode),
        ("suspects selected", result.n_selected), ("already in the project", result.n_existing),
        ("tasks imported", result.n_imported), ("predictions added", result.n_predictions)]))


@review_app.command("pull")
def pull_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the decisions; write nothing.")] = False,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Take the valid decisions when some tasks fail validation.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
    manifests: ManifestsOpt = None,
) -> None:
    """Append finished annotations to labels.parquet (idempotent)."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, pull

    manifest = Manifest.open(name, manifests)
    result = pull(manifest, connect(url, token), title=project, dry_run=dry_run, skip_invalid=skip_invalid)
    if result.rows:
        console.print(summary_table(
            "decisions" + (" (dry run: not written)" if dry_run else ""),
            [(r["task_id"], r["image_id"], r["old_label"], r["new_label"], r["annotator"]) for r in result.rows],
            ("task", "image_id", "old", "new", "annotator")))
    rows = [("project", f"{result.title} (id {result.project_id})"), ("annotated tasks", result.n_annotated),
            ("new decisions" + (" (not written)" if dry_run else " appended"), result.n_new),
            ("labels changed", result.n_changed), ("already pulled", result.n_already),
            ("rejected", len(result.rejected))]
    rows += [("  " + why, "") for why in result.rejected[:10]]
    console.print(summary_table(f"review pull {manifest.name}", rows))


@review_app.command("status")
def status_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
    manifests: ManifestsOpt = None,
) -> None:
    """Suspects, tasks, annotations and pulled decisions of a manifest's review."""
    from ferdata.manifest import Manifest
    from ferdata.review import connect, status

    manifest = Manifest.open(name, manifests)
    s = status(manifest, connect(url, token), title=project)
    console.print(summary_table(f"review status {manifest.name}", [
        ("server", s.url), ("project", f"{s.title} (id {s.project_id})" if s.project_id else f"{s.title} (not pushed)"),
        ("suspects", s.n_suspects), ("tasks", s.n_tasks), ("annotated tasks", s.n_annotated),
        ("to annotate", s.n_tasks - s.n_annotated), ("decisions pulled", s.n_decisions),
        ("labels changed", s.n_relabelled)]))


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
