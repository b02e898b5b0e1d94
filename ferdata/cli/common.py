"""What every command shares: consoles, progress, tables, the closing summary, examples.

A command adopts the house style with four pieces, all documented below:

* print tables with :func:`table` / :func:`summary_table` (never ``rich.table.Table``
  directly): cells are plain text (no markup, no emoji) and long values wrap instead of
  being cut;
* pass :class:`RichProgress` to the library call: a bar on a terminal, and in a log or
  under a pipe one plain line every ``$FERDATA_PROGRESS_SECONDS`` (10) seconds with
  done/total, rate and ETA;
* end with a :class:`Summary`, which prints the table or, with the command's ``--json``
  (:data:`JsonOpt`), the same facts as one JSON object;
* register with :func:`command_help` so ``--help`` shows the one-line description and
  2-4 :class:`Example` lines (``tests/cli/test_examples.py`` runs the runnable ones).

``console`` (stdout) and ``err_console`` (stderr) never cut a line under a pipe: when the
stream is not a terminal and ``$COLUMNS`` is unset they are as wide as the output needs.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

#: Width of a console that writes to a pipe or a file: wide enough that no table is folded.
LOG_WIDTH = 4096
#: Seconds between plain progress lines when stderr is not a terminal.
PROGRESS_SECONDS_ENV = "FERDATA_PROGRESS_SECONDS"


class _Console(Console):
    """A rich console that is as wide as it needs to be when nobody's terminal limits it.

    rich falls back to 80 columns under a pipe or in a log, and a table then cuts its
    values with an ellipsis; a log has no width, so we give it :data:`LOG_WIDTH`. An
    explicit ``$COLUMNS`` still wins (and tables then wrap, see :func:`table`)."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal and not (self._environ.get("COLUMNS") or "").isdigit():
            return ConsoleDimensions(LOG_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


#: Tables and results go to stdout; progress, warnings and errors to stderr, so ``--json`` output stays clean.
console = _Console()
err_console = _Console(stderr=True)

ManifestsOpt = Annotated[
    Path | None,
    typer.Option("--manifests", envvar="FERDATA_MANIFESTS", help="Folder holding the manifests [default: ./manifests]."),
]
RunsOpt = Annotated[
    Path | None, typer.Option("--runs", "--runs-dir", envvar="FERDATA_RUNS", help="Folder of run folders [default: ./runs].")
]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Fail at once when another command is writing the manifest [default: wait].")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-j", min=1, help="Worker processes [default: number of cores].")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout (progress stays on stderr).")
]


# --- progress ---------------------------------------------------------------------------------


def progress_seconds() -> float:
    """Seconds between plain progress lines (``$FERDATA_PROGRESS_SECONDS``, default 10)."""
    try:
        return max(0.0, float(os.environ.get(PROGRESS_SECONDS_ENV, "10")))
    except ValueError:
        return 10.0


def clock(seconds: float) -> str:
    """``0:07``, ``3:25``, ``1:02:03``."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def rate_text(done: float, seconds: float) -> str:
    if seconds <= 0 or done <= 0:
        return "-"
    r = done / seconds
    return f"{r:.3g}/s" if r >= 1 else f"{seconds / done:.3g} s each"


def lock_waits(no_wait: bool) -> Any:
    """``--no-wait``: a command that would wait for another writer of its manifest fails at
    once instead (the app prints the waiting line otherwise)."""
    from contextlib import nullcontext

    from ferdata.manifest.lock import lock_policy

    return lock_policy(wait=False) if no_wait else nullcontext()
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
    """A :class:`ferdata.progress.ProgressSink` for the CLI.

    On a terminal: a rich progress bar on stderr. Anywhere else (a pipe, a log, CI): one
    plain line every :func:`progress_seconds` seconds, ``task: done/total (pct), rate,
    elapsed, ETA``, and a closing ``done`` line for a task that printed any, so a long step
    is never silent and a short one adds no noise. The interval runs across tasks, so a
    run of many short ones (30 epochs of 3 s) prints too. ``$FERDATA_FORCE_PROGRESS``
    forces the bar.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err_console
        self._progress: Progress | None = None
        self._task = None
        self._name = ""
        self._total = 0
        self._done = 0
        self._t0 = 0.0
        self._last = time.monotonic()  # kept across tasks: many short steps (epochs) still print
        self._printed = False
        self._plain = False

    @property
    def plain(self) -> bool:
        """True when progress is written as periodic lines instead of a bar."""
        return not self.console.is_terminal and not os.environ.get("FERDATA_FORCE_PROGRESS")

    def start(self, task: str, total: int) -> None:
        self.finish()
        self._name, self._total, self._done = task, int(total or 0), 0
        self._t0 = time.monotonic()
        self._printed = False
        self._plain = self.plain
        if self._plain:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total or None)

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._progress is not None:
            self._progress.advance(self._task, n)
        elif self._plain and not (self._total and self._done >= self._total):  # the end has its own line
            now = time.monotonic()
            if now - self._last >= progress_seconds():
                self._last = now
                self.line(self.status(now))

    def status(self, now: float | None = None) -> str:
        """``task: 120/213 (56%), 45.3/s, 0:03 elapsed, ETA 0:02``."""
        elapsed = (now or time.monotonic()) - self._t0
        if self._total:
            pct = 100.0 * self._done / self._total
            eta = (self._total - self._done) * elapsed / self._done if self._done else None
            return (f"{self._name}: {self._done:,}/{self._total:,} ({pct:.0f}%), {rate_text(self._done, elapsed)}, "
                    f"{clock(elapsed)} elapsed, ETA {'-' if eta is None else clock(eta)}")
        return f"{self._name}: {self._done:,} done, {rate_text(self._done, elapsed)}, {clock(elapsed)} elapsed"

    def line(self, text: str) -> None:
        """One plain progress line on stderr (no markup, never wrapped)."""
        self._printed = True
        self.console.print(text, markup=False, highlight=False, soft_wrap=True, emoji=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._plain and self._printed:
            elapsed = time.monotonic() - self._t0
            self.line(f"{self._name}: {self._done:,}{f'/{self._total:,}' if self._total else ''} done in "
                      f"{clock(elapsed)} ({rate_text(self._done, elapsed)})")
        self._plain = self._printed = False


# --- tables -----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A value as a table shows it: thousands separators, 4 significant digits, '' for None."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def cell(value: Any) -> Any:
    """A table cell: rich renderables pass through; everything else is plain text, so a
    path like ``[x]/a.png`` or a value like ``:train:`` prints as written."""
    if isinstance(value, (Text, Table)):
        return value
    return Text(fmt(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]] = (), *,
          justify: Sequence[str] | None = None, header: bool = True) -> Table:
    """A table whose values are never cut: every column folds a value that does not fit
    (only with an explicit narrow ``$COLUMNS``) instead of ending it with an ellipsis.
    ``justify`` per column (default: first left, the rest right)."""
    t = Table(title=title, title_justify="left", show_header=header)
    for i, col in enumerate(columns):
        how = justify[i] if justify else ("left" if i == 0 else "right")
        t.add_column(col, justify=how, overflow="fold")
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    return t


def summary_table(title: str, rows: Iterable[Sequence[Any]], columns: Sequence[str] = ("", "")) -> Table:
    """A titled key/value table (a header only when ``columns`` name something)."""
    return table(title, columns, rows, header=any(columns))


def print_broken(registry: Any) -> None:
    """One line per plugin entry point of ``registry`` that failed to load, with why: a broken
    third-party package must be visible in ``--list``, not silently missing."""
    for name, why in registry.broken().items():
        console.print(Text.assemble(("broken entry point", "bold red"), f" {name} ({registry.entry_point_group}): {why}"),
                      highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """A warning line on stderr (plain text: a path in it prints as written)."""
    err_console.print(Text.assemble(("warning: ", "yellow"), text), highlight=False, soft_wrap=True)


# --- the closing summary ----------------------------------------------------------------------


def key_of(label: str) -> str:
    """The JSON key of a row label: ``'fallback: whole image'`` -> ``'fallback_whole_image'``."""
    return re.sub(r"[^0-9a-z]+", "_", label.strip().lower()).strip("_") or "value"


def jsonable(value: Any) -> Any:
    """Plain JSON types for anything a summary holds (paths, numpy scalars, counters, tuples)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


class Summary:
    """What a command prints when it ends: titled key/value rows (plus optional tables) as
    rich tables on stdout, or with ``--json`` the same facts as one JSON object.

    ::

        s = Summary(f"ingest {dataset} → {name}")
        s.row("manifest", path)                 # JSON key "manifest"
        s.row("label anger", 30)                # JSON key "label_anger"
        s.counted("skipped", skipped, firsts)   # counts with their first paths
        s.table("faces", ("source", "label"), rows)
        s.print(as_json)

    JSON: ``{"title": ..., <key>: <value>, ..., "tables": {<key>: [{column: value}]},
    "warnings": [...]}``; numbers stay numbers (the table formats them).
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, Any]] = []
        self.data: dict[str, Any] = {}
        self.tables: list[tuple[str, Sequence[str], list[Sequence[Any]], bool]] = []
        self.warnings: list[str] = []

    def row(self, label: str, value: Any, *, key: str | None = None, show: bool = True,
            text: str | None = None) -> Summary:
        """One line: ``label`` in the table, ``key`` (default :func:`key_of` the label) in JSON;
        ``show=False`` keeps it out of the table (JSON only); ``text`` is what the table shows
        instead of ``value`` (a ``None`` explained in words, never an empty cell)."""
        if show:
            self.rows.append((label, value if text is None else text))
        k = key or key_of(label)
        base, n = k, 2
        while k in self.data:
            k, n = f"{base}_{n}", n + 1
        self.data[k] = jsonable(value)
        return self

    def note(self, text: str) -> Summary:
        """An indented line under the previous row (table only): examples, details."""
        self.rows.append(("  " + text, ""))
        return self

    def counted(self, kind: str, counts: Mapping[str, int], firsts: Mapping[str, Sequence[str]] | None = None,
                *, shown: int = 3) -> Summary:
        """One row per reason (``'{kind}: {reason}'``) and, under it, its first paths, so a
        count never comes without the names it counts."""
        firsts = firsts or {}
        for reason, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
            label = f"{kind}: {reason}"
            self.row(label, n)
            paths = list(firsts.get(reason) or ())
            if paths:
                self.data[key_of(label) + "_first"] = paths
                more = n - min(len(paths), shown) if isinstance(n, int) else 0
                self.note("e.g. " + ", ".join(paths[:shown]) + (f" (+{more:,} more)" if more > 0 else ""))
        return self

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
              key: str | None = None, before: bool = True) -> Summary:
        """An extra table, printed before the summary (``before=False``: after it); in JSON a
        list of objects under ``tables.<key>``."""
        rows = [list(r) for r in rows]
        self.tables.append((title, columns, rows, before))
        self.data.setdefault("tables", {})[key or key_of(title)] = [
            {key_of(c) or f"column_{i}": jsonable(v) for i, (c, v) in enumerate(zip(columns, r))} for r in rows]
        return self

    def warn(self, text: str) -> Summary:
        self.warnings.append(text)
        return self

    def as_dict(self) -> dict[str, Any]:
        out = {"title": self.title, **self.data}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    def print(self, as_json: bool = False) -> None:
        if as_json:
            print_json(self.as_dict())
            return
        for title, columns, rows, before in self.tables:
            if before:
                console.print(table(title, columns, rows, justify=["left"] * len(columns)))
        console.print(summary_table(self.title, self.rows))
        for title, columns, rows, before in self.tables:
            if not before:
                console.print(table(title, columns, rows))
        for w in self.warnings:
            warn(w)


def print_json(data: Any) -> None:
    """One JSON object on stdout, nothing else."""
    typer.echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


# --- errors: library parameters as flags ------------------------------------------------------

#: Library parameters whose flag is not ``--`` + the name in kebab case.
FLAGS = {
    "detector_opts": "--detector-option",
    "hparams": "--hp",
    "use_crops": "--crops",
    "allow_image_level": "--image-level",
    "members": "--runs",
    "doc_root": "--document-root",
    "title": "--project",
    "input": "INPUT",
    "source": "SOURCE",
    "opts": "--detector-option",
}


def flag_of(parameter: str) -> str:
    """The flag that sets a library parameter: ``label_map`` -> ``--label-map``."""
    return FLAGS.get(parameter) or "--" + parameter.replace("_", "-")


def error_text(exc: BaseException) -> Text:
    """An error as the one line the CLI prints: library parameters shown as flags, the
    message as plain text (a path with brackets prints as written)."""
    from ferdata.errors import FerdataError

    message = exc.render(flag_of) if isinstance(exc, FerdataError) else str(exc)
    return Text.assemble(("error:", "bold red"), " ", message)


# --- help: one line and examples --------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One line of a command's ``--help``: a command to copy, and what it does.

    ``runnable``: ``tests/cli/test_examples.py`` runs it on the real samples
    (``../shared/data``), commands in pipeline order; set it False only for an
    example that needs what tests cannot have (a server, a camera, data not in the samples).
    """

    command: str
    what: str
    runnable: bool = True


def examples_epilog(examples: Sequence[Example]) -> str:
    """The ``Examples:`` block of ``--help`` (kept verbatim by click: ``\\b``)."""
    lines = ["Examples:", "", "\b"]
    for i, ex in enumerate(examples):
        if i:
            lines.append("")
            lines.append("\b")
        lines += [f"  # {ex.what}", f"  {ex.command}"]
    return "\n".join(lines)


def command_help(short: str, examples: Sequence[Example]) -> dict[str, Any]:
    """``app.command(name, **command_help(...))`` keyword arguments: ``short`` is the line in
    ``ferdata --help`` (keep it under 60 characters so it is never cut), ``examples`` the
    2-4 examples at the end of the command's ``--help``."""
    if len(short) > 60:
        raise ValueError(f"short help over 60 characters: {short!r}")
    return {"short_help": short, "epilog": examples_epilog(examples)}
