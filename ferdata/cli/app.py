"""The ``ferdata`` command: a thin Typer layer over the library.

Each command group lives in its own module and registers itself on ``app``; a
:class:`~ferdata.errors.FerdataError` anywhere becomes one red line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from ferdata import __version__
from ferdata.errors import FerdataError


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FerdataError as exc:
            from ferdata.cli.common import err_console, error_text

            err_console.print(error_text(exc), highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

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
