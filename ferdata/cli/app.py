"""The ``ferdata`` command: a thin Typer layer over the library.

Each command group lives in its own module and registers itself on ``app``; a
:class:`~ferdata.errors.FerdataError` anywhere becomes one red line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape
from typer.core import TyperGroup

from ferdata import __version__
from ferdata.errors import FerdataError, FerdataWarning, Interrupted, from_os_error


def _interrupted(message: str) -> None:
    from ferdata.cli.common import err_console

    err_console.print(f"[bold yellow]{escape(message)}[/]", highlight=False, markup=True, soft_wrap=True)


def _waiting(message: str) -> None:
    from ferdata.cli.common import err_console
    from ferdata.interrupts import deferred_sigint

    with deferred_sigint():  # a Ctrl-C in the middle of the print would leave it in rich's buffer, printed twice
        err_console.print(f"{escape(message)} (pass --no-wait to fail instead) ...", highlight=False, soft_wrap=True)


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Each distinct ``FerdataWarning`` once, as ``warning: <message>`` on stderr."""
    from ferdata.cli.common import err_console

    shown: set[str] = set()
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ARG001
        if not issubclass(category, FerdataWarning):
            return previous(message, category, filename, lineno, file, line)
        text = str(message)
        if text not in shown:
            shown.add(text)
            err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, markup=True, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FerdataWarning)
        warnings.showwarning = show
        yield


def _fail(exc: FerdataError) -> typer.Exit:
    from ferdata.cli.common import err_console, error_text

    err_console.print(error_text(exc), highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


_INTERRUPTED = "interrupted; what was written is whole (every write is atomic); run the command again"


class _Group(TyperGroup):
    """Turns every failure a user can fix into one line and an exit code: a ``FerdataError``,
    an ``OSError`` of the environment (full disk, no permission, read-only file system:
    :func:`ferdata.errors.from_os_error`), and Ctrl-C (exit 130, even when some library
    swallowed the interrupt). Each ``FerdataWarning`` prints as one ``warning:`` line."""

    def invoke(self, ctx):  # noqa: ANN001 - click's signature
        from ferdata import interrupts
        from ferdata.manifest.lock import lock_policy

        try:
            with interrupts.watch(), _one_line_warnings(), lock_policy(wait=True, on_wait=_waiting):
                result = super().invoke(ctx)
        except FerdataError as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt as exc:
            message = str(exc) if isinstance(exc, Interrupted) else _INTERRUPTED
            _interrupted(message)
            raise typer.Exit(Interrupted.exit_code) from None
        except OSError as exc:
            mapped = from_os_error(exc)
            if mapped is None:
                raise
            raise _fail(mapped) from None
        if interrupts.received():  # the interrupt was swallowed somewhere: still say so, still 130
            _interrupted(_INTERRUPTED)
            raise typer.Exit(Interrupted.exit_code)
        return result

    def list_commands(self, ctx):
        return list(self.commands)


app = typer.Typer(
    cls=_Group,
    name="ferdata",
    help="Clean, subject-aware, versioned Parquet manifests for facial-expression datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ferdata {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """ferdata: raw FER datasets in, clean manifests and experiments out."""


def _register() -> None:
    """Every module in ``ferdata.cli`` with a ``register(app)`` adds its commands, in the
    order of its ``ORDER`` (the pipeline's order: ingest 10, preprocess 20, ...)."""
    import importlib
    import pkgutil

    import ferdata.cli as package

    modules = [importlib.import_module(f"ferdata.cli.{m.name}") for m in pkgutil.iter_modules(package.__path__)]
    for module in sorted((m for m in modules if hasattr(m, "register")), key=lambda m: getattr(m, "ORDER", 100)):
        module.register(app)


_register()


def main() -> None:
    app()
