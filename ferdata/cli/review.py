"""``ferdata review server|push|pull|status``: a local Label Studio, and relabelling suspects in it."""

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
    console,
    examples_epilog,
    summary_table,
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

SERVER_START_EXAMPLES = (
    Example("ferdata review server start", "install once, start on 127.0.0.1:8080, print the URL and the login",
            runnable=False),
    Example("ferdata review server start --port 8081 --document-root ~/data",
            "another port; serve the images below ~/data", runnable=False),
)
SERVER_STOP_EXAMPLES = (
    Example("ferdata review server stop", "stop the server 'start' started (never another program)", runnable=False),
    Example("ferdata review server stop && ferdata review server start --port 8081", "move it to another port",
            runnable=False),
)
SERVER_STATUS_EXAMPLES = (
    Example("ferdata review server status", "running and healthy? (exit 1 when not running)", runnable=False),
    Example("ferdata review server status || ferdata review server start", "start it only when it is not running",
            runnable=False),
)
SERVER_LOGS_EXAMPLES = (
    Example("ferdata review server logs", "the last 50 lines of the server's log", runnable=False),
    Example("ferdata review server logs -n 200", "the last 200", runnable=False),
)

UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Label Studio URL [default: $LABEL_STUDIO_URL, else the server 'ferdata review server start' runs].")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="API token [default: $LABEL_STUDIO_API_KEY, else the managed server's; prefer the variable, "
                    "it stays out of the shell history].",
    show_default=False)]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Project title [default: 'ferdata NAME'].")]


review_app = typer.Typer(help="Relabel suspects in Label Studio: run a local server, push tasks, pull decisions.", no_args_is_help=True,
                         short_help="Relabel suspects in Label Studio: server, push, pull, status",
                         epilog=examples_epilog((PUSH_EXAMPLES[0], STATUS_EXAMPLES[0], PULL_EXAMPLES[1])))
server_app = typer.Typer(help="A local Label Studio that ferdata installs and manages (127.0.0.1 only).",
                         no_args_is_help=True,
                         epilog=examples_epilog((SERVER_START_EXAMPLES[0], SERVER_STATUS_EXAMPLES[0],
                                                 SERVER_STOP_EXAMPLES[0])))
review_app.add_typer(server_app, name="server")


@server_app.command("start", epilog=examples_epilog(SERVER_START_EXAMPLES))
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


@server_app.command("stop", epilog=examples_epilog(SERVER_STOP_EXAMPLES))
def server_stop_command() -> None:
    """Stop the server that 'start' started.

    Only that process (by its PID file), never another program."""
    from ferdata.review import server

    console.print(server.stop().message, highlight=False)


@server_app.command("status", epilog=examples_epilog(SERVER_STATUS_EXAMPLES))
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


@server_app.command("logs", epilog=examples_epilog(SERVER_LOGS_EXAMPLES))
def server_logs_command(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many of the last lines.")] = 50,
) -> None:
    """The last lines of the server's log."""
    from ferdata.review import server

    log, text = server.log_lines(lines)
    typer.echo(f"==> {log} (last {len(text)} lines)")
    for line in text:
        typer.echo(line)


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
    s.row("tasks imported", result.n_imported).row("pre-annotations added", result.n_predictions)
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
                ("task", "path", "old", "new", "decision", "reviewer", "note"),
                [(r["task_id"], r["path"], r["old_label"], r["new_label"],
                  "relabel" if r["new_label"] != r["old_label"] else "keep", r["annotator"], r["note"] or "")
                 for r in result.rows],
                key="decisions")
    s.row("project", f"{result.title} (id {result.project_id})").row("annotated tasks", result.n_annotated)
    s.row("new decisions" + (" (not written)" if dry_run else " appended"), result.n_new, key="new_decisions")
    s.row("labels changed", result.n_changed).row("labels kept", result.n_kept).row("already pulled", result.n_already)
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
    out.row("labels changed", s.n_relabelled).row("labels kept", s.n_decisions - s.n_relabelled)
    out.print(as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
