"""``ferdata review server|push|pull|status``: a local Label Studio, and relabelling suspects in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ORDER = 70

from ferdata.cli.common import ManifestsOpt, RichProgress, console, summary_table

UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Label Studio URL [default: $LABEL_STUDIO_URL, else the server 'ferdata review server start' runs].")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="API token [default: $LABEL_STUDIO_API_KEY, else the managed server's; prefer the variable, "
                    "it stays out of the shell history].",
    show_default=False)]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Project title [default: 'ferdata NAME'].")]


review_app = typer.Typer(help="Relabel suspects in Label Studio: run a local server, push tasks, pull decisions.",
                         no_args_is_help=True)
server_app = typer.Typer(help="A local Label Studio that ferdata installs and manages (127.0.0.1 only).",
                         no_args_is_help=True)
review_app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start_command(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
    document_root: Annotated[Path | None, typer.Option(
        "--document-root", help="Serve local files below this folder [default: the folder above every manifest's "
                                "images].")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for a healthy server.")] = 240,
    manifests: ManifestsOpt = None,
) -> None:
    """Start the local Label Studio (install once).

    Installs label-studio into a venv of its own under ferdata's data folder the first time,
    starts it on 127.0.0.1, waits until it is healthy, and prints the URL and how to log in.
    A second start reuses the running server."""
    from ferdata.review import server

    r = server.start(port=port, document_root=document_root, manifests=manifests, timeout=timeout,
                     progress=RichProgress())
    for note in r.notes:
        console.print(f"note: {note}", highlight=False)
    rows = [("server", f"{r.url} (pid {r.pid}{', already running: reused' if r.reused else ''})"),
            ("log in as", r.username), ("password", f"in {r.credentials} (readable by you only)"),
            ("local files served from", str(r.document_root)), ("log", str(r.log))]
    if r.installed:
        rows.append(("installed", f"label-studio {server.LS_VERSION} into {server.venv_dir()}"))
    rows.append(("seconds", round(r.seconds, 1)))
    console.print(summary_table("review server start", rows))
    console.print(f"Open {r.url} and log in as {r.username} with the password in {r.credentials}; "
                  "'ferdata review push NAME' finds this server by itself.", highlight=False, soft_wrap=True)


@server_app.command("stop")
def server_stop_command() -> None:
    """Stop the server that 'start' started.

    Only that process (by its PID file), never another program."""
    from ferdata.review import server

    console.print(server.stop().message, highlight=False)


@server_app.command("status")
def server_status_command() -> None:
    """Is the local server running and healthy?

    Exit code 0 when it answers, 1 when it is not running (never started, stopped, killed)."""
    from ferdata.review import server

    s = server.status()
    if not s.running:
        raise server.ServerNotRunning(s.message)
    console.print(summary_table("review server status", [
        ("state", "healthy" if s.healthy else s.message), ("server", f"{s.url} (pid {s.pid})"),
        ("Label Studio", s.version), ("local files served from", s.document_root), ("folder", str(s.home))]))
    if not s.healthy:
        raise typer.Exit(1)


@server_app.command("logs")
def server_logs_command(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many of the last lines.")] = 50,
) -> None:
    """The last lines of the server's log."""
    from ferdata.review import server

    log, text = server.log_lines(lines)
    typer.echo(f"==> {log} (last {len(text)} lines)")
    for line in text:
        typer.echo(line)


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
        ("tasks imported", result.n_imported), ("pre-annotations added", result.n_predictions)]))


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
            [(r["task_id"], r["path"], r["old_label"], r["new_label"],
              "relabel" if r["new_label"] != r["old_label"] else "keep", r["annotator"], r["note"] or "")
             for r in result.rows],
            ("task", "path", "old", "new", "decision", "reviewer", "note")))
    rows = [("project", f"{result.title} (id {result.project_id})"), ("annotated tasks", result.n_annotated),
            ("new decisions" + (" (not written)" if dry_run else " appended"), result.n_new),
            ("labels changed", result.n_changed), ("labels kept", result.n_kept), ("already pulled", result.n_already),
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
        ("labels changed", s.n_relabelled), ("labels kept", s.n_decisions - s.n_relabelled)]))


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
