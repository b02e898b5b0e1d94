"""What every command shares: consoles, the progress bar, summary tables, common options."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

#: Tables and results go to stdout; progress and errors to stderr, so ``--json`` output stays clean.
console = Console()
err_console = Console(stderr=True)

ManifestsOpt = Annotated[
    Path | None,
    typer.Option("--manifests", envvar="FERDATA_MANIFESTS", help="Folder holding the manifests [default: ./manifests]."),
]
RunsOpt = Annotated[
    Path | None, typer.Option("--runs", "--runs-dir", envvar="FERDATA_RUNS", help="Folder of run folders [default: ./runs].")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-j", min=1, help="Worker processes [default: number of cores].")
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", envvar="FERDATA_ENGINE",
                 help="Where the work runs: local (a process pool on this machine) or ray (a Ray cluster; "
                      "pip install 'ferdata[ray]') [default: local]."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address",
                 help="--engine ray: join the Ray cluster at HOST:PORT [default: $RAY_ADDRESS, else start one on "
                      "this machine]."),
]


@contextmanager
def engine_executor(engine: str | None, workers: int | None, ray_address: str | None) -> Iterator[Any]:
    """The executor ``--engine``/``--workers``/``--ray-address`` ask for, closed afterwards
    (a local Ray cluster it started is stopped). ``$RAY_ADDRESS`` is read by the Ray engine
    itself, so a local run with it set is not an error; a typed ``--ray-address`` is."""
    from ferdata.engines import close_executor, create_executor, default_engine
    from ferdata.errors import FerdataError

    name = engine or default_engine()
    if name != "ray" and ray_address:
        raise FerdataError(f"--ray-address needs --engine ray (the {name} engine runs on this machine)")
    executor = create_executor(name, workers=workers, **({"address": ray_address} if name == "ray" else {}))
    try:
        yield executor
    finally:
        close_executor(executor)


def engine_rows(executor: Any) -> list[tuple[str, Any]]:
    """Summary rows saying where the work ran, for engines that report it (Ray: per node)."""
    run = getattr(executor, "last_run", None)
    if not run:
        return []
    nodes = run.get("nodes", {})
    per_node = ", ".join(f"{n[:8]}: {v['items']}" for n, v in nodes.items())
    return [("engine", f"{run['engine']}: {len(nodes)} node(s), {run['actors']} worker(s)"),
            ("images per node", per_node)]


class RichProgress:
    """A :class:`ferdata.progress.ProgressSink` drawn as a rich progress bar on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err_console
        self._progress: Progress | None = None
        self._task = None

    def start(self, task: str, total: int) -> None:
        self.finish()
        disable = not self.console.is_terminal and not os.environ.get("FERDATA_FORCE_PROGRESS")
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True, disable=disable,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total or None)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def print_broken(registry: Any) -> None:
    """One line per plugin entry point of ``registry`` that failed to load, with why: a broken
    third-party package must be visible in ``--list``, not silently missing."""
    for name, why in registry.broken().items():
        console.print(f"[bold red]broken entry point[/] {name} ({registry.entry_point_group}): {why}",
                      highlight=False, soft_wrap=True)


def summary_table(title: str, rows: Iterable[Sequence[Any]], columns: Sequence[str] = ("", "")) -> Table:
    table = Table(title=title, title_justify="left", show_header=any(columns))
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i else "left", overflow="fold")  # wrapped, never cut
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    return table


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)
